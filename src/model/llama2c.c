/*
 * llama2c.c — llama2.c checkpoint importer and tokenizer.bin reader.
 *
 * Checkpoint formats (llama2.c export.py):
 *   version 0 ("legacy"): Config {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 *     seq_len} as 7 x int32; vocab_size < 0 means an unshared classifier follows.  Then fp32:
 *     token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim), wk (L, kv_dim, dim),
 *     wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim), w1 (L, hidden, dim),
 *     w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final (dim), freq_cis_real/imag
 *     (seq_len, head_size/2 each, unused), [wcls (vocab, dim)].
 *   version 1: uint32 magic 0x616b3432 ("ak42"), int32 version = 1, the 7 ints, uint8
 *     shared_classifier, zero padding to 256 bytes; fp32: rms_att, rms_ffn, rms_final,
 *     token_embedding, wq, wk, wv, wo, w1, w2, w3, [wcls].
 * w1 is the SwiGLU gate, w3 the up projection, w2 the down projection.  llama2.c rotates
 * interleaved pairs (2i, 2i+1) of each head; Hugging Face rotates (i, i + hd/2).  The importer
 * permutes the rows of wq and wk per head so that new row h*half + i = old row 2i + h (h in
 * {0,1}), which makes the rotate_half decoder compute the same attention.  Every size read from
 * the file is checked against the file length before a pointer is formed.
 * tokenizer.bin (llama2.c tokenizer.py export): int32 max_token_length, then per token
 *   float32 score, int32 length, bytes.
 */
#include "model/llama2c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "format/safetensors.h"

#include <errno.h>
#include <sys/stat.h>

#define L2C_MAX_TENSORS 4096

struct aios_llama2c {
    aios_map map;
    aios_decoder_config cfg;
    aios_tensor *tensors;
    char **names;
    size_t n_tensors;
    float *permuted; /* wq, wk copies in rotate_half row order */
};

static aios_status add_tensor(aios_llama2c *m, const char *name, const float *data, int64_t rows, int64_t cols) {
    if (m->n_tensors >= L2C_MAX_TENSORS) return aios__err(AIOS_ERR_RANGE, "llama2c: too many tensors");
    char *nm = strdup(name);
    if (!nm) return aios__err(AIOS_ERR_NOMEM, "llama2c");
    aios_tensor *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->dtype = AIOS_DTYPE_F32;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->data = data;
    t->nbytes = (size_t)rows * (size_t)(cols ? cols : 1) * sizeof(float);
    t->quant_axis = -1;
    m->names[m->n_tensors++] = nm;
    return AIOS_OK;
}

typedef struct {
    const uint8_t *base;
    size_t size, off;
} cursor;

/* Takes n floats from the cursor; NULL on overrun. */
static const float *take(cursor *c, uint64_t n) {
    uint64_t b;
    if (!aios__mul_ok(n, 4, &b) || b > c->size - c->off) return NULL;
    const float *p = (const float *)(c->base + c->off);
    c->off += (size_t)b;
    return p;
}

