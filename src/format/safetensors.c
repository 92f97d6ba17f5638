/*
 * safetensors.c — the Hugging Face safetensors format: a mapped reader with strict header
 * validation, and a writer (used by tests, benchmarks and tools).
 *
 * Layout: u64 LE header length N, N bytes of JSON, then the data buffer.  Each tensor entry
 * gives dtype, shape and data_offsets [begin, end) relative to the buffer.
 *
 * Key decisions:
 *  - The file is mapped; tensors are views into the mapping.  Opening reads only the header.
 *  - Validation follows the reference implementation (huggingface/safetensors): header at most
 *    100 MB and inside the file, a JSON object, every entry a known dtype with integral
 *    non-negative dims, end - begin == the bytes the shape needs (overflow-checked), and the
 *    entries tile the data buffer exactly (no overlap, no hole, nothing past the end).  Names
 *    must be unique.  Anything else is AIOS_ERR_FORMAT naming the file and the tensor.
 *  - __metadata__ is a string -> string map, kept for lookups.
 *  - Tensor data need not be aligned (the header length is arbitrary); views say so and
 *    consumers read through memcpy or unaligned loads.
 */
#include "format/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "tensor/quant.h"

#define ST_MAX_HEADER (100u << 20)

struct aios_safetensors {
    aios_map map;        /* owned mapping (map.mapped) or borrowed bytes */
    char *label;
    aios_tensor *tensors; /* n, header order */
    char **names;
    int64_t n;
    int64_t *by_name;     /* indices sorted by name */
    char **meta_k, **meta_v;
    int64_t n_meta;
};


static int cmp_name(const void *a, const void *b, void *ctx) {
    const aios_safetensors *st = ctx;
    return strcmp(st->names[*(const int64_t *)a], st->names[*(const int64_t *)b]);
}

typedef struct {
    uint64_t b, e;
    int64_t i;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->b != y->b) return x->b < y->b ? -1 : 1;
    if (x->e != y->e) return x->e < y->e ? -1 : 1;
    return 0;
}

/* Integral, non-negative JSON number that fits 2^53 (exact in a double). */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return 0;
    *out = (uint64_t)d;
    return 1;
}

void aios_safetensors_close(aios_safetensors *st) {
    if (!st) return;
    for (int64_t i = 0; i < st->n; i++) free(st->names[i]);
    for (int64_t i = 0; i < st->n_meta; i++) {
        free(st->meta_k[i]);
        free(st->meta_v[i]);
    }
    free(st->names);
    free(st->tensors);
    free(st->by_name);
    free(st->meta_k);
    free(st->meta_v);
    free(st->label);
    aios__unmap_file(&st->map);
    free(st);
}

static aios_status parse_entry(aios_safetensors *st, const cJSON *e, const uint8_t *buf, uint64_t buf_len,
                               span *sp) {
    const char *nm = e->string;
    if (!cJSON_IsObject(e)) return aios__err(AIOS_ERR_FORMAT, "tensor '%s': entry is not an object", nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return aios__err(AIOS_ERR_FORMAT, "tensor '%s': missing or non-string dtype", nm);
    if (!cJSON_IsArray(sh)) return aios__err(AIOS_ERR_FORMAT, "tensor '%s': missing or non-array shape", nm);
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return aios__err(AIOS_ERR_FORMAT, "tensor '%s': data_offsets must be [begin, end]", nm);
    for (const cJSON *k = e->child; k; k = k->next)
        if (strcmp(k->string, "dtype") && strcmp(k->string, "shape") && strcmp(k->string, "data_offsets"))
            return aios__err(AIOS_ERR_FORMAT, "tensor '%s': unknown field '%s'", nm, k->string);
    aios_tensor *t = &st->tensors[st->n];
    memset(t, 0, sizeof *t);
    if (aios_dtype_from_safetensors(dt->valuestring, &t->dtype))
        return aios__err(AIOS_ERR_UNSUPPORTED, "tensor '%s': unknown dtype '%s'", nm, dt->valuestring);
    int nd = cJSON_GetArraySize(sh);
    if (nd > AIOS_MAX_DIMS) return aios__err(AIOS_ERR_UNSUPPORTED, "tensor '%s': %d dimensions (at most %d)", nm, nd, AIOS_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        uint64_t v;
        if (!json_uint(x, &v)) return aios__err(AIOS_ERR_FORMAT, "tensor '%s': shape[%d] is not a non-negative integer", nm, d);
        if (!aios__mul_ok(numel, v, &numel) || numel > (uint64_t)INT64_MAX)
            return aios__err(AIOS_ERR_RANGE, "tensor '%s': shape overflows", nm);
        t->shape[d] = (int64_t)v;
    }
    size_t need;
    if (aios_dtype_nbytes(t->dtype, (int64_t)numel, &need) != AIOS_OK)
        return aios__err(AIOS_ERR_RANGE, "tensor '%s': byte size of shape overflows", nm);
    uint64_t b, en;
    if (!json_uint(of->child, &b) || !json_uint(of->child->next, &en))
        return aios__err(AIOS_ERR_FORMAT, "tensor '%s': data_offsets are not non-negative integers", nm);
    if (b > en || en > buf_len)
        return aios__err(AIOS_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu) outside the %llu-byte data buffer", nm,
                         (unsigned long long)b, (unsigned long long)en, (unsigned long long)buf_len);
    if (en - b != need)
        return aios__err(AIOS_ERR_SHAPE, "tensor '%s': %llu data bytes, but shape and dtype %s need %zu", nm,
                         (unsigned long long)(en - b), dt->valuestring, need);
    st->names[st->n] = strdup(nm);
    if (!st->names[st->n]) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    t->name = st->names[st->n];
    t->data = buf + b;
    t->nbytes = need;
    t->quant_axis = -1;
    sp->b = b;
    sp->e = en;
    sp->i = st->n;
    st->n++;
    return AIOS_OK;
}

