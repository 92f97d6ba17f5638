/* test_lora.c — the run-time LoRA delta (src/model/lora_delta.c: aios_lora_apply, and its B side
 * aios__lora_bu = the tier's kernel in src/kernels/cpu/lora_bu.c) against a plain double
 * reference written here, at odd sizes and ranks (r a multiple of 8 takes the SIMD blocks, others
 * the scalar loop; n_out around the 8 / 16 blocks), for one row (decode), a few rows, and enough
 * rows for the threaded path, on every kernel tier the CPU has; the reference tier also bit for
 * bit against the scalar code it replaced.  The real-model checks against PEFT are
 * test_arrow_real and test_train_real. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/lora.h"
#include "test.h"
#include "tiers.h"

static const char *const TIERS[] = {"ref", "avx2", "avx512"};

static uint64_t rng = 777;
static float frand(void) { return (float)(aios_lora_rng_uniform(&rng) * 2 - 1); }

/* y (T, no) += s B (A x) in double; yabs the same over absolute values (the rounding bound's scale) */
static void ref_delta(const aios_lora_module *m, double s, double *y, double *yabs, const float *x,
                      int64_t T) {
    const int64_t r = m->r, ni = m->n_in, no = m->n_out;
    double *u = malloc((size_t)r * sizeof(double)), *ua = malloc((size_t)r * sizeof(double));
    for (int64_t t = 0; t < T; t++) {
        for (int64_t k = 0; k < r; k++) {
            u[k] = ua[k] = 0;
            for (int64_t j = 0; j < ni; j++) {
                u[k] += (double)x[t * ni + j] * m->A[k * ni + j];
                ua[k] += fabs((double)x[t * ni + j] * m->A[k * ni + j]);
            }
        }
        for (int64_t o = 0; o < no; o++)
            for (int64_t k = 0; k < r; k++) {
                y[t * no + o] += s * m->B[o * r + k] * u[k];
                yabs[t * no + o] += fabs(s * m->B[o * r + k]) * ua[k];
            }
    }
    free(u), free(ua);
}

/* the scalar code aios_lora_apply had before its tiers (the reference tier must equal it) */
static void old_scalar(const aios_lora_module *m, float s, float *y, const float *x, int64_t T) {
    const int64_t r = m->r, ni = m->n_in, no = m->n_out;
    float u[64];
    for (int64_t t = 0; t < T; t++) {
        for (int64_t k = 0; k < r; k++) {
            float acc = 0;
            for (int64_t j = 0; j < ni; j++)
                acc += x[t * ni + j] * m->A[k * ni + j];
            u[k] = acc * s;
        }
        for (int64_t o = 0; o < no; o++) {
            float acc = 0;
            for (int64_t k = 0; k < r; k++)
                acc += u[k] * m->B[o * r + k];
            y[t * no + o] += acc;
        }
    }
}

