/*
 * avx512.c — the AVX-512 (F/BW/VL) tier: 16-lane versions of the reference inner loops.
 *
 * Every function carries its own target attribute (no -march flags in the build), so this
 * file compiles everywhere and runs only where dispatch.c found the features.  Loop tails use
 * AVX-512 masks instead of scalar code.  Micro-kernel: up to 4 weight rows x 4 tokens, 16
 * accumulators held in registers, each weight vector reused by every token of the tile and
 * each activation vector by every row.  exp follows Cephes expf (vexp.h: range reduction by
 * ln 2, degree-6 polynomial, ~1 ulp); erf uses Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/gguf_simd.h"
#include "kernels/cpu/gguf_simd512.h"
#include "kernels/cpu/kern.h"
#include "kernels/cpu/vexp.h"
#include "tensor/gguf_blocks.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define T512I __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"), always_inline)) inline

static T512I __mmask16 tailmask(int64_t n) { return (__mmask16)(n >= 16 ? 0xFFFF : ((1u << n) - 1)); }

/* erf(x), A&S 7.1.26: 1 - (a1 t + ... + a5 t^5) exp(-x^2), t = 1 / (1 + p|x|), sign restored. */
static T512I __m512 erf512(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(ax, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 y = _mm512_set1_ps(1.061405429f);
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(-1.453152027f));
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(1.421413741f));
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(-0.284496736f));
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(0.254829592f));
    y = _mm512_mul_ps(y, t);
    __m512 r = _mm512_fnmadd_ps(y, aios__exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax))), _mm512_set1_ps(1.0f));
    /* copy the sign of x */
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sign));
}

/* ---------------------------------------------------------------- dequantize */

/* out (n) = (q - z) * s for int32 lanes q; 16 at a time handled by callers. */
static T512I void put16(float *out, __m512i q, __m512 s, __m512 zs, __mmask16 m) {
    _mm512_mask_storeu_ps(out, m, _mm512_fmsub_ps(_mm512_cvtepi32_ps(q), s, zs));
}

/* Scale / zero point si stored as float32 or float16 (aios__q_scale without the call to the
 * scalar half conversion, which had cost the grouped dequantizer of the prefill GEMM 15%). */
static T512I float q_scale_f16c(const void *a, int f16, int64_t si) {
    if (f16) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)a + 2 * si, 2);
        return _cvtsh_ss(h);
    }
    float f;
    memcpy(&f, (const uint8_t *)a + 4 * si, 4);
    return f;
}

static T512 void deq512(float *out, const aios_tensor *W, int64_t row, int64_t c0, int64_t n) {
    if (aios_gguf_block(W->dtype, NULL, NULL)) { /* GGUF blocks: the AVX2 unpacking, bit-exact with ref */
        aios__deq_gguf_avx2(out, W, row, c0, n);
        return;
    }
    const int64_t n_in = W->shape[1];
    const uint8_t *raw = (const uint8_t *)W->data;
    switch (W->dtype) {
    case AIOS_DTYPE_F32:
        memcpy(out, raw + (size_t)(row * n_in + c0) * 4, (size_t)n * 4);
        return;
    case AIOS_DTYPE_F16: {
        const uint8_t *p = raw + (size_t)(row * n_in + c0) * 2;
        for (int64_t j = 0; j < n; j += 16) {
            __mmask16 m = tailmask(n - j);
            __m256i h = _mm256_maskz_loadu_epi16(m, p + j * 2);
            _mm512_mask_storeu_ps(out + j, m, _mm512_cvtph_ps(h));
        }
        return;
    }
    case AIOS_DTYPE_BF16: {
        const uint8_t *p = raw + (size_t)(row * n_in + c0) * 2;
        for (int64_t j = 0; j < n; j += 16) {
            __mmask16 m = tailmask(n - j);
            __m256i h = _mm256_maskz_loadu_epi16(m, p + j * 2);
            _mm512_mask_storeu_ps(out + j, m, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
        }
        return;
    }
    default: break;
    }
    /* quantized: runs of columns sharing one scale */
    const int f16 = W->scale_dtype == AIOS_DTYPE_F16;
    int64_t si = aios__q_sidx(W, row, c0); /* one division per call, not per group */
    const __m128i nib = _mm_set1_epi8(0x0F);
    const __m128i rep4 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i sh2 = _mm512_setr_epi32(6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0);
    for (int64_t j = 0; j < n;) {
        int64_t c = c0 + j, run = aios__q_run(W, c, n - j);
        float s = q_scale_f16c(W->scales, f16, si), z = W->zero_points ? q_scale_f16c(W->zero_points, f16, si) : 0.0f;
        si += W->group_size > 0; /* runs are whole groups after the first: the next group's scale */
        const __m512 vs = _mm512_set1_ps(s), vzs = _mm512_set1_ps(z * s);
        int64_t e = row * n_in + c, k = 0;
        float *o = out + j;
        switch (W->dtype) {
        case AIOS_DTYPE_Q8:
            for (; k < run; k += 16) {
                __mmask16 m = tailmask(run - k);
                put16(o + k, _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, raw + e + k)), vs, vzs, m);
            }
            break;
        case AIOS_DTYPE_Q4:
            if ((e & 1) && k < run) { o[k] = ((float)aios__q_get(W, e + k) - z) * s; k++; }
            for (; k + 16 <= run; k += 16) {
                __m128i b = _mm_loadl_epi64((const __m128i *)(raw + ((e + k) >> 1)));
                __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib), lo = _mm_and_si128(b, nib);
                __m512i q = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo)), _mm512_set1_epi32(8));
                put16(o + k, q, vs, vzs, 0xFFFF);
            }
            for (; k < run; k++) o[k] = ((float)aios__q_get(W, e + k) - z) * s;
            break;
        case AIOS_DTYPE_Q2:
            for (; ((e + k) & 3) && k < run; k++) o[k] = ((float)aios__q_get(W, e + k) - z) * s;
            for (; k + 16 <= run; k += 16) {
                int32_t w4;
                memcpy(&w4, raw + ((e + k) >> 2), 4);
                __m128i b = _mm_shuffle_epi8(_mm_cvtsi32_si128(w4), rep4);
                __m512i q = _mm512_and_si512(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(b), sh2), _mm512_set1_epi32(3));
                put16(o + k, _mm512_sub_epi32(q, _mm512_set1_epi32(2)), vs, vzs, 0xFFFF);
            }
            for (; k < run; k++) o[k] = ((float)aios__q_get(W, e + k) - z) * s;
            break;
        default: break;
        }
        j += run;
    }
}

/* ---------------------------------------------------------------- matmul micro-kernel */

