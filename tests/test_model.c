/* test_model.c — model directories: the seed's Parquet fixtures, convert round trips
 * (bit-identical views, zero-copy and aligned), quantize (packed views, error bounds, kept
 * tensors untouched), and the config surviving metadata.json. */
#include <stdint.h>
#include <sys/stat.h>

#include "core/internal.h"
#include "model/model_internal.h"
#include "tensor/quant.h"
#include "test.h"

static const char *g_models[] = {"fixtures/models/bert-tiny",        "fixtures/models/qwen2-tiny",
                                 "fixtures/models/qwen3-tiny",       "fixtures/models/llada-tiny",
                                 "fixtures/models/dream-tiny",       "fixtures/models/bd3lm-qwen3-tiny",
                                 "fixtures/models-lm/llama-tiny",    "fixtures/models-lm/smollm2-tiny"};

static void test_seed_fixtures_open(void) {
    aios_model *m;
    CHECK_OK(aios_model_open(aios_test_shared("fixtures/parquet/weights_v1.parquet"), NULL, &m));
    if (m) {
        CHECK(!strcmp(aios_model_format(m), "parquet-v1") && aios_model_num_tensors(m) == 5);
        const aios_tensor *t = aios_model_tensor(m, "layer.2.weight");
        CHECK(t && t->dtype == AIOS_DTYPE_F32 && t->ndim == 3 && t->shape[0] == 3 && t->shape[1] == 5 && t->shape[2] == 2);
        size_t sz;
        const uint8_t *base = aios_pq_file_data(m->pq, &sz);
        CHECK(t && (const uint8_t *)t->data >= base && (const uint8_t *)t->data + t->nbytes <= base + sz); /* zero copy */
        aios_model_free(m);
    }
    CHECK_OK(aios_model_open(aios_test_shared("fixtures/parquet/weights_v2.parquet"), NULL, &m));
    if (m) {
        CHECK(!strcmp(aios_model_format(m), "parquet-v2"));
        const aios_tensor *a = aios_model_tensor(m, "layer.0.weight"), *b = aios_model_tensor(m, "layer.3.weight");
        CHECK(a && a->dtype == AIOS_DTYPE_Q8 && a->n_scales == 1 && a->zero_points && a->nbytes == 32);
        CHECK(b && b->dtype == AIOS_DTYPE_Q2 && b->nbytes == 64 && b->shape[0] == 16);
        aios_model_free(m);
    }
}

static int same_config(const aios_model_config *a, const aios_model_config *b) {
    return a->arch == b->arch && a->n_embd == b->n_embd && a->n_layer == b->n_layer && a->n_head == b->n_head &&
           a->n_head_kv == b->n_head_kv && a->head_dim == b->head_dim && a->n_ff == b->n_ff && a->n_vocab == b->n_vocab &&
           a->n_ctx_train == b->n_ctx_train && a->type_vocab_size == b->type_vocab_size && a->norm_eps == b->norm_eps &&
           a->rms_norm == b->rms_norm && !strcmp(a->hidden_act, b->hidden_act) && a->rope_theta == b->rope_theta &&
           !strcmp(a->rope_type, b->rope_type) && a->rope_factor == b->rope_factor &&
           a->tie_word_embeddings == b->tie_word_embeddings && a->attn_qkv_bias == b->attn_qkv_bias &&
           a->attn_out_bias == b->attn_out_bias && a->mlp_bias == b->mlp_bias && a->qk_norm == b->qk_norm &&
           a->pooling == b->pooling && a->normalize == b->normalize && a->embedding_dimension == b->embedding_dimension &&
           a->mask_token_id == b->mask_token_id && a->pad_token_id == b->pad_token_id && a->bos_token_id == b->bos_token_id &&
           a->eos_token_id == b->eos_token_id && a->is_diffusion == b->is_diffusion && a->attention == b->attention &&
           a->logit_shift == b->logit_shift && a->block_size == b->block_size && !strcmp(a->model_name, b->model_name);
}

/* HF directory -> convert -> ArrowEngine directory: the same tensors, byte for byte, as views
 * into the Parquet mapping at 64-byte aligned offsets; the same config. */
