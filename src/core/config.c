/*
 * config.c — the prototype's configuration (config/config.py) in C.
 *
 * Sections and fields as in DESIGN.md §3, same defaults.  Sources, lowest priority first:
 * defaults, one YAML file, environment.  The YAML reader accepts the subset such config
 * files use: `section:` lines, indented `key: value` lines, `#` comments, quoted or bare
 * scalars, booleans true/false/yes/no/on/off.  Anything else is rejected with the file,
 * line and reason — a config typo must never be silently ignored.
 *
 * Every field is described once in a table (name, kind, offset, limits) that drives
 * parsing, validation, environment overrides and `aios config show`.
 */
#include "core/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { F_INT, F_BOOL, F_FLOAT, F_STR, F_ENUM, F_PATH } fkind;

typedef struct {
    const char *section, *key;
    fkind kind;
    size_t off, size;
    double lo, hi;           /* numeric limits (inclusive) */
    const char *choices;     /* F_ENUM: '|'-separated */
    const char *env[2];      /* environment overrides, first wins */
} field;

#define OFF(f) offsetof(aios_config, f), sizeof(((aios_config *)0)->f)
static const field g_fields[] = {
    {"diffusion", "num_steps", F_INT, OFF(diffusion.num_steps), 1, 10000, NULL, {NULL, NULL}},
    {"diffusion", "distilled_steps", F_INT, OFF(diffusion.distilled_steps), 1, 10000, NULL, {NULL, NULL}},
    {"diffusion", "noise_schedule", F_ENUM, OFF(diffusion.noise_schedule), 0, 0, "cosine|linear", {NULL, NULL}},
    {"diffusion", "sampler_type", F_ENUM, OFF(diffusion.sampler_type), 0, 0, "discrete|low_confidence|margin|entropy|random", {NULL, NULL}},
    {"model", "model_path", F_PATH, OFF(model.model_path), 0, 0, NULL, {"AIOS_MODEL_PATH", "MODEL_PATH"}},
    {"model", "device", F_ENUM, OFF(model.device), 0, 0, "cpu|cuda|auto", {"AIOS_DEVICE", "DEVICE"}},
    {"model", "use_quantization", F_BOOL, OFF(model.use_quantization), 0, 1, NULL, {NULL, NULL}},
    {"model", "quantization_bits", F_INT, OFF(model.quantization_bits), 2, 8, NULL, {NULL, NULL}},
    {"model", "max_batch_size", F_INT, OFF(model.max_batch_size), 1, 65536, NULL, {NULL, NULL}},
    {"storage", "storage_path", F_PATH, OFF(storage.storage_path), 0, 0, NULL, {"AIOS_STORAGE_PATH", "STORAGE_PATH"}},
    {"storage", "compression_level", F_INT, OFF(storage.compression_level), 1, 22, NULL, {NULL, NULL}},
    {"storage", "use_float16", F_BOOL, OFF(storage.use_float16), 0, 1, NULL, {NULL, NULL}},
    {"performance", "batch_size", F_INT, OFF(performance.batch_size), 1, 65536, NULL, {"AIOS_BATCH_SIZE", "BATCH_SIZE"}},
    {"performance", "max_concurrent", F_INT, OFF(performance.max_concurrent), 1, 4096, NULL, {NULL, NULL}},
    {"performance", "cache_size", F_INT, OFF(performance.cache_size), 0, 1e9, NULL, {NULL, NULL}},
    {"performance", "cache_ttl", F_INT, OFF(performance.cache_ttl), 0, 1e9, NULL, {NULL, NULL}},
    {"evolution", "uncertainty_threshold", F_FLOAT, OFF(evolution.uncertainty_threshold), 0, 1, NULL, {NULL, NULL}},
    {"evolution", "enable_l0_composition", F_BOOL, OFF(evolution.enable_l0_composition), 0, 1, NULL, {NULL, NULL}},
    {"evolution", "enable_l1_controlnet", F_BOOL, OFF(evolution.enable_l1_controlnet), 0, 1, NULL, {NULL, NULL}},
    {"evolution", "enable_l2_lora", F_BOOL, OFF(evolution.enable_l2_lora), 0, 1, NULL, {NULL, NULL}},
    {"evolution", "enable_l3_finetune", F_BOOL, OFF(evolution.enable_l3_finetune), 0, 1, NULL, {NULL, NULL}},
    {"evolution", "router_threshold", F_FLOAT, OFF(evolution.router_threshold), -1, 1, NULL, {NULL, NULL}},
};
#define N_FIELDS AIOS_ARRAY_LEN(g_fields)

