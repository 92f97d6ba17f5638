/* test_server.c — the HTTP server in-process (aios_server_start/stop) over a loopback socket,
 * and the request parser white-box.  Runs under ASan/UBSan too (`make asan`), which is where
 * the streaming thread, cancellation and shutdown paths get their memory and race checks;
 * tests/py/test_server.py judges the answers against the engines and references. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <math.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cjson/cJSON.h>

#include "server/server_req.h"
#include "test.h"

/* One HTTP/1.1 request with Connection: close; returns the status, *body the raw body (malloc'd,
 * de-chunked when chunked).  -1 on a socket error. */
static int http(int port, const char *method, const char *path, const char *body, size_t body_len, char **out) {
    *out = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char hdr[512];
    int hl = snprintf(hdr, sizeof hdr, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n",
                      method, path, body ? "Content-Type: application/json\r\n" : "", body ? body_len : 0);
    if (send(fd, hdr, (size_t)hl, MSG_NOSIGNAL) != hl) {
        close(fd);
        return -1;
    }
    for (size_t off = 0; body && off < body_len;) {
        ssize_t k = send(fd, body + off, body_len - off, MSG_NOSIGNAL);
        if (k <= 0) break; /* the server may refuse early; read its answer anyway */
        off += (size_t)k;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (int guard = 0; guard < 1000000; guard++) {
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
        ssize_t k = recv(fd, buf + len, cap - len, 0);
        if (k <= 0) break;
        len += (size_t)k;
    }
    close(fd);
    buf[len] = 0;
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = -1;
    char *b = strstr(buf, "\r\n\r\n");
    const char *payload = b ? b + 4 : buf + len;
    int chunked = b && memmem(buf, (size_t)(b - buf), "chunked", 7) != NULL;
    char *res = malloc(len + 1);
    size_t n = 0;
    if (chunked) {
        const char *p = payload, *end = buf + len;
        while (p < end) {
            char *e;
            unsigned long sz = strtoul(p, &e, 16);
            const char *nl = strstr(e, "\r\n");
            if (!nl || sz == 0 || nl + 2 + sz > end) break;
            memcpy(res + n, nl + 2, sz);
            n += sz;
            p = nl + 2 + sz + 2;
        }
    } else {
        n = (size_t)(buf + len - payload);
        memcpy(res, payload, n);
    }
    res[n] = 0;
    free(buf);
    *out = res;
    return status;
}

/* A request with the given header lines (each ending in \r\n); returns the status. */
static int raw_status(int port, const char *request) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = -1;
    char buf[4096];
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && send(fd, request, strlen(request), MSG_NOSIGNAL) > 0) {
        ssize_t k = recv(fd, buf, sizeof buf - 1, 0);
        if (k > 0) {
            buf[k] = 0;
            if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = -1;
        }
    }
    close(fd);
    return status;
}

static int req(int port, const char *method, const char *path, const char *body, char **out) {
    return http(port, method, path, body, body ? strlen(body) : 0, out);
}