static aios_status parse_meta(aios_safetensors *st, const cJSON *m) {
    if (!cJSON_IsObject(m)) return aios__err(AIOS_ERR_FORMAT, "__metadata__ is not an object");
    int n = cJSON_GetArraySize(m);
    st->meta_k = calloc((size_t)n + 1, sizeof(char *));
    st->meta_v = calloc((size_t)n + 1, sizeof(char *));
    if (!st->meta_k || !st->meta_v) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return aios__err(AIOS_ERR_FORMAT, "__metadata__ '%s': value is not a string", e->string);
        st->meta_k[st->n_meta] = strdup(e->string);
        st->meta_v[st->n_meta] = strdup(e->valuestring);
        st->n_meta++;
        if (!st->meta_k[st->n_meta - 1] || !st->meta_v[st->n_meta - 1]) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    }
    return AIOS_OK;
}

static aios_status parse(aios_safetensors *st) {
    const uint8_t *p = st->map.data;
    size_t size = st->map.size;
    if (size < 8) return aios__err(AIOS_ERR_FORMAT, "file of %zu bytes is too short for a header", size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | p[i];
    if (hl > ST_MAX_HEADER) return aios__err(AIOS_ERR_FORMAT, "header length %llu exceeds the 100 MB limit", (unsigned long long)hl);
    if (hl > size - 8)
        return aios__err(AIOS_ERR_FORMAT, "header length %llu runs past the end of the %zu-byte file (truncated?)",
                         (unsigned long long)hl, size);
    if (hl < 2 || p[8] != '{') return aios__err(AIOS_ERR_FORMAT, "header does not start with a JSON object");
    const uint8_t *buf = p + 8 + hl;
    uint64_t buf_len = size - 8 - hl;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)p + 8, (size_t)hl, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - (const char *)p) : 8;
        return aios__err(AIOS_ERR_FORMAT, "header is not valid JSON (near byte %zu)", off);
    }
    /* only trailing spaces (the writer's alignment padding) may follow the object */
    for (const char *q = end; q && q < (const char *)p + 8 + hl; q++)
        if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t' && *q != 0) {
            cJSON_Delete(root);
            return aios__err(AIOS_ERR_FORMAT, "junk after the header's JSON object at byte %zu", (size_t)(q - (const char *)p));
        }
    aios_status s = AIOS_OK;
    span *spans = NULL;
    if (!cJSON_IsObject(root)) {
        s = aios__err(AIOS_ERR_FORMAT, "header is not a JSON object");
        goto done;
    }
    int n = cJSON_GetArraySize(root);
    st->tensors = calloc((size_t)n + 1, sizeof *st->tensors);
    st->names = calloc((size_t)n + 1, sizeof *st->names);
    st->by_name = calloc((size_t)n + 1, sizeof *st->by_name);
    spans = calloc((size_t)n + 1, sizeof *spans);
    if (!st->tensors || !st->names || !st->by_name || !spans) {
        s = aios__err(AIOS_ERR_NOMEM, "out of memory");
        goto done;
    }
    int have_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (have_meta++) {
                s = aios__err(AIOS_ERR_FORMAT, "__metadata__ appears twice");
                goto done;
            }
            if ((s = parse_meta(st, e))) goto done;
            continue;
        }
        if ((s = parse_entry(st, e, buf, buf_len, &spans[st->n]))) goto done;
    }
    for (int64_t i = 0; i < st->n; i++) st->by_name[i] = i;
    qsort_r(st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_name, st);
    for (int64_t i = 1; i < st->n; i++)
        if (!strcmp(st->names[st->by_name[i]], st->names[st->by_name[i - 1]])) {
            s = aios__err(AIOS_ERR_FORMAT, "tensor '%s' appears twice", st->names[st->by_name[i]]);
            goto done;
        }
    qsort(spans, (size_t)st->n, sizeof *spans, cmp_span);
    uint64_t at = 0;
    for (int64_t i = 0; i < st->n; i++) {
        if (spans[i].b != at) {
            s = aios__err(AIOS_ERR_FORMAT, "tensor '%s': data at byte %llu, but the previous tensor ends at %llu (%s)",
                          st->names[spans[i].i], (unsigned long long)spans[i].b, (unsigned long long)at,
                          spans[i].b < at ? "overlap" : "hole");
            goto done;
        }
        at = spans[i].e;
    }
    if (at != buf_len) {
        s = aios__err(AIOS_ERR_FORMAT, "tensors cover %llu of the %llu data bytes", (unsigned long long)at,
                      (unsigned long long)buf_len);
        goto done;
    }
