/*
 * pq_encoding.c — Parquet value/level encodings shared by reader and writer.
 *
 * RLE / bit-packed hybrid (spec "Encodings.md"): a varint header; low bit 0 = RLE run of
 * (h >> 1) copies of a value stored in ceil(bw / 8) little-endian bytes; low bit 1 =
 * (h >> 1) groups of 8 values bit-packed LSB first.  Used for levels, dictionary indices and
 * RLE booleans.  The legacy BIT_PACKED level encoding packs MSB first.
 * DELTA_BINARY_PACKED: header (block size, miniblocks per block, total count, first value),
 * then blocks of (min delta, one bit width per miniblock, miniblocks bit-packed LSB first).
 *
 * Hostile input: every read is bounded by the buffer end; a run that ends early simply
 * yields fewer values, and callers treat a short count as a corrupt page.  Bit widths above
 * 32 (64 for deltas) are rejected.  Arithmetic on deltas wraps in unsigned types, as the
 * format intends.
 */
#include <string.h>

#include "format/parquet_internal.h"

static inline uint64_t load64_tail(const uint8_t *q, const uint8_t *end) {
    uint64_t w = 0;
    if (end - q >= 8) memcpy(&w, q, 8);
    else if (end > q) memcpy(&w, q, (size_t)(end - q));
    return w;
}

/* bw <= 32: one 64-bit load covers shift (< 8) + bw bits. */
static inline uint32_t bp_get32(const uint8_t *base, const uint8_t *end, uint64_t bitpos, int bw) {
    const uint8_t *q = base + (bitpos >> 3);
    uint64_t w = load64_tail(q, end);
    uint64_t mask = bw == 32 ? 0xffffffffull : ((1ull << bw) - 1);
    return (uint32_t)((w >> (bitpos & 7)) & mask);
}

static inline uint64_t bp_get64(const uint8_t *base, const uint8_t *end, uint64_t bitpos, int bw) {
    if (bw <= 32) return bp_get32(base, end, bitpos, bw);
    uint64_t lo = bp_get32(base, end, bitpos, 32);
    uint64_t hi = bp_get32(base, end, bitpos + 32, bw - 32);
    return lo | hi << 32;
}

static int read_uvarint(const uint8_t **pp, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    const uint8_t *p = *pp;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end) return 0;
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *v = x;
            return 1;
        }
    }
    return 0;
}

void aios__rle_init(aios__rle_dec *d, const uint8_t *p, size_t n, int bw) {
    memset(d, 0, sizeof *d);
    d->p = p;
    d->end = p + n;
    d->bw = bw;
    if (bw < 0 || bw > 32) d->err = 1;
}

static int rle_next_run(aios__rle_dec *d) {
    uint64_t h;
    if (d->err || d->p >= d->end) return 0;
    if (!read_uvarint(&d->p, d->end, &h)) {
        d->err = 1;
        return 0;
    }
    if (h & 1) {
        uint64_t groups = h >> 1;
        if (groups == 0 || groups > (1u << 28)) {
            d->err = 1;
            return 0;
        }
        uint64_t bytes = groups * (uint64_t)d->bw;
        uint64_t avail = (uint64_t)(d->end - d->p);
        uint64_t count = groups * 8;
        if (bytes > avail) { /* tolerate a short final run: only whole values count */
            bytes = avail;
            if (d->bw) count = AIOS_MIN(count, avail * 8 / (uint64_t)d->bw);
        }
        d->bp = d->p;
        d->bp_bitpos = 0;
        d->bp_left = (uint32_t)count;
        d->p += bytes;
        if (d->bp_left == 0) {
            d->err = 1;
            return 0;
        }
    } else {
        uint64_t count = h >> 1;
        int nb = (d->bw + 7) / 8;
        if (count == 0 || count > UINT32_MAX || d->end - d->p < nb) {
            d->err = 1;
            return 0;
        }
        uint32_t v = 0;
        for (int i = 0; i < nb; i++) v |= (uint32_t)d->p[i] << (8 * i);
        d->p += nb;
        if (d->bw < 32 && (v >> d->bw)) {
            d->err = 1;
            return 0;
        }
        d->rle_val = v;
        d->rle_left = (uint32_t)count;
    }
    return 1;
}

