/* fuzz_server_json.c — the HTTP server's request-body parser/validator (src/server/server_req.c)
 * on arbitrary bytes.  The first byte picks the route (embeddings, completions, chat, memory
 * add, memory search, diffuse, memory update, adapter load/rescale); the rest is the body.  Also
 * logprobs / top_logprobs and the per-request "adapters" list.  Covers the fields of
 * issue #16 too: encoding_format / dimensions, stream_options, the refused OpenAI fields
 * (tools, response_format ...) and text content parts joined into one block; the skill fields of
 * issue #14 ("router", "skills": names or {"name", "weight"}, "router_top_k" /
 * "router_temperature" / "router_threshold").  Checks that a parsed request is internally
 * consistent (counts match arrays, strings are terminated) so a validator bug shows up as an
 * ASan report rather than only as a wrong answer later. */
#include <stdlib.h>
#include <string.h>

#include "server/server_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    aios__req_kind kind = (aios__req_kind)(data[0] % AIOS__REQ_KIND_COUNT);
    aios__req r;
    const char *param = NULL;
    if (aios__req_parse(kind, (const char *)data + 1, size - 1, &r, &param) == AIOS_OK) {
        volatile size_t sink = 0;
        if (r.model) sink += strlen(r.model);
        for (size_t i = 0; i < r.n_inputs; i++) {
            if (r.is_ids)
                for (size_t k = 0; k < r.ids_len[i]; k++) sink += (size_t)r.ids[i][k];
            else
                sink += strlen(r.text[i]) + r.text_len[i];
        }
        for (size_t i = 0; i < r.n_prompt_ids; i++) sink += (size_t)r.prompt_ids[i];
        if (r.prompt) sink += strlen(r.prompt);
        for (size_t i = 0; i < r.n_messages; i++) {
            sink += strlen(r.messages[i].role) + strlen(r.messages[i].content);
            /* a message built from content parts points into chat_text, NUL inside it */
            const char *c = r.messages[i].content;
            if (r.chat_text && c >= r.chat_text && c < r.chat_text + r.n_chat_text &&
                c + strlen(c) >= r.chat_text + r.n_chat_text)
                abort();
        }
        if (r.dimensions < 0 || r.dimensions > AIOS__REQ_MAX_DIM) abort();
        if ((r.base64 | r.include_usage) & ~1) abort();
        for (int i = 0; i < r.n_stop; i++) sink += strlen(r.stop[i]);
        if (r.stop[r.n_stop]) abort();
        for (int32_t i = 0; r.embedding && i < r.dim; i++) sink += (size_t)(r.embedding[i] != 0);
        if (r.content) sink += strlen(r.content);
        if ((r.logprobs & ~1) || r.top_logprobs < 0 || r.top_logprobs > AIOS_MAX_TOP_LOGPROBS) abort();
        if (r.top_logprobs && !r.logprobs) abort();
        if (r.n_adapters < 0 || r.n_adapters > AIOS__REQ_MAX_ADAPTERS || (r.n_adapters && !r.has_adapters)) abort();
        for (int i = 0; i < r.n_adapters; i++) {
            sink += strlen(r.adapter_name[i]);
            if (!(r.adapter_scale[i] >= -100 && r.adapter_scale[i] <= 100)) abort();
        }
        if (r.router < -1 || r.router >= AIOS__ROUTER_COUNT) abort();
        if (r.router_top_k < 0 || r.router_top_k > AIOS__REQ_MAX_ADAPTERS) abort(); /* 0 = absent */
        if (r.router_temperature != 0 && !(r.router_temperature >= 1e-6 && r.router_temperature <= 1e6)) abort();
        if (r.router_threshold == r.router_threshold && !(r.router_threshold >= -1 && r.router_threshold <= 1)) abort();
        if (r.n_skills < 0 || r.n_skills > AIOS__REQ_MAX_ADAPTERS || (r.n_skills && !r.has_skills)) abort();
        for (int i = 0; i < r.n_skills; i++) {
            if (!aios_skills_name_ok(r.skill_name[i])) abort();
            for (int j = 0; j < i; j++)
                if (!strcmp(r.skill_name[i], r.skill_name[j])) abort();
            float w = r.skill_weight[i];
            if (w == w && !(w >= 0 && w <= 100)) abort(); /* NAN = absent */
        }
        if (r.kind == AIOS__REQ_ADAPTER) {
            if (!r.adapter_path && !(r.name && r.has_scale)) abort();
            if (r.name && strchr(r.name, '/')) abort();
            if (r.adapter_path) sink += strlen(r.adapter_path);
        }
        if (r.memory_id && strlen(r.memory_id) >= AIOS_MEMORY_ID_MAX) abort();
        (void)sink;
    } else if (!param) {
        abort(); /* every failure names a field ("" for the body) */
    }
    aios__req_free(&r);
    return 0;
}
