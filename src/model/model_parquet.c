/*
 * model_parquet.c — the seed's Parquet weight files: reading Schema V1 / V2 into tensor views
 * and writing them (convert: V1, quantize: V2).
 *
 * Schema V1: layer_name string, shape list<int32>, dtype string ("torch.float32"), data binary,
 *            num_params int64.
 * Schema V2 adds quant_type string ('fp32','fp16','bf16','int8','int4','int2'), scales binary
 *            (float32), zero_points binary (float32), quant_axis int32 (-1 per tensor),
 *            group_size int32 (0 = none).  x = (q - zero_point) * scale (DESIGN.md §3).
 *
 * Key decisions:
 *  - Zero copy: `data`, `scales` and `zero_points` are read as byte-array columns; for
 *    uncompressed PLAIN pages the reader hands out pointers into the file mapping, and the
 *    views point there.  (Compressed files load too: the decoded columns stay alive with the
 *    model.)  Our writer stores those three columns uncompressed, PLAIN, one value per page,
 *    64-byte aligned in the file, without page CRCs, so opening never reads tensor bytes.
 *  - Every row is checked before it becomes a view: name present and unique, shape a non-null
 *    list of non-negative dims, dtype / quant_type known, num_params == product of shape,
 *    `data` length == what shape and quant_type need, scales / zero points count == what
 *    quant_axis / group_size need.  Errors name the file, the row and the tensor.
 *  - For unquantized V2 rows the storage type is the quant_type's float type; if the dtype
 *    column names a type whose size matches the data instead (e.g. an int64 buffer) that wins.
 *    Our writer puts the short dtype name ("i64") in quant_type for non-float tensors.
 *  - GGUF block extension (version AIOS_GGUF_BLOCKS_VERSION, recorded in the file's key-value
 *    metadata as aios.gguf_blocks): quant_type "gguf_q4_0" .. "gguf_q8_K" (ggml's block types,
 *    tensor.h), data = the blocks exactly as in the GGUF file, scales and zero_points empty
 *    (the scales are inside the blocks), dtype "torch.float32" (the logical type).  Readers
 *    without the extension refuse these rows (unknown quant_type); this reader refuses a file
 *    whose aios.gguf_blocks version it does not know, and gguf_* rows in a file without it.
 *  - f16 scale extension (version AIOS_F16_SCALES_VERSION, key aios.f16_scales): in a file with
 *    the key, every int8/int4/int2 row's scales and zero_points are IEEE float16 (2 bytes each,
 *    little-endian, as GGUF blocks store d and m) instead of float32, and a symmetric row's
 *    zero_points are empty (not explicit zeros: the seed's reader is not the audience).  This
 *    reader refuses a version it does not know; a reader without the extension finds half the
 *    scales it expects and refuses the row (scale count mismatch) rather than misreading it.
 *  - Scale-and-minimum extension (version AIOS_SCALE_MIN_VERSION, key aios.scale_min): a row
 *    with quant_type "int4_min" is int4 in groups of 32 whose zero_points column holds minima:
 *    x = (u * scale) + minimum, u the stored nibble (0..15, i.e. q + 8), the two roundings of
 *    gguf's Q4_1 (d * q) + m.  `aios quantize` writes it for Q4_1 blocks (lossless transcoding);
 *    this reader turns such a row into Q4_1 blocks in memory (scales and minima must be float16
 *    values), refuses a version it does not know, and int4_min rows in a file without the key.
 *  - Symmetric tensors are written with explicit zero points (0.0) so the seed's reader, which
 *    always applies the formula, reads them; an empty or null zero_points reads as symmetric.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "model/model_internal.h"
#include "tensor/quant.h"

enum { C_NAME, C_SHAPE, C_DTYPE, C_DATA, C_NPARAMS, C_QTYPE, C_SCALES, C_ZPS, C_QAXIS, C_GSIZE, C_N };
static const char *const col_names[C_N] = {"layer_name", "shape", "dtype", "data", "num_params",
                                           "quant_type", "scales", "zero_points", "quant_axis", "group_size"};

#define AIOS_GGUF_BLOCKS_VERSION "1"
#define AIOS_F16_SCALES_VERSION "1"
#define AIOS_SCALE_MIN_VERSION "1"

static int bytes_eq(const aios_pq_bytes *b, const char *s) {
    size_t n = strlen(s);
    return b->ptr && b->len == n && !memcmp(b->ptr, s, n);
}

/* quant_type string -> storage dtype; -1 unknown. */
static int parse_qtype(const aios_pq_bytes *b, aios_dtype *out) {
    static const struct {
        const char *s;
        aios_dtype t;
    } q[] = {{"fp32", AIOS_DTYPE_F32}, {"fp16", AIOS_DTYPE_F16}, {"bf16", AIOS_DTYPE_BF16},
             {"int8", AIOS_DTYPE_Q8},  {"int4", AIOS_DTYPE_Q4},  {"int2", AIOS_DTYPE_Q2},
             {"f64", AIOS_DTYPE_F64},  {"i8", AIOS_DTYPE_I8},    {"i16", AIOS_DTYPE_I16},
             {"i32", AIOS_DTYPE_I32},  {"i64", AIOS_DTYPE_I64},  {"u8", AIOS_DTYPE_U8},
             {"bool", AIOS_DTYPE_BOOL}, {"u16", AIOS_DTYPE_U16}, {"u32", AIOS_DTYPE_U32},
             {"u64", AIOS_DTYPE_U64},  {"f8_e4m3", AIOS_DTYPE_F8_E4M3}, {"f8_e5m2", AIOS_DTYPE_F8_E5M2}};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(q); i++)
        if (bytes_eq(b, q[i].s)) {
            *out = q[i].t;
            return 0;
        }
    /* GGUF block extension: "gguf_" + the dtype name */
    if (b->ptr && b->len > 5 && !memcmp(b->ptr, "gguf_", 5))
        for (int t = AIOS_DTYPE_GGUF_Q4_0; t <= AIOS_DTYPE_GGUF_Q8_K; t++) {
            const char *nm = aios_dtype_name((aios_dtype)t);
            if (b->len - 5 == strlen(nm) && !memcmp(b->ptr + 5, nm, b->len - 5)) {
                *out = (aios_dtype)t;
                return 1;
            }
        }
    return -1;
}

