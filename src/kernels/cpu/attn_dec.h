/*
 * attn_dec.h — the fused decode attention (aios_attention with few query rows: decode after a
 * prompt), written once for a vector width and included by attn_dec_avx512.c (16 lanes) and
 * attn_dec_avx2.c (8 lanes), which define:
 *   AD_T / AD_TI    target attributes (function, always-inline function)
 *   AD_VEC          the float vector type; AD_LANES its width
 *   AD_ZERO() AD_SET1(f) AD_LOADU(p) AD_STOREU(p, v) AD_ADD AD_SUB AD_MUL AD_MAX AD_FMA(a, b, c)
 *   AD_LOADH(p)     AD_LANES float16 values at p (const uint16_t *) widened to one float vector
 *   AD_EXPZ(v)      exp, exactly 0 for -inf (vexp.h)
 *   AD_HSUM(v) AD_HMAX(v)
 *   AD_SUMKEYS(t)   t[AD_LANES] -> one vector of their horizontal sums, in a lane order that
 *                   AD_PERM undoes: t[s] holds key AD_PERM[s] so that lane j is key j's sum
 *   AD_HB           query heads per output register block (AD_HB x 4 vector accumulators; 2..4)
 *   AD_NAME         the entry point's name
 *
 * Work unit: (query row, KV head, chunk of AD_CH positions), all the query heads of the KV
 * head's group together.  Per group of AD_LANES keys and per head, the dot products run in
 * registers (head_dim / AD_LANES FMAs per key) and AD_SUMKEYS transposes-and-sums the AD_LANES
 * partial vectors into one vector of scores (log2(AD_LANES) shuffle + add levels): no call and no
 * horizontal sum per key.  Masked keys and the padding lanes past the chunk's end get -inf;
 * the chunk's maximum, exp (AD_EXPZ, 0 for -inf), their sum, then the weighted sum of the V rows
 * in AD_HB x 4 vector accumulators (each V vector loaded once for AD_HB heads).
 *
 * Chunks are FIXED (AD_CH positions, never derived from the thread count): a cache of one chunk
 * is normalized in place; longer caches keep per-chunk partials (max m, sum l, unnormalized
 * out) that are merged in chunk order, out = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c.  So
 * results are bitwise the same at any thread count while 2 threads still split one KV head's
 * positions (SmolLM2 has 3 KV heads; one query row in decode).
 *
 * The cache is float32 or float16 (H, a constant that every helper takes so that the two
 * element types compile to two straight-line bodies): float16 halves the bytes a decode step
 * reads, which is what this kernel costs once the cache leaves L2 (bench_kernels attn "cold").
 */
#define AD_CH 128  /* positions per chunk */
#define AD_GMAX 16 /* most query heads per KV head */
#define AD_PART_STACK 8192
/* AD_LANES K / V elements at element offset i of a row block b: float32 or float16 (H). */
#define AD_KV(b, H, i) ((H) ? AD_LOADH((const uint16_t *)(b) + (i)) : AD_LOADU((const float *)(b) + (i)))

/* Scores (unscaled) of keys j0 + AD_PERM[s] (clamped to jmax) against one head's q (NC vectors). */
static AD_TI AD_VEC ad_scores(const AD_VEC *qv, const int NC, const int H, const void *kb, int64_t kv_stride,
                              int64_t j0, int64_t jmax) {
    static const int perm[AD_LANES] = AD_PERM;
    AD_VEC t[AD_LANES];
#pragma GCC unroll 16
    for (int s = 0; s < AD_LANES; s++) {
        int64_t j = j0 + perm[s];
        j = j < jmax ? j : jmax;
        const int64_t kr = j * kv_stride;
        AD_VEC a = AD_MUL(qv[0], AD_KV(kb, H, kr));
#pragma GCC unroll 16
        for (int c = 1; c < NC; c++) a = AD_FMA(qv[c], AD_KV(kb, H, kr + c * AD_LANES), a);
        t[s] = a;
    }
    return AD_SUMKEYS(t);
}

