/*
 * quant.c — dtype table, tensor view validation, scalar reference dequantization for every
 * dtype, and the ArrowQuant quantizer (int8 / int4 / int2; per tensor, per channel, per group).
 *
 * Key decisions:
 *  - Layouts are the seed prototype's, bit for bit (tensor.h): int8 one signed byte, int4 two
 *    per byte and int2 four per byte, most significant bits first, stored offset (q + 8, q + 2),
 *    packed over the flattened element order.  Dequantization is x = (q - zero_point) * scale.
 *  - The quantizer follows the prototype's asymmetric rule (min/max widened to include 0,
 *    zp = round(-lo / scale) + qmin), with numpy's round-half-to-even, generalised from one
 *    scale per tensor to one per row or per group.  Symmetric: scale = max|x| / qmax.
 *  - Every function that reads a view validates it first (aios_tensor_validate): the views
 *    come from files, so sizes are checked with overflow-safe arithmetic before any access.
 *  - scales / zero_points may be unaligned in a mapping; they are read with memcpy.
 *  - f16/bf16 conversions here are the portable reference (PyTorch's rounding: nearest even);
 *    the F16C-accelerated aios_f16_to_f32 family lives with the kernels.
 */
#include "tensor/quant.h"

#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "tensor/gguf_blocks.h"

/* ---- dtypes ----------------------------------------------------------------------- */

typedef struct {
    aios_dtype t;
    const char *name, *st, *torch;
    size_t size;
} dtype_info;

static const dtype_info g_dtypes[] = {
    {AIOS_DTYPE_F32, "f32", "F32", "torch.float32", 4},
    {AIOS_DTYPE_F16, "f16", "F16", "torch.float16", 2},
    {AIOS_DTYPE_BF16, "bf16", "BF16", "torch.bfloat16", 2},
    {AIOS_DTYPE_F64, "f64", "F64", "torch.float64", 8},
    {AIOS_DTYPE_I8, "i8", "I8", "torch.int8", 1},
    {AIOS_DTYPE_I16, "i16", "I16", "torch.int16", 2},
    {AIOS_DTYPE_I32, "i32", "I32", "torch.int32", 4},
    {AIOS_DTYPE_I64, "i64", "I64", "torch.int64", 8},
    {AIOS_DTYPE_U8, "u8", "U8", "torch.uint8", 1},
    {AIOS_DTYPE_BOOL, "bool", "BOOL", "torch.bool", 1},
    {AIOS_DTYPE_U16, "u16", "U16", "torch.uint16", 2},
    {AIOS_DTYPE_U32, "u32", "U32", "torch.uint32", 4},
    {AIOS_DTYPE_U64, "u64", "U64", "torch.uint64", 8},
    {AIOS_DTYPE_F8_E4M3, "f8_e4m3", "F8_E4M3", "torch.float8_e4m3fn", 1},
    {AIOS_DTYPE_F8_E5M2, "f8_e5m2", "F8_E5M2", "torch.float8_e5m2", 1},
    {AIOS_DTYPE_Q8, "q8", NULL, NULL, 0},
    {AIOS_DTYPE_Q4, "q4", NULL, NULL, 0},
    {AIOS_DTYPE_Q2, "q2", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q4_0, "q4_0", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q4_1, "q4_1", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q5_0, "q5_0", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q5_1, "q5_1", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q8_0, "q8_0", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q2_K, "q2_K", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q3_K, "q3_K", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q4_K, "q4_K", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q5_K, "q5_K", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q6_K, "q6_K", NULL, NULL, 0},
    {AIOS_DTYPE_GGUF_Q8_K, "q8_K", NULL, NULL, 0},
};

static const dtype_info *dinfo(aios_dtype t) {
    for (size_t i = 0; i < AIOS_ARRAY_LEN(g_dtypes); i++)
        if (g_dtypes[i].t == t) return &g_dtypes[i];
    return NULL;
}

size_t aios_dtype_size(aios_dtype t) {
    const dtype_info *d = dinfo(t);
    return d ? d->size : 0;
}

const char *aios_dtype_name(aios_dtype t) {
    const dtype_info *d = dinfo(t);
    return d ? d->name : "?";
}

