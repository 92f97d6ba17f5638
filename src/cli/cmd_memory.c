/*
 * cmd_memory.c — `aios memory add|get|delete|update|list|search|import|export|compact|check|
 * stats|index`: the memory store from the shell.  Output for machines is JSON (one object per
 * line with --jsonl); ids are printed only after the write is durable.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/internal.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: aios memory <action> --store DIR [options]\n\n"
            "The memory store: Parquet segments + write-ahead log + HNSW index in directory DIR\n"
            "(default: storage.storage_path from the configuration / AIOS_STORAGE_PATH).\n\n"
            "actions:\n"
            "  add        add one memory (prints its id once it is durable), or many with --jsonl FILE\n"
            "  get ID     print a memory as JSON\n"
            "  delete ID  delete a memory\n"
            "  update ID  replace the given fields of a memory (the others are kept)\n"
            "  list       print live memories as JSON lines (--limit N, --offset N, --embeddings)\n"
            "  search     top-k by cosine similarity (--embedding JSON | --text Q) --top-k K\n"
            "  import F   import a memories Parquet file (the seed's ArrowStorage schema)\n"
            "  export F   write all live memories to one zstd Parquet file\n"
            "  compact    rewrite segments without tombstones; rebuild the index\n"
            "  flush      move the WAL into a Parquet segment now\n"
            "  index      build the HNSW index now, whatever the size\n"
            "  check      verify checksums, contents, HNSW links and recall (--queries N)\n"
            "  stats      counts, sizes, model, dimension\n\n"
            "memory fields (add / update):\n"
            "  --id ID             memory_id (add: generated when absent)\n"
            "  --content TEXT      the memory's text\n"
            "  --embedding JSON    the embedding, e.g. '[0.1, 0.2, ...]'\n"
            "  --text TEXT         content, embedded with the store's model (see --model)\n"
            "  --category C  --source S  --quality Q\n"
            "  --timestamp T       microseconds since the epoch or 2024-01-02T03:04:05[.ffffff][Z] (default now)\n"
            "  --jsonl FILE        add: one JSON object per line with the fields memory_id, content,\n"
            "                      embedding, timestamp, metadata {category, source, quality_score};\n"
            "                      or \"text\" instead of content + embedding, embedded with the model\n"
            "model: --model DIR (a BERT-family model, e.g. all-MiniLM-L6-v2); default: the model the store\n"
            "       records, else model.model_path / AIOS_MODEL_PATH; recorded in the manifest on first use\n"
            "store creation: --dim N\n"
            "index (writers: add, import, compact, flush, index): --hnsw-m M (32) --hnsw-ef-construction N\n"
            "        (200) --hnsw-ef-search N (the store's default candidate list; else tuned) --hnsw-min-rows\n"
            "        N (20000: the index is built once that many rows are embedded); recorded in the manifest;\n"
            "        `index` with an M or ef-construction other than the index's rebuilds it\n"
            "search: --top-k K (10) --threshold T --category C --source S --since T --until T\n"
            "        --min-quality Q --exact | --hnsw --ef N --jsonl (one JSON object per hit)\n"
            "        --query-file FILE (or -): many queries in one run, one JSON object per line with\n"
            "        \"text\" or \"embedding\" (and optionally \"query_id\"); prints one line per query:\n"
            "        {\"query\": query_id or line number, \"hits\": [...]}\n"
            "        default mode: the HNSW index when the store measured it faster than exact search at\n"
            "        recall@10 >= 0.97 (see `check`), else exact; --ef default: the store's tuned ef_search\n"
            "progress: when stderr is a terminal, add --jsonl counts what is durable, and open (over 1 s),\n"
            "          import, compact, flush and index report their time\n");
}

typedef struct {
    const char *store, *id, *content, *embedding, *text, *category, *source, *jsonl_file, *model, *query_file;
    const char *since, *until, *timestamp;
    double quality, threshold, min_quality;
    int has_quality, has_threshold, has_min_quality;
    int top_k, dim, limit, offset, exact, hnsw, ef, jsonl, embeddings, queries;
    int hnsw_m, hnsw_efc, hnsw_efs, hnsw_min_rows; /* index settings of a writer (0 = recorded / default) */
    const char *pos; /* positional argument (id or file) */
} opts;

static int parse_ts(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*end && errno == 0 && end != s) {
        *out = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3) return -1;
    const char *p = s + n;
    double frac = 0;
    if (*p == 'T' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) != 3) return -1;
        p += 1 + m;
        if (*p == '.') {
            char *e;
            frac = strtod(p, &e);
            p = e;
        }
    }
    if (*p == 'Z') p++;
    if (*p) return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *out = (int64_t)t * 1000000 + (int64_t)llround(frac * 1e6);
    return 0;
}

