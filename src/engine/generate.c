/*
 * generate.c — autoregressive text generation: model + tokenizer + KV cache + sampler.
 *
 * aios_generate(): tokenize (or take ids), reuse the longest cached prefix shared with the
 * previous call (the cache holds the ids it was filled with), prefill the rest in one
 * matrix-matrix forward, then decode one token at a time: sample, check EOS, append, detokenize,
 * stream the newly safe text, check stop strings, and feed the token back.
 *
 * Streaming text: the generated ids are detokenized as a whole (for tokenizer.json models; a
 * byte-level or byte-fallback token may be half a UTF-8 character, and SentencePiece decoders
 * treat the first token specially), and only the part that can no longer change is emitted:
 * an incomplete UTF-8 sequence or a trailing U+FFFD at the end is held back, and so is any
 * suffix that is a prefix of a stop string.  llama2.c models decode piece by piece as run.c.
 *
 * EOS ids: config.json eos_token_id (int or list), generation_config.json eos_token_id, and the
 * chat template's end-of-turn token (<|im_end|>, <|eot_id|>) when the vocabulary has it.
 * Chat templates are recognised from tokenizer_config.json's chat_template (or a GGUF file's
 * tokenizer.chat_template) by their markers
 * (ChatML <|im_start|>, Llama-3 <|start_header_id|>, Llama-2 [INST]) and rendered here in C;
 * the Jinja source is not executed.  The default system prompts of SmolLM2 and Qwen2.5 are
 * inserted when their template contains them and the conversation has no system message.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aios.h"
#include "core/internal.h"
#include "engine/generate_internal.h"
#include "model/lora.h"
#include "engine/sample.h"
#include "kernels/kernels.h"
#include "model/decoder.h"
#include "model/llama2c.h"
#include "model/model.h"

/* The decoder's activation mode (aios_decoder_set_int8_act) for params.int8_act: ON 1, OFF 0,
 * 16 3; AUTO follows AIOS_INT8_ACT / aios_kernels_int8_activations when given, else 16-bit
 * activations (3) where the tier defaults to them for every quantized layer weight
 * (aios_decoder_x16_default: any quantized weight on AVX2, the 4- / 5-bit packs on AVX-512 with
 * VNNI) — within ~3e-4 of exact with every golden greedy id (docs/kernels.md "16-bit
 * activations", the budget in test_gguf_real) — and exact float otherwise (float weights, int8,
 * Q8_0 and K-quant models on AVX-512, whose exact GEMVs are ahead there). */
static int default_act_mode(aios_int8_act ia, const aios_decoder *d) {
    if (ia == AIOS_INT8_ACT_ON) return 1;
    if (ia == AIOS_INT8_ACT_OFF) return 0;
    if (ia == AIOS_INT8_ACT_16) return 3;
    if (aios_kernels_int8_setting() >= 0) return -1;
    return aios_decoder_x16_default(d) ? 3 : -1;
}

enum { CHAT_PLAIN = 0, CHAT_CHATML, CHAT_LLAMA2, CHAT_LLAMA3 };
static const char *const CHAT_NAMES[] = {"plain", "chatml", "llama2", "llama3"};

#define MAX_EOS 16

struct aios_generator {
    /* model source: one of */
    aios_llama2c *l2c;
    aios_model *model;
    aios_decoder *dec;
    aios_kv_cache *kv;
    int64_t n_ctx, n_vocab;
    aios_kv_type kv_type; /* every cache this generator makes */
    aios_sampler *sampler;
    float *logits;
    /* tokenizer: one of */
    aios_llama2c_tok *l2c_tok;
    aios__gen_tokenizer *hf;
    /* the ids whose K/V are in the cache (n = aios_kv_cache_len) */
    int32_t *cache_ids;
    int32_t eos[MAX_EOS];
    int n_eos;
    int32_t bos;
    int chat;
    const char *chat_system; /* default system prompt, or NULL */
    /* LoRA adapters attached at run time (owned); ids are slot indices, NULL = free */
    aios_lora *adapters[AIOS_DECODER_MAX_ADAPTERS];
    float adapter_scale[AIOS_DECODER_MAX_ADAPTERS];
    /* uncertainty of the last answer (aios_generator_uncertainty) */
    aios_gen_uncertainty unc;
    size_t unc_cap;
    /* batched generations (aios__gen_seq_start): the last prompt prefilled and the adapter set
     * it was computed with; a new sequence with that set starts from their common prefix */
    aios_kv_cache *pfx_kv;
    int32_t *pfx_ids;
    aios_lora *pfx_ad[AIOS_DECODER_MAX_ADAPTERS];
    float pfx_sc[AIOS_DECODER_MAX_ADAPTERS];
    int pfx_n_ad, pfx_router, pfx_top_k;
    float pfx_temperature;
};

/* ------------------------------------------------------------------------------------------
 * defaults
 * ------------------------------------------------------------------------------------------ */

aios_generator_params aios_generator_default_params(void) {
    aios_generator_params p = {0, 0, NULL, AIOS_KV_F32, AIOS_INT8_ACT_AUTO};
    return p;
}

aios_generate_params aios_generate_default_params(void) {
    aios_generate_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 256;
    p.temperature = 0.0f;
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    p.add_bos = -1;
    return p;
}

/* ------------------------------------------------------------------------------------------
 * opening
 * ------------------------------------------------------------------------------------------ */

static int is_dir(const char *p) {
    struct stat sb;
    return !stat(p, &sb) && S_ISDIR(sb.st_mode);
}
static int is_file(const char *p) {
    struct stat sb;
    return !stat(p, &sb) && S_ISREG(sb.st_mode);
}
static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void add_eos(aios_generator *g, int32_t id) {
    if (id < 0 || id >= g->n_vocab) return;
    for (int i = 0; i < g->n_eos; i++)
        if (g->eos[i] == id) return;
    if (g->n_eos < MAX_EOS) g->eos[g->n_eos++] = id;
}

/* A llama2.c checkpoint: `path` is the .bin, or a directory with exactly one model .bin
 * (tokenizer files excluded).  Returns 1 and fills bin/tok when found. */
static int find_llama2c(const char *path, const char *tok_override, char *bin, size_t nb, char *tok, size_t nt) {
    char dir[4096];
    bin[0] = tok[0] = 0;
    if (is_file(path) && ends_with(path, ".bin")) {
        snprintf(bin, nb, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *sl = strrchr(dir, '/');
        if (sl) *sl = 0;
        else snprintf(dir, sizeof dir, ".");
    } else if (is_dir(path)) {
        char cfg[4200];
        snprintf(cfg, sizeof cfg, "%s/config.json", path);
        if (is_file(cfg)) return 0;
        snprintf(dir, sizeof dir, "%s", path);
    } else {
        return 0;
    }
    /* the checkpoint (unless given) and its tokenizer: tokenizer.bin, else tok*.bin */
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char first_tok[4200] = "";
        while ((e = readdir(d))) {
            if (!ends_with(e->d_name, ".bin")) continue;
            if (!strcmp(e->d_name, "tokenizer.bin")) snprintf(tok, nt, "%s/%s", dir, e->d_name);
            else if (!strncmp(e->d_name, "tok", 3)) {
                if (!first_tok[0]) snprintf(first_tok, sizeof first_tok, "%s/%s", dir, e->d_name);
            } else if (!bin[0]) {
                snprintf(bin, nb, "%s/%s", dir, e->d_name);
            }
        }
        closedir(d);
        if (!tok[0] && first_tok[0]) snprintf(tok, nt, "%s", first_tok);
    }
    if (tok_override) snprintf(tok, nt, "%s", tok_override);
    return bin[0] != 0;
}

