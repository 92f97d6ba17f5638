/*
 * idot_avx2.h — the 256-bit integer decode GEMVs with int8 / 16-bit activations (the GGUF blocks
 * in place, the 8-row 4- / 5-bit pack), included by avx2.c twice:
 *
 *   IDOT_VNNI 0: the AVX2 tier's code, maddubs (u8 x s8 pairs to int16) then madd to int32;
 *   IDOT_VNNI 1: the same loops with AVX512-VNNI's vpdpbusd on 256-bit vectors (AVX512VL): four
 *                products straight into each int32 lane, one instruction where maddubs + add +
 *                madd took three.  For the AVX-512 tier on CPUs with AVX512_VNNI.
 *
 * The callers' bounds (|u| <= 31 or 128, |q| <= 127) keep maddubs' int16 pairs from saturating,
 * so both give the same int32 sums and therefore the same results, bit for bit (test_x16_activations
 * compares them).  Parameters: IDOT(name) names a function of this variant, IDOT_T / IDOT_TI the
 * target attributes (exported / inlined).  avx2.c's static helpers (aq_quant, quant_x32_x16,
 * gguf_chunk, bcast4, ...) are AVX2-targeted and inline into either variant.
 */

static IDOT_TI void IDOT(gemv_gguf_i8_t)(float *y, int64_t ldy, const float *x, int64_t ldx, const aios_tensor *W, int64_t r0,
                                 int64_t r1, const aios_dtype DT, const int NT, const int X16) {
    int blk = 32, bytes = 0;
    aios_gguf_block(DT, &blk, &bytes);
    const int64_t n_in = W->shape[1], row_bytes = n_in / blk * bytes;
    const int has_min = DT == AIOS_DTYPE_GGUF_Q4_1 || DT == AIOS_DTYPE_GGUF_Q5_1 || DT == AIOS_DTYPE_GGUF_Q2_K ||
                        DT == AIOS_DTYPE_GGUF_Q4_K || DT == AIOS_DTYPE_GGUF_Q5_K;
    /* signed int8 lanes (sign trick) for Q8_0 and the types whose offset varies per 16 values'
     * scale (Q3_K, Q6_K); every other type meets qx with its unsigned fields, the offset of
     * Q4_0 / Q5_0 (off d per value) going into the minimum's term */
    const int sgn = DT == AIOS_DTYPE_GGUF_Q8_0 || DT == AIOS_DTYPE_GGUF_Q3_K || DT == AIOS_DTYPE_GGUF_Q6_K;
    const float off = DT == AIOS_DTYPE_GGUF_Q4_0 ? 8.0f : DT == AIOS_DTYPE_GGUF_Q5_0 ? 16.0f : 0.0f;
    int8_t xq[3][GGUF_XCOLS] __attribute__((aligned(32)));
    int8_t xq2[3][GGUF_XCOLS] __attribute__((aligned(32)));   /* 16-bit activations: the second digits */
    float dv[3][GGUF_XCOLS / 4] __attribute__((aligned(32))); /* per 32 values: dx (16-bit: dx / 256) of each int32 lane */
    float xs[3][GGUF_XCOLS / 16], xs32[3][GGUF_XCOLS / 32];
#if !IDOT_VNNI
    const __m256i ones = _mm256_set1_epi16(1), c256 = _mm256_set1_epi16(256);
#endif
    for (int64_t c0 = 0; c0 < n_in; c0 += GGUF_XCOLS) {
        const int64_t nc = AIOS_MIN(GGUF_XCOLS, n_in - c0), nb = nc / blk;
        for (int t = 0; t < NT; t++)
            for (int64_t g = 0; g < nc / 32; g++) {
                if (X16) quant_x32_x16(x + t * ldx + c0 + 32 * g, xq[t] + 32 * g, xq2[t] + 32 * g, dv[t] + 8 * g, &xs[t][2 * g]);
                else quant_x32_dv(x + t * ldx + c0 + 32 * g, xq[t] + 32 * g, dv[t] + 8 * g, &xs[t][2 * g]);
                xs32[t][g] = xs[t][2 * g] + xs[t][2 * g + 1];
            }
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)W->data + (size_t)r * (size_t)row_bytes + (size_t)(c0 / blk * bytes);
            __m256 a[3];
            float ms[3] = {0, 0, 0};
            for (int t = 0; t < NT; t++) a[t] = _mm256_setzero_ps();
            for (int64_t bi = 0; bi < nb; bi++) {
                const uint8_t *b = row + bi * bytes;
                _mm_prefetch((const char *)b + PF_BYTES, _MM_HINT_T0);
                gguf_scales S;
                gguf_block_scales(DT, b, &S);
                for (int c = 0; c < blk / 32; c++) {
                    const __m256i q = sgn ? gguf_chunk(DT, b, c) : gguf_uchunk(DT, b, c), aq = sgn ? _mm256_sign_epi8(q, q) : q;
                    const __m256 sv = blk == 32 ? _mm256_set1_ps(S.s[0])
                                                : _mm256_set_m128(_mm_set1_ps(S.s[2 * c + 1]), _mm_set1_ps(S.s[2 * c]));
                    const float mo = off * S.s[0]; /* Q4_0 / Q5_0: the offset as a minimum */
                    const int64_t g = (bi * blk + 32 * c) / 32;
#pragma GCC unroll 3
                    for (int t = 0; t < NT; t++) {
                        const __m256i xv = _mm256_load_si256((const __m256i *)(xq[t] + 32 * g));
#if IDOT_VNNI
                        const __m256i z = _mm256_setzero_si256();
                        __m256i i32 = sgn ? _mm256_dpbusd_epi32(z, aq, _mm256_sign_epi8(xv, q)) : _mm256_dpbusd_epi32(z, q, xv);
                        if (X16) { /* 256 (first digits' sum) + second digits' sum: < 2^25 per lane */
                            const __m256i x2 = _mm256_load_si256((const __m256i *)(xq2[t] + 32 * g));
                            i32 = _mm256_add_epi32(_mm256_slli_epi32(i32, 8), sgn ? _mm256_dpbusd_epi32(z, aq, _mm256_sign_epi8(x2, q))
                                                                                 : _mm256_dpbusd_epi32(z, q, x2));
                        }
#else
                        const __m256i p16 = sgn ? _mm256_maddubs_epi16(aq, _mm256_sign_epi8(xv, q)) : _mm256_maddubs_epi16(q, xv);
                        __m256i i32;
                        if (X16) { /* 256 (first digits' sum) + second digits' sum: < 2^25 per lane */
                            const __m256i x2 = _mm256_load_si256((const __m256i *)(xq2[t] + 32 * g));
                            const __m256i p2 = sgn ? _mm256_maddubs_epi16(aq, _mm256_sign_epi8(x2, q)) : _mm256_maddubs_epi16(q, x2);
                            i32 = _mm256_add_epi32(_mm256_madd_epi16(p16, c256), _mm256_madd_epi16(p2, ones));
                        } else i32 = _mm256_madd_epi16(p16, ones);
#endif
                        a[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(sv, _mm256_load_ps(dv[t] + 8 * g)), a[t]);
                        if (has_min && DT == AIOS_DTYPE_GGUF_Q2_K)
                            ms[t] += S.m[2 * c] * xs[t][2 * g] + S.m[2 * c + 1] * xs[t][2 * g + 1];
                        else if (has_min) ms[t] += S.m[2 * c] * xs32[t][g];
                        else if (off != 0.0f) ms[t] += mo * xs32[t][g];
                    }
                }
            }
            for (int t = 0; t < NT; t++) y[t * ldy + r] += aios__hsum256(a[t]) - ms[t];
        }
    }
}

