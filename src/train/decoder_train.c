/*
 * decoder_train.c — forward with kept activations and the hand-written backward of the
 * Llama / Qwen2 / Qwen3 decoder, for LoRA training.
 *
 * The forward is the block of decoder.c (see its header) over a padded batch (B, L) flattened
 * to N = B * L token rows, plus the LoRA deltas of the trained adapter:
 *     x0 = embed[tokens]
 *     per layer:  a = rms(x) ; q,k,v = a W^T (+b) + s (drop(a) A^T) B^T ; [Qwen3] q,k = rms_head
 *                 q,k = rope ; o = attn(q,k,v) (causal & key padding mask) ; m = x + o Wo^T
 *                 c = rms(m) ; g,u = c Wg^T, c Wu^T ; h = silu(g) * u ; x' = m + h Wd^T
 *     logits = rms(x_L) Wlm^T on the rows that carry a label ; loss = mean CE
 * The backward walks it in reverse.  Everything frozen (embedding, norms, projections, head)
 * only passes gradients through: dX = dY @ W goes through aios_matmul_t, which reads the
 * weight rows through the row dequantizer, so a 4-bit base trains as it is stored.
 *
 * Key decisions:
 *  - Activations of every layer are kept (x, both norm outputs and their 1/rms, q/k before
 *    and after RoPE, v, attention probabilities, MLP gate/up/product, each module's x A^T);
 *    the buffers grow to the largest batch and are reused.
 *  - Checkpointing (aios_trainer_set_checkpoint): only each layer's input x is kept; one set of
 *    layer buffers serves every layer, and the backward recomputes layer l's forward from its
 *    input before going through it.  The recomputation runs the same kernels on the same data
 *    with the same dropout draws (the generator's state is saved at each layer's start), so
 *    the gradients are bit for bit those of the kept-activation run.
 *  - The LM head runs only on rows with a label (the answer tokens of a q/a pair), in chunks,
 *    so the (N, n_vocab) logits never exist at once; its backward is fused with the loss.
 *  - Attention is our own (attn_train.c, not aios_attention) because the backward needs P.
 *    RoPE's backward is RoPE at the negated positions.
 *  - Sums that decide the loss (log-sum-exp) and the norms' mean squares use float64.
 * References: transformers modeling_llama.py / modeling_qwen3.py, PEFT lora/layer.py,
 * llm.c train_gpt2.c (the layer-by-layer backward layout).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/kernels.h"
#include "train/train.h"

typedef struct {
    float *xn1, *rstd1;       /* (N, E), (N) */
    float *qpre, *rq;         /* Qwen3: q before its norm (N, QD), 1/rms (N * nh) */
    float *kpre, *rk;
    float *q, *k, *v;         /* after RoPE: (N, QD), (N, KVD), (N, KVD) */
    float *P;                 /* (B, nh, L, L) */
    float *att;               /* (N, QD) */
    float *xn2, *rstd2;       /* (N, E), (N) */
    float *g, *u, *h;         /* (N, F) */
    float *lu[AIOS_LORA_N_TARGETS];   /* x A^T (N, r) of each adapted module */
    float *xd[AIOS_LORA_N_TARGETS];   /* dropped-out input (N, n_in) when dropout > 0 */
    uint8_t *drop[AIOS_LORA_N_TARGETS]; /* its mask: 1 = dropped */
} layer_act;

struct aios_trainer {
    aios_decoder *d;
    aios_lora *a;
    const aios_decoder_config *c;
    uint64_t rng;
    int checkpoint;      /* 1: recompute each layer's forward in the backward */
    uint64_t *layer_rng; /* (n_layer) the dropout generator's state at each layer's start */
    float *grad; /* (n_params) */
    int64_t cap_N, cap_BLL;
    float *xs;   /* (n_layer + 1, N, E) residual stream at each layer's input */
    float *xm;   /* (n_layer, N, E) after attention */
    layer_act *acts;
    float *xf, *rstdf; /* final norm output (N, E), (N) */
    /* backward scratch */
    float *dx, *dt, *dq, *dk, *dv, *datt, *dg, *du, *dh, *dn, *dlu, *dlogit, *tmp;
    int32_t *pos, *neg_pos;
    float *inv_freq;
    uint64_t act_bytes;
};

/* ------------------------------------------------------------------------------------------
 * small ops
 * ------------------------------------------------------------------------------------------ */

/* y (T, n) = x * rstd * w ; rstd (T) kept.  y may alias x. */
static void rms_fwd(float *y, float *rstd, const float *x, const float *w, int64_t T, int64_t n, float eps) {
#pragma omp parallel for schedule(static) if (T * n > 65536) num_threads(aios_get_threads())
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * n;
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)xt[i] * xt[i];
        float r = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
        rstd[t] = r;
        float *yt = y + t * n;
        for (int64_t i = 0; i < n; i++) yt[i] = xt[i] * r * w[i];
    }
}

