/*
 * model_config.c — the model config every architecture reads, derived from whatever the
 * directory holds: Hugging Face config.json (transformers 4 and 5 spellings), LLaDA's OLMo-style
 * names, the seed's metadata.json, and sentence-transformers pooling files.
 *
 * Key decisions:
 *  - One parser for config.json and metadata.json: each field is looked up under every name it
 *    goes by (hidden_size | d_model | n_embd, num_hidden_layers | n_layers | num_layers, ...), so a
 *    metadata.json written by the seed, by us, or a config.json all give the same struct.
 *  - rope_theta is read at the top level or inside rope_parameters (transformers 5); scaling
 *    from rope_scaling or rope_parameters.
 *  - Architecture from model_type first, then `architectures` / metadata `architecture`.
 *  - Diffusion facts follow the models' definitions: LLaDA and Dream attend bidirectionally,
 *    Dream shifts logits by one, BD3LM is block-causal with config block_size.
 *  - Facts a config may leave out (qkv bias, qk-norm, tied head) are completed from the tensors
 *    present after the weights are opened (aios__model_config_from_tensors).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"
#include "model/model.h"
#include "model/model_internal.h"

static const cJSON *jget(const cJSON *o, const char *k) {
    return o && cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

/* First of the NULL-terminated keys that holds a number. */
static int jnum(const cJSON *o, double *out, const char *const *keys) {
    for (; *keys; keys++) {
        const cJSON *v = jget(o, *keys);
        if (cJSON_IsNumber(v)) {
            *out = v->valuedouble;
            return 1;
        }
    }
    return 0;
}
#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

static aios_status jint(const cJSON *o, int64_t *out, const char *const *keys, int64_t lo, int64_t hi) {
    double d;
    for (const char *const *k = keys; *k; k++) {
        const cJSON *v = jget(o, *k);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsNumber(v)) return aios__err(AIOS_ERR_CONFIG, "config: %s is not a number", *k);
        d = v->valuedouble;
        if (!(d >= (double)lo && d <= (double)hi) || (double)(int64_t)d != d)
            return aios__err(AIOS_ERR_CONFIG, "config: %s = %g is out of range [%lld, %lld]", *k, d, (long long)lo,
                             (long long)hi);
        *out = (int64_t)d;
        return AIOS_OK;
    }
    return AIOS_OK;
}

static int jbool(const cJSON *o, int *out, const char *const *keys) {
    for (; *keys; keys++) {
        const cJSON *v = jget(o, *keys);
        if (cJSON_IsBool(v)) {
            *out = cJSON_IsTrue(v);
            return 1;
        }
        if (cJSON_IsNumber(v)) {
            *out = v->valuedouble != 0;
            return 1;
        }
    }
    return 0;
}

static int jstr(const cJSON *o, char *out, size_t n, const char *const *keys) {
    for (; *keys; keys++) {
        const cJSON *v = jget(o, *keys);
        if (cJSON_IsString(v)) {
            snprintf(out, n, "%s", v->valuestring);
            return 1;
        }
    }
    return 0;
}

const char *aios_arch_name(aios_arch a) {
    switch (a) {
    case AIOS_ARCH_BERT: return "bert";
    case AIOS_ARCH_LLAMA: return "llama";
    case AIOS_ARCH_QWEN2: return "qwen2";
    case AIOS_ARCH_QWEN3: return "qwen3";
    case AIOS_ARCH_LLADA: return "llada";
    case AIOS_ARCH_DREAM: return "dream";
    case AIOS_ARCH_BD3LM: return "bd3lm";
    default: return "unknown";
    }
}

static const char *pool_name(aios_pooling p) {
    switch (p) {
    case AIOS_POOL_MEAN: return "mean";
    case AIOS_POOL_CLS: return "cls";
    case AIOS_POOL_MAX: return "max";
    case AIOS_POOL_LAST: return "last";
    case AIOS_POOL_MEAN_SQRT_LEN: return "mean_sqrt_len";
    default: return "none";
    }
}

static const char *attn_name(aios_attn_pattern a) {
    return a == AIOS_ATTN_BIDIRECTIONAL ? "bidirectional" : a == AIOS_ATTN_BLOCK_CAUSAL ? "block-causal" : "causal";
}

const char *aios__pool_name(aios_pooling p) { return pool_name(p); }
const char *aios__attn_name(aios_attn_pattern a) { return attn_name(a); }

