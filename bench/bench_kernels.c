/* bench_kernels.c — matmul throughput (GFLOP/s) for every weight dtype at the shapes of
 * all-MiniLM-L6-v2 (n_embd 384, n_ff 1536) and a 1B-class decoder GEMV, against OpenBLAS
 * sgemm (loaded with dlopen when present) and our scalar reference, in the same run.
 * `gguf`: instead, f32 / f16 / bf16 and the GGUF block types at SmolLM2-135M's shapes (576x576, 1536x576,
 * 576x1536, 49152x576), decode (T 1) and prefill (T 128), GFLOP/s and weight GB/s.
 * `batch`: the batched decode steps of continuous batching — Q4_1 / Q8_0 at SmolLM2's shapes,
 * T = 1..16 token rows, microseconds per call and per row (which path a T takes: dispatch.c).
 * `attn`: one decode `aios_attention` call at SmolLM2-135M's shape (9 query heads, 3 KV heads,
 * head_dim 64, 1 query row, no mask, a KV cache of stride 3 x 64) and at a Qwen-like head_dim
 * 128, over 64 / 512 / 2048 cached positions: microseconds per call, best of 25 x 60 (short
 * windows: on a shared machine the best one is the least disturbed), "warm" on one cache (in L2
 * up to 512 positions) and "cold" walking 30 layers' caches in turn as a decode step does; each
 * for a float32 cache (aios_attention) and a float16 one (aios_attention_kv16).
 * `dec`: the int8-activation decode GEMVs of the grouped types (bench_dec).
 * `step`: a whole decode step's 4-bit GEMVs from memory, in place / packed, 4 KiB / 2 MiB pages (bench_step).
 * Usage: bench_kernels [threads] [gguf|batch|attn|dec|step]   (default: AIOS_THREADS or all cores) */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>

#include "kernels/cpu/kern.h"
#include "kernels/kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
static sgemm_fn g_sgemm;
static void (*g_blas_threads)(int);

static void make(aios_tensor *t, aios_dtype dt, int64_t n_out, int64_t n_in, void **buf, float **sc) {
    memset(t, 0, sizeof *t);
    t->name = "w";
    t->dtype = dt;
    t->ndim = 2;
    t->shape[0] = n_out;
    t->shape[1] = n_in;
    size_t n = (size_t)(n_out * n_in);
    size_t nb = dt == AIOS_DTYPE_F32 ? n * 4 : dt == AIOS_DTYPE_F16 || dt == AIOS_DTYPE_BF16 ? n * 2 : dt == AIOS_DTYPE_Q8 ? n
              : dt == AIOS_DTYPE_Q4 ? (n + 1) / 2 : (n + 3) / 4;
    uint8_t *p = aligned_alloc(64, (nb + 63) / 64 * 64);
    for (size_t i = 0; i < nb; i++) p[i] = (uint8_t)(rand() & 0x3F); /* small finite values for every dtype */
    if (dt == AIOS_DTYPE_F32)
        for (size_t i = 0; i < n; i++) ((float *)p)[i] = (float)(rand() % 200 - 100) / 1000.0f;
    t->data = p;
    t->nbytes = nb;
    *buf = p;
    *sc = malloc(sizeof(float) * (size_t)n_out);
    for (int64_t i = 0; i < n_out; i++) (*sc)[i] = 0.01f;
    if (dt >= AIOS_DTYPE_Q8) {
        t->scales = *sc;
        t->n_scales = n_out;
        t->quant_axis = 0;
    }
}

