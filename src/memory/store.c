/*
 * store.c — the memory store (the seed's ArrowStorage made durable): the public aios_store_*
 * API over the row table, WAL, manifest, Parquet segments and HNSW index.
 *
 * Durability protocol (what the crash test checks):
 *  - add / update / delete: encode one WAL record, write it, fdatasync, THEN apply it to the
 *    in-memory table and return.  A record is acknowledged only after it is on disk; a crash
 *    mid-write leaves a torn tail that replay drops and the next writer truncates.
 *  - flush (checkpoint): write the WAL's rows as a new segment (dead rows included so row
 *    numbers stay stable; they are listed as deleted_rows), create the next WAL generation,
 *    save the index, then publish it all with one atomic manifest replacement; only after that
 *    are the old WAL and index unlinked.  A crash before the rename leaves the old manifest,
 *    whose WAL still holds everything; after it, the new one.  Files no manifest names are
 *    removed by the next writer.
 *  - compact: the same, with every live row rewritten and all old files dropped; the index is
 *    carried over (renumbered) unless a quarter of it goes.
 * Rows: the table holds segment rows in manifest order then WAL rows in log order; HNSW node i
 * is row i.  Tombstones live in the table as a cleared MR_LIVE bit and are written to the
 * manifest at each checkpoint.
 * Concurrency: the writer holds flock(LOCK_EX) on LOCK for the handle's lifetime.  Readers take
 * no lock: they read the manifest, then the immutable files it names, then the WAL up to its
 * last complete record; if a file vanished (a concurrent checkpoint), they start over.
 * Index use: HNSW covers rows [0, covered); rows added since are searched exactly and merged.
 */
#include "memory/memory_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "format/parquet.h"

struct aios_store {
    char dir[4096];
    aios_store_params p;
    bool writer, broken;
    int lock_fd, wal_fd;
    manifest man;
    mtable t;
    int64_t *seg_start; /* (n_segs + 1) first row of each segment; [n_segs] = first WAL row */
    int64_t wal_records;
    int64_t ckpt_retry_at; /* after a failed checkpoint: WAL records before the next try */
    uint64_t wal_size;
    hnsw *idx;
    int64_t idx_saved_rows; /* rows covered by the index file the manifest names */
    bool idx_bad;
    char idx_error[512];
    aios_buf wbuf;
    uint64_t rng;
    bool efs_fixed;     /* the caller chose hnsw_ef_search: not tuned */
    int auto_mode;      /* AUTO searches: 0 = unmeasured (index), 1 = index, 2 = exact (tune_index) */
    int64_t tuned_rows; /* index rows when auto_mode was measured */
};

#define HNSW_DEFAULT_M 32
#define HNSW_DEFAULT_EFC 200
#define HNSW_DEFAULT_EFS 128

aios_store_params aios_store_default_params(void) {
    aios_store_params p;
    memset(&p, 0, sizeof p);
    p.sync = 1;
    p.checkpoint_rows = 65536;
    p.hnsw_min_rows = 20000;
    p.compression_level = 3; /* hnsw_m, hnsw_ef_construction, hnsw_ef_search: 0 = recorded or built-in */
    return p;
}

aios_search_params aios_search_default_params(void) {
    aios_search_params p;
    memset(&p, 0, sizeof p);
    p.top_k = 10;
    p.threshold = -2.0f;
    p.since_us = INT64_MIN;
    p.until_us = INT64_MAX;
    p.min_quality = -INFINITY;
    return p;
}

static void path_of(const aios_store *st, const char *name, char *out, size_t n) {
    snprintf(out, n, "%s/%s", st->dir, name);
}
static void wal_name(uint64_t gen, char *out, size_t n) { snprintf(out, n, "wal-%06" PRIu64 ".log", gen); }

static int n_threads(void) {
    int n = aios_cpu()->n_cores;
    return n > 0 ? n : 1;
}

/* ---- loading ---- */
/* CRC32C of a mapped file, 64 MB at a time, each chunk released from the resident set once read
 * (a large segment is then never resident twice: once for the check, once while decoded). */
static uint32_t crc_released(const aios_map *m) {
    uint32_t crc = 0;
    for (size_t o = 0; o < m->size; o += (size_t)64 << 20) {
        size_t n = AIOS_MIN(m->size - o, (size_t)64 << 20);
        crc = aios__crc32c(crc, m->data + o, n);
        aios__map_release(m, o, o + n);
    }
    return crc;
}

static aios_status load_segments(aios_store *st) {
    manifest *m = &st->man;
    st->seg_start = calloc((size_t)m->n_segs + 1, sizeof *st->seg_start);
    if (!st->seg_start) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    int64_t total = 0;
    for (int64_t i = 0; i < m->n_segs; i++) total += m->segs[i].rows;
    if (total > 0 && total < (int64_t)UINT32_MAX) AIOS_TRY(aios__mt_reserve(&st->t, total + 1024));
    for (int64_t i = 0; i < m->n_segs; i++) {
        mseg *g = &m->segs[i];
        char path[4200];
        path_of(st, g->file, path, sizeof path);
        aios_map map;
        AIOS_TRY(aios__map_file(path, &map));
        aios_status s = AIOS_OK;
        if (map.size != g->bytes)
            s = aios__err(AIOS_ERR_CORRUPT, "memory: segment %s: %zu bytes, the manifest says %" PRIu64 " (truncated or replaced)",
                          path, map.size, g->bytes);
        else if (crc_released(&map) != g->crc)
            s = aios__err(AIOS_ERR_CORRUPT, "memory: segment %s: checksum mismatch (the file is damaged)", path);
        int64_t r0 = st->t.n;
        st->seg_start[i] = r0;
        if (!s) s = aios__seg_read(&st->t, path, &map);
        aios__unmap_file(&map);
        if (s) return s;
        if (st->t.n - r0 != g->rows)
            return aios__err(AIOS_ERR_CORRUPT, "memory: segment %s: %lld rows, the manifest says %lld", path,
                             (long long)(st->t.n - r0), (long long)g->rows);
        for (int64_t k = 0; k < g->n_dead; k++) aios__mt_kill(&st->t, r0 + g->dead[k]);
        for (int64_t r = r0; r < st->t.n; r++) {
            if (!(st->t.flags[r] & MR_LIVE)) continue;
            uint32_t len;
            const char *id = aios__mt_str(&st->t, st->t.id_off[r], &len);
            if (len == 0) return aios__err(AIOS_ERR_CORRUPT, "memory: segment %s row %lld: empty memory_id", path, (long long)(r - r0));
            if (aios__mt_find(&st->t, id, len) != r)
                return aios__err(AIOS_ERR_CORRUPT, "memory: segment %s row %lld: memory_id '%s' is live twice", path,
                                 (long long)(r - r0), id);
        }
    }
    st->seg_start[m->n_segs] = st->t.n;
    if (m->dim && st->t.dim && m->dim != st->t.dim)
        return aios__err(AIOS_ERR_CORRUPT, "memory: segments hold %d-dimensional embeddings, the manifest says %d", st->t.dim, m->dim);
    if (!st->t.dim) st->t.dim = m->dim;
    return AIOS_OK;
}

static aios_status apply(void *user, int type, const aios_memory *m, uint64_t off) {
    aios_store *st = user;
    int64_t r = aios__mt_find(&st->t, m->memory_id, strlen(m->memory_id));
    if (type == WAL_ADD && r >= 0)
        return aios__err(AIOS_ERR_CORRUPT, "wal: record at offset %" PRIu64 " adds '%s', which is live already", off, m->memory_id);
    if (type != WAL_ADD && r < 0)
        return aios__err(AIOS_ERR_CORRUPT, "wal: record at offset %" PRIu64 " changes '%s', which does not exist", off, m->memory_id);
    if (type == WAL_ADD || type == WAL_UPDATE) {
        if (m->embedding && st->t.dim && m->dim != st->t.dim)
            return aios__err(AIOS_ERR_CORRUPT, "wal: record at offset %" PRIu64 ": %d-dimensional embedding in a %d-dimensional store",
                             off, m->dim, st->t.dim);
    }
    if (r >= 0) aios__mt_kill(&st->t, r);
    if (type != WAL_DELETE) AIOS_TRY(aios__mt_append(&st->t, m));
    return AIOS_OK;
}