/* Reads dir/name as JSON; NULL when absent or malformed (these files are optional). */
static cJSON *read_json(const char *dir, const char *name) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *txt = NULL;
    size_t len = 0;
    if (!is_file(p) || aios__read_file(p, &txt, &len) != AIOS_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(txt, len);
    free(txt);
    if (!j) aios_log(AIOS_LOG_WARN, "generate: %s is not valid JSON; ignored", p);
    return j;
}

static void eos_from_json(aios_generator *g, const cJSON *v) {
    if (cJSON_IsNumber(v)) add_eos(g, (int32_t)v->valuedouble);
    else if (cJSON_IsArray(v)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (cJSON_IsNumber(e)) add_eos(g, (int32_t)e->valuedouble);
    }
}

static int32_t token_id(aios_generator *g, const char *tok) {
    return g->hf ? aios__gen_tok_token_id(g->hf, tok) : -1;
}

static void setup_chat(aios_generator *g, const char *dir) {
    g->chat = CHAT_PLAIN;
    cJSON *tc = dir ? read_json(dir, "tokenizer_config.json") : NULL;
    /* a GGUF file carries its own template (tokenizer.chat_template) */
    const char *tmpl = g->model ? aios__model_chat_template(g->model) : NULL;
    if (tc && !tmpl) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
        if (cJSON_IsString(t)) tmpl = t->valuestring;
        else if (cJSON_IsArray(t)) { /* [{name, template}, ...]: the "default" one, else the first */
            const cJSON *e;
            cJSON_ArrayForEach(e, t) {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
                const cJSON *tt = cJSON_GetObjectItemCaseSensitive(e, "template");
                if (!cJSON_IsString(tt)) continue;
                if (!tmpl || (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default"))) tmpl = tt->valuestring;
            }
        }
    }
    if (tmpl) {
        if (strstr(tmpl, "<|im_start|>")) g->chat = CHAT_CHATML;
        else if (strstr(tmpl, "<|start_header_id|>")) g->chat = CHAT_LLAMA3;
        else if (strstr(tmpl, "[INST]")) g->chat = CHAT_LLAMA2;
        if (strstr(tmpl, "You are a helpful AI assistant named SmolLM, trained by Hugging Face"))
            g->chat_system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
        else if (strstr(tmpl, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."))
            g->chat_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
    } else if (token_id(g, "<|im_start|>") >= 0) {
        g->chat = CHAT_CHATML;
    } else if (token_id(g, "<|start_header_id|>") >= 0) {
        g->chat = CHAT_LLAMA3;
    } else if (token_id(g, "[INST]") >= 0 || (g->hf && token_id(g, "<s>") >= 0)) {
        g->chat = CHAT_LLAMA2;
    }
    if (g->chat == CHAT_CHATML) add_eos(g, token_id(g, "<|im_end|>"));
    if (g->chat == CHAT_LLAMA3) add_eos(g, token_id(g, "<|eot_id|>"));
    cJSON_Delete(tc);
}

static aios_status open_model(aios_generator *g, const char *path, const aios_generator_params *p) {
    AIOS_TRY(aios_model_open(path, NULL, &g->model));
    aios_decoder_config cfg;
    AIOS_TRY(aios_decoder_config_from_model(aios_model_get_config(g->model), &cfg));
    AIOS_TRY(aios_decoder_create(&cfg, aios_decoder_model_lookup, g->model, &g->dec));
    const char *tp = p->tokenizer_path ? p->tokenizer_path : aios_model_tokenizer_path(g->model);
    if (tp && ends_with(tp, ".bin")) return aios_llama2c_tok_open(tp, cfg.n_vocab, &g->l2c_tok);
    if (tp) return aios__gen_tok_open(tp, &g->hf);
    /* a llama2.c tokenizer.bin beside the weights (an imported llama2.c model) */
    char tb[4200];
    snprintf(tb, sizeof tb, "%s/tokenizer.bin", aios_model_path(g->model));
    if (is_file(tb)) return aios_llama2c_tok_open(tb, cfg.n_vocab, &g->l2c_tok);
    return AIOS_OK;
}

aios_status aios_generator_open(const char *path, const aios_generator_params *params, aios_generator **out) {
    *out = NULL;
    aios_generator_params dp = aios_generator_default_params();
    if (!params) params = &dp;
    if (!path) return aios__err(AIOS_ERR_INVALID_ARG, "generate: NULL model path");
    if (params->n_threads > 0) aios_set_threads(params->n_threads);
    aios_generator *g = calloc(1, sizeof *g);
    if (!g) return aios__err(AIOS_ERR_NOMEM, "generate");
    aios_status s = AIOS_OK;
    char bin[4096], tok[4096], dir[4096];
    int l2c = find_llama2c(path, params->tokenizer_path, bin, sizeof bin, tok, sizeof tok);
    if (l2c) {
        if ((s = aios_llama2c_open(bin, &g->l2c)) != AIOS_OK) goto fail;
        if ((s = aios_decoder_create(aios_llama2c_config(g->l2c), aios_llama2c_lookup, g->l2c, &g->dec)) != AIOS_OK) goto fail;
        if (tok[0] && (s = aios_llama2c_tok_open(tok, aios_llama2c_config(g->l2c)->n_vocab, &g->l2c_tok)) != AIOS_OK) goto fail;
        dir[0] = 0;
    } else {
        if ((s = open_model(g, path, params)) != AIOS_OK) goto fail;
        /* generation_config.json / tokenizer_config.json live in the model's directory; a GGUF
         * file is self-contained (whatever lies beside it belongs to some other model) */
        snprintf(dir, sizeof dir, "%s", aios_model_path(g->model));
        if (!strcmp(aios_model_format(g->model), "gguf")) {
            dir[0] = 0;
        } else if (!is_dir(dir)) {
            char *sl = strrchr(dir, '/');
            if (sl) *sl = 0;
            else snprintf(dir, sizeof dir, ".");
        }
    }
    const aios_decoder_config *c = aios_decoder_get_config(g->dec);
    g->n_vocab = c->n_vocab;
    g->bos = c->bos_id;
    for (int i = 0; i < c->n_eos; i++) add_eos(g, c->eos_ids[i]);
    if (dir[0]) {
        cJSON *gc = read_json(dir, "generation_config.json");
        if (gc) eos_from_json(g, cJSON_GetObjectItemCaseSensitive(gc, "eos_token_id"));
        cJSON_Delete(gc);
    }
    setup_chat(g, dir[0] ? dir : NULL);
    g->n_ctx = params->n_ctx > 0 ? params->n_ctx : AIOS_MIN(c->n_ctx_train, (int64_t)4096);
    g->kv_type = params->kv_type;
    aios_decoder_set_int8_act(g->dec, default_act_mode(params->int8_act, g->dec));
    if ((s = aios_kv_cache_create_typed(g->dec, g->n_ctx, g->kv_type, &g->kv)) != AIOS_OK) goto fail;
    if ((s = aios_sampler_create(g->n_vocab, &g->sampler)) != AIOS_OK) goto fail;
    g->logits = malloc((size_t)g->n_vocab * sizeof(float));
    g->cache_ids = malloc((size_t)g->n_ctx * sizeof(int32_t));
    if (!g->logits || !g->cache_ids) {
        s = aios__err(AIOS_ERR_NOMEM, "generate");
        goto fail;
    }
    *out = g;
    return AIOS_OK;
fail:
    aios_generator_free(g);
    return aios__err_prefix(s, "generate: %s", path);
}

void aios_generator_free(aios_generator *g) {
    if (!g) return;
    aios_kv_cache_free(g->kv);
    aios_decoder_free(g->dec);
    aios_llama2c_free(g->l2c);
    aios_model_free(g->model);
    aios_llama2c_tok_free(g->l2c_tok);
    aios__gen_tok_free(g->hf);
    aios_sampler_free(g->sampler);
    free(g->logits);
    free(g->cache_ids);
    for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS; i++) aios_lora_free(g->adapters[i]);
    free(g->unc.entropy);
    free(g->unc.p_top1);
    aios_kv_cache_free(g->pfx_kv);
    free(g->pfx_ids);
    free(g);
}

int64_t aios_generator_n_vocab(const aios_generator *g) { return g->n_vocab; }

aios_status aios_llama2c_import(const char *checkpoint, const char *tokenizer_bin, const char *out_dir) {
    if (!checkpoint || !out_dir) return aios__err(AIOS_ERR_INVALID_ARG, "llama2c import: NULL path");
    aios_llama2c *m = NULL;
    AIOS_TRY(aios_llama2c_open(checkpoint, &m));
    aios_status s = aios_llama2c_export(m, tokenizer_bin, out_dir);
    aios_llama2c_free(m);
    return s;
}
int64_t aios_generator_n_ctx(const aios_generator *g) { return g->n_ctx; }
aios_int8_act aios_generator_int8_act(const aios_generator *g) {
    const int m = aios_decoder_act_mode(g->dec);
    return m == 1 ? AIOS_INT8_ACT_ON : m == 3 ? AIOS_INT8_ACT_16 : AIOS_INT8_ACT_OFF;
}
const char *aios_generator_chat_template(const aios_generator *g) { return CHAT_NAMES[g->chat]; }
const char *aios__generator_default_system(const aios_generator *g) { return g->chat == CHAT_CHATML ? g->chat_system : NULL; }

/* ------------------------------------------------------------------------------------------
 * tokenizer front
 * ------------------------------------------------------------------------------------------ */

aios_status aios_generator_tokenize(aios_generator *g, const char *text, int add_bos, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (!text) return aios__err(AIOS_ERR_INVALID_ARG, "generate: NULL text");
    if (g->l2c_tok) {
        int32_t *v = malloc((strlen(text) + 4) * sizeof *v);
        if (!v) return aios__err(AIOS_ERR_NOMEM, "generate: tokenize");
        aios_status s = aios_llama2c_tok_encode(g->l2c_tok, text, add_bos != 0, v, n);
        if (s) {
            free(v);
            return s;
        }
        *ids = v;
        return AIOS_OK;
    }
    if (g->hf) {
        /* add_bos: -1/1 = the tokenizer's own special tokens (its post-processor adds BOS where
         * the model wants it); 0 = none */
        return aios__gen_tok_encode(g->hf, text, add_bos != 0, ids, n);
    }
    return aios__err(AIOS_ERR_UNSUPPORTED, "generate: the model has no tokenizer; give prompt ids");
}

/* Appends the text of ids[0..n) to *b; `prev` is the id before ids[0] (-1 none). */
static aios_status detok_append(aios_generator *g, const int32_t *ids, size_t n, int32_t prev, aios_buf *b) {
    if (g->l2c_tok) {
        for (size_t i = 0; i < n; i++) {
            char piece[512];
            size_t k = aios_llama2c_tok_decode(g->l2c_tok, i ? ids[i - 1] : prev, ids[i], piece, sizeof piece);
            AIOS_TRY(aios_buf_append(b, piece, k));
        }
        return AIOS_OK;
    }
    if (g->hf) {
        char *t = NULL;
        AIOS_TRY(aios__gen_tok_decode(g->hf, ids, n, &t));
        aios_status s = aios_buf_append(b, t, strlen(t));
        free(t);
        return s;
    }
    /* no tokenizer: ids as text */
    for (size_t i = 0; i < n; i++) {
        char num[16];
        int k = snprintf(num, sizeof num, "%s%d", (b->len || i) ? " " : "", ids[i]);
        AIOS_TRY(aios_buf_append(b, num, (size_t)k));
    }
    return AIOS_OK;
}

aios_status aios_generator_detokenize(aios_generator *g, const int32_t *ids, size_t n, char **text) {
    *text = NULL;
    aios_buf b = {0};
    aios_status s = detok_append(g, ids, n, -1, &b);
    if (!s) s = aios_buf_append(&b, "", 1);
    if (s) {
        aios_buf_free(&b);
        return s;
    }
    *text = (char *)b.data;
    return AIOS_OK;
}

/* ------------------------------------------------------------------------------------------
 * chat
 * ------------------------------------------------------------------------------------------ */

/* Appends the NULL-terminated list of strings. */
static aios_status cat(aios_buf *b, ...) {
    va_list ap;
    va_start(ap, b);
    aios_status s = AIOS_OK;
    for (const char *x; !s && (x = va_arg(ap, const char *));) s = aios_buf_append(b, x, strlen(x));
    va_end(ap);
    return s;
}

aios_status aios_generator_chat_prompt(aios_generator *g, const aios_chat_message *m, size_t n, char **out) {
    *out = NULL;
    aios_buf b = {0};
    aios_status s = AIOS_OK;
    for (size_t i = 0; i < n; i++)
        if (!m[i].role || !m[i].content ||
            (strcmp(m[i].role, "system") && strcmp(m[i].role, "user") && strcmp(m[i].role, "assistant")))
            return aios__err(AIOS_ERR_INVALID_ARG, "chat: message %zu: role must be system, user or assistant", i);
    int has_sys = n > 0 && !strcmp(m[0].role, "system");
#define CAT(...)                                                  \
    do {                                                          \
        if ((s = cat(&b, __VA_ARGS__, (const char *)NULL)) != AIOS_OK) goto fail; \
    } while (0)
    switch (g->chat) {
    case CHAT_CHATML:
        if (!has_sys && g->chat_system) CAT("<|im_start|>system\n", g->chat_system, "<|im_end|>\n");
        for (size_t i = 0; i < n; i++) CAT("<|im_start|>", m[i].role, "\n", m[i].content, "<|im_end|>\n");
        CAT("<|im_start|>assistant\n");
        break;
    case CHAT_LLAMA3:
        CAT("<|begin_of_text|>");
        for (size_t i = 0; i < n; i++)
            CAT("<|start_header_id|>", m[i].role, "<|end_header_id|>\n\n", m[i].content, "<|eot_id|>");
        CAT("<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_LLAMA2: {
        /* <s>[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] ... */
        size_t i = 0;
        const char *sys = has_sys ? m[i++].content : NULL;
        int first = 1;
        for (; i < n; i++) {
            if (!strcmp(m[i].role, "user")) {
                CAT("<s>[INST] ");
                if (first && sys) CAT("<<SYS>>\n", sys, "\n<</SYS>>\n\n");
                CAT(m[i].content, " [/INST]");
                first = 0;
            } else if (!strcmp(m[i].role, "assistant")) {
                CAT(" ", m[i].content, " </s>");
            }
        }
        break;
    }
    default: /* plain: the contents, one per line */
        for (size_t i = 0; i < n; i++) CAT(m[i].content, i + 1 < n ? "\n" : "");
        break;
    }
#undef CAT
    if ((s = aios_buf_append(&b, "", 1)) != AIOS_OK) goto fail;
    *out = (char *)b.data;
    return AIOS_OK;
fail:
    aios_buf_free(&b);
    return s;
}

/* ------------------------------------------------------------------------------------------
 * generation
 * ------------------------------------------------------------------------------------------ */

void aios_generate_result_free(aios_generate_result *r) {
    if (!r) return;
    free(r->ids);
    free(r->text);
    free(r->logprobs);
    free(r->top_ids);
    free(r->top_logprobs);
    memset(r, 0, sizeof *r);
}

/* Bytes at the end of s[0..n) to hold back: an incomplete UTF-8 sequence or a U+FFFD that a
 * later token may still complete. */
static size_t utf8_holdback(const char *s, size_t n) {
    if (n >= 3 && (unsigned char)s[n - 3] == 0xEF && (unsigned char)s[n - 2] == 0xBF && (unsigned char)s[n - 1] == 0xBD)
        return 3;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)s[n - k];
        if ((c & 0xC0) == 0x80) continue; /* continuation: look further back */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

/* The log-probability of `id` under softmax(logits) (the raw logits: before any penalty or
 * temperature), and the n_top most probable ids with theirs (descending; ties: lower id first).
 * The normalizer is summed in double around the maximum. */
static float step_logprobs(const float *logits, int64_t n_vocab, int32_t id, int n_top, int32_t *top_ids, float *top_lp) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double z = 0;
    for (int64_t i = 0; i < n_vocab; i++) z += exp((double)logits[i] - (double)mx);
    double lse = (double)mx + log(z);
    int have = 0;
    for (int64_t i = 0; i < n_vocab && n_top > 0; i++) {
        float l = logits[i];
        if (have == n_top && !(l > top_lp[have - 1])) continue; /* strict: an equal later id stays out */
        int k = have < n_top ? have++ : have - 1;
        while (k > 0 && l > top_lp[k - 1]) {
            top_lp[k] = top_lp[k - 1];
            top_ids[k] = top_ids[k - 1];
            k--;
        }
        top_lp[k] = l;
        top_ids[k] = (int32_t)i;
    }
    for (int k = 0; k < have; k++) top_lp[k] = (float)((double)top_lp[k] - lse);
    for (int k = have; k < n_top; k++) top_ids[k] = -1, top_lp[k] = -INFINITY;
    return (float)((double)logits[id] - lse);
}

/* Entropy and top-1 probability of softmax(logits) (the model's own distribution, before any
 * sampling setting) for the token about to be drawn. */
static aios_status unc_add(aios_gen_uncertainty *u, size_t *cap, const float *logits, int64_t n_vocab) {
    if (u->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        float *e = realloc(u->entropy, nc * sizeof *e);
        if (!e) return aios__err(AIOS_ERR_NOMEM, "generate");
        u->entropy = e;
        float *p = realloc(u->p_top1, nc * sizeof *p);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "generate");
        u->p_top1 = p;
        *cap = nc;
    }
    double h, p1;
    aios__softmax_entropy(logits, n_vocab, &h, &p1);
    u->entropy[u->n] = (float)h;
    u->p_top1[u->n] = (float)p1;
    u->n++;
    return AIOS_OK;
}

