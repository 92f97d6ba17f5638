/* test_bert.c — the BERT encoder and MLM head against the transformers goldens of
 * ../shared/fixtures/models/bert-tiny (float64 PyTorch, stored float32): last_hidden_state and
 * mlm_logits within 1e-4 relative error, mean+L2 embeddings and CLS vectors with cosine
 * >= 0.99999 — on every kernel tier — and int8 / int4 quantized weights within stated budgets. */
#include <cjson/cJSON.h>
#include <math.h>

#include "core/internal.h"
#include "format/safetensors.h"
#include "kernels/kernels.h"
#include "model/bert.h"
#include "tensor/quant.h"
#include "test.h"
#include "tiers.h"

static aios_safetensors *g_w, *g_gold;
static aios_bert_hparams g_hp;

static const aios_tensor *lookup_st(void *ctx, const char *name) { return aios_safetensors_find(ctx, name); }

static int load(void) {
    if (g_w) return 1;
    if (aios_safetensors_open(aios_test_shared("fixtures/models/bert-tiny/model.safetensors"), &g_w) != AIOS_OK) return 0;
    if (aios_safetensors_open(aios_test_shared("fixtures/models/bert-tiny/golden.safetensors"), &g_gold) != AIOS_OK) return 0;
    char *txt;
    size_t len;
    if (aios__read_file(aios_test_shared("fixtures/models/bert-tiny/config.json"), &txt, &len) != AIOS_OK) return 0;
    cJSON *c = cJSON_Parse(txt);
    free(txt);
    g_hp.n_embd = cJSON_GetObjectItem(c, "hidden_size")->valueint;
    g_hp.n_layer = cJSON_GetObjectItem(c, "num_hidden_layers")->valueint;
    g_hp.n_head = cJSON_GetObjectItem(c, "num_attention_heads")->valueint;
    g_hp.n_ff = cJSON_GetObjectItem(c, "intermediate_size")->valueint;
    g_hp.n_vocab = cJSON_GetObjectItem(c, "vocab_size")->valueint;
    g_hp.n_ctx = cJSON_GetObjectItem(c, "max_position_embeddings")->valueint;
    g_hp.eps = (float)cJSON_GetObjectItem(c, "layer_norm_eps")->valuedouble;
    cJSON_Delete(c);
    return 1;
}

static const float *gold(const char *name, int64_t *n) {
    const aios_tensor *t = aios_safetensors_find(g_gold, name);
    if (n) *n = t ? aios_tensor_numel(t) : 0;
    return t ? (const float *)t->data : NULL;
}