static aios_status load_wal(aios_store *st) {
    char name[64], path[4200];
    wal_name(st->man.wal_gen, name, sizeof name);
    path_of(st, name, path, sizeof path);
    size_t valid;
    if (!st->writer) {
        aios_map map;
        AIOS_TRY(aios__map_file(path, &map));
        aios_status s = aios__wal_parse(map.data, map.size, st->man.wal_gen, apply, st, &valid, &st->wal_records, path);
        aios__unmap_file(&map);
        return s;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return aios__err(errno == ENOENT ? AIOS_ERR_CORRUPT : AIOS_ERR_IO, "memory: %s: %s", path, strerror(errno));
    st->wal_fd = fd;
    aios_map map;
    AIOS_TRY(aios__map_file(path, &map));
    aios_status s = aios__wal_parse(map.data, map.size, st->man.wal_gen, apply, st, &valid, &st->wal_records, path);
    size_t size = map.size;
    aios__unmap_file(&map);
    if (s) return s;
    if (valid < size) {
        /* a torn tail from a crash: never acknowledged, cut it off before appending */
        aios_log(AIOS_LOG_INFO, "memory: %s: dropping %zu bytes of an interrupted write", path, size - valid);
        if (ftruncate(fd, (off_t)valid) != 0 || fsync(fd) != 0)
            return aios__err(AIOS_ERR_IO, "memory: %s: truncate: %s", path, strerror(errno));
    }
    if (lseek(fd, (off_t)valid, SEEK_SET) < 0) return aios__err(AIOS_ERR_IO, "memory: %s: seek: %s", path, strerror(errno));
    st->wal_size = valid;
    return AIOS_OK;
}

static void load_index(aios_store *st) {
    if (!st->man.index_file[0] || !st->t.dim) return;
    char path[4200];
    path_of(st, st->man.index_file, path, sizeof path);
    aios_status s = AIOS_OK;
    struct stat sb;
    if (stat(path, &sb) != 0)
        s = aios__err(AIOS_ERR_CORRUPT, "memory: index %s: %s", path, strerror(errno));
    else if ((uint64_t)sb.st_size != st->man.index_bytes)
        s = aios__err(AIOS_ERR_CORRUPT, "memory: index %s: %lld bytes, the manifest says %" PRIu64, path, (long long)sb.st_size,
                      st->man.index_bytes);
    if (!s) s = aios__hnsw_load(&st->t, path, &st->idx);
    if (!s && aios__hnsw_rows(st->idx) != st->man.index_rows)
        s = aios__err(AIOS_ERR_CORRUPT, "memory: index %s covers %lld rows, the manifest says %lld", path,
                      (long long)aios__hnsw_rows(st->idx), (long long)st->man.index_rows);
    if (s) {
        /* the index is derived data: searching exactly is still correct, so keep serving, but
         * remember the problem for check and rebuild it at the next checkpoint */
        aios__hnsw_free(st->idx);
        st->idx = NULL;
        st->idx_bad = true;
        snprintf(st->idx_error, sizeof st->idx_error, "%s", aios_last_error());
        aios_log(AIOS_LOG_WARN, "%s (searching exactly until it is rebuilt)", st->idx_error);
        return;
    }
    st->idx_saved_rows = st->man.index_rows;
}

/* Removes files no manifest names (left by a crash mid-checkpoint). Writer only. */
static void remove_orphans(aios_store *st) {
    DIR *d = opendir(st->dir);
    if (!d) return;
    char wal[64];
    wal_name(st->man.wal_gen, wal, sizeof wal);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        bool ours = !strncmp(n, "seg-", 4) || !strncmp(n, "wal-", 4) || !strncmp(n, "hnsw-", 5) || !strcmp(n, "MANIFEST.tmp");
        if (!ours) continue;
        bool named = !strcmp(n, wal) || !strcmp(n, st->man.index_file);
        for (int64_t i = 0; i < st->man.n_segs && !named; i++) named = !strcmp(n, st->man.segs[i].file);
        if (named) continue;
        char path[4200];
        path_of(st, n, path, sizeof path);
        aios_log(AIOS_LOG_INFO, "memory: removing %s (left by an interrupted checkpoint)", path);
        unlink(path);
    }
    closedir(d);
}

