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

/* ======================================================================================
 * Tokenizer: Hugging Face tokenizer.json, the same ids/tokens/offsets as `tokenizers`.
 *
 *     aios_tokenizer *tok;
 *     if (aios_tokenizer_load("models/bert-base-uncased", &tok) != AIOS_OK) { ...aios_last_error() }
 *     aios_tok_params p = aios_tokenizer_default_params(tok);
 *     aios_encoding *enc;
 *     aios_tokenizer_encode(tok, "Hello world", 11, &p, &enc);   // enc->ids[0..enc->n)
 *     char *text; size_t len;
 *     aios_tokenizer_decode(tok, enc->ids, enc->n, 1, &text, &len);  // "hello world"
 *     free(text); aios_encoding_free(enc); aios_tokenizer_free(tok);
 *
 * Supported: normalizers BertNormalizer, NFC/NFD/NFKC/NFKD, Lowercase, StripAccents, Replace,
 * Prepend, Strip, Precompiled, ByteLevel, Nmt, Sequence; pre-tokenizers BertPreTokenizer, ByteLevel,
 * Split, Metaspace, Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit, FixedLength,
 * Sequence; models WordPiece, BPE, Unigram, WordLevel; post-processors TemplateProcessing,
 * BertProcessing, RobertaProcessing, ByteLevel, Sequence; decoders WordPiece, ByteLevel,
 * Metaspace, Replace, ByteFallback, Fuse, Strip, CTC, BPEDecoder, Sequence.  Unknown component
 * types make loading fail with AIOS_ERR_UNSUPPORTED naming the type.
 *
 * Invalid UTF-8 input: by default (AIOS_TOK_UTF8_REPLACE) every maximal invalid subsequence
 * becomes U+FFFD (as Python's bytes.decode(errors="replace") and Rust's from_utf8_lossy) and
 * offsets count characters of that repaired text; with AIOS_TOK_UTF8_ERROR encoding fails with
 * AIOS_ERR_ENCODING naming the byte offset.  Never a crash, whatever the bytes.
 *
 * Thread safety: a loaded tokenizer is immutable; encode/decode/lookups may be called from any
 * number of threads at once.
 * ====================================================================================== */
typedef struct aios_tokenizer aios_tokenizer;

typedef enum { AIOS_TOK_UTF8_REPLACE = 0, AIOS_TOK_UTF8_ERROR = 1 } aios_tok_utf8_mode;
typedef enum { AIOS_TRUNC_LONGEST_FIRST = 0, AIOS_TRUNC_ONLY_FIRST = 1, AIOS_TRUNC_ONLY_SECOND = 2 } aios_tok_trunc_strategy;
typedef enum { AIOS_PAD_NONE = 0, AIOS_PAD_LONGEST = 1, AIOS_PAD_FIXED = 2 } aios_tok_pad_strategy;

typedef struct {
    int add_special_tokens;      /* 1: apply the post-processor (e.g. [CLS] ... [SEP]) */
    aios_tok_utf8_mode invalid_utf8;
    /* truncation: max_length 0 = none.  Counts special tokens, as `tokenizers` does. */
    size_t max_length;
    aios_tok_trunc_strategy trunc_strategy;
    int trunc_left;              /* 1: drop tokens from the start instead of the end */
    size_t stride;               /* overlap kept for overflowing pieces (not returned) */
    /* padding: LONGEST pads a batch to its longest encoding (a single encode is unchanged);
     * FIXED pads every encoding to pad_length */
    aios_tok_pad_strategy pad_strategy;
    size_t pad_length;
    size_t pad_to_multiple_of;   /* 0 = off */
    int pad_left;
    int32_t pad_id, pad_type_id;
    char pad_token[64];
    /* 1: special added tokens in the text are not recognised, they are tokenized as ordinary
     * text (`encode_special_tokens` of tokenizers; e.g. for untrusted chat input) */
    int encode_special_tokens;
} aios_tok_params;

/* One encoded text (or pair).  Arrays have n entries.  The struct, its arrays and strings are
 * one allocation: release it only with aios_encoding_free (never free the members). */
