/*
 * diffuse.c — DiscreteSampler: masked-diffusion text generation against aios_denoiser.
 *
 * The canvas is  [left pad] prompt [MASK] * gen_length [suffix].  The generated span is cut
 * into blocks of block_length (semi-autoregressive decoding, LLaDA §2.4); each block gets its
 * share of the steps and is finished before the next one starts.  At each step:
 *   1. logits of the rows that predict the current block's positions (row i, or row i-1 for
 *      Dream-style `shift` models); with classifier-free guidance also of the canvas with the
 *      prompt masked, mixed as  l_u + (g + 1)(l_c - l_u)  (LLaDA's cfg);
 *   2. for every masked position of the block: the mask token's logit is set to -inf, top-k /
 *      top-p filter, p = softmax (float64); the proposal x0 = argmax(l + T * Gumbel) with the
 *      Gumbel noise in float64 (LLaDA's add_gumbel_noise: low-precision Gumbel noise degrades
 *      quality, their Appendix B.2), x0 = argmax(l) at T = 0;
 *   3. confidence = p(x0) (low_confidence), p1 - p2 (margin), -H(p) (entropy) or uniform random;
 *   4. the k most confident are committed (ties: lower position first, as a stable sort does),
 *      k from the plan: LLaDA's even split, Dream's linspace(1, eps) plan, or MaskGIT cosine;
 *      or, in Fast-dLLM's threshold mode, every one above tau (at least the best one).
 * The goldens in ../shared/fixtures/models/<*>/diffusion_golden.json follow exactly this
 * recipe at T = 0 (fixtures/README.md); the per-commit trace is kept for comparing with them.
 *
 * Attention and caches.  A block-causal denoiser (BD3LM / A2D: key j visible to query i iff
 * block(j) <= block(i) and j is not padding) gets the prompt left-padded to a multiple of the
 * block length, RoPE positions that count non-pad tokens, and only the canvas up to the end of
 * the current block (later blocks are invisible to it anyway).  Caches (denoiser max_ctx > 0):
 *   EXACT  (block-causal): rows before the current block never change and never attend to it,
 *          so their K/V are final; each call recomputes only from the first row whose K/V is not
 *          final yet (the block just finished, on the first step of the next block).  Output is
 *          identical to the uncached path.
 *   PREFIX (Fast-dLLM, Wu et al. 2025, "prefix KV cache"): for bidirectional models the K/V of
 *          everything before the current block are computed by a full forward on the block's
 *          first step and reused for the block's other steps — an approximation, since with
 *          bidirectional attention those K/V would change as the block fills in.
 * Stopping: with stop_at_eos, after a block that contains an EOS id the run ends and the
 * canvas is trimmed just after the first EOS (LLaDA / Fast-dLLM early exit).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/diffuse.h"

aios_diffuse_params aios_diffuse_default_params(void) {
    aios_diffuse_params p;
    memset(&p, 0, sizeof p);
    p.gen_length = 128;
    p.steps = 128;
    p.block_length = 0;
    p.algorithm = AIOS_REMASK_LOW_CONFIDENCE;
    p.plan = AIOS_PLAN_LLADA;
    p.plan_eps = 1e-3;
    p.temperature = 0;
    p.top_k = 0;
    p.top_p = 1.0;
    p.guidance_scale = 0;
    p.threshold = 0;
    p.kv_cache = AIOS_KV_AUTO;
    p.stop_at_eos = 1;
    p.seed = 0;
    p.keep_trace = 1;
    p.add_special_tokens = 1;
    p.memory_top_k = 3;
    p.memory_token_budget = 256;
    p.uncertainty_threshold = 0.7;
    return p;
}

static const char *const g_remask_names[] = {"low_confidence", "margin", "entropy", "random"};

int aios_remask_parse(const char *s) {
    if (!s) return -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, g_remask_names[i])) return i;
    return -1;
}

const char *aios_remask_name(aios_remask a) {
    return (unsigned)a < 4 ? g_remask_names[a] : "unknown";
}

void aios_diffuse_result_free(aios_diffuse_result *r) {
    if (!r) return;
    free(r->ids);
    free(r->trace);
    free(r->step_entropy);
    free(r->step_one_minus_conf);
    free(r->text);
    free(r->memory_ids);
    free(r->memory_scores);
    memset(r, 0, sizeof *r);
}

/* LLaDA's get_num_transfer_tokens: M div s each, one more for the first M mod s steps. */
static void plan_llada(int64_t m, int s, int64_t *counts) {
    for (int i = 0; i < s; i++) counts[i] = m / s + (i < m % s ? 1 : 0);
}

