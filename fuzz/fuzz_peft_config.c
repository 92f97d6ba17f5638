/* fuzz_peft_config.c — PEFT adapter_config.json parser on arbitrary bytes; a config it accepts
 * must survive our writer: the adapter_config.json we write for it parses back to the same r,
 * alpha, dropout, rsLoRA and target modules. */
#include <stdlib.h>
#include <string.h>

#include "model/lora.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    aios_peft_config c;
    if (aios_peft_config_parse((const char *)data, size, &c) != AIOS_OK) return 0;
    if (c.r <= 0 || c.r > 4096 || !c.targets || !(c.alpha > 0) || !(c.dropout >= 0 && c.dropout < 1)) abort();
    aios_lora a;
    memset(&a, 0, sizeof a);
    a.r = c.r, a.alpha = c.alpha, a.dropout = c.dropout, a.rslora = c.rslora, a.targets = c.targets;
    memcpy(a.base_model, c.base_model, sizeof a.base_model);
    char *json = aios__lora_peft_config_json(&a);
    if (!json) return 0;
    aios_peft_config back;
    if (aios_peft_config_parse(json, strlen(json), &back) != AIOS_OK) abort();
    if (back.r != c.r || back.targets != c.targets || back.rslora != c.rslora || strcmp(back.base_model, c.base_model))
        abort();
    /* the writer prints alpha and dropout with the digits that read back exactly */
    if (back.alpha != c.alpha || back.dropout != c.dropout) abort();
    free(json);
    return 0;
}
