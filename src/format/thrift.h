/*
 * format/thrift.h — Thrift compact protocol: a bounds-checked reader and a buffer writer.
 *
 * Only what Parquet metadata needs: structs with field headers, i8/i16/i32/i64 (zigzag
 * varints), bool, double, binary, list/set, map (skipped).  The reader never reads past `end`,
 * limits nesting depth, and turns every problem into a sticky error flag plus a message, so
 * callers can parse field by field and check once.
 */
#ifndef AIOS_FORMAT_THRIFT_H
#define AIOS_FORMAT_THRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

enum {
    AIOS_TT_STOP = 0,
    AIOS_TT_TRUE = 1,
    AIOS_TT_FALSE = 2,
    AIOS_TT_I8 = 3,
    AIOS_TT_I16 = 4,
    AIOS_TT_I32 = 5,
    AIOS_TT_I64 = 6,
    AIOS_TT_DOUBLE = 7,
    AIOS_TT_BINARY = 8,
    AIOS_TT_LIST = 9,
    AIOS_TT_SET = 10,
    AIOS_TT_MAP = 11,
    AIOS_TT_STRUCT = 12,
};

#define AIOS_THRIFT_MAX_DEPTH 32

typedef struct {
    const uint8_t *start, *p, *end;
    int err;               /* sticky: once set every read returns 0 */
    char msg[128];         /* what went wrong, at which offset */
    int depth;
    int16_t last_fid[AIOS_THRIFT_MAX_DEPTH + 1];
    int bool_val;          /* value of a bool carried in a field header */
} aios_thrift_r;

void aios_thrift_r_init(aios_thrift_r *r, const uint8_t *p, size_t n);
/* Enters a struct (pushes the field-id context). */
void aios_thrift_struct_begin(aios_thrift_r *r);
void aios_thrift_struct_end(aios_thrift_r *r);
/* Next field header; returns 0 at STOP or on error.  *type is the compact type. */
int aios_thrift_field(aios_thrift_r *r, int16_t *fid, int *type);
/* Values.  Each checks that `type` matches what the field claims (sets err otherwise). */
int64_t aios_thrift_i64(aios_thrift_r *r, int type);  /* only I64 */
int32_t aios_thrift_i32(aios_thrift_r *r, int type);  /* only I32 */
int aios_thrift_i8(aios_thrift_r *r, int type);       /* only I8 */
int aios_thrift_bool(aios_thrift_r *r, int type);
double aios_thrift_double(aios_thrift_r *r, int type);
/* Binary/string: pointer into the buffer (not NUL-terminated) and length. */
const uint8_t *aios_thrift_binary(aios_thrift_r *r, int type, size_t *len);
/* List/set header: element type and count (count checked against remaining bytes). */
int aios_thrift_list(aios_thrift_r *r, int type, int *elem_type, int64_t *count);
/* Reads a list element of a scalar type (elements have no field header). */
int64_t aios_thrift_elem_i64(aios_thrift_r *r, int elem_type);
/* Skips a value of any type. */
void aios_thrift_skip(aios_thrift_r *r, int type);
/* Sets the error (first one wins). */
void aios_thrift_fail(aios_thrift_r *r, const char *what);
static inline size_t aios_thrift_pos(const aios_thrift_r *r) { return (size_t)(r->p - r->start); }

/* ---- writer ---- */
typedef struct {
    aios_buf *b;
    int err;
    int depth;
    int16_t last_fid[AIOS_THRIFT_MAX_DEPTH + 1];
} aios_thrift_w;

void aios_thrift_w_init(aios_thrift_w *w, aios_buf *b);
void aios_thrift_w_struct_begin(aios_thrift_w *w);
void aios_thrift_w_struct_end(aios_thrift_w *w); /* writes STOP */
void aios_thrift_w_field(aios_thrift_w *w, int16_t fid, int type);
void aios_thrift_w_i32(aios_thrift_w *w, int16_t fid, int32_t v);
void aios_thrift_w_i64(aios_thrift_w *w, int16_t fid, int64_t v);
void aios_thrift_w_bool(aios_thrift_w *w, int16_t fid, int v);
void aios_thrift_w_binary(aios_thrift_w *w, int16_t fid, const void *p, size_t n);
void aios_thrift_w_list_begin(aios_thrift_w *w, int16_t fid, int elem_type, int64_t count);
/* Raw value writers for list elements. */
void aios_thrift_w_varint(aios_thrift_w *w, uint64_t v);
void aios_thrift_w_zigzag(aios_thrift_w *w, int64_t v);
void aios_thrift_w_raw_binary(aios_thrift_w *w, const void *p, size_t n);

#endif
