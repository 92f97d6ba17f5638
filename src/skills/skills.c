/*
 * skills.c — the skill library: a directory LIB/ of LoRA adapters and LIB/index.parquet.
 *
 * The index is one Parquet file (ours; DuckDB and pyarrow read it) with a row per skill:
 *   name, description, description_embedding list<float>, centroid list<float> (null when the
 *   skill came without questions), adapter (path relative to LIB), base_model, n_pairs, steps,
 *   lr, loss_before, loss_after, ppl_before, ppl_after (null = not measured), status
 *   ("active" | "rejected"), reason, created (timestamp[us], UTC)
 * and footer keys aios.skills.version ("1"; other versions are refused), aios.skills.encoder
 * (the embedding model every vector of the library comes from) and aios.skills.dim.
 * Every change rewrites the whole index to a temporary file renamed over the old one, so a
 * reader sees the old or the new library, never a torn one.  A library is small (tens to
 * thousands of skills): it is kept in memory whole.
 *
 * The semantic router (LoraRetriever-style, the seed's L2) is aios_skills_route: the score of
 * a skill is the cosine of the prompt's embedding to its centroid (to its description's
 * embedding when it has no centroid); the top-k active skills at or above the threshold are
 * kept and weighted by softmax(score / T).
 */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "format/parquet.h"

#define SKILLS_VERSION "1"

struct aios_skill_lib {
    char dir[4096];
    char encoder[1024];
    int32_t dim;
    int64_t n, cap;
    aios_skill *s;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }
static float *dup_vec(const float *v, int32_t dim) {
    if (!v || dim <= 0) return NULL;
    float *o = malloc((size_t)dim * sizeof *o);
    if (o) memcpy(o, v, (size_t)dim * sizeof *o);
    return o;
}

static void skill_free(aios_skill *k) {
    free(k->name), free(k->description), free(k->adapter), free(k->base_model), free(k->status), free(k->reason);
    free(k->description_embedding), free(k->centroid);
    memset(k, 0, sizeof *k);
}

/* Deep copy; 0 when out of memory (dst freed). */
static int skill_copy(aios_skill *d, const aios_skill *s, int32_t dim) {
    *d = *s;
    d->name = dup_or_null(s->name);
    d->description = dup_or_null(s->description);
    d->adapter = dup_or_null(s->adapter);
    d->base_model = dup_or_null(s->base_model);
    d->status = dup_or_null(s->status ? s->status : "active");
    d->reason = dup_or_null(s->reason);
    d->description_embedding = dup_vec(s->description_embedding, dim);
    d->centroid = dup_vec(s->centroid, dim);
    if (!d->name || (s->description && !d->description) || (s->adapter && !d->adapter) ||
        (s->base_model && !d->base_model) || !d->status || (s->reason && !d->reason) ||
        (s->description_embedding && !d->description_embedding) || (s->centroid && !d->centroid)) {
        skill_free(d);
        return 0;
    }
    return 1;
}

static int path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- reading ---- */

static aios_status col_str(const aios_pq_column *c, int64_t r, char **out) {
    *out = NULL;
    if (c->valid && !c->valid[r]) return AIOS_OK;
    *out = malloc(c->bytes[r].len + 1);
    if (!*out) return aios__err(AIOS_ERR_NOMEM, "skills: out of memory");
    memcpy(*out, c->bytes[r].ptr, c->bytes[r].len);
    (*out)[c->bytes[r].len] = 0;
    return AIOS_OK;
}

static double col_f64(const aios_pq_column *c, int64_t r) {
    if (c->valid && !c->valid[r]) return NAN;
    return ((const double *)c->values)[r];
}

static aios_status col_vec(const aios_pq_column *c, int64_t r, int32_t dim, const char *path, float **out) {
    *out = NULL;
    if (c->row_valid && !c->row_valid[r]) return AIOS_OK;
    int64_t a = c->offsets[r], b = c->offsets[r + 1];
    if (b - a != dim) return aios__err(AIOS_ERR_CORRUPT, "skills: %s: row %lld has a vector of %lld, not %d", path, (long long)r, (long long)(b - a), dim);
    if (c->valid)
        for (int64_t i = a; i < b; i++)
            if (!c->valid[i]) return aios__err(AIOS_ERR_CORRUPT, "skills: %s: row %lld: null vector element", path, (long long)r);
    *out = malloc((size_t)dim * sizeof **out);
    if (!*out) return aios__err(AIOS_ERR_NOMEM, "skills: out of memory");
    memcpy(*out, (const float *)c->values + a, (size_t)dim * sizeof **out);
    return AIOS_OK;
}

