/*
 * bert.c — BERT encoder forward pass and MLM head on the CPU kernels.
 *
 * Follows transformers' BertModel (post-LayerNorm blocks):
 *   x = LN(word[id] + pos[l] + type[tt])
 *   per layer: a = softmax(q k^T / sqrt(head_dim) + mask) v;  x = LN(x + a Wo + bo)
 *              x = LN(x + GELU(x Wi + bi) Wo2 + bo2)
 * The padding mask hides keys only (queries at padded positions are still computed, so the
 * whole last_hidden_state matches transformers).  The MLM head is
 * LN(GELU(x Wt + bt)) @ word_embeddings^T + bias.  Weights are used in whatever dtype they
 * are stored (f32, f16, bf16, or ArrowQuant int8/int4/int2) through aios_matmul; embedding
 * rows are read with aios_tensor_row_f32.  Activations live in one workspace per handle,
 * grown only when a larger batch arrives.  Float32 layer matrices are packed into GEMM panels
 * once, at the second forward of a batch (BERT_PACK_MIN_ROWS).
 */
#include "model/bert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/kernels.h"

typedef struct {
    const aios_tensor *wq, *wk, *wv, *wo, *wi, *wo2;
    aios_matmul_pack *pq, *pk, *pv, *po, *pi, *po2; /* their GEMM panels (pack_layers), or NULL */
    float *bq, *bk, *bv, *bo, *ln1_w, *ln1_b, *bi, *bo2, *ln2_w, *ln2_b;
} bert_layer;

struct aios_bert {
    aios_bert_hparams hp;
    const aios_tensor *word, *pos, *type;
    float *emb_ln_w, *emb_ln_b;
    bert_layer *layers;
    /* MLM head (optional) */
    const aios_tensor *mlm_dense, *mlm_decoder;
    float *mlm_dense_b, *mlm_ln_w, *mlm_ln_b, *mlm_bias;
    /* every float array above, for freeing */
    float **owned;
    int n_owned, cap_owned;
    /* workspace */
    float *ws;
    size_t ws_floats;
    int packed;      /* pack_layers ran */
    int large_calls; /* forwards of BERT_PACK_MIN_ROWS rows or more so far */
};

typedef struct {
    aios_tensor_lookup get;
    void *ctx;
    const char *prefix;
} finder;

static const aios_tensor *find(const finder *f, const char *name) {
    char buf[256];
    const aios_tensor *t = f->get(f->ctx, name);
    if (t) return t;
    snprintf(buf, sizeof buf, "bert.%s", name);
    t = f->get(f->ctx, buf);
    if (t) return t;
    /* old TF-converted names: LayerNorm.gamma / LayerNorm.beta */
    const char *w = strstr(name, "LayerNorm.weight"), *b = strstr(name, "LayerNorm.bias");
    if (w || b) {
        size_t n = (size_t)((w ? w : b) - name);
        snprintf(buf, sizeof buf, "%.*sLayerNorm.%s", (int)n, name, w ? "gamma" : "beta");
        if ((t = f->get(f->ctx, buf))) return t;
        char b2[300];
        snprintf(b2, sizeof b2, "bert.%s", buf);
        return f->get(f->ctx, b2);
    }
    return NULL;
}

static aios_status need(const finder *f, const char *name, int64_t d0, int64_t d1, const aios_tensor **out) {
    const aios_tensor *t = find(f, name);
    if (!t) return aios__err(AIOS_ERR_NOT_FOUND, "bert: tensor %s not found", name);
    int nd = d1 < 0 ? 1 : 2;
    if (t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1))
        return aios__err(AIOS_ERR_SHAPE, "bert: tensor %s: shape [%lld%s%lld] expected [%lld%s%lld]", name,
                         (long long)t->shape[0], t->ndim > 1 ? ", " : "", t->ndim > 1 ? (long long)t->shape[1] : 0LL,
                         (long long)d0, nd > 1 ? ", " : "", nd > 1 ? (long long)d1 : 0LL);
    *out = t;
    return AIOS_OK;
}