static double gflops(aios_dtype dt, int64_t n_out, int64_t n_in, int64_t T, int ref) {
    aios_tensor W;
    void *buf;
    float *sc;
    make(&W, dt, n_out, n_in, &buf, &sc);
    float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *y = malloc(sizeof(float) * (size_t)(T * n_out));
    for (int64_t i = 0; i < T * n_in; i++) x[i] = (float)(rand() % 200 - 100) / 100.0f;
    double flop = 2.0 * n_out * n_in * T, t0 = now(), t;
    int it = 0;
    do {
        if (ref == 2) g_sgemm(101, 111, 112, (int)T, (int)n_out, (int)n_in, 1.0f, x, (int)n_in, W.data, (int)n_in, 0.0f, y, (int)n_out);
        else if (ref) aios_ref_matmul(y, x, &W, NULL, T);
        else aios_matmul(y, x, &W, NULL, T);
        it++;
        t = now() - t0;
    } while (t < 0.3);
    free(x), free(y), free(buf), free(sc);
    return flop * it / t / 1e9;
}

/* A (n_out, n_in) GGUF weight of random blocks with finite f16 scales in every scale field. */
static void make_gguf(aios_tensor *t, aios_dtype dt, int64_t n_out, int64_t n_in, void **buf) {
    static const struct { aios_dtype t; int off[2]; } offs[] = {
        {AIOS_DTYPE_GGUF_Q4_0, {0, 0}}, {AIOS_DTYPE_GGUF_Q4_1, {0, 2}}, {AIOS_DTYPE_GGUF_Q5_0, {0, 0}},
        {AIOS_DTYPE_GGUF_Q5_1, {0, 2}}, {AIOS_DTYPE_GGUF_Q8_0, {0, 0}}, {AIOS_DTYPE_GGUF_Q4_K, {0, 2}},
        {AIOS_DTYPE_GGUF_Q5_K, {0, 2}}, {AIOS_DTYPE_GGUF_Q6_K, {208, 208}}};
    int blk = 32, bytes = 0;
    aios_gguf_block(dt, &blk, &bytes);
    size_t nb = (size_t)(n_out * (n_in / blk)), n = nb * (size_t)bytes;
    uint8_t *p = aligned_alloc(64, (n + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rand();
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++)
        if (offs[k].t == dt)
            for (size_t b = 0; b < nb; b++)
                for (int j = 0; j < 2; j++) {
                    uint16_t h = aios_f32_to_f16((float)(rand() % 200 - 100) / 5000.0f);
                    memcpy(p + b * (size_t)bytes + offs[k].off[j], &h, 2);
                }
    memset(t, 0, sizeof *t);
    t->name = "w";
    t->dtype = dt;
    t->ndim = 2;
    t->shape[0] = n_out;
    t->shape[1] = n_in;
    t->data = p;
    t->nbytes = n;
    *buf = p;
}

/* seconds per call of y = x @ W^T: the fastest call in 0.3 s (on a shared, loaded machine the
 * minimum is the figure least disturbed by the neighbours; the mean measures them). */
static const aios_matmul_pack *g_pack; /* time_matmul through aios_matmul_packed when set */
static double time_matmul(const aios_tensor *W, int64_t T) {
    int64_t n_out = W->shape[0], n_in = W->shape[1];
    float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *y = malloc(sizeof(float) * (size_t)(T * n_out));
    for (int64_t i = 0; i < T * n_in; i++) x[i] = (float)(rand() % 200 - 100) / 100.0f;
    aios_matmul(y, x, W, NULL, T); /* warm */
    double t0 = now(), best = 1e30;
    do {
        double t1 = now();
        if (g_pack) aios_matmul_packed(y, x, W, g_pack, NULL, T);
        else aios_matmul(y, x, W, NULL, T);
        double dt = now() - t1;
        best = dt < best ? dt : best;
    } while (now() - t0 < 0.3);
    free(x), free(y);
    return best;
}

static int bench_gguf(void) {
    static const struct { const char *what; int64_t n_out, n_in; } shapes[] = {
        {"q/o 576x576", 576, 576}, {"up 1536x576", 1536, 576}, {"down 576x1536", 576, 1536}, {"head 49152x576", 49152, 576}};
    static const aios_dtype dts[] = {AIOS_DTYPE_F32,       AIOS_DTYPE_F16,       AIOS_DTYPE_BF16,       AIOS_DTYPE_GGUF_Q4_1, AIOS_DTYPE_GGUF_Q8_0,
                                     AIOS_DTYPE_GGUF_Q4_0, AIOS_DTYPE_GGUF_Q4_K, AIOS_DTYPE_GGUF_Q6_K,
                                     AIOS_DTYPE_GGUF_Q5_0, AIOS_DTYPE_GGUF_Q5_1, AIOS_DTYPE_GGUF_Q5_K};
    static const char *dn[] = {"f32", "f16", "bf16", "q4_1", "q8_0", "q4_0", "q4_K", "q6_K", "q5_0", "q5_1", "q5_K"};
    const int nd = (int)(sizeof dts / sizeof dts[0]);
    for (int T = 1; T <= 128; T += 127) {
        printf("%s (T %d): GFLOP/s%s\n", T == 1 ? "decode GEMV" : "prefill GEMM", T, T == 1 ? " / weight GB/s" : "");
        printf("%-16s", "shape");
        for (int d = 0; d < nd; d++) printf(" %12s", dn[d]);
        printf("\n");
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            printf("%-16s", shapes[s].what);
            for (int d = 0; d < nd; d++) {
                int blk = 1;
                if (aios_gguf_block(dts[d], &blk, NULL) && shapes[s].n_in % blk) { /* K-quants need n_in % 256 */
                    printf(" %12s", "-");
                    continue;
                }
                aios_tensor W;
                void *buf;
                float *sc = NULL;
                if (dts[d] == AIOS_DTYPE_F32 || dts[d] == AIOS_DTYPE_F16 || dts[d] == AIOS_DTYPE_BF16) make(&W, dts[d], shapes[s].n_out, shapes[s].n_in, &buf, &sc);
                else make_gguf(&W, dts[d], shapes[s].n_out, shapes[s].n_in, &buf);
                double sec = time_matmul(&W, T), gf = 2.0 * (double)(shapes[s].n_out * shapes[s].n_in) * T / sec / 1e9;
                if (T == 1) printf("   %4.1f/%5.1f", gf, (double)W.nbytes / sec / 1e9);
                else printf(" %12.1f", gf);
                fflush(stdout);
                free(buf), free(sc);
            }
            printf("\n");
        }
    }
    return 0;
}

