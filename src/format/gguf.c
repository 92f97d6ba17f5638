/*
 * gguf.c — GGUF v2/v3 reader (format in gguf.h; spec: ggml docs/gguf.md).
 *
 * Key decisions:
 *  - One pass over the header with a bounds-checked cursor.  Every count is checked against
 *    the bytes left before anything is allocated for it (an element takes at least its minimum
 *    encoded size), so a hostile count fails fast instead of asking for terabytes.
 *  - Arrays nest at most AIOS_GGUF_MAX_DEPTH deep; numeric arrays are not copied (pointer +
 *    count into the mapping), string arrays become (pointer, length) pairs.
 *  - Keys and tensor names are copied NUL-terminated (they are looked up by C strings); a
 *    key or name holding a NUL byte is refused, as are duplicates.
 *  - Tensors: at most 4 dims, each >= 0, ne[0] a multiple of the type's block, byte size
 *    without overflow, offset aligned to general.alignment, inside the data section, and no
 *    two tensors overlapping.  Unknown ggml types are refused naming the tensor.
 *  - v1 (u32 counts, 2023) and big-endian files are refused with a message saying so.
 */
#include "format/gguf.h"

#include <stdio.h>
#include <string.h>

#include "core/internal.h"

#define AIOS_GGUF_MAX_DEPTH 8
#define AIOS_GGUF_DEFAULT_ALIGN 32

typedef struct {
    char *key;
    aios_gguf_value val;
} kv_entry;

struct aios_gguf {
    aios_map map; /* mapped when opened from a path */
    const uint8_t *data;
    size_t size;
    char label[512];
    uint32_t version, alignment;
    uint64_t data_off;
    kv_entry *kv;
    int64_t n_kv;
    aios_gguf_tensor *t;
    int64_t n_t;
    int64_t *t_sorted; /* tensor indices sorted by name */
    /* allocations made while parsing values (string tables, nested arrays) */
    void **allocs;
    size_t n_allocs, cap_allocs;
};

/* ---- type tables ------------------------------------------------------------------ */

static const struct {
    const char *name;
    short blk, bytes;
} GGML_TYPES[] = {
    [0] = {"F32", 1, 4},         [1] = {"F16", 1, 2},       [2] = {"Q4_0", 32, 18},   [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},      [7] = {"Q5_1", 32, 24},    [8] = {"Q8_0", 32, 34},   [9] = {"Q8_1", 32, 40},
    [10] = {"Q2_K", 256, 84},    [11] = {"Q3_K", 256, 110}, [12] = {"Q4_K", 256, 144}, [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},   [15] = {"Q8_K", 256, 292}, [16] = {"IQ2_XXS", 256, 66}, [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50}, [20] = {"IQ4_NL", 32, 18}, [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82},   [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},    [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},        [27] = {"I64", 1, 8},      [28] = {"F64", 1, 8},     [29] = {"IQ1_M", 256, 56},
    [30] = {"BF16", 1, 2},       [34] = {"TQ1_0", 256, 54}, [35] = {"TQ2_0", 256, 66}, [39] = {"MXFP4", 32, 17},
};

const char *aios_ggml_type_name(uint32_t t) {
    return t < AIOS_ARRAY_LEN(GGML_TYPES) ? GGML_TYPES[t].name : NULL;
}

int aios_ggml_type_size(uint32_t t, int *blk, int *bytes) {
    if (t >= AIOS_ARRAY_LEN(GGML_TYPES) || !GGML_TYPES[t].name) return 0;
    if (blk) *blk = GGML_TYPES[t].blk;
    if (bytes) *bytes = GGML_TYPES[t].bytes;
    return 1;
}

