/* test_binding.c — the entry points for language bindings (src/binding/binding.c): aligned
 * buffers and aios_free, the kernel tier, and aios_encoder_embed as a store's embedder (its
 * vectors equal aios_encode's, a dimension mismatch is AIOS_ERR_SHAPE). */
#include <stdint.h>

#include "test.h"

static void test_alloc_free(void) {
    for (size_t n = 0; n < 5000; n += 333) {
        unsigned char *p = aios_alloc(n);
        CHECK(p != NULL);
        if (!p) return;
        CHECK(((uintptr_t)p & 63) == 0);
        memset(p, 0xAB, n); /* every byte writable (ASan checks the bounds) */
        aios_free(p);
    }
    aios_free(NULL);
}

static void test_kernel_tier(void) {
    const char *t = aios_kernel_tier();
    CHECK(t && (!strcmp(t, "ref") || !strcmp(t, "avx2") || !strcmp(t, "avx512")));
}

static void test_encoder_embed(void) {
    const char *model = aios_test_shared("fixtures/models/bert-tiny");
    if (access(model, F_OK) != 0) SKIP("%s missing", model);
    aios_encoder *enc = NULL;
    CHECK_OK(aios_encoder_open(model, NULL, &enc));
    if (!enc) return;
    int32_t dim = (int32_t)aios_encoder_dim(enc);
    float a[1024], b[1024];
    CHECK(dim > 0 && dim <= 1024);
    CHECK_OK(aios_encode(enc, "the cat sat on the mat", 22, a));
    CHECK_OK(aios_encoder_embed(enc, "the cat sat on the mat", b, dim));
    CHECK(memcmp(a, b, sizeof(float) * (size_t)dim) == 0);
    CHECK(aios_encoder_embed(enc, "x", b, dim + 1) == AIOS_ERR_SHAPE);
    CHECK(strstr(aios_last_error(), "embed") != NULL);
    CHECK(aios_encoder_embed(NULL, "x", b, dim) == AIOS_ERR_INVALID_ARG);
    CHECK(aios_encoder_embed(enc, NULL, b, dim) == AIOS_ERR_INVALID_ARG);

    /* as a store's embedder: add_text stores what aios_encode gives */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/binding-store", aios_test_tmpdir());
    aios_store_params sp = aios_store_default_params();
    sp.create = 1;
    sp.dim = dim;
    sp.sync = 0;
    sp.embed = aios_encoder_embed;
    sp.embed_user = enc;
    aios_store *st = NULL;
    CHECK_OK(aios_store_open(dir, &sp, &st));
    if (st) {
        aios_memory m = {0};
        m.content = "the cat sat on the mat";
        m.timestamp_us = AIOS_TIMESTAMP_NOW;
        char id[AIOS_MEMORY_ID_MAX];
        CHECK_OK(aios_store_add_text(st, &m, id));
        aios_memory got;
        CHECK_OK(aios_store_get(st, id, &got));
        CHECK(got.embedding && got.dim == dim && memcmp(got.embedding, a, sizeof(float) * (size_t)dim) == 0);
        aios_store_close(st);
    }
    aios_encoder_free(enc);
}

int main(void) {
    RUN(test_alloc_free);
    RUN(test_kernel_tier);
    RUN(test_encoder_embed);
    TEST_MAIN_END();
}
