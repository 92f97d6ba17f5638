/*
 * model.c — opening a model: a Hugging Face directory (config.json + safetensors, sharded or
 * not) or the seed's ArrowEngine directory (metadata.json + weights.parquet), or one weights
 * file; tensor views by name; inspect / convert.
 *
 * Key decisions:
 *  - Opening maps files and builds views (aios_tensor) pointing into the mappings; no tensor
 *    byte is read (the OS faults pages in as kernels touch them).  Every view is validated
 *    at open (shape, dtype, byte length, scales), so later code can trust it.
 *  - Tensors from every shard are merged into one array sorted by name (binary search); a name
 *    in two shards is an error, and so is an index.json naming a missing shard or tensor.
 *  - Config comes from config.json (HF) or metadata.json (ArrowEngine), parsed by one
 *    alias-aware parser (model_config.c), then completed from the tensors present.
 *  - convert writes Schema V1 with every tensor in its stored dtype (bit-identical round trip);
 *    quantize writes Schema V2 (model_parquet.c).
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "format/gguf.h"
#include "model/model_internal.h"
#include "tensor/quant.h"
#include "tokenizer/tok_internal.h"

aios_model_params aios_model_default_params(void) {
    aios_model_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

void aios_model_free(aios_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_st; i++) aios_safetensors_close(m->st[i]);
    for (int i = 0; i < m->n_cols; i++) aios_pq_column_free(&m->cols[i]);
    if (m->pq) aios_parquet_close(m->pq);
    aios_gguf_close(m->gguf);
    free(m->chat_template);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->cols);
    free(m->st);
    free(m->t);
    free(m->names);
    free(m->path);
    free(m->dir);
    free(m->tokenizer_path);
    free(m);
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const aios_tensor *)a)->name, ((const aios_tensor *)b)->name);
}

/* Sorts m->t by name and rejects duplicates. */
static aios_status sort_tensors(aios_model *m) {
    qsort(m->t, (size_t)m->n, sizeof *m->t, cmp_tensor);
    for (int64_t i = 1; i < m->n; i++)
        if (!strcmp(m->t[i].name, m->t[i - 1].name))
            return aios__err(AIOS_ERR_FORMAT, "tensor '%s' appears twice", m->t[i].name);
    return AIOS_OK;
}

static aios_status add_shard(aios_model *m, const char *path) {
    aios_safetensors **ns = realloc(m->st, (size_t)(m->n_st + 1) * sizeof *ns);
    if (!ns) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    m->st = ns;
    aios_safetensors *st;
    AIOS_TRY(aios_safetensors_open(path, &st));
    m->st[m->n_st++] = st;
    int64_t k = aios_safetensors_count(st);
    aios_tensor *nt = realloc(m->t, (size_t)(m->n + k + 1) * sizeof *nt);
    if (!nt) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    m->t = nt;
    for (int64_t i = 0; i < k; i++) m->t[m->n++] = *aios_safetensors_tensor(st, i);
    return AIOS_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* model.safetensors.index.json: {"metadata": {...}, "weight_map": {"tensor": "shard file"}}. */
static aios_status load_index(aios_model *m, const char *index_path) {
    char *text;
    size_t len;
    AIOS_TRY(aios__read_file(index_path, &text, &len));
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    aios_status s = AIOS_OK;
    char **files = NULL;
    int nf = 0;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        s = aios__err(AIOS_ERR_FORMAT, "%s: %s", index_path, root ? "no weight_map object" : "not valid JSON");
        goto done;
    }
    int n = cJSON_GetArraySize(wm);
    files = calloc((size_t)n + 1, sizeof *files);
    if (!files) {
        s = aios__err(AIOS_ERR_NOMEM, "out of memory");
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !strcmp(e->valuestring, "..") || !e->valuestring[0]) {
            s = aios__err(AIOS_ERR_FORMAT, "%s: weight_map['%s'] is not a file name in the directory", index_path, e->string);
            goto done;
        }
        files[nf++] = e->valuestring;
    }
    qsort(files, (size_t)nf, sizeof *files, cmp_str);
    for (int i = 0; i < nf; i++) {
        if (i && !strcmp(files[i], files[i - 1])) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", m->dir, files[i]);
        if ((s = add_shard(m, p))) goto done;
    }
    if ((s = sort_tensors(m))) goto done;
    /* every tensor the index names must be in the shard it names */
    cJSON_ArrayForEach(e, wm) {
        const aios_tensor *t = aios_model_tensor(m, e->string);
        if (!t) {
            s = aios__err(AIOS_ERR_FORMAT, "%s: tensor '%s' is listed in the index but in no shard", index_path, e->string);
            goto done;
        }
    }
