/*
 * decoders.c — tokenizer.json decoders: WordPiece, ByteLevel, Metaspace, Replace, ByteFallback,
 * Fuse, Strip, CTC, BPEDecoder, Sequence.
 *
 * Each works like `decode_chain` in the decoders module of `tokenizers`: a list of token strings in,
 * a list out; the final text is the concatenation.  ByteLevel maps chars back to bytes and
 * repairs invalid UTF-8 with U+FFFD (from_utf8_lossy); ByteFallback turns runs of <0xXX>
 * tokens into their bytes, or one U+FFFD per byte when the run is not valid UTF-8.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

uint32_t tk_byte_to_cp(uint8_t b);

static int16_t cp2byte[324];
static pthread_once_t g_cp2byte_once = PTHREAD_ONCE_INIT;
static void cp2byte_init(void) {
    for (int i = 0; i < 324; i++) cp2byte[i] = -1;
    for (int b = 0; b < 256; b++) cp2byte[tk_byte_to_cp((uint8_t)b)] = (int16_t)b;
}

enum { D_WORDPIECE, D_BYTELEVEL, D_METASPACE, D_REPLACE, D_BYTEFALLBACK, D_FUSE, D_STRIP, D_CTC, D_BPE, D_SEQ };

struct tk_decoder {
    int type;
    char *a, *b; /* WordPiece prefix; Replace pattern/content; CTC pad/delimiter; BPE suffix */
    size_t alen, blen;
    int cleanup;
    uint32_t cp; /* Metaspace replacement, Strip content */
    int prepend_never;
    size_t start, stop;
    tk_regex *re;
    tk_decoder **kids;
    size_t nkids;
};

typedef struct { char **s; size_t *len; size_t n, cap; } strv;

static void strv_free(strv *v) {
    for (size_t i = 0; i < v->n; i++) free(v->s[i]);
    free(v->s);
    free(v->len);
    memset(v, 0, sizeof *v);
}

static aios_status strv_push(strv *v, const char *s, size_t n) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        char **a = realloc(v->s, nc * sizeof *a);
        if (!a) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        v->s = a;
        size_t *b = realloc(v->len, nc * sizeof *b);
        if (!b) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        v->len = b;
        v->cap = nc;
    }
    char *c = malloc(n + 1);
    if (!c) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(c, s, n);
    c[n] = 0;
    v->s[v->n] = c;
    v->len[v->n++] = n;
    return AIOS_OK;
}

void tk_decoder_free(tk_decoder *d) {
    if (!d) return;
    for (size_t i = 0; i < d->nkids; i++) tk_decoder_free(d->kids[i]);
    free(d->kids);
    free(d->a);
    free(d->b);
    tk_regex_free(d->re);
    free(d);
}

static aios_status sdup(const char *s, char **out, size_t *len) {
    size_t l = strlen(s);
    *out = malloc(l + 1);
    if (!*out) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(*out, s, l + 1);
    *len = l;
    return AIOS_OK;
}

