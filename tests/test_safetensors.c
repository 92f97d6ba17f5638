/* test_safetensors.c — the safetensors reader on fixtures, on files we write, on sharded
 * checkpoints, and on hostile headers (each must fail with a clear error, never crash). */
#include <stdint.h>
#include <sys/stat.h>

#include "core/internal.h"
#include "format/safetensors.h"
#include "model/model.h"
#include "tensor/quant.h"
#include "test.h"

/* Builds a file image: u64 header length, header, then `data_len` bytes of data. */
static uint8_t *image(const char *header, size_t data_len, size_t *size) {
    size_t hl = strlen(header);
    *size = 8 + hl + data_len;
    uint8_t *b = calloc(1, *size + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) b[8 + hl + i] = (uint8_t)i;
    return b;
}

static aios_status parse_str(const char *header, size_t data_len) {
    size_t n;
    uint8_t *b = image(header, data_len, &n);
    aios_safetensors *st = NULL;
    aios_status s = aios_safetensors_parse(b, n, "h.safetensors", &st);
    aios_safetensors_close(st);
    free(b);
    return s;
}

static void test_good_header(void) {
    size_t n;
    uint8_t *b = image("{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"e\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[12,12]}}   ",
                       12, &n);
    aios_safetensors *st;
    CHECK_OK(aios_safetensors_parse(b, n, "good", &st));
    if (!st) return;
    CHECK(aios_safetensors_count(st) == 3);
    const aios_tensor *a = aios_safetensors_find(st, "a"), *bb = aios_safetensors_find(st, "b");
    CHECK(a && a->dtype == AIOS_DTYPE_F32 && a->ndim == 1 && a->shape[0] == 2 && a->nbytes == 8);
    CHECK(a && (const uint8_t *)a->data == b + n - 12);
    CHECK(bb && bb->dtype == AIOS_DTYPE_F16 && (const uint8_t *)bb->data == b + n - 4);
    CHECK(aios_safetensors_find(st, "zz") == NULL);
    CHECK(!strcmp(aios_safetensors_metadata(st, "format"), "pt"));
    CHECK(aios_safetensors_metadata_count(st) == 1);
    aios_safetensors_close(st);
    free(b);
}

