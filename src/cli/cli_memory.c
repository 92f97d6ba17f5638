/*
 * cli_memory.c — the --memory-* options of `aios generate` and `aios chat`: parse them, open
 * the store's retriever, condition each prompt (aios_generator_memory_prompt) and report the
 * memories used (stderr line, --jsonl object, chat's /sources).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_memory.h"

const char *const AIOS_CLI_MEM_USAGE =
    "  --memory-store DIR   condition on memories: the prompt (chat: each message) is the query,\n"
    "                       the top memories go into the prompt as notes (docs/generate.md)\n"
    "  --memory-encoder DIR embedding model for queries (default: the one the store records)\n"
    "  --memory-top-k K     memories retrieved (default 3)\n"
    "  --memory-min-score S cosine similarity below which a memory is not used (default none)\n"
    "  --memory-filter F=V  only memories whose F (category or source) is V (repeatable)\n"
    "  --memory-max-tokens N  tokens the notes may add to the prompt (default 256; never past\n"
    "                       the context)\n"
    "  --memory-place user|system  notes in the last user message (default) or the system one\n";

void aios_cli_mem_init(aios_cli_mem *m) {
    memset(m, 0, sizeof *m);
    m->q = aios_memory_query_default();
    m->mp = aios_memprompt_default_params();
    m->last.conditioned_index = -1;
}

static int bad(const char *opt, const char *v, const char *want) {
    fprintf(stderr, "aios: %s: invalid value '%s' (expected %s)\n", opt, v, want);
    return -2;
}

static int num(const char *opt, const char *v, double lo, double hi, double *out) {
    char *e;
    errno = 0;
    double x = strtod(v, &e);
    if (!*v || *e || errno || !(x >= lo && x <= hi)) return 0;
    (void)opt;
    *out = x;
    return 1;
}

int aios_cli_mem_option(aios_cli_mem *m, const char *a, const char *v) {
    if (strncmp(a, "--memory-", 9)) return 0;
    if (!v) {
        fprintf(stderr, "aios: %s needs a value\n", a);
        return -2;
    }
    double x;
    if (!strcmp(a, "--memory-store")) m->store = v;
    else if (!strcmp(a, "--memory-encoder")) m->encoder = v;
    else if (!strcmp(a, "--memory-top-k")) {
        if (!num(a, v, 0, 1024, &x) || x != (int)x) return bad(a, v, "an integer 0..1024");
        m->q.top_k = (int32_t)x;
    } else if (!strcmp(a, "--memory-min-score")) {
        if (!num(a, v, -1, 1, &x)) return bad(a, v, "a cosine similarity -1..1");
        m->q.min_score = (float)x;
    } else if (!strcmp(a, "--memory-max-tokens")) {
        if (!num(a, v, 0, 1 << 20, &x) || x != (int64_t)x) return bad(a, v, "an integer 0..1048576");
        m->mp.max_tokens = (int64_t)x;
    } else if (!strcmp(a, "--memory-place")) {
        if (!strcmp(v, "user")) m->mp.place = AIOS_MEMPROMPT_USER;
        else if (!strcmp(v, "system")) m->mp.place = AIOS_MEMPROMPT_SYSTEM;
        else return bad(a, v, "user or system");
    } else if (!strcmp(a, "--memory-filter")) {
        const char *eq = strchr(v, '=');
        if (!eq || !eq[1]) return bad(a, v, "category=VALUE or source=VALUE");
        if (!strncmp(v, "category=", 9)) m->q.category = eq + 1;
        else if (!strncmp(v, "source=", 7)) m->q.source = eq + 1;
        else return bad(a, v, "category=VALUE or source=VALUE");
    } else {
        fprintf(stderr, "aios: unknown option '%s'\n", a);
        return -2;
    }
    return 1;
}

int aios_cli_mem_check(const aios_cli_mem *m, const char *cmd) {
    if (m->store) return 0;
    if (m->encoder || m->q.top_k != 3 || m->q.min_score != -2.0f || m->q.category || m->q.source ||
        m->mp.max_tokens != 256 || m->mp.place != AIOS_MEMPROMPT_USER) {
        fprintf(stderr, "aios: %s: --memory-* options need --memory-store DIR\n", cmd);
        return 2;
    }
    return 0;
}

aios_status aios_cli_mem_open(aios_cli_mem *m) {
    if (!m->store) return AIOS_OK;
    AIOS_TRY(aios_memory_retriever_open(m->store, m->encoder, &m->r));
    m->hits = calloc((size_t)(m->q.top_k > 0 ? m->q.top_k : 1), sizeof *m->hits);
    return m->hits ? AIOS_OK : aios__err(AIOS_ERR_NOMEM, "memory: hits");
}

aios_status aios_cli_mem_prompt(aios_cli_mem *m, aios_generator *g, const aios_chat_message *msgs, size_t n, int chat,
                                const char *query, int64_t reserve) {
    aios_memprompt_result_free(&m->last);
    int32_t nh = 0;
    AIOS_TRY(aios_memory_retrieve(m->r, query, &m->q, m->hits, &nh));
    m->n_retrieved = nh;
    int64_t cap = aios_generator_n_ctx(g) / 2; /* the answer's room never takes more than half */
    if (reserve > cap) reserve = cap;
    return aios_generator_memory_prompt(g, msgs, n, chat, m->hits, nh, &m->mp, reserve, &m->last);
}

