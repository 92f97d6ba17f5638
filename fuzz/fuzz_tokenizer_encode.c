/* fuzz_tokenizer_encode.c — random bytes through each of the six fixture tokenizers.
 *
 * The first byte picks the tokenizer and options (special tokens, pair, truncation,
 * padding, invalid-UTF-8 mode); the rest is the text (split in two for pairs).  Every
 * encoding is checked for internal consistency and decoded back (with and without special
 * tokens).  Tokenizers load once, from $AIOS_SHARED (default ../shared). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aios.h"

static aios_tokenizer *g_tok[6];
static int g_n;

static void load_all(void) {
    static const char *paths[] = {"models/bert-base-uncased/tokenizer.json", "models/all-MiniLM-L6-v2/tokenizer.json",
                                  "fixtures/tokenizers/llama2-tokenizer.tokenizer.json",
                                  "models/smollm2-135m-instruct/tokenizer.json",
                                  "fixtures/tokenizers/qwen2.5-0.5b-instruct.tokenizer.json", "models/t5-small/tokenizer.json"};
    const char *root = getenv("AIOS_SHARED");
    if (!root || !*root) root = "../shared";
    for (int i = 0; i < 6; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", root, paths[i]);
        if (aios_tokenizer_load(p, &g_tok[g_n]) == AIOS_OK) g_n++;
        else fprintf(stderr, "fuzz_tokenizer_encode: cannot load %s: %s\n", p, aios_last_error());
    }
    if (g_n == 0) abort(); /* nothing to fuzz: make the run fail loudly */
}

static void check(const aios_tokenizer *t, const aios_encoding *e, size_t nchars_max) {
    for (size_t i = 0; i < e->n; i++) {
        if (e->offsets[i][0] > e->offsets[i][1] || e->offsets[i][1] > nchars_max) abort();
        if (!e->tokens[i] || (e->attention_mask[i] && e->ids[i] < 0)) abort();
    }
    for (int skip = 0; skip < 2; skip++) {
        char *s = NULL;
        size_t n;
        if (aios_tokenizer_decode(t, e->ids, e->n, skip, &s, &n) != AIOS_OK) abort();
        if (strlen(s) > n) abort();
        free(s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_n) load_all();
    if (size < 1) return 0;
    uint8_t ctl = data[0];
    const aios_tokenizer *t = g_tok[(ctl & 7) % g_n];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    aios_tok_params p = aios_tokenizer_default_params(t);
    p.add_special_tokens = (ctl >> 3) & 1;
    p.invalid_utf8 = (ctl >> 7) & 1 ? AIOS_TOK_UTF8_ERROR : AIOS_TOK_UTF8_REPLACE;
    if ((ctl >> 5) & 1) p.max_length = 1 + len % 17;
    p.encode_special_tokens = (len >> 1) & 1;
    if ((ctl >> 6) & 1) {
        p.pad_strategy = AIOS_PAD_FIXED;
        p.pad_length = len % 23;
        p.pad_left = len & 1;
    }
    aios_encoding *e = NULL;
    aios_status st;
    if ((ctl >> 4) & 1) {
        size_t half = len / 2;
        st = aios_tokenizer_encode_pair(t, text, half, text + half, len - half, &p, &e);
    } else {
        st = aios_tokenizer_encode(t, text, len, &p, &e);
    }
    if (st == AIOS_OK) {
        check(t, e, len * 2 + 64);
        aios_encoding_free(e);
    } else if (e) {
        abort(); /* failure must leave *out NULL */
    }
    return 0;
}
