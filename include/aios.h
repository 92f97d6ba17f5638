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
        double router_threshold;      /* 0.5: the semantic router's minimum cosine, in [-1, 1] */
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
 * it is read too when present), or a GGUF file (its tokenizer.ggml.* metadata, see
 * aios_tokenizer_load_gguf).  Returns AIOS_ERR_NOT_FOUND, AIOS_ERR_FORMAT,
 * AIOS_ERR_UNSUPPORTED with a message naming the field.  Loading takes milliseconds. */
aios_status aios_tokenizer_load(const char *path, aios_tokenizer **out);
/* The same from memory: `json` (len bytes, need not be NUL-terminated); `config_json` may be
 * NULL (tokenizer_config.json contents). */
aios_status aios_tokenizer_load_json(const char *json, size_t len, const char *config_json, size_t config_len,
                                     aios_tokenizer **out);
/* A tokenizer from a GGUF file's metadata alone (tokenizer.ggml.model gpt2 or llama, tokens,
 * merges or scores, token types, special ids, add_bos/add_eos, pre-tokenizer by
 * tokenizer.ggml.pre): the same ids as the model's Hugging Face tokenizer.json (docs/gguf.md). */
aios_status aios_tokenizer_load_gguf(const char *path, aios_tokenizer **out);
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

/* ======================================================================================
 * Models: open a model directory or file, inspect its config and tensors, convert and
 * quantize (src/model/model.c, docs/model-files.md).
 *
 *     aios_model *m;
 *     if (aios_model_open("models/qwen2-tiny", NULL, &m) != AIOS_OK) { ...aios_last_error()... }
 *     const aios_model_config *c = aios_model_get_config(m);
 *     printf("%s: %lld layers\n", aios_arch_name(c->arch), (long long)c->n_layer);
 *     aios_model_free(m);
 *
 * Accepted inputs (one call, whichever is found):
 *  - a Hugging Face directory: config.json + model.safetensors, or sharded safetensors listed by
 *    model.safetensors.index.json; tokenizer.json and sentence-transformers files
 *    (modules.json, 1_Pooling/config.json) when present;
 *  - an ArrowEngine directory (the seed's layout): metadata.json + weights.parquet (Schema V1
 *    float or V2 quantized) + tokenizer.json;
 *  - a single .safetensors or .parquet file (config from a config.json / metadata.json beside
 *    it when there is one);
 *  - a GGUF file (llama.cpp's format, recognised by its magic): config, tokenizer and chat
 *    template from its metadata alone, tensors as views of its blocks under Hugging Face names
 *    (llama / qwen2 / qwen3; llama's q/k rows un-permuted into one owned buffer; docs/gguf.md).
 * Opening maps the files and builds views: no tensor byte is read until used (a 100 MB model
 * opens in about a millisecond).  Internal code gets the tensor views through
 * src/model/model.h (aios_model_tensor).
 * ====================================================================================== */
typedef enum {
    AIOS_ARCH_UNKNOWN = 0,
    AIOS_ARCH_BERT = 1,  /* BERT-family encoder (bert, MiniLM, ...) */
    AIOS_ARCH_LLAMA = 2, /* Llama / SmolLM / Mistral-style decoder */
    AIOS_ARCH_QWEN2 = 3, /* Qwen2: q/k/v bias */
    AIOS_ARCH_QWEN3 = 4, /* Qwen3: q_norm/k_norm, head_dim may differ from n_embd / n_head */
    AIOS_ARCH_LLADA = 5, /* LLaDA masked diffusion (model.transformer.blocks.N.* names) */
    AIOS_ARCH_DREAM = 6, /* Dream: Qwen2 weights, bidirectional, shifted logits */
    AIOS_ARCH_BD3LM = 7, /* block diffusion over Qwen3 weights (block-causal attention) */
} aios_arch;

typedef enum {
    AIOS_ATTN_CAUSAL = 0,
    AIOS_ATTN_BIDIRECTIONAL = 1,
    AIOS_ATTN_BLOCK_CAUSAL = 2, /* a key is visible iff its block <= the query's block */
} aios_attn_pattern;

typedef enum {
    AIOS_POOL_NONE = 0,
    AIOS_POOL_MEAN = 1,
    AIOS_POOL_CLS = 2,
    AIOS_POOL_MAX = 3,
    AIOS_POOL_LAST = 4,
    AIOS_POOL_MEAN_SQRT_LEN = 5,
} aios_pooling;

/* The facts the architectures need, whatever file they came from.  Token ids are -1 when the
 * model does not say.  Sizes use the STYLE.md vocabulary. */
typedef struct {
    aios_arch arch;
    char model_type[64];         /* config "model_type" ("bert", "qwen2", "Dream", ...) */
    char architecture[128];      /* first of "architectures" / metadata.json "architecture" */
    char model_name[256];        /* "_name_or_path" / metadata "model_name" / directory name */
    int64_t n_embd;              /* hidden_size (d_model) */
    int64_t n_layer;             /* num_hidden_layers */
    int64_t n_head;              /* num_attention_heads */
    int64_t n_head_kv;           /* num_key_value_heads (= n_head when absent) */
    int64_t head_dim;            /* head_dim, or n_embd / n_head */
    int64_t n_ff;                /* intermediate_size (mlp_hidden_size) */
    int64_t n_vocab;             /* vocab_size */
    int64_t n_ctx_train;         /* max_position_embeddings */
    int64_t type_vocab_size;     /* BERT token types (0 when none) */
    float norm_eps;              /* layer_norm_eps or rms_norm_eps */
    int rms_norm;                /* 1: RMSNorm, 0: LayerNorm */
    char hidden_act[32];         /* "gelu", "silu", "gelu_new", ... */
    double rope_theta;           /* top level or rope_parameters.rope_theta (default 10000) */
    char rope_type[32];          /* "default", "linear", "dynamic", "yarn", "llama3", ... */
    double rope_factor;          /* rope scaling factor (1 when none) */
    double rope_low_freq_factor, rope_high_freq_factor; /* llama3 scaling (0 when absent) */
    int64_t rope_original_max_pos; /* original_max_position_embeddings (0 when absent) */
    int tie_word_embeddings;     /* output head shares the token embedding */
    int attn_qkv_bias;           /* q/k/v projections have biases */
    int attn_out_bias;           /* output projection has a bias */
    int mlp_bias;
    int qk_norm;                 /* per-head RMSNorm of q and k (Qwen3) */
    aios_pooling pooling;        /* sentence embedding pooling (encoders) */
    int normalize;               /* L2-normalize sentence embeddings */
    int64_t embedding_dimension; /* sentence embedding size (n_embd unless a module says) */
    int64_t mask_token_id, pad_token_id, bos_token_id, eos_token_id;
    int64_t eos_token_ids[8];    /* every eos id when the config lists several */
    int n_eos;
    /* diffusion facts */
    int is_diffusion;            /* LLaDA, Dream, BD3LM */
    aios_attn_pattern attention; /* causal for AR decoders; bidirectional for BERT/LLaDA/Dream */
    int logit_shift;             /* 1: logits row i-1 predicts token i (Dream) */
    int64_t block_size;          /* block diffusion block size (0 when none) */
} aios_model_config;

typedef struct aios_model aios_model;

typedef struct {
    int verify;          /* 1: also read one byte of every page of every tensor at open (proves the
                            mapping is readable end to end; makes the open cost the file size).
                            Default 0: shapes, dtypes and byte lengths are always checked. */
} aios_model_params;

aios_model_params aios_model_default_params(void);
/* Opens a model (see above).  `params` may be NULL for the defaults.  On success *out owns
 * the mappings; free with aios_model_free.  Errors name the file, the tensor and the fault. */
aios_status aios_model_open(const char *path, const aios_model_params *params, aios_model **out);
void aios_model_free(aios_model *m);

const aios_model_config *aios_model_get_config(const aios_model *m);
/* "safetensors", "parquet-v1", "parquet-v2" or "gguf". */
const char *aios_model_format(const aios_model *m);
/* The directory (or the file) the model was opened from. */
const char *aios_model_path(const aios_model *m);
/* Path of tokenizer.json beside the weights (for a GGUF file: the file itself, when its metadata
 * holds a tokenizer; aios_tokenizer_load takes it), or NULL when there is none. */
const char *aios_model_tokenizer_path(const aios_model *m);

/* Public description of one tensor (strings borrowed from the model). */
typedef struct {
    const char *name;
    const char *dtype;      /* "f32", "bf16", "q8", "q4", "q2", ... */
    int ndim;
    int64_t shape[8];
    int64_t numel;
    size_t nbytes;          /* bytes of data (packed bytes for quantized kinds) */
    int quantized;
    int64_t n_scales;
    int32_t quant_axis;     /* -1 per tensor, 0 per output channel */
    int32_t group_size;     /* 0 = none */
    int symmetric;          /* no zero points */
} aios_tensor_info;

int64_t aios_model_num_tensors(const aios_model *m);
/* Tensors sorted by name; AIOS_ERR_RANGE when i is out of range. */
aios_status aios_model_tensor_info(const aios_model *m, int64_t i, aios_tensor_info *out);
/* Index of a tensor by name, -1 when absent. */
int64_t aios_model_find_tensor(const aios_model *m, const char *name);
/* Tensor i as float32 (out has numel floats; any dtype, quantized ones dequantized). */
aios_status aios_model_tensor_f32(const aios_model *m, int64_t i, float *out);

const char *aios_arch_name(aios_arch a);

