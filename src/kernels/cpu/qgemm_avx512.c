/*
 * qgemm_avx512.c — the int8 x int8 GEMM for many token rows (prefill, batched encode) on
 * AVX-512 VNNI:  y (T, n_out) += x (T, n_in) @ W^T  for ArrowQuant int8 weights with one
 * scale per output row or per tensor (optional zero points), activations rounded to int8.
 *
 * Key decisions:
 *  - Activations are quantized once per call, per token row and per group of 32 columns
 *    (scale max|x| / 127 of the group, round half to even), as GGUF's Q8_0 does — not per whole
 *    row: one outlier then costs only its own 32 columns their resolution.  The per-row
 *    scheme of the dot-product path (avx512.c, matmul_q8_vnni) costs all-MiniLM-L6-v2 0.26
 *    STS-B points; per group the error stays within the written budget (docs/encode.md).
 *  - vpdpbusd multiplies unsigned by signed bytes: activations are stored as q + 128 (u8) and
 *    the 128 * sum(w) that adds is removed by starting each group's integer accumulators at
 *    -128 * (the panel's weight sum over that group), computed at packing — free in the loop.
 *  - Weights are packed per thread (as in gemm.c), one block of output rows x KC columns at a
 *    time, into panels of 32 rows where each 4-byte column quad of the 32 rows is one zmm
 *    (panel[q][j][0..3] = W[r0 + j][k0 + 4q .. +3]); the micro-kernel holds 6 token rows x 32
 *    outputs: 12 integer accumulators for the current group, 12 float accumulators across
 *    groups (integer sum x activation group scale, one FMA per group), the weight scales
 *    applied once per tile.
 *  - Exactness: the integer products are exact; results differ from the float path by the
 *    activation rounding only (a relative error of about 1/254 of each group's largest value
 *    per element), which the caller opted into (aios_kernels_int8_activations / AIOS_INT8_ACT=1).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu/kern.h"

#define QG 32    /* activation columns per scale */
#define QKC 512  /* columns per packed chunk (multiple of QG) */
#define QMC 96   /* token rows per slab (multiple of QMR) */
#define QMR 6    /* token rows per micro-tile */
#define QNR 32   /* output rows per panel */

int aios__qgemm_i8_ok(const aios_tensor *W) {
#if defined(__x86_64__)
    if (!aios_cpu()->avx512vnni || !aios_cpu()->avx512bw || W->ndim != 2) return 0;
    const int64_t n_in = W->shape[1], gs = W->group_size;
    switch (W->dtype) {
    case AIOS_DTYPE_Q8: break;
    case AIOS_DTYPE_Q4: if (n_in % 2) return 0; break; /* rows start on a byte */
    case AIOS_DTYPE_Q2: if (n_in % 4) return 0; break;
    default: return 0;
    }
    /* groups: whole activation groups inside one row's weight group */
    return gs == 0 || (gs % QG == 0 && n_in % gs == 0);
#else
    (void)W;
    return 0;
#endif
}

#if defined(__x86_64__)
#define TQ __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

/* Row x (n) -> xu (np = n rounded up to QG; u8 = round(x / s_g) + 128, 128 past n), sx (np / QG
 * group scales s_g = max|x_g| / 127, 1 for an all-zero group), *xs = sum_g s_g sum(q_g) (the
 * quantized row's sum, for zero points) and, when xg is not NULL, xg[g] = s_g sum(q_g). */
static TQ __attribute__((noinline)) void quant_row_g32(uint8_t *xu, float *sx, float *xs, float *xg, const float *x,
                                                       int64_t n) {
    const int64_t np = (n + QG - 1) / QG * QG;
    double tot = 0;
    for (int64_t k = 0; k < np; k += QG) {
        const int64_t r = n - k;
        const __mmask16 m0 = r >= 16 ? 0xFFFF : r <= 0 ? 0 : (__mmask16)((1u << r) - 1);
        const __mmask16 m1 = r >= 32 ? 0xFFFF : r <= 16 ? 0 : (__mmask16)((1u << (r - 16)) - 1);
        const __m512 a = _mm512_maskz_loadu_ps(m0, x + k), b = _mm512_maskz_loadu_ps(m1, x + k + 16);
        const __m512 ab = _mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b));
        const float amax = _mm512_reduce_max_ps(ab);
        const float s = amax > 0 ? amax / 127.0f : 1.0f;
        const __m512 inv = _mm512_set1_ps(1.0f / s);
        /* round half to even: the default MXCSR mode of cvtps */
        const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, inv)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, inv));
        const int32_t sq = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
        const __m512i off = _mm512_set1_epi32(128);
        _mm_storeu_si128((__m128i *)(xu + k), _mm512_cvtepi32_epi8(_mm512_add_epi32(qa, off)));
        _mm_storeu_si128((__m128i *)(xu + k + 16), _mm512_cvtepi32_epi8(_mm512_add_epi32(qb, off)));
        sx[k / QG] = s;
        if (xg) xg[k / QG] = s * (float)sq;
        tot += (double)s * sq;
    }
    *xs = (float)tot;
}