static void bytes_str(const aios_pq_bytes *b, char *out, size_t n) {
    size_t k = b->ptr ? AIOS_MIN(b->len, n - 1) : 0;
    if (k) memcpy(out, b->ptr, k);
    out[k] = 0;
    for (size_t i = 0; i < k; i++)
        if ((unsigned char)out[i] < 32 || (unsigned char)out[i] > 126) out[i] = '?';
}

static aios_status check_leaf(const aios_parquet_file *pf, int leaf, const char *name, int want_list, int bytes) {
    const aios_pq_node *nd = aios_pq_leaf(pf, leaf);
    int rep = nd->rep_level;
    if (want_list ? rep != 1 : rep != 0)
        return aios__err(AIOS_ERR_FORMAT, "column '%s' is %s, expected %s", name, rep ? "a list" : "not a list",
                         want_list ? "list<int32>" : "a scalar");
    if (bytes && nd->type != AIOS_PQ_BYTE_ARRAY)
        return aios__err(AIOS_ERR_FORMAT, "column '%s' has physical type %s, expected BYTE_ARRAY", name, aios_pq_type_name(nd->type));
    if (!bytes && nd->type != AIOS_PQ_INT32 && nd->type != AIOS_PQ_INT64)
        return aios__err(AIOS_ERR_FORMAT, "column '%s' has physical type %s, expected an integer", name, aios_pq_type_name(nd->type));
    return AIOS_OK;
}

static int64_t int_at(const aios_pq_column *c, int64_t i) {
    return c->type == AIOS_PQ_INT64 ? ((const int64_t *)c->values)[i] : ((const int32_t *)c->values)[i];
}

static int present(const aios_pq_column *c, int64_t slot) {
    return !c->valid || c->valid[slot];
}

/* An int4_min row (aios.scale_min) becomes Q4_1 blocks in an owned buffer: the kernels compute
 * Q4_1 in place, with gguf's (d * u) + m. */
static aios_status min_form_to_blocks(aios_model *m, aios_tensor *t, const void *mins) {
    int64_t n = aios_tensor_numel(t);
    uint8_t *buf = malloc((size_t)(n / 32) * 20 + 1);
    void **no = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *no);
    if (no) m->owned = no;
    if (!buf || !no) {
        free(buf);
        return aios__err(AIOS_ERR_NOMEM, "'%s': out of memory", t->name);
    }
    m->owned[m->n_owned++] = buf;
    AIOS_TRY(aios_quant_min_form_to_q4_1(t, mins, buf));
    t->dtype = AIOS_DTYPE_GGUF_Q4_1;
    t->data = buf;
    t->nbytes = (size_t)(n / 32) * 20;
    t->scales = t->zero_points = NULL;
    t->n_scales = 0;
    t->quant_axis = -1;
    t->group_size = 0;
    t->scale_dtype = 0;
    return AIOS_OK;
}

