/*
 * tokenizer.c — loading tokenizer.json (+ tokenizer_config.json), added tokens, the encode
 * pipeline, truncation / padding, batch encoding over threads, decode, and the public API.
 *
 * Encode follows `TokenizerImpl::encode_char_offsets` of Hugging Face `tokenizers`:
 *   1. added tokens that are not `normalized` are cut out of the raw text (leftmost-longest,
 *      honouring single_word / lstrip / rstrip — AddedVocabulary::find_matches);
 *   2. each remaining piece is normalized, then normalized added tokens (matched in their
 *      normalized form) are cut out;
 *   3. the pre-tokenizer splits the rest, the model tokenizes each split;
 *   4. offsets map through the alignments to original bytes, then to chars
 *      (BytesToCharOffsetConverter); truncation, the post-processor and padding follow.
 * Invalid UTF-8 is repaired to U+FFFD first (or refused, on request): the pipeline only ever
 * sees valid UTF-8.  Decode maps ids to strings (added tokens in their normalized form, as
 * `simple_id_to_token`), drops special ones on request, and runs the decoder.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/tok_internal.h"

typedef struct {
    char *content; /* as in the file */
    size_t content_len;
    char *norm; /* normalized form (== content unless normalized and the normalizer changes it) */
    size_t norm_len;
    int32_t id;
    int special, single_word, lstrip, rstrip, normalized;
} added_tok;

typedef struct {
    size_t *idx; /* indices into added, sorted by first byte then length descending */
    size_t n;
    size_t start[257]; /* bucket starts by first byte */
} match_set;

struct aios_tokenizer {
    tk_normalizer *norm;
    tk_pretok *pre;
    tk_model *model;
    tk_post *post;
    tk_decoder *dec;
    added_tok *added;
    size_t nadded;
    match_set raw_set, norm_set;
    tk_strmap added_map; /* content -> index in added */
    int32_t *added_by_id; /* id -> index+1 for ids < added_id_cap */
    size_t added_id_cap;
    aios_tok_params defaults;
    aios_tok_special_ids special;
    size_t model_max_length;
};

/* ---------------------------------------------------------------------------- added tokens */
static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const added_tok *t = ctx;
    const added_tok *x = &t[*(const size_t *)a], *y = &t[*(const size_t *)b];
    uint8_t fx = (uint8_t)x->norm[0], fy = (uint8_t)y->norm[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (x->norm_len != y->norm_len) return x->norm_len > y->norm_len ? -1 : 1;
    return 0;
}

static aios_status build_set(aios_tokenizer *t, match_set *ms, int normalized) {
    ms->idx = malloc((t->nadded + 1) * sizeof *ms->idx);
    if (!ms->idx) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    ms->n = 0;
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].normalized == normalized && t->added[i].norm_len > 0) ms->idx[ms->n++] = i;
    qsort_r(ms->idx, ms->n, sizeof *ms->idx, cmp_len_desc, t->added);
    size_t k = 0;
    for (int b = 0; b < 256; b++) {
        ms->start[b] = k;
        while (k < ms->n && (uint8_t)t->added[ms->idx[k]].norm[0] == b) k++;
    }
    ms->start[256] = ms->n;
    return AIOS_OK;
}

/* Cuts added tokens of `ms` out of `n`, appending pieces to `out`. */
static aios_status split_added(const aios_tokenizer *t, const match_set *ms, int skip_special, tk_nstr *n, tk_splits *out) {
    if (ms->n == 0 || n->len == 0) {
        if (n->len == 0) {
            tk_nstr_free(n);
            return AIOS_OK;
        }
        return tk_splits_push(out, n, -1);
    }
    const uint8_t *s = n->b;
    size_t len = n->len, start_off = 0, i = 0;
    aios_status st = AIOS_OK;
    while (i < len && st == AIOS_OK) {
        uint8_t c = s[i];
        const added_tok *hit = NULL;
        for (size_t k = ms->start[c]; k < ms->start[c + 1]; k++) {
            const added_tok *a = &t->added[ms->idx[k]];
            if (a->norm_len <= len - i && !memcmp(s + i, a->norm, a->norm_len)) {
                hit = a;
                break;
            }
        }
        if (hit && skip_special && hit->special) { /* encode_special_tokens: matched, then ignored */
            i += hit->norm_len;
            continue;
        }
        if (!hit) {
            i++;
            continue;
        }
        size_t ms_ = i, me = i + hit->norm_len;
        if (hit->single_word) {
            uint32_t cp;
            int before_word = 0, after_word = 0;
            if (ms_ > 0) {
                size_t p = ms_ - 1;
                while (p > 0 && (s[p] & 0xC0) == 0x80) p--;
                before_word = tk_utf8_dec(s + p, ms_ - p, &cp) && tk_is_alnum(cp);
            }
            if (me < len) after_word = tk_utf8_dec(s + me, len - me, &cp) && tk_is_alnum(cp);
            if (before_word || after_word) {
                i = me; /* the match is consumed by the search even when discarded */
                continue;
            }
        }
        if (hit->lstrip) {
            size_t p = ms_;
            while (p > 0) {
                size_t q = p - 1;
                while (q > 0 && (s[q] & 0xC0) == 0x80) q--;
                uint32_t cp;
                if (!tk_utf8_dec(s + q, p - q, &cp) || !tk_is_whitespace(cp)) break;
                p = q;
            }
            ms_ = AIOS_MAX(p, start_off);
        }
        if (hit->rstrip) {
            uint32_t cp;
            int l;
            while (me < len && (l = tk_utf8_dec(s + me, len - me, &cp)) && tk_is_whitespace(cp)) me += (size_t)l;
        }
        if (start_off < ms_) {
            tk_nstr piece;
            st = tk_nstr_slice(n, start_off, ms_, &piece);
            if (st == AIOS_OK) st = tk_splits_push(out, &piece, -1);
        }
        if (st == AIOS_OK) {
            tk_nstr piece;
            st = tk_nstr_slice(n, ms_, me, &piece);
            if (st == AIOS_OK) st = tk_splits_push(out, &piece, hit->id);
        }
        start_off = me;
        i = me;
    }
    if (st == AIOS_OK && start_off < len) {
        if (start_off == 0) {
            st = tk_splits_push(out, n, -1);
            return st;
        }
        tk_nstr piece;
        st = tk_nstr_slice(n, start_off, len, &piece);
        if (st == AIOS_OK) st = tk_splits_push(out, &piece, -1);
    }
    tk_nstr_free(n);
    return st;
}

