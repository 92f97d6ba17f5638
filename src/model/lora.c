/*
 * lora.c — LoRA adapters: the module set, the run-time delta, the PEFT directory format.
 *
 * Key decisions:
 *  - Every A and B of an adapter lives in one float32 allocation (aios_lora.data), so the
 *    trainer's optimizer state and gradients are flat arrays of the same length and order.
 *  - Modules are indexed (layer, target) for the forward hook; the delta is computed in two
 *    small products (x A^T, then u B^T), never by forming B @ A, so r stays the cost.
 *  - PEFT: adapter_config.json holds r, lora_alpha, target_modules, lora_dropout, use_rslora;
 *    anything that changes the arithmetic and is not implemented here (DoRA, fan_in_fan_out,
 *    rank/alpha patterns, biases, a regex target) is refused by name rather than misread.
 *    The tensors are PEFT's names: base_model.model.model.layers.N.<path>.lora_{A,B}.weight.
 *  - Writes are atomic: a temporary file in the same directory, fsync'd and renamed.
 * References: PEFT tuners/lora/layer.py (Linear.forward, reset_lora_parameters), config.py.
 */
#include "model/lora.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "format/safetensors.h"
#include "kernels/kernels.h"

static const char *const T_NAME[AIOS_LORA_N_TARGETS] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                        "gate_proj", "up_proj", "down_proj"};
static const char *const T_PATH[AIOS_LORA_N_TARGETS] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                        "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                                        "mlp.down_proj"};

const char *aios_lora_target_name(int t) { return t >= 0 && t < AIOS_LORA_N_TARGETS ? T_NAME[t] : "?"; }
const char *aios_lora_target_path(int t) { return t >= 0 && t < AIOS_LORA_N_TARGETS ? T_PATH[t] : "?"; }

static int target_from_name(const char *s, size_t n) {
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++)
        if (strlen(T_NAME[t]) == n && !memcmp(T_NAME[t], s, n)) return t;
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++)
        if (strlen(T_PATH[t]) == n && !memcmp(T_PATH[t], s, n)) return t;
    return -1;
}

aios_status aios_lora_targets_parse(const char *list, unsigned *mask) {
    *mask = 0;
    if (!list) return aios__err(AIOS_ERR_INVALID_ARG, "lora: no target modules");
    if (!strcmp(list, "all") || !strcmp(list, "all-linear")) {
        *mask = (1u << AIOS_LORA_N_TARGETS) - 1;
        return AIOS_OK;
    }
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ') p++, n--;
        while (n && p[n - 1] == ' ') n--;
        int t = target_from_name(p, n);
        if (t < 0)
            return aios__err(AIOS_ERR_INVALID_ARG,
                             "lora: target module '%.*s' (the model has q_proj k_proj v_proj o_proj gate_proj up_proj "
                             "down_proj)",
                             (int)AIOS_MIN(n, 64), p);
        *mask |= 1u << t;
        if (!e) break;
        p = e + 1;
    }
    if (!*mask) return aios__err(AIOS_ERR_INVALID_ARG, "lora: no target modules");
    return AIOS_OK;
}

void aios_lora_target_dims(const aios_decoder_config *c, int t, int64_t *n_out, int64_t *n_in) {
    int64_t E = c->n_embd, Q = c->n_head * c->head_dim, KV = c->n_head_kv * c->head_dim, F = c->n_ff;
    static const int o_in[AIOS_LORA_N_TARGETS] = {0, 0, 0, 1, 0, 0, 2};
    int64_t o[AIOS_LORA_N_TARGETS] = {Q, KV, KV, E, F, F, E};
    int64_t in[3] = {E, Q, F};
    *n_out = o[t];
    *n_in = in[o_in[t]];
}

/* zero: the parameters start at 0 (a new adapter); otherwise the caller writes every A and B
 * (a loaded one: clearing 3.9 MB first was 13% of a SmolLM2 adapter's load in perf) */
