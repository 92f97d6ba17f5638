/*
 * memprompt.c — memory retrieval and memory-conditioned prompts (the fast path of the
 * evolution loop: a fact added to memory is usable at once, with no training).
 *
 * The retriever (aios_memory_retriever) is the one place that turns a query into memories: it
 * embeds the query with the store's encoder and searches the store with a top-k, a minimum score
 * and the category / source filters.  Autoregressive generation, the server and diffusion's
 * MemoryConditioner (diffuse_api.c) all retrieve through it.
 *
 * aios_generator_memory_prompt renders retrieved notes into a prompt inside the model's chat
 * template: the notes become a block ("<header>\n- note\n- note\n") in the last user message
 * (default) or the system message, and the conversation is rendered by
 * aios_generator_chat_prompt, so the template is the one generation uses anyway.  The contract
 * in include/aios.h is what tests/py/test_memprompt.py reproduces with transformers'
 * apply_chat_template, byte for byte.
 *
 * Budget.  The notes are counted in the model's tokens.  The budget is
 * min(max_tokens, n_ctx - reserve - tokens of the unconditioned prompt).  Notes are taken best
 * first while their item ("- " + content + "\n") fits; the first that does not fit whole is cut
 * to the tokens left (its content's first k tokens, decoded, an incomplete UTF-8 tail dropped;
 * k >= 4, else the block ends before it) and closes the block — unlike diffusion's
 * conditioner, which skips such a memory: a chat prompt can say "this note was cut", a
 * diffusion canvas cannot.  Token counts of pieces are not
 * exactly additive (BPE merges across a boundary), so the rendered prompt is measured and, if
 * the notes added more than the budget, the budget shrinks by the excess and the block is built
 * again.  No note at all leaves the prompt byte-identical to the unconditioned one.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/generate_internal.h"

/* ------------------------------------------------------------------------------------------
 * retriever
 * ------------------------------------------------------------------------------------------ */

struct aios_memory_retriever {
    aios_store *st;
    aios_encoder *enc;
    int owns;
    aios_search_hit *hits;
    int32_t cap;
    float *vec;
};

aios_memory_query aios_memory_query_default(void) {
    aios_memory_query q;
    memset(&q, 0, sizeof q);
    q.top_k = 3;
    q.min_score = -2.0f;
    return q;
}

aios_status aios_memory_retriever_wrap(aios_store *st, aios_encoder *enc, aios_memory_retriever **out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "memory retriever: no output");
    *out = NULL;
    if (!st || !enc) return aios__err(AIOS_ERR_INVALID_ARG, "memory retriever: needs a store and an encoder");
    aios_memory_retriever *r = calloc(1, sizeof *r);
    if (!r) return aios__err(AIOS_ERR_NOMEM, "memory retriever");
    r->st = st;
    r->enc = enc;
    r->vec = malloc((size_t)aios_encoder_dim(enc) * sizeof(float));
    if (!r->vec) {
        free(r);
        return aios__err(AIOS_ERR_NOMEM, "memory retriever");
    }
    *out = r;
    return AIOS_OK;
}

aios_status aios_memory_retriever_open(const char *store_dir, const char *encoder, aios_memory_retriever **out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "memory retriever: no output");
    *out = NULL;
    if (!store_dir || !*store_dir) return aios__err(AIOS_ERR_INVALID_ARG, "memory retriever: no store directory");
    aios_store_params sp = aios_store_default_params();
    sp.read_only = 1;
    aios_store *st = NULL;
    aios_encoder *enc = NULL;
    aios_status s = aios_store_open(store_dir, &sp, &st);
    if (s != AIOS_OK) return aios__err_prefix(s, "memory store %s", store_dir);
    if (!encoder || !*encoder) encoder = aios_store_model(st);
    if (!encoder || !*encoder) {
        aios_store_close(st);
        return aios__err(AIOS_ERR_NOT_FOUND, "memory store %s records no embedding model; give one", store_dir);
    }
    if ((s = aios_encoder_open(encoder, NULL, &enc)) != AIOS_OK) {
        aios_store_close(st);
        return aios__err_prefix(s, "memory encoder");
    }
    int32_t dim = aios_store_dim(st);
    if (dim > 0 && dim != aios_encoder_dim(enc)) {
        s = aios__err(AIOS_ERR_SHAPE, "memory store %s holds %d-float embeddings, the encoder %s gives %lld", store_dir,
                      dim, encoder, (long long)aios_encoder_dim(enc));
        aios_encoder_free(enc);
        aios_store_close(st);
        return s;
    }
    if ((s = aios_memory_retriever_wrap(st, enc, out)) != AIOS_OK) {
        aios_encoder_free(enc);
        aios_store_close(st);
        return s;
    }
    (*out)->owns = 1;
    return AIOS_OK;
}

