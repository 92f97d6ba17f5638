/*
 * parquet_meta.c — opening a Parquet file: PAR1 framing, the Thrift footer (FileMetaData),
 * the schema tree, row groups and column chunk facts.
 *
 * Layout (parquet-format README): "PAR1" <column chunks...> <FileMetaData (Thrift compact)>
 * <4-byte little-endian footer length> "PAR1".  The flat schema list is a depth-first walk
 * where each group says how many children follow; we rebuild the tree, giving each node its
 * dotted path and its definition/repetition levels (def counts non-required ancestors incl.
 * itself, rep counts repeated ones).
 *
 * Everything here distrusts the file: the footer length must fit, list counts are bounded by
 * the bytes left, the schema's child counts must add up, depth is capped, every column chunk's
 * byte range must lie inside the data area and its physical type must match the schema.  The
 * footer's strings are copied (names, paths, key-value pairs); statistics point into the
 * mapping, which lives as long as the handle.
 */
#include <stdio.h>
#include <string.h>

#include "format/parquet_internal.h"

#define PQ_MAX_DEPTH 64
#define PQ_MAX_NODES (1 << 20)

static char *dup_n(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = 0;
    return s;
}

typedef struct {
    int type;            /* -1 when absent (groups) */
    int type_length;
    int repetition;      /* -1 when absent */
    const uint8_t *name;
    size_t name_len;
    int num_children;    /* -1 when absent */
    int converted;       /* -1 when absent */
    int scale, precision;
    aios_pq_logical logical;
    aios_pq_time_unit unit;
    int utc, bit_width, is_signed;
    int has_logical;
} schema_el;

static void parse_time_unit(aios_thrift_r *r, aios_pq_time_unit *unit) {
    aios_thrift_struct_begin(r);
    int16_t fid;
    int t;
    while (aios_thrift_field(r, &fid, &t)) {
        if (fid >= 1 && fid <= 3 && t == AIOS_TT_STRUCT) *unit = (aios_pq_time_unit)(fid - 1);
        aios_thrift_skip(r, t);
    }
    aios_thrift_struct_end(r);
}

static void parse_logical(aios_thrift_r *r, schema_el *e) {
    aios_thrift_struct_begin(r);
    int16_t fid;
    int t;
    while (aios_thrift_field(r, &fid, &t)) {
        if (t != AIOS_TT_STRUCT) {
            aios_thrift_skip(r, t);
            continue;
        }
        e->has_logical = 1;
        switch (fid) {
        case 1: e->logical = AIOS_PQ_L_STRING; break;
        case 2: e->logical = AIOS_PQ_L_MAP; break;
        case 3: e->logical = AIOS_PQ_L_LIST; break;
        case 4: e->logical = AIOS_PQ_L_ENUM; break;
        case 5: e->logical = AIOS_PQ_L_DECIMAL; break;
        case 6: e->logical = AIOS_PQ_L_DATE; break;
        case 7: e->logical = AIOS_PQ_L_TIME; break;
        case 8: e->logical = AIOS_PQ_L_TIMESTAMP; break;
        case 10: e->logical = AIOS_PQ_L_INTEGER; break;
        case 11: e->logical = AIOS_PQ_L_UNKNOWN; break;
        case 12: e->logical = AIOS_PQ_L_JSON; break;
        case 13: e->logical = AIOS_PQ_L_BSON; break;
        case 14: e->logical = AIOS_PQ_L_UUID; break;
        case 15: e->logical = AIOS_PQ_L_FLOAT16; break;
        default: e->has_logical = 0; break;
        }
        if (fid == 5 || fid == 7 || fid == 8 || fid == 10) {
            aios_thrift_struct_begin(r);
            int16_t f2;
            int t2;
            while (aios_thrift_field(r, &f2, &t2)) {
                if (fid == 5 && f2 == 1) e->scale = aios_thrift_i32(r, t2);
                else if (fid == 5 && f2 == 2) e->precision = aios_thrift_i32(r, t2);
                else if ((fid == 7 || fid == 8) && f2 == 1) e->utc = aios_thrift_bool(r, t2);
                else if ((fid == 7 || fid == 8) && f2 == 2 && t2 == AIOS_TT_STRUCT) parse_time_unit(r, &e->unit);
                else if (fid == 10 && f2 == 1) e->bit_width = aios_thrift_i8(r, t2);
                else if (fid == 10 && f2 == 2) e->is_signed = aios_thrift_bool(r, t2);
                else aios_thrift_skip(r, t2);
            }
            aios_thrift_struct_end(r);
        } else {
            aios_thrift_skip(r, t);
        }
    }
    aios_thrift_struct_end(r);
}

