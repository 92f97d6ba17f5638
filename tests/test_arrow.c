/* test_arrow.c — the Arrow routing kernel (src/model/arrow.c) against a plain double reference
 * written here, at odd sizes, on every kernel tier the CPU has (ref, avx2, avx512); the
 * prototype against the dominant eigenvector of the dense (B A)^T (B A); the coefficients'
 * top-k / softmax; and the router's arguments.  The real-model check against PEFT is
 * test_arrow_real. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "test.h"

static const char *const TIERS[] = {"ref", "avx2", "avx512"};

static uint64_t rng = 12345;
static float frand(void) { return (float)(aios_lora_rng_uniform(&rng) * 2 - 1); }

static aios_lora_module make_module(int64_t n_in, int64_t n_out, int64_t r) {
    aios_lora_module m = {.layer = 0, .target = 0, .n_in = n_in, .n_out = n_out, .r = r};
    m.A = malloc((size_t)(r * n_in) * sizeof(float));
    m.B = malloc((size_t)(r * n_out) * sizeof(float));
    for (int64_t i = 0; i < r * n_in; i++) m.A[i] = frand();
    for (int64_t i = 0; i < r * n_out; i++) m.B[i] = frand();
    return m;
}

/* y (T, n_out) += sum_e coeff_e scale_e B_e A_e x, in double, coefficients from first principles */
static void ref_arrow(const aios_arrow_expert *ex, int E, int top_k, double temp, double *y, const float *x, int64_t T) {
    const int64_t ni = ex[0].m->n_in, no = ex[0].m->n_out;
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * ni;
        double sim[16], coeff[16] = {0};
        for (int e = 0; e < E; e++) {
            double d = 0;
            for (int64_t k = 0; k < ni; k++) d += (double)xt[k] * ex[e].proto[k];
            sim[e] = fabs(d);
        }
        /* rank: expert e is in the top k when fewer than k others beat it (ties to the lower index) */
        int k = top_k > E ? E : top_k;
        double mx = -INFINITY, sum = 0;
        int in[16];
        for (int e = 0; e < E; e++) {
            int better = 0;
            for (int f = 0; f < E; f++) better += sim[f] > sim[e] || (sim[f] == sim[e] && f < e);
            in[e] = better < k;
            if (in[e]) mx = fmax(mx, sim[e]);
        }
        for (int e = 0; e < E; e++)
            if (in[e]) sum += coeff[e] = exp((sim[e] - mx) / temp);
        for (int e = 0; e < E; e++) {
            if (!in[e]) continue;
            const aios_lora_module *m = ex[e].m;
            for (int64_t o = 0; o < no; o++) {
                double acc = 0;
                for (int64_t j = 0; j < m->r; j++) {
                    double u = 0;
                    for (int64_t q = 0; q < ni; q++) u += (double)m->A[j * ni + q] * xt[q];
                    acc += (double)m->B[o * m->r + j] * u;
                }
                y[t * no + o] += coeff[e] / sum * ex[e].scale * acc;
            }
        }
    }
}

