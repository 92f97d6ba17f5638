/*
 * parquet_read.c — decoding column chunks: page headers, codecs, levels and values.
 *
 * For each row group the chunk's pages are walked from the dictionary page (if any) to the
 * last data page, stopping when the chunk's declared value count is reached.  Per page:
 *   header (Thrift) -> CRC check (if present) -> decompress (skipped when uncompressed: the
 *   page is used in place) -> repetition and definition levels (RLE/bit-packed hybrid, or the
 *   legacy BIT_PACKED) -> the non-null values decoded densely into the output slots of this
 *   page -> spread backwards in place so nulls get their own slots.
 * Output arrays are sized once from the footer's value counts (capped by a sanity bound
 * derived from the file size); nothing is allocated per value.  BYTE_ARRAY values are
 * (ptr, len) pairs into the page: into the mapping for uncompressed pages (zero copy), into
 * a decompressed page buffer kept alive by the column otherwise.
 *
 * Encodings: PLAIN, PLAIN_DICTIONARY / RLE_DICTIONARY, RLE (booleans), DELTA_BINARY_PACKED,
 * DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT.  Pages v1 and v2.
 * Reference: parquet-format Encodings.md and parquet.thrift (PageHeader, DataPageHeaderV2).
 */
#include <stdio.h>
#include <string.h>

#include "format/parquet_internal.h"

enum { PAGE_DATA = 0, PAGE_INDEX = 1, PAGE_DICT = 2, PAGE_DATA_V2 = 3 };

typedef struct {
    int type;
    int32_t usize, csize;
    int has_crc;
    uint32_t crc;
    /* data page v1 / v2 / dictionary */
    int32_t num_values, num_nulls, num_rows;
    int32_t encoding, def_enc, rep_enc;
    int32_t def_len, rep_len;
    int is_compressed;
    int has_sub;
} page_hdr;

typedef struct {
    void **bufs;
    int n, cap;
} keepalive;

typedef struct {
    aios_parquet_file *pf;
    const aios_pq_node *leaf;
    aios_pq_column *col;
    keepalive *ka;
    int64_t cap_levels;        /* allocated level entries / slots */
    size_t es;                 /* bytes per fixed-size value (0 for BYTE_ARRAY) */
    uint8_t *scratch;          /* decompressed page (reused when nothing points into it) */
    size_t scratch_cap;
    uint32_t *idx;
    size_t idx_cap;
    int16_t *tmp_levels;
    /* dictionary of the current chunk */
    uint8_t *dict_vals;
    aios_pq_bytes *dict_bytes;
    int64_t dict_n;
    int dict_zero_copy;
    void *zctx;
    int all_zero_copy;
    uint64_t inflated, inflate_budget; /* decompressed bytes so far / allowed for this read */
} reader;

static aios_status ka_add(keepalive *ka, void *p) {
    if (ka->n == ka->cap) {
        int nc = ka->cap ? ka->cap * 2 : 8;
        void **nb = realloc(ka->bufs, (size_t)nc * sizeof *nb);
        if (!nb) {
            free(p);
            return aios__err(AIOS_ERR_NOMEM, "out of memory");
        }
        ka->bufs = nb;
        ka->cap = nc;
    }
    ka->bufs[ka->n++] = p;
    return AIOS_OK;
}

static void parse_page_hdr(aios_thrift_r *r, page_hdr *h) {
    memset(h, 0, sizeof *h);
    h->type = -1;
    h->usize = h->csize = -1;
    h->is_compressed = 1;
    h->encoding = h->def_enc = h->rep_enc = -1;
    h->num_values = -1;
    aios_thrift_struct_begin(r);
    int16_t fid;
    int t;
    while (aios_thrift_field(r, &fid, &t)) {
        switch (fid) {
        case 1: h->type = aios_thrift_i32(r, t); break;
        case 2: h->usize = aios_thrift_i32(r, t); break;
        case 3: h->csize = aios_thrift_i32(r, t); break;
        case 4: h->crc = (uint32_t)aios_thrift_i32(r, t); h->has_crc = 1; break;
        case 5: case 7: case 8: {
            if (t != AIOS_TT_STRUCT) {
                aios_thrift_skip(r, t);
                break;
            }
            h->has_sub |= 1 << fid;
            aios_thrift_struct_begin(r);
            int16_t f2;
            int t2;
            while (aios_thrift_field(r, &f2, &t2)) {
                if (fid == 5) { /* DataPageHeader */
                    if (f2 == 1) h->num_values = aios_thrift_i32(r, t2);
                    else if (f2 == 2) h->encoding = aios_thrift_i32(r, t2);
                    else if (f2 == 3) h->def_enc = aios_thrift_i32(r, t2);
                    else if (f2 == 4) h->rep_enc = aios_thrift_i32(r, t2);
                    else aios_thrift_skip(r, t2);
                } else if (fid == 7) { /* DictionaryPageHeader */
                    if (f2 == 1) h->num_values = aios_thrift_i32(r, t2);
                    else if (f2 == 2) h->encoding = aios_thrift_i32(r, t2);
                    else aios_thrift_skip(r, t2);
                } else { /* DataPageHeaderV2 */
                    if (f2 == 1) h->num_values = aios_thrift_i32(r, t2);
                    else if (f2 == 2) h->num_nulls = aios_thrift_i32(r, t2);
                    else if (f2 == 3) h->num_rows = aios_thrift_i32(r, t2);
                    else if (f2 == 4) h->encoding = aios_thrift_i32(r, t2);
                    else if (f2 == 5) h->def_len = aios_thrift_i32(r, t2);
                    else if (f2 == 6) h->rep_len = aios_thrift_i32(r, t2);
                    else if (f2 == 7) h->is_compressed = aios_thrift_bool(r, t2);
                    else aios_thrift_skip(r, t2);
                }
            }
            aios_thrift_struct_end(r);
            break;
        }
        default: aios_thrift_skip(r, t); break;
        }
    }
    aios_thrift_struct_end(r);
}