/* Writes the ArrowEngine directory out_dir (created if needed): weights.parquet in Schema V1
 * (tensors in their stored dtype, uncompressed PLAIN `data` aligned for mapping),
 * metadata.json (the seed's fields plus ours) and the tokenizer files copied. */
aios_status aios_model_convert(const char *in_path, const char *out_dir);

typedef struct {
    int bits;                /* 8, 4 or 2 */
    int32_t group_size;      /* 0 = none (per tensor or per channel) */
    int per_channel;         /* one scale per output row */
    int symmetric;           /* zero points all 0 */
    const char *const *keep; /* NULL-terminated glob patterns of tensors left unquantized, in
                                addition to the defaults (embeddings, norms, biases, 1-D) */
    int keep_defaults;       /* 1 (default): keep embeddings / norms / biases unquantized */
    int64_t min_numel;       /* tensors smaller than this stay unquantized (default 0) */
    int f16_scales;          /* 1: scales and zero points stored as float16, as GGUF blocks store
                                d and m (the file records the aios.f16_scales extension) */
    /* Per-tensor-class types (llama-quantize's --token-embedding-type / --output-tensor-type):
     * 8, 4 or 2 bits, AIOS_QUANT_KEEP (-1: left in its stored type) or 0 = the default:
     * embed_bits 0: kept when keep_defaults, else `bits`; output_bits 0: `bits`.
     * The token embedding is model.embed_tokens / wte / word_embeddings (also the head when the
     * head is tied); the output head is an untied lm_head / ff_out. */
    int embed_bits;
    int output_bits;
    /* GGUF blocks that map onto the requested layout without changing a value are transcoded
     * block for block (Q8_0 -> int8 g32, Q4_0 -> int4 g32 symmetric, Q4_1 -> int4 g32 with
     * minima, the aios.scale_min extension; docs/quantization.md) when group_size is 32.
     * requantize 1: quantize them from their float values instead, as any other tensor. */
    int requantize;
} aios_quantize_params;
#define AIOS_QUANT_KEEP (-1)

aios_quantize_params aios_quantize_default_params(void); /* int8 per channel, asymmetric */
/* Reads any model aios_model_open accepts and writes an ArrowEngine directory with
 * weights.parquet in Schema V2 (quantized tensors packed as DESIGN.md §3). */
aios_status aios_model_quantize(const char *in_path, const char *out_dir, const aios_quantize_params *p);

/* Prints what `aios inspect` shows: the derived config, then one line per tensor (dtype,
 * shape, parameters, bytes, quantization), then totals. */
aios_status aios_model_inspect(const char *path, FILE *out);

/* ======================================================================================
 * Encode: sentence embeddings from a BERT-family model (the seed's EmbeddingProvider;
 * src/engine/encode.c, docs/encode.md).
 *
 *     aios_encoder *enc;
 *     if (aios_encoder_open("models/all-MiniLM-L6-v2", NULL, &enc) != AIOS_OK) { ...aios_last_error()... }
 *     float a[384], b[384];                      // aios_encoder_dim(enc) floats each
 *     aios_encode(enc, "A man plays a guitar.", 21, a);
 *     aios_encode(enc, "Someone is playing guitar.", 26, b);
 *     printf("%.3f\n", aios_similarity(a, b, 384));
 *     aios_encoder_free(enc);
 *
 * Settings come from the model directory as sentence-transformers reads them: pooling from
 * 1_Pooling/config.json (or metadata.json), L2 normalization when modules.json has a Normalize
 * module, truncation to sentence_bert_config.json's max_seq_length (else the model's position
 * count).  Params override each.  Texts of a batch are sorted by token count and run
 * batch_size at a time, each batch padded only to its own longest text; results come back in
 * the caller's order.  An encoder may be used by one thread at a time (it owns its buffers);
 * kernels inside use all threads (aios_encoder_params.n_threads, AIOS_THREADS).
 * ====================================================================================== */
typedef struct aios_encoder aios_encoder;

/* How an encoder's matrix products treat activations (docs/encode.md "int8 activations"). */
typedef enum {
    AIOS_INT8_ACT_AUTO = 0,  /* default: AIOS_INT8_ACT=0/1 or aios_kernels_int8_activations when
                                given, else int8 activations when the weights are int8 and the
                                CPU has AVX-512 VNNI (per-group GEMM, >= 8 token rows; STS-B
                                budget within 0.1 of 82.03), exact float otherwise */
    AIOS_INT8_ACT_OFF = 1,   /* exact float arithmetic on the stored weights */
    AIOS_INT8_ACT_ON = 2,    /* int8 activations wherever a kernel has them (= AIOS_INT8_ACT=1) */
    AIOS_INT8_ACT_16 = 3     /* 16-bit activations (two int8 digits per value, error <= dx / 512)
                                into quantized weights: GGUF blocks and ArrowQuant int8 / int4
                                (integer decode GEMVs for 1-3 tokens, 4- / 5-bit weights repacked
                                in blocks of 8 rows; longer products on x rounded the same way);
                                float weights exact (= AIOS_INT8_ACT=16;
                                decoders: near int8's speed within ~3e-4 of exact,
                                docs/kernels.md; encoders: exact float) */
} aios_int8_act;

typedef struct {
    aios_pooling pooling; /* AIOS_POOL_NONE (default) = the model's; or MEAN, CLS, MAX, MEAN_SQRT_LEN, LAST */
    int normalize;        /* -1 (default) = the model's setting; 0 off; 1 on */
    int64_t max_length;   /* tokens per text including specials; 0 (default) = the model's limit */
    int batch_size;       /* texts per forward pass (default 32) */
    int n_threads;        /* kernel threads; 0 (default) = leave as is (all cores / AIOS_THREADS) */
    aios_int8_act int8_act; /* AIOS_INT8_ACT_AUTO (default), _OFF (exact float) or _ON */
    int quantize_bits;      /* 0 (default): the weights as stored; 8: float layer matrices are
                               quantized to int8 at open (per output channel, asymmetric, as
                               `aios quantize --type int8`; +~1 byte per weight, ~25 ms for
                               MiniLM-L6), so a float model takes the int8 path (int8_act AUTO:
                               int8 activations on VNNI) — what the skill router uses */
} aios_encoder_params;

/* Called after each batch with texts done so far; return nonzero to cancel (AIOS_ERR_CANCELLED). */
typedef int (*aios_encode_progress_fn)(void *user, size_t done, size_t total);

aios_encoder_params aios_encoder_default_params(void);
/* Opens any model directory/file aios_model_open accepts whose architecture is BERT (f32, f16,
 * bf16 or int8/int4/int2 quantized weights) with its tokenizer.json.  `params` may be NULL. */
aios_status aios_encoder_open(const char *model_path, const aios_encoder_params *params, aios_encoder **out);
void aios_encoder_free(aios_encoder *enc);
/* Embedding size (n_embd). */
int64_t aios_encoder_dim(const aios_encoder *enc);
/* Token limit per text after which texts are truncated. */
int64_t aios_encoder_max_length(const aios_encoder *enc);
aios_pooling aios_encoder_pooling(const aios_encoder *enc);
int aios_encoder_normalizes(const aios_encoder *enc);
/* What the next encode will do with activations, resolved from params.int8_act, the process
 * setting and the weights: 0 exact float, 1 int8 wherever a kernel has them, 2 int8 in the
 * per-group VNNI GEMM only (batches of >= 8 token rows; the AUTO choice for int8 weights). */
int aios_encoder_int8_activations(const aios_encoder *enc);
/* out (dim) = embedding of `len` bytes of UTF-8 `text` (invalid bytes become U+FFFD). */
aios_status aios_encode(aios_encoder *enc, const char *text, size_t len, float *out);
/* out (n, dim) = embeddings of n texts; lens may be NULL for NUL-terminated texts.
 * progress may be NULL. */
aios_status aios_encode_batch(aios_encoder *enc, const char *const *texts, const size_t *lens, size_t n, float *out,
                              aios_encode_progress_fn progress, void *user);
/* The same from token ids (with special tokens), e.g. from another tokenizer. */
aios_status aios_encode_ids(aios_encoder *enc, const int32_t *const *ids, const size_t *lens, size_t n, float *out,
                            aios_encode_progress_fn progress, void *user);
/* Cosine similarity of two vectors (0 when either is all zeros).  Thread-safe. */
float aios_similarity(const float *a, const float *b, int64_t dim);

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
    const char *model;       /* embedding model (path/name) recorded in the manifest when the store
                                has none yet; AIOS_ERR_INVALID_ARG if it records a different one */
    int sync;                /* 1 (default): fsync before a write returns.  0 only for bulk tests */
    int64_t checkpoint_rows; /* WAL records before they move into a Parquet segment (65536) */
    int64_t hnsw_min_rows;   /* live embedded rows from which an HNSW index is kept (20000) */
    int hnsw_m;              /* HNSW links per node above layer 0; layer 0 keeps up to 2*M.
                                0 (default) = the value recorded with the store's index, else 32 */
    int hnsw_ef_construction;/* candidate list while building (0 = recorded, else 200) */
    int compression_level;   /* zstd level of segments (3) */
    aios_embed_fn embed;     /* optional text encoder */
    void *embed_user;
    int hnsw_ef_search;      /* default HNSW candidate list of searches on this store, recorded in
                                the manifest with the index (0 = recorded, else 128) */
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
    int ef_search;           /* HNSW candidate list (0 = the store's hnsw_ef_search; at least 2 * top_k) */
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
/* The embedding model recorded in the manifest ("" when none); valid until close. */
const char *aios_store_model(const aios_store *st);
/* Dimension of the store's embeddings (0 until fixed by params.dim or the first embedding). */
int32_t aios_store_dim(const aios_store *st);
/* Plugs in (or replaces, or with fn NULL removes) the text encoder after opening, e.g. once the
 * store's recorded model is known. */
