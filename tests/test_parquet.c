/*
 * test_parquet.c — white-box tests of the Parquet reader and writer (src/format/parquet.h).
 *
 *  - fixtures written by pyarrow: values checked against ../shared/fixtures/parquet/EXPECTED.json
 *    (weights data as hex, embeddings, struct levels, scalars), zero-copy pointers into the map
 *  - the writer's row form (nullable scalars, lists with null lists and null elements, structs
 *    by def levels), aligned binary pages, several row groups, kv metadata, read back by us
 *    (pyarrow/DuckDB read the writer's files in tests/py/test_parquet_roundtrip.py)
 *  - hostile input: every file of fuzz/corpus/fuzz_parquet/ (tools/make_parquet_corpus.py):
 *    ok_* read and verify, bad_* fail with a "parquet: ..." message, none crashes or leaks
 *    (the whole program also runs under `make asan`)
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>

#include "core/internal.h"
#include "format/parquet.h"
#include "test.h"

static cJSON *g_exp;

static cJSON *expected(void) {
    if (g_exp) return g_exp;
    char *txt;
    size_t len;
    if (aios__read_file(aios_test_shared("fixtures/parquet/EXPECTED.json"), &txt, &len) != AIOS_OK) return NULL;
    g_exp = cJSON_Parse(txt);
    free(txt);
    return g_exp;
}

static int hex_eq(const uint8_t *p, size_t n, const char *hex) {
    if (strlen(hex) != 2 * n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || v != p[i]) return 0;
    }
    return 1;
}

static void test_weights_zero_copy(void) {
    cJSON *e = expected();
    if (!e) SKIP("no fixtures");
    cJSON *rows = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "files"), "weights_v1.parquet");
    aios_parquet_file *pf;
    CHECK_OK(aios_parquet_open(aios_test_shared("fixtures/parquet/weights_v1.parquet"), &pf));
    if (!pf) return;
    CHECK(aios_parquet_num_rows(pf) == cJSON_GetArraySize(rows));
    int data = aios_pq_find_leaf(pf, "data"), shape = aios_pq_find_leaf(pf, "shape"), name = aios_pq_find_leaf(pf, "layer_name");
    CHECK(data >= 0 && shape >= 0 && name >= 0);
    CHECK(aios_pq_find_leaf(pf, "shape.list.element") == shape);
    CHECK(aios_pq_find_leaf(pf, "nope") == -1);
    aios_pq_column d, s, nm;
    CHECK_OK(aios_pq_read_column(pf, -1, data, &d));
    CHECK_OK(aios_pq_read_column(pf, 0, shape, &s));
    CHECK_OK(aios_pq_read_column(pf, 0, name, &nm));
    size_t fsize;
    const uint8_t *base = aios_pq_file_data(pf, &fsize);
    CHECK(d.zero_copy == 1); /* uncompressed PLAIN: pointers into the mapping */
    CHECK(s.max_rep == 1 && s.offsets != NULL);
    for (int r = 0; r < cJSON_GetArraySize(rows) && r < d.num_rows; r++) {
        cJSON *row = cJSON_GetArrayItem(rows, r);
        CHECK(d.bytes[r].ptr >= base && d.bytes[r].ptr + d.bytes[r].len <= base + fsize);
        CHECKF(hex_eq(d.bytes[r].ptr, d.bytes[r].len, cJSON_GetObjectItem(row, "data")->valuestring), "row %d data", r);
        cJSON *sh = cJSON_GetObjectItem(row, "shape");
        CHECK(s.offsets[r + 1] - s.offsets[r] == cJSON_GetArraySize(sh));
        for (int k = 0; k < cJSON_GetArraySize(sh); k++)
            CHECK(((int32_t *)s.values)[s.offsets[r] + k] == cJSON_GetArrayItem(sh, k)->valueint);
        const char *ln = cJSON_GetObjectItem(row, "layer_name")->valuestring;
        CHECK(nm.bytes[r].len == strlen(ln) && !memcmp(nm.bytes[r].ptr, ln, nm.bytes[r].len));
    }
    aios_pq_column_free(&d);
    aios_pq_column_free(&s);
    aios_pq_column_free(&nm);
    aios_pq_column_free(&d); /* twice is fine */
    aios_parquet_close(pf);
    aios_parquet_close(NULL);
}

