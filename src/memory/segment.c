/*
 * segment.c — memories as Parquet: the seed's ArrowStorage schema, column for column, so that
 * pyarrow, DuckDB or the seed's own Python code open our segments and exports, and we import
 * theirs.
 *
 *   memory_id: string, timestamp: timestamp[us], content: string,
 *   embedding: list<float32>, metadata: struct<category: string, source: string,
 *                                               quality_score: float32>
 *
 * Every field is nullable as in pyarrow's default schema; a null metadata struct and a
 * struct with null fields are told apart through definition levels.  Written zstd-compressed
 * (the seed's choice), one row group per 16k rows, through src/format/parquet.h; the file is
 * fsynced before its size and CRC32C are returned (they go into the manifest).
 * Reading accepts what pyarrow writes: any codec the reader knows, dictionary or plain pages,
 * timestamps in ms/us/ns (converted to us), embeddings as float or double lists.  Extra
 * columns are ignored.  Embedded NUL bytes in strings are rejected (ids and text are C strings
 * here), as are null elements inside an embedding and ragged embedding lengths.
 */
#include "memory/memory_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include "format/parquet.h"

static const aios_pq_field g_fields[] = {
    {.name = "memory_id", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1, .no_dictionary = 1},
    {.name = "timestamp", .parent = -1, .kind = AIOS_PQ_K_TIMESTAMP_US, .nullable = 1},
    {.name = "content", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1},
    {.name = "embedding", .parent = -1, .kind = AIOS_PQ_K_LIST, .nullable = 1},
    {.name = "element", .parent = 3, .kind = AIOS_PQ_K_FLOAT, .nullable = 1},
    {.name = "metadata", .parent = -1, .kind = AIOS_PQ_K_STRUCT, .nullable = 1},
    {.name = "category", .parent = 5, .kind = AIOS_PQ_K_STRING, .nullable = 1},
    {.name = "source", .parent = 5, .kind = AIOS_PQ_K_STRING, .nullable = 1},
    {.name = "quality_score", .parent = 5, .kind = AIOS_PQ_K_FLOAT, .nullable = 1},
};

/* rows per batch and per row group: 16k rows of 384 floats is 25 MB of embeddings, so a reader
 * decoding one row group at a time holds little beside the table itself */
#define BATCH 16384

typedef struct {
    aios_pq_bytes *id, *content, *cat, *src;
    uint8_t *id_v, *content_v, *ts_v, *emb_v;
    int64_t *ts, *offs;
    float *emb, *q;
    int16_t *def_cat, *def_src, *def_q;
    uint8_t *cat_v, *src_v, *q_v;
} wbufs;

static void wb_free(wbufs *b) {
    free(b->id);
    free(b->content);
    free(b->cat);
    free(b->src);
    free(b->id_v);
    free(b->content_v);
    free(b->ts_v);
    free(b->emb_v);
    free(b->ts);
    free(b->offs);
    free(b->emb);
    free(b->q);
    free(b->def_cat);
    free(b->def_src);
    free(b->def_q);
    free(b->cat_v);
    free(b->src_v);
    free(b->q_v);
}

static aios_pq_bytes str_bytes(const char *s) {
    aios_pq_bytes b = {(const uint8_t *)s, s ? strlen(s) : 0};
    return b;
}