static void test_apply_every_tier(void) {
    /* (n_in, n_out): SmolLM2's q / v / down, and odd ones around the 8 / 16 output blocks */
    const int64_t shapes[][2] = {{576, 576}, {576, 192}, {1536, 576}, {37, 23},
                                 {5, 1},     {33, 15},   {129, 17},   {64, 31}};
    const int64_t ranks[] = {8, 16, 24, 1, 3, 4, 12, 32};
    const int64_t rows[] = {1, 3, 40}; /* decode, a short prefill, the threaded path (large modules) */
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (size_t ri = 0; ri < sizeof ranks / sizeof *ranks; ri++) {
            const int64_t ni = shapes[si][0], no = shapes[si][1], r = ranks[ri], TM = 40;
            aios_lora a = {.r = r, .alpha = 2.0 * (double)r + 3, .rslora = (int)(ri & 1)};
            aios_lora_module m = {.n_in = ni, .n_out = no, .r = r};
            m.A = malloc((size_t)(r * ni) * sizeof(float));
            m.B = malloc((size_t)(r * no) * sizeof(float));
            for (int64_t i = 0; i < r * ni; i++)
                m.A[i] = frand();
            for (int64_t i = 0; i < r * no; i++)
                m.B[i] = frand();
            float *x = malloc((size_t)(TM * ni) * sizeof(float)),
                  *y0 = malloc((size_t)(TM * no) * sizeof(float));
            float *y = malloc((size_t)(TM * no) * sizeof(float)),
                  *yo = malloc((size_t)(TM * no) * sizeof(float));
            float *u = malloc((size_t)(TM * r) * sizeof(float));
            double *yr = malloc((size_t)(TM * no) * sizeof(double)),
                   *ya = calloc((size_t)(TM * no), sizeof(double));
            for (int64_t i = 0; i < TM * ni; i++)
                x[i] = 2 * frand();
            for (int64_t i = 0; i < TM * no; i++)
                yr[i] = y0[i] = frand();
            const float mult = 0.75f, s = mult * aios_lora_scaling(&a);
            ref_delta(&m, s, yr, ya, x, TM);
            for (size_t ti = 0; ti < sizeof TIERS / sizeof *TIERS; ti++) {
                if (!t_use_tier(TIERS[ti])) continue;
                for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
                    const int64_t T = rows[k];
                    memcpy(y, y0, (size_t)(TM * no) * sizeof(float));
                    aios_lora_apply(&a, &m, mult, y, x, T, u);
                    double worst = 0; /* the error over its bound: (n_in + r + 2) ulps of the absolute sum */
                    for (int64_t i = 0; i < T * no; i++) {
                        const double bound =
                            (double)(ni + r + 2) * 0x1p-24 * (ya[i] + fabs((double)y0[i])) + 1e-30;
                        worst = fmax(worst, fabs(y[i] - yr[i]) / bound);
                    }
                    int untouched = 1;
                    for (int64_t i = T * no; i < TM * no; i++)
                        untouched &= y[i] == y0[i];
                    CHECKF(worst <= 1 && untouched,
                           "%s n_in %lld n_out %lld r %lld rows %lld: error %.3g of its bound%s", TIERS[ti],
                           (long long)ni, (long long)no, (long long)r, (long long)T, worst,
                           untouched ? "" : ", rows beyond T written");
                    if (!strcmp(TIERS[ti], "ref")) {
                        memcpy(yo, y0, (size_t)(TM * no) * sizeof(float));
                        old_scalar(&m, s, yo, x, T);
                        CHECKF(!memcmp(yo, y, (size_t)(TM * no) * sizeof(float)),
                               "ref n_in %lld n_out %lld r %lld rows %lld: not the old scalar result bit for "
                               "bit",
                               (long long)ni, (long long)no, (long long)r, (long long)T);
                    }
                }
            }
            aios_kernels_use("auto");
            free(m.A), free(m.B), free(x), free(y0), free(y), free(yo), free(u), free(yr), free(ya);
        }
}

/* round to nearest even bfloat16, written here (not the library's converter) for the reference */
static double bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    float g;
    memcpy(&g, &u, 4);
    return g;
}

/* aios_lora_apply_bf16 (A / B from aios_lora_bf16, kernels cpu/lora_bf16.c) on every tier, at
 * the shapes and ranks above, 1 / 3 / 40 rows: (1) against a double reference on the bf16-rounded
 * A and B within (n_in + r + 2) float32 ulps of the absolute sum (bf16 widened to float32 is
 * exact, so only the float32 sums round); (2) against the exact float32 delta within the bf16
 * rounding bound 2^-7 of the absolute sum (A and B each within 2^-9 relative), the worst
 * measured printed; (3) the copy is kept, and remade after aios_lora_changed. */
