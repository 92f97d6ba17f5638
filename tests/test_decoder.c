/* test_decoder.c — the decoder against transformers' goldens (fixtures/models*), the llama2.c
 * import against llama2.c's own greedy output, and the cache / attention-pattern contracts. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "core/internal.h"
#include "format/safetensors.h"
#include "model/decoder.h"
#include "model/llama2c.h"
#include "model/model.h"
#include "test.h"

typedef struct {
    aios_safetensors *w, *g;
    aios_decoder *dec;
} fixture;

static const aios_tensor *st_lookup(void *ctx, const char *name) { return aios_safetensors_find(ctx, name); }

/* Opens fixtures/<rel>: config.json, model.safetensors, golden.safetensors.  0 when absent. */
static int fixture_open(const char *rel, fixture *f) {
    memset(f, 0, sizeof *f);
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", aios_test_shared(rel));
    char *json = NULL;
    size_t len = 0;
    if (aios__read_file(p, &json, &len) != AIOS_OK) return 0;
    aios_decoder_config cfg;
    aios_status s = aios_decoder_config_parse(json, len, &cfg);
    free(json);
    CHECK_OK(s);
    if (s) return 0;
    snprintf(p, sizeof p, "%s/model.safetensors", aios_test_shared(rel));
    CHECK_OK(aios_safetensors_open(p, &f->w));
    snprintf(p, sizeof p, "%s/golden.safetensors", aios_test_shared(rel));
    if (aios_safetensors_open(p, &f->g) != AIOS_OK) f->g = NULL;
    if (!f->w) return 0;
    CHECK_OK(aios_decoder_create(&cfg, st_lookup, f->w, &f->dec));
    return f->dec != NULL;
}

static void fixture_close(fixture *f) {
    aios_decoder_free(f->dec);
    aios_safetensors_close(f->w);
    aios_safetensors_close(f->g);
}

static const aios_tensor *golden(fixture *f, const char *name) {
    const aios_tensor *t = f->g ? aios_safetensors_find(f->g, name) : NULL;
    CHECKF(t != NULL, "golden tensor %s missing", name);
    return t;
}

static int32_t argmax(const float *x, int64_t n) {
    int32_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = (int32_t)i;
    return b;
}

/* Logits of the prompt (all rows) within 1e-4 and 16 greedy tokens equal to greedy_ids, using
 * prefill + cached decode; then the same tokens from uncached full forwards. */
static void check_causal_fixture(const char *rel) {
    fixture f;
    if (!fixture_open(rel, &f)) {
        fixture_close(&f);
        if (!t_failed_now) SKIP("%s not found", rel);
        return;
    }
    const aios_decoder_config *c = aios_decoder_get_config(f.dec);
    const aios_tensor *pid = golden(&f, "prompt_ids"), *gl = golden(&f, "logits"), *gid = golden(&f, "greedy_ids");
    if (!pid || !gl || !gid) goto out;
    int64_t P = aios_tensor_numel(pid), G = aios_tensor_numel(gid), V = c->n_vocab;
    const int32_t *prompt = pid->data, *want = gid->data;
    CHECK(gl->shape[0] == P && gl->shape[1] == V);
    float *lg = malloc((size_t)(P * V) * sizeof(float));
    aios_forward_opts all = {.attn = AIOS_FWD_CAUSAL, .mask = NULL, .pos = NULL, .logits_all = 1, .no_commit = 0};
    CHECK_OK(aios_decoder_forward(f.dec, NULL, prompt, P, &all, lg));
    double err = t_rel_err(lg, gl->data, (size_t)(P * V));
    CHECKF(err <= 1e-4, "%s: logits rel err %.3g > 1e-4", rel, err);

    aios_kv_cache *kv = NULL;
    CHECK_OK(aios_kv_cache_create(f.dec, G + 4, &kv));
    int32_t *ids = malloc((size_t)G * sizeof *ids);
    memcpy(ids, prompt, (size_t)P * sizeof *ids);
    CHECK_OK(aios_decoder_forward(f.dec, kv, prompt, P, NULL, lg));
    for (int64_t n = P; n < G; n++) {
        ids[n] = argmax(lg, V);
        if (n + 1 < G) CHECK_OK(aios_decoder_forward(f.dec, kv, &ids[n], 1, NULL, lg));
    }
    for (int64_t n = 0; n < G; n++) CHECKF(ids[n] == want[n], "%s: greedy id %lld: %d, want %d", rel, (long long)n, ids[n], want[n]);
    CHECK(aios_kv_cache_len(kv) == G - 1);
    /* the cache is reusable: truncate to the prompt and decode again */
    aios_kv_cache_truncate(kv, P - 1);
    CHECK_OK(aios_decoder_forward(f.dec, kv, &prompt[P - 1], 1, NULL, lg));
    CHECK(argmax(lg, V) == want[P]);
    /* uncached: the last row of a full causal forward over prompt + generated */
    for (int64_t n = P; n < G; n += 5) {
        CHECK_OK(aios_decoder_forward(f.dec, NULL, want, n, NULL, lg));
        CHECKF(argmax(lg, V) == want[n], "%s: uncached greedy at %lld", rel, (long long)n);
    }
    aios_kv_cache_free(kv);
    free(ids);
    free(lg);
out:
    fixture_close(&f);
}

