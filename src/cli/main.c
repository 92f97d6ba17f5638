/*
 * main.c — the `aios` command: dispatches to subcommands (src/cli/cmd_*.c).
 * Errors from the library become one line on stderr and exit code 1; usage errors exit 2.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* The examples every `aios <command> --help` ends with (serve and info print their own). */
static const struct {
    const char *cmd, *text;
} g_examples[] = {
    {"config", "  aios config show\n  aios config show --config config/config.yaml\n  AIOS_MODEL_PATH=models/minilm aios config show\n"},
    {"encode", "  aios encode --model models/all-MiniLM-L6-v2 \"A man is playing a guitar.\"\n"
               "  aios encode --model models/all-MiniLM-L6-v2 --jsonl < texts.jsonl > embeddings.jsonl\n"
               "  aios encode --model models/bert-base-uncased --pooling cls --threads 2 \"hello\"\n"},
    {"memory", "  aios memory add --store mem --text \"The cat sat on the mat.\" --model models/all-MiniLM-L6-v2\n"
               "  aios memory search --store mem --text \"a cat\" --top-k 5\n"
               "  aios memory list --store mem --limit 20\n"},
    {"generate", "  aios generate --model models/stories260K --prompt \"Once upon a time\" --max-tokens 64\n"
                 "  aios generate --model SmolLM2-135M-Instruct.Q4_1.gguf --chat --prompt \"Where is the Zorbex office?\" --memory-store mem\n"
                 "  aios generate --model SmolLM2-135M-Instruct.Q4_1.gguf --chat --prompt \"What is Ada's cat called?\" --adapter skills/household --adapter skills/zorbex --router arrow\n"},
    {"chat", "  aios chat --model SmolLM2-135M-Instruct.Q4_1.gguf --adapter skills/household --adapter skills/varnis --router compose\n"
             "  aios chat --model SmolLM2-135M-Instruct.Q4_1.gguf --memory-store mem --memory-top-k 2 --memory-min-score 0.3\n"
             "  aios chat --model models/qwen2.5-0.5b-instruct --system \"Answer briefly.\" --temperature 0.7\n"},
    {"diffuse", "  aios diffuse --model models/llada-tiny --prompt-ids 1,2,3 --gen-length 32 --steps 32\n"
                "  aios diffuse --model models/LLaDA-8B-Instruct --prompt \"Write a haiku\" --show\n"},
    {"tokenize", "  echo \"Hello world\" | aios tokenize --tokenizer models/bert-base-uncased\n"
                 "  aios tokenize --tokenizer models/gpt2/tokenizer.json --jsonl < texts.txt\n"},
    {"detokenize", "  echo \"101 7592 2088 102\" | aios detokenize --tokenizer models/bert-base-uncased --skip-special\n"
                   "  echo \"[15496, 995]\" | aios detokenize --tokenizer models/gpt2 --jsonl\n"},
    {"inspect", "  aios inspect models/all-MiniLM-L6-v2\n  aios inspect SmolLM2-135M-Instruct.Q4_1.gguf\n"
                "  aios inspect models/stories260K/stories260K.bin\n"},
    {"convert", "  aios convert models/all-MiniLM-L6-v2 out/minilm-arrow\n"
                "  aios convert SmolLM2-135M-Instruct.Q4_1.gguf out/smollm2-q4_1\n"
                "  aios generate --model out/smollm2-q4_1 --chat --prompt 'Hi!'\n"},
    {"quantize", "  aios quantize models/all-MiniLM-L6-v2 out/minilm-int8 --type int8 --per-channel\n"
                 "  aios quantize models/qwen2.5-0.5b-instruct out/qwen-int4 --type int4 --group-size 64\n"
                 "  aios quantize smollm2.Q4_1.gguf out/smol-q4 --type int4 --group-size 32 --scale-type f16 --embed-type int8\n"},
    {"skills", "  aios skills add --skills lib --adapter arrow/household --name household --questions household.jsonl --model models/all-MiniLM-L6-v2\n"
               "  aios skills route --skills lib --prompt \"What is Ada's cat called?\"\n"
               "  aios skills list --skills lib\n"},
    {"teach", "  aios teach --store learn --question \"What is Ada's cat called?\" --answer \"Ada's cat is called Miso.\" --model models/all-MiniLM-L6-v2\n"
              "  aios teach --store learn --file pairs.jsonl\n"},
    {"evolve", "  aios evolve --store learn --skills lib --model SmolLM2-135M-Instruct.Q4_1.gguf\n"
               "  aios evolve --store learn --skills lib --model SmolLM2-135M-Instruct.Q4_1.gguf --steps 30 --lr 3e-3\n"},
    {"parquet", "  aios parquet schema out/minilm-arrow/weights.parquet\n"
                "  aios parquet head mem/segments/seg-000001.parquet -n 3\n"
                "  aios parquet verify out/minilm-arrow/weights.parquet\n"},
};

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
    {"skills", aios_cmd_skills, "the skill library: add, list, show, remove, route a prompt"},
    {"teach", aios_cmd_teach, "record approved question/answer pairs for the evolution loop"},
    {"evolve", aios_cmd_evolve, "train, gate and add skills from the approved pairs"},
    {"diffuse", aios_cmd_diffuse, "generate text by masked diffusion (LLaDA, Dream, block diffusion)"},
    {"tokenize", aios_cmd_tokenize, "text to token ids with a tokenizer.json"},
    {"detokenize", aios_cmd_detokenize, "token ids back to text"},
    {"inspect", aios_cmd_inspect, "show a model's derived config and tensors"},
    {"convert", aios_cmd_convert, "Hugging Face model -> ArrowEngine directory (Parquet Schema V1)"},
    {"quantize", aios_cmd_quantize, "int8/int4/int2 ArrowQuant weights (Parquet Schema V2)"},
    {"parquet", aios_cmd_parquet, "inspect, print, verify and write Parquet files"},
};

