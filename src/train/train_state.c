/*
 * train_state.c — the trainer state that `aios train --resume` continues from, next to the
 * adapter it belongs to:
 *
 *   trainer_state.json          the run's position and settings (format "aios-trainer-state",
 *                               version 1): steps done, the planned total, the lr schedule, the
 *                               optimizer's hyper-parameters, the batch layout, both random
 *                               generators, the epoch's cursor, fingerprints of the data and
 *                               of the adapter saved with it
 *   trainer_state.safetensors   AdamW's moments "exp_avg" / "exp_avg_sq" (F32, n_params, in
 *                               the adapter's flat order) and the epoch's batch order "order"
 *                               (I64, n_batches); metadata "format" and "step"
 *
 * For a PEFT directory both go inside it; for a skill card X.parquet they are
 * X.parquet.trainer_state.json / .safetensors.  PyTorch's Trainer keeps optimizer.pt (a pickle);
 * this is our own format, plain JSON + safetensors (docs/training.md "Resuming").
 *
 * Key decisions:
 *  - 64-bit generator states and the seed are decimal strings (JSON numbers are doubles);
 *    doubles are written with the shortest %.15g..%.17g that reads back exactly, so a resumed
 *    run continues bit for bit.
 *  - Both files are written atomically (temporary + rename); the step is in both, and the
 *    adapter's fingerprint in the JSON, so a pair torn by a crash, or an adapter overwritten by
 *    another run, is refused rather than continued from.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "format/safetensors.h"
#include "train/train.h"

#define STATE_FORMAT "aios-trainer-state"
#define STATE_VERSION 1

uint64_t aios__fnv1a64(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

void aios__train_state_free(aios__train_state *st) {
    if (!st) return;
    free(st->m), free(st->v), free(st->order);
    st->m = st->v = NULL;
    st->order = NULL;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* The two file names of the state that belongs to the adapter at `adapter`. */
static void state_paths(const char *adapter, char *json, char *st, size_t n) {
    struct stat sb;
    int dir = !ends_with(adapter, ".parquet") || (stat(adapter, &sb) == 0 && S_ISDIR(sb.st_mode));
    snprintf(json, n, "%s%strainer_state.json", adapter, dir ? "/" : ".");
    snprintf(st, n, "%s%strainer_state.safetensors", adapter, dir ? "/" : ".");
}

static void add_exact(cJSON *o, const char *key, double v) {
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    cJSON_AddRawToObject(o, key, buf);
}

static void add_u64(cJSON *o, const char *key, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    cJSON_AddStringToObject(o, key, buf);
}

char *aios__train_state_json(const aios__train_state *st) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "format", STATE_FORMAT);
    cJSON_AddNumberToObject(o, "version", STATE_VERSION);
    cJSON_AddNumberToObject(o, "step", (double)st->step);
    cJSON_AddNumberToObject(o, "total_steps", (double)st->total_steps);
    add_exact(o, "lr", st->lr);
    cJSON_AddStringToObject(o, "schedule", st->cosine ? "cosine" : "constant");
    cJSON_AddNumberToObject(o, "warmup", (double)st->warmup);
    add_exact(o, "beta1", st->beta1);
    add_exact(o, "beta2", st->beta2);
    add_exact(o, "eps", st->eps);
    add_exact(o, "weight_decay", st->weight_decay);
    add_exact(o, "clip", st->clip);
    add_exact(o, "dropout", st->dropout);
    cJSON_AddNumberToObject(o, "batch", (double)st->batch);
    cJSON_AddNumberToObject(o, "accum", (double)st->accum);
    cJSON_AddNumberToObject(o, "max_len", (double)st->max_len);
    add_u64(o, "seed", st->seed);
    cJSON_AddNumberToObject(o, "examples", (double)st->examples);
    cJSON_AddNumberToObject(o, "n_batches", (double)st->n_batches);
    cJSON_AddNumberToObject(o, "n_params", (double)st->n_params);
    char hex[24];
    snprintf(hex, sizeof hex, "%016" PRIx64, st->data_hash);
    cJSON_AddStringToObject(o, "data_fnv1a64", hex);
    snprintf(hex, sizeof hex, "%016" PRIx64, st->adapter_hash);
    cJSON_AddStringToObject(o, "adapter_fnv1a64", hex);
    add_u64(o, "shuffle_rng", st->shuffle_rng);
    add_u64(o, "dropout_rng", st->dropout_rng);
    cJSON_AddNumberToObject(o, "cursor", (double)st->cursor);
    cJSON_AddNumberToObject(o, "label_tokens", (double)st->label_tokens);
    add_exact(o, "first_loss", st->first_loss);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* ---- parsing: every field required, typed and in range ---- */