/* o (n) = the int4 values (nibble - 8, MSB first) from p, n even. */
static TQ void unpack_q4(int8_t *o, const uint8_t *p, int64_t n) {
    const __m128i lo4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m128i b = _mm_loadu_si128((const __m128i *)(p + i / 2));
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), lo4), lo = _mm_and_si128(b, lo4);
        _mm_storeu_si128((__m128i *)(o + i), _mm_sub_epi8(_mm_unpacklo_epi8(hi, lo), eight));
        _mm_storeu_si128((__m128i *)(o + i + 16), _mm_sub_epi8(_mm_unpackhi_epi8(hi, lo), eight));
    }
    for (; i < n; i++) o[i] = (int8_t)(((p[i >> 1] >> ((i & 1) ? 0 : 4)) & 0xF) - 8);
}

/* Packs rows r0 .. r0 + nrows - 1 (zero past n_out), columns k0 .. k0 + kc - 1 (kc a multiple
 * of QG; zero past n_in) of the int8 / int4 / int2 weight into panels of QNR rows (int4 / int2
 * unpacked to bytes through stage, QNR x QKC), and per panel and group wn[g][j] = -128 * sum of
 * the group's weights of row j.  Grouped weights (sw not NULL): sw[g][j] = the scale of row j's
 * weight group holding activation group g, mn[g][j] = that scale x its zero point. */
