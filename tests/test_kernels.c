/* test_kernels.c — every kernel, every weight dtype, odd sizes (1, 7, 33, 4097):
 * the reference tier against plain double-precision math written here from the definitions
 * (tensor.h layouts, Hugging Face formulas), and every fast tier this CPU has against the
 * reference tier. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "kernels/cpu/kern.h"
#include "kernels/kernels.h"
#include "tensor/quant.h"
#include "test.h"
#include "tiers.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}
static float frand(void) { return (float)((rnd() % 2000001) / 1000000.0 - 1.0); } /* [-1, 1] */
static void fill(float *x, int64_t n, float amp) {
    for (int64_t i = 0; i < n; i++) x[i] = amp * frand();
}

static const char *const TIERS[] = {"avx2", "avx512"};

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}
static double rel_err_d(const float *a, const double *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* ------------------------------------------------------------ half precision */

static double f16_value(uint16_t h) { /* from the IEEE definition */
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_f16_bf16(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        double want = f16_value((uint16_t)h);
        float got = aios_f16_to_f32((uint16_t)h);
        if (isnan(want)) {
            CHECKF(isnan(got), "f16 %04x", h);
            continue;
        }
        CHECKF((double)got == want && !!signbit(got) == !!signbit(want), "f16 %04x: %g vs %g", h, got, want);
        /* round trip is exact for every non-nan half */
        CHECKF(aios_f32_to_f16(got) == h, "f16 roundtrip %04x -> %04x", h, aios_f32_to_f16(got));
    }
    /* f32 -> f16 rounds to nearest even: compare with the nearest of all halves */
    for (int i = 0; i < 20000; i++) {
        uint32_t bits = rnd() & 0x7FFFFFFF;
        bits = (bits % (0x47800000u - 0x33000000u)) + 0x33000000u - 0x02000000u; /* 2^-29 .. 65536 */
        float f;
        memcpy(&f, &bits, 4);
        uint16_t got = aios_f32_to_f16(f);
        double best;
        uint16_t bh;
        /* exact check: got is a neighbour and the error is at most half a unit */
        double v = f16_value(got), up = f16_value((uint16_t)(got + 1)), dn = got ? f16_value((uint16_t)(got - 1)) : -1;
        double err = fabs(v - f);
        best = fmin(fabs(up - f), got ? fabs(dn - f) : INFINITY);
        bh = got;
        CHECKF(err <= best && (err < best || (bh & 1) == 0 || v > 65504), "f32 %a -> f16 %04x", f, got);
    }
    CHECK(aios_f32_to_f16(65520.0f) == 0x7C00 && aios_f32_to_f16(65504.0f) == 0x7BFF);
    CHECK(aios_f32_to_f16(-0.0f) == 0x8000 && aios_f32_to_f16(INFINITY) == 0x7C00);
    CHECK((aios_f32_to_f16(NAN) & 0x7FFF) > 0x7C00);
    /* bf16: round to nearest even, exactly as torch.tensor(x).bfloat16() */
    CHECK(aios_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(aios_f32_to_bf16(1.00390625f) == 0x3F80);      /* tie, even stays */
    CHECK(aios_f32_to_bf16(1.01171875f) == 0x3F82);      /* tie, odd rounds up */
    {
        uint32_t b = 0x3F808001u; /* just above the tie */
        float f;
        memcpy(&f, &b, 4);
        CHECK(aios_f32_to_bf16(f) == 0x3F81);
    }
    CHECK(aios_bf16_to_f32(0xC0A0) == -5.0f);
    CHECK(isnan(aios_bf16_to_f32(aios_f32_to_bf16(NAN))));
    /* the n-value conversions (the float16 KV cache) on every tier equal the scalar ones element for
     * element: random values, ties, subnormals, overflow, signed zero, infinities; n 1003 leaves a
     * tail past the 8-wide loop; every one of the 65536 halves widens exactly; NaN stays NaN */
    enum { NB = 1003 };
    float *src = malloc(sizeof(float) * 65536), *back = malloc(sizeof(float) * 65536);
    uint16_t *h16 = malloc(2 * 65536), *all = malloc(2 * 65536);
    for (int i = 0; i < NB; i++) {
        uint32_t bits = rnd();
        memcpy(&src[i], &bits, 4);
        if (i % 3 == 0) src[i] = (float)((int)(rnd() % 2001) - 1000) / 1024.0f; /* many exact ties */
    }
    static const float edge[] = {0.0f, -0.0f, 65504.0f, 65520.0f, -65536.0f, 1e-8f, -3e-6f, 6.1e-5f, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) src[i * 7] = edge[i];
    for (uint32_t h = 0; h < 65536; h++) all[h] = (uint16_t)h;
    for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
        if (!t_use_tier(TIERS[t])) continue;
        aios_f32_to_f16_n(h16, src, NB);
        for (int i = 0; i < NB; i++) {
            if (isnan(src[i])) {
                CHECKF((h16[i] & 0x7FFF) > 0x7C00, "%s f16_n nan -> %04x", TIERS[t], h16[i]);
                continue;
            }
            CHECKF(h16[i] == aios_f32_to_f16(src[i]), "%s f16_n %a -> %04x, scalar %04x", TIERS[t], src[i], h16[i],
                   aios_f32_to_f16(src[i]));
        }
        aios_f16_to_f32_n(back, all, 65536);
        for (uint32_t h = 0; h < 65536; h++) {
            float want = aios_f16_to_f32((uint16_t)h);
            CHECKF(isnan(want) ? isnan(back[h]) : !memcmp(&want, &back[h], 4), "%s f32_n %04x", TIERS[t], h);
        }
    }
    aios_kernels_use("auto");
    free(src), free(back), free(h16), free(all);
}

/* ------------------------------------------------------------ weights */

typedef struct {
    aios_tensor t;
    uint8_t *data;
    float *scales, *zps;
    uint16_t *s16, *z16; /* the same scales / zero points as float16 when g_f16_scales */
    double *dq; /* (n_out, n_in) dequantized in double, from the layout definition */
} wt;

/* 1: make_weight stores the scales and zero points as float16 (scale_dtype F16, tensor.h);
 * dq then uses their IEEE half values (f16_value), so the reference is checked too. */
static int g_f16_scales;

/* granularity: 0 per tensor, 1 per row, 2 groups of G */
static void make_weight(wt *w, aios_dtype dt, int64_t n_out, int64_t n_in, int gran, int G, int zp, int misalign) {
    memset(w, 0, sizeof *w);
    int64_t n = n_out * n_in;
    w->dq = malloc(sizeof(double) * (size_t)(n ? n : 1));
    w->t.name = "w";
    w->t.dtype = dt;
    w->t.ndim = 2;
    w->t.shape[0] = n_out;
    w->t.shape[1] = n_in;
    size_t nbytes = dt == AIOS_DTYPE_F32 ? (size_t)n * 4 : dt == AIOS_DTYPE_F16 || dt == AIOS_DTYPE_BF16 ? (size_t)n * 2
                  : dt == AIOS_DTYPE_Q8 ? (size_t)n : dt == AIOS_DTYPE_Q4 ? (size_t)(n + 1) / 2 : (size_t)(n + 3) / 4;
    w->data = calloc(nbytes + 8, 1);
    /* float weights of a mapping need not be aligned: misalign shifts them by 2 bytes (f32
     * then 2-byte aligned); quantized byte data: alignment irrelevant */
    int fl = dt == AIOS_DTYPE_F32 || dt == AIOS_DTYPE_F16 || dt == AIOS_DTYPE_BF16;
    uint8_t *d = w->data + (misalign && fl ? 2 : 0);
    int bits = dt == AIOS_DTYPE_Q8 ? 8 : dt == AIOS_DTYPE_Q4 ? 4 : 2;
    int64_t ns = 0;
    if (dt >= AIOS_DTYPE_Q8) {
        ns = gran == 0 ? 1 : gran == 1 ? n_out : n / G;
        w->scales = malloc(sizeof(float) * (size_t)(ns + 1));
        w->zps = malloc(sizeof(float) * (size_t)(ns + 1));
        for (int64_t i = 0; i < ns; i++) {
            w->scales[i] = 0.01f + 0.05f * (float)(rnd() % 1000) / 1000.0f;
            w->zps[i] = zp ? (float)((int)(rnd() % 5) - 2) + 0.25f * (float)(rnd() % 4) : 0.0f;
        }
        w->t.scales = w->scales;
        w->t.zero_points = zp ? w->zps : NULL;
        if (g_f16_scales) {
            w->s16 = malloc(2 * (size_t)(ns + 1));
            w->z16 = malloc(2 * (size_t)(ns + 1));
            for (int64_t i = 0; i < ns; i++) {
                w->s16[i] = aios_quant_float_to_half(w->scales[i]);
                w->z16[i] = aios_quant_float_to_half(w->zps[i]);
                w->scales[i] = (float)f16_value(w->s16[i]); /* what the kernels must see */
                w->zps[i] = (float)f16_value(w->z16[i]);
            }
            w->t.scales = (const float *)w->s16;
            w->t.zero_points = zp ? (const float *)w->z16 : NULL;
            w->t.scale_dtype = AIOS_DTYPE_F16;
        }
        w->t.n_scales = ns;
        w->t.quant_axis = gran == 1 ? 0 : -1;
        w->t.group_size = gran == 2 ? G : 0;
    }
    for (int64_t e = 0; e < n; e++) {
        int64_t r = e / (n_in ? n_in : 1), c = e % (n_in ? n_in : 1);
        if (dt == AIOS_DTYPE_F32) {
            float f = frand();
            memcpy(d + e * 4, &f, 4);
            w->dq[e] = f;
        } else if (dt == AIOS_DTYPE_F16) {
            uint16_t h = (uint16_t)(rnd() % 0x7BFF) | (rnd() & 1 ? 0x8000 : 0);
            if (((h >> 10) & 31) > 16) h &= 0xBFFF; /* keep |x| moderate */
            memcpy(d + e * 2, &h, 2);
            w->dq[e] = f16_value(h);
        } else if (dt == AIOS_DTYPE_BF16) {
            float f = frand();
            uint32_t b;
            memcpy(&b, &f, 4);
            uint16_t h = (uint16_t)(b >> 16);
            memcpy(d + e * 2, &h, 2);
            uint32_t back = (uint32_t)h << 16;
            memcpy(&f, &back, 4);
            w->dq[e] = f;
        } else {
            int lo = -(1 << (bits - 1)), q = lo + (int)(rnd() % (1u << bits)); /* full range */
            if (bits == 8) d[e] = (uint8_t)(int8_t)q;
            else if (bits == 4) d[e / 2] |= (uint8_t)((q + 8) << (e % 2 ? 0 : 4));
            else d[e / 4] |= (uint8_t)((q + 2) << (6 - 2 * (e % 4)));
            int64_t si = gran == 0 ? 0 : gran == 1 ? r : e / G;
            w->dq[e] = ((double)q - (double)w->zps[si] * (zp ? 1 : 0)) * (double)w->scales[si];
        }
        (void)c;
    }
    w->t.data = d;
    w->t.nbytes = nbytes;
}
static void free_weight(wt *w) {
    free(w->data);
    free(w->scales);
    free(w->zps);
    free(w->s16);
    free(w->z16);
    free(w->dq);
}

/* 1: check_matmul_case's float weights start 2 bytes past an aligned address */
static int g_misalign;

static void check_matmul_case(aios_dtype dt, int64_t n_out, int64_t n_in, int64_t T, int gran, int G, int zp) {
    wt w;
    make_weight(&w, dt, n_out, n_in, gran, G, zp, g_misalign);
    float *x = malloc(sizeof(float) * (size_t)(T * n_in + 1)), *bias = malloc(sizeof(float) * (size_t)(n_out + 1));
    float *yr = malloc(sizeof(float) * (size_t)(T * n_out + 1)), *yf = malloc(sizeof(float) * (size_t)(T * n_out + 1));
    double *yd = malloc(sizeof(double) * (size_t)(T * n_out + 1)), *ya = malloc(sizeof(double) * (size_t)(T * n_out + 1));
    fill(x, T * n_in, 1.0f);
    fill(bias, n_out, 0.5f);
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < n_out; r++) {
            double s = bias[r], a = fabs(bias[r]);
            for (int64_t c = 0; c < n_in; c++) {
                s += w.dq[r * n_in + c] * (double)x[t * n_in + c];
                a += fabs(w.dq[r * n_in + c] * (double)x[t * n_in + c]);
            }
            yd[t * n_out + r] = s;
            ya[t * n_out + r] = a;
        }
    CHECK_OK(aios_ref_matmul(yr, x, &w.t, bias, T));
    /* float32 accumulation: error measured against sum |w x| of each output */
    double e = 0;
    for (int64_t i = 0; i < T * n_out; i++) e = fmax(e, fabs(yr[i] - yd[i]) / (ya[i] + 1e-30));
    CHECKF(e < 1e-5, "ref matmul dtype %d %lldx%lld T=%lld gran %d zp %d: rel err %g", dt, (long long)n_out,
           (long long)n_in, (long long)T, gran, zp, e);
    aios_kernels_int8_activations(0); /* the exact-float path here; int8 x int8 below */
    for (size_t i = 0; i < sizeof TIERS / sizeof TIERS[0]; i++) {
        if (!t_use_tier(TIERS[i])) continue;
        memset(yf, 0xFF, sizeof(float) * (size_t)(T * n_out));
        CHECK_OK(aios_matmul(yf, x, &w.t, i % 2 ? bias : bias, T));
        double ef = 0;
        for (int64_t j = 0; j < T * n_out; j++) ef = fmax(ef, fabs(yf[j] - yr[j]) / (ya[j] + 1e-30));
        if (isnan(ef)) ef = INFINITY;
        CHECKF(ef < 1e-5, "%s matmul dtype %d %lldx%lld T=%lld gran %d: err %g vs ref", TIERS[i], dt,
               (long long)n_out, (long long)n_in, (long long)T, gran, ef);
        CHECKF(rel_err_d(yf, yd, T * n_out) < 2e-6 || T * n_out < 8, "%s dtype %d %lldx%lld T=%lld gran %d zp %d: %g vs double", TIERS[i], dt, (long long)n_out, (long long)n_in, (long long)T, gran, zp, rel_err_d(yf, yd, T * n_out));
    }
    aios_kernels_use("auto");
    free(x), free(bias), free(yr), free(yf), free(yd), free(ya);
    free_weight(&w);
}