static void test_llama_tiny(void) { check_causal_fixture("fixtures/models-lm/llama-tiny"); }
static void test_smollm2_tiny(void) { check_causal_fixture("fixtures/models-lm/smollm2-tiny"); }
static void test_qwen2_tiny(void) { check_causal_fixture("fixtures/models/qwen2-tiny"); }
static void test_qwen3_tiny(void) { check_causal_fixture("fixtures/models/qwen3-tiny"); }

static void test_llada_bidirectional(void) {
    fixture f;
    if (!fixture_open("fixtures/models/llada-tiny", &f)) {
        fixture_close(&f);
        if (!t_failed_now) SKIP("llada-tiny not found");
        return;
    }
    const aios_tensor *in = golden(&f, "input_ids"), *gl = golden(&f, "logits");
    if (in && gl) {
        int64_t T = aios_tensor_numel(in), V = aios_decoder_get_config(f.dec)->n_vocab;
        CHECK(aios_decoder_get_config(f.dec)->mask_id == 999);
        float *lg = malloc((size_t)(T * V) * sizeof(float));
        aios_forward_opts o = {.attn = AIOS_FWD_BIDIRECTIONAL, .mask = NULL, .pos = NULL, .logits_all = 1, .no_commit = 0};
        CHECK_OK(aios_decoder_forward(f.dec, NULL, in->data, T, &o, lg));
        double err = t_rel_err(lg, gl->data, (size_t)(T * V));
        CHECKF(err <= 1e-4, "llada logits rel err %.3g", err);
        /* an all-visible explicit mask is the same as bidirectional */
        uint8_t *m = malloc((size_t)(T * T));
        memset(m, 1, (size_t)(T * T));
        float *lg2 = malloc((size_t)(T * V) * sizeof(float));
        aios_forward_opts om = {.attn = AIOS_FWD_MASK, .mask = m, .pos = NULL, .logits_all = 1, .no_commit = 0};
        CHECK_OK(aios_decoder_forward(f.dec, NULL, in->data, T, &om, lg2));
        CHECK(t_rel_err(lg2, lg, (size_t)(T * V)) < 1e-6);
        free(m), free(lg), free(lg2);
    }
    fixture_close(&f);
}

/* Block-causal with left padding (the bd3lm fixture's pattern): the explicit-mask forward of a
 * canvas equals, row for row, separate forwards that see only what the mask allows.  Rows of
 * block b see blocks <= b; so the logits of the rows of the first two blocks equal a causal-
 * by-block prefix forward of just those blocks (bidirectional within). */