static aios_status create_wal(aios_store *st, uint64_t gen, int *fd_out) {
    char name[64], path[4200];
    wal_name(gen, name, sizeof name);
    path_of(st, name, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return aios__err(AIOS_ERR_IO, "memory: %s: %s", path, strerror(errno));
    uint8_t h[WAL_HEADER_SIZE];
    aios__wal_header(h, gen);
    if (write(fd, h, sizeof h) != (ssize_t)sizeof h || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return aios__err(AIOS_ERR_IO, "memory: %s: write: %s", path, strerror(e));
    }
    *fd_out = fd;
    return AIOS_OK;
}

static aios_status create_store(aios_store *st) {
    manifest *m = &st->man;
    memset(m, 0, sizeof *m);
    m->version = 1;
    m->dim = st->p.dim;
    snprintf(m->model, sizeof m->model, "%s", st->p.model ? st->p.model : "");
    m->wal_gen = 1;
    m->next_file = 1;
    int fd;
    AIOS_TRY(create_wal(st, 1, &fd));
    close(fd);
    return aios__manifest_write(st->dir, m);
}

static void reset_state(aios_store *st) {
    aios__manifest_free(&st->man);
    aios__mt_free(&st->t);
    free(st->seg_start);
    st->seg_start = NULL;
    aios__hnsw_free(st->idx);
    st->idx = NULL;
    st->idx_bad = false;
    st->idx_saved_rows = 0;
    st->wal_records = 0;
    if (st->wal_fd >= 0) close(st->wal_fd);
    st->wal_fd = -1;
}

static aios_status load_all(aios_store *st) {
    AIOS_TRY(aios__manifest_read(st->dir, &st->man));
    /* HNSW settings left 0 by the caller: the ones recorded with the index, else the defaults
     * (chosen on 100k x 384 random-normal, docs/memory.md) */
    bool rec = st->man.index_file[0] != 0;
    if (st->p.hnsw_m <= 0) st->p.hnsw_m = rec && st->man.index_m >= 2 ? st->man.index_m : HNSW_DEFAULT_M;
    if (st->p.hnsw_ef_construction <= 0)
        st->p.hnsw_ef_construction = rec && st->man.index_efc >= 1 ? st->man.index_efc : HNSW_DEFAULT_EFC;
    if (st->p.hnsw_ef_search <= 0) st->p.hnsw_ef_search = rec && st->man.index_efs >= 1 ? st->man.index_efs : HNSW_DEFAULT_EFS;
    if (rec && !st->auto_mode) {
        st->auto_mode = st->man.index_auto;
        st->tuned_rows = st->man.index_rows;
    }
    aios__mt_init(&st->t, st->man.dim);
    AIOS_TRY(load_segments(st));
    AIOS_TRY(load_wal(st));
    if (st->man.dim == 0 && st->t.dim) st->man.dim = st->t.dim;
    load_index(st);
    return AIOS_OK;
}

aios_status aios_store_open(const char *dir, const aios_store_params *params, aios_store **out) {
    *out = NULL;
    if (!dir || !*dir || strlen(dir) > 4000) return aios__err(AIOS_ERR_INVALID_ARG, "memory: store directory missing or too long");
    aios_store *st = calloc(1, sizeof *st);
    if (!st) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    st->p = params ? *params : aios_store_default_params();
    st->efs_fixed = st->p.hnsw_ef_search > 0;
    if (st->p.checkpoint_rows <= 0) st->p.checkpoint_rows = 65536;
    if (st->p.compression_level <= 0) st->p.compression_level = 3;
    if (st->p.dim < 0 || st->p.dim > 65536) {
        int d = st->p.dim;
        free(st);
        return aios__err(AIOS_ERR_INVALID_ARG, "memory: dimension %d out of range", d);
    }
    snprintf(st->dir, sizeof st->dir, "%s", dir);
    st->writer = !st->p.read_only;
    st->lock_fd = st->wal_fd = -1;
    st->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)st;
    aios_status s = AIOS_OK;
    if (st->writer) {
        if (st->p.create && mkdir(dir, 0755) != 0 && errno != EEXIST) {
            s = aios__err(AIOS_ERR_IO, "memory: %s: %s", dir, strerror(errno));
            goto fail;
        }
        char lp[4200];
        path_of(st, "LOCK", lp, sizeof lp);
        st->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (st->lock_fd < 0) {
            s = aios__err(errno == ENOENT ? AIOS_ERR_NOT_FOUND : AIOS_ERR_IO, "memory: %s: %s", lp, strerror(errno));
            goto fail;
        }
        if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            s = errno == EWOULDBLOCK ? aios__err(AIOS_ERR_BUSY, "memory: %s: another writer has the store open (one writer at a time; readers are fine)", dir)
                                     : aios__err(AIOS_ERR_IO, "memory: %s: lock: %s", lp, strerror(errno));
            goto fail;
        }
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(st->lock_fd, 0) == 0 && pwrite(st->lock_fd, pid, (size_t)n, 0) < 0) { /* informational only */
        }
        char mp[4200];
        path_of(st, "MANIFEST", mp, sizeof mp);
        if (access(mp, F_OK) != 0) {
            if (!st->p.create) {
                s = aios__err(AIOS_ERR_NOT_FOUND, "memory: %s: no store here (no MANIFEST)", dir);
                goto fail;
            }
            if ((s = create_store(st))) goto fail;
            aios__manifest_free(&st->man);
        }
        if ((s = load_all(st))) goto fail;
        remove_orphans(st);
        if (st->p.dim && st->t.dim && st->p.dim != st->t.dim) {
            s = aios__err(AIOS_ERR_SHAPE, "memory: %s: the store holds %d-dimensional embeddings, not %d", dir, st->t.dim, st->p.dim);
            goto fail;
        }
        if (st->p.dim && !st->t.dim && st->t.n == 0) st->t.dim = st->man.dim = st->p.dim;
        if (st->p.model && st->p.model[0]) {
            /* one embedding space per store: record the model once, refuse another */
            if (!st->man.model[0]) {
                snprintf(st->man.model, sizeof st->man.model, "%s", st->p.model);
                st->man.version++;
                if ((s = aios__manifest_write(st->dir, &st->man))) goto fail;
            } else if (strcmp(st->man.model, st->p.model)) {
                s = aios__err(AIOS_ERR_INVALID_ARG, "memory: %s: the store's embeddings come from model '%s', not '%s'", dir,
                              st->man.model, st->p.model);
                goto fail;
            }
        }
    } else {
        /* a reader retries when a concurrent checkpoint removed a file it was about to read */
        for (int attempt = 0;; attempt++) {
            s = load_all(st);
            if (s != AIOS_ERR_NOT_FOUND || attempt >= 20) break;
            char mp[4200];
            path_of(st, "MANIFEST", mp, sizeof mp);
            if (access(mp, F_OK) != 0) {
                s = aios__err(AIOS_ERR_NOT_FOUND, "memory: %s: no store here (no MANIFEST)", dir);
                break;
            }
            reset_state(st);
            usleep(1000u << (attempt < 6 ? attempt : 6));
        }
        if (s) goto fail;
    }
    *out = st;
    return AIOS_OK;
fail:
    aios__err_prefix(s, "%s", "open");
    reset_state(st);
    if (st->lock_fd >= 0) close(st->lock_fd);
    free(st);
    return s;
}

/* ---- checkpoint ---- */
static int64_t live_embedded(const aios_store *st) {
    int64_t n = 0;
    for (int64_t r = 0; r < st->t.n; r++) n += (st->t.flags[r] & (MR_LIVE | MR_EMB)) == (MR_LIVE | MR_EMB);
    return n;
}

/* Brings the index up to date (building it when the store is big enough or `force`).
 * Returns true when the index now covers every row. */
static aios_status refresh_index(aios_store *st, bool force) {
    if (!st->t.dim) return AIOS_OK;
    if (force && st->idx && (aios__hnsw_m(st->idx) != st->p.hnsw_m || aios__hnsw_efc(st->idx) != st->p.hnsw_ef_construction)) {
        /* asked for other settings than the index was built with: build it anew */
        aios__hnsw_free(st->idx);
        st->idx = NULL;
        st->tuned_rows = 0;
        st->idx_saved_rows = -1; /* same rows, new graph: it must be saved */
    }
    if (!st->idx) {
        if (!force && live_embedded(st) < st->p.hnsw_min_rows) return AIOS_OK;
        AIOS_TRY(aios__hnsw_new(&st->t, st->p.hnsw_m, st->p.hnsw_ef_construction, st->rng, &st->idx));
    }
    return aios__hnsw_extend(st->idx, n_threads());
}

/* AUTO's choice, measured on the data: P probe rows spread over the table are searched exactly
 * and through the graph with the probe's own node held out (neither visited nor expanded: its
 * links are its neighbours, so letting the search through it would flatter the graph).  Unless the caller fixed ef_search, ef doubles from the default until
 * recall@10 >= 0.97 on the probes (cap 4096; the margin covers the sampling error of 320 neighbours,
 * so that outside queries get >= 0.95).  AUTO uses the index only when that recall comes with fewer
 * than a quarter of the covered rows' distances computed: a graph step costs several streamed
 * rows (random access, heaps, one thread) while exact search streams on every core.  On real
 * sentence embeddings the graph wins by 10-100x; on 100k random-normal vectors it needs ef 2048
 * and loses to exact search (docs/memory.md), so AUTO searches exactly there. */
