/*
 * qdot_avx512.c — decode GEMV (1-3 tokens) with int8 activations and AVX-512 VNNI integer dot
 * products, for the GGUF block types and the grouped ArrowQuant int8 / int4 weights.
 *
 * Activations: each token row is rounded once per call (per pass of QCOLS columns) to int8
 * blocks of 16 by Q8_0's rule (dx = max|x| / 127, q = round half to even (x * (1 / dx))), the
 * rule of the AVX2 path and of the scalar reference (qdot_ref.c).  Blocks of 16 rather than
 * llama.cpp's 32 cost nothing here (the lane scales are per 16 anyway) and pass the accuracy
 * budget that blocks of 32 fail (docs/kernels.md).  Kept per 16 values: dx and xs = dx sum q.
 *
 * Weights: every 64 values become 64 unsigned bytes u = q + off (the stored field: Q4_0's
 * nibble, Q5's five bits, Q6_K's six, Q8_0's byte xor 0x80 ...), so `vpdpbusd` (u8 x s8, four
 * products per int32 lane) multiplies them with the activations without sign tricks; lane l of
 * the product covers values 4l .. 4l + 3, i.e. one 16-value sub-block per 4 lanes.  With s the
 * per-16 scale and m the minimum of the weight layout (value = s q - m):
 *
 *   y += sum_16 s dx (u . q)  -  sum_16 (s off + m) xs
 *
 * The first sum is one float FMA per 16 lanes with a per-lane scale vector (s * dx permuted to
 * the lanes); the second one FMA per 256 values.  Integer sums are exact, so the result is the
 * exact-float GEMV of the rounded activations up to float summation order (what the tests
 * check, on every tier, against qdot_ref.c and against a float GEMV of the rounded x).
 *
 * Values are handled in super-blocks of 256 (one K-quant block, eight 32-value blocks, or
 * 256 / g ArrowQuant groups); a row's last, partial super-block reads zeros past the row (the
 * activation buffers are zero-padded).  Weight bytes are prefetched PF_BYTES ahead.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/gguf_simd.h"
#include "kernels/cpu/kern.h"
#include "tensor/gguf_blocks.h"

#define TQ __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define TQI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"), always_inline)) inline

#define QCOLS 8192 /* columns per pass (activation buffers on the stack) */
#define QPF 16384  /* weight prefetch distance, bytes */

/* One pass of quantized activations, zero-padded to whole super-blocks. */
typedef struct {
    int8_t q[3][QCOLS] __attribute__((aligned(64)));
    float dx16[3][QCOLS / 16] __attribute__((aligned(64)));
    float xs16[3][QCOLS / 16] __attribute__((aligned(64)));
} qx_pass;

/* x (n values, n % 32 == 0) of one token into q, dx16, xs16; zeros from n to n_pad.  nib: q in
 * the nibble order of 4 blocks of 32 (values 0-15 of the 4 blocks, then values 16-31 of them:
 * how 4 x 16 packed bytes unpack into two registers, low nibbles then high); dx16 and xs16
 * stay in value order. */
static TQ void quant_pass(qx_pass *P, int t, const float *x, int64_t n, int64_t n_pad, int nib) {
    for (int64_t c = 0; c < n; c += 32) {
        __m512 v0 = _mm512_loadu_ps(x + c), v1 = _mm512_loadu_ps(x + c + 16);
        float a0 = _mm512_reduce_max_ps(_mm512_abs_ps(v0)), a1 = _mm512_reduce_max_ps(_mm512_abs_ps(v1));
        float d = a0 / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        float d1 = a1 / 127.0f, id1 = d1 != 0.0f ? 1.0f / d1 : 0.0f;
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id))); /* round half to even */
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id1)));
        const int64_t p0 = nib ? c / 128 * 128 + (c / 32 % 4) * 16 : c, p1 = nib ? p0 + 64 : c + 16;
        _mm_store_si128((__m128i *)(P->q[t] + p0), _mm512_cvtepi32_epi8(q0));
        _mm_store_si128((__m128i *)(P->q[t] + p1), _mm512_cvtepi32_epi8(q1));
        P->dx16[t][c / 16] = d;
        P->dx16[t][c / 16 + 1] = d1;
        P->xs16[t][c / 16] = d * (float)_mm512_reduce_add_epi32(q0);
        P->xs16[t][c / 16 + 1] = d1 * (float)_mm512_reduce_add_epi32(q1);
    }
    if (n_pad > n) {
        for (int64_t c = n; c < n_pad; c += 32) {
            const int64_t p0 = nib ? c / 128 * 128 + (c / 32 % 4) * 16 : c, p1 = nib ? p0 + 64 : c + 16;
            memset(P->q[t] + p0, 0, 16);
            memset(P->q[t] + p1, 0, 16);
        }
        for (int64_t g = n / 16; g < n_pad / 16; g++) P->dx16[t][g] = P->xs16[t][g] = 0.0f;
    }
}

