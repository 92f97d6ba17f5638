/*
 * cmd_generate.c — `aios generate` (one prompt, streamed to stdout) and `aios chat` (an
 * interactive loop that keeps the conversation; the generator reuses the cached prefix of the
 * previous turn, so each turn only prefills what is new).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef AIOS_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_memory.h"
#include "cli/cli_skills.h"

typedef struct {
    const char *model, *prompt, *prompt_ids, *system;
    int chat, ids, stats, n_stop;
    const char *stop[17];
    aios_generate_params gp;
    int64_t n_ctx;
    aios_kv_type kv_type; /* --kv-type */
    aios_int8_act int8_act; /* --int8-act */
    int threads;
    char adapter[16][4096];
    float adapter_scale[16];
    int n_adapters;
    aios_router router; /* --router (with --router-top-k, --router-temperature) */
    int router_top_k;
    float router_temperature;
    int jsonl;
    aios_cli_mem mem; /* --memory-* */
    aios_cli_skills sk; /* --skills, --router, --learn-store */
} gen_opts;

/* Sampling options, shared by generate and chat. */
#define SAMPLING_HELP \
    "  --max-tokens N       new tokens at most (default 256)\n" \
    "  --temperature T      0 = greedy (default 0)\n" \
    "  --top-k K            keep the K most probable tokens (0 = off)\n" \
    "  --top-p P            nucleus sampling mass (1 = off)\n" \
    "  --min-p P            drop tokens below P x the top probability (0 = off)\n" \
    "  --repeat-penalty R   repetition penalty (1 = off)\n" \
    "  --presence-penalty X, --frequency-penalty X   OpenAI-style penalties (0 = off)\n" \
    "  --seed S             sampler seed (default: from the clock; printed with --stats)\n" \
    "  --stop TEXT          stop string (repeatable, up to 16)\n"

/* How the adapters combine; generate and chat share it. */
#define ROUTER_HELP \
    "  --router R           none (the adapters summed at their scales; default), arrow (per\n" \
    "                       token and layer, the top-k adapters by their prototypes; Arrow as in\n" \
    "                       PEFT), compose (the next-token logits of the base and of each adapter\n" \
    "                       alone, weighted by the scales; the base takes what is left of 1)\n" \
    "  --router-top-k K     arrow: adapters per token (default 2)\n" \
    "  --router-temperature T  arrow: softmax temperature (default 1)\n"

static void usage_generate(FILE *f) {
    fprintf(f,
            "usage: aios generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [options]\n\n"
            "Generates text autoregressively and streams it to stdout.\n\n"
            "  --model DIR          Hugging Face or Parquet model directory, a GGUF file (tokenizer and\n"
            "                       chat template from its metadata), or a llama2.c .bin\n"
            "  --prompt TEXT        prompt text (tokenized with the model's tokenizer)\n"
            "  --prompt-ids LIST    prompt as comma-separated token ids (used as given)\n"
            "  --mode ar|diffusion  diffusion runs 'aios diffuse' (see its --help) with these arguments\n"
            SAMPLING_HELP
            "  --chat               wrap the prompt in the model's chat template\n"
            "  --system TEXT        system message for --chat\n"
            "  --ignore-eos         keep going past EOS\n"
            "  --ids                print the full id sequence (prompt included), space-separated\n"
            "  --ctx N              context length (default min(model's, 4096))\n"
            "  --kv-type T          KV cache element type: f32 (default) or f16 (half the memory,\n"
            "                       faster decode after long prompts; llama.cpp's default)\n"
            "  --int8-act M         activations of quantized weights for integer dot products: 16\n"
            "                       (16-bit, within ~3e-4 of exact at near int8 speed), on (int8:\n"
            "                       faster, within docs/kernels.md's budgets), off (exact float),\n"
            "                       auto (default: AIOS_INT8_ACT=0/1/16 if set, else 16 for quantized\n"
            "                       weights on AVX2 CPUs and 4- / 5-bit ones on AVX-512 VNNI CPUs, off\n"
            "                       otherwise; --stats names it)\n"
            "  --threads N          kernel threads\n"
            "  --adapter PATH[:S]   LoRA adapter (PEFT directory or skill card .parquet) at scale S\n"
            "                       (default 1); repeatable, up to 16 at once\n"
            ROUTER_HELP
            "  --stats              timings and tokens/s on stderr\n"
            "  --jsonl              print one JSON object: text, prompt, token counts, stop reason,\n"
            "                       memory sources, skills used, uncertainty (per token and score)\n"
            "%s%s"
            "  (with --skills, --top-k is the router's; --sample-top-k K is the sampler's)\n",
            AIOS_CLI_MEM_USAGE, AIOS_CLI_SKILLS_USAGE);
}

