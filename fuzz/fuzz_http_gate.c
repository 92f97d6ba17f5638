/* fuzz_http_gate.c — the server gate's look at a client's first header block
 * (src/server/server_gate.c aios__gate_check) on arbitrary bytes, complete and cut short.  The
 * first byte says whether the block is the whole of what will be looked at ("full"). Checks
 * that the verdict is one the gate knows and its message is terminated; then walks the bytes as
 * a kept-alive connection's requests one after another (header block, Content-Length bytes),
 * judging each as the gate judges the requests past the first. */
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
    /* a kept-alive connection's stream: after a request that passes, its header block and
     * Content-Length bytes are skipped and the next request is judged from there, as
     * aios__gate_next does past the first request */
    size_t at = 0;
    for (int k = 0; k < 64 && at < size - 1; k++) {
        aios__gate_verdict v;
        aios__gate_check(buf + at, size - 1 - at, full, &v);
        if (v.status != 0) break;
        if (!v.head || v.head > size - 1 - at) abort();
        if (v.chunked || v.content_length > size - 1 - at - v.head) break;
        at += v.head + (size_t)v.content_length;
    }
    free(buf);
    return 0;
}