/* dx (T, n) (+)= d/dx of rms(x) * w given dy: rstd * (dy w - x rstd^2 mean(dy w x)). */
static void rms_bwd(float *dx, const float *dy, const float *x, const float *rstd, const float *w, int64_t T, int64_t n,
                    int accumulate) {
#pragma omp parallel for schedule(static) if (T * n > 65536) num_threads(aios_get_threads())
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * n, *dyt = dy + t * n;
        const float r = rstd[t];
        double dot = 0;
        for (int64_t i = 0; i < n; i++) dot += (double)dyt[i] * w[i] * xt[i];
        const float k = (float)(dot / (double)n) * r * r * r;
        float *dxt = dx + t * n;
        if (accumulate)
            for (int64_t i = 0; i < n; i++) dxt[i] += r * dyt[i] * w[i] - k * xt[i];
        else
            for (int64_t i = 0; i < n; i++) dxt[i] = r * dyt[i] * w[i] - k * xt[i];
    }
}

static inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

/* ------------------------------------------------------------------------------------------
 * LoRA pieces
 * ------------------------------------------------------------------------------------------ */

/* A row-major float32 matrix as a weight tensor, for the packed products. */
static aios_tensor f32_mat(const float *p, int64_t rows, int64_t cols) {
    return (aios_tensor){.name = "lora", .dtype = AIOS_DTYPE_F32, .ndim = 2, .shape = {rows, cols}, .data = p,
                         .nbytes = (size_t)(rows * cols) * sizeof(float)};
}

/* dst (cols, rows) = s * src (rows, cols)^T */
static void transpose_scaled(float *dst, const float *src, int64_t rows, int64_t cols, float s) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) dst[j * rows + i] = s * src[i * cols + j];
}

/* The LoRA products go through the packed GEMM (aios_matmul / aios_matmul_t) with the small
 * factor as the weight or, for the gradients, the token rows as the inner dimension (r rows
 * of output): the per-row dot loops they replace were 13 % of a SmolLM2-135M step. */

/* y (N, n_out) += s * (xin A^T) B^T ; lu (N, r) = xin A^T kept.  xin is the (dropped-out) input. */
static aios_status lora_fwd(const aios_lora_module *m, float s, float *y, const float *xin, float *lu, int64_t N) {
    const int64_t r = m->r, ni = m->n_in, no = m->n_out;
    const aios_tensor tA = f32_mat(m->A, r, ni);
    AIOS_TRY(aios_matmul(lu, xin, &tA, NULL, N));
    float *sbt = malloc((size_t)(r * no) * sizeof(float)); /* s B^T (r, n_out) */
    if (!sbt) return aios__err(AIOS_ERR_NOMEM, "train: LoRA scratch");
    transpose_scaled(sbt, m->B, no, r, s);
    const aios_tensor tBt = f32_mat(sbt, r, no);
    aios_status st = aios_matmul_t(y, lu, &tBt, N, 1);
    free(sbt);
    return st;
}

/* Given dy (N, n_out): gB (n_out, r) += s dy^T lu ; du = s dy B (N, r) ; gA (r, n_in) += du^T xin ;
 * dx (N, n_in) += (du A) * drop / (1 - p) when dx (drop NULL: no dropout). */