/* The router options: 0 when `a` is not one of them, 1 when it took the value v, -1 on an
 * error (printed).  One function so that other router-related options join here. */
static int parse_router_opt(gen_opts *o, const char *cmd, const char *a, const char *v) {
    if (strcmp(a, "--router") && strcmp(a, "--router-top-k") && strcmp(a, "--router-temperature")) return 0;
    if (!v) {
        fprintf(stderr, "aios: %s: %s: needs a value\n", cmd, a);
        return -1;
    }
    if (!strcmp(a, "--router")) {
        if (!strcmp(v, "semantic")) { /* routing by meaning picks from a library */
            fprintf(stderr, "aios: %s: --router semantic needs --skills LIB\n", cmd);
            return -1;
        }
        if (aios_router_parse(v, &o->router) != AIOS_OK) {
            fprintf(stderr, "aios: %s: --router: '%s' is not one of none, arrow, compose (semantic: with --skills)\n", cmd, v);
            return -1;
        }
    } else if (!strcmp(a, "--router-top-k")) {
        long long n;
        if (!aios_cli_int(cmd, a, v, 1, 16, &n)) return -1;
        o->router_top_k = (int)n;
    } else {
        double x;
        if (!aios_cli_float(cmd, a, v, 1e-3, 1e3, &x)) return -1;
        o->router_temperature = (float)x;
    }
    return 1;
}

/* "PATH[:SCALE]": the part after the last ':' is a scale when it parses as a number. */
static int parse_adapter(gen_opts *o, const char *cmd, const char *v) {
    if (o->n_adapters >= 16) {
        fprintf(stderr, "aios: %s: --adapter: at most 16 adapters\n", cmd);
        return 0;
    }
    if (!aios_cli_adapter(cmd, v, o->adapter[o->n_adapters], sizeof o->adapter[0], &o->adapter_scale[o->n_adapters]))
        return 0;
    o->n_adapters++;
    return 1;
}


static int parse_num(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out) {
    return aios_cli_float(cmd, opt, v, lo, hi, out);
}

