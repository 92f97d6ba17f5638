/*
 * kern.h — internals shared by the CPU kernel tiers (not part of any public interface).
 *
 * A tier is a small table of function pointers (ref, avx2, avx512) filled once; the public
 * kernels in dispatch.c validate arguments, split work across OpenMP threads and call the
 * tier's inner loops.  Quantized weights are read through aios__q_* helpers that follow the
 * ArrowQuant layouts of tensor/tensor.h exactly (flat element index, MSB-first packing).
 */
#ifndef AIOS_KERNELS_CPU_KERN_H
#define AIOS_KERNELS_CPU_KERN_H

#include <string.h>

#include "core/internal.h"
#include "kernels/kernels.h"

/* Inner loops of one tier.  All pointers are float32 unless noted. */
typedef struct {
    const char *name;
    /* out (n) = dequantized W[row, c0 : c0 + n] (any weight dtype). */
    void (*deq)(float *out, const aios_tensor *W, int64_t row, int64_t c0, int64_t n);
    /* y[t * ldy + r] += dot(w[r * ldw : +n], x[t * ldx : +n]) for r < nr (<= 4), t < nt (<= 4). */
    void (*tile)(float *y, int64_t ldy, const float *w, int64_t ldw, int nr, const float *x, int64_t ldx,
                 int nt, int64_t n);
    float (*dot)(const float *a, const float *b, int64_t n);
    /* y (n) += B (n, r) @ u (r), B row-major (a LoRA delta's B side; cpu/lora_bu.c) */
    void (*lora_bu)(float *y, const float *B, const float *u, int64_t n, int64_t r);
    /* the same two products with A / B stored as bfloat16 (cpu/lora_bf16.c):
     * u (r) = s * A (r, n) @ x (n), and y (n) += B (n, r) @ u (r) */
    void (*lora_ax16)(float *u, const uint16_t *A, const float *x, int64_t r, int64_t n, float s);
    void (*lora_bu16)(float *y, const uint16_t *B, const float *u, int64_t n, int64_t r);
    /* y (n) += a * x (n) */
    void (*axpy)(float *y, float a, const float *x, int64_t n);
    void (*scale)(float *x, float a, int64_t n);
    void (*gelu)(float *x, int64_t n);
    void (*silu)(float *x, int64_t n);
    void (*softmax_row)(float *x, int64_t n);
    void (*layernorm_row)(float *y, const float *x, const float *w, const float *b, int64_t n, float eps);
    void (*rmsnorm_row)(float *y, const float *x, const float *w, int64_t n, float eps);
    void (*add)(float *x, const float *y, int64_t n);
    void (*mul)(float *x, const float *y, int64_t n);
    /* Optional (NULL when absent): y (T, n_out) += int8 matmul of Q8 weights (per tensor or per
     * row scales) with activations quantized to int8 per token row, integer dot products. */
    aios_status (*matmul_q8_int)(float *y, const float *x, const aios_tensor *W, int64_t T, int nth);
    /* Optional: y[t * ldy + r] += dot(W row r, x[t * ldx]) for r0 <= r < r1, t < nt (1..3), Q8 / Q4 /
     * Q2 weights expanded in registers from the packed bytes (the decode-time GEMV, no staging). */
    void (*gemv_q)(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                   int64_t r1);
    /* Optional: the same decode GEMV for float32 / float16 / bfloat16 weights (widened in
     * registers, one row at a time: the matrix read as one sequential stream, no software
     * prefetch — measured faster for plain floats). */
    void (*gemv_f)(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                   int64_t r1);
    /* Optional: the same decode GEMV for GGUF block weights (tensor/gguf_blocks.h), read in
     * place, exact-float (blocks unpacked to integers in registers, scales applied per block). */
    void (*gemv_gguf)(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                      int64_t r1);
    /* Optional: gemv_gguf with the activations rounded to int8 blocks of 32 and integer dot
     * products (opt-in: aios_kernels_int8_activations / AIOS_INT8_ACT=1). */
    void (*gemv_gguf_i8)(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                         int64_t r1);
    /* Optional: gemv_q with int8 activations for grouped int8 / int4 weights (qdot_avx512.c),
     * where gemv_q_i8_ok(W) says this CPU and W's layout have it. */
    int (*gemv_q_i8_ok)(const aios_tensor *W);
    void (*gemv_q_i8)(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                      int64_t r1);
} aios__ktier;