int aios_dtype_from_safetensors(const char *s, aios_dtype *out) {
    for (size_t i = 0; i < AIOS_ARRAY_LEN(g_dtypes); i++)
        if (g_dtypes[i].st && !strcmp(g_dtypes[i].st, s)) {
            *out = g_dtypes[i].t;
            return 0;
        }
    return -1;
}

const char *aios_dtype_safetensors_name(aios_dtype t) {
    const dtype_info *d = dinfo(t);
    return d ? d->st : NULL;
}

int aios_dtype_from_torch(const char *s, aios_dtype *out) {
    static const struct {
        const char *alias;
        aios_dtype t;
    } aliases[] = {
        {"float32", AIOS_DTYPE_F32}, {"float", AIOS_DTYPE_F32},     {"fp32", AIOS_DTYPE_F32},
        {"float16", AIOS_DTYPE_F16}, {"half", AIOS_DTYPE_F16},      {"fp16", AIOS_DTYPE_F16},
        {"bfloat16", AIOS_DTYPE_BF16}, {"bf16", AIOS_DTYPE_BF16},   {"float64", AIOS_DTYPE_F64},
        {"double", AIOS_DTYPE_F64},  {"int8", AIOS_DTYPE_I8},       {"int16", AIOS_DTYPE_I16},
        {"int32", AIOS_DTYPE_I32},   {"int64", AIOS_DTYPE_I64},     {"long", AIOS_DTYPE_I64},
        {"uint8", AIOS_DTYPE_U8},    {"bool", AIOS_DTYPE_BOOL},     {"uint16", AIOS_DTYPE_U16},
        {"uint32", AIOS_DTYPE_U32},  {"uint64", AIOS_DTYPE_U64},    {"float8_e4m3fn", AIOS_DTYPE_F8_E4M3},
        {"float8_e5m2", AIOS_DTYPE_F8_E5M2},
    };
    if (!strncmp(s, "torch.", 6)) s += 6;
    for (size_t i = 0; i < AIOS_ARRAY_LEN(aliases); i++)
        if (!strcmp(aliases[i].alias, s)) {
            *out = aliases[i].t;
            return 0;
        }
    return -1;
}

const char *aios_dtype_torch_name(aios_dtype t) {
    const dtype_info *d = dinfo(t);
    return d ? d->torch : NULL;
}

int aios_dtype_is_quant(aios_dtype t) {
    return t == AIOS_DTYPE_Q8 || t == AIOS_DTYPE_Q4 || t == AIOS_DTYPE_Q2;
}

int aios_quant_bits(aios_dtype t) {
    return t == AIOS_DTYPE_Q8 ? 8 : t == AIOS_DTYPE_Q4 ? 4 : t == AIOS_DTYPE_Q2 ? 2 : 0;
}

aios_status aios_dtype_nbytes(aios_dtype t, int64_t numel, size_t *out) {
    if (numel < 0) return aios__err(AIOS_ERR_RANGE, "negative element count %lld", (long long)numel);
    uint64_t n = (uint64_t)numel, b;
    int gblk, gbytes;
    if (aios_gguf_block(t, &gblk, &gbytes)) {
        if (n % (uint64_t)gblk)
            return aios__err(AIOS_ERR_SHAPE, "%lld values are not whole %s blocks of %d", (long long)numel,
                             aios_dtype_name(t), gblk);
        if (!aios__mul_ok(n / (uint64_t)gblk, (uint64_t)gbytes, &b))
            return aios__err(AIOS_ERR_RANGE, "%lld elements overflow", (long long)numel);
    } else if (aios_dtype_is_quant(t)) {
        int per = 8 / aios_quant_bits(t);
        b = n / (uint64_t)per + (n % (uint64_t)per != 0);
    } else {
        size_t sz = aios_dtype_size(t);
        if (!sz) return aios__err(AIOS_ERR_UNSUPPORTED, "unknown dtype %d", (int)t);
        if (!aios__mul_ok(n, sz, &b)) return aios__err(AIOS_ERR_RANGE, "%lld elements overflow", (long long)numel);
    }
    if (b > (uint64_t)SIZE_MAX || b > (uint64_t)INT64_MAX)
        return aios__err(AIOS_ERR_RANGE, "%lld elements overflow", (long long)numel);
    *out = (size_t)b;
    return AIOS_OK;
}