static aios_status lora_alloc(int64_t n_layer, int64_t r, double alpha, int rslora, unsigned targets,
                              const int64_t (*dims)[2], int zero, aios_lora **out) {
    *out = NULL;
    if (r <= 0 || r > 4096) return aios__err(AIOS_ERR_INVALID_ARG, "lora: rank %lld (must be 1..4096)", (long long)r);
    if (!(alpha > 0) || !isfinite(alpha)) return aios__err(AIOS_ERR_INVALID_ARG, "lora: alpha %g (must be > 0)", alpha);
    if (!targets) return aios__err(AIOS_ERR_INVALID_ARG, "lora: no target modules");
    if (n_layer <= 0 || n_layer > 4096) return aios__err(AIOS_ERR_INVALID_ARG, "lora: %lld layers", (long long)n_layer);
    aios_lora *a = calloc(1, sizeof *a);
    if (!a) return aios__err(AIOS_ERR_NOMEM, "lora");
    a->r = r, a->alpha = alpha, a->rslora = rslora, a->targets = targets, a->n_layer = n_layer;
    int nt = 0;
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++) nt += (targets >> t) & 1;
    a->n_mods = n_layer * nt;
    a->mods = calloc((size_t)a->n_mods, sizeof *a->mods);
    a->index = calloc((size_t)(n_layer * AIOS_LORA_N_TARGETS), sizeof *a->index);
    uint64_t total = 0;
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++)
        if ((targets >> t) & 1) total += (uint64_t)r * (uint64_t)(dims[t][0] + dims[t][1]);
    total *= (uint64_t)n_layer;
    if (total > ((uint64_t)1 << 34)) {
        aios_lora_free(a);
        return aios__err(AIOS_ERR_RANGE, "lora: %llu parameters", (unsigned long long)total);
    }
    a->data = zero ? calloc((size_t)AIOS_MAX(total, 1), sizeof(float)) : malloc((size_t)AIOS_MAX(total, 1) * sizeof(float));
    if (!a->mods || !a->index || !a->data) {
        aios_lora_free(a);
        return aios__err(AIOS_ERR_NOMEM, "lora: %llu parameters", (unsigned long long)total);
    }
    a->n_params = (int64_t)total;
    float *p = a->data;
    int64_t k = 0;
    for (int64_t l = 0; l < n_layer; l++)
        for (int t = 0; t < AIOS_LORA_N_TARGETS; t++) {
            if (!((targets >> t) & 1)) continue;
            aios_lora_module *m = &a->mods[k++];
            m->layer = l, m->target = t, m->n_out = dims[t][0], m->n_in = dims[t][1], m->r = r;
            m->A = p;
            p += r * m->n_in;
            m->B = p;
            p += r * m->n_out;
            a->index[l * AIOS_LORA_N_TARGETS + t] = m;
        }
    *out = a;
    return AIOS_OK;
}

aios_status aios_lora_create(const aios_decoder_config *c, unsigned targets, int64_t r, double alpha, int rslora,
                             aios_lora **out) {
    int64_t dims[AIOS_LORA_N_TARGETS][2];
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++) aios_lora_target_dims(c, t, &dims[t][0], &dims[t][1]);
    return lora_alloc(c->n_layer, r, alpha, rslora, targets, (const int64_t(*)[2])dims, 1, out);
}

void aios_lora_free(aios_lora *a) {
    if (!a) return;
    free(a->mods);
    free(a->index);
    free(a->data);
    free(a->protos);
    free(a->bf16);
    free(a);
}

void aios_lora_init_default(aios_lora *a, uint64_t seed) {
    uint64_t s = seed;
    aios_lora_changed(a);
    for (int64_t k = 0; k < a->n_mods; k++) {
        aios_lora_module *m = &a->mods[k];
        double bound = 1.0 / sqrt((double)m->n_in);
        for (int64_t i = 0; i < m->r * m->n_in; i++) m->A[i] = (float)((2.0 * aios_lora_rng_uniform(&s) - 1.0) * bound);
        memset(m->B, 0, (size_t)(m->r * m->n_out) * sizeof(float));
    }
}

float aios_lora_scaling(const aios_lora *a) {
    return (float)(a->rslora ? a->alpha / sqrt((double)a->r) : a->alpha / (double)a->r);
}

const aios_lora_module *aios_lora_get(const aios_lora *a, int64_t layer, int target) {
    if (!a || layer < 0 || layer >= a->n_layer || target < 0 || target >= AIOS_LORA_N_TARGETS) return NULL;
    return a->index[layer * AIOS_LORA_N_TARGETS + target];
}

