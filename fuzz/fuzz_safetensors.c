/* fuzz_safetensors.c — the safetensors reader on arbitrary bytes: parse, look up every tensor
 * by name, validate it and dequantize its first row (bounded), read the metadata. */
#include <stdint.h>
#include <stdlib.h>

#include "format/safetensors.h"
#include "tensor/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    aios_safetensors *st = NULL;
    if (aios_safetensors_parse(data, size, "fuzz", &st) != AIOS_OK) return 0;
    static float row[4096];
    for (int64_t i = 0; i < aios_safetensors_count(st); i++) {
        const aios_tensor *t = aios_safetensors_tensor(st, i);
        if (aios_safetensors_find(st, t->name) != t) abort(); /* lookup must find what we listed */
        if (aios_tensor_validate(t) != AIOS_OK) abort();       /* the parser promised a valid view */
        int64_t rows, cols;
        aios_tensor_rows_cols(t, &rows, &cols);
        if (rows > 0 && cols <= 4096) (void)aios_quant_dequantize_row_ref(t, 0, row);
    }
    for (int64_t i = 0; i < aios_safetensors_metadata_count(st); i++) {
        const char *k, *v;
        aios_safetensors_metadata_at(st, i, &k, &v);
        if (aios_safetensors_metadata(st, k) == NULL) abort();
    }
    aios_safetensors_close(st);
    return 0;
}