/* A 1-D parameter of n floats, copied to float32 (NULL tensor -> zeros when optional). */
static aios_status vec(aios_bert *b, const finder *f, const char *name, int64_t n, int optional, float **out) {
    const aios_tensor *t = find(f, name);
    if (!t && !optional) return aios__err(AIOS_ERR_NOT_FOUND, "bert: tensor %s not found", name);
    if (t && (t->ndim != 1 || t->shape[0] != n))
        return aios__err(AIOS_ERR_SHAPE, "bert: tensor %s: expected %lld values", name, (long long)n);
    if (b->n_owned == b->cap_owned) {
        int cap = b->cap_owned ? b->cap_owned * 2 : 64;
        float **p = realloc(b->owned, sizeof(float *) * (size_t)cap);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "bert: parameters");
        b->owned = p;
        b->cap_owned = cap;
    }
    float *v = calloc((size_t)n, sizeof(float));
    if (!v) return aios__err(AIOS_ERR_NOMEM, "bert: %s", name);
    b->owned[b->n_owned++] = v;
    if (t) {
        aios_status s = aios_tensor_to_f32(v, t);
        if (s != AIOS_OK) return aios__err_prefix(s, "bert: %s", name);
    }
    *out = v;
    return AIOS_OK;
}

void aios_bert_free(aios_bert *b) {
    if (!b) return;
    for (int i = 0; i < b->n_owned; i++) free(b->owned[i]);
    free(b->owned);
    for (int64_t l = 0; b->layers && l < b->hp.n_layer; l++) {
        bert_layer *Ly = &b->layers[l];
        aios_matmul_pack *p[6] = {Ly->pq, Ly->pk, Ly->pv, Ly->po, Ly->pi, Ly->po2};
        for (int i = 0; i < 6; i++) aios_matmul_pack_free(p[i]);
    }
    free(b->layers);
    free(b->ws);
    free(b);
}

