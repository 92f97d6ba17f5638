/* fuzz_parquet.c — the Parquet reader on arbitrary bytes: open from memory, then
 * aios_parquet_verify (decodes every page of every column and checks statistics), then one
 * whole-file column read per leaf (row groups concatenated, row views built). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy, so reads past `size` are caught by ASan rather than hitting the
     * fuzzer's larger buffer */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    aios_parquet_file *pf = NULL;
    if (aios_parquet_open_memory(copy, size, &pf) == AIOS_OK) {
        (void)aios_parquet_verify(pf, NULL);
        for (int l = 0; l < aios_pq_num_leaves(pf); l++) {
            aios_pq_column c;
            if (aios_pq_read_column(pf, -1, l, &c) == AIOS_OK) aios_pq_column_free(&c);
        }
        aios_parquet_close(pf);
    }
    free(copy);
    return 0;
}
