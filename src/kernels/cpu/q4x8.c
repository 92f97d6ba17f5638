/*
 * q4x8.c — 4-bit and 5-bit weights repacked once into blocks of 8 rows x 32 columns for the
 * AVX2 int8 / 16-bit-activation decode GEMV (aios__gemv_q4x8_avx2 in avx2.c).
 *
 * Read in place, a 4-bit row meets the activations 32 values at a time and ends in a
 * horizontal sum; every block costs a nibble split, a scale conversion and a scalar offset
 * term per row.  Interleaved, one 32-byte load holds 4 columns of 8 rows (int32 lane j = row
 * j), so a broadcast of 4 int8 activations meets 8 rows in one maddubs, the 8 rows' scales
 * convert in one instruction and the 8 results are the 8 lanes of one accumulator: about half
 * the instructions per weight (the same idea as llama.cpp's load-time REPACK; this layout is
 * ours).  Block of rows 8g..8g+7, columns 32b..32b+31, B bytes at q + (g * nb + b) * B
 * (nb = n_in / 32; B = Q4X8_BLOCK_BYTES: 144 / 160 for 4-bit fields, 176 / 192 for 5-bit, without
 * / with the m field):
 *   bytes 0..127  four 32-byte vectors; vector p, byte 4j + i: the low 4 bits of the field u of
 *                 row 8g+j, column 32b + 4p + i in the low nibble, column 32b + 16 + 4p + i in
 *                 the high;
 *   5-bit only, 128..159  one 32-byte vector of the fields' fifth bits: byte 4j + i, bit p: that
 *                 of column 32b + 4p + i, bit 4 + p: that of column 32b + 16 + 4p + i;
 *   then 16 bytes of 8 float16 scales d (row j at 2j) and, unless every offset is the fixed
 *                 8 / 16 (Q4_0, Q5_0, symmetric ArrowQuant int4: no m field, 10% fewer bytes
 *                 for a decode that streams them), 16 bytes of 8 float16 m: Q4_1's / Q5_1's
 *                 minimum (value = d u + m), else the zero point z of value = d (u - 8 - z)
 *                 (4-bit) or d (u - 16 - z) (5-bit).
 * Every value is the float it was (scales and zero points are float16 in the source), so a
 * product through the pack is the int8-activation GEMV of the same rounded activations.  The
 * pack lives in memory only; rows past the last multiple of 8 stay with the in-place kernel.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/cpu/kern.h"
#include "tensor/gguf_blocks.h"

/* Row r's 4- or 5-bit fields of columns 32b .. 32b + 31 (u[i] = column 32b + i) and the
 * float16 bits of that block's d and m. */
static void block_fields(const aios_tensor *W, int64_t r, int64_t b, uint8_t u[32], uint16_t *d, uint16_t *m) {
    const int64_t n_in = W->shape[1];
    const uint8_t *raw = (const uint8_t *)W->data;
    if (W->dtype == AIOS_DTYPE_Q4) { /* flat order, most significant nibble first; n_in % 32 == 0 */
        const uint8_t *q = raw + (r * n_in + 32 * b) / 2;
        for (int i = 0; i < 16; i++) u[2 * i] = q[i] >> 4, u[2 * i + 1] = q[i] & 0x0F;
        const int64_t G = W->group_size;
        const size_t si = (size_t)(G > 0 ? (r * n_in + 32 * b) / G : W->quant_axis == 0 ? r : 0);
        memcpy(d, (const uint8_t *)W->scales + 2 * si, 2);
        if (W->zero_points) memcpy(m, (const uint8_t *)W->zero_points + 2 * si, 2);
        else *m = 0;
        return;
    }
    /* GGUF blocks (gguf_blocks.h): Q4_0 d qs, Q4_1 d m qs, Q5_0 d qh qs, Q5_1 d m qh qs */
    const aios_dtype t = W->dtype;
    const int has_m = t == AIOS_DTYPE_GGUF_Q4_1 || t == AIOS_DTYPE_GGUF_Q5_1;
    const int five = t == AIOS_DTYPE_GGUF_Q5_0 || t == AIOS_DTYPE_GGUF_Q5_1;
    int blk = 32, bytes = 0;
    aios_gguf_block(t, &blk, &bytes);
    const uint8_t *p = raw + (size_t)(r * (n_in / 32) + b) * (size_t)bytes, *q = p + 2 + 2 * has_m + 4 * five;
    for (int i = 0; i < 16; i++) u[i] = q[i] & 0x0F, u[16 + i] = q[i] >> 4;
    if (five) {
        const uint32_t qh = aios_gguf_u32le(p + 2 + 2 * has_m);
        for (int i = 0; i < 32; i++) u[i] |= (uint8_t)(((qh >> i) & 1) << 4);
    }
    memcpy(d, p, 2);
    if (has_m) memcpy(m, p + 2, 2);
    else *m = 0;
}

