/*
 * gemm_small_avx512.c — y (T, n_out) += x (T, n_in) @ W^T for float32 W and few token rows
 * (9..48: one short sentence in an encoder, a short prompt), AVX-512.
 *
 * Why: the packed GEMM (gemm.c) transposes W into panels on every call.  With a batch-1 encode
 * (MiniLM, ~10 tokens) that packing was 60% of the encode's time against 30% for the
 * micro-kernel (perf), because each packed weight meets only ~10 token rows.  Here the
 * operand that is packed is x instead — (n_in, TP) k-major, TP = 16 x NV token lanes, T x n_in
 * floats, once per call — and W is read in place, row by row:
 *     for k: xv[v] = xt[k][16 v .. 16 v + 15];  acc[i][v] += W[r0 + i][k] (broadcast) * xv[v]
 * MR = 8 output rows x NV = 1..3 vectors of 16 token rows of accumulators (8 to 24 zmm); each
 * weight is loaded once per call as an embedded broadcast, the 8 rows are 8 sequential
 * streams.  Missing token lanes are zero in xt; missing output rows reuse the tile's first row
 * and are not stored.  Summation is in k order per output (as the tile path), so results agree
 * with the reference to float32 rounding.
 *
 * AVX2 (2026-12-07: on the Zen 3 VM the batch-1 MiniLM encode spent 54% in the packing's
 * transposes): the same loop with 8-lane vectors, M output rows x NV = 1..3 vectors of 8 token
 * rows, M = 8 / 6 / 4 for NV 1 / 2 / 3 (8 / 12 / 12 ymm accumulators: enough independent FMA
 * chains, with the token vectors and one broadcast, in 16 registers); more than 24 token rows go
 * in blocks of 24 (W read once per block).  The same order of sums, so the same bits as the
 * packed GEMM there too.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/kern.h"

#define MR 8
#define SMALL_T_MAX 48

int aios__gemm_small_ok(const aios_tensor *W, int64_t T) {
#if defined(__x86_64__)
    return W->dtype == AIOS_DTYPE_F32 && W->ndim == 2 && ((uintptr_t)W->data & 3) == 0 && T > 0 && T <= SMALL_T_MAX &&
           aios_cpu()->avx2 && aios_cpu()->fma;
#else
    (void)W, (void)T;
    return 0;
#endif
}

#if defined(__x86_64__)
#include <immintrin.h>

/* acc (M x L NV) = rows w[0..M) (n_in each) against xt (n_in x L NV), then y += acc^T for nr
 * rows and T token rows; L = 16 (AVX-512) or 8 (AVX2) lanes.  Inlined per (M, NV) with every
 * loop unrolled, so the accumulators stay in registers.  Summed per SMALL_KC columns from zero,
 * each partial sum then added to y: the packed GEMM's order (gemm.c, KC chunks), so a text
 * encoded alone gives the same bits as inside a batch. */
#define UNROLL _Pragma("GCC unroll 8")
#define SMALL_KC 256 /* = gemm.c's KC */
#define T512 __attribute__((target("avx512f,avx2,fma")))
#define T256S __attribute__((target("avx2,fma")))
#define SMALL_TILE(NAME, TGT, VT, L, ZERO, LOAD, SET1, FMA, STORE)                                                   \
    static inline __attribute__((always_inline)) TGT void NAME(float *y, int64_t ldy, const float *const *w, int nr, \
                                                               const float *xt, int64_t n_in, int64_t T, const int M, \
                                                               const int NV) {                                        \
        VT acc[MR][3];                                                                                               \
        float buf[MR][48] __attribute__((aligned(64)));                                                              \
        for (int64_t k0 = 0; k0 < n_in; k0 += SMALL_KC) {                                                            \
            UNROLL for (int i = 0; i < M; i++) UNROLL for (int v = 0; v < NV; v++) acc[i][v] = ZERO();               \
            const int64_t k1 = k0 + SMALL_KC < n_in ? k0 + SMALL_KC : n_in;                                          \
            for (int64_t k = k0; k < k1; k++, xt += L * NV) {                                                        \
                VT xv[3];                                                                                            \
                UNROLL for (int v = 0; v < NV; v++) xv[v] = LOAD(xt + L * v);                                        \
                UNROLL for (int i = 0; i < M; i++) {                                                                 \
                    const VT b = SET1(w[i][k]);                                                                      \
                    UNROLL for (int v = 0; v < NV; v++) acc[i][v] = FMA(b, xv[v], acc[i][v]);                        \
                }                                                                                                    \
            }                                                                                                        \
            UNROLL for (int i = 0; i < M; i++) UNROLL for (int v = 0; v < NV; v++) STORE(buf[i] + L * v, acc[i][v]); \
            for (int64_t t = 0; t < T; t++)                                                                          \
                for (int i = 0; i < nr; i++) y[t * ldy + i] += buf[i][t];                                            \
        }                                                                                                            \
    }
