/*
 * table.c — the in-memory row table of a store: one column array per field (embeddings as a
 * dense (rows, dim) float matrix so that search streams through memory), strings in one heap
 * addressed by offsets (so growing it never invalidates a row), category/source interned to
 * dictionary codes (filters compare integers), and an id -> row hash map holding live rows only.
 *
 * Rows are never removed here: a delete clears MR_LIVE (a tombstone), so row numbers stay
 * stable for the HNSW graph and for segment row numbers; compaction builds a fresh table.
 * The hash map is open addressing with linear probing and backward-shift deletion (no
 * tombstone slots), load factor <= 1/2.
 */
#include "memory/memory_internal.h"

#include <math.h>

void aios__mt_init(mtable *t, int32_t dim) {
    memset(t, 0, sizeof *t);
    t->dim = dim;
}

void aios__mt_free(mtable *t) {
    if (!t) return;
    free(t->emb);
    free(t->inv_norm);
    free(t->ts);
    free(t->quality);
    free(t->flags);
    free(t->id_off);
    free(t->content_off);
    free(t->cat);
    free(t->src);
    aios_buf_free(&t->heap);
    free(t->slots);
    for (uint32_t i = 0; i < t->n_dict; i++) free(t->dict[i]);
    free(t->dict);
    free(t->dslots);
    memset(t, 0, sizeof *t);
}