void aios_store_set_embedder(aios_store *st, aios_embed_fn fn, void *user);

/* Verifies a store without modifying it: manifest, segment and WAL checksums and contents,
 * id uniqueness, tombstones, HNSW links (in range, no self/duplicate links, layers consistent,
 * reachability) and HNSW recall@10 against exact search on `n_queries` sampled queries.  A
 * human-readable report goes to `report` (may be NULL).  Returns AIOS_OK when everything is
 * sound, AIOS_ERR_CORRUPT (with the first problem in aios_last_error()) otherwise.  *recall
 * (may be NULL) receives the measured recall (1 when there is no index). */
aios_status aios_store_check(const char *dir, int n_queries, FILE *report, double *recall);

/* ======================================================================================
 * Generation: autoregressive text generation with Llama / Qwen2 / Qwen3 decoders
 * (src/engine/generate.c, src/model/decoder.c, docs/generate.md).
 *
 *     aios_generator *g;
 *     if (aios_generator_open("models/SmolLM2-135M-Instruct", NULL, &g) != AIOS_OK) { ... }
 *     aios_generate_params p = aios_generate_default_params();
 *     p.max_tokens = 64; p.temperature = 0.7f; p.top_p = 0.9f; p.seed = 42;
 *     p.on_token = print_piece;            // streaming: called with each new piece of text
 *     aios_generate_result r;
 *     if (aios_generate(g, "Once upon a time", NULL, 0, &p, &r) == AIOS_OK) puts(r.text);
 *     aios_generate_result_free(&r);
 *     aios_generator_free(g);
 *
 * Models: a Hugging Face directory (config.json + safetensors + tokenizer.json), an ArrowEngine
 * Parquet directory, or a llama2.c checkpoint (a .bin file, or a directory holding one, with its
 * tokenizer.bin / tok*.bin beside it).  The generator keeps one KV cache for its context length;
 * a new call reuses the cached prefix it shares with the previous call's ids (chat turns).
 * A generator is used by one thread at a time.
 * ====================================================================================== */
typedef struct aios_generator aios_generator;

/* The KV cache's element type.  float16 halves its memory and what each decode step reads
 * (llama.cpp's default cache type); K and V are rounded once, after RoPE. */
typedef enum { AIOS_KV_F32 = 0, AIOS_KV_F16 = 1 } aios_kv_type;

typedef struct {
    int64_t n_ctx;              /* context length of the KV cache; 0 = min(model's, 4096) */
    int n_threads;              /* kernel threads; 0 = leave as is (AIOS_THREADS / all cores) */
    const char *tokenizer_path; /* NULL = found beside the model */
    aios_kv_type kv_type;       /* the KV cache's element type (default AIOS_KV_F32) */
    aios_int8_act int8_act;     /* the decoder's activations: AUTO (default) = AIOS_INT8_ACT /
                                   aios_kernels_int8_activations when given, else 16-bit for
                                   quantized weights (GGUF blocks, ArrowQuant int8 / int4) on the
                                   AVX2 kernel tier and exact float otherwise
                                   (aios_generator_int8_act tells); ON = int8
                                   wherever a kernel has them (faster, within the budgets of
                                   docs/kernels.md; 4-bit weights repacked at open on AVX2);
                                   16 = 16-bit activations into quantized weights
                                   (AVX2 / AVX-512 CPUs), float weights exact;
                                   OFF = exact float whatever the process setting */
} aios_generator_params;

aios_generator_params aios_generator_default_params(void);
/* Opens the model and its tokenizer, generation_config.json and tokenizer_config.json (both
 * optional).  `params` NULL = defaults.  Free with aios_generator_free. */
aios_status aios_generator_open(const char *path, const aios_generator_params *params, aios_generator **out);
void aios_generator_free(aios_generator *g);

/* Called with each new id and the text it completes (len may be 0 while a UTF-8 sequence or a
 * possible stop string is held back).  Return non-zero to stop generating. */
typedef int (*aios_token_callback)(void *user, int32_t id, const char *text, size_t len);

typedef struct {
    int max_tokens;             /* new tokens at most (default 256) */
    float temperature;          /* 0 = greedy (default 0) */
    int top_k;                  /* 0 = off */
    float top_p;                /* 1 = off */
    float min_p;                /* 0 = off */
    float repetition_penalty;   /* 1 = off (transformers' definition) */
    float presence_penalty;     /* 0 = off (OpenAI's definition) */
    float frequency_penalty;    /* 0 = off */
    uint64_t seed;              /* the sampler's seed: xoshiro256** seeded by splitmix64(seed) */
    const char *const *stop;    /* NULL-terminated stop strings (not included in the text), or NULL */
    int ignore_eos;             /* 1: do not stop on EOS ids */
    int add_bos;                /* text prompts: -1 (default) = the tokenizer's special tokens (its
                                   post-processor adds BOS where the model wants it; llama2.c: BOS)
                                   unless the text already starts with the BOS token (chat
                                   templates that write it); 0 = none; 1 = always the specials */
    aios_token_callback on_token;
    void *user;
    int logprobs;               /* 1: out->logprobs gets, for every generated token, its log
                                   probability under the model's own distribution (log-softmax of
                                   the raw logits, before penalties, temperature and filters) */
    int top_logprobs;           /* 0..AIOS_MAX_TOP_LOGPROBS: with logprobs, that many most probable
                                   alternatives per step in out->top_ids / out->top_logprobs */
} aios_generate_params;

#define AIOS_MAX_TOP_LOGPROBS 20

aios_generate_params aios_generate_default_params(void);

typedef enum {
    AIOS_GEN_STOP_LENGTH = 0,   /* max_tokens reached */
    AIOS_GEN_STOP_EOS = 1,      /* an EOS id (config, generation_config, chat end token) */
    AIOS_GEN_STOP_STRING = 2,   /* a stop string appeared */
    AIOS_GEN_STOP_CALLBACK = 3, /* the callback asked to stop */
    AIOS_GEN_STOP_CONTEXT = 4,  /* the context is full */
} aios_gen_stop;

typedef struct {
    int32_t *ids;        /* prompt + generated ids (malloc'd), n_ids of them */
    size_t n_ids, n_prompt;
    char *text;          /* generated text only (malloc'd, NUL-terminated), stop string cut */
    aios_gen_stop stop;
    size_t n_reused;     /* prompt positions taken from the cache of the previous call */
    double prefill_s, decode_s; /* seconds spent in prefill and in the decode steps */
    /* with p->logprobs (malloc'd, NULL otherwise): for generated token k (0 .. n_ids - n_prompt - 1)
     * logprobs[k], and its n_top alternatives top_ids / top_logprobs[k * n_top ..], most probable
     * first (ties: lower id).  Token k's entries are written before on_token is called for it. */
    float *logprobs;
    int32_t *top_ids;
    float *top_logprobs;
    int n_top;
} aios_generate_result;

/* Generates from a text `prompt` (tokenized, BOS per add_bos) or, when prompt is NULL, from
 * prompt_ids (n_prompt_ids >= 1, used as given).  *out is filled even on failure (free it). */
aios_status aios_generate(aios_generator *g, const char *prompt, const int32_t *prompt_ids, size_t n_prompt_ids,
                          const aios_generate_params *p, aios_generate_result *out);
void aios_generate_result_free(aios_generate_result *r);

/* Chat: the conversation formatted with the model's template ("chatml" for Qwen / SmolLM,
 * "llama2", "llama3", chosen from tokenizer_config.json's chat_template, else from the
 * vocabulary's special tokens; "plain" when none), ending with the assistant's turn opened.
 * roles: "system", "user", "assistant".  *out is malloc'd. */
typedef struct {
    const char *role;
    const char *content;
} aios_chat_message;
aios_status aios_generator_chat_prompt(aios_generator *g, const aios_chat_message *msgs, size_t n, char **out);
/* "chatml", "llama2", "llama3" or "plain". */
const char *aios_generator_chat_template(const aios_generator *g);

/* Tokenizer access: ids (malloc'd) of text; text (malloc'd) of ids. */
aios_status aios_generator_tokenize(aios_generator *g, const char *text, int add_bos, int32_t **ids, size_t *n);
aios_status aios_generator_detokenize(aios_generator *g, const int32_t *ids, size_t n, char **text);
int64_t aios_generator_n_vocab(const aios_generator *g);
/* Imports a llama2.c checkpoint (version 0 or 1) as a Hugging Face Llama directory out_dir
 * (config.json, model.safetensors float32, tokenizer.bin copied when tokenizer_bin is given), so
 * `aios convert` / `aios quantize` / aios_generator_open take it like any other model. */
aios_status aios_llama2c_import(const char *checkpoint, const char *tokenizer_bin, const char *out_dir);
int64_t aios_generator_n_ctx(const aios_generator *g);
/* The activations this generator's products use, params.int8_act resolved (never AUTO):
 * AIOS_INT8_ACT_OFF (exact float), _ON (int8) or _16 (16-bit; AUTO's choice for quantized
 * weights on AVX2 CPUs). */
aios_int8_act aios_generator_int8_act(const aios_generator *g);

