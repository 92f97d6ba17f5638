/*
 * parquet_write.c — the Parquet writer: schema from a flat field list, batches of rows
 * appended column-wise, pages (v1 or v2) compressed with zstd / snappy / gzip / none,
 * dictionary encoding for strings while the dictionary stays small, chunk statistics,
 * several row groups, key-value metadata, and "aligned" binary columns whose values can be
 * used in place from a mapping.
 *
 * Data flow per leaf: a batch (row form or level form) is normalised into def/rep levels
 * plus spaced values; each level entry appends its levels to the current page and, when
 * defined, its value (PLAIN bytes, or a dictionary index); pages are cut at row boundaries
 * once they reach params.page_bytes, encoded (levels RLE, values), compressed and appended
 * to the leaf's chunk buffer.  A row group is written when it reaches row_group_rows rows or
 * row_group_bytes encoded bytes, so memory stays around one row group of compressed pages.
 *
 * Dictionary: a hash table of the distinct strings (open addressing).  A leaf falls back to
 * PLAIN for the rest of the chunk when the dictionary passes dictionary_max_bytes or, after
 * the first 4096 values, holds more than half as many entries as values (unique ids).  The
 * dictionary page is written before the data pages when the chunk is flushed.
 *
 * Aligned binary columns (the weights' `data`): uncompressed PLAIN, one value per page, and
 * each page header padded with an unknown Thrift field (readers skip unknown fields, as the
 * protocol requires) so the value's first byte lands on a multiple of params.align in the
 * file.  Pages for these leaves are produced at flush time, when file offsets are known.
 *
 * References: parquet-format parquet.thrift (FileMetaData, PageHeader, Statistics,
 * ColumnOrder), Encodings.md (RLE hybrid, PLAIN, RLE_DICTIONARY).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "format/parquet_internal.h"

typedef struct {
    int64_t offset;            /* chunk start (dictionary page or first data page) */
    int64_t data_page_offset;
    int64_t dict_page_offset;  /* -1 none */
    int64_t num_values;
    int64_t total_uncompressed, total_compressed;
    uint32_t encodings;
    aios_pq_codec codec;
    int has_minmax;
    uint8_t *min, *max;        /* owned */
    size_t min_len, max_len;
    int64_t null_count;
} chunk_meta;

typedef struct {
    int64_t num_rows, total_byte_size, file_offset, total_compressed;
    chunk_meta *cols;
} rg_meta;

typedef struct {
    int node;
    aios_pq_type type;
    size_t es;                 /* fixed value size (0 byte arrays, 1 bool) */
    int16_t max_def, max_rep, slot_def;
    int16_t null_def;          /* row form, max_rep 0: def of a null row */
    int16_t list_null_def;     /* row form, max_rep 1: def of a null list (-1: lists not nullable) */
    int16_t empty_def;         /* row form, max_rep 1: def of an empty list */
    int16_t elem_null_def;     /* row form, max_rep 1: def of a null element (-1: not nullable) */
    int aligned, dict_ok;
    aios_pq_codec codec;
    /* current page */
    aios_buf defs, reps;       /* int16 levels */
    aios_buf vals;             /* PLAIN bytes, bool bytes, or uint32 dictionary indices */
    int64_t page_levels, page_values, page_rows, page_nulls;
    int page_dict;             /* current page values are dictionary indices */
    /* chunk */
    aios_buf chunk;            /* encoded data pages */
    int64_t chunk_levels, chunk_nulls, chunk_uncompressed;
    uint32_t chunk_enc;
    /* dictionary */
    int dict_active;           /* still adding to the dictionary */
    int dict_used;             /* some page of this chunk is dictionary-encoded */
    aios_buf dict_data;        /* PLAIN-encoded dictionary entries */
    uint32_t *dict_off;        /* (dict_n) offset of entry i in dict_data */
    int64_t dict_n, dict_cap;
    uint32_t *ht;              /* hash slots: entry index + 1, 0 empty */
    int64_t ht_cap;
    int64_t values_seen;
    /* statistics */
    int st_has, st_ok;
    union { int64_t i; double d; } st_min, st_max;
    aios_buf st_bmin, st_bmax;
    /* aligned: raw values of the row group */
    aios_buf al_vals;          /* concatenated bytes */
    aios_buf al_lens;          /* int64 lengths, -1 null */
    /* normalisation scratch */
    int16_t *tdef, *trep;
    int64_t tcap;
    int batch_rows_ok;
    int64_t batch_rows;
} wleaf;

struct aios_pq_writer {
    FILE *f;
    char *path;
    int64_t pos;
    aios_pq_writer_params p;
    int n_nodes;
    aios_pq_node *nodes;
    int *child_idx;
    int n_leaves;
    wleaf *leaves;
    int64_t rg_rows;
    int n_rg, cap_rg;
    rg_meta *rgs;
    int64_t total_rows;
    int n_kv;
    char **kv;
    void *cctx;
    int failed;
    aios_buf page;             /* scratch: uncompressed page */
    aios_buf cpage;            /* scratch: compressed page */
    aios_buf hdr;              /* scratch: page header */
};

aios_pq_writer_params aios_pq_writer_default_params(void) {
    aios_pq_writer_params p;
    memset(&p, 0, sizeof p);
    p.codec = AIOS_PQ_ZSTD;
    p.level = 0;
    p.row_group_rows = 1 << 20;
    p.row_group_bytes = 64ll << 20;
    p.page_bytes = 1 << 20;
    p.dictionary = 1;
    p.dictionary_max_bytes = 1 << 20;
    p.statistics = 1;
    p.page_crc = 1;
    p.data_page_v2 = 0;
    p.align = 64;
    p.created_by = NULL;
    return p;
}

/* ---- schema ---- */

