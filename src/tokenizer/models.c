/*
 * models.c — tokenizer.json models: WordPiece, BPE, Unigram, WordLevel.
 *
 * WordPiece: greedy longest-match-first with the continuing-subword prefix; a word longer than
 *   max_input_chars_per_word, or one with an unmatchable piece, becomes the unk token.
 * BPE: a word starts as one symbol per char (prefix on non-first, suffix on last); unknown chars
 *   go to <0xXX> byte tokens under byte_fallback, else to unk (fused when fuse_unk).  Merges
 *   are applied lowest rank first, leftmost first among equals, with a binary heap of candidate
 *   pairs over a linked list of symbols (stale entries are skipped) — the order of
 *   `Word::merge_all` in tokenizers/src/models/bpe/word.rs.  Merges map (left id, right id) ->
 *   (rank, new id) in a hash table.  Merges load as "a b" strings (when a token holds spaces the
 *   split point is the one where both halves and their join are in the vocabulary) or as
 *   [a, b] pairs; a merge whose parts or result are missing from the vocabulary is skipped.
 *   A small per-thread cache maps recent words to their ids.
 * Unigram: Viterbi over a byte trie of all pieces (sentencepiece's `EncodeOptimized`, as in
 *   models/unigram/model.rs): an unknown char costs min_score - 10; consecutive unknowns fuse.
 * WordLevel: whole-word lookup, else unk.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

enum { M_WORDPIECE, M_BPE, M_UNIGRAM, M_WORDLEVEL };

struct tk_model {
    int type;
    tk_strmap vocab;  /* token -> id */
    char **id2tok;    /* id -> token (NUL-terminated) in tokpool, NULL for holes */
    uint32_t *id2len;
    size_t *id2off;   /* during loading: offset in tokpool + 1 (0 = hole) */
    aios_buf tokpool;
    size_t nid;       /* max id + 1 */
    size_t vocab_size;
    int32_t unk_id;   /* -1 when none */
    /* WordPiece */
    char *prefix;
    size_t prefix_len;
    size_t max_chars;
    /* BPE */
    char *suffix;
    size_t suffix_len;
    int byte_fallback, fuse_unk, ignore_merges;
    tk_u64map merges;
    int metaspace_split; /* no token has U+2581 after another char: words split before each ▁ run */
    int32_t byte_ids[256];
    uint64_t cache_salt;
    /* Unigram */
    double *scores;
    double min_score;
    tk_u64map trie; /* (node << 8 | byte) -> child node */
    int32_t *node_piece; /* node -> piece id or -1 */
    size_t nnodes, nodes_cap;
};

void tk_model_free(tk_model *m) {
    if (!m) return;
    tk_strmap_free(&m->vocab);
    free(m->id2tok);
    free(m->id2off);
    aios_buf_free(&m->tokpool);
    free(m->id2len);
    free(m->prefix);
    free(m->suffix);
    tk_u64map_free(&m->merges);
    free(m->scores);
    tk_u64map_free(&m->trie);
    free(m->node_piece);
    free(m);
}

size_t tk_model_vocab_size(const tk_model *m) { return m->vocab_size; }

int32_t tk_model_token_to_id(const tk_model *m, const char *s, size_t len) { return tk_strmap_get(&m->vocab, s, len); }

const char *tk_model_id_to_token(const tk_model *m, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= m->nid || !m->id2tok[id]) return NULL;
    if (len) *len = m->id2len[id];
    return m->id2tok[id];
}

static aios_status set_token(tk_model *m, const char *s, size_t len, int64_t id) {
    if (id < 0 || id > 0x7FFFFFF) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: vocabulary id %lld out of range", (long long)id);
    if ((size_t)id >= m->nid) {
        size_t nn = m->nid ? m->nid : 1024;
        while (nn <= (size_t)id) nn *= 2;
        size_t *a = realloc(m->id2off, nn * sizeof *a);
        if (!a) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        m->id2off = a;
        uint32_t *b = realloc(m->id2len, nn * sizeof *b);
        if (!b) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        m->id2len = b;
        memset(m->id2off + m->nid, 0, (nn - m->nid) * sizeof *a);
        memset(m->id2len + m->nid, 0, (nn - m->nid) * sizeof *b);
        m->nid = nn;
    }
    if (!m->id2off[id]) m->vocab_size++;
    m->id2off[id] = m->tokpool.len + 1;
    m->id2len[id] = (uint32_t)len;
    AIOS_TRY(aios_buf_append(&m->tokpool, s, len));
    AIOS_TRY(aios_buf_append(&m->tokpool, "", 1));
    return tk_strmap_put(&m->vocab, s, len, (int32_t)id);
}