aios_status aios_llama2c_open(const char *path, aios_llama2c **out) {
    *out = NULL;
    aios_llama2c *m = calloc(1, sizeof *m);
    if (!m) return aios__err(AIOS_ERR_NOMEM, "llama2c");
    aios_status s = aios__map_file(path, &m->map);
    if (s != AIOS_OK) {
        free(m);
        return s;
    }
    const uint8_t *p = m->map.data;
    size_t size = m->map.size;
    int32_t h[7];
    int version = 0, shared = 1;
    size_t off;
    uint32_t magic = 0;
    if (size >= 4) memcpy(&magic, p, 4);
    if (magic == 0x616b3432u) {
        int32_t ver = 0;
        if (size < 256) {
            s = aios__err(AIOS_ERR_FORMAT, "llama2c: %s: header truncated", path);
            goto fail;
        }
        memcpy(&ver, p + 4, 4);
        if (ver != 1) {
            s = aios__err(AIOS_ERR_UNSUPPORTED, "llama2c: %s: version %d (supported: 0 legacy, 1 fp32)", path, ver);
            goto fail;
        }
        memcpy(h, p + 8, sizeof h);
        shared = p[36];
        version = 1;
        off = 256;
    } else {
        if (size < sizeof h) {
            s = aios__err(AIOS_ERR_FORMAT, "llama2c: %s: header truncated", path);
            goto fail;
        }
        memcpy(h, p, sizeof h);
        shared = h[5] > 0;
        if (h[5] < 0) h[5] = h[5] == INT32_MIN ? 0 : -h[5]; /* INT32_MIN: refused below as vocab 0 */
        off = sizeof h;
    }
    int64_t dim = h[0], hidden = h[1], nl = h[2], nh = h[3], nkv = h[4], vocab = h[5], seq = h[6];
    if (dim <= 0 || hidden <= 0 || nl <= 0 || nh <= 0 || nkv <= 0 || vocab <= 0 || seq <= 0 || dim % nh ||
        nh % nkv || (dim / nh) % 2 || dim > (1 << 16) || hidden > (1 << 18) || nl > 1024 || vocab > (1 << 22) ||
        seq > (1 << 22)) {
        s = aios__err(AIOS_ERR_FORMAT, "llama2c: %s: bad header dim=%lld hidden=%lld layers=%lld heads=%lld kv=%lld vocab=%lld seq=%lld",
                      path, (long long)dim, (long long)hidden, (long long)nl, (long long)nh, (long long)nkv,
                      (long long)vocab, (long long)seq);
        goto fail;
    }
    int64_t hd = dim / nh, kvd = nkv * hd;
    aios_decoder_config *c = &m->cfg;
    snprintf(c->model_type, sizeof c->model_type, "llama");
    c->naming = AIOS_NAMING_HF;
    c->n_embd = dim, c->n_head = nh, c->n_head_kv = nkv, c->head_dim = hd, c->n_layer = nl;
    c->n_ff = hidden, c->n_vocab = vocab, c->n_ctx_train = seq;
    c->eps = 1e-5f;
    c->rope_theta = 10000.0;
    c->rope_type = AIOS_ROPE_DEFAULT;
    c->rope_factor = 1.0;
    c->rope_orig_ctx = seq;
    c->tied = shared;
    c->bos_id = 1;
    c->eos_ids[0] = 2;
    c->n_eos = 1;
    c->pad_id = c->mask_id = -1;

    cursor cu = {p, size, off};
    const float *emb = NULL, *rms_att, *rms_ffn, *rms_final, *wq, *wk, *wv, *wo, *w1, *w2, *w3, *wcls = NULL;
    if (version == 0) emb = take(&cu, (uint64_t)(vocab * dim));
    rms_att = take(&cu, (uint64_t)(nl * dim));
    if (version == 0) {
        wq = take(&cu, (uint64_t)(nl * dim * dim));
        wk = take(&cu, (uint64_t)(nl * kvd * dim));
        wv = take(&cu, (uint64_t)(nl * kvd * dim));
        wo = take(&cu, (uint64_t)(nl * dim * dim));
        rms_ffn = take(&cu, (uint64_t)(nl * dim));
    } else {
        rms_ffn = take(&cu, (uint64_t)(nl * dim));
        rms_final = take(&cu, (uint64_t)dim);
        emb = take(&cu, (uint64_t)(vocab * dim));
        wq = take(&cu, (uint64_t)(nl * dim * dim));
        wk = take(&cu, (uint64_t)(nl * kvd * dim));
        wv = take(&cu, (uint64_t)(nl * kvd * dim));
        wo = take(&cu, (uint64_t)(nl * dim * dim));
    }
    w1 = take(&cu, (uint64_t)(nl * hidden * dim));
    w2 = take(&cu, (uint64_t)(nl * dim * hidden));
    w3 = take(&cu, (uint64_t)(nl * hidden * dim));
    if (version == 0) {
        rms_final = take(&cu, (uint64_t)dim);
        /* freq_cis_real + imag (seq * hd/2 each): unused, but a file cut inside them is truncated */
        if (rms_final && !take(&cu, (uint64_t)(seq * hd))) rms_final = NULL;
    }
    if (!shared) wcls = take(&cu, (uint64_t)(vocab * dim));
    if (!emb || !rms_att || !rms_ffn || !rms_final || !wq || !wk || !wv || !wo || !w1 || !w2 || !w3 ||
        (!shared && !wcls)) {
        s = aios__err(AIOS_ERR_FORMAT, "llama2c: %s: truncated (%zu bytes for dim=%lld layers=%lld vocab=%lld)", path,
                      size, (long long)dim, (long long)nl, (long long)vocab);
        goto fail;
    }
    /* allocate only once the file has proven to hold every tensor the header claims */
    m->tensors = calloc((size_t)(nl * 9 + 4), sizeof *m->tensors);
    m->names = calloc((size_t)(nl * 9 + 4), sizeof *m->names);
    m->permuted = malloc((size_t)(nl * (dim * dim + kvd * dim)) * sizeof(float));
    if (!m->tensors || !m->names || !m->permuted) {
        s = aios__err(AIOS_ERR_NOMEM, "llama2c");
        goto fail;
    }
    if ((s = add_tensor(m, "model.embed_tokens.weight", emb, vocab, dim)) != AIOS_OK) goto fail;
    if ((s = add_tensor(m, "model.norm.weight", rms_final, dim, 0)) != AIOS_OK) goto fail;
    if (wcls && (s = add_tensor(m, "lm_head.weight", wcls, vocab, dim)) != AIOS_OK) goto fail;
    float *perm = m->permuted;
    for (int64_t l = 0; l < nl; l++) {
        char n[128];
#define ADD(suffix, ptr, r, cl)                                                    \
    do {                                                                           \
        snprintf(n, sizeof n, "model.layers.%lld.%s", (long long)l, suffix);       \
        if ((s = add_tensor(m, n, ptr, r, cl)) != AIOS_OK) goto fail;              \
    } while (0)
        /* interleaved -> rotate_half row permutation for q (nh heads) and k (nkv heads) */
        const float *srcs[2] = {wq + l * dim * dim, wk + l * kvd * dim};
        int64_t heads[2] = {nh, nkv};
        float *dst[2];
        for (int w = 0; w < 2; w++) {
            dst[w] = perm;
            for (int64_t hh = 0; hh < heads[w]; hh++)
                for (int64_t half = 0; half < 2; half++)
                    for (int64_t i = 0; i < hd / 2; i++)
                        memcpy(perm + (hh * hd + half * (hd / 2) + i) * dim, srcs[w] + (hh * hd + 2 * i + half) * dim,
                               (size_t)dim * sizeof(float));
            perm += heads[w] * hd * dim;
        }
        ADD("input_layernorm.weight", rms_att + l * dim, dim, 0);
        ADD("post_attention_layernorm.weight", rms_ffn + l * dim, dim, 0);
        ADD("self_attn.q_proj.weight", dst[0], dim, dim);
        ADD("self_attn.k_proj.weight", dst[1], kvd, dim);
        ADD("self_attn.v_proj.weight", wv + l * kvd * dim, kvd, dim);
        ADD("self_attn.o_proj.weight", wo + l * dim * dim, dim, dim);
        ADD("mlp.gate_proj.weight", w1 + l * hidden * dim, hidden, dim);
        ADD("mlp.down_proj.weight", w2 + l * dim * hidden, dim, hidden);
        ADD("mlp.up_proj.weight", w3 + l * hidden * dim, hidden, dim);
#undef ADD
    }
    *out = m;
    return AIOS_OK;
fail:
    aios_llama2c_free(m);
    return s;
}