static TQ void qpack(const aios_tensor *W, int64_t r0, int64_t nrows, int64_t k0, int64_t kc, int8_t *panel,
                     int32_t *wn, int8_t *stage, float *sw, float *mn) {
    const int64_t n_out = W->shape[0], n_in = W->shape[1];
    const int8_t *wq = (const int8_t *)W->data;
    const int64_t nq = kc / 4, ng = kc / QG;
    for (int64_t j0 = 0; j0 < nrows; j0 += QNR) {
        int8_t *pp = panel + j0 * kc;
        const int8_t *src[QNR];
        int64_t have[QNR], full = kc; /* quads every row of the panel has whole */
        for (int j = 0; j < QNR; j++) {
            const int64_t r = r0 + j0 + j;
            have[j] = r < n_out ? AIOS_MAX(0, AIOS_MIN(kc, n_in - k0)) : 0;
            if (W->dtype == AIOS_DTYPE_Q8) {
                src[j] = wq + (r < n_out ? r : 0) * n_in + k0;
            } else {
                int8_t *o = stage + j * QKC;
                const int64_t e0 = r * n_in + k0;
                if (W->dtype == AIOS_DTYPE_Q4 && have[j])
                    unpack_q4(o, (const uint8_t *)W->data + e0 / 2, have[j]);
                else
                    for (int64_t k = 0; k < have[j]; k++) o[k] = (int8_t)aios__q_get(W, e0 + k);
                src[j] = o;
            }
            full = AIOS_MIN(full, have[j] / 16 * 16);
            if (sw) {
                float *swp = sw + (j0 / QNR) * ng * QNR, *mnp = mn + (j0 / QNR) * ng * QNR;
                for (int64_t g = 0; g < ng; g++) {
                    float sv = 0, zv = 0;
                    if (r < n_out && k0 + g * QG < n_in) {
                        const int64_t si = (r * n_in + k0 + g * QG) / W->group_size;
                        sv = aios__q_scale(W, si), zv = aios__q_zero(W, si);
                    }
                    swp[g * QNR + j] = sv, mnp[g * QNR + j] = sv * zv;
                }
            }
        }
        /* 4 rows x 4 quads per step: one 4 x 4 transpose of dwords */
        for (int64_t q = 0; 4 * q < full; q += 4)
            for (int j = 0; j < QNR; j += 4) {
                const __m128i a = _mm_loadu_si128((const __m128i *)(src[j] + 4 * q));
                const __m128i b = _mm_loadu_si128((const __m128i *)(src[j + 1] + 4 * q));
                const __m128i c = _mm_loadu_si128((const __m128i *)(src[j + 2] + 4 * q));
                const __m128i d = _mm_loadu_si128((const __m128i *)(src[j + 3] + 4 * q));
                const __m128i ab0 = _mm_unpacklo_epi32(a, b), ab1 = _mm_unpackhi_epi32(a, b);
                const __m128i cd0 = _mm_unpacklo_epi32(c, d), cd1 = _mm_unpackhi_epi32(c, d);
                int8_t *o = pp + q * (QNR * 4) + j * 4;
                _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi64(ab0, cd0));
                _mm_storeu_si128((__m128i *)(o + QNR * 4), _mm_unpackhi_epi64(ab0, cd0));
                _mm_storeu_si128((__m128i *)(o + 2 * QNR * 4), _mm_unpacklo_epi64(ab1, cd1));
                _mm_storeu_si128((__m128i *)(o + 3 * QNR * 4), _mm_unpackhi_epi64(ab1, cd1));
            }
        for (int j = 0; j < QNR; j++) /* the rest, byte-exact with zeros past n_in / n_out */
            for (int64_t q = full / 4; q < nq; q++) {
                int8_t b[4] = {0, 0, 0, 0};
                for (int e = 0; e < 4; e++)
                    if (4 * q + e < have[j]) b[e] = src[j][4 * q + e];
                memcpy(pp + q * (QNR * 4) + j * 4, b, 4);
            }
        const __m512i ones = _mm512_set1_epi8(1), m128 = _mm512_set1_epi32(-128);
        int32_t *wp = wn + (j0 / QNR) * ng * QNR;
        for (int64_t g = 0; g < ng; g++) {
            __m512i s0 = _mm512_setzero_si512(), s1 = s0;
            for (int q = 0; q < QG / 4; q++) {
                const int8_t *p = pp + (g * (QG / 4) + q) * (QNR * 4);
                s0 = _mm512_dpbusd_epi32(s0, ones, _mm512_loadu_si512(p));
                s1 = _mm512_dpbusd_epi32(s1, ones, _mm512_loadu_si512(p + 64));
            }
            _mm512_storeu_si512(wp + g * QNR, _mm512_mullo_epi32(s0, m128));
            _mm512_storeu_si512(wp + g * QNR + 16, _mm512_mullo_epi32(s1, m128));
        }
    }
}

/* c[i * ldc + j] += sc[j] * sum_g sx[i][g] * (sum_{k in g} xu[i][k] * p[k][j] + wn[g][j])
 *                    - sz[j] * xs[i],
 * i < 6, j < 32, over ng groups (sz NULL: no zero-point term). */
static TQ void ukr_q_6x32(int64_t ng, const uint8_t *const *xr, const float *const *sr, const int8_t *p,
                          const int32_t *wn, const float *sc, const float *sz, const float *xs, float *c, int64_t ldc) {
    __m512 f[QMR][2];
#pragma GCC unroll 6
    for (int i = 0; i < QMR; i++) f[i][0] = f[i][1] = _mm512_setzero_ps();
    for (int64_t g = 0; g < ng; g++, wn += QNR) {
        const __m512i n0 = _mm512_loadu_si512(wn), n1 = _mm512_loadu_si512(wn + 16);
        __m512i a[QMR][2];
#pragma GCC unroll 6
        for (int i = 0; i < QMR; i++) a[i][0] = n0, a[i][1] = n1;
#pragma GCC unroll 8
        for (int q = 0; q < QG / 4; q++, p += QNR * 4) {
            const __m512i w0 = _mm512_loadu_si512(p), w1 = _mm512_loadu_si512(p + 64);
#pragma GCC unroll 6
            for (int i = 0; i < QMR; i++) {
                int32_t v;
                memcpy(&v, xr[i] + g * QG + q * 4, 4);
                const __m512i b = _mm512_set1_epi32(v);
                a[i][0] = _mm512_dpbusd_epi32(a[i][0], b, w0);
                a[i][1] = _mm512_dpbusd_epi32(a[i][1], b, w1);
            }
        }
#pragma GCC unroll 6
        for (int i = 0; i < QMR; i++) {
            const __m512 s = _mm512_set1_ps(sr[i][g]);
            f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[i][0]), s, f[i][0]);
            f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[i][1]), s, f[i][1]);
        }
    }
    const __m512 s0 = _mm512_loadu_ps(sc), s1 = _mm512_loadu_ps(sc + 16);
    if (sz) {
        const __m512 z0 = _mm512_loadu_ps(sz), z1 = _mm512_loadu_ps(sz + 16);
#pragma GCC unroll 6
        for (int i = 0; i < QMR; i++) {
            const __m512 xi = _mm512_set1_ps(xs[i]);
            f[i][0] = _mm512_fnmadd_ps(z0, xi, _mm512_mul_ps(f[i][0], s0));
            f[i][1] = _mm512_fnmadd_ps(z1, xi, _mm512_mul_ps(f[i][1], s1));
        }
    } else {
#pragma GCC unroll 6
        for (int i = 0; i < QMR; i++) f[i][0] = _mm512_mul_ps(f[i][0], s0), f[i][1] = _mm512_mul_ps(f[i][1], s1);
    }
