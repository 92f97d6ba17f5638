/*
 * arrow.c — Arrow routing over LoRA adapters (Ostapenko et al. 2024, "Towards Modular LLMs by
 * Building and Reusing a Library of LoRAs"; the semantics of PEFT's ArrowLoraLinearLayer).
 *
 * Per adapted module each adapter (expert) e has a prototype p_e: the top right singular vector
 * of its update B_e A_e (unit norm; its sign is irrelevant because routing uses |x . p|).  Per
 * token x (the module's input row):
 *     s_e     = |x . p_e|
 *     coeff   = softmax over the top_k largest s_e of s_e / temperature (0 for the others)
 *     y      += sum_e coeff_e * scale_e * B_e (A_e x)
 * where scale_e is the adapter's alpha / r (PEFT's scaling) times the caller's scale.
 *
 * Key decisions:
 *  - The prototype is computed as PEFT computes it: 15 power iterations of
 *    v -> A^T (B^T B) (A v) from torch.randn(n_in) of a generator seeded 4242 (reproduced
 *    here: mt19937 + torch's Box-Muller blocks), not the converged singular vector.  The
 *    similarities |x . p| are not normalised by |x|, which reaches the tens, so the softmax is
 *    sensitive to the prototype: the exact vector (|cos| 0.99998 to PEFT's on a layer-0
 *    down_proj whose top singular values are 0.94 / 0.83) moved the logits by 1e-2 relative;
 *    PEFT's own recipe matches them to float rounding.  O(15 r (n_in + n_out)) per module.
 *  - No allocation per token: the caller hands scratch (aios_lora_arrow_scratch floats per
 *    token row) sized when the batch grows.
 *  - The dot products (similarity and x A^T) go through the kernels' tiered dot
 *    (aios_kernels_dot), so AIOS_KERNELS=ref|avx2|avx512 selects the path; the B side too
 *    (aios__lora_bu: the tier's kernel, src/kernels/cpu/lora_bu.c).  No
 *    OpenMP region for a decode step's few rows.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "kernels/kernels.h"
#include "model/lora.h"
#include "tensor/quant.h"

/* ---- PEFT's start vector: torch.randn(n) from torch.Generator().manual_seed(seed) on the CPU ----
 * mt19937 (Matsumoto & Nishimura 1998) gives 24-bit uniforms in [0, 1); for n >= 16 torch fills
 * them all and turns each block of 16 into normals by Box-Muller, the first 8 as the u1 (1 - x)
 * and the last 8 as the u2 of each pair: z_j = sqrt(-2 ln u1) cos(2 pi u2), z_{j+8} = ... sin;
 * when n is not a multiple of 16 the last 16 entries are refilled from fresh uniforms and
 * transformed again.  (n < 16, which no real module has, takes the uniforms minus 1/2.) */
typedef struct {
    uint32_t s[624];
    int i;
} mt19937;

static void mt_seed(mt19937 *m, uint32_t seed) {
    m->s[0] = seed;
    for (int j = 1; j < 624; j++) m->s[j] = 1812433253u * (m->s[j - 1] ^ (m->s[j - 1] >> 30)) + (uint32_t)j;
    m->i = 624;
}

static uint32_t mt_next(mt19937 *m) {
    if (m->i >= 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (m->s[k] & 0x80000000u) | (m->s[(k + 1) % 624] & 0x7fffffffu);
            m->s[k] = m->s[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1) ? 0x9908b0dfu : 0);
        }
        m->i = 0;
    }
    uint32_t y = m->s[m->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

static float mt_uniform(mt19937 *m) { return (float)(mt_next(m) & 0xffffffu) * 0x1.0p-24f; }

static void box_muller16(float *d) {
    for (int j = 0; j < 8; j++) {
        double u1 = 1.0 - d[j], u2 = d[j + 8], rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
        d[j] = (float)(rad * cos(th));
        d[j + 8] = (float)(rad * sin(th));
    }
}

void aios__torch_randn(float *out, int64_t n, uint64_t seed) {
    mt19937 m;
    mt_seed(&m, (uint32_t)seed);
    for (int64_t i = 0; i < n; i++) out[i] = mt_uniform(&m);
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) out[i] -= 0.5f;
        return;
    }
    for (int64_t i = 0; i + 16 <= n; i += 16) box_muller16(out + i);
    if (n % 16) {
        float *t = out + n - 16;
        for (int i = 0; i < 16; i++) t[i] = mt_uniform(&m);
        box_muller16(t);
    }
}