static void parse_schema_el(aios_thrift_r *r, schema_el *e) {
    memset(e, 0, sizeof *e);
    e->type = e->repetition = e->num_children = e->converted = -1;
    aios_thrift_struct_begin(r);
    int16_t fid;
    int t;
    while (aios_thrift_field(r, &fid, &t)) {
        switch (fid) {
        case 1: e->type = aios_thrift_i32(r, t); break;
        case 2: e->type_length = aios_thrift_i32(r, t); break;
        case 3: e->repetition = aios_thrift_i32(r, t); break;
        case 4: e->name = aios_thrift_binary(r, t, &e->name_len); break;
        case 5: e->num_children = aios_thrift_i32(r, t); break;
        case 6: e->converted = aios_thrift_i32(r, t); break;
        case 7: e->scale = aios_thrift_i32(r, t); break;
        case 8: e->precision = aios_thrift_i32(r, t); break;
        case 10:
            if (t == AIOS_TT_STRUCT) parse_logical(r, e);
            else aios_thrift_skip(r, t);
            break;
        default: aios_thrift_skip(r, t); break;
        }
    }
    aios_thrift_struct_end(r);
}

static void logical_from_converted(schema_el *e) {
    if (e->has_logical || e->converted < 0) return;
    switch (e->converted) {
    case 0: e->logical = AIOS_PQ_L_STRING; break;
    case 1: case 2: e->logical = AIOS_PQ_L_MAP; break;
    case 3: e->logical = AIOS_PQ_L_LIST; break;
    case 4: e->logical = AIOS_PQ_L_ENUM; break;
    case 5: e->logical = AIOS_PQ_L_DECIMAL; break;
    case 6: e->logical = AIOS_PQ_L_DATE; break;
    case 7: e->logical = AIOS_PQ_L_TIME; e->unit = AIOS_PQ_MILLIS; e->utc = 1; break;
    case 8: e->logical = AIOS_PQ_L_TIME; e->unit = AIOS_PQ_MICROS; e->utc = 1; break;
    case 9: e->logical = AIOS_PQ_L_TIMESTAMP; e->unit = AIOS_PQ_MILLIS; e->utc = 1; break;
    case 10: e->logical = AIOS_PQ_L_TIMESTAMP; e->unit = AIOS_PQ_MICROS; e->utc = 1; break;
    case 11: case 12: case 13: case 14:
        e->logical = AIOS_PQ_L_INTEGER;
        e->bit_width = 8 << (e->converted - 11);
        e->is_signed = 0;
        break;
    case 15: case 16: case 17: case 18:
        e->logical = AIOS_PQ_L_INTEGER;
        e->bit_width = 8 << (e->converted - 15);
        e->is_signed = 1;
        break;
    case 19: e->logical = AIOS_PQ_L_JSON; break;
    case 20: e->logical = AIOS_PQ_L_BSON; break;
    default: break;
    }
}

typedef struct {
    aios_parquet_file *pf;
    schema_el *els;
    int n_els;
    int next;     /* next element to consume */
    int n_child;  /* children slots used */
} tree_ctx;

