/* TEMPORARY: stands in for the parquet branch until it is merged (then this file is deleted).
 * Every call fails with AIOS_ERR_UNSUPPORTED, so segments cannot be written yet and the
 * store keeps everything in its WAL. */
#include "core/internal.h"
#include "format/parquet.h"
#include <string.h>
static aios_status no(void) { return aios__err(AIOS_ERR_UNSUPPORTED, "parquet: not merged yet"); }
aios_pq_writer_params aios_pq_writer_default_params(void) { aios_pq_writer_params p; memset(&p, 0, sizeof p); return p; }
aios_status aios_pq_writer_open(const char *path, const aios_pq_field *f, int n, const aios_pq_writer_params *p, aios_pq_writer **o) { *o = NULL; return no(); }
aios_status aios_pq_writer_set_kv(aios_pq_writer *w, const char *k, const char *v) { return no(); }
aios_status aios_pq_writer_write(aios_pq_writer *w, int leaf, const aios_pq_batch *b) { return no(); }
aios_status aios_pq_writer_end_batch(aios_pq_writer *w, int64_t n) { return no(); }
aios_status aios_pq_writer_close(aios_pq_writer *w) { return no(); }
void aios_pq_writer_abort(aios_pq_writer *w) {}
aios_status aios_parquet_open_memory(const void *d, size_t n, aios_parquet_file **o) { *o = NULL; return no(); }
int aios_pq_find_leaf(const aios_parquet_file *pf, const char *p) { return -1; }
int aios_pq_find_node(const aios_parquet_file *pf, const char *p) { return -1; }
const aios_pq_node *aios_pq_node_at(const aios_parquet_file *pf, int n) { return NULL; }
aios_status aios_pq_read_column(aios_parquet_file *pf, int rg, int leaf, aios_pq_column *c) { memset(c, 0, sizeof *c); return no(); }
void aios_pq_column_free(aios_pq_column *c) {}
int64_t aios_parquet_num_rows(const aios_parquet_file *pf) { return 0; }
void aios_parquet_close(aios_parquet_file *pf) {}
