/*
 * dispatch.c — the public kernels: argument checks, tier selection, threads, and the
 * matmul driver that every weight dtype shares.
 *
 * Tier: chosen once from aios_cpu() (avx512 > avx2 > ref); AIOS_KERNELS=ref|avx2|avx512 forces
 * one.  Threads: OpenMP over blocks of output rows (AIOS_THREADS, default all cores).
 *
 * Matmul y (T, n_out) = x (T, n_in) @ W^T: rows of W are taken four at a time; a row block is
 * read in chunks of KC columns — f32 weights straight from the mapping, every other dtype
 * dequantized by the tier into a KC-float stack buffer per row (L1-resident, so quantized
 * weights are never inflated beyond 4 x KC floats per thread) — and each chunk is multiplied
 * against the token rows four at a time by the tier's register-tiled micro-kernel: each weight
 * chunk, once in L1, is reused by every token (the T > 1 path of batched BERT and prefill;
 * the activations, T x n_in floats, stay in L2 for BERT-sized batches).  Partial sums
 * accumulate into y, which starts as the bias.
 *
 * Decoding (T <= 3) with int8 / int4 / int2 weights skips the staging buffer: the tier's
 * gemv_q reads the packed bytes, expands them in registers straight into the dot products
 * and prefetches the weight stream ahead (a GEMV is a pure stream of weights; without the
 * prefetch it ran at a tenth of the memory bandwidth).  Threads get large contiguous row
 * ranges so each stream stays sequential.  f32 / f16 / bf16 weights decode through the
 * tier's gemv_f: one row at a time, the matrix read as one sequential stream (widened in
 * registers; several row streams or software prefetch measured slower for plain floats).
 */
#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kernels/cpu/kern.h"

#ifdef AIOS_HAVE_BLAS
#include <cblas.h>
#endif

#define RB 4    /* weight rows per micro-tile */
#define KC 512  /* columns per weight chunk */

static const aios__ktier *g_tier;

static const aios__ktier *best_tier(void) {
#if defined(__x86_64__)
    const aios_cpu_info *c = aios_cpu();
    if (c->avx512f && c->avx512bw && c->avx512vl && c->f16c && c->fma) return &aios__tier_avx512;
    if (c->avx2 && c->fma && c->f16c) return &aios__tier_avx2;
#endif
    return &aios__tier_ref;
}

aios_status aios_kernels_use(const char *name) {
    if (!name || !*name || !strcasecmp(name, "auto")) {
        g_tier = best_tier();
        return AIOS_OK;
    }
    if (!strcasecmp(name, "ref")) {
        g_tier = &aios__tier_ref;
        return AIOS_OK;
    }
#if defined(__x86_64__)
    const aios_cpu_info *c = aios_cpu();
    if (!strcasecmp(name, "avx2")) {
        if (!(c->avx2 && c->fma && c->f16c)) return aios__err(AIOS_ERR_UNSUPPORTED, "kernels: this CPU lacks avx2/fma/f16c");
        g_tier = &aios__tier_avx2;
        return AIOS_OK;
    }
    if (!strcasecmp(name, "avx512")) {
        if (!(c->avx512f && c->avx512bw && c->avx512vl && c->f16c && c->fma))
            return aios__err(AIOS_ERR_UNSUPPORTED, "kernels: this CPU lacks avx512f/bw/vl");
        g_tier = &aios__tier_avx512;
        return AIOS_OK;
    }
#endif
    return aios__err(AIOS_ERR_UNSUPPORTED, "kernels: unknown tier '%s' (ref, avx2, avx512, auto)", name);
}

static const aios__ktier *tier(void) {
    if (!g_tier) {
        const char *e = getenv("AIOS_KERNELS");
        if (!e || aios_kernels_use(e) != AIOS_OK) {
            if (e && *e) aios_log(AIOS_LOG_WARN, "AIOS_KERNELS=%s: %s; using the best available", e, aios_last_error());
            g_tier = best_tier();
        }
    }
    return g_tier;
}

const char *aios_kernels_tier(void) { return tier()->name; }

aios_dot_fn aios_kernels_dot(void) { return tier()->dot; }
aios_lora_bu_fn aios_kernels_lora_bu(void) { return tier()->lora_bu; }
aios_lora_ax16_fn aios_kernels_lora_ax16(void) { return tier()->lora_ax16; }
aios_lora_bu16_fn aios_kernels_lora_bu16(void) { return tier()->lora_bu16; }

/* The team size.  Spinning OpenMP threads on a machine whose cores are busy with other
 * processes make every barrier wait a scheduler time slice for a descheduled peer, so unless
 * the user fixed the count the team is the cores that other processes leave free.  SmolLM2
 * Q4_1 chat decode on the 2-core VM beside one busy loop: 1 thread 79 tok/s, 2 spinning 16-23,
 * 2 waiting passively 58-65; quiet: 2 threads 173, 1 thread 93.  This was OpenMP's dynamic
 * adjustment, which does not do it: libgomp asks sched_getaffinity and sysinfo at *every*
 * parallel region (a decode step has ~200: 151 tok/s on the quiet machine against 173 with
 * the count fixed), takes the 15-minute load average (it reacts in a quarter of an hour, and
 * remembers the aios runs just before this one) and counts this process's own threads as
 * load (a server kept busy by its clients ends with a team of one).  Here, at most once a
 * second: the runnable tasks of the machine now (/proc/loadavg's fourth field) less this
 * process's own running threads (/proc/self/task/..., state R), averaged exponentially over
 * ~3 s (the first look taken as it is); the cores left free, rounded to the nearest, are the
 * team (1 at least).  A thread that finds the refresh taken by another keeps the last count. */