#define GGUF_NT_I8(DT)                                                                \
    case DT:                                                                          \
        if (nt == 1) IDOT(gemv_gguf_i8_t)(y, ldy, x, ldx, W, r0, r1, DT, 1, GGUF_X16);      \
        else if (nt == 2) IDOT(gemv_gguf_i8_t)(y, ldy, x, ldx, W, r0, r1, DT, 2, GGUF_X16); \
        else IDOT(gemv_gguf_i8_t)(y, ldy, x, ldx, W, r0, r1, DT, 3, GGUF_X16);              \
        break;

#define GGUF_I8_TYPES                    \
    switch (W->dtype) {                  \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q4_0) \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q4_1) \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q5_0) \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q5_1) \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q8_0) \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q2_K) \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q3_K) \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q4_K) \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q5_K) \
        GGUF_NT_I8(AIOS_DTYPE_GGUF_Q6_K) \
    default: break;                      \
    }

#if !IDOT_VNNI
#define GGUF_X16 0
IDOT_T void IDOT(aios__gemv_gguf_i8)(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                                  int64_t r0, int64_t r1) {
    GGUF_I8_TYPES
}
#undef GGUF_X16
#endif
/* The same with 16-bit activations (quant_x32_x16; mode 3, AIOS_INT8_ACT=16). */
#define GGUF_X16 1
IDOT_T void IDOT(aios__gemv_gguf_x16)(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                                   int64_t r0, int64_t r1) {
    GGUF_I8_TYPES
}
#undef GGUF_X16
#undef GGUF_NT_I8
#undef GGUF_I8_TYPES