static void test_memories_levels(void) {
    cJSON *e = expected();
    if (!e) SKIP("no fixtures");
    cJSON *mem = cJSON_GetObjectItem(e, "memories");
    cJSON *emb = cJSON_GetObjectItem(mem, "embedding"), *md = cJSON_GetObjectItem(mem, "metadata");
    const char *files[] = {"memories_zstd.parquet", "memories_gzip_v2pages.parquet", "memories_zstd_smallpages.parquet"};
    for (size_t fi = 0; fi < 3; fi++) {
        char rel[128];
        snprintf(rel, sizeof rel, "fixtures/parquet/%s", files[fi]);
        aios_parquet_file *pf;
        CHECK_OK(aios_parquet_open(aios_test_shared(rel), &pf));
        if (!pf) return;
        int le = aios_pq_find_leaf(pf, "embedding"), lc = aios_pq_find_leaf(pf, "metadata.category");
        int lq = aios_pq_find_leaf(pf, "metadata.quality_score");
        const aios_pq_node *n = aios_pq_leaf(pf, le);
        CHECK(n && !strcmp(n->path, "embedding.list.element") && n->def_level == 3 && n->rep_level == 1);
        CHECK(aios_pq_leaf(pf, lc)->logical == AIOS_PQ_L_STRING);
        aios_pq_column c, cat, q;
        CHECK_OK(aios_pq_read_column(pf, -1, le, &c));
        CHECK_OK(aios_pq_read_column(pf, -1, lc, &cat));
        CHECK_OK(aios_pq_read_column(pf, -1, lq, &q));
        CHECK(c.num_rows == 1000 && cat.num_rows == 1000 && c.row_valid != NULL);
        for (int r = 0; r < 1000 && !t_failed_now; r++) {
            cJSON *er = cJSON_GetArrayItem(emb, r);
            if (cJSON_IsNull(er)) {
                CHECKF(!c.row_valid[r] && c.offsets[r] == c.offsets[r + 1], "%s row %d: null list", files[fi], r);
            } else {
                CHECKF(c.row_valid[r] && c.offsets[r + 1] - c.offsets[r] == cJSON_GetArraySize(er), "%s row %d", files[fi], r);
                for (int k = 0; k < cJSON_GetArraySize(er); k++)
                    CHECKF(((float *)c.values)[c.offsets[r] + k] == (float)cJSON_GetArrayItem(er, k)->valuedouble,
                           "%s row %d elem %d", files[fi], r, k);
            }
            /* metadata.category: def 0 = metadata null, 1 = category null, 2 = present */
            cJSON *m = cJSON_GetArrayItem(md, r);
            cJSON *cv = cJSON_IsNull(m) ? NULL : cJSON_GetObjectItem(m, "category");
            int want = cJSON_IsNull(m) ? 0 : cJSON_IsNull(cv) ? 1 : 2;
            CHECKF(cat.def[r] == want, "%s row %d category def %d want %d", files[fi], r, cat.def[r], want);
            if (want == 2)
                CHECK(cat.valid[r] && cat.bytes[r].len == strlen(cv->valuestring) &&
                      !memcmp(cat.bytes[r].ptr, cv->valuestring, cat.bytes[r].len));
            else
                CHECK(!cat.valid[r] && cat.bytes[r].ptr == NULL);
            if (!cJSON_IsNull(m))
                CHECK(((float *)q.values)[r] == (float)cJSON_GetObjectItem(m, "quality_score")->valuedouble);
        }
        aios_pq_column_free(&c);
        aios_pq_column_free(&cat);
        aios_pq_column_free(&q);
        CHECK_OK(aios_parquet_verify(pf, NULL));
        aios_parquet_close(pf);
    }
}