static void test_parse_rejects_and_accepts(void) {
    aios__req r;
    const char *param;
    static const struct { int kind; const char *body; const char *param; } bad[] = {
        {AIOS__REQ_EMBEDDINGS, "", ""},
        {AIOS__REQ_EMBEDDINGS, "{\"input\":", ""},
        {AIOS__REQ_EMBEDDINGS, "[]", ""},
        {AIOS__REQ_EMBEDDINGS, "{\"input\":[\"a\",2]}", "input"},
        {AIOS__REQ_EMBEDDINGS, "{\"input\":[[1],[2.5]]}", "input"},
        {AIOS__REQ_EMBEDDINGS, "{\"input\":[[]]}", "input"},
        {AIOS__REQ_EMBEDDINGS, "{\"input\":[3000000000]}", "input"},
        {AIOS__REQ_EMBEDDINGS, "{\"input\":\"a\",\"model\":7}", "model"},
        {AIOS__REQ_EMBEDDINGS, "{\"input\":\"a\",\"encoding_format\":\"base85\"}", "encoding_format"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":1e300}", "max_tokens"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"seed\":1.5}", "seed"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\"]}", "stop"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", "prompt"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"echo\":true}", "echo"},
        {AIOS__REQ_CHAT, "{\"messages\":[]}", "messages"},
        {AIOS__REQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[1]}]}", "messages"},
        {AIOS__REQ_MEMORY_ADD, "{\"content\":\"x\",\"metadata\":{\"quality_score\":\"hi\"}}", "metadata"},
        {AIOS__REQ_MEMORY_ADD, "{\"embedding\":[1e39]}", "embedding"},
        {AIOS__REQ_MEMORY_SEARCH, "{\"query\":\"x\",\"embedding\":[1]}", "query"},
        {AIOS__REQ_MEMORY_SEARCH, "{\"query\":\"x\",\"filters\":[]}", "filters"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"logprobs\":21}", "logprobs"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"logprobs\":true}", "logprobs"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"top_logprobs\":1}", "top_logprobs"},
        {AIOS__REQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logprobs\":2}", "logprobs"},
        {AIOS__REQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"top_logprobs\":2}", "top_logprobs"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"adapters\":{}}", "adapters"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"adapters\":[{\"scale\":1}]}", "adapters"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"adapters\":[{\"name\":\"x\",\"scale\":\"1\"}]}", "adapters"},
        {AIOS__REQ_ADAPTER, "{}", "path"},
        {AIOS__REQ_ADAPTER, "{\"name\":\"x\"}", "scale"},
        {AIOS__REQ_ADAPTER, "{\"path\":\"p\",\"name\":\"a/b\"}", "name"},
        {AIOS__REQ_ADAPTER, "{\"path\":\"p\",\"scale\":1e9}", "scale"},
        {AIOS__REQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"router\":\"Semantic\"}", "router"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"router\":1}", "router"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"skills\":\"x\"}", "skills"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"skills\":[\"a b\"]}", "skills"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"skills\":[\"x\",{\"name\":\"x\"}]}", "skills"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"skills\":[{\"name\":\"x\",\"weight\":101}]}", "skills"},
        {AIOS__REQ_COMPLETION, "{\"prompt\":\"a\",\"skills\":[{\"name\":\"x\",\"w\":1}]}", "skills"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aios_status s = aios__req_parse((aios__req_kind)bad[i].kind, bad[i].body, strlen(bad[i].body), &r, &param);
        CHECKF(s == AIOS_ERR_INVALID_ARG, "case %zu (%s) gave %d", i, bad[i].body, (int)s);
        CHECKF(!strcmp(param, bad[i].param), "case %zu: param '%s', want '%s'", i, param, bad[i].param);
        CHECK(*aios_last_error());
        aios__req_free(&r);
    }
    const char *ok = "{\"model\":\"m\",\"prompt\":[1,2,3],\"max_tokens\":7,\"temperature\":0,\"top_p\":0.5,"
                     "\"top_k\":3,\"seed\":-1,\"stop\":[\"a\",\"\"],\"stream\":true,\"n\":1,\"user\":\"u\",\"logprobs\":null}";
    CHECK_OK(aios__req_parse(AIOS__REQ_COMPLETION, ok, strlen(ok), &r, &param));
    CHECK(!strcmp(r.model, "m") && r.n_prompt_ids == 3 && r.prompt_ids[2] == 3 && r.max_tokens == 7);
    CHECK(r.temperature == 0 && r.top_p == 0.5 && r.top_k == 3 && r.has_seed && r.seed == UINT64_MAX);
    CHECK(r.n_stop == 1 && !strcmp(r.stop[0], "a") && r.stop[1] == NULL && r.stream);
    aios__req_free(&r);
    const char *lp = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logprobs\":true,\"top_logprobs\":3,"
                     "\"adapters\":[{\"name\":\"x\",\"scale\":0.5},{\"name\":\"y\"}]}";
    CHECK_OK(aios__req_parse(AIOS__REQ_CHAT, lp, strlen(lp), &r, &param));
    CHECK(r.logprobs == 1 && r.top_logprobs == 3 && r.has_adapters && r.n_adapters == 2);
    CHECK(!strcmp(r.adapter_name[1], "y") && r.adapter_scale[0] == 0.5f && r.adapter_scale[1] == 1.0f);
    aios__req_free(&r);
    const char *sk = "{\"prompt\":\"a\",\"router\":\"compose\",\"skills\":[\"x\",{\"name\":\"y.2\",\"weight\":0.25}]}";
    CHECK_OK(aios__req_parse(AIOS__REQ_COMPLETION, sk, strlen(sk), &r, &param));
    CHECK(r.router == AIOS__ROUTER_COMPOSE && r.has_skills && r.n_skills == 2 && !strcmp(r.skill_name[1], "y.2"));
    CHECK(isnan(r.skill_weight[0]) && r.skill_weight[1] == 0.25f);
    aios__req_free(&r);
    const char *none = "{\"prompt\":\"a\",\"skills\":[]}";
    CHECK_OK(aios__req_parse(AIOS__REQ_COMPLETION, none, strlen(none), &r, &param));
    CHECK(r.router == -1 && r.has_skills && r.n_skills == 0);
    aios__req_free(&r);
    const char *emb = "{\"input\":[[101,7],[5]]}";
    CHECK_OK(aios__req_parse(AIOS__REQ_EMBEDDINGS, emb, strlen(emb), &r, &param));
    CHECK(r.is_ids && r.n_inputs == 2 && r.ids_len[0] == 2 && r.ids[1][0] == 5);
    aios__req_free(&r);
    /* not NUL-terminated: the parser must stop at len */
    char nonul[8] = {'{', '}', 'x', 'x', 'x', 'x', 'x', 'x'};
    CHECK(aios__req_parse(AIOS__REQ_MEMORY_SEARCH, nonul, 2, &r, &param) == AIOS_ERR_INVALID_ARG);
    CHECK(!strcmp(param, "query"));
    aios__req_free(&r);
}

