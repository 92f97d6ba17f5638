/*
 * tok_util.c — building blocks of the tokenizer: UTF-8, Unicode predicates, hash maps, the
 * aligned string (tk_nstr) and its transform, splits by regions, base64, JSON accessors.
 *
 * The transform reproduces `NormalizedString::transform_range` of Hugging Face `tokenizers`
 * (tokenizers/src/tokenizer/normalizer.rs): a replaced char keeps the alignment of the old char
 * at the current offset, an inserted char takes the alignment of the byte just before the
 * offset (or (0,0) at the very start).  Every normalizer and pre-tokenizer is written in terms
 * of it, so offsets agree byte for byte.  Split behaviours follow `NormalizedString::split`.
 */
#include "tokenizer/tok_internal.h"

#include <cjson/cJSON.h>
#include <string.h>
#include <utf8proc.h>

/* ---------------------------------------------------------------------------- utf-8 */
int tk_utf8_dec(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        uint32_t v = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return 0;
        *cp = v;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        uint32_t v = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                     ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (v < 0x10000 || v > 0x10FFFF) return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

int tk_utf8_enc(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

bool tk_is_whitespace(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 9 && c <= 13);
    switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

bool tk_is_punct(uint32_t c) {
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool tk_is_numeric(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool tk_is_alnum(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO) || k == UTF8PROC_CATEGORY_PC;
}

/* ---------------------------------------------------------------------------- hashing */
uint64_t tk_hash(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ (v * 0x87c37b91114253d5ull)) * 0x4cf5ad432745937full;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)s[i] << (8 * i);
    h = (h ^ (v * 0x87c37b91114253d5ull)) * 0x4cf5ad432745937full;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

void tk_strmap_free(tk_strmap *m) {
    free(m->slots);
    free(m->ent);
    free(m->pool);
    memset(m, 0, sizeof *m);
}

static aios_status strmap_resize(tk_strmap *m, size_t ns) {
    uint64_t *sl = calloc(ns, sizeof *sl);
    if (!sl) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory (hash map)");
    for (size_t i = 0; i < m->n; i++) {
        size_t j = (size_t)m->ent[i].hash & (ns - 1);
        while (sl[j]) j = (j + 1) & (ns - 1);
        sl[j] = (uint64_t)(i + 1) | (m->ent[i].hash & 0xFFFFFFFF00000000ull);
    }
    free(m->slots);
    m->slots = sl;
    m->nslots = ns;
    return AIOS_OK;
}

static aios_status strmap_grow(tk_strmap *m) { return strmap_resize(m, m->nslots ? m->nslots * 2 : 64); }

aios_status tk_strmap_reserve(tk_strmap *m, size_t n) {
    size_t ns = 64;
    while (ns < n * 2 + 2) ns *= 2;
    if (ns <= m->nslots) return AIOS_OK;
    if (n > m->cap) {
        void *p = realloc(m->ent, n * sizeof *m->ent);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory (hash map)");
        m->ent = p;
        m->cap = n;
    }
    return strmap_resize(m, ns);
}

aios_status tk_strmap_put(tk_strmap *m, const char *k, size_t len, int32_t val) {
    if (len > UINT32_MAX / 2) return aios__err(AIOS_ERR_RANGE, "tokenizer: key too long");
    if ((m->n + 1) * 2 > m->nslots) AIOS_TRY(strmap_grow(m));
    uint64_t h = tk_hash(k, len), hi = h & 0xFFFFFFFF00000000ull;
    size_t j = (size_t)h & (m->nslots - 1);
    while (m->slots[j]) {
        if ((m->slots[j] & 0xFFFFFFFF00000000ull) == hi) {
            struct tk_sent *e = &m->ent[(uint32_t)m->slots[j] - 1];
            if (e->hash == h && e->len == len && !memcmp(m->pool + e->off, k, len)) {
                e->val = val;
                return AIOS_OK;
            }
        }
        j = (j + 1) & (m->nslots - 1);
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        void *p = realloc(m->ent, nc * sizeof *m->ent);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory (hash map)");
        m->ent = p;
        m->cap = nc;
    }
    if (m->pool_len + len + 1 > m->pool_cap) {
        size_t nc = m->pool_cap ? m->pool_cap : 4096;
        while (nc < m->pool_len + len + 1) nc *= 2;
        if (nc > UINT32_MAX) return aios__err(AIOS_ERR_RANGE, "tokenizer: vocabulary too large");
        char *p = realloc(m->pool, nc);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory (hash map)");
        m->pool = p;
        m->pool_cap = nc;
    }
    memcpy(m->pool + m->pool_len, k, len);
    m->pool[m->pool_len + len] = 0;
    m->ent[m->n] = (struct tk_sent){h, (uint32_t)m->pool_len, (uint32_t)len, val};
    m->pool_len += len + 1;
    m->n++;
    m->slots[j] = (uint64_t)m->n | hi;
    return AIOS_OK;
}

void tk_strmap_prefetch(const tk_strmap *m, uint64_t h) {
    if (m->nslots) __builtin_prefetch(&m->slots[(size_t)h & (m->nslots - 1)]);
}

int32_t tk_strmap_get(const tk_strmap *m, const char *k, size_t len) { return tk_strmap_get_h(m, k, len, tk_hash(k, len)); }

int32_t tk_strmap_get_h(const tk_strmap *m, const char *k, size_t len, uint64_t h) {
    if (!m->nslots) return -1;
    uint64_t hi = h & 0xFFFFFFFF00000000ull;
    size_t j = (size_t)h & (m->nslots - 1);
    while (m->slots[j]) {
        if ((m->slots[j] & 0xFFFFFFFF00000000ull) == hi) {
            const struct tk_sent *e = &m->ent[(uint32_t)m->slots[j] - 1];
            if (e->len == len && !memcmp(m->pool + e->off, k, len)) return e->val;
        }
        j = (j + 1) & (m->nslots - 1);
    }
    return -1;
}

static inline size_t u64_slot(uint64_t k, size_t ns) {
    k *= 0x9E3779B97F4A7C15ull;
    return (size_t)(k >> 32 ^ k) & (ns - 1);
}

aios_status tk_u64map_reserve(tk_u64map *m, size_t n) {
    size_t ns = 64;
    while (ns < n * 2 + 2) ns *= 2;
    if (ns <= m->nslots) return AIOS_OK;
    struct tk_u64slot *nsl = calloc(ns, sizeof *nsl);
    if (!nsl) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory (merges)");
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].key) {
            size_t j = u64_slot(m->slots[i].key - 1, ns);
            while (nsl[j].key) j = (j + 1) & (ns - 1);
            nsl[j] = m->slots[i];
        }
    free(m->slots);
    m->slots = nsl;
    m->nslots = ns;
    return AIOS_OK;
}