void aios_memory_retriever_free(aios_memory_retriever *r) {
    if (!r) return;
    if (r->owns) {
        aios_encoder_free(r->enc);
        aios_store_close(r->st);
    }
    free(r->hits);
    free(r->vec);
    free(r);
}

aios_status aios_memory_retrieve(aios_memory_retriever *r, const char *query, const aios_memory_query *q,
                                 aios_memcond_hit *hits, int32_t *n_hits) {
    if (n_hits) *n_hits = 0;
    aios_memory_query dq = aios_memory_query_default();
    if (!q) q = &dq;
    if (!r || !query || !n_hits || (q->top_k > 0 && !hits))
        return aios__err(AIOS_ERR_INVALID_ARG, "memory retrieve: bad arguments");
    if (q->top_k < 0 || q->top_k > 1024) return aios__err(AIOS_ERR_INVALID_ARG, "memory retrieve: top_k %d", q->top_k);
    if (q->top_k == 0 || aios_store_dim(r->st) == 0) return AIOS_OK; /* nothing asked, or nothing embedded yet */
    if (q->top_k > r->cap) {
        aios_search_hit *h = realloc(r->hits, (size_t)q->top_k * sizeof *h);
        if (!h) return aios__err(AIOS_ERR_NOMEM, "memory retrieve");
        r->hits = h;
        r->cap = q->top_k;
    }
    int32_t dim = (int32_t)aios_encoder_dim(r->enc);
    if (aios_store_dim(r->st) != dim)
        return aios__err(AIOS_ERR_SHAPE, "memory: the encoder gives %d floats, the store holds %d", dim,
                         aios_store_dim(r->st));
    AIOS_TRY(aios_encode(r->enc, query, strlen(query), r->vec));
    aios_search_params sp = aios_search_default_params();
    sp.top_k = q->top_k;
    sp.threshold = q->min_score;
    sp.category = q->category;
    sp.source = q->source;
    int32_t n = 0;
    AIOS_TRY(aios_store_search(r->st, r->vec, dim, &sp, r->hits, &n));
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (r->hits[i].score < q->min_score) continue;
        hits[k].id = r->hits[i].memory.memory_id;
        hits[k].content = r->hits[i].memory.content;
        hits[k].score = r->hits[i].score;
        k++;
    }
    *n_hits = k;
    return AIOS_OK;
}

aios_status aios_memory_retrieve_fn(void *user, const char *query, int32_t top_k, aios_memcond_hit *hits,
                                    int32_t *n_hits) {
    aios_memory_query q = aios_memory_query_default();
    q.top_k = top_k;
    return aios_memory_retrieve(user, query, &q, hits, n_hits);
}

/* ------------------------------------------------------------------------------------------
 * prompt
 * ------------------------------------------------------------------------------------------ */

aios_memprompt_params aios_memprompt_default_params(void) {
    aios_memprompt_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 256;
    p.place = AIOS_MEMPROMPT_USER;
    p.header = NULL;
    return p;
}

void aios_memprompt_result_free(aios_memprompt_result *r) {
    if (!r) return;
    free(r->prompt);
    free(r->conditioned);
    for (int32_t i = 0; i < r->n_sources; i++) free(r->sources[i].content);
    free(r->sources);
    memset(r, 0, sizeof *r);
    r->conditioned_index = -1;
}

