/*
 * hnsw.c — Hierarchical Navigable Small World graph for approximate cosine k-NN.
 *
 * Reference: Y. A. Malkov, D. A. Yashunin, "Efficient and robust approximate nearest neighbor
 * search using Hierarchical Navigable Small World graphs", IEEE TPAMI 2018 (arXiv:1603.09320):
 * Algorithm 1 (INSERT), 2 (SEARCH-LAYER), 4 (SELECT-NEIGHBORS-HEURISTIC), 5 (K-NN-SEARCH).
 *
 * Key decisions:
 *  - Node i is row i of the store's table, so the graph needs no label array and stays valid
 *    while rows are only appended; deleted rows stay in the graph as waypoints and are simply
 *    not collected (their MR_LIVE bit is clear).  Compaction renumbers rows and carries the
 *    graph over (aios__hnsw_renumber: links to dropped nodes replaced from their own links).
 *    Rows without an embedding (or dead before insertion) get level -1: not in the graph.
 *  - Distance d = 1 - cos; the query is unit length, rows carry 1/|x|.
 *  - Levels: floor(-ln(U) * mL), mL = 1/ln(M); layer 0 keeps up to M0 = 2M links (paper §4.1);
 *    a new node takes M links on every layer (Alg. 1), lists fill to M0 through back-links.
 *  - Neighbour choice by the heuristic (Alg. 4, without extendCandidates/keepPruned), also when
 *    a neighbour list overflows and must shrink.  After a build and at compaction, nodes that
 *    pruning left unreachable on layer 0 are linked back (reconnect()).
 *  - Filtered search navigates through every node but collects only nodes passing the filter,
 *    so the ef-bounded result list fills with admissible rows (like hnswlib's filter functor).
 *  - Parallel build: OpenMP over new nodes; a neighbour list is read or written only under its
 *    node's lock (striped mutexes), never two at once; the entry point under a global lock,
 *    held for the whole insertion of a node that raises the top level (as hnswlib does).
 *  - Visited sets are epoch-stamped u8 arrays in per-thread scratch (allocated once per build
 *    or search call, never per visit) so searches on one handle can run in parallel.
 *  - Kernels: the store's dot product, AVX-512 / AVX2 chosen at run time (search.c).
 *
 * File (little-endian): "AIOSHNSW" u32 version=1, u32 dim, u32 M, u32 M0, u32 efc, u32 pad,
 * u64 n, i64 entry, i32 max_level, u32 pad; i8 level[n]; u32 l0[n][1+M0] (count, links);
 * for each node with level > 0 in order: u32 up[level][1+M]; u32 CRC32C of all before it.
 */
#include "memory/memory_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <unistd.h>

#define N_LOCKS 4096
#define MAX_LEVEL 16
#define POOL 8

struct hnsw {
    const mtable *t;
    int M, M0, efc;
    double mL;
    int64_t n, cap;
    int8_t *level;   /* (cap) -1 = not in the graph */
    uint32_t *l0;    /* (cap, 1 + M0) */
    uint32_t **up;   /* (cap) -> (level, 1 + M) */
    int64_t entry;
    int max_level;
    uint64_t rng;
    pthread_mutex_t locks[N_LOCKS];
    pthread_mutex_t glock;
    pthread_mutex_t pool_lock;
    struct scratch *pool[POOL]; /* idle search scratch, reused so a query allocates nothing big */
    int n_pool;
};

static inline uint32_t *links(const hnsw *h, int64_t node, int layer) {
    return layer == 0 ? h->l0 + (size_t)node * (size_t)(h->M0 + 1)
                      : h->up[node] + (size_t)(layer - 1) * (size_t)(h->M + 1);
}
static inline int maxlinks(const hnsw *h, int layer) { return layer == 0 ? h->M0 : h->M; }

static inline float dist_q(const hnsw *h, const float *q, int64_t node, aios_dot_fn dot) {
    const mtable *t = h->t;
    return 1.0f - dot(q, t->emb + (size_t)node * (size_t)t->dim, t->dim) * t->inv_norm[node];
}
static inline float dist_nn(const hnsw *h, int64_t a, int64_t b, aios_dot_fn dot) {
    const mtable *t = h->t;
    return 1.0f - dot(t->emb + (size_t)a * (size_t)t->dim, t->emb + (size_t)b * (size_t)t->dim, t->dim) *
                      t->inv_norm[a] * t->inv_norm[b];
}

/* ---- small heaps of (dist, id) ---- */
typedef struct {
    float d;
    uint32_t id;
} cand;
typedef struct {
    cand *a;
    int n, cap;
    int max; /* 1: max-heap (results), 0: min-heap (candidates) */
} cheap;
static inline bool above(const cheap *h, const cand *x, const cand *y) {
    return h->max ? x->d > y->d : x->d < y->d;
}
static bool ch_push(cheap *h, cand c) {
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        cand *a = realloc(h->a, (size_t)cap * sizeof *a);
        if (!a) return false;
        h->a = a;
        h->cap = cap;
    }
    int i = h->n++;
    h->a[i] = c;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!above(h, &h->a[i], &h->a[p])) break;
        cand tmp = h->a[p];
        h->a[p] = h->a[i];
        h->a[i] = tmp;
        i = p;
    }
    return true;
}
static cand ch_pop(cheap *h) {
    cand top = h->a[0];
    h->a[0] = h->a[--h->n];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < h->n && above(h, &h->a[l], &h->a[w])) w = l;
        if (r < h->n && above(h, &h->a[r], &h->a[w])) w = r;
        if (w == i) break;
        cand tmp = h->a[w];
        h->a[w] = h->a[i];
        h->a[i] = tmp;
        i = w;
    }
    return top;
}

