/*
 * safetensors.h — reader (mmap, strict header validation) and a small writer for the
 * Hugging Face safetensors format:
 *   u64 little-endian N | N bytes of JSON header | data buffer
 *   header: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 *            "__metadata__": {"k": "v", ...}}   (offsets relative to the data buffer)
 */
#ifndef AIOS_FORMAT_SAFETENSORS_H
#define AIOS_FORMAT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"

typedef struct aios_safetensors aios_safetensors;

/* Maps `path` and parses its header.  Every tensor entry is checked: known dtype, at most
 * AIOS_MAX_DIMS non-negative dims whose byte size fits, offsets inside the buffer with
 * e - b == bytes the shape needs, no two tensors overlapping, the buffer fully covered, no
 * duplicate names, header size sane.  Errors name the file and the tensor. */
aios_status aios_safetensors_open(const char *path, aios_safetensors **out);
/* The same on bytes already in memory (borrowed: must outlive the handle). `label` names the
 * source in errors. */
aios_status aios_safetensors_parse(const uint8_t *data, size_t size, const char *label, aios_safetensors **out);
void aios_safetensors_close(aios_safetensors *st);

/* Number of tensors; index order is the header's order. */
int64_t aios_safetensors_count(const aios_safetensors *st);
/* View of tensor i (name borrowed from the handle; data points into the mapping). */
const aios_tensor *aios_safetensors_tensor(const aios_safetensors *st, int64_t i);
/* Tensor by name, or NULL. */
const aios_tensor *aios_safetensors_find(const aios_safetensors *st, const char *name);
/* __metadata__ entries (string values only, as the format requires). */
int64_t aios_safetensors_metadata_count(const aios_safetensors *st);
void aios_safetensors_metadata_at(const aios_safetensors *st, int64_t i, const char **key, const char **value);
/* Value of a __metadata__ key, or NULL. */
const char *aios_safetensors_metadata(const aios_safetensors *st, const char *key);

/* Writer: tensors must be plain dtypes (the format has no packed quantized kinds).
 * meta_kv is NULL or a NULL-terminated list of key, value, key, value ... strings. */
aios_status aios_safetensors_write(const char *path, const aios_tensor *const *tensors, int64_t n,
                                   const char *const *meta_kv);

#endif