void aios_tensor_rows_cols(const aios_tensor *t, int64_t *rows, int64_t *cols) {
    int64_t n = aios_tensor_numel(t);
    int64_t r = t->ndim >= 1 ? t->shape[0] : 1;
    *rows = r;
    *cols = r > 0 ? n / r : 0;
}

aios_status aios_tensor_validate(const aios_tensor *t) {
    const char *nm = t->name ? t->name : "(tensor)";
    if (t->ndim < 0 || t->ndim > AIOS_MAX_DIMS)
        return aios__err(AIOS_ERR_FORMAT, "%s: %d dimensions (at most %d)", nm, t->ndim, AIOS_MAX_DIMS);
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0) return aios__err(AIOS_ERR_SHAPE, "%s: negative dimension %lld", nm, (long long)t->shape[i]);
        if (!aios__mul_ok(n, (uint64_t)t->shape[i], &n) || n > (uint64_t)INT64_MAX)
            return aios__err(AIOS_ERR_RANGE, "%s: shape overflows", nm);
    }
    if (!dinfo(t->dtype)) return aios__err(AIOS_ERR_UNSUPPORTED, "%s: unknown dtype %d", nm, (int)t->dtype);
    size_t need;
    aios_status s = aios_dtype_nbytes(t->dtype, (int64_t)n, &need);
    if (s) return aios__err_prefix(s, "%s", nm);
    if (t->nbytes != need)
        return aios__err(AIOS_ERR_SHAPE, "%s: %zu data bytes, but shape and dtype %s need %zu", nm, t->nbytes,
                         aios_dtype_name(t->dtype), need);
    if (need && !t->data) return aios__err(AIOS_ERR_INVALID_ARG, "%s: no data", nm);
    int gblk;
    if (aios_gguf_block(t->dtype, &gblk, NULL)) {
        /* blocks never straddle rows */
        int64_t rows, cols;
        aios_tensor_rows_cols(t, &rows, &cols);
        if (cols % gblk)
            return aios__err(AIOS_ERR_SHAPE, "%s: row length %lld is not a multiple of the %s block (%d)", nm,
                             (long long)cols, aios_dtype_name(t->dtype), gblk);
        return AIOS_OK;
    }
    if (!aios_dtype_is_quant(t->dtype)) return AIOS_OK;
    if (t->scale_dtype != AIOS_DTYPE_F32 && t->scale_dtype != AIOS_DTYPE_F16)
        return aios__err(AIOS_ERR_UNSUPPORTED, "%s: scale dtype %d (only f32 and f16 are defined)", nm, (int)t->scale_dtype);

    int64_t rows, cols;
    aios_tensor_rows_cols(t, &rows, &cols);
    int64_t want;
    if (t->group_size < 0) return aios__err(AIOS_ERR_FORMAT, "%s: group_size %d < 0", nm, t->group_size);
    if (t->group_size > 0) {
        if (cols % t->group_size != 0)
            return aios__err(AIOS_ERR_SHAPE, "%s: row length %lld is not a multiple of group_size %d", nm,
                             (long long)cols, t->group_size);
        want = (int64_t)n / t->group_size;
    } else if (t->quant_axis == -1) {
        want = 1;
    } else if (t->quant_axis == 0) {
        want = rows;
    } else {
        return aios__err(AIOS_ERR_UNSUPPORTED, "%s: quant_axis %d (only -1 and 0 are defined)", nm, t->quant_axis);
    }
    if (t->n_scales != want)
        return aios__err(AIOS_ERR_SHAPE, "%s: %lld scales, but quant_axis %d / group_size %d need %lld", nm,
                         (long long)t->n_scales, t->quant_axis, t->group_size, (long long)want);
    if (want && !t->scales) return aios__err(AIOS_ERR_INVALID_ARG, "%s: no scales", nm);
    return AIOS_OK;
}

