/*
 * avx2.c — the AVX2/FMA/F16C tier: 8-lane versions of the reference inner loops.
 *
 * Per-function target attributes (no -march in the build); every loop has a scalar tail.
 * Micro-kernel: 4 weight rows x 2 tokens per pass (8 accumulators + 4 weight vectors + 1
 * activation vector fit the 16 ymm registers).  exp and erf as in avx512.c (Cephes expf,
 * Abramowitz & Stegun 7.1.26).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "kernels/cpu/kern.h"
#include "kernels/cpu/vexp.h"
#include "kernels/cpu/gguf_simd.h"
#include "kernels/cpu/hsum_avx2.h"
#include "tensor/gguf_blocks.h"

#define T256 __attribute__((target("avx2,fma,f16c")))
#define T256I __attribute__((target("avx2,fma,f16c"), always_inline)) inline


static T256I __m256 erf256(__m256 x) {
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(signbit, x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(ax, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 y = _mm256_set1_ps(1.061405429f);
    y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(-1.453152027f));
    y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(1.421413741f));
    y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(-0.284496736f));
    y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(0.254829592f));
    y = _mm256_mul_ps(y, t);
    __m256 r = _mm256_fnmadd_ps(y, aios__exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax))), _mm256_set1_ps(1.0f));
    return _mm256_or_ps(r, _mm256_and_ps(x, signbit));
}

/* ---------------------------------------------------------------- dequantize */

/* Scale / zero point si stored as float32 or float16 (aios__q_scale without the call to the
 * scalar half conversion, which had cost the grouped dequantizer of the prefill GEMM 15%). */
static T256I float q_scale_f16c(const void *a, int f16, int64_t si) {
    if (f16) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)a + 2 * si, 2);
        return _cvtsh_ss(h);
    }
    float f;
    memcpy(&f, (const uint8_t *)a + 4 * si, 4);
    return f;
}

/* dst[k] = the float16 value at src + 2k, k < n (src need not be 2-byte aligned): F16C, 8 at a time.
 * The F16 weight rows, float16 scales / zero points and the float16 KV cache all widen here. */
static T256I void f16_widen(float *dst, const void *src, int64_t n) {
    const uint8_t *p = (const uint8_t *)src;
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * k))));
    for (; k < n; k++) {
        uint16_t h;
        memcpy(&h, p + 2 * k, 2);
        dst[k] = _cvtsh_ss(h);
    }
}

static T256 void deq256(float *out, const aios_tensor *W, int64_t row, int64_t c0, int64_t n) {
    if (aios_gguf_block(W->dtype, NULL, NULL)) { /* GGUF blocks: bit-exact with ref */
        aios__deq_gguf_avx2(out, W, row, c0, n);
        return;
    }
    const int64_t n_in = W->shape[1];
    const uint8_t *raw = (const uint8_t *)W->data;
    int64_t j = 0;
    switch (W->dtype) {
    case AIOS_DTYPE_F32:
        memcpy(out, raw + (size_t)(row * n_in + c0) * 4, (size_t)n * 4);
        return;
    case AIOS_DTYPE_F16:
        f16_widen(out, raw + (size_t)(row * n_in + c0) * 2, n);
        return;
    case AIOS_DTYPE_BF16: {
        const uint8_t *p = raw + (size_t)(row * n_in + c0) * 2;
        for (; j + 8 <= n; j += 8) {
            __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + j * 2)));
            _mm256_storeu_ps(out + j, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
        }
        for (; j < n; j++) {
            uint16_t h;
            memcpy(&h, p + j * 2, 2);
            out[j] = aios_bf16_to_f32(h);
        }
        return;
    }
    default: break;
    }
    const int f16 = W->scale_dtype == AIOS_DTYPE_F16;
    int64_t si = aios__q_sidx(W, row, c0); /* one division per call, not per group */
    const __m128i nib = _mm_set1_epi8(0x0F);
    const __m128i rep4 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m256i sh2 = _mm256_setr_epi32(6, 4, 2, 0, 6, 4, 2, 0);
    for (j = 0; j < n;) {
        int64_t c = c0 + j, run = aios__q_run(W, c, n - j);
        float s = q_scale_f16c(W->scales, f16, si), z = W->zero_points ? q_scale_f16c(W->zero_points, f16, si) : 0.0f;
        si += W->group_size > 0; /* runs are whole groups after the first: the next group's scale */
        const __m256 vs = _mm256_set1_ps(s), vzs = _mm256_set1_ps(z * s);
        int64_t e = row * n_in + c, k = 0;
        float *o = out + j;
        if (W->dtype == AIOS_DTYPE_Q8) {
            for (; k + 8 <= run; k += 8) {
                __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(raw + e + k)));
                _mm256_storeu_ps(o + k, _mm256_fmsub_ps(_mm256_cvtepi32_ps(q), vs, vzs));
            }
        } else if (W->dtype == AIOS_DTYPE_Q4) {
            if ((e & 1) && k < run) { o[k] = ((float)aios__q_get(W, e + k) - z) * s; k++; }
            for (; k + 8 <= run; k += 8) {
                int32_t w4;
                memcpy(&w4, raw + ((e + k) >> 1), 4);
                __m128i b = _mm_cvtsi32_si128(w4);
                __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib), lo = _mm_and_si128(b, nib);
                __m256i q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo)), _mm256_set1_epi32(8));
                _mm256_storeu_ps(o + k, _mm256_fmsub_ps(_mm256_cvtepi32_ps(q), vs, vzs));
            }
        } else {
            for (; ((e + k) & 3) && k < run; k++) o[k] = ((float)aios__q_get(W, e + k) - z) * s;
            for (; k + 8 <= run; k += 8) {
                uint16_t w2;
                memcpy(&w2, raw + ((e + k) >> 2), 2);
                __m128i b = _mm_shuffle_epi8(_mm_cvtsi32_si128(w2), rep4);
                __m256i q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(b), sh2), _mm256_set1_epi32(3));
                q = _mm256_sub_epi32(q, _mm256_set1_epi32(2));
                _mm256_storeu_ps(o + k, _mm256_fmsub_ps(_mm256_cvtepi32_ps(q), vs, vzs));
            }
        }
        for (; k < run; k++) o[k] = ((float)aios__q_get(W, e + k) - z) * s;
        j += run;
    }
}

/* ---------------------------------------------------------------- matmul micro-kernel */

static T256 float dot256(const float *a, const float *b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 16), _mm256_loadu_ps(b + k + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 24), _mm256_loadu_ps(b + k + 24), acc3);
    }
    for (; k + 8 <= n; k += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc0);
    float s = aios__hsum256(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

/* y[t][0..3] += dot(w rows 0..3, x[t]) for NT (1 or 2) tokens. */
static T256I void tile_4xN(float *y, int64_t ldy, const float *w, int64_t ldw, const float *x, int64_t ldx,
                           const int NT, int64_t n) {
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 w0 = _mm256_loadu_ps(w + k), w1 = _mm256_loadu_ps(w + ldw + k);
        __m256 w2 = _mm256_loadu_ps(w + 2 * ldw + k), w3 = _mm256_loadu_ps(w + 3 * ldw + k);
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) {
            __m256 xv = _mm256_loadu_ps(x + t * ldx + k);
            acc[0][t] = _mm256_fmadd_ps(w0, xv, acc[0][t]);
            acc[1][t] = _mm256_fmadd_ps(w1, xv, acc[1][t]);
            acc[2][t] = _mm256_fmadd_ps(w2, xv, acc[2][t]);
            acc[3][t] = _mm256_fmadd_ps(w3, xv, acc[3][t]);
        }
    }
