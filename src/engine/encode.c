/*
 * encode.c — sentence embeddings: text -> tokens -> BERT -> pooling -> L2 (the seed's
 * EmbeddingProvider / ArrowEngine.encode).
 *
 * Settings follow sentence-transformers: pooling from 1_Pooling/config.json (or
 * metadata.json, via the model's config), normalization when modules.json lists a Normalize
 * module, and truncation to sentence_bert_config.json's max_seq_length (else metadata.json
 * "max_seq_length", else the model's position count).  The tokenizer's own padding and
 * truncation settings in tokenizer.json are overridden (sentence-transformers does the same:
 * it pads to the longest text of a batch and truncates to max_seq_length).
 *
 * Batching: texts are tokenized together, ordered by length (longest first, stable) and run
 * batch_size at a time, each batch's texts packed back to back without padding
 * (aios_bert_forward_packed: the matrix products run on the real tokens only, attention per
 * text; padding a batch of STS sentences to its longest cost 1.4x the rows).  A text's
 * embedding is the same alone or in a batch.  Results are written back in the caller's order.
 */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/encode_internal.h"
#include "kernels/kernels.h"
#include "model/bert.h"
#include "model/model.h"
#include "tensor/quant.h"

struct aios_encoder {
    aios_model *model;
    aios_tokenizer *tok;
    aios_bert *bert;
    aios_pooling pooling;
    int normalize;
    int64_t max_length, dim;
    int batch_size;
    int32_t pad_id;
    aios_int8_act int8_act; /* as asked (params) */
    int int8_weights;       /* every layer's matrices are int8 (Q8) */
    /* params.quantize_bits 8: the layer matrices quantized at open, owned here (the bert's
     * tensor pointers point at qt[i]; qbuf[i] holds its bytes, scales and zero points) */
    aios_tensor *qt;
    void **qbuf;
    int n_q, cap_q;
    aios_status q_status; /* the first quantization failure of the lookup (then float is used) */
    char q_msg[256];      /* its message, restored after bert_load */
    /* batch buffers, grown as needed */
    float *hidden;
    size_t hidden_floats;
    int32_t *ids;  /* a batch's token ids, packed back to back */
    int64_t *lens; /* its texts' token counts */
    size_t ids_cap, lens_cap;
};

aios_encoder_params aios_encoder_default_params(void) {
    aios_encoder_params p;
    memset(&p, 0, sizeof p);
    p.pooling = AIOS_POOL_NONE;
    p.normalize = -1;
    p.max_length = 0;
    p.batch_size = 32;
    p.n_threads = 0;
    p.int8_act = AIOS_INT8_ACT_AUTO;
    p.quantize_bits = 0;
    return p;
}

static const aios_tensor *model_lookup(void *ctx, const char *name) { return aios_model_tensor(ctx, name); }

/* A layer matrix of the encoder stack: "[bert.]encoder.layer.N.<...>.weight", 2-D (the six
 * matrices per layer; the LayerNorm weights are 1-D). */
static int layer_matrix(const char *name, const aios_tensor *t) {
    size_t n = strlen(name);
    return t->ndim == 2 && strstr(name, "encoder.layer.") && n > 7 && !strcmp(name + n - 7, ".weight") &&
           !strstr(name, "LayerNorm");
}

/* quantize_bits 8: the lookup hands bert_load an int8 copy of every float layer matrix, made as
 * `aios quantize --type int8` makes it (per output channel, asymmetric min/max: the layout whose
 * STS-B budget docs/encode.md measures), so the encoder takes the int8 path without a quantized
 * model directory on disk.  Already-quantized tensors are used as stored.  Pointers into e->qt
 * stay valid: the array is sized for every tensor of the model up front. */