static int bench_batch(void) {
    static const struct { const char *what; int64_t n_out, n_in; } shapes[] = {
        {"q/o 576x576", 576, 576}, {"up 1536x576", 1536, 576}, {"down 576x1536", 576, 1536}};
    static const aios_dtype dts[] = {AIOS_DTYPE_GGUF_Q4_1, AIOS_DTYPE_GGUF_Q8_0};
    static const char *dn[] = {"q4_1", "q8_0"};
    static const int Ts[] = {1, 2, 3, 4, 5, 6, 8, 12, 16};
    const int nT = (int)(sizeof Ts / sizeof Ts[0]);
    printf("%-6s %-16s", "dtype", "shape");
    for (int i = 0; i < nT; i++) printf("  T=%-2d us(/row)", Ts[i]);
    printf("\n");
    for (int d = 0; d < 2; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            aios_tensor W;
            void *buf;
            make_gguf(&W, dts[d], shapes[s].n_out, shapes[s].n_in, &buf);
            printf("%-6s %-16s", dn[d], shapes[s].what);
            for (int i = 0; i < nT; i++) {
                double us = time_matmul(&W, Ts[i]) * 1e6;
                printf(" %6.1f(%5.1f)", us, us / Ts[i]);
                fflush(stdout);
            }
            printf("\n");
            free(buf);
        }
    return 0;
}