static aios_status lora_bwd(const aios_lora_module *m, float s, const float *dy, const float *xin, const float *lu,
                            float *gA, float *gB, float *dx, float *du, const uint8_t *drop, float keep_inv,
                            int64_t N) {
    const int64_t r = m->r, ni = m->n_in, no = m->n_out;
    float *ut = malloc((size_t)(r * N) * sizeof(float));                     /* lu^T, then du^T */
    float *g = malloc((size_t)(r * AIOS_MAX(ni, no)) * sizeof(float));      /* (r, n_out) / (r, n_in) */
    aios_status st = AIOS_OK;
    if (!ut || !g) {
        st = aios__err(AIOS_ERR_NOMEM, "train: LoRA scratch");
        goto out;
    }
    /* gB^T (r, n_out) = lu^T dy */
    transpose_scaled(ut, lu, N, r, 1.0f);
    const aios_tensor tdy = f32_mat(dy, N, no);
    if ((st = aios_matmul_t(g, ut, &tdy, r, 0)) != AIOS_OK) goto out;
    for (int64_t o = 0; o < no; o++)
        for (int64_t k = 0; k < r; k++) gB[o * r + k] += s * g[k * no + o];
    /* du (N, r) = s dy B */
    const aios_tensor tB = f32_mat(m->B, no, r);
    if ((st = aios_matmul_t(du, dy, &tB, N, 0)) != AIOS_OK) goto out;
    for (int64_t i = 0; i < N * r; i++) du[i] *= s;
    /* gA (r, n_in) += du^T xin */
    transpose_scaled(ut, du, N, r, 1.0f);
    const aios_tensor tx = f32_mat(xin, N, ni);
    if ((st = aios_matmul_t(g, ut, &tx, r, 0)) != AIOS_OK) goto out;
    for (int64_t i = 0; i < r * ni; i++) gA[i] += g[i];
    if (!dx) goto out;
    if (!drop) {
        const aios_tensor tA = f32_mat(m->A, r, ni);
        st = aios_matmul_t(dx, du, &tA, N, 1);
        goto out;
    }
#pragma omp parallel for schedule(static) num_threads(aios_get_threads())
    for (int64_t t = 0; t < N; t++) {
        float *dxt = dx + t * ni;
        const float *u = du + t * r;
        const uint8_t *dm = drop + t * ni;
        for (int64_t j = 0; j < ni; j++) {
            float acc = 0;
            for (int64_t k = 0; k < r; k++) acc += u[k] * m->A[k * ni + j];
            dxt[j] += dm[j] ? 0.0f : acc * keep_inv;
        }
    }
out:
    free(ut), free(g);
    return st;
}

/* ------------------------------------------------------------------------------------------
 * lifetime
 * ------------------------------------------------------------------------------------------ */

aios_status aios_trainer_create(aios_decoder *d, aios_lora *a, uint64_t seed, aios_trainer **out) {
    *out = NULL;
    const aios_decoder_config *c = aios_decoder_get_config(d);
    AIOS_TRY(aios_lora_check(a, c));
    if (c->naming != AIOS_NAMING_HF)
        return aios__err(AIOS_ERR_UNSUPPORTED, "train: only Hugging Face-named Llama/Qwen decoders are trained");
    aios_trainer *t = calloc(1, sizeof *t);
    if (!t) return aios__err(AIOS_ERR_NOMEM, "train");
    t->d = d, t->a = a, t->c = c, t->rng = seed ^ 0x5bd1e995ull;
    t->grad = calloc((size_t)AIOS_MAX(a->n_params, 1), sizeof(float));
    t->acts = calloc((size_t)c->n_layer, sizeof *t->acts);
    t->inv_freq = malloc((size_t)(c->head_dim / 2) * sizeof(float));
    t->layer_rng = calloc((size_t)c->n_layer, sizeof *t->layer_rng);
    if (!t->grad || !t->acts || !t->inv_freq || !t->layer_rng) {
        aios_trainer_free(t);
        return aios__err(AIOS_ERR_NOMEM, "train");
    }
    aios_decoder_rope_inv_freq(c, 0, t->inv_freq);
    *out = t;
    return AIOS_OK;
}

static void free_acts(aios_trainer *t) {
    if (t->acts)
        for (int64_t l = 0; l < t->c->n_layer; l++) {
            layer_act *A = &t->acts[l];
            float **p[] = {&A->xn1, &A->rstd1, &A->qpre, &A->rq, &A->kpre, &A->rk, &A->q, &A->k, &A->v, &A->P,
                           &A->att, &A->xn2, &A->rstd2, &A->g, &A->u, &A->h};
            for (size_t i = 0; i < AIOS_ARRAY_LEN(p); i++) free(*p[i]), *p[i] = NULL;
            for (int m = 0; m < AIOS_LORA_N_TARGETS; m++) {
                free(A->lu[m]), free(A->xd[m]), free(A->drop[m]);
                A->lu[m] = A->xd[m] = NULL;
                A->drop[m] = NULL;
            }
        }
    float **s[] = {&t->xs, &t->xm, &t->xf, &t->rstdf, &t->dx, &t->dt, &t->dq, &t->dk, &t->dv, &t->datt,
                   &t->dg, &t->du, &t->dh, &t->dn, &t->dlu, &t->dlogit, &t->tmp};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(s); i++) free(*s[i]), *s[i] = NULL;
    free(t->pos), free(t->neg_pos);
    t->pos = t->neg_pos = NULL;
    t->cap_N = t->cap_BLL = 0;
    t->act_bytes = 0;
}

void aios_trainer_free(aios_trainer *t) {
    if (!t) return;
    free_acts(t);
    free(t->acts);
    free(t->grad);
    free(t->inv_freq);
    free(t->layer_rng);
    free(t);
}

uint64_t aios_trainer_rng(const aios_trainer *t) { return t->rng; }
void aios_trainer_set_rng(aios_trainer *t, uint64_t rng) { t->rng = rng; }