enum { C_NAME, C_DESC, C_DEMB, C_CENT, C_ADAPTER, C_BASE, C_NPAIRS, C_STEPS, C_LR, C_LB, C_LA, C_PB, C_PA, C_STATUS, C_REASON, C_CREATED, C_N };
static const char *const COLS[C_N] = {"name", "description", "description_embedding", "centroid", "adapter", "base_model",
                                      "n_pairs", "steps", "lr", "loss_before", "loss_after", "ppl_before", "ppl_after",
                                      "status", "reason", "created"};

static aios_status read_index(aios_skill_lib *L, const char *path) {
    aios_parquet_file *pf;
    AIOS_TRY(aios_parquet_open(path, &pf));
    aios_status s = AIOS_OK;
    aios_pq_column col[C_N];
    memset(col, 0, sizeof col);
    const char *ver = aios_pq_kv_get(pf, "aios.skills.version");
    const char *enc = aios_pq_kv_get(pf, "aios.skills.encoder");
    const char *dim = aios_pq_kv_get(pf, "aios.skills.dim");
    if (!ver || strcmp(ver, SKILLS_VERSION)) {
        s = aios__err(AIOS_ERR_UNSUPPORTED, "skills: %s: index version %s (this build reads version %s)", path,
                      ver ? ver : "(none)", SKILLS_VERSION);
        goto out;
    }
    if (enc) snprintf(L->encoder, sizeof L->encoder, "%s", enc);
    L->dim = dim ? (int32_t)atoi(dim) : 0;
    if (L->dim < 0 || L->dim > 65536) {
        s = aios__err(AIOS_ERR_CORRUPT, "skills: %s: aios.skills.dim %s", path, dim);
        goto out;
    }
    int64_t n = aios_parquet_num_rows(pf);
    for (int i = 0; i < C_N; i++) {
        int leaf = aios_pq_find_leaf(pf, COLS[i]);
        if (leaf < 0) {
            s = aios__err(AIOS_ERR_CORRUPT, "skills: %s: no column '%s'", path, COLS[i]);
            goto out;
        }
        if ((s = aios_pq_read_column(pf, -1, leaf, &col[i])) != AIOS_OK) goto out;
        int want_rep = i == C_DEMB || i == C_CENT;
        int ok = col[i].num_rows == n && col[i].max_rep == want_rep;
        if (i == C_DEMB || i == C_CENT) ok = ok && col[i].type == AIOS_PQ_FLOAT;
        else if (i == C_NPAIRS || i == C_STEPS || i == C_CREATED) ok = ok && col[i].type == AIOS_PQ_INT64;
        else if (i == C_LR || i == C_LB || i == C_LA || i == C_PB || i == C_PA) ok = ok && col[i].type == AIOS_PQ_DOUBLE;
        else ok = ok && col[i].type == AIOS_PQ_BYTE_ARRAY;
        if (!ok) {
            s = aios__err(AIOS_ERR_CORRUPT, "skills: %s: column '%s' has an unexpected type", path, COLS[i]);
            goto out;
        }
    }
    L->s = calloc((size_t)(n ? n : 1), sizeof *L->s);
    if (!L->s) {
        s = aios__err(AIOS_ERR_NOMEM, "skills: out of memory");
        goto out;
    }
    L->cap = n ? n : 1;
    for (int64_t r = 0; r < n && !s; r++) {
        aios_skill *k = &L->s[L->n++];
        if ((s = col_str(&col[C_NAME], r, &k->name)) || (s = col_str(&col[C_DESC], r, &k->description)) ||
            (s = col_vec(&col[C_DEMB], r, L->dim, path, &k->description_embedding)) ||
            (s = col_vec(&col[C_CENT], r, L->dim, path, &k->centroid)) || (s = col_str(&col[C_ADAPTER], r, &k->adapter)) ||
            (s = col_str(&col[C_BASE], r, &k->base_model)) || (s = col_str(&col[C_STATUS], r, &k->status)) ||
            (s = col_str(&col[C_REASON], r, &k->reason)))
            break;
        if (!k->name || !k->status) {
            s = aios__err(AIOS_ERR_CORRUPT, "skills: %s: row %lld has no name or status", path, (long long)r);
            break;
        }
        k->n_pairs = col[C_NPAIRS].valid && !col[C_NPAIRS].valid[r] ? 0 : ((const int64_t *)col[C_NPAIRS].values)[r];
        k->steps = col[C_STEPS].valid && !col[C_STEPS].valid[r] ? 0 : ((const int64_t *)col[C_STEPS].values)[r];
        k->created_us = col[C_CREATED].valid && !col[C_CREATED].valid[r] ? 0 : ((const int64_t *)col[C_CREATED].values)[r];
        k->lr = col_f64(&col[C_LR], r);
        k->loss_before = col_f64(&col[C_LB], r);
        k->loss_after = col_f64(&col[C_LA], r);
        k->ppl_before = col_f64(&col[C_PB], r);
        k->ppl_after = col_f64(&col[C_PA], r);
    }
out:
    for (int i = 0; i < C_N; i++) aios_pq_column_free(&col[i]);
    aios_parquet_close(pf);
    return s;
}

