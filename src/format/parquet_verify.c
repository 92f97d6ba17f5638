/*
 * parquet_verify.c — aios_parquet_verify: a whole-file integrity check.
 *
 * Decodes every page of every column chunk (which checks page CRCs, codecs, level and value
 * counts against the page headers and the footer, and row counts per row group), then checks
 * each chunk's statistics against the decoded values: null_count (for non-repeated leaves)
 * and min/max as bounds (stat_min <= every value <= stat_max, in the column's sort order:
 * signed or unsigned integers, IEEE floats ignoring NaN, unsigned bytewise for binary).
 * Every problem is one line in the report; the first becomes the returned error.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "format/parquet_internal.h"

static int cmp_bytes(const uint8_t *a, size_t la, const uint8_t *b, size_t lb) {
    size_t n = la < lb ? la : lb;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return la < lb ? -1 : la > lb ? 1 : 0;
}

/* Compares value i of column c with raw stat bytes s; returns <0, 0, >0, or 2 when not comparable. */
static int cmp_stat(const aios_pq_column *c, int64_t i, const uint8_t *s, size_t sl) {
    const aios_pq_node *n = c->node;
    int is_unsigned = n->logical == AIOS_PQ_L_INTEGER && !n->is_signed;
    switch (c->type) {
    case AIOS_PQ_BOOLEAN: {
        if (sl != 1) return 2;
        int v = ((const uint8_t *)c->values)[i], w = s[0] & 1;
        return (v > w) - (v < w);
    }
    case AIOS_PQ_INT32: {
        if (sl != 4) return 2;
        int32_t v = ((const int32_t *)c->values)[i], w;
        memcpy(&w, s, 4);
        if (is_unsigned) return ((uint32_t)v > (uint32_t)w) - ((uint32_t)v < (uint32_t)w);
        return (v > w) - (v < w);
    }
    case AIOS_PQ_INT64: {
        if (sl != 8) return 2;
        int64_t v = ((const int64_t *)c->values)[i], w;
        memcpy(&w, s, 8);
        if (is_unsigned) return ((uint64_t)v > (uint64_t)w) - ((uint64_t)v < (uint64_t)w);
        return (v > w) - (v < w);
    }
    case AIOS_PQ_FLOAT: {
        if (sl != 4) return 2;
        float v = ((const float *)c->values)[i], w;
        memcpy(&w, s, 4);
        if (isnan(v) || isnan(w)) return 2;
        return (v > w) - (v < w);
    }
    case AIOS_PQ_DOUBLE: {
        if (sl != 8) return 2;
        double v = ((const double *)c->values)[i], w;
        memcpy(&w, s, 8);
        if (isnan(v) || isnan(w)) return 2;
        return (v > w) - (v < w);
    }
    case AIOS_PQ_BYTE_ARRAY:
    case AIOS_PQ_FIXED_LEN_BYTE_ARRAY:
        if (n->logical == AIOS_PQ_L_DECIMAL) return 2; /* signed two's complement order */
        return cmp_bytes(c->bytes[i].ptr, c->bytes[i].len, s, sl);
    default:
        return 2;
    }
}

