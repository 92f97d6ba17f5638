/*
 * lora.h — LoRA adapters for the decoder family (internal interface).
 *
 * An adapter is a set of low-rank updates W' = W + s * B @ A on some of the seven projections
 * of every layer (PEFT's module names q_proj k_proj v_proj o_proj gate_proj up_proj down_proj),
 * with s = alpha / r (or alpha / sqrt(r) with rsLoRA).  A (r, n_in) and B (n_out, r) are
 * float32 arrays owned by the adapter.
 *
 * Two files hold one (DESIGN.md §3):
 *   PEFT directory   adapter_config.json + adapter_model.safetensors, tensors named
 *                    base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight ...
 *   skill card       one Parquet file, a row per module: module (the PEFT module path without
 *                    the base_model.model. prefix), rank, alpha, lora_a, lora_b (float32
 *                    little-endian bytes, shapes [r, in] and [out, r]); key-value metadata
 *                    aios.card.version, name, base_model, training facts.
 * aios_lora_load picks the form by the path (a directory or a .parquet file).
 */
#ifndef AIOS_MODEL_LORA_H
#define AIOS_MODEL_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "aios.h"
#include "model/decoder.h"

typedef enum {
    AIOS_LORA_Q = 0,
    AIOS_LORA_K = 1,
    AIOS_LORA_V = 2,
    AIOS_LORA_O = 3,
    AIOS_LORA_GATE = 4,
    AIOS_LORA_UP = 5,
    AIOS_LORA_DOWN = 6,
    AIOS_LORA_N_TARGETS = 7,
} aios_lora_target;

/* "q_proj" ... "down_proj" */
const char *aios_lora_target_name(int t);
/* "self_attn.q_proj" ... "mlp.down_proj" */
const char *aios_lora_target_path(int t);
/* "q_proj,v_proj" (or "all") -> bit mask of (1 << target).  AIOS_ERR_INVALID_ARG naming the
 * unknown module. */
aios_status aios_lora_targets_parse(const char *list, unsigned *mask);
/* (n_out, n_in) of target t in a model of config c. */
void aios_lora_target_dims(const aios_decoder_config *c, int t, int64_t *n_out, int64_t *n_in);

typedef struct {
    int64_t layer;
    int target;
    int64_t n_in, n_out, r;
    float *A; /* (r, n_in) */
    float *B; /* (n_out, r) */
    const float *proto; /* (n_in) Arrow's prototype, NULL until aios_lora_prototypes */
} aios_lora_module;

typedef struct aios_lora {
    int64_t r;
    double alpha;
    int rslora;
    double dropout;      /* lora_dropout (training only) */
    unsigned targets;    /* bit mask of aios_lora_target */
    int64_t n_layer;
    int64_t n_mods;
    aios_lora_module *mods;
    aios_lora_module **index; /* (n_layer, AIOS_LORA_N_TARGETS), NULL where not adapted */
    float *data;              /* every A and B, one allocation */
    int64_t n_params;
    char base_model[512];
    char name[128];
    /* Arrow's prototypes of every module, kept with the adapter (aios_lora_prototypes): one
     * allocation for the adapter's life, NULL until first needed; protos_ok 0 after
     * aios_lora_changed (recomputed in place on the next use); proto_builds counts how often
     * they were computed */
    float *protos;
    int protos_ok;
    uint64_t proto_builds;
    /* every A and B rounded to bfloat16 (aios_lora_bf16), at the offsets of `data`; NULL until
     * first needed, stale (bf16_ok 0) after aios_lora_changed like the prototypes */
    uint16_t *bf16;
    int bf16_ok;
} aios_lora;

/* splitmix64: the deterministic generator of initialisation, dropout and shuffling. */
static inline uint64_t aios_lora_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Uniform in [0, 1). */
static inline double aios_lora_rng_uniform(uint64_t *s) { return (double)(aios_lora_rng_next(s) >> 11) * 0x1.0p-53; }

/* A zeroed adapter on the `targets` of every layer of config c.  r in 1..4096. */
aios_status aios_lora_create(const aios_decoder_config *c, unsigned targets, int64_t r, double alpha, int rslora,
                             aios_lora **out);
void aios_lora_free(aios_lora *a);
/* PEFT's default initialisation, from our own generator seeded by `seed`: A ~ U(-1/sqrt(n_in),
 * 1/sqrt(n_in)) (kaiming_uniform with a = sqrt(5)), B = 0. */
void aios_lora_init_default(aios_lora *a, uint64_t seed);
/* The scaling s (alpha / r, or alpha / sqrt(r) with rsLoRA). */
float aios_lora_scaling(const aios_lora *a);
const aios_lora_module *aios_lora_get(const aios_lora *a, int64_t layer, int target);
/* Checks that the adapter fits config c (layers and module shapes). */
aios_status aios_lora_check(const aios_lora *a, const aios_decoder_config *c);

/* y (T, n_out) += mult * s * (x (T, n_in) @ A^T) @ B^T.  u is scratch of T * r floats.  On the
 * selected kernel tier (src/model/lora_delta.c); threads only for many rows. */
void aios_lora_apply(const aios_lora *a, const aios_lora_module *m, float mult, float *y, const float *x, int64_t T,
                     float *u);
