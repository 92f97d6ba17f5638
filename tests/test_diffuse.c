/* test_diffuse.c — NoiseScheduler, DiscreteSampler and UncertaintyEstimator against toy
 * denoisers (no model needed).  The real models' goldens are checked by
 * tests/py/test_diffuse_golden.py and tests/test_diffuse_models.c. */
#include <math.h>
#include <stdint.h>

#include "core/internal.h"
#include "test.h"

/* ---------------------------------------------------------------------------------------
 * Toy denoiser: a two-"layer" model whose logits depend on every visible token, with a real
 * KV cache.  e_j = g(id_j, pos_j) (layer 0, depends on the token only); k_j = e_j + 0.3 *
 * mean of e over the keys row j sees (layer 1, depends on context: stale in a Fast-dLLM prefix
 * cache, exact in a block-causal cache).  Row i's logits: h_i = mean over visible j of
 * k_j cos(0.1 (pos_i - pos_j)); logit[v] = 4 sin(h_i (v + 1) 0.7 + e_i v).
 * -------------------------------------------------------------------------------------- */
#define TV 50
#define TMAX 512
typedef struct {
    int64_t max_ctx;
    double ce[TMAX], ck[TMAX];
    int cpos[TMAX];
    int calls;
    int64_t rows;
    int mask_bias;   /* make the mask token the argmax everywhere */
    int prefer_tok;  /* > 0: strongly prefer this token at every position */
    int bad_vis;     /* set when vis looked wrong */
} toy;

static double toy_g(int32_t id, int32_t pos) { return sin(0.61 * id + 0.17 * pos) + 0.05 * (id % 7); }

static aios_status toy_forward(void *ctx, const int32_t *ids, const int32_t *pos, int64_t n_new, int64_t n_past,
                               const uint8_t *vis, int64_t out_lo, int64_t n_out, float *logits) {
    toy *t = ctx;
    int64_t n = n_past + n_new;
    if (n > TMAX || (n_past > 0 && t->max_ctx == 0)) return aios__err(AIOS_ERR_INVALID_ARG, "toy: cache misuse");
    double e[TMAX], k[TMAX];
    int ps[TMAX];
    for (int64_t j = 0; j < n_past; j++) {
        e[j] = t->ce[j];
        k[j] = t->ck[j];
        ps[j] = t->cpos[j];
    }
    for (int64_t r = 0; r < n_new; r++) {
        e[n_past + r] = toy_g(ids[r], pos[r]);
        ps[n_past + r] = pos[r];
    }
    for (int64_t r = 0; r < n_new; r++) {
        const uint8_t *v = vis + r * n;
        if (!v[n_past + r]) t->bad_vis = 1; /* a row always sees itself */
        double s = 0;
        int cnt = 0;
        for (int64_t j = 0; j < n; j++)
            if (v[j]) {
                s += e[j];
                cnt++;
            }
        k[n_past + r] = e[n_past + r] + 0.3 * s / cnt;
    }
    for (int64_t o = 0; o < n_out; o++) {
        int64_t r = out_lo + o, i = n_past + r;
        const uint8_t *v = vis + r * n;
        double h = 0;
        int cnt = 0;
        for (int64_t j = 0; j < n; j++)
            if (v[j]) {
                h += k[j] * cos(0.1 * (ps[i] - ps[j]));
                cnt++;
            }
        h /= cnt;
        float *l = logits + o * TV;
        for (int vv = 0; vv < TV; vv++) l[vv] = (float)(4.0 * sin(h * (vv + 1) * 0.7 + e[i] * vv));
        if (t->mask_bias) l[TV - 1] = 100.0f;
        if (t->prefer_tok > 0) l[t->prefer_tok] += 50.0f;
    }
    if (t->max_ctx > 0)
        for (int64_t r = 0; r < n_new; r++) {
            t->ce[n_past + r] = e[n_past + r];
            t->ck[n_past + r] = k[n_past + r];
            t->cpos[n_past + r] = pos[r];
        }
    t->calls++;
    t->rows += n_new;
    return AIOS_OK;
}

static aios_denoiser toy_dn(toy *t, aios_denoise_attn attn, int64_t max_ctx) {
    memset(t, 0, sizeof *t);
    t->max_ctx = max_ctx;
    aios_denoiser d;
    memset(&d, 0, sizeof d);
    d.ctx = t;
    d.n_vocab = TV;
    d.mask_id = TV - 1;
    d.pad_id = TV - 2;
    d.attn = attn;
    d.block_size = 4;
    d.max_ctx = max_ctx;
    d.forward = toy_forward;
    return d;
}

