/*
 * uncertainty.c — UncertaintyEstimator: how unsure the denoiser was about what it committed.
 *
 * For every committed token the sampler reports the entropy H of the position's (mask-free)
 * distribution and the probability p of the token it committed.  Per step and over the run we
 * keep the means of H / ln(n_vocab) (so 0 = certain, 1 = uniform over the vocabulary) and of
 * 1 - p; the score is their average, in [0, 1].  The seed's EvolutionRouter compares it with
 * `evolution.uncertainty_threshold` (default 0.7) to decide that the model should learn from
 * this input (aios_diffuse_uncertainty_flag).
 */
#include <math.h>

#include "engine/diffuse.h"
#include "engine/generate_internal.h"

void aios__unc_init(aios__uncertainty *u, int64_t n_vocab) {
    u->sum_h = u->sum_u = u->step_h = u->step_u = 0;
    u->n = u->step_n = 0;
    u->log_v = n_vocab > 1 ? log((double)n_vocab) : 1.0;
}

void aios__unc_add(aios__uncertainty *u, double entropy, double p) {
    double h = entropy / u->log_v;
    if (!(h >= 0)) h = 0; /* NaN guard; h <= 1 by construction, clamp rounding */
    if (h > 1) h = 1;
    double q = 1.0 - p;
    if (!(q >= 0)) q = 0;
    if (q > 1) q = 1;
    u->step_h += h;
    u->step_u += q;
    u->step_n++;
}

void aios__unc_step(aios__uncertainty *u, double *mean_h, double *mean_u) {
    *mean_h = u->step_n ? u->step_h / (double)u->step_n : 0;
    *mean_u = u->step_n ? u->step_u / (double)u->step_n : 0;
    u->sum_h += u->step_h;
    u->sum_u += u->step_u;
    u->n += u->step_n;
    u->step_h = u->step_u = 0;
    u->step_n = 0;
}

void aios__unc_finish(const aios__uncertainty *u, double *mean_h, double *mean_u, double *score) {
    *mean_h = u->n ? u->sum_h / (double)u->n : 0;
    *mean_u = u->n ? u->sum_u / (double)u->n : 0;
    *score = 0.5 * (*mean_h + *mean_u);
}

void aios_diffuse_uncertainty_flag(aios_diffuse_result *r, double threshold) {
    if (r) r->uncertain = r->uncertainty > threshold;
}

/* ---- autoregressive answers ------------------------------------------------------------ */

void aios__softmax_entropy(const float *x, int64_t n, double *entropy, double *p_top1) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double z = 0, ez = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - mx;
        double e = exp(d);
        z += e;
        ez += e * d;
    }
    /* H = log z - E[d] with d = x - max */
    *entropy = z > 0 ? log(z) - ez / z : 0;
    if (!(*entropy >= 0)) *entropy = 0;
    *p_top1 = z > 0 ? 1.0 / z : 0;
}

void aios__gen_unc_finish(aios_gen_uncertainty *u, int64_t n_vocab) {
    double lv = n_vocab > 1 ? log((double)n_vocab) : 1.0, sh = 0, sq = 0, mx = 0, hn = 0;
    for (size_t i = 0; i < u->n; i++) {
        hn += u->entropy[i];
        double h = u->entropy[i] / lv, q = 1.0 - u->p_top1[i];
        if (h > 1) h = 1;
        if (q < 0) q = 0;
        sh += h, sq += q;
        if (q > mx) mx = q;
    }
    u->mean_entropy = u->n ? sh / (double)u->n : 0;
    u->mean_one_minus_p = u->n ? sq / (double)u->n : 0;
    u->max_one_minus_p = mx;
    /* score = H / (1 + H) with H the mean entropy in nats: 0 for a certain answer, 0.5 at one
     * nat, 0.7 (the default threshold) at 2.33 nats, about as unsure as a uniform choice among
     * ten tokens.  Chosen on measured answers (docs/evolution.md, "Uncertainty"). */
    hn = u->n ? hn / (double)u->n : 0;
    u->score = hn / (1.0 + hn);
}