/* After loading: offsets -> pointers (the pool no longer moves). */
static aios_status finish_tokens(tk_model *m) {
    while (m->nid > 0 && !m->id2off[m->nid - 1]) m->nid--;
    m->id2tok = calloc(m->nid + 1, sizeof *m->id2tok);
    if (!m->id2tok) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < m->nid; i++)
        if (m->id2off[i]) m->id2tok[i] = (char *)m->tokpool.data + m->id2off[i] - 1;
    free(m->id2off);
    m->id2off = NULL;
    return AIOS_OK;
}

static aios_status load_vocab_dict(tk_model *m, const cJSON *v) {
    if (!v || !cJSON_IsObject(v)) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: model.vocab is not an object");
    size_t cnt = 0;
    for (const cJSON *e = v->child; e; e = e->next) cnt++;
    AIOS_TRY(tk_strmap_reserve(&m->vocab, cnt));
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || !e->string) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: model.vocab entry is not a number");
        double d = e->valuedouble;
        if (!(d >= 0 && d < 2147483647.0) || d != floor(d))
            return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: model.vocab id %g is invalid", d);
        AIOS_TRY(set_token(m, e->string, strlen(e->string), (int64_t)d));
    }
    return AIOS_OK;
}

static aios_status dup_str(const char *s, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    if (!s) return AIOS_OK;
    size_t l = strlen(s);
    *out = malloc(l + 1);
    if (!*out) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(*out, s, l + 1);
    *len = l;
    return AIOS_OK;
}

/* One merge, its parts resolved in batches: the three hash lookups of a merge are cache misses
 * on big vocabularies, so a batch computes all hashes, prefetches all slots, then resolves. */
typedef struct {
    const char *a, *b;
    size_t al, bl, rank;
    uint64_t ha, hb, hab;
    size_t abo, abl; /* join in the scratch buffer */
} mrec;

static aios_status merges_batch(tk_model *m, mrec *r, size_t n, aios_buf *join) {
    join->len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t skip = 0;
        if (m->prefix_len && r[i].bl >= m->prefix_len && !memcmp(r[i].b, m->prefix, m->prefix_len)) skip = m->prefix_len;
        r[i].abo = join->len;
        r[i].abl = r[i].al + r[i].bl - skip;
        AIOS_TRY(aios_buf_append(join, r[i].a, r[i].al));
        AIOS_TRY(aios_buf_append(join, r[i].b + skip, r[i].bl - skip));
    }
    for (size_t i = 0; i < n; i++) {
        r[i].ha = tk_hash(r[i].a, r[i].al);
        r[i].hb = tk_hash(r[i].b, r[i].bl);
        r[i].hab = tk_hash(join->data + r[i].abo, r[i].abl);
        tk_strmap_prefetch(&m->vocab, r[i].ha);
        tk_strmap_prefetch(&m->vocab, r[i].hb);
        tk_strmap_prefetch(&m->vocab, r[i].hab);
    }
    for (size_t i = 0; i < n; i++) {
        int32_t ia = tk_strmap_get_h(&m->vocab, r[i].a, r[i].al, r[i].ha);
        int32_t ib = tk_strmap_get_h(&m->vocab, r[i].b, r[i].bl, r[i].hb);
        int32_t nid = tk_strmap_get_h(&m->vocab, (const char *)join->data + r[i].abo, r[i].abl, r[i].hab);
        if (ia < 0 || ib < 0 || nid < 0) continue; /* parts or result missing: can never apply */
        uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib, old;
        if (tk_u64map_get(&m->merges, key, &old)) continue; /* first occurrence wins (lowest rank) */
        AIOS_TRY(tk_u64map_put(&m->merges, key, ((uint64_t)r[i].rank << 32) | (uint32_t)nid));
    }
    return AIOS_OK;
}

