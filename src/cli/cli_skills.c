/*
 * cli_skills.c — --skills / --router / --top-k / --router-temperature / --router-threshold and
 * --learn-store on `aios generate` and `aios chat` (see cli_skills.h).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_skills.h"
#include "core/internal.h"

const char *const AIOS_CLI_SKILLS_USAGE = AIOS_CLI_SKILLS_ROUTER_USAGE
    "  --learn-store DIR    memory store whose learning queue receives uncertain answers\n"
    "                       (score >= evolution.uncertainty_threshold, default 0.7)\n"
    "  --config FILE        configuration file (evolution.*)\n";

void aios_cli_skills_init(aios_cli_skills *k) {
    memset(k, 0, sizeof *k);
    k->rp = aios_router_default_params();
    k->uncertainty_threshold = 0.7;
    k->arrow_top_k = 2;
    k->arrow_temperature = 1.0f;
    k->encoder_bits = 8;
}

/* One place for the router names: arrow and compose come from the per-token router. */
static int parse_router(const char *cmd, const char *v, aios_cli_router_kind *out) {
    static const char *const NAMES[] = {"none", "semantic", "arrow", "compose"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(v, NAMES[i])) {
            *out = (aios_cli_router_kind)i;
            return 1;
        }
    fprintf(stderr, "aios: %s: --router: expected none, semantic, arrow or compose, got '%s'\n", cmd, v);
    return 0;
}

int aios_cli_skills_option(aios_cli_skills *k, const char *cmd, const char *a, const char *v) {
    int known = !strcmp(a, "--skills") || !strcmp(a, "--router") || !strcmp(a, "--router-temperature") ||
                !strcmp(a, "--router-threshold") || !strcmp(a, "--learn-store") || !strcmp(a, "--config") ||
                !strcmp(a, "--router-encoder") || (!strcmp(a, "--top-k") && k->lib_dir);
    if (!known) return 0;
    if (!v) {
        fprintf(stderr, "aios: %s: %s: needs a value\n", cmd, a);
        return -2;
    }
    double x;
    long long n;
    if (!strcmp(a, "--skills")) {
        k->lib_dir = v;
    } else if (!strcmp(a, "--router")) {
        if (!parse_router(cmd, v, &k->router)) return -2;
        k->router_given = 1;
    } else if (!strcmp(a, "--top-k")) {
        if (!aios_cli_int(cmd, a, v, 1, AIOS_ROUTE_MAX, &n)) return -2;
        k->rp.top_k = (int)n;
    } else if (!strcmp(a, "--router-temperature")) {
        if (!aios_cli_float(cmd, a, v, 1e-6, 1e6, &x)) return -2;
        k->rp.temperature = x;
        k->temperature_given = 1;
    } else if (!strcmp(a, "--router-threshold")) {
        if (!aios_cli_float(cmd, a, v, -1, 1, &x)) return -2;
        k->rp.threshold = x;
        k->threshold_given = 1;
    } else if (!strcmp(a, "--router-encoder")) {
        if (strcmp(v, "int8") && strcmp(v, "f32")) {
            fprintf(stderr, "aios: %s: --router-encoder: expected int8 or f32, got '%s'\n", cmd, v);
            return -2;
        }
        k->encoder_bits = !strcmp(v, "int8") ? 8 : 0;
    } else if (!strcmp(a, "--learn-store")) {
        k->learn_store = v;
    } else {
        k->config = v;
    }
    return 1;
}

int aios_cli_skills_check(aios_cli_skills *k, const char *cmd) {
    if (!k->router_given) k->router = k->lib_dir ? CLI_ROUTER_SEMANTIC : CLI_ROUTER_NONE;
    if (k->router != CLI_ROUTER_NONE && !k->lib_dir) {
        fprintf(stderr, "aios: %s: --router needs --skills LIB\n", cmd);
        return 2;
    }
    aios_config cfg;
    if (aios_config_load(&cfg, k->config) != AIOS_OK) {
        fprintf(stderr, "aios: %s: %s\n", cmd, aios_last_error());
        return 2;
    }
    k->uncertainty_threshold = cfg.evolution.uncertainty_threshold;
    if (!k->threshold_given) k->rp.threshold = cfg.evolution.router_threshold;
    if (k->temperature_given) k->arrow_temperature = (float)k->rp.temperature;
    return 0;
}