static void test_block_causal_mask(void) {
    fixture f;
    if (!fixture_open("fixtures/models/qwen3-tiny", &f)) {
        fixture_close(&f);
        if (!t_failed_now) SKIP("qwen3-tiny not found");
        return;
    }
    enum { B = 4, T = 12, PAD = 2 };
    int32_t x[T] = {998, 998, 5, 77, 123, 9, 999, 999, 999, 999, 400, 31};
    int32_t pos[T];
    uint8_t m[T * T];
    for (int i = 0; i < T; i++) pos[i] = i < PAD ? 0 : i - PAD;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) m[i * T + j] = (j / B <= i / B && j >= PAD) || i == j;
    int64_t V = aios_decoder_get_config(f.dec)->n_vocab;
    float *a = malloc((size_t)(T * V) * sizeof(float)), *b = malloc((size_t)(8 * V) * sizeof(float));
    aios_forward_opts o = {.attn = AIOS_FWD_MASK, .mask = m, .pos = pos, .logits_all = 1, .no_commit = 0};
    CHECK_OK(aios_decoder_forward(f.dec, NULL, x, T, &o, a));
    /* the built-in block-causal mode (positions derived from n_pad) is the same */
    aios_forward_opts ob = {.attn = AIOS_FWD_BLOCK_CAUSAL, .mask = NULL, .pos = NULL, .logits_all = 1, .no_commit = 0, .block_size = B, .n_pad = PAD};
    float *c2 = malloc((size_t)(T * V) * sizeof(float));
    CHECK_OK(aios_decoder_forward(f.dec, NULL, x, T, &ob, c2));
    CHECK(t_rel_err(c2, a, (size_t)(T * V)) == 0);
    /* and with a cache: blocks 0-1 committed, block 2 appended */
    aios_kv_cache *kb = NULL;
    CHECK_OK(aios_kv_cache_create(f.dec, T, &kb));
    CHECK_OK(aios_decoder_forward(f.dec, kb, x, 8, &ob, NULL));
    CHECK_OK(aios_decoder_forward(f.dec, kb, x + 8, 4, &ob, c2));
    CHECK(t_rel_err(c2, a + 8 * V, (size_t)(4 * V)) < 1e-5);
    aios_kv_cache_free(kb);
    free(c2);
    /* the first 8 rows only see the first 8 tokens: same mask restricted to 8x8 */
    uint8_t m8[8 * 8];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) m8[i * 8 + j] = m[i * T + j];
    aios_forward_opts o8 = {.attn = AIOS_FWD_MASK, .mask = m8, .pos = pos, .logits_all = 1, .no_commit = 0};
    CHECK_OK(aios_decoder_forward(f.dec, NULL, x, 8, &o8, b));
    CHECK(t_rel_err(a, b, (size_t)(8 * V)) < 1e-6);
    /* with a cache: blocks 0..1 committed, block 2 computed against them gives the same rows */
    aios_kv_cache *kv = NULL;
    CHECK_OK(aios_kv_cache_create(f.dec, T, &kv));
    aios_forward_opts c8 = {.attn = AIOS_FWD_MASK, .mask = m8, .pos = pos, .logits_all = 0, .no_commit = 0};
    CHECK_OK(aios_decoder_forward(f.dec, kv, x, 8, &c8, NULL));
    uint8_t m3[4 * T];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < T; j++) m3[i * T + j] = m[(8 + i) * T + j];
    aios_forward_opts c3 = {.attn = AIOS_FWD_MASK, .mask = m3, .pos = pos + 8, .logits_all = 1, .no_commit = 1};
    CHECK_OK(aios_decoder_forward(f.dec, kv, x + 8, 4, &c3, b));
    CHECK(t_rel_err(b, a + 8 * V, (size_t)(4 * V)) < 1e-5);
    CHECK(aios_kv_cache_len(kv) == 8); /* no_commit */
    aios_kv_cache_free(kv);
    free(a), free(b);
    fixture_close(&f);
}

/* stories260K from BOS, 256 greedy tokens: the ids and text llama2.c's run.c prints. */
static void test_stories260k_greedy(void) {
    char p[4096];
    snprintf(p, sizeof p, "%s/stories260K.bin", aios_test_shared("models/stories260K"));
    if (access(p, R_OK)) SKIP("stories260K not found");
    aios_llama2c *m = NULL;
    CHECK_OK(aios_llama2c_open(p, &m));
    if (!m) return;
    const aios_decoder_config *c = aios_llama2c_config(m);
    CHECK(c->n_embd == 64 && c->n_layer == 5 && c->n_head == 8 && c->n_head_kv == 4 && c->n_vocab == 512);
    aios_decoder *d = NULL;
    CHECK_OK(aios_decoder_create(c, aios_llama2c_lookup, m, &d));
    aios_llama2c_tok *tok = NULL;
    snprintf(p, sizeof p, "%s/tok512.bin", aios_test_shared("models/stories260K"));
    CHECK_OK(aios_llama2c_tok_open(p, 512, &tok));
    /* expected: the "ids:" line and the text after "text:" */
    snprintf(p, sizeof p, "%s/expected_greedy_t0.txt", aios_test_shared("models/stories260K"));
    char *exp = NULL;
    size_t elen = 0;
    CHECK_OK(aios__read_file(p, &exp, &elen));
    if (!d || !tok || !exp) goto out;
    char *ids_line = strstr(exp, "\nids:"), *text = strstr(exp, "\ntext:\n");
    CHECK(ids_line && text);
    if (!ids_line || !text) goto out;
    text += 7;
    int32_t want[256];
    int nw = 0;
    char *q = ids_line + 5;
    while (nw < 256) {
        char *e;
        long v = strtol(q, &e, 10);
        if (e == q) break;
        want[nw++] = (int32_t)v;
        q = e;
    }
    CHECK(nw == 256);
    aios_kv_cache *kv = NULL;
    CHECK_OK(aios_kv_cache_create(d, 512, &kv));
    float lg[512];
    int32_t tokid = 1, prev = 1;
    char out[8192];
    size_t on = 0;
    for (int i = 0; i < 256 && kv; i++) {
        CHECK_OK(aios_decoder_forward(d, kv, &tokid, 1, NULL, lg));
        int32_t next = argmax(lg, 512);
        CHECKF(next == want[i], "stories260K step %d: %d, want %d", i, next, want[i]);
        char piece[64];
        size_t n = aios_llama2c_tok_decode(tok, prev, next, piece, sizeof piece);
        if (on + n < sizeof out) memcpy(out + on, piece, n), on += n;
        prev = tokid = next;
    }
    out[on] = 0;
    /* the file ends the text with one newline */
    size_t tl = strlen(text);
    if (tl && text[tl - 1] == '\n') text[--tl] = 0;
    CHECKF(!strcmp(out, text), "stories260K text differs:\n%s", out);
    /* the encoder round-trips the text's first line */
    int32_t enc[600];
    size_t ne = 0;
    CHECK_OK(aios_llama2c_tok_encode(tok, "Once upon a time, there was a little girl", 1, enc, &ne));
    CHECK(ne > 2 && enc[0] == 1);
    char dec[256];
    size_t dn = 0;
    for (size_t i = 1; i < ne; i++) dn += aios_llama2c_tok_decode(tok, enc[i - 1], enc[i], dec + dn, sizeof dec - dn);
    CHECKF(!strcmp(dec, "Once upon a time, there was a little girl"), "round trip: '%s'", dec);
    /* and the greedy ids are the encoding's merges: BOS + "Once" is the first generated token */
    CHECK(ne >= 2 && enc[1] == want[0]);
    aios_kv_cache_free(kv);
out:
    free(exp);
    aios_llama2c_tok_free(tok);
    aios_decoder_free(d);
    aios_llama2c_free(m);
}