static const int32_t PROMPT[] = {3, 14, 15, 9, 26, 5};

static int same_ids(const aios_diffuse_result *a, const aios_diffuse_result *b) {
    return a->n_ids == b->n_ids && !memcmp(a->ids, b->ids, (size_t)a->n_ids * sizeof(int32_t));
}

static int no_masks(const aios_diffuse_result *r, int32_t mask) {
    for (int64_t i = 0; i < r->n_ids; i++)
        if (r->ids[i] == mask) return 0;
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * NoiseScheduler
 * -------------------------------------------------------------------------------------- */
static void test_noise_schedules(void) {
    CHECK(aios_noise_mask_rate(AIOS_NOISE_LINEAR, 0) == 0 && aios_noise_mask_rate(AIOS_NOISE_LINEAR, 1) == 1);
    CHECK(aios_noise_mask_rate(AIOS_NOISE_COSINE, 0) == 0 && fabs(aios_noise_mask_rate(AIOS_NOISE_COSINE, 1) - 1) < 1e-15);
    CHECK(fabs(aios_noise_mask_rate(AIOS_NOISE_LINEAR, 0.25) - 0.25) < 1e-15);
    CHECK(fabs(aios_noise_mask_rate(AIOS_NOISE_COSINE, 0.5) - sin(M_PI / 4)) < 1e-15);
    CHECK(aios_noise_mask_rate(AIOS_NOISE_COSINE, -3) == 0 && aios_noise_mask_rate(AIOS_NOISE_LINEAR, 7) == 1);
    CHECK(aios_noise_mask_rate(AIOS_NOISE_LINEAR, NAN) == 0);
    double prev = -1;
    for (int i = 0; i <= 100; i++) { /* monotone */
        double r = aios_noise_mask_rate(AIOS_NOISE_COSINE, i / 100.0);
        CHECK(r >= prev);
        prev = r;
    }
    double ts[11];
    CHECK_OK(aios_noise_timesteps(10, 1e-3, ts));
    CHECK(ts[0] == 1.0 && ts[10] == 1e-3);
    for (int i = 0; i <= 10; i++) CHECK(fabs(ts[i] - (1 - i * (1 - 1e-3) / 10)) < 1e-15);
    CHECK(aios_noise_timesteps(0, 1e-3, ts) == AIOS_ERR_INVALID_ARG);
    CHECK(aios_noise_timesteps(4, 1.5, ts) == AIOS_ERR_INVALID_ARG);
}

static void test_noise_commit_plan(void) {
    int64_t c[64];
    for (int sched = 0; sched < 2; sched++)
        for (int64_t m = 0; m <= 40; m += 3)
            for (int s = 1; s <= 20; s++) {
                CHECK_OK(aios_noise_commit_plan((aios_noise_schedule)sched, m, s, c));
                int64_t sum = 0;
                for (int i = 0; i < s; i++) {
                    CHECK(c[i] >= 0);
                    if (m >= s) CHECKF(c[i] >= 1, "m %lld s %d step %d: %lld", (long long)m, s, i, (long long)c[i]);
                    sum += c[i];
                }
                CHECK(sum == m);
            }
    /* MaskGIT cosine: 16 masks, 4 steps -> left after each step round(16 cos(pi/2 * r)):
     * r = 1/4: 14.78 -> 15, r = 2/4: 11.31 -> 11, r = 3/4: 6.12 -> 6, then 0 */
    CHECK_OK(aios_noise_commit_plan(AIOS_NOISE_COSINE, 16, 4, c));
    CHECK(c[0] == 1 && c[1] == 4 && c[2] == 5 && c[3] == 6);
    /* linear: even */
    CHECK_OK(aios_noise_commit_plan(AIOS_NOISE_LINEAR, 16, 4, c));
    CHECK(c[0] == 4 && c[1] == 4 && c[2] == 4 && c[3] == 4);
}

static void test_noise_add(void) {
    enum { N = 100000 };
    static int32_t ids[N], out[N], out2[N];
    static uint8_t msk[N];
    for (int i = 0; i < N; i++) ids[i] = i % 97;
    double pm;
    CHECK_OK(aios_noise_add(AIOS_NOISE_LINEAR, ids, N, 100, 0.3, 1e-3, 99, 42, out, msk, &pm));
    CHECK(fabs(pm - (1e-3 + (1 - 1e-3) * 0.3)) < 1e-15);
    int64_t cnt = 0;
    for (int i = 0; i < N; i++) {
        if (i < 100) CHECK(!msk[i] && out[i] == ids[i]);
        CHECK(msk[i] ? out[i] == 99 : out[i] == ids[i]);
        cnt += msk[i];
    }
    /* binomial: mean p (N - 100), sd ~ 145; allow 5 sd */
    double expect = pm * (N - 100), sd = sqrt(expect * (1 - pm));
    CHECKF(fabs((double)cnt - expect) < 5 * sd, "masked %lld expected %.0f", (long long)cnt, expect);
    CHECK_OK(aios_noise_add(AIOS_NOISE_LINEAR, ids, N, 100, 0.3, 1e-3, 99, 42, out2, NULL, NULL));
    CHECK(!memcmp(out, out2, sizeof out)); /* same seed, same mask */
    CHECK_OK(aios_noise_add(AIOS_NOISE_LINEAR, ids, N, 100, 0.3, 1e-3, 99, 43, out2, NULL, NULL));
    CHECK(memcmp(out, out2, sizeof out) != 0);
    CHECK_OK(aios_noise_add(AIOS_NOISE_COSINE, ids, N, 0, 1.0, 0, 99, 1, out2, NULL, &pm));
    CHECK(fabs(pm - 1) < 1e-12);
    CHECK(aios_noise_add(AIOS_NOISE_LINEAR, ids, N, 0, 1.5, 0, 99, 1, out2, NULL, NULL) == AIOS_ERR_INVALID_ARG);
}

/* ---------------------------------------------------------------------------------------
 * Sampler with a "target" denoiser whose confidences are known in closed form: position i
 * (relative to the start of generation) wants token T(i) = 1 + i % 40 with a logit margin
 * that makes p(T(i)) = conf[i]; the order of commits must follow conf, the plan must be LLaDA's.
 * -------------------------------------------------------------------------------------- */
typedef struct {
    int64_t gen_start;
    double conf[64];
} target_toy;

static aios_status target_forward(void *ctx, const int32_t *ids, const int32_t *pos, int64_t n_new, int64_t n_past,
                                  const uint8_t *vis, int64_t out_lo, int64_t n_out, float *logits) {
    target_toy *t = ctx;
    for (int64_t o = 0; o < n_out; o++) {
        int64_t i = n_past + out_lo + o, g = i - t->gen_start;
        float *l = logits + o * TV;
        for (int v = 0; v < TV; v++) l[v] = 0;
        if (g >= 0 && g < 64) {
            /* p = e^a / (e^a + (TV - 2)) with the mask logit at -inf: a = log(p (TV-2) / (1-p)) */
            double p = t->conf[g];
            l[1 + g % 40] = (float)log(p * (TV - 2) / (1 - p));
        }
        l[TV - 1] = 1000; /* the mask token: must be ignored */
    }
    return AIOS_OK;
}

static void test_sampler_order_and_plan(void) {
    target_toy t;
    t.gen_start = 6;
    for (int i = 0; i < 64; i++) t.conf[i] = 0.05 + 0.9 * fmod(i * 0.618034, 1.0);
    aios_denoiser d;
    memset(&d, 0, sizeof d);
    d.ctx = &t;
    d.n_vocab = TV;
    d.mask_id = TV - 1;
    d.pad_id = -1;
    d.forward = target_forward;
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 16;
    p.steps = 6;
    p.block_length = 8;
    aios_diffuse_result r;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r));
    CHECK(r.n_ids == 22 && r.n_steps == 6 && r.n_trace == 16 && r.n_forward == 6);
    for (int i = 0; i < 16; i++) CHECK(r.ids[6 + i] == 1 + i % 40);
    CHECK(!memcmp(r.ids, PROMPT, sizeof PROMPT));
    /* LLaDA plan per block: 8 masks over 3 steps = 3, 3, 2; order = descending conf in block */
    int expect_k[6] = {3, 3, 2, 3, 3, 2};
    int64_t ti = 0;
    for (int s = 0; s < 6; s++) {
        int blk = s / 3;
        int n = 0;
        while (ti < r.n_trace && r.trace[ti].step == s) {
            const aios_diffuse_commit *c = &r.trace[ti];
            int g = (int)(c->position - 6);
            CHECK(g >= blk * 8 && g < blk * 8 + 8);
            CHECK(fabs(c->confidence - t.conf[g]) < 1e-5);
            /* every position of the block still masked at this step has lower conf */
            for (int h = blk * 8; h < blk * 8 + 8; h++) {
                int later = 0;
                for (int64_t u = ti + 1; u < r.n_trace; u++)
                    if (r.trace[u].position == 6 + h && r.trace[u].step > s) later = 1;
                if (later) CHECK(t.conf[h] < t.conf[g]);
            }
            ti++;
            n++;
        }
        CHECKF(n == expect_k[s], "step %d committed %d", s, n);
    }
    /* uncertainty: mean of (1 - p) over the 16 commits, entropy normalised */
    double u = 0;
    for (int i = 0; i < 16; i++) u += 1 - t.conf[i];
    CHECK(fabs(r.mean_one_minus_conf - u / 16) < 1e-6);
    CHECK(r.mean_entropy > 0 && r.mean_entropy < 1 && r.uncertainty > 0 && r.uncertainty < 1);
    aios_diffuse_uncertainty_flag(&r, 0.0);
    CHECK(r.uncertain == 1);
    aios_diffuse_uncertainty_flag(&r, 0.99);
    CHECK(r.uncertain == 0);
    aios_diffuse_result_free(&r);

    /* Dream plan: linspace(1, 1e-3, 5) over 8 masks: int(m (1 - t1/t0)) of the m left */
    p.plan = AIOS_PLAN_DREAM;
    p.steps = 8;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r));
    {
        int cnt[8] = {0};
        for (int64_t i = 0; i < r.n_trace; i++) cnt[r.trace[i].step]++;
        double ts[5];
        int64_t left = 8;
        aios_noise_timesteps(4, 1e-3, ts);
        for (int s = 0; s < 4; s++) {
            int64_t k = s < 3 ? (int64_t)(left * (1 - ts[s + 1] / ts[s])) : left;
            CHECKF(cnt[s] == k && cnt[s + 4] == k, "dream step %d: %d/%d vs %lld", s, cnt[s], cnt[s + 4], (long long)k);
            left -= k;
        }
    }
    CHECK(no_masks(&r, TV - 1));
    aios_diffuse_result_free(&r);
}