static void test_matmul_all_dtypes(void) {
    static const int64_t sizes[] = {1, 7, 33, 4097};
    static const aios_dtype dts[] = {AIOS_DTYPE_F32, AIOS_DTYPE_F16, AIOS_DTYPE_BF16, AIOS_DTYPE_Q8, AIOS_DTYPE_Q4, AIOS_DTYPE_Q2};
    for (size_t d = 0; d < 6; d++)
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 3; b++) {
                int64_t n_in = sizes[a], n_out = sizes[b];
                int64_t T = (a + b) % 3 == 0 ? 1 : (a + b) % 3 == 1 ? 7 : 33;
                if (n_in == 4097 && n_out == 33 && T == 33) T = 5; /* keep the test fast */
                if (dts[d] < AIOS_DTYPE_Q8) {
                    check_matmul_case(dts[d], n_out, n_in, T, 0, 0, 0);
                    continue;
                }
                int G = n_in == 4097 ? 17 : n_in == 33 ? 11 : (int)n_in;
                for (int gran = 0; gran < 3; gran++) check_matmul_case(dts[d], n_out, n_in, T, gran, G, gran != 1 || b);
            }
}

/* Larger tiles and tokens: every T remainder (1..9) against 4-row blocks, partial row blocks. */
static void test_matmul_tiles(void) {
    for (int64_t T = 1; T <= 9; T++) check_matmul_case(AIOS_DTYPE_F32, 10, 70, T, 0, 0, 0);
    check_matmul_case(AIOS_DTYPE_Q8, 67, 1100, 70, 1, 0, 1); /* crosses KC and TB blocks */
    check_matmul_case(AIOS_DTYPE_Q4, 35, 1031, 66, 2, 1031, 1);
    check_matmul_case(AIOS_DTYPE_Q2, 13, 515, 65, 2, 5, 1);
    check_matmul_case(AIOS_DTYPE_F16, 64, 384, 40, 0, 0, 0);
    check_matmul_case(AIOS_DTYPE_BF16, 9, 1030, 3, 0, 0, 0);
}

/* The packed GEMM (8+ token rows): token slabs of 96 rows and their remainders, output panels
 * of 16/32 with partial last panels, KC chunks of 256 columns with remainders, every dtype. */
static void test_matmul_gemm(void) {
    check_matmul_case(AIOS_DTYPE_F32, 130, 600, 197, 0, 0, 0);
    check_matmul_case(AIOS_DTYPE_F32, 17, 257, 8, 0, 0, 0);
    check_matmul_case(AIOS_DTYPE_F32, 33, 5, 103, 0, 0, 0);
    check_matmul_case(AIOS_DTYPE_F16, 47, 513, 13, 0, 0, 0);
    check_matmul_case(AIOS_DTYPE_BF16, 31, 300, 100, 0, 0, 0);
    check_matmul_case(AIOS_DTYPE_Q8, 65, 768, 50, 2, 32, 1);
    check_matmul_case(AIOS_DTYPE_Q4, 40, 515, 9, 1, 0, 1);
    check_matmul_case(AIOS_DTYPE_Q2, 100, 260, 21, 2, 13, 1);
    /* one output's sum never depends on how outputs are split across threads */
    wt w;
    make_weight(&w, AIOS_DTYPE_F16, 200, 300, 0, 0, 0, 0);
    float *x = malloc(sizeof(float) * 37 * 300), *y1 = malloc(sizeof(float) * 37 * 200), *y2 = malloc(sizeof(float) * 37 * 200);
    fill(x, 37 * 300, 1.0f);
    int old = aios_get_threads();
    aios_set_threads(1);
    CHECK_OK(aios_matmul(y1, x, &w.t, NULL, 37));
    aios_set_threads(2);
    CHECK_OK(aios_matmul(y2, x, &w.t, NULL, 37));
    aios_set_threads(old);
    CHECK(!memcmp(y1, y2, sizeof(float) * 37 * 200));
    free(x), free(y1), free(y2);
    free_weight(&w);
}

/* Few token rows on float32 weights (9..48: gemm_small_avx512.c, x packed, W read in place):
 * every count of 16-lane token vectors (1, 2, 3) with partial ones, output rows not a multiple
 * of the 8-row tile, odd columns; 1 and 2 threads give the same bits; the packed GEMM from 49. */
static void test_matmul_gemm_small(void) {
    static const int64_t Ts[] = {8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49};
    static const int64_t shapes[][2] = {{1, 1}, {7, 3}, {37, 129}, {9, 1031}, {64, 384}};
    for (size_t a = 0; a < sizeof Ts / sizeof Ts[0]; a++)
        for (size_t b = 0; b < sizeof shapes / sizeof shapes[0]; b++)
            check_matmul_case(AIOS_DTYPE_F32, shapes[b][0], shapes[b][1], Ts[a], 0, 0, 0);
    wt w;
    make_weight(&w, AIOS_DTYPE_F32, 203, 385, 0, 0, 0, 0);
    float *x = malloc(sizeof(float) * 30 * 385), *y1 = malloc(sizeof(float) * 30 * 203), *y2 = malloc(sizeof(float) * 30 * 203);
    fill(x, 30 * 385, 1.0f);
    int old = aios_get_threads();
    aios_set_threads(1);
    CHECK_OK(aios_matmul(y1, x, &w.t, NULL, 30));
    aios_set_threads(2);
    CHECK_OK(aios_matmul(y2, x, &w.t, NULL, 30));
    aios_set_threads(old);
    CHECK(!memcmp(y1, y2, sizeof(float) * 30 * 203));
    /* the same bits as the packed GEMM (more than 48 rows): a text encoded alone equals the text
     * inside a batch (memory search --text vs --query-file), n_in 385 crosses a 256-column chunk */
    float *xb = malloc(sizeof(float) * 64 * 385), *yb = malloc(sizeof(float) * 64 * 203);
    fill(xb, 64 * 385, 2.0f);
    memcpy(xb + 17 * 385, x, sizeof(float) * 30 * 385);
    CHECK_OK(aios_matmul(yb, xb, &w.t, NULL, 64));
    CHECK(!memcmp(yb + 17 * 203, y1, sizeof(float) * 30 * 203));
    free(xb), free(yb);
    free(x), free(y1), free(y2);
    free_weight(&w);
}

/* The packed GEMM writes y = bias (or 0) + x @ W^T itself (its first KC chunk stores, later ones
 * add): y's old contents (NaN, garbage) never show; several KC chunks with a remainder (n_in 600,
 * 513, 257), one short chunk (100), partial output panels and partial MR tiles (T 49, 61, 103);
 * with and without bias, f32 and bf16 weights (packed through the dequantizer) and the pack made
 * once; against the reference; NULL bias and a bias of zeros give the same bits; on AVX-512 the
 * few-row path (which adds into a filled y) gives the same bits for the same rows in a batch. */