typedef struct {
    int64_t idx;   /* canvas position */
    double conf;
} cand;

/* Descending confidence, ascending position on ties (Python's stable sort on -conf). */
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->conf > y->conf) return -1;
    if (x->conf < y->conf) return 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_desc_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

/* Everything one sampling run needs, allocated once (STYLE.md: allocate at lifetime bounds). */
typedef struct {
    const aios_denoiser *dn;
    const aios_diffuse_params *p;
    int64_t V;
    int64_t N;          /* full canvas length */
    int32_t *x;         /* canvas (N) */
    int32_t *xu;        /* unconditional canvas for CFG (N) or NULL */
    int32_t *pos;       /* RoPE positions (N) */
    uint8_t *ispad;     /* (N) */
    uint8_t *vis;       /* (N, N) visibility of the rows being computed */
    float *logits;      /* (rows, V) */
    float *logits_u;    /* CFG: (rows, V) */
    double *prob;       /* (V) */
    double *tmp;        /* (V) top-k / top-p scratch */
    cand *cands;        /* (block) */
    int32_t *x0;        /* (block) proposals */
    double *pp;         /* (block) probability of the proposal */
    double *ent;        /* (block) entropy */
    int64_t B;          /* block length */
    int64_t logits_rows;
    uint64_t rng;
} run_ctx;

/* Fills the visibility of rows [start, n) against keys [0, n). */
static void build_vis(run_ctx *c, int64_t start, int64_t n) {
    int64_t rows = n - start;
    if (c->dn->attn != AIOS_DENOISE_BLOCK_CAUSAL) {
        memset(c->vis, 1, (size_t)(rows * n));
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = start + r, bi = i / c->B;
        uint8_t *v = c->vis + r * n;
        for (int64_t j = 0; j < n; j++) v[j] = (uint8_t)(j == i || (j / c->B <= bi && !c->ispad[j]));
    }
}

static aios_status call_forward(run_ctx *c, const int32_t *ids, int64_t start, int64_t n, int64_t rlo, int64_t rhi,
                                float *out, int64_t *n_fwd, int64_t *rows) {
    build_vis(c, start, n);
    aios_status s = c->dn->forward(c->dn->ctx, ids + start, c->pos + start, n - start, start, c->vis, rlo - start,
                                   rhi - rlo, out);
    if (s != AIOS_OK) return aios__err_prefix(s, "diffuse: denoiser");
    (*n_fwd)++;
    *rows += n - start;
    c->logits_rows += rhi - rlo;
    return AIOS_OK;
}

/* Without top-k / top-p the softmax never needs materialising: with m = max l, e_v = exp(l_v - m)
 * and Z = sum e_v, p_v = e_v / Z and the entropy is H = log Z - sum(e_v (l_v - m)) / Z — one exp
 * per logit instead of an exp and two logs (the LM head's vocabulary can be 150k wide).  The
 * results are those of the general path below (same formulas, same argmax tie rule). */