static const added_tok *added_by_id(const aios_tokenizer *t, int32_t id) {
    if (id < 0 || (size_t)id >= t->added_id_cap || !t->added_by_id[id]) return NULL;
    return &t->added[t->added_by_id[id] - 1];
}

/* ---------------------------------------------------------------------------- loading */
void aios_tokenizer_free(aios_tokenizer *t) {
    if (!t) return;
    tk_normalizer_free(t->norm);
    tk_pretok_free(t->pre);
    tk_model_free(t->model);
    tk_post_free(t->post);
    tk_decoder_free(t->dec);
    for (size_t i = 0; i < t->nadded; i++) {
        if (t->added[i].norm != t->added[i].content) free(t->added[i].norm);
        free(t->added[i].content);
    }
    free(t->added);
    free(t->raw_set.idx);
    free(t->norm_set.idx);
    tk_strmap_free(&t->added_map);
    free(t->added_by_id);
    free(t);
}

static aios_status parse_added(aios_tokenizer *t, const cJSON *arr) {
    if (!arr) return AIOS_OK;
    if (!cJSON_IsArray(arr)) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: added_tokens is not a list");
    size_t n = (size_t)cJSON_GetArraySize(arr);
    t->added = calloc(n + 1, sizeof *t->added);
    if (!t->added) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    int32_t max_id = -1;
    for (const cJSON *e = arr->child; e; e = e->next) {
        const char *c = tk_jstr(e, "content");
        const cJSON *id = tk_j(e, "id");
        if (!c || !id || !cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 0x7FFFFFF)
            return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: added_tokens[%zu] needs content and a valid id", t->nadded);
        added_tok *a = &t->added[t->nadded];
        a->content_len = strlen(c);
        a->content = malloc(a->content_len + 1);
        if (!a->content) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(a->content, c, a->content_len + 1);
        a->norm = a->content;
        a->norm_len = a->content_len;
        a->id = (int32_t)id->valuedouble;
        a->special = tk_jbool(e, "special", 0);
        a->single_word = tk_jbool(e, "single_word", 0);
        a->lstrip = tk_jbool(e, "lstrip", 0);
        a->rstrip = tk_jbool(e, "rstrip", 0);
        a->normalized = tk_jbool(e, "normalized", !a->special);
        t->nadded++;
        if (a->id > max_id) max_id = a->id;
        if (a->content_len == 0) continue;
        AIOS_TRY(tk_strmap_put(&t->added_map, a->content, a->content_len, (int32_t)(t->nadded - 1)));
    }
    t->added_id_cap = (size_t)(max_id + 1);
    t->added_by_id = calloc(t->added_id_cap + 1, sizeof *t->added_by_id);
    if (!t->added_by_id) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < t->nadded; i++) t->added_by_id[t->added[i].id] = (int32_t)(i + 1);
    return AIOS_OK;
}

static aios_status normalize_added(aios_tokenizer *t) {
    for (size_t i = 0; i < t->nadded; i++) {
        added_tok *a = &t->added[i];
        if (!a->normalized || !t->norm || a->content_len == 0) continue;
        tk_nstr s = {0};
        AIOS_TRY(tk_nstr_reserve(&s, a->content_len + 1));
        memcpy(s.b, a->content, a->content_len);
        for (size_t k = 0; k < a->content_len; k++) s.al[k] = (tk_span){0, (uint32_t)a->content_len};
        s.len = a->content_len;
        s.b[s.len] = 0;
        aios_status st = tk_normalize(t->norm, &s);
        if (st != AIOS_OK) {
            tk_nstr_free(&s);
            return st;
        }
        if (s.len != a->content_len || memcmp(s.b, a->content, s.len)) {
            a->norm = malloc(s.len + 1);
            if (!a->norm) {
                a->norm = a->content;
                tk_nstr_free(&s);
                return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
            }
            memcpy(a->norm, s.b, s.len);
            a->norm[s.len] = 0;
            a->norm_len = s.len;
        }
        tk_nstr_free(&s);
    }
    return AIOS_OK;
}

static int32_t lookup_id(const aios_tokenizer *t, const char *s) {
    if (!s) return -1;
    return aios_tokenizer_token_to_id(t, s);
}

static const char *cfg_tok(const cJSON *cfg, const char *key) {
    const cJSON *v = tk_j(cfg, key);
    if (!v) return NULL;
    if (cJSON_IsString(v)) return v->valuestring;
    return tk_jstr(v, "content");
}

