/*
 * train_run.c — aios_train: JSONL examples -> padded batches -> AdamW steps -> an adapter
 * file; and aios_lora_merge / aios_lora_convert.
 *
 * Key decisions:
 *  - The model is opened as a generator, which brings the tokenizer and the chat template the
 *    model will answer with at run time, so training and generation see the same prompt
 *    (SmolLM2's default system prompt included).
 *  - q/a: the question through the chat template (with the assistant header), then the
 *    answer's tokens and the end-of-turn token; labels are -100 on the prompt, so the loss is
 *    on the answer + end-of-turn only (as PEFT recipes and fixtures/real/.../lora build it).
 *  - Examples are sorted by length (stable) and cut into batches, right-padded with the pad
 *    id; batch order is shuffled each epoch from the seed (one batch: nothing to shuffle).
 *  - The adapter file is written once at the end (and when stopped), atomically; a NaN/inf
 *    loss or gradient stops training with the last good adapter written.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/internal.h"
#include "format/safetensors.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "train/train.h"

aios_train_params aios_train_default_params(void) {
    aios_train_params p;
    memset(&p, 0, sizeof p);
    p.rank = 8;
    p.alpha = 16;
    p.targets = "q_proj,v_proj";
    p.lr = 0;     /* auto: aios_train_auto_lr() of the data size */
    p.epochs = 0; /* with steps 0: auto, at least AIOS_TRAIN_MIN_STEPS steps and one epoch */
    p.accum = 1;
    p.clip = 1.0;
    return p;
}

/* The defaults that learn.  A skill of a few facts (data/skills: 6 pairs) at PEFT's usual
 * 2e-4 for one epoch is one optimizer step: nothing is learned.  Measured on SmolLM2-135M
 * (docs/training.md "Defaults"): 30 full-batch steps at 3e-3 put 6 of 6 facts into q/v.  So
 * the learning rate falls log-linearly with the number of examples, from 3e-3 at <= 64 to 2e-4
 * at >= 4096 (large sets take many steps per epoch and want the small rate), and without
 * --steps / --epochs training runs whole epochs until at least 30 steps are done. */
double aios_train_auto_lr(int64_t n_examples) {
    const double lo = 64, hi = 4096, lr_lo = 3e-3, lr_hi = 2e-4;
    if (n_examples <= lo) return lr_lo;
    if (n_examples >= hi) return lr_hi;
    double t = log((double)n_examples / lo) / log(hi / lo);
    return exp(log(lr_lo) + t * (log(lr_hi) - log(lr_lo)));
}

typedef struct {
    int32_t *ids, *labels;
    int64_t n;
} example;

typedef struct {
    example *v;
    int64_t n, cap;
} examples;

static void examples_free(examples *e) {
    for (int64_t i = 0; i < e->n; i++) free(e->v[i].ids), free(e->v[i].labels);
    free(e->v);
    memset(e, 0, sizeof *e);
}

static aios_status push(examples *e, example x) {
    if (e->n == e->cap) {
        int64_t nc = e->cap ? e->cap * 2 : 64;
        example *v = realloc(e->v, (size_t)nc * sizeof *v);
        if (!v) return aios__err(AIOS_ERR_NOMEM, "train: examples");
        e->v = v, e->cap = nc;
    }
    e->v[e->n++] = x;
    return AIOS_OK;
}

