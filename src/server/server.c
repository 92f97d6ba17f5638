/*
 * server.c — the OpenAI-compatible HTTP server (`aios serve`, DESIGN.md §1).
 *
 * libmicrohttpd runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION with an internal
 * polling thread), so a handler may block: on a model's mutex, or, for a streamed response, on
 * the condition variable of its producer.  Engine handles are single-threaded, so each one
 * (every generator, the encoder, the memory store) has its own mutex and requests on one handle
 * run one after another while requests on distinct handles run in parallel.
 *
 * Safe by default (docs/server.md "Security"): before a body is read, the headers decide — a
 * loopback bind refuses a Host that names no loopback address (DNS rebinding), --api-key needs
 * a Bearer token (constant-time compare; /health stays open), POST needs a JSON content type,
 * and a request slot is taken (max_connections in flight, max_per_client per address; a 503 past
 * them, /health always passes).  Costs are bounded before work starts (caps named in the 400);
 * non-streamed generation polls the socket and stops when the client left.
 *
 * Embedding requests that arrive together are encoded as one batch (embed_batched); completions
 * of one model share a decode batch that requests join and leave between steps
 * (generate_batched: continuous batching).
 *
 * A request body is accumulated up to max_body bytes (then discarded: 413), parsed and
 * validated by server_req.c (no sockets there, fuzzed by fuzz/fuzz_server_json.c), and only
 * then handed to an engine.  Errors follow OpenAI's shape {"error":{"message","type","param",
 * "code"}}: bad JSON / wrong types / out-of-range values 400, unknown route or model or memory
 * 404, wrong method 405, too large 413, an engine failure 500 with aios_last_error().
 *
 * Streaming ("stream": true): a producer thread runs the generation with an on_token callback
 * that appends Server-Sent Events (`data: {json}\n\n`, finally `data: [DONE]\n\n`) to a buffer;
 * MHD's content-reader callback drains it (chunked transfer encoding).  When the client goes
 * away MHD frees the response: the free callback sets `cancel`, the token callback then returns
 * nonzero, generation stops and the thread is joined — nothing outlives its connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/internal.h"
#include "engine/encode_internal.h"
#include "engine/generate_internal.h"
#include "model/decoder.h"
#include "server/server_gate.h"
#include "server/server_req.h"
#include "server/server_skills.h"

/* A LoRA adapter attached to a generator (docs/server.md "Adapters"). */
typedef struct {
    char name[129];
    char path[1024];
    int id;            /* the generator's adapter id */
    float scale;       /* the default: what requests without an "adapters" field get */
    float applied;     /* the scale the generator holds now */
    int skill;         /* 1: a skill's adapter (--skills), attached when a request first
                          uses it and managed by the router, not by /v1/adapters */
    uint64_t last_use; /* skill adapters: the request that last used it (eviction order) */
} gen_adapter;

struct gen_job;
#define GEN_BATCH_MAX 32 /* generations in one decode batch; more wait for a free row */

typedef struct {
    char id[256];
    char dir_id[256]; /* the directory's last component: also accepted as "model" */
    aios_generator *g;
    pthread_mutex_t mu; /* the generator and its adapters */
    gen_adapter ad[AIOS__REQ_MAX_ADAPTERS];
    int n_ad;
    int router; /* the aios_router the generator holds now (set only on a change:
                   it forgets the cached prompt prefix), with arrow's mix */
    int router_top_k;
    float router_temperature;
    uint64_t uses; /* requests that set adapters (skill adapters' last_use clock) */
    /* continuous batching (generate_batched): jobs waiting to join, and the batch in flight,
     * which only the thread that leads (busy) touches */
    pthread_mutex_t bq_mu;
    pthread_cond_t bq_cv;
    struct gen_job *pending, *pending_tail;
    int busy;
    struct gen_job *active[GEN_BATCH_MAX];
    int n_active;
    atomic_uint_fast64_t n_steps, n_rows, n_gen_requests, max_rows; /* reported by /health */
    atomic_uint_fast64_t n_arrow, n_compose, n_routed_shared;       /* batched arrow / compose requests; steps
                                                                        where one shared the batch with another */
    atomic_int mu_wait; /* request threads waiting for mu (gen_lock): the leader lets them in */
} gen_model;

struct aios_server {
    struct MHD_Daemon *d;
    aios__gate *gate; /* owns the listening socket; hands connections to d (server_gate.c) */
    int port;
    size_t max_body;
    gen_model *gens;
    size_t n_gens;
    aios_encoder *enc;
    char enc_id[256], enc_dir_id[256];
    pthread_mutex_t enc_mu;
    /* embedding requests that arrive together run as one batched encode (embed_job below) */
    pthread_mutex_t batch_mu;
    pthread_cond_t batch_cv;
    struct embed_job *queue, *queue_tail;
    int batch_busy;
    int batch_gathering;    /* the leader waits for more jobs (embed_batched): arrivals signal */
    size_t last_batch_jobs; /* jobs in flight when the last batch ended (embed_batched), its encode time */
    double last_batch_s;
    atomic_uint_fast64_t n_embed_requests, n_embed_batches; /* reported by /health */
    aios_store *store;
    char store_id[256]; /* last path component of the store directory */
    char store_path[1024];
    aios_memory_retriever *mret; /* store + encoder (under store_mu and enc_mu) */
    pthread_mutex_t store_mu;
    aios_diffusion_model *dm;
    aios_tokenizer *dm_tok; /* text prompts and decoded text, when the model has a tokenizer.json */
    char dm_id[256], dm_dir_id[256];
    pthread_mutex_t dm_mu;
    time_t created;
    atomic_uint_fast64_t counter;
    atomic_int stopping; /* set by aios_server_stop: streams end at their next token */
    /* safety (aios_server_params) */
    char *api_key;
    size_t api_key_len;
    char *cors_origin;
    int loopback; /* bound to a loopback address: Host must name loopback (DNS rebinding) */
    int max_requests, max_per_client;
    int64_t max_embedding_tokens, max_generation_tokens, max_diffusion_work;
    char *adapter_dir;     /* realpath of --adapter-dir, or NULL: no loading over HTTP */
    aios__skills *skills;  /* --skills LIB (server_skills.c), or NULL */
    gen_model *skills_gen; /* the model its adapters are for */
    int arrow_top_k;       /* arrow's per-token mix (--router-top-k, --router-temperature) */
    float arrow_temperature;
    pthread_mutex_t conn_mu; /* guards the counts below */
    int n_active;            /* requests being served */
    struct client_count {
        struct sockaddr_storage addr;
        int n;
    } clients[256];
};

aios_server_params aios_server_default_params(void) {
    aios_server_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8080;
    p.max_body = 16u << 20;
    p.max_connections = 64;
    p.timeout_s = 30;
    p.max_per_client = 16;
    p.max_embedding_tokens = 1 << 20;
    p.max_generation_tokens = 1 << 16;
    p.max_diffusion_work = 1 << 20;
    p.skills_router = AIOS__ROUTER_SEMANTIC;
    p.skills_top_k = 1;
    p.skills_threshold = 0.5;
    p.skills_temperature = 0.1;
    p.skills_encoder_bits = 8;
    p.arrow_top_k = 2;
    p.arrow_temperature = 1.0f;
    p.uncertainty_threshold = 0.7;
    return p;
}

/* ---- responses ------------------------------------------------------------------------ */

/* One per TCP connection (MHD's socket context, set in on_connection). */
typedef struct {
    aios_server *srv;
    unsigned long long consumed; /* bytes of its requests so far (for aios__gate_next) */
    int unchecked;               /* the gate no longer knows where the next request starts */
} sock_ctx;

/* CORS: only when the server was started with --cors ORIGIN (a browser page of another origin
 * can otherwise not read the responses). */
static void add_common_headers(struct MHD_Connection *c, struct MHD_Response *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const sock_ctx *sc = ci ? ci->socket_context : NULL;
    if (sc && sc->srv->cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", sc->srv->cors_origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned code, char *text, size_t len,
                                 const char *type) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    add_common_headers(c, r);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, cJSON *j) {
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return MHD_NO;
    return send_text(c, code, s, strlen(s), "application/json");
}

static cJSON *error_json(const char *type, const char *code, const char *param, const char *msg) {
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    if (param && *param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    return o;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned http, const char *code,
                                  const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned http, const char *code,
                                  const char *param, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *type = http >= 500 ? "server_error" : "invalid_request_error";
    return send_json(c, http, error_json(type, code, param, msg));
}

/* An engine status as an HTTP error: the caller's fault (bad ids, shapes) is 400. */
static enum MHD_Result send_status(struct MHD_Connection *c, aios_status s, const char *what) {
    unsigned http = 500;
    const char *code = "internal_error";
    switch (s) {
    case AIOS_ERR_INVALID_ARG:
    case AIOS_ERR_RANGE:
    case AIOS_ERR_SHAPE:
    case AIOS_ERR_ENCODING:
        http = 400, code = "invalid_value";
        break;
    case AIOS_ERR_NOT_FOUND:
        http = 404, code = "not_found";
        break;
    case AIOS_ERR_EXISTS:
        http = 409, code = "already_exists";
        break;
    case AIOS_ERR_BUSY:
        http = 503, code = "busy";
        break;
    default:
        break;
    }
    const char *detail = aios_last_error();
    return send_error(c, http, code, NULL, "%s: %s", what, *detail ? detail : aios_status_str(s));
}

/* ---- helpers -------------------------------------------------------------------------- */

static gen_model *find_gen(aios_server *srv, const char *name) {
    if (!srv->n_gens) return NULL;
    if (!name || !*name) return &srv->gens[0];
    for (size_t i = 0; i < srv->n_gens; i++)
        if (!strcmp(srv->gens[i].id, name)) return &srv->gens[i];
    for (size_t i = 0; i < srv->n_gens; i++)
        if (!strcmp(srv->gens[i].dir_id, name)) return &srv->gens[i];
    return NULL;
}

/* Model id: the last path component of its directory (or file). */
static void model_id(const char *path, char *out, size_t n) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    size_t b = len;
    while (b > 0 && path[b - 1] != '/')
        b--;
    snprintf(out, n, "%.*s", (int)(len - b), path + b);
}

/* A model's id: its alias, else config.json's "_name_or_path" (what Hugging Face names it),
 * else its directory's last component (dir_id, which requests may use too). */
static void config_id(const char *path, const char *alias, char *out, size_t n, char *dir_out, size_t dn) {
    model_id(path, dir_out, dn);
    if (alias && *alias) {
        snprintf(out, n, "%s", alias);
        return;
    }
    snprintf(out, n, "%s", dir_out);
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", path);
    FILE *f = fopen(cfg, "rb");
    if (!f) return;
    char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cJSON *j = cJSON_ParseWithLength(buf, len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "_name_or_path");
    if (cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) < n)
        snprintf(out, n, "%s", v->valuestring);
    cJSON_Delete(j);
}

static void make_id(aios_server *srv, const char *prefix, char *out, size_t n) {
    uint64_t k = atomic_fetch_add(&srv->counter, 1);
    snprintf(out, n, "%s%llx%04llx", prefix, (unsigned long long)time(NULL),
             (unsigned long long)(k & 0xffff));
}

static aios_status append_str(aios_buf *b, const char *s) { return aios_buf_append(b, s, strlen(s)); }

/* ---- adapters ----------------------------------------------------------------------------- */

/* A loaded adapter by name (skill adapters are not: they go by the request's "skills"). */
static gen_adapter *find_adapter(gen_model *m, const char *name) {
    for (int i = 0; i < m->n_ad; i++)
        if (!m->ad[i].skill && !strcmp(m->ad[i].name, name)) return &m->ad[i];
    return NULL;
}

static void detach_at(gen_model *m, int i) {
    gen_adapter *a = &m->ad[i];
    if (aios_generator_adapter_remove(m->g, a->id) != AIOS_OK) aios_clear_error();
    memmove(a, a + 1, (size_t)(m->ad + m->n_ad - (a + 1)) * sizeof *a);
    m->n_ad--;
}

/* A free slot in m->ad: when all are taken, the skill adapter used longest ago that the plan
 * does not need is detached (it is attached again when a request routes to it).  Under m->mu. */
static aios_status make_room(gen_model *m, const aios__skill_plan *plan) {
    if (m->n_ad < AIOS__REQ_MAX_ADAPTERS) return AIOS_OK;
    int victim = -1;
    for (int i = 0; i < m->n_ad; i++) {
        if (!m->ad[i].skill) continue;
        int needed = 0;
        for (int k = 0; plan && k < plan->n && !needed; k++)
            needed = !strcmp(plan->name[k], m->ad[i].name);
        if (!needed && (victim < 0 || m->ad[i].last_use < m->ad[victim].last_use)) victim = i;
    }
    if (victim < 0)
        return aios__err(AIOS_ERR_RANGE, "adapters: model '%s' has %d adapters loaded already", m->id,
                         AIOS__REQ_MAX_ADAPTERS);
    detach_at(m, victim);
    return AIOS_OK;
}

static aios_status attach_adapter(gen_model *m, const char *path, const char *name, float scale);

/* A request runs in the shared decode batch (generate_batched) whatever its router: one adapter
 * set per row, summed or arrow-routed per token inside its row (its own skills, top_k and
 * temperature), and compose as extra rows of the same step (one per skill, each with its own
 * cache) whose logits are mixed (aios__gen_route, src/engine/generate.c).  Only a generator that
 * cannot batch runs its requests one at a time. */
static int server_batchable(const gen_model *m) { return aios__generator_batchable(m->g); }

/* The arrow mix of a plan: the request's router_top_k / router_temperature, else the server's. */
static int plan_top_k(const aios_server *srv, const aios__skill_plan *plan) {
    return plan && plan->arrow_top_k > 0 ? plan->arrow_top_k : srv->arrow_top_k;
}
static float plan_temperature(const aios_server *srv, const aios__skill_plan *plan) {
    return plan && plan->arrow_temperature > 0 ? plan->arrow_temperature : srv->arrow_temperature;
}

/* The adapter set of one request: the request's "adapters" (only those, at their scales) or,
 * without the field, every loaded adapter at its default scale; plus the skills of its plan
 * (server_skills.c: what the router chose or the request named) at their weights, attached on
 * first use; every other skill adapter at scale 0 (which the decoder skips: the same answer as
 * not attached).  The plan's router combines them (arrow, compose; else summed).  Only scales
 * and a router that differ from what the generator holds are changed (a change forgets the
 * cached prefix).  *ext receives the response's extension field [{"name", "scale"}] of the
 * loaded adapters in effect (NULL when the model has none loaded and the request named none).
 * Under m->mu.  A name that is not loaded: AIOS_ERR_NOT_FOUND naming it.  With slot_scales
 * (AIOS_DECODER_MAX_ADAPTERS, by the generator's adapter id) the scales are written there for a
 * batched generation, with *route the router that combines them in its rows (the plan's, none
 * when no adapter is in effect), and the generator's scales and router are left as they are. */
