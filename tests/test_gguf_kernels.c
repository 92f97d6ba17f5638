/* test_gguf_kernels.c — GGUF block weights (tensor/gguf_blocks.h) in every kernel path, odd
 * sizes: every fast tier this CPU has against the scalar reference — dequantized rows bit for
 * bit (tensor_row_f32, tensor_to_f32, unaligned column ranges), the decode GEMV (T 1-3, one
 * and two threads, thread-split row ranges) and the prefill GEMM (T > 3) to a tolerance —
 * plus the refusals.  The reference itself is checked bit for bit against the PyPI `gguf`
 * package in tests/py/test_gguf_quants.py. */
#include <math.h>
#include <stdint.h>

#include "kernels/cpu/kern.h"
#include "tensor/gguf_blocks.h"
#include "tensor/quant.h"
#include "test.h"
#include "tiers.h"

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}
static float frand(void) { return (float)((rnd() % 2000001) / 1000000.0 - 1.0); } /* [-1, 1] */

static const char *const TIERS[] = {"avx2", "avx512"};

/* Every weight block type, with the byte offsets of its f16 scale fields. */
static const struct {
    aios_dtype t;
    int off[2], n_off;
} TYPES[] = {
    {AIOS_DTYPE_GGUF_Q4_0, {0}, 1}, {AIOS_DTYPE_GGUF_Q4_1, {0, 2}, 2}, {AIOS_DTYPE_GGUF_Q5_0, {0}, 1},
    {AIOS_DTYPE_GGUF_Q5_1, {0, 2}, 2}, {AIOS_DTYPE_GGUF_Q8_0, {0}, 1}, {AIOS_DTYPE_GGUF_Q2_K, {80, 82}, 2},
    {AIOS_DTYPE_GGUF_Q3_K, {108}, 1}, {AIOS_DTYPE_GGUF_Q4_K, {0, 2}, 2}, {AIOS_DTYPE_GGUF_Q5_K, {0, 2}, 2},
    {AIOS_DTYPE_GGUF_Q6_K, {208}, 1},
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

/* A (n_out, n_blocks * blk) weight of random blocks with finite scales.  *buf to free. */
static aios_tensor make_w(size_t ti, int64_t n_out, int64_t nb_row, uint8_t **buf) {
    int blk = 32, bytes = 0;
    aios_gguf_block(TYPES[ti].t, &blk, &bytes);
    size_t n = (size_t)(n_out * nb_row) * (size_t)bytes;
    uint8_t *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
    for (size_t b = 0; b < n / (size_t)bytes; b++)
        for (int k = 0; k < TYPES[ti].n_off; k++) {
            uint16_t h = aios_f32_to_f16(frand() * 0.05f);
            memcpy(p + b * (size_t)bytes + TYPES[ti].off[k], &h, 2);
        }
    aios_tensor w = {.name = "w", .dtype = TYPES[ti].t, .ndim = 2, .shape = {n_out, nb_row * blk}, .data = p, .nbytes = n};
    *buf = p;
    return w;
}

static int same_bits(const float *a, const float *b, int64_t n) { return !memcmp(a, b, sizeof(float) * (size_t)n); }

static void test_rows_bit_identical_every_tier(void) {
    for (size_t ti = 0; ti < NTYPES; ti++) {
        uint8_t *buf;
        aios_tensor w = make_w(ti, 5, 3, &buf);
        int64_t n_in = w.shape[1], n = 5 * n_in;
        float *ref = malloc(sizeof(float) * (size_t)n), *got = malloc(sizeof(float) * (size_t)n);
        CHECK_OK(aios_quant_dequantize_ref(&w, ref));
        for (int64_t r = 0; r < 5; r++) {
            CHECK_OK(aios_quant_dequantize_row_ref(&w, r, got));
            CHECKF(same_bits(got, ref + r * n_in, n_in), "%s row_ref %lld", aios_dtype_name(w.dtype), (long long)r);
        }
        /* unaligned column ranges of the shared decoder = slices of the whole row */
        int64_t cuts[][2] = {{0, 1}, {5, 40}, {31, 2}, {n_in - 3, 3}, {1, n_in - 1}};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            aios_gguf_deq_range(w.dtype, aios__gguf_row(&w, 2), cuts[c][0], cuts[c][1], got);
            CHECKF(same_bits(got, ref + 2 * n_in + cuts[c][0], cuts[c][1]), "%s range %lld+%lld",
                   aios_dtype_name(w.dtype), (long long)cuts[c][0], (long long)cuts[c][1]);
        }
        for (size_t t = 0; t <= sizeof TIERS / sizeof TIERS[0]; t++) {
            const char *tier = t ? TIERS[t - 1] : "ref";
            if (!t_use_tier(tier)) continue;
            /* the tier's own dequantizer on block-cut column ranges (matmul staging uses it) */
            const aios__ktier *K = &aios__tier_ref;
#if defined(__x86_64__)
            if (t) K = t == 1 ? &aios__tier_avx2 : &aios__tier_avx512;
#endif
            for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
                for (int r = 0; r < 5; r++) {
                    memset(got, 0xFF, sizeof(float) * (size_t)n_in);
                    K->deq(got, &w, r, cuts[c][0], cuts[c][1]);
                    CHECKF(same_bits(got, ref + r * n_in + cuts[c][0], cuts[c][1]), "%s %s deq row %d %lld+%lld", tier,
                           aios_dtype_name(w.dtype), r, (long long)cuts[c][0], (long long)cuts[c][1]);
                }
            }
            memset(got, 0xFF, sizeof(float) * (size_t)n);
            CHECK_OK(aios_tensor_to_f32(got, &w));
            CHECKF(same_bits(got, ref, n), "%s %s tensor_to_f32", tier, aios_dtype_name(w.dtype));
            for (int64_t r = 0; r < 5; r++) {
                CHECK_OK(aios_tensor_row_f32(got, &w, r));
                CHECKF(same_bits(got, ref + r * n_in, n_in), "%s %s row %lld", tier, aios_dtype_name(w.dtype),
                       (long long)r);
            }
        }
        aios_kernels_use("auto");
        free(ref), free(got), free(buf);
    }
}