static aios_status build_row(aios_model *m, int64_t r, aios_pq_column **c, int v2, int gguf_ext, int f16_ext,
                             int min_ext, char *name_store, aios_tensor *t) {
    aios_pq_column *cn = c[C_NAME], *cs = c[C_SHAPE], *cd = c[C_DATA];
    if (!present(cn, r) || cn->bytes[r].len == 0) return aios__err(AIOS_ERR_FORMAT, "row %lld: layer_name is null or empty", (long long)r);
    if (memchr(cn->bytes[r].ptr, 0, cn->bytes[r].len))
        return aios__err(AIOS_ERR_FORMAT, "row %lld: layer_name holds a NUL byte", (long long)r);
    memcpy(name_store, cn->bytes[r].ptr, cn->bytes[r].len);
    name_store[cn->bytes[r].len] = 0;
    memset(t, 0, sizeof *t);
    t->name = name_store;
    t->quant_axis = -1;
    const char *nm = name_store;

    if (cs->row_valid && !cs->row_valid[r]) return aios__err(AIOS_ERR_FORMAT, "row %lld ('%s'): shape is null", (long long)r, nm);
    int64_t s0 = cs->offsets[r], s1 = cs->offsets[r + 1];
    if (s1 - s0 > AIOS_MAX_DIMS)
        return aios__err(AIOS_ERR_UNSUPPORTED, "row %lld ('%s'): %lld dimensions (at most %d)", (long long)r, nm, (long long)(s1 - s0), AIOS_MAX_DIMS);
    t->ndim = (int)(s1 - s0);
    uint64_t numel = 1;
    for (int64_t k = s0; k < s1; k++) {
        if (!present(cs, k)) return aios__err(AIOS_ERR_FORMAT, "row %lld ('%s'): shape holds a null", (long long)r, nm);
        int64_t d = int_at(cs, k);
        if (d < 0) return aios__err(AIOS_ERR_SHAPE, "row %lld ('%s'): negative dimension %lld", (long long)r, nm, (long long)d);
        if (!aios__mul_ok(numel, (uint64_t)d, &numel) || numel > (uint64_t)INT64_MAX / 8)
            return aios__err(AIOS_ERR_RANGE, "row %lld ('%s'): shape overflows", (long long)r, nm);
        t->shape[k - s0] = d;
    }
    if (c[C_NPARAMS] && present(c[C_NPARAMS], r) && int_at(c[C_NPARAMS], r) != (int64_t)numel)
        return aios__err(AIOS_ERR_SHAPE, "row %lld ('%s'): num_params %lld, but the shape holds %llu", (long long)r, nm,
                         (long long)int_at(c[C_NPARAMS], r), (unsigned long long)numel);

    /* dtype column (original / stored dtype) */
    aios_dtype dcol = AIOS_DTYPE_F32;
    int have_dcol = 0;
    if (c[C_DTYPE] && present(c[C_DTYPE], r)) {
        char ds[64];
        bytes_str(&c[C_DTYPE]->bytes[r], ds, sizeof ds);
        if (aios_dtype_from_torch(ds, &dcol))
            return aios__err(AIOS_ERR_UNSUPPORTED, "row %lld ('%s'): unknown dtype '%s'", (long long)r, nm, ds);
        have_dcol = 1;
    }
    if (!present(cd, r)) return aios__err(AIOS_ERR_FORMAT, "row %lld ('%s'): data is null", (long long)r, nm);
    t->data = cd->bytes[r].ptr ? cd->bytes[r].ptr : (const void *)"";
    t->nbytes = cd->bytes[r].len;

    aios_dtype st = dcol;
    int min_form = 0; /* int4_min: zero_points hold minima, x = u * scale + minimum */
    if (v2 && c[C_QTYPE] && present(c[C_QTYPE], r)) {
        int pq = parse_qtype(&c[C_QTYPE]->bytes[r], &st);
        if (pq < 0 && min_ext && bytes_eq(&c[C_QTYPE]->bytes[r], "int4_min")) {
            st = AIOS_DTYPE_Q4;
            pq = 0;
            min_form = 1;
        }
        if (pq < 0 || (pq == 1 && !gguf_ext)) {
            char qs[64];
            bytes_str(&c[C_QTYPE]->bytes[r], qs, sizeof qs);
            return aios__err(AIOS_ERR_UNSUPPORTED, "row %lld ('%s'): unknown quant_type '%s'%s", (long long)r, nm, qs,
                             pq == 1 ? " (GGUF blocks in a file without the aios.gguf_blocks extension key)"
                             : !strcmp(qs, "int4_min") ? " (int4 with minima in a file without the aios.scale_min extension key)"
                                                       : "");
        }
        if (!aios_dtype_is_quant(st) && have_dcol && st != dcol) {
            size_t a, b;
            if (aios_dtype_nbytes(st, (int64_t)numel, &a) == AIOS_OK && a != t->nbytes &&
                aios_dtype_nbytes(dcol, (int64_t)numel, &b) == AIOS_OK && b == t->nbytes)
                st = dcol;
        }
    } else if (!have_dcol) {
        return aios__err(AIOS_ERR_FORMAT, "row %lld ('%s'): neither dtype nor quant_type given", (long long)r, nm);
    }
    t->dtype = st;
    if (aios_dtype_is_quant(st)) {
        aios_pq_column *sc = c[C_SCALES], *zp = c[C_ZPS];
        if (!sc || !present(sc, r)) return aios__err(AIOS_ERR_FORMAT, "row %lld ('%s'): quantized without scales", (long long)r, nm);
        const size_t esz = f16_ext ? 2 : 4;
        if (sc->bytes[r].len % esz)
            return aios__err(AIOS_ERR_FORMAT, "row %lld ('%s'): scales length %zu is not a multiple of %zu%s", (long long)r, nm,
                             sc->bytes[r].len, esz, f16_ext ? " (f16 scales)" : "");
        t->scales = (const float *)sc->bytes[r].ptr;
        t->n_scales = (int64_t)(sc->bytes[r].len / esz);
        t->scale_dtype = f16_ext ? AIOS_DTYPE_F16 : AIOS_DTYPE_F32;
        if (zp && present(zp, r) && zp->bytes[r].len) {
            if (zp->bytes[r].len != sc->bytes[r].len)
                return aios__err(AIOS_ERR_FORMAT, "row %lld ('%s'): %zu bytes of zero_points for %zu bytes of scales", (long long)r, nm,
                                 zp->bytes[r].len, sc->bytes[r].len);
            t->zero_points = (const float *)zp->bytes[r].ptr;
        }
        if (c[C_QAXIS] && present(c[C_QAXIS], r)) {
            int64_t a = int_at(c[C_QAXIS], r);
            if (a < -1 || a > 0) return aios__err(AIOS_ERR_UNSUPPORTED, "row %lld ('%s'): quant_axis %lld (only -1 and 0 are defined)", (long long)r, nm, (long long)a);
            t->quant_axis = (int32_t)a;
        }
        if (c[C_GSIZE] && present(c[C_GSIZE], r)) {
            int64_t g = int_at(c[C_GSIZE], r);
            if (g < 0 || g > INT32_MAX) return aios__err(AIOS_ERR_FORMAT, "row %lld ('%s'): group_size %lld", (long long)r, nm, (long long)g);
            t->group_size = (int32_t)g;
        }
    }
    aios_status s = aios_tensor_validate(t);
    if (s) return aios__err_prefix(s, "row %lld", (long long)r);
    if (min_form) {
        const void *mins = t->zero_points;
        if (!mins) return aios__err(AIOS_ERR_FORMAT, "row %lld ('%s'): int4_min without minima (zero_points)", (long long)r, nm);
        s = min_form_to_blocks(m, t, mins);
        if (s) return aios__err_prefix(s, "row %lld", (long long)r);
    }
    return AIOS_OK;
}