static void test_scalars(void) {
    aios_parquet_file *pf;
    CHECK_OK(aios_parquet_open(aios_test_shared("fixtures/parquet/scalars.parquet"), &pf));
    if (!pf) return;
    aios_pq_column c;
    CHECK_OK(aios_pq_read_column(pf, 0, aios_pq_find_leaf(pf, "i64"), &c));
    CHECK(c.null_count == 1 && c.valid && !c.valid[1]);
    CHECK(((int64_t *)c.values)[0] == 1099511627776LL && ((int64_t *)c.values)[2] == -1 && ((int64_t *)c.values)[3] == 0);
    aios_pq_column_free(&c);
    CHECK_OK(aios_pq_read_column(pf, 0, aios_pq_find_leaf(pf, "f32"), &c));
    float *f = c.values;
    CHECK(f[0] == 1.5f && isinf(f[1]) && f[1] > 0 && !c.valid[2] && f[3] == 0 && signbit(f[3]));
    aios_pq_column_free(&c);
    CHECK_OK(aios_pq_read_column(pf, 0, aios_pq_find_leaf(pf, "b"), &c));
    CHECK(((uint8_t *)c.values)[0] == 1 && ((uint8_t *)c.values)[1] == 0 && !c.valid[2] && ((uint8_t *)c.values)[3] == 1);
    aios_pq_column_free(&c);
    const aios_pq_chunk_info *ci = aios_pq_chunk(pf, 0, aios_pq_find_leaf(pf, "i32"));
    CHECK(ci && ci->codec == AIOS_PQ_ZSTD && ci->has_min_max && ci->has_null_count && ci->null_count == 1);
    int32_t mn, mx;
    memcpy(&mn, ci->min, 4);
    memcpy(&mx, ci->max, 4);
    CHECK(mn == -2 && mx == 2147483647);
    CHECK(aios_pq_chunk(pf, 1, 0) == NULL && aios_pq_chunk(pf, 0, 99) == NULL);
    CHECK(aios_pq_kv_get(pf, "ARROW:schema") != NULL);
    CHECK(strstr(aios_pq_created_by(pf), "parquet-cpp-arrow") != NULL);
    CHECK(aios_pq_read_column(pf, 3, 0, &c) == AIOS_ERR_RANGE);
    aios_parquet_close(pf);
}

