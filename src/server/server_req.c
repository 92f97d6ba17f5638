/*
 * server_req.c — parsing and validation of the HTTP server's JSON request bodies.
 *
 * Every body is hostile input: it is parsed with cJSON_ParseWithLength (bounded by the body
 * length, nesting limited by cJSON), then each field the route knows is checked for type and
 * range before anything reaches an engine.  Unknown fields are ignored (OpenAI clients send
 * many: "user", "n" = 1, "logprobs" = null ...) except those whose meaning we cannot honour
 * ("n" > 1, "echo" true, "suffix", "tools", "response_format" other than text,
 * content parts other than text), which get a 400 naming the field rather than being dropped.
 * Numbers that must be integers are checked to be finite, integral and in range before any cast.
 * The shapes follow the OpenAI API reference (embeddings, completions, chat completions).
 */
#include "server/server_req.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define BAD(field, ...) (*param = (field), aios__err(AIOS_ERR_INVALID_ARG, __VA_ARGS__))

static const cJSON *field(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return (v && !cJSON_IsNull(v)) ? v : NULL; /* null means absent, as OpenAI treats it */
}

/* An integral JSON number in [lo, hi]. */
static int as_int(const cJSON *v, double lo, double hi, int64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi) return 0;
    *out = (int64_t)d;
    return 1;
}

static int as_num(const cJSON *v, double lo, double hi, double *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi) return 0;
    *out = d;
    return 1;
}

/* A JSON array of token ids (integers in [0, INT32_MAX]), non-empty. */
static aios_status id_list(const cJSON *a, const char *name, const char **param, int32_t **ids, size_t *n) {
    int cnt = cJSON_GetArraySize(a);
    if (cnt <= 0 || cnt > AIOS__REQ_MAX_IDS) return BAD(name, "%s: expected 1 to %d token ids", name, AIOS__REQ_MAX_IDS);
    int32_t *v = malloc((size_t)cnt * sizeof *v);
    if (!v) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    size_t k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        int64_t x;
        if (!as_int(e, 0, INT32_MAX, &x) || k >= (size_t)cnt) {
            free(v);
            return BAD(name, "%s: token ids must be integers in [0, 2147483647]", name);
        }
        v[k++] = (int32_t)x;
    }
    *ids = v;
    *n = k;
    return AIOS_OK;
}

static aios_status float_list(const cJSON *a, const char *name, const char **param, float **out, int32_t *dim) {
    if (!cJSON_IsArray(a)) return BAD(name, "%s: expected an array of numbers", name);
    int cnt = cJSON_GetArraySize(a);
    if (cnt <= 0 || cnt > AIOS__REQ_MAX_DIM) return BAD(name, "%s: expected 1 to %d numbers", name, AIOS__REQ_MAX_DIM);
    float *v = malloc((size_t)cnt * sizeof *v);
    if (!v) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        double d;
        if (k >= cnt || !as_num(e, -3.4e38, 3.4e38, &d)) {
            free(v);
            return BAD(name, "%s: element %d is not a finite float32 number", name, k);
        }
        v[k++] = (float)d;
    }
    *out = v;
    *dim = k;
    return AIOS_OK;
}

static aios_status opt_string(const cJSON *obj, const char *name, const char **param, const char **out) {
    const cJSON *v = field(obj, name);
    if (!v) return AIOS_OK;
    if (!cJSON_IsString(v)) return BAD(name, "%s: expected a string", name);
    *out = v->valuestring;
    return AIOS_OK;
}

static aios_status opt_number(const cJSON *obj, const char *name, double lo, double hi, const char **param, double *out) {
    const cJSON *v = field(obj, name);
    if (!v) return AIOS_OK;
    if (!as_num(v, lo, hi, out)) return BAD(name, "%s: expected a number in [%g, %g]", name, lo, hi);
    return AIOS_OK;
}

static aios_status opt_int(const cJSON *obj, const char *name, double lo, double hi, const char **param, int64_t *out) {
    const cJSON *v = field(obj, name);
    if (!v) return AIOS_OK;
    if (!as_int(v, lo, hi, out)) return BAD(name, "%s: expected an integer in [%.0f, %.0f]", name, lo, hi);
    return AIOS_OK;
}

static aios_status opt_bool(const cJSON *obj, const char *name, const char **param, int *out) {
    const cJSON *v = field(obj, name);
    if (!v) return AIOS_OK;
    if (!cJSON_IsBool(v)) return BAD(name, "%s: expected true or false", name);
    *out = cJSON_IsTrue(v);
    return AIOS_OK;
}