/* Lane l of the scale vector for product j (values 64 j + 4 l ..) is entry 4 j + l / 4 of the
 * 16 per-16 scales. */
static TQI __m512i lane_idx_nib(int j) { /* nibble order: block 4 (j / 2) + l / 4, half j % 2 */
    return _mm512_add_epi32(_mm512_set1_epi32(8 * (j >> 1) + (j & 1)),
                            _mm512_slli_epi32(_mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                                                  13, 14, 15),
                                                                2),
                                              1));
}
static TQI __m512i lane_idx(int j) {
    return _mm512_add_epi32(_mm512_set1_epi32(4 * j), _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                                                                          10, 11, 12, 13, 14, 15),
                                                                        2));
}

/* acc[t] += the products of one super-block (u[0 .. nj), 64 values each, nj <= 4) with token t;
 * s16 the per-16 weight scales, som16 the per-16 s off + m (zero past the row). */
static TQI void sb_dot(__m512 acc[3][2], __m512 corr[3], const __m512i u[4], __m512 s16, __m512 som16,
                       const qx_pass *P, int64_t v0, const int NT, const int nj, const int nib) {
#pragma GCC unroll 3
    for (int t = 0; t < NT; t++) {
        const __m512 sd = _mm512_mul_ps(s16, _mm512_load_ps(P->dx16[t] + v0 / 16));
#pragma GCC unroll 4
        for (int j = 0; j < nj; j++) {
            __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[j],
                                            _mm512_load_si512((const void *)(P->q[t] + v0 + 64 * j)));
            acc[t][j & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(nib ? lane_idx_nib(j) : lane_idx(j), sd), acc[t][j & 1]);
        }
        corr[t] = _mm512_fmadd_ps(som16, _mm512_load_ps(P->xs16[t] + v0 / 16), corr[t]);
    }
}

/* sb_dot with a run-time count 1..4, each a constant (a run-time loop index into acc would keep
 * the accumulators in memory for the whole row). */
#define SB_DOT_TAIL(acc, corr, u, s16, som, P, v0, NT, nj)                  \
    switch (nj) {                                                        \
    case 1: sb_dot(acc, corr, u, s16, som, P, v0, NT, 1, NIB); break;         \
    case 2: sb_dot(acc, corr, u, s16, som, P, v0, NT, 2, NIB); break;         \
    case 3: sb_dot(acc, corr, u, s16, som, P, v0, NT, 3, NIB); break;         \
    default: sb_dot(acc, corr, u, s16, som, P, v0, NT, 4, NIB); break;        \
    }

/* ---------------------------------------------------------------- GGUF blocks */

/* Values 32 c .. 32 c + 31 of block b as unsigned bytes u = q + off (gguf_blocks.h layouts). */
static TQI __m256i gguf_u32(aios_dtype DT, const uint8_t *b, int c) {
    switch (DT) {
    case AIOS_DTYPE_GGUF_Q4_0: return nibbles32(b + 2);
    case AIOS_DTYPE_GGUF_Q4_1: return nibbles32(b + 4);
    case AIOS_DTYPE_GGUF_Q5_0:
        return _mm256_or_si256(nibbles32(b + 6), _mm256_and_si256(bits32(aios_gguf_u32le(b + 2)), _mm256_set1_epi8(0x10)));
    case AIOS_DTYPE_GGUF_Q8_0:
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b + 2)), _mm256_set1_epi8((char)0x80));
    case AIOS_DTYPE_GGUF_Q3_K: return _mm256_add_epi8(gguf_chunk(DT, b, c), _mm256_set1_epi8(4));
    case AIOS_DTYPE_GGUF_Q6_K: {
        int h = c >> 2, s4 = c & 3;
        __m256i lo = srl8(_mm256_loadu_si256((const __m256i *)(b + 64 * h + 32 * (s4 & 1))), 4 * (s4 >> 1), 15);
        __m256i hi = srl8(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)), 2 * s4, 3);
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    }
    default: return gguf_chunk(DT, b, c); /* Q4_1, Q5_1, Q2_K, Q4_K, Q5_K: already unsigned */
    }
}