void tk_u64map_free(tk_u64map *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

aios_status tk_u64map_put(tk_u64map *m, uint64_t k, uint64_t v) {
    if ((m->n + 1) * 2 > m->nslots) AIOS_TRY(tk_u64map_reserve(m, m->n + 1)); /* keeps load <= 1/2 */
    size_t j = u64_slot(k, m->nslots);
    while (m->slots[j].key) {
        if (m->slots[j].key == k + 1) {
            m->slots[j].val = v;
            return AIOS_OK;
        }
        j = (j + 1) & (m->nslots - 1);
    }
    m->slots[j].key = k + 1;
    m->slots[j].val = v;
    m->n++;
    return AIOS_OK;
}

int tk_u64map_get(const tk_u64map *m, uint64_t k, uint64_t *v) {
    if (!m->nslots) return 0;
    size_t j = u64_slot(k, m->nslots);
    for (;;) {
        uint64_t key = m->slots[j].key;
        if (key == k + 1) {
            *v = m->slots[j].val;
            return 1;
        }
        if (!key) return 0;
        j = (j + 1) & (m->nslots - 1);
    }
}

/* ---------------------------------------------------------------------------- nstr */
static _Thread_local tk_arena *g_arena;

void tk_arena_use(tk_arena *a) { g_arena = a; }

void tk_arena_reset(tk_arena *a) {
    for (size_t i = 0; i < a->n; i++) a->c[i].used = 0;
    a->cur = 0;
}

void tk_arena_free(tk_arena *a) {
    for (size_t i = 0; i < a->n; i++) free(a->c[i].p);
    free(a->c);
    memset(a, 0, sizeof *a);
}

static void *arena_alloc(tk_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    while (a->cur < a->n && a->c[a->cur].cap - a->c[a->cur].used < n) a->cur++;
    if (a->cur == a->n) {
        struct tk_chunk *c = realloc(a->c, (a->n + 1) * sizeof *c);
        if (!c) return NULL;
        a->c = c;
        size_t cap = a->n ? a->c[a->n - 1].cap * 2 : 65536;
        if (cap < n) cap = n;
        unsigned char *p = malloc(cap);
        if (!p) return NULL;
        a->c[a->n++] = (struct tk_chunk){p, 0, cap};
    }
    struct tk_chunk *c = &a->c[a->cur];
    void *p = c->p + c->used;
    c->used += n;
    return p;
}

void tk_nstr_free(tk_nstr *n) {
    if (!n->arena) free(n->al); /* b lives in the same block */
    memset(n, 0, sizeof *n);
}

/* One allocation per string: the alignments, then the bytes (al must stay 4-aligned). */
aios_status tk_nstr_reserve(tk_nstr *n, size_t extra) {
    if (n->len + extra <= n->cap) return AIOS_OK;
    size_t nc = n->cap ? n->cap * 2 : 32;
    while (nc < n->len + extra) nc *= 2;
    if (nc > UINT32_MAX) return aios__err(AIOS_ERR_RANGE, "tokenizer: text too long");
    tk_arena *ar = g_arena;
    tk_span *al = ar ? arena_alloc(ar, nc * sizeof *al + nc + 1) : malloc(nc * sizeof *al + nc + 1);
    if (!al) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    uint8_t *b = (uint8_t *)(al + nc);
    if (n->len) {
        memcpy(al, n->al, n->len * sizeof *al);
        memcpy(b, n->b, n->len);
    }
    if (!n->arena) free(n->al);
    n->arena = ar != NULL;
    n->al = al;
    n->b = b;
    n->cap = nc;
    return AIOS_OK;
}

aios_status tk_nstr_slice(const tk_nstr *src, size_t s, size_t e, tk_nstr *out) {
    memset(out, 0, sizeof *out);
    AIOS_TRY(tk_nstr_reserve(out, e - s));
    memcpy(out->b, src->b + s, e - s);
    memcpy(out->al, src->al + s, (e - s) * sizeof *out->al);
    out->len = e - s;
    out->b[out->len] = 0;
    return AIOS_OK;
}

aios_status tk_xform_begin(tk_xform *x, const tk_nstr *old, size_t skip_chars) {
    x->old = old;
    x->off = 0;
    memset(&x->out, 0, sizeof x->out);
    for (size_t i = 0; i < skip_chars && x->off < old->len; i++) x->off += (size_t)tk_utf8_len(old->b[x->off]);
    return tk_nstr_reserve(&x->out, old->len + 8);
}

aios_status tk_xform_push(tk_xform *x, uint32_t cp, int change) {
    const tk_nstr *o = x->old;
    tk_span al;
    if (change > 0) {
        al = x->off < 1 ? (tk_span){0, 0} : o->al[x->off - 1];
    } else {
        al = x->off < o->len ? o->al[x->off] : (o->len ? o->al[o->len - 1] : (tk_span){0, 0});
        if (x->off < o->len) x->off += (size_t)tk_utf8_len(o->b[x->off]);
        for (int i = 0; i < -change && x->off < o->len; i++) x->off += (size_t)tk_utf8_len(o->b[x->off]);
    }
    AIOS_TRY(tk_nstr_reserve(&x->out, 4));
    int l = tk_utf8_enc(cp, x->out.b + x->out.len);
    for (int i = 0; i < l; i++) x->out.al[x->out.len + (size_t)i] = al;
    x->out.len += (size_t)l;
    return AIOS_OK;
}

void tk_xform_end(tk_xform *x, tk_nstr *old) {
    tk_nstr_free(old);
    *old = x->out;
    if (old->b) old->b[old->len] = 0;
    memset(&x->out, 0, sizeof x->out);
}

/* ---------------------------------------------------------------------------- splits */
void tk_splits_clear(tk_splits *s) {
    for (size_t i = 0; i < s->n; i++) tk_nstr_free(&s->v[i].n);
    s->n = 0;
}

void tk_splits_free(tk_splits *s) {
    tk_splits_clear(s);
    free(s->v);
    memset(s, 0, sizeof *s);
}

aios_status tk_splits_push(tk_splits *s, tk_nstr *n, int32_t tok_id) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        void *p = realloc(s->v, nc * sizeof *s->v);
        if (!p) {
            tk_nstr_free(n);
            return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        }
        s->v = p;
        s->cap = nc;
    }
    s->v[s->n].n = *n;
    s->v[s->n].tok_id = tok_id;
    s->n++;
    memset(n, 0, sizeof *n);
    return AIOS_OK;
}