static aios_status parse_embeddings(const cJSON *root, aios__req *r, const char **param) {
    const cJSON *in = field(root, "input");
    if (!in) return BAD("input", "input: required (a string, an array of strings or of token ids)");
    if (cJSON_IsString(in)) {
        r->n_inputs = 1;
        r->text = malloc(sizeof *r->text);
        r->text_len = malloc(sizeof *r->text_len);
        if (!r->text || !r->text_len) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
        r->text[0] = in->valuestring;
        r->text_len[0] = strlen(in->valuestring);
    } else if (cJSON_IsArray(in)) {
        int cnt = cJSON_GetArraySize(in);
        if (cnt <= 0) return BAD("input", "input: empty array");
        const cJSON *first = in->child;
        if (cJSON_IsNumber(first)) { /* one text as token ids */
            r->is_ids = 1;
            r->n_inputs = 1;
            r->ids = calloc(1, sizeof *r->ids);
            r->ids_len = calloc(1, sizeof *r->ids_len);
            if (!r->ids || !r->ids_len) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
            return id_list(in, "input", param, &r->ids[0], &r->ids_len[0]);
        }
        if (cnt > AIOS__REQ_MAX_INPUTS) return BAD("input", "input: at most %d inputs per request", AIOS__REQ_MAX_INPUTS);
        r->is_ids = cJSON_IsArray(first);
        r->n_inputs = (size_t)cnt;
        if (r->is_ids) {
            r->ids = calloc((size_t)cnt, sizeof *r->ids);
            r->ids_len = calloc((size_t)cnt, sizeof *r->ids_len);
            if (!r->ids || !r->ids_len) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
        } else {
            r->text = calloc((size_t)cnt, sizeof *r->text);
            r->text_len = calloc((size_t)cnt, sizeof *r->text_len);
            if (!r->text || !r->text_len) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
        }
        size_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, in) {
            if (i >= r->n_inputs) break;
            if (r->is_ids) {
                if (!cJSON_IsArray(e)) return BAD("input", "input[%zu]: expected an array of token ids", i);
                AIOS_TRY(id_list(e, "input", param, &r->ids[i], &r->ids_len[i]));
            } else {
                if (!cJSON_IsString(e)) return BAD("input", "input[%zu]: expected a string", i);
                r->text[i] = e->valuestring;
                r->text_len[i] = strlen(e->valuestring);
            }
            i++;
        }
    } else {
        return BAD("input", "input: expected a string, an array of strings or of token ids");
    }
    const char *fmt = NULL;
    AIOS_TRY(opt_string(root, "encoding_format", param, &fmt));
    if (fmt && strcmp(fmt, "float") && strcmp(fmt, "base64"))
        return BAD("encoding_format", "encoding_format: expected \"float\" or \"base64\"");
    r->base64 = fmt && !strcmp(fmt, "base64");
    return opt_int(root, "dimensions", 1, AIOS__REQ_MAX_DIM, param, &r->dimensions);
}

/* "adapters": [{"name": "...", "scale": 1.0}, ...]: names of loaded adapters (the server checks
 * that they exist), each at most once, scale finite in [-100, 100] */
static aios_status parse_adapters_field(const cJSON *root, aios__req *r, const char **param) {
    const cJSON *a = field(root, "adapters");
    if (!a) return AIOS_OK;
    if (!cJSON_IsArray(a)) return BAD("adapters", "adapters: expected an array of {\"name\", \"scale\"}");
    r->has_adapters = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (r->n_adapters >= AIOS__REQ_MAX_ADAPTERS) return BAD("adapters", "adapters: at most %d", AIOS__REQ_MAX_ADAPTERS);
        const cJSON *nm = cJSON_IsObject(e) ? field(e, "name") : NULL;
        if (!cJSON_IsString(nm) || !nm->valuestring[0])
            return BAD("adapters", "adapters[%d]: expected an object with a \"name\"", r->n_adapters);
        for (int k = 0; k < r->n_adapters; k++)
            if (!strcmp(r->adapter_name[k], nm->valuestring))
                return BAD("adapters", "adapters[%d]: '%.64s' named twice", r->n_adapters, nm->valuestring);
        double sc = 1;
        const cJSON *v = field(e, "scale");
        if (v && !as_num(v, -100, 100, &sc)) return BAD("adapters", "adapters[%d].scale: expected a number in [-100, 100]", r->n_adapters);
        const cJSON *f;
        cJSON_ArrayForEach(f, e)
            if (!f->string || (strcmp(f->string, "name") && strcmp(f->string, "scale")))
                return BAD("adapters", "adapters[%d]: unknown field '%.64s' (name, scale)", r->n_adapters, f->string ? f->string : "");
        r->adapter_name[r->n_adapters] = nm->valuestring;
        r->adapter_scale[r->n_adapters++] = (float)sc;
    }
    return AIOS_OK;
}