/* Tokens of text; with `special` the tokenizer's special tokens are included (for a whole
 * prompt: an upper bound of what aios_generate feeds, which leaves BOS out when the text
 * already starts with it). */
static aios_status ntok_ex(aios_generator *g, const char *text, int special, int64_t *n) {
    int32_t *ids = NULL;
    size_t k = 0;
    AIOS_TRY(aios_generator_tokenize(g, text, special, &ids, &k));
    free(ids);
    *n = (int64_t)k;
    return AIOS_OK;
}
static aios_status ntok(aios_generator *g, const char *text, int64_t *n) { return ntok_ex(g, text, 0, n); }
static aios_status ntok_prompt(aios_generator *g, const char *text, int64_t *n) { return ntok_ex(g, text, 1, n); }

/* Bytes at the end of s[0..n) that are an incomplete UTF-8 sequence or a U+FFFD (a byte-level
 * token split a character). */
static size_t bad_tail(const char *s, size_t n) {
    size_t cut = 0;
    for (;;) {
        size_t m = n - cut;
        if (m >= 3 && (unsigned char)s[m - 3] == 0xEF && (unsigned char)s[m - 2] == 0xBF &&
            (unsigned char)s[m - 1] == 0xBD) {
            cut += 3;
            continue;
        }
        size_t k = 1;
        while (k <= 4 && k <= m && ((unsigned char)s[m - k] & 0xC0) == 0x80) k++;
        if (k > m || k > 4) return cut;
        unsigned char c = (unsigned char)s[m - k];
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (need > k) {
            cut += k;
            continue;
        }
        return cut;
    }
}

/* The first k tokens of content, decoded, a broken UTF-8 tail dropped; *kept = tokens used. */
static aios_status cut_content(aios_generator *g, const char *content, int64_t k, char **out, int64_t *kept) {
    int32_t *ids = NULL;
    size_t n = 0;
    *out = NULL;
    AIOS_TRY(aios_generator_tokenize(g, content, 0, &ids, &n));
    if ((int64_t)n < k) k = (int64_t)n;
    char *t = NULL;
    aios_status s = AIOS_OK;
    /* fewer tokens when the last one ends inside a character (its text would be dropped anyway) */
    for (; k > 0; k--) {
        free(t);
        t = NULL;
        if ((s = aios_generator_detokenize(g, ids, (size_t)k, &t)) != AIOS_OK) break;
        size_t len = strlen(t);
        size_t bad = bad_tail(t, len);
        if (bad == 0) break;
        if (bad < len) {
            t[len - bad] = 0;
            break;
        }
    }
    free(ids);
    if (s != AIOS_OK || k == 0) {
        free(t);
        *kept = 0;
        return s;
    }
    *out = t;
    *kept = k;
    return AIOS_OK;
}

/* A note is cut to no fewer tokens than this (else the block ends before it). */
#define MIN_CUT 4

static aios_status append(aios_buf *b, const char *s) { return aios_buf_append(b, s, strlen(s)); }

/* The conversation with the notes block placed (msgs copied into *mo, *no messages; the one
 * carrying the block is an allocation in *owned). */
