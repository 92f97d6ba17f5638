/*
 * cli_skills.h — the --skills / --router options of `aios generate` and `aios chat`
 * (cli_skills.c): parse them, open the library and its encoder, route each prompt and attach
 * the chosen skills' adapters at their weights, report which skills answered and how unsure
 * the answer was, and queue uncertain answers in the memory store.
 */
#ifndef AIOS_CLI_SKILLS_H
#define AIOS_CLI_SKILLS_H

#include <stdio.h>

#include "aios.h"

typedef enum {
    CLI_ROUTER_NONE = 0,
    CLI_ROUTER_SEMANTIC,
    CLI_ROUTER_ARROW,
    CLI_ROUTER_COMPOSE
} aios_cli_router_kind;

typedef struct {
    const char *lib_dir, *encoder_path, *learn_store, *config;
    aios_cli_router_kind router;
    int router_given;
    aios_router_params rp;
    int threshold_given, temperature_given;
    int arrow_top_k;         /* --router arrow: adapters per token (--router-top-k, default 2) */
    float arrow_temperature; /* --router arrow: --router-temperature when given, else 1 */
    double uncertainty_threshold;
    int encoder_bits; /* --router-encoder: 8 (default, int8) or 0 (f32: the weights as stored) */
    aios_skill_lib *lib;
    aios_encoder *enc;
    int attached[AIOS_ROUTE_MAX], n_attached;
    aios_route routes[AIOS_ROUTE_MAX];
    int n_routes;
} aios_cli_skills;

/* --skills, --router, --top-k, --router-temperature, --router-threshold (serve: without
 * --learn-store); AIOS_CLI_SKILLS_USAGE adds --learn-store and --config. */
#define AIOS_CLI_SKILLS_ROUTER_USAGE                                                                         \
    "  --skills LIB         skill library (aios skills add); each prompt is routed to its skills\n"          \
    "  --router R           with --skills: none (base model) | semantic (default: the top-k\n"               \
    "                       skills by meaning, at their weights) | arrow (every active skill,\n"             \
    "                       mixed per token and layer) | compose (the semantic choice, their\n"              \
    "                       next-token logits mixed by weight)\n"                                            \
    "  --top-k K            with --skills: skills kept per prompt (default 1; up to 16)\n"                   \
    "  --router-temperature T  softmax temperature of the skills' weights (default 0.1;\n"                   \
    "                       arrow: of the per-token coefficients, default 1)\n"                              \
    "  --router-threshold S cosine below which a skill is not used (default: config\n"                       \
    "                       evolution.router_threshold, 0.5)\n"                                              \
    "  --router-encoder int8|f32  the prompt's embedding: int8 (default: the library's encoder\n"            \
    "                       quantized at open, ~3x faster) or f32 (its weights as stored)\n"
extern const char *const AIOS_CLI_SKILLS_USAGE;
void aios_cli_skills_init(aios_cli_skills *k);
/* 0 = not one of these options, 1 = taken (with its value), -2 = usage error (printed). */
int aios_cli_skills_option(aios_cli_skills *k, const char *cmd, const char *a, const char *v);
/* After parsing: 2 on a usage error (printed), else 0.  Opens the library and the encoder. */
int aios_cli_skills_check(aios_cli_skills *k, const char *cmd);
aios_status aios_cli_skills_open(aios_cli_skills *k);
/* Embeds `query`, routes, detaches the previous turn's adapters and attaches the new ones. */
aios_status aios_cli_skills_apply(aios_cli_skills *k, aios_generator *g, const char *query);
/* "[skills: household 0.812 (weight 1.00)]" or "[skills: none (base model)]" */
void aios_cli_skills_report(const aios_cli_skills *k, FILE *f);
/* "[uncertainty 0.123 (mean entropy 0.05, mean 1-p 0.19): certain]" */
void aios_cli_skills_report_uncertainty(const aios_cli_skills *k, const aios_gen_uncertainty *u, FILE *f);
/* {"router","skills":[{"name","score","weight"}]} and {"score",...,"uncertain"} (cJSON *). */
void *aios_cli_skills_json(const aios_cli_skills *k);
void *aios_cli_uncertainty_json(const aios_cli_skills *k, const aios_gen_uncertainty *u);
/* Writes an uncertain answer to the learning queue of --learn-store (no-op without one or when
 * certain).  *queued = 1 when written. */
aios_status aios_cli_skills_queue(aios_cli_skills *k, const aios_gen_uncertainty *u, const char *question,
                                  const char *answer, const char *model, int *queued);
void aios_cli_skills_free(aios_cli_skills *k);
/* Opens (creating) a memory store for learning records; a store with no model yet records
 * `encoder` (NULL: refused). */
aios_status aios_cli_learn_store_open(const char *dir, const char *encoder, aios_store **out);

/* The text of skills used, comma-separated, into buf ("" = none). */
void aios_cli_skills_names(const aios_cli_skills *k, char *buf, size_t n);

#endif