static int icontains(const char *h, const char *n) {
    size_t ln = strlen(n);
    for (; *h; h++)
        if (!strncasecmp(h, n, ln)) return 1;
    return 0;
}

/* model_type / architecture string -> arch (checked most specific first). */
static aios_arch arch_from(const char *s) {
    if (!s || !*s) return AIOS_ARCH_UNKNOWN;
    if (icontains(s, "bd3lm") || icontains(s, "a2d")) return AIOS_ARCH_BD3LM;
    if (icontains(s, "llada")) return AIOS_ARCH_LLADA;
    if (icontains(s, "dream")) return AIOS_ARCH_DREAM;
    if (icontains(s, "qwen3")) return AIOS_ARCH_QWEN3;
    if (icontains(s, "qwen2")) return AIOS_ARCH_QWEN2;
    if (icontains(s, "llama") || icontains(s, "mistral") || icontains(s, "smollm")) return AIOS_ARCH_LLAMA;
    if (icontains(s, "bert") || icontains(s, "minilm")) return AIOS_ARCH_BERT;
    return AIOS_ARCH_UNKNOWN;
}

static aios_pooling pool_parse(const char *s) {
    if (!strcasecmp(s, "mean") || !strcasecmp(s, "mean_tokens")) return AIOS_POOL_MEAN;
    if (!strcasecmp(s, "cls") || !strcasecmp(s, "cls_token")) return AIOS_POOL_CLS;
    if (!strcasecmp(s, "max") || !strcasecmp(s, "max_tokens")) return AIOS_POOL_MAX;
    if (!strcasecmp(s, "last") || !strcasecmp(s, "lasttoken")) return AIOS_POOL_LAST;
    if (!strcasecmp(s, "mean_sqrt_len") || !strcasecmp(s, "mean_sqrt_len_tokens")) return AIOS_POOL_MEAN_SQRT_LEN;
    return AIOS_POOL_NONE;
}

/* sentence-transformers: modules.json lists Pooling (with its directory) and Normalize. */
static void read_sentence_transformers(const char *dir, aios_model_config *c) {
    char p[4096], *text = NULL;
    size_t len;
    snprintf(p, sizeof p, "%s/modules.json", dir);
    if (aios__read_file(p, &text, &len) != AIOS_OK) {
        aios_clear_error();
        return;
    }
    cJSON *mods = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsArray(mods)) {
        cJSON_Delete(mods);
        aios_log(AIOS_LOG_WARN, "model: %s: not a JSON array; pooling left at its default", p);
        return;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, mods) {
        const cJSON *type = jget(m, "type"), *path = jget(m, "path");
        if (!cJSON_IsString(type)) continue;
        if (strstr(type->valuestring, "Normalize")) c->normalize = 1;
        if (strstr(type->valuestring, "Pooling") && cJSON_IsString(path) && !strstr(path->valuestring, "..")) {
            char q[4096];
            snprintf(q, sizeof q, "%s/%s/config.json", dir, path->valuestring);
            if (aios__read_file(q, &text, &len) != AIOS_OK) {
                aios_clear_error();
                continue;
            }
            cJSON *pc = cJSON_ParseWithLength(text, len);
            free(text);
            int b;
            if (jbool(pc, &b, KEYS("pooling_mode_cls_token")) && b) c->pooling = AIOS_POOL_CLS;
            else if (jbool(pc, &b, KEYS("pooling_mode_max_tokens")) && b) c->pooling = AIOS_POOL_MAX;
            else if (jbool(pc, &b, KEYS("pooling_mode_mean_sqrt_len_tokens")) && b) c->pooling = AIOS_POOL_MEAN_SQRT_LEN;
            else if (jbool(pc, &b, KEYS("pooling_mode_lasttoken")) && b) c->pooling = AIOS_POOL_LAST;
            else if (jbool(pc, &b, KEYS("pooling_mode_mean_tokens")) && b) c->pooling = AIOS_POOL_MEAN;
            int64_t d = 0;
            if (jint(pc, &d, KEYS("word_embedding_dimension"), 0, INT32_MAX) == AIOS_OK && d > 0) c->embedding_dimension = d;
            aios_clear_error();
            cJSON_Delete(pc);
        }
    }
    cJSON_Delete(mods);
}

