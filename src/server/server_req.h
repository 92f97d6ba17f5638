/*
 * server/server_req.h — request bodies of the HTTP server, parsed and validated without sockets
 * (so fuzz/fuzz_server_json.c can drive the parser on raw bytes).  Internal.
 *
 * aios__req_parse() turns a JSON body into an aios__req whose strings and arrays point into
 * (or were allocated beside) the parsed cJSON tree the request owns; aios__req_free() releases
 * everything.  A malformed body or a field of the wrong type or range gives AIOS_ERR_INVALID_ARG
 * with a message naming the field ("max_tokens: expected an integer in [1, 1048576]"); *param
 * (may be NULL) receives the field's name for the error object.
 */
#ifndef AIOS_SERVER_REQ_H
#define AIOS_SERVER_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "aios.h"

typedef enum {
    AIOS__REQ_EMBEDDINGS = 0,    /* POST /v1/embeddings */
    AIOS__REQ_COMPLETION = 1,    /* POST /v1/completions */
    AIOS__REQ_CHAT = 2,          /* POST /v1/chat/completions */
    AIOS__REQ_MEMORY_ADD = 3,    /* POST /v1/memories */
    AIOS__REQ_MEMORY_SEARCH = 4, /* POST /v1/memories/search */
    AIOS__REQ_DIFFUSE = 5,       /* POST /v1/diffuse */
    AIOS__REQ_MEMORY_UPDATE = 6, /* POST /v1/memories/{id} (content, embedding, metadata, timestamp) */
    AIOS__REQ_ADAPTER = 7,       /* POST /v1/adapters {"path", "name"?, "scale"?} (load) or {"name", "scale"} (rescale) */
    AIOS__REQ_KIND_COUNT = 8,
} aios__req_kind;

#define AIOS__REQ_MAX_STOP 4
#define AIOS__REQ_MAX_INPUTS 2048      /* embedding inputs per request */
#define AIOS__REQ_MAX_IDS (1 << 20)    /* token ids per input / prompt */
#define AIOS__REQ_MAX_TOKENS (1 << 20) /* max_tokens upper bound */
#define AIOS__REQ_MAX_MESSAGES 4096
#define AIOS__REQ_MAX_ADAPTERS 16     /* as AIOS_DECODER_MAX_ADAPTERS */
#define AIOS__REQ_MAX_DIM (1 << 16)    /* embedding floats in a memory request */

/* The routers of "router" (and `--router`), in this order: the index is aios__req.router. */
enum { AIOS__ROUTER_NONE = 0, AIOS__ROUTER_SEMANTIC, AIOS__ROUTER_ARROW, AIOS__ROUTER_COMPOSE, AIOS__ROUTER_COUNT };
extern const char *const AIOS__ROUTER_NAMES[AIOS__ROUTER_COUNT];

