/*
 * memory/memory_internal.h — pieces of the memory store shared by its files (not public).
 *
 *   crc32c.c    CRC32C (Castagnoli), SSE4.2 instruction when present, table otherwise
 *   table.c     the in-memory row table: columns, string heap, id hash map, category dictionary
 *   search.c    filtered exact top-k (the dot product is the kernels' own, aios_kernels_dot)
 *   hnsw.c      the HNSW graph (Malkov & Yashunin, arXiv:1603.09320): insert, search, save/load,
 *               validate, renumber for compaction, reconnect unreachable nodes
 *   wal.c       write-ahead log records with per-record checksums
 *   manifest.c  the JSON manifest with its checksum line, replaced by atomic rename
 *   segment.c   Parquet segments (the seed's schema) through src/format/parquet.h
 *   store.c     the public aios_store_* API tying them together
 */
#ifndef AIOS_MEMORY_INTERNAL_H
#define AIOS_MEMORY_INTERNAL_H

#include "core/internal.h"
#include "kernels/kernels.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- checksums ---- */
/* CRC32C of p[0..n) continuing from `crc` (start with 0).  crc32c("123456789") = 0xE3069283. */
uint32_t aios__crc32c(uint32_t crc, const void *p, size_t n);
uint32_t aios__crc32c_ref(uint32_t crc, const void *p, size_t n); /* table version (tests) */
uint64_t aios__hash64(const void *p, size_t n);                  /* FNV-1a, for hash maps */

/* ---- row table ---- */
enum {
    MR_LIVE = 1,
    MR_EMB = 2,
    MR_META = 4,
    MR_Q = 8,
    MR_CONTENT = 16,
};

typedef struct {
    int32_t dim;          /* 0 until the first embedding fixes it */
    int64_t n, cap;       /* rows (live and dead) */
    int64_t n_live;
    float *emb;           /* (cap, dim); zeros for rows without embedding */
    float *inv_norm;      /* (cap) 1/|x|, 0 for no embedding or a zero vector */
    int64_t *ts;          /* (cap) */
    float *quality;       /* (cap) */
    uint8_t *flags;       /* (cap) MR_* */
    uint64_t *id_off;     /* (cap) offsets into heap: u32 length, bytes, NUL */
    uint64_t *content_off;
    uint32_t *cat, *src;  /* (cap) dictionary codes; 0 = null */
    aios_buf heap;
    /* id -> row + 1 (0 = empty), open addressing, linear probing, power-of-two size */
    uint32_t *slots;
    uint64_t n_slots, n_used;
    /* dictionary of category / source strings: code c >= 1 is dict[c - 1] */
    char **dict;
    uint32_t n_dict, dict_cap;
    uint32_t *dslots;     /* string -> code, same scheme */
    uint64_t n_dslots;
} mtable;

void aios__mt_init(mtable *t, int32_t dim);
void aios__mt_free(mtable *t);
/* Room for `rows` rows in all (exactly), e.g. the sum of a manifest's segment rows. */
aios_status aios__mt_reserve(mtable *t, int64_t rows);
/* Appends a row (live).  Does not check id uniqueness (callers do). */
aios_status aios__mt_append(mtable *t, const aios_memory *m);
/* Row of a live id, or -1. */
int64_t aios__mt_find(const mtable *t, const char *id, size_t len);
/* Marks a live row dead and drops it from the id map. */
void aios__mt_kill(mtable *t, int64_t row);
/* Fills *m with pointers into the table (valid until the next append). */
void aios__mt_row(const mtable *t, int64_t row, aios_memory *m);
/* Dictionary code of a string, 0 when it is not in the dictionary. */
uint32_t aios__mt_code(const mtable *t, const char *s);
static inline const char *aios__mt_str(const mtable *t, uint64_t off, uint32_t *len) {
    uint32_t l;
    memcpy(&l, t->heap.data + off, 4);
    if (len) *len = l;
    return (const char *)t->heap.data + off + 4;
}

/* ---- search ---- */

/* Compiled filter: codes instead of strings. */
typedef struct {
    int use_cat, use_src;
    uint32_t cat, src;
    int64_t since, until;
    float min_quality;
    int use_q;
} mfilter;
static inline bool aios__mf_pass(const mtable *t, const mfilter *f, int64_t r) {
    uint8_t fl = t->flags[r];
    if ((fl & (MR_LIVE | MR_EMB)) != (MR_LIVE | MR_EMB)) return false;
    if (t->ts[r] < f->since || t->ts[r] > f->until) return false;
    if (f->use_cat && t->cat[r] != f->cat) return false;
    if (f->use_src && t->src[r] != f->src) return false;
    if (f->use_q && (!(fl & MR_Q) || !(t->quality[r] >= f->min_quality))) return false;
    return true;
}
typedef struct {
    int64_t row;
    float score;
} mhit;
/* Exact top-k over rows [r0, r1): hits sorted best first, *n_out hits.  q is unit length. */
void aios__exact_search(const mtable *t, const float *q, const mfilter *f, int64_t r0, int64_t r1, int32_t k,
                        float threshold, int n_threads, mhit *hits, int32_t *n_out);
