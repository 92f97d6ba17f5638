/*
 * format/parquet.h — AIOS's own Parquet reader and writer (the full internal interface).
 *
 * No Parquet library for C exists in Debian, so this is ours; pyarrow and DuckDB are its
 * judges (tests/py/test_parquet*.py).  The public subset (open / num_rows / close) is in
 * include/aios.h; everything else lives here for the library's own modules (weights loader,
 * memory store, LoRA cards) and the `aios parquet` command.
 *
 * ---------------------------------------------------------------------------------------
 * READING — example: the embeddings of a memories file, row group by row group
 *
 *     aios_parquet_file *pf;
 *     AIOS_TRY(aios_parquet_open("memories.parquet", &pf));
 *     int leaf = aios_pq_find_leaf(pf, "embedding");      // or "embedding.list.element"
 *     for (int rg = 0; rg < aios_pq_num_row_groups(pf); rg++) {
 *         aios_pq_column col;
 *         AIOS_TRY(aios_pq_read_column(pf, rg, leaf, &col));
 *         const float *v = col.values;                      // (num_slots) spaced values
 *         for (int64_t r = 0; r < col.num_rows; r++) {
 *             if (col.row_valid && !col.row_valid[r]) continue;        // null list
 *             for (int64_t i = col.offsets[r]; i < col.offsets[r + 1]; i++)
 *                 use(v[i], col.valid ? col.valid[i] : 1);             // element i
 *         }
 *         aios_pq_column_free(&col);
 *     }
 *     aios_parquet_close(pf);
 *
 * The model of a column read (Dremel levels, plus a row view for the common shapes):
 *  - Every leaf column has `num_levels` level entries with definition levels `def` (NULL when
 *    max_def == 0: all entries defined) and repetition levels `rep` (NULL when max_rep == 0).
 *  - A SLOT is a level entry at which a value could sit in its innermost list (or its row when
 *    the leaf is not inside a list): an entry with def >= slot_def.  For scalar columns
 *    (max_rep == 0) slot_def == 0, so slots == level entries == rows.
 *  - `values` are SPACED over slots: one entry per slot; a null slot holds 0 / an empty
 *    (NULL, 0) byte string and valid[slot] == 0.  `valid` is NULL when no slot is null.
 *  - Leaves with max_rep == 1 (LIST<scalar>, the usual case) also get a row view:
 *    `offsets` (num_rows + 1) slot ranges per row and `row_valid` (NULL = no null lists).
 *    Deeper nesting (max_rep >= 2) is read through `def` / `rep` only.
 *  - BYTE_ARRAY / FIXED_LEN_BYTE_ARRAY values come as `bytes` (ptr, len) pairs.  For pages
 *    stored uncompressed with PLAIN encoding the pointers point INTO THE FILE MAPPING (zero
 *    copy; `zero_copy` is 1 when every pointer does) and stay valid until
 *    aios_parquet_close(); otherwise they point into buffers owned by the column and stay
 *    valid until aios_pq_column_free().
 *
 * Thread safety: an open file is read-only; aios_pq_read_column() may be called from several
 * threads at once on the same file (each call uses its own buffers).
 *
 * ---------------------------------------------------------------------------------------
 * WRITING — example: a two-column table with a list
 *
 *     aios_pq_field f[] = {
 *         {.name = "id", .parent = -1, .kind = AIOS_PQ_K_STRING},
 *         {.name = "vec", .parent = -1, .kind = AIOS_PQ_K_LIST, .nullable = 1},
 *         {.name = "element", .parent = 1, .kind = AIOS_PQ_K_FLOAT},
 *     };
 *     aios_pq_writer_params wp = aios_pq_writer_default_params();      // zstd level 3
 *     aios_pq_writer *w;
 *     AIOS_TRY(aios_pq_writer_open("out.parquet", f, 3, &wp, &w));
 *     // per batch of n rows, one call per leaf, then end_batch:
 *     aios_pq_batch b = {.num_rows = n, .bytes = ids};                 // leaf 0: "id"
 *     AIOS_TRY(aios_pq_writer_write(w, 0, &b));
 *     aios_pq_batch l = {.num_rows = n, .offsets = offs, .values = floats};   // leaf 1
 *     AIOS_TRY(aios_pq_writer_write(w, 1, &l));
 *     AIOS_TRY(aios_pq_writer_end_batch(w, n));
 *     AIOS_TRY(aios_pq_writer_close(w));     // writes the footer; frees w (also on error)
 *
 * Fields: a flat array, parents before children (`parent` = index in the array, -1 = top
 * level).  A LIST field has exactly one child, its element; it is written as the standard
 * three-level list (`<name> (LIST) { repeated group list { <element> } }`, pyarrow's naming).
 * A STRUCT field has one or more children.  Leaves are numbered in schema order (depth first),
 * as the reader numbers them.
 *
 * Memory is bounded: encoded pages are buffered per row group and a row group is flushed
 * when it reaches row_group_rows rows or row_group_bytes encoded bytes (checked at
 * end_batch, so a row group can overshoot by up to one batch), so a writer holds about one
 * row group of compressed data plus one batch.
 *
 * Errors: every function returns aios_status and sets aios_last_error() to a message like
 * "parquet: f.parquet: column 'a.b' row group 2: page header at offset 1234: truncated".
 */