/* ---- scalar conversions ---------------------------------------------------------- */

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float aios_quant_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (man << 13)); /* inf / NaN */
    if (exp == 0) {
        if (!man) return bits_f32(sign);
        /* subnormal: man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t aios_quant_float_to_half(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return (uint16_t)(sign | 0x7C00 | (a > 0x7F800000u ? 0x200 | ((a >> 13) & 0x3FF) : 0));
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                                    /* below the smallest normal half */
        if (a < 0x33000000u) return sign;                      /* < 2^-25 rounds to 0 */
        uint32_t e = a >> 23, m = (a & 0x7FFFFF) | 0x800000;
        /* value = m * 2^(e-150); in units of the half subnormal 2^-24: m >> (126 - e) */
        int shift = (int)(126 - e); /* 14..24 */
        uint32_t rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        uint32_t q = m >> shift;
        if (rem > halfway || (rem == halfway && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = a + 0xFFF + ((a >> 13) & 1); /* round to nearest even on the 13 dropped bits */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

float aios_quant_bf16_to_float(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t aios_quant_float_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* Branch-free so the compiler vectorizes it (an adapter's ~1M values per load: 2.4 ms one call per
 * value, the whole copy of a rank-8 SmolLM2 adapter); the same values as aios_quant_float_to_bf16. */
#if defined(__GNUC__) && !defined(__clang__)
#define AIOS_VECTORIZE __attribute__((optimize("tree-vectorize"))) /* gcc's -O2 cost model skips it */
#else
#define AIOS_VECTORIZE /* clang vectorizes this loop at -O2 */
#endif
AIOS_VECTORIZE void aios_quant_floats_to_bf16(uint16_t *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, 4);
        const uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16, q = (u >> 16) | 0x40u;
        dst[i] = (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? q : r);
    }
}

float aios_quant_f8e4m3_to_float(uint8_t v) {
    int sign = v & 0x80, exp = (v >> 3) & 0xF, man = v & 7;
    float r;
    if (exp == 0xF && man == 7) return NAN;
    if (exp == 0) r = ldexpf((float)man, -9); /* man/8 * 2^-6 */
    else r = ldexpf((float)(8 + man), exp - 10);
    return sign ? -r : r;
}

float aios_quant_f8e5m2_to_float(uint8_t v) {
    return aios_quant_half_to_float((uint16_t)((uint16_t)v << 8));
}

float aios_quant_f16_scale(float s) {
    float r = aios_quant_half_to_float(aios_quant_float_to_half(s));
    if (!(r > 0)) r = 0x1p-24f; /* underflow: the smallest half (every value then clamps) */
    if (isinf(r)) r = 65504.0f; /* overflow: the largest */
    return r;
}

/* ---- reference dequantization ---------------------------------------------------- */

static inline float ld_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* Element i of a plain (non-quantized) dtype as float. */
static float plain_at(const uint8_t *p, aios_dtype t, int64_t i) {
    switch (t) {
    case AIOS_DTYPE_F32: return ld_f32(p + 4 * i);
    case AIOS_DTYPE_F16: { uint16_t h; memcpy(&h, p + 2 * i, 2); return aios_quant_half_to_float(h); }
    case AIOS_DTYPE_BF16: { uint16_t h; memcpy(&h, p + 2 * i, 2); return aios_quant_bf16_to_float(h); }
    case AIOS_DTYPE_F64: { double d; memcpy(&d, p + 8 * i, 8); return (float)d; }
    case AIOS_DTYPE_I8: return (float)(int8_t)p[i];
    case AIOS_DTYPE_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return (float)v; }
    case AIOS_DTYPE_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return (float)v; }
    case AIOS_DTYPE_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return (float)v; }
    case AIOS_DTYPE_U8: return (float)p[i];
    case AIOS_DTYPE_BOOL: return p[i] ? 1.0f : 0.0f;
    case AIOS_DTYPE_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return (float)v; }
    case AIOS_DTYPE_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return (float)v; }
    case AIOS_DTYPE_U64: { uint64_t v; memcpy(&v, p + 8 * i, 8); return (float)v; }
    case AIOS_DTYPE_F8_E4M3: return aios_quant_f8e4m3_to_float(p[i]);
    case AIOS_DTYPE_F8_E5M2: return aios_quant_f8e5m2_to_float(p[i]);
    default: return 0.0f;
    }
}