static int bench_attn(void) {
    static const struct { int64_t H, Hkv, hd; } shapes[] = {{9, 3, 64}, {16, 2, 128}};
    static const int64_t tks[] = {64, 512, 2048};
    enum { NL = 30 }; /* "cold": the call walks NL layers' caches, as a decode step does */
    printf("%-18s", "heads/kv/head_dim");
    for (size_t c = 0; c < sizeof tks / sizeof tks[0]; c++)
        printf("  Tk=%-4lld f32 warm/cold us  f16 warm/cold us", (long long)tks[c]);
    printf("\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t H = shapes[s].H, Hkv = shapes[s].Hkv, hd = shapes[s].hd, stride = Hkv * hd;
        float *q = malloc(sizeof(float) * (size_t)(H * hd)), *o = malloc(sizeof(float) * (size_t)(H * hd));
        for (int64_t i = 0; i < H * hd; i++) q[i] = (float)(rand() % 200 - 100) / 100.0f;
        printf("%3lld/%lld/%-12lld", (long long)H, (long long)Hkv, (long long)hd);
        for (size_t c = 0; c < sizeof tks / sizeof tks[0]; c++) {
            const int64_t per = tks[c] * stride;
            float *k = malloc(sizeof(float) * (size_t)(NL * per)), *v = malloc(sizeof(float) * (size_t)(NL * per));
            for (int64_t i = 0; i < NL * per; i++) {
                k[i] = (float)(rand() % 200 - 100) / 100.0f;
                v[i] = (float)(rand() % 200 - 100) / 100.0f;
            }
            uint16_t *k16 = malloc(2 * (size_t)(NL * per)), *v16 = malloc(2 * (size_t)(NL * per));
            aios_f32_to_f16_n(k16, k, NL * per);
            aios_f32_to_f16_n(v16, v, NL * per);
            for (int h = 0; h < 2; h++) {
                double best[2] = {1e9, 1e9};
                for (int cold = 0; cold < 2; cold++)
                    for (int rep = 0; rep < 25; rep++) {
                        double t0 = now();
                        for (int it = 0; it < 2 * NL; it++) {
                            const int64_t l = cold ? it % NL : 0;
                            aios_status st = h ? aios_attention_kv16(o, q, k16 + l * per, v16 + l * per, 1, tks[c], H, Hkv,
                                                                     hd, stride, NULL, 0.125f)
                                               : aios_attention(o, q, k + l * per, v + l * per, 1, tks[c], H, Hkv, hd,
                                                                stride, NULL, 0.125f);
                            if (st != AIOS_OK) return 1;
                        }
                        double dt = (now() - t0) / (2 * NL);
                        best[cold] = dt < best[cold] ? dt : best[cold];
                    }
                printf("  %8.2f/%-8.2f", best[0] * 1e6, best[1] * 1e6);
                fflush(stdout);
            }
            free(k16), free(v16);
            free(k), free(v);
        }
        printf("\n");
        free(q), free(o);
    }
    return 0;
}

/* W (from make) in groups of 32 with float16 scales (and zero points when zp), both in the one
 * array returned (free it after W). */
static uint16_t *g32_f16(aios_tensor *W, int zp) {
    const int64_t ng = W->shape[0] * W->shape[1] / 32;
    uint16_t *s16 = malloc(4 * (size_t)ng);
    for (int64_t g = 0; g < ng; g++)
        s16[g] = aios_f32_to_f16(0.01f + (float)(g % 7) * 1e-3f), s16[ng + g] = aios_f32_to_f16((float)(g % 5) - 2.0f);
    W->scales = (const float *)(const void *)s16, W->scale_dtype = AIOS_DTYPE_F16, W->n_scales = ng, W->group_size = 32;
    W->zero_points = zp ? (const float *)(const void *)(s16 + ng) : NULL;
    return s16;
}

/* `dec`: the decode GEMVs (T 1 and 2) at SmolLM2-135M's shapes for the grouped types a decode reads:
 * GGUF Q4_0 / Q8_0 / Q5_0 blocks and ArrowQuant int4 / int8 in groups of 32 with f16 scales (int4 asymmetric:
 * f16 zero points), and Q4_0 / Q5_0 / int4 g32 repacked in blocks of 8 rows (aios_matmul_pack_new), with int8,
 * 16-bit (mode 3) and exact float activations, microseconds per call. */