aios_status aios_bert_load(const aios_bert_hparams *hp, aios_tensor_lookup get, void *ctx, aios_bert **out) {
    *out = NULL;
    if (hp->n_embd <= 0 || hp->n_head <= 0 || hp->n_embd % hp->n_head || hp->n_layer <= 0 || hp->n_ff <= 0 ||
        hp->n_vocab <= 0 || hp->n_ctx <= 0 || hp->n_layer > 1024)
        return aios__err(AIOS_ERR_CONFIG, "bert: bad sizes (n_embd %lld, n_head %lld, n_layer %lld, n_ff %lld)",
                         (long long)hp->n_embd, (long long)hp->n_head, (long long)hp->n_layer, (long long)hp->n_ff);
    aios_bert *b = calloc(1, sizeof *b);
    if (!b) return aios__err(AIOS_ERR_NOMEM, "bert");
    b->hp = *hp;
    b->layers = calloc((size_t)hp->n_layer, sizeof(bert_layer));
    if (!b->layers) {
        aios_bert_free(b);
        return aios__err(AIOS_ERR_NOMEM, "bert");
    }
    finder f = {get, ctx, NULL};
    const int64_t E = hp->n_embd, F = hp->n_ff;
    aios_status s;
#define T(x) \
    if ((s = (x)) != AIOS_OK) goto fail
    T(need(&f, "embeddings.word_embeddings.weight", hp->n_vocab, E, &b->word));
    T(need(&f, "embeddings.position_embeddings.weight", hp->n_ctx, E, &b->pos));
    b->type = find(&f, "embeddings.token_type_embeddings.weight");
    if (b->type && (b->type->ndim != 2 || b->type->shape[1] != E)) {
        s = aios__err(AIOS_ERR_SHAPE, "bert: embeddings.token_type_embeddings.weight: bad shape");
        goto fail;
    }
    b->hp.type_vocab_size = b->type ? b->type->shape[0] : 0;
    T(vec(b, &f, "embeddings.LayerNorm.weight", E, 0, &b->emb_ln_w));
    T(vec(b, &f, "embeddings.LayerNorm.bias", E, 0, &b->emb_ln_b));
    for (int64_t l = 0; l < hp->n_layer; l++) {
        bert_layer *L = &b->layers[l];
        char n[160];
#define NM(suffix) (snprintf(n, sizeof n, "encoder.layer.%lld.%s", (long long)l, suffix), n)
        T(need(&f, NM("attention.self.query.weight"), E, E, &L->wq));
        T(need(&f, NM("attention.self.key.weight"), E, E, &L->wk));
        T(need(&f, NM("attention.self.value.weight"), E, E, &L->wv));
        T(need(&f, NM("attention.output.dense.weight"), E, E, &L->wo));
        T(need(&f, NM("intermediate.dense.weight"), F, E, &L->wi));
        T(need(&f, NM("output.dense.weight"), E, F, &L->wo2));
        T(vec(b, &f, NM("attention.self.query.bias"), E, 1, &L->bq));
        T(vec(b, &f, NM("attention.self.key.bias"), E, 1, &L->bk));
        T(vec(b, &f, NM("attention.self.value.bias"), E, 1, &L->bv));
        T(vec(b, &f, NM("attention.output.dense.bias"), E, 1, &L->bo));
        T(vec(b, &f, NM("attention.output.LayerNorm.weight"), E, 0, &L->ln1_w));
        T(vec(b, &f, NM("attention.output.LayerNorm.bias"), E, 0, &L->ln1_b));
        T(vec(b, &f, NM("intermediate.dense.bias"), F, 1, &L->bi));
        T(vec(b, &f, NM("output.dense.bias"), E, 1, &L->bo2));
        T(vec(b, &f, NM("output.LayerNorm.weight"), E, 0, &L->ln2_w));
        T(vec(b, &f, NM("output.LayerNorm.bias"), E, 0, &L->ln2_b));
#undef NM
    }
    /* MLM head: present in BertForMaskedLM checkpoints */
    if (get(ctx, "cls.predictions.transform.dense.weight")) {
        T(need(&f, "cls.predictions.transform.dense.weight", E, E, &b->mlm_dense));
        T(vec(b, &f, "cls.predictions.transform.dense.bias", E, 1, &b->mlm_dense_b));
        T(vec(b, &f, "cls.predictions.transform.LayerNorm.weight", E, 0, &b->mlm_ln_w));
        T(vec(b, &f, "cls.predictions.transform.LayerNorm.bias", E, 0, &b->mlm_ln_b));
        b->mlm_decoder = b->word; /* tied unless the checkpoint stores its own decoder */
        if (get(ctx, "cls.predictions.decoder.weight")) {
            T(need(&f, "cls.predictions.decoder.weight", hp->n_vocab, E, &b->mlm_decoder));
        }
        const char *bn = get(ctx, "cls.predictions.bias") ? "cls.predictions.bias" : "cls.predictions.decoder.bias";
        T(vec(b, &f, bn, hp->n_vocab, 1, &b->mlm_bias));
    }
#undef T
    *out = b;
    return AIOS_OK;
fail:
    aios_bert_free(b);
    return s;
}

const aios_bert_hparams *aios_bert_hparams_of(const aios_bert *b) { return &b->hp; }
int aios_bert_has_mlm(const aios_bert *b) { return b->mlm_dense != NULL; }
int aios_bert_int8_weights(const aios_bert *b) {
    for (int64_t l = 0; l < b->hp.n_layer; l++) {
        const bert_layer *Ly = &b->layers[l];
        const aios_tensor *w[6] = {Ly->wq, Ly->wk, Ly->wv, Ly->wo, Ly->wi, Ly->wo2};
        for (int i = 0; i < 6; i++)
            if (w[i]->dtype != AIOS_DTYPE_Q8) return 0;
    }
    return b->hp.n_layer > 0;
}

static aios_status workspace(aios_bert *b, size_t floats) {
    if (floats > b->ws_floats) {
        float *p = realloc(b->ws, floats * sizeof(float));
        if (!p) return aios__err(AIOS_ERR_NOMEM, "bert: workspace of %zu floats", floats);
        b->ws = p;
        b->ws_floats = floats;
    }
    return AIOS_OK;
}