/* The automatic team size: n_cores less the cores other processes keep busy (others: their
 * runnable tasks, averaged), rounded to the nearest; at least 1. */
int aios__threads_free(int n_cores, double others);

extern const aios__ktier aios__tier_ref;
#if defined(__x86_64__)
extern const aios__ktier aios__tier_avx2;
extern const aios__ktier aios__tier_avx512;
/* The AVX2 GGUF decode GEMV (avx2.c); the AVX-512 tier has its own (avx512.c) but shares the
 * AVX2 dequantizer and int8-activation GEMV below (256-bit code runs on every AVX-512 CPU). */
void aios__gemv_gguf_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                          int64_t r1);
/* out (n) = values [c0, c0 + n) of row `row` of a GGUF block weight, bit-identical to the
 * reference (avx2.c; the AVX-512 tier's too). */
void aios__deq_gguf_avx2(float *out, const aios_tensor *W, int64_t row, int64_t c0, int64_t n);
void aios__gemv_gguf_i8_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                             int64_t r0, int64_t r1);
void aios__gemv_gguf_x16_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                              int64_t r0, int64_t r1);
/* The same loops with AVX512-VNNI dot products on 256-bit vectors, bit-identical results
 * (idot_avx2.h): the AVX-512 tier's 16-bit-activation GEMV where the CPU has AVX512_VNNI. */
void aios__gemv_gguf_x16_vnni(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                              int64_t r0, int64_t r1);
/* The batched decode GEMV on GGUF block weights (gemv_multi.h): gemv_gguf's contract for nt
 * 1..16 token rows, each 4-row x 1024-column weight chunk decoded once (exact float32 values)
 * into L1 and applied to every row.  dispatch.c sends T 4..AIOS_MULTI_MAX_ROWS here. */
void aios__gemv_gguf_multi_512(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                               int64_t r0, int64_t r1);
void aios__gemv_gguf_multi_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                                int64_t r0, int64_t r1);
/* int8 activations x VNNI (qdot_avx512.c): the GGUF GEMV (falls back to the AVX2 one on a CPU
 * without AVX512_VNNI) and the grouped ArrowQuant int8 / int4 GEMV. */
void aios__gemv_gguf_i8_512(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                            int64_t r0, int64_t r1);
int aios__gemv_q_i8_ok(const aios_tensor *W);
/* The grouped exact-float decode GEMV (avx512.c, avx2.c) applies: int8 / int4 with groups of a
 * multiple of 32 columns, whole groups per row. */
int aios__gemv_gq_ok(const aios_tensor *W);
void aios__gemv_q_i8_512(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                         int64_t r1);
/* The AVX2 int8-activation GEMV for ArrowQuant int8 / int4 (avx2.c): groups of a multiple of 32
 * columns (at most 8192) within a row, or one scale per row / tensor, rows of a multiple of 32
 * columns; the AVX-512 tier takes it where the VNNI one does not apply. */
int aios__gemv_q_i8_avx2_ok(const aios_tensor *W);
void aios__gemv_q_i8_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                          int64_t r0, int64_t r1);
/* aios__gemv_q_i8_avx2 with 16-bit activations (mode 3: per 16 values two int8 digits,
 * quant_x32_x16 in avx2.c); aios__gemv_gguf_x16_avx2 is the same for the GGUF GEMV */
void aios__gemv_q_x16_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W,
                           int64_t r0, int64_t r1);
/* xr (n, a multiple of 32) = x as those two digits give it, dx / 256 (256 q1 + q2) per value
 * (quant_x32_x16's rounding): the 16-bit activations for products that run exact float kernels
 * on them (4 or more rows under mode 3: prompts, batched decode steps; aios_matmul). */
void aios__round_x16_avx2(float *xr, const float *x, int64_t n);
#endif
/* The scalar reference of the int8-activation decode GEMV (qdot_ref.c): the same rounding of x
 * and the same integer dot products per 16 / 32 values, for GGUF blocks and grouped int8 / int4
 * (group_size % 32 == 0); the oracle of the SIMD versions. */
void aios__ref_gemv_i8(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                       int64_t r1);

/* The packed, register-blocked GEMM (gemm.c) for many token rows: y (T, n_out) += x @ W^T for
 * any dtype the tier's deq reads.  Available on the AVX2 and AVX-512 tiers. */
