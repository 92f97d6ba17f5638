/*
 * model_gguf.c — a GGUF file (llama.cpp's format) as a model: config from the metadata,
 * tensors as views of the blocks in place, under the Hugging Face names the decoder looks up.
 *
 * Key decisions:
 *  - Names: token_embd -> model.embed_tokens, output_norm -> model.norm, output -> lm_head
 *    (absent = tied), blk.N.{attn_norm, attn_q/k/v, attn_output, attn_q_norm, attn_k_norm,
 *    ffn_norm, ffn_gate, ffn_up, ffn_down} -> model.layers.N.{input_layernorm,
 *    self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm, post_attention_layernorm,
 *    mlp.{gate,up,down}_proj}.  Tensors without an HF counterpart keep their GGUF name.
 *  - Shapes: GGUF's ne[] reversed, so a weight is (n_out, n_in) as in PyTorch; block types
 *    keep their blocks (tensor.h AIOS_DTYPE_GGUF_*), nothing is dequantized.
 *  - llama.cpp's convert_hf_to_gguf.py permutes the rows of q_proj / k_proj of llama-arch
 *    models (LlamaModel.permute: within each head, the two rotary halves are interleaved), to
 *    suit ggml's interleaved RoPE.  Our decoder uses HF's rotate_half layout, so those two
 *    tensors are un-permuted at open: whole rows are moved (a row of blocks stays a row of
 *    blocks) into one owned buffer of the same bytes — never a float copy.  Qwen2/Qwen3
 *    converters do not permute (Qwen2Model is not a LlamaModel), so their tensors stay views.
 *  - Config from general.architecture's keys (<arch>.block_count, embedding_length, ...);
 *    an architecture other than llama / qwen2 / qwen3 is refused naming it.
 */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "format/gguf.h"
#include "model/model_internal.h"

static const char *const ARCHS[] = {"llama", "qwen2", "qwen3"};

static int map_dtype(uint32_t ggml, aios_dtype *dt) {
    switch (ggml) {
    case 0: *dt = AIOS_DTYPE_F32; return 1;
    case 1: *dt = AIOS_DTYPE_F16; return 1;
    case 30: *dt = AIOS_DTYPE_BF16; return 1;
    case 28: *dt = AIOS_DTYPE_F64; return 1;
    case 24: *dt = AIOS_DTYPE_I8; return 1;
    case 25: *dt = AIOS_DTYPE_I16; return 1;
    case 26: *dt = AIOS_DTYPE_I32; return 1;
    case 27: *dt = AIOS_DTYPE_I64; return 1;
    case 2: *dt = AIOS_DTYPE_GGUF_Q4_0; return 1;
    case 3: *dt = AIOS_DTYPE_GGUF_Q4_1; return 1;
    case 6: *dt = AIOS_DTYPE_GGUF_Q5_0; return 1;
    case 7: *dt = AIOS_DTYPE_GGUF_Q5_1; return 1;
    case 8: *dt = AIOS_DTYPE_GGUF_Q8_0; return 1;
    case 10: *dt = AIOS_DTYPE_GGUF_Q2_K; return 1;
    case 11: *dt = AIOS_DTYPE_GGUF_Q3_K; return 1;
    case 12: *dt = AIOS_DTYPE_GGUF_Q4_K; return 1;
    case 13: *dt = AIOS_DTYPE_GGUF_Q5_K; return 1;
    case 14: *dt = AIOS_DTYPE_GGUF_Q6_K; return 1;
    case 15: *dt = AIOS_DTYPE_GGUF_Q8_K; return 1;
    default: return 0;
    }
}

