/*
 * decoder.c — Llama / Qwen2 / Qwen3 / LLaDA decoder forward with a KV cache.
 *
 * The block (Hugging Face LlamaDecoderLayer and its Qwen relatives):
 *     h = RMSNorm(x) ; q,k,v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)
 *     [Qwen3] q,k = RMSNorm over each head (q_norm, k_norm)
 *     q,k = RoPE(q,k, pos)  (rotate_half convention, inv_freq per rope_scaling)
 *     x += Attention(q, K, V) Wo^T        (grouped-query: head h uses kv head h / (n_head/n_head_kv))
 *     h = RMSNorm(x) ; x += (SiLU(h Wg^T) * (h Wu^T)) Wd^T
 * then logits = RMSNorm(x) Wlm^T with Wlm the embedding when tied.
 *
 * Key decisions:
 *  - One forward: T new tokens appended after n_past cached positions.  T > 1 is the prefill /
 *    canvas path (matrix-matrix through aios_matmul); T = 1 the decode path (matrix-vector).
 *    The attention pattern is an argument (causal, bidirectional or an explicit mask) and RoPE
 *    positions may be given, which is all the diffusion samplers need (block-causal with
 *    left padding is a mask plus positions).
 *  - The cache stores K after RoPE and V, float32, (n_layer, n_ctx, n_head_kv*head_dim): a new
 *    token's K/V rows are written in place, attention reads rows 0..n_past+T-1 with stride
 *    n_head_kv*head_dim.  It is allocated once for the context length and reused across calls.
 *  - Weights stay in their file dtype and are used in place through the kernels; only the 1-D
 *    parameters (norm weights, biases) are converted to float32 once at create.
 *  - Scratch activations grow to the largest T seen and are reused (no allocation per token).
 * References: transformers modeling_llama.py / modeling_qwen3.py / modeling_rope_utils.py;
 * llama2.c run.c (cache layout); the fixture reference decoder in fixtures/make_fixtures.py.
 */
#include "model/decoder.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/kernels.h"
#include "model/lora.h"
#include "model/model.h"
#include "tensor/quant.h"

typedef struct {
    const aios_tensor *wq, *wk, *wv, *wo, *wg, *wu, *wd;
    float *attn_norm, *ffn_norm; /* (n_embd) */
    float *q_norm, *k_norm;      /* (head_dim) or NULL */
    float *bq, *bk, *bv, *bo;    /* or NULL */
    /* wq .. wd repacked for the int8-activation decode GEMV (ensure_packs), or NULL */
    aios_matmul_pack *pq, *pk, *pv, *po, *pg, *pu, *pd;
} dec_layer;

struct aios_decoder {
    aios_decoder_config cfg;
    const aios_tensor *embed, *lm_head;
    aios_matmul_pack *p_head; /* (ensure_packs) */
    int packed;               /* ensure_packs ran under mode 1 or 3 (0: not yet) */
    int int8;                 /* aios_decoder_set_int8_act: -1 the thread's / process's mode, 0 off, 1 on, 3 16-bit */
    float *final_norm;
    dec_layer *layers;
    float *inv_freq;         /* (head_dim/2) for the default length */
    float *inv_freq_dyn;     /* scratch for dynamic scaling */
    /* scratch, grown to the largest T */
    int64_t cap_T, cap_Tk;
    float *x, *xb, *q, *att, *gate, *up, *logit_rows;
    float *xr16; /* (T, n_embd): a shared input rounded to 16 bits once (matmul_shared) */
    uint8_t *mask;
    int32_t *pos;
    aios_kv_cache *scratch_kv;
    /* run-time LoRA adapters (borrowed), applied after each adapted projection */
    aios_lora *adapters[AIOS_DECODER_MAX_ADAPTERS];
    float adapter_scale[AIOS_DECODER_MAX_ADAPTERS];
    int n_adapters;
    float *lora_u;
    int64_t lora_u_cap;
    int adapter_bf16; /* aios_decoder_set_adapter_bf16 */
    /* the router over the adapters (aios_decoder_set_router) */
    int router, top_k;
    float temperature;
    /* arrow: per (layer, target) the experts (adapters adapting it, scale != 0) with their
     * adapter's kept prototypes, rebuilt when the adapters or the router change */
    aios_arrow_expert *arrow_ex; /* (n_layer * AIOS_LORA_N_TARGETS, AIOS_DECODER_MAX_ADAPTERS) */
    int *arrow_n;                /* (n_layer * AIOS_LORA_N_TARGETS) */
    /* compose: one KV cache per adapter, kept in step with the caller's cache `compose_owner` */
    aios_kv_cache *compose_kv[AIOS_DECODER_MAX_ADAPTERS];
    const aios_kv_cache *compose_owner;
    float *compose_logits;
    int64_t compose_logits_cap;
    /* aios_decoder_forward_batch: new K/V rows of all sequences before they go to their caches,
     * the last rows' logits */
    float *bat_k, *bat_v, *bat_logits;
    float *knew, *vnew; /* (cap_kn, kv_dim): new K / V rows before a float16 cache takes them */
    int64_t cap_kn;
    int64_t bat_cap_R, bat_cap_logits;
};

struct aios_kv_cache {
    int64_t n_layer, n_ctx, kv_dim, n_past;
    aios_kv_type type; /* AIOS_KV_F32: k, v float *; AIOS_KV_F16: uint16_t * */
    void *k, *v;       /* (n_layer, n_ctx, kv_dim) */
};

/* Layer l's K or V block (n_ctx, kv_dim) as float32 / float16. */
static float *kv_f32(const aios_kv_cache *kv, void *base, int64_t l) {
    return (float *)base + (size_t)l * (size_t)kv->n_ctx * (size_t)kv->kv_dim;
}
static uint16_t *kv_f16(const aios_kv_cache *kv, void *base, int64_t l) {
    return (uint16_t *)base + (size_t)l * (size_t)kv->n_ctx * (size_t)kv->kv_dim;
}

/* Layer l of kv takes the T new K / V rows k, v (float32, RoPE applied) at position n_past —
 * rounded for a float16 cache, copied into a float32 one unless they are computed in place —
 * and att (T, n_head * head_dim) = the attention of q over its n_past + T positions. */
static aios_status cache_attend(const aios_decoder_config *c, aios_kv_cache *kv, int64_t l, int64_t n_past,
                                const float *k, const float *v, int64_t T, const float *q, float *att,
                                const uint8_t *mask, float scale) {
    const int64_t hd = c->head_dim, nh = c->n_head, nkv = c->n_head_kv, KVD = nkv * hd, Tk = n_past + T;
    const size_t at = (size_t)n_past * (size_t)KVD;
    if (kv->type == AIOS_KV_F16) {
        uint16_t *k16 = kv_f16(kv, kv->k, l), *v16 = kv_f16(kv, kv->v, l);
        aios_f32_to_f16_n(k16 + at, k, T * KVD);
        aios_f32_to_f16_n(v16 + at, v, T * KVD);
        return aios_attention_kv16(att, q, k16, v16, T, Tk, nh, nkv, hd, KVD, mask, scale);
    }
    float *kc = kv_f32(kv, kv->k, l), *vc = kv_f32(kv, kv->v, l);
    if (kc + at != k) memcpy(kc + at, k, (size_t)(T * KVD) * sizeof(float));
    if (vc + at != v) memcpy(vc + at, v, (size_t)(T * KVD) * sizeof(float));
    return aios_attention(att, q, kc, vc, T, Tk, nh, nkv, hd, KVD, mask, scale);
}

/* ------------------------------------------------------------------------------------------
 * config.json
 * ------------------------------------------------------------------------------------------ */

static int64_t j_int(const cJSON *o, const char *k, int64_t dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) return dflt;
    /* clamp before converting: a hostile config may hold 1e300 or NaN (UB to cast); the
     * clamped value is then refused by the range checks of the caller */
    int64_t r;
    return aios__f64_to_i64(v->valuedouble, &r) ? r : -1;
}
static double j_num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}
static int j_bool(const cJSON *o, const char *k, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}
static const char *j_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static aios_status parse_rope(const cJSON *rs, aios_decoder_config *c) {
    if (!rs || cJSON_IsNull(rs)) return AIOS_OK;
    if (!cJSON_IsObject(rs)) return aios__err(AIOS_ERR_FORMAT, "config.json: rope_scaling is not an object");
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(rs, "rope_theta")))
        c->rope_theta = j_num(rs, "rope_theta", c->rope_theta);
    const char *t = j_str(rs, "rope_type");
    if (!t) t = j_str(rs, "type");
    if (!t || !strcmp(t, "default")) return AIOS_OK;
    c->rope_factor = j_num(rs, "factor", 1.0);
    if (!(c->rope_factor > 0)) return aios__err(AIOS_ERR_FORMAT, "config.json: rope factor %g", c->rope_factor);
    int64_t orig = j_int(rs, "original_max_position_embeddings", 0);
    if (orig > 0) c->rope_orig_ctx = orig;
    if (!strcmp(t, "linear")) {
        c->rope_type = AIOS_ROPE_LINEAR;
    } else if (!strcmp(t, "dynamic")) {
        c->rope_type = AIOS_ROPE_DYNAMIC;
    } else if (!strcmp(t, "llama3")) {
        c->rope_type = AIOS_ROPE_LLAMA3;
        c->rope_low_freq_factor = j_num(rs, "low_freq_factor", 1.0);
        c->rope_high_freq_factor = j_num(rs, "high_freq_factor", 4.0);
        if (!(c->rope_high_freq_factor > c->rope_low_freq_factor))
            return aios__err(AIOS_ERR_FORMAT, "config.json: llama3 rope: high_freq_factor <= low_freq_factor");
    } else {
        return aios__err(AIOS_ERR_UNSUPPORTED, "config.json: rope type '%s' (supported: default, linear, dynamic, llama3)", t);
    }
    return AIOS_OK;
}

/* Appends a token id if v is one (an integer in [0, INT32_MAX]); anything else is skipped (a
 * cast of 1e505 or -1e20 to int32 was undefined behaviour: found by fuzz_config). */
static void add_id(const cJSON *v, int32_t *ids, int *n, int max) {
    int64_t x;
    if (cJSON_IsNumber(v) && aios__f64_to_i64(v->valuedouble, &x) && x >= 0 && x <= INT32_MAX && *n < max)
        ids[(*n)++] = (int32_t)x;
}