/* bytes (> 0) on 64-byte alignment; 2 MiB or more start on a 2 MiB boundary and ask for
 * transparent huge pages (madvise; a decode streams the pack once per token: bench_kernels
 * step measured 2 MiB pages 0-8% faster from memory).  Smaller ones stay on ordinary pages (no
 * rounding up). */
static void *huge_alloc(size_t bytes) {
    const size_t HP = (size_t)2 << 20;
    void *v = NULL;
    if (posix_memalign(&v, bytes >= HP ? HP : 64, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= HP) madvise(v, bytes / HP * HP, MADV_HUGEPAGE);
#endif
    return v;
}

int aios__q4x8_bits(const aios_tensor *W) {
    if (W->ndim != 2 || W->shape[0] < 8 || W->shape[1] % 32 || W->shape[1] == 0) return 0;
    if (W->dtype == AIOS_DTYPE_GGUF_Q4_0 || W->dtype == AIOS_DTYPE_GGUF_Q4_1) return 4;
    if (W->dtype == AIOS_DTYPE_GGUF_Q5_0 || W->dtype == AIOS_DTYPE_GGUF_Q5_1) return 5;
    return W->dtype == AIOS_DTYPE_Q4 && W->scale_dtype == AIOS_DTYPE_F16 &&
                   (W->group_size == 0 ||
                    (W->group_size % 32 == 0 && W->group_size <= 8192 && W->shape[1] % W->group_size == 0))
               ? 4
               : 0;
}

/* every offset the fixed one (Q4_0, Q5_0, ArrowQuant int4 without zero points): no m field */
static int q4x8_nom(const aios_tensor *W) {
    return W->dtype == AIOS_DTYPE_GGUF_Q4_0 || W->dtype == AIOS_DTYPE_GGUF_Q5_0 || (W->dtype == AIOS_DTYPE_Q4 && !W->zero_points);
}

size_t aios__q4x8_size(const aios_tensor *W) {
    return (size_t)(W->shape[0] / 8) * (size_t)(W->shape[1] / 32) * Q4X8_BLOCK_BYTES(aios__q4x8_bits(W), q4x8_nom(W));
}

aios_status aios__q4x8_pack(const aios_tensor *W, struct aios_matmul_pack *P) {
    P->q4 = NULL;
    P->q4_bits = aios__q4x8_bits(W);
    P->q4_nom = q4x8_nom(W);
    P->q4_min = W->dtype == AIOS_DTYPE_GGUF_Q4_1 || W->dtype == AIOS_DTYPE_GGUF_Q5_1;
    P->q4_pair = aios__vnni256(P->K); /* the 16-row GEMV's layout (idot_avx2.h) */
    const int five = P->q4_bits == 5, nom = P->q4_nom;
    const size_t B = Q4X8_BLOCK_BYTES(P->q4_bits, nom), sc = five ? 160 : 128;
    const int64_t n8 = W->shape[0] / 8, n_in = W->shape[1], nb = n_in / 32;
    uint8_t *q = huge_alloc(aios__q4x8_size(W));
    if (!q)
        return aios__err(AIOS_ERR_NOMEM, "matmul_pack: %lld x %lld int%d repack", (long long)W->shape[0], (long long)n_in,
                         five ? 5 : 4);
    for (int64_t g = 0; g < n8; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *o = q + aios__q4x8_off(P->q4_pair, g, b, n8, nb, B);
            if (five) memset(o + 128, 0, 32);
            for (int j = 0; j < 8; j++) {
                uint16_t d = 0, m = 0;
                uint8_t u[32];
                block_fields(W, 8 * g + j, b, u, &d, &m);
                for (int p = 0; p < 4; p++)
                    for (int i = 0; i < 4; i++) {
                        const uint8_t lo = u[4 * p + i], hi = u[16 + 4 * p + i];
                        o[32 * p + 4 * j + i] = (uint8_t)((lo & 0x0F) | (hi & 0x0F) << 4);
                        if (five) o[128 + 4 * j + i] |= (uint8_t)((lo >> 4) << p | (hi >> 4) << (4 + p));
                    }
                memcpy(o + sc + 2 * j, &d, 2);
                if (!nom) memcpy(o + sc + 16 + 2 * j, &m, 2);
            }
        }
    P->q4 = q;
    return AIOS_OK;
}