SMALL_TILE(tile512, T512, __m512, 16, _mm512_setzero_ps, _mm512_load_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_store_ps)
SMALL_TILE(tile256, T256S, __m256, 8, _mm256_setzero_ps, _mm256_load_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_store_ps)
#undef SMALL_TILE

/* One out-of-line instance per (tier, rows M, token vectors NV): AVX-512 8 rows x 1..3 vectors of
 * 16; AVX2 8 / 6 / 4 rows x 1 / 2 / 3 vectors of 8 (8 / 12 / 12 ymm accumulators). */
#define TILE_FN(name, TGT, body, m, n)                                                                               \
    static TGT __attribute__((noinline)) void name(float *y, int64_t ldy, const float *const *w, int nr,             \
                                                   const float *xt, int64_t n_in, int64_t T) {                       \
        body(y, ldy, w, nr, xt, n_in, T, m, n);                                                                      \
    }
TILE_FN(tile_nv1, T512, tile512, MR, 1)
TILE_FN(tile_nv2, T512, tile512, MR, 2)
TILE_FN(tile_nv3, T512, tile512, MR, 3)
TILE_FN(tile256_nv1, T256S, tile256, 8, 1)
TILE_FN(tile256_nv2, T256S, tile256, 6, 2)
TILE_FN(tile256_nv3, T256S, tile256, 4, 3)
#undef TILE_FN

/* wide: the AVX-512 tile (16 lanes, 8 rows, up to 48 token rows at once), else the AVX2 one
 * (8 lanes, 8 / 6 / 4 rows, token rows in blocks of 24). */
aios_status aios__gemm_small(float *y, const float *x, const aios_tensor *W, int64_t T, int nth, int wide) {
    if (!aios__gemm_small_ok(W, T) || (wide && !aios_cpu()->avx512f))
        return aios__err(AIOS_ERR_INTERNAL, "gemm_small: unsupported weight or size");
    const int64_t n_out = W->shape[0], n_in = W->shape[1];
    const int lanes = wide ? 16 : 8;
    const int64_t tb_max = 3 * lanes;
    float *xt = aligned_alloc(64, sizeof(float) * (size_t)((n_in * tb_max + 15) / 16 * 16));
    if (!xt) return aios__err(AIOS_ERR_NOMEM, "matmul: %lld x %lld", (long long)T, (long long)n_in);
    const float *Wd = (const float *)W->data;
    for (int64_t t0 = 0; t0 < T; t0 += tb_max) {
        const int64_t tb = AIOS_MIN(tb_max, T - t0);
        const int nv = (int)((tb + lanes - 1) / lanes), tp = lanes * nv, mr = wide ? MR : nv == 1 ? 8 : nv == 2 ? 6 : 4;
        const int64_t ntile = (n_out + mr - 1) / mr, chunk = AIOS_MAX(1, ntile / ((int64_t)nth * 8));
        /* x's rows t0 .. t0 + tb transposed once: xt[k][t] = x[t0 + t][k], zero past tb */
        for (int64_t k = 0; k < n_in; k++) {
            float *d = xt + k * tp;
            for (int64_t t = 0; t < tb; t++) d[t] = x[(t0 + t) * n_in + k];
            for (int64_t t = tb; t < tp; t++) d[t] = 0.0f;
        }
        float *yb = y + t0 * n_out;
#pragma omp parallel for num_threads(nth) schedule(dynamic, chunk)
        for (int64_t b = 0; b < ntile; b++) {
            const int64_t r0 = b * mr;
            const int nr = (int)AIOS_MIN(mr, n_out - r0);
            const float *w[MR];
            for (int i = 0; i < mr; i++) w[i] = Wd + (r0 + (i < nr ? i : 0)) * n_in;
            if (wide) {
                if (nv == 1) tile_nv1(yb + r0, n_out, w, nr, xt, n_in, tb);
                else if (nv == 2) tile_nv2(yb + r0, n_out, w, nr, xt, n_in, tb);
                else tile_nv3(yb + r0, n_out, w, nr, xt, n_in, tb);
            } else if (nv == 1) tile256_nv1(yb + r0, n_out, w, nr, xt, n_in, tb);
            else if (nv == 2) tile256_nv2(yb + r0, n_out, w, nr, xt, n_in, tb);
            else tile256_nv3(yb + r0, n_out, w, nr, xt, n_in, tb);
        }
    }
    free(xt);
    return AIOS_OK;
}
#else
aios_status aios__gemm_small(float *y, const float *x, const aios_tensor *W, int64_t T, int nth, int wide) {
    (void)y, (void)x, (void)W, (void)T, (void)nth, (void)wide;
    return aios__err(AIOS_ERR_INTERNAL, "gemm_small: x86-64 only");
}
#endif
