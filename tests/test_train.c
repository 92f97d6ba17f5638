/* test_train.c — LoRA training: the backward against float64 finite differences of an
 * independent float64 forward (odd sizes, every op on the path), the transposed product on
 * every stored dtype, the PEFT-made golden of fixtures/models/lora-qwen2-tiny (loss, every
 * lora_A/B gradient, one AdamW step), AdamW / clipping / schedules against their torch
 * formulas, PEFT directory and skill card round trips, the run-time adapter hook. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "format/safetensors.h"
#include "kernels/kernels.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "tensor/quant.h"
#include "tiers.h"
#include "test.h"
#include "train/train.h"

/* ------------------------------------------------------------------------------------------
 * a synthetic model of odd sizes, weights held by the test
 * ------------------------------------------------------------------------------------------ */

#define MAXT 64
typedef struct {
    char name[96];
    aios_tensor t;
    float *data;
} ntensor;
typedef struct {
    ntensor w[MAXT];
    int n;
} tmodel;

static const aios_tensor *tm_lookup(void *ctx, const char *name) {
    tmodel *m = ctx;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->w[i].name, name)) return &m->w[i].t;
    return NULL;
}

static uint64_t g_rng = 12345;
static double urand(void) { return aios_lora_rng_uniform(&g_rng) * 2 - 1; }

static void tm_add(tmodel *m, const char *name, int64_t r, int64_t c, double scale, double offset) {
    ntensor *n = &m->w[m->n++];
    snprintf(n->name, sizeof n->name, "%s", name);
    int64_t numel = r * (c ? c : 1);
    n->data = malloc((size_t)numel * sizeof(float));
    for (int64_t i = 0; i < numel; i++) n->data[i] = (float)(offset + scale * urand());
    n->t = (aios_tensor){.name = n->name, .dtype = AIOS_DTYPE_F32, .ndim = c ? 2 : 1, .shape = {r, c},
                         .data = n->data, .nbytes = (size_t)numel * sizeof(float)};
}

static void tm_free(tmodel *m) {
    for (int i = 0; i < m->n; i++) free(m->w[i].data);
}

/* qk_norm: Qwen3 norms; bias: q/k/v biases; tied head or not. */
static void tm_build(tmodel *m, aios_decoder_config *c, int qk_norm, int bias, int tied) {
    memset(m, 0, sizeof *m);
    memset(c, 0, sizeof *c);
    snprintf(c->model_type, sizeof c->model_type, "%s", qk_norm ? "qwen3" : bias ? "qwen2" : "llama");
    c->n_embd = 14, c->n_head = 3, c->n_head_kv = 1, c->head_dim = 6, c->n_layer = 2, c->n_ff = 19, c->n_vocab = 37;
    c->n_ctx_train = 64, c->eps = 1e-5f, c->rope_theta = 10000.0, c->rope_factor = 1, c->rope_orig_ctx = 64;
    c->tied = tied, c->bos_id = -1, c->pad_id = -1, c->mask_id = -1;
    const int64_t E = c->n_embd, Q = c->n_head * c->head_dim, KV = c->n_head_kv * c->head_dim, F = c->n_ff;
    tm_add(m, "model.embed_tokens.weight", c->n_vocab, E, 1.0, 0);
    tm_add(m, "model.norm.weight", E, 0, 0.2, 1.0);
    if (!tied) tm_add(m, "lm_head.weight", c->n_vocab, E, 0.4, 0);
    char n[96];
    for (int l = 0; l < 2; l++) {
#define A2(nm, r, cc) (snprintf(n, sizeof n, "model.layers.%d." nm, l), tm_add(m, n, r, cc, 1.0 / sqrt((double)(cc)), 0))
#define A1(nm, r, s, o) (snprintf(n, sizeof n, "model.layers.%d." nm, l), tm_add(m, n, r, 0, s, o))
        A2("self_attn.q_proj.weight", Q, E);
        A2("self_attn.k_proj.weight", KV, E);
        A2("self_attn.v_proj.weight", KV, E);
        A2("self_attn.o_proj.weight", E, Q);
        A2("mlp.gate_proj.weight", F, E);
        A2("mlp.up_proj.weight", F, E);
        A2("mlp.down_proj.weight", E, F);
        A1("input_layernorm.weight", E, 0.2, 1.0);
        A1("post_attention_layernorm.weight", E, 0.2, 1.0);
        if (bias) {
            A1("self_attn.q_proj.bias", Q, 0.3, 0);
            A1("self_attn.k_proj.bias", KV, 0.3, 0);
            A1("self_attn.v_proj.bias", KV, 0.3, 0);
        }
        if (qk_norm) {
            A1("self_attn.q_norm.weight", c->head_dim, 0.2, 1.0);
            A1("self_attn.k_norm.weight", c->head_dim, 0.2, 1.0);
        }
#undef A1
#undef A2
    }
}

/* ------------------------------------------------------------------------------------------
 * the float64 reference forward (written from transformers' modeling_llama / qwen3, with the
 * LoRA delta of PEFT) — independent of src/train
 * ------------------------------------------------------------------------------------------ */

static const float *W_(tmodel *m, const char *fmt, int l) {
    char n[96];
    snprintf(n, sizeof n, fmt, l);
    const aios_tensor *t = tm_lookup(m, n);
    return t ? t->data : NULL;
}