done:
    free(files);
    cJSON_Delete(root);
    return s;
}

static aios_status load_config(aios_model *m) {
    char p[4096];
    const char *names[] = {"config.json", "metadata.json"};
    /* ArrowEngine directories are described by metadata.json; HF ones by config.json */
    int parquet = !strncmp(m->format, "parquet", 7);
    for (int k = 0; k < 2; k++) {
        const char *nm = names[parquet ? 1 - k : k];
        snprintf(p, sizeof p, "%s/%s", m->dir, nm);
        if (!is_file(p)) continue;
        char *text;
        size_t len;
        AIOS_TRY(aios__read_file(p, &text, &len));
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        if (!root) {
            aios_status s = aios__err(AIOS_ERR_CONFIG, "%s: not valid JSON (near byte %zu)", p,
                                      end ? (size_t)(end - text) : (size_t)0);
            free(text);
            return s;
        }
        free(text);
        aios_status s = aios__model_config_parse(root, m->dir, &m->cfg);
        cJSON_Delete(root);
        if (s) return aios__err_prefix(s, "%s", p);
        break;
    }
    if (!m->cfg.model_name[0]) {
        const char *b = strrchr(m->dir, '/');
        snprintf(m->cfg.model_name, sizeof m->cfg.model_name, "%s", b && b[1] ? b + 1 : m->dir);
    }
    return AIOS_OK;
}

/* A config without mask_token_id (BERT) still has a mask token: the tokenizer's added token
 * "[MASK]" / "<mask>" / "<|mask|>".  Only the `added_tokens` array near the top of tokenizer.json
 * is parsed (the vocabulary after it can be megabytes); a file without one leaves -1. */
/* A GGUF file: by its magic (whatever the name). */
static int is_gguf(const char *path) {
    FILE *f = fopen(path, "rb");
    char b[4] = {0};
    int ok = f && fread(b, 1, 4, f) == 4 && !memcmp(b, "GGUF", 4);
    if (f) fclose(f);
    return ok;
}

static void mask_from_tokenizer(aios_model *m) {
    aios_map mp;
    if (aios__map_file(m->tokenizer_path, &mp) != AIOS_OK) {
        aios_clear_error();
        return;
    }
    static const char key[] = "\"added_tokens\"";
    size_t lim = AIOS_MIN(mp.size, (size_t)1 << 20);
    const uint8_t *k = memmem(mp.data, lim, key, sizeof key - 1);
    const uint8_t *a = k ? memchr(k, '[', (size_t)(mp.data + mp.size - k)) : NULL;
    if (a) {
        const char *end = NULL;
        cJSON *arr = cJSON_ParseWithLengthOpts((const char *)a, (size_t)(mp.data + mp.size - a), &end, 0);
        static const char *names[] = {"[MASK]", "<mask>", "<|mask|>", "<|mdm_mask|>"};
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content"), *id = cJSON_GetObjectItemCaseSensitive(e, "id");
            if (!cJSON_IsString(c) || !cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 1e12) continue;
            for (size_t i = 0; i < AIOS_ARRAY_LEN(names); i++)
                if (!strcmp(c->valuestring, names[i])) m->cfg.mask_token_id = (int64_t)id->valuedouble;
            if (m->cfg.mask_token_id >= 0) break;
        }
        cJSON_Delete(arr);
    }
    aios__unmap_file(&mp);
}

