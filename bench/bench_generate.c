/* bench_generate.c — prefill and decode tokens/s of a decoder with SmolLM2-135M's shape
 * (../shared/models/smollm2-135m-instruct/config.json; random weights generated here) at f32,
 * bf16, int8 and int4, with 1 and 2 threads, next to the memory-bandwidth floor measured in the
 * same run: floor tok/s = streaming read bandwidth / bytes of weights read per token.
 *
 * f32 and bf16 weights are written as a safetensors file in a temporary directory and opened
 * with aios_model_open (mapped, as a user's model is); int8 (per channel) and int4 (groups of
 * 32) are the ArrowQuant layouts, quantized in memory from the same f32 values.
 * Usage: bench_generate [prefill_tokens=64] [decode_tokens=32] [dtypes=f32,bf16,int8,int4] [threads=1,2]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "engine/sample.h"
#include "format/safetensors.h"
#include "kernels/kernels.h"
#include "model/decoder.h"
#include "model/model.h"
#include "tensor/quant.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- streaming read bandwidth: sum of a buffer far larger than the caches ---- */
static double g_sink;
static double bandwidth_gbs(int threads) {
    size_t n = (size_t)256 << 20 >> 3; /* 256 MiB of doubles */
    double *a = aligned_alloc(64, n * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = (double)(i & 7);
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = now(), s = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : s) schedule(static)
        for (size_t i = 0; i < n; i += 8) s += a[i] + a[i + 1] + a[i + 2] + a[i + 3] + a[i + 4] + a[i + 5] + a[i + 6] + a[i + 7];
        double t = now() - t0;
        g_sink += s;
        double gbs = (double)(n * sizeof *a) / t / 1e9;
        if (gbs > best) best = gbs;
    }
    free(a);
    return best;
}

/* ---- random weights with SmolLM2-135M's shape ---- */
typedef struct {
    char name[96];
    int64_t rows, cols; /* cols 0: 1-D */
    uint64_t seed;
} wspec;

static int specs(const aios_decoder_config *c, wspec *w) {
    int n = 0;
#define SPEC(r, cl, ...) (snprintf(w[n].name, sizeof w[n].name, __VA_ARGS__), w[n].rows = (r), w[n].cols = (cl), w[n].seed = 1000 + n, n++)
    SPEC(c->n_vocab, c->n_embd, "model.embed_tokens.weight");
    SPEC(c->n_embd, 0, "model.norm.weight");
    int64_t Q = c->n_head * c->head_dim, KV = c->n_head_kv * c->head_dim;
    for (int64_t l = 0; l < c->n_layer; l++) {
        SPEC(c->n_embd, 0, "model.layers.%lld.input_layernorm.weight", (long long)l);
        SPEC(c->n_embd, 0, "model.layers.%lld.post_attention_layernorm.weight", (long long)l);
        SPEC(Q, c->n_embd, "model.layers.%lld.self_attn.q_proj.weight", (long long)l);
        SPEC(KV, c->n_embd, "model.layers.%lld.self_attn.k_proj.weight", (long long)l);
        SPEC(KV, c->n_embd, "model.layers.%lld.self_attn.v_proj.weight", (long long)l);
        SPEC(c->n_embd, Q, "model.layers.%lld.self_attn.o_proj.weight", (long long)l);
        SPEC(c->n_ff, c->n_embd, "model.layers.%lld.mlp.gate_proj.weight", (long long)l);
        SPEC(c->n_ff, c->n_embd, "model.layers.%lld.mlp.up_proj.weight", (long long)l);
        SPEC(c->n_embd, c->n_ff, "model.layers.%lld.mlp.down_proj.weight", (long long)l);
    }
#undef SPEC
    return n;
}

/* Values of one tensor: norms near 1, matrices uniform with std 1/sqrt(cols), embeddings O(1). */
static void fill(const wspec *s, float *out) {
    aios_rng r;
    aios_rng_seed(&r, s->seed);
    int64_t n = s->rows * (s->cols ? s->cols : 1);
    double amp = s->cols ? (strstr(s->name, "embed") ? 1.0 : 1.7320508 / sqrt((double)s->cols)) : 0.1;
    for (int64_t i = 0; i < n; i++) out[i] = (float)((aios_rng_uniform(&r) * 2 - 1) * amp + (s->cols ? 0 : 1));
}

typedef struct {
    wspec *w;
    aios_tensor *t;
    int n;
} mem_model;

static const aios_tensor *mem_lookup(void *ctx, const char *name) {
    mem_model *m = ctx;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->w[i].name, name)) return &m->t[i];
    return NULL;
}