static void test_mask_never_committed(void) {
    toy t;
    aios_denoiser d = toy_dn(&t, AIOS_DENOISE_FULL, 0);
    t.mask_bias = 1;
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 12;
    p.steps = 12;
    aios_diffuse_result r;
    for (int alg = 0; alg < 4; alg++) {
        p.algorithm = (aios_remask)alg;
        p.temperature = alg == 3 ? 0.7 : 0;
        CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r));
        CHECK(no_masks(&r, TV - 1));
        CHECK(r.n_trace == 12);
        aios_diffuse_result_free(&r);
    }
}

static void test_infilling_keeps_prefix_suffix(void) {
    toy t;
    aios_denoiser d = toy_dn(&t, AIOS_DENOISE_FULL, 0);
    const int32_t suf[] = {7, 8, 9, 10};
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 12;
    p.steps = 6;
    p.block_length = 4;
    p.temperature = 0.9;
    p.seed = 5;
    aios_diffuse_result r;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, suf, 4, &r));
    CHECK(r.n_ids == 22 && r.gen_start == 6 && r.gen_len == 12);
    CHECK(!memcmp(r.ids, PROMPT, sizeof PROMPT));
    CHECK(!memcmp(r.ids + 18, suf, sizeof suf));
    CHECK(no_masks(&r, TV - 1));
    for (int64_t i = 0; i < r.n_trace; i++) CHECK(r.trace[i].position >= 6 && r.trace[i].position < 18);
    aios_diffuse_result_free(&r);
}

