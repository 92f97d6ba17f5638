/* test_memory.c — the memory store: checksums, WAL and manifest codecs against damage, the
 * store's operations, one-writer locking, exact search against a double-precision brute
 * force, HNSW recall, filters, and crash safety (writers killed with SIGKILL at random points).
 * The numpy reference and pyarrow/DuckDB interop checks are in tests/py/test_memory.py. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "format/parquet.h"
#include "memory/memory_internal.h"
#include "test.h"
#include "tiers.h"

static char g_path[1024];
static const char *tdir(const char *name) {
    snprintf(g_path, sizeof g_path, "%s/%s", aios_test_tmpdir(), name);
    return g_path;
}

static uint64_t g_rng = 88172645463325252ull;
static uint64_t xr(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static float gauss(void) {
    double u = ((double)(xr() >> 11) + 0.5) / 9007199254740992.0, v = ((double)(xr() >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static void test_crc32c(void) {
    CHECK(aios__crc32c(0, "123456789", 9) == 0xE3069283u);
    CHECK(aios__crc32c_ref(0, "123456789", 9) == 0xE3069283u);
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)xr();
    for (int off = 0; off < 9; off++)
        for (int n = 0; n < 300; n += 7) CHECK(aios__crc32c(0, buf + off, (size_t)n) == aios__crc32c_ref(0, buf + off, (size_t)n));
    /* incremental == one shot */
    CHECK(aios__crc32c(aios__crc32c(0, buf, 100), buf + 100, 900) == aios__crc32c(0, buf, 1000));
}

static void test_dot_kernels(void) {
    float a[131], b[131];
    for (int i = 0; i < 131; i++) a[i] = gauss(), b[i] = gauss();
    /* every tier this CPU has (the store searches with the kernels' selected one) */
    static const char *tiers[] = {"ref", "avx2", "avx512"};
    for (int t = 0; t < 3; t++) {
        if (!t_use_tier(tiers[t])) continue;
        aios_dot_fn d = aios_kernels_dot();
        for (int n = 0; n <= 131; n++) {
            double ref = 0;
            for (int i = 0; i < n; i++) ref += (double)a[i] * b[i];
            CHECKF(fabs(d(a, b, n) - ref) < 1e-4 * (1 + fabs(ref)), "%s n=%d %f vs %f", tiers[t], n, d(a, b, n), ref);
        }
    }
    aios_kernels_use(getenv("AIOS_KERNELS"));
}

/* ---- WAL codec ---- */
typedef struct {
    int n_add, n_del;
    char last_id[64];
} wal_count;
static aios_status count_cb(void *u, int type, const aios_memory *m, uint64_t off) {
    wal_count *c = u;
    if (type == WAL_DELETE) c->n_del++;
    else c->n_add++;
    snprintf(c->last_id, sizeof c->last_id, "%s", m->memory_id);
    return AIOS_OK;
}

static void test_wal_codec_and_damage(void) {
    aios_buf b = {0};
    uint8_t h[WAL_HEADER_SIZE];
    aios__wal_header(h, 7);
    aios_buf_append(&b, h, sizeof h);
    float e[4] = {1, 2, 3, 4};
    aios_memory m = {.memory_id = "x1", .timestamp_us = 5, .content = "hé", .embedding = e, .dim = 4, .has_metadata = 1,
                     .category = "c", .has_quality = 1, .quality_score = 0.5f};
    CHECK_OK(aios__wal_encode(&b, WAL_ADD, &m, NULL));
    size_t one = b.len;
    CHECK_OK(aios__wal_encode(&b, WAL_DELETE, NULL, "x1"));
    size_t valid;
    int64_t nrec;
    wal_count c = {0};
    CHECK_OK(aios__wal_parse(b.data, b.len, 7, count_cb, &c, &valid, &nrec, "t"));
    CHECK(c.n_add == 1 && c.n_del == 1 && nrec == 2 && valid == b.len);
    /* generation mismatch */
    CHECK(aios__wal_parse(b.data, b.len, 8, NULL, NULL, &valid, &nrec, "t") == AIOS_ERR_CORRUPT);
    /* every truncation is either a clean prefix (torn tail) or, inside the header, corrupt */
    for (size_t n = 0; n < b.len; n++) {
        aios_status s = aios__wal_parse(b.data, n, 7, NULL, NULL, &valid, &nrec, "t");
        if (n < WAL_HEADER_SIZE) CHECKF(s == AIOS_ERR_CORRUPT, "truncated to %zu", n);
        else CHECKF(s == AIOS_OK && valid == (n < one ? WAL_HEADER_SIZE : one) && nrec == (n < one ? 0 : 1), "truncated to %zu: %s", n,
                    aios_last_error());
    }
    /* every single bit flip is detected (never silently accepted as different data) */
    for (size_t i = 0; i < b.len; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            b.data[i] ^= (uint8_t)(1 << bit);
            wal_count c2 = {0};
            aios_status s = aios__wal_parse(b.data, b.len, 7, count_cb, &c2, &valid, &nrec, "t");
            CHECKF(s == AIOS_ERR_CORRUPT, "flip at byte %zu bit %d accepted", i, bit);
            b.data[i] ^= (uint8_t)(1 << bit);
        }
    aios_buf_free(&b);
}