/* ids = prompt ++ answer (++ eot); labels -100 on the prompt. */
static aios_status build(aios_generator *g, const char *prompt, const char *answer, int32_t eot, int add_bos,
                         example *out) {
    int32_t *pi = NULL, *ai = NULL;
    size_t np = 0, na = 0;
    memset(out, 0, sizeof *out);
    if (prompt) AIOS_TRY(aios_generator_tokenize(g, prompt, add_bos, &pi, &np));
    aios_status s = aios_generator_tokenize(g, answer, prompt ? 0 : add_bos, &ai, &na);
    if (s != AIOS_OK) {
        free(pi);
        return s;
    }
    int64_t n = (int64_t)(np + na) + (eot >= 0 ? 1 : 0);
    out->ids = malloc((size_t)AIOS_MAX(n, 1) * sizeof(int32_t));
    out->labels = malloc((size_t)AIOS_MAX(n, 1) * sizeof(int32_t));
    if (!out->ids || !out->labels) {
        free(pi), free(ai), free(out->ids), free(out->labels);
        return aios__err(AIOS_ERR_NOMEM, "train: example");
    }
    for (size_t i = 0; i < np; i++) out->ids[i] = pi[i], out->labels[i] = -100;
    for (size_t i = 0; i < na; i++) out->ids[np + i] = ai[i], out->labels[np + i] = ai[i];
    if (eot >= 0) out->ids[n - 1] = out->labels[n - 1] = eot;
    out->n = n;
    free(pi), free(ai);
    return AIOS_OK;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Takes x into ex after the length and label checks ("where" names it: a line, a memory id). */
static aios_status add_example(examples *ex, example x, const char *file, const char *where, int64_t max_len,
                               int64_t *truncated) {
    if (x.n > max_len) {
        aios_log(AIOS_LOG_WARN, "train: %s:%s: %lld tokens, truncated to %lld", file, where, (long long)x.n,
                 (long long)max_len);
        x.n = max_len;
        ++*truncated;
    }
    int any = 0;
    for (int64_t i = 1; i < x.n; i++) any |= x.labels[i] != -100;
    aios_status s = any ? push(ex, x)
                        : aios__err(AIOS_ERR_FORMAT, "%s:%s: no token to learn (the answer is empty or was truncated away)",
                                    file, where);
    if (s != AIOS_OK) free(x.ids), free(x.labels);
    return s;
}

/* Parses JSONL text (named `path` in errors) into examples.  Errors name "file:line". */
static aios_status parse_data(aios_generator *g, const char *path, char *text, size_t len, int64_t max_len, examples *ex,
                              int64_t *truncated) {
    const int32_t eot = aios__generator_end_of_turn(g);
    aios_status s = AIOS_OK;
    int64_t line = 0;
    char *p = text, *end = text + len;
    while (p < end && s == AIOS_OK) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        line++;
        char *q = p;
        while (q < le && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == le) { /* blank line */
            p = le + 1;
            continue;
        }
        cJSON *o = cJSON_ParseWithLength(p, (size_t)(le - p));
        p = le + 1;
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: not a JSON object", path, (long long)line);
            break;
        }
        example x;
        const char *qq = jstr(o, "q"), *aa = jstr(o, "a"), *tt = jstr(o, "text");
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
        if (qq || aa || cJSON_GetObjectItemCaseSensitive(o, "q") || cJSON_GetObjectItemCaseSensitive(o, "a")) {
            if (!qq || !*qq) s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: field 'q' is missing, empty or not a string", path, (long long)line);
            else if (!aa || !*aa) s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: field 'a' is missing, empty or not a string", path, (long long)line);
            if (s == AIOS_OK) {
                aios_chat_message m = {.role = "user", .content = qq};
                char *prompt = NULL;
                s = aios_generator_chat_prompt(g, &m, 1, &prompt);
                if (s == AIOS_OK) s = build(g, prompt, aa, eot, 0, &x);
                free(prompt);
            }
        } else if (msgs) {
            int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : 0;
            aios_chat_message *m = n ? calloc((size_t)n, sizeof *m) : NULL;
            if (!n || !m) s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: field 'messages' is not a non-empty array", path, (long long)line);
            for (int i = 0; s == AIOS_OK && i < n; i++) {
                const cJSON *e = cJSON_GetArrayItem(msgs, i);
                m[i].role = jstr(e, "role"), m[i].content = jstr(e, "content");
                if (!m[i].role || !m[i].content)
                    s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: messages[%d] needs string 'role' and 'content'", path,
                                  (long long)line, i);
            }
            if (s == AIOS_OK && strcmp(m[n - 1].role, "assistant"))
                s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: the last message must be the assistant's (it is '%s')", path,
                              (long long)line, m[n - 1].role);
            if (s == AIOS_OK && !*m[n - 1].content)
                s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: the assistant's message is empty", path, (long long)line);
            if (s == AIOS_OK) {
                char *prompt = NULL;
                s = aios_generator_chat_prompt(g, m, (size_t)(n - 1), &prompt);
                if (s == AIOS_OK) s = build(g, prompt, m[n - 1].content, eot, 0, &x);
                free(prompt);
            }
            free(m);
        } else if (tt) {
            if (!*tt) s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: field 'text' is empty", path, (long long)line);
            if (s == AIOS_OK) s = build(g, NULL, tt, -1, 1, &x);
        } else {
            s = aios__err(AIOS_ERR_FORMAT, "%s:%lld: needs 'q' and 'a', 'messages' or 'text'", path, (long long)line);
        }
        cJSON_Delete(o);
        if (s != AIOS_OK) break;
        char where[64];
        snprintf(where, sizeof where, "%lld", (long long)line);
        s = add_example(ex, x, path, where, max_len, truncated);
    }
    if (s == AIOS_OK && ex->n == 0) s = aios__err(AIOS_ERR_FORMAT, "%s: no examples", path);
    return s;
}

static aios_status load_data(aios_generator *g, const char *path, int64_t max_len, examples *ex, int64_t *truncated) {
    char *text = NULL;
    size_t len = 0;
    AIOS_TRY(aios__read_file(path, &text, &len));
    aios_status s = parse_data(g, path, text, len, max_len, ex, truncated);
    free(text);
    return s;
}

aios_status aios__train_parse_jsonl(aios_generator *g, const char *text, size_t len, int64_t max_len,
                                    int (*check)(void *user, const int32_t *ids, const int32_t *labels, int64_t n),
                                    void *user, int64_t *n_examples) {
    examples ex = {0};
    int64_t truncated = 0;
    char *copy = malloc(len + 1);
    if (!copy) return aios__err(AIOS_ERR_NOMEM, "train: data");
    memcpy(copy, text, len);
    copy[len] = 0;
    aios_status s = parse_data(g, "data", copy, len, max_len, &ex, &truncated);
    free(copy);
    for (int64_t i = 0; s == AIOS_OK && check && i < ex.n; i++)
        if (check(user, ex.v[i].ids, ex.v[i].labels, ex.v[i].n)) s = aios__err(AIOS_ERR_INTERNAL, "train: example %lld", (long long)i);
    if (n_examples) *n_examples = ex.n;
    examples_free(&ex);
    return s;
}

