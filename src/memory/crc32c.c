/*
 * crc32c.c — CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum of
 * every WAL record, the manifest, segments and the HNSW file.  CRC32C rather than zlib's CRC32
 * because x86 has an instruction for it (SSE4.2 `crc32`, ~8 bytes/cycle), so verifying a
 * segment on open costs far less than reading it.
 *
 * Reference: a byte-at-a-time table (slice-by-1), always available and the oracle in tests;
 * fast path: _mm_crc32_u64, chosen at run time from aios_cpu().  Init ~0, final xor ~0, so
 * aios__crc32c(0, "123456789", 9) == 0xE3069283 (the standard check value).
 */
#include "memory/memory_internal.h"

#include <pthread.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static uint32_t g_table[256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_hw;

static void init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        g_table[i] = c;
    }
    const char *e = getenv("AIOS_KERNELS");
    g_hw = aios_cpu()->sse42 && !(e && !strcmp(e, "ref"));
}

uint32_t aios__crc32c_ref(uint32_t crc, const void *p, size_t n) {
    pthread_once(&g_once, init);
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = g_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *b, size_t n) {
    uint64_t c = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *b++);
        n--;
    }
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        c = _mm_crc32_u64(c, v);
    }
    while (n--) c = _mm_crc32_u8((uint32_t)c, *b++);
    return ~(uint32_t)c;
}
#endif

uint32_t aios__crc32c(uint32_t crc, const void *p, size_t n) {
    pthread_once(&g_once, init);
#if defined(__x86_64__)
    if (g_hw) return crc_hw(crc, p, n);
#endif
    return aios__crc32c_ref(crc, p, n);
}

uint64_t aios__hash64(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    /* final avalanche so that the low bits (the slot index) depend on every byte */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}