static aios_status grow_scratch(reader *rd, size_t n) {
    if (n <= rd->scratch_cap) return AIOS_OK;
    size_t nc = AIOS_MAX(n, rd->scratch_cap * 2);
    uint8_t *p = realloc(rd->scratch, nc ? nc : 1);
    if (!p) return aios__err(AIOS_ERR_NOMEM, "page buffer of %zu bytes", n);
    rd->scratch = p;
    rd->scratch_cap = nc;
    return AIOS_OK;
}

static aios_status grow_idx(reader *rd, size_t n) {
    if (n <= rd->idx_cap) return AIOS_OK;
    size_t nc = AIOS_MAX(n, rd->idx_cap * 2);
    uint32_t *p = realloc(rd->idx, (nc ? nc : 1) * sizeof *p);
    if (!p) return aios__err(AIOS_ERR_NOMEM, "index buffer");
    rd->idx = p;
    rd->idx_cap = nc;
    return AIOS_OK;
}

/* Decodes `n` PLAIN values from [p, end) into dense outputs vals / bytes (for BYTE_ARRAY).
 * Sets *used to bytes consumed. */
static aios_status decode_plain(reader *rd, const uint8_t *p, size_t len, int64_t n, uint8_t *vals,
                                aios_pq_bytes *bytes, size_t *used) {
    const aios_pq_node *lf = rd->leaf;
    switch (lf->type) {
    case AIOS_PQ_BOOLEAN: {
        if ((uint64_t)(n + 7) / 8 > len) return aios__err(AIOS_ERR_CORRUPT, "PLAIN booleans: %lld values in %zu bytes", (long long)n, len);
        for (int64_t i = 0; i < n; i++) vals[i] = (p[i >> 3] >> (i & 7)) & 1;
        *used = (size_t)(n + 7) / 8;
        return AIOS_OK;
    }
    case AIOS_PQ_BYTE_ARRAY: {
        const uint8_t *q = p, *end = p + len;
        for (int64_t i = 0; i < n; i++) {
            if (end - q < 4) return aios__err(AIOS_ERR_CORRUPT, "PLAIN byte array %lld: truncated length", (long long)i);
            uint32_t l;
            memcpy(&l, q, 4);
            q += 4;
            if (l > (size_t)(end - q))
                return aios__err(AIOS_ERR_CORRUPT, "PLAIN byte array %lld: length %u past the page end", (long long)i, l);
            bytes[i].ptr = q;
            bytes[i].len = l;
            q += l;
        }
        *used = (size_t)(q - p);
        return AIOS_OK;
    }
    default: {
        uint64_t need;
        if (!aios__mul_ok((uint64_t)n, rd->es, &need) || need > len)
            return aios__err(AIOS_ERR_CORRUPT, "PLAIN: %lld values of %zu bytes in %zu bytes", (long long)n, rd->es, len);
        memcpy(vals, p, (size_t)need);
        *used = (size_t)need;
        return AIOS_OK;
    }
    }
}

static aios_status decode_dict_page(reader *rd, const page_hdr *h, const uint8_t *p, size_t len, int from_map) {
    if (rd->dict_n >= 0 && (rd->dict_vals || rd->dict_bytes))
        return aios__err(AIOS_ERR_CORRUPT, "second dictionary page in a chunk");
    if (h->encoding != AIOS_PQ_PLAIN && h->encoding != AIOS_PQ_PLAIN_DICTIONARY)
        return aios__err(AIOS_ERR_UNSUPPORTED, "dictionary page encoding %d", h->encoding);
    if (h->num_values < 0) return aios__err(AIOS_ERR_CORRUPT, "dictionary page: negative count");
    int64_t n = h->num_values;
    if (rd->leaf->type == AIOS_PQ_BYTE_ARRAY) {
        if ((uint64_t)n > len / 4 + 1) return aios__err(AIOS_ERR_CORRUPT, "dictionary: %lld entries in %zu bytes", (long long)n, len);
        rd->dict_bytes = malloc((size_t)(n ? n : 1) * sizeof *rd->dict_bytes);
        if (!rd->dict_bytes) return aios__err(AIOS_ERR_NOMEM, "dictionary");
    } else {
        uint64_t need;
        if (!aios__mul_ok((uint64_t)n, rd->es ? rd->es : 1, &need) || (rd->leaf->type != AIOS_PQ_BOOLEAN && need > len))
            return aios__err(AIOS_ERR_CORRUPT, "dictionary: %lld entries in %zu bytes", (long long)n, len);
        if (rd->leaf->type == AIOS_PQ_BOOLEAN && (uint64_t)n > (uint64_t)len * 8)
            return aios__err(AIOS_ERR_CORRUPT, "dictionary: %lld booleans in %zu bytes", (long long)n, len);
        rd->dict_vals = malloc(need ? (size_t)need : 1);
        if (!rd->dict_vals) return aios__err(AIOS_ERR_NOMEM, "dictionary");
    }
    size_t used;
    AIOS_TRY(decode_plain(rd, p, len, n, rd->dict_vals, rd->dict_bytes, &used));
    rd->dict_n = n;
    rd->dict_zero_copy = from_map;
    return AIOS_OK;
}

