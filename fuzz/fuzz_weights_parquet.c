/* fuzz_weights_parquet.c — a weights.parquet (Schema V1/V2) on arbitrary bytes: open it as a
 * model, then dequantize the first row of every tensor the loader accepted (rows whose data
 * length, shape, quant_type or scales disagree must be refused, never read out of bounds). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "model/model.h"
#include "tensor/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/aios-fuzz-weights-%d.parquet", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    aios_model *m = NULL;
    if (aios_model_open(path, NULL, &m) != AIOS_OK) return 0;
    static float row[1 << 16];
    for (int64_t i = 0; i < aios_model_num_tensors(m); i++) {
        const aios_tensor *t = aios_model_tensor_at(m, i);
        if (aios_tensor_validate(t) != AIOS_OK) abort(); /* the loader promised a valid view */
        int64_t rows, cols;
        aios_tensor_rows_cols(t, &rows, &cols);
        if (rows > 0 && cols <= (1 << 16)) (void)aios_quant_dequantize_row_ref(t, rows - 1, row);
    }
    aios_model_free(m);
    return 0;
}
