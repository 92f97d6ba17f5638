/*
 * thrift.c — Thrift compact protocol reader and writer for Parquet metadata.
 *
 * Reference: Apache Thrift "compact protocol" spec (doc/specs/thrift-compact-protocol.md).
 * Field header: one byte (delta << 4 | type) when the id delta is 1..15, else the type byte
 * followed by a zigzag varint i16 id.  Integers are zigzag varints; binary is a varint length
 * and bytes; lists are (count << 4 | elem) with count 15 meaning a varint count follows;
 * booleans in fields live in the type nibble (1 true, 2 false).
 *
 * Hostile input: every read is bounds-checked against `end`; varints are capped at 10 bytes;
 * nesting is capped at AIOS_THRIFT_MAX_DEPTH; list counts are capped by the bytes left (each
 * element takes at least one byte, except bools... which also take one).  Errors are sticky,
 * so parsers read field by field and check r->err at the end.
 */
#include "format/thrift.h"

#include <stdio.h>
#include <string.h>

void aios_thrift_r_init(aios_thrift_r *r, const uint8_t *p, size_t n) {
    memset(r, 0, sizeof *r);
    r->start = r->p = p;
    r->end = p + n;
}

void aios_thrift_fail(aios_thrift_r *r, const char *what) {
    if (r->err) return;
    r->err = 1;
    snprintf(r->msg, sizeof r->msg, "thrift: %s at byte %zu", what, aios_thrift_pos(r));
    r->p = r->end;
}

static uint64_t rd_varint(aios_thrift_r *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) {
            aios_thrift_fail(r, "truncated varint");
            return 0;
        }
        uint8_t b = *r->p++;
        if (shift == 63 && (b & 0x7e)) {
            aios_thrift_fail(r, "varint overflow");
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    aios_thrift_fail(r, "varint too long");
    return 0;
}