#ifndef AIOS_FORMAT_PARQUET_H
#define AIOS_FORMAT_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#include "aios.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Parquet enums (values are the format's Thrift numbers) ------------------------- */
typedef enum {
    AIOS_PQ_BOOLEAN = 0,
    AIOS_PQ_INT32 = 1,
    AIOS_PQ_INT64 = 2,
    AIOS_PQ_INT96 = 3, /* legacy timestamps; read as 12 raw bytes */
    AIOS_PQ_FLOAT = 4,
    AIOS_PQ_DOUBLE = 5,
    AIOS_PQ_BYTE_ARRAY = 6,
    AIOS_PQ_FIXED_LEN_BYTE_ARRAY = 7,
} aios_pq_type;

typedef enum { AIOS_PQ_REQUIRED = 0, AIOS_PQ_OPTIONAL = 1, AIOS_PQ_REPEATED = 2 } aios_pq_repetition;

typedef enum {
    AIOS_PQ_UNCOMPRESSED = 0,
    AIOS_PQ_SNAPPY = 1,
    AIOS_PQ_GZIP = 2,
    AIOS_PQ_LZO = 3,    /* not supported */
    AIOS_PQ_BROTLI = 4, /* not supported */
    AIOS_PQ_LZ4 = 5,    /* Hadoop-framed LZ4; not supported */
    AIOS_PQ_ZSTD = 6,
    AIOS_PQ_LZ4_RAW = 7, /* read only */
} aios_pq_codec;

typedef enum {
    AIOS_PQ_PLAIN = 0,
    AIOS_PQ_PLAIN_DICTIONARY = 2,
    AIOS_PQ_RLE = 3,
    AIOS_PQ_BIT_PACKED = 4,
    AIOS_PQ_DELTA_BINARY_PACKED = 5,
    AIOS_PQ_DELTA_LENGTH_BYTE_ARRAY = 6,
    AIOS_PQ_DELTA_BYTE_ARRAY = 7,
    AIOS_PQ_RLE_DICTIONARY = 8,
    AIOS_PQ_BYTE_STREAM_SPLIT = 9,
} aios_pq_encoding;

/* Logical type of a node, from LogicalType or, for old files, ConvertedType. */
typedef enum {
    AIOS_PQ_L_NONE = 0,
    AIOS_PQ_L_STRING,
    AIOS_PQ_L_LIST,
    AIOS_PQ_L_MAP,
    AIOS_PQ_L_ENUM,
    AIOS_PQ_L_DECIMAL,
    AIOS_PQ_L_DATE,
    AIOS_PQ_L_TIME,
    AIOS_PQ_L_TIMESTAMP,
    AIOS_PQ_L_INTEGER,
    AIOS_PQ_L_JSON,
    AIOS_PQ_L_BSON,
    AIOS_PQ_L_UUID,
    AIOS_PQ_L_FLOAT16,
    AIOS_PQ_L_UNKNOWN, /* "always null" */
} aios_pq_logical;

typedef enum { AIOS_PQ_MILLIS = 0, AIOS_PQ_MICROS = 1, AIOS_PQ_NANOS = 2 } aios_pq_time_unit;