static void test_config_parse_rope(void) {
    const char *j = "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                    "\"num_hidden_layers\":1,\"intermediate_size\":8,\"vocab_size\":10,\"max_position_embeddings\":131072,"
                    "\"rope_theta\":500000.0,\"eos_token_id\":[128001,128008,128009],\"rope_scaling\":{\"rope_type\":"
                    "\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                    "\"original_max_position_embeddings\":8192}}";
    aios_decoder_config c;
    CHECK_OK(aios_decoder_config_parse(j, strlen(j), &c));
    CHECK(c.rope_type == AIOS_ROPE_LLAMA3 && c.rope_factor == 8.0 && c.rope_orig_ctx == 8192);
    CHECK(c.n_eos == 3 && c.eos_ids[2] == 128009 && c.head_dim == 16);
    /* values from transformers' _compute_llama3_parameters for head_dim 16, theta 5e5 */
    float f[8];
    aios_decoder_rope_inv_freq(&c, 0, f);
    CHECK(fabsf(f[0] - 1.0f) < 1e-7f);            /* high frequency: unchanged */
    double base7 = 1.0 / pow(500000.0, 14.0 / 16.0); /* wavelength 2*pi/base7 > 8192: divided */
    CHECK(fabs(f[7] - base7 / 8.0) < 1e-9);
    const char *bad = "{\"hidden_size\":64,\"num_attention_heads\":3}";
    CHECK(aios_decoder_config_parse(bad, strlen(bad), &c) == AIOS_ERR_FORMAT);
    CHECK(aios_decoder_config_parse("[1]", 3, &c) == AIOS_ERR_FORMAT);
    const char *yarn = "{\"hidden_size\":64,\"num_attention_heads\":4,\"num_hidden_layers\":1,\"intermediate_size\":8,"
                       "\"vocab_size\":10,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}";
    CHECK(aios_decoder_config_parse(yarn, strlen(yarn), &c) == AIOS_ERR_UNSUPPORTED);
}

static void test_llama2c_rejects_truncated(void) {
    char p[4096];
    snprintf(p, sizeof p, "%s/stories260K.bin", aios_test_shared("models/stories260K"));
    aios_map src;
    if (aios__map_file(p, &src) != AIOS_OK) SKIP("stories260K not found");
    char q[600];
    snprintf(q, sizeof q, "%s/trunc.bin", aios_test_tmpdir());
    size_t cuts[] = {0, 10, 28, 1000, src.size / 2, src.size - 4};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(cuts); i++) {
        FILE *fp = fopen(q, "wb");
        fwrite(src.data, 1, cuts[i], fp);
        fclose(fp);
        aios_llama2c *m = NULL;
        aios_status s = aios_llama2c_open(q, &m);
        CHECKF(s == AIOS_ERR_FORMAT && m == NULL, "cut at %zu: %s", cuts[i], aios_status_name(s));
    }
    aios__unmap_file(&src);
}