void aios_trainer_set_checkpoint(aios_trainer *t, int on) {
    if (!!on == t->checkpoint) return;
    free_acts(t); /* the next step allocates for the new mode */
    t->checkpoint = !!on;
}

/* The activations of layer l: its own, or the one shared set when checkpointing. */
static layer_act *act_of(aios_trainer *t, int64_t l) { return &t->acts[t->checkpoint ? 0 : l]; }

float *aios_trainer_grad(aios_trainer *t) { return t->grad; }
void aios_trainer_zero_grad(aios_trainer *t) { memset(t->grad, 0, (size_t)AIOS_MAX(t->a->n_params, 1) * sizeof(float)); }
uint64_t aios_trainer_activation_bytes(const aios_trainer *t) { return t->act_bytes; }

#define LOGIT_CHUNK 256

static aios_status alloc_f(aios_trainer *t, float **p, uint64_t n) {
    *p = malloc((size_t)AIOS_MAX(n, 1) * sizeof(float));
    if (!*p) return aios__err(AIOS_ERR_NOMEM, "train: activations of %llu floats", (unsigned long long)n);
    t->act_bytes += n * sizeof(float);
    return AIOS_OK;
}

static aios_status ensure(aios_trainer *t, int64_t B, int64_t L) {
    const aios_decoder_config *c = t->c;
    const uint64_t N = (uint64_t)(B * L);
    if ((int64_t)N <= t->cap_N && B * L * L <= t->cap_BLL) return AIOS_OK;
    free_acts(t);
    const uint64_t E = (uint64_t)c->n_embd, QD = (uint64_t)(c->n_head * c->head_dim),
                   KVD = (uint64_t)(c->n_head_kv * c->head_dim), F = (uint64_t)c->n_ff, nl = (uint64_t)c->n_layer;
    const uint64_t r = (uint64_t)t->a->r, BLL = (uint64_t)(B * L * L) * (uint64_t)c->n_head;
    const uint64_t W = AIOS_MAX(AIOS_MAX(E, QD), F);
    AIOS_TRY(alloc_f(t, &t->xs, (nl + 1) * N * E));
    AIOS_TRY(alloc_f(t, &t->xm, (t->checkpoint ? 1 : nl) * N * E));
    for (uint64_t l = 0; l < (t->checkpoint ? 1 : nl); l++) {
        layer_act *A = &t->acts[l];
        AIOS_TRY(alloc_f(t, &A->xn1, N * E));
        AIOS_TRY(alloc_f(t, &A->rstd1, N));
        if (c->qk_norm) {
            AIOS_TRY(alloc_f(t, &A->qpre, N * QD));
            AIOS_TRY(alloc_f(t, &A->rq, N * (uint64_t)c->n_head));
            AIOS_TRY(alloc_f(t, &A->kpre, N * KVD));
            AIOS_TRY(alloc_f(t, &A->rk, N * (uint64_t)c->n_head_kv));
        }
        AIOS_TRY(alloc_f(t, &A->q, N * QD));
        AIOS_TRY(alloc_f(t, &A->k, N * KVD));
        AIOS_TRY(alloc_f(t, &A->v, N * KVD));
        AIOS_TRY(alloc_f(t, &A->P, BLL));
        AIOS_TRY(alloc_f(t, &A->att, N * QD));
        AIOS_TRY(alloc_f(t, &A->xn2, N * E));
        AIOS_TRY(alloc_f(t, &A->rstd2, N));
        AIOS_TRY(alloc_f(t, &A->g, N * F));
        AIOS_TRY(alloc_f(t, &A->u, N * F));
        AIOS_TRY(alloc_f(t, &A->h, N * F));
        for (int m = 0; m < AIOS_LORA_N_TARGETS; m++) {
            const aios_lora_module *mod = aios_lora_get(t->a, (int64_t)l, m);
            for (uint64_t l2 = 0; t->checkpoint && !mod && l2 < nl; l2++) mod = aios_lora_get(t->a, (int64_t)l2, m);
            if (!mod) continue;
            AIOS_TRY(alloc_f(t, &A->lu[m], N * r));
            if (t->a->dropout > 0) {
                AIOS_TRY(alloc_f(t, &A->xd[m], N * (uint64_t)mod->n_in));
                A->drop[m] = malloc(N * (size_t)mod->n_in);
                if (!A->drop[m]) return aios__err(AIOS_ERR_NOMEM, "train: dropout masks");
                t->act_bytes += N * (uint64_t)mod->n_in;
            }
        }
    }
    AIOS_TRY(alloc_f(t, &t->xf, N * E));
    AIOS_TRY(alloc_f(t, &t->rstdf, N));
    AIOS_TRY(alloc_f(t, &t->dx, N * E));
    AIOS_TRY(alloc_f(t, &t->dt, N * W));
    AIOS_TRY(alloc_f(t, &t->dq, N * QD));
    AIOS_TRY(alloc_f(t, &t->dk, N * KVD));
    AIOS_TRY(alloc_f(t, &t->dv, N * KVD));
    AIOS_TRY(alloc_f(t, &t->datt, N * QD));
    AIOS_TRY(alloc_f(t, &t->dg, N * F));
    AIOS_TRY(alloc_f(t, &t->du, N * F));
    AIOS_TRY(alloc_f(t, &t->dh, N * F));
    AIOS_TRY(alloc_f(t, &t->dn, N * E));
    AIOS_TRY(alloc_f(t, &t->dlu, N * r));
    AIOS_TRY(alloc_f(t, &t->dlogit, (uint64_t)LOGIT_CHUNK * (uint64_t)c->n_vocab));
    AIOS_TRY(alloc_f(t, &t->tmp, (uint64_t)LOGIT_CHUNK * E));
    t->pos = malloc(N * sizeof(int32_t));
    t->neg_pos = malloc(N * sizeof(int32_t));
    if (!t->pos || !t->neg_pos) return aios__err(AIOS_ERR_NOMEM, "train: positions");
    t->cap_N = (int64_t)N;
    t->cap_BLL = B * L * L;
    return AIOS_OK;
}

