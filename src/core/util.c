/*
 * util.c — small shared helpers: growable buffer, monotonic clock.
 */
#include "core/internal.h"

#include <string.h>
#include <time.h>

aios_status aios_buf_reserve(aios_buf *b, size_t extra) {
    size_t need;
    if (__builtin_add_overflow(b->len, extra, &need)) return aios__err(AIOS_ERR_NOMEM, "buffer size overflow");
    if (need <= b->cap) return AIOS_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) return aios__err(AIOS_ERR_NOMEM, "out of memory growing buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return AIOS_OK;
}

aios_status aios_buf_append(aios_buf *b, const void *p, size_t n) {
    if (n == 0) return AIOS_OK;
    AIOS_TRY(aios_buf_reserve(b, n));
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return AIOS_OK;
}

void aios_buf_free(aios_buf *b) {
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

double aios__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