static char *wdup(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static aios_status add_node(aios_pq_writer *w, int parent, const char *name, aios_pq_repetition rep, int *out) {
    int i = w->n_nodes++;
    aios_pq_node *n = &w->nodes[i];
    memset(n, 0, sizeof *n);
    n->index = i;
    n->parent = parent;
    n->repetition = rep;
    n->leaf = -1;
    n->converted_type = -1;
    n->name = wdup(name);
    if (parent < 0) {
        n->path = wdup("");
    } else {
        const char *pp = w->nodes[parent].path;
        size_t lp = strlen(pp), ln = strlen(name);
        char *s = malloc(lp + ln + 2);
        if (s) {
            if (lp) snprintf(s, lp + ln + 2, "%s.%s", pp, name);
            else memcpy(s, name, ln + 1);
        }
        n->path = s;
        n->def_level = (int16_t)(w->nodes[parent].def_level + (rep != AIOS_PQ_REQUIRED));
        n->rep_level = (int16_t)(w->nodes[parent].rep_level + (rep == AIOS_PQ_REPEATED));
        w->nodes[parent].n_children++;
    }
    if (!n->name || !n->path) return aios__err(AIOS_ERR_NOMEM, "parquet writer: schema");
    *out = i;
    return AIOS_OK;
}

static aios_status build_field(aios_pq_writer *w, const aios_pq_field *f, int nf, int fi, int parent_node, int depth) {
    const aios_pq_field *x = &f[fi];
    if (depth > 32) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: fields nested too deep");
    if (!x->name || !*x->name) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: field %d has no name", fi);
    aios_pq_repetition rep = x->nullable ? AIOS_PQ_OPTIONAL : AIOS_PQ_REQUIRED;
    int nchild = 0, first_child = -1;
    for (int k = fi + 1; k < nf; k++)
        if (f[k].parent == fi) {
            nchild++;
            if (first_child < 0) first_child = k;
        }
    int id;
    AIOS_TRY(add_node(w, parent_node, x->name, rep, &id));
    aios_pq_node *n = &w->nodes[id];
    switch (x->kind) {
    case AIOS_PQ_K_LIST: {
        if (nchild != 1) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: LIST field '%s' needs exactly one child", x->name);
        n->logical = AIOS_PQ_L_LIST;
        n->converted_type = 3;
        int lid;
        AIOS_TRY(add_node(w, id, "list", AIOS_PQ_REPEATED, &lid));
        return build_field(w, f, nf, first_child, lid, depth + 1);
    }
    case AIOS_PQ_K_STRUCT:
        if (nchild < 1) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: STRUCT field '%s' has no children", x->name);
        for (int k = fi + 1; k < nf; k++)
            if (f[k].parent == fi) AIOS_TRY(build_field(w, f, nf, k, id, depth + 1));
        return AIOS_OK;
    default:
        break;
    }
    if (nchild) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: scalar field '%s' has children", x->name);
    n->is_leaf = 1;
    n->leaf = w->n_leaves++;
    switch (x->kind) {
    case AIOS_PQ_K_BOOL: n->type = AIOS_PQ_BOOLEAN; break;
    case AIOS_PQ_K_INT32: n->type = AIOS_PQ_INT32; break;
    case AIOS_PQ_K_INT64: n->type = AIOS_PQ_INT64; break;
    case AIOS_PQ_K_FLOAT: n->type = AIOS_PQ_FLOAT; break;
    case AIOS_PQ_K_DOUBLE: n->type = AIOS_PQ_DOUBLE; break;
    case AIOS_PQ_K_STRING: n->type = AIOS_PQ_BYTE_ARRAY; n->logical = AIOS_PQ_L_STRING; n->converted_type = 0; break;
    case AIOS_PQ_K_BINARY: n->type = AIOS_PQ_BYTE_ARRAY; break;
    case AIOS_PQ_K_FIXED:
        if (x->type_length <= 0) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: FIXED field '%s' needs type_length > 0", x->name);
        n->type = AIOS_PQ_FIXED_LEN_BYTE_ARRAY;
        n->type_length = x->type_length;
        break;
    case AIOS_PQ_K_TIMESTAMP_MS: case AIOS_PQ_K_TIMESTAMP_US: case AIOS_PQ_K_TIMESTAMP_NS:
        n->type = AIOS_PQ_INT64;
        n->logical = AIOS_PQ_L_TIMESTAMP;
        n->unit = (aios_pq_time_unit)(x->kind - AIOS_PQ_K_TIMESTAMP_MS);
        n->utc = 0;
        break;
    default:
        return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: field '%s' has unknown kind %d", x->name, (int)x->kind);
    }
    if (x->plain_aligned && n->type != AIOS_PQ_BYTE_ARRAY)
        return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: plain_aligned needs a STRING/BINARY field ('%s')", x->name);
    return AIOS_OK;
}

static size_t type_size(const aios_pq_node *n) {
    switch (n->type) {
    case AIOS_PQ_BOOLEAN: return 1;
    case AIOS_PQ_INT32: case AIOS_PQ_FLOAT: return 4;
    case AIOS_PQ_INT64: case AIOS_PQ_DOUBLE: return 8;
    case AIOS_PQ_FIXED_LEN_BYTE_ARRAY: return (size_t)n->type_length;
    default: return 0;
    }
}

static void leaf_free(wleaf *L) {
    aios_buf_free(&L->defs);
    aios_buf_free(&L->reps);
    aios_buf_free(&L->vals);
    aios_buf_free(&L->chunk);
    aios_buf_free(&L->dict_data);
    free(L->dict_off);
    free(L->ht);
    aios_buf_free(&L->st_bmin);
    aios_buf_free(&L->st_bmax);
    aios_buf_free(&L->al_vals);
    aios_buf_free(&L->al_lens);
    free(L->tdef);
    free(L->trep);
}

static void writer_free(aios_pq_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    for (int i = 0; i < w->n_nodes; i++) {
        free((void *)w->nodes[i].name);
        free((void *)w->nodes[i].path);
    }
    free(w->nodes);
    free(w->child_idx);
    if (w->leaves)
        for (int i = 0; i < w->n_leaves; i++) leaf_free(&w->leaves[i]);
    free(w->leaves);
    for (int r = 0; r < w->n_rg; r++) {
        if (w->rgs[r].cols)
            for (int i = 0; i < w->n_leaves; i++) {
                free(w->rgs[r].cols[i].min);
                free(w->rgs[r].cols[i].max);
            }
        free(w->rgs[r].cols);
    }
    free(w->rgs);
    for (int i = 0; i < 2 * w->n_kv; i++) free(w->kv[i]);
    free(w->kv);
    if (w->cctx) aios__pq_free_cctx(w->cctx);
    aios_buf_free(&w->page);
    aios_buf_free(&w->cpage);
    aios_buf_free(&w->hdr);
    free(w->path);
    free(w);
}

static aios_status write_bytes(aios_pq_writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->failed = 1;
        return aios__err(AIOS_ERR_IO, "parquet writer: %s: write failed: %s", w->path, strerror(errno));
    }
    w->pos += (int64_t)n;
    return AIOS_OK;
}

aios_status aios_pq_writer_open(const char *path, const aios_pq_field *fields, int n_fields,
                                const aios_pq_writer_params *params, aios_pq_writer **out) {
    if (!out || !path || (!fields && n_fields)) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: NULL argument");
    *out = NULL;
    if (n_fields < 1 || n_fields > 100000) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: %d fields", n_fields);
    aios_pq_writer *w = calloc(1, sizeof *w);
    if (!w) return aios__err(AIOS_ERR_NOMEM, "parquet writer");
    w->p = params ? *params : aios_pq_writer_default_params();
    aios_status s = AIOS_OK;
    if (w->p.codec != AIOS_PQ_UNCOMPRESSED && w->p.codec != AIOS_PQ_SNAPPY && w->p.codec != AIOS_PQ_GZIP && w->p.codec != AIOS_PQ_ZSTD)
        s = aios__err(AIOS_ERR_UNSUPPORTED, "parquet writer: codec %s cannot be written", aios_pq_codec_name(w->p.codec));
    if (w->p.row_group_rows <= 0) w->p.row_group_rows = 1 << 20;
    if (w->p.row_group_bytes <= 0) w->p.row_group_bytes = 64ll << 20;
    if (w->p.page_bytes <= 0) w->p.page_bytes = 1 << 20;
    if (w->p.dictionary_max_bytes <= 0) w->p.dictionary_max_bytes = 1 << 20;
    if (w->p.align <= 0 || (w->p.align & (w->p.align - 1)) || w->p.align > 4096)
        s = aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: align %d is not a power of two <= 4096", w->p.align);
    /* every LIST field adds one node */
    int n_nodes = 1 + n_fields;
    for (int i = 0; i < n_fields; i++) {
        if (fields[i].kind == AIOS_PQ_K_LIST) n_nodes++;
        if (fields[i].parent >= i || fields[i].parent < -1)
            s = aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: field %d's parent %d must come before it", i, fields[i].parent);
        else if (fields[i].parent >= 0 && fields[fields[i].parent].kind != AIOS_PQ_K_LIST &&
                 fields[fields[i].parent].kind != AIOS_PQ_K_STRUCT)
            s = aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: field %d's parent is not a LIST or STRUCT", i);
    }
    w->path = wdup(path);
    w->nodes = calloc((size_t)n_nodes, sizeof *w->nodes);
    w->child_idx = calloc((size_t)n_nodes, sizeof *w->child_idx);
    if (s == AIOS_OK && (!w->path || !w->nodes || !w->child_idx)) s = aios__err(AIOS_ERR_NOMEM, "parquet writer");
    int root;
    if (s == AIOS_OK) s = add_node(w, -1, "schema", AIOS_PQ_REQUIRED, &root);
    for (int i = 0; i < n_fields && s == AIOS_OK; i++)
        if (fields[i].parent < 0) s = build_field(w, fields, n_fields, i, root, 1);
    if (s == AIOS_OK) { /* children arrays (nodes are in depth-first order) */
        int used = 0;
        for (int i = 0; i < w->n_nodes; i++) {
            w->nodes[i].children = w->child_idx + used;
            used += w->nodes[i].n_children;
            w->nodes[i].n_children = 0;
        }
        for (int i = 1; i < w->n_nodes; i++) {
            aios_pq_node *pn = &w->nodes[w->nodes[i].parent];
            ((int *)pn->children)[pn->n_children++] = i;
        }
        w->leaves = calloc((size_t)w->n_leaves, sizeof *w->leaves);
        if (!w->leaves) s = aios__err(AIOS_ERR_NOMEM, "parquet writer");
    }
    /* leaf states: levels of null rows / lists / elements for the row form */
    for (int i = 0, fi = 0; s == AIOS_OK && i < w->n_nodes; i++) {
        aios_pq_node *n = &w->nodes[i];
        if (!n->is_leaf) continue;
        wleaf *L = &w->leaves[n->leaf];
        L->node = i;
        L->type = n->type;
        L->es = type_size(n);
        L->max_def = n->def_level;
        L->max_rep = n->rep_level;
        L->null_def = L->list_null_def = L->elem_null_def = -1;
        /* find the field for this leaf: leaves appear in schema order; match by name walking fields */
        const aios_pq_field *fx = NULL;
        for (; fi < n_fields; fi++)
            if (fields[fi].kind != AIOS_PQ_K_LIST && fields[fi].kind != AIOS_PQ_K_STRUCT) {
                fx = &fields[fi++];
                break;
            }
        (void)fx;
        int r = i;
        while (r > 0 && w->nodes[r].repetition != AIOS_PQ_REPEATED) r = w->nodes[r].parent;
        if (L->max_rep > 0) {
            L->slot_def = w->nodes[r].def_level;
            int q = w->nodes[r].parent;
            L->empty_def = w->nodes[q].def_level;
            while (q > 0 && w->nodes[q].repetition != AIOS_PQ_OPTIONAL) q = w->nodes[q].parent;
            if (q > 0) L->list_null_def = (int16_t)(w->nodes[q].def_level - 1);
            for (int e = i; e != r; e = w->nodes[e].parent)
                if (w->nodes[e].repetition == AIOS_PQ_OPTIONAL) {
                    L->elem_null_def = (int16_t)(w->nodes[e].def_level - 1);
                    break;
                }
        } else {
            for (int e = i; e > 0; e = w->nodes[e].parent)
                if (w->nodes[e].repetition == AIOS_PQ_OPTIONAL) {
                    L->null_def = (int16_t)(w->nodes[e].def_level - 1);
                    break;
                }
        }
    }
    /* per-leaf options from the fields: walk fields in schema (depth-first) order */
    if (s == AIOS_OK) {
        int leaf = 0;
        /* depth-first order of fields = order of build_field calls; recompute it */
        int *stack = malloc((size_t)n_fields * sizeof *stack), sp = 0;
        int *order = malloc((size_t)n_fields * sizeof *order), no = 0;
        if (!stack || !order) s = aios__err(AIOS_ERR_NOMEM, "parquet writer");
        for (int i = n_fields - 1; s == AIOS_OK && i >= 0; i--)
            if (fields[i].parent < 0) stack[sp++] = i;
        while (s == AIOS_OK && sp > 0) {
            int fi = stack[--sp];
            order[no++] = fi;
            for (int k = n_fields - 1; k > fi; k--)
                if (fields[k].parent == fi) stack[sp++] = k;
        }
        for (int k = 0; s == AIOS_OK && k < no; k++) {
            const aios_pq_field *x = &fields[order[k]];
            if (x->kind == AIOS_PQ_K_LIST || x->kind == AIOS_PQ_K_STRUCT) continue;
            wleaf *L = &w->leaves[leaf++];
            L->aligned = x->plain_aligned;
            L->dict_ok = w->p.dictionary && !x->no_dictionary && !x->plain_aligned && L->type == AIOS_PQ_BYTE_ARRAY;
            L->codec = x->plain_aligned ? AIOS_PQ_UNCOMPRESSED : w->p.codec;
        }
        free(stack);
        free(order);
    }
    if (s == AIOS_OK) {
        w->f = fopen(path, "wb");
        if (!w->f) s = aios__err(errno == ENOENT ? AIOS_ERR_NOT_FOUND : AIOS_ERR_IO, "parquet writer: %s: %s", path, strerror(errno));
    }
    if (s == AIOS_OK) s = write_bytes(w, "PAR1", 4);
    for (int i = 0; s == AIOS_OK && i < w->n_leaves; i++) {
        wleaf *L = &w->leaves[i];
        L->dict_active = L->dict_ok;
        L->st_ok = 1;
    }
    if (s != AIOS_OK) {
        if (w->f) {
            fclose(w->f);
            w->f = NULL;
            unlink(path);
        }
        writer_free(w);
        return s;
    }
    *out = w;
    return AIOS_OK;
}

