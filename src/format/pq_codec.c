/*
 * pq_codec.c — Parquet page codecs: none, snappy, gzip, zstd (read and write), lz4_raw (read).
 *
 * Decompression always produces exactly the page's declared uncompressed size: a codec that
 * yields fewer or more bytes is a corrupt page (hostile input never writes past `dst_n`).
 * Snappy, zlib and zstd come from Debian's libraries; LZ4 raw blocks are decoded here (the
 * block format is 30 lines: token, literal length, literals, offset, match length).
 */
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <string.h>

#include "format/parquet_internal.h"

static aios_status lz4_raw_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t dst_n) {
    const uint8_t *ip = src, *iend = src + n;
    size_t op = 0;
    while (ip < iend) {
        unsigned token = *ip++;
        size_t lit = token >> 4;
        if (lit == 15) {
            uint8_t b;
            do {
                if (ip >= iend) return aios__err(AIOS_ERR_CORRUPT, "lz4: truncated literal length");
                b = *ip++;
                lit += b;
            } while (b == 255);
        }
        if (lit > (size_t)(iend - ip) || lit > dst_n - op)
            return aios__err(AIOS_ERR_CORRUPT, "lz4: literals past the end");
        memcpy(dst + op, ip, lit);
        ip += lit;
        op += lit;
        if (ip >= iend) break; /* last sequence has no match */
        if (iend - ip < 2) return aios__err(AIOS_ERR_CORRUPT, "lz4: truncated offset");
        size_t off = (size_t)ip[0] | (size_t)ip[1] << 8;
        ip += 2;
        if (off == 0 || off > op) return aios__err(AIOS_ERR_CORRUPT, "lz4: bad match offset");
        size_t ml = (token & 15);
        if (ml == 15) {
            uint8_t b;
            do {
                if (ip >= iend) return aios__err(AIOS_ERR_CORRUPT, "lz4: truncated match length");
                b = *ip++;
                ml += b;
            } while (b == 255);
        }
        ml += 4;
        if (ml > dst_n - op) return aios__err(AIOS_ERR_CORRUPT, "lz4: match past the end");
        for (size_t i = 0; i < ml; i++) dst[op + i] = dst[op - off + i]; /* may overlap */
        op += ml;
    }
    if (op != dst_n) return aios__err(AIOS_ERR_CORRUPT, "lz4: %zu bytes, page says %zu", op, dst_n);
    return AIOS_OK;
}

aios_status aios__pq_decompress(aios_pq_codec codec, const uint8_t *src, size_t n, uint8_t *dst,
                                size_t dst_n, void **zctx) {
    uint8_t dummy[1];
    if (!dst) dst = dummy; /* empty page: some codecs insist on a non-NULL output */
    switch (codec) {
    case AIOS_PQ_UNCOMPRESSED:
        if (n != dst_n) return aios__err(AIOS_ERR_CORRUPT, "uncompressed page: %zu bytes, header says %zu", n, dst_n);
        memcpy(dst, src, n);
        return AIOS_OK;
    case AIOS_PQ_SNAPPY: {
        size_t len;
        if (snappy_uncompressed_length((const char *)src, n, &len) != SNAPPY_OK)
            return aios__err(AIOS_ERR_CORRUPT, "snappy: bad header");
        if (len != dst_n) return aios__err(AIOS_ERR_CORRUPT, "snappy: %zu bytes, page says %zu", len, dst_n);
        if (snappy_validate_compressed_buffer((const char *)src, n) != SNAPPY_OK)
            return aios__err(AIOS_ERR_CORRUPT, "snappy: corrupt data");
        size_t out = dst_n;
        if (snappy_uncompress((const char *)src, n, (char *)dst, &out) != SNAPPY_OK || out != dst_n)
            return aios__err(AIOS_ERR_CORRUPT, "snappy: corrupt data");
        return AIOS_OK;
    }
    case AIOS_PQ_GZIP: {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, 15 + 32) != Z_OK) return aios__err(AIOS_ERR_NOMEM, "gzip: inflateInit failed");
        zs.next_in = (Bytef *)(uintptr_t)src;
        zs.avail_in = (uInt)n;
        if ((size_t)zs.avail_in != n) {
            inflateEnd(&zs);
            return aios__err(AIOS_ERR_UNSUPPORTED, "gzip: page too large");
        }
        zs.next_out = dst;
        zs.avail_out = (uInt)dst_n;
        if ((size_t)zs.avail_out != dst_n) {
            inflateEnd(&zs);
            return aios__err(AIOS_ERR_UNSUPPORTED, "gzip: page too large");
        }
        int rc = inflate(&zs, Z_FINISH);
        size_t got = dst_n - zs.avail_out;
        inflateEnd(&zs);
        if (rc != Z_STREAM_END) return aios__err(AIOS_ERR_CORRUPT, "gzip: corrupt data (zlib %d)", rc);
        if (got != dst_n) return aios__err(AIOS_ERR_CORRUPT, "gzip: %zu bytes, page says %zu", got, dst_n);
        return AIOS_OK;
    }
    case AIOS_PQ_ZSTD: {
        ZSTD_DCtx *dc = zctx ? (ZSTD_DCtx *)*zctx : NULL;
        if (!dc) {
            dc = ZSTD_createDCtx();
            if (!dc) return aios__err(AIOS_ERR_NOMEM, "zstd: cannot create context");
            if (zctx) *zctx = dc;
        }
        size_t r = ZSTD_decompressDCtx(dc, dst, dst_n, src, n);
        if (!zctx) ZSTD_freeDCtx(dc);
        if (ZSTD_isError(r)) return aios__err(AIOS_ERR_CORRUPT, "zstd: %s", ZSTD_getErrorName(r));
        if (r != dst_n) return aios__err(AIOS_ERR_CORRUPT, "zstd: %zu bytes, page says %zu", r, dst_n);
        return AIOS_OK;
    }
    case AIOS_PQ_LZ4_RAW:
        return lz4_raw_decompress(src, n, dst, dst_n);
    default:
        return aios__err(AIOS_ERR_UNSUPPORTED, "codec %d (%s) not supported", (int)codec,
                         aios_pq_codec_name(codec));
    }
}

