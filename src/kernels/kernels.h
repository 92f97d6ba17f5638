/*
 * kernels.h — the compute kernels every model uses (contract; src/kernels/cpu implements).
 *
 * Each kernel exists as plain scalar C (the reference, `aios_ref_*`) and as fast versions
 * (AVX2/FMA, AVX-512 where present, threads), selected once through a dispatch table from
 * aios_cpu().  AIOS_KERNELS=ref forces the reference path.  Fast paths are tested against
 * the reference at odd sizes forever.
 *
 * Activations are float32, row-major.  Weights are aios_tensor views in any dtype of
 * tensor.h (f32, f16, bf16, Q8, Q4, Q2) and are used in place — never dequantized to a copy.
 * Vocabulary (STYLE.md): n_embd, n_head, n_head_kv, head_dim, n_layer, n_ctx, n_vocab;
 * T = number of token rows in a batch.
 */
#ifndef AIOS_KERNELS_H
#define AIOS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"

/* y (T, n_out) = x (T, n_in) @ W^T + bias, W (n_out, n_in) in any weight dtype.
 * bias (n_out) may be NULL.  y must not alias x.  Threads over n_out (and T when large). */
aios_status aios_matmul(float *y, const float *x, const aios_tensor *W, const float *bias, int64_t T);

/* A float32 W packed once into the GEMM's panels, for callers that multiply by the same weight
 * in many large batches (the encoder of a server): aios_matmul transposes W into panels on each
 * call that has more token rows than the few-row paths take.  aios_matmul_pack_new sets *out to
 * NULL (and returns AIOS_OK) where there is nothing to gain — W not float32, or a kernel tier
 * without the packed GEMM (ref); memory: W's size again.  P holds no reference to W's memory
 * beyond checking it is the same W; free P before W's mapping goes away or not, as convenient.
 * aios_matmul_packed is aios_matmul, bit for bit, with P (or NULL) from this W: P is used when
 * the packed GEMM runs and P was made for the tier now selected, otherwise it is ignored.
 * On the AVX2 tier a 4-bit W (GGUF Q4_0 / Q4_1, ArrowQuant int4 with float16 scales) is packed
 * instead into blocks of 8 rows (kernels/cpu/q4x8.c; memory: W's size again; AIOS_REPACK=0:
 * none) for the decode
 * GEMV with int8 activations: aios_matmul_packed of 1-3 token rows under int8 activations runs
 * it (the int8-activation GEMV's sums in another order, not aios_matmul's bits); every other
 * call is aios_matmul. */
typedef struct aios_matmul_pack aios_matmul_pack;
aios_status aios_matmul_pack_new(const aios_tensor *W, aios_matmul_pack **out);
void aios_matmul_pack_free(aios_matmul_pack *P);
aios_status aios_matmul_packed(float *y, const float *x, const aios_tensor *W, const aios_matmul_pack *P,
                               const float *bias, int64_t T);

/* Int8 weights (Q8, per tensor or per row scales) against activations quantized per token row
 * to int8 (symmetric, scale max|x| / 127) with integer dot products (AVX-512 VNNI) when the
 * CPU has them: off (0, the default) keeps the exact-float path (weights dequantized in
 * registers, float FMA); on (1) is up to ~2x faster for batches (no faster when decoding, which
 * is bound by memory bandwidth either way) with a measured accuracy cost (docs/kernels.md).
 * AIOS_INT8_ACT=1 turns it on (AIOS_INT8_ACT=0 explicitly off); on = 3 / AIOS_INT8_ACT=16 is
 * mode 3 below (16-bit activations into quantized weights); a negative `on` forgets the
 * call (back to AIOS_INT8_ACT / the callers' own defaults).  Not thread-safe: call before work. */
void aios_kernels_int8_activations(int on);
/* The process setting: -1 when neither AIOS_INT8_ACT=0/1/16 nor aios_kernels_int8_activations
 * gave one, else 0 / 1 / 3.  A caller with its own default (the encoder) uses that default only
 * at -1. */
int aios_kernels_int8_setting(void);
/* The calling thread's own mode for its aios_matmul calls, over the process setting:
 * -1 follow the process setting; 0 exact float; 1 int8 activations wherever a kernel has them
 * (= AIOS_INT8_ACT=1); 2 int8 only in the per-group VNNI GEMM (>= 8 token rows, activation
 * scales per group of 32: the encoder's budget-tested path; fewer rows stay exact).  Returns the
 * previous mode, for restoring.  Products are dispatched on the calling thread (OpenMP workers
 * never read the mode), so a thread's mode affects no other thread. */