/* ---- through aios_model_open: HF directories, their Parquet conversions, quantized copies ---- */

/* Logits of the fixture's golden input (prompt_ids causal, or input_ids bidirectional) from the
 * model at `path`; returns malloc'd (T, V) and sets *T, *V, or NULL. */
static float *model_logits(const char *path, const char *golden_dir, int64_t *T, int64_t *V, float **want) {
    aios_model *m = NULL;
    aios_decoder *d = NULL;
    aios_safetensors *g = NULL;
    float *lg = NULL;
    *want = NULL;
    CHECK_OK(aios_model_open(path, NULL, &m));
    if (!m) return NULL;
    aios_decoder_config cfg;
    CHECK_OK(aios_decoder_config_from_model(aios_model_get_config(m), &cfg));
    CHECK_OK(aios_decoder_create(&cfg, aios_decoder_model_lookup, m, &d));
    char gp[4200];
    snprintf(gp, sizeof gp, "%s/golden.safetensors", golden_dir);
    CHECK_OK(aios_safetensors_open(gp, &g));
    if (d && g) {
        const aios_tensor *in = aios_safetensors_find(g, "prompt_ids");
        int bidir = in == NULL;
        if (!in) in = aios_safetensors_find(g, "input_ids");
        const aios_tensor *gl = aios_safetensors_find(g, "logits");
        CHECK(in && gl);
        if (in && gl) {
            *T = aios_tensor_numel(in), *V = cfg.n_vocab;
            lg = malloc((size_t)(*T * *V) * sizeof(float));
            *want = malloc((size_t)(*T * *V) * sizeof(float));
            memcpy(*want, gl->data, (size_t)(*T * *V) * sizeof(float));
            aios_forward_opts o = {.attn = bidir ? AIOS_FWD_BIDIRECTIONAL : AIOS_FWD_CAUSAL, .mask = NULL, .pos = NULL, .logits_all = 1, .no_commit = 0};
            CHECK_OK(aios_decoder_forward(d, NULL, in->data, *T, &o, lg));
        }
    }
    aios_safetensors_close(g);
    aios_decoder_free(d);
    aios_model_free(m);
    return lg;
}

static const char *const DECODER_FIXTURES[] = {"fixtures/models/qwen2-tiny", "fixtures/models/qwen3-tiny",
                                               "fixtures/models/llada-tiny", "fixtures/models-lm/llama-tiny",
                                               "fixtures/models-lm/smollm2-tiny"};

static void test_model_open_and_parquet(void) {
    for (size_t i = 0; i < AIOS_ARRAY_LEN(DECODER_FIXTURES); i++) {
        const char *dir = aios_test_shared(DECODER_FIXTURES[i]);
        if (access(dir, R_OK)) SKIP("%s not found", dir);
        int64_t T = 0, V = 0;
        float *want = NULL, *lg = model_logits(dir, dir, &T, &V, &want);
        if (lg) CHECKF(t_rel_err(lg, want, (size_t)(T * V)) <= 1e-4, "%s via aios_model_open", DECODER_FIXTURES[i]);
        free(lg), free(want);
        want = NULL;
        /* the Parquet (Schema V1) conversion gives the same logits */
        char out[600];
        snprintf(out, sizeof out, "%s/pq-%zu", aios_test_tmpdir(), i);
        CHECK_OK(aios_model_convert(dir, out));
        lg = model_logits(out, dir, &T, &V, &want);
        if (lg) {
            double e = t_rel_err(lg, want, (size_t)(T * V));
            CHECKF(e <= 1e-4, "%s parquet: rel err %.3g", DECODER_FIXTURES[i], e);
        }
        free(lg), free(want);
    }
}

/* Quantized copies (Schema V2): relative error of the logits and top-1 agreement per position,
 * held to budgets measured on these fixtures (printed, docs/generate.md). */