static aios_status build_node(tree_ctx *c, int parent, int depth) {
    aios_parquet_file *pf = c->pf;
    if (depth > PQ_MAX_DEPTH) return aios__err(AIOS_ERR_FORMAT, "schema nested deeper than %d", PQ_MAX_DEPTH);
    if (c->next >= c->n_els) return aios__err(AIOS_ERR_FORMAT, "schema: children counts exceed the element list");
    int idx = c->next++;
    schema_el *e = &c->els[idx];
    aios_pq_node *n = &pf->nodes[idx];
    n->index = idx;
    n->parent = parent;
    n->name = dup_n(e->name ? e->name : (const uint8_t *)"", e->name_len);
    if (!n->name) return aios__err(AIOS_ERR_NOMEM, "schema: out of memory");
    if (parent < 0) {
        n->path = dup_n((const uint8_t *)"", 0);
    } else {
        const char *pp = pf->nodes[parent].path;
        size_t lp = strlen(pp), ln = strlen(n->name);
        char *s = malloc(lp + ln + 2);
        if (s) {
            if (lp) {
                memcpy(s, pp, lp);
                s[lp] = '.';
                memcpy(s + lp + 1, n->name, ln + 1);
            } else {
                memcpy(s, n->name, ln + 1);
            }
        }
        n->path = s;
    }
    if (!n->path) return aios__err(AIOS_ERR_NOMEM, "schema: out of memory");
    logical_from_converted(e);
    n->logical = e->logical;
    n->converted_type = e->converted;
    n->unit = e->unit;
    n->utc = e->utc;
    n->precision = e->precision;
    n->scale = e->scale;
    n->bit_width = e->bit_width;
    n->is_signed = e->is_signed;
    n->leaf = -1;
    if (parent < 0) {
        n->repetition = AIOS_PQ_REQUIRED;
    } else {
        if (e->repetition < 0 || e->repetition > 2)
            return aios__err(AIOS_ERR_FORMAT, "schema: field '%s' has no valid repetition", n->path);
        n->repetition = (aios_pq_repetition)e->repetition;
        n->def_level = (int16_t)(pf->nodes[parent].def_level + (n->repetition != AIOS_PQ_REQUIRED));
        n->rep_level = (int16_t)(pf->nodes[parent].rep_level + (n->repetition == AIOS_PQ_REPEATED));
    }
    if (e->num_children < 0 || (parent >= 0 && e->num_children == 0 && e->type >= 0)) {
        /* leaf */
        if (parent < 0) return aios__err(AIOS_ERR_FORMAT, "schema: root is not a group");
        if (e->type < 0 || e->type > 7) return aios__err(AIOS_ERR_FORMAT, "schema: leaf '%s' has bad type %d", n->path, e->type);
        n->is_leaf = 1;
        n->type = (aios_pq_type)e->type;
        n->type_length = e->type_length;
        if (n->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY && (e->type_length <= 0 || e->type_length > (1 << 24)))
            return aios__err(AIOS_ERR_FORMAT, "schema: leaf '%s' has bad type_length %d", n->path, e->type_length);
        n->leaf = pf->n_leaves++;
        return AIOS_OK;
    }
    if (e->num_children > c->n_els - c->next || e->num_children > c->n_els - c->n_child)
        return aios__err(AIOS_ERR_FORMAT, "schema: '%s' claims %d children, %d elements left", n->path,
                         e->num_children, c->n_els - c->next);
    n->n_children = e->num_children;
    int *kids = pf->child_idx + c->n_child;
    c->n_child += e->num_children;
    n->children = kids;
    for (int i = 0; i < e->num_children; i++) {
        kids[i] = c->next;
        AIOS_TRY(build_node(c, idx, depth + 1));
    }
    return AIOS_OK;
}

static aios_status parse_schema(aios_parquet_file *pf, aios_thrift_r *r, int t) {
    int et;
    int64_t n;
    if (!aios_thrift_list(r, t, &et, &n) || et != AIOS_TT_STRUCT)
        return aios__err(AIOS_ERR_FORMAT, "footer: bad schema list (%s)", r->err ? r->msg : "element type");
    if (n < 1 || n > PQ_MAX_NODES) return aios__err(AIOS_ERR_FORMAT, "footer: schema has %lld elements", (long long)n);
    schema_el *els = calloc((size_t)n, sizeof *els);
    pf->nodes = calloc((size_t)n, sizeof *pf->nodes);
    pf->child_idx = calloc((size_t)n, sizeof *pf->child_idx);
    if (!els || !pf->nodes || !pf->child_idx) {
        free(els);
        return aios__err(AIOS_ERR_NOMEM, "footer: schema of %lld elements", (long long)n);
    }
    pf->n_nodes = (int)n;
    for (int64_t i = 0; i < n && !r->err; i++) parse_schema_el(r, &els[i]);
    if (r->err) {
        free(els);
        return aios__err(AIOS_ERR_FORMAT, "footer: schema: %s", r->msg);
    }
    tree_ctx c = {.pf = pf, .els = els, .n_els = (int)n};
    aios_status s = build_node(&c, -1, 0);
    if (s == AIOS_OK && c.next != c.n_els)
        s = aios__err(AIOS_ERR_FORMAT, "schema: %d elements not reachable from the root", c.n_els - c.next);
    free(els);
    if (s != AIOS_OK) return s;
    pf->leaf_node = calloc((size_t)(pf->n_leaves ? pf->n_leaves : 1), sizeof *pf->leaf_node);
    if (!pf->leaf_node) return aios__err(AIOS_ERR_NOMEM, "schema");
    for (int i = 0; i < pf->n_nodes; i++)
        if (pf->nodes[i].is_leaf) pf->leaf_node[pf->nodes[i].leaf] = i;
    return AIOS_OK;
}