static aios_status decode_values(reader *rd, int enc, const uint8_t *p, size_t len, int64_t n,
                                 uint8_t *vals, aios_pq_bytes *bytes, int from_map) {
    const aios_pq_node *lf = rd->leaf;
    size_t used;
    if (n == 0) return AIOS_OK;
    switch (enc) {
    case AIOS_PQ_PLAIN:
        AIOS_TRY(decode_plain(rd, p, len, n, vals, bytes, &used));
        if (lf->type == AIOS_PQ_BYTE_ARRAY && !from_map) rd->all_zero_copy = 0;
        return AIOS_OK;
    case AIOS_PQ_PLAIN_DICTIONARY:
    case AIOS_PQ_RLE_DICTIONARY: {
        if (!rd->dict_vals && !rd->dict_bytes) return aios__err(AIOS_ERR_CORRUPT, "dictionary-encoded page without a dictionary");
        if (len < 1) return aios__err(AIOS_ERR_CORRUPT, "dictionary indices: empty page");
        int bw = p[0];
        if (bw > 32) return aios__err(AIOS_ERR_CORRUPT, "dictionary indices: bit width %d", bw);
        AIOS_TRY(grow_idx(rd, (size_t)n));
        aios__rle_dec d;
        aios__rle_init(&d, p + 1, len - 1, bw);
        if (aios__rle_get_u32(&d, rd->idx, n) != n)
            return aios__err(AIOS_ERR_CORRUPT, "dictionary indices: fewer than %lld", (long long)n);
        uint64_t dn = (uint64_t)rd->dict_n;
        const uint32_t *idx = rd->idx;
        uint32_t bad = 0;
        for (int64_t i = 0; i < n; i++) bad |= (uint32_t)(idx[i] >= dn);
        if (bad) return aios__err(AIOS_ERR_CORRUPT, "dictionary index out of range (dictionary has %llu entries)", (unsigned long long)dn);
        if (lf->type == AIOS_PQ_BYTE_ARRAY) {
            const aios_pq_bytes *db = rd->dict_bytes;
            for (int64_t i = 0; i < n; i++) bytes[i] = db[idx[i]];
            if (!rd->dict_zero_copy) rd->all_zero_copy = 0;
        } else if (rd->es == 4) {
            const uint32_t *dv = (const uint32_t *)rd->dict_vals;
            uint32_t *o = (uint32_t *)vals;
            for (int64_t i = 0; i < n; i++) o[i] = dv[idx[i]];
        } else if (rd->es == 8) {
            const uint64_t *dv = (const uint64_t *)rd->dict_vals;
            uint64_t *o = (uint64_t *)vals;
            for (int64_t i = 0; i < n; i++) o[i] = dv[idx[i]];
        } else {
            size_t es = rd->es;
            for (int64_t i = 0; i < n; i++) memcpy(vals + (size_t)i * es, rd->dict_vals + (size_t)idx[i] * es, es);
        }
        return AIOS_OK;
    }
    case AIOS_PQ_RLE: {
        if (lf->type != AIOS_PQ_BOOLEAN) return aios__err(AIOS_ERR_UNSUPPORTED, "RLE values for %s", aios_pq_type_name(lf->type));
        if (len < 4) return aios__err(AIOS_ERR_CORRUPT, "RLE booleans: truncated length");
        uint32_t l;
        memcpy(&l, p, 4);
        if (l > len - 4) return aios__err(AIOS_ERR_CORRUPT, "RLE booleans: length %u past the page", l);
        AIOS_TRY(grow_idx(rd, (size_t)n));
        aios__rle_dec d;
        aios__rle_init(&d, p + 4, l, 1);
        if (aios__rle_get_u32(&d, rd->idx, n) != n) return aios__err(AIOS_ERR_CORRUPT, "RLE booleans: too few values");
        for (int64_t i = 0; i < n; i++) vals[i] = (uint8_t)rd->idx[i];
        return AIOS_OK;
    }
    case AIOS_PQ_DELTA_BINARY_PACKED:
        if (lf->type != AIOS_PQ_INT32 && lf->type != AIOS_PQ_INT64)
            return aios__err(AIOS_ERR_CORRUPT, "DELTA_BINARY_PACKED for %s", aios_pq_type_name(lf->type));
        return aios__delta_decode(p, len, lf->type == AIOS_PQ_INT32, vals, n, &used);
    case AIOS_PQ_DELTA_LENGTH_BYTE_ARRAY: {
        if (lf->type != AIOS_PQ_BYTE_ARRAY) return aios__err(AIOS_ERR_CORRUPT, "DELTA_LENGTH_BYTE_ARRAY for %s", aios_pq_type_name(lf->type));
        AIOS_TRY(grow_idx(rd, (size_t)n));
        int32_t *lens = (int32_t *)rd->idx;
        AIOS_TRY(aios__delta_decode(p, len, 1, lens, n, &used));
        const uint8_t *q = p + used, *end = p + len;
        for (int64_t i = 0; i < n; i++) {
            if (lens[i] < 0 || (size_t)lens[i] > (size_t)(end - q))
                return aios__err(AIOS_ERR_CORRUPT, "DELTA_LENGTH_BYTE_ARRAY: length %d past the page", lens[i]);
            bytes[i].ptr = q;
            bytes[i].len = (size_t)lens[i];
            q += lens[i];
        }
        if (!from_map) rd->all_zero_copy = 0;
        return AIOS_OK;
    }
    case AIOS_PQ_DELTA_BYTE_ARRAY: {
        if (lf->type != AIOS_PQ_BYTE_ARRAY && lf->type != AIOS_PQ_FIXED_LEN_BYTE_ARRAY)
            return aios__err(AIOS_ERR_CORRUPT, "DELTA_BYTE_ARRAY for %s", aios_pq_type_name(lf->type));
        AIOS_TRY(grow_idx(rd, (size_t)n * 2));
        int32_t *pre = (int32_t *)rd->idx, *suf = pre + n;
        size_t u1, u2;
        AIOS_TRY(aios__delta_decode(p, len, 1, pre, n, &u1));
        AIOS_TRY(aios__delta_decode(p + u1, len - u1, 1, suf, n, &u2));
        const uint8_t *q = p + u1 + u2, *end = p + len;
        uint64_t total = 0, sufsum = 0;
        for (int64_t i = 0; i < n; i++) {
            if (pre[i] < 0 || suf[i] < 0) return aios__err(AIOS_ERR_CORRUPT, "DELTA_BYTE_ARRAY: negative length");
            sufsum += (uint64_t)suf[i];
            if (sufsum > (uint64_t)(end - q)) return aios__err(AIOS_ERR_CORRUPT, "DELTA_BYTE_ARRAY: suffixes past the page");
            uint64_t prev = i ? (uint64_t)pre[i - 1] + (uint64_t)suf[i - 1] : 0;
            if ((uint64_t)pre[i] > prev) return aios__err(AIOS_ERR_CORRUPT, "DELTA_BYTE_ARRAY: prefix longer than previous value");
            total += (uint64_t)pre[i] + (uint64_t)suf[i];
            /* prefixes repeat bytes already decoded: cap the expansion over the page size */
            if (total > (uint64_t)len * 256 + (1u << 24))
                return aios__err(AIOS_ERR_CORRUPT, "DELTA_BYTE_ARRAY: %llu bytes of values from a %zu-byte page",
                                 (unsigned long long)total, len);
        }
        uint8_t *buf = malloc(total ? (size_t)total : 1);
        if (!buf) return aios__err(AIOS_ERR_NOMEM, "DELTA_BYTE_ARRAY: %llu bytes", (unsigned long long)total);
        AIOS_TRY(ka_add(rd->ka, buf));
        size_t o = 0;
        const uint8_t *prevp = NULL;
        for (int64_t i = 0; i < n; i++) {
            if ((size_t)suf[i] > (size_t)(end - q)) return aios__err(AIOS_ERR_CORRUPT, "DELTA_BYTE_ARRAY: suffix past the page");
            if (pre[i]) memcpy(buf + o, prevp, (size_t)pre[i]);
            memcpy(buf + o + pre[i], q, (size_t)suf[i]);
            q += suf[i];
            size_t l = (size_t)pre[i] + (size_t)suf[i];
            if (lf->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY) {
                if (l != (size_t)lf->type_length) return aios__err(AIOS_ERR_CORRUPT, "DELTA_BYTE_ARRAY: FLBA value of %zu bytes", l);
                memcpy(vals + (size_t)i * rd->es, buf + o, l);
            } else {
                bytes[i].ptr = buf + o;
                bytes[i].len = l;
            }
            prevp = buf + o;
            o += l;
        }
        rd->all_zero_copy = 0;
        return AIOS_OK;
    }
    case AIOS_PQ_BYTE_STREAM_SPLIT: {
        if (lf->type == AIOS_PQ_BYTE_ARRAY || lf->type == AIOS_PQ_BOOLEAN)
            return aios__err(AIOS_ERR_CORRUPT, "BYTE_STREAM_SPLIT for %s", aios_pq_type_name(lf->type));
        size_t k = rd->es;
        uint64_t need;
        if (!aios__mul_ok((uint64_t)n, k, &need) || need > len)
            return aios__err(AIOS_ERR_CORRUPT, "BYTE_STREAM_SPLIT: %lld values in %zu bytes", (long long)n, len);
        /* the stream length is the page's value count, which is n here */
        for (size_t b = 0; b < k; b++) {
            const uint8_t *s = p + b * (size_t)n;
            for (int64_t i = 0; i < n; i++) vals[(size_t)i * k + b] = s[i];
        }
        return AIOS_OK;
    }
    default:
        return aios__err(AIOS_ERR_UNSUPPORTED, "value encoding %d (%s)", enc, aios_pq_encoding_name((aios_pq_encoding)enc));
    }
}