aios_status tk_regions_push(tk_regions *r, size_t s, size_t e, int match) {
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 32;
        void *p = realloc(r->v, nc * sizeof *r->v);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        r->v = p;
        r->cap = nc;
    }
    r->v[r->n++] = (tk_region){(uint32_t)s, (uint32_t)e, match};
    return AIOS_OK;
}

aios_status tk_split_by_regions(const tk_nstr *n, tk_regions *rg, int behavior, tk_splits *out) {
    /* Rewrite the regions in place into (range, remove) pairs, as NormalizedString::split. */
    size_t k = 0;
    int prev = 0;
    switch (behavior) {
    case TK_SPLIT_REMOVED:
        k = rg->n;
        break;
    case TK_SPLIT_ISOLATED:
        for (size_t i = 0; i < rg->n; i++) rg->v[i].match = 0;
        k = rg->n;
        break;
    case TK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < rg->n; i++) {
            int m = rg->v[i].match;
            if (m == prev && k > 0) rg->v[k - 1].e = rg->v[i].e;
            else rg->v[k++] = (tk_region){rg->v[i].s, rg->v[i].e, 0};
            prev = m;
        }
        break;
    case TK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < rg->n; i++) {
            int m = rg->v[i].match;
            if (m && !prev && k > 0) rg->v[k - 1].e = rg->v[i].e;
            else rg->v[k++] = (tk_region){rg->v[i].s, rg->v[i].e, 0};
            prev = m;
        }
        break;
    case TK_SPLIT_MERGED_NEXT: {
        /* Walk backwards, merging a match into the following piece. */
        size_t w = rg->n;
        for (size_t i = rg->n; i-- > 0;) {
            int m = rg->v[i].match;
            tk_region r = rg->v[i];
            if (m && !prev && w < rg->n) rg->v[w].s = r.s;
            else rg->v[--w] = (tk_region){r.s, r.e, 0};
            prev = m;
        }
        memmove(rg->v, rg->v + w, (rg->n - w) * sizeof *rg->v);
        k = rg->n - w;
        break;
    }
    default:
        return aios__err(AIOS_ERR_INTERNAL, "tokenizer: bad split behaviour");
    }
    for (size_t i = 0; i < k; i++) {
        if (rg->v[i].match || rg->v[i].s >= rg->v[i].e) continue; /* removed or empty */
        tk_nstr piece;
        AIOS_TRY(tk_nstr_slice(n, rg->v[i].s, rg->v[i].e, &piece));
        AIOS_TRY(tk_splits_push(out, &piece, -1));
    }
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- model tokens */
aios_status tk_mtoks_push(tk_mtoks *t, int32_t id, size_t s, size_t e, const char *val, size_t vlen) {
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 32;
        void *p = realloc(t->v, nc * sizeof *t->v);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        t->v = p;
        t->cap = nc;
    }
    t->v[t->n++] = (tk_mtok){id, (uint32_t)s, (uint32_t)e, val, (uint32_t)vlen};
    return AIOS_OK;
}