/* The writer's row form, aligned pages, row groups and kv, read back by our reader. */
static void test_writer_row_form(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/w.parquet", aios_test_tmpdir());
    aios_pq_field f[] = {
        {.name = "id", .parent = -1, .kind = AIOS_PQ_K_STRING},
        {.name = "ts", .parent = -1, .kind = AIOS_PQ_K_TIMESTAMP_US, .nullable = 1},
        {.name = "vec", .parent = -1, .kind = AIOS_PQ_K_LIST, .nullable = 1},
        {.name = "element", .parent = 2, .kind = AIOS_PQ_K_FLOAT, .nullable = 1},
        {.name = "meta", .parent = -1, .kind = AIOS_PQ_K_STRUCT, .nullable = 1},
        {.name = "cat", .parent = 4, .kind = AIOS_PQ_K_STRING, .nullable = 1},
        {.name = "blob", .parent = -1, .kind = AIOS_PQ_K_BINARY, .plain_aligned = 1},
    };
    aios_pq_writer_params wp = aios_pq_writer_default_params();
    wp.row_group_rows = 5;
    aios_pq_writer *w;
    CHECK_OK(aios_pq_writer_open(path, f, 7, &wp, &w));
    if (!w) return;
    CHECK(aios_pq_writer_num_leaves(w) == 5);
    CHECK(aios_pq_writer_find_leaf(w, "vec") == 2 && aios_pq_writer_find_leaf(w, "meta.cat") == 3);
    CHECK_OK(aios_pq_writer_set_kv(w, "aios.kind", "test"));
    enum { N = 12 };
    aios_pq_bytes ids[N], cats[N], blobs[N];
    char idbuf[N][8];
    static uint8_t blobdata[N][100];
    int64_t ts[N], offs[N + 1];
    uint8_t tsv[N], rowv[N];
    int16_t catdef[N];
    float vals[64];
    uint8_t ev[64];
    int64_t nv = 0;
    for (int i = 0; i < N; i++) {
        snprintf(idbuf[i], sizeof idbuf[i], "id%d", i);
        ids[i] = (aios_pq_bytes){(const uint8_t *)idbuf[i], strlen(idbuf[i])};
        ts[i] = 1000 * i;
        tsv[i] = i % 3 != 1;
        offs[i] = nv;
        rowv[i] = i % 4 != 3;
        if (rowv[i])
            for (int k = 0; k < i % 3; k++, nv++) {
                vals[nv] = (float)(i + k * 0.5);
                ev[nv] = (i + k) % 5 != 4;
            }
        catdef[i] = (int16_t)(i % 5 == 0 ? 0 : i % 5 == 1 ? 1 : 2); /* meta null / cat null / "c" */
        cats[i] = catdef[i] == 2 ? (aios_pq_bytes){(const uint8_t *)"cc", 2} : (aios_pq_bytes){NULL, 0};
        for (int k = 0; k < 100; k++) blobdata[i][k] = (uint8_t)(i * 7 + k);
        blobs[i] = (aios_pq_bytes){blobdata[i], (size_t)(10 + 7 * i)};
    }
    offs[N] = nv;
    /* a batch that misses a leaf is refused, and the writer refuses further work */
    {
        aios_pq_batch b0 = {.num_rows = 4, .bytes = ids};
        CHECK_OK(aios_pq_writer_write(w, 0, &b0));
        CHECK(aios_pq_writer_end_batch(w, 4) == AIOS_ERR_INVALID_ARG);
        CHECK(strstr(aios_last_error(), "'ts'") != NULL);
        CHECK(aios_pq_writer_write(w, 0, &b0) != AIOS_OK);
    }
    aios_pq_writer_abort(w);
    /* clean run */
    CHECK_OK(aios_pq_writer_open(path, f, 7, &wp, &w));
    CHECK_OK(aios_pq_writer_set_kv(w, "aios.kind", "test"));
    for (int start = 0; start < N; start += 4) {
        int n = 4;
        aios_pq_batch b0 = {.num_rows = n, .bytes = ids + start};
        aios_pq_batch b1 = {.num_rows = n, .values = ts + start, .valid = tsv + start};
        int64_t lo[5];
        for (int k = 0; k <= n; k++) lo[k] = offs[start + k] - offs[start];
        aios_pq_batch b2 = {.num_rows = n, .offsets = lo, .row_valid = rowv + start, .values = vals + offs[start], .valid = ev + offs[start]};
        aios_pq_batch b3 = {.num_rows = n, .num_levels = n, .def = catdef + start, .bytes = cats + start};
        aios_pq_batch b4 = {.num_rows = n, .bytes = blobs + start};
        CHECK_OK(aios_pq_writer_write(w, 0, &b0));
        CHECK_OK(aios_pq_writer_write(w, 1, &b1));
        CHECK_OK(aios_pq_writer_write(w, 2, &b2));
        CHECK_OK(aios_pq_writer_write(w, 3, &b3));
        CHECK_OK(aios_pq_writer_write(w, 4, &b4));
        CHECK_OK(aios_pq_writer_end_batch(w, n));
    }
    CHECK_OK(aios_pq_writer_close(w));

    aios_parquet_file *pf;
    CHECK_OK(aios_parquet_open(path, &pf));
    if (!pf) return;
    CHECK(aios_parquet_num_rows(pf) == N && aios_pq_num_row_groups(pf) == 2); /* 8 + 4: checked per batch */
    CHECK(aios_pq_kv_get(pf, "aios.kind") && !strcmp(aios_pq_kv_get(pf, "aios.kind"), "test"));
    CHECK_OK(aios_parquet_verify(pf, NULL));
    aios_pq_column c[5];
    for (int l = 0; l < 5; l++) CHECK_OK(aios_pq_read_column(pf, -1, l, &c[l]));
    if (t_failed_now) return;
    size_t fsize;
    const uint8_t *base = aios_pq_file_data(pf, &fsize);
    for (int i = 0; i < N; i++) {
        CHECK(c[0].bytes[i].len == strlen(idbuf[i]) && !memcmp(c[0].bytes[i].ptr, idbuf[i], c[0].bytes[i].len));
        CHECK((c[1].valid ? c[1].valid[i] : 1) == tsv[i] && (!tsv[i] || ((int64_t *)c[1].values)[i] == ts[i]));
        CHECK((c[2].row_valid ? c[2].row_valid[i] : 1) == rowv[i]);
        CHECKF(c[2].offsets[i + 1] - c[2].offsets[i] == offs[i + 1] - offs[i], "row %d list length", i);
        for (int64_t k = 0; k < offs[i + 1] - offs[i]; k++) {
            int64_t s = c[2].offsets[i] + k, o = offs[i] + k;
            CHECK((c[2].valid ? c[2].valid[s] : 1) == ev[o]);
            if (ev[o]) CHECK(((float *)c[2].values)[s] == vals[o]);
        }
        CHECK(c[3].def[i] == catdef[i]);
        if (catdef[i] == 2) CHECK(c[3].bytes[i].len == 2 && !memcmp(c[3].bytes[i].ptr, "cc", 2));
        /* aligned blob: zero copy, 64-byte aligned offset in the file */
        CHECK(c[4].bytes[i].len == blobs[i].len && !memcmp(c[4].bytes[i].ptr, blobdata[i], blobs[i].len));
        CHECK(c[4].bytes[i].ptr > base && (size_t)(c[4].bytes[i].ptr - base) % 64 == 0);
    }
    CHECK(c[4].zero_copy == 1);
    CHECK(aios_pq_chunk(pf, 0, 4)->codec == AIOS_PQ_UNCOMPRESSED && aios_pq_chunk(pf, 0, 0)->codec == AIOS_PQ_ZSTD);
    for (int l = 0; l < 5; l++) aios_pq_column_free(&c[l]);
    aios_parquet_close(pf);
}

