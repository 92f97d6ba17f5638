/* fuzz_memory_wal.c — the write-ahead log decoder and replay into a row table, on arbitrary
 * bytes.  The first 8 bytes choose the expected generation (so the header check is passed
 * sometimes); every decoded record is applied the way store.c replays it. */
#include <stdint.h>
#include <string.h>

#include "memory/memory_internal.h"

static aios_status apply(void *user, int type, const aios_memory *m, uint64_t off) {
    mtable *t = user;
    int64_t r = aios__mt_find(t, m->memory_id, strlen(m->memory_id));
    if (type == WAL_ADD && r >= 0) return AIOS_ERR_CORRUPT;
    if (type != WAL_ADD && r < 0) return AIOS_ERR_CORRUPT;
    if (m->embedding && t->dim && m->dim != t->dim) return AIOS_ERR_CORRUPT;
    if (r >= 0) aios__mt_kill(t, r);
    if (type != WAL_DELETE) return aios__mt_append(t, m);
    return AIOS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t gen = 0;
    if (size >= 24) memcpy(&gen, data + 16, 8); /* the generation the image claims */
    mtable t;
    aios__mt_init(&t, 0);
    size_t valid;
    int64_t n;
    aios_status s = aios__wal_parse(data, size, gen, apply, &t, &valid, &n, "fuzz");
    if (s == AIOS_OK && (valid > size || valid < 32)) __builtin_trap();
    /* the table answers lookups for everything it holds */
    for (int64_t r = 0; r < t.n; r++)
        if (t.flags[r] & MR_LIVE) {
            uint32_t len;
            const char *id = aios__mt_str(&t, t.id_off[r], &len);
            if (aios__mt_find(&t, id, len) != r) __builtin_trap();
        }
    aios__mt_free(&t);
    return 0;
}
