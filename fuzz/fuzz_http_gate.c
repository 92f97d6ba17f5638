/* fuzz_http_gate.c — the server gate's look at a client's first header block
 * (src/server/server_gate.c aios__gate_check) on arbitrary bytes, complete and cut short.  The
 * first byte says whether the block is the whole of what will be looked at ("full"). Checks
 * that the verdict is one the gate knows and its message is terminated. */
#include <stdlib.h>
#include <string.h>

#include "server/server_gate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size - 1 > AIOS__GATE_PEEK) return 0;
    int full = data[0] & 1;
    /* a copy of exactly the bytes, so reading one past them is an ASan report */
    char *buf = malloc(size - 1 ? size - 1 : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    for (size_t cut = 0; cut <= size - 1; cut += (cut < 64 ? 1 : (size - 1) / 8 + 1)) {
        aios__gate_verdict v;
        aios__gate_check(buf, cut, full && cut == size - 1, &v);
        int s = v.status;
        if (!(s == -1 || s == 0 || s == 400 || s == 413 || s == 414 || s == 431 || s == 501)) abort();
        if (s > 0 && (!v.code || !memchr(v.message, 0, sizeof v.message))) abort();
    }
    free(buf);
    return 0;
}
