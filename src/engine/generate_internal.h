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

#endif
