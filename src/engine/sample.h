/*
 * sample.h — next-token sampling (internal; the options are public in aios.h as
 * aios_generate_params).
 *
 * The random generator is xoshiro256** (Blackman & Vigna, 2018), its 256-bit state filled from
 * the 64-bit seed by splitmix64, so one seed gives one sequence on every platform.  Uniform
 * doubles take the top 53 bits: u = (x >> 11) * 2^-53, in [0, 1).  Sampling draws exactly one
 * uniform per token (none when greedy), so a seed fixes the whole generation.
 */
#ifndef AIOS_ENGINE_SAMPLE_H
#define AIOS_ENGINE_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "aios.h"

typedef struct {
    uint64_t s[4];
} aios_rng;

void aios_rng_seed(aios_rng *r, uint64_t seed);
uint64_t aios_rng_next(aios_rng *r);
double aios_rng_uniform(aios_rng *r); /* [0, 1) */

typedef struct {
    float temperature;        /* 0 = greedy (argmax, lowest id on ties) */
    int top_k;                /* 0 = off */
    float top_p;              /* 1 = off; keep the smallest most-probable set with mass >= top_p */
    float min_p;              /* 0 = off; keep tokens with p >= min_p * p_max */
    float repetition_penalty; /* 1 = off; CTRL/HF: seen token's logit l -> l/θ if l > 0 else l*θ */
    float presence_penalty;   /* 0 = off; OpenAI: l -= presence for every seen token */
    float frequency_penalty;  /* 0 = off; OpenAI: l -= frequency * count */
} aios_sampling;

typedef struct aios_sampler aios_sampler;

aios_status aios_sampler_create(int64_t n_vocab, aios_sampler **out);
void aios_sampler_free(aios_sampler *s);

/* Applies the penalties for `history` (n_hist ids, prompt included; ids outside the vocabulary
 * are ignored), then temperature, top-k, top-p, min-p (in that order, as transformers' logits
 * processors), and draws one id.  `logits` (n_vocab) is modified in place.  When `probs_out`
 * is non-NULL it receives the final distribution (n_vocab, zeros for filtered tokens). */
int32_t aios_sample(aios_sampler *s, float *logits, const int32_t *history, size_t n_hist, const aios_sampling *p,
                    aios_rng *rng, float *probs_out);

#endif