/* Per-thread scratch, allocated once per build or search call: nothing is allocated per visit.
 * The visited set is an epoch-stamped array: node v is visited in this pass iff vis[v] == epoch,
 * so starting a pass is one increment instead of clearing n bits (cleared every 255 passes).
 * One byte per node: at 1M rows the array is 1 MB and stays in L2 (4 bytes made the stamp
 * lookups of a query miss to L3: 0.38 vs 0.26 ms for faiss at ef 64 on a 16-core Xeon). */
typedef struct scratch {
    uint8_t *vis; /* (n) */
    int64_t vis_n;
    uint8_t epoch;
    cheap C, W;
    cand *sel, *mine, *eps;
    uint32_t *buf;
    float *q;
    int sel_cap;
    int64_t nd;   /* distance evaluations (search cost, for the store's AUTO choice) */
    int64_t skip; /* a node searches treat as absent (held-out probes), -1 = none */
} scratch;

static bool scratch_init(scratch *s, int64_t n, int M0, int efc, int32_t dim) {
    memset(s, 0, sizeof *s);
    s->vis_n = n + 1;
    s->vis = calloc((size_t)s->vis_n, sizeof *s->vis);
    s->C.max = 0;
    s->W.max = 1;
    s->skip = -1;
    s->buf = malloc((size_t)(M0 + 2) * sizeof *s->buf);
    s->mine = malloc((size_t)(M0 + 2) * sizeof *s->mine);
    s->eps = malloc((size_t)(efc + 2) * sizeof *s->eps);
    s->q = malloc((size_t)(dim > 0 ? dim : 1) * sizeof *s->q);
    return s->vis && s->buf && s->mine && s->eps && s->q;
}
static void scratch_free(scratch *s) {
    free(s->vis);
    free(s->C.a);
    free(s->W.a);
    free(s->sel);
    free(s->mine);
    free(s->eps);
    free(s->buf);
    free(s->q);
}
static inline void new_pass(scratch *s) {
    if (++s->epoch == 0) { /* wrapped: stale stamps could collide */
        memset(s->vis, 0, (size_t)s->vis_n * sizeof *s->vis);
        s->epoch = 1;
    }
    if (s->skip >= 0 && s->skip < s->vis_n) s->vis[s->skip] = s->epoch;
}
static inline bool visit(scratch *s, uint32_t id) {
    if (s->vis[id] == s->epoch) return false;
    s->vis[id] = s->epoch;
    return true;
}

/* Scratch from the handle's pool (sized for the current n), or a new one; NULL when out of
 * memory.  Given back with pool_put.  Single adds and queries thus allocate nothing big. */
static scratch *pool_get(hnsw *h) {
    scratch *sp = NULL;
    pthread_mutex_lock(&h->pool_lock);
    if (h->n_pool) sp = h->pool[--h->n_pool];
    pthread_mutex_unlock(&h->pool_lock);
    if (sp && sp->vis_n <= h->n) { /* the graph grew since: this one is too small */
        scratch_free(sp);
        free(sp);
        sp = NULL;
    }
    if (!sp) {
        sp = malloc(sizeof *sp);
        if (!sp) return NULL;
        if (!scratch_init(sp, h->n, h->M0, h->efc, h->t->dim)) {
            scratch_free(sp);
            free(sp);
            return NULL;
        }
    }
    return sp;
}
static void pool_put(hnsw *h, scratch *sp) {
    pthread_mutex_lock(&h->pool_lock);
    if (h->n_pool < POOL) {
        h->pool[h->n_pool++] = sp;
        sp = NULL;
    }
    pthread_mutex_unlock(&h->pool_lock);
    if (sp) {
        scratch_free(sp);
        free(sp);
    }
}

/* Copies node's links at `layer` into s->buf under its lock; returns the count. */
static int read_links(hnsw *h, scratch *s, int64_t node, int layer, bool locked) {
    pthread_mutex_t *mx = &h->locks[node % N_LOCKS];
    if (locked) pthread_mutex_lock(mx);
    uint32_t *L = links(h, node, layer);
    int c = L[0] > (uint32_t)maxlinks(h, layer) ? maxlinks(h, layer) : (int)L[0];
    memcpy(s->buf, L + 1, (size_t)c * sizeof(uint32_t));
    if (locked) pthread_mutex_unlock(mx);
    return c;
}

/* Algorithm 2: SEARCH-LAYER.  On return s->W holds up to ef nearest (admissible when f != NULL).
 * `limit` bounds node ids (nodes >= limit are not yet inserted by this pass). */
static void search_layer(hnsw *h, scratch *s, const float *q, const cand *eps, int n_eps, int ef, int layer,
                         const mfilter *f, bool locked, aios_dot_fn dot) {
    new_pass(s);
    s->C.n = s->W.n = 0;
    for (int i = 0; i < n_eps; i++) {
        if (!visit(s, eps[i].id)) continue;
        ch_push(&s->C, eps[i]);
        if (!f || aios__mf_pass(h->t, f, eps[i].id)) ch_push(&s->W, eps[i]);
    }
    while (s->C.n) {
        cand c = ch_pop(&s->C);
        if (s->W.n >= ef && c.d > s->W.a[0].d) break;
        int nc = read_links(h, s, c.id, layer, locked);
        const float *emb = h->t->emb;
        size_t dim = (size_t)h->t->dim;
        /* the unvisited neighbours first, then their distances with the rows fetched PF ahead
         * (a row is a new stream the hardware prefetcher cannot guess; its first lines are
         * asked for while earlier rows are compared) */
        int nu = 0;
        for (int i = 0; i < nc; i++)
            if (visit(s, s->buf[i])) s->buf[nu++] = s->buf[i];
        enum { PF = 3 };
        for (int i = 0; i < nu && i < PF; i++) {
            const float *nx = emb + (size_t)s->buf[i] * dim;
            __builtin_prefetch(nx);
            __builtin_prefetch(nx + 16);
        }
        for (int i = 0; i < nu; i++) {
            uint32_t e = s->buf[i];
            if (i + PF < nu) {
                const float *nx = emb + (size_t)s->buf[i + PF] * dim;
                __builtin_prefetch(nx);
                __builtin_prefetch(nx + 16);
            }
            float d = dist_q(h, q, e, dot);
            s->nd++;
            if (s->W.n < ef || d < s->W.a[0].d) {
                ch_push(&s->C, (cand){d, e});
                if (!f || aios__mf_pass(h->t, f, e)) {
                    ch_push(&s->W, (cand){d, e});
                    if (s->W.n > ef) ch_pop(&s->W);
                }
            }
        }
    }
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->id < y->id ? -1 : x->id > y->id);
}