static aios_status load_merges(tk_model *m, const cJSON *arr) {
    if (!arr) return AIOS_OK;
    if (!cJSON_IsArray(arr)) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: model.merges is not a list");
    size_t count = 0;
    for (const cJSON *e = arr->child; e; e = e->next) count++;
    AIOS_TRY(tk_u64map_reserve(&m->merges, count));
    enum { B = 64 };
    mrec r[B];
    size_t nb = 0, rank = 0;
    aios_buf join = {0};
    aios_status st = AIOS_OK;
    for (const cJSON *e = arr->child; e && st == AIOS_OK; e = e->next, rank++) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if (cJSON_IsString(e)) {
            const char *s = e->valuestring;
            size_t n = strlen(s);
            const char *sp = strchr(s, ' ');
            if (!sp) {
                st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: merge %zu '%.60s' has no space", rank, s);
                break;
            }
            if (!strchr(sp + 1, ' ')) {
                a = s, al = (size_t)(sp - s), b = sp + 1, bl = n - al - 1;
            } else {
                /* several spaces: the split where both halves and the join are tokens */
                for (const char *p = sp; p; p = strchr(p + 1, ' ')) {
                    size_t la = (size_t)(p - s), lb = n - la - 1;
                    if (tk_strmap_get(&m->vocab, s, la) >= 0 && tk_strmap_get(&m->vocab, p + 1, lb) >= 0) {
                        a = s, al = la, b = p + 1, bl = lb;
                        break;
                    }
                }
                if (!a) continue;
            }
        } else if (cJSON_IsArray(e) && e->child && cJSON_IsString(e->child) && e->child->next &&
                   cJSON_IsString(e->child->next) && !e->child->next->next) {
            a = e->child->valuestring, al = strlen(a);
            b = e->child->next->valuestring, bl = strlen(b);
        } else {
            st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: merge %zu is neither \"a b\" nor [a, b]", rank);
            break;
        }
        r[nb++] = (mrec){a, b, al, bl, rank, 0, 0, 0, 0, 0};
        if (nb == B) {
            st = merges_batch(m, r, nb, &join);
            nb = 0;
        }
    }
    if (st == AIOS_OK && nb) st = merges_batch(m, r, nb, &join);
    aios_buf_free(&join);
    return st;
}

static aios_status trie_add(tk_model *m, const char *s, size_t len, int32_t id) {
    size_t node = 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t key = ((uint64_t)node << 8) | (uint8_t)s[i], child;
        if (tk_u64map_get(&m->trie, key, &child)) {
            node = (size_t)child;
            continue;
        }
        if (m->nnodes == m->nodes_cap) {
            size_t nc = m->nodes_cap * 2;
            int32_t *p = realloc(m->node_piece, nc * sizeof *p);
            if (!p) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
            m->node_piece = p;
            m->nodes_cap = nc;
        }
        m->node_piece[m->nnodes] = -1;
        AIOS_TRY(tk_u64map_put(&m->trie, key, m->nnodes));
        node = m->nnodes++;
    }
    m->node_piece[node] = id; /* duplicates: the last id wins, as token_to_ids */
    return AIOS_OK;
}

static aios_status load_unigram(tk_model *m, const cJSON *j) {
    const cJSON *v = tk_j(j, "vocab");
    if (!v || !cJSON_IsArray(v)) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Unigram vocab is not a list");
    int n = cJSON_GetArraySize(v);
    m->scores = malloc(((size_t)n + 1) * sizeof *m->scores);
    m->nodes_cap = 1024;
    m->node_piece = malloc(m->nodes_cap * sizeof *m->node_piece);
    if (!m->scores || !m->node_piece) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    m->node_piece[0] = -1;
    m->nnodes = 1;
    m->min_score = INFINITY;
    int32_t id = 0;
    for (const cJSON *e = v->child; e; e = e->next, id++) {
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(e->child) || !cJSON_IsNumber(e->child->next))
            return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Unigram vocab entry %d is not [piece, score]", id);
        const char *s = e->child->valuestring;
        size_t l = strlen(s);
        double sc = e->child->next->valuedouble; /* serde_json's value: see json.c */
        m->scores[id] = sc;
        if (sc < m->min_score) m->min_score = sc;
        AIOS_TRY(set_token(m, s, l, id)); /* a duplicated piece maps to its last id */
        if (l > 0) AIOS_TRY(trie_add(m, s, l, id));
    }
    const cJSON *u = tk_j(j, "unk_id");
    m->unk_id = -1;
    if (u) {
        if (!cJSON_IsNumber(u) || u->valuedouble < 0 || u->valuedouble >= n)
            return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: Unigram unk_id out of range");
        m->unk_id = (int32_t)u->valuedouble;
    }
    m->byte_fallback = tk_jbool(j, "byte_fallback", 0);
    m->fuse_unk = 1;
    return AIOS_OK;
}

