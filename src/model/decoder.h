/*
 * decoder.h — the Llama / Qwen2 / Qwen3 / LLaDA decoder family (internal interface).
 *
 * One forward for every use: autoregressive prefill (T tokens, matrix-matrix) and decode
 * (T = 1, matrix-vector) through a preallocated KV cache, and whole-canvas forwards with a
 * chosen attention pattern and chosen RoPE positions for the diffusion samplers.
 *
 *   aios_decoder_config   parsed from config.json (aios_decoder_config_parse) or built by an
 *                         importer (llama2.c checkpoints, src/model/llama2c.c)
 *   aios_decoder          the weights (views, never copied, any dtype of tensor.h) + scratch
 *   aios_kv_cache         K/V of n_ctx positions for every layer, float32, reusable
 *
 * Weights are found by Hugging Face name through a lookup callback, so the decoder does not
 * care whether they come from safetensors, Parquet or a llama2.c file.  Two namings:
 *   HF     model.embed_tokens.weight, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
 *          self_attn.{q,k}_norm, post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm,
 *          lm_head.weight (absent when tied)
 *   LLaDA  model.transformer.{wte, ln_f, ff_out}, model.transformer.blocks.N.{attn_norm,
 *          q_proj, k_proj, v_proj, attn_out, ff_norm, ff_proj (= gate), up_proj, ff_out (= down)}
 *
 * A decoder handle and a cache are used by one thread at a time (the kernels thread inside).
 */
#ifndef AIOS_MODEL_DECODER_H
#define AIOS_MODEL_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "aios.h"
#include "tensor/tensor.h"

#define AIOS_DECODER_MAX_EOS 8

typedef enum {
    AIOS_ROPE_DEFAULT = 0,
    AIOS_ROPE_LINEAR = 1,  /* positions / factor */
    AIOS_ROPE_DYNAMIC = 2, /* NTK-aware base growth beyond original_max_position_embeddings */
    AIOS_ROPE_LLAMA3 = 3,  /* Llama-3.1 wavelength-banded frequency scaling */
} aios_rope_type;

typedef enum {
    AIOS_NAMING_HF = 0,
    AIOS_NAMING_LLADA = 1,
} aios_weight_naming;

typedef struct {
    char model_type[32];   /* "llama", "qwen2", "qwen3", "llada", "a2d-qwen3", "Dream", ... */
    aios_weight_naming naming;
    int64_t n_embd, n_head, n_head_kv, head_dim, n_layer, n_ff, n_vocab;
    int64_t n_ctx_train;   /* max_position_embeddings */
    float eps;
    double rope_theta;
    aios_rope_type rope_type;
    double rope_factor;                         /* linear / dynamic / llama3 */
    double rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int64_t rope_orig_ctx;                      /* original_max_position_embeddings */
    int qkv_bias;          /* Qwen2: q/k/v projections have biases (detected from the weights) */
    int o_bias;            /* attention_bias=true Llama: o_proj bias too */
    int qk_norm;           /* Qwen3: per-head RMSNorm of q and k before RoPE (detected) */
    int tied;              /* LM head = token embedding */
    int32_t bos_id;        /* -1 when none */
    int32_t eos_ids[AIOS_DECODER_MAX_EOS];
    int n_eos;
    int32_t pad_id, mask_id;  /* -1 when none */
    int64_t block_size;    /* block-diffusion models (config "block_size"), else 0 */
} aios_decoder_config;

/* Parses a Hugging Face config.json (text, len bytes).  Accepts rope settings at top level
 * (rope_theta, rope_scaling) and in transformers-5 `rope_parameters`.  Qwen2/Qwen3 biases and
 * norms are finally decided by aios_decoder_create from the weights present. */
aios_status aios_decoder_config_parse(const char *json, size_t len, aios_decoder_config *cfg);

/* The same facts from an opened model's config (HF config.json or ArrowEngine metadata.json,
 * as the model module parsed them).  AIOS_ERR_UNSUPPORTED for non-decoder architectures and
 * rope / activation variants the decoder does not implement. */