static const char *const VTYPE_NAMES[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                          "bool", "string", "array", "u64", "i64", "f64"};
/* encoded size of a scalar type (0 for string/array) */
static const uint8_t VTYPE_SIZE[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *aios_gguf_type_name(uint32_t t) { return t < AIOS_ARRAY_LEN(VTYPE_NAMES) ? VTYPE_NAMES[t] : "?"; }

/* ---- cursor ------------------------------------------------------------------------ */

typedef struct {
    aios_gguf *g;
    size_t pos;
} cur;

static size_t left(const cur *c) { return c->g->size - c->pos; }

static aios_status need(cur *c, uint64_t n, const char *what, const char *ctx) {
    if (n > left(c))
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: %s%s%s at offset %zu: needs %llu bytes, %zu left", c->g->label,
                         ctx ? ctx : "", ctx ? ": " : "", what, c->pos, (unsigned long long)n, left(c));
    return AIOS_OK;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static aios_status rd_u32(cur *c, uint32_t *v, const char *what, const char *ctx) {
    AIOS_TRY(need(c, 4, what, ctx));
    *v = (uint32_t)rd_le(c->g->data + c->pos, 4);
    c->pos += 4;
    return AIOS_OK;
}

static aios_status rd_u64(cur *c, uint64_t *v, const char *what, const char *ctx) {
    AIOS_TRY(need(c, 8, what, ctx));
    *v = rd_le(c->g->data + c->pos, 8);
    c->pos += 8;
    return AIOS_OK;
}

static aios_status rd_str(cur *c, aios_gguf_str *s, const char *what, const char *ctx) {
    uint64_t n;
    AIOS_TRY(rd_u64(c, &n, what, ctx));
    if (n > left(c))
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: %s%s%s at offset %zu: length %llu runs past the end of the file",
                         c->g->label, ctx ? ctx : "", ctx ? ": " : "", what, c->pos - 8, (unsigned long long)n);
    s->s = (const char *)c->g->data + c->pos;
    s->n = n;
    c->pos += n;
    return AIOS_OK;
}

static void *track(aios_gguf *g, void *p) {
    if (!p) return NULL;
    if (g->n_allocs == g->cap_allocs) {
        size_t nc = g->cap_allocs ? 2 * g->cap_allocs : 16;
        void **na = realloc(g->allocs, nc * sizeof *na);
        if (!na) {
            free(p);
            return NULL;
        }
        g->allocs = na;
        g->cap_allocs = nc;
    }
    g->allocs[g->n_allocs++] = p;
    return p;
}

/* Smallest encoding of one element of type t (for count checks). */
static uint64_t min_size(uint32_t t) {
    if (t == AIOS_GGUF_STRING) return 8;
    if (t == AIOS_GGUF_ARRAY) return 12;
    return VTYPE_SIZE[t];
}

