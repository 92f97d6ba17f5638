/* fuzz_tokenizer_load.c — mutated tokenizer.json files through the loader; whatever loads
 * must then encode and decode a few texts without crashing.  Seeds: small real-ish files in
 * fuzz/corpus/fuzz_tokenizer_load/ (one per model type and most components). */
#include <stdlib.h>
#include <string.h>

#include "aios.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    aios_tokenizer *t = NULL;
    if (aios_tokenizer_load_json((const char *)data, size, NULL, 0, &t) != AIOS_OK) {
        if (t) abort();
        return 0;
    }
    static const char *texts[] = {"Hello, world! naïve café 123", "", " \t\n", "日本語 😀 <s> [CLS]", "aaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        aios_encoding *e = NULL;
        if (aios_tokenizer_encode(t, texts[i], strlen(texts[i]), NULL, &e) == AIOS_OK) {
            char *s = NULL;
            size_t n;
            if (aios_tokenizer_decode(t, e->ids, e->n, i & 1, &s, &n) == AIOS_OK) free(s);
            aios_encoding_free(e);
        }
    }
    (void)aios_tokenizer_vocab_size(t);
    (void)aios_tokenizer_id_to_token(t, 0);
    (void)aios_tokenizer_token_to_id(t, "a");
    aios_tokenizer_free(t);
    return 0;
}