static IDOT_TI void IDOT(gemv_q4x8_t)(float *y, int64_t ldy, const float *x, int64_t ldx, const struct aios_matmul_pack *P,
                              int64_t r0, int64_t r1, const int NT, const int MIN, const int X16, const int FIVE,
                              const int NOM) {
    const int64_t n_in = P->n_in, nb = n_in / 32;
    const size_t B = Q4X8_BLOCK_BYTES(FIVE ? 5 : 4, NOM), SC = FIVE ? 160 : 128; /* blocks of 144..192 bytes: loadu */
    aq_pass X; /* per 32 columns: q, the lanes' dx (dv[8b] = dx of the first 16, dv[8b + 4] the second's), gx */
    const __m256i nib = _mm256_set1_epi8(0x0F);
#if !IDOT_VNNI
    const __m256i ones = _mm256_set1_epi16(1), c256 = _mm256_set1_epi16(256);
#endif
    for (int64_t c0 = 0; c0 < n_in; c0 += AQ_XCOLS) {
        const int64_t nc = AIOS_MIN(AQ_XCOLS, n_in - c0);
        aq_quant(&X, x + c0, ldx, nc, 32, 0, NT, X16);
        for (int64_t r = r0; r < r1; r += 8) {
            const uint8_t *blk = P->q4 + aios__q4x8_off(P->q4_pair, r / 8, c0 / 32, P->n_out / 8, nb, B);
            const size_t S = aios__q4x8_step(P->q4_pair, r / 8, P->n_out / 8, B);
            __m256 acc[3], macc[3];
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) acc[t] = macc[t] = _mm256_setzero_ps();
            for (int64_t b = 0; b < nc / 32; b++) {
                const uint8_t *p = blk + b * S;
                _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
                __m256i lo[4], hi[4];
                for (int k = 0; k < 4; k++) {
                    const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * k));
                    lo[k] = _mm256_and_si256(v, nib);
                    hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
                }
                if (FIVE) { /* the fifth bits: bit k of a byte to lo[k]'s bit 4, bit 4 + k to hi[k]'s
                             * (16-bit shifts; what crosses into the other byte is masked off) */
                    const __m256i h = _mm256_loadu_si256((const __m256i *)(p + 128)), b4 = _mm256_set1_epi8(0x10);
                    lo[0] = _mm256_or_si256(lo[0], _mm256_and_si256(_mm256_slli_epi16(h, 4), b4));
                    lo[1] = _mm256_or_si256(lo[1], _mm256_and_si256(_mm256_slli_epi16(h, 3), b4));
                    lo[2] = _mm256_or_si256(lo[2], _mm256_and_si256(_mm256_slli_epi16(h, 2), b4));
                    lo[3] = _mm256_or_si256(lo[3], _mm256_and_si256(_mm256_slli_epi16(h, 1), b4));
                    hi[0] = _mm256_or_si256(hi[0], _mm256_and_si256(h, b4));
                    hi[1] = _mm256_or_si256(hi[1], _mm256_and_si256(_mm256_srli_epi16(h, 1), b4));
                    hi[2] = _mm256_or_si256(hi[2], _mm256_and_si256(_mm256_srli_epi16(h, 2), b4));
                    hi[3] = _mm256_or_si256(hi[3], _mm256_and_si256(_mm256_srli_epi16(h, 3), b4));
                }
                const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + SC)));
                const __m256 mz = NOM ? _mm256_setzero_ps() : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + SC + 16)));
                /* Q4_1 / Q5_1: + m sum(dx qx); else - d (8 + z) sum(dx qx), 5-bit: d (16 + z) */
                const __m256 m =
                    MIN ? mz : _mm256_mul_ps(d, _mm256_add_ps(mz, _mm256_set1_ps(FIVE ? 16.0f : 8.0f)));