aios_status aios_lora_check(const aios_lora *a, const aios_decoder_config *c) {
    if (a->n_layer != c->n_layer)
        return aios__err(AIOS_ERR_SHAPE, "lora: adapter has %lld layers, the model %lld", (long long)a->n_layer,
                         (long long)c->n_layer);
    for (int64_t k = 0; k < a->n_mods; k++) {
        const aios_lora_module *m = &a->mods[k];
        int64_t o, i;
        aios_lora_target_dims(c, m->target, &o, &i);
        if (m->n_out != o || m->n_in != i)
            return aios__err(AIOS_ERR_SHAPE, "lora: layer %lld %s is (%lld, %lld), the model's (%lld, %lld)",
                             (long long)m->layer, T_NAME[m->target], (long long)m->n_out, (long long)m->n_in,
                             (long long)o, (long long)i);
    }
    return AIOS_OK;
}

/* ------------------------------------------------------------------------------------------
 * PEFT adapter_config.json
 * ------------------------------------------------------------------------------------------ */

static int nonempty_object(const cJSON *v) { return cJSON_IsObject(v) && v->child; }

aios_status aios_peft_config_parse(const char *json, size_t len, aios_peft_config *c) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_ParseWithLength(json, len);
    aios_status st = AIOS_OK;
    if (!root || !cJSON_IsObject(root)) {
        st = aios__err(AIOS_ERR_FORMAT, "adapter_config.json: not a JSON object");
        goto out;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (v && !(cJSON_IsString(v) && !strcmp(v->valuestring, "LORA"))) {
        st = aios__err(AIOS_ERR_UNSUPPORTED, "adapter_config.json: peft_type %s (only LORA)",
                       cJSON_IsString(v) ? v->valuestring : "(not a string)");
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "r");
    int64_t r = 0;
    if (!cJSON_IsNumber(v) || !aios__f64_to_i64(v->valuedouble, &r) || (double)r != v->valuedouble || r <= 0 || r > 4096) {
        st = aios__err(AIOS_ERR_FORMAT, "adapter_config.json: r must be an integer in 1..4096");
        goto out;
    }
    c->r = r;
    v = cJSON_GetObjectItemCaseSensitive(root, "lora_alpha");
    c->alpha = cJSON_IsNumber(v) ? v->valuedouble : 8.0; /* PEFT's default */
    if (!(c->alpha > 0) || !isfinite(c->alpha)) {
        st = aios__err(AIOS_ERR_FORMAT, "adapter_config.json: lora_alpha must be a number > 0");
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "lora_dropout");
    c->dropout = cJSON_IsNumber(v) ? v->valuedouble : 0.0;
    if (!(c->dropout >= 0 && c->dropout < 1)) {
        st = aios__err(AIOS_ERR_FORMAT, "adapter_config.json: lora_dropout must be in [0, 1)");
        goto out;
    }
    c->rslora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "use_rslora"));
    static const char *const refused_true[] = {"use_dora", "fan_in_fan_out", "lora_bias", "use_qalora"};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(refused_true); i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, refused_true[i]))) {
            st = aios__err(AIOS_ERR_UNSUPPORTED, "adapter_config.json: %s=true is not supported", refused_true[i]);
            goto out;
        }
    v = cJSON_GetObjectItemCaseSensitive(root, "bias");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !strcmp(v->valuestring, "none"))) {
        st = aios__err(AIOS_ERR_UNSUPPORTED, "adapter_config.json: bias must be \"none\"");
        goto out;
    }
    static const char *const refused_obj[] = {"rank_pattern", "alpha_pattern"};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(refused_obj); i++)
        if (nonempty_object(cJSON_GetObjectItemCaseSensitive(root, refused_obj[i]))) {
            st = aios__err(AIOS_ERR_UNSUPPORTED, "adapter_config.json: %s is not supported", refused_obj[i]);
            goto out;
        }
    static const char *const refused_nonnull[] = {"layers_to_transform", "layer_replication", "modules_to_save",
                                                  "trainable_token_indices", "target_parameters"};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(refused_nonnull); i++) {
        v = cJSON_GetObjectItemCaseSensitive(root, refused_nonnull[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && !v->child)) {
            st = aios__err(AIOS_ERR_UNSUPPORTED, "adapter_config.json: %s is not supported", refused_nonnull[i]);
            goto out;
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    if (cJSON_IsString(v)) {
        if (aios_lora_targets_parse(v->valuestring, &c->targets) != AIOS_OK) {
            st = aios__err(AIOS_ERR_UNSUPPORTED, "adapter_config.json: target_modules \"%.64s\" (a regex is not supported; "
                           "give a list of module names)", v->valuestring);
            goto out;
        }
    } else if (cJSON_IsArray(v)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            if (!cJSON_IsString(e)) {
                st = aios__err(AIOS_ERR_FORMAT, "adapter_config.json: target_modules holds a non-string");
                goto out;
            }
            int t = target_from_name(e->valuestring, strlen(e->valuestring));
            if (t < 0) {
                st = aios__err(AIOS_ERR_UNSUPPORTED, "adapter_config.json: target module '%.64s' is not a decoder projection",
                               e->valuestring);
                goto out;
            }
            c->targets |= 1u << t;
        }
    }
    if (!c->targets) {
        st = aios__err(AIOS_ERR_FORMAT, "adapter_config.json: target_modules missing or empty");
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "base_model_name_or_path");
    if (cJSON_IsString(v)) snprintf(c->base_model, sizeof c->base_model, "%s", v->valuestring);
out:
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------------------------------------------
 * PEFT directory
 * ------------------------------------------------------------------------------------------ */

static void peft_name(char *buf, size_t n, int64_t layer, int target, char ab) {
    snprintf(buf, n, "base_model.model.model.layers.%lld.%s.lora_%c.weight", (long long)layer, T_PATH[target], ab);
}

/* Parses "base_model.model.model.layers.N.<path>.lora_X.weight" -> layer, target, X. */
static int parse_peft_name(const char *s, int64_t *layer, int *target, char *ab) {
    const char *pre = "base_model.model.model.layers.";
    size_t pl = strlen(pre);
    if (strncmp(s, pre, pl)) return 0;
    s += pl;
    char *end;
    errno = 0;
    long long l = strtoll(s, &end, 10);
    if (end == s || *end != '.' || errno || l < 0 || l > 4095) return 0;
    s = end + 1;
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++) {
        size_t n = strlen(T_PATH[t]);
        if (!strncmp(s, T_PATH[t], n) && (!strcmp(s + n, ".lora_A.weight") || !strcmp(s + n, ".lora_B.weight"))) {
            *layer = l, *target = t, *ab = s[n + 6];
            return 1;
        }
    }
    return 0;
}