static int64_t rd_zigzag(aios_thrift_r *r) {
    uint64_t u = rd_varint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

void aios_thrift_struct_begin(aios_thrift_r *r) {
    if (r->err) return;
    if (r->depth >= AIOS_THRIFT_MAX_DEPTH) {
        aios_thrift_fail(r, "nesting too deep");
        return;
    }
    r->last_fid[++r->depth] = 0;
}

void aios_thrift_struct_end(aios_thrift_r *r) {
    if (r->depth > 0) r->depth--;
}

int aios_thrift_field(aios_thrift_r *r, int16_t *fid, int *type) {
    if (r->err) return 0;
    if (r->p >= r->end) {
        aios_thrift_fail(r, "truncated struct");
        return 0;
    }
    uint8_t b = *r->p++;
    int t = b & 0x0f;
    if (t == AIOS_TT_STOP) return 0;
    int delta = b >> 4;
    int16_t id;
    if (delta) {
        id = (int16_t)(r->last_fid[r->depth] + delta);
    } else {
        int64_t v = rd_zigzag(r);
        if (v < INT16_MIN || v > INT16_MAX) {
            aios_thrift_fail(r, "field id out of range");
            return 0;
        }
        id = (int16_t)v;
    }
    if (t > AIOS_TT_STRUCT) {
        aios_thrift_fail(r, "unknown field type");
        return 0;
    }
    r->last_fid[r->depth] = id;
    if (t == AIOS_TT_TRUE || t == AIOS_TT_FALSE) r->bool_val = (t == AIOS_TT_TRUE);
    *fid = id;
    *type = t;
    return !r->err;
}

static int64_t rd_int(aios_thrift_r *r, int type) {
    if (r->err) return 0;
    switch (type) {
    case AIOS_TT_I8:
        if (r->p >= r->end) {
            aios_thrift_fail(r, "truncated i8");
            return 0;
        }
        return (int8_t)*r->p++;
    case AIOS_TT_I16:
    case AIOS_TT_I32:
    case AIOS_TT_I64:
        return rd_zigzag(r);
    default:
        aios_thrift_fail(r, "expected an integer");
        return 0;
    }
}

/* The wire type must be the declared one: Thrift's own readers would skip a field of another
 * type, leaving a required field missing, so a mismatch is an error here. */
int64_t aios_thrift_i64(aios_thrift_r *r, int type) {
    if (type != AIOS_TT_I64) {
        aios_thrift_fail(r, "expected i64");
        return 0;
    }
    return rd_int(r, type);
}

int32_t aios_thrift_i32(aios_thrift_r *r, int type) {
    if (type != AIOS_TT_I32) {
        aios_thrift_fail(r, "expected i32");
        return 0;
    }
    int64_t v = rd_int(r, type);
    if (v < INT32_MIN || v > INT32_MAX) {
        aios_thrift_fail(r, "i32 out of range");
        return 0;
    }
    return (int32_t)v;
}

int aios_thrift_i8(aios_thrift_r *r, int type) {
    if (type != AIOS_TT_I8) {
        aios_thrift_fail(r, "expected i8");
        return 0;
    }
    return (int)rd_int(r, type);
}

int aios_thrift_bool(aios_thrift_r *r, int type) {
    if (r->err) return 0;
    if (type != AIOS_TT_TRUE && type != AIOS_TT_FALSE) {
        aios_thrift_fail(r, "expected a bool");
        return 0;
    }
    return r->bool_val;
}

double aios_thrift_double(aios_thrift_r *r, int type) {
    if (r->err) return 0;
    if (type != AIOS_TT_DOUBLE) {
        aios_thrift_fail(r, "expected a double");
        return 0;
    }
    if (r->end - r->p < 8) {
        aios_thrift_fail(r, "truncated double");
        return 0;
    }
    double d;
    memcpy(&d, r->p, 8);
    r->p += 8;
    return d;
}

const uint8_t *aios_thrift_binary(aios_thrift_r *r, int type, size_t *len) {
    *len = 0;
    if (r->err) return NULL;
    if (type != AIOS_TT_BINARY) {
        aios_thrift_fail(r, "expected binary");
        return NULL;
    }
    uint64_t n = rd_varint(r);
    if (r->err) return NULL;
    if (n > (uint64_t)(r->end - r->p)) {
        aios_thrift_fail(r, "binary length past the end");
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    *len = (size_t)n;
    return p;
}

int aios_thrift_list(aios_thrift_r *r, int type, int *elem_type, int64_t *count) {
    *count = 0;
    *elem_type = 0;
    if (r->err) return 0;
    if (type != AIOS_TT_LIST && type != AIOS_TT_SET) {
        aios_thrift_fail(r, "expected a list");
        return 0;
    }
    if (r->p >= r->end) {
        aios_thrift_fail(r, "truncated list header");
        return 0;
    }
    uint8_t b = *r->p++;
    uint64_t n = b >> 4;
    if (n == 15) n = rd_varint(r);
    int et = b & 0x0f;
    if (r->err) return 0;
    /* Every element takes at least one byte. */
    if (n > (uint64_t)(r->end - r->p)) {
        aios_thrift_fail(r, "list count past the end");
        return 0;
    }
    if (et == AIOS_TT_STOP || et > AIOS_TT_STRUCT) {
        aios_thrift_fail(r, "bad list element type");
        return 0;
    }
    *elem_type = et;
    *count = (int64_t)n;
    return 1;
}

int64_t aios_thrift_elem_i64(aios_thrift_r *r, int elem_type) {
    if (elem_type == AIOS_TT_I8 || elem_type == AIOS_TT_I16 || elem_type == AIOS_TT_I32 ||
        elem_type == AIOS_TT_I64)
        return rd_int(r, elem_type);
    aios_thrift_fail(r, "expected integer list elements");
    return 0;
}

static void skip_depth(aios_thrift_r *r, int type, int depth) {
    if (r->err) return;
    if (depth > AIOS_THRIFT_MAX_DEPTH) {
        aios_thrift_fail(r, "nesting too deep");
        return;
    }
    size_t len;
    switch (type) {
    case AIOS_TT_TRUE:
    case AIOS_TT_FALSE:
        return; /* in a field header: no payload */
    case AIOS_TT_I8:
        if (r->p >= r->end) aios_thrift_fail(r, "truncated i8");
        else r->p++;
        return;
    case AIOS_TT_I16:
    case AIOS_TT_I32:
    case AIOS_TT_I64:
        (void)rd_varint(r);
        return;
    case AIOS_TT_DOUBLE:
        (void)aios_thrift_double(r, type);
        return;
    case AIOS_TT_BINARY:
        (void)aios_thrift_binary(r, type, &len);
        return;
    case AIOS_TT_LIST:
    case AIOS_TT_SET: {
        int et;
        int64_t n;
        if (!aios_thrift_list(r, type, &et, &n)) return;
        for (int64_t i = 0; i < n && !r->err; i++) {
            if (et == AIOS_TT_TRUE || et == AIOS_TT_FALSE) { /* bools in lists: one byte each */
                if (r->p >= r->end) aios_thrift_fail(r, "truncated bool");
                else r->p++;
            } else {
                skip_depth(r, et, depth + 1);
            }
        }
        return;
    }
    case AIOS_TT_MAP: {
        uint64_t n = rd_varint(r);
        if (r->err || n == 0) return;
        if (r->p >= r->end) {
            aios_thrift_fail(r, "truncated map");
            return;
        }
        uint8_t kv = *r->p++;
        int kt = kv >> 4, vt = kv & 15;
        if (n > (uint64_t)(r->end - r->p)) {
            aios_thrift_fail(r, "map count past the end");
            return;
        }
        for (uint64_t i = 0; i < n && !r->err; i++) {
            for (int k = 0; k < 2; k++) {
                int t = k ? vt : kt;
                if (t == AIOS_TT_TRUE || t == AIOS_TT_FALSE) {
                    if (r->p >= r->end) aios_thrift_fail(r, "truncated bool");
                    else r->p++;
                } else {
                    skip_depth(r, t, depth + 1);
                }
            }
        }
        return;
    }
    case AIOS_TT_STRUCT: {
        aios_thrift_struct_begin(r);
        int16_t fid;
        int t;
        while (aios_thrift_field(r, &fid, &t)) skip_depth(r, t, depth + 1);
        aios_thrift_struct_end(r);
        return;
    }
    default:
        aios_thrift_fail(r, "cannot skip unknown type");
    }
}

void aios_thrift_skip(aios_thrift_r *r, int type) { skip_depth(r, type, r->depth); }

/* ---- writer ---- */

static void w_bytes(aios_thrift_w *w, const void *p, size_t n) {
    if (w->err) return;
    if (aios_buf_append(w->b, p, n) != AIOS_OK) w->err = 1;
}

static void w_byte(aios_thrift_w *w, uint8_t v) { w_bytes(w, &v, 1); }

void aios_thrift_w_init(aios_thrift_w *w, aios_buf *b) {
    memset(w, 0, sizeof *w);
    w->b = b;
}

void aios_thrift_w_varint(aios_thrift_w *w, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    w_bytes(w, tmp, (size_t)n);
}

void aios_thrift_w_zigzag(aios_thrift_w *w, int64_t v) {
    aios_thrift_w_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void aios_thrift_w_struct_begin(aios_thrift_w *w) {
    if (w->depth >= AIOS_THRIFT_MAX_DEPTH) {
        w->err = 1;
        return;
    }
    w->last_fid[++w->depth] = 0;
}

void aios_thrift_w_struct_end(aios_thrift_w *w) {
    w_byte(w, 0);
    if (w->depth > 0) w->depth--;
}

void aios_thrift_w_field(aios_thrift_w *w, int16_t fid, int type) {
    int delta = fid - w->last_fid[w->depth];
    if (delta > 0 && delta <= 15) {
        w_byte(w, (uint8_t)(delta << 4 | type));
    } else {
        w_byte(w, (uint8_t)type);
        aios_thrift_w_zigzag(w, fid);
    }
    w->last_fid[w->depth] = fid;
}

void aios_thrift_w_i32(aios_thrift_w *w, int16_t fid, int32_t v) {
    aios_thrift_w_field(w, fid, AIOS_TT_I32);
    aios_thrift_w_zigzag(w, v);
}

void aios_thrift_w_i64(aios_thrift_w *w, int16_t fid, int64_t v) {
    aios_thrift_w_field(w, fid, AIOS_TT_I64);
    aios_thrift_w_zigzag(w, v);
}

void aios_thrift_w_bool(aios_thrift_w *w, int16_t fid, int v) {
    aios_thrift_w_field(w, fid, v ? AIOS_TT_TRUE : AIOS_TT_FALSE);
}

void aios_thrift_w_raw_binary(aios_thrift_w *w, const void *p, size_t n) {
    aios_thrift_w_varint(w, n);
    w_bytes(w, p, n);
}

void aios_thrift_w_binary(aios_thrift_w *w, int16_t fid, const void *p, size_t n) {
    aios_thrift_w_field(w, fid, AIOS_TT_BINARY);
    aios_thrift_w_raw_binary(w, p, n);
}

void aios_thrift_w_list_begin(aios_thrift_w *w, int16_t fid, int elem_type, int64_t count) {
    aios_thrift_w_field(w, fid, AIOS_TT_LIST);
    if (count < 15) {
        w_byte(w, (uint8_t)(count << 4 | elem_type));
    } else {
        w_byte(w, (uint8_t)(0xf0 | elem_type));
        aios_thrift_w_varint(w, (uint64_t)count);
    }
}