static TQI int gguf_off(aios_dtype DT) {
    switch (DT) {
    case AIOS_DTYPE_GGUF_Q4_0: return 8;
    case AIOS_DTYPE_GGUF_Q5_0: return 16;
    case AIOS_DTYPE_GGUF_Q8_0: return 128;
    case AIOS_DTYPE_GGUF_Q3_K: return 4;
    case AIOS_DTYPE_GGUF_Q6_K: return 32;
    default: return 0;
    }
}

static TQI __m512i pair(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }

static TQI void prefetch_span(const uint8_t *p, int64_t n) {
    for (int64_t k = 0; k < n; k += 64) _mm_prefetch((const char *)p + QPF + k, _MM_HINT_T0);
}

/* Rows r0 <= r < r1, NT tokens, block type DT. */
static TQI void gemv_gguf_vnni_t(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r0,
                                 int64_t r1, const aios_dtype DT, const int NT) {
    int blk = 32, bytes = 0;
    aios_gguf_block(DT, &blk, &bytes);
    const int64_t n_in = W->shape[1], row_bytes = n_in / blk * bytes;
    const int has_min = DT == AIOS_DTYPE_GGUF_Q4_1 || DT == AIOS_DTYPE_GGUF_Q5_1 || DT == AIOS_DTYPE_GGUF_Q2_K ||
                        DT == AIOS_DTYPE_GGUF_Q4_K || DT == AIOS_DTYPE_GGUF_Q5_K;
    const __m512 voff = _mm512_set1_ps((float)gguf_off(DT));
    const int NIB = DT == AIOS_DTYPE_GGUF_Q4_0 || DT == AIOS_DTYPE_GGUF_Q4_1; /* activations in nibble order */
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    qx_pass P;
    for (int64_t c0 = 0; c0 < n_in; c0 += QCOLS) {
        const int64_t nc = AIOS_MIN(QCOLS, n_in - c0), npad = (nc + 255) / 256 * 256, nb = nc / blk, nsb = npad / 256;
        for (int t = 0; t < NT; t++) quant_pass(&P, t, x + t * ldx + c0, nc, npad, NIB);
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)W->data + (size_t)r * (size_t)row_bytes + (size_t)(c0 / blk * bytes);
            __m512 acc[3][2], corr[3];
            for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = corr[t] = _mm512_setzero_ps();
            if (blk == 32) {
                /* the f16 d (and for Q4_1 / Q5_1 the f16 min after it) of 8 blocks */
                for (int64_t sb = 0; sb < nsb; sb++) {
                    const int64_t b0 = 8 * sb;
                    const uint8_t *bp = row + b0 * bytes;
                    prefetch_span(bp, 8 * bytes);
                    __m256i h[8];
                    const __mmask8 bm = (__mmask8)(nb - b0 >= 8 ? 0xFF : (1u << (nb - b0)) - 1);
                    /* eight scalar loads, not vpgatherdd: the gather was the hottest instruction of
                     * the Q4_0 / Q8_0 decode in perf (2026-12-03); 5-11% faster decode at 1 thread */
#define GL(k) (bm >> (k) & 1 ? (int)aios_gguf_u32le(bp + (k) * bytes) : 0)
                    const __m256i g = _mm256_setr_epi32(GL(0), GL(1), GL(2), GL(3), GL(4), GL(5), GL(6), GL(7));
#undef GL
                    __m512 s16 = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_cvtph_ps(_mm256_cvtepi32_epi16(g))));
                    __m512 som = _mm512_mul_ps(s16, voff);
                    if (has_min) /* value = d q + min: the layout's m is -min */
                        som = _mm512_sub_ps(som, _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_cvtph_ps(
                                                                              _mm256_cvtepi32_epi16(_mm256_srli_epi32(g, 16))))));
                    if (NIB) { /* 4 blocks' 16 packed bytes per register, low nibbles then high */
                        const int qo = DT == AIOS_DTYPE_GGUF_Q4_0 ? 2 : 4;
                        const __m512i lo4 = _mm512_set1_epi8(0x0F);
                        __m512i u[4];
                        if (b0 + 8 <= nb) {
#pragma GCC unroll 2
                            for (int k = 0; k < 2; k++) {
                                const uint8_t *q4 = bp + 4 * k * bytes + qo;
                                __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q4));
                                v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(q4 + bytes)), 1);
                                v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(q4 + 2 * bytes)), 2);
                                v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(q4 + 3 * bytes)), 3);
                                u[2 * k] = _mm512_and_si512(v, lo4);
                                u[2 * k + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
                            }
                            sb_dot(acc, corr, u, s16, som, &P, 256 * sb, NT, 4, NIB);
                        } else {
                            for (int k = 0; k < 2; k++) {
                                __m128i l[4];
                                for (int i = 0; i < 4; i++)
                                    l[i] = b0 + 4 * k + i < nb ? _mm_loadu_si128((const __m128i *)(bp + (4 * k + i) * bytes + qo))
                                                            : _mm_setzero_si128();
                                __m512i v = _mm512_inserti32x4(_mm512_castsi128_si512(l[0]), l[1], 1);
                                v = _mm512_inserti32x4(_mm512_inserti32x4(v, l[2], 2), l[3], 3);
                                u[2 * k] = _mm512_and_si512(v, lo4);
                                u[2 * k + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
                            }
                            if (nb - b0 > 4) sb_dot(acc, corr, u, s16, som, &P, 256 * sb, NT, 4, NIB);
                            else sb_dot(acc, corr, u, s16, som, &P, 256 * sb, NT, 2, NIB);
                        }
                    } else if (b0 + 8 <= nb) {
#pragma GCC unroll 8
                        for (int k = 0; k < 8; k++) h[k] = gguf_u32(DT, bp + k * bytes, 0);
                        __m512i u[4] = {pair(h[0], h[1]), pair(h[2], h[3]), pair(h[4], h[5]), pair(h[6], h[7])};
                        sb_dot(acc, corr, u, s16, som, &P, 256 * sb, NT, 4, NIB);
                    } else { /* the row's last blocks: only the 64-value products that hold any */
                        for (int k = 0; k < 8; k++)
                            h[k] = b0 + k < nb ? gguf_u32(DT, bp + k * bytes, 0) : _mm256_setzero_si256();
                        __m512i u[4] = {pair(h[0], h[1]), pair(h[2], h[3]), pair(h[4], h[5]), pair(h[6], h[7])};
                        SB_DOT_TAIL(acc, corr, u, s16, som, &P, 256 * sb, NT, (int)(nb - b0 + 1) / 2);
                    }
                }
            } else {
                for (int64_t sb = 0; sb < nb; sb++) {
                    const uint8_t *b = row + sb * bytes;
                    prefetch_span(b, bytes);
                    gguf_scales S;
                    gguf_block_scales(DT, b, &S);
                    __m512i u[4];
#pragma GCC unroll 4
                    for (int j = 0; j < 4; j++) u[j] = pair(gguf_u32(DT, b, 2 * j), gguf_u32(DT, b, 2 * j + 1));
                    __m512 s16 = _mm512_loadu_ps(S.s);
                    __m512 som = _mm512_mul_ps(s16, voff);
                    if (has_min) som = _mm512_add_ps(som, _mm512_loadu_ps(S.m));
                    sb_dot(acc, corr, u, s16, som, &P, 256 * sb, NT, 4, NIB);
                }
            }
            for (int t = 0; t < NT; t++)
                y[t * ldy + r] += _mm512_reduce_add_ps(_mm512_sub_ps(_mm512_add_ps(acc[t][0], acc[t][1]), corr[t]));
        }
    }
}

