/*
 * format/parquet_internal.h — shared internals of the Parquet reader, writer and verifier:
 * the file handle layout, codecs (pq_codec.c) and encodings (pq_encoding.c).
 */
#ifndef AIOS_FORMAT_PARQUET_INTERNAL_H
#define AIOS_FORMAT_PARQUET_INTERNAL_H

#include "core/internal.h"
#include "format/parquet.h"
#include "format/thrift.h"

typedef struct {
    int64_t num_rows;
    int64_t total_byte_size;
    aios_pq_chunk_info *chunks; /* (n_leaves) */
    /* per chunk: file range [start, start + total_compressed_size) */
} aios__pq_rg;

struct aios_parquet_file {
    aios_map map;              /* when opened by path */
    const uint8_t *data;
    size_t size;
    char *name;                /* for messages: path or "<memory>" */
    int n_nodes;
    aios_pq_node *nodes;
    int *child_idx;            /* all nodes' children, concatenated */
    int n_leaves;
    int *leaf_node;            /* (n_leaves) node index of each leaf */
    int64_t num_rows;
    int n_rg;
    aios__pq_rg *rgs;
    int n_kv;
    char **kv;                 /* (2 * n_kv) key, value (value may be NULL) */
    char *created_by;
    int64_t max_levels;        /* sanity cap on level entries of one column read */
};

/* ---- codecs (pq_codec.c) ---- */
/* Decompresses exactly `dst_n` bytes; `zctx` is an optional ZSTD_DCtx* cache (may point to NULL). */
aios_status aios__pq_decompress(aios_pq_codec codec, const uint8_t *src, size_t n, uint8_t *dst,
                                size_t dst_n, void **zctx);
void aios__pq_free_zctx(void *zctx);
/* Compresses into `out` (appended).  `cctx` caches a ZSTD_CCtx* (free with aios__pq_free_cctx). */
aios_status aios__pq_compress(aios_pq_codec codec, int level, const uint8_t *src, size_t n,
                              aios_buf *out, void **cctx);
void aios__pq_free_cctx(void *cctx);
uint32_t aios__pq_crc32(const uint8_t *p, size_t n);
unsigned long aios__pq_crc32_update(unsigned long crc, const uint8_t *p, size_t n);

/* ---- encodings (pq_encoding.c) ---- */
/* RLE / bit-packed hybrid decoder (levels, dictionary indices, booleans in RLE). */
typedef struct {
    const uint8_t *p, *end;
    int bw;
    uint32_t rle_left, rle_val;  /* current RLE run */
    uint32_t bp_left;            /* values left in the current bit-packed run */
    const uint8_t *bp;           /* bit-packed data */
    uint64_t bp_bitpos;
    int err;
} aios__rle_dec;
void aios__rle_init(aios__rle_dec *d, const uint8_t *p, size_t n, int bw);
/* Decodes `n` values into out (uint32); returns count decoded (< n on error/underflow). */
int64_t aios__rle_get_u32(aios__rle_dec *d, uint32_t *out, int64_t n);
int64_t aios__rle_get_i16(aios__rle_dec *d, int16_t *out, int64_t n);
/* Legacy BIT_PACKED levels (MSB first). */
aios_status aios__bitpacked_msb_i16(const uint8_t *p, size_t n, int bw, int16_t *out, int64_t count);
static inline int aios__bit_width(uint64_t max) {
    int b = 0;
    while (max) {
        b++;
        max >>= 1;
    }
    return b;
}

/* DELTA_BINARY_PACKED: decodes `count` values (int32 when is32, else int64) into out; sets
 * *used to the bytes consumed. */
aios_status aios__delta_decode(const uint8_t *p, size_t n, int is32, void *out, int64_t count,
                               size_t *used);

/* Encoders (writer). */
/* Appends RLE/bit-packed hybrid encoding of `vals` (no length prefix). */
aios_status aios__rle_encode(aios_buf *out, const uint32_t *vals, int64_t n, int bw);
aios_status aios__rle_encode_i16(aios_buf *out, const int16_t *vals, int64_t n, int bw);

#endif