static void test_cfg(void) {
    toy t;
    aios_denoiser d = toy_dn(&t, AIOS_DENOISE_FULL, 0);
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 16;
    p.steps = 8;
    aios_diffuse_result a, b, c;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &a));
    int calls_plain = t.calls;
    t.calls = 0;
    p.guidance_scale = 0.0;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &b));
    CHECK(same_ids(&a, &b) && t.calls == calls_plain);
    for (int64_t i = 0; i < a.n_trace; i++) CHECK(a.trace[i].confidence == b.trace[i].confidence);
    t.calls = 0;
    p.guidance_scale = 3.0;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &c));
    CHECK(t.calls == 2 * calls_plain); /* conditional + unconditional per step */
    CHECK(!memcmp(c.ids, PROMPT, sizeof PROMPT) && no_masks(&c, TV - 1));
    int differs = !same_ids(&a, &c);
    for (int64_t i = 0; i < a.n_trace && !differs; i++) differs = a.trace[i].confidence != c.trace[i].confidence;
    CHECK(differs);
    aios_diffuse_result_free(&a);
    aios_diffuse_result_free(&b);
    aios_diffuse_result_free(&c);
}

static void test_seeded_sampling(void) {
    toy t;
    aios_denoiser d = toy_dn(&t, AIOS_DENOISE_FULL, 0);
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 32;
    p.steps = 16;
    p.block_length = 8;
    p.temperature = 1.0;
    p.seed = 1234;
    aios_diffuse_result a, b, c, g;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &a));
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &b));
    CHECK(same_ids(&a, &b));
    p.seed = 99;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &c));
    CHECK(!same_ids(&a, &c));
    p.temperature = 0;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &g));
    CHECK(!same_ids(&a, &g)); /* T = 1 really samples */
    aios_diffuse_result_free(&a);
    aios_diffuse_result_free(&b);
    aios_diffuse_result_free(&c);
    aios_diffuse_result_free(&g);
}