static _Atomic int g_fixed; /* the user's count (AIOS_THREADS / aios_set_threads); 0 = automatic */
static _Atomic int g_auto;  /* the automatic count; 0 = not chosen yet */
static _Atomic int g_env_read;
static _Atomic long long g_auto_next; /* CLOCK_MONOTONIC ns of the next look */
static pthread_mutex_t g_auto_mu = PTHREAD_MUTEX_INITIALIZER;
static double g_auto_last = -1, g_others; /* under g_auto_mu */

int aios__threads_free(int n_cores, double others) {
    if (n_cores < 1) n_cores = 1;
    if (!(others > 0)) others = 0; /* also NaN */
    if (others > n_cores) others = n_cores;
    int n = n_cores - (int)(others + 0.5);
    if (n < 1) n = 1;
    return n > AIOS_KERNEL_MAX_THREADS ? AIOS_KERNEL_MAX_THREADS : n;
}

/* Runnable tasks on the machine other than this process's: -1 where /proc cannot tell. */
static double others_running(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    int running = -1;
    if (!f) return -1;
    if (fscanf(f, "%*f %*f %*f %d/", &running) != 1) running = -1;
    fclose(f);
    if (running < 0) return -1;
    int own = 0;
    DIR *d = opendir("/proc/self/task");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char path[64], buf[512];
            snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
            FILE *t = fopen(path, "r");
            if (!t) continue;
            const size_t len = fread(buf, 1, sizeof buf - 1, t);
            fclose(t);
            buf[len] = 0;
            const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
            if (p && p[1] == ' ' && p[2] == 'R') own++;
        }
        closedir(d);
    }
    if (own < 1) own = 1; /* this thread, reading, is running */
    return running > own ? (double)(running - own) : 0.0;
}

static int threads_auto(void) {
    int n = atomic_load_explicit(&g_auto, memory_order_relaxed);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const long long now_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (n > 0 && now_ns < atomic_load_explicit(&g_auto_next, memory_order_relaxed)) return n;
    if (pthread_mutex_trylock(&g_auto_mu)) return n > 0 ? n : aios_cpu()->n_cores;
    if (now_ns >= atomic_load_explicit(&g_auto_next, memory_order_relaxed)) {
        const double now = (double)now_ns * 1e-9, o = others_running();
        if (o >= 0) {
            if (g_auto_last < 0)
                g_others = o;
            else {
                const double e = exp(-(now - g_auto_last) / 3.0);
                g_others = g_others * e + o * (1 - e);
            }
            g_auto_last = now;
        }
        n = aios__threads_free(aios_cpu()->n_cores, g_auto_last < 0 ? 0.0 : g_others);
        atomic_store_explicit(&g_auto, n, memory_order_relaxed);
        atomic_store_explicit(&g_auto_next, now_ns + 1000000000LL, memory_order_relaxed);
    } else {
        n = atomic_load_explicit(&g_auto, memory_order_relaxed);
    }
    pthread_mutex_unlock(&g_auto_mu);
    return n;
}

void aios_set_threads(int n) {
    atomic_store(&g_env_read, 1);
    atomic_store(&g_fixed, n > 0 ? (n > AIOS_KERNEL_MAX_THREADS ? AIOS_KERNEL_MAX_THREADS : n) : 0);
}

/* AIOS_THREADS is user input: anything that is not an integer in [1, AIOS_KERNEL_MAX_THREADS]
 * means the automatic count (a huge team makes OpenMP fail to create its threads and crash). */
int aios_get_threads(void) {
    if (!atomic_load_explicit(&g_env_read, memory_order_acquire)) {
        const char *e = getenv("AIOS_THREADS");
        long n = 0;
        if (e && *e) {
            char *end;
            n = strtol(e, &end, 10);
            if (*end || n <= 0)
                n = 0;
            else if (n > AIOS_KERNEL_MAX_THREADS)
                n = AIOS_KERNEL_MAX_THREADS;
        }
        int expect = 0;
        if (atomic_compare_exchange_strong(&g_env_read, &expect, 1)) atomic_store(&g_fixed, (int)n);
    }
    const int f = atomic_load_explicit(&g_fixed, memory_order_relaxed);
    return f > 0 ? f : threads_auto();
}

/* Threads worth using for `work` multiply-adds (a thread costs a few microseconds to wake). */
static int threads_for(double work) {
    int n = aios_get_threads();
    if (work < 32768.0) return 1;
    return n;
}

/* ---------------------------------------------------------------- tensors to float */

aios_status aios_tensor_row_f32(float *out, const aios_tensor *W, int64_t row) {
    AIOS_TRY(aios__check_weight(W, "tensor_row"));
    if (row < 0 || row >= W->shape[0])
        return aios__err(AIOS_ERR_RANGE, "tensor_row: row %lld of %lld", (long long)row, (long long)W->shape[0]);
    tier()->deq(out, W, row, 0, W->shape[1]);
    return AIOS_OK;
}