static void d_rms(double *y, const double *x, const float *w, int64_t n, double eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

/* y (n_out) = W x + b + s B (A x) with A, B in double (the perturbed parameters) */
static void d_lin(double *y, const float *W, const float *b, const double *x, int64_t no, int64_t ni,
                  const double *A, const double *Bm, int64_t r, double s) {
    double u[64];
    for (int64_t k = 0; A && k < r; k++) {
        u[k] = 0;
        for (int64_t j = 0; j < ni; j++) u[k] += A[k * ni + j] * x[j];
    }
    for (int64_t o = 0; o < no; o++) {
        double acc = b ? b[o] : 0;
        for (int64_t j = 0; j < ni; j++) acc += (double)W[o * ni + j] * x[j];
        for (int64_t k = 0; A && k < r; k++) acc += s * Bm[o * r + k] * u[k];
        y[o] = acc;
    }
}

/* loss of the batch with the adapter's parameters taken from p (n_params doubles, aios_lora
 * order) */
static double ref_loss(tmodel *m, const aios_decoder_config *c, const aios_lora *a, const double *p,
                       const aios_train_batch *bt) {
    const int64_t E = c->n_embd, nh = c->n_head, nkv = c->n_head_kv, hd = c->head_dim, F = c->n_ff, V = c->n_vocab;
    const int64_t Q = nh * hd, KV = nkv * hd, B = bt->B, L = bt->L, N = B * L;
    double *x = calloc((size_t)(N * E), sizeof(double)), *h = calloc((size_t)(N * E), 8), *q = calloc((size_t)(N * Q), 8),
           *k = calloc((size_t)(N * KV), 8), *v = calloc((size_t)(N * KV), 8), *att = calloc((size_t)(N * Q), 8),
           *g = calloc((size_t)(N * F), 8), *u = calloc((size_t)(N * F), 8), *tmp = calloc((size_t)(N * E), 8),
           *lg = calloc((size_t)V, 8);
    const float *emb = W_(m, "model.embed_tokens.weight", 0);
    for (int64_t i = 0; i < N; i++)
        for (int64_t e = 0; e < E; e++) x[i * E + e] = emb[bt->tokens[i] * E + e];
    const double s = aios_lora_scaling(a);
    float inv_freq[16];
    aios_decoder_rope_inv_freq(c, 0, inv_freq);
#define LA(l, t) (aios_lora_get(a, l, t) ? p + (aios_lora_get(a, l, t)->A - a->data) : NULL)
#define LB(l, t) (aios_lora_get(a, l, t) ? p + (aios_lora_get(a, l, t)->B - a->data) : NULL)
    for (int l = 0; l < c->n_layer; l++) {
        for (int64_t i = 0; i < N; i++) {
            d_rms(h + i * E, x + i * E, W_(m, "model.layers.%d.input_layernorm.weight", l), E, c->eps);
            d_lin(q + i * Q, W_(m, "model.layers.%d.self_attn.q_proj.weight", l), W_(m, "model.layers.%d.self_attn.q_proj.bias", l),
                  h + i * E, Q, E, LA(l, 0), LB(l, 0), a->r, s);
            d_lin(k + i * KV, W_(m, "model.layers.%d.self_attn.k_proj.weight", l), W_(m, "model.layers.%d.self_attn.k_proj.bias", l),
                  h + i * E, KV, E, LA(l, 1), LB(l, 1), a->r, s);
            d_lin(v + i * KV, W_(m, "model.layers.%d.self_attn.v_proj.weight", l), W_(m, "model.layers.%d.self_attn.v_proj.bias", l),
                  h + i * E, KV, E, LA(l, 2), LB(l, 2), a->r, s);
            const float *qn = W_(m, "model.layers.%d.self_attn.q_norm.weight", l);
            if (qn) {
                for (int64_t hh = 0; hh < nh; hh++) d_rms(q + i * Q + hh * hd, q + i * Q + hh * hd, qn, hd, c->eps);
                for (int64_t hh = 0; hh < nkv; hh++)
                    d_rms(k + i * KV + hh * hd, k + i * KV + hh * hd, W_(m, "model.layers.%d.self_attn.k_norm.weight", l), hd, c->eps);
            }
            const double pos = (double)(i % L);
            for (int64_t hh = 0; hh < nh + nkv; hh++) {
                double *vv = hh < nh ? q + i * Q + hh * hd : k + i * KV + (hh - nh) * hd;
                for (int64_t j = 0; j < hd / 2; j++) {
                    double ang = pos * inv_freq[j], cs = cos(ang), sn = sin(ang), a0 = vv[j], b0 = vv[j + hd / 2];
                    vv[j] = a0 * cs - b0 * sn;
                    vv[j + hd / 2] = b0 * cs + a0 * sn;
                }
            }
        }
        for (int64_t b = 0; b < B; b++)
            for (int64_t hh = 0; hh < nh; hh++)
                for (int64_t i = 0; i < L; i++) {
                    double sc[64], mx = -INFINITY, sum = 0;
                    const int64_t kh = hh / (nh / nkv);
                    for (int64_t j = 0; j <= i; j++) {
                        if (bt->mask && !bt->mask[b * L + j]) {
                            sc[j] = -INFINITY;
                            continue;
                        }
                        double d = 0;
                        for (int64_t e = 0; e < hd; e++) d += q[(b * L + i) * Q + hh * hd + e] * k[(b * L + j) * KV + kh * hd + e];
                        sc[j] = d / sqrt((double)hd);
                        mx = fmax(mx, sc[j]);
                    }
                    for (int64_t j = 0; j <= i; j++) sum += sc[j] == -INFINITY ? 0 : exp(sc[j] - mx);
                    double *o = att + (b * L + i) * Q + hh * hd;
                    for (int64_t e = 0; e < hd; e++) o[e] = 0;
                    for (int64_t j = 0; j <= i; j++) {
                        if (sc[j] == -INFINITY) continue;
                        double pj = exp(sc[j] - mx) / sum;
                        for (int64_t e = 0; e < hd; e++) o[e] += pj * v[(b * L + j) * KV + kh * hd + e];
                    }
                }
        for (int64_t i = 0; i < N; i++) {
            d_lin(tmp + i * E, W_(m, "model.layers.%d.self_attn.o_proj.weight", l), NULL, att + i * Q, E, Q, LA(l, 3),
                  LB(l, 3), a->r, s);
            for (int64_t e = 0; e < E; e++) x[i * E + e] += tmp[i * E + e];
            d_rms(h + i * E, x + i * E, W_(m, "model.layers.%d.post_attention_layernorm.weight", l), E, c->eps);
            d_lin(g + i * F, W_(m, "model.layers.%d.mlp.gate_proj.weight", l), NULL, h + i * E, F, E, LA(l, 4), LB(l, 4),
                  a->r, s);
            d_lin(u + i * F, W_(m, "model.layers.%d.mlp.up_proj.weight", l), NULL, h + i * E, F, E, LA(l, 5), LB(l, 5),
                  a->r, s);
            for (int64_t f = 0; f < F; f++) g[i * F + f] = g[i * F + f] / (1 + exp(-g[i * F + f])) * u[i * F + f];
            d_lin(tmp + i * E, W_(m, "model.layers.%d.mlp.down_proj.weight", l), NULL, g + i * F, E, F, LA(l, 6),
                  LB(l, 6), a->r, s);
            for (int64_t e = 0; e < E; e++) x[i * E + e] += tmp[i * E + e];
        }
    }
#undef LA
#undef LB
    const float *head = W_(m, c->tied ? "model.embed_tokens.weight" : "lm_head.weight", 0);
    double loss = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++) {
        if (i % L == L - 1 || bt->labels[i + 1] == -100) continue;
        d_rms(h, x + i * E, W_(m, "model.norm.weight", 0), E, c->eps);
        double mx = -INFINITY, se = 0;
        for (int64_t w = 0; w < V; w++) {
            lg[w] = 0;
            for (int64_t e = 0; e < E; e++) lg[w] += (double)head[w * E + e] * h[e];
            mx = fmax(mx, lg[w]);
        }
        for (int64_t w = 0; w < V; w++) se += exp(lg[w] - mx);
        loss += mx + log(se) - lg[bt->labels[i + 1]];
        n++;
    }
    free(x), free(h), free(q), free(k), free(v), free(att), free(g), free(u), free(tmp), free(lg);
    return n ? loss / (double)n : 0;
}

