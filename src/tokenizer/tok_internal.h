/*
 * tokenizer/tok_internal.h — shared internals of the tokenizer module (not public).
 *
 * The pipeline mirrors Hugging Face `tokenizers`:
 *   text -> added-token split (non-normalized tokens) -> normalizer -> added-token split
 *   (normalized tokens) -> pre-tokenizer splits -> model tokens -> post-processor -> encoding.
 * A piece of text in flight is a tk_nstr: the normalized bytes plus, for every byte, the range
 * of original bytes it came from (absolute offsets into the sanitized input).  This is the
 * `NormalizedString` alignment model of `tokenizers`, so offsets come out identical.
 */
#ifndef AIOS_TOKENIZER_INTERNAL_H
#define AIOS_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

/* ---------------------------------------------------------------------------- utf-8 */
/* Decodes one code point at s[0..n); returns its length (1..4) or 0 when invalid. */
int tk_utf8_dec(const uint8_t *s, size_t n, uint32_t *cp);
/* Encodes cp into out (4 bytes room); returns the length. */
int tk_utf8_enc(uint32_t cp, uint8_t *out);
/* Length of the (valid) UTF-8 sequence starting with byte b. */
static inline int tk_utf8_len(uint8_t b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

/* Unicode predicates with the meanings Rust's char methods give them. */
bool tk_is_whitespace(uint32_t cp); /* White_Space */
bool tk_is_punct(uint32_t cp);      /* Bert/Punctuation: ASCII punctuation or category P* */
bool tk_is_numeric(uint32_t cp);    /* Nd Nl No */
bool tk_is_alnum(uint32_t cp);      /* \w-ish: letters, marks, numbers, connector punctuation */

/* ---------------------------------------------------------------------------- hash map */
/* String -> int32 map with open addressing; keys are copied into an internal pool. */
typedef struct {
    uint64_t *slots; /* low 32 bits: index+1 into entries (0 = empty); high 32: hash bits */
    size_t nslots;   /* power of two */
    struct tk_sent { uint64_t hash; uint32_t off, len; int32_t val; } *ent;
    size_t n, cap;
    char *pool;
    size_t pool_len, pool_cap;
} tk_strmap;
void tk_strmap_free(tk_strmap *m);
/* Sizes the table for n keys up front. */
aios_status tk_strmap_reserve(tk_strmap *m, size_t n);
/* Inserts or overwrites.  Returns AIOS_OK or AIOS_ERR_NOMEM. */
aios_status tk_strmap_put(tk_strmap *m, const char *k, size_t len, int32_t val);
/* Returns the value or -1. */
int32_t tk_strmap_get(const tk_strmap *m, const char *k, size_t len);
/* The same with the key's tk_hash precomputed; prefetch warms the slot for a later lookup. */
int32_t tk_strmap_get_h(const tk_strmap *m, const char *k, size_t len, uint64_t h);
void tk_strmap_prefetch(const tk_strmap *m, uint64_t h);
uint64_t tk_hash(const void *p, size_t n);

/* uint64 -> uint64 map (BPE merges: (left id, right id) -> (rank, new id)). */
typedef struct {
    struct tk_u64slot { uint64_t key, val; } *slots; /* key + 1; 0 = empty (one cache line per probe) */
    size_t nslots, n;
} tk_u64map;
void tk_u64map_free(tk_u64map *m);
aios_status tk_u64map_reserve(tk_u64map *m, size_t n);
aios_status tk_u64map_put(tk_u64map *m, uint64_t k, uint64_t v);
/* Returns 1 and *v when found. */
int tk_u64map_get(const tk_u64map *m, uint64_t k, uint64_t *v);

/* ---------------------------------------------------------------------------- nstr */
typedef struct { uint32_t s, e; } tk_span;
typedef struct {
    uint8_t *b;  /* normalized bytes (valid UTF-8) */
    tk_span *al; /* per byte: original byte range it came from */
    size_t len, cap;
    int arena;   /* storage belongs to the thread's encode arena (not freed one by one) */
} tk_nstr;

/* Bump allocator for the strings of one encode call: tk_arena_use(a) makes the calling thread
 * allocate tk_nstr storage from `a` until tk_arena_use(NULL); tk_arena_reset recycles it. */
typedef struct {
    struct tk_chunk { unsigned char *p; size_t used, cap; } *c;
    size_t n, cur;
} tk_arena;
void tk_arena_use(tk_arena *a);
void tk_arena_reset(tk_arena *a);
void tk_arena_free(tk_arena *a);
void tk_nstr_free(tk_nstr *n);
aios_status tk_nstr_reserve(tk_nstr *n, size_t extra);
/* Copies bytes [s,e) of src (with their alignments). */
aios_status tk_nstr_slice(const tk_nstr *src, size_t s, size_t e, tk_nstr *out);

/* A transform in the `NormalizedString::transform` sense: the caller walks the old string and
 * pushes (code point, change): change 0 replaces the next old char, change > 0 inserts, change
 * < 0 replaces the next old char and drops -change more.  The result has exact `tokenizers`
 * alignments. */
typedef struct {
    const tk_nstr *old;
    size_t off;   /* byte offset into old */
    tk_nstr out;
} tk_xform;
aios_status tk_xform_begin(tk_xform *x, const tk_nstr *old, size_t skip_chars);
aios_status tk_xform_push(tk_xform *x, uint32_t cp, int change);
/* Replaces *old's contents with the result (the old buffers are freed). */
void tk_xform_end(tk_xform *x, tk_nstr *old);

/* ---------------------------------------------------------------------------- splits */
typedef struct {
    tk_nstr n;
    int32_t tok_id; /* >= 0: already a token (added token), its value is n's text */
} tk_split;
typedef struct {
    tk_split *v;
    size_t n, cap;
} tk_splits;
void tk_splits_clear(tk_splits *s);
void tk_splits_free(tk_splits *s);
/* Appends a split that owns `n` (moved in). */
aios_status tk_splits_push(tk_splits *s, tk_nstr *n, int32_t tok_id);

/* Regions of a split: [s,e) byte ranges with a flag "is a match". */
typedef struct { uint32_t s, e; int match; } tk_region;
typedef struct { tk_region *v; size_t n, cap; } tk_regions;
aios_status tk_regions_push(tk_regions *r, size_t s, size_t e, int match);
enum { TK_SPLIT_REMOVED, TK_SPLIT_ISOLATED, TK_SPLIT_MERGED_PREV, TK_SPLIT_MERGED_NEXT, TK_SPLIT_CONTIGUOUS };
/* Applies a split behaviour to `regions` (covering all of n) and appends the pieces to out. */
aios_status tk_split_by_regions(const tk_nstr *n, tk_regions *regions, int behavior, tk_splits *out);

/* ---------------------------------------------------------------------------- components */
typedef struct tk_normalizer tk_normalizer;
typedef struct tk_pretok tk_pretok;
typedef struct tk_model tk_model;
typedef struct tk_post tk_post;
typedef struct tk_decoder tk_decoder;
struct cJSON;

aios_status tk_normalizer_parse(const struct cJSON *j, tk_normalizer **out);
void tk_normalizer_free(tk_normalizer *n);
aios_status tk_normalize(const tk_normalizer *n, tk_nstr *s);

aios_status tk_pretok_parse(const struct cJSON *j, tk_pretok **out);
void tk_pretok_free(tk_pretok *p);
/* Splits every non-token split of `in` into `out` (in is cleared). */
aios_status tk_pretokenize(const tk_pretok *p, tk_splits *in, tk_splits *scratch);

/* Model output token: id, value (pointer+len valid until the next call on the same scratch),
 * offsets in bytes of the split's normalized text. */
typedef struct { int32_t id; uint32_t s, e; const char *val; uint32_t vlen; } tk_mtok;
typedef struct { tk_mtok *v; size_t n, cap; char *pool; size_t plen, pcap; } tk_mtoks;
aios_status tk_mtoks_push(tk_mtoks *t, int32_t id, size_t s, size_t e, const char *val, size_t vlen);
void tk_mtoks_free(tk_mtoks *t);

aios_status tk_model_parse(const struct cJSON *j, tk_model **out);
void tk_model_free(tk_model *m);
/* Tokenizes one pre-tokenized word (bytes [0,len) of valid UTF-8); appends to out.
 * Thread-safe (any cache is per thread). */
aios_status tk_model_tokenize(const tk_model *m, const uint8_t *w, size_t len, tk_mtoks *out);
size_t tk_model_vocab_size(const tk_model *m);
int32_t tk_model_token_to_id(const tk_model *m, const char *s, size_t len);
/* Returns the token string (NULL when out of range) and its length. */
const char *tk_model_id_to_token(const tk_model *m, int32_t id, size_t *len);

/* An encoding under construction.  Token strings live in one pool (NUL-terminated, at toff);
 * the struct is reused between calls (tk_enc_reset keeps the capacity). */
typedef struct {
    int32_t *ids, *type_ids;
    uint8_t *special;
    tk_span *off; /* char offsets */
    size_t *toff, *tlen;
    aios_buf pool;
    size_t n, cap;
} tk_enc;
void tk_enc_free(tk_enc *e);
static inline void tk_enc_reset(tk_enc *e) {
    e->n = 0;
    e->pool.len = 0;
}
static inline const char *tk_enc_tok(const tk_enc *e, size_t i) { return (const char *)e->pool.data + e->toff[i]; }
aios_status tk_enc_push(tk_enc *e, int32_t id, const char *tok, size_t tlen, uint32_t s, uint32_t end, int32_t type_id, int special);
aios_status tk_post_parse(const struct cJSON *j, tk_post **out);
void tk_post_free(tk_post *p);
size_t tk_post_added(const tk_post *p, int pair);
/* a, b (b may be NULL) -> out.  texts are the sanitized inputs (for ByteLevel trim offsets). */
aios_status tk_post_process(const tk_post *p, tk_enc *a, tk_enc *b, int add_special, tk_enc *out,
                            const uint8_t *ta, size_t na, const uint8_t *tb, size_t nb);

aios_status tk_decoder_parse(const struct cJSON *j, tk_decoder **out);
void tk_decoder_free(tk_decoder *d);
/* tokens (n strings with lengths) -> one string appended to out. */
aios_status tk_decode_tokens(const tk_decoder *d, char **toks, size_t *lens, size_t n, aios_buf *out);

/* Precompiled normalizer (sentencepiece charsmap). */
typedef struct tk_precompiled tk_precompiled;
aios_status tk_precompiled_parse(const char *b64, tk_precompiled **out);
void tk_precompiled_free(tk_precompiled *p);
aios_status tk_precompiled_normalize(const tk_precompiled *p, tk_nstr *s);

/* Regex (PCRE2, Unicode; \s and \S rewritten to Unicode White_Space as Oniguruma has it). */
typedef struct tk_regex tk_regex;
aios_status tk_regex_compile(const char *pattern, size_t len, tk_regex **out);
void tk_regex_free(tk_regex *r);
/* Fills regions with the matches (match=1) and the gaps (match=0) covering s[0,n). */
aios_status tk_regex_regions(const tk_regex *r, const uint8_t *s, size_t n, tk_regions *out);

/* base64 decode; returns malloc'd bytes. */
aios_status tk_b64_decode(const char *s, uint8_t **out, size_t *len);

/* Arena JSON reader producing cJSON-shaped nodes (read with cJSON accessors, free with
 * tk_json_free, never cJSON_Delete).  Numbers are converted as serde_json does. */
typedef struct tk_json tk_json;
aios_status tk_json_parse(const char *text, size_t len, tk_json **out);
const struct cJSON *tk_json_root(const tk_json *d);
void tk_json_free(tk_json *d);

/* JSON helpers over cJSON. */
const struct cJSON *tk_j(const struct cJSON *o, const char *key); /* NULL when absent or null */
const char *tk_jstr(const struct cJSON *o, const char *key);       /* NULL unless a string */
int tk_jbool(const struct cJSON *o, const char *key, int dflt);

/* ---------------------------------------------------------------------------- gguf */
/* tokenizer.json and tokenizer_config.json texts equivalent to a GGUF file's tokenizer.ggml.*
 * metadata (tok_gguf.c); the caller frees both. */
struct aios_gguf;
aios_status aios__tokenizer_gguf_json(const struct aios_gguf *g, char **json, char **config);

#endif