/* Algorithm 4 (heuristic): from candidates c[0..n) (any order), keep up to m that are closer to
 * the base than to any already kept.  Result in c[0..ret), nearest first. */
static int select_heuristic(hnsw *h, cand *c, int n, int m, aios_dot_fn dot) {
    qsort(c, (size_t)n, sizeof *c, cmp_cand);
    if (n <= m) return n;
    int kept = 0;
    for (int i = 0; i < n && kept < m; i++) {
        bool good = true;
        for (int j = 0; j < kept; j++)
            if (dist_nn(h, c[i].id, c[j].id, dot) < c[i].d) {
                good = false;
                break;
            }
        if (good) c[kept++] = c[i];
    }
    return kept;
}

static bool sel_reserve(scratch *s, int n) {
    if (n <= s->sel_cap) return true;
    cand *a = realloc(s->sel, (size_t)n * sizeof *a);
    if (!a) return false;
    s->sel = a;
    s->sel_cap = n;
    return true;
}

/* Adds `node` to the links of `nb` at `layer`, shrinking by the heuristic when full. */
static void add_link(hnsw *h, scratch *s, uint32_t nb, uint32_t node, int layer, float d, aios_dot_fn dot) {
    pthread_mutex_t *mx = &h->locks[nb % N_LOCKS];
    pthread_mutex_lock(mx);
    uint32_t *L = links(h, nb, layer);
    int m = maxlinks(h, layer);
    int c = (int)L[0];
    for (int i = 0; i < c; i++)
        if (L[1 + i] == node) {
            pthread_mutex_unlock(mx);
            return;
        }
    if (c < m) {
        L[1 + c] = node;
        L[0] = (uint32_t)(c + 1);
    } else if (sel_reserve(s, m + 1)) {
        for (int i = 0; i < c; i++) s->sel[i] = (cand){dist_nn(h, nb, L[1 + i], dot), L[1 + i]};
        s->sel[c] = (cand){d, node};
        int k = select_heuristic(h, s->sel, c + 1, m, dot);
        for (int i = 0; i < k; i++) L[1 + i] = s->sel[i].id;
        L[0] = (uint32_t)k;
    }
    pthread_mutex_unlock(mx);
}

/* Algorithm 1: INSERT node (its level already assigned and storage allocated). */
static void insert(hnsw *h, scratch *s, int64_t node, bool locked, aios_dot_fn dot) {
    const mtable *t = h->t;
    int lvl = h->level[node];
    float *q = s->q;
    const float *x = t->emb + (size_t)node * (size_t)t->dim;
    for (int32_t i = 0; i < t->dim; i++) q[i] = x[i] * t->inv_norm[node];

    pthread_mutex_lock(&h->glock);
    int64_t ep = h->entry;
    int top = h->max_level;
    bool hold = lvl > top;
    if (ep < 0) { /* first node */
        h->entry = node;
        h->max_level = lvl;
        pthread_mutex_unlock(&h->glock);
        return;
    }
    if (!hold) pthread_mutex_unlock(&h->glock);

    cand cur = {dist_q(h, q, ep, dot), (uint32_t)ep};
    for (int layer = top; layer > lvl; layer--) { /* greedy descent, ef = 1 */
        bool changed = true;
        while (changed) {
            changed = false;
            int nc = read_links(h, s, cur.id, layer, locked);
            for (int i = 0; i < nc; i++) {
                float d = dist_q(h, q, s->buf[i], dot);
                if (d < cur.d) {
                    cur = (cand){d, s->buf[i]};
                    changed = true;
                }
            }
        }
    }
    cand *eps = s->eps; /* (efc) */
    int n_eps = 1;
    eps[0] = cur;
    for (int layer = AIOS_MIN(lvl, top); layer >= 0; layer--) {
        search_layer(h, s, q, eps, n_eps, h->efc, layer, NULL, locked, dot);
        if (!sel_reserve(s, s->W.n)) break;
        /* In a parallel build the node can already be reachable from itself: another thread
         * that met it on a layer above took it as a neighbour on this one, so the search may
         * return it.  It is no candidate for its own links (a self-link is corruption to
         * aios__hnsw_validate: `node N layer 0: bad link to N`, seen once in 2-thread builds). */
        int n = 0;
        for (int i = 0; i < s->W.n; i++)
            if (s->W.a[i].id != (uint32_t)node) s->sel[n++] = s->W.a[i];
        if (!n) continue;
        /* the candidates seed the next layer's entry points */
        memcpy(eps, s->sel, (size_t)n * sizeof(cand));
        n_eps = n;
        /* Alg. 1: the new node takes M links on every layer; M0 only bounds lists that grow
         * through back-links (as in the paper and hnswlib).  Halves the back-link updates. */
        int k = select_heuristic(h, s->sel, n, h->M, dot);
        pthread_mutex_t *mx = &h->locks[node % N_LOCKS];
        pthread_mutex_lock(mx);
        uint32_t *L = links(h, node, layer);
        for (int i = 0; i < k; i++) L[1 + i] = s->sel[i].id;
        L[0] = (uint32_t)k;
        pthread_mutex_unlock(mx);
        /* copy: add_link reuses s->sel */
        cand *mine = s->mine; /* (M0 + 2) >= k */
        memcpy(mine, s->sel, (size_t)k * sizeof *mine);
        for (int i = 0; i < k; i++) add_link(h, s, mine[i].id, (uint32_t)node, layer, mine[i].d, dot);
    }
    if (hold) {
        h->entry = node;
        h->max_level = lvl;
        pthread_mutex_unlock(&h->glock);
    }
}

