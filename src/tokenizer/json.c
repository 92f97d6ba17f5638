/*
 * json.c — a fast JSON reader for tokenizer.json that builds cJSON-shaped nodes in an arena.
 *
 * cJSON allocates every node and string separately; on the 11 MB Qwen2.5 file (150k vocabulary
 * entries, 150k merges of two strings) parse + delete took ~100 ms of malloc/free.  Here all
 * nodes and unescaped strings come from a few large blocks freed at once, and the tree uses
 * cJSON's struct so the rest of the module reads it with the cJSON accessors (never with
 * cJSON_Delete).  Hostile input: strict grammar, depth limit 512, every size checked.
 *
 * Numbers are converted the way serde_json (without float_roundtrip), the reader `tokenizers`
 * uses, does: decimal digits into a u64 significand, then one multiplication or division by a
 * power of ten.  That can differ from a correctly rounded strtod by an ulp, which matters for
 * Unigram scores (Viterbi ties), so we reproduce it.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct blk {
    struct blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} blk;

struct tk_json {
    blk *head;
    cJSON *root;
};

typedef struct {
    const char *s, *e;
    tk_json *doc;
    int depth;
    const char *err;
    const char *errpos;
} parser;

static void *arena(tk_json *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    blk *b = d->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = d->head;
        d->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void tk_json_free(tk_json *d) {
    if (!d) return;
    for (blk *b = d->head; b;) {
        blk *n = b->next;
        free(b);
        b = n;
    }
    free(d);
}

const cJSON *tk_json_root(const tk_json *d) { return d ? d->root : NULL; }

static void ws(parser *p) {
    while (p->s < p->e && (*p->s == ' ' || *p->s == '\n' || *p->s == '\r' || *p->s == '\t')) p->s++;
}

static cJSON *node(parser *p, int type) {
    cJSON *n = arena(p->doc, sizeof *n);
    if (!n) {
        p->err = "out of memory";
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

static int hexv(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Parses a string at p->s (on the opening quote) into arena memory. */
static char *str(parser *p) {
    const char *s = ++p->s;
    /* fast scan: no escapes */
    const char *q = s;
    while (q < p->e && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
    if (q < p->e && *q == '"') {
        char *o = arena(p->doc, (size_t)(q - s) + 1);
        if (!o) {
            p->err = "out of memory";
            return NULL;
        }
        memcpy(o, s, (size_t)(q - s));
        o[q - s] = 0;
        p->s = q + 1;
        return o;
    }
    /* slow path: the unescaped string is never longer than the escaped one */
    const char *end = q;
    while (end < p->e && *end != '"') {
        if (*end == '\\') end++;
        end++;
    }
    if (end >= p->e) {
        p->err = "unterminated string";
        p->errpos = s;
        return NULL;
    }
    char *o = arena(p->doc, (size_t)(end - s) + 4);
    if (!o) {
        p->err = "out of memory";
        return NULL;
    }
    size_t k = 0;
    const char *r = s;
    while (r < end) {
        unsigned char c = (unsigned char)*r++;
        if (c < 0x20) {
            p->err = "control character in string";
            p->errpos = r - 1;
            return NULL;
        }
        if (c != '\\') {
            o[k++] = (char)c;
            continue;
        }
        char e = *r++;
        switch (e) {
        case '"': o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; break;
        case '/': o[k++] = '/'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u': {
            if (end - r < 4) goto bad;
            uint32_t cp = 0;
            for (int i = 0; i < 4; i++) {
                int h = hexv(r[i]);
                if (h < 0) goto bad;
                cp = cp * 16 + (uint32_t)h;
            }
            r += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && end - r >= 6 && r[0] == '\\' && r[1] == 'u') {
                uint32_t lo = 0;
                int ok = 1;
                for (int i = 0; i < 4; i++) {
                    int h = hexv(r[2 + i]);
                    if (h < 0) ok = 0;
                    lo = lo * 16 + (uint32_t)(h < 0 ? 0 : h);
                }
                if (ok && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    r += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
            if (cp == 0) cp = 0xFFFD; /* strings are NUL-terminated: keep them whole */
            k += (size_t)tk_utf8_enc(cp, (uint8_t *)o + k);
            break;
        }
        default:
        bad:
            p->err = "bad escape in string";
            p->errpos = r - 1;
            return NULL;
        }
    }
    o[k] = 0;
    p->s = end + 1;
    return o;
}

static double g_p10[309];
static pthread_once_t g_p10_once = PTHREAD_ONCE_INIT;
static void p10_init(void) {
    double v = 1;
    for (int i = 0; i < 23; i++) g_p10[i] = v, v *= 10; /* exact up to 1e22 */
    for (int i = 23; i < 309; i++) { /* beyond: the nearest doubles, as serde's literal table */
        char b[8];
        snprintf(b, sizeof b, "1e%d", i);
        g_p10[i] = strtod(b, NULL);
    }
}

static cJSON *num(parser *p) {
    const char *s = p->s;
    int neg = 0;
    if (s < p->e && *s == '-') neg = 1, s++;
    if (s >= p->e || *s < '0' || *s > '9') {
        p->err = "bad number";
        p->errpos = p->s;
        return NULL;
    }
    uint64_t sig = 0;
    int exp10 = 0, ovf = 0, isint = 1;
    if (*s == '0') s++;
    else
        while (s < p->e && *s >= '0' && *s <= '9') {
            if (!ovf && sig <= (UINT64_MAX - 9) / 10) sig = sig * 10 + (uint64_t)(*s - '0');
            else ovf = 1, exp10++;
            s++;
        }
    if (s < p->e && *s == '.') {
        isint = 0;
        s++;
        if (s >= p->e || *s < '0' || *s > '9') {
            p->err = "bad number";
            p->errpos = p->s;
            return NULL;
        }
        while (s < p->e && *s >= '0' && *s <= '9') {
            if (!ovf && sig <= (UINT64_MAX - 9) / 10) sig = sig * 10 + (uint64_t)(*s - '0'), exp10--;
            else ovf = 1;
            s++;
        }
    }
    if (s < p->e && (*s == 'e' || *s == 'E')) {
        isint = 0;
        s++;
        int eneg = 0;
        if (s < p->e && (*s == '+' || *s == '-')) eneg = *s == '-', s++;
        if (s >= p->e || *s < '0' || *s > '9') {
            p->err = "bad number";
            p->errpos = p->s;
            return NULL;
        }
        int ev = 0;
        while (s < p->e && *s >= '0' && *s <= '9') {
            if (ev < 100000) ev = ev * 10 + (*s - '0');
            s++;
        }
        exp10 += eneg ? -ev : ev;
    }
    double f = (double)sig;
    if (!isint || ovf) {
        pthread_once(&g_p10_once, p10_init);
        int e = exp10;
        while (f != 0) {
            int a = e < 0 ? -e : e;
            if (a < 309) {
                f = e >= 0 ? f * g_p10[a] : f / g_p10[a];
                break;
            }
            if (e >= 0) {
                f = INFINITY;
                break;
            }
            f /= 1e308;
            e += 308;
        }
    }
    cJSON *n = node(p, cJSON_Number);
    if (!n) return NULL;
    n->valuedouble = neg ? -f : f;
    double d = n->valuedouble;
    n->valueint = d >= 2147483647.0 ? 2147483647 : d <= -2147483648.0 ? (-2147483647 - 1) : (int)d;
    p->s = s;
    return n;
}

static cJSON *value(parser *p);

static cJSON *container(parser *p, int obj) {
    if (++p->depth > 512) {
        p->err = "nesting deeper than 512";
        p->errpos = p->s;
        return NULL;
    }
    cJSON *n = node(p, obj ? cJSON_Object : cJSON_Array);
    if (!n) return NULL;
    p->s++;
    ws(p);
    cJSON *last = NULL;
    if (p->s < p->e && *p->s == (obj ? '}' : ']')) {
        p->s++;
        p->depth--;
        return n;
    }
    for (;;) {
        char *key = NULL;
        if (obj) {
            ws(p);
            if (p->s >= p->e || *p->s != '"') {
                p->err = "expected a key";
                p->errpos = p->s;
                return NULL;
            }
            key = str(p);
            if (!key) return NULL;
            ws(p);
            if (p->s >= p->e || *p->s != ':') {
                p->err = "expected ':'";
                p->errpos = p->s;
                return NULL;
            }
            p->s++;
        }
        cJSON *v = value(p);
        if (!v) return NULL;
        v->string = key;
        if (last) {
            last->next = v;
            v->prev = last;
        } else {
            n->child = v;
        }
        n->child->prev = v; /* cJSON keeps the tail in child->prev */
        last = v;
        ws(p);
        if (p->s < p->e && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->e && *p->s == (obj ? '}' : ']')) {
            p->s++;
            break;
        }
        p->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
        p->errpos = p->s;
        return NULL;
    }
    p->depth--;
    return n;
}

static cJSON *value(parser *p) {
    ws(p);
    if (p->s >= p->e) {
        p->err = "unexpected end";
        p->errpos = p->s;
        return NULL;
    }
    char c = *p->s;
    if (c == '{' || c == '[') return container(p, c == '{');
    if (c == '"') {
        char *s = str(p);
        if (!s) return NULL;
        cJSON *n = node(p, cJSON_String);
        if (n) n->valuestring = s;
        return n;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return num(p);
    size_t left = (size_t)(p->e - p->s);
    if (left >= 4 && !memcmp(p->s, "true", 4)) {
        p->s += 4;
        return node(p, cJSON_True);
    }
    if (left >= 5 && !memcmp(p->s, "false", 5)) {
        p->s += 5;
        return node(p, cJSON_False);
    }
    if (left >= 4 && !memcmp(p->s, "null", 4)) {
        p->s += 4;
        return node(p, cJSON_NULL);
    }
    p->err = "unexpected character";
    p->errpos = p->s;
    return NULL;
}

aios_status tk_json_parse(const char *text, size_t len, tk_json **out) {
    *out = NULL;
    tk_json *d = calloc(1, sizeof *d);
    if (!d) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    parser p = {text, text + len, d, 0, NULL, NULL};
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) p.s += 3; /* BOM */
    d->root = value(&p);
    if (d->root) {
        ws(&p);
        if (p.s != p.e) {
            p.err = "trailing data after the JSON value";
            p.errpos = p.s;
            d->root = NULL;
        }
    }
    if (!d->root) {
        size_t at = p.errpos ? (size_t)(p.errpos - text) : len;
        tk_json_free(d);
        return aios__err(AIOS_ERR_FORMAT, "invalid JSON at byte %zu: %s", at, p.err ? p.err : "error");
    }
    *out = d;
    return AIOS_OK;
}