static void parse_ids(const cJSON *v, int32_t *ids, int *n, int max) {
    if (cJSON_IsArray(v)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v) add_id(e, ids, n, max);
    } else {
        add_id(v, ids, n, max);
    }
}

aios_status aios_decoder_config_parse(const char *json, size_t len, aios_decoder_config *c) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return aios__err(AIOS_ERR_FORMAT, "config.json: not a JSON object");
    }
    aios_status st = AIOS_OK;
    const char *mt = j_str(root, "model_type");
    snprintf(c->model_type, sizeof c->model_type, "%s", mt ? mt : "llama");
    int llada = mt && !strcmp(mt, "llada");
    if (llada) {
        c->naming = AIOS_NAMING_LLADA;
        c->n_embd = j_int(root, "d_model", 0);
        c->n_head = j_int(root, "n_heads", 0);
        c->n_head_kv = j_int(root, "n_kv_heads", c->n_head);
        c->n_layer = j_int(root, "n_layers", 0);
        c->n_ff = j_int(root, "mlp_hidden_size", 0);
        c->n_vocab = j_int(root, "embedding_size", j_int(root, "vocab_size", 0));
        c->n_ctx_train = j_int(root, "max_sequence_length", 2048);
        c->tied = j_bool(root, "weight_tying", 0);
        c->qkv_bias = j_bool(root, "include_qkv_bias", 0) || j_bool(root, "include_bias", 0);
        const char *bt = j_str(root, "block_type");
        const char *act = j_str(root, "activation_type");
        const char *ln = j_str(root, "layer_norm_type");
        if ((bt && strcmp(bt, "llama")) || (act && strcmp(act, "silu") && strcmp(act, "swiglu")) ||
            (ln && strcmp(ln, "rms"))) {
            st = aios__err(AIOS_ERR_UNSUPPORTED, "config.json: LLaDA block_type=%s activation=%s norm=%s (need llama/silu/rms)",
                           bt ? bt : "?", act ? act : "?", ln ? ln : "?");
            goto out;
        }
    } else {
        c->naming = AIOS_NAMING_HF;
        c->n_embd = j_int(root, "hidden_size", 0);
        c->n_head = j_int(root, "num_attention_heads", 0);
        c->n_head_kv = j_int(root, "num_key_value_heads", c->n_head);
        c->n_layer = j_int(root, "num_hidden_layers", 0);
        c->n_ff = j_int(root, "intermediate_size", 0);
        c->n_vocab = j_int(root, "vocab_size", 0);
        c->n_ctx_train = j_int(root, "max_position_embeddings", 2048);
        c->tied = j_bool(root, "tie_word_embeddings", 1);
        c->o_bias = j_bool(root, "attention_bias", 0);
        c->qkv_bias = c->o_bias;
        const char *act = j_str(root, "hidden_act");
        if (act && strcmp(act, "silu")) {
            st = aios__err(AIOS_ERR_UNSUPPORTED, "config.json: hidden_act '%s' (decoder supports silu)", act);
            goto out;
        }
        if (j_bool(root, "mlp_bias", 0)) {
            st = aios__err(AIOS_ERR_UNSUPPORTED, "config.json: mlp_bias=true");
            goto out;
        }
    }
    c->head_dim = j_int(root, "head_dim", 0);
    if (c->head_dim <= 0 && c->n_head > 0) c->head_dim = c->n_embd / c->n_head;
    c->eps = (float)j_num(root, "rms_norm_eps", 1e-5);
    c->rope_theta = j_num(root, "rope_theta", 10000.0);
    c->rope_type = AIOS_ROPE_DEFAULT;
    c->rope_factor = 1.0;
    c->rope_orig_ctx = c->n_ctx_train;
    if ((st = parse_rope(cJSON_GetObjectItemCaseSensitive(root, "rope_parameters"), c)) != AIOS_OK) goto out;
    if ((st = parse_rope(cJSON_GetObjectItemCaseSensitive(root, "rope_scaling"), c)) != AIOS_OK) goto out;
    c->bos_id = (int32_t)j_int(root, "bos_token_id", -1);
    c->pad_id = (int32_t)j_int(root, "pad_token_id", -1);
    c->mask_id = (int32_t)j_int(root, "mask_token_id", -1);
    c->block_size = j_int(root, "block_size", 0);
    parse_ids(cJSON_GetObjectItemCaseSensitive(root, "eos_token_id"), c->eos_ids, &c->n_eos, AIOS_DECODER_MAX_EOS);

    if (c->n_embd <= 0 || c->n_head <= 0 || c->n_head_kv <= 0 || c->n_layer <= 0 || c->n_ff <= 0 ||
        c->n_vocab <= 0 || c->head_dim <= 0 || c->head_dim % 2 || c->n_head % c->n_head_kv ||
        c->n_embd > (1 << 20) || c->n_head > 4096 || c->n_layer > 4096 || c->n_ff > (1 << 24) ||
        c->n_vocab > (1 << 24) || c->head_dim > 4096) {
        st = aios__err(AIOS_ERR_FORMAT,
                       "config.json: bad sizes n_embd=%lld n_head=%lld n_head_kv=%lld head_dim=%lld n_layer=%lld "
                       "n_ff=%lld n_vocab=%lld",
                       (long long)c->n_embd, (long long)c->n_head, (long long)c->n_head_kv, (long long)c->head_dim,
                       (long long)c->n_layer, (long long)c->n_ff, (long long)c->n_vocab);
        goto out;
    }
    if (!(c->eps > 0) || !(c->rope_theta > 0)) {
        st = aios__err(AIOS_ERR_FORMAT, "config.json: rms_norm_eps %g / rope_theta %g", c->eps, c->rope_theta);
        goto out;
    }
    if (c->n_ctx_train <= 0) c->n_ctx_train = 2048;
    if (c->rope_orig_ctx <= 0) c->rope_orig_ctx = c->n_ctx_train;
out:
    cJSON_Delete(root);
    return st;
}

aios_status aios_decoder_config_from_model(const aios_model_config *mc, aios_decoder_config *c) {
    memset(c, 0, sizeof *c);
    switch (mc->arch) {
    case AIOS_ARCH_LLAMA: case AIOS_ARCH_QWEN2: case AIOS_ARCH_QWEN3:
    case AIOS_ARCH_LLADA: case AIOS_ARCH_DREAM: case AIOS_ARCH_BD3LM:
        break;
    default:
        return aios__err(AIOS_ERR_UNSUPPORTED, "decoder: architecture %s is not a Llama/Qwen decoder", aios_arch_name(mc->arch));
    }
    snprintf(c->model_type, sizeof c->model_type, "%s", mc->model_type);
    c->naming = mc->arch == AIOS_ARCH_LLADA ? AIOS_NAMING_LLADA : AIOS_NAMING_HF;
    c->n_embd = mc->n_embd, c->n_head = mc->n_head, c->n_head_kv = mc->n_head_kv > 0 ? mc->n_head_kv : mc->n_head;
    c->head_dim = mc->head_dim > 0 ? mc->head_dim : (mc->n_head > 0 ? mc->n_embd / mc->n_head : 0);
    c->n_layer = mc->n_layer, c->n_ff = mc->n_ff, c->n_vocab = mc->n_vocab;
    c->n_ctx_train = mc->n_ctx_train > 0 ? mc->n_ctx_train : 2048;
    c->eps = mc->norm_eps > 0 ? mc->norm_eps : 1e-5f;
    c->rope_theta = mc->rope_theta > 0 ? mc->rope_theta : 10000.0;
    c->rope_factor = mc->rope_factor > 0 ? mc->rope_factor : 1.0;
    c->rope_orig_ctx = mc->rope_original_max_pos > 0 ? mc->rope_original_max_pos : c->n_ctx_train;
    c->rope_low_freq_factor = mc->rope_low_freq_factor > 0 ? mc->rope_low_freq_factor : 1.0;
    c->rope_high_freq_factor = mc->rope_high_freq_factor > 0 ? mc->rope_high_freq_factor : 4.0;
    if (!mc->rope_type[0] || !strcmp(mc->rope_type, "default")) c->rope_type = AIOS_ROPE_DEFAULT;
    else if (!strcmp(mc->rope_type, "linear")) c->rope_type = AIOS_ROPE_LINEAR;
    else if (!strcmp(mc->rope_type, "dynamic")) c->rope_type = AIOS_ROPE_DYNAMIC;
    else if (!strcmp(mc->rope_type, "llama3")) c->rope_type = AIOS_ROPE_LLAMA3;
    else return aios__err(AIOS_ERR_UNSUPPORTED, "decoder: rope type '%s' (supported: default, linear, dynamic, llama3)", mc->rope_type);
    if (c->rope_type == AIOS_ROPE_LLAMA3 && !(c->rope_high_freq_factor > c->rope_low_freq_factor))
        return aios__err(AIOS_ERR_FORMAT, "decoder: llama3 rope: high_freq_factor <= low_freq_factor");
    if (mc->hidden_act[0] && strcmp(mc->hidden_act, "silu") && strcmp(mc->hidden_act, "swiglu"))
        return aios__err(AIOS_ERR_UNSUPPORTED, "decoder: hidden_act '%s' (decoder supports silu)", mc->hidden_act);
    if (mc->mlp_bias) return aios__err(AIOS_ERR_UNSUPPORTED, "decoder: mlp_bias");
    if (!mc->rms_norm) return aios__err(AIOS_ERR_UNSUPPORTED, "decoder: LayerNorm decoders");
    c->tied = mc->tie_word_embeddings;
    c->qkv_bias = mc->attn_qkv_bias;
    c->o_bias = mc->attn_out_bias;
    c->bos_id = (int32_t)mc->bos_token_id;
    c->pad_id = (int32_t)mc->pad_token_id;
    c->mask_id = (int32_t)mc->mask_token_id;
    c->block_size = mc->block_size;
    for (int i = 0; i < mc->n_eos && c->n_eos < AIOS_DECODER_MAX_EOS; i++) c->eos_ids[c->n_eos++] = (int32_t)mc->eos_token_ids[i];
    if (c->n_embd <= 0 || c->n_head <= 0 || c->n_head_kv <= 0 || c->n_layer <= 0 || c->n_ff <= 0 || c->n_vocab <= 0 ||
        c->head_dim <= 0 || c->head_dim % 2 || c->n_head % c->n_head_kv)
        return aios__err(AIOS_ERR_FORMAT, "decoder: bad sizes n_embd=%lld n_head=%lld n_head_kv=%lld head_dim=%lld",
                         (long long)c->n_embd, (long long)c->n_head, (long long)c->n_head_kv, (long long)c->head_dim);
    return AIOS_OK;
}