aios_status aios__model_load_parquet(aios_model *m, const char *path) {
    aios_status s = aios_parquet_open(path, &m->pq);
    if (s) return s;
    int leaf[C_N];
    for (int i = 0; i < C_N; i++) leaf[i] = aios_pq_find_leaf(m->pq, col_names[i]);
    for (int i = 0; i < C_N; i++)
        if ((i == C_NAME || i == C_SHAPE || i == C_DATA) && leaf[i] < 0)
            return aios__err(AIOS_ERR_FORMAT, "%s: no '%s' column (not a weights file of Schema V1/V2)", path, col_names[i]);
    int v2 = leaf[C_QTYPE] >= 0;
    m->format = v2 ? "parquet-v2" : "parquet-v1";
    const char *ext = aios_pq_kv_get(m->pq, "aios.gguf_blocks");
    if (ext && strcmp(ext, AIOS_GGUF_BLOCKS_VERSION))
        return aios__err(AIOS_ERR_UNSUPPORTED, "%s: aios.gguf_blocks extension version '%.20s' is not known to this reader (it knows %s)",
                         path, ext, AIOS_GGUF_BLOCKS_VERSION);
    const char *f16 = aios_pq_kv_get(m->pq, "aios.f16_scales");
    if (f16 && strcmp(f16, AIOS_F16_SCALES_VERSION))
        return aios__err(AIOS_ERR_UNSUPPORTED, "%s: aios.f16_scales extension version '%.20s' is not known to this reader (it knows %s)",
                         path, f16, AIOS_F16_SCALES_VERSION);
    if (f16 && !v2) return aios__err(AIOS_ERR_FORMAT, "%s: aios.f16_scales in a file without Schema V2's quant_type column", path);
    const char *smin = aios_pq_kv_get(m->pq, "aios.scale_min");
    if (smin && strcmp(smin, AIOS_SCALE_MIN_VERSION))
        return aios__err(AIOS_ERR_UNSUPPORTED, "%s: aios.scale_min extension version '%.20s' is not known to this reader (it knows %s)",
                         path, smin, AIOS_SCALE_MIN_VERSION);
    m->cols = calloc(C_N, sizeof *m->cols);
    if (!m->cols) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    aios_pq_column *c[C_N] = {0};
    for (int i = 0; i < C_N; i++) {
        if (leaf[i] < 0) continue;
        int bytes = i == C_NAME || i == C_DTYPE || i == C_DATA || i == C_QTYPE || i == C_SCALES || i == C_ZPS;
        s = check_leaf(m->pq, leaf[i], col_names[i], i == C_SHAPE, bytes);
        if (s) return aios__err_prefix(s, "%s", path);
        s = aios_pq_read_column(m->pq, -1, leaf[i], &m->cols[m->n_cols]);
        if (s) return s;
        c[i] = &m->cols[m->n_cols++];
    }
    int64_t nrows = c[C_NAME]->num_rows;
    for (int i = 0; i < C_N; i++)
        if (c[i] && c[i]->num_rows != nrows)
            return aios__err(AIOS_ERR_FORMAT, "%s: column '%s' has %lld rows, layer_name %lld", path, col_names[i],
                             (long long)c[i]->num_rows, (long long)nrows);
    size_t names_len = 0;
    for (int64_t r = 0; r < nrows; r++) names_len += (present(c[C_NAME], r) ? c[C_NAME]->bytes[r].len : 0) + 1;
    m->names = malloc(names_len + 1);
    m->t = calloc((size_t)nrows + 1, sizeof *m->t);
    if (!m->names || !m->t) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    char *ns = m->names;
    for (int64_t r = 0; r < nrows; r++) {
        s = build_row(m, r, c, v2, ext != NULL, f16 != NULL, smin != NULL, ns, &m->t[r]);
        if (s) return aios__err_prefix(s, "%s", path);
        ns += strlen(ns) + 1;
        m->n++;
    }
    return AIOS_OK;
}