int aios_pq_writer_num_leaves(const aios_pq_writer *w) { return w->n_leaves; }
const aios_pq_node *aios_pq_writer_leaf(const aios_pq_writer *w, int leaf) {
    return leaf >= 0 && leaf < w->n_leaves ? &w->nodes[w->leaves[leaf].node] : NULL;
}
int aios_pq_writer_find_leaf(const aios_pq_writer *w, const char *path) {
    int n = -1;
    for (int i = 0; i < w->n_nodes; i++)
        if (!strcmp(w->nodes[i].path, path)) n = i;
    if (n < 0) return -1;
    while (!w->nodes[n].is_leaf) {
        if (w->nodes[n].n_children != 1) return -1;
        n = w->nodes[n].children[0];
    }
    return w->nodes[n].leaf;
}

aios_status aios_pq_writer_set_kv(aios_pq_writer *w, const char *key, const char *value) {
    if (!key) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: NULL key");
    for (int i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[2 * i], key)) {
            char *v = value ? wdup(value) : NULL;
            if (value && !v) return aios__err(AIOS_ERR_NOMEM, "parquet writer");
            free(w->kv[2 * i + 1]);
            w->kv[2 * i + 1] = v;
            return AIOS_OK;
        }
    char **nk = realloc(w->kv, (size_t)(w->n_kv + 1) * 2 * sizeof *nk);
    if (!nk) return aios__err(AIOS_ERR_NOMEM, "parquet writer");
    w->kv = nk;
    nk[2 * w->n_kv] = wdup(key);
    nk[2 * w->n_kv + 1] = value ? wdup(value) : NULL;
    w->n_kv++;
    if (!nk[2 * w->n_kv - 2] || (value && !nk[2 * w->n_kv - 1])) return aios__err(AIOS_ERR_NOMEM, "parquet writer");
    return AIOS_OK;
}

/* ---- statistics ---- */

static int bytes_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb) {
    size_t n = la < lb ? la : lb;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (la > lb) - (la < lb);
}

static void stat_bytes(wleaf *L, const uint8_t *p, size_t n) {
    if (!L->st_ok) return;
    if (n > 256) { /* large binaries (weights): no min/max */
        L->st_ok = 0;
        return;
    }
    if (!L->st_has) {
        L->st_bmin.len = L->st_bmax.len = 0;
        if (aios_buf_append(&L->st_bmin, p, n) || aios_buf_append(&L->st_bmax, p, n)) L->st_ok = 0;
        if (!n) { /* aios_buf_append of 0 bytes leaves data NULL; that's fine */ }
        L->st_has = 1;
        return;
    }
    if (bytes_cmp(p, n, L->st_bmin.data, L->st_bmin.len) < 0) {
        L->st_bmin.len = 0;
        if (aios_buf_append(&L->st_bmin, p, n)) L->st_ok = 0;
    } else if (bytes_cmp(p, n, L->st_bmax.data, L->st_bmax.len) > 0) {
        L->st_bmax.len = 0;
        if (aios_buf_append(&L->st_bmax, p, n)) L->st_ok = 0;
    }
}

/* ---- dictionary ---- */

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t v = 0;
    if (i < n) memcpy(&v, p + i, n - i);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return h;
}

static aios_status ht_grow(wleaf *L) {
    int64_t nc = L->ht_cap ? L->ht_cap * 2 : 1024;
    uint32_t *nt = calloc((size_t)nc, sizeof *nt);
    if (!nt) return aios__err(AIOS_ERR_NOMEM, "parquet writer: dictionary");
    for (int64_t e = 0; e < L->dict_n; e++) {
        const uint8_t *q = L->dict_data.data + L->dict_off[e];
        uint32_t l;
        memcpy(&l, q, 4);
        uint64_t h = hash_bytes(q + 4, l) & (uint64_t)(nc - 1);
        while (nt[h]) h = (h + 1) & (uint64_t)(nc - 1);
        nt[h] = (uint32_t)e + 1;
    }
    free(L->ht);
    L->ht = nt;
    L->ht_cap = nc;
    return AIOS_OK;
}