#pragma GCC unroll 3
                for (int t = 0; t < NT; t++) {
                    const int8_t *q = X.q[t] + 32 * b;
#if IDOT_VNNI /* four products per int32 lane straight from vpdpbusd: the same integers */
                    __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
                    for (int k = 0; k < 4; k++) {
                        i0 = _mm256_dpbusd_epi32(i0, lo[k], bcast4(q + 4 * k));
                        i1 = _mm256_dpbusd_epi32(i1, hi[k], bcast4(q + 16 + 4 * k));
                    }
                    if (X16) { /* the second digits' sums; 256 s + u per row in int32 (< 2^23) */
                        const int8_t *q2 = X.q2[t] + 32 * b;
                        __m256i u0 = _mm256_setzero_si256(), u1 = _mm256_setzero_si256();
                        for (int k = 0; k < 4; k++) {
                            u0 = _mm256_dpbusd_epi32(u0, lo[k], bcast4(q2 + 4 * k));
                            u1 = _mm256_dpbusd_epi32(u1, hi[k], bcast4(q2 + 16 + 4 * k));
                        }
                        i0 = _mm256_add_epi32(_mm256_slli_epi32(i0, 8), u0);
                        i1 = _mm256_add_epi32(_mm256_slli_epi32(i1, 8), u1);
                    }
#else
                    __m256i s0 = _mm256_maddubs_epi16(lo[0], bcast4(q)), s1 = _mm256_maddubs_epi16(hi[0], bcast4(q + 16));
                    for (int k = 1; k < 4; k++) {
                        s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(lo[k], bcast4(q + 4 * k)));
                        s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(hi[k], bcast4(q + 16 + 4 * k)));
                    }
                    __m256i i0, i1;
                    if (X16) { /* the second digits' sums; 256 s + u per row in int32 (< 2^23) */
                        const int8_t *q2 = X.q2[t] + 32 * b;
                        __m256i u0 = _mm256_maddubs_epi16(lo[0], bcast4(q2)), u1 = _mm256_maddubs_epi16(hi[0], bcast4(q2 + 16));
                        for (int k = 1; k < 4; k++) {
                            u0 = _mm256_add_epi16(u0, _mm256_maddubs_epi16(lo[k], bcast4(q2 + 4 * k)));
                            u1 = _mm256_add_epi16(u1, _mm256_maddubs_epi16(hi[k], bcast4(q2 + 16 + 4 * k)));
                        }
                        i0 = _mm256_add_epi32(_mm256_madd_epi16(s0, c256), _mm256_madd_epi16(u0, ones));
                        i1 = _mm256_add_epi32(_mm256_madd_epi16(s1, c256), _mm256_madd_epi16(u1, ones));
                    } else {
                        i0 = _mm256_madd_epi16(s0, ones);
                        i1 = _mm256_madd_epi16(s1, ones);
                    }
#endif
                    const __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_set1_ps(X.dv[t][8 * b + 4]),
                                                     _mm256_mul_ps(_mm256_cvtepi32_ps(i0), _mm256_set1_ps(X.dv[t][8 * b])));
                    acc[t] = _mm256_fmadd_ps(f, d, acc[t]);
                    macc[t] = MIN ? _mm256_fmadd_ps(m, _mm256_set1_ps(X.gx[t][b]), macc[t])
                                  : _mm256_fnmadd_ps(m, _mm256_set1_ps(X.gx[t][b]), macc[t]);
                }
            }
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++) {
                float *yr = y + t * ldy + r;
                _mm256_storeu_ps(yr, _mm256_add_ps(_mm256_loadu_ps(yr), _mm256_add_ps(acc[t], macc[t])));
            }
        }
    }
}

#if IDOT_VNNI
/* VNNI: two 8-row blocks (rows r .. r + 15) per pass in 512-bit
 * vectors, so each broadcast of 4 activation bytes and each float step serves 16 rows (a paired
 * pack, q4_pair: the two groups' blocks alternate, one sequential stream; two streams nb * B
 * apart had run at 0.6x the 8-row loop from DRAM on Zen 4).  Every
 * lane is still one row and sees the 256-bit loop's operations in its order (the same integer
 * sums, the same conversions, FMAs and final additions), so the results are bit-identical to
 * the 8-row loop's; a last 8-row block goes to that loop. */
