/*
 * attn_batch_avx512.c — batched bidirectional attention (the encoder's: B sequences of L
 * tokens, a key-padding mask) on AVX-512, for head_dim a multiple of 16 up to 256.
 * Same contract as aios_attention_batch (kernels.h).
 *
 * Key decisions: one work item is one (sequence, head) pair.  Its visible keys are copied
 * once, transposed (kt[d][j]), so the scores of a query against 16 keys are head_dim
 * broadcast-FMAs with no horizontal sums (the generic path does one dot product and one
 * reduction per key, a function call each); then the tier's softmax, then the weighted sum of
 * the value rows held in head_dim / 16 accumulators.  The generic path's order of operations
 * is kept where it is cheap (scale after the dot product, maximum subtracted before the
 * softmax), so results agree with it to float32 rounding.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu/kern.h"

int aios__attention_batch_512_ok(int64_t head_dim) {
#if defined(__x86_64__)
    return head_dim > 0 && head_dim % 16 == 0 && head_dim <= 256;
#else
    (void)head_dim;
    return 0;
#endif
}

#if defined(__x86_64__)
#define TA __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

/* One (sequence, head): q, k, v, out at the sequence's first row, head offsets applied. */
static TA __attribute__((noinline)) void attend_one(float *out, int64_t qs, const float *q, const float *k,
                                                    const float *v, int64_t kv_stride, int64_t L, int64_t hd,
                                                    const uint8_t *km, float scale, float *kt, float *p,
                                                    int32_t *idx) {
    int64_t m = 0;
    for (int64_t j = 0; j < L; j++)
        if (!km || km[j]) idx[m++] = (int32_t)j;
    const int64_t mp = (m + 15) / 16 * 16;
    if (!m) {
        for (int64_t i = 0; i < L; i++) memset(out + i * qs, 0, sizeof(float) * (size_t)hd);
        return;
    }
    /* kt[d * mp + j] = K[idx[j]][d], zero past m */
    for (int64_t j0 = 0; j0 < mp; j0 += 16)
        for (int64_t d = 0; d < hd; d++) {
            float *o = kt + d * mp + j0;
            for (int64_t j = 0; j < 16; j++) o[j] = j0 + j < m ? k[idx[j0 + j] * kv_stride + d] : 0.0f;
        }
    const int nc = (int)(hd / 16);
    for (int64_t i = 0; i < L; i++) {
        const float *qi = q + i * qs;
        float mx = -INFINITY;
        for (int64_t j0 = 0; j0 < mp; j0 += 16) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0;
            const float *kb = kt + j0;
            int64_t d = 0;
            for (; d + 2 <= hd; d += 2) {
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(qi[d]), _mm512_loadu_ps(kb + d * mp), a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(qi[d + 1]), _mm512_loadu_ps(kb + (d + 1) * mp), a1);
            }
            const __m512 s = _mm512_mul_ps(_mm512_set1_ps(scale), _mm512_add_ps(a0, a1));
            const __mmask16 mk = m - j0 >= 16 ? 0xFFFF : (__mmask16)((1u << (m - j0)) - 1);
            _mm512_mask_storeu_ps(p + j0, mk, s);
            mx = fmaxf(mx, _mm512_mask_reduce_max_ps(mk, s));
        }
        for (int64_t j = 0; j < m; j++) p[j] -= mx;
        aios__tier_avx512.softmax_row(p, m);
        __m512 acc[16];
        for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
        for (int64_t j = 0; j < m; j++) {
            const __m512 pj = _mm512_set1_ps(p[j]);
            const float *vr = v + (int64_t)idx[j] * kv_stride;
            for (int c = 0; c < nc; c++) acc[c] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vr + 16 * c), acc[c]);
        }
        for (int c = 0; c < nc; c++) _mm512_storeu_ps(out + i * qs + 16 * c, acc[c]);
    }
}
#endif

aios_status aios__attention_batch_512(float *out, const float *q, const float *k, const float *v, int64_t B, int64_t L,
                                      int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                                      const uint8_t *key_mask, float scale, int nth) {
#if defined(__x86_64__)
    const int64_t group = n_head / n_head_kv, qs = n_head * head_dim, mp = (L + 15) / 16 * 16;
    int fail = 0;
#pragma omp parallel num_threads(nth)
    {
        float *kt = aligned_alloc(64, sizeof(float) * (size_t)(mp * head_dim));
        float *p = malloc(sizeof(float) * (size_t)mp);
        int32_t *idx = malloc(sizeof(int32_t) * (size_t)mp);
        if (!kt || !p || !idx) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < B * n_head; it++) {
            if (!kt || !p || !idx) continue;
            const int64_t b = it / n_head, h = it % n_head, hk = h / group;
            attend_one(out + b * L * qs + h * head_dim, qs, q + b * L * qs + h * head_dim,
                       k + b * L * kv_stride + hk * head_dim, v + b * L * kv_stride + hk * head_dim, kv_stride, L,
                       head_dim, key_mask ? key_mask + b * L : NULL, scale, kt, p, idx);
        }
        free(kt), free(p), free(idx);
    }
    if (fail) return aios__err(AIOS_ERR_NOMEM, "attention: %lld keys", (long long)L);
    return AIOS_OK;
#else
    (void)out, (void)q, (void)k, (void)v, (void)B, (void)L, (void)n_head, (void)n_head_kv, (void)head_dim;
    (void)kv_stride, (void)key_mask, (void)scale, (void)nth;
    return aios__err(AIOS_ERR_INTERNAL, "attention: not on this architecture");
#endif
}