void aios_llama2c_free(aios_llama2c *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_tensors; i++) free(m->names[i]);
    free(m->names);
    free(m->tensors);
    free(m->permuted);
    aios__unmap_file(&m->map);
    free(m);
}

const aios_decoder_config *aios_llama2c_config(const aios_llama2c *m) { return &m->cfg; }
size_t aios_llama2c_n_tensors(const aios_llama2c *m) { return m->n_tensors; }
const aios_tensor *aios_llama2c_tensor(const aios_llama2c *m, size_t i) {
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}

const aios_tensor *aios_llama2c_lookup(void *ctx, const char *name) {
    const aios_llama2c *m = ctx;
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

aios_status aios_llama2c_export(const aios_llama2c *m, const char *tokenizer_bin, const char *out_dir) {
    if (mkdir(out_dir, 0755) && errno != EEXIST) return aios__err(AIOS_ERR_IO, "llama2c: mkdir %s: %s", out_dir, strerror(errno));
    const aios_decoder_config *c = &m->cfg;
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", out_dir);
    FILE *f = fopen(p, "w");
    if (!f) return aios__err(AIOS_ERR_IO, "llama2c: %s: %s", p, strerror(errno));
    fprintf(f,
            "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": %lld,\n"
            "  \"intermediate_size\": %lld,\n  \"num_hidden_layers\": %lld,\n  \"num_attention_heads\": %lld,\n"
            "  \"num_key_value_heads\": %lld,\n  \"vocab_size\": %lld,\n  \"max_position_embeddings\": %lld,\n"
            "  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n  \"hidden_act\": \"silu\",\n"
            "  \"tie_word_embeddings\": %s,\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n  \"torch_dtype\": \"float32\"\n}\n",
            (long long)c->n_embd, (long long)c->n_ff, (long long)c->n_layer, (long long)c->n_head, (long long)c->n_head_kv,
            (long long)c->n_vocab, (long long)c->n_ctx_train, c->tied ? "true" : "false");
    if (fclose(f)) return aios__err(AIOS_ERR_IO, "llama2c: %s: write failed", p);
    const aios_tensor **t = malloc(m->n_tensors * sizeof *t);
    if (!t) return aios__err(AIOS_ERR_NOMEM, "llama2c");
    for (size_t i = 0; i < m->n_tensors; i++) t[i] = &m->tensors[i];
    snprintf(p, sizeof p, "%s/model.safetensors", out_dir);
    const char *meta[] = {"format", "pt", "source", "llama2.c checkpoint (aios import)", NULL};
    aios_status s = aios_safetensors_write(p, t, (int64_t)m->n_tensors, meta);
    free(t);
    if (s || !tokenizer_bin) return s;
    char *buf = NULL;
    size_t len = 0;
    AIOS_TRY(aios__read_file(tokenizer_bin, &buf, &len));
    snprintf(p, sizeof p, "%s/tokenizer.bin", out_dir);
    f = fopen(p, "wb");
    if (!f) {
        free(buf);
        return aios__err(AIOS_ERR_IO, "llama2c: %s: %s", p, strerror(errno));
    }
    size_t w = fwrite(buf, 1, len, f);
    free(buf);
    if (fclose(f) || w != len) return aios__err(AIOS_ERR_IO, "llama2c: %s: write failed", p);
    return AIOS_OK;
}

/* ------------------------------------------------------------------------------------------
 * tokenizer.bin
 * ------------------------------------------------------------------------------------------ */

struct aios_llama2c_tok {
    int64_t n_vocab;
    char **pieces;      /* NUL-terminated copies (pieces never contain NUL in practice; we keep lens) */
    uint32_t *lens;
    float *scores;
    int32_t *sorted;    /* ids sorted by piece bytes, for lookup */
    int32_t max_len;
};

static const aios_llama2c_tok *g_sort_tok;
static int cmp_piece(const void *a, const void *b) {
    const aios_llama2c_tok *t = g_sort_tok;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = t->lens[x], ly = t->lens[y];
    int c = memcmp(t->pieces[x], t->pieces[y], lx < ly ? lx : ly);
    if (c) return c;
    return lx < ly ? -1 : lx > ly;
}

aios_status aios_llama2c_tok_open(const char *path, int64_t n_vocab, aios_llama2c_tok **out) {
    *out = NULL;
    if (n_vocab <= 0 || n_vocab > (1 << 22)) return aios__err(AIOS_ERR_RANGE, "llama2c tokenizer: vocab %lld", (long long)n_vocab);
    char *buf = NULL;
    size_t len = 0;
    AIOS_TRY(aios__read_file(path, &buf, &len));
    aios_status s = AIOS_OK;
    aios_llama2c_tok *t = calloc(1, sizeof *t);
    if (!t) {
        free(buf);
        return aios__err(AIOS_ERR_NOMEM, "llama2c tokenizer");
    }
    t->n_vocab = n_vocab;
    t->pieces = calloc((size_t)n_vocab, sizeof *t->pieces);
    t->lens = calloc((size_t)n_vocab, sizeof *t->lens);
    t->scores = calloc((size_t)n_vocab, sizeof *t->scores);
    t->sorted = calloc((size_t)n_vocab, sizeof *t->sorted);
    if (!t->pieces || !t->lens || !t->scores || !t->sorted) {
        s = aios__err(AIOS_ERR_NOMEM, "llama2c tokenizer");
        goto fail;
    }
    size_t off = 4;
    if (len < 4) {
        s = aios__err(AIOS_ERR_FORMAT, "llama2c tokenizer: %s: truncated header", path);
        goto fail;
    }
    memcpy(&t->max_len, buf, 4);
    for (int64_t i = 0; i < n_vocab; i++) {
        int32_t n;
        if (len - off < 8) {
            s = aios__err(AIOS_ERR_FORMAT, "llama2c tokenizer: %s: token %lld: truncated", path, (long long)i);
            goto fail;
        }
        memcpy(&t->scores[i], buf + off, 4);
        memcpy(&n, buf + off + 4, 4);
        off += 8;
        if (n < 0 || (size_t)n > len - off) {
            s = aios__err(AIOS_ERR_FORMAT, "llama2c tokenizer: %s: token %lld: length %d past the end", path, (long long)i, n);
            goto fail;
        }
        t->pieces[i] = malloc((size_t)n + 1);
        if (!t->pieces[i]) {
            s = aios__err(AIOS_ERR_NOMEM, "llama2c tokenizer");
            goto fail;
        }
        memcpy(t->pieces[i], buf + off, (size_t)n);
        t->pieces[i][n] = 0;
        t->lens[i] = (uint32_t)n;
        off += (size_t)n;
        t->sorted[i] = (int32_t)i;
    }
    g_sort_tok = t; /* qsort has no context argument in C11; open is not hot and this is brief */
    qsort(t->sorted, (size_t)n_vocab, sizeof *t->sorted, cmp_piece);
    g_sort_tok = NULL;
    free(buf);
    *out = t;
    return AIOS_OK;
fail:
    free(buf);
    aios_llama2c_tok_free(t);
    return s;
}

void aios_llama2c_tok_free(aios_llama2c_tok *t) {
    if (!t) return;
    if (t->pieces)
        for (int64_t i = 0; i < t->n_vocab; i++) free(t->pieces[i]);
    free(t->pieces), free(t->lens), free(t->scores), free(t->sorted);
    free(t);
}

/* id of the piece equal to bytes s[0..n), or -1 (binary search over the sorted ids). */
static int32_t lookup(const aios_llama2c_tok *t, const char *s, size_t n) {
    int64_t lo = 0, hi = t->n_vocab - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        int32_t id = t->sorted[mid];
        uint32_t l = t->lens[id];
        int c = memcmp(s, t->pieces[id], n < l ? n : l);
        if (!c) c = n < l ? -1 : n > l;
        if (!c) return id;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return -1;
}

aios_status aios_llama2c_tok_encode(const aios_llama2c_tok *t, const char *text, int bos, int32_t *ids, size_t *n_ids) {
    size_t n = 0, len = strlen(text);
    if (bos) ids[n++] = 1;
    if (len) {
        int32_t sp = lookup(t, " ", 1);
        if (sp >= 0) ids[n++] = sp;
    }
    for (size_t i = 0; i < len;) {
        /* one UTF-8 code point: a lead byte and its continuation bytes (at most 4 in all) */
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int32_t id = lookup(t, text + i, j - i);
        if (id >= 0) {
            ids[n++] = id;
        } else {
            for (size_t k = i; k < j; k++) {
                int32_t b = (int32_t)(unsigned char)text[k] + 3;
                if (b >= t->n_vocab) return aios__err(AIOS_ERR_ENCODING, "llama2c tokenizer: byte fallback outside the vocabulary");
                ids[n++] = b;
            }
        }
        i = j;
    }
    /* merge the best-scoring adjacent pair until none is in the vocabulary */
    char *tmp = malloc((size_t)t->max_len * 2 + 3 > 64 ? (size_t)t->max_len * 2 + 3 : 64);
    size_t tmpcap = (size_t)t->max_len * 2 + 3 > 64 ? (size_t)t->max_len * 2 + 3 : 64;
    if (!tmp) return aios__err(AIOS_ERR_NOMEM, "llama2c tokenizer");
    size_t first = bos ? 1 : 0;
    for (;;) {
        float best = -1e10f;
        int64_t best_i = -1;
        int32_t best_id = -1;
        for (size_t i = first; i + 1 < n; i++) {
            uint32_t la = t->lens[ids[i]], lb = t->lens[ids[i + 1]];
            if ((size_t)la + lb > tmpcap) continue;
            memcpy(tmp, t->pieces[ids[i]], la);
            memcpy(tmp + la, t->pieces[ids[i + 1]], lb);
            int32_t id = lookup(t, tmp, (size_t)la + lb);
            if (id >= 0 && t->scores[id] > best) {
                best = t->scores[id];
                best_i = (int64_t)i;
                best_id = id;
            }
        }
        if (best_i < 0) break;
        ids[best_i] = best_id;
        memmove(ids + best_i + 1, ids + best_i + 2, (n - (size_t)best_i - 2) * sizeof *ids);
        n--;
    }
    free(tmp);
    *n_ids = n;
    return AIOS_OK;
}

size_t aios_llama2c_tok_decode(const aios_llama2c_tok *t, int32_t prev, int32_t id, char *buf, size_t cap) {
    if (!cap) return 0;
    buf[0] = 0;
    if (id < 0 || id >= t->n_vocab) return 0;
    const char *p = t->pieces[id];
    size_t n = t->lens[id];
    if (prev == 1 && n && p[0] == ' ') p++, n--;
    unsigned int byte;
    char tail;
    if (n == 6 && sscanf(p, "<0x%02X%c", &byte, &tail) == 2 && tail == '>') {
        buf[0] = (char)byte;
        buf[1] = 0;
        return 1;
    }
    if (n >= cap) n = cap - 1;
    memcpy(buf, p, n);
    buf[n] = 0;
    return n;
}