#define TUNE_RECALL 0.97
static void tune_index(const mtable *t, const hnsw *idx, bool fixed, int *ef_io, int *auto_out) {
    enum { P = 32, K = 10 };
    int64_t covered = aios__hnsw_rows(idx);
    mfilter all;
    memset(&all, 0, sizeof all);
    all.since = INT64_MIN;
    all.until = INT64_MAX;
    int64_t probes[P];
    int np = 0;
    int64_t step = AIOS_MAX(1, covered / P);
    for (int64_t r = step / 2; r < covered && np < P; r += step)
        if (aios__mf_pass(t, &all, r) && t->inv_norm[r] > 0) probes[np++] = r;
    *auto_out = 0;
    float *q = malloc((size_t)t->dim * sizeof *q);
    mhit *truth = malloc((size_t)P * (K + 1) * sizeof *truth), got[K + 1];
    int32_t nt[P];
    if (!q || !truth || np < 4) goto out;
    for (int p = 0; p < np; p++) {
        const float *x = t->emb + (size_t)probes[p] * (size_t)t->dim;
        for (int32_t i = 0; i < t->dim; i++) q[i] = x[i] * t->inv_norm[probes[p]];
        aios__exact_search(t, q, &all, 0, covered, K + 1, -2.0f, n_threads(), truth + (size_t)p * (K + 1), &nt[p]);
    }
    int ef = fixed ? *ef_io : HNSW_DEFAULT_EFS;
    double recall = 0, evals = 0;
    for (;;) {
        int64_t found = 0, want = 0, ev_sum = 0;
        for (int p = 0; p < np; p++) {
            const float *x = t->emb + (size_t)probes[p] * (size_t)t->dim;
            for (int32_t i = 0; i < t->dim; i++) q[i] = x[i] * t->inv_norm[probes[p]];
            int32_t ng = 0;
            int64_t ev = 0;
            aios__hnsw_search(idx, q, &all, K + 1, ef, -2.0f, got, &ng, probes[p], &ev);
            ev_sum += ev;
            const mhit *tr = truth + (size_t)p * (K + 1);
            int tk = 0;
            for (int32_t i = 0; i < nt[p] && tk < K; i++) {
                if (tr[i].row == probes[p]) continue;
                tk++;
                for (int32_t j = 0; j < ng; j++)
                    if (got[j].row == tr[i].row) {
                        found++;
                        break;
                    }
            }
            want += tk;
        }
        recall = want ? (double)found / (double)want : 1.0;
        evals = (double)ev_sum / np;
        if (recall >= TUNE_RECALL || fixed || ef >= 4096) break;
        ef *= 2;
    }
    if (!fixed) *ef_io = ef;
    *auto_out = recall >= TUNE_RECALL && evals * 4 < (double)covered ? 1 : 2;
    aios_log(AIOS_LOG_DEBUG, "memory: index of %lld rows: ef_search %d gives recall@10 %.3f on %d probes, %.0f distances (%s for AUTO)",
             (long long)covered, ef, recall, np, evals, *auto_out == 1 ? "index" : "exact");
out:
    free(q);
    free(truth);
}

static aios_status save_index(aios_store *st, manifest *m) {
    if (!st->idx) {
        m->index_file[0] = 0;
        return AIOS_OK;
    }
    int64_t rows = aios__hnsw_rows(st->idx);
    if (!st->auto_mode || rows >= 2 * st->tuned_rows) {
        tune_index(&st->t, st->idx, st->efs_fixed, &st->p.hnsw_ef_search, &st->auto_mode);
        st->tuned_rows = rows;
    }
    snprintf(m->index_file, sizeof m->index_file, "hnsw-%06" PRIu64 ".idx", m->next_file++);
    char path[4200];
    path_of(st, m->index_file, path, sizeof path);
    AIOS_TRY(aios__hnsw_save(st->idx, path, &m->index_bytes, &m->index_crc));
    m->index_rows = aios__hnsw_rows(st->idx);
    m->index_m = aios__hnsw_m(st->idx); /* the graph's own: a writer opened with other settings */
    m->index_efc = aios__hnsw_efc(st->idx); /* extends the old graph until `index` rebuilds it */
    m->index_efs = st->p.hnsw_ef_search;
    m->index_auto = st->auto_mode;
    return AIOS_OK;
}

/* Copies the manifest's segment list (without tombstones) into a new manifest. */
static aios_status clone_manifest(const manifest *a, manifest *b, int64_t extra) {
    *b = *a;
    b->segs = calloc((size_t)(a->n_segs + extra + 1), sizeof *b->segs);
    if (!b->segs) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    for (int64_t i = 0; i < a->n_segs; i++) {
        b->segs[i] = a->segs[i];
        b->segs[i].dead = NULL;
        b->segs[i].n_dead = b->segs[i].cap_dead = 0;
    }
    return AIOS_OK;
}

static aios_status fill_tombstones(mseg *g, const mtable *t, int64_t r0) {
    int64_t nd = 0;
    for (int64_t r = 0; r < g->rows; r++) nd += !(t->flags[r0 + r] & MR_LIVE);
    free(g->dead);
    g->dead = NULL;
    g->n_dead = g->cap_dead = 0;
    if (!nd) return AIOS_OK;
    g->dead = malloc((size_t)nd * sizeof *g->dead);
    if (!g->dead) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    for (int64_t r = 0; r < g->rows; r++)
        if (!(t->flags[r0 + r] & MR_LIVE)) g->dead[g->n_dead++] = r;
    g->cap_dead = nd;
    return AIOS_OK;
}

/* Publishes manifest `m` (already holding new files), switches to WAL `new_fd`, and unlinks
 * the files of the old manifest that `m` no longer names. */
/* Undoes what a failed flush/compaction created before its manifest was published: the new
 * segment and index files and the new WAL (the old manifest still names the old ones). */
static void unpublish(aios_store *st, const char *segpath, const char *idxpath, int new_fd, uint64_t wal_gen) {
    if (segpath[0]) unlink(segpath);
    if (idxpath[0]) unlink(idxpath);
    if (new_fd >= 0) {
        char name[64], path[4200];
        close(new_fd);
        wal_name(wal_gen, name, sizeof name);
        path_of(st, name, path, sizeof path);
        unlink(path);
    }
}

static aios_status publish(aios_store *st, manifest *m, int new_fd) {
    AIOS_TRY(aios__manifest_write(st->dir, m));
    manifest old = st->man;
    st->man = *m;
    if (st->wal_fd >= 0) close(st->wal_fd);
    st->wal_fd = new_fd;
    st->wal_size = WAL_HEADER_SIZE;
    st->wal_records = 0;
    st->idx_saved_rows = m->index_file[0] ? m->index_rows : 0;
    st->idx_bad = false;
    char path[4200], name[64];
    wal_name(old.wal_gen, name, sizeof name);
    path_of(st, name, path, sizeof path);
    unlink(path);
    if (old.index_file[0] && strcmp(old.index_file, m->index_file)) {
        path_of(st, old.index_file, path, sizeof path);
        unlink(path);
    }
    for (int64_t i = 0; i < old.n_segs; i++) {
        bool kept = false;
        for (int64_t j = 0; j < m->n_segs && !kept; j++) kept = !strcmp(old.segs[i].file, m->segs[j].file);
        if (!kept) {
            path_of(st, old.segs[i].file, path, sizeof path);
            unlink(path);
        }
    }
    aios__manifest_free(&old);
    aios__fsync_dir(st->dir);
    return AIOS_OK;
}

static aios_status need_writer(aios_store *st) {
    if (!st) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL store");
    if (!st->writer) return aios__err(AIOS_ERR_INVALID_ARG, "memory: %s: the store was opened read-only", st->dir);
    if (st->broken) return aios__err(AIOS_ERR_IO, "memory: %s: an earlier write failed; reopen the store", st->dir);
    return AIOS_OK;
}

static aios_status do_flush(aios_store *st, bool force_index) {
    AIOS_TRY(need_writer(st));
    manifest m;
    int64_t ns = st->man.n_segs, r0 = st->seg_start[ns], r1 = st->t.n;
    AIOS_TRY(clone_manifest(&st->man, &m, 1));
    aios_status s = AIOS_OK;
    char segpath[4200] = "", idxpath[4200] = "";
    int new_fd = -1;
    if (r1 > r0) {
        mseg *g = &m.segs[m.n_segs];
        snprintf(g->file, sizeof g->file, "seg-%06" PRIu64 ".parquet", m.next_file++);
        g->rows = r1 - r0;
        path_of(st, g->file, segpath, sizeof segpath);
        s = aios__seg_write(&st->t, r0, r1, segpath, st->p.compression_level, false, &g->bytes, &g->crc);
        if (!s) m.n_segs++;
    }
    for (int64_t i = 0; !s && i < m.n_segs; i++)
        s = fill_tombstones(&m.segs[i], &st->t, i < ns ? st->seg_start[i] : r0);
    if (!s) s = refresh_index(st, force_index);
    bool idx_changed = st->idx && (aios__hnsw_rows(st->idx) != st->idx_saved_rows || st->idx_bad || !st->man.index_file[0]);
    if (!s && idx_changed) {
        s = save_index(st, &m);
        if (!s) path_of(st, m.index_file, idxpath, sizeof idxpath);
    }
    m.wal_gen = st->man.wal_gen + 1;
    m.version = st->man.version + 1;
    m.dim = st->t.dim;
    if (!s) s = create_wal(st, m.wal_gen, &new_fd);
    if (!s) s = publish(st, &m, new_fd);
    if (s) {
        unpublish(st, segpath, idxpath, new_fd, m.wal_gen);
        aios__manifest_free(&m);
        return aios__err_prefix(s, "%s", "flush");
    }
    if (r1 > r0) {
        int64_t *ss = realloc(st->seg_start, (size_t)(st->man.n_segs + 1) * sizeof *ss);
        if (!ss) {
            st->broken = true;
            return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
        }
        st->seg_start = ss;
        st->seg_start[st->man.n_segs] = r1;
    }
    return AIOS_OK;
}