static void test_convert_roundtrip(void) {
    for (size_t i = 0; i < sizeof g_models / sizeof g_models[0]; i++) {
        char out[700];
        snprintf(out, sizeof out, "%s/conv-%zu", aios_test_tmpdir(), i);
        CHECK_OK(aios_model_convert(aios_test_shared(g_models[i]), out));
        aios_model *a = NULL, *b = NULL;
        CHECK_OK(aios_model_open(aios_test_shared(g_models[i]), NULL, &a));
        CHECK_OK(aios_model_open(out, NULL, &b));
        if (!a || !b) {
            aios_model_free(a);
            aios_model_free(b);
            continue;
        }
        CHECKF(!strcmp(aios_model_format(b), "parquet-v1"), "%s: format %s", g_models[i], aios_model_format(b));
        CHECKF(aios_model_num_tensors(a) == aios_model_num_tensors(b), "%s: tensor count", g_models[i]);
        size_t sz;
        const uint8_t *base = aios_pq_file_data(b->pq, &sz);
        for (int64_t k = 0; k < aios_model_num_tensors(a) && k < aios_model_num_tensors(b); k++) {
            const aios_tensor *x = aios_model_tensor_at(a, k), *y = aios_model_tensor_at(b, k);
            CHECKF(!strcmp(x->name, y->name) && x->dtype == y->dtype && x->ndim == y->ndim && x->nbytes == y->nbytes,
                   "%s: %s", g_models[i], x->name);
            CHECKF(!memcmp(x->shape, y->shape, sizeof x->shape) && !memcmp(x->data, y->data, x->nbytes), "%s: %s bytes",
                   g_models[i], x->name);
            const uint8_t *d = y->data;
            CHECKF(d >= base && d + y->nbytes <= base + sz, "%s: %s not a view into the mapping", g_models[i], y->name);
            CHECKF((size_t)(d - base) % 64 == 0, "%s: %s at unaligned offset %zu", g_models[i], y->name, (size_t)(d - base));
        }
        CHECKF(same_config(aios_model_get_config(a), aios_model_get_config(b)), "%s: config differs after metadata.json", g_models[i]);
        CHECKF((aios_model_tokenizer_path(a) != NULL) == (aios_model_tokenizer_path(b) != NULL), "%s: tokenizer", g_models[i]);
        aios_model_free(a);
        aios_model_free(b);
        /* converting the converted directory gives the same again (Parquet -> Parquet) */
        char out2[800];
        snprintf(out2, sizeof out2, "%s/again", out);
        CHECK_OK(aios_model_convert(out, out2));
    }
}

/* quantize: quantized views are packed in the mapping and dequantize within half a step;
 * kept tensors are the original bytes; a quantized model re-quantized (copied) stays equal. */