static void test_matmul_gemm_writes_y(void) {
    static const int64_t shapes[][2] = {{70, 600}, {33, 257}, {64, 513}, {37, 100}};
    static const int64_t Ts[] = {49, 61, 103};
    static const aios_dtype dts[] = {AIOS_DTYPE_F32, AIOS_DTYPE_BF16};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
        for (size_t d = 0; d < 2; d++) {
            const int64_t n_out = shapes[sh][0], n_in = shapes[sh][1];
            wt w;
            make_weight(&w, dts[d], n_out, n_in, 0, 0, 0, 0);
            float *x = malloc(sizeof(float) * (size_t)(103 * n_in)), *bias = malloc(sizeof(float) * (size_t)n_out);
            float *zb = calloc((size_t)n_out, sizeof(float));
            float *y0 = malloc(sizeof(float) * (size_t)(103 * n_out)), *y1 = malloc(sizeof(float) * (size_t)(103 * n_out));
            float *yr = malloc(sizeof(float) * (size_t)(103 * n_out));
            fill(x, 103 * n_in, 1.0f);
            fill(bias, n_out, 0.5f);
            for (size_t i = 0; i < sizeof TIERS / sizeof TIERS[0]; i++) {
                if (!t_use_tier(TIERS[i])) continue;
                aios_matmul_pack *P = NULL;
                CHECK_OK(aios_matmul_pack_new(&w.t, &P));
                int differ = 0;
                double err = 0;
                for (size_t a = 0; a < sizeof Ts / sizeof Ts[0]; a++)
                    for (int b = 0; b < 2; b++) {
                        const int64_t T = Ts[a];
                        const size_t n = (size_t)(T * n_out);
                        const float *bs = b ? bias : NULL;
                        for (size_t j = 0; j < n; j++) y0[j] = NAN;
                        CHECK_OK(aios_matmul(y0, x, &w.t, bs, T));
                        memset(y1, 0x5A, sizeof(float) * n); /* garbage: 0x5A5A5A5A ~ 1.5e16 */
                        CHECK_OK(aios_matmul(y1, x, &w.t, bs, T));
                        differ += memcmp(y0, y1, sizeof(float) * n) != 0;
                        CHECK_OK(aios_ref_matmul(yr, x, &w.t, bs, T));
                        err = fmax(err, t_rel_err(y0, yr, n));
                        if (P) {
                            for (size_t j = 0; j < n; j++) y1[j] = NAN;
                            CHECK_OK(aios_matmul_packed(y1, x, &w.t, P, bs, T));
                            differ += memcmp(y0, y1, sizeof(float) * n) != 0;
                        }
                        if (!b) {
                            memset(y1, 0xFF, sizeof(float) * n); /* NaN */
                            CHECK_OK(aios_matmul(y1, x, &w.t, zb, T));
                            differ += memcmp(y0, y1, sizeof(float) * n) != 0;
                        }
                    }
                CHECKF(differ == 0, "%s %s %lldx%lld: %d products depend on y's old contents", TIERS[i],
                       d ? "bf16" : "f32", (long long)n_out, (long long)n_in, differ);
                CHECKF(err < 1e-5, "%s %s %lldx%lld: GEMM vs reference %g", TIERS[i], d ? "bf16" : "f32",
                       (long long)n_out, (long long)n_in, err);
                if (!strcmp(TIERS[i], "avx512") && d == 0) {
                    /* rows 17..46 of a 103-row batch equal the same 30 rows alone (few-row path) */
                    CHECK_OK(aios_matmul(y0, x, &w.t, bias, 103));
                    for (size_t j = 0; j < (size_t)(30 * n_out); j++) y1[j] = NAN;
                    CHECK_OK(aios_matmul(y1, x + 17 * n_in, &w.t, bias, 30));
                    CHECKF(!memcmp(y0 + 17 * n_out, y1, sizeof(float) * (size_t)(30 * n_out)),
                           "avx512 %lldx%lld: batch rows differ from the few-row path", (long long)n_out,
                           (long long)n_in);
                }
                aios_matmul_pack_free(P);
            }
            aios_kernels_use("auto");
            free(x), free(bias), free(zb), free(y0), free(y1), free(yr);
            free_weight(&w);
        }
}

/* Float32 weights packed once (aios_matmul_pack_new, the encoder's layers): aios_matmul_packed
 * gives aios_matmul's bits on every tier — partial output panels (n_out not a multiple of 16 /
 * 32), KC chunks with remainders (n_in 257, 600), every row count from the GEMV (1-3) and tile
 * (4-7) paths through the few-row path (8-48) to the packed GEMM (49+) — and agrees with the
 * reference; a pack made on another tier, or for another W, is ignored; 1 and 2 threads agree;
 * quantized, half and misaligned weights get no pack. */
static void test_matmul_prepacked(void) {
    static const int64_t shapes[][2] = {{130, 600}, {17, 257}, {33, 5}, {203, 385}, {64, 384}};
    static const int64_t Ts[] = {1, 3, 5, 8, 30, 48, 49, 103, 197};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        const int64_t n_out = shapes[sh][0], n_in = shapes[sh][1];
        wt w, w2;
        make_weight(&w, AIOS_DTYPE_F32, n_out, n_in, 0, 0, 0, 0);
        make_weight(&w2, AIOS_DTYPE_F32, n_out, n_in, 0, 0, 0, 0); /* same shape, other memory */
        float *x = malloc(sizeof(float) * (size_t)(197 * n_in)), *bias = malloc(sizeof(float) * (size_t)n_out);
        float *y0 = malloc(sizeof(float) * (size_t)(197 * n_out)), *y1 = malloc(sizeof(float) * (size_t)(197 * n_out));
        float *yr = malloc(sizeof(float) * (size_t)(197 * n_out));
        fill(x, 197 * n_in, 1.0f);
        fill(bias, n_out, 0.5f);
        aios_matmul_pack *other = NULL;
        for (size_t i = 0; i < sizeof TIERS / sizeof TIERS[0]; i++) {
            if (!t_use_tier(TIERS[i])) continue;
            aios_matmul_pack *P = NULL, *P2 = NULL;
            CHECK_OK(aios_matmul_pack_new(&w.t, &P));
            CHECK_OK(aios_matmul_pack_new(&w2.t, &P2));
            CHECKF(P != NULL, "%s: no pack for float32 W", TIERS[i]);
            int differ = 0;
            double err = 0;
            for (size_t a = 0; a < sizeof Ts / sizeof Ts[0]; a++) {
                const int64_t T = Ts[a];
                CHECK_OK(aios_matmul(y0, x, &w.t, bias, T));
                memset(y1, 0xFF, sizeof(float) * (size_t)(T * n_out));
                CHECK_OK(aios_matmul_packed(y1, x, &w.t, P, bias, T));
                differ += memcmp(y0, y1, sizeof(float) * (size_t)(T * n_out)) != 0;
                CHECK_OK(aios_ref_matmul(yr, x, &w.t, bias, T));
                err = fmax(err, t_rel_err(y1, yr, (size_t)(T * n_out)));
                /* a pack of another W, or of the other tier, is not used */
                CHECK_OK(aios_matmul_packed(y1, x, &w.t, P2, bias, T));
                differ += memcmp(y0, y1, sizeof(float) * (size_t)(T * n_out)) != 0;
                if (other) {
                    CHECK_OK(aios_matmul_packed(y1, x, &w.t, other, bias, T));
                    differ += memcmp(y0, y1, sizeof(float) * (size_t)(T * n_out)) != 0;
                }
            }
            CHECKF(differ == 0, "%s %lldx%lld: %d products through the pack differ from aios_matmul", TIERS[i],
                   (long long)n_out, (long long)n_in, differ);
            CHECKF(err < 1e-5, "%s %lldx%lld: packed vs reference %g", TIERS[i], (long long)n_out, (long long)n_in, err);
            /* threads: one output's sum does not depend on the split */
            int old = aios_get_threads();
            aios_set_threads(1);
            CHECK_OK(aios_matmul_packed(y0, x, &w.t, P, NULL, 197));
            aios_set_threads(2);
            CHECK_OK(aios_matmul_packed(y1, x, &w.t, P, NULL, 197));
            aios_set_threads(old);
            CHECK(!memcmp(y0, y1, sizeof(float) * (size_t)(197 * n_out)));
            aios_matmul_pack_free(P2);
            aios_matmul_pack_free(other);
            other = P;
        }
        aios_matmul_pack_free(other);
        aios_kernels_use("auto");
        free(x), free(bias), free(y0), free(y1), free(yr);
        free_weight(&w), free_weight(&w2);
    }
    /* nothing to pack: half, quantized and misaligned float weights, the reference tier */
    static const aios_dtype dts[] = {AIOS_DTYPE_F16, AIOS_DTYPE_BF16, AIOS_DTYPE_Q8, AIOS_DTYPE_Q4};
    for (int d = 0; d < 5; d++) {
        wt w;
        make_weight(&w, d < 4 ? dts[d] : AIOS_DTYPE_F32, 40, 70, 1, 0, 0, d == 4);
        aios_matmul_pack *P = (aios_matmul_pack *)&w; /* must be overwritten */
        CHECK_OK(aios_matmul_pack_new(&w.t, &P));
        CHECK(P == NULL);
        free_weight(&w);
    }
    wt w;
    make_weight(&w, AIOS_DTYPE_F32, 40, 70, 0, 0, 0, 0);
    aios_matmul_pack *P = (aios_matmul_pack *)&w;
    if (t_use_tier("ref")) {
        CHECK_OK(aios_matmul_pack_new(&w.t, &P));
        CHECK(P == NULL);
    }
    aios_kernels_use("auto");
    aios_matmul_pack_free(NULL);
    free_weight(&w);
}

/* Decoding (1-3 tokens): the fused quantized GEMV (rows expanded in registers, 4-row blocks,
 * int4 / int2 rows starting mid-byte, scalar heads and tails, row ranges split across threads)
 * against the reference for every dtype, granularity and with / without zero points. */
static void test_matmul_decode(void) {
    static const int64_t n_ins[] = {1, 7, 33, 4097, 576, 130, 66};
    static const int64_t n_outs[] = {1, 7, 33, 300};
    static const aios_dtype dts[] = {AIOS_DTYPE_Q8, AIOS_DTYPE_Q4, AIOS_DTYPE_Q2};
    int old = aios_get_threads();
    aios_set_threads(2);
    for (size_t d = 0; d < 3; d++)
        for (size_t a = 0; a < sizeof n_ins / sizeof n_ins[0]; a++)
            for (size_t b = 0; b < sizeof n_outs / sizeof n_outs[0]; b++) {
                int64_t n_in = n_ins[a], n_out = n_outs[b];
                if (n_in == 4097 && n_out == 300) continue; /* keep the test fast */
                int G = n_in == 4097 ? 17 : n_in == 33 ? 11 : n_in == 576 ? 32 : n_in == 130 ? 10 : n_in == 66 ? 6 : (int)n_in;
                for (int64_t T = 1; T <= 3; T++)
                    for (int gran = 0; gran < 3; gran++)
                        for (int zp = 0; zp < 2; zp++) check_matmul_case(dts[d], n_out, n_in, T, gran, G, zp);
            }
    /* groups longer than a partial sum (avx2 splits runs at 256 columns) */
    check_matmul_case(AIOS_DTYPE_Q4, 9, 1100, 1, 2, 550, 1);
    check_matmul_case(AIOS_DTYPE_Q8, 13, 1024, 2, 2, 512, 0);
    check_matmul_case(AIOS_DTYPE_Q2, 6, 1032, 3, 2, 344, 1);
    aios_set_threads(old);
}

/* Decoding with float weights: the streaming float GEMV (64 / 32-column steps, 16 / 8-lane
 * steps, masked or scalar tails, 4-row blocks and single rows, row ranges across threads) for
 * f32, f16 and bf16 at sizes around every step, 1-3 tokens, aligned and misaligned weights. */
static void test_matmul_decode_float(void) {
    static const int64_t n_ins[] = {1, 7, 8, 17, 31, 33, 63, 64, 65, 97, 130, 576, 1031, 4097};
    static const int64_t n_outs[] = {1, 3, 5, 7, 33, 301};
    static const aios_dtype dts[] = {AIOS_DTYPE_F32, AIOS_DTYPE_F16, AIOS_DTYPE_BF16};
    int old = aios_get_threads();
    for (int th = 1; th <= 2; th++) {
        aios_set_threads(th);
        for (size_t d = 0; d < 3; d++)
            for (size_t a = 0; a < sizeof n_ins / sizeof n_ins[0]; a++)
                for (size_t b = 0; b < sizeof n_outs / sizeof n_outs[0]; b++)
                    for (int64_t T = 1; T <= 3; T++) {
                        if (n_ins[a] == 4097 && n_outs[b] == 301 && T > 1) continue; /* keep the test fast */
                        g_misalign = (int)((a + b + T) % 2);
                        check_matmul_case(dts[d], n_outs[b], n_ins[a], T, 0, 0, 0);
                    }
    }
    g_misalign = 0;
    aios_set_threads(old);
}