aios_status aios__seg_write(const mtable *t, int64_t r0, int64_t r1, const char *path, int level, bool live_only,
                            uint64_t *bytes_out, uint32_t *crc_out) {
    aios_pq_writer_params wp = aios_pq_writer_default_params();
    wp.codec = AIOS_PQ_ZSTD;
    wp.level = level;
    wp.row_group_rows = BATCH;
    aios_pq_writer *w;
    AIOS_TRY(aios_pq_writer_open(path, g_fields, (int)AIOS_ARRAY_LEN(g_fields), &wp, &w));
    aios_status s = aios_pq_writer_set_kv(w, "aios.memory.format", "1");
    wbufs b;
    memset(&b, 0, sizeof b);
    size_t B = BATCH, dim = (size_t)(t->dim > 0 ? t->dim : 0);
    b.id = malloc(B * sizeof *b.id);
    b.content = malloc(B * sizeof *b.content);
    b.cat = malloc(B * sizeof *b.cat);
    b.src = malloc(B * sizeof *b.src);
    b.id_v = malloc(B);
    b.content_v = malloc(B);
    b.ts_v = malloc(B);
    b.emb_v = malloc(B);
    b.ts = malloc(B * sizeof *b.ts);
    b.offs = malloc((B + 1) * sizeof *b.offs);
    b.emb = malloc((B * dim + 1) * sizeof *b.emb);
    b.q = malloc(B * sizeof *b.q);
    b.def_cat = malloc(B * sizeof(int16_t));
    b.def_src = malloc(B * sizeof(int16_t));
    b.def_q = malloc(B * sizeof(int16_t));
    b.cat_v = malloc(B);
    b.src_v = malloc(B);
    b.q_v = malloc(B);
    if (!s && (!b.id || !b.content || !b.cat || !b.src || !b.id_v || !b.content_v || !b.ts_v || !b.emb_v || !b.ts ||
               !b.offs || !b.emb || !b.q || !b.def_cat || !b.def_src || !b.def_q || !b.cat_v || !b.src_v || !b.q_v))
        s = aios__err(AIOS_ERR_NOMEM, "memory: out of memory writing %s", path);
    int64_t r = r0;
    while (!s && r < r1) {
        int64_t n = 0;
        b.offs[0] = 0;
        for (; r < r1 && n < (int64_t)B; r++) {
            if (live_only && !(t->flags[r] & MR_LIVE)) continue;
            aios_memory m;
            aios__mt_row(t, r, &m);
            b.id[n] = str_bytes(m.memory_id);
            b.id_v[n] = 1;
            b.ts[n] = m.timestamp_us;
            b.ts_v[n] = 1;
            b.content[n] = str_bytes(m.content);
            b.content_v[n] = m.content != NULL;
            b.emb_v[n] = m.embedding != NULL;
            b.offs[n + 1] = b.offs[n];
            if (m.embedding) {
                memcpy(b.emb + b.offs[n], m.embedding, dim * sizeof(float));
                b.offs[n + 1] += (int64_t)dim;
            }
            /* metadata leaves: def 0 = struct null, 1 = field null, 2 = value */
            int16_t base = m.has_metadata ? 1 : 0;
            b.cat[n] = str_bytes(m.category);
            b.cat_v[n] = m.has_metadata && m.category;
            b.def_cat[n] = (int16_t)(base + b.cat_v[n]);
            b.src[n] = str_bytes(m.source);
            b.src_v[n] = m.has_metadata && m.source;
            b.def_src[n] = (int16_t)(base + b.src_v[n]);
            b.q[n] = m.quality_score;
            b.q_v[n] = m.has_metadata && m.has_quality;
            b.def_q[n] = (int16_t)(base + b.q_v[n]);
            if (!b.cat_v[n]) b.cat[n] = (aios_pq_bytes){NULL, 0};
            if (!b.src_v[n]) b.src[n] = (aios_pq_bytes){NULL, 0};
            if (!b.content_v[n]) b.content[n] = (aios_pq_bytes){NULL, 0};
            if (!b.q_v[n]) b.q[n] = 0;
            n++;
        }
        if (n == 0) break;
        aios_pq_batch x;
        memset(&x, 0, sizeof x);
        x.num_rows = n;
        x.bytes = b.id;
        x.valid = b.id_v;
        s = aios_pq_writer_write(w, 0, &x);
        memset(&x, 0, sizeof x);
        x.num_rows = n;
        x.values = b.ts;
        x.valid = b.ts_v;
        if (!s) s = aios_pq_writer_write(w, 1, &x);
        memset(&x, 0, sizeof x);
        x.num_rows = n;
        x.bytes = b.content;
        x.valid = b.content_v;
        if (!s) s = aios_pq_writer_write(w, 2, &x);
        memset(&x, 0, sizeof x);
        x.num_rows = n;
        x.offsets = b.offs;
        x.row_valid = b.emb_v;
        x.values = b.emb;
        if (!s) s = aios_pq_writer_write(w, 3, &x);
        memset(&x, 0, sizeof x);
        x.num_rows = n;
        x.num_levels = n;
        x.def = b.def_cat;
        x.bytes = b.cat;
        x.valid = b.cat_v;
        if (!s) s = aios_pq_writer_write(w, 4, &x);
        x.def = b.def_src;
        x.bytes = b.src;
        x.valid = b.src_v;
        if (!s) s = aios_pq_writer_write(w, 5, &x);
        x.def = b.def_q;
        x.bytes = NULL;
        x.values = b.q;
        x.valid = b.q_v;
        if (!s) s = aios_pq_writer_write(w, 6, &x);
        if (!s) s = aios_pq_writer_end_batch(w, n);
    }
    wb_free(&b);
    if (s) {
        aios_pq_writer_abort(w);
        return aios__err_prefix(s, "memory: writing %s", path);
    }
    AIOS_TRY(aios_pq_writer_close(w));
    /* fsync, then size and checksum from what is on disk */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return aios__err(AIOS_ERR_IO, "memory: %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) return aios__err(AIOS_ERR_IO, "memory: %s: fsync: %s", path, strerror(errno));
    aios_map m;
    AIOS_TRY(aios__map_file(path, &m));
    *bytes_out = m.size;
    *crc_out = aios__crc32c(0, m.data, m.size);
    aios__unmap_file(&m);
    return AIOS_OK;
}

/* ---- reading ---- */
static aios_status read_leaf(aios_parquet_file *pf, int rg, const char *path, const char *file, aios_pq_column *col, bool required) {
    memset(col, 0, sizeof *col);
    int leaf = aios_pq_find_leaf(pf, path);
    if (leaf < 0) {
        if (!required) return AIOS_ERR_NOT_FOUND;
        return aios__err(AIOS_ERR_FORMAT, "memory: %s: no '%s' column (not a memories file)", file, path);
    }
    aios_status s = aios_pq_read_column(pf, rg, leaf, col);
    if (s) return aios__err_prefix(s, "memory: %s", file);
    return AIOS_OK;
}

/* Appends row r's string of column c to sb, NUL-terminated; *off = its offset in sb, SIZE_MAX
 * when the value is null.  One growing buffer per row group instead of a malloc per string. */
static aios_status put_str(const aios_pq_column *c, int64_t r, const char *file, const char *what, aios_buf *sb, size_t *off) {
    *off = SIZE_MAX;
    if (c->valid && !c->valid[r]) return AIOS_OK;
    const aios_pq_bytes *b = &c->bytes[r];
    if (b->len && memchr(b->ptr, 0, b->len))
        return aios__err(AIOS_ERR_FORMAT, "memory: %s: row %lld: %s contains a NUL byte", file, (long long)r, what);
    *off = sb->len;
    AIOS_TRY(aios_buf_append(sb, b->ptr, b->len));
    return aios_buf_append(sb, "", 1);
}
static const char *str_of(const aios_buf *sb, size_t off) { return off == SIZE_MAX ? NULL : (const char *)sb->data + off; }

static bool is_bytes(const aios_pq_column *c) { return c->type == AIOS_PQ_BYTE_ARRAY && c->max_rep == 0; }

/* The columns of one row group, decoded (by any thread) and checked for shape; appended to the
 * table afterwards, in row-group order, by the loading thread. */
typedef struct {
    aios_pq_column id, ts, ct, em, cat, src, q;
    bool has_ts, has_ct, has_em, has_cat, has_src, has_q;
    int64_t n, ts_mul, ts_div;
    aios_status s;
    char *err; /* the decoding thread's message for s */
} rgcols;

static void rg_free(rgcols *c) {
    aios_pq_column_free(&c->id);
    aios_pq_column_free(&c->ts);
    aios_pq_column_free(&c->ct);
    aios_pq_column_free(&c->em);
    aios_pq_column_free(&c->cat);
    aios_pq_column_free(&c->src);
    aios_pq_column_free(&c->q);
    free(c->err);
    memset(c, 0, sizeof *c);
}

/* Reads an optional leaf: true when present, false when absent or on error (then *s is set). */
static bool opt_leaf(aios_parquet_file *pf, int rg, const char *path, const char *file, aios_pq_column *col,
                     aios_status *s) {
    if (*s) return false;
    aios_status x = read_leaf(pf, rg, path, file, col, false);
    if (x && x != AIOS_ERR_NOT_FOUND) *s = x;
    return !x;
}

static aios_status rg_decode_(aios_parquet_file *pf, int rg, const char *file, rgcols *c) {
    int64_t n = c->n = aios_pq_row_group_num_rows(pf, rg);
    aios_status s = read_leaf(pf, rg, "memory_id", file, &c->id, true);
    c->has_ts = opt_leaf(pf, rg, "timestamp", file, &c->ts, &s);
    c->has_ct = opt_leaf(pf, rg, "content", file, &c->ct, &s);
    c->has_em = opt_leaf(pf, rg, "embedding", file, &c->em, &s);
    c->has_cat = opt_leaf(pf, rg, "metadata.category", file, &c->cat, &s);
    c->has_src = opt_leaf(pf, rg, "metadata.source", file, &c->src, &s);
    c->has_q = opt_leaf(pf, rg, "metadata.quality_score", file, &c->q, &s);
    if (s) return s;
    /* shapes: every column one entry per row, of the expected types */
    if (!is_bytes(&c->id) || c->id.num_rows != n)
        return aios__err(AIOS_ERR_FORMAT, "memory: %s: memory_id is not a string column", file);
    c->ts_mul = c->ts_div = 1;
    if (c->has_ts) {
        const aios_pq_node *nd = c->ts.node;
        if (c->ts.type != AIOS_PQ_INT64 || c->ts.max_rep != 0 || c->ts.num_rows != n)
            return aios__err(AIOS_ERR_FORMAT, "memory: %s: timestamp is not an int64 timestamp column", file);
        if (nd->logical == AIOS_PQ_L_TIMESTAMP && nd->unit == AIOS_PQ_MILLIS) c->ts_mul = 1000;
        else if (nd->logical == AIOS_PQ_L_TIMESTAMP && nd->unit == AIOS_PQ_NANOS) c->ts_div = 1000;
    }
    if (c->has_ct && (!is_bytes(&c->ct) || c->ct.num_rows != n))
        return aios__err(AIOS_ERR_FORMAT, "memory: %s: content is not a string column", file);
    const aios_pq_column *em = &c->em;
    if (c->has_em && (em->max_rep != 1 || !em->offsets || em->num_rows != n || (em->type != AIOS_PQ_FLOAT && em->type != AIOS_PQ_DOUBLE)))
        return aios__err(AIOS_ERR_FORMAT, "memory: %s: embedding is not a list of float", file);
    if (c->has_cat && (!is_bytes(&c->cat) || c->cat.num_rows != n))
        return aios__err(AIOS_ERR_FORMAT, "memory: %s: metadata.category is not a string column", file);
    if (c->has_src && (!is_bytes(&c->src) || c->src.num_rows != n))
        return aios__err(AIOS_ERR_FORMAT, "memory: %s: metadata.source is not a string column", file);
    if (c->has_q && (c->q.type != AIOS_PQ_FLOAT || c->q.max_rep != 0 || c->q.num_rows != n))
        return aios__err(AIOS_ERR_FORMAT, "memory: %s: metadata.quality_score is not a float column", file);
    return AIOS_OK;
}
static void rg_decode(aios_parquet_file *pf, int rg, const char *file, rgcols *c) {
    c->s = rg_decode_(pf, rg, file, c);
    if (c->s) c->err = strdup(aios_last_error()); /* the message is per thread */
}

static aios_status rg_append(mtable *t, const rgcols *c, const char *file, int16_t meta_def) {
    aios_status s = AIOS_OK;
    const aios_pq_column *ts = &c->ts, *em = &c->em, *q = &c->q;
    float *vec = NULL;
    aios_buf sb = {0};
    for (int64_t r = 0; r < c->n && !s; r++) {
        aios_memory m;
        memset(&m, 0, sizeof m);
        size_t oid = SIZE_MAX, oc = SIZE_MAX, ocat = SIZE_MAX, osrc = SIZE_MAX;
        sb.len = 0;
        s = put_str(&c->id, r, file, "memory_id", &sb, &oid);
        if (!s && oid == SIZE_MAX) s = aios__err(AIOS_ERR_FORMAT, "memory: %s: row %lld: memory_id is null", file, (long long)r);
        if (!s && c->has_ts) {
            if (ts->valid && !ts->valid[r]) s = aios__err(AIOS_ERR_FORMAT, "memory: %s: row %lld: timestamp is null", file, (long long)r);
            else {
                int64_t v = ((const int64_t *)ts->values)[r];
                if (c->ts_mul > 1 && __builtin_mul_overflow(v, c->ts_mul, &v))
                    s = aios__err(AIOS_ERR_RANGE, "memory: %s: row %lld: timestamp out of range", file, (long long)r);
                m.timestamp_us = v / c->ts_div;
            }
        }
        if (!s && c->has_ct) s = put_str(&c->ct, r, file, "content", &sb, &oc);
        if (!s && c->has_em && (!em->row_valid || em->row_valid[r])) {
            int64_t a = em->offsets[r], b = em->offsets[r + 1];
            int64_t len = b - a;
            if (a < 0 || b < a || b > em->num_slots || len > 65536 || len == 0)
                s = aios__err(AIOS_ERR_FORMAT, "memory: %s: row %lld: embedding of %lld values", file, (long long)r, (long long)len);
            else if (t->dim && len != t->dim)
                s = aios__err(AIOS_ERR_SHAPE, "memory: %s: row %lld: embedding has %lld values, expected %d", file, (long long)r,
                              (long long)len, t->dim);
            if (!s && em->type == AIOS_PQ_FLOAT && !em->valid) {
                m.embedding = (const float *)em->values + a; /* no nulls anywhere: used in place */
            } else if (!s) {
                if (!vec && !(vec = malloc((size_t)len * sizeof *vec))) s = aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
                for (int64_t i = a; i < b && !s; i++) {
                    if (em->valid && !em->valid[i])
                        s = aios__err(AIOS_ERR_FORMAT, "memory: %s: row %lld: null inside the embedding", file, (long long)r);
                    else
                        vec[i - a] = em->type == AIOS_PQ_FLOAT ? ((const float *)em->values)[i] : (float)((const double *)em->values)[i];
                }
                m.embedding = vec;
            }
            m.dim = (int32_t)len;
        }
        if (!s && meta_def >= 0) {
            /* the struct is present when any of its leaves reaches the struct's def level */
            const aios_pq_column *any = c->has_cat ? &c->cat : c->has_src ? &c->src : c->has_q ? q : NULL;
            m.has_metadata = any && (!any->def || any->def[r] >= meta_def);
            if (m.has_metadata) {
                if (c->has_cat) s = put_str(&c->cat, r, file, "category", &sb, &ocat);
                if (!s && c->has_src) s = put_str(&c->src, r, file, "source", &sb, &osrc);
                if (!s && c->has_q && (!q->valid || q->valid[r])) {
                    m.has_quality = 1;
                    m.quality_score = ((const float *)q->values)[r];
                }
            }
        }
        if (s) break;
        m.memory_id = str_of(&sb, oid); /* after every append: the buffer may have moved */
        m.content = str_of(&sb, oc);
        m.category = str_of(&sb, ocat);
        m.source = str_of(&sb, osrc);
        s = aios__mt_append(t, &m);
    }
    free(vec);
    aios_buf_free(&sb);
    return s;
}

/* End (exclusive) of row group rg's column chunks in the file. */
static uint64_t rg_end(const aios_parquet_file *pf, int rg) {
    uint64_t end = 0;
    for (int l = 0; l < aios_pq_num_leaves(pf); l++) {
        const aios_pq_chunk_info *ci = aios_pq_chunk(pf, rg, l);
        uint64_t e = ci ? aios_pq_chunk_start(ci) + (uint64_t)ci->total_compressed_size : 0; /* checked at open */
        if (e > end) end = e;
    }
    return end;
}

/* Row groups are decoded in parallel, a batch of up to 8 at a time (each holds its decoded
 * columns: ~60 MB for 16k rows of 384 floats), and appended in order by this thread.  Pages of
 * a mapped segment already appended are released behind the read (MADV_DONTNEED: they stay in
 * the page cache, but no longer count in this process's resident memory), so loading a large
 * segment does not hold the file and the table at once. */
aios_status aios__seg_read(mtable *t, const char *file, const aios_map *map) {
    aios_parquet_file *pf;
    aios_status s = aios_parquet_open_memory(map->data, map->size, &pf);
    if (s) return aios__err_prefix(s, "memory: %s", file);
    if (aios_pq_find_leaf(pf, "memory_id") < 0)
        s = aios__err(AIOS_ERR_FORMAT, "memory: %s: no 'memory_id' column (not a memories file)", file);
    int16_t meta_def = -1;
    int mn = aios_pq_find_node(pf, "metadata");
    if (mn >= 0) meta_def = aios_pq_node_at(pf, mn)->def_level;
    int n_rg = aios_pq_num_row_groups(pf);
    int nt = aios_cpu()->n_cores;
    nt = nt < 1 ? 1 : nt > 8 ? 8 : nt;
    if (nt > n_rg) nt = n_rg > 0 ? n_rg : 1;
    rgcols *b = calloc((size_t)nt, sizeof *b);
    if (!b && !s) s = aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
    size_t released = 0;
    for (int rg0 = 0; !s && rg0 < n_rg; rg0 += nt) {
        int m = AIOS_MIN(nt, n_rg - rg0);
#pragma omp parallel for num_threads(m) schedule(static, 1) if (m > 1)
        for (int i = 0; i < m; i++) rg_decode(pf, rg0 + i, file, &b[i]);
        for (int i = 0; i < m; i++) {
            if (!s && b[i].s) s = aios__err(b[i].s, "%s", b[i].err ? b[i].err : "memory: segment read failed");
            if (!s) s = rg_append(t, &b[i], file, meta_def);
            rg_free(&b[i]);
        }
        if (!s) { /* the row groups read so far are copied into the table */
            uint64_t end = rg_end(pf, rg0 + m - 1);
            if (end > released && end <= map->size) {
                aios__map_release(map, released, (size_t)end);
                released = (size_t)end;
            }
        }
    }
    free(b);
    aios_parquet_close(pf);
    return s;
}