aios_status tk_decoder_parse(const cJSON *j, tk_decoder **out) {
    *out = NULL;
    const char *t = tk_jstr(j, "type");
    if (!t) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: decoder without a type");
    tk_decoder *d = calloc(1, sizeof *d);
    if (!d) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    aios_status st = AIOS_OK;
    if (!strcmp(t, "WordPiece")) {
        d->type = D_WORDPIECE;
        const char *p = tk_jstr(j, "prefix");
        st = sdup(p ? p : "##", &d->a, &d->alen);
        d->cleanup = tk_jbool(j, "cleanup", 1);
    } else if (!strcmp(t, "ByteLevel")) d->type = D_BYTELEVEL;
    else if (!strcmp(t, "ByteFallback")) d->type = D_BYTEFALLBACK;
    else if (!strcmp(t, "Fuse")) d->type = D_FUSE;
    else if (!strcmp(t, "Metaspace")) {
        d->type = D_METASPACE;
        const char *r = tk_jstr(j, "replacement");
        if (!r) r = "\xe2\x96\x81";
        if (!tk_utf8_dec((const uint8_t *)r, strlen(r), &d->cp)) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Metaspace decoder replacement");
        const char *ps = tk_jstr(j, "prepend_scheme");
        d->prepend_never = ps ? !strcmp(ps, "never") : !tk_jbool(j, "add_prefix_space", 1);
    } else if (!strcmp(t, "Replace")) {
        d->type = D_REPLACE;
        const cJSON *p = tk_j(j, "pattern");
        const char *c = tk_jstr(j, "content");
        const char *s;
        if (!p || !c) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Replace decoder needs pattern and content");
        else if ((s = tk_jstr(p, "String")) != NULL) st = sdup(s, &d->a, &d->alen);
        else if ((s = tk_jstr(p, "Regex")) != NULL) st = tk_regex_compile(s, strlen(s), &d->re);
        else st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Replace decoder pattern");
        if (st == AIOS_OK) st = sdup(c, &d->b, &d->blen);
    } else if (!strcmp(t, "Strip")) {
        d->type = D_STRIP;
        const char *c = tk_jstr(j, "content");
        if (!c || !tk_utf8_dec((const uint8_t *)c, strlen(c), &d->cp)) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Strip decoder content");
        const cJSON *a = tk_j(j, "start"), *b = tk_j(j, "stop");
        d->start = a && cJSON_IsNumber(a) && a->valuedouble > 0 ? (size_t)AIOS_MIN(a->valuedouble, 1e9) : 0;
        d->stop = b && cJSON_IsNumber(b) && b->valuedouble > 0 ? (size_t)AIOS_MIN(b->valuedouble, 1e9) : 0;
    } else if (!strcmp(t, "CTC")) {
        d->type = D_CTC;
        const char *p = tk_jstr(j, "pad_token"), *w = tk_jstr(j, "word_delimiter_token");
        st = sdup(p ? p : "<pad>", &d->a, &d->alen);
        if (st == AIOS_OK) st = sdup(w ? w : "|", &d->b, &d->blen);
        d->cleanup = tk_jbool(j, "cleanup", 1);
    } else if (!strcmp(t, "BPEDecoder")) {
        d->type = D_BPE;
        const char *s = tk_jstr(j, "suffix");
        st = sdup(s ? s : "</w>", &d->a, &d->alen);
    } else if (!strcmp(t, "Sequence")) {
        d->type = D_SEQ;
        const cJSON *arr = tk_j(j, "decoders");
        if (!arr || !cJSON_IsArray(arr)) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: decoder Sequence without a list");
        else {
            int k = cJSON_GetArraySize(arr);
            d->kids = calloc((size_t)k + 1, sizeof *d->kids);
            if (!d->kids) st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
            for (int i = 0; st == AIOS_OK && i < k; i++) {
                st = tk_decoder_parse(cJSON_GetArrayItem(arr, i), &d->kids[i]);
                if (st == AIOS_OK) d->nkids++;
            }
        }
    } else st = aios__err(AIOS_ERR_UNSUPPORTED, "tokenizer.json: decoder type '%s' is not supported", t);
    if (st != AIOS_OK) {
        tk_decoder_free(d);
        return st;
    }
    *out = d;
    return AIOS_OK;
}

/* s with every occurrence of pat replaced by rep, into b. */
static aios_status replace_all(aios_buf *b, const char *s, size_t n, const char *pat, size_t pl, const char *rep, size_t rl) {
    b->len = 0;
    size_t i = 0;
    while (i < n) {
        if (pl && i + pl <= n && !memcmp(s + i, pat, pl)) {
            AIOS_TRY(aios_buf_append(b, rep, rl));
            i += pl;
        } else {
            AIOS_TRY(aios_buf_append(b, s + i, 1));
            i++;
        }
    }
    return AIOS_OK;
}