static aios_status select_adapters(aios_server *srv, gen_model *m, const aios__req *r,
                                   const aios__skill_plan *plan, cJSON **ext, float *slot_scales,
                                   aios__gen_route *route) {
    float want[AIOS__REQ_MAX_ADAPTERS];
    *ext = NULL;
    m->uses++;
    for (int k = 0; plan && k < plan->n; k++) {
        int found = 0;
        for (int i = 0; i < m->n_ad && !found; i++)
            found = m->ad[i].skill && !strcmp(m->ad[i].name, plan->name[k]);
        if (found) continue;
        AIOS_TRY(make_room(m, plan));
        AIOS_TRY(attach_adapter(m, plan->path[k], plan->name[k], 0.0f));
        m->ad[m->n_ad - 1].skill = 1;
    }
    for (int i = 0; i < m->n_ad; i++)
        want[i] = r->has_adapters || m->ad[i].skill ? 0.0f : m->ad[i].scale;
    for (int k = 0; plan && k < plan->n; k++)
        for (int i = 0; i < m->n_ad; i++)
            if (m->ad[i].skill && !strcmp(m->ad[i].name, plan->name[k])) {
                want[i] = (float)plan->weight[k];
                m->ad[i].last_use = m->uses;
            }
    for (int k = 0; k < r->n_adapters; k++) {
        gen_adapter *a = find_adapter(m, r->adapter_name[k]);
        if (!a)
            return aios__err(AIOS_ERR_NOT_FOUND,
                             "adapters: '%.128s' is not loaded on model '%s' (GET /v1/adapters)",
                             r->adapter_name[k], m->id);
        want[a - m->ad] = r->adapter_scale[k];
    }
    /* as `aios generate`: the router only when adapters are in effect (else the base model) */
    int any = 0, pr = plan ? plan->router : AIOS__ROUTER_NONE;
    for (int i = 0; i < m->n_ad; i++)
        any |= want[i] != 0;
    const aios_router gr = !any                         ? AIOS_ROUTER_NONE
                           : pr == AIOS__ROUTER_ARROW   ? AIOS_ROUTER_ARROW
                           : pr == AIOS__ROUTER_COMPOSE ? AIOS_ROUTER_COMPOSE
                                                        : AIOS_ROUTER_NONE;
    const int top_k = plan_top_k(srv, plan);
    const float temperature = plan_temperature(srv, plan);
    if (slot_scales) { /* a batched generation: this request's scales, by generator slot, and router */
        for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS; i++)
            slot_scales[i] = 0;
        for (int i = 0; i < m->n_ad; i++)
            if (m->ad[i].id >= 0 && m->ad[i].id < AIOS_DECODER_MAX_ADAPTERS)
                slot_scales[m->ad[i].id] = want[i];
        *route = (aios__gen_route){(int)gr, top_k, temperature};
    } else {
        int changes = 0;
        for (int i = 0; i < m->n_ad; i++)
            changes += want[i] != m->ad[i].applied;
        if (changes > 1 &&
            m->router == AIOS_ROUTER_ARROW) { /* arrow rebuilds its tables on each change: once */
            AIOS_TRY(
                aios_generator_set_router(m->g, AIOS_ROUTER_NONE, m->router_top_k, m->router_temperature));
            m->router = AIOS_ROUTER_NONE;
        }
        for (int i = 0; i < m->n_ad; i++)
            if (want[i] != m->ad[i].applied) {
                AIOS_TRY(aios_generator_adapter_scale(m->g, m->ad[i].id, want[i]));
                m->ad[i].applied = want[i];
            }
        if (gr != (aios_router)m->router ||
            (gr == AIOS_ROUTER_ARROW && (top_k != m->router_top_k || temperature != m->router_temperature))) {
            AIOS_TRY(aios_generator_set_router(m->g, gr, top_k, temperature));
            m->router = (int)gr, m->router_top_k = top_k, m->router_temperature = temperature;
        }
    }
    int n_user = 0;
    for (int i = 0; i < m->n_ad; i++)
        n_user += !m->ad[i].skill;
    if (!n_user && !r->has_adapters) return AIOS_OK;
    cJSON *a = cJSON_CreateArray();
    if (r->has_adapters) {
        for (int k = 0; k < r->n_adapters; k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", r->adapter_name[k]);
            cJSON_AddNumberToObject(e, "scale", r->adapter_scale[k]);
            cJSON_AddItemToArray(a, e);
        }
    } else {
        for (int i = 0; i < m->n_ad; i++) {
            if (want[i] == 0 || m->ad[i].skill) continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", m->ad[i].name);
            cJSON_AddNumberToObject(e, "scale", want[i]);
            cJSON_AddItemToArray(a, e);
        }
    }
    *ext = a;
    return AIOS_OK;
}

/* Attaches the adapter at `path` to m as `name` at `scale`.  Under m->mu. */
static aios_status attach_adapter(gen_model *m, const char *path, const char *name, float scale) {
    AIOS_TRY(make_room(m, NULL));
    if (m->n_ad >= AIOS__REQ_MAX_ADAPTERS)
        return aios__err(AIOS_ERR_RANGE, "adapters: model '%s' has %d adapters loaded already", m->id,
                         AIOS__REQ_MAX_ADAPTERS);
    gen_adapter *a = &m->ad[m->n_ad];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    snprintf(a->path, sizeof a->path, "%s", path);
    AIOS_TRY(aios_generator_adapter_add(m->g, path, scale, &a->id));
    a->scale = a->applied = scale;
    m->n_ad++;
    return AIOS_OK;
}

/* An adapter's name from its path: the last component, without a trailing '/' or ".parquet". */
static void adapter_name_of(const char *path, char *out, size_t cap) {
    model_id(path, out, cap);
    size_t len = strlen(out);
    if (len > 8 && !strcmp(out + len - 8, ".parquet")) out[len - 8] = 0;
}

static cJSON *adapter_json(const gen_model *m, const gen_adapter *a) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", a->name);
    cJSON_AddStringToObject(o, "object", "adapter");
    cJSON_AddStringToObject(o, "model", m->id);
    cJSON_AddStringToObject(o, "path", a->path);
    cJSON_AddNumberToObject(o, "scale", a->scale);
    return o;
}

/* Finds the adapter `name` on any model (names are unique across the server); locks its model. */
static gen_adapter *lock_adapter(aios_server *srv, const char *name, gen_model **mm) {
    for (size_t i = 0; i < srv->n_gens; i++) {
        gen_model *m = &srv->gens[i];
        pthread_mutex_lock(&m->mu);
        gen_adapter *a = find_adapter(m, name);
        if (a) {
            *mm = m;
            return a;
        }
        pthread_mutex_unlock(&m->mu);
    }
    return NULL;
}

/* GET /v1/adapters */
static enum MHD_Result do_adapter_list(aios_server *srv, struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(o, "data");
    for (size_t i = 0; i < srv->n_gens; i++) {
        gen_model *m = &srv->gens[i];
        pthread_mutex_lock(&m->mu);
        for (int k = 0; k < m->n_ad; k++)
            if (!m->ad[k].skill) cJSON_AddItemToArray(d, adapter_json(m, &m->ad[k]));
        pthread_mutex_unlock(&m->mu);
    }
    return send_json(c, MHD_HTTP_OK, o);
}

/* POST /v1/adapters: {"path", "name"?, "scale"?, "model"?} loads (from inside --adapter-dir only);
 * {"name", "scale"} changes a loaded adapter's default scale. */
static enum MHD_Result do_adapter_post(aios_server *srv, struct MHD_Connection *c, const aios__req *r) {
    gen_model *m;
    if (!r->adapter_path) {
        gen_adapter *a = lock_adapter(srv, r->name, &m);
        if (!a) return send_error(c, 404, "not_found", "name", "adapter '%.128s' is not loaded", r->name);
        a->scale = r->scale; /* the generator follows at the next request (select_adapters) */
        cJSON *o = adapter_json(m, a);
        pthread_mutex_unlock(&m->mu);
        return send_json(c, MHD_HTTP_OK, o);
    }
    if (!(m = find_gen(srv, r->model)))
        return send_error(c, 404, "model_not_found", "model",
                          srv->n_gens ? "model '%.128s' does not exist" : "no generation model%.0s",
                          r->model ? r->model : "");
    if (!srv->adapter_dir)
        return send_error(c, 403, "forbidden", "path",
                          "loading adapters over HTTP is off: start the server with --adapter-dir DIR");
    /* inside --adapter-dir: no ".." component, and the resolved path under the directory */
    const char *p = r->adapter_path;
    for (const char *q = p; (q = strstr(q, "..")); q += 2)
        if ((q == p || q[-1] == '/') && (!q[2] || q[2] == '/'))
            return send_error(c, 403, "forbidden", "path",
                              "path: '..' is not allowed (paths stay inside --adapter-dir)");
    char joined[4096], real[PATH_MAX];
    if (p[0] == '/')
        snprintf(joined, sizeof joined, "%s", p);
    else
        snprintf(joined, sizeof joined, "%s/%s", srv->adapter_dir, p);
    if (!realpath(joined, real))
        return send_error(c, 400, "invalid_value", "path", "path: %.512s: %s", p, strerror(errno));
    size_t dl = strlen(srv->adapter_dir);
    if (strncmp(real, srv->adapter_dir, dl) || (real[dl] != '/' && !(dl == 1 && srv->adapter_dir[0] == '/')))
        return send_error(c, 403, "forbidden", "path", "path: %.512s is outside --adapter-dir", p);
    char name[129];
    if (r->name)
        snprintf(name, sizeof name, "%s", r->name);
    else
        adapter_name_of(real, name, sizeof name);
    gen_model *other;
    if (lock_adapter(srv, name, &other)) {
        pthread_mutex_unlock(&other->mu);
        return send_error(c, 409, "already_exists", "name",
                          "adapter '%s' is loaded already (DELETE /v1/adapters/%s first)", name, name);
    }
    pthread_mutex_lock(&m->mu);
    aios_status s = attach_adapter(m, real, name, r->scale);
    enum MHD_Result ret;
    if (s != AIOS_OK) {
        ret = send_error(c, s == AIOS_ERR_NOMEM ? 500 : 400,
                         s == AIOS_ERR_NOMEM ? "internal_error" : "invalid_value", "path", "adapter %s: %s",
                         p, aios_last_error());
    } else {
        ret = send_json(c, MHD_HTTP_OK, adapter_json(m, &m->ad[m->n_ad - 1]));
    }
    pthread_mutex_unlock(&m->mu);
    return ret;
}

/* DELETE /v1/adapters/{name} */
static enum MHD_Result do_adapter_delete(aios_server *srv, struct MHD_Connection *c, const char *name) {
    gen_model *m;
    gen_adapter *a = lock_adapter(srv, name, &m);
    if (!a) return send_error(c, 404, "not_found", NULL, "adapter '%.128s' is not loaded", name);
    aios_status s = aios_generator_adapter_remove(m->g, a->id);
    if (s == AIOS_OK) {
        memmove(a, a + 1, (size_t)(m->ad + m->n_ad - (a + 1)) * sizeof *a);
        m->n_ad--;
    }
    pthread_mutex_unlock(&m->mu);
    if (s != AIOS_OK) return send_status(c, s, "adapter");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", name);
    cJSON_AddStringToObject(o, "object", "adapter.deleted");
    cJSON_AddBoolToObject(o, "deleted", 1);
    return send_json(c, MHD_HTTP_OK, o);
}

/* ---- GET /health, GET /v1/models -------------------------------------------------------- */

static enum MHD_Result do_health(aios_server *srv, struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddNumberToObject(o, "models", (double)srv->n_gens);
    cJSON_AddBoolToObject(o, "embeddings", srv->enc != NULL);
    cJSON_AddBoolToObject(o, "memory", srv->store != NULL);
    cJSON_AddBoolToObject(o, "diffusion", srv->dm != NULL);
    cJSON *eb = cJSON_AddObjectToObject(o, "embedding_batches");
    cJSON_AddNumberToObject(eb, "requests", (double)atomic_load(&srv->n_embed_requests));
    cJSON_AddNumberToObject(eb, "batches", (double)atomic_load(&srv->n_embed_batches));
    /* generation: requests run batched, decode steps, rows over all steps (rows / steps = the
     * mean batch), the largest batch */
    uint64_t gr = 0, gs = 0, gw = 0, gm = 0, ga = 0, gc = 0, gx = 0;
    for (size_t i = 0; i < srv->n_gens; i++) {
        gr += atomic_load(&srv->gens[i].n_gen_requests), gs += atomic_load(&srv->gens[i].n_steps);
        ga += atomic_load(&srv->gens[i].n_arrow), gc += atomic_load(&srv->gens[i].n_compose);
        gx += atomic_load(&srv->gens[i].n_routed_shared);
        gw += atomic_load(&srv->gens[i].n_rows);
        uint64_t x = atomic_load(&srv->gens[i].max_rows);
        if (x > gm) gm = x;
    }
    cJSON *gb = cJSON_AddObjectToObject(o, "generation_batches");
    cJSON_AddNumberToObject(gb, "requests", (double)gr);
    cJSON_AddNumberToObject(gb, "steps", (double)gs);
    cJSON_AddNumberToObject(gb, "rows", (double)gw);
    cJSON_AddNumberToObject(gb, "max_rows", (double)gm);
    cJSON_AddNumberToObject(gb, "arrow", (double)ga);   /* requests batched with the arrow router */
    cJSON_AddNumberToObject(gb, "compose", (double)gc); /* with compose (its skills as extra rows) */
    cJSON_AddNumberToObject(gb, "routed_shared_steps", (double)gx); /* steps where one shared the batch */
    return send_json(c, MHD_HTTP_OK, o);
}

static void add_model(cJSON *arr, const char *id, time_t created, const char *kind) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "aios");
    cJSON_AddStringToObject(m, "kind", kind);
    cJSON_AddItemToArray(arr, m);
}

static enum MHD_Result do_models(aios_server *srv, struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *arr = cJSON_AddArrayToObject(o, "data");
    for (size_t i = 0; i < srv->n_gens; i++)
        add_model(arr, srv->gens[i].id, srv->created, "generation");
    if (srv->enc) add_model(arr, srv->enc_id, srv->created, "embedding");
    if (srv->dm) add_model(arr, srv->dm_id, srv->created, "diffusion");
    return send_json(c, MHD_HTTP_OK, o);
}

/* ---- POST /v1/embeddings ---------------------------------------------------------------- */

/* base64 of n bytes into b (RFC 4648, with padding). */
static aios_status append_base64(aios_buf *b, const unsigned char *p, size_t n) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        q[0] = A[v >> 18 & 63], q[1] = A[v >> 12 & 63];
        q[2] = i + 1 < n ? A[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? A[v & 63] : '=';
        AIOS_TRY(aios_buf_append(b, q, 4));
    }
    return AIOS_OK;
}

/* Batching across clients.  Each embeddings request is a job in srv->queue.  A request thread
 * that finds no batch running becomes the leader: it takes the queued jobs of its kind (texts or
 * token ids), up to EMBED_BATCH_INPUTS inputs, runs them as one aios_encode_batch (the encoder
 * sorts them by length and pads each sub-batch to its longest: one GEMM per layer for many
 * requests instead of one each), hands every job its rows and wakes the others; the next waiting
 * thread then leads the next batch.  Results are those of encoding each request alone: the
 * encoder's rows are independent and padding is masked (the tests compare with `aios encode`).
 * If a batch fails (one request's ids outside the vocabulary), its jobs are run one by one so
 * each gets its own answer and message. */
