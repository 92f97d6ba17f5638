/*
 * engine/encode_internal.h — what the server needs of the encoder beyond include/aios.h.
 */
#ifndef AIOS_ENGINE_ENCODE_INTERNAL_H
#define AIOS_ENGINE_ENCODE_INTERNAL_H

#include "aios.h"

/* Tokens the encoder runs for `text` (special tokens included, truncated to its max_length, no
 * padding): what OpenAI's usage.prompt_tokens counts.  Long texts are not tokenized past what
 * truncation keeps (memory stays linear in max_length).  Thread-safe (reads only). */
aios_status aios__encode_token_count(const aios_encoder *e, const char *text, size_t len, size_t *n);

#endif