static aios_status get_int(const cJSON *o, const char *label, const char *k, int64_t lo, int64_t hi, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) return aios__err(AIOS_ERR_FORMAT, "%s: field '%s' is missing or not a number", label, k);
    double x = v->valuedouble;
    if (!(x >= (double)lo && x <= (double)hi) || x != floor(x))
        return aios__err(AIOS_ERR_FORMAT, "%s: field '%s' = %g is not an integer in %lld..%lld", label, k, x, (long long)lo,
                         (long long)hi);
    *out = (int64_t)x;
    return AIOS_OK;
}

static aios_status get_num(const cJSON *o, const char *label, const char *k, double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) return aios__err(AIOS_ERR_FORMAT, "%s: field '%s' is missing or not a number", label, k);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return aios__err(AIOS_ERR_FORMAT, "%s: field '%s' = %g is outside %g..%g", label, k, v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return AIOS_OK;
}

static aios_status get_u64(const cJSON *o, const char *label, const char *k, int hex, uint64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    char *e = NULL;
    errno = 0;
    unsigned long long x = s && *s && *s != '-' && *s != '+' && *s != ' ' ? strtoull(s, &e, hex ? 16 : 10) : 0;
    if (!s || !*s || !e || *e || errno || (hex && strlen(s) != 16))
        return aios__err(AIOS_ERR_FORMAT, "%s: field '%s' is missing or not a %s string", label, k,
                         hex ? "16-digit hex" : "decimal");
    *out = (uint64_t)x;
    return AIOS_OK;
}

aios_status aios__train_state_parse(const char *text, size_t len, const char *label, aios__train_state *st) {
    memset(st, 0, sizeof *st);
    cJSON *o = cJSON_ParseWithLength(text, len);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return aios__err(AIOS_ERR_FORMAT, "%s: not a JSON object", label);
    }
    aios_status s = AIOS_OK;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "format");
    int64_t version = 0;
    if (!cJSON_IsString(f) || strcmp(f->valuestring, STATE_FORMAT))
        s = aios__err(AIOS_ERR_FORMAT, "%s: field 'format' is not \"%s\"", label, STATE_FORMAT);
    else if ((s = get_int(o, label, "version", 0, 1 << 30, &version)) == AIOS_OK && version != STATE_VERSION)
        s = aios__err(AIOS_ERR_UNSUPPORTED, "%s: version %lld (this build reads version %d)", label, (long long)version,
                      STATE_VERSION);
    const int64_t big = (int64_t)1 << 50;
    if (!s) s = get_int(o, label, "total_steps", 1, big, &st->total_steps);
    if (!s) s = get_int(o, label, "step", 0, st->total_steps, &st->step);
    if (!s) s = get_num(o, label, "lr", 0, 1e6, &st->lr);
    if (!s) {
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(o, "schedule");
        if (cJSON_IsString(sc) && !strcmp(sc->valuestring, "cosine")) st->cosine = 1;
        else if (!cJSON_IsString(sc) || strcmp(sc->valuestring, "constant"))
            s = aios__err(AIOS_ERR_FORMAT, "%s: field 'schedule' is not \"constant\" or \"cosine\"", label);
    }
    if (!s) s = get_int(o, label, "warmup", 0, big, &st->warmup);
    if (!s) s = get_num(o, label, "beta1", 0, 1, &st->beta1);
    if (!s) s = get_num(o, label, "beta2", 0, 1, &st->beta2);
    if (!s) s = get_num(o, label, "eps", 0, 1, &st->eps);
    if (!s) s = get_num(o, label, "weight_decay", 0, 1e6, &st->weight_decay);
    if (!s) s = get_num(o, label, "clip", 0, 1e300, &st->clip);
    if (!s) s = get_num(o, label, "dropout", 0, 0.999999, &st->dropout);
    if (!s) s = get_int(o, label, "batch", 1, big, &st->batch);
    if (!s) s = get_int(o, label, "accum", 1, big, &st->accum);
    if (!s) s = get_int(o, label, "max_len", 1, big, &st->max_len);
    if (!s) s = get_u64(o, label, "seed", 0, &st->seed);
    if (!s) s = get_int(o, label, "examples", 1, big, &st->examples);
    if (!s) s = get_int(o, label, "n_batches", 1, st->examples, &st->n_batches);
    if (!s) s = get_int(o, label, "n_params", 1, big, &st->n_params);
    if (!s) s = get_u64(o, label, "data_fnv1a64", 1, &st->data_hash);
    if (!s) s = get_u64(o, label, "adapter_fnv1a64", 1, &st->adapter_hash);
    if (!s) s = get_u64(o, label, "shuffle_rng", 0, &st->shuffle_rng);
    if (!s) s = get_u64(o, label, "dropout_rng", 0, &st->dropout_rng);
    if (!s) s = get_int(o, label, "cursor", 0, st->n_batches, &st->cursor);
    if (!s) s = get_int(o, label, "label_tokens", 0, big, &st->label_tokens);
    if (!s) s = get_num(o, label, "first_loss", -1e300, 1e300, &st->first_loss);
    cJSON_Delete(o);
    return s;
}

/* ---- files ---- */