aios_status tk_model_parse(const cJSON *j, tk_model **out) {
    *out = NULL;
    if (!j || !cJSON_IsObject(j)) return aios__err(AIOS_ERR_FORMAT, "tokenizer.json: no model object");
    tk_model *m = calloc(1, sizeof *m);
    if (!m) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    m->unk_id = -1;
    const char *t = tk_jstr(j, "type");
    const cJSON *vocab = tk_j(j, "vocab");
    if (t) {
        if (!strcmp(t, "WordPiece")) m->type = M_WORDPIECE;
        else if (!strcmp(t, "BPE")) m->type = M_BPE;
        else if (!strcmp(t, "Unigram")) m->type = M_UNIGRAM;
        else if (!strcmp(t, "WordLevel")) m->type = M_WORDLEVEL;
        else {
            tk_model_free(m);
            return aios__err(AIOS_ERR_UNSUPPORTED, "tokenizer.json: model type '%s' is not supported", t);
        }
    } else if (tk_j(j, "merges")) m->type = M_BPE;
    else if (vocab && cJSON_IsArray(vocab)) m->type = M_UNIGRAM;
    else if (tk_j(j, "max_input_chars_per_word") || tk_j(j, "continuing_subword_prefix")) m->type = M_WORDPIECE;
    else m->type = M_WORDLEVEL;

    aios_status st = AIOS_OK;
    static uint64_t g_model_uid;
    m->cache_salt = (__atomic_add_fetch(&g_model_uid, 1, __ATOMIC_RELAXED)) * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 256; i++) m->byte_ids[i] = -1;
    if (m->type == M_UNIGRAM) {
        st = load_unigram(m, j);
    } else {
        st = load_vocab_dict(m, vocab);
        const char *unk = tk_jstr(j, "unk_token");
        if (st == AIOS_OK && unk) m->unk_id = tk_strmap_get(&m->vocab, unk, strlen(unk));
        if (st == AIOS_OK && unk && m->unk_id < 0 && m->type != M_BPE)
            st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: unk_token '%.60s' is not in the vocabulary", unk);
        if (st == AIOS_OK) st = dup_str(tk_jstr(j, "continuing_subword_prefix"), &m->prefix, &m->prefix_len);
        if (st == AIOS_OK && m->type == M_WORDPIECE) {
            if (!m->prefix) st = dup_str("##", &m->prefix, &m->prefix_len);
            const cJSON *mc = tk_j(j, "max_input_chars_per_word");
            m->max_chars = mc && cJSON_IsNumber(mc) && mc->valuedouble >= 0 ? (size_t)mc->valuedouble : 100;
        }
        if (st == AIOS_OK && m->type == M_BPE) {
            st = dup_str(tk_jstr(j, "end_of_word_suffix"), &m->suffix, &m->suffix_len);
            m->byte_fallback = tk_jbool(j, "byte_fallback", 0);
            m->fuse_unk = tk_jbool(j, "fuse_unk", 0);
            m->ignore_merges = tk_jbool(j, "ignore_merges", 0);
            if (st == AIOS_OK) st = load_merges(m, tk_j(j, "merges"));

        }
        if (st == AIOS_OK && m->type == M_WORDLEVEL && m->unk_id < 0 && unk)
            st = aios__err(AIOS_ERR_FORMAT, "tokenizer.json: WordLevel unk_token missing from the vocabulary");
    }
    if (st == AIOS_OK) st = finish_tokens(m);
    if (st == AIOS_OK && m->type == M_BPE && !m->prefix_len && !m->suffix_len) {
        /* SentencePiece-style BPE over whole lines: when no token holds '▁' after another char,
         * no merge crosses the start of a '▁' run, so such runs start independent words (same
         * result, shorter merge loops, and the word cache applies). */
        int ok = 0, bad = 0;
        for (size_t i = 0; i < m->nid && !bad; i++) {
            const char *tokstr = m->id2tok[i];
            if (!tokstr) continue;
            size_t l = m->id2len[i];
            for (size_t k = 3; k + 3 <= l && !bad; k++)
                if (!memcmp(tokstr + k, "\xe2\x96\x81", 3) && memcmp(tokstr + k - 3, "\xe2\x96\x81", 3)) bad = 1;
            if (l >= 3 && !memcmp(tokstr, "\xe2\x96\x81", 3)) ok = 1;
        }
        m->metaspace_split = ok && !bad;
    }
    if (st == AIOS_OK && m->byte_fallback)
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            m->byte_ids[b] = tk_strmap_get(&m->vocab, name, 6);
        }
    if (st != AIOS_OK) {
        tk_model_free(m);
        return st;
    }
    *out = m;
    return AIOS_OK;
}

/* ---------------------------------------------------------------------------- WordPiece */
static aios_status wordpiece(const tk_model *m, const uint8_t *w, size_t n, tk_mtoks *out) {
    size_t nchars = 0;
    for (size_t i = 0; i < n; i++) nchars += (w[i] & 0xC0) != 0x80;
    size_t mark = out->n;
    if (nchars <= m->max_chars) {
        char stackbuf[256];
        char *buf = n + m->prefix_len <= sizeof stackbuf ? stackbuf : malloc(n + m->prefix_len);
        if (!buf) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(buf, m->prefix, m->prefix_len);
        size_t start = 0;
        int bad = 0;
        while (start < n) {
            size_t end = n;
            int32_t id = -1;
            while (start < end) {
                if (start > 0) {
                    memcpy(buf + m->prefix_len, w + start, end - start);
                    id = tk_strmap_get(&m->vocab, buf, m->prefix_len + end - start);
                } else {
                    id = tk_strmap_get(&m->vocab, (const char *)w, end);
                }
                if (id >= 0) break;
                end--;
                while (end > start && (w[end] & 0xC0) == 0x80) end--;
            }
            if (id < 0) {
                bad = 1;
                break;
            }
            aios_status st = tk_mtoks_push(out, id, start, end, m->id2tok[id], m->id2len[id]);
            if (st) {
                if (buf != stackbuf) free(buf);
                return st;
            }
            start = end;
        }
        if (buf != stackbuf) free(buf);
        if (!bad) return AIOS_OK;
    }
    out->n = mark;
    if (m->unk_id < 0) return aios__err(AIOS_ERR_FORMAT, "tokenizer: WordPiece needs an unk token");
    return tk_mtoks_push(out, m->unk_id, 0, n, m->id2tok[m->unk_id], m->id2len[m->unk_id]);
}

