/*
 * diffuse_api.c — aios_diffuse: the seed's ArrowEngine.diffuse(prompt, num_steps,
 * guidance_scale, memory_guided) over a diffusion model: text in, text out.
 *
 * 1. Tokenize with the model's tokenizer.json.  Decoder denoisers (LLaDA, Dream, BD3LM): the
 *    prompt with the tokenizer's own special tokens (LLaDA's BOS; Qwen's none), the suffix
 *    without.  BERT-MLM: [CLS] prompt, and suffix [SEP] — the canvas BERT was trained on.
 * 2. memory_guided: the memory retriever (memprompt.c, shared with autoregressive generation
 *    and the server) opens the store read-only with its encoder (the one the store recorded, or
 *    p->memory_encoder) and gives the top-k memories; the MemoryConditioner places them ahead of
 *    the prompt within the token budget.
 * 3. Size a KV cache for the canvas when the mode can use one, sample, decode the generated
 *    span (special tokens skipped), flag uncertainty against p->uncertainty_threshold.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/diffuse.h"

static aios_status tokenize_cb(void *user, const char *text, int32_t *ids, int64_t cap, int64_t *n) {
    const aios_tokenizer *tok = user;
    aios_tok_params tp = aios_tokenizer_default_params(tok);
    tp.add_special_tokens = 0;
    tp.max_length = 0;
    aios_encoding *e = NULL;
    AIOS_TRY(aios_tokenizer_encode(tok, text, strlen(text), &tp, &e));
    for (int64_t i = 0; i < (int64_t)e->n && i < cap; i++) ids[i] = e->ids[i];
    *n = (int64_t)e->n;
    aios_encoding_free(e);
    return AIOS_OK;
}

static aios_status encode_ids(const aios_tokenizer *tok, const char *text, int special, int32_t **ids, int64_t *n,
                              int *first_special) {
    aios_tok_params tp = aios_tokenizer_default_params(tok);
    tp.add_special_tokens = special;
    tp.max_length = 0;
    tp.pad_strategy = AIOS_PAD_NONE;
    aios_encoding *e = NULL;
    AIOS_TRY(aios_tokenizer_encode(tok, text, strlen(text), &tp, &e));
    *ids = malloc((e->n ? e->n : 1) * sizeof(int32_t));
    if (!*ids) {
        aios_encoding_free(e);
        return aios__err(AIOS_ERR_NOMEM, "diffuse: tokens");
    }
    memcpy(*ids, e->ids, e->n * sizeof(int32_t));
    *n = (int64_t)e->n;
    if (first_special) *first_special = e->n > 0 && e->special_tokens_mask && e->special_tokens_mask[0];
    aios_encoding_free(e);
    return AIOS_OK;
}

aios_status aios_diffuse(aios_diffusion_model *m, const char *prompt, const char *suffix, const aios_diffuse_params *p,
                         aios_diffuse_result *out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: no result");
    memset(out, 0, sizeof *out);
    if (!m || !prompt) return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: no model or prompt");
    aios_diffuse_params dp = aios_diffuse_default_params();
    if (!p) p = &dp;
    if (p->memory_guided && (!p->memory_store || !*p->memory_store))
        return aios__err(AIOS_ERR_INVALID_ARG, "diffuse: memory_guided without a memory_store");
    const aios_denoiser *dn = aios_diffusion_model_denoiser(m);
    const int bert = !strcmp(aios_diffusion_model_kind(m), "bert-mlm");
    aios_tokenizer *tok = NULL;
    aios_status s = aios__diffusion_model_tokenizer(m, &tok);
    if (s != AIOS_OK) return s;

    int32_t *pids = NULL, *sids = NULL, *tmp = NULL;
    int64_t np = 0, ns = 0;
    int first_special = 0;
    aios_tok_special_ids sp = aios_tokenizer_special_ids(tok);
    aios_memory_retriever *mr = NULL;
    aios_memcond_result mc;
    memset(&mc, 0, sizeof mc);
    if (bert) {
        /* [CLS] prompt ... suffix [SEP] */
        int64_t n = 0;
        if ((s = encode_ids(tok, prompt, 0, &tmp, &n, NULL)) != AIOS_OK) goto done;
        int add = p->add_special_tokens && sp.cls >= 0;
        pids = malloc((size_t)(n + 1) * sizeof(int32_t));
        if (!pids) {
            s = aios__err(AIOS_ERR_NOMEM, "diffuse");
            goto done;
        }
        if (add) pids[0] = sp.cls;
        memcpy(pids + add, tmp, (size_t)n * sizeof(int32_t));
        np = n + add;
        first_special = add;
        free(tmp);
        tmp = NULL;
        if ((s = encode_ids(tok, suffix ? suffix : "", 0, &tmp, &n, NULL)) != AIOS_OK) goto done;
        int adds = p->add_special_tokens && sp.sep >= 0;
        sids = malloc((size_t)(n + 1) * sizeof(int32_t));
        if (!sids) {
            s = aios__err(AIOS_ERR_NOMEM, "diffuse");
            goto done;
        }
        memcpy(sids, tmp, (size_t)n * sizeof(int32_t));
        if (adds) sids[n] = sp.sep;
        ns = n + adds;
    } else {
        if ((s = encode_ids(tok, prompt, p->add_special_tokens, &pids, &np, &first_special)) != AIOS_OK) goto done;
        /* a decoder's post-processor may also append EOS: generation goes after the prompt text */
        while (np > 0 && p->add_special_tokens && sp.eos >= 0 && pids[np - 1] == sp.eos && np > first_special) np--;
        if (suffix && *suffix && (s = encode_ids(tok, suffix, 0, &sids, &ns, NULL)) != AIOS_OK) goto done;
    }

    if (p->memory_guided) {
        if ((s = aios_memory_retriever_open(p->memory_store, p->memory_encoder, &mr)) != AIOS_OK) {
            aios__err_prefix(s, "diffuse");
            goto done;
        }
        aios_memcond_params mp = aios_memcond_default_params();
        mp.top_k = p->memory_top_k;
        mp.token_budget = p->memory_token_budget;
        if ((s = aios_memcond_build(aios_memory_retrieve_fn, mr, tokenize_cb, tok, prompt, pids, np, first_special ? 1 : 0, &mp,
                                    &mc)) != AIOS_OK)
            goto done;
        free(pids);
        pids = mc.ids;
        np = mc.n_ids;
        mc.ids = NULL;
    }

    aios_diffuse_params q = *p;
    if (q.kv_cache != AIOS_KV_NONE && dn->max_ctx == 0 &&
        (q.kv_cache != AIOS_KV_AUTO || dn->attn == AIOS_DENOISE_BLOCK_CAUSAL) && !bert) {
        int64_t B = q.block_length ? q.block_length : (dn->block_size > 0 ? dn->block_size : q.gen_length);
        if ((s = aios_diffusion_model_set_cache(m, np + B + q.gen_length + ns)) != AIOS_OK) goto done;
    }
    if ((s = aios_diffuse_sample(dn, &q, pids, np, sids, ns, out)) != AIOS_OK) goto done;
    aios_diffuse_uncertainty_flag(out, p->uncertainty_threshold);
    size_t len = 0;
    if ((s = aios_tokenizer_decode(tok, out->ids + out->gen_start, (size_t)out->gen_len, 1, &out->text, &len)) != AIOS_OK)
        goto done;
    if (mc.n_used > 0) {
        out->n_memories = mc.n_used;
        out->memory_ids = mc.used_ids;
        out->memory_scores = mc.used_scores;
        mc.used_ids = NULL;
        mc.used_scores = NULL;
    }
done:
    if (s != AIOS_OK) aios_diffuse_result_free(out);
    aios_memcond_result_free(&mc);
    aios_memory_retriever_free(mr);
    free(pids);
    free(sids);
    free(tmp);
    return s;
}