/* ------------------------------------------------------------------------------------------
 * one projection with its LoRA: y = x W^T + b (+ s drop(x) A^T B^T)
 * ------------------------------------------------------------------------------------------ */

static float *grad_of(aios_trainer *t, const aios_lora_module *m, int B_part) {
    const float *p = B_part ? m->B : m->A;
    return t->grad + (p - t->a->data);
}

static aios_status proj_fwd(aios_trainer *t, layer_act *A, int64_t l, int target, float *y, const float *x,
                            const aios_tensor *W, const float *bias, int64_t N, int train) {
    AIOS_TRY(aios_matmul(y, x, W, bias, N));
    const aios_lora_module *m = aios_lora_get(t->a, l, target);
    if (!m) return AIOS_OK;
    const float *xin = x;
    const double p = t->a->dropout;
    if (train && p > 0) {
        float *xd = A->xd[target];
        uint8_t *dm = A->drop[target];
        const float keep = (float)(1.0 / (1.0 - p));
        for (int64_t i = 0; i < N * m->n_in; i++) {
            dm[i] = aios_lora_rng_uniform(&t->rng) < p;
            xd[i] = dm[i] ? 0.0f : x[i] * keep;
        }
        xin = xd;
    }
    return lora_fwd(m, aios_lora_scaling(t->a), y, xin, A->lu[target], N);
}

/* dx (N, n_in) (+)= dy @ W plus the LoRA path's; gradients of A and B accumulated.  dx NULL:
 * only the LoRA gradients (the first layer's input gradient is never needed). */
static aios_status proj_bwd(aios_trainer *t, layer_act *A, int64_t l, int target, float *dx, const float *dy,
                            const float *x, const aios_tensor *W, int64_t N, int accumulate) {
    if (dx) AIOS_TRY(aios_matmul_t(dx, dy, W, N, accumulate));
    const aios_lora_module *m = aios_lora_get(t->a, l, target);
    if (!m) return AIOS_OK;
    const double p = t->a->dropout;
    const float *xin = p > 0 ? A->xd[target] : x;
    return lora_bwd(m, aios_lora_scaling(t->a), dy, xin, A->lu[target], grad_of(t, m, 0), grad_of(t, m, 1), dx,
                    t->dlu, p > 0 ? A->drop[target] : NULL, p > 0 ? (float)(1.0 / (1.0 - p)) : 1.0f, N);
}

/* ------------------------------------------------------------------------------------------
 * the step
 * ------------------------------------------------------------------------------------------ */

/* One layer's forward: x (N, E) -> xm (after attention) and xn (the next layer's input), its
 * activations into A.  Draws its dropout masks from the state saved for the layer. */