void aios_cli_mem_report(const aios_cli_mem *m, FILE *f) {
    const aios_memprompt_result *r = &m->last;
    if (r->n_sources == 0) {
        fprintf(f, "[memory: %d retrieved, none placed: prompt unchanged]\n", (int)m->n_retrieved);
        return;
    }
    fprintf(f, "[memory: %d placed, +%lld prompt tokens:", (int)r->n_sources, (long long)r->n_added_tokens);
    for (int32_t i = 0; i < r->n_sources; i++)
        fprintf(f, "%s %s %.3f%s", i ? "," : "", r->sources[i].id, r->sources[i].score, r->sources[i].cut ? " (cut)" : "");
    fprintf(f, "]\n");
}

void aios_cli_mem_sources(const aios_cli_mem *m, FILE *f) {
    const aios_memprompt_result *r = &m->last;
    if (r->n_sources == 0) {
        fprintf(f, "(no memory in the last prompt)\n");
        return;
    }
    for (int32_t i = 0; i < r->n_sources; i++)
        fprintf(f, "%d. %s  score %.4f  %lld tokens%s\n   %s\n", (int)i + 1, r->sources[i].id, r->sources[i].score,
                (long long)r->sources[i].n_tokens, r->sources[i].cut ? " (cut)" : "", r->sources[i].content);
}

void *aios_cli_mem_json(const aios_cli_mem *m) {
    const aios_memprompt_result *r = &m->last;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "retrieved", m->n_retrieved);
    cJSON_AddNumberToObject(o, "added_tokens", (double)r->n_added_tokens);
    cJSON *a = cJSON_AddArrayToObject(o, "sources");
    for (int32_t i = 0; i < r->n_sources; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "id", r->sources[i].id);
        cJSON_AddNumberToObject(s, "score", r->sources[i].score);
        cJSON_AddNumberToObject(s, "tokens", (double)r->sources[i].n_tokens);
        cJSON_AddBoolToObject(s, "cut", r->sources[i].cut);
        cJSON_AddStringToObject(s, "content", r->sources[i].content);
        cJSON_AddItemToArray(a, s);
    }
    return o;
}

void aios_cli_mem_free(aios_cli_mem *m) {
    aios_memprompt_result_free(&m->last);
    aios_memory_retriever_free(m->r);
    free(m->hits);
    m->r = NULL;
    m->hits = NULL;
}
