/*
 * cmd_evolve.c — `aios teach` (approved question / answer pairs into a memory store) and
 * `aios evolve` (the learning half of the evolution loop: approved pairs -> topic groups ->
 * one LoRA skill per group -> a gate -> the skill library).
 *
 * evolve is aios_evolve of the library (src/skills/evolve.c); step by step (docs/evolution.md,
 * "The loop"):
 *  1. the store's "approved" records (never its "learning_queue": those answers are the
 *     model's own); each carries its question's embedding
 *  2. groups by topic: average-linkage clustering of the question embeddings, merging while
 *     the mean cosine between two groups is >= --group-threshold (0.3); a group needs at
 *     least 3 pairs (smaller ones wait for more)
 *  3. per group: the last third (in teaching order, at least 1) is held out; a skill is trained
 *     on the rest (aios_train, --steps / --lr / --rank / --target) and the held-out loss of the
 *     base model and of the skill is measured and recorded (a gate only with
 *     --require-heldout: independent facts do not predict each other, so it rises for good
 *     skills too — docs/evolution.md); the skill is extended on all the group's pairs
 *     (--extend-steps, starting from it) and must reproduce every taught answer greedily (a
 *     contradictory group cannot: one question, two answers), and the regression set (general
 *     prompts with the base model's own greedy answers), scored through the routed library (the
 *     prompts the router would send to the skill with it, the rest with the base model), must
 *     keep its perplexity within --max-ppl-increase (2%) of the base model's
 *  4. kept: added to the library as active, with a description from its questions, routable at
 *     once; rejected: recorded as rejected with the figures and the reason.  Either way the
 *     group's records become "learned" (source skill:<name>) so they are not trained again.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_skills.h"
#include "core/internal.h"

/* ---------------------------------------------------------------------------------------- */

static void usage_teach(FILE *f) {
    fprintf(f,
            "usage: aios teach --store DIR (--question Q --answer A | --file PAIRS.jsonl) [--model ENCODER]\n\n"
            "Records approved question / answer pairs in the memory store (category \"approved\",\n"
            "embedded by the store's encoder): what `aios evolve` trains skills on.  PAIRS.jsonl\n"
            "holds one {\"q\": ..., \"a\": ...} per line (\"question\" / \"answer\" also accepted).\n\n"
            "  --store DIR          memory store (created when missing)\n"
            "  --model ENCODER      embedding model of a new store (default: the one it records)\n");
}

static aios_status teach_one(aios_store *st, aios_encoder *enc, const char *q, const char *a) {
    aios_learn_item it = {q, a, 1, 0, NULL, NULL};
    char id[AIOS_MEMORY_ID_MAX];
    AIOS_TRY(aios_learn_record(st, enc, &it, id));
    printf("%s\t%s\n", id, q);
    return AIOS_OK;
}

int aios_cmd_teach(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage_teach(stdout);
        return 0;
    }
    const char *store = NULL, *q = NULL, *a = NULL, *file = NULL, *model = NULL;
    for (int i = 1; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--store") ? &store : !strcmp(argv[i], "--question") ? &q
                         : !strcmp(argv[i], "--answer") ? &a : !strcmp(argv[i], "--file") ? &file
                         : !strcmp(argv[i], "--model") ? &model : NULL;
        if (!dst) {
            fprintf(stderr, "aios: teach: unknown option '%s' (see 'aios teach --help')\n", argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "aios: teach: %s: needs a value\n", argv[i]);
            return 2;
        }
        *dst = argv[++i];
    }
    if (!store || (!file && (!q || !a)) || (file && (q || a))) {
        fprintf(stderr, "aios: teach: give --store and either --question and --answer, or --file\n");
        return 2;
    }
    aios_store *st = NULL;
    aios_encoder *enc = NULL;
    aios_status s = aios_cli_learn_store_open(store, model, &st);
    if (!s) s = aios_encoder_open(model ? model : aios_store_model(st), NULL, &enc);
    if (!s && !file) s = teach_one(st, enc, q, a);
    if (!s && file) {
        char *text = NULL;
        size_t len = 0;
        s = aios__read_file(file, &text, &len);
        int64_t line = 0;
        for (char *p = text, *e; !s && text && p < text + len; p = e + 1) {
            e = memchr(p, '\n', (size_t)(text + len - p));
            if (!e) e = text + len;
            *e = 0;
            line++;
            char *t = p;
            while (isspace((unsigned char)*t)) t++;
            if (!*t) continue;
            cJSON *j = cJSON_Parse(t);
            const cJSON *jq = cJSON_GetObjectItemCaseSensitive(j, "q"), *ja = cJSON_GetObjectItemCaseSensitive(j, "a");
            if (!jq) jq = cJSON_GetObjectItemCaseSensitive(j, "question");
            if (!ja) ja = cJSON_GetObjectItemCaseSensitive(j, "answer");
            if (!cJSON_IsString(jq) || !cJSON_IsString(ja) || !*jq->valuestring || !*ja->valuestring)
                s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: expected {\"q\": text, \"a\": text}", file, (long long)line);
            else
                s = teach_one(st, enc, jq->valuestring, ja->valuestring);
            cJSON_Delete(j);
            if (e == text + len) break;
        }
        free(text);
    }
    aios_encoder_free(enc);
    aios_store_close(st);
    return s ? aios_cli_fail("teach", s) : 0;
}

/* ---------------------------------------------------------------------------------------- */