aios_status aios_decoder_config_from_model(const aios_model_config *mc, aios_decoder_config *cfg);
/* aios_tensor_lookup_fn over an aios_model (ctx = the model). */
const aios_tensor *aios_decoder_model_lookup(void *ctx, const char *name);

/* Name -> tensor; returns NULL when absent.  The tensors must outlive the decoder. */
typedef const aios_tensor *(*aios_tensor_lookup_fn)(void *ctx, const char *name);

typedef struct aios_decoder aios_decoder;

/* Binds the weights (checks every shape against cfg) and converts the small 1-D ones (norms,
 * biases) to float32.  `cfg` is copied. */
aios_status aios_decoder_create(const aios_decoder_config *cfg, aios_tensor_lookup_fn get, void *ctx,
                                aios_decoder **out);
void aios_decoder_free(aios_decoder *d);
const aios_decoder_config *aios_decoder_get_config(const aios_decoder *d);
/* Bytes of weights read per decoded token (every matrix once, the embedding row aside). */
uint64_t aios_decoder_weight_bytes(const aios_decoder *d);

/* KV cache: k, v (n_layer, n_ctx, n_head_kv * head_dim), allocated once; float32
 * (aios_kv_cache_create) or float16 (AIOS_KV_F16: half the memory and half the bytes a decode
 * step's attention reads; K / V rounded to nearest even once, after RoPE, as llama.cpp's default
 * cache).  Diffusion's scratch cache and the reference tests keep float32. */
typedef struct aios_kv_cache aios_kv_cache;
aios_status aios_kv_cache_create(const aios_decoder *d, int64_t n_ctx, aios_kv_cache **out);
aios_status aios_kv_cache_create_typed(const aios_decoder *d, int64_t n_ctx, aios_kv_type type, aios_kv_cache **out);
aios_kv_type aios_kv_cache_type(const aios_kv_cache *kv);
void aios_kv_cache_free(aios_kv_cache *kv);
int64_t aios_kv_cache_len(const aios_kv_cache *kv);  /* positions held (n_past) */
int64_t aios_kv_cache_capacity(const aios_kv_cache *kv);
/* Forgets positions >= n (keeps a common prefix for the next call); n <= len. */
void aios_kv_cache_truncate(aios_kv_cache *kv, int64_t n);
/* dst holds src's first n positions (every layer) and nothing after: a shared prompt prefix
 * handed from one sequence's cache to another's.  Both caches of one model and one type; n <= src's length
 * and dst's capacity (AIOS_ERR_RANGE otherwise). */
aios_status aios_kv_cache_copy(aios_kv_cache *dst, const aios_kv_cache *src, int64_t n);

typedef enum {
    AIOS_FWD_CAUSAL = 0,        /* query i sees cached keys and new keys j <= i */
    AIOS_FWD_BIDIRECTIONAL = 1, /* every query sees every key (cached and new) */
    AIOS_FWD_MASK = 2,          /* explicit mask (T, n_past + T): mask[i*(n_past+T)+j] != 0 = visible */
    AIOS_FWD_BLOCK_CAUSAL = 3,  /* BD3LM: with absolute indices (cache included) q and k, key k is
                                   visible to query q iff k / block_size <= q / block_size and k is
                                   not left padding (k >= n_pad), or k == q */
} aios_fwd_attn;

/* Initialize with designated initializers ({.attn = ..., .logits_all = 1}): fields may be added. */
typedef struct {
    aios_fwd_attn attn;
    const uint8_t *mask;  /* AIOS_FWD_MASK only */
    const int32_t *pos;   /* (T) RoPE positions; NULL = n_past + i */
    int logits_all;       /* 1: logits (T, n_vocab); 0: only the last row's (n_vocab) */
    int no_commit;        /* with a cache: K/V are written at n_past.. but n_past is not advanced */
    int64_t block_size;   /* AIOS_FWD_BLOCK_CAUSAL: block length (> 0) */
    int64_t n_pad;        /* AIOS_FWD_BLOCK_CAUSAL: the first n_pad canvas positions are padding;
                             with pos NULL, RoPE positions then count non-pad tokens
                             (pos = max(0, index - n_pad)), as the BD3LM reference does */
} aios_forward_opts;

