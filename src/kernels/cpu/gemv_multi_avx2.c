/*
 * gemv_multi_avx2.c — the batched decode GEMV (4..16 token rows) on GGUF block weights, AVX2:
 * 4 weight rows x 2 tokens of 8-lane accumulators per register tile (16 ymm registers).  The
 * body is gemv_multi.h; here the vector width and the exact block decoder.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/gguf_simd.h"
#include "kernels/cpu/hsum_avx2.h"
#include "kernels/cpu/kern.h"
#include "tensor/gguf_blocks.h"

#define MV_T __attribute__((target("avx2,fma,f16c")))
#define MV_TI __attribute__((target("avx2,fma,f16c"), always_inline)) inline
#define MV_VEC __m256
#define MV_LANES 8
#define MV_ZERO() _mm256_setzero_ps()
#define MV_LOAD(p) _mm256_load_ps(p)
#define MV_LOADU(p) _mm256_loadu_ps(p)
#define MV_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define MV_REDUCE(v) aios__hsum256(v)
#define MV_NTG 2
#define MV_DEQ32 deq32_256
#define MV_NAME aios__gemv_gguf_multi_avx2

/* Values 32c .. 32c + 31 of block b as float32, bit-identical to the reference (see avx512). */
static MV_TI void deq32_256(aios_dtype DT, const uint8_t *b, int c, float s0, float s1, float m0, float m1, int has_min,
                            float *out) {
    __m256i q = gguf_chunk(DT, b, c);
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++) {
        __m256 w = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part[k])), _mm256_set1_ps(k < 2 ? s0 : s1));
        if (has_min) w = _mm256_sub_ps(w, _mm256_set1_ps(k < 2 ? m0 : m1));
        _mm256_store_ps(out + 8 * k, w);
    }
}

#include "kernels/cpu/gemv_multi.h"

#endif