/* Returns the dictionary index of (p, n), adding it; -1 when the dictionary is full. */
static aios_status dict_lookup(aios_pq_writer *w, wleaf *L, const uint8_t *p, size_t n, int64_t *idx) {
    if ((L->dict_n + 1) * 2 > L->ht_cap) AIOS_TRY(ht_grow(L));
    uint64_t mask = (uint64_t)(L->ht_cap - 1);
    uint64_t h = hash_bytes(p, n) & mask;
    while (L->ht[h]) {
        uint32_t e = L->ht[h] - 1;
        const uint8_t *q = L->dict_data.data + L->dict_off[e];
        uint32_t l;
        memcpy(&l, q, 4);
        if (l == n && !memcmp(q + 4, p, n)) {
            *idx = e;
            return AIOS_OK;
        }
        h = (h + 1) & mask;
    }
    if ((int64_t)(L->dict_data.len + 4 + n) > w->p.dictionary_max_bytes || L->dict_n >= INT32_MAX - 1) {
        *idx = -1;
        return AIOS_OK;
    }
    if (L->dict_n == L->dict_cap) {
        int64_t nc = L->dict_cap ? L->dict_cap * 2 : 256;
        uint32_t *no = realloc(L->dict_off, (size_t)nc * sizeof *no);
        if (!no) return aios__err(AIOS_ERR_NOMEM, "parquet writer: dictionary");
        L->dict_off = no;
        L->dict_cap = nc;
    }
    L->dict_off[L->dict_n] = (uint32_t)L->dict_data.len;
    uint32_t l32 = (uint32_t)n;
    AIOS_TRY(aios_buf_append(&L->dict_data, &l32, 4));
    AIOS_TRY(aios_buf_append(&L->dict_data, p, n));
    L->ht[h] = (uint32_t)L->dict_n + 1;
    *idx = L->dict_n++;
    return AIOS_OK;
}

/* ---- pages ---- */

static aios_status put_page_header(aios_pq_writer *w, int type, size_t usize, size_t csize, uint32_t crc, int has_crc,
                                   int64_t nvals, int64_t nnulls, int64_t nrows, int enc, size_t def_len, size_t rep_len,
                                   size_t pad) {
    if (usize > INT32_MAX || csize > INT32_MAX || nvals > INT32_MAX)
        return aios__err(AIOS_ERR_RANGE, "parquet writer: page of %zu bytes / %lld values is too large", usize, (long long)nvals);
    w->hdr.len = 0;
    aios_thrift_w t;
    aios_thrift_w_init(&t, &w->hdr);
    aios_thrift_w_struct_begin(&t);
    aios_thrift_w_i32(&t, 1, type);
    aios_thrift_w_i32(&t, 2, (int32_t)usize);
    aios_thrift_w_i32(&t, 3, (int32_t)csize);
    if (has_crc) aios_thrift_w_i32(&t, 4, (int32_t)crc);
    if (type == 0) {
        aios_thrift_w_field(&t, 5, AIOS_TT_STRUCT);
        aios_thrift_w_struct_begin(&t);
        aios_thrift_w_i32(&t, 1, (int32_t)nvals);
        aios_thrift_w_i32(&t, 2, enc);
        aios_thrift_w_i32(&t, 3, AIOS_PQ_RLE);
        aios_thrift_w_i32(&t, 4, AIOS_PQ_RLE);
        aios_thrift_w_struct_end(&t);
    } else if (type == 2) {
        aios_thrift_w_field(&t, 7, AIOS_TT_STRUCT);
        aios_thrift_w_struct_begin(&t);
        aios_thrift_w_i32(&t, 1, (int32_t)nvals);
        aios_thrift_w_i32(&t, 2, AIOS_PQ_PLAIN);
        aios_thrift_w_bool(&t, 3, 0);
        aios_thrift_w_struct_end(&t);
    } else {
        aios_thrift_w_field(&t, 8, AIOS_TT_STRUCT);
        aios_thrift_w_struct_begin(&t);
        aios_thrift_w_i32(&t, 1, (int32_t)nvals);
        aios_thrift_w_i32(&t, 2, (int32_t)nnulls);
        aios_thrift_w_i32(&t, 3, (int32_t)nrows);
        aios_thrift_w_i32(&t, 4, enc);
        aios_thrift_w_i32(&t, 5, (int32_t)def_len);
        aios_thrift_w_i32(&t, 6, (int32_t)rep_len);
        aios_thrift_w_struct_end(&t);
    }
    if (pad != (size_t)-1) { /* unknown field 32000: binary padding that readers skip */
        static const uint8_t zeros[4096];
        size_t k = pad;
        aios_thrift_w_field(&t, 32000, AIOS_TT_BINARY); /* 1 + 3 bytes: zigzag(32000) is a 3-byte varint */
        aios_thrift_w_varint(&t, k);
        while (k > 0) {
            size_t c = k > sizeof zeros ? sizeof zeros : k;
            if (aios_buf_append(&w->hdr, zeros, c)) t.err = 1;
            k -= c;
        }
    }
    aios_thrift_w_struct_end(&t);
    if (t.err) return aios__err(AIOS_ERR_NOMEM, "parquet writer: page header");
    return AIOS_OK;
}

/* Encodes the current page of leaf L and appends it (header + data) to L->chunk. */
static aios_status flush_page(aios_pq_writer *w, wleaf *L) {
    if (L->page_levels == 0) return AIOS_OK;
    int v2 = w->p.data_page_v2;
    aios_buf *pg = &w->page;
    pg->len = 0;
    int enc = AIOS_PQ_PLAIN;
    size_t rep_len = 0, def_len = 0;
    /* levels */
    for (int k = 0; k < 2; k++) {
        int16_t max = k == 0 ? L->max_rep : L->max_def;
        if (max == 0) continue;
        aios_buf *lv = k == 0 ? &L->reps : &L->defs;
        size_t at = pg->len;
        if (!v2) {
            uint32_t zero = 0;
            AIOS_TRY(aios_buf_append(pg, &zero, 4));
        }
        AIOS_TRY(aios__rle_encode_i16(pg, (const int16_t *)lv->data, L->page_levels, aios__bit_width((uint64_t)max)));
        size_t len = pg->len - at - (v2 ? 0 : 4);
        if (!v2) {
            uint32_t l32 = (uint32_t)len;
            memcpy(pg->data + at, &l32, 4);
        }
        if (k == 0) rep_len = len;
        else def_len = len;
    }
    size_t lev_bytes = pg->len;
    /* values */
    if (L->page_dict) {
        enc = AIOS_PQ_RLE_DICTIONARY;
        int bw = aios__bit_width((uint64_t)(L->dict_n > 0 ? L->dict_n - 1 : 0));
        uint8_t b = (uint8_t)bw;
        AIOS_TRY(aios_buf_append(pg, &b, 1));
        AIOS_TRY(aios__rle_encode(pg, (const uint32_t *)L->vals.data, L->page_values, bw));
    } else if (L->type == AIOS_PQ_BOOLEAN) {
        size_t nb = (size_t)(L->page_values + 7) / 8;
        AIOS_TRY(aios_buf_reserve(pg, nb));
        uint8_t *o = pg->data + pg->len;
        memset(o, 0, nb);
        for (int64_t i = 0; i < L->page_values; i++) o[i >> 3] |= (uint8_t)((L->vals.data[i] & 1) << (i & 7));
        pg->len += nb;
    } else {
        AIOS_TRY(aios_buf_append(pg, L->vals.data, L->vals.len));
    }
    L->chunk_enc |= 1u << enc;
    /* compress: v1 whole page, v2 values only */
    aios_buf *cp = &w->cpage;
    cp->len = 0;
    size_t body_off = v2 ? lev_bytes : 0;
    if (v2) AIOS_TRY(aios_buf_append(cp, pg->data, lev_bytes));
    AIOS_TRY(aios__pq_compress(L->codec, w->p.level, pg->data + body_off, pg->len - body_off, cp, &w->cctx));
    uint32_t crc = w->p.page_crc ? aios__pq_crc32(cp->data, cp->len) : 0;
    AIOS_TRY(put_page_header(w, v2 ? 3 : 0, pg->len, cp->len, crc, w->p.page_crc, L->page_levels, L->page_nulls,
                             L->page_rows, enc, def_len, rep_len, (size_t)-1));
    AIOS_TRY(aios_buf_append(&L->chunk, w->hdr.data, w->hdr.len));
    AIOS_TRY(aios_buf_append(&L->chunk, cp->data, cp->len));
    L->chunk_uncompressed += (int64_t)(w->hdr.len + pg->len);
    L->defs.len = L->reps.len = L->vals.len = 0;
    L->page_levels = L->page_values = L->page_rows = L->page_nulls = 0;
    L->page_dict = 0;
    return AIOS_OK;
}

/* Append without a capacity check: aios_pq_writer_write reserves room for the whole batch's
 * levels and fixed-size values up front (a page flush only lowers len). */
#define PUT_RAW(buf, src, n)                                  \
    do {                                                      \
        memcpy((buf).data + (buf).len, (src), (n));           \
        (buf).len += (n);                                     \
    } while (0)