static void test_writer_rejects_bad_input(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/bad.parquet", aios_test_tmpdir());
    aios_pq_field bad_list[] = {{.name = "l", .parent = -1, .kind = AIOS_PQ_K_LIST}};
    aios_pq_writer *w = NULL;
    CHECK(aios_pq_writer_open(path, bad_list, 1, NULL, &w) == AIOS_ERR_INVALID_ARG && !w);
    CHECK(strstr(aios_last_error(), "exactly one child") != NULL);
    aios_pq_field f[] = {{.name = "x", .parent = -1, .kind = AIOS_PQ_K_INT32}};
    CHECK_OK(aios_pq_writer_open(path, f, 1, NULL, &w));
    if (!w) return;
    int32_t v[3] = {1, 2, 3};
    uint8_t valid[3] = {1, 0, 1};
    aios_pq_batch b = {.num_rows = 3, .values = v, .valid = valid};
    CHECK(aios_pq_writer_write(w, 0, &b) == AIOS_ERR_INVALID_ARG); /* null in a required column */
    CHECK(aios_pq_writer_write(w, 1, &b) == AIOS_ERR_RANGE);
    aios_pq_writer_abort(w);
    CHECK(access(path, F_OK) != 0); /* abort removes the partial file */
    aios_pq_writer_abort(NULL);
}

static void test_hostile_corpus(void) {
    const char *dir = "fuzz/corpus/fuzz_parquet";
    DIR *d = opendir(dir);
    if (!d) SKIP("no %s (run from the repository root)", dir);
    int n_ok = 0, n_bad = 0, n_odd = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".parquet")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        aios_clear_error();
        aios_parquet_file *pf = NULL;
        aios_status s = aios_parquet_open(p, &pf);
        if (s == AIOS_OK) {
            s = aios_parquet_verify(pf, NULL);
            for (int l = 0; l < aios_pq_num_leaves(pf); l++) {
                aios_pq_column c;
                if (aios_pq_read_column(pf, -1, l, &c) == AIOS_OK) aios_pq_column_free(&c);
            }
            aios_parquet_close(pf);
        }
        if (!strncmp(de->d_name, "ok_", 3)) {
            CHECKF(s == AIOS_OK, "%s: %s", de->d_name, aios_last_error());
            n_ok++;
        } else if (!strncmp(de->d_name, "bad_", 4)) {
            CHECKF(s != AIOS_OK, "%s was accepted", de->d_name);
            CHECKF(!strncmp(aios_last_error(), "parquet: ", 9) && strlen(aios_last_error()) > 20, "%s: unclear error '%s'",
                   de->d_name, aios_last_error());
            n_bad++;
        } else {
            n_odd++;
        }
    }
    closedir(d);
    CHECKF(n_ok >= 5 && n_bad >= 50, "corpus too small: %d ok, %d bad, %d odd", n_ok, n_bad, n_odd);
}

