/* cmd_config.c — `aios config show [--config FILE]`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int aios_cmd_config(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv) || argc < 2) {
        printf("usage: aios config show [--config FILE]\n\n"
               "Prints every setting with its effective value and its source: the default, the YAML\n"
               "file (config.yaml, config/config.yaml or ~/.aios/config.yaml, first found, or --config),\n"
               "or an environment variable (AIOS_MODEL_PATH, AIOS_DEVICE, AIOS_STORAGE_PATH,\n"
               "AIOS_BATCH_SIZE; MODEL_PATH, DEVICE, STORAGE_PATH, BATCH_SIZE also honoured).\n");
        return argc < 2 ? 2 : 0;
    }
    const char *path = NULL;
    if (strcmp(argv[1], "show")) {
        fprintf(stderr, "aios: config: unknown action '%s' (try 'show')\n", argv[1]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) path = argv[++i];
        else {
            fprintf(stderr, "aios: config show: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    aios_status s = aios_config_print(path, stdout);
    return s == AIOS_OK ? 0 : aios_cli_fail("config", s);
}