static void usage_evolve(FILE *f) {
    fprintf(f,
            "usage: aios evolve --store DIR --skills LIB --model M [options]\n\n"
            "Trains skills from the approved pairs of the store (aios teach): groups them by topic\n"
            "(question embeddings), trains one LoRA skill per group on all but its last third and\n"
            "measures the held-out loss, extends it on the whole group, and keeps it only if it\n"
            "reproduces every taught answer (greedy) and the regression set's perplexity (general\n"
            "prompts, the base model's own answers, through the routed library) stays within 2%%.\n"
            "Kept skills join LIB, routable\n"
            "at once; a rejected one is recorded with its figures and reason.  Independent facts do\n"
            "not predict each other, so their held-out loss rises (docs/evolution.md): the held-out\n"
            "gate is opt-in.  Uncertain answers of the learning queue are never trained on.\n\n"
            "  --store DIR          memory store holding the approved pairs\n"
            "  --skills LIB         skill library (created when missing)\n"
            "  --model M            the decoder model the skills adapt\n"
            "  --steps N            training steps on the group's training part (default 8)\n"
            "  --extend-steps N     further steps on the whole group (default 8)\n"
            "  --require-heldout    reject a skill whose held-out loss did not improve (off: see below)\n"
            "  --lr LR              learning rate (default 3e-3)\n"
            "  --rank R             LoRA rank (default 8)\n"
            "  --target LIST        adapted modules (default q_proj,v_proj,down_proj)\n"
            "  --group-threshold S  mean cosine for two groups to merge (default 0.3)\n"
            "  --max-ppl-increase X relative regression perplexity increase allowed (default 0.02)\n"
            "  --regression FILE    regression prompts, JSONL {\"q\": ...} (default: 8 built-in general\n"
            "                       prompts); answers are the base model's greedy ones\n"
            "  --dry-run            print the groups and stop\n"
            "  --threads N          kernel threads\n");
}

static void log_line(void *user, const char *line) {
    (void)user;
    fprintf(stderr, "%s\n", line);
}

/* What the CLI prints of aios_evolve's result: per group its questions (--dry-run) or the
 * skill's line (and the reason of a rejection). */
static void print_groups(const aios_evolve_result *r, int dry_run) {
    for (int64_t gi = 0; gi < r->n_groups; gi++) {
        const aios_evolve_group *g = &r->groups[gi];
        if (dry_run) {
            printf("group %lld: %lld pairs\n", (long long)gi, (long long)g->n_pairs);
            for (int64_t j = 0; j < g->n_pairs; j++) printf("  %s\n", g->questions[j]);
            continue;
        }
        if (!g->name) continue; /* waiting for more pairs (logged) */
        printf("%s\t%s\t%lld pairs\theld-out loss %.4f -> %.4f\tregression ppl %s%.4f -> %.4f\n", g->name, g->status,
               (long long)g->n_pairs, g->loss_before, g->loss_after, isnan(g->ppl_before) ? "(not measured) " : "",
               g->ppl_before, g->ppl_after);
        if (g->reason) printf("  reason: %s\n", g->reason);
    }
}

int aios_cmd_evolve(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage_evolve(stdout);
        return 0;
    }
    aios_evolve_params o = aios_evolve_default_params();
    const char *store = NULL, *lib = NULL, *model = NULL;
    o.log = log_line;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        double x;
        if (!strcmp(a, "--dry-run")) {
            o.dry_run = 1;
            continue;
        }
        if (!strcmp(a, "--require-heldout")) {
            o.require_heldout = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "aios: evolve: %s: %s\n", a, strncmp(a, "--", 2) ? "unexpected argument" : "needs a value (or unknown option)");
            return 2;
        }
        i++;
        if (!strcmp(a, "--store")) store = v;
        else if (!strcmp(a, "--skills")) lib = v;
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--target")) o.target = v;
        else if (!strcmp(a, "--regression")) o.regression = v;
        else if (!strcmp(a, "--steps")) {
            if (!aios_cli_int("evolve", a, v, 1, 1000000, &n)) return 2;
            o.steps = n;
        } else if (!strcmp(a, "--extend-steps")) {
            if (!aios_cli_int("evolve", a, v, 0, 1000000, &n)) return 2;
            o.extend_steps = n;
        } else if (!strcmp(a, "--rank")) {
            if (!aios_cli_int("evolve", a, v, 1, 4096, &n)) return 2;
            o.rank = n;
        } else if (!strcmp(a, "--lr")) {
            if (!aios_cli_float("evolve", a, v, 1e-12, 10, &x)) return 2;
            o.lr = x;
        } else if (!strcmp(a, "--group-threshold")) {
            if (!aios_cli_float("evolve", a, v, -1, 1, &x)) return 2;
            o.group_threshold = x;
        } else if (!strcmp(a, "--max-ppl-increase")) {
            if (!aios_cli_float("evolve", a, v, 0, 100, &x)) return 2;
            o.max_ppl_increase = x;
        } else if (!strcmp(a, "--threads")) {
            if (!aios_cli_threads("evolve", v, &o.n_threads)) return 2;
        } else {
            fprintf(stderr, "aios: evolve: unknown option '%s' (see 'aios evolve --help')\n", a);
            return 2;
        }
    }
    if (!store || !lib || !model) {
        fprintf(stderr, "aios: evolve: --store, --skills and --model are required\n");
        return 2;
    }
    aios_evolve_result r;
    aios_status s = aios_evolve(store, lib, model, &o, &r);
    print_groups(&r, o.dry_run);
    aios_evolve_result_free(&r);
    return s ? aios_cli_fail("evolve", s) : 0;
}