#pragma GCC unroll 6
    for (int i = 0; i < QMR; i++) {
        _mm512_storeu_ps(c + i * ldc, _mm512_add_ps(f[i][0], _mm512_loadu_ps(c + i * ldc)));
        _mm512_storeu_ps(c + i * ldc + 16, _mm512_add_ps(f[i][1], _mm512_loadu_ps(c + i * ldc + 16)));
    }
}

/* Grouped weights: c[i * ldc + j] += sum_g (sx[i][g] sw[g][j] (sum_{k in g} xu[i][k] p[k][j] +
 * wn[g][j]) - mn[g][j] xg[i][g]), i < 6, j < 32, over ng groups (mn NULL: no zero points). */
static TQ void ukr_q_6x32_g(int64_t ng, const uint8_t *const *xr, const float *const *sr, const float *const *gr,
                            const int8_t *p, const int32_t *wn, const float *sw, const float *mn, float *c,
                            int64_t ldc) {
    __m512 f[QMR][2];
#pragma GCC unroll 6
    for (int i = 0; i < QMR; i++) f[i][0] = f[i][1] = _mm512_setzero_ps();
    for (int64_t g = 0; g < ng; g++, wn += QNR, sw += QNR) {
        const __m512i n0 = _mm512_loadu_si512(wn), n1 = _mm512_loadu_si512(wn + 16);
        __m512i a[QMR][2];
#pragma GCC unroll 6
        for (int i = 0; i < QMR; i++) a[i][0] = n0, a[i][1] = n1;
#pragma GCC unroll 8
        for (int q = 0; q < QG / 4; q++, p += QNR * 4) {
            const __m512i w0 = _mm512_loadu_si512(p), w1 = _mm512_loadu_si512(p + 64);
#pragma GCC unroll 6
            for (int i = 0; i < QMR; i++) {
                int32_t v;
                memcpy(&v, xr[i] + g * QG + q * 4, 4);
                const __m512i b = _mm512_set1_epi32(v);
                a[i][0] = _mm512_dpbusd_epi32(a[i][0], b, w0);
                a[i][1] = _mm512_dpbusd_epi32(a[i][1], b, w1);
            }
        }
        const __m512 s0 = _mm512_loadu_ps(sw), s1 = _mm512_loadu_ps(sw + 16);
#pragma GCC unroll 6
        for (int i = 0; i < QMR; i++) {
            const __m512 s = _mm512_set1_ps(sr[i][g]);
            f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[i][0]), _mm512_mul_ps(s0, s), f[i][0]);
            f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[i][1]), _mm512_mul_ps(s1, s), f[i][1]);
        }
        if (mn) {
            const __m512 m0 = _mm512_loadu_ps(mn + g * QNR), m1 = _mm512_loadu_ps(mn + g * QNR + 16);
#pragma GCC unroll 6
            for (int i = 0; i < QMR; i++) {
                const __m512 xg = _mm512_set1_ps(gr[i][g]);
                f[i][0] = _mm512_fnmadd_ps(m0, xg, f[i][0]);
                f[i][1] = _mm512_fnmadd_ps(m1, xg, f[i][1]);
            }
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < QMR; i++) {
        _mm512_storeu_ps(c + i * ldc, _mm512_add_ps(f[i][0], _mm512_loadu_ps(c + i * ldc)));
        _mm512_storeu_ps(c + i * ldc + 16, _mm512_add_ps(f[i][1], _mm512_loadu_ps(c + i * ldc + 16)));
    }
}

