/*
 * attn_dec_avx512.c — the fused decode attention (aios_attention, few query rows) on AVX-512:
 * 16 keys scored per step, 4 query heads x 64 dims of output accumulators.  The body is
 * attn_dec.h; here the vector width and the 16-key transpose-and-sum.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu/kern.h"

int aios__attn_dec_ok(int64_t head_dim, int64_t group) {
#if defined(__x86_64__)
    return (head_dim == 64 || head_dim == 128) && group >= 1 && group <= 16;
#else
    (void)head_dim, (void)group;
    return 0;
#endif
}

#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/vexp.h"

#define AD_T __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define AD_TI __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"), always_inline)) inline
#define AD_VEC __m512
#define AD_LANES 16
#define AD_ZERO() _mm512_setzero_ps()
#define AD_SET1(f) _mm512_set1_ps(f)
#define AD_LOADU(p) _mm512_loadu_ps(p)
#define AD_LOADH(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define AD_STOREU(p, v) _mm512_storeu_ps(p, v)
#define AD_ADD(a, b) _mm512_add_ps(a, b)
#define AD_SUB(a, b) _mm512_sub_ps(a, b)
#define AD_MUL(a, b) _mm512_mul_ps(a, b)
#define AD_MAX(a, b) _mm512_max_ps(a, b)
#define AD_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define AD_EXPZ(v) aios__exp512_z(v)
#define AD_HSUM(v) _mm512_reduce_add_ps(v)
#define AD_HMAX(v) _mm512_reduce_max_ps(v)
#define AD_SUMKEYS(t) sumkeys512(t)
#define AD_PERM {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15}
#define AD_HB 4
#define AD_NAME aios__attn_dec_512

/* Sixteen vectors to one of their sums: pairs of 256-bit halves, then 128-bit lanes, then
 * within lanes; lane 4L + i ends up holding the sum of t[L + 4i] (AD_PERM feeds the keys so). */
static AD_TI __m512 sumkeys512(const __m512 *t) {
    __m512 c[8], e[4], g[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xEE));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        e[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xDD));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        g[i] = _mm512_add_ps(_mm512_shuffle_ps(e[2 * i], e[2 * i + 1], 0x44), _mm512_shuffle_ps(e[2 * i], e[2 * i + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(g[0], g[1], 0x88), _mm512_shuffle_ps(g[0], g[1], 0xDD));
}

#include "kernels/cpu/attn_dec.h"

#endif