static aios_status open_impl(aios_model *m, const aios_model_params *pr) {
    char p[4096];
    const char *weights = NULL;
    if (is_dir(m->path)) {
        m->dir = strdup(m->path);
        if (!m->dir) return aios__err(AIOS_ERR_NOMEM, "out of memory");
        size_t l = strlen(m->dir);
        while (l > 1 && m->dir[l - 1] == '/') m->dir[--l] = 0;
        char meta[4096];
        snprintf(meta, sizeof meta, "%s/metadata.json", m->dir);
        snprintf(p, sizeof p, "%s/weights.parquet", m->dir);
        if (is_file(p) && is_file(meta)) weights = p;
        if (!weights) {
            snprintf(p, sizeof p, "%s/model.safetensors.index.json", m->dir);
            if (is_file(p)) weights = p;
        }
        if (!weights) {
            snprintf(p, sizeof p, "%s/model.safetensors", m->dir);
            if (is_file(p)) weights = p;
        }
        if (!weights) {
            snprintf(p, sizeof p, "%s/weights.parquet", m->dir);
            if (is_file(p)) weights = p;
        }
        if (!weights)
            return aios__err(AIOS_ERR_NOT_FOUND,
                             "%s: no weights (looked for weights.parquet + metadata.json, model.safetensors.index.json, "
                             "model.safetensors)",
                             m->dir);
    } else if (is_file(m->path)) {
        const char *sl = strrchr(m->path, '/');
        m->dir = sl ? strndup(m->path, (size_t)(sl - m->path) + (sl == m->path)) : strdup(".");
        if (!m->dir) return aios__err(AIOS_ERR_NOMEM, "out of memory");
        snprintf(p, sizeof p, "%s", m->path);
        weights = p;
    } else {
        return aios__err(AIOS_ERR_NOT_FOUND, "%s: no such file or directory", m->path);
    }

    if (is_gguf(weights)) {
        /* one self-describing file: config, tokenizer and chat template are in its metadata */
        m->format = "gguf";
        AIOS_TRY(aios__model_load_gguf(m, weights));
        AIOS_TRY(sort_tensors(m));
        for (int64_t i = 0; i < m->n; i++) AIOS_TRY(aios_tensor_validate(&m->t[i]));
        aios__model_config_from_tensors(m);
        if (aios_gguf_get_arr(m->gguf, "tokenizer.ggml.tokens", AIOS_GGUF_STRING) && !(m->tokenizer_path = strdup(weights)))
            return aios__err(AIOS_ERR_NOMEM, "out of memory");
        return AIOS_OK;
    }
    if (ends_with(weights, ".parquet")) {
        m->format = "parquet-v1";
        AIOS_TRY(aios__model_load_parquet(m, weights));
    } else if (ends_with(weights, ".index.json")) {
        m->format = "safetensors";
        AIOS_TRY(load_index(m, weights));
    } else {
        m->format = "safetensors";
        AIOS_TRY(add_shard(m, weights));
    }
    AIOS_TRY(sort_tensors(m));
    for (int64_t i = 0; i < m->n; i++) AIOS_TRY(aios_tensor_validate(&m->t[i]));
    if (pr && pr->verify) {
        /* touch every page: proves the mapping is readable end to end */
        volatile uint8_t acc = 0;
        for (int64_t i = 0; i < m->n; i++)
            for (size_t k = 0; k < m->t[i].nbytes; k += 4096) acc ^= ((const uint8_t *)m->t[i].data)[k];
        (void)acc;
    }
    AIOS_TRY(load_config(m));
    aios__model_config_from_tensors(m);
    snprintf(p, sizeof p, "%s/tokenizer.json", m->dir);
    if (is_file(p) && !(m->tokenizer_path = strdup(p))) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    if (m->tokenizer_path && m->cfg.mask_token_id < 0) mask_from_tokenizer(m);
    return AIOS_OK;
}

