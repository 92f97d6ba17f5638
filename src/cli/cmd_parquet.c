/*
 * cmd_parquet.c — `aios parquet schema|head|cat|stats|verify|from-jsonl`, like parquet-tools.
 *
 * cat/head assemble rows from the leaf columns of each row group (Dremel record assembly):
 * every node is emitted by looking at the definition level of the first leaf below it
 * (below its own level the node is null / the list is empty), lists loop while the next
 * repetition level continues them, and each emitted leaf entry advances its column's level
 * cursor (and its slot cursor when the entry is a slot).  JSON conventions: binary as hex,
 * timestamps as integers in the column's unit, lists as arrays, structs as objects, NaN and
 * infinities as the strings "nan", "inf", "-inf", floats in the shortest form that reads
 * back to the same float32/float64.
 *
 * This command uses the internal src/format/parquet.h (the full reader/writer), since
 * include/aios.h exposes only open / num_rows / close.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "format/parquet.h"

/* Library messages already start with "parquet: FILE: ..." */
static int pq_fail(aios_status s) {
    const char *d = aios_last_error();
    fprintf(stderr, "aios: %s\n", d && *d ? d : aios_status_str(s));
    return 1;
}

/* ---- value formatting ---- */

static void put_float(FILE *f, double v, int is_float) {
    if (isnan(v)) {
        fputs("\"nan\"", f);
        return;
    }
    if (isinf(v)) {
        fputs(v > 0 ? "\"inf\"" : "\"-inf\"", f);
        return;
    }
    char buf[40];
    if (is_float) {
        float x = (float)v;
        for (int p = 6; p <= 9; p++) {
            snprintf(buf, sizeof buf, "%.*g", p, (double)x);
            if (strtof(buf, NULL) == x) break;
        }
    } else {
        for (int p = 15; p <= 17; p++) {
            snprintf(buf, sizeof buf, "%.*g", p, v);
            if (strtod(buf, NULL) == v) break;
        }
    }
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    fputs(buf, f);
}

static void put_hex(FILE *f, const uint8_t *p, size_t n) {
    static const char hx[] = "0123456789abcdef";
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        fputc(hx[p[i] >> 4], f);
        fputc(hx[p[i] & 15], f);
    }
    fputc('"', f);
}