/* Appends one level entry (and its value when defined) to the current page. */
static inline aios_status put_entry(aios_pq_writer *w, wleaf *L, int16_t d, int16_t r, const aios_pq_batch *b, int64_t slot,
                                     int have_vals) {
    if (L->max_rep > 0) {
        if (r == 0) {
            /* a new row: cut the page here if it is full */
            if ((int64_t)L->vals.len + L->page_levels / 4 >= w->p.page_bytes) AIOS_TRY(flush_page(w, L));
            L->page_rows++;
        }
        PUT_RAW(L->reps, &r, 2);
    } else {
        if ((int64_t)L->vals.len + L->page_levels / 4 >= w->p.page_bytes) AIOS_TRY(flush_page(w, L));
        L->page_rows++;
    }
    if (L->max_def > 0) PUT_RAW(L->defs, &d, 2);
    L->page_levels++;
    L->chunk_levels++;
    if (d < L->max_def) {
        L->page_nulls++;
        L->chunk_nulls++;
        return AIOS_OK;
    }
    if (!have_vals) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s': no values given", "?");
    L->page_values++;
    L->values_seen++;
    switch (L->type) {
    case AIOS_PQ_BOOLEAN: {
        uint8_t v = ((const uint8_t *)b->values)[slot] ? 1 : 0;
        PUT_RAW(L->vals, &v, 1);
        if (!L->st_has) L->st_min.i = L->st_max.i = v, L->st_has = 1;
        else {
            if (v < L->st_min.i) L->st_min.i = v;
            if (v > L->st_max.i) L->st_max.i = v;
        }
        return AIOS_OK;
    }
    case AIOS_PQ_INT32: case AIOS_PQ_INT64: {
        int64_t v;
        if (L->type == AIOS_PQ_INT32) {
            int32_t x = ((const int32_t *)b->values)[slot];
            v = x;
            PUT_RAW(L->vals, &x, 4);
        } else {
            v = ((const int64_t *)b->values)[slot];
            PUT_RAW(L->vals, &v, 8);
        }
        if (!L->st_has) L->st_min.i = L->st_max.i = v, L->st_has = 1;
        else {
            if (v < L->st_min.i) L->st_min.i = v;
            if (v > L->st_max.i) L->st_max.i = v;
        }
        return AIOS_OK;
    }
    case AIOS_PQ_FLOAT: case AIOS_PQ_DOUBLE: {
        double v;
        if (L->type == AIOS_PQ_FLOAT) {
            float x = ((const float *)b->values)[slot];
            v = x;
            PUT_RAW(L->vals, &x, 4);
        } else {
            v = ((const double *)b->values)[slot];
            PUT_RAW(L->vals, &v, 8);
        }
        if (v != v) return AIOS_OK; /* NaN: not in min/max */
        if (!L->st_has) L->st_min.d = L->st_max.d = v, L->st_has = 1;
        else {
            if (v < L->st_min.d) L->st_min.d = v;
            if (v > L->st_max.d) L->st_max.d = v;
        }
        return AIOS_OK;
    }
    case AIOS_PQ_FIXED_LEN_BYTE_ARRAY: {
        const uint8_t *p = b->bytes ? b->bytes[slot].ptr : (const uint8_t *)b->values + (size_t)slot * L->es;
        if (b->bytes && b->bytes[slot].len != L->es)
            return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: FIXED value of %zu bytes, column has %zu", b->bytes[slot].len, L->es);
        AIOS_TRY(aios_buf_append(&L->vals, p, L->es));
        stat_bytes(L, p, L->es);
        return AIOS_OK;
    }
    case AIOS_PQ_BYTE_ARRAY: {
        const aios_pq_bytes *x = &b->bytes[slot];
        if (x->len > INT32_MAX) return aios__err(AIOS_ERR_RANGE, "parquet writer: value of %zu bytes", x->len);
        if (!x->ptr && x->len) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: NULL bytes with length %zu", x->len);
        stat_bytes(L, x->ptr, x->len);
        if (L->aligned) {
            int64_t l = (int64_t)x->len;
            AIOS_TRY(aios_buf_append(&L->al_lens, &l, 8));
            return aios_buf_append(&L->al_vals, x->ptr, x->len);
        }
        if (L->dict_active) {
            int64_t idx = -1;
            AIOS_TRY(dict_lookup(w, L, x->ptr ? x->ptr : (const uint8_t *)"", x->len, &idx));
            if (L->values_seen == 4096 && L->dict_n * 2 > L->values_seen) idx = -1; /* unique-ish: plain */
            if (idx >= 0) {
                if (!L->page_dict && L->page_values > 1) {
                    /* page already holds plain values: cannot happen (dict pages come first) */
                }
                L->page_dict = 1;
                L->dict_used = 1;
                uint32_t u = (uint32_t)idx;
                return aios_buf_append(&L->vals, &u, 4);
            }
            /* fall back to PLAIN: finish the dictionary-encoded page first */
            L->dict_active = 0;
            if (L->page_dict) {
                /* this value is not yet in the page: undo counters, flush, redo */
                L->page_values--;
                L->page_levels--;
                L->page_rows -= (L->max_rep == 0 || r == 0);
                if (L->max_def > 0) L->defs.len -= 2;
                if (L->max_rep > 0) L->reps.len -= 2;
                AIOS_TRY(flush_page(w, L));
                if (L->max_rep > 0) AIOS_TRY(aios_buf_append(&L->reps, &r, 2));
                if (L->max_def > 0) AIOS_TRY(aios_buf_append(&L->defs, &d, 2));
                L->page_levels++;
                L->page_values++;
                L->page_rows += (L->max_rep == 0 || r == 0);
            }
        }
        uint32_t l32 = (uint32_t)x->len;
        AIOS_TRY(aios_buf_append(&L->vals, &l32, 4));
        return aios_buf_append(&L->vals, x->ptr, x->len);
    }
    default:
        return aios__err(AIOS_ERR_INTERNAL, "parquet writer: type %d", (int)L->type);
    }
}

static aios_status grow_tmp(wleaf *L, int64_t n) {
    if (n <= L->tcap) return AIOS_OK;
    int64_t nc = AIOS_MAX(n, L->tcap * 2);
    int16_t *d = realloc(L->tdef, (size_t)nc * 2), *r;
    if (!d) return aios__err(AIOS_ERR_NOMEM, "parquet writer: levels");
    L->tdef = d;
    r = realloc(L->trep, (size_t)nc * 2);
    if (!r) return aios__err(AIOS_ERR_NOMEM, "parquet writer: levels");
    L->trep = r;
    L->tcap = nc;
    return AIOS_OK;
}