const aios_gen_uncertainty *aios_generator_uncertainty(const aios_generator *g) { return g ? &g->unc : NULL; }

static int is_eos(const aios_generator *g, int32_t id) {
    for (int i = 0; i < g->n_eos; i++)
        if (g->eos[i] == id) return 1;
    return 0;
}

/* One generation in progress: what aios_generate keeps between its forwards, so that the batch
 * scheduler (aios__gen_batch_step) can run many of them through one batched forward.  The
 * result is built in place in *out (the server reads a stream's logprobs from it). */
struct aios__gen_seq {
    aios_generator *g;
    aios_generate_params p;
    aios_generate_result *out;
    aios_kv_cache *kv;        /* the generator's (aios_generate) or the sequence's own */
    int own_kv;
    int32_t *ids;             /* == out->ids */
    float *logits, *raw;      /* the step's logits; raw: a copy before sampling (logprobs) */
    int own_logits;
    aios_sampling sp;
    aios_rng rng;
    aios_buf text;
    size_t emitted, maxstop;
    int64_t step, max_new;
    int64_t keep;             /* prefix already in the cache */
    int prefilled, done;
    int32_t next;             /* the token the next forward feeds */
    aios_gen_uncertainty *unc, own_unc;
    size_t *unc_cap, own_unc_cap;
    double t0;
    aios_status st;
    char err[512];
    /* adapters per generator slot (aios__gen_seq_start) */
    int has_scales;
    float scales[AIOS_DECODER_MAX_ADAPTERS];
    aios_lora *set_ad[AIOS_DECODER_MAX_ADAPTERS];
    float set_sc[AIOS_DECODER_MAX_ADAPTERS];
    aios_decoder_adapter_set set;
    /* the router of this sequence (aios__gen_route): arrow goes into its row's adapter set;
     * compose is this sequence's extra rows, one per adapter in effect (by generator slot), each
     * with its own cache and logits, mixed into `logits` after the step */
    aios__gen_route route;
    aios_kv_cache *comp_kv[AIOS_DECODER_MAX_ADAPTERS];
    aios_lora *comp_ad[AIOS_DECODER_MAX_ADAPTERS]; /* the adapter comp_kv[slot] was filled with */
    float *comp_logits[AIOS_DECODER_MAX_ADAPTERS];
    aios_decoder_adapter_set comp_set[AIOS_DECODER_MAX_ADAPTERS];
};