/* Decodes levels of one kind into out (n entries).  v1: RLE with a 4-byte length, or legacy
 * BIT_PACKED; v2: RLE of exactly `len` bytes.  Returns bytes consumed in *used. */
static aios_status decode_levels(int v2, int enc, int max, const uint8_t *p, size_t len, int64_t n,
                                 int16_t *out, size_t *used, const char *what) {
    int bw = aios__bit_width((uint64_t)max);
    const uint8_t *q = p;
    size_t l = len;
    if (!v2) {
        if (enc == AIOS_PQ_BIT_PACKED) {
            uint64_t need = ((uint64_t)n * (uint64_t)bw + 7) / 8;
            AIOS_TRY(aios__bitpacked_msb_i16(p, len, bw, out, n));
            *used = (size_t)need;
            goto check;
        }
        if (enc != AIOS_PQ_RLE) return aios__err(AIOS_ERR_UNSUPPORTED, "%s level encoding %d", what, enc);
        if (len < 4) return aios__err(AIOS_ERR_CORRUPT, "%s levels: truncated length", what);
        uint32_t ll;
        memcpy(&ll, p, 4);
        if (ll > len - 4) return aios__err(AIOS_ERR_CORRUPT, "%s levels: length %u past the page (%zu bytes)", what, ll, len - 4);
        q = p + 4;
        l = ll;
        *used = 4 + (size_t)ll;
    } else {
        *used = len;
    }
    aios__rle_dec d;
    aios__rle_init(&d, q, l, bw);
    if (aios__rle_get_i16(&d, out, n) != n)
        return aios__err(AIOS_ERR_CORRUPT, "%s levels: fewer than %lld", what, (long long)n);
check:;
    int16_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= (int16_t)(out[i] > max || out[i] < 0);
    if (bad) return aios__err(AIOS_ERR_CORRUPT, "%s level above the maximum %d", what, max);
    return AIOS_OK;
}

