/*
 * gguf_blocks.h — the GGUF (ggml) quantized block layouts and their scalar dequantizers.
 *
 * One header for every consumer (the reference dequantizer in tensor/quant.c, the kernel
 * tiers, later a GPU backend): plain C, static inline, no dependencies beyond <string.h>.
 * Byte layouts are ggml's ggml-common.h; the arithmetic is that of the PyPI package `gguf`
 * (gguf/quants.py, `dequantize_blocks`), operation for operation in float32, so the values are
 * bit-identical to gguf.quants.dequantize (tests/py/test_gguf_quants.py demands it):
 *
 *   type  values bytes  layout (in byte order)                               value j
 *   Q4_0  32     18     f16 d, u8 qs[16]                                     d * (q - 8)
 *   Q4_1  32     20     f16 d, f16 m, u8 qs[16]                              (d * q) + m
 *   Q5_0  32     22     f16 d, u32 qh (LE), u8 qs[16]                        d * (q - 16)
 *   Q5_1  32     24     f16 d, f16 m, u32 qh, u8 qs[16]                      (d * q) + m
 *   Q8_0  32     34     f16 d, i8 qs[32]                                     q * d
 *   Q2_K  256    84     u8 scales[16], u8 qs[64], f16 d, f16 dmin            (d*sc) * q - (dmin*m)
 *   Q3_K  256    110    u8 hmask[32], u8 qs[64], u8 scales[12], f16 d        (d*sc) * q
 *   Q4_K  256    144    f16 d, f16 dmin, u8 scales[12], u8 qs[128]           (d*sc) * q - (dmin*m)
 *   Q5_K  256    176    f16 d, f16 dmin, u8 scales[12], u8 qh[32], qs[128]   (d*sc) * q - (dmin*m)
 *   Q6_K  256    210    u8 ql[128], u8 qh[64], i8 scales[16], f16 d          (d*sc) * q
 *
 * 4-bit values of a 32-value block: qs[j] & 15 for j < 16, qs[j - 16] >> 4 above (Q4_0/1,
 * Q5_0/1).  K-quants: sub-blocks of 32 (Q4_K/Q5_K: 8 scales/mins of 6 bits packed in 12
 * bytes) or 16 (Q2_K, Q3_K, Q6_K) values; the value order is spelled out in each function.
 *
 * Why separate statements for a product and a sum: `gguf` rounds each float32 operation
 * (numpy never fuses), so `p = d * q; y = p + m;` keeps a compiler that contracts within
 * one expression (clang's default -ffp-contract=on) from emitting an FMA, which would round
 * once and differ in the last bit.  (GCC with -std=c11 does not contract at all.)
 *
 * Q8_K (f32 d, 256 int8, 16 i16 sums) is an activation format in ggml: `gguf` has no
 * dequantizer for it, so it is not a weight dtype here (aios__check_weight refuses it).
 */
#ifndef AIOS_TENSOR_GGUF_BLOCKS_H
#define AIOS_TENSOR_GGUF_BLOCKS_H

#include <stdint.h>
#include <string.h>

#include "tensor/tensor.h"