/* Tokenizes (or copies) the prompt and prepares the result and sampling state of q. */
static aios_status seq_init(aios_generator *g, aios__gen_seq *q, const char *prompt, const int32_t *prompt_ids,
                            size_t n_prompt_ids, const aios_generate_params *p, aios_generate_result *out) {
    memset(out, 0, sizeof *out);
    q->g = g;
    q->p = *p;
    q->out = out;
    aios_status s = AIOS_OK;
    int32_t *ids = NULL;
    size_t n = 0;
    if (prompt) {
        int add = p->add_bos;
        if (add < 0 && g->l2c_tok) add = 1;
        if (add < 0 && g->hf) { /* tokenizer's own specials, unless the text already starts with BOS */
            add = 1;
            if (g->bos >= 0) {
                char *bt = NULL;
                if (aios__gen_tok_id_to_token(g->hf, g->bos, &bt) == AIOS_OK && bt && *bt && !strncmp(prompt, bt, strlen(bt))) add = 0;
                free(bt);
            }
        }
        AIOS_TRY(aios_generator_tokenize(g, prompt, add, &ids, &n));
    } else {
        if (!prompt_ids || !n_prompt_ids) return aios__err(AIOS_ERR_INVALID_ARG, "generate: empty prompt");
        ids = malloc(n_prompt_ids * sizeof *ids);
        if (!ids) return aios__err(AIOS_ERR_NOMEM, "generate");
        memcpy(ids, prompt_ids, n_prompt_ids * sizeof *ids);
        n = n_prompt_ids;
    }
    if (n == 0) {
        free(ids);
        return aios__err(AIOS_ERR_INVALID_ARG, "generate: the prompt has no tokens");
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= g->n_vocab) {
            s = aios__err(AIOS_ERR_RANGE, "generate: prompt id %d at %zu outside the vocabulary (%lld)", ids[i], i,
                          (long long)g->n_vocab);
            free(ids);
            return s;
        }
    if ((int64_t)n >= g->n_ctx) {
        free(ids);
        return aios__err(AIOS_ERR_RANGE, "generate: prompt of %zu tokens does not fit the context of %lld", n,
                         (long long)g->n_ctx);
    }
    q->max_new = p->max_tokens < 0 ? 0 : p->max_tokens;
    size_t cap = n + (size_t)AIOS_MIN(q->max_new, g->n_ctx - (int64_t)n) + 1;
    int32_t *all = realloc(ids, cap * sizeof *ids);
    if (!all) {
        free(ids);
        return aios__err(AIOS_ERR_NOMEM, "generate");
    }
    q->ids = ids = all;
    out->ids = ids;
    out->n_ids = out->n_prompt = n;
    if (p->logprobs) {
        int nt = p->top_logprobs < 0 ? 0 : AIOS_MIN(p->top_logprobs, AIOS_MAX_TOP_LOGPROBS);
        size_t steps = cap - n;
        out->n_top = nt;
        out->logprobs = malloc(steps * sizeof *out->logprobs);
        out->top_ids = malloc(steps * (size_t)(nt ? nt : 1) * sizeof *out->top_ids);
        out->top_logprobs = malloc(steps * (size_t)(nt ? nt : 1) * sizeof *out->top_logprobs);
        q->raw = malloc((size_t)g->n_vocab * sizeof *q->raw);
        if (!out->logprobs || !out->top_ids || !out->top_logprobs || !q->raw)
            return aios__err(AIOS_ERR_NOMEM, "generate: logprobs");
    }
    q->sp = (aios_sampling){p->temperature, p->top_k, p->top_p, p->min_p, p->repetition_penalty, p->presence_penalty,
                            p->frequency_penalty};
    aios_rng_seed(&q->rng, p->seed);
    if (p->stop)
        for (const char *const *st = p->stop; *st; st++) q->maxstop = AIOS_MAX(q->maxstop, strlen(*st));
    out->stop = AIOS_GEN_STOP_LENGTH;
    return AIOS_OK;
}