/* ---- writing ---------------------------------------------------------------------- */

static int float_dtype(aios_dtype t) {
    return t == AIOS_DTYPE_F32 || t == AIOS_DTYPE_F16 || t == AIOS_DTYPE_BF16 || t == AIOS_DTYPE_F64;
}

static int name_has(const char *name, const char *s) { return strstr(name, s) != NULL; }

static int name_has_any(const char *name, const char *const *pat, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (name_has(name, pat[i])) return 1;
    return 0;
}

/* The token embedding (HF names; GGUF's token_embd is read as model.embed_tokens) and the
 * untied output head: the classes llama-quantize gives their own types. */
static int is_token_embedding(const char *name) {
    static const char *const pat[] = {"embed_tokens.", "tok_embeddings.", "word_embeddings.", "transformer.wte.", "embed_in."};
    return name_has_any(name, pat, AIOS_ARRAY_LEN(pat)) || !strcmp(name, "wte.weight");
}
static int is_output_head(const char *name) {
    static const char *const pat[] = {"lm_head.", "transformer.ff_out.", "embed_out."};
    return name_has_any(name, pat, AIOS_ARRAY_LEN(pat));
}

/* Bits a tensor is quantized to, 0 when it is left as it is: user keep patterns (glob, or
 * substring when no wildcard); every non-float and 1-D tensor (biases, norm weights); the token
 * embedding / output head by their class types; by default the other embeddings and norms. */
static int tensor_bits(const aios_tensor *t, const aios_quantize_params *q) {
    for (const char *const *k = q->keep; k && *k; k++) {
        if (strpbrk(*k, "*?[") ? fnmatch(*k, t->name, 0) == 0 : name_has(t->name, *k)) return 0;
    }
    /* GGUF blocks count as float weights here: quantize requantizes them (from their exact
     * dequantized values) unless kept */
    if ((!float_dtype(t->dtype) && !aios_gguf_block(t->dtype, NULL, NULL)) || t->ndim < 2) return 0;
    if (aios_tensor_numel(t) < q->min_numel) return 0;
    if (is_token_embedding(t->name)) {
        int b = q->embed_bits ? q->embed_bits : q->keep_defaults ? AIOS_QUANT_KEEP : q->bits;
        return b > 0 ? b : 0;
    }
    if (is_output_head(t->name)) {
        int b = q->output_bits ? q->output_bits : q->bits;
        return b > 0 ? b : 0;
    }
    if (q->keep_defaults) {
        static const char *const pat[] = {"embed", "wte", "wpe", "norm", "LayerNorm", "ln_", "position", "token_type"};
        if (name_has_any(t->name, pat, AIOS_ARRAY_LEN(pat))) return 0;
    }
    return q->bits;
}

static const char *qtype_name(aios_dtype t) {
    switch (t) {
    case AIOS_DTYPE_F32: return "fp32";
    case AIOS_DTYPE_F16: return "fp16";
    case AIOS_DTYPE_BF16: return "bf16";
    case AIOS_DTYPE_Q8: return "int8";
    case AIOS_DTYPE_Q4: return "int4";
    case AIOS_DTYPE_Q2: return "int2";
    case AIOS_DTYPE_GGUF_Q4_0: return "gguf_q4_0";
    case AIOS_DTYPE_GGUF_Q4_1: return "gguf_q4_1";
    case AIOS_DTYPE_GGUF_Q5_0: return "gguf_q5_0";
    case AIOS_DTYPE_GGUF_Q5_1: return "gguf_q5_1";
    case AIOS_DTYPE_GGUF_Q8_0: return "gguf_q8_0";
    case AIOS_DTYPE_GGUF_Q2_K: return "gguf_q2_K";
    case AIOS_DTYPE_GGUF_Q3_K: return "gguf_q3_K";
    case AIOS_DTYPE_GGUF_Q4_K: return "gguf_q4_K";
    case AIOS_DTYPE_GGUF_Q5_K: return "gguf_q5_K";
    case AIOS_DTYPE_GGUF_Q6_K: return "gguf_q6_K";
    case AIOS_DTYPE_GGUF_Q8_K: return "gguf_q8_K";
    default: return aios_dtype_name(t);
    }
}