/* A padded batch of 3 rows of length 7: right padding, labels -100 on a "prompt" part. */
static void make_batch(int32_t *tok, uint8_t *mask, int32_t *lab, int64_t V) {
    static const int len[3] = {7, 5, 6};
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < 7; i++) {
            int real = i < len[b];
            tok[b * 7 + i] = real ? (int32_t)((b * 11 + i * 7 + 3) % V) : 2;
            mask[b * 7 + i] = (uint8_t)real;
            lab[b * 7 + i] = real && i >= 2 ? tok[b * 7 + i] : -100;
        }
}

/* The test model of one variant, its decoder and a random r = 3 adapter on all 7 modules;
 * 0 when either could not be made (the check has failed already). */
static int tiny_setup(tmodel *m, aios_decoder_config *c, int qk_norm, int bias, int tied, aios_decoder **d,
                      aios_lora **a) {
    tm_build(m, c, qk_norm, bias, tied);
    *d = NULL, *a = NULL;
    CHECK_OK(aios_decoder_create(c, tm_lookup, m, d));
    if (*d) CHECK_OK(aios_lora_create(aios_decoder_get_config(*d), (1u << AIOS_LORA_N_TARGETS) - 1, 3, 5.0, 0, a));
    if (!*d || !*a) return 0;
    for (int64_t i = 0; i < (*a)->n_params; i++) (*a)->data[i] = (float)(0.3 * urand());
    return 1;
}

static void fd_check(int qk_norm, int bias, int tied) {
    tmodel m;
    aios_decoder_config c;
    aios_decoder *d;
    aios_lora *a;
    aios_trainer *tr = NULL;
    if (!tiny_setup(&m, &c, qk_norm, bias, tied, &d, &a)) goto out;
    int32_t tok[21], lab[21];
    uint8_t mask[21];
    make_batch(tok, mask, lab, c.n_vocab);
    aios_train_batch bt = {.B = 3, .L = 7, .tokens = tok, .mask = mask, .labels = lab};
    CHECK_OK(aios_trainer_create(d, a, 1, &tr));
    if (!tr) goto out;
    double loss = 0;
    int64_t nl = 0;
    CHECK_OK(aios_trainer_step(tr, &bt, 1.0f, 1, &loss, &nl));
    CHECK(nl == 12); /* rows predicting a label: lengths 7, 5, 6 less the two prompt tokens */
    double *p = malloc((size_t)a->n_params * sizeof(double));
    for (int64_t i = 0; i < a->n_params; i++) p[i] = a->data[i];
    double ref = ref_loss(&m, aios_decoder_get_config(d), a, p, &bt);
    CHECKF(fabs(loss - ref) <= 1e-5 * fabs(ref), "loss %.9g vs float64 reference %.9g", loss, ref);
    /* central differences on every parameter of float64 losses, h = 1e-5 */
    const float *g = aios_trainer_grad(tr);
    double num = 0, den = 0, worst = 0;
    for (int64_t i = 0; i < a->n_params; i++) {
        const double h = 1e-5, p0 = p[i];
        p[i] = p0 + h;
        double lp = ref_loss(&m, aios_decoder_get_config(d), a, p, &bt);
        p[i] = p0 - h;
        double lm = ref_loss(&m, aios_decoder_get_config(d), a, p, &bt);
        p[i] = p0;
        double fd = (lp - lm) / (2 * h), e = fabs(fd - g[i]);
        num += e * e, den += fd * fd;
        worst = fmax(worst, e);
    }
    double rel = sqrt(num / den);
    printf("# fd qk_norm=%d bias=%d tied=%d: %lld params, grad rel err %.3g, max abs err %.3g\n", qk_norm, bias, tied,
           (long long)a->n_params, rel, worst);
    CHECKF(rel <= 1e-4, "gradient vs float64 finite differences: rel err %.3g", rel);
    free(p);
out:
    aios_trainer_free(tr);
    aios_lora_free(a);
    aios_decoder_free(d);
    tm_free(&m);
}

static void test_fd_llama_untied(void) { fd_check(0, 0, 0); }
static void test_fd_qwen2_bias_tied(void) { fd_check(0, 1, 1); }
static void test_fd_qwen3_qk_norm(void) { fd_check(1, 0, 1); }

/* --checkpoint: the recomputed forward gives the very gradients of the kept-activation run
 * (bit for bit), with dropout on (the masks must be redrawn identically) and over two steps
 * (the generator advances the same way), on all three variants; and it holds less. */
static void checkpoint_check(int qk_norm, int bias, int tied) {
    tmodel m;
    aios_decoder_config c;
    aios_decoder *d;
    aios_lora *a;
    aios_trainer *t0 = NULL, *t1 = NULL;
    if (!tiny_setup(&m, &c, qk_norm, bias, tied, &d, &a)) goto out;
    a->dropout = 0.25;
    int32_t tok[21], lab[21];
    uint8_t mask[21];
    make_batch(tok, mask, lab, c.n_vocab);
    aios_train_batch bt = {.B = 3, .L = 7, .tokens = tok, .mask = mask, .labels = lab};
    CHECK_OK(aios_trainer_create(d, a, 7, &t0));
    CHECK_OK(aios_trainer_create(d, a, 7, &t1));
    if (!t0 || !t1) goto out;
    aios_trainer_set_checkpoint(t1, 1);
    int64_t diff = 0;
    double worst = 0;
    for (int step = 0; step < 2; step++) {
        double l0 = 0, l1 = 0;
        aios_trainer_zero_grad(t0);
        aios_trainer_zero_grad(t1);
        CHECK_OK(aios_trainer_step(t0, &bt, 1.0f, 1, &l0, NULL));
        CHECK_OK(aios_trainer_step(t1, &bt, 1.0f, 1, &l1, NULL));
        CHECKF(l0 == l1, "step %d: loss %.9g vs %.9g with --checkpoint", step, l0, l1);
        const float *g0 = aios_trainer_grad(t0), *g1 = aios_trainer_grad(t1);
        for (int64_t i = 0; i < a->n_params; i++) {
            diff += g0[i] != g1[i];
            worst = fmax(worst, fabs((double)g0[i] - g1[i]));
        }
    }
    CHECKF(diff == 0, "%lld gradients differ with --checkpoint (max |diff| %.3g)", (long long)diff, worst);
    uint64_t b0 = aios_trainer_activation_bytes(t0), b1 = aios_trainer_activation_bytes(t1);
    printf("# checkpoint qk_norm=%d bias=%d tied=%d: %lld of %lld gradients differ over 2 steps; activations %llu -> %llu bytes\n",
           qk_norm, bias, tied, (long long)diff, (long long)a->n_params * 2, (unsigned long long)b0, (unsigned long long)b1);
    CHECK(b1 < b0);
out:
    aios_trainer_free(t0);
    aios_trainer_free(t1);
    aios_lora_free(a);
    aios_decoder_free(d);
    tm_free(&m);
}