/* max |fast - ref| / (|x| . |w| + |bias|) over every output */
static double scaled_err(const float *y, const float *yr, const float *x, const float *wf, const float *bias,
                         int64_t T, int64_t n_out, int64_t n_in) {
    double m = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < n_out; r++) {
            double s = fabs(bias[r]);
            for (int64_t c = 0; c < n_in; c++) s += fabs((double)x[t * n_in + c] * wf[r * n_in + c]);
            double e = fabs((double)y[t * n_out + r] - yr[t * n_out + r]) / (s > 0 ? s : 1);
            if (e > m || isnan(e)) m = isnan(e) ? INFINITY : e;
        }
    return m;
}

static void check_case(size_t ti, int64_t n_out, int64_t nb_row, int64_t T) {
    uint8_t *buf;
    aios_tensor w = make_w(ti, n_out, nb_row, &buf);
    int64_t n_in = w.shape[1];
    float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *bias = malloc(sizeof(float) * (size_t)n_out);
    float *yr = malloc(sizeof(float) * (size_t)(T * n_out)), *y = malloc(sizeof(float) * (size_t)(T * n_out));
    float *wf = malloc(sizeof(float) * (size_t)(n_out * n_in));
    for (int64_t i = 0; i < T * n_in; i++) x[i] = frand();
    for (int64_t i = 0; i < n_out; i++) bias[i] = frand();
    CHECK_OK(aios_quant_dequantize_ref(&w, wf));
    CHECK_OK(aios_ref_matmul(yr, x, &w, bias, T));
    for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
        if (!t_use_tier(TIERS[t])) continue;
        for (int th = 1; th <= 2; th++) {
            aios_set_threads(th);
            for (int64_t i = 0; i < T * n_out; i++) y[i] = NAN;
            CHECK_OK(aios_matmul(y, x, &w, bias, T));
            double e = scaled_err(y, yr, x, wf, bias, T, n_out, n_in);
            CHECKF(e < 2e-6, "%s %s (%lld, %lld) T %lld threads %d: %g", TIERS[t], aios_dtype_name(w.dtype),
                   (long long)n_out, (long long)n_in, (long long)T, th, e);
        }
    }
    aios_set_threads(0);
    aios_kernels_use("auto");
    free(x), free(bias), free(yr), free(y), free(wf), free(buf);
}

