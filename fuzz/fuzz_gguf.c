/* fuzz_gguf.c — the GGUF reader on arbitrary bytes: parse, walk every metadata value (nested
 * arrays, every string byte, every numeric element), find every tensor by name and touch its
 * first and last byte, then translate the tokenizer metadata (when there is any) and load it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "tokenizer/tok_internal.h"

static volatile uint64_t sink;
static volatile double fsink; /* a negative or huge double has no uint64_t value (UB to convert) */

static void walk(const aios_gguf_value *v, int depth) {
    if (depth > 16) abort(); /* the reader promised a depth limit */
    if (v->type == AIOS_GGUF_STRING) {
        for (uint64_t i = 0; i < v->v.str.n; i++) sink += (uint8_t)v->v.str.s[i];
    } else if (v->type == AIOS_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            if (v->v.arr.type == AIOS_GGUF_STRING) {
                const aios_gguf_str *s = &v->v.arr.strs[i];
                if (s->n) sink += (uint8_t)s->s[0] + (uint8_t)s->s[s->n - 1];
            } else if (v->v.arr.type == AIOS_GGUF_ARRAY) {
                walk(&v->v.arr.vals[i], depth + 1);
            } else {
                sink += (uint64_t)aios_gguf_arr_int(v, i);
                fsink += aios_gguf_arr_f64(v, i);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    aios_gguf *g = NULL;
    if (aios_gguf_parse(data, size, "fuzz", &g) != AIOS_OK) return 0;
    for (int64_t i = 0; i < aios_gguf_kv_count(g); i++) {
        if (aios_gguf_get(g, aios_gguf_kv_key(g, i)) != aios_gguf_kv_value(g, i)) abort(); /* keys are unique */
        walk(aios_gguf_kv_value(g, i), 0);
    }
    for (int64_t i = 0; i < aios_gguf_tensor_count(g); i++) {
        const aios_gguf_tensor *t = aios_gguf_tensor_at(g, i);
        if (aios_gguf_find_tensor(g, t->name) != t) abort();
        if (t->nbytes) sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    if (aios_gguf_get(g, "tokenizer.ggml.tokens")) {
        char *json = NULL, *cfg = NULL;
        if (aios__tokenizer_gguf_json(g, &json, &cfg) == AIOS_OK) {
            aios_tokenizer *tok = NULL;
            if (aios_tokenizer_load_json(json, strlen(json), cfg, strlen(cfg), &tok) == AIOS_OK) {
                aios_encoding *e = NULL;
                if (aios_tokenizer_encode(tok, "Hello world 123", 15, NULL, &e) == AIOS_OK) aios_encoding_free(e);
                aios_tokenizer_free(tok);
            }
        }
        free(json);
        free(cfg);
    }
    aios_gguf_close(g);
    return 0;
}