static void test_manifest_damage(void) {
    const char *d = tdir("man");
    mkdir(d, 0755);
    manifest m;
    memset(&m, 0, sizeof m);
    m.version = 3;
    m.dim = 8;
    snprintf(m.model, sizeof m.model, "minilm");
    m.wal_gen = 2;
    m.next_file = 5;
    mseg g = {.rows = 10, .bytes = 100, .crc = 0xdeadbeef};
    snprintf(g.file, sizeof g.file, "seg-000001.parquet");
    int64_t dead[2] = {1, 7};
    g.dead = dead;
    g.n_dead = 2;
    m.segs = &g;
    m.n_segs = 1;
    CHECK_OK(aios__manifest_write(d, &m));
    manifest r;
    CHECK_OK(aios__manifest_read(d, &r));
    CHECK(r.version == 3 && r.dim == 8 && !strcmp(r.model, "minilm") && r.wal_gen == 2 && r.n_segs == 1);
    CHECK(r.segs[0].rows == 10 && r.segs[0].crc == 0xdeadbeef && r.segs[0].n_dead == 2 && r.segs[0].dead[1] == 7);
    aios__manifest_free(&r);
    char p[1100], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/MANIFEST", d);
    CHECK_OK(aios__read_file(p, &text, &len));
    for (size_t n = 0; n < len; n += 3) {
        manifest x;
        CHECKF(aios__manifest_parse(text, n, &x, "t") == AIOS_ERR_CORRUPT, "truncated to %zu accepted", n);
    }
    for (size_t i = 0; i < len; i++) {
        text[i] ^= 0x04;
        manifest x;
        aios_status s = aios__manifest_parse(text, len, &x, "t");
        CHECKF(s == AIOS_ERR_CORRUPT, "flip at %zu accepted", i);
        if (!s) aios__manifest_free(&x);
        text[i] ^= 0x04;
    }
    free(text);
}

/* ---- the store ---- */
static void make_mem(aios_memory *m, char *id, char *content, float *e, int dim, int i) {
    memset(m, 0, sizeof *m);
    sprintf(id, "m%05d", i);
    sprintf(content, "memory %d", i);
    m->memory_id = id;
    m->content = content;
    m->timestamp_us = 1700000000000000LL + i;
    for (int k = 0; k < dim; k++) e[k] = gauss();
    m->embedding = e;
    m->dim = dim;
    m->has_metadata = 1;
    m->category = i % 3 == 0 ? "work" : i % 3 == 1 ? "home" : NULL;
    m->source = "test";
    m->has_quality = 1;
    m->quality_score = (float)(i % 10) / 10.0f;
}

static void test_store_basics_and_lock(void) {
    const char *d = tdir("basic");
    aios_store_params p = aios_store_default_params();
    p.create = 1;
    aios_store *st, *st2, *rd;
    CHECK_OK(aios_store_open(d, &p, &st));
    CHECK(aios_store_open(d, &p, &st2) == AIOS_ERR_BUSY);
    CHECK(strstr(aios_last_error(), "another writer") != NULL);
    char id[32], content[64], got[AIOS_MEMORY_ID_MAX];
    float e[8];
    aios_memory m;
    for (int i = 0; i < 20; i++) {
        make_mem(&m, id, content, e, 8, i);
        CHECK_OK(aios_store_add(st, &m, got));
        CHECK(!strcmp(got, id));
    }
    make_mem(&m, id, content, e, 8, 3);
    CHECK(aios_store_add(st, &m, got) == AIOS_ERR_EXISTS);
    m.dim = 7;
    m.memory_id = "other";
    CHECK(aios_store_add(st, &m, got) == AIOS_ERR_SHAPE);
    m.memory_id = NULL; /* generated id */
    m.dim = 8;
    CHECK_OK(aios_store_add(st, &m, got));
    CHECK(!strncmp(got, "mem_", 4) && strlen(got) == 20);
    CHECK_OK(aios_store_delete(st, "m00004"));
    CHECK(aios_store_delete(st, "m00004") == AIOS_ERR_NOT_FOUND);
    aios_memory u;
    make_mem(&u, id, content, e, 8, 5);
    u.content = "updated five";
    u.has_metadata = 0;
    CHECK_OK(aios_store_update(st, &u));
    /* a reader sees the committed state while the writer holds the lock */
    aios_store_params rp = aios_store_default_params();
    rp.read_only = 1;
    CHECK_OK(aios_store_open(d, &rp, &rd));
    aios_memory g;
    CHECK(aios_store_get(rd, "m00004", &g) == AIOS_ERR_NOT_FOUND);
    CHECK_OK(aios_store_get(rd, "m00005", &g));
    CHECK(!strcmp(g.content, "updated five") && !g.has_metadata);
    CHECK_OK(aios_store_get(rd, "m00007", &g));
    CHECK(!strcmp(g.content, "memory 7") && g.has_quality && g.quality_score == 0.7f && !strcmp(g.category, "home"));
    CHECK(g.timestamp_us == 1700000000000007LL);
    aios_store_stats s;
    CHECK_OK(aios_store_stats_get(rd, &s));
    CHECK(s.live == 20 && s.dim == 8);
    CHECK(aios_store_delete(rd, "m00001") == AIOS_ERR_INVALID_ARG); /* read-only */
    aios_store_close(rd);
    aios_store_close(st);
    /* after close the lock is free again, and everything replays */
    CHECK_OK(aios_store_open(d, &p, &st));
    CHECK_OK(aios_store_get(st, "m00005", &g));
    CHECK(!strcmp(g.content, "updated five"));
    int64_t cur = 0, n = 0;
    while (aios_store_next(st, &cur, &g) == AIOS_OK) n++;
    CHECK(n == 20);
    /* a big batch holding one id twice is refused before anything is written */
    aios_memory *bm = calloc(100, sizeof *bm);
    static char bid[100][16], bc[100][32];
    static float be[100][8];
    for (int i = 0; i < 100; i++) make_mem(&bm[i], bid[i], bc[i], be[i], 8, 1000 + i);
    bm[77].memory_id = bm[12].memory_id;
    CHECK(aios_store_add_batch(st, bm, 100, NULL) == AIOS_ERR_EXISTS);
    free(bm);
    aios_store_close(st);
    CHECK_OK(aios_store_check(d, 10, NULL, NULL));
    CHECK_OK(aios_store_open(d, &p, &st));
    aios_store_stats_get(st, &s);
    CHECK(s.live == 20);
    aios_store_close(st);
}

/* A segment of several row groups is decoded in parallel and appended in order: every row comes
 * back in place, and a damaged row group decoded by a worker thread fails the load with that
 * thread's message (not a crash, not a partial import). */