static void parse_stats(aios_thrift_r *r, aios_pq_chunk_info *ci, aios_pq_type type) {
    const uint8_t *mn = NULL, *mx = NULL, *omn = NULL, *omx = NULL;
    size_t lmn = 0, lmx = 0, lomn = 0, lomx = 0;
    aios_thrift_struct_begin(r);
    int16_t fid;
    int t;
    ci->has_stats = 1;
    while (aios_thrift_field(r, &fid, &t)) {
        switch (fid) {
        case 1: omx = aios_thrift_binary(r, t, &lomx); break;
        case 2: omn = aios_thrift_binary(r, t, &lomn); break;
        case 3: ci->null_count = aios_thrift_i64(r, t); ci->has_null_count = 1; break;
        case 4: ci->distinct_count = aios_thrift_i64(r, t); ci->has_distinct_count = 1; break;
        case 5: mx = aios_thrift_binary(r, t, &lmx); break;
        case 6: mn = aios_thrift_binary(r, t, &lmn); break;
        default: aios_thrift_skip(r, t); break;
        }
    }
    aios_thrift_struct_end(r);
    if (mn && mx) {
        ci->min = mn, ci->min_len = lmn, ci->max = mx, ci->max_len = lmx, ci->has_min_max = 1;
    } else if (omn && omx && type != AIOS_PQ_BYTE_ARRAY && type != AIOS_PQ_FIXED_LEN_BYTE_ARRAY) {
        /* legacy min/max: signed order, only trustworthy for numbers */
        ci->min = omn, ci->min_len = lomn, ci->max = omx, ci->max_len = lomx, ci->has_min_max = 1;
    }
}

static aios_status parse_column_meta(aios_parquet_file *pf, aios_thrift_r *r, aios_pq_chunk_info *ci,
                                     const aios_pq_node *leaf, int *got) {
    aios_thrift_struct_begin(r);
    int16_t fid;
    int t;
    int type = -1;
    int have_codec = 0, have_nv = 0, have_dpo = 0, have_tcs = 0;
    while (aios_thrift_field(r, &fid, &t)) {
        switch (fid) {
        case 1: type = aios_thrift_i32(r, t); break;
        case 2: {
            int et;
            int64_t n;
            if (aios_thrift_list(r, t, &et, &n))
                for (int64_t i = 0; i < n && !r->err; i++) {
                    int64_t e = aios_thrift_elem_i64(r, et);
                    if (e >= 0 && e < 32) ci->encodings |= 1u << e;
                }
            break;
        }
        case 4: {
            int32_t c = aios_thrift_i32(r, t);
            ci->codec = (aios_pq_codec)c;
            have_codec = 1;
            break;
        }
        case 5: ci->num_values = aios_thrift_i64(r, t); have_nv = 1; break;
        case 6: ci->total_uncompressed_size = aios_thrift_i64(r, t); break;
        case 7: ci->total_compressed_size = aios_thrift_i64(r, t); have_tcs = 1; break;
        case 9: ci->data_page_offset = aios_thrift_i64(r, t); have_dpo = 1; break;
        case 11: ci->dictionary_page_offset = aios_thrift_i64(r, t); break;
        case 12:
            if (t == AIOS_TT_STRUCT) parse_stats(r, ci, leaf->type);
            else aios_thrift_skip(r, t);
            break;
        default: aios_thrift_skip(r, t); break;
        }
    }
    aios_thrift_struct_end(r);
    if (r->err) return AIOS_OK; /* reported by the caller */
    if (!have_codec || !have_nv || !have_dpo || !have_tcs || type < 0)
        return aios__err(AIOS_ERR_FORMAT, "column '%s': metadata misses required fields", leaf->path);
    if (type != (int)leaf->type)
        return aios__err(AIOS_ERR_FORMAT, "column '%s': chunk type %d, schema says %s", leaf->path, type,
                         aios_pq_type_name(leaf->type));
    if (ci->num_values == 0) { /* empty chunk: nothing is read (pyarrow writes offsets 0) */
        ci->dictionary_page_offset = -1;
        *got = 1;
        return AIOS_OK;
    }
    if (ci->num_values < 0 || ci->total_compressed_size < 0 || ci->data_page_offset < 4)
        return aios__err(AIOS_ERR_FORMAT, "column '%s': negative sizes or offsets", leaf->path);
    uint64_t start = aios_pq_chunk_start(ci);
    if (ci->dictionary_page_offset <= 0) ci->dictionary_page_offset = -1;
    uint64_t end;
    if (!aios__add_ok(start, (uint64_t)ci->total_compressed_size, &end) || end > pf->size - 8)
        return aios__err(AIOS_ERR_FORMAT, "column '%s': chunk [%llu, +%lld) lies outside the file (%zu bytes)",
                         leaf->path, (unsigned long long)start, (long long)ci->total_compressed_size, pf->size);
    (void)pf;
    *got = 1;
    return AIOS_OK;
}

