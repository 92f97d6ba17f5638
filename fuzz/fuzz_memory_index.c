/* fuzz_memory_index.c — the HNSW index loader on arbitrary bytes (with a valid trailing
 * checksum appended, so the structural validation behind it is what gets exercised); a loaded
 * graph must survive searches and re-validation over a small table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory/memory_internal.h"

static mtable g_t;

static void init_table(void) {
    aios__mt_init(&g_t, 4);
    for (int i = 0; i < 64; i++) {
        char id[16];
        float e[4] = {(float)(i % 7) - 3, (float)(i % 5) - 2, (float)(i % 3), 1};
        snprintf(id, sizeof id, "n%d", i);
        aios_memory m = {.memory_id = id, .embedding = e, .dim = 4};
        if (i % 9 == 0) m.embedding = NULL;
        aios__mt_append(&g_t, &m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/aios-fuzz-hnsw-%d.idx", (int)getpid());
        init_table();
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    uint32_t c = aios__crc32c(0, data, size);
    fwrite(&c, 1, 4, f);
    fclose(f);
    hnsw *h;
    if (aios__hnsw_load(&g_t, path, &h) == AIOS_OK) {
        mfilter fl;
        memset(&fl, 0, sizeof fl);
        fl.since = INT64_MIN;
        fl.until = INT64_MAX;
        float q[4] = {1, 0.5f, -0.25f, 1};
        mhit hits[8];
        int32_t n;
        aios__hnsw_search(h, q, &fl, 8, 16, -2, hits, &n, -1, NULL);
        if (aios__hnsw_validate(h, NULL) != AIOS_OK) __builtin_trap();
        aios__hnsw_free(h);
    }
    return 0;
}