aios_status aios_model_open(const char *path, const aios_model_params *params, aios_model **out) {
    *out = NULL;
    if (!path || !*path) return aios__err(AIOS_ERR_INVALID_ARG, "model: empty path");
    aios_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return aios__err(AIOS_ERR_NOMEM, "out of memory");
    }
    aios_status s = open_impl(m, params);
    if (s) {
        aios__err_prefix(s, "model: %s", path);
        aios_model_free(m);
        return s;
    }
    *out = m;
    return AIOS_OK;
}

const aios_model_config *aios_model_get_config(const aios_model *m) { return &m->cfg; }
const char *aios_model_format(const aios_model *m) { return m->format; }
const char *aios_model_path(const aios_model *m) { return m->path; }
const char *aios_model_tokenizer_path(const aios_model *m) { return m->tokenizer_path; }
int64_t aios_model_num_tensors(const aios_model *m) { return m ? m->n : 0; }

int64_t aios_model_find_tensor(const aios_model *m, const char *name) {
    int64_t lo = 0, hi = m->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->t[mid].name, name);
        if (!c) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

const aios_tensor *aios_model_tensor(const aios_model *m, const char *name) {
    int64_t i = m && name ? aios_model_find_tensor(m, name) : -1;
    return i >= 0 ? &m->t[i] : NULL;
}

const aios_tensor *aios_model_tensorf(const aios_model *m, const char *fmt, ...) {
    char name[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof name) return NULL;
    return aios_model_tensor(m, name);
}

const aios_tensor *aios_model_tensor_at(const aios_model *m, int64_t i) {
    return m && i >= 0 && i < m->n ? &m->t[i] : NULL;
}

aios_status aios_model_require(const aios_model *m, const char *name, int ndim, const int64_t *shape,
                               const aios_tensor **out) {
    const aios_tensor *t = aios_model_tensor(m, name);
    *out = NULL;
    if (!t) return aios__err(AIOS_ERR_NOT_FOUND, "model %s: tensor '%s' is missing", m->path, name);
    if (t->ndim != ndim) return aios__err(AIOS_ERR_SHAPE, "model %s: tensor '%s' has %d dims, expected %d", m->path, name, t->ndim, ndim);
    for (int i = 0; shape && i < ndim; i++)
        if (shape[i] >= 0 && t->shape[i] != shape[i])
            return aios__err(AIOS_ERR_SHAPE, "model %s: tensor '%s' dim %d is %lld, expected %lld", m->path, name, i,
                             (long long)t->shape[i], (long long)shape[i]);
    *out = t;
    return AIOS_OK;
}

aios_status aios_model_tensor_info(const aios_model *m, int64_t i, aios_tensor_info *o) {
    const aios_tensor *t = aios_model_tensor_at(m, i);
    memset(o, 0, sizeof *o);
    if (!t) return aios__err(AIOS_ERR_RANGE, "model: tensor index %lld out of range", (long long)i);
    o->name = t->name;
    o->dtype = aios_dtype_name(t->dtype);
    o->ndim = t->ndim;
    for (int d = 0; d < t->ndim && d < 8; d++) o->shape[d] = t->shape[d];
    o->numel = aios_tensor_numel(t);
    o->nbytes = t->nbytes;
    o->quantized = aios_dtype_is_quant(t->dtype);
    o->n_scales = o->quantized ? t->n_scales : 0;
    o->quant_axis = t->quant_axis;
    o->group_size = t->group_size;
    o->symmetric = o->quantized && !t->zero_points;
    return AIOS_OK;
}