static void test_multi_row_group_segments(void) {
    char d[4096], d2[4096], exp[4200], bad[4200];
    snprintf(d, sizeof d, "%s", tdir("bigseg"));
    snprintf(d2, sizeof d2, "%s", tdir("bigseg-import"));
    snprintf(exp, sizeof exp, "%s/../bigseg-export.parquet", d);
    snprintf(bad, sizeof bad, "%s/../bigseg-bad.parquet", d);
    aios_store_params p = aios_store_default_params();
    p.create = 1;
    p.hnsw_min_rows = 1 << 30;
    aios_store *st;
    CHECK_OK(aios_store_open(d, &p, &st));
    enum { N = 50000, B = 1000, DIM = 8 };
    aios_memory *bm = calloc(B, sizeof *bm);
    static char bid[B][16], bc[B][32];
    static float be[B][DIM];
    for (int b0 = 0; b0 < N; b0 += B) {
        for (int i = 0; i < B; i++) make_mem(&bm[i], bid[i], bc[i], be[i], DIM, b0 + i);
        CHECK_OK(aios_store_add_batch(st, bm, B, NULL));
    }
    free(bm);
    CHECK_OK(aios_store_flush(st)); /* one segment: 50k rows = 4 row groups */
    CHECK_OK(aios_store_export(st, exp));
    aios_store_close(st);
    CHECK_OK(aios_store_open(d, &p, &st));
    aios_memory g;
    int64_t cur = 0, n = 0;
    int bad_rows = 0;
    char want[32];
    while (aios_store_next(st, &cur, &g) == AIOS_OK) {
        snprintf(want, sizeof want, "m%05lld", (long long)n);
        if (strcmp(g.memory_id, want) || g.timestamp_us != 1700000000000000LL + n || g.quality_score != (float)(n % 10) / 10.0f)
            bad_rows++;
        n++;
    }
    CHECKF(n == N && bad_rows == 0, "%lld rows, %d out of place", (long long)n, bad_rows);
    aios_store_close(st);
    /* import of the export: the same rows */
    CHECK_OK(aios_store_open(d2, &p, &st));
    int64_t got = 0;
    CHECK_OK(aios_store_import(st, exp, &got));
    CHECK(got == N);
    CHECK_OK(aios_store_get(st, "m49999", &g));
    CHECK(!strcmp(g.content, "memory 49999"));
    /* garbage over the page header of the last row group's first column */
    aios_parquet_file *pf;
    CHECK_OK(aios_parquet_open(exp, &pf));
    int last = aios_pq_num_row_groups(pf) - 1;
    CHECK(last >= 3);
    int64_t off = aios_pq_chunk(pf, last, aios_pq_find_leaf(pf, "memory_id"))->data_page_offset;
    aios_parquet_close(pf);
    char *buf;
    size_t len;
    CHECK_OK(aios__read_file(exp, &buf, &len));
    memset(buf + off, 0xFF, 16);
    FILE *f = fopen(bad, "wb");
    CHECK(f && fwrite(buf, 1, len, f) == len);
    fclose(f);
    free(buf);
    aios_status s = aios_store_import(st, bad, &got);
    CHECKF(s == AIOS_ERR_CORRUPT && strstr(aios_last_error(), "page header"), "%d %s", s, aios_last_error());
    aios_store_stats ss;
    CHECK_OK(aios_store_stats_get(st, &ss));
    CHECK(ss.live == N); /* nothing of the bad file went in */
    aios_store_close(st);
}

/* recall@10 of HNSW mode (fixed ef) against exact search over queries Q (n x dim) */
static double hnsw_recall(aios_store *st, const float *Q, int n, int dim, int ef) {
    int found = 0, want = 0;
    for (int t = 0; t < n; t++) {
        aios_search_params ex = aios_search_default_params(), hn = aios_search_default_params();
        ex.mode = AIOS_SEARCH_EXACT;
        hn.mode = AIOS_SEARCH_HNSW;
        hn.ef_search = ef;
        aios_search_hit a[10], b[10];
        int32_t na = 0, nb = 0;
        if (aios_store_search(st, Q + (size_t)t * dim, dim, &ex, a, &na) || aios_store_search(st, Q + (size_t)t * dim, dim, &hn, b, &nb))
            return -1;
        for (int i = 0; i < nb; i++)
            for (int j = 0; j < na; j++) found += !strcmp(a[j].memory.memory_id, b[i].memory.memory_id);
        want += na;
    }
    return want ? (double)found / want : 0;
}

static char *slurp(const char *dir, const char *file, size_t *len) {
    char path[4200], *b = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (aios__read_file(path, &b, len)) return NULL;
    return b;
}

/* Compaction carries the graph over instead of rebuilding it: merging segments without deletions
 * leaves the index file byte for byte the same; after 15% deletions the repaired graph (links to
 * dropped nodes replaced by their two-hop neighbours) validates, reaches every node from the
 * entry point, and finds as much as a graph built from scratch on the same rows. */