/* ---- Schema tree ---------------------------------------------------------------------- */
typedef struct aios_pq_node {
    const char *name;            /* field name ("schema" or similar for the root) */
    const char *path;            /* dotted path from the root: "metadata.category",
                                    "embedding.list.element"; "" for the root */
    int index;                   /* this node's index (0 = root) */
    int parent;                  /* parent node index, -1 for the root */
    int n_children;
    const int *children;         /* (n_children) node indices */
    aios_pq_repetition repetition;
    int is_leaf;
    int leaf;                    /* leaf (column) index if is_leaf, else -1 */
    /* leaves only: */
    aios_pq_type type;
    int type_length;             /* FIXED_LEN_BYTE_ARRAY width */
    /* logical annotation (any node): */
    aios_pq_logical logical;
    int converted_type;          /* raw ConvertedType, -1 when absent */
    aios_pq_time_unit unit;      /* TIME / TIMESTAMP */
    int utc;                     /* TIME / TIMESTAMP isAdjustedToUTC */
    int precision, scale;        /* DECIMAL */
    int bit_width, is_signed;    /* INTEGER */
    int16_t def_level;           /* definition level when this node is present */
    int16_t rep_level;           /* repetition level of this node */
} aios_pq_node;

/* ---- Files (open / close are in aios.h) ----------------------------------------------- */

/* aios_parquet_open / aios_parquet_open_memory / aios_parquet_num_rows / aios_parquet_verify /
 * aios_parquet_close are declared in include/aios.h. */

/* The whole file image (the mapping): zero-copy byte pointers point into [data, data+size). */
const uint8_t *aios_pq_file_data(const aios_parquet_file *pf, size_t *size);

int aios_pq_num_nodes(const aios_parquet_file *pf);
const aios_pq_node *aios_pq_node_at(const aios_parquet_file *pf, int node); /* NULL if out of range */
int aios_pq_num_leaves(const aios_parquet_file *pf);
const aios_pq_node *aios_pq_leaf(const aios_parquet_file *pf, int leaf);   /* NULL if out of range */
/* Leaf index by path: the exact dotted path ("embedding.list.element"), or the path of any node
 * that has exactly one leaf below it ("embedding", "shape").  -1 when not found/ambiguous. */
int aios_pq_find_leaf(const aios_parquet_file *pf, const char *path);
/* Node index by exact dotted path ("" = root); -1 when not found. */
int aios_pq_find_node(const aios_parquet_file *pf, const char *path);

int aios_pq_num_row_groups(const aios_parquet_file *pf);
int64_t aios_pq_row_group_num_rows(const aios_parquet_file *pf, int rg); /* -1 if out of range */

/* Footer key-value metadata (e.g. "ARROW:schema", our own "aios.*" keys).  Value may be NULL. */
int aios_pq_num_kv(const aios_parquet_file *pf);
aios_status aios_pq_kv_at(const aios_parquet_file *pf, int i, const char **key, const char **value);
const char *aios_pq_kv_get(const aios_parquet_file *pf, const char *key); /* NULL if absent */
const char *aios_pq_created_by(const aios_parquet_file *pf);              /* "" if absent */

/* Column chunk facts from the footer (row-group skipping: compare min/max before reading). */
typedef struct {
    aios_pq_codec codec;
    int64_t num_values;              /* level entries in the chunk */
    int64_t total_compressed_size;   /* bytes in the file */
    int64_t total_uncompressed_size;
    int64_t data_page_offset;
    int64_t dictionary_page_offset;  /* -1 when none */
    uint32_t encodings;              /* bit (1u << aios_pq_encoding) for each encoding listed */
    int has_stats;
    int has_min_max;                 /* min/max are the raw PLAIN bytes of the value */
    const uint8_t *min, *max;        /* point into the file's footer copy */
    size_t min_len, max_len;
    int has_null_count;
    int64_t null_count;
    int has_distinct_count;
    int64_t distinct_count;
} aios_pq_chunk_info;
/* NULL when rg / leaf is out of range.  Valid until aios_parquet_close(). */
const aios_pq_chunk_info *aios_pq_chunk(const aios_parquet_file *pf, int rg, int leaf);
/* A chunk's first byte: its dictionary page when that comes first, else its first data page.
 * The chunk is [start, start + total_compressed_size), checked against the file at open. */
static inline uint64_t aios_pq_chunk_start(const aios_pq_chunk_info *ci) {
    return ci->dictionary_page_offset > 0 && ci->dictionary_page_offset < ci->data_page_offset
               ? (uint64_t)ci->dictionary_page_offset
               : (uint64_t)ci->data_page_offset;
}