aios_status aios_tensor_to_f32(float *out, const aios_tensor *t) {
    if (!t || t->ndim < 0 || t->ndim > AIOS_MAX_DIMS) return aios__err(AIOS_ERR_INVALID_ARG, "tensor_to_f32: bad tensor");
    aios_tensor v = *t; /* view as (1, numel) — or (rows, cols) for quantized per-row/group */
    int64_t n = aios_tensor_numel(t);
    if (t->ndim >= 2 && (t->dtype == AIOS_DTYPE_Q8 || t->dtype == AIOS_DTYPE_Q4 || t->dtype == AIOS_DTYPE_Q2 ||
                         aios_gguf_block(t->dtype, NULL, NULL))) {
        v.ndim = 2;
        v.shape[0] = t->shape[0];
        v.shape[1] = t->shape[0] ? n / t->shape[0] : 0;
    } else {
        v.ndim = 2;
        v.shape[0] = 1;
        v.shape[1] = n;
        if (t->quant_axis == 0 && t->group_size == 0 && t->n_scales > 1)
            return aios__err(AIOS_ERR_UNSUPPORTED, "tensor_to_f32: %s: per-channel scales on a 1-D tensor",
                             t->name ? t->name : "?");
    }
    if (v.dtype == AIOS_DTYPE_F64 || v.dtype == AIOS_DTYPE_I32 || v.dtype == AIOS_DTYPE_I64) {
        /* small integer/double parameters: convert element by element */
        size_t w = v.dtype == AIOS_DTYPE_I32 ? 4 : 8;
        if (t->nbytes < (size_t)n * w) return aios__err(AIOS_ERR_FORMAT, "tensor_to_f32: %s: short data", t->name ? t->name : "?");
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *p = (const uint8_t *)t->data + (size_t)i * w;
            if (v.dtype == AIOS_DTYPE_F64) {
                double d;
                memcpy(&d, p, 8);
                out[i] = (float)d;
            } else if (v.dtype == AIOS_DTYPE_I32) {
                int32_t d;
                memcpy(&d, p, 4);
                out[i] = (float)d;
            } else {
                int64_t d;
                memcpy(&d, p, 8);
                out[i] = (float)d;
            }
        }
        return AIOS_OK;
    }
    AIOS_TRY(aios__check_weight(&v, "tensor_to_f32"));
    for (int64_t r = 0; r < v.shape[0]; r++) tier()->deq(out + r * v.shape[1], &v, r, 0, v.shape[1]);
    return AIOS_OK;
}

/* ---------------------------------------------------------------- matmul */

#ifdef AIOS_HAVE_BLAS
/* Large f32 products go to OpenBLAS only when built with BLAS=1 and AIOS_BLAS is not 0. */
static int use_blas(const aios_tensor *W, int64_t T) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("AIOS_BLAS");
        on = !(e && !strcmp(e, "0"));
    }
    return on && W->dtype == AIOS_DTYPE_F32 && T >= 16 && ((uintptr_t)W->data & 3) == 0 &&
           (double)T * (double)W->shape[0] * (double)W->shape[1] >= 4e6;
}
#endif

/* int8 weights meet int8 activations (VNNI dot products) only when asked: for the process by
 * AIOS_INT8_ACT=0/1 or aios_kernels_int8_activations(0/1), or for the calling thread's own
 * products by aios_kernels_int8_thread_mode (the encoder's per-model default).  From 8 rows the
 * VNNI GEMM (qgemm_avx512.c, scales per row and group of 32: MiniLM STS-B 82.03 = f32, ~3x the
 * f32 GEMM); below, the dot-product path with one scale per row (which had cost MiniLM 0.26
 * Spearman points).  Off by default for the process: the decoder fixtures' top-1 budget
 * (llada-tiny 0.94 < 0.95, docs/kernels.md).  The mode is read once per aios_matmul on the
 * calling thread, before any OpenMP region: worker threads never read it. */
static int g_int8_act = -2; /* -2 not read yet, -1 not given, 0 / 1 / 3 (AIOS_INT8_ACT=16) */
static _Thread_local int t_int8_mode = -1;
void aios_kernels_int8_activations(int on) { g_int8_act = on < 0 ? -2 : on == 3 ? 3 : on ? 1 : 0; }
int aios_kernels_int8_setting(void) {
    if (g_int8_act == -2) {
        const char *e = getenv("AIOS_INT8_ACT");
        g_int8_act = e && !strcmp(e, "1") ? 1 : e && !strcmp(e, "0") ? 0 : e && !strcmp(e, "16") ? 3 : -1;
    }
    return g_int8_act;
}
int aios_kernels_int8_thread_mode(int mode) {
    int prev = t_int8_mode;
    t_int8_mode = mode >= 0 && mode <= 3 ? mode : -1;
    return prev;
}
/* 0 exact, 1 int8 wherever a kernel has it, 2 only in the per-group VNNI GEMM, 3 16-bit
 * activations in the quantized decode GEMVs (exact everywhere else; kernels.h) */
static int int8_mode(void) {
    if (t_int8_mode >= 0) return t_int8_mode;
    const int g = aios_kernels_int8_setting();
    return g == 1 || g == 3 ? g : 0;
}
int aios_kernels_act_mode(void) { return int8_mode(); }
int aios_kernels_x16_weight(const aios_tensor *W) {
#if defined(__x86_64__)
    if (!W || W->ndim != 2 || !aios_cpu()->avx2) return 0;
    return aios_gguf_block(W->dtype, NULL, NULL) ||
           ((W->dtype == AIOS_DTYPE_Q8 || W->dtype == AIOS_DTYPE_Q4) && aios__gemv_q_i8_avx2_ok(W));
#else
    (void)W;
    return 0;
#endif
}
int aios__vnni256(const aios__ktier *K) {
#if defined(__x86_64__)
    return K == &aios__tier_avx512 && aios_cpu()->avx512vnni;
#else
    (void)K;
    return 0;
#endif
}
int aios_kernels_x16_default(void) { return tier() == &aios__tier_avx2 ? 1 : aios__vnni256(tier()) ? 2 : 0; }
int aios_kernels_x16_default_weight(const aios_tensor *W) {
    const int k = aios_kernels_x16_default();
    return k && aios_kernels_x16_weight(W) && (k == 1 || aios__q4x8_bits(W) > 0);
}

/* Token rows from which the packed GEMM takes over from the dot-product tiles
 * (AIOS_GEMM_MIN_ROWS overrides, for measuring; 0 turns the GEMM off). */
static int64_t gemm_min_rows(void) {
    static int64_t v = -1;
    if (v < 0) {
        const char *e = getenv("AIOS_GEMM_MIN_ROWS");
        v = e ? atoll(e) : 8;
        if (v <= 0) v = INT64_MAX;
    }
    return v;
}

/* The streaming float GEMV for decoding (AIOS_FLOAT_GEMV=0 turns it off, for measuring against
 * the tile path). */
static int float_gemv(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("AIOS_FLOAT_GEMV");
        v = !(e && !strcmp(e, "0"));
    }
    return v;
}

