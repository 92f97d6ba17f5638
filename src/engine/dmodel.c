/*
 * dmodel.c — denoiser adapters: real models behind aios_denoiser.
 *
 * A diffusion model directory is a Hugging Face directory (config.json + model.safetensors).
 * What kind of denoiser it is comes from the config:
 *   LLaDA   model_type "llada" (or an LLaDA architecture): the decoder with LLaDA tensor naming,
 *           bidirectional attention, logits row i for position i.  mask_token_id (LLaDA-8B:
 *           126336 when the config does not say).
 *   Dream   model_type "Dream": Qwen2 weights, bidirectional, logits shifted (row i-1 predicts
 *           token i — Dream keeps the autoregressive head's convention).  mask 151666 default.
 *   BD3LM   a "block_size" in the config or an A2D / BD3LM architecture: Qwen3 (or Llama) run
 *           block-causally; the sampler left-pads the prompt with pad_token_id and counts RoPE
 *           positions over non-pad tokens.  These carry an exact block KV cache.
 * The decoder (src/model/decoder.c) takes an explicit visibility mask and RoPE positions, which
 * is all the sampler's patterns need; its KV cache serves both the exact block cache and the
 * Fast-dLLM prefix cache: a call with n_past = k truncates the cache to k rows and appends the
 * new rows' K/V (the sampler tracks which rows are final).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/diffuse.h"
#include "format/safetensors.h"
#include "model/decoder.h"

struct aios_diffusion_model {
    char kind[16];
    aios_safetensors *st;
    aios_decoder *dec;
    aios_kv_cache *kv;
    aios_denoiser dn;
};

static const aios_tensor *st_lookup(void *ctx, const char *name) { return aios_safetensors_find(ctx, name); }

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

void aios_diffusion_model_free(aios_diffusion_model *m) {
    if (!m) return;
    aios_kv_cache_free(m->kv);
    aios_decoder_free(m->dec);
    aios_safetensors_close(m->st);
    free(m);
}

static int arch_has(const cJSON *root, const char *needle) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures"), *e;
    cJSON_ArrayForEach(e, a) if (cJSON_IsString(e) && strstr(e->valuestring, needle)) return 1;
    return 0;
}

aios_status aios_diffusion_model_open(const char *dir, aios_diffusion_model **out) {
    if (!dir || !out) return aios__err(AIOS_ERR_INVALID_ARG, "diffusion model: no directory");
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *json = NULL;
    size_t len = 0;
    aios_status s = aios__read_file(path, &json, &len);
    if (s != AIOS_OK) return aios__err_prefix(s, "diffusion model");
    cJSON *root = cJSON_ParseWithLength(json, len);
    aios_diffusion_model *m = calloc(1, sizeof *m);
    if (!m) {
        s = aios__err(AIOS_ERR_NOMEM, "diffusion model");
        goto out;
    }
    if (!root || !cJSON_IsObject(root)) {
        s = aios__err(AIOS_ERR_FORMAT, "%s: not a JSON object", path);
        goto out;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *type = cJSON_IsString(mt) ? mt->valuestring : "";
    if (!strcmp(type, "bert") || arch_has(root, "Bert")) {
        s = aios__err(AIOS_ERR_UNSUPPORTED, "%s: BERT-MLM denoiser needs the BERT encoder (not in this build)", dir);
        goto out;
    }
    aios_decoder_config cfg;
    if ((s = aios_decoder_config_parse(json, len, &cfg)) != AIOS_OK) {
        aios__err_prefix(s, "%s", path);
        goto out;
    }
    aios_denoiser *d = &m->dn;
    memset(d, 0, sizeof *d);
    d->pad_id = -1;
    int32_t mask_default = -1;
    if (!strcmp(type, "llada") || arch_has(root, "LLaDA")) {
        snprintf(m->kind, sizeof m->kind, "llada");
        d->attn = AIOS_DENOISE_FULL;
        mask_default = 126336;
    } else if (!strcasecmp(type, "dream") || arch_has(root, "Dream")) {
        snprintf(m->kind, sizeof m->kind, "dream");
        d->attn = AIOS_DENOISE_FULL;
        d->shift = 1;
        mask_default = 151666;
    } else if (cfg.block_size > 0 || !strncmp(type, "a2d", 3) || arch_has(root, "A2D") || arch_has(root, "BD3LM")) {
        snprintf(m->kind, sizeof m->kind, "bd3lm");
        d->attn = AIOS_DENOISE_BLOCK_CAUSAL;
        d->block_size = (int32_t)(cfg.block_size > 0 ? cfg.block_size : 32);
        d->pad_id = cfg.pad_id;
    } else {
        s = aios__err(AIOS_ERR_UNSUPPORTED,
                      "%s: model_type '%s' is not a diffusion model (llada, Dream, block diffusion with block_size)",
                      dir, type);
        goto out;
    }
    d->mask_id = cfg.mask_id >= 0 ? cfg.mask_id : mask_default;
    if (d->mask_id < 0 || d->mask_id >= cfg.n_vocab) {
        s = aios__err(AIOS_ERR_FORMAT, "%s: mask_token_id %d outside the vocabulary of %lld", path, d->mask_id,
                      (long long)cfg.n_vocab);
        goto out;
    }
    if (d->attn == AIOS_DENOISE_BLOCK_CAUSAL && (d->pad_id < 0 || d->pad_id >= cfg.n_vocab)) {
        s = aios__err(AIOS_ERR_FORMAT, "%s: block diffusion needs a pad_token_id inside the vocabulary", path);
        goto out;
    }
    d->n_vocab = cfg.n_vocab;
    d->n_eos = cfg.n_eos < 8 ? cfg.n_eos : 8;
    for (int i = 0; i < d->n_eos; i++) d->eos_ids[i] = cfg.eos_ids[i];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((s = aios_safetensors_open(path, &m->st)) != AIOS_OK) goto out;
    if ((s = aios_decoder_create(&cfg, st_lookup, m->st, &m->dec)) != AIOS_OK) {
        aios__err_prefix(s, "%s", dir);
        goto out;
    }
    d->ctx = m;
    d->forward = dec_forward;
    d->max_ctx = 0;
out:
    cJSON_Delete(root);
    free(json);
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
    AIOS_TRY(aios_kv_cache_create(m->dec, n_ctx, &m->kv));
    m->dn.max_ctx = n_ctx;
    return AIOS_OK;
}

const aios_denoiser *aios_diffusion_model_denoiser(const aios_diffusion_model *m) { return m ? &m->dn : NULL; }

const char *aios_diffusion_model_kind(const aios_diffusion_model *m) { return m ? m->kind : ""; }