/* --from-store: every live memory's content is one {"text"} example (the memory schema of
 * DESIGN.md holds content + category/source/quality, no question/answer fields).  Errors name
 * the memory id. */
static aios_status load_store(aios_generator *g, const char *dir, int64_t max_len, examples *ex, int64_t *truncated) {
    aios_store_params sp = aios_store_default_params();
    sp.read_only = 1;
    aios_store *st = NULL;
    aios_status s = aios_store_open(dir, &sp, &st);
    if (s != AIOS_OK) return aios__err_prefix(s, "train: --from-store %s", dir);
    int64_t cursor = 0, empty = 0;
    aios_memory m;
    while ((s = aios_store_next(st, &cursor, &m)) == AIOS_OK) {
        if (!m.content || !*m.content) { /* nothing to learn from; not an error (a memory may be an embedding only) */
            empty++;
            continue;
        }
        example x;
        if ((s = build(g, NULL, m.content, -1, 1, &x)) != AIOS_OK) break;
        if ((s = add_example(ex, x, dir, m.memory_id, max_len, truncated)) != AIOS_OK) break;
    }
    if (s == AIOS_ERR_NOT_FOUND) s = AIOS_OK; /* the end */
    aios_store_close(st);
    if (s == AIOS_OK && empty) aios_log(AIOS_LOG_WARN, "train: %s: %lld memories without content skipped", dir, (long long)empty);
    if (s == AIOS_OK && ex->n == 0) s = aios__err(AIOS_ERR_FORMAT, "train: --from-store %s: no memory with content", dir);
    return s;
}

typedef struct {
    aios_train_batch b;
    int32_t *tok, *lab;
    uint8_t *mask;
} batch;

static int cmp_len(const void *a, const void *b) {
    const example *x = *(const example *const *)a, *y = *(const example *const *)b;
    return (x->n > y->n) - (x->n < y->n);
}