static aios_status parse_row_group(aios_parquet_file *pf, aios_thrift_r *r, aios__pq_rg *rg, int rgi) {
    aios_thrift_struct_begin(r);
    int16_t fid;
    int t;
    int have_cols = 0, have_rows = 0;
    while (aios_thrift_field(r, &fid, &t)) {
        if (fid == 1) {
            int et;
            int64_t n;
            if (!aios_thrift_list(r, t, &et, &n)) break;
            if (et != AIOS_TT_STRUCT || n != pf->n_leaves)
                return aios__err(AIOS_ERR_FORMAT, "row group %d: %lld column chunks, schema has %d leaves", rgi,
                                 (long long)n, pf->n_leaves);
            if (rg->chunks) return aios__err(AIOS_ERR_FORMAT, "row group %d: columns given twice", rgi);
            rg->chunks = calloc((size_t)(n ? n : 1), sizeof *rg->chunks);
            if (!rg->chunks) return aios__err(AIOS_ERR_NOMEM, "row group %d", rgi);
            for (int64_t c = 0; c < n && !r->err; c++) {
                aios_pq_chunk_info *ci = &rg->chunks[c];
                ci->dictionary_page_offset = -1;
                const aios_pq_node *leaf = &pf->nodes[pf->leaf_node[c]];
                int got = 0;
                aios_thrift_struct_begin(r);
                int16_t f2;
                int t2;
                while (aios_thrift_field(r, &f2, &t2)) {
                    if (f2 == 1) {
                        size_t l;
                        (void)aios_thrift_binary(r, t2, &l);
                        if (!r->err)
                            return aios__err(AIOS_ERR_UNSUPPORTED, "row group %d column '%s': data in another file",
                                             rgi, leaf->path);
                    } else if (f2 == 3 && t2 == AIOS_TT_STRUCT) {
                        aios_status s = parse_column_meta(pf, r, ci, leaf, &got);
                        if (s != AIOS_OK) return aios__err_prefix(s, "row group %d", rgi);
                    } else {
                        aios_thrift_skip(r, t2);
                    }
                }
                aios_thrift_struct_end(r);
                if (!r->err && !got)
                    return aios__err(AIOS_ERR_FORMAT, "row group %d column '%s': no metadata (encrypted?)", rgi,
                                     leaf->path);
            }
            have_cols = 1;
        } else if (fid == 2) {
            rg->total_byte_size = aios_thrift_i64(r, t);
        } else if (fid == 3) {
            rg->num_rows = aios_thrift_i64(r, t);
            have_rows = 1;
        } else {
            aios_thrift_skip(r, t);
        }
    }
    aios_thrift_struct_end(r);
    if (r->err) return AIOS_OK;
    if (!have_cols || !have_rows) return aios__err(AIOS_ERR_FORMAT, "row group %d: missing columns or num_rows", rgi);
    if (rg->num_rows < 0) return aios__err(AIOS_ERR_FORMAT, "row group %d: negative num_rows", rgi);
    for (int c = 0; c < pf->n_leaves; c++) {
        const aios_pq_node *leaf = &pf->nodes[pf->leaf_node[c]];
        if (leaf->rep_level == 0 && rg->chunks[c].num_values != rg->num_rows)
            return aios__err(AIOS_ERR_FORMAT, "row group %d column '%s': %lld values for %lld rows", rgi, leaf->path,
                             (long long)rg->chunks[c].num_values, (long long)rg->num_rows);
    }
    return AIOS_OK;
}