/* Moves `present` dense values at slot base `sb` to their slots, given the page's levels. */
static void spread(reader *rd, int64_t sb, int64_t nslots, int64_t present, const int16_t *def, int64_t nlev) {
    aios_pq_column *c = rd->col;
    int16_t sd = c->slot_def, md = c->max_def;
    int64_t j = present - 1, s = sb + nslots - 1;
    size_t es = rd->es;
    uint8_t *vals = c->values;
    for (int64_t i = nlev - 1; i >= 0 && s >= sb; i--) {
        int16_t d = def[i];
        if (d < sd) continue;
        if (d == md) {
            if (c->bytes && c->type == AIOS_PQ_BYTE_ARRAY) c->bytes[s] = c->bytes[sb + j];
            else if (s != sb + j) memmove(vals + (size_t)s * es, vals + (size_t)(sb + j) * es, es);
            c->valid[s] = 1;
            j--;
        } else {
            if (c->bytes && c->type == AIOS_PQ_BYTE_ARRAY) c->bytes[s] = (aios_pq_bytes){NULL, 0};
            else memset(vals + (size_t)s * es, 0, es);
            c->valid[s] = 0;
        }
        s--;
    }
}

static aios_status ensure_valid(aios_pq_column *c, int64_t cap) {
    if (c->valid) return AIOS_OK;
    c->valid = malloc((size_t)cap + 1);
    if (!c->valid) return aios__err(AIOS_ERR_NOMEM, "validity");
    return AIOS_OK;
}