static void test_server_store_routes(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/store", aios_test_tmpdir());
    aios_server_params p = aios_server_default_params();
    p.port = 0;
    p.store_dir = dir;
    p.max_body = 4096;
    aios_server *srv = NULL;
    CHECK_OK(aios_server_start(&p, &srv));
    if (!srv) return;
    int port = aios_server_port(srv);
    CHECK(port > 0);
    char *b;
    CHECK(req(port, "GET", "/health", NULL, &b) == 200);
    CHECK(strstr(b, "\"status\":\"ok\"") && strstr(b, "\"memory\":true"));
    free(b);
    CHECK(req(port, "POST", "/v1/memories", "{\"id\":\"m1\",\"content\":\"one\",\"embedding\":[1,0,0]}", &b) == 200);
    free(b);
    CHECK(req(port, "POST", "/v1/memories", "{\"id\":\"m2\",\"content\":\"two\",\"embedding\":[0,1,0]}", &b) == 200);
    free(b);
    CHECK(req(port, "POST", "/v1/memories", "{\"content\":\"three\",\"embedding\":[0,1]}", &b) == 400); /* dim */
    free(b);
    CHECK(req(port, "POST", "/v1/memories/search", "{\"embedding\":[0.1,1,0],\"top_k\":1}", &b) == 200);
    cJSON *j = cJSON_Parse(b);
    cJSON *d = cJSON_GetObjectItem(j, "data");
    CHECK(cJSON_GetArraySize(d) == 1 && !strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 0), "id")->valuestring, "m2"));
    cJSON_Delete(j);
    free(b);
    CHECK(req(port, "POST", "/v1/memories/search", "{\"query\":\"text\"}", &b) == 400); /* no encoder */
    free(b);
    CHECK(req(port, "GET", "/v1/memories/m1", NULL, &b) == 200 && strstr(b, "\"content\":\"one\""));
    free(b);
    CHECK(req(port, "DELETE", "/v1/memories/m1", NULL, &b) == 200 && strstr(b, "\"deleted\":true"));
    free(b);
    CHECK(req(port, "GET", "/v1/memories/m1", NULL, &b) == 404 && strstr(b, "\"error\""));
    free(b);
    CHECK(req(port, "POST", "/v1/embeddings", "{\"input\":\"x\"}", &b) == 404); /* no embedding model */
    free(b);
    CHECK(req(port, "POST", "/v1/completions", "{\"prompt\":\"x\"}", &b) == 404); /* no generation model */
    free(b);
    CHECK(req(port, "PUT", "/v1/memories", "{}", &b) == 405);
    free(b);
    char big[8192];
    memset(big, ' ', sizeof big);
    CHECK(http(port, "POST", "/v1/memories", big, sizeof big, &b) == 413);
    free(b);
    CHECK(req(port, "GET", "/health", NULL, &b) == 200);
    free(b);
    aios_server_stop(srv);
    /* the store was closed: a second server opens it and still finds m2 */
    CHECK_OK(aios_server_start(&p, &srv));
    if (!srv) return;
    CHECK(req(aios_server_port(srv), "GET", "/v1/memories/m2", NULL, &b) == 200 && strstr(b, "\"content\":\"two\""));
    free(b);
    aios_server_stop(srv);
    aios_server_stop(NULL);
    p.host = "not-an-address";
    CHECK(aios_server_start(&p, &srv) == AIOS_ERR_INVALID_ARG && srv == NULL);
}