static void find_specials(aios_tokenizer *t, const cJSON *cfg, const cJSON *root) {
    aios_tok_special_ids *s = &t->special;
    s->bos = lookup_id(t, cfg_tok(cfg, "bos_token"));
    s->eos = lookup_id(t, cfg_tok(cfg, "eos_token"));
    s->unk = lookup_id(t, cfg_tok(cfg, "unk_token"));
    s->pad = lookup_id(t, cfg_tok(cfg, "pad_token"));
    s->mask = lookup_id(t, cfg_tok(cfg, "mask_token"));
    s->cls = lookup_id(t, cfg_tok(cfg, "cls_token"));
    s->sep = lookup_id(t, cfg_tok(cfg, "sep_token"));
    static const char *bos[] = {"<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>", NULL};
    static const char *eos[] = {"</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", NULL};
    static const char *unk[] = {"[UNK]", "<unk>", "<|unk|>", NULL};
    static const char *pad[] = {"[PAD]", "<pad>", "<|pad|>", NULL};
    static const char *mask[] = {"[MASK]", "<mask>", "<|mask|>", NULL};
    static const char *cls[] = {"[CLS]", "<cls>", NULL};
    static const char *sep[] = {"[SEP]", "<sep>", NULL};
    struct { int32_t *dst; const char **names; } g[] = {{&s->bos, bos}, {&s->eos, eos}, {&s->unk, unk}, {&s->pad, pad},
                                                        {&s->mask, mask}, {&s->cls, cls}, {&s->sep, sep}};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(g); i++)
        for (const char **n = g[i].names; *g[i].dst < 0 && *n; n++) *g[i].dst = lookup_id(t, *n);
    if (s->unk < 0) s->unk = lookup_id(t, tk_jstr(tk_j(root, "model"), "unk_token"));
    if (s->pad < 0) s->pad = lookup_id(t, tk_jstr(tk_j(root, "padding"), "pad_token"));
    const cJSON *ml = tk_j(cfg, "model_max_length");
    if (ml && cJSON_IsNumber(ml) && ml->valuedouble > 0 && ml->valuedouble < 1e9) t->model_max_length = (size_t)ml->valuedouble;
}

static void parse_defaults(aios_tokenizer *t, const cJSON *root) {
    aios_tok_params *p = &t->defaults;
    memset(p, 0, sizeof *p);
    p->add_special_tokens = 1;
    p->pad_id = 0;
    const cJSON *tr = tk_j(root, "truncation");
    if (tr && cJSON_IsObject(tr)) {
        const cJSON *ml = tk_j(tr, "max_length");
        if (ml && cJSON_IsNumber(ml) && ml->valuedouble >= 1 && ml->valuedouble < 1e9) p->max_length = (size_t)ml->valuedouble;
        const cJSON *sd = tk_j(tr, "stride");
        if (sd && cJSON_IsNumber(sd) && sd->valuedouble >= 0 && sd->valuedouble < 1e9) p->stride = (size_t)sd->valuedouble;
        const char *s = tk_jstr(tr, "strategy");
        if (s && !strcmp(s, "OnlyFirst")) p->trunc_strategy = AIOS_TRUNC_ONLY_FIRST;
        if (s && !strcmp(s, "OnlySecond")) p->trunc_strategy = AIOS_TRUNC_ONLY_SECOND;
        const char *d = tk_jstr(tr, "direction");
        p->trunc_left = d && !strcmp(d, "Left");
    }
    const cJSON *pd = tk_j(root, "padding");
    if (pd && cJSON_IsObject(pd)) {
        const cJSON *strat = tk_j(pd, "strategy");
        if (strat && cJSON_IsString(strat) && !strcmp(strat->valuestring, "BatchLongest")) p->pad_strategy = AIOS_PAD_LONGEST;
        else if (strat && cJSON_IsObject(strat)) {
            const cJSON *f = tk_j(strat, "Fixed");
            if (f && cJSON_IsNumber(f) && f->valuedouble >= 0 && f->valuedouble < 1e9) {
                p->pad_strategy = AIOS_PAD_FIXED;
                p->pad_length = (size_t)f->valuedouble;
            }
        }
        const char *dir = tk_jstr(pd, "direction");
        p->pad_left = dir && !strcmp(dir, "Left");
        const cJSON *m = tk_j(pd, "pad_to_multiple_of");
        if (m && cJSON_IsNumber(m) && m->valuedouble >= 1 && m->valuedouble < 1e6) p->pad_to_multiple_of = (size_t)m->valuedouble;
        const cJSON *id = tk_j(pd, "pad_id");
        if (id && cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble < 2e9) p->pad_id = (int32_t)id->valuedouble;
        const cJSON *ti = tk_j(pd, "pad_type_id");
        if (ti && cJSON_IsNumber(ti) && ti->valuedouble >= 0 && ti->valuedouble < 2e9) p->pad_type_id = (int32_t)ti->valuedouble;
        const char *pt = tk_jstr(pd, "pad_token");
        snprintf(p->pad_token, sizeof p->pad_token, "%s", pt ? pt : "[PAD]");
    } else {
        snprintf(p->pad_token, sizeof p->pad_token, "[PAD]");
    }
}