static void test_quantize(void) {
    const char *src = aios_test_shared("fixtures/models/qwen3-tiny");
    static const struct {
        int bits;
        int32_t group;
        int pc, sym;
    } cases[] = {{8, 0, 1, 0}, {4, 16, 0, 0}, {2, 0, 0, 1}, {4, 0, 1, 1}, {2, 8, 0, 0}};
    aios_model *orig;
    CHECK_OK(aios_model_open(src, NULL, &orig));
    if (!orig) return;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        aios_quantize_params p = aios_quantize_default_params();
        p.bits = cases[c].bits;
        p.group_size = cases[c].group;
        p.per_channel = cases[c].pc;
        p.symmetric = cases[c].sym;
        const char *keep[] = {"*.mlp.down_proj.*", NULL};
        p.keep = keep;
        char out[700];
        snprintf(out, sizeof out, "%s/q-%zu", aios_test_tmpdir(), c);
        CHECK_OK(aios_model_quantize(src, out, &p));
        aios_model *q;
        CHECK_OK(aios_model_open(out, NULL, &q));
        if (!q) continue;
        CHECK(!strcmp(aios_model_format(q), "parquet-v2"));
        int nq = 0;
        for (int64_t k = 0; k < aios_model_num_tensors(orig); k++) {
            const aios_tensor *x = aios_model_tensor_at(orig, k), *y = aios_model_tensor(q, x->name);
            CHECKF(y != NULL, "%s missing", x->name);
            if (!y) continue;
            int64_t n = aios_tensor_numel(x);
            if (!aios_dtype_is_quant(y->dtype)) {
                CHECKF(y->dtype == x->dtype && !memcmp(x->data, y->data, x->nbytes), "%s: kept tensor changed", x->name);
                CHECKF(x->ndim < 2 || strstr(x->name, "embed") || strstr(x->name, "down_proj"), "%s kept", x->name);
                continue;
            }
            nq++;
            CHECK(aios_quant_bits(y->dtype) == cases[c].bits && (y->zero_points == NULL || !cases[c].sym || 1));
            CHECKF(strstr(x->name, "down_proj") == NULL, "%s quantized despite --keep", x->name);
            float *fx = malloc((size_t)n * 4), *fy = malloc((size_t)n * 4);
            CHECK_OK(aios_quant_dequantize_ref(x, fx));
            CHECK_OK(aios_quant_dequantize_ref(y, fy));
            int64_t rows, cols;
            aios_tensor_rows_cols(y, &rows, &cols);
            for (int64_t e = 0; e < n; e++) {
                int64_t si = aios_quant_scale_index(y, cols, e);
                float s;
                memcpy(&s, (const uint8_t *)y->scales + 4 * si, 4);
                if (!cases[c].sym)
                    CHECKF(fabsf(fy[e] - fx[e]) <= 0.5f * s * 1.0001f + 1e-7f, "%s[%lld]: %g vs %g (scale %g)", x->name,
                           (long long)e, (double)fy[e], (double)fx[e], (double)s);
            }
            if (cases[c].group) CHECK(y->group_size == cases[c].group && y->n_scales == n / cases[c].group);
            else if (cases[c].pc) CHECK(y->quant_axis == 0 && y->n_scales == rows);
            else CHECK(y->quant_axis == -1 && y->n_scales == 1);
            free(fx);
            free(fy);
        }
        CHECKF(nq == 2 * 6, "case %zu: %d quantized", c, nq); /* q,k,v,o,gate,up per layer */
        CHECK(same_config(aios_model_get_config(orig), aios_model_get_config(q)));
        /* V2 -> convert refuses (V1 has no quantized rows); V2 -> quantize copies packed rows */
        char out2[800];
        snprintf(out2, sizeof out2, "%s/v1", out);
        CHECK(aios_model_convert(out, out2) == AIOS_ERR_UNSUPPORTED);
        snprintf(out2, sizeof out2, "%s/again", out);
        CHECK_OK(aios_model_quantize(out, out2, &p));
        aios_model *q2;
        CHECK_OK(aios_model_open(out2, NULL, &q2));
        for (int64_t k = 0; q2 && k < aios_model_num_tensors(q); k++) {
            const aios_tensor *x = aios_model_tensor_at(q, k), *y = aios_model_tensor(q2, x->name);
            CHECK(y && y->dtype == x->dtype && y->nbytes == x->nbytes && !memcmp(x->data, y->data, x->nbytes));
            CHECK(y && y->n_scales == x->n_scales && (!x->scales || !memcmp(x->scales, y->scales, (size_t)x->n_scales * 4)));
        }
        aios_model_free(q2);
        aios_model_free(q);
    }
    aios_quantize_params bad = aios_quantize_default_params();
    bad.bits = 3;
    CHECK(aios_model_quantize(src, aios_test_tmpdir(), &bad) == AIOS_ERR_INVALID_ARG);
    aios_model_free(orig);
}