static void test_compaction_keeps_the_graph(void) {
    char d[4096], d2[4096];
    snprintf(d, sizeof d, "%s", tdir("carry"));
    snprintf(d2, sizeof d2, "%s", tdir("carry-fresh"));
    enum { N = 4000, D = 64, NQ = 100, EF = 24 };
    aios_store_params p = aios_store_default_params();
    p.create = 1;
    p.sync = 0;
    p.hnsw_min_rows = 1000;
    p.checkpoint_rows = 1000; /* 4 segments */
    aios_store *st;
    CHECK_OK(aios_store_open(d, &p, &st));
    float *E = malloc((size_t)N * D * sizeof *E), *Q = malloc((size_t)NQ * D * sizeof *Q);
    char(*ids)[16] = malloc((size_t)N * 16), (*contents)[32] = malloc((size_t)N * 32);
    aios_memory *ms = calloc((size_t)N, sizeof *ms);
    for (int i = 0; i < N; i++) make_mem(&ms[i], ids[i], contents[i], E + (size_t)i * D, D, i);
    for (int i = 0; i < NQ * D; i++) Q[i] = gauss();
    for (int i = 0; i < N; i += 500) CHECK_OK(aios_store_add_batch(st, ms + i, 500, NULL));
    CHECK_OK(aios_store_build_index(st));
    CHECK_OK(aios_store_flush(st));
    manifest man;
    CHECK_OK(aios__manifest_read(d, &man));
    size_t l0 = 0, l1 = 0;
    char *before = slurp(d, man.index_file, &l0);
    CHECK(man.n_segs >= 4 && before);
    aios__manifest_free(&man);
    double r0 = hnsw_recall(st, Q, NQ, D, EF);
    CHECK_OK(aios_store_compact(st));
    CHECK_OK(aios__manifest_read(d, &man));
    char *after = slurp(d, man.index_file, &l1);
    CHECK(man.n_segs == 1);
    CHECKF(after && l0 == l1 && !memcmp(before, after, l0), "index changed by a compaction without deletions (%zu vs %zu bytes)", l0, l1);
    aios__manifest_free(&man);
    free(before);
    free(after);
    CHECK(hnsw_recall(st, Q, NQ, D, EF) == r0);
    /* 15% deleted, spread at random, then compacted */
    uint8_t *gone = calloc(N, 1);
    for (int i = 0; i < N; i++)
        if (xr() % 100 < 15) {
            gone[i] = 1;
            CHECK_OK(aios_store_delete(st, ids[i]));
        }
    CHECK_OK(aios_store_compact(st));
    double rc = hnsw_recall(st, Q, NQ, D, EF);
    aios_store_close(st);
    char *rep = NULL;
    size_t rl = 0;
    FILE *f = open_memstream(&rep, &rl);
    double crc;
    CHECK_OK(aios_store_check(d, 20, f, &crc));
    fclose(f);
    long long nodes = -1, reach = -2;
    const char *h = rep ? strstr(rep, "hnsw: ") : NULL;
    CHECKF(h && sscanf(h, "hnsw: %lld nodes, M=%*d, top layer %*d, %lld reachable", &nodes, &reach) == 2 && nodes == reach,
           "reachability after the repair: %s", rep ? rep : "(no report)");
    free(rep);
    /* the same rows in a fresh store, graph built from scratch */
    CHECK_OK(aios_store_open(d2, &p, &st));
    for (int i = 0; i < N; i++)
        if (!gone[i]) CHECK_OK(aios_store_add(st, &ms[i], NULL));
    CHECK_OK(aios_store_build_index(st));
    double rf = hnsw_recall(st, Q, NQ, D, EF);
    aios_store_close(st);
    printf("# compaction: recall@10 at ef %d: %.3f before deletions, %.3f carried and repaired, %.3f rebuilt\n", EF, r0, rc, rf);
    CHECKF(rc >= rf - 0.03, "carried graph %.3f vs rebuilt %.3f", rc, rf);
    free(gone);
    free(E);
    free(Q);
    free(ids);
    free(contents);
    free(ms);
}

/* brute force in double, the reference for exact search and filters */
typedef struct {
    int64_t i;
    double s;
} ref_hit;
static int cmp_ref(const void *a, const void *b) {
    const ref_hit *x = a, *y = b;
    return x->s > y->s ? -1 : x->s < y->s ? 1 : (x->i < y->i ? -1 : 1);
}

static void test_exact_search_and_filters(void) {
    const char *d = tdir("exact");
    aios_store_params p = aios_store_default_params();
    p.create = 1;
    p.sync = 0;
    aios_store *st;
    CHECK_OK(aios_store_open(d, &p, &st));
    enum { N = 3000, D = 40 };
    static float E[N][D];
    static char ids[N][16], contents[N][32];
    aios_memory *ms = calloc(N, sizeof *ms);
    for (int i = 0; i < N; i++) make_mem(&ms[i], ids[i], contents[i], E[i], D, i);
    CHECK_OK(aios_store_add_batch(st, ms, N, NULL));
    for (int i = 0; i < N; i += 17) CHECK_OK(aios_store_delete(st, ids[i]));
    float q[D];
    for (int t = 0; t < 20; t++) {
        for (int k = 0; k < D; k++) q[k] = gauss();
        double qn = 0;
        for (int k = 0; k < D; k++) qn += (double)q[k] * q[k];
        aios_search_params sp = aios_search_default_params();
        sp.top_k = 25;
        sp.mode = AIOS_SEARCH_EXACT;
        if (t % 2) sp.category = "work";
        if (t % 4 == 1) sp.min_quality = 0.5f;
        if (t % 5 == 2) sp.since_us = 1700000000000000LL + 1000, sp.until_us = 1700000000000000LL + 1100;
        if (t == 6) sp.threshold = 0.2f;
        ref_hit *ref = malloc(N * sizeof *ref);
        int nr = 0;
        for (int i = 0; i < N; i++) {
            if (i % 17 == 0) continue;
            if (sp.category && strcmp(ms[i].category ? ms[i].category : "", sp.category)) continue;
            if (ms[i].quality_score < sp.min_quality) continue;
            if (ms[i].timestamp_us < sp.since_us || ms[i].timestamp_us > sp.until_us) continue;
            double dot = 0, xn = 0;
            for (int k = 0; k < D; k++) dot += (double)q[k] * E[i][k], xn += (double)E[i][k] * E[i][k];
            double s = dot / sqrt(qn * xn);
            if (s < sp.threshold) continue;
            ref[nr++] = (ref_hit){i, s};
        }
        qsort(ref, (size_t)nr, sizeof *ref, cmp_ref);
        aios_search_hit hits[25];
        int32_t n;
        CHECK_OK(aios_store_search(st, q, D, &sp, hits, &n));
        CHECKF(n == (nr < 25 ? nr : 25), "query %d: %d hits, reference %d", t, n, nr);
        for (int32_t j = 0; j < n && j < nr; j++) {
            CHECKF(fabs(hits[j].score - ref[j].s) < 1e-5, "query %d rank %d: %f vs %f", t, j, hits[j].score, ref[j].s);
            /* the same memory unless two reference scores are within float noise */
            bool tie = (j > 0 && ref[j - 1].s - ref[j].s < 1e-5) || (j + 1 < nr && ref[j].s - ref[j + 1].s < 1e-5);
            CHECKF(tie || !strcmp(hits[j].memory.memory_id, ids[ref[j].i]), "query %d rank %d: %s vs %s", t, j,
                   hits[j].memory.memory_id, ids[ref[j].i]);
        }
        free(ref);
    }
    /* unknown category: nothing, not an error */
    aios_search_params sp = aios_search_default_params();
    sp.category = "nope";
    aios_search_hit hits[10];
    int32_t n = 5;
    CHECK_OK(aios_store_search(st, q, D, &sp, hits, &n));
    CHECK(n == 0);
    CHECK(aios_store_search(st, q, D - 1, &sp, hits, &n) == AIOS_ERR_SHAPE);
    free(ms);
    aios_store_close(st);
}

