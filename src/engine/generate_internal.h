/*
 * generate_internal.h — the generator's view of a tokenizer.json tokenizer (adapter over the
 * tokenizer module, src/engine/gen_tokenizer.c).  Internal.
 */
#ifndef AIOS_ENGINE_GENERATE_INTERNAL_H
#define AIOS_ENGINE_GENERATE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aios.h"

typedef struct aios__gen_tokenizer aios__gen_tokenizer;

/* Opens tokenizer.json.  *out may be left NULL (with AIOS_OK) when tokenizer.json support is not
 * available: then text prompts are refused and ids still work. */
aios_status aios__gen_tok_open(const char *path, aios__gen_tokenizer **out);
void aios__gen_tok_free(aios__gen_tokenizer *t);
/* ids (malloc'd) of text; add_special: the tokenizer's post-processor specials (BOS ...). */
aios_status aios__gen_tok_encode(aios__gen_tokenizer *t, const char *text, int add_special, int32_t **ids, size_t *n);
/* text (malloc'd) of ids, special tokens kept (transformers' decode default). */
aios_status aios__gen_tok_decode(aios__gen_tokenizer *t, const int32_t *ids, size_t n, char **text);
/* id of a token string (added tokens included), -1 when absent. */
int32_t aios__gen_tok_token_id(aios__gen_tokenizer *t, const char *token);
/* token string (malloc'd) of an id. */
aios_status aios__gen_tok_id_to_token(aios__gen_tokenizer *t, int32_t id, char **out);

/* The default system prompt the chat template inserts when a conversation has none (SmolLM2's,
 * Qwen2.5's), or NULL. */
const char *aios__generator_default_system(const aios_generator *g);

/* uncertainty.c: entropy (nats) and largest probability of softmax(x (n)), in float64. */
void aios__softmax_entropy(const float *x, int64_t n, double *entropy, double *p_top1);
/* The per-answer figures of u from its per-token arrays (docs/evolution.md has the formula). */
void aios__gen_unc_finish(aios_gen_uncertainty *u, int64_t n_vocab);

/* ---- continuous batching (generate.c; the server's scheduler) ----
 * A generation started with aios__gen_seq_start runs in steps: aios__gen_batch_step puts
 * every unfinished sequence given through one batched decoder forward (a new sequence's
 * prefill, one token for the others), then samples, applies the stop rules and calls each
 * sequence's on_token, exactly as aios_generate does for one.  Each sequence has its own KV cache
 * (prompt + max_tokens positions, no prefix reuse), sampler state, seed and result (*out, filled
 * in place; on an error it is freed).  slot_scales (AIOS_DECODER_MAX_ADAPTERS, by adapter id)
 * choose this sequence's adapter scales, combined by its route (below; summed by default) whatever
 * router the generator holds; NULL = the generator's adapters, only with the router none.
 * aios__generator_batchable: a decoder model (llama2.c too); the generator is used by one thread
 * at a time throughout. */
typedef struct aios__gen_seq aios__gen_seq;
int aios__generator_batchable(const aios_generator *g);
/* How a batched sequence combines its adapters (its slot_scales), whatever router the generator
 * holds: AIOS_ROUTER_NONE summed; AIOS_ROUTER_ARROW routed per token (top_k >= 1, temperature
 * > 0) inside its row; AIOS_ROUTER_COMPOSE its next-token logits mixed from its base row and one
 * row per adapter of positive scale (each alone at scale 1 on a cache of the sequence's own), the
 * mix of aios_decoder_set_router's compose.  All rows share the step's batched forward. */
typedef struct {
    int router; /* aios_router */
    int top_k;
    float temperature;
} aios__gen_route;
/* route NULL (or router none): summed; a router other than none needs slot_scales. */
aios_status aios__gen_seq_start(aios_generator *g, const char *prompt, const int32_t *prompt_ids, size_t n_prompt_ids,
                                const aios_generate_params *p, const float *slot_scales, const aios__gen_route *route,
                                aios_generate_result *out, aios__gen_seq **seq);
/* One step of seqs[0..n) (finished ones skipped).  A failed forward fails every sequence of the
 * step (returned too); a sequence's own failure (its text, memory) ends only it. */
aios_status aios__gen_batch_step(aios_generator *g, aios__gen_seq *const *seqs, int n);
int aios__gen_seq_done(const aios__gen_seq *q);
/* A finished sequence's status and, when not AIOS_OK, its error message (the step's thread set
 * it; the caller's thread has its own aios_last_error). */
aios_status aios__gen_seq_status(const aios__gen_seq *q, const char **err);
const aios_gen_uncertainty *aios__gen_seq_uncertainty(const aios__gen_seq *q);
void aios__gen_seq_free(aios__gen_seq *q);

#endif
