/* cmd_info.c — `aios info`: version, CPU features, threads. */
#include <stdio.h>

#include "cli/cli.h"

int aios_cmd_info(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        printf("usage: aios info\n\nPrints the version, the CPU features detected and the thread count.\n");
        return 0;
    }
    char feats[256];
    const aios_cpu_info *c = aios_cpu();
    printf("aios %s\n", AIOS_VERSION_STRING);
    printf("cpu features: %s\n", aios_cpu_describe(feats, sizeof feats));
    printf("cores: %d\n", c->n_cores);
    return 0;
}