/* The end of a generation: text held back for UTF-8 / possible stops flushed to the callback,
 * the uncertainty summed up, the text handed to the result. */
static aios_status seq_finish(aios__gen_seq *q, aios_status s) {
    aios_generator *g = q->g;
    aios_generate_result *out = q->out;
    if (!s) {
        out->decode_s = aios__now() - q->t0;
        if (q->p.on_token && q->emitted < q->text.len && out->stop != AIOS_GEN_STOP_STRING)
            q->p.on_token(q->p.user, -1, (const char *)q->text.data + q->emitted, q->text.len - q->emitted);
    }
    free(q->raw);
    q->raw = NULL;
    aios__gen_unc_finish(q->unc, g->n_vocab);
    if (!s) s = aios_buf_append(&q->text, "", 1);
    if (s) {
        aios_buf_free(&q->text);
        return s;
    }
    out->text = (char *)q->text.data;
    q->text.data = NULL;
    return AIOS_OK;
}

/* The part of a step after the forward: q->logits hold the next token's distribution.  Sample,
 * check EOS, record logprobs, append, detokenize, stream the newly safe text, check stop strings
 * and the callback.  Sets q->done, or q->next for the next forward. */
static aios_status seq_after_logits(aios__gen_seq *q) {
    aios_generator *g = q->g;
    aios_generate_result *out = q->out;
    const aios_generate_params *p = &q->p;
    int32_t *ids = q->ids;
    if (q->step >= q->max_new) {
        q->done = 1;
        return AIOS_OK;
    }
    if ((int64_t)out->n_ids >= g->n_ctx) {
        out->stop = AIOS_GEN_STOP_CONTEXT;
        q->done = 1;
        return AIOS_OK;
    }
    if (q->raw) memcpy(q->raw, q->logits, (size_t)g->n_vocab * sizeof *q->raw);
    AIOS_TRY(unc_add(q->unc, q->unc_cap, q->logits, g->n_vocab));
    int32_t id = aios_sample(g->sampler, q->logits, ids, out->n_ids, &q->sp, &q->rng, NULL);
    if (!p->ignore_eos && is_eos(g, id)) {
        out->stop = AIOS_GEN_STOP_EOS;
        q->done = 1;
        return AIOS_OK;
    }
    if (q->raw) {
        size_t k = out->n_ids - out->n_prompt;
        out->logprobs[k] = step_logprobs(q->raw, g->n_vocab, id, out->n_top, out->top_ids + k * (size_t)out->n_top,
                                         out->top_logprobs + k * (size_t)out->n_top);
    }
    ids[out->n_ids++] = id;
    /* text of the generated ids so far */
    aios_buf *text = &q->text;
    if (g->l2c_tok || !g->hf) {
        AIOS_TRY(detok_append(g, &id, 1, out->n_ids >= 2 ? ids[out->n_ids - 2] : -1, text));
    } else {
        text->len = 0;
        AIOS_TRY(detok_append(g, ids + out->n_prompt, out->n_ids - out->n_prompt, -1, text));
    }
    /* stop strings: search the not yet emitted text (plus the overlap a stop may span) */
    const size_t emitted = q->emitted, maxstop = q->maxstop;
    size_t cut = SIZE_MAX;
    if (p->stop) {
        size_t from = emitted > maxstop ? emitted - maxstop : 0;
        for (const char *const *st = p->stop; *st; st++) {
            size_t sl = strlen(*st);
            if (!sl) continue;
            for (size_t i = from; i + sl <= text->len; i++)
                if (!memcmp(text->data + i, *st, sl)) {
                    if (i < cut) cut = i;
                    break;
                }
        }
    }
    size_t safe = text->len;
    if (cut != SIZE_MAX) {
        safe = cut;
    } else {
        safe -= utf8_holdback((const char *)text->data, text->len);
        if (p->stop) /* hold back a suffix that could begin a stop string */
            for (const char *const *st = p->stop; *st; st++) {
                size_t sl = strlen(*st);
                for (size_t k = AIOS_MIN(sl - (sl > 0), text->len); k > 0; k--)
                    if (!memcmp(text->data + text->len - k, *st, k)) {
                        if (text->len - k < safe) safe = text->len - k;
                        break;
                    }
            }
    }
    if (safe < emitted) safe = emitted; /* a re-decode changed emitted text: never take back */
    int stop_cb = 0;
    if (p->on_token) stop_cb = p->on_token(p->user, id, (const char *)text->data + emitted, safe - emitted);
    q->emitted = safe;
    q->done = 1;
    if (cut != SIZE_MAX) {
        text->len = cut;
        out->stop = AIOS_GEN_STOP_STRING;
        return AIOS_OK;
    }
    if (stop_cb) {
        out->stop = AIOS_GEN_STOP_CALLBACK;
        return AIOS_OK;
    }
    if (++q->step == q->max_new) return AIOS_OK; /* the last token needs no forward */
    if ((int64_t)out->n_ids >= g->n_ctx) {
        out->stop = AIOS_GEN_STOP_CONTEXT;
        return AIOS_OK;
    }
    q->done = 0;
    q->next = id;
    return AIOS_OK;
}

