/*
 * wal.c — the write-ahead log: how recent writes survive a crash.
 *
 * File: a 32-byte header ("AIOSWAL\0", u32 version 1, u32 0, u64 generation, u32 0,
 * u32 CRC32C of the 28 bytes before it), then records.  Record: a 16-byte header (u32 magic
 * "AWAL", u32 payload length, u32 CRC32C of the payload, u32 CRC32C of the 12 bytes before it)
 * and the payload (u8 type, then the fields).  All integers little-endian.
 *
 * Why two checksums: a record whose header is cut short, or whose payload is cut short, is a
 * torn tail — a write the crash interrupted, never acknowledged (the writer acknowledges only
 * after fsync), so replay drops it and the writer truncates it.  A record that is complete
 * but fails its checksum, or a header whose own checksum fails, can only be damage to data
 * that was acknowledged, so replay stops with AIOS_ERR_CORRUPT naming the offset: the store
 * refuses to serve rather than silently lose or invent memories.  The header checksum means a
 * flipped bit in a length field cannot masquerade as a torn tail.
 *
 * Payload of ADD / UPDATE: u8 type, u8 flags (MR_* bits of the memory), i64 timestamp,
 * str memory_id, str content, str category, str source (str = u32 length + bytes, 0xFFFFFFFF =
 * null), f32 quality, u32 dim, f32[dim].  DELETE: u8 type, str memory_id.
 * The generation in the header must match the manifest's, so a stale WAL left by a crash
 * between manifest switch and unlink is never replayed twice.
 */
#include "memory/memory_internal.h"

#define WAL_MAGIC 0x4C415741u /* "AWAL" */
#define NULL_STR 0xFFFFFFFFu

static void put32(aios_buf *b, uint32_t v) { aios_buf_append(b, &v, 4); }
static void putstr(aios_buf *b, const char *s) {
    if (!s) {
        put32(b, NULL_STR);
        return;
    }
    uint32_t n = (uint32_t)strlen(s);
    put32(b, n);
    aios_buf_append(b, s, n);
}

void aios__wal_header(uint8_t out[WAL_HEADER_SIZE], uint64_t gen) {
    memset(out, 0, WAL_HEADER_SIZE);
    memcpy(out, "AIOSWAL", 8);
    uint32_t v = 1;
    memcpy(out + 8, &v, 4);
    memcpy(out + 16, &gen, 8);
    uint32_t c = aios__crc32c(0, out, 28);
    memcpy(out + 28, &c, 4);
}

aios_status aios__wal_encode(aios_buf *b, int type, const aios_memory *m, const char *del_id) {
    size_t start = b->len;
    uint64_t need = 64;
    if (type != WAL_DELETE) {
        need += (m->memory_id ? strlen(m->memory_id) : 0) + (m->content ? strlen(m->content) : 0) +
                (m->category ? strlen(m->category) : 0) + (m->source ? strlen(m->source) : 0) +
                (m->embedding ? (uint64_t)m->dim * 4 : 0);
    } else {
        need += strlen(del_id);
    }
    if (need > WAL_MAX_PAYLOAD) return aios__err(AIOS_ERR_RANGE, "memory: record of %llu bytes is too large", (unsigned long long)need);
    AIOS_TRY(aios_buf_reserve(b, (size_t)need + WAL_REC_HEADER));
    uint8_t hdr[WAL_REC_HEADER] = {0};
    aios_buf_append(b, hdr, sizeof hdr);
    size_t p0 = b->len;
    uint8_t t = (uint8_t)type;
    aios_buf_append(b, &t, 1);
    if (type == WAL_DELETE) {
        putstr(b, del_id);
    } else {
        uint8_t fl = (uint8_t)((m->content ? MR_CONTENT : 0) | (m->embedding ? MR_EMB : 0) |
                               (m->has_metadata ? MR_META : 0) | (m->has_metadata && m->has_quality ? MR_Q : 0));
        aios_buf_append(b, &fl, 1);
        aios_buf_append(b, &m->timestamp_us, 8);
        putstr(b, m->memory_id);
        putstr(b, m->content);
        putstr(b, m->has_metadata ? m->category : NULL);
        putstr(b, m->has_metadata ? m->source : NULL);
        float q = m->has_metadata && m->has_quality ? m->quality_score : 0.0f;
        aios_buf_append(b, &q, 4);
        uint32_t dim = m->embedding ? (uint32_t)m->dim : 0;
        put32(b, dim);
        if (dim) aios_buf_append(b, m->embedding, (size_t)dim * 4);
    }
    uint32_t len = (uint32_t)(b->len - p0), magic = WAL_MAGIC, pc = aios__crc32c(0, b->data + p0, len);
    uint8_t *h = b->data + start;
    memcpy(h, &magic, 4);
    memcpy(h + 4, &len, 4);
    memcpy(h + 8, &pc, 4);
    uint32_t hc = aios__crc32c(0, h, 12);
    memcpy(h + 12, &hc, 4);
    return AIOS_OK;
}

/* ---- decoding (hostile input: every length is checked against what is left) ---- */
typedef struct {
    const uint8_t *p;
    size_t n, off;
    bool bad;
} rd;
static uint32_t get32(rd *r) {
    uint32_t v = 0;
    if (r->n - r->off < 4) {
        r->bad = true;
        return 0;
    }
    memcpy(&v, r->p + r->off, 4);
    r->off += 4;
    return v;
}
/* Returns a malloc'd NUL-terminated copy (NULL for a null string); sets r->bad on error. */
static char *getstr(rd *r, bool *isnull) {
    uint32_t n = get32(r);
    *isnull = false;
    if (r->bad) return NULL;
    if (n == NULL_STR) {
        *isnull = true;
        return NULL;
    }
    if (r->n - r->off < n || memchr(r->p + r->off, 0, n)) {
        r->bad = true;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, r->p + r->off, n);
    s[n] = 0;
    r->off += n;
    return s;
}