static const aios_tensor *quant_lookup(void *ctx, const char *name) {
    aios_encoder *e = ctx;
    const aios_tensor *t = aios_model_tensor(e->model, name);
    if (!t || !layer_matrix(name, t) || aios_dtype_is_quant(t->dtype) || e->q_status) return t;
    for (int i = 0; i < e->n_q; i++)
        if (!strcmp(e->qt[i].name, t->name)) return &e->qt[i];
    if (e->n_q == e->cap_q) return t; /* cannot happen: cap_q is the model's tensor count */
    int64_t rows = t->shape[0], cols = t->shape[1], n = rows * cols;
    aios_quant_params qp = {.type = AIOS_DTYPE_Q8, .per_channel = 1};
    size_t qb = (size_t)n, off = (qb + 63) & ~(size_t)63;
    uint8_t *buf = malloc(off + 2 * (size_t)rows * sizeof(float));
    float *x = malloc((size_t)n * sizeof *x);
    aios_status s = buf && x ? AIOS_OK : aios__err(AIOS_ERR_NOMEM, "encode: quantizing %s", name);
    float *sc = buf ? (float *)(buf + off) : NULL, *zp = sc ? sc + rows : NULL;
    if (!s) s = aios_tensor_to_f32(x, t);
    if (!s) s = aios_quantize_f32(x, rows, cols, &qp, buf, sc, zp);
    free(x);
    if (s) {
        free(buf);
        e->q_status = s;
        snprintf(e->q_msg, sizeof e->q_msg, "quantizing %s: %s", name, aios_last_error());
        return t;
    }
    aios_tensor *q = &e->qt[e->n_q];
    *q = *t;
    q->dtype = AIOS_DTYPE_Q8;
    q->data = buf;
    q->nbytes = qb;
    q->scales = sc;
    q->zero_points = zp;
    q->n_scales = rows;
    q->quant_axis = 0;
    q->group_size = 0;
    q->scale_dtype = AIOS_DTYPE_F32;
    e->qbuf[e->n_q++] = buf;
    return q;
}

/* max_seq_length from sentence_bert_config.json or metadata.json in dir; 0 when absent. */
static int64_t st_max_seq_length(const char *dir) {
    static const char *files[] = {"sentence_bert_config.json", "metadata.json"};
    for (size_t i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        char *txt;
        size_t len;
        if (aios__read_file(path, &txt, &len) != AIOS_OK) continue;
        cJSON *j = cJSON_ParseWithLength(txt, len);
        free(txt);
        const cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, "max_seq_length") : NULL;
        int64_t n =
            cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < 1e9 ? (int64_t)v->valuedouble : 0;
        cJSON_Delete(j);
        if (n) return n;
    }
    aios_clear_error();
    return 0;
}

void aios_encoder_free(aios_encoder *e) {
    if (!e) return;
    aios_bert_free(e->bert);
    aios_tokenizer_free(e->tok);
    aios_model_free(e->model);
    free(e->hidden);
    free(e->ids);
    free(e->lens);
    for (int i = 0; i < e->n_q; i++)
        free(e->qbuf[i]);
    free(e->qbuf);
    free(e->qt);
    free(e);
}

