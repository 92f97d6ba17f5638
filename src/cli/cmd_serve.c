/*
 * cmd_serve.c — `aios serve`: the OpenAI-compatible HTTP server (src/server/server.c).
 *
 * Starts the server, prints one line `aios: serving on http://HOST:PORT` on stdout (flushed, so
 * a parent process started with --port 0 can read the port), then waits for SIGINT or SIGTERM
 * and stops cleanly (requests in flight finish, the store is closed).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_skills.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: aios serve [options]\n"
            "OpenAI-compatible HTTP server: /v1/completions, /v1/chat/completions, /v1/embeddings,\n"
            "/v1/models, /health, /v1/diffuse and the memory store under /v1/memories (docs/server.md).\n\n"
            "options:\n"
            "  --host ADDR              numeric address to bind (default 127.0.0.1, loopback only)\n"
            "  --port N                 port (default 8080; 0 = any free port, printed at start)\n"
            "  --model PATH             generation model: a model directory or a .gguf file\n"
            "                           (repeatable; the first is the default)\n"
            "  --embedding-model DIR    BERT-family model for /v1/embeddings and memory search\n"
            "  --embedding-int8-act M   the embedding model's int8 activations: auto (default: on for\n"
            "                           int8 weights on AVX-512 VNNI CPUs), on, off (exact float)\n"
            "  --store DIR              memory store directory (created when it holds none)\n"
            "  --diffusion-model DIR    LLaDA / Dream / block-diffusion model for /v1/diffuse\n"
            "  --alias NAME             id of the model given just before (default: config.json's\n"
            "                           _name_or_path, else the directory's name)\n"
            "  --adapter PATH[:S]       LoRA adapter (PEFT directory or skill card .parquet) attached at\n"
            "                           scale S (default 1) to the --model given before it (else the\n"
            "                           first); repeatable, up to 16 per model; see /v1/adapters\n"
            "  --adapter-dir DIR        POST /v1/adapters may load adapters from inside DIR (default: off)\n"

            "  --threads N              kernel threads per model (1..%d; default: all cores)\n"
            "  --kv-type T              KV cache element type: f32 (default) or f16 (half the memory)\n"
            "  --int8-act M             the generation models' activations: 16 (16-bit), on (int8), off\n"
            "                           (exact), auto (default: AIOS_INT8_ACT if set, else 16 for quantized\n"
            "                           weights on AVX2 CPUs and 4- / 5-bit ones on AVX-512 VNNI, off\n"
            "                           otherwise)\n"
            "  --api-key KEY            require 'Authorization: Bearer KEY' on every route but /health\n"
            "                           (default: $AIOS_API_KEY; a non-loopback --host without one warns)\n"
            "  --cors ORIGIN            send Access-Control-Allow-Origin: ORIGIN (default: no CORS)\n"
            "  --timeout S              seconds a connection may sit idle (default 30)\n"
            "  --max-body BYTES         request body limit (default 16777216)\n"
            "  --max-connections N      requests in flight; past it 503, /health still answers (default 64)\n"
            "  --max-per-client N       requests in flight per client address (default 16)\n"
            "  --max-embedding-tokens N tokens x inputs one embeddings request may cost (default 1048576)\n"
            "  --max-generation-tokens N  prompt + max_tokens of one request (default 65536)\n"
            "  --max-diffusion-work N   gen_length x steps of one /v1/diffuse request (default 1048576)\n\n"
            "skills (as on aios generate; a request's \"router\" / \"skills\" override them, GET /v1/skills\n"
            "lists them; the answer's skills and uncertainty come back in its \"aios\" field; with --store\n"
            "and --embedding-model uncertain answers are queued for learning in the "
            "store):\n" AIOS_CLI_SKILLS_ROUTER_USAGE
            "  --router-top-k K     arrow: adapters per token (default 2)\n"
            "  --config FILE        configuration file (evolution.uncertainty_threshold, router_threshold)\n"
            "  (the library's adapters go to the --model given before --skills, else the first)\n\n"
            "memory-conditioned generation: /v1/chat/completions and /v1/completions take\n"
            "  \"memory\": {\"store\": NAME, \"top_k\": 3, \"min_score\": S, \"filter\": {\"category\": C, "
            "\"source\": S},\n"
            "             \"max_tokens\": 256, \"place\": \"user\"|\"system\"}\n"
            "  against --store (embedded with --embedding-model); the response's \"memory\" field lists\n"
            "  the sources (docs/server.md), e.g.\n"
            "    curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' -d "
            "'{\"messages\":\n"
            "      [{\"role\":\"user\",\"content\":\"Who is the CEO of "
            "Zorbex?\"}],\"memory\":{\"store\":\"mem\",\"top_k\":1}}'\n\n"
            "examples:\n"
            "  aios serve --model SmolLM2-135M-Instruct.Q4_1.gguf --embedding-model models/all-MiniLM-L6-v2 "
            "--store mem\n"
            "  aios serve --model models/smollm2 --skills lib --router arrow --adapter tone:0.8 "
            "--adapter-dir skills\n"
            "  AIOS_API_KEY=secret aios serve --host 0.0.0.0 --model models/qwen2.5-0.5b --cors "
            "https://app.example\n",
            AIOS_CLI_MAX_THREADS);
}

static int parse_pos(const char *opt, const char *v, long lo, long hi, long *out) {
    long long x;
    if (!aios_cli_int("serve", opt, v, lo, hi, &x)) return 0;
    *out = (long)x;
    return 1;
}

int aios_cmd_serve(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    aios_server_params p = aios_server_default_params();
    const char **models = calloc((size_t)argc, sizeof *models),
               **aliases = calloc((size_t)argc, sizeof *aliases);
    if (!models || !aliases) {
        free(models), free(aliases);
        fprintf(stderr, "aios: serve: out of memory\n");
        return 1;
    }
    size_t n_models = 0, n_adapters = 0;
    char(*ad_path)[4096] = calloc((size_t)argc, sizeof *ad_path);
    float *ad_scale = calloc((size_t)argc, sizeof *ad_scale);
    int *ad_model = calloc((size_t)argc, sizeof *ad_model);
    const char **ad_ptr = calloc((size_t)argc, sizeof *ad_ptr);
    const char **last = NULL; /* the alias slot of the model given last */
    p.api_key = getenv("AIOS_API_KEY");
    aios_cli_skills sk; /* --skills, --router, --top-k, --router-temperature, --router-threshold, --config */
    aios_cli_skills_init(&sk);
    for (int i = 1; i + 1 < argc; i += 2) /* with --skills anywhere, --top-k is the router's */
        if (!strcmp(argv[i], "--skills")) sk.lib_dir = argv[i + 1];
    const char *lib_seen = NULL;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        int ok = 1;
        if (!v)
            ok = 0;
        else if (!strcmp(a, "--learn-store")) {
            fprintf(stderr, "aios: serve: --learn-store: the server queues uncertain answers in --store\n");
            ok = -1;
        } else if (!strcmp(a, "--router-top-k"))
            ok = parse_pos(a, v, 1, 16, &x) ? (sk.arrow_top_k = (int)x, 1) : -1;
        else if (!strcmp(a, "--host"))
            p.host = v;
        else if (!strcmp(a, "--port"))
            ok = parse_pos(a, v, 0, 65535, &x) ? (p.port = (int)x, 1) : -1;
        else if (!strcmp(a, "--model"))
            last = &aliases[n_models], models[n_models++] = v;
        else if (!strcmp(a, "--embedding-model"))
            p.embedding_model = v, last = &p.embedding_alias;
        else if (!strcmp(a, "--int8-act"))
            ok = aios_cli_int8_act("serve", v, &p.int8_act) ? 1 : -1;
        else if (!strcmp(a, "--embedding-int8-act"))
            ok = aios_cli_int8_act("serve", v, &p.embedding_int8_act) ? 1 : -1;
        else if (!strcmp(a, "--store"))
            p.store_dir = v;
        else if (!strcmp(a, "--diffusion-model"))
            p.diffusion_model = v, last = &p.diffusion_alias;
        else if (!strcmp(a, "--alias")) {
            if (!last || !*v) {
                fprintf(
                    stderr,
                    "aios: serve: --alias: names the model given just before it (--model, --embedding-model, "
                    "--diffusion-model)\n");
                ok = -1;
            } else {
                *last = v;
                last = NULL;
            }
        } else if (!strcmp(a, "--threads"))
            ok = aios_cli_threads("serve", v, &p.n_threads) ? 1 : -1;
        else if (!strcmp(a, "--kv-type")) {
            if (!strcmp(v, "f32") || !strcmp(v, "float32"))
                p.kv_type = AIOS_KV_F32, ok = 1;
            else if (!strcmp(v, "f16") || !strcmp(v, "float16"))
                p.kv_type = AIOS_KV_F16, ok = 1;
            else {
                fprintf(stderr, "aios: serve: --kv-type: expected f32 or f16, got '%s'\n", v);
                ok = -1;
            }
        }
        else if (!strcmp(a, "--adapter")) {
            ok = ad_path && ad_scale && ad_model && ad_ptr &&
                         aios_cli_adapter("serve", v, ad_path[n_adapters], sizeof ad_path[0],
                                          &ad_scale[n_adapters])
                     ? 1
                     : -1;
            if (ok > 0)
                ad_model[n_adapters] = n_models ? (int)n_models - 1 : 0,
                ad_ptr[n_adapters] = ad_path[n_adapters], n_adapters++;
        } else if (!strcmp(a, "--adapter-dir"))
            p.adapter_dir = v;
        else if (!strcmp(a, "--api-key"))
            p.api_key = v;
        else if (!strcmp(a, "--cors"))
            p.cors_origin = v;
        else if (!strcmp(a, "--timeout"))
            ok = parse_pos(a, v, 1, 86400, &x) ? (p.timeout_s = (int)x, 1) : -1;
        else if (!strcmp(a, "--max-body"))
            ok = parse_pos(a, v, 1024, 1L << 30, &x) ? (p.max_body = (size_t)x, 1) : -1;
        else if (!strcmp(a, "--max-connections"))
            ok = parse_pos(a, v, 1, 4096, &x) ? (p.max_connections = (int)x, 1) : -1;
        else if (!strcmp(a, "--max-per-client"))
            ok = parse_pos(a, v, 1, 4096, &x) ? (p.max_per_client = (int)x, 1) : -1;
        else if (!strcmp(a, "--max-embedding-tokens"))
            ok = parse_pos(a, v, 1, 1L << 40, &x) ? (p.max_embedding_tokens = x, 1) : -1;
        else if (!strcmp(a, "--max-generation-tokens"))
            ok = parse_pos(a, v, 1, 1L << 40, &x) ? (p.max_generation_tokens = x, 1) : -1;
        else if (!strcmp(a, "--max-diffusion-work"))
            ok = parse_pos(a, v, 1, 1L << 40, &x) ? (p.max_diffusion_work = x, 1) : -1;
        else if ((ok = aios_cli_skills_option(&sk, "serve", a, v)) > 0 && !strcmp(a, "--skills") && !lib_seen)
            lib_seen = v, p.skills_model = n_models ? (int)n_models - 1 : 0;
        if (ok == 0) fprintf(stderr, "aios: serve: %s: unknown option or missing value (see --help)\n", a);
        if (ok <= 0) {
            free(models), free(aliases), free(ad_path), free(ad_scale), free(ad_model), free(ad_ptr);
            return 2;
        }
    }
    if (aios_cli_skills_check(&sk, "serve")) {
        free(models), free(aliases), free(ad_path), free(ad_scale), free(ad_model), free(ad_ptr);
        return 2;
    }
    if (sk.lib_dir && !n_models) {
        fprintf(stderr, "aios: serve: --skills: needs a generation model (--model)\n");
        free(models), free(aliases), free(ad_path), free(ad_scale), free(ad_model), free(ad_ptr);
        return 2;
    }
    p.skills_dir = sk.lib_dir;
    p.skills_router = (int)sk.router; /* the same order as AIOS__ROUTER_* (none, semantic, arrow, compose) */
    p.skills_top_k = sk.rp.top_k;
    p.skills_threshold = sk.rp.threshold;
    p.skills_temperature = sk.rp.temperature;
    p.arrow_top_k = sk.arrow_top_k;
    p.arrow_temperature = sk.arrow_temperature;
    p.uncertainty_threshold = sk.uncertainty_threshold;
    p.skills_encoder_bits = sk.encoder_bits;
    if (!n_models && !p.embedding_model && !p.store_dir && !p.diffusion_model) {
        fprintf(
            stderr,
            "aios: serve: nothing to serve: give --model, --embedding-model, --store or --diffusion-model\n");
        free(models), free(aliases), free(ad_path), free(ad_scale), free(ad_model), free(ad_ptr);
        return 2;
    }
    p.aliases = aliases;
    int loopback = !strcmp(p.host, "localhost") || !strncmp(p.host, "127.", 4) || !strcmp(p.host, "::1");
    if (!loopback && !(p.api_key && *p.api_key))
        fprintf(stderr,
                "aios: serve: warning: --host %s is reachable from other machines and no API key is set "
                "(--api-key or AIOS_API_KEY): anyone who can reach it can use it\n",
                p.host);
    p.models = models;
    p.n_models = n_models;
    p.adapter_paths = ad_ptr, p.adapter_scales = ad_scale, p.adapter_models = ad_model,
    p.n_adapters = n_adapters;

    /* block the signals before any thread starts, so only sigwait below receives them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    aios_server *srv = NULL;
    aios_status s = aios_server_start(&p, &srv);
    free(models), free(aliases), free(ad_path), free(ad_scale), free(ad_model), free(ad_ptr);
    if (s != AIOS_OK) return aios_cli_fail("serve", s);
    printf("aios: serving on http://%s%s%s:%d\n", strchr(p.host, ':') ? "[" : "", p.host,
           strchr(p.host, ':') ? "]" : "", aios_server_port(srv));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "aios: serve: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    aios_server_stop(srv); /* in-flight generations stop at their next token */
    return 0;
}
