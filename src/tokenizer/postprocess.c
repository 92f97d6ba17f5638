/*
 * postprocess.c — tokenizer.json post-processors: TemplateProcessing, BertProcessing,
 * RobertaProcessing, ByteLevel (offset trimming), Sequence.
 *
 * Behaviour as the processors module of `tokenizers`: templates set the type id of every token of a
 * sequence even when special tokens are not added; added special tokens get offsets (0,0) and
 * special mask 1; Roberta sets every type id to 0; ByteLevel trims offsets over leading and
 * trailing spaces ('Ġ' or whitespace) in the token text.  Offsets here are char offsets.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

enum { PP_TEMPLATE, PP_BERT, PP_ROBERTA, PP_BYTELEVEL, PP_SEQ };

typedef struct {
    int is_seq;   /* 1: Sequence piece (A or B), 0: special token */
    int seq_b;    /* for Sequence: 1 = B */
    int32_t type_id;
    size_t special; /* index into specials */
} piece;

typedef struct {
    char *name;
    int32_t *ids;
    char **toks;
    size_t n;
} special;

struct tk_post {
    int type;
    piece *single, *pair;
    size_t nsingle, npair;
    special *specials;
    size_t nspecials;
    int trim_offsets, add_prefix_space; /* ByteLevel / Roberta */
    tk_post **kids;
    size_t nkids;
};

void tk_post_free(tk_post *p) {
    if (!p) return;
    for (size_t i = 0; i < p->nspecials; i++) {
        free(p->specials[i].name);
        for (size_t k = 0; k < p->specials[i].n; k++) free(p->specials[i].toks[k]);
        free(p->specials[i].toks);
        free(p->specials[i].ids);
    }
    free(p->specials);
    free(p->single);
    free(p->pair);
    for (size_t i = 0; i < p->nkids; i++) tk_post_free(p->kids[i]);
    free(p->kids);
    free(p);
}

static char *sdup(const char *s) {
    size_t l = strlen(s);
    char *d = malloc(l + 1);
    if (d) memcpy(d, s, l + 1);
    return d;
}

static aios_status add_special(tk_post *p, const char *name, const cJSON *ids, const cJSON *toks, size_t *idx) {
    size_t n = ids ? (size_t)cJSON_GetArraySize(ids) : 0;
    if (!ids || !toks || !cJSON_IsArray(ids) || !cJSON_IsArray(toks) || (size_t)cJSON_GetArraySize(toks) != n)
        return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: post_processor special token '%.60s' needs ids and tokens of one length", name);
    special *sp = realloc(p->specials, (p->nspecials + 1) * sizeof *sp);
    if (!sp) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    p->specials = sp;
    special *s = &sp[p->nspecials];
    memset(s, 0, sizeof *s);
    s->name = sdup(name);
    s->ids = calloc(n + 1, sizeof *s->ids);
    s->toks = calloc(n + 1, sizeof *s->toks);
    p->nspecials++;
    if (!s->name || !s->ids || !s->toks) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    const cJSON *a = ids->child, *b = toks->child;
    for (size_t i = 0; i < n; i++, a = a->next, b = b->next) {
        if (!cJSON_IsNumber(a) || !cJSON_IsString(b) || a->valuedouble < 0 || a->valuedouble > 2147483647.0)
            return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: post_processor special token '%.60s': bad id or token", name);
        s->ids[i] = (int32_t)a->valuedouble;
        s->toks[i] = sdup(b->valuestring);
        s->n++;
        if (!s->toks[i]) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    }
    *idx = p->nspecials - 1;
    return AIOS_OK;
}

static aios_status parse_template(tk_post *p, const cJSON *arr, piece **out, size_t *n) {
    if (!arr || !cJSON_IsArray(arr)) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: TemplateProcessing template is not a list");
    size_t k = (size_t)cJSON_GetArraySize(arr);
    *out = calloc(k + 1, sizeof **out);
    if (!*out) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    *n = 0;
    for (const cJSON *e = arr->child; e; e = e->next) {
        piece pc = {0};
        const cJSON *s = tk_j(e, "Sequence"), *t = tk_j(e, "SpecialToken");
        const cJSON *tid = tk_j(s ? s : t, "type_id");
        pc.type_id = tid && cJSON_IsNumber(tid) ? (int32_t)tid->valuedouble : 0;
        if (s) {
            const char *id = tk_jstr(s, "id");
            pc.is_seq = 1;
            pc.seq_b = id && !strcmp(id, "B");
        } else if (t) {
            const char *id = tk_jstr(t, "id");
            if (!id) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: TemplateProcessing SpecialToken without id");
            size_t i;
            for (i = 0; i < p->nspecials; i++)
                if (!strcmp(p->specials[i].name, id)) break;
            if (i == p->nspecials)
                return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: TemplateProcessing uses undefined special token '%.60s'", id);
            pc.special = i;
        } else return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: TemplateProcessing piece is neither Sequence nor SpecialToken");
        (*out)[(*n)++] = pc;
    }
    return AIOS_OK;
}

