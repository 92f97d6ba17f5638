/*
 * sample.c — logits processors and the seeded draw.
 *
 * Order (as transformers applies its processors and warpers): repetition penalty, presence /
 * frequency penalties, temperature, top-k, top-p, min-p, then one inverse-CDF draw over the
 * surviving tokens.  Greedy (temperature 0) skips the warpers and draws nothing.
 *  - Probabilities are computed in double from max-subtracted logits, so very peaked
 *    distributions and large vocabularies lose nothing to float rounding.
 *  - Candidates are sorted by probability only when top-k or top-p needs an order (top-k alone
 *    uses a partial selection); ties order by lower id so results never depend on qsort.
 *  - The draw walks candidates in descending probability order (or id order when unsorted)
 *    with u * total, total being the kept mass; this avoids renormalizing.
 * References: Holtzman et al. 2019 (nucleus), Keskar et al. 2019 (CTRL repetition penalty),
 * transformers generation/logits_process.py, Nguyen et al. 2024 (min-p).
 */
#include "engine/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* ---------------------------------------------------------------- RNG: splitmix64 + xoshiro256** */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void aios_rng_seed(aios_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t aios_rng_next(aios_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double aios_rng_uniform(aios_rng *r) { return (double)(aios_rng_next(r) >> 11) * 0x1.0p-53; }

/* ---------------------------------------------------------------- sampler */

typedef struct {
    double p;
    int32_t id;
} cand;

struct aios_sampler {
    int64_t n_vocab;
    cand *c;          /* (n_vocab) */
    uint32_t *count;  /* (n_vocab) occurrences in the history */
    int32_t *touched; /* ids whose count is non-zero, to clear them cheaply */
};

aios_status aios_sampler_create(int64_t n_vocab, aios_sampler **out) {
    *out = NULL;
    if (n_vocab <= 0 || n_vocab > (1 << 26)) return aios__err(AIOS_ERR_RANGE, "sampler: vocabulary of %lld", (long long)n_vocab);
    aios_sampler *s = calloc(1, sizeof *s);
    if (!s) return aios__err(AIOS_ERR_NOMEM, "sampler");
    s->n_vocab = n_vocab;
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
    s->count = calloc((size_t)n_vocab, sizeof *s->count);
    s->touched = malloc((size_t)n_vocab * sizeof *s->touched);
    if (!s->c || !s->count || !s->touched) {
        aios_sampler_free(s);
        return aios__err(AIOS_ERR_NOMEM, "sampler");
    }
    *out = s;
    return AIOS_OK;
}

void aios_sampler_free(aios_sampler *s) {
    if (!s) return;
    free(s->c), free(s->count), free(s->touched);
    free(s);
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Moves the k best candidates (by cmp_cand) to the front, in order: a heap of the k best so far
 * whose root is the worst of them, O(n log k); then the k are sorted. */
static void heap_down(cand *h, size_t k, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && cmp_cand(&h[l], &h[w]) > 0) w = l;
        if (r < k && cmp_cand(&h[r], &h[w]) > 0) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void select_top(cand *c, size_t n, size_t k) {
    if (k < n) {
        for (size_t i = k / 2; i-- > 0;) heap_down(c, k, i);
        for (size_t i = k; i < n; i++)
            if (cmp_cand(&c[i], &c[0]) < 0) { /* better than the worst kept */
                c[0] = c[i];
                heap_down(c, k, 0);
            }
    } else {
        k = n;
    }
    qsort(c, k, sizeof *c, cmp_cand);
}

int32_t aios_sample(aios_sampler *s, float *logits, const int32_t *history, size_t n_hist, const aios_sampling *p,
                    aios_rng *rng, float *probs_out) {
    const int64_t V = s->n_vocab;
    /* penalties over the distinct ids of the history */
    if (n_hist && (p->repetition_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f)) {
        size_t nt = 0;
        for (size_t i = 0; i < n_hist; i++) {
            int32_t id = history[i];
            if (id < 0 || id >= V) continue;
            if (!s->count[id]++) s->touched[nt++] = id;
        }
        for (size_t i = 0; i < nt; i++) {
            int32_t id = s->touched[i];
            float l = logits[id];
            if (p->repetition_penalty != 1.0f && p->repetition_penalty > 0)
                l = l > 0 ? l / p->repetition_penalty : l * p->repetition_penalty;
            l -= p->presence_penalty + p->frequency_penalty * (float)s->count[id];
            logits[id] = l;
            s->count[id] = 0;
        }
    }
    if (!(p->temperature > 0)) { /* greedy */
        int32_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = (int32_t)i;
        if (probs_out) {
            memset(probs_out, 0, (size_t)V * sizeof *probs_out);
            probs_out[best] = 1.0f;
        }
        return best;
    }
    /* softmax(logits / T) in double */
    double mx = -INFINITY;
    for (int64_t i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    double inv_t = 1.0 / (double)p->temperature, sum = 0;
    size_t n = 0;
    for (int64_t i = 0; i < V; i++) {
        double e = exp(((double)logits[i] - mx) * inv_t);
        if (e > 0) {
            s->c[n].p = e;
            s->c[n].id = (int32_t)i;
            n++;
            sum += e;
        }
    }
    if (n == 0) { /* all -inf: nothing sensible, fall back to id 0 */
        if (probs_out) memset(probs_out, 0, (size_t)V * sizeof *probs_out);
        return 0;
    }
    for (size_t i = 0; i < n; i++) s->c[i].p /= sum;
    int sorted = 0;
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        select_top(s->c, n, (size_t)p->top_k);
        n = (size_t)p->top_k;
        sorted = 1;
    }
    if (p->top_p > 0 && p->top_p < 1.0f) {
        if (!sorted) qsort(s->c, n, sizeof *s->c, cmp_cand);
        sorted = 1;
        double mass = 0, tot = 0;
        for (size_t i = 0; i < n; i++) tot += s->c[i].p;
        size_t keep = 0;
        /* keep token i while the mass before it is below top_p (of the mass left by top-k) */
        while (keep < n && mass < (double)p->top_p * tot) mass += s->c[keep++].p;
        if (keep == 0) keep = 1;
        n = keep;
    }
    if (p->min_p > 0 && p->min_p <= 1.0f) {
        double pmax = 0;
        for (size_t i = 0; i < n; i++)
            if (s->c[i].p > pmax) pmax = s->c[i].p;
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
            if (s->c[i].p >= (double)p->min_p * pmax) s->c[w++] = s->c[i];
        n = w ? w : 1;
    }
    double tot = 0;
    for (size_t i = 0; i < n; i++) tot += s->c[i].p;
    if (probs_out) {
        memset(probs_out, 0, (size_t)V * sizeof *probs_out);
        for (size_t i = 0; i < n; i++) probs_out[s->c[i].id] = (float)(s->c[i].p / tot);
    }
    double u = aios_rng_uniform(rng) * tot, acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += s->c[i].p;
        if (u < acc) return s->c[i].id;
    }
    return s->c[n - 1].id; /* rounding: u landed past the last cumulative sum */
}