static aios_status read_data_page(reader *rd, const page_hdr *h, const uint8_t *page, size_t csize, int64_t *lev_done,
                                  int64_t chunk_values, aios_pq_codec codec) {
    aios_pq_column *c = rd->col;
    const aios_pq_node *lf = rd->leaf;
    int v2 = h->type == PAGE_DATA_V2;
    if (h->num_values < 0) return aios__err(AIOS_ERR_CORRUPT, "data page: negative value count");
    int64_t n = h->num_values;
    if (n > chunk_values - *lev_done)
        return aios__err(AIOS_ERR_CORRUPT, "data page: %lld values past the chunk's %lld", (long long)n, (long long)chunk_values);
    if (c->num_levels + n > rd->cap_levels)
        return aios__err(AIOS_ERR_CORRUPT, "data page: more values than the footer declares");
    size_t usize = (size_t)h->usize;
    /* Locate the bytes: levels (v2: never compressed) and values. */
    const uint8_t *buf;
    size_t blen;
    int from_map = 0;
    const uint8_t *lv = NULL;  /* v2 level bytes */
    size_t lv_len = 0;
    if (v2) {
        if (h->def_len < 0 || h->rep_len < 0 || (uint64_t)h->def_len + (uint64_t)h->rep_len > csize ||
            (uint64_t)h->def_len + (uint64_t)h->rep_len > usize)
            return aios__err(AIOS_ERR_CORRUPT, "data page v2: level lengths exceed the page");
        lv = page;
        lv_len = (size_t)h->def_len + (size_t)h->rep_len;
        const uint8_t *src = page + lv_len;
        size_t slen = csize - lv_len, dlen = usize - lv_len;
        if (codec == AIOS_PQ_UNCOMPRESSED || !h->is_compressed) {
            if (slen != dlen) return aios__err(AIOS_ERR_CORRUPT, "data page v2: %zu value bytes, header says %zu", slen, dlen);
            buf = src;
            blen = slen;
            from_map = 1;
        } else {
            uint8_t *dst;
            if (lf->type == AIOS_PQ_BYTE_ARRAY) {
                dst = malloc(dlen ? dlen : 1);
                if (!dst) return aios__err(AIOS_ERR_NOMEM, "page of %zu bytes", dlen);
                AIOS_TRY(ka_add(rd->ka, dst));
            } else {
                AIOS_TRY(grow_scratch(rd, dlen));
                dst = rd->scratch;
            }
            AIOS_TRY(aios__pq_decompress(codec, src, slen, dst, dlen, &rd->zctx));
            buf = dst;
            blen = dlen;
        }
    } else {
        if (codec == AIOS_PQ_UNCOMPRESSED) {
            if (csize != usize) return aios__err(AIOS_ERR_CORRUPT, "uncompressed page: %zu bytes, header says %zu", csize, usize);
            buf = page;
            blen = csize;
            from_map = 1;
        } else {
            uint8_t *dst;
            if (lf->type == AIOS_PQ_BYTE_ARRAY) {
                dst = malloc(usize ? usize : 1);
                if (!dst) return aios__err(AIOS_ERR_NOMEM, "page of %zu bytes", usize);
                AIOS_TRY(ka_add(rd->ka, dst));
            } else {
                AIOS_TRY(grow_scratch(rd, usize));
                dst = rd->scratch;
            }
            AIOS_TRY(aios__pq_decompress(codec, page, csize, dst, usize, &rd->zctx));
            buf = dst;
            blen = usize;
        }
    }
    /* Levels. */
    int64_t lb = c->num_levels;
    size_t off = 0, used = 0;
    if (lf->rep_level > 0) {
        if (v2) AIOS_TRY(decode_levels(1, AIOS_PQ_RLE, lf->rep_level, lv, (size_t)h->rep_len, n, c->rep + lb, &used, "repetition"));
        else {
            AIOS_TRY(decode_levels(0, h->rep_enc, lf->rep_level, buf, blen, n, c->rep + lb, &used, "repetition"));
            off += used;
        }
        if (lb == 0 && n > 0 && c->rep[0] != 0) return aios__err(AIOS_ERR_CORRUPT, "first repetition level is not 0");
    }
    int64_t present = n, nslots = n;
    if (lf->def_level > 0) {
        if (v2) AIOS_TRY(decode_levels(1, AIOS_PQ_RLE, lf->def_level, lv + h->rep_len, (size_t)h->def_len, n, c->def + lb, &used, "definition"));
        else {
            AIOS_TRY(decode_levels(0, h->def_enc, lf->def_level, buf + off, blen - off, n, c->def + lb, &used, "definition"));
            off += used;
        }
        const int16_t *d = c->def + lb;
        int16_t md = c->max_def, sd = c->slot_def;
        present = 0;
        nslots = 0;
        for (int64_t i = 0; i < n; i++) {
            present += d[i] == md;
            nslots += d[i] >= sd;
        }
    }
    int64_t sb = c->num_slots;
    uint8_t *vals = c->values ? (uint8_t *)c->values + (size_t)sb * rd->es : NULL;
    aios_pq_bytes *bytes = c->type == AIOS_PQ_BYTE_ARRAY ? c->bytes + sb : NULL;
    AIOS_TRY(decode_values(rd, h->encoding, buf + off, blen - off, present, vals, bytes, from_map));
    if (present < nslots) {
        AIOS_TRY(ensure_valid(c, rd->cap_levels));
        if (c->null_count == 0) memset(c->valid, 1, (size_t)sb);
        spread(rd, sb, nslots, present, c->def + lb, n);
        c->null_count += nslots - present;
    } else if (c->valid) {
        memset(c->valid + sb, 1, (size_t)nslots);
    }
    c->num_levels += n;
    c->num_slots += nslots;
    *lev_done += n;
    return AIOS_OK;
}