static void test_decode_gemv_vs_ref(void) {
    static const int64_t shapes[][2] = {{1, 1}, {7, 3}, {33, 2}, {67, 1}};
    for (size_t ti = 0; ti < NTYPES; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int64_t T = 1; T <= 3; T++) check_case(ti, shapes[s][0], shapes[s][1], T);
    /* a thread-split row range (work >= 32768 so two threads run; rows not a multiple of 64) */
    for (size_t ti = 0; ti < NTYPES; ti++) check_case(ti, 301, 1024 / 256 * (TYPES[ti].t >= AIOS_DTYPE_GGUF_Q2_K ? 1 : 8), 1);
}

static void test_prefill_gemm_vs_ref(void) {
    static const int64_t shapes[][2] = {{5, 3}, {37, 2}};
    static const int64_t Ts[] = {4, 7, 17};
    for (size_t ti = 0; ti < NTYPES; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) check_case(ti, shapes[s][0], shapes[s][1], Ts[k]);
}

/* The batched decode GEMV (T 4..16, gemv_multi.h): odd row counts (tails of the 4-row passes),
 * every token-group remainder, rows longer than one 1024-column chunk (accumulators carried
 * between chunks), one and two threads — against the reference on every tier. */
static void test_batched_decode_vs_ref(void) {
    static const int64_t Ts[] = {4, 5, 6, 7, 9, 11, 13, 16};
    for (size_t ti = 0; ti < NTYPES; ti++) {
        const int k = TYPES[ti].t >= AIOS_DTYPE_GGUF_Q2_K; /* 256-value blocks */
        for (size_t i = 0; i < sizeof Ts / sizeof Ts[0]; i++) check_case(ti, 7, k ? 1 : 3, Ts[i]);
        check_case(ti, 5, k ? 5 : 37, 16); /* 1280 / 1184 columns: two chunks */
        check_case(ti, 301, k ? 3 : 24, 6); /* a thread-split row range */
    }
}

/* x rounded as the int8-activation path rounds it (Q8_0's rule per 16 values), from its
 * definition: dx = max|x| / 127, q = round half even (x / dx), x' = q dx. */
static void round_q8(float *x, int64_t n) {
    for (int64_t c = 0; c < n; c += 16) {
        float am = 0;
        for (int k = 0; k < 16; k++) am = fabsf(x[c + k]) > am ? fabsf(x[c + k]) : am;
        float d = am / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int k = 0; k < 16; k++) x[c + k] = nearbyintf(x[c + k] * id) * d;
    }
}

