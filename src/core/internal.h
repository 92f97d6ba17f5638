/*
 * core/internal.h — internal helpers shared by every module (not part of the public API).
 *
 * Errors: return aios__err(code, "module: detail %d", x) to set the thread's message.
 * Files: aios__map_file() gives a read-only mapping; aios__read_file() a NUL-terminated copy.
 * Buffers: aios_buf is a growable byte buffer for writers.
 * Overflow: aios__mul_ok()/aios__add_ok() guard size arithmetic on untrusted input.
 */
#ifndef AIOS_CORE_INTERNAL_H
#define AIOS_CORE_INTERNAL_H

#include "aios.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Sets the thread's error detail (printf-style) and returns `s`. */
aios_status aios__err(aios_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends context to the current detail ("ctx: old detail") and returns `s`. */
aios_status aios__err_prefix(aios_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define AIOS_TRY(expr)                      \
    do {                                    \
        aios_status aios__s = (expr);       \
        if (aios__s != AIOS_OK) return aios__s; \
    } while (0)

#define AIOS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define AIOS_MAX(a, b) ((a) > (b) ? (a) : (b))
#define AIOS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Read-only file mapping. */
typedef struct {
    const uint8_t *data;
    size_t size;
    int mapped;
} aios_map;
aios_status aios__map_file(const char *path, aios_map *m);
/* Drops the whole pages inside [from, to) of a mapping from this process's resident set (they
 * stay in the page cache and come back on the next touch).  No-op for unmapped buffers. */
void aios__map_release(const aios_map *m, size_t from, size_t to);
void aios__unmap_file(aios_map *m);
/* Reads a whole file into a malloc'd NUL-terminated buffer (caller frees). */
aios_status aios__read_file(const char *path, char **out, size_t *len);
/* Writes n bytes to path through path.tmp + fsync + rename: the old file or the new one, never
 * a torn one. */
aios_status aios__write_file_atomic(const char *path, const char *data, size_t n);

static inline bool aios__mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool aios__add_ok(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* Converts a double (e.g. a JSON number) to int64 without undefined behaviour: false for NaN,
 * infinities and values outside ±2^53 (where doubles stop being exact integers). */
static inline bool aios__f64_to_i64(double d, int64_t *out) {
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0)) return false;
    *out = (int64_t)d;
    return true;
}

/* Growable byte buffer. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} aios_buf;
aios_status aios_buf_reserve(aios_buf *b, size_t extra);
aios_status aios_buf_append(aios_buf *b, const void *p, size_t n);
void aios_buf_free(aios_buf *b);

/* Monotonic clock in seconds. */
double aios__now(void);

#endif