const aios_tensor *aios_decoder_model_lookup(void *ctx, const char *name) { return aios_model_tensor(ctx, name); }

/* ------------------------------------------------------------------------------------------
 * RoPE frequencies (transformers modeling_rope_utils.py)
 * ------------------------------------------------------------------------------------------ */

void aios_decoder_rope_inv_freq(const aios_decoder_config *c, int64_t seq_len, float *inv_freq) {
    int64_t hd = c->head_dim, half = hd / 2;
    double base = c->rope_theta;
    if (c->rope_type == AIOS_ROPE_DYNAMIC && seq_len > c->rope_orig_ctx) {
        double f = c->rope_factor;
        base = base * pow(f * (double)seq_len / (double)c->rope_orig_ctx - (f - 1.0), (double)hd / (double)(hd - 2));
    }
    for (int64_t i = 0; i < half; i++) {
        /* transformers: 1 / base ** (arange(0, dim, 2).float() / dim), in float32 */
        float e = (float)(2 * i) / (float)hd;
        double f = 1.0 / pow(base, (double)e);
        if (c->rope_type == AIOS_ROPE_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_type == AIOS_ROPE_LLAMA3) {
            double old = (double)c->rope_orig_ctx;
            double lo_wl = old / c->rope_low_freq_factor, hi_wl = old / c->rope_high_freq_factor;
            double wl = 2.0 * M_PI / f;
            if (wl > lo_wl) {
                f = f / c->rope_factor;
            } else if (wl >= hi_wl) { /* medium band: interpolate */
                double s = (old / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1.0 - s) * f / c->rope_factor + s * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}

/* ------------------------------------------------------------------------------------------
 * Weights
 * ------------------------------------------------------------------------------------------ */

typedef struct {
    aios_tensor_lookup_fn get;
    void *ctx;
    const aios_decoder_config *cfg;
} binder;

static aios_status want2(binder *b, const char *name, int64_t rows, int64_t cols, const aios_tensor **out) {
    const aios_tensor *t = b->get(b->ctx, name);
    if (!t) return aios__err(AIOS_ERR_NOT_FOUND, "decoder: weight '%s' missing", name);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return aios__err(AIOS_ERR_SHAPE, "decoder: weight '%s': shape %s, want (%lld, %lld)", name,
                         t->ndim == 2 ? "2-D other" : "not 2-D", (long long)rows, (long long)cols);
    switch (t->dtype) {
    case AIOS_DTYPE_F32: case AIOS_DTYPE_F16: case AIOS_DTYPE_BF16:
    case AIOS_DTYPE_Q8: case AIOS_DTYPE_Q4: case AIOS_DTYPE_Q2:
        break;
    default:
        if (aios_gguf_block(t->dtype, NULL, NULL)) break; /* GGUF blocks, used in place */
        return aios__err(AIOS_ERR_UNSUPPORTED, "decoder: weight '%s': dtype %d is not a weight dtype", name, (int)t->dtype);
    }
    *out = t;
    return AIOS_OK;
}

/* A 1-D float parameter of n values (any dtype) to a fresh float32 array; absent -> *out NULL
 * when optional. */
static aios_status want1(binder *b, const char *name, int64_t n, int optional, float **out) {
    *out = NULL;
    const aios_tensor *t = b->get(b->ctx, name);
    if (!t) return optional ? AIOS_OK : aios__err(AIOS_ERR_NOT_FOUND, "decoder: weight '%s' missing", name);
    if (aios_tensor_numel(t) != n)
        return aios__err(AIOS_ERR_SHAPE, "decoder: weight '%s': %lld values, want %lld", name,
                         (long long)aios_tensor_numel(t), (long long)n);
    float *p = malloc((size_t)n * sizeof *p);
    if (!p) return aios__err(AIOS_ERR_NOMEM, "decoder: %s", name);
    aios_status s = aios_tensor_to_f32(p, t);
    if (s != AIOS_OK) {
        free(p);
        return aios__err_prefix(s, "decoder: %s", name);
    }
    *out = p;
    return AIOS_OK;
}

static aios_status bind_layer(binder *b, int64_t l, dec_layer *L) {
    const aios_decoder_config *c = b->cfg;
    int64_t E = c->n_embd, Q = c->n_head * c->head_dim, KV = c->n_head_kv * c->head_dim, F = c->n_ff;
    char n[256];
#define NM(fmt) (snprintf(n, sizeof n, fmt, (long long)l), n)
    if (c->naming == AIOS_NAMING_LLADA) {
        AIOS_TRY(want1(b, NM("model.transformer.blocks.%lld.attn_norm.weight"), E, 0, &L->attn_norm));
        AIOS_TRY(want1(b, NM("model.transformer.blocks.%lld.ff_norm.weight"), E, 0, &L->ffn_norm));
        AIOS_TRY(want2(b, NM("model.transformer.blocks.%lld.q_proj.weight"), Q, E, &L->wq));
        AIOS_TRY(want2(b, NM("model.transformer.blocks.%lld.k_proj.weight"), KV, E, &L->wk));
        AIOS_TRY(want2(b, NM("model.transformer.blocks.%lld.v_proj.weight"), KV, E, &L->wv));
        AIOS_TRY(want2(b, NM("model.transformer.blocks.%lld.attn_out.weight"), E, Q, &L->wo));
        AIOS_TRY(want2(b, NM("model.transformer.blocks.%lld.ff_proj.weight"), F, E, &L->wg));
        AIOS_TRY(want2(b, NM("model.transformer.blocks.%lld.up_proj.weight"), F, E, &L->wu));
        AIOS_TRY(want2(b, NM("model.transformer.blocks.%lld.ff_out.weight"), E, F, &L->wd));
        AIOS_TRY(want1(b, NM("model.transformer.blocks.%lld.q_proj.bias"), Q, 1, &L->bq));
        AIOS_TRY(want1(b, NM("model.transformer.blocks.%lld.k_proj.bias"), KV, 1, &L->bk));
        AIOS_TRY(want1(b, NM("model.transformer.blocks.%lld.v_proj.bias"), KV, 1, &L->bv));
    } else {
        AIOS_TRY(want1(b, NM("model.layers.%lld.input_layernorm.weight"), E, 0, &L->attn_norm));
        AIOS_TRY(want1(b, NM("model.layers.%lld.post_attention_layernorm.weight"), E, 0, &L->ffn_norm));
        AIOS_TRY(want2(b, NM("model.layers.%lld.self_attn.q_proj.weight"), Q, E, &L->wq));
        AIOS_TRY(want2(b, NM("model.layers.%lld.self_attn.k_proj.weight"), KV, E, &L->wk));
        AIOS_TRY(want2(b, NM("model.layers.%lld.self_attn.v_proj.weight"), KV, E, &L->wv));
        AIOS_TRY(want2(b, NM("model.layers.%lld.self_attn.o_proj.weight"), E, Q, &L->wo));
        AIOS_TRY(want2(b, NM("model.layers.%lld.mlp.gate_proj.weight"), F, E, &L->wg));
        AIOS_TRY(want2(b, NM("model.layers.%lld.mlp.up_proj.weight"), F, E, &L->wu));
        AIOS_TRY(want2(b, NM("model.layers.%lld.mlp.down_proj.weight"), E, F, &L->wd));
        /* Qwen2 always has q/k/v biases; Llama with attention_bias has them and o's too. */
        AIOS_TRY(want1(b, NM("model.layers.%lld.self_attn.q_proj.bias"), Q, 1, &L->bq));
        AIOS_TRY(want1(b, NM("model.layers.%lld.self_attn.k_proj.bias"), KV, 1, &L->bk));
        AIOS_TRY(want1(b, NM("model.layers.%lld.self_attn.v_proj.bias"), KV, 1, &L->bv));
        AIOS_TRY(want1(b, NM("model.layers.%lld.self_attn.o_proj.bias"), E, 1, &L->bo));
        AIOS_TRY(want1(b, NM("model.layers.%lld.self_attn.q_norm.weight"), c->head_dim, 1, &L->q_norm));
        AIOS_TRY(want1(b, NM("model.layers.%lld.self_attn.k_norm.weight"), c->head_dim, 1, &L->k_norm));
        if (!L->q_norm != !L->k_norm)
            return aios__err(AIOS_ERR_FORMAT, "decoder: layer %lld has only one of q_norm / k_norm", (long long)l);
    }
    int qwen2 = !strcmp(c->model_type, "qwen2") || !strcmp(c->model_type, "Dream") || !strcmp(c->model_type, "dream");
    if (qwen2 && !(L->bq && L->bk && L->bv))
        return aios__err(AIOS_ERR_NOT_FOUND, "decoder: layer %lld: Qwen2 q/k/v biases missing", (long long)l);
    if (c->o_bias && !L->bo && c->naming == AIOS_NAMING_HF)
        return aios__err(AIOS_ERR_NOT_FOUND, "decoder: layer %lld: attention_bias=true but o_proj.bias missing", (long long)l);
#undef NM
    return AIOS_OK;
}

/* Loading, or else the first forward, with int8 or 16-bit activations on (aios_kernels_act_mode)
 * repacks the 4- and 5-bit weights once for the decode GEMV (aios_matmul_pack_new: blocks of 8 rows
 * on the AVX2 tier, and on the AVX-512 tier under mode 3, kernels/cpu/q4x8.c; a second copy of those weights in memory, the file
 * untouched).  Other tiers and dtypes get no pack from aios_matmul_pack_new (nor does
 * AIOS_REPACK=0), and a pack that cannot be made leaves the in-place kernels. */
static void pack1(const aios_tensor *W, aios_matmul_pack **P) {
    if (*P || W->dtype == AIOS_DTYPE_F32) return; /* float32 would get GEMM panels: not for decoding */
    if (aios_matmul_pack_new(W, P) != AIOS_OK) aios_clear_error();
}

/* The decoder's int8 mode as the calling thread's for one forward (int8_enter returns what
 * int8_leave restores; -2: the decoder follows the thread's own mode, nothing to restore). */
static int int8_enter(const aios_decoder *d) { return d->int8 >= 0 ? aios_kernels_int8_thread_mode(d->int8) : -2; }
static void int8_leave(int prev) {
    if (prev != -2) aios_kernels_int8_thread_mode(prev);
}

static void ensure_packs(aios_decoder *d) {
    const int m = aios_decoder_act_mode(d);
    if (m == 0 || d->packed == 3 || d->packed == m) return;
    d->packed = m; /* the pack is made under the mode (the AVX-512 tier packs for mode 3 only) */
    const int prev = int8_enter(d);
    for (int64_t l = 0; l < d->cfg.n_layer; l++) {
        dec_layer *L = &d->layers[l];
        pack1(L->wq, &L->pq), pack1(L->wk, &L->pk), pack1(L->wv, &L->pv), pack1(L->wo, &L->po);
        pack1(L->wg, &L->pg), pack1(L->wu, &L->pu), pack1(L->wd, &L->pd);
    }
    pack1(d->lm_head, &d->p_head);
    int8_leave(prev);
}

aios_status aios_decoder_create(const aios_decoder_config *cfg, aios_tensor_lookup_fn get, void *ctx, aios_decoder **out) {
    *out = NULL;
    if (!cfg || !get) return aios__err(AIOS_ERR_INVALID_ARG, "decoder: NULL config or lookup");
    aios_decoder *d = calloc(1, sizeof *d);
    if (!d) return aios__err(AIOS_ERR_NOMEM, "decoder");
    d->cfg = *cfg;
    d->int8 = -1;
    const char *bf = getenv("AIOS_LORA_BF16"); /* the process's default (aios_decoder_set_adapter_bf16): */
    d->adapter_bf16 = !(bf && !strcmp(bf, "0")); /* bf16 unless AIOS_LORA_BF16=0 */
    aios_decoder_config *c = &d->cfg;
    binder b = {get, ctx, c};
    aios_status s = AIOS_OK;
    d->layers = calloc((size_t)c->n_layer, sizeof *d->layers);
    d->inv_freq = malloc((size_t)(c->head_dim / 2) * sizeof(float));
    d->inv_freq_dyn = malloc((size_t)(c->head_dim / 2) * sizeof(float));
    if (!d->layers || !d->inv_freq || !d->inv_freq_dyn) {
        s = aios__err(AIOS_ERR_NOMEM, "decoder");
        goto fail;
    }
    int llada = c->naming == AIOS_NAMING_LLADA;
    if ((s = want2(&b, llada ? "model.transformer.wte.weight" : "model.embed_tokens.weight", c->n_vocab, c->n_embd,
                   &d->embed)) != AIOS_OK)
        goto fail;
    if ((s = want1(&b, llada ? "model.transformer.ln_f.weight" : "model.norm.weight", c->n_embd, 0, &d->final_norm)) != AIOS_OK)
        goto fail;
    {
        const char *head = llada ? "model.transformer.ff_out.weight" : "lm_head.weight";
        if (get(ctx, head)) {
            if ((s = want2(&b, head, c->n_vocab, c->n_embd, &d->lm_head)) != AIOS_OK) goto fail;
            c->tied = 0;
        } else if (c->tied || !llada) {
            /* tie_word_embeddings: the head is the embedding (absent from the file) */
            d->lm_head = d->embed;
            c->tied = 1;
        } else {
            s = aios__err(AIOS_ERR_NOT_FOUND, "decoder: LM head '%s' missing and weight_tying=false", head);
            goto fail;
        }
    }
    for (int64_t l = 0; l < c->n_layer; l++)
        if ((s = bind_layer(&b, l, &d->layers[l])) != AIOS_OK) goto fail;
    c->qkv_bias = d->layers[0].bq != NULL;
    c->qk_norm = d->layers[0].q_norm != NULL;
    for (int64_t l = 1; l < c->n_layer; l++)
        if ((d->layers[l].bq != NULL) != c->qkv_bias || (d->layers[l].q_norm != NULL) != c->qk_norm) {
            s = aios__err(AIOS_ERR_FORMAT, "decoder: layer %lld differs from layer 0 in biases / q_norm", (long long)l);
            goto fail;
        }
    aios_decoder_rope_inv_freq(c, 0, d->inv_freq);
    ensure_packs(d); /* at load when int8 activations are on already (AIOS_INT8_ACT=1) */
    *out = d;
    return AIOS_OK;
fail:
    aios_decoder_free(d);
    return s;
}

static void free_scratch(aios_decoder *d) {
    free(d->x), free(d->xb), free(d->q), free(d->att), free(d->gate), free(d->up), free(d->logit_rows);
    free(d->mask), free(d->pos), free(d->xr16);
    d->x = d->xb = d->q = d->att = d->gate = d->up = d->logit_rows = d->xr16 = NULL;
    d->mask = NULL;
    d->pos = NULL;
    d->cap_T = d->cap_Tk = 0;
}

void aios_decoder_free(aios_decoder *d) {
    if (!d) return;
    if (d->layers)
        for (int64_t l = 0; l < d->cfg.n_layer; l++) {
            dec_layer *L = &d->layers[l];
            free(L->attn_norm), free(L->ffn_norm), free(L->q_norm), free(L->k_norm);
            free(L->bq), free(L->bk), free(L->bv), free(L->bo);
            aios_matmul_pack *P[] = {L->pq, L->pk, L->pv, L->po, L->pg, L->pu, L->pd};
            for (int i = 0; i < 7; i++) aios_matmul_pack_free(P[i]);
        }
    aios_matmul_pack_free(d->p_head);
    free(d->layers);
    free(d->final_norm);
    free(d->inv_freq);
    free(d->inv_freq_dyn);
    free_scratch(d);
    aios_kv_cache_free(d->scratch_kv);
    free(d->lora_u);
    free(d->arrow_ex), free(d->arrow_n), free(d->compose_logits);
    for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS; i++) aios_kv_cache_free(d->compose_kv[i]);
    free(d->bat_k), free(d->bat_v), free(d->bat_logits);
    free(d->knew), free(d->vnew);
    free(d);
}

const aios_decoder_config *aios_decoder_get_config(const aios_decoder *d) { return &d->cfg; }

void aios_decoder_layer(const aios_decoder *d, int64_t l, aios_decoder_layer_view *o) {
    const dec_layer *L = &d->layers[l];
    *o = (aios_decoder_layer_view){L->wq, L->wk, L->wv, L->wo, L->wg, L->wu, L->wd, L->attn_norm, L->ffn_norm,
                                   L->q_norm, L->k_norm, L->bq, L->bk, L->bv, L->bo};
}
const aios_tensor *aios_decoder_embed(const aios_decoder *d) { return d->embed; }
const aios_tensor *aios_decoder_lm_head(const aios_decoder *d) { return d->lm_head; }
const float *aios_decoder_final_norm(const aios_decoder *d) { return d->final_norm; }

/* What the decoder's own adapters need derived from them, up to date (each computed once per
 * adapter and kept; again only after aios_lora_changed): arrow's prototypes, or the bf16 copies
 * of A and B when aios_decoder_set_adapter_bf16 asks for them.  Once per forward. */
static aios_status adapters_ready(aios_decoder *d) {
    for (int i = 0; i < d->n_adapters; i++) {
        if (d->adapter_scale[i] == 0) continue;
        if (d->router == AIOS_ROUTER_ARROW)
            AIOS_TRY(aios_lora_prototypes(d->adapters[i]));
        else if (d->adapter_bf16)
            AIOS_TRY(aios_lora_bf16(d->adapters[i]));
    }
    return AIOS_OK;
}

/* Arrow's expert tables for the current adapters (the prototypes are each adapter's own, computed
 * once per adapter and kept with it: aios_lora_prototypes); compose's caches forgotten.  Called
 * whenever the adapters or the router change. */
static aios_status router_rebuild(aios_decoder *d) {
    d->compose_owner = NULL;
    free(d->arrow_ex), free(d->arrow_n);
    d->arrow_ex = NULL, d->arrow_n = NULL;
    if (d->router != AIOS_ROUTER_ARROW || !d->n_adapters) return AIOS_OK;
    const int64_t nl = d->cfg.n_layer, NT = AIOS_LORA_N_TARGETS;
    AIOS_TRY(adapters_ready(d));
    d->arrow_ex = calloc((size_t)(nl * NT * AIOS_DECODER_MAX_ADAPTERS), sizeof *d->arrow_ex);
    d->arrow_n = calloc((size_t)(nl * NT), sizeof *d->arrow_n);
    if (!d->arrow_ex || !d->arrow_n) return aios__err(AIOS_ERR_NOMEM, "decoder: arrow tables");
    for (int64_t l = 0; l < nl; l++)
        for (int t = 0; t < NT; t++)
            for (int i = 0; i < d->n_adapters; i++) {
                const aios_lora_module *m = aios_lora_get(d->adapters[i], l, t);
                if (!m || d->adapter_scale[i] == 0) continue;
                aios_arrow_expert *e = &d->arrow_ex[(l * NT + t) * AIOS_DECODER_MAX_ADAPTERS + d->arrow_n[l * NT + t]++];
                e->m = m, e->proto = m->proto, e->scale = d->adapter_scale[i] * aios_lora_scaling(d->adapters[i]);
            }
    return AIOS_OK;
}

const float *aios_decoder_arrow_prototype(const aios_decoder *d, int64_t l, int target, int i) {
    if (!d->arrow_n || l < 0 || l >= d->cfg.n_layer || target < 0 || target >= AIOS_LORA_N_TARGETS) return NULL;
    int64_t k = l * AIOS_LORA_N_TARGETS + target;
    return i >= 0 && i < d->arrow_n[k] ? d->arrow_ex[k * AIOS_DECODER_MAX_ADAPTERS + i].proto : NULL;
}

/* Grows the adapters' scratch to n floats (only when a batch is larger than any before). */
static aios_status lora_scratch(aios_decoder *d, int64_t n) {
    if (n <= d->lora_u_cap) return AIOS_OK;
    float *u = realloc(d->lora_u, (size_t)n * sizeof(float));
    if (!u) return aios__err(AIOS_ERR_NOMEM, "decoder: adapter scratch");
    d->lora_u = u;
    d->lora_u_cap = n;
    return AIOS_OK;
}

aios_status aios_decoder_set_adapters(aios_decoder *d, aios_lora *const *adapters, const float *scales, int n) {
    if (n < 0 || n > AIOS_DECODER_MAX_ADAPTERS)
        return aios__err(AIOS_ERR_RANGE, "decoder: %d adapters (at most %d)", n, AIOS_DECODER_MAX_ADAPTERS);
    for (int i = 0; i < n; i++) {
        if (!adapters[i]) return aios__err(AIOS_ERR_INVALID_ARG, "decoder: adapter %d is NULL", i);
        AIOS_TRY(aios_lora_check(adapters[i], &d->cfg));
    }
    for (int i = 0; i < n; i++) d->adapters[i] = adapters[i], d->adapter_scale[i] = scales ? scales[i] : 1.0f;
    d->n_adapters = n;
    return router_rebuild(d);
}

aios_status aios_decoder_set_router(aios_decoder *d, int router, int top_k, float temperature) {
    if (router != AIOS_ROUTER_NONE && router != AIOS_ROUTER_ARROW && router != AIOS_ROUTER_COMPOSE)
        return aios__err(AIOS_ERR_INVALID_ARG, "decoder: router %d (none, arrow, compose)", router);
    if (router == AIOS_ROUTER_ARROW && (top_k < 1 || !(temperature > 0) || !isfinite(temperature)))
        return aios__err(AIOS_ERR_INVALID_ARG, "decoder: arrow needs top_k >= 1 and a temperature > 0 (got %d, %g)", top_k,
                         (double)temperature);
    d->router = router;
    d->top_k = top_k;
    d->temperature = temperature;
    return router_rebuild(d);
}

int aios_decoder_router(const aios_decoder *d) { return d->router; }
void aios_decoder_set_adapter_bf16(aios_decoder *d, int on) { d->adapter_bf16 = !!on; }

/* y (T, n_out) += one adapter module's delta at scale mult, from the bf16 copy when the decoder
 * asks for it and the copy is current (adapters_ready / forward_batch make it), else float32. */
static aios_status apply_one(aios_decoder *d, const aios_lora *a, const aios_lora_module *m, float mult, float *y,
                             const float *x, int64_t T) {
    AIOS_TRY(lora_scratch(d, T * m->r));
    if (d->adapter_bf16 && a->bf16_ok)
        aios_lora_apply_bf16(a, m, mult, y, x, T, d->lora_u);
    else
        aios_lora_apply(a, m, mult, y, x, T, d->lora_u);
    return AIOS_OK;
}

/* y (T, n_out) += every adapter's delta for (layer l, target) on input x (T, n_in). */
static aios_status apply_adapters(aios_decoder *d, int64_t l, int target, float *y, const float *x, int64_t T) {
    if (d->router == AIOS_ROUTER_ARROW) { /* per token, the top-k experts by prototype */
        const int64_t k = l * AIOS_LORA_N_TARGETS + target;
        const aios_arrow_expert *ex = d->arrow_ex + k * AIOS_DECODER_MAX_ADAPTERS;
        const int E = d->arrow_n[k];
        if (!E) return AIOS_OK;
        AIOS_TRY(lora_scratch(d, T * aios_lora_arrow_scratch(ex, E)));
        aios_lora_arrow_apply(ex, E, d->top_k, d->temperature, y, x, T, d->lora_u);
        return AIOS_OK;
    }
    for (int i = 0; i < d->n_adapters; i++) {
        const aios_lora_module *m = aios_lora_get(d->adapters[i], l, target);
        if (!m || d->adapter_scale[i] == 0) continue;
        AIOS_TRY(apply_one(d, d->adapters[i], m, d->adapter_scale[i], y, x, T));
    }
    return AIOS_OK;
}

static uint64_t tensor_bytes(const aios_tensor *t) {
    return t->nbytes + aios_tensor_scale_bytes(t);
}

uint64_t aios_decoder_weight_bytes(const aios_decoder *d) {
    uint64_t n = 0;
    for (int64_t l = 0; l < d->cfg.n_layer; l++) {
        const dec_layer *L = &d->layers[l];
        const aios_tensor *w[] = {L->wq, L->wk, L->wv, L->wo, L->wg, L->wu, L->wd};
        for (size_t i = 0; i < AIOS_ARRAY_LEN(w); i++) n += tensor_bytes(w[i]);
    }
    n += tensor_bytes(d->lm_head);
    return n;
}

/* ------------------------------------------------------------------------------------------
 * KV cache
 * ------------------------------------------------------------------------------------------ */

aios_status aios_kv_cache_create(const aios_decoder *d, int64_t n_ctx, aios_kv_cache **out) {
    return aios_kv_cache_create_typed(d, n_ctx, AIOS_KV_F32, out);
}

aios_status aios_kv_cache_create_typed(const aios_decoder *d, int64_t n_ctx, aios_kv_type type, aios_kv_cache **out) {
    *out = NULL;
    const aios_decoder_config *c = &d->cfg;
    if (n_ctx <= 0 || n_ctx > (1 << 24)) return aios__err(AIOS_ERR_RANGE, "kv cache: n_ctx %lld", (long long)n_ctx);
    if (type != AIOS_KV_F32 && type != AIOS_KV_F16) return aios__err(AIOS_ERR_INVALID_ARG, "kv cache: type %d", (int)type);
    uint64_t n;
    if (!aios__mul_ok((uint64_t)c->n_layer * (uint64_t)n_ctx, (uint64_t)(c->n_head_kv * c->head_dim), &n) ||
        !aios__mul_ok(n, type == AIOS_KV_F16 ? 2 : sizeof(float), &n) || n > (uint64_t)SIZE_MAX / 2)
        return aios__err(AIOS_ERR_RANGE, "kv cache: %lld positions overflow", (long long)n_ctx);
    aios_kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) return aios__err(AIOS_ERR_NOMEM, "kv cache");
    kv->n_layer = c->n_layer;
    kv->n_ctx = n_ctx;
    kv->kv_dim = c->n_head_kv * c->head_dim;
    kv->type = type;
    kv->k = malloc((size_t)n);
    kv->v = malloc((size_t)n);
    if (!kv->k || !kv->v) {
        aios_kv_cache_free(kv);
        return aios__err(AIOS_ERR_NOMEM, "kv cache: %llu bytes", (unsigned long long)(2 * n));
    }
    *out = kv;
    return AIOS_OK;
}

void aios_kv_cache_free(aios_kv_cache *kv) {
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv);
}
int64_t aios_kv_cache_len(const aios_kv_cache *kv) { return kv->n_past; }
int64_t aios_kv_cache_capacity(const aios_kv_cache *kv) { return kv->n_ctx; }
aios_kv_type aios_kv_cache_type(const aios_kv_cache *kv) { return kv->type; }
void aios_kv_cache_truncate(aios_kv_cache *kv, int64_t n) {
    if (n >= 0 && n < kv->n_past) kv->n_past = n;
}
aios_status aios_kv_cache_copy(aios_kv_cache *dst, const aios_kv_cache *src, int64_t n) {
    if (dst->n_layer != src->n_layer || dst->kv_dim != src->kv_dim)
        return aios__err(AIOS_ERR_INVALID_ARG, "kv cache copy: caches of different models");
    if (dst->type != src->type)
        return aios__err(AIOS_ERR_INVALID_ARG, "kv cache copy: a float%d cache into a float%d one",
                         src->type == AIOS_KV_F16 ? 16 : 32, dst->type == AIOS_KV_F16 ? 16 : 32);
    if (n < 0 || n > src->n_past || n > dst->n_ctx)
        return aios__err(AIOS_ERR_RANGE, "kv cache copy: %lld positions (source holds %lld, target %lld)", (long long)n,
                         (long long)src->n_past, (long long)dst->n_ctx);
    const size_t es = src->type == AIOS_KV_F16 ? 2 : sizeof(float), row = (size_t)src->kv_dim * es;
    for (int64_t l = 0; l < src->n_layer; l++) {
        const size_t od = (size_t)l * (size_t)dst->n_ctx * row, os = (size_t)l * (size_t)src->n_ctx * row;
        memcpy((char *)dst->k + od, (const char *)src->k + os, (size_t)n * row);
        memcpy((char *)dst->v + od, (const char *)src->v + os, (size_t)n * row);
    }
    dst->n_past = n;
    return AIOS_OK;
}

