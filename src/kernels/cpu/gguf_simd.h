/*
 * gguf_simd.h — unpacking GGUF (ggml) blocks in 256-bit registers, shared by the AVX2 tier and
 * the AVX-512 tier (internal; included only by cpu/avx2.c and cpu/avx512.c).
 *
 * gguf_block_scales gives a block's per-16-value scales s and minimums m (x = s q - m);
 * gguf_chunk gives values 32c .. 32c + 31 of the block as 32 small integers q in int8 lanes
 * (the stored field minus its fixed offset), in the layouts of tensor/gguf_blocks.h.  The
 * functions carry the AVX2 target, so AVX-512 functions (a superset) inline them.
 */
#ifndef AIOS_KERNELS_CPU_GGUF_SIMD_H
#define AIOS_KERNELS_CPU_GGUF_SIMD_H
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/kern.h"
#include "tensor/gguf_blocks.h"

#define GGUF_T256I __attribute__((target("avx2,fma,f16c"), always_inline)) static inline

/* f16 scale at p (F16C; exact like aios_gguf_f16). */
GGUF_T256I float f16c(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8))); }

/* 32 bytes, byte j = 0xFF when bit j of u is set. */
GGUF_T256I __m256i bits32(uint32_t u) {
    const __m256i sh = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                        3, 3, 3, 3, 3, 3);
    const __m256i m = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)u), sh);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, m), m);
}
/* The 32 nibbles of 16 bytes in value order: low nibbles (values 0-15), then high (16-31). */
GGUF_T256I __m256i nibbles32(const uint8_t *p) {
    __m128i b = _mm_loadu_si128((const __m128i *)p), nib = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), nib), _mm_and_si128(b, nib));
}
GGUF_T256I __m256i srl8(__m256i v, int n, int mask) { /* (bytes >> n) & mask */
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(n)), _mm256_set1_epi8((char)mask));
}

/* Q4_K / Q5_K: the eight 32-value sub-blocks' scales d * sc and minimums dmin * m (the
 * reference's rounded products of aios_gguf_k4_scale_min's 6-bit fields).  The 12 bytes q of
 * packed fields as three little-endian words w0 w1 w2: sc 0-3 are the low 6 bits of w0's bytes,
 * m 0-3 those of w1; sc 4-7 the low nibbles of w2 with w0's top 2 bits above them, m 4-7 the
 * high nibbles of w2 with w1's top 2 bits: whole words at a time, not a field at a time
 * (a scalar extraction per sub-block and row had cost as much as the block's weights). */
GGUF_T256I void k4_scales(const uint8_t *b, __m256 *sc, __m256 *mn) {
    const uint32_t w0 = aios_gguf_u32le(b + 4), w1 = aios_gguf_u32le(b + 8), w2 = aios_gguf_u32le(b + 12);
    const uint32_t lo6 = 0x3F3F3F3Fu, nib = 0x0F0F0F0Fu, top2 = 0x03030303u;
    const uint64_t s8 = (uint64_t)(w0 & lo6) | (uint64_t)((w2 & nib) | (((w0 >> 6) & top2) << 4)) << 32;
    const uint64_t m8 = (uint64_t)(w1 & lo6) | (uint64_t)(((w2 >> 4) & nib) | (((w1 >> 6) & top2) << 4)) << 32;
    *sc = _mm256_mul_ps(_mm256_set1_ps(f16c(b)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)s8))));
    *mn = _mm256_mul_ps(_mm256_set1_ps(f16c(b + 2)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)m8))));
}

/* Per block: scales s and mins m of its 16-value sub-blocks (x = s q - m); per chunk c of 32
 * values: q. */
typedef struct {
    float s[16], m[16];
} gguf_scales;

