/*
 * manifest.c — the store's root of truth: which segments, which rows of them are tombstoned,
 * which WAL generation holds the recent writes, which index file, the embedding model and
 * dimension, and a version that grows with every change.
 *
 * Format: JSON (readable with any tool) followed by one line "crc32c XXXXXXXX\n" holding the
 * CRC32C of every byte before that line.  The JSON carries "format": "aios-memory-store" and
 * "format_version": 1; readers reject other versions.  Tombstones are per segment, as sorted
 * row numbers.
 *
 * Replacement is atomic: write MANIFEST.tmp, fsync it, rename over MANIFEST, fsync the
 * directory.  A crash leaves either the old or the new manifest, never a mix; a stray
 * MANIFEST.tmp is ignored and removed by the next writer.
 */
#include "memory/memory_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>

void aios__manifest_free(manifest *m) {
    if (!m) return;
    for (int64_t i = 0; i < m->n_segs; i++) free(m->segs[i].dead);
    free(m->segs);
    memset(m, 0, sizeof *m);
}

aios_status aios__fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return aios__err(AIOS_ERR_IO, "memory: %s: %s", dir, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0) return aios__err(AIOS_ERR_IO, "memory: %s: fsync: %s", dir, strerror(e));
    return AIOS_OK;
}

static bool safe_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')) return false;
    }
    return s[0] != '.';
}

static aios_status bad(const char *name, const char *what) {
    return aios__err(AIOS_ERR_CORRUPT, "manifest: %s: %s", name, what);
}

static bool get_u64(const cJSON *o, const char *key, uint64_t *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 9007199254740992.0 ||
        x->valuedouble != (double)(uint64_t)x->valuedouble)
        return false;
    *v = (uint64_t)x->valuedouble;
    return true;
}
static bool get_hex32(const cJSON *o, const char *key, uint32_t *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(x) || strlen(x->valuestring) != 8) return false;
    char *end;
    unsigned long u = strtoul(x->valuestring, &end, 16);
    if (*end) return false;
    *v = (uint32_t)u;
    return true;
}