const char *const AIOS__ROUTER_NAMES[AIOS__ROUTER_COUNT] = {"none", "semantic", "arrow", "compose"};

/* "router": one of AIOS__ROUTER_NAMES; "skills": ["name" | {"name", "weight"}], each a valid skill
 * name ([A-Za-z0-9._-]{1,100}; the server checks that the library has it) at most once, weight
 * finite in [0, 100] */
static aios_status parse_skills_fields(const cJSON *root, aios__req *r, const char **param) {
    r->router = -1;
    const cJSON *v = field(root, "router");
    if (v) {
        for (int i = 0; cJSON_IsString(v) && i < AIOS__ROUTER_COUNT; i++)
            if (!strcmp(v->valuestring, AIOS__ROUTER_NAMES[i])) r->router = i;
        if (r->router < 0) return BAD("router", "router: expected \"none\", \"semantic\", \"arrow\" or \"compose\"");
    }
    int64_t rk = 0;
    AIOS_TRY(opt_int(root, "router_top_k", 1, AIOS__REQ_MAX_ADAPTERS, param, &rk));
    r->router_top_k = (int)rk;
    AIOS_TRY(opt_number(root, "router_temperature", 1e-6, 1e6, param, &r->router_temperature)); /* as --router-temperature */
    r->router_threshold = NAN;
    AIOS_TRY(opt_number(root, "router_threshold", -1, 1, param, &r->router_threshold));
    const cJSON *a = field(root, "skills");
    if (!a) return AIOS_OK;
    if (!cJSON_IsArray(a)) return BAD("skills", "skills: expected an array of skill names (or {\"name\", \"weight\"})");
    r->has_skills = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        int k = r->n_skills;
        if (k >= AIOS__REQ_MAX_ADAPTERS) return BAD("skills", "skills: at most %d", AIOS__REQ_MAX_ADAPTERS);
        const cJSON *nm = cJSON_IsString(e) ? e : cJSON_IsObject(e) ? field(e, "name") : NULL;
        if (!cJSON_IsString(nm)) return BAD("skills", "skills[%d]: expected a skill name or an object with a \"name\"", k);
        if (!aios_skills_name_ok(nm->valuestring))
            return BAD("skills", "skills[%d]: '%.64s' is not a skill name ([A-Za-z0-9._-], 1 to 100)", k, nm->valuestring);
        for (int j = 0; j < k; j++)
            if (!strcmp(r->skill_name[j], nm->valuestring)) return BAD("skills", "skills[%d]: '%.64s' named twice", k, nm->valuestring);
        double w = NAN;
        if (cJSON_IsObject(e)) {
            const cJSON *f;
            cJSON_ArrayForEach(f, e)
                if (!f->string || (strcmp(f->string, "name") && strcmp(f->string, "weight")))
                    return BAD("skills", "skills[%d]: unknown field '%.64s' (name, weight)", k, f->string ? f->string : "");
            if ((v = field(e, "weight")) && !as_num(v, 0, 100, &w))
                return BAD("skills", "skills[%d].weight: expected a number in [0, 100]", k);
        }
        r->skill_name[k] = nm->valuestring;
        r->skill_weight[k] = (float)w;
        r->n_skills++;
    }
    return AIOS_OK;
}

/* POST /v1/adapters: {"path": DIR, "name"?, "scale"?} loads; {"name", "scale"} rescales. */
static aios_status parse_adapter(const cJSON *root, aios__req *r, const char **param) {
    const cJSON *v;
    if ((v = field(root, "path")) && (!cJSON_IsString(v) || !v->valuestring[0])) return BAD("path", "path: expected a non-empty string");
    if (v) r->adapter_path = v->valuestring;
    if ((v = field(root, "name")) && (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 128 || strchr(v->valuestring, '/')))
        return BAD("name", "name: expected a string of 1..128 characters without '/'");
    if (v) r->name = v->valuestring;
    r->scale = 1;
    double sc;
    if ((v = field(root, "scale"))) {
        if (!as_num(v, -100, 100, &sc)) return BAD("scale", "scale: expected a number in [-100, 100]");
        r->has_scale = 1;
        r->scale = (float)sc;
    }
    if (!r->adapter_path && !r->name) return BAD("path", "path: required (or \"name\" and \"scale\" to rescale a loaded adapter)");
    if (!r->adapter_path && !r->has_scale) return BAD("scale", "scale: required to rescale adapter '%.64s'", r->name);
    return AIOS_OK;
}

