/*
 * bench_model_load.c — open-to-first-tensor time and resident memory for a ~110 MB model,
 * safetensors (Hugging Face directory) vs Parquet (the converted ArrowEngine directory).
 *
 * A Llama-shaped model with random float32 weights (n_embd 512, 6 layers, n_ff 1408, vocab
 * 16000) is written once as model.safetensors, then converted with aios_model_convert.  Each
 * measurement runs in a fresh child process (so nothing is cached in the process), with the
 * files in the OS page cache (warm: this measures our work, not the disk):
 *   open      aios_model_open
 *   first     + look up one weight and read its first row
 *   RSS       resident set after open, after the first row, after touching every tensor
 * Usage: bench_model_load [RUNS]   (default 7; the median is printed)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
#include "format/safetensors.h"
#include "model/model.h"
#include "tensor/quant.h"

enum { N_EMBD = 512, N_LAYER = 6, N_FF = 1408, N_VOCAB = 16000 };

static double rss_mib(void) {
    long pages_total = 0, pages_res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_res) != 2) pages_res = -1;
    fclose(f);
    return (double)pages_res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static aios_status make_model(const char *dir) {
    typedef struct {
        char name[96];
        int64_t r, c;
    } spec;
    spec s[4 + N_LAYER * 9];
    int n = 0;
    snprintf(s[n].name, sizeof s[n].name, "model.embed_tokens.weight"), s[n].r = N_VOCAB, s[n].c = N_EMBD, n++;
    snprintf(s[n].name, sizeof s[n].name, "model.norm.weight"), s[n].r = N_EMBD, s[n].c = 0, n++;
    for (int l = 0; l < N_LAYER; l++) {
        const char *nm[9] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                             "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm"};
        int64_t rc[9][2] = {{N_EMBD, N_EMBD}, {N_EMBD, N_EMBD}, {N_EMBD, N_EMBD}, {N_EMBD, N_EMBD}, {N_FF, N_EMBD},
                            {N_FF, N_EMBD},   {N_EMBD, N_FF},   {N_EMBD, 0},      {N_EMBD, 0}};
        for (int k = 0; k < 9; k++) {
            snprintf(s[n].name, sizeof s[n].name, "model.layers.%d.%s.weight", l, nm[k]);
            s[n].r = rc[k][0], s[n].c = rc[k][1], n++;
        }
    }
    aios_tensor t[4 + N_LAYER * 9];
    const aios_tensor *tp[4 + N_LAYER * 9];
    uint64_t rng = 42;
    for (int i = 0; i < n; i++) {
        int64_t numel = s[i].c ? s[i].r * s[i].c : s[i].r;
        float *d = malloc((size_t)numel * 4);
        if (!d) return aios__err(AIOS_ERR_NOMEM, "bench: out of memory");
        for (int64_t k = 0; k < numel; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            d[k] = ((float)(rng >> 40) / 16777216.0f - 0.5f) * 0.05f;
        }
        t[i] = (aios_tensor){.name = s[i].name, .dtype = AIOS_DTYPE_F32, .ndim = s[i].c ? 2 : 1,
                             .shape = {s[i].r, s[i].c}, .data = d, .nbytes = (size_t)numel * 4};
        tp[i] = &t[i];
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    aios_status st = aios_safetensors_write(p, tp, n, NULL);
    for (int i = 0; i < n; i++) free((void *)t[i].data);
    if (st) return st;
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) return aios__err(AIOS_ERR_IO, "bench: %s", p);
    fprintf(f, "{\"model_type\":\"llama\",\"hidden_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":8,"
               "\"num_key_value_heads\":8,\"intermediate_size\":%d,\"vocab_size\":%d,\"max_position_embeddings\":2048,"
               "\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,\"tie_word_embeddings\":true}\n",
            N_EMBD, N_LAYER, N_FF, N_VOCAB);
    fclose(f);
    return AIOS_OK;
}

typedef struct {
    double t_open, t_first, rss0, rss_open, rss_first, rss_all;
    int ok;
} sample;

static sample measure_child(const char *path) {
    sample r = {0};
    r.rss0 = rss_mib();
    double t0 = aios__now();
    aios_model *m;
    if (aios_model_open(path, NULL, &m) != AIOS_OK) {
        fprintf(stderr, "bench: %s\n", aios_last_error());
        return r;
    }
    r.t_open = aios__now() - t0;
    r.rss_open = rss_mib();
    const aios_tensor *w = aios_model_tensor(m, "model.layers.0.self_attn.q_proj.weight");
    float row[N_FF > N_EMBD ? N_FF : N_EMBD];
    if (!w || aios_quant_dequantize_row_ref(w, 0, row) != AIOS_OK) return r;
    r.t_first = aios__now() - t0;
    r.rss_first = rss_mib();
    volatile float acc = row[0];
    for (int64_t i = 0; i < aios_model_num_tensors(m); i++) {
        const aios_tensor *t = aios_model_tensor_at(m, i);
        for (size_t k = 0; k < t->nbytes; k += 4096) acc += ((const uint8_t *)t->data)[k];
    }
    (void)acc;
    r.rss_all = rss_mib();
    aios_model_free(m);
    r.ok = 1;
    return r;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static int run(const char *label, const char *path, const char *file, int runs, double *open_ms) {
    double to[64], tf[64], ro[64], rf[64], ra[64], r0[64];
    int n = 0;
    for (int i = 0; i < runs && i < 64; i++) {
        int fd[2];
        if (pipe(fd)) return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(fd[0]);
            sample s = measure_child(path);
            ssize_t w = write(fd[1], &s, sizeof s);
            _exit(w == (ssize_t)sizeof s && s.ok ? 0 : 1);
        }
        close(fd[1]);
        sample s;
        ssize_t got = read(fd[0], &s, sizeof s);
        close(fd[0]);
        int st;
        waitpid(pid, &st, 0);
        if (got != (ssize_t)sizeof s || !s.ok) return 1;
        to[n] = s.t_open * 1e3, tf[n] = s.t_first * 1e3, r0[n] = s.rss0, ro[n] = s.rss_open - s.rss0;
        rf[n] = s.rss_first - s.rss0, ra[n] = s.rss_all - s.rss0, n++;
    }
    struct stat sb;
    double mb = stat(file, &sb) == 0 ? (double)sb.st_size / (1024.0 * 1024.0) : 0;
    *open_ms = median(tf, n);
    printf("| %-12s | %8.1f MiB | %9.3f ms | %14.3f ms | %10.2f MiB | %11.2f MiB | %11.1f MiB |\n", label, mb,
           median(to, n), median(tf, n), median(ro, n), median(rf, n), median(ra, n));
    (void)r0;
    return 0;
}

static void rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_rf(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    if (runs < 1) runs = 1;
    const char *tmp = getenv("TMPDIR");
    char dir[512], hf[600], pq[600], f1[700], f2[700];
    snprintf(dir, sizeof dir, "%s/aios-bench-load-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return 1;
    snprintf(hf, sizeof hf, "%s/hf", dir);
    snprintf(pq, sizeof pq, "%s/arrow", dir);
    mkdir(hf, 0777);
    int rc = 1;
    if (make_model(hf) || aios_model_convert(hf, pq)) {
        fprintf(stderr, "bench_model_load: %s\n", aios_last_error());
        goto out;
    }
    snprintf(f1, sizeof f1, "%s/model.safetensors", hf);
    snprintf(f2, sizeof f2, "%s/weights.parquet", pq);
    /* warm the page cache once so both formats are measured the same way */
    {
        aios_map m;
        volatile uint8_t a = 0;
        const char *fs[2] = {f1, f2};
        for (int k = 0; k < 2; k++)
            if (aios__map_file(fs[k], &m) == AIOS_OK) {
                for (size_t i = 0; i < m.size; i += 4096) a ^= m.data[i];
                aios__unmap_file(&m);
            }
        (void)a;
    }
    printf("model load: Llama-shaped, %d layers, n_embd %d, f32, warm page cache, median of %d fresh processes\n", N_LAYER,
           N_EMBD, runs);
    printf("| %-12s | %12s | %12s | %17s | %14s | %15s | %15s |\n", "format", "file", "open", "open+first row",
           "RSS after open", "RSS first row", "RSS all touched");
    printf("|--------------|--------------|--------------|-------------------|----------------|-----------------|-----------------|\n");
    double a, b;
    if (run("safetensors", hf, f1, runs, &a) || run("parquet V1", pq, f2, runs, &b)) goto out;
    printf("parquet / safetensors open-to-first-tensor time: %.2fx\n", b / a);
    rc = 0;
out:
    rm_rf(dir);
    return rc;
}
