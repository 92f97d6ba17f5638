/*
 * search.c — exact cosine top-k with filters.
 *
 * score(q, x) = dot(q̂, x) * (1/|x|): the query is normalised once, each row keeps 1/|x|, so a
 * search is one dot product per candidate row.  Filters (category, source, time range, minimum
 * quality, liveness) are tested before the dot product, so the top-k are drawn only from rows
 * that pass: k hits come back whenever k rows pass the filters and the threshold.
 *
 * Kernels: aios__dot_ref is the scalar reference (double accumulation would be slower than the
 * data; it uses 4 float partial sums like the SIMD one); dot_avx2 uses 4 FMA accumulators of 8
 * lanes with a scalar tail; dot_avx512 4 accumulators of 16 lanes with a masked tail; the widest
 * the CPU has is chosen at run time (AIOS_KERNELS=ref forces the reference, =avx2 caps at AVX2).
 * Threads: OpenMP splits the row range; each thread keeps a bounded min-heap of its k best,
 * then the heaps are merged and sorted (score desc, row asc — deterministic ties).
 */
#include "memory/memory_internal.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

float aios__dot_ref(const float *a, const float *b, int64_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    __m128 lo = _mm256_castps256_ps128(acc), hi = _mm256_extractf128_ps(acc, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* 16-lane version: 4 FMA accumulators of 16 floats, a masked load for the tail (no scalar loop). */
__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
           acc3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
        acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), acc2);
        acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), acc3);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}
#endif

static aios_dot_fn g_dot = aios__dot_ref;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void pick(void) {
    const char *e = getenv("AIOS_KERNELS");
    if (e && !strcmp(e, "ref")) return;
#if defined(__x86_64__)
    if (aios_cpu()->avx2 && aios_cpu()->fma) g_dot = dot_avx2;
    if (aios_cpu()->avx512f && !(e && !strcmp(e, "avx2"))) g_dot = dot_avx512;
#endif
}
aios_dot_fn aios__dot(void) {
    pthread_once(&g_once, pick);
    return g_dot;
}

/* better(a, b): a ranks before b */
static inline bool better(const mhit *a, const mhit *b) {
    return a->score > b->score || (a->score == b->score && a->row < b->row);
}

/* Min-heap on "worst first" so the root is the hit to evict. */
static void heap_push(mhit *h, int32_t *n, int32_t k, mhit x) {
    if (*n < k) {
        int32_t i = (*n)++;
        h[i] = x;
        while (i > 0) {
            int32_t p = (i - 1) / 2;
            if (!better(&h[p], &h[i])) break;
            mhit t = h[p];
            h[p] = h[i];
            h[i] = t;
            i = p;
        }
        return;
    }
    if (!better(&x, &h[0])) return;
    h[0] = x;
    int32_t i = 0;
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < *n && better(&h[w], &h[l])) w = l;
        if (r < *n && better(&h[w], &h[r])) w = r;
        if (w == i) break;
        mhit t = h[w];
        h[w] = h[i];
        h[i] = t;
        i = w;
    }
}

static int cmp_hit(const void *a, const void *b) {
    const mhit *x = a, *y = b;
    if (better(x, y)) return -1;
    if (better(y, x)) return 1;
    return 0;
}

void aios__hits_sort(mhit *h, int32_t n) {
    qsort(h, (size_t)n, sizeof *h, cmp_hit);
}

void aios__exact_search(const mtable *t, const float *q, const mfilter *f, int64_t r0, int64_t r1, int32_t k,
                        float threshold, int n_threads, mhit *hits, int32_t *n_out) {
    *n_out = 0;
    if (k <= 0 || r1 <= r0 || t->dim <= 0) return;
    aios_dot_fn dot = aios__dot();
    const int64_t dim = t->dim;
    int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
    /* below ~16k dot products the thread start-up costs more than it saves */
    if ((r1 - r0) * dim < (int64_t)1 << 22) nt = 1;
    if (nt > 64) nt = 64;
    mhit *all = malloc((size_t)nt * (size_t)k * sizeof *all);
    int32_t cnt[64] = {0};
    if (!all) { /* no memory for per-thread heaps: one thread, the caller's array */
        nt = 1;
    }
    if (nt == 1) {
        mhit *h = all ? all : hits;
        int32_t n = 0;
        for (int64_t r = r0; r < r1; r++) {
            if (!aios__mf_pass(t, f, r)) continue;
            float s = dot(q, t->emb + r * dim, dim) * t->inv_norm[r];
            if (s >= threshold) heap_push(h, &n, k, (mhit){r, s});
        }
        if (h != hits) memcpy(hits, h, (size_t)n * sizeof *h);
        free(all);
        aios__hits_sort(hits, n);
        *n_out = n;
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        int tn = omp_get_num_threads();
        int64_t span = (r1 - r0 + tn - 1) / tn;
        int64_t a = r0 + span * tid, b = AIOS_MIN(r1, a + span);
        mhit *h = all + (size_t)tid * (size_t)k;
        int32_t n = 0;
        for (int64_t r = a; r < b; r++) {
            if (!aios__mf_pass(t, f, r)) continue;
            float s = dot(q, t->emb + r * dim, dim) * t->inv_norm[r];
            if (s >= threshold) heap_push(h, &n, k, (mhit){r, s});
        }
        cnt[tid] = n;
    }
    int32_t n = 0;
    for (int i = 0; i < nt; i++)
        for (int32_t j = 0; j < cnt[i]; j++) heap_push(hits, &n, k, all[(size_t)i * (size_t)k + (size_t)j]);
    free(all);
    aios__hits_sort(hits, n);
    *n_out = n;
}