/* o (NH heads, stride D) [c0 .. c0 + min(4, NC - c0) vectors) = sum_j p[h][j] v_j, times inv[h]. */
static AD_TI void ad_pv(const int NC, const int NH, const int H, float *o, int64_t D, const float *p, const void *vb,
                        int64_t kv_stride, int64_t n, const uint8_t *mrow, const float *inv) {
#pragma GCC unroll 4
    for (int c0 = 0; c0 < NC; c0 += 4) {
        const int CB = NC - c0 < 4 ? NC - c0 : 4;
        AD_VEC acc[AD_HB][4];
#pragma GCC unroll 4
        for (int h = 0; h < NH; h++)
#pragma GCC unroll 4
            for (int c = 0; c < CB; c++) acc[h][c] = AD_ZERO();
        for (int64_t j = 0; j < n; j++) {
            if (mrow && !mrow[j]) continue;
            const int64_t vr = j * kv_stride + c0 * AD_LANES;
            AD_VEC vv[4];
#pragma GCC unroll 4
            for (int c = 0; c < CB; c++) vv[c] = AD_KV(vb, H, vr + c * AD_LANES);
#pragma GCC unroll 4
            for (int h = 0; h < NH; h++) {
                const AD_VEC pj = AD_SET1(p[h * AD_CH + j]);
#pragma GCC unroll 4
                for (int c = 0; c < CB; c++) acc[h][c] = AD_FMA(pj, vv[c], acc[h][c]);
            }
        }
#pragma GCC unroll 4
        for (int h = 0; h < NH; h++) {
            const AD_VEC f = AD_SET1(inv[h]);
#pragma GCC unroll 4
            for (int c = 0; c < CB; c++) AD_STOREU(o + h * D + (c0 + c) * AD_LANES, AD_MUL(acc[h][c], f));
        }
    }
}

/* One unit: query heads g < G (q rows qh + g * D) against positions [0, n) of kb / vb (mask row
 * mrow or NULL).  ml == NULL: o (G, D) = the normalized outputs; else o = unnormalized sums and
 * ml[2g], ml[2g + 1] = the chunk's maximum and sum of exp (m = -inf, l = 0, o = 0: no visible key).
 * s: G x AD_CH scratch. */
static AD_TI void ad_unit(const int NC, const int H, float *o, float *ml, const float *qh, const void *kb, const void *vb,
                          int64_t kv_stride, int64_t n, int64_t G, const uint8_t *mrow, float scale, float *s) {
    const int64_t D = NC * AD_LANES, np = (n + AD_LANES - 1) / AD_LANES * AD_LANES;
    const AD_VEC vs = AD_SET1(scale);
    for (int64_t j0 = 0; j0 < n; j0 += AD_LANES)
        for (int64_t g = 0; g < G; g++) {
            AD_VEC qv[16];
#pragma GCC unroll 16
            for (int c = 0; c < NC; c++) qv[c] = AD_LOADU(qh + g * D + c * AD_LANES);
            AD_STOREU(s + g * AD_CH + j0, AD_MUL(vs, ad_scores(qv, NC, H, kb, kv_stride, j0, n - 1)));
        }
    for (int64_t g = 0; g < G; g++)
        for (int64_t j = n; j < np; j++) s[g * AD_CH + j] = -INFINITY;
    if (mrow)
        for (int64_t j = 0; j < n; j++)
            if (!mrow[j])
                for (int64_t g = 0; g < G; g++) s[g * AD_CH + j] = -INFINITY;
    float m[AD_GMAX], inv[AD_GMAX];
    m[0] = -INFINITY; /* G >= 1 */
    for (int64_t g = 0; g < G; g++) {
        const float *sg = s + g * AD_CH;
        AD_VEC vm = AD_SET1(-INFINITY);
        for (int64_t j0 = 0; j0 < np; j0 += AD_LANES) vm = AD_MAX(vm, AD_LOADU(sg + j0));
        m[g] = AD_HMAX(vm);
    }
    if (m[0] == -INFINITY) { /* no visible key (the mask is the same for every head) */
        memset(o, 0, sizeof(float) * (size_t)(G * D));
        if (ml)
            for (int64_t g = 0; g < G; g++) ml[2 * g] = -INFINITY, ml[2 * g + 1] = 0.0f;
        return;
    }
    for (int64_t g = 0; g < G; g++) {
        float *sg = s + g * AD_CH;
        const AD_VEC vm = AD_SET1(m[g]);
        AD_VEC sum = AD_ZERO();
        for (int64_t j0 = 0; j0 < np; j0 += AD_LANES) {
            const AD_VEC e = AD_EXPZ(AD_SUB(AD_LOADU(sg + j0), vm));
            AD_STOREU(sg + j0, e);
            sum = AD_ADD(sum, e);
        }
        const float l = AD_HSUM(sum);
        if (ml) {
            ml[2 * g] = m[g], ml[2 * g + 1] = l;
            inv[g] = 1.0f;
        } else
            inv[g] = 1.0f / l;
    }
    for (int64_t g0 = 0; g0 < G; g0 += AD_HB) {
        const int64_t nh = G - g0 < AD_HB ? G - g0 : AD_HB;
        float *og = o + g0 * D;
        const float *pg = s + g0 * AD_CH;
        if (nh == AD_HB)
            ad_pv(NC, AD_HB, H, og, D, pg, vb, kv_stride, n, mrow, inv + g0);
        else if (nh == 1)
            ad_pv(NC, 1, H, og, D, pg, vb, kv_stride, n, mrow, inv + g0);
#if AD_HB > 3
        else if (nh == 3)
            ad_pv(NC, 3, H, og, D, pg, vb, kv_stride, n, mrow, inv + g0);
#endif
#if AD_HB > 2
        else
            ad_pv(NC, 2, H, og, D, pg, vb, kv_stride, n, mrow, inv + g0);
#endif
    }
}