static aios_status copy_f32(float *dst, const aios_tensor *t, int64_t rows, int64_t cols, const char *name) {
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return aios__err(AIOS_ERR_SHAPE, "adapter: %s: shape is not (%lld, %lld)", name, (long long)rows, (long long)cols);
    switch (t->dtype) {
    case AIOS_DTYPE_F32: case AIOS_DTYPE_F16: case AIOS_DTYPE_BF16: case AIOS_DTYPE_F64:
        break;
    default:
        return aios__err(AIOS_ERR_UNSUPPORTED, "adapter: %s: dtype is not a float type", name);
    }
    if (t->dtype == AIOS_DTYPE_F64) {
        for (int64_t i = 0; i < rows * cols; i++) {
            double x;
            memcpy(&x, (const char *)t->data + i * 8, 8);
            dst[i] = (float)x;
        }
        return AIOS_OK;
    }
    return aios_tensor_to_f32(dst, t);
}

aios_status aios_lora_load_peft(const char *dir, const aios_decoder_config *c, aios_lora **out) {
    *out = NULL;
    char p[4096];
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    char *json = NULL;
    size_t len = 0;
    AIOS_TRY(aios__read_file(p, &json, &len));
    aios_peft_config pc;
    aios_status s = aios_peft_config_parse(json, len, &pc);
    free(json);
    if (s != AIOS_OK) return aios__err_prefix(s, "%s", dir);
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    aios_safetensors *st = NULL;
    AIOS_TRY(aios_safetensors_open(p, &st));
    /* the layers and shapes come from the tensors; c (when given) must agree */
    int64_t n_layer = 0, dims[AIOS_LORA_N_TARGETS][2] = {{0}};
    unsigned seen = 0;
    for (int64_t i = 0; i < aios_safetensors_count(st); i++) {
        const aios_tensor *t = aios_safetensors_tensor(st, i);
        int64_t l;
        int tg;
        char ab;
        if (!parse_peft_name(t->name, &l, &tg, &ab)) {
            s = aios__err(AIOS_ERR_UNSUPPORTED, "%s: tensor '%.200s' is not a LoRA A/B of a decoder projection", p, t->name);
            goto fail;
        }
        if (!((pc.targets >> tg) & 1)) {
            s = aios__err(AIOS_ERR_FORMAT, "%s: tensor '%.200s' is for a module not in target_modules", p, t->name);
            goto fail;
        }
        if (t->ndim != 2) {
            s = aios__err(AIOS_ERR_SHAPE, "%s: %.200s is not 2-D", p, t->name);
            goto fail;
        }
        int64_t d = ab == 'A' ? t->shape[1] : t->shape[0];
        int64_t rr = ab == 'A' ? t->shape[0] : t->shape[1];
        if (rr != pc.r) {
            s = aios__err(AIOS_ERR_SHAPE, "%s: %.200s has rank %lld, adapter_config.json r=%lld", p, t->name, (long long)rr,
                          (long long)pc.r);
            goto fail;
        }
        int64_t *slot = &dims[tg][ab == 'A' ? 1 : 0];
        if (*slot && *slot != d) {
            s = aios__err(AIOS_ERR_SHAPE, "%s: %.200s: layers disagree on the module's size", p, t->name);
            goto fail;
        }
        *slot = d;
        seen |= 1u << tg;
        n_layer = AIOS_MAX(n_layer, l + 1);
    }
    if (!seen) {
        s = aios__err(AIOS_ERR_FORMAT, "%s: no LoRA tensors", p);
        goto fail;
    }
    if (c) {
        if (n_layer > c->n_layer) {
            s = aios__err(AIOS_ERR_SHAPE, "%s: adapter layer %lld beyond the model's %lld layers", p, (long long)(n_layer - 1),
                          (long long)c->n_layer);
            goto fail;
        }
        n_layer = c->n_layer;
        for (int t = 0; t < AIOS_LORA_N_TARGETS; t++) {
            int64_t o, i;
            aios_lora_target_dims(c, t, &o, &i);
            if (((seen >> t) & 1) && (dims[t][0] != o || dims[t][1] != i)) {
                s = aios__err(AIOS_ERR_SHAPE, "%s: %s is (%lld, %lld), the model's is (%lld, %lld)", p, T_NAME[t],
                              (long long)dims[t][0], (long long)dims[t][1], (long long)o, (long long)i);
                goto fail;
            }
            dims[t][0] = o, dims[t][1] = i;
        }
    }
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++)
        if (((seen >> t) & 1) && (!dims[t][0] || !dims[t][1])) {
            s = aios__err(AIOS_ERR_FORMAT, "%s: %s has lora_A or lora_B missing", p, T_NAME[t]);
            goto fail;
        }
    aios_lora *a = NULL;
    if ((s = lora_alloc(n_layer, pc.r, pc.alpha, pc.rslora, seen, (const int64_t(*)[2])dims, 0, &a)) != AIOS_OK) goto fail;
    a->dropout = pc.dropout;
    snprintf(a->base_model, sizeof a->base_model, "%s", pc.base_model);
    /* every module of every layer must be present: a missing one would silently be zero */
    for (int64_t k = 0; k < a->n_mods && s == AIOS_OK; k++) {
        aios_lora_module *m = &a->mods[k];
        char n[256];
        peft_name(n, sizeof n, m->layer, m->target, 'A');
        const aios_tensor *ta = aios_safetensors_find(st, n);
        if (!ta) {
            s = aios__err(AIOS_ERR_NOT_FOUND, "%s: %s missing", p, n);
            break;
        }
        if ((s = copy_f32(m->A, ta, m->r, m->n_in, n)) != AIOS_OK) break;
        peft_name(n, sizeof n, m->layer, m->target, 'B');
        const aios_tensor *tb = aios_safetensors_find(st, n);
        if (!tb) {
            s = aios__err(AIOS_ERR_NOT_FOUND, "%s: %s missing", p, n);
            break;
        }
        s = copy_f32(m->B, tb, m->n_out, m->r, n);
    }
    aios_safetensors_close(st);
    if (s != AIOS_OK) {
        aios_lora_free(a);
        return s;
    }
    *out = a;
    return AIOS_OK;
