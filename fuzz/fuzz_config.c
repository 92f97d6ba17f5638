/* fuzz_config.c — YAML configuration reader on arbitrary bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "aios.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/aios-fuzz-config-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    aios_config c;
    (void)aios_config_load(&c, path);
    return 0;
}