/* ------------------------------------------------------------------------------------------
 * Forward
 * ------------------------------------------------------------------------------------------ */

static aios_status grow(void **p, size_t n) {
    void *q = realloc(*p, n ? n : 1);
    if (!q) return aios__err(AIOS_ERR_NOMEM, "decoder: scratch of %zu bytes", n);
    *p = q;
    return AIOS_OK;
}

static aios_status ensure_scratch(aios_decoder *d, int64_t T, int64_t Tk) {
    const aios_decoder_config *c = &d->cfg;
    if (T > d->cap_T) {
        size_t t = (size_t)T;
        size_t qd = (size_t)(c->n_head * c->head_dim);
        AIOS_TRY(grow((void **)&d->x, t * (size_t)c->n_embd * sizeof(float)));
        AIOS_TRY(grow((void **)&d->xb, t * (size_t)AIOS_MAX(c->n_embd, (int64_t)qd) * sizeof(float)));
        AIOS_TRY(grow((void **)&d->q, t * qd * sizeof(float)));
        AIOS_TRY(grow((void **)&d->att, t * qd * sizeof(float)));
        AIOS_TRY(grow((void **)&d->gate, t * (size_t)c->n_ff * sizeof(float)));
        AIOS_TRY(grow((void **)&d->up, t * (size_t)c->n_ff * sizeof(float)));
        AIOS_TRY(grow((void **)&d->xr16, t * (size_t)c->n_embd * sizeof(float)));
        AIOS_TRY(grow((void **)&d->pos, t * sizeof(int32_t)));
        d->cap_T = T;
    }
    if (T * Tk > d->cap_Tk) {
        AIOS_TRY(grow((void **)&d->mask, (size_t)(T * Tk)));
        d->cap_Tk = T * Tk;
    }
    return AIOS_OK;
}