/* The forward.  tokens (T); logits (T or 1, n_vocab), may be NULL (cache fill only).
 * kv NULL: a scratch cache of T positions is used (canvas forwards for diffusion).
 * With a cache, the new K/V go to positions n_past .. n_past+T-1 (AIOS_ERR_RANGE when they do
 * not fit) and n_past advances by T unless opts->no_commit.  opts NULL = causal, last row. */
aios_status aios_decoder_forward(aios_decoder *d, aios_kv_cache *kv, const int32_t *tokens, int64_t T,
                                 const aios_forward_opts *opts, float *logits);

/* The same, with opts->logits_all, writing only the logits of rows logits_lo ..
 * logits_lo + logits_rows - 1: logits (logits_rows, n_vocab).  The diffusion sampler needs one
 * block's rows, and the LM head would otherwise dominate a canvas forward.  (Added by the
 * diffusion branch.) */
aios_status aios_decoder_forward_rows(aios_decoder *d, aios_kv_cache *kv, const int32_t *tokens, int64_t T,
                                      const aios_forward_opts *opts, int64_t logits_lo, int64_t logits_rows,
                                      float *logits);

/* ---- Several sequences in one forward (continuous batching, src/server/server.c) ----
 * Every sequence brings its own KV cache and its own number of new tokens (1 for a decode row,
 * many for a joining prompt's prefill).  The rows of all sequences are stacked for the
 * projections and the MLP (one matrix product per weight: the weights are read once per step
 * for every sequence), attention runs per sequence against its own cache (causal), and each
 * sequence's last new row gives its logits.  Each sequence may carry its own adapter set. */
typedef struct {
    struct aios_lora *const *adapters; /* borrowed; each checked against the model */
    const float *scales;               /* (n) or NULL = 1 each; scale 0 skips an adapter */
    int n;                             /* 0 = the base model alone */
    int router;                        /* AIOS_ROUTER_NONE (0): summed at their scales;
                                          AIOS_ROUTER_ARROW: per token and module the top_k
                                          of them by |x . prototype| / temperature, as
                                          aios_decoder_set_router's arrow (prototypes kept
                                          with each adapter, aios_lora_prototypes).  Compose
                                          is the caller's: one row per adapter (generate.c) */
    int top_k;                         /* arrow: >= 1 */
    float temperature;                 /* arrow: > 0 */
} aios_decoder_adapter_set;

typedef struct {
    aios_kv_cache *kv;                 /* this sequence's cache (distinct for every sequence) */
    const int32_t *tokens;             /* (T) new tokens, appended after the cached positions */
    int64_t T;                         /* >= 1 */
    float *logits;                     /* (n_vocab) logits of the last new token, or NULL */
    const aios_decoder_adapter_set *adapters; /* NULL: the decoder's own (aios_decoder_set_adapters,
                                                 router none or arrow); else this set, summed
                                                 or arrow-routed by its own router field,
                                                 whatever the decoder's router */
} aios_decoder_seq;

/* One causal forward over n_seq sequences; every cache's n_past advances by its T.  The
 * logits of a sequence equal aios_decoder_forward's on that sequence alone up to float
 * rounding (the stacked matrix products sum in another order).  The compose router (one cache
 * per adapter) with the decoder's own adapters is AIOS_ERR_UNSUPPORTED here.  On an error no
 * cache has advanced (K/V beyond n_past may have been written). */
aios_status aios_decoder_forward_batch(aios_decoder *d, aios_decoder_seq *seqs, int n_seq);

/* Fills inv_freq (head_dim/2) for the config's rope type at sequence length seq_len (dynamic
 * scaling depends on it), computed as transformers does (float32 of the float64 formula). */
void aios_decoder_rope_inv_freq(const aios_decoder_config *cfg, int64_t seq_len, float *inv_freq);

/* ---- For training and adapters (src/model/lora.c, src/train/). ---- */

/* One layer's weights as the decoder bound them: matrices are views (any dtype), the 1-D
 * parameters float32 (NULL when the model has none).  Borrowed from the decoder. */
