/* fuzz_llama2c.c — llama2.c checkpoint importer, tokenizer.bin reader and decoder config.json
 * parser on arbitrary bytes.  The first byte picks the reader; a checkpoint that imports is also
 * bound to a decoder and run for two tokens (shapes from the hostile header). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/decoder.h"
#include "model/llama2c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/aios-fuzz-llama2c-%d.bin", (int)getpid());
    if (size < 1) return 0;
    int which = data[0] % 3;
    data++, size--;
    if (which == 2) {
        aios_decoder_config c;
        (void)aios_decoder_config_parse((const char *)data, size, &c);
        return 0;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    if (which == 0) {
        aios_llama2c *m = NULL;
        if (aios_llama2c_open(path, &m) == AIOS_OK) {
            const aios_decoder_config *c = aios_llama2c_config(m);
            aios_decoder *d = NULL;
            if (c->n_embd * c->n_vocab < (1 << 20) && aios_decoder_create(c, aios_llama2c_lookup, m, &d) == AIOS_OK) {
                aios_kv_cache *kv = NULL;
                float *lg = malloc((size_t)c->n_vocab * sizeof *lg);
                int32_t t[2] = {0, (int32_t)(c->n_vocab - 1)};
                if (lg && aios_kv_cache_create(d, 4, &kv) == AIOS_OK) (void)aios_decoder_forward(d, kv, t, 2, NULL, lg);
                aios_kv_cache_free(kv);
                free(lg);
            }
            aios_decoder_free(d);
        }
        aios_llama2c_free(m);
    } else {
        aios_llama2c_tok *t = NULL;
        if (aios_llama2c_tok_open(path, 64, &t) == AIOS_OK) {
            int32_t ids[64];
            size_t n = 0;
            (void)aios_llama2c_tok_encode(t, "a b\xc3\xa9\xff", 1, ids, &n);
            char buf[32];
            for (size_t i = 0; i < n; i++) (void)aios_llama2c_tok_decode(t, i ? ids[i - 1] : 1, ids[i], buf, sizeof buf);
        }
        aios_llama2c_tok_free(t);
    }
    return 0;
}