static void test_checkpoint_same_grads(void) {
    checkpoint_check(0, 0, 0);
    checkpoint_check(0, 1, 1);
    checkpoint_check(1, 0, 1);
}

/* ------------------------------------------------------------------------------------------
 * transposed product on every stored dtype
 * ------------------------------------------------------------------------------------------ */

/* The trainer's attention (attn_train.c) on every tier against a float64 evaluation of its
 * definition: odd sizes (L 13, head_dim 20, 6 heads over 2 kv heads), a padded row, forward P
 * and output, backward dq, dk, dv for a random datt. */
static void test_train_attention_tiers(void) {
    const int64_t B = 2, L = 13, nh = 6, nkv = 2, hd = 20, N = B * L, QD = nh * hd, KVD = nkv * hd, grp = nh / nkv;
    float *q = malloc(sizeof(float) * (size_t)(N * QD)), *k = malloc(sizeof(float) * (size_t)(N * KVD));
    float *v = malloc(sizeof(float) * (size_t)(N * KVD)), *da = malloc(sizeof(float) * (size_t)(N * QD));
    float *P = malloc(sizeof(float) * (size_t)(B * nh * L * L)), *att = malloc(sizeof(float) * (size_t)(N * QD));
    float *dq = malloc(sizeof(float) * (size_t)(N * QD)), *dk = malloc(sizeof(float) * (size_t)(N * KVD));
    float *dv = malloc(sizeof(float) * (size_t)(N * KVD));
    float *w_att = calloc((size_t)(N * QD), sizeof(float)), *w_dq = calloc((size_t)(N * QD), sizeof(float));
    float *w_dk = calloc((size_t)(N * KVD), sizeof(float)), *w_dv = calloc((size_t)(N * KVD), sizeof(float));
    double *pr = malloc(sizeof(double) * (size_t)L), *dp = malloc(sizeof(double) * (size_t)L);
    double *acc = malloc(sizeof(double) * (size_t)(N * (QD + 2 * KVD)));
    uint8_t mask[26];
    for (int64_t i = 0; i < N; i++) mask[i] = !(i >= L + 9); /* row 1: 9 real tokens, 4 padding */
    for (int64_t i = 0; i < N * QD; i++) q[i] = (float)urand(), da[i] = (float)urand();
    for (int64_t i = 0; i < N * KVD; i++) k[i] = (float)urand(), v[i] = (float)urand();
    /* reference: softmax over visible keys, o = P v; dP = do . v; dS = P (dP - sum P dP) / sqrt(hd) */
    double *rdq = acc, *rdk = acc + N * QD, *rdv = rdk + N * KVD;
    for (int64_t i = 0; i < N * (QD + 2 * KVD); i++) acc[i] = 0;
    const double sc = 1.0 / sqrt((double)hd);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < nh; h++)
            for (int64_t i = 0; i < L; i++) {
                const int64_t kh = h / grp, qi = (b * L + i) * QD + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j <= i; j++) {
                    pr[j] = -INFINITY;
                    if (!mask[b * L + j]) continue;
                    double s = 0;
                    for (int64_t e = 0; e < hd; e++) s += (double)q[qi + e] * k[(b * L + j) * KVD + kh * hd + e];
                    pr[j] = s * sc;
                    mx = fmax(mx, pr[j]);
                }
                for (int64_t j = 0; j <= i; j++) sum += pr[j] == -INFINITY ? 0 : exp(pr[j] - mx);
                double sdp = 0;
                for (int64_t j = 0; j <= i; j++) {
                    pr[j] = pr[j] == -INFINITY ? 0 : exp(pr[j] - mx) / sum;
                    const int64_t vj = (b * L + j) * KVD + kh * hd;
                    dp[j] = 0;
                    for (int64_t e = 0; e < hd; e++) {
                        w_att[qi + e] += (float)(pr[j] * v[vj + e]);
                        dp[j] += (double)da[qi + e] * v[vj + e];
                    }
                    sdp += pr[j] * dp[j];
                }
                for (int64_t j = 0; j <= i; j++) {
                    const double ds = pr[j] * (dp[j] - sdp) * sc;
                    const int64_t kj = (b * L + j) * KVD + kh * hd;
                    for (int64_t e = 0; e < hd; e++) {
                        rdq[qi + e] += ds * k[kj + e];
                        rdk[kj + e] += ds * q[qi + e];
                        rdv[kj + e] += pr[j] * da[qi + e];
                    }
                }
            }
    for (int64_t i = 0; i < N * QD; i++) w_dq[i] = (float)rdq[i];
    for (int64_t i = 0; i < N * KVD; i++) w_dk[i] = (float)rdk[i], w_dv[i] = (float)rdv[i];
    static const char *const tiers[] = {"ref", "avx2", "avx512"};
    for (size_t ti = 0; ti < AIOS_ARRAY_LEN(tiers); ti++) {
        if (!t_use_tier(tiers[ti])) continue;
        aios__train_attn_fwd(P, att, q, k, v, mask, B, L, nh, nkv, hd);
        CHECK_OK(aios__train_attn_bwd(dq, dk, dv, da, P, q, k, v, B, L, nh, nkv, hd));
        const double e1 = t_rel_err(att, w_att, (size_t)(N * QD)), e2 = t_rel_err(dq, w_dq, (size_t)(N * QD));
        const double e3 = t_rel_err(dk, w_dk, (size_t)(N * KVD)), e4 = t_rel_err(dv, w_dv, (size_t)(N * KVD));
        CHECKF(e1 <= 1e-6 && e2 <= 1e-6 && e3 <= 1e-6 && e4 <= 1e-6, "attention tier %s: rel err out %.3g dq %.3g dk %.3g dv %.3g",
               tiers[ti], e1, e2, e3, e4);
    }
    CHECK_OK(aios_kernels_use("auto"));
    free(q), free(k), free(v), free(da), free(P), free(att), free(dq), free(dk), free(dv);
    free(w_att), free(w_dq), free(w_dk), free(w_dv), free(pr), free(dp), free(acc);
}