void aios_config_defaults(aios_config *c) {
    memset(c, 0, sizeof *c);
    c->diffusion.num_steps = 50;
    c->diffusion.distilled_steps = 4;
    strcpy(c->diffusion.noise_schedule, "cosine");
    strcpy(c->diffusion.sampler_type, "discrete");
    strcpy(c->model.device, "cpu");
    c->model.use_quantization = 1;
    c->model.quantization_bits = 8;
    c->model.max_batch_size = 16;
    strcpy(c->storage.storage_path, "~/.aios/memory");
    c->storage.compression_level = 3;
    c->storage.use_float16 = 1;
    c->performance.batch_size = 16;
    c->performance.max_concurrent = 4;
    c->performance.cache_size = 10000;
    c->performance.cache_ttl = 3600;
    c->evolution.uncertainty_threshold = 0.7;
    c->evolution.enable_l0_composition = 1;
    c->evolution.enable_l1_controlnet = 1;
    c->evolution.enable_l2_lora = 1;
    c->evolution.enable_l3_finetune = 0;
    c->evolution.router_threshold = 0.5;
}

static void expand_tilde(const char *in, char *out, size_t n) {
    const char *home = getenv("HOME");
    if (in[0] == '~' && (in[1] == '/' || in[1] == '\0') && home)
        snprintf(out, n, "%s%s", home, in + 1);
    else
        snprintf(out, n, "%s", in);
}

/* Parses `val` into field `f` of `c`; `where` names the source for messages. */
static aios_status set_field(aios_config *c, const field *f, const char *val, const char *where) {
    char *p = (char *)c + f->off;
    char *end;
    switch (f->kind) {
    case F_INT: {
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (errno || end == val || *end)
            return aios__err(AIOS_ERR_CONFIG, "%s: %s.%s: '%s' is not an integer", where, f->section, f->key, val);
        if (v < f->lo || v > f->hi)
            return aios__err(AIOS_ERR_CONFIG, "%s: %s.%s: %lld is out of range [%g, %g]", where, f->section, f->key, v, f->lo, f->hi);
        if (!strcmp(f->key, "quantization_bits") && v != 2 && v != 4 && v != 8)
            return aios__err(AIOS_ERR_CONFIG, "%s: model.quantization_bits: %lld must be 2, 4 or 8", where, v);
        *(int *)p = (int)v;
        return AIOS_OK;
    }
    case F_FLOAT: {
        errno = 0;
        double v = strtod(val, &end);
        if (errno || end == val || *end || v != v)
            return aios__err(AIOS_ERR_CONFIG, "%s: %s.%s: '%s' is not a number", where, f->section, f->key, val);
        if (v < f->lo || v > f->hi)
            return aios__err(AIOS_ERR_CONFIG, "%s: %s.%s: %g is out of range [%g, %g]", where, f->section, f->key, v, f->lo, f->hi);
        *(double *)p = v;
        return AIOS_OK;
    }
    case F_BOOL: {
        static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
        for (size_t i = 0; i < 4; i++) {
            if (!strcasecmp(val, yes[i])) { *(int *)p = 1; return AIOS_OK; }
            if (!strcasecmp(val, no[i])) { *(int *)p = 0; return AIOS_OK; }
        }
        return aios__err(AIOS_ERR_CONFIG, "%s: %s.%s: '%s' is not a boolean (true/false)", where, f->section, f->key, val);
    }
    case F_ENUM: {
        const char *s = f->choices;
        size_t vl = strlen(val);
        while (*s) {
            const char *bar = strchr(s, '|');
            size_t l = bar ? (size_t)(bar - s) : strlen(s);
            if (l == vl && !strncmp(s, val, l)) {
                snprintf(p, f->size, "%s", val);
                return AIOS_OK;
            }
            s += l + (bar ? 1 : 0);
        }
        return aios__err(AIOS_ERR_CONFIG, "%s: %s.%s: '%s' is not one of %s", where, f->section, f->key, val, f->choices);
    }
    case F_STR:
    case F_PATH:
        if (strlen(val) >= f->size)
            return aios__err(AIOS_ERR_CONFIG, "%s: %s.%s: value too long", where, f->section, f->key);
        snprintf(p, f->size, "%s", val);
        return AIOS_OK;
    }
    return AIOS_ERR_INTERNAL;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) *--e = 0;
    return s;
}