typedef struct {
    aios_pq_writer *w;
    int leaf[C_N];
    int v2;
    int f16; /* quantized rows get float16 scales (aios.f16_scales) */
    const char *qtype; /* quant_type of the next row when not the dtype's ("int4_min"), else NULL */
} pq_out;

static aios_status put_bytes(pq_out *o, int c, const void *p, size_t n) {
    aios_pq_bytes b = {.ptr = (const uint8_t *)(p ? p : ""), .len = n};
    aios_pq_batch bt = {.num_rows = 1, .bytes = &b};
    return aios_pq_writer_write(o->w, o->leaf[c], &bt);
}

static aios_status put_int(pq_out *o, int c, int64_t v) {
    int32_t v32 = (int32_t)v;
    aios_pq_batch bt = {.num_rows = 1, .values = c == C_NPARAMS ? (const void *)&v : (const void *)&v32};
    return aios_pq_writer_write(o->w, o->leaf[c], &bt);
}

/* scales / zps: n_scales values of esz bytes each (4: float32, 2: float16). */
static aios_status write_row(pq_out *o, const aios_tensor *t, aios_dtype orig, const void *data, size_t nbytes,
                             const void *scales, const void *zps, int64_t n_scales, size_t esz, int32_t axis, int32_t gs) {
    AIOS_TRY(put_bytes(o, C_NAME, t->name, strlen(t->name)));
    int32_t shp[AIOS_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) shp[d] = (int32_t)t->shape[d];
    int64_t offs[2] = {0, t->ndim};
    aios_pq_batch sb = {.num_rows = 1, .offsets = offs, .values = shp};
    AIOS_TRY(aios_pq_writer_write(o->w, o->leaf[C_SHAPE], &sb));
    /* GGUF blocks hold float weights: their logical dtype is float32 */
    const char *tn = aios_dtype_torch_name(aios_gguf_block(orig, NULL, NULL) ? AIOS_DTYPE_F32 : orig);
    if (!tn) return aios__err(AIOS_ERR_UNSUPPORTED, "%s: dtype %s has no torch name", t->name, aios_dtype_name(orig));
    AIOS_TRY(put_bytes(o, C_DTYPE, tn, strlen(tn)));
    AIOS_TRY(put_bytes(o, C_DATA, data, nbytes));
    AIOS_TRY(put_int(o, C_NPARAMS, aios_tensor_numel(t)));
    if (o->v2) {
        const char *qn = o->qtype ? o->qtype : qtype_name(t->dtype);
        AIOS_TRY(put_bytes(o, C_QTYPE, qn, strlen(qn)));
        AIOS_TRY(put_bytes(o, C_SCALES, scales, scales ? (size_t)n_scales * esz : 0));
        AIOS_TRY(put_bytes(o, C_ZPS, zps, zps ? (size_t)n_scales * esz : 0));
        AIOS_TRY(put_int(o, C_QAXIS, axis));
        AIOS_TRY(put_int(o, C_GSIZE, gs));
    }
    return aios_pq_writer_end_batch(o->w, 1);
}

/* Writes a quantized tensor's scales and zero points in the file's scale type: float32 as they
 * are, or float16 (values the quantizer already rounded to f16 convert exactly; copied f32
 * scales are rounded to nearest).  zp NULL: symmetric, written as explicit zeros. */
static aios_status write_scaled_row(pq_out *o, const aios_tensor *t, aios_dtype orig, const void *data, size_t nbytes,
                                    const aios_tensor *src_scales, int64_t ns, int32_t axis, int32_t gs) {
    const size_t esz = o->f16 ? 2 : 4;
    uint8_t *sc = malloc((size_t)ns * esz + 4), *zp = calloc((size_t)ns + 1, esz);
    aios_status s = AIOS_OK;
    if (!sc || !zp) s = aios__err(AIOS_ERR_NOMEM, "quantize: %s: out of memory", t->name);
    for (int64_t i = 0; !s && i < ns; i++) {
        float v[2] = {0, 0};
        const void *arr[2] = {src_scales->scales, src_scales->zero_points};
        for (int k = 0; k < 2; k++) {
            if (!arr[k]) continue;
            if (src_scales->scale_dtype == AIOS_DTYPE_F16) {
                uint16_t h;
                memcpy(&h, (const uint8_t *)arr[k] + 2 * i, 2);
                v[k] = aios_quant_half_to_float(h);
            } else {
                memcpy(&v[k], (const uint8_t *)arr[k] + 4 * i, 4);
            }
        }
        if (o->f16) {
            uint16_t h[2] = {aios_quant_float_to_half(v[0]), aios_quant_float_to_half(v[1])};
            memcpy(sc + 2 * i, &h[0], 2);
            memcpy(zp + 2 * i, &h[1], 2);
        } else {
            memcpy(sc + 4 * i, &v[0], 4);
            memcpy(zp + 4 * i, &v[1], 4);
        }
    }
    /* the seed's reader needs explicit zeros; it cannot read f16 scales anyway, so an f16 file
     * stores a symmetric tensor's zero points empty (what Q4_0 / Q8_0 blocks spend on none) */
    const int no_zp = o->f16 && !src_scales->zero_points;
    if (!s) s = write_row(o, t, orig, data, nbytes, sc, no_zp ? NULL : zp, ns, esz, axis, gs);
    free(sc);
    free(zp);
    return s;
}