static aios_status parse_sampling(const cJSON *root, aios__req *r, const char **param) {
    int64_t x;
    const cJSON *v;
    /* max_completion_tokens is the newer chat name for the same limit */
    const char *mt = field(root, "max_tokens") ? "max_tokens" : "max_completion_tokens";
    if ((v = field(root, mt))) {
        if (!as_int(v, 1, AIOS__REQ_MAX_TOKENS, &x)) return BAD(mt, "%s: expected an integer in [1, %d]", mt, AIOS__REQ_MAX_TOKENS);
        r->max_tokens = (int)x;
    }
    AIOS_TRY(opt_number(root, "temperature", 0, 100, param, &r->temperature));
    AIOS_TRY(opt_number(root, "top_p", 0, 1, param, &r->top_p));
    if (r->top_p <= 0) return BAD("top_p", "top_p: expected a number in (0, 1]");
    x = 0;
    AIOS_TRY(opt_int(root, "top_k", 0, 1 << 24, param, &x));
    r->top_k = (int)x;
    AIOS_TRY(opt_number(root, "min_p", 0, 1, param, &r->min_p));
    AIOS_TRY(opt_number(root, "presence_penalty", -2, 2, param, &r->presence_penalty));
    AIOS_TRY(opt_number(root, "frequency_penalty", -2, 2, param, &r->frequency_penalty));
    AIOS_TRY(opt_number(root, "repetition_penalty", 0.01, 100, param, &r->repetition_penalty));
    if ((v = field(root, "seed"))) {
        if (!as_int(v, -9007199254740992.0, 9007199254740992.0, &x))
            return BAD("seed", "seed: expected an integer of magnitude at most 2^53");
        r->has_seed = 1;
        r->seed = (uint64_t)x;
    }
    if ((v = field(root, "stop"))) {
        if (cJSON_IsString(v)) {
            if (v->valuestring[0]) r->stop[r->n_stop++] = v->valuestring;
        } else if (cJSON_IsArray(v)) {
            const cJSON *e;
            int k = 0;
            cJSON_ArrayForEach(e, v) {
                if (k++ >= AIOS__REQ_MAX_STOP) return BAD("stop", "stop: at most %d strings", AIOS__REQ_MAX_STOP);
                if (!cJSON_IsString(e)) return BAD("stop", "stop: expected a string or an array of strings");
                if (e->valuestring[0]) r->stop[r->n_stop++] = e->valuestring;
            }
        } else {
            return BAD("stop", "stop: expected a string or an array of strings");
        }
    }
    r->stop[r->n_stop] = NULL;
    AIOS_TRY(opt_bool(root, "stream", param, &r->stream));
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) return BAD("stream_options", "stream_options: expected an object {include_usage}");
        AIOS_TRY(opt_bool(so, "include_usage", param, &r->include_usage));
    }
    /* what the engine cannot do is refused, never silently ignored */
    static const char *const unsupported[] = {"tools", "tool_choice", "functions", "function_call", "logit_bias",
                                              "audio", "modalities", "prediction", "best_of"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const cJSON *u = field(root, unsupported[i]);
        if (!u) continue;
        if (!strcmp(unsupported[i], "best_of") && cJSON_IsNumber(u) && u->valuedouble == 1) continue;
        if (!strcmp(unsupported[i], "tool_choice") && cJSON_IsString(u) && !strcmp(u->valuestring, "none")) continue;
        if (cJSON_IsArray(u) && cJSON_GetArraySize(u) == 0) continue; /* "tools": [] asks for nothing */
        if (cJSON_IsObject(u) && !u->child) continue;
        return BAD(unsupported[i], "%s: not supported by this server", unsupported[i]);
    }
    /* logprobs: completions take "logprobs": N (N alternatives per token, OpenAI allows 0..5; we
     * 0..20); chat takes "logprobs": true and "top_logprobs": N (0..20), N only with logprobs */
    const cJSON *lp = field(root, "logprobs"), *tlp = field(root, "top_logprobs");
    if (r->kind == AIOS__REQ_COMPLETION) {
        if (lp) {
            if (!as_int(lp, 0, AIOS_MAX_TOP_LOGPROBS, &x))
                return BAD("logprobs", "logprobs: expected an integer in [0, %d] (alternatives per token)", AIOS_MAX_TOP_LOGPROBS);
            r->logprobs = 1;
            r->top_logprobs = (int)x;
        }
        if (tlp) return BAD("top_logprobs", "top_logprobs: a chat field; completions take \"logprobs\": N");
    } else {
        if (lp && !cJSON_IsBool(lp)) return BAD("logprobs", "logprobs: expected true or false");
        r->logprobs = lp && cJSON_IsTrue(lp);
        if (tlp) {
            if (!as_int(tlp, 0, AIOS_MAX_TOP_LOGPROBS, &x))
                return BAD("top_logprobs", "top_logprobs: expected an integer in [0, %d]", AIOS_MAX_TOP_LOGPROBS);
            if (!r->logprobs) return BAD("top_logprobs", "top_logprobs: needs \"logprobs\": true");
            r->top_logprobs = (int)x;
        }
    }
    AIOS_TRY(parse_adapters_field(root, r, param));
    AIOS_TRY(parse_skills_fields(root, r, param));
    const cJSON *rf = field(root, "response_format");
    if (rf) {
        const cJSON *t = cJSON_IsObject(rf) ? field(rf, "type") : NULL;
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "text"))
            return BAD("response_format", "response_format: only {\"type\": \"text\"} is supported");
    }
    AIOS_TRY(opt_bool(root, "ignore_eos", param, &r->ignore_eos));
    x = 1;
    AIOS_TRY(opt_int(root, "n", 1, 1, param, &x)); /* one choice per request */
    int echo = 0;
    AIOS_TRY(opt_bool(root, "echo", param, &echo));
    if (echo) return BAD("echo", "echo: not supported");
    if (field(root, "suffix")) return BAD("suffix", "suffix: not supported");
    return AIOS_OK;
}

