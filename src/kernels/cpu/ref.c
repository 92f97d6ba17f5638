/*
 * ref.c — the scalar reference kernels (`aios_ref_*`) and the reference tier's inner loops.
 *
 * Plain C, one thread, written to be obviously right (llm.c's train_gpt2.c, ggml's _ref tier):
 * every fast path in avx2.c / avx512.c is tested against these at odd sizes, and
 * AIOS_KERNELS=ref makes the whole engine use them.  Matmul reads quantized weights element
 * by element through the ArrowQuant layout (tensor.h): x = (q - zero_point) * scale.
 * Conventions follow Hugging Face: GELU is the erf form, LayerNorm uses the biased variance
 * with eps inside the square root, RoPE rotates pairs (i, i + head_dim / 2) with the angle
 * pos * inv_freq computed in float32 as transformers does.
 */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/kern.h"
#include "tensor/gguf_blocks.h"
#include "tensor/quant.h"

/* ---------------------------------------------------------------- half precision */

float aios_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t aios_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0); /* inf / nan */
    if (ax >= 0x477FF000u) return sign | 0x7C00;                                 /* rounds to inf */
    if (ax < 0x38800000u) {                                                      /* f16 subnormal or 0 */
        if (ax < 0x33000000u) return sign;                                       /* < half the smallest */
        uint32_t e = ax >> 23, man = (ax & 0x7FFFFF) | 0x800000;
        int shift = (int)(126 - e); /* value = man * 2^(e-150); f16 unit 2^-24 */
        uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t r = ax + 0xFFF + ((ax >> 13) & 1) - ((uint32_t)(127 - 15) << 23); /* RNE */
    return sign | (uint16_t)(r >> 13);
}

float aios_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t aios_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7FFF + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---------------------------------------------------------------- weight checks */

aios_status aios__check_weight(const aios_tensor *W, const char *what) {
    if (!W) return aios__err(AIOS_ERR_INVALID_ARG, "%s: NULL weight", what);
    const char *nm = W->name ? W->name : "?";
    if (W->ndim != 2 || W->shape[0] < 0 || W->shape[1] < 0)
        return aios__err(AIOS_ERR_SHAPE, "%s: weight %s: expected 2-D (n_out, n_in), got %d dims", what, nm, W->ndim);
    uint64_t numel;
    if (!aios__mul_ok((uint64_t)W->shape[0], (uint64_t)W->shape[1], &numel) || numel > (1ull << 48))
        return aios__err(AIOS_ERR_RANGE, "%s: weight %s: too many elements", what, nm);
    uint64_t need;
    int gblk, gbytes;
    if (aios_gguf_block(W->dtype, &gblk, &gbytes)) {
        if (!aios_gguf_is_weight(W->dtype))
            return aios__err(AIOS_ERR_UNSUPPORTED, "%s: weight %s: dtype %s is an activation format, not a weight",
                             what, nm, aios_dtype_name(W->dtype));
        if (W->shape[1] % gblk)
            return aios__err(AIOS_ERR_FORMAT, "%s: weight %s: n_in %lld is not a multiple of the %s block (%d)", what,
                             nm, (long long)W->shape[1], aios_dtype_name(W->dtype), gblk);
        need = numel / (uint64_t)gblk * (uint64_t)gbytes;
        if (need && !W->data) return aios__err(AIOS_ERR_INVALID_ARG, "%s: weight %s: NULL data", what, nm);
        if (W->nbytes < need)
            return aios__err(AIOS_ERR_FORMAT, "%s: weight %s: %zu bytes, need %llu", what, nm, W->nbytes,
                             (unsigned long long)need);
        return AIOS_OK;
    }
    switch (W->dtype) {
    case AIOS_DTYPE_F32: need = numel * 4; break;
    case AIOS_DTYPE_F16:
    case AIOS_DTYPE_BF16: need = numel * 2; break;
    case AIOS_DTYPE_Q8: need = numel; break;
    case AIOS_DTYPE_Q4: need = (numel + 1) / 2; break;
    case AIOS_DTYPE_Q2: need = (numel + 3) / 4; break;
    default: return aios__err(AIOS_ERR_UNSUPPORTED, "%s: weight %s: dtype %d is not a weight dtype", what, nm, (int)W->dtype);
    }
    if (need && !W->data) return aios__err(AIOS_ERR_INVALID_ARG, "%s: weight %s: NULL data", what, nm);
    if (W->nbytes < need)
        return aios__err(AIOS_ERR_FORMAT, "%s: weight %s: %zu bytes, need %llu", what, nm, W->nbytes,
                         (unsigned long long)need);
    if (W->dtype == AIOS_DTYPE_Q8 || W->dtype == AIOS_DTYPE_Q4 || W->dtype == AIOS_DTYPE_Q2) {
        int64_t want;
        if (W->group_size > 0) {
            if (W->shape[1] % W->group_size)
                return aios__err(AIOS_ERR_FORMAT, "%s: weight %s: n_in %lld not a multiple of group size %d", what,
                                 nm, (long long)W->shape[1], W->group_size);
            want = (int64_t)(numel / (uint64_t)W->group_size);
        } else if (W->group_size < 0) {
            return aios__err(AIOS_ERR_FORMAT, "%s: weight %s: negative group size", what, nm);
        } else if (W->quant_axis == 0) {
            want = W->shape[0];
        } else if (W->quant_axis == -1) {
            want = 1;
        } else {
            return aios__err(AIOS_ERR_UNSUPPORTED, "%s: weight %s: quant_axis %d (only -1 and 0)", what, nm,
                             W->quant_axis);
        }
        if (W->scale_dtype != AIOS_DTYPE_F32 && W->scale_dtype != AIOS_DTYPE_F16)
            return aios__err(AIOS_ERR_UNSUPPORTED, "%s: weight %s: scale dtype %d (only f32 and f16)", what, nm,
                             (int)W->scale_dtype);
        if (!W->scales || W->n_scales != want)
            return aios__err(AIOS_ERR_FORMAT, "%s: weight %s: %lld scales, expected %lld", what, nm,
                             (long long)W->n_scales, (long long)want);
    }
    return AIOS_OK;
}