static void test_int8_activations_vs_ref(void) {
    static const int64_t shapes[][2] = {{7, 3}, {33, 2}, {301, 4}};
    int ran = 0;
    for (size_t ti = 0; ti < NTYPES; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int64_t T = 1; T <= 3; T++) {
                uint8_t *buf;
                int64_t n_out = shapes[s][0];
                aios_tensor w = make_w(ti, n_out, shapes[s][1], &buf);
                int64_t n_in = w.shape[1];
                float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *xr = malloc(sizeof(float) * (size_t)(T * n_in));
                float *wf = malloc(sizeof(float) * (size_t)(n_out * n_in)), *bias = calloc((size_t)n_out, sizeof(float));
                float *y = malloc(sizeof(float) * (size_t)(T * n_out)), *yr = malloc(sizeof(float) * (size_t)(T * n_out));
                float *yx = malloc(sizeof(float) * (size_t)(T * n_out));
                for (int64_t i = 0; i < T * n_in; i++) x[i] = frand() * (i % 97 == 0 ? 8.0f : 1.0f);
                memcpy(xr, x, sizeof(float) * (size_t)(T * n_in));
                round_q8(xr, T * n_in);
                CHECK_OK(aios_quant_dequantize_ref(&w, wf));
                CHECK_OK(aios_ref_matmul(yr, xr, &w, NULL, T));
                CHECK_OK(aios_ref_matmul(yx, x, &w, NULL, T));
                for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
                    if (!t_use_tier(TIERS[t])) continue;
                    aios_kernels_int8_activations(1);
                    CHECK_OK(aios_matmul(y, x, &w, NULL, T));
                    aios_kernels_int8_activations(0);
                    double e = scaled_err(y, yr, xr, wf, bias, T, n_out, n_in);
                    CHECKF(e < 2e-6, "%s int8 %s (%lld, %lld) T %lld vs exact on rounded x: %g", TIERS[t],
                           aios_dtype_name(w.dtype), (long long)n_out, (long long)n_in, (long long)T, e);
                    double ex = scaled_err(y, yx, x, wf, bias, T, n_out, n_in);
                    CHECKF(ex > 1e-7 && ex < 1e-2, "%s int8 %s vs exact on x: %g (rounding not applied?)", TIERS[t],
                           aios_dtype_name(w.dtype), ex);
                    ran++;
                }
                aios_kernels_use("auto");
                free(x), free(xr), free(wf), free(bias), free(y), free(yr), free(yx), free(buf);
            }
    if (!ran) SKIP("no AVX2 on this CPU");
}

/* The int8-activation GEMV of every tier (avx512: VNNI where the CPU has it) against the scalar
 * reference of the same integer math (kernels/cpu/qdot_ref.c), and that reference against a
 * float GEMV of the activations rounded by round_q8 above (two independent definitions).  Row
 * lengths: under one super-block of 256 values, a partial last one, and past one pass of the
 * kernels' activation buffer (8192 columns); rows not a multiple of 4. */
static void test_int8_activations_vs_qdot_ref(void) {
    /* blocks of 32 per row: 1, 8 + 1, 16 + 2, 8 + 5 and 8 + 7 (a last super-block of 1-7 blocks), 256 + 4 */
    static const int64_t shapes32[][2] = {{3, 1}, {5, 9}, {7, 18}, {4, 13}, {2, 15}, {3, 260}};
    static const int64_t shapesK[][2] = {{3, 1}, {6, 3}, {2, 33}};            /* blocks of 256 */
    int ran = 0;
    for (size_t ti = 0; ti < NTYPES; ti++)
        for (size_t s = 0; s < 6; s++) {
            const int k = TYPES[ti].t >= AIOS_DTYPE_GGUF_Q2_K;
            if (k && s >= 3) continue;
            const int64_t n_out = k ? shapesK[s][0] : shapes32[s][0], nbr = k ? shapesK[s][1] : shapes32[s][1];
            for (int64_t T = 1; T <= 3; T++) {
                uint8_t *buf;
                aios_tensor w = make_w(ti, n_out, nbr, &buf);
                const int64_t n_in = w.shape[1];
                float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *xr = malloc(sizeof(float) * (size_t)(T * n_in));
                float *wf = malloc(sizeof(float) * (size_t)(n_out * n_in)), *bias = calloc((size_t)n_out, sizeof(float));
                float *y = malloc(sizeof(float) * (size_t)(T * n_out)), *yq = calloc((size_t)(T * n_out), sizeof(float));
                float *yx = malloc(sizeof(float) * (size_t)(T * n_out));
                for (int64_t i = 0; i < T * n_in; i++) x[i] = frand() * (i % 89 == 0 ? 6.0f : 1.0f);
                for (int64_t i = 0; i < 32 && i < n_in; i++) x[i] = 0.0f; /* an all-zero block: dx = 0 */
                memcpy(xr, x, sizeof(float) * (size_t)(T * n_in));
                round_q8(xr, T * n_in);
                CHECK_OK(aios_quant_dequantize_ref(&w, wf));
                aios__ref_gemv_i8(yq, n_out, x, n_in, (int)T, &w, 0, n_out);
                CHECK_OK(aios_ref_matmul(yx, xr, &w, NULL, T));
                double e0 = scaled_err(yq, yx, xr, wf, bias, T, n_out, n_in);
                CHECKF(e0 < 1e-6, "qdot_ref %s (%lld, %lld) T %lld vs float GEMV of rounded x: %g", aios_dtype_name(w.dtype),
                       (long long)n_out, (long long)n_in, (long long)T, e0);
                for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
                    if (!t_use_tier(TIERS[t])) continue;
                    aios_kernels_int8_activations(1);
                    CHECK_OK(aios_matmul(y, x, &w, NULL, T));
                    aios_kernels_int8_activations(0);
                    double e = scaled_err(y, yq, xr, wf, bias, T, n_out, n_in);
                    CHECKF(e < 1e-6, "%s int8 %s (%lld, %lld) T %lld vs qdot_ref: %g", TIERS[t], aios_dtype_name(w.dtype),
                           (long long)n_out, (long long)n_in, (long long)T, e);
                    ran++;
                }
                aios_kernels_use("auto");
                free(x), free(xr), free(wf), free(bias), free(y), free(yq), free(yx), free(buf);
            }
        }
    if (!ran) SKIP("no AVX2 on this CPU");
}