aios_status aios__hnsw_new(const mtable *t, int M, int efc, uint64_t seed, hnsw **out) {
    *out = NULL;
    if (M < 2 || M > 256 || efc < 1 || efc > 100000)
        return aios__err(AIOS_ERR_INVALID_ARG, "hnsw: M=%d ef_construction=%d out of range", M, efc);
    hnsw *h = calloc(1, sizeof *h);
    if (!h) return aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
    h->t = t;
    h->M = M;
    h->M0 = 2 * M;
    h->efc = efc;
    h->mL = 1.0 / log((double)M);
    h->entry = -1;
    h->max_level = -1;
    h->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < N_LOCKS; i++) pthread_mutex_init(&h->locks[i], NULL);
    pthread_mutex_init(&h->glock, NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    *out = h;
    return AIOS_OK;
}

void aios__hnsw_free(hnsw *h) {
    if (!h) return;
    for (int64_t i = 0; i < h->n; i++) free(h->up[i]);
    free(h->up);
    free(h->l0);
    free(h->level);
    for (int i = 0; i < N_LOCKS; i++) pthread_mutex_destroy(&h->locks[i]);
    pthread_mutex_destroy(&h->glock);
    for (int i = 0; i < h->n_pool; i++) {
        scratch_free(h->pool[i]);
        free(h->pool[i]);
    }
    pthread_mutex_destroy(&h->pool_lock);
    free(h);
}

int64_t aios__hnsw_rows(const hnsw *h) { return h ? h->n : 0; }
int aios__hnsw_m(const hnsw *h) { return h->M; }
int aios__hnsw_efc(const hnsw *h) { return h->efc; }
void aios__hnsw_set_table(hnsw *h, const mtable *t) { h->t = t; }

static aios_status reserve(hnsw *h, int64_t n) {
    if (n <= h->cap) return AIOS_OK;
    int64_t cap = h->cap ? h->cap : 1024;
    while (cap < n) cap *= 2;
    int8_t *lv = realloc(h->level, (size_t)cap);
    if (!lv) return aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
    h->level = lv;
    uint32_t **up = realloc(h->up, (size_t)cap * sizeof *up);
    if (!up) return aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
    h->up = up;
    uint64_t bytes;
    if (!aios__mul_ok((uint64_t)cap, (uint64_t)(h->M0 + 1) * 4, &bytes) || bytes > SIZE_MAX / 2)
        return aios__err(AIOS_ERR_NOMEM, "hnsw: too many nodes");
    uint32_t *l0 = realloc(h->l0, (size_t)bytes);
    if (!l0) return aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
    h->l0 = l0;
    h->cap = cap;
    return AIOS_OK;
}

