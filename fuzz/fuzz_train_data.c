/* fuzz_train_data.c — the JSONL data parser of `aios train` ({"q","a"}, {"messages"}, {"text"}
 * lines through SmolLM2's tokenizer and chat template) on arbitrary bytes.  Every example it
 * accepts must be sane: 1 <= n <= max_len, ids inside the vocabulary, each label -100 or the
 * id at its position, and at least one label after the first position (something to learn).
 * The model (the tiny SmolLM2-architecture fixture, real tokenizer) loads once, from
 * $AIOS_SHARED (default ../shared). */
#include <stdio.h>
#include <stdlib.h>

#include "aios.h"
#include "train/train.h"

static aios_generator *g_gen;
static int64_t g_vocab;
enum { MAX_LEN = 48 };

static int check(void *user, const int32_t *ids, const int32_t *labels, int64_t n) {
    (void)user;
    if (n < 1 || n > MAX_LEN) return 1;
    int any = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= g_vocab) return 1;
        if (labels[i] != -100 && labels[i] != ids[i]) return 1;
        any |= i > 0 && labels[i] != -100;
    }
    return !any;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_gen) {
        const char *root = getenv("AIOS_SHARED");
        char p[4096];
        snprintf(p, sizeof p, "%s/fixtures/models-lm/smollm2-tiny", root && *root ? root : "../shared");
        aios_generator_params gp = aios_generator_default_params();
        gp.n_ctx = 16;
        if (aios_generator_open(p, &gp, &g_gen) != AIOS_OK) {
            fprintf(stderr, "fuzz_train_data: cannot open %s: %s\n", p, aios_last_error());
            abort(); /* nothing to fuzz: fail loudly */
        }
        g_vocab = aios_generator_n_vocab(g_gen);
    }
    int64_t n = 0;
    aios_status s = aios__train_parse_jsonl(g_gen, (const char *)data, size, MAX_LEN, check, NULL, &n);
    if (s == AIOS_ERR_INTERNAL) abort(); /* an accepted example broke an invariant */
    if (s == AIOS_OK && n < 1) abort();  /* success means at least one example */
    return 0;
}