void tk_mtoks_free(tk_mtoks *t) {
    free(t->v);
    free(t->pool);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------------------- encodings */
void tk_enc_free(tk_enc *e) {
    free(e->ids);
    free(e->type_ids);
    free(e->special);
    free(e->off);
    free(e->toff);
    free(e->tlen);
    aios_buf_free(&e->pool);
    memset(e, 0, sizeof *e);
}

static aios_status enc_grow(tk_enc *e) {
    size_t nc = e->cap ? e->cap * 2 : 64;
    int32_t *a = realloc(e->ids, nc * sizeof *a);
    if (a) e->ids = a;
    int32_t *b = realloc(e->type_ids, nc * sizeof *b);
    if (b) e->type_ids = b;
    uint8_t *c = realloc(e->special, nc);
    if (c) e->special = c;
    tk_span *d = realloc(e->off, nc * sizeof *d);
    if (d) e->off = d;
    size_t *f = realloc(e->toff, nc * sizeof *f);
    if (f) e->toff = f;
    size_t *g = realloc(e->tlen, nc * sizeof *g);
    if (g) e->tlen = g;
    if (!a || !b || !c || !d || !f || !g) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    e->cap = nc;
    return AIOS_OK;
}

aios_status tk_enc_push(tk_enc *e, int32_t id, const char *tok, size_t tlen, uint32_t s, uint32_t end, int32_t type_id,
                        int special) {
    if (e->n == e->cap) AIOS_TRY(enc_grow(e));
    size_t at = e->pool.len;
    AIOS_TRY(aios_buf_reserve(&e->pool, tlen + 1));
    if (tlen) memcpy(e->pool.data + at, tok, tlen);
    e->pool.data[at + tlen] = 0;
    e->pool.len += tlen + 1;
    size_t i = e->n++;
    e->ids[i] = id;
    e->type_ids[i] = type_id;
    e->special[i] = (uint8_t)special;
    e->off[i] = (tk_span){s, end};
    e->toff[i] = at;
    e->tlen[i] = tlen;
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- base64 */
aios_status tk_b64_decode(const char *s, uint8_t **out, size_t *len) {
    size_t n = strlen(s);
    uint8_t *o = malloc(n / 4 * 3 + 4);
    if (!o) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') break;
        else {
            free(o);
            return aios__err(AIOS_ERR_FORMAT, "tokenizer: invalid base64 character at %zu", i);
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = o;
    *len = k;
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- json */
const struct cJSON *tk_j(const struct cJSON *o, const char *key) {
    if (!o || !cJSON_IsObject(o)) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return NULL;
    return v;
}

const char *tk_jstr(const struct cJSON *o, const char *key) {
    const cJSON *v = tk_j(o, key);
    return v && cJSON_IsString(v) ? v->valuestring : NULL;
}

int tk_jbool(const struct cJSON *o, const char *key, int dflt) {
    const cJSON *v = tk_j(o, key);
    if (!v) return dflt;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}