/* IEEE half -> float, exact (every half is a float). */
static inline float aios_gguf_f16(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);
    } else if (exp) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (!man) {
        bits = sign;
    } else { /* subnormal: man * 2^-24, exact in float */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint32_t aios_gguf_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* 6-bit scale and min of sub-block g (0..7) of a Q4_K / Q5_K block (12 packed bytes). */
static inline void aios_gguf_k4_scale_min(const uint8_t *s, int g, int *sc, int *mn) {
    if (g < 4) {
        *sc = s[g] & 63;
        *mn = s[g + 4] & 63;
    } else {
        *sc = (s[g + 4] & 0xF) | ((s[g - 4] >> 6) << 4);
        *mn = (s[g + 4] >> 4) | ((s[g] >> 6) << 4);
    }
}

/* 6-bit signed scale of sub-block g (0..15) of a Q3_K block, in [-32, 31]. */
static inline int aios_gguf_k3_scale(const uint8_t *s, int g) {
    int lo = g < 8 ? s[g] & 0xF : s[g - 8] >> 4;
    int hi = (s[8 + (g & 3)] >> (2 * (g >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
}

static inline void aios_gguf_deq_q4_0(const uint8_t *b, float *y) {
    float d = aios_gguf_f16(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((b[2 + j] & 0xF) - 8);
        y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
    }
}

static inline void aios_gguf_deq_q4_1(const uint8_t *b, float *y) {
    float d = aios_gguf_f16(b), m = aios_gguf_f16(b + 2);
    for (int j = 0; j < 16; j++) {
        float p0 = d * (float)(b[4 + j] & 0xF), p1 = d * (float)(b[4 + j] >> 4);
        y[j] = p0 + m;
        y[j + 16] = p1 + m;
    }
}

static inline void aios_gguf_deq_q5_0(const uint8_t *b, float *y) {
    float d = aios_gguf_f16(b);
    uint32_t qh = aios_gguf_u32le(b + 2);
    for (int j = 0; j < 16; j++) {
        int q0 = (b[6 + j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        int q1 = (b[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = d * (float)(q0 - 16);
        y[j + 16] = d * (float)(q1 - 16);
    }
}

static inline void aios_gguf_deq_q5_1(const uint8_t *b, float *y) {
    float d = aios_gguf_f16(b), m = aios_gguf_f16(b + 2);
    uint32_t qh = aios_gguf_u32le(b + 4);
    for (int j = 0; j < 16; j++) {
        int q0 = (b[8 + j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        int q1 = (b[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        float p0 = d * (float)q0, p1 = d * (float)q1;
        y[j] = p0 + m;
        y[j + 16] = p1 + m;
    }
}

static inline void aios_gguf_deq_q8_0(const uint8_t *b, float *y) {
    float d = aios_gguf_f16(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* Q2_K: value j = 128 h + 32 s + l comes from bits 2s of qs[32 h + l]; sub-block j / 16. */
static inline void aios_gguf_deq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = aios_gguf_f16(b + 80), dmin = aios_gguf_f16(b + 82);
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)(sc[g] & 0xF), ml = dmin * (float)(sc[g] >> 4);
        for (int k = 0; k < 16; k++) {
            int j = 16 * g + k, h = j >> 7, s = (j >> 5) & 3, l = j & 31;
            float p = dl * (float)((qs[32 * h + l] >> (2 * s)) & 3);
            y[j] = p - ml;
        }
    }
}

/* Q3_K: value j = 128 h + 32 s + l: low 2 bits from bits 2s of qs[32 h + l], the high bit
 * (bit j / 32 of hmask[l]) set means +0, clear means -4. */
static inline void aios_gguf_deq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    float d = aios_gguf_f16(b + 108);
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)aios_gguf_k3_scale(sc, g);
        for (int k = 0; k < 16; k++) {
            int j = 16 * g + k, h = j >> 7, s = (j >> 5) & 3, l = j & 31;
            int q = ((qs[32 * h + l] >> (2 * s)) & 3) - (((hm[l] >> (j >> 5)) & 1) ? 0 : 4);
            y[j] = dl * (float)q;
        }
    }
}

/* Q4_K: sub-block g (32 values) = nibble g & 1 of qs[32 (g / 2) + l]. */
static inline void aios_gguf_deq_q4_k(const uint8_t *b, float *y) {
    float d = aios_gguf_f16(b), dmin = aios_gguf_f16(b + 2);
    const uint8_t *s = b + 4, *qs = b + 16;
    for (int g = 0; g < 8; g++) {
        int sc, mn;
        aios_gguf_k4_scale_min(s, g, &sc, &mn);
        float dl = d * (float)sc, ml = dmin * (float)mn;
        const uint8_t *q = qs + 32 * (g >> 1);
        int sh = 4 * (g & 1);
        for (int l = 0; l < 32; l++) {
            float p = dl * (float)((q[l] >> sh) & 0xF);
            y[32 * g + l] = p - ml;
        }
    }
}

/* Q5_K: as Q4_K plus a fifth bit, bit g of qh[l]. */
static inline void aios_gguf_deq_q5_k(const uint8_t *b, float *y) {
    float d = aios_gguf_f16(b), dmin = aios_gguf_f16(b + 2);
    const uint8_t *s = b + 4, *qh = b + 16, *qs = b + 48;
    for (int g = 0; g < 8; g++) {
        int sc, mn;
        aios_gguf_k4_scale_min(s, g, &sc, &mn);
        float dl = d * (float)sc, ml = dmin * (float)mn;
        const uint8_t *q = qs + 32 * (g >> 1);
        int sh = 4 * (g & 1);
        for (int l = 0; l < 32; l++) {
            int v = ((q[l] >> sh) & 0xF) | (((qh[l] >> g) & 1) << 4);
            float p = dl * (float)v;
            y[32 * g + l] = p - ml;
        }
    }
}

/* Q6_K: value j = 128 h + r: low nibble (r / 64) of ql[64 h + r % 64], high 2 bits from bits
 * 2 (r / 32) of qh[32 h + r % 32]; q - 32 times d * scales[j / 16]. */
static inline void aios_gguf_deq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = aios_gguf_f16(b + 208);
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)sc[g];
        for (int k = 0; k < 16; k++) {
            int j = 16 * g + k, h = j >> 7, r = j & 127;
            int lo = (ql[64 * h + (r & 63)] >> (4 * (r >> 6))) & 0xF;
            int hi = (qh[32 * h + (r & 31)] >> (2 * (r >> 5))) & 3;
            y[j] = dl * (float)((lo | (hi << 4)) - 32);
        }
    }
}

/* One block of type t at b into y (blk values).  Returns 0 for a type without a dequantizer. */
static inline int aios_gguf_deq_block(aios_dtype t, const uint8_t *b, float *y) {
    switch (t) {
    case AIOS_DTYPE_GGUF_Q4_0: aios_gguf_deq_q4_0(b, y); return 1;
    case AIOS_DTYPE_GGUF_Q4_1: aios_gguf_deq_q4_1(b, y); return 1;
    case AIOS_DTYPE_GGUF_Q5_0: aios_gguf_deq_q5_0(b, y); return 1;
    case AIOS_DTYPE_GGUF_Q5_1: aios_gguf_deq_q5_1(b, y); return 1;
    case AIOS_DTYPE_GGUF_Q8_0: aios_gguf_deq_q8_0(b, y); return 1;
    case AIOS_DTYPE_GGUF_Q2_K: aios_gguf_deq_q2_k(b, y); return 1;
    case AIOS_DTYPE_GGUF_Q3_K: aios_gguf_deq_q3_k(b, y); return 1;
    case AIOS_DTYPE_GGUF_Q4_K: aios_gguf_deq_q4_k(b, y); return 1;
    case AIOS_DTYPE_GGUF_Q5_K: aios_gguf_deq_q5_k(b, y); return 1;
    case AIOS_DTYPE_GGUF_Q6_K: aios_gguf_deq_q6_k(b, y); return 1;
    default: return 0;
    }
}

/* 1 for the block types above that have a dequantizer (every GGUF type but Q8_K). */
static inline int aios_gguf_is_weight(aios_dtype t) {
    return aios_gguf_block(t, NULL, NULL) && t != AIOS_DTYPE_GGUF_Q8_K;
}

/* out (n) = values [c0, c0 + n) of one row whose blocks start at `row` (c0, n need not be
 * block-aligned; c0 + n <= the row length). */
static inline void aios_gguf_deq_range(aios_dtype t, const uint8_t *row, int64_t c0, int64_t n, float *out) {
    int blk, bytes;
    if (n <= 0 || !aios_gguf_block(t, &blk, &bytes)) return;
    int64_t b = c0 / blk, off = c0 % blk;
    float tmp[256];
    while (n > 0) {
        const uint8_t *p = row + b * bytes;
        if (off == 0 && n >= blk) {
            aios_gguf_deq_block(t, p, out);
            out += blk;
            n -= blk;
        } else {
            aios_gguf_deq_block(t, p, tmp);
            int64_t k = blk - off < n ? blk - off : n;
            memcpy(out, tmp + off, sizeof(float) * (size_t)k);
            out += k;
            n -= k;
            off = 0;
        }
        b++;
    }
}

#endif