/* The concatenated "text" of the SSE chunks in body. */
static char *sse_text(const char *body, int *n_events, int *done) {
    char *out = calloc(1, strlen(body) + 1);
    *n_events = 0;
    *done = 0;
    for (const char *p = body; (p = strstr(p, "data: ")) != NULL;) {
        p += 6;
        const char *e = strstr(p, "\n\n");
        if (!e) break;
        if (!strncmp(p, "[DONE]", 6)) {
            *done = 1;
            break;
        }
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(e - p));
        cJSON *t = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "text");
        if (cJSON_IsString(t)) strcat(out, t->valuestring);
        cJSON_Delete(j);
        (*n_events)++;
        p = e;
    }
    return out;
}

static void test_server_generation_stream(void) {
    const char *model = aios_test_shared("models/stories260K");
    if (access(model, R_OK) != 0) SKIP("%s not found", model);
    aios_server_params p = aios_server_default_params();
    p.port = 0;
    p.models = &model;
    p.n_models = 1;
    p.n_threads = 1;
    aios_server *srv = NULL;
    CHECK_OK(aios_server_start(&p, &srv));
    if (!srv) return;
    int port = aios_server_port(srv);
    char *b, *s;
    const char *body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0}";
    CHECK(req(port, "POST", "/v1/completions", body, &b) == 200);
    cJSON *j = cJSON_Parse(b);
    cJSON *t = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "text");
    CHECK(cJSON_IsString(t) && strlen(t->valuestring) > 20);
    const char *sbody = "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0,\"stream\":true}";
    CHECK(req(port, "POST", "/v1/completions", sbody, &s) == 200);
    int n_ev, done;
    char *cat = sse_text(s, &n_ev, &done);
    CHECK(done && n_ev >= 2);
    CHECK(cJSON_IsString(t) && !strcmp(cat, t->valuestring));
    free(cat);
    cJSON_Delete(j);
    free(b);
    free(s);
    /* a client that leaves mid-stream: the producer is cancelled, the model is free again */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        const char *lb = "{\"prompt\":[1],\"max_tokens\":500,\"stream\":true,\"ignore_eos\":true}";
        char h[256];
        int hl = snprintf(h, sizeof h, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(lb), lb);
        CHECK(send(fd, h, (size_t)hl, MSG_NOSIGNAL) == hl);
        char tmp[256];
        CHECK(recv(fd, tmp, sizeof tmp, 0) > 0);
    }
    if (fd >= 0) close(fd);
    CHECK(req(port, "POST", "/v1/completions", "{\"prompt\":[1,999999]}", &b) == 400 && strstr(b, "vocabulary"));
    free(b);
    CHECK(req(port, "POST", "/v1/chat/completions",
              "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4,\"stream\":true}", &s) == 200);
    CHECK(strstr(s, "\"role\":\"assistant\"") && strstr(s, "data: [DONE]"));
    free(s);
    /* logprobs, streamed and not, and the adapter routes (no adapters loaded, no --adapter-dir) */
    CHECK(req(port, "POST", "/v1/completions",
              "{\"prompt\":\"Once\",\"max_tokens\":6,\"temperature\":0,\"logprobs\":3,\"stream\":true}", &s) == 200);
    CHECK(strstr(s, "\"token_logprobs\":[") && strstr(s, "data: [DONE]"));
    free(s);
    CHECK(req(port, "POST", "/v1/chat/completions",
              "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4,\"logprobs\":true,"
              "\"top_logprobs\":2,\"adapters\":[]}", &b) == 200);
    CHECK(strstr(b, "\"top_logprobs\":[{\"token\"") && strstr(b, "\"adapters\":[]"));
    free(b);
    CHECK(req(port, "GET", "/v1/adapters", NULL, &b) == 200 && strstr(b, "\"data\":[]"));
    free(b);
    CHECK(req(port, "POST", "/v1/adapters", "{\"path\":\"/tmp\"}", &b) == 403 && strstr(b, "--adapter-dir"));
    free(b);
    CHECK(req(port, "DELETE", "/v1/adapters/none", NULL, &b) == 404);
    free(b);
    CHECK(req(port, "POST", "/v1/completions", "{\"prompt\":\"a\",\"adapters\":[{\"name\":\"none\"}]}", &b) == 404 &&
          strstr(b, "\"param\":\"adapters\""));
    free(b);
    /* stop while a stream is in flight on another connection: must not hang or leak */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        const char *lb = "{\"prompt\":[1],\"max_tokens\":60000,\"stream\":true,\"ignore_eos\":true}";
        char h[256];
        int hl = snprintf(h, sizeof h, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(lb), lb);
        CHECK(send(fd, h, (size_t)hl, MSG_NOSIGNAL) == hl);
        char tmp[256];
        CHECK(recv(fd, tmp, sizeof tmp, 0) > 0);
    }
    aios_server_stop(srv);
    if (fd >= 0) close(fd);
}


