/* encode_call.c — the C side of the Python binding's overhead benchmark (bench/bench_python.py,
 * tests/py/test_python_bench.py): times `n` calls of aios_encode_batch on one text, as
 * ArrowEngine.encode([text]) makes them, and prints the median and the minimum per call in
 * microseconds of this thread's CPU time.  Built by those scripts against build/libaios.so (not a bench_*.c: it needs
 * arguments).
 *
 *     encode_call MODEL_DIR TEXT N   ->  "median_us min_us" */
#include <aios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this thread: on a shared machine wall time mostly measures the neighbours (the
 * encoder runs on this one thread: n_threads = 1) */
static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: encode_call MODEL_DIR TEXT N\n");
        return 2;
    }
    int n = atoi(argv[3]);
    if (n < 1) return 2;
    aios_encoder_params p = aios_encoder_default_params();
    p.n_threads = 1; /* as the benchmark's Python side */
    p.normalize = 1;
    aios_encoder *enc;
    if (aios_encoder_open(argv[1], &p, &enc) != AIOS_OK) {
        fprintf(stderr, "encode_call: %s\n", aios_last_error());
        return 1;
    }
    const char *texts[1] = {argv[2]};
    size_t lens[1] = {strlen(argv[2])};
    int64_t dim = aios_encoder_dim(enc);
    double *t = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n + 20; i++) {
        /* each call gets its own buffer, as each Python call does */
        float *out = aios_alloc((size_t)dim * sizeof(float));
        double t0 = now_us();
        if (aios_encode_batch(enc, texts, lens, 1, out, NULL, NULL) != AIOS_OK) {
            fprintf(stderr, "encode_call: %s\n", aios_last_error());
            return 1;
        }
        double t1 = now_us();
        aios_free(out);
        if (i >= 20) t[i - 20] = t1 - t0; /* 20 warm-up calls */
    }
    qsort(t, (size_t)n, sizeof(double), cmp);
    printf("%.2f %.2f\n", t[n / 2], t[0]);
    free(t);
    aios_encoder_free(enc);
    return 0;
}
