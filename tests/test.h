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
