/*
 * gemm.c — the register-blocked, cache-tiled matrix product for many token rows (prefill,
 * batched encode, whole-canvas diffusion forwards, the trainer's products):
 *     y (T, n_out) += x (T, n_in) @ W^T,  W (n_out, n_in) in any weight dtype.
 *
 * Key decisions (the BLIS scheme, with the weights as the packed operand):
 *  - W is packed per thread, one block of output rows x KC columns at a time, into panels of
 *    NR rows laid out column by column (panel[k][j] = W[r0 + j][k0 + k]): the micro-kernel then
 *    reads NR consecutive weights with one or two vector loads.  Packing goes through the tier's
 *    row dequantizer, so every dtype (f16, bf16, ArrowQuant, GGUF blocks) is expanded once per
 *    block into the panel — never into a whole-matrix copy — and reused by every token row.
 *  - Micro-kernel MR token rows x NR outputs of accumulators held in registers for the whole
 *    KC loop: AVX2 6 x 16 (12 ymm accumulators, 2 weight loads and 6 broadcasts per k),
 *    AVX-512 8 x 32 (16 zmm accumulators).  The old dot-product tile needed a horizontal sum
 *    per output and as many loads as FMAs; this one is bound by the FMA ports.
 *  - Loop order: per output block (threads split the blocks), per KC chunk: pack, then for
 *    each slab of MC token rows (kept in L2) each panel (kept in L1) meets the slab's rows MR at
 *    a time.  Edges: missing token rows point at a zeroed row; missing output columns are
 *    zero-padded in the panel and the tile goes through a stack buffer.
 *  - The transposed product of training's backward, dx (T, n_in) += dy (T, n_out) @ W
 *    (aios__gemm_t), runs the same loop nest with W's columns as the outputs: its panels are
 *    plain NR-wide copies of (dequantized) weight row segments, no transpose needed.
 *  - A caller that reuses a float32 W over many batches may pack it once
 *    (aios__gemm_pack_new: every panel and KC chunk as `pack` writes it); gemm_run then reads
 *    those panels in place of packing, the same bits.
 *  - The forward product writes y = bias (or 0) + x @ W^T: the first KC chunk's micro-kernel
 *    stores bias + sums, later chunks add (a separate pass that filled y with the bias and the
 *    first chunk's read of it cost ~4% of f32 prefill; the same additions, the same bits).
 *    The transposed product accumulates into dx.  Summation order differs
 *    from the dot-product path (one accumulator per output across k), so results agree with
 *    the reference to float32 rounding, not bit for bit.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/kern.h"

#define KC 256 /* columns per packed chunk */
#define MC 96  /* token rows per slab (multiple of 6 and 8) */
#define MAX_MR 8
#define MAX_NR 32

/* c (MR, NR; row stride ldc) += x rows @ panel, or with b0 (NR floats: the bias or zeros; the
 * first KC chunk) c = b0 + x rows @ panel, c's old contents never read. */
typedef void (*ukr_fn)(int64_t kc, const float *const *xr, const float *p, float *c, int64_t ldc, const float *b0);

#if defined(__x86_64__)
#define T256 __attribute__((target("avx2,fma")))
#define T512 __attribute__((target("avx512f,avx2,fma")))