static aios_status parse_footer(aios_parquet_file *pf, const uint8_t *p, size_t n) {
    aios_thrift_r r;
    aios_thrift_r_init(&r, p, n);
    aios_thrift_struct_begin(&r);
    int16_t fid;
    int t;
    int have_schema = 0, have_rows = 0, have_rgs = 0;
    while (aios_thrift_field(&r, &fid, &t)) {
        switch (fid) {
        case 2:
            if (have_schema) return aios__err(AIOS_ERR_FORMAT, "footer: schema given twice");
            AIOS_TRY(parse_schema(pf, &r, t));
            have_schema = 1;
            break;
        case 3: pf->num_rows = aios_thrift_i64(&r, t); have_rows = 1; break;
        case 4: {
            if (!have_schema) return aios__err(AIOS_ERR_FORMAT, "footer: row groups before the schema");
            if (have_rgs) return aios__err(AIOS_ERR_FORMAT, "footer: row groups given twice");
            int et;
            int64_t cnt;
            if (!aios_thrift_list(&r, t, &et, &cnt)) break;
            if (et != AIOS_TT_STRUCT || cnt > (1 << 24)) return aios__err(AIOS_ERR_FORMAT, "footer: bad row group list");
            pf->rgs = calloc((size_t)(cnt ? cnt : 1), sizeof *pf->rgs);
            if (!pf->rgs) return aios__err(AIOS_ERR_NOMEM, "footer: %lld row groups", (long long)cnt);
            for (int64_t i = 0; i < cnt && !r.err; i++) {
                pf->n_rg = (int)i + 1;
                AIOS_TRY(parse_row_group(pf, &r, &pf->rgs[i], (int)i));
            }
            have_rgs = 1;
            break;
        }
        case 5: {
            int et;
            int64_t cnt;
            if (!aios_thrift_list(&r, t, &et, &cnt)) break;
            if (et != AIOS_TT_STRUCT) return aios__err(AIOS_ERR_FORMAT, "footer: bad key-value list");
            free(pf->kv);
            pf->kv = calloc((size_t)(cnt ? 2 * cnt : 1), sizeof *pf->kv);
            if (!pf->kv) return aios__err(AIOS_ERR_NOMEM, "footer: key-value metadata");
            for (int64_t i = 0; i < cnt && !r.err; i++) {
                pf->n_kv = (int)i + 1;
                aios_thrift_struct_begin(&r);
                int16_t f2;
                int t2;
                while (aios_thrift_field(&r, &f2, &t2)) {
                    if (f2 == 1 || f2 == 2) {
                        size_t l;
                        const uint8_t *s = aios_thrift_binary(&r, t2, &l);
                        if (r.err) break;
                        char **slot = &pf->kv[2 * i + (f2 - 1)];
                        free(*slot);
                        *slot = dup_n(s, l);
                        if (!*slot) return aios__err(AIOS_ERR_NOMEM, "footer: key-value metadata");
                    } else {
                        aios_thrift_skip(&r, t2);
                    }
                }
                aios_thrift_struct_end(&r);
                if (!r.err && !pf->kv[2 * i]) return aios__err(AIOS_ERR_FORMAT, "footer: key-value pair without key");
            }
            break;
        }
        case 6: {
            size_t l;
            const uint8_t *s = aios_thrift_binary(&r, t, &l);
            if (s) {
                free(pf->created_by);
                pf->created_by = dup_n(s, l);
                if (!pf->created_by) return aios__err(AIOS_ERR_NOMEM, "footer");
            }
            break;
        }
        case 8: case 9:
            return aios__err(AIOS_ERR_UNSUPPORTED, "footer: encrypted files are not supported");
        default: aios_thrift_skip(&r, t); break;
        }
    }
    aios_thrift_struct_end(&r);
    if (r.err) return aios__err(AIOS_ERR_FORMAT, "footer: %s", r.msg);
    if (!have_schema || !have_rows || !have_rgs)
        return aios__err(AIOS_ERR_FORMAT, "footer: missing %s", !have_schema ? "schema" : !have_rows ? "num_rows" : "row_groups");
    int64_t sum = 0;
    for (int i = 0; i < pf->n_rg; i++)
        if (__builtin_add_overflow(sum, pf->rgs[i].num_rows, &sum))
            return aios__err(AIOS_ERR_FORMAT, "footer: row counts overflow");
    if (sum != pf->num_rows)
        return aios__err(AIOS_ERR_FORMAT, "footer: num_rows %lld but row groups hold %lld", (long long)pf->num_rows,
                         (long long)sum);
    return AIOS_OK;
}