static aios_status layer_fwd(aios_trainer *t, layer_act *A, int64_t l, const float *x, float *xm, float *xn,
                             const aios_train_batch *bt, int train) {
    const aios_decoder_config *c = t->c;
    const int64_t B = bt->B, L = bt->L, N = B * L;
    const int64_t E = c->n_embd, nh = c->n_head, nkv = c->n_head_kv, hd = c->head_dim, F = c->n_ff;
    aios_decoder_layer_view W;
    aios_decoder_layer(t->d, l, &W);
    t->rng = t->layer_rng[l];
    rms_fwd(A->xn1, A->rstd1, x, W.attn_norm, N, E, c->eps);
    float *qd = c->qk_norm ? A->qpre : A->q, *kd = c->qk_norm ? A->kpre : A->k;
    AIOS_TRY(proj_fwd(t, A, l, AIOS_LORA_Q, qd, A->xn1, W.wq, W.bq, N, train));
    AIOS_TRY(proj_fwd(t, A, l, AIOS_LORA_K, kd, A->xn1, W.wk, W.bk, N, train));
    AIOS_TRY(proj_fwd(t, A, l, AIOS_LORA_V, A->v, A->xn1, W.wv, W.bv, N, train));
    if (c->qk_norm) {
        rms_fwd(A->q, A->rq, A->qpre, W.q_norm, N * nh, hd, c->eps);
        rms_fwd(A->k, A->rk, A->kpre, W.k_norm, N * nkv, hd, c->eps);
    }
    aios_rope(A->q, t->pos, N, nh, hd, t->inv_freq);
    aios_rope(A->k, t->pos, N, nkv, hd, t->inv_freq);
    aios__train_attn_fwd(A->P, A->att, A->q, A->k, A->v, bt->mask, B, L, nh, nkv, hd);
    AIOS_TRY(proj_fwd(t, A, l, AIOS_LORA_O, xm, A->att, W.wo, W.bo, N, train));
    aios_add(xm, x, N * E);
    rms_fwd(A->xn2, A->rstd2, xm, W.ffn_norm, N, E, c->eps);
    AIOS_TRY(proj_fwd(t, A, l, AIOS_LORA_GATE, A->g, A->xn2, W.wg, NULL, N, train));
    AIOS_TRY(proj_fwd(t, A, l, AIOS_LORA_UP, A->u, A->xn2, W.wu, NULL, N, train));
#pragma omp parallel for schedule(static) num_threads(aios_get_threads())
    for (int64_t i = 0; i < N * F; i++) A->h[i] = A->g[i] * sigmoidf_(A->g[i]) * A->u[i];
    AIOS_TRY(proj_fwd(t, A, l, AIOS_LORA_DOWN, xn, A->h, W.wd, NULL, N, train));
    aios_add(xn, xm, N * E);
    return AIOS_OK;
}