/* A non-empty JSON array of numbers as floats (malloc'd); -1 when it is anything else. */
static int floats_of(const cJSON *j, float **out, int32_t *dim) {
    *out = NULL;
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 0;
    float *v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
    if (!v) return -1;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, j) {
        if (!cJSON_IsNumber(x)) {
            free(v);
            return -1;
        }
        v[i++] = (float)x->valuedouble;
    }
    *out = v;
    *dim = n;
    return 0;
}

static int parse_embedding(const char *json, float **out, int32_t *dim) {
    cJSON *j = cJSON_Parse(json);
    int rc = floats_of(j, out, dim);
    cJSON_Delete(j);
    return rc;
}

/* aios_embed_fn over the engine's encoder. */
static aios_status embed_cb(void *user, const char *text, float *out, int32_t dim) {
    aios_encoder *enc = user;
    if (aios_encoder_dim(enc) != dim) return AIOS_ERR_SHAPE;
    return aios_encode(enc, text, strlen(text), out);
}

static cJSON *memory_json(const aios_memory *m, int with_embedding, double score, int with_score) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "memory_id", m->memory_id);
    if (with_score) cJSON_AddNumberToObject(o, "score", score);
    if (m->content) cJSON_AddStringToObject(o, "content", m->content);
    else cJSON_AddNullToObject(o, "content");
    char ts[32]; /* integer microseconds, exactly (a double would round past 2^53) */
    snprintf(ts, sizeof ts, "%" PRId64, m->timestamp_us);
    cJSON_AddRawToObject(o, "timestamp", ts);
    if (m->has_metadata) {
        cJSON *md = cJSON_AddObjectToObject(o, "metadata");
        if (m->category) cJSON_AddStringToObject(md, "category", m->category);
        else cJSON_AddNullToObject(md, "category");
        if (m->source) cJSON_AddStringToObject(md, "source", m->source);
        else cJSON_AddNullToObject(md, "source");
        if (m->has_quality) cJSON_AddNumberToObject(md, "quality_score", m->quality_score);
        else cJSON_AddNullToObject(md, "quality_score");
    } else {
        cJSON_AddNullToObject(o, "metadata");
    }
    if (with_embedding) {
        if (m->embedding) {
            cJSON *e = cJSON_AddArrayToObject(o, "embedding");
            for (int32_t i = 0; i < m->dim; i++) cJSON_AddItemToArray(e, cJSON_CreateNumber(m->embedding[i]));
        } else {
            cJSON_AddNullToObject(o, "embedding");
        }
    }
    return o;
}

static void print_json(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (s) puts(s);
    free(s);
    cJSON_Delete(o);
}

/* Fills m from options; returns 0, or 2 on a usage error (message printed). */
static int fill_memory(const opts *o, aios_memory *m, float **emb) {
    *emb = NULL;
    if (o->id) m->memory_id = o->id;
    if (o->content) m->content = o->content;
    if (o->text) m->content = o->text;
    if (o->embedding) {
        if (parse_embedding(o->embedding, emb, &m->dim)) {
            fprintf(stderr, "aios: memory: --embedding must be a JSON array of numbers\n");
            return 2;
        }
        m->embedding = *emb;
    }
    if (o->category || o->source || o->has_quality) {
        if (!m->has_metadata) {
            m->has_metadata = 1;
            m->category = m->source = NULL;
            m->has_quality = 0;
        }
        if (o->category) m->category = o->category;
        if (o->source) m->source = o->source;
        if (o->has_quality) {
            m->has_quality = 1;
            m->quality_score = (float)o->quality;
        }
    }
    if (o->timestamp && parse_ts(o->timestamp, &m->timestamp_us)) {
        fprintf(stderr, "aios: memory: --timestamp: '%s' is neither microseconds nor YYYY-MM-DD[THH:MM:SS[.f]][Z]\n", o->timestamp);
        return 2;
    }
    return 0;
}