#define EMBED_BATCH_INPUTS 256
/* Gathering.  When a batch ends, its clients all get their answers at once and send their next
 * requests over the next milliseconds; the first to arrive used to lead a batch of one at once
 * and the others queued behind it (batches of 1, 15, 1, 15...: a mean of 7.7 jobs with 16
 * clients, and a one-sentence batch costs a third of a 16-sentence one).  A leader that finds
 * fewer jobs queued than were in flight when the last batch ended (its jobs plus those queued
 * while it ran) waits for more — at most EMBED_GATHER_FRAC of the last batch's encode time
 * (capped at EMBED_GATHER_MAX_S) — and starts as soon as as many have come.  Counting only the
 * last batch's own jobs let 16 clients settle into two alternating halves of 8 (each half
 * queued while the other ran, so no leader waited): 8.2-8.3 jobs per batch, against 12.5-14.7
 * with the in-flight count.  One client alone never waits (one job in flight). */
#define EMBED_GATHER_FRAC 0.125
#define EMBED_GATHER_MAX_S 0.02

typedef struct embed_job {
    const aios__req *r;
    float *out;
    aios_status status;
    char err[512];
    int done;
    struct embed_job *next;
} embed_job;

static size_t queued_jobs(const aios_server *srv) {
    size_t n = 0;
    for (const embed_job *j = srv->queue; j; j = j->next)
        n++;
    return n;
}

static aios_status encode_job_list(aios_server *srv, embed_job **jobs, size_t n_jobs, size_t n_in, int ids) {
    const char **texts = NULL;
    size_t *lens = malloc((n_in ? n_in : 1) * sizeof *lens);
    const int32_t **idv = NULL;
    float *out = NULL;
    int64_t dim = aios_encoder_dim(srv->enc);
    if (n_jobs == 1) { /* nothing to gather */
        const aios__req *r = jobs[0]->r;
        free(lens);
        return ids ? aios_encode_ids(srv->enc, (const int32_t *const *)r->ids, r->ids_len, r->n_inputs,
                                     jobs[0]->out, NULL, NULL)
                   : aios_encode_batch(srv->enc, r->text, r->text_len, r->n_inputs, jobs[0]->out, NULL, NULL);
    }
    if (ids)
        idv = malloc(n_in * sizeof *idv);
    else
        texts = malloc(n_in * sizeof *texts);
    out = malloc(n_in * (size_t)dim * sizeof *out);
    aios_status s = AIOS_OK;
    if (!lens || !out || (ids ? !idv : !texts)) s = aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    size_t k = 0;
    for (size_t j = 0; s == AIOS_OK && j < n_jobs; j++)
        for (size_t i = 0; i < jobs[j]->r->n_inputs; i++, k++) {
            if (ids)
                idv[k] = jobs[j]->r->ids[i], lens[k] = jobs[j]->r->ids_len[i];
            else
                texts[k] = jobs[j]->r->text[i], lens[k] = jobs[j]->r->text_len[i];
        }
    if (s == AIOS_OK)
        s = ids ? aios_encode_ids(srv->enc, idv, lens, n_in, out, NULL, NULL)
                : aios_encode_batch(srv->enc, texts, lens, n_in, out, NULL, NULL);
    if (s == AIOS_OK) {
        k = 0;
        for (size_t j = 0; j < n_jobs; j++) {
            size_t m = jobs[j]->r->n_inputs * (size_t)dim;
            memcpy(jobs[j]->out, out + k, m * sizeof *out);
            k += m;
        }
    }
    free(texts), free(idv), free(lens), free(out);
    return s;
}

static aios_status embed_batched(aios_server *srv, const aios__req *r, float *out) {
    embed_job me = {r, out, AIOS_OK, "", 0, NULL};
    pthread_mutex_lock(&srv->batch_mu);
    if (srv->queue_tail)
        srv->queue_tail->next = &me;
    else
        srv->queue = &me;
    srv->queue_tail = &me;
    if (srv->batch_gathering) pthread_cond_broadcast(&srv->batch_cv);
    while (!me.done) {
        if (srv->batch_busy) {
            pthread_cond_wait(&srv->batch_cv, &srv->batch_mu);
            continue;
        }
        srv->batch_busy = 1;
        /* gather (see EMBED_GATHER_FRAC) */
        double wait = srv->last_batch_s * EMBED_GATHER_FRAC;
        if (wait > EMBED_GATHER_MAX_S) wait = EMBED_GATHER_MAX_S;
        if (queued_jobs(srv) < srv->last_batch_jobs && wait > 0) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            long ns = dl.tv_nsec + (long)(wait * 1e9);
            dl.tv_sec += ns / 1000000000L, dl.tv_nsec = ns % 1000000000L;
            srv->batch_gathering = 1;
            while (queued_jobs(srv) < srv->last_batch_jobs &&
                   pthread_cond_timedwait(&srv->batch_cv, &srv->batch_mu, &dl) != ETIMEDOUT) {
            }
            srv->batch_gathering = 0;
        }
        /* lead: the queued jobs of the first job's kind, in order, up to the input cap */
        embed_job *take[64];
        size_t n_jobs = 0, n_in = 0;
        int ids = srv->queue->r->is_ids;
        embed_job **pp = &srv->queue;
        while (*pp && n_jobs < AIOS_ARRAY_LEN(take)) {
            embed_job *j = *pp;
            if (j->r->is_ids != ids || (n_jobs && n_in + j->r->n_inputs > EMBED_BATCH_INPUTS)) {
                pp = &j->next; /* left for a later batch */
                continue;
            }
            take[n_jobs++] = j;
            n_in += j->r->n_inputs;
            *pp = j->next; /* unlink */
        }
        srv->queue_tail = NULL;
        for (embed_job *j = srv->queue; j; j = j->next)
            srv->queue_tail = j;
        pthread_mutex_unlock(&srv->batch_mu);
        atomic_fetch_add(&srv->n_embed_batches, 1);
        atomic_fetch_add(&srv->n_embed_requests, n_jobs);
        pthread_mutex_lock(&srv->enc_mu);
        double t0 = aios__now();
        aios_status s = encode_job_list(srv, take, n_jobs, n_in, ids);
        double dt = aios__now() - t0;
        for (size_t j = 0; j < n_jobs; j++) {
            if (n_jobs > 1 && s != AIOS_OK) /* who was at fault: each alone */
                take[j]->status = encode_job_list(srv, &take[j], 1, take[j]->r->n_inputs, ids);
            else
                take[j]->status = s;
            if (take[j]->status != AIOS_OK)
                snprintf(take[j]->err, sizeof take[j]->err, "%s", aios_last_error());
        }
        pthread_mutex_unlock(&srv->enc_mu);
        pthread_mutex_lock(&srv->batch_mu);
        for (size_t j = 0; j < n_jobs; j++)
            take[j]->done = 1;
        /* the clients in flight: this batch's (they come back within milliseconds) and those that
         * queued meanwhile (see EMBED_GATHER_FRAC) */
        srv->last_batch_jobs = AIOS_MIN(n_jobs + queued_jobs(srv), AIOS_ARRAY_LEN(take)),
        srv->last_batch_s = dt;
        srv->batch_busy = 0;
        pthread_cond_broadcast(&srv->batch_cv);
    }
    pthread_mutex_unlock(&srv->batch_mu);
    if (me.status != AIOS_OK) aios__err(me.status, "%s", me.err); /* the message in this thread */
    return me.status;
}

static enum MHD_Result do_embeddings(aios_server *srv, struct MHD_Connection *c, aios__req *r) {
    if (!srv->enc)
        return send_error(c, 404, "model_not_found", "model",
                          "no embedding model (start with --embedding-model DIR)");
    if (r->model && strcmp(r->model, srv->enc_id) && strcmp(r->model, srv->enc_dir_id))
        return send_error(c, 404, "model_not_found", "model", "model '%s' is not the embedding model '%s'",
                          r->model, srv->enc_id);
    int64_t dim = aios_encoder_dim(srv->enc);
    if (r->dimensions && r->dimensions != dim)
        return send_error(c, 400, "invalid_value", "dimensions",
                          "dimensions: the model gives %lld; it cannot give %lld", (long long)dim,
                          (long long)r->dimensions);
    /* bounded work: each input costs at most the encoder's token limit (texts: their bytes + 2
     * special tokens, an upper bound of their token count) */
    int64_t maxlen = aios_encoder_max_length(srv->enc);
    uint64_t bound = 0;
    for (size_t i = 0; i < r->n_inputs; i++) {
        uint64_t n = r->is_ids ? r->ids_len[i] : r->text_len[i] + 2;
        bound += maxlen > 0 && n > (uint64_t)maxlen ? (uint64_t)maxlen : n;
    }
    if (bound > (uint64_t)srv->max_embedding_tokens)
        return send_error(c, 400, "request_too_large", "input",
                          "input: up to %llu tokens exceed the server's max_embedding_tokens cap of %lld "
                          "(--max-embedding-tokens)",
                          (unsigned long long)bound, (long long)srv->max_embedding_tokens);
    uint64_t nfl;
    if (!aios__mul_ok(r->n_inputs, (uint64_t)dim, &nfl) || nfl > (1ull << 32))
        return send_error(c, 400, "invalid_value", "input", "input: too many inputs");
    float *out = malloc((size_t)nfl * sizeof *out + 1);
    if (!out) return send_error(c, 500, "internal_error", NULL, "out of memory");
    aios_status s = embed_batched(srv, r, out);
    if (s != AIOS_OK) {
        free(out);
        return send_status(c, s, "embeddings");
    }
    /* usage: tokens the encoder saw (with special tokens, after truncation, without the padding
     * a tokenizer.json may ask for: MiniLM's pads every text to 128) */
    uint64_t tokens = 0;
    for (size_t i = 0; i < r->n_inputs; i++) {
        size_t n = 0;
        if (r->is_ids)
            n = r->ids_len[i];
        else if (aios__encode_token_count(srv->enc, r->text[i], r->text_len[i], &n) != AIOS_OK)
            aios_clear_error();
        tokens += maxlen > 0 && n > (size_t)maxlen ? (size_t)maxlen : n;
    }
    /* written by hand: %.9g round-trips a float32 and is several times faster than cJSON */
    aios_buf b = {0};
    char num[64];
    s = append_str(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; s == AIOS_OK && i < r->n_inputs; i++) {
        snprintf(num, sizeof num, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":%s", i ? "," : "",
                 i, r->base64 ? "\"" : "[");
        s = append_str(&b, num);
        const float *e = out + i * (size_t)dim;
        if (r->base64) {              /* little-endian float32, as OpenAI sends it */
            unsigned char le[4 * 48]; /* 48 floats = 192 bytes, a multiple of 3: no '=' inside */
            for (int64_t k0 = 0; s == AIOS_OK && k0 < dim; k0 += 48) {
                int64_t kn = dim - k0 < 48 ? dim - k0 : 48;
                for (int64_t k = 0; k < kn; k++) {
                    uint32_t u;
                    memcpy(&u, &e[k0 + k], 4);
                    le[4 * k] = (unsigned char)u, le[4 * k + 1] = (unsigned char)(u >> 8);
                    le[4 * k + 2] = (unsigned char)(u >> 16), le[4 * k + 3] = (unsigned char)(u >> 24);
                }
                s = append_base64(&b, le, (size_t)kn * 4);
            }
            if (s == AIOS_OK) s = append_str(&b, "\"}");
            continue;
        }
        for (int64_t k = 0; s == AIOS_OK && k < dim; k++) {
            int n = isfinite(e[k]) ? snprintf(num, sizeof num, "%s%.9g", k ? "," : "", (double)e[k])
                                   : snprintf(num, sizeof num, "%snull", k ? "," : "");
            s = aios_buf_append(&b, num, (size_t)n);
        }
        if (s == AIOS_OK) s = append_str(&b, "]}");
    }
    free(out);
    if (s == AIOS_OK) {
        cJSON *tail = cJSON_CreateObject();
        cJSON_AddStringToObject(tail, "model", srv->enc_id);
        cJSON *u = cJSON_AddObjectToObject(tail, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", (double)tokens);
        cJSON_AddNumberToObject(u, "total_tokens", (double)tokens);
        char *t = cJSON_PrintUnformatted(tail); /* {"model":...,"usage":{...}} */
        cJSON_Delete(tail);
        if (!t)
            s = AIOS_ERR_NOMEM;
        else {
            s = append_str(&b, "],");
            if (s == AIOS_OK) s = aios_buf_append(&b, t + 1, strlen(t + 1) + 1); /* with its NUL */
            free(t);
        }
    }
    if (s != AIOS_OK) {
        aios_buf_free(&b);
        return send_error(c, 500, "internal_error", NULL, "out of memory");
    }
    return send_text(c, MHD_HTTP_OK, (char *)b.data, b.len - 1, "application/json");
}

/* ---- POST /v1/completions, /v1/chat/completions ----------------------------------------- */

static aios_generate_params gen_params(const aios__req *r, aios_server *srv, int chat) {
    aios_generate_params p = aios_generate_default_params();
    p.max_tokens = r->max_tokens > 0 ? r->max_tokens : (chat ? 256 : 16); /* OpenAI's defaults */
    p.temperature = (float)r->temperature;
    p.top_k = r->top_k;
    p.top_p = (float)r->top_p;
    p.min_p = (float)r->min_p;
    p.presence_penalty = (float)r->presence_penalty;
    p.frequency_penalty = (float)r->frequency_penalty;
    p.repetition_penalty = (float)r->repetition_penalty;
    p.seed = r->has_seed ? r->seed
                         : ((uint64_t)time(NULL) << 20) ^
                               (uint64_t)atomic_fetch_add(&srv->counter, 1) * 0x9E3779B97F4A7C15ull;
    p.stop = r->n_stop ? r->stop : NULL;
    p.ignore_eos = r->ignore_eos;
    p.logprobs = r->logprobs;
    p.top_logprobs = r->top_logprobs;
    return p;
}

/* A token's text (the tokenizer's decode of that id alone) as a JSON string, and its UTF-8
 * bytes (chat's "bytes").  Under the model's lock. */
static cJSON *token_string(gen_model *m, int32_t id, cJSON **bytes) {
    char *t = NULL;
    if (aios_generator_detokenize(m->g, &id, 1, &t) != AIOS_OK || !t) {
        free(t);
        t = NULL;
    }
    if (bytes) {
        *bytes = cJSON_CreateArray();
        for (const unsigned char *q = (const unsigned char *)(t ? t : ""); *q; q++)
            cJSON_AddItemToArray(*bytes, cJSON_CreateNumber(*q));
    }
    cJSON *j = cJSON_CreateString(t ? t : "");
    free(t);
    return j;
}

/* The "logprobs" object of a choice for generated tokens k0 .. k1-1 of res (p.logprobs was
 * set), in OpenAI's shapes: chat {"content": [{"token", "logprob", "bytes", "top_logprobs":
 * [{"token", "logprob", "bytes"}]}], "refusal": null}; completions {"tokens", "token_logprobs",
 * "top_logprobs": [{token: logprob}] (null entries when 0 alternatives were asked)}.  The log
 * probabilities are the model's own (log-softmax of the raw logits, docs/server.md).  Under the
 * model's lock (token strings come from its tokenizer). */
static cJSON *logprobs_json(gen_model *m, const aios_generate_result *res, size_t k0, size_t k1, int chat) {
    cJSON *o = cJSON_CreateObject();
    const int32_t *gen = res->ids + res->n_prompt;
    int nt = res->n_top;
    if (chat) {
        cJSON *content = cJSON_AddArrayToObject(o, "content");
        for (size_t k = k0; k < k1; k++) {
            cJSON *e = cJSON_CreateObject(), *b;
            cJSON_AddItemToObject(e, "token", token_string(m, gen[k], &b));
            cJSON_AddNumberToObject(e, "logprob", res->logprobs[k]);
            cJSON_AddItemToObject(e, "bytes", b);
            cJSON *top = cJSON_AddArrayToObject(e, "top_logprobs");
            for (int t = 0; t < nt && res->top_ids[k * (size_t)nt + (size_t)t] >= 0; t++) {
                cJSON *a = cJSON_CreateObject();
                cJSON_AddItemToObject(a, "token",
                                      token_string(m, res->top_ids[k * (size_t)nt + (size_t)t], &b));
                cJSON_AddNumberToObject(a, "logprob", res->top_logprobs[k * (size_t)nt + (size_t)t]);
                cJSON_AddItemToObject(a, "bytes", b);
                cJSON_AddItemToArray(top, a);
            }
            cJSON_AddItemToArray(content, e);
        }
        cJSON_AddNullToObject(o, "refusal");
        return o;
    }
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens"), *lps = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(o, "top_logprobs");
    for (size_t k = k0; k < k1; k++) {
        cJSON_AddItemToArray(toks, token_string(m, gen[k], NULL));
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(res->logprobs[k]));
        if (!nt) {
            cJSON_AddItemToArray(tops, cJSON_CreateNull());
            continue;
        }
        cJSON *d = cJSON_CreateObject();
        for (int t = 0; t < nt && res->top_ids[k * (size_t)nt + (size_t)t] >= 0; t++) {
            cJSON *ts = token_string(m, res->top_ids[k * (size_t)nt + (size_t)t], NULL);
            if (!cJSON_GetObjectItemCaseSensitive(d, ts->valuestring)) /* two ids of one text: the likelier */
                cJSON_AddNumberToObject(d, ts->valuestring, res->top_logprobs[k * (size_t)nt + (size_t)t]);
            cJSON_Delete(ts);
        }
        cJSON_AddItemToArray(tops, d);
    }
    return o;
}