aios_status aios_encoder_open(const char *model_path, const aios_encoder_params *params, aios_encoder **out) {
    if (!model_path || !out) return aios__err(AIOS_ERR_INVALID_ARG, "encode: NULL argument");
    *out = NULL;
    aios_encoder_params p = params ? *params : aios_encoder_default_params();
    if (p.batch_size <= 0) p.batch_size = 32;
    if (p.int8_act != AIOS_INT8_ACT_AUTO && p.int8_act != AIOS_INT8_ACT_OFF && p.int8_act != AIOS_INT8_ACT_ON)
        return aios__err(AIOS_ERR_INVALID_ARG, "encode: int8_act %d", (int)p.int8_act);
    if (p.n_threads > 0) aios_set_threads(p.n_threads);
    aios_encoder *e = calloc(1, sizeof *e);
    if (!e) return aios__err(AIOS_ERR_NOMEM, "encode");
    aios_status s = aios_model_open(model_path, NULL, &e->model);
    if (s != AIOS_OK) goto fail;
    const aios_model_config *c = aios_model_get_config(e->model);
    if (c->arch != AIOS_ARCH_BERT) {
        s = aios__err(AIOS_ERR_UNSUPPORTED, "encode: %s: architecture %s is not a BERT-family encoder",
                      model_path, aios_arch_name(c->arch));
        goto fail;
    }
    if (c->hidden_act[0] && strcmp(c->hidden_act, "gelu")) {
        s = aios__err(AIOS_ERR_UNSUPPORTED, "encode: %s: hidden_act '%s' (only \"gelu\")", model_path,
                      c->hidden_act);
        goto fail;
    }
    aios_bert_hparams hp = {.n_embd = c->n_embd,
                            .n_layer = c->n_layer,
                            .n_head = c->n_head,
                            .n_ff = c->n_ff,
                            .n_vocab = c->n_vocab,
                            .n_ctx = c->n_ctx_train,
                            .type_vocab_size = c->type_vocab_size,
                            .eps = c->norm_eps > 0 ? c->norm_eps : 1e-12f};
    if (p.quantize_bits != 0 && p.quantize_bits != 8) {
        s = aios__err(AIOS_ERR_INVALID_ARG, "encode: quantize_bits %d (0 or 8)", p.quantize_bits);
        goto fail;
    }
    if (p.quantize_bits == 8) {
        int64_t nt = aios_model_num_tensors(e->model);
        e->cap_q = nt > 0 && nt < (1 << 20) ? (int)nt : 0;
        e->qt = calloc((size_t)e->cap_q + 1, sizeof *e->qt);
        e->qbuf = calloc((size_t)e->cap_q + 1, sizeof *e->qbuf);
        if (!e->qt || !e->qbuf) {
            s = aios__err(AIOS_ERR_NOMEM, "encode");
            goto fail;
        }
    }
    s = p.quantize_bits == 8 ? aios_bert_load(&hp, quant_lookup, e, &e->bert)
                             : aios_bert_load(&hp, model_lookup, e->model, &e->bert);
    if (e->q_status) s = aios__err(e->q_status, "%s", e->q_msg); /* no silent float fallback */
    if (s != AIOS_OK) {
        aios__err_prefix(s, "encode: %s", model_path);
        goto fail;
    }
    const char *tp = aios_model_tokenizer_path(e->model);
    if (!tp) {
        s = aios__err(AIOS_ERR_NOT_FOUND, "encode: %s: no tokenizer.json beside the model", model_path);
        goto fail;
    }
    if ((s = aios_tokenizer_load(tp, &e->tok)) != AIOS_OK) goto fail;
    aios_tok_special_ids sp = aios_tokenizer_special_ids(e->tok);
    e->pad_id = sp.pad >= 0 ? sp.pad : (c->pad_token_id >= 0 ? (int32_t)c->pad_token_id : 0);
    if (e->pad_id >= hp.n_vocab) e->pad_id = 0;
    e->dim = c->n_embd;
    e->pooling = p.pooling != AIOS_POOL_NONE    ? p.pooling
                 : c->pooling != AIOS_POOL_NONE ? c->pooling
                                                : AIOS_POOL_MEAN;
    if (e->pooling != AIOS_POOL_MEAN && e->pooling != AIOS_POOL_CLS && e->pooling != AIOS_POOL_MAX &&
        e->pooling != AIOS_POOL_MEAN_SQRT_LEN && e->pooling != AIOS_POOL_LAST) {
        s = aios__err(AIOS_ERR_UNSUPPORTED, "encode: pooling %d", (int)e->pooling);
        goto fail;
    }
    e->normalize = p.normalize >= 0 ? !!p.normalize : c->normalize;
    /* truncation limit: explicit, else sentence-transformers' max_seq_length, else positions */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", aios_model_path(e->model));
    {
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/config.json", dir);
        FILE *f = fopen(probe, "r");
        if (f)
            fclose(f);
        else {
            snprintf(probe, sizeof probe, "%s/metadata.json", dir);
            if (!(f = fopen(probe, "r"))) {
                char tmp[4096];
                snprintf(tmp, sizeof tmp, "%s", dir);
                snprintf(dir, sizeof dir, "%s", dirname(tmp)); /* opened from a file */
            } else
                fclose(f);
        }
    }
    int64_t lim = st_max_seq_length(dir);
    e->max_length = p.max_length > 0 ? p.max_length : lim > 0 ? lim : hp.n_ctx;
    if (e->max_length > hp.n_ctx) e->max_length = hp.n_ctx;
    e->batch_size = p.batch_size;
    e->int8_act = p.int8_act;
    e->int8_weights = aios_bert_int8_weights(e->bert);
    *out = e;
    return AIOS_OK;
fail:
    aios_encoder_free(e);
    return s;
}