GGUF_T256I int gguf_block_scales(aios_dtype dt, const uint8_t *b, gguf_scales *S) {
    switch (dt) {
    case AIOS_DTYPE_GGUF_Q4_0: case AIOS_DTYPE_GGUF_Q5_0: case AIOS_DTYPE_GGUF_Q8_0:
        S->s[0] = S->s[1] = f16c(b);
        return 0;
    case AIOS_DTYPE_GGUF_Q4_1: case AIOS_DTYPE_GGUF_Q5_1:
        S->s[0] = S->s[1] = f16c(b);
        S->m[0] = S->m[1] = -f16c(b + 2); /* x = d q + m: y = ... - (-m) sum x */
        return 1;
    case AIOS_DTYPE_GGUF_Q2_K: {
        float d = f16c(b + 80), dmin = f16c(b + 82);
        for (int g = 0; g < 16; g++) S->s[g] = d * (float)(b[g] & 0xF), S->m[g] = dmin * (float)(b[g] >> 4);
        return 1;
    }
    case AIOS_DTYPE_GGUF_Q3_K: {
        float d = f16c(b + 108);
        for (int g = 0; g < 16; g++) S->s[g] = d * (float)aios_gguf_k3_scale(b + 96, g);
        return 0;
    }
    case AIOS_DTYPE_GGUF_Q4_K: case AIOS_DTYPE_GGUF_Q5_K: {
        __m256 sc, mn;
        k4_scales(b, &sc, &mn);
        /* one per 16 values: each sub-block's pair repeated */
        const __m256i lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
        _mm256_storeu_ps(S->s, _mm256_permutevar8x32_ps(sc, lo));
        _mm256_storeu_ps(S->s + 8, _mm256_permutevar8x32_ps(sc, hi));
        _mm256_storeu_ps(S->m, _mm256_permutevar8x32_ps(mn, lo));
        _mm256_storeu_ps(S->m + 8, _mm256_permutevar8x32_ps(mn, hi));
        return 1;
    }
    default: { /* Q6_K: 16 int8 sub-scales, widened and converted 8 at a time (exact) */
        const __m256 d = _mm256_set1_ps(f16c(b + 208));
        const __m128i q = _mm_loadu_si128((const __m128i *)(b + 192));
        _mm256_storeu_ps(S->s, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
        _mm256_storeu_ps(S->s + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)))));
        return 0;
    }
    }
}

/* Values 32c .. 32c + 31 of block b as int8 lanes (the layouts of gguf_blocks.h). */
GGUF_T256I __m256i gguf_chunk(aios_dtype dt, const uint8_t *b, int c) {
    switch (dt) {
    case AIOS_DTYPE_GGUF_Q4_0: return _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8));
    case AIOS_DTYPE_GGUF_Q4_1: return nibbles32(b + 4);
    case AIOS_DTYPE_GGUF_Q5_0:
        return _mm256_sub_epi8(_mm256_or_si256(nibbles32(b + 6), _mm256_and_si256(bits32(aios_gguf_u32le(b + 2)),
                                                                                  _mm256_set1_epi8(0x10))),
                               _mm256_set1_epi8(16));
    case AIOS_DTYPE_GGUF_Q5_1:
        return _mm256_or_si256(nibbles32(b + 8), _mm256_and_si256(bits32(aios_gguf_u32le(b + 4)), _mm256_set1_epi8(0x10)));
    case AIOS_DTYPE_GGUF_Q8_0: return _mm256_loadu_si256((const __m256i *)(b + 2));
    case AIOS_DTYPE_GGUF_Q2_K:
        return srl8(_mm256_loadu_si256((const __m256i *)(b + 16 + 32 * (c >> 2))), 2 * (c & 3), 3);
    case AIOS_DTYPE_GGUF_Q3_K: {
        __m256i lo = srl8(_mm256_loadu_si256((const __m256i *)(b + 32 + 32 * (c >> 2))), 2 * (c & 3), 3);
        __m256i hb = srl8(_mm256_loadu_si256((const __m256i *)b), c, 1); /* 1: +0, 0: -4 */
        return _mm256_sub_epi8(_mm256_add_epi8(lo, _mm256_slli_epi16(hb, 2)), _mm256_set1_epi8(4));
    }
    case AIOS_DTYPE_GGUF_Q4_K: return srl8(_mm256_loadu_si256((const __m256i *)(b + 16 + 32 * (c >> 1))), 4 * (c & 1), 15);
    case AIOS_DTYPE_GGUF_Q5_K: {
        __m256i lo = srl8(_mm256_loadu_si256((const __m256i *)(b + 48 + 32 * (c >> 1))), 4 * (c & 1), 15);
        __m256i hb = srl8(_mm256_loadu_si256((const __m256i *)(b + 16)), c, 1);
        return _mm256_or_si256(lo, _mm256_slli_epi16(hb, 4));
    }
    default: { /* Q6_K */
        int h = c >> 2, s4 = c & 3;
        __m256i lo = srl8(_mm256_loadu_si256((const __m256i *)(b + 64 * h + 32 * (s4 & 1))), 4 * (s4 >> 1), 15);
        __m256i hi = srl8(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)), 2 * s4, 3);
        return _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
    }
    }
}


#endif
#endif
