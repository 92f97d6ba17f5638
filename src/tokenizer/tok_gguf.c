/*
 * tok_gguf.c — a tokenizer from a GGUF file's metadata alone (tokenizer.ggml.*).
 *
 * The metadata is translated into the tokenizer.json (and tokenizer_config.json) that the
 * Hugging Face converter would have written for the same vocabulary, and that text goes
 * through the one tokenizer.json loader — so a GGUF tokenizer is the same pipeline, with the
 * same ids, as the model's own tokenizer.json.
 *
 *   tokenizer.ggml.model = "gpt2"  byte-level BPE: tokens -> vocab, merges ("a b") -> merges;
 *                                  tokenizer.ggml.pre picks the pre-tokenizer llama.cpp uses
 *                                  (llama-vocab.cpp) in its tokenizer.json form:
 *       smollm               Digits(individual) + ByteLevel(regex)          (SmolLM/StarCoder)
 *       gpt-2, default, ...  ByteLevel(regex)                               (GPT-2's regex)
 *       llama-bpe, llama3    Split(Llama-3 regex) + ByteLevel(no regex)
 *       qwen2, deepseek-r1-qwen   Split(Qwen2 regex) + ByteLevel(no regex)
 *   tokenizer.ggml.model = "llama" SentencePiece BPE with byte fallback: the metaspace
 *                                  normalizer (Prepend "▁" when add_space_prefix, spaces to "▁"),
 *                                  merges rebuilt from the scores as `tokenizers`'
 *                                  SentencePieceExtractor does (every split of a piece into two
 *                                  pieces, ordered by the piece's score, then by ids).
 *   token_type 3 (control) and 4 (user defined) become added tokens (control ones special);
 *   add_bos_token / add_eos_token become a TemplateProcessing post-processor; bos / eos / unk /
 *   pad ids become tokenizer_config.json's *_token entries.
 * An unknown model or pre-tokenizer is refused naming the key and value.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "format/gguf.h"
#include "tokenizer/tok_internal.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static const char RE_LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static cJSON *bytelevel(int use_regex) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", 0);
    cJSON_AddBoolToObject(o, "trim_offsets", 1);
    cJSON_AddBoolToObject(o, "use_regex", use_regex);
    return o;
}

static cJSON *split_re(const char *re) {
    cJSON *o = cJSON_CreateObject(), *p = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "Split");
    cJSON_AddStringToObject(p, "Regex", re);
    cJSON_AddItemToObject(o, "pattern", p);
    cJSON_AddStringToObject(o, "behavior", "Isolated");
    cJSON_AddBoolToObject(o, "invert", 0);
    return o;
}

static cJSON *seq(const char *key, cJSON *a, cJSON *b) {
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "type", "Sequence");
    cJSON_AddItemToArray(arr, a);
    if (b) cJSON_AddItemToArray(arr, b);
    cJSON_AddItemToObject(o, key, arr);
    return o;
}

/* pre-tokenizer for tokenizer.ggml.pre (NULL name = default); NULL when unknown */
static cJSON *pretok_for(const char *pre) {
    if (!pre || !strcmp(pre, "default") || !strcmp(pre, "gpt-2") || !strcmp(pre, "gpt2")) return bytelevel(1);
    if (!strcmp(pre, "smollm") || !strcmp(pre, "starcoder") || !strcmp(pre, "refact") || !strcmp(pre, "codeshell")) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "type", "Digits");
        cJSON_AddBoolToObject(d, "individual_digits", 1);
        return seq("pretokenizers", d, bytelevel(1));
    }
    if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3") || !strcmp(pre, "smaug-bpe"))
        return seq("pretokenizers", split_re(RE_LLAMA3), bytelevel(0));
    if (!strcmp(pre, "qwen2") || !strcmp(pre, "deepseek-r1-qwen")) return seq("pretokenizers", split_re(RE_QWEN2), bytelevel(0));
    return NULL;
}

/* NUL-terminated copy of a GGUF string (NULL when it holds a NUL byte). */
static char *cstr(const aios_gguf_str *s) {
    if (memchr(s->s, 0, (size_t)s->n)) return NULL;
    char *p = malloc((size_t)s->n + 1);
    if (!p) return NULL;
    memcpy(p, s->s, (size_t)s->n);
    p[s->n] = 0;
    return p;
}

