/*
 * cmd_skills.c — `aios skills add|list|show|remove|route`: the skill library (LIB/ with
 * index.parquet; src/skills/skills.c) from the command line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_skills.h"
#include "core/internal.h"
#include "format/parquet.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: aios skills add --skills LIB --adapter PATH --name NAME [--description TEXT]\n"
            "                       [--questions FILE.jsonl] [--model ENCODER]\n"
            "       aios skills list --skills LIB [--jsonl]\n"
            "       aios skills show --skills LIB --name NAME\n"
            "       aios skills remove --skills LIB --name NAME\n"
            "       aios skills route --skills LIB --prompt TEXT [--top-k K] [--router-temperature T]\n"
            "                         [--router-threshold S] [--router-encoder int8|f32] [--jsonl]\n\n"
            "A skill library is a directory of LoRA adapters with an index (LIB/index.parquet, one\n"
            "row per skill: description and its embedding, the centroid of the training questions,\n"
            "adapter, base model, training facts, held-out loss before/after, status).  add copies\n"
            "the adapter (PEFT directory or skill card .parquet) into LIB/NAME; the questions\n"
            "(JSONL lines with \"q\"; a \"skill\" field is the default description) give the centroid\n"
            "the semantic router compares prompts with.  route prints the chosen skills, their\n"
            "cosine scores and weights (softmax(score / T) over the top-k at or above the threshold).\n\n"
            "  --skills LIB         the library directory (created by the first add)\n"
            "  --model ENCODER      embedding model (the first add records it; default: the recorded one)\n"
            "  --top-k K            skills kept (default 1)\n"
            "  --router-temperature T   weight temperature (default 0.1)\n"
            "  --router-threshold S minimum cosine (default: config evolution.router_threshold, 0.5)\n"
            "  --router-encoder E   int8 (default: the encoder quantized at open) or f32 (as stored)\n"
            "  --config FILE        configuration file\n"
            "  --jsonl              one JSON object per skill (list) or for the route\n");
}

typedef struct {
    const char *lib, *adapter, *name, *description, *questions, *model, *prompt;
    int jsonl;
    aios_cli_skills rk;
} opts;

static int fail(const char *msg1, const char *msg2) {
    fprintf(stderr, "aios: skills: %s%s\n", msg1, msg2 ? msg2 : "");
    return 1;
}

/* Questions of a JSONL file ("q" or "question" per line); *desc gets the first "skill" field. */
static aios_status read_questions(const char *path, char ***qs, int64_t *n, char **desc) {
    *qs = NULL, *n = 0, *desc = NULL;
    char *text;
    size_t len;
    AIOS_TRY(aios__read_file(path, &text, &len));
    aios_status s = AIOS_OK;
    int64_t cap = 0, line = 0;
    for (char *p = text, *e; !s && p < text + len; p = e + 1) {
        e = memchr(p, '\n', (size_t)(text + len - p));
        if (!e) e = text + len;
        *e = 0;
        line++;
        char *t = p;
        while (*t == ' ' || *t == '\t' || *t == '\r')
            t++;
        if (!*t) continue;
        cJSON *j = cJSON_Parse(t);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "q");
        if (!q) q = cJSON_GetObjectItemCaseSensitive(j, "question");
        const cJSON *sk = cJSON_GetObjectItemCaseSensitive(j, "skill");
        if (!cJSON_IsString(q) || !*q->valuestring) {
            s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: expected a JSON object with a string \"q\"", path,
                          (long long)line);
        } else {
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                char **nq = realloc(*qs, (size_t)cap * sizeof *nq);
                if (!nq)
                    s = aios__err(AIOS_ERR_NOMEM, "skills");
                else
                    *qs = nq;
            }
            if (!s && !((*qs)[*n] = strdup(q->valuestring))) s = aios__err(AIOS_ERR_NOMEM, "skills");
            if (!s) (*n)++;
            if (!s && !*desc && cJSON_IsString(sk) && *sk->valuestring) *desc = strdup(sk->valuestring);
        }
        cJSON_Delete(j);
        if (e == text + len) break;
    }
    free(text);
    if (!s && !*n) s = aios__err(AIOS_ERR_FORMAT, "%s: no questions", path);
    return s;
}

static int cmd_add(opts *o) {
    if (!o->adapter || !o->name) return fail("add: --adapter and --name are required", NULL), 2;
    if (!aios_skills_name_ok(o->name))
        return fail("add: --name: letters, digits, '-', '_', '.' (at most 100), got ", o->name), 2;
    aios_skill_lib *L = NULL;
    char **qs = NULL, *qdesc = NULL;
    int64_t nq = 0;
    aios_status s = aios_skills_open(o->lib, 1, &L);
    if (!s && !o->model && !*aios_skills_encoder(L))
        s = aios__err(AIOS_ERR_INVALID_ARG, "%s: a new library needs --model ENCODER (its embedding model)",
                      o->lib);
    if (!s && o->questions) s = read_questions(o->questions, &qs, &nq, &qdesc);
    const char *desc = o->description ? o->description : qdesc;
    if (!s) s = aios_skills_add_adapter(L, o->model, o->adapter, o->name, desc, (const char *const *)qs, nq);
    if (!s) printf("added skill %s (%lld questions) to %s\n", o->name, (long long)nq, o->lib);
    for (int64_t i = 0; i < nq; i++)
        free(qs[i]);
    free(qs), free(qdesc);
    aios_skills_close(L);
    return s ? aios_cli_fail("skills", s) : 0;
}