static aios_status rd_value(cur *c, uint32_t type, aios_gguf_value *v, int depth, const char *key) {
    aios_gguf *g = c->g;
    memset(v, 0, sizeof *v);
    if (type >= AIOS_ARRAY_LEN(VTYPE_NAMES))
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: key '%s': unknown value type %u", g->label, key, type);
    v->type = (aios_gguf_type)type;
    if (type == AIOS_GGUF_STRING) return rd_str(c, &v->v.str, "string value", key);
    if (type != AIOS_GGUF_ARRAY) {
        int n = VTYPE_SIZE[type];
        AIOS_TRY(need(c, (uint64_t)n, "value", key));
        uint64_t raw = rd_le(g->data + c->pos, n);
        c->pos += (size_t)n;
        switch (type) {
        case AIOS_GGUF_I8: v->v.i = (int8_t)raw; break;
        case AIOS_GGUF_I16: v->v.i = (int16_t)raw; break;
        case AIOS_GGUF_I32: v->v.i = (int32_t)raw; break;
        case AIOS_GGUF_I64: v->v.i = (int64_t)raw; break;
        case AIOS_GGUF_F32: {
            uint32_t b = (uint32_t)raw;
            float f;
            memcpy(&f, &b, 4);
            v->v.f = f;
            break;
        }
        case AIOS_GGUF_F64: memcpy(&v->v.f, &raw, 8); break;
        case AIOS_GGUF_BOOL:
            if (raw > 1) return aios__err(AIOS_ERR_FORMAT, "gguf: %s: key '%s': bool value %llu is not 0 or 1", g->label, key, (unsigned long long)raw);
            v->v.u = raw;
            break;
        default: v->v.u = raw; break;
        }
        return AIOS_OK;
    }
    if (depth >= AIOS_GGUF_MAX_DEPTH)
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: key '%s': arrays nested more than %d deep", g->label, key, AIOS_GGUF_MAX_DEPTH);
    uint32_t et;
    uint64_t n;
    AIOS_TRY(rd_u32(c, &et, "array element type", key));
    AIOS_TRY(rd_u64(c, &n, "array length", key));
    if (et >= AIOS_ARRAY_LEN(VTYPE_NAMES))
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: key '%s': unknown array element type %u", g->label, key, et);
    uint64_t ms = min_size(et), tot;
    if (!aios__mul_ok(n, ms, &tot) || tot > left(c))
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: key '%s': array of %llu %s values runs past the end of the file", g->label, key,
                         (unsigned long long)n, VTYPE_NAMES[et]);
    v->v.arr.type = (aios_gguf_type)et;
    v->v.arr.n = n;
    if (et == AIOS_GGUF_STRING) {
        aios_gguf_str *s = track(g, malloc((size_t)(n ? n : 1) * sizeof *s));
        if (!s) return aios__err(AIOS_ERR_NOMEM, "gguf: %s: key '%s': out of memory", g->label, key);
        for (uint64_t i = 0; i < n; i++) AIOS_TRY(rd_str(c, &s[i], "array string", key));
        v->v.arr.strs = s;
    } else if (et == AIOS_GGUF_ARRAY) {
        aios_gguf_value *a = track(g, calloc((size_t)(n ? n : 1), sizeof *a));
        if (!a) return aios__err(AIOS_ERR_NOMEM, "gguf: %s: key '%s': out of memory", g->label, key);
        for (uint64_t i = 0; i < n; i++) AIOS_TRY(rd_value(c, AIOS_GGUF_ARRAY, &a[i], depth + 1, key));
        v->v.arr.vals = a;
    } else {
        v->v.arr.raw = g->data + c->pos;
        if (et == AIOS_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (v->v.arr.raw[i] > 1)
                    return aios__err(AIOS_ERR_FORMAT, "gguf: %s: key '%s': bool element %llu is not 0 or 1", g->label, key,
                                     (unsigned long long)i);
        c->pos += (size_t)tot;
    }
    return AIOS_OK;
}

/* NUL-terminated copy of a key or name; refuses embedded NULs. */
static aios_status dup_name(aios_gguf *g, const aios_gguf_str *s, const char *what, size_t at, char **out) {
    if (s->n == 0) return aios__err(AIOS_ERR_FORMAT, "gguf: %s: empty %s at offset %zu", g->label, what, at);
    if (memchr(s->s, 0, (size_t)s->n))
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: %s at offset %zu holds a NUL byte", g->label, what, at);
    if (s->n > 65535) return aios__err(AIOS_ERR_FORMAT, "gguf: %s: %s at offset %zu is %llu bytes long", g->label, what, at, (unsigned long long)s->n);
    char *p = track(g, malloc((size_t)s->n + 1));
    if (!p) return aios__err(AIOS_ERR_NOMEM, "gguf: %s: out of memory", g->label);
    memcpy(p, s->s, (size_t)s->n);
    p[s->n] = 0;
    *out = p;
    return AIOS_OK;
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp(((const kv_entry *)a)->key, ((const kv_entry *)b)->key);
}