static const char *finish_reason(aios_gen_stop s) {
    return (s == AIOS_GEN_STOP_LENGTH || s == AIOS_GEN_STOP_CONTEXT) ? "length" : "stop";
}

static cJSON *usage_json(size_t prompt, size_t completion) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)completion);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(prompt + completion));
    return u;
}

/* The envelope shared by responses and stream chunks. */
static cJSON *gen_envelope(const char *id, const char *object, time_t created, const char *model) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", model);
    return o;
}

/* Chat prompt text (malloc'd) from the request's messages; under the model's lock. */
static aios_status chat_text(gen_model *m, const aios__req *r, char **out) {
    return aios_generator_chat_prompt(m->g, r->messages, r->n_messages, out);
}

/* The request's "memory" object: retrieve from the server's store (under its locks; the hits are
 * copied), then render the prompt with the notes under the model's lock.  *prompt (malloc'd) is
 * the text to generate from; *mem the extension object of the response ({"retrieved",
 * "added_tokens", "sources": [{"id", "score", "tokens", "cut", "content"}]}).  On failure *http
 * is the status to answer (400 for what the client asked, 500 otherwise). */
static aios_status memory_prompt(aios_server *srv, gen_model *m, const aios__req *r, int chat, char **prompt,
                                 cJSON **mem, unsigned *http) {
    *prompt = NULL;
    *mem = NULL;
    *http = 400;
    if (!srv->store)
        return aios__err(AIOS_ERR_INVALID_ARG, "memory: the server has no store (start with --store DIR)");
    if (!srv->mret)
        return aios__err(AIOS_ERR_INVALID_ARG,
                         "memory: the server has no embedding model (start with --embedding-model DIR)");
    if (r->mem_store && strcmp(r->mem_store, srv->store_id) && strcmp(r->mem_store, srv->store_path))
        return aios__err(AIOS_ERR_INVALID_ARG, "memory.store: '%.200s' is not this server's store '%s'",
                         r->mem_store, srv->store_id);
    aios_chat_message one = {"user", r->prompt};
    const aios_chat_message *msgs = chat ? r->messages : &one;
    size_t n = chat ? r->n_messages : 1;
    const char *query = NULL;
    for (size_t i = n; i-- > 0;)
        if (!chat || !strcmp(msgs[i].role, "user")) {
            query = msgs[i].content;
            break;
        }
    if (!query)
        return aios__err(AIOS_ERR_INVALID_ARG, "memory: the conversation has no user message (the query)");
    aios_memcond_hit *hits = calloc((size_t)(r->mem_top_k > 0 ? r->mem_top_k : 1), sizeof *hits);
    if (!hits) {
        *http = 500;
        return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    }
    aios_memory_query q = aios_memory_query_default();
    q.top_k = r->mem_top_k;
    q.min_score = r->mem_min_score;
    q.category = r->mem_category;
    q.source = r->mem_source;
    int32_t nh = 0;
    pthread_mutex_lock(&srv->store_mu);
    pthread_mutex_lock(&srv->enc_mu);
    aios_status s = aios_memory_retrieve(srv->mret, query, &q, hits, &nh);
    for (int32_t i = 0; s == AIOS_OK && i < nh; i++) { /* copies: the store may change after the lock */
        hits[i].id = strdup(hits[i].id ? hits[i].id : "");
        hits[i].content = hits[i].content ? strdup(hits[i].content) : NULL;
        if (!hits[i].id) s = aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    }
    pthread_mutex_unlock(&srv->enc_mu);
    pthread_mutex_unlock(&srv->store_mu);
    aios_memprompt_result mr;
    memset(&mr, 0, sizeof mr);
    if (s == AIOS_OK) {
        aios_memprompt_params mp = aios_memprompt_default_params();
        mp.max_tokens = r->mem_max_tokens;
        mp.place = (aios_memprompt_place)r->mem_place;
        int64_t reserve = r->max_tokens > 0 ? r->max_tokens : (chat ? 256 : 16);
        pthread_mutex_lock(&m->mu);
        int64_t cap = aios_generator_n_ctx(m->g) / 2;
        s = aios_generator_memory_prompt(m->g, msgs, n, chat, hits, nh, &mp, reserve < cap ? reserve : cap,
                                         &mr);
        pthread_mutex_unlock(&m->mu);
    }
    for (int32_t i = 0; i < nh; i++) {
        free((char *)hits[i].id);
        free((char *)hits[i].content);
    }
    free(hits);
    if (s != AIOS_OK) {
        if (s != AIOS_ERR_INVALID_ARG && s != AIOS_ERR_RANGE) *http = 500;
        return s;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "store", srv->store_id);
    cJSON_AddNumberToObject(o, "retrieved", nh);
    cJSON_AddNumberToObject(o, "added_tokens", (double)mr.n_added_tokens);
    cJSON *a = cJSON_AddArrayToObject(o, "sources");
    for (int32_t i = 0; i < mr.n_sources; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", mr.sources[i].id);
        cJSON_AddNumberToObject(e, "score", mr.sources[i].score);
        cJSON_AddNumberToObject(e, "tokens", (double)mr.sources[i].n_tokens);
        cJSON_AddBoolToObject(e, "cut", mr.sources[i].cut);
        cJSON_AddStringToObject(e, "content", mr.sources[i].content);
        cJSON_AddItemToArray(a, e);
    }
    *prompt = mr.prompt;
    mr.prompt = NULL;
    aios_memprompt_result_free(&mr);
    *mem = o;
    return AIOS_OK;
}

/* m->mu between decode steps.  The batch's leader re-took mu right after releasing it, and a
 * mutex is no queue: the request threads that need it for a moment — checking a prompt,
 * choosing adapters, writing a finished answer — waited through many steps (a finished
 * request's answer, hence its client's next request, was held back: ~1.8 sequences per step
 * with 16 clients).  Request threads announce themselves in mu_wait; before each step the
 * leader lets them through (a bounded wait, so a long holder does not stall it twice). */
static void gen_lock(gen_model *m) {
    atomic_fetch_add(&m->mu_wait, 1);
    pthread_mutex_lock(&m->mu);
    atomic_fetch_sub(&m->mu_wait, 1);
}
static void gen_lock_step(gen_model *m) {
    for (int i = 0; i < 200 && atomic_load(&m->mu_wait) > 0; i++) {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&m->mu);
}

/* ---- continuous batching of generations ---------------------------------------------------
 * Completions and chat completions of one model share a decode batch: a request's job waits in
 * the model's queue; the thread that finds no batch running leads — between steps it starts the
 * queued jobs (tokenize, own KV cache, own sampler state and seed), then runs one step for every
 * generation in the batch (aios__gen_batch_step: one batched forward, then each request's
 * sampling, stop rules and on_token) under the model's lock, released between steps (so adapters,
 * tokenizing and /health interleave).  A finished job is handed back to its thread at once; when
 * the leader's own job is done it stops leading and the next waiting thread takes the batch over.
 * A request's answer is the one it gets alone: per-request state throughout, and each sequence's
 * logits equal the single-sequence forward up to float rounding (tests/test_decoder_batch.c;
 * the server test compares concurrent greedy answers with sequential ones).  Every router
 * batches: a job carries its route (arrow inside its row, compose as extra rows; generate.c). */
typedef struct gen_job {
    const char *text;
    const int32_t *ids;
    size_t n_ids;
    const aios_generate_params *p;
    const float *scales;          /* by adapter slot, or NULL */
    const aios__gen_route *route; /* how the row combines them, or NULL */
    aios_generate_result *res;
    aios_gen_uncertainty *unc; /* receives the answer's uncertainty (per-token arrays NULL), or NULL */
    aios__gen_seq *seq;
    aios_status status;
    char err[512];
    int done;
    struct gen_job *next;
} gen_job;

/* One step of the batch of m, starting the jobs in start[0..ns) first.  Under m->mu; jobs that
 * finish (or fail to start) are left with seq done / status set, collected by the caller. */
static void batch_step(gen_model *m, gen_job **start, int ns, gen_job **failed, int *n_failed) {
    for (int i = 0; i < ns; i++) {
        gen_job *j = start[i];
        j->status =
            aios__gen_seq_start(m->g, j->text, j->ids, j->n_ids, j->p, j->scales, j->route, j->res, &j->seq);
        if (j->status != AIOS_OK) {
            snprintf(j->err, sizeof j->err, "%s", aios_last_error());
            failed[(*n_failed)++] = j;
        } else {
            m->active[m->n_active++] = j;
        }
    }
    aios__gen_seq *seqs[GEN_BATCH_MAX];
    for (int i = 0; i < m->n_active; i++)
        seqs[i] = m->active[i]->seq;
    if (!m->n_active) return;
    aios__gen_batch_step(m->g, seqs, m->n_active); /* failures are each sequence's status */
    int routed = 0;
    for (int i = 0; i < m->n_active; i++)
        routed |= m->active[i]->route && m->active[i]->route->router != AIOS_ROUTER_NONE;
    if (routed && m->n_active > 1) atomic_fetch_add(&m->n_routed_shared, 1);
    atomic_fetch_add(&m->n_steps, 1);
    atomic_fetch_add(&m->n_rows, (uint_fast64_t)m->n_active);
    if ((uint_fast64_t)m->n_active > atomic_load(&m->max_rows))
        atomic_store(&m->max_rows, (uint_fast64_t)m->n_active);
}

static aios_status generate_batched(gen_model *m, const char *text, const int32_t *ids, size_t n_ids,
                                    const aios_generate_params *p, const float *scales,
                                    const aios__gen_route *route, aios_generate_result *res,
                                    aios_gen_uncertainty *unc) {
    gen_job me = {text, ids, n_ids, p, scales, route, res, unc, NULL, AIOS_OK, "", 0, NULL};
    atomic_fetch_add(&m->n_gen_requests, 1);
    if (route && route->router == AIOS_ROUTER_ARROW) atomic_fetch_add(&m->n_arrow, 1);
    if (route && route->router == AIOS_ROUTER_COMPOSE) atomic_fetch_add(&m->n_compose, 1);
    pthread_mutex_lock(&m->bq_mu);
    if (m->pending_tail)
        m->pending_tail->next = &me;
    else
        m->pending = &me;
    m->pending_tail = &me;
    while (!me.done) {
        if (m->busy) {
            pthread_cond_wait(&m->bq_cv, &m->bq_mu);
            continue;
        }
        m->busy = 1; /* lead until this job is done */
        while (!me.done) {
            gen_job *start[GEN_BATCH_MAX], *failed[GEN_BATCH_MAX];
            int ns = 0, nf = 0;
            while (m->pending && m->n_active + ns < GEN_BATCH_MAX) {
                start[ns++] = m->pending;
                m->pending = m->pending->next;
            }
            if (!m->pending) m->pending_tail = NULL;
            pthread_mutex_unlock(&m->bq_mu);
            gen_lock_step(m);
            batch_step(m, start, ns, failed, &nf);
            pthread_mutex_unlock(&m->mu);
            pthread_mutex_lock(&m->bq_mu);
            int k = 0, finished = nf;
            for (int i = 0; i < m->n_active; i++) {
                gen_job *j = m->active[i];
                if (!aios__gen_seq_done(j->seq)) {
                    m->active[k++] = j;
                    continue;
                }
                const char *err = NULL;
                j->status = aios__gen_seq_status(j->seq, &err);
                if (j->status != AIOS_OK) snprintf(j->err, sizeof j->err, "%s", err);
                if (j->unc) {
                    *j->unc = *aios__gen_seq_uncertainty(j->seq);
                    j->unc->entropy = j->unc->p_top1 = NULL;
                }
                aios__gen_seq_free(j->seq);
                j->seq = NULL;
                j->done = 1;
                finished++;
            }
            m->n_active = k;
            for (int i = 0; i < nf; i++)
                failed[i]->done = 1;
            if (finished) pthread_cond_broadcast(&m->bq_cv);
        }
        m->busy = 0;
        pthread_cond_broadcast(&m->bq_cv); /* the next waiting thread leads the rest */
    }
    pthread_mutex_unlock(&m->bq_mu);
    if (me.status != AIOS_OK) aios__err(me.status, "%s", me.err); /* the message in this thread */
    return me.status;
}

typedef struct {
    aios_server *srv;
    gen_model *m;
    aios__req req;
    char *mem_prompt; /* the memory-conditioned prompt, or NULL */
    cJSON *mem;       /* its "memory" extension object (moved into the last chunk) */
    int chat;
    char id[64];
    time_t created;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    aios_buf out; /* SSE bytes not yet read start at out_off */
    size_t out_off;
    int done, cancel;
    int sent_role;
    const aios_generate_result *res; /* the generation in progress (logprobs of its tokens) */
    cJSON *ads;                      /* its "adapters" extension field (moved into the last chunk) */
    size_t lp_sent;                  /* generated tokens whose logprobs a chunk carried */
    aios__skill_plan plan;           /* its skills (server_skills.c) */
} stream;

/* True when the peer of the connection has closed it (a zero-byte read, or a reset): work for
 * it can stop.  A pipelined next request (bytes waiting) is not a close. */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    if (!ci) return 0;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

typedef struct {
    aios_server *srv;
    struct MHD_Connection *c;
    unsigned n;
} watch;

/* on_token of a non-streamed request: stop when the client left or the server stops (checked
 * every 4 tokens: a recv() per token is measurable on tiny models). */
