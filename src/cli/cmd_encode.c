/*
 * cmd_encode.c — `aios encode`: sentence embeddings from the command line.
 *
 * Texts come from the arguments, or stdin one per line (with --jsonl each line is a JSON
 * string).  Output: one line per text — `{"embedding":[...]}` with --jsonl, else the numbers
 * separated by spaces.  A progress bar goes to stderr for long inputs when stderr is a
 * terminal (--progress forces it).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: aios encode --model DIR [options] [TEXT...]\n"
            "Sentence embeddings from a BERT-family model (Hugging Face or ArrowEngine directory).\n"
            "Texts are the arguments, or stdin one per line.\n\n"
            "options:\n"
            "  --model DIR        model directory (or AIOS_MODEL_PATH)\n"
            "  --pooling P        mean | cls | max | mean_sqrt_len | last (default: the model's)\n"
            "  --no-normalize     skip L2 normalization (default: the model's setting)\n"
            "  --normalize        force L2 normalization\n"
            "  --batch N          texts per forward pass (default 32)\n"
            "  --max-length N     truncate texts to N tokens (default: the model's limit)\n"
            "  --threads N        kernel threads (default: all cores)\n"
            "  --int8-act MODE    " AIOS_CLI_INT8_ACT_HELP
            "  --jsonl            stdin lines are JSON strings; output lines are {\"embedding\":[...]}\n"
            "  --progress         progress bar on stderr even when it is not a terminal\n"
            "  --quiet            no progress bar\n");
}

typedef struct {
    double t0;
    int shown;
} bar;

static int progress(void *user, size_t done, size_t total) {
    bar *b = user;
    int w = 40, fill = total ? (int)(w * done / total) : w;
    fprintf(stderr, "\r  [%.*s%*s] %zu/%zu", fill, "########################################", w - fill, "", done, total);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
    b->shown = 1;
    return 0;
}

/* Reads stdin into lines (without the newline); returns count or -1. */
static long read_lines(char ***out) {
    size_t cap = 64, n = 0;
    char **v = malloc(cap * sizeof *v), *line = NULL;
    size_t lc = 0;
    ssize_t len;
    if (!v) return -1;
    while ((len = getline(&line, &lc, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (n == cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) return -1;
            v = nv;
        }
        v[n++] = strdup(line);
    }
    free(line);
    *out = v;
    return (long)n;
}

int aios_cmd_encode(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    aios_encoder_params p = aios_encoder_default_params();
    const char *model = getenv("AIOS_MODEL_PATH");
    int jsonl = 0, force_bar = 0, quiet = 0, first_text = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--model") && has_val) model = argv[++i];
        else if (!strcmp(a, "--pooling") && has_val) {
            const char *v = argv[++i];
            if (!strcmp(v, "mean")) p.pooling = AIOS_POOL_MEAN;
            else if (!strcmp(v, "cls")) p.pooling = AIOS_POOL_CLS;
            else if (!strcmp(v, "max")) p.pooling = AIOS_POOL_MAX;
            else if (!strcmp(v, "mean_sqrt_len")) p.pooling = AIOS_POOL_MEAN_SQRT_LEN;
            else if (!strcmp(v, "last")) p.pooling = AIOS_POOL_LAST;
            else {
                fprintf(stderr, "aios: encode: --pooling: unknown '%s' (mean, cls, max, mean_sqrt_len, last)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--no-normalize")) p.normalize = 0;
        else if (!strcmp(a, "--normalize")) p.normalize = 1;
        else if (!strcmp(a, "--threads") && has_val) {
            if (!aios_cli_threads("encode", argv[++i], &p.n_threads)) return 2;
        } else if (!strcmp(a, "--int8-act") && has_val) {
            if (!aios_cli_int8_act("encode", argv[++i], &p.int8_act)) return 2;
            if (p.int8_act == AIOS_INT8_ACT_16) {
                fprintf(stderr, "aios: encode: --int8-act: 16 is for generation models (decoding); use on, off or auto\n");
                return 2;
            }
        } else if ((!strcmp(a, "--batch") || !strcmp(a, "--max-length")) && has_val) {
            long long v;
            if (!aios_cli_int("encode", a, argv[++i], 1, 1000000, &v)) return 2;
            if (!strcmp(a, "--batch")) p.batch_size = (int)v;
            else p.max_length = v;
        } else if (!strcmp(a, "--jsonl")) jsonl = 1;
        else if (!strcmp(a, "--progress")) force_bar = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--")) {
            first_text = i + 1;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "aios: encode: unknown option or missing value: %s (see --help)\n", a);
            return 2;
        } else {
            first_text = i;
            break;
        }
    }
    if (!model || !*model) {
        fprintf(stderr, "aios: encode: --model DIR is required\n");
        return 2;
    }
    char **texts = NULL;
    long n;
    int from_stdin = first_text >= argc;
    if (from_stdin) {
        n = read_lines(&texts);
        if (n < 0) {
            fprintf(stderr, "aios: encode: out of memory reading stdin\n");
            return 1;
        }
    } else {
        n = argc - first_text;
        texts = malloc(sizeof(char *) * (size_t)n);
        for (long i = 0; i < n; i++) texts[i] = strdup(argv[first_text + i]);
    }
    int rc = 0;
    if (jsonl && from_stdin)
        for (long i = 0; i < n; i++) {
            cJSON *j = cJSON_Parse(texts[i]);
            if (!cJSON_IsString(j)) {
                fprintf(stderr, "aios: encode: stdin line %ld: expected a JSON string\n", i + 1);
                cJSON_Delete(j);
                rc = 1;
                break;
            }
            free(texts[i]);
            texts[i] = strdup(j->valuestring);
            cJSON_Delete(j);
        }
    aios_encoder *enc = NULL;
    float *out = NULL;
    if (!rc) {
        aios_status s = aios_encoder_open(model, &p, &enc);
        if (s != AIOS_OK) rc = aios_cli_fail("encode", s);
    }
    if (!rc && n > 0) {
        int64_t dim = aios_encoder_dim(enc);
        out = malloc(sizeof(float) * (size_t)n * (size_t)dim);
        bar b = {0, 0};
        int show = !quiet && (force_bar || (isatty(2) && n >= 64));
        aios_status s = out ? aios_encode_batch(enc, (const char *const *)texts, NULL, (size_t)n, out, show ? progress : NULL, &b)
                            : AIOS_ERR_NOMEM;
        if (s != AIOS_OK) rc = aios_cli_fail("encode", s);
        for (long i = 0; !rc && i < n; i++) {
            const float *e = out + (size_t)i * (size_t)dim;
            if (jsonl) fputs("{\"embedding\":[", stdout);
            for (int64_t k = 0; k < dim; k++) printf("%s%.9g", k ? (jsonl ? "," : " ") : "", e[k]);
            fputs(jsonl ? "]}\n" : "\n", stdout);
        }
        if (fflush(stdout) != 0 && !rc) {
            fprintf(stderr, "aios: encode: writing output failed\n");
            rc = 1;
        }
    }
    aios_encoder_free(enc);
    free(out);
    for (long i = 0; i < n; i++) free(texts[i]);
    free(texts);
    return rc;
}