/* Truncation at every byte of a real file, from memory: must fail cleanly each time. */
static void test_truncated_everywhere(void) {
    char *txt;
    size_t len;
    if (aios__read_file(aios_test_shared("fixtures/parquet/scalars.parquet"), &txt, &len) != AIOS_OK) SKIP("no fixtures");
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *b = malloc(cut ? cut : 1);
        memcpy(b, txt, cut);
        aios_parquet_file *pf = NULL;
        aios_status s = aios_parquet_open_memory(b, cut, &pf);
        if (s == AIOS_OK) {
            s = aios_parquet_verify(pf, NULL);
            aios_parquet_close(pf);
        }
        CHECKF(s != AIOS_OK, "truncated at %zu accepted", cut);
        free(b);
    }
    aios_parquet_file *pf = NULL;
    CHECK_OK(aios_parquet_open_memory(txt, len, &pf));
    aios_parquet_close(pf);
    free(txt);
}

/* aios_pq_read_column on one handle from several threads gives what a serial read gives. */
static void test_parallel_reads(void) {
    aios_parquet_file *pf;
    CHECK_OK(aios_parquet_open(aios_test_shared("fixtures/parquet/memories_snappy.parquet"), &pf));
    if (!pf) return;
    int nl = aios_pq_num_leaves(pf);
    enum { REP = 4 };
    aios_pq_column ser[16], par[16 * REP];
    int fails = 0;
    for (int l = 0; l < nl && l < 16; l++) CHECK_OK(aios_pq_read_column(pf, -1, l, &ser[l]));
#pragma omp parallel for schedule(dynamic) reduction(+ : fails)
    for (int k = 0; k < nl * REP; k++) fails += aios_pq_read_column(pf, -1, k % nl, &par[k]) != AIOS_OK;
    CHECK(fails == 0);
    for (int k = 0; k < nl * REP && !fails; k++) {
        aios_pq_column *a = &ser[k % nl], *b = &par[k];
        CHECK(a->num_levels == b->num_levels && a->num_slots == b->num_slots && a->null_count == b->null_count);
        if (a->def) CHECK(!memcmp(a->def, b->def, (size_t)a->num_levels * 2));
        if (a->rep) CHECK(!memcmp(a->rep, b->rep, (size_t)a->num_levels * 2));
        for (int64_t i = 0; i < a->num_slots; i++) {
            if (a->bytes) CHECK(a->bytes[i].len == b->bytes[i].len && (!a->bytes[i].len || !memcmp(a->bytes[i].ptr, b->bytes[i].ptr, a->bytes[i].len)));
            else if (a->type == AIOS_PQ_FLOAT) CHECK(((float *)a->values)[i] == ((float *)b->values)[i] || (a->valid && !a->valid[i]));
            else if (a->type == AIOS_PQ_INT64) CHECK(((int64_t *)a->values)[i] == ((int64_t *)b->values)[i] || (a->valid && !a->valid[i]));
        }
    }
    for (int k = 0; k < nl * REP; k++) aios_pq_column_free(&par[k]);
    for (int l = 0; l < nl && l < 16; l++) aios_pq_column_free(&ser[l]);
    aios_parquet_close(pf);
}

int main(void) {
    RUN(test_weights_zero_copy);
    RUN(test_memories_levels);
    RUN(test_scalars);
    RUN(test_writer_row_form);
    RUN(test_writer_rejects_bad_input);
    RUN(test_hostile_corpus);
    RUN(test_truncated_everywhere);
    RUN(test_parallel_reads);
    cJSON_Delete(g_exp);
    TEST_MAIN_END();
}