/* ---- writing ---- */

static const aios_pq_field FIELDS[] = {
    {.name = "name", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 0, .no_dictionary = 1},
    {.name = "description", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1, .no_dictionary = 1},
    {.name = "description_embedding", .parent = -1, .kind = AIOS_PQ_K_LIST, .nullable = 1},
    {.name = "element", .parent = 2, .kind = AIOS_PQ_K_FLOAT, .nullable = 0},
    {.name = "centroid", .parent = -1, .kind = AIOS_PQ_K_LIST, .nullable = 1},
    {.name = "element", .parent = 4, .kind = AIOS_PQ_K_FLOAT, .nullable = 0},
    {.name = "adapter", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1, .no_dictionary = 1},
    {.name = "base_model", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1},
    {.name = "n_pairs", .parent = -1, .kind = AIOS_PQ_K_INT64, .nullable = 0},
    {.name = "steps", .parent = -1, .kind = AIOS_PQ_K_INT64, .nullable = 0},
    {.name = "lr", .parent = -1, .kind = AIOS_PQ_K_DOUBLE, .nullable = 1},
    {.name = "loss_before", .parent = -1, .kind = AIOS_PQ_K_DOUBLE, .nullable = 1},
    {.name = "loss_after", .parent = -1, .kind = AIOS_PQ_K_DOUBLE, .nullable = 1},
    {.name = "ppl_before", .parent = -1, .kind = AIOS_PQ_K_DOUBLE, .nullable = 1},
    {.name = "ppl_after", .parent = -1, .kind = AIOS_PQ_K_DOUBLE, .nullable = 1},
    {.name = "status", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 0},
    {.name = "reason", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1, .no_dictionary = 1},
    {.name = "created", .parent = -1, .kind = AIOS_PQ_K_TIMESTAMP_US, .nullable = 0},
};

typedef struct {
    aios_pq_bytes *b;
    uint8_t *v;
    double *d;
    int64_t *i, *off;
    float *f;
} wcol;

static aios_status write_str(aios_pq_writer *w, int leaf, const aios_skill_lib *L, size_t field_off, wcol *c) {
    for (int64_t r = 0; r < L->n; r++) {
        const char *s = *(char *const *)((const char *)&L->s[r] + field_off);
        c->b[r] = (aios_pq_bytes){(const uint8_t *)s, s ? strlen(s) : 0};
        c->v[r] = s != NULL;
    }
    return aios_pq_writer_write(w, leaf, &(aios_pq_batch){.num_rows = L->n, .bytes = c->b, .valid = c->v});
}

static aios_status write_f64(aios_pq_writer *w, int leaf, const aios_skill_lib *L, size_t field_off, wcol *c) {
    for (int64_t r = 0; r < L->n; r++) {
        double x = *(const double *)((const char *)&L->s[r] + field_off);
        c->v[r] = !isnan(x);
        c->d[r] = isnan(x) ? 0 : x;
    }
    return aios_pq_writer_write(w, leaf, &(aios_pq_batch){.num_rows = L->n, .values = c->d, .valid = c->v});
}

