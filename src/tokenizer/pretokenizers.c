/*
 * pretokenizers.c — tokenizer.json pre-tokenizers: BertPreTokenizer, ByteLevel, Split,
 * Metaspace, Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit, FixedLength,
 * Sequence.
 *
 * Every pre-tokenizer turns one split into pieces through tk_split_by_regions with the
 * `SplitDelimiterBehavior` `tokenizers` uses (the pre_tokenizers module).  Char-predicate patterns
 * make each matching char its own match, as `impl Pattern for Fn(char) -> bool` does.
 * Splits that already hold an added token pass through untouched; empty pieces are dropped.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

aios_status tk_bytelevel_map(tk_nstr *s);
aios_status tk_replace(tk_nstr *s, const char *pat, size_t plen, const tk_regex *re, const char *content, size_t clen);
aios_status tk_prepend(tk_nstr *s, const char *p, size_t plen);

enum { P_BERT, P_BYTELEVEL, P_SPLIT, P_METASPACE, P_WHITESPACE, P_WSSPLIT, P_PUNCT, P_DIGITS, P_CHARDELIM, P_SEQ, P_FIXED };
enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

struct tk_pretok {
    int type;
    int add_prefix_space, use_regex; /* ByteLevel */
    int behavior, invert;            /* Split, Punctuation */
    int individual;                  /* Digits */
    size_t length;                   /* FixedLength */
    int prepend_scheme, split;       /* Metaspace */
    uint32_t repl_cp;                /* Metaspace replacement, CharDelimiterSplit delimiter */
    char repl[8];
    size_t repl_len;
    char *str; /* Split String pattern */
    size_t str_len;
    tk_regex *re;
    tk_pretok **kids;
    size_t nkids;
};

