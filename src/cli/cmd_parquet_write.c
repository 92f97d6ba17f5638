/*
 * cmd_parquet_write.c — `aios parquet from-jsonl OUT --schema SPEC`: JSON lines on stdin to a
 * Parquet file through the library's writer (the inverse of `aios parquet cat`).
 *
 * SPEC: comma-separated `name:type` fields, nullable unless the type ends with `!`.
 * Types: bool int32 int64 float double string binary fixed(N) timestamp_ms timestamp_us
 * timestamp_ns list<T> struct<name:T,...>.  List elements are named "element".
 * Values use `cat`'s conventions: binary/fixed as hex strings, timestamps as integers,
 * floats as numbers or "inf"/"-inf"/"nan", lists as arrays, structs as objects.
 *
 * Rows are shredded into definition/repetition levels (Dremel) one batch at a time and
 * handed to the writer in its level form.  Numbers are kept as their source text and parsed
 * with strtoll/strtod, so 64-bit integers survive exactly (a double-based JSON library would
 * round them).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/internal.h"
#include "format/parquet.h"

/* ---- a small JSON reader (values in an arena, numbers kept as text) ---- */
enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct jv {
    int t;
    const char *s; /* number text / string bytes / object key list owner */
    size_t len;
    struct jv *kids;
    const char **keys;
    size_t *klens;
    int n;
} jv;

typedef struct {
    const char *p, *end;
    char err[128];
    int depth;
} jp;

static void jskip(jp *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n')) j->p++;
}

static int jfail(jp *j, const char *m) {
    if (!j->err[0]) snprintf(j->err, sizeof j->err, "%s", m);
    return 0;
}

static int put_utf8(char *o, uint32_t c) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xc0 | c >> 6); o[1] = (char)(0x80 | (c & 63)); return 2; }
    if (c < 0x10000) { o[0] = (char)(0xe0 | c >> 12); o[1] = (char)(0x80 | ((c >> 6) & 63)); o[2] = (char)(0x80 | (c & 63)); return 3; }
    o[0] = (char)(0xf0 | c >> 18); o[1] = (char)(0x80 | ((c >> 12) & 63)); o[2] = (char)(0x80 | ((c >> 6) & 63)); o[3] = (char)(0x80 | (c & 63));
    return 4;
}

static int hex4(const char *p, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        *v = *v << 4 | (uint32_t)d;
    }
    return 1;
}

/* The decoded string is written in place over the source (it is never longer). */
static int jstring(jp *j, const char **s, size_t *len) {
    j->p++; /* opening quote */
    char *o = (char *)j->p, *start = o;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c != '\\') {
            *o++ = c;
            continue;
        }
        if (j->p >= j->end) return jfail(j, "truncated escape");
        char e = *j->p++;
        switch (e) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case '/': case '\\': case '"': *o++ = e; break;
        case 'u': {
            uint32_t c1, c2;
            if (j->end - j->p < 4 || !hex4(j->p, &c1)) return jfail(j, "bad \\u escape");
            j->p += 4;
            if (c1 >= 0xd800 && c1 < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' && hex4(j->p + 2, &c2) &&
                c2 >= 0xdc00 && c2 < 0xe000) {
                c1 = 0x10000 + ((c1 - 0xd800) << 10) + (c2 - 0xdc00);
                j->p += 6;
            }
            o += put_utf8(o, c1);
            break;
        }
        default: return jfail(j, "bad escape");
        }
    }
    if (j->p >= j->end) return jfail(j, "unterminated string");
    j->p++;
    *s = start;
    *len = (size_t)(o - start);
    return 1;
}