/* Quantized in memory: matrices Q8 per channel or Q4 groups of 32, 1-D tensors f32. */
static int build_quant(mem_model *m, aios_dtype qt) {
    m->t = calloc((size_t)m->n, sizeof *m->t);
    for (int i = 0; i < m->n; i++) {
        wspec *s = &m->w[i];
        aios_tensor *t = &m->t[i];
        int64_t cols = s->cols ? s->cols : 1, n = s->rows * cols;
        float *f = malloc((size_t)n * sizeof *f);
        fill(s, f);
        t->name = s->name;
        t->ndim = s->cols ? 2 : 1;
        t->shape[0] = s->rows;
        t->shape[1] = s->cols;
        t->quant_axis = -1;
        if (!s->cols) {
            t->dtype = AIOS_DTYPE_F32;
            t->data = f;
            t->nbytes = (size_t)n * 4;
            continue;
        }
        aios_quant_params qp = {qt, qt == AIOS_DTYPE_Q4 ? 32 : 0, 1, 0, 0};
        int64_t ns;
        int32_t ax, gs;
        size_t nb;
        if (aios_quant_layout(&qp, s->rows, cols, &ns, &ax, &gs) || aios_dtype_nbytes(qt, n, &nb)) return -1;
        uint8_t *q = malloc(nb);
        float *sc = malloc((size_t)ns * 4), *zp = malloc((size_t)ns * 4);
        if (aios_quantize_f32(f, s->rows, cols, &qp, q, sc, zp)) return -1;
        free(f);
        t->dtype = qt;
        t->data = q;
        t->nbytes = nb;
        t->scales = sc;
        t->zero_points = zp;
        t->n_scales = ns;
        t->quant_axis = ax;
        t->group_size = gs;
    }
    return 0;
}

static void free_mem(mem_model *m) {
    if (!m->t) return;
    for (int i = 0; i < m->n; i++) {
        free((void *)m->t[i].data);
        free((void *)m->t[i].scales);
        free((void *)m->t[i].zero_points);
    }
    free(m->t);
    m->t = NULL;
}

/* f32 / bf16 safetensors file with config.json beside it. */
static int write_st(const char *dir, const wspec *w, int n, aios_dtype dt, const char *config_json) {
    aios_tensor *t = calloc((size_t)n, sizeof *t);
    const aios_tensor **pt = calloc((size_t)n, sizeof *pt);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        int64_t cnt = w[i].rows * (w[i].cols ? w[i].cols : 1);
        float *f = malloc((size_t)cnt * 4);
        fill(&w[i], f);
        t[i].name = w[i].name;
        t[i].ndim = w[i].cols ? 2 : 1;
        t[i].shape[0] = w[i].rows;
        t[i].shape[1] = w[i].cols;
        t[i].quant_axis = -1;
        if (dt == AIOS_DTYPE_BF16) {
            uint16_t *b = malloc((size_t)cnt * 2);
            for (int64_t k = 0; k < cnt; k++) b[k] = aios_f32_to_bf16(f[k]);
            free(f);
            t[i].data = b;
            t[i].nbytes = (size_t)cnt * 2;
        } else {
            t[i].data = f;
            t[i].nbytes = (size_t)cnt * 4;
        }
        t[i].dtype = dt;
        pt[i] = &t[i];
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (aios_safetensors_write(p, pt, n, NULL)) {
        fprintf(stderr, "bench: %s\n", aios_last_error());
        rc = -1;
    }
    for (int i = 0; i < n; i++) free((void *)t[i].data);
    free(t), free(pt);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fputs(config_json, f);
    fclose(f);
    return rc;
}

typedef struct {
    double prefill_tps, decode_tps;
} result;

static int run(aios_decoder *d, int64_t P, int64_t D, result *r) {
    const aios_decoder_config *c = aios_decoder_get_config(d);
    aios_kv_cache *kv = NULL;
    if (aios_kv_cache_create(d, P + D + 1, &kv)) return -1;
    int32_t *tok = malloc((size_t)P * sizeof *tok);
    for (int64_t i = 0; i < P; i++) tok[i] = (int32_t)((i * 7919 + 13) % c->n_vocab);
    float *lg = malloc((size_t)c->n_vocab * sizeof *lg);
    /* warm-up: touch every weight once */
    aios_decoder_forward(d, kv, tok, 1, NULL, lg);
    aios_kv_cache_truncate(kv, 0);
    double t0 = now();
    if (aios_decoder_forward(d, kv, tok, P, NULL, lg)) return -1;
    r->prefill_tps = (double)P / (now() - t0);
    int32_t id = 0;
    t0 = now();
    for (int64_t i = 0; i < D; i++) {
        int32_t b = 0;
        for (int64_t k = 1; k < c->n_vocab; k++)
            if (lg[k] > lg[b]) b = (int32_t)k;
        id = b;
        if (aios_decoder_forward(d, kv, &id, 1, NULL, lg)) return -1;
    }
    r->decode_tps = (double)D / (now() - t0);
    free(tok), free(lg);
    aios_kv_cache_free(kv);
    return 0;
}