aios_status aios_generate(aios_generator *g, const char *prompt, const int32_t *prompt_ids, size_t n_prompt_ids,
                          const aios_generate_params *pp, aios_generate_result *out) {
    aios_generate_params dflt = aios_generate_default_params();
    const aios_generate_params *p = pp ? pp : &dflt;
    aios__gen_seq q;
    memset(&q, 0, sizeof q);
    q.kv = g->kv;
    q.logits = g->logits;
    q.unc = &g->unc, q.unc_cap = &g->unc_cap;
    aios_status s = seq_init(g, &q, prompt, prompt_ids, n_prompt_ids, p, out);
    if (s) {
        free(q.raw);
        return s;
    }
    const int32_t *ids = q.ids;
    const size_t n = out->n_prompt;
    /* reuse the cached prefix (at least the last prompt token is recomputed for its logits) */
    int64_t have = aios_kv_cache_len(g->kv), keep = 0;
    while (keep < have && keep < (int64_t)n - 1 && g->cache_ids[keep] == ids[keep]) keep++;
    aios_kv_cache_truncate(g->kv, keep);
    out->n_reused = (size_t)keep;

    double t0 = aios__now();
    s = aios_decoder_forward(g->dec, g->kv, ids + keep, (int64_t)n - keep, NULL, g->logits);
    if (s) goto done;
    memcpy(g->cache_ids + keep, ids + keep, (n - (size_t)keep) * sizeof *ids);
    out->prefill_s = aios__now() - t0;
    q.t0 = aios__now();
    g->unc.n = 0;
    for (;;) {
        if ((s = seq_after_logits(&q)) != AIOS_OK || q.done) break;
        int32_t id = q.next;
        if ((s = aios_decoder_forward(g->dec, g->kv, &id, 1, NULL, g->logits)) != AIOS_OK) break;
        g->cache_ids[out->n_ids - 1] = id;
    }
done:
    return seq_finish(&q, s);
}

/* ------------------------------------------------------------------------------------------
 * continuous batching (the server's scheduler): many generations, one forward per step
 * ------------------------------------------------------------------------------------------ */

int aios__generator_batchable(const aios_generator *g) { return g && g->dec; }

aios_status aios__gen_seq_start(aios_generator *g, const char *prompt, const int32_t *prompt_ids, size_t n_prompt_ids,
                                const aios_generate_params *p, const float *slot_scales, const aios__gen_route *route,
                                aios_generate_result *out, aios__gen_seq **seq) {
    *seq = NULL;
    aios_generate_params dflt = aios_generate_default_params();
    if (!p) p = &dflt;
    if (!aios__generator_batchable(g)) return aios__err(AIOS_ERR_UNSUPPORTED, "generate: this model does not run in a batch");
    /* without its own scales a row takes the generator's adapters, which arrow / compose would
     * combine inside the forward: not per row */
    if (!slot_scales && aios_decoder_router(g->dec) != AIOS_ROUTER_NONE)
        return aios__err(AIOS_ERR_UNSUPPORTED, "generate: this router does not run in a batch");
    if (route && route->router != AIOS_ROUTER_NONE) {
        if (!slot_scales) return aios__err(AIOS_ERR_INVALID_ARG, "generate: a batched router needs the sequence's scales");
        if (route->router != AIOS_ROUTER_ARROW && route->router != AIOS_ROUTER_COMPOSE)
            return aios__err(AIOS_ERR_INVALID_ARG, "generate: router %d (none, arrow, compose)", route->router);
        if (route->router == AIOS_ROUTER_ARROW && (route->top_k < 1 || !(route->temperature > 0) || !isfinite(route->temperature)))
            return aios__err(AIOS_ERR_INVALID_ARG, "generate: arrow needs top_k >= 1 and a temperature > 0 (got %d, %g)",
                             route->top_k, (double)route->temperature);
    }
    aios__gen_seq *q = calloc(1, sizeof *q);
    if (!q) return aios__err(AIOS_ERR_NOMEM, "generate");
    q->unc = &q->own_unc, q->unc_cap = &q->own_unc_cap;
    aios_status s = seq_init(g, q, prompt, prompt_ids, n_prompt_ids, p, out);
    /* the cache holds the prompt and every generated token but the last */
    int64_t ctx = AIOS_MAX((int64_t)1, AIOS_MIN(g->n_ctx, (int64_t)out->n_prompt + q->max_new));
    if (!s) s = aios_kv_cache_create_typed(g->dec, ctx, g->kv_type, &q->kv);
    q->own_kv = 1;
    q->logits = malloc((size_t)g->n_vocab * sizeof(float));
    q->own_logits = 1;
    if (!s && !q->logits) s = aios__err(AIOS_ERR_NOMEM, "generate");
    if (slot_scales) {
        q->has_scales = 1;
        memcpy(q->scales, slot_scales, sizeof q->scales);
    }
    if (route) q->route = *route;
    if (s) {
        aios__gen_seq_free(q);
        aios_generate_result_free(out);
        return s;
    }
    *seq = q;
    return AIOS_OK;
}

/* The adapter set of q: the generator's attached adapters (slot order, as sync_adapters hands
 * them to the decoder) at q's scales; rebuilt every step (an adapter removed meanwhile drops out). */
static void seq_adapters(aios__gen_seq *q) {
    aios_generator *g = q->g;
    int n = 0;
    for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS; i++) {
        if (!g->adapters[i]) continue;
        float sc = q->has_scales ? q->scales[i] : g->adapter_scale[i];
        if (sc == 0) continue;
        q->set_ad[n] = g->adapters[i], q->set_sc[n++] = sc;
    }
    q->set = (aios_decoder_adapter_set){.adapters = q->set_ad, .scales = q->set_sc, .n = n};
    if (q->route.router == AIOS_ROUTER_ARROW)
        q->set.router = AIOS_ROUTER_ARROW, q->set.top_k = q->route.top_k, q->set.temperature = q->route.temperature;
    if (q->route.router == AIOS_ROUTER_COMPOSE) q->set.n = 0; /* the base row; the adapters' rows: compose_rows */
}