static const char *CLEANUP[][2] = {{" .", "."},     {" ?", "?"},     {" !", "!"},         {" ,", ","},
                                   {" ' ", "'"},    {" n't", "n't"}, {" 'm", "'m"},       {" do not", " don't"},
                                   {" 's", "'s"},   {" 've", "'ve"}, {" 're", "'re"}};

static aios_status cleanup(strv *v, size_t i, aios_buf *tmp) {
    for (size_t k = 0; k < AIOS_ARRAY_LEN(CLEANUP); k++) {
        if (!strstr(v->s[i], CLEANUP[k][0])) continue;
        AIOS_TRY(replace_all(tmp, v->s[i], v->len[i], CLEANUP[k][0], strlen(CLEANUP[k][0]), CLEANUP[k][1], strlen(CLEANUP[k][1])));
        char *c = malloc(tmp->len + 1);
        if (!c) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(c, tmp->data, tmp->len);
        c[tmp->len] = 0;
        free(v->s[i]);
        v->s[i] = c;
        v->len[i] = tmp->len;
    }
    return AIOS_OK;
}

static aios_status set_tok(strv *v, size_t i, const void *p, size_t n) {
    char *c = malloc(n + 1);
    if (!c) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(c, p, n);
    c[n] = 0;
    free(v->s[i]);
    v->s[i] = c;
    v->len[i] = n;
    return AIOS_OK;
}

static aios_status lossy(aios_buf *out, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = tk_utf8_dec(s + i, n - i, &cp);
        if (l) {
            AIOS_TRY(aios_buf_append(out, s + i, (size_t)l));
            i += (size_t)l;
            continue;
        }
        /* maximal invalid prefix (WHATWG / Rust from_utf8_lossy): skip a truncated sequence whole */
        size_t k = 1;
        uint8_t c = s[i];
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        while (k < need && i + k < n && (s[i + k] & 0xC0) == 0x80) {
            if (k == 1) {
                uint8_t d = s[i + 1];
                if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) || (c == 0xF4 && d > 0x8F)) break;
            }
            k++;
        }
        AIOS_TRY(aios_buf_append(out, "\xef\xbf\xbd", 3));
        i += k;
    }
    return AIOS_OK;
}

