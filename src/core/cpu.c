/*
 * cpu.c — CPU feature detection, done once.
 *
 * x86: CPUID leaves 1 and 7 plus XGETBV so AVX/AVX-512 are reported only when the OS saves
 * the wider registers.  AArch64: NEON is architectural.  Kernels pick their implementation
 * from this table at run time (no -march=native anywhere in the build).
 */
#include "core/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static aios_cpu_info g_cpu;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect(void) {
    memset(&g_cpu, 0, sizeof g_cpu);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        g_cpu.sse42 = !!(c & bit_SSE4_2);
        int osxsave = !!(c & bit_OSXSAVE);
        uint64_t xcr0 = osxsave ? xgetbv0() : 0;
        int ymm = (xcr0 & 0x6) == 0x6;
        int zmm = (xcr0 & 0xe6) == 0xe6;
        g_cpu.avx = ymm && !!(c & bit_AVX);
        g_cpu.fma = ymm && !!(c & bit_FMA);
        g_cpu.f16c = ymm && !!(c & bit_F16C);
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            g_cpu.avx2 = ymm && !!(b & bit_AVX2);
            g_cpu.avx512f = zmm && !!(b & bit_AVX512F);
            g_cpu.avx512bw = zmm && !!(b & bit_AVX512BW);
            g_cpu.avx512vl = zmm && !!(b & bit_AVX512VL);
            g_cpu.avx512vnni = zmm && !!(c & (1u << 11));
        }
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) g_cpu.avxvnni = ymm && !!(a & (1u << 4));
    }
#elif defined(__aarch64__)
    g_cpu.neon = 1;
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    g_cpu.n_cores = n > 0 ? (int)n : 1;
}

const aios_cpu_info *aios_cpu(void) {
    pthread_once(&g_once, detect);
    return &g_cpu;
}

char *aios_cpu_describe(char *buf, size_t n) {
    const aios_cpu_info *c = aios_cpu();
    struct { int on; const char *name; } f[] = {
        {c->sse42, "sse4.2"}, {c->avx, "avx"}, {c->avx2, "avx2"}, {c->fma, "fma"}, {c->f16c, "f16c"},
        {c->avx512f, "avx512f"}, {c->avx512bw, "avx512bw"}, {c->avx512vl, "avx512vl"},
        {c->avx512vnni, "avx512vnni"}, {c->avxvnni, "avxvnni"}, {c->neon, "neon"},
    };
    size_t used = 0;
    if (n) buf[0] = '\0';
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!f[i].on) continue;
        int w = snprintf(buf + used, n > used ? n - used : 0, "%s%s", used ? " " : "", f[i].name);
        if (w > 0) used += (size_t)w;
    }
    return buf;
}