/* Gumbel-max at temperature T draws from softmax(l / T): chi-square on one position. */
static aios_status fixed_forward(void *ctx, const int32_t *ids, const int32_t *pos, int64_t n_new, int64_t n_past,
                                 const uint8_t *vis, int64_t out_lo, int64_t n_out, float *logits) {
    for (int64_t o = 0; o < n_out; o++)
        for (int v = 0; v < 6; v++) logits[o * 6 + v] = (float)(0.5 * v) - (v == 5 ? 0 : 0);
    return AIOS_OK;
}

static void test_gumbel_distribution(void) {
    aios_denoiser d;
    memset(&d, 0, sizeof d);
    d.n_vocab = 6;
    d.mask_id = 5; /* tokens 0..4 with logits 0, .5, 1, 1.5, 2 */
    d.pad_id = -1;
    d.forward = fixed_forward;
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 1;
    p.steps = 1;
    p.temperature = 2.0;
    int32_t prm[1] = {0};
    int cnt[5] = {0};
    enum { R = 4000 };
    for (int i = 0; i < R; i++) {
        aios_diffuse_result r;
        p.seed = (uint64_t)i + 1;
        CHECK_OK(aios_diffuse_sample(&d, &p, prm, 1, NULL, 0, &r));
        if (r.n_ids == 2 && r.ids[1] >= 0 && r.ids[1] < 5) cnt[r.ids[1]]++;
        aios_diffuse_result_free(&r);
    }
    double z = 0, e[5], chi = 0;
    for (int v = 0; v < 5; v++) z += exp(0.5 * v / 2.0);
    for (int v = 0; v < 5; v++) {
        e[v] = R * exp(0.5 * v / 2.0) / z;
        chi += (cnt[v] - e[v]) * (cnt[v] - e[v]) / e[v];
    }
    CHECKF(chi < 18.5, "chi-square %.2f (4 dof, p = 0.001 at 18.47)", chi); /* counts */
}

static void test_threshold_mode(void) {
    toy t;
    aios_denoiser d = toy_dn(&t, AIOS_DENOISE_FULL, 0);
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 16;
    p.block_length = 8;
    p.steps = 16; /* one token per step */
    aios_diffuse_result a, b, c;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &a));
    p.threshold = 1.0;
    p.steps = 3; /* ignored in threshold mode */
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &b));
    CHECK(same_ids(&a, &b) && a.n_trace == b.n_trace && b.n_steps == 16);
    for (int64_t i = 0; i < a.n_trace && i < b.n_trace; i++)
        CHECK(a.trace[i].position == b.trace[i].position && a.trace[i].step == b.trace[i].step);
    /* a low threshold commits several per step, every one above tau except the forced first */
    p.threshold = 0.05;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &c));
    CHECK(c.n_steps < 16 && no_masks(&c, TV - 1) && c.n_trace == 16);
    for (int64_t i = 0; i < c.n_trace; i++) {
        int first = i == 0 || c.trace[i - 1].step != c.trace[i].step;
        if (!first) CHECK(c.trace[i].confidence > 0.05f);
    }
    aios_diffuse_result_free(&a);
    aios_diffuse_result_free(&b);
    aios_diffuse_result_free(&c);
}