/* The second forward of more than 48 token rows packs the layers' float32 matrices into GEMM
 * panels once (aios_matmul_pack_new) instead of on every product: a server's encoder runs batch
 * after batch.  Fewer rows (one sentence) take the few-row product that reads W in place, and a
 * single large forward packs per call as before, so a model used one text at a time, or for
 * one long text, never holds the copy (W's size again: 42 MB for MiniLM-L6). */
#define BERT_PACK_MIN_ROWS 49

static void pack_layers(aios_bert *b) {
    b->packed = 1;
    for (int64_t l = 0; l < b->hp.n_layer; l++) {
        bert_layer *Ly = &b->layers[l];
        const aios_tensor *w[6] = {Ly->wq, Ly->wk, Ly->wv, Ly->wo, Ly->wi, Ly->wo2};
        aios_matmul_pack **p[6] = {&Ly->pq, &Ly->pk, &Ly->pv, &Ly->po, &Ly->pi, &Ly->po2};
        for (int i = 0; i < 6; i++)
            if (aios_matmul_pack_new(w[i], p[i]) != AIOS_OK) aios_clear_error(); /* no pack: packed per call */
    }
}

/* The forward over T token rows, in one of two layouts:
 *   padded (lens NULL): B sequences of L rows each, attn_mask (B, L) or NULL hiding padded keys;
 *   packed (lens given): B sequences of lens[b] rows back to back, T = sum lens, no padding.
 * Every matrix product runs on all T rows at once; only attention is per sequence.  A row's
 * values do not depend on its neighbours (the products are row-wise, the packed sequence's
 * attention is that sequence alone), so a text gives the same bits alone or packed with others. */
static aios_status forward(aios_bert *b, const int32_t *ids, const int32_t *type_ids, const uint8_t *attn_mask,
                           const int64_t *lens, int64_t B, int64_t L, int64_t T, float *hidden) {
    const aios_bert_hparams *hp = &b->hp;
    const int64_t E = hp->n_embd, F = hp->n_ff, H = hp->n_head, hd = E / H;
    if (T == 0) return AIOS_OK;
    for (int64_t t = 0; t < T; t++) {
        if (ids[t] < 0 || ids[t] >= hp->n_vocab)
            return aios__err(AIOS_ERR_RANGE, "bert: token id %d outside the vocabulary of %lld", ids[t], (long long)hp->n_vocab);
        if (type_ids && (type_ids[t] < 0 || type_ids[t] >= (b->type ? hp->type_vocab_size : 1)))
            return aios__err(AIOS_ERR_RANGE, "bert: token type %d outside [0, %lld)", type_ids[t], (long long)hp->type_vocab_size);
    }
    /* workspace: q, k, v, ctx (T, E) + ff (T, F) + one row scratch */
    AIOS_TRY(workspace(b, (size_t)T * (size_t)(4 * E + F) + (size_t)E));
    float *q = b->ws, *k = q + T * E, *v = k + T * E, *ctx = v + T * E, *ff = ctx + T * E, *row = ff + T * F;
    float *x = hidden;

    /* embeddings: position = the row's index within its sequence */
    for (int64_t s = 0, t = 0; s < B; s++) {
        const int64_t n = lens ? lens[s] : L;
        for (int64_t i = 0; i < n; i++, t++) {
            float *xt = x + t * E;
            AIOS_TRY(aios_tensor_row_f32(xt, b->word, ids[t]));
            AIOS_TRY(aios_tensor_row_f32(row, b->pos, i));
            aios_add(xt, row, E);
            if (b->type) {
                AIOS_TRY(aios_tensor_row_f32(row, b->type, type_ids ? type_ids[t] : 0));
                aios_add(xt, row, E);
            }
        }
    }
    aios_layernorm(x, x, b->emb_ln_w, b->emb_ln_b, T, E, hp->eps);

    if (T >= BERT_PACK_MIN_ROWS && !b->packed && ++b->large_calls >= 2) pack_layers(b);
    const float scale = 1.0f / sqrtf((float)hd);
    for (int64_t l = 0; l < hp->n_layer; l++) {
        const bert_layer *Ly = &b->layers[l];
        AIOS_TRY(aios_matmul_packed(q, x, Ly->wq, Ly->pq, Ly->bq, T));
        AIOS_TRY(aios_matmul_packed(k, x, Ly->wk, Ly->pk, Ly->bk, T));
        AIOS_TRY(aios_matmul_packed(v, x, Ly->wv, Ly->pv, Ly->bv, T));
        if (!lens) {
            AIOS_TRY(aios_attention_batch(ctx, q, k, v, B, L, H, H, hd, E, attn_mask, scale));
        } else {
            for (int64_t s = 0, o = 0; s < B; o += lens[s] * E, s++)
                AIOS_TRY(aios_attention_batch(ctx + o, q + o, k + o, v + o, 1, lens[s], H, H, hd, E, NULL, scale));
        }
        AIOS_TRY(aios_matmul_packed(q, ctx, Ly->wo, Ly->po, Ly->bo, T)); /* q reused as the attention output */
        aios_add(x, q, T * E);
        aios_layernorm(x, x, Ly->ln1_w, Ly->ln1_b, T, E, hp->eps);
        AIOS_TRY(aios_matmul_packed(ff, x, Ly->wi, Ly->pi, Ly->bi, T));
        aios_gelu(ff, T * F);
        AIOS_TRY(aios_matmul_packed(q, ff, Ly->wo2, Ly->po2, Ly->bo2, T));
        aios_add(x, q, T * E);
        aios_layernorm(x, x, Ly->ln2_w, Ly->ln2_b, T, E, hp->eps);
    }
    return AIOS_OK;
}