static void test_apply_bf16_every_tier(void) {
    const int64_t shapes[][2] = {{576, 576}, {576, 192}, {1536, 576}, {37, 23},
                                 {5, 1},     {33, 15},   {129, 17},   {64, 31}};
    const int64_t ranks[] = {8, 16, 24, 1, 3, 4, 12, 32};
    const int64_t rows[] = {1, 3, 40};
    double worst_rel = 0; /* |bf16 - f32 delta| / absolute sum, the largest seen */
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (size_t ri = 0; ri < sizeof ranks / sizeof *ranks; ri++) {
            const int64_t ni = shapes[si][0], no = shapes[si][1], r = ranks[ri], TM = 40;
            aios_lora a = {.r = r, .alpha = 2.0 * (double)r + 3, .rslora = (int)(ri & 1)};
            a.n_params = r * (ni + no);
            a.data = malloc((size_t)a.n_params * sizeof(float));
            aios_lora_module m = {.n_in = ni, .n_out = no, .r = r, .A = a.data, .B = a.data + r * ni};
            for (int64_t i = 0; i < a.n_params; i++)
                a.data[i] = frand();
            CHECK_OK(aios_lora_bf16(&a));
            CHECK(a.bf16_ok && a.bf16);
            aios_lora_module mr = m; /* the rounded values, for the reference */
            mr.A = malloc((size_t)a.n_params * sizeof(float));
            mr.B = mr.A + r * ni;
            for (int64_t i = 0; i < a.n_params; i++)
                mr.A[i] = (float)bf16_round(a.data[i]);
            float *x = malloc((size_t)(TM * ni) * sizeof(float)),
                  *y0 = malloc((size_t)(TM * no) * sizeof(float));
            float *y = malloc((size_t)(TM * no) * sizeof(float)),
                  *u = malloc((size_t)(TM * r) * sizeof(float));
            double *yr = malloc((size_t)(TM * no) * sizeof(double)),
                   *ya = calloc((size_t)(TM * no), sizeof(double));
            double *ye = malloc((size_t)(TM * no) * sizeof(double)),
                   *yea = calloc((size_t)(TM * no), sizeof(double));
            for (int64_t i = 0; i < TM * ni; i++)
                x[i] = 2 * frand();
            for (int64_t i = 0; i < TM * no; i++)
                ye[i] = yr[i] = y0[i] = frand();
            const float mult = 0.75f, s = mult * aios_lora_scaling(&a);
            ref_delta(&mr, s, yr, ya, x, TM);
            ref_delta(&m, s, ye, yea, x, TM);
            for (size_t ti = 0; ti < sizeof TIERS / sizeof *TIERS; ti++) {
                if (!t_use_tier(TIERS[ti])) continue;
                for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
                    const int64_t T = rows[k];
                    memcpy(y, y0, (size_t)(TM * no) * sizeof(float));
                    aios_lora_apply_bf16(&a, &m, mult, y, x, T, u);
                    double worst = 0, worst_e = 0;
                    for (int64_t i = 0; i < T * no; i++) {
                        const double bound =
                            (double)(ni + r + 2) * 0x1p-24 * (ya[i] + fabs((double)y0[i])) + 1e-30;
                        worst = fmax(worst, fabs(y[i] - yr[i]) / bound);
                        const double rel = fabs(y[i] - ye[i]) / (yea[i] + 1e-30);
                        worst_e = fmax(worst_e, rel);
                    }
                    worst_rel = fmax(worst_rel, worst_e);
                    int untouched = 1;
                    for (int64_t i = T * no; i < TM * no; i++)
                        untouched &= y[i] == y0[i];
                    CHECKF(
                        worst <= 1 && worst_e <= 0x1p-7 && untouched,
                        "bf16 %s n_in %lld n_out %lld r %lld rows %lld: error %.3g of its bound, %.3g of the "
                        "f32 delta's absolute sum%s",
                        TIERS[ti], (long long)ni, (long long)no, (long long)r, (long long)T, worst, worst_e,
                        untouched ? "" : ", rows beyond T written");
                }
            }
            aios_kernels_use("auto");
            /* kept until changed, then remade from the new values */
            uint16_t *kept = a.bf16;
            const uint16_t first = a.bf16[0];
            CHECK_OK(aios_lora_bf16(&a));
            CHECK(a.bf16 == kept && a.bf16[0] == first);
            a.data[0] = -a.data[0] - 1.0f;
            aios_lora_changed(&a);
            CHECK(!a.bf16_ok);
            CHECK_OK(aios_lora_bf16(&a));
            CHECK(a.bf16_ok && a.bf16[0] != first);
            free(a.bf16), free(a.data), free(mr.A), free(x), free(y0), free(y), free(u), free(yr), free(ya),
                free(ye), free(yea);
        }
    printf("# bf16 A / B: worst |delta - f32 delta| = %.3g of the absolute sum (bound 2^-7 = %.3g)\n",
           worst_rel, 0x1p-7);
}

