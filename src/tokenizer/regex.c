/*
 * regex.c — the regexes of Split / ByteLevel / Replace / Whitespace, on PCRE2 (UTF + UCP, JIT
 * when available).
 *
 * `tokenizers` runs these patterns on Oniguruma.  Its \s is Unicode White_Space (PCRE2's UCP
 * \s also takes U+180E) and its \w is letters + marks + decimal digits + connector punctuation
 * (PCRE2 10.42's UCP \w has no marks), so \s \S \w \W are rewritten to explicit classes
 * (expanded in place inside a class).  Matches are collected leftmost-first like `find_iter`;
 * an empty match advances one char.  Match data is per thread; a match limit turns
 * catastrophic backtracking on hostile patterns into an error instead of a hang.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

struct tk_regex {
    pcre2_code *code;
    pcre2_match_context *mctx;
    int jit;
};

/* Oniguruma's Unicode \w: Alphabetic, marks, decimal numbers, connector punctuation, joiners */
#define WORD_ITEMS "\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
#define WS_ITEMS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

void tk_regex_free(tk_regex *r) {
    if (!r) return;
    pcre2_code_free(r->code);
    pcre2_match_context_free(r->mctx);
    free(r);
}

aios_status tk_regex_compile(const char *pat, size_t len, tk_regex **out) {
    *out = NULL;
    aios_buf b = {0};
    int in_class = 0;
    aios_status st = AIOS_OK;
    for (size_t i = 0; i < len && st == AIOS_OK; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < len) {
            char d = pat[i + 1];
            if (d == 's') st = in_class ? aios_buf_append(&b, WS_ITEMS, strlen(WS_ITEMS))
                                        : aios_buf_append(&b, "[" WS_ITEMS "]", strlen(WS_ITEMS) + 2);
            else if (d == 'S' && !in_class) st = aios_buf_append(&b, "[^" WS_ITEMS "]", strlen(WS_ITEMS) + 3);
            else if (d == 'w') st = in_class ? aios_buf_append(&b, WORD_ITEMS, strlen(WORD_ITEMS))
                                             : aios_buf_append(&b, "[" WORD_ITEMS "]", strlen(WORD_ITEMS) + 2);
            else if (d == 'W' && !in_class) st = aios_buf_append(&b, "[^" WORD_ITEMS "]", strlen(WORD_ITEMS) + 3);
            else st = aios_buf_append(&b, pat + i, 2);
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            st = aios_buf_append(&b, pat + i, 1);
            /* a leading ']' or '^]' is literal */
            if (i + 1 < len && pat[i + 1] == '^') {
                st = aios_buf_append(&b, "^", 1);
                i++;
            }
            if (i + 1 < len && pat[i + 1] == ']') {
                st = aios_buf_append(&b, "]", 1);
                i++;
            }
            continue;
        }
        if (c == ']' && in_class) in_class = 0;
        st = aios_buf_append(&b, &c, 1);
    }
    if (st != AIOS_OK) {
        aios_buf_free(&b);
        return st;
    }
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *code = pcre2_compile(b.data ? b.data : (const uint8_t *)"", b.len, PCRE2_UTF | PCRE2_UCP, &err, &eoff, NULL);
    aios_buf_free(&b);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: regex '%.*s': %s", (int)AIOS_MIN(len, 200), pat, (char *)msg);
    }
    tk_regex *r = calloc(1, sizeof *r);
    if (!r) {
        pcre2_code_free(code);
        return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    }
    r->code = code;
    r->mctx = pcre2_match_context_create(NULL);
    if (!r->mctx) {
        tk_regex_free(r);
        return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    }
    pcre2_set_match_limit(r->mctx, 10000000);
    pcre2_set_depth_limit(r->mctx, 100000);
    r->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    *out = r;
    return AIOS_OK;
}

/* Match data per thread, freed by a pthread key destructor when a thread exits. */
static pthread_key_t g_md_key;
static pthread_once_t g_md_once = PTHREAD_ONCE_INIT;
static void md_free(void *p) { pcre2_match_data_free(p); }
static void md_key(void) { (void)pthread_key_create(&g_md_key, md_free); }
static _Thread_local pcre2_match_data *g_md;

aios_status tk_regex_regions(const tk_regex *r, const uint8_t *s, size_t n, tk_regions *out) {
    out->n = 0;
    if (n == 0) return AIOS_OK;
    if (!g_md) {
        g_md = pcre2_match_data_create(32, NULL);
        if (!g_md) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory (regex)");
        pthread_once(&g_md_once, md_key);
        (void)pthread_setspecific(g_md_key, g_md);
    }
    size_t pos = 0, prev = 0;
    while (pos <= n) {
        int rc = r->jit ? pcre2_jit_match(r->code, s, n, pos, PCRE2_NO_UTF_CHECK, g_md, r->mctx)
                        : pcre2_match(r->code, s, n, pos, PCRE2_NO_UTF_CHECK, g_md, r->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return aios__err(AIOS_ERR_INTERNAL, "tokenizer: regex match failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(g_md);
        size_t ms = ov[0], me = ov[1];
        if (ms > n || me > n || me < ms) break;
        if (prev < ms) AIOS_TRY(tk_regions_push(out, prev, ms, 0));
        AIOS_TRY(tk_regions_push(out, ms, me, 1));
        prev = me;
        if (me == ms) {
            if (me >= n) break;
            pos = me + (size_t)tk_utf8_len(s[me]);
        } else {
            pos = me;
        }
    }
    if (prev < n) AIOS_TRY(tk_regions_push(out, prev, n, 0));
    return AIOS_OK;
}