static aios_status place_block(aios_generator *g, const aios_chat_message *msgs, size_t n, int chat, const char *block,
                               aios_memprompt_place place, aios_chat_message **mo, size_t *no, char **owned, int *index) {
    *mo = NULL;
    *owned = NULL;
    *index = -1;
    aios_chat_message *m = malloc((n + 1) * sizeof *m);
    if (!m) return aios__err(AIOS_ERR_NOMEM, "memory prompt");
    aios_buf b = {0};
    aios_status s = AIOS_OK;
    size_t k = 0;
    size_t blen = strlen(block);
    if (chat && place == AIOS_MEMPROMPT_SYSTEM) {
        int has_sys = n > 0 && !strcmp(msgs[0].role, "system");
        const char *sys = has_sys ? msgs[0].content : aios__generator_default_system(g);
        if (sys && *sys) {
            s = append(&b, sys);
            if (!s) s = append(&b, "\n\n");
        }
        if (!s) s = aios_buf_append(&b, block, blen ? blen - 1 : 0); /* without its last newline */
        if (!s) s = aios_buf_append(&b, "", 1);
        if (s) goto fail;
        m[k].role = "system";
        m[k++].content = (const char *)b.data;
        *index = has_sys ? 0 : -1;
        for (size_t i = has_sys ? 1 : 0; i < n; i++) m[k++] = msgs[i];
    } else {
        size_t last = n; /* the last user message (chat 0: the text) */
        for (size_t i = n; i-- > 0;)
            if (!chat || !strcmp(msgs[i].role, "user")) {
                last = i;
                break;
            }
        if (last == n) {
            s = aios__err(AIOS_ERR_INVALID_ARG, "memory prompt: the conversation has no user message");
            goto fail;
        }
        if ((s = aios_buf_append(&b, block, blen)) || (s = append(&b, "\n")) || (s = append(&b, msgs[last].content)) ||
            (s = aios_buf_append(&b, "", 1)))
            goto fail;
        for (size_t i = 0; i < n; i++) m[k++] = msgs[i];
        m[last].content = (const char *)b.data;
        *index = (int)last;
    }
    *mo = m;
    *no = k;
    *owned = (char *)b.data;
    return AIOS_OK;
fail:
    free(m);
    aios_buf_free(&b);
    return s;
}

static aios_status render(aios_generator *g, const aios_chat_message *msgs, size_t n, int chat, char **out) {
    if (chat) return aios_generator_chat_prompt(g, msgs, n, out);
    *out = strdup(msgs[0].content);
    return *out ? AIOS_OK : aios__err(AIOS_ERR_NOMEM, "memory prompt");
}

/* Picks notes within `budget` tokens and writes the block; fills out->sources. */
static aios_status build_block(aios_generator *g, const aios_memcond_hit *hits, int32_t n_hits, const char *header,
                               int64_t budget, aios_buf *block, aios_memprompt_result *out) {
    int64_t h = 0, nl = 0, dash = 0;
    aios_buf line = {0};
    aios_status s = AIOS_OK;
    if ((s = aios_buf_append(&line, header, strlen(header))) || (s = append(&line, "\n")) ||
        (s = aios_buf_append(&line, "", 1)))
        goto done;
    if ((s = ntok(g, (const char *)line.data, &h)) || (s = ntok(g, "\n", &nl)) || (s = ntok(g, "- ", &dash))) goto done;
    int64_t left = budget - h - nl; /* the header line and the blank line after the block */
    for (int32_t i = 0; i < n_hits && left > 0; i++) {
        if (!hits[i].content || !*hits[i].content) continue;
        line.len = 0;
        if ((s = append(&line, "- ")) || (s = append(&line, hits[i].content)) || (s = append(&line, "\n")) ||
            (s = aios_buf_append(&line, "", 1)))
            goto done;
        int64_t cost = 0, kept = 0;
        if ((s = ntok(g, (const char *)line.data, &cost))) goto done;
        char *content = NULL;
        int cut = 0;
        if (cost <= left) {
            content = strdup(hits[i].content);
            if (!content) {
                s = aios__err(AIOS_ERR_NOMEM, "memory prompt");
                goto done;
            }
            if ((s = ntok(g, content, &kept))) {
                free(content);
                goto done;
            }
            left -= cost;
        } else {
            int64_t k = left - dash - nl;
            if (k < MIN_CUT) break; /* a few tokens of a note say nothing */
            if ((s = cut_content(g, hits[i].content, k, &content, &kept))) goto done;
            if (!content) break;
            cut = 1;
            left = 0;
        }
        if (out->n_sources == 0) {
            if ((s = aios_buf_append(block, header, strlen(header))) || (s = append(block, "\n"))) {
                free(content);
                goto done;
            }
        }
        if ((s = append(block, "- ")) || (s = append(block, content)) || (s = append(block, "\n"))) {
            free(content);
            goto done;
        }
        aios_memprompt_source *src = &out->sources[out->n_sources++];
        snprintf(src->id, sizeof src->id, "%s", hits[i].id ? hits[i].id : "");
        src->score = hits[i].score;
        src->n_tokens = kept;
        src->cut = cut;
        src->content = content;
        if (cut) break;
    }
    s = aios_buf_append(block, "", 1);
done:
    aios_buf_free(&line);
    return s;
}