typedef struct {
    int port, k, bad;
    const float *want; /* 8 texts x dim */
    int64_t dim;
} emb_worker;

static const char *const g_texts[8] = {"a cat", "the dog ran home", "", "naïve café", "one two three four five six",
                                       "x", "hello world", "A man is playing a guitar."};

static void *emb_thread(void *arg) {
    emb_worker *w = arg;
    for (int rep = 0; rep < 3; rep++)
        for (int i = w->k % 2; i < 8; i += 2) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "input", g_texts[i]);
            char *body = cJSON_PrintUnformatted(b), *out = NULL;
            cJSON_Delete(b);
            int st = req(w->port, "POST", "/v1/embeddings", body, &out);
            free(body);
            cJSON *j = st == 200 ? cJSON_Parse(out) : NULL;
            cJSON *e = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding");
            if (cJSON_GetArraySize(e) != w->dim) w->bad++;
            else
                /* a text batched with others' runs through the packed GEMM: the same values to
                 * float32 rounding (another summation order), not bit for bit */
                for (int64_t d = 0; d < w->dim; d++)
                    if (fabs(cJSON_GetArrayItem(e, (int)d)->valuedouble - w->want[i * w->dim + d]) > 2e-6) {
                        w->bad++;
                        break;
                    }
            cJSON_Delete(j);
            free(out);
        }
    return NULL;
}

/* Many clients at once through the embedding batcher (ASan/UBSan see its queue and threads):
 * every answer equals the encoder's own for that text alone; then the request guards. */
static void test_server_batching_and_guards(void) {
    const char *model = aios_test_shared("fixtures/models/bert-tiny");
    if (access(model, R_OK) != 0) SKIP("%s not found", model);
    aios_encoder *enc = NULL;
    CHECK_OK(aios_encoder_open(model, NULL, &enc));
    if (!enc) return;
    int64_t dim = aios_encoder_dim(enc);
    float *want = malloc(8 * (size_t)dim * sizeof *want);
    for (int i = 0; i < 8; i++) CHECK_OK(aios_encode(enc, g_texts[i], strlen(g_texts[i]), want + i * dim));
    aios_encoder_free(enc);
    aios_server_params p = aios_server_default_params();
    p.port = 0;
    p.embedding_model = model;
    p.n_threads = 1;
    p.api_key = "k3y";
    p.max_per_client = 64;
    aios_server *srv = NULL;
    CHECK_OK(aios_server_start(&p, &srv));
    if (!srv) {
        free(want);
        return;
    }
    int port = aios_server_port(srv);
    /* without the key: 401 everywhere but /health */
    char *b;
    CHECK(req(port, "GET", "/health", NULL, &b) == 200);
    free(b);
    CHECK(req(port, "GET", "/v1/models", NULL, &b) == 401 && strstr(b, "invalid_api_key"));
    free(b);
    CHECK(raw_status(port, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k3y\r\nConnection: close\r\n\r\n") == 200);
    CHECK(raw_status(port, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k3\r\nConnection: close\r\n\r\n") == 401);
    CHECK(raw_status(port, "GET /v1/models HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer k3y\r\nConnection: close\r\n\r\n") == 403);
    CHECK(raw_status(port, "POST /v1/embeddings HTTP/1.1\r\nHost: localhost:1\r\nAuthorization: Bearer k3y\r\n"
                           "Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}") == 415);
    aios_server_stop(srv);
    p.api_key = NULL;
    CHECK_OK(aios_server_start(&p, &srv));
    if (!srv) {
        free(want);
        return;
    }
    emb_worker w[8];
    pthread_t th[8];
    for (int k = 0; k < 8; k++) {
        w[k] = (emb_worker){aios_server_port(srv), k, 0, want, dim};
        CHECK(pthread_create(&th[k], NULL, emb_thread, &w[k]) == 0);
    }
    int bad = 0;
    for (int k = 0; k < 8; k++) {
        pthread_join(th[k], NULL);
        bad += w[k].bad;
    }
    CHECKF(bad == 0, "%d answers differ from the encoder's", bad);
    aios_server_stop(srv);
    free(want);
}

int main(void) {
    RUN(test_parse_rejects_and_accepts);
    RUN(test_server_store_routes);
    RUN(test_server_generation_stream);
    RUN(test_server_batching_and_guards);
    TEST_MAIN_END();
}
