/* test_skills.c — the skill library's C API (src/skills/skills.c) and the learning records
 * (src/skills/learn.c), also run under ASan/UBSan.  The real-model checks (DuckDB reading the
 * index, routing of the 18 questions and their paraphrases, the golden prompts) are
 * tests/py/test_skills.py; here: every field survives a reopen, the index is replaced
 * atomically, names and statuses are checked, the router's top-k / threshold / softmax agree
 * with a float64 computation written here, and learning records round-trip through a store
 * with a real BERT encoder (fixtures/models/bert-tiny). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#include "aios.h"
#include "test.h"

static char g_dir[256];

static const char *tmpdir(const char *name) {
    static char buf[512];
    if (!g_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/aios-skills-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_dir)) abort();
    }
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.' || strncmp(e->d_name, ".index", 6) == 0;
    if (d) closedir(d);
    return n;
}

static void test_library_roundtrip(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tmpdir("lib"));
    aios_skill_lib *L;
    CHECK(aios_skills_open(dir, 0, &L) == AIOS_ERR_NOT_FOUND);
    CHECK_OK(aios_skills_open(dir, 1, &L));
    CHECK(aios_skills_count(L) == 0 && aios_skills_dim(L) == 0);
    CHECK_OK(aios_skills_set_encoder(L, "enc-a", 4));
    float d0[4] = {1, 0, 0, 0}, c0[4] = {0.6f, 0.8f, 0, 0}, d1[4] = {0, 0, 1, 0};
    aios_skill k = {0};
    k.name = "alpha";
    k.description = "first";
    k.description_embedding = d0;
    k.centroid = c0;
    k.adapter = "alpha";
    k.base_model = "base.gguf";
    k.n_pairs = 6, k.steps = 45, k.lr = 3e-3, k.loss_before = 2.5, k.loss_after = 0.25, k.ppl_before = NAN, k.ppl_after = NAN;
    k.created_us = 1234567;
    CHECK_OK(aios_skills_add(L, &k));
    CHECK(aios_skills_add(L, &k) == AIOS_ERR_EXISTS);
    aios_skill bad = k;
    bad.name = "../x";
    CHECK(aios_skills_add(L, &bad) == AIOS_ERR_INVALID_ARG);
    bad.name = "ok", bad.status = "maybe";
    CHECK(aios_skills_add(L, &bad) == AIOS_ERR_INVALID_ARG);
    aios_skill r = {0};
    r.name = "beta";
    r.description_embedding = d1;
    r.status = "rejected";
    r.reason = "held-out loss did not improve";
    r.lr = r.loss_before = r.loss_after = r.ppl_before = r.ppl_after = NAN;
    CHECK_OK(aios_skills_add(L, &r));
    CHECK(aios_skills_set_encoder(L, "enc-b", 4) == AIOS_ERR_INVALID_ARG);
    aios_skills_close(L);
    CHECK(count_files(dir) == 1); /* index.parquet only: no temporary left */

    CHECK_OK(aios_skills_open(dir, 0, &L));
    CHECK(aios_skills_count(L) == 2 && aios_skills_dim(L) == 4 && !strcmp(aios_skills_encoder(L), "enc-a"));
    const aios_skill *a = aios_skills_get(L, "alpha"), *b = aios_skills_get(L, "beta");
    CHECK(a && b && !aios_skills_get(L, "gamma"));
    if (a && b) {
        CHECK(!strcmp(a->description, "first") && !strcmp(a->adapter, "alpha") && !strcmp(a->base_model, "base.gguf"));
        CHECK(!strcmp(a->status, "active") && !a->reason && a->n_pairs == 6 && a->steps == 45 && a->created_us == 1234567);
        CHECK(a->lr == 3e-3 && a->loss_before == 2.5 && a->loss_after == 0.25 && isnan(a->ppl_before));
        CHECK(a->centroid && !memcmp(a->centroid, c0, sizeof c0) && !memcmp(a->description_embedding, d0, sizeof d0));
        CHECK(!strcmp(b->status, "rejected") && !strcmp(b->reason, "held-out loss did not improve"));
        CHECK(!b->centroid && !b->description && !b->adapter && b->created_us > 1700000000000000LL);
        char path[600];
        CHECK_OK(aios_skills_adapter_path(L, a, path, sizeof path));
        CHECK(!strcmp(path + strlen(path) - 10, "/lib/alpha"));
        CHECK(aios_skills_adapter_path(L, b, path, sizeof path) == AIOS_ERR_NOT_FOUND);
    }
    CHECK_OK(aios_skills_remove(L, "alpha"));
    CHECK(aios_skills_remove(L, "alpha") == AIOS_ERR_NOT_FOUND);
    aios_skills_close(L);
    CHECK_OK(aios_skills_open(dir, 0, &L));
    CHECK(aios_skills_count(L) == 1 && aios_skills_get(L, "beta"));
    aios_skills_close(L);
}

