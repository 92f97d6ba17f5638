/*
 * dmodel.c — denoiser adapters: real models behind aios_denoiser.
 *
 * A diffusion model is anything aios_model_open reads (a Hugging Face directory, or its
 * ArrowEngine Parquet conversion); its config says which denoiser it is (model.c classifies):
 *   LLaDA    the decoder with LLaDA tensor naming, bidirectional, logits row i for position i;
 *            mask_token_id (LLaDA-8B's 126336 when the config does not say).
 *   Dream    Qwen2 weights, bidirectional, logits shifted (row i-1 predicts token i — Dream keeps
 *            the autoregressive head's convention); mask 151666 by default.
 *   BD3LM    block diffusion (config "block_size", A2D / BD3LM architectures): Qwen3 (or Llama)
 *            weights run block-causally; the sampler left-pads the prompt with pad_token_id and
 *            counts RoPE positions over non-pad tokens.  These have an exact block KV cache.
 *   BERT-MLM BertForMaskedLM: the encoder over the canvas `[CLS] prompt [MASK]... suffix [SEP]`
 *            (the caller supplies [CLS]/[SEP]); mask id from the config or tokenizer.json's [MASK].
 * The decoder (src/model/decoder.c) takes an explicit visibility mask and RoPE positions, which
 * is all the sampler's patterns need; its KV cache serves both the exact block cache and the
 * Fast-dLLM prefix cache: a call with n_past = k truncates the cache to k rows and appends the
 * new rows' K/V (the sampler tracks which rows are final).  Only the rows the sampler asks for
 * go through the LM head (aios_decoder_forward_rows).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/diffuse.h"
#include "model/bert.h"
#include "model/decoder.h"
#include "model/model.h"

struct aios_diffusion_model {
    char kind[16];
    aios_model *model;
    aios_decoder *dec;
    aios_bert *bert;
    float *hidden;          /* BERT: (cap_rows, n_embd) */
    int64_t cap_rows;
    aios_kv_cache *kv;
    int borrowed_dec;       /* aios__diffusion_model_wrap: the decoder belongs to the caller */
    aios_tokenizer *tok;    /* loaded on first use (aios_diffuse) */
    aios_denoiser dn;
};

static aios_status dec_forward(void *ctx, const int32_t *ids, const int32_t *pos, int64_t n_new, int64_t n_past,
                               const uint8_t *vis, int64_t out_lo, int64_t n_out, float *logits) {
    aios_diffusion_model *m = ctx;
    aios_kv_cache *kv = m->kv;
    if (n_past > 0) {
        if (!kv) return aios__err(AIOS_ERR_INVALID_ARG, "denoiser: n_past %lld without a KV cache", (long long)n_past);
        if (n_past > aios_kv_cache_len(kv))
            return aios__err(AIOS_ERR_INTERNAL, "denoiser: n_past %lld beyond the %lld cached rows", (long long)n_past,
                             (long long)aios_kv_cache_len(kv));
    }
    if (kv) aios_kv_cache_truncate(kv, n_past);
    aios_forward_opts o;
    memset(&o, 0, sizeof o);
    o.attn = AIOS_FWD_MASK;
    o.mask = vis;
    o.pos = pos;
    o.logits_all = 1;
    return aios_decoder_forward_rows(m->dec, kv, ids, n_new, &o, out_lo, n_out, logits);
}

/* BERT-MLM: the encoder sees the whole canvas (positions 0..n-1, no cache), the MLM head
 * runs on the requested rows only. */