/* Parses shared options; returns -1 ok, else an exit code. */
static int parse_opts(int argc, char **argv, gen_opts *o, int is_chat) {
    memset(o, 0, sizeof *o);
    o->kv_type = aios_generator_default_params().kv_type;
    aios_cli_mem_init(&o->mem);
    aios_cli_skills_init(&o->sk);
    for (int i = 1; i + 1 < argc; i++) /* with --skills anywhere, --top-k is the router's */
        if (!strcmp(argv[i], "--skills")) o->sk.lib_dir = argv[i + 1];
    o->gp = aios_generate_default_params();
    o->gp.seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    o->router = AIOS_ROUTER_NONE;
    o->router_top_k = 2;
    o->router_temperature = 1.0f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        /* with --skills the library's options own --router / --top-k / --router-temperature;
         * without, --router names how the --adapter list combines */
        int mo = aios_cli_mem_option(&o->mem, a, v);
        if (mo == 0 && o->sk.lib_dir) mo = aios_cli_skills_option(&o->sk, argv[0], a, v);
        if (mo == 0) mo = parse_router_opt(o, argv[0], a, v);
        if (mo == 0 && !o->sk.lib_dir) mo = aios_cli_skills_option(&o->sk, argv[0], a, v);
        if (mo < 0) return 2;
        if (mo > 0) {
            i++;
            continue;
        }
#define NEEDV()                                                       \
    do {                                                              \
        if (!v) {                                                     \
            fprintf(stderr, "aios: %s: %s: needs a value\n", argv[0], a);           \
            return 2;                                                 \
        }                                                             \
        i++;                                                          \
    } while (0)
        if (!strcmp(a, "--model")) {
            NEEDV();
            o->model = v;
        } else if (!strcmp(a, "--prompt") && !is_chat) {
            NEEDV();
            o->prompt = v;
        } else if (!strcmp(a, "--prompt-ids") && !is_chat) {
            NEEDV();
            o->prompt_ids = v;
        } else if (!strcmp(a, "--system")) {
            NEEDV();
            o->system = v;
        } else if (!strcmp(a, "--max-tokens")) {
            NEEDV();
            long long n;
            if (!aios_cli_int(argv[0], a, v, 0, 1 << 24, &n)) return 2;
            x = (double)n;
            o->gp.max_tokens = (int)x;
        } else if (!strcmp(a, "--temperature")) {
            NEEDV();
            if (!parse_num(argv[0], a, v, 0, 100, &x)) return 2;
            o->gp.temperature = (float)x;
        } else if (!strcmp(a, "--top-k") || !strcmp(a, "--sample-top-k")) {
            NEEDV();
            long long n;
            if (!aios_cli_int(argv[0], a, v, 0, 1 << 24, &n)) return 2;
            x = (double)n;
            o->gp.top_k = (int)x;
        } else if (!strcmp(a, "--top-p")) {
            NEEDV();
            if (!parse_num(argv[0], a, v, 0, 1, &x)) return 2;
            o->gp.top_p = (float)x;
        } else if (!strcmp(a, "--min-p")) {
            NEEDV();
            if (!parse_num(argv[0], a, v, 0, 1, &x)) return 2;
            o->gp.min_p = (float)x;
        } else if (!strcmp(a, "--repeat-penalty")) {
            NEEDV();
            if (!parse_num(argv[0], a, v, 0.01, 100, &x)) return 2;
            o->gp.repetition_penalty = (float)x;
        } else if (!strcmp(a, "--presence-penalty")) {
            NEEDV();
            if (!parse_num(argv[0], a, v, -100, 100, &x)) return 2;
            o->gp.presence_penalty = (float)x;
        } else if (!strcmp(a, "--frequency-penalty")) {
            NEEDV();
            if (!parse_num(argv[0], a, v, -100, 100, &x)) return 2;
            o->gp.frequency_penalty = (float)x;
        } else if (!strcmp(a, "--seed")) {
            NEEDV();
            char *e;
            errno = 0;
            unsigned long long sv = strtoull(v, &e, 10);
            if (!*v || *e || errno || *v == '-') {
                fprintf(stderr, "aios: %s: --seed: expected an integer in [0, 2^64), got '%s'\n", argv[0], v);
                return 2;
            }
            o->gp.seed = sv;
        } else if (!strcmp(a, "--stop")) {
            NEEDV();
            if (o->n_stop >= 16) {
                fprintf(stderr, "aios: %s: --stop: at most 16 stop strings\n", argv[0]);
                return 2;
            }
            o->stop[o->n_stop++] = v;
        } else if (!strcmp(a, "--ctx")) {
            NEEDV();
            long long n;
            if (!aios_cli_int(argv[0], a, v, 1, 1 << 24, &n)) return 2;
            x = (double)n;
            o->n_ctx = (int64_t)x;
        } else if (!strcmp(a, "--int8-act")) {
            NEEDV();
            if (!aios_cli_int8_act(argv[0], v, &o->int8_act)) return 2;
        } else if (!strcmp(a, "--kv-type")) {
            NEEDV();
            if (!strcmp(v, "f32") || !strcmp(v, "float32"))
                o->kv_type = AIOS_KV_F32;
            else if (!strcmp(v, "f16") || !strcmp(v, "float16"))
                o->kv_type = AIOS_KV_F16;
            else {
                fprintf(stderr, "aios: %s: --kv-type: expected f32 or f16, got '%s'\n", argv[0], v);
                return 2;
            }
        } else if (!strcmp(a, "--threads")) {
            NEEDV();
            if (!aios_cli_threads(argv[0], v, &o->threads)) return 2;
        } else if (!strcmp(a, "--chat") && !is_chat) {
            o->chat = 1;
        } else if (!strcmp(a, "--ids") && !is_chat) {
            o->ids = 1;
        } else if (!strcmp(a, "--jsonl") && !is_chat) {
            o->jsonl = 1;
        } else if (!strcmp(a, "--ignore-eos")) {
            o->gp.ignore_eos = 1;
        } else if (!strcmp(a, "--stats")) {
            o->stats = 1;
        } else if (!strcmp(a, "--adapter")) {
            NEEDV();
            if (!parse_adapter(o, argv[0], v)) return 2;
        } else {
            fprintf(stderr, "aios: %s: unknown option '%s' (see 'aios %s --help')\n", argv[0], a, argv[0]);
            return 2;
        }
#undef NEEDV
    }
    o->stop[o->n_stop] = NULL;
    if (o->n_stop) o->gp.stop = o->stop;
    if (!o->model) {
        fprintf(stderr, "aios: %s: --model is required\n", argv[0]);
        return 2;
    }
    if (aios_cli_mem_check(&o->mem, argv[0])) return 2;
    o->sk.arrow_top_k = o->router_top_k;
    if (aios_cli_skills_check(&o->sk, argv[0])) return 2;
    if (o->jsonl && o->ids) {
        fprintf(stderr, "aios: %s: --jsonl and --ids exclude each other\n", argv[0]);
        return 2;
    }
    return -1;
}

