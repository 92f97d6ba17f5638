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
 * The full reader/writer interface (schema tree, column reads with levels and zero-copy byte
 * arrays, the writer) is src/format/parquet.h; docs/parquet.md describes the design.
 * ====================================================================================== */
typedef struct aios_parquet_file aios_parquet_file;
/* Maps `path` read-only and parses the footer and schema (every offset and length is checked;
 * malformed files give AIOS_ERR_FORMAT / AIOS_ERR_CORRUPT / AIOS_ERR_UNSUPPORTED with a message
 * naming the file and the place).  *out is NULL on failure.  The handle is read-only: column
 * reads on it may run from several threads at once. */
aios_status aios_parquet_open(const char *path, aios_parquet_file **out);
/* The same for a file image in memory; `data` is not copied and must outlive the handle. */
aios_status aios_parquet_open_memory(const void *data, size_t size, aios_parquet_file **out);
/* Total rows (sum over row groups); -1 for NULL. */
int64_t aios_parquet_num_rows(const aios_parquet_file *pf);
/* Decodes every page of every column (CRCs, value and row counts, statistics, UTF-8 of
 * strings); writes one "problem: ..." line per problem to `report` (may be NULL); returns the
 * first problem's status, AIOS_OK when the file is sound. */
aios_status aios_parquet_verify(aios_parquet_file *pf, FILE *report);
/* Unmaps and frees; NULL is a no-op.  Pointers obtained from the handle become invalid. */
void aios_parquet_close(aios_parquet_file *pf);

/* ====================================================================================== */
/* (sections below are added by the tokenizer, model, encode, memory, generate and diffuse
 *  modules) */

#ifdef __cplusplus
}
#endif
#endif /* AIOS_H */