/* The kernels' thread mode for this encoder's products (aios_kernels_int8_thread_mode): the
 * explicit parameter, else the process setting (AIOS_INT8_ACT / aios_kernels_int8_activations),
 * else the per-group VNNI GEMM for int8 weights — the path whose STS-B budget holds (82.03, the
 * f32 figure; tests/py/test_encode.py) — and exact float for every other model.  The per-row
 * path below 8 rows stays out of the default: it had cost MiniLM 0.26 Spearman points. */
static int int8_thread_mode(const aios_encoder *e) {
    if (e->int8_act == AIOS_INT8_ACT_OFF) return 0;
    if (e->int8_act == AIOS_INT8_ACT_ON) return 1;
    if (e->int8_act == AIOS_INT8_ACT_16) return 0; /* 16-bit activations are the decoders' mode */
    int g = aios_kernels_int8_setting();
    if (g >= 0) return g == 3 ? 0 : g;
    return e->int8_weights && aios_cpu()->avx512vnni ? 2 : 0;
}

int aios_encoder_int8_activations(const aios_encoder *e) { return e ? int8_thread_mode(e) : 0; }

int64_t aios_encoder_dim(const aios_encoder *e) { return e ? e->dim : 0; }
int64_t aios_encoder_max_length(const aios_encoder *e) { return e ? e->max_length : 0; }
aios_pooling aios_encoder_pooling(const aios_encoder *e) { return e ? e->pooling : AIOS_POOL_NONE; }
int aios_encoder_normalizes(const aios_encoder *e) { return e ? e->normalize : 0; }

float aios_similarity(const float *a, const float *b, int64_t dim) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < dim; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa <= 0 || bb <= 0) return 0.0f;
    return (float)(ab / sqrt(aa * bb));
}

/* out (E) = pooled row of one sequence: h (L, E), n real tokens at the front. */
static void pool(const aios_encoder *e, const float *h, int64_t n, float *out) {
    const int64_t E = e->dim;
    switch (e->pooling) {
    case AIOS_POOL_CLS:
        memcpy(out, h, sizeof(float) * (size_t)E);
        break;
    case AIOS_POOL_LAST:
        memcpy(out, h + (n - 1) * E, sizeof(float) * (size_t)E);
        break;
    case AIOS_POOL_MAX:
        memcpy(out, h, sizeof(float) * (size_t)E);
        for (int64_t t = 1; t < n; t++)
            for (int64_t i = 0; i < E; i++)
                out[i] = h[t * E + i] > out[i] ? h[t * E + i] : out[i];
        break;
    default: { /* mean (and mean / sqrt(len)) in double: sums over up to 512 rows */
        for (int64_t i = 0; i < E; i++) {
            double s = 0;
            for (int64_t t = 0; t < n; t++)
                s += h[t * E + i];
            out[i] = (float)(e->pooling == AIOS_POOL_MEAN_SQRT_LEN ? s / sqrt((double)n) : s / (double)n);
        }
    }
    }
    if (e->normalize) {
        double ss = 0;
        for (int64_t i = 0; i < E; i++)
            ss += (double)out[i] * out[i];
        double nrm = sqrt(ss);
        float inv = (float)(1.0 / (nrm > 1e-12 ? nrm : 1e-12)); /* torch.nn.functional.normalize */
        for (int64_t i = 0; i < E; i++)
            out[i] *= inv;
    }
}