#pragma GCC unroll 2
    for (int t = 0; t < NT; t++) {
        float s[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            s[r] = aios__hsum256(acc[r][t]);
            for (int64_t kk = k; kk < n; kk++) s[r] += w[r * ldw + kk] * x[t * ldx + kk];
            y[t * ldy + r] += s[r];
        }
    }
}

static T256 void tile256(float *y, int64_t ldy, const float *w, int64_t ldw, int nr, const float *x, int64_t ldx,
                         int nt, int64_t n) {
    if (nr == 4) {
        int t = 0;
        for (; t + 2 <= nt; t += 2) tile_4xN(y + t * ldy, ldy, w, ldw, x + t * ldx, ldx, 2, n);
        if (t < nt) tile_4xN(y + t * ldy, ldy, w, ldw, x + t * ldx, ldx, 1, n);
        return;
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) y[t * ldy + r] += dot256(w + r * ldw, x + t * ldx, n);
}

/* ---------------------------------------------------------------- fused quantized GEMV */

/* Decoding (1-3 tokens), as gemv_blk in avx512.c: rows expanded from the packed bytes in
 * registers, NR rows (4, or 1 when rows start at different bit offsets) sharing every
 * activation load; per run of columns sharing a scale acc = sum u x (u the stored unsigned
 * int4 / int2 field, the signed int8 byte), y += s (acc - (z + off) sum x), off = 0 / 8 / 2. */

/* 8 weights from element e (e % 2 == 0 for int4, e % 4 == 0 for int2), as floats. */
static T256I __m256 qload8(const uint8_t *raw, int64_t e, aios_dtype dt) {
    if (dt == AIOS_DTYPE_Q8) return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(raw + e))));
    if (dt == AIOS_DTYPE_Q4) {
        int32_t w4;
        memcpy(&w4, raw + (e >> 1), 4);
        const __m128i nib = _mm_set1_epi8(0x0F);
        __m128i b = _mm_cvtsi32_si128(w4);
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib), lo = _mm_and_si128(b, nib);
        return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo)));
    }
    uint16_t w2;
    memcpy(&w2, raw + (e >> 2), 2);
    const __m128i rep4 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m256i sh2 = _mm256_setr_epi32(6, 4, 2, 0, 6, 4, 2, 0);
    __m256i q = _mm256_srlv_epi32(_mm256_cvtepu8_epi32(_mm_shuffle_epi8(_mm_cvtsi32_si128(w2), rep4)), sh2);
    return _mm256_cvtepi32_ps(_mm256_and_si256(q, _mm256_set1_epi32(3)));
}

#define PF_BYTES 16384 /* software prefetch distance in the weight stream (measured in avx512.c) */

static T256I void gemv_blk(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r0,
                           const aios_dtype dt, const int NR, const int NT) {
    const int64_t n_in = W->shape[1];
    const uint8_t *raw = (const uint8_t *)W->data;
    const int off = dt == AIOS_DTYPE_Q8 ? 0 : dt == AIOS_DTYPE_Q4 ? 8 : 2;
    const int need_xs = W->zero_points || off;
    const int al = dt == AIOS_DTYPE_Q8 ? 1 : dt == AIOS_DTYPE_Q4 ? 2 : 4;
    float tot[4][3] = {{0}};
    __m256 vt[4][3];
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) vt[r][t] = _mm256_setzero_ps();
    /* group index and columns left in it, kept incrementally (no divisions per run) */
    const int64_t G = W->group_size > 0 ? W->group_size : n_in, gpr = n_in / G;
    int64_t gi = 0, gleft = G;
    for (int64_t j = 0; j < n_in;) {
        /* at most 256 columns per partial sum (8 lanes: keeps float32 summation chains short) */
        const int64_t run = AIOS_MIN(256, AIOS_MIN(gleft, n_in - j)), e0 = r0 * n_in + j;
        __m256 acc[4][3], xs[3];
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++)
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) xs[t] = _mm256_setzero_ps();
        float hs[4][3] = {{0}}, hx[3] = {0};
        int64_t k = 0;
        while (k < run && (e0 + k) % al) k++; /* rows of a block share e0 % al */
        aios__gemv_scalar_cols(hs, hx, W, x + j, ldx, e0, n_in, off, NR, NT, 0, k);
        for (; k + 32 <= run; k += 32) { /* 32 columns per step, prefetched PF_BYTES ahead */
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++)
                _mm_prefetch((const char *)raw + (e0 + r * n_in + k) / al + PF_BYTES, _MM_HINT_T0);
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) {
                __m256 xv[3];
#pragma GCC unroll 3
                for (int t = 0; t < NT; t++) {
                    xv[t] = _mm256_loadu_ps(x + t * ldx + j + k + 8 * u);
                    if (need_xs) xs[t] = _mm256_add_ps(xs[t], xv[t]);
                }
#pragma GCC unroll 4
                for (int r = 0; r < NR; r++) {
                    __m256 wv = qload8(raw, e0 + r * n_in + k + 8 * u, dt);
#pragma GCC unroll 3
                    for (int t = 0; t < NT; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
                }
            }
        }
        for (; k + 8 <= run; k += 8) {
            __m256 xv[3];
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) {
                xv[t] = _mm256_loadu_ps(x + t * ldx + j + k);
                if (need_xs) xs[t] = _mm256_add_ps(xs[t], xv[t]);
            }
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++) {
                __m256 wv = qload8(raw, e0 + r * n_in + k, dt);
#pragma GCC unroll 3
                for (int t = 0; t < NT; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
            }
        }
        aios__gemv_scalar_cols(hs, hx, W, x + j, ldx, e0, n_in, off, NR, NT, k, run);
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const int64_t si = W->group_size > 0 ? (r0 + r) * gpr + gi : W->quant_axis == 0 ? r0 + r : 0;
            float s = aios__q_scale(W, si), z = (aios__q_zero(W, si)) + (float)off;
            const __m256 vs = _mm256_set1_ps(s), vzs = _mm256_set1_ps(-z * s);
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) {
                vt[r][t] = _mm256_fmadd_ps(acc[r][t], vs, vt[r][t]);
                if (need_xs) vt[r][t] = _mm256_fmadd_ps(xs[t], vzs, vt[r][t]);
                tot[r][t] += s * (hs[r][t] - z * hx[t]);
            }
        }
        j += run;
        if ((gleft -= run) == 0) gi++, gleft = G;
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) y[t * ldy + r] += tot[r][t] + aios__hsum256(vt[r][t]);
}

/* Grouped int8 / int4, groups of a multiple of 32 columns within a row (aios__gemv_gq_ok), as
 * gemv_gq512 in avx512.c: scales (and zero points) of GQ_CB groups per row converted 8 at a time
 * into a stack array; with zero points every weight becomes the reference's float32 value
 * ((q - z) s) in registers, one FMA per weight and token; without them q . x is summed per
 * 32-column block and scaled once (s (q . x): a multiply per 8 weights saved; figures in
 * docs/kernels.md), so a unit vector x still gives (float)q * s exactly.  int4: the
 * 16 bytes of 32 columns split into high nibbles (even columns) and low ones (odd), minus 8 in
 * int8 lanes, interleaved back into column order and widened 8 at a time. */
#define GQ_CB 64 /* groups per pass of the scale pre-conversion */

/* dst[k] = float value of scales / zero points src[k], k < n (<= GQ_CB). */
static T256I void gq_cvt(float *dst, const void *src, int f16, int64_t n) {
    if (f16)
        f16_widen(dst, src, n);
    else
        memcpy(dst, src, sizeof(float) * (size_t)n);
}

