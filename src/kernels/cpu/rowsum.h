/*
 * rowsum.h — the transpose-reduce that turns the per-row partial sums of a block of rows into one
 * vector of the rows' totals, in row order, shared by the LoRA B-side kernels (lora_bu.c for
 * float32 B, lora_bf16.c for bf16 B) instead of a copy in each.  Always inlined.
 *  - aios__rowsum16_512: acc[j] holds row 2j in lanes 0-7 and row 2j+1 in lanes 8-15; three levels
 *    of two-source permutes halve each row's partials (8 -> 4 -> 2 -> 1); lane i of the result is
 *    row i's sum.
 *  - aios__rowsum8_256: acc[j] holds row j's 8 partials; hadd twice, then the 128-bit halves
 *    added; lane j of the result is row j's sum.
 */
#ifndef AIOS_KERNELS_CPU_ROWSUM_H
#define AIOS_KERNELS_CPU_ROWSUM_H

#if defined(__x86_64__)
#include <immintrin.h>

#define AIOS__ROWSUM_T512 __attribute__((target("avx512f"), always_inline)) inline
#define AIOS__ROWSUM_T256 __attribute__((target("avx2"), always_inline)) inline

static AIOS__ROWSUM_T512 __m512 aios__rowsum16_512(const __m512 acc[8]) {
    const __m512i p8 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
    const __m512i q8 = _mm512_add_epi32(p8, _mm512_set1_epi32(4));
    const __m512i p4 = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
    const __m512i q4 = _mm512_add_epi32(p4, _mm512_set1_epi32(2));
    const __m512i p2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i q2 = _mm512_add_epi32(p2, _mm512_set1_epi32(1));
    __m512 l1[4], l2[2];
    for (int k = 0; k < 4; k++)
        l1[k] = _mm512_add_ps(_mm512_permutex2var_ps(acc[2 * k], p8, acc[2 * k + 1]),
                              _mm512_permutex2var_ps(acc[2 * k], q8, acc[2 * k + 1]));
    for (int k = 0; k < 2; k++)
        l2[k] = _mm512_add_ps(_mm512_permutex2var_ps(l1[2 * k], p4, l1[2 * k + 1]),
                              _mm512_permutex2var_ps(l1[2 * k], q4, l1[2 * k + 1]));
    return _mm512_add_ps(_mm512_permutex2var_ps(l2[0], p2, l2[1]), _mm512_permutex2var_ps(l2[0], q2, l2[1]));
}

static AIOS__ROWSUM_T256 __m256 aios__rowsum8_256(const __m256 acc[8]) {
    const __m256 t01 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
    const __m256 t23 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(t01, t23, 0x20), _mm256_permute2f128_ps(t01, t23, 0x31));
}
#endif

#endif