void aios__lora_bu_ref(float *y, const float *B, const float *u, int64_t n, int64_t r);
void aios__lora_ax16_ref(float *u, const uint16_t *A, const float *x, int64_t r, int64_t n, float s);
void aios__lora_ax16_256(float *u, const uint16_t *A, const float *x, int64_t r, int64_t n, float s);
void aios__lora_ax16_512(float *u, const uint16_t *A, const float *x, int64_t r, int64_t n, float s);
void aios__lora_bu16_ref(float *y, const uint16_t *B, const float *u, int64_t n, int64_t r);
void aios__lora_bu16_256(float *y, const uint16_t *B, const float *u, int64_t n, int64_t r);
void aios__lora_bu16_512(float *y, const uint16_t *B, const float *u, int64_t n, int64_t r);
void aios__lora_bu_256(float *y, const float *B, const float *u, int64_t n, int64_t r);
void aios__lora_bu_512(float *y, const float *B, const float *u, int64_t n, int64_t r);
int aios__gemm_available(const aios__ktier *K);
/* y (T rows of n_out) = bias (NULL: zeros), each row (dispatch.c) */
void aios__start_at_bias(float *y, const float *bias, int64_t T, int64_t n_out);
/* y (T, n_out) = bias (NULL: 0) + x (T, n_in) @ W^T, n_in > 0; y's old contents are not read. */
aios_status aios__gemm(const aios__ktier *K, float *y, const float *x, const aios_tensor *W, const float *bias,
                       int64_t T, int nth);
/* W's panels packed once (aios_matmul_pack_new): the panel of output rows p NR .. p NR + NR - 1
 * for the KC columns from k0 is at panels + p NR n_in + k0 NR, laid out as gemm.c packs it per
 * call ([k][j], zero rows past n_out), so a product through it gives the same bits. */
struct aios_matmul_pack {
    const aios__ktier *K; /* the tier (micro-kernel width NR) it was packed for */
    const void *wdata;    /* the W->data it holds */
    int64_t n_out, n_in;
    int NR;
    float *panels;  /* f32 W: the GEMM's panels (NULL otherwise) */
    uint8_t *q4;    /* 4- or 5-bit W for the integer decode GEMVs: blocks of 8 rows (q4x8.c; NULL otherwise) */
    int q4_min;     /* q4's m fields are Q4_1 / Q5_1 minimums (else zero points) */
    int q4_bits;    /* 4 or 5: q4's fields */
    int q4_nom;     /* q4's blocks have no m field (every offset the fixed 8 / 16: Q4_0, Q5_0, int4 without zero points) */
    int q4_pair;    /* q4's row groups 2h and 2h + 1 alternate per 32 columns (q4x8_off; the AVX-512 VNNI tier) */
};
/* Byte offset of row group g's (rows 8g .. 8g + 7) block of columns 32b .. 32b + 31 in a pack
 * of n8 groups, nb blocks per row, B bytes per block; and the step to its next block.  Paired
 * packs put each even group's block next to the odd group's (one sequential stream for the
 * 16-row VNNI GEMV); a last unpaired group keeps the plain order. */
static inline size_t aios__q4x8_off(int pair, int64_t g, int64_t b, int64_t n8, int64_t nb, size_t B) {
    return pair && (g | 1) < n8 ? (size_t)((g & ~(int64_t)1) * nb + 2 * b + (g & 1)) * B : (size_t)(g * nb + b) * B;
}
static inline size_t aios__q4x8_step(int pair, int64_t g, int64_t n8, size_t B) { return pair && (g | 1) < n8 ? 2 * B : B; }
/* 4- and 5-bit weights in blocks of 8 rows x 32 columns (q4x8.c): the fields' bits if W can be
 * packed (4: GGUF Q4_0 / Q4_1, ArrowQuant int4 with float16 scales in groups of a multiple of
 * 32 or per row / tensor; 5: GGUF Q5_0 / Q5_1; n_in % 32 == 0, at least 8 rows), else 0; the
 * pack of rows 0 .. n_out / 8 * 8 - 1, and the int8- / 16-bit-activation decode GEMV through it
 * (idot_avx2.h: AVX2, and the VNNI variant for the AVX-512 tier): aios__gemv_q_i8's contract for rows r0 .. r1 - 1, both multiples of 8, of the pack. */
int aios__q4x8_bits(const aios_tensor *W);
/* The bytes of one block of 8 rows x 32 columns: 128 of 4-bit fields, 32 of fifth bits (5-bit),
 * 16 of scales d, 16 of m unless every offset is the fixed one (nom: Q4_0, Q5_0, ArrowQuant int4
 * without zero points). */