static int cmp_tidx(const void *a, const void *b, void *ctx) {
    const aios_gguf *g = ctx;
    return strcmp(g->t[*(const int64_t *)a].name, g->t[*(const int64_t *)b].name);
}
static int cmp_toff(const void *a, const void *b, void *ctx) {
    const aios_gguf *g = ctx;
    uint64_t x = g->t[*(const int64_t *)a].offset, y = g->t[*(const int64_t *)b].offset;
    return x < y ? -1 : x > y;
}

static aios_status parse(aios_gguf *g) {
    cur c = {g, 0};
    if (g->size < 4 || memcmp(g->data, "GGUF", 4))
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: not a GGUF file (no 'GGUF' magic)", g->label);
    c.pos = 4;
    AIOS_TRY(rd_u32(&c, &g->version, "version", NULL));
    if (g->version == 1) return aios__err(AIOS_ERR_UNSUPPORTED, "gguf: %s: GGUF version 1 is not supported (only 2 and 3)", g->label);
    if (g->version != 2 && g->version != 3) {
        uint32_t sw = __builtin_bswap32(g->version);
        if (sw >= 1 && sw <= 3) return aios__err(AIOS_ERR_UNSUPPORTED, "gguf: %s: big-endian GGUF is not supported", g->label);
        return aios__err(AIOS_ERR_UNSUPPORTED, "gguf: %s: unknown GGUF version %u (supported: 2, 3)", g->label, g->version);
    }
    uint64_t n_t, n_kv;
    AIOS_TRY(rd_u64(&c, &n_t, "tensor count", NULL));
    AIOS_TRY(rd_u64(&c, &n_kv, "metadata count", NULL));
    /* a key-value pair takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 4 + 8 */
    if (n_kv > left(&c) / 14)
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: %llu metadata entries cannot fit in the file", g->label, (unsigned long long)n_kv);
    if (n_t > left(&c) / 25)
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: %llu tensors cannot fit in the file", g->label, (unsigned long long)n_t);
    g->kv = track(g, calloc((size_t)n_kv + 1, sizeof *g->kv));
    g->t = track(g, calloc((size_t)n_t + 1, sizeof *g->t));
    g->t_sorted = track(g, calloc((size_t)n_t + 1, sizeof *g->t_sorted));
    if (!g->kv || !g->t || !g->t_sorted) return aios__err(AIOS_ERR_NOMEM, "gguf: %s: out of memory", g->label);

    g->alignment = AIOS_GGUF_DEFAULT_ALIGN;
    for (uint64_t i = 0; i < n_kv; i++) {
        aios_gguf_str ks;
        size_t at = c.pos;
        char ctx[64];
        snprintf(ctx, sizeof ctx, "metadata entry %llu", (unsigned long long)i);
        AIOS_TRY(rd_str(&c, &ks, "key", ctx));
        kv_entry *e = &g->kv[i];
        AIOS_TRY(dup_name(g, &ks, "key", at, &e->key));
        uint32_t type;
        AIOS_TRY(rd_u32(&c, &type, "value type", e->key));
        AIOS_TRY(rd_value(&c, type, &e->val, 0, e->key));
        g->n_kv++;
        if (!strcmp(e->key, "general.alignment")) {
            int64_t a = -1;
            if (e->val.type == AIOS_GGUF_U32 || e->val.type == AIOS_GGUF_U64 || e->val.type == AIOS_GGUF_U16 ||
                e->val.type == AIOS_GGUF_U8)
                a = (int64_t)AIOS_MIN(e->val.v.u, (uint64_t)1 << 40);
            else if (e->val.type == AIOS_GGUF_I32 || e->val.type == AIOS_GGUF_I64)
                a = e->val.v.i;
            if (a <= 0 || a > (1 << 24) || (a & (a - 1)))
                return aios__err(AIOS_ERR_FORMAT, "gguf: %s: key 'general.alignment' must be a power of two in [1, 2^24]", g->label);
            g->alignment = (uint32_t)a;
        }
    }
    /* duplicate keys (sorted copy keeps file order in g->kv) */
    if (g->n_kv > 1) {
        kv_entry *s = malloc((size_t)g->n_kv * sizeof *s);
        if (!s) return aios__err(AIOS_ERR_NOMEM, "gguf: %s: out of memory", g->label);
        memcpy(s, g->kv, (size_t)g->n_kv * sizeof *s);
        qsort(s, (size_t)g->n_kv, sizeof *s, cmp_kv);
        for (int64_t i = 1; i < g->n_kv; i++)
            if (!strcmp(s[i].key, s[i - 1].key)) {
                aios_status st = aios__err(AIOS_ERR_FORMAT, "gguf: %s: key '%s' appears twice", g->label, s[i].key);
                free(s);
                return st;
            }
        free(s);
    }

    for (uint64_t i = 0; i < n_t; i++) {
        aios_gguf_tensor *t = &g->t[i];
        aios_gguf_str ns;
        size_t at = c.pos;
        char ctx[64];
        snprintf(ctx, sizeof ctx, "tensor info %llu", (unsigned long long)i);
        AIOS_TRY(rd_str(&c, &ns, "name", ctx));
        char *name;
        AIOS_TRY(dup_name(g, &ns, "tensor name", at, &name));
        t->name = name;
        char tctx[600];
        snprintf(tctx, sizeof tctx, "tensor '%s'", name);
        uint32_t nd;
        AIOS_TRY(rd_u32(&c, &nd, "dimension count", tctx));
        if (nd < 1 || nd > 4)
            return aios__err(AIOS_ERR_FORMAT, "gguf: %s: tensor '%s': %u dimensions (1 to 4 allowed)", g->label, name, nd);
        t->n_dims = (int)nd;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            AIOS_TRY(rd_u64(&c, &ne, "dimension", tctx));
            if (ne > (uint64_t)INT64_MAX / 2 || !aios__mul_ok(numel, ne, &numel) || numel > (uint64_t)1 << 48)
                return aios__err(AIOS_ERR_FORMAT, "gguf: %s: tensor '%s': absurd dimension %u = %llu", g->label, name, d,
                                 (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
        }
        for (int d = (int)nd; d < 4; d++) t->ne[d] = 1;
        AIOS_TRY(rd_u32(&c, &t->ggml_type, "type", tctx));
        AIOS_TRY(rd_u64(&c, &t->offset, "offset", tctx));
        int blk, bytes;
        if (!aios_ggml_type_size(t->ggml_type, &blk, &bytes))
            return aios__err(AIOS_ERR_FORMAT, "gguf: %s: tensor '%s': unknown ggml type %u", g->label, name, t->ggml_type);
        if ((uint64_t)t->ne[0] % (uint64_t)blk)
            return aios__err(AIOS_ERR_FORMAT, "gguf: %s: tensor '%s': row length %lld is not a multiple of the %s block (%d)",
                             g->label, name, (long long)t->ne[0], aios_ggml_type_name(t->ggml_type), blk);
        uint64_t nb;
        if (!aios__mul_ok(numel / (uint64_t)blk, (uint64_t)bytes, &nb))
            return aios__err(AIOS_ERR_FORMAT, "gguf: %s: tensor '%s': byte size overflows", g->label, name);
        t->nbytes = (size_t)nb;
        if (t->offset % g->alignment)
            return aios__err(AIOS_ERR_FORMAT, "gguf: %s: tensor '%s': offset %llu is not a multiple of the alignment %u",
                             g->label, name, (unsigned long long)t->offset, g->alignment);
        g->t_sorted[i] = (int64_t)i;
        g->n_t++;
    }
    /* data section */
    uint64_t ds = ((uint64_t)c.pos + g->alignment - 1) / g->alignment * g->alignment;
    g->data_off = ds;
    uint64_t dsize = ds <= g->size ? g->size - ds : 0;
    if (g->n_t > 0 && ds > g->size)
        return aios__err(AIOS_ERR_FORMAT, "gguf: %s: the data section (offset %llu) starts past the end of the file (%zu bytes)",
                         g->label, (unsigned long long)ds, g->size);
    for (int64_t i = 0; i < g->n_t; i++) {
        aios_gguf_tensor *t = &g->t[i];
        uint64_t end;
        if (!aios__add_ok(t->offset, t->nbytes, &end) || end > dsize)
            return aios__err(AIOS_ERR_FORMAT,
                             "gguf: %s: tensor '%s': data [%llu, +%zu) runs past the end of the data section (%llu bytes)",
                             g->label, t->name, (unsigned long long)t->offset, t->nbytes, (unsigned long long)dsize);
        t->data = g->data + ds + t->offset;
    }
    /* names unique; data regions disjoint */
    if (g->n_t > 1) {
        qsort_r(g->t_sorted, (size_t)g->n_t, sizeof *g->t_sorted, cmp_toff, g);
        for (int64_t i = 1; i < g->n_t; i++) {
            const aios_gguf_tensor *a = &g->t[g->t_sorted[i - 1]], *b = &g->t[g->t_sorted[i]];
            if (a->nbytes && b->nbytes && a->offset + a->nbytes > b->offset)
                return aios__err(AIOS_ERR_FORMAT, "gguf: %s: tensors '%s' and '%s' overlap", g->label, a->name, b->name);
        }
        qsort_r(g->t_sorted, (size_t)g->n_t, sizeof *g->t_sorted, cmp_tidx, g);
        for (int64_t i = 1; i < g->n_t; i++)
            if (!strcmp(g->t[g->t_sorted[i]].name, g->t[g->t_sorted[i - 1]].name))
                return aios__err(AIOS_ERR_FORMAT, "gguf: %s: tensor '%s' appears twice", g->label, g->t[g->t_sorted[i]].name);
    }
    return AIOS_OK;
}

aios_status aios_gguf_parse(const uint8_t *data, size_t size, const char *label, aios_gguf **out) {
    *out = NULL;
    aios_gguf *g = calloc(1, sizeof *g);
    if (!g) return aios__err(AIOS_ERR_NOMEM, "gguf: out of memory");
    g->data = data;
    g->size = size;
    snprintf(g->label, sizeof g->label, "%s", label ? label : "(memory)");
    aios_status s = parse(g);
    if (s) {
        aios_gguf_close(g);
        return s;
    }
    *out = g;
    return AIOS_OK;
}

aios_status aios_gguf_open(const char *path, aios_gguf **out) {
    *out = NULL;
    aios_map mp;
    aios_status s = aios__map_file(path, &mp);
    if (s) return aios__err_prefix(s, "gguf");
    s = aios_gguf_parse(mp.data, mp.size, path, out);
    if (s) {
        aios__unmap_file(&mp);
        return s;
    }
    (*out)->map = mp;
    return AIOS_OK;
}

void aios_gguf_close(aios_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_allocs; i++) free(g->allocs[i]);
    free(g->allocs);
    if (g->map.data) aios__unmap_file(&g->map);
    free(g);
}

