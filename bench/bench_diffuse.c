/* bench_diffuse.c — masked-diffusion sampling speed on a model of Qwen3-0.6B's shape
 * (n_embd 1024, 16 heads / 8 KV heads, head_dim 128, n_ff 3072, vocab 151936, q/k norms, tied
 * head, bf16 weights) with random weights and FEWER LAYERS (2 instead of 28, BENCH_LAYERS
 * overrides) so that it runs in a minute or two on 2 cores.
 *
 * For gen length 64 and 256 it prints tokens/s and steps/s of
 *   - the block-causal sampler (BD3LM-style, block 32): uncached vs the exact block KV cache
 *     (their ids must be identical),
 *   - the bidirectional sampler (LLaDA-style, block 32): uncached vs the Fast-dLLM prefix cache
 *     (agreement with the uncached ids reported),
 * and autoregressive greedy decode of the same model (prefill + one token per forward with the
 * KV cache) in the same run — the baseline the ratios are against.
 * Every sampler commits BENCH_TPS tokens per step (default 4; steps = gen / 4).
 * Columns: rows through the layers and rows through the 151936-wide LM head, and the work in
 * GFLOP at this depth and (estimated from the same row counts) at Qwen3-0.6B's 28 layers: with
 * 2 layers the LM head dominates a diffusion step, so the caches' savings show fully only in
 * the 28-layer column.
 * Usage: bench_diffuse [threads]    env: BENCH_LAYERS, BENCH_TPS, BENCH_GENS ("64,256") */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/diffuse.h"
#include "kernels/kernels.h"
#include "model/decoder.h"

#define MAXT 320 /* 2 + 11 per layer, 28 layers */
typedef struct {
    char name[MAXT][96];
    aios_tensor t[MAXT];
    int n;
} weights;

static uint64_t g_rng = 0x1234567;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

static void add(weights *w, const char *name, int64_t n_out, int64_t n_in, float scale, float base) {
    if (w->n >= MAXT) {
        fprintf(stderr, "bench_diffuse: too many tensors\n");
        exit(1);
    }
    aios_tensor *t = &w->t[w->n];
    snprintf(w->name[w->n], sizeof w->name[0], "%s", name);
    memset(t, 0, sizeof *t);
    t->name = w->name[w->n];
    t->dtype = AIOS_DTYPE_BF16;
    t->ndim = n_in ? 2 : 1;
    t->shape[0] = n_out;
    t->shape[1] = n_in;
    size_t n = (size_t)n_out * (size_t)(n_in ? n_in : 1);
    uint16_t *p = malloc(n * 2);
    for (size_t i = 0; i < n; i++) p[i] = aios_f32_to_bf16(base + scale * frand());
    t->data = p;
    t->nbytes = n * 2;
    w->n++;
}

static const aios_tensor *lookup(void *ctx, const char *name) {
    weights *w = ctx;
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->name[i], name)) return &w->t[i];
    return NULL;
}

typedef struct {
    double sec;
    int steps;
    int64_t rows, lrows;
    int32_t ids[512];
    int64_t n;
} run_out;

static int run(const aios_denoiser *dn, const int32_t *prompt, int64_t np, int64_t gen, int tps, aios_kv_mode kv,
               run_out *o) {
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = gen;
    p.block_length = 32;
    p.steps = (int)(gen / tps);
    p.kv_cache = kv;
    p.stop_at_eos = 0;
    p.keep_trace = 0;
    aios_diffuse_result r;
    aios_status s = aios_diffuse_sample(dn, &p, prompt, np, NULL, 0, &r);
    if (s != AIOS_OK) {
        fprintf(stderr, "bench_diffuse: %s\n", aios_last_error());
        return 0;
    }
    o->sec = r.seconds;
    o->steps = r.n_steps;
    o->rows = r.rows_computed;
    o->lrows = r.logits_rows;
    o->n = r.n_ids < 512 ? r.n_ids : 512;
    memcpy(o->ids, r.ids, (size_t)o->n * 4);
    aios_diffuse_result_free(&r);
    return 1;
}