/* LoRA adapters at run time (src/model/lora.h): a PEFT adapter directory
 * (adapter_config.json + adapter_model.safetensors) or a skill card (.parquet).  Each adds
 * scale * (alpha / r) * B A to the projections it adapts, on the loaded model, without
 * reloading it; several may be attached at once (up to 16).  add returns the adapter's id in
 * *id (may be NULL); AIOS_ERR_SHAPE when the adapter was made for another model.  Attaching,
 * rescaling or removing forgets the cached prompt prefix.  Not thread-safe (one generator,
 * one thread). */
/* How several attached adapters combine (aios_generator_set_router):
 *   AIOS_ROUTER_NONE     summed at their scales (the default, as llama.cpp / PEFT do);
 *   AIOS_ROUTER_ARROW    per token and per adapted module, the top_k adapters by
 *                        |x . prototype| (the top right singular vector of each adapter's B A),
 *                        mixed by a softmax of those over temperature (Ostapenko et al. 2024,
 *                        PEFT's ArrowConfig); an adapter's scale multiplies its alpha / r;
 *   AIOS_ROUTER_COMPOSE  next-token logits = w_base * base + sum_i w_i * (adapter i alone),
 *                        w_i = max(scale_i, 0), the base taking 1 - sum when that is >= 0, else
 *                        the w_i divided by their sum (one forward per adapter, own KV cache). */
typedef enum { AIOS_ROUTER_NONE = 0, AIOS_ROUTER_ARROW = 1, AIOS_ROUTER_COMPOSE = 2 } aios_router;
/* Selects the router (top_k >= 1 and temperature > 0 used by arrow); forgets the cached
 * prompt prefix.  AIOS_ERR_INVALID_ARG on a bad value. */
aios_status aios_generator_set_router(aios_generator *g, aios_router router, int top_k, float temperature);
/* "none", "arrow", "compose" -> *out; AIOS_ERR_INVALID_ARG naming the value otherwise. */
aios_status aios_router_parse(const char *name, aios_router *out);
aios_status aios_generator_adapter_add(aios_generator *g, const char *path, float scale, int *id);
aios_status aios_generator_adapter_scale(aios_generator *g, int id, float scale);
aios_status aios_generator_adapter_remove(aios_generator *g, int id);
int aios_generator_adapter_count(const aios_generator *g);

/* Uncertainty of the last aios_generate call's answer.  For every generated token (the EOS
 * that ended it included) the entropy H (nats) and the top-1 probability p of the model's own
 * next-token distribution softmax(logits), before any sampling setting.  Per answer:
 * mean_entropy = mean of H / ln(n_vocab), mean_one_minus_p = mean of 1 - p, max_one_minus_p
 * their worst token, and score = H / (1 + H) with H the mean entropy in nats, in [0, 1)
 * (docs/evolution.md, "Uncertainty", gives its AUROC); config evolution.uncertainty_threshold (0.7) decides "uncertain".  Valid until
 * the next call on g. */
typedef struct {
    size_t n;
    float *entropy, *p_top1; /* (n) */
    double mean_entropy, mean_one_minus_p, max_one_minus_p;
    double score;
} aios_gen_uncertainty;
const aios_gen_uncertainty *aios_generator_uncertainty(const aios_generator *g);

/* ---- LoRA training (src/train/) ---------------------------------------------------------
 * Trains a LoRA adapter on a decoder model (Llama / Qwen2 / Qwen3; weights in any stored
 * dtype stay frozen as they are) from a JSONL file, one example per line:
 *   {"q": "...", "a": "..."}        the model's chat template around the question; the loss is
 *                                   on the answer tokens plus the end-of-turn token only
 *   {"messages": [{"role", "content"}, ...]}   the last message must be the assistant's; the
 *                                   loss is on it (plus end-of-turn), the rest is the prompt
 *   {"text": "..."}                 every token
 * Sequences are sorted by length and padded (right) into batches; a step is `accum` batches.
 * Matches PEFT + torch.optim.AdamW step for step (docs/training.md). */
typedef struct {
    int64_t step, total_steps;
    double loss, grad_norm, lr;
    double tokens_per_s; /* trained (label) tokens per second so far */
    double elapsed_s, eta_s;
} aios_train_progress;
/* Return non-zero to stop (the adapter so far is saved). */
typedef int (*aios_train_progress_fn)(void *user, const aios_train_progress *p);

typedef struct {
    int64_t rank;             /* 8 */
    double alpha;             /* 16 */
    const char *targets;      /* "q_proj,v_proj" (PEFT module names, or "all") */
    int rslora;               /* scaling alpha / sqrt(rank) */
    double dropout;           /* lora_dropout, 0 */
    double lr;                /* 0 = auto: aios_train_auto_lr(number of examples) */
    int64_t steps;            /* optimizer steps; 0 = from epochs */
    int64_t epochs;           /* with steps 0: passes over the data; 0 = auto, whole epochs
                                 until at least AIOS_TRAIN_MIN_STEPS steps */
    int64_t batch;            /* sequences per batch; 0 = all up to 8 */
    int64_t accum;            /* batches per step, 1 */
    double weight_decay;      /* 0.0 */
    double clip;              /* global gradient-norm clip, 1.0; 0 = off */
    int cosine;               /* 0 constant, 1 cosine (both after a linear warm-up) */
    int64_t warmup;           /* warm-up steps, 0 */
    const char *init_adapter; /* PEFT directory or skill card to start from (its rank, alpha,
                                 targets win); NULL = PEFT's default init from seed */
    uint64_t seed;            /* 0 */
    int64_t max_len;          /* longer sequences are truncated (with a warning); 0 = the
                                 model's context, at most 2048 */
    const char *log_jsonl;    /* NULL, or a file: one {"step","loss","grad_norm","lr"} per step */
    const char *name;         /* skill card name (default: the data file's stem) */
    aios_train_progress_fn progress;
    void *progress_user;
    int n_threads;            /* 0 = as is */
    const char *from_store;   /* NULL, or a memory store directory: every live memory's content
                                 is a {"text"} example (with or instead of the data file) */
    int checkpoint;           /* 1: recompute each layer's forward in the backward (activation
                                 memory for one more forward pass; the same gradients) */
    const char *resume;       /* NULL, or an adapter written with its trainer state (by
                                 save_state / save_every, or a stopped run): continue that run
                                 exactly.  Its settings (lr, schedule, warm-up, batch, accum,
                                 clip, weight decay, seed, max_len, rank/alpha/targets) come
                                 from the state and this struct's are ignored; steps / epochs
                                 > 0 set a new total.  The data must be the run's (checked). */
    int64_t save_every;       /* > 0: every N steps a checkpoint (adapter + trainer state) at
                                 OUT/checkpoint-STEP (OUT-checkpoint-STEP.parquet for a card) */
    int save_state;           /* 1: the trainer state next to the written adapter too
                                 (aios train does; docs/training.md "Resuming") */
} aios_train_params;

typedef struct {
    int64_t steps, examples, label_tokens, skipped_truncated;
    double first_loss, last_loss, seconds;
    double lr;              /* the peak learning rate used (the auto one when lr was 0) */
    int64_t total_steps;    /* steps planned */
    uint64_t activation_bytes;
    int stopped;      /* 1: the progress callback asked to stop */
} aios_train_result;

aios_train_params aios_train_default_params(void);
/* The defaults that learn (docs/training.md "Defaults"): without --steps / --epochs, whole
 * epochs until at least AIOS_TRAIN_MIN_STEPS optimizer steps; without --lr, 3e-3 for up to 64
 * examples falling log-linearly to 2e-4 at 4096 and more. */
#define AIOS_TRAIN_MIN_STEPS 30
double aios_train_auto_lr(int64_t n_examples);
/* Trains and writes `out`: a PEFT adapter directory, or a skill card when out ends in
 * ".parquet" (written atomically; on a failure mid-training — a NaN loss — the last good
 * adapter is written and the error returned).  Errors name the line and field of the data:
 * "data.jsonl:3: field 'a' is empty".  data may be NULL when p->from_store is set.  The model
 * is opened (and closed) here, read-only.  result may be NULL. */
aios_status aios_train(const char *model, const char *data, const char *out, const aios_train_params *p,
                       aios_train_result *result);

/* The token-weighted mean training loss (nats per answer token; exp of it is the perplexity)
 * of a data file in aios_train's format, with `adapter` (PEFT directory or card) at scale 1 or,
 * when NULL, the base model alone.  No dropout, no gradient.  n_tokens may be NULL. */
aios_status aios_train_eval(const char *model, const char *data, const char *adapter, double *mean_loss, int64_t *n_tokens);

/* Writes the model's weights with adapter(s) merged, W' = W + scale s B A, as a Hugging Face
 * directory (config.json, model.safetensors float32, tokenizer files copied). */
aios_status aios_lora_merge(const char *model, const char *adapter, float scale, const char *out_dir);
/* PEFT directory <-> skill card (.parquet), decided by the output path; model gives the
 * shapes. */
aios_status aios_lora_convert(const char *model, const char *in, const char *out);

/* ======================================================================================
 * Masked diffusion (the seed's DiffusionCore: NoiseScheduler, DiscreteSampler,
 * UncertaintyEstimator, MemoryConditioner).  docs/diffusion.md explains the algorithms.
 *
 * Generation starts from a canvas `prompt + gen_length masks (+ suffix)` and unmasks it in
 * steps: at each step a denoiser gives logits for every masked position, each proposes a token
 * with a confidence, and the most confident are committed.  The sampler is written against
 * `aios_denoiser` (a small table of function pointers), so any model — LLaDA, Dream, block
 * diffusion (BD3LM), a BERT-style MLM, or a test's toy — plugs in.
 * ====================================================================================== */