static uint64_t rnd(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static aios_status extend(hnsw *h, int n_threads) {
    const mtable *t = h->t;
    int64_t n0 = h->n, n1 = t->n;
    if (n1 <= n0) return AIOS_OK;
    AIOS_TRY(reserve(h, n1));
    for (int64_t i = n0; i < n1; i++) {
        h->up[i] = NULL;
        h->l0[(size_t)i * (size_t)(h->M0 + 1)] = 0;
        if ((t->flags[i] & (MR_LIVE | MR_EMB)) != (MR_LIVE | MR_EMB) || t->inv_norm[i] == 0) {
            h->level[i] = -1;
            continue;
        }
        double u = ((double)(rnd(&h->rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        int l = (int)floor(-log(u) * h->mL);
        if (l > MAX_LEVEL) l = MAX_LEVEL;
        h->level[i] = (int8_t)l;
        if (l > 0) {
            h->up[i] = calloc((size_t)l * (size_t)(h->M + 1), sizeof(uint32_t));
            if (!h->up[i]) {
                for (int64_t j = n0; j <= i; j++) free(h->up[j]);
                return aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
            }
        }
    }
    h->n = n1;
    aios_dot_fn dot = aios_kernels_dot();
    /* the first nodes go in one by one so that parallel inserts start from a real graph */
    int64_t i = n0;
    int nt = n_threads > 0 ? n_threads : 1;
    if (n1 - i < 2000) nt = 1;
    if (nt == 1 || i < 1000) {
        scratch *sp = pool_get(h);
        if (!sp) return aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
        for (; i < n1 && (nt == 1 || i < 1000); i++)
            if (h->level[i] >= 0) insert(h, sp, i, false, dot);
        pool_put(h, sp);
    }
    if (i >= n1) return AIOS_OK;
    int64_t start = i;
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        scratch ts;
        if (!scratch_init(&ts, n1, h->M0, h->efc, t->dim)) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 64)
        for (int64_t j = start; j < n1; j++)
            if (!failed && h->level[j] >= 0) insert(h, &ts, j, nt > 1, dot);
        scratch_free(&ts);
    }
    if (failed) return aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
    return AIOS_OK;
}

static void bfs(const hnsw *h, uint8_t *seen, uint32_t *queue, int64_t *qh, int64_t *qt) {
    while (*qh < *qt) {
        const uint32_t *L = links(h, queue[(*qh)++], 0);
        for (uint32_t a = 0; a < L[0]; a++)
            if (!seen[L[1 + a]]) {
                seen[L[1 + a]] = 1;
                queue[(*qt)++] = L[1 + a];
            }
    }
}

/* Layer 0 made reachable from the entry point.  Pruning leaves a few nodes that no list points
 * to (1 to 5 in 50k clustered rows; more once compaction drops nodes): a graph search can never
 * return them.  Each such node is linked from its nearest reachable out-neighbour (into a free
 * slot, else in place of that neighbour's farthest link whose target has another in-link), or,
 * having none, from the nearest node a layer-0 search from the entry point finds; a replaced
 * link can still orphan a node (in-links from unreachable nodes), so the pass repeats (at most
 * 4 times).  Returns the links added.  Best effort: without memory for the BFS, nothing. */
static int64_t reconnect(hnsw *h, aios_dot_fn dot) {
    if (h->entry < 0 || h->n <= 0) return 0;
    const size_t nn = (size_t)h->n;
    uint8_t *seen = malloc(nn);
    uint32_t *queue = malloc(nn * sizeof *queue);
    uint32_t *indeg = calloc(nn, sizeof *indeg); /* layer-0 in-links of each node */
    scratch *sp = pool_get(h);
    int64_t added = 0;
    for (int64_t x = 0; indeg && x < h->n; x++) {
        if (h->level[x] < 0) continue;
        const uint32_t *L = links(h, x, 0);
        for (uint32_t a = 0; a < L[0]; a++) indeg[L[1 + a]]++;
    }
    for (int round = 0; seen && queue && indeg && round < 4; round++) {
        memset(seen, 0, nn);
        int64_t qh = 0, qt = 0, replaced = 0;
        seen[h->entry] = 1;
        queue[qt++] = (uint32_t)h->entry;
        bfs(h, seen, queue, &qh, &qt);
        for (int64_t u = 0; u < h->n; u++) {
            if (h->level[u] < 0 || seen[u]) continue;
            const uint32_t *Lu = links(h, u, 0);
            int64_t v = -1, vf = -1;
            float dv = INFINITY, dvf = INFINITY;
            for (uint32_t a = 0; a < Lu[0]; a++) {
                uint32_t x = Lu[1 + a];
                if (!seen[x]) continue;
                float d = dist_nn(h, u, x, dot);
                if (d < dv) dv = d, v = x;
                if (links(h, x, 0)[0] < (uint32_t)h->M0 && d < dvf) dvf = d, vf = x;
            }
            if (vf >= 0) v = vf;
            if (v < 0 && sp) { /* no reachable out-neighbour: the nearest node a layer-0 search
                                * from the entry point finds (it only walks reachable nodes) */
                const mtable *t = h->t;
                const float *x = t->emb + (size_t)u * (size_t)t->dim;
                for (int32_t i = 0; i < t->dim; i++) sp->q[i] = x[i] * t->inv_norm[u];
                cand e = {dist_q(h, sp->q, h->entry, dot), (uint32_t)h->entry};
                search_layer(h, sp, sp->q, &e, 1, h->efc, 0, NULL, false, dot);
                for (int i = 0; i < sp->W.n; i++)
                    if (sp->W.a[i].id != (uint32_t)u && seen[sp->W.a[i].id] && sp->W.a[i].d < dv) dv = sp->W.a[i].d, v = sp->W.a[i].id;
            }
            if (v < 0) continue;
            uint32_t *Lv = links(h, v, 0);
            if (Lv[0] < (uint32_t)h->M0) {
                Lv[1 + Lv[0]++] = (uint32_t)u;
            } else {
                /* the farthest link whose target keeps another in-link (replacing a node's only
                 * in-link would orphan it: the passes then chase each other); failing that, the
                 * farthest */
                uint32_t far = 0, far_any = 0;
                float df = -INFINITY, df_any = -INFINITY;
                for (uint32_t a = 0; a < Lv[0]; a++) {
                    float d = dist_nn(h, v, Lv[1 + a], dot);
                    if (d > df_any) df_any = d, far_any = a;
                    if (indeg[Lv[1 + a]] >= 2 && d > df) df = d, far = a;
                }
                if (df == -INFINITY) far = far_any;
                indeg[Lv[1 + far]]--;
                Lv[1 + far] = (uint32_t)u;
                replaced++;
            }
            indeg[u]++;
            added++;
            seen[u] = 1;
            queue[qt++] = (uint32_t)u;
            bfs(h, seen, queue, &qh, &qt);
        }
        if (!replaced) break;
    }
    if (sp) pool_put(h, sp);
    free(seen);
    free(queue);
    free(indeg);
    return added;
}

aios_status aios__hnsw_extend(hnsw *h, int n_threads) {
    int64_t n0 = h->n;
    AIOS_TRY(extend(h, n_threads));
    /* after a build or a batch of at least 1/64 of the graph (the BFS walks every link: ~0.1 s
     * at 1M rows, too much to pay per small batch; compaction reconnects in any case) */
    if (h->n - n0 >= 1000 && (h->n - n0) * 64 >= h->n) reconnect(h, aios_kernels_dot());
    return AIOS_OK;
}

/* New links of node i (new numbering) at `layer`, from old node r's list: every surviving link is
 * kept, and each link to a dropped node is replaced by the nearest of the dropped nodes' own
 * links (the two-hop neighbours a deletion leaves behind) not linked already.  Measured on 4k x
 * 64 random-normal with 15% dropped, recall@10 at ef 24 (test_compaction_keeps_the_graph):
 * this 0.877, a graph rebuilt from scratch 0.875, dropping the links without repair 0.839, and
 * re-selecting the whole list by the heuristic 0.785 (it prunes the back-links that make nodes
 * reachable).  Returns true when it repaired. */
static bool carry_links(hnsw *h, const hnsw *old, scratch *s, const int64_t *newrow, int64_t r, int layer,
                        aios_dot_fn dot) {
    uint32_t i = (uint32_t)newrow[r];
    const uint32_t *O = links(old, r, layer);
    uint32_t *L = links(h, i, layer);
    int m = maxlinks(h, layer), c = 0, lost = 0;
    new_pass(s);
    visit(s, i);
    for (uint32_t a = 0; a < O[0]; a++) {
        int64_t e = newrow[O[1 + a]];
        if (e >= 0) {
            L[1 + c++] = (uint32_t)e;
            visit(s, (uint32_t)e);
        } else {
            lost++;
        }
    }
    L[0] = (uint32_t)c;
    if (!lost) return false;
    /* candidates: the dropped neighbours' own links */
    int n = 0;
    for (uint32_t a = 0; a < O[0]; a++) {
        if (newrow[O[1 + a]] >= 0) continue;
        const uint32_t *D = links(old, O[1 + a], layer);
        for (uint32_t b = 0; b < D[0]; b++) {
            int64_t x = newrow[D[1 + b]];
            if (x >= 0 && visit(s, (uint32_t)x) && sel_reserve(s, n + 1)) s->sel[n++] = (cand){dist_nn(h, i, x, dot), (uint32_t)x};
        }
    }
    qsort(s->sel, (size_t)n, sizeof *s->sel, cmp_cand);
    for (int k = 0, room = AIOS_MIN(lost, m - c); k < n && room > 0; k++, room--) L[1 + c++] = s->sel[k].id;
    L[0] = (uint32_t)c;
    return true;
}

aios_status aios__hnsw_renumber(const hnsw *old, const mtable *t, const int64_t *newrow, int n_threads, hnsw **out,
                                int64_t *repaired) {
    *out = NULL;
    if (repaired) *repaired = 0;
    int64_t n_new = 0;
    for (int64_t r = 0; r < old->n; r++)
        if (newrow[r] >= 0) {
            if (newrow[r] != n_new) return aios__err(AIOS_ERR_INVALID_ARG, "hnsw: renumber: rows out of order");
            n_new++;
        }
    if (n_new > t->n) return aios__err(AIOS_ERR_INVALID_ARG, "hnsw: renumber: %lld nodes for %lld rows", (long long)n_new, (long long)t->n);
    hnsw *h;
    AIOS_TRY(aios__hnsw_new(t, old->M, old->efc, old->rng, &h));
    aios_status s = n_new ? reserve(h, n_new) : AIOS_OK;
    for (int64_t r = 0; r < old->n && !s; r++) {
        int64_t i = newrow[r];
        if (i < 0) continue;
        int lv = old->level[r];
        h->level[i] = (int8_t)lv;
        h->up[i] = NULL;
        h->l0[(size_t)i * (size_t)(h->M0 + 1)] = 0;
        h->n = i + 1; /* so that a failure below frees what exists */
        if (lv > 0 && !(h->up[i] = calloc((size_t)lv * (size_t)(h->M + 1), sizeof(uint32_t))))
            s = aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
    }
    if (s) {
        aios__hnsw_free(h);
        return s;
    }
    h->n = n_new;
    if (old->entry >= 0 && newrow[old->entry] >= 0) {
        h->entry = newrow[old->entry];
        h->max_level = old->max_level;
    } else { /* the entry point was dropped: the first node on the highest layer left */
        for (int64_t i = 0; i < n_new; i++)
            if (h->level[i] > h->max_level) {
                h->max_level = h->level[i];
                h->entry = i;
            }
    }
    aios_dot_fn dot = aios_kernels_dot();
    int nt = n_threads > 0 ? n_threads : 1, failed = 0;
    int64_t fixed = 0;
#pragma omp parallel num_threads(nt) reduction(+ : fixed)
    {
        scratch ts;
        if (!scratch_init(&ts, n_new, h->M0, h->efc, t->dim)) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 256)
        for (int64_t r = 0; r < old->n; r++) {
            if (failed || newrow[r] < 0) continue;
            for (int layer = 0; layer <= old->level[r]; layer++) fixed += carry_links(h, old, &ts, newrow, r, layer, dot);
        }
        scratch_free(&ts);
    }
    if (failed) {
        aios__hnsw_free(h);
        return aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
    }
    reconnect(h, dot);
    if (repaired) *repaired = fixed;
    *out = h;
    return AIOS_OK;
}

/* Algorithm 5: K-NN-SEARCH with filters. */
void aios__hnsw_search(const hnsw *hc, const float *q, const mfilter *f, int32_t k, int ef, float threshold,
                       mhit *hits, int32_t *n_out, int64_t skip, int64_t *evals) {
    hnsw *h = (hnsw *)hc; /* reads only; locks are not taken: no concurrent writer */
    *n_out = 0;
    if (!h || h->entry < 0 || k <= 0) return;
    if (ef < k) ef = k;
    aios_dot_fn dot = aios_kernels_dot();
    scratch *sp = pool_get(h);
    if (!sp) return;
    scratch s = *sp; /* by value in this frame; written back below */
    s.nd = 1;
    s.skip = skip;
    cand cur = {dist_q(h, q, h->entry, dot), (uint32_t)h->entry};
    for (int layer = h->max_level; layer > 0; layer--) {
        bool changed = true;
        while (changed) {
            changed = false;
            int nc = read_links(h, &s, cur.id, layer, false);
            s.nd += nc;
            for (int i = 0; i < nc; i++) {
                if (s.buf[i] == (uint64_t)skip) continue;
                float d = dist_q(h, q, s.buf[i], dot);
                if (d < cur.d) {
                    cur = (cand){d, s.buf[i]};
                    changed = true;
                }
            }
        }
    }
    search_layer(h, &s, q, &cur, 1, ef, 0, f, false, dot);
    int n = 0;
    mhit tmp;
    (void)tmp;
    /* W is a max-heap of distance; take all then sort */
    mhit *all = malloc((size_t)(s.W.n + 1) * sizeof *all);
    if (all) {
        for (int i = 0; i < s.W.n; i++) {
            float score = 1.0f - s.W.a[i].d;
            if (score >= threshold) all[n++] = (mhit){s.W.a[i].id, score};
        }
        aios__hits_sort(all, n);
        if (n > k) n = k;
        memcpy(hits, all, (size_t)n * sizeof *all);
        free(all);
    }
    *n_out = n;
    if (evals) *evals = s.nd;
    s.skip = -1;
    *sp = s;
    pool_put(h, sp);
}

/* ---- persistence ---- */
static aios_status put(int fd, const void *p, size_t n, uint32_t *crc, const char *path) {
    const uint8_t *b = p;
    *crc = aios__crc32c(*crc, p, n);
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return aios__err(AIOS_ERR_IO, "hnsw: %s: write: %s", path, strerror(errno));
        }
        b += w;
        n -= (size_t)w;
    }
    return AIOS_OK;
}

