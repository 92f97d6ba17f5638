/*
 * main.c — the `aios` command: dispatches to subcommands (src/cli/cmd_*.c).
 * Errors from the library become one line on stderr and exit code 1; usage errors exit 2.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const aios_cli_cmd g_cmds[] = {
    {"info", aios_cmd_info, "version, CPU features, build options"},
    {"config", aios_cmd_config, "show the effective configuration and where each value came from"},
    {"encode", aios_cmd_encode, "sentence embeddings from a BERT-family model"},
    {"memory", aios_cmd_memory, "the memory store: add, search, import/export Parquet, compact, check"},
    {"generate", aios_cmd_generate, "generate text from a prompt (Llama / Qwen decoders, llama2.c)"},
    {"chat", aios_cmd_chat, "interactive chat with a decoder model"},
    {"serve", aios_cmd_serve, "OpenAI-compatible HTTP server (completions, chat, embeddings, memories)"},
    {"train", aios_cmd_train, "train a LoRA adapter from question/answer pairs (JSONL)"},
    {"lora", aios_cmd_lora, "LoRA adapters: convert PEFT <-> skill card, merge into a model"},
    {"diffuse", aios_cmd_diffuse, "generate text by masked diffusion (LLaDA, Dream, block diffusion)"},
    {"tokenize", aios_cmd_tokenize, "text to token ids with a tokenizer.json"},
    {"detokenize", aios_cmd_detokenize, "token ids back to text"},
    {"inspect", aios_cmd_inspect, "show a model's derived config and tensors"},
    {"convert", aios_cmd_convert, "Hugging Face model -> ArrowEngine directory (Parquet Schema V1)"},
    {"quantize", aios_cmd_quantize, "int8/int4/int2 ArrowQuant weights (Parquet Schema V2)"},
    {"parquet", aios_cmd_parquet, "inspect, print, verify and write Parquet files"},
};

int aios_cli_fail(const char *what, aios_status s) {
    const char *detail = aios_last_error();
    fprintf(stderr, "aios: %s: %s\n", what, detail && *detail ? detail : aios_status_str(s));
    return 1;
}

int aios_cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "aios %s — local AI engine: embeddings, memory, generation, diffusion\n\n", AIOS_VERSION_STRING);
    fprintf(f, "usage: aios <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++)
        fprintf(f, "  %-12s %s\n", g_cmds[i].name, g_cmds[i].summary);
    fprintf(f, "\n'aios <command> --help' describes a command.  AIOS_LOG=debug|info|warn|error sets logging.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("aios %s\n", AIOS_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++)
        if (!strcmp(argv[1], g_cmds[i].name)) return g_cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "aios: unknown command '%s' (see 'aios --help')\n", argv[1]);
    return 2;
}
