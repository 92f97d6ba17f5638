/*
 * test_memprompt.c — memory-conditioned prompts (src/engine/memprompt.c): the documented
 * template on a ChatML model, the token budget and the context cap, "no note leaves the prompt
 * unchanged", argument errors, and the shared retriever over a real store (filters, min score,
 * empty store, recorded encoder).  The byte-for-byte check against transformers'
 * apply_chat_template with SmolLM2's own template is tests/py/test_memcond.py.
 */
#include <sys/stat.h>

#include "test.h"

static aios_generator *open_tiny(int64_t n_ctx) {
    const char *dir = aios_test_shared("fixtures/models-lm/smollm2-tiny");
    if (access(dir, R_OK)) return NULL;
    aios_generator_params gp = aios_generator_default_params();
    gp.n_ctx = n_ctx;
    aios_generator *g = NULL;
    if (aios_generator_open(dir, &gp, &g) != AIOS_OK) return NULL;
    return g;
}

static int64_t count(aios_generator *g, const char *text) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (aios_generator_tokenize(g, text, 1, &ids, &n) != AIOS_OK) return -1;
    free(ids);
    return (int64_t)n;
}

static const char *Q = "What is the name of Ada's cat?";

static void test_no_note_leaves_prompt_unchanged(void) {
    aios_generator *g = open_tiny(256);
    if (!g) SKIP("smollm2-tiny not found");
    aios_chat_message m[] = {{"user", Q}};
    char *plain = NULL;
    CHECK_OK(aios_generator_chat_prompt(g, m, 1, &plain));
    aios_memcond_hit hits[] = {{"a", "Ada's cat is called Miso.", 0.8f}, {"b", NULL, 0.5f}};
    aios_memprompt_params p = aios_memprompt_default_params();
    aios_memprompt_result r;
    /* no hits; hits but no budget; only a NULL content */
    for (int c = 0; c < 3; c++) {
        p.max_tokens = c == 1 ? 0 : 256;
        const aios_memcond_hit *h = c == 2 ? hits + 1 : hits;
        CHECK_OK(aios_generator_memory_prompt(g, m, 1, 1, h, c == 0 ? 0 : 1, &p, 16, &r));
        CHECKF(r.prompt && plain && !strcmp(r.prompt, plain), "case %d: %s", c, r.prompt ? r.prompt : "(null)");
        CHECK(r.n_sources == 0 && r.n_added_tokens == 0 && !r.conditioned && r.conditioned_index == -1);
        CHECK(r.n_prompt_tokens == count(g, plain));
        aios_memprompt_result_free(&r);
    }
    free(plain);
    aios_generator_free(g);
}

static void test_user_block(void) {
    aios_generator *g = open_tiny(256);
    if (!g) SKIP("smollm2-tiny not found");
    aios_chat_message m[] = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", Q}};
    aios_memcond_hit hits[] = {{"m1", "Ada's cat is called Miso.", 0.84f}, {"m2", NULL, 0.7f}, {"m3", "Ada plays the cello.", 0.4f}};
    aios_memprompt_result r;
    CHECK_OK(aios_generator_memory_prompt(g, m, 3, 1, hits, 3, NULL, 16, &r));
    const char *want = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n"
                       "Use these notes from memory to answer:\n- Ada's cat is called Miso.\n- Ada plays the cello.\n\n"
                       "What is the name of Ada's cat?<|im_end|>\n<|im_start|>assistant\n";
    CHECKF(r.prompt && !strcmp(r.prompt, want), "got %s", r.prompt ? r.prompt : "(null)");
    CHECK(r.n_sources == 2 && !strcmp(r.sources[0].id, "m1") && !strcmp(r.sources[1].id, "m3"));
    CHECK(r.sources[0].score == 0.84f && !r.sources[0].cut && !strcmp(r.sources[1].content, "Ada plays the cello."));
    CHECK(r.conditioned_index == 2 && r.conditioned && !strncmp(r.conditioned, "Use these notes", 15));
    char *plain = NULL;
    CHECK_OK(aios_generator_chat_prompt(g, m, 3, &plain));
    CHECK(r.n_prompt_tokens == count(g, want) && r.n_added_tokens == count(g, want) - count(g, plain));
    free(plain);
    aios_memprompt_result_free(&r);
    /* one text prompt (no chat): the block in front */
    aios_chat_message t[] = {{"user", "Ada's cat"}};
    CHECK_OK(aios_generator_memory_prompt(g, t, 1, 0, hits, 1, NULL, 16, &r));
    CHECK(r.prompt && !strcmp(r.prompt, "Use these notes from memory to answer:\n- Ada's cat is called Miso.\n\nAda's cat"));
    aios_memprompt_result_free(&r);
    aios_generator_free(g);
}