/* ---- NoiseScheduler.  Time t runs from 1 (all masked) to 0 (clean). ---- */
typedef enum { AIOS_NOISE_LINEAR = 0, AIOS_NOISE_COSINE = 1 } aios_noise_schedule;
/* Fraction of tokens masked at time t (clamped to [0, 1]): linear t; cosine sin(pi t / 2)
 * (= MaskGIT's cos(pi r / 2) with r = 1 - t the fraction decoded). */
double aios_noise_mask_rate(aios_noise_schedule s, double t);
/* times (n + 1) = linspace(1, eps, n + 1) (Dream's grid; eps in [0, 1)).  n >= 1. */
aios_status aios_noise_timesteps(int n, double eps, double *times);
/* How many of `n_masks` masked tokens to commit at each of `steps` steps so that after step s
 * about n_masks * mask_rate(1 - (s + 1) / steps) remain (MaskGIT's plan for cosine).  Sums to
 * n_masks; each count >= 1 while steps <= n_masks.  counts (steps). */
aios_status aios_noise_commit_plan(aios_noise_schedule s, int64_t n_masks, int steps, int64_t *counts);
/* Training-time masking (LLaDA's forward process): each of ids[n_keep..n) is replaced by mask_id
 * independently with probability p = eps + (1 - eps) * mask_rate(t); the first n_keep (a prompt)
 * never are.  out (n), masked (n, 1 where masked; may be NULL).  Deterministic in seed.
 * Returns p through *p_mask (may be NULL) — the loss weight is 1 / p. */
aios_status aios_noise_add(aios_noise_schedule s, const int32_t *ids, int64_t n, int64_t n_keep, double t,
                           double eps, int32_t mask_id, uint64_t seed, int32_t *out, uint8_t *masked,
                           double *p_mask);

/* ---- The denoiser interface. ---- */
typedef enum {
    AIOS_DENOISE_FULL = 0,         /* bidirectional: every row sees every row (LLaDA, Dream, BERT) */
    AIOS_DENOISE_BLOCK_CAUSAL = 1, /* key j visible to query i iff block(j) <= block(i) and j is not
                                   padding (a row always sees itself): BD3LM / A2D models */
} aios_denoise_attn;

typedef struct aios_denoiser {
    void *ctx;              /* the model; passed back to forward */
    int64_t n_vocab;
    int32_t mask_id;        /* never committed */
    int32_t pad_id;         /* block-causal left padding id, -1 when none */
    int shift;              /* 1: logits row i-1 predicts token i (Dream); row 0 stands for itself */
    aios_denoise_attn attn;
    int32_t block_size;     /* block-causal models: the trained block size (0 = any) */
    int64_t max_ctx;        /* rows the KV cache holds; 0 = the model has no cache (n_past always 0) */
    int64_t n_eos;          /* end-of-sequence ids (EOS / EOT), up to 8 */
    int32_t eos_ids[8];
    /* Runs the model on n_new rows that follow n_past rows already in its KV cache.
     *   ids (n_new), pos (n_new): token ids and RoPE positions of the new rows.
     *   vis (n_new, n_past + n_new): 1 where new row i may attend to key j (keys 0..n_past-1
     *       are the cached rows, then the new rows); never NULL.
     *   logits (n_out, n_vocab): written for new rows out_lo .. out_lo + n_out - 1 only.
     * A model with a cache (max_ctx > 0) also writes the K/V of every new row into its cache at
     * rows n_past .. n_past + n_new - 1; the caller decides which cached rows stay valid. */
    aios_status (*forward)(void *ctx, const int32_t *ids, const int32_t *pos, int64_t n_new, int64_t n_past,
                           const uint8_t *vis, int64_t out_lo, int64_t n_out, float *logits);
} aios_denoiser;

/* ---- DiscreteSampler. ---- */
#define AIOS_MEMCOND_ID_MAX 256 /* memory id bytes (as AIOS_MEMORY_ID_MAX) */
typedef enum {
    AIOS_REMASK_LOW_CONFIDENCE = 0, /* confidence = probability of the proposed token (top-1) */
    AIOS_REMASK_MARGIN = 1,         /* top-1 minus top-2 probability */
    AIOS_REMASK_ENTROPY = 2,        /* negative entropy of the position's distribution */
    AIOS_REMASK_RANDOM = 3,         /* uniform random confidence (LLaDA's "random") */
} aios_remask;
typedef enum {
    AIOS_PLAN_LLADA = 0,  /* M masks over s steps: M div s each, +1 for the first M mod s */
    AIOS_PLAN_DREAM = 1,  /* t = linspace(1, eps, s + 1): commit int(m * (1 - t[i+1] / t[i])) of the
                             m still masked, all at the last step */
    AIOS_PLAN_COSINE = 2, /* MaskGIT cosine (aios_noise_commit_plan) */
} aios_plan;
typedef enum {
    AIOS_KV_NONE = 0,   /* full forward every step */
    AIOS_KV_EXACT = 1,  /* block-causal models: finished blocks never change and never see later
                           ones, so their K/V are cached exactly (identical output) */
    AIOS_KV_PREFIX = 2, /* Fast-dLLM prefix cache for bidirectional models: K/V of everything
                           before the current block computed once per block (approximate) */
    AIOS_KV_AUTO = 3,   /* EXACT for block-causal denoisers that have a cache, else NONE */
} aios_kv_mode;

typedef struct {
    int64_t gen_length;     /* masks to fill: 128 */
    int steps;              /* total denoising steps over all blocks: 128 */
    int64_t block_length;   /* semi-autoregressive block; 0 = gen_length (block-causal: the
                               denoiser's block_size) */
    aios_remask algorithm;  /* AIOS_REMASK_LOW_CONFIDENCE */
    aios_plan plan;         /* AIOS_PLAN_LLADA */
    double plan_eps;        /* Dream plan's eps: 1e-3 */
    double temperature;     /* 0 = argmax; > 0 adds Gumbel noise (float64) to the logits */
    int top_k;              /* 0 = off */
    double top_p;           /* 1 = off */
    double guidance_scale;  /* classifier-free guidance; 0 = off (no unconditional pass) */
    double threshold;       /* > 0: Fast-dLLM mode, commit every token with confidence > threshold
                               (at least one per step); `steps` is then ignored */
    aios_kv_mode kv_cache;  /* AIOS_KV_AUTO */
    int stop_at_eos;        /* 1: stop after a block that contains an EOS id and trim after it
                               (not with a suffix) */
    uint64_t seed;          /* 0 */
    int keep_trace;         /* 1: record (step, position, token, confidence) of each commit */
    /* Called after every step with the canvas (n) — for `--show`; may be NULL. */
    void (*on_step)(void *user, const int32_t *canvas, int64_t n, int step);
    void *user;
    /* aios_diffuse (text in, text out) only: */
    int add_special_tokens;       /* 1: BOS / [CLS] and [SEP] as the model's tokenizer adds them */
    int memory_guided;            /* 1: retrieved memories go ahead of the prompt (MemoryConditioner) */
    const char *memory_store;     /* store directory (memory_guided) */
    const char *memory_encoder;   /* embedding model; NULL = the one recorded in the store */
    int32_t memory_top_k;         /* 3 */
    int64_t memory_token_budget;  /* 256 */
    double uncertainty_threshold; /* 0.7 (evolution.uncertainty_threshold): sets result.uncertain */
} aios_diffuse_params;
aios_diffuse_params aios_diffuse_default_params(void);

typedef struct {
    int32_t step;           /* 0-based step number over the whole run */
    int64_t position;       /* index into the canvas (left padding included) */
    int32_t token;
    float confidence;       /* the algorithm's score (probability for low_confidence) */
} aios_diffuse_commit;

typedef struct {
    int32_t *ids;           /* the final canvas (n_ids): [left pad] prompt generated [suffix] */
    int64_t n_ids;
    int64_t left_pad;       /* block-causal padding in front of the prompt */
    int64_t gen_start;      /* first generated position; generated span is gen_start..+gen_len */
    int64_t gen_len;        /* after EOS trimming */
    int stopped_at_eos;
    int n_steps;            /* steps run */
    int64_t n_forward;      /* denoiser calls */
    int64_t rows_computed;  /* sum of n_new over calls (what a cache saves) */
    int64_t logits_rows;    /* sum of n_out over calls (rows through the LM head) */
    aios_diffuse_commit *trace; /* n_trace commits in order, when keep_trace */
    int64_t n_trace;
    /* UncertaintyEstimator: means over committed tokens of entropy / ln(n_vocab) and of
     * (1 - probability of the committed token); uncertainty = their average, in [0, 1]. */
    double mean_entropy, mean_one_minus_conf, uncertainty;
    double *step_entropy;   /* (n_steps) the same means per step (0 for a step that committed none) */
    double *step_one_minus_conf;
    int uncertain;          /* uncertainty > the threshold given to aios_diffuse_uncertainty_flag */
    double seconds;
    /* aios_diffuse only: */
    char *text;             /* the generated span decoded, special tokens skipped */
    int32_t n_memories;     /* memories placed ahead of the prompt, best first */
    char (*memory_ids)[AIOS_MEMCOND_ID_MAX];
    float *memory_scores;
} aios_diffuse_result;

