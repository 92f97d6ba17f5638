/*
 * hsum_avx2.h — the horizontal sum and maximum of eight floats (an __m256), shared by the files
 * of the AVX2 tier (avx2.c, attn_dec_avx2.c, gemv_multi_avx2.c, lora_bf16.c) instead of a copy
 * in each.  Always inlined; the target is a subset of every caller's, so the AVX-512 files may
 * use them too.  Sum order: the two 128-bit halves, then pairs, then the last two lanes.
 */
#ifndef AIOS_KERNELS_CPU_HSUM_AVX2_H
#define AIOS_KERNELS_CPU_HSUM_AVX2_H

#if defined(__x86_64__)
#include <immintrin.h>

#define AIOS__HSUM_TI __attribute__((target("avx2"), always_inline)) inline

static AIOS__HSUM_TI float aios__hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static AIOS__HSUM_TI float aios__hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

#endif