aios_status aios_generator_memory_prompt(aios_generator *g, const aios_chat_message *msgs, size_t n, int chat,
                                         const aios_memcond_hit *hits, int32_t n_hits, const aios_memprompt_params *pp,
                                         int64_t reserve, aios_memprompt_result *out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "memory prompt: no result");
    memset(out, 0, sizeof *out);
    out->conditioned_index = -1;
    aios_memprompt_params dp = aios_memprompt_default_params();
    const aios_memprompt_params *p = pp ? pp : &dp;
    if (!g || !msgs || n == 0 || (n_hits > 0 && !hits) || n_hits < 0 || reserve < 0 || p->max_tokens < 0 ||
        (p->place != AIOS_MEMPROMPT_USER && p->place != AIOS_MEMPROMPT_SYSTEM))
        return aios__err(AIOS_ERR_INVALID_ARG, "memory prompt: bad arguments");
    if (!chat && (n != 1 || !msgs[0].content)) return aios__err(AIOS_ERR_INVALID_ARG, "memory prompt: one text prompt");
    const char *header = p->header ? p->header : AIOS_MEMPROMPT_HEADER;
    aios_status s = AIOS_OK;
    char *plain = NULL, *cond = NULL, *owned = NULL;
    aios_chat_message *mo = NULL;
    aios_buf block = {0};
    int64_t n_plain = 0;
    if ((s = render(g, msgs, n, chat, &plain)) || (s = ntok_prompt(g, plain, &n_plain))) goto fail;
    int64_t budget = p->max_tokens;
    int64_t room = aios_generator_n_ctx(g) - reserve - n_plain;
    if (budget > room) budget = room;
    if (n_hits > 0 && budget > 0) {
        out->sources = calloc((size_t)n_hits, sizeof *out->sources);
        if (!out->sources) {
            s = aios__err(AIOS_ERR_NOMEM, "memory prompt");
            goto fail;
        }
    }
    /* build, measure, shrink while the rendered notes cost more than the budget */
    for (int attempt = 0; budget > 0 && n_hits > 0 && attempt < 8; attempt++) {
        for (int32_t i = 0; i < out->n_sources; i++) free(out->sources[i].content);
        out->n_sources = 0;
        block.len = 0;
        if ((s = build_block(g, hits, n_hits, header, budget, &block, out))) goto fail;
        if (out->n_sources == 0) break;
        size_t no = 0;
        int index = -1;
        free(mo);
        free(owned);
        mo = NULL;
        owned = NULL;
        if ((s = place_block(g, msgs, n, chat, (const char *)block.data, p->place, &mo, &no, &owned, &index))) goto fail;
        free(cond);
        cond = NULL;
        int64_t n_cond = 0;
        if ((s = render(g, mo, no, chat, &cond)) || (s = ntok_prompt(g, cond, &n_cond))) goto fail;
        int64_t added = n_cond - n_plain;
        if (added <= budget) {
            out->prompt = cond;
            out->conditioned = owned;
            out->conditioned_index = index;
            out->n_prompt_tokens = n_cond;
            out->n_added_tokens = added;
            cond = NULL;
            owned = NULL;
            break;
        }
        budget -= added - budget;
    }
    if (!out->prompt) { /* no note placed: the prompt is the unconditioned one */
        for (int32_t i = 0; i < out->n_sources; i++) free(out->sources[i].content);
        out->n_sources = 0;
        out->prompt = plain;
        out->n_prompt_tokens = n_plain;
        plain = NULL;
    }
    free(plain);
    free(cond);
    free(owned);
    free(mo);
    aios_buf_free(&block);
    return AIOS_OK;
fail:
    free(plain);
    free(cond);
    free(owned);
    free(mo);
    aios_buf_free(&block);
    aios_memprompt_result_free(out);
    return s;
}