aios_status aios__manifest_parse(const char *text, size_t len, manifest *m, const char *name) {
    memset(m, 0, sizeof *m);
    /* the checksum line: "crc32c XXXXXXXX\n" at the very end */
    if (len < 18 || text[len - 1] != '\n' || text[len - 17] != '\n') return bad(name, "truncated (no checksum line)");
    const char *line = text + len - 16;
    if (memcmp(line, "crc32c ", 7)) return bad(name, "truncated (no checksum line)");
    char hex[9];
    memcpy(hex, line + 7, 8);
    hex[8] = 0;
    char *end;
    unsigned long want = strtoul(hex, &end, 16);
    if (*end) return bad(name, "malformed checksum line");
    size_t body = (size_t)(line - text);
    if (aios__crc32c(0, text, body) != (uint32_t)want) return bad(name, "checksum mismatch");
    cJSON *j = cJSON_ParseWithLength(text, body);
    if (!j) return bad(name, "invalid JSON");
    aios_status st = AIOS_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    uint64_t fv = 0, dim = 0;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "aios-memory-store")) {
        st = bad(name, "not an aios memory store manifest");
        goto out;
    }
    if (!get_u64(j, "format_version", &fv) || fv != 1) {
        st = aios__err(AIOS_ERR_UNSUPPORTED, "manifest: %s: format_version %llu is not supported (this build reads 1)", name,
                       (unsigned long long)fv);
        goto out;
    }
    if (!get_u64(j, "version", &m->version) || !get_u64(j, "dim", &dim) || dim > 65536 ||
        !get_u64(j, "wal_generation", &m->wal_gen) || !get_u64(j, "next_file", &m->next_file)) {
        st = bad(name, "missing or invalid version/dim/wal_generation/next_file");
        goto out;
    }
    m->dim = (int32_t)dim;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (cJSON_IsString(model)) snprintf(m->model, sizeof m->model, "%s", model->valuestring);
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(j, "segments");
    if (!cJSON_IsArray(segs)) {
        st = bad(name, "segments is not an array");
        goto out;
    }
    int ns = cJSON_GetArraySize(segs);
    m->segs = calloc((size_t)ns + 1, sizeof *m->segs);
    if (!m->segs) {
        st = aios__err(AIOS_ERR_NOMEM, "manifest: out of memory");
        goto out;
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, segs) {
        mseg *g = &m->segs[m->n_segs];
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(s, "file");
        uint64_t rows, bytes;
        if (!cJSON_IsString(file) || !safe_name(file->valuestring) || !get_u64(s, "rows", &rows) ||
            !get_u64(s, "bytes", &bytes) || !get_hex32(s, "crc32c", &g->crc) || rows > UINT32_MAX) {
            st = bad(name, "malformed segment entry");
            goto out;
        }
        snprintf(g->file, sizeof g->file, "%s", file->valuestring);
        g->rows = (int64_t)rows;
        g->bytes = bytes;
        m->n_segs++;
        const cJSON *dead = cJSON_GetObjectItemCaseSensitive(s, "deleted_rows");
        if (dead && !cJSON_IsArray(dead)) {
            st = bad(name, "deleted_rows is not an array");
            goto out;
        }
        int nd = dead ? cJSON_GetArraySize(dead) : 0;
        if (nd) {
            g->dead = malloc((size_t)nd * sizeof *g->dead);
            if (!g->dead) {
                st = aios__err(AIOS_ERR_NOMEM, "manifest: out of memory");
                goto out;
            }
            g->cap_dead = nd;
            const cJSON *d;
            cJSON_ArrayForEach(d, dead) {
                if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble >= (double)rows ||
                    d->valuedouble != (double)(int64_t)d->valuedouble ||
                    (g->n_dead && (int64_t)d->valuedouble <= g->dead[g->n_dead - 1])) {
                    st = bad(name, "deleted_rows must be increasing row numbers within the segment");
                    goto out;
                }
                g->dead[g->n_dead++] = (int64_t)d->valuedouble;
            }
        }
    }
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(j, "index");
    if (idx && !cJSON_IsNull(idx)) {
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(idx, "file");
        uint64_t rows, bytes, M, efc;
        if (!cJSON_IsString(file) || !safe_name(file->valuestring) || !get_u64(idx, "rows", &rows) ||
            !get_u64(idx, "bytes", &bytes) || !get_hex32(idx, "crc32c", &m->index_crc) || !get_u64(idx, "M", &M) ||
            !get_u64(idx, "ef_construction", &efc) || M > 256 || efc > 100000) {
            st = bad(name, "malformed index entry");
            goto out;
        }
        snprintf(m->index_file, sizeof m->index_file, "%s", file->valuestring);
        m->index_rows = (int64_t)rows;
        m->index_bytes = bytes;
        m->index_m = (int)M;
        m->index_efc = (int)efc;
        /* optional (added later): the store's default ef_search */
        const cJSON *efs = cJSON_GetObjectItemCaseSensitive(idx, "ef_search");
        if (efs) {
            uint64_t v;
            if (!get_u64(idx, "ef_search", &v) || v > 100000) {
                st = bad(name, "malformed index entry (ef_search)");
                goto out;
            }
            m->index_efs = (int)v;
        }
        const cJSON *au = cJSON_GetObjectItemCaseSensitive(idx, "auto");
        if (au) {
            if (!cJSON_IsString(au) || (strcmp(au->valuestring, "hnsw") && strcmp(au->valuestring, "exact"))) {
                st = bad(name, "malformed index entry (auto)");
                goto out;
            }
            m->index_auto = strcmp(au->valuestring, "hnsw") ? 2 : 1;
        }
    }
out:
    cJSON_Delete(j);
    if (st) aios__manifest_free(m);
    return st;
}

aios_status aios__manifest_read(const char *dir, manifest *m) {
    char path[4200];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    char *text;
    size_t len;
    AIOS_TRY(aios__read_file(path, &text, &len));
    aios_status st = aios__manifest_parse(text, len, m, path);
    free(text);
    return st;
}

