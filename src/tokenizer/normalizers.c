/*
 * normalizers.c — tokenizer.json normalizers: BertNormalizer, NFC/NFD/NFKC/NFKD, Lowercase,
 * StripAccents, Replace, Prepend, Strip, Precompiled, ByteLevel, Nmt, Sequence.
 *
 * Each is written over tk_xform so alignments match `tokenizers` (the normalizers module and
 * NormalizedString in tokenizer/normalizer.rs).  Unicode normalization follows the
 * `unicode-normalization-alignments` crate: a decomposed char emits (first, 0) then (rest, +1);
 * canonical reordering moves the (char, change) pairs together; a composition folds the
 * absorbed char's change into the starter's and subtracts one.  Unicode data is utf8proc's.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

enum { N_BERT, N_NFC, N_NFD, N_NFKC, N_NFKD, N_LOWER, N_STRIP_ACC, N_REPLACE, N_PREPEND, N_STRIP, N_PRECOMP,
       N_BYTELEVEL, N_SEQ, N_NMT };

struct tk_normalizer {
    int type;
    int clean_text, chinese, strip_accents, lowercase; /* bert */
    int left, right;                                   /* strip */
    char *str;                                         /* prepend / replace pattern (String) */
    size_t str_len;
    char *content;
    size_t content_len;
    tk_regex *re; /* replace pattern (Regex) */
    tk_precompiled *pc;
    tk_normalizer **kids;
    size_t nkids;
};

void tk_normalizer_free(tk_normalizer *n) {
    if (!n) return;
    for (size_t i = 0; i < n->nkids; i++) tk_normalizer_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n->content);
    tk_regex_free(n->re);
    tk_precompiled_free(n->pc);
    free(n);
}

static char *dupn(const char *s, size_t *len) {
    size_t l = strlen(s);
    char *d = malloc(l + 1);
    if (d) memcpy(d, s, l + 1);
    if (len) *len = l;
    return d;
}

/* Parses {"String": "..."} or {"Regex": "..."}; sets str or re. */
static aios_status parse_pattern(const cJSON *p, char **str, size_t *len, tk_regex **re, const char *what) {
    const char *s = tk_jstr(p, "String");
    if (s) {
        *str = dupn(s, len);
        return *str ? AIOS_OK : aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    }
    s = tk_jstr(p, "Regex");
    if (s) return tk_regex_compile(s, strlen(s), re);
    return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: %s: pattern is neither String nor Regex", what);
}