/* nw products sharing the input x (T, n_embd): y[i] = x W[i]^T + b[i] through pack P[i].  Under
 * 16-bit activations with 4+ rows each product with a quantized weight would round x itself
 * (aios_matmul); here x is rounded once into d->xr16 and those products run exact (thread mode
 * 0) on the copy — the same floats, one pass instead of three for q, k, v and two for gate, up;
 * the other weights take x.  T <= cap_T (ensure_scratch). */
static aios_status matmul_shared(aios_decoder *d, float *const *y, const float *x, const aios_tensor *const *W,
                                 aios_matmul_pack *const *P, const float *const *b, int nw, int64_t T) {
    int nr = 0;
    for (int i = 0; i < nw; i++) nr += aios_kernels_x16_rounds(W[i], T);
    if (nr >= 2) aios_kernels_x16_round(d->xr16, x, T, d->cfg.n_embd);
    for (int i = 0; i < nw; i++) {
        if (nr >= 2 && aios_kernels_x16_rounds(W[i], T)) {
            const int prev = aios_kernels_int8_thread_mode(0);
            const aios_status s = aios_matmul_packed(y[i], d->xr16, W[i], P[i], b[i], T);
            aios_kernels_int8_thread_mode(prev);
            AIOS_TRY(s);
        } else
            AIOS_TRY(aios_matmul_packed(y[i], x, W[i], P[i], b[i], T));
    }
    return AIOS_OK;
}