static T256I void gemv_gq256(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r0,
                             const aios_dtype DT, const int NR, const int NT, const int zp) {
    const int64_t n_in = W->shape[1], G = W->group_size, gpr = n_in / G, bpg = G / 32;
    const int f16 = W->scale_dtype == AIOS_DTYPE_F16;
    const size_t ssz = f16 ? 2 : 4;
    const uint8_t *raw = (const uint8_t *)W->data;
    const int64_t row_bytes = DT == AIOS_DTYPE_Q4 ? n_in / 2 : n_in, blk_bytes = DT == AIOS_DTYPE_Q4 ? 16 : 32;
    const int pf_every = (int)(64 / blk_bytes); /* one prefetch per cache line of each row */
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) acc[i][t] = _mm256_setzero_ps();
    float sd[4][GQ_CB] __attribute__((aligned(32))), zd[4][GQ_CB] __attribute__((aligned(32)));
    for (int64_t g0 = 0; g0 < gpr; g0 += GQ_CB) {
        const int64_t ng = AIOS_MIN(GQ_CB, gpr - g0);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const size_t si = (size_t)((r0 + i) * gpr + g0);
            gq_cvt(sd[i], (const uint8_t *)W->scales + si * ssz, f16, ng);
            if (zp) gq_cvt(zd[i], (const uint8_t *)W->zero_points + si * ssz, f16, ng);
        }
        for (int64_t g = 0; g < ng; g++)
            for (int64_t c = 0; c < bpg; c++) {
                const int64_t b = (g0 + g) * bpg + c, col = 32 * b; /* 32-column block of the row */
                const uint8_t *bp = raw + (size_t)(r0 * row_bytes + b * blk_bytes);
#pragma GCC unroll 4
                for (int i = 0; i < NR; i++) {
                    const uint8_t *p = bp + (size_t)(i * row_bytes);
                    if (b % pf_every == 0) _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
                    const __m256 vs = _mm256_broadcast_ss(&sd[i][g]);
                    __m128i q0 = _mm_setzero_si128(), q1 = q0;
                    if (DT == AIOS_DTYPE_Q4) {
                        const __m128i v = _mm_loadu_si128((const __m128i *)p), nib = _mm_set1_epi8(0x0F), e8 = _mm_set1_epi8(8);
                        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), nib), e8);
                        const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, nib), e8);
                        q0 = _mm_unpacklo_epi8(hi, lo), q1 = _mm_unpackhi_epi8(hi, lo); /* columns 0-15, 16-31 */
                    }
                    __m256 bacc[3]; /* without zero points: s (q . x) per block, one scale FMA per 32 weights */
#pragma GCC unroll 3
                    for (int t = 0; t < NT; t++) bacc[t] = _mm256_setzero_ps();
#pragma GCC unroll 4
                    for (int u = 0; u < 4; u++) {
                        __m256i qi;
                        if (DT == AIOS_DTYPE_Q4) {
                            const __m128i h = u < 2 ? q0 : q1;
                            qi = _mm256_cvtepi8_epi32(u % 2 ? _mm_srli_si128(h, 8) : h);
                        } else {
                            qi = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * u)));
                        }
                        __m256 f = _mm256_cvtepi32_ps(qi);
                        if (zp) {
                            f = _mm256_sub_ps(f, _mm256_broadcast_ss(&zd[i][g]));
                            const __m256 w = _mm256_mul_ps(f, vs);
#pragma GCC unroll 3
                            for (int t = 0; t < NT; t++)
                                acc[i][t] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + t * ldx + col + 8 * u), acc[i][t]);
                        } else {
#pragma GCC unroll 3
                            for (int t = 0; t < NT; t++)
                                bacc[t] = _mm256_fmadd_ps(f, _mm256_loadu_ps(x + t * ldx + col + 8 * u), bacc[t]);
                        }
                    }
                    if (!zp)
#pragma GCC unroll 3
                        for (int t = 0; t < NT; t++) acc[i][t] = _mm256_fmadd_ps(bacc[t], vs, acc[i][t]);
                }
            }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) y[t * ldy + i] += aios__hsum256(acc[i][t]);
}

/* zero points a constant of each instance (a branch per 8 / 16 weights had cost the AVX2 one) */
#define GQ_NT(DT, NR)                                                                                 \
    switch (nt + 3 * (W->zero_points != NULL)) {                                                      \
    case 1: gemv_gq256(y, ldy, x, ldx, W, r, DT, NR, 1, 0); break;                                    \
    case 2: gemv_gq256(y, ldy, x, ldx, W, r, DT, NR, 2, 0); break;                                    \
    case 3: gemv_gq256(y, ldy, x, ldx, W, r, DT, NR, 3, 0); break;                                    \
    case 4: gemv_gq256(y, ldy, x, ldx, W, r, DT, NR, 1, 1); break;                                    \
    case 5: gemv_gq256(y, ldy, x, ldx, W, r, DT, NR, 2, 1); break;                                    \
    default: gemv_gq256(y, ldy, x, ldx, W, r, DT, NR, 3, 1); break;                                   \
    }

#define GEMV_NT(DT, NR)                                                                     \
    switch (nt) {                                                                           \
    case 1: gemv_blk(y, ldy, x, ldx, W, r, DT, NR, 1); break;                               \
    case 2: gemv_blk(y, ldy, x, ldx, W, r, DT, NR, 2); break;                               \
    default: gemv_blk(y, ldy, x, ldx, W, r, DT, NR, 3); break;                              \
    }

/* Rows r0 <= r < r1 of y[t * ldy + r] += dot(W row r, x[t * ldx]) for t < nt (1..3). */
static T256 void gemv_q_256(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                            int64_t r0, int64_t r1) {
    const int64_t n_in = W->shape[1];
    const int al = W->dtype == AIOS_DTYPE_Q8 ? 1 : W->dtype == AIOS_DTYPE_Q4 ? 2 : 4;
    const int64_t step = n_in % al ? 1 : 4; /* 4-row blocks when all rows start at the same bit offset */
    y += r0;
    if (aios__gemv_gq_ok(W)) { /* whole groups of 32k columns per row */
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4, y += 4) {
            if (W->dtype == AIOS_DTYPE_Q8) GQ_NT(AIOS_DTYPE_Q8, 4)
            else GQ_NT(AIOS_DTYPE_Q4, 4)
        }
        for (; r < r1; r++, y++) {
            if (W->dtype == AIOS_DTYPE_Q8) GQ_NT(AIOS_DTYPE_Q8, 1)
            else GQ_NT(AIOS_DTYPE_Q4, 1)
        }
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

/* Decoding (1-3 tokens) straight from ggml's blocks (tensor/gguf_blocks.h), exact-float: every
 * 32 values of a row are unpacked in registers to 32 small integers q (int8 lanes: the stored
 * field minus its fixed offset, e.g. Q4_0's 8, Q6_K's 32), converted to float and multiplied
 * with x; the block's scales s (one per 16 values: the 32-value types repeat d, K-quants
 * d * sub-scale) multiply the partial sums in registers, y += sum s * (q . x) - sum m * sum x,
 * with the block minimum m (Q4_1, Q5_1, K-quant mins) against per-16 sums of x computed once
 * per call.  Not bit-identical to the reference (summation order) — tested to a tolerance. */

#define GGUF_XCOLS 8192 /* columns per pass (the per-16 sums of x live on the stack) */

/* Rows r0 <= r < r1 of y[t * ldy + r] += dot(W row r, x[t * ldx]), NT tokens, type DT. */
static T256I void gemv_gguf_t(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r0,
                              int64_t r1, const aios_dtype DT, const int NT) {
    int blk = 32, bytes = 0;
    aios_gguf_block(DT, &blk, &bytes);
    const int64_t n_in = W->shape[1], row_bytes = n_in / blk * bytes;
    const int has_min = DT == AIOS_DTYPE_GGUF_Q4_1 || DT == AIOS_DTYPE_GGUF_Q5_1 || DT == AIOS_DTYPE_GGUF_Q2_K ||
                        DT == AIOS_DTYPE_GGUF_Q4_K || DT == AIOS_DTYPE_GGUF_Q5_K;
    float xs[3][GGUF_XCOLS / 16], xs32[3][GGUF_XCOLS / 32];
    for (int64_t c0 = 0; c0 < n_in; c0 += GGUF_XCOLS) {
        const int64_t nc = AIOS_MIN(GGUF_XCOLS, n_in - c0), nb = nc / blk;
        if (has_min)
            for (int t = 0; t < NT; t++)
                for (int64_t g = 0; g < nc / 16; g++) {
                    __m256 v = _mm256_add_ps(_mm256_loadu_ps(x + t * ldx + c0 + 16 * g),
                                             _mm256_loadu_ps(x + t * ldx + c0 + 16 * g + 8));
                    xs[t][g] = aios__hsum256(v);
                    if (g & 1) xs32[t][g / 2] = xs[t][g - 1] + xs[t][g];
                }
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)W->data + (size_t)r * (size_t)row_bytes + (size_t)(c0 / blk * bytes);
            __m256 a0[3], a1[3];
            float ms[3] = {0, 0, 0};
            for (int t = 0; t < NT; t++) a0[t] = a1[t] = _mm256_setzero_ps();
            for (int64_t bi = 0; bi < nb; bi++) {
                const uint8_t *b = row + bi * bytes;
                _mm_prefetch((const char *)b + PF_BYTES, _MM_HINT_T0);
                gguf_scales S;
                gguf_block_scales(DT, b, &S);
                for (int c = 0; c < blk / 32; c++) {
                    __m256i q = gguf_chunk(DT, b, c);
                    __m128i ql = _mm256_castsi256_si128(q), qh = _mm256_extracti128_si256(q, 1);
                    __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(ql));
                    __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(ql, 8)));
                    __m256 f2 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(qh));
                    __m256 f3 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(qh, 8)));
                    const __m256 s0 = _mm256_set1_ps(S.s[2 * c]), s1 = _mm256_set1_ps(S.s[2 * c + 1]);
                    const int64_t col = bi * blk + 32 * c;
