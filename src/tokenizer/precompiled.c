/*
 * precompiled.c — the `Precompiled` normalizer: sentencepiece's compiled character map.
 *
 * precompiled_charsmap (base64) = u32 LE trie size in bytes, then that many bytes of a Darts
 * double-array trie (u32 units), then a blob of NUL-terminated replacement strings.  A unit
 * packs: has_leaf = bit 8, value = low 31 bits, label = bits 0-7 plus bit 31, offset =
 * (u >> 10) << ((u & 512) >> 6).  Lookups follow sentencepiece's Darts common-prefix search
 * (every array access here is bounds-checked: the map comes from an untrusted file).
 *
 * Application follows `tokenizers` (normalizers/precompiled.rs over the spm_precompiled crate):
 * the text is cut into extended grapheme clusters; a cluster shorter than 6 bytes is looked up
 * whole and, when the trie has a key that is a prefix of it, the whole cluster is replaced by
 * the shortest such key's string; otherwise each char is looked up alone.  Replacements become
 * (char, change) transforms exactly as that code builds them.
 */
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

struct tk_precompiled {
    uint32_t *units;
    size_t nunits;
    char *norm;
    size_t nnorm;
};

void tk_precompiled_free(tk_precompiled *p) {
    if (!p) return;
    free(p->units);
    free(p->norm);
    free(p);
}

aios_status tk_precompiled_parse(const char *b64, tk_precompiled **out) {
    *out = NULL;
    uint8_t *raw;
    size_t n;
    AIOS_TRY(tk_b64_decode(b64, &raw, &n));
    if (n == 0) { /* an empty map normalizes nothing */
        free(raw);
        tk_precompiled *p = calloc(1, sizeof *p);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        *out = p;
        return AIOS_OK;
    }
    if (n < 4) {
        free(raw);
        return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: precompiled_charsmap: truncated header");
    }
    uint32_t tsize = (uint32_t)raw[0] | ((uint32_t)raw[1] << 8) | ((uint32_t)raw[2] << 16) | ((uint32_t)raw[3] << 24);
    if ((size_t)tsize > n - 4) {
        free(raw);
        return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: precompiled_charsmap: trie size %u exceeds data (%zu)", tsize, n);
    }
    tk_precompiled *p = calloc(1, sizeof *p);
    if (!p) {
        free(raw);
        return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    }
    p->nunits = tsize / 4;
    p->units = malloc(p->nunits * 4 + 4);
    p->nnorm = n - 4 - tsize;
    p->norm = malloc(p->nnorm + 1);
    if (!p->units || !p->norm) {
        free(raw);
        tk_precompiled_free(p);
        return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    }
    for (size_t i = 0; i < p->nunits; i++) {
        const uint8_t *u = raw + 4 + 4 * i;
        p->units[i] = (uint32_t)u[0] | ((uint32_t)u[1] << 8) | ((uint32_t)u[2] << 16) | ((uint32_t)u[3] << 24);
    }
    memcpy(p->norm, raw + 4 + tsize, p->nnorm);
    p->norm[p->nnorm] = 0;
    free(raw);
    *out = p;
    return AIOS_OK;
}

static inline uint32_t u_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static inline uint32_t u_label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
static inline int u_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t u_value(uint32_t u) { return u & ((1u << 31) - 1); }

/* The shortest key that is a prefix of key[0..n): its replacement string, or NULL. */
static const char *transform(const tk_precompiled *p, const uint8_t *key, size_t n, size_t *rlen) {
    if (!p->nunits) return NULL;
    size_t pos = 0;
    uint32_t u = p->units[0];
    pos ^= u_offset(u);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = key[i];
        if (c == 0) break;
        pos ^= c;
        if (pos >= p->nunits) return NULL;
        u = p->units[pos];
        if (u_label(u) != c) return NULL;
        pos ^= u_offset(u);
        if (u_leaf(u)) {
            if (pos >= p->nunits) return NULL;
            size_t idx = u_value(p->units[pos]);
            if (idx >= p->nnorm) return NULL;
            size_t e = idx;
            while (e < p->nnorm && p->norm[e]) e++;
            *rlen = e - idx;
            return p->norm + idx;
        }
    }
    return NULL;
}

