/* cmd_inspect.c — `aios inspect DIR|FILE`: the config the loader derived and every tensor.
 * A file that is neither safetensors nor Parquet was read as safetensors (the loader's guess for
 * other names); a llama2.c checkpoint is then named as such, with the header it carries, rather
 * than reported as a safetensors header of absurd length. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* llama2.c's header: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size — negative
 * when the classifier is not shared — seq_len), or version 1+ ("ak42" magic).  1 when plausible. */
static int llama2c_header(const char *path, int32_t h[7], int *version) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char b[64];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    *version = 0;
    size_t off = 0;
    if (n >= 8 && !memcmp(b, "24ka", 4)) { /* uint32 0x616b3432 "ak42" little-endian */
        memcpy(version, b + 4, 4);
        off = 8;
    }
    if (n < off + 28) return 0;
    memcpy(h, b + off, 28);
    int32_t v = h[5] < 0 ? -h[5] : h[5];
    return h[0] > 0 && h[0] <= 65536 && h[1] > 0 && h[1] <= 1 << 20 && h[2] > 0 && h[2] <= 1024 && h[3] > 0 &&
           h[3] <= h[0] && h[4] > 0 && h[4] <= h[3] && v > 0 && v <= 1 << 22 && h[6] > 0 && h[6] <= 1 << 22;
}

int aios_cmd_inspect(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        printf("usage: aios inspect MODEL_DIR|FILE|FILE.gguf\n\n"
               "Opens a model the way the engine does (a Hugging Face directory with config.json and\n"
               "safetensors, an ArrowEngine directory with metadata.json and weights.parquet, or one\n"
               ".safetensors / .parquet file) and prints the derived config, then one line per tensor:\n"
               "dtype, shape, parameters, bytes and quantization (granularity, scales, symmetry),\n"
               "then the totals.  A llama2.c .bin checkpoint is recognised and its header printed.\n\n"
               "A GGUF file (llama.cpp's format) is first listed as gguf-dump lists it: header, every\n"
               "metadata entry (arrays by their first elements), every tensor (ggml type, ne, offset);\n"
               "then, for the architectures the engine runs (llama, qwen2, qwen3), the config and the\n"
               "tensors under the Hugging Face names the engine uses.\n");
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: aios inspect MODEL_DIR|FILE (see 'aios inspect --help')\n");
        return 2;
    }
    aios_status s = aios_model_inspect(argv[1], stdout);
    if (s) {
        int32_t h[7];
        int version;
        if (llama2c_header(argv[1], h, &version)) {
            fprintf(stderr,
                    "aios: inspect: %s: not safetensors (the format guessed from the name) but a llama2.c checkpoint "
                    "(version %d: dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab %d%s, seq_len %d); "
                    "inspect reads Hugging Face and ArrowEngine models: run it with 'aios generate --model %s'\n",
                    argv[1], version, h[0], h[1], h[2], h[3], h[4], h[5] < 0 ? -h[5] : h[5],
                    h[5] < 0 ? " unshared classifier" : "", h[6], argv[1]);
            return 1;
        }
        return aios_cli_fail("inspect", s);
    }
    return 0;
}