int main(int argc, char **argv) {
    if (argc > 1) aios_set_threads(atoi(argv[1]));
    const char *e;
    int layers = (e = getenv("BENCH_LAYERS")) ? atoi(e) : 2;
    int tps = (e = getenv("BENCH_TPS")) ? atoi(e) : 4;
    int64_t gens[4] = {64, 256}, ngen = 2;
    if ((e = getenv("BENCH_GENS"))) {
        ngen = 0;
        for (char *q = (char *)e; *q && ngen < 4;) {
            gens[ngen++] = strtol(q, &q, 10);
            if (*q == ',') q++;
            else break;
        }
    }
    if (layers < 1 || layers > 28 || tps < 1) {
        fprintf(stderr, "bench_diffuse: BENCH_LAYERS 1..28, BENCH_TPS >= 1\n");
        return 2;
    }
    const int64_t E = 1024, NH = 16, NKV = 8, HD = 128, FF = 3072, V = 151936;
    aios_decoder_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.model_type, sizeof c.model_type, "qwen3");
    c.naming = AIOS_NAMING_HF;
    c.n_embd = E;
    c.n_head = NH;
    c.n_head_kv = NKV;
    c.head_dim = HD;
    c.n_layer = layers;
    c.n_ff = FF;
    c.n_vocab = V;
    c.n_ctx_train = 40960;
    c.eps = 1e-6f;
    c.rope_theta = 1000000.0;
    c.rope_factor = 1.0;
    c.rope_orig_ctx = 40960;
    c.qk_norm = 1;
    c.tied = 1;
    c.bos_id = -1;
    c.pad_id = 151643;
    c.mask_id = 151669;
    weights *w = calloc(1, sizeof *w);
    char nm[96];
    add(w, "model.embed_tokens.weight", V, E, 1.0f, 0);
    add(w, "model.norm.weight", E, 0, 0.1f, 1.0f);
    for (int l = 0; l < layers; l++) {
#define L(s) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, s), nm)
        add(w, L("input_layernorm.weight"), E, 0, 0.1f, 1.0f);
        add(w, L("post_attention_layernorm.weight"), E, 0, 0.1f, 1.0f);
        add(w, L("self_attn.q_proj.weight"), NH * HD, E, 1.7f / sqrtf((float)E), 0);
        add(w, L("self_attn.k_proj.weight"), NKV * HD, E, 1.7f / sqrtf((float)E), 0);
        add(w, L("self_attn.v_proj.weight"), NKV * HD, E, 1.7f / sqrtf((float)E), 0);
        add(w, L("self_attn.o_proj.weight"), E, NH * HD, 1.7f / sqrtf((float)(NH * HD)), 0);
        add(w, L("self_attn.q_norm.weight"), HD, 0, 0.1f, 1.0f);
        add(w, L("self_attn.k_norm.weight"), HD, 0, 0.1f, 1.0f);
        add(w, L("mlp.gate_proj.weight"), FF, E, 1.7f / sqrtf((float)E), 0);
        add(w, L("mlp.up_proj.weight"), FF, E, 1.7f / sqrtf((float)E), 0);
        add(w, L("mlp.down_proj.weight"), E, FF, 1.7f / sqrtf((float)FF), 0);
#undef L
    }
    aios_decoder *dec = NULL;
    if (aios_decoder_create(&c, lookup, w, &dec) != AIOS_OK) {
        fprintf(stderr, "bench_diffuse: %s\n", aios_last_error());
        return 1;
    }
    aios_diffusion_model *bc = NULL, *bi = NULL;
    if (aios__diffusion_model_wrap(dec, AIOS_DENOISE_BLOCK_CAUSAL, 0, c.mask_id, c.pad_id, 32, &bc) != AIOS_OK ||
        aios__diffusion_model_wrap(dec, AIOS_DENOISE_FULL, 0, c.mask_id, -1, 0, &bi) != AIOS_OK ||
        aios_diffusion_model_set_cache(bc, 512) != AIOS_OK || aios_diffusion_model_set_cache(bi, 512) != AIOS_OK) {
        fprintf(stderr, "bench_diffuse: %s\n", aios_last_error());
        return 1;
    }
    int32_t prompt[16];
    for (int i = 0; i < 16; i++) prompt[i] = 1000 + 37 * i;
    printf("bench_diffuse: Qwen3-0.6B shape with %d layers (of 28), bf16 random weights, vocab %lld, %d threads, "
           "kernels %s, %d tokens committed per step, block 32, prompt 16\n",
           layers, (long long)V, aios_get_threads(), aios_kernels_tier(), tps);
    /* multiply-adds per row per layer (projections + MLP) and per LM-head row: the work a run
     * does is 2 * (rows * layers * per_layer + lm_rows * E * V) FLOP (attention aside) */
    const double per_layer = (double)E * (NH * HD + 2 * NKV * HD) + (double)NH * HD * E + 3.0 * E * FF;
    const double head = (double)E * V;