static void read_rope(const cJSON *r, aios_model_config *c) {
    if (!cJSON_IsObject(r)) return;
    double d;
    if (jnum(r, &d, KEYS("rope_theta"))) c->rope_theta = d;
    jstr(r, c->rope_type, sizeof c->rope_type, KEYS("rope_type", "type"));
    if (jnum(r, &d, KEYS("factor"))) c->rope_factor = d;
    if (jnum(r, &d, KEYS("low_freq_factor"))) c->rope_low_freq_factor = d;
    if (jnum(r, &d, KEYS("high_freq_factor"))) c->rope_high_freq_factor = d;
    if (jnum(r, &d, KEYS("original_max_position_embeddings")) && d >= 0 && d < 1e15) c->rope_original_max_pos = (int64_t)d;
}

aios_status aios__model_config_parse(const cJSON *o, const char *dir, aios_model_config *c) {
    memset(c, 0, sizeof *c);
    c->mask_token_id = c->pad_token_id = c->bos_token_id = c->eos_token_id = -1;
    c->rope_theta = 10000.0;
    c->rope_factor = 1.0;
    snprintf(c->rope_type, sizeof c->rope_type, "default");
    if (!cJSON_IsObject(o)) return aios__err(AIOS_ERR_CONFIG, "config: not a JSON object");

    jstr(o, c->model_type, sizeof c->model_type, KEYS("model_type"));
    const cJSON *archs = jget(o, "architectures");
    if (cJSON_IsArray(archs) && cJSON_IsString(cJSON_GetArrayItem(archs, 0)))
        snprintf(c->architecture, sizeof c->architecture, "%s", cJSON_GetArrayItem(archs, 0)->valuestring);
    else
        jstr(o, c->architecture, sizeof c->architecture, KEYS("architecture"));
    jstr(o, c->model_name, sizeof c->model_name, KEYS("model_name", "_name_or_path"));
    c->arch = arch_from(c->model_type);
    if (c->arch == AIOS_ARCH_UNKNOWN) c->arch = arch_from(c->architecture);
    if (c->arch == AIOS_ARCH_UNKNOWN) {
        char a[64] = "";
        if (jstr(o, a, sizeof a, KEYS("arch"))) c->arch = arch_from(a);
    }
    /* a config without `architectures` (bert-tiny, llama-tiny) names the family instead, so the
     * value survives metadata.json unchanged */
    if (!c->architecture[0] && c->arch != AIOS_ARCH_UNKNOWN)
        snprintf(c->architecture, sizeof c->architecture, "%s", aios_arch_name(c->arch));

    const int64_t BIG = (int64_t)1 << 40;
    AIOS_TRY(jint(o, &c->n_embd, KEYS("hidden_size", "d_model", "n_embd", "dim"), 1, BIG));
    AIOS_TRY(jint(o, &c->n_layer, KEYS("num_hidden_layers", "n_layers", "num_layers", "n_layer"), 0, 1 << 20));
    AIOS_TRY(jint(o, &c->n_head, KEYS("num_attention_heads", "n_heads", "n_head"), 1, 1 << 20));
    c->n_head_kv = c->n_head;
    AIOS_TRY(jint(o, &c->n_head_kv, KEYS("num_key_value_heads", "n_kv_heads", "n_head_kv"), 1, 1 << 20));
    if (c->n_head && c->n_embd) c->head_dim = c->n_embd / c->n_head;
    AIOS_TRY(jint(o, &c->head_dim, KEYS("head_dim"), 1, 1 << 20));
    AIOS_TRY(jint(o, &c->n_ff, KEYS("intermediate_size", "mlp_hidden_size", "n_inner", "ffn_dim"), 1, BIG));
    AIOS_TRY(jint(o, &c->n_vocab, KEYS("vocab_size", "n_vocab"), 1, BIG));
    AIOS_TRY(jint(o, &c->n_ctx_train, KEYS("max_position_embeddings", "max_sequence_length", "n_positions", "n_ctx"), 1, BIG));
    AIOS_TRY(jint(o, &c->type_vocab_size, KEYS("type_vocab_size"), 0, BIG));
    if (c->arch != AIOS_ARCH_UNKNOWN && (!c->n_embd || !c->n_layer || !c->n_head))
        return aios__err(AIOS_ERR_CONFIG, "config: a %s model needs hidden_size, num_hidden_layers and num_attention_heads",
                         aios_arch_name(c->arch));
    if (c->n_head_kv > 0 && (c->n_head_kv > c->n_head || (c->n_head % c->n_head_kv)))
        return aios__err(AIOS_ERR_CONFIG, "config: %lld key/value heads do not divide %lld heads", (long long)c->n_head_kv,
                         (long long)c->n_head);

    double d;
    c->rms_norm = c->arch != AIOS_ARCH_BERT && c->arch != AIOS_ARCH_UNKNOWN;
    char lnt[32] = "";
    if (jstr(o, lnt, sizeof lnt, KEYS("layer_norm_type"))) c->rms_norm = !strcmp(lnt, "rms");
    int rn;
    if (jbool(o, &rn, KEYS("rms_norm"))) c->rms_norm = rn;
    c->norm_eps = c->rms_norm ? 1e-6f : 1e-12f;
    if (c->rms_norm ? jnum(o, &d, KEYS("rms_norm_eps", "norm_eps", "layer_norm_eps"))
                    : jnum(o, &d, KEYS("layer_norm_eps", "layer_norm_epsilon", "norm_eps", "rms_norm_eps")))
        c->norm_eps = (float)d;
    if (!(c->norm_eps >= 0)) return aios__err(AIOS_ERR_CONFIG, "config: norm eps %g is negative", (double)c->norm_eps);

    snprintf(c->hidden_act, sizeof c->hidden_act, "%s", c->arch == AIOS_ARCH_BERT ? "gelu" : "silu");
    jstr(o, c->hidden_act, sizeof c->hidden_act, KEYS("hidden_act", "activation_type", "activation_function"));

    if (jnum(o, &d, KEYS("rope_theta"))) c->rope_theta = d;
    read_rope(jget(o, "rope_scaling"), c);
    read_rope(jget(o, "rope_parameters"), c);
    const cJSON *rs = jget(o, "rope_scaling");
    if (cJSON_IsString(rs)) snprintf(c->rope_type, sizeof c->rope_type, "%s", rs->valuestring); /* metadata.json */
    if (jnum(o, &d, KEYS("rope_factor"))) c->rope_factor = d;
    if (!(c->rope_theta > 0)) return aios__err(AIOS_ERR_CONFIG, "config: rope_theta %g must be positive", c->rope_theta);

    int b;
    c->tie_word_embeddings = c->arch == AIOS_ARCH_BERT;
    if (jbool(o, &b, KEYS("tie_word_embeddings", "weight_tying"))) c->tie_word_embeddings = b;
    c->attn_qkv_bias = c->arch == AIOS_ARCH_QWEN2 || c->arch == AIOS_ARCH_DREAM || c->arch == AIOS_ARCH_BERT;
    c->attn_out_bias = c->mlp_bias = c->arch == AIOS_ARCH_BERT;
    if (jbool(o, &b, KEYS("attention_bias", "include_bias"))) c->attn_qkv_bias = c->attn_out_bias = b;
    if (jbool(o, &b, KEYS("include_qkv_bias", "qkv_bias"))) c->attn_qkv_bias = b;
    if (jbool(o, &b, KEYS("mlp_bias"))) c->mlp_bias = b;
    c->qk_norm = c->arch == AIOS_ARCH_QWEN3 || c->arch == AIOS_ARCH_BD3LM;
    if (jbool(o, &b, KEYS("qk_norm"))) c->qk_norm = b;

    AIOS_TRY(jint(o, &c->mask_token_id, KEYS("mask_token_id"), 0, BIG));
    AIOS_TRY(jint(o, &c->pad_token_id, KEYS("pad_token_id"), 0, BIG));
    AIOS_TRY(jint(o, &c->bos_token_id, KEYS("bos_token_id"), 0, BIG));
    const cJSON *eos = jget(o, "eos_token_id");
    if (cJSON_IsArray(eos)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, eos) {
            int64_t id;
            if (!cJSON_IsNumber(e) || !aios__f64_to_i64(e->valuedouble, &id) || id < 0)
                return aios__err(AIOS_ERR_CONFIG, "config: eos_token_id list holds a non-id");
            if (c->n_eos < 8) c->eos_token_ids[c->n_eos++] = id;
        }
        if (c->n_eos) c->eos_token_id = c->eos_token_ids[0];
    } else {
        AIOS_TRY(jint(o, &c->eos_token_id, KEYS("eos_token_id"), 0, BIG));
        if (c->eos_token_id >= 0) c->eos_token_ids[c->n_eos++] = c->eos_token_id;
    }

    /* diffusion facts and attention pattern */
    c->is_diffusion = c->arch == AIOS_ARCH_LLADA || c->arch == AIOS_ARCH_DREAM || c->arch == AIOS_ARCH_BD3LM;
    c->attention = c->arch == AIOS_ARCH_BERT || c->arch == AIOS_ARCH_LLADA || c->arch == AIOS_ARCH_DREAM
                       ? AIOS_ATTN_BIDIRECTIONAL
                   : c->arch == AIOS_ARCH_BD3LM ? AIOS_ATTN_BLOCK_CAUSAL
                                                : AIOS_ATTN_CAUSAL;
    c->logit_shift = c->arch == AIOS_ARCH_DREAM;
    AIOS_TRY(jint(o, &c->block_size, KEYS("block_size", "block_length"), 0, BIG));
    char at[32] = "";
    if (jstr(o, at, sizeof at, KEYS("attention"))) {
        if (!strcmp(at, "bidirectional")) c->attention = AIOS_ATTN_BIDIRECTIONAL;
        else if (!strcmp(at, "block-causal")) c->attention = AIOS_ATTN_BLOCK_CAUSAL;
        else if (!strcmp(at, "causal")) c->attention = AIOS_ATTN_CAUSAL;
        else return aios__err(AIOS_ERR_CONFIG, "config: attention '%s' is not causal, bidirectional or block-causal", at);
    }
    if (jbool(o, &b, KEYS("logit_shift", "shift_logits"))) c->logit_shift = b;
    if (jbool(o, &b, KEYS("is_diffusion"))) c->is_diffusion = b;
    if (c->attention == AIOS_ATTN_BLOCK_CAUSAL && c->block_size <= 0)
        return aios__err(AIOS_ERR_CONFIG, "config: block-causal attention needs a positive block_size");

    /* sentence embeddings */
    c->embedding_dimension = c->n_embd;
    c->pooling = c->arch == AIOS_ARCH_BERT ? AIOS_POOL_MEAN : AIOS_POOL_NONE;
    if (dir) read_sentence_transformers(dir, c);
    char pool[32] = "";
    if (jstr(o, pool, sizeof pool, KEYS("pooling", "pooling_mode"))) c->pooling = pool_parse(pool);
    if (jbool(o, &b, KEYS("normalize", "normalize_embeddings"))) c->normalize = b;
    AIOS_TRY(jint(o, &c->embedding_dimension, KEYS("embedding_dimension"), 1, BIG));
    return AIOS_OK;
}