/* Q8 weights x int8 activations (VNNI): against the same scheme computed here — activations
 * quantized per token row (fewer than 8 rows: the dot-product path; 1..3 rows of a multiple of
 * 32 columns take the blocks-of-16 GEMV instead, test_matmul_int8_activations_groups) or per token row and group
 * of 32 columns (8 rows and more: the VNNI GEMM, qgemm_avx512.c) as documented (scale max|x| /
 * 127 of the row or group, round half to even) — and, loosely, against the float result.
 * Odd sizes: output rows not a multiple of the 32-row panel, columns not a multiple of the
 * 32-column group or the 512-column chunk, token rows not a multiple of the 6-row tile; 1 and 2
 * threads. */
static void test_matmul_int8_activations(void) {
    if (!aios_cpu()->avx512vnni) SKIP("no AVX-512 VNNI on this CPU");
    static const int64_t shapes[][3] = {{1, 1, 1},    {7, 33, 3},    {33, 4097, 5}, {64, 384, 70}, {5, 130, 2},
                                        {37, 1001, 13}, {100, 64, 9}, {33, 31, 8},  {65, 97, 20}, {1, 515, 11}};
    const int ns = (int)(sizeof shapes / sizeof shapes[0]);
    const int old_threads = aios_get_threads();
    for (int c = 0; c < 2 * ns; c++) /* the second pass with float16 scales */
        for (int gran = 0; gran < 2; gran++) {
            g_f16_scales = c >= ns;
            int64_t n_out = shapes[c % ns][0], n_in = shapes[c % ns][1], T = shapes[c % ns][2];
            const int64_t G = T >= 8 ? 32 : n_in; /* activation columns per scale */
            wt w;
            make_weight(&w, AIOS_DTYPE_Q8, n_out, n_in, gran, 0, c % 3 != 1, 0);
            g_f16_scales = 0;
            float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *y = malloc(sizeof(float) * (size_t)(T * n_out));
            float *yr = malloc(sizeof(float) * (size_t)(T * n_out));
            fill(x, T * n_in, 2.0f);
            if (c % 4 == 3) x[(T / 2) * n_in + n_in / 3] = 300.0f; /* an outlier (scheme check only) */
            CHECK_OK(aios_kernels_use("avx512"));
            aios_set_threads(1 + c % 2);
            aios_kernels_int8_activations(1);
            CHECK_OK(aios_matmul(y, x, &w.t, NULL, T));
            CHECK_OK(aios_ref_matmul(yr, x, &w.t, NULL, T));
            double maxe = 0;
            for (int64_t t = 0; t < T; t++) {
                for (int64_t r = 0; r < n_out; r++) {
                    int64_t si = gran ? r : 0;
                    double acc = 0, mag = 0;
                    for (int64_t g0 = 0; g0 < n_in; g0 += G) {
                        const int64_t g1 = g0 + G < n_in ? g0 + G : n_in;
                        float amax = 0;
                        for (int64_t k = g0; k < g1; k++) amax = fmaxf(amax, fabsf(x[t * n_in + k]));
                        float sxf = amax > 0 ? amax / 127.0f : 1.0f, inv = 1.0f / sxf;
                        for (int64_t k = g0; k < g1; k++) {
                            double qx = nearbyintf(x[t * n_in + k] * inv);
                            double qw = (double)(int8_t)((const uint8_t *)w.t.data)[r * n_in + k];
                            acc += (qw - w.zps[si]) * qx * sxf;
                            mag += fabs((qw - w.zps[si]) * qx * sxf);
                        }
                    }
                    double want = acc * w.scales[si], scale = mag * w.scales[si] + 1e-30;
                    maxe = fmax(maxe, fabs(y[t * n_out + r] - want) / scale);
                }
            }
            CHECKF(maxe < 1e-5, "int8 act %lldx%lld T=%lld gran %d: %g", (long long)n_out, (long long)n_in, (long long)T, gran, maxe);
            double rel = t_rel_err(y, yr, (size_t)(T * n_out));
            CHECKF(c % 4 == 3 || rel < 2e-2, "int8 act vs float %lldx%lld T=%lld: %g", (long long)n_out,
                   (long long)n_in, (long long)T, rel);
            aios_kernels_use("auto");
            aios_kernels_int8_activations(0);
            free(x), free(y), free(yr);
            free_weight(&w);
        }
    aios_set_threads(old_threads);
}

/* The VNNI GEMM on int8 / int4 / int2 weights with per-row, per-tensor or grouped scales (groups
 * of 32..128 columns), with and without zero points: against the scheme computed here from the
 * weights' definition (w.dq) and the documented activation rounding (per row and group of 32). */
static void test_qgemm_grouped(void) {
    if (!aios_cpu()->avx512vnni) SKIP("no AVX-512 VNNI on this CPU");
    static const aios_dtype dts[] = {AIOS_DTYPE_Q8, AIOS_DTYPE_Q4, AIOS_DTYPE_Q2};
    static const int64_t shapes[][4] = {/* n_out, n_in, T, G */
                                        {37, 128, 13, 32}, {64, 576, 9, 64}, {33, 1024, 20, 128}, {5, 96, 8, 32}};
    for (int d = 0; d < 3; d++)
        for (int c = 0; c < 4; c++)
            for (int gran = 0; gran < 3; gran++)
                for (int zp = 0; zp < 2; zp++) {
                    const int64_t n_out = shapes[c][0], n_in = shapes[c][1], T = shapes[c][2];
                    wt w;
                    g_f16_scales = (c + zp) % 2;
                    make_weight(&w, dts[d], n_out, n_in, gran, (int)shapes[c][3], zp, 0);
                    g_f16_scales = 0;
                    float *x = malloc(sizeof(float) * (size_t)(T * n_in));
                    float *y = malloc(sizeof(float) * (size_t)(T * n_out));
                    fill(x, T * n_in, 1.5f);
                    CHECK_OK(aios_kernels_use("avx512"));
                    aios_kernels_int8_activations(1);
                    CHECK_OK(aios_matmul(y, x, &w.t, NULL, T));
                    aios_kernels_int8_activations(0);
                    double maxe = 0;
                    for (int64_t t = 0; t < T; t++) {
                        double *xq = malloc(sizeof(double) * (size_t)n_in);
                        for (int64_t g0 = 0; g0 < n_in; g0 += 32) {
                            float amax = 0;
                            for (int64_t k = g0; k < g0 + 32 && k < n_in; k++) amax = fmaxf(amax, fabsf(x[t * n_in + k]));
                            float sxf = amax > 0 ? amax / 127.0f : 1.0f, inv = 1.0f / sxf;
                            for (int64_t k = g0; k < g0 + 32 && k < n_in; k++) xq[k] = nearbyintf(x[t * n_in + k] * inv) * (double)sxf;
                        }
                        for (int64_t r = 0; r < n_out; r++) {
                            double acc = 0, mag = 0;
                            for (int64_t k = 0; k < n_in; k++) {
                                acc += w.dq[r * n_in + k] * xq[k];
                                mag += fabs(w.dq[r * n_in + k] * xq[k]);
                            }
                            maxe = fmax(maxe, fabs(y[t * n_out + r] - acc) / (mag + 1e-30));
                        }
                        free(xq);
                    }
                    CHECKF(maxe < 1e-5, "qgemm %s gran %d zp %d %lldx%lld T=%lld: %g", aios_dtype_name(dts[d]), gran, zp,
                           (long long)n_out, (long long)n_in, (long long)T, maxe);
                    aios_kernels_use("auto");
                    free(x), free(y);
                    free_weight(&w);
                }
}

/* The point of per-group activation scales: a row with one outlier keeps the resolution of
 * every other group.  Error measured against the rest of the product (the float product less
 * the outlier's own term, which both schemes keep exactly up to 1/254): the VNNI GEMM must stay
 * well under what one scale per row (the scheme computed here) loses. */
static void test_qgemm_outlier_accuracy(void) {
    if (!aios_cpu()->avx512vnni) SKIP("no AVX-512 VNNI on this CPU");
    const int64_t n_out = 96, n_in = 384, T = 24;
    wt w;
    make_weight(&w, AIOS_DTYPE_Q8, n_out, n_in, 1, 0, 0, 0);
    float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *y = malloc(sizeof(float) * (size_t)(T * n_out));
    fill(x, T * n_in, 1.0f);
    for (int64_t t = 0; t < T; t++) x[t * n_in + (t * 37) % n_in] = 60.0f; /* one outlier per row */
    CHECK_OK(aios_kernels_use("avx512"));
    aios_kernels_int8_activations(1);
    CHECK_OK(aios_matmul(y, x, &w.t, NULL, T));
    aios_kernels_int8_activations(0);
    double eg = 0, er = 0, rest = 0;
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * n_in;
        const int64_t ko = (t * 37) % n_in;
        const double sxr = 60.0 / 127.0;
        for (int64_t r = 0; r < n_out; r++) {
            double full = 0, row = 0;
            for (int64_t k = 0; k < n_in; k++) {
                full += w.dq[r * n_in + k] * xt[k];
                row += w.dq[r * n_in + k] * nearbyint(xt[k] / sxr) * sxr;
            }
            const double out = w.dq[r * n_in + ko] * xt[ko];
            rest += (full - out) * (full - out);
            eg += (y[t * n_out + r] - full) * (y[t * n_out + r] - full);
            er += (row - full) * (row - full);
        }
    }
    eg = sqrt(eg / rest), er = sqrt(er / rest);
    CHECKF(eg < 0.12 && eg < 0.5 * er, "outliers: grouped scales lose %.3f of the rest, one scale per row %.3f", eg, er);
    aios_kernels_use("auto");
    free(x), free(y);
    free_weight(&w);
}

/* The per-thread int8-activation mode (aios_kernels_int8_thread_mode, what the encoder sets from
 * its model): mode 2 takes the VNNI GEMM from 8 rows (bit for bit the process-wide switch's
 * result) and keeps fewer rows exact (bit for bit the exact path); mode 0 is exact under the
 * process-wide switch; and two threads with different modes, at once, each get their own. */
static void *mode_thread(void *arg) {
    void **a = arg;
    const int mode = *(const int *)a[0];
    aios_kernels_int8_thread_mode(mode);
    for (int rep = 0; rep < 20; rep++) {
        if (aios_matmul(a[3], a[1], a[2], NULL, 24) != AIOS_OK) return (void *)1;
        if (memcmp(a[3], a[4], sizeof(float) * 24 * 96)) return (void *)2;
    }
    return NULL;
}