#define GF(rows, lrows, nl) (2.0 * ((double)(rows) * (nl) * per_layer + (double)(lrows) * head) / 1e9)
    printf("%-30s %5s %6s %8s %9s %8s %6s %6s %8s %9s  %s\n", "sampler", "gen", "steps", "seconds", "tokens/s",
           "steps/s", "rows", "lmrows", "GFLOP", "GFLOP@28L", "vs AR / agreement");
    for (int gi = 0; gi < ngen; gi++) {
        int64_t G = gens[gi];
        /* autoregressive baseline: prefill the prompt, then one token per forward (greedy) */
        aios_kv_cache *kv = NULL;
        float *lg = malloc((size_t)V * 4);
        if (aios_kv_cache_create(dec, 16 + G + 1, &kv) != AIOS_OK) return 1;
        double t0 = aios__now();
        aios_forward_opts o;
        memset(&o, 0, sizeof o);
        o.attn = AIOS_FWD_CAUSAL;
        if (aios_decoder_forward(dec, kv, prompt, 16, &o, lg) != AIOS_OK) return 1;
        for (int64_t i = 0; i < G; i++) {
            int32_t best = 0;
            for (int64_t v = 1; v < V; v++)
                if (lg[v] > lg[best]) best = (int32_t)v;
            if (aios_decoder_forward(dec, kv, &best, 1, &o, lg) != AIOS_OK) return 1;
        }
        double ar = aios__now() - t0;
        aios_kv_cache_free(kv);
        free(lg);
        double ar_tps = (double)G / ar;
        printf("%-30s %5lld %6lld %8.3f %9.1f %8.1f %6lld %6lld %8.1f %9.1f  %s\n", "autoregressive (KV cache)",
               (long long)G, (long long)G, ar, ar_tps, ar_tps, (long long)(16 + G), (long long)(G + 1),
               GF(16 + G, G + 1, layers), GF(16 + G, G + 1, 28), "1.00x");
        run_out u, x;
        const struct {
            const char *name, *cname;
            aios_diffusion_model *m;
            aios_kv_mode mode;
        } cases[2] = {{"block-causal (BD3LM)", "exact block cache", bc, AIOS_KV_EXACT},
                      {"bidirectional (LLaDA)", "Fast-dLLM prefix cache", bi, AIOS_KV_PREFIX}};
        for (int k = 0; k < 2; k++) {
            const aios_denoiser *dn = aios_diffusion_model_denoiser(cases[k].m);
            if (!run(dn, prompt, 16, G, tps, AIOS_KV_NONE, &u) || !run(dn, prompt, 16, G, tps, cases[k].mode, &x))
                return 1;
            char lab[64];
            snprintf(lab, sizeof lab, "%s uncached", cases[k].name);
            printf("%-30s %5lld %6d %8.3f %9.1f %8.2f %6lld %6lld %8.1f %9.1f  %.2fx\n", lab, (long long)G, u.steps,
                   u.sec, G / u.sec, u.steps / u.sec, (long long)u.rows, (long long)u.lrows, GF(u.rows, u.lrows, layers),
                   GF(u.rows, u.lrows, 28), (G / u.sec) / ar_tps);
            int agree = 0;
            for (int64_t i = 0; i < u.n && i < x.n; i++) agree += u.ids[i] == x.ids[i];
            int64_t off = u.n - G;
            snprintf(lab, sizeof lab, "  + %s", cases[k].cname);
            printf("%-30s %5lld %6d %8.3f %9.1f %8.2f %6lld %6lld %8.1f %9.1f  %.2fx, %.2fx uncached, %lld/%lld "
                   "ids agree\n",
                   lab, (long long)G, x.steps, x.sec, G / x.sec, x.steps / x.sec, (long long)x.rows, (long long)x.lrows,
                   GF(x.rows, x.lrows, layers), GF(x.rows, x.lrows, 28), (G / x.sec) / ar_tps, u.sec / x.sec,
                   (long long)(agree - off), (long long)G);
        }
        fflush(stdout);
    }
    aios_diffusion_model_free(bc);
    aios_diffusion_model_free(bi);
    aios_decoder_free(dec);
    for (int i = 0; i < w->n; i++) free((void *)w->t[i].data);
    free(w);
    return 0;
}
