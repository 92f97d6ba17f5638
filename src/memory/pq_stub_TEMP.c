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
