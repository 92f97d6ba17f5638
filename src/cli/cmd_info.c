/* cmd_info.c — `aios info`: version, CPU features, the kernel tier in use, threads and the
 * build's options (compiler, BLAS, OpenMP, codecs).  The build facts are this binary's own
 * compile-time macros: the CLI and libaios are built with the same flags (Makefile). */
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/cli.h"
#include "kernels/kernels.h" /* the active tier: aios_kernels_tier(), aios_get_threads() */

int aios_cmd_info(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        printf("usage: aios info\n\n"
               "Prints the version, the CPU features detected, the kernel tier in use (AIOS_KERNELS=ref|avx2|avx512\n"
               "forces one), the kernel thread count (AIOS_THREADS), the activations models take by default\n"
               "(AIOS_INT8_ACT) and the build options: compiler, BLAS, OpenMP, compression codecs.\n\n"
               "examples:\n"
               "  aios info\n"
               "  AIOS_KERNELS=ref aios info      # the scalar reference kernels\n"
               "  AIOS_THREADS=1 aios info        # one kernel thread\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "aios: info: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    char feats[256];
    const aios_cpu_info *c = aios_cpu();
    printf("aios %s\n", AIOS_VERSION_STRING);
    printf("cpu features: %s\n", aios_cpu_describe(feats, sizeof feats));
    printf("cores: %d\n", c->n_cores);
    printf("kernel tier: %s\n", aios_kernels_tier());
    printf("kernel threads: %d\n", aios_get_threads());
    /* the activations the models' products take (aios_generator_params / aios_encoder_params AUTO) */
    const int g = aios_kernels_int8_setting();
    if (g >= 0) printf("activations: %s (AIOS_INT8_ACT)\n", g == 1 ? "int8" : g == 3 ? "16-bit for decoders" : "exact");
    else
        printf("activations: %s; int8 weights of encoders: %s\n",
               aios_kernels_x16_default() == 1   ? "16-bit for quantized decoders, exact otherwise"
               : aios_kernels_x16_default() == 2 ? "16-bit for 4- / 5-bit decoders (Q4_0, Q4_1, Q5_0, Q5_1, int4 f16), exact otherwise"
                                                 : "exact",
               c->avx512vnni ? "int8 (VNNI)" : "exact");
#if defined(__clang__)
    printf("compiler: clang %s\n", __clang_version__);
#elif defined(__GNUC__)
    printf("compiler: gcc %s\n", __VERSION__);
#endif
#ifdef AIOS_HAVE_BLAS
    printf("blas: openblas (large f32 GEMMs)\n");
#else
    printf("blas: no (build with BLAS=1 for OpenBLAS)\n");
#endif
#ifdef _OPENMP
    printf("openmp: yes (%d, max threads %d)\n", _OPENMP, omp_get_max_threads());
#else
    printf("openmp: no\n");
#endif
#ifdef __OPTIMIZE__
    printf("optimized: yes\n");
#else
    printf("optimized: no\n");
#endif
#if defined(__SANITIZE_ADDRESS__)
    printf("sanitizers: address\n");
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    printf("sanitizers: address\n");
#endif
#endif
    printf("codecs: zstd, snappy, gzip\n");
    return 0;
}