static void propose_fast(run_ctx *c, float *l, int32_t *tok, double *conf, double *pprop, double *entropy) {
    const aios_diffuse_params *p = c->p;
    const int64_t V = c->V;
    int64_t best = -1, second = -1;
    for (int64_t v = 0; v < V; v++) {
        if (!(l[v] > -INFINITY)) continue; /* -inf (the mask) and NaN never win */
        if (best < 0 || l[v] > l[best]) {
            second = best;
            best = v;
        } else if (second < 0 || l[v] > l[second]) {
            second = v;
        }
    }
    if (best < 0) best = c->dn->mask_id == 0 ? 1 : 0; /* all -inf: degenerate row */
    const double mx = best >= 0 && l[best] > -INFINITY ? (double)l[best] : 0;
    double z = 0, s1 = 0;
    for (int64_t v = 0; v < V; v++) {
        if (!(l[v] > -INFINITY)) continue;
        double d = (double)l[v] - mx, e = exp(d);
        z += e;
        s1 += e * d;
    }
    if (!(z > 0)) z = 1;
    int64_t x0 = best;
    if (p->temperature > 0) {
        /* Gumbel-max in float64: argmax l - T log(-log u) (LLaDA's add_gumbel_noise) */
        double bv = -INFINITY;
        x0 = best;
        for (int64_t v = 0; v < V; v++) {
            double u = aios__rng_uniform(&c->rng);
            if (!(l[v] > -INFINITY)) continue;
            double sv = (double)l[v] - p->temperature * log(-log(u));
            if (sv > bv) {
                bv = sv;
                x0 = v;
            }
        }
    }
    double px0 = exp((double)l[x0] - mx) / z;
    if (!(px0 >= 0)) px0 = 0; /* NaN logit */
    double h = log(z) - s1 / z;
    if (!(h >= 0)) h = 0;
    *tok = (int32_t)x0;
    *pprop = px0;
    *entropy = h;
    switch (p->algorithm) {
    case AIOS_REMASK_MARGIN:
        *conf = 1.0 / z - (second >= 0 ? exp((double)l[second] - mx) / z : 0);
        if (!(*conf >= 0)) *conf = 0;
        break;
    case AIOS_REMASK_ENTROPY: *conf = -h; break;
    case AIOS_REMASK_RANDOM: *conf = aios__rng_uniform(&c->rng); break;
    default: *conf = px0; break;
    }
}