/* One JSON line of --jsonl input into m (strings borrowed from j). */
static int memory_from_json(const cJSON *j, aios_memory *m, float **emb, int64_t lineno) {
    memset(m, 0, sizeof *m);
    *emb = NULL;
    m->timestamp_us = AIOS_TIMESTAMP_NOW;
    if (!cJSON_IsObject(j)) goto bad;
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "memory_id");
    if (x && !cJSON_IsNull(x)) {
        if (!cJSON_IsString(x)) goto bad;
        m->memory_id = x->valuestring;
    }
    x = cJSON_GetObjectItemCaseSensitive(j, "content");
    if (x && !cJSON_IsNull(x)) {
        if (!cJSON_IsString(x)) goto bad;
        m->content = x->valuestring;
    }
    x = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
    if (x && !cJSON_IsNull(x)) {
        if (cJSON_IsNumber(x)) {
            if (!aios__f64_to_i64(x->valuedouble, &m->timestamp_us)) goto bad;
        } else if (!cJSON_IsString(x) || parse_ts(x->valuestring, &m->timestamp_us)) goto bad;
    }
    x = cJSON_GetObjectItemCaseSensitive(j, "embedding");
    if (x && !cJSON_IsNull(x)) {
        if (floats_of(x, emb, &m->dim)) goto bad;
        m->embedding = *emb;
    }
    x = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    if (x && !cJSON_IsNull(x)) {
        if (!cJSON_IsObject(x)) goto bad;
        m->has_metadata = 1;
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(x, "category");
        if (cJSON_IsString(y)) m->category = y->valuestring;
        y = cJSON_GetObjectItemCaseSensitive(x, "source");
        if (cJSON_IsString(y)) m->source = y->valuestring;
        y = cJSON_GetObjectItemCaseSensitive(x, "quality_score");
        if (cJSON_IsNumber(y)) {
            m->has_quality = 1;
            m->quality_score = (float)y->valuedouble;
        }
    }
    return 0;
bad:
    free(*emb);
    *emb = NULL;
    fprintf(stderr, "aios: memory add: --jsonl line %lld: not a memory object (memory_id, content, embedding, timestamp, metadata)\n",
            (long long)lineno);
    return 2;
}

typedef struct {
    cJSON *j;
    int64_t lineno;
    float *ev; /* the line's own embedding, or NULL: its text is encoded with the chunk */
    int32_t n_e;
} qline;

/* Searches and prints the queries of a chunk, their texts encoded in one batch. */
static int search_chunk(aios_store *st, aios_encoder *enc, const aios_search_params *q, qline *b, int nb, float *tv,
                        aios_search_hit *hits) {
    int32_t dim = aios_store_dim(st);
    const char *texts[64];
    int nt = 0, rc = 0;
    for (int i = 0; i < nb; i++)
        if (!b[i].ev) texts[nt++] = cJSON_GetObjectItemCaseSensitive(b[i].j, "text")->valuestring;
    aios_status s = nt ? aios_encode_batch(enc, texts, NULL, (size_t)nt, tv, NULL, NULL) : AIOS_OK;
    if (s) return aios_cli_fail("memory search: encoding", s);
    for (int i = 0, k = 0; i < nb && !rc; i++) {
        const float *v = b[i].ev ? b[i].ev : tv + (size_t)(k++) * (size_t)dim;
        int32_t n = 0;
        if ((s = aios_store_search(st, v, b[i].ev ? b[i].n_e : dim, q, hits, &n))) {
            char what[64];
            snprintf(what, sizeof what, "memory search (line %lld)", (long long)b[i].lineno);
            rc = aios_cli_fail(what, s);
            break;
        }
        cJSON *out = cJSON_CreateObject(), *arr = cJSON_CreateArray();
        const cJSON *qid = cJSON_GetObjectItemCaseSensitive(b[i].j, "query_id");
        if (qid) cJSON_AddItemToObject(out, "query", cJSON_Duplicate(qid, 0));
        else cJSON_AddNumberToObject(out, "query", (double)b[i].lineno);
        for (int32_t h = 0; h < n; h++) cJSON_AddItemToArray(arr, memory_json(&hits[h].memory, 0, hits[h].score, 1));
        cJSON_AddItemToObject(out, "hits", arr);
        print_json(out);
    }
    return rc;
}

/* --query-file: one query per line, a JSON object with "text" (embedded with the store's model)
 * or "embedding", and optionally "query_id"; prints one JSON line per query, in order:
 * {"query": query_id or the line number, "hits": [memory objects with "score"]}.  One open of
 * the store for any number of queries (opening a 1M-row store takes seconds); texts are encoded
 * 64 lines at a time in one batch. */