/* Token rows up to which GGUF weights take the batched decode GEMV (gemv_multi.h) instead of
 * the staging tiles / packed GEMM: continuous batching's decode steps (AIOS_MULTI_MAX_ROWS
 * overrides, for measuring; 0 or 3 turns it off; at most 16). */
static int64_t multi_max_rows(void) {
    static int64_t v = -1;
    if (v < 0) {
        const char *e = getenv("AIOS_MULTI_MAX_ROWS");
        v = e ? atoll(e) : 16;
        if (v < 0) v = 0;
        if (v > 16) v = 16;
    }
    return v;
}

/* y (T, n_out) = bias in every row (zeros without one): the products accumulate onto it. */
void aios__start_at_bias(float *y, const float *bias, int64_t T, int64_t n_out) {
    for (int64_t t = 0; t < T; t++) {
        if (bias) memcpy(y + t * n_out, bias, sizeof(float) * (size_t)n_out);
        else memset(y + t * n_out, 0, sizeof(float) * (size_t)n_out);
    }
}

/* Rows per range of a decode GEMV over n rows with nth threads: a multiple of 64, about four
 * ranges per thread (all n for one thread). */
static int64_t gemv_range(int64_t n, int nth) { return nth > 1 ? AIOS_MAX(64, (n / ((int64_t)nth * 4) + 63) / 64 * 64) : n; }

static aios_status matmul(float *y, const float *x, const aios_tensor *W, const float *bias, int64_t T);

/* Under 16-bit activations (mode 3) every product of 4 or more rows with quantized weights (a
 * prompt, a batched decode step; kernels without a 16-bit variant for that many rows) meets x
 * rounded by the same rule as the 1..3-row integer GEMVs, so a row's result does not depend on
 * how many rows share its product nor on whether it came as a prompt or a decode step (up to
 * the order of float sums).  Quantized weights only (GGUF blocks, ArrowQuant int8 / int4 that
 * the 16-bit GEMV takes); float weights stay exact in every mode.  The rounding is one pass
 * over x, T n_in floats of scratch. */
int aios_kernels_x16_rounds(const aios_tensor *W, int64_t T) {
#if defined(__x86_64__)
    const aios__ktier *K = tier();
    return T >= 4 && int8_mode() == 3 && (K == &aios__tier_avx2 || K == &aios__tier_avx512) && aios_kernels_x16_weight(W) &&
           W->shape[1] > 0;
#else
    (void)W, (void)T;
    return 0;
#endif
}

void aios_kernels_x16_round(float *xr, const float *x, int64_t T, int64_t n) {
#if defined(__x86_64__)
    aios__round_x16_avx2(xr, x, T * n); /* blocks of 16 never straddle rows: n % 32 == 0 */
#else
    memcpy(xr, x, sizeof(float) * (size_t)(T * n));
#endif
}

aios_status aios_matmul(float *y, const float *x, const aios_tensor *W, const float *bias, int64_t T) {
#if defined(__x86_64__)
    if (aios_kernels_x16_rounds(W, T)) {
        const int64_t n_in = W->shape[1];
        float *xr = malloc(sizeof(float) * (size_t)(T * n_in));
        if (!xr) return aios__err(AIOS_ERR_NOMEM, "matmul: %lld x %lld 16-bit activations", (long long)T, (long long)n_in);
        aios_kernels_x16_round(xr, x, T, n_in);
        aios_status s = matmul(y, xr, W, bias, T);
        free(xr);
        return s;
    }
#endif
    return matmul(y, x, W, bias, T);
}

static aios_status matmul(float *y, const float *x, const aios_tensor *W, const float *bias, int64_t T) {
    const aios__ktier *K = tier();
    if (K == &aios__tier_ref) return aios_ref_matmul(y, x, W, bias, T);
    AIOS_TRY(aios__check_weight(W, "matmul"));
    if (T < 0) return aios__err(AIOS_ERR_INVALID_ARG, "matmul: T = %lld", (long long)T);
    const int64_t n_out = W->shape[0], n_in = W->shape[1];
    if (T == 0 || n_out == 0) return AIOS_OK;
    /* every path but the packed GEMM (which stores bias + sums itself) starts y at the bias */
    if (n_in == 0) {
        aios__start_at_bias(y, bias, T, n_out);
        return AIOS_OK;
    }
    const int mode = int8_mode(), i8 = mode % 3; /* mode 3 (16-bit activations): the decode GEMVs only */
#ifdef AIOS_HAVE_BLAS
    if (use_blas(W, T)) {
        aios__start_at_bias(y, bias, T, n_out);
        openblas_set_num_threads(aios_get_threads());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)n_out, (int)n_in, 1.0f, x, (int)n_in,
                    (const float *)W->data, (int)n_in, 1.0f, y, (int)n_out);
        return AIOS_OK;
    }
#endif
#if defined(__x86_64__)
    /* many rows: the register-blocked VNNI GEMM, activations per group of 32 (qgemm_avx512.c) */
    if (K == &aios__tier_avx512 && i8 && T >= gemm_min_rows() && aios__qgemm_i8_ok(W)) {
        aios__start_at_bias(y, bias, T, n_out);
        return aios__qgemm_i8(y, x, W, T, threads_for((double)T * (double)n_out * (double)n_in));
    }