static void test_block_causal_exact_cache(void) {
    toy t1, t2;
    aios_denoiser d1 = toy_dn(&t1, AIOS_DENOISE_BLOCK_CAUSAL, 0);
    aios_denoiser d2 = toy_dn(&t2, AIOS_DENOISE_BLOCK_CAUSAL, TMAX);
    for (int B = 4; B <= 8; B += 4) {
        aios_diffuse_params p = aios_diffuse_default_params();
        p.gen_length = 4 * B;
        p.steps = 2 * 4;
        p.block_length = B;
        p.kv_cache = AIOS_KV_NONE;
        aios_diffuse_result a, b;
        t1.rows = t2.rows = 0;
        CHECK_OK(aios_diffuse_sample(&d1, &p, PROMPT, 6, NULL, 0, &a));
        p.kv_cache = AIOS_KV_EXACT;
        CHECK_OK(aios_diffuse_sample(&d2, &p, PROMPT, 6, NULL, 0, &b));
        CHECK(a.left_pad == (B - 6 % B) % B && b.left_pad == a.left_pad);
        for (int64_t i = 0; i < a.left_pad; i++) CHECK(a.ids[i] == TV - 2);
        CHECK(same_ids(&a, &b));
        CHECK(a.n_trace == b.n_trace);
        for (int64_t i = 0; i < a.n_trace && i < b.n_trace; i++) /* bit-identical confidences */
            CHECK(a.trace[i].confidence == b.trace[i].confidence && a.trace[i].position == b.trace[i].position);
        CHECK(b.rows_computed < a.rows_computed);
        CHECK(!t1.bad_vis && !t2.bad_vis);
        aios_diffuse_result_free(&a);
        aios_diffuse_result_free(&b);
    }
    /* AUTO picks the exact cache for a block-causal denoiser that has one */
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 8;
    p.steps = 4;
    aios_diffuse_result r;
    t2.rows = 0;
    CHECK_OK(aios_diffuse_sample(&d2, &p, PROMPT, 6, NULL, 0, &r));
    CHECK(r.rows_computed == 12 + 4 + 8 + 4); /* [pad+prompt, b0], b0, [b0 final, b1], b1 */
    aios_diffuse_result_free(&r);
    /* block-causal + suffix is refused */
    const int32_t suf[1] = {3};
    CHECK(aios_diffuse_sample(&d2, &p, PROMPT, 6, suf, 1, &r) == AIOS_ERR_UNSUPPORTED);
}

static void test_prefix_cache(void) {
    toy t1, t2;
    aios_denoiser d1 = toy_dn(&t1, AIOS_DENOISE_FULL, 0);
    aios_denoiser d2 = toy_dn(&t2, AIOS_DENOISE_FULL, TMAX);
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 32;
    p.steps = 32;
    p.block_length = 8;
    aios_diffuse_result a, b;
    CHECK_OK(aios_diffuse_sample(&d1, &p, PROMPT, 6, NULL, 0, &a));
    p.kv_cache = AIOS_KV_PREFIX;
    CHECK_OK(aios_diffuse_sample(&d2, &p, PROMPT, 6, NULL, 0, &b));
    CHECK(no_masks(&b, TV - 1) && !memcmp(b.ids, PROMPT, sizeof PROMPT));
    /* per block: one full forward (38 rows) and 7 forwards from the block start */
    int64_t expect = 0;
    for (int blk = 0; blk < 4; blk++) expect += 38 + 7 * (38 - (6 + 8 * blk));
    CHECK(b.rows_computed == expect && a.rows_computed == 32 * 38);
    int agree = 0;
    for (int i = 6; i < 38; i++) agree += a.ids[i] == b.ids[i];
    printf("# toy prefix cache: %d/32 tokens agree with the uncached run, rows %lld vs %lld\n", agree,
           (long long)b.rows_computed, (long long)a.rows_computed);
    /* the exact cache is refused for bidirectional models, and any cache without one */
    p.kv_cache = AIOS_KV_EXACT;
    CHECK(aios_diffuse_sample(&d2, &p, PROMPT, 6, NULL, 0, &b) == AIOS_ERR_UNSUPPORTED);
    p.kv_cache = AIOS_KV_PREFIX;
    CHECK(aios_diffuse_sample(&d1, &p, PROMPT, 6, NULL, 0, &b) == AIOS_ERR_UNSUPPORTED);
    aios_diffuse_result_free(&a);
}

static void test_shift_rows(void) {
    /* with shift, the logits of row i-1 decide position i: the target toy moved by one */
    target_toy t;
    t.gen_start = 5; /* row 5 + g predicts position 6 + g */
    for (int i = 0; i < 64; i++) t.conf[i] = 0.1 + 0.8 * fmod(i * 0.618034, 1.0);
    aios_denoiser d;
    memset(&d, 0, sizeof d);
    d.ctx = &t;
    d.n_vocab = TV;
    d.mask_id = TV - 1;
    d.pad_id = -1;
    d.shift = 1;
    d.forward = target_forward;
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 8;
    p.steps = 4;
    aios_diffuse_result r;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r));
    for (int g = 0; g < 8; g++) CHECK(r.ids[6 + g] == 1 + g % 40);
    aios_diffuse_result_free(&r);
}