aios_status aios_pq_writer_write(aios_pq_writer *w, int leaf, const aios_pq_batch *b) {
    if (!w || !b) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: NULL argument");
    if (w->failed) return aios__err(AIOS_ERR_IO, "parquet writer: %s: an earlier write failed", w->path);
    if (leaf < 0 || leaf >= w->n_leaves) return aios__err(AIOS_ERR_RANGE, "parquet writer: leaf %d of %d", leaf, w->n_leaves);
    wleaf *L = &w->leaves[leaf];
    const aios_pq_node *n = &w->nodes[L->node];
    if (L->batch_rows_ok) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s' written twice in one batch", n->path);
    if (b->num_rows < 0) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: negative num_rows");
    int is_bytes = L->type == AIOS_PQ_BYTE_ARRAY;
    int have_vals = is_bytes ? b->bytes != NULL : (b->values != NULL || (L->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY && b->bytes));
    const int16_t *def, *rep;
    int64_t nlev;
    if (b->def || (b->num_levels > 0 && L->max_rep > 0 && b->rep)) {
        /* level form */
        nlev = b->num_levels;
        if (nlev < 0) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: negative num_levels");
        def = b->def;
        rep = b->rep;
        if (L->max_def > 0 && !def) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s' needs def levels", n->path);
        if (L->max_rep > 0 && !rep) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s' needs rep levels", n->path);
        int64_t rows = 0;
        for (int64_t i = 0; i < nlev; i++) {
            int16_t d = def ? def[i] : 0, r = rep ? rep[i] : 0;
            if (d < 0 || d > L->max_def || r < 0 || r > L->max_rep || (i == 0 && r != 0))
                return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s': bad levels at %lld", n->path, (long long)i);
            rows += r == 0;
        }
        if (rows != b->num_rows)
            return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s': levels hold %lld rows, batch says %lld", n->path,
                             (long long)rows, (long long)b->num_rows);
    } else if (L->max_rep == 0) {
        nlev = b->num_rows;
        AIOS_TRY(grow_tmp(L, nlev));
        for (int64_t i = 0; i < nlev; i++) {
            int ok = !b->valid || b->valid[i];
            if (!ok && L->null_def < 0) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: null in required leaf '%s'", n->path);
            L->tdef[i] = ok ? L->max_def : L->null_def;
        }
        def = L->tdef;
        rep = NULL;
    } else if (L->max_rep == 1) {
        if (!b->offsets && b->num_rows > 0) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: list leaf '%s' needs offsets", n->path);
        nlev = 0;
        for (int64_t r = 0; r < b->num_rows; r++) {
            int64_t k = b->offsets[r + 1] - b->offsets[r];
            if (k < 0 || b->offsets[r] < 0) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s': offsets decrease at row %lld", n->path, (long long)r);
            nlev += (k == 0 || (b->row_valid && !b->row_valid[r])) ? 1 : k;
        }
        AIOS_TRY(grow_tmp(L, nlev));
        int64_t j = 0;
        for (int64_t r = 0; r < b->num_rows; r++) {
            int64_t o0 = b->offsets[r], o1 = b->offsets[r + 1];
            if (b->row_valid && !b->row_valid[r]) {
                if (L->list_null_def < 0) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: null list in required '%s'", n->path);
                if (o1 != o0) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: null list with elements at row %lld", (long long)r);
                L->tdef[j] = L->list_null_def, L->trep[j++] = 0;
            } else if (o1 == o0) {
                L->tdef[j] = L->empty_def, L->trep[j++] = 0;
            } else {
                for (int64_t k = o0; k < o1; k++) {
                    int ok = !b->valid || b->valid[k];
                    if (!ok && L->elem_null_def < 0) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: null element in '%s'", n->path);
                    L->tdef[j] = ok ? L->max_def : L->elem_null_def;
                    L->trep[j++] = k == o0 ? 0 : L->max_rep;
                }
            }
        }
        def = L->tdef;
        rep = L->trep;
    } else {
        return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s' is nested %d deep: give def/rep levels", n->path, L->max_rep);
    }
    /* slot of each entry: values are spaced over slots (entries with def >= slot_def) */
    int64_t slot = 0;
    int16_t md = L->max_def;
    if (L->max_def == 0 && L->type != AIOS_PQ_BOOLEAN && L->type != AIOS_PQ_BYTE_ARRAY && L->type != AIOS_PQ_FIXED_LEN_BYTE_ARRAY &&
        L->max_rep == 0) {
        /* fast path: required flat fixed-size column */
        if (nlev > 0 && !have_vals) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s': no values given", n->path);
        size_t es = L->es;
        const uint8_t *v = b->values;
        int64_t i = 0;
        while (i < nlev) {
            if ((int64_t)L->vals.len >= w->p.page_bytes) AIOS_TRY(flush_page(w, L));
            int64_t room = (w->p.page_bytes - (int64_t)L->vals.len + (int64_t)es - 1) / (int64_t)es;
            int64_t k = AIOS_MIN(room, nlev - i);
            AIOS_TRY(aios_buf_append(&L->vals, v + (size_t)i * es, (size_t)k * es));
            for (int64_t q = i; q < i + k; q++) {
                if (L->type == AIOS_PQ_INT32 || L->type == AIOS_PQ_INT64) {
                    int64_t x = L->type == AIOS_PQ_INT32 ? ((const int32_t *)v)[q] : ((const int64_t *)v)[q];
                    if (!L->st_has) L->st_min.i = L->st_max.i = x, L->st_has = 1;
                    else if (x < L->st_min.i) L->st_min.i = x;
                    else if (x > L->st_max.i) L->st_max.i = x;
                } else {
                    double x = L->type == AIOS_PQ_FLOAT ? ((const float *)v)[q] : ((const double *)v)[q];
                    if (x != x) continue;
                    if (!L->st_has) L->st_min.d = L->st_max.d = x, L->st_has = 1;
                    else if (x < L->st_min.d) L->st_min.d = x;
                    else if (x > L->st_max.d) L->st_max.d = x;
                }
            }
            L->page_levels += k;
            L->page_values += k;
            L->page_rows += k;
            L->chunk_levels += k;
            L->values_seen += k;
            i += k;
        }
    } else {
        int16_t sd = L->slot_def;
        AIOS_TRY(aios_buf_reserve(&L->defs, (size_t)nlev * 2 + 2));
        AIOS_TRY(aios_buf_reserve(&L->reps, (size_t)nlev * 2 + 2));
        if (L->type != AIOS_PQ_BYTE_ARRAY && L->type != AIOS_PQ_FIXED_LEN_BYTE_ARRAY)
            AIOS_TRY(aios_buf_reserve(&L->vals, (size_t)nlev * (L->es ? L->es : 1) + 8));
        for (int64_t i = 0; i < nlev; i++) {
            int16_t d = def ? def[i] : md, r = rep ? rep[i] : 0;
            AIOS_TRY(put_entry(w, L, d, r, b, slot, have_vals));
            if (d >= sd) slot++;
        }
    }
    L->batch_rows_ok = 1;
    L->batch_rows = b->num_rows;
    return AIOS_OK;
}

/* ---- row groups ---- */

static void encode_stat_value(wleaf *L, int is_min, uint8_t *out, size_t *len) {
    int64_t i = is_min ? L->st_min.i : L->st_max.i;
    double d = is_min ? L->st_min.d : L->st_max.d;
    switch (L->type) {
    case AIOS_PQ_BOOLEAN: out[0] = (uint8_t)i; *len = 1; break;
    case AIOS_PQ_INT32: { int32_t x = (int32_t)i; memcpy(out, &x, 4); *len = 4; break; }
    case AIOS_PQ_INT64: memcpy(out, &i, 8); *len = 8; break;
    case AIOS_PQ_FLOAT: {
        float x = (float)d;
        if (x == 0) x = is_min ? -0.0f : 0.0f; /* spec: -0.0 for a zero min, +0.0 for a zero max */
        memcpy(out, &x, 4);
        *len = 4;
        break;
    }
    case AIOS_PQ_DOUBLE:
        if (d == 0) d = is_min ? -0.0 : 0.0;
        memcpy(out, &d, 8);
        *len = 8;
        break;
    default: *len = 0; break;
    }
}

static aios_status write_aligned_pages(aios_pq_writer *w, wleaf *L, chunk_meta *cm) {
    /* One PLAIN page per level entry (row); values' bytes aligned to params.align. */
    const int16_t *defs = (const int16_t *)L->defs.data;
    const int64_t *lens = (const int64_t *)L->al_lens.data;
    const uint8_t *vals = L->al_vals.data;
    int64_t vi = 0;
    size_t voff = 0;
    aios_buf *pg = &w->page;
    for (int64_t e = 0; e < L->page_levels; e++) {
        int16_t d = L->max_def > 0 ? defs[e] : 0;
        int present = d == L->max_def;
        pg->len = 0;
        if (L->max_def > 0) {
            uint32_t zero = 0;
            AIOS_TRY(aios_buf_append(pg, &zero, 4));
            AIOS_TRY(aios__rle_encode_i16(pg, &d, 1, aios__bit_width((uint64_t)L->max_def)));
            uint32_t l32 = (uint32_t)(pg->len - 4);
            memcpy(pg->data, &l32, 4);
        }
        size_t vlen = present ? (size_t)lens[vi] : 0;
        if (present) {
            uint32_t l32 = (uint32_t)vlen;
            AIOS_TRY(aios_buf_append(pg, &l32, 4));
        }
        size_t pre = pg->len, total = pre + vlen;
        uint32_t crc = 0;
        if (w->p.page_crc) {
            uLong c = crc32(0L, Z_NULL, 0);
            c = crc32(c, pg->data, (uInt)pg->len);
            if (vlen) c = aios__pq_crc32_update(c, vals + voff, vlen);
            crc = (uint32_t)c;
        }
        /* header length without padding, then the padding that aligns the value's first byte:
         * the padding field costs 4 bytes (type + zigzag varint of id 32000) + varint(k) + k */
        AIOS_TRY(put_page_header(w, 0, total, total, crc, w->p.page_crc, 1, 0, 1, AIOS_PQ_PLAIN, 0, 0, (size_t)-1));
        size_t base = w->hdr.len, a = (size_t)w->p.align, pad = 0;
        for (size_t k = 0;; k++) {
            size_t vk = k < 128 ? 1 : k < 16384 ? 2 : 3;
            if (((uint64_t)w->pos + base + 4 + vk + k + pre) % a == 0) {
                pad = k;
                break;
            }
            if (k > 2 * a + 8) return aios__err(AIOS_ERR_INTERNAL, "parquet writer: cannot align");
        }
        AIOS_TRY(put_page_header(w, 0, total, total, crc, w->p.page_crc, 1, 0, 1, AIOS_PQ_PLAIN, 0, 0, pad));
        if (((uint64_t)w->pos + w->hdr.len + pre) % a != 0)
            return aios__err(AIOS_ERR_INTERNAL, "parquet writer: alignment arithmetic failed");
        if (e == 0) cm->data_page_offset = w->pos;
        AIOS_TRY(write_bytes(w, w->hdr.data, w->hdr.len));
        AIOS_TRY(write_bytes(w, pg->data, pg->len));
        if (present) {
            AIOS_TRY(write_bytes(w, vals + voff, vlen));
            voff += vlen;
            vi++;
        }
        cm->total_uncompressed += (int64_t)(w->hdr.len + total);
        cm->total_compressed += (int64_t)(w->hdr.len + total);
    }
    cm->encodings |= 1u << AIOS_PQ_PLAIN;
    return AIOS_OK;
}