#pragma GCC unroll 3
                    for (int t = 0; t < NT; t++) {
                        const float *xp = x + t * ldx + c0 + col;
                        __m256 v0 = _mm256_fmadd_ps(f1, _mm256_loadu_ps(xp + 8), _mm256_mul_ps(f0, _mm256_loadu_ps(xp)));
                        __m256 v1 = _mm256_fmadd_ps(f3, _mm256_loadu_ps(xp + 24), _mm256_mul_ps(f2, _mm256_loadu_ps(xp + 16)));
                        a0[t] = _mm256_fmadd_ps(s0, v0, a0[t]);
                        a1[t] = _mm256_fmadd_ps(s1, v1, a1[t]);
                        /* one min per 32 values but in Q2_K (the chain of one add per block is short) */
                        if (has_min && DT == AIOS_DTYPE_GGUF_Q2_K)
                            ms[t] += S.m[2 * c] * xs[t][col / 16] + S.m[2 * c + 1] * xs[t][col / 16 + 1];
                        else if (has_min) ms[t] += S.m[2 * c] * xs32[t][col / 32];
                    }
                }
            }
            for (int t = 0; t < NT; t++) y[t * ldy + r] += aios__hsum256(_mm256_add_ps(a0[t], a1[t])) - ms[t];
        }
    }
}

/* int8 activations (opt-in, AIOS_INT8_ACT=1): each token row is rounded once per call to
 * int8 blocks of 16 (dx = max|x| / 127, qx = round-to-nearest-even(x / dx); llama.cpp's Q8_0
 * rule, on blocks of 16 instead of 32: docs/kernels.md, accuracy budget), and
 * the 32 weight integers meet them in integer dot products — maddubs(u, qx) on the stored
 * unsigned fields (the fixed offsets of Q4_0 / Q5_0 as a minimum term), maddubs(|q|, sign(qx, q))
 * for Q8_0, Q3_K and Q6_K — then madd to 8 int32 lanes (4 values each: lanes 0-3 the first 16 values, 4-7 the second) — scaled
 * by s * dx in registers; the minimums meet dx * sum(qx), so the result is the exact-float
 * GEMV of the rounded activations (what the test checks).  About twice fewer instructions per
 * value than the float path; the accuracy cost is measured in docs/kernels.md. */
static T256I void quant_x32(const float *x, int8_t *q, float *dx, float *s16) {
    __m256 v[4];
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
    /* one scale per 16 values (halves the rounding error of blocks next to an outlier) */
    float d0 = aios__hmax256(_mm256_max_ps(_mm256_andnot_ps(sgn, v[0]), _mm256_andnot_ps(sgn, v[1]))) / 127.0f;
    float d1 = aios__hmax256(_mm256_max_ps(_mm256_andnot_ps(sgn, v[2]), _mm256_andnot_ps(sgn, v[3]))) / 127.0f;
    float id0 = d0 != 0.0f ? 1.0f / d0 : 0.0f, id1 = d1 != 0.0f ? 1.0f / d1 : 0.0f;
    __m256i i[4];
    for (int k = 0; k < 4; k++) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], _mm256_set1_ps(k < 2 ? id0 : id1)));
    __m256i p01 = _mm256_packs_epi32(i[0], i[1]), p23 = _mm256_packs_epi32(i[2], i[3]); /* lanes interleaved */
    __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p);
    dx[0] = d0;
    dx[1] = d1;
    int s0 = 0, s1 = 0;
    for (int k = 0; k < 16; k++) s0 += q[k], s1 += q[16 + k];
    s16[0] = d0 * (float)s0;
    s16[1] = d1 * (float)s1;
}

/* quant_x32, and the lanes' activation scales of the 8 int32 dot-product lanes of those 32
 * values in value order (lanes 0-3 the first 16: dx0, lanes 4-7: dx1) stored at dv. */
static T256I void quant_x32_dv(const float *x, int8_t *q, float *dv, float *s16) {
    float dx[2];
    quant_x32(x, q, dx, s16);
    _mm256_store_ps(dv, _mm256_set_m128(_mm_set1_ps(dx[1]), _mm_set1_ps(dx[0])));
}

/* 16-bit activations (two int8 digits, mode 3, AIOS_INT8_ACT=16): quant_x32's first digit q1
 * and scale dx per 16 values, then the remainder r = x - q1 dx (the product rounded, then the
 * difference) as a second digit q2 = round-half-even(r * (256 / dx)) clamped to +-127, so that
 * x = (dx / 256) (256 q1 + q2) within dx / 512 (a 16-bit fixed point per 16 values).  dv gets the
 * lanes' dx / 256, s16 the halves' sums of the rounded values.  Every integer kernel takes it
 * as a second maddubs per weight vector, summed as 256 s1 + s2 in int32. */
