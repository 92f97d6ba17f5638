/*
 * server_skills.c — the skill library of the HTTP server (see server_skills.h).
 */
#include "server/server_skills.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

struct aios__skills {
    aios_skill_lib *lib; /* read-only while serving; a handle is one thread's at a time: mu */
    aios_encoder *enc;   /* the library's encoder (its vectors' model) */
    pthread_mutex_t mu;
    int router; /* AIOS__ROUTER_*: requests without "router" */
    aios_router_params rp;
    double uncertainty_threshold;
};

aios_status aios__skills_open(const aios_server_params *p, aios__skills **out) {
    *out = NULL;
    if (!p->skills_dir) return AIOS_OK;
    if (p->skills_router < 0 || p->skills_router >= AIOS__ROUTER_COUNT)
        return aios__err(AIOS_ERR_INVALID_ARG,
                         "skills: router %d is not one of none, semantic, arrow, compose", p->skills_router);
    aios__skills *k = calloc(1, sizeof *k);
    if (!k) return aios__err(AIOS_ERR_NOMEM, "server: out of memory");
    pthread_mutex_init(&k->mu, NULL);
    k->router = p->skills_router;
    k->rp = aios_router_default_params();
    if (p->skills_top_k > 0)
        k->rp.top_k = p->skills_top_k > AIOS_ROUTE_MAX ? AIOS_ROUTE_MAX : p->skills_top_k;
    if (isfinite(p->skills_threshold)) k->rp.threshold = p->skills_threshold;
    if (p->skills_temperature > 0 && isfinite(p->skills_temperature))
        k->rp.temperature = p->skills_temperature;
    k->uncertainty_threshold = isfinite(p->uncertainty_threshold) ? p->uncertainty_threshold : 0.7;
    aios_status s = aios_skills_open(p->skills_dir, 0, &k->lib);
    const char *e = s ? "" : aios_skills_encoder(k->lib);
    if (!s && !*e)
        s = aios__err(AIOS_ERR_NOT_FOUND, "skills %s: the library has no skill (no encoder recorded)",
                      p->skills_dir);
    aios_encoder_params ep = aios_encoder_default_params();
    ep.quantize_bits = p->skills_encoder_bits; /* int8 by default: the prompt's embedding is per request */
    if (!s && (s = aios_encoder_open(e, &ep, &k->enc)) != AIOS_OK) s = aios__err_prefix(s, "skills encoder");
    if (!s && aios_encoder_dim(k->enc) != aios_skills_dim(k->lib))
        s = aios__err(AIOS_ERR_SHAPE, "skills %s: vectors of %d floats, the encoder %s gives %lld",
                      p->skills_dir, aios_skills_dim(k->lib), e, (long long)aios_encoder_dim(k->enc));
    if (s) {
        aios__skills_close(k);
        return s;
    }
    *out = k;
    return AIOS_OK;
}