/* 16-bit activations (mode 3) in the decode GEMVs (T 1-3) of every GGUF block type in place,
 * and of Q4_0 / Q4_1 / Q5_0 / Q5_1 repacked in blocks of 8 rows (q4x8.c; AVX2 code, packed on
 * the AVX2 and the AVX-512 tier; the rows past the last multiple of 8 in place): against the
 * float GEMV of x rounded by t_round_x16 (test.h; 1e-6 of sum |w x|) and against the exact GEMV
 * of x itself within the rounding (> 0: the rounding is applied; < 1e-4: both digits are — int8
 * alone is ~4e-3).  The same packs under int8 activations (mode 1, packed on the AVX2 tier; < 5e-2)
 * against x rounded by round_q8.  Products of 4 .. 40 rows under mode 3: x rounded the same way
 * (each row = that row alone).  Rows 8 .. 64 with tails, one block to 260 per row (past the 8192-column pass),
 * an all-zero run and outliers. */
static void act_case(size_t ti, int64_t n_out, int64_t nb_row, int64_t T, int packed, int mode, int *ran) {
    uint8_t *buf;
    aios_tensor w = make_w(ti, n_out, nb_row, &buf);
    const int64_t n_in = w.shape[1];
    float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *xr = malloc(sizeof(float) * (size_t)(T * n_in));
    float *wf = malloc(sizeof(float) * (size_t)(n_out * n_in)), *bias = calloc((size_t)n_out, sizeof(float));
    float *y = malloc(sizeof(float) * (size_t)(T * n_out)), *yx = malloc(sizeof(float) * (size_t)(T * n_out));
    float *ye = malloc(sizeof(float) * (size_t)(T * n_out)), *y0 = malloc(sizeof(float) * (size_t)(T * n_out));
    int have0 = 0;
    for (int64_t i = 0; i < T * n_in; i++) x[i] = frand() * (i % 89 == 0 ? 6.0f : 1.0f);
    for (int64_t i = 0; i < 16 && i < n_in; i++) x[i] = 0.0f; /* an all-zero run: dx = 0 */
    memcpy(xr, x, sizeof(float) * (size_t)(T * n_in));
    if (mode == 3) t_round_x16(xr, x, T * n_in);
    else round_q8(xr, T * n_in);
    CHECK_OK(aios_quant_dequantize_ref(&w, wf));
    CHECK_OK(aios_ref_matmul(yx, xr, &w, NULL, T));
    CHECK_OK(aios_ref_matmul(ye, x, &w, NULL, T));
    for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
        if (!t_use_tier(TIERS[t]) || (mode == 1 && packed && strcmp(TIERS[t], "avx2"))) continue;
        aios_matmul_pack *P = NULL;
        aios_kernels_int8_activations(mode);
        if (packed) {
            CHECK_OK(aios_matmul_pack_new(&w, &P));
            CHECKF(P && P->q4, "%s %s (%lld, %lld): no 8-row pack under mode %d", TIERS[t], aios_dtype_name(w.dtype),
                   (long long)n_out, (long long)n_in, mode);
        }
        for (int64_t i = 0; i < T * n_out; i++) y[i] = NAN;
        CHECK_OK(aios_matmul_packed(y, x, &w, P, NULL, T));
        aios_kernels_int8_activations(0);
        double e = scaled_err(y, yx, xr, wf, bias, T, n_out, n_in), ex = scaled_err(y, ye, x, wf, bias, T, n_out, n_in);
        const char *mn = mode == 3 ? "x16" : "int8";
        CHECKF(e < (mode == 3 ? 1e-6 : 2e-6), "%s %s %s%s (%lld, %lld) T %lld: vs the rounded-x GEMV %g", TIERS[t], mn,
               aios_dtype_name(w.dtype), packed ? " packed" : "", (long long)n_out, (long long)n_in, (long long)T, e);
        CHECKF(ex > 1e-9 && ex < (mode == 3 ? 1e-4 : 5e-2), "%s %s %s%s (%lld, %lld) T %lld vs exact on x: %g", TIERS[t],
               mn, aios_dtype_name(w.dtype), packed ? " packed" : "", (long long)n_out, (long long)n_in, (long long)T, ex);
        /* mode 3 on the AVX-512 tier of a VNNI CPU runs the same loops with vpdpbusd
         * (idot_avx2.h): the same integer sums, so the same floats as the AVX2 tier's, bit for bit */
        if (mode == 3 && have0)
            CHECKF(!memcmp(y, y0, sizeof(float) * (size_t)(T * n_out)), "%s x16 %s%s (%lld, %lld) T %lld: not bit-identical to %s",
                   TIERS[t], aios_dtype_name(w.dtype), packed ? " packed" : "", (long long)n_out, (long long)n_in,
                   (long long)T, TIERS[0]);
        if (!have0) memcpy(y0, y, sizeof(float) * (size_t)(T * n_out)), have0 = 1;
        aios_matmul_pack_free(P);
        (*ran)++;
    }
    aios_kernels_use("auto");
    free(x), free(xr), free(wf), free(bias), free(y), free(yx), free(ye), free(y0), free(buf);
}