aios_status aios_model_tensor_f32(const aios_model *m, int64_t i, float *out) {
    const aios_tensor *t = aios_model_tensor_at(m, i);
    if (!t) return aios__err(AIOS_ERR_RANGE, "model: tensor index %lld out of range", (long long)i);
    return aios_quant_dequantize_ref(t, out);
}

/* ---- inspect ---------------------------------------------------------------------- */

static void fmt_bytes(char *b, size_t n, double v) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int k = 0;
    while (v >= 1024 && k < 4) {
        v /= 1024;
        k++;
    }
    snprintf(b, n, k ? "%.1f %s" : "%.0f %s", v, u[k]);
}

aios_status aios_model_inspect(const char *path, FILE *out) {
    aios_model *m;
    if (is_file(path) && is_gguf(path)) {
        /* the file as gguf-dump shows it, then (when it is a model we run) what the engine sees */
        aios_gguf *g;
        AIOS_TRY(aios_gguf_open(path, &g));
        aios_gguf_dump(g, out);
        int n_t = (int)aios_gguf_tensor_count(g);
        aios_gguf_close(g);
        if (n_t == 0) return AIOS_OK; /* vocab-only file */
        if (aios_model_open(path, NULL, &m) != AIOS_OK) {
            fprintf(out, "\nnot loadable as a model: %s\n", aios_last_error());
            aios_clear_error();
            return AIOS_OK;
        }
        fprintf(out, "\n---- as the engine loads it ----\n");
    } else {
        AIOS_TRY(aios_model_open(path, NULL, &m));
    }
    const aios_model_config *c = &m->cfg;
    fprintf(out, "model        %s\nformat       %s\ntokenizer    %s\n", m->path, m->format,
            m->tokenizer_path ? m->tokenizer_path : "(none)");
    fprintf(out, "arch         %s (model_type '%s', architecture '%s')\n", aios_arch_name(c->arch), c->model_type,
            c->architecture);
    fprintf(out, "n_embd %" PRId64 "  n_layer %" PRId64 "  n_head %" PRId64 "  n_head_kv %" PRId64 "  head_dim %" PRId64
                 "  n_ff %" PRId64 "  n_vocab %" PRId64 "  n_ctx_train %" PRId64 "\n",
            c->n_embd, c->n_layer, c->n_head, c->n_head_kv, c->head_dim, c->n_ff, c->n_vocab, c->n_ctx_train);
    fprintf(out, "norm         %s eps %g   act %s\n", c->rms_norm ? "rmsnorm" : "layernorm", (double)c->norm_eps, c->hidden_act);
    fprintf(out, "rope         theta %g type %s factor %g\n", c->rope_theta, c->rope_type, c->rope_factor);
    fprintf(out, "flags        tied %d  qkv_bias %d  out_bias %d  mlp_bias %d  qk_norm %d  type_vocab %" PRId64 "\n",
            c->tie_word_embeddings, c->attn_qkv_bias, c->attn_out_bias, c->mlp_bias, c->qk_norm, c->type_vocab_size);
    fprintf(out, "embedding    pooling %s  normalize %d  dim %" PRId64 "\n", aios__pool_name(c->pooling), c->normalize,
            c->embedding_dimension);
    fprintf(out, "tokens       mask %" PRId64 "  pad %" PRId64 "  bos %" PRId64 "  eos %" PRId64 "\n", c->mask_token_id,
            c->pad_token_id, c->bos_token_id, c->eos_token_id);
    fprintf(out, "diffusion    %s  attention %s  logit_shift %d  block_size %" PRId64 "\n", c->is_diffusion ? "yes" : "no",
            aios__attn_name(c->attention), c->logit_shift, c->block_size);
    fprintf(out, "\n%-60s %-6s %-20s %12s %12s  %s\n", "tensor", "dtype", "shape", "params", "bytes", "quantization");
    int64_t params = 0;
    double bytes = 0;
    for (int64_t i = 0; i < m->n; i++) {
        const aios_tensor *t = &m->t[i];
        char shp[64] = "[", q[96] = "";
        for (int d = 0; d < t->ndim; d++) {
            size_t l = strlen(shp);
            snprintf(shp + l, sizeof shp - l, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        }
        strncat(shp, "]", sizeof shp - strlen(shp) - 1);
        if (aios_dtype_is_quant(t->dtype)) {
            if (t->group_size > 0) snprintf(q, sizeof q, "group %d", t->group_size);
            else snprintf(q, sizeof q, t->quant_axis == 0 ? "per-channel" : "per-tensor");
            size_t l = strlen(q);
            snprintf(q + l, sizeof q - l, ", %lld %sscales, %s", (long long)t->n_scales,
                     t->scale_dtype == AIOS_DTYPE_F16 ? "f16 " : "", t->zero_points ? "asymmetric" : "symmetric");
        }
        int64_t n = aios_tensor_numel(t);
        size_t sb = aios_tensor_scale_bytes(t);
        fprintf(out, "%-60s %-6s %-20s %12lld %12zu  %s\n", t->name, aios_dtype_name(t->dtype), shp, (long long)n,
                t->nbytes + sb, q);
        params += n;
        bytes += (double)(t->nbytes + sb);
    }
    char bb[32];
    fmt_bytes(bb, sizeof bb, bytes);
    fprintf(out, "\n%lld tensors, %lld parameters, %s of weights (%.2f bits per parameter)\n", (long long)m->n,
            (long long)params, bb, params ? bytes * 8 / (double)params : 0.0);
    aios_model_free(m);
    return AIOS_OK;
}

/* ---- convert / quantize ------------------------------------------------------------ */

static aios_status mkdir_p(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return aios__err(AIOS_ERR_IO, "%s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return aios__err(AIOS_ERR_IO, "%s: %s", p, strerror(errno));
    if (!is_dir(p)) return aios__err(AIOS_ERR_IO, "%s: not a directory", p);
    return AIOS_OK;
}

static aios_status copy_file(const char *from, const char *to) {
    aios_map mp;
    AIOS_TRY(aios__map_file(from, &mp));
    FILE *f = fopen(to, "wb");
    int ok = f && (mp.size == 0 || fwrite(mp.data, 1, mp.size, f) == mp.size);
    if (f && fclose(f) != 0) ok = 0;
    aios__unmap_file(&mp);
    return ok ? AIOS_OK : aios__err(AIOS_ERR_IO, "%s: write failed", to);
}

static aios_status write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return aios__err(AIOS_ERR_IO, "%s: %s", path, strerror(errno));
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF;
    if (fclose(f) != 0) ok = 0;
    return ok ? AIOS_OK : aios__err(AIOS_ERR_IO, "%s: write failed", path);
}

/* Side files that travel with the weights (tokenizer, sentence-transformers pooling). */
static aios_status copy_side_files(const aios_model *m, const char *out_dir) {
    static const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                                  "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json",
                                  "generation_config.json", "modules.json", "sentence_bert_config.json",
                                  "config_sentence_transformers.json", "1_Pooling/config.json"};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(files); i++) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s", m->dir, files[i]);
        if (!is_file(a)) continue;
        snprintf(b, sizeof b, "%s/%s", out_dir, files[i]);
        if (strchr(files[i], '/')) {
            char d[4096];
            snprintf(d, sizeof d, "%s/1_Pooling", out_dir);
            AIOS_TRY(mkdir_p(d));
        }
        if (strcmp(a, b)) AIOS_TRY(copy_file(a, b));
    }
    return AIOS_OK;
}

