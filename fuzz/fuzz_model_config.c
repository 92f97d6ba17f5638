/* fuzz_model_config.c — the model config parser (config.json / metadata.json aliases) on
 * arbitrary JSON, then metadata.json written from the result must parse back to the same facts. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    if (!o) return 0;
    aios_model m;
    memset(&m, 0, sizeof m);
    if (aios__model_config_parse(o, NULL, &m.cfg) == AIOS_OK) {
        char *meta = aios__model_metadata_json(&m, NULL);
        cJSON *back = meta ? cJSON_Parse(meta) : NULL;
        aios_model_config c2;
        if (back && aios__model_config_parse(back, NULL, &c2) == AIOS_OK) {
            if (c2.arch != m.cfg.arch || c2.n_embd != m.cfg.n_embd || c2.n_head_kv != m.cfg.n_head_kv ||
                c2.head_dim != m.cfg.head_dim || c2.attention != m.cfg.attention || c2.block_size != m.cfg.block_size)
                abort(); /* metadata.json must carry the derived facts */
        }
        cJSON_Delete(back);
        free(meta);
    }
    cJSON_Delete(o);
    return 0;
}