static void test_x16_activations(void) {
    static const int64_t shapes[][2] = {{8, 1}, {21, 18}, {16, 3}, {64, 260}, {13, 9}};
    static const int64_t shapesK[][2] = {{8, 1}, {11, 3}, {3, 33}};
    int ran = 0;
    for (size_t ti = 0; ti < NTYPES; ti++) {
        const int k = TYPES[ti].t >= AIOS_DTYPE_GGUF_Q2_K;
        for (size_t s = 0; s < (k ? 3u : 5u); s++)
            for (int64_t T = 1; T <= 3; T++) {
                const int64_t n_out = k ? shapesK[s][0] : shapes[s][0], nb = k ? shapesK[s][1] : shapes[s][1];
                act_case(ti, n_out, nb, T, 0, 3, &ran);
                if (ti < 4 && n_out >= 8) { /* Q4_0, Q4_1, Q5_0, Q5_1 repacked */
                    act_case(ti, n_out, nb, T, 1, 3, &ran);
                    act_case(ti, n_out, nb, T, 1, 1, &ran);
                }
            }
    }
    /* 4 .. 40 rows under mode 3 (batched decode steps, prompts; Q4_1 and Q5_0, in place and
     * repacked): the exact kernels on x rounded by the same rule — within 1e-6 of the float
     * GEMV of t_round_x16(x), and each row within 1e-6 of the same row alone (the 1-row integer
     * GEMV), so a row's result does not depend on how many rows share its product */
    static const int64_t Ts[] = {4, 9, 16, 40};
    for (size_t ti = 1; ti <= 2; ti++)
        for (int packed = 0; packed < 2; packed++)
            for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) {
                const int64_t T = Ts[k], n_out = 24, n_in = 192;
                uint8_t *buf;
                aios_tensor w = make_w(ti, n_out, n_in / 32, &buf);
                float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *xr = malloc(sizeof(float) * (size_t)(T * n_in));
                float *wf = malloc(sizeof(float) * (size_t)(n_out * n_in)), *bias = calloc((size_t)n_out, sizeof(float));
                float *y = malloc(sizeof(float) * (size_t)(T * n_out)), *yx = malloc(sizeof(float) * (size_t)(T * n_out));
                float *y1 = malloc(sizeof(float) * (size_t)(T * n_out));
                for (int64_t i = 0; i < T * n_in; i++) x[i] = frand() * (i % 89 == 0 ? 6.0f : 1.0f);
                t_round_x16(xr, x, T * n_in);
                CHECK_OK(aios_quant_dequantize_ref(&w, wf));
                CHECK_OK(aios_ref_matmul(yx, xr, &w, NULL, T));
                for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
                    if (!t_use_tier(TIERS[t])) continue;
                    aios_kernels_int8_activations(3);
                    aios_matmul_pack *P = NULL;
                    if (packed) CHECK_OK(aios_matmul_pack_new(&w, &P));
                    CHECK_OK(aios_matmul_packed(y, x, &w, P, NULL, T));
                    for (int64_t r = 0; r < T; r++) CHECK_OK(aios_matmul_packed(y1 + r * n_out, x + r * n_in, &w, P, NULL, 1));
                    aios_kernels_int8_activations(0);
                    double e = scaled_err(y, yx, xr, wf, bias, T, n_out, n_in), e1 = scaled_err(y, y1, x, wf, bias, T, n_out, n_in);
                    CHECKF(e < 1e-6 && e1 < 1e-6, "%s x16 %s%s T %lld: vs the rounded-x GEMV %g, vs each row alone %g", TIERS[t],
                           aios_dtype_name(w.dtype), packed ? " packed" : "", (long long)T, e, e1);
                    aios_matmul_pack_free(P);
                }
                aios_kernels_use("auto");
                free(x), free(xr), free(wf), free(bias), free(y), free(yx), free(y1), free(buf);
            }
    if (!ran) SKIP("no AVX2 on this CPU");
}