aios_status aios__wal_parse(const uint8_t *data, size_t size, uint64_t expect_gen, wal_apply_fn fn, void *user,
                            size_t *valid_len, int64_t *n_records, const char *name) {
    *valid_len = 0;
    *n_records = 0;
    if (size < WAL_HEADER_SIZE) {
        /* a WAL is created with its header and fsynced before the manifest names it */
        return aios__err(AIOS_ERR_CORRUPT, "wal: %s: header truncated (%zu bytes)", name, size);
    }
    uint8_t want[WAL_HEADER_SIZE];
    uint64_t gen;
    memcpy(&gen, data + 16, 8);
    aios__wal_header(want, gen);
    if (memcmp(want, data, WAL_HEADER_SIZE))
        return aios__err(AIOS_ERR_CORRUPT, "wal: %s: bad file header (magic, version or checksum)", name);
    if (gen != expect_gen)
        return aios__err(AIOS_ERR_CORRUPT, "wal: %s: generation %llu, the manifest expects %llu", name,
                         (unsigned long long)gen, (unsigned long long)expect_gen);
    size_t off = WAL_HEADER_SIZE;
    while (off < size) {
        if (size - off < WAL_REC_HEADER) break; /* torn tail */
        const uint8_t *h = data + off;
        uint32_t magic, len, pc, hc;
        memcpy(&magic, h, 4);
        memcpy(&len, h + 4, 4);
        memcpy(&pc, h + 8, 4);
        memcpy(&hc, h + 12, 4);
        if (aios__crc32c(0, h, 12) != hc || magic != WAL_MAGIC || len == 0 || len > WAL_MAX_PAYLOAD) {
            /* an all-zero tail can come from a crash after the file grew but before data landed
             * (filesystem-dependent); anything else is damage */
            bool zeros = true;
            for (size_t i = off; i < size && zeros; i++) zeros = data[i] == 0;
            if (zeros) break;
            return aios__err(AIOS_ERR_CORRUPT, "wal: %s: record header at offset %zu fails its checksum", name, off);
        }
        if (size - off - WAL_REC_HEADER < len) break; /* torn tail: payload cut short */
        const uint8_t *p = h + WAL_REC_HEADER;
        if (aios__crc32c(0, p, len) != pc)
            return aios__err(AIOS_ERR_CORRUPT, "wal: %s: record at offset %zu (%u bytes) fails its checksum", name, off, len);
        rd r = {p, len, 1, false};
        int type = p[0];
        aios_memory m;
        memset(&m, 0, sizeof m);
        char *id = NULL, *content = NULL, *cat = NULL, *src = NULL;
        float *emb = NULL;
        bool isnull;
        aios_status st = AIOS_OK;
        if (type == WAL_DELETE) {
            id = getstr(&r, &isnull);
            if (r.bad || isnull || r.off != r.n) r.bad = true;
            m.memory_id = id;
        } else if (type == WAL_ADD || type == WAL_UPDATE) {
            uint8_t fl = 0;
            if (r.n - r.off < 9) r.bad = true;
            else {
                fl = p[r.off];
                memcpy(&m.timestamp_us, p + r.off + 1, 8);
                r.off += 9;
            }
            if (!r.bad) id = getstr(&r, &isnull);
            if (!r.bad && (isnull || !id[0])) r.bad = true;
            if (!r.bad) content = getstr(&r, &isnull);
            if (!r.bad && (fl & MR_CONTENT) == isnull) r.bad = true;
            if (!r.bad) cat = getstr(&r, &isnull);
            if (!r.bad) src = getstr(&r, &isnull);
            if (!r.bad && r.n - r.off >= 4) {
                memcpy(&m.quality_score, p + r.off, 4);
                r.off += 4;
            } else
                r.bad = true;
            uint32_t dim = r.bad ? 0 : get32(&r);
            if (!r.bad && (dim > 65536 || (r.n - r.off) / 4 < dim || r.n - r.off != (size_t)dim * 4 ||
                           (dim > 0) != !!(fl & MR_EMB)))
                r.bad = true;
            if (!r.bad && dim) {
                emb = malloc((size_t)dim * 4);
                if (!emb) r.bad = true;
                else memcpy(emb, p + r.off, (size_t)dim * 4);
            }
            m.memory_id = id;
            m.content = content;
            m.has_metadata = !!(fl & MR_META);
            m.category = cat;
            m.source = src;
            m.has_quality = !!(fl & MR_Q);
            m.embedding = emb;
            m.dim = (int32_t)dim;
        } else {
            r.bad = true;
        }
        if (r.bad)
            st = aios__err(AIOS_ERR_CORRUPT, "wal: %s: record at offset %zu: malformed payload (type %d)", name, off, type);
        else if (fn)
            st = fn(user, type, &m, off);
        free(id);
        free(content);
        free(cat);
        free(src);
        free(emb);
        if (st) return st;
        off += WAL_REC_HEADER + len;
        (*n_records)++;
        *valid_len = off;
    }
    if (*valid_len == 0) *valid_len = WAL_HEADER_SIZE;
    return AIOS_OK;
}