aios_status aios__train_state_save(const char *adapter, const aios__train_state *st) {
    char jp[4200], sp[4200], tmp[4300], step[32];
    state_paths(adapter, jp, sp, 4200);
    aios_tensor t[3];
    memset(t, 0, sizeof t);
    const char *names[3] = {"exp_avg", "exp_avg_sq", "order"};
    const void *data[3] = {st->m, st->v, st->order};
    for (int i = 0; i < 3; i++) {
        t[i].name = names[i];
        t[i].dtype = i < 2 ? AIOS_DTYPE_F32 : AIOS_DTYPE_I64;
        t[i].ndim = 1;
        t[i].shape[0] = i < 2 ? st->n_params : st->n_batches;
        t[i].data = data[i];
        t[i].nbytes = (size_t)t[i].shape[0] * (i < 2 ? sizeof(float) : sizeof(int64_t));
    }
    const aios_tensor *tp[3] = {&t[0], &t[1], &t[2]};
    snprintf(step, sizeof step, "%lld", (long long)st->step);
    const char *meta[] = {"format", STATE_FORMAT, "step", step, NULL};
    snprintf(tmp, sizeof tmp, "%s.tmp", sp);
    aios_status s = aios_safetensors_write(tmp, tp, 3, meta);
    if (s == AIOS_OK && rename(tmp, sp) != 0) s = aios__err(AIOS_ERR_IO, "%s: %s", sp, strerror(errno));
    if (s != AIOS_OK) {
        unlink(tmp);
        return s;
    }
    char *js = aios__train_state_json(st);
    if (!js) return aios__err(AIOS_ERR_NOMEM, "train: state");
    s = aios__write_file_atomic(jp, js, strlen(js));
    free(js);
    return s;
}

aios_status aios__train_state_load(const char *adapter, aios__train_state *st) {
    char jp[4200], sp[4200];
    state_paths(adapter, jp, sp, 4200);
    memset(st, 0, sizeof *st);
    char *text = NULL;
    size_t len = 0;
    struct stat sb;
    if (stat(jp, &sb) != 0)
        return aios__err(AIOS_ERR_NOT_FOUND, "%s: no trainer state (%s); an adapter without one starts with --init-adapter", adapter,
                         strerror(errno));
    AIOS_TRY(aios__read_file(jp, &text, &len));
    aios_status s = aios__train_state_parse(text, len, jp, st);
    free(text);
    if (s != AIOS_OK) return s;
    aios_safetensors *f = NULL;
    if ((s = aios_safetensors_open(sp, &f)) != AIOS_OK) return s;
    const char *fmt = aios_safetensors_metadata(f, "format"), *step = aios_safetensors_metadata(f, "step");
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)st->step);
    if (!fmt || strcmp(fmt, STATE_FORMAT) || !step || strcmp(step, want)) {
        s = aios__err(AIOS_ERR_FORMAT, "%s: saved at step %s, but %s says step %lld (a torn or mixed trainer state)", sp,
                      step ? step : "?", jp, (long long)st->step);
        goto out;
    }
    const char *names[3] = {"exp_avg", "exp_avg_sq", "order"};
    for (int i = 0; i < 3 && s == AIOS_OK; i++) {
        const aios_tensor *t = aios_safetensors_find(f, names[i]);
        const int64_t n = i < 2 ? st->n_params : st->n_batches;
        const aios_dtype dt = i < 2 ? AIOS_DTYPE_F32 : AIOS_DTYPE_I64;
        if (!t || t->dtype != dt || t->ndim != 1 || t->shape[0] != n) {
            s = aios__err(AIOS_ERR_FORMAT, "%s: tensor '%s' is missing or not %s [%lld]", sp, names[i], i < 2 ? "F32" : "I64",
                          (long long)n);
            break;
        }
        size_t bytes = (size_t)n * (i < 2 ? sizeof(float) : sizeof(int64_t));
        void *p = malloc(bytes);
        if (!p) {
            s = aios__err(AIOS_ERR_NOMEM, "train: state");
            break;
        }
        memcpy(p, t->data, bytes);
        if (i == 0) st->m = p;
        else if (i == 1) st->v = p;
        else st->order = p;
    }
    /* the order must be a permutation of the batches */
    uint8_t *seen = s == AIOS_OK ? calloc((size_t)st->n_batches, 1) : NULL;
    if (s == AIOS_OK && !seen) s = aios__err(AIOS_ERR_NOMEM, "train: state");
    for (int64_t i = 0; s == AIOS_OK && i < st->n_batches; i++) {
        int64_t k = st->order[i];
        if (k < 0 || k >= st->n_batches || seen[k]++)
            s = aios__err(AIOS_ERR_FORMAT, "%s: 'order' is not a permutation of the %lld batches", sp, (long long)st->n_batches);
    }
    free(seen);
out:
    aios_safetensors_close(f);
    if (s != AIOS_OK) aios__train_state_free(st);
    return s;
}
