/* cmd_inspect.c — `aios inspect DIR|FILE`: the config the loader derived and every tensor. */
#include <stdio.h>

#include "cli/cli.h"

int aios_cmd_inspect(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        printf("usage: aios inspect MODEL_DIR|FILE|FILE.gguf\n\n"
               "Opens a model the way the engine does (a Hugging Face directory with config.json and\n"
               "safetensors, an ArrowEngine directory with metadata.json and weights.parquet, or one\n"
               ".safetensors / .parquet file) and prints the derived config, then one line per tensor:\n"
               "dtype, shape, parameters, bytes and quantization (granularity, scales, symmetry),\n"
               "then the totals.\n\n"
               "A GGUF file (llama.cpp's format) is first listed as gguf-dump lists it: header, every\n"
               "metadata entry (arrays by their first elements), every tensor (ggml type, ne, offset);\n"
               "then, for the architectures the engine runs (llama, qwen2, qwen3), the config and the\n"
               "tensors under the Hugging Face names the engine uses.\n\n"
               "examples:\n"
               "  aios inspect models/smollm2-135m-instruct\n"
               "  aios inspect SmolLM2-135M-Instruct.Q4_1.gguf\n"
               "  aios inspect out/weights.parquet\n");
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: aios inspect MODEL_DIR|FILE (see 'aios inspect --help')\n");
        return 2;
    }
    aios_status s = aios_model_inspect(argv[1], stdout);
    if (s) return aios_cli_fail("inspect", s);
    return 0;
}