/* Writes `rows` link lists of `width` u32 (count, links) with the slots past each count zeroed:
 * those hold stale links of pruned lists (or were never written), and the file is a function of
 * the graph alone (two saves of one graph are the same bytes). */
static aios_status put_lists(int fd, const uint32_t *L, int64_t rows, int width, uint32_t *crc, const char *path) {
    const int64_t CH = AIOS_MIN(rows, 1024);
    uint32_t *buf = malloc((size_t)(CH > 0 ? CH : 1) * (size_t)width * 4);
    if (!buf) return aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
    aios_status st = AIOS_OK;
    for (int64_t r0 = 0; !st && r0 < rows; r0 += CH) {
        int64_t n = AIOS_MIN(CH, rows - r0);
        memset(buf, 0, (size_t)n * (size_t)width * 4);
        for (int64_t r = 0; r < n; r++) {
            const uint32_t *src = L + (size_t)(r0 + r) * (size_t)width;
            uint32_t c = src[0] < (uint32_t)width ? src[0] : (uint32_t)width - 1;
            memcpy(buf + (size_t)r * (size_t)width, src, (size_t)(c + 1) * 4);
        }
        st = put(fd, buf, (size_t)n * (size_t)width * 4, crc, path);
    }
    free(buf);
    return st;
}