/* The B side alone with values whose products and sums are exact in float (small integers):
 * every tier must give the exact result, so a block that drops, repeats or misorders a row or a
 * rank fails here whatever the tolerance above.
 * The bf16 B side (aios_kernels_lora_bu16, cpu/lora_bf16.c) on the same values: small integers
 * are exact in bf16 too, so it must give the same exact result (r = 8 / 16 / 40 its blocks, 5 scalar). */
static void test_bu_exact(void) {
    const int64_t ns[] = {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 577};
    const int64_t ranks[] = {8, 16, 40, 5};
    for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
        for (size_t ri = 0; ri < sizeof ranks / sizeof *ranks; ri++) {
            const int64_t n = ns[ni], r = ranks[ri];
            float *B = malloc((size_t)(n * r) * sizeof(float)), *u = malloc((size_t)r * sizeof(float));
            float *y = malloc((size_t)(n + 1) * sizeof(float)), *want = malloc((size_t)n * sizeof(float));
            uint16_t *B16 = malloc((size_t)(n * r) * sizeof(uint16_t));
            for (int64_t i = 0; i < n * r; i++) {
                B[i] = (float)((int)(aios_lora_rng_next(&rng) % 17) - 8);
                uint32_t bits;
                memcpy(&bits, &B[i], 4);
                B16[i] = (uint16_t)(bits >> 16); /* exact: a small integer has no low mantissa bits */
            }
            for (int64_t k = 0; k < r; k++)
                u[k] = (float)((int)(aios_lora_rng_next(&rng) % 9) - 4);
            for (int64_t o = 0; o < n; o++) {
                double acc = 1000.0 + (double)o;
                for (int64_t k = 0; k < r; k++)
                    acc += (double)B[o * r + k] * u[k];
                want[o] = (float)acc;
            }
            for (size_t ti = 0; ti < sizeof TIERS / sizeof *TIERS; ti++)
                for (int bf = 0; bf < 2; bf++) {
                    if (!t_use_tier(TIERS[ti])) continue;
                    for (int64_t o = 0; o < n; o++)
                        y[o] = 1000.0f + (float)o;
                    y[n] = -5.0f;
                    if (bf) aios_kernels_lora_bu16()(y, B16, u, n, r);
                    else aios__lora_bu(y, B, u, n, r);
                    int64_t bad = -1;
                    for (int64_t o = 0; o < n && bad < 0; o++)
                        if (y[o] != want[o]) bad = o;
                    CHECKF(bad < 0 && y[n] == -5.0f, "%s%s n_out %lld r %lld: y[%lld] %g, want %g%s", bf ? "bf16 " : "",
                           TIERS[ti], (long long)n, (long long)r, (long long)(bad < 0 ? 0 : bad),
                           bad < 0 ? 0.0 : y[bad], bad < 0 ? 0.0 : want[bad], y[n] == -5.0f ? "" : " (wrote past n_out)");
                }
            aios_kernels_use("auto");
            free(B), free(B16), free(u), free(y), free(want);
        }
}

int main(void) {
    RUN(test_apply_every_tier);
    RUN(test_bu_exact);
    RUN(test_apply_bf16_every_tier);
    TEST_MAIN_END();
}