aios_status aios_trainer_step(aios_trainer *t, const aios_train_batch *bt, float grad_scale, int train, double *loss,
                              int64_t *n_labels) {
    *loss = 0;
    if (n_labels) *n_labels = 0;
    const aios_decoder_config *c = t->c;
    const int64_t B = bt->B, L = bt->L, N = B * L;
    if (B <= 0 || L <= 0 || !bt->tokens || !bt->labels)
        return aios__err(AIOS_ERR_INVALID_ARG, "train: empty batch");
    if (L > c->n_ctx_train)
        return aios__err(AIOS_ERR_RANGE, "train: sequence length %lld beyond the model's context %lld", (long long)L,
                         (long long)c->n_ctx_train);
    for (int64_t i = 0; i < N; i++) {
        if (bt->tokens[i] < 0 || bt->tokens[i] >= c->n_vocab)
            return aios__err(AIOS_ERR_RANGE, "train: token %d outside the vocabulary", bt->tokens[i]);
        if (bt->labels[i] != -100 && (bt->labels[i] < 0 || bt->labels[i] >= c->n_vocab))
            return aios__err(AIOS_ERR_RANGE, "train: label %d outside the vocabulary", bt->labels[i]);
    }
    AIOS_TRY(ensure(t, B, L));
    const int64_t E = c->n_embd, nh = c->n_head, nkv = c->n_head_kv, hd = c->head_dim, F = c->n_ff;
    const int64_t V = c->n_vocab;
    for (int64_t i = 0; i < N; i++) t->pos[i] = (int32_t)(i % L), t->neg_pos[i] = -(int32_t)(i % L);

    /* rows that predict a label: row (b, i) predicts labels[b, i + 1] */
    int64_t n_lab = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i + 1 < L; i++) n_lab += bt->labels[b * L + i + 1] != -100;
    if (n_labels) *n_labels = n_lab;
    if (!n_lab) return AIOS_OK;

    /* ---- forward ---- */
    const aios_tensor *emb = aios_decoder_embed(t->d);
    for (int64_t i = 0; i < N; i++) AIOS_TRY(aios_tensor_row_f32(t->xs + i * E, emb, bt->tokens[i]));
    for (int64_t l = 0; l < c->n_layer; l++) {
        float *x = t->xs + (size_t)l * (size_t)(N * E), *xn = t->xs + (size_t)(l + 1) * (size_t)(N * E);
        float *xm = t->xm + (size_t)(t->checkpoint ? 0 : l) * (size_t)(N * E);
        t->layer_rng[l] = t->rng;
        AIOS_TRY(layer_fwd(t, act_of(t, l), l, x, xm, xn, bt, train));
    }
    const float *xL = t->xs + (size_t)c->n_layer * (size_t)(N * E);
    rms_fwd(t->xf, t->rstdf, xL, aios_decoder_final_norm(t->d), N, E, c->eps);

    /* ---- head + loss (+ its backward into dx) on labelled rows, LOGIT_CHUNK at a time ---- */
    const aios_tensor *head = aios_decoder_lm_head(t->d);
    memset(t->dx, 0, (size_t)(N * E) * sizeof(float)); /* d loss / d xf */
    int64_t rows[LOGIT_CHUNK];
    double total = 0;
    const float inv_n = 1.0f / (float)n_lab;
    int64_t next = 0;
    while (next < N) {
        int64_t nr = 0;
        for (; next < N && nr < LOGIT_CHUNK; next++) {
            int64_t i = next % L;
            if (i + 1 < L && bt->labels[next + 1] != -100) rows[nr++] = next;
        }
        if (!nr) break;
        for (int64_t k = 0; k < nr; k++) memcpy(t->tmp + k * E, t->xf + rows[k] * E, (size_t)E * sizeof(float));
        AIOS_TRY(aios_matmul(t->dlogit, t->tmp, head, NULL, nr)); /* (nr, V) logits */
        double part = 0;
#pragma omp parallel for reduction(+ : part) schedule(static) num_threads(aios_get_threads())
        for (int64_t k = 0; k < nr; k++) {
            float *z = t->dlogit + k * V;
            const int32_t y = bt->labels[rows[k] + 1];
            float mx = z[0];
            for (int64_t j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
            const float zy = z[y];
            /* one exp per entry: e_j = exp(z_j - max) is kept (in z, when training) for the
             * gradient, softmax_j = e_j / sum e (two exps per entry were 2.5 % of a step) */
            double se = 0;
            if (train)
                for (int64_t j = 0; j < V; j++) {
                    const double e = exp((double)z[j] - mx);
                    se += e;
                    z[j] = (float)e;
                }
            else
                for (int64_t j = 0; j < V; j++) se += exp((double)z[j] - mx);
            part += mx + log(se) - zy;
            if (train) { /* d/dz of the mean: (softmax - onehot) / n */
                const float f = (float)(1.0 / se) * inv_n * grad_scale;
                for (int64_t j = 0; j < V; j++) z[j] *= f;
                z[y] -= inv_n * grad_scale;
            }
        }
        total += part;
        if (!train) continue;
        AIOS_TRY(aios_matmul_t(t->tmp, t->dlogit, head, nr, 0)); /* (nr, E) */
        for (int64_t k = 0; k < nr; k++) memcpy(t->dx + rows[k] * E, t->tmp + k * E, (size_t)E * sizeof(float));
    }
    *loss = total / (double)n_lab;
    if (!isfinite(*loss)) return aios__err(AIOS_ERR_RANGE, "train: the loss is %g", *loss);
    if (!train) return AIOS_OK;

    /* ---- backward ---- */
    /* dx holds d/d xf; through the final norm into d/d x_L (the residual stream), kept in dn */
    rms_bwd(t->dn, t->dx, xL, t->rstdf, aios_decoder_final_norm(t->d), N, E, 0);
    float *dres = t->dn; /* (N, E) gradient of the residual stream, updated layer by layer */
    for (int64_t l = c->n_layer - 1; l >= 0; l--) {
        aios_decoder_layer_view W;
        aios_decoder_layer(t->d, l, &W);
        layer_act *A = act_of(t, l);
        const float *x = t->xs + (size_t)l * (size_t)(N * E);
        float *xm = t->xm + (size_t)(t->checkpoint ? 0 : l) * (size_t)(N * E);
        if (t->checkpoint) { /* recompute this layer (its output xs[l + 1] is rewritten with the same values) */
            const uint64_t keep = t->rng;
            AIOS_TRY(layer_fwd(t, A, l, x, xm, t->xs + (size_t)(l + 1) * (size_t)(N * E), bt, 1));
            t->rng = keep;
        }
        const int first = l == 0;
        /* MLP: x' = m + h Wd^T */
        AIOS_TRY(proj_bwd(t, A, l, AIOS_LORA_DOWN, t->dh, dres, A->h, W.wd, N, 0));
#pragma omp parallel for schedule(static) num_threads(aios_get_threads())
        for (int64_t i = 0; i < N * F; i++) {
            const float g = A->g[i], sg = sigmoidf_(g), dh = t->dh[i];
            t->du[i] = dh * g * sg;
            t->dg[i] = dh * A->u[i] * sg * (1.0f + g * (1.0f - sg));
        }
        AIOS_TRY(proj_bwd(t, A, l, AIOS_LORA_GATE, t->dt, t->dg, A->xn2, W.wg, N, 0));
        AIOS_TRY(proj_bwd(t, A, l, AIOS_LORA_UP, t->dt, t->du, A->xn2, W.wu, N, 1));
        rms_bwd(dres, t->dt, xm, A->rstd2, W.ffn_norm, N, E, 1); /* dres now d/d m */
        /* attention: m = x + att Wo^T */
        AIOS_TRY(proj_bwd(t, A, l, AIOS_LORA_O, t->datt, dres, A->att, W.wo, N, 0));
        AIOS_TRY(aios__train_attn_bwd(t->dq, t->dk, t->dv, t->datt, A->P, A->q, A->k, A->v, B, L, nh, nkv, hd));
        aios_rope(t->dq, t->neg_pos, N, nh, hd, t->inv_freq);
        aios_rope(t->dk, t->neg_pos, N, nkv, hd, t->inv_freq);
        if (c->qk_norm) {
            rms_bwd(t->dq, t->dq, A->qpre, A->rq, W.q_norm, N * nh, hd, 0);
            rms_bwd(t->dk, t->dk, A->kpre, A->rk, W.k_norm, N * nkv, hd, 0);
        }
        /* the first layer's input gradient is not needed (the embedding is frozen) */
        float *dxn = first ? NULL : t->dt;
        AIOS_TRY(proj_bwd(t, A, l, AIOS_LORA_Q, dxn, t->dq, A->xn1, W.wq, N, 0));
        AIOS_TRY(proj_bwd(t, A, l, AIOS_LORA_K, dxn, t->dk, A->xn1, W.wk, N, 1));
        AIOS_TRY(proj_bwd(t, A, l, AIOS_LORA_V, dxn, t->dv, A->xn1, W.wv, N, 1));
        if (!first) rms_bwd(dres, t->dt, x, A->rstd1, W.attn_norm, N, E, 1); /* dres now d/d x */
    }
    return AIOS_OK;
}