static T512I void tile_4xN(float *y, int64_t ldy, const float *w, int64_t ldw, const float *x, int64_t ldx,
                           const int NT, int64_t n) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        __m512 w0 = _mm512_maskz_loadu_ps(m, w + k), w1 = _mm512_maskz_loadu_ps(m, w + ldw + k);
        __m512 w2 = _mm512_maskz_loadu_ps(m, w + 2 * ldw + k), w3 = _mm512_maskz_loadu_ps(m, w + 3 * ldw + k);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + t * ldx + k);
            acc[0][t] = _mm512_fmadd_ps(w0, xv, acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(w1, xv, acc[1][t]);
            acc[2][t] = _mm512_fmadd_ps(w2, xv, acc[2][t]);
            acc[3][t] = _mm512_fmadd_ps(w3, xv, acc[3][t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        /* four horizontal sums at once: y[t][0..3] += reduce(acc[0..3][t]) */
        __m128 s = _mm_setr_ps(_mm512_reduce_add_ps(acc[0][t]), _mm512_reduce_add_ps(acc[1][t]),
                               _mm512_reduce_add_ps(acc[2][t]), _mm512_reduce_add_ps(acc[3][t]));
        _mm_storeu_ps(y + t * ldy, _mm_add_ps(_mm_loadu_ps(y + t * ldy), s));
    }
}

static T512 float dot512(const float *a, const float *b, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
           acc3 = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 64 <= n; k += 64) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(b + k + 16), acc1);
        acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 32), _mm512_loadu_ps(b + k + 32), acc2);
        acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 48), _mm512_loadu_ps(b + k + 48), acc3);
    }
    for (; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + k), _mm512_maskz_loadu_ps(m, b + k), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

static T512 void tile512(float *y, int64_t ldy, const float *w, int64_t ldw, int nr, const float *x, int64_t ldx,
                         int nt, int64_t n) {
    if (nr == 4) {
        switch (nt) {
        case 4: tile_4xN(y, ldy, w, ldw, x, ldx, 4, n); return;
        case 3: tile_4xN(y, ldy, w, ldw, x, ldx, 3, n); return;
        case 2: tile_4xN(y, ldy, w, ldw, x, ldx, 2, n); return;
        case 1: tile_4xN(y, ldy, w, ldw, x, ldx, 1, n); return;
        default: break;
        }
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) y[t * ldy + r] += dot512(w + r * ldw, x + t * ldx, n);
}

/* ---------------------------------------------------------------- rows and elementwise */

static T512 void axpy512(float *y, float a, const float *x, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        _mm512_mask_storeu_ps(y + k, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + k), _mm512_maskz_loadu_ps(m, y + k)));
    }
}
static T512 void scale512(float *x, float a, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        _mm512_mask_storeu_ps(x + k, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + k)));
    }
}
static T512 void add512(float *x, const float *y, int64_t n) {
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        _mm512_mask_storeu_ps(x + k, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + k), _mm512_maskz_loadu_ps(m, y + k)));
    }
}
static T512 void mul512(float *x, const float *y, int64_t n) {
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        _mm512_mask_storeu_ps(x + k, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), _mm512_maskz_loadu_ps(m, y + k)));
    }
}
static T512 void gelu512(float *x, int64_t n) {
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        __m512 e = erf512(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f)));
        __m512 r = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
        _mm512_mask_storeu_ps(x + k, m, r);
    }
}
static T512 void silu512(float *x, int64_t n) {
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), aios__exp512(_mm512_sub_ps(_mm512_setzero_ps(), v)));
        _mm512_mask_storeu_ps(x + k, m, _mm512_div_ps(v, d));
    }
}
static T512 void softmax512(float *x, int64_t n) {
    if (n <= 0) return;
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + k));
    }
    __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        __m512 e = aios__exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + k), vm));
        e = _mm512_maskz_mov_ps(m, e);
        _mm512_mask_storeu_ps(x + k, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    scale512(x, 1.0f / _mm512_reduce_add_ps(sum), n);
}
static T512 void layernorm512(float *y, const float *x, const float *w, const float *b, int64_t n, float eps) {
    __m512 s = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tailmask(n - k), x + k));
    float mean = _mm512_reduce_add_ps(s) / (float)(n ? n : 1);
    __m512 vm = _mm512_set1_ps(mean), v = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + k), vm);
        v = _mm512_fmadd_ps(d, d, v);
    }
    float rs = 1.0f / sqrtf(_mm512_reduce_add_ps(v) / (float)(n ? n : 1) + eps);
    __m512 vr = _mm512_set1_ps(rs);
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + k), vm), vr);
        if (w) d = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, w + k));
        if (b) d = _mm512_add_ps(d, _mm512_maskz_loadu_ps(m, b + k));
        _mm512_mask_storeu_ps(y + k, m, d);
    }
}
static T512 void rmsnorm512(float *y, const float *x, const float *w, int64_t n, float eps) {
    __m512 s = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 16) {
        __m512 v = _mm512_maskz_loadu_ps(tailmask(n - k), x + k);
        s = _mm512_fmadd_ps(v, v, s);
    }
    __m512 vr = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(s) / (float)(n ? n : 1) + eps));
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        __m512 d = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), vr);
        if (w) d = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, w + k));
        _mm512_mask_storeu_ps(y + k, m, d);
    }
}

/* ---------------------------------------------------------------- fused quantized GEMV */

/* Decoding (1-3 tokens): rows are read straight from the packed bytes and expanded to float in
 * registers, never stored.  NR rows (4, or 1 when rows start at different bit offsets) share
 * every activation load; per run of columns sharing a scale, acc[r][t] = sum u x over the run
 * (u the stored unsigned field for int4 / int2, the signed byte for int8), then
 *   y += s (acc - (z + off) sum x),  off = 0 / 8 / 2 for int8 / int4 / int2,
 * which is exactly sum (q - z) s x with q = u - off.  sum x over the run is accumulated beside
 * (once for all NR rows) only when it is needed (zero points, or int4 / int2). */

/* 16 weights from element e (e % 2 == 0 for int4, e % 4 == 0 for int2; m masks int8 only). */
static T512I __m512 qload16(const uint8_t *raw, int64_t e, aios_dtype dt, __mmask16 m) {
    if (dt == AIOS_DTYPE_Q8) return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, raw + e)));
    if (dt == AIOS_DTYPE_Q4) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(raw + (e >> 1)));
        const __m128i nib = _mm_set1_epi8(0x0F);
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib), lo = _mm_and_si128(b, nib);
        return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo)));
    }
    int32_t w4;
    memcpy(&w4, raw + (e >> 2), 4);
    const __m128i rep4 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i sh2 = _mm512_setr_epi32(6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0);
    __m512i q = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(_mm_shuffle_epi8(_mm_cvtsi32_si128(w4), rep4)), sh2);
    return _mm512_cvtepi32_ps(_mm512_and_si512(q, _mm512_set1_epi32(3)));
}