static void test_system_place(void) {
    aios_generator *g = open_tiny(256);
    if (!g) SKIP("smollm2-tiny not found");
    aios_memcond_hit hits[] = {{"m1", "Varnis has seven moons.", 0.8f}};
    aios_memprompt_params p = aios_memprompt_default_params();
    p.place = AIOS_MEMPROMPT_SYSTEM;
    p.header = "Notes:";
    aios_chat_message m[] = {{"system", "Be brief."}, {"user", "Moons?"}};
    aios_memprompt_result r;
    CHECK_OK(aios_generator_memory_prompt(g, m, 2, 1, hits, 1, &p, 0, &r));
    CHECKF(r.prompt && !strcmp(r.prompt, "<|im_start|>system\nBe brief.\n\nNotes:\n- Varnis has seven moons.<|im_end|>\n"
                                         "<|im_start|>user\nMoons?<|im_end|>\n<|im_start|>assistant\n"),
           "got %s", r.prompt ? r.prompt : "(null)");
    CHECK(r.conditioned_index == 0);
    aios_memprompt_result_free(&r);
    /* no system message and no template default: the block alone, inserted in front */
    CHECK_OK(aios_generator_memory_prompt(g, m + 1, 1, 1, hits, 1, &p, 0, &r));
    CHECK(r.prompt && !strcmp(r.prompt, "<|im_start|>system\nNotes:\n- Varnis has seven moons.<|im_end|>\n"
                                        "<|im_start|>user\nMoons?<|im_end|>\n<|im_start|>assistant\n"));
    CHECK(r.conditioned_index == -1);
    aios_memprompt_result_free(&r);
    aios_generator_free(g);
}

/* A long memory is cut to the budget; the prompt plus the reserve never passes the context. */
static void test_budget_and_context(void) {
    aios_generator *g = open_tiny(96);
    if (!g) SKIP("smollm2-tiny not found");
    static char longnote[4096];
    longnote[0] = 0;
    for (int i = 0; i < 60; i++) strcat(longnote, "The harbour lights of Leith are teal and gold. ");
    aios_memcond_hit hits[] = {{"short", "Ada's cat is called Miso.", 0.9f}, {"long", longnote, 0.8f}, {"never", "x y z", 0.7f}};
    aios_chat_message m[] = {{"user", Q}};
    char *plain = NULL;
    CHECK_OK(aios_generator_chat_prompt(g, m, 1, &plain));
    int64_t n_plain = count(g, plain);
    aios_memprompt_params p = aios_memprompt_default_params();
    aios_memprompt_result r;
    for (int64_t budget = 12; budget <= 1000; budget = budget * 3) {
        p.max_tokens = budget;
        const int64_t reserve = 24;
        CHECK_OK(aios_generator_memory_prompt(g, m, 1, 1, hits, 3, &p, reserve, &r));
        int64_t limit = budget < 96 - reserve - n_plain ? budget : 96 - reserve - n_plain;
        CHECKF(r.n_added_tokens <= limit && r.n_prompt_tokens + reserve <= 96, "budget %lld: added %lld, prompt %lld",
               (long long)budget, (long long)r.n_added_tokens, (long long)r.n_prompt_tokens);
        CHECK(r.n_prompt_tokens == count(g, r.prompt) && r.n_added_tokens == r.n_prompt_tokens - n_plain);
        if (budget >= 36) {
            CHECKF(r.n_sources == 2 && r.sources[1].cut && !strcmp(r.sources[1].id, "long"), "budget %lld: %d sources",
                   (long long)budget, (int)r.n_sources);
            if (r.n_sources == 2) {
                size_t l = strlen(r.sources[1].content);
                CHECK(l > 0 && l < strlen(longnote) && !strncmp(r.sources[1].content, longnote, l));
                CHECK(strstr(r.prompt, r.sources[1].content) != NULL);
            }
        }
        aios_memprompt_result_free(&r);
    }
    /* the reserve alone fills the context: no room for notes, the prompt is unchanged */
    p.max_tokens = 256;
    CHECK_OK(aios_generator_memory_prompt(g, m, 1, 1, hits, 3, &p, 96 - n_plain, &r));
    CHECK(r.n_sources == 0 && r.prompt && !strcmp(r.prompt, plain));
    aios_memprompt_result_free(&r);
    free(plain);
    aios_generator_free(g);
}