#endif
    /* per-channel int8 x int8 activations per row (VNNI); 1..3 rows that the int8 GEMV below takes
     * (rows of a multiple of 32 columns) go there, activations in blocks of 16 as on every tier
     * and in the reference (qdot_ref.c) */
    if (K->matmul_q8_int && W->dtype == AIOS_DTYPE_Q8 && W->group_size == 0 && i8 == 1 && aios_cpu()->avx512vnni &&
        (T >= 4 || !(K->gemv_q_i8 && K->gemv_q_i8_ok(W)))) {
        aios__start_at_bias(y, bias, T, n_out);
        return K->matmul_q8_int(y, x, W, T, threads_for((double)T * (double)n_out * (double)n_in));
    }
    const int nth = threads_for((double)T * (double)n_out * (double)n_in);
    const int gguf = aios_gguf_block(W->dtype, NULL, NULL);
    void (*gemv)(float *, int64_t, const float *, int64_t, int, const aios_tensor *, int64_t, int64_t) =
        gguf ? (K->gemv_gguf_i8 && i8 == 1 ? K->gemv_gguf_i8 : K->gemv_gguf)
        : W->dtype == AIOS_DTYPE_Q8 || W->dtype == AIOS_DTYPE_Q4 || W->dtype == AIOS_DTYPE_Q2
            ? (K->gemv_q_i8 && i8 == 1 && K->gemv_q_i8_ok(W) ? K->gemv_q_i8 : K->gemv_q)
        : (W->dtype == AIOS_DTYPE_F32 || W->dtype == AIOS_DTYPE_F16 || W->dtype == AIOS_DTYPE_BF16) && float_gemv()
            ? K->gemv_f
            : NULL;
#if defined(__x86_64__)
    /* 16-bit activations (mode 3): the AVX2 integer GEMVs with two int8 digits per value, for
     * the GGUF blocks and ArrowQuant int8 / int4 (the AVX-512 tier runs the AVX2 code, the GGUF
     * one as its vpdpbusd variant on a VNNI CPU: idot_avx2.h) */
    if (mode == 3 && T <= 3 && (K == &aios__tier_avx2 || K == &aios__tier_avx512) && aios_kernels_x16_weight(W))
        gemv = gguf ? (aios__vnni256(K) ? aios__gemv_gguf_x16_vnni : aios__gemv_gguf_x16_avx2) : aios__gemv_q_x16_avx2;
    /* Batched decode steps (4..16 rows) on GGUF blocks: each weight chunk decoded once for all
     * rows.  Not under int8 activations: their free-running greedy budget (test_gguf_real) was
     * set on the staging tiles' / GEMM's sums for short prompts, and this kernel's order of sums
     * moved it from 193 to 140 of 270 golden tokens (teacher-forced top-1 unchanged, 263). */
    int multi = 0;
    if (gguf && !i8 && T >= 4 && T <= multi_max_rows() && (K == &aios__tier_avx512 || K == &aios__tier_avx2)) {
        gemv = K == &aios__tier_avx512 ? aios__gemv_gguf_multi_512 : aios__gemv_gguf_multi_avx2;
        multi = 1;
    }
#else
    const int multi = 0;
#endif
    if (gemv && (T <= 3 || multi)) {
        aios__start_at_bias(y, bias, T, n_out);
        /* Decoding: quantized rows expanded in registers straight into the dot products (no
         * staging buffer).  Large contiguous row ranges (multiples of 64 rows) per thread keep
         * each thread's weight stream sequential for the hardware prefetchers; a few ranges per
         * thread still let a thread that was descheduled on a shared machine fall behind only a
         * little. */
        const int64_t per = gemv_range(n_out, nth), nr = (n_out + per - 1) / per;
        if (nth == 1) {
            gemv(y, n_out, x, n_in, (int)T, W, 0, n_out);
            return AIOS_OK;
        }
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
        for (int64_t i = 0; i < nr; i++) gemv(y, n_out, x, n_in, (int)T, W, i * per, AIOS_MIN(n_out, (i + 1) * per));
        return AIOS_OK;
    }
    /* Many token rows: the packed GEMM (gemm.c). */
    if (T >= gemm_min_rows() && aios__gemm_available(K)) return aios__gemm(K, y, x, W, bias, T, nth);
    aios__start_at_bias(y, bias, T, n_out);
    /* f32 weights are read in place when 4-byte aligned (they always are in our loaders). */
    const int direct = W->dtype == AIOS_DTYPE_F32 && ((uintptr_t)W->data & 3) == 0;
    const int64_t nblk = (n_out + RB - 1) / RB;
    /* Row blocks are handed out dynamically in small chunks: on a machine shared with other
     * processes a descheduled thread then delays only its current chunk, not a fixed half. */
    const int64_t chunk = AIOS_MAX(1, nblk / ((int64_t)nth * 8));
#pragma omp parallel num_threads(nth)
    {
        float wbuf[RB * KC] __attribute__((aligned(64)));
#pragma omp for schedule(dynamic, chunk)
        for (int64_t b = 0; b < nblk; b++) {
            int64_t r0 = b * RB;
            int nr = (int)AIOS_MIN(RB, n_out - r0);
            for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
                int64_t kc = AIOS_MIN(KC, n_in - k0);
                const float *w;
                int64_t ldw;
                if (direct) {
                    w = (const float *)W->data + r0 * n_in + k0;
                    ldw = n_in;
                } else {
                    for (int i = 0; i < nr; i++) K->deq(wbuf + i * KC, W, r0 + i, k0, kc);
                    w = wbuf;
                    ldw = KC;
                }
                /* the weight chunk (4 rows x KC, in L1) meets every token row */
                for (int64_t t = 0; t < T; t += 4)
                    K->tile(y + t * n_out + r0, n_out, w, ldw, nr, x + t * n_in + k0, n_in, (int)AIOS_MIN(4, T - t), kc);
            }
        }
    }
    return AIOS_OK;
}

/* ---------------------------------------------------------------- weights packed once */