aios_status aios_decoder_forward(aios_decoder *d, aios_kv_cache *kv, const int32_t *tokens, int64_t T,
                                 const aios_forward_opts *opts, float *logits) {
    return aios_decoder_forward_rows(d, kv, tokens, T, opts, 0, -1, logits);
}

static aios_status forward_one(aios_decoder *d, aios_kv_cache *kv, const int32_t *tokens, int64_t T,
                               const aios_forward_opts *opts, int64_t logits_lo, int64_t logits_rows, float *logits);

/* compose (the seed's L0 score composition): the base forward on the caller's cache, then one
 * forward per adapter alone (at its full alpha / r) on that adapter's own cache, and the logits
 * mixed as w_base * base + sum_i w_i * adapter_i.  Weights: w_i = max(scale_i, 0); when they sum
 * to S <= 1 the base takes 1 - S, otherwise they are divided by S and the base takes 0. */
static aios_status forward_compose(aios_decoder *d, aios_kv_cache *kv, const int32_t *tokens, int64_t T,
                                   const aios_forward_opts *opts, int64_t logits_lo, int64_t logits_rows,
                                   float *logits) {
    const int n = d->n_adapters;
    float w[AIOS_DECODER_MAX_ADAPTERS], S = 0;
    for (int i = 0; i < n; i++) S += (w[i] = fmaxf(d->adapter_scale[i], 0.0f));
    const float w_base = S <= 1 ? 1 - S : 0, div = S <= 1 ? 1 : S;
    /* the caches: in step with the caller's (or all fresh for a call without one) */
    int64_t n_past = kv ? kv->n_past : 0, n_ctx = kv ? kv->n_ctx : T;
    if (kv && kv != d->compose_owner) {
        if (n_past)
            return aios__err(AIOS_ERR_INVALID_ARG,
                             "decoder: compose: this KV cache was filled without the compose router (truncate it to 0)");
        d->compose_owner = kv;
    }
    for (int i = 0; i < n; i++) {
        if (w[i] == 0) continue;
        aios_kv_cache *c = d->compose_kv[i];
        if (!c || c->n_ctx < n_ctx) {
            aios_kv_cache_free(c);
            d->compose_kv[i] = NULL;
            AIOS_TRY(aios_kv_cache_create_typed(d, n_ctx, kv ? kv->type : AIOS_KV_F32, &d->compose_kv[i]));
            c = d->compose_kv[i];
            c->n_past = 0;
            if (n_past) { /* only when a cache of the owner grew past ours: start over */
                d->compose_owner = NULL;
                return aios__err(AIOS_ERR_INVALID_ARG, "decoder: compose: adapter cache lost (truncate the KV cache to 0)");
            }
        }
        if (kv && c->n_past < n_past) {
            d->compose_owner = NULL;
            return aios__err(AIOS_ERR_INVALID_ARG, "decoder: compose: adapter cache behind (truncate the KV cache to 0)");
        }
        c->n_past = n_past;
    }
    int64_t rows = logits ? (opts && opts->logits_all ? (logits_rows >= 0 ? logits_rows : T) : 1) : 0;
    int64_t nl = rows * d->cfg.n_vocab;
    if (nl > d->compose_logits_cap) {
        float *p = realloc(d->compose_logits, (size_t)nl * sizeof(float));
        if (!p) return aios__err(AIOS_ERR_NOMEM, "decoder: compose logits");
        d->compose_logits = p, d->compose_logits_cap = nl;
    }
    /* base: no adapters */
    aios_lora *ad[AIOS_DECODER_MAX_ADAPTERS];
    float sc[AIOS_DECODER_MAX_ADAPTERS];
    memcpy(ad, d->adapters, sizeof ad), memcpy(sc, d->adapter_scale, sizeof sc);
    d->router = AIOS_ROUTER_NONE;
    d->n_adapters = 0;
    aios_status s = forward_one(d, kv, tokens, T, opts, logits_lo, logits_rows, logits);
    for (int64_t j = 0; s == AIOS_OK && j < nl; j++) logits[j] *= w_base;
    for (int i = 0; s == AIOS_OK && i < n; i++) {
        if (w[i] == 0) continue;
        d->adapters[0] = ad[i], d->adapter_scale[0] = 1.0f, d->n_adapters = 1;
        s = forward_one(d, d->compose_kv[i], tokens, T, opts, logits_lo, logits_rows, logits ? d->compose_logits : NULL);
        const float wi = w[i] / div, *o = d->compose_logits;
        for (int64_t j = 0; s == AIOS_OK && j < nl; j++) logits[j] += wi * o[j];
    }
    memcpy(d->adapters, ad, sizeof ad), memcpy(d->adapter_scale, sc, sizeof sc);
    d->n_adapters = n;
    d->router = AIOS_ROUTER_COMPOSE;
    if (s != AIOS_OK) d->compose_owner = NULL;
    return s;
}

int aios_decoder_x16_default(const aios_decoder *d) {
    int any = 0;
    for (int64_t l = 0; l < d->cfg.n_layer; l++) {
        const dec_layer *L = &d->layers[l];
        const aios_tensor *w[7] = {L->wq, L->wk, L->wv, L->wo, L->wg, L->wu, L->wd};
        for (int i = 0; i < 7; i++) {
            if (!aios_kernels_x16_weight(w[i])) continue;
            if (!aios_kernels_x16_default_weight(w[i])) return 0;
            any = 1;
        }
    }
    return any;
}

int aios_decoder_act_mode(const aios_decoder *d) {
    const int m = d->int8 >= 0 ? d->int8 : aios_kernels_act_mode();
    return m == 1 || m == 3 ? m : 0;
}

void aios_decoder_set_int8_act(aios_decoder *d, int mode) {
    d->int8 = mode == 0 || mode == 1 || mode == 3 ? mode : -1;
    ensure_packs(d);
}


aios_status aios_decoder_forward_rows(aios_decoder *d, aios_kv_cache *kv, const int32_t *tokens, int64_t T,
                                      const aios_forward_opts *opts, int64_t logits_lo, int64_t logits_rows,
                                      float *logits) {
    const int prev = int8_enter(d);
    aios_status s = d->router == AIOS_ROUTER_COMPOSE && d->n_adapters
                        ? forward_compose(d, kv, tokens, T, opts, logits_lo, logits_rows, logits)
                        : forward_one(d, kv, tokens, T, opts, logits_lo, logits_rows, logits);
    int8_leave(prev);
    return s;
}

