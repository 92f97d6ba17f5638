/*
 * attn_dec_avx2.c — the fused decode attention (aios_attention, few query rows) on AVX2: 8 keys
 * scored per step, 2 query heads x 32 dims of output accumulators (16 ymm registers).  The body
 * is attn_dec.h; here the vector width and the 8-key transpose-and-sum.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu/hsum_avx2.h"
#include "kernels/cpu/kern.h"
#include "kernels/cpu/vexp.h"

#define AD_T __attribute__((target("avx2,fma,f16c")))
#define AD_TI __attribute__((target("avx2,fma,f16c"), always_inline)) inline
#define AD_VEC __m256
#define AD_LANES 8
#define AD_ZERO() _mm256_setzero_ps()
#define AD_SET1(f) _mm256_set1_ps(f)
#define AD_LOADU(p) _mm256_loadu_ps(p)
#define AD_LOADH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define AD_STOREU(p, v) _mm256_storeu_ps(p, v)
#define AD_ADD(a, b) _mm256_add_ps(a, b)
#define AD_SUB(a, b) _mm256_sub_ps(a, b)
#define AD_MUL(a, b) _mm256_mul_ps(a, b)
#define AD_MAX(a, b) _mm256_max_ps(a, b)
#define AD_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define AD_EXPZ(v) aios__exp256_z(v)
#define AD_HSUM(v) aios__hsum256(v)
#define AD_HMAX(v) aios__hmax256(v)
#define AD_SUMKEYS(t) sumkeys256(t)
#define AD_PERM {0, 4, 1, 5, 2, 6, 3, 7}
#define AD_HB 2
#define AD_NAME aios__attn_dec_avx2

/* Eight vectors to one of their sums: 128-bit halves, then within lanes; lane 4L + i ends up
 * holding the sum of t[L + 2i] (AD_PERM feeds the keys so). */
static AD_TI __m256 sumkeys256(const __m256 *t) {
    __m256 c[4], g[2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        c[i] = _mm256_add_ps(_mm256_permute2f128_ps(t[2 * i], t[2 * i + 1], 0x20),
                             _mm256_permute2f128_ps(t[2 * i], t[2 * i + 1], 0x31));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        g[i] = _mm256_add_ps(_mm256_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44), _mm256_shuffle_ps(c[2 * i], c[2 * i + 1], 0xEE));
    return _mm256_add_ps(_mm256_shuffle_ps(g[0], g[1], 0x88), _mm256_shuffle_ps(g[0], g[1], 0xDD));
}

#include "kernels/cpu/attn_dec.h"

#endif