aios_status aios_pq_writer_flush_row_group(aios_pq_writer *w) {
    if (w->failed) return aios__err(AIOS_ERR_IO, "parquet writer: %s: an earlier write failed", w->path);
    if (w->rg_rows == 0) return AIOS_OK;
    if (w->n_rg == w->cap_rg) {
        int nc = w->cap_rg ? w->cap_rg * 2 : 8;
        rg_meta *nr = realloc(w->rgs, (size_t)nc * sizeof *nr);
        if (!nr) return aios__err(AIOS_ERR_NOMEM, "parquet writer");
        w->rgs = nr;
        w->cap_rg = nc;
    }
    rg_meta *rg = &w->rgs[w->n_rg];
    memset(rg, 0, sizeof *rg);
    rg->cols = calloc((size_t)w->n_leaves, sizeof *rg->cols);
    if (!rg->cols) return aios__err(AIOS_ERR_NOMEM, "parquet writer");
    w->n_rg++;
    rg->num_rows = w->rg_rows;
    rg->file_offset = w->pos;
    for (int i = 0; i < w->n_leaves; i++) {
        wleaf *L = &w->leaves[i];
        chunk_meta *cm = &rg->cols[i];
        cm->codec = L->codec;
        cm->dict_page_offset = -1;
        cm->offset = w->pos;
        cm->num_values = L->chunk_levels;
        cm->null_count = L->chunk_nulls;
        if (L->aligned) {
            AIOS_TRY(write_aligned_pages(w, L, cm));
            L->defs.len = L->reps.len = 0;
            L->al_vals.len = L->al_lens.len = 0;
            L->page_levels = L->page_values = L->page_rows = L->page_nulls = 0;
        } else {
            AIOS_TRY(flush_page(w, L));
            if (L->dict_used) {
                aios_buf *cp = &w->cpage;
                cp->len = 0;
                AIOS_TRY(aios__pq_compress(L->codec, w->p.level, L->dict_data.data, L->dict_data.len, cp, &w->cctx));
                uint32_t crc = w->p.page_crc ? aios__pq_crc32(cp->data, cp->len) : 0;
                AIOS_TRY(put_page_header(w, 2, L->dict_data.len, cp->len, crc, w->p.page_crc, L->dict_n, 0, 0, 0, 0, 0, (size_t)-1));
                cm->dict_page_offset = w->pos;
                AIOS_TRY(write_bytes(w, w->hdr.data, w->hdr.len));
                AIOS_TRY(write_bytes(w, cp->data, cp->len));
                cm->total_uncompressed += (int64_t)(w->hdr.len + L->dict_data.len);
                cm->total_compressed += (int64_t)(w->hdr.len + cp->len);
                L->chunk_enc |= 1u << AIOS_PQ_PLAIN;
            }
            cm->data_page_offset = w->pos;
            AIOS_TRY(write_bytes(w, L->chunk.data, L->chunk.len));
            cm->total_compressed += (int64_t)L->chunk.len;
            cm->total_uncompressed += L->chunk_uncompressed;
            cm->encodings = L->chunk_enc | (1u << AIOS_PQ_RLE);
        }
        if (L->aligned) cm->encodings |= 1u << AIOS_PQ_RLE;
        /* statistics */
        if (w->p.statistics && L->st_ok && L->st_has) {
            uint8_t tmp[8];
            size_t len;
            if (L->type == AIOS_PQ_BYTE_ARRAY || L->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY) {
                cm->min = malloc(L->st_bmin.len + 1);
                cm->max = malloc(L->st_bmax.len + 1);
                if (!cm->min || !cm->max) return aios__err(AIOS_ERR_NOMEM, "parquet writer");
                if (L->st_bmin.len) memcpy(cm->min, L->st_bmin.data, L->st_bmin.len);
                if (L->st_bmax.len) memcpy(cm->max, L->st_bmax.data, L->st_bmax.len);
                cm->min_len = L->st_bmin.len;
                cm->max_len = L->st_bmax.len;
            } else {
                encode_stat_value(L, 1, tmp, &len);
                cm->min = malloc(8);
                cm->max = malloc(8);
                if (!cm->min || !cm->max) return aios__err(AIOS_ERR_NOMEM, "parquet writer");
                memcpy(cm->min, tmp, len);
                cm->min_len = len;
                encode_stat_value(L, 0, tmp, &len);
                memcpy(cm->max, tmp, len);
                cm->max_len = len;
            }
            cm->has_minmax = 1;
        }
        rg->total_byte_size += cm->total_uncompressed;
        rg->total_compressed += cm->total_compressed;
        /* reset the chunk state */
        L->chunk.len = 0;
        L->chunk_levels = L->chunk_nulls = L->chunk_uncompressed = 0;
        L->chunk_enc = 0;
        L->dict_active = L->dict_ok;
        L->dict_used = 0;
        L->dict_data.len = 0;
        L->dict_n = 0;
        if (L->ht) memset(L->ht, 0, (size_t)L->ht_cap * sizeof *L->ht);
        L->values_seen = 0;
        L->st_has = 0;
        L->st_ok = 1;
    }
    w->total_rows += w->rg_rows;
    w->rg_rows = 0;
    return AIOS_OK;
}

aios_status aios_pq_writer_end_batch(aios_pq_writer *w, int64_t num_rows) {
    if (!w) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: NULL");
    if (w->failed) return aios__err(AIOS_ERR_IO, "parquet writer: %s: an earlier write failed", w->path);
    for (int i = 0; i < w->n_leaves; i++) {
        wleaf *L = &w->leaves[i];
        if (!L->batch_rows_ok || L->batch_rows != num_rows) {
            w->failed = 1;
            return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: leaf '%s' got %lld rows in this batch, expected %lld",
                             w->nodes[L->node].path, L->batch_rows_ok ? (long long)L->batch_rows : 0LL, (long long)num_rows);
        }
        L->batch_rows_ok = 0;
    }
    w->rg_rows += num_rows;
    int64_t bytes = 0;
    for (int i = 0; i < w->n_leaves; i++) bytes += (int64_t)(w->leaves[i].chunk.len + w->leaves[i].vals.len + w->leaves[i].al_vals.len);
    if (w->rg_rows >= w->p.row_group_rows || bytes >= w->p.row_group_bytes) return aios_pq_writer_flush_row_group(w);
    return AIOS_OK;
}

/* ---- footer ---- */