static int bench_dec(void) {
    static const struct { const char *what; int64_t n_out, n_in; } shapes[] = {
        {"q/o 576x576", 576, 576}, {"up 1536x576", 1536, 576}, {"down 576x1536", 576, 1536}, {"head 49152x576", 49152, 576}};
    /* columns: weight (0 Q4_0, 1 Q8_0, 2 int4 g32, 3 int8 g32, 4 Q5_0), activation mode (1 int8, 3 16-bit, 0 exact
     * float), repacked in blocks of 8 rows (aios_matmul_pack_new) */
    static const struct { const char *name; int d, mode, pack; } col[] = {
        {"Q4_0", 0, 1, 0},      {"Q8_0", 1, 1, 0},      {"int4g32", 2, 1, 0},  {"int8g32", 3, 1, 0},
        {"Q4_0 pack", 0, 1, 1}, {"int4 pack", 2, 1, 1}, {"Q4_0 x16", 0, 3, 1}, {"int4 x16", 2, 3, 1},
        {"Q8_0 x16", 1, 3, 0},  {"int8 x16", 3, 3, 0},  {"Q4_0 f32", 0, 0, 0}, {"int4 f32", 2, 0, 0},
        {"Q8_0 f32", 1, 0, 0},  {"Q5_0", 4, 1, 0},      {"Q5_0 pack", 4, 1, 1}, {"Q5_0 x16", 4, 3, 1}};
    enum { ND = sizeof col / sizeof col[0] };
    for (int T = 1; T <= 2; T++) {
        printf("T %d, us per call%-6s", T, "");
        for (int c = 0; c < ND; c++) printf(" %10s", col[c].name);
        printf("\n");
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t n_out = shapes[s].n_out, n_in = shapes[s].n_in;
            printf("%-22s", shapes[s].what);
            for (int c = 0; c < ND; c++) {
                const int d = col[c].d;
                aios_kernels_int8_activations(col[c].mode);
                aios_tensor W;
                void *buf = NULL;
                float *sc = NULL;
                uint16_t *s16 = NULL;
                if (d < 2 || d == 4)
                    make_gguf(&W, d == 4 ? AIOS_DTYPE_GGUF_Q5_0 : d ? AIOS_DTYPE_GGUF_Q8_0 : AIOS_DTYPE_GGUF_Q4_0, n_out, n_in,
                              &buf);
                else {
                    make(&W, d == 2 ? AIOS_DTYPE_Q4 : AIOS_DTYPE_Q8, n_out, n_in, &buf, &sc);
                    s16 = g32_f16(&W, d == 2);
                }
                aios_matmul_pack *P = NULL;
                if (col[c].pack && aios_matmul_pack_new(&W, &P) != AIOS_OK) return 1;
                g_pack = P;
                printf(" %10.1f", time_matmul(&W, T) * 1e6);
                g_pack = NULL;
                aios_matmul_pack_free(P);
                fflush(stdout);
                free(buf), free(sc), free(s16);
            }
            printf("\n");
        }
    }
    return 0;
}

/* `step`: a whole decode step's GEMVs from memory, not cache: SmolLM2-135M's 30 layers of q, k, v, o,
 * gate, up, down (576 / 192 / 1536 wide, ~66 MB of 4-bit weights, twice the L3 here) as distinct
 * weights, int8 activations, 1 token: milliseconds per step (best of 15), for Q4_0 and int4 g32 asym f16,
 * read in place, through their q4x8 packs, and both again with every weight (or pack) moved onto
 * 2 MiB pages (one madvise'd arena) — what the page size is worth to each kernel. */
static void *arena_huge(size_t bytes) {
    const size_t HP = (size_t)2 << 20;
    bytes = (bytes + HP - 1) / HP * HP;
    void *v = NULL;
    if (posix_memalign(&v, HP, bytes)) return NULL;
    madvise(v, bytes, MADV_HUGEPAGE);
    memset(v, 0, bytes);
    return v;
}