/* One forward with the adapters as they are (none, summed, or arrow-routed). */
static aios_status forward_one(aios_decoder *d, aios_kv_cache *kv, const int32_t *tokens, int64_t T,
                               const aios_forward_opts *opts, int64_t logits_lo, int64_t logits_rows, float *logits) {
    static const aios_forward_opts dflt = {AIOS_FWD_CAUSAL, NULL, NULL, 0, 0, 0, 0};
    if (!opts) opts = &dflt;
    const aios_decoder_config *c = &d->cfg;
    if (T <= 0 || !tokens) return aios__err(AIOS_ERR_INVALID_ARG, "decoder: forward of %lld tokens", (long long)T);
    if (d->n_adapters) AIOS_TRY(adapters_ready(d));
    if (opts->attn == AIOS_FWD_MASK && !opts->mask)
        return aios__err(AIOS_ERR_INVALID_ARG, "decoder: AIOS_FWD_MASK without a mask");
    if (opts->attn == AIOS_FWD_BLOCK_CAUSAL && (opts->block_size <= 0 || opts->n_pad < 0))
        return aios__err(AIOS_ERR_INVALID_ARG, "decoder: block-causal attention needs block_size > 0 and n_pad >= 0");
    if ((unsigned)opts->attn > AIOS_FWD_BLOCK_CAUSAL)
        return aios__err(AIOS_ERR_INVALID_ARG, "decoder: attention kind %d", (int)opts->attn);
    for (int64_t i = 0; i < T; i++)
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return aios__err(AIOS_ERR_RANGE, "decoder: token %d at %lld outside the vocabulary (%lld)", tokens[i],
                             (long long)i, (long long)c->n_vocab);
    if (!kv) {
        if (!d->scratch_kv || d->scratch_kv->n_ctx < T) {
            aios_kv_cache_free(d->scratch_kv);
            d->scratch_kv = NULL;
            AIOS_TRY(aios_kv_cache_create(d, T, &d->scratch_kv));
        }
        kv = d->scratch_kv;
        kv->n_past = 0;
    }
    if (kv->n_layer != c->n_layer || kv->kv_dim != c->n_head_kv * c->head_dim)
        return aios__err(AIOS_ERR_INVALID_ARG, "decoder: KV cache made for another model");
    int64_t n_past = kv->n_past, Tk = n_past + T;
    if (Tk > kv->n_ctx)
        return aios__err(AIOS_ERR_RANGE, "decoder: context full: %lld cached + %lld new > %lld", (long long)n_past,
                         (long long)T, (long long)kv->n_ctx);
    AIOS_TRY(ensure_scratch(d, T, Tk));
    ensure_packs(d);

    const int64_t E = c->n_embd, hd = c->head_dim, nh = c->n_head, nkv = c->n_head_kv, F = c->n_ff;
    const int64_t KVD = nkv * hd;
    const int kv16 = kv->type == AIOS_KV_F16;
    if (kv16 && T > d->cap_kn) {
        AIOS_TRY(grow((void **)&d->knew, (size_t)(T * KVD) * sizeof(float)));
        AIOS_TRY(grow((void **)&d->vnew, (size_t)(T * KVD) * sizeof(float)));
        d->cap_kn = T;
    }
    /* positions */
    const int32_t *pos = opts->pos;
    if (!pos) {
        int64_t pad = opts->attn == AIOS_FWD_BLOCK_CAUSAL ? opts->n_pad : 0;
        for (int64_t i = 0; i < T; i++) d->pos[i] = (int32_t)AIOS_MAX(n_past + i - pad, (int64_t)0);
        pos = d->pos;
    }
    const float *inv_freq = d->inv_freq;
    if (c->rope_type == AIOS_ROPE_DYNAMIC && Tk > c->rope_orig_ctx) {
        aios_decoder_rope_inv_freq(c, Tk, d->inv_freq_dyn);
        inv_freq = d->inv_freq_dyn;
    }
    /* attention mask (T, Tk); NULL when every query sees every key */
    const uint8_t *mask = NULL;
    if (opts->attn == AIOS_FWD_MASK) {
        mask = opts->mask;
    } else if (opts->attn == AIOS_FWD_CAUSAL && T > 1) {
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = 0; j < Tk; j++) d->mask[i * Tk + j] = j <= n_past + i;
        mask = d->mask;
    } else if (opts->attn == AIOS_FWD_BLOCK_CAUSAL) {
        const int64_t B = opts->block_size, np = opts->n_pad;
        for (int64_t i = 0; i < T; i++) {
            int64_t q = n_past + i;
            for (int64_t j = 0; j < Tk; j++) d->mask[i * Tk + j] = (j / B <= q / B && j >= np) || j == q;
        }
        mask = d->mask;
    }
    const float scale = 1.0f / sqrtf((float)hd);

    /* x (T, E) = embedding rows */
    for (int64_t i = 0; i < T; i++) AIOS_TRY(aios_tensor_row_f32(d->x + i * E, d->embed, tokens[i]));

    for (int64_t l = 0; l < c->n_layer; l++) {
        const dec_layer *L = &d->layers[l];
        /* float32 cache: the new K / V rows are computed in place; float16: in float32 scratch,
         * rounded into the cache once RoPE is applied (cache_attend) */
        float *knew = kv16 ? d->knew : kv_f32(kv, kv->k, l) + (size_t)n_past * (size_t)KVD;
        float *vnew = kv16 ? d->vnew : kv_f32(kv, kv->v, l) + (size_t)n_past * (size_t)KVD;
        /* attention */
        aios_rmsnorm(d->xb, d->x, L->attn_norm, T, E, c->eps);
        { /* q (T, QD), the new K / V rows (T, KVD) into the cache */
            float *const y[3] = {d->q, knew, vnew};
            const aios_tensor *const w[3] = {L->wq, L->wk, L->wv};
            aios_matmul_pack *const p[3] = {L->pq, L->pk, L->pv};
            const float *const b[3] = {L->bq, L->bk, L->bv};
            AIOS_TRY(matmul_shared(d, y, d->xb, w, p, b, 3, T));
        }
        if (d->n_adapters) {
            AIOS_TRY(apply_adapters(d, l, AIOS_LORA_Q, d->q, d->xb, T));
            AIOS_TRY(apply_adapters(d, l, AIOS_LORA_K, knew, d->xb, T));
            AIOS_TRY(apply_adapters(d, l, AIOS_LORA_V, vnew, d->xb, T));
        }
        if (L->q_norm) {
            aios_rmsnorm(d->q, d->q, L->q_norm, T * nh, hd, c->eps);
            aios_rmsnorm(knew, knew, L->k_norm, T * nkv, hd, c->eps);
        }
        aios_rope(d->q, pos, T, nh, hd, inv_freq);
        aios_rope(knew, pos, T, nkv, hd, inv_freq);
        AIOS_TRY(cache_attend(c, kv, l, n_past, knew, vnew, T, d->q, d->att, mask, scale)); /* (T, QD) */
        AIOS_TRY(aios_matmul_packed(d->xb, d->att, L->wo, L->po, L->bo, T)); /* (T, E) */
        if (d->n_adapters) AIOS_TRY(apply_adapters(d, l, AIOS_LORA_O, d->xb, d->att, T));
        aios_add(d->x, d->xb, T * E);
        /* SwiGLU MLP */
        aios_rmsnorm(d->xb, d->x, L->ffn_norm, T, E, c->eps);
        { /* gate, up (T, F) */
            float *const y[2] = {d->gate, d->up};
            const aios_tensor *const w[2] = {L->wg, L->wu};
            aios_matmul_pack *const p[2] = {L->pg, L->pu};
            const float *const b[2] = {NULL, NULL};
            AIOS_TRY(matmul_shared(d, y, d->xb, w, p, b, 2, T));
        }
        if (d->n_adapters) {
            AIOS_TRY(apply_adapters(d, l, AIOS_LORA_GATE, d->gate, d->xb, T));
            AIOS_TRY(apply_adapters(d, l, AIOS_LORA_UP, d->up, d->xb, T));
        }
        aios_silu(d->gate, T * F);
        aios_mul(d->gate, d->up, T * F);
        AIOS_TRY(aios_matmul_packed(d->xb, d->gate, L->wd, L->pd, NULL, T)); /* (T, E) */
        if (d->n_adapters) AIOS_TRY(apply_adapters(d, l, AIOS_LORA_DOWN, d->xb, d->gate, T));
        aios_add(d->x, d->xb, T * E);
    }
    if (!opts->no_commit) kv->n_past = Tk;
    if (!logits) return AIOS_OK;
    if (opts->logits_all) {
        int64_t lo = 0, n = T; /* logits_rows < 0: every row */
        if (logits_rows >= 0) {
            lo = logits_lo;
            n = logits_rows;
            if (lo < 0 || lo > T || n > T - lo)
                return aios__err(AIOS_ERR_INVALID_ARG, "decoder: logits rows %lld..%lld of %lld", (long long)lo,
                                 (long long)(lo + n), (long long)T);
            if (n == 0) return AIOS_OK;
        }
        aios_rmsnorm(d->xb, d->x + lo * E, d->final_norm, n, E, c->eps);
        return aios_matmul_packed(logits, d->xb, d->lm_head, d->p_head, NULL, n); /* (n, n_vocab) */
    }
    aios_rmsnorm(d->xb, d->x + (T - 1) * E, d->final_norm, 1, E, c->eps);
    return aios_matmul_packed(logits, d->xb, d->lm_head, d->p_head, NULL, 1); /* (n_vocab) */
}

/* ------------------------------------------------------------------------------------------
 * Batched forward over several sequences (continuous batching)
 * ------------------------------------------------------------------------------------------ */

/* y (T, n_out) += the deltas of an explicit adapter set for (layer l, target): summed, or with
 * set->router AIOS_ROUTER_ARROW routed per token over the set's experts (in the set's order, scale
 * 0 skipped, as router_rebuild orders the decoder's own; prototypes made ready by the caller). */
static aios_status apply_set(aios_decoder *d, const aios_decoder_adapter_set *set, int64_t l, int target, float *y,
                             const float *x, int64_t T) {
    if (set->router == AIOS_ROUTER_ARROW) {
        aios_arrow_expert ex[AIOS_DECODER_MAX_ADAPTERS];
        int E = 0;
        for (int i = 0; i < set->n; i++) {
            float sc = set->scales ? set->scales[i] : 1.0f;
            const aios_lora_module *m = aios_lora_get(set->adapters[i], l, target);
            if (!m || sc == 0) continue;
            ex[E++] = (aios_arrow_expert){m, m->proto, sc * aios_lora_scaling(set->adapters[i])};
        }
        if (!E) return AIOS_OK;
        AIOS_TRY(lora_scratch(d, T * aios_lora_arrow_scratch(ex, E)));
        aios_lora_arrow_apply(ex, E, set->top_k, set->temperature, y, x, T, d->lora_u);
        return AIOS_OK;
    }
    for (int i = 0; i < set->n; i++) {
        float sc = set->scales ? set->scales[i] : 1.0f;
        const aios_lora_module *m = aios_lora_get(set->adapters[i], l, target);
        if (!m || sc == 0) continue;
        AIOS_TRY(apply_one(d, set->adapters[i], m, sc, y, x, T));
    }
    return AIOS_OK;
}

/* The adapters of every sequence for (layer l, target) on its rows of y / x (row strides ny,
 * nx).  row0[i] is sequence i's first stacked row. */
static aios_status apply_batch(aios_decoder *d, const aios_decoder_seq *seqs, int n_seq, const int64_t *row0, int64_t l,
                               int target, float *y, int64_t ny, const float *x, int64_t nx) {
    for (int i = 0; i < n_seq; i++) {
        const aios_decoder_seq *q = &seqs[i];
        float *yi = y + row0[i] * ny;
        const float *xi = x + row0[i] * nx;
        if (q->adapters) {
            if (q->adapters->n) AIOS_TRY(apply_set(d, q->adapters, l, target, yi, xi, q->T));
        } else if (d->n_adapters) {
            AIOS_TRY(apply_adapters(d, l, target, yi, xi, q->T));
        }
    }
    return AIOS_OK;
}

static aios_status grow_f(float **p, int64_t n) { return grow((void **)p, (size_t)n * sizeof(float)); }

static aios_status forward_batch(aios_decoder *d, aios_decoder_seq *seqs, int n_seq);

aios_status aios_decoder_forward_batch(aios_decoder *d, aios_decoder_seq *seqs, int n_seq) {
    const int prev = int8_enter(d);
    aios_status s = forward_batch(d, seqs, n_seq);
    int8_leave(prev);
    return s;
}