static int gbool(const aios_gguf *g, const char *key, int dflt) {
    const aios_gguf_value *v = aios_gguf_get(g, key);
    return v && v->type == AIOS_GGUF_BOOL ? (int)v->v.u : dflt;
}

/* ---- SentencePiece merges from scores ---------------------------------------------- */

typedef struct {
    int32_t l, r, t; /* left, right, merged token ids */
    float score;
} sp_merge;

static int cmp_merge(const void *a, const void *b) {
    const sp_merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

static aios_status spm_merges(const aios_gguf_value *toks, const aios_gguf_value *scores, cJSON *out) {
    uint64_t n = toks->v.arr.n;
    tk_strmap map = {0};
    aios_status st = tk_strmap_reserve(&map, (size_t)n);
    for (uint64_t i = 0; !st && i < n; i++)
        if (tk_strmap_get(&map, toks->v.arr.strs[i].s, (size_t)toks->v.arr.strs[i].n) < 0)
            st = tk_strmap_put(&map, toks->v.arr.strs[i].s, (size_t)toks->v.arr.strs[i].n, (int32_t)i);
    sp_merge *m = NULL;
    size_t nm = 0, cap = 0;
    for (uint64_t i = 0; !st && i < n; i++) {
        const aios_gguf_str *s = &toks->v.arr.strs[i];
        if (tk_strmap_get(&map, s->s, (size_t)s->n) != (int32_t)i) continue; /* a duplicate piece */
        for (size_t k = 1; k < s->n; k++) {
            if (((uint8_t)s->s[k] & 0xC0) == 0x80) continue; /* split between characters only */
            int32_t l = tk_strmap_get(&map, s->s, k), r = tk_strmap_get(&map, s->s + k, (size_t)s->n - k);
            if (l < 0 || r < 0) continue;
            if (nm == cap) {
                cap = cap ? 2 * cap : 4096;
                sp_merge *nmv = realloc(m, cap * sizeof *m);
                if (!nmv) {
                    st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
                    break;
                }
                m = nmv;
            }
            m[nm++] = (sp_merge){l, r, (int32_t)i, scores ? (float)aios_gguf_arr_f64(scores, i) : -(float)i};
        }
    }
    if (!st && nm) qsort(m, nm, sizeof *m, cmp_merge); /* m is NULL when no merge was found */
    for (size_t i = 0; !st && i < nm; i++) {
        cJSON *pair = cJSON_CreateArray();
        const aios_gguf_str *a = &toks->v.arr.strs[m[i].l], *b = &toks->v.arr.strs[m[i].r];
        char *ca = cstr(a), *cb = cstr(b);
        if (ca && cb) {
            cJSON_AddItemToArray(pair, cJSON_CreateString(ca));
            cJSON_AddItemToArray(pair, cJSON_CreateString(cb));
            cJSON_AddItemToArray(out, pair);
        } else {
            cJSON_Delete(pair);
        }
        free(ca);
        free(cb);
    }
    free(m);
    tk_strmap_free(&map);
    return st;
}

/* ---- the translation ------------------------------------------------------------- */

static aios_status build(const aios_gguf *g, cJSON *root, cJSON *cfg) {
    size_t ml, pl;
    const char *mp = aios_gguf_get_str(g, "tokenizer.ggml.model", &ml);
    if (!mp) return aios__err(AIOS_ERR_FORMAT, "key 'tokenizer.ggml.model' is missing");
    char model[32], pre[64];
    snprintf(model, sizeof model, "%.*s", (int)AIOS_MIN(ml, sizeof model - 1), mp);
    const char *pp = aios_gguf_get_str(g, "tokenizer.ggml.pre", &pl);
    if (pp) snprintf(pre, sizeof pre, "%.*s", (int)AIOS_MIN(pl, sizeof pre - 1), pp);
    int gpt2 = !strcmp(model, "gpt2"), spm = !strcmp(model, "llama");
    if (!gpt2 && !spm)
        return aios__err(AIOS_ERR_UNSUPPORTED, "tokenizer.ggml.model '%s' is not supported (supported: gpt2, llama)", model);
    const aios_gguf_value *toks = aios_gguf_get_arr(g, "tokenizer.ggml.tokens", AIOS_GGUF_STRING);
    if (!toks) return aios__err(AIOS_ERR_FORMAT, "key 'tokenizer.ggml.tokens' is missing or not an array of strings");
    uint64_t n = toks->v.arr.n;
    if (n == 0 || n > INT32_MAX) return aios__err(AIOS_ERR_FORMAT, "tokenizer.ggml.tokens: %llu tokens", (unsigned long long)n);
    const aios_gguf_value *types = aios_gguf_get_arr(g, "tokenizer.ggml.token_type", -1);
    if (types && types->v.arr.n != n)
        return aios__err(AIOS_ERR_FORMAT, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
                         (unsigned long long)types->v.arr.n, (unsigned long long)n);
    const aios_gguf_value *scores = aios_gguf_get_arr(g, "tokenizer.ggml.scores", -1);
    if (scores && (scores->v.arr.n != n || !scores->v.arr.raw))
        return aios__err(AIOS_ERR_FORMAT, "tokenizer.ggml.scores is not %llu numbers", (unsigned long long)n);
    if (types && !types->v.arr.raw) return aios__err(AIOS_ERR_FORMAT, "tokenizer.ggml.token_type is not numeric");

    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    /* attached at once, so every early return frees them with root */
    cJSON *mdl = cJSON_AddObjectToObject(root, "model"), *vocab = cJSON_AddObjectToObject(mdl, "vocab");
    if (!mdl || !vocab) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    cJSON_AddStringToObject(mdl, "type", "BPE");
    for (uint64_t i = 0; i < n; i++) {
        char *s = cstr(&toks->v.arr.strs[i]);
        if (!s) return aios__err(AIOS_ERR_FORMAT, "tokenizer.ggml.tokens[%llu] holds a NUL byte or memory ran out", (unsigned long long)i);
        cJSON_AddNumberToObject(vocab, s, (double)i);
        int64_t tt = types ? aios_gguf_arr_int(types, i) : TT_NORMAL;
        if (tt == TT_CONTROL || tt == TT_USER) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", (double)i);
            cJSON_AddStringToObject(a, "content", s);
            cJSON_AddBoolToObject(a, "single_word", 0);
            cJSON_AddBoolToObject(a, "lstrip", 0);
            cJSON_AddBoolToObject(a, "rstrip", 0);
            cJSON_AddBoolToObject(a, "normalized", tt == TT_USER && spm);
            cJSON_AddBoolToObject(a, "special", tt == TT_CONTROL);
            cJSON_AddItemToArray(added, a);
        }
        free(s);
    }
    cJSON *merges = cJSON_AddArrayToObject(mdl, "merges");
    int64_t unk = -1, bos = -1, eos = -1, pad = -1;
    aios_gguf_get_int(g, "tokenizer.ggml.unknown_token_id", &unk);
    aios_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &bos);
    aios_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &eos);
    aios_gguf_get_int(g, "tokenizer.ggml.padding_token_id", &pad);
    int64_t *ids[] = {&unk, &bos, &eos, &pad};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(ids); i++)
        if (*ids[i] < 0 || (uint64_t)*ids[i] >= n) *ids[i] = -1;
    char *unk_s = unk >= 0 ? cstr(&toks->v.arr.strs[unk]) : NULL;
    if (gpt2) {
        const aios_gguf_value *mg = aios_gguf_get_arr(g, "tokenizer.ggml.merges", AIOS_GGUF_STRING);
        if (!mg) {
            free(unk_s);
            return aios__err(AIOS_ERR_FORMAT, "key 'tokenizer.ggml.merges' is missing (model gpt2)");
        }
        for (uint64_t i = 0; i < mg->v.arr.n; i++) {
            char *s = cstr(&mg->v.arr.strs[i]);
            if (!s) {
                free(unk_s);
                return aios__err(AIOS_ERR_FORMAT, "tokenizer.ggml.merges[%llu] holds a NUL byte", (unsigned long long)i);
            }
            cJSON_AddItemToArray(merges, cJSON_CreateString(s));
            free(s);
        }
        cJSON_AddNullToObject(mdl, "unk_token");
        cJSON_AddBoolToObject(mdl, "byte_fallback", 0);
        cJSON_AddBoolToObject(mdl, "fuse_unk", 0);
        cJSON *pt = pretok_for(pp ? pre : NULL);
        if (!pt) {
            free(unk_s);
            return aios__err(AIOS_ERR_UNSUPPORTED,
                             "tokenizer.ggml.pre '%s' is not supported (supported: default, gpt-2, smollm, starcoder, "
                             "llama-bpe, qwen2)",
                             pre);
        }
        /* Qwen2's tokenizer.json normalizes to NFC (the GGUF does not say so; llama.cpp skips it,
         * which only matters for text that is not already NFC) */
        if (pp && !strcmp(pre, "qwen2")) {
            cJSON *nfc = cJSON_AddObjectToObject(root, "normalizer");
            cJSON_AddStringToObject(nfc, "type", "NFC");
        } else {
            cJSON_AddNullToObject(root, "normalizer");
        }
        cJSON_AddItemToObject(root, "pre_tokenizer", pt);
        cJSON *dec = cJSON_CreateObject();
        cJSON_AddStringToObject(dec, "type", "ByteLevel");
        cJSON_AddBoolToObject(dec, "add_prefix_space", 1);
        cJSON_AddBoolToObject(dec, "trim_offsets", 1);
        cJSON_AddBoolToObject(dec, "use_regex", 1);
        cJSON_AddItemToObject(root, "decoder", dec);
    } else {
        aios_status st = spm_merges(toks, scores, merges);
        if (st) {
            free(unk_s);
            return st;
        }
        if (unk_s) cJSON_AddStringToObject(mdl, "unk_token", unk_s);
        else cJSON_AddNullToObject(mdl, "unk_token");
        cJSON_AddBoolToObject(mdl, "byte_fallback", 1);
        cJSON_AddBoolToObject(mdl, "fuse_unk", 1);
        int prefix = gbool(g, "tokenizer.ggml.add_space_prefix", 1);
        cJSON *rep = cJSON_CreateObject(), *pat = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "type", "Replace");
        cJSON_AddStringToObject(pat, "String", " ");
        cJSON_AddItemToObject(rep, "pattern", pat);
        cJSON_AddStringToObject(rep, "content", "\xe2\x96\x81");
        cJSON *prep = NULL;
        if (prefix) {
            prep = cJSON_CreateObject();
            cJSON_AddStringToObject(prep, "type", "Prepend");
            cJSON_AddStringToObject(prep, "prepend", "\xe2\x96\x81");
        }
        cJSON_AddItemToObject(root, "normalizer", prep ? seq("normalizers", prep, rep) : rep);
        cJSON_AddNullToObject(root, "pre_tokenizer");
        cJSON *dr = cJSON_CreateObject(), *dp = cJSON_CreateObject(), *bf = cJSON_CreateObject(), *fu = cJSON_CreateObject();
        cJSON_AddStringToObject(dr, "type", "Replace");
        cJSON_AddStringToObject(dp, "String", "\xe2\x96\x81");
        cJSON_AddItemToObject(dr, "pattern", dp);
        cJSON_AddStringToObject(dr, "content", " ");
        cJSON_AddStringToObject(bf, "type", "ByteFallback");
        cJSON_AddStringToObject(fu, "type", "Fuse");
        cJSON *dec = seq("decoders", dr, bf);
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(dec, "decoders");
        cJSON_AddItemToArray(arr, fu);
        if (prefix) {
            cJSON *sp = cJSON_CreateObject();
            cJSON_AddStringToObject(sp, "type", "Strip");
            cJSON_AddStringToObject(sp, "content", " ");
            cJSON_AddNumberToObject(sp, "start", 1);
            cJSON_AddNumberToObject(sp, "stop", 0);
            cJSON_AddItemToArray(arr, sp);
        }
        cJSON_AddItemToObject(root, "decoder", dec);
    }
    free(unk_s);

    /* BOS / EOS around every sequence, as llama.cpp's add_bos_token / add_eos_token */
    int add_bos = gbool(g, "tokenizer.ggml.add_bos_token", spm) && bos >= 0;
    int add_eos = gbool(g, "tokenizer.ggml.add_eos_token", 0) && eos >= 0;
    if (add_bos || add_eos) {
        cJSON *tp = cJSON_CreateObject(), *single = cJSON_CreateArray(), *pair = cJSON_CreateArray(),
              *sp = cJSON_CreateObject();
        cJSON_AddStringToObject(tp, "type", "TemplateProcessing");
        char *bs = add_bos ? cstr(&toks->v.arr.strs[bos]) : NULL, *es = add_eos ? cstr(&toks->v.arr.strs[eos]) : NULL;
        for (int k = 0; k < 2; k++) {
            cJSON *arr = k ? pair : single;
            for (int part = 0; part <= k; part++) {
                const char *seqid = part ? "B" : "A";
                if (bs) {
                    cJSON *e = cJSON_CreateObject(), *st = cJSON_CreateObject();
                    cJSON_AddStringToObject(st, "id", bs);
                    cJSON_AddNumberToObject(st, "type_id", part);
                    cJSON_AddItemToObject(e, "SpecialToken", st);
                    cJSON_AddItemToArray(arr, e);
                }
                cJSON *e = cJSON_CreateObject(), *sq = cJSON_CreateObject();
                cJSON_AddStringToObject(sq, "id", seqid);
                cJSON_AddNumberToObject(sq, "type_id", part);
                cJSON_AddItemToObject(e, "Sequence", sq);
                cJSON_AddItemToArray(arr, e);
                if (es) {
                    cJSON *e2 = cJSON_CreateObject(), *st = cJSON_CreateObject();
                    cJSON_AddStringToObject(st, "id", es);
                    cJSON_AddNumberToObject(st, "type_id", part);
                    cJSON_AddItemToObject(e2, "SpecialToken", st);
                    cJSON_AddItemToArray(arr, e2);
                }
            }
        }
        cJSON_AddItemToObject(tp, "single", single);
        cJSON_AddItemToObject(tp, "pair", pair);
        int64_t sid[2] = {add_bos ? bos : -1, add_eos ? eos : -1};
        const char *ss[2] = {bs, es};
        for (int k = 0; k < 2; k++) {
            if (!ss[k] || cJSON_GetObjectItemCaseSensitive(sp, ss[k])) continue;
            cJSON *e = cJSON_CreateObject(), *idl = cJSON_CreateArray(), *tl = cJSON_CreateArray();
            cJSON_AddStringToObject(e, "id", ss[k]);
            cJSON_AddItemToArray(idl, cJSON_CreateNumber((double)sid[k]));
            cJSON_AddItemToArray(tl, cJSON_CreateString(ss[k]));
            cJSON_AddItemToObject(e, "ids", idl);
            cJSON_AddItemToObject(e, "tokens", tl);
            cJSON_AddItemToObject(sp, ss[k], e);
        }
        cJSON_AddItemToObject(tp, "special_tokens", sp);
        cJSON_AddItemToObject(root, "post_processor", tp);
        free(bs);
        free(es);
    } else {
        cJSON_AddNullToObject(root, "post_processor");
    }
    const struct {
        const char *key;
        int64_t id;
    } sp[] = {{"bos_token", bos}, {"eos_token", eos}, {"unk_token", unk}, {"pad_token", pad}};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(sp); i++) {
        if (sp[i].id < 0) continue;
        char *s = cstr(&toks->v.arr.strs[sp[i].id]);
        if (s) cJSON_AddStringToObject(cfg, sp[i].key, s);
        free(s);
    }
    return AIOS_OK;
}

aios_status aios__tokenizer_gguf_json(const aios_gguf *g, char **json, char **config) {
    *json = *config = NULL;
    cJSON *root = cJSON_CreateObject(), *cfg = cJSON_CreateObject();
    aios_status st = root && cfg ? build(g, root, cfg) : aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    if (!st) {
        *json = cJSON_PrintUnformatted(root);
        *config = cJSON_PrintUnformatted(cfg);
        if (!*json || !*config) {
            free(*json);
            free(*config);
            *json = *config = NULL;
            st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        }
    }
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return st;
}

aios_status aios_tokenizer_load_gguf(const char *path, aios_tokenizer **out) {
    *out = NULL;
    aios_gguf *g;
    AIOS_TRY(aios_gguf_open(path, &g));
    char *json, *cfg;
    aios_status st = aios__tokenizer_gguf_json(g, &json, &cfg);
    aios_gguf_close(g);
    if (!st) st = aios_tokenizer_load_json(json, strlen(json), cfg, strlen(cfg), out);
    free(json);
    free(cfg);
    return st ? aios__err_prefix(st, "tokenizer: %s", path) : AIOS_OK;
}