#ifndef PF_BYTES
#define PF_BYTES 16384
#endif
static T512I void gemv_blk(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r0,
                           const aios_dtype dt, const int NR, const int NT) {
    const int64_t n_in = W->shape[1];
    const uint8_t *raw = (const uint8_t *)W->data;
    const int off = dt == AIOS_DTYPE_Q8 ? 0 : dt == AIOS_DTYPE_Q4 ? 8 : 2;
    const int need_xs = W->zero_points || off;
    const int al = dt == AIOS_DTYPE_Q8 ? 1 : dt == AIOS_DTYPE_Q4 ? 2 : 4; /* elements per aligned byte */
    float tot[4][3] = {{0}};
    __m512 vt[4][3];
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) vt[r][t] = _mm512_setzero_ps();
    /* group index and columns left in it, kept incrementally (no divisions per run) */
    const int64_t G = W->group_size > 0 ? W->group_size : n_in, gpr = n_in / G;
    int64_t gi = 0, gleft = G;
    for (int64_t j = 0; j < n_in;) {
        const int64_t run = AIOS_MIN(gleft, n_in - j), e0 = r0 * n_in + j;
        __m512 acc[4][3], xs[3];
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++)
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) xs[t] = _mm512_setzero_ps();
        float hs[4][3] = {{0}}, hx[3] = {0}; /* scalar head / tail */
        int64_t k = 0;
        while (k < run && (e0 + k) % al) k++; /* rows of a block share e0 % al (dispatch checks) */
        aios__gemv_scalar_cols(hs, hx, W, x + j, ldx, e0, n_in, off, NR, NT, 0, k);
        const int64_t kend = dt == AIOS_DTYPE_Q8 ? run : k + (run - k) / 16 * 16;
        /* Steps of SW columns (int8: 64, a cache line per row; int4: 32, groups of 32 are
         * common), the stream prefetched PF_BYTES ahead (rows are contiguous). */
        const int SW = dt == AIOS_DTYPE_Q4 ? 32 : 64, U = SW / 16;
        for (; k + SW <= kend; k += SW) {
            __m512 xv[3][4];
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++)
#pragma GCC unroll 4
                for (int u = 0; u < U; u++) {
                    xv[t][u] = _mm512_loadu_ps(x + t * ldx + j + k + 16 * u);
                    if (need_xs) xs[t] = _mm512_add_ps(xs[t], xv[t][u]);
                }
            if (dt == AIOS_DTYPE_Q4) {
                /* int4: a byte holds columns 2i (high nibble) and 2i+1 (low); the activations are
                 * split into even / odd columns once for all rows, and each row's 16 bytes widen
                 * to 16 lanes whose nibbles become floats by a 16-entry table lookup (vpermps
                 * reads only an index's low 4 bits). */
                const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
                const __m512 lut = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#pragma GCC unroll 3
                for (int t = 0; t < NT; t++) {
                    __m512 a = xv[t][0], b = xv[t][1];
                    xv[t][0] = _mm512_permutex2var_ps(a, ev, b);
                    xv[t][1] = _mm512_permutex2var_ps(a, od, b);
                }
#pragma GCC unroll 4
                for (int r = 0; r < NR; r++) {
                    const uint8_t *p = raw + (e0 + r * n_in + k) / 2;
                    _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
                    __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
                    __m512 whi = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), lut);
                    __m512 wlo = _mm512_permutexvar_ps(v, lut);
#pragma GCC unroll 3
                    for (int t = 0; t < NT; t++)
                        acc[r][t] = _mm512_fmadd_ps(wlo, xv[t][1], _mm512_fmadd_ps(whi, xv[t][0], acc[r][t]));
                }
                continue;
            }
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++) {
                _mm_prefetch((const char *)raw + (e0 + r * n_in + k) / al + PF_BYTES, _MM_HINT_T0);
#pragma GCC unroll 4
                for (int u = 0; u < U; u++) {
                    __m512 wv = qload16(raw, e0 + r * n_in + k + 16 * u, dt, 0xFFFF);
#pragma GCC unroll 3
                    for (int t = 0; t < NT; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t][u], acc[r][t]);
                }
            }
        }
        for (; k < kend; k += 16) {
            __mmask16 m = tailmask(kend - k);
            __m512 xv[3];
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) {
                xv[t] = _mm512_maskz_loadu_ps(m, x + t * ldx + j + k);
                if (need_xs) xs[t] = _mm512_add_ps(xs[t], xv[t]);
            }
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++) {
                __m512 wv = qload16(raw, e0 + r * n_in + k, dt, m);
#pragma GCC unroll 3
                for (int t = 0; t < NT; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
            }
        }
        aios__gemv_scalar_cols(hs, hx, W, x + j, ldx, e0, n_in, off, NR, NT, k, run);
        /* scales applied in vector registers (reduced once per row at the end: groups of 32
         * would otherwise pay a horizontal sum per 32 columns) */
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const int64_t si = W->group_size > 0 ? (r0 + r) * gpr + gi : W->quant_axis == 0 ? r0 + r : 0;
            float s = aios__q_scale(W, si), z = (aios__q_zero(W, si)) + (float)off;
            const __m512 vs = _mm512_set1_ps(s), vzs = _mm512_set1_ps(-z * s);
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) {
                vt[r][t] = _mm512_fmadd_ps(acc[r][t], vs, vt[r][t]);
                if (need_xs) vt[r][t] = _mm512_fmadd_ps(xs[t], vzs, vt[r][t]);
                tot[r][t] += s * (hs[r][t] - z * hx[t]);
            }
        }
        j += run;
        if ((gleft -= run) == 0) gi++, gleft = G;
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) y[t * ldy + r] += tot[r][t] + _mm512_reduce_add_ps(vt[r][t]);
}

/* Grouped int8 / int4 with groups of a multiple of 32 columns that never cross a row (the
 * ArrowQuant layout of transcoded Q8_0 / Q4_0 blocks, `--group-size 32`): the same scheme as
 * gemv_gguf512_blk, which this path had been 3-4x slower than on the same values.  The scales
 * (and zero points) of GQ_CB groups per row are converted 16 at a time into a stack array, so
 * the inner loop never calls the scalar half conversion (8% of decode) nor recomputes a group
 * index; every weight becomes the reference's float32 value ((q - z) s, the difference rounded
 * then the product) in registers and meets x in one FMA, so only the summation order differs
 * from the reference.  int4: per group the scale (and zero point) are applied once to a
 * 16-entry table of the nibble values (u - 8 - z) s, which the nibbles index (vpermps reads
 * an index's low 4 bits); the activations are split into even / odd columns once per call
 * (a byte holds column 2i in its high nibble, 2i + 1 in its low one).  int8: bytes widen to
 * int32 lanes and convert.  4 rows in flight, the weight stream prefetched PF_BYTES ahead. */