typedef struct {
    size_t idx, len;
} by_len;
static int cmp_len(const void *a, const void *b) {
    const by_len *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1; /* longest first */
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

aios_status aios_encode_ids(aios_encoder *e, const int32_t *const *ids, const size_t *lens, size_t n,
                            float *out, aios_encode_progress_fn progress, void *user) {
    if (!e || (n && (!ids || !lens || !out))) return aios__err(AIOS_ERR_INVALID_ARG, "encode: NULL argument");
    by_len *order = malloc(sizeof(by_len) * (n ? n : 1));
    if (!order) return aios__err(AIOS_ERR_NOMEM, "encode: %zu texts", n);
    for (size_t i = 0; i < n; i++) {
        order[i].idx = i;
        order[i].len = lens[i] > (size_t)e->max_length ? (size_t)e->max_length : lens[i];
        if (order[i].len == 0) {
            free(order);
            return aios__err(AIOS_ERR_INVALID_ARG, "encode: text %zu has no tokens", i);
        }
    }
    qsort(order, n, sizeof *order, cmp_len);
    aios_status s = AIOS_OK;
    const int64_t E = e->dim;
    for (size_t b0 = 0; b0 < n && s == AIOS_OK; b0 += (size_t)e->batch_size) {
        size_t B = n - b0 < (size_t)e->batch_size ? n - b0 : (size_t)e->batch_size;
        size_t need = 0; /* the batch's real tokens: packed back to back, no padding */
        for (size_t b = 0; b < B; b++)
            need += order[b0 + b].len;
        if (need > e->ids_cap || B > e->lens_cap) {
            int32_t *pi = need > e->ids_cap ? realloc(e->ids, need * sizeof(int32_t)) : e->ids;
            if (pi) e->ids = pi, e->ids_cap = AIOS_MAX(e->ids_cap, need);
            int64_t *pl = B > e->lens_cap ? realloc(e->lens, B * sizeof(int64_t)) : e->lens;
            if (pl) e->lens = pl, e->lens_cap = AIOS_MAX(e->lens_cap, B);
            if (!pi || !pl) {
                s = aios__err(AIOS_ERR_NOMEM, "encode: batch of %zu texts, %zu tokens", B, need);
                break;
            }
        }
        if (need * (size_t)E > e->hidden_floats) {
            float *ph = realloc(e->hidden, need * (size_t)E * sizeof(float));
            if (!ph) {
                s = aios__err(AIOS_ERR_NOMEM, "encode: batch of %zu texts, %zu tokens", B, need);
                break;
            }
            e->hidden = ph;
            e->hidden_floats = need * (size_t)E;
        }
        for (size_t b = 0, r = 0; b < B; b++) {
            const by_len *o = &order[b0 + b];
            const int32_t *src = ids[o->idx];
            size_t len = o->len;
            /* truncation keeps the final [SEP]-like token, as tokenizers' post-processor does
             * when truncation happens before it; ids arriving here are usually pre-truncated */
            for (size_t t = 0; t < len; t++)
                e->ids[r++] = t == len - 1 && len < lens[o->idx] ? src[lens[o->idx] - 1] : src[t];
            e->lens[b] = (int64_t)len;
        }
        /* on this thread only: the kernels read the mode here, not in their OpenMP workers */
        int prev = aios_kernels_int8_thread_mode(int8_thread_mode(e));
        s = aios_bert_forward_packed(e->bert, e->ids, NULL, e->lens, (int64_t)B, e->hidden);
        aios_kernels_int8_thread_mode(prev);
        if (s != AIOS_OK) break;
        for (size_t b = 0, r = 0; b < B; r += order[b0 + b].len, b++)
            pool(e, e->hidden + r * (size_t)E, (int64_t)order[b0 + b].len,
                 out + order[b0 + b].idx * (size_t)E);
        if (progress && progress(user, b0 + B, n)) s = aios__err(AIOS_ERR_CANCELLED, "encode: cancelled");
    }
    free(order);
    return s;
}

/* Long texts: only their first max_length tokens are used, but tokenizing all of a 15 MB text
 * first held every token of it (ids, strings, offsets, masks: ~90 bytes of memory per input
 * byte, 1.3 GB peak).  A text is cut instead at the start of a whitespace run: BERT-family
 * tokenizers split words at whitespace before their model runs, so the tokens before the cut
 * are those of the whole text.  The cut starts at 16 bytes per token and doubles until the
 * prefix holds more than max_length tokens (then truncation gives exactly what the whole text
 * gives); peak memory is then linear in max_length, not in the text.  Returns the length to
 * tokenize (len when no cut is needed or possible). */
static size_t covering_prefix(const aios_encoder *e, const char *text, size_t len,
                              const aios_tok_params *tp) {
    size_t want = (size_t)e->max_length;
    if (!text || !want) return len;
    aios_tok_params full = *tp;
    full.max_length = 0; /* count the prefix's tokens untruncated */
    for (size_t cut = want * 16 + 256; cut < len; cut *= 2) {
        size_t c = cut;
        /* back to the first whitespace of a run, preceded by a non-space */
        while (c > 0 && !(text[c] == ' ' || text[c] == '\n' || text[c] == '\t' || text[c] == '\r'))
            c--;
        while (c > 0 &&
               (text[c - 1] == ' ' || text[c - 1] == '\n' || text[c - 1] == '\t' || text[c - 1] == '\r'))
            c--;
        if (c == 0) continue; /* no word boundary in reach: look further */
        aios_encoding *enc = NULL;
        if (aios_tokenizer_encode(e->tok, text, c, &full, &enc) != AIOS_OK) {
            aios_clear_error();
            return len; /* let the whole text report its own error */
        }
        size_t got = enc->n;
        aios_encoding_free(enc);
        if (got > want) return c;
    }
    return len;
}

/* The tokenizer settings of every encode: specials, truncation to max_length, no padding. */
static aios_tok_params encode_params(const aios_encoder *e) {
    aios_tok_params tp = aios_tokenizer_default_params(e->tok);
    tp.add_special_tokens = 1;
    tp.max_length = (size_t)e->max_length;
    tp.trunc_strategy = AIOS_TRUNC_LONGEST_FIRST;
    tp.trunc_left = 0;
    tp.stride = 0;
    tp.pad_strategy = AIOS_PAD_NONE;
    tp.pad_to_multiple_of = 0;
    return tp;
}

aios_status aios__encode_token_count(const aios_encoder *e, const char *text, size_t len, size_t *n) {
    *n = 0;
    if (!e || (!text && len)) return aios__err(AIOS_ERR_INVALID_ARG, "encode: NULL argument");
    aios_tok_params tp = encode_params(e);
    aios_encoding *enc = NULL;
    AIOS_TRY(aios_tokenizer_encode(e->tok, text ? text : "", covering_prefix(e, text, len, &tp), &tp, &enc));
    *n = enc->n;
    aios_encoding_free(enc);
    return AIOS_OK;
}

aios_status aios_encode_batch(aios_encoder *e, const char *const *texts, const size_t *lens, size_t n,
                              float *out, aios_encode_progress_fn progress, void *user) {
    if (!e || (n && (!texts || !out))) return aios__err(AIOS_ERR_INVALID_ARG, "encode: NULL argument");
    if (!n) return AIOS_OK;
    aios_tok_params tp = encode_params(e);
    aios_encoding **enc = calloc(n, sizeof *enc);
    size_t *tl = malloc(sizeof(size_t) * n), *bl = malloc(sizeof(size_t) * n);
    const int32_t **tid = malloc(sizeof(int32_t *) * n);
    aios_status s = AIOS_OK;
    if (!enc || !tl || !bl || !tid) {
        s = aios__err(AIOS_ERR_NOMEM, "encode: %zu texts", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        bl[i] = lens ? lens[i] : (texts[i] ? strlen(texts[i]) : 0);
    for (size_t i = 0; i < n; i++)
        bl[i] = covering_prefix(e, texts[i], bl[i], &tp);
    s = aios_tokenizer_encode_batch(e->tok, texts, bl, n, &tp, 0, enc);
    if (s != AIOS_OK) goto done;
    for (size_t i = 0; i < n; i++) {
        tid[i] = enc[i]->ids;
        tl[i] = enc[i]->n;
    }
    s = aios_encode_ids(e, tid, tl, n, out, progress, user);
done:
    if (enc)
        for (size_t i = 0; i < n; i++)
            aios_encoding_free(enc[i]);
    free(enc), free(tl), free(bl), free(tid);
    return s;
}

aios_status aios_encode(aios_encoder *e, const char *text, size_t len, float *out) {
    const char *texts[1] = {text ? text : ""};
    size_t lens[1] = {text ? len : 0};
    return aios_encode_batch(e, texts, lens, 1, out, NULL, NULL);
}