/* ---------------------------------------------------------------------------- BPE */
typedef struct { int32_t id, prev, next; uint32_t start, len, rank; int32_t nid; } sym;
typedef struct { uint32_t rank, pos; int32_t new_id; } hent;

static inline int hless(hent a, hent b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void hpush(hent *h, size_t *n, hent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hless(e, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static hent hpop(hent *h, size_t *n) {
    hent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && hless(h[c + 1], h[c])) c++;
        if (!hless(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* Per-thread word cache: hash of (model, word) -> token ids + byte lengths. */
#define BPE_CACHE_SLOTS 4096
#define BPE_CACHE_MAXTOK 16
#define BPE_CACHE_MAXLEN 48
typedef struct {
    uint64_t key;
    uint64_t uid; /* model identity (never reused, unlike addresses) */
    uint8_t wlen, ntok;
    char word[BPE_CACHE_MAXLEN];
    int32_t ids[BPE_CACHE_MAXTOK];
    uint8_t lens[BPE_CACHE_MAXTOK];
} bpe_centry;
static _Thread_local bpe_centry *g_cache;
static pthread_key_t g_cache_key;
static pthread_once_t g_cache_once = PTHREAD_ONCE_INIT;
static void cache_key_make(void) { (void)pthread_key_create(&g_cache_key, free); }

/* Word cache lookup: on a hit appends the cached tokens and returns 1; otherwise sets *slot
 * (NULL when the word is not cacheable) for cache_put. */
static int cache_get(const tk_model *m, const uint8_t *w, size_t n, tk_mtoks *out, bpe_centry **slot, uint64_t *hash) {
    *slot = NULL;
    if (n == 0 || n > BPE_CACHE_MAXLEN) return 0;
    if (!g_cache) {
        g_cache = calloc(BPE_CACHE_SLOTS, sizeof *g_cache);
        if (!g_cache) return 0;
        pthread_once(&g_cache_once, cache_key_make);
        (void)pthread_setspecific(g_cache_key, g_cache);
    }
    uint64_t h = tk_hash(w, n) ^ m->cache_salt;
    bpe_centry *ce = &g_cache[h & (BPE_CACHE_SLOTS - 1)];
    *hash = h;
    *slot = ce;
    if (!(ce->uid == m->cache_salt && ce->key == h && ce->wlen == n && !memcmp(ce->word, w, n))) return 0;
    size_t off = 0, mark = out->n;
    for (int i = 0; i < ce->ntok; i++) {
        int32_t id = ce->ids[i];
        /* a Unigram unknown carries its own text */
        int own = m->type == M_UNIGRAM && id == m->unk_id;
        if (tk_mtoks_push(out, id, off, off + ce->lens[i], own ? (const char *)w + off : m->id2tok[id],
                          own ? ce->lens[i] : m->id2len[id]) != AIOS_OK) {
            out->n = mark;
            *slot = NULL; /* let the caller tokenize (and report) normally */
            return 0;
        }
        off += ce->lens[i];
    }
    return 1;
}

/* Stores tokens out[first..] of word w when they tile it (byte-fallback pieces do not). */
static void cache_put(const tk_model *m, bpe_centry *ce, uint64_t h, const uint8_t *w, size_t n, const tk_mtoks *out,
                      size_t first) {
    size_t nt = out->n - first;
    if (nt > BPE_CACHE_MAXTOK) return;
    size_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        const tk_mtok *t = &out->v[first + i];
        if (t->s != off || t->e <= t->s || t->e - t->s > 255) return;
        off = t->e;
    }
    if (off != n) return;
    ce->uid = m->cache_salt;
    ce->key = h;
    ce->wlen = (uint8_t)n;
    memcpy(ce->word, w, n);
    ce->ntok = (uint8_t)nt;
    for (size_t i = 0; i < nt; i++) {
        ce->ids[i] = out->v[first + i].id;
        ce->lens[i] = (uint8_t)(out->v[first + i].e - out->v[first + i].s);
    }
}

static aios_status bpe(const tk_model *m, const uint8_t *w, size_t n, tk_mtoks *out) {
    if (m->ignore_merges) {
        int32_t id = tk_strmap_get(&m->vocab, (const char *)w, n);
        if (id >= 0) return tk_mtoks_push(out, id, 0, n, m->id2tok[id], m->id2len[id]);
    }
    uint64_t h = 0;
    bpe_centry *ce = NULL;
    if (cache_get(m, w, n, out, &ce, &h)) return AIOS_OK;
    size_t cap = n * 4 + 8;
    sym stack_syms[128];
    hent stack_heap[128];
    sym *s = cap <= 128 ? stack_syms : malloc(cap * sizeof *s);
    hent *heap = cap <= 128 ? stack_heap : malloc(cap * 4 * sizeof *heap);
    char stackbuf[256];
    size_t bufcap = 16 + m->prefix_len + m->suffix_len;
    char *buf = bufcap <= sizeof stackbuf ? stackbuf : malloc(bufcap);
    aios_status st = AIOS_OK;
    if (!s || !heap || !buf) {
        st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    size_t ns = 0;
    int32_t unk_pending = -1;
    uint32_t unk_start = 0, unk_len = 0;
#define ADD_SYM(ID, START, LEN) (s[ns] = (sym){(ID), (int32_t)ns - 1, (int32_t)ns + 1, (uint32_t)(START), (uint32_t)(LEN), UINT32_MAX, -1}, ns++)
    for (size_t i = 0; i < n;) {
        size_t l = (size_t)tk_utf8_len(w[i]);
        if (i + l > n) l = n - i;
        int first = i == 0, last = i + l == n;
        size_t bl = 0;
        if (!first && m->prefix_len) {
            memcpy(buf, m->prefix, m->prefix_len);
            bl = m->prefix_len;
        }
        memcpy(buf + bl, w + i, l);
        bl += l;
        if (last && m->suffix_len) {
            memcpy(buf + bl, m->suffix, m->suffix_len);
            bl += m->suffix_len;
        }
        int32_t id = tk_strmap_get(&m->vocab, buf, bl);
        if (id >= 0) {
            if (unk_pending >= 0) {
                ADD_SYM(unk_pending, unk_start, unk_len);
                unk_pending = -1;
            }
            ADD_SYM(id, i, l);
        } else {
            int fell_back = 0;
            if (m->byte_fallback) {
                int ok = 1;
                for (size_t k = 0; k < bl; k++) ok &= m->byte_ids[(uint8_t)buf[k]] >= 0;
                if (ok) {
                    /* byte tokens: each claims one byte of the word (offsets as tokenizers) */
                    for (size_t k = 0; k < bl; k++) ADD_SYM(m->byte_ids[(uint8_t)buf[k]], 0, 1);
                    fell_back = 1;
                }
            }
            if (!fell_back && m->unk_id >= 0) {
                if (unk_pending >= 0 && m->fuse_unk) {
                    unk_len += (uint32_t)l;
                } else {
                    if (unk_pending >= 0) ADD_SYM(unk_pending, unk_start, unk_len);
                    unk_pending = m->unk_id;
                    unk_start = (uint32_t)i;
                    unk_len = (uint32_t)l;
                }
            }
        }
        i += l;
    }
    if (unk_pending >= 0) ADD_SYM(unk_pending, unk_start, unk_len);
#undef ADD_SYM
    if (ns > 0) s[ns - 1].next = -1;
    /* merge: lowest rank first, leftmost among equals */
    if (ns <= 256) {
        /* short words: a rank per adjacent pair, linear scan for the minimum (fewer lookups
         * than the heap, same order) */
        for (size_t i = 0; i < ns; i++) {
            uint64_t v;
            s[i].rank = UINT32_MAX;
            if (i + 1 < ns && tk_u64map_get(&m->merges, ((uint64_t)(uint32_t)s[i].id << 32) | (uint32_t)s[i + 1].id, &v)) {
                s[i].rank = (uint32_t)(v >> 32);
                s[i].nid = (int32_t)(uint32_t)v;
            }
        }
        for (;;) {
            uint32_t best = UINT32_MAX;
            int32_t bi = -1;
            for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next) /* no symbols: every char unknown */
                if (s[i].rank < best) best = s[i].rank, bi = i;
            if (bi < 0) break;
            sym *a = &s[bi], *b = &s[a->next];
            a->id = a->nid;
            a->len += b->len;
            a->next = b->next;
            b->len = 0;
            if (a->next >= 0) s[a->next].prev = bi;
            uint64_t v;
            a->rank = UINT32_MAX;
            if (a->next >= 0 && tk_u64map_get(&m->merges, ((uint64_t)(uint32_t)a->id << 32) | (uint32_t)s[a->next].id, &v)) {
                a->rank = (uint32_t)(v >> 32);
                a->nid = (int32_t)(uint32_t)v;
            }
            if (a->prev >= 0) {
                sym *p = &s[a->prev];
                p->rank = UINT32_MAX;
                if (tk_u64map_get(&m->merges, ((uint64_t)(uint32_t)p->id << 32) | (uint32_t)a->id, &v)) {
                    p->rank = (uint32_t)(v >> 32);
                    p->nid = (int32_t)(uint32_t)v;
                }
            }
        }
    } else {
    size_t nh = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
        uint64_t v;
        if (tk_u64map_get(&m->merges, ((uint64_t)(uint32_t)s[i].id << 32) | (uint32_t)s[i + 1].id, &v))
            hpush(heap, &nh, (hent){(uint32_t)(v >> 32), (uint32_t)i, (int32_t)(uint32_t)v});
    }
    while (nh > 0) {
        hent top = hpop(heap, &nh);
        sym *a = &s[top.pos];
        if (a->len == 0 || a->next < 0) continue;
        sym *b = &s[a->next];
        uint64_t v;
        if (!tk_u64map_get(&m->merges, ((uint64_t)(uint32_t)a->id << 32) | (uint32_t)b->id, &v) ||
            (int32_t)(uint32_t)v != top.new_id)
            continue;
        a->id = top.new_id;
        a->len += b->len;
        a->next = b->next;
        b->len = 0;
        if (a->next >= 0) s[a->next].prev = (int32_t)top.pos;
        if (nh + 2 > cap * 4) continue; /* cannot happen: each merge adds at most two entries */
        if (a->prev >= 0) {
            sym *p = &s[a->prev];
            if (tk_u64map_get(&m->merges, ((uint64_t)(uint32_t)p->id << 32) | (uint32_t)a->id, &v))
                hpush(heap, &nh, (hent){(uint32_t)(v >> 32), (uint32_t)a->prev, (int32_t)(uint32_t)v});
        }
        if (a->next >= 0) {
            sym *q = &s[a->next];
            if (tk_u64map_get(&m->merges, ((uint64_t)(uint32_t)a->id << 32) | (uint32_t)q->id, &v))
                hpush(heap, &nh, (hent){(uint32_t)(v >> 32), top.pos, (int32_t)(uint32_t)v});
        }
    }
    }
    size_t first_out = out->n;
    size_t pos = 0; /* offsets are the running sum of symbol lengths, as Word::get_offsets */
    for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next) {
        int32_t id = s[i].id;
        size_t a = AIOS_MIN(pos, n), e = AIOS_MIN(pos + s[i].len, n);
        pos += s[i].len;
        const char *tv = tk_model_id_to_token(m, id, NULL);
        st = tk_mtoks_push(out, id, a, e, tv ? tv : "", tv ? m->id2len[id] : 0);
        if (st) goto done;
    }
    if (ce) cache_put(m, ce, h, w, n, out, first_out);
done:
    if (s != stack_syms) free(s);
    if (heap != stack_heap) free(heap);
    if (buf != stackbuf) free(buf);
    return st;
}

/* ---------------------------------------------------------------------------- Unigram */
typedef struct { double score; int32_t start, id; } vnode;

static aios_status unigram(const tk_model *m, const uint8_t *w, size_t n, tk_mtoks *out) {
    if (n == 0) return AIOS_OK;
    vnode stack_nodes[257];
    vnode *best = n + 1 <= 257 ? stack_nodes : malloc((n + 1) * sizeof *best);
    if (!best) return aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i <= n; i++) best[i] = (vnode){0, -1, -1};
    best[0].start = 0;
    double unk_score = m->min_score - 10.0;
    aios_status st = AIOS_OK;
    for (size_t s = 0; s < n;) {
        size_t mb = (size_t)tk_utf8_len(w[s]);
        if (s + mb > n) mb = n - s;
        double here = best[s].score;
        int single = 0;
        size_t node = 0;
        for (size_t k = s; k < n; k++) {
            uint64_t child;
            if (!tk_u64map_get(&m->trie, ((uint64_t)node << 8) | w[k], &child)) break;
            node = (size_t)child;
            int32_t pid = m->node_piece[node];
            if (pid < 0) continue;
            size_t e = k + 1;
            double cand = m->scores[pid] + here;
            if (best[e].start < 0 || cand > best[e].score) {
                best[e].score = cand;
                best[e].start = (int32_t)s;
                best[e].id = pid;
            }
            if (e - s == mb) single = 1;
        }
        if (!single) {
            if (m->unk_id < 0) {
                st = aios__err(AIOS_ERR_FORMAT, "tokenizer: Unigram model has no unk_id for unknown text");
                goto done;
            }
            size_t e = s + mb;
            double cand = unk_score + here;
            if (best[e].start < 0 || cand > best[e].score) {
                best[e].score = cand;
                best[e].start = (int32_t)s;
                best[e].id = m->unk_id;
            }
        }
        s += mb;
    }
    {
        /* backtrack into a reversed list of [start, end, id], fusing unknowns */
        size_t first = out->n;
        size_t e = n;
        while (e > 0) {
            vnode *v = &best[e];
            if (v->start < 0) break;
            size_t s = (size_t)v->start;
            if (v->id == m->unk_id && out->n > first && out->v[out->n - 1].id == m->unk_id && m->fuse_unk &&
                out->v[out->n - 1].val == NULL) {
                out->v[out->n - 1].s = (uint32_t)s; /* extend the pending unknown leftwards */
            } else {
                st = tk_mtoks_push(out, v->id, s, e, v->id == m->unk_id ? NULL : m->id2tok[v->id], 0);
                if (st) goto done;
            }
            e = s;
        }
        /* reverse */
        for (size_t i = first, j = out->n; i + 1 < j; i++, j--) {
            tk_mtok t = out->v[i];
            out->v[i] = out->v[j - 1];
            out->v[j - 1] = t;
        }
        /* values: pieces from the vocabulary; unknowns are the text itself (or bytes) */
        size_t nk = out->n - first;
        tk_mtok *tmp = malloc((nk + 1) * sizeof *tmp);
        if (!tmp) {
            st = aios__err(AIOS_ERR_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        memcpy(tmp, out->v + first, nk * sizeof *tmp);
        out->n = first;
        for (size_t i = 0; i < nk && st == AIOS_OK; i++) {
            tk_mtok t = tmp[i];
            if (t.val != NULL || t.id != m->unk_id) {
                st = tk_mtoks_push(out, t.id, t.s, t.e, m->id2tok[t.id], m->id2len[t.id]);
                continue;
            }
            int32_t pid = tk_strmap_get(&m->vocab, (const char *)w + t.s, t.e - t.s);
            if (pid >= 0) {
                st = tk_mtoks_push(out, pid, t.s, t.e, m->id2tok[pid], m->id2len[pid]);
                continue;
            }
            int fb = m->byte_fallback;
            for (size_t b = t.s; fb && b < t.e; b++) fb = m->byte_ids[w[b]] >= 0;
            if (fb) {
                for (size_t b = t.s; b < t.e && st == AIOS_OK; b++) {
                    int32_t bid = m->byte_ids[w[b]];
                    st = tk_mtoks_push(out, bid, t.s, t.e, m->id2tok[bid], m->id2len[bid]);
                }
                continue;
            }
            st = tk_mtoks_push(out, t.id, t.s, t.e, (const char *)w + t.s, t.e - t.s);
        }
        free(tmp);
    }
done:
    if (best != stack_nodes) free(best);
    return st;
}

/* ---------------------------------------------------------------------------- dispatch */
aios_status tk_model_tokenize(const tk_model *m, const uint8_t *w, size_t len, tk_mtoks *out) {
    if (len == 0) return AIOS_OK;
    switch (m->type) {
    case M_WORDPIECE:
    case M_UNIGRAM: {
        bpe_centry *ce;
        uint64_t h = 0;
        if (cache_get(m, w, len, out, &ce, &h)) return AIOS_OK;
        size_t first = out->n;
        AIOS_TRY(m->type == M_WORDPIECE ? wordpiece(m, w, len, out) : unigram(m, w, len, out));
        if (ce) cache_put(m, ce, h, w, len, out, first);
        return AIOS_OK;
    }
    case M_BPE:
        if (m->metaspace_split) {
            size_t start = 0;
            for (size_t i = 1; i <= len; i++) {
                int cut = i == len || (i >= 3 && i + 3 <= len && !memcmp(w + i, "\xe2\x96\x81", 3) &&
                                       memcmp(w + i - 3, "\xe2\x96\x81", 3));
                if (!cut) continue;
                size_t first = out->n;
                AIOS_TRY(bpe(m, w + start, i - start, out));
                for (size_t k = first; k < out->n; k++) {
                    out->v[k].s += (uint32_t)start;
                    out->v[k].e += (uint32_t)start;
                }
                start = i;
            }
            return AIOS_OK;
        }
        return bpe(m, w, len, out);
    case M_WORDLEVEL: {
        int32_t id = tk_strmap_get(&m->vocab, (const char *)w, len);
        if (id < 0) id = m->unk_id;
        if (id < 0) return aios__err(AIOS_ERR_FORMAT, "tokenizer: WordLevel word not in vocabulary and no unk token");
        return tk_mtoks_push(out, id, 0, len, m->id2tok[id], m->id2len[id]);
    }
    }
    return aios__err(AIOS_ERR_INTERNAL, "tokenizer: bad model");
}