/* On failure the partial tree in *v is still well-formed (jfree releases it). */
static int jvalue(jp *j, jv *v) {
    memset(v, 0, sizeof *v);
    jskip(j);
    if (j->p >= j->end) return jfail(j, "unexpected end");
    if (++j->depth > 64) return jfail(j, "nested too deep");
    char c = *j->p;
    int ok = 1;
    if (c == '"') {
        v->t = J_STR;
        ok = jstring(j, &v->s, &v->len);
    } else if (c == '{' || c == '[') {
        int obj = c == '{';
        v->t = obj ? J_OBJ : J_ARR;
        j->p++;
        int cap = 0;
        jskip(j);
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
            j->p++;
        } else {
            for (;;) {
                if (v->n == cap) {
                    cap = cap ? cap * 2 : 4;
                    jv *nk = realloc(v->kids, (size_t)cap * sizeof *nk);
                    const char **nkeys = obj ? realloc(v->keys, (size_t)cap * sizeof *nkeys) : NULL;
                    if (nk) v->kids = nk;
                    if (nkeys) v->keys = nkeys;
                    size_t *nl = obj ? realloc(v->klens, (size_t)cap * sizeof *nl) : NULL;
                    if (nl) v->klens = nl;
                    if (!nk || (obj && (!nkeys || !nl))) return jfail(j, "out of memory");
                }
                if (obj) {
                    jskip(j);
                    if (j->p >= j->end || *j->p != '"') return jfail(j, "expected a key");
                    if (!jstring(j, &v->keys[v->n], &v->klens[v->n])) return 0;
                    jskip(j);
                    if (j->p >= j->end || *j->p != ':') return jfail(j, "expected ':'");
                    j->p++;
                }
                v->n++;
                if (!jvalue(j, &v->kids[v->n - 1])) return 0;
                jskip(j);
                if (j->p < j->end && *j->p == ',') {
                    j->p++;
                    continue;
                }
                if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
                    j->p++;
                    break;
                }
                return jfail(j, "expected ',' or a closing bracket");
            }
        }
    } else if (!strncmp(j->p, "null", 4) && j->end - j->p >= 4) {
        v->t = J_NULL;
        j->p += 4;
    } else if (!strncmp(j->p, "true", 4) && j->end - j->p >= 4) {
        v->t = J_TRUE;
        j->p += 4;
    } else if (!strncmp(j->p, "false", 5) && j->end - j->p >= 5) {
        v->t = J_FALSE;
        j->p += 5;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        v->t = J_NUM;
        v->s = j->p;
        while (j->p < j->end && (isdigit((unsigned char)*j->p) || strchr("+-.eE", *j->p))) j->p++;
        v->len = (size_t)(j->p - v->s);
    } else {
        ok = jfail(j, "unexpected character");
    }
    j->depth--;
    return ok;
}

static void jfree(jv *v) {
    if (v->t == J_ARR || v->t == J_OBJ) {
        for (int i = 0; i < v->n; i++) jfree(&v->kids[i]);
        free(v->kids);
        free(v->keys);
        free(v->klens);
    }
}

/* ---- schema spec ---- */
typedef struct {
    aios_pq_field f[512];
    char names[512][128];
    int n;
    char err[160];
} spec;

static int parse_type(spec *sp, const char **pp, int parent, const char *name);

static int parse_fields(spec *sp, const char **pp, int parent, char close) {
    const char *p = *pp;
    for (;;) {
        while (*p == ' ') p++;
        const char *nm = p;
        while (*p && *p != ':' && *p != ',' && *p != close) p++;
        if (*p != ':') {
            snprintf(sp->err, sizeof sp->err, "expected name:type near '%.20s'", nm);
            return 0;
        }
        char name[128];
        size_t ln = (size_t)(p - nm);
        if (ln == 0 || ln >= sizeof name) {
            snprintf(sp->err, sizeof sp->err, "bad field name near '%.20s'", nm);
            return 0;
        }
        memcpy(name, nm, ln);
        name[ln] = 0;
        p++;
        if (!parse_type(sp, &p, parent, name)) return 0;
        while (*p == ' ') p++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == close) break;
        snprintf(sp->err, sizeof sp->err, "unexpected '%.20s'", p);
        return 0;
    }
    *pp = p;
    return 1;
}