aios_status aios_tokenizer_load_json(const char *json, size_t len, const char *config_json, size_t config_len,
                                     aios_tokenizer **out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "tokenizer: out is NULL");
    *out = NULL;
    if (!json) return aios__err(AIOS_ERR_INVALID_ARG, "tokenizer: json is NULL");
    tk_json *rdoc = NULL, *cdoc = NULL;
    aios_status pst = tk_json_parse(json, len, &rdoc);
    if (pst != AIOS_OK) return aios__err_prefix(pst, "tokenizer.json");
    if (config_json && tk_json_parse(config_json, config_len, &cdoc) != AIOS_OK) cdoc = NULL; /* optional */
    const cJSON *root = tk_json_root(rdoc), *cfg = tk_json_root(cdoc);
    aios_tokenizer *t = calloc(1, sizeof *t);
    aios_status st = t ? AIOS_OK : aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    if (st == AIOS_OK && !cJSON_IsObject(root)) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: top level is not an object");
    const cJSON *j;
    if (st == AIOS_OK) st = tk_model_parse(tk_j(root, "model"), &t->model);
    if (st == AIOS_OK && (j = tk_j(root, "normalizer"))) st = tk_normalizer_parse(j, &t->norm);
    if (st == AIOS_OK && (j = tk_j(root, "pre_tokenizer"))) st = tk_pretok_parse(j, &t->pre);
    if (st == AIOS_OK && (j = tk_j(root, "post_processor"))) st = tk_post_parse(j, &t->post);
    if (st == AIOS_OK && (j = tk_j(root, "decoder"))) st = tk_decoder_parse(j, &t->dec);
    if (st == AIOS_OK) st = parse_added(t, tk_j(root, "added_tokens"));
    if (st == AIOS_OK) st = normalize_added(t);
    if (st == AIOS_OK) st = build_set(t, &t->raw_set, 0);
    if (st == AIOS_OK) st = build_set(t, &t->norm_set, 1);
    if (st == AIOS_OK) {
        parse_defaults(t, root);
        find_specials(t, cfg, root);
        /* tokenizer_config.json can mark added tokens special (added_tokens_decoder) */
        const cJSON *atd = tk_j(cfg, "added_tokens_decoder");
        if (atd && cJSON_IsObject(atd))
            for (const cJSON *e = atd->child; e; e = e->next) {
                const char *c = tk_jstr(e, "content");
                if (!c) continue;
                int32_t k = tk_strmap_get(&t->added_map, c, strlen(c));
                if (k >= 0 && tk_jbool(e, "special", 0)) t->added[k].special = 1;
            }
    }
    tk_json_free(rdoc);
    tk_json_free(cdoc);
    if (st != AIOS_OK) {
        aios_tokenizer_free(t);
        return st;
    }
    *out = t;
    return AIOS_OK;
}

