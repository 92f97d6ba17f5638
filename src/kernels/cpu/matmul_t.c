/*
 * matmul_t.c — the transposed product through a frozen weight of any dtype:
 *     dx (T, n_in) (+)= dy (T, n_out) @ W (n_out, n_in)
 * the backward of y = x W^T, which training needs for every projection it passes through.
 *
 * Key decisions:
 *  - W is never inflated: rows are dequantized RT at a time into a per-thread tile through
 *    aios_tensor_row_f32 (the tier's row dequantizer), so every dtype the forward reads — f32,
 *    f16, bf16, ArrowQuant int8/int4/int2 and whatever is added to the row dequantizer later
 *    (GGUF blocks) — works here unchanged, QLoRA-style.
 *  - Threads split the token rows: each owns its rows of dx (no reduction) and walks all of
 *    W; the dequantization is repeated per thread, which costs n_out * n_in against the
 *    T_chunk * n_out * n_in multiply-adds it feeds.
 *  - Many token rows (>= 8) on the AVX2 / AVX-512 tiers: the packed, register-blocked GEMM
 *    (gemm.c aios__gemm_t, the forward's micro-kernel with W's columns as the outputs).  The
 *    tile loop below re-read and re-wrote each dx row once per 16 weight rows (4 FMAs per dx
 *    load and store); it was 37 % of a training step's CPU time on SmolLM2-135M.  Its
 *    summation order differs (float32 rounding, not bits).
 *  - Otherwise (few rows, the ref tier) the inner loop is an `omp simd` axpy of RT weight rows into one dx row, compiled twice
 *    (baseline and AVX2+FMA, chosen once from the CPU; AIOS_KERNELS=ref takes the baseline).
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/cpu/kern.h"
#include "kernels/kernels.h"

#define RT 16 /* weight rows per tile */

typedef void (*tile_fn)(float *dx, const float *c, const float *w, int64_t nr, int64_t n);

/* dx (n) += sum_o c[o] * w[o] (n), o < nr */
static void tile_base(float *dx, const float *c, const float *w, int64_t nr, int64_t n) {
    for (int64_t o = 0; o + 4 <= nr; o += 4) {
        const float c0 = c[o], c1 = c[o + 1], c2 = c[o + 2], c3 = c[o + 3];
        const float *w0 = w + o * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) dx[j] += c0 * w0[j] + c1 * w1[j] + c2 * w2[j] + c3 * w3[j];
    }
    for (int64_t o = nr & ~(int64_t)3; o < nr; o++) {
        const float co = c[o], *wo = w + o * n;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) dx[j] += co * wo[j];
    }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) static void tile_avx2(float *dx, const float *c, const float *w, int64_t nr,
                                                          int64_t n) {
    for (int64_t o = 0; o + 4 <= nr; o += 4) {
        const float c0 = c[o], c1 = c[o + 1], c2 = c[o + 2], c3 = c[o + 3];
        const float *w0 = w + o * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) dx[j] += c0 * w0[j] + c1 * w1[j] + c2 * w2[j] + c3 * w3[j];
    }
    for (int64_t o = nr & ~(int64_t)3; o < nr; o++) {
        const float co = c[o], *wo = w + o * n;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) dx[j] += co * wo[j];
    }
}
#endif

static tile_fn pick(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (strcmp(aios_kernels_tier(), "ref") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return tile_avx2;
#endif
    return tile_base;
}

aios_status aios_matmul_t(float *dx, const float *dy, const aios_tensor *W, int64_t T, int accumulate) {
    if (!dx || !dy || !W || W->ndim != 2 || T < 0)
        return aios__err(AIOS_ERR_INVALID_ARG, "matmul_t: bad arguments");
    const int64_t n_out = W->shape[0], n_in = W->shape[1];
    if (!accumulate) memset(dx, 0, (size_t)(T * n_in) * sizeof(float));
    if (T == 0 || n_out == 0) return AIOS_OK;
    /* one check of the weight (dtype, sizes) up front, so the row calls below cannot fail */
    float *probe = malloc((size_t)n_in * sizeof(float));
    if (!probe) return aios__err(AIOS_ERR_NOMEM, "matmul_t");
    aios_status s = aios_tensor_row_f32(probe, W, 0);
    free(probe);
    if (s != AIOS_OK) return s;
    int nth = aios_get_threads();
    if (nth < 1) nth = 1;
#if defined(__x86_64__)
    if (T >= 8) {
        const char *tn = aios_kernels_tier();
        const aios__ktier *K = !strcmp(tn, "avx512") ? &aios__tier_avx512 : !strcmp(tn, "avx2") ? &aios__tier_avx2 : NULL;
        if (K && aios__gemm_available(K)) return aios__gemm_t(K, dx, dy, W, T, nth);
    }
#endif
    const tile_fn fn = pick();
    if (nth > T) nth = (int)T;
    int failed = 0;
#pragma omp parallel num_threads(nth)
    {
        int id = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t chunk = (T + n - 1) / n, t0 = id * chunk, t1 = AIOS_MIN(T, t0 + chunk);
        float *tile = malloc((size_t)(RT * n_in) * sizeof(float));
        float *c = malloc((size_t)RT * sizeof(float));
        if (!tile || !c) {
#pragma omp atomic write
            failed = 1;
        } else if (t0 < t1) {
            for (int64_t o0 = 0; o0 < n_out; o0 += RT) {
                int64_t nr = AIOS_MIN((int64_t)RT, n_out - o0);
                for (int64_t o = 0; o < nr; o++) aios_tensor_row_f32(tile + o * n_in, W, o0 + o);
                for (int64_t t = t0; t < t1; t++) {
                    const float *dyt = dy + t * n_out + o0;
                    int any = 0;
                    for (int64_t o = 0; o < nr; o++) c[o] = dyt[o], any |= dyt[o] != 0;
                    if (any) fn(dx + t * n_in, c, tile, nr, n_in);
                }
            }
        }
        free(tile);
        free(c);
    }
    if (failed) return aios__err(AIOS_ERR_NOMEM, "matmul_t: tile of %lld floats", (long long)(RT * n_in));
    return AIOS_OK;
}
