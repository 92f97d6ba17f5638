/*
 * evolve.c — the learning half of the evolution loop (aios_evolve; `aios evolve` and the
 * Python EvolutionRouter call it): approved pairs -> topic groups -> one LoRA skill per group
 * -> a gate -> the skill library.
 *
 * Step by step (docs/evolution.md, "The loop"):
 *  1. the store's "approved" records (never its "learning_queue": those answers are the
 *     model's own); each carries its question's embedding
 *  2. groups by topic: average-linkage clustering of the question embeddings, merging while
 *     the mean cosine between two groups is >= group_threshold (0.3); a group needs at least 3
 *     pairs (smaller ones wait for more)
 *  3. per group: the last third (in teaching order, at least 1) is held out; a skill is trained
 *     on the rest (aios_train) and the held-out loss of the base model and of the skill is
 *     measured and recorded (a gate only with require_heldout: independent facts do not predict
 *     each other, so it rises for good skills too — docs/evolution.md); the skill is extended on
 *     all the group's pairs (extend_steps, starting from it) and must reproduce every taught
 *     answer greedily (a contradictory group cannot: one question, two answers), and the
 *     regression set (general prompts with the base model's own greedy answers), scored
 *     through the routed library (the prompts the router would send to the skill with it, the
 *     rest with the base model), must keep its perplexity within max_ppl_increase (2%)
 *  4. kept: added to the library as active, with a description from its questions, routable at
 *     once; rejected: recorded as rejected with the figures and the reason.  Either way the
 *     group's records become "learned" (source skill:<name>) so they are not trained again.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "skills/skills_ops.h"

typedef struct {
    const char *model, *target, *regression;
    int64_t steps, extend_steps, rank;
    double lr, group_threshold, max_ppl;
    int dry_run, threads, require_heldout;
    void (*log)(void *user, const char *line);
    void *log_user;
} evolve_opts;

/* A progress line to the caller's log. */
static void elog(const evolve_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void elog(const evolve_opts *o, const char *fmt, ...) {
    if (!o->log) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->log(o->log_user, line);
}

typedef struct {
    char *id, *q, *a;
    float *emb;
} pair;

static const char *const REGRESSION[] = {
    "What is the capital of France?", "Write a haiku about autumn leaves.", "Explain in one sentence what a hash table is.",
    "List three primary colors.", "Translate 'good morning' into Spanish.", "What is 12 plus 30?",
    "Give me a short tip for sleeping better.", "Why do we have seasons on Earth?"};

static double cos_f(const float *a, const float *b, int32_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (int32_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* Average-linkage clustering: grp[i] = group of pair i (0..*n_groups-1, in order of first pair). */
static aios_status cluster(const pair *p, int64_t n, int32_t dim, double thr, int64_t *grp, int64_t *n_groups) {
    double *S = malloc((size_t)(n * n) * sizeof *S);
    int64_t *lab = malloc((size_t)n * sizeof *lab);
    if (!S || !lab) {
        free(S), free(lab);
        return aios__err(AIOS_ERR_NOMEM, "evolve");
    }
    for (int64_t i = 0; i < n; i++) {
        lab[i] = i;
        for (int64_t j = 0; j < n; j++) S[i * n + j] = cos_f(p[i].emb, p[j].emb, dim);
    }
    for (;;) {
        double best = -2;
        int64_t ba = -1, bb = -1;
        for (int64_t a = 0; a < n; a++) {
            if (lab[a] != a) continue;
            for (int64_t b = a + 1; b < n; b++) {
                if (lab[b] != b) continue;
                double sum = 0;
                int64_t cnt = 0;
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; lab[i] == a && j < n; j++)
                        if (lab[j] == b) sum += S[i * n + j], cnt++;
                double v = cnt ? sum / (double)cnt : -2;
                if (v > best) best = v, ba = a, bb = b;
            }
        }
        if (ba < 0 || best < thr) break;
        for (int64_t i = 0; i < n; i++)
            if (lab[i] == bb) lab[i] = ba;
    }
    int64_t ng = 0;
    for (int64_t i = 0; i < n; i++) grp[i] = -1;
    for (int64_t i = 0; i < n; i++) {
        if (grp[i] >= 0) continue;
        for (int64_t j = i; j < n; j++)
            if (lab[j] == lab[i]) grp[j] = ng;
        ng++;
    }
    *n_groups = ng;
    free(S), free(lab);
    return AIOS_OK;
}

static int stop_word(const char *w) {
    static const char *const STOP[] = {"what", "which", "who", "whom", "when", "where", "why", "how", "is", "are", "was",
                                       "the", "a", "an", "of", "on", "in", "at", "to", "does", "do", "did", "many", "much",
                                       "like", "and", "or", "for", "with", "s", "called", "name", "long", "time", "people",
                                       "it", "its", "by", "from", "there", "that", "this", "be", "has", "have", "you", "your"};
    for (size_t i = 0; i < sizeof STOP / sizeof *STOP; i++)
        if (!strcmp(w, STOP[i])) return 1;
    return strlen(w) < 3;
}

/* The most frequent non-stop words of the group's questions (lowercase), best first. */
static int top_words(const pair *p, const int64_t *idx, int64_t n, char words[3][32]) {
    char (*w)[32] = malloc(4096 * sizeof *w);
    int *cnt = calloc(4096, sizeof *cnt), nw = 0;
    if (!w || !cnt) {
        free(w), free(cnt);
        return 0;
    }
    for (int64_t k = 0; k < n; k++) {
        const char *s = p[idx[k]].q;
        while (*s) {
            char cur[32];
            size_t l = 0;
            while (*s && !isalnum((unsigned char)*s)) s++;
            while (*s && isalnum((unsigned char)*s)) {
                if (l < sizeof cur - 1) cur[l++] = (char)tolower((unsigned char)*s);
                s++;
            }
            cur[l] = 0;
            if (!l || stop_word(cur)) continue;
            int j = 0;
            while (j < nw && strcmp(w[j], cur)) j++;
            if (j == nw && nw < 4096) strcpy(w[nw++], cur);
            if (j < nw) cnt[j]++;
        }
    }
    int m = 0;
    for (; m < 3; m++) {
        int b = -1;
        for (int j = 0; j < nw; j++)
            if (cnt[j] > 0 && (b < 0 || cnt[j] > cnt[b])) b = j;
        if (b < 0) break;
        strcpy(words[m], w[b]);
        cnt[b] = -1;
    }
    free(w), free(cnt);
    return m;
}

static aios_status write_pairs(const char *path, const pair *p, const int64_t *idx, int64_t n) {
    FILE *f = fopen(path, "w");
    if (!f) return aios__err(AIOS_ERR_IO, "evolve: %s: %s", path, strerror(errno));
    for (int64_t k = 0; k < n; k++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "q", p[idx[k]].q);
        cJSON_AddStringToObject(j, "a", p[idx[k]].a);
        char *t = cJSON_PrintUnformatted(j);
        if (t) fprintf(f, "%s\n", t);
        free(t);
        cJSON_Delete(j);
    }
    if (fclose(f) != 0) return aios__err(AIOS_ERR_IO, "evolve: %s: %s", path, strerror(errno));
    return AIOS_OK;
}

/* The regression set: prompts with the base model's own greedy answers (at most 48 tokens). */
static aios_status regression_set(const evolve_opts *o, const char *path) {
    const char **prompts = NULL;
    size_t n = 0;
    char **owned = NULL;
    aios_status s = AIOS_OK;
    if (o->regression) {
        char *text = NULL;
        size_t len = 0;
        AIOS_TRY(aios__read_file(o->regression, &text, &len));
        size_t cap = 16;
        owned = malloc(cap * sizeof *owned);
        for (char *p = text, *e; owned && p < text + len; p = e + 1) {
            e = memchr(p, '\n', (size_t)(text + len - p));
            if (!e) e = text + len;
            *e = 0;
            cJSON *j = cJSON_Parse(p);
            const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "q");
            if (cJSON_IsString(q) && *q->valuestring) {
                if (n == cap) owned = realloc(owned, (cap *= 2) * sizeof *owned);
                if (owned) owned[n++] = strdup(q->valuestring);
            }
            cJSON_Delete(j);
            if (e == text + len) break;
        }
        free(text);
        if (!owned) return aios__err(AIOS_ERR_NOMEM, "evolve");
        if (!n) s = aios__err(AIOS_ERR_FORMAT, "evolve: --regression %s: no {\"q\": ...} lines", o->regression);
        prompts = (const char **)owned;
    } else {
        prompts = (const char **)REGRESSION;
        n = sizeof REGRESSION / sizeof *REGRESSION;
    }
    aios_generator *g = NULL;
    FILE *f = NULL;
    if (!s) s = aios_generator_open(o->model, NULL, &g);
    if (!s && !(f = fopen(path, "w"))) s = aios__err(AIOS_ERR_IO, "evolve: %s: %s", path, strerror(errno));
    for (size_t i = 0; !s && i < n; i++) {
        aios_chat_message m = {"user", prompts[i]};
        char *chat = NULL;
        aios_generate_params gp = aios_generate_default_params();
        gp.max_tokens = 48;
        aios_generate_result r;
        if ((s = aios_generator_chat_prompt(g, &m, 1, &chat)) != AIOS_OK) break;
        s = aios_generate(g, chat, NULL, 0, &gp, &r);
        free(chat);
        if (!s && r.text && *r.text) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "q", prompts[i]);
            cJSON_AddStringToObject(j, "a", r.text);
            char *t = cJSON_PrintUnformatted(j);
            if (t) fprintf(f, "%s\n", t);
            free(t);
            cJSON_Delete(j);
        }
        aios_generate_result_free(&r);
    }
    if (f && fclose(f) != 0 && !s) s = aios__err(AIOS_ERR_IO, "evolve: %s: %s", path, strerror(errno));
    aios_generator_free(g);
    for (size_t i = 0; owned && i < n; i++) free(owned[i]);
    free(owned);
    return s;
}