aios_status tk_normalizer_parse(const cJSON *j, tk_normalizer **out) {
    *out = NULL;
    const char *t = tk_jstr(j, "type");
    if (!t) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: normalizer without a type");
    tk_normalizer *n = calloc(1, sizeof *n);
    if (!n) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    aios_status st = AIOS_OK;
    if (!strcmp(t, "BertNormalizer")) {
        n->type = N_BERT;
        n->clean_text = tk_jbool(j, "clean_text", 1);
        n->chinese = tk_jbool(j, "handle_chinese_chars", 1);
        n->lowercase = tk_jbool(j, "lowercase", 1);
        const cJSON *sa = tk_j(j, "strip_accents");
        n->strip_accents = sa && cJSON_IsBool(sa) ? cJSON_IsTrue(sa) : n->lowercase;
    } else if (!strcmp(t, "NFC")) n->type = N_NFC;
    else if (!strcmp(t, "NFD")) n->type = N_NFD;
    else if (!strcmp(t, "NFKC")) n->type = N_NFKC;
    else if (!strcmp(t, "NFKD")) n->type = N_NFKD;
    else if (!strcmp(t, "Lowercase")) n->type = N_LOWER;
    else if (!strcmp(t, "StripAccents")) n->type = N_STRIP_ACC;
    else if (!strcmp(t, "ByteLevel")) n->type = N_BYTELEVEL;
    else if (!strcmp(t, "Nmt")) n->type = N_NMT;
    else if (!strcmp(t, "Strip")) {
        n->type = N_STRIP;
        n->left = tk_jbool(j, "strip_left", 1);
        n->right = tk_jbool(j, "strip_right", 1);
    } else if (!strcmp(t, "Prepend")) {
        n->type = N_PREPEND;
        const char *p = tk_jstr(j, "prepend");
        if (!p) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Prepend without 'prepend'");
        else if (!(n->str = dupn(p, &n->str_len))) st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    } else if (!strcmp(t, "Replace")) {
        n->type = N_REPLACE;
        const char *c = tk_jstr(j, "content");
        const cJSON *p = tk_j(j, "pattern");
        if (!c || !p) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Replace needs pattern and content");
        else if (!(n->content = dupn(c, &n->content_len))) st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        else st = parse_pattern(p, &n->str, &n->str_len, &n->re, "Replace");
    } else if (!strcmp(t, "Precompiled")) {
        n->type = N_PRECOMP;
        const char *m = tk_jstr(j, "precompiled_charsmap");
        if (!m) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Precompiled without precompiled_charsmap");
        else st = tk_precompiled_parse(m, &n->pc);
    } else if (!strcmp(t, "Sequence")) {
        n->type = N_SEQ;
        const cJSON *arr = tk_j(j, "normalizers");
        if (!arr || !cJSON_IsArray(arr)) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: normalizer Sequence without a list");
        else {
            int k = cJSON_GetArraySize(arr);
            n->kids = calloc((size_t)k + 1, sizeof *n->kids);
            if (!n->kids) st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
            for (int i = 0; st == AIOS_OK && i < k; i++) {
                st = tk_normalizer_parse(cJSON_GetArrayItem(arr, i), &n->kids[i]);
                if (st == AIOS_OK) n->nkids++;
            }
        }
    } else {
        st = aios__err(AIOS_ERR_UNSUPPORTED, "tokenizer.json: normalizer type '%s' is not supported", t);
    }
    if (st != AIOS_OK) {
        tk_normalizer_free(n);
        return st;
    }
    *out = n;
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- helpers */
static bool is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* `is_other` of the unicode_categories crate that tokenizers uses: Cc Cf Co Cs.  Unassigned
 * code points (Cn) are not in its tables, so U+FFFF and friends are kept (then [UNK]). */
static bool is_other(uint32_t c) {
    if (c < 0x80) return c < 0x20 || c == 0x7F;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO ||
           k == UTF8PROC_CATEGORY_CS;
}

static bool is_mn(uint32_t c) {
    return c >= 0x300 && utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_MN;
}

static bool is_mark(uint32_t c) {
    if (c < 0x300) return false;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

static bool all_ascii(const tk_nstr *s) {
    for (size_t i = 0; i < s->len; i++)
        if (s->b[i] & 0x80) return false;
    return true;
}

#define FOR_CHARS(s, i, cp, l)                                                                    \
    for (size_t i = 0, l = 0; i < (s)->len; i += l)                                               \
        if ((l = (size_t)tk_utf8_len((s)->b[i])), (tk_utf8_dec((s)->b + i, (s)->len - i, &cp) || ((cp = 0xFFFD), 1)))

/* filter: keeps chars where keep() is true, with their own alignments. */
static aios_status nfilter(tk_nstr *s, bool (*drop)(uint32_t)) {
    size_t w = 0;
    uint32_t cp;
    FOR_CHARS(s, i, cp, l) {
        if (drop(cp)) continue;
        memmove(s->b + w, s->b + i, l);
        memmove(s->al + w, s->al + i, l * sizeof *s->al);
        w += l;
    }
    s->len = w;
    if (s->b) s->b[w] = 0;
    return AIOS_OK;
}

static bool nmt_drop(uint32_t c) {
    return (c >= 1 && c <= 8) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || c == 0x8F || c == 0x9F;
}

static uint32_t nmt_map(uint32_t c) {
    switch (c) {
    case 0x09: case 0x0A: case 0x0C: case 0x0D: case 0x1680: case 0x2028: case 0x2029: case 0x2581: case 0xFEFF:
    case 0xFFFD:
        return ' ';
    default:
        return c >= 0x200B && c <= 0x200F ? ' ' : c;
    }
}

static bool bert_drop(uint32_t c) {
    if (c == 0 || c == 0xFFFD) return true;
    if (c == '\t' || c == '\n' || c == '\r') return false;
    return is_other(c);
}

static aios_status lowercase(tk_nstr *s) {
    if (all_ascii(s)) {
        for (size_t i = 0; i < s->len; i++)
            if (s->b[i] >= 'A' && s->b[i] <= 'Z') s->b[i] += 32;
        return AIOS_OK;
    }
    tk_xform x;
    AIOS_TRY(tk_xform_begin(&x, s, 0));
    uint32_t cp;
    aios_status st = AIOS_OK;
    FOR_CHARS(s, i, cp, l) {
        if (cp == 0x130) { /* İ lowercases to i + combining dot above */
            st = tk_xform_push(&x, 'i', 0);
            if (st == AIOS_OK) st = tk_xform_push(&x, 0x307, 1);
        } else {
            st = tk_xform_push(&x, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), 0);
        }
        if (st != AIOS_OK) break;
    }
    if (st != AIOS_OK) {
        tk_nstr_free(&x.out);
        return st;
    }
    tk_xform_end(&x, s);
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- unicode forms */
typedef struct { uint32_t cp; int change; int ccc; } uchg;

static int ccc_of(uint32_t c) {
    if (c < 0x300) return 0;
    return utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
}

static uint32_t compose_pair(uint32_t a, uint32_t b) {
    /* Hangul LV / LVT */
    if (a >= 0x1100 && a < 0x1113 && b >= 0x1161 && b < 0x1176)
        return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28;
    if (a >= 0xAC00 && a < 0xAC00 + 11172 && (a - 0xAC00) % 28 == 0 && b > 0x11A7 && b < 0x11C3)
        return a + (b - 0x11A7);
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)a, (utf8proc_int32_t)b};
    utf8proc_ssize_t r = utf8proc_normalize_utf32(buf, 2, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    return r == 1 ? (uint32_t)buf[0] : 0;
}

/* NFD/NFKD (compose=0) or NFC/NFKC (compose=1) with alignments. */
static aios_status unorm(tk_nstr *s, int compat, int compose) {
    if (all_ascii(s)) return AIOS_OK;
    size_t cap = s->len * 4 + 16, n = 0;
    uchg *v = malloc(cap * sizeof *v);
    if (!v) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    uint32_t cp;
    utf8proc_int32_t dec[32];
    FOR_CHARS(s, i, cp, l) {
        if (cp < 0x80) { /* ASCII: no decomposition, combining class 0 */
            if (n == cap) {
                cap *= 2;
                uchg *p = realloc(v, cap * sizeof *v);
                if (!p) {
                    free(v);
                    return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
                }
                v = p;
            }
            v[n++] = (uchg){cp, 0, 0};
            continue;
        }
        int last = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)cp, dec, 32,
                                                      UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0), &last);
        if (k < 1 || k > 32) {
            dec[0] = (utf8proc_int32_t)cp;
            k = 1;
        }
        for (utf8proc_ssize_t j = 0; j < k; j++) {
            if (n == cap) {
                cap *= 2;
                uchg *p = realloc(v, cap * sizeof *v);
                if (!p) {
                    free(v);
                    return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
                }
                v = p;
            }
            v[n++] = (uchg){(uint32_t)dec[j], j > 0, ccc_of((uint32_t)dec[j])};
        }
    }
    /* canonical ordering: stable sort each run of non-starters by ccc */
    for (size_t i = 0; i < n;) {
        if (v[i].ccc == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && v[j].ccc != 0) j++;
        if (j - i > 32) { /* long runs (hostile input): stable counting sort, O(run + 256) */
            size_t cnt[257] = {0};
            uchg *tmp = malloc((j - i) * sizeof *tmp);
            if (!tmp) {
                free(v);
                return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
            }
            for (size_t a = i; a < j; a++) cnt[v[a].ccc + 1]++;
            for (int c = 1; c < 257; c++) cnt[c] += cnt[c - 1];
            for (size_t a = i; a < j; a++) tmp[cnt[v[a].ccc]++] = v[a];
            memcpy(v + i, tmp, (j - i) * sizeof *tmp);
            free(tmp);
            i = j;
            continue;
        }
        for (size_t a = i + 1; a < j; a++) { /* insertion sort: stable */
            uchg t = v[a];
            size_t b = a;
            while (b > i && v[b - 1].ccc > t.ccc) {
                v[b] = v[b - 1];
                b--;
            }
            v[b] = t;
        }
        i = j;
    }
    if (compose) {
        size_t w = 0;
        long starter = -1;
        int last_ccc = 0;
        for (size_t i = 0; i < n; i++) {
            uchg c = v[i];
            if (starter >= 0) {
                int blocked = (size_t)starter + 1 != w && (last_ccc == 0 || last_ccc >= c.ccc);
                /* only marks, Hangul vowels/trailing consonants and a few Indic/Myanmar/Balinese
                 * vowel signs ever compose as the second char of a pair */
                int may = c.ccc != 0 || (c.cp >= 0x0900 && c.cp < 0x1C00) || (c.cp >= 0x1161 && c.cp <= 0x11C2);
                if (!blocked && may) {
                    uint32_t comp = compose_pair(v[starter].cp, c.cp);
                    if (comp) {
                        v[starter].cp = comp;
                        v[starter].change += c.change - 1;
                        continue;
                    }
                }
            }
            if (c.ccc == 0) {
                starter = (long)w;
                last_ccc = 0;
            } else {
                last_ccc = c.ccc;
            }
            v[w++] = c;
        }
        n = w;
    }
    /* identity: nothing to do (no allocation) */
    size_t chars = 0;
    int same = 1;
    {
        size_t k = 0;
        uint32_t c0;
        FOR_CHARS(s, i, c0, l) {
            if (k >= n || v[k].cp != c0 || v[k].change != 0) {
                same = 0;
                break;
            }
            k++;
        }
        chars = k;
        if (same && chars != n) same = 0;
    }
    if (same) {
        free(v);
        return AIOS_OK;
    }
    tk_xform x;
    aios_status st = tk_xform_begin(&x, s, 0);
    for (size_t i = 0; st == AIOS_OK && i < n; i++) st = tk_xform_push(&x, v[i].cp, v[i].change);
    free(v);
    if (st != AIOS_OK) {
        tk_nstr_free(&x.out);
        return st;
    }
    tk_xform_end(&x, s);
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- byte level */
static uint32_t g_byte2cp[256];
static pthread_once_t g_byte_once = PTHREAD_ONCE_INIT;
static void byte_table_init(void) {
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        g_byte2cp[b] = keep ? (uint32_t)b : 256 + n++;
    }
}
static void byte_table(void) { pthread_once(&g_byte_once, byte_table_init); }
uint32_t tk_byte_to_cp(uint8_t b);
uint32_t tk_byte_to_cp(uint8_t b) {
    byte_table();
    return g_byte2cp[b];
}