static void w_schema_el(aios_thrift_w *t, const aios_pq_node *n) {
    aios_thrift_w_struct_begin(t);
    if (n->is_leaf) aios_thrift_w_i32(t, 1, n->type);
    if (n->is_leaf && n->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY) aios_thrift_w_i32(t, 2, n->type_length);
    if (n->parent >= 0) aios_thrift_w_i32(t, 3, n->repetition);
    aios_thrift_w_binary(t, 4, n->name, strlen(n->name));
    if (!n->is_leaf) aios_thrift_w_i32(t, 5, n->n_children);
    if (n->converted_type >= 0) aios_thrift_w_i32(t, 6, n->converted_type);
    if (n->logical != AIOS_PQ_L_NONE) {
        aios_thrift_w_field(t, 10, AIOS_TT_STRUCT);
        aios_thrift_w_struct_begin(t);
        if (n->logical == AIOS_PQ_L_STRING) {
            aios_thrift_w_field(t, 1, AIOS_TT_STRUCT);
            aios_thrift_w_struct_begin(t);
            aios_thrift_w_struct_end(t);
        } else if (n->logical == AIOS_PQ_L_LIST) {
            aios_thrift_w_field(t, 3, AIOS_TT_STRUCT);
            aios_thrift_w_struct_begin(t);
            aios_thrift_w_struct_end(t);
        } else if (n->logical == AIOS_PQ_L_TIMESTAMP) {
            aios_thrift_w_field(t, 8, AIOS_TT_STRUCT);
            aios_thrift_w_struct_begin(t);
            aios_thrift_w_bool(t, 1, n->utc);
            aios_thrift_w_field(t, 2, AIOS_TT_STRUCT);
            aios_thrift_w_struct_begin(t);
            aios_thrift_w_field(t, (int16_t)(n->unit + 1), AIOS_TT_STRUCT);
            aios_thrift_w_struct_begin(t);
            aios_thrift_w_struct_end(t);
            aios_thrift_w_struct_end(t);
            aios_thrift_w_struct_end(t);
        }
        aios_thrift_w_struct_end(t);
    }
    aios_thrift_w_struct_end(t);
}

static aios_status write_footer(aios_pq_writer *w) {
    aios_buf fb = {0};
    aios_thrift_w t;
    aios_thrift_w_init(&t, &fb);
    aios_thrift_w_struct_begin(&t);
    aios_thrift_w_i32(&t, 1, 2);
    aios_thrift_w_list_begin(&t, 2, AIOS_TT_STRUCT, w->n_nodes);
    for (int i = 0; i < w->n_nodes; i++) w_schema_el(&t, &w->nodes[i]);
    aios_thrift_w_i64(&t, 3, w->total_rows);
    aios_thrift_w_list_begin(&t, 4, AIOS_TT_STRUCT, w->n_rg);
    for (int r = 0; r < w->n_rg; r++) {
        rg_meta *rg = &w->rgs[r];
        aios_thrift_w_struct_begin(&t);
        aios_thrift_w_list_begin(&t, 1, AIOS_TT_STRUCT, w->n_leaves);
        for (int i = 0; i < w->n_leaves; i++) {
            chunk_meta *cm = &rg->cols[i];
            const aios_pq_node *n = &w->nodes[w->leaves[i].node];
            aios_thrift_w_struct_begin(&t);
            aios_thrift_w_i64(&t, 2, cm->offset);
            aios_thrift_w_field(&t, 3, AIOS_TT_STRUCT);
            aios_thrift_w_struct_begin(&t);
            aios_thrift_w_i32(&t, 1, n->type);
            int ne = __builtin_popcount(cm->encodings);
            aios_thrift_w_list_begin(&t, 2, AIOS_TT_I32, ne);
            for (int e = 0; e < 32; e++)
                if (cm->encodings & (1u << e)) aios_thrift_w_zigzag(&t, e);
            /* path_in_schema: names from below the root to the leaf */
            int depth = 0;
            for (int q = n->index; q > 0; q = w->nodes[q].parent) depth++;
            aios_thrift_w_list_begin(&t, 3, AIOS_TT_BINARY, depth);
            int chain[64];
            int k = 0;
            for (int q = n->index; q > 0 && k < 64; q = w->nodes[q].parent) chain[k++] = q;
            for (int j = k - 1; j >= 0; j--) {
                const char *nm = w->nodes[chain[j]].name;
                aios_thrift_w_raw_binary(&t, nm, strlen(nm));
            }
            aios_thrift_w_i32(&t, 4, cm->codec);
            aios_thrift_w_i64(&t, 5, cm->num_values);
            aios_thrift_w_i64(&t, 6, cm->total_uncompressed);
            aios_thrift_w_i64(&t, 7, cm->total_compressed);
            aios_thrift_w_i64(&t, 9, cm->data_page_offset);
            if (cm->dict_page_offset >= 0) aios_thrift_w_i64(&t, 11, cm->dict_page_offset);
            if (w->p.statistics) {
                aios_thrift_w_field(&t, 12, AIOS_TT_STRUCT);
                aios_thrift_w_struct_begin(&t);
                aios_thrift_w_i64(&t, 3, cm->null_count);
                if (cm->has_minmax) {
                    aios_thrift_w_binary(&t, 5, cm->max, cm->max_len);
                    aios_thrift_w_binary(&t, 6, cm->min, cm->min_len);
                }
                aios_thrift_w_struct_end(&t);
            }
            aios_thrift_w_struct_end(&t); /* ColumnMetaData */
            aios_thrift_w_struct_end(&t); /* ColumnChunk */
        }
        aios_thrift_w_i64(&t, 2, rg->total_byte_size);
        aios_thrift_w_i64(&t, 3, rg->num_rows);
        aios_thrift_w_i64(&t, 5, rg->file_offset);
        aios_thrift_w_i64(&t, 6, rg->total_compressed);
        aios_thrift_w_field(&t, 7, AIOS_TT_I16);
        aios_thrift_w_zigzag(&t, r);
        aios_thrift_w_struct_end(&t);
    }
    if (w->n_kv) {
        aios_thrift_w_list_begin(&t, 5, AIOS_TT_STRUCT, w->n_kv);
        for (int i = 0; i < w->n_kv; i++) {
            aios_thrift_w_struct_begin(&t);
            aios_thrift_w_binary(&t, 1, w->kv[2 * i], strlen(w->kv[2 * i]));
            if (w->kv[2 * i + 1]) aios_thrift_w_binary(&t, 2, w->kv[2 * i + 1], strlen(w->kv[2 * i + 1]));
            aios_thrift_w_struct_end(&t);
        }
    }
    const char *cb = w->p.created_by ? w->p.created_by : "aios version " AIOS_VERSION_STRING;
    aios_thrift_w_binary(&t, 6, cb, strlen(cb));
    aios_thrift_w_list_begin(&t, 7, AIOS_TT_STRUCT, w->n_leaves);
    for (int i = 0; i < w->n_leaves; i++) {
        aios_thrift_w_struct_begin(&t); /* ColumnOrder union */
        aios_thrift_w_field(&t, 1, AIOS_TT_STRUCT);
        aios_thrift_w_struct_begin(&t); /* TypeDefinedOrder */
        aios_thrift_w_struct_end(&t);
        aios_thrift_w_struct_end(&t);
    }
    aios_thrift_w_struct_end(&t);
    aios_status s = t.err ? aios__err(AIOS_ERR_NOMEM, "parquet writer: footer") : AIOS_OK;
    if (s == AIOS_OK && fb.len > UINT32_MAX) s = aios__err(AIOS_ERR_RANGE, "parquet writer: footer too large");
    if (s == AIOS_OK) s = write_bytes(w, fb.data, fb.len);
    uint32_t fl = (uint32_t)fb.len;
    uint8_t tail[8] = {(uint8_t)fl, (uint8_t)(fl >> 8), (uint8_t)(fl >> 16), (uint8_t)(fl >> 24), 'P', 'A', 'R', '1'};
    if (s == AIOS_OK) s = write_bytes(w, tail, 8);
    aios_buf_free(&fb);
    return s;
}

aios_status aios_pq_writer_close(aios_pq_writer *w) {
    if (!w) return aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: NULL");
    aios_status s = AIOS_OK;
    for (int i = 0; i < w->n_leaves; i++)
        if (w->leaves[i].batch_rows_ok) s = aios__err(AIOS_ERR_INVALID_ARG, "parquet writer: batch not ended before close");
    if (s == AIOS_OK) s = aios_pq_writer_flush_row_group(w);
    if (s == AIOS_OK) s = write_footer(w);
    if (s == AIOS_OK && fflush(w->f) != 0) s = aios__err(AIOS_ERR_IO, "parquet writer: %s: %s", w->path, strerror(errno));
    if (w->f && fclose(w->f) != 0 && s == AIOS_OK) s = aios__err(AIOS_ERR_IO, "parquet writer: %s: %s", w->path, strerror(errno));
    w->f = NULL;
    if (s != AIOS_OK) unlink(w->path);
    writer_free(w);
    return s;
}

void aios_pq_writer_abort(aios_pq_writer *w) {
    if (!w) return;
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
        unlink(w->path);
    }
    writer_free(w);
}