typedef struct {
    const evolve_opts *o;
    const char *name;
} progress_ctx;

static int train_progress(void *user, const aios_train_progress *p) {
    const progress_ctx *c = user;
    if (p->step == p->total_steps || p->step % 5 == 0)
        elog(c->o, "  [%s] step %lld/%lld loss %.4f (%.0f s)", c->name, (long long)p->step, (long long)p->total_steps,
             p->loss, p->elapsed_s);
    return 0;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Marks the group's records as learned (source skill:<name>). */
static aios_status mark_learned(aios_store *st, const pair *p, const int64_t *idx, int64_t n, const char *name) {
    char src[160];
    snprintf(src, sizeof src, "skill:%s", name);
    for (int64_t k = 0; k < n; k++) {
        aios_memory m;
        AIOS_TRY(aios_store_get(st, p[idx[k]].id, &m));
        /* copies: the store's pointers last until its next write */
        char *content = m.content ? strdup(m.content) : NULL;
        aios_memory u = m;
        u.memory_id = p[idx[k]].id;
        u.content = content;
        u.embedding = p[idx[k]].emb;
        u.category = "learned";
        u.source = src;
        aios_status s = m.content && !content ? aios__err(AIOS_ERR_NOMEM, "evolve") : aios_store_update(st, &u);
        free(content);
        if (s) return s;
    }
    return AIOS_OK;
}

/* How many of the group's pairs the skill answers, greedily and in the chat template, with
 * exactly the taught answer (white space at the ends aside). */
static aios_status reproduced(const char *model, const char *adapter, const pair *p, const int64_t *idx, int64_t n,
                              int64_t *out) {
    aios_generator *g = NULL;
    *out = 0;
    AIOS_TRY(aios_generator_open(model, NULL, &g));
    aios_status s = aios_generator_adapter_add(g, adapter, 1.0f, NULL);
    for (int64_t k = 0; !s && k < n; k++) {
        aios_chat_message m = {"user", p[idx[k]].q};
        char *chat = NULL;
        if ((s = aios_generator_chat_prompt(g, &m, 1, &chat)) != AIOS_OK) break;
        aios_generate_params gp = aios_generate_default_params();
        gp.max_tokens = 96;
        aios_generate_result r;
        s = aios_generate(g, chat, NULL, 0, &gp, &r);
        free(chat);
        if (!s && r.text) {
            const char *t = r.text, *a = p[idx[k]].a;
            while (isspace((unsigned char)*t)) t++;
            size_t lt = strlen(t), la = strlen(a);
            while (lt && isspace((unsigned char)t[lt - 1])) lt--;
            *out += lt == la && !memcmp(t, a, la);
        }
        aios_generate_result_free(&r);
    }
    aios_generator_free(g);
    return s;
}

/* The regression set through the routed library: the prompts the semantic router would send
 * to the new skill (cosine to its centroid >= the threshold, and above every active skill's) are
 * scored with it, the others with the base model; *before / *after are token-weighted mean
 * losses.  A skill is applied only where it is routed, so this is what its users get: the
 * centroid comes from enc (the float32 encoder the library's vectors are made with), each prompt's
 * embedding from renc (the encoder quantized to int8 at open, as `aios generate|serve --skills`
 * embed a prompt by default). */
static aios_status routed_regression(const evolve_opts *o, const aios_skill_lib *L, aios_encoder *enc,
                                     aios_encoder *renc, const pair *p,
                                     const int64_t *idx, int64_t n, const char *reg, const char *work,
                                     const char *adapter, double *before, double *after, int64_t *n_routed) {
    char *qs[4096];
    int64_t nq = AIOS_MIN(n, (int64_t)4096);
    for (int64_t k = 0; k < nq; k++) qs[k] = p[idx[k]].q;
    float *cent = NULL, *demb = NULL;
    AIOS_TRY(aios_skill_vectors(enc, NULL, (const char *const *)qs, nq, &demb, &cent));
    int32_t dim = (int32_t)aios_encoder_dim(enc);
    float *v = malloc((size_t)dim * sizeof *v);
    char *text = NULL;
    size_t len = 0;
    char f_in[4300], f_out[4300];
    snprintf(f_in, sizeof f_in, "%s/regression.routed.jsonl", work);
    snprintf(f_out, sizeof f_out, "%s/regression.base.jsonl", work);
    FILE *fi = fopen(f_in, "w"), *fo = fopen(f_out, "w");
    aios_status s = v && fi && fo ? aios__read_file(reg, &text, &len) : aios__err(AIOS_ERR_IO, "evolve: %s", work);
    int64_t ni = 0, no = 0;
    for (char *q = text, *e; !s && text && q < text + len; q = e + 1) {
        e = memchr(q, '\n', (size_t)(text + len - q));
        if (!e) e = text + len;
        *e = 0;
        cJSON *j = cJSON_Parse(q);
        const cJSON *jq = cJSON_GetObjectItemCaseSensitive(j, "q");
        if (cJSON_IsString(jq)) {
            s = aios_encode(renc, jq->valuestring, strlen(jq->valuestring), v);
            double own = s ? -2 : cos_f(v, cent, dim);
            aios_router_params rp = aios_router_default_params();
            aios_route r[1];
            int nr = 0;
            if (!s && aios_skills_count(L)) s = aios_skills_route(L, v, dim, &rp, r, &nr);
            int routed = own >= rp.threshold && !(nr && r[0].score > own);
            fprintf(routed ? fi : fo, "%s\n", q);
            routed ? ni++ : no++;
        }
        cJSON_Delete(j);
        if (e == text + len) break;
    }
    if (fi) fclose(fi);
    if (fo) fclose(fo);
    double lb_all = 0, la_all = 0;
    int64_t tok_all = 0;
    for (int part = 0; part < 2 && !s; part++) {
        const char *f = part ? f_out : f_in;
        if (part ? !no : !ni) continue;
        double l0, l1;
        int64_t t0 = 0, t1 = 0;
        if ((s = aios_train_eval(o->model, f, NULL, &l0, &t0)) != AIOS_OK) break;
        if (part) l1 = l0, t1 = t0; /* not routed: the base model answers */
        else if ((s = aios_train_eval(o->model, f, adapter, &l1, &t1)) != AIOS_OK) break;
        lb_all += l0 * (double)t0, la_all += l1 * (double)t0, tok_all += t0;
    }
    *before = tok_all ? lb_all / (double)tok_all : NAN;
    *after = tok_all ? la_all / (double)tok_all : NAN;
    *n_routed = ni;
    if (!s && !tok_all) s = aios__err(AIOS_ERR_INVALID_ARG, "evolve: the regression set has no answer tokens");
    unlink(f_in), unlink(f_out);
    free(text), free(v), free(cent), free(demb);
    return s;
}

static aios_status evolve_group(const evolve_opts *o, aios_store *st, aios_skill_lib *L, aios_encoder *enc,
                                aios_encoder *renc, const pair *p, const int64_t *idx, int64_t n, const char *work, const char *reg,
                                aios_evolve_group *g) {
    char words[3][32];
    int nwords = top_words(p, idx, n, words);
    char name[128];
    snprintf(name, sizeof name, "%s", nwords ? words[0] : "skill");
    for (int k = 2;; k++) {
        char path[8400], card[8500];
        snprintf(path, sizeof path, "%s/%s", aios_skills_dir(L), name);
        snprintf(card, sizeof card, "%s.parquet", path);
        if (!aios_skills_get(L, name) && !exists(path) && !exists(card)) break;
        snprintf(name, sizeof name, "%s-%d", nwords ? words[0] : "skill", k);
    }
    char desc[1024];
    int dl = snprintf(desc, sizeof desc, "facts about");
    for (int k = 0; k < nwords; k++) dl += snprintf(desc + dl, sizeof desc - (size_t)dl, "%s %s", k ? "," : "", words[k]);
    for (int64_t k = 0; k < n && k < 3 && dl < (int)sizeof desc - 200; k++)
        dl += snprintf(desc + dl, sizeof desc - (size_t)dl, "%s%s", k ? " " : ": ", p[idx[k]].q);
    int64_t n_hold = AIOS_MAX((int64_t)1, n / 3), n_train = n - n_hold;
    char f_train[4200], f_hold[4200], f_all[4200], a_gate[4200], a_final[8400];
    snprintf(f_train, sizeof f_train, "%s/%s.train.jsonl", work, name);
    snprintf(f_hold, sizeof f_hold, "%s/%s.heldout.jsonl", work, name);
    snprintf(f_all, sizeof f_all, "%s/%s.all.jsonl", work, name);
    snprintf(a_gate, sizeof a_gate, "%s/%s.gate", work, name);
    snprintf(a_final, sizeof a_final, "%s/%s", aios_skills_dir(L), name);
    AIOS_TRY(write_pairs(f_train, p, idx, n_train));
    AIOS_TRY(write_pairs(f_hold, p, idx + n_train, n_hold));
    AIOS_TRY(write_pairs(f_all, p, idx, n));
    elog(o, "[evolve: group '%s': %lld pairs (%lld train, %lld held out)]", name, (long long)n, (long long)n_train,
            (long long)n_hold);
    aios_train_params tp = aios_train_default_params();
    tp.rank = o->rank;
    tp.alpha = 2.0 * (double)o->rank;
    tp.targets = o->target;
    tp.lr = o->lr;
    tp.steps = o->steps;
    tp.weight_decay = 0.01;
    tp.name = name;
    tp.progress = train_progress;
    progress_ctx pc = {o, name};
    tp.progress_user = &pc;
    tp.n_threads = o->threads;
    aios_train_result tr;
    double lb = NAN, la = NAN, pb = NAN, pa = NAN, reg_base = NAN, reg_after = NAN;
    AIOS_TRY(aios_train_eval(o->model, f_hold, NULL, &lb, NULL));
    AIOS_TRY(aios_train(o->model, f_train, a_gate, &tp, &tr));
    AIOS_TRY(aios_train_eval(o->model, f_hold, a_gate, &la, NULL));
    elog(o, "[evolve: '%s' held-out loss %.4f -> %.4f]", name, lb, la);
    char reason[512] = "";
    int64_t steps = tr.steps, n_rep = 0, n_routed = 0;
    int keep = 1;
    if (o->require_heldout && !(la < lb)) {
        keep = 0;
        snprintf(reason, sizeof reason, "held-out loss did not improve (%.4f -> %.4f)", lb, la);
    } else {
        tp.init_adapter = a_gate;
        tp.steps = o->extend_steps;
        if (o->extend_steps > 0) {
            AIOS_TRY(aios_train(o->model, f_all, a_final, &tp, &tr));
            steps += tr.steps;
        } else if (rename(a_gate, a_final) != 0) {
            return aios__err(AIOS_ERR_IO, "evolve: %s: %s", a_final, strerror(errno));
        }
        int64_t rep = 0;
        AIOS_TRY(reproduced(o->model, a_final, p, idx, n, &rep));
        elog(o, "[evolve: '%s' reproduces %lld of %lld taught answers]", name, (long long)rep, (long long)n);
        n_rep = rep;
        if (rep < n) {
            keep = 0;
            snprintf(reason, sizeof reason,
                     "the skill reproduces %lld of its %lld taught answers (contradictory or unlearnable pairs); "
                     "held-out loss %.4f -> %.4f", (long long)rep, (long long)n, lb, la);
        } else {
            AIOS_TRY(routed_regression(o, L, enc, renc, p, idx, n, reg, work, a_final, &reg_base, &reg_after, &n_routed));
            pb = exp(reg_base), pa = exp(reg_after);
            elog(o, "[evolve: '%s' regression perplexity, routed: %.4f -> %.4f (%+.2f%%; %lld of the prompts route to it)]",
                 name, pb, pa, 100 * (pa / pb - 1), (long long)n_routed);
            if (!(pa <= pb * (1 + o->max_ppl))) {
                keep = 0;
                snprintf(reason, sizeof reason, "regression perplexity rose %.2f%% (%.4f -> %.4f; at most %.2f%%)",
                         100 * (pa / pb - 1), pb, pa, 100 * o->max_ppl);
            }
        }
        if (!keep) aios__skill_remove_files(a_final);
    }
    char *qs[4096];
    int64_t nq = AIOS_MIN(n, (int64_t)4096);
    for (int64_t k = 0; k < nq; k++) qs[k] = p[idx[k]].q;
    float *demb = NULL, *cent = NULL;
    AIOS_TRY(aios_skill_vectors(enc, desc, (const char *const *)qs, nq, &demb, &cent));
    aios_skill k = {0};
    k.name = name;
    k.description = desc;
    k.description_embedding = demb;
    k.centroid = cent;
    k.adapter = keep ? name : NULL;
    k.base_model = (char *)o->model;
    k.n_pairs = n;
    k.steps = steps;
    k.lr = o->lr;
    k.loss_before = lb, k.loss_after = la, k.ppl_before = pb, k.ppl_after = pa;
    k.status = keep ? "active" : "rejected";
    k.reason = keep ? NULL : reason;
    aios_status s = aios_skills_add(L, &k);
    free(demb), free(cent);
    if (!s) s = mark_learned(st, p, idx, n, name);
    aios__skill_remove_files(a_gate);
    unlink(f_train), unlink(f_hold), unlink(f_all);
    g->name = strdup(name);
    g->status = strdup(keep ? "active" : "rejected");
    g->reason = keep ? NULL : strdup(reason);
    g->n_train = n_train, g->n_heldout = n_hold, g->steps = steps, g->n_reproduced = n_rep, g->n_routed = n_routed;
    g->loss_before = lb, g->loss_after = la, g->ppl_before = pb, g->ppl_after = pa;
    if (!s && (!g->name || !g->status || (!keep && !g->reason))) s = aios__err(AIOS_ERR_NOMEM, "evolve");
    return s;
}

aios_evolve_params aios_evolve_default_params(void) {
    aios_evolve_params p = {0};
    p.target = "q_proj,v_proj,down_proj";
    p.steps = 8, p.extend_steps = 8, p.rank = 8;
    p.lr = 3e-3, p.group_threshold = 0.3, p.max_ppl_increase = 0.02;
    return p;
}

void aios_evolve_result_free(aios_evolve_result *r) {
    if (!r) return;
    for (int64_t i = 0; i < r->n_groups && r->groups; i++) {
        aios_evolve_group *g = &r->groups[i];
        free(g->name), free(g->status), free(g->reason);
        for (int64_t k = 0; g->questions && k < g->n_pairs; k++) free(g->questions[k]);
        free(g->questions);
    }
    free(r->groups);
    memset(r, 0, sizeof *r);
}

/* A group's entry of the result: its questions in teaching order, the status given. */
static aios_status group_entry(aios_evolve_group *g, const pair *p, const int64_t *idx, int64_t n, const char *status) {
    memset(g, 0, sizeof *g);
    g->loss_before = g->loss_after = g->ppl_before = g->ppl_after = NAN;
    g->n_pairs = n;
    g->status = strdup(status);
    g->questions = calloc((size_t)(n ? n : 1), sizeof *g->questions);
    if (!g->status || !g->questions) return aios__err(AIOS_ERR_NOMEM, "evolve");
    for (int64_t k = 0; k < n; k++)
        if (!(g->questions[k] = strdup(p[idx[k]].q))) return aios__err(AIOS_ERR_NOMEM, "evolve");
    return AIOS_OK;
}

aios_status aios_evolve(const char *store, const char *skills, const char *model, const aios_evolve_params *ep,
                        aios_evolve_result *out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "evolve: no result");
    memset(out, 0, sizeof *out);
    if (!store || !skills || !model) return aios__err(AIOS_ERR_INVALID_ARG, "evolve: a store, a skill library and a model are needed");
    aios_evolve_params dp = aios_evolve_default_params();
    if (!ep) ep = &dp;
    if (ep->steps < 1 || ep->extend_steps < 0 || ep->rank < 1 || !(ep->lr > 0) || !(ep->max_ppl_increase >= 0) ||
        !(ep->group_threshold >= -1 && ep->group_threshold <= 1))
        return aios__err(AIOS_ERR_INVALID_ARG, "evolve: steps >= 1, extend_steps >= 0, rank >= 1, lr > 0, "
                                               "max_ppl_increase >= 0 and group_threshold in [-1, 1] are needed");
    evolve_opts o = {model, ep->target ? ep->target : dp.target, ep->regression, ep->steps, ep->extend_steps, ep->rank,
                     ep->lr, ep->group_threshold, ep->max_ppl_increase, ep->dry_run, ep->n_threads, ep->require_heldout,
                     ep->log, ep->log_user};
    aios_store *st = NULL;
    aios_skill_lib *L = NULL;
    aios_encoder *enc = NULL, *renc = NULL;
    pair *p = NULL;
    int64_t n = 0, cap = 0, *grp = NULL, *idx = NULL;
    char work[4200] = "", reg[4300] = "";
    aios_store_params sp = aios_store_default_params();
    aios_status s = aios_store_open(store, &sp, &st);
    if (!s && !*aios_store_model(st)) s = aios__err(AIOS_ERR_NOT_FOUND, "store %s records no embedding model", store);
    if (!s) s = aios_skills_open(skills, 1, &L);
    if (!s) s = aios_encoder_open(aios_store_model(st), NULL, &enc);
    if (!s) s = aios_skills_set_encoder(L, aios_store_model(st), (int32_t)aios_encoder_dim(enc));
    if (!s && !o.dry_run) { /* the router's own encoder, for the routed regression */
        aios_encoder_params rp = aios_encoder_default_params();
        rp.quantize_bits = 8;
        s = aios_encoder_open(aios_store_model(st), &rp, &renc);
    }
    /* 1. the approved pairs */
    int64_t cur = 0;
    aios_memory m;
    while (!s) {
        aios_status r = aios_store_next(st, &cur, &m);
        if (r == AIOS_ERR_NOT_FOUND) break;
        if ((s = r) != AIOS_OK) break;
        if (!m.has_metadata || !m.category || strcmp(m.category, AIOS_LEARN_APPROVED) || !m.embedding) continue;
        aios_learn_item it;
        char *own = NULL;
        if (aios_learn_parse(&m, &it, &own) != AIOS_OK) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            pair *np = realloc(p, (size_t)cap * sizeof *np);
            if (!np) {
                free(own);
                s = aios__err(AIOS_ERR_NOMEM, "evolve");
                break;
            }
            p = np;
        }
        p[n].id = strdup(m.memory_id);
        p[n].q = strdup(it.question);
        p[n].a = strdup(it.answer);
        p[n].emb = malloc((size_t)m.dim * sizeof(float));
        free(own);
        if (!p[n].id || !p[n].q || !p[n].a || !p[n].emb) {
            s = aios__err(AIOS_ERR_NOMEM, "evolve");
            n++;
            break;
        }
        memcpy(p[n].emb, m.embedding, (size_t)m.dim * sizeof(float));
        n++;
    }
    out->n_pairs = n;
    if (!s && !n) elog(&o, "[evolve: no approved pairs in %s (aios teach adds them)]", store);
    /* 2. groups */
    int64_t ng = 0;
    if (!s && n) {
        grp = malloc((size_t)n * sizeof *grp);
        idx = malloc((size_t)n * sizeof *idx);
        if (!grp || !idx) s = aios__err(AIOS_ERR_NOMEM, "evolve");
        if (!s) s = cluster(p, n, aios_store_dim(st), o.group_threshold, grp, &ng);
        if (!s && !(out->groups = calloc((size_t)ng, sizeof *out->groups))) s = aios__err(AIOS_ERR_NOMEM, "evolve");
    }
    if (!s && n && !o.dry_run) {
        snprintf(work, sizeof work, "%s/.evolve-%ld", skills, (long)getpid());
        if (mkdir(work, 0777) != 0) s = aios__err(AIOS_ERR_IO, "evolve: %s: %s", work, strerror(errno));
        snprintf(reg, sizeof reg, "%s/regression.jsonl", work);
        if (!s) elog(&o, "[evolve: %lld approved pairs in %lld groups; the regression set's answers from %s]", (long long)n,
                     (long long)ng, model);
        if (!s) s = regression_set(&o, reg);
    }
    /* 3. and 4. per group */
    for (int64_t gi = 0; !s && gi < ng; gi++) {
        int64_t k = 0;
        for (int64_t i = 0; i < n; i++)
            if (grp[i] == gi) idx[k++] = i;
        aios_evolve_group *g = &out->groups[out->n_groups++];
        const char *status = o.dry_run ? "planned" : k < 3 ? "waiting" : "training";
        if ((s = group_entry(g, p, idx, k, status)) != AIOS_OK) break;
        if (o.dry_run) continue;
        if (k < 3) {
            elog(&o, "[evolve: a group of %lld pair%s (%s) waits for at least 3]", (long long)k, k == 1 ? "" : "s", p[idx[0]].q);
            continue;
        }
        free(g->status), g->status = NULL;
        s = evolve_group(&o, st, L, enc, renc, p, idx, k, work, reg, g);
        if (!g->status && !(g->status = strdup("failed")) && !s) s = aios__err(AIOS_ERR_NOMEM, "evolve");
    }
    if (reg[0]) unlink(reg);
    if (work[0]) rmdir(work);
    for (int64_t i = 0; i < n; i++) free(p[i].id), free(p[i].q), free(p[i].a), free(p[i].emb);
    free(p), free(grp), free(idx);
    aios_encoder_free(enc);
    aios_encoder_free(renc);
    aios_skills_close(L);
    aios_store_close(st);
    return s;
}