/* "memory": {"store", "top_k", "min_score", "filter": {"category", "source"}, "max_tokens", "place"} */
static aios_status parse_memory_opts(const cJSON *root, aios__req *r, const char **param) {
    const cJSON *m = field(root, "memory");
    r->mem_top_k = 3;
    r->mem_min_score = -2.0f;
    r->mem_max_tokens = 256;
    if (!m) return AIOS_OK;
    if (!cJSON_IsObject(m))
        return BAD("memory", "memory: expected an object {store, top_k, min_score, filter, max_tokens, place}");
    r->has_memory = 1;
    const cJSON *v;
    if ((v = field(m, "store")) && !cJSON_IsString(v)) return BAD("memory", "memory.store: expected a string");
    if (v) r->mem_store = v->valuestring;
    int64_t x;
    if ((v = field(m, "top_k"))) {
        if (!as_int(v, 0, 1024, &x)) return BAD("memory", "memory.top_k: expected an integer in [0, 1024]");
        r->mem_top_k = (int32_t)x;
    }
    double d;
    if ((v = field(m, "min_score"))) {
        if (!as_num(v, -1, 1, &d)) return BAD("memory", "memory.min_score: expected a number in [-1, 1]");
        r->mem_min_score = (float)d;
    }
    if ((v = field(m, "max_tokens"))) {
        if (!as_int(v, 0, AIOS__REQ_MAX_TOKENS, &x))
            return BAD("memory", "memory.max_tokens: expected an integer in [0, %d]", AIOS__REQ_MAX_TOKENS);
        r->mem_max_tokens = x;
    }
    if ((v = field(m, "place"))) {
        if (!cJSON_IsString(v) || (strcmp(v->valuestring, "user") && strcmp(v->valuestring, "system")))
            return BAD("memory", "memory.place: expected \"user\" or \"system\"");
        r->mem_place = strcmp(v->valuestring, "user") ? AIOS_MEMPROMPT_SYSTEM : AIOS_MEMPROMPT_USER;
    }
    const cJSON *f = field(m, "filter");
    if (f) {
        if (!cJSON_IsObject(f)) return BAD("memory", "memory.filter: expected an object {category, source}");
        const cJSON *e;
        cJSON_ArrayForEach(e, f) {
            if (!e->string || (strcmp(e->string, "category") && strcmp(e->string, "source")))
                return BAD("memory", "memory.filter: unknown field '%.64s' (category, source)", e->string ? e->string : "");
            if (cJSON_IsNull(e)) continue;
            if (!cJSON_IsString(e)) return BAD("memory", "memory.filter.%s: expected a string", e->string);
            if (!strcmp(e->string, "category")) r->mem_category = e->valuestring;
            else r->mem_source = e->valuestring;
        }
    }
    return AIOS_OK;
}