static aios_status read_chunk(reader *rd, int rg) {
    aios_parquet_file *pf = rd->pf;
    const aios_pq_chunk_info *ci = &pf->rgs[rg].chunks[rd->col->leaf];
    uint64_t start = aios_pq_chunk_start(ci);
    uint64_t end = start + (uint64_t)ci->total_compressed_size; /* checked at open */
    uint64_t pos = start;
    int64_t done = 0;
    free(rd->dict_vals);
    free(rd->dict_bytes);
    rd->dict_vals = NULL;
    rd->dict_bytes = NULL;
    rd->dict_n = -1;
    int64_t lev0 = rd->col->num_levels;
    while (done < ci->num_values) {
        if (pos >= end)
            return aios__err(AIOS_ERR_CORRUPT, "chunk ends after %lld of %lld values", (long long)done, (long long)ci->num_values);
        aios_thrift_r r;
        aios_thrift_r_init(&r, pf->data + pos, (size_t)(end - pos));
        page_hdr h;
        parse_page_hdr(&r, &h);
        if (r.err) return aios__err(AIOS_ERR_CORRUPT, "page header at offset %llu: %s", (unsigned long long)pos, r.msg);
        uint64_t body = pos + aios_thrift_pos(&r);
        if (h.type < 0 || h.csize < 0 || h.usize < 0)
            return aios__err(AIOS_ERR_CORRUPT, "page header at offset %llu: missing type or sizes", (unsigned long long)pos);
        if ((uint64_t)h.csize > end - body)
            return aios__err(AIOS_ERR_CORRUPT, "page at offset %llu: %d bytes run past the chunk end", (unsigned long long)pos, h.csize);
        /* a page header cannot make us allocate far beyond what its compressed bytes can hold */
        if ((uint64_t)h.usize > (uint64_t)h.csize * 4096 + (64u << 20))
            return aios__err(AIOS_ERR_CORRUPT, "page at offset %llu: %d bytes claim to expand to %d",
                             (unsigned long long)pos, h.csize, h.usize);
        if (ci->codec != AIOS_PQ_UNCOMPRESSED) {
            rd->inflated += (uint64_t)h.usize;
            if (rd->inflated > rd->inflate_budget)
                return aios__err(AIOS_ERR_CORRUPT, "page at offset %llu: pages expand to more than %llu bytes, implausible "
                                 "for a file of %zu bytes", (unsigned long long)pos, (unsigned long long)rd->inflate_budget, pf->size);
        }
        const uint8_t *page = pf->data + body;
        if (h.has_crc && aios__pq_crc32(page, (size_t)h.csize) != h.crc)
            return aios__err(AIOS_ERR_CORRUPT, "page at offset %llu: CRC mismatch", (unsigned long long)pos);
        aios_status s = AIOS_OK;
        if (h.type == PAGE_DICT) {
            if (!(h.has_sub & (1 << 7))) return aios__err(AIOS_ERR_CORRUPT, "dictionary page without its header");
            const uint8_t *buf = page;
            int from_map = 1;
            if (ci->codec != AIOS_PQ_UNCOMPRESSED) {
                uint8_t *dst = malloc(h.usize ? (size_t)h.usize : 1);
                if (!dst) return aios__err(AIOS_ERR_NOMEM, "dictionary page of %d bytes", h.usize);
                AIOS_TRY(ka_add(rd->ka, dst));
                s = aios__pq_decompress(ci->codec, page, (size_t)h.csize, dst, (size_t)h.usize, &rd->zctx);
                buf = dst;
                from_map = 0;
            } else if (h.csize != h.usize) {
                s = aios__err(AIOS_ERR_CORRUPT, "uncompressed dictionary page: sizes differ");
            }
            if (s == AIOS_OK) s = decode_dict_page(rd, &h, buf, (size_t)h.usize, from_map);
        } else if (h.type == PAGE_DATA || h.type == PAGE_DATA_V2) {
            if (!(h.has_sub & (1 << (h.type == PAGE_DATA ? 5 : 8))))
                return aios__err(AIOS_ERR_CORRUPT, "data page without its header");
            s = read_data_page(rd, &h, page, (size_t)h.csize, &done, ci->num_values, ci->codec);
        } /* index pages and unknown types are skipped */
        if (s != AIOS_OK) return aios__err_prefix(s, "page at offset %llu", (unsigned long long)pos);
        pos = body + (uint64_t)h.csize;
    }
    /* Row count of this chunk. */
    aios_pq_column *c = rd->col;
    int64_t rows = 0;
    if (c->max_rep == 0) rows = c->num_levels - lev0;
    else
        for (int64_t i = lev0; i < c->num_levels; i++) rows += c->rep[i] == 0;
    if (rows != pf->rgs[rg].num_rows)
        return aios__err(AIOS_ERR_CORRUPT, "%lld rows decoded, row group has %lld", (long long)rows, (long long)pf->rgs[rg].num_rows);
    c->num_rows += rows;
    return AIOS_OK;
}

void aios_pq_column_free(aios_pq_column *c) {
    if (!c) return;
    free(c->def);
    free(c->rep);
    free(c->values);
    free(c->bytes);
    free(c->valid);
    free(c->offsets);
    free(c->row_valid);
    keepalive *ka = c->priv_;
    if (ka) {
        for (int i = 0; i < ka->n; i++) free(ka->bufs[i]);
        free(ka->bufs);
        free(ka);
    }
    memset(c, 0, sizeof *c);
}

static size_t elem_size(const aios_pq_node *lf) {
    switch (lf->type) {
    case AIOS_PQ_BOOLEAN: return 1;
    case AIOS_PQ_INT32: case AIOS_PQ_FLOAT: return 4;
    case AIOS_PQ_INT64: case AIOS_PQ_DOUBLE: return 8;
    case AIOS_PQ_INT96: return 12;
    case AIOS_PQ_FIXED_LEN_BYTE_ARRAY: return (size_t)lf->type_length;
    default: return 0;
    }
}

static aios_status build_row_view(aios_parquet_file *pf, aios_pq_column *c) {
    if (c->max_rep != 1) return AIOS_OK;
    const aios_pq_node *lf = c->node;
    /* the repeated ancestor R: its parent's def level marks "list present" */
    int r = lf->index;
    while (pf->nodes[r].repetition != AIOS_PQ_REPEATED) r = pf->nodes[r].parent;
    int16_t list_def = pf->nodes[pf->nodes[r].parent].def_level;
    c->offsets = malloc((size_t)(c->num_rows + 1) * sizeof *c->offsets);
    if (!c->offsets) return aios__err(AIOS_ERR_NOMEM, "row offsets");
    int64_t row = -1, slot = 0, nullrows = 0;
    for (int64_t i = 0; i < c->num_levels; i++) {
        int16_t d = c->def ? c->def[i] : c->max_def;
        if (c->rep[i] == 0) {
            row++;
            c->offsets[row] = slot;
            if (d < list_def) {
                if (!c->row_valid) {
                    c->row_valid = malloc((size_t)(c->num_rows ? c->num_rows : 1));
                    if (!c->row_valid) return aios__err(AIOS_ERR_NOMEM, "row validity");
                    memset(c->row_valid, 1, (size_t)c->num_rows);
                }
                c->row_valid[row] = 0;
                nullrows++;
            }
        }
        if (d >= c->slot_def) slot++;
    }
    c->offsets[c->num_rows] = slot;
    (void)nullrows;
    return AIOS_OK;
}

