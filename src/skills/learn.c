/*
 * learn.c — the evolution loop's records in the memory store (seed schema).
 *
 * Two kinds of memory, told apart by metadata.category:
 *   "learning_queue"  an answer the model was unsure of (score >= evolution.uncertainty_threshold):
 *                     never dropped, never trained on (its answer is the model's own)
 *   "approved"        a question / answer pair a person approved (`aios teach`): what
 *                     `aios evolve` trains on
 * content is a JSON object {"question","answer","score","skills","model"} (score, skills, model
 * on queued answers), the embedding is the question's (the store's encoder), metadata.source
 * is "aios.learn", quality_score the uncertainty score (queued) or 1 (approved).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/internal.h"

aios_status aios_learn_record(aios_store *st, aios_encoder *enc, const aios_learn_item *it, char id_out[AIOS_MEMORY_ID_MAX]) {
    if (!st || !enc || !it || !it->question || !*it->question || !it->answer)
        return aios__err(AIOS_ERR_INVALID_ARG, "learn: a question and an answer are needed");
    if (!*it->answer) return aios__err(AIOS_ERR_INVALID_ARG, "learn: the answer is empty");
    int32_t dim = (int32_t)aios_encoder_dim(enc);
    if (aios_store_dim(st) > 0 && aios_store_dim(st) != dim)
        return aios__err(AIOS_ERR_SHAPE, "learn: the store holds %d-float embeddings, the encoder gives %d", aios_store_dim(st), dim);
    float *v = malloc((size_t)dim * sizeof *v);
    if (!v) return aios__err(AIOS_ERR_NOMEM, "learn");
    aios_status s = aios_encode(enc, it->question, strlen(it->question), v);
    cJSON *j = s ? NULL : cJSON_CreateObject();
    char *text = NULL;
    if (!s && j) {
        cJSON_AddStringToObject(j, "question", it->question);
        cJSON_AddStringToObject(j, "answer", it->answer);
        if (!it->approved) {
            cJSON_AddNumberToObject(j, "score", it->score);
            cJSON_AddStringToObject(j, "skills", it->skills ? it->skills : "");
            cJSON_AddStringToObject(j, "model", it->model ? it->model : "");
        }
        text = cJSON_PrintUnformatted(j);
    }
    if (!s && !text) s = aios__err(AIOS_ERR_NOMEM, "learn");
    if (!s) {
        aios_memory m = {0};
        m.timestamp_us = AIOS_TIMESTAMP_NOW;
        m.content = text;
        m.embedding = v;
        m.dim = dim;
        m.has_metadata = 1;
        m.category = it->approved ? AIOS_LEARN_APPROVED : AIOS_LEARN_QUEUE;
        m.source = "aios.learn";
        m.has_quality = 1;
        m.quality_score = it->approved ? 1.0f : (float)it->score;
        s = aios_store_add(st, &m, id_out);
    }
    free(text);
    cJSON_Delete(j);
    free(v);
    return s;
}

aios_status aios_learn_parse(const aios_memory *m, aios_learn_item *it, char **owned) {
    memset(it, 0, sizeof *it);
    *owned = NULL;
    if (!m->has_metadata || !m->category || (strcmp(m->category, AIOS_LEARN_APPROVED) && strcmp(m->category, AIOS_LEARN_QUEUE)))
        return aios__err(AIOS_ERR_NOT_FOUND, "learn: memory %s is not a learning record", m->memory_id ? m->memory_id : "");
    cJSON *j = m->content ? cJSON_Parse(m->content) : NULL;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "question"), *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
    if (!cJSON_IsString(q) || !cJSON_IsString(a)) {
        cJSON_Delete(j);
        return aios__err(AIOS_ERR_FORMAT, "learn: memory %s: content is not {\"question\", \"answer\"}", m->memory_id ? m->memory_id : "");
    }
    size_t lq = strlen(q->valuestring), la = strlen(a->valuestring);
    char *buf = malloc(lq + la + 2);
    if (!buf) {
        cJSON_Delete(j);
        return aios__err(AIOS_ERR_NOMEM, "learn");
    }
    memcpy(buf, q->valuestring, lq + 1);
    memcpy(buf + lq + 1, a->valuestring, la + 1);
    it->question = buf;
    it->answer = buf + lq + 1;
    it->approved = !strcmp(m->category, AIOS_LEARN_APPROVED);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "score");
    it->score = cJSON_IsNumber(sc) ? sc->valuedouble : (it->approved ? 0 : 1);
    cJSON_Delete(j);
    *owned = buf;
    return AIOS_OK;
}