/* y (n_out) += B (n_out, r) @ u (r), B in PEFT's row-major layout, on the selected kernel tier. */
void aios__lora_bu(float *y, const float *B, const float *u, int64_t n_out, int64_t r);

/* ---- Arrow routing (src/model/arrow.c; Ostapenko et al. 2024, PEFT's ArrowLoraLinearLayer) ---- */
/* v (n_in): the top right singular vector of the module's B A, unit norm (zeros when B A = 0),
 * as PEFT's ArrowLoraLinearLayer computes it: AIOS_ARROW_ITERS power iterations from
 * torch.randn(n_in) of a CPU generator seeded AIOS_ARROW_SEED (ArrowConfig's rng_seed).
 * Its sign is PEFT's too (routing ignores it). */
#define AIOS_ARROW_SEED 4242
#define AIOS_ARROW_ITERS 15
aios_status aios_lora_prototype(const aios_lora_module *m, float *v);
/* Every module's prototype (aios_lora_prototype) into its m->proto, computed once per adapter
 * and kept with it (an Arrow router reuses them for every adapter set and every request, also
 * across decoders and threads: the computation runs under a lock).  Cheap when already there. */
aios_status aios_lora_prototypes(aios_lora *a);
/* The adapter's A / B changed in place (training, a restored checkpoint): the kept prototypes
 * are stale; the next aios_lora_prototypes (every arrow forward makes that call) computes them
 * again into the same memory (m->proto pointers stay valid).  Not while a forward runs with it. */
void aios_lora_changed(aios_lora *a);
/* The bfloat16 copy of A and B (round to nearest even) up to date: made on first use, again
 * only after aios_lora_changed.  Thread-safe as aios_lora_prototypes. */
aios_status aios_lora_bf16(aios_lora *a);
/* aios_lora_apply with the bf16 copy (aios_lora_bf16 first): float32 x, u, y and accumulation. */
void aios_lora_apply_bf16(const aios_lora *a, const aios_lora_module *m, float mult, float *y, const float *x,
                          int64_t T, float *u);
/* out (n) = torch.randn(n, generator=torch.Generator().manual_seed(seed)) on the CPU (n >= 16;
 * below that a deterministic stand-in). */
void aios__torch_randn(float *out, int64_t n, uint64_t seed);
/* One expert of a routed module: every expert of a call has the same n_in and n_out. */
typedef struct {
    const aios_lora_module *m;
    const float *proto; /* (n_in), from aios_lora_prototype */
    float scale;        /* alpha / r times the caller's scale */
} aios_arrow_expert;
/* Floats of scratch per token row that aios_lora_arrow_apply needs. */
int64_t aios_lora_arrow_scratch(const aios_arrow_expert *ex, int E);
/* coeff (E) = softmax over the top_k largest sim (E) of sim / temperature, 0 elsewhere
 * (top_k clamped to 1..E; ties keep the lower index).  E <= AIOS_DECODER_MAX_ADAPTERS. */
void aios_lora_arrow_coeffs(const float *sim, int E, int top_k, float temperature, float *coeff);
/* y (T, n_out) += sum_e coeff(t, e) * scale_e * B_e (A_e x_t), coeff from
 * sim = |x_t . proto_e| (aios_lora_arrow_coeffs).  scratch: T * aios_lora_arrow_scratch floats.
 * The dot products use the selected kernel tier. */
void aios_lora_arrow_apply(const aios_arrow_expert *ex, int E, int top_k, float temperature, float *y,
                           const float *x, int64_t T, float *scratch);

/* ---- PEFT adapter directory ---- */
typedef struct {
    int64_t r;
    double alpha;
    double dropout;
    int rslora;
    unsigned targets;
    char base_model[512];
} aios_peft_config;
/* Parses adapter_config.json (len bytes).  Refuses what we do not implement, naming the field:
 * peft_type other than LORA, use_dora, fan_in_fan_out, bias other than "none", rank_pattern /
 * alpha_pattern entries, layers_to_transform, a target_modules regex or unknown module. */
aios_status aios_peft_config_parse(const char *json, size_t len, aios_peft_config *out);
/* The adapter_config.json text for a (malloc'd; NULL when out of memory). */
char *aios__lora_peft_config_json(const aios_lora *a);
/* Reads a PEFT directory; c (may be NULL) is checked against the shapes. */
aios_status aios_lora_load_peft(const char *dir, const aios_decoder_config *c, aios_lora **out);
/* Writes dir/adapter_config.json and dir/adapter_model.safetensors (each atomically: a
 * temporary file renamed over the old one).  Creates dir. */
aios_status aios_lora_save_peft(const aios_lora *a, const char *dir);

/* ---- Skill card (Parquet) ---- */
/* meta_kv: NULL or NULL-terminated key, value, ... (training facts); written beside name /
 * base model.  Atomic. */
aios_status aios_lora_save_card(const aios_lora *a, const char *path, const char *const *meta_kv);
aios_status aios_lora_load_card(const char *path, const aios_decoder_config *c, aios_lora **out);

/* A directory -> PEFT, a file -> skill card. */
aios_status aios_lora_load(const char *path, const aios_decoder_config *c, aios_lora **out);

#endif
