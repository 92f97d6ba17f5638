/*
 * gemv_multi_avx512.c — the batched decode GEMV (4..16 token rows) on GGUF block weights,
 * AVX-512: 4 weight rows x 4 tokens of 16-lane accumulators per register tile.  The body is
 * gemv_multi.h; here the vector width and the exact block decoder.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/gguf_simd.h"
#include "kernels/cpu/kern.h"
#include "tensor/gguf_blocks.h"

#define MV_T __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define MV_TI __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"), always_inline)) inline
#define MV_VEC __m512
#define MV_LANES 16
#define MV_ZERO() _mm512_setzero_ps()
#define MV_LOAD(p) _mm512_load_ps(p)
#define MV_LOADU(p) _mm512_loadu_ps(p)
#define MV_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MV_REDUCE(v) _mm512_reduce_add_ps(v)
#define MV_NTG 4
#define MV_DEQ32 deq32_512
#define MV_NAME aios__gemv_gguf_multi_512

/* Values 32c .. 32c + 31 of block b as float32, bit-identical to the reference: q (int8 lanes,
 * gguf_simd.h) converted, times the scale, minus the minimum where the type has one. */
static MV_TI void deq32_512(aios_dtype DT, const uint8_t *b, int c, float s0, float s1, float m0, float m1, int has_min,
                            float *out) {
    if (DT == AIOS_DTYPE_GGUF_Q4_0 || DT == AIOS_DTYPE_GGUF_Q4_1 || DT == AIOS_DTYPE_GGUF_Q4_K) {
        /* the 16 nibble values scaled once into a table (the same products and differences) and
         * indexed by the nibbles: vpermps reads an index's low 4 bits */
        const __m512 lut0 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        __m512 lut = _mm512_mul_ps(DT == AIOS_DTYPE_GGUF_Q4_0 ? _mm512_sub_ps(lut0, _mm512_set1_ps(8.0f)) : lut0,
                                   _mm512_set1_ps(s0));
        if (has_min) lut = _mm512_sub_ps(lut, _mm512_set1_ps(m0));
        __m512i v0, v1;
        if (DT == AIOS_DTYPE_GGUF_Q4_K) { /* 32 bytes: low nibbles are chunk 2i, high 2i + 1 */
            const uint8_t *q = b + 16 + 32 * (c >> 1);
            v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q));
            v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 16)));
            if (c & 1) v0 = _mm512_srli_epi32(v0, 4), v1 = _mm512_srli_epi32(v1, 4);
        } else { /* 16 bytes: byte j holds value j (low nibble) and j + 16 (high) */
            v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + (DT == AIOS_DTYPE_GGUF_Q4_0 ? 2 : 4))));
            v1 = _mm512_srli_epi32(v0, 4);
        }
        _mm512_store_ps(out, _mm512_permutexvar_ps(v0, lut));
        _mm512_store_ps(out + 16, _mm512_permutexvar_ps(v1, lut));
        return;
    }
    __m256i q = gguf_chunk(DT, b, c);
    __m512 w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))), _mm512_set1_ps(s0));
    __m512 w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))), _mm512_set1_ps(s1));
    if (has_min) {
        w0 = _mm512_sub_ps(w0, _mm512_set1_ps(m0));
        w1 = _mm512_sub_ps(w1, _mm512_set1_ps(m1));
    }
    _mm512_store_ps(out, w0);
    _mm512_store_ps(out + 16, w1);
}

#include "kernels/cpu/gemv_multi.h"

#endif