/* Fills `out` (caller-owned struct; free its arrays with aios_diffuse_result_free).
 * prompt (n_prompt) and suffix (n_suffix, may be NULL/0) are token ids.  Block-causal denoisers
 * get the prompt left-padded with pad_id to a multiple of the block length; their RoPE
 * positions count non-pad tokens.  The canvas holds at most 16384 tokens (AIOS_ERR_RANGE).
 * Errors: AIOS_ERR_INVALID_ARG for inconsistent parameters
 * (message names the field), AIOS_ERR_UNSUPPORTED for a cache the denoiser lacks, or what
 * the denoiser returned.  Thread-safe for distinct denoisers. */
aios_status aios_diffuse_sample(const aios_denoiser *dn, const aios_diffuse_params *p, const int32_t *prompt,
                                int64_t n_prompt, const int32_t *suffix, int64_t n_suffix,
                                aios_diffuse_result *out);
void aios_diffuse_result_free(aios_diffuse_result *r);
/* Sets r->uncertain from r->uncertainty and a threshold (evolution.uncertainty_threshold). */
void aios_diffuse_uncertainty_flag(aios_diffuse_result *r, double threshold);

/* ---- Real denoisers.  A model aios_model_open reads (Hugging Face directory or its Parquet
 * conversion) of an LLaDA, Dream, block-diffusion (BD3LM / A2D, config "block_size") or BERT
 * masked-LM model; the kind, mask / pad / EOS ids, shift and attention pattern come from its
 * config.  A BERT-MLM canvas is `[CLS] prompt [MASK]... suffix [SEP]`: pass [CLS] in the
 * prompt and [SEP] in the suffix. ---- */
typedef struct aios_diffusion_model aios_diffusion_model;
/* Opens `dir`; AIOS_ERR_UNSUPPORTED for a model that is not a denoiser (message says why). */
aios_status aios_diffusion_model_open(const char *dir, aios_diffusion_model **out);
void aios_diffusion_model_free(aios_diffusion_model *m);
/* (Re)allocates a KV cache of n_ctx rows (0 frees it; BERT has none): enables AIOS_KV_EXACT / AIOS_KV_PREFIX
 * for canvases up to n_ctx tokens.  Memory: n_layer * n_ctx * n_head_kv * head_dim * 8 bytes. */
aios_status aios_diffusion_model_set_cache(aios_diffusion_model *m, int64_t n_ctx);
/* The denoiser table (owned by m, valid until it is freed). */
const aios_denoiser *aios_diffusion_model_denoiser(const aios_diffusion_model *m);
/* "llada", "dream", "bd3lm" or "bert-mlm". */
const char *aios_diffusion_model_kind(const aios_diffusion_model *m);

/* Text of token ids with the model's tokenizer (special tokens skipped); *text is malloc'd.
 * AIOS_ERR_NOT_FOUND when the model directory has no tokenizer.json. */
aios_status aios_diffusion_model_detokenize(aios_diffusion_model *m, const int32_t *ids, int64_t n, char **text);

/* The seed's diffuse(prompt, num_steps, guidance_scale, memory_guided): text in, text out.
 * The prompt (and the optional suffix, for infilling; NULL = none) are tokenized with the
 * model's tokenizer.json — BERT-MLM canvases get [CLS] ... [SEP] — and, with memory_guided,
 * conditioned on memories retrieved from p->memory_store (embedded by p->memory_encoder or the
 * store's recorded model).  Fills *out as aios_diffuse_sample does, plus out->text (the
 * generated span decoded) and the memories used; out->uncertain against
 * p->uncertainty_threshold.  A KV cache is sized automatically when p->kv_cache asks for one.
 *
 *     aios_diffusion_model *m;  aios_diffusion_model_open("models/LLaDA-8B-Instruct", &m);
 *     aios_diffuse_params p = aios_diffuse_default_params();
 *     p.gen_length = 64; p.steps = 64; p.block_length = 32;
 *     aios_diffuse_result r;
 *     if (aios_diffuse(m, "The capital of France is", NULL, &p, &r) == AIOS_OK) puts(r.text);
 *     aios_diffuse_result_free(&r);  aios_diffusion_model_free(m); */
aios_status aios_diffuse(aios_diffusion_model *m, const char *prompt, const char *suffix, const aios_diffuse_params *p,
                         aios_diffuse_result *out);

/* ---- MemoryConditioner (memory-guided generation).  The prompt text is the query: the top-k
 * memories are retrieved (a memory store's text search, or any retriever), their content
 * tokenized and placed ahead of the prompt, best first, separated by `separator`, as long as
 * they fit in `token_budget` tokens (a memory that does not fit is skipped, a shorter one after
 * it may still fit).  The result says which memories were used. ---- */
typedef struct {
    const char *id;         /* memory id (borrowed until the next retriever call) */
    const char *content;    /* NULL content is skipped */
    float score;            /* similarity */
} aios_memcond_hit;
/* Fills up to top_k hits for `query`, best first; *n_hits receives the count. */
typedef aios_status (*aios_memcond_retrieve_fn)(void *user, const char *query, int32_t top_k,
                                                aios_memcond_hit *hits, int32_t *n_hits);
/* Token ids of `text` without special tokens: writes up to cap ids, *n = the full count. */
typedef aios_status (*aios_memcond_tokenize_fn)(void *user, const char *text, int32_t *ids, int64_t cap, int64_t *n);
typedef struct {
    int32_t top_k;          /* 3 */
    int64_t token_budget;   /* 256: memory tokens (with separators) ahead of the prompt */
    float min_score;        /* hits below are ignored (-2 = none) */
    const char *separator;  /* "\n" after each memory */
} aios_memcond_params;
aios_memcond_params aios_memcond_default_params(void);
typedef struct {
    int32_t *ids;           /* prompt_ids[0 .. keep_first) memories prompt_ids[keep_first ..] */
    int64_t n_ids;
    int64_t n_memory_tokens;
    int32_t n_used;         /* memories placed, in the order placed */
    char (*used_ids)[AIOS_MEMCOND_ID_MAX];
    float *used_scores;
} aios_memcond_result;
/* Builds the conditioned prompt.  `prompt` is the query text; prompt_ids (n_prompt) its tokens
 * (with special tokens); the first keep_first of them (BOS / [CLS]) stay in front.  Errors from
 * the callbacks are returned.  Free the result with aios_memcond_result_free. */
aios_status aios_memcond_build(aios_memcond_retrieve_fn retrieve, void *retrieve_user, aios_memcond_tokenize_fn tokenize,
                               void *tokenize_user, const char *prompt, const int32_t *prompt_ids, int64_t n_prompt,
                               int64_t keep_first, const aios_memcond_params *p, aios_memcond_result *out);
void aios_memcond_result_free(aios_memcond_result *r);

/* ---- Memory retrieval shared by every memory-conditioned path (autoregressive generation,
 * the server, diffusion's MemoryConditioner, the Python package): a memory store plus the
 * encoder that embeds queries with the store's model. ---- */
typedef struct aios_memory_retriever aios_memory_retriever;
typedef struct {
    int32_t top_k;          /* 3 (at most 1024) */
    float min_score;        /* cosine similarity below which a memory is not used (-2 = none) */
    const char *category;   /* filters (NULL = any), applied before ranking */
    const char *source;
} aios_memory_query;
aios_memory_query aios_memory_query_default(void);
/* Opens the store in `store_dir` read-only (a snapshot; no lock, so a writer may keep working)
 * and the encoder `encoder` (NULL or "" = the embedding model the store records).  Errors:
 * what opening the store or the encoder returned; AIOS_ERR_NOT_FOUND when the store records no
 * model and none is given.  Free with aios_memory_retriever_free. */
aios_status aios_memory_retriever_open(const char *store_dir, const char *encoder, aios_memory_retriever **out);
/* A retriever over a store and an encoder the caller keeps (both borrowed: they must outlive
 * it; the caller serialises their use, e.g. the server's locks). */
aios_status aios_memory_retriever_wrap(aios_store *st, aios_encoder *enc, aios_memory_retriever **out);
void aios_memory_retriever_free(aios_memory_retriever *r);
/* Embeds `query` and fills up to q->top_k hits (best first, score >= q->min_score, filters
 * applied); *n_hits receives the count (0 for an empty store or no hit).  hits[i].id / content
 * point into the retriever and stay valid until its next call.  q NULL = defaults. */
aios_status aios_memory_retrieve(aios_memory_retriever *r, const char *query, const aios_memory_query *q,
                                 aios_memcond_hit *hits, int32_t *n_hits);
/* The same as an aios_memcond_retrieve_fn (user = the retriever; default filters). */
aios_status aios_memory_retrieve_fn(void *user, const char *query, int32_t top_k, aios_memcond_hit *hits,
                                    int32_t *n_hits);

/* ---- Memory-conditioned prompts for autoregressive generation (docs/generate.md, "Memory").
 * The documented template: retrieved notes, best first, become a notes block
 *
 *     <header>\n- <note 1>\n- <note 2>\n
 *
 * AIOS_MEMPROMPT_USER (default): the last user message's content becomes
 * `block + "\n" + content`.  AIOS_MEMPROMPT_SYSTEM: the system message (the conversation's own,
 * else the chat template's default one, else none) becomes `system + "\n\n" + block` without the
 * block's final newline (the block alone when there is no system text), as the first message.
 * The messages are then rendered with the model's chat template as aios_generator_chat_prompt
 * does; without `chat` the "conversation" is one text prompt and the block goes in front of it.
 * Notes are counted in tokens of the model's tokenizer: the block adds at most max_tokens tokens
 * to the prompt, and never so many that the prompt plus `reserve` tokens passes the context.  A
 * note that does not fit whole is cut to its first k tokens (decoded; an incomplete UTF-8 tail
 * is dropped; k >= 4, else the block ends before it) and is the last one; no note at all
 * (empty store, nothing above min_score, no room) leaves the prompt exactly as it is without
 * memory. ---- */
