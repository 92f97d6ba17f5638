/*
 * gen_tokenizer.c — adapter from the generator to the tokenizer module (tokenizer.json).
 * Until the tokenizer module is merged, opening yields no tokenizer: text prompts are refused
 * with a clear message and prompt ids work.
 */
#include "engine/generate_internal.h"

#include "core/internal.h"

aios_status aios__gen_tok_open(const char *path, aios__gen_tokenizer **out) {
    *out = NULL;
    aios_log(AIOS_LOG_INFO, "generate: %s: tokenizer.json support not built in; prompt ids only", path);
    return AIOS_OK;
}
void aios__gen_tok_free(aios__gen_tokenizer *t) { (void)t; }
aios_status aios__gen_tok_encode(aios__gen_tokenizer *t, const char *text, int add_special, int32_t **ids, size_t *n) {
    (void)t, (void)text, (void)add_special, (void)ids, (void)n;
    return aios__err(AIOS_ERR_UNSUPPORTED, "generate: tokenizer.json support not built in");
}
aios_status aios__gen_tok_decode(aios__gen_tokenizer *t, const int32_t *ids, size_t n, char **text) {
    (void)t, (void)ids, (void)n, (void)text;
    return aios__err(AIOS_ERR_UNSUPPORTED, "generate: tokenizer.json support not built in");
}
int32_t aios__gen_tok_token_id(aios__gen_tokenizer *t, const char *token) {
    (void)t, (void)token;
    return -1;
}
aios_status aios__gen_tok_id_to_token(aios__gen_tokenizer *t, int32_t id, char **out) {
    (void)t, (void)id;
    *out = NULL;
    return aios__err(AIOS_ERR_UNSUPPORTED, "generate: tokenizer.json support not built in");
}