#define GROW(field, n)                                                             \
    do {                                                                           \
        void *p_ = realloc(t->field, (size_t)(n) * sizeof *t->field);              \
        if (!p_) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory (%lld rows)", (long long)(n)); \
        t->field = p_;                                                             \
    } while (0)

static aios_status grow_rows_to(mtable *t, int64_t cap);
static aios_status grow_rows(mtable *t, int64_t need) {
    if (need <= t->cap) return AIOS_OK;
    int64_t cap = t->cap ? t->cap : 1024;
    while (cap < need) cap *= 2;
    return grow_rows_to(t, cap);
}

static aios_status grow_rows_to(mtable *t, int64_t cap) {
    if (t->dim > 0) {
        uint64_t bytes;
        if (!aios__mul_ok((uint64_t)cap, (uint64_t)t->dim * sizeof(float), &bytes) || bytes > SIZE_MAX / 2)
            return aios__err(AIOS_ERR_NOMEM, "memory: %lld rows of dimension %d is too large", (long long)cap, t->dim);
        void *p = realloc(t->emb, (size_t)bytes);
        if (!p) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory (%lld rows)", (long long)cap);
        t->emb = p;
    }
    GROW(inv_norm, cap);
    GROW(ts, cap);
    GROW(quality, cap);
    GROW(flags, cap);
    GROW(id_off, cap);
    GROW(content_off, cap);
    GROW(cat, cap);
    GROW(src, cap);
    t->cap = cap;
    return AIOS_OK;
}

static aios_status map_resize(mtable *t, uint64_t ns);

aios_status aios__mt_reserve(mtable *t, int64_t rows) {
    /* exact size up front: growth by doubling would hold old and new arrays while copying */
    if (rows > t->cap) AIOS_TRY(grow_rows_to(t, rows));
    /* and the id map at its final size: each doubling rehashes every id, re-reading the
     * strings from the heap (a third of loading a 200k-row store went there) */
    uint64_t ns = t->n_slots ? t->n_slots : 1024;
    while ((uint64_t)rows * 2 > ns) ns *= 2;
    if (ns > t->n_slots) AIOS_TRY(map_resize(t, ns)); /* one rehash, not one per doubling */
    return AIOS_OK;
}

static aios_status heap_put(mtable *t, const char *s, uint64_t *off) {
    size_t len = strlen(s);
    if (len > UINT32_MAX - 8) return aios__err(AIOS_ERR_RANGE, "memory: string of %zu bytes is too long", len);
    *off = t->heap.len;
    uint32_t l = (uint32_t)len;
    AIOS_TRY(aios_buf_reserve(&t->heap, 4 + len + 1));
    aios_buf_append(&t->heap, &l, 4);
    aios_buf_append(&t->heap, s, len + 1);
    return AIOS_OK;
}

/* ---- id map ---- */
static uint64_t id_hash_row(const mtable *t, uint32_t row) {
    uint32_t len;
    const char *s = aios__mt_str(t, t->id_off[row], &len);
    return aios__hash64(s, len);
}

/* Rehashes the id map into ns slots (a power of two above the current size). */
static aios_status map_resize(mtable *t, uint64_t ns) {
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory (id map)");
    for (uint64_t i = 0; i < t->n_slots; i++) {
        uint32_t v = t->slots[i];
        if (!v) continue;
        uint64_t j = id_hash_row(t, v - 1) & (ns - 1);
        while (slots[j]) j = (j + 1) & (ns - 1);
        slots[j] = v;
    }
    free(t->slots);
    t->slots = slots;
    t->n_slots = ns;
    return AIOS_OK;
}

int64_t aios__mt_find(const mtable *t, const char *id, size_t len) {
    if (!t->n_slots) return -1;
    uint64_t j = aios__hash64(id, len) & (t->n_slots - 1);
    for (;;) {
        uint32_t v = t->slots[j];
        if (!v) return -1;
        uint32_t l;
        const char *s = aios__mt_str(t, t->id_off[v - 1], &l);
        if (l == len && !memcmp(s, id, len)) return (int64_t)v - 1;
        j = (j + 1) & (t->n_slots - 1);
    }
}

static void map_remove(mtable *t, int64_t row) {
    uint64_t mask = t->n_slots - 1;
    uint64_t j = id_hash_row(t, (uint32_t)row) & mask;
    while (t->slots[j] && t->slots[j] != (uint32_t)row + 1) j = (j + 1) & mask;
    if (!t->slots[j]) return;
    /* backward-shift deletion: move later entries of the cluster into the hole when their home
     * slot lies at or before it (cyclically) */
    uint64_t hole = j;
    t->slots[hole] = 0;
    for (uint64_t k = (hole + 1) & mask; t->slots[k]; k = (k + 1) & mask) {
        uint64_t home = id_hash_row(t, t->slots[k] - 1) & mask;
        if (((k - home) & mask) >= ((k - hole) & mask)) {
            t->slots[hole] = t->slots[k];
            t->slots[k] = 0;
            hole = k;
        }
    }
    t->n_used--;
}

/* ---- dictionary ---- */
static aios_status dict_grow(mtable *t) {
    uint64_t ns = t->n_dslots ? t->n_dslots * 2 : 64;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory (dictionary)");
    for (uint32_t c = 1; c <= t->n_dict; c++) {
        uint64_t j = aios__hash64(t->dict[c - 1], strlen(t->dict[c - 1])) & (ns - 1);
        while (slots[j]) j = (j + 1) & (ns - 1);
        slots[j] = c;
    }
    free(t->dslots);
    t->dslots = slots;
    t->n_dslots = ns;
    return AIOS_OK;
}

uint32_t aios__mt_code(const mtable *t, const char *s) {
    if (!t->n_dslots || !s) return 0;
    uint64_t j = aios__hash64(s, strlen(s)) & (t->n_dslots - 1);
    for (;;) {
        uint32_t c = t->dslots[j];
        if (!c) return 0;
        if (!strcmp(t->dict[c - 1], s)) return c;
        j = (j + 1) & (t->n_dslots - 1);
    }
}

static aios_status intern(mtable *t, const char *s, uint32_t *code) {
    *code = 0;
    if (!s) return AIOS_OK;
    uint32_t c = aios__mt_code(t, s);
    if (c) {
        *code = c;
        return AIOS_OK;
    }
    if ((uint64_t)(t->n_dict + 1) * 2 > t->n_dslots) AIOS_TRY(dict_grow(t));
    if (t->n_dict == t->dict_cap) {
        uint32_t cap = t->dict_cap ? t->dict_cap * 2 : 16;
        char **d = realloc(t->dict, cap * sizeof *d);
        if (!d) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory (dictionary)");
        t->dict = d;
        t->dict_cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory (dictionary)");
    t->dict[t->n_dict++] = copy;
    c = t->n_dict;
    uint64_t j = aios__hash64(s, strlen(s)) & (t->n_dslots - 1);
    while (t->dslots[j]) j = (j + 1) & (t->n_dslots - 1);
    t->dslots[j] = c;
    *code = c;
    return AIOS_OK;
}

aios_status aios__mt_append(mtable *t, const aios_memory *m) {
    if (t->n >= (int64_t)UINT32_MAX - 1) return aios__err(AIOS_ERR_RANGE, "memory: too many rows");
    if (m->embedding && t->dim == 0) {
        if (m->dim <= 0 || m->dim > 65536) return aios__err(AIOS_ERR_SHAPE, "memory: embedding dimension %d", m->dim);
        if (t->cap > 0) {
            /* first embedding arrives after rows were reserved or added without one */
            float *e = calloc((size_t)t->cap * (size_t)m->dim, sizeof(float));
            if (!e) return aios__err(AIOS_ERR_NOMEM, "memory: out of memory");
            t->emb = e;
        }
        t->dim = m->dim;
    }
    if (m->embedding && m->dim != t->dim)
        return aios__err(AIOS_ERR_SHAPE, "memory: embedding has %d dimensions, the store has %d", m->dim, t->dim);
    AIOS_TRY(grow_rows(t, t->n + 1));
    if ((t->n_used + 1) * 2 > t->n_slots) AIOS_TRY(map_resize(t, t->n_slots ? t->n_slots * 2 : 1024));
    int64_t r = t->n;
    uint8_t fl = MR_LIVE;
    AIOS_TRY(heap_put(t, m->memory_id ? m->memory_id : "", &t->id_off[r]));
    t->content_off[r] = 0;
    if (m->content) {
        AIOS_TRY(heap_put(t, m->content, &t->content_off[r]));
        fl |= MR_CONTENT;
    }
    t->cat[r] = t->src[r] = 0;
    t->quality[r] = 0;
    if (m->has_metadata) {
        fl |= MR_META;
        AIOS_TRY(intern(t, m->category, &t->cat[r]));
        AIOS_TRY(intern(t, m->source, &t->src[r]));
        if (m->has_quality) {
            fl |= MR_Q;
            t->quality[r] = m->quality_score;
        }
    }
    t->ts[r] = m->timestamp_us;
    t->inv_norm[r] = 0;
    if (t->dim > 0) {
        float *dst = t->emb + (size_t)r * (size_t)t->dim;
        if (m->embedding) {
            memcpy(dst, m->embedding, (size_t)t->dim * sizeof(float));
            /* four partial sums: one chain of dependent double adds cost ~1500 cycles per
             * 384-d row, the largest serial part of opening a store */
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int32_t i = 0;
            for (; i + 4 <= t->dim; i += 4) {
                s0 += (double)dst[i] * dst[i];
                s1 += (double)dst[i + 1] * dst[i + 1];
                s2 += (double)dst[i + 2] * dst[i + 2];
                s3 += (double)dst[i + 3] * dst[i + 3];
            }
            for (; i < t->dim; i++) s0 += (double)dst[i] * dst[i];
            double ss = (s0 + s1) + (s2 + s3);
            t->inv_norm[r] = ss > 0 && isfinite(ss) ? (float)(1.0 / sqrt(ss)) : 0.0f;
            fl |= MR_EMB;
        } else {
            memset(dst, 0, (size_t)t->dim * sizeof(float));
        }
    }
    t->flags[r] = fl;
    t->n++;
    t->n_live++;
    /* insert into the id map */
    uint32_t len;
    const char *s = aios__mt_str(t, t->id_off[r], &len);
    uint64_t j = aios__hash64(s, len) & (t->n_slots - 1);
    while (t->slots[j]) j = (j + 1) & (t->n_slots - 1);
    t->slots[j] = (uint32_t)r + 1;
    t->n_used++;
    return AIOS_OK;
}

void aios__mt_kill(mtable *t, int64_t row) {
    if (row < 0 || row >= t->n || !(t->flags[row] & MR_LIVE)) return;
    map_remove(t, row);
    t->flags[row] &= (uint8_t)~MR_LIVE;
    t->n_live--;
}

void aios__mt_row(const mtable *t, int64_t r, aios_memory *m) {
    memset(m, 0, sizeof *m);
    uint8_t fl = t->flags[r];
    m->memory_id = aios__mt_str(t, t->id_off[r], NULL);
    m->timestamp_us = t->ts[r];
    m->content = (fl & MR_CONTENT) ? aios__mt_str(t, t->content_off[r], NULL) : NULL;
    m->dim = t->dim;
    m->embedding = (fl & MR_EMB) ? t->emb + (size_t)r * (size_t)t->dim : NULL;
    m->has_metadata = !!(fl & MR_META);
    m->category = t->cat[r] ? t->dict[t->cat[r] - 1] : NULL;
    m->source = t->src[r] ? t->dict[t->src[r] - 1] : NULL;
    m->has_quality = !!(fl & MR_Q);
    m->quality_score = t->quality[r];
}