static void test_bad_arguments(void) {
    aios_generator *g = open_tiny(64);
    if (!g) SKIP("smollm2-tiny not found");
    aios_memcond_hit h = {"a", "b", 1};
    aios_chat_message m[] = {{"system", "s"}, {"assistant", "x"}};
    aios_memprompt_result r;
    CHECK(aios_generator_memory_prompt(g, m, 2, 1, &h, 1, NULL, 0, &r) == AIOS_ERR_INVALID_ARG && !r.prompt);
    CHECK(aios_generator_memory_prompt(g, m, 2, 0, &h, 1, NULL, 0, &r) == AIOS_ERR_INVALID_ARG);
    CHECK(aios_generator_memory_prompt(g, m, 1, 1, &h, 1, NULL, -1, &r) == AIOS_ERR_INVALID_ARG);
    aios_memprompt_params p = aios_memprompt_default_params();
    p.place = (aios_memprompt_place)7;
    aios_chat_message u[] = {{"user", "q"}};
    CHECK(aios_generator_memory_prompt(g, u, 1, 1, &h, 1, &p, 0, &r) == AIOS_ERR_INVALID_ARG);
    CHECK(aios_generator_memory_prompt(g, u, 1, 1, NULL, 1, NULL, 0, &r) == AIOS_ERR_INVALID_ARG);
    aios_memprompt_result_free(NULL);
    aios_generator_free(g);
}