#define GQ_CB 64 /* groups per pass of the scale pre-conversion */

int aios__gemv_gq_ok(const aios_tensor *W) {
    const int64_t G = W->group_size, n_in = W->shape[1];
    return (W->dtype == AIOS_DTYPE_Q8 || W->dtype == AIOS_DTYPE_Q4) && G > 0 && G % 32 == 0 && n_in % G == 0;
}

/* dst[k] = float value of scales / zero points src[k], k < n (<= GQ_CB), 16 at a time. */
static T512I void gq_cvt(float *dst, const void *src, int f16, int64_t n) {
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        __m512 v = f16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)src + k))
                       : _mm512_maskz_loadu_ps(m, (const float *)src + k);
        _mm512_store_ps(dst + k, v);
    }
}

static T512I void gemv_gq512(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r0,
                             const aios_dtype DT, const int NR, const int NT, const int zp) {
    const int64_t n_in = W->shape[1], G = W->group_size, gpr = n_in / G, bpg = G / 32;
    const int f16 = W->scale_dtype == AIOS_DTYPE_F16;
    const size_t ssz = f16 ? 2 : 4;
    const uint8_t *raw = (const uint8_t *)W->data;
    const int64_t row_bytes = DT == AIOS_DTYPE_Q4 ? n_in / 2 : n_in, blk_bytes = DT == AIOS_DTYPE_Q4 ? 16 : 32;
    const int pf_every = (int)(64 / blk_bytes); /* one prefetch per cache line of each row */
    const __m512 lut8 = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    __m512 acc[4][3];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) acc[i][t] = _mm512_setzero_ps();
    float sd[4][GQ_CB] __attribute__((aligned(64))), zd[4][GQ_CB] __attribute__((aligned(64)));
    for (int64_t g0 = 0; g0 < gpr; g0 += GQ_CB) {
        const int64_t ng = AIOS_MIN(GQ_CB, gpr - g0);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const size_t si = (size_t)((r0 + i) * gpr + g0);
            gq_cvt(sd[i], (const uint8_t *)W->scales + si * ssz, f16, ng);
            if (zp) gq_cvt(zd[i], (const uint8_t *)W->zero_points + si * ssz, f16, ng);
        }
        for (int64_t g = 0; g < ng; g++) {
            __m512 vs[4], lut[4];
#pragma GCC unroll 4
            for (int i = 0; i < NR; i++) {
                vs[i] = _mm512_set1_ps(sd[i][g]);
                if (DT == AIOS_DTYPE_Q4) /* (u - 8 - z) s: the reference's ((float)q - z) * s */
                    lut[i] = _mm512_mul_ps(zp ? _mm512_sub_ps(lut8, _mm512_set1_ps(zd[i][g])) : lut8, vs[i]);
                else if (zp)
                    lut[i] = _mm512_set1_ps(zd[i][g]);
            }
            for (int64_t c = 0; c < bpg; c++) {
                const int64_t b = (g0 + g) * bpg + c, col = 32 * b; /* 32-column block of the row */
                const uint8_t *bp = raw + (size_t)(r0 * row_bytes + b * blk_bytes);
                __m512 x0[3], x1[3];
#pragma GCC unroll 3
                for (int t = 0; t < NT; t++) /* int4: x split into even / odd columns by the caller */
                    x0[t] = _mm512_loadu_ps(x + t * ldx + col), x1[t] = _mm512_loadu_ps(x + t * ldx + col + 16);
#pragma GCC unroll 4
                for (int i = 0; i < NR; i++) {
                    const uint8_t *p = bp + (size_t)(i * row_bytes);
                    if (b % pf_every == 0) _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
                    __m512 w0, w1;
                    if (DT == AIOS_DTYPE_Q4) {
                        const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
                        w0 = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), lut[i]); /* even columns */
                        w1 = _mm512_permutexvar_ps(v, lut[i]);                       /* odd columns */
                    } else {
                        __m512 f0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
                        __m512 f1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 16))));
                        if (!zp && NT == 1) { /* one token: s (q . x), the scale once per 32 weights */
                            acc[i][0] = _mm512_fmadd_ps(_mm512_fmadd_ps(f1, x1[0], _mm512_mul_ps(f0, x0[0])), vs[i], acc[i][0]);
                            continue;
                        }
                        if (zp) f0 = _mm512_sub_ps(f0, lut[i]), f1 = _mm512_sub_ps(f1, lut[i]);
                        w0 = _mm512_mul_ps(f0, vs[i]), w1 = _mm512_mul_ps(f1, vs[i]);
                    }
#pragma GCC unroll 3
                    for (int t = 0; t < NT; t++)
                        acc[i][t] = _mm512_fmadd_ps(w1, x1[t], _mm512_fmadd_ps(w0, x0[t], acc[i][t]));
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) y[t * ldy + i] += _mm512_reduce_add_ps(acc[i][t]);
}

/* zero points a constant of each instance (a branch per 8 / 16 weights had cost the AVX2 one) */
#define GQ_NT(DT, NR)                                                                                 \
    switch (nt + 3 * (W->zero_points != NULL)) {                                                      \
    case 1: gemv_gq512(y, ldy, x, ldx, W, r, DT, NR, 1, 0); break;                                    \
    case 2: gemv_gq512(y, ldy, x, ldx, W, r, DT, NR, 2, 0); break;                                    \
    case 3: gemv_gq512(y, ldy, x, ldx, W, r, DT, NR, 3, 0); break;                                    \
    case 4: gemv_gq512(y, ldy, x, ldx, W, r, DT, NR, 1, 1); break;                                    \
    case 5: gemv_gq512(y, ldy, x, ldx, W, r, DT, NR, 2, 1); break;                                    \
    default: gemv_gq512(y, ldy, x, ldx, W, r, DT, NR, 3, 1); break;                                   \
    }

#define GEMV_NT(DT, NR)                                                                     \
    switch (nt) {                                                                           \
    case 1: gemv_blk(y, ldy, x, ldx, W, r, DT, NR, 1); break;                               \
    case 2: gemv_blk(y, ldy, x, ldx, W, r, DT, NR, 2); break;                               \
    default: gemv_blk(y, ldy, x, ldx, W, r, DT, NR, 3); break;                              \
    }