/* One weight element as float (reference: element by element, straight from tensor.h). */
static float ref_w(const aios_tensor *W, int64_t r, int64_t c) {
    int64_t e = r * W->shape[1] + c;
    switch (W->dtype) {
    case AIOS_DTYPE_F32: return aios__ldf((const float *)W->data, e);
    case AIOS_DTYPE_F16: {
        uint16_t h;
        memcpy(&h, (const uint16_t *)W->data + e, 2);
        return aios_f16_to_f32(h);
    }
    case AIOS_DTYPE_BF16: {
        uint16_t h;
        memcpy(&h, (const uint16_t *)W->data + e, 2);
        return aios_bf16_to_f32(h);
    }
    default: {
        int64_t si = aios__q_sidx(W, r, c);
        float s = aios__q_scale(W, si), z = aios__q_zero(W, si);
        return ((float)aios__q_get(W, e) - z) * s;
    }
    }
}

static void ref_deq(float *out, const aios_tensor *W, int64_t row, int64_t c0, int64_t n) {
    if (aios_gguf_block(W->dtype, NULL, NULL)) {
        aios_gguf_deq_range(W->dtype, aios__gguf_row(W, row), c0, n, out);
        return;
    }
    for (int64_t j = 0; j < n; j++) out[j] = ref_w(W, row, c0 + j);
}

/* ---------------------------------------------------------------- matmul */

aios_status aios_ref_matmul(float *y, const float *x, const aios_tensor *W, const float *bias, int64_t T) {
    AIOS_TRY(aios__check_weight(W, "matmul"));
    if (T < 0) return aios__err(AIOS_ERR_INVALID_ARG, "matmul: T = %lld", (long long)T);
    int64_t n_out = W->shape[0], n_in = W->shape[1];
    if (aios_gguf_block(W->dtype, NULL, NULL)) {
        /* GGUF blocks decode a whole block at a time: one row of W to float, then every token */
        float *w = malloc(sizeof(float) * (size_t)(n_in > 0 ? n_in : 1));
        if (!w) return aios__err(AIOS_ERR_NOMEM, "matmul: %lld floats", (long long)n_in);
        for (int64_t r = 0; r < n_out; r++) {
            aios_gguf_deq_range(W->dtype, aios__gguf_row(W, r), 0, n_in, w);
            for (int64_t t = 0; t < T; t++) {
                float acc = 0.0f;
                for (int64_t c = 0; c < n_in; c++) acc += w[c] * x[t * n_in + c];
                y[t * n_out + r] = acc + (bias ? bias[r] : 0.0f);
            }
        }
        free(w);
        return AIOS_OK;
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < n_out; r++) {
            float acc = 0.0f;
            for (int64_t c = 0; c < n_in; c++) acc += ref_w(W, r, c) * x[t * n_in + c];
            y[t * n_out + r] = acc + (bias ? bias[r] : 0.0f);
        }
    return AIOS_OK;
}

/* ---------------------------------------------------------------- elementwise and rows */

static float ref_dot(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static void ref_axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
static void ref_scale(float *x, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] *= a;
}
static void ref_tile(float *y, int64_t ldy, const float *w, int64_t ldw, int nr, const float *x, int64_t ldx, int nt,
                     int64_t n) {
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) y[t * ldy + r] += ref_dot(w + r * ldw, x + t * ldx, n);
}