/* ------------------------------------------------------------------------------------------
 * optimizer, clipping, schedules
 * ------------------------------------------------------------------------------------------ */

aios_status aios_adamw_init(aios_adamw *o, int64_t n, double lr, double beta1, double beta2, double eps, double wd) {
    memset(o, 0, sizeof *o);
    if (n < 0 || !(lr >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0) || !(wd >= 0))
        return aios__err(AIOS_ERR_INVALID_ARG, "adamw: lr %g betas %g %g eps %g weight_decay %g", lr, beta1, beta2, eps, wd);
    o->lr = lr, o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->weight_decay = wd, o->n = n;
    o->m = calloc((size_t)AIOS_MAX(n, 1), sizeof(float));
    o->v = calloc((size_t)AIOS_MAX(n, 1), sizeof(float));
    if (!o->m || !o->v) {
        aios_adamw_free(o);
        return aios__err(AIOS_ERR_NOMEM, "adamw: state of %lld parameters", (long long)n);
    }
    return AIOS_OK;
}

void aios_adamw_free(aios_adamw *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void aios_adamw_step(aios_adamw *o, float *p, const float *g, double lr) {
    o->step++;
    const double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    const float decay = (float)(1.0 - lr * o->weight_decay);
#pragma omp parallel for schedule(static) if (o->n > 100000) num_threads(aios_get_threads())
    for (int64_t i = 0; i < o->n; i++) {
        /* torch: p *= 1 - lr wd ; m = b1 m + (1 - b1) g ; v = b2 v + (1 - b2) g^2 ;
         *        p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps) */
        p[i] *= decay;
        o->m[i] = b1 * o->m[i] + (1 - b1) * g[i];
        o->v[i] = b2 * o->v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= step_size * o->m[i] / (sqrtf(o->v[i]) / bc2_sqrt + eps);
    }
}

double aios_grad_clip(float *g, int64_t n, double max_norm) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double norm = sqrt(ss);
    if (max_norm > 0 && isfinite(norm)) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0)
            for (int64_t i = 0; i < n; i++) g[i] = (float)(g[i] * coef);
    }
    return norm;
}

double aios_lr_at(aios_lr_schedule s, double base, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup) return base * (double)step / (double)AIOS_MAX(warmup, (int64_t)1);
    if (s == AIOS_SCHED_CONSTANT) return base;
    double progress = (double)(step - warmup) / (double)AIOS_MAX(total - warmup, (int64_t)1);
    double f = 0.5 * (1.0 + cos(M_PI * progress));
    return base * (f > 0 ? f : 0);
}
