/*
 * train.h — LoRA training of the decoder family (internal interface).
 *
 *   aios_trainer     a decoder (frozen, weights in any stored dtype) + one adapter being
 *                    trained: forward over a padded batch keeping every activation, the
 *                    hand-written backward, gradients of every lora_A / lora_B
 *   aios_adamw       torch.optim.AdamW (decoupled weight decay, bias correction)
 *   aios_grad_clip   torch.nn.utils.clip_grad_norm_ over all gradients
 *   aios_lr_at       transformers' constant / cosine schedules with linear warm-up
 *
 * Gradients and optimizer state are flat arrays in the order of aios_lora.data (every
 * module's A then B), so the optimizer does not know about modules.
 */
#ifndef AIOS_TRAIN_TRAIN_H
#define AIOS_TRAIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "aios.h"
#include "model/decoder.h"
#include "model/lora.h"

/* A right- or left-padded batch of B sequences of L tokens.  The causal LM loss of
 * transformers: position i predicts labels[b, i + 1]; labels -100 are ignored; the loss is
 * the mean over every counted label of the batch.  mask (B, L): 1 for real tokens (keys that
 * may be attended), NULL = all real.  RoPE positions are 0..L-1 in each row. */
typedef struct {
    int64_t B, L;
    const int32_t *tokens; /* (B, L) */
    const uint8_t *mask;   /* (B, L) or NULL */
    const int32_t *labels; /* (B, L) */
} aios_train_batch;

typedef struct aios_trainer aios_trainer;

/* The decoder and adapter are borrowed and must outlive the trainer; the adapter must fit the
 * decoder (aios_lora_check).  The adapter's dropout is used, with masks drawn from `seed`. */
aios_status aios_trainer_create(aios_decoder *d, aios_lora *a, uint64_t seed, aios_trainer **out);
void aios_trainer_free(aios_trainer *t);
/* on = 1: keep only each layer's input and recompute the layer's forward in the backward
 * (activation memory / n_layer for one more forward; the same gradients bit for bit). */
void aios_trainer_set_checkpoint(aios_trainer *t, int on);

/* Forward + backward of one batch: *loss = the batch's mean loss, *n_labels the labels it
 * counted; gradients of loss * grad_scale are ADDED to the gradient array (zero it with
 * aios_trainer_zero_grad; grad_scale = 1 / accumulation steps).  A batch with no counted label
 * gives loss 0 and no gradient.  train = 0: loss only (no dropout, no backward). */
aios_status aios_trainer_step(aios_trainer *t, const aios_train_batch *b, float grad_scale, int train, double *loss,
                              int64_t *n_labels);
float *aios_trainer_grad(aios_trainer *t); /* (aios_lora.n_params) */
void aios_trainer_zero_grad(aios_trainer *t);
/* The dropout generator's state (saved and restored by --resume). */
uint64_t aios_trainer_rng(const aios_trainer *t);
void aios_trainer_set_rng(aios_trainer *t, uint64_t rng);
/* Bytes of activations held for the largest batch so far. */
uint64_t aios_trainer_activation_bytes(const aios_trainer *t);

/* ---- optimizer ---- */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t step;  /* steps taken */
    int64_t n;
    float *m, *v;  /* (n) */
} aios_adamw;
aios_status aios_adamw_init(aios_adamw *o, int64_t n, double lr, double beta1, double beta2, double eps, double wd);
void aios_adamw_free(aios_adamw *o);
/* One step at learning rate lr on p (n) with gradient g (n), exactly torch.optim.AdamW. */
void aios_adamw_step(aios_adamw *o, float *p, const float *g, double lr);

/* Global L2 norm of g (n) (float64 sum); when max_norm > 0 and the norm exceeds it, g is scaled
 * by max_norm / (norm + 1e-6) as torch does.  Returns the norm before clipping. */
double aios_grad_clip(float *g, int64_t n, double max_norm);

typedef enum { AIOS_SCHED_CONSTANT = 0, AIOS_SCHED_COSINE = 1 } aios_lr_schedule;
/* transformers get_constant_schedule_with_warmup / get_cosine_schedule_with_warmup: the lr of
 * step `step` (0-based) of `total`. */
double aios_lr_at(aios_lr_schedule s, double base, int64_t step, int64_t warmup, int64_t total);

/* The JSONL data parser of aios_train on text in memory (for the fuzzer): every example it
 * accepts goes to check (non-zero = reject: AIOS_ERR_INTERNAL), then is freed. */
/* Causal attention over a padded batch (attn_train.c): q (N, nh hd), k, v (N, nkv hd) after RoPE,
 * mask (B, L) of real tokens or NULL; the forward writes P (B, nh, L, L) and att (N, nh hd), the
 * backward dq, dk, dv (overwritten) from datt. */
void aios__train_attn_fwd(float *P, float *att, const float *q, const float *k, const float *v, const uint8_t *mask,
                          int64_t B, int64_t L, int64_t nh, int64_t nkv, int64_t hd);
aios_status aios__train_attn_bwd(float *dq, float *dk, float *dv, const float *datt, const float *P, const float *q,
                                 const float *k, const float *v, int64_t B, int64_t L, int64_t nh, int64_t nkv,
                                 int64_t hd);

aios_status aios__train_parse_jsonl(aios_generator *g, const char *text, size_t len, int64_t max_len,
                                    int (*check)(void *user, const int32_t *ids, const int32_t *labels, int64_t n),
                                    void *user, int64_t *n_examples);

/* ---- the trainer state of --resume (train_state.c; docs/training.md "Resuming") ---- */
typedef struct {
    int64_t step, total_steps;          /* optimizer steps done (= AdamW's step), planned */
    double lr, beta1, beta2, eps, weight_decay, clip;
    double dropout;                     /* lora_dropout (a skill card does not hold it) */
    int cosine;
    int64_t warmup, batch, accum, max_len;
    uint64_t seed;
    int64_t examples, n_batches, n_params;
    uint64_t data_hash, adapter_hash;   /* FNV-1a 64 of the batches and of the adapter's floats */
    uint64_t shuffle_rng, dropout_rng;
    int64_t cursor;                     /* next position in `order` (n_batches = reshuffle) */
    int64_t label_tokens;
    double first_loss;
    float *m, *v;                       /* (n_params) */
    int64_t *order;                     /* (n_batches) */
} aios__train_state;
uint64_t aios__fnv1a64(uint64_t h, const void *p, size_t n);
#define AIOS_FNV1A64_INIT 0xcbf29ce484222325ull
/* trainer_state.json text (malloc'd) / parsed back (every field checked; m, v, order not
 * touched: they live in the .safetensors).  label names the text in errors. */
char *aios__train_state_json(const aios__train_state *st);
aios_status aios__train_state_parse(const char *text, size_t len, const char *label, aios__train_state *st);
/* Next to the adapter at `adapter` (a PEFT directory, or a skill card X.parquet). */
aios_status aios__train_state_save(const char *adapter, const aios__train_state *st);
aios_status aios__train_state_load(const char *adapter, aios__train_state *st);
void aios__train_state_free(aios__train_state *st);

/* Defined in src/engine/generate.c (the trainer reads the model through a generator: its
 * tokenizer, chat template and decoder). */
aios_decoder *aios__generator_decoder(aios_generator *g);
int32_t aios__generator_end_of_turn(aios_generator *g);
int32_t aios__generator_pad(aios_generator *g);

#endif