int aios_kernels_int8_thread_mode(int mode);
/* Mode 3 (AIOS_INT8_ACT=16, aios_kernels_int8_activations(3)): 16-bit activations — per 16
 * values two int8 digits, x = (dx / 256) (256 q1 + q2), max error dx / 512 — into quantized
 * weights (aios_kernels_x16_weight): integer decode GEMVs (1..3 token rows) for GGUF blocks and
 * ArrowQuant int8 / int4 in place,
 * 4- and 5-bit weights repacked in blocks of 8 rows through aios_matmul_packed (AVX2 code on
 * the AVX2 and AVX-512 tiers; on the AVX-512 tier of a VNNI CPU the GGUF and pack GEMVs' vpdpbusd
 * variants, a 16-row one for the pack); products of 4 or more rows with those weights (prefill, batched
 * decode steps) run the exact float kernels on x rounded by the same rule, so a row's result
 * does not depend on its product's row count; float weights exact float.  The
 * calling thread's mode as aios_matmul reads it (its thread mode, else the process setting 1 or
 * 3, else 0): 0, 1, 2 or 3. */
int aios_kernels_act_mode(void);
/* 1 when mode 3 changes products with W: GGUF blocks, ArrowQuant int8 / int4 that the 16-bit
 * kernels take (rows of a multiple of 32 columns, groups of a multiple of 32; not int2, float
 * weights or a CPU without AVX2), else 0. */
int aios_kernels_x16_weight(const aios_tensor *W);
/* Where 16-bit activations are the default for decoders on the selected tier (measured per tier,
 * docs/kernels.md "16-bit activations"): 1 the AVX2 tier, for every quantized weight; 2 the
 * AVX-512 tier on a CPU with AVX512_VNNI, for the 4- and 5-bit weights of the 8-row pack only
 * (GGUF Q4_0 / Q4_1 / Q5_0 / Q5_1, ArrowQuant int4 with float16 scales: its 16-row VNNI GEMV;
 * that tier's exact GEMVs stay ahead on int8, Q8_0 and the K-quants); 0 nowhere (exact float). */
int aios_kernels_x16_default(void);
/* 1 when aios_matmul(.., W, .., T) on the calling thread rounds x to 16 bits before an exact
 * product (mode 3, T >= 4, a weight that mode changes, the AVX2 / AVX-512 tiers), and that
 * rounding of T rows of n values (n a multiple of 32): a caller whose products share one input
 * rounds it once and runs them in thread mode 0 on the copy — the same floats. */
int aios_kernels_x16_rounds(const aios_tensor *W, int64_t T);
void aios_kernels_x16_round(float *xr, const float *x, int64_t T, int64_t n);
/* 1 when W is a weight for which the selected tier defaults to 16-bit activations (above). */
int aios_kernels_x16_default_weight(const aios_tensor *W);

/* Dot product of two float32 vectors, as a function of the selected tier (AVX-512 / AVX2 with
 * four accumulators, or the scalar reference): for callers that call it millions of times on
 * short vectors (the memory store's exact and HNSW search), where a per-call dispatch shows. */
typedef float (*aios_dot_fn)(const float *a, const float *b, int64_t n);
aios_dot_fn aios_kernels_dot(void);
/* y (n) += B (n, r) @ u (r), B row-major, on the selected tier: a LoRA delta's B side
 * (src/model/lora_delta.c), called per adapted module and token row. */
typedef void (*aios_lora_bu_fn)(float *y, const float *B, const float *u, int64_t n, int64_t r);
aios_lora_bu_fn aios_kernels_lora_bu(void);
/* The LoRA products with A / B in bfloat16, float32 accumulation (cpu/lora_bf16.c):
 * u (r) = s * A (r, n) @ x (n);  y (n) += B (n, r) @ u (r). */
typedef void (*aios_lora_ax16_fn)(float *u, const uint16_t *A, const float *x, int64_t r, int64_t n, float s);
typedef void (*aios_lora_bu16_fn)(float *y, const uint16_t *B, const float *u, int64_t n, int64_t r);
aios_lora_ax16_fn aios_kernels_lora_ax16(void);
aios_lora_bu16_fn aios_kernels_lora_bu16(void);

/* The transposed product (training's backward through a frozen weight):
 * dx (T, n_in) = dy (T, n_out) @ W (n_out, n_in), or += when accumulate, W in any dtype the
 * row dequantizer reads (src/kernels/cpu/matmul_t.c).  dx must not alias dy. */
aios_status aios_matmul_t(float *dx, const float *dy, const aios_tensor *W, int64_t T, int accumulate);

/* Row `row` of a 2-D tensor of any dtype, dequantized to float32: out (n_cols). */
aios_status aios_tensor_row_f32(float *out, const aios_tensor *W, int64_t row);
/* Whole tensor to float32 (for small 1-D parameters: norms, biases).  out (numel). */
aios_status aios_tensor_to_f32(float *out, const aios_tensor *t);

/* y (T, n) = LayerNorm(x) * w + b, biased variance, eps inside the sqrt. y may alias x. */
void aios_layernorm(float *y, const float *x, const float *w, const float *b, int64_t T, int64_t n, float eps);
/* y (T, n) = x / sqrt(mean(x^2) + eps) * w.  y may alias x. */
void aios_rmsnorm(float *y, const float *x, const float *w, int64_t T, int64_t n, float eps);
/* In place: GELU (erf form, as Hugging Face "gelu"), SiLU, softmax over the last dim. */
void aios_gelu(float *x, int64_t n);
void aios_silu(float *x, int64_t n);
void aios_softmax(float *x, int64_t rows, int64_t n);
/* In place: x[i] *= y[i]. */
void aios_mul(float *x, const float *y, int64_t n);
/* In place: x[i] += y[i]. */
void aios_add(float *x, const float *y, int64_t n);