/* Rows r0 <= r < r1 of y[t * ldy + r] += dot(W row r, x[t * ldx]) for t < nt (1..3). */
static T512 void gemv_q_512(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                            int64_t r0, int64_t r1) {
    const int64_t n_in = W->shape[1];
    const int al = W->dtype == AIOS_DTYPE_Q8 ? 1 : W->dtype == AIOS_DTYPE_Q4 ? 2 : 4;
    const int64_t step = n_in % al ? 1 : 4; /* 4-row blocks when all rows start at the same bit offset */
    y += r0;
    float *xs = NULL;
    if (aios__gemv_gq_ok(W) && W->dtype == AIOS_DTYPE_Q4 &&
        (xs = aligned_alloc(64, sizeof(float) * (size_t)(nt * n_in))) != NULL) {
        /* int4: x split into even / odd columns per 32 once per call (a byte holds columns 2i and
         * 2i + 1), not once per 4 rows: two permutes per 32 columns and token had been a sixth
         * of the shuffle port's work in the row loop */
        const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
        for (int t = 0; t < nt; t++)
            for (int64_t c = 0; c < n_in; c += 32) {
                const __m512 a = _mm512_loadu_ps(x + t * ldx + c), b = _mm512_loadu_ps(x + t * ldx + c + 16);
                _mm512_store_ps(xs + t * n_in + c, _mm512_permutex2var_ps(a, ev, b));
                _mm512_store_ps(xs + t * n_in + c + 16, _mm512_permutex2var_ps(a, od, b));
            }
        x = xs, ldx = n_in;
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4, y += 4) GQ_NT(AIOS_DTYPE_Q4, 4)
        for (; r < r1; r++, y++) GQ_NT(AIOS_DTYPE_Q4, 1)
        free(xs);
        return;
    }
    if (aios__gemv_gq_ok(W) && W->dtype == AIOS_DTYPE_Q8) { /* whole groups of 32k columns per row */
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4, y += 4) GQ_NT(AIOS_DTYPE_Q8, 4)
        for (; r < r1; r++, y++) GQ_NT(AIOS_DTYPE_Q8, 1)
        return;
    }
    for (int64_t r = r0; r < r1;) {
        if (step == 4 && r + 4 <= r1) {
            switch (W->dtype) {
            case AIOS_DTYPE_Q8: GEMV_NT(AIOS_DTYPE_Q8, 4) break;
            case AIOS_DTYPE_Q4: GEMV_NT(AIOS_DTYPE_Q4, 4) break;
            default: GEMV_NT(AIOS_DTYPE_Q2, 4) break;
            }
            r += 4, y += 4;
        } else {
            switch (W->dtype) {
            case AIOS_DTYPE_Q8: GEMV_NT(AIOS_DTYPE_Q8, 1) break;
            case AIOS_DTYPE_Q4: GEMV_NT(AIOS_DTYPE_Q4, 1) break;
            default: GEMV_NT(AIOS_DTYPE_Q2, 1) break;
            }
            r += 1, y += 1;
        }
    }
}

/* ---------------------------------------------------------------- GGUF block GEMV */

/* Decoding (1-3 tokens) straight from ggml's blocks, exact-float, NR = 4 rows in flight (each
 * activation vector loaded once for the four rows).  Per 32 values of a row the block is turned
 * into the very float32 weights the reference dequantizer produces — s * q, minus m where the
 * type has minimums, as a rounded product then a rounded difference — so the only difference
 * from the reference is the summation order.  Q4_0, Q4_1 and Q4_K never widen and convert:
 * the block's scale (and minimum) are applied once to a 16-entry table of the nibble values
 * and the nibbles index it (vpermps reads an index's low 4 bits), one permute per 16 weights.
 * Q8_0 widens bytes to int32 and converts; the other types unpack 32 values in int8 lanes
 * (gguf_simd.h, shared with the AVX2 tier) and widen.  Weight bytes are prefetched PF_BYTES
 * ahead in every row's stream. */

#define GGUF_CB 64 /* blocks per pass of the scale pre-conversion (32-value types) */

/* Rows r .. r + NR - 1 of y[t * ldy + r] += dot(W row r, x[t * ldx]), NT tokens, type DT.
 * The 32-value types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) first convert the f16 scales (and
 * minimums) of GGUF_CB blocks per row 16 at a time into a stack array: converting and
 * broadcasting one scalar per block and row (two shuffle-port operations) had cost Q4_1 a
 * third of its speed; from memory the broadcast is a plain load. */
static T512I void gemv_gguf512_blk(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r,
                                   const aios_dtype DT, const int NR, const int NT, const float *xsum, int64_t nxs) {
    int blk = 32, bytes = 0;
    aios_gguf_block(DT, &blk, &bytes);
    const int64_t nb = W->shape[1] / blk;
    const int has_min = DT == AIOS_DTYPE_GGUF_Q4_1 || DT == AIOS_DTYPE_GGUF_Q5_1 || DT == AIOS_DTYPE_GGUF_Q2_K ||
                        DT == AIOS_DTYPE_GGUF_Q4_K || DT == AIOS_DTYPE_GGUF_Q5_K;
    const int b32 = blk == 32;
    /* minimums through the sums of x (xsum: per 32 columns for Q4_1 / Q5_1, per 16 for the
     * K-quants, nxs per token): the tables and weights then carry no minimum */
    const int msum = has_min && xsum != NULL;
    const uint8_t *row = aios__gguf_row(W, r);
    const size_t row_bytes = (size_t)nb * (size_t)bytes;
    /* small blocks: one prefetch per cache line of the stream, not per block */
    const int pf_every = bytes >= 64 ? 1 : 64 / bytes, pf_lines = (bytes + 63) / 64;
    __m512 acc[4][3];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) acc[i][t] = _mm512_setzero_ps();
    float sd[4][GGUF_CB] __attribute__((aligned(64))), sm[4][GGUF_CB] __attribute__((aligned(64)));
    for (int64_t b0 = 0; b0 < nb; b0 += GGUF_CB) {
        const int64_t nbc = AIOS_MIN(GGUF_CB, nb - b0);
        if (b32) {
            /* each block's first 32-bit word (d, and m for Q4_1 / Q5_1 in its high half) by one
             * gather per 16 blocks: copying the halves one by one into a stack array had cost a
             * scalar loop per block plus a failed store-to-load forward per 16 */
            const __m512i boff = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                    _mm512_set1_epi32(bytes));
#pragma GCC unroll 4
            for (int i = 0; i < NR; i++) {
                const uint8_t *p = row + (size_t)i * row_bytes + (size_t)b0 * (size_t)bytes;
                for (int64_t k = 0; k < nbc; k += 16, p += 16 * (size_t)bytes) {
                    const __m512i w = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), tailmask(nbc - k), boff, p, 1);
                    _mm512_store_ps(sd[i] + k, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(w)));
                    /* x = d q + m is stored as s q - (-m): negated exactly by the sign bit */
                    if (has_min)
                        _mm512_store_ps(sm[i] + k, _mm512_castsi512_ps(_mm512_xor_si512(
                                                       _mm512_castps_si512(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(w, 16)))),
                                                       _mm512_set1_epi32((int)0x80000000u))));
                    if (msum) /* + m (sum x) per block = - (-m) (sum x); unused lanes are 0 */