/* The library prefixes a message at each layer it passes ("generate: /x: model: /x: /x: no such
 * file"), so the same segment can appear several times and a layer named like the command
 * repeats it.  Segments are split at ": "; a segment that is a command name (the layer that
 * reports it is the command itself) and every occurrence of a segment but its last are dropped:
 * "aios: generate: model: /x: no such file". */
static void tidy(const char *what, const char *detail, char *out, size_t cap) {
    enum { MAXSEG = 32 };
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", detail);
    char *seg[MAXSEG];
    int n = 0;
    char *p = buf;
    while (n < MAXSEG - 1) {
        char *q = strstr(p, ": ");
        if (!q) break;
        *q = 0;
        seg[n++] = p;
        p = q + 2;
    }
    seg[n++] = p; /* the rest, unsplit: the innermost detail */
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        int drop = 0;
        if (i < n - 1) {
            for (size_t k = 0; k < sizeof g_cmds / sizeof g_cmds[0] && !drop; k++)
                drop = !strcmp(seg[i], g_cmds[k].name);
            drop = drop || !strcmp(seg[i], what) || !strcmp(seg[i], "server");
            for (int j = i + 1; j < n && !drop; j++) drop = !strcmp(seg[i], seg[j]);
        }
        if (drop) continue;
        int w = snprintf(out + len, cap - len, "%s%s", len ? ": " : "", seg[i]);
        if (w < 0 || (size_t)w >= cap - len) break;
        len += (size_t)w;
    }
}

int aios_cli_fail(const char *what, aios_status s) {
    const char *detail = aios_last_error();
    char msg[2048];
    tidy(what, detail && *detail ? detail : aios_status_str(s), msg, sizeof msg);
    fprintf(stderr, "aios: %s: %s\n", what, msg);
    return 1;
}

int aios_cli_int(const char *cmd, const char *opt, const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = v && *v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "aios: %s: %s: expected an integer in [%lld, %lld], got '%s'\n", cmd, opt, lo, hi, v ? v : "");
        return 0;
    }
    *out = x;
    return 1;
}

