/* test_quant.c — dtype conversions, ArrowQuant packing, reference dequantization, quantizer. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/internal.h"
#include "tensor/quant.h"
#include "test.h"

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Every half converts to float and back to itself (NaNs stay NaN). */
static void test_f16_roundtrip_exhaustive(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = aios_quant_half_to_float((uint16_t)h);
        uint16_t back = aios_quant_float_to_half(f);
        if (((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF)) {
            CHECKF(isnan(f) && ((back >> 10) & 0x1F) == 0x1F && (back & 0x3FF), "NaN %04x", h);
        } else {
            CHECKF(back == h, "half %04x -> %g -> %04x", h, (double)f, back);
        }
    }
    /* known values (IEEE 754 binary16) */
    CHECK(aios_quant_half_to_float(0x3C00) == 1.0f);
    CHECK(aios_quant_half_to_float(0xC000) == -2.0f);
    CHECK(aios_quant_half_to_float(0x7BFF) == 65504.0f);
    CHECK(aios_quant_half_to_float(0x0001) == ldexpf(1, -24));
    CHECK(isinf(aios_quant_half_to_float(0x7C00)));
    /* rounding: nearest even at the midpoint between two halves */
    CHECK(aios_quant_float_to_half(1.0f + ldexpf(1, -11)) == 0x3C00);          /* tie -> even */
    CHECK(aios_quant_float_to_half(1.0f + 3 * ldexpf(1, -11)) == 0x3C02);      /* tie -> even (up) */
    CHECK(aios_quant_float_to_half(65520.0f) == 0x7C00);                      /* overflow -> inf */
    CHECK(aios_quant_float_to_half(65519.0f) == 0x7BFF);
    CHECK(aios_quant_float_to_half(ldexpf(1, -25)) == 0x0000);                 /* tie -> 0 */
    CHECK(aios_quant_float_to_half(ldexpf(1.5f, -25)) == 0x0001);
    CHECK(aios_quant_float_to_half(-0.0f) == 0x8000);
}

static void test_bf16(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = aios_quant_bf16_to_float((uint16_t)h);
        CHECKF(fbits(f) == h << 16, "bf16 %04x", h);
        if (!isnan(f)) CHECKF(aios_quant_float_to_bf16(f) == h, "bf16 %04x back", h);
    }
    CHECK(aios_quant_float_to_bf16(bitsf(0x3F808000u)) == 0x3F80); /* tie -> even (down) */
    CHECK(aios_quant_float_to_bf16(bitsf(0x3F818000u)) == 0x3F82); /* tie -> even (up) */
    CHECK(aios_quant_float_to_bf16(bitsf(0x3F808001u)) == 0x3F81);
    CHECK(isnan(aios_quant_bf16_to_float(aios_quant_float_to_bf16(NAN))));
    /* the bulk converter (vectorized) on every bf16 value with 5 low halves each (exact, just
     * below / at / above the tie, all ones), from an odd offset and an odd count so the vector
     * tails run: against the nearest-even rule written out here (lower or upper neighbour by
     * the dropped half; at the tie, the even one); NaNs stay NaN with their sign */
    static const uint32_t lows[5] = {0, 0x7FFF, 0x8000, 0x8001, 0xFFFF};
    const int64_t n = 65536 * 5;
    float *f = malloc((size_t)(n + 1) * sizeof *f);
    uint16_t *o = malloc((size_t)(n + 1) * sizeof *o);
    if (!f || !o) {
        CHECK(0);
        free(f), free(o);
        return;
    }
    for (int64_t i = 0; i < n; i++) f[i + 1] = bitsf(((uint32_t)(i / 5) << 16) | lows[i % 5]);
    aios_quant_floats_to_bf16(o + 1, f + 1, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint32_t u = fbits(f[i + 1]), lo = u >> 16, rem = u & 0xFFFF;
        if (isnan(f[i + 1])) {
            bad += !isnan(aios_quant_bf16_to_float(o[i + 1])) || (o[i + 1] >> 15) != (u >> 31);
            continue;
        }
        const uint32_t want = rem < 0x8000 ? lo : rem > 0x8000 ? lo + 1 : (lo & 1) ? lo + 1 : lo;
        bad += o[i + 1] != (uint16_t)want;
    }
    CHECKF(bad == 0, "bulk bf16: %lld of %lld values differ from round-to-nearest-even", (long long)bad, (long long)n);
    free(f), free(o);
}

