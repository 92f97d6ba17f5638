/*
 * quant.h — dtype facts, tensor validation, reference dequantization and the ArrowQuant
 * quantizer (the layouts are specified in tensor.h; DESIGN.md §3).
 *
 * The fast f16/bf16 converters and aios_tensor_to_f32 / aios_tensor_row_f32 belong to the
 * kernels (src/kernels/kernels.h).  This file is the scalar reference the loaders, the
 * converter and the tests use; the names here never collide with kernels.h.
 */
#ifndef AIOS_TENSOR_QUANT_H
#define AIOS_TENSOR_QUANT_H

#include <stdint.h>
#include <string.h>

#include "tensor/tensor.h"

/* ---- dtypes ----------------------------------------------------------------------- */

/* Bytes per element of a plain dtype; 0 for the packed quantized kinds and unknown values. */
size_t aios_dtype_size(aios_dtype t);
/* Short name: "f32", "bf16", "q4" ...; "?" when unknown. */
const char *aios_dtype_name(aios_dtype t);
/* safetensors dtype string ("F32", "BF16", "F8_E4M3" ...) -> dtype.  Returns 0 on success,
 * -1 when unknown. */
int aios_dtype_from_safetensors(const char *s, aios_dtype *out);
/* dtype -> safetensors dtype string, or NULL for the quantized kinds. */
const char *aios_dtype_safetensors_name(aios_dtype t);
/* PyTorch dtype string ("torch.float32", "float16", "bf16" ...) -> dtype; -1 when unknown. */
int aios_dtype_from_torch(const char *s, aios_dtype *out);
/* dtype -> "torch.float32" style string (what the seed writes in the `dtype` column). */
const char *aios_dtype_torch_name(aios_dtype t);
/* 1 for AIOS_DTYPE_Q8/Q4/Q2. */
int aios_dtype_is_quant(aios_dtype t);
/* Bits per value of a quantized kind (8, 4, 2), 0 otherwise. */
int aios_quant_bits(aios_dtype t);

/* Bytes needed for `numel` values of `t` (packed kinds round up to whole bytes).
 * Returns AIOS_ERR_RANGE on overflow. */
aios_status aios_dtype_nbytes(aios_dtype t, int64_t numel, size_t *out);

/* Checks that a view is self-consistent: 0 <= ndim <= AIOS_MAX_DIMS, non-negative dims whose
 * product fits, nbytes == exactly what shape and dtype need, and for quantized kinds that
 * n_scales, quant_axis and group_size agree with the layout of tensor.h.  The error names
 * the tensor. */
aios_status aios_tensor_validate(const aios_tensor *t);

/* Bytes of a quantized tensor's scales and zero points (0 for other dtypes). */
static inline size_t aios_tensor_scale_bytes(const aios_tensor *t) {
    if (!aios_dtype_is_quant(t->dtype)) return 0;
    return (size_t)t->n_scales * (t->scale_dtype == AIOS_DTYPE_F16 ? 2u : 4u) * (t->zero_points ? 2u : 1u);
}

/* Rows/cols of the 2-D view the quantized layout uses: rows = shape[0] (1 for a scalar or
 * when ndim == 0), cols = numel / rows. */
void aios_tensor_rows_cols(const aios_tensor *t, int64_t *rows, int64_t *cols);

/* ---- scalar conversions (reference; bit-exact with PyTorch) ----------------------- */
float aios_quant_half_to_float(uint16_t h);
uint16_t aios_quant_float_to_half(float f);     /* round to nearest even */
float aios_quant_bf16_to_float(uint16_t h);
uint16_t aios_quant_float_to_bf16(float f);     /* round to nearest even, NaN kept quiet */
void aios_quant_floats_to_bf16(uint16_t *dst, const float *src, int64_t n); /* the same, n at once */
float aios_quant_f8e4m3_to_float(uint8_t v);
float aios_quant_f8e5m2_to_float(uint8_t v);

/* Quantized value i (flattened element order) of a Q tensor's packed bytes. */
static inline int aios_quant_get(const uint8_t *p, aios_dtype t, int64_t i) {
    switch (t) {
    case AIOS_DTYPE_Q8: return (int8_t)p[i];
    case AIOS_DTYPE_Q4: return (int)((p[i >> 1] >> (4 * (1 - (i & 1)))) & 0xF) - 8;
    case AIOS_DTYPE_Q2: return (int)((p[i >> 2] >> (2 * (3 - (i & 3)))) & 0x3) - 2;
    default: return 0;
    }
}

/* Index into scales/zero_points of flattened element i (rows x cols layout). */
static inline int64_t aios_quant_scale_index(const aios_tensor *t, int64_t cols, int64_t i) {
    if (t->group_size > 0) return i / t->group_size; /* groups never straddle rows (cols % G == 0) */
    if (t->quant_axis == 0) return i / cols;
    return 0;
}