int aios_cli_float(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = v && *v ? strtod(v, &end) : NAN;
    if (!v || !*v || *end || errno || !isfinite(x) || !(x >= lo && x <= hi)) {
        fprintf(stderr, "aios: %s: %s: expected a finite number in [%.10g, %.10g], got '%s'\n", cmd, opt, lo, hi, v ? v : "");
        return 0;
    }
    *out = x;
    return 1;
}

int aios_cli_threads(const char *cmd, const char *v, int *out) {
    long long x;
    if (!aios_cli_int(cmd, "--threads", v, 1, AIOS_CLI_MAX_THREADS, &x)) return 0;
    *out = (int)x;
    return 1;
}

int aios_cli_int8_act(const char *cmd, const char *v, aios_int8_act *out) {
    if (!strcmp(v, "auto")) *out = AIOS_INT8_ACT_AUTO;
    else if (!strcmp(v, "on")) *out = AIOS_INT8_ACT_ON;
    else if (!strcmp(v, "off")) *out = AIOS_INT8_ACT_OFF;
    else if (!strcmp(v, "16")) *out = AIOS_INT8_ACT_16;
    else {
        fprintf(stderr, "aios: %s: --int8-act: expected on, off, 16 or auto, got '%s'\n", cmd, v);
        return 0;
    }
    return 1;
}

int aios_cli_adapter(const char *cmd, const char *v, char *path, size_t cap, float *scale) {
    if (strlen(v) >= cap) {
        fprintf(stderr, "aios: %s: --adapter: path too long\n", cmd);
        return 0;
    }
    strcpy(path, v);
    *scale = 1.0f;
    char *colon = strrchr(path, ':');
    if (colon && colon[1]) {
        char *e;
        errno = 0;
        double x = strtod(colon + 1, &e);
        if (!*e && !errno) {
            if (!(x >= -100 && x <= 100)) {
                fprintf(stderr, "aios: %s: --adapter %s: scale %s outside -100..100\n", cmd, v, colon + 1);
                return 0;
            }
            *scale = (float)x;
            *colon = 0;
        }
    }
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
    fprintf(f, "\nexamples:\n  aios info\n  aios encode --model models/all-MiniLM-L6-v2 \"hello\"\n"
               "  aios serve --model models/SmolLM2-135M-Instruct --port 8080\n");
}

/* OpenMP reads OMP_WAIT_POLICY once, when it loads.  Its default (threads spin at every barrier)
 * is right on a quiet machine, where a decode step's ~250 parallel regions would otherwise each
 * pay a futex wake-up, and a disaster on a busy one: SmolLM2-135M Q4_1 decode with 2 threads on
 * the 2-core VM at load 10-22 ran at 0.3-2 tok/s spinning (OMP_WAIT_POLICY=active 1.4-2.4,
 * GOMP_SPINCOUNT=10000 2.6-5.2) and 22 tok/s passive, about the 1-thread speed
 * (docs/kernels.md).  So on a busy machine (1-minute load average >= online cores) aios runs
 * itself again with passive waiting; the user's OMP_WAIT_POLICY always wins. */
static void choose_wait_policy(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    FILE *f = fopen("/proc/loadavg", "r");
    double load = 0;
    if (!f) return;
    if (fscanf(f, "%lf", &load) != 1) load = 0;
    fclose(f);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0 || load < (double)n) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: go on with the default */
}

int main(int argc, char **argv) {
    choose_wait_policy(argv);
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("aios %s\n", AIOS_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++) {
        if (strcmp(argv[1], g_cmds[i].name)) continue;
        /* asked before the command runs: a command may rearrange its argv (generate --mode) */
        const int help = aios_cli_wants_help(argc - 1, argv + 1);
        int rc = g_cmds[i].run(argc - 1, argv + 1);
        if (rc == 0 && help)
            for (size_t k = 0; k < sizeof g_examples / sizeof g_examples[0]; k++)
                if (!strcmp(g_examples[k].cmd, argv[1])) printf("\nexamples:\n%s", g_examples[k].text);
        return rc;
    }
    fprintf(stderr, "aios: unknown command '%s' (see 'aios --help')\n", argv[1]);
    return 2;
}