/* Sorts hits best first (score desc, row asc). */
void aios__hits_sort(mhit *h, int32_t n);

/* ---- HNSW ---- */
typedef struct hnsw hnsw;
aios_status aios__hnsw_new(const mtable *t, int M, int ef_construction, uint64_t seed, hnsw **out);
void aios__hnsw_free(hnsw *h);
int64_t aios__hnsw_rows(const hnsw *h);           /* rows [0, rows) are covered */
int aios__hnsw_m(const hnsw *h);
int aios__hnsw_efc(const hnsw *h);
/* Extends coverage to rows [0, t->n) (rows without embedding are skipped). n_threads >= 1. */
aios_status aios__hnsw_extend(hnsw *h, int n_threads);
/* Compaction: old's graph carried over to table t, whose rows are old's kept rows in the same
 * order (newrow[r] = new row of old row r, -1 = dropped).  Links to dropped nodes are replaced
 * from those nodes' own links (two-hop repair, heuristic selection); rows of t beyond old's
 * coverage are left to aios__hnsw_extend.  *repaired (may be NULL): node-layers repaired. */
aios_status aios__hnsw_renumber(const hnsw *old, const mtable *t, const int64_t *newrow, int n_threads, hnsw **out,
                                int64_t *repaired);
/* Filter-aware k-NN: navigates through every node, collects only rows passing f.  `skip` (-1 =
 * none) is a node treated as absent, neither visited nor expanded: a stored row then probes the
 * graph like an outside query.  *evals (may be NULL) receives the number of distances computed. */
void aios__hnsw_search(const hnsw *h, const float *q, const mfilter *f, int32_t k, int ef, float threshold,
                       mhit *hits, int32_t *n_out, int64_t skip, int64_t *evals);
aios_status aios__hnsw_save(const hnsw *h, const char *path, uint64_t *bytes, uint32_t *crc);
aios_status aios__hnsw_load(const mtable *t, const char *path, hnsw **out);
/* Validates links; writes problems to report; returns AIOS_ERR_CORRUPT on the first broken invariant. */
aios_status aios__hnsw_validate(const hnsw *h, FILE *report);
void aios__hnsw_set_table(hnsw *h, const mtable *t);

/* ---- WAL ---- */
enum { WAL_ADD = 1, WAL_DELETE = 2, WAL_UPDATE = 3 };
#define WAL_HEADER_SIZE 32
#define WAL_REC_HEADER 16
#define WAL_MAX_PAYLOAD (256u << 20)
/* Encodes one record (header + payload) appended to b. */
aios_status aios__wal_encode(aios_buf *b, int type, const aios_memory *m, const char *id_for_delete);
/* Encodes the file header for generation `gen`. */
void aios__wal_header(uint8_t out[WAL_HEADER_SIZE], uint64_t gen);
/* Replay callback: type and the decoded memory (for DELETE only memory_id is set). */
typedef aios_status (*wal_apply_fn)(void *user, int type, const aios_memory *m, uint64_t offset);
/* Parses a WAL image.  Stops at a torn tail (a record cut short): *valid_len = bytes of whole
 * records.  A complete record with a bad checksum, or a bad file header, is AIOS_ERR_CORRUPT. */
aios_status aios__wal_parse(const uint8_t *data, size_t size, uint64_t expect_gen, wal_apply_fn fn, void *user,
                            size_t *valid_len, int64_t *n_records, const char *name);

/* ---- manifest ---- */
typedef struct {
    char file[64];
    int64_t rows;
    uint64_t bytes;
    uint32_t crc;
    int64_t *dead;   /* sorted row numbers within the segment that are tombstoned */
    int64_t n_dead, cap_dead;
} mseg;
typedef struct {
    uint64_t version;
    int32_t dim;
    char model[1024];
    uint64_t wal_gen;
    uint64_t next_file; /* counter for new file names */
    mseg *segs;
    int64_t n_segs;
    char index_file[64];
    int64_t index_rows;
    uint64_t index_bytes;
    uint32_t index_crc;
    int index_m, index_efc, index_efs; /* index_efs: default ef_search (0 = none recorded) */
    int index_auto; /* AUTO searches: 0 = not measured (use the index), 1 = index, 2 = exact */
} manifest;
void aios__manifest_free(manifest *m);
aios_status aios__manifest_parse(const char *text, size_t len, manifest *m, const char *name);
aios_status aios__manifest_write(const char *dir, const manifest *m);
aios_status aios__manifest_read(const char *dir, manifest *m);
aios_status aios__fsync_dir(const char *dir);

/* ---- segments ---- */
/* Writes rows [r0, r1) (dead ones too, so row numbers stay stable) to a zstd Parquet file with
 * the seed's schema, fsynced.  Returns its size and CRC32C. */
aios_status aios__seg_write(const mtable *t, int64_t r0, int64_t r1, const char *path, int level, bool live_only,
                            uint64_t *bytes, uint32_t *crc);
/* Appends every row of a memories Parquet file (mapped or in memory) to t (all live); the pages
 * of a mapping are released from the resident set as its row groups are appended. */
aios_status aios__seg_read(mtable *t, const char *path, const aios_map *m);

#endif