aios_status aios_tokenizer_load(const char *path, aios_tokenizer **out) {
    if (!out || !path) return aios__err(AIOS_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    char file[4096], dir[4096];
    struct stat sb;
    if (stat(path, &sb) != 0) return aios__err(AIOS_ERR_NOT_FOUND, "tokenizer: %s: no such file or directory", path);
    if (S_ISDIR(sb.st_mode)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    if (!S_ISDIR(sb.st_mode)) { /* a GGUF file: by its magic */
        FILE *f = fopen(path, "rb");
        char mg[4] = {0};
        int gguf = f && fread(mg, 1, 4, f) == 4 && !memcmp(mg, "GGUF", 4);
        if (f) fclose(f);
        if (gguf) return aios_tokenizer_load_gguf(path, out);
    }
    char *json = NULL, *cfg = NULL;
    size_t jlen = 0, clen = 0;
    aios_status st = aios__read_file(file, &json, &jlen);
    if (st != AIOS_OK) return aios__err_prefix(st, "tokenizer");
    char cfgpath[4200];
    snprintf(cfgpath, sizeof cfgpath, "%s/tokenizer_config.json", dir);
    if (stat(cfgpath, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (aios__read_file(cfgpath, &cfg, &clen) != AIOS_OK) cfg = NULL;
    }
    st = aios_tokenizer_load_json(json, jlen, cfg, clen, out);
    free(json);
    free(cfg);
    if (st != AIOS_OK) return aios__err_prefix(st, "%s", file);
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- queries */
aios_tok_params aios_tokenizer_default_params(const aios_tokenizer *t) {
    aios_tok_params p;
    if (t) return t->defaults;
    memset(&p, 0, sizeof p);
    p.add_special_tokens = 1;
    snprintf(p.pad_token, sizeof p.pad_token, "[PAD]");
    return p;
}

size_t aios_tokenizer_vocab_size(const aios_tokenizer *t) {
    if (!t) return 0;
    size_t n = tk_model_vocab_size(t->model);
    for (size_t i = 0; i < t->nadded; i++) {
        size_t l;
        if (!tk_model_id_to_token(t->model, t->added[i].id, &l)) n++;
    }
    return n;
}

int32_t aios_tokenizer_token_to_id(const aios_tokenizer *t, const char *s) {
    if (!t || !s) return -1;
    size_t l = strlen(s);
    int32_t k = tk_strmap_get(&t->added_map, s, l);
    if (k >= 0) return t->added[k].id;
    return tk_model_token_to_id(t->model, s, l);
}

const char *aios_tokenizer_id_to_token(const aios_tokenizer *t, int32_t id) {
    if (!t) return NULL;
    const added_tok *a = added_by_id(t, id);
    if (a) return a->norm; /* its normalized form, as tokenizers' id_to_token */
    return tk_model_id_to_token(t->model, id, NULL);
}

aios_tok_special_ids aios_tokenizer_special_ids(const aios_tokenizer *t) {
    aios_tok_special_ids none = {-1, -1, -1, -1, -1, -1, -1};
    return t ? t->special : none;
}

size_t aios_tokenizer_model_max_length(const aios_tokenizer *t) { return t ? t->model_max_length : 0; }

/* ---------------------------------------------------------------------------- encode */
/* Repairs invalid UTF-8 (maximal subparts -> U+FFFD).  *fixed is NULL when s is valid. */
static aios_status sanitize(const uint8_t *s, size_t n, int mode, uint8_t **fixed, size_t *flen) {
    *fixed = NULL;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int l = tk_utf8_dec(s + i, n - i, &cp);
        if (!l) break;
        i += (size_t)l;
    }
    if (i == n) return AIOS_OK;
    if (mode == AIOS_TOK_UTF8_ERROR) return aios__err(AIOS_ERR_ENCODING, "tokenizer: invalid UTF-8 at byte offset %zu", i);
    aios_buf b = {0};
    AIOS_TRY(aios_buf_reserve(&b, n + 16));
    memcpy(b.data, s, i);
    b.len = i;
    while (i < n) {
        uint32_t cp;
        int l = tk_utf8_dec(s + i, n - i, &cp);
        if (l) {
            aios_status st = aios_buf_append(&b, s + i, (size_t)l);
            if (st) {
                aios_buf_free(&b);
                return st;
            }
            i += (size_t)l;
            continue;
        }
        size_t k = 1;
        uint8_t c = s[i];
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        while (k < need && i + k < n && (s[i + k] & 0xC0) == 0x80) {
            if (k == 1) {
                uint8_t d = s[i + 1];
                if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) || (c == 0xF4 && d > 0x8F)) break;
            }
            k++;
        }
        aios_status st = aios_buf_append(&b, "\xef\xbf\xbd", 3);
        if (st) {
            aios_buf_free(&b);
            return st;
        }
        i += k;
    }
    *fixed = b.data;
    *flen = b.len;
    return AIOS_OK;
}

typedef struct {
    tk_splits a, b;
    tk_mtoks mt;
    tk_enc ea, eb, fin;
    tk_arena arena;
    uint32_t *b2c;
    size_t b2c_cap;
} workspace;

static void ws_free(workspace *w) {
    tk_splits_free(&w->a);
    tk_splits_free(&w->b);
    tk_mtoks_free(&w->mt);
    tk_enc_free(&w->ea);
    tk_enc_free(&w->eb);
    tk_enc_free(&w->fin);
    tk_arena_free(&w->arena);
    free(w->b2c);
}

static aios_status encode_seq_body(const aios_tokenizer *t, const uint8_t *s, size_t n, int32_t type_id, int enc_special,
                                   workspace *w, tk_enc *out);

/* One sequence -> tk_enc (no special tokens), offsets in chars of the (valid) text. */
static aios_status encode_seq(const aios_tokenizer *t, const uint8_t *s, size_t n, int32_t type_id, int enc_special, workspace *w,
                              tk_enc *out) {
    if (n > UINT32_MAX - 16) return aios__err(AIOS_ERR_RANGE, "tokenizer: text of %zu bytes is too long", n);
    /* byte -> char index */
    if (w->b2c_cap < n + 1) {
        uint32_t *p = realloc(w->b2c, (n + 1) * sizeof *p);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        w->b2c = p;
        w->b2c_cap = n + 1;
    }
    tk_splits_clear(&w->a);
    tk_splits_clear(&w->b);
    tk_arena_reset(&w->arena); /* nothing of the previous sequence is referenced any more */
    tk_arena_use(&w->arena);
    aios_status st = encode_seq_body(t, s, n, type_id, enc_special, w, out);
    tk_splits_clear(&w->a);
    tk_splits_clear(&w->b);
    tk_arena_use(NULL);
    return st;
}

static aios_status encode_seq_body(const aios_tokenizer *t, const uint8_t *s, size_t n, int32_t type_id, int enc_special,
                                   workspace *w, tk_enc *out) {
    tk_nstr whole = {0};
    AIOS_TRY(tk_nstr_reserve(&whole, n + 1));
    memcpy(whole.b, s, n);
    whole.len = n;
    whole.b[n] = 0;
    uint32_t ci = 0;
    for (size_t i = 0; i < n;) {
        size_t l = (size_t)tk_utf8_len(s[i]);
        if (i + l > n) l = n - i;
        for (size_t k = 0; k < l; k++) {
            whole.al[i + k] = (tk_span){(uint32_t)i, (uint32_t)(i + l)};
            w->b2c[i + k] = ci;
        }
        ci++;
        i += l;
    }
    aios_status st = split_added(t, &t->raw_set, enc_special, &whole, &w->b);
    /* normalize + normalized added tokens */
    for (size_t i = 0; st == AIOS_OK && i < w->b.n; i++) {
        tk_split *sp = &w->b.v[i];
        if (sp->tok_id >= 0) {
            st = tk_splits_push(&w->a, &sp->n, sp->tok_id);
            continue;
        }
        st = tk_normalize(t->norm, &sp->n);
        if (st == AIOS_OK) st = split_added(t, &t->norm_set, enc_special, &sp->n, &w->a);
    }
    w->b.n = 0; /* entries were moved out */
    if (st == AIOS_OK) st = tk_pretokenize(t->pre, &w->a, &w->b);
    for (size_t i = 0; st == AIOS_OK && i < w->a.n; i++) {
        tk_split *sp = &w->a.v[i];
        w->mt.n = 0;
        if (sp->tok_id >= 0) {
            st = tk_mtoks_push(&w->mt, sp->tok_id, 0, sp->n.len, (const char *)sp->n.b, sp->n.len);
        } else {
            st = tk_model_tokenize(t->model, sp->n.b, sp->n.len, &w->mt);
        }
        for (size_t k = 0; st == AIOS_OK && k < w->mt.n; k++) {
            const tk_mtok *m = &w->mt.v[k];
            size_t bs, be;
            if (m->s < m->e && m->e <= sp->n.len) {
                bs = sp->n.al[m->s].s;
                be = sp->n.al[m->e - 1].e;
            } else {
                bs = sp->n.len ? sp->n.al[0].s + m->s : m->s;
                be = sp->n.len ? sp->n.al[0].s + m->e : m->e;
            }
            /* bytes -> chars (BytesToCharOffsetConverter) */
            size_t cs, ce;
            if (bs < n) {
                cs = w->b2c[bs];
                if (be < n) ce = w->b2c[be];
                else ce = (n > 0 ? w->b2c[n - 1] : cs) + 1;
            } else {
                cs = bs;
                ce = be;
            }
            st = tk_enc_push(out, m->id, m->val ? m->val : "", m->vlen, (uint32_t)cs, (uint32_t)ce, type_id, 0);
        }
    }
    return st;
}

static void truncate_enc(tk_enc *e, size_t keep, int left) {
    if (e->n <= keep) return;
    if (left) {
        size_t drop = e->n - keep;
        memmove(e->ids, e->ids + drop, keep * sizeof *e->ids);
        memmove(e->type_ids, e->type_ids + drop, keep * sizeof *e->type_ids);
        memmove(e->special, e->special + drop, keep);
        memmove(e->off, e->off + drop, keep * sizeof *e->off);
        memmove(e->toff, e->toff + drop, keep * sizeof *e->toff);
        memmove(e->tlen, e->tlen + drop, keep * sizeof *e->tlen);
    }
    e->n = keep;
}

static aios_status do_truncate(const aios_tokenizer *t, const aios_tok_params *p, tk_enc *a, tk_enc *b) {
    if (p->max_length == 0) return AIOS_OK;
    size_t added = p->add_special_tokens ? tk_post_added(t->post, b != NULL) : 0;
    size_t max = p->max_length > added ? p->max_length - added : 0;
    size_t total = a->n + (b ? b->n : 0);
    if (total <= max) return AIOS_OK;
    size_t remove = total - max;
    if (p->trunc_strategy == AIOS_TRUNC_ONLY_FIRST || p->trunc_strategy == AIOS_TRUNC_ONLY_SECOND) {
        /* as tokenizers: the chosen sequence must keep at least one token */
        tk_enc *target = p->trunc_strategy == AIOS_TRUNC_ONLY_FIRST ? a : b;
        if (!target) return aios__err(AIOS_ERR_RANGE, "tokenizer: truncation only_second needs a pair of sequences");
        if (target->n <= remove)
            return aios__err(AIOS_ERR_RANGE, "tokenizer: truncation: sequence of %zu tokens too short to remove %zu", target->n, remove);
        truncate_enc(target, target->n - remove, p->trunc_left);
    } else if (!b) {
        truncate_enc(a, a->n - remove, p->trunc_left);
    } else {
        size_t n1 = a->n, n2 = b->n;
        int swap = n1 > n2;
        if (swap) {
            size_t x = n1;
            n1 = n2;
            n2 = x;
        }
        if (n1 > max / 2) {
            n1 = max / 2;
            n2 = n1 + max % 2;
        } else {
            n2 = max - n1;
        }
        if (swap) {
            size_t x = n1;
            n1 = n2;
            n2 = x;
        }
        truncate_enc(a, n1, p->trunc_left);
        truncate_enc(b, n2, p->trunc_left);
    }
    return AIOS_OK;
}

/* A public encoding is one allocation: the struct, its arrays, then the token strings. */
static aios_encoding *enc_alloc(size_t n, size_t strbytes) {
    size_t sz = sizeof(aios_encoding);
    size_t o_ids = sz;
    sz += (n + 1) * sizeof(int32_t);
    size_t o_type = sz;
    sz += (n + 1) * sizeof(int32_t);
    sz = (sz + 7) & ~(size_t)7;
    size_t o_off = sz;
    sz += (n + 1) * sizeof(size_t[2]);
    size_t o_tok = sz;
    sz += (n + 1) * sizeof(char *);
    size_t o_len = sz;
    sz += (n + 1) * sizeof(size_t);
    size_t o_sm = sz;
    sz += n + 1;
    size_t o_am = sz;
    sz += n + 1;
    size_t o_str = sz;
    sz += strbytes + 1;
    unsigned char *b = malloc(sz);
    if (!b) return NULL;
    aios_encoding *r = (aios_encoding *)b;
    memset(r, 0, sizeof *r);
    r->n = n;
    r->ids = (int32_t *)(b + o_ids);
    r->type_ids = (int32_t *)(b + o_type);
    r->offsets = (size_t(*)[2])(b + o_off);
    r->tokens = (char **)(b + o_tok);
    r->token_lens = (size_t *)(b + o_len);
    r->special_tokens_mask = b + o_sm;
    r->attention_mask = b + o_am;
    r->tokens[n] = (char *)(b + o_str); /* string area (tokens[n] reset to NULL by the caller) */
    return r;
}

static aios_status to_public(const tk_enc *e, aios_encoding **out) {
    size_t n = e->n, bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += e->tlen[i] + 1;
    aios_encoding *r = enc_alloc(n, bytes);
    if (!r) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    char *str = r->tokens[n];
    for (size_t i = 0; i < n; i++) {
        r->ids[i] = e->ids[i];
        r->type_ids[i] = e->type_ids[i];
        r->special_tokens_mask[i] = e->special[i];
        r->attention_mask[i] = 1;
        r->offsets[i][0] = e->off[i].s;
        r->offsets[i][1] = e->off[i].e;
        memcpy(str, tk_enc_tok(e, i), e->tlen[i] + 1);
        r->tokens[i] = str;
        r->token_lens[i] = e->tlen[i];
        str += e->tlen[i] + 1;
    }
    r->tokens[n] = NULL;
    *out = r;
    return AIOS_OK;
}

void aios_encoding_free(aios_encoding *e) { free(e); /* one block */ }

/* Pads an encoding to `len` tokens (a new block replaces *pe). */
static aios_status pad_to(aios_encoding **pe, size_t len, const aios_tok_params *p) {
    aios_encoding *e = *pe;
    if (e->n >= len) return AIOS_OK;
    size_t n = e->n, add = len - n, pl = strnlen(p->pad_token, sizeof p->pad_token), bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += e->token_lens[i] + 1;
    aios_encoding *r = enc_alloc(len, bytes + add * (pl + 1));
    if (!r) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    char *str = r->tokens[len];
    size_t at = p->pad_left ? add : 0, pad_at = p->pad_left ? 0 : n;
    for (size_t i = 0; i < n; i++) {
        size_t k = at + i;
        r->ids[k] = e->ids[i];
        r->type_ids[k] = e->type_ids[i];
        r->special_tokens_mask[k] = e->special_tokens_mask[i];
        r->attention_mask[k] = e->attention_mask[i];
        r->offsets[k][0] = e->offsets[i][0];
        r->offsets[k][1] = e->offsets[i][1];
        memcpy(str, e->tokens[i], e->token_lens[i] + 1);
        r->tokens[k] = str;
        r->token_lens[k] = e->token_lens[i];
        str += e->token_lens[i] + 1;
    }
    for (size_t k = pad_at; k < pad_at + add; k++) {
        r->ids[k] = p->pad_id;
        r->type_ids[k] = p->pad_type_id;
        r->special_tokens_mask[k] = 1;
        r->attention_mask[k] = 0;
        r->offsets[k][0] = r->offsets[k][1] = 0;
        memcpy(str, p->pad_token, pl);
        str[pl] = 0;
        r->tokens[k] = str;
        r->token_lens[k] = pl;
        str += pl + 1;
    }
    r->tokens[len] = NULL;
    free(e);
    *pe = r;
    return AIOS_OK;
}

static size_t round_up(size_t n, size_t m) { return m ? (n + m - 1) / m * m : n; }

static aios_status encode_impl(const aios_tokenizer *t, const char *ta, size_t alen, const char *tb, size_t blen,
                               const aios_tok_params *params, workspace *w, aios_encoding **out) {
    *out = NULL;
    if (!t) return aios__err(AIOS_ERR_INVALID_ARG, "tokenizer: NULL tokenizer");
    if (!ta && alen) return aios__err(AIOS_ERR_INVALID_ARG, "tokenizer: NULL text");
    const aios_tok_params *p = params ? params : &t->defaults;
    uint8_t *fa = NULL, *fb = NULL;
    size_t fal = 0, fbl = 0;
    const uint8_t *sa = (const uint8_t *)(ta ? ta : ""), *sb = (const uint8_t *)tb;
    AIOS_TRY(sanitize(sa, alen, p->invalid_utf8, &fa, &fal));
    if (fa) sa = fa, alen = fal;
    aios_status st = AIOS_OK;
    if (tb) {
        st = sanitize(sb, blen, p->invalid_utf8, &fb, &fbl);
        if (fb) sb = fb, blen = fbl;
    }
    tk_enc *ea = &w->ea, *eb = &w->eb, *fin = &w->fin;
    tk_enc_reset(ea);
    tk_enc_reset(eb);
    tk_enc_reset(fin);
    if (st == AIOS_OK) st = encode_seq(t, sa, alen, 0, p->encode_special_tokens, w, ea);
    if (st == AIOS_OK && tb) st = encode_seq(t, sb, blen, 1, p->encode_special_tokens, w, eb);
    if (st == AIOS_OK) st = do_truncate(t, p, ea, tb ? eb : NULL);
    if (st == AIOS_OK) st = tk_post_process(t->post, ea, tb ? eb : NULL, p->add_special_tokens, fin, sa, alen, sb, blen);
    if (st == AIOS_OK) st = to_public(fin, out);
    if (st == AIOS_OK && p->pad_strategy == AIOS_PAD_FIXED) {
        st = pad_to(out, round_up(p->pad_length, p->pad_to_multiple_of), p);
        if (st != AIOS_OK) {
            aios_encoding_free(*out);
            *out = NULL;
        }
    }
    free(fa);
    free(fb);
    return st;
}

/* Per-thread scratch kept between calls (freed by a key destructor when the thread ends). */
static pthread_key_t g_ws_key;
static pthread_once_t g_ws_once = PTHREAD_ONCE_INIT;
static void ws_destroy(void *p) {
    ws_free(p);
    free(p);
}
static void ws_key_make(void) { (void)pthread_key_create(&g_ws_key, ws_destroy); }

static workspace *thread_ws(void) {
    pthread_once(&g_ws_once, ws_key_make);
    workspace *w = pthread_getspecific(g_ws_key);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (w && pthread_setspecific(g_ws_key, w) != 0) {
            free(w);
            w = NULL;
        }
    }
    return w;
}

