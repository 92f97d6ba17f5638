/*
 * bench_parquet.c — timing helper for bench/bench_parquet.py (our reader and writer on the
 * same file pyarrow wrote and reads in the same run).
 *
 *   bench_parquet read FILE [REPS]             read every column of every row group; best time
 *   bench_parquet rewrite IN OUT [REPS] [CODEC] read IN into memory, then time writing OUT with
 *                                              our writer from those columns (levels form)
 * Prints one line "seconds=<best> rows=<n> bytes=<uncompressed value bytes>".  Without
 * arguments it explains itself and exits 0 (bench/run.sh runs every bench binary bare).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "format/parquet.h"

static double read_all(aios_parquet_file *pf, int64_t *bytes) {
    double t0 = aios__now();
    int64_t b = 0;
    for (int rg = 0; rg < aios_pq_num_row_groups(pf); rg++)
        for (int l = 0; l < aios_pq_num_leaves(pf); l++) {
            aios_pq_column c;
            if (aios_pq_read_column(pf, rg, l, &c) != AIOS_OK) {
                fprintf(stderr, "bench_parquet: %s\n", aios_last_error());
                exit(1);
            }
            if (c.bytes)
                for (int64_t i = 0; i < c.num_slots; i++) b += (int64_t)c.bytes[i].len;
            else
                b += c.num_slots * (c.type == AIOS_PQ_BOOLEAN ? 1 : c.type == AIOS_PQ_INT32 || c.type == AIOS_PQ_FLOAT ? 4 : 8);
            aios_pq_column_free(&c);
        }
    if (bytes) *bytes = b;
    return aios__now() - t0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        printf("bench_parquet: driven by bench/bench_parquet.py (usage: read FILE [REPS] | rewrite IN OUT [REPS] [CODEC])\n");
        return 0;
    }
    int reps = 3;
    aios_parquet_file *pf;
    if (aios_parquet_open(argv[2], &pf) != AIOS_OK) {
        fprintf(stderr, "bench_parquet: %s\n", aios_last_error());
        return 1;
    }
    if (!strcmp(argv[1], "read")) {
        if (argc > 3) reps = atoi(argv[3]);
        double best = 1e30;
        int64_t bytes = 0;
        for (int r = 0; r < reps; r++) {
            double t = read_all(pf, &bytes);
            if (t < best) best = t;
        }
        printf("seconds=%.6f rows=%lld bytes=%lld\n", best, (long long)aios_parquet_num_rows(pf), (long long)bytes);
        aios_parquet_close(pf);
        return 0;
    }
    if (strcmp(argv[1], "rewrite") || argc < 4) {
        fprintf(stderr, "bench_parquet: unknown command\n");
        return 2;
    }
    if (argc > 4) reps = atoi(argv[4]);
    const char *codec = argc > 5 ? argv[5] : "zstd";
    /* the memories schema, leaf order: memory_id, timestamp, content, embedding, category, source, quality_score */
    aios_pq_field f[] = {
        {.name = "memory_id", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1},
        {.name = "timestamp", .parent = -1, .kind = AIOS_PQ_K_TIMESTAMP_US, .nullable = 1},
        {.name = "content", .parent = -1, .kind = AIOS_PQ_K_STRING, .nullable = 1},
        {.name = "embedding", .parent = -1, .kind = AIOS_PQ_K_LIST, .nullable = 1},
        {.name = "element", .parent = 3, .kind = AIOS_PQ_K_FLOAT, .nullable = 1},
        {.name = "metadata", .parent = -1, .kind = AIOS_PQ_K_STRUCT, .nullable = 1},
        {.name = "category", .parent = 5, .kind = AIOS_PQ_K_STRING, .nullable = 1},
        {.name = "source", .parent = 5, .kind = AIOS_PQ_K_STRING, .nullable = 1},
        {.name = "quality_score", .parent = 5, .kind = AIOS_PQ_K_FLOAT, .nullable = 1},
    };
    int nl = aios_pq_num_leaves(pf), nrg = aios_pq_num_row_groups(pf);
    if (nl != 7) {
        fprintf(stderr, "bench_parquet: expected the memories schema\n");
        return 1;
    }
    aios_pq_column *cols = calloc((size_t)(nl * nrg), sizeof *cols);
    for (int rg = 0; rg < nrg; rg++)
        for (int l = 0; l < nl; l++)
            if (aios_pq_read_column(pf, rg, l, &cols[rg * nl + l]) != AIOS_OK) {
                fprintf(stderr, "bench_parquet: %s\n", aios_last_error());
                return 1;
            }
    aios_pq_writer_params wp = aios_pq_writer_default_params();
    wp.codec = (aios_pq_codec)aios_pq_codec_parse(codec);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = aios__now();
        aios_pq_writer *w;
        aios_status s = aios_pq_writer_open(argv[3], f, (int)(sizeof f / sizeof f[0]), &wp, &w);
        for (int rg = 0; rg < nrg && s == AIOS_OK; rg++) {
            for (int l = 0; l < nl && s == AIOS_OK; l++) {
                aios_pq_column *c = &cols[rg * nl + l];
                aios_pq_batch b = {.num_rows = c->num_rows, .num_levels = c->num_levels, .def = c->def, .rep = c->rep,
                                   .values = c->values, .bytes = c->bytes};
                s = aios_pq_writer_write(w, l, &b);
            }
            if (s == AIOS_OK) s = aios_pq_writer_end_batch(w, cols[rg * nl].num_rows);
        }
        if (s == AIOS_OK) s = aios_pq_writer_close(w);
        else aios_pq_writer_abort(w);
        if (s != AIOS_OK) {
            fprintf(stderr, "bench_parquet: %s\n", aios_last_error());
            return 1;
        }
        double t = aios__now() - t0;
        if (t < best) best = t;
    }
    for (int i = 0; i < nl * nrg; i++) aios_pq_column_free(&cols[i]);
    free(cols);
    printf("seconds=%.6f rows=%lld bytes=0\n", best, (long long)aios_parquet_num_rows(pf));
    aios_parquet_close(pf);
    return 0;
}