static void test_hnsw_recall_and_filters(void) {
    const char *d = tdir("hnsw");
    aios_store_params p = aios_store_default_params();
    p.create = 1;
    p.sync = 0;
    p.hnsw_min_rows = 1000; /* M, ef_construction, ef_search: the store's defaults */
    aios_store *st;
    CHECK_OK(aios_store_open(d, &p, &st));
    const char *env = getenv("AIOS_TEST_HNSW_N");
    int N = env ? atoi(env) : 5000;
    enum { D = 384 };
    float *E = malloc((size_t)N * D * sizeof *E);
    char(*ids)[16] = malloc((size_t)N * 16), (*contents)[32] = malloc((size_t)N * 32);
    aios_memory *ms = calloc((size_t)N, sizeof *ms);
    for (int i = 0; i < N; i++) make_mem(&ms[i], ids[i], contents[i], E + (size_t)i * D, D, i);
    CHECK_OK(aios_store_add_batch(st, ms, (size_t)N, NULL));
    double t0 = aios__now();
    CHECK_OK(aios_store_build_index(st));
    double tb = aios__now() - t0;
    aios_store_stats s;
    CHECK_OK(aios_store_stats_get(st, &s));
    CHECK(s.index_rows == N);
    /* deletes after the build: never returned */
    for (int i = 0; i < N; i += 10) CHECK_OK(aios_store_delete(st, ids[i]));
    /* adds after the build: kept in step */
    char id2[16] = "late", c2[32];
    float e2[D];
    aios_memory late;
    make_mem(&late, id2, c2, e2, D, N + 1);
    late.memory_id = "late";
    CHECK_OK(aios_store_add(st, &late, NULL));
    int Q = 100, found = 0, want = 0;
    float q[D];
    for (int t = 0; t < Q; t++) {
        for (int k = 0; k < D; k++) q[k] = gauss();
        aios_search_params ex = aios_search_default_params(), hn = aios_search_default_params();
        ex.mode = AIOS_SEARCH_EXACT;
        hn.mode = AIOS_SEARCH_HNSW; /* ef_search 0: the store's, tuned when the index was saved */
        aios_search_hit a[10], b[10];
        int32_t na, nb;
        CHECK_OK(aios_store_search(st, q, D, &ex, a, &na));
        CHECK_OK(aios_store_search(st, q, D, &hn, b, &nb));
        CHECK(na == 10 && nb == 10);
        for (int i = 0; i < nb; i++) {
            int id = atoi(b[i].memory.memory_id + 1);
            CHECKF(strcmp(b[i].memory.memory_id, "late") == 0 || id % 10 != 0, "deleted %s returned", b[i].memory.memory_id);
            for (int j = 0; j < na; j++)
                if (!strcmp(a[j].memory.memory_id, b[i].memory.memory_id)) found++;
        }
        want += na;
    }
    double recall = (double)found / want;
    manifest man;
    CHECK_OK(aios__manifest_read(d, &man));
    printf("# hnsw %d x %d (M %d, efC %d): build %.2fs, recall@10 %.4f at the tuned ef_search %d; AUTO uses %s\n", N, D,
           man.index_m, man.index_efc, tb, recall, man.index_efs, man.index_auto == 1 ? "the index" : "exact search");
    /* defaults recorded with the index; the tuned ef reached 0.95 on probes */
    CHECK(man.index_m == 32 && man.index_efc == 200 && man.index_efs >= 128 && man.index_efs <= 4096);
    /* random-normal at 5k: the graph needs more distances than a quarter of the rows: AUTO = exact */
    CHECK(man.index_auto == 2);
    aios__manifest_free(&man);
    CHECKF(recall >= 0.95, "recall@10 %.4f", recall);
    /* the late add is found by HNSW-mode search (exact tail) */
    aios_search_params hn = aios_search_default_params();
    hn.mode = AIOS_SEARCH_HNSW;
    hn.top_k = 1;
    aios_search_hit h1;
    int32_t n1;
    CHECK_OK(aios_store_search(st, e2, D, &hn, &h1, &n1));
    CHECK(n1 == 1 && !strcmp(h1.memory.memory_id, "late"));
    /* filters through the graph: k hits whenever k exist (category "work" is a third, and a
     * narrow time window leaves exactly 7 rows) */
    for (int t = 0; t < 10; t++) {
        for (int k = 0; k < D; k++) q[k] = gauss();
        aios_search_params fp = aios_search_default_params();
        fp.top_k = 10;
        fp.category = "work";
        aios_search_hit hh[10];
        int32_t nh;
        CHECK_OK(aios_store_search(st, q, D, &fp, hh, &nh));
        CHECK(nh == 10);
        for (int i = 0; i < nh; i++) CHECK(hh[i].memory.category && !strcmp(hh[i].memory.category, "work"));
        fp.category = NULL;
        fp.since_us = 1700000000000000LL + 101;
        fp.until_us = 1700000000000000LL + 108; /* rows 101..108 minus none deleted (110 is out) */
        CHECK_OK(aios_store_search(st, q, D, &fp, hh, &nh));
        CHECKF(nh == 8, "time window: %d hits", nh);
    }
    aios_store_close(st);
    /* persisted and reloaded; check validates links and measures recall */
    double rc;
    CHECK_OK(aios_store_check(d, 50, NULL, &rc));
    CHECKF(rc >= 0.9, "check recall %.3f", rc);
    /* reopened with an explicit ef_search: that one is used and recorded, not the tuned one */
    p.create = 0;
    p.hnsw_ef_search = 300;
    CHECK_OK(aios_store_open(d, &p, &st));
    CHECK_OK(aios_store_compact(st));
    aios_store_close(st);
    CHECK_OK(aios__manifest_read(d, &man));
    CHECKF(man.index_efs == 300 && man.index_m == 32, "ef_search %d M %d after compaction", man.index_efs, man.index_m);
    aios__manifest_free(&man);
    free(E);
    free(ids);
    free(contents);
    free(ms);
}