aios_status aios_tokenizer_encode(const aios_tokenizer *t, const char *text, size_t len, const aios_tok_params *params,
                                  aios_encoding **out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "tokenizer: out is NULL");
    workspace *w = thread_ws();
    if (!w) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    return encode_impl(t, text, len, NULL, 0, params, w, out);
}

aios_status aios_tokenizer_encode_pair(const aios_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                                       const aios_tok_params *params, aios_encoding **out) {
    if (!out) return aios__err(AIOS_ERR_INVALID_ARG, "tokenizer: out is NULL");
    workspace w = {0};
    aios_status st = encode_impl(t, a, alen, b ? b : "", blen, params, &w, out);
    ws_free(&w);
    return st;
}

typedef struct {
    const aios_tokenizer *t;
    const char *const *texts;
    const size_t *lens;
    size_t n;
    const aios_tok_params *p;
    aios_encoding **out;
    size_t next; /* atomic work counter */
    aios_status st;
    char err[256];
    pthread_mutex_t mu;
} batch_job;

static void *batch_worker(void *arg) {
    batch_job *j = arg;
    workspace w = {0};
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 16, __ATOMIC_RELAXED);
        if (i >= j->n) break;
        size_t e = AIOS_MIN(i + 16, j->n);
        for (; i < e; i++) {
            aios_status st = encode_impl(j->t, j->texts[i], j->lens ? j->lens[i] : (j->texts[i] ? strlen(j->texts[i]) : 0),
                                         NULL, 0, j->p, &w, &j->out[i]);
            if (st != AIOS_OK) {
                pthread_mutex_lock(&j->mu);
                if (j->st == AIOS_OK) {
                    j->st = st;
                    snprintf(j->err, sizeof j->err, "text %zu: %s", i, aios_last_error());
                }
                pthread_mutex_unlock(&j->mu);
            }
        }
    }
    ws_free(&w);
    return NULL;
}