#pragma GCC unroll 3
                        for (int t = 0; t < NT; t++)
                            acc[i][t] = _mm512_fnmadd_ps(_mm512_load_ps(sm[i] + k),
                                                         _mm512_maskz_loadu_ps(tailmask(nbc - k), xsum + t * nxs + b0 + k), acc[i][t]);
                }
            }
        }
        for (int64_t bi = b0; bi < b0 + nbc; bi++) {
            gguf_scales S[4];
            const uint8_t *bp[4] = {NULL, NULL, NULL, NULL};
#pragma GCC unroll 4
            for (int i = 0; i < NR; i++) {
                bp[i] = row + (size_t)i * row_bytes + (size_t)bi * (size_t)bytes;
                if (bi % pf_every == 0)
                    for (int l = 0; l < pf_lines; l++) _mm_prefetch((const char *)bp[i] + PF_BYTES + 64 * l, _MM_HINT_T0);
                if (!b32) {
                    __m512 m16;
                    if (DT == AIOS_DTYPE_GGUF_Q4_K || DT == AIOS_DTYPE_GGUF_Q5_K) {
                        /* scales and minimums kept in registers, each repeated for its two
                         * 16-value halves: m read back from the stack array would wait on a
                         * store-to-load forward that cannot happen (two 32-byte stores) */
                        const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
                        __m256 sc, mn;
                        k4_scales(bp[i], &sc, &mn);
                        _mm512_storeu_ps(S[i].s, _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(sc)));
                        m16 = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(mn));
                        if (!msum) _mm512_storeu_ps(S[i].m, m16);
                    } else {
                        gguf_block_scales(DT, bp[i], &S[i]);
                        m16 = _mm512_loadu_ps(S[i].m);
                    }
                    if (msum) /* - m (sum x) per 16 values, the block's 16 at once */
#pragma GCC unroll 3
                        for (int t = 0; t < NT; t++)
                            acc[i][t] = _mm512_fnmadd_ps(m16, _mm512_loadu_ps(xsum + t * nxs + bi * 16), acc[i][t]);
                }
            }
            for (int c = 0; c < blk / 32; c++) {
                const float *xc = x + bi * blk + 32 * c;
                __m512 x0[3], x1[3];
#pragma GCC unroll 3
                for (int t = 0; t < NT; t++) x0[t] = _mm512_loadu_ps(xc + t * ldx), x1[t] = _mm512_loadu_ps(xc + t * ldx + 16);
#pragma GCC unroll 4
                for (int i = 0; i < NR; i++) {
                    __m512 w0, w1;
                    if (DT == AIOS_DTYPE_GGUF_Q8_0 && NT == 1) {
                        /* one token: d (q . x) — the scale once on the block's 16-lane partial
                         * sums, not once per 16 weights (7 vector uops per 32 weights, not 8) */
                        w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(bp[i] + 2))));
                        w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(bp[i] + 18))));
                        acc[i][0] = _mm512_fmadd_ps(_mm512_fmadd_ps(w1, x1[0], _mm512_mul_ps(w0, x0[0])),
                                                    _mm512_set1_ps(sd[i][bi - b0]), acc[i][0]);
                        continue;
                    }
                    if (b32)
                        gguf_w32(DT, bp[i], 0, &sd[i][bi - b0], &sd[i][bi - b0], &sm[i][bi - b0], &sm[i][bi - b0],
                                 has_min && !msum, &w0, &w1);
                    else
                        gguf_w32(DT, bp[i], c, &S[i].s[2 * c], &S[i].s[2 * c + 1], &S[i].m[2 * c], &S[i].m[2 * c + 1],
                                 has_min && !msum, &w0, &w1);
#pragma GCC unroll 3
                    for (int t = 0; t < NT; t++)
                        acc[i][t] = _mm512_fmadd_ps(w1, x1[t], _mm512_fmadd_ps(w0, x0[t], acc[i][t]));
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) y[t * ldy + r + i] += _mm512_reduce_add_ps(acc[i][t]);
}

#define GGUF512_NT(DT)                                                                                 \
    case DT:                                                                                           \
        for (; r + 4 <= r1; r += 4) {                                                                  \
            if (nt == 1) gemv_gguf512_blk(y, ldy, x, ldx, W, r, DT, 4, 1, xs, nxs);                    \
            else if (nt == 2) gemv_gguf512_blk(y, ldy, x, ldx, W, r, DT, 4, 2, xs, nxs);               \
            else gemv_gguf512_blk(y, ldy, x, ldx, W, r, DT, 4, 3, xs, nxs);                            \
        }                                                                                              \
        for (; r < r1; r++) {                                                                          \
            if (nt == 1) gemv_gguf512_blk(y, ldy, x, ldx, W, r, DT, 1, 1, xs, nxs);                    \
            else if (nt == 2) gemv_gguf512_blk(y, ldy, x, ldx, W, r, DT, 1, 2, xs, nxs);               \
            else gemv_gguf512_blk(y, ldy, x, ldx, W, r, DT, 1, 3, xs, nxs);                            \
        }                                                                                              \
        break;

/* Rows r0 <= r < r1 of y[t * ldy + r] += dot(W row r, x[t * ldx]) for t < nt (1..3). */
static T512 void gemv_gguf_512(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                               int64_t r0, int64_t r1) {
    int64_t r = r0;
    /* Types with minimums (x = s q - m): sum_j (s q_j - m) x_j = s (q . x) - m (sum x), the sums
     * of x per 32 (Q4_1, Q5_1) or 16 (K-quants) columns computed here once for all rows, so
     * that the weights need no subtraction (one vector uop per 32 weights and row fewer); the
     * products are then no longer the reference's rounded weights (the sum differs in the
     * last bits).  No buffer (allocation failed): the exact-weight path. */
    const aios_dtype dt = W->dtype;
    const int with_min = dt == AIOS_DTYPE_GGUF_Q4_1 || dt == AIOS_DTYPE_GGUF_Q5_1 || dt == AIOS_DTYPE_GGUF_Q2_K ||
                         dt == AIOS_DTYPE_GGUF_Q4_K || dt == AIOS_DTYPE_GGUF_Q5_K;
    const int per = dt == AIOS_DTYPE_GGUF_Q4_1 || dt == AIOS_DTYPE_GGUF_Q5_1 ? 32 : 16;
    const int64_t nxs = W->shape[1] / per;
    float sbuf[2048] __attribute__((aligned(64)));
    float *xs = NULL, *heap = NULL;
    if (with_min) {
        xs = nt * nxs <= 2048 ? sbuf : (heap = aligned_alloc(64, sizeof(float) * (size_t)((nt * nxs + 15) / 16 * 16)));
        if (xs)
            for (int t = 0; t < nt; t++)
                for (int64_t c = 0; c < nxs; c++) {
                    const float *p = x + t * ldx + c * per;
                    __m512 v = _mm512_loadu_ps(p);
                    if (per == 32) v = _mm512_add_ps(v, _mm512_loadu_ps(p + 16));
                    xs[t * nxs + c] = _mm512_reduce_add_ps(v);
                }
    }
    switch (W->dtype) {
        GGUF512_NT(AIOS_DTYPE_GGUF_Q4_0)
        GGUF512_NT(AIOS_DTYPE_GGUF_Q4_1)
        GGUF512_NT(AIOS_DTYPE_GGUF_Q5_0)
        GGUF512_NT(AIOS_DTYPE_GGUF_Q5_1)
        GGUF512_NT(AIOS_DTYPE_GGUF_Q8_0)
        GGUF512_NT(AIOS_DTYPE_GGUF_Q2_K)
        GGUF512_NT(AIOS_DTYPE_GGUF_Q3_K)
        GGUF512_NT(AIOS_DTYPE_GGUF_Q4_K)
        GGUF512_NT(AIOS_DTYPE_GGUF_Q5_K)
        GGUF512_NT(AIOS_DTYPE_GGUF_Q6_K)
    default: break;
    }
    free(heap);
}

