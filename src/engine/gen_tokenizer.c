/*
 * gen_tokenizer.c — adapter from the generator to the tokenizer module (tokenizer.json).
 * Encoding uses the tokenizer's own post-processor for special tokens (so BOS appears exactly
 * where `tokenizers` puts it); decoding keeps special tokens, as transformers' decode does by
 * default (the fixtures' greedy_text was made that way).
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/generate_internal.h"

struct aios__gen_tokenizer {
    aios_tokenizer *tok;
};

aios_status aios__gen_tok_open(const char *path, aios__gen_tokenizer **out) {
    *out = NULL;
    aios__gen_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return aios__err(AIOS_ERR_NOMEM, "generate: tokenizer");
    aios_status s = aios_tokenizer_load(path, &t->tok);
    if (s) {
        free(t);
        return s;
    }
    *out = t;
    return AIOS_OK;
}

void aios__gen_tok_free(aios__gen_tokenizer *t) {
    if (!t) return;
    aios_tokenizer_free(t->tok);
    free(t);
}

aios_status aios__gen_tok_encode(aios__gen_tokenizer *t, const char *text, int add_special, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    aios_tok_params p = aios_tokenizer_default_params(t->tok);
    p.add_special_tokens = add_special != 0;
    p.max_length = 0; /* generation never truncates or pads a prompt silently */
    p.pad_strategy = AIOS_PAD_NONE;
    aios_encoding *e = NULL;
    AIOS_TRY(aios_tokenizer_encode(t->tok, text, strlen(text), &p, &e));
    int32_t *v = malloc((e->n ? e->n : 1) * sizeof *v);
    if (!v) {
        aios_encoding_free(e);
        return aios__err(AIOS_ERR_NOMEM, "generate: tokenize");
    }
    memcpy(v, e->ids, e->n * sizeof *v);
    *n = e->n;
    *ids = v;
    aios_encoding_free(e);
    return AIOS_OK;
}

aios_status aios__gen_tok_decode(aios__gen_tokenizer *t, const int32_t *ids, size_t n, char **text) {
    size_t len;
    return aios_tokenizer_decode(t->tok, ids, n, 0, text, &len);
}

int32_t aios__gen_tok_token_id(aios__gen_tokenizer *t, const char *token) {
    return aios_tokenizer_token_to_id(t->tok, token);
}

aios_status aios__gen_tok_id_to_token(aios__gen_tokenizer *t, int32_t id, char **out) {
    const char *s = aios_tokenizer_id_to_token(t->tok, id);
    *out = s ? strdup(s) : NULL;
    return s ? AIOS_OK : aios__err(AIOS_ERR_NOT_FOUND, "generate: no token for id %d", id);
}