static aios_status write_i64(aios_pq_writer *w, int leaf, const aios_skill_lib *L, size_t field_off, wcol *c) {
    for (int64_t r = 0; r < L->n; r++) c->i[r] = *(const int64_t *)((const char *)&L->s[r] + field_off);
    return aios_pq_writer_write(w, leaf, &(aios_pq_batch){.num_rows = L->n, .values = c->i});
}

static aios_status write_vec(aios_pq_writer *w, int leaf, const aios_skill_lib *L, size_t field_off, wcol *c) {
    c->off[0] = 0;
    for (int64_t r = 0; r < L->n; r++) {
        const float *v = *(float *const *)((const char *)&L->s[r] + field_off);
        c->v[r] = v != NULL;
        c->off[r + 1] = c->off[r];
        if (v) {
            memcpy(c->f + c->off[r], v, (size_t)L->dim * sizeof(float));
            c->off[r + 1] += L->dim;
        }
    }
    return aios_pq_writer_write(w, leaf, &(aios_pq_batch){.num_rows = L->n, .offsets = c->off, .row_valid = c->v, .values = c->f});
}

static aios_status write_index(const aios_skill_lib *L) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/index.parquet", L->dir);
    snprintf(tmp, sizeof tmp, "%s/.index.parquet.tmp.%ld", L->dir, (long)getpid());
    aios_pq_writer_params wp = aios_pq_writer_default_params();
    aios_pq_writer *w;
    AIOS_TRY(aios_pq_writer_open(tmp, FIELDS, (int)AIOS_ARRAY_LEN(FIELDS), &wp, &w));
    char dim[32];
    snprintf(dim, sizeof dim, "%d", L->dim);
    aios_status s = aios_pq_writer_set_kv(w, "aios.skills.version", SKILLS_VERSION);
    if (!s) s = aios_pq_writer_set_kv(w, "aios.skills.encoder", L->encoder);
    if (!s) s = aios_pq_writer_set_kv(w, "aios.skills.dim", dim);
    size_t n = (size_t)L->n + 1;
    wcol c = {malloc(n * sizeof *c.b), malloc(n), malloc(n * sizeof *c.d), malloc(n * sizeof *c.i),
              malloc((n + 1) * sizeof *c.off), malloc(n * (size_t)(L->dim > 0 ? L->dim : 1) * sizeof *c.f)};
    if (!c.b || !c.v || !c.d || !c.i || !c.off || !c.f) s = aios__err(AIOS_ERR_NOMEM, "skills: out of memory");
#define OFF(f) offsetof(aios_skill, f)
    if (!s) s = write_str(w, 0, L, OFF(name), &c);
    if (!s) s = write_str(w, 1, L, OFF(description), &c);
    if (!s) s = write_vec(w, 2, L, OFF(description_embedding), &c);
    if (!s) s = write_vec(w, 3, L, OFF(centroid), &c);
    if (!s) s = write_str(w, 4, L, OFF(adapter), &c);
    if (!s) s = write_str(w, 5, L, OFF(base_model), &c);
    if (!s) s = write_i64(w, 6, L, OFF(n_pairs), &c);
    if (!s) s = write_i64(w, 7, L, OFF(steps), &c);
    if (!s) s = write_f64(w, 8, L, OFF(lr), &c);
    if (!s) s = write_f64(w, 9, L, OFF(loss_before), &c);
    if (!s) s = write_f64(w, 10, L, OFF(loss_after), &c);
    if (!s) s = write_f64(w, 11, L, OFF(ppl_before), &c);
    if (!s) s = write_f64(w, 12, L, OFF(ppl_after), &c);
    if (!s) s = write_str(w, 13, L, OFF(status), &c);
    if (!s) s = write_str(w, 14, L, OFF(reason), &c);
    if (!s) s = write_i64(w, 15, L, OFF(created_us), &c);