static int watch_token(void *user, int32_t id, const char *text, size_t len) {
    watch *w = user;
    if (atomic_load(&w->srv->stopping)) return 1;
    return (w->n++ & 3) == 0 && client_gone(w->c);
}

/* Bounded work and context: the prompt is tokenized first (under the model's lock) so a prompt
 * the context cannot hold gets the same 400 whether streamed or not, and prompt + max_tokens is
 * held to the server's cap. */
static enum MHD_Result check_prompt(aios_server *srv, struct MHD_Connection *c, gen_model *m,
                                    const aios__req *r, int chat, int *ok) {
    *ok = 0;
    size_t n = r->n_prompt_ids;
    char *text = NULL;
    gen_lock(m);
    aios_status s = chat ? chat_text(m, r, &text) : AIOS_OK;
    if (s == AIOS_OK && !r->prompt_ids) {
        int32_t *ids = NULL;
        s = aios_generator_tokenize(m->g, chat ? text : r->prompt, 1, &ids, &n);
        free(ids);
    }
    int64_t n_ctx = aios_generator_n_ctx(m->g);
    enum MHD_Result ret = MHD_YES;
    if (s != AIOS_OK) ret = send_status(c, s, "prompt");
    pthread_mutex_unlock(&m->mu);
    free(text);
    if (s != AIOS_OK) return ret;
    int64_t want = (int64_t)n + (r->max_tokens > 0 ? r->max_tokens : (chat ? 256 : 16));
    if (n_ctx > 0 && (int64_t)n >= n_ctx)
        return send_error(c, 400, "context_length_exceeded", chat ? "messages" : "prompt",
                          "%s: %zu tokens do not fit the model's context of %lld tokens",
                          chat ? "messages" : "prompt", n, (long long)n_ctx);
    if (want > srv->max_generation_tokens)
        return send_error(c, 400, "request_too_large", "max_tokens",
                          "max_tokens: prompt (%zu tokens) + max_tokens = %lld exceeds the server's "
                          "max_generation_tokens cap "
                          "of %lld (--max-generation-tokens)",
                          n, (long long)want, (long long)srv->max_generation_tokens);
    *ok = 1;
    return MHD_YES;
}

/* ---- skills (--skills LIB; server_skills.c) ---------------------------------------------- */

/* What the router embeds: the completion's text prompt, the chat's last user message (as
 * `aios generate --skills` and `aios chat` route the user's text); NULL for token ids. */
static const char *route_query(const aios__req *r, int chat) {
    if (!chat) return r->prompt;
    for (size_t i = r->n_messages; i-- > 0;)
        if (!strcmp(r->messages[i].role, "user")) return r->messages[i].content;
    return NULL;
}

/* The skills of one request, before any work (so a bad "router" / "skills" is a clean 400/404,
 * streamed or not).  On an error the response has been queued: *ok = 0. */
static enum MHD_Result plan_skills(aios_server *srv, struct MHD_Connection *c, gen_model *m,
                                   const aios__req *r, int chat, aios__skill_plan *plan, int *ok) {
    *ok = 0;
    if (srv->skills && m != srv->skills_gen && (r->has_skills || r->router == AIOS__ROUTER_SEMANTIC))
        return send_error(c, 400, "invalid_value", r->has_skills ? "skills" : "router",
                          "%s: the skill library serves model '%s', not '%s'",
                          r->has_skills ? "skills" : "router", srv->skills_gen->id, m->id);
    const char *param = NULL;
    unsigned http = 500;
    aios__skills *k = m == srv->skills_gen ? srv->skills : NULL;
    aios_status s = aios__skills_plan_request(k, r, route_query(r, chat), plan, &param, &http);
    if (s != AIOS_OK)
        return send_error(c, http,
                          http == 404   ? "skill_not_found"
                          : http == 400 ? "invalid_value"
                                        : "internal_error",
                          param, "%s", aios_last_error());
    if (!k && plan->router != AIOS__ROUTER_NONE) { /* arrow / compose over the loaded adapters */
        pthread_mutex_lock(&m->mu);
        int n = 0;
        for (int i = 0; i < m->n_ad; i++)
            n += !m->ad[i].skill;
        pthread_mutex_unlock(&m->mu);
        if (r->has_adapters ? !r->n_adapters : !n)
            return send_error(c, 400, "invalid_value", "router",
                              "router: \"%s\" mixes adapters: none in effect (load some, or "
                              "start the server with --skills LIB)",
                              AIOS__ROUTER_NAMES[plan->router]);
    }
    *ok = 1;
    return MHD_YES;
}

/* The response's "aios" field of a finished generation; under m->mu (the uncertainty is the
 * generator's last answer's). */
static cJSON *skills_ext(aios_server *srv, gen_model *m, const aios__skill_plan *plan,
                         const aios_gen_uncertainty *batched, double *score) {
    /* a batched answer's own; else the generator's last aios_generate call's */
    const aios_gen_uncertainty *u = batched ? batched : aios_generator_uncertainty(m->g);
    *score = u && u->n ? u->score : -1;
    return aios__skills_ext(plan, u, aios__skills_uncertainty_threshold(srv->skills));
}

/* An uncertain answer goes to the learning queue of the server's store (the evolution loop's:
 * with --skills, --store and --embedding-model), as `aios generate --learn-store` does; the
 * response says so ("queued").  Takes the store's and the encoder's locks. */
static void learn_queue(aios_server *srv, gen_model *m, const aios__skill_plan *plan, const char *question,
                        const char *answer, double score, cJSON *ext) {
    int queued = 0;
    if (srv->skills && srv->store && srv->enc && question && *question && answer && *answer &&
        score >= aios__skills_uncertainty_threshold(srv->skills)) {
        char names[2048];
        aios__skills_names(plan, names, sizeof names);
        aios_learn_item it = {question, answer, 0, score, names, m->id};
        pthread_mutex_lock(&srv->store_mu);
        pthread_mutex_lock(&srv->enc_mu);
        aios_status s = aios_learn_record(srv->store, srv->enc, &it, NULL);
        pthread_mutex_unlock(&srv->enc_mu);
        pthread_mutex_unlock(&srv->store_mu);
        queued = s == AIOS_OK;
        if (!queued) cJSON_AddStringToObject(ext, "queue_error", aios_last_error());
    }
    cJSON_AddBoolToObject(ext, "queued", queued);
}

/* Appends `data: <json>\n\n` (deletes j). */
static void sse_push(stream *st, cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return;
    pthread_mutex_lock(&st->mu);
    if (append_str(&st->out, "data: ") == AIOS_OK && append_str(&st->out, s) == AIOS_OK)
        append_str(&st->out, "\n\n");
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    free(s);
}

static cJSON *chunk(stream *st, const char *text, size_t len, const char *finish) {
    cJSON *o =
        gen_envelope(st->id, st->chat ? "chat.completion.chunk" : "text_completion", st->created, st->m->id);
    cJSON *arr = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    char *piece = NULL;
    if (text) {
        piece = malloc(len + 1);
        if (piece) memcpy(piece, text, len), piece[len] = 0;
    }
    /* logprobs of the tokens generated since the last chunk (text may lag its tokens: held-back
     * UTF-8 or a possible stop string), so every token's entry comes exactly once */
    cJSON *lp = NULL;
    if (st->req.logprobs && st->res && st->res->logprobs) {
        size_t n = st->res->n_ids - st->res->n_prompt;
        if (n > st->lp_sent) lp = logprobs_json(st->m, st->res, st->lp_sent, n, st->chat), st->lp_sent = n;
    }
    if (st->chat) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (!st->sent_role) cJSON_AddStringToObject(delta, "role", "assistant"), st->sent_role = 1;
        if (piece) cJSON_AddStringToObject(delta, "content", piece);
    } else
        cJSON_AddStringToObject(ch, "text", piece ? piece : "");
    if (lp)
        cJSON_AddItemToObject(ch, "logprobs", lp);
    else
        cJSON_AddNullToObject(ch, "logprobs");
    if (finish)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(arr, ch);
    free(piece);
    return o;
}

static int on_token(void *user, int32_t id, const char *text, size_t len) {
    stream *st = user;
    pthread_mutex_lock(&st->mu);
    int cancel = st->cancel;
    pthread_mutex_unlock(&st->mu);
    if (cancel || atomic_load(&st->srv->stopping)) return 1;
    if (len) sse_push(st, chunk(st, text, len, NULL));
    return 0;
}