/* The activations of one call, quantized, and one thread's packing buffers. */
typedef struct {
    const uint8_t *xu;      /* (T, ldq) u8 */
    const float *sx, *xg;   /* (T, ngt) group scales; group sums s_g sum(q_g) (grouped, zero points) */
    const float *xs;        /* (T) row sums (per-row / per-tensor zero points) */
    int64_t ldq, ngt, T;
} qacts;
typedef struct {
    int8_t *panel, *stage;
    int32_t *wn;
    float *sc, *sz, *sw, *mn; /* per-row scales (x zero points), or per group (grouped) */
    const uint8_t *zrow;      /* QKC bytes of 128: a missing token row */
    const float *zsx;         /* QKC / QG zeros */
} qbufs;

/* One output block (rows r0 .. r0 + nrows - 1) of y for all T rows: per KC chunk pack, then
 * every slab of token rows meets every panel.  Kept out of line (OpenMP outlined regions do
 * not inherit target attributes). */
static TQ __attribute__((noinline)) void qgemm_block(float *y, const aios_tensor *W, const qacts *A, int64_t r0,
                                                     int64_t nrows, const qbufs *B) {
    const int64_t n_out = W->shape[0], T = A->T;
    const int64_t np = (nrows + QNR - 1) / QNR;
    const int grouped = W->group_size > 0, zp = W->zero_points != NULL;
    if (!grouped) {
        for (int64_t j = 0; j < nrows; j++) {
            const int64_t si = W->quant_axis == 0 ? r0 + j : 0;
            B->sc[j] = aios__q_scale(W, si);
            B->sz[j] = B->sc[j] * aios__q_zero(W, si); /* y -= s z sum(x_q) */
        }
    }
    for (int64_t k0 = 0; k0 < A->ldq; k0 += QKC) {
        const int64_t kc = AIOS_MIN(QKC, A->ldq - k0), ng = kc / QG, g0 = k0 / QG;
        qpack(W, r0, nrows, k0, kc, B->panel, B->wn, B->stage, grouped ? B->sw : NULL, grouped ? B->mn : NULL);
        for (int64_t s0 = 0; s0 < T; s0 += QMC) {
            const int64_t s1 = AIOS_MIN(T, s0 + QMC);
            for (int64_t p = 0; p < np; p++) {
                const int64_t c0 = r0 + p * QNR;
                const int nc = (int)AIOS_MIN(QNR, n_out - c0);
                const int8_t *pp = B->panel + p * QNR * kc;
                const int32_t *wp = B->wn + p * ng * QNR;
                for (int64_t t0 = s0; t0 < s1; t0 += QMR) {
                    const int mr = (int)AIOS_MIN(QMR, s1 - t0);
                    const uint8_t *xr[QMR];
                    const float *sr[QMR], *gr[QMR];
                    float xsr[QMR];
                    for (int i = 0; i < QMR; i++) {
                        xr[i] = i < mr ? A->xu + (t0 + i) * A->ldq + k0 : B->zrow;
                        sr[i] = i < mr ? A->sx + (t0 + i) * A->ngt + g0 : B->zsx;
                        gr[i] = i < mr && A->xg ? A->xg + (t0 + i) * A->ngt + g0 : B->zsx;
                        xsr[i] = i < mr ? A->xs[t0 + i] : 0.0f;
                    }
                    const int whole = mr == QMR && nc == QNR;
                    float tile[QMR * QNR] __attribute__((aligned(64)));
                    float *c = whole ? y + t0 * n_out + c0 : tile;
                    const int64_t ldc = whole ? n_out : QNR;
                    if (!whole) memset(tile, 0, sizeof tile);
                    if (grouped) {
                        const float *swp = B->sw + p * ng * QNR, *mnp = zp ? B->mn + p * ng * QNR : NULL;
                        ukr_q_6x32_g(ng, xr, sr, gr, pp, wp, swp, mnp, c, ldc);
                    } else {
                        /* scales past n_out are read as set (finite), their columns dropped below */
                        float scp[QNR] = {0}, szc[QNR] = {0};
                        for (int j = 0; j < nc; j++) scp[j] = B->sc[c0 - r0 + j], szc[j] = B->sz[c0 - r0 + j];
                        /* the zero-point term once, with the first chunk */
                        ukr_q_6x32(ng, xr, sr, pp, wp, scp, zp && k0 == 0 ? szc : NULL, xsr, c, ldc);
                    }
                    if (!whole)
                        for (int i = 0; i < mr; i++)
                            for (int j = 0; j < nc; j++) y[(t0 + i) * n_out + c0 + j] += tile[i * QNR + j];
                }
            }
        }
    }
}
#endif