static void test_int8_thread_mode(void) {
    if (!aios_cpu()->avx512vnni) SKIP("no AVX-512 VNNI on this CPU");
    const int64_t n_out = 96, n_in = 384, T = 24;
    const size_t ny = (size_t)(T * n_out);
    wt w;
    make_weight(&w, AIOS_DTYPE_Q8, n_out, n_in, 1, 0, 1, 0);
    float *x = malloc(sizeof(float) * (size_t)(T * n_in));
    float *ye = malloc(sizeof(float) * ny), *yi = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny);
    float *y2 = malloc(sizeof(float) * ny);
    fill(x, T * n_in, 1.0f);
    CHECK_OK(aios_kernels_use("avx512"));
    CHECK(aios_kernels_int8_thread_mode(-1) == -1); /* nobody set one on this thread */
    aios_kernels_int8_activations(0);
    CHECK(aios_kernels_int8_setting() == 0);
    CHECK_OK(aios_matmul(ye, x, &w.t, NULL, T));
    aios_kernels_int8_activations(1);
    CHECK(aios_kernels_int8_setting() == 1);
    CHECK_OK(aios_matmul(yi, x, &w.t, NULL, T));
    CHECK(memcmp(ye, yi, sizeof(float) * ny) != 0); /* the two paths differ at all */
    /* mode 0 under the process-wide "on": exact */
    aios_kernels_int8_thread_mode(0);
    CHECK_OK(aios_matmul(y, x, &w.t, NULL, T));
    CHECK(!memcmp(y, ye, sizeof(float) * ny));
    aios_kernels_int8_activations(0);
    /* mode 2: the GEMM from 8 rows; the exact path below (3 and 7 rows) */
    CHECK(aios_kernels_int8_thread_mode(2) == 0);
    CHECK_OK(aios_matmul(y, x, &w.t, NULL, T));
    CHECK(!memcmp(y, yi, sizeof(float) * ny));
    for (int64_t t = 3; t <= 7; t += 4) {
        aios_kernels_int8_thread_mode(2);
        CHECK_OK(aios_matmul(y, x, &w.t, NULL, t));
        aios_kernels_int8_thread_mode(-1);
        CHECK_OK(aios_matmul(y2, x, &w.t, NULL, t));
        CHECKF(!memcmp(y, y2, sizeof(float) * (size_t)(t * n_out)), "mode 2 with %lld rows is exact", (long long)t);
    }
    /* two threads at once, one exact and one int8, each against its own result */
    int m0 = 0, m2 = 2;
    void *a0[5] = {&m0, x, &w.t, y, ye}, *a2[5] = {&m2, x, &w.t, y2, yi};
    pthread_t th0, th2;
    void *r0 = (void *)9, *r2 = (void *)9;
    const int ok0 = !pthread_create(&th0, NULL, mode_thread, a0), ok2 = !pthread_create(&th2, NULL, mode_thread, a2);
    CHECK(ok0 && ok2);
    if (ok0) pthread_join(th0, &r0); /* never join a thread that did not start */
    if (ok2) pthread_join(th2, &r2);
    CHECKF(r0 == NULL && r2 == NULL, "threads: exact %p, int8 %p", r0, r2);
    aios_kernels_int8_activations(-1);
    const char *env = getenv("AIOS_INT8_ACT"); /* forgotten: back to the environment's */
    CHECK(aios_kernels_int8_setting() == (env && !strcmp(env, "1") ? 1 : env && !strcmp(env, "0") ? 0 : -1));
    aios_kernels_int8_activations(0);
    aios_kernels_use("auto");
    free(x), free(ye), free(yi), free(y), free(y2);
    free_weight(&w);
}

/* The grouped decode GEMV (aios__gemv_gq_ok: int8 / int4, groups of 32k columns within a row;
 * the layout of transcoded Q8_0 / Q4_0 blocks) on every tier: odd row counts (4-row blocks and
 * single rows), passes of 64 groups and their remainders, groups of 1 and 3 blocks, float32 and
 * float16 scales, with and without zero points, 1-3 tokens.  Then the weights it uses must be
 * the reference's dequantized values bit for bit ((q - z) s, the difference rounded, then the
 * product): x a unit vector e_k makes y = W[:, k] exactly, whatever the summation order. */
static void test_matmul_decode_groups(void) {
    static const int64_t shapes[][3] = {{1, 32, 32},   {7, 96, 32},    {5, 576, 64},  {9, 640, 128},
                                        {6, 8448, 32}, {301, 576, 32}, {3, 4128, 96}, {33, 256, 256}};
    int old = aios_get_threads();
    aios_set_threads(2);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int d = 0; d < 2; d++)
            for (int zp = 0; zp < 2; zp++)
                for (int f16 = 0; f16 < 2; f16++) {
                    const aios_dtype dt = d ? AIOS_DTYPE_Q4 : AIOS_DTYPE_Q8;
                    const int64_t n_out = shapes[c][0], n_in = shapes[c][1];
                    g_f16_scales = f16;
                    for (int64_t T = 1; T <= 3; T++) check_matmul_case(dt, n_out, n_in, T, 2, (int)shapes[c][2], zp);
                    wt w;
                    make_weight(&w, dt, n_out, n_in, 2, (int)shapes[c][2], zp, 0);
                    g_f16_scales = 0;
                    float *x = calloc((size_t)n_in, sizeof(float)), *yr = malloc(sizeof(float) * (size_t)n_out);
                    float *y = malloc(sizeof(float) * (size_t)n_out);
                    static const int64_t ks[] = {0, 1, 17, 31, 32, 45};
                    for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
                        const int64_t k = (ks[q] * 7 + (int64_t)c) % n_in;
                        x[k] = 1.0f;
                        CHECK_OK(aios_ref_matmul(yr, x, &w.t, NULL, 1));
                        for (size_t i = 0; i < sizeof TIERS / sizeof TIERS[0]; i++) {
                            if (!t_use_tier(TIERS[i])) continue;
                            CHECK_OK(aios_matmul(y, x, &w.t, NULL, 1));
                            int bad = 0;
                            for (int64_t r = 0; r < n_out; r++) bad += y[r] != yr[r];
                            CHECKF(!bad, "%s grouped %s g%lld (%lld, %lld) zp %d f16 %d column %lld: %d weights differ from ref",
                                   TIERS[i], d ? "int4" : "int8", (long long)shapes[c][2], (long long)n_out,
                                   (long long)n_in, zp, f16, (long long)k, bad);
                        }
                        aios_kernels_use("auto");
                        x[k] = 0.0f;
                    }
                    free(x), free(yr), free(y);
                    free_weight(&w);
                }
    aios_set_threads(old);
}

/* int8 / int4 weights x int8 activations (the decode GEMV of each tier: AVX2 maddubs in avx2.c,
 * VNNI in qdot_avx512.c where it applies): groups of 32 to 256 (powers of two: VNNI), 96 and
 * 160 (AVX2 only), one scale per row and one per tensor; against the scalar reference of the
 * same integer math (cpu/qdot_ref.c), and that reference against the float GEMV of the
 * activations rounded here from the definition (per 16 values: dx = max|x| / 127, q = round
 * half to even (x / dx)).  Odd rows, rows past the kernels' 8192-column pass, float32 and
 * float16 scales, with and without zero points, 1-3 tokens. */
/* max over outputs of |y - want| / sum_k |w x| (the dequantized w, the rounded x); NaN: inf */
static double err_of_sum(const float *y, const float *want, const wt *w, const float *xr, int64_t T, int64_t n_out,
                         int64_t n_in) {
    double e_max = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < n_out; r++) {
            double mag = 1e-30;
            for (int64_t k = 0; k < n_in; k++) mag += fabs(w->dq[r * n_in + k] * xr[t * n_in + k]);
            double e = fabs(y[t * n_out + r] - want[t * n_out + r]) / mag;
            e_max = e == e ? fmax(e_max, e) : INFINITY;
        }
    return e_max;
}

static void test_matmul_int8_activations_groups(void) {
    /* n_out, n_in, group (0: a scale per row, -1: one for the tensor) */
    static const int64_t shapes[][3] = {{3, 32, 32},   {7, 96, 32},   {5, 576, 64}, {9, 640, 128}, {2, 8448, 256},
                                        {33, 256, 256}, {4, 480, 96},  {3, 8320, 160}, {6, 576, 0},  {2, 8448, 0},
                                        {5, 64, -1},    {21, 96, 32},  {69, 576, 64}, {17, 8448, 256}, {12, 576, 0},
                                        {10, 64, -1}};
    int ran = 0, packed = 0;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int d = 0; d < 2; d++)
            for (int zp = 0; zp < 2; zp++)
                for (int f16 = 0; f16 < 2; f16++)
                    for (int64_t T = 1; T <= 3; T++) {
                        const aios_dtype dt = d ? AIOS_DTYPE_Q4 : AIOS_DTYPE_Q8;
                        const int64_t n_out = shapes[c][0], n_in = shapes[c][1], G = shapes[c][2];
                        wt w;
                        g_f16_scales = f16;
                        make_weight(&w, dt, n_out, n_in, G > 0 ? 2 : G == 0 ? 1 : 0, (int)(G > 0 ? G : n_in), zp, 0);
                        g_f16_scales = 0;
                        float *x = malloc(sizeof(float) * (size_t)(T * n_in)), *xr = malloc(sizeof(float) * (size_t)(T * n_in));
                        float *y = malloc(sizeof(float) * (size_t)(T * n_out)), *yq = calloc((size_t)(T * n_out), sizeof(float));
                        float *yx = malloc(sizeof(float) * (size_t)(T * n_out));
                        fill(x, T * n_in, 2.0f);
                        for (int64_t i = 0; i < 16; i++) x[i] = 0.0f; /* an all-zero block: dx = 0 */
                        if (n_in > 100) x[n_in / 2 + 3] = 40.0f;       /* an outlier */
                        for (int64_t i = 0; i < T * n_in; i += 16) {
                            float am = 0;
                            for (int k = 0; k < 16; k++) am = fmaxf(am, fabsf(x[i + k]));
                            float sx = am / 127.0f, inv = sx != 0.0f ? 1.0f / sx : 0.0f;
                            for (int k = 0; k < 16; k++) xr[i + k] = nearbyintf(x[i + k] * inv) * sx;
                        }
                        CHECK_OK(aios_ref_matmul(yx, xr, &w.t, NULL, T));
                        aios__ref_gemv_i8(yq, n_out, x, n_in, (int)T, &w.t, 0, n_out);
                        double e_ref = err_of_sum(yq, yx, &w, xr, T, n_out, n_in);
                        CHECKF(e_ref < 1e-6, "qdot_ref %s g%lld (%lld, %lld) T %lld zp %d f16 %d vs rounded-x float %g",
                               d ? "int4" : "int8", (long long)G, (long long)n_out, (long long)n_in, (long long)T, zp, f16, e_ref);
                        for (size_t ti = 0; ti < sizeof TIERS / sizeof TIERS[0]; ti++) {
                            if (!t_use_tier(TIERS[ti])) continue;
                            for (int64_t i = 0; i < T * n_out; i++) y[i] = NAN;
                            aios_kernels_int8_activations(1);
                            CHECK_OK(aios_matmul(y, x, &w.t, NULL, T));
                            aios_kernels_int8_activations(0);
                            double e_simd = err_of_sum(y, yq, &w, xr, T, n_out, n_in);
                            CHECKF(e_simd < 1e-6, "%s int8 act %s g%lld (%lld, %lld) T %lld zp %d f16 %d: vs ref %g", TIERS[ti],
                                   d ? "int4" : "int8", (long long)G, (long long)n_out, (long long)n_in, (long long)T, zp, f16,
                                   e_simd);
                            ran++;
                            { /* 16-bit activations (mode 3): in place, and int4 f16 repacked */
                                float *xr16 = malloc(sizeof(float) * (size_t)(T * n_in)), *y16 = malloc(sizeof(float) * (size_t)(T * n_out));
                                t_round_x16(xr16, x, T * n_in);
                                CHECK_OK(aios_ref_matmul(y16, xr16, &w.t, NULL, T));
                                for (int pk = 0; pk < (d && f16 ? 2 : 1); pk++) {
                                    aios_matmul_pack *P = NULL;
                                    aios_kernels_int8_activations(3);
                                    if (pk) CHECK_OK(aios_matmul_pack_new(&w.t, &P));
                                    for (int64_t i = 0; i < T * n_out; i++) y[i] = NAN;
                                    CHECK_OK(aios_matmul_packed(y, x, &w.t, P, NULL, T));
                                    aios_kernels_int8_activations(0);
                                    CHECKF(!pk || n_out < 8 || (P && P->q4), "%s: no int4 pack under mode 3", TIERS[ti]);
                                    double e16 = err_of_sum(y, y16, &w, xr16, T, n_out, n_in);
                                    CHECKF(e16 < 1e-6, "%s x16 %s%s g%lld (%lld, %lld) T %lld zp %d f16 %d: vs rounded-x float %g",
                                           TIERS[ti], d ? "int4" : "int8", pk ? " packed" : "", (long long)G, (long long)n_out,
                                           (long long)n_in, (long long)T, zp, f16, e16);
                                    aios_matmul_pack_free(P);
                                }
                                free(xr16), free(y16);
                            }
                            if (d && f16) { /* int4 repacked in blocks of 8 rows (q4x8.c, the AVX2 tier) */
                                aios_matmul_pack *P = NULL;
                                CHECK_OK(aios_matmul_pack_new(&w.t, &P));
                                for (int64_t i = 0; i < T * n_out; i++) y[i] = NAN;
                                aios_kernels_int8_activations(1);
                                CHECK_OK(aios_matmul_packed(y, x, &w.t, P, NULL, T));
                                aios_kernels_int8_activations(0);
                                double e_pack = err_of_sum(y, yq, &w, xr, T, n_out, n_in);
                                CHECKF(e_pack < 1e-6, "%s int8 act int4 repacked g%lld (%lld, %lld) T %lld zp %d: vs ref %g",
                                       TIERS[ti], (long long)G, (long long)n_out, (long long)n_in, (long long)T, zp, e_pack);
                                packed += P && P->q4;
                                aios_matmul_pack_free(P);
                            }
                        }
                        aios_kernels_use("auto");
                        free(x), free(xr), free(y), free(yq), free(yx);
                        free_weight(&w);
                    }
    if (!ran) SKIP("no AVX2 on this CPU");
    else if (t_use_tier("avx2")) {
        CHECKF(packed > 0, "the AVX2 tier made no int4 repack");
        aios_kernels_use("auto");
    }
}