/* One masked position: filter, softmax, propose, score.  l (V) is modified in place. */
static void propose(run_ctx *c, float *l, int32_t *tok, double *conf, double *pprop, double *entropy) {
    const aios_diffuse_params *p = c->p;
    const int64_t V = c->V;
    double *pr = c->prob;
    int32_t mask_id = c->dn->mask_id;
    if (mask_id >= 0 && mask_id < V) l[mask_id] = -INFINITY; /* the mask token is never committed */
    if (!(p->top_k > 0 && p->top_k < V) && !(p->top_p > 0 && p->top_p < 1)) {
        propose_fast(c, l, tok, conf, pprop, entropy);
        return;
    }
    for (int64_t v = 0; v < V; v++) pr[v] = isnan(l[v]) ? -INFINITY : (double)l[v];
    /* top-k: keep the k largest logits (ties at the k-th value are kept) */
    if (p->top_k > 0 && p->top_k < V) {
        memcpy(c->tmp, pr, (size_t)V * sizeof(double));
        qsort(c->tmp, (size_t)V, sizeof(double), cmp_desc_double);
        double kth = c->tmp[p->top_k - 1];
        for (int64_t v = 0; v < V; v++)
            if (pr[v] < kth) pr[v] = -INFINITY;
    }
    /* softmax in float64 */
    double mx = -INFINITY;
    for (int64_t v = 0; v < V; v++)
        if (pr[v] > mx) mx = pr[v];
    double sum = 0;
    for (int64_t v = 0; v < V; v++) {
        double e = pr[v] == -INFINITY ? 0 : exp(pr[v] - mx);
        pr[v] = e;
        sum += e;
    }
    if (!(sum > 0)) { /* every logit -inf / NaN: a degenerate row; uniform over the non-mask tokens */
        for (int64_t v = 0; v < V; v++) pr[v] = v == mask_id ? 0 : 1.0;
        sum = (double)(V - (mask_id >= 0 && mask_id < V));
    }
    for (int64_t v = 0; v < V; v++) pr[v] /= sum;
    /* top-p: keep the smallest set of most probable tokens whose mass reaches top_p */
    if (p->top_p > 0 && p->top_p < 1) {
        memcpy(c->tmp, pr, (size_t)V * sizeof(double));
        qsort(c->tmp, (size_t)V, sizeof(double), cmp_desc_double);
        double cum = 0, cut = 0;
        for (int64_t v = 0; v < V; v++) {
            cum += c->tmp[v];
            cut = c->tmp[v];
            if (cum >= p->top_p) break;
        }
        double s2 = 0;
        for (int64_t v = 0; v < V; v++) {
            if (pr[v] < cut) pr[v] = 0;
            s2 += pr[v];
        }
        if (s2 > 0)
            for (int64_t v = 0; v < V; v++) pr[v] /= s2;
    }
    /* proposal: argmax (first index on ties, as torch.argmax), or Gumbel-max at T > 0:
     * argmax exp(l) / (-log u)^T  ==  argmax l - T log(-log u), all in float64 */
    int64_t best = 0;
    double bestv = -INFINITY;
    int any = 0;
    for (int64_t v = 0; v < V; v++) {
        if (pr[v] <= 0) {
            if (p->temperature > 0) (void)aios__rng_uniform(&c->rng); /* same draws whatever the filter */
            continue;
        }
        double s = log(pr[v]);
        if (p->temperature > 0) s -= p->temperature * log(-log(aios__rng_uniform(&c->rng)));
        if (!any || s > bestv) {
            bestv = s;
            best = v;
            any = 1;
        }
    }
    double p1 = pr[best], h = 0;
    for (int64_t v = 0; v < V; v++) {
        if (pr[v] > 0) h -= pr[v] * log(pr[v]);
    }
    *tok = (int32_t)best;
    *pprop = p1;
    *entropy = h;
    switch (p->algorithm) {
    case AIOS_REMASK_MARGIN: {
        /* top-1 minus top-2 of the distribution (Dream's topk_margin) */
        double t1 = 0, t2 = 0;
        for (int64_t v = 0; v < V; v++) {
            if (pr[v] > t1) {
                t2 = t1;
                t1 = pr[v];
            } else if (pr[v] > t2) {
                t2 = pr[v];
            }
        }
        *conf = t1 - t2;
        break;
    }
    case AIOS_REMASK_ENTROPY: *conf = -h; break;
    case AIOS_REMASK_RANDOM: *conf = aios__rng_uniform(&c->rng); break;
    default: *conf = p1; break;
    }
}

static aios_status validate(const aios_denoiser *dn, const aios_diffuse_params *p, int64_t n_prompt,
                            const int32_t *prompt, int64_t n_suffix, const int32_t *suffix) {
    if (!dn || !dn->forward) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: no denoiser");
    if (dn->n_vocab < 2 || dn->n_vocab > (1ll << 31))
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: n_vocab %lld", (long long)dn->n_vocab);
    if (dn->mask_id < 0 || dn->mask_id >= dn->n_vocab)
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: mask_id %d outside the vocabulary", dn->mask_id);
    if (n_prompt < 0 || (n_prompt > 0 && !prompt)) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: prompt");
    if (n_suffix < 0 || (n_suffix > 0 && !suffix)) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: suffix");
    for (int64_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= dn->n_vocab)
            return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: prompt id %d at %lld outside the vocabulary",
                             prompt[i], (long long)i);
    for (int64_t i = 0; i < n_suffix; i++)
        if (suffix[i] < 0 || suffix[i] >= dn->n_vocab)
            return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: suffix id %d at %lld outside the vocabulary",
                             suffix[i], (long long)i);
    if (p->gen_length < 0 || p->gen_length > (1 << 24))
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: gen_length %lld", (long long)p->gen_length);
    if (p->block_length < 0) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: block_length < 0");
    if ((unsigned)p->algorithm > AIOS_REMASK_RANDOM) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: algorithm");
    if ((unsigned)p->plan > AIOS_PLAN_COSINE) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: plan");
    if ((unsigned)p->kv_cache > AIOS_KV_AUTO) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: kv_cache");
    if (!(p->temperature >= 0) || p->temperature > 1e6)
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: temperature %g", p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1)) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: top_p %g not in (0, 1]", p->top_p);
    if (p->top_k < 0) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: top_k %d", p->top_k);
    if (!(p->guidance_scale >= 0)) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: guidance_scale %g", p->guidance_scale);
    if (!(p->threshold >= 0 && p->threshold <= 1))
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: threshold %g not in [0, 1]", p->threshold);
    if (p->plan == AIOS_PLAN_DREAM && !(p->plan_eps >= 0 && p->plan_eps < 1))
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: plan_eps %g", p->plan_eps);
    return AIOS_OK;
}