static cJSON *skill_json(const aios_skill *k, int vectors, int32_t dim) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", k->name);
    if (k->description) cJSON_AddStringToObject(o, "description", k->description);
    cJSON_AddStringToObject(o, "status", k->status);
    if (k->reason) cJSON_AddStringToObject(o, "reason", k->reason);
    if (k->adapter) cJSON_AddStringToObject(o, "adapter", k->adapter);
    if (k->base_model) cJSON_AddStringToObject(o, "base_model", k->base_model);
    cJSON_AddNumberToObject(o, "n_pairs", (double)k->n_pairs);
    cJSON_AddNumberToObject(o, "steps", (double)k->steps);
    const double f[] = {k->lr, k->loss_before, k->loss_after, k->ppl_before, k->ppl_after};
    const char *fn[] = {"lr", "loss_before", "loss_after", "ppl_before", "ppl_after"};
    for (int i = 0; i < 5; i++)
        if (!isnan(f[i])) cJSON_AddNumberToObject(o, fn[i], f[i]);
    cJSON_AddNumberToObject(o, "created_us", (double)k->created_us);
    cJSON_AddBoolToObject(o, "has_centroid", k->centroid != NULL);
    if (vectors && k->centroid)
        cJSON_AddItemToObject(o, "centroid", cJSON_CreateFloatArray(k->centroid, dim));
    return o;
}

static void print_json(cJSON *j) {
    char *t = cJSON_PrintUnformatted(j);
    if (t) puts(t);
    free(t);
    cJSON_Delete(j);
}

static void fmt_num(char *b, size_t n, double x) {
    if (isnan(x))
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.4g", x);
}

/* The LoRA settings a skill card stores (nothing for a PEFT directory: its adapter_config.json
 * says them); lora_dropout "-" for a card written before the card kept it. */
static void print_card(const char *lib, const char *adapter) {
    if (!adapter) return;
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", lib, adapter);
    aios_parquet_file *pf = NULL;
    if (aios_parquet_open(p, &pf) != AIOS_OK) return;
    const char *al = aios_pq_kv_get(pf, "aios.card.alpha"), *tg = aios_pq_kv_get(pf, "aios.card.targets");
    const char *rs = aios_pq_kv_get(pf, "aios.card.rslora"),
               *dr = aios_pq_kv_get(pf, "aios.card.lora_dropout");
    printf("lora:         alpha %s%s, targets %s, lora_dropout %s\n", al ? al : "?",
           rs && !strcmp(rs, "1") ? " (rslora)" : "", tg ? tg : "?", dr ? dr : "-");
    aios_parquet_close(pf);
}

static int cmd_list_show(opts *o, int show) {
    if (show && !o->name) return fail("show: --name is required", NULL), 2;
    aios_skill_lib *L;
    aios_status s = aios_skills_open(o->lib, 0, &L);
    if (s) return aios_cli_fail("skills", s);
    int rc = 0;
    if (show) {
        const aios_skill *k = aios_skills_get(L, o->name);
        if (!k) {
            fprintf(stderr, "aios: skills: show: no skill named '%s' in %s\n", o->name, o->lib);
            rc = 1;
        } else {
            char lb[32], la[32], pb[32], pa[32], lr[32];
            fmt_num(lb, sizeof lb, k->loss_before), fmt_num(la, sizeof la, k->loss_after);
            fmt_num(pb, sizeof pb, k->ppl_before), fmt_num(pa, sizeof pa, k->ppl_after),
                fmt_num(lr, sizeof lr, k->lr);
            printf("name:         %s\ndescription:  %s\nstatus:       %s%s%s\nadapter:      %s/%s\nbase "
                   "model:   %s\n"
                   "training:     %lld pairs, %lld steps, lr %s\nheld-out loss: %s -> %s\nregression ppl: %s "
                   "-> %s\n"
                   "centroid:     %s\nencoder:      %s (%d)\n",
                   k->name, k->description ? k->description : "", k->status, k->reason ? " — " : "",
                   k->reason ? k->reason : "", o->lib, k->adapter ? k->adapter : "",
                   k->base_model ? k->base_model : "?", (long long)k->n_pairs, (long long)k->steps, lr, lb,
                   la, pb, pa, k->centroid ? "yes" : "no (description only)", aios_skills_encoder(L),
                   aios_skills_dim(L));
            print_card(o->lib, k->adapter);
        }
    } else {
        for (int64_t i = 0; i < aios_skills_count(L); i++) {
            const aios_skill *k = aios_skills_at(L, i);
            if (o->jsonl) {
                print_json(skill_json(k, 0, aios_skills_dim(L)));
            } else {
                char lb[32], la[32];
                fmt_num(lb, sizeof lb, k->loss_before), fmt_num(la, sizeof la, k->loss_after);
                printf("%-20s %-8s %4lld pairs  loss %s -> %s  %s\n", k->name, k->status,
                       (long long)k->n_pairs, lb, la, k->description ? k->description : "");
            }
        }
        if (!o->jsonl && !aios_skills_count(L)) printf("(no skills in %s)\n", o->lib);
    }
    aios_skills_close(L);
    return rc;
}

