/*
 * llama2c.h — llama2.c checkpoints (Karpathy's run.c format) imported as Llama models, and
 * their tokenizer.bin vocabularies.
 *
 * A checkpoint becomes an aios_decoder_config plus float32 tensors under Hugging Face Llama
 * names (model.layers.N.self_attn.q_proj.weight ...), so the one decoder runs it.  q/k rows are
 * permuted from llama2.c's interleaved RoPE pairs to the rotate_half convention (the same
 * permutation transformers' convert_llama_weights_to_hf applies); everything else is a view
 * into the mapping.
 */
#ifndef AIOS_MODEL_LLAMA2C_H
#define AIOS_MODEL_LLAMA2C_H

#include <stddef.h>
#include <stdint.h>

#include "model/decoder.h"

typedef struct aios_llama2c aios_llama2c;

/* Reads a version-0 (legacy 7 x int32 header) or version-1 ("ak42", fp32) checkpoint. */
aios_status aios_llama2c_open(const char *path, aios_llama2c **out);
void aios_llama2c_free(aios_llama2c *m);
const aios_decoder_config *aios_llama2c_config(const aios_llama2c *m);
/* aios_tensor_lookup_fn over the imported tensors; ctx = the aios_llama2c. */
const aios_tensor *aios_llama2c_lookup(void *ctx, const char *name);
/* Number of tensors and the i-th (for listing / converting). */
size_t aios_llama2c_n_tensors(const aios_llama2c *m);
const aios_tensor *aios_llama2c_tensor(const aios_llama2c *m, size_t i);

/* Writes the checkpoint as a Hugging Face Llama directory: config.json (LlamaForCausalLM) and
 * model.safetensors (float32, rotate_half q/k order, lm_head absent when shared); copies
 * `tokenizer_bin` (may be NULL) in as tokenizer.bin.  out_dir is created if needed. */
aios_status aios_llama2c_export(const aios_llama2c *m, const char *tokenizer_bin, const char *out_dir);

/* tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 len, len bytes. */
typedef struct aios_llama2c_tok aios_llama2c_tok;
aios_status aios_llama2c_tok_open(const char *path, int64_t n_vocab, aios_llama2c_tok **out);
void aios_llama2c_tok_free(aios_llama2c_tok *t);
/* run.c's encode: optional BOS (1), a dummy-prefix space, code points looked up, unknown
 * bytes as <0xXX> (id byte + 3), then greedy best-score pair merges.  ids must hold
 * strlen(text) + 3 entries; *n_ids receives the count. */
aios_status aios_llama2c_tok_encode(const aios_llama2c_tok *t, const char *text, int bos, int32_t *ids, size_t *n_ids);
/* run.c's decode: piece of `id`; after BOS (prev == 1) a leading space is dropped; <0xXX>
 * pieces become that byte.  Writes at most cap-1 bytes + NUL into buf; returns the length. */
size_t aios_llama2c_tok_decode(const aios_llama2c_tok *t, int32_t prev, int32_t id, char *buf, size_t cap);

#endif