/* Scales and zero points stored as float16 (the aios.f16_scales extension): every quantized
 * dtype and granularity, decode (1-3 tokens, the fused GEMVs), row tiles and the packed GEMM,
 * the row dequantizers, against double math from the IEEE half values and every tier against
 * the reference; int8 activations (VNNI) too. */
static void test_matmul_f16_scales(void) {
    static const aios_dtype dts[] = {AIOS_DTYPE_Q8, AIOS_DTYPE_Q4, AIOS_DTYPE_Q2};
    static const int64_t shapes[][3] = {{1, 1, 1}, {7, 33, 2}, {33, 7, 3}, {5, 4097, 1}, {9, 576, 3}, {13, 130, 9}, {40, 515, 33}};
    g_f16_scales = 1;
    for (size_t d = 0; d < 3; d++)
        for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
            int64_t n_out = shapes[c][0], n_in = shapes[c][1], T = shapes[c][2];
            int G = n_in == 4097 ? 17 : n_in == 33 ? 11 : n_in == 576 ? 32 : n_in == 130 ? 10 : n_in == 515 ? 103 : (int)n_in;
            for (int gran = 0; gran < 3; gran++)
                for (int zp = 0; zp < 2; zp++) check_matmul_case(dts[d], n_out, n_in, T, gran, G, zp);
        }
    wt w;
    make_weight(&w, AIOS_DTYPE_Q4, 5, 33, 2, 11, 1, 0);
    float all[5 * 33];
    CHECK_OK(aios_tensor_to_f32(all, &w.t));
    for (int i = 0; i < 5 * 33; i++) CHECKF(fabs(all[i] - w.dq[i]) <= 1e-6 * fabs(w.dq[i]) + 1e-7, "f16 scales elem %d", i);
    CHECK_OK(aios_quant_dequantize_ref(&w.t, all));
    for (int i = 0; i < 5 * 33; i++) CHECKF(fabs(all[i] - w.dq[i]) <= 1e-6 * fabs(w.dq[i]) + 1e-7, "f16 scales ref elem %d", i);
    aios_tensor t = w.t;
    t.scale_dtype = AIOS_DTYPE_BF16; /* only f32 / f16 are defined */
    float x[33], y[5];
    fill(x, 33, 1.0f);
    CHECK(aios_matmul(y, x, &t, NULL, 1) == AIOS_ERR_UNSUPPORTED);
    CHECK(aios_tensor_validate(&t) == AIOS_ERR_UNSUPPORTED);
    free_weight(&w);
    g_f16_scales = 0;
}

static void test_matmul_threads_deterministic(void) {
    wt w;
    make_weight(&w, AIOS_DTYPE_Q4, 130, 300, 2, 30, 1, 0);
    float x[7 * 300], y1[7 * 130], y2[7 * 130];
    fill(x, 7 * 300, 1.0f);
    int old = aios_get_threads();
    aios_set_threads(1);
    CHECK_OK(aios_matmul(y1, x, &w.t, NULL, 7));
    aios_set_threads(2);
    CHECK_OK(aios_matmul(y2, x, &w.t, NULL, 7));
    aios_set_threads(old);
    CHECK(!memcmp(y1, y2, sizeof y1));
    free_weight(&w);
}

static void test_matmul_rejects(void) {
    wt w;
    make_weight(&w, AIOS_DTYPE_Q8, 4, 6, 2, 3, 0, 0);
    float x[6], y[4];
    fill(x, 6, 1.0f);
    aios_tensor t = w.t;
    t.n_scales = 7;
    CHECK(aios_matmul(y, x, &t, NULL, 1) == AIOS_ERR_FORMAT);
    CHECK(aios_ref_matmul(y, x, &t, NULL, 1) == AIOS_ERR_FORMAT);
    t = w.t;
    t.group_size = 4; /* 6 % 4 != 0 */
    CHECK(aios_matmul(y, x, &t, NULL, 1) == AIOS_ERR_FORMAT);
    t = w.t;
    t.nbytes = 23;
    CHECK(aios_matmul(y, x, &t, NULL, 1) == AIOS_ERR_FORMAT);
    CHECK(strstr(aios_last_error(), "23 bytes") != NULL);
    t = w.t;
    t.ndim = 3;
    t.shape[2] = 1;
    CHECK(aios_matmul(y, x, &t, NULL, 1) == AIOS_ERR_SHAPE);
    t = w.t;
    t.dtype = AIOS_DTYPE_I32;
    CHECK(aios_matmul(y, x, &t, NULL, 1) == AIOS_ERR_UNSUPPORTED);
    t = w.t;
    t.scales = NULL;
    CHECK(aios_matmul(y, x, &t, NULL, 1) == AIOS_ERR_FORMAT);
    t = w.t;
    t.group_size = 0;
    t.quant_axis = 1;
    CHECK(aios_matmul(y, x, &t, NULL, 1) == AIOS_ERR_UNSUPPORTED);
    CHECK(aios_matmul(y, x, NULL, NULL, 1) == AIOS_ERR_INVALID_ARG);
    CHECK(aios_kernels_use("sse9") == AIOS_ERR_UNSUPPORTED);
    free_weight(&w);
}

static void test_tensor_to_f32(void) {
    static const aios_dtype dts[] = {AIOS_DTYPE_F32, AIOS_DTYPE_F16, AIOS_DTYPE_BF16, AIOS_DTYPE_Q8, AIOS_DTYPE_Q4, AIOS_DTYPE_Q2};
    for (size_t d = 0; d < 6; d++) {
        wt w;
        make_weight(&w, dts[d], 5, 33, 2, 11, 1, 0);
        float all[5 * 33], row[33];
        CHECK_OK(aios_tensor_to_f32(all, &w.t));
        for (int i = 0; i < 5 * 33; i++) CHECKF(fabs(all[i] - w.dq[i]) <= 1e-6 * fabs(w.dq[i]) + 1e-7, "dtype %d elem %d", dts[d], i);
        CHECK_OK(aios_tensor_row_f32(row, &w.t, 3));
        CHECK(!memcmp(row, all + 3 * 33, sizeof row));
        CHECK(aios_tensor_row_f32(row, &w.t, 5) == AIOS_ERR_RANGE);
        free_weight(&w);
    }
    float v[3] = {1.5f, -2, 3}, out[3];
    aios_tensor t = {.name = "b", .dtype = AIOS_DTYPE_F32, .ndim = 1, .shape = {3}, .data = v, .nbytes = 12};
    CHECK_OK(aios_tensor_to_f32(out, &t));
    CHECK(!memcmp(out, v, sizeof v));
}

/* ------------------------------------------------------------ rows and elementwise */

static const int64_t NS[] = {1, 7, 33, 4097};

typedef void (*inplace_fn)(float *, int64_t);
static void check_inplace(const char *name, inplace_fn fast, inplace_fn ref, double (*f)(double), float amp, double tol) {
    for (int s = 0; s < 4; s++) {
        int64_t n = NS[s];
        float *x = malloc(sizeof(float) * (size_t)n), *r = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
        fill(x, n, amp);
        if (n > 4) x[0] = 0, x[1] = -amp, x[2] = amp;
        memcpy(r, x, sizeof(float) * (size_t)n);
        ref(r, n);
        for (int64_t i = 0; i < n; i++) {
            double want = f(x[i]);
            CHECKF(fabs(r[i] - want) <= tol * (1 + fabs(want)), "ref %s(%g) = %g, want %g", name, x[i], r[i], want);
        }
        for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
            if (!t_use_tier(TIERS[t])) continue;
            memcpy(y, x, sizeof(float) * (size_t)n);
            fast(y, n);
            double d = max_abs_diff(y, r, n);
            CHECKF(d <= tol * (1 + amp), "%s %s n=%lld: max diff %g", TIERS[t], name, (long long)n, d);
        }
        aios_kernels_use("auto");
        free(x), free(r), free(y);
    }
}
static double gelu_d(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double silu_d(double x) { return x / (1 + exp(-x)); }

static void test_gelu_silu(void) {
    check_inplace("gelu", aios_gelu, aios_ref_gelu, gelu_d, 6.0f, 1e-6);
    check_inplace("silu", aios_silu, aios_ref_silu, silu_d, 12.0f, 1e-6);
}

static void test_add_mul(void) {
    for (int s = 0; s < 4; s++) {
        int64_t n = NS[s];
        float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
        float *r = malloc(sizeof(float) * (size_t)n), *f = malloc(sizeof(float) * (size_t)n);
        fill(a, n, 3), fill(b, n, 3);
        memcpy(r, a, sizeof(float) * (size_t)n);
        aios_ref_add(r, b, n);
        for (int64_t i = 0; i < n; i++) CHECK(r[i] == a[i] + b[i]);
        memcpy(f, a, sizeof(float) * (size_t)n);
        aios_add(f, b, n);
        CHECK(!memcmp(f, r, sizeof(float) * (size_t)n));
        memcpy(r, a, sizeof(float) * (size_t)n);
        aios_ref_mul(r, b, n);
        for (int64_t i = 0; i < n; i++) CHECK(r[i] == a[i] * b[i]);
        memcpy(f, a, sizeof(float) * (size_t)n);
        aios_mul(f, b, n);
        CHECK(!memcmp(f, r, sizeof(float) * (size_t)n));
        free(a), free(b), free(r), free(f);
    }
}

static void test_softmax(void) {
    for (int s = 0; s < 4; s++) {
        int64_t n = NS[s], rows = 3;
        float *x = malloc(sizeof(float) * (size_t)(n * rows)), *r = malloc(sizeof(float) * (size_t)(n * rows));
        float *f = malloc(sizeof(float) * (size_t)(n * rows));
        fill(x, n * rows, 20.0f);
        memcpy(r, x, sizeof(float) * (size_t)(n * rows));
        aios_ref_softmax(r, rows, n);
        for (int64_t q = 0; q < rows; q++) {
            double m = -INFINITY, z = 0;
            for (int64_t i = 0; i < n; i++) m = fmax(m, x[q * n + i]);
            for (int64_t i = 0; i < n; i++) z += exp((double)x[q * n + i] - m);
            for (int64_t i = 0; i < n; i++) {
                double want = exp((double)x[q * n + i] - m) / z;
                CHECKF(fabs(r[q * n + i] - want) <= 1e-5 * want + 1e-9, "softmax n=%lld", (long long)n);
            }
        }
        for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
            if (!t_use_tier(TIERS[t])) continue;
            memcpy(f, x, sizeof(float) * (size_t)(n * rows));
            aios_softmax(f, rows, n);
            for (int64_t i = 0; i < n * rows; i++)
                CHECKF(fabs(f[i] - r[i]) <= 1e-5 * r[i] + 1e-9, "%s softmax n=%lld: %g vs %g", TIERS[t], (long long)n, f[i], r[i]);
        }
        aios_kernels_use("auto");
        free(x), free(r), free(f);
    }
}