int main(int argc, char **argv) {
    int64_t P = argc > 1 ? atoll(argv[1]) : 64, D = argc > 2 ? atoll(argv[2]) : 32;
    const char *dtypes = argc > 3 ? argv[3] : "f32,bf16,int8,int4";
    const char *threads = argc > 4 ? argv[4] : "1,2";
    const char *root = getenv("AIOS_SHARED");
    char cfgp[4200];
    snprintf(cfgp, sizeof cfgp, "%s/models/smollm2-135m-instruct/config.json", root && *root ? root : "../shared");
    char *cfg_json = NULL;
    size_t cl;
    if (aios__read_file(cfgp, &cfg_json, &cl)) {
        fprintf(stderr, "bench_generate: %s\n", aios_last_error());
        return 1;
    }
    aios_decoder_config c;
    if (aios_decoder_config_parse(cfg_json, cl, &c)) {
        fprintf(stderr, "bench_generate: %s\n", aios_last_error());
        return 1;
    }
    wspec *w = calloc((size_t)(2 + 9 * c.n_layer), sizeof *w);
    int n = specs(&c, w);
    char tmp[] = "/tmp/aios-bench-gen-XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    printf("decoder with SmolLM2-135M's shape: n_embd %lld, n_layer %lld, n_head %lld/%lld, n_ff %lld, n_vocab %lld, tied; "
           "prefill %lld tokens, decode %lld tokens; kernels %s\n",
           (long long)c.n_embd, (long long)c.n_layer, (long long)c.n_head, (long long)c.n_head_kv, (long long)c.n_ff,
           (long long)c.n_vocab, (long long)P, (long long)D, aios_kernels_tier());
    int thr[4], nthr = 0;
    for (const char *q = threads; *q && nthr < 4;) {
        thr[nthr++] = atoi(q);
        q = strchr(q, ',');
        if (!q) break;
        q++;
    }
    double bw[4];
    for (int i = 0; i < nthr; i++) bw[i] = bandwidth_gbs(thr[i]);
    printf("%-5s %3s %9s %12s %12s %10s %12s %9s\n", "dtype", "thr", "MB/token", "prefill t/s", "decode t/s",
           "read GB/s", "floor t/s", "of floor");
    const char *names[] = {"f32", "bf16", "int8", "int4"};
    for (int k = 0; k < 4; k++) {
        if (!strstr(dtypes, names[k])) continue;
        aios_model *model = NULL;
        mem_model mm = {w, NULL, n};
        aios_decoder *d = NULL;
        aios_status s;
        if (k < 2) {
            if (write_st(tmp, w, n, k == 0 ? AIOS_DTYPE_F32 : AIOS_DTYPE_BF16, cfg_json)) return 1;
            s = aios_model_open(tmp, NULL, &model);
            aios_decoder_config mc;
            if (!s) s = aios_decoder_config_from_model(aios_model_get_config(model), &mc);
            if (!s) s = aios_decoder_create(&mc, aios_decoder_model_lookup, model, &d);
        } else {
            if (build_quant(&mm, k == 2 ? AIOS_DTYPE_Q8 : AIOS_DTYPE_Q4)) {
                fprintf(stderr, "bench_generate: quantize: %s\n", aios_last_error());
                return 1;
            }
            s = aios_decoder_create(&c, mem_lookup, &mm, &d);
        }
        if (s) {
            fprintf(stderr, "bench_generate: %s: %s\n", names[k], aios_last_error());
            return 1;
        }
        double mb = (double)aios_decoder_weight_bytes(d) / 1e6;
        for (int i = 0; i < nthr; i++) {
            aios_set_threads(thr[i]);
            result r;
            if (run(d, P, D, &r)) {
                fprintf(stderr, "bench_generate: %s\n", aios_last_error());
                return 1;
            }
            double floor_tps = bw[i] * 1e3 / mb;
            printf("%-5s %3d %9.1f %12.1f %12.2f %10.2f %12.2f %8.0f%%\n", names[k], thr[i], mb, r.prefill_tps,
                   r.decode_tps, bw[i], floor_tps, 100.0 * r.decode_tps / floor_tps);
            fflush(stdout);
        }
        aios_decoder_free(d);
        aios_model_free(model);
        free_mem(&mm);
        char p[4200];
        snprintf(p, sizeof p, "%s/model.safetensors", tmp);
        unlink(p);
        snprintf(p, sizeof p, "%s/config.json", tmp);
        unlink(p);
    }
    rmdir(tmp);
    free(w);
    free(cfg_json);
    return 0;
}
