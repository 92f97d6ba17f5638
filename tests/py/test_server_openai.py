"""`aios serve` OpenAI surface on a real (tiny) Hugging Face Llama (fixtures/models-lm/smollm2-tiny):
`logprobs` / `top_logprobs` on /v1/completions and /v1/chat/completions equal the log-softmax of a
float64 reference forward along the generated sequence (tests/py/diffuse_ref.py, first checked
against the fixture's golden logits made by transformers; the venv's torch is too old for this
transformers), in OpenAI's shapes as the official SDK parses them, streamed and not; LoRA adapters
on the server (`--adapter`, GET/POST/DELETE /v1/adapters, the per-request `adapters` field)
generate what that reference generates with the LoRA delta merged into its weights (PEFT's
W + scale * alpha/r * B A)."""
import http.client
import json
import os
import select
import subprocess
import time

import numpy as np

from harness import AIOS, SHARED, TMP, Skip, aios, run, test

LM = os.path.join(SHARED, "fixtures", "models-lm", "smollm2-tiny")
_srv = {}


def start(*extra):
    if not os.path.exists(AIOS):
        raise Skip("aios not built")
    if not os.path.isdir(LM):
        raise Skip(f"{LM} not found")
    p = subprocess.Popen([AIOS, "serve", "--port", "0", "--model", LM, "--threads", "1", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r, _, _ = select.select([p.stdout], [], [], 30)
    line = p.stdout.readline() if r else ""
    if not line.startswith("aios: serving on http://127.0.0.1:"):
        p.kill()
        raise AssertionError(f"server did not start: {line!r} {p.stderr.read()}")
    return p, int(line.rsplit(":", 1)[1])


def server():
    if "port" not in _srv:
        _srv["proc"], _srv["port"] = start("--adapter-dir", adapter_root())
    return _srv["port"]


def call(method, path, body=None, status=200, port=None):
    c = http.client.HTTPConnection("127.0.0.1", port or server(), timeout=120)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    payload = r.read()
    c.close()
    assert r.status == status, (r.status, payload[:600])
    return json.loads(payload)


def stream(path, body):
    c = http.client.HTTPConnection("127.0.0.1", server(), timeout=120)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, r.status
    ev = []
    while True:
        line = r.readline().decode()
        if not line:
            break
        line = line.strip()
        if line == "data: [DONE]":
            break
        if line.startswith("data: "):
            ev.append(json.loads(line[6:]))
    c.close()
    return ev


def golden():
    from safetensors.numpy import load_file
    g = load_file(os.path.join(LM, "golden.safetensors"))
    return json.load(open(os.path.join(LM, "golden.json"))), g


_ref = {}


def ref_model():
    """float64 numpy Llama forward (tests/py/diffuse_ref.py), trusted only after its logits equal
    the fixture's golden logits, which transformers made."""
    if "m" not in _ref:
        import diffuse_ref
        m = diffuse_ref.Decoder(LM)
        _, g = golden()
        ids = [int(x) for x in g["prompt_ids"]]
        L = len(ids)
        lg = m.logits(ids, np.arange(L), np.tril(np.ones((L, L), bool)))
        assert np.abs(lg - g["logits"]).max() < 1e-3, np.abs(lg - g["logits"]).max()
        _ref["m"] = m
    return _ref["m"]


def ref_logprobs(ids, model=None):
    """log-softmax of the reference logits: row i is the distribution of token i+1."""
    L = len(ids)
    lg = (model or ref_model()).logits(ids, np.arange(L), np.tril(np.ones((L, L), bool))).astype(np.float64)
    mx = lg.max(-1, keepdims=True)
    return lg - mx - np.log(np.exp(lg - mx).sum(-1, keepdims=True))


def tokenizer():
    from tokenizers import Tokenizer
    return Tokenizer.from_file(os.path.join(LM, "tokenizer.json"))


def check_top(entries, ref_row, tok, n, tol):
    """entries: [(token string, logprob)] most probable first; ref_row: reference log-probs."""
    order = np.argsort(-ref_row, kind="stable")
    assert len(entries) == n, (len(entries), n)
    want = ref_row[order[:n]]
    got = np.array([lp for _, lp in entries])
    assert np.allclose(got, want, atol=tol), (got, want)
    for k, (s, lp) in enumerate(entries):  # rank k's token is the reference's rank k unless they tie within tol
        if k + 1 < len(order) and abs(ref_row[order[k]] - ref_row[order[k + 1]]) > 2 * tol and \
                (k == 0 or abs(ref_row[order[k]] - ref_row[order[k - 1]]) > 2 * tol):
            assert s == tok.decode([int(order[k])]), (k, s, tok.decode([int(order[k])]))


TOL = 2e-3  # float32 forward of bf16 weights, ours vs PyTorch's


@test
def completion_logprobs_equal_transformers():
    meta, g = golden()
    prompt = [int(x) for x in g["prompt_ids"]]
    greedy = [int(x) for x in g["greedy_ids"]]
    n_new = len(greedy) - len(prompt)
    r = call("POST", "/v1/completions", {"prompt": prompt, "max_tokens": n_new, "temperature": 0,
                                         "ignore_eos": True, "logprobs": 5})
    ch = r["choices"][0]
    assert ch["text"] == meta["greedy_text"], ch["text"]
    lp = ch["logprobs"]
    tok = tokenizer()
    assert lp["tokens"] == [tok.decode([i]) for i in greedy[len(prompt):]], lp["tokens"]
    ref = ref_logprobs(greedy)
    want = np.array([ref[len(prompt) - 1 + k, greedy[len(prompt) + k]] for k in range(n_new)])
    got = np.array(lp["token_logprobs"], np.float64)
    assert got.shape == want.shape and np.allclose(got, want, atol=TOL), np.abs(got - want).max()
    # the fixture's golden logits (made by transformers when the fixture was) for the first step
    gl = g["logits"][-1].astype(np.float64)
    first = gl[greedy[len(prompt)]] - (gl.max() + np.log(np.exp(gl - gl.max()).sum()))
    assert abs(got[0] - first) < TOL, (got[0], first)
    for k, d in enumerate(lp["top_logprobs"]):
        entries = sorted(d.items(), key=lambda kv: -kv[1])
        check_top(entries, ref[len(prompt) - 1 + k], tok, 5, TOL)
        assert max(d.values()) >= lp["token_logprobs"][k] - 1e-6  # greedy: the chosen is the top one
    # logprobs 0: the chosen token's only; absent: null
    r0 = call("POST", "/v1/completions", {"prompt": prompt, "max_tokens": 3, "temperature": 0, "logprobs": 0})
    assert r0["choices"][0]["logprobs"]["top_logprobs"] == [None] * 3, r0
    assert np.allclose(r0["choices"][0]["logprobs"]["token_logprobs"], got[:3], atol=1e-6)
    assert call("POST", "/v1/completions", {"prompt": prompt, "max_tokens": 3})["choices"][0]["logprobs"] is None
    # sampled: the log-probabilities are the model's, of the token that was drawn
    rs = call("POST", "/v1/completions", {"prompt": prompt, "max_tokens": 6, "temperature": 1.3, "seed": 7,
                                          "logprobs": 1, "ignore_eos": True})
    text = rs["choices"][0]["text"]
    ids = prompt + tok.encode(text, add_special_tokens=False).ids
    if len(ids) == len(prompt) + 6:  # the text re-tokenizes to the sampled ids (else skip this part)
        ref_s = ref_logprobs(ids)
        want_s = [ref_s[len(prompt) - 1 + k, ids[len(prompt) + k]] for k in range(6)]
        assert np.allclose(rs["choices"][0]["logprobs"]["token_logprobs"], want_s, atol=TOL)


@test
def chat_logprobs_through_the_sdk_streamed_and_not():
    try:
        from openai import OpenAI
    except ImportError:
        raise Skip("openai not installed")
    meta, g = golden()
    client = OpenAI(base_url=f"http://127.0.0.1:{server()}/v1", api_key="unused")
    tok = tokenizer()
    content = meta["prompt"]
    # the tokenizer's specials name the chatml template (docs/generate.md)
    prompt = tok.encode(f"<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n").ids
    r = client.chat.completions.create(model="smollm2-tiny", messages=[{"role": "user", "content": content}],
                                       max_tokens=8, temperature=0, logprobs=True, top_logprobs=3)
    assert r.usage.prompt_tokens == len(prompt), r.usage
    lc = r.choices[0].logprobs.content
    assert len(lc) == r.usage.completion_tokens == 8
    assert "".join(e.token for e in lc) == r.choices[0].message.content
    ids = prompt + merged_greedy(prompt, 8, [])  # the reference's greedy continuation
    assert [e.token for e in lc] == [tok.decode([i]) for i in ids[len(prompt):]], lc
    ref = ref_logprobs(ids)
    for k, e in enumerate(lc):
        assert abs(e.logprob - ref[len(prompt) - 1 + k, ids[len(prompt) + k]]) < TOL, (k, e.logprob)
        assert bytes(e.bytes) == e.token.encode()
        check_top([(t.token, t.logprob) for t in e.top_logprobs], ref[len(prompt) - 1 + k], tok, 3, TOL)
    # streamed: every token's entry comes exactly once, equal to the non-streamed ones
    got = []
    for chunk in client.chat.completions.create(model="smollm2-tiny", messages=[{"role": "user", "content": content}],
                                                max_tokens=8, temperature=0, logprobs=True, top_logprobs=3,
                                                stream=True):
        for c in chunk.choices:
            if c.logprobs and c.logprobs.content:
                got.extend(c.logprobs.content)
    assert [(e.token, round(e.logprob, 5)) for e in got] == [(e.token, round(e.logprob, 5)) for e in lc]
    # completions streamed too: the same entries as unstreamed
    body = {"prompt": content, "max_tokens": 8, "temperature": 0, "logprobs": 2}
    ev = stream("/v1/completions", dict(body, stream=True))
    toks = [t for e in ev for c in e.get("choices", []) if c.get("logprobs") for t in c["logprobs"]["tokens"]]
    lps = [t for e in ev for c in e.get("choices", []) if c.get("logprobs") for t in c["logprobs"]["token_logprobs"]]
    whole = call("POST", "/v1/completions", body)["choices"][0]["logprobs"]
    # (to 5 decimals as above: the second request reuses the first one's prompt K/V and recomputes
    # the last prompt token alone, a one-row product whose sums differ from the prefill's in the
    # last float bits — docs/server.md, prompt-prefix reuse)
    assert toks == whole["tokens"], (toks, whole)
    assert [round(v, 5) for v in lps] == [round(v, 5) for v in whole["token_logprobs"]], (lps, whole)
    # the SDK's completions parse the legacy shape
    rc = client.completions.create(model="smollm2-tiny", prompt=content, max_tokens=4, temperature=0, logprobs=2)
    assert rc.choices[0].logprobs.tokens == toks[:4] and len(rc.choices[0].logprobs.top_logprobs[0]) == 2, rc


@test
def logprob_fields_are_validated():
    bad = [("/v1/completions", {"prompt": "a", "logprobs": 21}, "logprobs"),
           ("/v1/completions", {"prompt": "a", "logprobs": True}, "logprobs"),
           ("/v1/completions", {"prompt": "a", "top_logprobs": 2}, "top_logprobs"),
           ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}], "logprobs": 3}, "logprobs"),
           ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}], "top_logprobs": 2},
            "top_logprobs"),
           ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}], "logprobs": True,
                                     "top_logprobs": 21}, "top_logprobs")]
    for path, body, param in bad:
        e = call("POST", path, body, status=400)["error"]
        assert e["param"] == param, (body, e)
    ok = call("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}], "max_tokens": 2,
                                                "logprobs": False})
    assert ok["choices"][0]["logprobs"] is None