/* The shared retriever over a real store embedded by bert-tiny. */
static void test_retriever(void) {
    const char *encdir = aios_test_shared("fixtures/models/bert-tiny");
    char enc_path[1024];
    snprintf(enc_path, sizeof enc_path, "%s", encdir);
    aios_encoder *enc = NULL;
    if (access(enc_path, R_OK) || aios_encoder_open(enc_path, NULL, &enc) != AIOS_OK) SKIP("bert-tiny not usable");
    int32_t dim = (int32_t)aios_encoder_dim(enc);
    char dir[600], empty[600], nomodel[600];
    snprintf(dir, sizeof dir, "%s/mp-store", aios_test_tmpdir());
    snprintf(empty, sizeof empty, "%s/mp-empty", aios_test_tmpdir());
    snprintf(nomodel, sizeof nomodel, "%s/mp-nomodel", aios_test_tmpdir());
    const char *texts[] = {"the cat sleeps on the mat", "stock prices fell sharply today", "a dog runs in the park"};
    const char *cats[] = {"pets", "news", "pets"};
    aios_store_params sp = aios_store_default_params();
    sp.create = 1;
    sp.dim = dim;
    sp.model = enc_path;
    sp.sync = 0;
    aios_store *st = NULL;
    CHECK_OK(aios_store_open(dir, &sp, &st));
    float *v = malloc((size_t)dim * sizeof(float));
    for (int i = 0; i < 3 && st; i++) {
        CHECK_OK(aios_encode(enc, texts[i], strlen(texts[i]), v));
        aios_memory m = {0};
        char id[16];
        snprintf(id, sizeof id, "m%d", i);
        m.memory_id = id;
        m.content = texts[i];
        m.embedding = v;
        m.dim = dim;
        m.timestamp_us = AIOS_TIMESTAMP_NOW;
        m.has_metadata = 1;
        m.category = cats[i];
        CHECK_OK(aios_store_add(st, &m, NULL));
    }
    aios_store_close(st);
    st = NULL;
    CHECK_OK(aios_store_open(empty, &sp, &st));
    aios_store_close(st);
    st = NULL;
    sp.model = NULL;
    CHECK_OK(aios_store_open(nomodel, &sp, &st));
    aios_store_close(st);

    aios_memory_retriever *r = NULL;
    CHECK_OK(aios_memory_retriever_open(dir, NULL, &r)); /* the recorded encoder */
    aios_memcond_hit hits[4];
    int32_t n = -1;
    aios_memory_query q = aios_memory_query_default();
    q.top_k = 3;
    if (r) {
        CHECK_OK(aios_memory_retrieve(r, texts[1], &q, hits, &n));
        CHECK(n == 3 && !strcmp(hits[0].id, "m1") && !strcmp(hits[0].content, texts[1]) && hits[0].score > 0.999f);
        CHECK(n == 3 && hits[0].score >= hits[1].score && hits[1].score >= hits[2].score);
        q.min_score = 0.999f;
        CHECK_OK(aios_memory_retrieve(r, texts[1], &q, hits, &n));
        CHECK(n == 1);
        q.min_score = -2;
        q.category = "pets";
        CHECK_OK(aios_memory_retrieve(r, texts[1], &q, hits, &n));
        CHECK(n == 2 && strcmp(hits[0].id, "m1") && strcmp(hits[1].id, "m1"));
        q.category = NULL;
        q.top_k = 0;
        CHECK_OK(aios_memory_retrieve(r, texts[1], &q, hits, &n));
        CHECK(n == 0);
        q.top_k = 2000;
        CHECK(aios_memory_retrieve(r, texts[1], &q, hits, &n) == AIOS_ERR_INVALID_ARG);
        /* the memcond callback form */
        CHECK_OK(aios_memory_retrieve_fn(r, texts[2], 1, hits, &n));
        CHECK(n == 1 && !strcmp(hits[0].id, "m2"));
    }
    aios_memory_retriever_free(r);
    r = NULL;
    CHECK_OK(aios_memory_retriever_open(empty, NULL, &r));
    q = aios_memory_query_default();
    if (r) {
        CHECK_OK(aios_memory_retrieve(r, "anything", &q, hits, &n));
        CHECK(n == 0);
    }
    aios_memory_retriever_free(r);
    r = NULL;
    CHECK(aios_memory_retriever_open(nomodel, NULL, &r) == AIOS_ERR_NOT_FOUND && !r);
    CHECK(strstr(aios_last_error(), "records no embedding model") != NULL);
    CHECK_OK(aios_memory_retriever_open(nomodel, enc_path, &r));
    aios_memory_retriever_free(r);
    r = NULL;
    CHECK(aios_memory_retriever_open("/nonexistent/store", NULL, &r) != AIOS_OK && !r);
    /* wrap: borrowed store and encoder */
    aios_store_params rp = aios_store_default_params();
    rp.read_only = 1;
    st = NULL;
    CHECK_OK(aios_store_open(dir, &rp, &st));
    CHECK_OK(aios_memory_retriever_wrap(st, enc, &r));
    if (r) {
        q = aios_memory_query_default();
        CHECK_OK(aios_memory_retrieve(r, texts[0], &q, hits, &n));
        CHECK(n == 3 && !strcmp(hits[0].id, "m0"));
    }
    aios_memory_retriever_free(r);
    CHECK(aios_memory_retriever_wrap(NULL, enc, &r) == AIOS_ERR_INVALID_ARG);
    aios_store_close(st);
    free(v);
    aios_encoder_free(enc);
}

int main(void) {
    RUN(test_no_note_leaves_prompt_unchanged);
    RUN(test_user_block);
    RUN(test_system_place);
    RUN(test_budget_and_context);
    RUN(test_bad_arguments);
    RUN(test_retriever);
    TEST_MAIN_END();
}