/* chat: set by SIGINT (Ctrl-C); the reply in progress stops at its next token */
static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static int on_piece(void *user, int32_t id, const char *text, size_t len) {
    (void)user, (void)id;
    if (len) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
    return g_interrupted != 0;
}

static aios_status open_gen(const gen_opts *o, aios_generator **g) {
    aios_generator_params gp = aios_generator_default_params();
    gp.n_ctx = o->n_ctx;
    gp.n_threads = o->threads;
    gp.kv_type = o->kv_type;
    gp.int8_act = o->int8_act;
    aios_status s = aios_generator_open(o->model, &gp, g);
    for (int i = 0; s == AIOS_OK && i < o->n_adapters; i++) s = aios_generator_adapter_add(*g, o->adapter[i], o->adapter_scale[i], NULL);
    if (s == AIOS_OK && o->router != AIOS_ROUTER_NONE && !aios_generator_adapter_count(*g))
        s = aios__err(AIOS_ERR_INVALID_ARG, "--router %s needs adapters (--adapter PATH)", o->router == AIOS_ROUTER_ARROW ? "arrow" : "compose");
    if (s == AIOS_OK) s = aios_generator_set_router(*g, o->router, o->router_top_k, o->router_temperature);
    if (s != AIOS_OK && *g) {
        aios_generator_free(*g);
        *g = NULL;
    }
    return s;
}

static void print_stats(const aios_generator *g, const aios_generate_result *r, uint64_t seed) {
    size_t gen = r->n_ids - r->n_prompt;
    size_t pre = r->n_prompt - r->n_reused;
    const aios_int8_act a = aios_generator_int8_act(g);
    fprintf(stderr,
            "\n[prompt %zu tokens (%zu reused), prefill %.3f s = %.1f tok/s; %zu generated, %.3f s = %.1f tok/s; seed %llu; "
            "activations %s]\n",
            r->n_prompt, r->n_reused, r->prefill_s, r->prefill_s > 0 ? pre / r->prefill_s : 0.0, gen, r->decode_s,
            r->decode_s > 0 ? gen / r->decode_s : 0.0, (unsigned long long)seed,
            a == AIOS_INT8_ACT_16 ? "16-bit" : a == AIOS_INT8_ACT_ON ? "int8" : "exact");
}