static aios_status bert_forward(void *ctx, const int32_t *ids, const int32_t *pos, int64_t n_new, int64_t n_past,
                                const uint8_t *vis, int64_t out_lo, int64_t n_out, float *logits) {
    aios_diffusion_model *m = ctx;
    if (n_past != 0) return aios__err(AIOS_ERR_UNSUPPORTED, "denoiser: BERT has no KV cache");
    for (int64_t i = 0; i < n_new * n_new; i++)
        if (!vis[i]) return aios__err(AIOS_ERR_UNSUPPORTED, "denoiser: BERT attends bidirectionally only");
    for (int64_t i = 0; i < n_new; i++)
        if (pos[i] != i) return aios__err(AIOS_ERR_UNSUPPORTED, "denoiser: BERT positions are 0..n-1");
    const int64_t E = aios_bert_hparams_of(m->bert)->n_embd;
    if (n_new > m->cap_rows) {
        float *h = realloc(m->hidden, (size_t)n_new * (size_t)E * sizeof(float));
        if (!h) return aios__err(AIOS_ERR_NOMEM, "denoiser: BERT hidden states for %lld rows", (long long)n_new);
        m->hidden = h;
        m->cap_rows = n_new;
    }
    AIOS_TRY(aios_bert_forward(m->bert, ids, NULL, NULL, 1, n_new, m->hidden));
    return aios_bert_mlm_logits(m->bert, m->hidden + out_lo * E, n_out, logits);
}

void aios_diffusion_model_free(aios_diffusion_model *m) {
    if (!m) return;
    aios_kv_cache_free(m->kv);
    if (!m->borrowed_dec) aios_decoder_free(m->dec);
    aios_bert_free(m->bert);
    aios_tokenizer_free(m->tok);
    free(m->hidden);
    aios_model_free(m->model);
    free(m);
}

/* The id of a special token (e.g. "[MASK]") from tokenizer.json's added_tokens, or -1. */
static int64_t special_token_id(const char *tok_path, const char *content) {
    if (!tok_path) return -1;
    char *txt = NULL;
    size_t len = 0;
    if (aios__read_file(tok_path, &txt, &len) != AIOS_OK) {
        aios_clear_error();
        return -1;
    }
    int64_t id = -1;
    cJSON *root = cJSON_ParseWithLength(txt, len);
    const cJSON *e, *added = root ? cJSON_GetObjectItemCaseSensitive(root, "added_tokens") : NULL;
    cJSON_ArrayForEach(e, added) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content"), *i = cJSON_GetObjectItemCaseSensitive(e, "id");
        int64_t v;
        if (cJSON_IsString(c) && cJSON_IsNumber(i) && !strcmp(c->valuestring, content) && aios__f64_to_i64(i->valuedouble, &v))
            id = v;
    }
    cJSON_Delete(root);
    free(txt);
    return id;
}

static aios_status open_bert(aios_diffusion_model *m, const aios_model_config *mc) {
    aios_bert_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.n_embd = mc->n_embd;
    hp.n_layer = mc->n_layer;
    hp.n_head = mc->n_head;
    hp.n_ff = mc->n_ff;
    hp.n_vocab = mc->n_vocab;
    hp.n_ctx = mc->n_ctx_train;
    hp.type_vocab_size = mc->type_vocab_size;
    hp.eps = mc->norm_eps;
    AIOS_TRY(aios_bert_load(&hp, aios_decoder_model_lookup, m->model, &m->bert));
    if (!aios_bert_has_mlm(m->bert))
        return aios__err(AIOS_ERR_UNSUPPORTED, "%s: BERT without an MLM head (cls.predictions.*) cannot denoise",
                         aios_model_path(m->model));
    aios_denoiser *d = &m->dn;
    int64_t mask = mc->mask_token_id >= 0 ? mc->mask_token_id : special_token_id(aios_model_tokenizer_path(m->model), "[MASK]");
    if (mask < 0)
        return aios__err(AIOS_ERR_FORMAT, "%s: no mask token (config mask_token_id or [MASK] in tokenizer.json)",
                         aios_model_path(m->model));
    d->mask_id = (int32_t)mask;
    d->attn = AIOS_DENOISE_FULL;
    d->forward = bert_forward;
    snprintf(m->kind, sizeof m->kind, "bert-mlm");
    return AIOS_OK;
}