static void test_quantized_budgets(void) {
    struct {
        int bits, group;
        double max_err, min_top1;
    } q[] = {{8, 0, 0.02, 0.95}, {4, 32, 0.2, 0.5}, {2, 32, 0.85, 0.0}};
    /* measured: int8 <= 0.010 / top-1 1.00, int4 <= 0.152 / 0.50, int2 <= 0.752 / 0.00 (reported only) */
    for (size_t i = 0; i < AIOS_ARRAY_LEN(DECODER_FIXTURES); i++) {
        const char *dir = aios_test_shared(DECODER_FIXTURES[i]);
        if (access(dir, R_OK)) SKIP("%s not found", dir);
        for (size_t k = 0; k < AIOS_ARRAY_LEN(q); k++) {
            char out[600];
            snprintf(out, sizeof out, "%s/q%d-%zu", aios_test_tmpdir(), q[k].bits, i);
            aios_quantize_params qp = aios_quantize_default_params();
            qp.bits = q[k].bits;
            qp.group_size = q[k].group;
            qp.per_channel = 1;
            CHECK_OK(aios_model_quantize(dir, out, &qp));
            int64_t T = 0, V = 0;
            float *want = NULL, *lg = model_logits(out, dir, &T, &V, &want);
            if (!lg) continue;
            double e = t_rel_err(lg, want, (size_t)(T * V));
            int agree = 0;
            for (int64_t t = 0; t < T; t++) agree += argmax(lg + t * V, V) == argmax(want + t * V, V);
            double top1 = (double)agree / (double)T;
            printf("# %s int%d%s: logits rel err %.4f, top-1 agreement %.2f\n", DECODER_FIXTURES[i] + 9, q[k].bits,
                   q[k].group ? " g32" : " per-channel", e, top1);
            CHECKF(e <= q[k].max_err && top1 >= q[k].min_top1, "%s int%d: rel err %.4f top-1 %.2f over budget",
                   DECODER_FIXTURES[i], q[k].bits, e, top1);
            free(lg), free(want);
        }
    }
}

/* The diffusion fixtures' configs bind through aios_model_open: Dream (Qwen2 biases), BD3LM
 * (Qwen3 norms, block size, pad id), LLaDA naming; their mask ids are carried. */
static void test_diffusion_configs(void) {
    struct {
        const char *rel;
        int32_t mask, pad;
        int64_t block;
        int qkv_bias, qk_norm, naming;
    } c[] = {{"fixtures/models/dream-tiny", 999, -1, 0, 1, 0, AIOS_NAMING_HF},
             {"fixtures/models/bd3lm-qwen3-tiny", 999, 998, 4, 0, 1, AIOS_NAMING_HF},
             {"fixtures/models/llada-tiny", 999, -1, 0, 0, 0, AIOS_NAMING_LLADA}};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(c); i++) {
        const char *dir = aios_test_shared(c[i].rel);
        if (access(dir, R_OK)) SKIP("%s not found", dir);
        aios_model *m = NULL;
        aios_decoder *d = NULL;
        CHECK_OK(aios_model_open(dir, NULL, &m));
        if (!m) continue;
        aios_decoder_config cfg;
        CHECK_OK(aios_decoder_config_from_model(aios_model_get_config(m), &cfg));
        CHECK_OK(aios_decoder_create(&cfg, aios_decoder_model_lookup, m, &d));
        if (d) {
            const aios_decoder_config *dc = aios_decoder_get_config(d);
            CHECKF(dc->mask_id == c[i].mask && dc->pad_id == c[i].pad && dc->block_size == c[i].block &&
                       dc->qkv_bias == c[i].qkv_bias && dc->qk_norm == c[i].qk_norm && (int)dc->naming == c[i].naming,
                   "%s: mask %d pad %d block %lld bias %d norm %d", c[i].rel, dc->mask_id, dc->pad_id,
                   (long long)dc->block_size, dc->qkv_bias, dc->qk_norm);
        }
        aios_decoder_free(d);
        aios_model_free(m);
    }
    /* an encoder is refused with a message */
    aios_model *m = NULL;
    const char *bert = aios_test_shared("fixtures/models/bert-tiny");
    if (!access(bert, R_OK) && aios_model_open(bert, NULL, &m) == AIOS_OK) {
        aios_decoder_config cfg;
        CHECK(aios_decoder_config_from_model(aios_model_get_config(m), &cfg) == AIOS_ERR_UNSUPPORTED);
        aios_model_free(m);
    }
}

/* RoPE scaling variants against transformers' formulas (modeling_rope_utils.py), and positions
 * through the forward: linear scaling by f equals default RoPE at positions / f, which the
 * explicit-position forward can check when f divides the positions. */