/* ---- reference dequantization ---------------------------------------------------- */

/* out (numel) = the tensor's values as float32, whatever the dtype (integers are converted,
 * bool gives 0/1, quantized kinds use x = (q - zero_point) * scale).  Validates first. */
aios_status aios_quant_dequantize_ref(const aios_tensor *t, float *out);
/* out (cols) = row `row` of the tensor seen as (rows, cols), dequantized. */
aios_status aios_quant_dequantize_row_ref(const aios_tensor *t, int64_t row, float *out);

/* ---- quantizer ------------------------------------------------------------------- */

typedef struct {
    aios_dtype type;    /* AIOS_DTYPE_Q8, Q4 or Q2 */
    int32_t group_size; /* 0 = none; else groups of G along each row (cols % G must be 0) */
    int per_channel;    /* 1: one scale per row (ignored when group_size > 0) */
    int symmetric;      /* 1: zero_point = 0, scale = max|x| / qmax */
    int f16_scales;     /* 1: each scale is rounded to float16 (aios_quant_f16_scale) before the
                           zero point and the q are computed from it, so storing the scales as
                           f16 loses nothing more (zero points are integers: exact in f16) */
} aios_quant_params;

/* s rounded to the nearest float16 (ties to even), kept positive and finite: underflow gives
 * 2^-24, overflow 65504. */
float aios_quant_f16_scale(float s);

/* Number of scales the layout needs, and the resulting quant_axis / group_size fields.
 * Returns AIOS_ERR_SHAPE when cols is not a multiple of the group size. */
aios_status aios_quant_layout(const aios_quant_params *p, int64_t rows, int64_t cols, int64_t *n_scales,
                              int32_t *quant_axis, int32_t *group_size);

/* Quantizes x (rows, cols) with the seed's asymmetric min/max rule, per block of values that
 * share a scale (tensor, row or group):
 *   lo = min(min(x), 0), hi = max(max(x), 0), scale = (hi - lo) / (qmax - qmin) (1 if 0),
 *   zp = round(-lo / scale) + qmin, q = clamp(round(x / scale) + zp, qmin, qmax)
 * (round half to even, as numpy) or, symmetric, scale = max|x| / qmax, zp = 0.
 * Writes the packed bytes (aios_dtype_nbytes of rows*cols; unused trailing bits zero),
 * scales (n_scales) and zero_points (n_scales, may be NULL when symmetric). */
aios_status aios_quantize_f32(const float *x, int64_t rows, int64_t cols, const aios_quant_params *p, uint8_t *q,
                              float *scales, float *zero_points);

/* ---- lossless GGUF block transcoding (docs/quantization.md) ----------------------- */

/* The ArrowQuant layout a GGUF block type maps onto without changing a single dequantized
 * value, or 0 when there is none:
 *   Q8_0 -> int8, groups of 32, symmetric:  q = the block's int8, scale = d
 *   Q4_0 -> int4, groups of 32, symmetric:  stored nibble = the block's nibble (q = n - 8), scale = d
 *   Q4_1 -> int4, groups of 32, "with minima" (the aios.scale_min extension):
 *           stored nibble u = the block's nibble, scale = d, minimum = m, x = (u * s) + m
 * (*min_form = 1 for the last).  d and m are f16 in the block: exact as float32 or float16. */
int aios_quant_gguf_transcodable(aios_dtype gguf_type, aios_dtype *qtype, int *min_form);

/* Transcodes a GGUF block tensor t (aios_quant_gguf_transcodable) of rows x cols values:
 * q gets the packed ArrowQuant bytes (aios_dtype_nbytes of the target type), scales the d of
 * each block (numel / 32 floats), mins the m of each block (min form only; may be NULL
 * otherwise).  Dequantizing the result gives the block's values bit for bit. */
aios_status aios_quant_from_gguf_blocks(const aios_tensor *t, uint8_t *q, float *scales, float *mins);

/* The inverse of the min form, for the reader: t is an int4 tensor in groups of 32 whose
 * t->scales and `mins` (n_scales each, t->scale_dtype, unaligned reads) are the scales and
 * minima; out gets the Q4_1 blocks (20 bytes per 32 values) holding exactly those values
 * (x = (d * u) + m, gguf's formula).  AIOS_ERR_UNSUPPORTED naming the tensor for another
 * layout, or a float32 scale / minimum that is not a float16 value (a Q4_1 block cannot hold it). */
aios_status aios_quant_min_form_to_q4_1(const aios_tensor *t, const void *mins, uint8_t *out);

#endif
