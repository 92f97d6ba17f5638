/*
 * aios.h — the public interface of AIOS, a local AI engine in C11.
 *
 * AIOS turns text into embeddings, stores and recalls memories, generates text
 * autoregressively and by masked diffusion, and adapts models with LoRA.  Everything it
 * stores (weights, memories, LoRA cards) is plain Parquet that pyarrow and DuckDB open.
 *
 * A worked example — read a Parquet file's schema and row count:
 *
 *     #include <aios.h>
 *
 *     aios_parquet_file *pf = NULL;
 *     if (aios_parquet_open("memories.parquet", &pf) != AIOS_OK) {
 *         fprintf(stderr, "error: %s\n", aios_last_error());
 *         return 1;
 *     }
 *     printf("%lld rows\n", (long long)aios_parquet_num_rows(pf));
 *     aios_parquet_close(pf);
 *
 * Conventions (apply to every function below unless it says otherwise):
 *  - Functions that can fail return an `aios_status`: AIOS_OK (0) or a negative code.
 *    The human-readable detail of the last failure on the calling thread is returned by
 *    aios_last_error(); it names the file/offset/field at fault.
 *  - Handles are opaque; each `aios_x_open` has an `aios_x_close`/`aios_x_free`, and passing
 *    NULL to a free function is a no-op.
 *  - Options come in a params struct initialised by `aios_x_default_params()`.
 *  - The library never exits or aborts on bad data; asserts guard only its own invariants.
 *  - Unless stated, a handle may be used from one thread at a time; distinct handles are
 *    independent.  Read-only queries on an opened file are thread-safe where noted.
 */
#ifndef AIOS_H
#define AIOS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIOS_VERSION_MAJOR 0
#define AIOS_VERSION_MINOR 1
#define AIOS_VERSION_PATCH 0
#define AIOS_VERSION_STRING "0.1.0"

/* ======================================================================================
 * Status codes.  One X-macro list, append-only: codes are never renumbered or reused.
 * ====================================================================================== */
#define AIOS_STATUS_LIST(X)                                                       \
    X(AIOS_OK, 0, "ok")                                                           \
    X(AIOS_ERR_INVALID_ARG, -1, "invalid argument")                               \
    X(AIOS_ERR_NOMEM, -2, "out of memory")                                        \
    X(AIOS_ERR_IO, -3, "input/output error")                                      \
    X(AIOS_ERR_FORMAT, -4, "malformed data")                                      \
    X(AIOS_ERR_UNSUPPORTED, -5, "unsupported feature")                            \
    X(AIOS_ERR_NOT_FOUND, -6, "not found")                                        \
    X(AIOS_ERR_RANGE, -7, "value out of range")                                   \
    X(AIOS_ERR_CORRUPT, -8, "corrupt data (checksum or consistency check failed)") \
    X(AIOS_ERR_BUSY, -9, "resource busy or locked")                               \
    X(AIOS_ERR_CONFIG, -10, "invalid configuration")                              \
    X(AIOS_ERR_INTERNAL, -11, "internal error")                                   \
    X(AIOS_ERR_ENCODING, -12, "invalid text encoding")                            \
    X(AIOS_ERR_EXISTS, -13, "already exists")                                     \
    X(AIOS_ERR_SHAPE, -14, "tensor shape mismatch")                               \
    X(AIOS_ERR_CANCELLED, -15, "cancelled")

typedef enum {
#define AIOS__STATUS_ENUM(name, value, text) name = value,
    AIOS_STATUS_LIST(AIOS__STATUS_ENUM)
#undef AIOS__STATUS_ENUM
} aios_status;

/* Short fixed description of a status code ("malformed data"); never NULL. */
const char *aios_status_str(aios_status s);
/* Symbolic name of a status code ("AIOS_ERR_FORMAT"); never NULL. */
const char *aios_status_name(aios_status s);
/* Detail of the last failure on the calling thread, e.g.
 * "parquet: x.parquet: page header at offset 1234: truncated".  Never NULL; empty if none.
 * The pointer stays valid until the next failing call on this thread. */
const char *aios_last_error(void);
/* Clears the calling thread's last error. */
void aios_clear_error(void);

/* ======================================================================================
 * Logging.  Level from AIOS_LOG=debug|info|warn|error (default warn), messages on stderr.
 * ====================================================================================== */
