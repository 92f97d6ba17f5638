/*
 * cli_memory.h — memory-conditioned generation options shared by `aios generate` and
 * `aios chat` (cli_memory.c).
 */
#ifndef AIOS_CLI_MEMORY_H
#define AIOS_CLI_MEMORY_H

#include <stdio.h>

#include "aios.h"
#include "core/internal.h"

typedef struct {
    const char *store, *encoder;
    aios_memory_query q;
    aios_memprompt_params mp;
    aios_memory_retriever *r;
    aios_memcond_hit *hits;
    int32_t n_retrieved;
    aios_memprompt_result last; /* the last conditioned prompt */
} aios_cli_mem;

extern const char *const AIOS_CLI_MEM_USAGE;
void aios_cli_mem_init(aios_cli_mem *m);
/* One option: 0 = not a --memory-* option, 1 = taken (with its value v), -2 = usage error
 * (printed). */
int aios_cli_mem_option(aios_cli_mem *m, const char *a, const char *v);
/* 0, or 2 (printed) when memory options come without --memory-store. */
int aios_cli_mem_check(const aios_cli_mem *m, const char *cmd);
/* Opens the retriever when --memory-store was given. */
aios_status aios_cli_mem_open(aios_cli_mem *m);
/* Retrieves for `query` and renders msgs into m->last.prompt. */
aios_status aios_cli_mem_prompt(aios_cli_mem *m, aios_generator *g, const aios_chat_message *msgs, size_t n, int chat,
                                const char *query, int64_t reserve);
/* "[memory: 2 placed, +31 prompt tokens: id 0.712, id 0.533]" */
void aios_cli_mem_report(const aios_cli_mem *m, FILE *f);
/* chat's /sources: one entry per note with its score, tokens and content. */
void aios_cli_mem_sources(const aios_cli_mem *m, FILE *f);
/* {"retrieved","added_tokens","sources":[{"id","score","tokens","cut","content"}]} (a cJSON *). */
void *aios_cli_mem_json(const aios_cli_mem *m);
void aios_cli_mem_free(aios_cli_mem *m);

#endif