#define GGUF_NT(DT)                                                         \
    case DT:                                                                \
        if (nt == 1) gemv_gguf_vnni_t(y, ldy, x, ldx, W, r0, r1, DT, 1);    \
        else if (nt == 2) gemv_gguf_vnni_t(y, ldy, x, ldx, W, r0, r1, DT, 2); \
        else gemv_gguf_vnni_t(y, ldy, x, ldx, W, r0, r1, DT, 3);            \
        break;

static TQ void gemv_gguf_vnni(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                              int64_t r0, int64_t r1) {
    switch (W->dtype) {
        GGUF_NT(AIOS_DTYPE_GGUF_Q4_0)
        GGUF_NT(AIOS_DTYPE_GGUF_Q4_1)
        GGUF_NT(AIOS_DTYPE_GGUF_Q5_0)
        GGUF_NT(AIOS_DTYPE_GGUF_Q5_1)
        GGUF_NT(AIOS_DTYPE_GGUF_Q8_0)
        GGUF_NT(AIOS_DTYPE_GGUF_Q2_K)
        GGUF_NT(AIOS_DTYPE_GGUF_Q3_K)
        GGUF_NT(AIOS_DTYPE_GGUF_Q4_K)
        GGUF_NT(AIOS_DTYPE_GGUF_Q5_K)
        GGUF_NT(AIOS_DTYPE_GGUF_Q6_K)
    default: break;
    }
}

