/*
 * attn_train.c — causal attention over a padded batch with its backward, for the trainer
 * (decoder_train.c): query i of row b sees keys j <= i with mask[b, j]; the probabilities P
 * (B, nh, L, L) are kept for the backward.
 *
 * Key decisions:
 *  - One work item is one (row, head) in the forward and one (row, kv head) in the backward
 *    (the kv head's dk, dv belong to it alone: no reduction between threads).
 *  - The per-item bodies are one always_inline function compiled twice, baseline and
 *    AVX2+FMA (picked once from the kernel tier; AIOS_KERNELS=ref takes the baseline), with
 *    `omp simd` over head_dim.  The scalar float64 loops they replace were 25 % of a
 *    SmolLM2-135M training step's CPU time.  Both passes of a checkpointed layer run the same
 *    variant, so checkpointing stays bit for bit.
 *  - float64 for the softmax backward: dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij) sums to zero over
 *    j, so dq_i = scale sum_j dS_ij k_j cancels the keys' common part; dP and dq's sums are kept
 *    in double so that cancellation costs no float32 digits.
 * References: transformers modeling_llama.py eager_attention_forward; llm.c attention_backward.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/kernels.h"
#include "train/train.h"

/* clang at -O1 (the fuzz and sanitizer builds) may decline an `omp simd` loop and says so with
 * -Wpass-failed, an error under -Werror: the loop is still correct, only not vectorized. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

typedef struct {
    const float *q, *k, *v; /* (N, QD), (N, KVD), (N, KVD) */
    const uint8_t *mask;     /* (B, L) or NULL */
    float *P, *att;          /* forward's outputs: (B, nh, L, L), (N, QD) */
    const float *Pr, *datt;  /* backward's inputs: P, (N, QD) */
    float *dq, *dk, *dv;
    int64_t B, L, nh, nkv, hd;
} attn_args;

static inline __attribute__((always_inline)) void fwd_item(const attn_args *a, int64_t b, int64_t h) {
    const int64_t L = a->L, nh = a->nh, hd = a->hd, QD = nh * hd, KVD = a->nkv * hd;
    const int64_t kh = h / (nh / a->nkv);
    const float scale = 1.0f / sqrtf((float)hd);
    float *P = a->P + ((b * nh + h) * L) * L;
    for (int64_t i = 0; i < L; i++) {
        const float *qi = a->q + (b * L + i) * QD + h * hd;
        float *pi = P + i * L;
        float mx = -INFINITY;
        for (int64_t j = 0; j < L; j++) {
            if (j > i || (a->mask && !a->mask[b * L + j])) {
                pi[j] = -INFINITY;
                continue;
            }
            const float *kj = a->k + (b * L + j) * KVD + kh * hd;
            float s = 0;
#pragma omp simd reduction(+ : s)
            for (int64_t e = 0; e < hd; e++) s += qi[e] * kj[e];
            pi[j] = s * scale;
            if (pi[j] > mx) mx = pi[j];
        }
        float *oi = a->att + (b * L + i) * QD + h * hd;
        memset(oi, 0, (size_t)hd * sizeof(float));
        if (mx == -INFINITY) { /* sees no key: zeros (never a labelled row with right padding) */
            for (int64_t j = 0; j < L; j++) pi[j] = 0;
            continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < L; j++) {
            float e = pi[j] == -INFINITY ? 0.0f : expf(pi[j] - mx);
            pi[j] = e;
            sum += e;
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j <= i; j++) {
            pi[j] *= inv;
            if (pi[j] == 0) continue;
            const float pj = pi[j], *vj = a->v + (b * L + j) * KVD + kh * hd;
#pragma omp simd
            for (int64_t e = 0; e < hd; e++) oi[e] += pj * vj[e];
        }
    }
}