static void *stream_main(void *arg) {
    stream *st = arg;
    aios_generate_params p = gen_params(&st->req, st->srv, st->chat);
    p.on_token = on_token;
    p.user = st;
    aios_generate_result res;
    memset(&res, 0, sizeof res);
    char *prompt = NULL;
    float scales[AIOS_DECODER_MAX_ADAPTERS];
    aios_gen_uncertainty unc = {0};
    gen_lock(st->m);
    const int batch = server_batchable(st->m);
    aios__gen_route route = {0, 0, 0};
    aios_status s =
        select_adapters(st->srv, st->m, &st->req, &st->plan, &st->ads, batch ? scales : NULL, &route);
    if (s == AIOS_OK && st->chat && !st->mem_prompt) s = chat_text(st->m, &st->req, &prompt);
    if (s == AIOS_OK) {
        if (st->chat) sse_push(st, chunk(st, NULL, 0, NULL)); /* the role first, as OpenAI does */
        const char *text = st->mem_prompt ? st->mem_prompt : st->chat ? prompt : st->req.prompt;
        st->res = &res;
        if (batch) { /* the batch's leader calls on_token (under the model's lock) */
            pthread_mutex_unlock(&st->m->mu);
            s = generate_batched(st->m, text, st->mem_prompt ? NULL : st->req.prompt_ids,
                                 st->req.n_prompt_ids, &p, scales, &route, &res, &unc);
            gen_lock(st->m);
        } else {
            s = aios_generate(st->m->g, text, st->mem_prompt ? NULL : st->req.prompt_ids,
                              st->req.n_prompt_ids, &p, &res);
        }
    }
    char err[2048];
    snprintf(err, sizeof err, "generation: %s", *aios_last_error() ? aios_last_error() : aios_status_str(s));
    cJSON *last =
        s == AIOS_OK || s == AIOS_ERR_CANCELLED ? chunk(st, NULL, 0, finish_reason(res.stop)) : NULL;
    double score = -1;
    cJSON *ext = last ? skills_ext(st->srv, st->m, &st->plan, batch ? &unc : NULL, &score) : NULL;
    st->res = NULL; /* the last chunk (built under the lock: token strings) took what was left */
    pthread_mutex_unlock(&st->m->mu);
    if (ext)
        learn_queue(st->srv, st->m, &st->plan, route_query(&st->req, st->chat), res.text,
                    s == AIOS_OK ? score : -1, ext);
    if (last) {
        cJSON_AddItemToObject(last, "aios", ext);
        if (!st->req.include_usage)
            cJSON_AddItemToObject(last, "usage", usage_json(res.n_prompt, res.n_ids - res.n_prompt));
        if (st->mem) cJSON_AddItemToObject(last, "memory", st->mem), st->mem = NULL;
        if (st->ads) cJSON_AddItemToObject(last, "adapters", st->ads), st->ads = NULL;
        sse_push(st, last);
        if (st->req.include_usage) { /* OpenAI: a last chunk with empty choices and the usage */
            cJSON *u = gen_envelope(st->id, st->chat ? "chat.completion.chunk" : "text_completion",
                                    st->created, st->m->id);
            cJSON_AddArrayToObject(u, "choices");
            cJSON_AddItemToObject(u, "usage", usage_json(res.n_prompt, res.n_ids - res.n_prompt));
            sse_push(st, u);
        }
    } else {
        int client = s == AIOS_ERR_RANGE || s == AIOS_ERR_INVALID_ARG || s == AIOS_ERR_ENCODING;
        sse_push(st, error_json(client ? "invalid_request_error" : "server_error",
                                client ? "invalid_value" : "internal_error", NULL, err));
    }
    aios_generate_result_free(&res);
    free(prompt);
    pthread_mutex_lock(&st->mu);
    append_str(&st->out, "data: [DONE]\n\n");
    st->done = 1;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream *st = cls;
    pthread_mutex_lock(&st->mu);
    while (st->out_off == st->out.len && !st->done)
        pthread_cond_wait(&st->cv, &st->mu);
    ssize_t n;
    if (st->out_off < st->out.len) {
        size_t k = st->out.len - st->out_off;
        if (k > max) k = max;
        memcpy(buf, st->out.data + st->out_off, k);
        st->out_off += k;
        if (st->out_off == st->out.len) st->out_off = st->out.len = 0; /* drained: reuse */
        n = (ssize_t)k;
    } else {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

static void stream_free(void *cls) {
    stream *st = cls;
    if (st->started) {
        pthread_mutex_lock(&st->mu);
        st->cancel = 1;
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->th, NULL);
    }
    aios__req_free(&st->req);
    free(st->mem_prompt);
    cJSON_Delete(st->mem);
    cJSON_Delete(st->ads);
    aios_buf_free(&st->out);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
}

static enum MHD_Result do_generate(aios_server *srv, struct MHD_Connection *c, aios__req *r, int chat) {
    gen_model *m = find_gen(srv, r->model);
    if (!m) {
        if (!srv->n_gens)
            return send_error(c, 404, "model_not_found", "model",
                              "no generation model (start with --model DIR)");
        return send_error(c, 404, "model_not_found", "model", "model '%s' does not exist", r->model);
    }
    int ok;
    enum MHD_Result pre = check_prompt(srv, c, m, r, chat, &ok);
    if (!ok) return pre;
    aios__skill_plan *plan = malloc(sizeof *plan);
    if (!plan) return send_error(c, 500, "internal_error", NULL, "out of memory");
    pre = plan_skills(srv, c, m, r, chat, plan, &ok);
    if (!ok) {
        free(plan);
        return pre;
    }
    if (r->has_adapters) { /* names checked before any work (and before a stream's headers) */
        const char *missing = NULL;
        gen_lock(m);
        for (int k = 0; k < r->n_adapters && !missing; k++)
            if (!find_adapter(m, r->adapter_name[k])) missing = r->adapter_name[k];
        pthread_mutex_unlock(&m->mu);
        if (missing) {
            free(plan);
            return send_error(c, 404, "adapter_not_found", "adapters",
                              "adapters: '%.128s' is not loaded on model '%s' (GET /v1/adapters)", missing,
                              m->id);
        }
    }
    char id[64];
    make_id(srv, chat ? "chatcmpl-" : "cmpl-", id, sizeof id);
    time_t created = time(NULL);
    char *mem_prompt = NULL;
    cJSON *mem = NULL;
    if (r->has_memory) {
        unsigned http = 400;
        aios_status ms = memory_prompt(srv, m, r, chat, &mem_prompt, &mem, &http);
        if (ms != AIOS_OK) free(plan);
        if (ms != AIOS_OK)
            return send_error(c, http, http == 400 ? "invalid_value" : "internal_error", "memory", "%s",
                              aios_last_error());
    }
    if (r->stream) {
        stream *st = calloc(1, sizeof *st);
        if (!st) {
            free(mem_prompt);
            cJSON_Delete(mem);
            free(plan);
            return send_error(c, 500, "internal_error", NULL, "out of memory");
        }
        st->mem_prompt = mem_prompt, st->mem = mem, st->plan = *plan;
        free(plan);
        st->srv = srv, st->m = m, st->req = *r, st->chat = chat, st->created = created;
        memset(r, 0, sizeof *r); /* the stream owns the request now */
        snprintf(st->id, sizeof st->id, "%s", id);
        pthread_mutex_init(&st->mu, NULL);
        pthread_cond_init(&st->cv, NULL);
        struct MHD_Response *resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
        if (!resp) {
            stream_free(st);
            return MHD_NO;
        }
        if (pthread_create(&st->th, NULL, stream_main, st) != 0) {
            MHD_destroy_response(resp); /* calls stream_free */
            return send_error(c, 500, "internal_error", NULL, "cannot start a generation thread");
        }
        st->started = 1;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        add_common_headers(c, resp);
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    aios_generate_params p = gen_params(r, srv, chat);
    watch w = {srv, c, 0};
    p.on_token = watch_token;
    p.user = &w;
    aios_generate_result res;
    memset(&res, 0, sizeof res);
    char *prompt = NULL;
    cJSON *ads = NULL;
    float scales[AIOS_DECODER_MAX_ADAPTERS];
    aios_gen_uncertainty unc = {0};
    gen_lock(m);
    const int batch = server_batchable(m);
    aios__gen_route route = {0, 0, 0};
    aios_status s = select_adapters(srv, m, r, plan, &ads, batch ? scales : NULL, &route);
    if (s == AIOS_OK && chat && !mem_prompt) s = chat_text(m, r, &prompt);
    const char *text = mem_prompt ? mem_prompt : chat ? prompt : r->prompt;
    if (s == AIOS_OK && batch) {
        pthread_mutex_unlock(&m->mu);
        s = generate_batched(m, text, mem_prompt ? NULL : r->prompt_ids, r->n_prompt_ids, &p, scales, &route,
                             &res, &unc);
        gen_lock(m);
    } else if (s == AIOS_OK) {
        s = aios_generate(m->g, text, mem_prompt ? NULL : r->prompt_ids, r->n_prompt_ids, &p, &res);
    }
    free(mem_prompt);
    enum MHD_Result ret;
    if (s != AIOS_OK) {
        ret = send_status(c, s, "generation"); /* aios_last_error() is still this thread's */
        pthread_mutex_unlock(&m->mu);
        aios_generate_result_free(&res);
        free(prompt);
        cJSON_Delete(mem);
        cJSON_Delete(ads);
        free(plan);
        return ret;
    }
    cJSON *lp =
        r->logprobs && res.logprobs ? logprobs_json(m, &res, 0, res.n_ids - res.n_prompt, chat) : NULL;
    double score;
    cJSON *ext = skills_ext(srv, m, plan, batch ? &unc : NULL, &score);
    pthread_mutex_unlock(&m->mu);
    learn_queue(srv, m, plan, route_query(r, chat), res.text, score, ext);
    free(plan);
    cJSON *o = gen_envelope(id, chat ? "chat.completion" : "text_completion", created, m->id);
    cJSON *arr = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    if (chat) {
        cJSON *msg = cJSON_AddObjectToObject(ch, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddStringToObject(msg, "content", res.text ? res.text : "");
    } else {
        cJSON_AddStringToObject(ch, "text", res.text ? res.text : "");
    }
    if (lp)
        cJSON_AddItemToObject(ch, "logprobs", lp);
    else
        cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddStringToObject(ch, "finish_reason", finish_reason(res.stop));
    cJSON_AddItemToArray(arr, ch);
    cJSON_AddItemToObject(o, "usage", usage_json(res.n_prompt, res.n_ids - res.n_prompt));
    if (mem) cJSON_AddItemToObject(o, "memory", mem);
    if (ads) cJSON_AddItemToObject(o, "adapters", ads);
    cJSON_AddItemToObject(o, "aios", ext);
    aios_generate_result_free(&res);
    free(prompt);
    return send_json(c, MHD_HTTP_OK, o);
}

/* ---- memories ----------------------------------------------------------------------------- */

static cJSON *memory_json(const aios_memory *m, int with_embedding) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m->memory_id ? m->memory_id : "");
    cJSON_AddStringToObject(o, "object", "memory");
    char ts[32]; /* an integer always: a double prints 1.79619313414325e+15 */
    snprintf(ts, sizeof ts, "%lld", (long long)m->timestamp_us);
    cJSON_AddRawToObject(o, "timestamp", ts);
    if (m->content)
        cJSON_AddStringToObject(o, "content", m->content);
    else
        cJSON_AddNullToObject(o, "content");
    if (m->has_metadata) {
        cJSON *md = cJSON_AddObjectToObject(o, "metadata");
        if (m->category)
            cJSON_AddStringToObject(md, "category", m->category);
        else
            cJSON_AddNullToObject(md, "category");
        if (m->source)
            cJSON_AddStringToObject(md, "source", m->source);
        else
            cJSON_AddNullToObject(md, "source");
        if (m->has_quality && isfinite(m->quality_score))
            cJSON_AddNumberToObject(md, "quality_score", m->quality_score);
        else
            cJSON_AddNullToObject(md, "quality_score");
    } else {
        cJSON_AddNullToObject(o, "metadata");
    }
    if (with_embedding && m->embedding && m->dim > 0) {
        cJSON *e = cJSON_AddArrayToObject(o, "embedding");
        for (int32_t k = 0; k < m->dim; k++)
            cJSON_AddItemToArray(e, cJSON_CreateNumber(isfinite(m->embedding[k]) ? m->embedding[k] : 0));
    }
    return o;
}

/* The text's embedding from the encoder (out: dim floats, malloc'd). */
static aios_status embed_text(aios_server *srv, const char *text, float **out, int32_t *dim) {
    int64_t d = aios_encoder_dim(srv->enc);
    float *v = malloc((size_t)d * sizeof *v);
    if (!v) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    pthread_mutex_lock(&srv->enc_mu);
    aios_status s = aios_encode(srv->enc, text, strlen(text), v);
    pthread_mutex_unlock(&srv->enc_mu);
    if (s != AIOS_OK) {
        free(v);
        return s;
    }
    *out = v;
    *dim = (int32_t)d;
    return AIOS_OK;
}

static enum MHD_Result no_store(struct MHD_Connection *c) {
    return send_error(c, 404, "no_memory_store", NULL, "no memory store (start with --store DIR)");
}

static enum MHD_Result do_memory_add(aios_server *srv, struct MHD_Connection *c, aios__req *r) {
    if (!srv->store) return no_store(c);
    if (!r->embedding) {
        if (!srv->enc)
            return send_error(c, 400, "invalid_value", "embedding",
                              "embedding: required (the server has no embedding model)");
        aios_status s = embed_text(srv, r->content, &r->embedding, &r->dim);
        if (s != AIOS_OK) return send_status(c, s, "embedding");
    }
    aios_memory m;
    memset(&m, 0, sizeof m);
    m.memory_id = r->memory_id;
    m.timestamp_us = r->timestamp_us;
    m.content = r->content;
    m.embedding = r->embedding;
    m.dim = r->dim;
    m.has_metadata = r->has_metadata;
    m.category = r->category;
    m.source = r->source;
    m.has_quality = r->has_quality;
    m.quality_score = r->quality_score;
    char id[AIOS_MEMORY_ID_MAX];
    pthread_mutex_lock(&srv->store_mu);
    aios_status s = aios_store_add(srv->store, &m, id);
    enum MHD_Result ret;
    if (s != AIOS_OK) {
        ret = send_status(c, s, "memory add");
    } else {
        aios_memory got;
        s = aios_store_get(srv->store, id, &got);
        ret =
            s == AIOS_OK ? send_json(c, MHD_HTTP_OK, memory_json(&got, 0)) : send_status(c, s, "memory add");
    }
    pthread_mutex_unlock(&srv->store_mu);
    return ret;
}

static enum MHD_Result do_memory_get(aios_server *srv, struct MHD_Connection *c, const char *id, int del) {
    if (!srv->store) return no_store(c);
    if (!*id || strlen(id) >= AIOS_MEMORY_ID_MAX)
        return send_error(c, 404, "not_found", "id", "memory '%.300s' not found", id);
    pthread_mutex_lock(&srv->store_mu);
    enum MHD_Result ret;
    aios_memory m;
    aios_status s = del ? aios_store_delete(srv->store, id) : aios_store_get(srv->store, id, &m);
    if (s == AIOS_ERR_NOT_FOUND) {
        ret = send_error(c, 404, "not_found", "id", "memory '%s' not found", id);
    } else if (s != AIOS_OK) {
        ret = send_status(c, s, del ? "memory delete" : "memory get");
    } else if (del) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "object", "memory.deleted");
        cJSON_AddBoolToObject(o, "deleted", 1);
        ret = send_json(c, MHD_HTTP_OK, o);
    } else {
        ret = send_json(c, MHD_HTTP_OK, memory_json(&m, 1));
    }
    pthread_mutex_unlock(&srv->store_mu);
    return ret;
}

/* GET /v1/memories?limit=N&after=CURSOR: live memories in storage order, a page at a time
 * (OpenAI's list shape plus "next": the cursor of the next page, null at the end). */
static enum MHD_Result do_memory_list(aios_server *srv, struct MHD_Connection *c) {
    if (!srv->store) return no_store(c);
    const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    const char *aft = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    long long limit = 20, cursor = 0;
    char *end;
    if (lim && (limit = strtoll(lim, &end, 10), !*lim || *end || limit < 1 || limit > 1000))
        return send_error(c, 400, "invalid_value", "limit", "limit: expected an integer in [1, 1000]");
    if (aft && (cursor = strtoll(aft, &end, 10), !*aft || *end || cursor < 0))
        return send_error(c, 400, "invalid_value", "after",
                          "after: expected the \"next\" cursor of the previous page");
    int with_emb = 0;
    const char *ie = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "include_embedding");
    if (ie) with_emb = !strcmp(ie, "true") || !strcmp(ie, "1");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *arr = cJSON_AddArrayToObject(o, "data");
    pthread_mutex_lock(&srv->store_mu);
    int64_t cur = cursor;
    aios_status s = AIOS_OK;
    long long n = 0;
    aios_memory m;
    while (n < limit && (s = aios_store_next(srv->store, &cur, &m)) == AIOS_OK) {
        cJSON_AddItemToArray(arr, memory_json(&m, with_emb));
        n++;
    }
    int64_t probe = cur;
    int more = s == AIOS_OK && aios_store_next(srv->store, &probe, &m) == AIOS_OK;
    if (s == AIOS_ERR_NOT_FOUND) s = AIOS_OK;
    pthread_mutex_unlock(&srv->store_mu);
    if (s != AIOS_OK) {
        cJSON_Delete(o);
        return send_status(c, s, "memory list");
    }
    cJSON_AddBoolToObject(o, "has_more", more);
    if (more) {
        char nx[32];
        snprintf(nx, sizeof nx, "%lld", (long long)cur);
        cJSON_AddStringToObject(o, "next", nx);
    } else {
        cJSON_AddNullToObject(o, "next");
    }
    return send_json(c, MHD_HTTP_OK, o);
}

/* POST /v1/memories/{id}: changes the fields given (content, embedding, timestamp, metadata),
 * keeps the others; new content without an embedding is embedded again. */
static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static enum MHD_Result do_memory_update(aios_server *srv, struct MHD_Connection *c, const char *id,
                                        aios__req *r) {
    if (!srv->store) return no_store(c);
    if (!*id || strlen(id) >= AIOS_MEMORY_ID_MAX)
        return send_error(c, 404, "not_found", "id", "memory '%.300s' not found", id);
    if (r->content && !r->embedding && srv->enc) {
        aios_status s = embed_text(srv, r->content, &r->embedding, &r->dim);
        if (s != AIOS_OK) return send_status(c, s, "embedding");
    }
    pthread_mutex_lock(&srv->store_mu);
    aios_memory old;
    aios_status s = aios_store_get(srv->store, id, &old);
    enum MHD_Result ret;
    if (s == AIOS_ERR_NOT_FOUND) {
        pthread_mutex_unlock(&srv->store_mu);
        return send_error(c, 404, "not_found", "id", "memory '%s' not found", id);
    }
    if (s != AIOS_OK) {
        ret = send_status(c, s, "memory update");
        pthread_mutex_unlock(&srv->store_mu);
        return ret;
    }
    /* the old values live in the store until its next write: copy what is kept */
    char *content = r->content ? NULL : dup_or_null(old.content);
    char *cat = r->has_metadata ? NULL : dup_or_null(old.category),
         *src = r->has_metadata ? NULL : dup_or_null(old.source);
    float *emb = NULL;
    if (!r->embedding && old.embedding && old.dim > 0 && (emb = malloc((size_t)old.dim * sizeof *emb)))
        memcpy(emb, old.embedding, (size_t)old.dim * sizeof *emb);
    aios_memory m = old;
    m.memory_id = id;
    if (r->content)
        m.content = r->content;
    else
        m.content = content;
    if (r->embedding)
        m.embedding = r->embedding, m.dim = r->dim;
    else
        m.embedding = emb;
    if (r->timestamp_us != AIOS_TIMESTAMP_NOW) m.timestamp_us = r->timestamp_us;
    if (r->has_metadata) {
        m.has_metadata = 1, m.category = r->category, m.source = r->source;
        m.has_quality = r->has_quality, m.quality_score = r->quality_score;
    } else {
        m.category = cat, m.source = src;
    }
    s = aios_store_update(srv->store, &m);
    if (s == AIOS_OK) s = aios_store_get(srv->store, id, &old);
    ret = s == AIOS_OK ? send_json(c, MHD_HTTP_OK, memory_json(&old, 0)) : send_status(c, s, "memory update");
    pthread_mutex_unlock(&srv->store_mu);
    free(content), free(cat), free(src), free(emb);
    return ret;
}

static enum MHD_Result do_memory_search(aios_server *srv, struct MHD_Connection *c, aios__req *r) {
    if (!srv->store) return no_store(c);
    if (!r->embedding) {
        if (!srv->enc)
            return send_error(c, 400, "invalid_value", "query",
                              "query: text search needs an embedding model; send \"embedding\"");
        aios_status s = embed_text(srv, r->content, &r->embedding, &r->dim);
        if (s != AIOS_OK) return send_status(c, s, "embedding");
    }
    aios_search_params q = aios_search_default_params();
    q.top_k = r->search_top_k;
    q.threshold = r->threshold;
    q.category = r->category;
    q.source = r->source;
    q.since_us = r->since_us;
    q.until_us = r->until_us;
    q.min_quality = r->min_quality;
    q.n_threads = 1;
    aios_search_hit *hits = calloc((size_t)q.top_k, sizeof *hits);
    if (!hits) return send_error(c, 500, "internal_error", NULL, "out of memory");
    int32_t n = 0;
    pthread_mutex_lock(&srv->store_mu);
    aios_status s = aios_store_search(srv->store, r->embedding, r->dim, &q, hits, &n);
    enum MHD_Result ret;
    if (s != AIOS_OK) {
        ret = send_status(c, s, "memory search");
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "object", "list");
        cJSON *arr = cJSON_AddArrayToObject(o, "data");
        for (int32_t i = 0; i < n; i++) {
            cJSON *h = memory_json(&hits[i].memory, r->include_embedding);
            cJSON_AddNumberToObject(h, "score", hits[i].score);
            cJSON_AddItemToArray(arr, h);
        }
        ret = send_json(c, MHD_HTTP_OK, o);
    }
    pthread_mutex_unlock(&srv->store_mu);
    free(hits);
    return ret;
}