aios_status aios_cli_skills_open(aios_cli_skills *k) {
    if (!k->lib_dir || k->router == CLI_ROUTER_NONE) return AIOS_OK;
    aios_status s = aios_skills_open(k->lib_dir, 0, &k->lib);
    if (s) return s;
    const char *e = aios_skills_encoder(k->lib);
    if (!*e)
        return aios__err(AIOS_ERR_NOT_FOUND, "skills %s: the library has no skill (no encoder recorded)",
                         k->lib_dir);
    aios_encoder_params ep = aios_encoder_default_params();
    ep.quantize_bits = k->encoder_bits; /* int8 by default: one embedding per prompt, ~3x faster */
    if ((s = aios_encoder_open(e, &ep, &k->enc)) != AIOS_OK) return aios__err_prefix(s, "skills encoder");
    if (aios_encoder_dim(k->enc) != aios_skills_dim(k->lib))
        return aios__err(AIOS_ERR_SHAPE, "skills %s: vectors of %d floats, the encoder %s gives %lld",
                         k->lib_dir, aios_skills_dim(k->lib), e, (long long)aios_encoder_dim(k->enc));
    return AIOS_OK;
}

aios_status aios_cli_skills_apply(aios_cli_skills *k, aios_generator *g, const char *query) {
    for (int i = 0; i < k->n_attached; i++)
        aios_generator_adapter_remove(g, k->attached[i]);
    k->n_attached = k->n_routes = 0;
    if (!k->lib) return AIOS_OK;
    int32_t dim = aios_skills_dim(k->lib);
    float *q = malloc((size_t)dim * sizeof *q);
    if (!q) return aios__err(AIOS_ERR_NOMEM, "skills: out of memory");
    /* arrow routes per token among every active skill (up to AIOS_ROUTE_MAX, best scores
     * first: the scores are reported); semantic and compose keep the router's choice */
    aios_router_params rp = k->rp;
    if (k->router == CLI_ROUTER_ARROW) rp.top_k = AIOS_ROUTE_MAX, rp.threshold = -1;
    aios_status s = aios_encode(k->enc, query, strlen(query), q);
    if (!s) s = aios_skills_route(k->lib, q, dim, &rp, k->routes, &k->n_routes);
    free(q);
    for (int i = 0; !s && i < k->n_routes; i++) {
        char path[8192];
        const aios_skill *sk = aios_skills_at(k->lib, k->routes[i].index);
        if (k->router == CLI_ROUTER_ARROW) k->routes[i].weight = 1; /* the per-token router weighs */
        if ((s = aios_skills_adapter_path(k->lib, sk, path, sizeof path)) != AIOS_OK) break;
        s = aios_generator_adapter_add(g, path, (float)k->routes[i].weight, &k->attached[k->n_attached]);
        if (!s) k->n_attached++;
    }
    aios_router r = AIOS_ROUTER_NONE;
    if (k->n_attached && k->router == CLI_ROUTER_ARROW) r = AIOS_ROUTER_ARROW;
    if (k->n_attached && k->router == CLI_ROUTER_COMPOSE) r = AIOS_ROUTER_COMPOSE;
    if (!s) s = aios_generator_set_router(g, r, k->arrow_top_k, k->arrow_temperature);
    return s;
}

void aios_cli_skills_names(const aios_cli_skills *k, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < k->n_routes && len < n; i++) {
        int w = snprintf(buf + len, n - len, "%s%s", i ? "," : "",
                         aios_skills_at(k->lib, k->routes[i].index)->name);
        if (w < 0) break;
        len += (size_t)w;
    }
}

void aios_cli_skills_report(const aios_cli_skills *k, FILE *f) {
    if (!k->lib) return;
    if (!k->n_routes) {
        fprintf(f, "[skills: none above %.3g (base model)]\n", k->rp.threshold);
        return;
    }
    fprintf(f, "[skills:");
    for (int i = 0; i < k->n_routes; i++)
        fprintf(f, " %s %.3f (weight %.2f)%s", aios_skills_at(k->lib, k->routes[i].index)->name,
                k->routes[i].score, k->routes[i].weight, i + 1 < k->n_routes ? "," : "");
    fprintf(f, "]\n");
}