# ---- adapters ------------------------------------------------------------------------------

def adapter_root():
    d = os.path.join(TMP, "adapters")
    os.makedirs(d, exist_ok=True)
    return d


def make_adapter(name, seed, targets=("q_proj", "v_proj", "down_proj"), r=4, alpha=8):
    """A PEFT-layout LoRA adapter (adapter_config.json + adapter_model.safetensors) with random A
    and B (B nonzero, so it changes the output); returns (dir, {weight name: (A, B)}, alpha / r)."""
    from safetensors.numpy import save_file
    d = os.path.join(adapter_root(), name)
    os.makedirs(d, exist_ok=True)
    m = ref_model()
    rng = np.random.default_rng(seed)
    t, pairs = {}, {}
    for li in range(m.nl):
        for tgt in targets:
            part = "mlp" if tgt in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            wname = f"model.layers.{li}.{part}.{tgt}.weight"
            out_f, in_f = m.W[wname].shape
            a = (rng.standard_normal((r, in_f)) * 0.5).astype(np.float32)
            b = (rng.standard_normal((out_f, r)) * 0.5).astype(np.float32)
            t[f"base_model.model.model.layers.{li}.{part}.{tgt}.lora_A.weight"] = a
            t[f"base_model.model.model.layers.{li}.{part}.{tgt}.lora_B.weight"] = b
            pairs[wname] = (a, b)
    save_file(t, os.path.join(d, "adapter_model.safetensors"))
    json.dump({"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": list(targets),
               "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "task_type": "CAUSAL_LM"},
              open(os.path.join(d, "adapter_config.json"), "w"))
    return d, pairs, alpha / r


def merged_greedy(prompt, n_new, adapters):
    """The reference's greedy ids with W + sum(scale * alpha/r * B A) merged (PEFT's definition)."""
    import copy
    m = copy.copy(ref_model())
    m.W = dict(m.W)
    for pairs, ar, scale in adapters:
        for wname, (a, b) in pairs.items():
            m.W[wname] = m.W[wname] + scale * ar * (b.astype(np.float64) @ a.astype(np.float64))
    ids = list(prompt)
    for _ in range(n_new):
        ids.append(int(np.argmax(ref_logprobs(ids, m)[-1])))
    return ids[len(prompt):]


def completion_ids(body, port=None):
    tok = tokenizer()
    r = call("POST", "/v1/completions", dict(body, temperature=0, ignore_eos=True), port=port)
    return tok.encode(r["choices"][0]["text"], add_special_tokens=False).ids, r


@test
def adapters_load_scale_select_and_unload():
    meta, g = golden()
    prompt = [int(x) for x in g["prompt_ids"]]
    n = 8
    server()
    da, ta, ara = make_adapter("tone", 1)
    db, tb, arb = make_adapter("style", 2, targets=("q_proj", "o_proj", "up_proj"))
    base = merged_greedy(prompt, n, [])
    assert call("GET", "/v1/adapters")["data"] == []
    got, r = completion_ids({"prompt": prompt, "max_tokens": n})
    assert got == base and "adapters" not in r, (got, base)
    # load: a path inside --adapter-dir
    a = call("POST", "/v1/adapters", {"path": "tone", "scale": 0.5})
    assert a["id"] == "tone" and a["object"] == "adapter" and a["scale"] == 0.5, a
    call("POST", "/v1/adapters", {"path": db, "name": "style"})
    lst = call("GET", "/v1/adapters")["data"]
    assert [(x["id"], x["scale"]) for x in lst] == [("tone", 0.5), ("style", 1.0)], lst
    # default: every loaded adapter at its scale
    want = merged_greedy(prompt, n, [(ta, ara, 0.5), (tb, arb, 1.0)])
    assert want != base
    got, r = completion_ids({"prompt": prompt, "max_tokens": n})
    assert got == want and r["adapters"] == [{"name": "tone", "scale": 0.5}, {"name": "style", "scale": 1.0}], r
    # per request: only the named ones, at the request's scales; [] = the bare model
    want1 = merged_greedy(prompt, n, [(ta, ara, 2.0)])
    got, r = completion_ids({"prompt": prompt, "max_tokens": n, "adapters": [{"name": "tone", "scale": 2.0}]})
    assert got == want1 and r["adapters"] == [{"name": "tone", "scale": 2.0}], r
    got, r = completion_ids({"prompt": prompt, "max_tokens": n, "adapters": []})
    assert got == base and r["adapters"] == [], r
    # and the next default request is back to the loaded scales (the cache did not leak across)
    got, _ = completion_ids({"prompt": prompt, "max_tokens": n})
    assert got == want
    # chat, streamed: the extension field rides on the last chunk
    ev = stream("/v1/chat/completions", {"messages": [{"role": "user", "content": meta["prompt"]}], "max_tokens": 4,
                                         "temperature": 0, "adapters": [{"name": "style"}], "stream": True})
    assert ev[-1]["adapters"] == [{"name": "style", "scale": 1.0}], ev[-1]
    # rescale, then unload
    assert call("POST", "/v1/adapters", {"name": "tone", "scale": 1.5})["scale"] == 1.5
    call("DELETE", "/v1/adapters/style")
    got, r = completion_ids({"prompt": prompt, "max_tokens": n})
    assert got == merged_greedy(prompt, n, [(ta, ara, 1.5)]) and r["adapters"] == [{"name": "tone", "scale": 1.5}]
    # errors name the field
    e = call("POST", "/v1/completions", {"prompt": prompt, "adapters": [{"name": "style"}]}, status=404)["error"]
    assert e["param"] == "adapters" and "style" in e["message"], e
    assert call("POST", "/v1/adapters", {"path": "tone"}, status=409)["error"]["param"] == "name"
    assert call("POST", "/v1/adapters", {"path": "/etc"}, status=403)["error"]["param"] == "path"
    assert call("POST", "/v1/adapters", {"path": "../x"}, status=403)["error"]["param"] == "path"
    assert call("POST", "/v1/adapters", {"path": "missing"}, status=400)["error"]["param"] == "path"
    assert call("DELETE", "/v1/adapters/nope", status=404)["error"]["code"] == "not_found"
    for body, param in [({"adapters": {"name": "tone"}}, "adapters"), ({"adapters": [{"name": "tone", "x": 1}]}, "adapters"),
                        ({"adapters": [{"name": "tone", "scale": 1e9}]}, "adapters"),
                        ({"adapters": [{"name": "tone"}, {"name": "tone"}]}, "adapters")]:
        assert call("POST", "/v1/completions", dict(body, prompt="a"), status=400)["error"]["param"] == param
    call("DELETE", "/v1/adapters/tone")
    assert call("GET", "/v1/adapters")["data"] == []


@test
def serve_adapter_option_and_no_loading_without_adapter_dir():
    meta, g = golden()
    prompt = [int(x) for x in g["prompt_ids"]]
    server()
    da, ta, ara = make_adapter("cli", 3)
    p, port = start("--adapter", da + ":0.75")
    try:
        lst = call("GET", "/v1/adapters", port=port)["data"]
        assert [(x["id"], x["scale"]) for x in lst] == [("cli", 0.75)], lst
        got, r = completion_ids({"prompt": prompt, "max_tokens": 6}, port=port)
        assert got == merged_greedy(prompt, 6, [(ta, ara, 0.75)]), got
        # the same text as `aios generate --adapter`
        cli = aios("generate", "--model", LM, "--prompt-ids", ",".join(map(str, prompt)), "--max-tokens", 6,
                   "--temperature", 0, "--ignore-eos", "--adapter", da + ":0.75", check=False)
        if cli.returncode == 0:
            assert cli.stdout.rstrip("\n") == r["choices"][0]["text"], (cli.stdout, r)
        e = call("POST", "/v1/adapters", {"path": da, "name": "x"}, status=403, port=port)["error"]
        assert "--adapter-dir" in e["message"], e
        assert call("POST", "/v1/adapters", {"name": "cli", "scale": 0.0}, port=port)["scale"] == 0.0
        got, r = completion_ids({"prompt": prompt, "max_tokens": 6}, port=port)
        assert got == merged_greedy(prompt, 6, []) and r["adapters"] == [], r
    finally:
        p.terminate()
        p.wait(10)


def raw_http(data, port):
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(data)
    out = b""
    while True:
        try:
            c = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not c:
            break
        out += c
    s.close()
    return out


@test
def oversized_headers_get_a_json_431():
    port = server()
    for size in (20000, 100000):
        out = raw_http(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: " + b"a" * size +
                       b"\r\n\r\n", port)
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 ") and out.count(b"HTTP/1.1 ") == 1, (size, out[:300])
        assert b"application/json" in head.lower(), head
        assert json.loads(body)["error"]["code"] == "request_header_fields_too_large", body
    # a header block of normal size still passes
    assert b"200 OK" in raw_http(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-A: " +
                                 b"a" * 8000 + b"\r\n\r\n", port)


@test
def broken_header_blocks_get_json_errors():
    """What libmicrohttpd answered with its own HTML page (status line twice), took silently (two
    different Content-Lengths) or hung on (an unknown Transfer-Encoding) gets one JSON error."""
    port = server()
    h = b"POST /v1/embeddings HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    cases = [
        (h + b"Content-Length: abc\r\n\r\n{}", 400, "invalid_content_length"),
        (h + b"Content-Length: -1\r\n\r\n{}", 400, "invalid_content_length"),
        (h + b"Content-Length: 1 2\r\n\r\n{}", 400, "invalid_content_length"),
        (h + b"Content-Length: 99999999999999999999999\r\n\r\n{}", 413, "request_too_large"),
        (h + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "invalid_content_length"),
        (h + b"Transfer-Encoding: gzip\r\n\r\n{}", 501, "unsupported_transfer_encoding"),
        (h + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}", 400, "invalid_content_length"),
        (b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "invalid_host"),
        (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "invalid_host"),
        (b"GARBAGE\r\n\r\n", 400, "invalid_request"),
        (b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 400000 + b"\r\n\r\n", 431,
         "request_header_fields_too_large"),
        (b"GET /" + b"a" * 300000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, "uri_too_long"),
    ]
    for data, status, code in cases:
        out = raw_http(data, port)
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status) and out.count(b"HTTP/1.1 ") == 1, (data[:80], out[:300])
        assert b"application/json" in head.lower(), head
        assert json.loads(body)["error"]["code"] == code, (data[:80], body)
    # a header block that arrives in pieces is waited for, then judged (or passed) the same way
    import socket
    for tail, want in ((b"st: localhost\r\nConnection: close\r\n\r\n", b"HTTP/1.1 200 "),
                       (b"st: localhost\r\nContent-Length: x\r\n\r\n", b"HTTP/1.1 400 ")):
        c = socket.create_connection(("127.0.0.1", port), timeout=30)
        c.sendall(b"GET /health HTTP/1.1\r\nHo")
        time.sleep(0.3)
        c.sendall(tail)
        out = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            out += d
        c.close()
        assert out.startswith(want) and out.count(b"HTTP/1.1 ") == 1, out[:300]
    # HTTP/1.0 needs no Host; a kept-alive connection serves several requests
    assert b"200 OK" in raw_http(b"GET /health HTTP/1.0\r\n\r\n", port)
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    for _ in range(3):
        c.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        d = c.recv(65536)
        assert d.startswith(b"HTTP/1.1 200 "), d[:200]
    c.close()
    # past the first request of a kept-alive connection: the same JSON errors, not the daemon's
    # page (each case: a good request, its answer read, then the broken one on the same socket)
    def after_one(broken):
        c = socket.create_connection(("127.0.0.1", port), timeout=30)
        c.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        d = c.recv(65536)
        assert d.startswith(b"HTTP/1.1 200 "), d[:200]
        post = b'{"prompt": "hi", "max_tokens": 1}'
        c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(post) + post)  # a body counted in too
        d = b""
        while b"\r\n\r\n" not in d or not d.rstrip().endswith(b"}"):
            d += c.recv(65536)
        assert d.startswith(b"HTTP/1.1 200 "), d[:200]
        time.sleep(0.05)
        c.sendall(broken)
        out = b""
        while True:
            try:
                x = c.recv(65536)
            except ConnectionResetError:
                break
            if not x:
                break
            out += x
        c.close()
        return out
    for data, status, code in cases:
        out = after_one(data)
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status) and out.count(b"HTTP/1.1 ") == 1, ("keep-alive", data[:80], out[:300])
        assert b"application/json" in head.lower(), head
        assert json.loads(body)["error"]["code"] == code, ("keep-alive", data[:80], body)


if __name__ == "__main__":
    try:
        run()
    finally:
        if "proc" in _srv:
            _srv["proc"].terminate()
            _srv["proc"].wait(10)