static void put_str(FILE *f, const uint8_t *p, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
        } else if (ch < 0x20) {
            switch (ch) {
            case '\n': fputs("\\n", f); break;
            case '\t': fputs("\\t", f); break;
            case '\r': fputs("\\r", f); break;
            default: fprintf(f, "\\u%04x", ch); break;
            }
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void put_value(FILE *f, const aios_pq_column *c, int64_t s) {
    const aios_pq_node *n = c->node;
    switch (c->type) {
    case AIOS_PQ_BOOLEAN: fputs(((const uint8_t *)c->values)[s] ? "true" : "false", f); break;
    case AIOS_PQ_INT32: {
        int32_t v = ((const int32_t *)c->values)[s];
        if (n->logical == AIOS_PQ_L_INTEGER && !n->is_signed) fprintf(f, "%" PRIu32, (uint32_t)v);
        else fprintf(f, "%" PRId32, v);
        break;
    }
    case AIOS_PQ_INT64: {
        int64_t v = ((const int64_t *)c->values)[s];
        if (n->logical == AIOS_PQ_L_INTEGER && !n->is_signed) fprintf(f, "%" PRIu64, (uint64_t)v);
        else fprintf(f, "%" PRId64, v);
        break;
    }
    case AIOS_PQ_FLOAT: put_float(f, ((const float *)c->values)[s], 1); break;
    case AIOS_PQ_DOUBLE: put_float(f, ((const double *)c->values)[s], 0); break;
    case AIOS_PQ_INT96: put_hex(f, (const uint8_t *)c->values + 12 * s, 12); break;
    case AIOS_PQ_BYTE_ARRAY:
        if (n->logical == AIOS_PQ_L_STRING || n->logical == AIOS_PQ_L_JSON || n->logical == AIOS_PQ_L_ENUM)
            put_str(f, c->bytes[s].ptr, c->bytes[s].len);
        else
            put_hex(f, c->bytes[s].ptr, c->bytes[s].len);
        break;
    case AIOS_PQ_FIXED_LEN_BYTE_ARRAY: put_hex(f, c->bytes[s].ptr, c->bytes[s].len); break;
    }
}

/* ---- record assembly ---- */

typedef struct {
    aios_parquet_file *pf;
    aios_pq_column *cols;   /* (n_leaves), only projected ones read */
    int64_t *lvl, *slot;    /* cursors per leaf */
    FILE *out;
} asm_ctx;

static int first_leaf(const aios_parquet_file *pf, int node) {
    const aios_pq_node *n = aios_pq_node_at(pf, node);
    while (!n->is_leaf) {
        if (n->n_children == 0) return -1;
        n = aios_pq_node_at(pf, n->children[0]);
    }
    return n->leaf;
}

static int16_t cur_def(asm_ctx *a, int leaf) {
    aios_pq_column *c = &a->cols[leaf];
    if (a->lvl[leaf] >= c->num_levels) return -1;
    return c->def ? c->def[a->lvl[leaf]] : c->max_def;
}

static int16_t cur_rep(asm_ctx *a, int leaf) {
    aios_pq_column *c = &a->cols[leaf];
    if (a->lvl[leaf] >= c->num_levels) return -1;
    return c->rep ? c->rep[a->lvl[leaf]] : 0;
}

/* Advances every leaf below `node` by one level entry. */
static void skip_entry(asm_ctx *a, int node) {
    const aios_pq_node *n = aios_pq_node_at(a->pf, node);
    if (n->is_leaf) {
        aios_pq_column *c = &a->cols[n->leaf];
        if (a->lvl[n->leaf] < c->num_levels) {
            if (cur_def(a, n->leaf) >= c->slot_def) a->slot[n->leaf]++;
            a->lvl[n->leaf]++;
        }
        return;
    }
    for (int i = 0; i < n->n_children; i++) skip_entry(a, n->children[i]);
}

static void emit(asm_ctx *a, int node, int as_item);

/* A list whose repeated node is `rnode` (the parent is known to be present). `item` is the
 * node printed per element.  `outer` is the node whose entries are skipped when empty. */
static void emit_list(asm_ctx *a, int outer, int rnode, int item) {
    const aios_pq_node *r = aios_pq_node_at(a->pf, rnode);
    int fl = first_leaf(a->pf, rnode);
    if (fl < 0 || cur_def(a, fl) < r->def_level) {
        fputs("[]", a->out);
        if (fl >= 0) skip_entry(a, outer);
        return;
    }
    fputc('[', a->out);
    for (int k = 0;; k++) {
        if (k) fputc(',', a->out);
        emit(a, item, item == rnode);
        if (cur_rep(a, fl) != r->rep_level) break;
    }
    fputc(']', a->out);
}

static void emit(asm_ctx *a, int node, int as_item) {
    const aios_parquet_file *pf = a->pf;
    const aios_pq_node *n = aios_pq_node_at(pf, node);
    int fl = first_leaf(pf, node);
    if (fl < 0) {
        fputs("{}", a->out);
        return;
    }
    if (n->repetition == AIOS_PQ_REPEATED && !as_item) { /* bare repeated field: a list */
        emit_list(a, node, node, node);
        return;
    }
    int16_t d = cur_def(a, fl);
    int16_t need = as_item ? n->def_level : n->def_level;
    if (d < need) {
        fputs("null", a->out);
        skip_entry(a, node);
        return;
    }
    if (n->is_leaf) {
        aios_pq_column *c = &a->cols[n->leaf];
        put_value(a->out, c, a->slot[n->leaf]);
        a->slot[n->leaf]++;
        a->lvl[n->leaf]++;
        return;
    }
    if ((n->logical == AIOS_PQ_L_LIST || n->logical == AIOS_PQ_L_MAP) && n->n_children == 1 &&
        aios_pq_node_at(pf, n->children[0])->repetition == AIOS_PQ_REPEATED) {
        int rn = n->children[0];
        const aios_pq_node *r = aios_pq_node_at(pf, rn);
        int item = rn;
        if (n->logical == AIOS_PQ_L_LIST && !r->is_leaf && r->n_children == 1) item = r->children[0];
        emit_list(a, node, rn, item);
        return;
    }
    fputc('{', a->out);
    for (int i = 0; i < n->n_children; i++) {
        const aios_pq_node *ch = aios_pq_node_at(pf, n->children[i]);
        if (i) fputc(',', a->out);
        put_str(a->out, (const uint8_t *)ch->name, strlen(ch->name));
        fputc(':', a->out);
        emit(a, n->children[i], 0);
    }
    fputc('}', a->out);
}

static void mark_leaves(const aios_parquet_file *pf, int node, char *want) {
    const aios_pq_node *n = aios_pq_node_at(pf, node);
    if (n->is_leaf) want[n->leaf] = 1;
    for (int i = 0; i < n->n_children; i++) mark_leaves(pf, n->children[i], want);
}

/* Prints rows [0, limit) (limit < 0: all) as JSON lines; `cols` selects top-level fields. */
static int cat_jsonl(aios_parquet_file *pf, int64_t limit, char **sel, int nsel, FILE *out) {
    const aios_pq_node *root = aios_pq_node_at(pf, 0);
    int nl = aios_pq_num_leaves(pf);
    char *want = calloc((size_t)nl + 1, 1);
    char *topwant = calloc((size_t)root->n_children + 1, 1);
    aios_pq_column *cols = calloc((size_t)nl + 1, sizeof *cols);
    int64_t *lvl = calloc((size_t)nl + 1, sizeof *lvl), *slot = calloc((size_t)nl + 1, sizeof *slot);
    int rc = 0;
    if (!want || !topwant || !cols || !lvl || !slot) {
        fprintf(stderr, "aios: parquet cat: out of memory\n");
        rc = 1;
        goto out;
    }
    for (int i = 0; i < root->n_children; i++) {
        const aios_pq_node *ch = aios_pq_node_at(pf, root->children[i]);
        int w = nsel == 0;
        for (int k = 0; k < nsel; k++)
            if (!strcmp(sel[k], ch->name)) w = 1;
        if (w) {
            topwant[i] = 1;
            mark_leaves(pf, root->children[i], want);
        }
    }
    for (int k = 0; k < nsel; k++) {
        int found = 0;
        for (int i = 0; i < root->n_children; i++)
            if (!strcmp(sel[k], aios_pq_node_at(pf, root->children[i])->name)) found = 1;
        if (!found) {
            fprintf(stderr, "aios: parquet cat: no top-level column '%s'\n", sel[k]);
            rc = 2;
            goto out;
        }
    }
    asm_ctx a = {.pf = pf, .cols = cols, .lvl = lvl, .slot = slot, .out = out};
    int64_t printed = 0;
    for (int rg = 0; rg < aios_pq_num_row_groups(pf) && (limit < 0 || printed < limit); rg++) {
        for (int l = 0; l < nl; l++) {
            lvl[l] = slot[l] = 0;
            if (!want[l]) continue;
            aios_status s = aios_pq_read_column(pf, rg, l, &cols[l]);
            if (s != AIOS_OK) {
                rc = pq_fail(s);
                for (int k = 0; k < l; k++) aios_pq_column_free(&cols[k]);
                goto out;
            }
        }
        int64_t rows = aios_pq_row_group_num_rows(pf, rg);
        for (int64_t r = 0; r < rows && (limit < 0 || printed < limit); r++, printed++) {
            fputc('{', out);
            int first = 1;
            for (int i = 0; i < root->n_children; i++) {
                if (!topwant[i]) continue;
                const aios_pq_node *ch = aios_pq_node_at(pf, root->children[i]);
                if (!first) fputc(',', out);
                first = 0;
                put_str(out, (const uint8_t *)ch->name, strlen(ch->name));
                fputc(':', out);
                emit(&a, root->children[i], 0);
            }
            fputs("}\n", out);
        }
        for (int l = 0; l < nl; l++) aios_pq_column_free(&cols[l]);
    }
out:
    free(want);
    free(topwant);
    free(cols);
    free(lvl);
    free(slot);
    return rc;
}

/* ---- schema / stats ---- */

static const char *logical_str(const aios_pq_node *n, char *buf, size_t len) {
    static const char *units[] = {"MILLIS", "MICROS", "NANOS"};
    switch (n->logical) {
    case AIOS_PQ_L_NONE: return NULL;
    case AIOS_PQ_L_STRING: return "STRING";
    case AIOS_PQ_L_LIST: return "LIST";
    case AIOS_PQ_L_MAP: return "MAP";
    case AIOS_PQ_L_ENUM: return "ENUM";
    case AIOS_PQ_L_DECIMAL: snprintf(buf, len, "DECIMAL(%d,%d)", n->precision, n->scale); return buf;
    case AIOS_PQ_L_DATE: return "DATE";
    case AIOS_PQ_L_TIME: snprintf(buf, len, "TIME(%s,%s)", units[n->unit], n->utc ? "true" : "false"); return buf;
    case AIOS_PQ_L_TIMESTAMP:
        snprintf(buf, len, "TIMESTAMP(%s,%s)", units[n->unit], n->utc ? "true" : "false");
        return buf;
    case AIOS_PQ_L_INTEGER: snprintf(buf, len, "INTEGER(%d,%s)", n->bit_width, n->is_signed ? "true" : "false"); return buf;
    case AIOS_PQ_L_JSON: return "JSON";
    case AIOS_PQ_L_BSON: return "BSON";
    case AIOS_PQ_L_UUID: return "UUID";
    case AIOS_PQ_L_FLOAT16: return "FLOAT16";
    case AIOS_PQ_L_UNKNOWN: return "UNKNOWN";
    }
    return NULL;
}

static void print_node(const aios_parquet_file *pf, int node, int depth) {
    static const char *reps[] = {"required", "optional", "repeated"};
    static const char *types[] = {"boolean", "int32", "int64", "int96", "float", "double", "binary", "fixed_len_byte_array"};
    const aios_pq_node *n = aios_pq_node_at(pf, node);
    char lb[64];
    const char *lg = logical_str(n, lb, sizeof lb);
    if (node == 0) {
        printf("message %s {\n", n->name);
    } else if (n->is_leaf) {
        printf("%*s%s %s", depth * 2, "", reps[n->repetition], types[n->type]);
        if (n->type == AIOS_PQ_FIXED_LEN_BYTE_ARRAY) printf("(%d)", n->type_length);
        printf(" %s%s%s%s;\n", n->name, lg ? " (" : "", lg ? lg : "", lg ? ")" : "");
        return;
    } else {
        printf("%*s%s group %s%s%s%s {\n", depth * 2, "", reps[n->repetition], n->name, lg ? " (" : "", lg ? lg : "", lg ? ")" : "");
    }
    for (int i = 0; i < n->n_children; i++) print_node(pf, n->children[i], depth + 1);
    printf("%*s}\n", depth * 2, "");
}

static void print_stat(const aios_pq_node *n, const uint8_t *p, size_t len) {
    char tmp[64];
    if (n->type == AIOS_PQ_INT32 && len == 4) {
        int32_t v;
        memcpy(&v, p, 4);
        printf("%d", v);
    } else if (n->type == AIOS_PQ_INT64 && len == 8) {
        int64_t v;
        memcpy(&v, p, 8);
        printf("%" PRId64, v);
    } else if (n->type == AIOS_PQ_FLOAT && len == 4) {
        float v;
        memcpy(&v, p, 4);
        snprintf(tmp, sizeof tmp, "%.9g", (double)v);
        printf("%s", tmp);
    } else if (n->type == AIOS_PQ_DOUBLE && len == 8) {
        double v;
        memcpy(&v, p, 8);
        printf("%.17g", v);
    } else if (n->type == AIOS_PQ_BOOLEAN && len == 1) {
        printf("%s", p[0] ? "true" : "false");
    } else if (n->logical == AIOS_PQ_L_STRING) {
        put_str(stdout, p, len > 64 ? 64 : len);
    } else {
        put_hex(stdout, p, len > 32 ? 32 : len);
    }
}

static int do_stats(aios_parquet_file *pf) {
    printf("rows %" PRId64 ", row groups %d, columns %d, created by \"%s\"\n", aios_parquet_num_rows(pf),
           aios_pq_num_row_groups(pf), aios_pq_num_leaves(pf), aios_pq_created_by(pf));
    for (int i = 0; i < aios_pq_num_kv(pf); i++) {
        const char *k, *v;
        aios_pq_kv_at(pf, i, &k, &v);
        printf("kv %s = %.80s%s\n", k, v ? v : "(null)", v && strlen(v) > 80 ? "..." : "");
    }
    for (int rg = 0; rg < aios_pq_num_row_groups(pf); rg++) {
        printf("row group %d: %" PRId64 " rows\n", rg, aios_pq_row_group_num_rows(pf, rg));
        for (int l = 0; l < aios_pq_num_leaves(pf); l++) {
            const aios_pq_node *n = aios_pq_leaf(pf, l);
            const aios_pq_chunk_info *ci = aios_pq_chunk(pf, rg, l);
            printf("  %s: %s %s values=%" PRId64 " compressed=%" PRId64 " uncompressed=%" PRId64 " enc=", n->path,
                   aios_pq_type_name(n->type), aios_pq_codec_name(ci->codec), ci->num_values, ci->total_compressed_size,
                   ci->total_uncompressed_size);
            int first = 1;
            for (int e = 0; e < 32; e++)
                if (ci->encodings & (1u << e)) {
                    printf("%s%s", first ? "" : ",", aios_pq_encoding_name((aios_pq_encoding)e));
                    first = 0;
                }
            if (ci->has_null_count) printf(" nulls=%" PRId64, ci->null_count);
            if (ci->has_min_max) {
                printf(" min=");
                print_stat(n, ci->min, ci->min_len);
                printf(" max=");
                print_stat(n, ci->max, ci->max_len);
            }
            printf("\n");
        }
    }
    return 0;
}

int aios_cmd_parquet_from_jsonl(int argc, char **argv);


static void usage(FILE *f) {
    fprintf(f, "usage: aios parquet <action> FILE [options]\n\n"
               "actions:\n"
               "  schema FILE                 the schema tree, rows and row groups\n"
               "  head FILE [-n N]            the first N rows (default 5) as JSON lines\n"
               "  cat FILE [--format jsonl] [--columns a,b]   every row as one JSON object per line\n"
               "  stats FILE                  row groups, column chunks, codecs, encodings, statistics\n"
               "  verify FILE                 decode every page, check CRCs, counts and statistics\n"
               "  from-jsonl OUT --schema SPEC [--codec zstd|snappy|gzip|none] [--level N]\n"
               "             [--row-group-rows N] [--page-bytes N] [--no-dictionary] [--v2] [--aligned COL]\n"
               "                              write JSON lines from stdin (see 'aios parquet from-jsonl --help')\n\n"
               "JSON: binary as hex, timestamps as integers in the column's unit, lists as arrays,\n"
               "structs as objects, null as null, NaN/infinities as \"nan\"/\"inf\"/\"-inf\".\n");
}

int aios_cmd_parquet(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *act = argv[1];
    if (!strcmp(act, "from-jsonl")) return aios_cmd_parquet_from_jsonl(argc - 1, argv + 1);
    if (strcmp(act, "schema") && strcmp(act, "head") && strcmp(act, "cat") && strcmp(act, "stats") && strcmp(act, "verify")) {
        fprintf(stderr, "aios: parquet: unknown action '%s'\n", act);
        usage(stderr);
        return 2;
    }
    if (aios_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *path = NULL;
    int64_t limit = !strcmp(act, "head") ? 5 : -1;
    char *sel[256];
    int nsel = 0;
    char *colarg = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc && !strcmp(act, "head")) {
            char *e;
            errno = 0;
            limit = strtoll(argv[++i], &e, 10);
            if (*e || errno || limit < 0) {
                fprintf(stderr, "aios: parquet head: bad -n '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            if (strcmp(argv[++i], "jsonl") && strcmp(argv[i], "json")) {
                fprintf(stderr, "aios: parquet: unknown format '%s' (jsonl)\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--columns") && i + 1 < argc) {
            colarg = argv[++i];
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            fprintf(stderr, "aios: parquet %s: unexpected argument '%s'\n", act, argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "aios: parquet %s: missing FILE\n", act);
        return 2;
    }
    char *coldup = colarg ? strdup(colarg) : NULL;
    if (coldup) {
        for (char *t = strtok(coldup, ","); t && nsel < 256; t = strtok(NULL, ",")) sel[nsel++] = t;
    }
    aios_parquet_file *pf;
    aios_status s = aios_parquet_open(path, &pf);
    if (s != AIOS_OK) {
        free(coldup);
        return pq_fail(s);
    }
    int rc = 0;
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    if (!strcmp(act, "schema")) {
        print_node(pf, 0, 0);
        printf("rows %" PRId64 ", row groups %d, created by \"%s\"\n", aios_parquet_num_rows(pf), aios_pq_num_row_groups(pf),
               aios_pq_created_by(pf));
    } else if (!strcmp(act, "stats")) {
        rc = do_stats(pf);
    } else if (!strcmp(act, "verify")) {
        s = aios_parquet_verify(pf, stdout);
        if (s != AIOS_OK) rc = pq_fail(s);
        else printf("ok: %s: %" PRId64 " rows, %d row groups, %d columns, every page decoded\n", path,
                    aios_parquet_num_rows(pf), aios_pq_num_row_groups(pf), aios_pq_num_leaves(pf));
    } else {
        rc = cat_jsonl(pf, limit, sel, nsel, stdout);
    }
    fflush(stdout);
    aios_parquet_close(pf);
    free(coldup);
    return rc;
}
