/*
 * lora_delta.c — the run-time LoRA delta y += s B (A x), per token row, on the kernel tiers.
 *
 * At decode time the delta is two tiny products per adapted module (SmolLM2-135M, r = 8:
 * 8 x 576 for A, 576 x 8 for B), ~90 calls per token.  As plain scalar loops they cost ~5 % of a
 * decode step although their FLOPs are < 1 % of the base's (perf: the A side one latency-bound
 * add chain of n_in terms per rank, the B side an 8-term chain per output).  Here:
 *  - u (r) = s A x: r dot products through the kernels' tiered dot (aios_kernels_dot: AVX-512 /
 *    AVX2 with four accumulators, or the scalar reference), x read from L1 each time.
 *  - y (n_out) += B u with B in PEFT's layout (n_out, r): the tier's B-side kernel
 *    (aios_kernels_lora_bu, src/kernels/cpu/lora_bu.c: blocks of outputs reduced in registers).
 *    No transposed copy of B: the trainer and tests write A / B in place, a copy could go stale.
 *  - No OpenMP region unless the rows are many (prefill): entering one per call, even with a
 *    false `if`, showed in decode profiles; no allocation (the caller's scratch u).
 * The reference tier keeps the old scalar arithmetic bit for bit (sequential sums, u scaled
 * after its dot); the SIMD tiers differ in the last bits (other summation orders).
 */
#include "core/internal.h"
#include "kernels/kernels.h"
#include "model/lora.h"

void aios__lora_bu(float *y, const float *B, const float *u, int64_t n_out, int64_t r) {
    aios_kernels_lora_bu()(y, B, u, n_out, r);
}

/* one token row: u (r) = s A x, y += B u */
static inline void apply_row(const aios_lora_module *m, float s, float *yt, const float *xt, float *ut,
                             aios_dot_fn dot, aios_lora_bu_fn bu) {
    const int64_t r = m->r, ni = m->n_in;
    for (int64_t k = 0; k < r; k++)
        ut[k] = dot(xt, m->A + k * ni, ni) * s;
    bu(yt, m->B, ut, m->n_out, r);
}

/* one token row from the bf16 copy: u (r) = s A16 x, y += B16 u */
static inline void apply_row16(const aios_lora_module *m, const uint16_t *A16, const uint16_t *B16, float s,
                               float *yt, const float *xt, float *ut, aios_lora_ax16_fn ax,
                               aios_lora_bu16_fn bu) {
    ax(ut, A16, xt, m->r, m->n_in, s);
    bu(yt, B16, ut, m->n_out, m->r);
}

void aios_lora_apply_bf16(const aios_lora *a, const aios_lora_module *m, float mult, float *y, const float *x,
                          int64_t T, float *u) {
    const int64_t r = m->r, ni = m->n_in, no = m->n_out;
    const float s = mult * aios_lora_scaling(a);
    const uint16_t *A16 = a->bf16 + (m->A - a->data), *B16 = a->bf16 + (m->B - a->data);
    const aios_lora_ax16_fn ax = aios_kernels_lora_ax16();
    const aios_lora_bu16_fn bu = aios_kernels_lora_bu16();
    if (T * (ni + no) * r <= 200000) {
        for (int64_t t = 0; t < T; t++)
            apply_row16(m, A16, B16, s, y + t * no, x + t * ni, u + t * r, ax, bu);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(aios_get_threads())
    for (int64_t t = 0; t < T; t++)
        apply_row16(m, A16, B16, s, y + t * no, x + t * ni, u + t * r, ax, bu);
}

void aios_lora_apply(const aios_lora *a, const aios_lora_module *m, float mult, float *y, const float *x,
                     int64_t T, float *u) {
    const int64_t r = m->r, ni = m->n_in, no = m->n_out;
    const float s = mult * aios_lora_scaling(a);
    const aios_dot_fn dot = aios_kernels_dot();
    const aios_lora_bu_fn bu = aios_kernels_lora_bu();
    if (T * (ni + no) * r <= 200000) {
        for (int64_t t = 0; t < T; t++)
            apply_row(m, s, y + t * no, x + t * ni, u + t * r, dot, bu);
        return;
    }
    /* the kernels' thread count (--threads): a server's connection threads have OpenMP's default
     * team of every core (measured: served requests with one skill 1.6x slower under load) */
#pragma omp parallel for schedule(static) num_threads(aios_get_threads())
    for (int64_t t = 0; t < T; t++)
        apply_row(m, s, y + t * no, x + t * ni, u + t * r, dot, bu);
}