#undef OFF
    if (!s) s = aios_pq_writer_end_batch(w, L->n);
    free(c.b), free(c.v), free(c.d), free(c.i), free(c.off), free(c.f);
    if (s) {
        aios_pq_writer_abort(w);
        return aios__err_prefix(s, "skills: writing %s", tmp);
    }
    if ((s = aios_pq_writer_close(w)) != AIOS_OK) {
        unlink(tmp);
        return s;
    }
    if (rename(tmp, path) != 0) {
        s = aios__err(AIOS_ERR_IO, "skills: %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    return s;
}

/* ---- public ---- */

aios_status aios_skills_open(const char *dir, int create, aios_skill_lib **out) {
    *out = NULL;
    if (!dir || !*dir) return aios__err(AIOS_ERR_INVALID_ARG, "skills: no library directory");
    aios_skill_lib *L = calloc(1, sizeof *L);
    if (!L) return aios__err(AIOS_ERR_NOMEM, "skills: out of memory");
    if (strlen(dir) >= sizeof L->dir - 64) {
        free(L);
        return aios__err(AIOS_ERR_INVALID_ARG, "skills: library path too long");
    }
    snprintf(L->dir, sizeof L->dir, "%s", dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/index.parquet", dir);
    aios_status s = AIOS_OK;
    if (path_exists(path)) {
        s = read_index(L, path);
    } else if (!create) {
        s = aios__err(AIOS_ERR_NOT_FOUND, "skills: %s: no skill library (no index.parquet)", dir);
    } else if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        s = aios__err(AIOS_ERR_IO, "skills: %s: %s", dir, strerror(errno));
    }
    if (s) {
        aios_skills_close(L);
        return s;
    }
    *out = L;
    return AIOS_OK;
}

void aios_skills_close(aios_skill_lib *L) {
    if (!L) return;
    for (int64_t i = 0; i < L->n; i++) skill_free(&L->s[i]);
    free(L->s);
    free(L);
}

const char *aios_skills_dir(const aios_skill_lib *L) { return L->dir; }
const char *aios_skills_encoder(const aios_skill_lib *L) { return L->encoder; }
int32_t aios_skills_dim(const aios_skill_lib *L) { return L->dim; }
int64_t aios_skills_count(const aios_skill_lib *L) { return L ? L->n : 0; }
const aios_skill *aios_skills_at(const aios_skill_lib *L, int64_t i) { return L && i >= 0 && i < L->n ? &L->s[i] : NULL; }

const aios_skill *aios_skills_get(const aios_skill_lib *L, const char *name) {
    for (int64_t i = 0; L && name && i < L->n; i++)
        if (!strcmp(L->s[i].name, name)) return &L->s[i];
    return NULL;
}

aios_status aios_skills_adapter_path(const aios_skill_lib *L, const aios_skill *k, char *buf, size_t n) {
    if (!k->adapter || !*k->adapter) return aios__err(AIOS_ERR_NOT_FOUND, "skills: skill '%s' has no adapter", k->name);
    int w = k->adapter[0] == '/' ? snprintf(buf, n, "%s", k->adapter) : snprintf(buf, n, "%s/%s", L->dir, k->adapter);
    if (w < 0 || (size_t)w >= n) return aios__err(AIOS_ERR_RANGE, "skills: adapter path too long");
    return AIOS_OK;
}

int aios_skills_name_ok(const char *name) {
    if (!name || !*name || strlen(name) > 100 || !strcmp(name, ".") || !strcmp(name, "..")) return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

aios_status aios_skills_set_encoder(aios_skill_lib *L, const char *encoder, int32_t dim) {
    if (L->dim && (dim != L->dim || (L->encoder[0] && encoder && strcmp(encoder, L->encoder))))
        return aios__err(AIOS_ERR_INVALID_ARG, "skills: the library's vectors come from %s (dim %d), not %s (dim %d)",
                         L->encoder, L->dim, encoder ? encoder : "?", dim);
    if (strlen(encoder ? encoder : "") >= sizeof L->encoder) return aios__err(AIOS_ERR_RANGE, "skills: encoder path too long");
    snprintf(L->encoder, sizeof L->encoder, "%s", encoder ? encoder : "");
    L->dim = dim;
    return AIOS_OK;
}

aios_status aios_skills_add(aios_skill_lib *L, const aios_skill *k) {
    if (!k || !aios_skills_name_ok(k->name))
        return aios__err(AIOS_ERR_INVALID_ARG, "skills: name '%s' (letters, digits, '-', '_', '.'; at most 100)",
                         k && k->name ? k->name : "");
    if (aios_skills_get(L, k->name)) return aios__err(AIOS_ERR_EXISTS, "skills: a skill named '%s' exists already", k->name);
    if (k->status && strcmp(k->status, "active") && strcmp(k->status, "rejected"))
        return aios__err(AIOS_ERR_INVALID_ARG, "skills: status '%s' (active or rejected)", k->status);
    if ((k->description_embedding || k->centroid) && L->dim <= 0)
        return aios__err(AIOS_ERR_INVALID_ARG, "skills: vectors given but the library has no encoder set");
    if (L->n == L->cap) {
        int64_t nc = L->cap ? 2 * L->cap : 8;
        aios_skill *ns = realloc(L->s, (size_t)nc * sizeof *ns);
        if (!ns) return aios__err(AIOS_ERR_NOMEM, "skills: out of memory");
        L->s = ns, L->cap = nc;
    }
    aios_skill *d = &L->s[L->n];
    if (!skill_copy(d, k, L->dim)) return aios__err(AIOS_ERR_NOMEM, "skills: out of memory");
    if (!d->created_us) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        d->created_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    }
    L->n++;
    aios_status s = write_index(L);
    if (s) skill_free(&L->s[--L->n]);
    return s;
}

aios_status aios_skills_remove(aios_skill_lib *L, const char *name) {
    int64_t i = 0;
    while (i < L->n && strcmp(L->s[i].name, name)) i++;
    if (i == L->n) return aios__err(AIOS_ERR_NOT_FOUND, "skills: no skill named '%s'", name ? name : "");
    aios_skill k = L->s[i];
    memmove(&L->s[i], &L->s[i + 1], (size_t)(L->n - i - 1) * sizeof *L->s);
    L->n--;
    aios_status s = write_index(L);
    if (s) { /* put it back: the index on disk is unchanged */
        memmove(&L->s[i + 1], &L->s[i], (size_t)(L->n - i) * sizeof *L->s);
        L->s[i] = k;
        L->n++;
        return s;
    }
    skill_free(&k);
    return AIOS_OK;
}

aios_router_params aios_router_default_params(void) {
    aios_router_params p = {.top_k = 1, .threshold = 0.5, .temperature = 0.1};
    return p;
}

static double cosine(const float *a, const float *b, int32_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (int32_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

aios_status aios_skills_route(const aios_skill_lib *L, const float *q, int32_t dim, const aios_router_params *pp,
                              aios_route *out, int *n_out) {
    aios_router_params p = pp ? *pp : aios_router_default_params();
    *n_out = 0;
    if (dim != L->dim) return aios__err(AIOS_ERR_SHAPE, "skills: query of dimension %d, the library's is %d", dim, L->dim);
    if (p.top_k < 1 || p.top_k > AIOS_ROUTE_MAX) return aios__err(AIOS_ERR_RANGE, "skills: top-k %d outside 1..%d", p.top_k, AIOS_ROUTE_MAX);
    if (!(p.temperature > 0)) return aios__err(AIOS_ERR_RANGE, "skills: router temperature must be > 0");
    int n = 0;
    for (int64_t i = 0; i < L->n; i++) {
        const aios_skill *k = &L->s[i];
        if (strcmp(k->status, "active")) continue;
        const float *v = k->centroid ? k->centroid : k->description_embedding;
        if (!v) continue;
        double sc = cosine(q, v, dim);
        if (!(sc >= p.threshold)) continue;
        /* insertion into the top-k, best first (ties: library order) */
        int j = n < p.top_k ? n++ : p.top_k;
        if (j == p.top_k && !(sc > out[p.top_k - 1].score)) continue;
        if (j == p.top_k) j = p.top_k - 1;
        while (j > 0 && sc > out[j - 1].score) out[j] = out[j - 1], j--;
        out[j] = (aios_route){.index = i, .score = sc};
    }
    double mx = n ? out[0].score : 0, z = 0;
    for (int i = 0; i < n; i++) z += exp((out[i].score - mx) / p.temperature);
    for (int i = 0; i < n; i++) out[i].weight = exp((out[i].score - mx) / p.temperature) / z;
    *n_out = n;
    return AIOS_OK;
}
