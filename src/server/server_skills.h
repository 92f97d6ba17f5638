/*
 * server/server_skills.h — the skill library of `aios serve --skills LIB` (server_skills.c):
 * which skills answer one request (its "router" / "skills" fields or the server's --router
 * default), GET /v1/skills, and the response's "aios" extension field.  Internal.
 *
 * Routing is what `aios generate --skills LIB --router R` does (src/cli/cli_skills.c): the
 * prompt is embedded once with the library's encoder and aios_skills_route() picks the skills;
 * arrow takes every active skill (best scores first) at weight 1 and mixes them per token.
 * The plan holds copies (names, adapter paths), so it outlives the library's lock; the server
 * attaches the plan's adapters to the model under the model's lock (select_adapters, server.c).
 */
#ifndef AIOS_SERVER_SKILLS_H
#define AIOS_SERVER_SKILLS_H

#include "aios.h"
#include "server/server_req.h"

typedef struct aios__skills aios__skills;

typedef struct {
    int router; /* AIOS__ROUTER_*: what combines the adapters of this request */
    int n;      /* skills chosen (0: the base model, plus the request's adapters) */
    int forced; /* the request named them ("skills"): no scores */
    char name[AIOS_ROUTE_MAX][104];
    char path[AIOS_ROUTE_MAX][1024];
    double score[AIOS_ROUTE_MAX], weight[AIOS_ROUTE_MAX];
    int arrow_top_k;         /* arrow's per-token mix of this request ("router_top_k" /
                                "router_temperature"); 0 = the server's --router-top-k / */
    float arrow_temperature; /* --router-temperature */
} aios__skill_plan;

/* Opens p->skills_dir and its encoder (NULL dir: *out = NULL, AIOS_OK). */
aios_status aios__skills_open(const aios_server_params *p, aios__skills **out);
void aios__skills_close(aios__skills *k);
int aios__skills_default_router(const aios__skills *k);
double aios__skills_uncertainty_threshold(const aios__skills *k);

/* The plan of one request (k may be NULL: no library).  query: the text routed (the completion
 * prompt, the chat's last user message; NULL when the prompt is token ids).  On a client error
 * (unknown router use, unknown or rejected skill, routing without text) *param names the field
 * and *http is 400 or 404; other failures 500. */
aios_status aios__skills_plan_request(aios__skills *k, const aios__req *r, const char *query, aios__skill_plan *plan,
                                      const char **param, unsigned *http);

/* GET /v1/skills: {"object": "list", "router", "data": [{"id", "object": "skill", "description",
 * "status", "reason", "base_model", "adapter"}]} (cJSON *). */
void *aios__skills_list_json(aios__skills *k);

/* The response's "aios" field: {"router", "skills": [{"name", "weight", "score"}],
 * "uncertainty", "mean_entropy", "mean_one_minus_p", "uncertain", "uncertainty_threshold"}
 * (cJSON *; "queued" is added by the caller). */
void *aios__skills_ext(const aios__skill_plan *plan, const aios_gen_uncertainty *u, double threshold);

/* The plan's skill names, comma-separated ("" = none), into buf (the learning queue's "skills"). */
void aios__skills_names(const aios__skill_plan *plan, char *buf, size_t n);

#endif