static T256I void quant_x32_x16(const float *x, int8_t *q, int8_t *q2, float *dv, float *s16) {
    float dx[2];
    quant_x32(x, q, dx, s16);
    const float id[2] = {dx[0] != 0.0f ? 256.0f * (1.0f / dx[0]) : 0.0f, dx[1] != 0.0f ? 256.0f * (1.0f / dx[1]) : 0.0f};
    __m256i i[4];
    for (int k = 0; k < 4; k++) {
        const __m256 q1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8 * k))));
        const __m256 r = _mm256_sub_ps(_mm256_loadu_ps(x + 8 * k), _mm256_mul_ps(q1, _mm256_set1_ps(dx[k / 2])));
        i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(r, _mm256_set1_ps(id[k / 2])));
    }
    __m256i p01 = _mm256_packs_epi32(i[0], i[1]), p23 = _mm256_packs_epi32(i[2], i[3]);
    __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    p = _mm256_max_epi8(p, _mm256_set1_epi8(-127)); /* |r| <= dx / 2 up to rounding: 128 at most */
    _mm256_storeu_si256((__m256i *)q2, p);
    int s0 = 0, s1 = 0;
    for (int k = 0; k < 16; k++) s0 += 256 * q[k] + q2[k], s1 += 256 * q[16 + k] + q2[16 + k];
    const float e0 = dx[0] * (1.0f / 256.0f), e1 = dx[1] * (1.0f / 256.0f);
    s16[0] = e0 * (float)s0;
    s16[1] = e1 * (float)s1;
    _mm256_store_ps(dv, _mm256_set_m128(_mm_set1_ps(e1), _mm_set1_ps(e0)));
}

/* quant_x32_x16's digits without its byte packing and sums, for the whole-x rounding of
 * prompts (a pass per product of 4+ rows: it had cost prefill 5-20% on Zen 4): per 16 values
 * the same dx, q1 = rne(x / dx) and q2 = rne((x - q1 dx) 256 / dx) with the packs' saturation
 * written as clamps ([-128, 127], then [-127, 127]), e (256 q1 + q2) with e = dx / 256 — the
 * same floats (test_gguf_kernels compares them with test.h's t_round_x16 bit for bit). */
T256 void aios__round_x16_avx2(float *xr, const float *x, int64_t n) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    const __m256i lo1 = _mm256_set1_epi32(-128), lo2 = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    for (int64_t c = 0; c < n; c += 16) {
        const __m256 v0 = _mm256_loadu_ps(x + c), v1 = _mm256_loadu_ps(x + c + 8);
        const float d = aios__hmax256(_mm256_max_ps(_mm256_andnot_ps(sgn, v0), _mm256_andnot_ps(sgn, v1))) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f, id2 = d != 0.0f ? 256.0f * (1.0f / d) : 0.0f, e = d * (1.0f / 256.0f);
        for (int k = 0; k < 2; k++) {
            const __m256 v = k ? v1 : v0;
            const __m256i q1 = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v, _mm256_set1_ps(id))), lo1), hi);
            const __m256 r = _mm256_sub_ps(v, _mm256_mul_ps(_mm256_cvtepi32_ps(q1), _mm256_set1_ps(d)));
            const __m256i q2 = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(r, _mm256_set1_ps(id2))), lo2), hi);
            const __m256 w = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_slli_epi32(q1, 8), q2));
            _mm256_storeu_ps(xr + c + 8 * k, _mm256_mul_ps(w, _mm256_set1_ps(e)));
        }
    }
}

/* Values 32c .. 32c + 31 of block b as their stored unsigned fields (gguf_chunk without the
 * fixed offsets: Q4_0's 8, Q5_0's 16; Q4_1, Q5_1, Q2_K, Q4_K, Q5_K store them unsigned) for
 * maddubs(u, qx) without sign operations — at most 31 x 127 x 2 per int16 pair, no saturation. */
static T256I __m256i gguf_uchunk(aios_dtype dt, const uint8_t *b, int c) {
    switch (dt) {
    case AIOS_DTYPE_GGUF_Q4_0: return nibbles32(b + 2);
    case AIOS_DTYPE_GGUF_Q5_0:
        return _mm256_or_si256(nibbles32(b + 6), _mm256_and_si256(bits32(aios_gguf_u32le(b + 2)), _mm256_set1_epi8(0x10)));
    default: return gguf_chunk(dt, b, c);
    }
}

/* The GGUF integer decode GEMV (aios__gemv_gguf_i8_avx2 / _x16_avx2) is in idot_avx2.h,
 * included below with the 8-row pack's. */

/* ArrowQuant int8 / int4 with int8 activations (AIOS_INT8_ACT=1; the VNNI version is
 * gemv_aq_vnni_t in qdot_avx512.c): groups of a multiple of 32 columns within a row, or one
 * scale per row / tensor.  The activations are rounded as quant_x32 (blocks of 16, the same
 * rule as the GGUF path and aios__ref_gemv_i8) once per pass; per 32 weights one integer dot
 * product per token — int8: maddubs(|w|, sign(qx, w)) (|w| <= 128, |qx| <= 127: a pair sums to
 * at most 32512, no int16 saturation); int4: the stored nibbles u (0..15) are unsigned already,
 * maddubs(u, qx), and the offset 8 goes into the correction with the zero point — then madd to
 * 8 int32 lanes, converted and multiplied by the lanes' activation scales dx, summed over the
 * group and scaled by s once.  The correction s (z + off) sum(dx qx) uses per-group sums of the
 * rounded activations computed once per pass.  int4's nibbles sit MSB first (high nibble the
 * even column), so its activations are stored per 32 as [16 even columns | 16 odd] to meet the
 * high and the low nibbles without interleaving them. */
#define AQ_XCOLS 8192 /* columns per pass (the rounded activations live on the stack) */

typedef struct {
    int8_t q[3][AQ_XCOLS] __attribute__((aligned(32)));
    int8_t q2[3][AQ_XCOLS] __attribute__((aligned(32))); /* 16-bit activations: the second digits */
    float dv[3][AQ_XCOLS / 4] __attribute__((aligned(32))); /* per 32 columns: dx of each int32 lane */
    float gx[3][AQ_XCOLS / 32];                             /* per group of the pass: sum dx qx */
} aq_pass;

/* Rounds nc (% 32 == 0) columns of NT token rows; group sums over runs of ge columns. */
static T256I void aq_quant(aq_pass *P, const float *x, int64_t ldx, int64_t nc, int64_t ge, const int q4, const int NT,
                           const int X16) {
    const __m256i evod = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12,
                                          14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int t = 0; t < NT; t++) {
        float gsum = 0.0f;
        for (int64_t c = 0; c < nc; c += 32) {
            float s16[2], *dv = P->dv[t] + c / 4;
            int8_t *q = P->q[t] + c;
            if (X16) quant_x32_x16(x + t * ldx + c, q, P->q2[t] + c, dv, s16);
            else quant_x32_dv(x + t * ldx + c, q, dv, s16);
            if (q4) { /* [even columns 0-14, 16-30 | odd 1-15, 17-31]: lanes dx0 dx0 dx1 dx1, twice */
                __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)q), evod);
                _mm256_store_si256((__m256i *)q, _mm256_permute4x64_epi64(v, 0xD8));
                if (X16) {
                    v = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(P->q2[t] + c)), evod);
                    _mm256_store_si256((__m256i *)(P->q2[t] + c), _mm256_permute4x64_epi64(v, 0xD8));
                }
                _mm256_store_ps(dv, _mm256_permutevar8x32_ps(_mm256_load_ps(dv), _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7)));
            }
            gsum += s16[0] + s16[1];
            if ((c + 32) % ge == 0) P->gx[t][c / ge] = gsum, gsum = 0.0f;
        }
    }
}

/* One 32-column chunk ch of a row (bytes p) against the NT rows' rounded activations: per row t,
 * dst[t] += (the chunk's int32 lane sums) dx, times vs when SCALED (groups of exactly 32
 * columns: the group's scale folded in here, one chunk per group). */