/* A (n_out, n_in) GGUF block weight (n_in a multiple of the block) of random bytes with small f16
 * scales at the given byte offsets of each block; *buf to free. */
static aios_tensor gguf_w(aios_dtype dt, const int *off, int n_off, int64_t n_out, int64_t n_in, uint8_t **buf) {
    int blk = 32, bytes = 0;
    aios_gguf_block(dt, &blk, &bytes);
    size_t n = (size_t)(n_out * (n_in / blk)) * (size_t)bytes;
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(aios_lora_rng_uniform(&g_rng) * 256);
    for (size_t b = 0; b < n / (size_t)bytes; b++)
        for (int k = 0; k < n_off; k++) {
            uint16_t h = aios_f32_to_f16((float)urand() * 0.05f);
            memcpy(p + b * (size_t)bytes + off[k], &h, 2);
        }
    *buf = p;
    return (aios_tensor){.name = "w", .dtype = dt, .ndim = 2, .shape = {n_out, n_in}, .data = p, .nbytes = n};
}

/* dx (+)= dy @ W on every stored dtype and every kernel tier, against the reference
 * dequantizer's rows summed in double: T 3 takes the tile loop, T 13 the packed GEMM (odd row
 * counts, n_out 300 crosses its 256-row chunk, odd column counts its panel edges). */
static void test_matmul_t_dtypes(void) {
    const int64_t no = 300, T_max = 13;
    struct {
        const char *name;
        aios_dtype dt;
        int64_t ni;
        int off[2], n_off;
    } kinds[] = {{"f32", AIOS_DTYPE_F32, 45, {0}, 0},   {"f16", AIOS_DTYPE_F16, 77, {0}, 0},
                 {"bf16", AIOS_DTYPE_BF16, 45, {0}, 0}, {"int8", AIOS_DTYPE_Q8, 45, {0}, 0},
                 {"int4", AIOS_DTYPE_Q4, 77, {0}, 0},   {"int2", AIOS_DTYPE_Q2, 45, {0}, 0},
                 {"gguf q4_1", AIOS_DTYPE_GGUF_Q4_1, 160, {0, 2}, 2},
                 {"gguf q4_k", AIOS_DTYPE_GGUF_Q4_K, 512, {0, 2}, 2}};
    const int64_t ni_max = 512;
    float *w = malloc((size_t)(no * ni_max) * sizeof(float)), *dy = malloc((size_t)(T_max * no) * sizeof(float));
    float *dx = malloc((size_t)(T_max * ni_max) * sizeof(float)), *want = malloc((size_t)(T_max * ni_max) * sizeof(float));
    float *row = malloc((size_t)ni_max * sizeof(float));
    double *acc = malloc((size_t)(T_max * ni_max) * sizeof(double));
    uint16_t *h16 = malloc((size_t)(no * ni_max) * 2);
    uint8_t *q = malloc((size_t)(no * ni_max));
    float *sc = malloc((size_t)no * sizeof(float)), *zp = malloc((size_t)no * sizeof(float));
    for (int64_t i = 0; i < T_max * no; i++) dy[i] = (float)urand();
    static const char *const tiers[] = {"ref", "avx2", "avx512"};
    for (size_t k = 0; k < AIOS_ARRAY_LEN(kinds); k++) {
        const int64_t ni = kinds[k].ni;
        for (int64_t i = 0; i < no * ni; i++) w[i] = (float)urand();
        aios_tensor t = {.name = kinds[k].name, .dtype = kinds[k].dt, .ndim = 2, .shape = {no, ni}};
        uint8_t *gbuf = NULL;
        if (kinds[k].dt == AIOS_DTYPE_F32) {
            t.data = w, t.nbytes = (size_t)(no * ni) * 4;
        } else if (kinds[k].dt == AIOS_DTYPE_F16 || kinds[k].dt == AIOS_DTYPE_BF16) {
            for (int64_t i = 0; i < no * ni; i++)
                h16[i] = kinds[k].dt == AIOS_DTYPE_F16 ? aios_f32_to_f16(w[i]) : aios_f32_to_bf16(w[i]);
            t.data = h16, t.nbytes = (size_t)(no * ni) * 2;
        } else if (kinds[k].n_off) {
            t = gguf_w(kinds[k].dt, kinds[k].off, kinds[k].n_off, no, ni, &gbuf);
        } else {
            aios_quant_params qp = {.type = kinds[k].dt, .group_size = 0, .per_channel = 1, .symmetric = 0};
            size_t nb;
            CHECK_OK(aios_dtype_nbytes(kinds[k].dt, no * ni, &nb));
            CHECK_OK(aios_quantize_f32(w, no, ni, &qp, q, sc, zp));
            t.data = q, t.nbytes = nb, t.scales = sc, t.zero_points = zp, t.n_scales = no, t.quant_axis = 0;
        }
        /* expected: the reference dequantizer's rows, summed in double */
        for (int64_t i = 0; i < T_max * ni; i++) acc[i] = 0;
        for (int64_t o = 0; o < no; o++) {
            CHECK_OK(aios_quant_dequantize_row_ref(&t, o, row));
            for (int64_t tt = 0; tt < T_max; tt++)
                for (int64_t j = 0; j < ni; j++) acc[tt * ni + j] += (double)dy[tt * no + o] * row[j];
        }
        for (size_t ti = 0; ti < AIOS_ARRAY_LEN(tiers); ti++) {
            if (!t_use_tier(tiers[ti])) continue;
            for (int64_t T = 3; T <= T_max; T += T_max - 3) {
                for (int64_t i = 0; i < T * ni; i++) want[i] = (float)acc[i];
                for (int64_t i = 0; i < T * ni; i++) dx[i] = NAN; /* overwritten, never read */
                CHECK_OK(aios_matmul_t(dx, dy, &t, T, 0));
                double e = t_rel_err(dx, want, (size_t)(T * ni));
                CHECKF(e <= 1e-6, "matmul_t %s tier %s T %lld: rel err %.3g", kinds[k].name, tiers[ti], (long long)T, e);
                /* accumulate adds */
                CHECK_OK(aios_matmul_t(dx, dy, &t, T, 1));
                for (int64_t i = 0; i < T * ni; i++) want[i] = (float)(2 * acc[i]);
                e = t_rel_err(dx, want, (size_t)(T * ni));
                CHECKF(e <= 1e-6, "matmul_t %s tier %s T %lld accumulate: rel err %.3g", kinds[k].name, tiers[ti],
                       (long long)T, e);
            }
        }
        free(gbuf);
    }
    CHECK_OK(aios_kernels_use("auto"));
    free(w), free(dy), free(dx), free(want), free(row), free(acc), free(h16), free(q), free(sc), free(zp);
}