typedef struct {
    aios__req_kind kind;
    void *json;                 /* the cJSON tree (owns the strings below) */
    const char *model;          /* NULL when absent */

    /* embeddings: n_inputs texts (text[i], text_len[i]) or, when is_ids, token id lists */
    size_t n_inputs;
    int is_ids;
    const char **text;
    size_t *text_len;
    int32_t **ids;              /* ids[i] (ids_len[i]) */
    size_t *ids_len;
    int base64;                 /* "encoding_format": "base64" (little-endian float32) */
    int64_t dimensions;         /* "dimensions", 0 when absent (the server checks the model's) */

    /* completions / chat */
    const char *prompt;         /* completion text prompt, or NULL when prompt_ids */
    int32_t *prompt_ids;
    size_t n_prompt_ids;
    aios_chat_message *messages;
    size_t n_messages;
    int max_tokens;             /* -1 = absent */
    double temperature;         /* 1 when absent (OpenAI's default) */
    double top_p;               /* 1 */
    int top_k;                  /* 0 */
    double min_p;               /* 0 */
    double presence_penalty, frequency_penalty, repetition_penalty;
    int has_seed;
    uint64_t seed;
    const char *stop[AIOS__REQ_MAX_STOP + 1]; /* NULL-terminated */
    int n_stop;
    int stream;
    int include_usage;          /* stream_options.include_usage */
    int ignore_eos;
    int logprobs;               /* completions: "logprobs": N (0..20); chat: "logprobs": true */
    int top_logprobs;           /* alternatives per token: completions N, chat "top_logprobs" (0..20) */
    /* "adapters": [{"name", "scale"?}] — loaded adapters (GET /v1/adapters) applied to this request
     * only; has_adapters with n_adapters 0 means none ([] asks for the bare model) */
    int has_adapters;
    int n_adapters;
    const char *adapter_name[AIOS__REQ_MAX_ADAPTERS];
    float adapter_scale[AIOS__REQ_MAX_ADAPTERS]; /* 1 when absent */
    /* skills (docs/server.md "Skills"): "router": "none"|"semantic"|"arrow"|"compose" (router -1 =
     * absent: the server's --router); "skills": ["name" | {"name", "weight"?}] forces those skills
     * of the library (has_skills with n_skills 0: none, the base model); weight NAN = absent */
    int router;
    /* "router_top_k" (1..16), "router_temperature" ([1e-6, 1e6]), "router_threshold" ([-1, 1]), as
     * the flags --top-k / --router-top-k, --router-temperature, --router-threshold:
     * the router's parameters for this request (0 / 0 / NAN = absent: the server's): semantic and
     * compose take top_k skills with a cosine >= threshold, weighed by softmax(score / temperature);
     * arrow mixes top_k adapters per token by softmax(|x . prototype| / temperature) */
    int router_top_k;
    double router_temperature;
    double router_threshold;
    int has_skills;
    int n_skills;
    const char *skill_name[AIOS__REQ_MAX_ADAPTERS];
    float skill_weight[AIOS__REQ_MAX_ADAPTERS];
    char *chat_text;            /* joined text content parts, one malloc'd block (freed with the request) */
    size_t n_chat_text;
    /* "memory": {"store", "top_k", "min_score", "filter": {"category", "source"}, "max_tokens",
     * "place": "user"|"system"} — condition the prompt on the server's memory store */
    int has_memory;
    const char *mem_store;      /* NULL = the server's store; else must name it */
    int32_t mem_top_k;          /* 3 */
    float mem_min_score;        /* -2 = none */
    const char *mem_category, *mem_source;
    int64_t mem_max_tokens;     /* 256 */
    int mem_place;              /* aios_memprompt_place */

    /* memories */
    const char *memory_id;      /* add: "id" (NULL = generated) */
    const char *content;        /* add: "content" or "text"; search: "query" */
    float *embedding;           /* add / search: "embedding" (dim floats), or NULL */
    int32_t dim;
    int64_t timestamp_us;       /* add: "timestamp" microseconds; AIOS_TIMESTAMP_NOW when absent */
    int has_metadata;
    const char *category, *source;
    int has_quality;
    float quality_score;
    int32_t search_top_k;       /* 10 */
    int64_t list_limit;         /* GET /v1/memories?limit= (20) ... parsed by the server, not here */
    float threshold;            /* -2 = none */
    int64_t since_us, until_us;
    float min_quality;          /* -INFINITY = any */
    int include_embedding;      /* search: return each hit's embedding */

    /* diffuse: prompt / prompt_ids, temperature (0 when absent), top_k, top_p, seed as above */
    const char *suffix;         /* text after the gap, or NULL */
    int32_t *suffix_ids;
    size_t n_suffix_ids;
    int64_t gen_length;         /* 64 */
    int64_t steps;              /* 0 = gen_length */
    int64_t block_length;       /* 0 = gen_length (block diffusion: the model's) */
    int algorithm;              /* aios_remask */
    int plan;                   /* aios_plan */
    double confidence_threshold;/* "threshold": Fast-dLLM mode when > 0 */
    int stop_at_eos;            /* 1 */

    /* adapters: POST /v1/adapters */
    const char *adapter_path;   /* NULL: a rescale of the loaded adapter "name" */
    const char *name;           /* NULL: the path's last component */
    int has_scale;
    float scale;                /* 1 when absent */
} aios__req;

/* Parses `len` bytes of `body` as a request of `kind`.  On failure *out holds nothing to free
 * (aios__req_free is still safe) and *param names the offending field ("" for the body). */
aios_status aios__req_parse(aios__req_kind kind, const char *body, size_t len, aios__req *out, const char **param);
void aios__req_free(aios__req *r);

#endif
