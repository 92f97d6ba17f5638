/*
 * search.c — exact cosine top-k with filters.
 *
 * score(q, x) = dot(q̂, x) * (1/|x|): the query is normalised once, each row keeps 1/|x|, so a
 * search is one dot product per candidate row.  Filters (category, source, time range, minimum
 * quality, liveness) are tested before the dot product, so the top-k are drawn only from rows
 * that pass: k hits come back whenever k rows pass the filters and the threshold.
 *
 * Kernel: the dot product of the compute kernels' selected tier (src/kernels: AVX-512 or AVX2
 * with four FMA accumulators, or the scalar reference; AIOS_KERNELS=ref|avx2|avx512 picks one).
 * Threads: OpenMP splits the row range; each thread keeps a bounded min-heap of its k best,
 * then the heaps are merged and sorted (score desc, row asc — deterministic ties).
 */
#include "memory/memory_internal.h"

#include <math.h>
#include <omp.h>

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
    aios_dot_fn dot = aios_kernels_dot();
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