void aios__pq_free_zctx(void *zctx) { ZSTD_freeDCtx((ZSTD_DCtx *)zctx); }
void aios__pq_free_cctx(void *cctx) { ZSTD_freeCCtx((ZSTD_CCtx *)cctx); }

aios_status aios__pq_compress(aios_pq_codec codec, int level, const uint8_t *src, size_t n,
                              aios_buf *out, void **cctx) {
    switch (codec) {
    case AIOS_PQ_UNCOMPRESSED:
        return aios_buf_append(out, src, n);
    case AIOS_PQ_SNAPPY: {
        size_t cap = snappy_max_compressed_length(n);
        AIOS_TRY(aios_buf_reserve(out, cap));
        size_t len = cap;
        if (snappy_compress((const char *)src, n, (char *)out->data + out->len, &len) != SNAPPY_OK)
            return aios__err(AIOS_ERR_INTERNAL, "snappy: compress failed");
        out->len += len;
        return AIOS_OK;
    }
    case AIOS_PQ_GZIP: {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, level > 0 ? level : 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return aios__err(AIOS_ERR_NOMEM, "gzip: deflateInit failed");
        size_t cap = deflateBound(&zs, (uLong)n) + 32;
        aios_status s = aios_buf_reserve(out, cap);
        if (s != AIOS_OK) {
            deflateEnd(&zs);
            return s;
        }
        zs.next_in = (Bytef *)(uintptr_t)src;
        zs.avail_in = (uInt)n;
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)cap;
        int rc = deflate(&zs, Z_FINISH);
        size_t len = cap - zs.avail_out;
        deflateEnd(&zs);
        if (rc != Z_STREAM_END) return aios__err(AIOS_ERR_INTERNAL, "gzip: deflate failed (%d)", rc);
        out->len += len;
        return AIOS_OK;
    }
    case AIOS_PQ_ZSTD: {
        ZSTD_CCtx *cc = (ZSTD_CCtx *)*cctx;
        if (!cc) {
            cc = ZSTD_createCCtx();
            if (!cc) return aios__err(AIOS_ERR_NOMEM, "zstd: cannot create context");
            *cctx = cc;
        }
        size_t cap = ZSTD_compressBound(n);
        AIOS_TRY(aios_buf_reserve(out, cap));
        size_t r = ZSTD_compressCCtx(cc, out->data + out->len, cap, src, n, level > 0 ? level : 3);
        if (ZSTD_isError(r)) return aios__err(AIOS_ERR_INTERNAL, "zstd: %s", ZSTD_getErrorName(r));
        out->len += r;
        return AIOS_OK;
    }
    default:
        return aios__err(AIOS_ERR_UNSUPPORTED, "parquet: cannot write codec %s", aios_pq_codec_name(codec));
    }
}

uint32_t aios__pq_crc32(const uint8_t *p, size_t n) { return (uint32_t)aios__pq_crc32_update(crc32(0L, Z_NULL, 0), p, n); }

unsigned long aios__pq_crc32_update(unsigned long c, const uint8_t *p, size_t n) {
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return c;
}