static aios_status parse_completion(const cJSON *root, aios__req *r, const char **param) {
    const cJSON *p = field(root, "prompt");
    if (!p) return BAD("prompt", "prompt: required (a string or an array of token ids)");
    if (cJSON_IsString(p)) {
        r->prompt = p->valuestring;
    } else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child)) {
        r->prompt = p->child->valuestring; /* ["text"]: a batch of one */
    } else if (cJSON_IsArray(p) && cJSON_IsNumber(p->child)) {
        AIOS_TRY(id_list(p, "prompt", param, &r->prompt_ids, &r->n_prompt_ids));
    } else {
        return BAD("prompt", "prompt: expected a string, a one-string array or an array of token ids");
    }
    AIOS_TRY(parse_memory_opts(root, r, param));
    if (r->has_memory && !r->prompt) return BAD("memory", "memory: needs a text prompt (it is the query)");
    return parse_sampling(root, r, param);
}

/* content: [{"type": "text", "text": ...}, ...] — the texts joined (OpenAI concatenates them);
 * any other part (image_url, input_audio, file) is refused by name.  parts_size() checks every
 * message's parts and sizes one block (r->chat_text) that content_parts() then fills. */
static aios_status parts_size(const cJSON *arr, size_t i, const char **param, size_t *need) {
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const cJSON *t = cJSON_IsObject(e) ? field(e, "type") : NULL;
        if (!cJSON_IsString(t)) return BAD("messages", "messages[%zu].content: each part needs a \"type\"", i);
        if (strcmp(t->valuestring, "text"))
            return BAD("messages", "messages[%zu].content: part type '%.64s' is not supported (text only)", i, t->valuestring);
        const cJSON *x = field(e, "text");
        if (!cJSON_IsString(x)) return BAD("messages", "messages[%zu].content: a text part needs a string \"text\"", i);
        *need += strlen(x->valuestring);
    }
    *need += 1;
    return AIOS_OK;
}

static const char *content_parts(const cJSON *arr, aios__req *r) {
    char *start = r->chat_text + r->n_chat_text, *at = start;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const char *x = field(e, "text")->valuestring;
        size_t n = strlen(x);
        memcpy(at, x, n);
        at += n;
    }
    *at++ = 0;
    r->n_chat_text = (size_t)(at - r->chat_text);
    return start;
}

static aios_status parse_chat(const cJSON *root, aios__req *r, const char **param) {
    const cJSON *m = field(root, "messages");
    if (!cJSON_IsArray(m)) return BAD("messages", "messages: required (an array of {role, content})");
    int cnt = cJSON_GetArraySize(m);
    if (cnt <= 0 || cnt > AIOS__REQ_MAX_MESSAGES) return BAD("messages", "messages: expected 1 to %d messages", AIOS__REQ_MAX_MESSAGES);
    r->messages = calloc((size_t)cnt, sizeof *r->messages);
    if (!r->messages) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    const cJSON *e;
    size_t need = 0, k = 0;
    cJSON_ArrayForEach(e, m) {
        const cJSON *content = cJSON_IsObject(e) ? field(e, "content") : NULL;
        if (cJSON_IsArray(content)) AIOS_TRY(parts_size(content, k, param, &need));
        k++;
    }
    if (need && !(r->chat_text = malloc(need))) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    cJSON_ArrayForEach(e, m) {
        if (r->n_messages >= (size_t)cnt) break;
        size_t i = r->n_messages;
        if (!cJSON_IsObject(e)) return BAD("messages", "messages[%zu]: expected an object", i);
        const cJSON *role = field(e, "role"), *content = field(e, "content");
        if (!cJSON_IsString(role)) return BAD("messages", "messages[%zu].role: expected a string", i);
        if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
            strcmp(role->valuestring, "assistant") && strcmp(role->valuestring, "developer"))
            return BAD("messages", "messages[%zu].role: expected system, user or assistant", i);
        const char *text = NULL;
        if (cJSON_IsString(content)) text = content->valuestring;
        else if (cJSON_IsArray(content) && r->chat_text) text = content_parts(content, r);
        else return BAD("messages", "messages[%zu].content: expected a string or an array of text parts", i);
        /* "developer" is the newer name of "system" */
        r->messages[i].role = strcmp(role->valuestring, "developer") ? role->valuestring : "system";
        r->messages[i].content = text;
        r->n_messages++;
    }
    AIOS_TRY(parse_memory_opts(root, r, param));
    return parse_sampling(root, r, param);
}

