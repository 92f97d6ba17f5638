/*
 * tensor.h — tensor views, dtypes and the ArrowQuant quantized layouts.
 *
 * A tensor is a view: `data` points into a file mapping (or an arena); nothing here owns
 * memory.  Quantized tensors keep the packed bytes of DESIGN.md §3 and are computed on in
 * place by the kernels — never dequantized into a full copy at load.
 *
 * ArrowQuant layouts (the seed prototype's, bit-exact):
 *   int8: one signed byte per value, q in [-128, 127].
 *   int4: two values per byte, most significant nibble first, stored as q + 8 (q in [-8, 7]).
 *   int2: four values per byte, most significant bits first, stored as q + 2 (q in [-2, 1]).
 *   Packing runs over the flattened row-major element order (so a row may start mid-byte
 *   when the column count is not a multiple of the values per byte).
 *   Dequantization: x = (q - zero_point) * scale.
 * Scale/zero-point granularity (float32 arrays `scales`, `zero_points`, n_scales entries):
 *   group_size == 0 && quant_axis == -1 : per tensor, n_scales = 1
 *   group_size == 0 && quant_axis == 0  : per output channel (row of [rows, cols]), n_scales = rows
 *   group_size == G > 0                 : groups of G consecutive elements along each row
 *                                         (cols % G == 0), n_scales = rows * cols / G
 *   zero_points may be NULL (symmetric: all zero).
 *   scale_dtype says how the two arrays are stored: float32 (default) or float16; a value is
 *   always used as the float32 it converts to exactly.
 * Shapes: shape[0] is the outermost dimension; a 2-D weight is (n_out, n_in) as in PyTorch.
 */
#ifndef AIOS_TENSOR_H
#define AIOS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "aios.h"

typedef enum {
    AIOS_DTYPE_F32 = 0,
    AIOS_DTYPE_F16 = 1,
    AIOS_DTYPE_BF16 = 2,
    AIOS_DTYPE_F64 = 3,
    AIOS_DTYPE_I8 = 4,   /* plain int8 tensor (not quantized) */
    AIOS_DTYPE_I16 = 5,
    AIOS_DTYPE_I32 = 6,
    AIOS_DTYPE_I64 = 7,
    AIOS_DTYPE_U8 = 8,
    AIOS_DTYPE_BOOL = 9,
    AIOS_DTYPE_U16 = 10,
    AIOS_DTYPE_U32 = 11,
    AIOS_DTYPE_U64 = 12,
    AIOS_DTYPE_F8_E4M3 = 13, /* float8 e4m3fn (no inf; 0x7f/0xff are NaN) */
    AIOS_DTYPE_F8_E5M2 = 14,
    AIOS_DTYPE_Q8 = 16,  /* ArrowQuant int8 */
    AIOS_DTYPE_Q4 = 17,  /* ArrowQuant int4, 2 per byte, MSB first, q + 8 */
    AIOS_DTYPE_Q2 = 18,  /* ArrowQuant int2, 4 per byte, MSB first, q + 2 */
    /* GGUF (ggml) block types, used in place.  A block holds the next BLK consecutive values of
     * one row (a row's length is a multiple of BLK; blocks never straddle rows); the byte layout
     * of each is ggml's (ggml-common.h), bit for bit.  No scales/zero_points arrays: the scales
     * are inside the blocks.  aios_gguf_block(t, &blk, &bytes) gives BLK and the block bytes. */
    AIOS_DTYPE_GGUF_Q4_0 = 32, /* 32 values, 18 bytes: f16 d, 16 bytes of nibbles (x = d * (q - 8)) */
    AIOS_DTYPE_GGUF_Q4_1 = 33, /* 32 values, 20 bytes: f16 d, f16 m, nibbles (x = d * q + m) */
    AIOS_DTYPE_GGUF_Q5_0 = 34, /* 32 values, 22 bytes: f16 d, u32 high bits, nibbles */
    AIOS_DTYPE_GGUF_Q5_1 = 35, /* 32 values, 24 bytes: f16 d, f16 m, u32 high bits, nibbles */
    AIOS_DTYPE_GGUF_Q8_0 = 36, /* 32 values, 34 bytes: f16 d, 32 int8 (x = d * q) */
    AIOS_DTYPE_GGUF_Q2_K = 37, /* 256 values, 84 bytes */
    AIOS_DTYPE_GGUF_Q3_K = 38, /* 256 values, 110 bytes */
    AIOS_DTYPE_GGUF_Q4_K = 39, /* 256 values, 144 bytes: f16 d, f16 dmin, 12 bytes 6-bit scales, 128 nibbles */
    AIOS_DTYPE_GGUF_Q5_K = 40, /* 256 values, 176 bytes */
    AIOS_DTYPE_GGUF_Q6_K = 41, /* 256 values, 210 bytes: 128 low nibbles, 64 high 2-bit, 16 int8 scales, f16 d */
    AIOS_DTYPE_GGUF_Q8_K = 42, /* 256 values, 292 bytes: f32 d, 256 int8, 16 int16 bsums */
} aios_dtype;

/* 1 for the GGUF block types above; *blk = values per block, *bytes = bytes per block. */
static inline int aios_gguf_block(aios_dtype t, int *blk, int *bytes) {
    static const short b[11][2] = {{32, 18}, {32, 20}, {32, 22}, {32, 24}, {32, 34},    {256, 84},
                                   {256, 110}, {256, 144}, {256, 176}, {256, 210}, {256, 292}};
    if ((int)t < AIOS_DTYPE_GGUF_Q4_0 || (int)t > AIOS_DTYPE_GGUF_Q8_K) return 0;
    if (blk) *blk = b[t - AIOS_DTYPE_GGUF_Q4_0][0];
    if (bytes) *bytes = b[t - AIOS_DTYPE_GGUF_Q4_0][1];
    return 1;
}

#define AIOS_MAX_DIMS 8

typedef struct {
    const char *name;          /* borrowed (points into the model's name storage) */
    aios_dtype dtype;
    int ndim;
    int64_t shape[AIOS_MAX_DIMS];
    const void *data;          /* first element (packed bytes for Q kinds) */
    size_t nbytes;             /* bytes at data */
    /* quantization (Q kinds only) */
    const float *scales;       /* n_scales floats; may be unaligned in a mapping: read with memcpy */
    const float *zero_points;  /* n_scales floats, or NULL for symmetric */
    int64_t n_scales;
    int32_t quant_axis;        /* -1 per tensor, 0 per output channel */
    int32_t group_size;        /* 0 = none */
    int32_t scale_dtype;       /* element type of scales and zero_points: AIOS_DTYPE_F32 (0, the
                                  default) or AIOS_DTYPE_F16 (IEEE half, 2 bytes each, as GGUF
                                  blocks store d and m; the aios.f16_scales extension) */
} aios_tensor;

static inline int64_t aios_tensor_numel(const aios_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

#endif