/* compose's rows of q (after seq_adapters): each adapter in effect with a positive scale alone
 * at scale 1 on its own cache (created at the prefill, which it runs from position 0), as
 * the decoder's compose router runs them (forward_compose).  Appended to ds[*k]; an adapter that
 * left its slot during the generation fails the sequence (its cache holds another's K/V). */
static aios_status compose_rows(aios__gen_seq *q, aios_decoder_seq *ds, int *k) {
    static const float one = 1.0f;
    aios_generator *g = q->g;
    for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS; i++) {
        if (!(q->scales[i] > 0)) continue;
        if (q->prefilled) {
            if (!q->comp_kv[i]) continue; /* not attached at the prefill: not in the mix */
            if (g->adapters[i] != q->comp_ad[i])
                return aios__err(AIOS_ERR_INVALID_ARG, "generate: compose: adapter %d changed during the generation", i);
        } else {
            if (!g->adapters[i]) continue;
            if (!q->comp_kv[i]) AIOS_TRY(aios_kv_cache_create_typed(g->dec, aios_kv_cache_capacity(q->kv), g->kv_type, &q->comp_kv[i]));
            if (!q->comp_logits[i] && !(q->comp_logits[i] = malloc((size_t)g->n_vocab * sizeof(float))))
                return aios__err(AIOS_ERR_NOMEM, "generate: compose logits");
            aios_kv_cache_truncate(q->comp_kv[i], 0);
            q->comp_ad[i] = g->adapters[i];
        }
        q->comp_set[i] = (aios_decoder_adapter_set){.adapters = &q->comp_ad[i], .scales = &one, .n = 1};
        ds[(*k)++] = q->prefilled ? (aios_decoder_seq){q->comp_kv[i], &q->next, 1, q->comp_logits[i], &q->comp_set[i]}
                                  : (aios_decoder_seq){q->comp_kv[i], q->ids, (int64_t)q->out->n_prompt, q->comp_logits[i],
                                                       &q->comp_set[i]};
    }
    return AIOS_OK;
}

/* compose's mix into q->logits (the base row's): w_base * base + sum_i w_i / div * adapter_i, with
 * w_i = max(scale_i, 0), S = sum w_i, w_base = 1 - S and div = 1 when S <= 1, else 0 and S —
 * forward_compose's arithmetic, in its order (slot order). */
static void compose_mix(aios__gen_seq *q) {
    const int64_t V = q->g->n_vocab;
    float S = 0;
    for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS; i++)
        if (q->comp_kv[i]) S += fmaxf(q->scales[i], 0.0f);
    const float w_base = S <= 1 ? 1 - S : 0, div = S <= 1 ? 1 : S;
    for (int64_t j = 0; j < V; j++) q->logits[j] *= w_base;
    for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS; i++) {
        if (!q->comp_kv[i]) continue;
        const float wi = fmaxf(q->scales[i], 0.0f) / div, *o = q->comp_logits[i];
        for (int64_t j = 0; j < V; j++) q->logits[j] += wi * o[j];
    }
}

/* Prompt prefix reuse across batched generations (a chat template's system prompt, a shared
 * few-shot preamble): a new sequence whose adapter set is the one the remembered prompt was
 * computed with copies the K/V of their common prefix (at least the last prompt token is
 * recomputed for its logits), as aios_generate reuses its own cache. */
static int same_set(const aios_generator *g, const aios__gen_seq *q) {
    if (q->set.n != g->pfx_n_ad) return 0;
    if (q->set.n && (q->set.router != g->pfx_router || q->set.top_k != g->pfx_top_k || q->set.temperature != g->pfx_temperature))
        return 0;
    for (int i = 0; i < q->set.n; i++)
        if (q->set.adapters[i] != g->pfx_ad[i] || q->set.scales[i] != g->pfx_sc[i]) return 0;
    return 1;
}

static void prefix_take(aios_generator *g, aios__gen_seq *q) {
    const int64_t n = (int64_t)q->out->n_prompt, have = g->pfx_kv ? aios_kv_cache_len(g->pfx_kv) : 0;
    int64_t keep = 0;
    if (have && same_set(g, q))
        while (keep < have && keep < n - 1 && g->pfx_ids[keep] == q->ids[keep]) keep++;
    if (keep && aios_kv_cache_copy(q->kv, g->pfx_kv, keep) != AIOS_OK) keep = 0;
    aios_kv_cache_truncate(q->kv, keep);
    q->keep = keep;
    q->out->n_reused = (size_t)keep;
}

/* After q's prefill: its prompt becomes the remembered one (best effort: without memory for
 * the cache, nothing is remembered). */
static void prefix_keep(aios_generator *g, aios__gen_seq *q) {
    const int64_t n = (int64_t)q->out->n_prompt;
    if (!g->pfx_kv) {
        if (aios_kv_cache_create_typed(g->dec, g->n_ctx, g->kv_type, &g->pfx_kv) != AIOS_OK) return;
        if (!(g->pfx_ids = malloc((size_t)g->n_ctx * sizeof *g->pfx_ids))) {
            aios_kv_cache_free(g->pfx_kv);
            g->pfx_kv = NULL;
            return;
        }
    }
    if (aios_kv_cache_copy(g->pfx_kv, q->kv, n) != AIOS_OK) {
        aios_kv_cache_truncate(g->pfx_kv, 0);
        return;
    }
    memcpy(g->pfx_ids, q->ids, (size_t)n * sizeof *q->ids);
    g->pfx_n_ad = q->set.n;
    g->pfx_router = q->set.router, g->pfx_top_k = q->set.top_k, g->pfx_temperature = q->set.temperature;
    for (int i = 0; i < q->set.n; i++) g->pfx_ad[i] = q->set.adapters[i], g->pfx_sc[i] = q->set.scales[i];
}

static void seq_fail(aios__gen_seq *q, aios_status s) {
    snprintf(q->err, sizeof q->err, "%s", *aios_last_error() ? aios_last_error() : aios_status_str(s));
    q->st = seq_finish(q, s);
    if (q->st == AIOS_OK) q->st = s;
    q->done = 1;
}

