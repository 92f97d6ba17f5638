/*
 * cmd_skills.c — `aios skills add|list|show|remove|route`: the skill library (LIB/ with
 * index.parquet; src/skills/skills.c) from the command line.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_skills.h"
#include "core/internal.h"
#include "format/parquet.h"
#include "model/lora.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: aios skills add --skills LIB --adapter PATH --name NAME [--description TEXT]\n"
            "                       [--questions FILE.jsonl] [--model ENCODER]\n"
            "       aios skills list --skills LIB [--jsonl]\n"
            "       aios skills show --skills LIB --name NAME\n"
            "       aios skills remove --skills LIB --name NAME\n"
            "       aios skills route --skills LIB --prompt TEXT [--top-k K] [--router-temperature T]\n"
            "                         [--router-threshold S] [--jsonl]\n\n"
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
        while (*t == ' ' || *t == '\t' || *t == '\r') t++;
        if (!*t) continue;
        cJSON *j = cJSON_Parse(t);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "q");
        if (!q) q = cJSON_GetObjectItemCaseSensitive(j, "question");
        const cJSON *sk = cJSON_GetObjectItemCaseSensitive(j, "skill");
        if (!cJSON_IsString(q) || !*q->valuestring) {
            s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: expected a JSON object with a string \"q\"", path, (long long)line);
        } else {
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                char **nq = realloc(*qs, (size_t)cap * sizeof *nq);
                if (!nq) s = aios__err(AIOS_ERR_NOMEM, "skills");
                else *qs = nq;
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

aios_status aios_cli_skill_vectors(aios_encoder *enc, const char *desc, char *const *qs, int64_t n, float **demb,
                                   float **cent) {
    int32_t dim = (int32_t)aios_encoder_dim(enc);
    *demb = *cent = NULL;
    float *d = calloc((size_t)dim, sizeof *d), *c = n ? calloc((size_t)dim, sizeof *c) : NULL, *t = malloc((size_t)dim * sizeof *t);
    aios_status s = !d || !t || (n && !c) ? aios__err(AIOS_ERR_NOMEM, "skills") : AIOS_OK;
    if (!s && desc) s = aios_encode(enc, desc, strlen(desc), d);
    for (int64_t i = 0; !s && i < n; i++) {
        if ((s = aios_encode(enc, qs[i], strlen(qs[i]), t)) != AIOS_OK) break;
        double nn = 0;
        for (int32_t k = 0; k < dim; k++) nn += (double)t[k] * t[k];
        nn = nn > 0 ? 1 / sqrt(nn) : 0;
        for (int32_t k = 0; k < dim; k++) c[k] += (float)(t[k] * nn / (double)n);
    }
    free(t);
    if (s || !desc) free(d), d = NULL;
    if (s) free(c), c = NULL;
    *demb = d, *cent = c;
    return s;
}

static int path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Removes a skill's adapter files (a PEFT directory's two files and the directory, or a card). */
void aios_cli_skill_remove_files(const char *path) {
    if (is_dir(path)) {
        char f[8300];
        snprintf(f, sizeof f, "%s/adapter_config.json", path);
        unlink(f);
        snprintf(f, sizeof f, "%s/adapter_model.safetensors", path);
        unlink(f);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* A skill card's base model; refuses a Parquet file that is no card. */
static aios_status card_base_model(const char *path, char *base, size_t n) {
    aios_parquet_file *pf;
    AIOS_TRY(aios_parquet_open(path, &pf));
    const char *v = aios_pq_kv_get(pf, "aios.card.version"), *b = aios_pq_kv_get(pf, "aios.card.base_model");
    aios_status s = v ? AIOS_OK : aios__err(AIOS_ERR_FORMAT, "%s: not a skill card (no aios.card.version)", path);
    snprintf(base, n, "%s", b ? b : "");
    aios_parquet_close(pf);
    return s;
}

/* Copies a file (temporary + rename). */
static aios_status copy_file(const char *from, const char *to) {
    char *buf;
    size_t len;
    AIOS_TRY(aios__read_file(from, &buf, &len));
    char tmp[8500];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", to, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    aios_status s = f ? AIOS_OK : aios__err(AIOS_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (f && fwrite(buf, 1, len, f) != len) s = aios__err(AIOS_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (f && fclose(f) != 0 && !s) s = aios__err(AIOS_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (!s && rename(tmp, to) != 0) s = aios__err(AIOS_ERR_IO, "%s: %s", to, strerror(errno));
    if (s) unlink(tmp);
    free(buf);
    return s;
}

static aios_status open_encoder(aios_skill_lib *L, const char *model, aios_encoder **enc) {
    const char *e = model ? model : aios_skills_encoder(L);
    if (!*e) return aios__err(AIOS_ERR_INVALID_ARG, "%s: a new library needs --model ENCODER (its embedding model)", aios_skills_dir(L));
    AIOS_TRY(aios_encoder_open(e, NULL, enc));
    aios_status s = aios_skills_set_encoder(L, e, (int32_t)aios_encoder_dim(*enc));
    if (s) aios_encoder_free(*enc), *enc = NULL;
    return s;
}

static int cmd_add(opts *o) {
    if (!o->adapter || !o->name) return fail("add: --adapter and --name are required", NULL), 2;
    if (!aios_skills_name_ok(o->name)) return fail("add: --name: letters, digits, '-', '_', '.' (at most 100), got ", o->name), 2;
    aios_skill_lib *L = NULL;
    aios_encoder *enc = NULL;
    aios_lora *a = NULL;
    char **qs = NULL, *qdesc = NULL, rel[256], dst[8400];
    int64_t nq = 0;
    float *demb = NULL, *cent = NULL;
    int placed = 0;
    aios_status s = aios_skills_open(o->lib, 1, &L);
    if (!s && aios_skills_get(L, o->name)) s = aios__err(AIOS_ERR_EXISTS, "a skill named '%s' exists already", o->name);
    if (!s) s = open_encoder(L, o->model, &enc);
    if (!s && o->questions) s = read_questions(o->questions, &qs, &nq, &qdesc);
    int card = !is_dir(o->adapter);
    char base[512] = "";
    if (!s && card) s = card_base_model(o->adapter, base, sizeof base);
    if (!s && !card) s = aios_lora_load_peft(o->adapter, NULL, &a);
    if (!s) {
        snprintf(rel, sizeof rel, card ? "%s.parquet" : "%s", o->name);
        snprintf(dst, sizeof dst, "%s/%s", o->lib, rel);
        if (path_exists(dst)) s = aios__err(AIOS_ERR_EXISTS, "%s exists already", dst);
        else if (card) s = copy_file(o->adapter, dst);
        else s = aios_lora_save_peft(a, dst);
        placed = !s;
    }
    if (a) snprintf(base, sizeof base, "%s", a->base_model);
    const char *desc = o->description ? o->description : qdesc ? qdesc : o->name;
    if (!s) s = aios_cli_skill_vectors(enc, desc, qs, nq, &demb, &cent);
    if (!s) {
        aios_skill k = {0};
        k.name = (char *)o->name;
        k.description = (char *)desc;
        k.description_embedding = demb;
        k.centroid = cent;
        k.adapter = rel;
        k.base_model = base[0] ? base : NULL;
        k.n_pairs = nq;
        k.lr = NAN, k.loss_before = k.loss_after = k.ppl_before = k.ppl_after = NAN;
        s = aios_skills_add(L, &k);
    }
    if (s && placed) aios_cli_skill_remove_files(dst);
    if (!s) printf("added skill %s (%lld questions) to %s\n", o->name, (long long)nq, o->lib);
    for (int64_t i = 0; i < nq; i++) free(qs[i]);
    free(qs), free(qdesc), free(demb), free(cent);
    aios_lora_free(a);
    aios_encoder_free(enc);
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
    if (vectors && k->centroid) cJSON_AddItemToObject(o, "centroid", cJSON_CreateFloatArray(k->centroid, dim));
    return o;
}

static void print_json(cJSON *j) {
    char *t = cJSON_PrintUnformatted(j);
    if (t) puts(t);
    free(t);
    cJSON_Delete(j);
}

static void fmt_num(char *b, size_t n, double x) {
    if (isnan(x)) snprintf(b, n, "-");
    else snprintf(b, n, "%.4g", x);
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
            fmt_num(pb, sizeof pb, k->ppl_before), fmt_num(pa, sizeof pa, k->ppl_after), fmt_num(lr, sizeof lr, k->lr);
            printf("name:         %s\ndescription:  %s\nstatus:       %s%s%s\nadapter:      %s/%s\nbase model:   %s\n"
                   "training:     %lld pairs, %lld steps, lr %s\nheld-out loss: %s -> %s\nregression ppl: %s -> %s\n"
                   "centroid:     %s\nencoder:      %s (%d)\n",
                   k->name, k->description ? k->description : "", k->status, k->reason ? " — " : "", k->reason ? k->reason : "",
                   o->lib, k->adapter ? k->adapter : "", k->base_model ? k->base_model : "?", (long long)k->n_pairs,
                   (long long)k->steps, lr, lb, la, pb, pa, k->centroid ? "yes" : "no (description only)",
                   aios_skills_encoder(L), aios_skills_dim(L));
        }
    } else {
        for (int64_t i = 0; i < aios_skills_count(L); i++) {
            const aios_skill *k = aios_skills_at(L, i);
            if (o->jsonl) {
                print_json(skill_json(k, 0, aios_skills_dim(L)));
            } else {
                char lb[32], la[32];
                fmt_num(lb, sizeof lb, k->loss_before), fmt_num(la, sizeof la, k->loss_after);
                printf("%-20s %-8s %4lld pairs  loss %s -> %s  %s\n", k->name, k->status, (long long)k->n_pairs, lb, la,
                       k->description ? k->description : "");
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
    const aios_skill *k = aios_skills_get(L, o->name);
    char path[8400] = "";
    if (k && k->adapter && k->adapter[0] != '/') aios_skills_adapter_path(L, k, path, sizeof path);
    s = aios_skills_remove(L, o->name);
    if (!s && path[0]) aios_cli_skill_remove_files(path);
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
    if (!s && !(q = malloc((size_t)aios_skills_dim(o->rk.lib) * sizeof *q))) s = aios__err(AIOS_ERR_NOMEM, "skills");
    if (!s) s = aios_encode(o->rk.enc, o->prompt, strlen(o->prompt), q);
    if (!s) s = aios_skills_route(o->rk.lib, q, aios_skills_dim(o->rk.lib), &o->rk.rp, o->rk.routes, &o->rk.n_routes);
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
                printf("%-20s score %.4f  weight %.4f\n", aios_skills_at(o->rk.lib, o->rk.routes[i].index)->name,
                       o->rk.routes[i].score, o->rk.routes[i].weight);
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
        const char **dst = !strcmp(a, "--skills") ? &o.lib : !strcmp(a, "--adapter") ? &o.adapter : !strcmp(a, "--name") ? &o.name
                         : !strcmp(a, "--description") ? &o.description : !strcmp(a, "--questions") ? &o.questions
                         : !strcmp(a, "--model") ? &o.model : !strcmp(a, "--prompt") ? &o.prompt : NULL;
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