static void test_kernel_every_tier(void) {
    const int64_t shapes[][2] = {{37, 23}, {129, 67}, {16, 1}, {576, 192}};
    const int64_t ranks[] = {3, 1, 8, 5, 2};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const int64_t ni = shapes[si][0], no = shapes[si][1];
        for (int E = 1; E <= 5; E++) {
            aios_lora_module mods[5];
            float *protos = malloc((size_t)(E * ni) * sizeof(float));
            aios_arrow_expert ex[5];
            for (int e = 0; e < E; e++) {
                mods[e] = make_module(ni, no, ranks[e]);
                CHECK_OK(aios_lora_prototype(&mods[e], protos + e * ni));
                ex[e] = (aios_arrow_expert){&mods[e], protos + e * ni, 0.5f + 0.75f * (float)e};
            }
            const int64_t T = 7;
            float *x = malloc((size_t)(T * ni) * sizeof(float)), *y0 = malloc((size_t)(T * no) * sizeof(float));
            for (int64_t i = 0; i < T * ni; i++) x[i] = 3 * frand();
            for (int64_t i = 0; i < T * no; i++) y0[i] = frand();
            float *y = malloc((size_t)(T * no) * sizeof(float));
            double *yr = malloc((size_t)(T * no) * sizeof(double));
            float *scratch = malloc((size_t)(T * aios_lora_arrow_scratch(ex, E)) * sizeof(float));
            for (int top_k = 1; top_k <= E + 1; top_k++) {
                const float temp = top_k == 2 ? 1.0f : 0.37f;
                for (int64_t i = 0; i < T * no; i++) yr[i] = y0[i];
                ref_arrow(ex, E, top_k, temp, yr, x, T);
                double mref = 0;
                for (int64_t i = 0; i < T * no; i++) mref = fmax(mref, fabs(yr[i]));
                for (size_t ti = 0; ti < sizeof TIERS / sizeof *TIERS; ti++) {
                    if (aios_kernels_use(TIERS[ti]) != AIOS_OK) continue;
                    for (int64_t rows = 1; rows <= T; rows += T - 1) { /* decode (1 row) and prefill (T) */
                        memcpy(y, y0, (size_t)(T * no) * sizeof(float));
                        aios_lora_arrow_apply(ex, E, top_k, temp, y, x, rows, scratch);
                        double md = 0;
                        for (int64_t i = 0; i < rows * no; i++) md = fmax(md, fabs(y[i] - yr[i]));
                        for (int64_t i = rows * no; i < T * no; i++) md = fmax(md, y[i] == y0[i] ? 0 : 1e9);
                        CHECKF(md <= 1e-5 * fmax(mref, 1), "%s n_in %lld n_out %lld E %d top_k %d rows %lld: max diff %.3g",
                               TIERS[ti], (long long)ni, (long long)no, E, top_k, (long long)rows, md);
                    }
                }
                aios_kernels_use("auto");
            }
            for (int e = 0; e < E; e++) free(mods[e].A), free(mods[e].B);
            free(protos), free(x), free(y0), free(y), free(yr), free(scratch);
        }
    }
}

/* The prototype against the dominant eigenvector of the dense (B A)^T (B A), by 3000 power
 * iterations in double from another start, on modules whose top singular value stands apart. */
static void test_prototype_is_top_singular_vector(void) {
    const int64_t shapes[][3] = {{37, 23, 3}, {129, 67, 8}, {20, 9, 1}, {45, 50, 4}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const int64_t ni = shapes[si][0], no = shapes[si][1], r = shapes[si][2];
        aios_lora_module m = make_module(ni, no, r);
        for (int64_t k = 0; k < ni; k++) m.A[k] *= 6; /* a dominant rank-one part: a clear gap */
        double *W = calloc((size_t)(no * ni), sizeof(double)), *M = calloc((size_t)(ni * ni), sizeof(double));
        for (int64_t o = 0; o < no; o++)
            for (int64_t k = 0; k < ni; k++)
                for (int64_t j = 0; j < r; j++) W[o * ni + k] += (double)m.B[o * r + j] * m.A[j * ni + k];
        for (int64_t i = 0; i < ni; i++)
            for (int64_t k = 0; k < ni; k++)
                for (int64_t o = 0; o < no; o++) M[i * ni + k] += W[o * ni + i] * W[o * ni + k];
        double *v = malloc((size_t)ni * sizeof(double)), *w = malloc((size_t)ni * sizeof(double));
        for (int64_t k = 0; k < ni; k++) v[k] = 1.0 / (double)(k + 1);
        for (int it = 0; it < 3000; it++) {
            double n2 = 0;
            for (int64_t i = 0; i < ni; i++) {
                w[i] = 0;
                for (int64_t k = 0; k < ni; k++) w[i] += M[i * ni + k] * v[k];
                n2 += w[i] * w[i];
            }
            for (int64_t i = 0; i < ni; i++) v[i] = w[i] / sqrt(n2);
        }
        float *p = malloc((size_t)ni * sizeof(float));
        CHECK_OK(aios_lora_prototype(&m, p));
        double dp = 0, np = 0;
        for (int64_t k = 0; k < ni; k++) dp += p[k] * v[k], np += (double)p[k] * p[k];
        CHECKF(fabs(np - 1) < 1e-5, "prototype norm^2 %.7f", np);
        CHECKF(fabs(dp) > 0.9999, "n_in %lld r %lld: |cos| to the top singular vector %.6f", (long long)ni, (long long)r, fabs(dp));
        /* B A = 0 (a fresh adapter): a zero prototype, not NaN */
        memset(m.B, 0, (size_t)(r * no) * sizeof(float));
        CHECK_OK(aios_lora_prototype(&m, p));
        int zero = 1;
        for (int64_t k = 0; k < ni; k++) zero &= p[k] == 0;
        CHECK(zero);
        free(m.A), free(m.B), free(W), free(M), free(v), free(w), free(p);
    }
}