static int search_many(aios_store *st, aios_encoder *enc, const aios_search_params *q, const char *file) {
    enum { QB = 64 };
    int32_t dim = aios_store_dim(st);
    if (dim <= 0) {
        fprintf(stderr, "aios: memory search: the store has no embeddings yet\n");
        return 1;
    }
    FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
    if (!f) {
        fprintf(stderr, "aios: memory search: %s: %s\n", file, strerror(errno));
        return 1;
    }
    aios_search_hit *hits = malloc((size_t)q->top_k * sizeof *hits);
    float *tv = malloc((size_t)QB * (size_t)dim * sizeof *tv);
    qline b[QB];
    int nb = 0;
    char *line = NULL;
    size_t cap = 0;
    int64_t lineno = 0;
    int rc = hits && tv ? 0 : aios_cli_fail("memory search", AIOS_ERR_NOMEM), bad = 0;
    for (;;) {
        bool eof = rc || bad || getline(&line, &cap, f) < 0;
        if (!eof) {
            lineno++;
            if (strspn(line, " \t\r\n") == strlen(line)) continue;
            qline L = {cJSON_Parse(line), lineno, NULL, 0};
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(L.j, "text");
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(L.j, "embedding");
            const cJSON *qid = cJSON_GetObjectItemCaseSensitive(L.j, "query_id");
            if (!cJSON_IsObject(L.j) || (!cJSON_IsString(text) && !e) || (qid && !cJSON_IsString(qid) && !cJSON_IsNumber(qid))) {
                fprintf(stderr, "aios: memory search: --query-file line %lld: expected {\"text\": ...} or {\"embedding\": [...]}, "
                                "optionally \"query_id\"\n", (long long)lineno);
                bad = 2;
            } else if (e && floats_of(e, &L.ev, &L.n_e)) {
                fprintf(stderr, "aios: memory search: --query-file line %lld: \"embedding\" must be an array of numbers\n",
                        (long long)lineno);
                bad = 2;
            } else if (!e && !enc) {
                fprintf(stderr, "aios: memory search: --query-file line %lld: \"text\" needs a model (--model)\n", (long long)lineno);
                bad = 2;
            }
            if (bad) cJSON_Delete(L.j);
            else b[nb++] = L;
        }
        /* a full chunk, the end, or a bad line: the lines before it are answered first */
        if (nb && (nb == QB || eof || bad) && !rc) rc = search_chunk(st, enc, q, b, nb, tv, hits);
        if (nb == QB || eof || bad || rc) {
            for (int i = 0; i < nb; i++) {
                free(b[i].ev);
                cJSON_Delete(b[i].j);
            }
            nb = 0;
        }
        if (eof || bad || rc) break;
    }
    free(line);
    free(hits);
    free(tv);
    if (f != stdin) fclose(f);
    return rc ? rc : bad;
}

/* Progress on stderr, only when it is a terminal (scripts reading stderr see nothing new). */
static bool g_tty = false;

/* A long maintenance step (compact, flush, index, import) says what it works on and how long it
 * took; opening a store that took over a second says so too. */
static double stage_begin(aios_store *st, const char *what) {
    aios_store_stats x;
    if (g_tty && aios_store_stats_get(st, &x) == AIOS_OK)
        fprintf(stderr, "aios: memory %s: %lld memories, %lld segments ...", what, (long long)x.live, (long long)x.segments);
    return aios__now();
}
static void stage_end(double t0, aios_status s) {
    if (g_tty) fprintf(stderr, s ? " failed\n" : " done in %.1f s\n", aios__now() - t0);
}

/* Adds --jsonl lines in batches (one fsync per batch); each batch's ids are printed once it is
 * durable.  Lines with "text" and no embedding are embedded with `enc`. */