/* ---- POST /v1/diffuse ------------------------------------------------------------------ */

static aios_status tokenize(const aios_tokenizer *tok, const char *text, int specials, int32_t **ids,
                            size_t *n) {
    aios_tok_params tp = aios_tokenizer_default_params(tok);
    tp.add_special_tokens = specials;
    aios_encoding *e = NULL;
    AIOS_TRY(aios_tokenizer_encode(tok, text, strlen(text), &tp, &e));
    int32_t *v = malloc((e->n ? e->n : 1) * sizeof *v);
    if (!v) {
        aios_encoding_free(e);
        return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    }
    if (e->n) memcpy(v, e->ids, e->n * sizeof *v);
    *ids = v;
    *n = e->n;
    aios_encoding_free(e);
    return AIOS_OK;
}

static cJSON *ids_json(const int32_t *ids, int64_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

static enum MHD_Result do_diffuse(aios_server *srv, struct MHD_Connection *c, aios__req *r) {
    if (!srv->dm)
        return send_error(c, 404, "model_not_found", "model",
                          "no diffusion model (start with --diffusion-model DIR)");
    if (r->model && strcmp(r->model, srv->dm_id) && strcmp(r->model, srv->dm_dir_id))
        return send_error(c, 404, "model_not_found", "model", "model '%s' is not the diffusion model '%s'",
                          r->model, srv->dm_id);
    if ((r->prompt || r->suffix) && !srv->dm_tok)
        return send_error(c, 400, "invalid_value", "prompt",
                          "the diffusion model has no tokenizer.json: send prompt_ids / suffix_ids");
    aios_status s;
    if (r->prompt && (s = tokenize(srv->dm_tok, r->prompt, 1, &r->prompt_ids, &r->n_prompt_ids)) != AIOS_OK)
        return send_status(c, s, "prompt");
    if (r->suffix && (s = tokenize(srv->dm_tok, r->suffix, 0, &r->suffix_ids, &r->n_suffix_ids)) != AIOS_OK)
        return send_status(c, s, "suffix");
    if (!r->n_prompt_ids) return send_error(c, 400, "invalid_value", "prompt", "prompt: no tokens");
    {
        int64_t steps = r->steps ? r->steps : r->gen_length, work = r->gen_length * steps;
        if (work > srv->max_diffusion_work)
            return send_error(
                c, 400, "request_too_large", "steps",
                "steps: gen_length x steps = %lld exceeds the server's max_diffusion_work cap of %lld "
                "(--max-diffusion-work)",
                (long long)work, (long long)srv->max_diffusion_work);
    }
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = r->gen_length;
    p.steps = (int)(r->steps ? r->steps : r->gen_length);
    p.block_length = r->block_length;
    p.algorithm = (aios_remask)r->algorithm;
    p.plan = (aios_plan)r->plan;
    p.temperature = r->temperature;
    p.top_k = r->top_k;
    p.top_p = r->top_p;
    p.seed = r->seed;
    p.threshold = r->confidence_threshold;
    p.stop_at_eos = r->stop_at_eos;
    p.keep_trace = 0;
    aios_diffuse_result res;
    memset(&res, 0, sizeof res);
    pthread_mutex_lock(&srv->dm_mu);
    const aios_denoiser *dn = aios_diffusion_model_denoiser(srv->dm);
    int64_t B = p.block_length ? p.block_length : (dn->block_size > 0 ? dn->block_size : p.gen_length);
    int64_t need = (int64_t)r->n_prompt_ids + B + p.gen_length + (int64_t)r->n_suffix_ids;
    s = AIOS_OK;
    if (need > 65536)
        s = aios__err(AIOS_ERR_RANGE, "diffuse: canvas of %lld tokens is too long (65536 at most)",
                      (long long)need);
    else if (dn->attn == AIOS_DENOISE_BLOCK_CAUSAL && dn->max_ctx < need)
        s = aios_diffusion_model_set_cache(srv->dm, need);
    if (s == AIOS_OK)
        s = aios_diffuse_sample(dn, &p, r->prompt_ids, (int64_t)r->n_prompt_ids, r->suffix_ids,
                                (int64_t)r->n_suffix_ids, &res);
    enum MHD_Result ret;
    if (s != AIOS_OK) {
        ret = send_status(c, s, "diffuse");
        pthread_mutex_unlock(&srv->dm_mu);
        aios_diffuse_result_free(&res);
        return ret;
    }
    pthread_mutex_unlock(&srv->dm_mu);
    char id[64];
    make_id(srv, "diff-", id, sizeof id);
    cJSON *o = gen_envelope(id, "diffusion", time(NULL), srv->dm_id);
    const int32_t *gen = res.ids + res.gen_start;
    cJSON_AddItemToObject(o, "ids", ids_json(gen, res.gen_len));
    cJSON_AddItemToObject(o, "canvas", ids_json(res.ids, res.n_ids));
    char *text = NULL;
    if (srv->dm_tok &&
        aios_tokenizer_decode(srv->dm_tok, gen, (size_t)res.gen_len, 1, &text, &(size_t){0}) == AIOS_OK &&
        text)
        cJSON_AddStringToObject(o, "text", text);
    else
        cJSON_AddNullToObject(o, "text");
    free(text);
    cJSON_AddBoolToObject(o, "stopped_at_eos", res.stopped_at_eos);
    cJSON_AddNumberToObject(o, "steps", res.n_steps);
    cJSON_AddNumberToObject(o, "uncertainty", isfinite(res.uncertainty) ? res.uncertainty : 0);
    cJSON_AddItemToObject(o, "usage", usage_json(r->n_prompt_ids, (size_t)res.gen_len));
    aios_diffuse_result_free(&res);
    return send_json(c, MHD_HTTP_OK, o);
}

/* ---- routing ------------------------------------------------------------------------------ */

typedef struct {
    aios_buf body;
    int too_big;
    int counted; /* holds a request slot (srv->n_active, its client's count) */
    int slot;
    int keep;                         /* HTTP/1.1 without Connection: close or Transfer-Encoding */
    unsigned long long wire, cl, got; /* header block + Content-Length; Content-Length; body bytes read */
} conn_ctx;

/* Constant-time comparison of the request's bearer token with the key (no early exit on the
 * first differing byte: the time does not tell an attacker how much of a guess was right). */
static int key_ok(const aios_server *srv, struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t n = strlen(h);
    unsigned char diff = (unsigned char)(n != srv->api_key_len);
    for (size_t i = 0; i < srv->api_key_len; i++)
        diff |= (unsigned char)(srv->api_key[i] ^ (i < n ? h[i] : 0));
    return diff == 0;
}

/* Headers: libmicrohttpd answers a header block larger than its per-connection memory pool
 * itself, with an HTML page (and, in 0.9.75, its status line twice).  The pool is therefore
 * HEADER_POOL bytes, and a block over HEADER_CAP bytes (well inside it) gets our JSON 431. */
#define HEADER_CAP (16u << 10)
#define HEADER_POOL (256u << 10)

static enum MHD_Result sum_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    *(size_t *)cls += (key ? strlen(key) : 0) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

static size_t header_bytes(struct MHD_Connection *c) {
    size_t n = 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, sum_header, &n);
    return n;
}

/* DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 sends its requests to
 * a loopback server with "Host: evil.example".  On a loopback bind only loopback names pass. */
static int host_ok(struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!h) return 1; /* HTTP/1.0 without Host: not a browser */
    char name[256];
    size_t n = strlen(h);
    if (n >= sizeof name) return 0;
    memcpy(name, h, n + 1);
    if (name[0] == '[') { /* [v6]:port */
        char *e = strchr(name, ']');
        if (!e) return 0;
        *e = 0;
        memmove(name, name + 1, strlen(name + 1) + 1);
    } else {
        char *colon = strchr(name, ':');
        if (colon) *colon = 0;
    }
    if (!strcasecmp(name, "localhost") || !strcasecmp(name, "localhost.")) return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, name, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, name, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static int is_json(struct MHD_Connection *c) {
    const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!t) return 0;
    while (*t == ' ')
        t++;
    return !strncasecmp(t, "application/json", 16) && (!t[16] || t[16] == ';' || t[16] == ' ');
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b) {
    if (a->ss_family != b->sa_family) return 0;
    if (b->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (b->sa_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
    return 0;
}

/* Takes a request slot: at most max_requests at once (GET /health always passes: it is how a
 * supervisor sees the server is alive under load) and max_per_client per client address.
 * 0 = refused (the caller answers 503). */
static int take_slot(aios_server *srv, struct MHD_Connection *c, conn_ctx *cx, int health) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    int ok = 0;
    pthread_mutex_lock(&srv->conn_mu);
    int slot = -1, free_slot = -1;
    for (int i = 0; sa && i < (int)AIOS_ARRAY_LEN(srv->clients); i++) {
        if (srv->clients[i].n && same_addr(&srv->clients[i].addr, sa))
            slot = i;
        else if (!srv->clients[i].n && free_slot < 0)
            free_slot = i;
    }
    if (health)
        ok = 1;
    else if (srv->n_active >= srv->max_requests)
        ok = 0;
    else if (slot >= 0)
        ok = srv->clients[slot].n < srv->max_per_client;
    else
        ok = 1;
    if (ok && !health) {
        if (slot < 0 && free_slot >= 0 && sa) {
            slot = free_slot;
            memset(&srv->clients[slot].addr, 0, sizeof srv->clients[slot].addr);
            memcpy(&srv->clients[slot].addr, sa,
                   sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
        }
        if (slot >= 0) srv->clients[slot].n++;
        srv->n_active++;
        cx->counted = 1;
        cx->slot = slot;
    }
    pthread_mutex_unlock(&srv->conn_mu);
    return ok;
}

static void give_slot(aios_server *srv, conn_ctx *cx) {
    if (!cx->counted) return;
    pthread_mutex_lock(&srv->conn_mu);
    srv->n_active--;
    if (cx->slot >= 0) srv->clients[cx->slot].n--;
    pthread_mutex_unlock(&srv->conn_mu);
    cx->counted = 0;
}

static enum MHD_Result with_body(aios_server *srv, struct MHD_Connection *c, conn_ctx *cx,
                                 aios__req_kind kind, const char *id) {
    aios__req r;
    const char *param = "";
    aios_status s = aios__req_parse(kind, (const char *)cx->body.data, cx->body.len, &r, &param);
    if (s == AIOS_ERR_NOMEM) return send_error(c, 500, "internal_error", NULL, "out of memory");
    if (s != AIOS_OK) return send_error(c, 400, "invalid_request", param, "%s", aios_last_error());
    enum MHD_Result ret;
    switch (kind) {
    case AIOS__REQ_EMBEDDINGS:
        ret = do_embeddings(srv, c, &r);
        break;
    case AIOS__REQ_COMPLETION:
        ret = do_generate(srv, c, &r, 0);
        break;
    case AIOS__REQ_CHAT:
        ret = do_generate(srv, c, &r, 1);
        break;
    case AIOS__REQ_MEMORY_ADD:
        ret = do_memory_add(srv, c, &r);
        break;
    case AIOS__REQ_MEMORY_UPDATE:
        ret = do_memory_update(srv, c, id, &r);
        break;
    case AIOS__REQ_MEMORY_SEARCH:
        ret = do_memory_search(srv, c, &r);
        break;
    case AIOS__REQ_ADAPTER:
        ret = do_adapter_post(srv, c, &r);
        break;
    default:
        ret = do_diffuse(srv, c, &r);
        break;
    }
    aios__req_free(&r);
    return ret;
}

/* What the gate needs to find the next request of a kept-alive connection (aios__gate_next): is
 * the connection kept (leaning to no: a wrong yes only makes a closing connection wait for its
 * client to close), and how many bytes this request takes on the wire. */
static void note_wire(struct MHD_Connection *c, const char *version, conn_ctx *cx) {
    const char *conn = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const union MHD_ConnectionInfo *hs = MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    cx->keep = version && !strcmp(version, "HTTP/1.1") && (!conn || !strcasecmp(conn, "keep-alive")) && hs &&
               !MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (cl) {
        char *end;
        errno = 0;
        cx->cl = strtoull(cl, &end, 10);
        if (errno || end == cl || *end) cx->keep = 0;
    }
    if (cx->keep) cx->wire = hs->header_size + cx->cl;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size,
                              void **con_cls) {
    aios_server *srv = cls;
    conn_ctx *cx = *con_cls;
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    int health = get && !strcmp(url, "/health");
    if (!cx) { /* first call: headers only.  What the headers decide is answered before any body is read. */
        if (!(cx = calloc(1, sizeof *cx))) return MHD_NO;
        cx->slot = -1;
        *con_cls = cx;
        note_wire(c, version, cx);
        if (header_bytes(c) > HEADER_CAP)
            return send_error(c, 431, "request_header_fields_too_large", NULL,
                              "request headers larger than %u bytes", HEADER_CAP);
        if (srv->loopback && !host_ok(c))
            return send_error(
                c, 403, "forbidden_host", NULL,
                "Host header names no loopback address: refused on a loopback bind (DNS rebinding)");
        if (!strcmp(method, "OPTIONS") && srv->cors_origin) { /* CORS preflight */
            struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (!r) return MHD_NO;
            add_common_headers(c, r);
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
            MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
            MHD_add_response_header(r, "Access-Control-Max-Age", "600");
            enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
            MHD_destroy_response(r);
            return ret;
        }
        if (srv->api_key && !health && !key_ok(srv, c)) {
            struct MHD_Response *r = NULL;
            char *t = NULL;
            cJSON *j = error_json("invalid_request_error", "invalid_api_key", NULL,
                                  "missing or wrong API key: send \"Authorization: Bearer KEY\"");
            t = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            if (t) r = MHD_create_response_from_buffer(strlen(t), t, MHD_RESPMEM_MUST_FREE);
            if (!r) {
                free(t);
                return MHD_NO;
            }
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
            MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
            add_common_headers(c, r);
            enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, r);
            MHD_destroy_response(r);
            return ret;
        }
        if (post && !is_json(c))
            return send_error(c, 415, "unsupported_media_type", NULL,
                              "POST %.256s: Content-Type must be application/json", url);
        if (!take_slot(srv, c, cx, health))
            return send_error(c, 503, "server_busy", NULL,
                              "server busy: too many requests in flight; retry later");
        return MHD_YES;
    }
    if (*upload_size) {
        cx->got += *upload_size;
        if (!cx->too_big) {
            if (cx->body.len + *upload_size > srv->max_body ||
                aios_buf_append(&cx->body, upload_data, *upload_size) != AIOS_OK) {
                cx->too_big = 1;
                aios_buf_free(&cx->body);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cx->too_big)
        return send_error(c, 413, "request_too_large", NULL, "request body larger than %zu bytes",
                          srv->max_body);
    struct {
        const char *path;
        int method_ok;
        int kind;
    } routes[] = {
        {"/health", get, -1},
        {"/v1/models", get, -2},
        {"/v1/memories", get || post, -3},
        {"/v1/embeddings", post, AIOS__REQ_EMBEDDINGS},
        {"/v1/completions", post, AIOS__REQ_COMPLETION},
        {"/v1/chat/completions", post, AIOS__REQ_CHAT},
        {"/v1/memories/search", post, AIOS__REQ_MEMORY_SEARCH},
        {"/v1/diffuse", post, AIOS__REQ_DIFFUSE},
        {"/v1/adapters", get || post, -4},
        {"/v1/skills", get, -5},
    };
    for (size_t i = 0; i < AIOS_ARRAY_LEN(routes); i++) {
        if (strcmp(url, routes[i].path)) continue;
        if (!routes[i].method_ok)
            return send_error(c, 405, "method_not_allowed", NULL, "%s %s: method not allowed", method, url);
        if (routes[i].kind == -1) return do_health(srv, c);
        if (routes[i].kind == -2) return do_models(srv, c);
        if (routes[i].kind == -3)
            return get ? do_memory_list(srv, c) : with_body(srv, c, cx, AIOS__REQ_MEMORY_ADD, NULL);
        if (routes[i].kind == -4)
            return get ? do_adapter_list(srv, c) : with_body(srv, c, cx, AIOS__REQ_ADAPTER, NULL);
        if (routes[i].kind == -5) {
            if (!srv->skills)
                return send_error(c, 404, "not_found", NULL,
                                  "no skill library (start the server with --skills LIB)");
            cJSON *o = aios__skills_list_json(srv->skills);
            cJSON_AddStringToObject(o, "model", srv->skills_gen->id);
            return send_json(c, MHD_HTTP_OK, o);
        }
        return with_body(srv, c, cx, (aios__req_kind)routes[i].kind, NULL);
    }
    static const char adp[] = "/v1/adapters/";
    if (!strncmp(url, adp, sizeof adp - 1) && url[sizeof adp - 1]) {
        if (!del)
            return send_error(c, 405, "method_not_allowed", NULL, "%s %.256s: method not allowed", method,
                              url);
        return do_adapter_delete(srv, c, url + sizeof adp - 1);
    }
    static const char mem[] = "/v1/memories/";
    if (!strncmp(url, mem, sizeof mem - 1) && url[sizeof mem - 1]) {
        if (post) return with_body(srv, c, cx, AIOS__REQ_MEMORY_UPDATE, url + sizeof mem - 1);
        if (!get && !del)
            return send_error(c, 405, "method_not_allowed", NULL, "%s %s: method not allowed", method, url);
        return do_memory_get(srv, c, url + sizeof mem - 1, del);
    }
    return send_error(c, 404, "not_found", NULL, "%s %.512s: no such route", method, url);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    conn_ctx *cx = *con_cls;
    if (!cx) return;
    give_slot(cls, cx);
    /* a kept-alive connection: the gate looks at the next request's head before the daemon reads
     * it, so that past the first request a broken one gets the same JSON errors */
    const union MHD_ConnectionInfo *si = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    sock_ctx *sc = si ? si->socket_context : NULL;
    aios_server *srv = cls;
    if (sc && fi && !sc->unchecked) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK || !cx->keep || cx->got != cx->cl) {
            sc->unchecked = 1;
        } else {
            sc->consumed += cx->wire;
            if (aios__gate_next(srv->gate, fi->connect_fd, sc->consumed) < 0) sc->unchecked = 1;
        }
    }
    aios_buf_free(&cx->body);
    free(cx);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    aios_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        sock_ctx *sc = calloc(1, sizeof *sc);
        if (sc) sc->srv = cls;
        *socket_context = sc;
        aios__gate_conn(srv->gate, 1);
    } else {
        free(*socket_context);
        *socket_context = NULL;
        aios__gate_conn(srv->gate, -1);
    }
}

