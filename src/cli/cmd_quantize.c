/* cmd_quantize.c — `aios quantize IN OUT --type int8|int4|int2 ...`: Schema V2 weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void help(FILE *f) {
    fprintf(f,
            "usage: aios quantize MODEL_DIR|FILE OUT_DIR --type int8|int4|int2 [--group-size N]\n"
            "                     [--per-channel] [--symmetric] [--scale-type f32|f16] [--embed-type T]\n"
            "                     [--output-type T] [--keep PATTERN ...] [--no-default-keep] [--requantize]\n\n"
            "Writes an ArrowEngine directory whose weights.parquet is Schema V2: 2-D float weights are\n"
            "quantized (x = (q - zero_point) * scale; int8 one byte, int4 two per byte, int2 four per\n"
            "byte, most significant bits first, stored as q + 8 / q + 2); the rest keep their dtype.\n\n"
            "  --type T          int8, int4 or int2 (required)\n"
            "  --group-size N    one scale per N consecutive values of a row (rows not divisible by N\n"
            "                    fall back to one scale per row)\n"
            "  --per-channel     one scale per output row (default when no group size is given)\n"
            "  --per-tensor      one scale for the whole tensor (the prototype's layout)\n"
            "  --symmetric       zero points 0 (scale = max|x| / qmax); default asymmetric min/max\n"
            "  --scale-type S    f32 (default) or f16: scales and zero points stored as float16, as\n"
            "                    GGUF blocks store them (int4 g32 symmetric = Q4_0's 4.5 bits/value,\n"
            "                    asymmetric = Q4_1's 5.0; int8 g32 symmetric = Q8_0's 8.5)\n"
            "  --embed-type T    token embedding (also the head when it is tied): int8, int4, int2 or\n"
            "                    keep (default keep; llama.cpp gives a tied embedding its output type,\n"
            "                    Q6_K, or Q8_0 where rows are not multiples of 256: --embed-type int8)\n"
            "  --output-type T   untied output head (lm_head): int8, int4, int2 or keep (default: --type;\n"
            "                    llama.cpp's default is Q6_K: --output-type int8 is the nearest here)\n"
            "  --keep PATTERN    leave matching tensors unquantized (glob, or substring without\n"
            "                    wildcards); may repeat, and takes several patterns until the next option\n"
            "  --no-default-keep also quantize embeddings and norms (kept by default); the token\n"
            "                    embedding then gets --type unless --embed-type says otherwise\n"
            "  --requantize      quantize GGUF blocks from their float values like any other tensor\n"
            "                    (default: with --group-size 32, Q8_0 -> int8, Q4_0 -> int4 and, unless\n"
            "                    --symmetric, Q4_1 -> int4 with minima are transcoded block for block,\n"
            "                    every value unchanged; docs/quantization.md)\n"
            "Groups, per-channel and symmetry apply to every quantized tensor, whatever its type.\n");
}

/* int8|int4|int2 -> 8/4/2, keep -> AIOS_QUANT_KEEP (when allowed), else 0. */
static int parse_type(const char *t, int allow_keep) {
    if (!strcmp(t, "int8")) return 8;
    if (!strcmp(t, "int4")) return 4;
    if (!strcmp(t, "int2")) return 2;
    return allow_keep && !strcmp(t, "keep") ? AIOS_QUANT_KEEP : 0;
}

int aios_cmd_quantize(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    aios_quantize_params p = aios_quantize_default_params();
    const char *pos[2] = {0};
    int npos = 0, have_type = 0;
    const char **keep = calloc((size_t)argc + 1, sizeof *keep);
    int nkeep = 0;
    if (!keep) return aios_cli_fail("quantize", AIOS_ERR_NOMEM);
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--type") && i + 1 < argc) {
            const char *t = argv[++i];
            p.bits = parse_type(t, 0);
            if (!p.bits) {
                fprintf(stderr, "aios: quantize: --type must be int8, int4 or int2, not '%s'\n", t);
                rc = 2;
            }
            have_type = 1;
        } else if (!strcmp(a, "--group-size") && i + 1 < argc) {
            char *end;
            long g = strtol(argv[++i], &end, 10);
            if (*end || g < 1 || g > (1 << 24)) {
                fprintf(stderr, "aios: quantize: --group-size must be a positive integer, not '%s'\n", argv[i]);
                rc = 2;
            }
            p.group_size = (int32_t)g;
        } else if ((!strcmp(a, "--embed-type") || !strcmp(a, "--output-type")) && i + 1 < argc) {
            int b = parse_type(argv[++i], 1);
            if (!b) {
                fprintf(stderr, "aios: quantize: %s must be int8, int4, int2 or keep, not '%s'\n", a, argv[i]);
                rc = 2;
            }
            *(a[2] == 'e' ? &p.embed_bits : &p.output_bits) = b;
        } else if (!strcmp(a, "--scale-type") && i + 1 < argc) {
            const char *t = argv[++i];
            if (strcmp(t, "f32") && strcmp(t, "f16")) {
                fprintf(stderr, "aios: quantize: --scale-type must be f32 or f16, not '%s'\n", t);
                rc = 2;
            }
            p.f16_scales = !strcmp(t, "f16");
        } else if (!strcmp(a, "--per-channel")) {
            p.per_channel = 1;
        } else if (!strcmp(a, "--per-tensor")) {
            p.per_channel = 0;
        } else if (!strcmp(a, "--symmetric")) {
            p.symmetric = 1;
        } else if (!strcmp(a, "--requantize")) {
            p.requantize = 1;
        } else if (!strcmp(a, "--no-default-keep")) {
            p.keep_defaults = 0;
        } else if (!strcmp(a, "--keep") && i + 1 < argc) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) keep[nkeep++] = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "aios: quantize: unknown or incomplete option '%s' (see 'aios quantize --help')\n", a);
            rc = 2;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "aios: quantize: unexpected argument '%s'\n", a);
            rc = 2;
        }
    }
    if (!rc && (npos != 2 || !have_type)) {
        fprintf(stderr, "usage: aios quantize MODEL_DIR|FILE OUT_DIR --type int8|int4|int2 (see 'aios quantize --help')\n");
        rc = 2;
    }
    if (!rc) {
        p.keep = nkeep ? keep : NULL;
        aios_status s = aios_model_quantize(pos[0], pos[1], &p);
        if (s) rc = aios_cli_fail("quantize", s);
        else fprintf(stderr, "aios: quantize: wrote %s/weights.parquet (Schema V2) and metadata.json\n", pos[1]);
    }
    free(keep);
    return rc;
}
