/*
 * add.c — skills from adapters (aios_skills_add_adapter, aios_skills_delete) and their routing
 * vectors (aios_skill_vectors): what `aios skills add|remove`, `aios evolve` and the Python
 * EvolutionRouter share.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "format/parquet.h"
#include "model/lora.h"
#include "skills/skills_ops.h"

aios_status aios_skill_vectors(aios_encoder *enc, const char *desc, const char *const *qs, int64_t n, float **demb,
                               float **cent) {
    if (!enc || !demb || !cent || n < 0 || (n && !qs)) return aios__err(AIOS_ERR_INVALID_ARG, "skill vectors: bad arguments");
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

void aios__skill_remove_files(const char *path) {
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
    if (!*e) return aios__err(AIOS_ERR_INVALID_ARG, "%s: a new library needs an encoder (its embedding model)", aios_skills_dir(L));
    AIOS_TRY(aios_encoder_open(e, NULL, enc));
    aios_status s = aios_skills_set_encoder(L, e, (int32_t)aios_encoder_dim(*enc));
    if (s) aios_encoder_free(*enc), *enc = NULL;
    return s;
}

aios_status aios_skills_add_adapter(aios_skill_lib *L, const char *encoder, const char *adapter, const char *name,
                                    const char *description, const char *const *qs, int64_t nq) {
    if (!L || !adapter || !name || nq < 0 || (nq && !qs))
        return aios__err(AIOS_ERR_INVALID_ARG, "skills add: a library, an adapter and a name are needed");
    if (!aios_skills_name_ok(name))
        return aios__err(AIOS_ERR_INVALID_ARG, "skills add: name: letters, digits, '-', '_', '.' (at most 100), got '%s'", name);
    for (int64_t i = 0; i < nq; i++)
        if (!qs[i] || !*qs[i]) return aios__err(AIOS_ERR_INVALID_ARG, "skills add: question %lld is empty", (long long)i);
    if (aios_skills_get(L, name)) return aios__err(AIOS_ERR_EXISTS, "a skill named '%s' exists already", name);
    aios_encoder *enc = NULL;
    aios_lora *a = NULL;
    char rel[256], dst[8400], base[512] = "";
    float *demb = NULL, *cent = NULL;
    int placed = 0;
    aios_status s = open_encoder(L, encoder, &enc);
    int card = !is_dir(adapter);
    if (!s && card) s = card_base_model(adapter, base, sizeof base);
    if (!s && !card) s = aios_lora_load_peft(adapter, NULL, &a);
    if (!s) {
        snprintf(rel, sizeof rel, card ? "%s.parquet" : "%s", name);
        snprintf(dst, sizeof dst, "%s/%s", aios_skills_dir(L), rel);
        if (path_exists(dst)) s = aios__err(AIOS_ERR_EXISTS, "%s exists already", dst);
        else if (card) s = copy_file(adapter, dst);
        else s = aios_lora_save_peft(a, dst);
        placed = !s;
    }
    if (a) snprintf(base, sizeof base, "%s", a->base_model);
    const char *desc = description ? description : name;
    if (!s) s = aios_skill_vectors(enc, desc, qs, nq, &demb, &cent);
    if (!s) {
        aios_skill k = {0};
        k.name = (char *)name;
        k.description = (char *)desc;
        k.description_embedding = demb;
        k.centroid = cent;
        k.adapter = rel;
        k.base_model = base[0] ? base : NULL;
        k.n_pairs = nq;
        k.lr = NAN, k.loss_before = k.loss_after = k.ppl_before = k.ppl_after = NAN;
        s = aios_skills_add(L, &k);
    }
    if (s && placed) aios__skill_remove_files(dst);
    free(demb), free(cent);
    aios_lora_free(a);
    aios_encoder_free(enc);
    return s;
}

aios_status aios_skills_delete(aios_skill_lib *L, const char *name) {
    if (!L || !name) return aios__err(AIOS_ERR_INVALID_ARG, "skills remove: a library and a name are needed");
    const aios_skill *k = aios_skills_get(L, name);
    if (!k) return aios__err(AIOS_ERR_NOT_FOUND, "no skill named '%s' in %s", name, aios_skills_dir(L));
    char path[8400] = "";
    if (k->adapter && k->adapter[0] != '/') AIOS_TRY(aios_skills_adapter_path(L, k, path, sizeof path));
    AIOS_TRY(aios_skills_remove(L, name));
    if (path[0]) aios__skill_remove_files(path);
    return AIOS_OK;
}