static int cmd_remove(opts *o) {
    if (!o->name) return fail("remove: --name is required", NULL), 2;
    aios_skill_lib *L;
    aios_status s = aios_skills_open(o->lib, 0, &L);
    if (s) return aios_cli_fail("skills", s);
    s = aios_skills_delete(L, o->name);
    if (!s) printf("removed skill %s\n", o->name);
    aios_skills_close(L);
    return s ? aios_cli_fail("skills", s) : 0;
}

static int cmd_route(opts *o) {
    if (!o->prompt) return fail("route: --prompt is required", NULL), 2;
    o->rk.lib_dir = o->lib;
    o->rk.router = CLI_ROUTER_SEMANTIC;
    o->rk.router_given = 1;
    if (aios_cli_skills_check(&o->rk, "skills")) return 2;
    aios_status s = aios_cli_skills_open(&o->rk);
    float *q = NULL;
    if (!s && !(q = malloc((size_t)aios_skills_dim(o->rk.lib) * sizeof *q)))
        s = aios__err(AIOS_ERR_NOMEM, "skills");
    if (!s) s = aios_encode(o->rk.enc, o->prompt, strlen(o->prompt), q);
    if (!s)
        s = aios_skills_route(o->rk.lib, q, aios_skills_dim(o->rk.lib), &o->rk.rp, o->rk.routes,
                              &o->rk.n_routes);
    free(q);
    if (!s) {
        if (o->jsonl) {
            cJSON *j = aios_cli_skills_json(&o->rk);
            cJSON_AddStringToObject(j, "prompt", o->prompt);
            cJSON_AddNumberToObject(j, "threshold", o->rk.rp.threshold);
            print_json(j);
        } else if (!o->rk.n_routes) {
            printf("none (no skill at or above %.3g: the base model alone)\n", o->rk.rp.threshold);
        } else {
            for (int i = 0; i < o->rk.n_routes; i++)
                printf("%-20s score %.4f  weight %.4f\n",
                       aios_skills_at(o->rk.lib, o->rk.routes[i].index)->name, o->rk.routes[i].score,
                       o->rk.routes[i].weight);
        }
    }
    aios_cli_skills_free(&o->rk);
    return s ? aios_cli_fail("skills", s) : 0;
}

int aios_cmd_skills(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    opts o;
    memset(&o, 0, sizeof o);
    aios_cli_skills_init(&o.rk);
    o.rk.lib_dir = "-"; /* so --top-k is taken as the router's */
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = aios_cli_skills_option(&o.rk, "skills", a, v);
        if (r < 0) return 2;
        if (r > 0 && strcmp(a, "--skills")) {
            i++;
            continue;
        }
        if (!strcmp(a, "--jsonl")) {
            o.jsonl = 1;
            continue;
        }
        const char **dst = !strcmp(a, "--skills")        ? &o.lib
                           : !strcmp(a, "--adapter")     ? &o.adapter
                           : !strcmp(a, "--name")        ? &o.name
                           : !strcmp(a, "--description") ? &o.description
                           : !strcmp(a, "--questions")   ? &o.questions
                           : !strcmp(a, "--model")       ? &o.model
                           : !strcmp(a, "--prompt")      ? &o.prompt
                                                         : NULL;
        if (!dst) {
            fprintf(stderr, "aios: skills: unknown option '%s' (see 'aios skills --help')\n", a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "aios: skills: %s: needs a value\n", a);
            return 2;
        }
        *dst = v;
        i++;
    }
    if (!o.lib) return fail("--skills LIB is required", NULL), 2;
    if (!strcmp(sub, "add")) return cmd_add(&o);
    if (!strcmp(sub, "list")) return cmd_list_show(&o, 0);
    if (!strcmp(sub, "show")) return cmd_list_show(&o, 1);
    if (!strcmp(sub, "remove")) return cmd_remove(&o);
    if (!strcmp(sub, "route")) return cmd_route(&o);
    fprintf(stderr, "aios: skills: unknown subcommand '%s' (add, list, show, remove, route)\n", sub);
    return 2;
}