/* ------------------------------------------------------------------------------------------
 * the PEFT golden: fixtures/models/lora-qwen2-tiny
 * ------------------------------------------------------------------------------------------ */

static const aios_tensor *st_lookup(void *ctx, const char *name) { return aios_safetensors_find(ctx, name); }

static aios_status open_qwen2_tiny(aios_safetensors **w, aios_decoder **d) {
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", aios_test_shared("fixtures/models/qwen2-tiny"));
    char *json = NULL;
    size_t len = 0;
    AIOS_TRY(aios__read_file(p, &json, &len));
    aios_decoder_config cfg;
    aios_status s = aios_decoder_config_parse(json, len, &cfg);
    free(json);
    AIOS_TRY(s);
    snprintf(p, sizeof p, "%s/model.safetensors", aios_test_shared("fixtures/models/qwen2-tiny"));
    AIOS_TRY(aios_safetensors_open(p, w));
    return aios_decoder_create(&cfg, st_lookup, *w, d);
}

static void test_golden_qwen2_tiny(void) {
    char p[4096];
    snprintf(p, sizeof p, "%s/golden.safetensors", aios_test_shared("fixtures/models/lora-qwen2-tiny"));
    if (access(p, R_OK)) SKIP("%s not found", p);
    aios_safetensors *g = NULL, *w = NULL;
    aios_decoder *d = NULL;
    aios_lora *a = NULL;
    aios_trainer *tr = NULL;
    aios_adamw opt = {0};
    CHECK_OK(aios_safetensors_open(p, &g));
    CHECK_OK(open_qwen2_tiny(&w, &d));
    if (!g || !d) goto out;
    unsigned targets;
    CHECK_OK(aios_lora_targets_parse("self_attn.q_proj,self_attn.v_proj,mlp.down_proj", &targets));
    CHECK_OK(aios_lora_create(aios_decoder_get_config(d), targets, 4, 8.0, 0, &a));
    if (!a) goto out;
    CHECK(fabsf(aios_lora_scaling(a) - 2.0f) < 1e-7f);
    char n[256];
    for (int64_t k = 0; k < a->n_mods; k++) {
        aios_lora_module *m = &a->mods[k];
        snprintf(n, sizeof n, "model.layers.%lld.%s.lora_A", (long long)m->layer, aios_lora_target_path(m->target));
        const aios_tensor *ta = aios_safetensors_find(g, n);
        snprintf(n, sizeof n, "model.layers.%lld.%s.lora_B", (long long)m->layer, aios_lora_target_path(m->target));
        const aios_tensor *tb = aios_safetensors_find(g, n);
        CHECK(ta && tb);
        if (!ta || !tb) goto out;
        memcpy(m->A, ta->data, ta->nbytes);
        memcpy(m->B, tb->data, tb->nbytes);
    }
    const aios_tensor *ids = aios_safetensors_find(g, "input_ids"), *gl = aios_safetensors_find(g, "loss");
    const int64_t L = aios_tensor_numel(ids);
    int32_t *lab = malloc((size_t)L * sizeof(int32_t));
    memcpy(lab, ids->data, (size_t)L * sizeof(int32_t));
    aios_train_batch bt = {.B = 1, .L = L, .tokens = ids->data, .mask = NULL, .labels = lab};
    CHECK_OK(aios_trainer_create(d, a, 0, &tr));
    double loss = 0;
    CHECK_OK(aios_trainer_step(tr, &bt, 1.0f, 1, &loss, NULL));
    const float want_loss = ((const float *)gl->data)[0];
    printf("# lora-qwen2-tiny loss %.7f, golden %.7f\n", loss, want_loss);
    CHECKF(fabs(loss - want_loss) <= 1e-4 * fabs(want_loss), "loss %.7g vs %.7g", loss, (double)want_loss);
    const float *grad = aios_trainer_grad(tr);
    double worst = 0;
    for (int64_t k = 0; k < a->n_mods; k++) {
        aios_lora_module *m = &a->mods[k];
        for (int j = 0; j < 2; j++) {
            snprintf(n, sizeof n, "model.layers.%lld.%s.lora_%c.grad", (long long)m->layer, aios_lora_target_path(m->target),
                     j ? 'B' : 'A');
            const aios_tensor *tg = aios_safetensors_find(g, n);
            CHECK(tg != NULL);
            if (!tg) continue;
            const float *mine = grad + ((j ? m->B : m->A) - a->data);
            double e = t_rel_err(mine, tg->data, (size_t)aios_tensor_numel(tg));
            worst = fmax(worst, e);
            CHECKF(e <= 1e-4, "%s: rel err %.3g", n, e);
        }
    }
    printf("# lora-qwen2-tiny: worst gradient rel err %.3g over %lld tensors\n", worst, (long long)(2 * a->n_mods));
    /* one AdamW step with the golden's settings */
    CHECK_OK(aios_adamw_init(&opt, a->n_params, 1e-2, 0.9, 0.999, 1e-8, 0.01));
    aios_adamw_step(&opt, a->data, grad, 1e-2);
    worst = 0;
    for (int64_t k = 0; k < a->n_mods; k++) {
        aios_lora_module *m = &a->mods[k];
        for (int j = 0; j < 2; j++) {
            snprintf(n, sizeof n, "model.layers.%lld.%s.lora_%c.after_adamw", (long long)m->layer,
                     aios_lora_target_path(m->target), j ? 'B' : 'A');
            const aios_tensor *tg = aios_safetensors_find(g, n);
            if (!tg) continue;
            double e = t_rel_err(j ? m->B : m->A, tg->data, (size_t)aios_tensor_numel(tg));
            worst = fmax(worst, e);
            CHECKF(e <= 1e-4, "%s: rel err %.3g", n, e);
        }
    }
    printf("# lora-qwen2-tiny: worst after-AdamW rel err %.3g\n", worst);
    free(lab);
out:
    aios_adamw_free(&opt);
    aios_trainer_free(tr);
    aios_lora_free(a);
    aios_decoder_free(d);
    aios_safetensors_close(w);
    aios_safetensors_close(g);
}

/* The run-time hook: the decoder with the adapter attached gives the logits of the merged
 * weights W + s B A (computed here into a copy of the model), and scale 0 / removal gives the
 * base logits back. */