void aios_cli_skills_report_uncertainty(const aios_cli_skills *k, const aios_gen_uncertainty *u, FILE *f) {
    fprintf(f, "[uncertainty %.3f (mean entropy %.3f, mean 1-p %.3f over %zu tokens): %s]\n", u->score,
            u->mean_entropy, u->mean_one_minus_p, u->n,
            u->score >= k->uncertainty_threshold ? "uncertain" : "certain");
}

void *aios_cli_skills_json(const aios_cli_skills *k) {
    cJSON *o = cJSON_CreateObject();
    static const char *const NAMES[] = {"none", "semantic", "arrow", "compose"};
    cJSON_AddStringToObject(o, "router", NAMES[k->router]);
    cJSON *arr = cJSON_AddArrayToObject(o, "skills");
    for (int i = 0; k->lib && i < k->n_routes; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", aios_skills_at(k->lib, k->routes[i].index)->name);
        cJSON_AddNumberToObject(e, "score", k->routes[i].score);
        cJSON_AddNumberToObject(e, "weight", k->routes[i].weight);
        cJSON_AddItemToArray(arr, e);
    }
    return o;
}

void *aios_cli_uncertainty_json(const aios_cli_skills *k, const aios_gen_uncertainty *u) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "score", u->score);
    cJSON_AddNumberToObject(o, "mean_entropy", u->mean_entropy);
    cJSON_AddNumberToObject(o, "mean_one_minus_p", u->mean_one_minus_p);
    cJSON_AddNumberToObject(o, "max_one_minus_p", u->max_one_minus_p);
    cJSON_AddNumberToObject(o, "threshold", k->uncertainty_threshold);
    cJSON_AddBoolToObject(o, "uncertain", u->score >= k->uncertainty_threshold);
    cJSON *h = cJSON_AddArrayToObject(o, "entropy"), *p = cJSON_AddArrayToObject(o, "p_top1");
    for (size_t i = 0; i < u->n; i++) {
        cJSON_AddItemToArray(h, cJSON_CreateNumber(u->entropy[i]));
        cJSON_AddItemToArray(p, cJSON_CreateNumber(u->p_top1[i]));
    }
    return o;
}

aios_status aios_cli_skills_queue(aios_cli_skills *k, const aios_gen_uncertainty *u, const char *question,
                                  const char *answer, const char *model, int *queued) {
    *queued = 0;
    if (!k->learn_store || u->score < k->uncertainty_threshold) return AIOS_OK;
    aios_store *st = NULL;
    const char *encp = k->lib ? aios_skills_encoder(k->lib) : "";
    aios_status s = aios_cli_learn_store_open(k->learn_store, *encp ? encp : NULL, &st);
    if (s) return s;
    encp = aios_store_model(st);
    /* the store's vectors are the model's as stored: the router's int8 copy is for routing only */
    aios_encoder *enc = k->encoder_bits ? NULL : k->enc;
    if (!enc && (s = aios_encoder_open(encp, NULL, &enc)) != AIOS_OK) {
        aios_store_close(st);
        return s;
    }
    char names[2048];
    aios_cli_skills_names(k, names, sizeof names);
    aios_learn_item it = {question, answer, 0, u->score, names, model};
    s = aios_learn_record(st, enc, &it, NULL);
    if (enc != k->enc) aios_encoder_free(enc);
    aios_store_close(st);
    if (!s) *queued = 1;
    return s;
}

void aios_cli_skills_free(aios_cli_skills *k) {
    aios_encoder_free(k->enc);
    aios_skills_close(k->lib);
    k->enc = NULL;
    k->lib = NULL;
}

aios_status aios_cli_learn_store_open(const char *dir, const char *encoder, aios_store **out) {
    aios_store_params sp = aios_store_default_params();
    sp.create = 1;
    aios_status s = aios_store_open(dir, &sp, out);
    if (s) return aios__err_prefix(s, "learning store %s", dir);
    if (*aios_store_model(*out)) return AIOS_OK;
    aios_store_close(*out);
    *out = NULL;
    if (!encoder)
        return aios__err(AIOS_ERR_NOT_FOUND,
                         "learning store %s records no embedding model; give one (--model)", dir);
    sp.model = encoder;
    if ((s = aios_store_open(dir, &sp, out)) != AIOS_OK) return aios__err_prefix(s, "learning store %s", dir);
    return AIOS_OK;
}