static T256I void aq_chunk(__m256 *dst, const uint8_t *p, const aq_pass *X, int64_t ch, __m256 vs, const int NT,
                           const int q4, const int X16, const int SCALED) {
    const __m256i ones = _mm256_set1_epi16(1), c256 = _mm256_set1_epi16(256), nib = _mm256_set1_epi8(0x0F);
    __m256i w, aw = _mm256_setzero_si256();
    if (q4) {
        const __m128i v = _mm_loadu_si128((const __m128i *)p);
        w = _mm256_and_si256(_mm256_set_m128i(v, _mm_srli_epi16(v, 4)), nib); /* [high | low] */
    } else {
        w = _mm256_loadu_si256((const __m256i *)p);
        aw = _mm256_sign_epi8(w, w);
    }
#pragma GCC unroll 3
    for (int t = 0; t < NT; t++) {
        const __m256i xq = _mm256_load_si256((const __m256i *)(X->q[t] + 32 * ch));
        const __m256i p16 = q4 ? _mm256_maddubs_epi16(w, xq) : _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xq, w));
        __m256i i32 = _mm256_madd_epi16(p16, X16 ? c256 : ones);
        if (X16) { /* + the second digits' sums (16-bit activations) */
            const __m256i x2 = _mm256_load_si256((const __m256i *)(X->q2[t] + 32 * ch));
            const __m256i p2 = q4 ? _mm256_maddubs_epi16(w, x2) : _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x2, w));
            i32 = _mm256_add_epi32(i32, _mm256_madd_epi16(p2, ones));
        }
        const __m256 f = _mm256_cvtepi32_ps(i32), dv = _mm256_load_ps(X->dv[t] + 8 * ch);
        dst[t] = _mm256_fmadd_ps(f, SCALED ? _mm256_mul_ps(dv, vs) : dv, dst[t]);
    }
}

static T256I void gemv_aq_i8_t(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r0,
                               int64_t r1, const aios_dtype DT, const int NT, const int zp, const int G32, const int X16) {
    const int64_t n_in = W->shape[1], G = W->group_size, gpr = G > 0 ? n_in / G : 1;
    const int q4 = DT == AIOS_DTYPE_Q4, f16 = W->scale_dtype == AIOS_DTYPE_F16;
    const size_t ssz = f16 ? 2 : 4;
    const float off = q4 ? 8.0f : 0.0f;
    const uint8_t *raw = (const uint8_t *)W->data;
    const int64_t row_bytes = q4 ? n_in / 2 : n_in, cb = q4 ? 16 : 32; /* bytes per 32 columns */
    /* a pass is whole groups; one scale per row (G == 0): the pass is the group */
    const int64_t P = G > 0 ? AQ_XCOLS / G * G : AQ_XCOLS;
    aq_pass X;
    float sd[GQ_CB] __attribute__((aligned(32))), zd[GQ_CB] __attribute__((aligned(32)));
    for (int64_t c0 = 0; c0 < n_in; c0 += P) {
        const int64_t nc = AIOS_MIN(P, n_in - c0), ge = G > 0 ? G : nc, ng = nc / ge, cpg = ge / 32;
        aq_quant(&X, x + c0, ldx, nc, ge, q4, NT, X16);
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *rp = raw + (size_t)(r * row_bytes + (q4 ? c0 / 2 : c0));
            __m256 acc[3];
            float corr[3] = {0, 0, 0};
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
            for (int64_t g0 = 0; g0 < ng; g0 += GQ_CB) {
                const int64_t nb = AIOS_MIN(GQ_CB, ng - g0);
                /* scale index of group g0 of the pass: grouped, per row (quant_axis 0) or per tensor */
                const size_t si = (size_t)(G > 0 ? r * gpr + c0 / G + g0 : W->quant_axis == 0 ? r : 0);
                gq_cvt(sd, (const uint8_t *)W->scales + si * ssz, f16, nb);
                if (zp) gq_cvt(zd, (const uint8_t *)W->zero_points + si * ssz, f16, nb);
                if (G32) { /* one chunk per group: a flat loop (nested, the counters went to the stack) */
                    const uint8_t *p = rp + g0 * cb;
                    for (int64_t g = 0; g < nb; g++, p += cb) {
                        _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
                        aq_chunk(acc, p, &X, g0 + g, _mm256_broadcast_ss(&sd[g]), NT, q4, X16, 1);
                    }
                } else
                    for (int64_t g = 0; g < nb; g++) {
                        const int64_t ch0 = (g0 + g) * cpg; /* first 32-column chunk of the group in the pass */
                        __m256 b[3];
#pragma GCC unroll 3
                        for (int t = 0; t < NT; t++) b[t] = _mm256_setzero_ps();
                        for (int64_t ch = ch0; ch < ch0 + cpg; ch++) {
                            const uint8_t *p = rp + ch * cb;
                            if (ch % (64 / cb) == 0) _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
                            aq_chunk(b, p, &X, ch, _mm256_setzero_ps(), NT, q4, X16, 0);
                        }
                        const __m256 vs = _mm256_broadcast_ss(&sd[g]);
#pragma GCC unroll 3
                        for (int t = 0; t < NT; t++) acc[t] = _mm256_fmadd_ps(b[t], vs, acc[t]);
                    }
                if (q4 || zp) /* the correction, off the vector loop's chains */
                    for (int t = 0; t < NT; t++) {
                        float c = 0.0f;
                        for (int64_t g = 0; g < nb; g++) c += sd[g] * ((zp ? zd[g] : 0.0f) + off) * X.gx[t][g0 + g];
                        corr[t] += c;
                    }
            }
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) y[t * ldy + r] += aios__hsum256(acc[t]) - corr[t];
        }
    }
}

int aios__gemv_q_i8_avx2_ok(const aios_tensor *W) {
    const int64_t G = W->group_size, n_in = W->shape[1];
    if (W->dtype != AIOS_DTYPE_Q8 && W->dtype != AIOS_DTYPE_Q4) return 0;
    if (n_in % 32) return 0;
    return G == 0 || (G % 32 == 0 && G <= AQ_XCOLS && n_in % G == 0);
}

/* zero points and groups of exactly 32 columns: constants of each instance */
#define AQ_I8(DT, NT, X16)                                                                    \
    do {                                                                                      \
        const int g32 = W->group_size == 32;                                                  \
        if (W->zero_points && g32) gemv_aq_i8_t(y, ldy, x, ldx, W, r0, r1, DT, NT, 1, 1, X16); \
        else if (W->zero_points) gemv_aq_i8_t(y, ldy, x, ldx, W, r0, r1, DT, NT, 1, 0, X16);  \
        else if (g32) gemv_aq_i8_t(y, ldy, x, ldx, W, r0, r1, DT, NT, 0, 1, X16);             \
        else gemv_aq_i8_t(y, ldy, x, ldx, W, r0, r1, DT, NT, 0, 0, X16);                      \
    } while (0)
#define AQ_I8_NT(X16)                                       \
    do {                                                    \
        if (W->dtype == AIOS_DTYPE_Q8) {                    \
            if (nt == 1) AQ_I8(AIOS_DTYPE_Q8, 1, X16);      \
            else if (nt == 2) AQ_I8(AIOS_DTYPE_Q8, 2, X16); \
            else AQ_I8(AIOS_DTYPE_Q8, 3, X16);              \
        } else {                                            \
            if (nt == 1) AQ_I8(AIOS_DTYPE_Q4, 1, X16);      \
            else if (nt == 2) AQ_I8(AIOS_DTYPE_Q4, 2, X16); \
            else AQ_I8(AIOS_DTYPE_Q4, 3, X16);              \
        }                                                   \
    } while (0)

T256 void aios__gemv_q_i8_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                               int64_t r0, int64_t r1) {
    AQ_I8_NT(0);
}
/* The same with 16-bit activations (quant_x32_x16; mode 3, AIOS_INT8_ACT=16). */
T256 void aios__gemv_q_x16_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                                int64_t r0, int64_t r1) {
    AQ_I8_NT(1);
}