static int add_jsonl(aios_store *st, const char *file, aios_encoder *enc) {
    double t0 = aios__now();
    int64_t added = 0;
    FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
    if (!f) {
        fprintf(stderr, "aios: memory add: %s: %s\n", file, strerror(errno));
        return 1;
    }
    enum { B = 512 };
    cJSON *js[B];
    float *embs[B];
    aios_memory ms[B];
    unsigned char to_embed[B] = {0};
    char(*ids)[AIOS_MEMORY_ID_MAX] = malloc(B * sizeof *ids);
    int n = 0, rc = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0, first = 1;
    for (;;) {
        len = ids ? getline(&line, &cap, f) : -1;
        bool eof = len < 0;
        if (!eof) {
            lineno++;
            if (len <= 1) continue;
            cJSON *j = cJSON_Parse(line);
            if (!j) {
                fprintf(stderr, "aios: memory add: --jsonl line %lld: invalid JSON\n", (long long)lineno);
                rc = 2;
            } else if (memory_from_json(j, &ms[n], &embs[n], lineno)) {
                cJSON_Delete(j);
                rc = 2;
            } else {
                js[n] = j;
                const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
                if (cJSON_IsString(text) && !ms[n].embedding) {
                    int32_t dim = aios_store_dim(st);
                    ms[n].content = text->valuestring;
                    if (!enc || dim <= 0) {
                        fprintf(stderr, "aios: memory add: --jsonl line %lld: \"text\" needs a model (--model)\n", (long long)lineno);
                        rc = 2;
                    } else {
                        /* embedded below, the whole batch in one aios_encode_batch call */
                        embs[n] = malloc((size_t)dim * sizeof(float));
                        if (!embs[n]) rc = aios_cli_fail("memory add", AIOS_ERR_NOMEM);
                        ms[n].embedding = embs[n];
                        ms[n].dim = dim;
                        to_embed[n] = 1;
                    }
                }
                n++;
            }
        }
        if (rc || eof || n == B) {
            int ne = 0;
            for (int i = 0; i < n; i++) ne += to_embed[i];
            if (!rc && ne) {
                const char *texts[B];
                float *out = malloc((size_t)ne * (size_t)aios_store_dim(st) * sizeof(float));
                int k = 0;
                for (int i = 0; i < n; i++)
                    if (to_embed[i]) texts[k++] = ms[i].content;
                aios_status s = out ? aios_encode_batch(enc, texts, NULL, (size_t)ne, out, NULL, NULL) : AIOS_ERR_NOMEM;
                if (s) rc = aios_cli_fail("memory add: encoding", s);
                k = 0;
                for (int i = 0; i < n && !rc; i++)
                    if (to_embed[i]) memcpy(embs[i], out + (size_t)(k++) * (size_t)aios_store_dim(st), (size_t)aios_store_dim(st) * sizeof(float));
                free(out);
            }
            if (!rc && n) {
                aios_status s = aios_store_add_batch(st, ms, (size_t)n, ids);
                if (s) {
                    char what[96];
                    snprintf(what, sizeof what, "memory add (lines %lld..%lld)", (long long)first, (long long)lineno);
                    rc = aios_cli_fail(what, s);
                } else {
                    for (int i = 0; i < n; i++) printf("%s\n", ids[i]); /* durable now */
                    fflush(stdout);
                    added += n;
                    if (g_tty)
                        fprintf(stderr, "\r  %lld memories added (%.0f/s)", (long long)added,
                                added / (aios__now() - t0 + 1e-9));
                }
            }
            for (int i = 0; i < n; i++) {
                free(embs[i]);
                cJSON_Delete(js[i]);
                to_embed[i] = 0;
            }
            n = 0;
            first = lineno + 1;
        }
        if (rc || eof) break;
    }
    if (g_tty && added) fputc('\n', stderr);
    free(line);
    free(ids);
    if (f != stdin) fclose(f);
    return rc;
}