static aios_status open_common(aios_parquet_file *pf) {
    const uint8_t *d = pf->data;
    size_t n = pf->size;
    if (n < 12) return aios__err(AIOS_ERR_FORMAT, "file of %zu bytes is too small for Parquet", n);
    if (memcmp(d, "PAR1", 4) != 0) return aios__err(AIOS_ERR_FORMAT, "bad magic at start (not a Parquet file)");
    if (memcmp(d + n - 4, "PARE", 4) == 0) return aios__err(AIOS_ERR_UNSUPPORTED, "encrypted footer (PARE)");
    if (memcmp(d + n - 4, "PAR1", 4) != 0) return aios__err(AIOS_ERR_FORMAT, "bad magic at end (truncated file?)");
    uint32_t flen = (uint32_t)d[n - 8] | (uint32_t)d[n - 7] << 8 | (uint32_t)d[n - 6] << 16 | (uint32_t)d[n - 5] << 24;
    if ((uint64_t)flen + 12 > n) return aios__err(AIOS_ERR_FORMAT, "footer length %u exceeds the file (%zu bytes)", flen, n);
    pf->max_levels = (int64_t)AIOS_MIN((uint64_t)n * 1024 + (1u << 20), (uint64_t)INT32_MAX);
    return parse_footer(pf, d + n - 8 - flen, flen);
}

void aios_parquet_close(aios_parquet_file *pf) {
    if (!pf) return;
    if (pf->nodes)
        for (int i = 0; i < pf->n_nodes; i++) {
            free((void *)pf->nodes[i].name);
            free((void *)pf->nodes[i].path);
        }
    free(pf->nodes);
    free(pf->child_idx);
    free(pf->leaf_node);
    if (pf->rgs)
        for (int i = 0; i < pf->n_rg; i++) free(pf->rgs[i].chunks);
    free(pf->rgs);
    if (pf->kv)
        for (int i = 0; i < 2 * pf->n_kv; i++) free(pf->kv[i]);
    free(pf->kv);
    free(pf->created_by);
    free(pf->name);
    aios__unmap_file(&pf->map);
    free(pf);
}

static aios_status finish_open(aios_parquet_file *pf, aios_parquet_file **out) {
    aios_status s = open_common(pf);
    if (s != AIOS_OK) {
        aios__err_prefix(s, "parquet: %s", pf->name);
        aios_parquet_close(pf);
        return s;
    }
    *out = pf;
    return AIOS_OK;
}

aios_status aios_parquet_open(const char *path, aios_parquet_file **out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "parquet: NULL out");
    *out = NULL;
    if (!path) return aios__err(AIOS_ERR_INVALID_ARG, "parquet: NULL path");
    aios_parquet_file *pf = calloc(1, sizeof *pf);
    if (!pf) return aios__err(AIOS_ERR_NOMEM, "parquet: %s", path);
    pf->name = dup_n((const uint8_t *)path, strlen(path));
    aios_status s = aios__map_file(path, &pf->map);
    if (s != AIOS_OK || !pf->name) {
        if (s == AIOS_OK) s = aios__err(AIOS_ERR_NOMEM, "out of memory");
        aios__err_prefix(s, "parquet");
        aios_parquet_close(pf);
        return s;
    }
    pf->data = pf->map.data;
    pf->size = pf->map.size;
    return finish_open(pf, out);
}

aios_status aios_parquet_open_memory(const void *data, size_t size, aios_parquet_file **out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "parquet: NULL out");
    *out = NULL;
    if (!data && size) return aios__err(AIOS_ERR_INVALID_ARG, "parquet: NULL data");
    aios_parquet_file *pf = calloc(1, sizeof *pf);
    if (!pf) return aios__err(AIOS_ERR_NOMEM, "parquet: <memory>");
    pf->name = dup_n((const uint8_t *)"<memory>", 8);
    if (!pf->name) {
        aios_parquet_close(pf);
        return aios__err(AIOS_ERR_NOMEM, "parquet: <memory>");
    }
    pf->data = data ? (const uint8_t *)data : (const uint8_t *)"";
    pf->size = size;
    return finish_open(pf, out);
}

/* ---- accessors ---- */