static void test_f8(void) {
    /* e4m3fn: 0x38 = 1.0, 0x7e = 448 (max), 0x01 = 2^-9, 0x7f NaN; e5m2: 0x3c = 1.0, 0x7b = 57344 */
    CHECK(aios_quant_f8e4m3_to_float(0x38) == 1.0f);
    CHECK(aios_quant_f8e4m3_to_float(0x7E) == 448.0f);
    CHECK(aios_quant_f8e4m3_to_float(0x01) == ldexpf(1, -9));
    CHECK(aios_quant_f8e4m3_to_float(0xB8) == -1.0f);
    CHECK(isnan(aios_quant_f8e4m3_to_float(0x7F)));
    CHECK(aios_quant_f8e5m2_to_float(0x3C) == 1.0f);
    CHECK(aios_quant_f8e5m2_to_float(0x7B) == 57344.0f);
}

/* The prototype's packing, by hand: int2 MSB first as q + 2, int4 as q + 8. */
static void test_packing_by_hand(void) {
    /* int2 values [1, 0, -1, -2, 1] -> stored [3, 2, 1, 0 | 3, pad...] */
    uint8_t q2[2] = {0xE4, 0xC0};
    float sc = 0.5f, zp = 0.0f;
    aios_tensor t = {.name = "q2", .dtype = AIOS_DTYPE_Q2, .ndim = 1, .shape = {5}, .data = q2, .nbytes = 2,
                     .scales = &sc, .zero_points = &zp, .n_scales = 1, .quant_axis = -1};
    float out[8];
    CHECK_OK(aios_quant_dequantize_ref(&t, out));
    float want2[5] = {0.5f, 0.0f, -0.5f, -1.0f, 0.5f};
    for (int i = 0; i < 5; i++) CHECKF(out[i] == want2[i], "q2[%d] = %g", i, (double)out[i]);
    /* int4 values [7, -8, 0] -> nibbles [15, 0 | 8, pad] */
    uint8_t q4[2] = {0xF0, 0x80};
    float sc4 = 2.0f, zp4 = 1.0f;
    aios_tensor t4 = {.name = "q4", .dtype = AIOS_DTYPE_Q4, .ndim = 1, .shape = {3}, .data = q4, .nbytes = 2,
                      .scales = &sc4, .zero_points = &zp4, .n_scales = 1, .quant_axis = -1};
    CHECK_OK(aios_quant_dequantize_ref(&t4, out));
    CHECK(out[0] == 12.0f && out[1] == -18.0f && out[2] == -2.0f);
    /* int8 per channel: rows scale differently */
    int8_t q8[4] = {1, -2, 3, 127};
    float s8[2] = {1.0f, 0.5f}, z8[2] = {0.0f, 1.0f};
    aios_tensor t8 = {.name = "q8", .dtype = AIOS_DTYPE_Q8, .ndim = 2, .shape = {2, 2}, .data = q8, .nbytes = 4,
                      .scales = s8, .zero_points = z8, .n_scales = 2, .quant_axis = 0};
    CHECK_OK(aios_quant_dequantize_ref(&t8, out));
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 1.0f && out[3] == 63.0f);
    CHECK_OK(aios_quant_dequantize_row_ref(&t8, 1, out));
    CHECK(out[0] == 1.0f && out[1] == 63.0f);
    CHECK(aios_quant_dequantize_row_ref(&t8, 2, out) == AIOS_ERR_RANGE);
}

/* Views whose sizes disagree are rejected with the tensor's name. */
static void test_validate_rejects(void) {
    uint8_t buf[64] = {0};
    float sc[4] = {1, 1, 1, 1};
    aios_tensor t = {.name = "w", .dtype = AIOS_DTYPE_Q4, .ndim = 2, .shape = {4, 8}, .data = buf, .nbytes = 16,
                     .scales = sc, .n_scales = 1, .quant_axis = -1};
    CHECK_OK(aios_tensor_validate(&t));
    t.nbytes = 15;
    CHECK(aios_tensor_validate(&t) == AIOS_ERR_SHAPE && strstr(aios_last_error(), "w:"));
    t.nbytes = 16;
    t.quant_axis = 0; /* per channel needs 4 scales */
    CHECK(aios_tensor_validate(&t) == AIOS_ERR_SHAPE);
    t.n_scales = 4;
    CHECK_OK(aios_tensor_validate(&t));
    t.group_size = 3; /* 8 % 3 != 0 */
    CHECK(aios_tensor_validate(&t) == AIOS_ERR_SHAPE);
    t.group_size = 4; /* 32 / 4 = 8 scales needed */
    CHECK(aios_tensor_validate(&t) == AIOS_ERR_SHAPE);
    t.quant_axis = 7;
    t.group_size = 0;
    CHECK(aios_tensor_validate(&t) == AIOS_ERR_UNSUPPORTED);
    aios_tensor big = {.name = "big", .dtype = AIOS_DTYPE_F32, .ndim = 3, .shape = {1LL << 40, 1LL << 40, 1 << 20},
                       .data = buf, .nbytes = 4};
    CHECK(aios_tensor_validate(&big) == AIOS_ERR_RANGE);
    aios_tensor neg = {.name = "neg", .dtype = AIOS_DTYPE_F32, .ndim = 1, .shape = {-1}, .data = buf, .nbytes = 4};
    CHECK(aios_tensor_validate(&neg) == AIOS_ERR_SHAPE);
    aios_tensor f4 = {.name = "f", .dtype = AIOS_DTYPE_F32, .ndim = 2, .shape = {2, 2}, .data = buf, .nbytes = 16};
    CHECK_OK(aios_tensor_validate(&f4));
    f4.dtype = (aios_dtype)99;
    CHECK(aios_tensor_validate(&f4) == AIOS_ERR_UNSUPPORTED);
}