/* inspect prints config and tensors; errors for what is not a model. */
static void test_inspect(void) {
    char p[700];
    snprintf(p, sizeof p, "%s/inspect.txt", aios_test_tmpdir());
    FILE *f = fopen(p, "w");
    CHECK_OK(aios_model_inspect(aios_test_shared("fixtures/models/bd3lm-qwen3-tiny"), f));
    fclose(f);
    char *text;
    size_t len;
    CHECK_OK(aios__read_file(p, &text, &len));
    CHECK(strstr(text, "bd3lm") && strstr(text, "block-causal") && strstr(text, "block_size 4"));
    CHECK(strstr(text, "model.layers.1.self_attn.q_norm.weight") && strstr(text, "bf16"));
    free(text);
    f = fopen(p, "w");
    CHECK(aios_model_inspect(aios_test_shared("fixtures/parquet/scalars.parquet"), f) == AIOS_ERR_FORMAT);
    fclose(f);
    CHECK(strstr(aios_last_error(), "layer_name") != NULL);
}

static void write_text_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* A directory as the seed's ArrowEngine writes it: only the seed's metadata.json fields. */
static void test_seed_metadata_dir(void) {
    char dir[700], p[800];
    snprintf(dir, sizeof dir, "%s/seed-dir", aios_test_tmpdir());
    mkdir(dir, 0777);
    aios_map mp;
    CHECK_OK(aios__map_file(aios_test_shared("fixtures/parquet/weights_v1.parquet"), &mp));
    snprintf(p, sizeof p, "%s/weights.parquet", dir);
    FILE *f = fopen(p, "wb");
    fwrite(mp.data, 1, mp.size, f);
    fclose(f);
    aios__unmap_file(&mp);
    snprintf(p, sizeof p, "%s/metadata.json", dir);
    write_text_file(p, "{\"model_name\": \"all-MiniLM-L6-v2\", \"architecture\": \"BertModel\", \"hidden_size\": 384,"
                       " \"num_layers\": 6, \"num_attention_heads\": 12, \"intermediate_size\": 1536,"
                       " \"max_position_embeddings\": 512, \"vocab_size\": 30522, \"layer_norm_eps\": 1e-12,"
                       " \"embedding_dimension\": 384}");
    aios_model_params mp2 = aios_model_default_params();
    mp2.verify = 1;
    aios_model *m;
    CHECK_OK(aios_model_open(dir, &mp2, &m));
    if (m) {
        const aios_model_config *c = aios_model_get_config(m);
        CHECK(c->arch == AIOS_ARCH_BERT && c->n_layer == 6 && c->n_embd == 384 && c->head_dim == 32 && c->n_ff == 1536);
        CHECK(c->rms_norm == 0 && c->norm_eps == 1e-12f && c->pooling == AIOS_POOL_MEAN && c->embedding_dimension == 384);
        CHECK(!strcmp(c->model_name, "all-MiniLM-L6-v2") && aios_model_num_tensors(m) == 5);
        aios_model_free(m);
    }
    write_text_file(p, "{\"model_name\": \"qwen\", \"architecture\": \"Qwen2ForCausalLM\", \"hidden_size\": 896,"
                       " \"num_layers\": 24, \"num_attention_heads\": 14, \"num_key_value_heads\": 2, \"intermediate_size\": 4864,"
                       " \"max_position_embeddings\": 32768, \"vocab_size\": 151936, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0}");
    CHECK_OK(aios_model_open(dir, NULL, &m));
    if (m) {
        const aios_model_config *c = aios_model_get_config(m);
        CHECK(c->arch == AIOS_ARCH_QWEN2 && c->rms_norm == 1 && c->norm_eps == 1e-6f && c->rope_theta == 1e6);
        CHECK(c->n_head_kv == 2 && c->head_dim == 64 && c->attention == AIOS_ATTN_CAUSAL && c->attn_qkv_bias == 1);
        aios_model_free(m);
    }
    write_text_file(p, "{\"architecture\": \"qwen2\", \"attention\": \"sideways\"}");
    CHECK(aios_model_open(dir, NULL, &m) == AIOS_ERR_CONFIG && strstr(aios_last_error(), "metadata.json"));
}

int main(void) {
    RUN(test_seed_fixtures_open);
    RUN(test_convert_roundtrip);
    RUN(test_quantize);
    RUN(test_inspect);
    RUN(test_seed_metadata_dir);
    TEST_MAIN_END();
}