/* [token, id] pair of Bert/Roberta processing */
static aios_status parse_pair_tok(tk_post *p, const cJSON *j, const char *key, size_t *idx) {
    const cJSON *a = tk_j(j, key);
    if (!a || !cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2 || !cJSON_IsString(a->child) || !cJSON_IsNumber(a->child->next))
        return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: post_processor '%s' must be [token, id]", key);
    cJSON *ids = cJSON_CreateArray(), *toks = cJSON_CreateArray();
    if (!ids || !toks) {
        cJSON_Delete(ids);
        cJSON_Delete(toks);
        return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    }
    cJSON_AddItemToArray(ids, cJSON_CreateNumber(a->child->next->valuedouble));
    cJSON_AddItemToArray(toks, cJSON_CreateString(a->child->valuestring));
    aios_status st = add_special(p, a->child->valuestring, ids, toks, idx);
    cJSON_Delete(ids);
    cJSON_Delete(toks);
    return st;
}

aios_status tk_post_parse(const cJSON *j, tk_post **out) {
    *out = NULL;
    const char *t = tk_jstr(j, "type");
    if (!t) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: post_processor without a type");
    tk_post *p = calloc(1, sizeof *p);
    if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    aios_status st = AIOS_OK;
    if (!strcmp(t, "TemplateProcessing")) {
        p->type = PP_TEMPLATE;
        const cJSON *sp = tk_j(j, "special_tokens");
        if (sp && cJSON_IsObject(sp))
            for (const cJSON *e = sp->child; e && st == AIOS_OK; e = e->next) {
                size_t idx;
                const char *name = tk_jstr(e, "id");
                st = add_special(p, name ? name : (e->string ? e->string : ""), tk_j(e, "ids"), tk_j(e, "tokens"), &idx);
            }
        if (st == AIOS_OK) st = parse_template(p, tk_j(j, "single"), &p->single, &p->nsingle);
        if (st == AIOS_OK) st = parse_template(p, tk_j(j, "pair"), &p->pair, &p->npair);
    } else if (!strcmp(t, "BertProcessing") || !strcmp(t, "RobertaProcessing")) {
        int rob = t[0] == 'R';
        p->type = rob ? PP_ROBERTA : PP_BERT;
        size_t cls, sep;
        st = parse_pair_tok(p, j, "cls", &cls);
        if (st == AIOS_OK) st = parse_pair_tok(p, j, "sep", &sep);
        if (st == AIOS_OK) {
            p->trim_offsets = tk_jbool(j, "trim_offsets", 1);
            p->add_prefix_space = tk_jbool(j, "add_prefix_space", 1);
            p->single = calloc(3, sizeof *p->single);
            p->pair = calloc(6, sizeof *p->pair);
            if (!p->single || !p->pair) st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        }
        if (st == AIOS_OK) {
            piece c = {0, 0, 0, cls}, s0 = {0, 0, 0, sep}, a = {1, 0, 0, 0}, b = {1, 1, rob ? 0 : 1, 0},
                  s1 = {0, 0, rob ? 0 : 1, sep};
            p->single[0] = c, p->single[1] = a, p->single[2] = s0, p->nsingle = 3;
            if (rob) p->pair[0] = c, p->pair[1] = a, p->pair[2] = s0, p->pair[3] = s0, p->pair[4] = b, p->pair[5] = s1, p->npair = 6;
            else p->pair[0] = c, p->pair[1] = a, p->pair[2] = s0, p->pair[3] = b, p->pair[4] = s1, p->npair = 5;
        }
    } else if (!strcmp(t, "ByteLevel")) {
        p->type = PP_BYTELEVEL;
        p->trim_offsets = tk_jbool(j, "trim_offsets", 1);
        p->add_prefix_space = tk_jbool(j, "add_prefix_space", 1);
    } else if (!strcmp(t, "Sequence")) {
        p->type = PP_SEQ;
        const cJSON *arr = tk_j(j, "processors");
        if (!arr || !cJSON_IsArray(arr)) st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: post_processor Sequence without a list");
        else {
            int k = cJSON_GetArraySize(arr);
            p->kids = calloc((size_t)k + 1, sizeof *p->kids);
            if (!p->kids) st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
            for (int i = 0; st == AIOS_OK && i < k; i++) {
                st = tk_post_parse(cJSON_GetArrayItem(arr, i), &p->kids[i]);
                if (st == AIOS_OK) p->nkids++;
            }
        }
    } else st = aios__err(AIOS_ERR_UNSUPPORTED, "tokenizer.json: post_processor type '%s' is not supported", t);
    if (st != AIOS_OK) {
        tk_post_free(p);
        return st;
    }
    *out = p;
    return AIOS_OK;
}

size_t tk_post_added(const tk_post *p, int pair) {
    if (!p) return 0;
    if (p->type == PP_SEQ) {
        size_t n = 0;
        for (size_t i = 0; i < p->nkids; i++) n += tk_post_added(p->kids[i], pair);
        return n;
    }
    const piece *v = pair ? p->pair : p->single;
    size_t n = pair ? p->npair : p->nsingle, k = 0;
    for (size_t i = 0; i < n; i++)
        if (!v[i].is_seq) k += p->specials[v[i].special].n;
    return k;
}