static void test_stop_at_eos(void) {
    toy t;
    aios_denoiser d = toy_dn(&t, AIOS_DENOISE_FULL, 0);
    t.prefer_tok = 11;
    d.n_eos = 1;
    d.eos_ids[0] = 11;
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 32;
    p.steps = 32;
    p.block_length = 8;
    aios_diffuse_result r;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r));
    /* the first block is all 11s: stop after it, trim after the first EOS */
    CHECK(r.stopped_at_eos && r.n_ids == 7 && r.ids[6] == 11 && r.n_steps == 8 && r.gen_len == 1);
    aios_diffuse_result_free(&r);
    p.stop_at_eos = 0;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r));
    CHECK(!r.stopped_at_eos && r.n_ids == 38 && r.n_steps == 32);
    aios_diffuse_result_free(&r);
}

static void test_top_k_top_p(void) {
    toy t;
    aios_denoiser d = toy_dn(&t, AIOS_DENOISE_FULL, 0);
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 8;
    p.steps = 8;
    aios_diffuse_result a, b;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &a));
    /* at T = 0 top-k 1 keeps the argmax and makes every confidence 1 */
    p.top_k = 1;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &b));
    for (int64_t i = 0; i < b.n_trace; i++) CHECK(b.trace[i].confidence == 1.0f);
    aios_diffuse_result_free(&b);
    /* tiny top-p at high temperature still returns the argmax token */
    p.top_k = 0;
    p.top_p = 1e-9;
    p.temperature = 5;
    p.steps = 8;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &b));
    for (int64_t i = 0; i < b.n_trace; i++) CHECK(b.trace[i].confidence == 1.0f);
    aios_diffuse_result_free(&a);
    aios_diffuse_result_free(&b);
}

static void test_bad_params(void) {
    toy t;
    aios_denoiser d = toy_dn(&t, AIOS_DENOISE_FULL, 0);
    aios_diffuse_params p = aios_diffuse_default_params();
    aios_diffuse_result r;
    p.gen_length = 10;
    p.block_length = 4;
    CHECK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r) == AIOS_ERR_INVALID_ARG);
    CHECK(strstr(aios_last_error(), "block_length") != NULL);
    p = aios_diffuse_default_params();
    p.gen_length = 16;
    p.block_length = 4;
    p.steps = 3;
    CHECK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r) == AIOS_ERR_INVALID_ARG);
    p.steps = 8;
    int32_t bad[2] = {1, 999};
    CHECK(aios_diffuse_sample(&d, &p, bad, 2, NULL, 0, &r) == AIOS_ERR_INVALID_ARG);
    p.top_p = 0;
    CHECK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r) == AIOS_ERR_INVALID_ARG);
    p.top_p = 1;
    p.threshold = 2;
    CHECK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r) == AIOS_ERR_INVALID_ARG);
    p.threshold = 0;
    p.temperature = NAN;
    CHECK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r) == AIOS_ERR_INVALID_ARG);
    CHECK(aios_diffuse_sample(NULL, &p, PROMPT, 6, NULL, 0, &r) == AIOS_ERR_INVALID_ARG);
    CHECK(aios_remask_parse("margin") == AIOS_REMASK_MARGIN && aios_remask_parse("x") == -1);
    aios_diffuse_result_free(NULL);
    /* gen_length 0 returns the prompt */
    p = aios_diffuse_default_params();
    p.gen_length = 0;
    CHECK_OK(aios_diffuse_sample(&d, &p, PROMPT, 6, NULL, 0, &r));
    CHECK(r.n_ids == 6 && r.n_steps == 0);
    aios_diffuse_result_free(&r);
}

/* ---------------------------------------------------------------------------------------
 * MemoryConditioner with a toy retriever (fixed ranked hits) and a word tokenizer (one id per
 * space-separated word: its length * 100 + first byte; "\n" -> 7).
 * -------------------------------------------------------------------------------------- */