void aios__skills_close(aios__skills *k) {
    if (!k) return;
    aios_encoder_free(k->enc);
    aios_skills_close(k->lib);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

int aios__skills_default_router(const aios__skills *k) { return k ? k->router : AIOS__ROUTER_NONE; }

double aios__skills_uncertainty_threshold(const aios__skills *k) {
    return k ? k->uncertainty_threshold : 0.7;
}

#define FAIL(http_, field, ...)                                                                              \
    (*http = (http_), *param = (field), aios__err(AIOS_ERR_INVALID_ARG, __VA_ARGS__))

/* Copies skill sk into the plan's slot i.  Under k->mu. */
static aios_status plan_put(aios__skills *k, aios__skill_plan *plan, int i, const aios_skill *sk) {
    snprintf(plan->name[i], sizeof plan->name[i], "%s", sk->name);
    return aios_skills_adapter_path(k->lib, sk, plan->path[i], sizeof plan->path[i]);
}

aios_status aios__skills_plan_request(aios__skills *k, const aios__req *r, const char *query,
                                      aios__skill_plan *plan, const char **param, unsigned *http) {
    memset(plan, 0, sizeof *plan);
    *http = 500;
    *param = NULL;
    plan->router = r->router >= 0 ? r->router : aios__skills_default_router(k);
    if (plan->router == AIOS__ROUTER_ARROW)
        plan->arrow_top_k = r->router_top_k, plan->arrow_temperature = (float)r->router_temperature;
    if (!k) {
        if (r->has_skills)
            return FAIL(400, "skills",
                        "skills: the server has no skill library (start it with --skills LIB)");
        if (plan->router == AIOS__ROUTER_SEMANTIC)
            return FAIL(
                400, "router",
                "router: \"semantic\" chooses among skills: the server has no skill library (--skills LIB)");
        return AIOS_OK; /* arrow / compose mix the request's adapters */
    }
    aios_status s = AIOS_OK;
    pthread_mutex_lock(&k->mu);
    if (r->has_skills) { /* forced: those skills at their weights (default equal, summing to 1) */
        plan->forced = 1;
        for (int i = 0; i < r->n_skills && !s; i++) {
            const aios_skill *sk = aios_skills_get(k->lib, r->skill_name[i]);
            if (!sk) {
                s = FAIL(404, "skills", "skills: '%s' is not in the library (GET /v1/skills)",
                         r->skill_name[i]);
            } else if (sk->status && strcmp(sk->status, "active")) {
                s = FAIL(400, "skills", "skills: '%s' is %s%s%s", sk->name, sk->status,
                         sk->reason ? ": " : "", sk->reason ? sk->reason : "");
            } else if ((s = plan_put(k, plan, i, sk)) == AIOS_OK) {
                float w = r->skill_weight[i];
                plan->weight[i] =
                    isnan(w) ? (plan->router == AIOS__ROUTER_ARROW ? 1.0 : 1.0 / r->n_skills) : w;
                plan->score[i] = NAN;
                plan->n = i + 1;
            }
        }
    } else if (plan->router != AIOS__ROUTER_NONE && !query) {
        if (r->router >= 0)
            s = FAIL(400, "router",
                     "router: routing needs a text prompt (token ids cannot be embedded); name the skills "
                     "instead");
        /* the server's default router on token ids: the base model */
    } else if (plan->router != AIOS__ROUTER_NONE) {
        /* as `aios generate --skills`: arrow routes per token among every active skill (best
         * scores first, reported); semantic and compose keep the router's choice */
        aios_router_params rp = k->rp;
        if (r->router_top_k > 0)
            rp.top_k = r->router_top_k > AIOS_ROUTE_MAX ? AIOS_ROUTE_MAX : r->router_top_k;
        if (r->router_temperature > 0) rp.temperature = r->router_temperature;
        if (!isnan(r->router_threshold)) rp.threshold = r->router_threshold;
        if (plan->router == AIOS__ROUTER_ARROW) rp.top_k = AIOS_ROUTE_MAX, rp.threshold = -1;
        int32_t dim = aios_skills_dim(k->lib);
        float *q = malloc((size_t)dim * sizeof *q);
        aios_route routes[AIOS_ROUTE_MAX];
        int n = 0;
        if (!q) s = aios__err(AIOS_ERR_NOMEM, "server: out of memory");
        if (!s) s = aios_encode(k->enc, query, strlen(query), q);
        if (!s) s = aios_skills_route(k->lib, q, dim, &rp, routes, &n);
        free(q);
        for (int i = 0; !s && i < n; i++) {
            if ((s = plan_put(k, plan, i, aios_skills_at(k->lib, routes[i].index))) != AIOS_OK) break;
            plan->score[i] = routes[i].score;
            plan->weight[i] =
                plan->router == AIOS__ROUTER_ARROW ? 1.0 : routes[i].weight; /* arrow weighs per token */
            plan->n = i + 1;
        }
        if (s) *http = s == AIOS_ERR_ENCODING || s == AIOS_ERR_INVALID_ARG ? 400 : 500, *param = "prompt";
    }
    pthread_mutex_unlock(&k->mu);
    return s;
}

void *aios__skills_list_json(aios__skills *k) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddStringToObject(o, "router", AIOS__ROUTER_NAMES[k->router]);
    cJSON *d = cJSON_AddArrayToObject(o, "data");
    pthread_mutex_lock(&k->mu);
    for (int64_t i = 0; i < aios_skills_count(k->lib); i++) {
        const aios_skill *sk = aios_skills_at(k->lib, i);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", sk->name);
        cJSON_AddStringToObject(e, "object", "skill");
        if (sk->description)
            cJSON_AddStringToObject(e, "description", sk->description);
        else
            cJSON_AddNullToObject(e, "description");
        cJSON_AddStringToObject(e, "status", sk->status ? sk->status : "active");
        if (sk->reason)
            cJSON_AddStringToObject(e, "reason", sk->reason);
        else
            cJSON_AddNullToObject(e, "reason");
        if (sk->base_model)
            cJSON_AddStringToObject(e, "base_model", sk->base_model);
        else
            cJSON_AddNullToObject(e, "base_model");
        cJSON_AddStringToObject(e, "adapter", sk->adapter ? sk->adapter : "");
        cJSON_AddItemToArray(d, e);
    }
    pthread_mutex_unlock(&k->mu);
    return o;
}

void *aios__skills_ext(const aios__skill_plan *plan, const aios_gen_uncertainty *u, double threshold) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "router", AIOS__ROUTER_NAMES[plan->router]);
    cJSON *arr = cJSON_AddArrayToObject(o, "skills");
    for (int i = 0; i < plan->n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", plan->name[i]);
        cJSON_AddNumberToObject(e, "weight", plan->weight[i]);
        if (isnan(plan->score[i]))
            cJSON_AddNullToObject(e, "score");
        else
            cJSON_AddNumberToObject(e, "score", plan->score[i]);
        cJSON_AddItemToArray(arr, e);
    }
    if (u && u->n) {
        cJSON_AddNumberToObject(o, "uncertainty", u->score);
        cJSON_AddNumberToObject(o, "mean_entropy", u->mean_entropy);
        cJSON_AddNumberToObject(o, "mean_one_minus_p", u->mean_one_minus_p);
        cJSON_AddBoolToObject(o, "uncertain", u->score >= threshold);
    } else { /* no token generated (cancelled before the first) */
        cJSON_AddNullToObject(o, "uncertainty");
        cJSON_AddBoolToObject(o, "uncertain", 0);
    }
    cJSON_AddNumberToObject(o, "uncertainty_threshold", threshold);
    return o;
}

void aios__skills_names(const aios__skill_plan *plan, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < plan->n && len < n; i++) {
        int w = snprintf(buf + len, n - len, "%s%s", i ? "," : "", plan->name[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}
