/* fuzz_diffuse.c — the sampler under hostile parameters and ids (they arrive from the CLI and,
 * later, HTTP requests): random gen/steps/block lengths, algorithms, plans, caches,
 * temperatures, thresholds, top-k/p, CFG, prompt and suffix ids (in and out of the vocabulary)
 * against a small deterministic denoiser with a KV cache.  Must never crash, hang or leak;
 * errors are fine.  The denoiser also checks the sampler's calls (rows, cache use). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aios.h"

#define FV 37
#define FMAX 96

typedef struct {
    int64_t max_ctx;
    int weird; /* some logits NaN / -inf */
} fz;

static aios_status fz_forward(void *ctx, const int32_t *ids, const int32_t *pos, int64_t n_new, int64_t n_past,
                              const uint8_t *vis, int64_t out_lo, int64_t n_out, float *logits) {
    fz *f = ctx;
    if (n_new <= 0 || n_past < 0 || n_past + n_new > FMAX || (n_past > 0 && !f->max_ctx) || out_lo < 0 ||
        n_out < 0 || out_lo + n_out > n_new)
        abort(); /* the sampler broke its contract */
    int64_t n = n_past + n_new;
    for (int64_t o = 0; o < n_out; o++) {
        int64_t r = out_lo + o;
        uint32_t h = 2166136261u;
        for (int64_t j = 0; j < n; j++)
            if (vis[r * n + j]) h = (h ^ (uint32_t)(j < n_past ? j : ids[j - n_past] + 7 * j)) * 16777619u;
        for (int v = 0; v < FV; v++) {
            h = h * 1103515245u + 12345u;
            logits[o * FV + v] = (float)((h >> 8) % 2000) / 100.0f - 10.0f;
            if (f->weird && (h >> 20) % 7 == 0) logits[o * FV + v] = (h >> 24) & 1 ? NAN : -INFINITY;
        }
        (void)pos;
    }
    return AIOS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 16) return 0;
    fz f = {data[0] & 1 ? FMAX : 0, data[0] >> 1 & 1};
    aios_denoiser d;
    memset(&d, 0, sizeof d);
    d.ctx = &f;
    d.n_vocab = FV;
    d.mask_id = FV - 1;
    d.pad_id = data[1] & 1 ? FV - 2 : -1;
    d.shift = data[1] >> 1 & 1;
    d.attn = data[1] >> 2 & 1 ? AIOS_DENOISE_BLOCK_CAUSAL : AIOS_DENOISE_FULL;
    d.block_size = data[1] >> 3 & 7;
    d.max_ctx = f.max_ctx;
    d.n_eos = data[1] >> 6 & 1;
    d.eos_ids[0] = 3;
    d.forward = fz_forward;
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = data[2] % 40;
    p.steps = data[3] % 48;
    p.block_length = data[4] % 20;
    p.algorithm = (aios_remask)(data[5] % 5);
    p.plan = (aios_plan)(data[6] % 4);
    p.kv_cache = (aios_kv_mode)(data[7] % 5);
    p.temperature = data[8] < 200 ? data[8] / 50.0 : -1;
    p.threshold = data[9] < 230 ? data[9] / 200.0 : 0;
    p.top_k = data[10] % 8;
    p.top_p = data[11] ? data[11] / 255.0 : 0;
    p.guidance_scale = data[12] & 1 ? data[12] / 64.0 : 0;
    p.stop_at_eos = data[13] & 1;
    p.seed = data[14];
    p.keep_trace = data[15] & 1;
    size_t rest = size - 16, np = rest / 2, ns = rest - np;
    if (np > 40) np = 40;
    if (ns > 8) ns = 8;
    int32_t prompt[40], suffix[8];
    for (size_t i = 0; i < np; i++) prompt[i] = data[16 + i] % (FV + 2) - 1; /* -1 and FV are out of range */
    for (size_t i = 0; i < ns; i++) suffix[i] = data[16 + np + i] % FV;
    aios_diffuse_result r;
    if (aios_diffuse_sample(&d, &p, prompt, (int64_t)np, suffix, (int64_t)ns, &r) == AIOS_OK) {
        for (int64_t i = 0; i < r.n_ids; i++)
            if (r.ids[i] < 0 || r.ids[i] >= FV) abort();
        aios_diffuse_result_free(&r);
    }
    return 0;
}