static void test_corrupt_index_detected(void) {
    /* flipping a byte of the persisted index: check reports it, search still answers exactly */
    const char *d = tdir("hnsw");
    manifest m;
    CHECK_OK(aios__manifest_read(d, &m));
    if (!m.index_file[0]) {
        aios__manifest_free(&m);
        SKIP("no index persisted");
    }
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", d, m.index_file);
    aios__manifest_free(&m);
    int fd = open(p, O_RDWR);
    CHECK(fd >= 0);
    uint8_t b;
    CHECK(pread(fd, &b, 1, 100) == 1);
    b ^= 0x10;
    CHECK(pwrite(fd, &b, 1, 100) == 1);
    close(fd);
    CHECK(aios_store_check(d, 10, NULL, NULL) == AIOS_ERR_CORRUPT);
    CHECK(strstr(aios_last_error(), "checksum") != NULL);
    aios_store_params rp = aios_store_default_params();
    rp.read_only = 1;
    aios_store *st;
    CHECK_OK(aios_store_open(d, &rp, &st));
    aios_store_stats s;
    CHECK_OK(aios_store_stats_get(st, &s));
    CHECK(s.index_rows == 0);
    aios_store_close(st);
}

static void corrupt_file(const char *path, long off, int truncate_to) {
    if (truncate_to >= 0) {
        CHECK(truncate(path, truncate_to) == 0);
        return;
    }
    int fd = open(path, O_RDWR);
    uint8_t b;
    struct stat sb;
    fstat(fd, &sb);
    if (off < 0) off += sb.st_size;
    CHECK(pread(fd, &b, 1, off) == 1);
    b ^= 0x01;
    CHECK(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

static void test_corrupt_wal_and_manifest_refused(void) {
    const char *d = tdir("damage");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", d);
    aios_store_params p = aios_store_default_params();
    p.create = 1;
    aios_store *st;
    CHECK_OK(aios_store_open(dir, &p, &st));
    char id[32], content[64];
    float e[8];
    aios_memory m;
    for (int i = 0; i < 5; i++) {
        make_mem(&m, id, content, e, 8, i);
        CHECK_OK(aios_store_add(st, &m, NULL));
    }
    aios_store_close(st);
    char wal[1100], man[1100], cmd[2400];
    snprintf(wal, sizeof wal, "%s/wal-000001.log", dir);
    snprintf(man, sizeof man, "%s/MANIFEST", dir);
    /* a flipped bit in the middle of the WAL: refused, by open and by check, naming the offset */
    snprintf(cmd, sizeof cmd, "cp %s %s.bak && cp %s %s.bak", wal, wal, man, man);
    CHECK(system(cmd) == 0);
    corrupt_file(wal, 100, -1);
    aios_store_params rp = aios_store_default_params();
    rp.read_only = 1;
    CHECK(aios_store_open(dir, &rp, &st) == AIOS_ERR_CORRUPT);
    CHECK(strstr(aios_last_error(), "offset") != NULL);
    CHECK(aios_store_open(dir, &p, &st) == AIOS_ERR_CORRUPT);
    CHECK(aios_store_check(dir, 10, NULL, NULL) == AIOS_ERR_CORRUPT);
    /* the last byte of the last record flipped: still corruption, not a torn tail */
    snprintf(cmd, sizeof cmd, "cp %s.bak %s", wal, wal);
    CHECK(system(cmd) == 0);
    corrupt_file(wal, -1, -1);
    CHECK(aios_store_open(dir, &rp, &st) == AIOS_ERR_CORRUPT);
    /* a WAL cut mid-record: the torn record is dropped, the 4 before it survive */
    snprintf(cmd, sizeof cmd, "cp %s.bak %s", wal, wal);
    CHECK(system(cmd) == 0);
    struct stat sb;
    stat(wal, &sb);
    corrupt_file(wal, 0, (int)sb.st_size - 5);
    CHECK_OK(aios_store_open(dir, &p, &st));
    aios_store_stats s;
    aios_store_stats_get(st, &s);
    CHECK(s.live == 4);
    aios_store_close(st);
    /* the manifest: a flipped bit or truncation is refused */
    corrupt_file(man, 30, -1);
    CHECK(aios_store_open(dir, &rp, &st) == AIOS_ERR_CORRUPT);
    CHECK(strstr(aios_last_error(), "MANIFEST") != NULL);
    snprintf(cmd, sizeof cmd, "cp %s.bak %s", man, man);
    CHECK(system(cmd) == 0);
    corrupt_file(man, 0, 50);
    CHECK(aios_store_open(dir, &rp, &st) == AIOS_ERR_CORRUPT);
}

/* ---- crash safety ---- */
#define CR_DIM 8
static void crash_mem(aios_memory *m, char *id, char *content, float *e, int n, unsigned seed) {
    memset(m, 0, sizeof *m);
    sprintf(id, "c%06d", n);
    sprintf(content, "crash %d seed %u %s", n, seed, seed % 5 == 0 ? "é日😀" : "");
    uint64_t z = seed * 2654435761u + 1;
    for (int k = 0; k < CR_DIM; k++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        e[k] = (float)((int)(z >> 40) % 1000 - 500) / 100.0f;
    }
    e[0] += 0.5f;
    m->memory_id = id;
    m->content = content;
    m->embedding = e;
    m->dim = CR_DIM;
    m->timestamp_us = (int64_t)seed * 1000;
    m->has_metadata = seed % 4 != 0;
    m->category = seed % 3 ? "a" : NULL;
    m->source = "crash";
    m->has_quality = 1;
    m->quality_score = (float)(seed % 100) / 100.0f;
}

enum { CR_MAX = 20000 };
static unsigned g_state[CR_MAX]; /* 0 = absent, else seed of the live version */

static void crash_child(const char *dir, int fd, unsigned seed, int next_id) {
    aios_store_params p = aios_store_default_params();
    p.create = 1;
    p.checkpoint_rows = 40; /* checkpoints (segment + manifest switch) happen often */
    p.hnsw_min_rows = 60;   /* and the index is built, persisted and extended */
    p.hnsw_ef_construction = 32;
    aios_store *st;
    if (aios_store_open(dir, &p, &st) != AIOS_OK) {
        dprintf(fd, "E %s\n", aios_last_error());
        _exit(3);
    }
    uint64_t z = seed;
    char id[32], content[96], line[128];
    float e[CR_DIM];
    for (;;) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(z >> 33);
        int op = r % 100;
        aios_memory m;
        if (op == 99) { /* now and then a compaction, killed mid-way too */
            if (write(fd, "C\n", 2) < 0) _exit(4);
            if (aios_store_compact(st) != AIOS_OK) {
                dprintf(fd, "E compact %s\n", aios_last_error());
                _exit(3);
            }
            continue;
        }
        if (op < 70 || next_id < 5) {
            unsigned s = r | 1;
            crash_mem(&m, id, content, e, next_id, s);
            int len = snprintf(line, sizeof line, "I A %d %u\n", next_id, s);
            if (write(fd, line, (size_t)len) < 0) _exit(4);
            if (aios_store_add(st, &m, NULL) != AIOS_OK) {
                dprintf(fd, "E add %s\n", aios_last_error());
                _exit(3);
            }
            len = snprintf(line, sizeof line, "K\n");
            if (write(fd, line, (size_t)len) < 0) _exit(4);
            next_id++;
        } else {
            int victim = (int)((r >> 8) % (unsigned)next_id);
            char vid[32];
            sprintf(vid, "c%06d", victim);
            aios_memory g;
            if (aios_store_get(st, vid, &g) != AIOS_OK) continue;
            if (op < 85) {
                int len = snprintf(line, sizeof line, "I D %d 0\n", victim);
                if (write(fd, line, (size_t)len) < 0) _exit(4);
                if (aios_store_delete(st, vid) != AIOS_OK) {
                    dprintf(fd, "E delete %s\n", aios_last_error());
                    _exit(3);
                }
            } else {
                unsigned s = (r >> 3) | 1;
                crash_mem(&m, id, content, e, victim, s);
                int len = snprintf(line, sizeof line, "I U %d %u\n", victim, s);
                if (write(fd, line, (size_t)len) < 0) _exit(4);
                if (aios_store_update(st, &m) != AIOS_OK) {
                    dprintf(fd, "E update %s\n", aios_last_error());
                    _exit(3);
                }
            }
            if (write(fd, "K\n", 2) < 0) _exit(4);
        }
    }
}

static bool matches(const aios_memory *g, int n, unsigned seed) {
    aios_memory m;
    char id[32], content[96];
    float e[CR_DIM];
    crash_mem(&m, id, content, e, n, seed);
    if (strcmp(g->memory_id, id) || !g->content || strcmp(g->content, content) || g->timestamp_us != m.timestamp_us) return false;
    if (!g->embedding || g->dim != CR_DIM || memcmp(g->embedding, e, sizeof e)) return false;
    if (g->has_metadata != m.has_metadata) return false;
    if (m.has_metadata) {
        if ((g->category == NULL) != (m.category == NULL) || (m.category && strcmp(g->category, m.category))) return false;
        if (!g->source || strcmp(g->source, "crash") || !g->has_quality || g->quality_score != m.quality_score) return false;
    }
    return true;
}

static void test_crash_safety(void) {
    const char *d = tdir("crash");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", d);
    const char *env = getenv("AIOS_CRASH_ITERS");
    int iters = env ? atoi(env) : 200;
    double budget = getenv("AIOS_CRASH_SECONDS") ? atof(getenv("AIOS_CRASH_SECONDS")) : 60.0;
    double t0 = aios__now();
    int next_id = 0, done = 0, acked_total = 0;
    memset(g_state, 0, sizeof g_state);
    signal(SIGPIPE, SIG_IGN);
    for (int it = 0; it < iters && aios__now() - t0 < budget && next_id < CR_MAX - 2000; it++, done++) {
        int pfd[2];
        CHECK(pipe(pfd) == 0);
        unsigned seed = (unsigned)xr();
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            crash_child(dir, pfd[1], seed, next_id);
            _exit(0);
        }
        close(pfd[1]);
        struct timespec ts = {0, (long)(xr() % 40000000)}; /* 0..40 ms */
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int wst;
        waitpid(pid, &wst, 0);
        /* read the child's log: intents and acknowledgements */
        FILE *f = fdopen(pfd[0], "r");
        char line[512];
        char pop = 0;
        int pid_n = -1;
        unsigned pseed = 0;
        bool pending = false;
        while (fgets(line, sizeof line, f)) {
            if (line[0] == 'E') {
                CHECKF(0, "iteration %d: child error: %s", it, line);
                break;
            }
            if (line[0] == 'I') {
                CHECK(sscanf(line, "I %c %d %u", &pop, &pid_n, &pseed) == 3);
                pending = true;
            } else if (line[0] == 'K' && pending) {
                if (pop == 'A' || pop == 'U') g_state[pid_n] = pseed;
                else g_state[pid_n] = 0;
                if (pop == 'A') next_id = pid_n + 1;
                pending = false;
                acked_total++;
            }
        }
        fclose(f);
        if (t_failed_now) break;
        /* the store must open (as a writer: replay + truncation), pass check, and hold exactly
         * the acknowledged state, give or take the one operation in flight */
        aios_store_params p = aios_store_default_params();
        aios_store *st;
        aios_status s = aios_store_open(dir, &p, &st);
        if (s == AIOS_ERR_NOT_FOUND && next_id == 0) continue; /* killed before creating it */
        CHECKF(s == AIOS_OK, "iteration %d: open after kill: %s", it, aios_last_error());
        if (s) break;
        int64_t live_expected = 0;
        for (int n = 0; n < next_id + 1 && n < CR_MAX; n++) {
            char id[32];
            sprintf(id, "c%06d", n);
            aios_memory g;
            bool present = aios_store_get(st, id, &g) == AIOS_OK;
            bool is_pending = pending && pid_n == n;
            if (is_pending) {
                /* either outcome of the interrupted operation, but never half of it */
                bool before = g_state[n] ? present && matches(&g, n, g_state[n]) : !present;
                bool after = pop == 'D' ? !present : present && matches(&g, n, pseed);
                CHECKF(before || after, "iteration %d: %s is neither before nor after the interrupted %c", it, id, pop);
                if (after && !before) {
                    g_state[n] = pop == 'D' ? 0 : pseed;
                    if (pop == 'A') next_id = n + 1;
                }
            } else if (g_state[n]) {
                CHECKF(present, "iteration %d: acknowledged %s lost", it, id);
                CHECKF(!present || matches(&g, n, g_state[n]), "iteration %d: %s has wrong contents", it, id);
            } else {
                CHECKF(!present, "iteration %d: deleted or never-acknowledged %s present", it, id);
            }
            live_expected += g_state[n] != 0;
        }
        aios_store_stats stt;
        aios_store_stats_get(st, &stt);
        CHECKF(stt.live == live_expected, "iteration %d: %lld live, expected %lld", it, (long long)stt.live, (long long)live_expected);
        aios_store_close(st);
        s = aios_store_check(dir, 5, NULL, NULL);
        CHECKF(s == AIOS_OK, "iteration %d: check: %s", it, aios_last_error());
        if (t_failed_now) break;
    }
    aios_store_stats stt;
    aios_store *st;
    aios_store_params rp = aios_store_default_params();
    rp.read_only = 1;
    if (aios_store_open(dir, &rp, &st) == AIOS_OK) {
        aios_store_stats_get(st, &stt);
        printf("# crash: %d kills in %.1fs, %d acknowledged writes, %lld live, %lld segments, index rows %lld\n", done,
               aios__now() - t0, acked_total, (long long)stt.live, (long long)stt.segments, (long long)stt.index_rows);
        aios_store_close(st);
    }
    CHECK(done >= 20);
}