/* The lossless transcoding of a GGUF block tensor quantize does instead of requantizing, or 0:
 * the block type maps onto `bits` in groups of the requested size (32), and a block with a
 * minimum (Q4_1) only when the layout asked for is asymmetric.  Sets *min_form. */
static int transcodes(const aios_tensor *t, const aios_quantize_params *q, int bits, int *min_form) {
    aios_dtype qt;
    if (q->requantize || q->group_size != 32 || !aios_quant_gguf_transcodable(t->dtype, &qt, min_form)) return 0;
    if (aios_quant_bits(qt) != bits) return 0;
    return !*min_form || !q->symmetric;
}

/* Writes a GGUF block tensor transcoded (aios_quant_from_gguf_blocks): the same values. */
static aios_status write_transcoded(pq_out *o, const aios_tensor *t, int min_form) {
    aios_dtype qt;
    aios_quant_gguf_transcodable(t->dtype, &qt, NULL);
    int64_t n = aios_tensor_numel(t), ns = n / 32;
    size_t qb;
    AIOS_TRY(aios_dtype_nbytes(qt, n, &qb));
    uint8_t *qd = malloc(qb + 1);
    float *sc = malloc((size_t)ns * 4 + 4), *mn = min_form ? malloc((size_t)ns * 4 + 4) : NULL;
    aios_status s = AIOS_OK;
    if (!qd || !sc || (min_form && !mn)) s = aios__err(AIOS_ERR_NOMEM, "quantize: %s: out of memory", t->name);
    if (!s) s = aios_quant_from_gguf_blocks(t, qd, sc, mn);
    if (!s) {
        /* f16 -> f32 -> f16 gives the block's halves back (NaN payloads aside) */
        aios_tensor qt_ = *t, st = {.scales = sc, .zero_points = mn};
        qt_.dtype = qt;
        o->qtype = min_form ? "int4_min" : NULL;
        s = write_scaled_row(o, &qt_, AIOS_DTYPE_F32, qd, qb, &st, ns, -1, 32);
        o->qtype = NULL;
    }
    free(qd);
    free(sc);
    free(mn);
    return s;
}

/* Quantizes one tensor to `bits` and writes its row. */
static aios_status write_quantized(pq_out *o, const aios_tensor *t, const aios_quantize_params *q, int bits) {
    int min_form;
    if (transcodes(t, q, bits, &min_form)) return write_transcoded(o, t, min_form);
    int64_t rows, cols, ns;
    aios_tensor_rows_cols(t, &rows, &cols);
    aios_quant_params qp = {.type = bits == 8 ? AIOS_DTYPE_Q8 : bits == 4 ? AIOS_DTYPE_Q4 : AIOS_DTYPE_Q2,
                            .group_size = q->group_size, .per_channel = q->per_channel, .symmetric = q->symmetric,
                            .f16_scales = q->f16_scales};
    if (qp.group_size > 0 && cols % qp.group_size) {
        aios_log(AIOS_LOG_WARN, "quantize: %s: row length %lld is not a multiple of group size %d; using one scale per row",
                 t->name, (long long)cols, qp.group_size);
        qp.group_size = 0;
        qp.per_channel = 1;
    }
    int32_t axis, gs;
    AIOS_TRY(aios_quant_layout(&qp, rows, cols, &ns, &axis, &gs));
    int64_t n = rows * cols;
    size_t qb;
    AIOS_TRY(aios_dtype_nbytes(qp.type, n, &qb));
    float *x = malloc((size_t)n * sizeof *x + 1), *sc = malloc((size_t)ns * 4 + 4), *zp = malloc((size_t)ns * 4 + 4);
    uint8_t *qd = malloc(qb + 1);
    aios_status s = AIOS_OK;
    if (!x || !sc || !zp || !qd) s = aios__err(AIOS_ERR_NOMEM, "quantize: %s: out of memory", t->name);
    if (!s) s = aios_quant_dequantize_ref(t, x);
    if (!s) s = aios_quantize_f32(x, rows, cols, &qp, qd, sc, zp);
    if (!s) {
        aios_tensor qt = *t, st = {.scales = sc, .zero_points = qp.symmetric ? NULL : zp};
        qt.dtype = qp.type;
        s = write_scaled_row(o, &qt, t->dtype, qd, qb, &st, ns, axis, gs);
    }
    free(x);
    free(sc);
    free(zp);
    free(qd);
    return s;
}