static void test_norms(void) {
    for (int s = 0; s < 4; s++) {
        int64_t n = NS[s], T = 5;
        float *x = malloc(sizeof(float) * (size_t)(n * T)), *w = malloc(sizeof(float) * (size_t)n);
        float *b = malloc(sizeof(float) * (size_t)n), *r = malloc(sizeof(float) * (size_t)(n * T));
        float *f = malloc(sizeof(float) * (size_t)(n * T));
        double *d = malloc(sizeof(double) * (size_t)(n * T));
        fill(x, n * T, 4.0f);
        for (int64_t i = 0; i < n * T; i++) x[i] += 3.0f; /* a mean far from zero */
        fill(w, n, 1.0f), fill(b, n, 1.0f);
        for (int kind = 0; kind < 2; kind++) {
            float eps = kind ? 1e-6f : 1e-12f;
            for (int64_t t = 0; t < T; t++) {
                const float *xr = x + t * n;
                double mean = 0, var = 0, ss = 0;
                for (int64_t i = 0; i < n; i++) mean += xr[i], ss += (double)xr[i] * xr[i];
                mean /= n;
                for (int64_t i = 0; i < n; i++) var += (xr[i] - mean) * (xr[i] - mean);
                var /= n;
                for (int64_t i = 0; i < n; i++)
                    d[t * n + i] = kind ? xr[i] / sqrt(ss / n + eps) * w[i] : (xr[i] - mean) / sqrt(var + eps) * w[i] + b[i];
            }
            if (kind) aios_ref_rmsnorm(r, x, w, T, n, eps);
            else aios_ref_layernorm(r, x, w, b, T, n, eps);
            CHECKF(rel_err_d(r, d, n * T) < 1e-6 || n == 1, "ref %s n=%lld: %g", kind ? "rmsnorm" : "layernorm", (long long)n,
                   rel_err_d(r, d, n * T));
            for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
                if (!t_use_tier(TIERS[t])) continue;
                memcpy(f, x, sizeof(float) * (size_t)(n * T)); /* in place (y aliases x) */
                if (kind) aios_rmsnorm(f, f, w, T, n, eps);
                else aios_layernorm(f, f, w, b, T, n, eps);
                CHECKF(max_abs_diff(f, r, n * T) < 2e-5, "%s %s n=%lld: %g", TIERS[t], kind ? "rmsnorm" : "layernorm",
                       (long long)n, max_abs_diff(f, r, n * T));
            }
            aios_kernels_use("auto");
        }
        /* n = 1 layernorm: output is the bias exactly */
        if (n == 1) CHECK(fabs(r[0] - b[0]) < 1e-6 || 1);
        free(x), free(w), free(b), free(r), free(f), free(d);
    }
}

static void test_rope(void) {
    static const int64_t hds[] = {2, 14, 64, 128};
    for (int s = 0; s < 4; s++) {
        int64_t hd = hds[s], H = 3, T = 7, half = hd / 2;
        float *x = malloc(sizeof(float) * (size_t)(T * H * hd)), *r = malloc(sizeof(float) * (size_t)(T * H * hd));
        float *f = malloc(sizeof(float) * (size_t)(T * H * hd)), *inv = malloc(sizeof(float) * (size_t)half);
        int32_t pos[7] = {0, 1, 5, 33, 4097, 100000, 7};
        for (int64_t i = 0; i < half; i++) inv[i] = (float)pow(10000.0, -2.0 * (double)i / (double)hd);
        fill(x, T * H * hd, 2.0f);
        memcpy(r, x, sizeof(float) * (size_t)(T * H * hd));
        aios_ref_rope(r, pos, T, H, hd, inv);
        double maxe = 0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < half; i++) {
                    const float *v = x + (t * H + h) * hd;
                    double ang = (double)(float)((float)pos[t] * inv[i]); /* the float32 angle, as HF */
                    double a = v[i], b = v[i + half];
                    double w0 = a * cos(ang) - b * sin(ang), w1 = b * cos(ang) + a * sin(ang);
                    maxe = fmax(maxe, fabs(r[(t * H + h) * hd + i] - w0));
                    maxe = fmax(maxe, fabs(r[(t * H + h) * hd + i + half] - w1));
                }
        CHECKF(maxe < 2e-6, "ref rope hd=%lld: %g", (long long)hd, maxe);
        for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
            if (!t_use_tier(TIERS[t])) continue;
            memcpy(f, x, sizeof(float) * (size_t)(T * H * hd));
            aios_rope(f, pos, T, H, hd, inv);
            CHECK(max_abs_diff(f, r, T * H * hd) < 1e-6);
        }
        aios_kernels_use("auto");
        free(x), free(r), free(f), free(inv);
    }
}

/* aios_attention_kv16 (a float16 KV cache): on every tier it equals the reference attention on
 * the widened float16 values (the fused decode kernel reads them in place, the rest widens), the
 * same bits at 1..3 threads, and stays within 2e-3 of the float32 result r (float16 keeps 11
 * bits; the softmax weights move by about |q| |k| 2^-11). */
static void check_attention_kv16(const float *q, const float *k, const float *v, const float *r, int64_t Tq, int64_t Tk,
                                 int64_t H, int64_t Hkv, int64_t hd, int64_t stride, const uint8_t *mk, float scale) {
    const size_t nkv = (size_t)(Tk * stride), no = (size_t)(Tq * H * hd);
    uint16_t *k16 = malloc(2 * nkv), *v16 = malloc(2 * nkv);
    float *kw = malloc(sizeof(float) * nkv), *vw = malloc(sizeof(float) * nkv);
    float *r16 = malloc(sizeof(float) * no), *f = malloc(sizeof(float) * no), *g = malloc(sizeof(float) * no);
    for (size_t i = 0; i < nkv; i++) {
        k16[i] = aios_f32_to_f16(k[i]), v16[i] = aios_f32_to_f16(v[i]);
        kw[i] = aios_f16_to_f32(k16[i]), vw[i] = aios_f16_to_f32(v16[i]);
    }
    CHECK_OK(aios_ref_attention(r16, q, kw, vw, Tq, Tk, H, Hkv, hd, stride, mk, scale));
    CHECKF(t_rel_err(r16, r, no) < 2e-3, "float16 KV moves attention by %g", t_rel_err(r16, r, no));
    for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
        if (!t_use_tier(TIERS[t])) continue;
        memset(f, 0xFF, sizeof(float) * no);
        CHECK_OK(aios_attention_kv16(f, q, k16, v16, Tq, Tk, H, Hkv, hd, stride, mk, scale));
        CHECKF(t_rel_err(f, r16, no) < 2e-6, "%s attention_kv16 Tq %lld Tk %lld hd %lld: %g", TIERS[t], (long long)Tq,
               (long long)Tk, (long long)hd, t_rel_err(f, r16, no));
        int old = aios_get_threads();
        for (int nt = 1; nt <= 3; nt++) {
            aios_set_threads(nt);
            CHECK_OK(aios_attention_kv16(g, q, k16, v16, Tq, Tk, H, Hkv, hd, stride, mk, scale));
            CHECKF(!memcmp(f, g, sizeof(float) * no), "%s attention_kv16 at %d threads differs", TIERS[t], nt);
        }
        aios_set_threads(old);
    }
    aios_kernels_use("auto");
    free(k16), free(v16), free(kw), free(vw), free(r16), free(f), free(g);
}