#define Q4X8_BLOCK_BYTES(bits, nom) ((size_t)(128 + ((bits) == 5 ? 32 : 0) + 16 + ((nom) ? 0 : 16)))
/* The bytes of W's pack, and the pack itself into P's q4 fields (q4, q4_bits, q4_min, q4_nom). */
size_t aios__q4x8_size(const aios_tensor *W);
aios_status aios__q4x8_pack(const aios_tensor *W, struct aios_matmul_pack *P);
/* 1 for the AVX-512 tier on a CPU with AVX512_VNNI: the 16-bit GEMVs' vpdpbusd variants
 * (idot_avx2.h) and the paired pack run there (the AVX2 tier, forced or native, keeps AVX2 code). */
int aios__vnni256(const aios__ktier *K);
#if defined(__x86_64__)
void aios__gemv_q4x8_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const struct aios_matmul_pack *P,
                          int64_t r0, int64_t r1, int x16);
/* its VNNI variant (idot_avx2.h; the AVX-512 tier of a VNNI CPU): 16-bit activations only, x16 ignored */
void aios__gemv_q4x8_vnni(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const struct aios_matmul_pack *P,
                          int64_t r0, int64_t r1, int x16);
#endif
aios_status aios__gemm_pack_new(const aios__ktier *K, const aios_tensor *W, struct aios_matmul_pack **out);
/* aios__gemm with W's panels from P (made for K and W). */
aios_status aios__gemm_packed(const aios__ktier *K, float *y, const float *x, const aios_tensor *W, const float *bias,
                              const struct aios_matmul_pack *P, int64_t T, int nth);
/* Few token rows (<= 48) x float32 W read in place, x packed instead (gemm_small_avx512.c);
 * aios__gemm takes it on the AVX-512 and AVX2 tiers (wide: the AVX-512 tile) up to AIOS_GEMM_SMALL_MAX rows
 * (default 48; 0 off). */
int aios__gemm_small_ok(const aios_tensor *W, int64_t T);
aios_status aios__gemm_small(float *y, const float *x, const aios_tensor *W, int64_t T, int nth, int wide);
/* The transposed product through the same micro-kernel: dx (T, n_in) += dy (T, n_out) @ W. */
aios_status aios__gemm_t(const aios__ktier *K, float *dx, const float *dy, const aios_tensor *W, int64_t T, int nth);
/* The int8 x int8 GEMM (qgemm_avx512.c): int8 weights (per row / per tensor scales) times
 * activations quantized per row and group of 32 columns, VNNI.  _ok: this CPU and weight. */
int aios__qgemm_i8_ok(const aios_tensor *W);
aios_status aios__qgemm_i8(float *y, const float *x, const aios_tensor *W, int64_t T, int nth);
/* Batched bidirectional attention on AVX-512 (attn_batch_avx512.c), aios_attention_batch's
 * contract; _ok: head_dim a multiple of 16 up to 256. */
int aios__attention_batch_512_ok(int64_t head_dim);
aios_status aios__attention_batch_512(float *out, const float *q, const float *k, const float *v, int64_t B, int64_t L,
                                      int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                                      const uint8_t *key_mask, float scale, int nth);
/* Decode attention (few query rows) fused per (query row, KV head, chunk of 128 positions)
 * (attn_dec.h, attn_dec_avx512.c / attn_dec_avx2.c): aios_attention's contract for Tk >= 1,
 * bitwise the same at any thread count; _ok: head_dim 64 or 128, at most 16 query heads per KV
 * head (the generic loop in dispatch.c takes the rest).  k, v float32, or float16 when kv_f16
 * (aios_attention_kv16). */
int aios__attn_dec_ok(int64_t head_dim, int64_t group);
#if defined(__x86_64__)
/* F16C conversions of n values (avx2.c): the rounding of aios_f32_to_f16 (nearest even). */
void aios__f32_to_f16_avx2(uint16_t *dst, const float *src, int64_t n);
void aios__f16_to_f32_avx2(float *dst, const uint16_t *src, int64_t n);
aios_status aios__attn_dec_512(float *out, const float *q, const void *k, const void *v, int64_t Tq, int64_t Tk,
                               int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                               const uint8_t *mask, float scale, int kv_f16, int nth);
aios_status aios__attn_dec_avx2(float *out, const float *q, const void *k, const void *v, int64_t Tq, int64_t Tk,
                                int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                                const uint8_t *mask, float scale, int kv_f16, int nth);
