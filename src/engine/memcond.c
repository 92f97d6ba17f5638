/*
 * memcond.c — MemoryConditioner: memory-guided diffusion (the seed's `memory_guided=True`).
 *
 * The prompt is the query.  The retriever (normally the memory store's text search: embed the
 * prompt, cosine top-k) returns memories best first; each one's content is tokenized and placed
 * ahead of the prompt, followed by the separator's tokens, while the total stays within the
 * token budget.  A memory that does not fit is skipped rather than cut (a cut memory reads as a
 * different statement); a shorter one ranked after it may still fit.  Leading special tokens of
 * the prompt (BOS, [CLS]) stay in front.  The caller learns exactly which memories were used.
 * The retriever and the tokenizer are callbacks, so the conditioner is tested without a store
 * and works with any of them.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/diffuse.h"

aios_memcond_params aios_memcond_default_params(void) {
    aios_memcond_params p;
    p.top_k = 3;
    p.token_budget = 256;
    p.min_score = -2.0f;
    p.separator = "\n";
    return p;
}

void aios_memcond_result_free(aios_memcond_result *r) {
    if (!r) return;
    free(r->ids);
    free(r->used_ids);
    free(r->used_scores);
    memset(r, 0, sizeof *r);
}

/* Tokenizes text into a fresh array (two calls: size, then fill). */
static aios_status tok_all(aios_memcond_tokenize_fn tokenize, void *user, const char *text, int32_t **ids, int64_t *n) {
    *ids = NULL;
    *n = 0;
    int64_t need = 0;
    AIOS_TRY(tokenize(user, text, NULL, 0, &need));
    if (need < 0 || need > (1 << 24)) return aios__err(AIOS_ERR_RANGE, "memcond: %lld tokens", (long long)need);
    int32_t *buf = malloc((size_t)(need > 0 ? need : 1) * sizeof(int32_t));
    if (!buf) return aios__err(AIOS_ERR_NOMEM, "memcond: tokens");
    int64_t got = 0;
    aios_status s = tokenize(user, text, buf, need, &got);
    if (s == AIOS_OK && got != need) s = aios__err(AIOS_ERR_INTERNAL, "memcond: tokenizer gave %lld then %lld tokens", (long long)need, (long long)got);
    if (s != AIOS_OK) {
        free(buf);
        return s;
    }
    *ids = buf;
    *n = need;
    return AIOS_OK;
}

aios_status aios_memcond_build(aios_memcond_retrieve_fn retrieve, void *retrieve_user, aios_memcond_tokenize_fn tokenize,
                               void *tokenize_user, const char *prompt, const int32_t *prompt_ids, int64_t n_prompt,
                               int64_t keep_first, const aios_memcond_params *p, aios_memcond_result *out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "memcond: no result");
    memset(out, 0, sizeof *out);
    aios_memcond_params dp = aios_memcond_default_params();
    if (!p) p = &dp;
    if (!retrieve || !tokenize || !prompt || n_prompt < 0 || (n_prompt > 0 && !prompt_ids) || keep_first < 0 ||
        keep_first > n_prompt)
        return aios__err(AIOS_ERR_INVALID_ARG, "memcond: bad arguments");
    if (p->top_k < 0 || p->top_k > 1024 || p->token_budget < 0)
        return aios__err(AIOS_ERR_INVALID_ARG, "memcond: top_k %d, token_budget %lld", p->top_k, (long long)p->token_budget);
    aios_status s = AIOS_OK;
    aios_memcond_hit *hits = calloc((size_t)(p->top_k > 0 ? p->top_k : 1), sizeof *hits);
    int32_t *mem = malloc((size_t)(p->token_budget > 0 ? p->token_budget : 1) * sizeof(int32_t));
    int32_t *sep = NULL, *t = NULL;
    int64_t n_sep = 0, n_mem = 0;
    int32_t n_hits = 0;
    out->used_ids = calloc((size_t)(p->top_k > 0 ? p->top_k : 1), sizeof *out->used_ids);
    out->used_scores = calloc((size_t)(p->top_k > 0 ? p->top_k : 1), sizeof(float));
    if (!hits || !mem || !out->used_ids || !out->used_scores) {
        s = aios__err(AIOS_ERR_NOMEM, "memcond");
        goto done;
    }
    if (p->top_k > 0 && (s = retrieve(retrieve_user, prompt, p->top_k, hits, &n_hits)) != AIOS_OK) {
        aios__err_prefix(s, "memcond: retrieve");
        goto done;
    }
    if (n_hits < 0 || n_hits > p->top_k) {
        s = aios__err(AIOS_ERR_INTERNAL, "memcond: retriever returned %d hits for top_k %d", n_hits, p->top_k);
        goto done;
    }
    if (p->separator && *p->separator && (s = tok_all(tokenize, tokenize_user, p->separator, &sep, &n_sep)) != AIOS_OK)
        goto done;
    for (int32_t i = 0; i < n_hits; i++) {
        if (!hits[i].content || hits[i].score < p->min_score) continue;
        int64_t n = 0;
        free(t);
        t = NULL;
        if ((s = tok_all(tokenize, tokenize_user, hits[i].content, &t, &n)) != AIOS_OK) goto done;
        if (n == 0 || n + n_sep > p->token_budget - n_mem) continue; /* does not fit: skip, never cut */
        memcpy(mem + n_mem, t, (size_t)n * sizeof(int32_t));
        n_mem += n;
        if (n_sep) memcpy(mem + n_mem, sep, (size_t)n_sep * sizeof(int32_t));
        n_mem += n_sep;
        snprintf(out->used_ids[out->n_used], AIOS_MEMCOND_ID_MAX, "%s", hits[i].id ? hits[i].id : "");
        out->used_scores[out->n_used++] = hits[i].score;
    }
    out->ids = malloc((size_t)(n_prompt + n_mem + 1) * sizeof(int32_t));
    if (!out->ids) {
        s = aios__err(AIOS_ERR_NOMEM, "memcond");
        goto done;
    }
    if (keep_first) memcpy(out->ids, prompt_ids, (size_t)keep_first * sizeof(int32_t));
    if (n_mem) memcpy(out->ids + keep_first, mem, (size_t)n_mem * sizeof(int32_t));
    if (n_prompt > keep_first)
        memcpy(out->ids + keep_first + n_mem, prompt_ids + keep_first, (size_t)(n_prompt - keep_first) * sizeof(int32_t));
    out->n_ids = n_prompt + n_mem;
    out->n_memory_tokens = n_mem;
done:
    free(hits);
    free(mem);
    free(sep);
    free(t);
    if (s != AIOS_OK) aios_memcond_result_free(out);
    return s;
}
