#include <stdio.h>
#include "cli/cli.h"
int aios_cmd_parquet_from_jsonl(int argc, char **argv);
int aios_cmd_parquet_from_jsonl(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "todo\n"); return 2; }
