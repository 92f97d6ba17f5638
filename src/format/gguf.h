/*
 * gguf.h — reader for GGUF, llama.cpp's single-file model format, versions 2 and 3
 * (little-endian):
 *
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x   { string key | u32 type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to general.alignment (default 32) | data section (tensor offsets are relative to it)
 *
 *   string = u64 length + bytes (not NUL-terminated); array = u32 elem type + u64 count + elems
 *   (arrays may nest).  ne[0] is the fastest-moving dimension (a row), the reverse of PyTorch.
 *
 * The file is mapped read-only and nothing in it is copied but the small strings (keys, tensor
 * names, string values are given as pointer + length into the mapping).  Every count, length,
 * offset and dimension is checked against the file size before it is used; errors name the
 * file and the key or tensor: "gguf: x.gguf: key 'tokenizer.ggml.tokens': array of 4294967296
 * strings runs past the end of the file".
 */
#ifndef AIOS_FORMAT_GGUF_H
#define AIOS_FORMAT_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "aios.h"

typedef enum {
    AIOS_GGUF_U8 = 0,
    AIOS_GGUF_I8 = 1,
    AIOS_GGUF_U16 = 2,
    AIOS_GGUF_I16 = 3,
    AIOS_GGUF_U32 = 4,
    AIOS_GGUF_I32 = 5,
    AIOS_GGUF_F32 = 6,
    AIOS_GGUF_BOOL = 7,
    AIOS_GGUF_STRING = 8,
    AIOS_GGUF_ARRAY = 9,
    AIOS_GGUF_U64 = 10,
    AIOS_GGUF_I64 = 11,
    AIOS_GGUF_F64 = 12,
} aios_gguf_type;

/* A string inside the mapping: s[0..n), not NUL-terminated. */
typedef struct {
    const char *s;
    uint64_t n;
} aios_gguf_str;

typedef struct aios_gguf_value aios_gguf_value;
struct aios_gguf_value {
    aios_gguf_type type;
    union {
        uint64_t u;        /* U8..U64, BOOL (0/1) */
        int64_t i;         /* I8..I64 */
        double f;          /* F32, F64 */
        aios_gguf_str str; /* STRING */
        struct {           /* ARRAY */
            aios_gguf_type type; /* element type */
            uint64_t n;
            const uint8_t *raw;          /* numeric / bool elements: n packed little-endian values
                                            (unaligned; read with aios_gguf_arr_*) */
            const aios_gguf_str *strs;   /* STRING elements (n) */
            const aios_gguf_value *vals; /* ARRAY elements (n): nested arrays */
        } arr;
    } v;
};

/* A tensor info.  ne[] in GGUF order (ne[0] = row length); data points into the mapping. */
typedef struct {
    const char *name; /* NUL-terminated copy */
    uint32_t ggml_type;
    int n_dims;
    int64_t ne[4];
    uint64_t offset;  /* relative to the data section */
    const void *data;
    size_t nbytes;
} aios_gguf_tensor;

typedef struct aios_gguf aios_gguf;

/* Maps `path` and parses it (see above).  On success *out owns the mapping. */
aios_status aios_gguf_open(const char *path, aios_gguf **out);
/* The same on bytes in memory (borrowed: must outlive the handle); `label` names them in errors. */
aios_status aios_gguf_parse(const uint8_t *data, size_t size, const char *label, aios_gguf **out);
void aios_gguf_close(aios_gguf *g);

uint32_t aios_gguf_version(const aios_gguf *g);
uint32_t aios_gguf_alignment(const aios_gguf *g);
/* Offset of the data section in the file. */
uint64_t aios_gguf_data_offset(const aios_gguf *g);
const char *aios_gguf_label(const aios_gguf *g);

/* Metadata in file order. */
int64_t aios_gguf_kv_count(const aios_gguf *g);
const char *aios_gguf_kv_key(const aios_gguf *g, int64_t i);
const aios_gguf_value *aios_gguf_kv_value(const aios_gguf *g, int64_t i);
/* Value of a key, or NULL when absent. */
const aios_gguf_value *aios_gguf_get(const aios_gguf *g, const char *key);

/* Typed getters: 1 when the key is present with a fitting type and value, else 0 (absent keys
 * leave *out alone).  get_int accepts every integer type (and BOOL) whose value fits int64;
 * get_f64 every numeric type; get_str a STRING (pointer into the mapping, *len bytes). */
int aios_gguf_get_int(const aios_gguf *g, const char *key, int64_t *out);
int aios_gguf_get_f64(const aios_gguf *g, const char *key, double *out);
const char *aios_gguf_get_str(const aios_gguf *g, const char *key, size_t *len);
/* An ARRAY value of the given element type (any when type < 0), or NULL. */
const aios_gguf_value *aios_gguf_get_arr(const aios_gguf *g, const char *key, int type);

/* Element i of a numeric array as int64 / double (0 when i or the type does not fit). */
int64_t aios_gguf_arr_int(const aios_gguf_value *a, uint64_t i);
double aios_gguf_arr_f64(const aios_gguf_value *a, uint64_t i);

/* Tensors in file order; find by name (NULL when absent). */
int64_t aios_gguf_tensor_count(const aios_gguf *g);
const aios_gguf_tensor *aios_gguf_tensor_at(const aios_gguf *g, int64_t i);
const aios_gguf_tensor *aios_gguf_find_tensor(const aios_gguf *g, const char *name);

/* "u8", "string", "array", ... ("?" for unknown). */
const char *aios_gguf_type_name(uint32_t t);
/* ggml type name ("F32", "Q4_K", ...) or NULL when unknown. */
const char *aios_ggml_type_name(uint32_t t);
/* Values per block and bytes per block of a ggml type: 0 when unknown. */
int aios_ggml_type_size(uint32_t t, int *blk, int *bytes);

#endif