static int is_space_char(const uint8_t *s, size_t n, size_t *len) {
    uint32_t cp;
    int l = tk_utf8_dec(s, n, &cp);
    if (!l) return 0;
    *len = (size_t)l;
    return cp == 0x120 || tk_is_whitespace(cp);
}

static void trim_offsets(tk_enc *e, int add_prefix_space) {
    for (size_t i = 0; i < e->n; i++) {
        const uint8_t *t = (const uint8_t *)tk_enc_tok(e, i);
        size_t n = e->tlen[i], lead = 0, trail = 0, p = 0, l;
        while (p < n && is_space_char(t + p, n - p, &l)) {
            lead++;
            p += l;
        }
        /* trailing: walk chars from the end */
        size_t end = n;
        while (end > 0) {
            size_t k = end - 1;
            while (k > 0 && (t[k] & 0xC0) == 0x80) k--;
            if (!is_space_char(t + k, end - k, &l)) break;
            trail++;
            end = k;
        }
        tk_span *o = &e->off[i];
        if (lead > 0) {
            int first = i == 0 || o->s == 0;
            if (first && add_prefix_space && lead == 1) lead = 0;
            o->s = (uint32_t)AIOS_MIN((size_t)o->s + lead, (size_t)o->e);
        }
        if (trail > 0 && o->e >= trail) o->e = (uint32_t)AIOS_MAX((size_t)o->e - trail, (size_t)o->s);
    }
}

static aios_status append_enc(tk_enc *out, const tk_enc *in, int32_t type_id, int set_type) {
    for (size_t i = 0; i < in->n; i++)
        AIOS_TRY(tk_enc_push(out, in->ids[i], tk_enc_tok(in, i), in->tlen[i], in->off[i].s, in->off[i].e,
                             set_type ? type_id : in->type_ids[i], in->special[i]));
    return AIOS_OK;
}

static aios_status apply(const tk_post *p, tk_enc *a, tk_enc *b, int add_special, tk_enc *out) {
    if (p->type == PP_BYTELEVEL) {
        if (p->trim_offsets) {
            trim_offsets(a, p->add_prefix_space);
            if (b) trim_offsets(b, p->add_prefix_space);
        }
        AIOS_TRY(append_enc(out, a, 0, 0));
        if (b) AIOS_TRY(append_enc(out, b, 1, 0));
        return AIOS_OK;
    }
    if (p->type == PP_ROBERTA && p->trim_offsets) {
        trim_offsets(a, p->add_prefix_space);
        if (b) trim_offsets(b, p->add_prefix_space);
    }
    if (p->type != PP_TEMPLATE && !add_special) {
        AIOS_TRY(append_enc(out, a, 0, p->type == PP_ROBERTA));
        if (b) AIOS_TRY(append_enc(out, b, 0, p->type == PP_ROBERTA));
        return AIOS_OK;
    }
    const piece *v = b ? p->pair : p->single;
    size_t n = b ? p->npair : p->nsingle;
    for (size_t i = 0; i < n; i++) {
        if (v[i].is_seq) {
            const tk_enc *e = v[i].seq_b ? b : a;
            if (e) AIOS_TRY(append_enc(out, e, v[i].type_id, 1));
        } else if (add_special) {
            const special *s = &p->specials[v[i].special];
            for (size_t k = 0; k < s->n; k++)
                AIOS_TRY(tk_enc_push(out, s->ids[k], s->toks[k], strlen(s->toks[k]), 0, 0, v[i].type_id, 1));
        }
    }
    return AIOS_OK;
}

aios_status tk_post_process(const tk_post *p, tk_enc *a, tk_enc *b, int add_special, tk_enc *out,
                            const uint8_t *ta, size_t na, const uint8_t *tb, size_t nb) {
    (void)ta, (void)na, (void)tb, (void)nb;
    if (!p) { /* default: concatenate, pair gets type id 1 */
        AIOS_TRY(append_enc(out, a, 0, 1));
        if (b) AIOS_TRY(append_enc(out, b, 1, 1));
        return AIOS_OK;
    }
    if (p->type != PP_SEQ) return apply(p, a, b, add_special, out);
    /* Sequence: offset-only processors act on the inputs, the first combining one merges */
    const tk_post *merger = NULL;
    for (size_t i = 0; i < p->nkids; i++) {
        const tk_post *k = p->kids[i];
        if (k->type == PP_BYTELEVEL) {
            if (k->trim_offsets) {
                trim_offsets(a, k->add_prefix_space);
                if (b) trim_offsets(b, k->add_prefix_space);
            }
        } else if (!merger && k->type != PP_SEQ) merger = k;
    }
    if (merger) return apply(merger, a, b, add_special, out);
    AIOS_TRY(append_enc(out, a, 0, 0));
    if (b) AIOS_TRY(append_enc(out, b, 1, 1));
    return AIOS_OK;
}