static void test_gguf_rejects(void) {
    uint8_t *buf;
    aios_tensor w = make_w(1, 3, 2, &buf); /* Q4_1 (3, 64) */
    float out[256], x[64], y[3];
    memset(x, 0, sizeof x);
    aios_tensor bad = w;
    bad.nbytes--;
    CHECK(aios_matmul(y, x, &bad, NULL, 1) != AIOS_OK);
    CHECK(aios_ref_matmul(y, x, &bad, NULL, 1) != AIOS_OK);
    CHECK(aios_tensor_row_f32(out, &bad, 0) != AIOS_OK);
    CHECK(aios_quant_dequantize_ref(&bad, out) != AIOS_OK);
    bad = w;
    bad.shape[0] = 4, bad.shape[1] = 48; /* 48 is not whole blocks of 32 */
    CHECK(aios_matmul(y, x, &bad, NULL, 1) != AIOS_OK);
    CHECK(strstr(aios_last_error(), "block") != NULL);
    CHECK(aios_tensor_row_f32(out, &w, 3) == AIOS_ERR_RANGE);
    bad = w;
    bad.data = NULL;
    CHECK(aios_matmul(y, x, &bad, NULL, 1) != AIOS_OK);
    uint8_t q8k[292] = {0};
    aios_tensor k = {.name = "k", .dtype = AIOS_DTYPE_GGUF_Q8_K, .ndim = 2, .shape = {1, 256}, .data = q8k, .nbytes = 292};
    CHECK(aios_matmul(y, out, &k, NULL, 1) == AIOS_ERR_UNSUPPORTED);
    CHECK(aios_tensor_row_f32(out, &k, 0) == AIOS_ERR_UNSUPPORTED);
    CHECK(aios_quant_dequantize_ref(&k, out) == AIOS_ERR_UNSUPPORTED);
    free(buf);
}