/* ---------------------------------------------------------------- float decode GEMV */

/* Decoding (1-3 tokens) with float32 / float16 / bfloat16 weights: a pure stream of weights
 * (each is used by at most 3 tokens), so the speed is the memory bandwidth one core reaches.
 * Rows are walked one at a time, start to end: the rows of W are contiguous, so the whole
 * matrix is one sequential stream, which the hardware prefetcher follows at full speed —
 * measured on this Zen 4 core (docs/kernels.md): one stream 16-18 GB/s (f32) where four rows
 * in flight (four streams a row apart, what the tile path reads) reached 12, and software
 * prefetching (1-16 KiB ahead) only slowed either.  float16 is widened by vcvtph2ps and
 * bfloat16 by a 16-bit shift in registers (both exact: the reference's values), never staged
 * in a buffer; four independent accumulators per token hide the FMA latency, reduced at the
 * end of the row.  Only the summation order differs from the reference. */

/* 16 weights from column k of a float row at p (masked lanes read nothing and are zero). */
static T512I __m512 fload16(const uint8_t *p, int64_t k, const aios_dtype dt, const int masked, __mmask16 m) {
    if (dt == AIOS_DTYPE_F32)
        return masked ? _mm512_maskz_loadu_ps(m, p + 4 * k) : _mm512_loadu_ps(p + 4 * k);
    __m256i h = masked ? _mm256_maskz_loadu_epi16(m, p + 2 * k) : _mm256_loadu_si256((const __m256i *)(p + 2 * k));
    if (dt == AIOS_DTYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* y[t * ldy + r] += dot(W row r, x[t * ldx]) for t < NT. */
static T512I void gemv_f_row(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r,
                             const aios_dtype dt, const int NT) {
    const int64_t n = W->shape[1];
    const int es = dt == AIOS_DTYPE_F32 ? 4 : 2;
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r * (size_t)n * (size_t)es;
    __m512 acc[4][3];
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) acc[u][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 64 <= n; k += 64) {
#ifdef PF_F_BYTES /* measuring only: software prefetch ahead in the stream (slower here) */
        for (int l = 0; l < es; l++) _mm_prefetch((const char *)w + (size_t)k * es + PF_F_BYTES + 64 * l, _MM_HINT_T0);
#endif
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            __m512 wv = fload16(w, k + 16 * u, dt, 0, 0xFFFF);
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) acc[u][t] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * ldx + k + 16 * u), acc[u][t]);
        }
    }
    for (int u = 0; k < n; k += 16, u++) {
        __mmask16 m = tailmask(n - k);
        __m512 wv = fload16(w, k, dt, 1, m);
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) acc[u][t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + t * ldx + k), acc[u][t]);
    }
#pragma GCC unroll 3
    for (int t = 0; t < NT; t++)
        y[t * ldy + r] += _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc[0][t], acc[1][t]), _mm512_add_ps(acc[2][t], acc[3][t])));
}

#define GEMVF512_NT(DT)                                                          \
    case DT:                                                                     \
        for (int64_t r = r0; r < r1; r++) {                                      \
            if (nt == 1) gemv_f_row(y, ldy, x, ldx, W, r, DT, 1);                \
            else if (nt == 2) gemv_f_row(y, ldy, x, ldx, W, r, DT, 2);           \
            else gemv_f_row(y, ldy, x, ldx, W, r, DT, 3);                        \
        }                                                                        \
        break;

/* Rows r0 <= r < r1 of y[t * ldy + r] += dot(W row r, x[t * ldx]) for t < nt (1..3). */
static T512 void gemv_f_512(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                            int64_t r0, int64_t r1) {
    switch (W->dtype) {
        GEMVF512_NT(AIOS_DTYPE_F32)
        GEMVF512_NT(AIOS_DTYPE_F16)
        GEMVF512_NT(AIOS_DTYPE_BF16)
    default: break;
    }
}

/* ---------------------------------------------------------------- int8 x int8 (VNNI) */

#define TVNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

/* Activations of one token, quantized: xu = round(x / sx) + 128 in [1, 255] (u8, so vpdpbusd
 * can multiply them with the signed weights), sx = max|x| / 127, and sum(round(x / sx)). */
static TVNNI __attribute__((noinline)) void quant_row_u8(uint8_t *xu, float *sx, int32_t *sumq, const float *x, int64_t n) {
    __m512 mx = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(tailmask(n - k), x + k)));
    float amax = _mm512_reduce_max_ps(mx);
    float s = amax > 0 ? amax / 127.0f : 1.0f, inv = 1.0f / s;
    __m512 vinv = _mm512_set1_ps(inv);
    __m512i acc = _mm512_setzero_si512();
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = tailmask(n - k);
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), vinv));
        q = _mm512_maskz_mov_epi32(m, q);
        acc = _mm512_add_epi32(acc, q);
        _mm_mask_storeu_epi8(xu + k, m, _mm512_cvtepi32_epi8(_mm512_add_epi32(q, _mm512_set1_epi32(128))));
    }
    *sx = s;
    *sumq = _mm512_reduce_add_epi32(acc);
}