aios_status tk_bytelevel_map(tk_nstr *s);
aios_status tk_bytelevel_map(tk_nstr *s) {
    byte_table();
    tk_xform x;
    AIOS_TRY(tk_xform_begin(&x, s, 0));
    aios_status st = AIOS_OK;
    for (size_t i = 0; i < s->len && st == AIOS_OK;) {
        size_t l = (size_t)tk_utf8_len(s->b[i]);
        if (i + l > s->len) l = s->len - i;
        for (size_t k = 0; k < l && st == AIOS_OK; k++) st = tk_xform_push(&x, g_byte2cp[s->b[i + k]], k > 0);
        i += l;
    }
    if (st != AIOS_OK) {
        tk_nstr_free(&x.out);
        return st;
    }
    tk_xform_end(&x, s);
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- replace */
aios_status tk_replace(tk_nstr *s, const char *pat, size_t plen, const tk_regex *re, const char *content, size_t clen);
aios_status tk_replace(tk_nstr *s, const char *pat, size_t plen, const tk_regex *re, const char *content, size_t clen) {
    tk_regions rg = {0};
    aios_status st = AIOS_OK;
    if (re) {
        st = tk_regex_regions(re, s->b, s->len, &rg);
    } else if (plen > 0) {
        size_t prev = 0;
        for (size_t i = 0; st == AIOS_OK && i + plen <= s->len;) {
            if (!memcmp(s->b + i, pat, plen)) {
                if (prev < i) st = tk_regions_push(&rg, prev, i, 0);
                if (st == AIOS_OK) st = tk_regions_push(&rg, i, i + plen, 1);
                i += plen;
                prev = i;
            } else i++;
        }
        if (st == AIOS_OK && prev < s->len) st = tk_regions_push(&rg, prev, s->len, 0);
    }
    int any = 0;
    for (size_t i = 0; i < rg.n; i++) any |= rg.v[i].match;
    if (st != AIOS_OK || !any) {
        free(rg.v);
        return st;
    }
    tk_nstr o = {0};
    st = tk_nstr_reserve(&o, s->len + rg.n * (clen + 1) + 1);
    for (size_t r = 0; st == AIOS_OK && r < rg.n; r++) {
        tk_region g = rg.v[r];
        if (!g.match) {
            memcpy(o.b + o.len, s->b + g.s, g.e - g.s);
            memcpy(o.al + o.len, s->al + g.s, (g.e - g.s) * sizeof *o.al);
            o.len += g.e - g.s;
        } else {
            st = tk_nstr_reserve(&o, clen);
            if (st != AIOS_OK) break;
            tk_span al = g.e >= 1 ? s->al[g.e - 1] : (tk_span){0, 0};
            memcpy(o.b + o.len, content, clen);
            for (size_t k = 0; k < clen; k++) o.al[o.len + k] = al;
            o.len += clen;
        }
    }
    free(rg.v);
    if (st != AIOS_OK) {
        tk_nstr_free(&o);
        return st;
    }
    o.b[o.len] = 0;
    tk_nstr_free(s);
    *s = o;
    return AIOS_OK;
}

aios_status tk_prepend(tk_nstr *s, const char *p, size_t plen);
aios_status tk_prepend(tk_nstr *s, const char *p, size_t plen) {
    if (s->len == 0 || plen == 0) return AIOS_OK;
    tk_xform x;
    AIOS_TRY(tk_xform_begin(&x, s, 0));
    aios_status st = AIOS_OK;
    int first = 1;
    for (size_t i = 0; st == AIOS_OK && i < plen;) {
        uint32_t cp;
        int l = tk_utf8_dec((const uint8_t *)p + i, plen - i, &cp);
        if (!l) {
            cp = 0xFFFD;
            l = 1;
        }
        st = tk_xform_push(&x, cp, first ? 0 : 1);
        first = 0;
        i += (size_t)l;
    }
    /* the first old char, now re-inserted, then the rest unchanged */
    uint32_t cp;
    size_t l0 = (size_t)tk_utf8_len(s->b[0]);
    if (!tk_utf8_dec(s->b, s->len, &cp)) cp = 0xFFFD;
    if (st == AIOS_OK) st = tk_xform_push(&x, cp, 1);
    if (st == AIOS_OK) st = tk_nstr_reserve(&x.out, s->len);
    if (st == AIOS_OK && l0 <= s->len) {
        memcpy(x.out.b + x.out.len, s->b + l0, s->len - l0);
        memcpy(x.out.al + x.out.len, s->al + l0, (s->len - l0) * sizeof *s->al);
        x.out.len += s->len - l0;
    }
    if (st != AIOS_OK) {
        tk_nstr_free(&x.out);
        return st;
    }
    tk_xform_end(&x, s);
    return AIOS_OK;
}

static aios_status strip(tk_nstr *s, int left, int right) {
    size_t a = 0, b = s->len;
    uint32_t cp;
    if (left)
        while (a < b) {
            int l = tk_utf8_dec(s->b + a, b - a, &cp);
            if (!l || !tk_is_whitespace(cp)) break;
            a += (size_t)l;
        }
    if (right)
        while (b > a) {
            size_t k = b - 1;
            while (k > a && (s->b[k] & 0xC0) == 0x80) k--;
            int l = tk_utf8_dec(s->b + k, b - k, &cp);
            if (!l || !tk_is_whitespace(cp)) break;
            b = k;
        }
    if (a == 0 && b == s->len) return AIOS_OK;
    memmove(s->b, s->b + a, b - a);
    memmove(s->al, s->al + a, (b - a) * sizeof *s->al);
    s->len = b - a;
    s->b[s->len] = 0;
    return AIOS_OK;
}

static bool ws_map_needed(const tk_nstr *s) {
    for (size_t i = 0; i < s->len; i++)
        if (s->b[i] == '\t' || s->b[i] == '\n' || s->b[i] == '\r' || s->b[i] >= 0x80 || s->b[i] == 0x0B || s->b[i] == 0x0C)
            return true;
    return false;
}

aios_status tk_normalize(const tk_normalizer *n, tk_nstr *s) {
    if (!n) return AIOS_OK;
    switch (n->type) {
    case N_BERT:
        if (n->clean_text) {
            AIOS_TRY(nfilter(s, bert_drop));
            if (ws_map_needed(s)) {
                tk_xform x;
                AIOS_TRY(tk_xform_begin(&x, s, 0));
                uint32_t cp;
                aios_status st = AIOS_OK;
                FOR_CHARS(s, i, cp, l) {
                    st = tk_xform_push(&x, tk_is_whitespace(cp) ? ' ' : cp, 0);
                    if (st) break;
                }
                if (st) {
                    tk_nstr_free(&x.out);
                    return st;
                }
                tk_xform_end(&x, s);
            }
        }
        if (n->chinese && !all_ascii(s)) {
            bool any = false;
            uint32_t cp;
            FOR_CHARS(s, i, cp, l) any |= is_chinese(cp);
            if (any) {
                tk_xform x;
                AIOS_TRY(tk_xform_begin(&x, s, 0));
                aios_status st = AIOS_OK;
                FOR_CHARS(s, i, cp, l) {
                    if (is_chinese(cp)) {
                        st = tk_xform_push(&x, ' ', 0);
                        if (!st) st = tk_xform_push(&x, cp, 1);
                        if (!st) st = tk_xform_push(&x, ' ', 1);
                    } else st = tk_xform_push(&x, cp, 0);
                    if (st) break;
                }
                if (st) {
                    tk_nstr_free(&x.out);
                    return st;
                }
                tk_xform_end(&x, s);
            }
        }
        if (n->strip_accents && !all_ascii(s)) {
            AIOS_TRY(unorm(s, 0, 0));
            AIOS_TRY(nfilter(s, is_mn));
        }
        if (n->lowercase) AIOS_TRY(lowercase(s));
        return AIOS_OK;
    case N_NFC: return unorm(s, 0, 1);
    case N_NFD: return unorm(s, 0, 0);
    case N_NFKC: return unorm(s, 1, 1);
    case N_NFKD: return unorm(s, 1, 0);
    case N_LOWER: return lowercase(s);
    case N_STRIP_ACC: return nfilter(s, is_mark);
    case N_STRIP: return strip(s, n->left, n->right);
    case N_PREPEND: return tk_prepend(s, n->str, n->str_len);
    case N_REPLACE: return tk_replace(s, n->str, n->str_len, n->re, n->content, n->content_len);
    case N_PRECOMP: return tk_precompiled_normalize(n->pc, s);
    case N_BYTELEVEL: return tk_bytelevel_map(s);
    case N_NMT: {
        AIOS_TRY(nfilter(s, nmt_drop));
        tk_xform x;
        AIOS_TRY(tk_xform_begin(&x, s, 0));
        uint32_t cp;
        aios_status st = AIOS_OK;
        FOR_CHARS(s, i, cp, l) {
            st = tk_xform_push(&x, nmt_map(cp), 0);
            if (st) break;
        }
        if (st) {
            tk_nstr_free(&x.out);
            return st;
        }
        tk_xform_end(&x, s);
        return AIOS_OK;
    }
    case N_SEQ:
        for (size_t i = 0; i < n->nkids; i++) AIOS_TRY(tk_normalize(n->kids[i], s));
        return AIOS_OK;
    }
    return AIOS_OK;
}
