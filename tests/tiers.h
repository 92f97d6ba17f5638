/* tiers.h — selecting a kernel tier in tests that loop over every tier this CPU has. */
#ifndef AIOS_TEST_TIERS_H
#define AIOS_TEST_TIERS_H

#include "kernels/kernels.h"
#include "test.h"

/* Switches the kernels to tier `name` ("ref", "avx2", "avx512") for a test loop over tiers.
 * Returns 1 when that tier now runs, 0 when this CPU lacks it.  A CPU that has the features but
 * where the tier cannot be selected, or a selection that silently runs another tier, fails the
 * running test: on an AVX-512 machine the avx512 loop iteration must really run avx512. */
static inline int t_use_tier(const char *name) {
    const aios_cpu_info *c = aios_cpu();
    int have = !strcmp(name, "ref") ? 1
               : !strcmp(name, "avx2") ? c->avx2 && c->fma && c->f16c
               : !strcmp(name, "avx512") ? c->avx512f && c->avx512bw && c->avx512vl && c->fma && c->f16c
                                         : 0;
    aios_status s = aios_kernels_use(name);
    CHECKF(have ? s == AIOS_OK : s != AIOS_OK, "tier %s: CPU has it %d, aios_kernels_use says %s", name, have,
           aios_status_name(s));
    if (s != AIOS_OK) return 0;
    CHECKF(!strcmp(aios_kernels_tier(), name), "tier %s requested, %s runs", name, aios_kernels_tier());
    return 1;
}


#endif
