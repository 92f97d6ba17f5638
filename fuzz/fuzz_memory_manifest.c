/* fuzz_memory_manifest.c — the manifest parser (JSON + checksum line) on arbitrary bytes.  To
 * get past the checksum, the input's own CRC32C is appended as the checksum line half of the
 * time, so the JSON validation behind it is exercised too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory/memory_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    manifest m;
    if (aios__manifest_parse((const char *)data, size, &m, "fuzz") == AIOS_OK) aios__manifest_free(&m);
    char *buf = malloc(size + 32);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\n';
    int n = snprintf(buf + size + 1, 31, "crc32c %08x\n", aios__crc32c(0, buf, size + 1));
    if (aios__manifest_parse(buf, size + 1 + (size_t)n, &m, "fuzz") == AIOS_OK) {
        if (m.n_segs < 0 || m.dim < 0 || m.dim > 65536) __builtin_trap();
        for (int64_t i = 0; i < m.n_segs; i++)
            for (int64_t k = 0; k < m.segs[i].n_dead; k++)
                if (m.segs[i].dead[k] < 0 || m.segs[i].dead[k] >= m.segs[i].rows) __builtin_trap();
        aios__manifest_free(&m);
    }
    free(buf);
    return 0;
}