int aios_cmd_generate(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage_generate(stdout);
        return 0;
    }
    int mrc = aios_cli_generate_mode(&argc, argv); /* --mode diffusion routes to `aios diffuse` */
    if (mrc >= 0) return mrc;
    gen_opts o;
    int rc = parse_opts(argc, argv, &o, 0);
    if (rc >= 0) return rc;
    if (!o.prompt == !o.prompt_ids) {
        fprintf(stderr, "aios: generate: give exactly one of --prompt and --prompt-ids\n");
        return 2;
    }
    if (o.chat && !o.prompt) {
        fprintf(stderr, "aios: generate: --chat needs --prompt\n");
        return 2;
    }
    if (o.mem.store && !o.prompt) {
        fprintf(stderr, "aios: generate: --memory-store needs a text --prompt (it is the query)\n");
        return 2;
    }
    int32_t *pids = NULL;
    size_t np = 0;
    if (o.prompt_ids) {
        size_t cap = strlen(o.prompt_ids) / 2 + 2;
        pids = malloc(cap * sizeof *pids);
        const char *q = o.prompt_ids;
        while (*q) {
            char *e;
            errno = 0;
            long v = strtol(q, &e, 10);
            if (e == q || errno || v < 0 || v > INT32_MAX || (*e && *e != ',') || np >= cap) {
                fprintf(stderr, "aios: generate: --prompt-ids: expected comma-separated ids, got '%s'\n", o.prompt_ids);
                free(pids);
                return 2;
            }
            pids[np++] = (int32_t)v;
            q = *e ? e + 1 : e;
        }
        if (!np) {
            fprintf(stderr, "aios: generate: --prompt-ids is empty\n");
            free(pids);
            return 2;
        }
    }
    if (o.sk.lib_dir && o.sk.router != CLI_ROUTER_NONE && !o.prompt) {
        fprintf(stderr, "aios: generate: --skills needs a text --prompt (it is what is routed)\n");
        free(pids);
        return 2;
    }
    aios_generator *g = NULL;
    aios_status s = open_gen(&o, &g);
    if (!s && (s = aios_cli_skills_open(&o.sk)) == AIOS_OK && o.sk.lib) {
        s = aios_cli_skills_apply(&o.sk, g, o.prompt);
        if (!s) aios_cli_skills_report(&o.sk, stderr);
    }
    if (s) {
        free(pids);
        aios_cli_skills_free(&o.sk);
        aios_generator_free(g);
        return aios_cli_fail("generate", s);
    }
    int show_unc = o.sk.lib || o.sk.learn_store || o.stats;
    char *chat_text = NULL;
    const char *prompt = o.prompt;
    aios_chat_message m[2];
    size_t nm = 0;
    if (o.chat && o.system) m[nm].role = "system", m[nm++].content = o.system;
    if (o.prompt) m[nm].role = "user", m[nm++].content = o.prompt;
    if (o.mem.store) {
        if ((s = aios_cli_mem_open(&o.mem)) != AIOS_OK ||
            (s = aios_cli_mem_prompt(&o.mem, g, m, nm, o.chat, o.prompt, o.gp.max_tokens)) != AIOS_OK) {
            aios_cli_mem_free(&o.mem);
            aios_generator_free(g);
            return aios_cli_fail("generate", s);
        }
        aios_cli_mem_report(&o.mem, stderr);
        prompt = o.mem.last.prompt;
    } else if (o.chat) {
        if ((s = aios_generator_chat_prompt(g, m, nm, &chat_text)) != AIOS_OK) {
            aios_generator_free(g);
            return aios_cli_fail("generate", s);
        }
        prompt = chat_text;
    }
    if (!o.ids && !o.jsonl) o.gp.on_token = on_piece;
    aios_generate_result r;
    s = aios_generate(g, prompt, pids, np, &o.gp, &r);
    if (s == AIOS_OK) {
        if (o.ids) {
            for (size_t i = 0; i < r.n_ids; i++) printf("%s%d", i ? " " : "", r.ids[i]);
            printf("\n");
        } else if (o.jsonl) {
            static const char *const STOPS[] = {"length", "eos", "stop", "callback", "context"};
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "text", r.text ? r.text : "");
            if (prompt) cJSON_AddStringToObject(j, "prompt", prompt);
            cJSON_AddNumberToObject(j, "prompt_tokens", (double)r.n_prompt);
            cJSON_AddNumberToObject(j, "completion_tokens", (double)(r.n_ids - r.n_prompt));
            cJSON_AddStringToObject(j, "stop", STOPS[r.stop]);
            cJSON_AddNumberToObject(j, "prefill_s", r.prefill_s);
            cJSON_AddNumberToObject(j, "decode_s", r.decode_s);
            if (o.mem.store) cJSON_AddItemToObject(j, "memory", aios_cli_mem_json(&o.mem));
            cJSON_AddItemToObject(j, "skills", aios_cli_skills_json(&o.sk));
            cJSON_AddItemToObject(j, "uncertainty", aios_cli_uncertainty_json(&o.sk, aios_generator_uncertainty(g)));
            char *t = cJSON_PrintUnformatted(j);
            if (t) puts(t);
            free(t);
            cJSON_Delete(j);
        } else {
            printf("\n");
        }
        if (o.stats) print_stats(g, &r, o.gp.seed);
        if (show_unc) aios_cli_skills_report_uncertainty(&o.sk, aios_generator_uncertainty(g), stderr);
        int queued = 0;
        if (o.prompt && (s = aios_cli_skills_queue(&o.sk, aios_generator_uncertainty(g), o.prompt, r.text, o.model, &queued)) == AIOS_OK &&
            queued)
            fprintf(stderr, "[uncertain: queued for learning in %s]\n", o.sk.learn_store);
    }
    aios_generate_result_free(&r);
    aios_cli_skills_free(&o.sk);
    free(chat_text);
    free(pids);
    aios_cli_mem_free(&o.mem);
    aios_generator_free(g);
    return s ? aios_cli_fail("generate", s) : 0;
}