static int bench_step(void) {
    enum { NL = 30, NW = 7 };
    static const int64_t shp[NW][2] = {{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}};
    aios_kernels_int8_activations(1);
    float *x = malloc(sizeof(float) * 1536), *y = malloc(sizeof(float) * 1536);
    for (int i = 0; i < 1536; i++) x[i] = (float)(rand() % 200 - 100) / 100.0f;
    printf("%-10s %12s %12s %12s %12s %12s %12s   ms per step (210 GEMVs)\n", "type", "in place", "in place 2M", "packed",
           "packed 2M", "x16 packed", "f32 act");
    for (int q4 = 0; q4 < 2; q4++) {
        static aios_tensor W[NL][NW];
        static aios_matmul_pack *P[NL][NW];
        void *bufs[NL][NW];
        size_t tot = 0, ptot = 0;
        for (int l = 0; l < NL; l++)
            for (int w = 0; w < NW; w++) {
                const int64_t n_out = shp[w][0], n_in = shp[w][1];
                float *sc = NULL;
                if (!q4) make_gguf(&W[l][w], AIOS_DTYPE_GGUF_Q4_0, n_out, n_in, &bufs[l][w]);
                else {
                    make(&W[l][w], AIOS_DTYPE_Q4, n_out, n_in, &bufs[l][w], &sc);
                    free(sc);
                    g32_f16(&W[l][w], 1);
                }
                if (aios_matmul_pack_new(&W[l][w], &P[l][w]) != AIOS_OK || !P[l][w] || !P[l][w]->q4) return 1;
                tot += W[l][w].nbytes, ptot += aios__q4x8_size(&W[l][w]);
            }
        printf("%-10s", q4 ? "int4 g32" : "Q4_0");
        for (int mode = 0; mode < 6; mode++) {
            /* 0-3 int8 activations (in place / packed, 4 KiB / 2 MiB pages), 4 16-bit activations
             * packed, 5 exact float activations in place */
            const int packed = mode >= 2 && mode <= 4, huge = mode < 4 && mode % 2;
            aios_kernels_int8_activations(mode == 4 ? 3 : mode == 5 ? 0 : 1);
            uint8_t *ar = NULL;
            const void *keep[NL][NW];
            if (huge) { /* move every weight (or pack) into one arena on 2 MiB pages */
                ar = arena_huge(packed ? ptot : tot);
                size_t off = 0;
                for (int l = 0; l < NL; l++)
                    for (int w = 0; w < NW; w++) {
                        const size_t n = packed ? aios__q4x8_size(&W[l][w]) : W[l][w].nbytes;
                        const void *src = packed ? (const void *)P[l][w]->q4 : W[l][w].data;
                        memcpy(ar + off, src, n);
                        keep[l][w] = src;
                        if (packed) P[l][w]->q4 = ar + off;
                        else W[l][w].data = ar + off, P[l][w]->wdata = ar + off;
                        off += (n + 63) / 64 * 64;
                    }
            }
            double best = 1e30;
            for (int rep = 0; rep < 15; rep++) {
                double t0 = now();
                for (int l = 0; l < NL; l++)
                    for (int w = 0; w < NW; w++) {
                        if (packed) aios_matmul_packed(y, x, &W[l][w], P[l][w], NULL, 1);
                        else aios_matmul(y, x, &W[l][w], NULL, 1);
                    }
                double dt = now() - t0;
                best = dt < best ? dt : best;
            }
            printf(" %12.2f", best * 1e3);
            fflush(stdout);
            if (huge) {
                for (int l = 0; l < NL; l++)
                    for (int w = 0; w < NW; w++) {
                        if (packed) P[l][w]->q4 = (uint8_t *)(uintptr_t)keep[l][w];
                        else W[l][w].data = keep[l][w], P[l][w]->wdata = keep[l][w];
                    }
                free(ar);
            }
        }
        printf("\n");
        for (int l = 0; l < NL; l++)
            for (int w = 0; w < NW; w++) {
                aios_matmul_pack_free(P[l][w]);
                if (q4) free((void *)(uintptr_t)W[l][w].scales);
                free(bufs[l][w]);
            }
    }
    free(x), free(y);
    return 0;
}