static uint64_t rng_state = 88172645463325252ull;
static float randn(void) {
    double u = 0;
    for (int i = 0; i < 12; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        u += (double)(rng_state >> 11) / 9007199254740992.0;
    }
    return (float)(u - 6.0);
}

/* Quantize then dequantize: every value within half a step of its scale (inside the clamp
 * range), q codes in range, unused trailing bits zero, layouts agree with validate(). */
static void test_quantize_roundtrip(void) {
    enum { R = 6, C = 40 };
    float x[R * C], y[R * C];
    for (int i = 0; i < R * C; i++) x[i] = randn() * (1 + (i / C));
    x[5] = 0;
    aios_dtype types[3] = {AIOS_DTYPE_Q8, AIOS_DTYPE_Q4, AIOS_DTYPE_Q2};
    struct { int32_t g; int pc; } lay[4] = {{0, 0}, {0, 1}, {8, 0}, {20, 0}};
    for (int ti = 0; ti < 3; ti++)
        for (int li = 0; li < 4; li++)
            for (int sym = 0; sym < 2; sym++) {
                aios_quant_params p = {.type = types[ti], .group_size = lay[li].g, .per_channel = lay[li].pc, .symmetric = sym};
                int64_t ns;
                int32_t ax, gs;
                CHECK_OK(aios_quant_layout(&p, R, C, &ns, &ax, &gs));
                size_t nb;
                CHECK_OK(aios_dtype_nbytes(types[ti], R * C, &nb));
                uint8_t q[R * C];
                float sc[R * C], zp[R * C];
                CHECK_OK(aios_quantize_f32(x, R, C, &p, q, sc, zp));
                aios_tensor t = {.name = "t", .dtype = types[ti], .ndim = 2, .shape = {R, C}, .data = q, .nbytes = nb,
                                 .scales = sc, .zero_points = zp, .n_scales = ns, .quant_axis = ax, .group_size = gs};
                CHECK_OK(aios_quant_dequantize_ref(&t, y));
                int bits = aios_quant_bits(types[ti]);
                double worst = 0;
                for (int i = 0; i < R * C; i++) {
                    int64_t si = aios_quant_scale_index(&t, C, i);
                    double step = sc[si];
                    double lo = (-(1 << (bits - 1)) - zp[si]) * step, hi = ((1 << (bits - 1)) - 1 - zp[si]) * step;
                    double xc = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
                    double e = fabs(y[i] - xc) / step;
                    if (e > worst) worst = e;
                    if (sym) CHECK(zp[si] == 0);
                }
                CHECKF(worst <= 0.5 + 1e-4, "bits %d layout %d sym %d: error %.3f steps", bits, li, sym, worst);
                if (!sym) {
                    /* asymmetric min/max: nothing is clamped */
                    for (int i = 0; i < R * C; i++) {
                        int64_t si = aios_quant_scale_index(&t, C, i);
                        CHECKF(fabs(y[i] - x[i]) <= 0.5 * sc[si] + 1e-5 * fabs(x[i]) + 1e-7, "clamped at %d", i);
                    }
                }
            }
    /* zero is exact with a zero point (the seed's promise for int8) */
    float z[4] = {0, 1, -3, 2}, back[4];
    uint8_t q[4];
    float s1, z1;
    aios_quant_params p8 = {.type = AIOS_DTYPE_Q8};
    CHECK_OK(aios_quantize_f32(z, 1, 4, &p8, q, &s1, &z1));
    aios_tensor t = {.name = "z", .dtype = AIOS_DTYPE_Q8, .ndim = 1, .shape = {4}, .data = q, .nbytes = 4, .scales = &s1,
                     .zero_points = &z1, .n_scales = 1, .quant_axis = -1};
    CHECK_OK(aios_quant_dequantize_ref(&t, back));
    CHECK(back[0] == 0.0f);
    /* the seed's int8 rule, worked by hand: lo=-3, hi=2, scale=5/255, zp=round(3/scale)-128=25 */
    CHECK(fabsf(s1 - 5.0f / 255.0f) < 1e-9f && z1 == 25.0f);
    CHECK((int8_t)q[2] == -128 && (int8_t)q[3] == 127);
    /* odd count: trailing bits zero */
    float o[5] = {1, 2, 3, 4, 5};
    uint8_t q2[2] = {0xFF, 0xFF};
    aios_quant_params p2 = {.type = AIOS_DTYPE_Q2};
    CHECK_OK(aios_quantize_f32(o, 1, 5, &p2, q2, &s1, &z1));
    CHECK((q2[1] & 0x3F) == 0);
    /* group size that does not divide the row */
    aios_quant_params pg = {.type = AIOS_DTYPE_Q4, .group_size = 3};
    CHECK(aios_quantize_f32(o, 1, 5, &pg, q2, &s1, &z1) == AIOS_ERR_SHAPE);
    /* non-finite input does not crash and stays in range */
    float nf[4] = {NAN, INFINITY, -INFINITY, 1};
    CHECK_OK(aios_quantize_f32(nf, 1, 4, &p8, q, &s1, &z1));
    CHECK(isfinite(s1) && s1 > 0);
}