aios_status aios__qgemm_i8(float *y, const float *x, const aios_tensor *W, int64_t T, int nth) {
#if defined(__x86_64__)
    if (!aios__qgemm_i8_ok(W)) return aios__err(AIOS_ERR_INTERNAL, "qgemm: unsupported weight or CPU");
    const int64_t n_out = W->shape[0], n_in = W->shape[1];
    const int64_t ldq = (n_in + QG - 1) / QG * QG, ngt = ldq / QG;
    const int want_xg = W->group_size > 0 && W->zero_points;
    uint8_t *xu = aligned_alloc(64, (size_t)((T * ldq + 63) / 64 * 64));
    float *sx = malloc(sizeof(float) * (size_t)(T * ngt));
    float *xs = malloc(sizeof(float) * (size_t)T);
    float *xg = want_xg ? malloc(sizeof(float) * (size_t)(T * ngt)) : NULL;
    if (!xu || !sx || !xs || (want_xg && !xg)) {
        free(xu), free(sx), free(xs), free(xg);
        return aios__err(AIOS_ERR_NOMEM, "matmul: int8 activations (%lld x %lld)", (long long)T, (long long)n_in);
    }
    const qacts A = {xu, sx, xg, xs, ldq, ngt, T};
    const int64_t n_panels = (n_out + QNR - 1) / QNR;
    int64_t ppb = (n_panels + (int64_t)nth * 3 - 1) / ((int64_t)nth * 3);
    ppb = AIOS_MAX(1, AIOS_MIN(4, ppb));
    const int64_t n_blocks = (n_panels + ppb - 1) / ppb, blk_rows = ppb * QNR, gpc = QKC / QG;
    aios_status st = AIOS_OK;
#pragma omp parallel num_threads(nth)
    {
#pragma omp for schedule(static)
        for (int64_t t = 0; t < T; t++)
            quant_row_g32(xu + t * ldq, sx + t * ngt, xs + t, xg ? xg + t * ngt : NULL, x + t * n_in, n_in);
        qbufs B;
        B.panel = aligned_alloc(64, (size_t)(blk_rows * QKC));
        B.stage = aligned_alloc(64, (size_t)(QNR * QKC));
        B.wn = aligned_alloc(64, sizeof(int32_t) * (size_t)(blk_rows * gpc));
        B.sc = malloc(sizeof(float) * (size_t)blk_rows), B.sz = malloc(sizeof(float) * (size_t)blk_rows);
        B.sw = malloc(sizeof(float) * (size_t)(blk_rows * gpc)), B.mn = malloc(sizeof(float) * (size_t)(blk_rows * gpc));
        uint8_t *zrow = aligned_alloc(64, QKC);
        float *zsx = calloc(QKC / QG, sizeof(float));
        B.zrow = zrow, B.zsx = zsx;
        if (!B.panel || !B.stage || !B.wn || !B.sc || !B.sz || !B.sw || !B.mn || !zrow || !zsx) {
#pragma omp atomic write
            st = AIOS_ERR_NOMEM;
        } else {
            memset(zrow, 128, QKC); /* q = 0 rows (sx 0): contribute nothing */
        }
#pragma omp barrier
        if (st == AIOS_OK) {
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < n_blocks; b++)
                qgemm_block(y, W, &A, b * blk_rows, AIOS_MIN(blk_rows, n_out - b * blk_rows), &B);
        }
        free(B.panel), free(B.stage), free(B.wn), free(B.sc), free(B.sz), free(B.sw), free(B.mn), free(zrow), free(zsx);
    }
    free(xu), free(sx), free(xs), free(xg);
    if (st) return aios__err(st, "qgemm: out of memory for packing buffers");
    return AIOS_OK;
#else
    (void)y, (void)x, (void)W, (void)T, (void)nth;
    return aios__err(AIOS_ERR_INTERNAL, "qgemm: not on this architecture");
#endif
}
