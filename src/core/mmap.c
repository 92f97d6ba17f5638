/*
 * mmap.c — read-only file mappings.
 *
 * Weights and Parquet files are mapped, never read into buffers: tensors are views into the
 * mapping, and pages are faulted in only when touched.  An empty file maps to a non-NULL
 * empty region so callers need no special case.
 */
#include "core/internal.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t g_empty[1];

aios_status aios__map_file(const char *path, aios_map *m) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return aios__err(errno == ENOENT ? AIOS_ERR_NOT_FOUND : AIOS_ERR_IO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return aios__err(AIOS_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return aios__err(AIOS_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        m->data = g_empty;
        m->size = 0;
        return AIOS_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return aios__err(AIOS_ERR_IO, "%s: mmap: %s", path, strerror(e));
    m->data = (const uint8_t *)p;
    m->size = (size_t)st.st_size;
    m->mapped = 1;
    return AIOS_OK;
}

void aios__map_release(const aios_map *m, size_t from, size_t to) {
    if (!m || !m->mapped || !m->data) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (to > m->size) to = m->size;
    from = (from + page - 1) / page * page; /* the mapping itself starts on a page */
    to = to / page * page;
    if (to > from) madvise((void *)(m->data + from), to - from, MADV_DONTNEED);
}

void aios__unmap_file(aios_map *m) {
    if (m && m->mapped && m->data) munmap((void *)m->data, m->size);
    if (m) memset(m, 0, sizeof *m);
}

aios_status aios__read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return aios__err(errno == ENOENT ? AIOS_ERR_NOT_FOUND : AIOS_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return aios__err(AIOS_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return aios__err(AIOS_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return aios__err(AIOS_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return AIOS_OK;
}

aios_status aios__write_file_atomic(const char *path, const char *data, size_t n) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return aios__err(AIOS_ERR_IO, "%s: %s", tmp, strerror(errno));
    int ok = fwrite(data, 1, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return aios__err(AIOS_ERR_IO, "%s: %s", path, strerror(errno));
    }
    return AIOS_OK;
}
