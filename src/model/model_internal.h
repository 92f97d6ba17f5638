/*
 * model/model_internal.h — the model handle's layout, shared by model.c (opening, lookup),
 * model_config.c and model_parquet.c (Schema V1/V2 reading and writing).  Not for other modules.
 */
#ifndef AIOS_MODEL_INTERNAL_H
#define AIOS_MODEL_INTERNAL_H

#include "format/parquet.h"
#include "format/safetensors.h"
#include "model/model.h"

struct aios_model {
    char *path;           /* as given */
    char *dir;            /* directory holding the files */
    char *tokenizer_path; /* NULL when absent */
    const char *format;   /* "safetensors", "parquet-v1", "parquet-v2" */
    aios_model_config cfg;
    aios_tensor *t;       /* (n) sorted by name */
    int64_t n;
    /* sources */
    aios_safetensors **st; /* (n_st) shards */
    int n_st;
    aios_parquet_file *pq;
    aios_pq_column *cols; /* (n_cols) columns read from pq, alive as long as the views */
    int n_cols;
    char *names;          /* parquet, gguf: NUL-terminated copies of the names */
    struct aios_gguf *gguf; /* gguf: the mapped file */
    char *chat_template;  /* gguf: tokenizer.chat_template (NUL-terminated copy), or NULL */
    void **owned;         /* (n_owned) buffers some views point into (gguf: un-permuted q/k) */
    int n_owned;
};

/* Reads weights.parquet (Schema V1 or V2) into m->t / m->n. */
aios_status aios__model_load_parquet(aios_model *m, const char *path);
/* Writes weights.parquet from `src`'s tensors; `q` NULL = Schema V1, else V2 quantized. */
aios_status aios__model_write_parquet(const aios_model *src, const char *path, const aios_quantize_params *q);

/* Opens a GGUF file: config from its metadata, tensors as views under HF names (model_gguf.c). */
aios_status aios__model_load_gguf(aios_model *m, const char *path);

const char *aios__pool_name(aios_pooling p);
const char *aios__attn_name(aios_attn_pattern a);

#endif