/* o (G, D) = the chunk partials of one (query row, KV head) merged in chunk order: part holds nch
 * units of G x (D + 2) floats (outputs, then max / sum pairs). */
static AD_TI void ad_merge(const int NC, float *o, const float *part, int64_t nch, int64_t G) {
    const int64_t D = NC * AD_LANES, us = G * (D + 2);
    for (int64_t g = 0; g < G; g++) {
        float M = -INFINITY;
        for (int64_t c = 0; c < nch; c++) M = fmaxf(M, part[c * us + G * D + 2 * g]);
        if (M == -INFINITY) {
            memset(o + g * D, 0, sizeof(float) * (size_t)D);
            continue;
        }
        AD_VEC acc[16];
#pragma GCC unroll 16
        for (int x = 0; x < NC; x++) acc[x] = AD_ZERO();
        float L = 0.0f;
        for (int64_t c = 0; c < nch; c++) {
            const float mc = part[c * us + G * D + 2 * g];
            if (mc == -INFINITY) continue;
            const float f = expf(mc - M);
            L += f * part[c * us + G * D + 2 * g + 1];
            const AD_VEC vf = AD_SET1(f);
            const float *oc = part + c * us + g * D;
#pragma GCC unroll 16
            for (int x = 0; x < NC; x++) acc[x] = AD_FMA(vf, AD_LOADU(oc + x * AD_LANES), acc[x]);
        }
        const AD_VEC vi = AD_SET1(1.0f / L);
#pragma GCC unroll 16
        for (int x = 0; x < NC; x++) AD_STOREU(o + g * D + x * AD_LANES, AD_MUL(acc[x], vi));
    }
}

/* One unit of the decode attention, head_dim NC vectors (NC a constant: the loops unroll). */
static AD_TI void ad_run(const int NC, const int H, float *out, float *part, const float *q, const void *k, const void *v,
                         int64_t u, int64_t Tk, int64_t n_head, int64_t n_head_kv, int64_t kv_stride,
                         const uint8_t *mask, float scale, float *s) {
    const int64_t D = NC * AD_LANES, G = n_head / n_head_kv, nch = (Tk + AD_CH - 1) / AD_CH;
    const int64_t i = u / (n_head_kv * nch), hk = (u / nch) % n_head_kv, c = u % nch, j0 = c * AD_CH;
    const int64_t n = Tk - j0 < AD_CH ? Tk - j0 : AD_CH;
    float *o = nch > 1 ? part + u * G * (D + 2) : out + (i * n_head + hk * G) * D;
    const size_t off = (size_t)(j0 * kv_stride + hk * D) * (H ? 2 : 4);
    ad_unit(NC, H, o, nch > 1 ? o + G * D : NULL, q + (i * n_head + hk * G) * D, (const char *)k + off,
            (const char *)v + off, kv_stride, n, G, mask ? mask + i * Tk + j0 : NULL, scale, s);
}