static aios_status parse_metadata(const cJSON *root, aios__req *r, const char **param) {
    const cJSON *md = field(root, "metadata");
    if (!md) return AIOS_OK;
    if (!cJSON_IsObject(md)) return BAD("metadata", "metadata: expected an object {category, source, quality_score}");
    r->has_metadata = 1;
    AIOS_TRY(opt_string(md, "category", param, &r->category));
    AIOS_TRY(opt_string(md, "source", param, &r->source));
    double q;
    const cJSON *v = field(md, "quality_score");
    if (v) {
        if (!as_num(v, -3.4e38, 3.4e38, &q)) return BAD("metadata", "metadata.quality_score: expected a number");
        r->has_quality = 1;
        r->quality_score = (float)q;
    }
    return AIOS_OK;
}

static aios_status parse_memory_add(const cJSON *root, aios__req *r, const char **param) {
    int update = r->kind == AIOS__REQ_MEMORY_UPDATE;
    AIOS_TRY(opt_string(root, "content", param, &r->content));
    if (!r->content) AIOS_TRY(opt_string(root, "text", param, &r->content));
    AIOS_TRY(opt_string(root, "id", param, &r->memory_id));
    if (r->memory_id && strlen(r->memory_id) >= AIOS_MEMORY_ID_MAX)
        return BAD("id", "id: at most %d bytes", AIOS_MEMORY_ID_MAX - 1);
    const cJSON *v = field(root, "embedding");
    if (v) AIOS_TRY(float_list(v, "embedding", param, &r->embedding, &r->dim));
    if (!r->content && !r->embedding && !update) return BAD("content", "content: required (or an embedding)");
    if (update && field(root, "id")) return BAD("id", "id: the id is in the path; it cannot change");
    int64_t ts;
    if ((v = field(root, "timestamp"))) {
        if (!as_int(v, -9.2e18, 9.2e18, &ts)) return BAD("timestamp", "timestamp: expected integer microseconds since the epoch");
        r->timestamp_us = ts;
    }
    return parse_metadata(root, r, param);
}

static aios_status parse_memory_search(const cJSON *root, aios__req *r, const char **param) {
    AIOS_TRY(opt_string(root, "query", param, &r->content));
    const cJSON *v = field(root, "embedding");
    if (v) AIOS_TRY(float_list(v, "embedding", param, &r->embedding, &r->dim));
    if (!r->content == !r->embedding) return BAD("query", "query: give exactly one of \"query\" (text) and \"embedding\"");
    int64_t x = 10;
    AIOS_TRY(opt_int(root, "top_k", 1, 10000, param, &x));
    r->search_top_k = (int32_t)x;
    double t = -2;
    AIOS_TRY(opt_number(root, "threshold", -2, 2, param, &t));
    r->threshold = (float)t;
    /* filters at the top level or under "filters" */
    const cJSON *f = field(root, "filters");
    if (f && !cJSON_IsObject(f)) return BAD("filters", "filters: expected an object");
    const cJSON *src = f ? f : root;
    AIOS_TRY(opt_string(src, "category", param, &r->category));
    AIOS_TRY(opt_string(src, "source", param, &r->source));
    AIOS_TRY(opt_int(src, "since", -9.2e18, 9.2e18, param, &r->since_us));
    AIOS_TRY(opt_int(src, "until", -9.2e18, 9.2e18, param, &r->until_us));
    double q = -INFINITY;
    AIOS_TRY(opt_number(src, "min_quality", -3.4e38, 3.4e38, param, &q));
    r->min_quality = (float)q;
    return opt_bool(root, "include_embedding", param, &r->include_embedding);
}

