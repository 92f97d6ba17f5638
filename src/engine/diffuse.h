/*
 * engine/diffuse.h — internals shared by the diffusion files (noise.c, diffuse.c,
 * uncertainty.c, memcond.c) and the model adapters.  Public API: include/aios.h.
 */
#ifndef AIOS_ENGINE_DIFFUSE_H
#define AIOS_ENGINE_DIFFUSE_H

#include "aios.h"

/* Uniform double in (0, 1) from a splitmix64 state (never exactly 0 or 1). */
double aios__rng_uniform(uint64_t *state);

/* UncertaintyEstimator accumulator: one per run. */
typedef struct {
    double sum_h, sum_u;     /* over all committed tokens */
    int64_t n;
    double step_h, step_u;   /* current step */
    int64_t step_n;
    double log_v;            /* ln(n_vocab): entropy normaliser */
} aios__uncertainty;
void aios__unc_init(aios__uncertainty *u, int64_t n_vocab);
/* One committed token: entropy (nats) of its distribution and its probability. */
void aios__unc_add(aios__uncertainty *u, double entropy, double p);
/* Closes a step: writes its means (0 when nothing was committed). */
void aios__unc_step(aios__uncertainty *u, double *mean_h, double *mean_u);
/* Overall means and the combined score in [0, 1]. */
void aios__unc_finish(const aios__uncertainty *u, double *mean_h, double *mean_u, double *score);

/* A denoiser over a decoder the caller built (benchmarks, tests); the decoder is borrowed and
 * must outlive the returned model (free it with aios_diffusion_model_free). */
struct aios_decoder;
aios_status aios__diffusion_model_wrap(struct aios_decoder *dec, aios_denoise_attn attn, int shift, int32_t mask_id,
                                       int32_t pad_id, int32_t block_size, aios_diffusion_model **out);

#endif