/* a float32 rounded to the nearest bfloat16 (ties to even), written out here from the format's
 * definition rather than taken from the library */
static float bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* The adapter applied as a hook equals the same adapter merged into the weights, for each storage
 * the decoder can apply it from: float32 A / B as stored, and the bfloat16 copies (merged here
 * from A and B rounded to bf16 by the function above — the hook widens them exactly and sums in
 * float32, so the two agree as closely as float32 does). */
static void hook_equals_merge(int bf16) {
    tmodel m, mm;
    aios_decoder_config c, c2;
    g_rng = 777;
    tm_build(&m, &c, 1, 1, 0);
    g_rng = 777;
    tm_build(&mm, &c2, 1, 1, 0);
    aios_decoder *d = NULL, *dm = NULL;
    aios_lora *a = NULL;
    CHECK_OK(aios_decoder_create(&c, tm_lookup, &m, &d));
    CHECK_OK(aios_lora_create(&c, (1u << AIOS_LORA_N_TARGETS) - 1, 2, 3.0, 1, &a));
    if (!d || !a) goto out;
    aios_decoder_set_adapter_bf16(d, bf16);
    for (int64_t i = 0; i < a->n_params; i++) a->data[i] = (float)(0.2 * urand());
    const float s = 0.5f * aios_lora_scaling(a);
    for (int64_t k = 0; k < a->n_mods; k++) {
        const aios_lora_module *md = &a->mods[k];
        char n[96];
        snprintf(n, sizeof n, "model.layers.%lld.%s.weight", (long long)md->layer, aios_lora_target_path(md->target));
        float *W = (float *)tm_lookup(&mm, n)->data;
        for (int64_t o = 0; o < md->n_out; o++)
            for (int64_t j = 0; j < md->n_in; j++) {
                double acc = 0;
                for (int64_t r = 0; r < md->r; r++) {
                    const float b = md->B[o * md->r + r], av = md->A[r * md->n_in + j];
                    acc += bf16 ? (double)bf16_round(b) * bf16_round(av) : (double)b * av;
                }
                W[o * md->n_in + j] += (float)(s * acc);
            }
    }
    CHECK_OK(aios_decoder_create(&c2, tm_lookup, &mm, &dm));
    int32_t x[9] = {1, 5, 9, 2, 30, 17, 4, 4, 11};
    const int64_t V = c.n_vocab;
    float *l0 = malloc((size_t)(9 * V) * 4), *l1 = malloc((size_t)(9 * V) * 4), *lm = malloc((size_t)(9 * V) * 4);
    aios_forward_opts o = {.attn = AIOS_FWD_CAUSAL, .logits_all = 1};
    CHECK_OK(aios_decoder_forward(d, NULL, x, 9, &o, l0));
    float half = 0.5f;
    CHECK_OK(aios_decoder_set_adapters(d, &a, &half, 1));
    CHECK_OK(aios_decoder_forward(d, NULL, x, 9, &o, l1));
    CHECK_OK(aios_decoder_forward(dm, NULL, x, 9, &o, lm));
    double e = t_rel_err(l1, lm, (size_t)(9 * V));
    CHECKF(e <= 1e-5, "adapter hook (%s) vs merged weights: rel err %.3g", bf16 ? "bf16" : "f32", e);
    CHECK(t_rel_err(l1, l0, (size_t)(9 * V)) > 1e-3);
    /* the same through the KV cache, token by token */
    aios_kv_cache *kv = NULL;
    CHECK_OK(aios_kv_cache_create(d, 16, &kv));
    float *row = malloc((size_t)V * 4);
    for (int i = 0; kv && i < 9; i++) CHECK_OK(aios_decoder_forward(d, kv, x + i, 1, NULL, row));
    CHECK(t_rel_err(row, lm + 8 * V, (size_t)V) <= 1e-5);
    aios_kv_cache_free(kv);
    free(row);
    CHECK_OK(aios_decoder_set_adapters(d, NULL, NULL, 0));
    CHECK_OK(aios_decoder_forward(d, NULL, x, 9, &o, l1));
    CHECK(t_rel_err(l1, l0, (size_t)(9 * V)) == 0);
    free(l0), free(l1), free(lm);
out:
    aios_lora_free(a);
    aios_decoder_free(d);
    aios_decoder_free(dm);
    tm_free(&m);
    tm_free(&mm);
}

static void test_adapter_hook_equals_merge(void) {
    hook_equals_merge(0);
    hook_equals_merge(1);
}

/* ------------------------------------------------------------------------------------------
 * optimizer pieces against torch's formulas written out in double here
 * ------------------------------------------------------------------------------------------ */

static void test_adamw_clip_schedule(void) {
    const int64_t n = 13;
    float p[13], g[13];
    double pd[13], m[13] = {0}, v[13] = {0};
    for (int i = 0; i < n; i++) p[i] = (float)urand(), pd[i] = p[i];
    aios_adamw o;
    CHECK_OK(aios_adamw_init(&o, n, 0.1, 0.8, 0.95, 1e-6, 0.1));
    for (int step = 1; step <= 5; step++) {
        for (int i = 0; i < n; i++) g[i] = (float)urand();
        double lr = 0.1 / step;
        aios_adamw_step(&o, p, g, lr);
        for (int i = 0; i < n; i++) {
            pd[i] *= 1 - lr * 0.1;
            m[i] = 0.8 * m[i] + 0.2 * g[i];
            v[i] = 0.95 * v[i] + 0.05 * (double)g[i] * g[i];
            double mh = m[i] / (1 - pow(0.8, step)), vh = v[i] / (1 - pow(0.95, step));
            pd[i] -= lr * mh / (sqrt(vh) + 1e-6);
        }
    }
    double worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(p[i] - pd[i]));
    CHECKF(worst < 1e-5, "adamw vs formula: max abs err %.3g", worst);
    aios_adamw_free(&o);
    float x[4] = {3, 4, 0, 0};
    double nrm = aios_grad_clip(x, 4, 1.0);
    CHECK(fabs(nrm - 5) < 1e-9 && fabsf(x[0] - 0.6f) < 1e-6f && fabsf(x[1] - 0.8f) < 1e-6f);
    float y[2] = {0.3f, 0.4f};
    aios_grad_clip(y, 2, 1.0);
    CHECK(y[0] == 0.3f && y[1] == 0.4f);
    CHECK(aios_lr_at(AIOS_SCHED_CONSTANT, 1.0, 0, 4, 10) == 0.0);
    CHECK(fabs(aios_lr_at(AIOS_SCHED_CONSTANT, 1.0, 2, 4, 10) - 0.5) < 1e-12);
    CHECK(aios_lr_at(AIOS_SCHED_CONSTANT, 2.0, 7, 4, 10) == 2.0);
    CHECK(fabs(aios_lr_at(AIOS_SCHED_COSINE, 1.0, 4, 4, 10) - 1.0) < 1e-12);
    CHECK(fabs(aios_lr_at(AIOS_SCHED_COSINE, 1.0, 7, 4, 10) - 0.5) < 1e-12);
    CHECK(fabs(aios_lr_at(AIOS_SCHED_COSINE, 1.0, 10, 4, 10)) < 1e-12);
}

