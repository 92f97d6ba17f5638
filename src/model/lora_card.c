/*
 * lora_card.c — the LoRA skill card (DESIGN.md §3): one Parquet file, one row per adapted
 * module.
 *
 *   module  string   "model.layers.N.self_attn.q_proj" (PEFT's module path, prefix dropped)
 *   rank    int32
 *   alpha   float    (lora_alpha; the scaling is alpha / rank, or alpha / sqrt(rank) with
 *                     aios.card.rslora = "1")
 *   lora_a  binary   float32 little-endian, shape [rank, in]
 *   lora_b  binary   float32 little-endian, shape [out, rank]
 * Key-value metadata: aios.card.version "1" (readers refuse other versions), aios.card.name,
 * aios.card.base_model, aios.card.targets ("q_proj,v_proj"), aios.card.rslora, and the
 * training facts the writer passes (aios.train.*).  Any Parquet tool reads it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "format/parquet.h"
#include "model/lora.h"

#define CARD_VERSION "1"

aios_status aios_lora_save_card(const aios_lora *a, const char *path, const char *const *meta_kv) {
    const aios_pq_field f[] = {
        {.name = "module", .parent = -1, .kind = AIOS_PQ_K_STRING},
        {.name = "rank", .parent = -1, .kind = AIOS_PQ_K_INT32},
        {.name = "alpha", .parent = -1, .kind = AIOS_PQ_K_FLOAT},
        {.name = "lora_a", .parent = -1, .kind = AIOS_PQ_K_BINARY, .no_dictionary = 1},
        {.name = "lora_b", .parent = -1, .kind = AIOS_PQ_K_BINARY, .no_dictionary = 1},
    };
    const int64_t n = a->n_mods;
    char (*names)[128] = calloc((size_t)AIOS_MAX(n, 1), sizeof *names);
    aios_pq_bytes *mod = calloc((size_t)AIOS_MAX(n, 1), sizeof *mod), *la = calloc((size_t)AIOS_MAX(n, 1), sizeof *la),
                  *lb = calloc((size_t)AIOS_MAX(n, 1), sizeof *lb);
    int32_t *rank = calloc((size_t)AIOS_MAX(n, 1), sizeof *rank);
    float *alpha = calloc((size_t)AIOS_MAX(n, 1), sizeof *alpha);
    aios_status s = AIOS_OK;
    aios_pq_writer *w = NULL;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!names || !mod || !la || !lb || !rank || !alpha) {
        s = aios__err(AIOS_ERR_NOMEM, "skill card");
        goto out;
    }
    for (int64_t k = 0; k < n; k++) {
        const aios_lora_module *m = &a->mods[k];
        snprintf(names[k], sizeof names[0], "model.layers.%lld.%s", (long long)m->layer, aios_lora_target_path(m->target));
        mod[k] = (aios_pq_bytes){(const uint8_t *)names[k], strlen(names[k])};
        la[k] = (aios_pq_bytes){(const uint8_t *)m->A, (size_t)(m->r * m->n_in) * sizeof(float)};
        lb[k] = (aios_pq_bytes){(const uint8_t *)m->B, (size_t)(m->r * m->n_out) * sizeof(float)};
        rank[k] = (int32_t)m->r;
        alpha[k] = (float)a->alpha;
    }
    aios_pq_writer_params wp = aios_pq_writer_default_params();
    if ((s = aios_pq_writer_open(tmp, f, 5, &wp, &w)) != AIOS_OK) goto out;
    char targets[128] = "";
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++)
        if ((a->targets >> t) & 1)
            snprintf(targets + strlen(targets), sizeof targets - strlen(targets), "%s%s", targets[0] ? "," : "",
                     aios_lora_target_name(t));
    char alpha_s[64], drop_s[64];
    snprintf(alpha_s, sizeof alpha_s, "%.17g", a->alpha);
    snprintf(drop_s, sizeof drop_s, "%.17g", a->dropout);
    const char *kv[] = {"aios.card.version", CARD_VERSION, "aios.card.name", a->name, "aios.card.base_model", a->base_model,
                        "aios.card.targets", targets, "aios.card.rslora", a->rslora ? "1" : "0", "aios.card.alpha", alpha_s,
                        "aios.card.lora_dropout", drop_s};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(kv) && s == AIOS_OK; i += 2) s = aios_pq_writer_set_kv(w, kv[i], kv[i + 1]);
    for (size_t i = 0; meta_kv && meta_kv[i] && meta_kv[i + 1] && s == AIOS_OK; i += 2)
        s = aios_pq_writer_set_kv(w, meta_kv[i], meta_kv[i + 1]);
    if (s == AIOS_OK) s = aios_pq_writer_write(w, 0, &(aios_pq_batch){.num_rows = n, .bytes = mod});
    if (s == AIOS_OK) s = aios_pq_writer_write(w, 1, &(aios_pq_batch){.num_rows = n, .values = rank});
    if (s == AIOS_OK) s = aios_pq_writer_write(w, 2, &(aios_pq_batch){.num_rows = n, .values = alpha});
    if (s == AIOS_OK) s = aios_pq_writer_write(w, 3, &(aios_pq_batch){.num_rows = n, .bytes = la});
    if (s == AIOS_OK) s = aios_pq_writer_write(w, 4, &(aios_pq_batch){.num_rows = n, .bytes = lb});
    if (s == AIOS_OK) s = aios_pq_writer_end_batch(w, n);
    if (s != AIOS_OK) {
        aios_pq_writer_abort(w);
        w = NULL;
        unlink(tmp);
        goto out;
    }
    s = aios_pq_writer_close(w);
    w = NULL;
    if (s == AIOS_OK && rename(tmp, path) != 0) s = aios__err(AIOS_ERR_IO, "%s: %s", path, strerror(errno));
    if (s != AIOS_OK) unlink(tmp);
out:
    free(names), free(mod), free(la), free(lb), free(rank), free(alpha);
    return s;
}

static int parse_module(const char *s, size_t n, int64_t *layer, int *target) {
    char buf[160];
    if (n >= sizeof buf) return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    const char *p = buf;
    if (!strncmp(p, "base_model.model.", 17)) p += 17;
    if (strncmp(p, "model.layers.", 13)) return 0;
    p += 13;
    char *end;
    errno = 0;
    long long l = strtoll(p, &end, 10);
    if (end == p || *end != '.' || errno || l < 0 || l > 4095) return 0;
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++)
        if (!strcmp(end + 1, aios_lora_target_path(t))) {
            *layer = l, *target = t;
            return 1;
        }
    return 0;
}

aios_status aios_lora_load_card(const char *path, const aios_decoder_config *c, aios_lora **out) {
    *out = NULL;
    if (!c) return aios__err(AIOS_ERR_INVALID_ARG, "skill card %s: loading needs the model's configuration", path);
    aios_parquet_file *pf = NULL;
    AIOS_TRY(aios_parquet_open(path, &pf));
    aios_status s = AIOS_OK;
    aios_pq_column col[5];
    memset(col, 0, sizeof col);
    aios_lora *a = NULL;
    int64_t *layer = NULL;
    int *target = NULL;
    const char *ver = aios_pq_kv_get(pf, "aios.card.version");
    if (!ver || strcmp(ver, CARD_VERSION)) {
        s = aios__err(AIOS_ERR_UNSUPPORTED, "skill card %s: aios.card.version %s (this reader knows %s)", path,
                      ver ? ver : "missing", CARD_VERSION);
        goto out;
    }
    static const char *const names[5] = {"module", "rank", "alpha", "lora_a", "lora_b"};
    static const aios_pq_type types[5] = {AIOS_PQ_BYTE_ARRAY, AIOS_PQ_INT32, AIOS_PQ_FLOAT, AIOS_PQ_BYTE_ARRAY,
                                          AIOS_PQ_BYTE_ARRAY};
    for (int i = 0; i < 5; i++) {
        int leaf = aios_pq_find_leaf(pf, names[i]);
        if (leaf < 0) {
            s = aios__err(AIOS_ERR_FORMAT, "skill card %s: column '%s' missing", path, names[i]);
            goto out;
        }
        if ((s = aios_pq_read_column(pf, -1, leaf, &col[i])) != AIOS_OK) goto out;
        if (col[i].type != types[i] || col[i].max_rep != 0 || col[i].null_count) {
            s = aios__err(AIOS_ERR_FORMAT, "skill card %s: column '%s' has the wrong type or nulls", path, names[i]);
            goto out;
        }
    }
    const int64_t n = col[0].num_rows;
    if (n <= 0) {
        s = aios__err(AIOS_ERR_FORMAT, "skill card %s: no modules", path);
        goto out;
    }
    layer = calloc((size_t)n, sizeof *layer);
    target = calloc((size_t)n, sizeof *target);
    if (!layer || !target) {
        s = aios__err(AIOS_ERR_NOMEM, "skill card");
        goto out;
    }
    const int32_t *rank = col[1].values;
    const float *alpha = col[2].values;
    unsigned targets = 0;
    int64_t n_layer = 0, dims[AIOS_LORA_N_TARGETS][2] = {{0}};
    for (int64_t k = 0; k < n; k++) {
        if (!parse_module((const char *)col[0].bytes[k].ptr, col[0].bytes[k].len, &layer[k], &target[k])) {
            s = aios__err(AIOS_ERR_FORMAT, "skill card %s: row %lld: module '%.*s' is not a decoder projection", path,
                          (long long)k, (int)AIOS_MIN(col[0].bytes[k].len, 120), (const char *)col[0].bytes[k].ptr);
            goto out;
        }
        if (rank[k] != rank[0] || alpha[k] != alpha[0] || rank[k] <= 0 || rank[k] > 4096) {
            s = aios__err(AIOS_ERR_UNSUPPORTED, "skill card %s: row %lld: rank %d / alpha %g (one rank and alpha for all, "
                          "rank 1..4096)", path, (long long)k, rank[k], alpha[k]);
            goto out;
        }
        size_t la = col[3].bytes[k].len, lb = col[4].bytes[k].len, r = (size_t)rank[k];
        if (!la || !lb || la % (r * 4) || lb % (r * 4)) {
            s = aios__err(AIOS_ERR_SHAPE, "skill card %s: row %lld: lora_a / lora_b sizes %zu / %zu do not fit rank %zu", path,
                          (long long)k, la, lb, r);
            goto out;
        }
        int64_t in = (int64_t)(la / (r * 4)), o = (int64_t)(lb / (r * 4)), t = target[k];
        if ((dims[t][0] && (dims[t][0] != o || dims[t][1] != in))) {
            s = aios__err(AIOS_ERR_SHAPE, "skill card %s: row %lld: layers disagree on %s's size", path, (long long)k,
                          aios_lora_target_name((int)t));
            goto out;
        }
        dims[t][0] = o, dims[t][1] = in;
        targets |= 1u << t;
        n_layer = AIOS_MAX(n_layer, layer[k] + 1);
    }
    {
        if (n_layer > c->n_layer) {
            s = aios__err(AIOS_ERR_SHAPE, "skill card %s: layer %lld beyond the model's %lld", path, (long long)(n_layer - 1),
                          (long long)c->n_layer);
            goto out;
        }
        n_layer = c->n_layer;
    }
    const char *rs = aios_pq_kv_get(pf, "aios.card.rslora");
    const char *as = aios_pq_kv_get(pf, "aios.card.alpha");
    double alpha_d = as ? strtod(as, NULL) : alpha[0];
    if (!(fabs(alpha_d - alpha[0]) <= 1e-6 * fabs(alpha_d))) alpha_d = alpha[0];
    const char *ds = aios_pq_kv_get(pf, "aios.card.lora_dropout");
    double dropout = 0; /* absent: a card written before the key */
    if (ds) {
        char *end;
        dropout = strtod(ds, &end);
        if (end == ds || *end || !(dropout >= 0 && dropout < 1)) {
            s = aios__err(AIOS_ERR_FORMAT, "skill card %s: aios.card.lora_dropout '%.40s' is not a number in [0, 1)", path,
                          ds);
            goto out;
        }
    }
    if ((s = aios_lora_create(c, targets, rank[0], alpha_d, rs && !strcmp(rs, "1"), &a)) != AIOS_OK) goto out;
    a->dropout = dropout;
    if ((s = aios_lora_check(a, c)) != AIOS_OK) goto out;
    for (int t = 0; t < AIOS_LORA_N_TARGETS; t++) {
        int64_t o, i;
        aios_lora_target_dims(c, t, &o, &i);
        if (((targets >> t) & 1) && (dims[t][0] != o || dims[t][1] != i)) {
            s = aios__err(AIOS_ERR_SHAPE, "skill card %s: %s is (%lld, %lld), the model's is (%lld, %lld)", path,
                          aios_lora_target_name(t), (long long)dims[t][0], (long long)dims[t][1], (long long)o, (long long)i);
            goto out;
        }
    }
    /* every (layer, target) once */
    unsigned char *seen = calloc((size_t)(n_layer * AIOS_LORA_N_TARGETS), 1);
    if (!seen) {
        s = aios__err(AIOS_ERR_NOMEM, "skill card");
        goto out;
    }
    for (int64_t k = 0; k < n && s == AIOS_OK; k++) {
        if (seen[layer[k] * AIOS_LORA_N_TARGETS + target[k]]++) {
            s = aios__err(AIOS_ERR_FORMAT, "skill card %s: row %lld: module repeated", path, (long long)k);
            break;
        }
        aios_lora_module *m = (aios_lora_module *)aios_lora_get(a, layer[k], target[k]);
        memcpy(m->A, col[3].bytes[k].ptr, col[3].bytes[k].len);
        memcpy(m->B, col[4].bytes[k].ptr, col[4].bytes[k].len);
    }
    if (s == AIOS_OK && n != a->n_mods)
        s = aios__err(AIOS_ERR_FORMAT, "skill card %s: %lld modules for %lld layers x targets (a layer is missing)", path,
                      (long long)n, (long long)a->n_mods);
    free(seen);
    if (s != AIOS_OK) goto out;
    const char *nm = aios_pq_kv_get(pf, "aios.card.name"), *bm = aios_pq_kv_get(pf, "aios.card.base_model");
    snprintf(a->name, sizeof a->name, "%s", nm ? nm : "");
    snprintf(a->base_model, sizeof a->base_model, "%s", bm ? bm : "");
out:
    for (int i = 0; i < 5; i++) aios_pq_column_free(&col[i]);
    aios_parquet_close(pf);
    free(layer);
    free(target);
    if (s != AIOS_OK) {
        aios_lora_free(a);
        return s;
    }
    *out = a;
    return AIOS_OK;
}