/* A GGUF source carries its tokenizer and chat template in its metadata: written out as the
 * tokenizer.json / tokenizer_config.json the directory formats use (same ids, same template). */
static aios_status write_gguf_tokenizer(const aios_model *m, const char *out_dir) {
    if (!m->tokenizer_path) return AIOS_OK; /* no tokenizer.ggml.tokens */
    char *json = NULL, *cfg = NULL, p[4096];
    AIOS_TRY(aios__tokenizer_gguf_json(m->gguf, &json, &cfg));
    cJSON *c = cJSON_Parse(cfg);
    free(cfg);
    cfg = NULL;
    if (c && m->chat_template) cJSON_AddStringToObject(c, "chat_template", m->chat_template);
    if (c) cfg = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    aios_status s = cfg ? AIOS_OK : aios__err(AIOS_ERR_NOMEM, "out of memory");
    if (!s) {
        snprintf(p, sizeof p, "%s/tokenizer.json", out_dir);
        s = write_text(p, json);
    }
    if (!s) {
        snprintf(p, sizeof p, "%s/tokenizer_config.json", out_dir);
        s = write_text(p, cfg);
    }
    free(json);
    free(cfg);
    return s;
}

static aios_status write_dir(const char *in_path, const char *out_dir, const aios_quantize_params *q) {
    aios_model *m;
    AIOS_TRY(aios_model_open(in_path, NULL, &m));
    aios_status s = mkdir_p(out_dir);
    char p[4096], qname[64] = "none";
    if (!s) {
        snprintf(p, sizeof p, "%s/weights.parquet", out_dir);
        s = aios__model_write_parquet(m, p, q);
    }
    if (!s && q) {
        snprintf(qname, sizeof qname, "int%d%s%s", q->bits, q->symmetric ? "-symmetric" : "",
                 q->group_size > 0 ? "-group" : q->per_channel ? "-per-channel" : "-per-tensor");
        if (q->group_size > 0) snprintf(qname + strlen(qname), sizeof qname - strlen(qname), "%d", q->group_size);
        if (q->f16_scales) snprintf(qname + strlen(qname), sizeof qname - strlen(qname), "-f16-scales");
    }
    if (!s) {
        if (!q && m->gguf) snprintf(qname, sizeof qname, "gguf-blocks"); /* written as V2 + extension */
        char *meta = aios__model_metadata_json(m, q || m->gguf ? qname : NULL);
        snprintf(p, sizeof p, "%s/metadata.json", out_dir);
        s = meta ? write_text(p, meta) : aios__err(AIOS_ERR_NOMEM, "out of memory");
        free(meta);
    }
    if (!s && m->gguf) s = write_gguf_tokenizer(m, out_dir);
    else if (!s) s = copy_side_files(m, out_dir);
    aios_model_free(m);
    return s;
}