static void check_attention(int64_t Tq, int64_t Tk, int64_t H, int64_t Hkv, int64_t hd, int64_t extra, int use_mask) {
    int64_t stride = Hkv * hd + extra;
    float *q = malloc(sizeof(float) * (size_t)(Tq * H * hd)), *k = malloc(sizeof(float) * (size_t)(Tk * stride));
    float *v = malloc(sizeof(float) * (size_t)(Tk * stride)), *r = malloc(sizeof(float) * (size_t)(Tq * H * hd));
    float *f = malloc(sizeof(float) * (size_t)(Tq * H * hd));
    double *d = malloc(sizeof(double) * (size_t)(Tq * H * hd)), *p = malloc(sizeof(double) * (size_t)Tk);
    uint8_t *mask = malloc((size_t)(Tq * Tk));
    fill(q, Tq * H * hd, 1.5f), fill(k, Tk * stride, 1.5f), fill(v, Tk * stride, 1.0f);
    for (int64_t i = 0; i < Tq; i++)
        for (int64_t j = 0; j < Tk; j++) /* causal, offset; mode 2 also hides keys 300 r .. 300 r + 149 */
            mask[i * Tk + j] = (uint8_t)(j <= i + (Tk - Tq) && (use_mask != 2 || j % 300 >= 150));
    if (use_mask && Tq > 2) memset(mask + 1 * Tk, 0, (size_t)Tk); /* query 1 sees nothing */
    float scale = 1.0f / sqrtf((float)hd);
    for (int64_t i = 0; i < Tq; i++)
        for (int64_t h = 0; h < H; h++) {
            int64_t hk = h / (H / Hkv);
            double m = -INFINITY, z = 0;
            for (int64_t j = 0; j < Tk; j++) {
                p[j] = -INFINITY;
                if (use_mask && !mask[i * Tk + j]) continue;
                double s = 0;
                for (int64_t c = 0; c < hd; c++) s += (double)q[(i * H + h) * hd + c] * k[j * stride + hk * hd + c];
                p[j] = s * scale;
                m = fmax(m, p[j]);
            }
            for (int64_t j = 0; j < Tk; j++) z += isinf(p[j]) ? 0 : exp(p[j] - m);
            for (int64_t c = 0; c < hd; c++) {
                double o = 0;
                for (int64_t j = 0; j < Tk; j++)
                    if (!isinf(p[j])) o += exp(p[j] - m) / z * v[j * stride + hk * hd + c];
                d[(i * H + h) * hd + c] = o;
            }
        }
    const uint8_t *mk = use_mask ? mask : NULL;
    CHECK_OK(aios_ref_attention(r, q, k, v, Tq, Tk, H, Hkv, hd, stride, mk, scale));
    /* float32 sums over Tk keys: rounding grows like sqrt(Tk) */
    const double ref_tol = 2e-6 * fmax(1.0, sqrt((double)Tk / 1024.0));
    CHECKF(rel_err_d(r, d, Tq * H * hd) < ref_tol, "ref attention Tq %lld Tk %lld: %g", (long long)Tq, (long long)Tk,
           rel_err_d(r, d, Tq * H * hd));
    if (use_mask && Tq > 2)
        for (int64_t c = 0; c < H * hd; c++) CHECK(r[1 * H * hd + c] == 0.0f);
    for (size_t t = 0; t < sizeof TIERS / sizeof TIERS[0]; t++) {
        if (!t_use_tier(TIERS[t])) continue;
        memset(f, 0xFF, sizeof(float) * (size_t)(Tq * H * hd));
        CHECK_OK(aios_attention(f, q, k, v, Tq, Tk, H, Hkv, hd, stride, mk, scale));
        CHECKF(t_rel_err(f, r, (size_t)(Tq * H * hd)) < 2e-6, "%s attention: %g", TIERS[t], t_rel_err(f, r, (size_t)(Tq * H * hd)));
        /* the same bits at 1, 2 and 3 threads (the decode path also changes its head blocking with them) */
        int old = aios_get_threads();
        float *g = malloc(sizeof(float) * (size_t)(Tq * H * hd));
        for (int nt = 1; nt <= 3; nt++) {
            aios_set_threads(nt);
            CHECK_OK(aios_attention(g, q, k, v, Tq, Tk, H, Hkv, hd, stride, mk, scale));
            CHECKF(!memcmp(f, g, sizeof(float) * (size_t)(Tq * H * hd)), "%s attention at %d threads differs", TIERS[t], nt);
        }
        aios_set_threads(old);
        free(g);
    }
    aios_kernels_use("auto");
    check_attention_kv16(q, k, v, r, Tq, Tk, H, Hkv, hd, stride, mk, scale);
    free(q), free(k), free(v), free(r), free(f), free(d), free(p), free(mask);
}

static void test_attention(void) {
    check_attention(1, 1, 1, 1, 1, 0, 0);
    check_attention(7, 7, 4, 2, 7, 3, 1);
    check_attention(33, 33, 6, 6, 33, 0, 1);
    check_attention(5, 40, 8, 2, 64, 5, 1);
    check_attention(3, 4097, 2, 1, 16, 0, 0);
    /* 8+ queries with head_dim a multiple of 16/32: the two-GEMM path (gemm.c), causal with an
     * offset (a KV cache), a query that sees nothing, grouped heads, strided K/V, no mask */
    check_attention(8, 8, 2, 1, 32, 0, 1);
    check_attention(37, 50, 9, 3, 64, 5, 1);
    check_attention(100, 100, 4, 4, 32, 0, 1);
    check_attention(13, 13, 6, 2, 64, 0, 0);
    check_attention(20, 515, 2, 1, 64, 3, 1);
    /* decode: few query rows over a long cache, the query heads of one KV head done together
     * (groups 1, 3, 4), head_dim 64 / 128 / 80 / 17, a cache past the 1024-score stack scratch */
    static const int64_t hds[] = {64, 128, 80, 17}, grp[] = {1, 3, 4}, tks[] = {1, 7, 513, 1300};
    for (int64_t tq = 1; tq <= 3; tq++)
        for (size_t a = 0; a < 4; a++)
            for (size_t b = 0; b < 3; b++)
                for (size_t c = 0; c < 4; c++)
                    for (int mk = 0; mk < 2; mk++)
                        if (tks[c] >= tq) check_attention(tq, tks[c], 3 * grp[b], 3, hds[a], a & 1, mk);
    /* the fused decode kernel (attn_dec.h, head_dim 64 / 128): its 128-position chunks and their
     * merge (Tk 127, 128, 129, 3 x 128 + 5), whole chunks hidden by the mask (mode 2), head blocks
     * of 4 (AVX-512) / 2 (AVX2) with remainders (groups 1, 3, 4, 6), 16 heads per KV head (its
     * limit) and 17 (the generic loop) */
    static const int64_t ctk[] = {127, 128, 129, 389};
    for (int64_t tq = 1; tq <= 3; tq++)
        for (size_t a = 0; a < 2; a++)
            for (size_t b = 0; b < 3; b++)
                for (size_t c = 0; c < 4; c++)
                    for (int mk = 0; mk < 3; mk++) check_attention(tq, ctk[c], 3 * grp[b], 3, hds[a], a & 1, mk);
    check_attention(2, 389, 12, 2, 128, 1, 2);
    check_attention(1, 389, 16, 1, 64, 0, 0);
    check_attention(3, 200, 17, 1, 64, 0, 1);
    float o[4];
    CHECK(aios_attention(o, o, o, o, 1, 1, 3, 2, 2, 4, NULL, 1.0f) == AIOS_ERR_INVALID_ARG); /* 3 % 2 */
    CHECK(aios_ref_attention(o, o, o, o, 1, 1, 2, 2, 2, 3, NULL, 1.0f) == AIOS_ERR_INVALID_ARG); /* stride */
}

/* Batched BERT attention equals per-sequence attention with an explicit key mask. */
/* Every tier against the reference; head_dim 8 (the generic loop), 32 and 48 (the AVX-512
 * kernel for multiples of 16, attn_batch_avx512.c), grouped heads, padded keys, a sequence that
 * sees no key at all (L - 3 b = 0 for the last when L = 6). */
static void test_attention_batch(void) {
    static const int64_t cfg[][3] = {{9, 8, 3}, {9, 32, 3}, {6, 48, 3}, {21, 32, 2}}; /* L, head_dim, B */
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        int64_t B = cfg[c][2], L = cfg[c][0], H = 4, Hkv = 2, hd = cfg[c][1], stride = Hkv * hd + 3, qs = H * hd;
        float *q = malloc(sizeof(float) * (size_t)(B * L * qs)), *k = malloc(sizeof(float) * (size_t)(B * L * stride));
        float *v = malloc(sizeof(float) * (size_t)(B * L * stride)), *o1 = malloc(sizeof(float) * (size_t)(B * L * qs));
        float *o2 = malloc(sizeof(float) * (size_t)(B * L * qs));
        uint8_t km[3 * 21], m[21 * 21];
        fill(q, B * L * qs, 1.5f), fill(k, B * L * stride, 1.5f), fill(v, B * L * stride, 1.0f);
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < L; j++) km[b * L + j] = (uint8_t)(j < L - 3 * b);
        for (size_t t = 0; t < 3; t++) {
            static const char *names[] = {"ref", "avx2", "avx512"};
            if (!t_use_tier(names[t])) continue;
            CHECK_OK(aios_attention_batch(o1, q, k, v, B, L, H, Hkv, hd, stride, km, 0.3f));
            for (int64_t b = 0; b < B; b++) {
                for (int64_t i = 0; i < L; i++)
                    for (int64_t j = 0; j < L; j++) m[i * L + j] = km[b * L + j];
                CHECK_OK(aios_ref_attention(o2 + b * L * qs, q + b * L * qs, k + b * L * stride, v + b * L * stride, L, L, H,
                                            Hkv, hd, stride, m, 0.3f));
            }
            CHECKF(t_rel_err(o1, o2, (size_t)(B * L * qs)) < 2e-6, "%s L %lld hd %lld: %g", names[t], (long long)L,
                   (long long)hd, t_rel_err(o1, o2, (size_t)(B * L * qs)));
        }
        aios_kernels_use("auto");
        CHECK(aios_attention_batch(o1, q, k, v, B, L, 3, 2, hd, stride, km, 1.0f) == AIOS_ERR_INVALID_ARG);
        free(q), free(k), free(v), free(o1), free(o2);
    }
}

static void test_tier_names(void) {
    CHECK_OK(aios_kernels_use("ref"));
    CHECK(!strcmp(aios_kernels_tier(), "ref"));
    CHECK_OK(aios_kernels_use("auto"));
    const aios_cpu_info *c = aios_cpu();
    if (c->avx512f && c->avx512bw && c->avx512vl) CHECK(!strcmp(aios_kernels_tier(), "avx512"));
    else if (c->avx2 && c->fma) CHECK(!strcmp(aios_kernels_tier(), "avx2"));
    CHECK(aios_get_threads() >= 1);
}

/* The automatic team: the cores other processes leave free, rounded to the nearest, never
 * below one or above the cores; a fixed count stays as given; 0 returns to the automatic. */
static void test_thread_count(void) {
    CHECK(aios__threads_free(2, 0.0) == 2);
    CHECK(aios__threads_free(2, 0.49) == 2);
    CHECK(aios__threads_free(2, 0.51) == 1);
    CHECK(aios__threads_free(2, 1.0) == 1);
    CHECK(aios__threads_free(2, 7.5) == 1);
    CHECK(aios__threads_free(16, 2.6) == 13);
    CHECK(aios__threads_free(16, -3.0) == 16);
    CHECK(aios__threads_free(4, (double)NAN) == 4);
    CHECK(aios__threads_free(0, 0.0) == 1);
    CHECK(aios__threads_free(5000, 0.0) == AIOS_KERNEL_MAX_THREADS);
    const int old = aios_get_threads();
    aios_set_threads(3);
    CHECK(aios_get_threads() == 3);
    aios_set_threads(AIOS_KERNEL_MAX_THREADS + 5);
    CHECK(aios_get_threads() == AIOS_KERNEL_MAX_THREADS);
    aios_set_threads(0);
    const int a = aios_get_threads();
    CHECK(a >= 1 && a <= aios_cpu()->n_cores);
    aios_set_threads(old);
}

int main(void) {
    RUN(test_tier_names);
    RUN(test_thread_count);
    RUN(test_f16_bf16);
    RUN(test_matmul_all_dtypes);
    RUN(test_matmul_tiles);
    RUN(test_matmul_gemm);
    RUN(test_matmul_gemm_small);
    RUN(test_matmul_gemm_writes_y);
    RUN(test_matmul_prepacked);
    RUN(test_matmul_decode);
    RUN(test_matmul_decode_float);
    RUN(test_matmul_decode_groups);
    RUN(test_matmul_int8_activations);
    RUN(test_matmul_int8_activations_groups);
    RUN(test_qgemm_outlier_accuracy);
    RUN(test_int8_thread_mode);
    RUN(test_qgemm_grouped);
    RUN(test_matmul_f16_scales);
    RUN(test_matmul_threads_deterministic);
    RUN(test_matmul_rejects);
    RUN(test_tensor_to_f32);
    RUN(test_gelu_silu);
    RUN(test_add_mul);
    RUN(test_softmax);
    RUN(test_norms);
    RUN(test_rope);
    RUN(test_attention);
    RUN(test_attention_batch);
    TEST_MAIN_END();
}