/* GGUF Q8_0 / Q4_0 / Q4_1 blocks -> ArrowQuant (aios_quant_from_gguf_blocks): the symmetric
 * layouts dequantize (the ArrowQuant formula) to the block decoder's values bit for bit (that
 * decoder is held to gguf.quants.dequantize by tests/py/test_gguf_quants.py; the transcoded
 * files against gguf itself: tests/py/test_gguf_transcode.py); the min form turns back into
 * the very same Q4_1 bytes from f32 and from f16 arrays; a non-f16 scale is refused. */
static void test_gguf_transcode(void) {
    static const aios_dtype types[3] = {AIOS_DTYPE_GGUF_Q8_0, AIOS_DTYPE_GGUF_Q4_0, AIOS_DTYPE_GGUF_Q4_1};
    const int64_t rows = 3, cols = 96, n = rows * cols, nb = n / 32;
    for (int ti = 0; ti < 3; ti++) {
        int blk = 0, bb = 0, mf = 0;
        aios_dtype qt;
        CHECK(aios_gguf_block(types[ti], &blk, &bb) && blk == 32);
        CHECK(aios_quant_gguf_transcodable(types[ti], &qt, &mf));
        CHECK(mf == (ti == 2) && qt == (ti ? AIOS_DTYPE_Q4 : AIOS_DTYPE_Q8));
        uint8_t *raw = malloc((size_t)(nb * bb)), *q = malloc((size_t)n), *back = malloc((size_t)(nb * 20));
        float *sc = malloc((size_t)nb * 4), *mn = malloc((size_t)nb * 4), *want = malloc((size_t)n * 4),
              *got = malloc((size_t)n * 4);
        uint16_t *sc16 = malloc((size_t)nb * 2), *mn16 = malloc((size_t)nb * 2);
        for (int64_t i = 0; i < nb * bb; i++) raw[i] = (uint8_t)(randn() * 1000.0f);
        for (int64_t k = 0; k < nb; k++) { /* normal, subnormal, zero, negative scales and minima */
            for (int c = 0; c < (ti == 2 ? 2 : 1); c++) {
                float v = k % 4 == 0 ? randn() * 0.05f : k % 4 == 1 ? randn() * 3e-6f : k % 4 == 2 ? 0.0f : -fabsf(randn() * 0.05f);
                uint16_t h = aios_quant_float_to_half(v);
                raw[k * bb + 2 * c] = (uint8_t)(h & 0xFF);
                raw[k * bb + 2 * c + 1] = (uint8_t)(h >> 8);
            }
        }
        aios_tensor g = {.name = "w", .dtype = types[ti], .ndim = 2, .shape = {rows, cols}, .data = raw,
                         .nbytes = (size_t)(nb * bb), .quant_axis = -1};
        CHECK_OK(aios_quant_dequantize_ref(&g, want));
        CHECK_OK(aios_quant_from_gguf_blocks(&g, q, sc, mf ? mn : NULL));
        size_t qb;
        CHECK_OK(aios_dtype_nbytes(qt, n, &qb));
        aios_tensor a = {.name = "w", .dtype = qt, .ndim = 2, .shape = {rows, cols}, .data = q, .nbytes = qb,
                         .scales = sc, .n_scales = nb, .quant_axis = -1, .group_size = 32};
        if (!mf) {
            CHECK_OK(aios_quant_dequantize_ref(&a, got));
            for (int64_t i = 0; i < n; i++) CHECKF(fbits(got[i]) == fbits(want[i]), "type %d value %lld", ti, (long long)i);
            if (qt == AIOS_DTYPE_Q8) CHECK(aios_quant_min_form_to_q4_1(&a, sc, back) == AIOS_ERR_UNSUPPORTED); /* int4 only */
        } else {
            memset(back, 0, (size_t)(nb * 20));
            CHECK_OK(aios_quant_min_form_to_q4_1(&a, mn, back));
            CHECK(!memcmp(back, raw, (size_t)(nb * 20)));
            for (int64_t k = 0; k < nb; k++) {
                sc16[k] = aios_quant_float_to_half(sc[k]);
                mn16[k] = aios_quant_float_to_half(mn[k]);
            }
            aios_tensor a16 = a;
            a16.scales = (const float *)(const void *)sc16;
            a16.scale_dtype = AIOS_DTYPE_F16;
            memset(back, 0, (size_t)(nb * 20));
            CHECK_OK(aios_quant_min_form_to_q4_1(&a16, mn16, back));
            CHECK(!memcmp(back, raw, (size_t)(nb * 20)));
            sc[1] = 0.1f; /* no f16 holds it */
            CHECK(aios_quant_min_form_to_q4_1(&a, mn, back) == AIOS_ERR_UNSUPPORTED);
            CHECK(strstr(aios_last_error(), "w: group 1: scale") != NULL);
            a.group_size = 0, a.quant_axis = 0, a.n_scales = rows;
            CHECK(aios_quant_min_form_to_q4_1(&a, mn, back) == AIOS_ERR_UNSUPPORTED);
        }
        free(raw), free(q), free(back), free(sc), free(mn), free(want), free(got), free(sc16), free(mn16);
    }
    aios_tensor k4 = {.name = "k", .dtype = AIOS_DTYPE_GGUF_Q4_K, .ndim = 2, .shape = {1, 256}};
    CHECK(!aios_quant_gguf_transcodable(AIOS_DTYPE_GGUF_Q4_K, NULL, NULL));
    CHECK(aios_quant_from_gguf_blocks(&k4, NULL, NULL, NULL) == AIOS_ERR_UNSUPPORTED);
}