/* ------------------------------------------------------------------------------------------
 * files
 * ------------------------------------------------------------------------------------------ */

static void test_peft_and_card_roundtrip(void) {
    tmodel m;
    aios_decoder_config c;
    tm_build(&m, &c, 0, 0, 1);
    aios_lora *a = NULL, *b = NULL, *cc = NULL;
    unsigned tg;
    CHECK_OK(aios_lora_targets_parse("q_proj, v_proj,down_proj", &tg));
    CHECK(tg == ((1u << AIOS_LORA_Q) | (1u << AIOS_LORA_V) | (1u << AIOS_LORA_DOWN)));
    CHECK(aios_lora_targets_parse("q_proj,w_proj", &tg) == AIOS_ERR_INVALID_ARG);
    CHECK(strstr(aios_last_error(), "w_proj") != NULL);
    CHECK(aios_lora_create(&c, 1, 0, 8, 0, &a) == AIOS_ERR_INVALID_ARG);
    CHECK_OK(aios_lora_create(&c, (1u << AIOS_LORA_Q) | (1u << AIOS_LORA_DOWN), 3, 6.0, 0, &a));
    if (!a) goto out;
    aios_lora_init_default(a, 9);
    for (int64_t i = 0; i < a->n_params; i++) a->data[i] += (float)urand();
    snprintf(a->base_model, sizeof a->base_model, "tiny");
    char dir[600], card[600];
    snprintf(dir, sizeof dir, "%s/peft", aios_test_tmpdir());
    snprintf(card, sizeof card, "%s/skill.parquet", aios_test_tmpdir());
    CHECK_OK(aios_lora_save_peft(a, dir));
    CHECK_OK(aios_lora_load(dir, &c, &b));
    if (b) {
        CHECK(b->r == 3 && b->alpha == 6.0 && b->targets == a->targets && b->n_params == a->n_params);
        CHECK(!memcmp(a->data, b->data, (size_t)a->n_params * 4));
        CHECK(!strcmp(b->base_model, "tiny"));
    }
    static const char *const meta[] = {"aios.train.steps", "3", NULL};
    snprintf(a->name, sizeof a->name, "my_skill");
    a->dropout = 0.1; /* lora_dropout: the card keeps it (aios.card.lora_dropout), exactly */
    CHECK_OK(aios_lora_save_card(a, card, meta));
    CHECK_OK(aios_lora_load(card, &c, &cc));
    if (cc) {
        CHECKF(cc->dropout == 0.1, "card lora_dropout %.17g", cc->dropout);
        CHECK(cc->r == 3 && cc->alpha == 6.0 && cc->targets == a->targets);
        CHECK(!memcmp(a->data, cc->data, (size_t)a->n_params * 4));
        CHECK(!strcmp(cc->name, "my_skill"));
    }
    /* a model it does not fit */
    aios_decoder_config c2 = c;
    c2.n_embd = 16;
    aios_lora *bad = NULL;
    CHECK(aios_lora_load(dir, &c2, &bad) == AIOS_ERR_SHAPE && !bad);
    /* configs we must refuse, by field */
    static const struct {
        const char *json, *field;
    } refuse[] = {
        {"{\"r\": 8, \"target_modules\": [\"q_proj\"], \"use_dora\": true}", "use_dora"},
        {"{\"r\": 0, \"target_modules\": [\"q_proj\"]}", "r must"},
        {"{\"r\": 8, \"target_modules\": \".*attn.*\"}", "regex"},
        {"{\"r\": 8, \"target_modules\": [\"embed_tokens\"]}", "embed_tokens"},
        {"{\"r\": 8, \"target_modules\": [\"q_proj\"], \"rank_pattern\": {\"q_proj\": 4}}", "rank_pattern"},
        {"{\"r\": 8, \"target_modules\": [\"q_proj\"], \"peft_type\": \"IA3\"}", "IA3"},
        {"[1]", "not a JSON object"},
    };
    for (size_t i = 0; i < AIOS_ARRAY_LEN(refuse); i++) {
        aios_peft_config pc;
        CHECK(aios_peft_config_parse(refuse[i].json, strlen(refuse[i].json), &pc) != AIOS_OK);
        CHECKF(strstr(aios_last_error(), refuse[i].field) != NULL, "%s -> %s", refuse[i].json, aios_last_error());
    }
out:
    aios_lora_free(a);
    aios_lora_free(b);
    aios_lora_free(cc);
    tm_free(&m);
}

/* The PEFT adapter of fixtures/real (made by PEFT 0.21) loads with the shapes of SmolLM2. */
static void test_load_peft_made_adapter(void) {
    const char *dir = aios_test_shared("fixtures/real/smollm2-135m-instruct/lora/adapter_init");
    if (access(dir, R_OK)) SKIP("%s not found", dir);
    aios_lora *a = NULL;
    CHECK_OK(aios_lora_load_peft(dir, NULL, &a));
    if (a) {
        CHECK(a->r == 8 && a->alpha == 16.0 && a->n_layer == 30 && a->n_mods == 90);
        CHECK(a->targets == ((1u << AIOS_LORA_Q) | (1u << AIOS_LORA_V) | (1u << AIOS_LORA_DOWN)));
        const aios_lora_module *m = aios_lora_get(a, 29, AIOS_LORA_DOWN);
        CHECK(m && m->n_in == 1536 && m->n_out == 576);
    }
    aios_lora_free(a);
}

int main(void) {
    RUN(test_fd_llama_untied);
    RUN(test_fd_qwen2_bias_tied);
    RUN(test_fd_qwen3_qk_norm);
    RUN(test_checkpoint_same_grads);
    RUN(test_matmul_t_dtypes);
    RUN(test_train_attention_tiers);
    RUN(test_golden_qwen2_tiny);
    RUN(test_adapter_hook_equals_merge);
    RUN(test_adamw_clip_schedule);
    RUN(test_peft_and_card_roundtrip);
    RUN(test_load_peft_made_adapter);
    TEST_MAIN_END();
}
