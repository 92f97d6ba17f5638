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

static void usage(FILE *f) {
    fprintf(f,
            "usage: aios serve [options]\n"
            "OpenAI-compatible HTTP server: /v1/completions, /v1/chat/completions, /v1/embeddings,\n"
            "/v1/models, /health, /v1/diffuse and the memory store under /v1/memories (docs/server.md).\n\n"
            "options:\n"
            "  --host ADDR              numeric address to bind (default 127.0.0.1, loopback only)\n"
            "  --port N                 port (default 8080; 0 = any free port, printed at start)\n"
            "  --model DIR              generation model (repeatable; the first is the default)\n"
            "  --embedding-model DIR    BERT-family model for /v1/embeddings and memory search\n"
            "  --store DIR              memory store directory (created when it holds none)\n"
            "  --diffusion-model DIR    LLaDA / Dream / block-diffusion model for /v1/diffuse\n"
            "  --threads N              kernel threads per model (default: all cores)\n"
            "  --max-body BYTES         request body limit (default 16777216)\n"
            "  --max-connections N      simultaneous connections (default 64)\n\n"
            "memory-conditioned generation: /v1/chat/completions and /v1/completions take\n"
            "  \"memory\": {\"store\": NAME, \"top_k\": 3, \"min_score\": S, \"filter\": {\"category\": C, \"source\": S},\n"
            "             \"max_tokens\": 256, \"place\": \"user\"|\"system\"}\n"
            "  against --store (embedded with --embedding-model); the response's \"memory\" field lists\n"
            "  the sources (docs/server.md).\n\n"
            "examples:\n"
            "  aios serve --model smollm2.gguf --embedding-model all-MiniLM-L6-v2 --store mem\n"
            "  curl -s localhost:8080/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\",\n"
            "      \"content\":\"Who is the CEO of Zorbex?\"}],\"memory\":{\"store\":\"mem\",\"top_k\":1}}'\n"
            "  aios serve --port 0 --model stories260K --threads 1\n");
}

static int parse_pos(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, "aios: serve: %s: expected an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, v);
        return 0;
    }
    *out = x;
    return 1;
}

int aios_cmd_serve(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    aios_server_params p = aios_server_default_params();
    const char **models = calloc((size_t)argc, sizeof *models);
    if (!models) return aios_cli_fail("serve", AIOS_ERR_NOMEM);
    size_t n_models = 0;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        int ok = 1;
        if (!v) ok = 0;
        else if (!strcmp(a, "--host")) p.host = v;
        else if (!strcmp(a, "--port")) ok = parse_pos(a, v, 0, 65535, &x) ? (p.port = (int)x, 1) : -1;
        else if (!strcmp(a, "--model")) models[n_models++] = v;
        else if (!strcmp(a, "--embedding-model")) p.embedding_model = v;
        else if (!strcmp(a, "--store")) p.store_dir = v;
        else if (!strcmp(a, "--diffusion-model")) p.diffusion_model = v;
        else if (!strcmp(a, "--threads")) ok = parse_pos(a, v, 1, 4096, &x) ? (p.n_threads = (int)x, 1) : -1;
        else if (!strcmp(a, "--max-body")) ok = parse_pos(a, v, 1024, 1L << 30, &x) ? (p.max_body = (size_t)x, 1) : -1;
        else if (!strcmp(a, "--max-connections")) ok = parse_pos(a, v, 1, 4096, &x) ? (p.max_connections = (int)x, 1) : -1;
        else ok = 0;
        if (ok == 0) fprintf(stderr, "aios: serve: unknown option or missing value: %s (see --help)\n", a);
        if (ok <= 0) {
            free(models);
            return 2;
        }
    }
    if (!n_models && !p.embedding_model && !p.store_dir && !p.diffusion_model) {
        fprintf(stderr, "aios: serve: nothing to serve: give --model, --embedding-model, --store or --diffusion-model\n");
        free(models);
        return 2;
    }
    p.models = models;
    p.n_models = n_models;

    /* block the signals before any thread starts, so only sigwait below receives them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    aios_server *srv = NULL;
    aios_status s = aios_server_start(&p, &srv);
    free(models);
    if (s != AIOS_OK) return aios_cli_fail("serve", s);
    printf("aios: serving on http://%s%s%s:%d\n", strchr(p.host, ':') ? "[" : "", p.host, strchr(p.host, ':') ? "]" : "",
           aios_server_port(srv));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "aios: serve: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    aios_server_stop(srv);
    return 0;
}