aios_status aios_pq_read_column(aios_parquet_file *pf, int rg, int leaf, aios_pq_column *out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "parquet: NULL column");
    memset(out, 0, sizeof *out);
    if (!pf || leaf < 0 || leaf >= pf->n_leaves || rg < -1 || rg >= pf->n_rg)
        return aios__err(AIOS_ERR_RANGE, "parquet: column %d / row group %d out of range", leaf, rg);
    const aios_pq_node *lf = &pf->nodes[pf->leaf_node[leaf]];
    aios_pq_column *c = out;
    c->leaf = leaf;
    c->node = lf;
    c->type = lf->type;
    c->type_length = lf->type_length;
    c->max_def = lf->def_level;
    c->max_rep = lf->rep_level;
    c->slot_def = 0;
    if (lf->rep_level > 0) {
        int r = lf->index;
        while (pf->nodes[r].rep_level == lf->rep_level && pf->nodes[r].repetition != AIOS_PQ_REPEATED) r = pf->nodes[r].parent;
        c->slot_def = pf->nodes[r].def_level;
    }
    reader rd;
    memset(&rd, 0, sizeof rd);
    rd.pf = pf;
    rd.leaf = lf;
    rd.col = c;
    rd.es = elem_size(lf);
    rd.dict_n = -1;
    rd.all_zero_copy = 1;
    aios_status s = AIOS_OK;
    int r0 = rg < 0 ? 0 : rg, r1 = rg < 0 ? pf->n_rg : rg + 1;
    uint64_t total = 0;
    for (int i = r0; i < r1; i++) total += (uint64_t)pf->rgs[i].chunks[leaf].num_values;
    if (total > (uint64_t)pf->max_levels) {
        s = aios__err(AIOS_ERR_CORRUPT, "footer declares %llu values, more than a file of %zu bytes can hold",
                      (unsigned long long)total, pf->size);
        goto done;
    }
    /* bytes the output arrays need per level entry; bounded like the level count, so a lying
     * FIXED_LEN_BYTE_ARRAY width or value count cannot demand absurd allocations */
    uint64_t per = 2 + 2 + 1 + (uint64_t)rd.es + sizeof(aios_pq_bytes), need;
    if (!aios__mul_ok(total, per, &need) || need > (uint64_t)pf->size * 2048 + (1u << 28)) {
        s = aios__err(AIOS_ERR_CORRUPT, "footer declares %llu values of %zu bytes, implausible for a file of %zu bytes",
                      (unsigned long long)total, rd.es, pf->size);
        goto done;
    }
    rd.cap_levels = (int64_t)total;
    rd.inflate_budget = (uint64_t)pf->size * 2048 + (1u << 28);
    rd.ka = calloc(1, sizeof *rd.ka);
    c->priv_ = rd.ka;
    size_t n1 = (size_t)total + 1;
    if (lf->def_level > 0) c->def = malloc(n1 * sizeof *c->def);
    if (lf->rep_level > 0) c->rep = malloc(n1 * sizeof *c->rep);
    if (lf->type == AIOS_PQ_BYTE_ARRAY || lf->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY) c->bytes = malloc(n1 * sizeof *c->bytes);
    if (lf->type != AIOS_PQ_BYTE_ARRAY) c->values = malloc(n1 * rd.es);
    if (!rd.ka || (lf->def_level > 0 && !c->def) || (lf->rep_level > 0 && !c->rep) ||
        ((lf->type == AIOS_PQ_BYTE_ARRAY || lf->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY) && !c->bytes) ||
        (lf->type != AIOS_PQ_BYTE_ARRAY && !c->values)) {
        s = aios__err(AIOS_ERR_NOMEM, "column of %llu values", (unsigned long long)total);
        goto done;
    }
    for (int i = r0; i < r1 && s == AIOS_OK; i++) {
        s = read_chunk(&rd, i);
        if (s != AIOS_OK) aios__err_prefix(s, "row group %d", i);
    }
    if (s == AIOS_OK && c->null_count == 0 && c->valid) {
        free(c->valid);
        c->valid = NULL;
    }
    if (s == AIOS_OK && lf->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY)
        for (int64_t i = 0; i < c->num_slots; i++)
            c->bytes[i] = (!c->valid || c->valid[i]) ? (aios_pq_bytes){(uint8_t *)c->values + (size_t)i * rd.es, rd.es}
                                                     : (aios_pq_bytes){NULL, 0};
    if (s == AIOS_OK) s = build_row_view(pf, c);
    c->zero_copy = lf->type == AIOS_PQ_BYTE_ARRAY && rd.all_zero_copy;
done:
    free(rd.scratch);
    free(rd.idx);
    free(rd.dict_vals);
    free(rd.dict_bytes);
    if (rd.zctx) aios__pq_free_zctx(rd.zctx);
    if (s != AIOS_OK) {
        aios__err_prefix(s, "parquet: %s: column '%s'", pf->name, lf->path);
        aios_pq_column_free(c);
    }
    return s;
}
