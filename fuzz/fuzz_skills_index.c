/* fuzz_skills_index.c — the skill library's index reader (LIB/index.parquet: version key,
 * column types, list lengths against aios.skills.dim) on arbitrary bytes, then the semantic
 * router over whatever it accepted; and the learning-record parser (aios_learn_parse) on the
 * same bytes as a memory's content.  Seeds: a real index of three skills. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aios.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/aios-fuzz-skills-XXXXXX");
        if (!mkdtemp(dir)) return 0;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/index.parquet", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    aios_skill_lib *L;
    if (aios_skills_open(dir, 0, &L) == AIOS_OK) {
        int32_t dim = aios_skills_dim(L);
        for (int64_t i = 0; i < aios_skills_count(L); i++) {
            const aios_skill *k = aios_skills_at(L, i);
            if (!k->name || !k->status) __builtin_trap();
        }
        if (dim > 0) {
            float *q = calloc((size_t)dim, sizeof *q);
            if (q) {
                q[0] = 1;
                aios_route r[AIOS_ROUTE_MAX];
                int n;
                aios_router_params p = aios_router_default_params();
                p.top_k = 3, p.threshold = -2;
                if (aios_skills_route(L, q, dim, &p, r, &n) == AIOS_OK)
                    for (int i = 0; i < n; i++)
                        if (r[i].index < 0 || r[i].index >= aios_skills_count(L) || !(r[i].weight >= 0 && r[i].weight <= 1))
                            __builtin_trap();
                free(q);
            }
        }
        aios_skills_close(L);
    }
    unlink(path);
    char *content = malloc(size + 1);
    if (!content) return 0;
    memcpy(content, data, size);
    content[size] = 0;
    aios_memory m = {0};
    m.memory_id = "fuzz";
    m.content = content;
    m.has_metadata = 1;
    m.category = AIOS_LEARN_APPROVED;
    aios_learn_item it;
    char *own;
    if (aios_learn_parse(&m, &it, &own) == AIOS_OK) {
        if (!it.question || !it.answer) __builtin_trap();
        free(own);
    }
    free(content);
    return 0;
}