/* 4- and 5-bit weights repacked in blocks of 8 rows (q4x8.c) x int8 activations
 * (AIOS_INT8_ACT=1): the activations rounded by aq_quant (quant_x32's blocks of 16, value
 * order, the sums dx qx per 32) once per pass of AQ_XCOLS columns; per block of 32 columns,
 * four 32-byte loads give the 4-bit fields of 4 columns x 8 rows per vector (low nibbles:
 * columns 0-15, high: 16-31; 5-bit: a fifth load's bits or-ed in as bit 4), each meets a
 * broadcast of the 4 matching int8 activations in maddubs (u <= 31, |qx| <= 127: the 8
 * products summed per int16 lane stay below 2^15, 31496), madd to one int32 per row, and the
 * two halves' sums are scaled by their dx, then by the 8 rows' d (one float16 conversion) into
 * one accumulator whose lanes are the rows.  The offset term d (8 + z) sum(dx qx) (5-bit:
 * d (16 + z); Q4_1 / Q5_1: m sum(dx qx)) goes to a second accumulator; no horizontal sums. */
static T256I __m256i bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm256_set1_epi32(v);
}

/* The GGUF and 8-row-pack integer decode GEMVs, as AVX2 code and as the same loops with
 * AVX512-VNNI dot products for the AVX-512 tier (16-bit activations; idot_avx2.h). */
#define IDOT_VNNI 0
#define IDOT_T T256
#define IDOT_TI T256I
#define IDOT(name) name##_avx2
#include "kernels/cpu/idot_avx2.h"
#undef IDOT_VNNI
#undef IDOT_T
#undef IDOT_TI
#undef IDOT
#define IDOT_VNNI 1
#define IDOT_T __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define IDOT_TI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) inline
#define IDOT(name) name##_vnni
#include "kernels/cpu/idot_avx2.h"
#undef IDOT_VNNI
#undef IDOT_T
#undef IDOT_TI
#undef IDOT

/* Dequantization of whole blocks with the same unpacking, bit-identical to the reference
 * (gguf_blocks.h): y = s * q - m as a rounded product then a rounded difference (no FMA),
 * where s and m are the very products the reference forms (d * sc, dmin * mn; Q4_1 / Q5_1
 * store -m, and p - (-m) is p + m exactly in IEEE arithmetic, signed zeros included). */
static T256I void deq_gguf_t(float *out, const uint8_t *b, int64_t nb, const aios_dtype DT) {
    int blk = 32, bytes = 0;
    aios_gguf_block(DT, &blk, &bytes);
    for (int64_t bi = 0; bi < nb; bi++, b += bytes) {
        gguf_scales S;
        const int has_min = gguf_block_scales(DT, b, &S);
        for (int c = 0; c < blk / 32; c++, out += 32) {
            __m256i q = gguf_chunk(DT, b, c);
            __m128i ql = _mm256_castsi256_si128(q), qh = _mm256_extracti128_si256(q, 1);
            __m256 f[4] = {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(ql)),
                           _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(ql, 8))),
                           _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(qh)),
                           _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(qh, 8)))};
            for (int k = 0; k < 4; k++) {
                __m256 v = _mm256_mul_ps(f[k], _mm256_set1_ps(S.s[2 * c + k / 2]));
                if (has_min) v = _mm256_sub_ps(v, _mm256_set1_ps(S.m[2 * c + k / 2]));
                _mm256_storeu_ps(out + 8 * k, v);
            }
        }
    }
}

#define DEQ_CASE(DT) \
    case DT: deq_gguf_t(out, b, nb, DT); break;

/* out (n) = values [c0, c0 + n) of row `row`: whole blocks unpacked in registers, a block cut
 * by c0 or c0 + n by the shared reference decoder. */
T256 void aios__deq_gguf_avx2(float *out, const aios_tensor *W, int64_t row, int64_t c0, int64_t n) {
    int blk = 32, bytes = 0;
    aios_gguf_block(W->dtype, &blk, &bytes);
    const uint8_t *r = aios__gguf_row(W, row);
    int64_t head = (blk - c0 % blk) % blk;
    head = AIOS_MIN(head, n);
    if (head) aios_gguf_deq_range(W->dtype, r, c0, head, out);
    c0 += head, out += head, n -= head;
    const int64_t nb = n / blk;
    const uint8_t *b = r + c0 / blk * bytes;
    switch (W->dtype) {
        DEQ_CASE(AIOS_DTYPE_GGUF_Q4_0)
        DEQ_CASE(AIOS_DTYPE_GGUF_Q4_1)
        DEQ_CASE(AIOS_DTYPE_GGUF_Q5_0)
        DEQ_CASE(AIOS_DTYPE_GGUF_Q5_1)
        DEQ_CASE(AIOS_DTYPE_GGUF_Q8_0)
        DEQ_CASE(AIOS_DTYPE_GGUF_Q2_K)
        DEQ_CASE(AIOS_DTYPE_GGUF_Q3_K)
        DEQ_CASE(AIOS_DTYPE_GGUF_Q4_K)
        DEQ_CASE(AIOS_DTYPE_GGUF_Q5_K)
        DEQ_CASE(AIOS_DTYPE_GGUF_Q6_K)
    default: break;
    }
    c0 += nb * blk, out += nb * blk, n -= nb * blk;
    if (n > 0) aios_gguf_deq_range(W->dtype, r, c0, n, out);
}

#define GGUF_NT(DT)                                                  \
    case DT:                                                         \
        if (nt == 1) gemv_gguf_t(y, ldy, x, ldx, W, r0, r1, DT, 1);  \
        else if (nt == 2) gemv_gguf_t(y, ldy, x, ldx, W, r0, r1, DT, 2); \
        else gemv_gguf_t(y, ldy, x, ldx, W, r0, r1, DT, 3);          \
        break;

/* Rows r0 <= r < r1 of y[t * ldy + r] += dot(W row r, x[t * ldx]) for t < nt (1..3). */
T256 void aios__gemv_gguf_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                               int64_t r0, int64_t r1) {
    switch (W->dtype) {
        GGUF_NT(AIOS_DTYPE_GGUF_Q4_0)
        GGUF_NT(AIOS_DTYPE_GGUF_Q4_1)
        GGUF_NT(AIOS_DTYPE_GGUF_Q5_0)
        GGUF_NT(AIOS_DTYPE_GGUF_Q5_1)
        GGUF_NT(AIOS_DTYPE_GGUF_Q8_0)
        GGUF_NT(AIOS_DTYPE_GGUF_Q2_K)
        GGUF_NT(AIOS_DTYPE_GGUF_Q3_K)
        GGUF_NT(AIOS_DTYPE_GGUF_Q4_K)
        GGUF_NT(AIOS_DTYPE_GGUF_Q5_K)
        GGUF_NT(AIOS_DTYPE_GGUF_Q6_K)
    default: break;
    }
}

/* ---------------------------------------------------------------- float decode GEMV */

/* Decoding (1-3 tokens) with float32 / float16 / bfloat16 weights, as gemv_f_row in avx512.c:
 * one row at a time (the matrix read as one sequential stream, for the hardware prefetcher),
 * f16 widened by vcvtph2ps and bf16 by a 16-bit shift in registers, four accumulators per
 * token; the last n % 8 columns are scalar (the reference's values: both widenings are exact). */