#define RLE_GET(NAME, T)                                                                    \
    int64_t NAME(aios__rle_dec *d, T *out, int64_t n) {                                     \
        int64_t got = 0;                                                                    \
        while (got < n) {                                                                   \
            if (d->rle_left) {                                                              \
                int64_t k = AIOS_MIN((int64_t)d->rle_left, n - got);                        \
                T v = (T)d->rle_val;                                                        \
                for (int64_t i = 0; i < k; i++) out[got + i] = v;                           \
                d->rle_left -= (uint32_t)k;                                                 \
                got += k;                                                                   \
            } else if (d->bp_left) {                                                        \
                int64_t k = AIOS_MIN((int64_t)d->bp_left, n - got);                         \
                const uint8_t *base = d->bp;                                                \
                uint64_t pos = d->bp_bitpos;                                                \
                int bw = d->bw;                                                             \
                if (bw == 0) {                                                              \
                    for (int64_t i = 0; i < k; i++) out[got + i] = 0;                       \
                } else {                                                                    \
                    for (int64_t i = 0; i < k; i++, pos += (uint64_t)bw)                    \
                        out[got + i] = (T)bp_get32(base, d->p, pos, bw);                    \
                }                                                                           \
                d->bp_bitpos = pos;                                                         \
                d->bp_left -= (uint32_t)k;                                                  \
                got += k;                                                                   \
            } else if (!rle_next_run(d)) {                                                  \
                break;                                                                      \
            }                                                                               \
        }                                                                                   \
        return got;                                                                         \
    }
RLE_GET(aios__rle_get_u32, uint32_t)
RLE_GET(aios__rle_get_i16, int16_t)

aios_status aios__bitpacked_msb_i16(const uint8_t *p, size_t n, int bw, int16_t *out, int64_t count) {
    if (bw < 0 || bw > 16) return aios__err(AIOS_ERR_FORMAT, "bit-packed levels: bit width %d", bw);
    uint64_t need;
    if (!aios__mul_ok((uint64_t)count, (uint64_t)bw, &need) || (need + 7) / 8 > n)
        return aios__err(AIOS_ERR_CORRUPT, "bit-packed levels: %lld values need more than %zu bytes",
                         (long long)count, n);
    uint64_t pos = 0;
    for (int64_t i = 0; i < count; i++) {
        uint32_t v = 0;
        for (int b = 0; b < bw; b++, pos++) v = v << 1 | ((p[pos >> 3] >> (7 - (pos & 7))) & 1);
        out[i] = (int16_t)v;
    }
    return AIOS_OK;
}

aios_status aios__delta_decode(const uint8_t *p, size_t n, int is32, void *out, int64_t count,
                               size_t *used) {
    const uint8_t *q = p, *end = p + n;
    uint64_t block, nmini, total, zfirst;
    if (!read_uvarint(&q, end, &block) || !read_uvarint(&q, end, &nmini) ||
        !read_uvarint(&q, end, &total) || !read_uvarint(&q, end, &zfirst))
        return aios__err(AIOS_ERR_CORRUPT, "delta: truncated header");
    if (block == 0 || block % 128 || block > (1u << 20) || nmini == 0 || block % nmini ||
        (block / nmini) % 32)
        return aios__err(AIOS_ERR_CORRUPT, "delta: bad block size %llu / %llu miniblocks",
                         (unsigned long long)block, (unsigned long long)nmini);
    if (total < (uint64_t)count)
        return aios__err(AIOS_ERR_CORRUPT, "delta: %llu values, page needs %lld", (unsigned long long)total,
                         (long long)count);
    uint64_t vpm = block / nmini;
    int64_t *o64 = (int64_t *)out;
    int32_t *o32 = (int32_t *)out;
    uint64_t prev = (zfirst >> 1) ^ -(zfirst & 1);
    int64_t i = 0;
    if (count > 0) {
        if (is32) o32[0] = (int32_t)(uint32_t)prev;
        else o64[0] = (int64_t)prev;
        i = 1;
    }
    /* DuckDB 2.0 writes int32 deltas up to 33 bits wide (computed in 64 bits); the values
     * still reconstruct modulo 2^32, so any width up to 64 is accepted and wrapped. */
    int maxbw = 64;
    /* Decode blocks while values are needed; `total` may exceed `count` only by values we skip. */
    uint64_t want = total;
    uint64_t done = total ? 1 : 0;
    while (done < want) {
        uint64_t zmin;
        if (!read_uvarint(&q, end, &zmin)) return aios__err(AIOS_ERR_CORRUPT, "delta: truncated block");
        uint64_t mind = (zmin >> 1) ^ -(zmin & 1);
        if ((uint64_t)(end - q) < nmini) return aios__err(AIOS_ERR_CORRUPT, "delta: truncated bit widths");
        const uint8_t *widths = q;
        q += nmini;
        for (uint64_t m = 0; m < nmini && done < want; m++) {
            int bw = widths[m];
            if (bw > maxbw) return aios__err(AIOS_ERR_CORRUPT, "delta: bit width %d", bw);
            uint64_t bytes = vpm * (uint64_t)bw / 8;
            uint64_t avail = (uint64_t)(end - q);
            uint64_t left = want - done;
            uint64_t nv = AIOS_MIN(vpm, left);
            if ((nv * (uint64_t)bw + 7) / 8 > avail) return aios__err(AIOS_ERR_CORRUPT, "delta: truncated miniblock");
            const uint8_t *mend = q + AIOS_MIN(bytes, avail);
            for (uint64_t j = 0; j < nv; j++) {
                uint64_t d = bw ? bp_get64(q, mend, j * (uint64_t)bw, bw) : 0;
                prev = prev + mind + d;
                if (is32) prev = (uint32_t)prev;
                if (i < count) {
                    if (is32) o32[i] = (int32_t)(uint32_t)prev;
                    else o64[i] = (int64_t)prev;
                    i++;
                }
            }
            done += nv;
            q += AIOS_MIN(bytes, avail);
        }
    }
    if (i != count) return aios__err(AIOS_ERR_CORRUPT, "delta: decoded %lld of %lld values", (long long)i, (long long)count);
    *used = (size_t)(q - p);
    return AIOS_OK;
}