aios_status aios_lora_prototype(const aios_lora_module *m, float *v) {
    const int64_t r = m->r, ni = m->n_in, no = m->n_out;
    double *C = calloc((size_t)(r * r + 2 * r + ni), sizeof(double));
    float *v0 = malloc((size_t)ni * sizeof(float));
    if (!C || !v0) {
        free(C), free(v0);
        return aios__err(AIOS_ERR_NOMEM, "arrow: prototype scratch");
    }
    double *a = C + r * r, *c = a + r, *w = c + r;
    for (int64_t i = 0; i < r; i++) /* C (r, r) = B^T B */
        for (int64_t j = 0; j <= i; j++) {
            double acc = 0;
            for (int64_t o = 0; o < no; o++) acc += (double)m->B[o * r + i] * m->B[o * r + j];
            C[i * r + j] = C[j * r + i] = acc;
        }
    /* power iteration on v -> A^T (B^T B) (A v), from PEFT's seeded start, PEFT's count */
    aios__torch_randn(v0, ni, AIOS_ARROW_SEED);
    double n2 = 0;
    for (int64_t k = 0; k < ni; k++) w[k] = v0[k], n2 += w[k] * w[k];
    double inv = 1.0 / (sqrt(n2) + 1e-8);
    for (int64_t k = 0; k < ni; k++) w[k] *= inv;
    for (int it = 0; it < AIOS_ARROW_ITERS; it++) {
        for (int64_t i = 0; i < r; i++) { /* a (r) = A v */
            double acc = 0;
            for (int64_t k = 0; k < ni; k++) acc += (double)m->A[i * ni + k] * w[k];
            a[i] = acc;
        }
        for (int64_t i = 0; i < r; i++) { /* c (r) = C a */
            double acc = 0;
            for (int64_t j = 0; j < r; j++) acc += C[i * r + j] * a[j];
            c[i] = acc;
        }
        n2 = 0;
        for (int64_t k = 0; k < ni; k++) { /* w (n_in) = A^T c */
            double acc = 0;
            for (int64_t i = 0; i < r; i++) acc += (double)m->A[i * ni + k] * c[i];
            w[k] = acc;
            n2 += acc * acc;
        }
        inv = 1.0 / (sqrt(n2) + 1e-8);
        for (int64_t k = 0; k < ni; k++) w[k] *= inv;
    }
    for (int64_t k = 0; k < ni; k++) v[k] = (float)w[k];
    free(C), free(v0);
    return AIOS_OK;
}

/* One lock for every adapter's prototypes: computing them is rare (once per adapter), checking
 * them is once per adapter per forward. */
static pthread_mutex_t protos_mu = PTHREAD_MUTEX_INITIALIZER;

aios_status aios_lora_prototypes(aios_lora *a) {
    pthread_mutex_lock(&protos_mu);
    aios_status s = AIOS_OK;
    if (!a->protos) { /* one buffer for the adapter's life: pointers to it stay valid */
        int64_t total = 0;
        for (int64_t k = 0; k < a->n_mods; k++) total += a->mods[k].n_in;
        if (!(a->protos = malloc((size_t)AIOS_MAX(total, 1) * sizeof(float))))
            s = aios__err(AIOS_ERR_NOMEM, "arrow: prototypes of %lld floats", (long long)total);
        a->protos_ok = 0;
    }
    if (s == AIOS_OK && !a->protos_ok) {
        for (int64_t k = 0, off = 0; s == AIOS_OK && k < a->n_mods; off += a->mods[k++].n_in) {
            s = aios_lora_prototype(&a->mods[k], a->protos + off);
            a->mods[k].proto = a->protos + off;
        }
        a->protos_ok = s == AIOS_OK;
        a->proto_builds += s == AIOS_OK;
    }
    pthread_mutex_unlock(&protos_mu);
    return s;
}

void aios_lora_changed(aios_lora *a) {
    pthread_mutex_lock(&protos_mu);
    a->protos_ok = 0;
    a->bf16_ok = 0;
    pthread_mutex_unlock(&protos_mu);
}