static IDOT_TI __m512i ld2x32(const uint8_t *a, const uint8_t *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}
static IDOT_TI __m512 ld2ph(const uint8_t *a, const uint8_t *b) {
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                                   _mm_loadu_si128((const __m128i *)b), 1));
}
static IDOT_TI __m512i bcast4x16(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm512_set1_epi32(v);
}

static IDOT_TI void gemv_q4x16_vnni_t(float *y, int64_t ldy, const float *x, int64_t ldx, const struct aios_matmul_pack *P,
                                      int64_t r0, int64_t r1, const int NT, const int MIN, const int X16, const int FIVE,
                                      const int NOM) {
    /* pairs of row groups (2h, 2h + 1) of a paired pack; anything else in 8-row steps */
    const int64_t n_in = P->n_in, nb = n_in / 32, n8 = P->n_out / 8;
    const int64_t lim = AIOS_MIN(r1, n8 / 2 * 16), r16 = P->q4_pair && r0 % 16 == 0 && lim > r0 ? r0 + (lim - r0) / 16 * 16 : r0;
    const size_t B = Q4X8_BLOCK_BYTES(FIVE ? 5 : 4, NOM), SC = FIVE ? 160 : 128;
    if (r16 > r0) {
        aq_pass X;
        const __m512i nib = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
        for (int64_t c0 = 0; c0 < n_in; c0 += AQ_XCOLS) {
            const int64_t nc = AIOS_MIN(AQ_XCOLS, n_in - c0);
            aq_quant(&X, x + c0, ldx, nc, 32, 0, NT, X16);
            for (int64_t r = r0; r < r16; r += 16) {
                const uint8_t *blk = P->q4 + aios__q4x8_off(1, r / 8, c0 / 32, n8, nb, B);
                __m512 acc[3], macc[3];
#pragma GCC unroll 3
                for (int t = 0; t < NT; t++) acc[t] = macc[t] = _mm512_setzero_ps();
                for (int64_t b = 0; b < nc / 32; b++) {
                    const uint8_t *p = blk + b * 2 * B, *p2 = p + B;
                    _mm_prefetch((const char *)p + PF_BYTES, _MM_HINT_T0);
                    _mm_prefetch((const char *)p2 + PF_BYTES, _MM_HINT_T0);
                    __m512i lo[4], hi[4];
                    for (int k = 0; k < 4; k++) {
                        const __m512i v = ld2x32(p + 32 * k, p2 + 32 * k);
                        lo[k] = _mm512_and_si512(v, nib);
                        hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
                    }
                    if (FIVE) {
                        const __m512i h = ld2x32(p + 128, p2 + 128);
                        lo[0] = _mm512_or_si512(lo[0], _mm512_and_si512(_mm512_slli_epi16(h, 4), b4));
                        lo[1] = _mm512_or_si512(lo[1], _mm512_and_si512(_mm512_slli_epi16(h, 3), b4));
                        lo[2] = _mm512_or_si512(lo[2], _mm512_and_si512(_mm512_slli_epi16(h, 2), b4));
                        lo[3] = _mm512_or_si512(lo[3], _mm512_and_si512(_mm512_slli_epi16(h, 1), b4));
                        hi[0] = _mm512_or_si512(hi[0], _mm512_and_si512(h, b4));
                        hi[1] = _mm512_or_si512(hi[1], _mm512_and_si512(_mm512_srli_epi16(h, 1), b4));
                        hi[2] = _mm512_or_si512(hi[2], _mm512_and_si512(_mm512_srli_epi16(h, 2), b4));
                        hi[3] = _mm512_or_si512(hi[3], _mm512_and_si512(_mm512_srli_epi16(h, 3), b4));
                    }
                    const __m512 d = ld2ph(p + SC, p2 + SC);
                    const __m512 mz = NOM ? _mm512_setzero_ps() : ld2ph(p + SC + 16, p2 + SC + 16);
                    const __m512 m = MIN ? mz : _mm512_mul_ps(d, _mm512_add_ps(mz, _mm512_set1_ps(FIVE ? 16.0f : 8.0f)));
#pragma GCC unroll 3
                    for (int t = 0; t < NT; t++) {
                        const int8_t *q = X.q[t] + 32 * b;
                        __m512i i0 = _mm512_setzero_si512(), i1 = _mm512_setzero_si512();
                        for (int k = 0; k < 4; k++) {
                            i0 = _mm512_dpbusd_epi32(i0, lo[k], bcast4x16(q + 4 * k));
                            i1 = _mm512_dpbusd_epi32(i1, hi[k], bcast4x16(q + 16 + 4 * k));
                        }
                        if (X16) {
                            const int8_t *q2 = X.q2[t] + 32 * b;
                            __m512i u0 = _mm512_setzero_si512(), u1 = _mm512_setzero_si512();
                            for (int k = 0; k < 4; k++) {
                                u0 = _mm512_dpbusd_epi32(u0, lo[k], bcast4x16(q2 + 4 * k));
                                u1 = _mm512_dpbusd_epi32(u1, hi[k], bcast4x16(q2 + 16 + 4 * k));
                            }
                            i0 = _mm512_add_epi32(_mm512_slli_epi32(i0, 8), u0);
                            i1 = _mm512_add_epi32(_mm512_slli_epi32(i1, 8), u1);
                        }
                        const __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), _mm512_set1_ps(X.dv[t][8 * b + 4]),
                                                         _mm512_mul_ps(_mm512_cvtepi32_ps(i0), _mm512_set1_ps(X.dv[t][8 * b])));
                        acc[t] = _mm512_fmadd_ps(f, d, acc[t]);
                        macc[t] = MIN ? _mm512_fmadd_ps(m, _mm512_set1_ps(X.gx[t][b]), macc[t])
                                      : _mm512_fnmadd_ps(m, _mm512_set1_ps(X.gx[t][b]), macc[t]);
                    }
                }
#pragma GCC unroll 3
                for (int t = 0; t < NT; t++) {
                    float *yr = y + t * ldy + r;
                    _mm512_storeu_ps(yr, _mm512_add_ps(_mm512_loadu_ps(yr), _mm512_add_ps(acc[t], macc[t])));
                }
            }
        }
    }
    if (r16 < r1) gemv_q4x8_t_vnni(y, ldy, x, ldx, P, r16, r1, NT, MIN, X16, FIVE, NOM);
}
#define Q4X8_ROWS gemv_q4x16_vnni_t
#else
#define Q4X8_ROWS IDOT(gemv_q4x8_t)
#endif

