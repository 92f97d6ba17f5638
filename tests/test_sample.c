/* test_sample.c — the sampler draws from the distributions it claims (chi-square on a small
 * vocabulary, expected probabilities computed here in double from the definitions), a seed fixes
 * the draws, and the penalties transform logits as transformers / OpenAI define them. */
#include <stdlib.h>

#include "engine/sample.h"
#include "test.h"

enum { V = 8, N = 40000 };
static const float L0[V] = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, -1.0f, 1.5f, 0.25f};

/* Critical chi-square values at p = 0.001 for df 1..7. */
static const double CRIT[8] = {0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322};

static void softmax_t(const float *l, double t, double *p) {
    double mx = -1e300, s = 0;
    for (int i = 0; i < V; i++) mx = l[i] > mx ? l[i] : mx;
    for (int i = 0; i < V; i++) s += p[i] = exp((l[i] - mx) / t);
    for (int i = 0; i < V; i++) p[i] /= s;
}

/* Draws N ids with `sp` and returns chi-square against `want`; every id with want 0 must never
 * be drawn (*bad counts violations). */
static double chi2(const aios_sampling *sp, const double *want, uint64_t seed, int *bad, int *df) {
    aios_sampler *s = NULL;
    aios_sampler_create(V, &s);
    aios_rng r;
    aios_rng_seed(&r, seed);
    long cnt[V] = {0};
    for (int n = 0; n < N; n++) {
        float l[V];
        memcpy(l, L0, sizeof l);
        int32_t id = aios_sample(s, l, NULL, 0, sp, &r, NULL);
        if (id >= 0 && id < V) cnt[id]++;
    }
    aios_sampler_free(s);
    double x2 = 0;
    *bad = 0;
    *df = -1;
    for (int i = 0; i < V; i++) {
        if (want[i] == 0) {
            *bad += cnt[i] != 0;
            continue;
        }
        double e = want[i] * N;
        x2 += (cnt[i] - e) * (cnt[i] - e) / e;
        (*df)++;
    }
    return x2;
}

static aios_sampling plain(float t) {
    aios_sampling p = {t, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f};
    return p;
}

static void test_temperature_distribution(void) {
    float temps[] = {0.5f, 1.0f, 1.7f};
    for (int k = 0; k < 3; k++) {
        double want[V];
        softmax_t(L0, temps[k], want);
        aios_sampling p = plain(temps[k]);
        int bad, df;
        double x2 = chi2(&p, want, 42 + k, &bad, &df);
        CHECKF(x2 < CRIT[df], "T=%.1f: chi2 %.2f >= %.2f (df %d)", temps[k], x2, CRIT[df], df);
    }
    /* the test can fail: T=1 draws judged against T=0.5's distribution */
    double wrong[V];
    softmax_t(L0, 0.5, wrong);
    aios_sampling p = plain(1.0f);
    int bad, df;
    double x2 = chi2(&p, wrong, 7, &bad, &df);
    CHECKF(x2 > 10 * CRIT[df], "negative control chi2 only %.2f", x2);
}

static void test_top_k_distribution(void) {
    /* top-3 of L0: ids 4 (2.0), 6 (1.5), 0 (1.0), renormalized at T = 0.8 */
    double full[V], want[V] = {0};
    softmax_t(L0, 0.8, full);
    double s = full[4] + full[6] + full[0];
    want[4] = full[4] / s, want[6] = full[6] / s, want[0] = full[0] / s;
    aios_sampling p = plain(0.8f);
    p.top_k = 3;
    int bad, df;
    double x2 = chi2(&p, want, 1, &bad, &df);
    CHECKF(bad == 0, "top-k drew an id outside the top 3");
    CHECKF(x2 < CRIT[df], "top-k chi2 %.2f", x2);
}