static T256I __m256 fload8(const uint8_t *p, int64_t k, const aios_dtype dt) {
    if (dt == AIOS_DTYPE_F32) return _mm256_loadu_ps((const float *)(const void *)(p + 4 * k));
    __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * k));
    if (dt == AIOS_DTYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
static T256I float fget1(const uint8_t *p, int64_t k, const aios_dtype dt) {
    float f;
    if (dt == AIOS_DTYPE_F32) {
        memcpy(&f, p + 4 * k, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p + 2 * k, 2);
    if (dt == AIOS_DTYPE_F16) return aios_f16_to_f32(h);
    uint32_t b = (uint32_t)h << 16;
    memcpy(&f, &b, 4);
    return f;
}

/* y[t * ldy + r] += dot(W row r, x[t * ldx]) for t < NT. */
static T256I void gemv_f_row(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r,
                             const aios_dtype dt, const int NT) {
    const int64_t n = W->shape[1];
    const int es = dt == AIOS_DTYPE_F32 ? 4 : 2;
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r * (size_t)n * (size_t)es;
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++)
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) acc[u][t] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= n; k += 32)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            __m256 wv = fload8(w, k + 8 * u, dt);
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) acc[u][t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + k + 8 * u), acc[u][t]);
        }
    for (int u = 0; k + 8 <= n; k += 8, u++) {
        __m256 wv = fload8(w, k, dt);
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++) acc[u][t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + k), acc[u][t]);
    }
#pragma GCC unroll 3
    for (int t = 0; t < NT; t++) {
        float s = aios__hsum256(_mm256_add_ps(_mm256_add_ps(acc[0][t], acc[1][t]), _mm256_add_ps(acc[2][t], acc[3][t])));
        for (int64_t c = k; c < n; c++) s += fget1(w, c, dt) * x[t * ldx + c];
        y[t * ldy + r] += s;
    }
}

#define GEMVF256_NT(DT)                                                          \
    case DT:                                                                     \
        for (int64_t r = r0; r < r1; r++) {                                      \
            if (nt == 1) gemv_f_row(y, ldy, x, ldx, W, r, DT, 1);                \
            else if (nt == 2) gemv_f_row(y, ldy, x, ldx, W, r, DT, 2);           \
            else gemv_f_row(y, ldy, x, ldx, W, r, DT, 3);                        \
        }                                                                        \
        break;

/* Rows r0 <= r < r1 of y[t * ldy + r] += dot(W row r, x[t * ldx]) for t < nt (1..3). */
static T256 void gemv_f_256(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                            int64_t r0, int64_t r1) {
    switch (W->dtype) {
        GEMVF256_NT(AIOS_DTYPE_F32)
        GEMVF256_NT(AIOS_DTYPE_F16)
        GEMVF256_NT(AIOS_DTYPE_BF16)
    default: break;
    }
}

/* ---------------------------------------------------------------- rows and elementwise */

static T256 void axpy256(float *y, float a, const float *x, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(y + k, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
    for (; k < n; k++) y[k] += a * x[k];
}
static T256 void scale256(float *x, float a, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(x + k, _mm256_mul_ps(va, _mm256_loadu_ps(x + k)));
    for (; k < n; k++) x[k] *= a;
}
static T256 void add256(float *x, const float *y, int64_t n) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(x + k, _mm256_add_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
    for (; k < n; k++) x[k] += y[k];
}
static T256 void mul256(float *x, const float *y, int64_t n) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(x + k, _mm256_mul_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
    for (; k < n; k++) x[k] *= y[k];
}
static T256 void gelu256(float *x, int64_t n) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        __m256 e = erf256(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f)));
        _mm256_storeu_ps(x + k, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    }
    for (; k < n; k++) x[k] = 0.5f * x[k] * (1.0f + erff(x[k] * 0.70710678118654752f));
}
static T256 void silu256(float *x, int64_t n) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        __m256 d = _mm256_add_ps(_mm256_set1_ps(1.0f), aios__exp256(_mm256_sub_ps(_mm256_setzero_ps(), v)));
        _mm256_storeu_ps(x + k, _mm256_div_ps(v, d));
    }
    for (; k < n; k++) x[k] = x[k] / (1.0f + expf(-x[k]));
}
static T256 void softmax256(float *x, int64_t n) {
    if (n <= 0) return;
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + k));
    float m = aios__hmax256(mx);
    for (; k < n; k++) m = x[k] > m ? x[k] : m;
    __m256 vm = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
    for (k = 0; k + 8 <= n; k += 8) {
        __m256 e = aios__exp256(_mm256_sub_ps(_mm256_loadu_ps(x + k), vm));
        _mm256_storeu_ps(x + k, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = aios__hsum256(sum);
    for (; k < n; k++) {
        x[k] = expf(x[k] - m);
        s += x[k];
    }
    scale256(x, 1.0f / s, n);
}
static T256 void layernorm256(float *y, const float *x, const float *w, const float *b, int64_t n, float eps) {
    __m256 acc = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + k));
    float s = aios__hsum256(acc);
    for (; k < n; k++) s += x[k];
    float mean = s / (float)(n ? n : 1);
    __m256 vm = _mm256_set1_ps(mean);
    acc = _mm256_setzero_ps();
    for (k = 0; k + 8 <= n; k += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + k), vm);
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    float v = aios__hsum256(acc);
    for (; k < n; k++) v += (x[k] - mean) * (x[k] - mean);
    float rs = 1.0f / sqrtf(v / (float)(n ? n : 1) + eps);
    __m256 vr = _mm256_set1_ps(rs);
    for (k = 0; k + 8 <= n; k += 8) {
        __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + k), vm), vr);
        if (w) d = _mm256_mul_ps(d, _mm256_loadu_ps(w + k));
        if (b) d = _mm256_add_ps(d, _mm256_loadu_ps(b + k));
        _mm256_storeu_ps(y + k, d);
    }
    for (; k < n; k++) y[k] = (x[k] - mean) * rs * (w ? w[k] : 1.0f) + (b ? b[k] : 0.0f);
}
static T256 void rmsnorm256(float *y, const float *x, const float *w, int64_t n, float eps) {
    __m256 acc = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    float s = aios__hsum256(acc);
    for (; k < n; k++) s += x[k] * x[k];
    float rs = 1.0f / sqrtf(s / (float)(n ? n : 1) + eps);
    __m256 vr = _mm256_set1_ps(rs);
    for (k = 0; k + 8 <= n; k += 8) {
        __m256 d = _mm256_mul_ps(_mm256_loadu_ps(x + k), vr);
        if (w) d = _mm256_mul_ps(d, _mm256_loadu_ps(w + k));
        _mm256_storeu_ps(y + k, d);
    }
    for (; k < n; k++) y[k] = x[k] * rs * (w ? w[k] : 1.0f);
}

const aios__ktier aios__tier_avx2 = {
    .name = "avx2",
    .deq = deq256,
    .tile = tile256,
    .dot = dot256,
    .lora_bu = aios__lora_bu_256,
    .lora_ax16 = aios__lora_ax16_256,
    .lora_bu16 = aios__lora_bu16_256,
    .axpy = axpy256,
    .scale = scale256,
    .gelu = gelu256,
    .silu = silu256,
    .softmax_row = softmax256,
    .layernorm_row = layernorm256,
    .rmsnorm_row = rmsnorm256,
    .add = add256,
    .mul = mul256,
    .gemv_q = gemv_q_256,
    .gemv_f = gemv_f_256,
    .gemv_gguf = aios__gemv_gguf_avx2,
    .gemv_gguf_i8 = aios__gemv_gguf_i8_avx2,
    .gemv_q_i8_ok = aios__gemv_q_i8_avx2_ok,
    .gemv_q_i8 = aios__gemv_q_i8_avx2,
};

/* ---------------------------------------------------------------- float16 rows (the KV cache) */

T256 void aios__f32_to_f16_avx2(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = aios_f32_to_f16(src[i]);
}

T256 void aios__f16_to_f32_avx2(float *dst, const uint16_t *src, int64_t n) { f16_widen(dst, src, n); }
#endif