#define Q4X8_NT(MIN, X16, FIVE, NOM)                                                      \
    do {                                                                                  \
        if (nt == 1) Q4X8_ROWS(y, ldy, x, ldx, P, r0, r1, 1, MIN, X16, FIVE, NOM);      \
        else if (nt == 2) Q4X8_ROWS(y, ldy, x, ldx, P, r0, r1, 2, MIN, X16, FIVE, NOM); \
        else Q4X8_ROWS(y, ldy, x, ldx, P, r0, r1, 3, MIN, X16, FIVE, NOM);              \
    } while (0)
#if IDOT_VNNI /* only 16-bit activations take the VNNI variant (dispatch.c): x16 is 1 there */
#define Q4X8_MIN_X16(FIVE)                        \
    do {                                          \
        (void)x16;                                \
        if (P->q4_min) Q4X8_NT(1, 1, FIVE, 0);    \
        else if (P->q4_nom) Q4X8_NT(0, 1, FIVE, 1); \
        else Q4X8_NT(0, 1, FIVE, 0);              \
    } while (0)
#else
#define Q4X8_MIN_X16(FIVE)                                  \
    do {                                                    \
        if (P->q4_min && x16) Q4X8_NT(1, 1, FIVE, 0);       \
        else if (P->q4_min) Q4X8_NT(1, 0, FIVE, 0);         \
        else if (P->q4_nom && x16) Q4X8_NT(0, 1, FIVE, 1);  \
        else if (P->q4_nom) Q4X8_NT(0, 0, FIVE, 1);         \
        else if (x16) Q4X8_NT(0, 1, FIVE, 0);               \
        else Q4X8_NT(0, 0, FIVE, 0);                        \
    } while (0)
#endif

IDOT_T void IDOT(aios__gemv_q4x8)(float *y, int64_t ldy, const float *x, int64_t ldx, int nt,
                               const struct aios_matmul_pack *P, int64_t r0, int64_t r1, int x16) {
    if (P->q4_bits == 5) Q4X8_MIN_X16(1);
    else Q4X8_MIN_X16(0);
}
#undef Q4X8_NT
#undef Q4X8_MIN_X16
#undef Q4X8_ROWS