/* Strips a trailing comment and surrounding quotes from a scalar, in place. */
static aios_status scalar(char *v, char **out, const char *path, int line) {
    v = trim(v);
    if (*v == '"' || *v == '\'') {
        char q = *v;
        char *e = strchr(v + 1, q);
        if (!e) return aios__err(AIOS_ERR_CONFIG, "%s:%d: unterminated quoted string", path, line);
        char *rest = trim(e + 1);
        if (*rest && *rest != '#') return aios__err(AIOS_ERR_CONFIG, "%s:%d: unexpected text after quoted string", path, line);
        *e = 0;
        *out = v + 1;
        return AIOS_OK;
    }
    for (char *h = v; *h; h++)
        if (*h == '#' && (h == v || h[-1] == ' ' || h[-1] == '\t')) {
            *h = 0;
            break;
        }
    *out = trim(v);
    return AIOS_OK;
}

/* field_src[i] receives the source of field i ("file PATH" / "env VAR"); may be NULL. */
static aios_status load(aios_config *c, const char *path, char (*field_src)[160]) {
    aios_config_defaults(c);
    if (field_src)
        for (size_t i = 0; i < N_FIELDS; i++) strcpy(field_src[i], "default");
    const char *file = NULL;
    char home_cfg[1100];
    if (path) {
        file = path;
    } else {
        const char *home = getenv("HOME");
        snprintf(home_cfg, sizeof home_cfg, "%s/.aios/config.yaml", home ? home : "");
        const char *cands[] = {"config.yaml", "config/config.yaml", home ? home_cfg : NULL};
        for (size_t i = 0; i < 3; i++)
            if (cands[i] && access(cands[i], R_OK) == 0) {
                file = cands[i];
                break;
            }
    }
    if (file) {
        char *text;
        aios_status s = aios__read_file(file, &text, NULL);
        if (s != AIOS_OK) return aios__err_prefix(s == AIOS_ERR_NOT_FOUND ? AIOS_ERR_NOT_FOUND : s, "config");
        snprintf(c->loaded_from, sizeof c->loaded_from, "%s", file);
        char section[64] = "";
        int lineno = 0;
        s = AIOS_OK;
        for (char *ln = text, *next; ln && *ln && s == AIOS_OK; ln = next) {
            next = strchr(ln, '\n');
            if (next) *next++ = '\0';
            lineno++;
            int indent = 0;
            while (ln[indent] == ' ') indent++;
            if (ln[indent] == '\t') { s = aios__err(AIOS_ERR_CONFIG, "%s:%d: tabs are not allowed for indentation", file, lineno); break; }
            char *t = trim(ln);
            if (!*t || *t == '#' || !strcmp(t, "---")) continue;
            char *colon = strchr(t, ':');
            if (!colon) { s = aios__err(AIOS_ERR_CONFIG, "%s:%d: expected 'key: value'", file, lineno); break; }
            *colon = 0;
            char *key = trim(t), *val = NULL;
            s = scalar(colon + 1, &val, file, lineno);
            if (s) break;
            if (indent == 0) {
                if (*val) { s = aios__err(AIOS_ERR_CONFIG, "%s:%d: '%s' must be a section (diffusion, model, storage, performance, evolution)", file, lineno, key); break; }
                int known = 0;
                for (size_t i = 0; i < N_FIELDS; i++) known |= !strcmp(g_fields[i].section, key);
                if (!known) { s = aios__err(AIOS_ERR_CONFIG, "%s:%d: unknown section '%s'", file, lineno, key); break; }
                snprintf(section, sizeof section, "%s", key);
                continue;
            }
            if (!section[0]) { s = aios__err(AIOS_ERR_CONFIG, "%s:%d: '%s' is not inside a section", file, lineno, key); break; }
            size_t i;
            for (i = 0; i < N_FIELDS; i++)
                if (!strcmp(g_fields[i].section, section) && !strcmp(g_fields[i].key, key)) break;
            if (i == N_FIELDS) { s = aios__err(AIOS_ERR_CONFIG, "%s:%d: unknown field '%s.%s'", file, lineno, section, key); break; }
            char where[1200];
            snprintf(where, sizeof where, "%s:%d", file, lineno);
            s = set_field(c, &g_fields[i], val, where);
            if (s == AIOS_OK && field_src) snprintf(field_src[i], 160, "file %.150s", file);
        }
        free(text);
        if (s != AIOS_OK) return s;
    }
    for (size_t i = 0; i < N_FIELDS; i++) {
        for (int k = 0; k < 2; k++) {
            const char *var = g_fields[i].env[k];
            const char *v = var ? getenv(var) : NULL;
            if (!v) continue;
            char where[80];
            snprintf(where, sizeof where, "environment %s", var);
            AIOS_TRY(set_field(c, &g_fields[i], v, where));
            if (field_src) snprintf(field_src[i], 160, "env %s", var);
            break;
        }
    }
    char tmp[1024];
    expand_tilde(c->storage.storage_path, tmp, sizeof tmp);
    snprintf(c->storage.storage_path, sizeof c->storage.storage_path, "%s", tmp);
    expand_tilde(c->model.model_path, tmp, sizeof tmp);
    snprintf(c->model.model_path, sizeof c->model.model_path, "%s", tmp);
    return AIOS_OK;
}