/* Rows longer than one pass of the AVX-512 GEMV's scale pre-conversion (64 blocks), cut
 * mid-pass: 67 blocks of 32 (2144 columns) or 9 K-quant blocks, 4-row groups and a single row.
 * (Run last: it draws from the shared random stream.) */
static void test_decode_gemv_long_rows(void) {
    for (size_t ti = 0; ti < NTYPES; ti++)
        for (int64_t T = 1; T <= 3; T++) check_case(ti, 5, TYPES[ti].t >= AIOS_DTYPE_GGUF_Q2_K ? 9 : 67, T);
    /* rows whose sums of x (types with minimums, AVX-512: 3 tokens x n_in / 32 or / 16) no
     * longer fit the GEMV's stack buffer: the heap one */
    for (size_t ti = 0; ti < NTYPES; ti++)
        if (TYPES[ti].t == AIOS_DTYPE_GGUF_Q4_1 || TYPES[ti].t == AIOS_DTYPE_GGUF_Q4_K)
            check_case(ti, 5, TYPES[ti].t == AIOS_DTYPE_GGUF_Q4_K ? 44 : 700, 3);
}

/* The prompts' 16-bit rounding pass (aios__round_x16_avx2, aios_matmul under mode 3) gives the
 * rule written out in test.h bit for bit: random values with outliers, an all-zero block, tiny
 * and huge magnitudes, signed zeros. */
static void test_round_x16_pass_bits(void) {
#if defined(__x86_64__)
    if (!aios_cpu()->avx2) SKIP("no AVX2 on this CPU");
    enum { N = 4096 };
    float *x = malloc(sizeof(float) * N), *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = frand() * (i % 89 == 0 ? 6.0f : 1.0f) * (i < 1024 ? 1.0f : i < 2048 ? 1e-30f : 1e30f);
    for (int i = 0; i < 16; i++) x[64 + i] = 0.0f;
    x[81] = -0.0f, x[97] = 5e-39f; /* a subnormal */
    aios__round_x16_avx2(a, x, N);
    t_round_x16(b, x, N);
    int bad = -1;
    for (int i = 0; i < N && bad < 0; i++)
        if (memcmp(&a[i], &b[i], sizeof(float))) bad = i;
    CHECKF(bad < 0, "round_x16 value %d: %a vs %a (x %a)", bad, bad < 0 ? 0.0 : (double)a[bad], bad < 0 ? 0.0 : (double)b[bad],
           bad < 0 ? 0.0 : (double)x[bad]);
    free(x), free(a), free(b);
#else
    SKIP("x86-64 only");
#endif
}

int main(void) {
    RUN(test_rows_bit_identical_every_tier);
    RUN(test_round_x16_pass_bits);
    RUN(test_decode_gemv_vs_ref);
    RUN(test_prefill_gemm_vs_ref);
    RUN(test_batched_decode_vs_ref);
    RUN(test_int8_activations_vs_ref);
    RUN(test_int8_activations_vs_qdot_ref);
    RUN(test_x16_activations);
    RUN(test_gguf_rejects);
    RUN(test_decode_gemv_long_rows);
    TEST_MAIN_END();
}