aios_status aios_lora_bf16(aios_lora *a) {
    aios_status s = AIOS_OK;
    pthread_mutex_lock(&protos_mu);
    if (!a->bf16_ok) {
        if (!a->bf16 && !(a->bf16 = malloc((size_t)a->n_params * sizeof *a->bf16 + 1)))
            s = aios__err(AIOS_ERR_NOMEM, "lora: bf16 copy of %lld values", (long long)a->n_params);
        if (!s) aios_quant_floats_to_bf16(a->bf16, a->data, a->n_params);
        a->bf16_ok = s == AIOS_OK;
    }
    pthread_mutex_unlock(&protos_mu);
    return s;
}

int64_t aios_lora_arrow_scratch(const aios_arrow_expert *ex, int E) {
    int64_t rmax = 0;
    for (int e = 0; e < E; e++) rmax = AIOS_MAX(rmax, ex[e].m->r);
    return 2 * (int64_t)E + rmax;
}

void aios_lora_arrow_coeffs(const float *sim, int E, int top_k, float temperature, float *coeff) {
    /* top_k largest of sim (E small: selection by repeated max; ties keep the lower index) */
    int k = top_k < 1 ? 1 : (top_k > E ? E : top_k);
    float mx = -INFINITY;
    for (int e = 0; e < E; e++) coeff[e] = 0;
    unsigned char chosen[AIOS_DECODER_MAX_ADAPTERS] = {0};
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < E; e++)
            if (!chosen[e] && (best < 0 || sim[e] > sim[best])) best = e;
        chosen[best] = 1;
        if (sim[best] > mx) mx = sim[best];
    }
    double sum = 0;
    for (int e = 0; e < E; e++)
        if (chosen[e]) sum += (coeff[e] = expf((sim[e] - mx) / temperature));
    for (int e = 0; e < E; e++) coeff[e] = (float)(coeff[e] / sum);
}

/* one token row: the similarities, the coefficients, y += the chosen experts' deltas */
static void arrow_row(const aios_arrow_expert *ex, int E, int top_k, float temperature, float *yt, const float *xt,
                      float *sim, aios_dot_fn dot) {
    const int64_t ni = ex[0].m->n_in, no = ex[0].m->n_out;
    float *coeff = sim + E, *u = coeff + E;
    for (int e = 0; e < E; e++) sim[e] = fabsf(dot(xt, ex[e].proto, ni)); /* (E) */
    aios_lora_arrow_coeffs(sim, E, top_k, temperature, coeff);
    for (int e = 0; e < E; e++) {
        if (coeff[e] == 0) continue;
        const aios_lora_module *m = ex[e].m;
        const int64_t r = m->r;
        const float c = coeff[e] * ex[e].scale;
        for (int64_t k = 0; k < r; k++) u[k] = c * dot(xt, m->A + k * ni, ni); /* u (r) = c A x */
        aios__lora_bu(yt, m->B, u, no, r);                                     /* y += B u */
    }
}

void aios_lora_arrow_apply(const aios_arrow_expert *ex, int E, int top_k, float temperature, float *y,
                           const float *x, int64_t T, float *scratch) {
    if (E <= 0) return;
    const int64_t ni = ex[0].m->n_in, no = ex[0].m->n_out, per = aios_lora_arrow_scratch(ex, E);
    const aios_dot_fn dot = aios_kernels_dot();
    int64_t work = 0;
    for (int e = 0; e < E; e++) work += ni + ex[e].m->r * (ni + no);
    if (T * work <= 400000) { /* decode: no OpenMP region per call */
        for (int64_t t = 0; t < T; t++)
            arrow_row(ex, E, top_k, temperature, y + t * no, x + t * ni, scratch + t * per, dot);
        return;
    }
    /* the kernels' thread count (--threads): a server's connection threads have OpenMP's default
     * team of every core (measured: served requests with one skill 1.6x slower under load) */
#pragma omp parallel for schedule(static) num_threads(aios_get_threads())
    for (int64_t t = 0; t < T; t++)
        arrow_row(ex, E, top_k, temperature, y + t * no, x + t * ni, scratch + t * per, dot);
}