int aios_cmd_memory(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *action = argv[1];
    if (aios_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    opts o;
    memset(&o, 0, sizeof o);
    o.top_k = 10;
    o.queries = 100;
    o.limit = -1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define STR(flag, field)                                                           \
    if (!strcmp(a, flag)) {                                                        \
        if (!v) goto missing;                                                      \
        o.field = v;                                                               \
        i++;                                                                       \
        continue;                                                                  \
    }
#define NUM(flag, field, has)                                                      \
    if (!strcmp(a, flag)) {                                                        \
        char *e_;                                                                  \
        if (!v) goto missing;                                                      \
        o.field = strtod(v, &e_);                                                  \
        if (*e_ || e_ == v || !isfinite(o.field)) goto badnum;                     \
        has;                                                                       \
        i++;                                                                       \
        continue;                                                                  \
    }
#define INT(flag, field)                                                           \
    if (!strcmp(a, flag)) {                                                        \
        char *e_;                                                                  \
        if (!v) goto missing;                                                      \
        long x_ = strtol(v, &e_, 10);                                              \
        if (*e_ || e_ == v || x_ < 0 || x_ > 100000000) goto badnum;               \
        o.field = (int)x_;                                                         \
        i++;                                                                       \
        continue;                                                                  \
    }
        STR("--store", store)
        STR("--id", id)
        STR("--content", content)
        STR("--embedding", embedding)
        STR("--text", text)
        STR("--category", category)
        STR("--source", source)
        STR("--model", model)
        STR("--since", since)
        STR("--until", until)
        STR("--timestamp", timestamp)
        NUM("--quality", quality, o.has_quality = 1)
        NUM("--threshold", threshold, o.has_threshold = 1)
        NUM("--min-quality", min_quality, o.has_min_quality = 1)
        INT("--top-k", top_k)
        INT("--dim", dim)
        INT("--limit", limit)
        INT("--offset", offset)
        INT("--ef", ef)
        INT("--queries", queries)
        INT("--hnsw-m", hnsw_m)
        INT("--hnsw-ef-construction", hnsw_efc)
        INT("--hnsw-ef-search", hnsw_efs)
        INT("--hnsw-min-rows", hnsw_min_rows)
        if (!strcmp(a, "--jsonl")) {
            /* search/list: a flag; add: takes a file */
            if (!strcmp(action, "add")) {
                if (!v) goto missing;
                o.jsonl_file = v;
                i++;
            } else {
                o.jsonl = 1;
            }
            continue;
        }
        if (!strcmp(a, "--query-file")) {
            if (!v) goto missing;
            o.query_file = v;
            i++;
            continue;
        }
        if (!strcmp(a, "--exact")) { o.exact = 1; continue; }
        if (!strcmp(a, "--hnsw")) { o.hnsw = 1; continue; }
        if (!strcmp(a, "--embeddings")) { o.embeddings = 1; continue; }
        if (a[0] != '-' && !o.pos) { o.pos = a; continue; }
        fprintf(stderr, "aios: memory %s: unexpected argument '%s' (see 'aios memory --help')\n", action, a);
        return 2;
    missing:
        fprintf(stderr, "aios: memory %s: %s needs a value\n", action, a);
        return 2;
    badnum:
        fprintf(stderr, "aios: memory %s: %s: expected a finite number, got '%s'\n", action, a, v);
        return 2;
    }

    aios_config cfg;
    char store_dir[1024];
    if (!o.store) {
        if (aios_config_load(&cfg, NULL) != AIOS_OK) return aios_cli_fail("config", AIOS_ERR_CONFIG);
        snprintf(store_dir, sizeof store_dir, "%s", cfg.storage.storage_path);
        o.store = store_dir;
    }
    if (!strcmp(action, "check")) {
        double recall;
        aios_status s = aios_store_check(o.store, o.queries, stdout, &recall);
        return s ? aios_cli_fail("memory check", s) : 0;
    }
    static const char *known[] = {"add", "get", "delete", "update", "list", "search", "import",
                                  "export", "compact", "flush", "index", "stats"};
    int ok = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(action, known[i]);
    if (!ok) {
        fprintf(stderr, "aios: memory: unknown action '%s' (see 'aios memory --help')\n", action);
        return 2;
    }
    int writes = !strcmp(action, "add") || !strcmp(action, "delete") || !strcmp(action, "update") ||
                 !strcmp(action, "import") || !strcmp(action, "compact") || !strcmp(action, "flush") ||
                 !strcmp(action, "index");
    int needs_pos = !strcmp(action, "get") || !strcmp(action, "delete") || !strcmp(action, "update") ||
                    !strcmp(action, "import") || !strcmp(action, "export");
    if (needs_pos && !o.pos) {
        fprintf(stderr, "aios: memory %s: missing %s\n", action,
                (!strcmp(action, "import") || !strcmp(action, "export")) ? "FILE" : "ID");
        return 2;
    }
    /* --text: the model is --model, else the one the store records, else the configuration's
     * model.model_path (AIOS_MODEL_PATH); a writer records it in the manifest */
    const char *model = o.model;
    char cfg_model[1024] = "";
    if ((o.text || o.jsonl_file) && !model) {
        aios_config c2;
        if (aios_config_load(&c2, NULL) == AIOS_OK) snprintf(cfg_model, sizeof cfg_model, "%s", c2.model.model_path);
    }
    aios_store_params sp = aios_store_default_params();
    sp.read_only = !writes;
    sp.create = !strcmp(action, "add") || !strcmp(action, "import");
    sp.dim = o.dim;
    sp.model = model;
    sp.hnsw_m = o.hnsw_m;
    sp.hnsw_ef_construction = o.hnsw_efc;
    sp.hnsw_ef_search = o.hnsw_efs;
    if (o.hnsw_min_rows) sp.hnsw_min_rows = o.hnsw_min_rows;
    aios_store *st;
    g_tty = isatty(2);
    double t_open = aios__now();
    aios_status s = aios_store_open(o.store, &sp, &st);
    if (s) return aios_cli_fail("memory", s);
    if (g_tty && aios__now() - t_open > 1.0)
        fprintf(stderr, "aios: memory: opened %s in %.1f s\n", o.store, aios__now() - t_open);
    int rc = 0;
    aios_encoder *enc = NULL;
    /* jsonl lines may carry "text" to embed when a model is known */
    int want_enc = o.text || ((o.jsonl_file || o.query_file) && (o.model || aios_store_model(st)[0]));
    if (want_enc) {
        if (!model) model = aios_store_model(st)[0] ? aios_store_model(st) : cfg_model[0] ? cfg_model : NULL;
        if (!model) {
            fprintf(stderr, "aios: memory %s: --text (or jsonl \"text\") needs a model: --model DIR, model.model_path in the configuration, "
                            "or AIOS_MODEL_PATH\n", action);
            aios_store_close(st);
            return 1;
        }
        s = aios_encoder_open(model, NULL, &enc);
        if (s) {
            aios_store_close(st);
            return aios_cli_fail("memory: model", s);
        }
        if (aios_store_dim(st) && aios_store_dim(st) != (int32_t)aios_encoder_dim(enc)) {
            fprintf(stderr, "aios: memory %s: model %s gives %lld-dimensional embeddings, the store holds %d\n", action, model,
                    (long long)aios_encoder_dim(enc), aios_store_dim(st));
            aios_encoder_free(enc);
            aios_store_close(st);
            return 1;
        }
        if (writes && (!aios_store_model(st)[0] || !aios_store_dim(st))) {
            /* first text-embedded write: reopen with the model and its dimension so the
             * manifest records them */
            aios_store_close(st);
            sp.model = model;
            sp.dim = (int32_t)aios_encoder_dim(enc);
            s = aios_store_open(o.store, &sp, &st);
            if (s) {
                aios_encoder_free(enc);
                return aios_cli_fail("memory", s);
            }
        }
        aios_store_set_embedder(st, embed_cb, enc);
    }
    if (!strcmp(action, "add")) {
        if (o.jsonl_file) {
            rc = add_jsonl(st, o.jsonl_file, enc);
        } else {
            aios_memory m;
            memset(&m, 0, sizeof m);
            m.timestamp_us = AIOS_TIMESTAMP_NOW;
            float *emb;
            rc = fill_memory(&o, &m, &emb);
            if (!rc) {
                char id[AIOS_MEMORY_ID_MAX];
                s = o.text && !m.embedding ? aios_store_add_text(st, &m, id) : aios_store_add(st, &m, id);
                if (s) rc = aios_cli_fail("memory add", s);
                else printf("%s\n", id); /* the acknowledgement: durable now */
            }
            free(emb);
        }
    } else if (!strcmp(action, "get")) {
        aios_memory m;
        s = aios_store_get(st, o.pos, &m);
        if (s) rc = aios_cli_fail("memory get", s);
        else print_json(memory_json(&m, 1, 0, 0));
    } else if (!strcmp(action, "delete")) {
        s = aios_store_delete(st, o.pos);
        if (s) rc = aios_cli_fail("memory delete", s);
        else printf("%s\n", o.pos);
    } else if (!strcmp(action, "update")) {
        aios_memory m;
        s = aios_store_get(st, o.pos, &m);
        if (s) rc = aios_cli_fail("memory update", s);
        else {
            /* copy what we keep: the pointers die with the write */
            aios_memory c = m;
            char *content = m.content ? strdup(m.content) : NULL, *cat = m.category ? strdup(m.category) : NULL,
                 *src = m.source ? strdup(m.source) : NULL;
            float *old = NULL;
            if (m.embedding) {
                old = malloc((size_t)m.dim * sizeof *old);
                memcpy(old, m.embedding, (size_t)m.dim * sizeof *old);
            }
            c.content = content;
            c.category = cat;
            c.source = src;
            c.embedding = old;
            c.memory_id = o.pos;
            o.id = NULL;
            float *emb;
            rc = fill_memory(&o, &c, &emb);
            float *te = NULL;
            if (!rc && o.text && !o.embedding) {
                te = malloc((size_t)aios_store_dim(st) * sizeof *te);
                s = te ? embed_cb(enc, o.text, te, aios_store_dim(st)) : AIOS_ERR_NOMEM;
                if (s) rc = aios_cli_fail("memory update: encoding", s);
                c.embedding = te;
                c.dim = aios_store_dim(st);
            }
            if (!rc) {
                s = aios_store_update(st, &c);
                if (s) rc = aios_cli_fail("memory update", s);
                else printf("%s\n", o.pos);
            }
            free(emb);
            free(te);
            free(old);
            free(content);
            free(cat);
            free(src);
        }
    } else if (!strcmp(action, "list")) {
        int64_t cur = 0, seen = 0, printed = 0;
        aios_memory m;
        while (aios_store_next(st, &cur, &m) == AIOS_OK) {
            if (seen++ < o.offset) continue;
            if (o.limit >= 0 && printed >= o.limit) break;
            print_json(memory_json(&m, o.embeddings, 0, 0));
            printed++;
        }
    } else if (!strcmp(action, "search")) {
        aios_search_params q = aios_search_default_params();
        q.top_k = o.top_k;
        if (o.has_threshold) q.threshold = (float)o.threshold;
        q.category = o.category;
        q.source = o.source;
        if (o.has_min_quality) q.min_quality = (float)o.min_quality;
        if ((o.since && parse_ts(o.since, &q.since_us)) || (o.until && parse_ts(o.until, &q.until_us))) {
            fprintf(stderr, "aios: memory search: --since/--until: microseconds or YYYY-MM-DD[THH:MM:SS[.f]][Z]\n");
            aios_store_close(st);
            return 2;
        }
        q.mode = o.exact ? AIOS_SEARCH_EXACT : o.hnsw ? AIOS_SEARCH_HNSW : AIOS_SEARCH_AUTO;
        q.ef_search = o.ef;
        float *emb = NULL;
        int32_t dim = 0;
        if (o.query_file) {
            rc = o.top_k < 1 ? (fprintf(stderr, "aios: memory search: --top-k must be at least 1\n"), 2)
                             : search_many(st, enc, &q, o.query_file);
        } else if (!o.embedding && !o.text) {
            fprintf(stderr, "aios: memory search: give --embedding JSON, --text Q or --query-file FILE\n");
            rc = 2;
        } else if (o.text && !o.embedding) {
            dim = aios_store_dim(st);
            emb = dim > 0 ? malloc((size_t)dim * sizeof *emb) : NULL;
            if (dim <= 0) {
                fprintf(stderr, "aios: memory search: the store has no embeddings yet\n");
                rc = 1;
            } else if ((s = embed_cb(enc, o.text, emb, dim))) {
                rc = aios_cli_fail("memory search: encoding", s);
            }
        } else if (parse_embedding(o.embedding, &emb, &dim)) {
            fprintf(stderr, "aios: memory search: --embedding must be a JSON array of numbers\n");
            rc = 2;
        } else if (o.top_k < 1) {
            fprintf(stderr, "aios: memory search: --top-k must be at least 1\n");
            rc = 2;
        }
        if (!rc && !o.query_file) {
            aios_search_hit *hits = malloc((size_t)o.top_k * sizeof *hits);
            int32_t n = 0;
            s = aios_store_search(st, emb, dim, &q, hits, &n);
            if (s) rc = aios_cli_fail("memory search", s);
            for (int32_t i = 0; i < n; i++) {
                if (o.jsonl) print_json(memory_json(&hits[i].memory, 0, hits[i].score, 1));
                else printf("%2d  %.6f  %-24s %s\n", i + 1, hits[i].score, hits[i].memory.memory_id,
                            hits[i].memory.content ? hits[i].memory.content : "(null)");
            }
            free(hits);
        }
        free(emb);
    } else if (!strcmp(action, "import")) {
        int64_t n;
        double t0 = stage_begin(st, "import");
        s = aios_store_import(st, o.pos, &n);
        stage_end(t0, s);
        if (s) rc = aios_cli_fail("memory import", s);
        else printf("imported %lld memories from %s\n", (long long)n, o.pos);
    } else if (!strcmp(action, "export")) {
        s = aios_store_export(st, o.pos);
        if (s) rc = aios_cli_fail("memory export", s);
    } else if (!strcmp(action, "compact")) {
        double t0 = stage_begin(st, "compact");
        s = aios_store_compact(st);
        stage_end(t0, s);
        if (s) rc = aios_cli_fail("memory compact", s);
    } else if (!strcmp(action, "flush")) {
        double t0 = stage_begin(st, "flush");
        s = aios_store_flush(st);
        stage_end(t0, s);
        if (s) rc = aios_cli_fail("memory flush", s);
    } else if (!strcmp(action, "index")) {
        double t0 = stage_begin(st, "index");
        s = aios_store_build_index(st);
        stage_end(t0, s);
        if (s) rc = aios_cli_fail("memory index", s);
    } else if (!strcmp(action, "stats")) {
        aios_store_stats x;
        s = aios_store_stats_get(st, &x);
        if (s) rc = aios_cli_fail("memory stats", s);
        else {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "live", (double)x.live);
            cJSON_AddNumberToObject(j, "rows", (double)x.rows);
            cJSON_AddNumberToObject(j, "tombstones", (double)x.tombstones);
            cJSON_AddNumberToObject(j, "wal_records", (double)x.wal_records);
            cJSON_AddNumberToObject(j, "segments", (double)x.segments);
            cJSON_AddNumberToObject(j, "index_rows", (double)x.index_rows);
            cJSON_AddNumberToObject(j, "dim", x.dim);
            cJSON_AddNumberToObject(j, "bytes_on_disk", (double)x.bytes_on_disk);
            cJSON_AddNumberToObject(j, "version", (double)x.version);
            cJSON_AddStringToObject(j, "model", x.model);
            print_json(j);
        }
    }
    aios_store_close(st);
    aios_encoder_free(enc);
    return rc;
}