typedef struct { uint32_t cp; int change; } chg;
typedef struct { chg *v; size_t n, cap; } chgs;

static aios_status chg_push(chgs *c, uint32_t cp, int change) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        void *p = realloc(c->v, nc * sizeof *c->v);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        c->v = p;
        c->cap = nc;
    }
    c->v[c->n++] = (chg){cp, change};
    return AIOS_OK;
}

static size_t count_chars(const uint8_t *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += (s[i] & 0xC0) != 0x80;
    return k;
}

/* replace() of precompiled.rs: new chars with change 0, the last `diff` of them +1 when
 * growing; when shrinking the last transformation so far absorbs the difference. */
static aios_status replace(chgs *c, const uint8_t *old, size_t olen, const char *nw, size_t nlen) {
    long oc = (long)count_chars(old, olen);
    size_t start = c->n;
    for (size_t i = 0; i < nlen;) {
        uint32_t cp;
        int l = tk_utf8_dec((const uint8_t *)nw + i, nlen - i, &cp);
        if (!l) {
            cp = 0xFFFD;
            l = 1;
        }
        AIOS_TRY(chg_push(c, cp, 0));
        i += (size_t)l;
    }
    long nc = (long)(c->n - start);
    long diff = nc - oc;
    if (diff > 0) {
        for (long k = 0; k < diff && c->n - (size_t)k > 0; k++) c->v[c->n - 1 - (size_t)k].change = 1;
    } else if (diff < 0 && c->n > 0) {
        c->v[c->n - 1].change += (int)diff;
    }
    return AIOS_OK;
}

aios_status tk_precompiled_normalize(const tk_precompiled *p, tk_nstr *s) {
    if (!p || !p->nunits || s->len == 0) return AIOS_OK;
    chgs c = {0};
    int modified = 0;
    aios_status st = AIOS_OK;
    const uint8_t *b = s->b;
    size_t n = s->len;
    size_t gs = 0;
    while (gs < n && st == AIOS_OK) {
        /* find the end of the grapheme cluster starting at gs */
        uint32_t cp0;
        int l0 = tk_utf8_dec(b + gs, n - gs, &cp0);
        if (!l0) {
            cp0 = 0xFFFD;
            l0 = 1;
        }
        size_t ge = gs + (size_t)l0;
        utf8proc_int32_t state = 0;
        uint32_t prev = cp0;
        while (ge < n) {
            uint32_t cp;
            int l = tk_utf8_dec(b + ge, n - ge, &cp);
            if (!l) break;
            if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev, (utf8proc_int32_t)cp, &state)) break;
            prev = cp;
            ge += (size_t)l;
        }
        size_t rl;
        const char *r;
        if (ge - gs < 6 && (r = transform(p, b + gs, ge - gs, &rl)) != NULL) {
            modified = 1;
            st = replace(&c, b + gs, ge - gs, r, rl);
        } else {
            for (size_t i = gs; i < ge && st == AIOS_OK;) {
                uint32_t cp;
                int l = tk_utf8_dec(b + i, ge - i, &cp);
                if (!l) {
                    cp = 0xFFFD;
                    l = 1;
                }
                if ((r = transform(p, b + i, (size_t)l, &rl)) != NULL) {
                    modified = 1;
                    st = replace(&c, b + i, (size_t)l, r, rl);
                } else {
                    st = chg_push(&c, cp, 0);
                }
                i += (size_t)l;
            }
        }
        gs = ge;
    }
    if (st == AIOS_OK && modified) {
        tk_xform x;
        st = tk_xform_begin(&x, s, 0);
        for (size_t i = 0; st == AIOS_OK && i < c.n; i++) st = tk_xform_push(&x, c.v[i].cp, c.v[i].change);
        if (st == AIOS_OK) tk_xform_end(&x, s);
        else tk_nstr_free(&x.out);
    }
    free(c.v);
    return st;
}