aios_status aios__manifest_write(const char *dir, const manifest *m) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return aios__err(AIOS_ERR_NOMEM, "manifest: out of memory");
    char hex[16];
    cJSON_AddStringToObject(j, "format", "aios-memory-store");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON_AddNumberToObject(j, "version", (double)m->version);
    cJSON_AddNumberToObject(j, "dim", m->dim);
    cJSON_AddStringToObject(j, "model", m->model);
    cJSON_AddStringToObject(j, "metric", "cosine");
    cJSON_AddStringToObject(j, "schema",
                            "memory_id: string, timestamp: timestamp[us], content: string, embedding: list<float32>, "
                            "metadata: struct<category: string, source: string, quality_score: float32>");
    cJSON_AddNumberToObject(j, "wal_generation", (double)m->wal_gen);
    cJSON_AddNumberToObject(j, "next_file", (double)m->next_file);
    cJSON *segs = cJSON_AddArrayToObject(j, "segments");
    for (int64_t i = 0; i < m->n_segs; i++) {
        const mseg *g = &m->segs[i];
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "file", g->file);
        cJSON_AddNumberToObject(s, "rows", (double)g->rows);
        cJSON_AddNumberToObject(s, "bytes", (double)g->bytes);
        snprintf(hex, sizeof hex, "%08x", g->crc);
        cJSON_AddStringToObject(s, "crc32c", hex);
        cJSON *d = cJSON_AddArrayToObject(s, "deleted_rows");
        for (int64_t k = 0; k < g->n_dead; k++) cJSON_AddItemToArray(d, cJSON_CreateNumber((double)g->dead[k]));
        cJSON_AddItemToArray(segs, s);
    }
    if (m->index_file[0]) {
        cJSON *x = cJSON_AddObjectToObject(j, "index");
        cJSON_AddStringToObject(x, "file", m->index_file);
        cJSON_AddStringToObject(x, "kind", "hnsw");
        cJSON_AddNumberToObject(x, "rows", (double)m->index_rows);
        cJSON_AddNumberToObject(x, "bytes", (double)m->index_bytes);
        snprintf(hex, sizeof hex, "%08x", m->index_crc);
        cJSON_AddStringToObject(x, "crc32c", hex);
        cJSON_AddNumberToObject(x, "M", m->index_m);
        cJSON_AddNumberToObject(x, "ef_construction", m->index_efc);
        if (m->index_efs > 0) cJSON_AddNumberToObject(x, "ef_search", m->index_efs);
        if (m->index_auto) cJSON_AddStringToObject(x, "auto", m->index_auto == 1 ? "hnsw" : "exact");
    } else {
        cJSON_AddNullToObject(j, "index");
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return aios__err(AIOS_ERR_NOMEM, "manifest: out of memory");
    size_t len = strlen(text);
    char line[32];
    /* checksum covers the JSON plus the newline that ends it */
    aios_buf b = {0};
    aios_status st = aios_buf_append(&b, text, len);
    free(text);
    if (!st) st = aios_buf_append(&b, "\n", 1);
    if (st) {
        aios_buf_free(&b);
        return st;
    }
    snprintf(line, sizeof line, "crc32c %08x\n", aios__crc32c(0, b.data, b.len));
    st = aios_buf_append(&b, line, strlen(line));
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s/MANIFEST.tmp", dir);
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    int fd = st ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!st && fd < 0) st = aios__err(AIOS_ERR_IO, "manifest: %s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (!st && off < b.len) {
        ssize_t w = write(fd, b.data + off, b.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) st = aios__err(AIOS_ERR_IO, "manifest: %s: write: %s", tmp, strerror(errno));
        else off += (size_t)w;
    }
    if (!st && fsync(fd) != 0) st = aios__err(AIOS_ERR_IO, "manifest: %s: fsync: %s", tmp, strerror(errno));
    if (fd >= 0) close(fd);
    aios_buf_free(&b);
    if (!st && rename(tmp, path) != 0) st = aios__err(AIOS_ERR_IO, "manifest: rename %s: %s", tmp, strerror(errno));
    if (!st) st = aios__fsync_dir(dir);
    if (st) unlink(tmp);
    return st;
}