typedef struct {
    const aios_tensor *wq, *wk, *wv, *wo, *wg, *wu, *wd;
    const float *attn_norm, *ffn_norm; /* (n_embd) */
    const float *q_norm, *k_norm;      /* (head_dim) or NULL */
    const float *bq, *bk, *bv, *bo;    /* or NULL */
} aios_decoder_layer_view;
void aios_decoder_layer(const aios_decoder *d, int64_t l, aios_decoder_layer_view *out);
const aios_tensor *aios_decoder_embed(const aios_decoder *d);   /* (n_vocab, n_embd) */
const aios_tensor *aios_decoder_lm_head(const aios_decoder *d); /* the embedding when tied */
const float *aios_decoder_final_norm(const aios_decoder *d);    /* (n_embd) */

/* Run-time LoRA adapters (src/model/lora.h): after each adapted projection the forward adds
 * scale * (alpha/r) * x A^T B^T.  The adapters are borrowed (they must outlive their use);
 * n = 0 removes them all.  At most AIOS_DECODER_MAX_ADAPTERS. */
#define AIOS_DECODER_MAX_ADAPTERS 16
struct aios_lora;
aios_status aios_decoder_set_adapters(aios_decoder *d, struct aios_lora *const *adapters, const float *scales, int n);
/* How the adapters combine (aios_router, include/aios.h): AIOS_ROUTER_NONE sums them at their
 * scales (the default); AIOS_ROUTER_ARROW routes every token of every adapted module to the
 * top_k adapters by |x . prototype| / temperature (src/model/arrow.c; each adapter's prototypes
 * computed on its first arrow use and kept with it, aios_lora_prototypes); AIOS_ROUTER_COMPOSE mixes the
 * next-token logits of the base and of each adapter alone, each with its own KV cache kept in
 * step with the caller's (the first cache forwarded from position 0 after a change of adapters
 * or router; another cache with positions in it is refused).  top_k >= 1 and temperature > 0
 * matter for arrow only.  AIOS_ERR_INVALID_ARG otherwise. */
aios_status aios_decoder_set_router(aios_decoder *d, int router, int top_k, float temperature);
/* 1 when some layer matrix is quantized in a form the 16-bit-activation kernels take (GGUF
 * blocks, ArrowQuant int8 / int4; int2 has none and stays exact) and every such matrix takes
 * 16-bit activations by default on this tier (aios_kernels_x16_default_weight): the generators'
 * AUTO then runs mode 3. */
int aios_decoder_x16_default(const aios_decoder *d);
/* This decoder's matrix products: mode 1 int8 activations wherever a kernel has them (its 4- and
 * 5-bit weights repacked now, kernels/cpu/q4x8.c), 3 16-bit activations into quantized weights
 * (repacked too; float weights exact; aios_kernels_act_mode), 0 exact float,
 * -1 (the default) the calling
 * thread's / process's setting (aios_kernels_int8_thread_mode, AIOS_INT8_ACT).  Set as the
 * calling thread's mode around each forward; no other thread's products change. */
void aios_decoder_set_int8_act(aios_decoder *d, int mode);
/* What a forward of d uses now: 0, 1 or 3 (d's own mode, else the calling thread's / process's). */
int aios_decoder_act_mode(const aios_decoder *d);
int aios_decoder_router(const aios_decoder *d);
/* on 1: the decoder's own adapters (aios_decoder_set_adapters) are applied from their bfloat16
 * copies (aios_lora_bf16: made on first use, kept, remade after aios_lora_changed) with float32
 * accumulation — half the bytes per token (decoding is memory-bound); not arrow, compose's own
 * passes are the same sum.  The default, unless the environment has AIOS_LORA_BF16=0 when the
 * decoder is created (so `aios generate|chat|serve` can opt out).  0: float32 A / B as stored
 * (the trainer's own forward always reads float32). */
void aios_decoder_set_adapter_bf16(aios_decoder *d, int on);
/* Arrow's prototype (n_in) of the i-th expert of (layer l, target) — the i-th adapter (in the
 * order given, skipping scale 0) that adapts it; NULL when there is none or arrow is off. */
const float *aios_decoder_arrow_prototype(const aios_decoder *d, int64_t l, int target, int i);

#endif