/* ---- Reading columns ------------------------------------------------------------------ */
typedef struct {
    const uint8_t *ptr; /* NULL only for null slots */
    size_t len;
} aios_pq_bytes;

typedef struct aios_pq_column {
    int leaf;
    const aios_pq_node *node;   /* the leaf node */
    aios_pq_type type;
    int type_length;
    int16_t max_def, max_rep, slot_def;
    int64_t num_rows;
    int64_t num_levels;
    int16_t *def;               /* (num_levels) or NULL when max_def == 0 */
    int16_t *rep;               /* (num_levels) or NULL when max_rep == 0 */
    int64_t num_slots;          /* == num_rows when max_rep == 0 */
    /* (num_slots) spaced values: uint8_t 0/1 for BOOLEAN, int32_t, int64_t, float, double,
     * 12-byte INT96, type_length bytes each for FIXED_LEN_BYTE_ARRAY; NULL for BYTE_ARRAY */
    void *values;
    aios_pq_bytes *bytes;       /* (num_slots) for BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY, else NULL */
    uint8_t *valid;             /* (num_slots) 1 = value present; NULL when null_count == 0 */
    int64_t null_count;         /* null slots */
    int64_t *offsets;           /* max_rep == 1: (num_rows + 1) slot range of each row; else NULL */
    uint8_t *row_valid;         /* max_rep == 1: (num_rows) 1 = the list itself is non-null; NULL
                                   when every list is non-null (or max_rep != 1) */
    int zero_copy;              /* 1 when every non-null bytes[i].ptr points into the mapping */
    void *priv_;                /* owned buffers; freed by aios_pq_column_free */
} aios_pq_column;

/* Reads one leaf column of one row group (rg >= 0), or of the whole file (rg == -1,
 * row groups concatenated).  Decodes every page (checks CRCs when present).  On error `out`
 * is left freed (safe to pass to aios_pq_column_free).  Thread-safe per file. */
aios_status aios_pq_read_column(aios_parquet_file *pf, int rg, int leaf, aios_pq_column *out);
void aios_pq_column_free(aios_pq_column *col);

/* aios_parquet_verify (aios.h) checks the whole file: decodes every page of every column,
 * CRCs if present, level and value counts against the footer, statistics (min/max bounds,
 * null_count) against the decoded values, UTF-8 of STRING values and of field names. */

/* ---- Writing -------------------------------------------------------------------------- */
typedef enum {
    AIOS_PQ_K_BOOL = 1,
    AIOS_PQ_K_INT32,
    AIOS_PQ_K_INT64,
    AIOS_PQ_K_FLOAT,
    AIOS_PQ_K_DOUBLE,
    AIOS_PQ_K_STRING,   /* BYTE_ARRAY (STRING) */
    AIOS_PQ_K_BINARY,   /* BYTE_ARRAY */
    AIOS_PQ_K_FIXED,    /* FIXED_LEN_BYTE_ARRAY(type_length) */
    AIOS_PQ_K_TIMESTAMP_MS, /* INT64 TIMESTAMP(MILLIS, isAdjustedToUTC=false) */
    AIOS_PQ_K_TIMESTAMP_US,
    AIOS_PQ_K_TIMESTAMP_NS,
    AIOS_PQ_K_LIST,     /* group (LIST) with one child field: the element */
    AIOS_PQ_K_STRUCT,   /* group with one or more child fields */
} aios_pq_kind;

typedef struct {
    const char *name;
    int parent;          /* index of the parent field in the array, -1 = top level */
    aios_pq_kind kind;
    int nullable;        /* OPTIONAL (1) or REQUIRED (0) */
    int type_length;     /* AIOS_PQ_K_FIXED only */
    /* BYTE_ARRAY leaves only: store this column uncompressed, PLAIN, one value per page, with
     * each value's bytes starting at a file offset that is a multiple of params.align, so a
     * reader can use them in place from a mapping (weights).  Overrides codec/dictionary. */
    int plain_aligned;
    int no_dictionary;   /* never dictionary-encode this leaf */
} aios_pq_field;