aios_status aios_matmul_pack_new(const aios_tensor *W, aios_matmul_pack **out) {
    *out = NULL;
    AIOS_TRY(aios__check_weight(W, "matmul_pack"));
    const aios__ktier *K = tier();
#if defined(__x86_64__)
    /* for the int8 / 16-bit-activation decode GEMV (AVX2 code; the AVX-512 tier has its own
     * int8 kernels in place and takes the pack for 16-bit activations only) */
    if ((K == &aios__tier_avx2 || (K == &aios__tier_avx512 && int8_mode() == 3)) && aios__q4x8_bits(W)) {
        const char *e = getenv("AIOS_REPACK"); /* AIOS_REPACK=0: no pack, the in-place kernels */
        if (e && !strcmp(e, "0")) return AIOS_OK;
        aios_matmul_pack *P = calloc(1, sizeof *P);
        if (!P) return aios__err(AIOS_ERR_NOMEM, "matmul_pack");
        *P = (aios_matmul_pack){.K = K, .wdata = W->data, .n_out = W->shape[0], .n_in = W->shape[1]};
        aios_status s = aios__q4x8_pack(W, P);
        if (s != AIOS_OK) {
            free(P);
            return s;
        }
        *out = P;
        return AIOS_OK;
    }
#endif
    if (W->dtype != AIOS_DTYPE_F32 || ((uintptr_t)W->data & 3) || !aios__gemm_available(K)) return AIOS_OK;
    return aios__gemm_pack_new(K, W, out);
}

void aios_matmul_pack_free(aios_matmul_pack *P) {
    if (!P) return;
    free(P->panels);
    free(P->q4);
    free(P);
}

aios_status aios_matmul_packed(float *y, const float *x, const aios_tensor *W, const aios_matmul_pack *P,
                               const float *bias, int64_t T) {
    const aios__ktier *K = tier();
#if defined(__x86_64__)
    /* 4- / 5-bit W in blocks of 8 rows: the decode GEMV (1..3 token rows) with int8 (the AVX2 tier)
     * or 16-bit activations */
    if (P && P->q4) {
        const int mode = int8_mode();
        if (P->K != K || P->wdata != W->data || W->ndim != 2 || W->shape[0] != P->n_out || W->shape[1] != P->n_in ||
            T < 1 || T > 3 || !((mode == 1 && K == &aios__tier_avx2) || mode == 3))
            return aios_matmul(y, x, W, bias, T);
        const int64_t n_out = W->shape[0], n_in = W->shape[1], n8 = n_out / 8 * 8;
        const int nth = threads_for((double)T * (double)n_out * (double)n_in);
        aios__start_at_bias(y, bias, T, n_out);
        const int64_t per = gemv_range(n8, nth), nr = (n8 + per - 1) / per;
        const int x16 = mode == 3, vnni = x16 && aios__vnni256(K);
        void (*q4x8)(float *, int64_t, const float *, int64_t, int, const aios_matmul_pack *, int64_t, int64_t, int) =
            vnni ? aios__gemv_q4x8_vnni : aios__gemv_q4x8_avx2;
        if (nth == 1) q4x8(y, n_out, x, n_in, (int)T, P, 0, n8, x16);
        else {
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
            for (int64_t i = 0; i < nr; i++) q4x8(y, n_out, x, n_in, (int)T, P, i * per, AIOS_MIN(n8, (i + 1) * per), x16);
        }
        if (n8 < n_out) { /* the last rows, in place */
            const int gguf = aios_gguf_block(W->dtype, NULL, NULL) != 0;
            (gguf ? (x16 ? (vnni ? aios__gemv_gguf_x16_vnni : aios__gemv_gguf_x16_avx2) : K->gemv_gguf_i8)
                  : (x16 ? aios__gemv_q_x16_avx2 : K->gemv_q_i8))(y, n_out, x, n_in, (int)T, W, n8, n_out);
        }
        return AIOS_OK;
    }
#endif
    /* only where aios_matmul itself would run the packed GEMM on this f32 W */
    if (!P || P->K != K || P->wdata != W->data || W->ndim != 2 || W->shape[0] != P->n_out || W->shape[1] != P->n_in ||
        T <= 3 || T < gemm_min_rows())
        return aios_matmul(y, x, W, bias, T);
#ifdef AIOS_HAVE_BLAS
    if (use_blas(W, T)) return aios_matmul(y, x, W, bias, T);
#endif
    const int64_t n_out = W->shape[0], n_in = W->shape[1];
    if (n_in == 0 || n_out == 0) {
        aios__start_at_bias(y, bias, T, n_out);
        return AIOS_OK;
    }
    return aios__gemm_packed(K, y, x, W, bias, P, T, threads_for((double)T * (double)n_out * (double)n_in));
}

/* ---------------------------------------------------------------- rows and elementwise */

void aios_layernorm(float *y, const float *x, const float *w, const float *b, int64_t T, int64_t n, float eps) {
    const aios__ktier *K = tier();
    int nth = threads_for((double)T * (double)n * 4);
#pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t t = 0; t < T; t++) K->layernorm_row(y + t * n, x + t * n, w, b, n, eps);
}

void aios_rmsnorm(float *y, const float *x, const float *w, int64_t T, int64_t n, float eps) {
    const aios__ktier *K = tier();
    int nth = threads_for((double)T * (double)n * 4);
#pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t t = 0; t < T; t++) K->rmsnorm_row(y + t * n, x + t * n, w, n, eps);
}

#define CHUNK 4096
/* Elementwise f over n values, in CHUNK pieces across threads when large. */
static void elementwise(void (*f)(float *, int64_t), float *x, int64_t n, double cost) {
    int nth = threads_for((double)n * cost);
    if (nth == 1) {
        f(x, n);
        return;
    }
    int64_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t c = 0; c < nc; c++) f(x + c * CHUNK, AIOS_MIN(CHUNK, n - c * CHUNK));
}

void aios_gelu(float *x, int64_t n) { elementwise(tier()->gelu, x, n, 20); }
void aios_silu(float *x, int64_t n) { elementwise(tier()->silu, x, n, 20); }

void aios_softmax(float *x, int64_t rows, int64_t n) {
    const aios__ktier *K = tier();
    int nth = threads_for((double)rows * (double)n * 10);
#pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t r = 0; r < rows; r++) K->softmax_row(x + r * n, n);
}