/* The avx512 tier's int8-activation GGUF GEMV: VNNI where the CPU has it, else the AVX2 one. */
void aios__gemv_gguf_i8_512(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                            int64_t r0, int64_t r1) {
    if (aios_cpu()->avx512vnni) gemv_gguf_vnni(y, ldy, x, ldx, nt, W, r0, r1);
    else aios__gemv_gguf_i8_avx2(y, ldy, x, ldx, nt, W, r0, r1);
}

/* ---------------------------------------------------------------- ArrowQuant groups */

/* 64 values of an int8 (u = q xor 0x80) or int4 (MSB-first nibbles) weight from flat element e,
 * n (<= 64) of them; the rest zero. */
static TQI __m512i aq_u64(const uint8_t *raw, int64_t e, int64_t n, const aios_dtype DT) {
    const __mmask64 m = n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
    if (DT == AIOS_DTYPE_Q8)
        return _mm512_maskz_mov_epi8(m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, raw + e), _mm512_set1_epi8((char)0x80)));
    const __mmask32 mb = (__mmask32)(n >= 64 ? 0xFFFFFFFFu : ((1u << ((n + 1) / 2)) - 1));
    __m512i w = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mb, raw + e / 2));
    /* byte 2k = high nibble (element 2k), byte 2k + 1 = low nibble */
    w = _mm512_or_si512(_mm512_srli_epi16(w, 4), _mm512_slli_epi16(_mm512_and_si512(w, _mm512_set1_epi16(0x0F)), 8));
    return _mm512_maskz_mov_epi8(m, w);
}

/* n (<= 16) scales or zero points from index i, float32 or float16, as one vector (zeros past n). */
static TQI __m512 aq_scales(const void *a, int f16, int64_t i, int64_t n) {
    const __mmask16 m = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
    if (f16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)a + i));
    return _mm512_maskz_loadu_ps(m, (const float *)a + i);
}