static void test_hostile_headers(void) {
    static const struct {
        const char *header;
        size_t data;
        aios_status want;
        const char *msg;
    } cases[] = {
        {"[1,2]", 0, AIOS_ERR_FORMAT, "JSON object"},
        {"{\"a\":", 0, AIOS_ERR_FORMAT, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, AIOS_ERR_FORMAT, "junk"},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, AIOS_ERR_UNSUPPORTED, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, AIOS_ERR_FORMAT, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, AIOS_ERR_FORMAT, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, AIOS_ERR_FORMAT, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, AIOS_ERR_RANGE, "overflow"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[4503599627370496,4096],\"data_offsets\":[0,8]}}", 8, AIOS_ERR_RANGE, "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, AIOS_ERR_UNSUPPORTED, "dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, AIOS_ERR_FORMAT, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, AIOS_ERR_SHAPE, "need 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, AIOS_ERR_FORMAT, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, AIOS_ERR_FORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, AIOS_ERR_FORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, AIOS_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, AIOS_ERR_FORMAT, "hole"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, AIOS_ERR_FORMAT, "cover 4 of the 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, AIOS_ERR_FORMAT, "twice"},
        {"{\"__metadata__\":{\"k\":1}}", 0, AIOS_ERR_FORMAT, "not a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4, AIOS_ERR_FORMAT, "unknown field"},
        {"{\"a\":7}", 0, AIOS_ERR_FORMAT, "not an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 4, AIOS_ERR_FORMAT, "data_offsets"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aios_status s = parse_str(cases[i].header, cases[i].data);
        CHECKF(s == cases[i].want, "case %zu: got %s (%s)", i, aios_status_name(s), aios_last_error());
        CHECKF(strstr(aios_last_error(), cases[i].msg) != NULL, "case %zu: message '%s' lacks '%s'", i, aios_last_error(),
               cases[i].msg);
        CHECKF(strstr(aios_last_error(), "h.safetensors") != NULL, "case %zu: message lacks the file name", i);
    }
}

/* Truncated files and lying header lengths. */
static void test_truncated_and_lying_lengths(void) {
    size_t n;
    uint8_t *b = image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, &n);
    aios_safetensors *st;
    for (size_t cut = 0; cut < n; cut++) {
        aios_status s = aios_safetensors_parse(b, cut, "t", &st);
        CHECKF(s != AIOS_OK, "truncated to %zu accepted", cut);
        aios_safetensors_close(st);
    }
    uint8_t hdr[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    CHECK(aios_safetensors_parse(hdr, sizeof hdr, "t", &st) == AIOS_ERR_FORMAT && strstr(aios_last_error(), "100 MB"));
    hdr[0] = 200;
    memset(hdr + 1, 0, 7);
    CHECK(aios_safetensors_parse(hdr, sizeof hdr, "t", &st) == AIOS_ERR_FORMAT && strstr(aios_last_error(), "past the end"));
    free(b);
    CHECK(aios_safetensors_open("/nonexistent.safetensors", &st) == AIOS_ERR_NOT_FOUND);
}

/* Every fixture model's file opens, and the f32 fixture values equal the raw bytes. */
static void test_fixture_files(void) {
    const char *files[] = {"fixtures/models/bert-tiny/model.safetensors", "fixtures/models/qwen3-tiny/model.safetensors",
                           "fixtures/models-lm/llama-tiny/model.safetensors", "fixtures/models/bert-tiny/golden.safetensors"};
    for (size_t i = 0; i < 4; i++) {
        aios_safetensors *st;
        CHECK_OK(aios_safetensors_open(aios_test_shared(files[i]), &st));
        if (!st) continue;
        CHECK(aios_safetensors_count(st) > 0);
        for (int64_t k = 0; k < aios_safetensors_count(st); k++) CHECK_OK(aios_tensor_validate(aios_safetensors_tensor(st, k)));
        aios_safetensors_close(st);
    }
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Writer + reader round trip, then a sharded directory with an index. */
static void test_write_and_shards(void) {
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s/sharded", aios_test_tmpdir());
    mkdir(dir, 0777);
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t b[3] = {0x3F80, 0xC000, 0x0001}; /* bf16 1, -2, tiny */
    aios_tensor ta = {.name = "model.layers.0.mlp.up_proj.weight", .dtype = AIOS_DTYPE_F32, .ndim = 2, .shape = {2, 3},
                      .data = a, .nbytes = 24};
    aios_tensor tb = {.name = "model.norm.weight", .dtype = AIOS_DTYPE_BF16, .ndim = 1, .shape = {3}, .data = b, .nbytes = 6};
    const aios_tensor *s1[] = {&ta}, *s2[] = {&tb};
    const char *meta[] = {"format", "pt", NULL};
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    CHECK_OK(aios_safetensors_write(p, s1, 1, meta));
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    CHECK_OK(aios_safetensors_write(p, s2, 1, NULL));
    aios_safetensors *st;
    CHECK_OK(aios_safetensors_open(p, &st));
    if (st) {
        const aios_tensor *t = aios_safetensors_find(st, "model.norm.weight");
        CHECK(t && t->nbytes == 6 && !memcmp(t->data, b, 6));
        aios_safetensors_close(st);
    }
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_file(p, "{\"metadata\":{\"total_size\":30},\"weight_map\":{"
                  "\"model.layers.0.mlp.up_proj.weight\":\"model-00001-of-00002.safetensors\","
                  "\"model.norm.weight\":\"model-00002-of-00002.safetensors\"}}");
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_file(p, "{\"model_type\":\"llama\",\"hidden_size\":3,\"num_hidden_layers\":1,\"num_attention_heads\":1,"
                  "\"intermediate_size\":2,\"vocab_size\":10,\"rope_theta\":500000.0,\"rms_norm_eps\":1e-6,"
                  "\"eos_token_id\":[5,7],\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
                  "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}");
    aios_model *m;
    CHECK_OK(aios_model_open(dir, NULL, &m));
    if (!m) return;
    CHECK(aios_model_num_tensors(m) == 2);
    const aios_tensor *t = aios_model_tensor(m, "model.layers.0.mlp.up_proj.weight");
    CHECK(t && !memcmp(t->data, a, 24));
    CHECK(aios_model_tensorf(m, "model.layers.%d.mlp.up_proj.weight", 0) == t);
    const aios_model_config *c = aios_model_get_config(m);
    CHECK(c->arch == AIOS_ARCH_LLAMA && c->rope_theta == 500000.0 && fabsf(c->norm_eps - 1e-6f) < 1e-12f);
    CHECK(c->n_eos == 2 && c->eos_token_id == 5 && c->eos_token_ids[1] == 7);
    CHECK(!strcmp(c->rope_type, "llama3") && c->rope_factor == 8.0 && c->rope_high_freq_factor == 4.0 &&
          c->rope_original_max_pos == 8192);
    CHECK(!strcmp(aios_model_format(m), "safetensors"));
    const aios_tensor *req;
    int64_t want[2] = {2, -1};
    CHECK_OK(aios_model_require(m, "model.layers.0.mlp.up_proj.weight", 2, want, &req));
    want[0] = 5;
    CHECK(aios_model_require(m, "model.layers.0.mlp.up_proj.weight", 2, want, &req) == AIOS_ERR_SHAPE);
    CHECK(aios_model_require(m, "nope", 1, NULL, &req) == AIOS_ERR_NOT_FOUND && strstr(aios_last_error(), "nope"));
    float out[6];
    CHECK_OK(aios_model_tensor_f32(m, aios_model_find_tensor(m, "model.norm.weight"), out));
    CHECK(out[0] == 1.0f && out[1] == -2.0f);
    aios_model_free(m);

    /* the index names a tensor no shard holds */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_file(p, "{\"weight_map\":{\"model.norm.weight\":\"model-00002-of-00002.safetensors\",\"ghost\":\"model-00002-of-00002.safetensors\"}}");
    CHECK(aios_model_open(dir, NULL, &m) == AIOS_ERR_FORMAT && strstr(aios_last_error(), "ghost"));
    /* ... or a shard that is not there, or a path outside the directory */
    write_file(p, "{\"weight_map\":{\"x\":\"model-00009-of-00009.safetensors\"}}");
    CHECK(aios_model_open(dir, NULL, &m) == AIOS_ERR_NOT_FOUND && strstr(aios_last_error(), "00009"));
    write_file(p, "{\"weight_map\":{\"x\":\"../../etc/passwd\"}}");
    CHECK(aios_model_open(dir, NULL, &m) == AIOS_ERR_FORMAT);
    write_file(p, "{\"weight_map\":");
    CHECK(aios_model_open(dir, NULL, &m) == AIOS_ERR_FORMAT);
    /* two shards holding the same tensor */
    write_file(p, "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\","
                  "\"c\":\"dup.safetensors\"}}");
    snprintf(p, sizeof p, "%s/dup.safetensors", dir);
    CHECK_OK(aios_safetensors_write(p, s2, 1, NULL));
    CHECK(aios_model_open(dir, NULL, &m) == AIOS_ERR_FORMAT && strstr(aios_last_error(), "twice"));
    /* bad config */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK_OK(aios_safetensors_write(p, s2, 1, NULL));
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_file(p, "{\"model_type\":\"llama\",\"num_attention_heads\":4,\"num_key_value_heads\":3}");
    CHECK(aios_model_open(dir, NULL, &m) == AIOS_ERR_CONFIG && strstr(aios_last_error(), "config.json"));
    write_file(p, "{\"model_type\":\"llama\",");
    CHECK(aios_model_open(dir, NULL, &m) == AIOS_ERR_CONFIG && strstr(aios_last_error(), "not valid JSON"));
    write_file(p, "{\"model_type\":\"llama\",\"hidden_size\":-5}");
    CHECK(aios_model_open(dir, NULL, &m) == AIOS_ERR_CONFIG && strstr(aios_last_error(), "hidden_size"));
    CHECK(aios_model_open("/nonexistent/model", NULL, &m) == AIOS_ERR_NOT_FOUND);
    CHECK(aios_model_open(aios_test_tmpdir(), NULL, &m) == AIOS_ERR_NOT_FOUND && strstr(aios_last_error(), "no weights"));
}

/* The config facts every fixture architecture needs. */
static void test_fixture_configs(void) {
    static const struct {
        const char *dir;
        aios_arch arch;
        int64_t n_embd, n_head, n_head_kv, head_dim, n_ff;
        int tied, qkv_bias, qk_norm, rms;
        aios_attn_pattern attn;
        int shift;
        int64_t block, mask, pad;
    } want[] = {
        {"fixtures/models/bert-tiny", AIOS_ARCH_BERT, 32, 4, 4, 8, 64, 1, 1, 0, 0, AIOS_ATTN_BIDIRECTIONAL, 0, 0, 103, 0},
        {"fixtures/models/qwen2-tiny", AIOS_ARCH_QWEN2, 64, 4, 2, 16, 144, 1, 1, 0, 1, AIOS_ATTN_CAUSAL, 0, 0, -1, -1},
        {"fixtures/models/qwen3-tiny", AIOS_ARCH_QWEN3, 32, 4, 2, 16, 80, 1, 0, 1, 1, AIOS_ATTN_CAUSAL, 0, 0, -1, -1},
        {"fixtures/models/llada-tiny", AIOS_ARCH_LLADA, 64, 4, 4, 16, 160, 0, 0, 0, 1, AIOS_ATTN_BIDIRECTIONAL, 0, 0, 999, -1},
        {"fixtures/models/dream-tiny", AIOS_ARCH_DREAM, 64, 4, 2, 16, 144, 1, 1, 0, 1, AIOS_ATTN_BIDIRECTIONAL, 1, 0, 999, -1},
        {"fixtures/models/bd3lm-qwen3-tiny", AIOS_ARCH_BD3LM, 32, 4, 2, 16, 80, 1, 0, 1, 1, AIOS_ATTN_BLOCK_CAUSAL, 0, 4, 999, 998},
        {"fixtures/models-lm/llama-tiny", AIOS_ARCH_LLAMA, 32, 4, 2, 8, 80, 0, 0, 0, 1, AIOS_ATTN_CAUSAL, 0, 0, -1, -1},
        {"fixtures/models-lm/smollm2-tiny", AIOS_ARCH_LLAMA, 32, 4, 2, 8, 80, 1, 0, 0, 1, AIOS_ATTN_CAUSAL, 0, 0, -1, -1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        aios_model *m;
        CHECK_OK(aios_model_open(aios_test_shared(want[i].dir), NULL, &m));
        if (!m) continue;
        const aios_model_config *c = aios_model_get_config(m);
        CHECKF(c->arch == want[i].arch && c->n_embd == want[i].n_embd && c->n_head == want[i].n_head &&
                   c->n_head_kv == want[i].n_head_kv && c->head_dim == want[i].head_dim && c->n_ff == want[i].n_ff,
               "%s: sizes", want[i].dir);
        CHECKF(c->tie_word_embeddings == want[i].tied && c->attn_qkv_bias == want[i].qkv_bias && c->qk_norm == want[i].qk_norm &&
                   c->rms_norm == want[i].rms,
               "%s: flags tied %d bias %d qk %d rms %d", want[i].dir, c->tie_word_embeddings, c->attn_qkv_bias, c->qk_norm, c->rms_norm);
        CHECKF(c->attention == want[i].attn && c->logit_shift == want[i].shift && c->block_size == want[i].block,
               "%s: diffusion facts", want[i].dir);
        CHECKF(c->mask_token_id == want[i].mask && c->pad_token_id == want[i].pad, "%s: ids mask %lld pad %lld", want[i].dir,
               (long long)c->mask_token_id, (long long)c->pad_token_id);
        CHECKF(c->rope_theta == 10000.0 && c->n_layer == 2, "%s: rope/layers", want[i].dir);
        aios_model_free(m);
    }
}

/* Real configs: Qwen2.5 (rope_theta at top level, tied), SmolLM2, MiniLM (sentence-transformers
 * pooling + Normalize), read through the config parser. */
static void test_real_configs(void) {
    char *text;
    size_t len;
    aios_model_config c;
    CHECK_OK(aios__read_file(aios_test_shared("models/qwen2.5-0.5b-instruct/config.json"), &text, &len));
    cJSON *o = cJSON_Parse(text);
    free(text);
    CHECK_OK(aios__model_config_parse(o, NULL, &c));
    cJSON_Delete(o);
    CHECK(c.arch == AIOS_ARCH_QWEN2 && c.rope_theta == 1000000.0 && c.n_head == 14 && c.n_head_kv == 2 && c.head_dim == 64);
    CHECK(c.tie_word_embeddings == 1 && c.attn_qkv_bias == 1 && fabsf(c.norm_eps - 1e-6f) < 1e-12f && c.eos_token_id == 151645);
    const char *mini = aios_test_shared("models/all-MiniLM-L6-v2");
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", mini);
    CHECK_OK(aios__read_file(p, &text, &len));
    o = cJSON_Parse(text);
    free(text);
    CHECK_OK(aios__model_config_parse(o, mini, &c));
    cJSON_Delete(o);
    CHECK(c.arch == AIOS_ARCH_BERT && c.pooling == AIOS_POOL_MEAN && c.normalize == 1 && c.embedding_dimension == 384);
    CHECK(c.rms_norm == 0 && c.norm_eps == 1e-12f && !strcmp(c.hidden_act, "gelu") && c.type_vocab_size == 2);
}

int main(void) {
    RUN(test_good_header);
    RUN(test_hostile_headers);
    RUN(test_truncated_and_lying_lengths);
    RUN(test_fixture_files);
    RUN(test_write_and_shards);
    RUN(test_fixture_configs);
    RUN(test_real_configs);
    TEST_MAIN_END();
}
