"""`aios serve` over HTTP on a loopback port, judged by the command-line engines and the fixtures:
embeddings equal `aios encode` (and the token-id form, tokenized here by the `tokenizers`
package, equals the text form); greedy completions equal `aios generate --temperature 0` and
the stories260K reference text (llama2.c's own output); streamed SSE pieces concatenate to the
non-streamed text; memories round-trip; malformed requests get OpenAI error objects."""
import http.client
import json
import os
import select
import subprocess
import threading

import numpy as np

from harness import AIOS, SHARED, TMP, Skip, aios, run, test

STORIES = os.path.join(SHARED, "models", "stories260K")
TINY = os.path.join(SHARED, "fixtures", "models", "bert-tiny")
LLADA = os.path.join(SHARED, "fixtures", "models", "llada-tiny")
_srv = {}


def server():
    """Starts one server for the whole file (port 0: the kernel picks a free loopback port)."""
    if "port" in _srv:
        return _srv["port"]
    if not os.path.exists(AIOS):
        raise Skip("aios not built")
    for d in (STORIES, TINY, LLADA):
        if not os.path.isdir(d):
            raise Skip(f"{d} not found")
    store = os.path.join(TMP, "server-store")
    p = subprocess.Popen([AIOS, "serve", "--host", "127.0.0.1", "--port", "0", "--model", STORIES,
                          "--embedding-model", TINY, "--store", store, "--diffusion-model", LLADA, "--threads", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _srv["proc"] = p
    r, _, _ = select.select([p.stdout], [], [], 30)
    line = p.stdout.readline() if r else ""
    if not line.startswith("aios: serving on http://127.0.0.1:"):
        p.kill()
        raise AssertionError(f"server did not start: {line!r} {p.stderr.read()}")
    _srv["port"] = int(line.rsplit(":", 1)[1])
    return _srv["port"]


def request(method, path, body=None, raw=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", server(), timeout=timeout)
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    c.request(method, path, body=data, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), payload


def call(method, path, body=None, status=200):
    st, ctype, payload = request(method, path, body)
    assert st == status, (st, payload[:500])
    assert ctype == "application/json", ctype
    return json.loads(payload)


def stream(path, body):
    """POSTs a streaming request; returns the parsed `data:` events up to [DONE]."""
    c = http.client.HTTPConnection("127.0.0.1", server(), timeout=60)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream", r.status
    events, done = [], False
    for _ in range(100000):  # bounded
        line = r.readline()
        if not line:
            break
        line = line.decode().rstrip("\n")
        if not line:
            continue
        assert line.startswith("data: "), line
        if line == "data: [DONE]":
            done = True
            break
        events.append(json.loads(line[6:]))
    c.close()
    assert done, "stream ended without [DONE]"
    return events


def encode_cli(texts):
    inp = "".join(json.dumps(t) + "\n" for t in texts)
    p = aios("encode", "--model", TINY, "--jsonl", "--quiet", input=inp)
    return np.array([json.loads(l)["embedding"] for l in p.stdout.splitlines()], np.float32)


@test
def health_and_models():
    h = call("GET", "/health")
    assert h["status"] == "ok" and h["models"] == 1 and h["embeddings"] and h["memory"], h
    m = call("GET", "/v1/models")
    assert m["object"] == "list"
    assert [x["id"] for x in m["data"]] == ["stories260K", "bert-tiny", "llada-tiny"], m


@test
def embeddings_equal_cli_encode():
    texts = ["Hello world.", "A man is playing a guitar.", "", "naïve café — ünïcödé ✓"]
    want = encode_cli(texts)
    r = call("POST", "/v1/embeddings", {"model": "bert-tiny", "input": texts})
    assert r["object"] == "list" and r["model"] == "bert-tiny"
    assert [d["index"] for d in r["data"]] == list(range(len(texts)))
    assert all(d["object"] == "embedding" for d in r["data"])
    got = np.array([d["embedding"] for d in r["data"]], np.float32)
    assert got.shape == want.shape and np.array_equal(got, want), np.abs(got - want).max()
    # a single string gives the same first row
    one = call("POST", "/v1/embeddings", {"input": texts[1]})
    assert np.array_equal(np.array(one["data"][0]["embedding"], np.float32), want[1])
    # token ids from the reference tokenizer (with [CLS]/[SEP]) give the text's embedding
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(TINY, "tokenizer.json"))
    ids = [tok.encode(t).ids for t in texts[:2]]
    r2 = call("POST", "/v1/embeddings", {"input": ids})
    got2 = np.array([d["embedding"] for d in r2["data"]], np.float32)
    assert np.allclose(got2, want[:2], atol=1e-6), np.abs(got2 - want[:2]).max()
    assert r2["usage"]["prompt_tokens"] == sum(len(i) for i in ids), r2["usage"]
    # usage counts the reference tokenizer's tokens for texts too
    assert r["usage"]["prompt_tokens"] == sum(len(tok.encode(t).ids) for t in texts), r["usage"]


@test
def greedy_completion_equals_cli_and_reference():
    prompt = "Once upon a time"
    cli = aios("generate", "--model", STORIES, "--prompt", prompt, "--max-tokens", 40, "--temperature", 0).stdout
    r = call("POST", "/v1/completions", {"model": "stories260K", "prompt": prompt, "max_tokens": 40, "temperature": 0})
    assert r["object"] == "text_completion"
    ch = r["choices"][0]
    assert ch["text"] + "\n" == cli, (ch["text"], cli)
    assert ch["finish_reason"] in ("length", "stop")
    assert r["usage"]["completion_tokens"] <= 40
    assert r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]
    # from BOS alone (prompt ids [1]) the text is llama2.c's reference continuation
    ref = open(os.path.join(STORIES, "expected_greedy_t0.txt"), encoding="utf-8").read().split("text:\n", 1)[1]
    r = call("POST", "/v1/completions", {"prompt": [1], "max_tokens": 64, "temperature": 0, "ignore_eos": True})
    text = r["choices"][0]["text"]
    assert len(text) > 100 and ref.startswith(text), (text, ref[:300])
    # a stop string cuts the text before it
    r = call("POST", "/v1/completions", {"prompt": [1], "max_tokens": 64, "temperature": 0, "stop": "Lily"})
    assert r["choices"][0]["text"] == ref[:ref.index("Lily")] and r["choices"][0]["finish_reason"] == "stop"


@test
def streaming_chunks_concatenate_to_text():
    body = {"prompt": "Once upon a time", "max_tokens": 30, "temperature": 0.8, "top_p": 0.9, "top_k": 40, "seed": 42}
    full = call("POST", "/v1/completions", body)["choices"][0]["text"]
    ev = stream("/v1/completions", dict(body, stream=True))
    assert all(e["object"] == "text_completion" for e in ev)
    assert "".join(e["choices"][0]["text"] for e in ev) == full
    assert ev[-1]["choices"][0]["finish_reason"] in ("length", "stop")
    assert all(e["choices"][0]["finish_reason"] is None for e in ev[:-1])
    # chat: the role first, then content deltas, equal to the non-streamed message
    chat = {"messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 20, "temperature": 0}
    msg = call("POST", "/v1/chat/completions", chat)
    assert msg["object"] == "chat.completion" and msg["choices"][0]["message"]["role"] == "assistant"
    ev = stream("/v1/chat/completions", dict(chat, stream=True))
    assert ev[0]["choices"][0]["delta"].get("role") == "assistant"
    assert all(e["object"] == "chat.completion.chunk" for e in ev)
    got = "".join(e["choices"][0]["delta"].get("content", "") for e in ev)
    assert got == msg["choices"][0]["message"]["content"], (got, msg)


@test
def seeded_sampling_is_reproducible():
    body = {"prompt": "The cat", "max_tokens": 20, "temperature": 1.0, "seed": 7}
    a = call("POST", "/v1/completions", body)["choices"][0]["text"]
    b = call("POST", "/v1/completions", body)["choices"][0]["text"]
    cli = aios("generate", "--model", STORIES, "--prompt", "The cat", "--max-tokens", 20, "--temperature", 1.0,
               "--seed", 7).stdout
    assert a == b and a + "\n" == cli, (a, b, cli)


@test
def memories_round_trip():
    texts = ["The cat sat on the mat.", "Stock markets fell sharply today.", "A kitten sleeps on a rug."]
    ids = []
    for i, t in enumerate(texts):
        m = call("POST", "/v1/memories", {"content": t, "metadata": {"category": "pets" if i != 1 else "news",
                                                                       "source": "test", "quality_score": 0.5 + i / 10}})
        assert m["object"] == "memory" and m["content"] == t and m["metadata"]["category"] in ("pets", "news")
        ids.append(m["id"])
    got = call("GET", "/v1/memories/" + ids[0])
    assert got["content"] == texts[0] and got["metadata"]["source"] == "test"
    assert np.array_equal(np.array(got["embedding"], np.float32), encode_cli(texts[:1])[0])
    # text query: the nearest by cosine of `aios encode` embeddings, computed here
    q = "A cat on a mat"
    e = encode_cli(texts + [q]).astype(np.float64)
    cos = (e[:3] @ e[3]) / (np.linalg.norm(e[:3], axis=1) * np.linalg.norm(e[3]))
    r = call("POST", "/v1/memories/search", {"query": q, "top_k": 3})
    assert [h["id"] for h in r["data"]] == [ids[i] for i in np.argsort(-cos)], (r, cos)
    assert np.allclose([h["score"] for h in r["data"]], np.sort(cos)[::-1], atol=1e-5)
    # filters and an explicit embedding
    r = call("POST", "/v1/memories/search", {"embedding": e[1].tolist(), "top_k": 5, "filters": {"category": "pets"}})
    assert sorted(h["id"] for h in r["data"]) == sorted([ids[0], ids[2]]), r
    r = call("POST", "/v1/memories/search", {"query": q, "filters": {"min_quality": 0.65}})
    assert [h["id"] for h in r["data"]] == [ids[2]], r
    # an explicit id, then delete
    m = call("POST", "/v1/memories", {"id": "fixed-1", "text": "explicit id", "embedding": e[0].tolist()})
    assert m["id"] == "fixed-1" and m["metadata"] is None
    call("POST", "/v1/memories", {"id": "fixed-1", "text": "again", "embedding": e[0].tolist()}, status=409)
    d = call("DELETE", "/v1/memories/" + ids[0])
    assert d == {"id": ids[0], "object": "memory.deleted", "deleted": True}
    call("GET", "/v1/memories/" + ids[0], status=404)
    call("DELETE", "/v1/memories/" + ids[0], status=404)
    r = call("POST", "/v1/memories/search", {"query": q, "top_k": 10})
    assert ids[0] not in [h["id"] for h in r["data"]]


@test
def diffuse_matches_reference_goldens():
    """llada-tiny's goldens were made by the reference LLaDA sampler (fixtures/make_fixtures.py)."""
    runs = json.load(open(os.path.join(LLADA, "diffusion_golden.json")))["runs"]
    for r in runs:
        body = {"model": "llada-tiny", "prompt_ids": r["prompt_ids"], "gen_length": r["gen_length"],
                "steps": r["steps"], "block_length": r["block_length"], "stop_at_eos": False}
        if r["suffix_ids"]:
            body["suffix_ids"] = r["suffix_ids"]
        out = call("POST", "/v1/diffuse", body)
        assert out["object"] == "diffusion" and out["canvas"] == r["output_ids"], (out, r["output_ids"])
        n = len(r["prompt_ids"])
        assert out["ids"] == r["output_ids"][n:n + r["gen_length"]]
        assert out["usage"]["completion_tokens"] == r["gen_length"] and 0 <= out["uncertainty"] <= 1
    for bad, param in (({"prompt_ids": [1], "gen_length": 0}, "gen_length"), ({"prompt_ids": [1], "algorithm": "x"}, "algorithm"),
                       ({"prompt": "text"}, "prompt"), ({"gen_length": 4}, "prompt")):
        st, _, payload = request("POST", "/v1/diffuse", bad)
        assert st == 400 and json.loads(payload)["error"]["param"] == param, (bad, st, payload)
    st, _, payload = request("POST", "/v1/diffuse", {"prompt_ids": [1, 5000]})  # outside the vocabulary
    assert st == 400, (st, payload)


@test
def bad_requests_get_openai_errors():
    cases = [
        ("POST", "/v1/embeddings", '{"input": ', 400, None),
        ("POST", "/v1/embeddings", '[1,2]', 400, None),
        ("POST", "/v1/embeddings", '{"input": 3}', 400, "input"),
        ("POST", "/v1/embeddings", '{"input": []}', 400, "input"),
        ("POST", "/v1/embeddings", '{"input": [[1, -5]]}', 400, "input"),
        ("POST", "/v1/embeddings", '{"input": [[1, 99999999]]}', 400, None),  # id outside the vocabulary
        ("POST", "/v1/embeddings", '{"input": "x", "model": "nope"}', 404, "model"),
        ("POST", "/v1/completions", '{"prompt": "x", "max_tokens": 0}', 400, "max_tokens"),
        ("POST", "/v1/completions", '{"prompt": "x", "max_tokens": 2.5}', 400, "max_tokens"),
        ("POST", "/v1/completions", '{"prompt": "x", "temperature": "hot"}', 400, "temperature"),
        ("POST", "/v1/completions", '{"prompt": "x", "top_p": 0}', 400, "top_p"),
        ("POST", "/v1/completions", '{"prompt": "x", "stop": [1]}', 400, "stop"),
        ("POST", "/v1/completions", '{"prompt": "x", "stream": "yes"}', 400, "stream"),
        ("POST", "/v1/completions", '{"prompt": "x", "n": 2}', 400, "n"),
        ("POST", "/v1/completions", '{"max_tokens": 3}', 400, "prompt"),
        ("POST", "/v1/completions", '{"prompt": [1, 100000]}', 400, None),  # id outside the vocabulary
        ("POST", "/v1/completions", '{"prompt": "x", "model": "gpt-4"}', 404, "model"),
        ("POST", "/v1/chat/completions", '{"messages": [{"role": "wizard", "content": "x"}]}', 400, "messages"),
        ("POST", "/v1/chat/completions", '{"messages": [{"role": "user"}]}', 400, "messages"),
        ("POST", "/v1/chat/completions", '{"messages": "hi"}', 400, "messages"),
        ("POST", "/v1/memories", '{"metadata": {}}', 400, "content"),
        ("POST", "/v1/memories", '{"content": "x", "embedding": [1, 2]}', 400, None),  # wrong dimension
        ("POST", "/v1/memories", '{"content": "x", "embedding": ["a"]}', 400, "embedding"),
        ("POST", "/v1/memories/search", '{"top_k": 3}', 400, "query"),
        ("POST", "/v1/memories/search", '{"query": "x", "top_k": -1}', 400, "top_k"),
        ("GET", "/v1/memories/no-such-id", None, 404, "id"),
        ("GET", "/v1/nothing", None, 404, None),
        ("GET", "/v1/embeddings", None, 405, None),
        ("DELETE", "/health", None, 405, None),
    ]
    for method, path, raw, status, param in cases:
        st, ctype, payload = request(method, path, raw=raw)
        assert st == status, (method, path, raw, st, payload)
        err = json.loads(payload)["error"]
        assert isinstance(err["message"], str) and err["message"] and err["type"] and "code" in err, err
        if param:
            assert err["param"] == param, (raw, err)
    # a body over the 16 MiB limit is refused, and the server still answers afterwards
    st, _, payload = request("POST", "/v1/embeddings", raw="[" + "1," * (9 << 20) + "1]", timeout=120)
    assert st == 413, (st, payload[:200])
    assert call("GET", "/health")["status"] == "ok"


@test
def cli_usage_errors():
    assert "usage: aios serve" in aios("serve", "--help").stdout
    assert "--embedding-int8-act" in aios("serve", "--help").stdout
    for args in (["--port", "99999", "--model", STORIES], ["--bogus", "x"], ["--port"], [],
                 ["--embedding-model", TINY, "--embedding-int8-act", "maybe"]):
        p = aios("serve", *args, check=False)
        assert p.returncode == 2 and p.stderr.startswith("aios: serve:"), (args, p.returncode, p.stderr)
    p = aios("serve", "--port", "0", "--model", os.path.join(TMP, "no-such-model"), check=False)
    assert p.returncode == 1 and p.stderr.startswith("aios: serve:"), p.stderr
    p = aios("serve", "--host", "example.com", "--store", os.path.join(TMP, "s2"), check=False)
    assert p.returncode == 1 and "numeric" in p.stderr, p.stderr


@test
def concurrent_requests_and_clean_stop():
    errors = []
    want = encode_cli([f"text {k} {i}" for k in range(4) for i in range(5)])
    greedy = call("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 5, "temperature": 0})["choices"][0]["text"]

    def worker(k):
        try:
            for i in range(5):
                r = call("POST", "/v1/embeddings", {"input": f"text {k} {i}"})
                # one text alone vs the CLI's batch of 20: the batch runs through the packed GEMM,
                # a different float32 summation order than the few-row kernels
                got = np.array(r["data"][0]["embedding"], np.float32)
                assert np.abs(got - want[k * 5 + i]).max() < 2e-6, np.abs(got - want[k * 5 + i]).max()
                r = call("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 5, "temperature": 0})
                assert r["choices"][0]["text"] == greedy, r
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, [repr(e) for e in errors]
    # a client that leaves mid-stream does not wedge the model
    c = http.client.HTTPConnection("127.0.0.1", server(), timeout=30)
    c.request("POST", "/v1/completions", body=json.dumps({"prompt": [1], "max_tokens": 200, "stream": True}))
    c.getresponse().readline()
    c.close()
    r = call("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 3, "temperature": 0})
    assert r["choices"][0]["text"]
    p = _srv.pop("proc")
    _srv.clear()
    p.terminate()
    assert p.wait(30) == 0, p.stderr.read()


if __name__ == "__main__":
    try:
        run()
    finally:
        if "proc" in _srv:
            _srv["proc"].kill()