aios_status aios__gen_batch_step(aios_generator *g, aios__gen_seq *const *seqs, int n) {
    int rows = 0; /* a compose sequence brings one row per adapter besides its own */
    for (int i = 0; i < n; i++) rows += 1 + (seqs[i]->route.router == AIOS_ROUTER_COMPOSE ? AIOS_DECODER_MAX_ADAPTERS : 0);
    aios_decoder_seq stack[32], *ds = rows <= 32 ? stack : malloc((size_t)rows * sizeof *ds);
    if (!ds) return aios__err(AIOS_ERR_NOMEM, "generate: batch of %d", n);
    int k = 0;
    for (int i = 0; i < n; i++) {
        aios__gen_seq *q = seqs[i];
        if (q->done) continue;
        seq_adapters(q);
        int k0 = k;
        if (!q->prefilled) {
            q->t0 = aios__now();
            prefix_take(g, q);
            ds[k] = (aios_decoder_seq){q->kv, q->ids + q->keep, (int64_t)q->out->n_prompt - q->keep, q->logits, &q->set};
        } else {
            ds[k] = (aios_decoder_seq){q->kv, &q->next, 1, q->logits, &q->set};
        }
        k++;
        if (q->route.router == AIOS_ROUTER_COMPOSE) {
            aios_status e = compose_rows(q, ds, &k);
            if (e) {
                k = k0;
                seq_fail(q, e);
            }
        }
    }
    aios_status s = k ? aios_decoder_forward_batch(g->dec, ds, k) : AIOS_OK;
    double now = aios__now();
    for (int i = 0; i < n; i++) {
        aios__gen_seq *q = seqs[i];
        if (q->done) continue;
        if (s) {
            seq_fail(q, s);
            continue;
        }
        if (!q->prefilled) {
            q->prefilled = 1;
            q->out->prefill_s = now - q->t0;
            q->t0 = now;
            prefix_keep(g, q);
        }
        if (q->route.router == AIOS_ROUTER_COMPOSE) compose_mix(q);
        aios_status e = seq_after_logits(q);
        if (e) seq_fail(q, e);
        else if (q->done) q->st = seq_finish(q, AIOS_OK), q->done = 1;
    }
    if (ds != stack) free(ds);
    return s;
}

int aios__gen_seq_done(const aios__gen_seq *q) { return q->done; }
aios_status aios__gen_seq_status(const aios__gen_seq *q, const char **err) {
    if (err) *err = q->err;
    return q->st;
}
const aios_gen_uncertainty *aios__gen_seq_uncertainty(const aios__gen_seq *q) { return q->unc; }

void aios__gen_seq_free(aios__gen_seq *q) {
    if (!q) return;
    if (q->own_kv) aios_kv_cache_free(q->kv);
    if (q->own_logits) free(q->logits);
    for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS; i++) aios_kv_cache_free(q->comp_kv[i]), free(q->comp_logits[i]);
    free(q->raw);
    aios_buf_free(&q->text);
    free(q->own_unc.entropy), free(q->own_unc.p_top1);
    free(q);
}

/* ------------------------------------------------------------------------------------------
 * run-time LoRA adapters
 * ------------------------------------------------------------------------------------------ */

/* Hands the attached adapters to the decoder and forgets the cache (its K/V were computed
 * with the previous set). */
static aios_status sync_adapters(aios_generator *g) {
    aios_lora *a[AIOS_DECODER_MAX_ADAPTERS];
    float s[AIOS_DECODER_MAX_ADAPTERS];
    int n = 0;
    for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS; i++)
        if (g->adapters[i]) a[n] = g->adapters[i], s[n++] = g->adapter_scale[i];
    if (g->kv) aios_kv_cache_truncate(g->kv, 0);
    if (g->pfx_kv) aios_kv_cache_truncate(g->pfx_kv, 0); /* an adapter may be freed: no stale pointers */
    return aios_decoder_set_adapters(g->dec, a, s, n);
}

aios_status aios_generator_adapter_add(aios_generator *g, const char *path, float scale, int *id) {
    if (!g || !path) return aios__err(AIOS_ERR_INVALID_ARG, "adapter: NULL argument");
    if (!isfinite(scale)) return aios__err(AIOS_ERR_INVALID_ARG, "adapter %s: scale is not finite", path);
    int slot = -1;
    for (int i = 0; i < AIOS_DECODER_MAX_ADAPTERS && slot < 0; i++)
        if (!g->adapters[i]) slot = i;
    if (slot < 0) return aios__err(AIOS_ERR_RANGE, "adapter %s: %d adapters attached already", path, AIOS_DECODER_MAX_ADAPTERS);
    aios_lora *a = NULL;
    AIOS_TRY(aios_lora_load(path, aios_decoder_get_config(g->dec), &a));
    g->adapters[slot] = a;
    g->adapter_scale[slot] = scale;
    aios_status s = sync_adapters(g);
    if (s != AIOS_OK) {
        g->adapters[slot] = NULL;
        aios_lora_free(a);
        sync_adapters(g);
        return s;
    }
    if (id) *id = slot;
    return AIOS_OK;
}

aios_status aios_generator_adapter_scale(aios_generator *g, int id, float scale) {
    if (!g || id < 0 || id >= AIOS_DECODER_MAX_ADAPTERS || !g->adapters[id])
        return aios__err(AIOS_ERR_NOT_FOUND, "adapter: no adapter %d", id);
    if (!isfinite(scale)) return aios__err(AIOS_ERR_INVALID_ARG, "adapter %d: scale is not finite", id);
    g->adapter_scale[id] = scale;
    return sync_adapters(g);
}

aios_status aios_generator_adapter_remove(aios_generator *g, int id) {
    if (!g || id < 0 || id >= AIOS_DECODER_MAX_ADAPTERS || !g->adapters[id])
        return aios__err(AIOS_ERR_NOT_FOUND, "adapter: no adapter %d", id);
    aios_lora_free(g->adapters[id]);
    g->adapters[id] = NULL;
    return sync_adapters(g);
}

aios_status aios_generator_set_router(aios_generator *g, aios_router router, int top_k, float temperature) {
    if (!g) return aios__err(AIOS_ERR_INVALID_ARG, "router: NULL generator");
    if (g->kv) aios_kv_cache_truncate(g->kv, 0);
    return aios_decoder_set_router(g->dec, (int)router, top_k, temperature);
}

aios_status aios_router_parse(const char *name, aios_router *out) {
    static const char *const names[] = {"none", "arrow", "compose"};
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (aios_router)i;
            return AIOS_OK;
        }
    return aios__err(AIOS_ERR_INVALID_ARG, "router '%s' (none, arrow, compose)", name ? name : "(null)");
}

int aios_generator_adapter_count(const aios_generator *g) {
    int n = 0;
    for (int i = 0; g && i < AIOS_DECODER_MAX_ADAPTERS; i++) n += g->adapters[i] != NULL;
    return n;
}

/* For the trainer (src/train/train.h): the decoder, the end-of-turn id of the chat template
 * (<|im_end|> for chatml, <|eot_id|> for llama3, else the first EOS; -1 when none), the pad
 * id (the config's, else the end-of-turn id). */
aios_decoder *aios__generator_decoder(aios_generator *g) { return g->dec; }
int32_t aios__generator_end_of_turn(aios_generator *g) {
    int32_t id = -1;
    if (g->chat == CHAT_CHATML) id = token_id(g, "<|im_end|>");
    else if (g->chat == CHAT_LLAMA3) id = token_id(g, "<|eot_id|>");
    if (id < 0 && g->n_eos) id = g->eos[0];
    return id;
}
int32_t aios__generator_pad(aios_generator *g) {
    int32_t p = g->dec ? aios_decoder_get_config(g->dec)->pad_id : -1;
    return p >= 0 ? p : aios__generator_end_of_turn(g);
}