/* The gate's hand-off: the daemon owns fd from here (it closes it if it cannot take it). */
static void gate_handoff(void *user, int fd, const struct sockaddr *addr, socklen_t addrlen) {
    aios_server *srv = user;
    if (MHD_add_connection(srv->d, fd, addr, addrlen) != MHD_YES)
        aios_log(AIOS_LOG_WARN, "server: connection refused by the daemon (%s)", strerror(errno));
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static aios_status embed_cb(void *user, const char *text, float *out, int32_t dim) {
    aios_server *srv = user;
    if (!srv->enc || aios_encoder_dim(srv->enc) != dim)
        return aios__err(AIOS_ERR_SHAPE, "server: embedding dimension mismatch");
    pthread_mutex_lock(&srv->enc_mu);
    aios_status s = aios_encode(srv->enc, text, strlen(text), out);
    pthread_mutex_unlock(&srv->enc_mu);
    return s;
}

aios_status aios_server_start(const aios_server_params *params, aios_server **out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "server: NULL argument");
    *out = NULL;
    aios_server_params p = params ? *params : aios_server_default_params();
    if (!p.host || !*p.host) p.host = "127.0.0.1";
    if (p.port < 0 || p.port > 65535)
        return aios__err(AIOS_ERR_INVALID_ARG, "server: port %d outside [0, 65535]", p.port);
    if (!p.max_body) p.max_body = 16u << 20;
    if (p.max_connections <= 0) p.max_connections = 64;
    if (p.timeout_s <= 0) p.timeout_s = 30;
    if (p.max_per_client <= 0) p.max_per_client = 16;
    if (p.max_embedding_tokens <= 0) p.max_embedding_tokens = 1 << 20;
    if (p.max_generation_tokens <= 0) p.max_generation_tokens = 1 << 16;
    if (p.max_diffusion_work <= 0) p.max_diffusion_work = 1 << 20;
    if (p.n_models && !p.models) return aios__err(AIOS_ERR_INVALID_ARG, "server: NULL model list");

    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    const char *host = strcmp(p.host, "localhost") ? p.host : "127.0.0.1";
    int v6 = 0;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)p.port);
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)p.port);
        v6 = 1;
    } else {
        return aios__err(AIOS_ERR_INVALID_ARG, "server: --host '%s' is not a numeric IPv4/IPv6 address",
                         p.host);
    }

    aios_server *srv = calloc(1, sizeof *srv);
    if (!srv) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    pthread_mutex_init(&srv->enc_mu, NULL);
    pthread_mutex_init(&srv->store_mu, NULL);
    pthread_mutex_init(&srv->dm_mu, NULL);
    pthread_mutex_init(&srv->conn_mu, NULL);
    pthread_mutex_init(&srv->batch_mu, NULL);
    pthread_cond_init(&srv->batch_cv, NULL);
    srv->max_body = p.max_body;
    srv->max_requests = p.max_connections;
    srv->max_per_client = p.max_per_client;
    srv->max_embedding_tokens = p.max_embedding_tokens;
    srv->max_generation_tokens = p.max_generation_tokens;
    srv->max_diffusion_work = p.max_diffusion_work;
    srv->loopback = v6 ? IN6_IS_ADDR_LOOPBACK(&a6.sin6_addr) : (ntohl(a4.sin_addr.s_addr) >> 24) == 127;
    if (p.api_key && *p.api_key) {
        srv->api_key = strdup(p.api_key);
        srv->api_key_len = strlen(p.api_key);
    }
    if (p.cors_origin && *p.cors_origin) srv->cors_origin = strdup(p.cors_origin);
    srv->created = time(NULL);
    aios_status s = AIOS_OK;
    if (p.n_models && !(srv->gens = calloc(p.n_models, sizeof *srv->gens)))
        s = aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    aios_generator_params gp = aios_generator_default_params();
    gp.n_threads = p.n_threads;
    gp.kv_type = p.kv_type;
    gp.int8_act = p.int8_act;
    for (size_t i = 0; s == AIOS_OK && i < p.n_models; i++) {
        gen_model *m = &srv->gens[i];
        config_id(p.models[i], p.aliases ? p.aliases[i] : NULL, m->id, sizeof m->id, m->dir_id,
                  sizeof m->dir_id);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(srv->gens[j].id, m->id))
                snprintf(m->id, sizeof m->id, "%.200s-%zu", srv->gens[j].id, i);
        s = aios_generator_open(p.models[i], &gp, &m->g);
        if (s != AIOS_OK) break; /* the message names the path */
        pthread_mutex_init(&m->mu, NULL);
        pthread_mutex_init(&m->bq_mu, NULL);
        pthread_cond_init(&m->bq_cv, NULL);
        srv->n_gens++;
    }
    for (size_t i = 0; s == AIOS_OK && i < p.n_adapters; i++) {
        int mi = p.adapter_models ? p.adapter_models[i] : 0;
        if (mi < 0 || (size_t)mi >= srv->n_gens) {
            s = aios__err(AIOS_ERR_INVALID_ARG,
                          "adapter %s: no generation model to attach it to (--model first)",
                          p.adapter_paths[i]);
            break;
        }
        char name[129];
        adapter_name_of(p.adapter_paths[i], name, sizeof name);
        for (size_t j = 0; j < srv->n_gens; j++) /* unique across the server: "name-2" ... */
            for (int k = 0; k < srv->gens[j].n_ad; k++)
                if (!strcmp(srv->gens[j].ad[k].name, name)) snprintf(name + strnlen(name, 120), 9, "-%zu", i);
        s = attach_adapter(&srv->gens[mi], p.adapter_paths[i], name,
                           p.adapter_scales ? p.adapter_scales[i] : 1.0f);
        if (s != AIOS_OK) s = aios__err_prefix(s, "adapter");
    }
    srv->arrow_top_k = p.arrow_top_k > 0
                           ? (p.arrow_top_k > AIOS__REQ_MAX_ADAPTERS ? AIOS__REQ_MAX_ADAPTERS : p.arrow_top_k)
                           : 2;
    srv->arrow_temperature =
        p.arrow_temperature > 0 && isfinite(p.arrow_temperature) ? p.arrow_temperature : 1.0f;
    if (s == AIOS_OK && p.skills_dir) {
        if (p.skills_model < 0 || (size_t)p.skills_model >= srv->n_gens)
            s = aios__err(AIOS_ERR_INVALID_ARG,
                          "skills %s: no generation model for its adapters (--model first)", p.skills_dir);
        else if ((s = aios__skills_open(&p, &srv->skills)) == AIOS_OK)
            srv->skills_gen = &srv->gens[p.skills_model];
    }
    if (s == AIOS_OK && p.adapter_dir) {
        char real[PATH_MAX];
        if (!realpath(p.adapter_dir, real))
            s = aios__err(AIOS_ERR_IO, "adapter dir %s: %s", p.adapter_dir, strerror(errno));
        else if (!(srv->adapter_dir = strdup(real)))
            s = aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    }
    if (s == AIOS_OK && p.embedding_model) {
        aios_encoder_params ep = aios_encoder_default_params();
        ep.n_threads = p.n_threads;
        ep.int8_act = p.embedding_int8_act;
        config_id(p.embedding_model, p.embedding_alias, srv->enc_id, sizeof srv->enc_id, srv->enc_dir_id,
                  sizeof srv->enc_dir_id);
        s = aios_encoder_open(p.embedding_model, &ep, &srv->enc);
        if (s != AIOS_OK) s = aios__err_prefix(s, "embedding model");
    }
    if (s == AIOS_OK && p.diffusion_model) {
        config_id(p.diffusion_model, p.diffusion_alias, srv->dm_id, sizeof srv->dm_id, srv->dm_dir_id,
                  sizeof srv->dm_dir_id);
        s = aios_diffusion_model_open(p.diffusion_model, &srv->dm);
        if (s != AIOS_OK) {
            s = aios__err_prefix(s, "diffusion model");
        } else if (aios_tokenizer_load(p.diffusion_model, &srv->dm_tok) != AIOS_OK) {
            srv->dm_tok = NULL; /* ids only */
            aios_clear_error();
        }
    }
    if (s == AIOS_OK && p.store_dir) {
        aios_store_params sp = aios_store_default_params();
        sp.create = 1;
        sp.dim = srv->enc ? (int32_t)aios_encoder_dim(srv->enc) : 0;
        sp.model = p.embedding_model;
        sp.embed = embed_cb;
        sp.embed_user = srv;
        s = aios_store_open(p.store_dir, &sp, &srv->store);
        if (s != AIOS_OK) s = aios__err_prefix(s, "store");
        model_id(p.store_dir, srv->store_id, sizeof srv->store_id);
        snprintf(srv->store_path, sizeof srv->store_path, "%s", p.store_dir);
        if (s == AIOS_OK && srv->enc) s = aios_memory_retriever_wrap(srv->store, srv->enc, &srv->mret);
    }
    if (s == AIOS_OK) {
        /* The gate (server_gate.c) owns the listening socket and hands each connection over, so
         * that the broken header blocks libmicrohttpd would answer with HTML get JSON errors. */
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                         MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | (v6 ? MHD_USE_IPv6 : 0);
        const struct sockaddr *sa = v6 ? (const struct sockaddr *)&a6 : (const struct sockaddr *)&a4;
        srv->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, srv, MHD_OPTION_NOTIFY_COMPLETED, completed,
                                  srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
                                  /* connections past the request cap still get their clean 503 (and
                                     /health its answer); only beyond this (the gate's max_pending
                                     below) do new ones wait in the kernel's backlog */
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)p.max_connections + 32u,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p.timeout_s,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_POOL, MHD_OPTION_END);
        if (!srv->d) {
            s = aios__err(AIOS_ERR_IO, "server: cannot start the HTTP daemon");
        } else {
            int port = p.port;
            s = aios__gate_start(sa, v6 ? (socklen_t)sizeof a6 : (socklen_t)sizeof a4, p.timeout_s,
                                 p.max_connections + 32, gate_handoff, srv, &srv->gate, &port);
            if (s != AIOS_OK) {
                char why[256];
                snprintf(why, sizeof why, "%s", aios_last_error());
                s = aios__err(s, "server: cannot listen on %s:%d: %s", p.host, p.port, why);
            }
            srv->port = port;
        }
    }
    if (s != AIOS_OK) {
        aios_server_stop(srv);
        return s;
    }
    *out = srv;
    return AIOS_OK;
}

int aios_server_port(const aios_server *srv) { return srv ? srv->port : 0; }

void aios_server_stop(aios_server *srv) {
    if (!srv) return;
    atomic_store(&srv->stopping, 1);
    aios__gate_stop(srv->gate);          /* no new connections; none left half-looked-at */
    if (srv->d) MHD_stop_daemon(srv->d); /* joins every connection thread (and so every stream) */
    aios__gate_free(srv->gate);          /* after them: their close notifications count in it */
    for (size_t i = 0; i < srv->n_gens; i++) {
        aios_generator_free(srv->gens[i].g);
        pthread_mutex_destroy(&srv->gens[i].mu);
        pthread_mutex_destroy(&srv->gens[i].bq_mu);
        pthread_cond_destroy(&srv->gens[i].bq_cv);
    }
    free(srv->gens);
    aios__skills_close(srv->skills);
    aios_memory_retriever_free(srv->mret);
    aios_store_close(srv->store);
    aios_encoder_free(srv->enc);
    aios_diffusion_model_free(srv->dm);
    aios_tokenizer_free(srv->dm_tok);
    pthread_mutex_destroy(&srv->dm_mu);
    pthread_mutex_destroy(&srv->enc_mu);
    pthread_mutex_destroy(&srv->store_mu);
    pthread_mutex_destroy(&srv->conn_mu);
    pthread_mutex_destroy(&srv->batch_mu);
    pthread_cond_destroy(&srv->batch_cv);
    free(srv->api_key);
    free(srv->cors_origin);
    free(srv->adapter_dir);
    free(srv);
}