int64_t aios_parquet_num_rows(const aios_parquet_file *pf) { return pf ? pf->num_rows : -1; }
const uint8_t *aios_pq_file_data(const aios_parquet_file *pf, size_t *size) {
    if (size) *size = pf->size;
    return pf->data;
}
int aios_pq_num_nodes(const aios_parquet_file *pf) { return pf->n_nodes; }
const aios_pq_node *aios_pq_node_at(const aios_parquet_file *pf, int i) {
    return i >= 0 && i < pf->n_nodes ? &pf->nodes[i] : NULL;
}
int aios_pq_num_leaves(const aios_parquet_file *pf) { return pf->n_leaves; }
const aios_pq_node *aios_pq_leaf(const aios_parquet_file *pf, int leaf) {
    return leaf >= 0 && leaf < pf->n_leaves ? &pf->nodes[pf->leaf_node[leaf]] : NULL;
}
int aios_pq_find_node(const aios_parquet_file *pf, const char *path) {
    for (int i = 0; i < pf->n_nodes; i++)
        if (!strcmp(pf->nodes[i].path, path)) return i;
    return -1;
}
int aios_pq_find_leaf(const aios_parquet_file *pf, const char *path) {
    int n = aios_pq_find_node(pf, path);
    if (n < 0) return -1;
    while (!pf->nodes[n].is_leaf) {
        if (pf->nodes[n].n_children != 1) return -1;
        n = pf->nodes[n].children[0];
    }
    return pf->nodes[n].leaf;
}
int aios_pq_num_row_groups(const aios_parquet_file *pf) { return pf->n_rg; }
int64_t aios_pq_row_group_num_rows(const aios_parquet_file *pf, int rg) {
    return rg >= 0 && rg < pf->n_rg ? pf->rgs[rg].num_rows : -1;
}
int aios_pq_num_kv(const aios_parquet_file *pf) { return pf->n_kv; }
aios_status aios_pq_kv_at(const aios_parquet_file *pf, int i, const char **key, const char **value) {
    if (i < 0 || i >= pf->n_kv) return aios__err(AIOS_ERR_RANGE, "parquet: key-value %d of %d", i, pf->n_kv);
    *key = pf->kv[2 * i];
    *value = pf->kv[2 * i + 1];
    return AIOS_OK;
}
const char *aios_pq_kv_get(const aios_parquet_file *pf, const char *key) {
    for (int i = 0; i < pf->n_kv; i++)
        if (pf->kv[2 * i] && !strcmp(pf->kv[2 * i], key)) return pf->kv[2 * i + 1];
    return NULL;
}
const char *aios_pq_created_by(const aios_parquet_file *pf) { return pf->created_by ? pf->created_by : ""; }
const aios_pq_chunk_info *aios_pq_chunk(const aios_parquet_file *pf, int rg, int leaf) {
    if (rg < 0 || rg >= pf->n_rg || leaf < 0 || leaf >= pf->n_leaves) return NULL;
    return &pf->rgs[rg].chunks[leaf];
}

const char *aios_pq_type_name(aios_pq_type t) {
    static const char *n[] = {"BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
    return (unsigned)t < 8 ? n[t] : "?";
}
const char *aios_pq_codec_name(aios_pq_codec c) {
    static const char *n[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};
    return (unsigned)c < 8 ? n[c] : "?";
}
const char *aios_pq_encoding_name(aios_pq_encoding e) {
    switch (e) {
    case AIOS_PQ_PLAIN: return "PLAIN";
    case AIOS_PQ_PLAIN_DICTIONARY: return "PLAIN_DICTIONARY";
    case AIOS_PQ_RLE: return "RLE";
    case AIOS_PQ_BIT_PACKED: return "BIT_PACKED";
    case AIOS_PQ_DELTA_BINARY_PACKED: return "DELTA_BINARY_PACKED";
    case AIOS_PQ_DELTA_LENGTH_BYTE_ARRAY: return "DELTA_LENGTH_BYTE_ARRAY";
    case AIOS_PQ_DELTA_BYTE_ARRAY: return "DELTA_BYTE_ARRAY";
    case AIOS_PQ_RLE_DICTIONARY: return "RLE_DICTIONARY";
    case AIOS_PQ_BYTE_STREAM_SPLIT: return "BYTE_STREAM_SPLIT";
    }
    return "?";
}
int aios_pq_codec_parse(const char *s) {
    if (!strcmp(s, "none") || !strcmp(s, "uncompressed")) return AIOS_PQ_UNCOMPRESSED;
    if (!strcmp(s, "snappy")) return AIOS_PQ_SNAPPY;
    if (!strcmp(s, "gzip")) return AIOS_PQ_GZIP;
    if (!strcmp(s, "zstd")) return AIOS_PQ_ZSTD;
    if (!strcmp(s, "lz4_raw") || !strcmp(s, "lz4")) return AIOS_PQ_LZ4_RAW;
    return -1;
}