/* c[i * ldc + j] (+)= sum_k xr[i][k] * p[k * 16 + j], i < 6, j < 16; b0: c = b0[j] + sum. */
static T256 void ukr_6x16(int64_t kc, const float *const *xr, const float *p, float *c, int64_t ldc, const float *b0) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    for (int64_t k = 0; k < kc; k++, p += 16) {
        const __m256 w0 = _mm256_load_ps(p), w1 = _mm256_load_ps(p + 8);
        __m256 b = _mm256_broadcast_ss(x0 + k);
        a00 = _mm256_fmadd_ps(b, w0, a00), a01 = _mm256_fmadd_ps(b, w1, a01);
        b = _mm256_broadcast_ss(x1 + k);
        a10 = _mm256_fmadd_ps(b, w0, a10), a11 = _mm256_fmadd_ps(b, w1, a11);
        b = _mm256_broadcast_ss(x2 + k);
        a20 = _mm256_fmadd_ps(b, w0, a20), a21 = _mm256_fmadd_ps(b, w1, a21);
        b = _mm256_broadcast_ss(x3 + k);
        a30 = _mm256_fmadd_ps(b, w0, a30), a31 = _mm256_fmadd_ps(b, w1, a31);
        b = _mm256_broadcast_ss(x4 + k);
        a40 = _mm256_fmadd_ps(b, w0, a40), a41 = _mm256_fmadd_ps(b, w1, a41);
        b = _mm256_broadcast_ss(x5 + k);
        a50 = _mm256_fmadd_ps(b, w0, a50), a51 = _mm256_fmadd_ps(b, w1, a51);
    }
    /* the first chunk adds the sums to the bias / zeros (what the separate fill pass left in c) */
    const __m256 b0l = b0 ? _mm256_loadu_ps(b0) : _mm256_setzero_ps(), b0h = b0 ? _mm256_loadu_ps(b0 + 8) : b0l;
#define ST(i, lo, hi)                                                                                  \
    _mm256_storeu_ps(c + (i) * ldc, _mm256_add_ps(b0 ? b0l : _mm256_loadu_ps(c + (i) * ldc), lo));     \
    _mm256_storeu_ps(c + (i) * ldc + 8, _mm256_add_ps(b0 ? b0h : _mm256_loadu_ps(c + (i) * ldc + 8), hi));
    ST(0, a00, a01) ST(1, a10, a11) ST(2, a20, a21) ST(3, a30, a31) ST(4, a40, a41) ST(5, a50, a51)
#undef ST
}

/* c[i * ldc + j] (+)= sum_k xr[i][k] * p[k * 32 + j], i < 8, j < 32; b0: c = b0[j] + sum. */
static T512 void ukr_8x32(int64_t kc, const float *const *xr, const float *p, float *c, int64_t ldc, const float *b0) {
    __m512 acc[8][2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++, p += 32) {
        const __m512 w0 = _mm512_load_ps(p), w1 = _mm512_load_ps(p + 16);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const __m512 b = _mm512_set1_ps(xr[i][k]);
            acc[i][0] = _mm512_fmadd_ps(b, w0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(b, w1, acc[i][1]);
        }
    }
    if (b0) {
        /* the first chunk: the bias / zeros + the sums, c's old contents never read */
        const __m512 bl = _mm512_loadu_ps(b0), bh = _mm512_loadu_ps(b0 + 16);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            _mm512_storeu_ps(c + i * ldc, _mm512_add_ps(bl, acc[i][0]));
            _mm512_storeu_ps(c + i * ldc + 16, _mm512_add_ps(bh, acc[i][1]));
        }
        return;
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        _mm512_storeu_ps(c + i * ldc, _mm512_add_ps(_mm512_loadu_ps(c + i * ldc), acc[i][0]));
        _mm512_storeu_ps(c + i * ldc + 16, _mm512_add_ps(_mm512_loadu_ps(c + i * ldc + 16), acc[i][1]));
    }
}
#endif

int aios__gemm_available(const aios__ktier *K) {
#if defined(__x86_64__)
    return K == &aios__tier_avx2 || K == &aios__tier_avx512;
#else
    (void)K;
    return 0;
#endif
}