static const char BYTELEVEL_RE[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void tk_pretok_free(tk_pretok *p) {
    if (!p) return;
    for (size_t i = 0; i < p->nkids; i++) tk_pretok_free(p->kids[i]);
    free(p->kids);
    free(p->str);
    tk_regex_free(p->re);
    free(p);
}

static int parse_behavior(const char *s) {
    if (!s) return TK_SPLIT_ISOLATED;
    if (!strcmp(s, "Removed")) return TK_SPLIT_REMOVED;
    if (!strcmp(s, "Isolated")) return TK_SPLIT_ISOLATED;
    if (!strcmp(s, "MergedWithPrevious")) return TK_SPLIT_MERGED_PREV;
    if (!strcmp(s, "MergedWithNext")) return TK_SPLIT_MERGED_NEXT;
    if (!strcmp(s, "Contiguous")) return TK_SPLIT_CONTIGUOUS;
    return -1;
}

aios_status tk_pretok_parse(const cJSON *j, tk_pretok **out) {
    *out = NULL;
    const char *t = tk_jstr(j, "type");
    if (!t) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: pre_tokenizer without a type");
    tk_pretok *p = calloc(1, sizeof *p);
    if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    aios_status st = AIOS_OK;
    if (!strcmp(t, "BertPreTokenizer")) p->type = P_BERT;
    else if (!strcmp(t, "Whitespace")) {
        p->type = P_WHITESPACE;
        st = tk_regex_compile("\\w+|[^\\w\\s]+", strlen("\\w+|[^\\w\\s]+"), &p->re);
    } else if (!strcmp(t, "WhitespaceSplit")) p->type = P_WSSPLIT;
    else if (!strcmp(t, "ByteLevel")) {
        p->type = P_BYTELEVEL;
        p->add_prefix_space = tk_jbool(j, "add_prefix_space", 1);
        p->use_regex = tk_jbool(j, "use_regex", 1);
        if (p->use_regex) st = tk_regex_compile(BYTELEVEL_RE, strlen(BYTELEVEL_RE), &p->re);
    } else if (!strcmp(t, "Punctuation")) {
        p->type = P_PUNCT;
        p->behavior = parse_behavior(tk_jstr(j, "behavior"));
    } else if (!strcmp(t, "Digits")) {
        p->type = P_DIGITS;
        p->individual = tk_jbool(j, "individual_digits", 0);
    } else if (!strcmp(t, "FixedLength")) {
        p->type = P_FIXED;
        const cJSON *l = tk_j(j, "length");
        p->length = l && cJSON_IsNumber(l) && l->valuedouble >= 1 && l->valuedouble < 1e9 ? (size_t)l->valuedouble : 5;
        if (l && !(cJSON_IsNumber(l) && l->valuedouble >= 1)) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: FixedLength length must be >= 1");
    } else if (!strcmp(t, "CharDelimiterSplit")) {
        p->type = P_CHARDELIM;
        const char *d = tk_jstr(j, "delimiter");
        if (!d || !tk_utf8_dec((const uint8_t *)d, strlen(d), &p->repl_cp))
            st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: CharDelimiterSplit needs a delimiter");
    } else if (!strcmp(t, "Metaspace")) {
        p->type = P_METASPACE;
        const char *r = tk_jstr(j, "replacement");
        if (!r) r = "\xe2\x96\x81";
        int l = tk_utf8_dec((const uint8_t *)r, strlen(r), &p->repl_cp);
        if (!l) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Metaspace replacement is not one char");
        else {
            memcpy(p->repl, r, (size_t)l);
            p->repl_len = (size_t)l;
        }
        const char *ps = tk_jstr(j, "prepend_scheme");
        if (ps) p->prepend_scheme = !strcmp(ps, "first") ? PREPEND_FIRST : !strcmp(ps, "never") ? PREPEND_NEVER : PREPEND_ALWAYS;
        else p->prepend_scheme = tk_jbool(j, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
        p->split = tk_jbool(j, "split", 1);
    } else if (!strcmp(t, "Split")) {
        p->type = P_SPLIT;
        p->behavior = parse_behavior(tk_jstr(j, "behavior"));
        p->invert = tk_jbool(j, "invert", 0);
        const cJSON *pat = tk_j(j, "pattern");
        const char *s;
        if (pat && (s = tk_jstr(pat, "String")) != NULL) {
            p->str_len = strlen(s);
            p->str = malloc(p->str_len + 1);
            if (!p->str) st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
            else memcpy(p->str, s, p->str_len + 1);
        } else if (pat && (s = tk_jstr(pat, "Regex")) != NULL) {
            st = tk_regex_compile(s, strlen(s), &p->re);
        } else st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Split without a String or Regex pattern");
    } else if (!strcmp(t, "Sequence")) {
        p->type = P_SEQ;
        const cJSON *arr = tk_j(j, "pretokenizers");
        if (!arr || !cJSON_IsArray(arr)) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: pre_tokenizer Sequence without a list");
        else {
            int k = cJSON_GetArraySize(arr);
            p->kids = calloc((size_t)k + 1, sizeof *p->kids);
            if (!p->kids) st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
            for (int i = 0; st == AIOS_OK && i < k; i++) {
                st = tk_pretok_parse(cJSON_GetArrayItem(arr, i), &p->kids[i]);
                if (st == AIOS_OK) p->nkids++;
            }
        }
    } else st = aios__err(AIOS_ERR_UNSUPPORTED, "tokenizer.json: pre_tokenizer type '%s' is not supported", t);
    if (st == AIOS_OK && p->behavior < 0) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: unknown split behavior");
    if (st != AIOS_OK) {
        tk_pretok_free(p);
        return st;
    }
    *out = p;
    return AIOS_OK;
}

/* Regions where each char with pred() true is a match of its own. */
static aios_status pred_regions(const tk_nstr *n, bool (*pred)(uint32_t), tk_regions *rg) {
    rg->n = 0;
    size_t last = 0;
    for (size_t i = 0; i < n->len;) {
        uint32_t cp;
        int l = tk_utf8_dec(n->b + i, n->len - i, &cp);
        if (!l) {
            cp = 0xFFFD;
            l = 1;
        }
        if (pred(cp)) {
            if (last < i) AIOS_TRY(tk_regions_push(rg, last, i, 0));
            AIOS_TRY(tk_regions_push(rg, i, i + (size_t)l, 1));
            last = i + (size_t)l;
        }
        i += (size_t)l;
    }
    if (last < n->len) AIOS_TRY(tk_regions_push(rg, last, n->len, 0));
    return AIOS_OK;
}

static aios_status str_regions(const tk_nstr *n, const char *pat, size_t plen, tk_regions *rg) {
    rg->n = 0;
    size_t prev = 0;
    if (plen > 0)
        for (size_t i = 0; i + plen <= n->len;) {
            if (!memcmp(n->b + i, pat, plen)) {
                if (prev < i) AIOS_TRY(tk_regions_push(rg, prev, i, 0));
                AIOS_TRY(tk_regions_push(rg, i, i + plen, 1));
                i += plen;
                prev = i;
            } else i++;
        }
    if (prev < n->len) AIOS_TRY(tk_regions_push(rg, prev, n->len, 0));
    return AIOS_OK;
}

static bool is_bert_sep(uint32_t c) { return tk_is_whitespace(c); }
static bool is_digit_pred(uint32_t c) { return tk_is_numeric(c); }
static bool is_punct_pred(uint32_t c) { return tk_is_punct(c); }

static _Thread_local uint32_t g_delim;
static bool is_delim(uint32_t c) { return c == g_delim; }

/* One pre-tokenizer (not a Sequence) applied to one split, pieces appended to out. */
static aios_status pretok_one(const tk_pretok *p, tk_nstr *n, tk_splits *out, tk_regions *rg) {
    switch (p->type) {
    case P_BERT: {
        /* whitespace removed, then each punctuation char isolated: one pass */
        rg->n = 0;
        size_t last = 0;
        for (size_t i = 0; i < n->len;) {
            uint32_t cp;
            int l = tk_utf8_dec(n->b + i, n->len - i, &cp);
            if (!l) {
                cp = 0xFFFD;
                l = 1;
            }
            int ws = tk_is_whitespace(cp), pu = !ws && tk_is_punct(cp);
            if (ws || pu) {
                if (last < i) AIOS_TRY(tk_regions_push(rg, last, i, 0));
                if (pu) AIOS_TRY(tk_regions_push(rg, i, i + (size_t)l, 0));
                last = i + (size_t)l;
            }
            i += (size_t)l;
        }
        if (last < n->len) AIOS_TRY(tk_regions_push(rg, last, n->len, 0));
        return tk_split_by_regions(n, rg, TK_SPLIT_REMOVED, out);
    }
    case P_WSSPLIT:
        AIOS_TRY(pred_regions(n, is_bert_sep, rg));
        return tk_split_by_regions(n, rg, TK_SPLIT_REMOVED, out);
    case P_WHITESPACE:
        AIOS_TRY(tk_regex_regions(p->re, n->b, n->len, rg));
        for (size_t i = 0; i < rg->n; i++) rg->v[i].match = !rg->v[i].match;
        return tk_split_by_regions(n, rg, TK_SPLIT_REMOVED, out);
    case P_PUNCT:
        AIOS_TRY(pred_regions(n, is_punct_pred, rg));
        return tk_split_by_regions(n, rg, p->behavior, out);
    case P_DIGITS:
        AIOS_TRY(pred_regions(n, is_digit_pred, rg));
        return tk_split_by_regions(n, rg, p->individual ? TK_SPLIT_ISOLATED : TK_SPLIT_CONTIGUOUS, out);
    case P_FIXED: { /* pieces of `length` chars */
        rg->n = 0;
        size_t start = 0, k = 0;
        for (size_t i = 0; i < n->len; i += (size_t)tk_utf8_len(n->b[i]))
            if (k++ == p->length) {
                AIOS_TRY(tk_regions_push(rg, start, i, 0));
                start = i;
                k = 1;
            }
        if (start < n->len) AIOS_TRY(tk_regions_push(rg, start, n->len, 0));
        return tk_split_by_regions(n, rg, TK_SPLIT_ISOLATED, out);
    }
    case P_CHARDELIM:
        g_delim = p->repl_cp;
        AIOS_TRY(pred_regions(n, is_delim, rg));
        return tk_split_by_regions(n, rg, TK_SPLIT_REMOVED, out);
    case P_SPLIT:
        if (p->re) AIOS_TRY(tk_regex_regions(p->re, n->b, n->len, rg));
        else AIOS_TRY(str_regions(n, p->str, p->str_len, rg));
        if (p->invert)
            for (size_t i = 0; i < rg->n; i++) rg->v[i].match = !rg->v[i].match;
        return tk_split_by_regions(n, rg, p->behavior, out);
    case P_METASPACE: {
        AIOS_TRY(tk_replace(n, " ", 1, NULL, p->repl, p->repl_len));
        int starts = n->len >= p->repl_len && !memcmp(n->b, p->repl, p->repl_len);
        if (!starts && (p->prepend_scheme == PREPEND_ALWAYS ||
                        (p->prepend_scheme == PREPEND_FIRST && n->len > 0 && n->al[0].s == 0)))
            AIOS_TRY(tk_prepend(n, p->repl, p->repl_len));
        if (!p->split) {
            tk_nstr cp;
            AIOS_TRY(tk_nstr_slice(n, 0, n->len, &cp));
            if (cp.len == 0) {
                tk_nstr_free(&cp);
                return AIOS_OK;
            }
            return tk_splits_push(out, &cp, -1);
        }
        AIOS_TRY(str_regions(n, p->repl, p->repl_len, rg));
        return tk_split_by_regions(n, rg, TK_SPLIT_MERGED_NEXT, out);
    }
    case P_BYTELEVEL: {
        if (p->add_prefix_space && !(n->len > 0 && n->b[0] == ' ')) AIOS_TRY(tk_prepend(n, " ", 1));
        size_t first = out->n;
        if (p->use_regex) {
            AIOS_TRY(tk_regex_regions(p->re, n->b, n->len, rg));
            AIOS_TRY(tk_split_by_regions(n, rg, TK_SPLIT_ISOLATED, out));
        } else if (n->len > 0) {
            tk_nstr cp;
            AIOS_TRY(tk_nstr_slice(n, 0, n->len, &cp));
            AIOS_TRY(tk_splits_push(out, &cp, -1));
        }
        for (size_t i = first; i < out->n; i++) AIOS_TRY(tk_bytelevel_map(&out->v[i].n));
        return AIOS_OK;
    }
    }
    return aios__err(AIOS_ERR_INTERNAL, "tokenizer: bad pre-tokenizer");
}

static aios_status pretok_apply(const tk_pretok *p, tk_splits *in, tk_splits *out, tk_regions *rg) {
    tk_splits_clear(out);
    for (size_t i = 0; i < in->n; i++) {
        tk_split *s = &in->v[i];
        if (s->tok_id >= 0) {
            AIOS_TRY(tk_splits_push(out, &s->n, s->tok_id));
            continue;
        }
        AIOS_TRY(pretok_one(p, &s->n, out, rg));
    }
    tk_splits_clear(in);
    tk_splits t = *in;
    *in = *out;
    *out = t;
    return AIOS_OK;
}

static aios_status pretok_rec(const tk_pretok *p, tk_splits *in, tk_splits *scratch, tk_regions *rg) {
    if (p->type == P_SEQ) {
        for (size_t i = 0; i < p->nkids; i++) AIOS_TRY(pretok_rec(p->kids[i], in, scratch, rg));
        return AIOS_OK;
    }
    return pretok_apply(p, in, scratch, rg);
}

aios_status tk_pretokenize(const tk_pretok *p, tk_splits *in, tk_splits *scratch) {
    if (!p) return AIOS_OK;
    tk_regions rg = {0};
    aios_status st = pretok_rec(p, in, scratch, &rg);
    free(rg.v);
    return st;
}
