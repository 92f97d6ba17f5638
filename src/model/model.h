/*
 * model/model.h — internal model interface: tensor views by name for the architecture code
 * (BERT, decoder, diffusion) and the pieces the converter / quantizer / CLI share.
 * The public half (open, config, inspect, convert, quantize) is in include/aios.h.
 */
#ifndef AIOS_MODEL_MODEL_H
#define AIOS_MODEL_MODEL_H

#include <cjson/cJSON.h>

#include "aios.h"
#include "tensor/tensor.h"

/* Tensor view by name, or NULL when absent.  The view (and its data) lives as long as the
 * model.  Thread-safe (read-only). */
const aios_tensor *aios_model_tensor(const aios_model *m, const char *name);
/* The same with a printf-style name: aios_model_tensorf(m, "model.layers.%d.mlp.up_proj.weight", l). */
const aios_tensor *aios_model_tensorf(const aios_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Tensor i in name order (0 <= i < aios_model_num_tensors), or NULL. */
const aios_tensor *aios_model_tensor_at(const aios_model *m, int64_t i);
/* Like aios_model_tensor, but sets an error naming the model and the tensor when absent, and
 * checks the dimension count and (when shape is non-NULL) every dimension (-1 = any). */
aios_status aios_model_require(const aios_model *m, const char *name, int ndim, const int64_t *shape,
                               const aios_tensor **out);

/* Fills cfg from a parsed config.json or metadata.json object (aliases of both accepted).
 * `dir` (may be NULL) is searched for sentence-transformers files. */
aios_status aios__model_config_parse(const cJSON *root, const char *dir, aios_model_config *cfg);
/* Completes config facts from the tensors present (qkv bias, qk norm, tied head). */
void aios__model_config_from_tensors(aios_model *m);
/* metadata.json text for a config (the seed's fields plus ours); caller frees. */
char *aios__model_metadata_json(const aios_model *m, const char *quantization);

/* GGUF-opened models: the file's reader (NULL for other formats). */
struct aios_gguf;
const struct aios_gguf *aios__model_gguf(const aios_model *m);
/* The chat template the model file carries (GGUF tokenizer.chat_template), or NULL. */
const char *aios__model_chat_template(const aios_model *m);
/* HF tensor name for a GGUF one (blk.3.attn_q.weight -> model.layers.3.self_attn.q_proj.weight);
 * unmapped names are copied as they are. */
void aios__gguf_hf_name(const char *gguf_name, char *out, size_t n);

#endif