static double cosine(const float *a, const float *b, int64_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

typedef struct {
    double hidden_rel, emb_cos_min, cls_cos_min, mlm_rel;
} result;

/* Runs the golden batch through an encoder and compares with the goldens. */
static void run_golden(aios_bert *b, result *r) {
    const aios_tensor *ids_t = aios_safetensors_find(g_gold, "input_ids"), *am_t = aios_safetensors_find(g_gold, "attention_mask");
    int64_t B = ids_t->shape[0], L = ids_t->shape[1], E = g_hp.n_embd;
    const int32_t *ids = ids_t->data, *am = am_t->data;
    uint8_t *mask = malloc((size_t)(B * L));
    for (int64_t i = 0; i < B * L; i++) mask[i] = (uint8_t)(am[i] != 0);
    float *h = malloc(sizeof(float) * (size_t)(B * L * E));
    CHECK_OK(aios_bert_forward(b, ids, NULL, mask, B, L, h));
    int64_t n;
    const float *hs = gold("last_hidden_state", &n);
    CHECK(n == B * L * E);
    r->hidden_rel = t_rel_err(h, hs, (size_t)n);
    /* mean pooling over real tokens, then L2; CLS = row 0 */
    const float *emb = gold("embeddings", NULL), *cls = gold("cls_pooled", NULL);
    r->emb_cos_min = r->cls_cos_min = 1;
    for (int64_t s = 0; s < B; s++) {
        float m[1024] = {0};
        int64_t cnt = 0;
        for (int64_t l = 0; l < L; l++)
            if (mask[s * L + l]) {
                for (int64_t e = 0; e < E; e++) m[e] += h[(s * L + l) * E + e];
                cnt++;
            }
        for (int64_t e = 0; e < E; e++) m[e] /= (float)cnt;
        r->emb_cos_min = fmin(r->emb_cos_min, cosine(m, emb + s * E, E));
        r->cls_cos_min = fmin(r->cls_cos_min, cosine(h + s * L * E, cls + s * E, E));
    }
    /* MLM logits of sentence 0 (padded to L, as the golden) */
    CHECK(aios_bert_has_mlm(b));
    float *lg = malloc(sizeof(float) * (size_t)(L * g_hp.n_vocab)), *h0 = malloc(sizeof(float) * (size_t)(L * E));
    CHECK_OK(aios_bert_forward(b, ids, NULL, mask, 1, L, h0));
    CHECK_OK(aios_bert_mlm_logits(b, h0, L, lg));
    const float *ml = gold("mlm_logits", &n);
    CHECK(n == L * g_hp.n_vocab);
    r->mlm_rel = t_rel_err(lg, ml, (size_t)n);
    free(mask), free(h), free(lg), free(h0);
}

static void test_bert_tiny_goldens(void) {
    if (!load()) SKIP("bert-tiny fixture unavailable: %s", aios_last_error());
    static const char *tiers[] = {"ref", "avx2", "avx512"};
    for (int t = 0; t < 3; t++) {
        if (!t_use_tier(tiers[t])) continue;
        aios_bert *b = NULL;
        CHECK_OK(aios_bert_load(&g_hp, lookup_st, g_w, &b));
        if (!b) return;
        result r;
        run_golden(b, &r);
        printf("# %s: hidden rel %.2e, mlm rel %.2e, emb cos %.8f, cls cos %.8f\n", tiers[t], r.hidden_rel, r.mlm_rel,
               r.emb_cos_min, r.cls_cos_min);
        CHECKF(r.hidden_rel <= 1e-4, "%s: last_hidden_state rel err %g", tiers[t], r.hidden_rel);
        CHECKF(r.mlm_rel <= 1e-4, "%s: mlm_logits rel err %g", tiers[t], r.mlm_rel);
        CHECKF(r.emb_cos_min >= 0.99999, "%s: embedding cosine %.8f", tiers[t], r.emb_cos_min);
        CHECKF(r.cls_cos_min >= 0.99999, "%s: cls cosine %.8f", tiers[t], r.cls_cos_min);
        aios_bert_free(b);
    }
    aios_kernels_use("auto");
}

/* The packed forward (the golden batch's real tokens back to back, no padding) on every tier:
 * its rows against transformers' last_hidden_state, and each sequence against its own forward
 * alone — bit for bit from 8 tokens (the GEMM paths sum in one order whatever the row count),
 * to float rounding below (fewer rows take the GEMV / tile products) — and the second forward
 * (weights packed once, bert.c pack_layers) against the first. */
static void test_bert_packed(void) {
    if (!load()) SKIP("bert-tiny fixture unavailable: %s", aios_last_error());
    const aios_tensor *ids_t = aios_safetensors_find(g_gold, "input_ids"), *am_t = aios_safetensors_find(g_gold, "attention_mask");
    const int64_t B = ids_t->shape[0], L = ids_t->shape[1], E = g_hp.n_embd;
    const int32_t *ids = ids_t->data, *am = am_t->data;
    const float *hs = gold("last_hidden_state", NULL);
    int32_t *pid = malloc(sizeof(int32_t) * (size_t)(B * L));
    int64_t lens[64], T = 0, n_long = 0;
    float *want = malloc(sizeof(float) * (size_t)(B * L * E));
    for (int64_t s = 0; s < B; s++) {
        lens[s] = 0;
        for (int64_t l = 0; l < L; l++)
            if (am[s * L + l]) {
                pid[T] = ids[s * L + l];
                memcpy(want + T * E, hs + (s * L + l) * E, sizeof(float) * (size_t)E);
                T++, lens[s]++;
            }
        n_long += lens[s] >= 8;
    }
    CHECK(T > 48 && n_long >= 2 && n_long < B); /* the GEMM past the few-row path; both kinds of sequence */
    float *h = malloc(sizeof(float) * (size_t)(T * E)), *h1 = malloc(sizeof(float) * (size_t)(L * E));
    float *h1big = malloc(sizeof(float) * (size_t)(T * E));
    static const char *tiers[] = {"ref", "avx2", "avx512"};
    for (int t = 0; t < 3; t++) {
        if (!t_use_tier(tiers[t])) continue;
        aios_bert *b = NULL;
        CHECK_OK(aios_bert_load(&g_hp, lookup_st, g_w, &b));
        if (!b) break;
        /* the first large forward packs W per product, the second through panels packed once */
        CHECK_OK(aios_bert_forward_packed(b, pid, NULL, lens, B, h1big));
        CHECK_OK(aios_bert_forward_packed(b, pid, NULL, lens, B, h));
        CHECKF(!memcmp(h, h1big, sizeof(float) * (size_t)(T * E)), "%s: the forward through packed panels differs", tiers[t]);
        double rel = t_rel_err(h, want, (size_t)(T * E)), alone = 0;
        int differ = 0;
        for (int64_t s = 0, r = 0; s < B; r += lens[s], s++) {
            CHECK_OK(aios_bert_forward(b, pid + r, NULL, NULL, 1, lens[s], h1));
            if (lens[s] >= 8) differ += memcmp(h1, h + r * E, sizeof(float) * (size_t)(lens[s] * E)) != 0;
            else alone = fmax(alone, t_rel_err(h + r * E, h1, (size_t)(lens[s] * E)));
        }
        printf("# %s packed: hidden rel %.2e, short sequences vs alone %.2e\n", tiers[t], rel, alone);
        CHECKF(rel <= 1e-4, "%s: packed last_hidden_state rel err %g", tiers[t], rel);
        CHECKF(differ == 0, "%s: %d sequences of >= 8 tokens differ from their forward alone", tiers[t], differ);
        CHECKF(alone <= 1e-6, "%s: short sequences vs alone %g", tiers[t], alone);
        aios_bert_free(b);
    }
    aios_kernels_use("auto");
    /* bad lengths and ids */
    aios_bert *b = NULL;
    CHECK_OK(aios_bert_load(&g_hp, lookup_st, g_w, &b));
    int64_t bad[2] = {3, 0};
    CHECK(aios_bert_forward_packed(b, pid, NULL, bad, 2, h) == AIOS_ERR_INVALID_ARG);
    bad[1] = g_hp.n_ctx + 1;
    CHECK(aios_bert_forward_packed(b, pid, NULL, bad, 2, h) == AIOS_ERR_RANGE);
    CHECK(aios_bert_forward_packed(b, pid, NULL, NULL, 1, h) == AIOS_ERR_INVALID_ARG);
    int32_t oov[2] = {101, (int32_t)g_hp.n_vocab};
    bad[0] = 2;
    CHECK(aios_bert_forward_packed(b, oov, NULL, bad, 1, h) == AIOS_ERR_RANGE);
    CHECK_OK(aios_bert_forward_packed(b, pid, NULL, lens, 0, h));
    aios_bert_free(b);
    free(pid), free(want), free(h), free(h1), free(h1big);
}

/* Quantized copies of every 2-D encoder weight (embeddings stay float, as the quantizer does). */
typedef struct {
    aios_safetensors *src;
    int n;
    aios_tensor t[64];
    void *bufs[192];
    int nb;
} qmodel;

static const aios_tensor *lookup_q(void *ctx, const char *name) {
    qmodel *q = ctx;
    for (int i = 0; i < q->n; i++)
        if (!strcmp(q->t[i].name, name)) return &q->t[i];
    return aios_safetensors_find(q->src, name);
}

static void quantize_model(qmodel *q, aios_dtype dt, int group) {
    memset(q, 0, sizeof *q);
    q->src = g_w;
    for (int64_t i = 0; i < aios_safetensors_count(g_w); i++) {
        const aios_tensor *t = aios_safetensors_tensor(g_w, i);
        if (t->ndim != 2 || strstr(t->name, "embeddings") || q->n == 64) continue;
        aios_quant_params p = {.type = dt, .group_size = group, .per_channel = 1, .symmetric = 0};
        int64_t ns;
        int32_t axis, gs;
        CHECK_OK(aios_quant_layout(&p, t->shape[0], t->shape[1], &ns, &axis, &gs));
        size_t nbytes;
        CHECK_OK(aios_dtype_nbytes(dt, aios_tensor_numel(t), &nbytes));
        uint8_t *data = calloc(nbytes, 1);
        float *sc = malloc(sizeof(float) * (size_t)ns), *zp = malloc(sizeof(float) * (size_t)ns);
        CHECK_OK(aios_quantize_f32(t->data, t->shape[0], t->shape[1], &p, data, sc, zp));
        aios_tensor *o = &q->t[q->n++];
        *o = *t;
        o->dtype = dt;
        o->data = data;
        o->nbytes = nbytes;
        o->scales = sc;
        o->zero_points = zp;
        o->n_scales = ns;
        o->quant_axis = axis;
        o->group_size = gs;
        q->bufs[q->nb++] = data, q->bufs[q->nb++] = sc, q->bufs[q->nb++] = zp;
    }
}

static void test_bert_tiny_quantized(void) {
    if (!load()) SKIP("bert-tiny fixture unavailable: %s", aios_last_error());
    /* budgets measured on this fixture's random weights (real checkpoints quantize better) */
    struct { aios_dtype dt; int group; const char *what; double emb_cos, hidden_rel; } cases[] = {
        {AIOS_DTYPE_Q8, 0, "int8 per-channel", 0.9999, 0.02},
        {AIOS_DTYPE_Q4, 16, "int4 group 16", 0.97, 0.25},
    };
    for (int c = 0; c < 2; c++) {
        qmodel *q = calloc(1, sizeof *q);
        quantize_model(q, cases[c].dt, cases[c].group);
        aios_bert *b = NULL;
        CHECK_OK(aios_bert_load(&g_hp, lookup_q, q, &b));
        if (b) {
            result r;
            run_golden(b, &r);
            printf("# %s: hidden rel %.2e, mlm rel %.2e, emb cos %.6f, cls cos %.6f\n", cases[c].what, r.hidden_rel,
                   r.mlm_rel, r.emb_cos_min, r.cls_cos_min);
            CHECKF(r.emb_cos_min >= cases[c].emb_cos, "%s: embedding cosine %.6f", cases[c].what, r.emb_cos_min);
            CHECKF(r.hidden_rel <= cases[c].hidden_rel, "%s: hidden rel err %g", cases[c].what, r.hidden_rel);
            /* the fast tier agrees with the reference tier on quantized weights too */
            result rr, rv;
            aios_kernels_use("ref");
            run_golden(b, &rr);
            aios_kernels_use("auto");
            CHECKF(fabs(rr.hidden_rel - r.hidden_rel) < 1e-4, "%s: ref %g vs fast %g", cases[c].what, rr.hidden_rel, r.hidden_rel);
            /* int8 activations (VNNI, opt-in): a looser budget */
            if (cases[c].dt == AIOS_DTYPE_Q8 && aios_cpu()->avx512vnni) {
                aios_kernels_int8_activations(1);
                run_golden(b, &rv);
                aios_kernels_int8_activations(0);
                printf("# int8 x int8 activations: hidden rel %.2e, emb cos %.6f\n", rv.hidden_rel, rv.emb_cos_min);
                CHECKF(rv.emb_cos_min >= 0.9995 && rv.hidden_rel <= 0.03, "int8 activations: cos %.6f rel %g", rv.emb_cos_min, rv.hidden_rel);
            }
        }
        aios_bert_free(b);
        for (int i = 0; i < q->nb; i++) free(q->bufs[i]);
        free(q);
    }
}

static const aios_tensor *lookup_drop(void *ctx, const char *name) {
    if (strstr(name, "layer.1.output.dense.weight")) return NULL;
    return aios_safetensors_find(ctx, name);
}

static void test_bert_errors(void) {
    if (!load()) SKIP("bert-tiny fixture unavailable");
    aios_bert *b = NULL;
    CHECK(aios_bert_load(&g_hp, lookup_drop, g_w, &b) == AIOS_ERR_NOT_FOUND);
    CHECK(strstr(aios_last_error(), "encoder.layer.1.output.dense.weight") != NULL);
    aios_bert_hparams hp = g_hp;
    hp.n_ff = 65;
    CHECK(aios_bert_load(&hp, lookup_st, g_w, &b) == AIOS_ERR_SHAPE);
    CHECK_OK(aios_bert_load(&g_hp, lookup_st, g_w, &b));
    int32_t ids[3] = {101, 40000, 102};
    float h[3 * 32];
    CHECK(aios_bert_forward(b, ids, NULL, NULL, 1, 3, h) == AIOS_ERR_RANGE);
    ids[1] = 2000;
    int32_t tt[3] = {0, 2, 0};
    CHECK(aios_bert_forward(b, ids, tt, NULL, 1, 3, h) == AIOS_ERR_RANGE);
    CHECK_OK(aios_bert_forward(b, ids, NULL, NULL, 1, 3, h));
    CHECK(aios_bert_forward(b, ids, NULL, NULL, 1, 513, h) == AIOS_ERR_RANGE);
    aios_bert_free(b);
    aios_bert_free(NULL);
}

int main(void) {
    RUN(test_bert_tiny_goldens);
    RUN(test_bert_packed);
    RUN(test_bert_tiny_quantized);
    RUN(test_bert_errors);
    aios_safetensors_close(g_w);
    aios_safetensors_close(g_gold);
    TEST_MAIN_END();
}