typedef struct {
    aios_pq_codec codec;       /* UNCOMPRESSED, SNAPPY, GZIP or ZSTD (default ZSTD) */
    int level;                 /* zstd 1..22 / gzip 1..9; 0 = codec default (zstd 3, gzip 6) */
    int64_t row_group_rows;    /* max rows per row group (default 1 << 20) */
    int64_t row_group_bytes;   /* flush a row group past this many encoded bytes (64 MiB) */
    int64_t page_bytes;        /* target uncompressed data page size (default 1 MiB) */
    int dictionary;            /* dictionary-encode BYTE_ARRAY leaves while the dictionary stays
                                  small (default 1) */
    int64_t dictionary_max_bytes; /* fall back to PLAIN past this dictionary size (1 MiB) */
    int statistics;            /* min/max/null_count per column chunk (default 1) */
    int page_crc;              /* write page CRC32s (default 1) */
    int data_page_v2;          /* write DATA_PAGE_V2 instead of v1 (default 0) */
    int align;                 /* alignment for plain_aligned leaves (default 64, power of 2) */
    const char *created_by;    /* default "aios version 0.1.0" */
} aios_pq_writer_params;

/* One batch of one leaf, in either form:
 *  Levels form (def != NULL, or rep != NULL with num_levels > 0):
 *    num_levels entries of def / rep (rep may be NULL when max_rep == 0); values spaced over
 *    slots exactly as aios_pq_column (a read column can be written back as is).
 *  Row form (def == NULL, for max_rep <= 1; the only form for required flat leaves):
 *    max_rep == 0: one slot per row; `valid` (NULL = all present) marks null leaves; a null
 *      marks the leaf itself (if the leaf is required, its nearest optional ancestor).
 *    max_rep == 1: `offsets` (num_rows + 1) slot ranges, `row_valid` (NULL = no null lists),
 *      `valid` per slot (NULL = no null elements).
 *  Values: `values` (BOOL as uint8_t, INT32/INT64/timestamps, FLOAT, DOUBLE, FIXED as
 *  contiguous type_length-byte items) or `bytes` for STRING/BINARY (and optionally FIXED). */
typedef struct {
    int64_t num_rows;
    int64_t num_levels;
    const int16_t *def, *rep;
    const uint8_t *valid;
    const int64_t *offsets;
    const uint8_t *row_valid;
    const void *values;
    const aios_pq_bytes *bytes;
} aios_pq_batch;

typedef struct aios_pq_writer aios_pq_writer;

aios_pq_writer_params aios_pq_writer_default_params(void);
/* Creates `path` (truncating) and checks the schema.  `fields` is copied. */
aios_status aios_pq_writer_open(const char *path, const aios_pq_field *fields, int n_fields,
                                const aios_pq_writer_params *params, aios_pq_writer **out);
int aios_pq_writer_num_leaves(const aios_pq_writer *w);
/* Leaf index by path as in aios_pq_find_leaf ("embedding" or "embedding.list.element"). */
int aios_pq_writer_find_leaf(const aios_pq_writer *w, const char *path);
/* Schema node of a leaf (levels and path), as the reader will see it. */
const aios_pq_node *aios_pq_writer_leaf(const aios_pq_writer *w, int leaf);
/* Adds a footer key-value pair (copied). */
aios_status aios_pq_writer_set_kv(aios_pq_writer *w, const char *key, const char *value);
/* Appends a batch to one leaf.  Call once per leaf, then aios_pq_writer_end_batch(). */
aios_status aios_pq_writer_write(aios_pq_writer *w, int leaf, const aios_pq_batch *b);
/* Ends a batch of `num_rows` rows: every leaf must have received exactly that many rows. */
aios_status aios_pq_writer_end_batch(aios_pq_writer *w, int64_t num_rows);
/* Flushes the current row group now (no-op when empty). */
aios_status aios_pq_writer_flush_row_group(aios_pq_writer *w);
/* Flushes, writes the footer, closes the file and frees `w` (always, even on error). */
aios_status aios_pq_writer_close(aios_pq_writer *w);
/* Frees `w` without finishing the file (the partial file is removed).  NULL is a no-op. */
void aios_pq_writer_abort(aios_pq_writer *w);

/* ---- Helpers ------------------------------------------------------------------------- */
const char *aios_pq_type_name(aios_pq_type t);
const char *aios_pq_codec_name(aios_pq_codec c);
const char *aios_pq_encoding_name(aios_pq_encoding e);
/* "zstd", "snappy", "gzip", "none"/"uncompressed", "lz4_raw" -> codec; -1 when unknown. */
int aios_pq_codec_parse(const char *s);

#ifdef __cplusplus
}
#endif
#endif /* AIOS_FORMAT_PARQUET_H */