static aios_status parse_diffuse(const cJSON *root, aios__req *r, const char **param) {
    const cJSON *v;
    if ((v = field(root, "prompt_ids"))) {
        if (!cJSON_IsArray(v)) return BAD("prompt_ids", "prompt_ids: expected an array of token ids");
        AIOS_TRY(id_list(v, "prompt_ids", param, &r->prompt_ids, &r->n_prompt_ids));
    } else if ((v = field(root, "prompt"))) {
        if (cJSON_IsString(v)) r->prompt = v->valuestring;
        else if (cJSON_IsArray(v)) AIOS_TRY(id_list(v, "prompt", param, &r->prompt_ids, &r->n_prompt_ids));
        else return BAD("prompt", "prompt: expected a string or an array of token ids");
    } else {
        return BAD("prompt", "prompt: required (a string, or token ids in prompt_ids)");
    }
    if ((v = field(root, "suffix_ids"))) {
        if (!cJSON_IsArray(v)) return BAD("suffix_ids", "suffix_ids: expected an array of token ids");
        AIOS_TRY(id_list(v, "suffix_ids", param, &r->suffix_ids, &r->n_suffix_ids));
    } else {
        AIOS_TRY(opt_string(root, "suffix", param, &r->suffix));
    }
    AIOS_TRY(opt_int(root, "gen_length", 1, 4096, param, &r->gen_length));
    AIOS_TRY(opt_int(root, "steps", 1, 4096, param, &r->steps));
    AIOS_TRY(opt_int(root, "block_length", 0, 4096, param, &r->block_length));
    const char *alg = NULL, *plan = NULL;
    AIOS_TRY(opt_string(root, "algorithm", param, &alg));
    if (alg && (r->algorithm = aios_remask_parse(alg)) < 0)
        return BAD("algorithm", "algorithm: expected low_confidence, margin, entropy or random");
    AIOS_TRY(opt_string(root, "plan", param, &plan));
    if (plan) {
        if (!strcmp(plan, "llada")) r->plan = AIOS_PLAN_LLADA;
        else if (!strcmp(plan, "dream")) r->plan = AIOS_PLAN_DREAM;
        else if (!strcmp(plan, "cosine")) r->plan = AIOS_PLAN_COSINE;
        else return BAD("plan", "plan: expected llada, dream or cosine");
    }
    r->temperature = 0;
    AIOS_TRY(opt_number(root, "temperature", 0, 100, param, &r->temperature));
    AIOS_TRY(opt_number(root, "top_p", 0, 1, param, &r->top_p));
    if (r->top_p <= 0) return BAD("top_p", "top_p: expected a number in (0, 1]");
    int64_t x = 0;
    AIOS_TRY(opt_int(root, "top_k", 0, 1 << 24, param, &x));
    r->top_k = (int)x;
    x = 0;
    AIOS_TRY(opt_int(root, "seed", 0, 9007199254740992.0, param, &x));
    r->seed = (uint64_t)x;
    AIOS_TRY(opt_number(root, "threshold", 0, 1, param, &r->confidence_threshold));
    return opt_bool(root, "stop_at_eos", param, &r->stop_at_eos);
}

aios_status aios__req_parse(aios__req_kind kind, const char *body, size_t len, aios__req *r, const char **param) {
    const char *dummy;
    if (!param) param = &dummy;
    *param = "";
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_tokens = -1;
    r->temperature = 1;
    r->top_p = 1;
    r->repetition_penalty = 1;
    r->timestamp_us = AIOS_TIMESTAMP_NOW;
    r->search_top_k = 10;
    r->threshold = -2;
    r->since_us = INT64_MIN;
    r->until_us = INT64_MAX;
    r->min_quality = -INFINITY;
    r->gen_length = 64;
    r->stop_at_eos = 1;
    r->router = -1;
    r->router_threshold = NAN;
    if ((unsigned)kind >= AIOS__REQ_KIND_COUNT) return aios__err(AIOS_ERR_INVALID_ARG, "server: unknown request kind");
    if (!body && len) return aios__err(AIOS_ERR_INVALID_ARG, "server: NULL body");
    cJSON *root = cJSON_ParseWithLength(body ? body : "", len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = (at && body && at >= body && at <= body + len) ? (size_t)(at - body) : len;
        return aios__err(AIOS_ERR_INVALID_ARG, "request body is not valid JSON (near byte %zu)", off);
    }
    r->json = root;
    aios_status s;
    if (!cJSON_IsObject(root)) {
        s = aios__err(AIOS_ERR_INVALID_ARG, "request body: expected a JSON object");
    } else if ((s = opt_string(root, "model", param, &r->model)) != AIOS_OK) {
    } else {
        switch (kind) {
        case AIOS__REQ_EMBEDDINGS: s = parse_embeddings(root, r, param); break;
        case AIOS__REQ_COMPLETION: s = parse_completion(root, r, param); break;
        case AIOS__REQ_CHAT: s = parse_chat(root, r, param); break;
        case AIOS__REQ_MEMORY_ADD:
        case AIOS__REQ_MEMORY_UPDATE: s = parse_memory_add(root, r, param); break;
        case AIOS__REQ_MEMORY_SEARCH: s = parse_memory_search(root, r, param); break;
        case AIOS__REQ_ADAPTER: s = parse_adapter(root, r, param); break;
        default: s = parse_diffuse(root, r, param); break;
        }
    }
    if (s != AIOS_OK) aios__req_free(r);
    return s;
}

void aios__req_free(aios__req *r) {
    if (!r) return;
    if (r->ids)
        for (size_t i = 0; i < r->n_inputs; i++) free(r->ids[i]);
    free(r->ids);
    free(r->ids_len);
    free(r->text);
    free(r->text_len);
    free(r->prompt_ids);
    free(r->suffix_ids);
    free(r->messages);
    free(r->chat_text);
    free(r->embedding);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}
