/*
 * gemv_multi.h — the batched decode GEMV on GGUF block weights (4..16 token rows: the decode
 * steps of continuous batching), written once for a vector width and included by
 * gemv_multi_avx512.c (16 lanes) and gemv_multi_avx2.c (8 lanes), which define:
 *   MV_T / MV_TI   target attributes (function, always-inline function)
 *   MV_VEC         the float vector type; MV_LANES its width
 *   MV_ZERO() MV_LOAD(p) MV_LOADU(p) MV_STORE(p, v) MV_FMA(a, b, c) MV_REDUCE(v)
 *   MV_NTG         tokens per register tile (NR = 4 weight rows x MV_NTG tokens of accumulators)
 *   MV_DEQ32       deq32(DT, block, c, s0, s1, m0, m1, has_min, out): values 32c..32c+31 as floats
 *   MV_NAME        the entry point's name
 *
 * For 4 rows at a time the weights of MKC columns are decoded ONCE into an L1 buffer — the very
 * float32 values the reference dequantizer gives (s q, minus m where the type has minimums, a
 * rounded product then a rounded difference) — and that buffer meets every token row, NR x
 * MV_NTG accumulators in registers per pass.  Accumulators live in a small array between column
 * chunks and are reduced once per row: the only difference from the reference is the summation
 * order.  The single-row GEMV (T 1-3) re-expands the blocks for every 3 tokens and the staging
 * tiles (tier deq + 4 x 4 tile, reduced per KC chunk) paid a slow dequantizer and 16 horizontal
 * sums per chunk (docs/kernels.md, "Batched decode").
 */
#define MKC 1024 /* columns decoded per pass (a multiple of 256: whole K-quant blocks) */
#define MNT 16   /* most token rows */
#define MNR 4    /* weight rows per pass */

/* The NR x NT tile: acc[i][t0 + t] += w row i . x row t0 + t over kc columns. */
static MV_TI void mv_tile(MV_VEC (*acc)[MNT], const float *w, const float *x, int64_t ldx, int t0, const int NR,
                          const int NT, int64_t kc) {
    MV_VEC a[MNR][MV_NTG];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) a[i][t] = acc[i][t0 + t];
    for (int64_t k = 0; k < kc; k += MV_LANES) {
        MV_VEC wv[MNR];
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) wv[i] = MV_LOAD(w + i * MKC + k);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            MV_VEC xv = MV_LOADU(x + (t0 + t) * ldx + k);
#pragma GCC unroll 4
            for (int i = 0; i < NR; i++) a[i][t] = MV_FMA(wv[i], xv, a[i][t]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[i][t0 + t] = a[i][t];
}

#define MV_TILES(NR)                                                                                   \
    for (int t0 = 0; t0 < nt; t0 += MV_NTG) {                                                          \
        int g = nt - t0 < MV_NTG ? nt - t0 : MV_NTG;                                                   \
        if (g == MV_NTG) mv_tile(accp, wp, xk, ldx, t0, NR, MV_NTG, kc);                               \
        else if (g == 1) mv_tile(accp, wp, xk, ldx, t0, NR, 1, kc);                                    \
        else if (MV_NTG > 2 && g == 2) mv_tile(accp, wp, xk, ldx, t0, NR, MV_NTG > 2 ? 2 : 1, kc);     \
        else if (MV_NTG > 3 && g == 3) mv_tile(accp, wp, xk, ldx, t0, NR, MV_NTG > 3 ? 3 : 1, kc);     \
    }

/* Rows r0 <= r < r1 of y[t * ldy + r] += dot(W row r, x[t * ldx]) for t < nt (1..16), type DT. */
static MV_TI void mv_rows(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                          int64_t r1, const aios_dtype DT) {
    int blk = 32, bytes = 0;
    aios_gguf_block(DT, &blk, &bytes);
    const int64_t nb = W->shape[1] / blk, bpc = MKC / blk;
    const size_t row_bytes = (size_t)nb * (size_t)bytes;
    float wbuf[MNR * MKC] __attribute__((aligned(64)));
    MV_VEC acc[MNR][MNT];
    for (int64_t r = r0; r < r1; r += MNR) {
        const int nr = (int)(r1 - r < MNR ? r1 - r : MNR);
        for (int i = 0; i < nr; i++)
            for (int t = 0; t < nt; t++) acc[i][t] = MV_ZERO();
        const uint8_t *row = aios__gguf_row(W, r);
        for (int64_t kb0 = 0; kb0 < nb; kb0 += bpc) {
            const int64_t nbk = nb - kb0 < bpc ? nb - kb0 : bpc, kc = nbk * blk;
            for (int i = 0; i < nr; i++) {
                const uint8_t *bp = row + (size_t)i * row_bytes + (size_t)kb0 * (size_t)bytes;
                float *o = wbuf + i * MKC;
                for (int64_t b = 0; b < nbk; b++, bp += bytes) {
                    gguf_scales S;
                    int has_min = gguf_block_scales(DT, bp, &S);
                    for (int c = 0; c < blk / 32; c++)
                        MV_DEQ32(DT, bp, c, S.s[2 * c], S.s[2 * c + 1], S.m[2 * c], S.m[2 * c + 1], has_min,
                                 o + b * blk + 32 * c);
                }
            }
            const float *xk = x + kb0 * blk;
            if (nr == MNR) {
                MV_VEC(*accp)[MNT] = acc;
                const float *wp = wbuf;
                MV_TILES(MNR)
            } else
                for (int i = 0; i < nr; i++) {
                    MV_VEC(*accp)[MNT] = &acc[i];
                    const float *wp = wbuf + i * MKC;
                    MV_TILES(1)
                }
        }
        for (int i = 0; i < nr; i++)
            for (int t = 0; t < nt; t++) y[t * ldy + r + i] += MV_REDUCE(acc[i][t]);
    }
}

#define MV_CASE(DT)                                                                                    \
    case DT: mv_rows(y, ldy, x, ldx, nt, W, r0, r1, DT); break;

MV_T void MV_NAME(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                  int64_t r1) {
    switch (W->dtype) {
        MV_CASE(AIOS_DTYPE_GGUF_Q4_0)
        MV_CASE(AIOS_DTYPE_GGUF_Q4_1)
        MV_CASE(AIOS_DTYPE_GGUF_Q5_0)
        MV_CASE(AIOS_DTYPE_GGUF_Q5_1)
        MV_CASE(AIOS_DTYPE_GGUF_Q8_0)
        MV_CASE(AIOS_DTYPE_GGUF_Q2_K)
        MV_CASE(AIOS_DTYPE_GGUF_Q3_K)
        MV_CASE(AIOS_DTYPE_GGUF_Q4_K)
        MV_CASE(AIOS_DTYPE_GGUF_Q5_K)
        MV_CASE(AIOS_DTYPE_GGUF_Q6_K)
    default: break;
    }
}