/* RoPE (the Hugging Face "rotate_half" convention: pairs (i, i + head_dim/2)).
 * x (T, n_head, head_dim) rotated in place; pos (T) are positions; inv_freq (head_dim/2). */
void aios_rope(float *x, const int32_t *pos, int64_t T, int64_t n_head, int64_t head_dim, const float *inv_freq);

/* Scaled dot-product attention with grouped-query heads.
 *   q (Tq, n_head, head_dim), k, v (Tk, n_head_kv, head_dim) rows strided by kv_stride floats
 *   out (Tq, n_head, head_dim)
 *   mask: NULL = all visible; else mask[i * Tk + j] != 0 when query i may see key j.
 *   scale: usually 1/sqrt(head_dim).  A query that sees no key gets zeros. */
aios_status aios_attention(float *out, const float *q, const float *k, const float *v, int64_t Tq, int64_t Tk,
                           int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                           const uint8_t *mask, float scale);

/* aios_attention with k and v in float16 (a half-precision KV cache), the same contract and
 * strides in elements; the result is aios_attention on the widened values (bit for bit where the
 * fused decode kernel runs, to float rounding elsewhere). */
aios_status aios_attention_kv16(float *out, const float *q, const uint16_t *k, const uint16_t *v, int64_t Tq, int64_t Tk,
                                int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                                const uint8_t *mask, float scale);

/* Bidirectional attention over a padded batch of B sequences of L tokens (BERT): rows of
 * sequence b are q/k/v/out + b * L * stride.  q, out (B, L, n_head, head_dim) contiguous;
 * k, v (B, L, n_head_kv, head_dim) rows strided by kv_stride floats (q/out use
 * n_head * head_dim).  key_mask (B, L): nonzero for real tokens, NULL = all real.  Every
 * query (padded ones too, as Hugging Face) sees the real keys of its own sequence.
 * One parallel region for the whole batch. */
aios_status aios_attention_batch(float *out, const float *q, const float *k, const float *v, int64_t B, int64_t L,
                                 int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                                 const uint8_t *key_mask, float scale);

/* Kernel selection: "ref", "avx2", "avx512" — the active tier's name. */
const char *aios_kernels_tier(void);
/* Forces a tier by name ("ref", "avx2", "avx512", or "auto" for the best this CPU has).
 * AIOS_ERR_UNSUPPORTED when the CPU (or build) lacks it.  Not thread-safe: call before work. */
aios_status aios_kernels_use(const char *tier);
/* Threads used by kernels.  Default: the cores other processes leave free (their runnable
 * tasks, looked at once a second and averaged over a few seconds; all cores on a quiet
 * machine, 1 at least); AIOS_THREADS or aios_set_threads(n > 0) fixes the count exactly.
 * aios_set_threads(0) returns to the default. */
#define AIOS_KERNEL_MAX_THREADS 1024 /* larger counts (aios_set_threads, AIOS_THREADS) are clamped */
void aios_set_threads(int n);
int aios_get_threads(void);

/* f16/bf16 <-> f32 conversion (F16C where present). */
float aios_f16_to_f32(uint16_t h);
uint16_t aios_f32_to_f16(float f);
float aios_bf16_to_f32(uint16_t h);
uint16_t aios_f32_to_bf16(float f); /* round to nearest even, as PyTorch */
/* n values at once, the same rounding (to nearest even) as the scalar ones. */
void aios_f32_to_f16_n(uint16_t *dst, const float *src, int64_t n);
void aios_f16_to_f32_n(float *dst, const uint16_t *src, int64_t n);

/* ---- The scalar reference tier (plain C, single thread; every fast path is tested against it).
 * Same contracts as the functions above. */
aios_status aios_ref_matmul(float *y, const float *x, const aios_tensor *W, const float *bias, int64_t T);
void aios_ref_layernorm(float *y, const float *x, const float *w, const float *b, int64_t T, int64_t n, float eps);
void aios_ref_rmsnorm(float *y, const float *x, const float *w, int64_t T, int64_t n, float eps);
void aios_ref_gelu(float *x, int64_t n);
void aios_ref_silu(float *x, int64_t n);
void aios_ref_softmax(float *x, int64_t rows, int64_t n);
void aios_ref_mul(float *x, const float *y, int64_t n);
void aios_ref_add(float *x, const float *y, int64_t n);
void aios_ref_rope(float *x, const int32_t *pos, int64_t T, int64_t n_head, int64_t head_dim, const float *inv_freq);
aios_status aios_ref_attention_batch(float *out, const float *q, const float *k, const float *v, int64_t B, int64_t L,
                                     int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                                     const uint8_t *key_mask, float scale);
aios_status aios_ref_attention(float *out, const float *q, const float *k, const float *v, int64_t Tq, int64_t Tk,
                               int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                               const uint8_t *mask, float scale);

#endif