static aios_status make_batches(const examples *ex, int64_t bs, int32_t pad, batch **out, int64_t *nb) {
    const example **ord = malloc((size_t)ex->n * sizeof *ord);
    if (!ord) return aios__err(AIOS_ERR_NOMEM, "train: batches");
    for (int64_t i = 0; i < ex->n; i++) ord[i] = &ex->v[i];
    qsort(ord, (size_t)ex->n, sizeof *ord, cmp_len); /* ties keep no order; fine: a batch's loss is a mean */
    int64_t n = (ex->n + bs - 1) / bs;
    batch *b = calloc((size_t)n, sizeof *b);
    if (!b) {
        free(ord);
        return aios__err(AIOS_ERR_NOMEM, "train: batches");
    }
    for (int64_t k = 0; k < n; k++) {
        int64_t i0 = k * bs, i1 = AIOS_MIN(ex->n, i0 + bs), B = i1 - i0, L = 0;
        for (int64_t i = i0; i < i1; i++) L = AIOS_MAX(L, ord[i]->n);
        b[k].tok = malloc((size_t)(B * L) * sizeof(int32_t));
        b[k].lab = malloc((size_t)(B * L) * sizeof(int32_t));
        b[k].mask = malloc((size_t)(B * L));
        if (!b[k].tok || !b[k].lab || !b[k].mask) {
            *out = b, *nb = k + 1;
            free(ord);
            return aios__err(AIOS_ERR_NOMEM, "train: batches");
        }
        for (int64_t i = 0; i < B; i++) {
            const example *e = ord[i0 + i];
            for (int64_t j = 0; j < L; j++) {
                int real = j < e->n;
                b[k].tok[i * L + j] = real ? e->ids[j] : pad;
                b[k].lab[i * L + j] = real ? e->labels[j] : -100;
                b[k].mask[i * L + j] = (uint8_t)real;
            }
        }
        b[k].b = (aios_train_batch){.B = B, .L = L, .tokens = b[k].tok, .mask = b[k].mask, .labels = b[k].lab};
    }
    free(ord);
    *out = b, *nb = n;
    return AIOS_OK;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static aios_status save_adapter(const aios_lora *a, const char *out, const aios_train_result *r, const aios_train_params *p) {
    if (!ends_with(out, ".parquet")) return aios_lora_save_peft(a, out);
    char steps[32], loss[64], lr[64];
    snprintf(steps, sizeof steps, "%lld", (long long)r->steps);
    snprintf(loss, sizeof loss, "%.9g", r->last_loss);
    snprintf(lr, sizeof lr, "%.9g", p->lr);
    const char *kv[] = {"aios.train.steps", steps, "aios.train.final_loss", loss, "aios.train.lr", lr, NULL};
    return aios_lora_save_card(a, out, kv);
}

/* FNV-1a 64 of the batches as trained (shapes, tokens, labels, masks): a resumed run must see
 * the same data in the same layout. */
static uint64_t batches_hash(const batch *bt, int64_t nb) {
    uint64_t h = AIOS_FNV1A64_INIT;
    for (int64_t k = 0; k < nb; k++) {
        const aios_train_batch *b = &bt[k].b;
        const int64_t n = b->B * b->L;
        h = aios__fnv1a64(h, &b->B, sizeof b->B);
        h = aios__fnv1a64(h, &b->L, sizeof b->L);
        h = aios__fnv1a64(h, b->tokens, (size_t)n * sizeof(int32_t));
        h = aios__fnv1a64(h, b->labels, (size_t)n * sizeof(int32_t));
        h = aios__fnv1a64(h, b->mask, (size_t)n);
    }
    return h;
}

static uint64_t adapter_hash(const aios_lora *a) {
    return aios__fnv1a64(AIOS_FNV1A64_INIT, a->data, (size_t)a->n_params * sizeof(float));
}

/* Where --save-every puts the checkpoint of step k: OUT/checkpoint-k (a PEFT directory inside
 * the output directory, as transformers' Trainer names them) or OUT-checkpoint-k.parquet. */
static aios_status checkpoint_path(const char *out, int64_t k, char *buf, size_t n) {
    if (ends_with(out, ".parquet")) {
        snprintf(buf, n, "%.*s-checkpoint-%lld.parquet", (int)(strlen(out) - 8), out, (long long)k);
        return AIOS_OK;
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) return aios__err(AIOS_ERR_IO, "train: %s: %s", out, strerror(errno));
    snprintf(buf, n, "%s/checkpoint-%lld", out, (long long)k);
    return AIOS_OK;
}

/* The model through a generator (its tokenizer, chat template and decoder); the trainer keeps
 * no KV cache of its own, so the generator's is minimal. */
static aios_status open_model(const char *model, aios_generator **g) {
    aios_generator_params gp = aios_generator_default_params();
    gp.n_ctx = 16;
    return aios_generator_open(model, &gp, g);
}

aios_status aios_train(const char *model, const char *data, const char *out, const aios_train_params *pp,
                       aios_train_result *res) {
    aios_train_params p = pp ? *pp : aios_train_default_params();
    aios_train_result r;
    memset(&r, 0, sizeof r);
    if (!model || (!data && !p.from_store) || !out)
        return aios__err(AIOS_ERR_INVALID_ARG, "train: model, data (or from_store) and out are required");
    if (p.rank <= 0 && !p.init_adapter) return aios__err(AIOS_ERR_INVALID_ARG, "train: rank %lld (must be > 0)", (long long)p.rank);
    if (!(p.lr >= 0) || !isfinite(p.lr)) return aios__err(AIOS_ERR_INVALID_ARG, "train: lr %g (must be > 0; 0 = auto)", p.lr);
    if (p.steps < 0 || p.epochs < 0 || p.batch < 0 || p.accum < 0 || p.warmup < 0 || !(p.weight_decay >= 0) ||
        !(p.clip >= 0) || !(p.dropout >= 0 && p.dropout < 1))
        return aios__err(AIOS_ERR_INVALID_ARG, "train: negative steps/epochs/batch/accum/warmup/weight decay/clip, or dropout outside [0, 1)");
    if (p.accum == 0) p.accum = 1;
    if (p.n_threads > 0) aios_set_threads(p.n_threads);
    const double t0 = aios__now();
    aios_generator *g = NULL;
    AIOS_TRY(open_model(model, &g));
    aios_decoder *d = aios__generator_decoder(g);
    aios_status s = AIOS_OK;
    examples ex = {0};
    batch *bt = NULL;
    int64_t nb = 0;
    aios_lora *a = NULL;
    aios_trainer *tr = NULL;
    aios_adamw opt = {0};
    FILE *log = NULL;
    float *good = NULL;
    aios__train_state st;
    memset(&st, 0, sizeof st);
    const int keep_state = p.save_state || p.save_every > 0 || p.resume;
    if (p.resume && p.init_adapter) {
        s = aios__err(AIOS_ERR_INVALID_ARG, "train: resume and init_adapter exclude each other");
        goto out;
    }
    if (!d) {
        s = aios__err(AIOS_ERR_UNSUPPORTED, "train: %s is not a Llama/Qwen decoder model", model);
        goto out;
    }
    const aios_decoder_config *c = aios_decoder_get_config(d);
    if (p.resume) { /* the run's settings come from its state */
        if ((s = aios__train_state_load(p.resume, &st)) != AIOS_OK) {
            s = aios__err_prefix(s, "train: resume %s", p.resume);
            goto out;
        }
        p.lr = st.lr, p.cosine = st.cosine, p.warmup = st.warmup, p.batch = st.batch, p.accum = st.accum;
        p.clip = st.clip, p.weight_decay = st.weight_decay, p.seed = st.seed, p.max_len = st.max_len;
    }
    int64_t max_len = p.max_len > 0 ? p.max_len : AIOS_MIN(c->n_ctx_train, (int64_t)2048);
    max_len = AIOS_MIN(max_len, c->n_ctx_train);
    /* the adapter */
    if (p.resume) {
        if ((s = aios_lora_load(p.resume, c, &a)) != AIOS_OK) goto out;
        if (a->n_params != st.n_params || adapter_hash(a) != st.adapter_hash) {
            s = aios__err(AIOS_ERR_FORMAT,
                          "train: resume %s: the adapter there is not the one its trainer state was saved with "
                          "(overwritten by another run, or a torn write)",
                          p.resume);
            goto out;
        }
        a->dropout = st.dropout;
    } else if (p.init_adapter) {
        if ((s = aios_lora_load(p.init_adapter, c, &a)) != AIOS_OK) goto out;
        if (p.dropout > 0) a->dropout = p.dropout;
    } else {
        unsigned targets;
        if ((s = aios_lora_targets_parse(p.targets, &targets)) != AIOS_OK) goto out;
        if ((s = aios_lora_create(c, targets, p.rank, p.alpha, p.rslora, &a)) != AIOS_OK) goto out;
        aios_lora_init_default(a, p.seed);
        a->dropout = p.dropout;
    }
    snprintf(a->base_model, sizeof a->base_model, "%s", model);
    {
        const char *src = data ? data : p.from_store, *base = strrchr(src, '/');
        base = base && base[1] ? base + 1 : src;
        snprintf(a->name, sizeof a->name, "%s", p.name ? p.name : base);
        char *dot = strrchr(a->name, '.');
        if (!p.name && dot) *dot = 0;
    }
    if (data && (s = load_data(g, data, max_len, &ex, &r.skipped_truncated)) != AIOS_OK) goto out;
    if (p.from_store && (s = load_store(g, p.from_store, max_len, &ex, &r.skipped_truncated)) != AIOS_OK) goto out;
    r.examples = ex.n;
    int64_t bs = p.batch > 0 ? p.batch : AIOS_MIN(ex.n, (int64_t)8);
    int32_t pad = aios__generator_pad(g);
    if (pad < 0) pad = 0;
    if ((s = make_batches(&ex, bs, pad, &bt, &nb)) != AIOS_OK) goto out;
    const int64_t steps_per_epoch = AIOS_MAX((nb + p.accum - 1) / p.accum, (int64_t)1);
    const int64_t epochs = p.epochs > 0 ? p.epochs
                                        : (AIOS_TRAIN_MIN_STEPS + steps_per_epoch - 1) / steps_per_epoch;
    int64_t total = p.steps > 0 ? p.steps : steps_per_epoch * epochs;
    if (p.resume) {
        if (ex.n != st.examples || nb != st.n_batches || batches_hash(bt, nb) != st.data_hash) {
            s = aios__err(AIOS_ERR_INVALID_ARG,
                          "train: resume %s: the data differ from the run's (%lld examples in %lld batches now, %lld in "
                          "%lld then, or other tokens): resume with the same data and model",
                          p.resume, (long long)ex.n, (long long)nb, (long long)st.examples, (long long)st.n_batches);
            goto out;
        }
        if (p.steps <= 0 && p.epochs <= 0) total = st.total_steps;
        if (total <= st.step) {
            s = aios__err(AIOS_ERR_INVALID_ARG, "train: resume %s: the run has done %lld of %lld steps; ask for more steps to go on",
                          p.resume, (long long)st.step, (long long)total);
            goto out;
        }
        if (total != st.total_steps && (p.cosine || p.warmup > st.step))
            aios_log(AIOS_LOG_WARN, "train: resume %s: %lld steps instead of the run's %lld: the rest of the lr schedule is stretched",
                     p.resume, (long long)total, (long long)st.total_steps);
    }
    if (p.lr == 0) p.lr = aios_train_auto_lr(ex.n);
    r.lr = p.lr;
    r.total_steps = total;
    if ((s = aios_trainer_create(d, a, p.seed, &tr)) != AIOS_OK) goto out;
    aios_trainer_set_checkpoint(tr, p.checkpoint);
    if ((s = aios_adamw_init(&opt, a->n_params, p.lr, p.resume ? st.beta1 : 0.9, p.resume ? st.beta2 : 0.999,
                             p.resume ? st.eps : 1e-8, p.weight_decay)) != AIOS_OK)
        goto out;
    good = malloc((size_t)a->n_params * sizeof(float));
    if (!good) {
        s = aios__err(AIOS_ERR_NOMEM, "train");
        goto out;
    }
    if (p.log_jsonl && !(log = fopen(p.log_jsonl, p.resume ? "a" : "w"))) { /* a resumed run goes on with the log */
        s = aios__err(AIOS_ERR_IO, "train: --log-jsonl %s: %s", p.log_jsonl, strerror(errno));
        goto out;
    }
    int64_t *order = malloc((size_t)nb * sizeof *order);
    if (!order) {
        s = aios__err(AIOS_ERR_NOMEM, "train");
        goto out;
    }
    for (int64_t i = 0; i < nb; i++) order[i] = i;
    uint64_t rng = p.seed * 0x9e3779b97f4a7c15ull + 1;
    int64_t cursor = nb; /* position in the epoch's order; nb = reshuffle */
    const double t_start = aios__now();
    int64_t label_tokens = 0, run_tokens = 0, step0 = 0;
    if (p.resume) { /* everything the next step depends on, as the run left it */
        memcpy(opt.m, st.m, (size_t)a->n_params * sizeof(float));
        memcpy(opt.v, st.v, (size_t)a->n_params * sizeof(float));
        opt.step = st.step;
        memcpy(order, st.order, (size_t)nb * sizeof *order);
        rng = st.shuffle_rng, cursor = st.cursor;
        aios_trainer_set_rng(tr, st.dropout_rng);
        label_tokens = st.label_tokens;
        r.first_loss = st.first_loss;
        r.steps = step0 = st.step;
    }
    /* the state of the run after r.steps steps, written next to the adapter at `path` */
#define SAVE_STATE(path)                                                                                             \
    do {                                                                                                             \
        aios__train_state w_ = {.step = r.steps, .total_steps = total, .lr = p.lr, .beta1 = opt.beta1,              \
                                .beta2 = opt.beta2, .eps = opt.eps, .weight_decay = p.weight_decay, .clip = p.clip, \
                                .dropout = a->dropout,                                                              \
                                .cosine = p.cosine, .warmup = p.warmup, .batch = bs, .accum = p.accum,             \
                                .max_len = max_len, .seed = p.seed, .examples = ex.n, .n_batches = nb,             \
                                .n_params = a->n_params, .data_hash = data_hash, .adapter_hash = adapter_hash(a),   \
                                .shuffle_rng = rng, .dropout_rng = aios_trainer_rng(tr), .cursor = cursor,         \
                                .label_tokens = label_tokens, .first_loss = r.first_loss, .m = opt.m, .v = opt.v,  \
                                .order = order};                                                                    \
        s = aios__train_state_save((path), &w_);                                                                     \
    } while (0)
    const uint64_t data_hash = keep_state ? batches_hash(bt, nb) : 0;
    for (int64_t step = step0; step < total; step++) {
        memcpy(good, a->data, (size_t)a->n_params * sizeof(float));
        aios_trainer_zero_grad(tr);
        double step_loss = 0;
        for (int64_t k = 0; k < p.accum; k++) {
            if (cursor >= nb) {
                for (int64_t i = 0; i < nb; i++) order[i] = i;
                for (int64_t i = nb - 1; i > 0; i--) {
                    int64_t j = (int64_t)(aios_lora_rng_next(&rng) % (uint64_t)(i + 1)), tmp = order[i];
                    order[i] = order[j], order[j] = tmp;
                }
                cursor = 0;
            }
            double loss = 0;
            int64_t nl = 0;
            s = aios_trainer_step(tr, &bt[order[cursor++]].b, 1.0f / (float)p.accum, 1, &loss, &nl);
            if (s != AIOS_OK) break;
            step_loss += loss / (double)p.accum;
            label_tokens += nl, run_tokens += nl;
        }
        if (s != AIOS_OK) {
            s = aios__err_prefix(s, "train: step %lld (the adapter of step %lld is kept)", (long long)step, (long long)step);
            break;
        }
        float *gr = aios_trainer_grad(tr);
        double gn = aios_grad_clip(gr, a->n_params, p.clip);
        if (!isfinite(gn)) {
            s = aios__err(AIOS_ERR_RANGE, "train: step %lld: gradient norm is %g (the adapter of step %lld is kept)",
                          (long long)step, gn, (long long)step);
            break;
        }
        double lr = aios_lr_at(p.cosine ? AIOS_SCHED_COSINE : AIOS_SCHED_CONSTANT, p.lr, step, p.warmup, total);
        aios_adamw_step(&opt, a->data, gr, lr);
        aios_lora_changed(a); /* Arrow's prototypes kept with it are stale */
        if (step == 0) r.first_loss = step_loss;
        r.last_loss = step_loss;
        r.steps = step + 1;
        if (p.save_every > 0 && r.steps % p.save_every == 0 && r.steps < total) {
            char cp[4200];
            r.label_tokens = label_tokens;
            if ((s = checkpoint_path(out, r.steps, cp, sizeof cp)) == AIOS_OK && (s = save_adapter(a, cp, &r, &p)) == AIOS_OK)
                SAVE_STATE(cp);
            if (s != AIOS_OK) {
                s = aios__err_prefix(s, "train: checkpoint of step %lld", (long long)r.steps);
                memcpy(good, a->data, (size_t)a->n_params * sizeof(float));
                break;
            }
        }
        if (log) {
            fprintf(log, "{\"step\": %lld, \"loss\": %.9g, \"grad_norm\": %.9g, \"lr\": %.9g}\n", (long long)step, step_loss, gn, lr);
            fflush(log);
        }
        if (p.progress) {
            double el = aios__now() - t_start;
            aios_train_progress pr = {step + 1, total, step_loss, gn, lr, el > 0 ? (double)run_tokens / el : 0, el,
                                      el / (double)(step + 1 - step0) * (double)(total - step - 1)};
            if (p.progress(p.progress_user, &pr)) {
                r.stopped = 1;
                break;
            }
        }
    }
    r.label_tokens = label_tokens;
    r.activation_bytes = aios_trainer_activation_bytes(tr);
    if (s != AIOS_OK) memcpy(a->data, good, (size_t)a->n_params * sizeof(float)), aios_lora_changed(a); /* the last good adapter */
    {
        aios_status ws = save_adapter(a, out, &r, &p);
        /* the state only of a run that stopped cleanly (after a failure the adapter is an older
         * step's: an older state next to it is refused by the adapter's fingerprint) */
        if (ws == AIOS_OK && s == AIOS_OK && keep_state) {
            SAVE_STATE(out);
            ws = s, s = AIOS_OK;
        }
        if (s == AIOS_OK) s = ws;
    }
#undef SAVE_STATE
    free(order);
out:
    r.seconds = aios__now() - t0;
    if (res) *res = r;
    if (log) fclose(log);
    free(good);
    aios__train_state_free(&st);
    aios_adamw_free(&opt);
    aios_trainer_free(tr);
    for (int64_t k = 0; bt && k < nb; k++) free(bt[k].tok), free(bt[k].lab), free(bt[k].mask);
    free(bt);
    examples_free(&ex);
    aios_lora_free(a);
    aios_generator_free(g);
    return s;
}

/* ------------------------------------------------------------------------------------------
 * evaluation: the training loss (no dropout, no gradient) of a data file, with or without an
 * adapter
 * ------------------------------------------------------------------------------------------ */

aios_status aios_train_eval(const char *model, const char *data, const char *adapter, double *mean_loss, int64_t *n_tokens) {
    if (!model || !data || !mean_loss) return aios__err(AIOS_ERR_INVALID_ARG, "eval: model, data and an output are required");
    aios_generator *g = NULL;
    AIOS_TRY(open_model(model, &g));
    aios_decoder *d = aios__generator_decoder(g);
    aios_status s = AIOS_OK;
    examples ex = {0};
    batch *bt = NULL;
    int64_t nb = 0, total_labels = 0;
    aios_lora *a = NULL;
    aios_trainer *tr = NULL;
    double sum = 0;
    if (!d) {
        s = aios__err(AIOS_ERR_UNSUPPORTED, "eval: %s is not a Llama/Qwen decoder model", model);
        goto out;
    }
    const aios_decoder_config *c = aios_decoder_get_config(d);
    if (adapter) s = aios_lora_load(adapter, c, &a);
    else s = aios_lora_create(c, 1u << AIOS_LORA_Q, 1, 1.0, 0, &a); /* zero: the base model */
    if (s) goto out;
    a->dropout = 0;
    int64_t truncated = 0;
    if ((s = load_data(g, data, AIOS_MIN(c->n_ctx_train, (int64_t)2048), &ex, &truncated)) != AIOS_OK) goto out;
    int32_t pad = aios__generator_pad(g);
    if ((s = make_batches(&ex, 8, pad < 0 ? 0 : pad, &bt, &nb)) != AIOS_OK) goto out;
    if ((s = aios_trainer_create(d, a, 0, &tr)) != AIOS_OK) goto out;
    for (int64_t k = 0; k < nb && !s; k++) {
        double loss = 0;
        int64_t nl = 0;
        s = aios_trainer_step(tr, &bt[k].b, 1.0f, 0, &loss, &nl);
        sum += loss * (double)nl;
        total_labels += nl;
    }
    if (!s && !total_labels) s = aios__err(AIOS_ERR_INVALID_ARG, "eval: %s has no answer tokens", data);
out:
    *mean_loss = total_labels ? sum / (double)total_labels : NAN;
    if (n_tokens) *n_tokens = total_labels;
    aios_trainer_free(tr);
    for (int64_t k = 0; bt && k < nb; k++) free(bt[k].tok), free(bt[k].lab), free(bt[k].mask);
    free(bt);
    examples_free(&ex);
    aios_lora_free(a);
    aios_generator_free(g);
    return s;
}

/* ------------------------------------------------------------------------------------------
 * merge / convert
 * ------------------------------------------------------------------------------------------ */

static aios_status copy_file(const char *from, const char *to) {
    char *buf = NULL;
    size_t n = 0;
    AIOS_TRY(aios__read_file(from, &buf, &n));
    FILE *f = fopen(to, "wb");
    aios_status s = AIOS_OK;
    if (!f || fwrite(buf, 1, n, f) != n) s = aios__err(AIOS_ERR_IO, "%s: %s", to, strerror(errno));
    if (f && fclose(f) != 0 && s == AIOS_OK) s = aios__err(AIOS_ERR_IO, "%s: %s", to, strerror(errno));
    free(buf);
    return s;
}

aios_status aios_lora_merge(const char *model, const char *adapter, float scale, const char *out_dir) {
    struct stat sb;
    char p[4096], q[4096];
    snprintf(p, sizeof p, "%s/config.json", model);
    if (stat(model, &sb) != 0 || !S_ISDIR(sb.st_mode) || stat(p, &sb) != 0)
        return aios__err(AIOS_ERR_UNSUPPORTED, "lora merge: %s: the model must be a Hugging Face directory with config.json", model);
    aios_generator *g = NULL;
    aios_generator_params gp = aios_generator_default_params();
    gp.n_ctx = 16;
    AIOS_TRY(aios_generator_open(model, &gp, &g));
    aios_decoder *d = aios__generator_decoder(g);
    aios_lora *a = NULL;
    aios_status s = d ? aios_lora_load(adapter, aios_decoder_get_config(d), &a)
                      : aios__err(AIOS_ERR_UNSUPPORTED, "lora merge: %s is not a decoder", model);
    aios_model *m = NULL;
    aios_tensor *ts = NULL;
    const aios_tensor **tp = NULL;
    float **bufs = NULL;
    int64_t n = 0;
    if (s == AIOS_OK) s = aios_model_open(model, NULL, &m);
    if (s == AIOS_OK && mkdir(out_dir, 0777) != 0 && errno != EEXIST) s = aios__err(AIOS_ERR_IO, "%s: %s", out_dir, strerror(errno));
    if (s != AIOS_OK) goto out;
    n = aios_model_num_tensors(m);
    ts = calloc((size_t)n, sizeof *ts);
    tp = calloc((size_t)n, sizeof *tp);
    bufs = calloc((size_t)n, sizeof *bufs);
    if (!ts || !tp || !bufs) {
        s = aios__err(AIOS_ERR_NOMEM, "lora merge");
        goto out;
    }
    const float sc = scale * aios_lora_scaling(a);
    for (int64_t i = 0; i < n && s == AIOS_OK; i++) {
        const aios_tensor *t = aios_model_tensor_at(m, i);
        int64_t numel = aios_tensor_numel(t);
        bufs[i] = malloc((size_t)AIOS_MAX(numel, 1) * sizeof(float));
        if (!bufs[i]) {
            s = aios__err(AIOS_ERR_NOMEM, "lora merge: %s", t->name);
            break;
        }
        if ((s = aios_model_tensor_f32(m, i, bufs[i])) != AIOS_OK) break;
        ts[i] = *t;
        ts[i].dtype = AIOS_DTYPE_F32;
        ts[i].data = bufs[i];
        ts[i].nbytes = (size_t)numel * sizeof(float);
        ts[i].scales = ts[i].zero_points = NULL;
        ts[i].n_scales = 0, ts[i].quant_axis = 0, ts[i].group_size = 0;
        tp[i] = &ts[i];
        long long l;
        char rest[128];
        if (sscanf(t->name, "model.layers.%lld.%127s", &l, rest) != 2) continue;
        for (int tg = 0; tg < AIOS_LORA_N_TARGETS; tg++) {
            char want[160];
            snprintf(want, sizeof want, "%s.weight", aios_lora_target_path(tg));
            const aios_lora_module *md = strcmp(rest, want) ? NULL : aios_lora_get(a, l, tg);
            if (!md) continue;
            for (int64_t o = 0; o < md->n_out; o++)
                for (int64_t j = 0; j < md->n_in; j++) {
                    float acc = 0;
                    for (int64_t k = 0; k < md->r; k++) acc += md->B[o * md->r + k] * md->A[k * md->n_in + j];
                    bufs[i][o * md->n_in + j] += sc * acc;
                }
        }
    }
    if (s != AIOS_OK) goto out;
    snprintf(q, sizeof q, "%s/model.safetensors", out_dir);
    if ((s = aios_safetensors_write(q, tp, n, NULL)) != AIOS_OK) goto out;
    static const char *const side[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                       "special_tokens_map.json"};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(side) && s == AIOS_OK; i++) {
        snprintf(p, sizeof p, "%s/%s", model, side[i]);
        snprintf(q, sizeof q, "%s/%s", out_dir, side[i]);
        if (stat(p, &sb) == 0) s = copy_file(p, q);
    }
out:
    for (int64_t i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs), free(ts), free(tp);
    aios_model_free(m);
    aios_lora_free(a);
    aios_generator_free(g);
    return s;
}

aios_status aios_lora_convert(const char *model, const char *in, const char *out) {
    aios_generator *g = NULL;
    aios_generator_params gp = aios_generator_default_params();
    gp.n_ctx = 16;
    AIOS_TRY(aios_generator_open(model, &gp, &g));
    aios_decoder *d = aios__generator_decoder(g);
    aios_lora *a = NULL;
    aios_status s = d ? aios_lora_load(in, aios_decoder_get_config(d), &a)
                      : aios__err(AIOS_ERR_UNSUPPORTED, "lora convert: %s is not a decoder", model);
    if (s == AIOS_OK) {
        if (!a->base_model[0]) snprintf(a->base_model, sizeof a->base_model, "%s", model);
        if (!a->name[0]) {
            const char *b = strrchr(in, '/');
            snprintf(a->name, sizeof a->name, "%s", b && b[1] ? b + 1 : in);
        }
        s = ends_with(out, ".parquet") ? aios_lora_save_card(a, out, NULL) : aios_lora_save_peft(a, out);
    }
    aios_lora_free(a);
    aios_generator_free(g);
    return s;
}