void aios__model_config_from_tensors(aios_model *m) {
    aios_model_config *c = &m->cfg;
    if (aios_model_tensor(m, "model.layers.0.self_attn.q_proj.bias") ||
        aios_model_tensor(m, "model.transformer.blocks.0.q_proj.bias"))
        c->attn_qkv_bias = 1;
    else if (aios_model_tensor(m, "model.layers.0.self_attn.q_proj.weight"))
        c->attn_qkv_bias = 0;
    if (aios_model_tensor(m, "model.layers.0.self_attn.o_proj.bias")) c->attn_out_bias = 1;
    else if (aios_model_tensor(m, "model.layers.0.self_attn.o_proj.weight")) c->attn_out_bias = 0;
    if (aios_model_tensor(m, "model.layers.0.self_attn.q_norm.weight")) c->qk_norm = 1;
    else if (aios_model_tensor(m, "model.layers.0.self_attn.q_proj.weight")) c->qk_norm = 0;
    /* a decoder without its own head shares the embedding */
    if (aios_model_tensor(m, "model.embed_tokens.weight") && !aios_model_tensor(m, "lm_head.weight"))
        c->tie_word_embeddings = 1;
    if (aios_model_tensor(m, "model.transformer.wte.weight") && !aios_model_tensor(m, "model.transformer.ff_out.weight"))
        c->tie_word_embeddings = 1;
}