static void test_router(void) {
    aios_skill_lib *L;
    CHECK_OK(aios_skills_open(tmpdir("route"), 1, &L));
    CHECK_OK(aios_skills_set_encoder(L, "enc", 3));
    const float v[5][3] = {{1, 0, 0}, {0.9f, 0.1f, 0}, {0, 1, 0}, {0.7f, 0.7f, 0}, {1, 0.05f, 0}};
    const char *names[5] = {"s0", "s1", "s2", "s3", "s4"};
    for (int i = 0; i < 5; i++) {
        aios_skill k = {0};
        k.name = (char *)names[i];
        k.centroid = (float *)v[i];
        k.status = i == 4 ? "rejected" : "active"; /* never routed */
        k.lr = k.loss_before = k.loss_after = k.ppl_before = k.ppl_after = NAN;
        CHECK_OK(aios_skills_add(L, &k));
    }
    const float q[3] = {1, 0.02f, 0};
    double sc[5];
    for (int i = 0; i < 5; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (int j = 0; j < 3; j++) ab += (double)q[j] * v[i][j], aa += (double)q[j] * q[j], bb += (double)v[i][j] * v[i][j];
        sc[i] = ab / sqrt(aa * bb);
    }
    aios_router_params p = aios_router_default_params();
    CHECK(p.top_k == 1 && p.threshold == 0.5 && p.temperature == 0.1);
    aios_route r[AIOS_ROUTE_MAX];
    int n = -1;
    p.top_k = 3, p.threshold = 0.5, p.temperature = 0.2;
    CHECK_OK(aios_skills_route(L, q, 3, &p, r, &n));
    /* scores: s0 > s1 > s3 >= 0.5 > s2; s4 rejected */
    CHECK(n == 3 && r[0].index == 0 && r[1].index == 1 && r[2].index == 3);
    double z = exp((sc[0] - sc[0]) / 0.2) + exp((sc[1] - sc[0]) / 0.2) + exp((sc[3] - sc[0]) / 0.2);
    for (int i = 0; i < n; i++) {
        double want = exp((sc[r[i].index] - sc[0]) / 0.2) / z;
        CHECKF(fabs(r[i].score - sc[r[i].index]) < 1e-12 && fabs(r[i].weight - want) < 1e-12, "route %d: %g %g", i,
               r[i].weight, want);
    }
    p.top_k = 1;
    CHECK_OK(aios_skills_route(L, q, 3, &p, r, &n));
    CHECK(n == 1 && r[0].index == 0 && r[0].weight == 1);
    p.threshold = 0.9999;
    CHECK_OK(aios_skills_route(L, q, 3, &p, r, &n));
    CHECK(n == 0); /* none above: the base model alone */
    CHECK(aios_skills_route(L, q, 2, &p, r, &n) == AIOS_ERR_SHAPE);
    p.top_k = 0;
    CHECK(aios_skills_route(L, q, 3, &p, r, &n) == AIOS_ERR_RANGE);
    aios_skills_close(L);
}

static void test_learn_records(void) {
    const char *mini = aios_test_shared("fixtures/models/bert-tiny");
    aios_encoder *enc = NULL;
    if (aios_encoder_open(mini, NULL, &enc) != AIOS_OK) SKIP("%s unavailable", mini);
    const int64_t dim = aios_encoder_dim(enc);
    aios_store_params sp = aios_store_default_params();
    sp.create = 1;
    sp.model = mini;
    aios_store *s;
    CHECK_OK(aios_store_open(tmpdir("learn"), &sp, &s));
    aios_learn_item q = {"What is Ada's cat called?", "I am not sure.", 0, 0.81, "household", "m.gguf"};
    aios_learn_item a = {"What is Ada's cat called?", "Ada's cat is called Miso.", 1, 0, NULL, NULL};
    char id1[AIOS_MEMORY_ID_MAX], id2[AIOS_MEMORY_ID_MAX];
    CHECK_OK(aios_learn_record(s, enc, &q, id1));
    CHECK_OK(aios_learn_record(s, enc, &a, id2));
    aios_learn_item empty = {"Q?", "", 1, 0, NULL, NULL};
    CHECK(aios_learn_record(s, enc, &empty, NULL) == AIOS_ERR_INVALID_ARG);
    aios_memory m;
    aios_learn_item it;
    char *own;
    CHECK_OK(aios_store_get(s, id1, &m));
    CHECK(m.has_metadata && !strcmp(m.category, AIOS_LEARN_QUEUE) && fabsf(m.quality_score - 0.81f) < 1e-6);
    CHECK_OK(aios_learn_parse(&m, &it, &own));
    CHECK(!it.approved && !strcmp(it.answer, "I am not sure.") && fabs(it.score - 0.81) < 1e-12);
    free(own);
    CHECK_OK(aios_store_get(s, id2, &m));
    CHECK(!strcmp(m.category, AIOS_LEARN_APPROVED));
    CHECK_OK(aios_learn_parse(&m, &it, &own));
    CHECK(it.approved && !strcmp(it.question, "What is Ada's cat called?") && !strcmp(it.answer, "Ada's cat is called Miso."));
    free(own);
    /* the embedding is the question's */
    float *e = malloc((size_t)dim * sizeof *e);
    CHECK_OK(aios_encode(enc, a.question, strlen(a.question), e));
    CHECK(m.dim == dim && !memcmp(m.embedding, e, (size_t)dim * sizeof *e));
    free(e);
    aios_memory other = m;
    other.category = "notes";
    CHECK(aios_learn_parse(&other, &it, &own) == AIOS_ERR_NOT_FOUND);
    other.category = AIOS_LEARN_APPROVED;
    other.content = "{\"question\": 3}";
    CHECK(aios_learn_parse(&other, &it, &own) == AIOS_ERR_FORMAT);
    aios_store_close(s);
    aios_encoder_free(enc);
}

int main(void) {
    RUN(test_library_roundtrip);
    RUN(test_router);
    RUN(test_learn_records);
    TEST_MAIN_END();
}