#if defined(__x86_64__)
/* pp[k * NR + j] = rows[j][k] for j < NR (a multiple of 8), k < kc: 8 x 8 transposes in ymm. */
static T256 void transpose_rows(const float *const *rows, int NR, int64_t kc, float *pp) {
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int g = 0; g < NR; g += 8) {
            const float *const *r = rows + g;
            __m256 r0 = _mm256_loadu_ps(r[0] + k), r1 = _mm256_loadu_ps(r[1] + k);
            __m256 r2 = _mm256_loadu_ps(r[2] + k), r3 = _mm256_loadu_ps(r[3] + k);
            __m256 r4 = _mm256_loadu_ps(r[4] + k), r5 = _mm256_loadu_ps(r[5] + k);
            __m256 r6 = _mm256_loadu_ps(r[6] + k), r7 = _mm256_loadu_ps(r[7] + k);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *o = pp + k * NR + g;
            _mm256_store_ps(o + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_store_ps(o + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_store_ps(o + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_store_ps(o + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_store_ps(o + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_store_ps(o + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_store_ps(o + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_store_ps(o + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
    for (; k < kc; k++)
        for (int j = 0; j < NR; j++) pp[k * NR + j] = rows[j][k];
}
#else
static void transpose_rows(const float *const *rows, int NR, int64_t kc, float *pp) {
    for (int64_t k = 0; k < kc; k++)
        for (int j = 0; j < NR; j++) pp[k * NR + j] = rows[j][k];
}
#endif

/* Packs W rows r0 .. r0 + nrows - 1, columns k0 .. k0 + kc - 1 into panels of NR rows
 * (zero rows past n_out).  stage: NR x KC floats for dtypes that need dequantizing; zero: KC
 * zeros. */
static void pack(const aios__ktier *K, const aios_tensor *W, int64_t r0, int64_t nrows, int64_t k0, int64_t kc,
                 int NR, float *panel, float *stage, const float *zero) {
    const int64_t n_out = W->shape[0], n_in = W->shape[1];
    const int direct = W->dtype == AIOS_DTYPE_F32 && ((uintptr_t)W->data & 3) == 0;
    const float *rows[MAX_NR];
    for (int64_t j0 = 0; j0 < nrows; j0 += NR) {
        for (int j = 0; j < NR; j++) {
            const int64_t r = r0 + j0 + j;
            if (r >= n_out) {
                rows[j] = zero;
            } else if (direct) {
                rows[j] = (const float *)W->data + r * n_in + k0;
            } else {
                K->deq(stage + j * KC, W, r, k0, kc);
                rows[j] = stage + j * KC;
            }
        }
        transpose_rows(rows, NR, kc, panel + j0 * kc);
    }
}

/* The tier's micro-kernel and its MR x NR register tile (NULL: the tier has none). */
static ukr_fn pick_ukr(const aios__ktier *K, int *MR, int *NR) {
#if defined(__x86_64__)
    if (K == &aios__tier_avx512) return *MR = 8, *NR = 32, ukr_8x32;
    if (K == &aios__tier_avx2) return *MR = 6, *NR = 16, ukr_6x16;
#endif
    (void)K, (void)MR, (void)NR;
    return NULL;
}

/* Token rows up to which float32 weights skip the packing (gemm_small_avx512.c, AVX-512 and AVX2):
 * AIOS_GEMM_SMALL_MAX overrides (0 = never), for measuring. */
static int64_t small_max(void) {
    static int64_t v = -1;
    if (v < 0) {
        const char *e = getenv("AIOS_GEMM_SMALL_MAX");
        v = e ? atoll(e) : 48;
        if (v < 0) v = 0;
    }
    return v;
}

/* Packs the transposed operand for y += x @ W (W (n_in_x, n_y): rows k0 .. k0 + kc - 1 are the
 * inner dimension, columns c0 .. c0 + ncols - 1 the outputs): panel p holds
 * panel[k * NR + j] = W[k0 + k][c0 + p NR + j] (zero past ncols).  Each weight row segment is
 * read (or dequantized into stage, ncols floats) once and copied in NR-wide runs: no transpose. */
static void pack_t(const aios__ktier *K, const aios_tensor *W, int64_t c0, int64_t ncols, int64_t k0, int64_t kc,
                   int NR, float *panel, float *stage) {
    const int64_t n_cols = W->shape[1];
    const int direct = W->dtype == AIOS_DTYPE_F32 && ((uintptr_t)W->data & 3) == 0;
    const int64_t np = (ncols + NR - 1) / NR;
    for (int64_t k = 0; k < kc; k++) {
        const float *src;
        if (direct) {
            src = (const float *)W->data + (k0 + k) * n_cols + c0;
        } else {
            K->deq(stage, W, k0 + k, c0, ncols);
            src = stage;
        }
        for (int64_t p = 0; p < np; p++) {
            float *dst = panel + p * NR * kc + k * NR;
            const int64_t nc = AIOS_MIN((int64_t)NR, ncols - p * NR);
            memcpy(dst, src + p * NR, sizeof(float) * (size_t)nc);
            for (int64_t j = nc; j < NR; j++) dst[j] = 0.0f;
        }
    }
}

/* The BLIS loop nest shared by y += x @ W^T (trans 0: outputs are W's rows) and
 * y += x @ W (trans 1: outputs are W's columns, the inner dimension W's rows). */
static aios_status gemm_run(const aios__ktier *K, float *y, const float *x, const aios_tensor *W, int64_t T, int nth,
                            int trans, const float *pre, int store, const float *bias) {
    int MR = 0, NR = 0;
    ukr_fn ukr = pick_ukr(K, &MR, &NR);
    if (!ukr) return aios__err(AIOS_ERR_INTERNAL, "gemm: no micro-kernel for tier %s", K->name);
    const int64_t n_out = trans ? W->shape[1] : W->shape[0], n_in = trans ? W->shape[0] : W->shape[1];
    const int64_t n_panels = (n_out + NR - 1) / NR;
    /* Output blocks: at least ~3 per thread for balance, at most 8 panels (L2-sized packs).  The
     * transposed packing dequantizes column segments of quantized weights: 32-column multiples
     * keep them on GGUF block boundaries (the 32-wide blocks; K-quants take the slower edges). */
    int64_t ppb = (n_panels + (int64_t)nth * 3 - 1) / ((int64_t)nth * 3);
    ppb = AIOS_MAX(1, AIOS_MIN(8, ppb));
    if (trans && NR < 32 && W->dtype != AIOS_DTYPE_F32) ppb = (ppb + 32 / NR - 1) / (32 / NR) * (32 / NR);
    const int64_t n_blocks = (n_panels + ppb - 1) / ppb, blk_rows = ppb * NR;
    aios_status st = AIOS_OK;
#pragma omp parallel num_threads(nth)
    {
        float *panel = pre ? NULL : aligned_alloc(64, sizeof(float) * (size_t)(blk_rows * KC));
        float *stage = pre ? NULL : aligned_alloc(64, sizeof(float) * (size_t)(trans ? blk_rows : MAX_NR * KC));
        float *zero = aligned_alloc(64, sizeof(float) * KC);
        if ((!pre && (!panel || !stage)) || !zero) {
#pragma omp atomic write
            st = AIOS_ERR_NOMEM;
        } else {
            for (int i = 0; i < KC; i++) zero[i] = 0.0f;
        }
#pragma omp barrier
        if (st == AIOS_OK) {
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < n_blocks; b++) {
                const int64_t r0 = b * blk_rows, nrows = AIOS_MIN(blk_rows, n_out - r0);
                const int64_t np = (nrows + NR - 1) / NR;
                for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
                    const int64_t kc = AIOS_MIN(KC, n_in - k0);
                    /* pre: W packed once (aios__gemm_pack_new), the same panels in place */
                    const float *pan = pre ? pre + r0 * n_in + k0 * NR : panel;
                    const int64_t pstride = pre ? NR * n_in : NR * kc;
                    if (!pre) {
                        if (trans) pack_t(K, W, r0, nrows, k0, kc, NR, panel, stage);
                        else pack(K, W, r0, nrows, k0, kc, NR, panel, stage, zero);
                    }
                    for (int64_t s0 = 0; s0 < T; s0 += MC) {
                        const int64_t s1 = AIOS_MIN(T, s0 + MC);
                        for (int64_t p = 0; p < np; p++) {
                            const int64_t c0 = r0 + p * NR;
                            const int nc = (int)AIOS_MIN(NR, n_out - c0);
                            for (int64_t t0 = s0; t0 < s1; t0 += MR) {
                                const int mr = (int)AIOS_MIN(MR, s1 - t0);
                                const float *xr[MAX_MR];
                                for (int i = 0; i < MR; i++) xr[i] = i < mr ? x + (t0 + i) * n_in + k0 : zero;
                                /* store: the first chunk writes y = bias (or 0) + sums, the
                                 * same additions the fill pass and `+=` made, without them */
                                const int first = store && k0 == 0;
                                if (mr == MR && nc == NR) {
                                    const float *b0 = first ? (bias ? bias + c0 : zero) : NULL;
                                    ukr(kc, xr, pan + p * pstride, y + t0 * n_out + c0, n_out, b0);
                                } else {
                                    float tile[MAX_MR * MAX_NR] __attribute__((aligned(64))) = {0};
                                    ukr(kc, xr, pan + p * pstride, tile, NR, NULL);
                                    for (int i = 0; i < mr; i++) {
                                        float *yr = y + (t0 + i) * n_out + c0;
                                        if (first)
                                            for (int j = 0; j < nc; j++) yr[j] = (bias ? bias[c0 + j] : 0.0f) + tile[i * NR + j];
                                        else
                                            for (int j = 0; j < nc; j++) yr[j] += tile[i * NR + j];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        free(panel), free(stage), free(zero);
    }
    if (st) return aios__err(st, "gemm: out of memory for packing buffers");
    return AIOS_OK;
}

/* y = bias (or 0) + x @ W^T: few rows read W in place (gemm_small_avx512.c, which adds into y
 * filled here), else the loop nest on W's panels, packed per call or (pre) packed once, whose
 * first KC chunk stores bias + sums (no fill pass, y's old contents never read). */
static aios_status gemm_fwd(const aios__ktier *K, float *y, const float *x, const aios_tensor *W, const float *bias,
                            int64_t T, int nth, const float *pre) {
#if defined(__x86_64__)
    if ((K == &aios__tier_avx512 || K == &aios__tier_avx2) && T <= small_max() && aios__gemm_small_ok(W, T)) {
        aios__start_at_bias(y, bias, T, W->shape[0]);
        return aios__gemm_small(y, x, W, T, nth, K == &aios__tier_avx512);
    }
#endif
    return gemm_run(K, y, x, W, T, nth, 0, pre, 1, bias);
}

aios_status aios__gemm(const aios__ktier *K, float *y, const float *x, const aios_tensor *W, const float *bias,
                       int64_t T, int nth) {
    return gemm_fwd(K, y, x, W, bias, T, nth, NULL);
}

aios_status aios__gemm_packed(const aios__ktier *K, float *y, const float *x, const aios_tensor *W, const float *bias,
                              const struct aios_matmul_pack *P, int64_t T, int nth) {
    return gemm_fwd(K, y, x, W, bias, T, nth, P->panels);
}

/* Packing once: a model that runs many large batches (a server's encoder) transposed every
 * weight into panels on every product (13% of a batch-16 MiniLM encode); the panels are the
 * per-call ones, kept.  Memory: W's size again (f32), rounded up to whole panels. */
aios_status aios__gemm_pack_new(const aios__ktier *K, const aios_tensor *W, struct aios_matmul_pack **out) {
    *out = NULL;
    int MR = 0, NR = 0;
    if (!pick_ukr(K, &MR, &NR) || W->ndim != 2) return aios__err(AIOS_ERR_UNSUPPORTED, "gemm: nothing to pack for tier %s", K->name);
    const int64_t n_out = W->shape[0], n_in = W->shape[1], n_panels = (n_out + NR - 1) / NR;
    struct aios_matmul_pack *P = calloc(1, sizeof *P);
    const size_t bytes = ((size_t)n_panels * (size_t)NR * (size_t)n_in * sizeof(float) + 63) / 64 * 64;
    float *stage = aligned_alloc(64, sizeof(float) * MAX_NR * KC), *zero = aligned_alloc(64, sizeof(float) * KC);
    if (P) P->panels = aligned_alloc(64, bytes ? bytes : 64);
    if (!P || !P->panels || !stage || !zero) {
        if (P) free(P->panels);
        free(P), free(stage), free(zero);
        return aios__err(AIOS_ERR_NOMEM, "gemm: %zu bytes of packed weights", bytes);
    }
    for (int i = 0; i < KC; i++) zero[i] = 0.0f;
    for (int64_t p = 0; p < n_panels; p++)
        for (int64_t k0 = 0; k0 < n_in; k0 += KC)
            pack(K, W, p * NR, NR, k0, AIOS_MIN(KC, n_in - k0), NR, P->panels + p * NR * n_in + k0 * NR, stage, zero);
    free(stage), free(zero);
    P->K = K, P->wdata = W->data, P->n_out = n_out, P->n_in = n_in, P->NR = NR;
    *out = P;
    return AIOS_OK;
}

aios_status aios__gemm_t(const aios__ktier *K, float *dx, const float *dy, const aios_tensor *W, int64_t T, int nth) {
    return gemm_run(K, dx, dy, W, T, nth, 1, NULL, 0, NULL);
}

/* ---------------------------------------------------------------- attention as two GEMMs */

int aios__attention_gemm_ok(const aios__ktier *K, int64_t head_dim) {
#if defined(__x86_64__)
    if (K == &aios__tier_avx512) return head_dim % 32 == 0;
    if (K == &aios__tier_avx2) return head_dim % 16 == 0;
#endif
    (void)head_dim;
    return 0;
}

/*
 * Prefill attention (many queries): per kv head, K is packed once into panels of NR keys
 * (panel[d][j] = K[j0 + j][d]) and V into panels of NR dims (panel[j][c] = V[j][c0 + c]).  A
 * work item is MR query vectors of that kv head (query rows x the group's heads), whose
 * scores S = Q K^T come from the GEMM micro-kernel over head_dim, then a masked softmax per
 * row (the tier's), then O = P V from the micro-kernel again over the visible keys.  Keys past
 * the last visible key of the item's rows are skipped (the causal triangle).
 */
aios_status aios__attention_gemm(const aios__ktier *K, float *out, const float *q, const float *k, const float *v,
                                 int64_t Tq, int64_t Tk, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                                 int64_t kv_stride, const uint8_t *mask, float scale, int nth) {
    int MR = 0, NR = 0;
    ukr_fn ukr = pick_ukr(K, &MR, &NR);
    if (!ukr || head_dim % NR) return aios__err(AIOS_ERR_INTERNAL, "attention_gemm: no micro-kernel");
    const int64_t group = n_head / n_head_kv, Tkp = (Tk + NR - 1) / NR * NR;
    const int64_t kvsz = Tkp * head_dim; /* floats per kv head, K and V alike */
    float *kp = aligned_alloc(64, sizeof(float) * (size_t)(kvsz * n_head_kv));
    float *vp = aligned_alloc(64, sizeof(float) * (size_t)(kvsz * n_head_kv));
    if (!kp || !vp) {
        free(kp), free(vp);
        return aios__err(AIOS_ERR_NOMEM, "attention: packing %lld keys", (long long)Tk);
    }
    const int64_t n_kp = Tkp / NR, n_vp = head_dim / NR;
#pragma omp parallel for num_threads(nth) schedule(static) collapse(2)
    for (int64_t hk = 0; hk < n_head_kv; hk++)
        for (int64_t pj = 0; pj < n_kp; pj++) {
            float *kpp = kp + hk * kvsz + pj * NR * head_dim;
            for (int64_t j = 0; j < NR; j++) {
                const int64_t jj = pj * NR + j;
                const float *kr = k + jj * kv_stride + hk * head_dim;
                for (int64_t d = 0; d < head_dim; d++) kpp[d * NR + j] = jj < Tk ? kr[d] : 0.0f;
            }
            for (int64_t c = 0; c < n_vp; c++) {
                float *vpp = vp + hk * kvsz + c * Tkp * NR + pj * NR * NR;
                for (int64_t j = 0; j < NR; j++) {
                    const int64_t jj = pj * NR + j;
                    const float *vr = v + jj * kv_stride + hk * head_dim + c * NR;
                    for (int64_t e = 0; e < NR; e++) vpp[j * NR + e] = jj < Tk ? vr[e] : 0.0f;
                }
            }
        }
    /* work items: MR consecutive (query, head-of-group) rows of one kv head */
    const int64_t rows_per_kv = Tq * group, items_per_kv = (rows_per_kv + MR - 1) / MR;
    int fail = 0;
#pragma omp parallel num_threads(nth)
    {
        float *S = aligned_alloc(64, sizeof(float) * (size_t)(MR * Tkp));
        float *O = aligned_alloc(64, sizeof(float) * (size_t)(MR * head_dim));
        float *zero = aligned_alloc(64, sizeof(float) * (size_t)(Tkp > head_dim ? Tkp : head_dim));
        if (!S || !O || !zero) {
#pragma omp atomic write
            fail = 1;
        } else {
            memset(zero, 0, sizeof(float) * (size_t)(Tkp > head_dim ? Tkp : head_dim));
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t it = 0; it < items_per_kv * n_head_kv; it++) {
            if (!S || !O || !zero) continue;
            const int64_t hk = it / items_per_kv, r0 = (it % items_per_kv) * MR;
            const int mr = (int)AIOS_MIN(MR, rows_per_kv - r0);
            const float *xr[MAX_MR];
            int64_t qi[MAX_MR], qh[MAX_MR], vis[MAX_MR];
            int64_t jend = 0; /* one past the last key any row sees */
            for (int r = 0; r < MR; r++) {
                if (r >= mr) {
                    xr[r] = zero;
                    continue;
                }
                qi[r] = (r0 + r) / group;
                qh[r] = hk * group + (r0 + r) % group;
                xr[r] = q + (qi[r] * n_head + qh[r]) * head_dim;
                int64_t last = Tk;
                if (mask) {
                    const uint8_t *mrow = mask + qi[r] * Tk;
                    while (last > 0 && !mrow[last - 1]) last--;
                }
                vis[r] = last;
                jend = AIOS_MAX(jend, last);
            }
            const int64_t np = (jend + NR - 1) / NR;
            for (int r = 0; r < MR; r++) memset(S + r * Tkp, 0, sizeof(float) * (size_t)(np * NR));
            for (int64_t p = 0; p < np; p++)
                ukr(head_dim, xr, kp + hk * kvsz + p * NR * head_dim, S + p * NR, Tkp, NULL);
            const float *pr[MAX_MR];
            for (int r = 0; r < MR; r++) {
                pr[r] = zero;
                if (r >= mr) continue;
                float *s = S + r * Tkp;
                const uint8_t *mrow = mask ? mask + qi[r] * Tk : NULL;
                int64_t m = 0;
                for (int64_t j = 0; j < vis[r]; j++) {
                    if (mrow && !mrow[j]) {
                        s[j] = -INFINITY;
                    } else {
                        s[j] *= scale;
                        m++;
                    }
                }
                for (int64_t j = vis[r]; j < jend; j++) s[j] = -INFINITY;
                if (!m) {
                    for (int64_t j = 0; j < jend; j++) s[j] = 0.0f; /* sees nothing: zeros */
                } else {
                    K->softmax_row(s, jend);
                    for (int64_t j = 0; j < jend; j++)
                        if (j >= vis[r] || (mrow && !mrow[j])) s[j] = 0.0f;
                }
                pr[r] = s;
            }
            memset(O, 0, sizeof(float) * (size_t)(MR * head_dim));
            for (int64_t c = 0; c < n_vp; c++) ukr(jend, pr, vp + hk * kvsz + c * Tkp * NR, O + c * NR, head_dim, NULL);
            for (int r = 0; r < mr; r++) memcpy(out + (qi[r] * n_head + qh[r]) * head_dim, O + r * head_dim, sizeof(float) * (size_t)head_dim);
        }
        free(S), free(O), free(zero);
    }
    free(kp), free(vp);
    if (fail) return aios__err(AIOS_ERR_NOMEM, "attention: %lld scores", (long long)Tk);
    return AIOS_OK;
}
