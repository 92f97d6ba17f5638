/* binding.c — small entry points for language bindings (the Python package in python/).
 *
 * A binding reaches the library through include/aios.h only.  Four things it needs were not
 * there: freeing memory the library allocated (a binding cannot assume it shares our malloc),
 * handing out a buffer the library owns so an array can wrap it without a copy (NumPy's array
 * then keeps the buffer alive and frees it through aios_free), the active kernel tier for
 * `info`, and an aios_embed_fn over an encoder so a memory store embeds text without calling
 * back into the binding's interpreter (the callback runs entirely in C, no lock to retake).
 */
#include <stdlib.h>
#include <string.h>

#include "aios.h"
#include "core/internal.h"
#include "kernels/kernels.h"

void *aios_alloc(size_t n) {
    /* 64-byte aligned: the kernels' vector loads and NumPy's own alignment both hold */
    void *p = NULL;
    if (n == 0) n = 1;
    if (posix_memalign(&p, 64, (n + 63) / 64 * 64) != 0) return NULL;
    return p;
}

void aios_free(void *p) { free(p); }

const char *aios_kernel_tier(void) { return aios_kernels_tier(); }

aios_status aios_encoder_embed(void *user, const char *text, float *out, int32_t dim) {
    aios_encoder *enc = user;
    if (!enc || !text || !out) return aios__err(AIOS_ERR_INVALID_ARG, "embed: NULL encoder, text or output");
    if (aios_encoder_dim(enc) != dim)
        return aios__err(AIOS_ERR_SHAPE, "embed: the encoder gives %lld floats, the store wants %d",
                         (long long)aios_encoder_dim(enc), (int)dim);
    return aios_encode(enc, text, strlen(text), out);
}