/* dp (L + hd doubles): scratch. */
static inline __attribute__((always_inline)) void bwd_item(const attn_args *a, int64_t b, int64_t kh, double *dp) {
    const int64_t L = a->L, nh = a->nh, hd = a->hd, QD = nh * hd, KVD = a->nkv * hd;
    const int64_t grp = nh / a->nkv;
    const float scale = 1.0f / sqrtf((float)hd);
    double *acc = dp + L;
    for (int64_t h = kh * grp; h < (kh + 1) * grp; h++) {
        const float *P = a->Pr + ((b * nh + h) * L) * L;
        for (int64_t i = 0; i < L; i++) {
            const float *pi = P + i * L;
            const float *doi = a->datt + (b * L + i) * QD + h * hd;
            const float *qi = a->q + (b * L + i) * QD + h * hd;
            float *dqi = a->dq + (b * L + i) * QD + h * hd;
            double sum = 0;
            for (int64_t j = 0; j <= i; j++) {
                dp[j] = 0;
                if (pi[j] == 0) continue;
                const float *vj = a->v + (b * L + j) * KVD + kh * hd;
                double sd = 0;
#pragma omp simd reduction(+ : sd)
                for (int64_t e = 0; e < hd; e++) sd += (double)doi[e] * vj[e];
                dp[j] = sd;
                sum += sd * pi[j];
            }
            for (int64_t e = 0; e < hd; e++) acc[e] = 0;
            for (int64_t j = 0; j <= i; j++) {
                if (pi[j] == 0) continue;
                const double dsd = pi[j] * (dp[j] - sum) * scale;
                const float ds = (float)dsd, pj = pi[j];
                const float *kj = a->k + (b * L + j) * KVD + kh * hd;
                float *dkj = a->dk + (b * L + j) * KVD + kh * hd, *dvj = a->dv + (b * L + j) * KVD + kh * hd;
#pragma omp simd
                for (int64_t e = 0; e < hd; e++) {
                    acc[e] += dsd * kj[e];
                    dkj[e] += ds * qi[e];
                    dvj[e] += pj * doi[e];
                }
            }
            for (int64_t e = 0; e < hd; e++) dqi[e] = (float)acc[e];
        }
    }
}

static void fwd_base(const attn_args *a, int64_t b, int64_t h) { fwd_item(a, b, h); }
static void bwd_base(const attn_args *a, int64_t b, int64_t kh, double *dp) { bwd_item(a, b, kh, dp); }
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) static void fwd_avx2(const attn_args *a, int64_t b, int64_t h) { fwd_item(a, b, h); }
__attribute__((target("avx2,fma"))) static void bwd_avx2(const attn_args *a, int64_t b, int64_t kh, double *dp) {
    bwd_item(a, b, kh, dp);
}
#endif

static int use_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    return strcmp(aios_kernels_tier(), "ref") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

void aios__train_attn_fwd(float *P, float *att, const float *q, const float *k, const float *v, const uint8_t *mask,
                          int64_t B, int64_t L, int64_t nh, int64_t nkv, int64_t hd) {
    const attn_args a = {.q = q, .k = k, .v = v, .mask = mask, .P = P, .att = att, .B = B, .L = L, .nh = nh, .nkv = nkv,
                         .hd = hd};
    void (*fn)(const attn_args *, int64_t, int64_t) = fwd_base;
#if defined(__x86_64__) || defined(__i386__)
    if (use_avx2()) fn = fwd_avx2;
#endif
#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(aios_get_threads())
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < nh; h++) fn(&a, b, h);
}

aios_status aios__train_attn_bwd(float *dq, float *dk, float *dv, const float *datt, const float *P, const float *q,
                                 const float *k, const float *v, int64_t B, int64_t L, int64_t nh, int64_t nkv,
                                 int64_t hd) {
    const attn_args a = {.q = q, .k = k, .v = v, .Pr = P, .datt = datt, .dq = dq, .dk = dk, .dv = dv, .B = B,
                         .L = L, .nh = nh, .nkv = nkv, .hd = hd};
    const int64_t N = B * L;
    memset(dk, 0, (size_t)(N * nkv * hd) * sizeof(float));
    memset(dv, 0, (size_t)(N * nkv * hd) * sizeof(float));
    void (*fn)(const attn_args *, int64_t, int64_t, double *) = bwd_base;
#if defined(__x86_64__) || defined(__i386__)
    if (use_avx2()) fn = bwd_avx2;
#endif
    int failed = 0;
#pragma omp parallel num_threads(aios_get_threads())
    {
        double *dp = malloc((size_t)(L + hd) * sizeof(double));
        if (!dp) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++)
            for (int64_t kh = 0; kh < nkv; kh++)
                if (dp) fn(&a, b, kh, dp);
        free(dp);
    }
    if (failed) return aios__err(AIOS_ERR_NOMEM, "train: attention backward scratch");
    return AIOS_OK;
}