/* 1 when p[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static int utf8_ok(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int k;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) k = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef) k = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4) k = 3, cp = c & 0x07;
        else return 0;
        if (n - i <= (size_t)k) return 0;
        for (int j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += (size_t)k + 1;
    }
    return 1;
}

aios_status aios_parquet_verify(aios_parquet_file *pf, FILE *report) {
    aios_status first = AIOS_OK;
    char first_msg[1024] = "";
    int problems = 0;
#define PROBLEM(st, ...)                                                                \
    do {                                                                                \
        char m_[1024];                                                                  \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                           \
        if (report) fprintf(report, "problem: %s\n", m_);                               \
        if (first == AIOS_OK) {                                                         \
            first = (st);                                                               \
            snprintf(first_msg, sizeof first_msg, "%s", m_);                            \
        }                                                                               \
        problems++;                                                                     \
    } while (0)
    for (int i = 0; i < pf->n_nodes; i++)
        if (!utf8_ok((const uint8_t *)pf->nodes[i].name, strlen(pf->nodes[i].name)))
            PROBLEM(AIOS_ERR_ENCODING, "schema: field name '%s' is not valid UTF-8", pf->nodes[i].path);
    for (int rg = 0; rg < pf->n_rg; rg++) {
        for (int leaf = 0; leaf < pf->n_leaves; leaf++) {
            const aios_pq_node *lf = aios_pq_leaf(pf, leaf);
            const aios_pq_chunk_info *ci = aios_pq_chunk(pf, rg, leaf);
            aios_pq_column c;
            aios_status s = aios_pq_read_column(pf, rg, leaf, &c);
            if (s != AIOS_OK) {
                PROBLEM(s, "%s", aios_last_error());
                continue;
            }
            if (c.num_levels != ci->num_values)
                PROBLEM(AIOS_ERR_CORRUPT, "row group %d column '%s': %lld values decoded, footer says %lld", rg, lf->path,
                        (long long)c.num_levels, (long long)ci->num_values);
            if (ci->has_null_count && c.max_rep == 0 && ci->null_count != c.null_count)
                PROBLEM(AIOS_ERR_CORRUPT, "row group %d column '%s': statistics null_count %lld, decoded %lld nulls", rg,
                        lf->path, (long long)ci->null_count, (long long)c.null_count);
            if (lf->logical == AIOS_PQ_L_STRING && lf->type == AIOS_PQ_BYTE_ARRAY) {
                for (int64_t i = 0; i < c.num_slots; i++)
                    if ((!c.valid || c.valid[i]) && !utf8_ok(c.bytes[i].ptr, c.bytes[i].len)) {
                        PROBLEM(AIOS_ERR_ENCODING, "row group %d column '%s': value %lld is not valid UTF-8", rg, lf->path,
                                (long long)i);
                        break;
                    }
                if (ci->has_min_max && (!utf8_ok(ci->min, ci->min_len) || !utf8_ok(ci->max, ci->max_len)))
                    PROBLEM(AIOS_ERR_ENCODING, "row group %d column '%s': statistics are not valid UTF-8", rg, lf->path);
            }
            if (ci->has_min_max && lf->type != AIOS_PQ_INT96) {
                int64_t bad_lo = -1, bad_hi = -1;
                for (int64_t i = 0; i < c.num_slots; i++) {
                    if (c.valid && !c.valid[i]) continue;
                    int a = cmp_stat(&c, i, ci->min, ci->min_len);
                    int b = cmp_stat(&c, i, ci->max, ci->max_len);
                    if (a != 2 && a < 0 && bad_lo < 0) bad_lo = i;
                    if (b != 2 && b > 0 && bad_hi < 0) bad_hi = i;
                }
                if (bad_lo >= 0)
                    PROBLEM(AIOS_ERR_CORRUPT, "row group %d column '%s': value %lld is below the statistics minimum", rg,
                            lf->path, (long long)bad_lo);
                if (bad_hi >= 0)
                    PROBLEM(AIOS_ERR_CORRUPT, "row group %d column '%s': value %lld is above the statistics maximum", rg,
                            lf->path, (long long)bad_hi);
            }
            aios_pq_column_free(&c);
        }
    }
#undef PROBLEM
    if (first != AIOS_OK) {
        const char *m = first_msg;
        size_t pl = strlen("parquet: ") + strlen(pf->name) + 2;
        if (!strncmp(m, "parquet: ", 9) && strlen(m) > pl && !strncmp(m + 9, pf->name, strlen(pf->name))) m += pl;
        return aios__err(first, "parquet: %s: %d problem(s); first: %s", pf->name, problems, m);
    }
    return AIOS_OK;
}
