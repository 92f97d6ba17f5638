/*
 * model/bert.h — the BERT-family encoder (Hugging Face BertModel semantics) and its MLM head.
 *
 * Weights come through a lookup callback so the encoder works on any tensor source (a model
 * from aios_model_open, a bare safetensors file in tests).  Names are Hugging Face's, with or
 * without the "bert." prefix (sentence-transformers checkpoints vs BertForMaskedLM); old
 * "LayerNorm.gamma/beta" names are accepted too.  The MLM decoder weight is tied to the word
 * embeddings when "cls.predictions.decoder.weight" is absent.
 */
#ifndef AIOS_MODEL_BERT_H
#define AIOS_MODEL_BERT_H

#include <stdint.h>

#include "tensor/tensor.h"

typedef struct {
    int64_t n_embd, n_layer, n_head, n_ff, n_vocab, n_ctx, type_vocab_size;
    float eps;
} aios_bert_hparams;

/* Returns the tensor called `name` or NULL. */
typedef const aios_tensor *(*aios_tensor_lookup)(void *ctx, const char *name);

typedef struct aios_bert aios_bert;

/* Finds and checks every tensor (shapes against hp), copies the small 1-D parameters to
 * float32.  The tensors must outlive the encoder.  Errors name the missing/misshapen tensor. */
aios_status aios_bert_load(const aios_bert_hparams *hp, aios_tensor_lookup get, void *ctx, aios_bert **out);
void aios_bert_free(aios_bert *b);
const aios_bert_hparams *aios_bert_hparams_of(const aios_bert *b);
/* 1 when the MLM head (cls.predictions.*) is present. */
int aios_bert_has_mlm(const aios_bert *b);
/* 1 when every layer's six matrices are int8 (ArrowQuant Q8, any scale layout). */
int aios_bert_int8_weights(const aios_bert *b);

/* hidden (B, L, n_embd) = BertModel(ids (B, L), token types (B, L) or NULL for zeros,
 * attn_mask (B, L) nonzero for real tokens, or NULL for all).  Positions 0..L-1 per row.
 * Padded rows are computed as Hugging Face does (they attend to the real tokens).
 * Ids are checked against n_vocab, L against n_ctx.  Not thread-safe per handle (it owns
 * a workspace); distinct handles are independent. */
aios_status aios_bert_forward(aios_bert *b, const int32_t *ids, const int32_t *type_ids, const uint8_t *attn_mask,
                              int64_t B, int64_t L, float *hidden);
/* The same encoder on B sequences packed back to back, without padding: hidden (T, n_embd) for
 * ids (T) and token types (T) or NULL, T = sum of lens[b] (each in 1..n_ctx), sequence b at rows
 * lens[0] + .. + lens[b-1]; positions restart at 0 for each.  The matrix products run on the T
 * real rows only; attention is per sequence.  Each sequence's rows are those of its own padded
 * forward (the same arithmetic, bit for bit). */
aios_status aios_bert_forward_packed(aios_bert *b, const int32_t *ids, const int32_t *type_ids, const int64_t *lens,
                                     int64_t B, float *hidden);
/* logits (T, n_vocab) = MLM head (dense, GELU, LayerNorm, tied decoder + bias) of hidden (T, n_embd). */
aios_status aios_bert_mlm_logits(aios_bert *b, const float *hidden, int64_t T, float *logits);

#endif