void aios_mul(float *x, const float *y, int64_t n) { tier()->mul(x, y, n); }
void aios_add(float *x, const float *y, int64_t n) { tier()->add(x, y, n); }

void aios_rope(float *x, const int32_t *pos, int64_t T, int64_t n_head, int64_t head_dim, const float *inv_freq) {
    /* cos/sin once per (token, frequency), shared by all heads; results identical to the reference */
    if (tier() == &aios__tier_ref || head_dim > 1024) {
        aios_ref_rope(x, pos, T, n_head, head_dim, inv_freq);
        return;
    }
    int64_t half = head_dim / 2;
    int nth = threads_for((double)T * (double)n_head * (double)head_dim * 4);
#pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        float cs[512], sn[512];
        for (int64_t i = 0; i < half; i++) {
            float ang = (float)pos[t] * inv_freq[i];
            cs[i] = cosf(ang);
            sn[i] = sinf(ang);
        }
        for (int64_t h = 0; h < n_head; h++) {
            float *v = x + (t * n_head + h) * head_dim;
            for (int64_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * cs[i] - b * sn[i];
                v[i + half] = b * cs[i] + a * sn[i];
            }
        }
    }
}

/* ---------------------------------------------------------------- attention */

/* aios_attention's argument check (aios_attention_kv16's too). */
static aios_status attn_shape(int64_t Tq, int64_t Tk, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride) {
    if (n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv || head_dim <= 0 || Tq < 0 || Tk < 0 ||
        kv_stride < n_head_kv * head_dim)
        return aios__err(AIOS_ERR_INVALID_ARG, "attention: bad shape (n_head %lld, n_head_kv %lld, head_dim %lld)",
                         (long long)n_head, (long long)n_head_kv, (long long)head_dim);
    return AIOS_OK;
}

/* aios_attention and aios_attention_kv16 (kv16: k, v float16).  The fused decode kernel reads
 * either type in place; every other case (the reference tier, prefill's GEMMs, other head sizes)
 * takes float32, so a float16 cache is widened once into a copy of its Tk rows first: prefill
 * does O(Tq) work per key, so the copy is small beside it. */
static aios_status attention(float *out, const float *q, const void *kp, const void *vp, int kv16, int64_t Tq,
                             int64_t Tk, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                             const uint8_t *mask, float scale) {
    const aios__ktier *K = tier();
    AIOS_TRY(attn_shape(Tq, Tk, n_head, n_head_kv, head_dim, kv_stride));
    const int64_t group = n_head / n_head_kv;
    const int nth = threads_for((double)Tq * (double)Tk * (double)n_head * (double)head_dim * 2);
    /* Prefill: scores and outputs as GEMMs (gemm.c) once a few query rows share the keys. */
    const int gemm = K != &aios__tier_ref && Tq >= gemm_min_rows() && Tk > 0 && aios__attention_gemm_ok(K, head_dim);
#if defined(__x86_64__)
    /* Decode / few query rows, head_dim 64 / 128: the fused kernel (attn_dec.h). */
    if (!gemm && Tk > 0 && aios__attn_dec_ok(head_dim, group)) {
        if (K == &aios__tier_avx512)
            return aios__attn_dec_512(out, q, kp, vp, Tq, Tk, n_head, n_head_kv, head_dim, kv_stride, mask, scale, kv16, nth);
        if (K == &aios__tier_avx2)
            return aios__attn_dec_avx2(out, q, kp, vp, Tq, Tk, n_head, n_head_kv, head_dim, kv_stride, mask, scale, kv16, nth);
    }
#endif
    if (kv16) {
        const size_t n = (size_t)(Tk > 0 ? Tk : 1) * (size_t)kv_stride;
        float *kw = malloc(sizeof(float) * 2 * n);
        if (!kw) return aios__err(AIOS_ERR_NOMEM, "attention: %lld float16 keys widened", (long long)Tk);
        aios_f16_to_f32_n(kw, kp, Tk * kv_stride);
        aios_f16_to_f32_n(kw + n, vp, Tk * kv_stride);
        aios_status s = attention(out, q, kw, kw + n, 0, Tq, Tk, n_head, n_head_kv, head_dim, kv_stride, mask, scale);
        free(kw);
        return s;
    }
    const float *k = kp, *v = vp;
    if (K == &aios__tier_ref)
        return aios_ref_attention(out, q, k, v, Tq, Tk, n_head, n_head_kv, head_dim, kv_stride, mask, scale);
    if (gemm)
        return aios__attention_gemm(K, out, q, k, v, Tq, Tk, n_head, n_head_kv, head_dim, kv_stride, mask, scale, nth);
    /* Other head sizes: a work unit is one query row and a block of the query heads that share
     * one KV head, so each K and V row is read once per block rather than once per head.  Each head
     * still takes the same dot / softmax / axpy sequence as before, so results are bitwise the same
     * whatever the blocking or thread count.  Blocks shrink to single heads when there are too few
     * units to keep the threads busy (2 threads on 3 KV heads).  Without a mask every key is visible
     * and no index list is kept. */
    int64_t gb = group;
    if (nth > 1 && Tq * n_head_kv < 2 * (int64_t)nth) gb = 1;
    if (gb > 16) gb = 1;
    const int64_t nblk = group / gb, units = Tq * n_head_kv * nblk;
    int fail = 0;
#pragma omp parallel num_threads(nth)
    {
        float pst[16 * 1024];
        int32_t ist[1024];
        size_t need = (size_t)(Tk > 0 ? Tk : 1);
        int heap = need > 1024; /* gb <= 16, so gb * need fits pst too */
        float *p = heap ? malloc(sizeof(float) * need * (size_t)gb) : pst;
        int32_t *idx = (heap && mask) ? malloc(sizeof(int32_t) * need) : ist;
        if (!p || (mask && !idx)) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (int64_t u = 0; u < units; u++) {
            if (!p || (mask && !idx)) continue;
            int64_t i = u / (n_head_kv * nblk), hk = (u / nblk) % n_head_kv, h0 = hk * group + (u % nblk) * gb;
            const float *kh = k + hk * head_dim, *vh = v + hk * head_dim;
            float mx[16];
            for (int64_t g = 0; g < gb; g++) {
                memset(out + (i * n_head + h0 + g) * head_dim, 0, sizeof(float) * (size_t)head_dim);
                mx[g] = -INFINITY;
            }
            int64_t m = 0; /* visible keys */
            for (int64_t j = 0; j < Tk; j++) {
                if (mask && !mask[i * Tk + j]) continue;
                const float *kj = kh + j * kv_stride;
                for (int64_t g = 0; g < gb; g++) {
                    float s = scale * K->dot(q + (i * n_head + h0 + g) * head_dim, kj, head_dim);
                    p[g * Tk + m] = s;
                    mx[g] = s > mx[g] ? s : mx[g];
                }
                if (mask) idx[m] = (int32_t)j; /* visible keys' positions; without a mask m == j */
                m++;
            }
            if (!m) continue;
            for (int64_t g = 0; g < gb; g++) {
                float *pg = p + g * Tk;
                for (int64_t j = 0; j < m; j++) pg[j] -= mx[g];
                K->softmax_row(pg, m);
            }
            for (int64_t j = 0; j < m; j++) {
                const float *vj = vh + (mask ? (int64_t)idx[j] : j) * kv_stride;
                for (int64_t g = 0; g < gb; g++)
                    K->axpy(out + (i * n_head + h0 + g) * head_dim, p[g * Tk + j], vj, head_dim);
            }
        }
        if (p != pst) free(p);
        if (idx != ist) free(idx);
    }
    if (fail) return aios__err(AIOS_ERR_NOMEM, "attention: %lld scores", (long long)Tk);
    return AIOS_OK;
}