static void test_rope_scaling(void) {
    aios_decoder_config c;
    memset(&c, 0, sizeof c);
    c.head_dim = 8, c.rope_theta = 10000.0, c.rope_factor = 2.0, c.rope_orig_ctx = 16;
    float def[4], lin[4], dyn[4], dyn_short[4];
    c.rope_type = AIOS_ROPE_DEFAULT;
    aios_decoder_rope_inv_freq(&c, 0, def);
    for (int i = 0; i < 4; i++) CHECK(fabs(def[i] - 1.0 / pow(10000.0, 2.0 * i / 8)) < 1e-7 * def[i] + 1e-12);
    c.rope_type = AIOS_ROPE_LINEAR;
    aios_decoder_rope_inv_freq(&c, 0, lin);
    for (int i = 0; i < 4; i++) CHECK(fabsf(lin[i] - def[i] / 2) <= 1e-7f * def[i]);
    c.rope_type = AIOS_ROPE_DYNAMIC;
    aios_decoder_rope_inv_freq(&c, 16, dyn_short); /* within the original context: unchanged */
    for (int i = 0; i < 4; i++) CHECK(dyn_short[i] == def[i]);
    aios_decoder_rope_inv_freq(&c, 64, dyn); /* base * ((f*L/orig) - (f-1)) ** (d/(d-2)) */
    double base = 10000.0 * pow(2.0 * 64 / 16 - 1.0, 8.0 / 6.0);
    for (int i = 0; i < 4; i++) CHECK(fabs(dyn[i] - 1.0 / pow(base, 2.0 * i / 8)) < 1e-6 * dyn[i]);

    fixture f;
    if (!fixture_open("fixtures/models/qwen2-tiny", &f)) {
        fixture_close(&f);
        return;
    }
    /* rebuild qwen2-tiny with linear scaling 2: logits at positions 0,2,4,.. equal the
     * default model's at positions 0,1,2,.. */
    aios_decoder_config lc = *aios_decoder_get_config(f.dec);
    lc.rope_type = AIOS_ROPE_LINEAR;
    lc.rope_factor = 2.0;
    aios_decoder *ld = NULL;
    CHECK_OK(aios_decoder_create(&lc, st_lookup, f.w, &ld));
    int32_t x[6] = {1, 17, 256, 3, 42, 7}, p2[6] = {0, 2, 4, 6, 8, 10};
    int64_t V = lc.n_vocab;
    float *a = malloc((size_t)(6 * V) * sizeof(float)), *b = malloc((size_t)(6 * V) * sizeof(float));
    aios_forward_opts o = {.attn = AIOS_FWD_CAUSAL, .mask = NULL, .pos = NULL, .logits_all = 1, .no_commit = 0}, o2 = {.attn = AIOS_FWD_CAUSAL, .mask = NULL, .pos = p2, .logits_all = 1, .no_commit = 0};
    CHECK_OK(aios_decoder_forward(f.dec, NULL, x, 6, &o, a));
    if (ld) CHECK_OK(aios_decoder_forward(ld, NULL, x, 6, &o2, b));
    CHECK(t_rel_err(b, a, (size_t)(6 * V)) < 1e-5);
    free(a), free(b);
    aios_decoder_free(ld);
    fixture_close(&f);
}

/* The first denoising step of each diffusion golden (diffusion_golden.json of the fixtures,
 * made with the float64 reference): canvas logits under the model's attention pattern, mask
 * token excluded, softmax, argmax per masked position of the first block; the k most confident
 * are the trace's first entries (positions, tokens, confidences). */