aios_status aios_config_load(aios_config *cfg, const char *path) { return load(cfg, path, NULL); }

aios_status aios_config_print(const char *path, FILE *out) {
    aios_config c;
    char src[N_FIELDS][160];
    AIOS_TRY(load(&c, path, src));
    fprintf(out, "# configuration file: %s\n", c.loaded_from[0] ? c.loaded_from : "(none found; defaults)");
    const char *sec = "";
    for (size_t i = 0; i < N_FIELDS; i++) {
        const field *f = &g_fields[i];
        if (strcmp(sec, f->section)) {
            sec = f->section;
        }
        const char *p = (const char *)&c + f->off;
        char val[1100];
        switch (f->kind) {
        case F_INT: snprintf(val, sizeof val, "%d", *(const int *)p); break;
        case F_BOOL: snprintf(val, sizeof val, "%s", *(const int *)p ? "true" : "false"); break;
        case F_FLOAT: snprintf(val, sizeof val, "%g", *(const double *)p); break;
        default: snprintf(val, sizeof val, "%s", *p ? p : "\"\""); break;
        }
        char name[96];
        snprintf(name, sizeof name, "%s.%s", f->section, f->key);
        fprintf(out, "%-34s = %-24s # %s\n", name, val, src[i]);
    }
    return AIOS_OK;
}