static aios_status open_decoder(aios_diffusion_model *m, const aios_model_config *mc) {
    aios_decoder_config cfg;
    AIOS_TRY(aios_decoder_config_from_model(mc, &cfg));
    AIOS_TRY(aios_decoder_create(&cfg, aios_decoder_model_lookup, m->model, &m->dec));
    aios_denoiser *d = &m->dn;
    int64_t mask = mc->mask_token_id;
    if (mc->arch == AIOS_ARCH_LLADA) {
        snprintf(m->kind, sizeof m->kind, "llada");
        if (mask < 0) mask = 126336; /* LLaDA-8B's [MASK] */
    } else if (mc->arch == AIOS_ARCH_DREAM) {
        snprintf(m->kind, sizeof m->kind, "dream");
        if (mask < 0) mask = 151666; /* Dream-7B's <|mask|> */
    } else {
        snprintf(m->kind, sizeof m->kind, "bd3lm");
    }
    if (mask < 0) mask = special_token_id(aios_model_tokenizer_path(m->model), "<|mask|>");
    d->mask_id = (int32_t)mask;
    d->shift = mc->logit_shift ? 1 : 0;
    if (mc->attention == AIOS_ATTN_BLOCK_CAUSAL) {
        d->attn = AIOS_DENOISE_BLOCK_CAUSAL;
        d->block_size = (int32_t)(mc->block_size > 0 ? mc->block_size : 32);
        d->pad_id = (int32_t)mc->pad_token_id;
        if (d->pad_id < 0 || d->pad_id >= mc->n_vocab)
            return aios__err(AIOS_ERR_FORMAT, "%s: block diffusion needs a pad_token_id inside the vocabulary",
                             aios_model_path(m->model));
    } else {
        d->attn = AIOS_DENOISE_FULL;
    }
    int n = mc->n_eos < 8 ? mc->n_eos : 8;
    for (int i = 0; i < n; i++) d->eos_ids[i] = (int32_t)mc->eos_token_ids[i];
    if (n == 0 && mc->eos_token_id >= 0) d->eos_ids[n++] = (int32_t)mc->eos_token_id;
    d->n_eos = n;
    d->forward = dec_forward;
    return AIOS_OK;
}

aios_status aios_diffusion_model_open(const char *dir, aios_diffusion_model **out) {
    if (!dir || !out) return aios__err(AIOS_ERR_INVALID_ARG, "diffusion model: no directory");
    *out = NULL;
    aios_diffusion_model *m = calloc(1, sizeof *m);
    if (!m) return aios__err(AIOS_ERR_NOMEM, "diffusion model");
    aios_status s = aios_model_open(dir, NULL, &m->model);
    if (s == AIOS_OK) {
        const aios_model_config *mc = aios_model_get_config(m->model);
        m->dn.pad_id = -1;
        m->dn.n_vocab = mc->n_vocab;
        m->dn.ctx = m;
        if (mc->arch == AIOS_ARCH_BERT) {
            s = open_bert(m, mc);
        } else if (mc->arch == AIOS_ARCH_LLADA || mc->arch == AIOS_ARCH_DREAM || mc->arch == AIOS_ARCH_BD3LM ||
                   (mc->is_diffusion && mc->attention != AIOS_ATTN_CAUSAL)) {
            s = open_decoder(m, mc);
        } else {
            s = aios__err(AIOS_ERR_UNSUPPORTED,
                          "%s: model_type '%s' is not a diffusion model (LLaDA, Dream, block diffusion, BERT-MLM)",
                          dir, mc->model_type);
        }
        if (s == AIOS_OK && (m->dn.mask_id < 0 || m->dn.mask_id >= mc->n_vocab))
            s = aios__err(AIOS_ERR_FORMAT, "%s: mask token id %d outside the vocabulary of %lld", dir, m->dn.mask_id,
                          (long long)mc->n_vocab);
    }
    if (s != AIOS_OK) {
        aios_diffusion_model_free(m);
        return s;
    }
    *out = m;
    return AIOS_OK;
}