/* HF name of a GGUF tensor name into out (n bytes); the GGUF name itself when unmapped. */
void aios__gguf_hf_name(const char *g, char *out, size_t n) {
    static const char *const top[][2] = {{"token_embd.weight", "model.embed_tokens.weight"},
                                         {"output_norm.weight", "model.norm.weight"},
                                         {"output.weight", "lm_head.weight"}};
    static const char *const blk[][2] = {
        {"attn_norm", "input_layernorm"},         {"attn_q", "self_attn.q_proj"},
        {"attn_k", "self_attn.k_proj"},           {"attn_v", "self_attn.v_proj"},
        {"attn_output", "self_attn.o_proj"},      {"attn_q_norm", "self_attn.q_norm"},
        {"attn_k_norm", "self_attn.k_norm"},      {"ffn_norm", "post_attention_layernorm"},
        {"ffn_gate", "mlp.gate_proj"},            {"ffn_up", "mlp.up_proj"},
        {"ffn_down", "mlp.down_proj"}};
    for (size_t i = 0; i < AIOS_ARRAY_LEN(top); i++)
        if (!strcmp(g, top[i][0])) {
            snprintf(out, n, "%s", top[i][1]);
            return;
        }
    unsigned layer;
    int used = 0;
    if (sscanf(g, "blk.%u.%n", &layer, &used) == 1 && used > 0 && layer < 1000000) {
        const char *rest = g + used, *dot = strrchr(rest, '.');
        if (dot && (!strcmp(dot, ".weight") || !strcmp(dot, ".bias"))) {
            for (size_t i = 0; i < AIOS_ARRAY_LEN(blk); i++)
                if (strlen(blk[i][0]) == (size_t)(dot - rest) && !strncmp(rest, blk[i][0], (size_t)(dot - rest))) {
                    snprintf(out, n, "model.layers.%u.%s%s", layer, blk[i][1], dot);
                    return;
                }
        }
    }
    snprintf(out, n, "%s", g);
}

static aios_status meta_int(const aios_gguf *g, const char *arch, const char *key, int64_t lo, int64_t hi, int required,
                            int64_t *out) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    int64_t v;
    if (!aios_gguf_get_int(g, k, &v)) {
        if (aios_gguf_get(g, k)) return aios__err(AIOS_ERR_FORMAT, "gguf: key '%s' is not an integer", k);
        if (required) return aios__err(AIOS_ERR_FORMAT, "gguf: key '%s' is missing", k);
        return AIOS_OK;
    }
    if (v < lo || v > hi)
        return aios__err(AIOS_ERR_FORMAT, "gguf: key '%s' = %lld is out of range [%lld, %lld]", k, (long long)v, (long long)lo,
                         (long long)hi);
    *out = v;
    return AIOS_OK;
}

static aios_status meta_f64(const aios_gguf *g, const char *arch, const char *key, double lo, double hi, double *out) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    double v;
    if (!aios_gguf_get_f64(g, k, &v)) {
        if (aios_gguf_get(g, k)) return aios__err(AIOS_ERR_FORMAT, "gguf: key '%s' is not a number", k);
        return AIOS_OK;
    }
    if (!(v >= lo && v <= hi)) return aios__err(AIOS_ERR_FORMAT, "gguf: key '%s' = %g is out of range", k, v);
    *out = v;
    return AIOS_OK;
}

static int32_t tok_id(const aios_gguf *g, const char *key, int64_t n_vocab) {
    int64_t v;
    return aios_gguf_get_int(g, key, &v) && v >= 0 && v < n_vocab ? (int32_t)v : -1;
}