typedef enum { AIOS_LOG_DEBUG = 0, AIOS_LOG_INFO = 1, AIOS_LOG_WARN = 2, AIOS_LOG_ERROR = 3, AIOS_LOG_OFF = 4 } aios_log_level;
void aios_log_set_level(aios_log_level level);
aios_log_level aios_log_get_level(void);
/* Parses "debug", "info", "warn"/"warning", "error", "off"; returns -1 when unknown. */
int aios_log_level_parse(const char *s);
void aios_log(aios_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ======================================================================================
 * CPU features, detected once at first call (thread-safe).
 * ====================================================================================== */
typedef struct {
    int sse42, avx, avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avxvnni, neon;
    int n_cores; /* online logical processors */
} aios_cpu_info;
const aios_cpu_info *aios_cpu(void);
/* Writes "avx2 fma f16c" style list into buf; returns buf. */
char *aios_cpu_describe(char *buf, size_t n);

/* ======================================================================================
 * Configuration (the prototype's config/config.py: same sections, fields, defaults).
 * Sources, lowest to highest priority: defaults, YAML file (config.yaml, config/config.yaml,
 * ~/.aios/config.yaml, or an explicit path), environment (AIOS_MODEL_PATH, AIOS_DEVICE,
 * AIOS_STORAGE_PATH, AIOS_BATCH_SIZE and the prototype's MODEL_PATH, DEVICE, STORAGE_PATH,
 * BATCH_SIZE).  Invalid values are rejected with a message naming the field.
 * ====================================================================================== */
typedef struct {
    struct {
        int num_steps;            /* 50 */
        int distilled_steps;      /* 4 */
        char noise_schedule[16];  /* "cosine" | "linear" */
        char sampler_type[32];    /* "discrete" */
    } diffusion;
    struct {
        char model_path[1024];    /* "" = none */
        char device[8];           /* "cpu" | "cuda" | "auto" */
        int use_quantization;     /* 1 */
        int quantization_bits;    /* 2 | 4 | 8 (default 8) */
        int max_batch_size;       /* 16 */
    } model;
    struct {
        char storage_path[1024];  /* "~/.aios/memory" (tilde expanded) */
        int compression_level;    /* 1..22, default 3 */
        int use_float16;          /* 1 */
    } storage;
    struct {
        int batch_size;           /* 16 */
        int max_concurrent;       /* 4 */
        int cache_size;           /* 10000 */
        int cache_ttl;            /* 3600 seconds */
    } performance;
    struct {
        double uncertainty_threshold; /* 0.7, in [0, 1] */
        int enable_l0_composition;    /* 1 */
        int enable_l1_controlnet;     /* 1 */
        int enable_l2_lora;           /* 1 */
        int enable_l3_finetune;       /* 0 */
    } evolution;
    char loaded_from[1024];           /* path of the YAML file read, "" if none */
} aios_config;

/* Fills `cfg` with the defaults. */
void aios_config_defaults(aios_config *cfg);
/* Loads defaults, then the YAML file (`path`, or the first of the search paths that exists when
 * `path` is NULL), then the environment.  Returns AIOS_ERR_CONFIG with a message naming the
 * field for invalid values, AIOS_ERR_NOT_FOUND if an explicit `path` does not exist. */
aios_status aios_config_load(aios_config *cfg, const char *path);
/* Prints every field as `section.field = value   # source` (default / file path / env VAR). */
aios_status aios_config_print(const char *path, FILE *out);

/* ======================================================================================
 * Parquet (ours: no Parquet library exists in Debian; pyarrow and DuckDB are its judges).
 * See src/format/parquet.h for the full reader/writer interface.
 * ====================================================================================== */
typedef struct aios_parquet_file aios_parquet_file;
aios_status aios_parquet_open(const char *path, aios_parquet_file **out);
int64_t aios_parquet_num_rows(const aios_parquet_file *pf);
void aios_parquet_close(aios_parquet_file *pf);

/* ====================================================================================== */
/* (sections below are added by the tokenizer, model, encode, memory, generate and diffuse
 *  modules) */

/* ======================================================================================
 * Memory store (the seed's ArrowStorage).  A store is a directory:
 *   MANIFEST            JSON + CRC32C line; replaced atomically (write temp, fsync, rename, fsync dir)
 *   seg-NNNNNN.parquet  immutable zstd Parquet segments, the seed's schema (memory_id, timestamp,
 *                       content, embedding list<float32>, metadata struct<category, source,
 *                       quality_score>); pyarrow and DuckDB read them
 *   wal-NNNNNN.log      write-ahead log of recent adds/updates/deletes, CRC32C per record
 *   hnsw-NNNNNN.idx     HNSW graph (Malkov & Yashunin) over the rows, with a checksum
 *   LOCK                flock()ed by the one writer; a second writer gets AIOS_ERR_BUSY
 * Deletes and updates are tombstones until aios_store_compact() rewrites the segments.
 * Readers (params.read_only) take no lock and see the snapshot that was committed when they
 * opened.  A handle is used by one thread at a time.  docs/memory.md describes the format.
 *
 *     aios_store_params sp = aios_store_default_params();
 *     sp.create = 1; sp.dim = 384;
 *     aios_store *st;  if (aios_store_open("mem", &sp, &st)) { ... aios_last_error() ... }
 *     aios_memory m = {0};  m.content = "hello"; m.embedding = vec; m.dim = 384;
 *     m.timestamp_us = AIOS_TIMESTAMP_NOW;
 *     char id[AIOS_MEMORY_ID_MAX];  aios_store_add(st, &m, id);    // durable on return
 *     aios_search_params q = aios_search_default_params();  q.top_k = 5;
 *     aios_search_hit hits[5];  int32_t n;  aios_store_search(st, vec, 384, &q, hits, &n);
 *     aios_store_close(st);
 * ====================================================================================== */
#define AIOS_MEMORY_ID_MAX 256               /* ids are 1..255 bytes of UTF-8, no NUL */
#define AIOS_TIMESTAMP_NOW INT64_MIN         /* aios_memory.timestamp_us: use the current time */

typedef struct aios_store aios_store;

/* One memory.  Strings are NUL-terminated UTF-8; NULL means a null value in the Parquet file. */
typedef struct {
    const char *memory_id;   /* add: NULL or "" generates "mem_" + 16 hex digits */
    int64_t timestamp_us;    /* microseconds since the Unix epoch, UTC (timestamp[us]) */
    const char *content;     /* NULL = null */
    const float *embedding;  /* NULL = null (the memory is stored but never found by search) */
    int32_t dim;             /* floats at `embedding`; must equal the store's dimension */
    int has_metadata;        /* 0: the metadata struct is null (the three fields are ignored) */
    const char *category;    /* NULL = null */
    const char *source;      /* NULL = null */
    int has_quality;         /* 0: quality_score is null */
    float quality_score;
} aios_memory;

/* Turns text into an embedding of `dim` floats (the store's model); used by aios_store_add_text
 * and aios_store_search_text.  Plug in an encoder (e.g. the engine's aios_encode). */
typedef aios_status (*aios_embed_fn)(void *user, const char *text, float *out, int32_t dim);

typedef struct {
    int create;              /* 1: create the store when the directory holds none (default 0) */
    int read_only;           /* 1: open a reader: no lock, a consistent snapshot (default 0) */
    int32_t dim;             /* create: embedding dimension; 0 = fixed by the first embedding */
    const char *model;       /* create: embedding model (path/name) recorded in the manifest */
    int sync;                /* 1 (default): fsync before a write returns.  0 only for bulk tests */
    int64_t checkpoint_rows; /* WAL records before they move into a Parquet segment (65536) */
    int64_t hnsw_min_rows;   /* live embedded rows from which an HNSW index is kept (20000) */
    int hnsw_m;              /* HNSW links per node above layer 0 (16; layer 0 gets 2*M) */
    int hnsw_ef_construction;/* candidate list while building (200) */
    int compression_level;   /* zstd level of segments (3) */
    aios_embed_fn embed;     /* optional text encoder */
    void *embed_user;
} aios_store_params;
aios_store_params aios_store_default_params(void);

/* Opens (or with params.create, creates) the store in directory `dir`.  A writer takes the
 * directory's lock: AIOS_ERR_BUSY when another writer holds it.  Opening replays the WAL (a torn
 * final record from a crash is dropped: it was never acknowledged) and verifies the checksums of
 * the manifest, segments and WAL; corruption gives AIOS_ERR_CORRUPT naming the file and offset.
 * `params` may be NULL (defaults).  Free with aios_store_close. */
aios_status aios_store_open(const char *dir, const aios_store_params *params, aios_store **out);
/* Persists the HNSW index when it has grown, releases the lock, frees.  NULL is a no-op. */
void aios_store_close(aios_store *st);

/* Adds one memory; durable (fsynced) when it returns AIOS_OK.  `id_out` (may be NULL) receives
 * the id.  AIOS_ERR_EXISTS when the id is live already; AIOS_ERR_SHAPE on a dimension mismatch. */
aios_status aios_store_add(aios_store *st, const aios_memory *m, char id_out[AIOS_MEMORY_ID_MAX]);
/* Adds n memories with one fsync (all or, after a crash, a prefix of them).  ids may be NULL. */
aios_status aios_store_add_batch(aios_store *st, const aios_memory *m, size_t n, char (*ids)[AIOS_MEMORY_ID_MAX]);
/* Like aios_store_add with m->embedding computed from m->content by params.embed. */
aios_status aios_store_add_text(aios_store *st, const aios_memory *m, char id_out[AIOS_MEMORY_ID_MAX]);
/* Finds a live memory.  The pointers in *out stay valid until the next write or close.
 * AIOS_ERR_NOT_FOUND when absent. */
aios_status aios_store_get(aios_store *st, const char *memory_id, aios_memory *out);
/* Deletes (tombstones) a memory; durable on return.  AIOS_ERR_NOT_FOUND when absent. */
aios_status aios_store_delete(aios_store *st, const char *memory_id);
/* Replaces the memory with id m->memory_id (must exist) atomically; durable on return. */
aios_status aios_store_update(aios_store *st, const aios_memory *m);
/* Iterates live memories in storage order: start with *cursor = 0; AIOS_ERR_NOT_FOUND at the end. */
aios_status aios_store_next(aios_store *st, int64_t *cursor, aios_memory *out);

typedef enum { AIOS_SEARCH_AUTO = 0, AIOS_SEARCH_EXACT = 1, AIOS_SEARCH_HNSW = 2 } aios_search_mode;
typedef struct {
    int32_t top_k;           /* 10 */
    float threshold;         /* minimum cosine similarity (-2 = none) */
    const char *category;    /* filters (NULL = any); all are applied before ranking */
    const char *source;
    int64_t since_us, until_us; /* timestamp range, inclusive (INT64_MIN / INT64_MAX = open) */
    float min_quality;       /* quality_score >= min_quality (-INFINITY = any; null fails) */
    aios_search_mode mode;   /* AUTO: HNSW when the index exists, exact otherwise */
    int ef_search;           /* HNSW candidate list (0 = max(64, 2 * top_k)) */
    int n_threads;           /* exact search threads (0 = all cores) */
} aios_search_params;
aios_search_params aios_search_default_params(void);
typedef struct {
    aios_memory memory;      /* valid until the next write or close */
    float score;             /* cosine similarity */
} aios_search_hit;
/* Top-k by cosine similarity among live memories that pass the filters and the threshold,
 * best first (ties: storage order).  `hits` holds top_k entries; *n_hits receives the count,
 * which is top_k whenever that many memories pass the filters (HNSW falls back to exact search
 * when the graph cannot deliver them).  Thread-safe against other searches on the same handle. */
aios_status aios_store_search(aios_store *st, const float *query, int32_t dim, const aios_search_params *p,
                              aios_search_hit *hits, int32_t *n_hits);
/* The same with the query embedded by params.embed. */
aios_status aios_store_search_text(aios_store *st, const char *text, const aios_search_params *p,
                                   aios_search_hit *hits, int32_t *n_hits);

/* Moves the WAL into a new Parquet segment and starts an empty WAL (also done automatically
 * every checkpoint_rows records); persists the HNSW index. */
aios_status aios_store_flush(aios_store *st);
/* Rewrites all live memories into fresh segments (dropping tombstones), rebuilds the index. */
aios_status aios_store_compact(aios_store *st);
/* Builds the HNSW index now whatever the size (normally automatic above hnsw_min_rows). */
aios_status aios_store_build_index(aios_store *st);
/* Imports a memories Parquet file (the seed's schema); *n_out (may be NULL) gets the row count. */
aios_status aios_store_import(aios_store *st, const char *parquet_path, int64_t *n_out);
/* Writes all live memories to one zstd Parquet file with the seed's schema. */
aios_status aios_store_export(aios_store *st, const char *parquet_path);

typedef struct {
    int64_t live, rows, tombstones, wal_records, segments, index_rows;
    int32_t dim;
    int64_t bytes_on_disk;
    uint64_t version;        /* manifest version */
    char model[1024];
} aios_store_stats;
aios_status aios_store_stats_get(aios_store *st, aios_store_stats *out);

/* Verifies a store without modifying it: manifest, segment and WAL checksums and contents,
 * id uniqueness, tombstones, HNSW links (in range, no self/duplicate links, layers consistent,
 * reachability) and HNSW recall@10 against exact search on `n_queries` sampled queries.  A
 * human-readable report goes to `report` (may be NULL).  Returns AIOS_OK when everything is
 * sound, AIOS_ERR_CORRUPT (with the first problem in aios_last_error()) otherwise.  *recall
 * (may be NULL) receives the measured recall (1 when there is no index). */
aios_status aios_store_check(const char *dir, int n_queries, FILE *report, double *recall);

#ifdef __cplusplus
}
#endif
#endif /* AIOS_H */