/* ------------------------------------------------------------------------------------------ */

static void usage_chat(FILE *f) {
    fprintf(f,
            "usage: aios chat --model DIR [--system TEXT] [--adapter PATH[:S] ... [--router R]] [options]\n"
            "                 [--memory-store DIR [--memory-top-k K] ...]\n\n"
            "Interactive chat: type a message and press Enter; the reply streams back.  The\n"
            "conversation is kept (formatted with the model's chat template).  Commands: /reset\n"
            "starts over, /sources lists the memories placed in the last prompt, /teach ANSWER records\n"
            "the right answer to the last question (with --learn-store), /quit (or end of input)\n"
            "leaves.  With --memory-store each message is the query; the memories used are listed on\n"
            "stderr; with --skills each message is routed and the skills that answered and the\n"
            "answer's uncertainty are shown on stderr.\n\n"
            "  --model DIR|FILE     Hugging Face or Parquet model directory, a GGUF file, or a llama2.c .bin\n"
            "  --system TEXT        system message\n"
            SAMPLING_HELP
            "  --ignore-eos         keep going past EOS\n"
            "  --ctx N              context length (default min(model's, 4096))\n"
            "  --kv-type T          KV cache element type: f32 (default) or f16 (half the memory,\n"
            "                       faster decode after long prompts; llama.cpp's default)\n"
            "  --int8-act M         activations of quantized weights for integer dot products: 16\n"
            "                       (16-bit, within ~3e-4 of exact at near int8 speed), on (int8:\n"
            "                       faster, within docs/kernels.md's budgets), off (exact float),\n"
            "                       auto (default: AIOS_INT8_ACT=0/1/16 if set, else 16 for quantized\n"
            "                       weights on AVX2 CPUs and 4- / 5-bit ones on AVX-512 VNNI CPUs, off\n"
            "                       otherwise; --stats names it)\n"
            "  --threads N          kernel threads\n"
            "  --adapter PATH[:S]   LoRA adapter at scale S (default 1); repeatable, up to 16\n"
            ROUTER_HELP
            "  --stats              timings and tokens/s on stderr after each reply\n"
            "%s%s"
            "  (with --skills, --top-k is the router's; --sample-top-k K is the sampler's)\n",
            AIOS_CLI_MEM_USAGE, AIOS_CLI_SKILLS_USAGE);
}

/* /teach ANSWER: the right answer to the last question, recorded as an approved pair in
 * --learn-store (what `aios evolve` trains on). */