static aios_status forward_batch(aios_decoder *d, aios_decoder_seq *seqs, int n_seq) {
    const aios_decoder_config *c = &d->cfg;
    if (n_seq <= 0 || !seqs) return aios__err(AIOS_ERR_INVALID_ARG, "decoder: batch of %d sequences", n_seq);
    const int64_t E = c->n_embd, hd = c->head_dim, nh = c->n_head, nkv = c->n_head_kv, F = c->n_ff;
    const int64_t KVD = nkv * hd, QD = nh * hd;
    int64_t R = 0, max_mask = 0, any_adapters = 0;
    for (int i = 0; i < n_seq; i++) {
        const aios_decoder_seq *q = &seqs[i];
        if (!q->kv || !q->tokens || q->T <= 0)
            return aios__err(AIOS_ERR_INVALID_ARG, "decoder: batch sequence %d: no cache or no tokens", i);
        if (q->kv->n_layer != c->n_layer || q->kv->kv_dim != KVD)
            return aios__err(AIOS_ERR_INVALID_ARG, "decoder: batch sequence %d: KV cache made for another model", i);
        for (int j = 0; j < i; j++)
            if (seqs[j].kv == q->kv) return aios__err(AIOS_ERR_INVALID_ARG, "decoder: batch sequences %d and %d share a KV cache", j, i);
        if (q->kv->n_past + q->T > q->kv->n_ctx)
            return aios__err(AIOS_ERR_RANGE, "decoder: batch sequence %d: context full: %lld cached + %lld new > %lld", i,
                             (long long)q->kv->n_past, (long long)q->T, (long long)q->kv->n_ctx);
        for (int64_t t = 0; t < q->T; t++)
            if (q->tokens[t] < 0 || q->tokens[t] >= c->n_vocab)
                return aios__err(AIOS_ERR_RANGE, "decoder: batch sequence %d: token %d at %lld outside the vocabulary (%lld)", i,
                                 q->tokens[t], (long long)t, (long long)c->n_vocab);
        if (q->adapters) {
            if (q->adapters->n < 0 || q->adapters->n > AIOS_DECODER_MAX_ADAPTERS || (q->adapters->n && !q->adapters->adapters))
                return aios__err(AIOS_ERR_INVALID_ARG, "decoder: batch sequence %d: %d adapters", i, q->adapters->n);
            const int rt = q->adapters->router;
            if (rt != AIOS_ROUTER_NONE && rt != AIOS_ROUTER_ARROW)
                return aios__err(AIOS_ERR_INVALID_ARG, "decoder: batch sequence %d: router %d (an adapter set is summed or arrow-routed)", i, rt);
            if (rt == AIOS_ROUTER_ARROW && (q->adapters->top_k < 1 || !(q->adapters->temperature > 0) || !isfinite(q->adapters->temperature)))
                return aios__err(AIOS_ERR_INVALID_ARG, "decoder: batch sequence %d: arrow needs top_k >= 1 and a temperature > 0 (got %d, %g)",
                                 i, q->adapters->top_k, (double)q->adapters->temperature);
            for (int k = 0; k < q->adapters->n; k++) {
                if (!q->adapters->adapters[k]) return aios__err(AIOS_ERR_INVALID_ARG, "decoder: batch sequence %d: adapter %d is NULL", i, k);
                AIOS_TRY(aios_lora_check(q->adapters->adapters[k], c));
                if (q->adapters->scales && q->adapters->scales[k] == 0) continue;
                if (rt == AIOS_ROUTER_ARROW) /* both kept with the adapter: made once */
                    AIOS_TRY(aios_lora_prototypes(q->adapters->adapters[k]));
                else if (d->adapter_bf16) /* the same products as the row alone (adapters_ready) */
                    AIOS_TRY(aios_lora_bf16(q->adapters->adapters[k]));
            }
            any_adapters |= q->adapters->n > 0;
        } else {
            if (d->n_adapters && d->router == AIOS_ROUTER_COMPOSE)
                return aios__err(AIOS_ERR_UNSUPPORTED, "decoder: the compose router does not run in a batch");
            if (d->n_adapters) AIOS_TRY(adapters_ready(d));
            any_adapters |= d->n_adapters > 0;
        }
        if (q->T > 1) max_mask = AIOS_MAX(max_mask, q->T * (q->kv->n_past + q->T));
        R += q->T;
    }
    AIOS_TRY(ensure_scratch(d, AIOS_MAX(R, (int64_t)n_seq), 1));
    ensure_packs(d);
    if (max_mask > d->cap_Tk) {
        AIOS_TRY(grow((void **)&d->mask, (size_t)max_mask));
        d->cap_Tk = max_mask;
    }
    if (R > d->bat_cap_R) {
        AIOS_TRY(grow_f(&d->bat_k, R * KVD));
        AIOS_TRY(grow_f(&d->bat_v, R * KVD));
        d->bat_cap_R = R;
    }
    if ((int64_t)n_seq * c->n_vocab > d->bat_cap_logits) {
        AIOS_TRY(grow_f(&d->bat_logits, (int64_t)n_seq * c->n_vocab));
        d->bat_cap_logits = (int64_t)n_seq * c->n_vocab;
    }
    int64_t stack_row0[64], *row0 = n_seq <= 64 ? stack_row0 : malloc((size_t)n_seq * sizeof *row0);
    if (!row0) return aios__err(AIOS_ERR_NOMEM, "decoder: batch of %d", n_seq);
    aios_status s = AIOS_OK;
    /* rows, positions, embeddings */
    for (int i = 0, r = 0; i < n_seq; r += (int)seqs[i].T, i++) {
        row0[i] = r;
        for (int64_t t = 0; t < seqs[i].T; t++) {
            d->pos[r + t] = (int32_t)(seqs[i].kv->n_past + t);
            if ((s = aios_tensor_row_f32(d->x + (r + t) * E, d->embed, seqs[i].tokens[t])) != AIOS_OK) goto out;
        }
    }
    const float scale = 1.0f / sqrtf((float)hd);
#define TRY_OUT(e) do { if ((s = (e)) != AIOS_OK) goto out; } while (0)
    for (int64_t l = 0; l < c->n_layer; l++) {
        const dec_layer *L = &d->layers[l];
        aios_rmsnorm(d->xb, d->x, L->attn_norm, R, E, c->eps);
        TRY_OUT(aios_matmul_packed(d->q, d->xb, L->wq, L->pq, L->bq, R));
        TRY_OUT(aios_matmul_packed(d->bat_k, d->xb, L->wk, L->pk, L->bk, R));
        TRY_OUT(aios_matmul_packed(d->bat_v, d->xb, L->wv, L->pv, L->bv, R));
        if (any_adapters) {
            TRY_OUT(apply_batch(d, seqs, n_seq, row0, l, AIOS_LORA_Q, d->q, QD, d->xb, E));
            TRY_OUT(apply_batch(d, seqs, n_seq, row0, l, AIOS_LORA_K, d->bat_k, KVD, d->xb, E));
            TRY_OUT(apply_batch(d, seqs, n_seq, row0, l, AIOS_LORA_V, d->bat_v, KVD, d->xb, E));
        }
        if (L->q_norm) {
            aios_rmsnorm(d->q, d->q, L->q_norm, R * nh, hd, c->eps);
            aios_rmsnorm(d->bat_k, d->bat_k, L->k_norm, R * nkv, hd, c->eps);
        }
        /* per sequence: RoPE (dynamic scaling depends on its length), K/V into its cache,
         * attention against its cache */
        for (int i = 0; i < n_seq; i++) {
            const aios_decoder_seq *q = &seqs[i];
            const int64_t r = row0[i], T = q->T, n_past = q->kv->n_past, Tk = n_past + T;
            const float *inv_freq = d->inv_freq;
            if (c->rope_type == AIOS_ROPE_DYNAMIC && Tk > c->rope_orig_ctx) {
                aios_decoder_rope_inv_freq(c, Tk, d->inv_freq_dyn);
                inv_freq = d->inv_freq_dyn;
            }
            aios_rope(d->q + r * QD, d->pos + r, T, nh, hd, inv_freq);
            aios_rope(d->bat_k + r * KVD, d->pos + r, T, nkv, hd, inv_freq);
            const uint8_t *mask = NULL;
            if (T > 1) {
                for (int64_t a = 0; a < T; a++)
                    for (int64_t j = 0; j < Tk; j++) d->mask[a * Tk + j] = j <= n_past + a;
                mask = d->mask;
            }
            TRY_OUT(cache_attend(c, q->kv, l, n_past, d->bat_k + r * KVD, d->bat_v + r * KVD, T, d->q + r * QD,
                                 d->att + r * QD, mask, scale));
        }
        TRY_OUT(aios_matmul_packed(d->xb, d->att, L->wo, L->po, L->bo, R));
        if (any_adapters) TRY_OUT(apply_batch(d, seqs, n_seq, row0, l, AIOS_LORA_O, d->xb, E, d->att, QD));
        aios_add(d->x, d->xb, R * E);
        aios_rmsnorm(d->xb, d->x, L->ffn_norm, R, E, c->eps);
        TRY_OUT(aios_matmul_packed(d->gate, d->xb, L->wg, L->pg, NULL, R));
        TRY_OUT(aios_matmul_packed(d->up, d->xb, L->wu, L->pu, NULL, R));
        if (any_adapters) {
            TRY_OUT(apply_batch(d, seqs, n_seq, row0, l, AIOS_LORA_GATE, d->gate, F, d->xb, E));
            TRY_OUT(apply_batch(d, seqs, n_seq, row0, l, AIOS_LORA_UP, d->up, F, d->xb, E));
        }
        aios_silu(d->gate, R * F);
        aios_mul(d->gate, d->up, R * F);
        TRY_OUT(aios_matmul_packed(d->xb, d->gate, L->wd, L->pd, NULL, R));
        if (any_adapters) TRY_OUT(apply_batch(d, seqs, n_seq, row0, l, AIOS_LORA_DOWN, d->xb, E, d->gate, F));
        aios_add(d->x, d->xb, R * E);
    }
#undef TRY_OUT
    /* the last new row of every sequence through the final norm and the LM head, together */
    int n_out = 0;
    for (int i = 0; i < n_seq; i++)
        if (seqs[i].logits) memcpy(d->xb + (int64_t)n_out++ * E, d->x + (row0[i] + seqs[i].T - 1) * E, (size_t)E * sizeof(float));
    if (n_out) {
        aios_rmsnorm(d->xb, d->xb, d->final_norm, n_out, E, c->eps);
        if ((s = aios_matmul_packed(d->bat_logits, d->xb, d->lm_head, d->p_head, NULL, n_out)) != AIOS_OK) goto out;
        for (int i = 0, k = 0; i < n_seq; i++)
            if (seqs[i].logits)
                memcpy(seqs[i].logits, d->bat_logits + (int64_t)k++ * c->n_vocab, (size_t)c->n_vocab * sizeof(float));
    }
    for (int i = 0; i < n_seq; i++) seqs[i].kv->n_past += seqs[i].T;
out:
    if (row0 != stack_row0) free(row0);
    return s;
}
