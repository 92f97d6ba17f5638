/*
 * qdot_ref.c — scalar reference of the int8-activation decode GEMV (qdot_avx512.c, and the
 * AVX2 version in avx2.c): plain C, one value at a time, written from the definitions.
 *
 * x: per 16 values dx = max|x| / 127 and q = round half to even (x * (1 / dx)) (0 when all
 * are zero; llama.cpp's Q8_0 rule on blocks of 16, not 32: half the error, docs/kernels.md).  W: per 16 values (a K-quant sub-block, half a 32-value block, part of an
 * ArrowQuant group) integers w, a scale s and a minimum m with value = s w - m.  Then
 *
 *   y += sum over 16-value runs of  s dx (sum w q)  -  m dx (sum q)
 *
 * with the integer sums exact (int32) and the float terms accumulated in double.
 */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/kern.h"
#include "tensor/gguf_blocks.h"

/* Integers w[blk], per-16 scales s and minimums m of one GGUF block (value = s w - m). */
static void gguf_ints(aios_dtype t, const uint8_t *b, int *w, float *s, float *m) {
    for (int g = 0; g < 16; g++) m[g] = 0.0f;
    switch (t) {
    case AIOS_DTYPE_GGUF_Q4_0: case AIOS_DTYPE_GGUF_Q4_1: {
        const int o = t == AIOS_DTYPE_GGUF_Q4_0 ? 2 : 4;
        for (int j = 0; j < 16; j++) w[j] = b[o + j] & 0xF, w[j + 16] = b[o + j] >> 4;
        s[0] = s[1] = aios_gguf_f16(b);
        if (t == AIOS_DTYPE_GGUF_Q4_0) for (int j = 0; j < 32; j++) w[j] -= 8;
        else m[0] = m[1] = -aios_gguf_f16(b + 2);
        return;
    }
    case AIOS_DTYPE_GGUF_Q5_0: case AIOS_DTYPE_GGUF_Q5_1: {
        const int o = t == AIOS_DTYPE_GGUF_Q5_0 ? 2 : 4;
        uint32_t qh = aios_gguf_u32le(b + o);
        for (int j = 0; j < 16; j++) {
            w[j] = (b[o + 4 + j] & 0xF) | (int)(((qh >> j) & 1) << 4);
            w[j + 16] = (b[o + 4 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        }
        s[0] = s[1] = aios_gguf_f16(b);
        if (t == AIOS_DTYPE_GGUF_Q5_0) for (int j = 0; j < 32; j++) w[j] -= 16;
        else m[0] = m[1] = -aios_gguf_f16(b + 2);
        return;
    }
    case AIOS_DTYPE_GGUF_Q8_0:
        for (int j = 0; j < 32; j++) w[j] = (int8_t)b[2 + j];
        s[0] = s[1] = aios_gguf_f16(b);
        return;
    case AIOS_DTYPE_GGUF_Q2_K: {
        float d = aios_gguf_f16(b + 80), dmin = aios_gguf_f16(b + 82);
        for (int j = 0; j < 256; j++) w[j] = (b[16 + 32 * (j >> 7) + (j & 31)] >> (2 * ((j >> 5) & 3))) & 3;
        for (int g = 0; g < 16; g++) s[g] = d * (float)(b[g] & 0xF), m[g] = dmin * (float)(b[g] >> 4);
        return;
    }
    case AIOS_DTYPE_GGUF_Q3_K: {
        float d = aios_gguf_f16(b + 108);
        for (int j = 0; j < 256; j++) {
            int lo = (b[32 + 32 * (j >> 7) + (j & 31)] >> (2 * ((j >> 5) & 3))) & 3;
            w[j] = lo - (((b[j & 31] >> (j >> 5)) & 1) ? 0 : 4);
        }
        for (int g = 0; g < 16; g++) s[g] = d * (float)aios_gguf_k3_scale(b + 96, g);
        return;
    }
    case AIOS_DTYPE_GGUF_Q4_K: case AIOS_DTYPE_GGUF_Q5_K: {
        float d = aios_gguf_f16(b), dmin = aios_gguf_f16(b + 2);
        const int k5 = t == AIOS_DTYPE_GGUF_Q5_K;
        const uint8_t *qs = b + (k5 ? 48 : 16), *qh = b + 16;
        for (int g = 0; g < 8; g++) {
            int sc, mn;
            aios_gguf_k4_scale_min(b + 4, g, &sc, &mn);
            s[2 * g] = s[2 * g + 1] = d * (float)sc;
            m[2 * g] = m[2 * g + 1] = dmin * (float)mn;
            for (int l = 0; l < 32; l++)
                w[32 * g + l] = ((qs[32 * (g >> 1) + l] >> (4 * (g & 1))) & 0xF) | (k5 ? ((qh[l] >> g) & 1) << 4 : 0);
        }
        return;
    }
    default: { /* Q6_K */
        float d = aios_gguf_f16(b + 208);
        for (int j = 0; j < 256; j++) {
            int h = j >> 7, r = j & 127;
            int lo = (b[64 * h + (r & 63)] >> (4 * (r >> 6))) & 0xF, hi = (b[128 + 32 * h + (r & 31)] >> (2 * (r >> 5))) & 3;
            w[j] = (lo | (hi << 4)) - 32;
        }
        for (int g = 0; g < 16; g++) s[g] = d * (float)(int8_t)b[192 + g];
        return;
    }
    }
}

void aios__ref_gemv_i8(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const aios_tensor *W, int64_t r0,
                       int64_t r1) {
    const int64_t n_in = W->shape[1];
    int blk = 32, bytes = 0;
    const int gguf = aios_gguf_block(W->dtype, &blk, &bytes);
    if (!gguf) blk = 32;
    int8_t *q = malloc((size_t)(nt * n_in) + 1);
    float *dx = malloc(sizeof(float) * (size_t)(nt * (n_in / 16) + 1));
    if (!q || !dx) {
        free(q), free(dx);
        return;
    }
    for (int t = 0; t < nt; t++)
        for (int64_t c = 0; c < n_in; c += 16) {
            float am = 0.0f;
            for (int k = 0; k < 16; k++) am = fmaxf(am, fabsf(x[t * ldx + c + k]));
            float d = am / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            for (int k = 0; k < 16; k++) q[t * n_in + c + k] = (int8_t)nearbyintf(x[t * ldx + c + k] * id);
            dx[t * (n_in / 16) + c / 16] = d;
        }
    int w[256];
    float s[16], m[16];
    for (int64_t r = r0; r < r1; r++) {
        double acc[3] = {0, 0, 0};
        for (int64_t c = 0; c < n_in; c += blk) {
            if (gguf) {
                gguf_ints(W->dtype, aios__gguf_row(W, r) + c / blk * bytes, w, s, m);
            } else { /* ArrowQuant groups: value = (q - z) s = s q - s z */
                for (int j = 0; j < blk; j++) w[j] = aios__q_get(W, r * n_in + c + j);
                for (int g = 0; g < blk / 16; g++) {
                    int64_t si = aios__q_sidx(W, r, c + 16 * g);
                    s[g] = aios__q_scale(W, si);
                    m[g] = s[g] * aios__q_zero(W, si);
                }
            }
            for (int g = 0; g < blk / 16; g++)
                for (int t = 0; t < nt; t++) {
                    int32_t dot = 0, sq = 0;
                    for (int k = 0; k < 16; k++) {
                        int v = q[t * n_in + c + 16 * g + k];
                        dot += w[16 * g + k] * v;
                        sq += v;
                    }
                    double d = dx[t * (n_in / 16) + (c + 16 * g) / 16];
                    acc[t] += (double)s[g] * d * dot - (double)m[g] * d * sq;
                }
        }
        for (int t = 0; t < nt; t++) y[t * ldy + r] += (float)acc[t];
    }
    free(q), free(dx);
}