aios_status aios__model_write_parquet(const aios_model *src, const char *path, const aios_quantize_params *q) {
    aios_pq_field f[] = {
        {.name = "layer_name", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1, .no_dictionary = 1},
        {.name = "shape", .parent = -1, .kind = AIOS_PQ_K_LIST, .nullable = 1},
        {.name = "element", .parent = 1, .kind = AIOS_PQ_K_INT32, .nullable = 1},
        {.name = "dtype", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1},
        {.name = "data", .parent = -1, .kind = AIOS_PQ_K_BINARY, .nullable = 1, .plain_aligned = 1},
        {.name = "num_params", .parent = -1, .kind = AIOS_PQ_K_INT64, .nullable = 1},
        {.name = "quant_type", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1},
        {.name = "scales", .parent = -1, .kind = AIOS_PQ_K_BINARY, .nullable = 1, .plain_aligned = 1},
        {.name = "zero_points", .parent = -1, .kind = AIOS_PQ_K_BINARY, .nullable = 1, .plain_aligned = 1},
        {.name = "quant_axis", .parent = -1, .kind = AIOS_PQ_K_INT32, .nullable = 1},
        {.name = "group_size", .parent = -1, .kind = AIOS_PQ_K_INT32, .nullable = 1},
    };
    aios_pq_writer_params wp = aios_pq_writer_default_params();
    wp.codec = AIOS_PQ_UNCOMPRESSED;
    wp.page_crc = 0;   /* a CRC would make every open read every tensor byte */
    wp.statistics = 0; /* min/max of multi-megabyte binary values are useless */
    wp.align = 64;
    /* GGUF blocks need Schema V2's quant_type column and the extension key */
    int gguf = 0;
    for (int64_t i = 0; i < src->n; i++) gguf |= aios_gguf_block(src->t[i].dtype, NULL, NULL);
    int v2 = q != NULL || gguf;
    pq_out o = {.v2 = v2, .f16 = q && q->f16_scales};
    int min_form = 0, mf;
    for (int64_t i = 0; q && i < src->n; i++) {
        const aios_tensor *t = &src->t[i];
        int bits = !aios_dtype_is_quant(t->dtype) ? tensor_bits(t, q) : 0;
        min_form |= bits && transcodes(t, q, bits, &mf) && mf;
    }
    AIOS_TRY(aios_pq_writer_open(path, f, v2 ? 11 : 6, &wp, &o.w));
    for (int i = 0; i < C_N; i++) o.leaf[i] = (i < C_QTYPE || v2) ? aios_pq_writer_find_leaf(o.w, col_names[i]) : -1;
    aios_status s = aios_pq_writer_set_kv(o.w, "aios.weights_schema", v2 ? "2" : "1");
    if (!s && gguf) s = aios_pq_writer_set_kv(o.w, "aios.gguf_blocks", AIOS_GGUF_BLOCKS_VERSION);
    if (!s && o.f16) s = aios_pq_writer_set_kv(o.w, "aios.f16_scales", AIOS_F16_SCALES_VERSION);
    if (!s && min_form) s = aios_pq_writer_set_kv(o.w, "aios.scale_min", AIOS_SCALE_MIN_VERSION);
    for (int64_t i = 0; !s && i < src->n; i++) {
        const aios_tensor *t = &src->t[i];
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] > INT32_MAX) {
                s = aios__err(AIOS_ERR_RANGE, "%s: dimension %lld does not fit the schema's int32 shape", t->name, (long long)t->shape[d]);
                break;
            }
        if (s) break;
        int bits = q && !aios_dtype_is_quant(t->dtype) ? tensor_bits(t, q) : 0;
        if (bits) {
            s = write_quantized(&o, t, q, bits);
        } else if (aios_gguf_block(t->dtype, NULL, NULL)) {
            /* GGUF blocks as they are (scales inside): convert, and quantize's kept tensors */
            s = write_row(&o, t, AIOS_DTYPE_F32, t->data, t->nbytes, NULL, NULL, 0, 0, -1, 0);
        } else if (aios_dtype_is_quant(t->dtype)) {
            if (!q) {
                s = aios__err(AIOS_ERR_UNSUPPORTED, "%s: quantized tensors need Schema V2 (use quantize)", t->name);
                break;
            }
            /* already quantized: packed bytes copied as they are, scales in this file's scale
             * type (zero points explicit for the seed's reader) */
            s = write_scaled_row(&o, t, AIOS_DTYPE_F32, t->data, t->nbytes, t, t->n_scales, t->quant_axis, t->group_size);
        } else {
            s = write_row(&o, t, t->dtype, t->data, t->nbytes, NULL, NULL, 0, 0, -1, 0);
        }
        if (s) aios__err_prefix(s, "writing %s", path);
    }
    if (s) {
        aios_pq_writer_abort(o.w);
        return s;
    }
    return aios_pq_writer_close(o.w);
}