/* Commit counts for one block: m masks over s steps. */
static aios_status block_plan(const aios_diffuse_params *p, int64_t m, int s, int64_t *counts) {
    switch (p->plan) {
    case AIOS_PLAN_COSINE: return aios_noise_commit_plan(AIOS_NOISE_COSINE, m, s, counts);
    case AIOS_PLAN_DREAM: {
        /* Dream's sampler: times t = linspace(1, eps, s + 1); at step i commit
         * int(left * (1 - t[i+1] / t[i])) of the `left` still masked, all at the last step.
         * Counts depend only on m, so they are fixed here. */
        double tt[2];
        int64_t left = m;
        for (int i = 0; i < s; i++) {
            double step = (p->plan_eps - 1.0) / s;
            tt[0] = 1.0 + i * step;
            tt[1] = i + 1 == s ? p->plan_eps : 1.0 + (i + 1) * step;
            int64_t k = i + 1 < s ? (int64_t)((double)left * (1.0 - tt[1] / tt[0])) : left;
            if (k > left) k = left;
            counts[i] = k;
            left -= k;
        }
        return AIOS_OK;
    }
    default: plan_llada(m, s, counts); return AIOS_OK;
    }
}

aios_status aios_diffuse_sample(const aios_denoiser *dn, const aios_diffuse_params *p, const int32_t *prompt,
                                int64_t n_prompt, const int32_t *suffix, int64_t n_suffix,
                                aios_diffuse_result *out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: no result");
    memset(out, 0, sizeof *out);
    aios_diffuse_params defp;
    if (!p) {
        defp = aios_diffuse_default_params();
        p = &defp;
    }
    AIOS_TRY(validate(dn, p, n_prompt, prompt, n_suffix, suffix));
    double t0 = aios__now();
    const int bc = dn->attn == AIOS_DENOISE_BLOCK_CAUSAL;
    const int64_t G = p->gen_length, V = dn->n_vocab;
    int64_t B = p->block_length;
    if (B == 0) B = bc && dn->block_size > 0 ? dn->block_size : G;
    if (G > 0 && G % B != 0)
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: gen_length %lld is not a multiple of block_length %lld",
                         (long long)G, (long long)B);
    const int64_t nblocks = G > 0 ? G / B : 0;
    if (bc && n_suffix > 0)
        return aios__err(AIOS_ERR_UNSUPPORTED, "diffuse: a block-causal denoiser cannot see a suffix (infilling)");
    const int64_t left_pad = bc && B > 0 ? (B - n_prompt % B) % B : 0;
    if (left_pad > 0 && dn->pad_id < 0)
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: block-causal prompt needs padding but the denoiser has no pad_id");
    const int64_t P = left_pad + n_prompt; /* first generated position */
    const int64_t N = P + G + n_suffix;
    /* the visibility matrix is N x N bytes: 16384 tokens = 256 MiB */
    if (N > 16384)
        return aios__err(AIOS_ERR_RANGE, "diffuse: canvas of %lld tokens is longer than 16384", (long long)N);
    const int thr = p->threshold > 0;
    if (!thr && nblocks > 0 && p->steps < nblocks)
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: steps %d < number of blocks %lld", p->steps,
                         (long long)nblocks);
    aios_kv_mode kv = p->kv_cache;
    if (kv == AIOS_KV_AUTO) kv = bc && dn->max_ctx >= N && p->guidance_scale == 0 ? AIOS_KV_EXACT : AIOS_KV_NONE;
    if (kv == AIOS_KV_PREFIX && bc) kv = AIOS_KV_EXACT; /* for block-causal models the prefix cache is exact */
    if (kv != AIOS_KV_NONE) {
        if (dn->max_ctx < N)
            return aios__err(AIOS_ERR_UNSUPPORTED, "diffuse: KV cache needs %lld rows, the denoiser holds %lld",
                             (long long)N, (long long)dn->max_ctx);
        if (kv == AIOS_KV_EXACT && !bc)
            return aios__err(AIOS_ERR_UNSUPPORTED, "diffuse: the exact KV cache needs a block-causal denoiser "
                                                   "(use the prefix cache for bidirectional ones)");
        if (p->guidance_scale > 0)
            return aios__err(AIOS_ERR_UNSUPPORTED, "diffuse: classifier-free guidance with a KV cache");
    }
    const int cfg = p->guidance_scale > 0;
    const int64_t max_steps = thr ? AIOS_MAX(G, 1) : AIOS_MAX(p->steps, 1);

    run_ctx c;
    memset(&c, 0, sizeof c);
    c.dn = dn;
    c.p = p;
    c.V = V;
    c.N = N;
    c.B = B > 0 ? B : 1;
    c.rng = p->seed ^ 0x5DEECE66Dull;
    aios_status st = AIOS_OK;
    int64_t rows_max = B + 1;
    c.x = malloc((size_t)N * sizeof *c.x);
    c.pos = malloc((size_t)N * sizeof *c.pos);
    c.ispad = calloc((size_t)N + 1, 1);
    c.vis = malloc((size_t)N * (size_t)N + 1);
    c.logits = malloc((size_t)rows_max * (size_t)V * sizeof(float));
    c.prob = malloc((size_t)V * sizeof(double));
    c.tmp = malloc((size_t)V * sizeof(double));
    c.cands = malloc((size_t)(B + 1) * sizeof(cand));
    c.x0 = malloc((size_t)(B + 1) * sizeof(int32_t));
    c.pp = malloc((size_t)(B + 1) * sizeof(double));
    c.ent = malloc((size_t)(B + 1) * sizeof(double));
    int64_t *counts = malloc((size_t)(max_steps + 1) * sizeof(int64_t));
    if (cfg) {
        c.xu = malloc((size_t)N * sizeof *c.xu);
        c.logits_u = malloc((size_t)rows_max * (size_t)V * sizeof(float));
    }
    out->trace = p->keep_trace ? malloc((size_t)(G + 1) * sizeof *out->trace) : NULL;
    out->step_entropy = malloc((size_t)(max_steps + 1) * sizeof(double));
    out->step_one_minus_conf = malloc((size_t)(max_steps + 1) * sizeof(double));
    if (!c.x || !c.pos || !c.ispad || !c.vis || !c.logits || !c.prob || !c.tmp || !c.cands || !c.x0 || !c.pp ||
        !c.ent || !counts || (cfg && (!c.xu || !c.logits_u)) || (p->keep_trace && !out->trace) ||
        !out->step_entropy || !out->step_one_minus_conf) {
        st = aios__err(AIOS_ERR_NOMEM, "diffuse: out of memory for a canvas of %lld tokens", (long long)N);
        goto done;
    }

    /* canvas and positions */
    for (int64_t i = 0; i < left_pad; i++) {
        c.x[i] = dn->pad_id;
        c.ispad[i] = 1;
    }
    if (n_prompt) memcpy(c.x + left_pad, prompt, (size_t)n_prompt * sizeof(int32_t));
    for (int64_t i = P; i < P + G; i++) c.x[i] = dn->mask_id;
    if (n_suffix) memcpy(c.x + P + G, suffix, (size_t)n_suffix * sizeof(int32_t));
    for (int64_t i = 0, k = 0; i < N; i++) {
        /* block-causal: positions count non-pad tokens, pads get 0; else 0..N-1 */
        if (bc) {
            c.pos[i] = c.ispad[i] ? 0 : (int32_t)k;
            if (!c.ispad[i]) k++;
        } else {
            c.pos[i] = (int32_t)i;
        }
    }
    if (cfg) {
        /* unconditional input: the prompt masked (LLaDA's cfg); padding and suffix kept */
        memcpy(c.xu, c.x, (size_t)N * sizeof(int32_t));
        for (int64_t i = left_pad; i < P; i++) c.xu[i] = dn->mask_id;
    }

    aios__uncertainty unc;
    aios__unc_init(&unc, V);
    int step = 0;
    int64_t valid = 0; /* cached rows whose K/V are final */
    int64_t end = N;   /* canvas length kept (trimmed at EOS) */
    for (int64_t b = 0; b < nblocks; b++) {
        const int64_t lo = P + b * B, hi = lo + B;
        const int64_t n_cur = bc ? hi : N; /* block-causal: later blocks are invisible, leave them out */
        int64_t m = 0;
        for (int64_t i = lo; i < hi; i++) m += c.x[i] == dn->mask_id;
        int spb = thr ? (int)m : p->steps / (int)nblocks + (b < p->steps % nblocks ? 1 : 0);
        if (!thr) {
            st = block_plan(p, m, spb, counts);
            if (st != AIOS_OK) goto done;
        }
        /* rows that predict the block: row(i) = shift ? max(i - 1, 0) : i for i in [lo, hi) */
        const int64_t rlo = dn->shift ? AIOS_MAX(lo - 1, 0) : lo;
        for (int s = 0; s < spb; s++) {
            if (thr) { /* threshold mode runs until the block is full; plans may end with empty steps */
                int64_t left = 0;
                for (int64_t i = lo; i < hi; i++) left += c.x[i] == dn->mask_id;
                if (left == 0) break;
            }
            int64_t k = thr ? 1 : counts[s];
            if (k == 0) { /* nothing to commit: no forward needed, the step still counts */
                aios__unc_step(&unc, &out->step_entropy[step], &out->step_one_minus_conf[step]);
                step++;
                if (p->on_step) p->on_step(p->user, c.x, end, step);
                continue;
            }
            /* conditional logits */
            int64_t start = 0;
            if (kv == AIOS_KV_EXACT) start = AIOS_MIN(valid, rlo);
            else if (kv == AIOS_KV_PREFIX) start = s == 0 ? 0 : AIOS_MIN(valid, rlo);
            /* logits only for the rows that predict still-masked positions (the LM head is the
             * widest matmul of a step): from the first to the last masked one */
            int64_t mlo = lo, mhi = hi;
            while (mlo < hi && c.x[mlo] != dn->mask_id) mlo++;
            while (mhi > mlo && c.x[mhi - 1] != dn->mask_id) mhi--;
            const int64_t slo = dn->shift ? AIOS_MAX(mlo - 1, 0) : mlo;
            const int64_t shi = dn->shift ? AIOS_MAX(mhi - 2, 0) + 1 : mhi;
            st = call_forward(&c, c.x, start, n_cur, slo, shi, c.logits, &out->n_forward, &out->rows_computed);
            if (st != AIOS_OK) goto done;
            if (kv == AIOS_KV_EXACT) valid = AIOS_MIN(lo, rlo); /* rows before the block are final now */
            else if (kv == AIOS_KV_PREFIX && s == 0) valid = rlo;
            if (cfg) {
                /* the unconditional canvas carries the same committed tokens */
                for (int64_t i = P; i < N; i++) c.xu[i] = c.x[i];
                st = call_forward(&c, c.xu, 0, n_cur, slo, shi, c.logits_u, &out->n_forward, &out->rows_computed);
                if (st != AIOS_OK) goto done;
                const float g1 = (float)(p->guidance_scale + 1.0);
                for (int64_t i = 0; i < (shi - slo) * V; i++)
                    c.logits[i] = c.logits_u[i] + g1 * (c.logits[i] - c.logits_u[i]);
            }
            /* proposals for the masked positions of the block */
            int64_t nc = 0;
            for (int64_t i = lo; i < hi; i++) {
                if (c.x[i] != dn->mask_id) continue;
                int64_t row = (dn->shift ? AIOS_MAX(i - 1, 0) : i) - slo;
                double conf;
                propose(&c, c.logits + row * V, &c.x0[i - lo], &conf, &c.pp[i - lo], &c.ent[i - lo]);
                c.cands[nc].idx = i;
                c.cands[nc].conf = conf;
                nc++;
            }
            qsort(c.cands, (size_t)nc, sizeof(cand), cand_cmp);
            if (thr) {
                /* Fast-dLLM: every candidate above tau, at least the most confident one */
                k = 1;
                while (k < nc && c.cands[k].conf > p->threshold) k++;
            }
            if (k > nc) k = nc;
            for (int64_t j = 0; j < k; j++) {
                int64_t i = c.cands[j].idx;
                c.x[i] = c.x0[i - lo];
                aios__unc_add(&unc, c.ent[i - lo], c.pp[i - lo]);
                if (out->trace) {
                    aios_diffuse_commit *t = &out->trace[out->n_trace++];
                    t->step = step;
                    t->position = i;
                    t->token = c.x[i];
                    t->confidence = (float)c.cands[j].conf;
                }
            }
            aios__unc_step(&unc, &out->step_entropy[step], &out->step_one_minus_conf[step]);
            step++;
            if (p->on_step) p->on_step(p->user, c.x, end, step);
            if (step > max_steps) { /* cannot happen: each step commits >= 1 of <= G masks */
                st = aios__err(AIOS_ERR_INTERNAL, "diffuse: step budget exceeded");
                goto done;
            }
        }
        /* a plan that ran out of steps with masks left (only possible if the plan undercounts) */
        for (int64_t i = lo; i < hi; i++)
            if (c.x[i] == dn->mask_id) {
                st = aios__err(AIOS_ERR_INTERNAL, "diffuse: block %lld ended with masks left", (long long)b);
                goto done;
            }
        if (p->stop_at_eos && n_suffix == 0 && dn->n_eos > 0) {
            int64_t first = -1;
            for (int64_t i = P; i < hi && first < 0; i++)
                for (int64_t e = 0; e < dn->n_eos && e < 8; e++)
                    if (c.x[i] == dn->eos_ids[e]) {
                        first = i;
                        break;
                    }
            if (first >= 0) {
                end = first + 1;
                out->stopped_at_eos = 1;
                break;
            }
        }
    }

    out->ids = malloc((size_t)(end > 0 ? end : 1) * sizeof(int32_t));
    if (!out->ids) {
        st = aios__err(AIOS_ERR_NOMEM, "diffuse: result");
        goto done;
    }
    memcpy(out->ids, c.x, (size_t)end * sizeof(int32_t));
    out->n_ids = end;
    out->left_pad = left_pad;
    out->gen_start = P;
    out->gen_len = AIOS_MIN(G, end - P);
    out->n_steps = step;
    out->logits_rows = c.logits_rows;
    aios__unc_finish(&unc, &out->mean_entropy, &out->mean_one_minus_conf, &out->uncertainty);
    out->seconds = aios__now() - t0;

done:
    free(c.x);
    free(c.xu);
    free(c.pos);
    free(c.ispad);
    free(c.vis);
    free(c.logits);
    free(c.logits_u);
    free(c.prob);
    free(c.tmp);
    free(c.cands);
    free(c.x0);
    free(c.pp);
    free(c.ent);
    free(counts);
    if (st != AIOS_OK) aios_diffuse_result_free(out);
    return st;
}