static aios_status load_config(aios_model *m, const aios_gguf *g, const char *arch) {
    aios_model_config *c = &m->cfg;
    const int64_t BIG = (int64_t)1 << 31;
    snprintf(c->model_type, sizeof c->model_type, "%s", arch);
    c->arch = !strcmp(arch, "llama") ? AIOS_ARCH_LLAMA : !strcmp(arch, "qwen2") ? AIOS_ARCH_QWEN2 : AIOS_ARCH_QWEN3;
    snprintf(c->architecture, sizeof c->architecture, "%s",
             c->arch == AIOS_ARCH_LLAMA ? "LlamaForCausalLM" : c->arch == AIOS_ARCH_QWEN2 ? "Qwen2ForCausalLM" : "Qwen3ForCausalLM");
    size_t nl;
    const char *nm = aios_gguf_get_str(g, "general.name", &nl);
    if (nm) snprintf(c->model_name, sizeof c->model_name, "%.*s", (int)AIOS_MIN(nl, sizeof c->model_name - 1), nm);
    AIOS_TRY(meta_int(g, arch, "block_count", 1, 100000, 1, &c->n_layer));
    AIOS_TRY(meta_int(g, arch, "embedding_length", 1, BIG, 1, &c->n_embd));
    AIOS_TRY(meta_int(g, arch, "attention.head_count", 1, 1 << 20, 1, &c->n_head));
    c->n_head_kv = c->n_head;
    AIOS_TRY(meta_int(g, arch, "attention.head_count_kv", 1, 1 << 20, 0, &c->n_head_kv));
    c->head_dim = c->n_embd / c->n_head;
    AIOS_TRY(meta_int(g, arch, "attention.key_length", 1, 1 << 20, 0, &c->head_dim));
    AIOS_TRY(meta_int(g, arch, "feed_forward_length", 1, BIG, 1, &c->n_ff));
    c->n_ctx_train = 2048;
    AIOS_TRY(meta_int(g, arch, "context_length", 1, BIG, 0, &c->n_ctx_train));
    double eps = 1e-5, theta = 10000.0;
    AIOS_TRY(meta_f64(g, arch, "attention.layer_norm_rms_epsilon", 0, 1, &eps));
    AIOS_TRY(meta_f64(g, arch, "rope.freq_base", 1e-3, 1e12, &theta));
    c->norm_eps = (float)eps;
    c->rope_theta = theta;
    c->rms_norm = 1;
    snprintf(c->hidden_act, sizeof c->hidden_act, "silu");
    /* rope scaling: <arch>.rope.scaling.{type, factor, original_context_length} */
    char k[256];
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    size_t tl;
    const char *rt = aios_gguf_get_str(g, k, &tl);
    snprintf(c->rope_type, sizeof c->rope_type, "default");
    c->rope_factor = 1.0;
    if (rt && !(tl == 4 && !memcmp(rt, "none", 4))) {
        snprintf(c->rope_type, sizeof c->rope_type, "%.*s", (int)AIOS_MIN(tl, sizeof c->rope_type - 1), rt);
        AIOS_TRY(meta_f64(g, arch, "rope.scaling.factor", 1e-6, 1e6, &c->rope_factor));
        AIOS_TRY(meta_int(g, arch, "rope.scaling.original_context_length", 1, BIG, 0, &c->rope_original_max_pos));
        if (!strcmp(c->rope_type, "yarn"))
            return aios__err(AIOS_ERR_UNSUPPORTED, "gguf: key '%s' = 'yarn' (supported: none, linear)", k);
    }
    /* vocabulary size: the token list (llama.cpp's rule), else <arch>.vocab_size */
    const aios_gguf_value *toks = aios_gguf_get_arr(g, "tokenizer.ggml.tokens", AIOS_GGUF_STRING);
    if (toks) c->n_vocab = (int64_t)toks->v.arr.n;
    else AIOS_TRY(meta_int(g, arch, "vocab_size", 1, BIG, 0, &c->n_vocab));
    if (c->n_vocab <= 0) return aios__err(AIOS_ERR_FORMAT, "gguf: no tokenizer.ggml.tokens and no %s.vocab_size", arch);
    c->bos_token_id = tok_id(g, "tokenizer.ggml.bos_token_id", c->n_vocab);
    c->eos_token_id = tok_id(g, "tokenizer.ggml.eos_token_id", c->n_vocab);
    c->pad_token_id = tok_id(g, "tokenizer.ggml.padding_token_id", c->n_vocab);
    c->mask_token_id = -1;
    if (c->eos_token_id >= 0) c->eos_token_ids[c->n_eos++] = c->eos_token_id;
    int32_t eot = tok_id(g, "tokenizer.ggml.eot_token_id", c->n_vocab);
    if (eot >= 0 && eot != c->eos_token_id) c->eos_token_ids[c->n_eos++] = eot;
    c->attention = AIOS_ATTN_CAUSAL;
    c->embedding_dimension = c->n_embd;
    return AIOS_OK;
}

/* Undoes LlamaModel.permute on t's rows (n_head heads of head_dim rows): HF row
 * h*hd + j*(hd/2) + i is GGUF row h*hd + 2*i + j.  The rows go to a new owned buffer. */