static void test_top_p_distribution(void) {
    double full[V];
    softmax_t(L0, 1.0, full);
    float tops[] = {0.5f, 0.8f, 0.95f};
    for (int k = 0; k < 3; k++) {
        /* nucleus by definition: most probable first, stop once the mass reaches top_p */
        int order[V];
        for (int i = 0; i < V; i++) order[i] = i;
        for (int i = 0; i < V; i++)
            for (int j = i + 1; j < V; j++)
                if (full[order[j]] > full[order[i]]) {
                    int t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
        double want[V] = {0}, mass = 0;
        for (int i = 0; i < V && mass < tops[k]; i++) mass += want[order[i]] = full[order[i]];
        for (int i = 0; i < V; i++) want[i] /= mass;
        aios_sampling p = plain(1.0f);
        p.top_p = tops[k];
        int bad, df;
        double x2 = chi2(&p, want, 99 + k, &bad, &df);
        CHECKF(bad == 0, "top-p %.2f drew outside the nucleus", tops[k]);
        CHECKF(df < 1 || x2 < CRIT[df], "top-p %.2f chi2 %.2f", tops[k], x2);
    }
}

static void test_min_p_distribution(void) {
    double full[V], want[V] = {0}, s = 0;
    softmax_t(L0, 1.0, full);
    double pmax = full[4];
    for (int i = 0; i < V; i++)
        if (full[i] >= 0.3 * pmax) s += want[i] = full[i];
    for (int i = 0; i < V; i++) want[i] /= s;
    aios_sampling p = plain(1.0f);
    p.min_p = 0.3f;
    int bad, df;
    double x2 = chi2(&p, want, 5, &bad, &df);
    CHECK(bad == 0);
    CHECKF(x2 < CRIT[df], "min-p chi2 %.2f", x2);
}

static void test_seed_reproducible(void) {
    aios_sampler *s = NULL;
    CHECK_OK(aios_sampler_create(V, &s));
    int32_t a[64], b[64], c[64];
    aios_sampling p = plain(1.0f);
    p.top_p = 0.9f;
    for (int run = 0; run < 3; run++) {
        aios_rng r;
        aios_rng_seed(&r, run == 2 ? 1235 : 1234);
        for (int i = 0; i < 64; i++) {
            float l[V];
            memcpy(l, L0, sizeof l);
            int32_t id = aios_sample(s, l, NULL, 0, &p, &r, NULL);
            (run == 0 ? a : run == 1 ? b : c)[i] = id;
        }
    }
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(memcmp(a, c, sizeof a) != 0);
    /* xoshiro256** seeded by splitmix64(0): first output, from the reference C code */
    aios_rng r;
    aios_rng_seed(&r, 0);
    CHECK(r.s[0] == 0xe220a8397b1dcdafull); /* splitmix64 first output for seed 0 */
    double u = aios_rng_uniform(&r);
    CHECK(u >= 0 && u < 1);
    aios_sampler_free(s);
}

static void test_greedy_and_penalties(void) {
    aios_sampler *s = NULL;
    CHECK_OK(aios_sampler_create(V, &s));
    aios_rng r;
    aios_rng_seed(&r, 1);
    float l[V];
    memcpy(l, L0, sizeof l);
    aios_sampling g = plain(0.0f);
    CHECK(aios_sample(s, l, NULL, 0, &g, &r, NULL) == 4);
    float tie[V] = {0, 3, 1, 3, 0, 0, 0, 0};
    CHECK(aios_sample(s, tie, NULL, 0, &g, &r, NULL) == 1); /* lowest id on ties, as torch.argmax */
    /* repetition penalty 2: positive logits halve, negative double; ids outside V ignored */
    int32_t hist[] = {4, 4, 5, 0, 77, -3};
    memcpy(l, L0, sizeof l);
    g.repetition_penalty = 2.0f;
    aios_sample(s, l, hist, 6, &g, &r, NULL);
    CHECK(l[4] == 1.0f && l[5] == -2.0f && l[0] == 0.5f && l[6] == 1.5f);
    /* presence 0.5 + frequency 0.25 per occurrence */
    memcpy(l, L0, sizeof l);
    g = plain(0.0f);
    g.presence_penalty = 0.5f;
    g.frequency_penalty = 0.25f;
    int32_t id = aios_sample(s, l, hist, 6, &g, &r, NULL);
    CHECK(fabsf(l[4] - (2.0f - 0.5f - 0.5f)) < 1e-6f && fabsf(l[5] - (-1.0f - 0.75f)) < 1e-6f);
    CHECK(id == 6); /* 1.5 now beats 4's 1.0 */
    /* probabilities handed back sum to one and respect top-k */
    float pr[V];
    memcpy(l, L0, sizeof l);
    aios_sampling k2 = plain(1.0f);
    k2.top_k = 2;
    aios_sample(s, l, NULL, 0, &k2, &r, pr);
    double sum = 0;
    int nz = 0;
    for (int i = 0; i < V; i++) sum += pr[i], nz += pr[i] > 0;
    CHECK(fabs(sum - 1) < 1e-6 && nz == 2 && pr[4] > pr[6] && pr[6] > 0);
    aios_sampler_free(s);
}

/* A large vocabulary: top-k selection agrees with a full sort. */
static void test_top_k_large(void) {
    enum { BV = 50000 };
    aios_sampler *s = NULL;
    CHECK_OK(aios_sampler_create(BV, &s));
    float *l = malloc(BV * sizeof *l), *pr = malloc(BV * sizeof *pr);
    aios_rng r;
    aios_rng_seed(&r, 3);
    for (int i = 0; i < BV; i++) l[i] = (float)(aios_rng_uniform(&r) * 10);
    float *copy = malloc(BV * sizeof *copy);
    memcpy(copy, l, BV * sizeof *l);
    aios_sampling p = plain(1.0f);
    p.top_k = 40;
    aios_sample(s, l, NULL, 0, &p, &r, pr);
    /* the 40 kept are exactly those with logit >= the 40th largest */
    float *sorted = malloc(BV * sizeof *sorted);
    memcpy(sorted, copy, BV * sizeof *copy);
    for (int k = 0; k < 40; k++) /* partial selection sort: fine for a test */
        for (int i = k + 1; i < BV; i++)
            if (sorted[i] > sorted[k]) {
                float t = sorted[k];
                sorted[k] = sorted[i];
                sorted[i] = t;
            }
    int kept = 0, wrong = 0;
    for (int i = 0; i < BV; i++) {
        kept += pr[i] > 0;
        wrong += (pr[i] > 0) != (copy[i] >= sorted[39]);
    }
    CHECK(kept == 40 && wrong == 0);
    free(l), free(pr), free(copy), free(sorted);
    aios_sampler_free(s);
}

int main(void) {
    RUN(test_temperature_distribution);
    RUN(test_top_k_distribution);
    RUN(test_top_p_distribution);
    RUN(test_min_p_distribution);
    RUN(test_seed_reproducible);
    RUN(test_greedy_and_penalties);
    RUN(test_top_k_large);
    TEST_MAIN_END();
}