/* metadata.json: the seed's ArrowEngine fields, then ours; the original config.json is not
 * needed to reopen (every derived fact is written out). */
char *aios__model_metadata_json(const aios_model *m, const char *quantization) {
    const aios_model_config *c = &m->cfg;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "aios_metadata_version", 1);
    cJSON_AddStringToObject(o, "model_name", c->model_name);
    cJSON_AddStringToObject(o, "architecture", c->architecture[0] ? c->architecture : aios_arch_name(c->arch));
    cJSON_AddNumberToObject(o, "hidden_size", (double)c->n_embd);
    cJSON_AddNumberToObject(o, "num_layers", (double)c->n_layer);
    cJSON_AddNumberToObject(o, "num_attention_heads", (double)c->n_head);
    cJSON_AddNumberToObject(o, "intermediate_size", (double)c->n_ff);
    cJSON_AddNumberToObject(o, "max_position_embeddings", (double)c->n_ctx_train);
    cJSON_AddNumberToObject(o, "vocab_size", (double)c->n_vocab);
    /* eps written with the precision of float32 so it reads back to the same float */
    char eps[32];
    snprintf(eps, sizeof eps, "%.9g", (double)c->norm_eps);
    cJSON_AddRawToObject(o, c->rms_norm ? "rms_norm_eps" : "layer_norm_eps", eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddNumberToObject(o, "num_key_value_heads", (double)c->n_head_kv);
    cJSON_AddNumberToObject(o, "embedding_dimension", (double)c->embedding_dimension);
    /* ours */
    cJSON_AddStringToObject(o, "model_type", c->model_type[0] ? c->model_type : aios_arch_name(c->arch));
    cJSON_AddStringToObject(o, "arch", aios_arch_name(c->arch));
    cJSON_AddNumberToObject(o, "head_dim", (double)c->head_dim);
    cJSON_AddBoolToObject(o, "rms_norm", c->rms_norm);
    cJSON_AddStringToObject(o, "hidden_act", c->hidden_act);
    if (c->type_vocab_size) cJSON_AddNumberToObject(o, "type_vocab_size", (double)c->type_vocab_size);
    cJSON *rp = cJSON_AddObjectToObject(o, "rope_parameters");
    cJSON_AddNumberToObject(rp, "rope_theta", c->rope_theta);
    cJSON_AddStringToObject(rp, "rope_type", c->rope_type);
    if (c->rope_factor != 1.0) cJSON_AddNumberToObject(rp, "factor", c->rope_factor);
    if (c->rope_low_freq_factor) cJSON_AddNumberToObject(rp, "low_freq_factor", c->rope_low_freq_factor);
    if (c->rope_high_freq_factor) cJSON_AddNumberToObject(rp, "high_freq_factor", c->rope_high_freq_factor);
    if (c->rope_original_max_pos)
        cJSON_AddNumberToObject(rp, "original_max_position_embeddings", (double)c->rope_original_max_pos);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_word_embeddings);
    cJSON_AddBoolToObject(o, "include_qkv_bias", c->attn_qkv_bias);
    cJSON_AddBoolToObject(o, "attention_bias", c->attn_out_bias);
    cJSON_AddBoolToObject(o, "mlp_bias", c->mlp_bias);
    cJSON_AddBoolToObject(o, "qk_norm", c->qk_norm);
    cJSON_AddStringToObject(o, "pooling", pool_name(c->pooling));
    cJSON_AddBoolToObject(o, "normalize", c->normalize);