/* ---- encoders ---- */

static aios_status put_uvarint(aios_buf *out, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return aios_buf_append(out, tmp, (size_t)n);
}

#define RLE_ENCODE(NAME, T)                                                                 \
    aios_status NAME(aios_buf *out, const T *vals, int64_t n, int bw) {                    \
        int nb = (bw + 7) / 8;                                                              \
        int64_t i = 0;                                                                      \
        while (i < n) {                                                                     \
            int64_t r = 1;                                                                  \
            while (i + r < n && vals[i + r] == vals[i]) r++;                                \
            if (r >= 8) {                                                                   \
                AIOS_TRY(put_uvarint(out, (uint64_t)r << 1));                               \
                uint32_t v = (uint32_t)vals[i];                                             \
                uint8_t tmp[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)}; \
                AIOS_TRY(aios_buf_append(out, tmp, (size_t)nb));                            \
                i += r;                                                                     \
                continue;                                                                   \
            }                                                                               \
            int64_t j = i;                                                                  \
            for (;;) {                                                                      \
                j += 8;                                                                     \
                if (j >= n) break;                                                          \
                int64_t k = 1;                                                              \
                while (k < 8 && j + k < n && vals[j + k] == vals[j]) k++;                   \
                if (k >= 8) break;                                                          \
            }                                                                               \
            int64_t stop = AIOS_MIN(j, n);                                                  \
            int64_t groups = (stop - i + 7) / 8;                                            \
            AIOS_TRY(put_uvarint(out, (uint64_t)groups << 1 | 1));                          \
            size_t bytes = (size_t)groups * (size_t)bw;                                     \
            AIOS_TRY(aios_buf_reserve(out, bytes + 8));                                     \
            uint8_t *dst = out->data + out->len;                                            \
            memset(dst, 0, bytes + 8);                                                      \
            uint64_t acc = 0;                                                               \
            int nacc = 0;                                                                   \
            size_t o = 0;                                                                   \
            for (int64_t x = i; x < i + groups * 8; x++) {                                  \
                uint64_t v = x < stop ? (uint64_t)(uint32_t)vals[x] : 0;                    \
                acc |= v << nacc;                                                           \
                nacc += bw;                                                                 \
                while (nacc >= 8) {                                                         \
                    dst[o++] = (uint8_t)acc;                                                \
                    acc >>= 8;                                                              \
                    nacc -= 8;                                                              \
                }                                                                           \
            }                                                                               \
            if (nacc > 0) dst[o++] = (uint8_t)acc;                                          \
            out->len += bytes;                                                              \
            i = stop;                                                                       \
        }                                                                                   \
        return AIOS_OK;                                                                     \
    }
RLE_ENCODE(aios__rle_encode, uint32_t)
RLE_ENCODE(aios__rle_encode_i16, int16_t)