/* The prototypes kept with an adapter (aios_lora_prototypes): equal to the ones computed afresh
 * (bit for bit: the same code on the same floats), computed once however often asked, and after
 * an in-place change (aios_lora_changed) computed again, in the same memory, from the new B. */
static void test_prototype_cache(void) {
    aios_decoder_config c = {.n_embd = 40, .n_head = 4, .n_head_kv = 2, .head_dim = 10, .n_layer = 3, .n_ff = 67};
    aios_lora *a = NULL;
    CHECK_OK(aios_lora_create(&c, (1u << AIOS_LORA_Q) | (1u << AIOS_LORA_V) | (1u << AIOS_LORA_DOWN), 3, 6.0, 0, &a));
    if (!a) return;
    for (int64_t i = 0; i < a->n_params; i++) a->data[i] = frand();
    CHECK(a->mods[0].proto == NULL && a->proto_builds == 0);
    CHECK_OK(aios_lora_prototypes(a));
    CHECK_OK(aios_lora_prototypes(a));
    CHECKF(a->proto_builds == 1, "computed %llu times", (unsigned long long)a->proto_builds);
    float v[67], old[67];
    for (int64_t k = 0; k < a->n_mods; k++) {
        const aios_lora_module *m = &a->mods[k];
        CHECK_OK(aios_lora_prototype(m, v));
        CHECKF(m->proto && !memcmp(m->proto, v, (size_t)m->n_in * sizeof(float)), "module %lld: kept prototype differs", (long long)k);
    }
    /* the down_proj of layer 1 changes in place (a training step): stale until asked again */
    aios_lora_module *m = (aios_lora_module *)aios_lora_get(a, 1, AIOS_LORA_DOWN);
    const float *where = m->proto;
    memcpy(old, m->proto, (size_t)m->n_in * sizeof(float));
    for (int64_t i = 0; i < m->r * m->n_out; i++) m->B[i] = frand();
    aios_lora_changed(a);
    CHECK_OK(aios_lora_prototypes(a));
    CHECK(a->proto_builds == 2 && m->proto == where);
    CHECK_OK(aios_lora_prototype(m, v));
    CHECK(!memcmp(m->proto, v, (size_t)m->n_in * sizeof(float)));
    double dp = 0;
    for (int64_t k = 0; k < m->n_in; k++) dp += (double)old[k] * v[k];
    CHECKF(fabs(dp) < 0.99, "the new B's prototype |cos| %.4f to the old: not recomputed?", fabs(dp));
    aios_lora_free(a);
}

static void test_coeffs(void) {
    const float sim[5] = {0.5f, 2.0f, 1.0f, 2.0f, -1.0f};
    float c[5];
    aios_lora_arrow_coeffs(sim, 5, 2, 1.0f, c); /* the tie 2.0 / 2.0: both in */
    CHECK(c[1] == 0.5f && c[3] == 0.5f && c[0] == 0 && c[2] == 0 && c[4] == 0);
    aios_lora_arrow_coeffs(sim, 5, 1, 1.0f, c); /* ties keep the lower index */
    CHECK(c[1] == 1.0f && c[3] == 0);
    aios_lora_arrow_coeffs(sim, 5, 3, 0.5f, c);
    double e1 = exp(0.0), e2 = exp((1.0 - 2.0) / 0.5), s = 2 * e1 + e2;
    CHECKF(fabs(c[1] - e1 / s) < 1e-6 && fabs(c[2] - e2 / s) < 1e-6 && c[0] == 0, "%g %g", c[1], c[2]);
    aios_lora_arrow_coeffs(sim, 5, 9, 1.0f, c); /* top_k above E: all */
    double t = 0;
    for (int e = 0; e < 5; e++) {
        t += c[e];
        CHECK(c[e] > 0);
    }
    CHECK(fabs(t - 1) < 1e-6);
}

static void test_randn_start(void) {
    /* the first values of torch.randn(576, generator=torch.Generator().manual_seed(4242)),
     * printed by torch 2.x (they begin every prototype's power iteration) */
    const float want[4] = {0.40564063f, -0.86894923f, -0.0772969f, -1.5630157f};
    float v[576];
    aios__torch_randn(v, 576, 4242);
    for (int i = 0; i < 4; i++) CHECKF(fabsf(v[i] - want[i]) < 1e-6f, "randn[%d] %.8f vs %.8f", i, v[i], want[i]);
}

int main(void) {
    RUN(test_kernel_every_tier);
    RUN(test_prototype_is_top_singular_vector);
    RUN(test_prototype_cache);
    RUN(test_coeffs);
    RUN(test_randn_start);
    TEST_MAIN_END();
}
