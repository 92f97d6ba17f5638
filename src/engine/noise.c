/*
 * noise.c — NoiseScheduler for masked (absorbing-state) discrete diffusion.
 *
 * Time t runs from 1 (every generated token is [MASK]) to 0 (clean text).  A schedule maps t
 * to the fraction of tokens masked:
 *   linear: rate(t) = t                       (LLaDA, MDLM's linear schedule)
 *   cosine: rate(t) = sin(pi t / 2) = cos(pi/2 (1 - t))   (MaskGIT's gamma(r) = cos(pi r / 2)
 *                                             with r = 1 - t the fraction of decoding done;
 *                                             MDLM's cosine alpha_t = 1 - cos(pi/2 (1 - t)))
 * Uses:
 *  - sampling: aios_noise_commit_plan turns a schedule into per-step commit counts (MaskGIT's
 *    cosine plan is "after step s, M * cos(pi/2 * (s+1)/S) tokens remain masked");
 *  - training: aios_noise_add is LLaDA's forward process (mask each token independently with
 *    p = eps + (1 - eps) * rate(t), the loss is weighted by 1/p) — the LoRA trainer uses it.
 * References: LLaDA (Nie et al. 2025, §2.1 and its generate.py), MaskGIT (Chang et al. 2022,
 * §3.2 "mask scheduling"), Dream-7B's `linspace(1, eps, steps + 1)` time grid.
 */
#include <math.h>

#include "core/internal.h"
#include "engine/diffuse.h"

double aios_noise_mask_rate(aios_noise_schedule s, double t) {
    if (!(t > 0)) return 0; /* also maps NaN to 0 */
    if (t > 1) t = 1;
    if (s == AIOS_NOISE_COSINE) return sin(M_PI * 0.5 * t);
    return t;
}

aios_status aios_noise_timesteps(int n, double eps, double *times) {
    if (n < 1 || !times) return aios__err(AIOS_ERR_INVALID_ARG, "noise: timesteps: n = %d must be >= 1", n);
    if (!(eps >= 0 && eps < 1)) return aios__err(AIOS_ERR_INVALID_ARG, "noise: timesteps: eps %g not in [0, 1)", eps);
    /* torch.linspace(1, eps, n + 1): start + i * step, the last value exactly eps */
    double step = (eps - 1.0) / n;
    for (int i = 0; i <= n; i++) times[i] = i == n ? eps : 1.0 + i * step;
    return AIOS_OK;
}

aios_status aios_noise_commit_plan(aios_noise_schedule s, int64_t n_masks, int steps, int64_t *counts) {
    if (steps < 1 || n_masks < 0 || !counts)
        return aios__err(AIOS_ERR_INVALID_ARG, "noise: commit plan: steps %d, masks %lld", steps, (long long)n_masks);
    int64_t prev_left = n_masks;
    int enough = n_masks >= steps; /* then every step commits at least one */
    for (int i = 0; i < steps; i++) {
        /* masks left after step i: round(M * rate(1 - (i + 1) / S)); the last step leaves none */
        double t = 1.0 - (double)(i + 1) / steps;
        int64_t left = (int64_t)llround((double)n_masks * aios_noise_mask_rate(s, t));
        int64_t steps_after = steps - 1 - i;
        if (enough) {
            if (left < steps_after) left = steps_after;   /* room for one per later step */
            if (left > prev_left - 1) left = prev_left - 1; /* at least one now */
        }
        if (left > prev_left) left = prev_left;
        if (i == steps - 1) left = 0;
        counts[i] = prev_left - left;
        prev_left = left;
    }
    return AIOS_OK;
}

/* splitmix64: a tiny, well-mixed generator; the sampler uses the same one. */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double aios__rng_uniform(uint64_t *state) {
    /* 53 random bits, centred in their interval: never 0, never 1 (safe for log(-log u)) */
    return ((double)(splitmix64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

aios_status aios_noise_add(aios_noise_schedule s, const int32_t *ids, int64_t n, int64_t n_keep, double t,
                           double eps, int32_t mask_id, uint64_t seed, int32_t *out, uint8_t *masked,
                           double *p_mask) {
    if (n < 0 || (n > 0 && (!ids || !out)) || n_keep < 0)
        return aios__err(AIOS_ERR_INVALID_ARG, "noise: add_noise: bad arguments (n %lld)", (long long)n);
    if (!(t >= 0 && t <= 1)) return aios__err(AIOS_ERR_INVALID_ARG, "noise: add_noise: t %g not in [0, 1]", t);
    if (!(eps >= 0 && eps <= 1)) return aios__err(AIOS_ERR_INVALID_ARG, "noise: add_noise: eps %g not in [0, 1]", eps);
    double p = eps + (1.0 - eps) * aios_noise_mask_rate(s, t);
    uint64_t st = seed;
    for (int64_t i = 0; i < n; i++) {
        int m = i >= n_keep && aios__rng_uniform(&st) < p;
        out[i] = m ? mask_id : ids[i];
        if (masked) masked[i] = (uint8_t)m;
    }
    if (p_mask) *p_mask = p;
    return AIOS_OK;
}