aios_status aios_store_flush(aios_store *st) { return do_flush(st, false); }
aios_status aios_store_compact(aios_store *st);
aios_status aios_store_build_index(aios_store *st) {
    AIOS_TRY(need_writer(st));
    if (!st->t.dim) return aios__err(AIOS_ERR_INVALID_ARG, "memory: the store has no embeddings to index");
    AIOS_TRY(refresh_index(st, true));
    return do_flush(st, true); /* persists it */
}

void aios_store_close(aios_store *st) {
    if (!st) return;
    if (st->writer && !st->broken) {
        /* persist a grown index (or build one that is due) so the next open need not */
        bool due = st->t.dim && (st->idx ? st->t.n - st->idx_saved_rows >= 1024 : live_embedded(st) >= st->p.hnsw_min_rows);
        if (due || st->wal_records >= st->p.checkpoint_rows) {
            if (do_flush(st, false) != AIOS_OK) aios_log(AIOS_LOG_WARN, "memory: close: %s", aios_last_error());
        }
    }
    reset_state(st);
    aios_buf_free(&st->wbuf);
    if (st->lock_fd >= 0) close(st->lock_fd); /* releases the flock */
    free(st);
}

/* ---- writes ---- */
static aios_status wal_commit(aios_store *st) {
    size_t off = 0;
    while (off < st->wbuf.len) {
        ssize_t w = write(st->wal_fd, st->wbuf.data + off, st->wbuf.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            int e = errno;
            /* undo the partial append so the log stays a sequence of whole records */
            if (ftruncate(st->wal_fd, (off_t)st->wal_size) != 0 || lseek(st->wal_fd, (off_t)st->wal_size, SEEK_SET) < 0)
                st->broken = true;
            return aios__err(AIOS_ERR_IO, "memory: %s: WAL write: %s", st->dir, strerror(e));
        }
        off += (size_t)w;
    }
    if (st->p.sync && fdatasync(st->wal_fd) != 0) {
        st->broken = true; /* after a failed fsync the page cache state is unknown */
        return aios__err(AIOS_ERR_IO, "memory: %s: WAL fsync: %s", st->dir, strerror(errno));
    }
    st->wal_size += st->wbuf.len;
    return AIOS_OK;
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static aios_status check_memory(aios_store *st, const aios_memory *m, int32_t dim) {
    const char *id = m->memory_id;
    if (id && strlen(id) >= AIOS_MEMORY_ID_MAX) return aios__err(AIOS_ERR_INVALID_ARG, "memory: memory_id longer than %d bytes", AIOS_MEMORY_ID_MAX - 1);
    if (m->embedding) {
        if (dim && m->dim != dim) return aios__err(AIOS_ERR_SHAPE, "memory: embedding has %d dimensions, the store has %d", m->dim, dim);
        if (m->dim <= 0 || m->dim > 65536) return aios__err(AIOS_ERR_SHAPE, "memory: embedding dimension %d out of range", m->dim);
        for (int32_t i = 0; i < m->dim; i++)
            if (!isfinite(m->embedding[i])) return aios__err(AIOS_ERR_INVALID_ARG, "memory: embedding[%d] is not finite", i);
    }
    return AIOS_OK;
}

static void new_id(aios_store *st, char *out) {
    do {
        uint64_t z = (st->rng += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        snprintf(out, AIOS_MEMORY_ID_MAX, "mem_%016" PRIx64, z);
    } while (aios__mt_find(&st->t, out, strlen(out)) >= 0);
}

static aios_status maybe_checkpoint(aios_store *st) {
    if (st->wal_records < st->p.checkpoint_rows || st->wal_records < st->ckpt_retry_at) return AIOS_OK;
    aios_status s = do_flush(st, false);
    /* many small segments slow opening and scans: merge them all once there are too many */
    if (!s && st->man.n_segs >= 32) s = aios_store_compact(st);
    if (s != AIOS_OK) {
        /* the writes are safe in the WAL; try again after another checkpoint's worth */
        aios_log(AIOS_LOG_WARN, "memory: checkpoint failed (writes stay safe in the WAL): %s", aios_last_error());
        st->ckpt_retry_at = st->wal_records + st->p.checkpoint_rows;
    } else {
        st->ckpt_retry_at = 0;
    }
    return AIOS_OK;
}

/* Keeps a fully covering index in step with one appended row. */
static void index_follow(aios_store *st) {
    if (st->idx && aios__hnsw_rows(st->idx) == st->t.n - 1) {
        aios__hnsw_set_table(st->idx, &st->t); /* table arrays may have moved */
        if (aios__hnsw_extend(st->idx, 1) != AIOS_OK) aios_log(AIOS_LOG_WARN, "memory: index: %s", aios_last_error());
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

aios_status aios_store_add_batch(aios_store *st, const aios_memory *ms, size_t n, char (*ids)[AIOS_MEMORY_ID_MAX]) {
    AIOS_TRY(need_writer(st));
    if (n == 0) return AIOS_OK;
    if (!ms) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL memories");
    char (*gen)[AIOS_MEMORY_ID_MAX] = malloc(n * sizeof *gen);
    aios_memory *cp = malloc(n * sizeof *cp);
    if (!gen || !cp) {
        free(gen);
        free(cp);
        return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    }
    aios_status s = AIOS_OK;
    int32_t dim = st->t.dim;
    st->wbuf.len = 0;
    for (size_t i = 0; i < n && !s; i++) {
        cp[i] = ms[i];
        s = check_memory(st, &cp[i], dim);
        if (s) break;
        if (!dim && cp[i].embedding) dim = cp[i].dim;
        if (!cp[i].memory_id || !cp[i].memory_id[0]) {
            new_id(st, gen[i]);
            cp[i].memory_id = gen[i];
        } else if (aios__mt_find(&st->t, cp[i].memory_id, strlen(cp[i].memory_id)) >= 0) {
            s = aios__err(AIOS_ERR_EXISTS, "memory: '%s' exists already (use update)", cp[i].memory_id);
            break;
        }
        if (cp[i].timestamp_us == AIOS_TIMESTAMP_NOW) cp[i].timestamp_us = now_us();
        if (!s) s = aios__wal_encode(&st->wbuf, WAL_ADD, &cp[i], NULL);
    }
    if (!s && n > 1) {
        /* one id twice in the batch would make the WAL unreplayable: refuse before writing */
        const char **sorted = malloc(n * sizeof *sorted);
        if (!sorted) s = aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
        for (size_t i = 0; !s && i < n; i++) sorted[i] = cp[i].memory_id;
        if (!s) qsort(sorted, n, sizeof *sorted, cmp_str);
        for (size_t i = 1; !s && i < n; i++)
            if (!strcmp(sorted[i - 1], sorted[i])) s = aios__err(AIOS_ERR_EXISTS, "memory: '%s' appears twice in the batch", sorted[i]);
        free(sorted);
    }
    if (!s) s = wal_commit(st);
    if (!s) {
        int64_t before = st->t.n;
        for (size_t i = 0; i < n && !s; i++) {
            s = aios__mt_append(&st->t, &cp[i]);
            if (s) st->broken = true;
            if (ids) snprintf(ids[i], AIOS_MEMORY_ID_MAX, "%s", cp[i].memory_id);
        }
        st->wal_records += (int64_t)n;
        if (!s && st->idx && aios__hnsw_rows(st->idx) == before) {
            aios__hnsw_set_table(st->idx, &st->t);
            if (aios__hnsw_extend(st->idx, n > 1000 ? n_threads() : 1)) aios_log(AIOS_LOG_WARN, "memory: index: %s", aios_last_error());
        }
    }
    free(gen);
    free(cp);
    if (!s) maybe_checkpoint(st);
    return s;
}

aios_status aios_store_add(aios_store *st, const aios_memory *m, char id_out[AIOS_MEMORY_ID_MAX]) {
    if (!m) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL memory");
    char ids[1][AIOS_MEMORY_ID_MAX];
    AIOS_TRY(aios_store_add_batch(st, m, 1, ids));
    if (id_out) snprintf(id_out, AIOS_MEMORY_ID_MAX, "%s", ids[0]);
    return AIOS_OK;
}

static aios_status embed_text(aios_store *st, const char *text, float **out) {
    *out = NULL;
    if (!st->p.embed) return aios__err(AIOS_ERR_UNSUPPORTED, "memory: no text encoder was given to the store (params.embed)");
    if (!text) return aios__err(AIOS_ERR_INVALID_ARG, "memory: no text to embed");
    if (!st->t.dim) return aios__err(AIOS_ERR_INVALID_ARG, "memory: the store's dimension is not known yet (create it with a dimension)");
    float *v = malloc((size_t)st->t.dim * sizeof *v);
    if (!v) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    aios_status s = st->p.embed(st->p.embed_user, text, v, st->t.dim);
    if (s) {
        free(v);
        return aios__err_prefix(s, "%s", "memory: encoding text");
    }
    *out = v;
    return AIOS_OK;
}

aios_status aios_store_add_text(aios_store *st, const aios_memory *m, char id_out[AIOS_MEMORY_ID_MAX]) {
    AIOS_TRY(need_writer(st));
    if (!m) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL memory");
    float *v;
    AIOS_TRY(embed_text(st, m->content, &v));
    aios_memory c = *m;
    c.embedding = v;
    c.dim = st->t.dim;
    aios_status s = aios_store_add(st, &c, id_out);
    free(v);
    return s;
}

aios_status aios_store_get(aios_store *st, const char *id, aios_memory *out) {
    if (!st || !id || !out) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL argument");
    int64_t r = aios__mt_find(&st->t, id, strlen(id));
    if (r < 0) return aios__err(AIOS_ERR_NOT_FOUND, "memory: no memory '%s'", id);
    aios__mt_row(&st->t, r, out);
    return AIOS_OK;
}

aios_status aios_store_delete(aios_store *st, const char *id) {
    AIOS_TRY(need_writer(st));
    if (!id) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL id");
    int64_t r = aios__mt_find(&st->t, id, strlen(id));
    if (r < 0) return aios__err(AIOS_ERR_NOT_FOUND, "memory: no memory '%s'", id);
    st->wbuf.len = 0;
    AIOS_TRY(aios__wal_encode(&st->wbuf, WAL_DELETE, NULL, id));
    AIOS_TRY(wal_commit(st));
    aios__mt_kill(&st->t, r);
    st->wal_records++;
    return maybe_checkpoint(st);
}

aios_status aios_store_update(aios_store *st, const aios_memory *m) {
    AIOS_TRY(need_writer(st));
    if (!m || !m->memory_id) return aios__err(AIOS_ERR_INVALID_ARG, "memory: update needs a memory_id");
    AIOS_TRY(check_memory(st, m, st->t.dim));
    int64_t r = aios__mt_find(&st->t, m->memory_id, strlen(m->memory_id));
    if (r < 0) return aios__err(AIOS_ERR_NOT_FOUND, "memory: no memory '%s'", m->memory_id);
    aios_memory c = *m;
    if (c.timestamp_us == AIOS_TIMESTAMP_NOW) c.timestamp_us = now_us();
    st->wbuf.len = 0;
    AIOS_TRY(aios__wal_encode(&st->wbuf, WAL_UPDATE, &c, NULL));
    AIOS_TRY(wal_commit(st));
    aios__mt_kill(&st->t, r);
    aios_status s = aios__mt_append(&st->t, &c);
    if (s) {
        st->broken = true;
        return s;
    }
    st->wal_records++;
    index_follow(st);
    return maybe_checkpoint(st);
}

aios_status aios_store_next(aios_store *st, int64_t *cursor, aios_memory *out) {
    if (!st || !cursor || !out) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL argument");
    for (int64_t r = *cursor < 0 ? 0 : *cursor; r < st->t.n; r++)
        if (st->t.flags[r] & MR_LIVE) {
            aios__mt_row(&st->t, r, out);
            *cursor = r + 1;
            return AIOS_OK;
        }
    *cursor = st->t.n;
    return AIOS_ERR_NOT_FOUND;
}

/* ---- search ---- */
static aios_status compile_filter(const aios_store *st, const aios_search_params *p, mfilter *f, bool *none) {
    memset(f, 0, sizeof *f);
    *none = false;
    f->since = p->since_us;
    f->until = p->until_us;
    if (p->category) {
        f->use_cat = 1;
        f->cat = aios__mt_code(&st->t, p->category);
        if (!f->cat) *none = true;
    }
    if (p->source) {
        f->use_src = 1;
        f->src = aios__mt_code(&st->t, p->source);
        if (!f->src) *none = true;
    }
    if (p->min_quality > -INFINITY || isnan(p->min_quality)) {
        f->use_q = 1;
        f->min_quality = p->min_quality;
    }
    return AIOS_OK;
}

aios_status aios_store_search(aios_store *st, const float *query, int32_t dim, const aios_search_params *pp,
                              aios_search_hit *hits, int32_t *n_hits) {
    if (!st || !query || !hits || !n_hits) return aios__err(AIOS_ERR_INVALID_ARG, "memory: search: NULL argument");
    *n_hits = 0;
    aios_search_params p = pp ? *pp : aios_search_default_params();
    if (p.top_k <= 0 || p.top_k > 1000000) return aios__err(AIOS_ERR_INVALID_ARG, "memory: search: top_k %d out of range", p.top_k);
    if (!st->t.dim) return AIOS_OK; /* nothing embedded yet */
    if (dim != st->t.dim) return aios__err(AIOS_ERR_SHAPE, "memory: search: query has %d dimensions, the store has %d", dim, st->t.dim);
    double ss = 0;
    for (int32_t i = 0; i < dim; i++) ss += (double)query[i] * query[i];
    if (!(ss > 0) || !isfinite(ss)) return aios__err(AIOS_ERR_INVALID_ARG, "memory: search: the query vector is zero or not finite");
    float *q = malloc((size_t)dim * sizeof *q);
    mhit *h = malloc((size_t)p.top_k * 2 * sizeof *h);
    if (!q || !h) {
        free(q);
        free(h);
        return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    }
    float inv = (float)(1.0 / sqrt(ss));
    for (int32_t i = 0; i < dim; i++) q[i] = query[i] * inv;
    mfilter f;
    bool none;
    compile_filter(st, &p, &f, &none);
    int32_t n = 0;
    if (!none) {
        int64_t covered = st->idx ? aios__hnsw_rows(st->idx) : 0;
        bool use_idx = st->idx && p.mode != AIOS_SEARCH_EXACT && covered > 0 &&
                       !(p.mode == AIOS_SEARCH_AUTO && st->auto_mode == 2); /* measured: exact is faster */
        bool filtered = f.use_cat || f.use_src || f.use_q || f.since != INT64_MIN || f.until != INT64_MAX;
        if (use_idx && filtered && p.mode == AIOS_SEARCH_AUTO) {
            /* selective filters: the graph would wander far for few admissible nodes, and
             * scanning the few that pass is cheap anyway.  The share that passes is counted
             * on up to 16k rows spread evenly (all of them in smaller tables): counting every
             * row of 1M took 2.8 ms, ten times the graph search itself. */
            int64_t step = covered > 16384 ? covered / 16384 : 1, seen = 0, pass = 0;
            for (int64_t r = 0; r < covered; r += step, seen++) pass += aios__mf_pass(&st->t, &f, r);
            pass = seen ? pass * covered / seen : 0;
            if (pass < covered / 20 || pass < 4 * (int64_t)p.top_k) use_idx = false;
        }
        int nt = p.n_threads > 0 ? p.n_threads : n_threads();
        if (use_idx) {
            int ef = AIOS_MAX(p.ef_search > 0 ? p.ef_search : st->p.hnsw_ef_search, 2 * p.top_k);
            int32_t nh = 0, nt2 = 0;
            aios__hnsw_search(st->idx, q, &f, p.top_k, ef, p.threshold, h, &nh, -1, NULL);
            aios__exact_search(&st->t, q, &f, covered, st->t.n, p.top_k, p.threshold, nt, h + nh, &nt2);
            n = nh + nt2;
            aios__hits_sort(h, n);
            if (n > p.top_k) n = p.top_k;
            if (n < p.top_k && p.mode == AIOS_SEARCH_AUTO) {
                /* the graph could not deliver k admissible hits: make sure k do not exist */
                aios__exact_search(&st->t, q, &f, 0, st->t.n, p.top_k, p.threshold, nt, h, &n);
            }
        } else {
            aios__exact_search(&st->t, q, &f, 0, st->t.n, p.top_k, p.threshold, nt, h, &n);
        }
    }
    for (int32_t i = 0; i < n; i++) {
        aios__mt_row(&st->t, h[i].row, &hits[i].memory);
        hits[i].score = h[i].score;
    }
    *n_hits = n;
    free(q);
    free(h);
    return AIOS_OK;
}

aios_status aios_store_search_text(aios_store *st, const char *text, const aios_search_params *p, aios_search_hit *hits,
                                   int32_t *n_hits) {
    if (!st) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL store");
    float *v;
    AIOS_TRY(embed_text(st, text, &v));
    aios_status s = aios_store_search(st, v, st->t.dim, p, hits, n_hits);
    free(v);
    return s;
}

/* ---- compaction, import, export ---- */
aios_status aios_store_compact(aios_store *st) {
    AIOS_TRY(need_writer(st));
    mtable nt;
    aios__mt_init(&nt, st->t.dim);
    aios_status s = AIOS_OK;
    int64_t *newrow = malloc((size_t)(st->t.n + 1) * sizeof *newrow), dropped = 0;
    if (!newrow) s = aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    for (int64_t r = 0; r < st->t.n && !s; r++) {
        newrow[r] = -1;
        if (!(st->t.flags[r] & MR_LIVE)) {
            dropped++;
            continue;
        }
        aios_memory m;
        aios__mt_row(&st->t, r, &m);
        newrow[r] = nt.n;
        s = aios__mt_append(&nt, &m);
    }
    manifest m;
    memset(&m, 0, sizeof m);
    if (!s) {
        m = st->man;
        m.segs = calloc(1, sizeof *m.segs);
        if (!m.segs) s = aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
        m.n_segs = 0;
    }
    char segpath[4200] = "", idxpath[4200] = "";
    if (!s && nt.n > 0) {
        mseg *g = &m.segs[0];
        snprintf(g->file, sizeof g->file, "seg-%06" PRIu64 ".parquet", m.next_file++);
        g->rows = nt.n;
        path_of(st, g->file, segpath, sizeof segpath);
        s = aios__seg_write(&nt, 0, nt.n, segpath, st->p.compression_level, false, &g->bytes, &g->crc);
        if (!s) m.n_segs = 1;
    }
    hnsw *nidx = NULL;
    m.index_file[0] = 0;
    if (!s && nt.dim && (st->idx || live_embedded(st) >= st->p.hnsw_min_rows)) {
        /* The graph is carried over, renumbered, unless a quarter or more of its rows go (then the
         * two-hop repair would touch most nodes and a rebuild is better): merging segments
         * without deletions costs no distance at all, where a rebuild of 1M rows takes minutes. */
        int64_t covered = st->idx ? aios__hnsw_rows(st->idx) : 0;
        bool carry = st->idx && aios__hnsw_m(st->idx) == st->p.hnsw_m && aios__hnsw_efc(st->idx) == st->p.hnsw_ef_construction &&
                     dropped * 4 < covered;
        if (carry) {
            int64_t fixed = 0;
            s = aios__hnsw_renumber(st->idx, &nt, newrow, n_threads(), &nidx, &fixed);
            if (!s) aios_log(AIOS_LOG_INFO, "memory: compaction kept the index (%lld rows dropped, %lld node lists repaired)",
                             (long long)dropped, (long long)fixed);
        } else {
            s = aios__hnsw_new(&nt, st->p.hnsw_m, st->p.hnsw_ef_construction, st->rng, &nidx);
        }
        if (!s) s = aios__hnsw_extend(nidx, n_threads());
        int efs = st->p.hnsw_ef_search, au = 0;
        if (!s) tune_index(&nt, nidx, st->efs_fixed, &efs, &au);
        if (!s) {
            st->p.hnsw_ef_search = efs;
            st->auto_mode = au;
            st->tuned_rows = aios__hnsw_rows(nidx);
            snprintf(m.index_file, sizeof m.index_file, "hnsw-%06" PRIu64 ".idx", m.next_file++);
            path_of(st, m.index_file, idxpath, sizeof idxpath);
            s = aios__hnsw_save(nidx, idxpath, &m.index_bytes, &m.index_crc);
            m.index_rows = aios__hnsw_rows(nidx);
            m.index_m = aios__hnsw_m(nidx);
            m.index_efc = aios__hnsw_efc(nidx);
            m.index_efs = st->p.hnsw_ef_search;
            m.index_auto = st->auto_mode;
        }
    }
    m.wal_gen = st->man.wal_gen + 1;
    m.version = st->man.version + 1;
    m.dim = st->t.dim;
    int new_fd = -1;
    if (!s) s = create_wal(st, m.wal_gen, &new_fd);
    if (!s) s = publish(st, &m, new_fd);
    if (s) {
        unpublish(st, segpath, idxpath, new_fd, m.wal_gen);
        free(m.segs);
        free(newrow);
        aios__mt_free(&nt);
        aios__hnsw_free(nidx);
        return aios__err_prefix(s, "%s", "compact");
    }
    free(newrow);
    aios__mt_free(&st->t);
    st->t = nt;
    aios__hnsw_free(st->idx);
    st->idx = nidx;
    if (nidx) aios__hnsw_set_table(nidx, &st->t);
    int64_t *ss = realloc(st->seg_start, 2 * sizeof *ss);
    if (!ss) {
        st->broken = true;
        return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    }
    st->seg_start = ss;
    st->seg_start[0] = 0;
    st->seg_start[st->man.n_segs] = st->t.n; /* n_segs is 0 or 1 */
    return AIOS_OK;
}

aios_status aios_store_import(aios_store *st, const char *path, int64_t *n_out) {
    AIOS_TRY(need_writer(st));
    if (n_out) *n_out = 0;
    aios_map map;
    AIOS_TRY(aios__map_file(path, &map));
    mtable in;
    aios__mt_init(&in, 0);
    aios_status s = aios__seg_read(&in, path, &map);
    aios__unmap_file(&map);
    if (!s && in.dim && st->t.dim && in.dim != st->t.dim)
        s = aios__err(AIOS_ERR_SHAPE, "memory: import %s: %d-dimensional embeddings, the store has %d", path, in.dim, st->t.dim);
    /* all or nothing: check every id before writing anything */
    for (int64_t r = 0; r < in.n && !s; r++) {
        uint32_t len;
        const char *id = aios__mt_str(&in, in.id_off[r], &len);
        if (!len) s = aios__err(AIOS_ERR_FORMAT, "memory: import %s: row %lld has no memory_id", path, (long long)r);
        else if (aios__mt_find(&st->t, id, len) >= 0)
            s = aios__err(AIOS_ERR_EXISTS, "memory: import %s: '%s' exists already in the store", path, id);
        else if (aios__mt_find(&in, id, len) != r)
            s = aios__err(AIOS_ERR_FORMAT, "memory: import %s: '%s' appears twice in the file", path, id);
    }
    /* through the WAL in batches, then one checkpoint writes them as a segment */
    const int64_t B = 4096;
    aios_memory *batch = s ? NULL : malloc((size_t)B * sizeof *batch);
    if (!s && !batch) s = aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    for (int64_t r0 = 0; r0 < in.n && !s; r0 += B) {
        int64_t n = AIOS_MIN(B, in.n - r0);
        for (int64_t i = 0; i < n; i++) aios__mt_row(&in, r0 + i, &batch[i]);
        s = aios_store_add_batch(st, batch, (size_t)n, NULL);
    }
    free(batch);
    if (!s && in.n) s = aios_store_flush(st);
    if (!s && n_out) *n_out = in.n;
    aios__mt_free(&in);
    return s;
}

aios_status aios_store_export(aios_store *st, const char *path) {
    if (!st || !path) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL argument");
    uint64_t bytes;
    uint32_t crc;
    return aios__seg_write(&st->t, 0, st->t.n, path, st->p.compression_level, true, &bytes, &crc);
}

const char *aios_store_model(const aios_store *st) { return st ? st->man.model : ""; }
int32_t aios_store_dim(const aios_store *st) { return st ? st->t.dim : 0; }
void aios_store_set_embedder(aios_store *st, aios_embed_fn fn, void *user) {
    if (!st) return;
    st->p.embed = fn;
    st->p.embed_user = user;
}

aios_status aios_store_stats_get(aios_store *st, aios_store_stats *o) {
    if (!st || !o) return aios__err(AIOS_ERR_INVALID_ARG, "memory: NULL argument");
    memset(o, 0, sizeof *o);
    o->live = st->t.n_live;
    o->rows = st->t.n;
    o->tombstones = st->t.n - st->t.n_live;
    o->wal_records = st->wal_records;
    o->segments = st->man.n_segs;
    o->index_rows = aios__hnsw_rows(st->idx);
    o->dim = st->t.dim;
    o->version = st->man.version;
    snprintf(o->model, sizeof o->model, "%s", st->man.model);
    DIR *d = opendir(st->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char p[4200];
            struct stat sb;
            path_of(st, e->d_name, p, sizeof p);
            if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) o->bytes_on_disk += sb.st_size;
        }
        closedir(d);
    }
    return AIOS_OK;
}

/* ---- check ---- */
aios_status aios_store_check(const char *dir, int n_queries, FILE *rep, double *recall) {
    if (recall) *recall = 1.0;
    aios_store_params p = aios_store_default_params();
    p.read_only = 1;
    aios_store *st;
    aios_status s = aios_store_open(dir, &p, &st);
    if (s) {
        if (rep) fprintf(rep, "FAIL: %s\n", aios_last_error());
        return s;
    }
    if (rep) {
        fprintf(rep, "manifest: version %" PRIu64 ", dim %d, model '%s', %lld segments, WAL generation %" PRIu64 "\n",
                st->man.version, st->t.dim, st->man.model, (long long)st->man.n_segs, st->man.wal_gen);
        fprintf(rep, "rows: %lld (%lld live, %lld tombstoned), %lld WAL records; checksums ok\n", (long long)st->t.n,
                (long long)st->t.n_live, (long long)(st->t.n - st->t.n_live), (long long)st->wal_records);
    }
    /* each segment once more as Parquet: every page decoded, page CRCs and statistics checked
     * (open already matched its size and CRC32C against the manifest) */
    for (int64_t i = 0; i < st->man.n_segs; i++) {
        char path[4200];
        path_of(st, st->man.segs[i].file, path, sizeof path);
        aios_parquet_file *pf = NULL;
        s = aios_parquet_open(path, &pf);
        if (!s) s = aios_parquet_verify(pf, NULL);
        aios_parquet_close(pf);
        if (s) {
            if (rep) fprintf(rep, "FAIL: %s\n", aios_last_error());
            aios_store_close(st);
            return s;
        }
    }
    if (rep && st->man.n_segs) fprintf(rep, "segments: %lld Parquet files verified (pages, CRCs, statistics)\n", (long long)st->man.n_segs);
    if (st->idx_bad) {
        s = aios__err(AIOS_ERR_CORRUPT, "%s", st->idx_error);
        if (rep) fprintf(rep, "FAIL: %s\n", st->idx_error);
        aios_store_close(st);
        return s;
    }
    if (st->idx) {
        s = aios__hnsw_validate(st->idx, rep);
        if (s) {
            if (rep) fprintf(rep, "FAIL: %s\n", aios_last_error());
            aios_store_close(st);
            return s;
        }
        /* recall@10 of the graph alone against exact search over the same rows */
        int64_t covered = aios__hnsw_rows(st->idx);
        int32_t k = 10, nq = 0;
        int64_t found = 0, want = 0;
        mhit a[10], b[10];
        mfilter f;
        memset(&f, 0, sizeof f);
        f.since = INT64_MIN;
        f.until = INT64_MAX;
        float *q = malloc((size_t)st->t.dim * sizeof *q);
        uint64_t rng = 12345;
        for (int i = 0; q && i < n_queries * 20 && nq < n_queries; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int64_t r = (int64_t)((rng >> 33) % (uint64_t)covered);
            if (!aios__mf_pass(&st->t, &f, r) || st->t.inv_norm[r] == 0) continue;
            for (int32_t d = 0; d < st->t.dim; d++) q[d] = st->t.emb[(size_t)r * (size_t)st->t.dim + d] * st->t.inv_norm[r];
            int32_t na, nb;
            aios__hnsw_search(st->idx, q, &f, k, AIOS_MAX(st->p.hnsw_ef_search, 2 * k), -2.0f, a, &na, -1, NULL);
            aios__exact_search(&st->t, q, &f, 0, covered, k, -2.0f, n_threads(), b, &nb);
            for (int32_t x = 0; x < nb; x++)
                for (int32_t y = 0; y < na; y++)
                    if (a[y].row == b[x].row) {
                        found++;
                        break;
                    }
            want += nb;
            nq++;
        }
        free(q);
        double rc = want ? (double)found / (double)want : 1.0;
        if (recall) *recall = rc;
        if (rep)
            fprintf(rep, "hnsw: recall@10 %.4f over %d queries (ef_search %d); AUTO searches use %s; %lld rows after the index are searched exactly\n",
                    rc, nq, AIOS_MAX(st->p.hnsw_ef_search, 2 * k), st->auto_mode == 2 ? "exact search (measured faster)" : "the index",
                    (long long)(st->t.n - covered));
    } else if (rep) {
        fprintf(rep, "hnsw: no index (exact search)\n");
    }
    aios_store_close(st);
    if (rep) fprintf(rep, "ok\n");
    return AIOS_OK;
}