aios_status aios_diffusion_model_set_cache(aios_diffusion_model *m, int64_t n_ctx) {
    if (!m || n_ctx < 0) return aios__err(AIOS_ERR_INVALID_ARG, "diffusion model: cache of %lld rows", (long long)n_ctx);
    aios_kv_cache_free(m->kv);
    m->kv = NULL;
    m->dn.max_ctx = 0;
    if (n_ctx == 0) return AIOS_OK;
    if (!m->dec) return aios__err(AIOS_ERR_UNSUPPORTED, "diffusion model: %s has no KV cache", m->kind);
    AIOS_TRY(aios_kv_cache_create(m->dec, n_ctx, &m->kv));
    m->dn.max_ctx = n_ctx;
    return AIOS_OK;
}

const aios_denoiser *aios_diffusion_model_denoiser(const aios_diffusion_model *m) { return m ? &m->dn : NULL; }

const char *aios_diffusion_model_kind(const aios_diffusion_model *m) { return m ? m->kind : ""; }

aios_status aios__diffusion_model_wrap(aios_decoder *dec, aios_denoise_attn attn, int shift, int32_t mask_id,
                                       int32_t pad_id, int32_t block_size, aios_diffusion_model **out) {
    if (!dec || !out) return aios__err(AIOS_ERR_INVALID_ARG, "diffusion model: wrap: no decoder");
    const aios_decoder_config *c = aios_decoder_get_config(dec);
    if (mask_id < 0 || mask_id >= c->n_vocab || (attn == AIOS_DENOISE_BLOCK_CAUSAL && (pad_id < 0 || pad_id >= c->n_vocab)))
        return aios__err(AIOS_ERR_INVALID_ARG, "diffusion model: wrap: mask %d / pad %d", mask_id, pad_id);
    aios_diffusion_model *m = calloc(1, sizeof *m);
    if (!m) return aios__err(AIOS_ERR_NOMEM, "diffusion model");
    m->dec = dec;
    m->borrowed_dec = 1;
    snprintf(m->kind, sizeof m->kind, "%s", attn == AIOS_DENOISE_BLOCK_CAUSAL ? "bd3lm" : shift ? "dream" : "llada");
    aios_denoiser *d = &m->dn;
    d->ctx = m;
    d->n_vocab = c->n_vocab;
    d->mask_id = mask_id;
    d->pad_id = attn == AIOS_DENOISE_BLOCK_CAUSAL ? pad_id : -1;
    d->shift = shift;
    d->attn = attn;
    d->block_size = block_size;
    d->forward = dec_forward;
    *out = m;
    return AIOS_OK;
}

aios_status aios__diffusion_model_tokenizer(aios_diffusion_model *m, aios_tokenizer **out) {
    if (!m->tok) {
        const char *path = m->model ? aios_model_tokenizer_path(m->model) : NULL;
        if (!path)
            return aios__err(AIOS_ERR_NOT_FOUND, "diffusion model %s: no tokenizer.json beside the weights (use token ids)",
                             m->model ? aios_model_path(m->model) : m->kind);
        AIOS_TRY(aios_tokenizer_load(path, &m->tok));
    }
    *out = m->tok;
    return AIOS_OK;
}

aios_status aios_diffusion_model_detokenize(aios_diffusion_model *m, const int32_t *ids, int64_t n, char **text) {
    if (!m || !text || n < 0 || (n > 0 && !ids)) return aios__err(AIOS_ERR_INVALID_ARG, "diffusion model: detokenize");
    aios_tokenizer *tok = NULL;
    AIOS_TRY(aios__diffusion_model_tokenizer(m, &tok));
    size_t len = 0;
    return aios_tokenizer_decode(tok, ids, (size_t)n, 1, text, &len);
}