static int parse_type(spec *sp, const char **pp, int parent, const char *name) {
    const char *p = *pp;
    if (sp->n >= 512) {
        snprintf(sp->err, sizeof sp->err, "too many fields");
        return 0;
    }
    int id = sp->n++;
    aios_pq_field *f = &sp->f[id];
    memset(f, 0, sizeof *f);
    snprintf(sp->names[id], sizeof sp->names[id], "%s", name);
    f->name = sp->names[id];
    f->parent = parent;
    f->nullable = 1;
    static const struct { const char *s; aios_pq_kind k; } simple[] = {
        {"bool", AIOS_PQ_K_BOOL}, {"int32", AIOS_PQ_K_INT32}, {"int64", AIOS_PQ_K_INT64}, {"float", AIOS_PQ_K_FLOAT},
        {"double", AIOS_PQ_K_DOUBLE}, {"string", AIOS_PQ_K_STRING}, {"binary", AIOS_PQ_K_BINARY},
        {"timestamp_ms", AIOS_PQ_K_TIMESTAMP_MS}, {"timestamp_us", AIOS_PQ_K_TIMESTAMP_US}, {"timestamp_ns", AIOS_PQ_K_TIMESTAMP_NS},
    };
    if (!strncmp(p, "list<", 5)) {
        f->kind = AIOS_PQ_K_LIST;
        p += 5;
        if (!parse_type(sp, &p, id, "element")) return 0;
        if (*p != '>') {
            snprintf(sp->err, sizeof sp->err, "expected '>' after list element");
            return 0;
        }
        p++;
    } else if (!strncmp(p, "struct<", 7)) {
        f->kind = AIOS_PQ_K_STRUCT;
        p += 7;
        if (!parse_fields(sp, &p, id, '>')) return 0;
        p++;
    } else if (!strncmp(p, "fixed(", 6)) {
        f->kind = AIOS_PQ_K_FIXED;
        p += 6;
        f->type_length = (int)strtol(p, (char **)&p, 10);
        if (*p != ')' || f->type_length <= 0) {
            snprintf(sp->err, sizeof sp->err, "bad fixed(N)");
            return 0;
        }
        p++;
    } else {
        size_t best = 0;
        for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
            size_t l = strlen(simple[i].s);
            if (!strncmp(p, simple[i].s, l) && l > best && !isalnum((unsigned char)p[l]) && p[l] != '_') {
                best = l;
                f->kind = simple[i].k;
            }
        }
        if (!best) {
            snprintf(sp->err, sizeof sp->err, "unknown type near '%.20s'", p);
            return 0;
        }
        p += best;
    }
    if (*p == '!') {
        f->nullable = 0;
        p++;
    }
    *pp = p;
    return 1;
}

/* ---- shredding ---- */
typedef struct {
    aios_buf def, rep, vals, bytes_off; /* int16, int16, fixed values, (offset,len) pairs into arena */
    int64_t nlev;
} lbuf;

typedef struct {
    aios_pq_writer *w;
    const aios_pq_field *f;
    int nf;
    int *leaf_of;        /* field -> leaf index (-1 for groups) */
    const aios_pq_node **leaf_node;
    int16_t *slot_def;
    lbuf *lb;
    aios_buf arena;      /* string/binary bytes of this batch */
    char err[256];
    int64_t line;
} shred_ctx;

static int sfail(shred_ctx *c, const char *fmt, const char *what) {
    if (!c->err[0]) snprintf(c->err, sizeof c->err, "line %" PRId64 ": %s%s", c->line, fmt, what ? what : "");
    return 0;
}

static int append_entry(shred_ctx *c, int leaf, int16_t d, int16_t r) {
    lbuf *b = &c->lb[leaf];
    if (aios_buf_append(&b->def, &d, 2) || aios_buf_append(&b->rep, &r, 2)) return sfail(c, "out of memory", NULL);
    b->nlev++;
    return 1;
}

static int zero_slot(shred_ctx *c, int leaf) {
    const aios_pq_node *n = c->leaf_node[leaf];
    lbuf *b = &c->lb[leaf];
    if (n->type == AIOS_PQ_BYTE_ARRAY) {
        uint64_t z[2] = {0, 0};
        return aios_buf_append(&b->bytes_off, z, 16) == AIOS_OK ? 1 : sfail(c, "out of memory", NULL);
    }
    size_t es = n->type == AIOS_PQ_BOOLEAN ? 1 : n->type == AIOS_PQ_INT32 || n->type == AIOS_PQ_FLOAT ? 4
              : n->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY ? (size_t)n->type_length : 8;
    static const uint8_t zeros[64];
    while (es) {
        size_t k = es > 64 ? 64 : es;
        if (aios_buf_append(&b->vals, zeros, k)) return sfail(c, "out of memory", NULL);
        es -= k;
    }
    return 1;
}

