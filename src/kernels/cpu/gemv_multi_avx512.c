/*
 * gemv_multi_avx512.c — the batched decode GEMV (4..16 token rows) on GGUF block weights,
 * AVX-512: 4 weight rows x 4 tokens of 16-lane accumulators per register tile.  The body is
 * gemv_multi.h; here the vector width and the exact block decoder.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/gguf_simd512.h"
#include "kernels/cpu/kern.h"
#include "tensor/gguf_blocks.h"

#define MV_T __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define MV_TI __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"), always_inline)) inline
#define MV_VEC __m512
#define MV_LANES 16
#define MV_ZERO() _mm512_setzero_ps()
#define MV_LOAD(p) _mm512_load_ps(p)
#define MV_LOADU(p) _mm512_loadu_ps(p)
#define MV_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MV_REDUCE(v) _mm512_reduce_add_ps(v)
#define MV_NTG 4
#define MV_DEQ32 deq32_512
#define MV_NAME aios__gemv_gguf_multi_512

/* Values 32c .. 32c + 31 of block b as float32 into out: the single-row GEMV's decoder. */
static MV_TI void deq32_512(aios_dtype DT, const uint8_t *b, int c, float s0, float s1, float m0, float m1, int has_min,
                            float *out) {
    __m512 w0, w1;
    gguf_w32(DT, b, c, &s0, &s1, &m0, &m1, has_min, &w0, &w1);
    _mm512_store_ps(out, w0);
    _mm512_store_ps(out + 16, w1);
}

#include "kernels/cpu/gemv_multi.h"

#endif