static void first_step(const char *name) {
    char rel[256], p[4200];
    snprintf(rel, sizeof rel, "fixtures/models/%s", name);
    snprintf(p, sizeof p, "%s/diffusion_golden.json", aios_test_shared(rel));
    char *txt = NULL;
    size_t len;
    if (aios__read_file(p, &txt, &len) != AIOS_OK) SKIP("%s not found", p);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    aios_model *m = NULL;
    aios_decoder *d = NULL;
    CHECK_OK(aios_model_open(aios_test_shared(rel), NULL, &m));
    aios_decoder_config cfg;
    if (m) CHECK_OK(aios_decoder_config_from_model(aios_model_get_config(m), &cfg));
    if (m) CHECK_OK(aios_decoder_create(&cfg, aios_decoder_model_lookup, m, &d));
    const cJSON *run = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "runs"), 0);
    if (!d || !run) goto out;
    int shift = cJSON_IsTrue(cJSON_GetObjectItem(j, "shift"));
    int bd3 = cJSON_GetObjectItem(run, "block_size") != NULL;
    int32_t x[64];
    int64_t T = 0, npad = 0, B, lo, hi, steps;
    int32_t mask_id = cJSON_GetObjectItem(run, "mask_id")->valueint;
    const cJSON *e;
    if (bd3) {
        B = cJSON_GetObjectItem(run, "block_size")->valueint;
        npad = cJSON_GetObjectItem(run, "left_pad")->valueint;
        for (int64_t i = 0; i < npad; i++) x[T++] = cJSON_GetObjectItem(run, "pad_id")->valueint;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(run, "prompt_ids")) x[T++] = e->valueint;
        lo = T;
        for (int64_t i = 0; i < B; i++) x[T++] = mask_id;
        hi = T;
        steps = cJSON_GetObjectItem(run, "steps_per_block")->valueint;
    } else {
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(run, "prompt_ids")) x[T++] = e->valueint;
        lo = T;
        int64_t gl = cJSON_GetObjectItem(run, "gen_length")->valueint;
        B = cJSON_GetObjectItem(run, "block_length")->valueint;
        for (int64_t i = 0; i < gl; i++) x[T++] = mask_id;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(run, "suffix_ids")) x[T++] = e->valueint;
        hi = lo + B;
        steps = cJSON_GetObjectItem(run, "steps")->valueint / (gl / B);
    }
    int64_t V = cfg.n_vocab;
    float *lg = malloc((size_t)(T * V) * sizeof(float));
    aios_forward_opts o = {.attn = bd3 ? AIOS_FWD_BLOCK_CAUSAL : AIOS_FWD_BIDIRECTIONAL, .mask = NULL, .pos = NULL, .logits_all = 1, .no_commit = 0, .block_size = B, .n_pad = npad};
    CHECK_OK(aios_decoder_forward(d, NULL, x, T, &o, lg));
    /* proposals for the masked positions of the first block */
    int64_t cand[64], nc = 0;
    double conf[64];
    int32_t tok[64];
    for (int64_t i = lo; i < hi; i++) {
        if (x[i] != mask_id) continue;
        const float *row = lg + (shift ? i - 1 : i) * V;
        double mx = -INFINITY, sum = 0;
        int32_t arg = 0;
        for (int64_t v = 0; v < V; v++)
            if (v != mask_id && row[v] > mx) mx = row[v], arg = (int32_t)v;
        for (int64_t v = 0; v < V; v++)
            if (v != mask_id) sum += exp((double)row[v] - mx);
        cand[nc] = i, tok[nc] = arg, conf[nc] = 1.0 / sum, nc++;
    }
    int64_t k = nc / steps + (nc % steps ? 1 : 0);
    const cJSON *tr0 = cJSON_GetArrayItem(cJSON_GetObjectItem(run, "trace"), 0);
    CHECK(cJSON_GetArraySize(tr0) == k);
    for (int64_t r = 0; r < k; r++) { /* r-th most confident */
        int64_t best = -1;
        for (int64_t c = 0; c < nc; c++)
            if (cand[c] >= 0 && (best < 0 || conf[c] > conf[best])) best = c;
        const cJSON *want = cJSON_GetArrayItem(tr0, (int)r);
        CHECKF(best >= 0 && cand[best] == cJSON_GetArrayItem(want, 0)->valueint &&
                   tok[best] == cJSON_GetArrayItem(want, 1)->valueint &&
                   fabs(conf[best] - cJSON_GetArrayItem(want, 2)->valuedouble) < 1e-4 * cJSON_GetArrayItem(want, 2)->valuedouble,
               "%s: commit %lld: pos %lld tok %d conf %.6f, want %d %d %.6f", name, (long long)r,
               (long long)(best >= 0 ? cand[best] : -1), best >= 0 ? tok[best] : -1, best >= 0 ? conf[best] : 0,
               cJSON_GetArrayItem(want, 0)->valueint, cJSON_GetArrayItem(want, 1)->valueint,
               cJSON_GetArrayItem(want, 2)->valuedouble);
        if (best >= 0) cand[best] = -1;
    }
    free(lg);
out:
    aios_decoder_free(d);
    aios_model_free(m);
    cJSON_Delete(j);
}

static void test_diffusion_first_steps(void) {
    first_step("llada-tiny");
    first_step("dream-tiny");
    first_step("bd3lm-qwen3-tiny");
}

int main(void) {
    RUN(test_config_parse_rope);
    RUN(test_llama2c_rejects_truncated);
    RUN(test_stories260k_greedy);
    RUN(test_qwen2_tiny);
    RUN(test_qwen3_tiny);
    RUN(test_llama_tiny);
    RUN(test_smollm2_tiny);
    RUN(test_llada_bidirectional);
    RUN(test_block_causal_mask);
    RUN(test_diffusion_configs);
    RUN(test_rope_scaling);
    RUN(test_diffusion_first_steps);
    RUN(test_model_open_and_parquet);
    RUN(test_quantized_budgets);
    TEST_MAIN_END();
}