aios_status aios_tokenizer_encode_batch(const aios_tokenizer *t, const char *const *texts, const size_t *lens, size_t n,
                                        const aios_tok_params *params, int n_threads, aios_encoding **out) {
    if (!t || (!texts && n) || (!out && n)) return aios__err(AIOS_ERR_INVALID_ARG, "tokenizer: NULL argument");
    for (size_t i = 0; i < n; i++) out[i] = NULL;
    const aios_tok_params *p = params ? params : &t->defaults;
    batch_job j = {t, texts, lens, n, p, out, 0, AIOS_OK, {0}, PTHREAD_MUTEX_INITIALIZER};
    int nt = n_threads > 0 ? n_threads : aios_cpu()->n_cores;
    if ((size_t)nt > (n + 15) / 16) nt = (int)((n + 15) / 16);
    if (nt < 1) nt = 1;
    if (nt > 256) nt = 256;
    pthread_t th[256];
    int started = 0;
    for (int i = 1; i < nt; i++) {
        if (pthread_create(&th[started], NULL, batch_worker, &j) != 0) break;
        started++;
    }
    batch_worker(&j);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    aios_status st = j.st;
    if (st == AIOS_OK && p->pad_strategy != AIOS_PAD_NONE) {
        size_t longest = 0;
        for (size_t i = 0; i < n; i++) longest = AIOS_MAX(longest, out[i]->n);
        size_t target = p->pad_strategy == AIOS_PAD_FIXED ? p->pad_length : longest;
        target = round_up(target, p->pad_to_multiple_of);
        for (size_t i = 0; st == AIOS_OK && i < n; i++) st = pad_to(&out[i], target, p);
        if (st != AIOS_OK) snprintf(j.err, sizeof j.err, "%s", aios_last_error());
    }
    if (st != AIOS_OK) {
        for (size_t i = 0; i < n; i++) {
            aios_encoding_free(out[i]);
            out[i] = NULL;
        }
        return aios__err(st, "tokenizer: batch: %s", j.err);
    }
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- decode */
aios_status aios_tokenizer_decode(const aios_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out,
                                  size_t *len) {
    if (!t || !out || (!ids && n)) return aios__err(AIOS_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    char **toks = malloc((n + 1) * sizeof *toks);
    size_t *lens = malloc((n + 1) * sizeof *lens);
    if (!toks || !lens) {
        free(toks);
        free(lens);
        return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const added_tok *a = added_by_id(t, ids[i]);
        const char *s;
        size_t l;
        if (a) {
            s = a->norm;
            l = a->norm_len;
            /* skip when the token's text (normalized form) is a special token's content */
            if (skip_special) {
                int32_t ai = tk_strmap_get(&t->added_map, s, l);
                if (ai >= 0 && t->added[ai].special) continue;
            }
        } else {
            s = tk_model_id_to_token(t->model, ids[i], &l);
            if (!s) continue;
            if (skip_special) {
                int32_t ai = tk_strmap_get(&t->added_map, s, l);
                if (ai >= 0 && t->added[ai].special) continue;
            }
        }
        toks[k] = (char *)s;
        lens[k++] = l;
    }
    aios_buf b = {0};
    aios_status st = tk_decode_tokens(t->dec, toks, lens, k, &b);
    free(toks);
    free(lens);
    if (st == AIOS_OK) st = aios_buf_append(&b, "", 1);
    if (st != AIOS_OK) {
        aios_buf_free(&b);
        return st;
    }
    *out = (char *)b.data;
    if (len) *len = b.len - 1;
    return AIOS_OK;
}