static TQI void gemv_aq_vnni_t(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r0,
                               int64_t r1, const aios_dtype DT, const int NT) {
    const int64_t n_in = W->shape[1], g = W->group_size, gpr = n_in / g;
    const uint8_t *raw = (const uint8_t *)W->data;
    const float off = DT == AIOS_DTYPE_Q8 ? 128.0f : 8.0f;
    const int NIB = 0, f16 = W->scale_dtype == AIOS_DTYPE_F16;
    /* per-16 entry k of a super-block takes group k * 16 / g of it */
    const __m512i gidx = _mm512_srli_epi32(_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                                                12, 13, 14, 15),
                                                              _mm512_set1_epi32(16)),
                                           (unsigned)__builtin_ctzll((unsigned long long)g));
    qx_pass P;
    for (int64_t c0 = 0; c0 < n_in; c0 += QCOLS) {
        const int64_t nc = AIOS_MIN(QCOLS, n_in - c0), npad = (nc + 255) / 256 * 256, nsb = npad / 256;
        for (int t = 0; t < NT; t++) quant_pass(&P, t, x + t * ldx + c0, nc, npad, 0);
        for (int64_t r = r0; r < r1; r++) {
            __m512 acc[3][2], corr[3];
            for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = corr[t] = _mm512_setzero_ps();
            const int64_t e0 = r * n_in + c0;
            for (int64_t sb = 0; sb < nsb; sb++) {
                const int64_t v0 = 256 * sb, left = nc - v0;
                const int64_t gs = (r * gpr) + (c0 + v0) / g, ng = AIOS_MIN(256, left) / g;
                /* the super-block's scales and zero points converted in one vector each (the scalar
                 * half conversion per group had taken 19% of this decode); zero past the row */
                const __m512 sgv = aq_scales(W->scales, f16, gs, ng);
                const __m512 zgv = W->zero_points ? aq_scales(W->zero_points, f16, gs, ng) : _mm512_setzero_ps();
                _mm_prefetch((const char *)raw + (DT == AIOS_DTYPE_Q8 ? e0 + v0 : (e0 + v0) / 2) + QPF, _MM_HINT_T0);
                if (DT == AIOS_DTYPE_Q8)
                    for (int l = 1; l < 4; l++) _mm_prefetch((const char *)raw + e0 + v0 + 64 * l + QPF, _MM_HINT_T0);
                else _mm_prefetch((const char *)raw + (e0 + v0) / 2 + 64 + QPF, _MM_HINT_T0);
                __m512i u[4];
                __m512 s16 = _mm512_permutexvar_ps(gidx, sgv);
                __m512 som = _mm512_mul_ps(s16, _mm512_add_ps(_mm512_set1_ps(off), _mm512_permutexvar_ps(gidx, zgv)));
                if (left >= 256) {
#pragma GCC unroll 4
                    for (int j = 0; j < 4; j++) u[j] = aq_u64(raw, e0 + v0 + 64 * j, 64, DT);
                    sb_dot(acc, corr, u, s16, som, &P, v0, NT, 4, 0);
                } else {
                    for (int j = 0; j < 4; j++) u[j] = aq_u64(raw, e0 + v0 + 64 * j, AIOS_MAX(0, AIOS_MIN(64, left - 64 * j)), DT);
                    SB_DOT_TAIL(acc, corr, u, s16, som, &P, v0, NT, (int)(left + 63) / 64);
                }
            }
            for (int t = 0; t < NT; t++)
                y[t * ldy + r] += _mm512_reduce_add_ps(_mm512_sub_ps(_mm512_add_ps(acc[t][0], acc[t][1]), corr[t]));
        }
    }
}

static int vnni_ok(const aios_tensor *W) {
    const int64_t g = W->group_size;
    return aios_cpu()->avx512vnni && (W->dtype == AIOS_DTYPE_Q8 || W->dtype == AIOS_DTYPE_Q4) && g >= 32 && g <= 256 &&
           (g & (g - 1)) == 0 && W->shape[1] % g == 0;
}

/* VNNI where it applies, else the AVX2 version (other group sizes, one scale per row, no VNNI) */
int aios__gemv_q_i8_ok(const aios_tensor *W) { return vnni_ok(W) || aios__gemv_q_i8_avx2_ok(W); }

TQ void aios__gemv_q_i8_512(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                            int64_t r1) {
    if (!vnni_ok(W)) {
        aios__gemv_q_i8_avx2(y, ldy, x, ldx, nt, W, r0, r1);
        return;
    }
    if (W->dtype == AIOS_DTYPE_Q8) {
        if (nt == 1) gemv_aq_vnni_t(y, ldy, x, ldx, W, r0, r1, AIOS_DTYPE_Q8, 1);
        else if (nt == 2) gemv_aq_vnni_t(y, ldy, x, ldx, W, r0, r1, AIOS_DTYPE_Q8, 2);
        else gemv_aq_vnni_t(y, ldy, x, ldx, W, r0, r1, AIOS_DTYPE_Q8, 3);
    } else {
        if (nt == 1) gemv_aq_vnni_t(y, ldy, x, ldx, W, r0, r1, AIOS_DTYPE_Q4, 1);
        else if (nt == 2) gemv_aq_vnni_t(y, ldy, x, ldx, W, r0, r1, AIOS_DTYPE_Q4, 2);
        else gemv_aq_vnni_t(y, ldy, x, ldx, W, r0, r1, AIOS_DTYPE_Q4, 3);
    }
}

#endif