/* Readers during writes: a child adds c000000, c000001, ... with frequent checkpoints and
 * compactions while the parent opens read-only snapshots over and over.  Every snapshot must
 * open cleanly and hold exactly a prefix c0..c(m-1) with the right contents (no gaps, no
 * half-written memory), and m never goes backwards. */
static void test_readers_see_consistent_snapshots(void) {
    const char *d = tdir("snap");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", d);
    aios_store_params p = aios_store_default_params();
    p.create = 1;
    aios_store *st;
    CHECK_OK(aios_store_open(dir, &p, &st)); /* create it before the race starts */
    aios_store_close(st);
    pid_t pid = fork();
    if (pid == 0) {
        aios_store_params wp = aios_store_default_params();
        wp.checkpoint_rows = 25;
        wp.sync = 0;
        aios_store *w;
        if (aios_store_open(dir, &wp, &w)) _exit(3);
        char id[32], content[96];
        float e[CR_DIM];
        for (int n = 0; n < 1500; n++) {
            aios_memory m;
            crash_mem(&m, id, content, e, n, (unsigned)n * 7u + 1u);
            if (aios_store_add(w, &m, NULL)) _exit(4);
            if (n % 400 == 399 && aios_store_compact(w)) _exit(5);
        }
        aios_store_close(w);
        _exit(0);
    }
    aios_store_params rp = aios_store_default_params();
    rp.read_only = 1;
    int64_t last = 0, snaps = 0;
    int wst = 0;
    bool done = false;
    for (;;) {
        done = waitpid(pid, &wst, WNOHANG) == pid;
        aios_store *r;
        aios_status s = aios_store_open(dir, &rp, &r);
        CHECKF(s == AIOS_OK, "snapshot %lld: %s", (long long)snaps, aios_last_error());
        if (s) break;
        aios_store_stats x;
        aios_store_stats_get(r, &x);
        CHECKF(x.live >= last, "snapshot went back from %lld to %lld", (long long)last, (long long)x.live);
        for (int64_t n = 0; n < x.live; n++) {
            char id[32];
            sprintf(id, "c%06d", (int)n);
            aios_memory g;
            bool ok = aios_store_get(r, id, &g) == AIOS_OK && matches(&g, (int)n, (unsigned)n * 7u + 1u);
            CHECKF(ok, "snapshot of %lld memories lacks or garbles %s", (long long)x.live, id);
            if (!ok) break;
        }
        last = x.live;
        snaps++;
        aios_store_close(r);
        if (done || t_failed_now) break;
    }
    if (!done) { /* a failure stopped us early */
        kill(pid, SIGKILL);
        waitpid(pid, &wst, 0);
    }
    CHECKF(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "writer exited with %d", WEXITSTATUS(wst));
    CHECK(last == 1500);
    printf("# %lld snapshots taken while 1500 adds, 60 checkpoints and 3 compactions ran\n", (long long)snaps);
}

int main(void) {
    RUN(test_crc32c);
    RUN(test_dot_kernels);
    RUN(test_wal_codec_and_damage);
    RUN(test_manifest_damage);
    RUN(test_store_basics_and_lock);
    RUN(test_multi_row_group_segments);
    RUN(test_exact_search_and_filters);
    RUN(test_hnsw_recall_and_filters);
    RUN(test_compaction_keeps_the_graph);
    RUN(test_corrupt_index_detected);
    RUN(test_corrupt_wal_and_manifest_refused);
    RUN(test_readers_see_consistent_snapshots);
    RUN(test_crash_safety);
    TEST_MAIN_END();
}