/* Dequantizes flattened elements [i0, i0 + n) into out. t is already validated. */
static void dequant_range(const aios_tensor *t, int64_t cols, int64_t i0, int64_t n, float *out) {
    const uint8_t *p = (const uint8_t *)t->data;
    int gblk, gbytes;
    if (aios_gguf_block(t->dtype, &gblk, &gbytes)) {
        /* GGUF blocks: row by row (blocks never straddle rows; validate checked cols % gblk) */
        size_t row_bytes = (size_t)(cols / gblk) * (size_t)gbytes;
        while (n > 0) {
            int64_t r = i0 / cols, c = i0 % cols, k = AIOS_MIN(n, cols - c);
            aios_gguf_deq_range(t->dtype, p + (size_t)r * row_bytes, c, k, out);
            i0 += k;
            out += k;
            n -= k;
        }
        return;
    }
    if (!aios_dtype_is_quant(t->dtype)) {
        for (int64_t k = 0; k < n; k++) out[k] = plain_at(p, t->dtype, i0 + k);
        return;
    }
    const uint8_t *sc = (const uint8_t *)t->scales, *zp = (const uint8_t *)t->zero_points;
    const aios_dtype sd = (aios_dtype)t->scale_dtype; /* f32 or f16 (validated) */
    for (int64_t k = 0; k < n; k++) {
        int64_t i = i0 + k, si = aios_quant_scale_index(t, cols, i);
        float s = plain_at(sc, sd, si), z = zp ? plain_at(zp, sd, si) : 0.0f;
        out[k] = ((float)aios_quant_get(p, t->dtype, i) - z) * s;
    }
}

/* Q8_K has no dequantizer (an activation format; gguf_blocks.h). */
static aios_status check_deq(const aios_tensor *t) {
    if (t->dtype == AIOS_DTYPE_GGUF_Q8_K)
        return aios__err(AIOS_ERR_UNSUPPORTED, "%s: dtype q8_K is an activation format, not a weight",
                         t->name ? t->name : "(tensor)");
    return AIOS_OK;
}

aios_status aios_quant_dequantize_ref(const aios_tensor *t, float *out) {
    AIOS_TRY(aios_tensor_validate(t));
    AIOS_TRY(check_deq(t));
    int64_t rows, cols;
    aios_tensor_rows_cols(t, &rows, &cols);
    dequant_range(t, cols, 0, aios_tensor_numel(t), out);
    return AIOS_OK;
}

aios_status aios_quant_dequantize_row_ref(const aios_tensor *t, int64_t row, float *out) {
    AIOS_TRY(aios_tensor_validate(t));
    AIOS_TRY(check_deq(t));
    int64_t rows, cols;
    aios_tensor_rows_cols(t, &rows, &cols);
    if (row < 0 || row >= rows)
        return aios__err(AIOS_ERR_RANGE, "%s: row %lld of %lld", t->name ? t->name : "(tensor)", (long long)row,
                         (long long)rows);
    dequant_range(t, cols, row * cols, cols, out);
    return AIOS_OK;
}

/* ---- quantizer ------------------------------------------------------------------- */

aios_status aios_quant_layout(const aios_quant_params *p, int64_t rows, int64_t cols, int64_t *n_scales,
                              int32_t *quant_axis, int32_t *group_size) {
    if (!aios_dtype_is_quant(p->type)) return aios__err(AIOS_ERR_INVALID_ARG, "quantize: type must be int8, int4 or int2");
    if (rows < 0 || cols < 0) return aios__err(AIOS_ERR_SHAPE, "quantize: negative shape");
    if (p->group_size < 0) return aios__err(AIOS_ERR_INVALID_ARG, "quantize: group size %d < 0", p->group_size);
    if (p->group_size > 0) {
        if (cols % p->group_size)
            return aios__err(AIOS_ERR_SHAPE, "quantize: row length %lld is not a multiple of group size %d",
                             (long long)cols, p->group_size);
        *n_scales = rows * (cols / p->group_size);
        *quant_axis = -1;
        *group_size = p->group_size;
    } else if (p->per_channel) {
        *n_scales = rows;
        *quant_axis = 0;
        *group_size = 0;
    } else {
        *n_scales = 1;
        *quant_axis = -1;
        *group_size = 0;
    }
    return AIOS_OK;
}