uint32_t aios_gguf_version(const aios_gguf *g) { return g->version; }
uint32_t aios_gguf_alignment(const aios_gguf *g) { return g->alignment; }
uint64_t aios_gguf_data_offset(const aios_gguf *g) { return g->data_off; }
const char *aios_gguf_label(const aios_gguf *g) { return g->label; }
int64_t aios_gguf_kv_count(const aios_gguf *g) { return g->n_kv; }
const char *aios_gguf_kv_key(const aios_gguf *g, int64_t i) { return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL; }
const aios_gguf_value *aios_gguf_kv_value(const aios_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? &g->kv[i].val : NULL;
}

const aios_gguf_value *aios_gguf_get(const aios_gguf *g, const char *key) {
    /* metadata is small (tens of keys): a linear scan */
    for (int64_t i = 0; g && key && i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i].val;
    return NULL;
}

int aios_gguf_get_int(const aios_gguf *g, const char *key, int64_t *out) {
    const aios_gguf_value *v = aios_gguf_get(g, key);
    if (!v) return 0;
    switch (v->type) {
    case AIOS_GGUF_U8: case AIOS_GGUF_U16: case AIOS_GGUF_U32: case AIOS_GGUF_U64: case AIOS_GGUF_BOOL:
        if (v->v.u > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)v->v.u;
        return 1;
    case AIOS_GGUF_I8: case AIOS_GGUF_I16: case AIOS_GGUF_I32: case AIOS_GGUF_I64:
        *out = v->v.i;
        return 1;
    default: return 0;
    }
}