void aios_f32_to_f16_n(uint16_t *dst, const float *src, int64_t n) {
#if defined(__x86_64__)
    if (tier() != &aios__tier_ref) {
        aios__f32_to_f16_avx2(dst, src, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = aios_f32_to_f16(src[i]);
}

void aios_f16_to_f32_n(float *dst, const uint16_t *src, int64_t n) {
#if defined(__x86_64__)
    if (tier() != &aios__tier_ref) {
        aios__f16_to_f32_avx2(dst, src, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = aios_f16_to_f32(src[i]);
}

aios_status aios_attention(float *out, const float *q, const float *k, const float *v, int64_t Tq, int64_t Tk,
                           int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                           const uint8_t *mask, float scale) {
    return attention(out, q, k, v, 0, Tq, Tk, n_head, n_head_kv, head_dim, kv_stride, mask, scale);
}

aios_status aios_attention_kv16(float *out, const float *q, const uint16_t *k, const uint16_t *v, int64_t Tq, int64_t Tk,
                                int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                                const uint8_t *mask, float scale) {
    return attention(out, q, k, v, 1, Tq, Tk, n_head, n_head_kv, head_dim, kv_stride, mask, scale);
}

aios_status aios_attention_batch(float *out, const float *q, const float *k, const float *v, int64_t B, int64_t L,
                                 int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t kv_stride,
                                 const uint8_t *key_mask, float scale) {
    const aios__ktier *K = tier();
    if (K == &aios__tier_ref)
        return aios_ref_attention_batch(out, q, k, v, B, L, n_head, n_head_kv, head_dim, kv_stride, key_mask, scale);
    if (n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv || head_dim <= 0 || B < 0 || L < 0 ||
        kv_stride < n_head_kv * head_dim)
        return aios__err(AIOS_ERR_INVALID_ARG, "attention: bad shape (n_head %lld, n_head_kv %lld, head_dim %lld)",
                         (long long)n_head, (long long)n_head_kv, (long long)head_dim);
    const int64_t group = n_head / n_head_kv, qs = n_head * head_dim, n = B * L * n_head;
    int nth = threads_for((double)B * L * L * n_head * head_dim * 2);
#if defined(__x86_64__)
    if (K == &aios__tier_avx512 && aios__attention_batch_512_ok(head_dim))
        return aios__attention_batch_512(out, q, k, v, B, L, n_head, n_head_kv, head_dim, kv_stride, key_mask, scale, nth);
#endif
    int fail = 0;
#pragma omp parallel num_threads(nth)
    {
        float *p = malloc(sizeof(float) * (size_t)(L > 0 ? L : 1));
        int32_t *idx = malloc(sizeof(int32_t) * (size_t)(L > 0 ? L : 1));
        if (!p || !idx) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t r = 0; r < n; r++) {
            if (!p || !idx) continue;
            int64_t h = r % n_head, ti = r / n_head, b = ti / L, hk = h / group;
            const float *qi = q + ti * qs + h * head_dim;
            const float *kb = k + b * L * kv_stride + hk * head_dim, *vb = v + b * L * kv_stride + hk * head_dim;
            const uint8_t *km = key_mask ? key_mask + b * L : NULL;
            float *o = out + ti * qs + h * head_dim;
            memset(o, 0, sizeof(float) * (size_t)head_dim);
            int64_t m = 0;
            float mx = -INFINITY;
            for (int64_t j = 0; j < L; j++) {
                if (km && !km[j]) continue;
                float sc = scale * K->dot(qi, kb + j * kv_stride, head_dim);
                p[m] = sc;
                idx[m++] = (int32_t)j;
                mx = sc > mx ? sc : mx;
            }
            if (!m) continue;
            for (int64_t j = 0; j < m; j++) p[j] -= mx;
            K->softmax_row(p, m);
            for (int64_t j = 0; j < m; j++) K->axpy(o, p[j], vb + (int64_t)idx[j] * kv_stride, head_dim);
        }
        free(p);
        free(idx);
    }
    if (fail) return aios__err(AIOS_ERR_NOMEM, "attention: %lld scores", (long long)L);
    return AIOS_OK;
}