done:
    free(spans);
    cJSON_Delete(root);
    return s;
}

static aios_status finish_open(aios_safetensors *st, const char *label, aios_safetensors **out) {
    st->label = strdup(label ? label : "(memory)");
    aios_status s = st->label ? parse(st) : aios__err(AIOS_ERR_NOMEM, "out of memory");
    if (s) {
        aios__err_prefix(s, "safetensors: %s", label ? label : "(memory)");
        aios_safetensors_close(st);
        return s;
    }
    *out = st;
    return AIOS_OK;
}

aios_status aios_safetensors_parse(const uint8_t *data, size_t size, const char *label, aios_safetensors **out) {
    *out = NULL;
    aios_safetensors *st = calloc(1, sizeof *st);
    if (!st) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    st->map.data = data;
    st->map.size = size;
    st->map.mapped = 0;
    return finish_open(st, label, out);
}

aios_status aios_safetensors_open(const char *path, aios_safetensors **out) {
    *out = NULL;
    aios_safetensors *st = calloc(1, sizeof *st);
    if (!st) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    aios_status s = aios__map_file(path, &st->map);
    if (s) {
        free(st);
        return aios__err_prefix(s, "safetensors");
    }
    return finish_open(st, path, out);
}

int64_t aios_safetensors_count(const aios_safetensors *st) {
    return st ? st->n : 0;
}

const aios_tensor *aios_safetensors_tensor(const aios_safetensors *st, int64_t i) {
    return st && i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

const aios_tensor *aios_safetensors_find(const aios_safetensors *st, const char *name) {
    if (!st) return NULL;
    int64_t lo = 0, hi = st->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->names[st->by_name[mid]], name);
        if (!c) return &st->tensors[st->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int64_t aios_safetensors_metadata_count(const aios_safetensors *st) {
    return st ? st->n_meta : 0;
}

void aios_safetensors_metadata_at(const aios_safetensors *st, int64_t i, const char **key, const char **value) {
    *key = *value = NULL;
    if (st && i >= 0 && i < st->n_meta) {
        *key = st->meta_k[i];
        *value = st->meta_v[i];
    }
}

const char *aios_safetensors_metadata(const aios_safetensors *st, const char *key) {
    for (int64_t i = 0; st && i < st->n_meta; i++)
        if (!strcmp(st->meta_k[i], key)) return st->meta_v[i];
    return NULL;
}

/* ---- writer ---------------------------------------------------------------------- */

aios_status aios_safetensors_write(const char *path, const aios_tensor *const *tensors, int64_t n,
                                   const char *const *meta_kv) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return aios__err(AIOS_ERR_NOMEM, "out of memory");
    aios_status s = AIOS_OK;
    char *json = NULL;
    FILE *f = NULL;
    if (meta_kv && meta_kv[0]) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; m && meta_kv[i] && meta_kv[i + 1]; i += 2) cJSON_AddStringToObject(m, meta_kv[i], meta_kv[i + 1]);
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        const aios_tensor *t = tensors[i];
        const char *dn = aios_dtype_safetensors_name(t->dtype);
        if (!dn) {
            s = aios__err(AIOS_ERR_UNSUPPORTED, "safetensors: %s: dtype %s has no safetensors form", t->name, aios_dtype_name(t->dtype));
            goto done;
        }
        if ((s = aios_tensor_validate(t))) goto done;
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        if (!e) {
            s = aios__err(AIOS_ERR_NOMEM, "out of memory");
            goto done;
        }
        cJSON_AddStringToObject(e, "dtype", dn);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        off += t->nbytes;
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) {
        s = aios__err(AIOS_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t jl = strlen(json), pad = (8 - (jl % 8)) % 8;
    uint64_t hl = jl + pad;
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(hl >> (8 * i));
    f = fopen(path, "wb");
    if (!f) {
        s = aios__err(AIOS_ERR_IO, "safetensors: %s: cannot create", path);
        goto done;
    }
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(json, 1, jl, f) == jl;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    for (int64_t i = 0; ok && i < n; i++)
        ok = tensors[i]->nbytes == 0 || fwrite(tensors[i]->data, 1, tensors[i]->nbytes, f) == tensors[i]->nbytes;
    if (fclose(f) != 0) ok = 0;
    f = NULL;
    if (!ok) s = aios__err(AIOS_ERR_IO, "safetensors: %s: write failed", path);
done:
    if (f) fclose(f);
    free(json);
    cJSON_Delete(root);
    return s;
}