int main(int argc, char **argv) {
    /* OpenMP reads its wait policy once at load; spinning barriers on a shared machine measure
     * the neighbours, not the kernels — re-run ourselves with passive waiting unless told. */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    if (argc > 1 && atoi(argv[1]) > 0) aios_set_threads(atoi(argv[1]));
    static const struct { const char *name; int (*run)(void); } modes[] = {
        {"gguf", bench_gguf}, {"batch", bench_batch}, {"step", bench_step}, {"dec", bench_dec}, {"attn", bench_attn}};
    for (size_t i = 0; argc > 1 && i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(argv[argc - 1], modes[i].name)) {
            double la[1] = {0};
            getloadavg(la, 1);
            printf("tier %s, %d threads, load %.1f\n", aios_kernels_tier(), aios_get_threads(), la[0]);
            return modes[i].run();
        }
    void *h = dlopen("libopenblas.so.0", RTLD_NOW);
    if (h) {
        g_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
        *(void **)&g_blas_threads = dlsym(h, "openblas_set_num_threads");
        if (g_blas_threads) g_blas_threads(aios_get_threads());
    }
    double la[1] = {0};
    getloadavg(la, 1);
    printf("tier %s, %d threads, OMP_WAIT_POLICY=%s, load %.1f; GFLOP/s (higher is better)\n", aios_kernels_tier(),
           aios_get_threads(), getenv("OMP_WAIT_POLICY"), la[0]);
    static const struct { const char *what; int64_t n_out, n_in, T; } shapes[] = {
        {"MiniLM qkv/o  b32", 384, 384, 512}, {"MiniLM ffn-up b32", 1536, 384, 512}, {"MiniLM ffn-dn b32", 384, 1536, 512},
        {"MiniLM ffn-up b1 ", 1536, 384, 16},  {"decoder GEMV     ", 2048, 2048, 1},
    };
    /* q8i8: int8 weights x int8 activations (aios_kernels_int8_activations, VNNI CPUs only) */
    static const aios_dtype dts[] = {AIOS_DTYPE_F32, AIOS_DTYPE_F16, AIOS_DTYPE_BF16, AIOS_DTYPE_Q8, AIOS_DTYPE_Q4, AIOS_DTYPE_Q2, AIOS_DTYPE_Q8};
    static const char *dn[] = {"f32", "f16", "bf16", "q8", "q4", "q2", "q8i8"};
    const int ndt = aios_cpu()->avx512vnni ? 7 : 6;
    printf("%-18s %8s %8s", "shape (out,in,T)", "openblas", "ref");
    for (int d = 0; d < ndt; d++) printf(" %7s", dn[d]);
    printf("  f32/openblas\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        double blas = g_sgemm ? gflops(AIOS_DTYPE_F32, shapes[s].n_out, shapes[s].n_in, shapes[s].T, 2) : 0;
        double ref = s == 3 ? gflops(AIOS_DTYPE_F32, shapes[s].n_out, shapes[s].n_in, shapes[s].T, 1) : 0;
        printf("%-18s %8.1f %8.1f", shapes[s].what, blas, ref);
        double f32 = 0;
        for (int d = 0; d < ndt; d++) {
            aios_kernels_int8_activations(d == 6);
            double g = gflops(dts[d], shapes[s].n_out, shapes[s].n_in, shapes[s].T, 0);
            aios_kernels_int8_activations(0);
            if (!d) f32 = g;
            printf(" %7.1f", g);
        }
        printf("  %.2fx\n", blas > 0 ? f32 / blas : 0);
    }
    return 0;
}