#endif
/* Attention for many queries as two GEMMs through the same micro-kernel (gemm.c); same contract
 * as aios_attention.  aios__attention_gemm_ok: this tier has it for this head_dim. */
int aios__attention_gemm_ok(const aios__ktier *K, int64_t head_dim);
aios_status aios__attention_gemm(const aios__ktier *K, float *out, const float *q, const float *k, const float *v,
                                 int64_t Tq, int64_t Tk, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                                 int64_t kv_stride, const uint8_t *mask, float scale, int nth);

/* Checks that W is a usable 2-D weight of a supported dtype with consistent sizes. */
aios_status aios__check_weight(const aios_tensor *W, const char *what);

/* Quantized element access (flat row-major element index e). */
static inline int aios__q_get(const aios_tensor *W, int64_t e) {
    const uint8_t *p = (const uint8_t *)W->data;
    switch (W->dtype) {
    case AIOS_DTYPE_Q8: return (int8_t)p[e];
    case AIOS_DTYPE_Q4: return (int)((p[e >> 1] >> ((e & 1) ? 0 : 4)) & 0xF) - 8;
    case AIOS_DTYPE_Q2: return (int)((p[e >> 2] >> (6 - 2 * (e & 3))) & 0x3) - 2;
    default: return 0;
    }
}
/* First byte of row `row` of a GGUF block weight (n_out, n_in): rows are whole blocks. */
static inline const uint8_t *aios__gguf_row(const aios_tensor *W, int64_t row) {
    int blk = 1, bytes = 0;
    aios_gguf_block(W->dtype, &blk, &bytes);
    return (const uint8_t *)W->data + (size_t)row * (size_t)(W->shape[1] / blk) * (size_t)bytes;
}
static inline float aios__ldf(const float *p, int64_t i) {
    float f;
    memcpy(&f, p + i, sizeof f); /* scales may be unaligned inside a mapping */
    return f;
}
/* Scale / zero point si of an ArrowQuant weight, stored as float32 or float16 (scale_dtype,
 * tensor.h): every tier loads them here, so the storage type stays out of the inner loops. */
static inline float aios__q_scale(const aios_tensor *W, int64_t si) {
    if (W->scale_dtype == AIOS_DTYPE_F16) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)W->scales + 2 * si, 2);
        return aios_f16_to_f32(h);
    }
    return aios__ldf(W->scales, si);
}
static inline float aios__q_zero(const aios_tensor *W, int64_t si) {
    if (!W->zero_points) return 0.0f;
    if (W->scale_dtype == AIOS_DTYPE_F16) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)W->zero_points + 2 * si, 2);
        return aios_f16_to_f32(h);
    }
    return aios__ldf(W->zero_points, si);
}
/* Index into scales/zero_points for element (row, col) of a (rows, cols) weight. */
static inline int64_t aios__q_sidx(const aios_tensor *W, int64_t row, int64_t col) {
    if (W->group_size > 0) return (row * W->shape[1] + col) / W->group_size;
    if (W->quant_axis == 0) return row;
    return 0;
}
/* Number of consecutive columns starting at col that share one scale. */
static inline int64_t aios__q_run(const aios_tensor *W, int64_t col, int64_t n) {
    if (W->group_size > 0) {
        int64_t r = W->group_size - col % W->group_size;
        return r < n ? r : n;
    }
    return n;
}

/* Scalar columns [k0, k1) of a quantized GEMV block of NR rows (element e0 + r * n_in + k, x
 * already offset to the block's first column) and NT tokens: hs[r][t] += (q + off) * x[k],
 * hx[t] += x[k].  The heads (rows starting mid-byte) and tails of the AVX2 and AVX-512 decode
 * GEMVs. */
static inline __attribute__((always_inline)) void aios__gemv_scalar_cols(float hs[4][3], float hx[3], const aios_tensor *W,
                                                                        const float *x, int64_t ldx, int64_t e0,
                                                                        int64_t n_in, int off, int NR, int NT, int64_t k0,
                                                                        int64_t k1) {
    for (int64_t k = k0; k < k1; k++)
        for (int t = 0; t < NT; t++) {
            float xv = x[t * ldx + k];
            hx[t] += xv;
            for (int r = 0; r < NR; r++) hs[r][t] += (float)(aios__q_get(W, e0 + r * n_in + k) + off) * xv;
        }
}

#endif