static aios_status chat_teach(gen_opts *o, const char *question, const char *answer) {
    if (!o->sk.learn_store) {
        fprintf(stderr, "[/teach needs --learn-store DIR]\n");
        return AIOS_OK;
    }
    if (!question || !*answer) {
        fprintf(stderr, "[/teach ANSWER: the right answer to the last question]\n");
        return AIOS_OK;
    }
    aios_store *st = NULL;
    const char *encp = o->sk.lib ? aios_skills_encoder(o->sk.lib) : NULL;
    aios_status s = aios_cli_learn_store_open(o->sk.learn_store, encp, &st);
    aios_encoder *enc = o->sk.enc;
    if (!s && !enc) s = aios_encoder_open(aios_store_model(st), NULL, &enc);
    aios_learn_item it = {question, answer, 1, 0, NULL, NULL};
    char id[AIOS_MEMORY_ID_MAX];
    if (!s) s = aios_learn_record(st, enc, &it, id);
    if (enc != o->sk.enc) aios_encoder_free(enc);
    aios_store_close(st);
    if (!s) fprintf(stderr, "[taught: %s -> %s (%s)]\n", question, answer, id);
    return s;
}

/* One line of input into buf (NUL-terminated, newline kept or not); 0 at end of input or when
 * a signal interrupted the read.  A terminal gets libedit's line editing and history when built
 * with it (AIOS_HAVE_LIBEDIT); a pipe is read plainly, prompt and all on stderr. */
static int read_line(int tty, char *buf, size_t cap) {
#ifdef AIOS_HAVE_LIBEDIT
    if (tty) {
        char *l = readline("> ");
        if (!l) return 0;
        if (*l) add_history(l);
        snprintf(buf, cap, "%s", l);
        free(l);
        return 1;
    }
#else
    (void)tty;
#endif
    fprintf(stderr, "> ");
    return fgets(buf, (int)cap, stdin) != NULL;
}

int aios_cmd_chat(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage_chat(stdout);
        return 0;
    }
    gen_opts o;
    int rc = parse_opts(argc, argv, &o, 1);
    if (rc >= 0) return rc;
    aios_generator *g = NULL;
    aios_status s = open_gen(&o, &g);
    if (!s) s = aios_cli_skills_open(&o.sk);
    if (s) {
        aios_cli_skills_free(&o.sk);
        aios_generator_free(g);
        return aios_cli_fail("chat", s);
    }
    if ((s = aios_cli_mem_open(&o.mem)) != AIOS_OK) {
        aios_cli_mem_free(&o.mem);
        aios_generator_free(g);
        return aios_cli_fail("chat", s);
    }
    o.gp.on_token = on_piece;
    size_t cap = 64, n = 0;
    aios_chat_message *msgs = malloc(cap * sizeof *msgs);
    char **owned = malloc(cap * sizeof *owned); /* strdup'd contents to free */
    if (o.system) msgs[n].role = "system", msgs[n].content = o.system, owned[n++] = NULL;
    size_t n_sys = n;
    fprintf(stderr, "[aios chat: template %s; /help, /reset, /sources, /teach ANSWER, /quit; Ctrl-C stops a reply]\n",
            aios_generator_chat_template(g));
    /* Ctrl-C stops the reply being generated and keeps the session (no SA_RESTART: a read at the
     * prompt returns, and the prompt is shown again) */
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    int tty = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
#ifdef AIOS_HAVE_LIBEDIT
    if (tty) { /* line editing and history (arrow keys), prompt on stderr: stdout is the replies */
        rl_outstream = stderr;
        rl_catch_signals = 0;
        using_history();
    }
