/*
 * lora_bu.c — y (n) += B (n, r) @ u (r) for a LoRA delta's B side, B in PEFT's row-major
 * (n_out, r) layout, on each kernel tier (aios_kernels_lora_bu; the caller, src/model/lora_delta.c,
 * forms u = s A x with the tier's dot).  Decode calls it ~90 times per token on r = 8:
 *  - AVX-512: a block of 16 outputs is multiplied against u in registers (one vector per pair of
 *    rows, chunks of 8 of r accumulated) and the rows' sums formed by a transpose-reduce (three
 *    levels of two-source permutes, cpu/rowsum.h), then added to y once;
 *  - AVX2: 8 outputs, hadd twice and a 128-bit swap (rowsum.h);
 *  - r that is not a multiple of 8 and the n % 16 (% 8) tail take the scalar loop, which is the
 *    reference tier bit for bit (sequential sums).
 */
#include "kernels/cpu/kern.h"
#include "kernels/cpu/rowsum.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define T256 __attribute__((target("avx2,fma")))
#endif

/* y (n) += B (n, r) @ u (r), rows [o0, n) — the scalar reference (and every tier's tail) */
static void bu_rows(float *y, const float *B, const float *u, int64_t o0, int64_t n, int64_t r) {
    for (int64_t o = o0; o < n; o++) {
        const float *bo = B + o * r;
        float acc = 0;
        for (int64_t k = 0; k < r; k++)
            acc += u[k] * bo[k];
        y[o] += acc;
    }
}

#if defined(__x86_64__)
/* 16 outputs at a time: acc[j] holds rows 2j (lanes 0-7) and 2j+1 (lanes 8-15) times u, summed
 * over r's chunks of 8; three permute levels halve the partial sums per row (8 -> 4 -> 2 -> 1)
 * while keeping the rows in order, so the last vector is y[o .. o + 16)'s increment. */
T512 void aios__lora_bu_512(float *y, const float *B, const float *u, int64_t n, int64_t r) {
    if (r % 8) {
        bu_rows(y, B, u, 0, n, r);
        return;
    }
    const int64_t nc = r / 8;
    int64_t o = 0;
    for (; o + 16 <= n; o += 16) {
        const float *b = B + o * r;
        __m512 acc[8];
        if (nc == 1) { /* r = 8: the 16 rows are 128 contiguous floats */
            const __m256 u8 = _mm256_loadu_ps(u);
            const __m512 uu =
                _mm512_shuffle_f32x4(_mm512_castps256_ps512(u8), _mm512_castps256_ps512(u8), 0x44);
            for (int j = 0; j < 8; j++)
                acc[j] = _mm512_mul_ps(_mm512_loadu_ps(b + 16 * j), uu);
        } else {
            for (int j = 0; j < 8; j++)
                acc[j] = _mm512_setzero_ps();
            for (int64_t c = 0; c < nc; c++) {
                const __m256 u8 = _mm256_loadu_ps(u + 8 * c);
                const __m512 uu =
                    _mm512_shuffle_f32x4(_mm512_castps256_ps512(u8), _mm512_castps256_ps512(u8), 0x44);
                for (int j = 0; j < 8; j++) {
                    const __m512 lo = _mm512_castps256_ps512(_mm256_loadu_ps(b + (2 * j) * r + 8 * c));
                    const __m512 hi = _mm512_castps256_ps512(_mm256_loadu_ps(b + (2 * j + 1) * r + 8 * c));
                    acc[j] = _mm512_fmadd_ps(_mm512_shuffle_f32x4(lo, hi, 0x44), uu, acc[j]);
                }
            }
        }
        const __m512 s = aios__rowsum16_512(acc);
        _mm512_storeu_ps(y + o, _mm512_add_ps(_mm512_loadu_ps(y + o), s));
    }
    bu_rows(y, B, u, o, n, r);
}

/* 8 outputs at a time: acc[j] = row j times u (summed over r's chunks of 8); hadd twice gives
 * each row's half sums per 128-bit lane, the lane swap adds the halves in row order. */
T256 void aios__lora_bu_256(float *y, const float *B, const float *u, int64_t n, int64_t r) {
    if (r % 8) {
        bu_rows(y, B, u, 0, n, r);
        return;
    }
    const int64_t nc = r / 8;
    int64_t o = 0;
    for (; o + 8 <= n; o += 8) {
        const float *b = B + o * r;
        __m256 acc[8];
        for (int j = 0; j < 8; j++)
            acc[j] = _mm256_mul_ps(_mm256_loadu_ps(b + j * r), _mm256_loadu_ps(u));
        for (int64_t c = 1; c < nc; c++) {
            const __m256 uc = _mm256_loadu_ps(u + 8 * c);
            for (int j = 0; j < 8; j++)
                acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(b + j * r + 8 * c), uc, acc[j]);
        }
        const __m256 s = aios__rowsum8_256(acc);
        _mm256_storeu_ps(y + o, _mm256_add_ps(_mm256_loadu_ps(y + o), s));
    }
    bu_rows(y, B, u, o, n, r);
}
#endif

void aios__lora_bu_ref(float *y, const float *B, const float *u, int64_t n, int64_t r) {
    bu_rows(y, B, u, 0, n, r);
}
