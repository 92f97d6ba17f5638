/*
 * cli.h — the `aios` command's subcommand table.  Each subcommand lives in its own
 * src/cli/cmd_<name>.c and returns a process exit code (0 ok, 1 error, 2 usage).
 */
#ifndef AIOS_CLI_H
#define AIOS_CLI_H

#include "aios.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
    const char *summary;
} aios_cli_cmd;

/* Prints "aios: <what>: <last error>" on stderr and returns 1. */
int aios_cli_fail(const char *what, aios_status s);
/* Option values, checked the same way by every command.  Each prints one line
 * `aios: <cmd>: <opt>: expected ..., got '<v>'` on failure and returns 0 (the caller exits 2). */
#define AIOS_CLI_MAX_THREADS 1024 /* the kernels' own cap (kernels.h AIOS_KERNEL_MAX_THREADS) */
int aios_cli_int(const char *cmd, const char *opt, const char *v, long long lo, long long hi, long long *out);
/* A finite number in [lo, hi]: "nan", "inf" and trailing junk are refused. */
int aios_cli_float(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out);
/* --threads N: an integer in [1, AIOS_CLI_MAX_THREADS]. */
int aios_cli_threads(const char *cmd, const char *v, int *out);
/* --adapter PATH[:SCALE]: the part after the last ':' is a scale (in [-100, 100]) when it parses
 * as a number, else part of the path (1 when absent).  path gets cap bytes at most. */
int aios_cli_adapter(const char *cmd, const char *v, char *path, size_t cap, float *scale);
/* --int8-act on|off|auto: the encoder's aios_int8_act (docs/encode.md "int8 activations"). */
int aios_cli_int8_act(const char *cmd, const char *v, aios_int8_act *out);
/* The --help line of --int8-act, shared by encode and serve. */
#define AIOS_CLI_INT8_ACT_HELP                                                                      \
    "int8 activations: auto (default: on for int8 weights on AVX-512 VNNI\n"                         \
    "                     CPUs, batches of >= 8 tokens; else exact float), on, off (exact float);\n" \
    "                     AIOS_INT8_ACT=0/1 sets the process default\n"
/* True when argv has -h or --help. */
int aios_cli_wants_help(int argc, char **argv);

int aios_cmd_chat(int argc, char **argv);
int aios_cmd_config(int argc, char **argv);
int aios_cmd_info(int argc, char **argv);
int aios_cmd_inspect(int argc, char **argv); int aios_cmd_convert(int argc, char **argv); int aios_cmd_quantize(int argc, char **argv);
int aios_cmd_generate(int argc, char **argv); int aios_cmd_chat(int argc, char **argv); /* cmd_generate.c */
int aios_cmd_diffuse(int argc, char **argv);
/* generate --mode ar|diffusion (cmd_diffuse.c): -1 = not diffusion, go on with generate. */
int aios_cli_generate_mode(int *argc, char **argv);
int aios_cmd_memory(int argc, char **argv);
int aios_cmd_parquet(int argc, char **argv);
int aios_cmd_tokenize(int argc, char **argv), aios_cmd_detokenize(int argc, char **argv);
int aios_cmd_encode(int argc, char **argv);
int aios_cmd_convert(int argc, char **argv);
int aios_cmd_detokenize(int argc, char **argv);
int aios_cmd_generate(int argc, char **argv);
int aios_cmd_inspect(int argc, char **argv);
int aios_cmd_quantize(int argc, char **argv);
int aios_cmd_serve(int argc, char **argv);
int aios_cmd_tokenize(int argc, char **argv);
int aios_cmd_train(int argc, char **argv), aios_cmd_lora(int argc, char **argv); /* cmd_train.c */

int aios_cmd_skills(int argc, char **argv);                                   /* cmd_skills.c */
int aios_cmd_teach(int argc, char **argv), aios_cmd_evolve(int argc, char **argv); /* cmd_evolve.c */

#endif
