/*
 * lora_bf16.c — a LoRA delta's two products with A and B stored as bfloat16 (float32
 * accumulation), on each kernel tier (aios_kernels_lora_ax16 / aios_kernels_lora_bu16; the
 * caller is src/model/lora_delta.c, unless aios_decoder_set_adapter_bf16(d, 0) / AIOS_LORA_BF16=0 asks
 * for float32).  A rank-8 q/v/down adapter of SmolLM2-135M is 3.87 MB of float32 per decoded token
 * beside ~96 MB of Q4_1 weights; in bf16 it is half that (measured gain: docs/evolution.md —
 * clear with 10 adapters, within the noise with one).
 *  - ax16: u (r) = s * A (r, n) @ x (n).  AVX-512: 16 columns at a time, x loaded once and
 *    multiplied into 8 row accumulators (8 rows of A in flight), bf16 widened by a 16-bit shift
 *    of the zero-extended halves, a masked load for the n % 16 tail; AVX2 the same on 8 columns
 *    with a scalar tail.
 *  - bu16: y (n) += B (n, r) @ u (r).  For r a multiple of 8: AVX-512 blocks of 16 outputs, AVX2
 *    of 8, summed in registers by the transpose-reduce lora_bu.c uses (cpu/rowsum.h) and added to
 *    y once; other r and the tails scalar.
 * The reference tier is plain sequential float32 sums of the widened values; a bf16 value
 * widened to float32 is exact, so every tier computes the same products and differs from the
 * reference only in summation order.
 */
#include "kernels/cpu/hsum_avx2.h"
#include "kernels/cpu/kern.h"
#include "kernels/cpu/rowsum.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define T256 __attribute__((target("avx2,fma")))
#endif

static void ax16_rows(float *u, const uint16_t *A, const float *x, int64_t k0, int64_t r, int64_t n,
                      float s) {
    for (int64_t k = k0; k < r; k++) {
        const uint16_t *a = A + k * n;
        float acc = 0;
        for (int64_t j = 0; j < n; j++)
            acc += x[j] * aios_bf16_to_f32(a[j]);
        u[k] = acc * s;
    }
}

static void bu16_rows(float *y, const uint16_t *B, const float *u, int64_t o0, int64_t n, int64_t r) {
    for (int64_t o = o0; o < n; o++) {
        const uint16_t *b = B + o * r;
        float acc = 0;
        for (int64_t k = 0; k < r; k++)
            acc += u[k] * aios_bf16_to_f32(b[k]);
        y[o] += acc;
    }
}

void aios__lora_ax16_ref(float *u, const uint16_t *A, const float *x, int64_t r, int64_t n, float s) {
    ax16_rows(u, A, x, 0, r, n, s);
}
void aios__lora_bu16_ref(float *y, const uint16_t *B, const float *u, int64_t n, int64_t r) {
    bu16_rows(y, B, u, 0, n, r);
}

#if defined(__x86_64__)
T512 static inline __m512 wide512(const uint16_t *p) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
T512 static inline __m512 wide512_n(const uint16_t *p, int64_t n) { /* n < 16 values, the rest 0 */
    const __mmask16 m = (__mmask16)((1u << n) - 1);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

T512 void aios__lora_ax16_512(float *u, const uint16_t *A, const float *x, int64_t r, int64_t n, float s) {
    int64_t k = 0;
    for (; k + 8 <= r; k += 8) {
        __m512 acc[8];
        for (int i = 0; i < 8; i++)
            acc[i] = _mm512_setzero_ps();
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) {
            const __m512 xv = _mm512_loadu_ps(x + j);
            for (int i = 0; i < 8; i++)
                acc[i] = _mm512_fmadd_ps(wide512(A + (k + i) * n + j), xv, acc[i]);
        }
        if (j < n) {
            const __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + j);
            for (int i = 0; i < 8; i++)
                acc[i] = _mm512_fmadd_ps(wide512_n(A + (k + i) * n + j, n - j), xv, acc[i]);
        }
        for (int i = 0; i < 8; i++)
            u[k + i] = _mm512_reduce_add_ps(acc[i]) * s;
    }
    for (; k < r; k++) {
        __m512 acc = _mm512_setzero_ps();
        int64_t j = 0;
        for (; j + 16 <= n; j += 16)
            acc = _mm512_fmadd_ps(wide512(A + k * n + j), _mm512_loadu_ps(x + j), acc);
        if (j < n) {
            const __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
            acc = _mm512_fmadd_ps(wide512_n(A + k * n + j, n - j), _mm512_maskz_loadu_ps(m, x + j), acc);
        }
        u[k] = _mm512_reduce_add_ps(acc) * s;
    }
}