typedef struct {
    size_t n;
    int32_t *ids;
    char **tokens;               /* NUL-terminated token strings */
    size_t *token_lens;          /* their byte lengths (a token may itself contain NUL bytes) */
    size_t (*offsets)[2];        /* [start, end) in characters (code points) of the input */
    int32_t *type_ids;
    uint8_t *special_tokens_mask; /* 1 for tokens added by the post-processor or padding */
    uint8_t *attention_mask;      /* 0 for padding */
} aios_encoding;

/* Special token ids found in tokenizer.json / tokenizer_config.json; -1 when absent. */
typedef struct {
    int32_t bos, eos, unk, pad, mask, cls, sep;
} aios_tok_special_ids;

/* Loads `path`: a tokenizer.json, or a directory containing one (tokenizer_config.json beside
 * it is read too when present).  Returns AIOS_ERR_NOT_FOUND, AIOS_ERR_FORMAT,
 * AIOS_ERR_UNSUPPORTED with a message naming the field.  Loading takes milliseconds. */
aios_status aios_tokenizer_load(const char *path, aios_tokenizer **out);
/* The same from memory: `json` (len bytes, need not be NUL-terminated); `config_json` may be
 * NULL (tokenizer_config.json contents). */
aios_status aios_tokenizer_load_json(const char *json, size_t len, const char *config_json, size_t config_len,
                                     aios_tokenizer **out);
void aios_tokenizer_free(aios_tokenizer *tok);

/* Defaults: add_special_tokens 1, replacement of invalid UTF-8, and the truncation / padding
 * given in tokenizer.json (none when absent) — so a default encode equals `Tokenizer.encode`. */
aios_tok_params aios_tokenizer_default_params(const aios_tokenizer *tok);

/* Encodes `len` bytes of `text` (NULL params = defaults).  *out is freed with
 * aios_encoding_free. */
aios_status aios_tokenizer_encode(const aios_tokenizer *tok, const char *text, size_t len,
                                  const aios_tok_params *params, aios_encoding **out);
/* Encodes a pair of sequences (type ids 0 and 1 by the post-processor's template). */
aios_status aios_tokenizer_encode_pair(const aios_tokenizer *tok, const char *a, size_t alen, const char *b,
                                       size_t blen, const aios_tok_params *params, aios_encoding **out);
/* Encodes n texts on n_threads threads (0 = all cores); out[i] receives each encoding (the
 * caller provides the array of n pointers).  `lens` may be NULL for NUL-terminated texts.
 * Padding LONGEST pads to the longest of the batch.  On failure every out[i] is NULL. */
aios_status aios_tokenizer_encode_batch(const aios_tokenizer *tok, const char *const *texts, const size_t *lens,
                                        size_t n, const aios_tok_params *params, int n_threads,
                                        aios_encoding **out);
void aios_encoding_free(aios_encoding *enc);

/* Decodes ids to UTF-8 text (malloc'd, NUL-terminated, *len without the NUL).  With
 * skip_special, tokens marked special in added_tokens are left out.  Unknown ids are skipped. */
aios_status aios_tokenizer_decode(const aios_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                                  char **out, size_t *len);

/* Vocabulary size including added tokens (as `get_vocab_size(with_added_tokens=True)`). */
size_t aios_tokenizer_vocab_size(const aios_tokenizer *tok);
/* Id of a token string (added tokens first), or -1. */
int32_t aios_tokenizer_token_to_id(const aios_tokenizer *tok, const char *token);
/* Token string of an id (owned by the tokenizer), or NULL.  As in `tokenizers`, an added token
 * marked `normalized` is returned in its normalized form (Llama-2's id 1 is "▁<s>"). */
const char *aios_tokenizer_id_to_token(const aios_tokenizer *tok, int32_t id);
aios_tok_special_ids aios_tokenizer_special_ids(const aios_tokenizer *tok);
/* model_max_length from tokenizer_config.json (0 when absent or absurdly large). */
size_t aios_tokenizer_model_max_length(const aios_tokenizer *tok);

/* ====================================================================================== */
/* (sections below are added by the tokenizer, model, encode, memory, generate and diffuse
 *  modules) */

#ifdef __cplusplus
}
#endif
#endif /* AIOS_H */