fail:
    aios_safetensors_close(st);
    return s;
}

static aios_status mkdir_one(const char *dir) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return aios__err(AIOS_ERR_IO, "%s: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return aios__err(AIOS_ERR_IO, "%s: not a directory", dir);
    return AIOS_OK;
}


/* A finite double as the shortest of %.15g..%.17g that reads back exactly: cJSON's own printer
 * accepts 15 digits when they come back within an epsilon, which moves some values by an ulp
 * (fuzz_peft_config: lora_alpha 8.7777777777777774e+121 came back 8.77777777777778e+121). */
static void add_exact_number(cJSON *o, const char *key, double v) {
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    cJSON_AddRawToObject(o, key, buf);
}

char *aios__lora_peft_config_json(const aios_lora *a) {
    cJSON *o = cJSON_CreateObject();
    cJSON *tm = cJSON_CreateArray();
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++)
        if ((a->targets >> t) & 1) cJSON_AddItemToArray(tm, cJSON_CreateString(T_NAME[t]));
    cJSON_AddItemToObject(o, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddStringToObject(o, "base_model_name_or_path", a->base_model);
    cJSON_AddStringToObject(o, "bias", "none");
    cJSON_AddBoolToObject(o, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(o, "inference_mode", 1);
    cJSON_AddBoolToObject(o, "init_lora_weights", 1);
    cJSON_AddNullToObject(o, "layers_pattern");
    cJSON_AddNullToObject(o, "layers_to_transform");
    add_exact_number(o, "lora_alpha", a->alpha);
    add_exact_number(o, "lora_dropout", a->dropout);
    cJSON_AddNullToObject(o, "modules_to_save");
    cJSON_AddStringToObject(o, "peft_type", "LORA");
    cJSON_AddNumberToObject(o, "r", (double)a->r);
    cJSON_AddItemToObject(o, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(o, "revision");
    cJSON_AddItemToObject(o, "target_modules", tm);
    cJSON_AddStringToObject(o, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(o, "use_dora", 0);
    cJSON_AddBoolToObject(o, "use_rslora", a->rslora);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

aios_status aios_lora_save_peft(const aios_lora *a, const char *dir) {
    AIOS_TRY(mkdir_one(dir));
    int64_t n = a->n_mods * 2;
    aios_tensor *ts = calloc((size_t)n, sizeof *ts);
    const aios_tensor **tp = calloc((size_t)n, sizeof *tp);
    char (*names)[256] = calloc((size_t)n, sizeof *names);
    aios_status s = AIOS_OK;
    if (!ts || !tp || !names) {
        s = aios__err(AIOS_ERR_NOMEM, "adapter");
        goto out;
    }
    for (int64_t k = 0; k < a->n_mods; k++) {
        const aios_lora_module *m = &a->mods[k];
        for (int j = 0; j < 2; j++) {
            aios_tensor *t = &ts[2 * k + j];
            peft_name(names[2 * k + j], sizeof names[0], m->layer, m->target, j ? 'B' : 'A');
            t->name = names[2 * k + j];
            t->dtype = AIOS_DTYPE_F32;
            t->ndim = 2;
            t->shape[0] = j ? m->n_out : m->r;
            t->shape[1] = j ? m->r : m->n_in;
            t->data = j ? m->B : m->A;
            t->nbytes = (size_t)(t->shape[0] * t->shape[1]) * sizeof(float);
            tp[2 * k + j] = t;
        }
    }
    char p[4096], tmp[4200];
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    static const char *const meta[] = {"format", "pt", NULL};
    if ((s = aios_safetensors_write(tmp, tp, n, meta)) != AIOS_OK) {
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, p) != 0) {
        unlink(tmp);
        s = aios__err(AIOS_ERR_IO, "%s: %s", p, strerror(errno));
        goto out;
    }
    char *cfg = aios__lora_peft_config_json(a);
    if (!cfg) {
        s = aios__err(AIOS_ERR_NOMEM, "adapter_config.json");
        goto out;
    }
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    s = aios__write_file_atomic(p, cfg, strlen(cfg));
    free(cfg);
out:
    free(ts);
    free(tp);
    free(names);
    return s;
}

aios_status aios_lora_load(const char *path, const aios_decoder_config *c, aios_lora **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return aios__err(AIOS_ERR_NOT_FOUND, "adapter %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return aios_lora_load_peft(path, c, out);
    return aios_lora_load_card(path, c, out);
}