typedef struct {
    char magic[8];
    uint32_t version, dim, M, M0, efc, pad0;
    uint64_t n;
    int64_t entry;
    int32_t max_level;
    uint32_t pad1;
} hfile;

aios_status aios__hnsw_save(const hnsw *h, const char *path, uint64_t *bytes, uint32_t *crc_out) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return aios__err(AIOS_ERR_IO, "hnsw: %s: %s", path, strerror(errno));
    hfile hd;
    memset(&hd, 0, sizeof hd);
    memcpy(hd.magic, "AIOSHNSW", 8);
    hd.version = 1;
    hd.dim = (uint32_t)h->t->dim;
    hd.M = (uint32_t)h->M;
    hd.M0 = (uint32_t)h->M0;
    hd.efc = (uint32_t)h->efc;
    hd.n = (uint64_t)h->n;
    hd.entry = h->entry;
    hd.max_level = h->max_level;
    uint32_t crc = 0;
    aios_status st = put(fd, &hd, sizeof hd, &crc, path);
    if (!st) st = put(fd, h->level, (size_t)h->n, &crc, path);
    if (!st) st = put_lists(fd, h->l0, h->n, h->M0 + 1, &crc, path);
    for (int64_t i = 0; !st && i < h->n; i++)
        if (h->level[i] > 0) st = put_lists(fd, h->up[i], h->level[i], h->M + 1, &crc, path);
    uint32_t c = crc;
    if (!st) st = put(fd, &c, 4, &crc, path);
    if (!st && fsync(fd) != 0) st = aios__err(AIOS_ERR_IO, "hnsw: %s: fsync: %s", path, strerror(errno));
    off_t sz = lseek(fd, 0, SEEK_END);
    close(fd);
    if (st) {
        unlink(path);
        return st;
    }
    *bytes = (uint64_t)sz;
    *crc_out = c;
    return AIOS_OK;
}