/* acc[r][t] = sum_k xu[t][k] * w[r][k] for 4 rows x NT tokens (int32). */
static inline __attribute__((always_inline)) TVNNI void qtile(int32_t out[4][4], const int8_t *w, int64_t ldw,
                                                             const uint8_t *xu, int64_t ldx, const int NT, int64_t n) {
    __m512i acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_si512();
    for (int64_t k = 0; k < n; k += 64) {
        __mmask64 m = n - k >= 64 ? ~0ull : ((1ull << (n - k)) - 1);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) _mm_prefetch((const char *)(w + r * ldw + k) + PF_BYTES, _MM_HINT_T0);
        __m512i w0 = _mm512_maskz_loadu_epi8(m, w + k), w1 = _mm512_maskz_loadu_epi8(m, w + ldw + k);
        __m512i w2 = _mm512_maskz_loadu_epi8(m, w + 2 * ldw + k), w3 = _mm512_maskz_loadu_epi8(m, w + 3 * ldw + k);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            __m512i xv = _mm512_maskz_loadu_epi8(m, xu + t * ldx + k);
            acc[0][t] = _mm512_dpbusd_epi32(acc[0][t], xv, w0);
            acc[1][t] = _mm512_dpbusd_epi32(acc[1][t], xv, w1);
            acc[2][t] = _mm512_dpbusd_epi32(acc[2][t], xv, w2);
            acc[3][t] = _mm512_dpbusd_epi32(acc[3][t], xv, w3);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) out[r][t] = _mm512_reduce_add_epi32(acc[r][t]);
}

static TVNNI int32_t row_sum_s8(const int8_t *w, int64_t n) {
    __m512i acc = _mm512_setzero_si512();
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t k = 0; k < n; k += 64) {
        __mmask64 m = n - k >= 64 ? ~0ull : ((1ull << (n - k)) - 1);
        acc = _mm512_dpbusd_epi32(acc, ones, _mm512_maskz_loadu_epi8(m, w + k));
    }
    return _mm512_reduce_add_epi32(acc);
}

/* Rows r0 .. r0+3 of y for all T tokens.  Kept out of line: OpenMP outlined regions do not
 * inherit target attributes (clang), so the parallel loop below only calls functions. */
static TVNNI __attribute__((noinline)) void vnni_rowblock(float *y, const aios_tensor *W, const uint8_t *xu,
                                                          const float *sx, const int32_t *sq, int64_t T, int64_t r0) {
    const int64_t n_out = W->shape[0], n_in = W->shape[1];
    const int8_t *wq = (const int8_t *)W->data;
    int nr = n_out - r0 < 4 ? (int)(n_out - r0) : 4;
    float sc[4], zp[4];
    int32_t ws[4];
    int64_t off[4];
    for (int i = 0; i < 4; i++) {
        int64_t r = r0 + (i < nr ? i : 0), si = W->quant_axis == 0 ? r : 0;
        sc[i] = aios__q_scale(W, si);
        zp[i] = aios__q_zero(W, si);
        ws[i] = row_sum_s8(wq + r * n_in, n_in);
        off[i] = r * n_in; /* rows past n_out repeat row r0 (computed, never stored) */
    }
    for (int64_t t0 = 0; t0 < T; t0 += 4) {
        int nt = T - t0 < 4 ? (int)(T - t0) : 4;
        int32_t d[4][4];
        if (nr == 4) {
            switch (nt) {
            case 4: qtile(d, wq + off[0], n_in, xu + t0 * n_in, n_in, 4, n_in); break;
            case 3: qtile(d, wq + off[0], n_in, xu + t0 * n_in, n_in, 3, n_in); break;
            case 2: qtile(d, wq + off[0], n_in, xu + t0 * n_in, n_in, 2, n_in); break;
            default: qtile(d, wq + off[0], n_in, xu + t0 * n_in, n_in, 1, n_in); break;
            }
        } else {
            for (int i = 0; i < nr; i++) {
                int32_t dd[4][4];
                /* one row at a time: stride 0 repeats the row in all four slots */
                switch (nt) {
                case 4: qtile(dd, wq + off[i], 0, xu + t0 * n_in, n_in, 4, n_in); break;
                case 3: qtile(dd, wq + off[i], 0, xu + t0 * n_in, n_in, 3, n_in); break;
                case 2: qtile(dd, wq + off[i], 0, xu + t0 * n_in, n_in, 2, n_in); break;
                default: qtile(dd, wq + off[i], 0, xu + t0 * n_in, n_in, 1, n_in); break;
                }
                for (int t = 0; t < nt; t++) d[i][t] = dd[0][t];
            }
        }
        for (int t = 0; t < nt; t++)
            for (int i = 0; i < nr; i++) {
                /* sum_k q_w x_q = d - 128 sum(q_w);  y += s_w s_x (that - zp_w sum(x_q)) */
                int64_t dot = (int64_t)d[i][t] - 128 * (int64_t)ws[i];
                y[(t0 + t) * n_out + r0 + i] += sc[i] * sx[t0 + t] * ((float)dot - zp[i] * (float)sq[t0 + t]);
            }
    }
}

static aios_status matmul_q8_vnni(float *y, const float *x, const aios_tensor *W, int64_t T, int nth) {
    const int64_t n_out = W->shape[0], n_in = W->shape[1];
    uint8_t *xu = malloc((size_t)(T * n_in));
    float *sx = malloc(sizeof(float) * (size_t)T);
    int32_t *sq = malloc(sizeof(int32_t) * (size_t)T);
    if (!xu || !sx || !sq) {
        free(xu), free(sx), free(sq);
        return aios__err(AIOS_ERR_NOMEM, "matmul: int8 activations (%lld x %lld)", (long long)T, (long long)n_in);
    }
    const int64_t nblk = (n_out + 3) / 4, chunk = nblk / ((int64_t)nth * 8) > 1 ? nblk / ((int64_t)nth * 8) : 1;
#pragma omp parallel num_threads(nth)
    {
#pragma omp for schedule(static)
        for (int64_t t = 0; t < T; t++) quant_row_u8(xu + t * n_in, &sx[t], &sq[t], x + t * n_in, n_in);
#pragma omp for schedule(dynamic, chunk)
        for (int64_t b = 0; b < nblk; b++) vnni_rowblock(y, W, xu, sx, sq, T, b * 4);
    }
    free(xu), free(sx), free(sq);
    return AIOS_OK;
}

const aios__ktier aios__tier_avx512 = {
    .name = "avx512",
    .deq = deq512,
    .tile = tile512,
    .dot = dot512,
    .lora_bu = aios__lora_bu_512,
    .lora_ax16 = aios__lora_ax16_512,
    .lora_bu16 = aios__lora_bu16_512,
    .axpy = axpy512,
    .scale = scale512,
    .gelu = gelu512,
    .silu = silu512,
    .softmax_row = softmax512,
    .layernorm_row = layernorm512,
    .rmsnorm_row = rmsnorm512,
    .add = add512,
    .mul = mul512,
    .matmul_q8_int = matmul_q8_vnni, /* used only when the CPU has avx512vnni (dispatch.c) */
    .gemv_q = gemv_q_512,
    .gemv_f = gemv_f_512,
    .gemv_gguf = gemv_gguf_512,
    .gemv_gguf_i8 = aios__gemv_gguf_i8_512,
    .gemv_q_i8_ok = aios__gemv_q_i8_ok,
    .gemv_q_i8 = aios__gemv_q_i8_512,
};
#endif