aios_status aios_bert_forward(aios_bert *b, const int32_t *ids, const int32_t *type_ids, const uint8_t *attn_mask,
                              int64_t B, int64_t L, float *hidden) {
    if (B < 0 || L < 0) return aios__err(AIOS_ERR_INVALID_ARG, "bert: batch %lld x %lld", (long long)B, (long long)L);
    if (L > b->hp.n_ctx)
        return aios__err(AIOS_ERR_RANGE, "bert: sequence of %lld tokens exceeds the model's %lld positions", (long long)L,
                         (long long)b->hp.n_ctx);
    return forward(b, ids, type_ids, attn_mask, NULL, B, L, B * L, hidden);
}

aios_status aios_bert_forward_packed(aios_bert *b, const int32_t *ids, const int32_t *type_ids, const int64_t *lens,
                                     int64_t B, float *hidden) {
    if (B < 0 || (B && !lens)) return aios__err(AIOS_ERR_INVALID_ARG, "bert: packed batch of %lld", (long long)B);
    int64_t T = 0;
    for (int64_t s = 0; s < B; s++) {
        if (lens[s] <= 0 || lens[s] > b->hp.n_ctx)
            return aios__err(lens[s] <= 0 ? AIOS_ERR_INVALID_ARG : AIOS_ERR_RANGE,
                             "bert: sequence %lld of %lld tokens (the model has %lld positions)", (long long)s,
                             (long long)lens[s], (long long)b->hp.n_ctx);
        T += lens[s];
    }
    return forward(b, ids, type_ids, NULL, lens, B, 0, T, hidden);
}

aios_status aios_bert_mlm_logits(aios_bert *b, const float *hidden, int64_t T, float *logits) {
    if (!b->mlm_dense) return aios__err(AIOS_ERR_UNSUPPORTED, "bert: this checkpoint has no MLM head (cls.predictions.*)");
    const int64_t E = b->hp.n_embd;
    AIOS_TRY(workspace(b, (size_t)(T > 0 ? T : 1) * (size_t)E));
    float *h = b->ws;
    AIOS_TRY(aios_matmul(h, hidden, b->mlm_dense, b->mlm_dense_b, T));
    aios_gelu(h, T * E);
    aios_layernorm(h, h, b->mlm_ln_w, b->mlm_ln_b, T, E, b->hp.eps);
    return aios_matmul(logits, h, b->mlm_decoder, b->mlm_bias, T);
}