static inline void put_q(uint8_t *q, aios_dtype t, int64_t i, int v) {
    switch (t) {
    case AIOS_DTYPE_Q8: q[i] = (uint8_t)(int8_t)v; break;
    case AIOS_DTYPE_Q4: q[i >> 1] |= (uint8_t)((unsigned)(v + 8) << (4 * (1 - (i & 1)))); break;
    case AIOS_DTYPE_Q2: q[i >> 2] |= (uint8_t)((unsigned)(v + 2) << (2 * (3 - (i & 3)))); break;
    default: break;
    }
}

/* One block of n values sharing (scale, zp), starting at flattened index i0. */
static void quant_block(const float *x, int64_t i0, int64_t n, const aios_quant_params *p, int qmin, int qmax,
                        uint8_t *q, float *scale_out, float *zp_out) {
    double lo = 0, hi = 0, amax = 0;
    for (int64_t k = 0; k < n; k++) {
        float v = x[i0 + k];
        if (!isfinite(v)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (fabs(v) > amax) amax = fabs(v);
    }
    float scale, zp = 0;
    if (p->symmetric) {
        scale = (float)(amax / qmax);
        zp = 0;
        if (!(scale > 0) || !isfinite(scale)) scale = 1.0f;
    } else {
        scale = (float)((hi - lo) / (double)(qmax - qmin));
        if (!(scale > 0) || !isfinite(scale)) scale = 1.0f;
    }
    if (p->f16_scales) scale = aios_quant_f16_scale(scale);
    if (!p->symmetric) {
        zp = (float)(nearbyint(-lo / (double)scale) + qmin);
        if (zp < (float)qmin) zp = (float)qmin;
        if (zp > (float)qmax) zp = (float)qmax;
    }
    for (int64_t k = 0; k < n; k++) {
        float v = x[i0 + k];
        int qi;
        if (isnan(v)) qi = (int)zp;
        else {
            float r = nearbyintf(v / scale) + zp;
            qi = r <= (float)qmin ? qmin : r >= (float)qmax ? qmax : (int)r;
        }
        put_q(q, p->type, i0 + k, qi);
    }
    *scale_out = scale;
    *zp_out = zp;
}

aios_status aios_quantize_f32(const float *x, int64_t rows, int64_t cols, const aios_quant_params *p, uint8_t *q,
                              float *scales, float *zero_points) {
    int64_t ns;
    int32_t axis, gs;
    AIOS_TRY(aios_quant_layout(p, rows, cols, &ns, &axis, &gs));
    if (rows && cols > INT64_MAX / rows) return aios__err(AIOS_ERR_RANGE, "quantize: shape overflows");
    int64_t n = rows * cols;
    size_t nb;
    AIOS_TRY(aios_dtype_nbytes(p->type, n, &nb));
    memset(q, 0, nb);
    int bits = aios_quant_bits(p->type), qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
    int64_t block = gs > 0 ? gs : axis == 0 ? cols : n;
    for (int64_t b = 0; b < ns; b++) {
        float s, z;
        quant_block(x, b * block, block, p, qmin, qmax, q, &s, &z);
        scales[b] = s;
        if (zero_points) zero_points[b] = z;
    }
    return AIOS_OK;
}

/* ---- lossless GGUF block transcoding --------------------------------------------- */

int aios_quant_gguf_transcodable(aios_dtype gguf_type, aios_dtype *qtype, int *min_form) {
    aios_dtype q;
    int mf = 0;
    switch (gguf_type) {
    case AIOS_DTYPE_GGUF_Q8_0: q = AIOS_DTYPE_Q8; break;
    case AIOS_DTYPE_GGUF_Q4_0: q = AIOS_DTYPE_Q4; break;
    case AIOS_DTYPE_GGUF_Q4_1: q = AIOS_DTYPE_Q4, mf = 1; break;
    default: return 0;
    }
    if (qtype) *qtype = q;
    if (min_form) *min_form = mf;
    return 1;
}

/* Sets the int4 code of flattened element i (MSB first; the buffer starts zeroed). */
static void put_nibble(uint8_t *q, int64_t i, unsigned u) { q[i >> 1] |= (uint8_t)((u & 0xF) << (4 * (1 - (i & 1)))); }

aios_status aios_quant_from_gguf_blocks(const aios_tensor *t, uint8_t *q, float *scales, float *mins) {
    aios_dtype qt;
    int mf, blk, bb;
    const char *nm = t->name ? t->name : "(tensor)";
    if (!aios_quant_gguf_transcodable(t->dtype, &qt, &mf) || !aios_gguf_block(t->dtype, &blk, &bb))
        return aios__err(AIOS_ERR_UNSUPPORTED, "%s: %s blocks have no lossless ArrowQuant layout", nm, aios_dtype_name(t->dtype));
    if (mf && !mins) return aios__err(AIOS_ERR_INVALID_ARG, "%s: %s needs the minima array", nm, aios_dtype_name(t->dtype));
    AIOS_TRY(aios_tensor_validate(t));
    int64_t n = aios_tensor_numel(t), nb = n / blk;
    size_t qb;
    AIOS_TRY(aios_dtype_nbytes(qt, n, &qb));
    memset(q, 0, qb);
    const uint8_t *b = t->data;
    for (int64_t k = 0; k < nb; k++, b += bb) {
        const int64_t e = k * blk; /* first element of the block */
        scales[k] = aios_gguf_f16(b);
        switch (t->dtype) {
        case AIOS_DTYPE_GGUF_Q8_0: memcpy(q + e, b + 2, 32); break;
        case AIOS_DTYPE_GGUF_Q4_0:
            for (int j = 0; j < 16; j++) {
                put_nibble(q, e + j, b[2 + j] & 0xF);
                put_nibble(q, e + j + 16, b[2 + j] >> 4);
            }
            break;
        default: /* Q4_1 */
            mins[k] = aios_gguf_f16(b + 2);
            for (int j = 0; j < 16; j++) {
                put_nibble(q, e + j, b[4 + j] & 0xF);
                put_nibble(q, e + j + 16, b[4 + j] >> 4);
            }
            break;
        }
    }
    return AIOS_OK;
}

aios_status aios_quant_min_form_to_q4_1(const aios_tensor *t, const void *mins, uint8_t *out) {
    const char *nm = t->name ? t->name : "(tensor)";
    int64_t n = aios_tensor_numel(t);
    if (t->dtype != AIOS_DTYPE_Q4 || t->group_size != 32 || n % 32 || t->n_scales != n / 32 || !mins)
        return aios__err(AIOS_ERR_UNSUPPORTED,
                         "%s: int4_min rows are read as Q4_1 blocks: int4 in groups of 32 with minima (this one: %s, group size %d)",
                         nm, aios_dtype_name(t->dtype), (int)t->group_size);
    const int f16 = t->scale_dtype == AIOS_DTYPE_F16;
    const uint8_t *p = t->data, *arr[2] = {(const uint8_t *)t->scales, (const uint8_t *)mins};
    for (int64_t k = 0; k < n / 32; k++) {
        uint8_t *b = out + 20 * k;
        for (int c = 0; c < 2; c++) {
            if (f16) { /* the half's bits as they are */
                memcpy(b + 2 * c, arr[c] + 2 * k, 2);
                continue;
            }
            float v;
            memcpy(&v, arr[c] + 4 * k, 4);
            uint16_t h = aios_quant_float_to_half(v);
            float back = aios_quant_half_to_float(h);
            if (memcmp(&back, &v, 4) && !(v != v && back != back))
                return aios__err(AIOS_ERR_UNSUPPORTED,
                                 "%s: group %lld: %s %.9g is not a float16 value (a Q4_1 block cannot hold it)", nm,
                                 (long long)k, c ? "minimum" : "scale", (double)v);
            b[2 * c] = (uint8_t)(h & 0xFF);
            b[2 * c + 1] = (uint8_t)(h >> 8);
        }
        for (int j = 0; j < 16; j++) {
            int lo = aios_quant_get(p, AIOS_DTYPE_Q4, 32 * k + j) + 8, hi = aios_quant_get(p, AIOS_DTYPE_Q4, 32 * k + j + 16) + 8;
            b[4 + j] = (uint8_t)(lo | (hi << 4));
        }
    }
    return AIOS_OK;
}