static void null_leaves(shred_ctx *c, int fi, int16_t d, int16_t r, int *ok) {
    if (c->leaf_of[fi] >= 0) {
        int leaf = c->leaf_of[fi];
        if (!append_entry(c, leaf, d, r)) *ok = 0;
        if (d >= c->slot_def[leaf] && !zero_slot(c, leaf)) *ok = 0;
        return;
    }
    for (int k = fi + 1; k < c->nf; k++)
        if (c->f[k].parent == fi) null_leaves(c, k, d, r, ok);
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int put_leaf_value(shred_ctx *c, int leaf, const jv *v) {
    const aios_pq_node *n = c->leaf_node[leaf];
    lbuf *b = &c->lb[leaf];
    char tmp[64];
    switch (n->type) {
    case AIOS_PQ_BOOLEAN: {
        if (v->t != J_TRUE && v->t != J_FALSE) return sfail(c, "expected true/false for ", n->path);
        uint8_t x = v->t == J_TRUE;
        return aios_buf_append(&b->vals, &x, 1) == AIOS_OK;
    }
    case AIOS_PQ_INT32: case AIOS_PQ_INT64: {
        if (v->t != J_NUM || v->len >= sizeof tmp) return sfail(c, "expected an integer for ", n->path);
        memcpy(tmp, v->s, v->len);
        tmp[v->len] = 0;
        char *e;
        errno = 0;
        long long x = strtoll(tmp, &e, 10);
        if (*e || errno) return sfail(c, "bad integer for ", n->path);
        if (n->type == AIOS_PQ_INT32) {
            if (x < INT32_MIN || x > INT32_MAX) return sfail(c, "int32 out of range for ", n->path);
            int32_t y = (int32_t)x;
            return aios_buf_append(&b->vals, &y, 4) == AIOS_OK;
        }
        int64_t y = x;
        return aios_buf_append(&b->vals, &y, 8) == AIOS_OK;
    }
    case AIOS_PQ_FLOAT: case AIOS_PQ_DOUBLE: {
        double x;
        if (v->t == J_STR && v->len < 8) {
            memcpy(tmp, v->s, v->len);
            tmp[v->len] = 0;
            if (!strcmp(tmp, "inf")) x = INFINITY;
            else if (!strcmp(tmp, "-inf")) x = -INFINITY;
            else if (!strcmp(tmp, "nan")) x = NAN;
            else return sfail(c, "bad float string for ", n->path);
        } else if (v->t == J_NUM && v->len < sizeof tmp) {
            memcpy(tmp, v->s, v->len);
            tmp[v->len] = 0;
            char *e;
            if (n->type == AIOS_PQ_FLOAT) {
                float y = strtof(tmp, &e);
                if (*e) return sfail(c, "bad number for ", n->path);
                return aios_buf_append(&b->vals, &y, 4) == AIOS_OK;
            }
            x = strtod(tmp, &e);
            if (*e) return sfail(c, "bad number for ", n->path);
        } else {
            return sfail(c, "expected a number for ", n->path);
        }
        if (n->type == AIOS_PQ_FLOAT) {
            float y = (float)x;
            return aios_buf_append(&b->vals, &y, 4) == AIOS_OK;
        }
        return aios_buf_append(&b->vals, &x, 8) == AIOS_OK;
    }
    case AIOS_PQ_BYTE_ARRAY: case AIOS_PQ_FIXED_LEN_BYTE_ARRAY: {
        if (v->t != J_STR) return sfail(c, "expected a string for ", n->path);
        uint64_t off = c->arena.len, len;
        if (n->logical == AIOS_PQ_L_STRING) {
            if (aios_buf_append(&c->arena, v->s, v->len)) return sfail(c, "out of memory", NULL);
            len = v->len;
        } else {
            if (v->len % 2) return sfail(c, "odd-length hex for ", n->path);
            len = v->len / 2;
            if (aios_buf_reserve(&c->arena, len)) return sfail(c, "out of memory", NULL);
            for (size_t i = 0; i < len; i++) {
                int hi = hexval(v->s[2 * i]), lo = hexval(v->s[2 * i + 1]);
                if (hi < 0 || lo < 0) return sfail(c, "bad hex for ", n->path);
                c->arena.data[c->arena.len++] = (uint8_t)(hi << 4 | lo);
            }
        }
        if (n->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY) {
            if (len != (uint64_t)n->type_length) return sfail(c, "wrong length for fixed ", n->path);
            int ok = aios_buf_append(&b->vals, c->arena.data + off, len) == AIOS_OK;
            c->arena.len = off;
            return ok;
        }
        uint64_t pair[2] = {off, len};
        return aios_buf_append(&b->bytes_off, pair, 16) == AIOS_OK;
    }
    default:
        return sfail(c, "unsupported type for ", n->path);
    }
}

static const jv *obj_get(const jv *o, const char *k) {
    size_t l = strlen(k);
    for (int i = 0; i < o->n; i++)
        if (o->klens[i] == l && !memcmp(o->keys[i], k, l)) return &o->kids[i];
    return NULL;
}

static int shred(shred_ctx *c, int fi, const jv *v, int16_t d, int16_t r) {
    const aios_pq_field *f = &c->f[fi];
    int ok = 1;
    int is_null = !v || v->t == J_NULL;
    if (is_null) {
        if (!f->nullable) return sfail(c, "null in required field ", f->name);
        null_leaves(c, fi, d, r, &ok);
        return ok;
    }
    int16_t dd = (int16_t)(d + (f->nullable ? 1 : 0));
    if (f->kind == AIOS_PQ_K_LIST) {
        if (v->t != J_ARR) return sfail(c, "expected an array for ", f->name);
        int child = -1;
        for (int k = fi + 1; k < c->nf; k++)
            if (c->f[k].parent == fi) child = k;
        if (v->n == 0) {
            null_leaves(c, fi, dd, r, &ok);
            return ok;
        }
        /* the repeated level of this list: one more than the levels above it */
        int16_t rl = 1;
        for (int q = f->parent; q >= 0; q = c->f[q].parent)
            if (c->f[q].kind == AIOS_PQ_K_LIST) rl++;
        for (int i = 0; i < v->n && ok; i++) ok = shred(c, child, &v->kids[i], (int16_t)(dd + 1), i == 0 ? r : rl);
        return ok;
    }
    if (f->kind == AIOS_PQ_K_STRUCT) {
        if (v->t != J_OBJ) return sfail(c, "expected an object for ", f->name);
        for (int k = fi + 1; k < c->nf && ok; k++)
            if (c->f[k].parent == fi) ok = shred(c, k, obj_get(v, c->f[k].name), dd, r);
        return ok;
    }
    int leaf = c->leaf_of[fi];
    if (!append_entry(c, leaf, dd, r)) return 0;
    return put_leaf_value(c, leaf, v);
}

static aios_status flush_batch(shred_ctx *c, int64_t rows) {
    int nl = aios_pq_writer_num_leaves(c->w);
    for (int l = 0; l < nl; l++) {
        lbuf *b = &c->lb[l];
        aios_pq_batch bt;
        memset(&bt, 0, sizeof bt);
        bt.num_rows = rows;
        bt.num_levels = b->nlev;
        bt.def = (const int16_t *)b->def.data;
        bt.rep = (const int16_t *)b->rep.data;
        bt.values = b->vals.data;
        if (c->leaf_node[l]->type == AIOS_PQ_BYTE_ARRAY) {
            /* offsets -> pointers, in place (both are 16 bytes) */
            uint64_t *pr = (uint64_t *)b->bytes_off.data;
            size_t n = b->bytes_off.len / 16;
            aios_pq_bytes *bb = (aios_pq_bytes *)pr;
            for (size_t i = 0; i < n; i++) {
                uint64_t off = pr[2 * i], len = pr[2 * i + 1];
                bb[i].ptr = len ? c->arena.data + off : (const uint8_t *)"";
                bb[i].len = (size_t)len;
            }
            bt.bytes = bb;
            if (!bt.bytes) bt.bytes = (const aios_pq_bytes *)"";
        }
        if (!bt.values) bt.values = "";
        if (c->leaf_node[l]->def_level == 0) bt.def = NULL;
        if (c->leaf_node[l]->rep_level == 0) bt.rep = NULL;
        if (!bt.def && !bt.rep) bt.num_levels = rows;
        AIOS_TRY(aios_pq_writer_write(c->w, l, &bt));
        b->def.len = b->rep.len = b->vals.len = b->bytes_off.len = 0;
        b->nlev = 0;
    }
    c->arena.len = 0;
    return aios_pq_writer_end_batch(c->w, rows);
}

int aios_cmd_parquet_from_jsonl(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        printf("usage: aios parquet from-jsonl OUT --schema SPEC [options] < rows.jsonl\n\n"
               "Writes JSON lines (one object per row) to the Parquet file OUT.\n"
               "SPEC: comma-separated name:type, nullable unless the type ends with '!'.  Types:\n"
               "  bool int32 int64 float double string binary fixed(N) timestamp_ms timestamp_us\n"
               "  timestamp_ns list<T> struct<name:T,...>\n"
               "  e.g. 'id:string!,ts:timestamp_us,vec:list<float>,meta:struct<tag:string,score:float>'\n"
               "Values: binary/fixed as hex strings, timestamps as integers, floats as numbers or\n"
               "\"inf\"/\"-inf\"/\"nan\" (the output conventions of 'aios parquet cat').\n\n"
               "options:\n"
               "  --codec zstd|snappy|gzip|none   (default zstd)    --level N   codec level\n"
               "  --row-group-rows N   --page-bytes N   --batch N (rows per writer batch, 4096)\n"
               "  --no-dictionary   --no-stats   --no-crc   --v2 (data pages v2)\n"
               "  --aligned NAME    write top-level binary column NAME uncompressed, one value per page,\n"
               "                    data aligned to --align bytes (64) for in-place use from a mapping\n"
               "  --kv KEY=VALUE    footer key-value metadata (repeatable)\n");
        return 0;
    }
    const char *out = NULL, *sspec = NULL, *aligned = NULL;
    aios_pq_writer_params wp = aios_pq_writer_default_params();
    int64_t batch = 4096;
    char *kvs[64];
    int nkv = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--schema") && v) sspec = argv[++i];
        else if (!strcmp(a, "--codec") && v) {
            int cdc = aios_pq_codec_parse(argv[++i]);
            if (cdc < 0 || cdc == AIOS_PQ_LZ4_RAW) {
                fprintf(stderr, "aios: parquet from-jsonl: unknown codec '%s' (zstd, snappy, gzip, none)\n", v);
                return 2;
            }
            wp.codec = (aios_pq_codec)cdc;
        } else if (!strcmp(a, "--level") && v) wp.level = atoi(argv[++i]);
        else if (!strcmp(a, "--row-group-rows") && v) wp.row_group_rows = atoll(argv[++i]);
        else if (!strcmp(a, "--page-bytes") && v) wp.page_bytes = atoll(argv[++i]);
        else if (!strcmp(a, "--batch") && v) batch = atoll(argv[++i]);
        else if (!strcmp(a, "--align") && v) wp.align = atoi(argv[++i]);
        else if (!strcmp(a, "--aligned") && v) aligned = argv[++i];
        else if (!strcmp(a, "--kv") && v && nkv < 64) kvs[nkv++] = argv[++i];
        else if (!strcmp(a, "--no-dictionary")) wp.dictionary = 0;
        else if (!strcmp(a, "--no-stats")) wp.statistics = 0;
        else if (!strcmp(a, "--no-crc")) wp.page_crc = 0;
        else if (!strcmp(a, "--v2")) wp.data_page_v2 = 1;
        else if (a[0] != '-' && !out) out = a;
        else {
            fprintf(stderr, "aios: parquet from-jsonl: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!out || !sspec) {
        fprintf(stderr, "aios: parquet from-jsonl: need OUT and --schema SPEC (see --help)\n");
        return 2;
    }
    if (batch <= 0) batch = 4096;
    static spec sp;
    memset(&sp, 0, sizeof sp);
    const char *p = sspec;
    if (!parse_fields(&sp, &p, -1, '\0')) {
        fprintf(stderr, "aios: parquet from-jsonl: --schema: %s\n", sp.err);
        return 2;
    }
    if (aligned) {
        int found = 0;
        for (int i = 0; i < sp.n; i++)
            if (sp.f[i].parent < 0 && !strcmp(sp.f[i].name, aligned)) {
                sp.f[i].plain_aligned = 1;
                found = 1;
            }
        if (!found) {
            fprintf(stderr, "aios: parquet from-jsonl: --aligned: no top-level field '%s'\n", aligned);
            return 2;
        }
    }
    aios_pq_writer *w;
    aios_status s = aios_pq_writer_open(out, sp.f, sp.n, &wp, &w);
    if (s != AIOS_OK) return aios_cli_fail("parquet from-jsonl", s);
    for (int i = 0; i < nkv && s == AIOS_OK; i++) {
        char *eq = strchr(kvs[i], '=');
        if (!eq) {
            aios_pq_writer_abort(w);
            fprintf(stderr, "aios: parquet from-jsonl: --kv needs KEY=VALUE\n");
            return 2;
        }
        *eq = 0;
        s = aios_pq_writer_set_kv(w, kvs[i], eq + 1);
    }
    int nl = aios_pq_writer_num_leaves(w);
    shred_ctx c;
    memset(&c, 0, sizeof c);
    c.w = w;
    c.f = sp.f;
    c.nf = sp.n;
    c.leaf_of = calloc((size_t)sp.n, sizeof *c.leaf_of);
    c.leaf_node = calloc((size_t)nl + 1, sizeof *c.leaf_node);
    c.slot_def = calloc((size_t)nl + 1, sizeof *c.slot_def);
    c.lb = calloc((size_t)nl + 1, sizeof *c.lb);
    if (!c.leaf_of || !c.leaf_node || !c.slot_def || !c.lb) s = aios__err(AIOS_ERR_NOMEM, "out of memory");
    /* leaves in depth-first field order match the writer's leaf numbering */
    if (s == AIOS_OK) {
        int stack[512], spn = 0, leaf = 0;
        for (int i = sp.n - 1; i >= 0; i--)
            if (sp.f[i].parent < 0) stack[spn++] = i;
        for (int i = 0; i < sp.n; i++) c.leaf_of[i] = -1;
        while (spn > 0) {
            int fi = stack[--spn];
            if (sp.f[fi].kind != AIOS_PQ_K_LIST && sp.f[fi].kind != AIOS_PQ_K_STRUCT) c.leaf_of[fi] = leaf++;
            for (int k = sp.n - 1; k > fi; k--)
                if (sp.f[k].parent == fi) stack[spn++] = k;
        }
        for (int l = 0; l < nl; l++) {
            c.leaf_node[l] = aios_pq_writer_leaf(w, l);
            const aios_pq_node *n = c.leaf_node[l];
            /* slot_def: def level of the innermost repeated ancestor (0 when none); the writer's
             * node tree has the same levels as the reader's */
            c.slot_def[l] = 0;
            if (n->rep_level > 0) {
                /* the innermost repeated ancestor's def level: count down from the leaf */
                int16_t sd = n->def_level;
                /* element (optional?) -> list (repeated): the element adds 1 if nullable */
                c.slot_def[l] = sd;
            }
        }
        /* exact slot_def from the field chain: leaf's def minus the optional fields between it
         * and its innermost list */
        for (int fi = 0; fi < sp.n; fi++) {
            if (c.leaf_of[fi] < 0) continue;
            int l = c.leaf_of[fi];
            if (c.leaf_node[l]->rep_level == 0) continue;
            int16_t sd = c.leaf_node[l]->def_level;
            for (int q = fi; q >= 0 && sp.f[q].kind != AIOS_PQ_K_LIST; q = sp.f[q].parent)
                if (sp.f[q].nullable) sd--;
            c.slot_def[l] = sd;
        }
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t rows = 0;
    int rc = 0;
    while (s == AIOS_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        c.line++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        jp j = {.p = line, .end = line + len};
        jv v;
        int ok = jvalue(&j, &v);
        if (ok) {
            jskip(&j);
            if (j.p != j.end) ok = jfail(&j, "trailing characters");
        }
        if (!ok || v.t != J_OBJ) {
            fprintf(stderr, "aios: parquet from-jsonl: line %" PRId64 ": %s\n", c.line, ok ? "not a JSON object" : j.err);
            jfree(&v);
            rc = 1;
            break;
        }
        for (int fi = 0; fi < sp.n && ok; fi++)
            if (sp.f[fi].parent < 0) ok = shred(&c, fi, obj_get(&v, sp.f[fi].name), 0, 0);
        jfree(&v);
        if (!ok) {
            fprintf(stderr, "aios: parquet from-jsonl: %s\n", c.err);
            rc = 1;
            break;
        }
        if (++rows == batch) {
            s = flush_batch(&c, rows);
            rows = 0;
        }
    }
    free(line);
    if (s == AIOS_OK && rc == 0 && rows > 0) s = flush_batch(&c, rows);
    if (s == AIOS_OK && rc == 0) s = aios_pq_writer_close(w);
    else aios_pq_writer_abort(w);
    if (s != AIOS_OK) rc = aios_cli_fail("parquet from-jsonl", s);
    for (int l = 0; c.lb && l < nl; l++) {
        aios_buf_free(&c.lb[l].def);
        aios_buf_free(&c.lb[l].rep);
        aios_buf_free(&c.lb[l].vals);
        aios_buf_free(&c.lb[l].bytes_off);
    }
    aios_buf_free(&c.arena);
    free(c.leaf_of);
    free(c.leaf_node);
    free(c.slot_def);
    free(c.lb);
    return rc;
}