typedef enum { AIOS_MEMPROMPT_USER = 0, AIOS_MEMPROMPT_SYSTEM = 1 } aios_memprompt_place;
#define AIOS_MEMPROMPT_HEADER "Use these notes from memory to answer:"
typedef struct {
    int64_t max_tokens;         /* 256: tokens the notes may add to the prompt */
    aios_memprompt_place place; /* AIOS_MEMPROMPT_USER */
    const char *header;         /* NULL = AIOS_MEMPROMPT_HEADER */
} aios_memprompt_params;
aios_memprompt_params aios_memprompt_default_params(void);
typedef struct {
    char id[AIOS_MEMCOND_ID_MAX];
    float score;
    int64_t n_tokens;           /* tokens of the note's content kept */
    int cut;                    /* 1: cut to n_tokens to fit */
    char *content;              /* the content as placed (malloc'd) */
} aios_memprompt_source;
typedef struct {
    char *prompt;               /* the rendered prompt text (malloc'd) */
    char *conditioned;          /* the message content that carries the notes (malloc'd), NULL
                                   when no note was placed */
    int conditioned_index;      /* its index in the messages (-1: a system message was inserted
                                   in front, or no note) */
    int64_t n_prompt_tokens;    /* tokens of `prompt` (the tokenizer's special tokens included) */
    int64_t n_added_tokens;     /* of which the notes added */
    int32_t n_sources;          /* notes placed, best first */
    aios_memprompt_source *sources;
} aios_memprompt_result;
/* Renders msgs (n; roles as aios_generator_chat_prompt; the last "user" message is the one
 * conditioned) with the notes of hits (n_hits, best first; NULL content skipped) — or, with
 * chat 0, the single text msgs[0].content.  reserve: tokens kept free for the answer (e.g. the
 * max_tokens of the generation, capped by the caller).  Free with aios_memprompt_result_free.
 * AIOS_ERR_INVALID_ARG for a conversation without a user message or bad params. */
aios_status aios_generator_memory_prompt(aios_generator *g, const aios_chat_message *msgs, size_t n, int chat,
                                         const aios_memcond_hit *hits, int32_t n_hits, const aios_memprompt_params *p,
                                         int64_t reserve, aios_memprompt_result *out);
void aios_memprompt_result_free(aios_memprompt_result *r);

/* Parses "low_confidence" | "margin" | "entropy" | "random" (-1 if unknown). */
int aios_remask_parse(const char *s);
const char *aios_remask_name(aios_remask a);

/* ======================================================================================
 * For language bindings (src/binding/binding.c; the Python package in python/ uses them).
 * ====================================================================================== */
/* A buffer of n bytes (64-byte aligned) owned by the caller, to be freed with aios_free; NULL
 * when out of memory.  Lets a binding wrap library-owned memory (e.g. a NumPy array over the
 * embeddings of aios_encode_batch) without a copy.  Thread-safe. */
void *aios_alloc(size_t n);
/* Frees memory the library allocated and documented as malloc'd (aios_generator_tokenize's ids,
 * aios_generator_detokenize's text, ...) or that aios_alloc returned.  NULL is a no-op. */
void aios_free(void *p);
/* The active kernel tier: "ref", "avx2" or "avx512" (AIOS_KERNELS forces one). */
const char *aios_kernel_tier(void);
/* An aios_embed_fn over an encoder: pass it with the aios_encoder as `user` to
 * aios_store_params.embed or aios_store_set_embedder.  AIOS_ERR_SHAPE when the encoder's
 * dimension is not the store's. */
aios_status aios_encoder_embed(void *user, const char *text, float *out, int32_t dim);

/* ======================================================================================
 * Server: the OpenAI-compatible HTTP server behind `aios serve` (src/server/, docs/server.md).
 * Routes: GET /health, GET /v1/models, POST /v1/embeddings, /v1/completions,
 * /v1/chat/completions ("stream": true gives Server-Sent Events), POST /v1/memories,
 * GET|DELETE /v1/memories/{id}, POST /v1/memories/search, POST /v1/diffuse.  Errors are OpenAI error objects
 * {"error":{"message","type","param","code"}} with 400 / 404 / 405 / 413 / 500.
 *
 *     aios_server_params sp = aios_server_default_params();
 *     const char *models[] = {"models/stories260K"};
 *     sp.models = models; sp.n_models = 1; sp.port = 0;      // 0: any free port
 *     aios_server *srv;
 *     if (aios_server_start(&sp, &srv) != AIOS_OK) { ... aios_last_error() ... }
 *     printf("http://127.0.0.1:%d\n", aios_server_port(srv));  // serving on its own threads
 *     ...
 *     aios_server_stop(srv);
 *
 * Each model handle serves one request at a time (a mutex per handle); distinct handles serve
 * in parallel, one thread per connection.  Embedding requests that arrive together are encoded
 * as one batch.  Safe by default: see api_key, the Host check on loopback binds and the caps.
 * ====================================================================================== */
typedef struct aios_server aios_server;

typedef struct {
    const char *host;                /* numeric IPv4/IPv6 address or "localhost" ("127.0.0.1") */
    int port;                        /* 8080; 0 = any free port (see aios_server_port) */
    const char *const *models;       /* generation model paths (n_models); the first is the
                                        default; each is named by its config's _name_or_path
                                        (else the directory's last component) or its alias */
    size_t n_models;
    const char *embedding_model;     /* BERT-family encoder for /v1/embeddings and memories, or NULL */
    const char *store_dir;           /* memory store directory (created when empty), or NULL */
    const char *diffusion_model;     /* LLaDA / Dream / BD3LM / BERT-MLM model for /v1/diffuse, or NULL */
    int n_threads;                   /* kernel threads per model; 0 = AIOS_THREADS / all cores */
    size_t max_body;                 /* request body limit in bytes (16 MiB); larger gets 413 */
    int max_connections;             /* simultaneous requests (64); past it a 503, with one extra
                                        slot kept for GET /health */
    /* Safe by default (docs/server.md "Security"). */
    const char *api_key;             /* NULL = open; else every route but /health needs
                                        "Authorization: Bearer KEY" (compared in constant time) */
    const char *cors_origin;         /* NULL = no CORS headers; else Access-Control-Allow-Origin */
    int timeout_s;                   /* seconds a connection may sit idle (headers, body) (30) */
    int max_per_client;              /* simultaneous requests per client address (16); 503 past it */
    const char *const *aliases;      /* NULL, or n_models ids for models[i] (NULL entry = default) */
    const char *embedding_alias;     /* id of the embedding model (NULL = from its config) */
    const char *diffusion_alias;     /* id of the diffusion model (NULL = from its config) */
    /* Bounded work: a request whose cost exceeds a cap gets a 400 naming it (0 = default). */
    int64_t max_embedding_tokens;    /* sum over inputs of their tokens after truncation (1048576) */
    int64_t max_generation_tokens;   /* prompt tokens + max_tokens (65536) */
    int64_t max_diffusion_work;      /* gen_length x steps (1048576) */
    /* LoRA adapters (docs/server.md "Adapters"): attached at start, each to models[adapter_models[i]]
     * (adapter_models NULL: the first model) at adapter_scales[i] (NULL: 1), named by the path's
     * last component.  adapter_dir: POST /v1/adapters may load adapters from inside this
     * directory; NULL = loading over HTTP is refused (403), listing / rescaling / unloading work. */
    const char *const *adapter_paths;
    const float *adapter_scales;
    const int *adapter_models;
    size_t n_adapters;
    const char *adapter_dir;
    /* Skill library (docs/server.md "Skills", aios skills add): completions and chat are routed
     * over its skills, whose adapters the server attaches to models[skills_model] as they are
     * chosen.  skills_router: 0 none (base model), 1 semantic (default), 2 arrow, 3 compose — what
     * `aios generate --skills LIB --router R` does; a request's "router" / "skills" override it.
     * skills_top_k / skills_threshold / skills_temperature: the semantic choice (1, 0.5, 0.1);
     * arrow_top_k / arrow_temperature: arrow's per-token mix (2, 1).  An answer whose uncertainty
     * score is >= uncertainty_threshold (0.7; evolution.uncertainty_threshold) is queued for
     * learning in store_dir when the server has a store and an embedding model. */
    const char *skills_dir;
    int skills_model;
    int skills_router;
    int skills_top_k;
    double skills_threshold, skills_temperature;
    int arrow_top_k;
    float arrow_temperature;
    double uncertainty_threshold;
    aios_int8_act embedding_int8_act; /* the embedding model's aios_encoder_params.int8_act (AUTO) */
    int skills_encoder_bits;          /* the router's prompt encoder: 8 (default) quantized to int8
                                         at open (aios_encoder_params.quantize_bits: ~3x faster
                                         per prompt), 0 = the weights as stored (exact float) */
    aios_kv_type kv_type;             /* every generation model's KV caches (AIOS_KV_F32) */
    aios_int8_act int8_act;           /* every generation model's aios_generator_params.int8_act (AUTO) */
} aios_server_params;