aios_status aios__hnsw_load(const mtable *t, const char *path, hnsw **out) {
    *out = NULL;
    aios_map m;
    AIOS_TRY(aios__map_file(path, &m));
    aios_status st = AIOS_OK;
    hnsw *h = NULL;
    hfile hd;
    if (m.size < sizeof hd + 4) {
        st = aios__err(AIOS_ERR_CORRUPT, "hnsw: %s: truncated (%zu bytes)", path, m.size);
        goto done;
    }
    uint32_t want;
    memcpy(&want, m.data + m.size - 4, 4);
    if (aios__crc32c(0, m.data, m.size - 4) != want) {
        st = aios__err(AIOS_ERR_CORRUPT, "hnsw: %s: checksum mismatch", path);
        goto done;
    }
    memcpy(&hd, m.data, sizeof hd);
    if (memcmp(hd.magic, "AIOSHNSW", 8) || hd.version != 1) {
        st = aios__err(AIOS_ERR_FORMAT, "hnsw: %s: not an index file of version 1", path);
        goto done;
    }
    if ((int32_t)hd.dim != t->dim || hd.M0 != 2 * hd.M || hd.n > (uint64_t)t->n || hd.max_level > MAX_LEVEL ||
        hd.entry < -1 || hd.entry >= (int64_t)hd.n) {
        st = aios__err(AIOS_ERR_CORRUPT, "hnsw: %s: header does not fit the store (dim %u, %llu nodes)", path, hd.dim,
                       (unsigned long long)hd.n);
        goto done;
    }
    st = aios__hnsw_new(t, (int)hd.M, (int)hd.efc, 0, &h);
    if (st) goto done;
    if ((st = reserve(h, (int64_t)hd.n ? (int64_t)hd.n : 1))) goto done;
    size_t off = sizeof hd, n = (size_t)hd.n, row = (size_t)(h->M0 + 1) * 4;
    size_t avail = m.size - 4;
    if (avail - off < n || (avail - off - n) / row < n) {
        st = aios__err(AIOS_ERR_CORRUPT, "hnsw: %s: truncated", path);
        goto done;
    }
    memcpy(h->level, m.data + off, n);
    off += n;
    memcpy(h->l0, m.data + off, n * row);
    off += n * row;
    for (size_t i = 0; i < n; i++) h->up[i] = NULL;
    h->n = (int64_t)n;
    for (size_t i = 0; i < n; i++) {
        int l = h->level[i];
        if (l < -1 || l > MAX_LEVEL) {
            st = aios__err(AIOS_ERR_CORRUPT, "hnsw: %s: node %zu has level %d", path, i, l);
            goto done;
        }
        if (l <= 0) continue;
        size_t sz = (size_t)l * (size_t)(h->M + 1) * 4;
        if (avail - off < sz) {
            st = aios__err(AIOS_ERR_CORRUPT, "hnsw: %s: truncated at node %zu", path, i);
            goto done;
        }
        h->up[i] = malloc(sz);
        if (!h->up[i]) {
            st = aios__err(AIOS_ERR_NOMEM, "hnsw: out of memory");
            goto done;
        }
        memcpy(h->up[i], m.data + off, sz);
        off += sz;
    }
    if (off != avail) {
        st = aios__err(AIOS_ERR_CORRUPT, "hnsw: %s: %zu trailing bytes", path, avail - off);
        goto done;
    }
    h->entry = hd.entry;
    h->max_level = hd.max_level;
    /* the structure is trusted only after validation: searches index with these numbers */
    st = aios__hnsw_validate(h, NULL);
done:
    aios__unmap_file(&m);
    if (st) {
        aios__hnsw_free(h);
        return aios__err_prefix(st, "%s", "index");
    }
    *out = h;
    return AIOS_OK;
}

aios_status aios__hnsw_validate(const hnsw *h, FILE *report) {
    int64_t in_graph = 0;
    for (int64_t i = 0; i < h->n; i++) {
        int lv = h->level[i];
        if (lv < 0) continue;
        in_graph++;
        if (lv > h->max_level)
            return aios__err(AIOS_ERR_CORRUPT, "hnsw: node %lld has level %d above the top %d", (long long)i, lv, h->max_level);
        if (!(h->t->flags[i] & MR_EMB))
            return aios__err(AIOS_ERR_CORRUPT, "hnsw: node %lld has no embedding", (long long)i);
        for (int layer = 0; layer <= lv; layer++) {
            const uint32_t *L = links(h, i, layer);
            if (L[0] > (uint32_t)maxlinks(h, layer)) /* unsigned: a count >= 2^31 must not pass as negative */
                return aios__err(AIOS_ERR_CORRUPT, "hnsw: node %lld layer %d has %u links (max %d)", (long long)i, layer,
                                 L[0], maxlinks(h, layer));
            for (uint32_t a = 0; a < L[0]; a++) {
                uint32_t e = L[1 + a];
                if ((int64_t)e >= h->n || e == (uint32_t)i || h->level[e] < layer)
                    return aios__err(AIOS_ERR_CORRUPT, "hnsw: node %lld layer %d: bad link to %u", (long long)i, layer, e);
                for (uint32_t b = 0; b < a; b++)
                    if (L[1 + b] == e)
                        return aios__err(AIOS_ERR_CORRUPT, "hnsw: node %lld layer %d: duplicate link to %u", (long long)i,
                                         layer, e);
            }
        }
    }
    if (in_graph && (h->entry < 0 || h->level[h->entry] != h->max_level))
        return aios__err(AIOS_ERR_CORRUPT, "hnsw: entry point %lld is not on the top layer", (long long)h->entry);
    if (report && in_graph) {
        /* reachability on layer 0 from the entry point (BFS) */
        uint8_t *seen = calloc((size_t)h->n, 1);
        uint32_t *queue = malloc((size_t)h->n * sizeof *queue);
        if (seen && queue) {
            int64_t qh = 0, qt = 0;
            queue[qt++] = (uint32_t)h->entry;
            seen[h->entry] = 1;
            bfs(h, seen, queue, &qh, &qt);
            fprintf(report, "hnsw: %lld nodes, M=%d, top layer %d, %lld reachable from the entry point on layer 0\n",
                    (long long)in_graph, h->M, h->max_level, (long long)qt);
        }
        free(seen);
        free(queue);
    }
    return AIOS_OK;
}