static aios_status decode_chain(const tk_decoder *d, strv *v) {
    aios_buf tmp = {0};
    aios_status st = AIOS_OK;
    switch (d->type) {
    case D_SEQ:
        for (size_t i = 0; i < d->nkids && st == AIOS_OK; i++) st = decode_chain(d->kids[i], v);
        break;
    case D_WORDPIECE:
        for (size_t i = 0; i < v->n && st == AIOS_OK; i++) {
            if (i != 0) {
                if (v->len[i] >= d->alen && !memcmp(v->s[i], d->a, d->alen)) {
                    st = set_tok(v, i, v->s[i] + d->alen, v->len[i] - d->alen);
                } else {
                    tmp.len = 0;
                    st = aios_buf_append(&tmp, " ", 1);
                    if (st == AIOS_OK) st = aios_buf_append(&tmp, v->s[i], v->len[i]);
                    if (st == AIOS_OK) st = set_tok(v, i, tmp.data, tmp.len);
                }
            }
            if (st == AIOS_OK && d->cleanup) st = cleanup(v, i, &tmp);
        }
        break;
    case D_BYTELEVEL: {
        pthread_once(&g_cp2byte_once, cp2byte_init);
        aios_buf raw = {0};
        for (size_t i = 0; i < v->n && st == AIOS_OK; i++) {
            size_t mark = raw.len;
            int ok = 1;
            for (size_t k = 0; k < v->len[i] && st == AIOS_OK;) {
                uint32_t cp;
                int l = tk_utf8_dec((const uint8_t *)v->s[i] + k, v->len[i] - k, &cp);
                if (!l || cp >= 324 || cp2byte[cp] < 0) {
                    ok = 0;
                    break;
                }
                uint8_t b = (uint8_t)cp2byte[cp];
                st = aios_buf_append(&raw, &b, 1);
                k += (size_t)l;
            }
            if (!ok) {
                raw.len = mark;
                st = aios_buf_append(&raw, v->s[i], v->len[i]);
            }
        }
        if (st == AIOS_OK) st = lossy(&tmp, raw.data, raw.len);
        aios_buf_free(&raw);
        if (st == AIOS_OK) {
            for (size_t i = 0; i < v->n; i++) free(v->s[i]);
            v->n = 0;
            st = strv_push(v, tmp.data ? (const char *)tmp.data : "", tmp.len);
        }
        break;
    }
    case D_METASPACE:
        for (size_t i = 0; i < v->n && st == AIOS_OK; i++) {
            tmp.len = 0;
            for (size_t k = 0; k < v->len[i] && st == AIOS_OK;) {
                uint32_t cp;
                int l = tk_utf8_dec((const uint8_t *)v->s[i] + k, v->len[i] - k, &cp);
                if (!l) l = 1, cp = 0;
                if (l && cp == d->cp) {
                    if (!(i == 0 && !d->prepend_never)) st = aios_buf_append(&tmp, " ", 1);
                } else st = aios_buf_append(&tmp, v->s[i] + k, (size_t)l);
                k += (size_t)l;
            }
            if (st == AIOS_OK) st = set_tok(v, i, tmp.data ? (const char *)tmp.data : "", tmp.len);
        }
        break;
    case D_REPLACE:
        for (size_t i = 0; i < v->n && st == AIOS_OK; i++) {
            if (d->re) {
                tk_regions rg = {0};
                st = tk_regex_regions(d->re, (const uint8_t *)v->s[i], v->len[i], &rg);
                tmp.len = 0;
                for (size_t r = 0; st == AIOS_OK && r < rg.n; r++)
                    st = rg.v[r].match ? aios_buf_append(&tmp, d->b, d->blen)
                                       : aios_buf_append(&tmp, v->s[i] + rg.v[r].s, rg.v[r].e - rg.v[r].s);
                free(rg.v);
            } else st = replace_all(&tmp, v->s[i], v->len[i], d->a, d->alen, d->b, d->blen);
            if (st == AIOS_OK) st = set_tok(v, i, tmp.data ? (const char *)tmp.data : "", tmp.len);
        }
        break;
    case D_BYTEFALLBACK: {
        strv o = {0};
        aios_buf bytes = {0};
        for (size_t i = 0; i <= v->n && st == AIOS_OK; i++) {
            int isb = 0;
            uint8_t bv = 0;
            if (i < v->n && v->len[i] == 6 && !memcmp(v->s[i], "<0x", 3) && v->s[i][5] == '>') {
                int h = 0, ok = 1;
                for (int k = 3; k < 5; k++) {
                    char c = v->s[i][k];
                    int x = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                    if (x < 0) ok = 0;
                    h = h * 16 + (x < 0 ? 0 : x);
                }
                if (ok) isb = 1, bv = (uint8_t)h;
            }
            if (isb) {
                st = aios_buf_append(&bytes, &bv, 1);
                continue;
            }
            if (bytes.len) {
                int valid = 1;
                for (size_t k = 0; k < bytes.len && valid;) {
                    uint32_t cp;
                    int l = tk_utf8_dec(bytes.data + k, bytes.len - k, &cp);
                    if (!l) valid = 0;
                    k += (size_t)(l ? l : 1);
                }
                if (valid) st = strv_push(&o, (const char *)bytes.data, bytes.len);
                else
                    for (size_t k = 0; k < bytes.len && st == AIOS_OK; k++) st = strv_push(&o, "\xef\xbf\xbd", 3);
                bytes.len = 0;
            }
            if (i < v->n && st == AIOS_OK) st = strv_push(&o, v->s[i], v->len[i]);
        }
        aios_buf_free(&bytes);
        strv_free(v);
        *v = o;
        break;
    }
    case D_FUSE: {
        for (size_t i = 0; i < v->n && st == AIOS_OK; i++) st = aios_buf_append(&tmp, v->s[i], v->len[i]);
        if (st == AIOS_OK) {
            for (size_t i = 0; i < v->n; i++) free(v->s[i]);
            v->n = 0;
            st = strv_push(v, tmp.data ? (const char *)tmp.data : "", tmp.len);
        }
        break;
    }
    case D_STRIP:
        for (size_t i = 0; i < v->n && st == AIOS_OK; i++) {
            /* char boundaries */
            const uint8_t *s = (const uint8_t *)v->s[i];
            size_t n = v->len[i], a = 0, e = n;
            for (size_t k = 0; k < d->start && a < n; k++) {
                uint32_t cp;
                int l = tk_utf8_dec(s + a, n - a, &cp);
                if (!l || cp != d->cp) break;
                a += (size_t)l;
            }
            for (size_t k = 0; k < d->stop && e > a; k++) {
                size_t p = e - 1;
                while (p > a && (s[p] & 0xC0) == 0x80) p--;
                uint32_t cp;
                int l = tk_utf8_dec(s + p, e - p, &cp);
                if (!l || cp != d->cp) break;
                e = p;
            }
            if (a != 0 || e != n) st = set_tok(v, i, s + a, e - a);
        }
        break;
    case D_CTC: { /* dedup, delimiter -> ' ', cleanup then pad -> "", drop empties */
        strv o = {0};
        for (size_t i = 0; i < v->n && st == AIOS_OK; i++) {
            if (i > 0 && v->len[i] == v->len[i - 1] && !memcmp(v->s[i], v->s[i - 1], v->len[i])) continue;
            st = replace_all(&tmp, v->s[i], v->len[i], d->b, d->blen, " ", 1);
            if (st == AIOS_OK) st = strv_push(&o, tmp.data ? (const char *)tmp.data : "", tmp.len);
            if (st == AIOS_OK && d->cleanup) {
                size_t k = o.n - 1;
                st = cleanup(&o, k, &tmp);
                if (st == AIOS_OK) st = replace_all(&tmp, o.s[k], o.len[k], d->a, d->alen, "", 0);
                if (st == AIOS_OK) st = set_tok(&o, k, tmp.data ? (const char *)tmp.data : "", tmp.len);
            }
            if (st == AIOS_OK && o.len[o.n - 1] == 0) free(o.s[--o.n]);
        }
        strv_free(v);
        *v = o;
        break;
    }
    case D_BPE:
        for (size_t i = 0; i < v->n && st == AIOS_OK; i++) {
            const char *rep = i + 1 == v->n ? "" : " ";
            st = replace_all(&tmp, v->s[i], v->len[i], d->a, d->alen, rep, strlen(rep));
            if (st == AIOS_OK) st = set_tok(v, i, tmp.data ? (const char *)tmp.data : "", tmp.len);
        }
        break;
    }
    aios_buf_free(&tmp);
    return st;
}

aios_status tk_decode_tokens(const tk_decoder *d, char **toks, size_t *lens, size_t n, aios_buf *out) {
    if (!d) {
        for (size_t i = 0; i < n; i++) {
            if (i) AIOS_TRY(aios_buf_append(out, " ", 1));
            AIOS_TRY(aios_buf_append(out, toks[i], lens[i]));
        }
        return AIOS_OK;
    }
    strv v = {0};
    aios_status st = AIOS_OK;
    for (size_t i = 0; i < n && st == AIOS_OK; i++) st = strv_push(&v, toks[i], lens[i]);
    if (st == AIOS_OK) st = decode_chain(d, &v);
    for (size_t i = 0; i < v.n && st == AIOS_OK; i++) st = aios_buf_append(out, v.s[i], v.len[i]);
    strv_free(&v);
    return st;
}