int aios_gguf_get_f64(const aios_gguf *g, const char *key, double *out) {
    const aios_gguf_value *v = aios_gguf_get(g, key);
    if (!v) return 0;
    if (v->type == AIOS_GGUF_F32 || v->type == AIOS_GGUF_F64) {
        *out = v->v.f;
        return 1;
    }
    int64_t i;
    if (v->type != AIOS_GGUF_BOOL && aios_gguf_get_int(g, key, &i)) {
        *out = (double)i;
        return 1;
    }
    return 0;
}

const char *aios_gguf_get_str(const aios_gguf *g, const char *key, size_t *len) {
    const aios_gguf_value *v = aios_gguf_get(g, key);
    if (!v || v->type != AIOS_GGUF_STRING) return NULL;
    if (len) *len = (size_t)v->v.str.n;
    return v->v.str.s;
}

const aios_gguf_value *aios_gguf_get_arr(const aios_gguf *g, const char *key, int type) {
    const aios_gguf_value *v = aios_gguf_get(g, key);
    if (!v || v->type != AIOS_GGUF_ARRAY || (type >= 0 && (int)v->v.arr.type != type)) return NULL;
    return v;
}

int64_t aios_gguf_arr_int(const aios_gguf_value *a, uint64_t i) {
    if (!a || a->type != AIOS_GGUF_ARRAY || i >= a->v.arr.n || !a->v.arr.raw) return 0;
    uint32_t t = a->v.arr.type;
    int n = VTYPE_SIZE[t];
    uint64_t raw = rd_le(a->v.arr.raw + i * (uint64_t)n, n);
    switch (t) {
    case AIOS_GGUF_I8: return (int8_t)raw;
    case AIOS_GGUF_I16: return (int16_t)raw;
    case AIOS_GGUF_I32: return (int32_t)raw;
    case AIOS_GGUF_I64: return (int64_t)raw;
    case AIOS_GGUF_F32: case AIOS_GGUF_F64: return 0;
    default: return raw > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)raw;
    }
}

double aios_gguf_arr_f64(const aios_gguf_value *a, uint64_t i) {
    if (!a || a->type != AIOS_GGUF_ARRAY || i >= a->v.arr.n || !a->v.arr.raw) return 0;
    uint32_t t = a->v.arr.type;
    if (t == AIOS_GGUF_F32) {
        uint32_t b = (uint32_t)rd_le(a->v.arr.raw + 4 * i, 4);
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    if (t == AIOS_GGUF_F64) {
        uint64_t b = rd_le(a->v.arr.raw + 8 * i, 8);
        double d;
        memcpy(&d, &b, 8);
        return d;
    }
    return (double)aios_gguf_arr_int(a, i);
}

int64_t aios_gguf_tensor_count(const aios_gguf *g) { return g->n_t; }
const aios_gguf_tensor *aios_gguf_tensor_at(const aios_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_t ? &g->t[i] : NULL;
}

const aios_gguf_tensor *aios_gguf_find_tensor(const aios_gguf *g, const char *name) {
    int64_t lo = 0, hi = g->n_t;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->t[g->t_sorted[mid]].name, name);
        if (!c) return &g->t[g->t_sorted[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