/* The outlined OpenMP body does not inherit target attributes: it calls these (head_dim 64 / 128,
 * float32 / float16 cache). */
#define AD_RUN_FN(name, HD, HH)                                                                                     \
    static AD_T __attribute__((noinline)) void name(float *out, float *part, const float *q, const void *k,         \
                                                    const void *v, int64_t u, int64_t Tk, int64_t n_head,            \
                                                    int64_t n_head_kv, int64_t kv_stride, const uint8_t *mask,       \
                                                    float scale, float *s) {                                         \
        ad_run(HD / AD_LANES, HH, out, part, q, k, v, u, Tk, n_head, n_head_kv, kv_stride, mask, scale, s);        \
    }
AD_RUN_FN(ad_run_64, 64, 0)
AD_RUN_FN(ad_run_128, 128, 0)
AD_RUN_FN(ad_run_64h, 64, 1)
AD_RUN_FN(ad_run_128h, 128, 1)
#undef AD_RUN_FN
static AD_T __attribute__((noinline)) void ad_merge_any(int64_t head_dim, float *o, const float *part, int64_t nch,
                                                        int64_t G) {
    if (head_dim == 64)
        ad_merge(64 / AD_LANES, o, part, nch, G);
    else
        ad_merge(128 / AD_LANES, o, part, nch, G);
}

/* aios_attention's contract for head_dim 64 / 128 and groups up to AD_GMAX (aios__attn_dec_ok),
 * Tk >= 1, arguments already checked by dispatch.c; k, v float32, or float16 when kv_f16. */
aios_status AD_NAME(float *out, const float *q, const void *k, const void *v, int64_t Tq, int64_t Tk, int64_t n_head,
                    int64_t n_head_kv, int64_t head_dim, int64_t kv_stride, const uint8_t *mask, float scale, int kv_f16,
                    int nth) {
    const int64_t G = n_head / n_head_kv, nch = (Tk + AD_CH - 1) / AD_CH, units = Tq * n_head_kv * nch;
    const size_t np = nch > 1 ? (size_t)(units * G * (head_dim + 2)) : 0;
    float pst[AD_PART_STACK];
    float *part = np <= AD_PART_STACK ? pst : malloc(sizeof(float) * np);
    if (!part) return aios__err(AIOS_ERR_NOMEM, "attention: %lld chunk partials", (long long)units);
#pragma omp parallel num_threads(nth)
    {
        float s[AD_GMAX * AD_CH];
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < units; u++) {
            if (kv_f16) {
                if (head_dim == 64)
                    ad_run_64h(out, part, q, k, v, u, Tk, n_head, n_head_kv, kv_stride, mask, scale, s);
                else
                    ad_run_128h(out, part, q, k, v, u, Tk, n_head, n_head_kv, kv_stride, mask, scale, s);
            } else if (head_dim == 64)
                ad_run_64(out, part, q, k, v, u, Tk, n_head, n_head_kv, kv_stride, mask, scale, s);
            else
                ad_run_128(out, part, q, k, v, u, Tk, n_head, n_head_kv, kv_stride, mask, scale, s);
        }
        if (nch > 1) {
#pragma omp for schedule(static)
            for (int64_t r = 0; r < Tq * n_head_kv; r++) {
                const int64_t i = r / n_head_kv, hk = r % n_head_kv;
                float *o = out + (i * n_head + hk * G) * head_dim;
                ad_merge_any(head_dim, o, part + r * nch * G * (head_dim + 2), nch, G);
            }
        }
    }
    if (part != pst) free(part);
    return AIOS_OK;
}
