/* cmd_convert.c — `aios convert IN OUT_DIR`: Hugging Face model -> ArrowEngine directory. */
#include <stdio.h>

#include "cli/cli.h"

int aios_cmd_convert(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        printf("usage: aios convert MODEL_DIR|FILE OUT_DIR\n\n"
               "Writes the seed's ArrowEngine directory: weights.parquet in Schema V1 (layer_name,\n"
               "shape, dtype, data, num_params; every tensor in its stored dtype, uncompressed PLAIN\n"
               "data aligned so it maps without copying), metadata.json (architecture, sizes, eps,\n"
               "rope, pooling, normalize, special token ids, diffusion facts) and the tokenizer files.\n"
               "OUT_DIR is created if needed; existing files in it are replaced.\n\n"
               "From a GGUF file: weights.parquet in Schema V2 with the GGUF blocks kept as they are\n"
               "(quant_type gguf_q4_1, gguf_q8_0, ...; the aios.gguf_blocks extension, docs/gguf.md),\n"
               "q/k rows in the Hugging Face order, and the tokenizer and chat template of the GGUF\n"
               "metadata written as tokenizer.json and tokenizer_config.json.\n\n"
               "examples:\n"
               "  aios convert models/smollm2-135m-instruct out/smollm2\n"
               "  aios convert SmolLM2-135M-Instruct.Q4_1.gguf out/smollm2-q4_1\n"
               "  aios generate --model out/smollm2-q4_1 --chat --prompt 'Hi!'\n");
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: aios convert MODEL_DIR|FILE OUT_DIR (see 'aios convert --help')\n");
        return 2;
    }
    aios_status s = aios_model_convert(argv[1], argv[2]);
    if (s) return aios_cli_fail("convert", s);
    fprintf(stderr, "aios: convert: wrote %s/weights.parquet and metadata.json\n", argv[2]);
    return 0;
}
