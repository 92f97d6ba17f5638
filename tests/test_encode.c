/* test_encode.c — the encode API on ../shared/fixtures/models/bert-tiny: embeddings from text
 * and from the golden token ids against the transformers goldens (cosine >= 0.99999), order
 * independence of length-sorted batching, pooling overrides, similarity, errors. */
#include <math.h>

#include "format/safetensors.h"
#include "test.h"

static const char *SENT[8] = {"A man is playing a guitar.", "The cat sits on the mat.", "Spring breeze, flowers bloom.",
                              "hello", "Quantum computing uses qubits.", "I remember my trip to Japan last year.", "",
                              "na\xc3\xafve caf\xc3\xa9"};

static double cosf_(const float *a, const float *b, int n) { return aios_similarity(a, b, n); }

static void test_encode_bert_tiny(void) {
    aios_safetensors *g = NULL;
    if (aios_safetensors_open(aios_test_shared("fixtures/models/bert-tiny/golden.safetensors"), &g) != AIOS_OK)
        SKIP("bert-tiny goldens unavailable");
    const float *emb = aios_safetensors_find(g, "embeddings")->data, *cls = aios_safetensors_find(g, "cls_pooled")->data;
    const aios_tensor *idt = aios_safetensors_find(g, "input_ids"), *amt = aios_safetensors_find(g, "attention_mask");
    aios_encoder_params p = aios_encoder_default_params();
    p.pooling = AIOS_POOL_MEAN;
    p.normalize = 1;
    p.batch_size = 3; /* several batches, sorted by length */
    aios_encoder *e = NULL;
    CHECK_OK(aios_encoder_open(aios_test_shared("fixtures/models/bert-tiny"), &p, &e));
    if (!e) {
        aios_safetensors_close(g);
        return;
    }
    CHECK(aios_encoder_dim(e) == 32 && aios_encoder_max_length(e) == 512);
    float out[8 * 32], one[32];
    CHECK_OK(aios_encode_batch(e, SENT, NULL, 8, out, NULL, NULL));
    for (int i = 0; i < 8; i++) CHECKF(cosf_(out + i * 32, emb + i * 32, 32) >= 0.99999, "sentence %d", i);
    /* from the golden ids (unpadded) */
    const int32_t *ids = idt->data, *am = amt->data;
    int64_t L = idt->shape[1];
    const int32_t *rows[8];
    size_t lens[8];
    for (int i = 0; i < 8; i++) {
        rows[i] = ids + i * L;
        lens[i] = 0;
        for (int64_t t = 0; t < L; t++) lens[i] += am[i * L + t] != 0;
    }
    float out2[8 * 32];
    CHECK_OK(aios_encode_ids(e, rows, lens, 8, out2, NULL, NULL));
    for (int i = 0; i < 8; i++) CHECKF(cosf_(out2 + i * 32, emb + i * 32, 32) >= 0.99999, "ids %d", i);
    /* one at a time equals the batch */
    for (int i = 0; i < 8; i++) {
        CHECK_OK(aios_encode(e, SENT[i], strlen(SENT[i]), one));
        CHECK(cosf_(one, out + i * 32, 32) > 0.999999);
        double nrm = 0;
        for (int k = 0; k < 32; k++) nrm += (double)one[k] * one[k];
        CHECK(fabs(nrm - 1) < 1e-5);
    }
    aios_encoder_free(e);
    /* CLS pooling without normalization: the golden CLS rows */
    p.pooling = AIOS_POOL_CLS;
    p.normalize = 0;
    CHECK_OK(aios_encoder_open(aios_test_shared("fixtures/models/bert-tiny"), &p, &e));
    CHECK_OK(aios_encode_batch(e, SENT, NULL, 8, out, NULL, NULL));
    CHECK(t_rel_err(out, cls, 8 * 32) < 1e-4);
    /* errors */
    size_t zero = 0;
    const int32_t *none[1] = {ids};
    CHECK(aios_encode_ids(e, none, &zero, 1, out, NULL, NULL) == AIOS_ERR_INVALID_ARG);
    int32_t bad[3] = {101, 99999, 102};
    const int32_t *badp[1] = {bad};
    size_t three = 3;
    CHECK(aios_encode_ids(e, badp, &three, 1, out, NULL, NULL) == AIOS_ERR_RANGE);
    aios_encoder_free(e);
    aios_encoder_free(NULL);
    aios_safetensors_close(g);
}

static int cancel_after_first(void *user, size_t done, size_t total) {
    (*(int *)user)++;
    return done < total;
}

static void test_encode_progress_and_errors(void) {
    aios_encoder_params p = aios_encoder_default_params();
    p.batch_size = 2;
    aios_encoder *e = NULL;
    if (aios_encoder_open(aios_test_shared("fixtures/models/bert-tiny"), &p, &e) != AIOS_OK) SKIP("bert-tiny unavailable");
    float out[8 * 32];
    int calls = 0;
    CHECK(aios_encode_batch(e, SENT, NULL, 8, out, cancel_after_first, &calls) == AIOS_ERR_CANCELLED);
    CHECK(calls == 1);
    aios_encoder_free(e);
    CHECK(aios_encoder_open("/nonexistent/model", NULL, &e) != AIOS_OK && e == NULL);
    /* a decoder is not an encoder */
    aios_status s = aios_encoder_open(aios_test_shared("fixtures/models/qwen2-tiny"), NULL, &e);
    CHECK(s == AIOS_ERR_UNSUPPORTED && strstr(aios_last_error(), "BERT"));
    float a[3] = {1, 0, 0}, b[3] = {0, 2, 0}, z[3] = {0, 0, 0};
    CHECK(aios_similarity(a, a, 3) > 0.99999f && fabsf(aios_similarity(a, b, 3)) < 1e-7f && aios_similarity(a, z, 3) == 0);
}

int main(void) {
    RUN(test_encode_bert_tiny);
    RUN(test_encode_progress_and_errors);
    TEST_MAIN_END();
}