#endif
    char line[8192];
    char *last_q = NULL; /* the last question, for /teach */
    int ret = 0;
    for (;;) {
        g_interrupted = 0;
        if (!read_line(tty, line, sizeof line)) {
            if (g_interrupted) { /* Ctrl-C at the prompt: a fresh prompt */
                fprintf(stderr, "\n");
                clearerr(stdin);
                continue;
            }
            break;
        }
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
        if (!l) continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strcmp(line, "/help")) {
            fprintf(stderr, "/reset     forget the conversation (the system prompt stays)\n"
                            "/sources   the memories the last reply was conditioned on (--memory-store)\n"
                            "/teach A   record A as the right answer to the last question (--learn-store)\n"
                            "/quit      leave (also /exit, Ctrl-D)\n"
                            "Ctrl-C     stop the reply being written; the conversation keeps what was said\n");
            continue;
        }
        int is_teach = !strncmp(line, "/teach", 6) && (!line[6] || line[6] == ' ');
        if (line[0] == '/' && strcmp(line, "/sources") && strcmp(line, "/reset") && !is_teach) {
            fprintf(stderr, "aios: chat: %s: unknown command (/help)\n", line);
            continue;
        }
        if (!strcmp(line, "/sources")) {
            aios_cli_mem_sources(&o.mem, stderr);
            continue;
        }
        if (is_teach) {
            const char *ans = line + 6;
            while (*ans == ' ') ans++;
            aios_status ts = chat_teach(&o, last_q, ans);
            if (ts) aios_cli_fail("chat", ts);
            continue;
        }
        if (!strcmp(line, "/reset")) {
            for (size_t i = n_sys; i < n; i++) free(owned[i]);
            n = n_sys;
            continue;
        }
        free(last_q);
        last_q = strdup(line);
        if (o.sk.lib && (s = aios_cli_skills_apply(&o.sk, g, line)) != AIOS_OK) {
            ret = aios_cli_fail("chat", s);
            break;
        }
        aios_cli_skills_report(&o.sk, stderr);
        if (n + 2 > cap) {
            cap *= 2;
            msgs = realloc(msgs, cap * sizeof *msgs);
            owned = realloc(owned, cap * sizeof *owned);
        }
        owned[n] = strdup(line);
        msgs[n].role = "user", msgs[n].content = owned[n], n++;
        char *prompt = NULL;
        if (o.mem.store) {
            if ((s = aios_cli_mem_prompt(&o.mem, g, msgs, n, 1, line, o.gp.max_tokens)) != AIOS_OK) {
                ret = aios_cli_fail("chat", s);
                break;
            }
            aios_cli_mem_report(&o.mem, stderr);
            prompt = o.mem.last.prompt;
            o.mem.last.prompt = NULL;
            if (o.mem.last.conditioned && o.mem.last.conditioned_index == (int)n - 1) {
                /* the conversation keeps the message as the model saw it (the next turn reuses
                 * its cached prefix) */
                free(owned[n - 1]);
                owned[n - 1] = o.mem.last.conditioned;
                msgs[n - 1].content = owned[n - 1];
                o.mem.last.conditioned = NULL;
            }
        } else if ((s = aios_generator_chat_prompt(g, msgs, n, &prompt)) != AIOS_OK) {
            ret = aios_cli_fail("chat", s);
            break;
        }
        aios_generate_result r;
        s = aios_generate(g, prompt, NULL, 0, &o.gp, &r);
        free(prompt);
        printf("\n");
        fflush(stdout);
        if (s == AIOS_OK && r.stop == AIOS_GEN_STOP_CALLBACK) fprintf(stderr, "[stopped]\n");
        if (s) {
            aios_generate_result_free(&r);
            ret = aios_cli_fail("chat", s);
            break;
        }
        if (o.stats) print_stats(g, &r, o.gp.seed);
        const aios_gen_uncertainty *u = aios_generator_uncertainty(g);
        aios_cli_skills_report_uncertainty(&o.sk, u, stderr);
        int queued = 0;
        if ((s = aios_cli_skills_queue(&o.sk, u, line, r.text, o.model, &queued)) != AIOS_OK) aios_cli_fail("chat", s);
        else if (queued) fprintf(stderr, "[uncertain: queued for learning in %s; /teach ANSWER records the right one]\n", o.sk.learn_store);
        owned[n] = r.text; /* the reply becomes part of the conversation */
        r.text = NULL;
        msgs[n].role = "assistant", msgs[n].content = owned[n], n++;
        aios_generate_result_free(&r);
        o.gp.seed++; /* a new draw each turn, still reproducible from the first seed */
    }
    sigaction(SIGINT, &old_sa, NULL);
    for (size_t i = 0; i < n; i++) free(owned[i]);
    free(owned);
    free(msgs);
    free(last_q);
    aios_cli_skills_free(&o.sk);
    aios_cli_mem_free(&o.mem);
    aios_generator_free(g);
    return ret;
}