static aios_status toy_tok(void *user, const char *text, int32_t *ids, int64_t cap, int64_t *n) {
    int64_t k = 0;
    if (!strcmp(text, "\n")) {
        if (cap > 0) ids[0] = 7;
        *n = 1;
        return AIOS_OK;
    }
    for (const char *p = text; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *q = p;
        while (*q && *q != ' ') q++;
        if (k < cap) ids[k] = (int32_t)((q - p) * 100 + (unsigned char)*p);
        k++;
        p = q;
    }
    *n = k;
    return AIOS_OK;
}

static aios_status toy_retrieve(void *user, const char *query, int32_t top_k, aios_memcond_hit *hits, int32_t *n) {
    static const aios_memcond_hit all[] = {
        {"m1", "spring is warm", 0.9f},
        {"m2", "flowers bloom", 0.8f},
        {"m3", "a very long memory that cannot fit in the budget at all", 0.7f},
        {"m4", "rain", 0.6f},
        {"m5", "low score", 0.1f},
    };
    if (!strcmp(query, "fail")) return aios__err(AIOS_ERR_IO, "toy store unavailable");
    int32_t k = top_k < 5 ? top_k : 5;
    for (int32_t i = 0; i < k; i++) hits[i] = all[i];
    *n = k;
    (void)user;
    return AIOS_OK;
}

static void test_memory_conditioner(void) {
    const int32_t prompt[4] = {101, 11, 12, 13}; /* [CLS] + 3 prompt tokens */
    aios_memcond_params p = aios_memcond_default_params();
    p.top_k = 5;
    p.token_budget = 8;
    p.min_score = 0.5f;
    aios_memcond_result r;
    CHECK_OK(aios_memcond_build(toy_retrieve, NULL, toy_tok, NULL, "what about spring", prompt, 4, 1, &p, &r));
    /* m1: 3 words + sep = 4; m2: 2 + 1 = 3 (total 7); m3 too long: skipped; m4: 1 + 1 = 2 > 1 left: skipped;
     * m5 below min_score */
    CHECK(r.n_used == 2 && !strcmp(r.used_ids[0], "m1") && !strcmp(r.used_ids[1], "m2"));
    CHECK(r.used_scores[0] == 0.9f && r.n_memory_tokens == 7 && r.n_ids == 11);
    const int32_t want[11] = {101, 600 + 's', 200 + 'i', 400 + 'w', 7, 700 + 'f', 500 + 'b', 7, 11, 12, 13};
    CHECK(r.n_ids == 11 && !memcmp(r.ids, want, sizeof want));
    aios_memcond_result_free(&r);
    /* a bigger budget takes m4 too (m3 still skipped, never cut) */
    p.token_budget = 9;
    CHECK_OK(aios_memcond_build(toy_retrieve, NULL, toy_tok, NULL, "q", prompt, 4, 1, &p, &r));
    CHECK(r.n_used == 3 && !strcmp(r.used_ids[2], "m4") && r.n_memory_tokens == 9);
    aios_memcond_result_free(&r);
    /* budget 0 or top_k 0: the prompt unchanged */
    p.token_budget = 0;
    CHECK_OK(aios_memcond_build(toy_retrieve, NULL, toy_tok, NULL, "q", prompt, 4, 1, &p, &r));
    CHECK(r.n_used == 0 && r.n_ids == 4 && !memcmp(r.ids, prompt, sizeof prompt));
    aios_memcond_result_free(&r);
    /* retriever errors come back with context */
    p.token_budget = 100;
    CHECK(aios_memcond_build(toy_retrieve, NULL, toy_tok, NULL, "fail", prompt, 4, 1, &p, &r) == AIOS_ERR_IO);
    CHECK(strstr(aios_last_error(), "toy store unavailable") != NULL);
    CHECK(aios_memcond_build(toy_retrieve, NULL, toy_tok, NULL, "q", prompt, 4, 5, &p, &r) == AIOS_ERR_INVALID_ARG);
    aios_memcond_result_free(NULL);
}

int main(void) {
    RUN(test_noise_schedules);
    RUN(test_noise_commit_plan);
    RUN(test_noise_add);
    RUN(test_sampler_order_and_plan);
    RUN(test_mask_never_committed);
    RUN(test_infilling_keeps_prefix_suffix);
    RUN(test_cfg);
    RUN(test_seeded_sampling);
    RUN(test_gumbel_distribution);
    RUN(test_threshold_mode);
    RUN(test_block_causal_exact_cache);
    RUN(test_prefix_cache);
    RUN(test_shift_rows);
    RUN(test_stop_at_eos);
    RUN(test_top_k_top_p);
    RUN(test_bad_params);
    RUN(test_memory_conditioner);
    TEST_MAIN_END();
}