#define ID(k, v) ((v) >= 0 ? (void)cJSON_AddNumberToObject(o, k, (double)(v)) : (void)cJSON_AddNullToObject(o, k))
    ID("mask_token_id", c->mask_token_id);
    ID("pad_token_id", c->pad_token_id);
    ID("bos_token_id", c->bos_token_id);
#undef ID
    if (c->n_eos > 1) {
        cJSON *a = cJSON_AddArrayToObject(o, "eos_token_id");
        for (int i = 0; i < c->n_eos; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)c->eos_token_ids[i]));
    } else if (c->eos_token_id >= 0) {
        cJSON_AddNumberToObject(o, "eos_token_id", (double)c->eos_token_id);
    } else {
        cJSON_AddNullToObject(o, "eos_token_id");
    }
    cJSON_AddBoolToObject(o, "is_diffusion", c->is_diffusion);
    cJSON_AddStringToObject(o, "attention", attn_name(c->attention));
    cJSON_AddBoolToObject(o, "logit_shift", c->logit_shift);
    cJSON_AddNumberToObject(o, "block_size", (double)c->block_size);
    cJSON_AddStringToObject(o, "weights_schema", quantization && strcmp(quantization, "none") ? "v2" : "v1");
    if (quantization) cJSON_AddStringToObject(o, "quantization", quantization);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}