aios_status aios_model_convert(const char *in_path, const char *out_dir) {
    return write_dir(in_path, out_dir, NULL);
}

aios_quantize_params aios_quantize_default_params(void) {
    aios_quantize_params p;
    memset(&p, 0, sizeof p);
    p.bits = 8;
    p.per_channel = 1;
    p.keep_defaults = 1;
    return p;
}

aios_status aios_model_quantize(const char *in_path, const char *out_dir, const aios_quantize_params *p) {
    if (!p || (p->bits != 8 && p->bits != 4 && p->bits != 2))
        return aios__err(AIOS_ERR_INVALID_ARG, "quantize: bits must be 8, 4 or 2");
    if (p->group_size < 0) return aios__err(AIOS_ERR_INVALID_ARG, "quantize: group size must be >= 0");
    const int cls[2] = {p->embed_bits, p->output_bits};
    for (int i = 0; i < 2; i++)
        if (cls[i] != 0 && cls[i] != AIOS_QUANT_KEEP && cls[i] != 8 && cls[i] != 4 && cls[i] != 2)
            return aios__err(AIOS_ERR_INVALID_ARG, "quantize: %s bits must be 8, 4, 2, 0 (default) or -1 (keep)",
                             i ? "output" : "embedding");
    return write_dir(in_path, out_dir, p);
}