static aios_status unpermute(aios_model *m, aios_tensor *t, int64_t n_head) {
    int64_t rows = t->ndim >= 1 ? t->shape[0] : 0;
    if (n_head <= 0 || rows % n_head || (rows / n_head) % 2)
        return aios__err(AIOS_ERR_SHAPE, "gguf: tensor '%s': %lld rows do not split into %lld heads of even size", t->name,
                         (long long)rows, (long long)n_head);
    size_t row_bytes = t->nbytes / (size_t)(rows ? rows : 1);
    if (row_bytes * (size_t)rows != t->nbytes)
        return aios__err(AIOS_ERR_SHAPE, "gguf: tensor '%s': rows are not whole bytes", t->name);
    uint8_t *buf = malloc(t->nbytes ? t->nbytes : 1);
    void **no = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *no);
    if (!buf || !no) {
        free(buf);
        if (no) m->owned = no;
        return aios__err(AIOS_ERR_NOMEM, "gguf: out of memory");
    }
    m->owned = no;
    m->owned[m->n_owned++] = buf;
    int64_t hd = rows / n_head, half = hd / 2;
    const uint8_t *src = t->data;
    for (int64_t r = 0; r < rows; r++) {
        int64_t h = r / hd, rem = r % hd, j = rem / half, i = rem % half;
        memcpy(buf + (size_t)r * row_bytes, src + (size_t)(h * hd + 2 * i + j) * row_bytes, row_bytes);
    }
    t->data = buf;
    return AIOS_OK;
}

aios_status aios__model_load_gguf(aios_model *m, const char *path) {
    AIOS_TRY(aios_gguf_open(path, &m->gguf));
    const aios_gguf *g = m->gguf;
    size_t al;
    const char *a = aios_gguf_get_str(g, "general.architecture", &al);
    if (!a) return aios__err(AIOS_ERR_FORMAT, "gguf: key 'general.architecture' is missing");
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)AIOS_MIN(al, sizeof arch - 1), a);
    int known = 0;
    for (size_t i = 0; i < AIOS_ARRAY_LEN(ARCHS); i++) known |= !strcmp(arch, ARCHS[i]) && al == strlen(ARCHS[i]);
    if (!known)
        return aios__err(AIOS_ERR_UNSUPPORTED, "gguf: general.architecture '%s' is not supported (supported: llama, qwen2, qwen3)",
                         arch);
    AIOS_TRY(load_config(m, g, arch));
    size_t tl;
    const char *tmpl = aios_gguf_get_str(g, "tokenizer.chat_template", &tl);
    if (tmpl && !memchr(tmpl, 0, tl) && !(m->chat_template = strndup(tmpl, tl)))
        return aios__err(AIOS_ERR_NOMEM, "gguf: out of memory");

    int64_t n = aios_gguf_tensor_count(g);
    size_t names = 0;
    for (int64_t i = 0; i < n; i++) names += strlen(aios_gguf_tensor_at(g, i)->name) + 40;
    m->t = calloc((size_t)n + 1, sizeof *m->t);
    m->names = malloc(names + 1);
    if (!m->t || !m->names) return aios__err(AIOS_ERR_NOMEM, "gguf: out of memory");
    size_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        const aios_gguf_tensor *gt = aios_gguf_tensor_at(g, i);
        aios_tensor *t = &m->t[m->n];
        memset(t, 0, sizeof *t);
        if (!map_dtype(gt->ggml_type, &t->dtype))
            return aios__err(AIOS_ERR_UNSUPPORTED, "gguf: tensor '%s': ggml type %s is not supported", gt->name,
                             aios_ggml_type_name(gt->ggml_type));
        char *nm = m->names + used;
        aios__gguf_hf_name(gt->name, nm, names - used);
        used += strlen(nm) + 1;
        t->name = nm;
        t->ndim = gt->n_dims;
        for (int d = 0; d < gt->n_dims; d++) t->shape[d] = gt->ne[gt->n_dims - 1 - d];
        t->data = gt->data;
        t->nbytes = gt->nbytes;
        t->quant_axis = -1;
        m->n++;
    }
    /* q/k row order (see the file comment) */
    if (m->cfg.arch == AIOS_ARCH_LLAMA) {
        for (int64_t i = 0; i < m->n; i++) {
            aios_tensor *t = &m->t[i];
            const char *s = strstr(t->name, ".self_attn.");
            if (!s || strncmp(t->name, "model.layers.", 13)) continue;
            if (!strcmp(s, ".self_attn.q_proj.weight") || !strcmp(s, ".self_attn.q_proj.bias"))
                AIOS_TRY(unpermute(m, t, m->cfg.n_head));
            else if (!strcmp(s, ".self_attn.k_proj.weight") || !strcmp(s, ".self_attn.k_proj.bias"))
                AIOS_TRY(unpermute(m, t, m->cfg.n_head_kv));
        }
    }
    return AIOS_OK;
}

const char *aios__model_chat_template(const aios_model *m) { return m ? m->chat_template : NULL; }

const struct aios_gguf *aios__model_gguf(const aios_model *m) { return m ? m->gguf : NULL; }