static void test_dtype_names(void) {
    aios_dtype t;
    CHECK(!aios_dtype_from_safetensors("BF16", &t) && t == AIOS_DTYPE_BF16);
    CHECK(!aios_dtype_from_safetensors("F8_E4M3", &t) && t == AIOS_DTYPE_F8_E4M3);
    CHECK(aios_dtype_from_safetensors("F4", &t) == -1);
    CHECK(!aios_dtype_from_torch("torch.float32", &t) && t == AIOS_DTYPE_F32);
    CHECK(!aios_dtype_from_torch("bfloat16", &t) && t == AIOS_DTYPE_BF16);
    CHECK(aios_dtype_from_torch("torch.complex64", &t) == -1);
    CHECK(!strcmp(aios_dtype_torch_name(AIOS_DTYPE_F16), "torch.float16"));
    size_t n;
    CHECK_OK(aios_dtype_nbytes(AIOS_DTYPE_Q2, 5, &n));
    CHECK(n == 2);
    CHECK_OK(aios_dtype_nbytes(AIOS_DTYPE_Q4, 5, &n));
    CHECK(n == 3);
    CHECK(aios_dtype_nbytes(AIOS_DTYPE_F64, INT64_MAX / 4, &n) == AIOS_ERR_RANGE);
}

int main(void) {
    RUN(test_f16_roundtrip_exhaustive);
    RUN(test_bf16);
    RUN(test_f8);
    RUN(test_packing_by_hand);
    RUN(test_validate_rejects);
    RUN(test_quantize_roundtrip);
    RUN(test_dtype_names);
    RUN(test_gguf_transcode);
    TEST_MAIN_END();
}