void aios_ref_gelu(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}
void aios_ref_silu(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}
static void ref_softmax_row(float *x, int64_t n) {
    if (n <= 0) return;
    float m = x[0];
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    float inv = 1.0f / s;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}
void aios_ref_softmax(float *x, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; r++) ref_softmax_row(x + r * n, n);
}
static void ref_layernorm_row(float *y, const float *x, const float *w, const float *b, int64_t n, float eps) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)(n ? n : 1);
    for (int64_t i = 0; i < n; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    var /= (double)(n ? n : 1);
    float m = (float)mean, rs = (float)(1.0 / sqrt(var + (double)eps));
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * rs * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
}
void aios_ref_layernorm(float *y, const float *x, const float *w, const float *b, int64_t T, int64_t n, float eps) {
    for (int64_t t = 0; t < T; t++) ref_layernorm_row(y + t * n, x + t * n, w, b, n, eps);
}
static void ref_rmsnorm_row(float *y, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float rs = (float)(1.0 / sqrt(ss / (double)(n ? n : 1) + (double)eps));
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * rs * (w ? w[i] : 1.0f);
}
void aios_ref_rmsnorm(float *y, const float *x, const float *w, int64_t T, int64_t n, float eps) {
    for (int64_t t = 0; t < T; t++) ref_rmsnorm_row(y + t * n, x + t * n, w, n, eps);
}
void aios_ref_mul(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] *= y[i];
}
void aios_ref_add(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

void aios_ref_rope(float *x, const int32_t *pos, int64_t T, int64_t n_head, int64_t head_dim, const float *inv_freq) {
    int64_t half = head_dim / 2;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < n_head; h++) {
            float *v = x + (t * n_head + h) * head_dim;
            for (int64_t i = 0; i < half; i++) {
                float ang = (float)pos[t] * inv_freq[i]; /* float32 product, as transformers */
                float c = cosf(ang), s = sinf(ang), a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
}

aios_status aios_ref_attention(float *out, const float *q, const float *k, const float *v, int64_t Tq, int64_t Tk,
                               int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                               const uint8_t *mask, float scale) {
    if (n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv || head_dim <= 0 || Tq < 0 || Tk < 0 ||
        kv_stride < n_head_kv * head_dim)
        return aios__err(AIOS_ERR_INVALID_ARG, "attention: bad shape (n_head %lld, n_head_kv %lld, head_dim %lld)",
                         (long long)n_head, (long long)n_head_kv, (long long)head_dim);
    float *p = malloc(sizeof(float) * (size_t)(Tk > 0 ? Tk : 1));
    if (!p) return aios__err(AIOS_ERR_NOMEM, "attention: %lld scores", (long long)Tk);
    int64_t group = n_head / n_head_kv;
    for (int64_t i = 0; i < Tq; i++)
        for (int64_t h = 0; h < n_head; h++) {
            const float *qi = q + (i * n_head + h) * head_dim;
            float *o = out + (i * n_head + h) * head_dim;
            int64_t hk = h / group;
            float m = -INFINITY;
            int any = 0;
            for (int64_t j = 0; j < Tk; j++) {
                if (mask && !mask[i * Tk + j]) continue;
                p[j] = scale * ref_dot(qi, k + j * kv_stride + hk * head_dim, head_dim);
                m = p[j] > m ? p[j] : m;
                any = 1;
            }
            for (int64_t d = 0; d < head_dim; d++) o[d] = 0.0f;
            if (!any) continue;
            float s = 0.0f;
            for (int64_t j = 0; j < Tk; j++) {
                if (mask && !mask[i * Tk + j]) continue;
                p[j] = expf(p[j] - m);
                s += p[j];
            }
            for (int64_t j = 0; j < Tk; j++) {
                if (mask && !mask[i * Tk + j]) continue;
                ref_axpy(o, p[j] / s, v + j * kv_stride + hk * head_dim, head_dim);
            }
        }
    free(p);
    return AIOS_OK;
}

aios_status aios_ref_attention_batch(float *out, const float *q, const float *k, const float *v, int64_t B, int64_t L,
                                     int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                                     const uint8_t *key_mask, float scale) {
    if (B < 0 || L < 0) return aios__err(AIOS_ERR_INVALID_ARG, "attention: batch %lld x %lld", (long long)B, (long long)L);
    uint8_t *mask = key_mask ? malloc((size_t)(L * L > 0 ? L * L : 1)) : NULL;
    if (key_mask && !mask) return aios__err(AIOS_ERR_NOMEM, "attention: mask");
    aios_status s = AIOS_OK;
    for (int64_t b = 0; b < B && s == AIOS_OK; b++) {
        if (mask)
            for (int64_t i = 0; i < L; i++)
                for (int64_t j = 0; j < L; j++) mask[i * L + j] = key_mask[b * L + j] != 0;
        int64_t oq = b * L * n_head * head_dim, okv = b * L * kv_stride;
        s = aios_ref_attention(out + oq, q + oq, k + okv, v + okv, L, L, n_head, n_head_kv, head_dim, kv_stride, mask, scale);
    }
    free(mask);
    return s;
}

const aios__ktier aios__tier_ref = {
    .name = "ref",
    .deq = ref_deq,
    .tile = ref_tile,
    .dot = ref_dot,
    .lora_bu = aios__lora_bu_ref,
    .lora_ax16 = aios__lora_ax16_ref,
    .lora_bu16 = aios__lora_bu16_ref,
    .axpy = ref_axpy,
    .scale = ref_scale,
    .gelu = aios_ref_gelu,
    .silu = aios_ref_silu,
    .softmax_row = ref_softmax_row,
    .layernorm_row = ref_layernorm_row,
    .rmsnorm_row = ref_rmsnorm_row,
    .add = aios_ref_add,
    .mul = aios_ref_mul,
};
