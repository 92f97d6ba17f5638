/*
 * gguf_simd512.h — one GGUF (ggml) 32-value chunk turned into its float32 weights in two zmm
 * registers, bit-identical to the reference dequantizer (internal; included by cpu/avx512.c's
 * single-row decode GEMV and cpu/gemv_multi_avx512.c's batched one).
 */
#ifndef AIOS_KERNELS_CPU_GGUF_SIMD512_H
#define AIOS_KERNELS_CPU_GGUF_SIMD512_H
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/gguf_simd.h"

#define GGUF_T512I __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"), always_inline)) static inline

/* Weights 32c .. 32c + 31 of block b (values 0-15 in w0, 16-31 in w1), bit-identical to the
 * reference's dequantized values; s0 / s1 the scales of values 0-15 / 16-31, m0 / m1 the
 * minimums (read only when has_min). */
GGUF_T512I void gguf_w32(aios_dtype DT, const uint8_t *b, int c, const float *s0, const float *s1, const float *m0,
                           const float *m1, int has_min, __m512 *w0, __m512 *w1) {
    const __m512 s = _mm512_set1_ps(*s0);
    if (DT == AIOS_DTYPE_GGUF_Q4_0 || DT == AIOS_DTYPE_GGUF_Q4_1 || DT == AIOS_DTYPE_GGUF_Q4_K) {
        const __m512 lut0 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        __m512 lut = _mm512_mul_ps(DT == AIOS_DTYPE_GGUF_Q4_0 ? _mm512_sub_ps(lut0, _mm512_set1_ps(8.0f)) : lut0, s);
        if (has_min) lut = _mm512_sub_ps(lut, _mm512_set1_ps(*m0));
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
        *w0 = _mm512_permutexvar_ps(v0, lut);
        *w1 = _mm512_permutexvar_ps(v1, lut);
        return;
    }
    if (DT == AIOS_DTYPE_GGUF_Q5_0 || DT == AIOS_DTYPE_GGUF_Q5_1) {
        /* 5-bit values: a 32-entry table in two registers (vpermt2ps reads an index's low 5
         * bits).  Byte j of qs holds values j (low nibble) and j + 16 (high), bit j of qh the
         * fifth bit of value j: qh broadcast to every lane and rotated right by j - 4 (value j)
         * or j + 12 (value j + 16) puts that bit at bit 4, and one bitwise select (vpternlogd
         * 0xE4: C ? A : B, C = 0x10) joins it to the nibble. */
        const __m512 lut0 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        const __m512 lut1 = _mm512_add_ps(lut0, _mm512_set1_ps(16.0f));
        __m512 ta, tb;
        if (DT == AIOS_DTYPE_GGUF_Q5_0) /* q - 16: -16..-1 then 0..15 */
            ta = _mm512_mul_ps(_mm512_sub_ps(lut0, _mm512_set1_ps(16.0f)), s), tb = _mm512_mul_ps(lut0, s);
        else
            ta = _mm512_mul_ps(lut0, s), tb = _mm512_mul_ps(lut1, s);
        if (has_min) ta = _mm512_sub_ps(ta, _mm512_set1_ps(*m0)), tb = _mm512_sub_ps(tb, _mm512_set1_ps(*m0));
        const int o = DT == AIOS_DTYPE_GGUF_Q5_0 ? 2 : 4;
        uint32_t qh;
        memcpy(&qh, b + o, 4);
        const __m512i h = _mm512_set1_epi32((int)qh), bit4 = _mm512_set1_epi32(0x10);
        const __m512i r0 = _mm512_setr_epi32(28, 29, 30, 31, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
        const __m512i r1 = _mm512_add_epi32(r0, _mm512_set1_epi32(16));
        const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + o + 4)));
        const __m512i i0 = _mm512_ternarylogic_epi32(_mm512_rorv_epi32(h, r0), v, bit4, 0xE4);
        const __m512i i1 = _mm512_ternarylogic_epi32(_mm512_rorv_epi32(h, r1), _mm512_srli_epi32(v, 4), bit4, 0xE4);
        *w0 = _mm512_permutex2var_ps(ta, i0, tb);
        *w1 = _mm512_permutex2var_ps(ta, i1, tb);
        return;
    }
    __m512 f0, f1;
    if (DT == AIOS_DTYPE_GGUF_Q8_0) {
        f0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 2))));
        f1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 18))));
    } else {
        __m256i q = gguf_chunk(DT, b, c);
        f0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
        f1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
    }
    *w0 = _mm512_mul_ps(f0, s);
    *w1 = _mm512_mul_ps(f1, _mm512_set1_ps(*s1));
    if (has_min) {
        *w0 = _mm512_sub_ps(*w0, _mm512_set1_ps(*m0));
        *w1 = _mm512_sub_ps(*w1, _mm512_set1_ps(*m1));
    }
}

#endif
#endif