aios_server_params aios_server_default_params(void);
/* Opens the models and the store, binds and starts serving on background threads; returns at
 * once.  Errors: what opening a model or the store returned (the message names the path),
 * AIOS_ERR_IO when the address cannot be bound.  Free with aios_server_stop. */
aios_status aios_server_start(const aios_server_params *params, aios_server **out);
/* The port bound (useful with port 0). */
int aios_server_port(const aios_server *srv);
/* Stops accepting, waits for the requests in flight (streams are cancelled), closes the
 * models and the store, frees.  NULL is a no-op. */
void aios_server_stop(aios_server *srv);


/* ======================================================================================
 * Skill library and semantic router (src/skills/skills.c, docs/evolution.md).
 * A library is a directory LIB/ holding adapters (LIB/<name>/ PEFT directories or
 * LIB/<name>.parquet skill cards) and LIB/index.parquet, a row per skill (DuckDB reads it).
 * Every vector of a library comes from one encoder (recorded in the index).  Changes rewrite
 * the index atomically (temporary file + rename); an index of another version is refused.
 * A handle is used by one thread at a time.
 * ====================================================================================== */
typedef struct aios_skill_lib aios_skill_lib;
typedef struct {
    char *name;                   /* [A-Za-z0-9._-]{1,100} */
    char *description;            /* NULL = none */
    float *description_embedding; /* (dim) or NULL */
    float *centroid;              /* (dim) mean embedding of the training questions, or NULL */
    char *adapter;                /* relative to the library directory (or absolute) */
    char *base_model;             /* NULL = unknown */
    int64_t n_pairs, steps;       /* training facts (0 = unknown) */
    double lr;                    /* NAN = unknown */
    double loss_before, loss_after; /* held-out loss before / after training (NAN = not measured) */
    double ppl_before, ppl_after;   /* regression-set perplexity of the base / with the skill */
    char *status;                 /* "active" or "rejected" (add: NULL = "active") */
    char *reason;                 /* why (NULL = none) */
    int64_t created_us;           /* UTC microseconds (add: 0 = now) */
} aios_skill;
/* Opens LIB (create = 1: an empty library when LIB holds no index; the directory is made). */
aios_status aios_skills_open(const char *dir, int create, aios_skill_lib **out);
void aios_skills_close(aios_skill_lib *lib);
const char *aios_skills_dir(const aios_skill_lib *lib);
/* The encoder every vector comes from ("" until set) and its dimension (0 until set). */
const char *aios_skills_encoder(const aios_skill_lib *lib);
int32_t aios_skills_dim(const aios_skill_lib *lib);
/* Sets the encoder of an empty library; AIOS_ERR_INVALID_ARG when it records another one. */
aios_status aios_skills_set_encoder(aios_skill_lib *lib, const char *encoder, int32_t dim);
int64_t aios_skills_count(const aios_skill_lib *lib);
/* Row i (valid until the next change), NULL out of range; by name, NULL when absent. */
const aios_skill *aios_skills_at(const aios_skill_lib *lib, int64_t i);
const aios_skill *aios_skills_get(const aios_skill_lib *lib, const char *name);
/* Adds a copy of *s (vectors of aios_skills_dim floats) and rewrites the index.
 * AIOS_ERR_EXISTS when the name is taken.  The adapter files are the caller's to place. */
aios_status aios_skills_add(aios_skill_lib *lib, const aios_skill *s);
/* Drops the row (the adapter files stay; the caller removes them). */
aios_status aios_skills_remove(aios_skill_lib *lib, const char *name);
/* The adapter's full path into buf. */
aios_status aios_skills_adapter_path(const aios_skill_lib *lib, const aios_skill *s, char *buf, size_t n);
/* 1 when name is a valid skill name. */
int aios_skills_name_ok(const char *name);

/* Semantic router: score = cosine(query, centroid) (description embedding when the skill has
 * no centroid); the top_k active skills with score >= threshold, best first, weights
 * softmax(score / temperature) over those kept.  None above the threshold: *n = 0 (the base
 * model alone). */
#define AIOS_ROUTE_MAX 16
typedef struct {
    int top_k;          /* 1 */
    double threshold;   /* 0.5 (config evolution.router_threshold) */
    double temperature; /* 0.1 */
} aios_router_params;
typedef struct {
    int64_t index;      /* row in the library */
    double score, weight;
} aios_route;
aios_router_params aios_router_default_params(void);
aios_status aios_skills_route(const aios_skill_lib *lib, const float *query, int32_t dim, const aios_router_params *p,
                              aios_route *out, int *n);


/* The evolution loop's records in a memory store (src/skills/learn.c): an uncertain answer
 * (category "learning_queue": never dropped, never a training target) or a pair a person
 * approved (category "approved", `aios teach`; what `aios evolve` trains on).  The embedding is
 * the question's; content {"question","answer"[,"score","skills","model"]}. */
#define AIOS_LEARN_QUEUE "learning_queue"
#define AIOS_LEARN_APPROVED "approved"
typedef struct {
    const char *question, *answer;
    int approved;        /* 1: "approved", 0: "learning_queue" */
    double score;        /* queued: the answer's uncertainty score */
    const char *skills;  /* queued: skills that answered, comma-separated ("" = base model) */
    const char *model;   /* queued: the model */
} aios_learn_item;
aios_status aios_learn_record(aios_store *st, aios_encoder *enc, const aios_learn_item *it, char id_out[AIOS_MEMORY_ID_MAX]);
/* The item of a learning record (question / answer point into *owned, free it);
 * AIOS_ERR_NOT_FOUND when m is no learning record. */
aios_status aios_learn_parse(const aios_memory *m, aios_learn_item *it, char **owned);

/* A skill's routing vectors from enc: the description's embedding (desc NULL: *desc_emb = NULL)
 * and the centroid, the mean of the questions' L2-normalised embeddings (n = 0: *centroid =
 * NULL); aios_encoder_dim floats each, malloc'd (the caller frees them). */
aios_status aios_skill_vectors(aios_encoder *enc, const char *desc, const char *const *questions, int64_t n,
                               float **desc_emb, float **centroid);
/* Adds a skill from an adapter (`aios skills add`): a PEFT directory (saved again as LIB/<name>/)
 * or a skill card (copied to LIB/<name>.parquet), its vectors from `encoder` (NULL: the one the
 * library records; an empty library records the one given), the questions (n may be 0) giving
 * the centroid, description NULL = the name; status active.  AIOS_ERR_EXISTS when the name or
 * its files are taken; on an error nothing is left in LIB. */
aios_status aios_skills_add_adapter(aios_skill_lib *lib, const char *encoder, const char *adapter, const char *name,
                                    const char *description, const char *const *questions, int64_t n_questions);
/* Removes the skill's row and its adapter files when they lie inside LIB (`aios skills remove`).
 * AIOS_ERR_NOT_FOUND when there is no such skill. */
aios_status aios_skills_delete(aios_skill_lib *lib, const char *name);

/* The learning half of the loop (`aios evolve`, src/skills/evolve.c; docs/evolution.md "The
 * loop"): the store's approved pairs (never its learning queue) grouped by topic
 * (average-linkage clustering of the question embeddings); per group of at least 3 pairs a LoRA
 * skill trained on all but the last third, the held-out loss measured, extended on the whole
 * group, kept only when it reproduces every taught answer greedily and the regression set
 * (general prompts, the base model's greedy answers, through the routed library) keeps its
 * perplexity within max_ppl_increase; kept skills join LIB as active, the others as rejected with
 * the figures and the reason; the group's records become "learned".  Progress lines go to
 * log (NULL: none). */
typedef struct {
    const char *target;        /* adapted modules, "q_proj,v_proj,down_proj" */
    const char *regression;    /* JSONL of {"q": ...} prompts; NULL = 8 built-in general prompts */
    int64_t steps;             /* 8: training steps on the group's training part */
    int64_t extend_steps;      /* 8: further steps on the whole group (0: none) */
    int64_t rank;              /* 8 (alpha = 2 rank) */
    double lr;                 /* 3e-3 */
    double group_threshold;    /* 0.3: mean cosine for two groups to merge */
    double max_ppl_increase;   /* 0.02 */
    int require_heldout;       /* 0: 1 rejects a skill whose held-out loss did not improve */
    int dry_run;               /* 1: only group (status "planned") */
    int n_threads;             /* 0 = default */
    void (*log)(void *user, const char *line);
    void *log_user;
} aios_evolve_params;
typedef struct {
    char *name;                /* the skill's name (NULL for a group that waits or is planned) */
    char *status;              /* "active", "rejected", "waiting" (fewer than 3 pairs), "planned" (dry run) */
    char *reason;              /* rejected: why (NULL otherwise) */
    int64_t n_pairs, n_train, n_heldout, steps, n_reproduced, n_routed;
    double loss_before, loss_after; /* held-out loss (NAN: not measured) */
    double ppl_before, ppl_after;   /* routed regression perplexity (NAN: not measured) */
    char **questions;          /* (n_pairs) the group's questions in teaching order */
} aios_evolve_group;
typedef struct {
    int64_t n_pairs;           /* approved pairs found */
    int64_t n_groups;
    aios_evolve_group *groups; /* (n_groups); filled as far as it got when an error stops the run */
} aios_evolve_result;
aios_evolve_params aios_evolve_default_params(void);
aios_status aios_evolve(const char *store, const char *skills, const char *model, const aios_evolve_params *p,
                        aios_evolve_result *out);
void aios_evolve_result_free(aios_evolve_result *r);

#ifdef __cplusplus
}
#endif
#endif /* AIOS_H */