/* r a multiple of 8: 16 outputs at a time, acc[j] = rows 2j (lanes 0-7) and 2j+1 (lanes 8-15)
 * times u, summed over r's chunks of 8, then the rows' sums by the transpose-reduce of
 * cpu/rowsum.h and one add into y; other r and the n % 16 tail take the scalar rows. */
T512 void aios__lora_bu16_512(float *y, const uint16_t *B, const float *u, int64_t n, int64_t r) {
    if (r % 8) {
        bu16_rows(y, B, u, 0, n, r);
        return;
    }
    const int64_t nc = r / 8;
    int64_t o = 0;
    for (; o + 16 <= n; o += 16) {
        const uint16_t *b = B + o * r;
        __m512 acc[8];
        if (nc == 1) { /* r = 8: the 16 rows are 128 contiguous bf16 */
            const __m256 u8 = _mm256_loadu_ps(u);
            const __m512 uu =
                _mm512_shuffle_f32x4(_mm512_castps256_ps512(u8), _mm512_castps256_ps512(u8), 0x44);
            for (int j = 0; j < 8; j++)
                acc[j] = _mm512_mul_ps(wide512(b + 16 * j), uu);
        } else {
            for (int j = 0; j < 8; j++)
                acc[j] = _mm512_setzero_ps();
            for (int64_t c = 0; c < nc; c++) {
                const __m256 u8 = _mm256_loadu_ps(u + 8 * c);
                const __m512 uu =
                    _mm512_shuffle_f32x4(_mm512_castps256_ps512(u8), _mm512_castps256_ps512(u8), 0x44);
                for (int j = 0; j < 8; j++) {
                    const __m256i lh =
                        _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(b + (2 * j + 1) * r + 8 * c)),
                                         _mm_loadu_si128((const __m128i *)(b + (2 * j) * r + 8 * c)));
                    const __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(lh), 16));
                    acc[j] = _mm512_fmadd_ps(w, uu, acc[j]);
                }
            }
        }
        _mm512_storeu_ps(y + o, _mm512_add_ps(_mm512_loadu_ps(y + o), aios__rowsum16_512(acc)));
    }
    bu16_rows(y, B, u, o, n, r);
}

T256 static inline __m256 wide256(const uint16_t *p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

T256 void aios__lora_ax16_256(float *u, const uint16_t *A, const float *x, int64_t r, int64_t n, float s) {
    int64_t k = 0;
    for (; k + 8 <= r; k += 8) {
        __m256 acc[8];
        for (int i = 0; i < 8; i++)
            acc[i] = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) {
            const __m256 xv = _mm256_loadu_ps(x + j);
            for (int i = 0; i < 8; i++)
                acc[i] = _mm256_fmadd_ps(wide256(A + (k + i) * n + j), xv, acc[i]);
        }
        for (int i = 0; i < 8; i++) {
            float t = aios__hsum256(acc[i]);
            for (int64_t jj = j; jj < n; jj++)
                t += x[jj] * aios_bf16_to_f32(A[(k + i) * n + jj]);
            u[k + i] = t * s;
        }
    }
    for (; k < r; k++) {
        __m256 acc = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j + 8 <= n; j += 8)
            acc = _mm256_fmadd_ps(wide256(A + k * n + j), _mm256_loadu_ps(x + j), acc);
        float t = aios__hsum256(acc);
        for (; j < n; j++)
            t += x[j] * aios_bf16_to_f32(A[k * n + j]);
        u[k] = t * s;
    }
}

/* r a multiple of 8: 8 outputs at a time, acc[j] = row j times u summed over r's chunks of 8,
 * the rows' sums by rowsum.h's hadd reduce; other r and the n % 8 tail scalar. */
T256 void aios__lora_bu16_256(float *y, const uint16_t *B, const float *u, int64_t n, int64_t r) {
    if (r % 8) {
        bu16_rows(y, B, u, 0, n, r);
        return;
    }
    const int64_t nc = r / 8;
    int64_t o = 0;
    for (; o + 8 <= n; o += 8) {
        const uint16_t *b = B + o * r;
        __m256 acc[8];
        const __m256 u0 = _mm256_loadu_ps(u);
        for (int j = 0; j < 8; j++)
            acc[j] = _mm256_mul_ps(wide256(b + j * r), u0);
        for (int64_t c = 1; c < nc; c++) {
            const __m256 uc = _mm256_loadu_ps(u + 8 * c);
            for (int j = 0; j < 8; j++)
                acc[j] = _mm256_fmadd_ps(wide256(b + j * r + 8 * c), uc, acc[j]);
        }
        _mm256_storeu_ps(y + o, _mm256_add_ps(_mm256_loadu_ps(y + o), aios__rowsum8_256(acc)));
    }
    bu16_rows(y, B, u, o, n, r);
}
#endif
