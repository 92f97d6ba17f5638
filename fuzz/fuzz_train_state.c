/* fuzz_train_state.c — the trainer_state.json parser of `aios train --resume` on arbitrary
 * bytes.  What it accepts must be in range (step <= total_steps, cursor <= n_batches <=
 * examples, counts positive) and survive our writer unchanged: parse(write(parse(x))) gives
 * the same state, field for field, and write() the same text twice. */
#include <stdlib.h>
#include <string.h>

#include "aios.h"
#include "train/train.h"

static int same(const aios__train_state *a, const aios__train_state *b) {
    return a->step == b->step && a->total_steps == b->total_steps && a->lr == b->lr && a->beta1 == b->beta1 &&
           a->beta2 == b->beta2 && a->eps == b->eps && a->weight_decay == b->weight_decay && a->clip == b->clip && a->dropout == b->dropout &&
           a->cosine == b->cosine && a->warmup == b->warmup && a->batch == b->batch && a->accum == b->accum &&
           a->max_len == b->max_len && a->seed == b->seed && a->examples == b->examples &&
           a->n_batches == b->n_batches && a->n_params == b->n_params && a->data_hash == b->data_hash &&
           a->adapter_hash == b->adapter_hash && a->shuffle_rng == b->shuffle_rng &&
           a->dropout_rng == b->dropout_rng && a->cursor == b->cursor && a->label_tokens == b->label_tokens &&
           a->first_loss == b->first_loss;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    aios__train_state a, b;
    if (aios__train_state_parse((const char *)data, size, "fuzz", &a) != AIOS_OK) return 0;
    if (a.step > a.total_steps || a.step < 0 || a.cursor > a.n_batches || a.n_batches > a.examples || a.n_batches < 1 ||
        a.n_params < 1 || a.batch < 1 || a.accum < 1)
        abort();
    char *t1 = aios__train_state_json(&a);
    if (!t1) abort();
    if (aios__train_state_parse(t1, strlen(t1), "fuzz", &b) != AIOS_OK || !same(&a, &b)) abort();
    char *t2 = aios__train_state_json(&b);
    if (!t2 || strcmp(t1, t2)) abort();
    free(t1), free(t2);
    return 0;
}
