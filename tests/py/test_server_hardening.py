"""Issue #16: `aios serve` and the command as a new user and an attacker find them.  Each test
is a finding of the issue that failed before the fix.  Servers run on loopback ports picked by
the kernel; answers are judged by the official OpenAI SDK (PyPI `openai`), by `aios encode` /
`aios generate`, and by the `tokenizers` package (the reference for token counts)."""
import base64
import json
import os
import re
import socket
import subprocess
import threading
import time

import numpy as np

from harness import AIOS, SHARED, TMP, Skip, aios, cpu_has_vnni, run, test
from bert_ref import minilm_dir
from serve_ref import Server

STORIES = os.path.join(SHARED, "models", "stories260K")
TINY = os.path.join(SHARED, "fixtures", "models", "bert-tiny")
LLADA = os.path.join(SHARED, "fixtures", "models", "llada-tiny")


def need(*dirs):
    for d in dirs:
        if not d or not os.path.isdir(d):
            raise Skip(f"{d} not found")


def encode_cli(model, texts):
    inp = "".join(json.dumps(t) + "\n" for t in texts)
    p = aios("encode", "--model", model, "--jsonl", "--quiet", input=inp)
    return np.array([json.loads(l)["embedding"] for l in p.stdout.splitlines()], np.float32)


# ---- bugs ----------------------------------------------------------------------------------

@test
def thread_counts_are_range_checked():
    """`aios encode --threads 100000` and AIOS_THREADS=100000 segfaulted inside OpenMP."""
    m = minilm_dir()
    need(m)
    for cmd in (["encode", "--model", m, "x"], ["generate", "--model", STORIES, "--prompt", "x"],
                ["serve", "--store", os.path.join(TMP, "t-store")]):
        for bad in ("100000", "0", "-3", "2.5", "nan"):
            p = aios(cmd[0], "--threads", bad, *cmd[1:], check=False)
            assert p.returncode == 2, (cmd, bad, p.returncode, p.stderr)
            assert p.stderr == f"aios: {cmd[0]}: --threads: expected an integer in [1, 1024], got '{bad}'\n", p.stderr
    text = "A man is playing a guitar while the sun sets over the quiet harbour town."
    want = encode_cli(m, [text])
    for env in ("100000", "abc", "-1", "1024"):
        p = aios("encode", "--model", m, "--jsonl", "--quiet", input=json.dumps(text) + "\n", env={"AIOS_THREADS": env},
                 check=False)
        assert p.returncode == 0, (env, p.returncode, p.stderr)
        got = np.array(json.loads(p.stdout)["embedding"], np.float32)
        assert np.allclose(got, want[0], atol=1e-5), (env, np.abs(got - want[0]).max())


@test
def sdk_embeddings_base64_float_usage_and_model_id():
    """The SDK's default encoding_format is base64 (was a 400); usage counted MiniLM's padding to
    128; the model's id was its directory's name ("model"), not its config's."""
    m = minilm_dir()
    need(m)
    want_id = json.load(open(os.path.join(m, "config.json")))["_name_or_path"]
    texts = ["Hello world.", "A man is playing a guitar.", "naïve café — ünïcödé ✓"]
    want = encode_cli(m, texts)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(m, "tokenizer.json"))
    tok.no_padding()
    n_tokens = sum(len(tok.encode(t).ids) for t in texts)
    assert n_tokens < 128 * len(texts)
    with Server("--embedding-model", m) as s:
        ids = [x["id"] for x in s.call("GET", "/v1/models")["data"]]
        assert ids == [want_id], ids
        client = s.sdk()
        r = client.embeddings.create(model=want_id, input=texts)  # the SDK asks for base64
        got = np.array([d.embedding for d in r.data], np.float32)
        assert np.array_equal(got, want), np.abs(got - want).max()
        assert r.usage.prompt_tokens == n_tokens and r.usage.total_tokens == n_tokens, r.usage
        assert r.model == want_id
        r = client.embeddings.create(model="model", input=texts, encoding_format="float")  # directory name still works
        assert np.array_equal(np.array([d.embedding for d in r.data], np.float32), want)
        # raw base64: little-endian float32, byte for byte what `aios encode` printed
        raw = s.call("POST", "/v1/embeddings", {"input": texts[1], "encoding_format": "base64"})
        b = base64.b64decode(raw["data"][0]["embedding"], validate=True)
        assert np.array_equal(np.frombuffer(b, "<f4"), want[1])
        assert s.call("POST", "/v1/embeddings", {"input": "x", "dimensions": want.shape[1]})["data"]
        s.error("POST", "/v1/embeddings", {"input": "x", "dimensions": 64}, 400, "dimensions")
        s.error("POST", "/v1/embeddings", {"input": "x", "encoding_format": "int8"}, 400, "encoding_format")
        assert s.stop() == 0
    with Server("--embedding-model", m, "--alias", "minilm") as s:
        assert [x["id"] for x in s.call("GET", "/v1/models")["data"]] == ["minilm"]
        assert s.sdk().embeddings.create(model="minilm", input="hi").model == "minilm"
        s.stop()


@test
def memories_integer_timestamps_list_and_update():
    """Timestamps came back as floats (1.79619313414325e+15); there was no list or update route."""
    need(TINY)
    with Server("--embedding-model", TINY, "--store", os.path.join(TMP, "hard-store")) as s:
        ts = 1796193134143251  # 16 digits: a double printed with 15 loses the last one
        m = s.call("POST", "/v1/memories", {"id": "t1", "content": "the cat", "timestamp": ts})
        st, _, payload = s.request("GET", "/v1/memories/t1")
        assert st == 200 and b'"timestamp":1796193134143251' in payload, payload[:300]
        assert m["timestamp"] == ts and isinstance(m["timestamp"], int)
        now = s.call("POST", "/v1/memories", {"content": "now"})
        assert isinstance(now["timestamp"], int) and abs(now["timestamp"] / 1e6 - time.time()) < 600, now
        ids = {"t1", now["id"]}
        for i in range(5):
            ids.add(s.call("POST", "/v1/memories", {"content": f"memory {i}"})["id"])
        seen, after, pages = [], None, 0
        while True:
            q = "/v1/memories?limit=3" + (f"&after={after}" if after else "")
            page = s.call("GET", q)
            assert page["object"] == "list" and len(page["data"]) <= 3
            seen += [d["id"] for d in page["data"]]
            assert all(isinstance(d["timestamp"], int) for d in page["data"])
            pages += 1
            if not page["has_more"]:
                assert page["next"] is None
                break
            after = page["next"]
        assert sorted(seen) == sorted(ids) and pages == 3, (seen, pages)
        s.error("GET", "/v1/memories?limit=0", None, 400, "limit")
        # update: the given fields change, the others stay; new content is embedded again
        u = s.call("POST", "/v1/memories/t1", {"content": "a kitten", "metadata": {"category": "pets"}})
        assert u["content"] == "a kitten" and u["metadata"]["category"] == "pets" and u["timestamp"] == ts, u
        got = s.call("GET", "/v1/memories/t1")
        assert np.array_equal(np.array(got["embedding"], np.float32), encode_cli(TINY, ["a kitten"])[0])
        u = s.call("POST", "/v1/memories/t1", {"timestamp": ts + 1})
        assert u["content"] == "a kitten" and u["timestamp"] == ts + 1
        s.error("POST", "/v1/memories/nope", {"content": "x"}, 404, "id")
        s.error("POST", "/v1/memories/t1", {"id": "other"}, 400, "id")
        assert s.stop() == 0


# ---- safe by default -----------------------------------------------------------------------

@test
def api_key_guards_everything_but_health():
    need(TINY)
    for how in ("flag", "env"):
        args, env = (["--api-key", "s3cret"], None) if how == "flag" else ([], {"AIOS_API_KEY": "s3cret"})
        with Server("--embedding-model", TINY, *args, env=env) as s:
            assert s.call("GET", "/health")["status"] == "ok"
            for hdr in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer s3cre"},
                        {"Authorization": "Bearer s3cret2"}, {"Authorization": "s3cret"}):
                err = s.error("GET", "/v1/models", None, 401, headers=hdr)
                assert err["code"] == "invalid_api_key", err
                s.error("POST", "/v1/embeddings", {"input": "x"}, 401, headers=hdr)
            assert s.call("GET", "/v1/models", headers={"Authorization": "Bearer s3cret"})["data"]
            assert s.sdk("s3cret").embeddings.create(model="bert-tiny", input="hi").data
            import openai
            try:
                s.sdk("nope").embeddings.create(model="bert-tiny", input="hi")
                raise AssertionError("a wrong key was accepted")
            except openai.AuthenticationError:
                pass
            s.stop()
    # a non-loopback bind without a key warns; with one it does not
    for args, warns in ((["--host", "0.0.0.0"], True), (["--host", "0.0.0.0", "--api-key", "k"], False)):
        with Server("--store", os.path.join(TMP, "warn-store-%d" % warns), *args) as s:
            s.stop()
            err = s.p.stderr.read()
            assert ("warning" in err and "API key" in err) == warns, err


@test
def host_check_content_type_and_cors():
    need(TINY)
    with Server("--embedding-model", TINY) as s:
        for host in ("evil.example", "evil.example:%d" % s.port, "10.0.0.1", "127.0.0.1.nip.io"):
            err = s.error("GET", "/v1/models", None, 403, headers={"Host": host})
            assert "rebinding" in err["message"], err
        for host in ("localhost:%d" % s.port, "127.0.0.1:%d" % s.port, "[::1]:%d" % s.port, "LOCALHOST"):
            assert s.call("GET", "/v1/models", headers={"Host": host})["data"], host
        s.error("POST", "/v1/embeddings", {"input": "x"}, 415, headers={"Content-Type": "text/plain"})
        s.error("POST", "/v1/embeddings", {"input": "x"}, 415, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert s.call("POST", "/v1/embeddings", {"input": "x"}, headers={"Content-Type": "application/json; charset=utf-8"})
        st, h, _ = s.request("GET", "/v1/models", headers={"Origin": "https://evil.example"})
        assert st == 200 and "access-control-allow-origin" not in h, h
        s.stop()
    with Server("--embedding-model", TINY, "--cors", "https://app.example") as s:
        st, h, _ = s.request("GET", "/v1/models", headers={"Origin": "https://app.example"})
        assert st == 200 and h.get("access-control-allow-origin") == "https://app.example", h
        st, h, _ = s.request("OPTIONS", "/v1/embeddings", headers={"Origin": "https://app.example",
                                                                    "Access-Control-Request-Method": "POST"})
        assert st == 204 and "POST" in h.get("access-control-allow-methods", "") and \
            "authorization" in h.get("access-control-allow-headers", "").lower(), (st, h)
        s.stop()


def hold_slot(port, path="/v1/embeddings"):
    """A request whose headers are in and whose body never completes: it holds a request slot."""
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              "Content-Length: 1000\r\n\r\n{\"input\":".encode())
    return c


@test
def connection_caps_give_503_and_health_answers():
    need(TINY)
    with Server("--embedding-model", TINY, "--max-per-client", "2", "--max-connections", "3", "--timeout", "3") as s:
        held = [hold_slot(s.port), hold_slot(s.port)]
        time.sleep(0.3)
        err = s.error("POST", "/v1/embeddings", {"input": "x"}, 503)
        assert err["code"] == "server_busy", err
        assert s.call("GET", "/health")["status"] == "ok"  # the slot kept for /health
        for c in held:
            c.close()
        time.sleep(0.3)
        assert s.call("POST", "/v1/embeddings", {"input": "x"})["data"]
        # a client that sends half its headers and stalls is dropped after --timeout seconds
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        c.settimeout(15)
        t0 = time.time()
        try:
            left = c.recv(100)
        except (ConnectionResetError, socket.timeout):
            left = b""
        assert left == b"" and time.time() - t0 < 10, (left, time.time() - t0)
        c.close()
        assert s.stop() == 0


@test
def bounded_work_caps_name_themselves():
    need(TINY, STORIES, LLADA)
    with Server("--embedding-model", TINY, "--model", STORIES, "--diffusion-model", LLADA, "--max-embedding-tokens", "100",
                "--max-generation-tokens", "200", "--max-diffusion-work", "1000") as s:
        err = s.error("POST", "/v1/embeddings", {"input": ["word " * 40] * 10}, 400, "input")
        assert "max_embedding_tokens" in err["message"], err
        assert s.call("POST", "/v1/embeddings", {"input": ["word"] * 10})["data"]
        err = s.error("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 250}, 400, "max_tokens")
        assert "max_generation_tokens" in err["message"], err
        s.error("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 250, "stream": True}, 400, "max_tokens")
        assert s.call("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 20})["choices"]
        err = s.error("POST", "/v1/diffuse", {"prompt_ids": [1, 2], "gen_length": 64, "steps": 64}, 400, "steps")
        assert "max_diffusion_work" in err["message"], err
        assert s.stop() == 0


@test
def sigterm_stops_within_seconds_with_requests_in_flight():
    need(STORIES)
    with Server("--model", STORIES) as s:
        idle = socket.create_connection(("127.0.0.1", s.port))  # a keep-alive connection doing nothing
        busy = hold_slot(s.port, "/v1/completions")
        results = []

        def worker():
            try:
                results.append(s.request("POST", "/v1/completions", {"prompt": [1], "max_tokens": 400, "ignore_eos": True})[0])
            except Exception as e:  # noqa: BLE001 - a reset connection is an acceptable end
                results.append(repr(e))

        ts = [threading.Thread(target=worker) for _ in range(3)]
        for t in ts:
            t.start()
        time.sleep(0.2)
        t0 = time.time()
        assert s.stop(timeout=10) == 0
        assert time.time() - t0 < 5, time.time() - t0
        for t in ts:
            t.join(10)
        idle.close()
        busy.close()


# ---- OpenAI surface ------------------------------------------------------------------------

@test
def unsupported_fields_are_refused_and_text_parts_accepted():
    need(STORIES)
    with Server("--model", STORIES) as s:
        chat = {"messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 12, "temperature": 0}
        for field, value in (("tools", [{"type": "function", "function": {"name": "f"}}]),
                             ("response_format", {"type": "json_object"}), ("tool_choice", "required"),
                             ("logit_bias", {"5": 10}), ("functions", [{"name": "f"}]),
                             ("top_logprobs", 3)):  # top_logprobs without logprobs (logprobs: test_server_openai)
            s.error("POST", "/v1/chat/completions", dict(chat, **{field: value}), 400, field)
        assert s.call("POST", "/v1/chat/completions", dict(chat, response_format={"type": "text"}, tools=[]))["choices"]
        err = s.error("POST", "/v1/chat/completions",
                      {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
                      400, "messages")
        assert "image_url" in err["message"], err
        want = s.call("POST", "/v1/chat/completions", chat)["choices"][0]["message"]["content"]
        parts = dict(chat, messages=[{"role": "user", "content": [{"type": "text", "text": "Tell me "},
                                                                  {"type": "text", "text": "a story."}]}])
        got = s.call("POST", "/v1/chat/completions", parts)["choices"][0]["message"]["content"]
        assert got == want and want, (got, want)
        # the SDK, streaming with include_usage: a last chunk with no choices and the usage
        client = s.sdk()
        chunks = list(client.chat.completions.create(model="stories260K", messages=chat["messages"], max_tokens=12,
                                                     temperature=0, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == want, (text, want)
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1, chunks[-1]
        assert all(c.usage is None for c in chunks[:-1])
        # a prompt longer than the context: the same 400 streamed or not
        long = {"prompt": "Once upon a time " * 300, "max_tokens": 4}
        e1 = s.error("POST", "/v1/completions", long, 400, "prompt")
        e2 = s.error("POST", "/v1/completions", dict(long, stream=True), 400, "prompt")
        assert e1["message"] == e2["message"] and "context" in e1["message"], (e1, e2)
        assert s.stop() == 0


# ---- the command ---------------------------------------------------------------------------

@test
def cli_errors_are_one_line_without_repeats():
    for cmd in (["generate", "--model", "/nonexistent", "--prompt", "x"], ["encode", "--model", "/nonexistent", "x"],
                ["serve", "--model", "/nonexistent"], ["inspect", "/nonexistent"]):
        p = aios(*cmd, check=False)
        lines = p.stderr.splitlines()
        assert p.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"aios: {cmd[0]}: "), (cmd, p.stderr)
        segs = lines[0].split(": ")[1:]
        assert len(segs) == len(set(segs)), (cmd, lines[0])  # no segment twice ("generate: ... generate:")
        assert "/nonexistent" in lines[0] and "no such file" in lines[0], lines[0]
    p = aios("inspect", os.path.join(STORIES, "stories260K.bin"), check=False)  # was "safetensors: header length 738734374976"
    assert p.returncode == 1 and "llama2.c checkpoint" in p.stderr and "dim 64" in p.stderr and "layers 5" in p.stderr, p.stderr
    p = aios("serve", "--embedding-model", LLADA, check=False)
    assert p.returncode == 1 and "not a BERT-family encoder" in p.stderr, p.stderr  # was "aios: serve: not found"
    for cmd in (["generate", "--model", STORIES, "--prompt", "x", "--temperature", "nan"],
                ["generate", "--model", STORIES, "--prompt", "x", "--top-p", "inf"],
                ["chat", "--model", STORIES, "--temperature", "-inf"],
                ["diffuse", "--model", LLADA, "--prompt-ids", "1", "--temperature", "nan"],
                ["memory", "add", "--store", os.path.join(TMP, "nan-store"), "--content", "x", "--embedding", "[1]",
                 "--quality", "nan"],
                ["generate", "--model", STORIES, "--prompt", "x", "--max-tokens", "2.5"]):
        p = aios(*cmd, check=False)
        assert p.returncode == 2 and p.stderr.startswith(f"aios: {cmd[0]}") and p.stderr.count("\n") == 1, (cmd, p.stderr)
    p = aios("generate", "--model", STORIES, "--prompt", "x", "--max-tokens", "99999999", check=False)
    assert "16777216" in p.stderr and "e+" not in p.stderr, p.stderr  # integers printed as integers


@test
def help_ends_with_examples_and_info_prints_the_build():
    cmds = ["info", "config", "encode", "memory", "generate", "chat", "serve", "diffuse", "tokenize", "detokenize",
            "inspect", "convert", "quantize", "parquet", "skills", "teach", "evolve"]
    for c in cmds:
        out = aios(c, "--help").stdout
        tail = out.rstrip("\n").split("\nexamples:\n")
        assert len(tail) == 2, (c, out[-300:])
        ex = tail[1].splitlines()
        assert 2 <= len(ex) <= 3 and all(l.startswith("  ") and "aios " in l for l in ex), (c, ex)
    chat = aios("chat", "--help").stdout
    for opt in ("--temperature", "--top-p", "--top-k", "--min-p", "--seed", "--max-tokens", "--repeat-penalty"):
        assert opt in chat, opt
    info = aios("info").stdout
    for key in ("kernel tier: ", "kernel threads: ", "blas: ", "openmp: ", "compiler: "):
        assert key in info, (key, info)
    tier = re.search(r"kernel tier: (\S+)", info).group(1)
    assert tier in ("ref", "avx2", "avx512", "neon"), tier
    assert "kernel tier: ref" in aios("info", env={"AIOS_KERNELS": "ref"}).stdout
    # the default activations follow the tier and AIOS_INT8_ACT (as the generator's AUTO does)
    act = re.search(r"^activations: (.*)$", aios("info", env={"AIOS_INT8_ACT": ""}).stdout, re.M).group(1)
    want = ("16-bit for quantized decoders" if tier == "avx2" else
            "16-bit for 4- / 5-bit decoders" if tier == "avx512" and cpu_has_vnni() else "exact")
    assert act.startswith(want), (tier, act)
    assert "activations: exact (AIOS_INT8_ACT)" in aios("info", env={"AIOS_INT8_ACT": "0"}).stdout


@test
def memory_add_text_on_a_fresh_store():
    need(TINY)
    store = os.path.join(TMP, "fresh-text-store")
    p = aios("memory", "add", "--store", store, "--text", "The cat sat on the mat.", "--model", TINY)
    mid = p.stdout.strip()
    got = json.loads(aios("memory", "get", mid, "--store", store).stdout)
    assert np.allclose(np.array(got["embedding"], np.float32), encode_cli(TINY, ["The cat sat on the mat."])[0], atol=1e-6)


@test
def long_input_memory_is_linear():
    """One 15 MB input reached 1.3-1.55 GB peak RSS: every token of it was kept before truncation.
    Now the text is tokenized only as far as truncation keeps; the embedding is the one of the
    reference tokenizer's truncated ids."""
    m = minilm_dir()
    need(m)
    import random
    rnd = random.Random(1)
    words = ["alpha", "beta", "gamma", "delta", "cat", "dog", "the", "house", "running", "quickly", "naïve", "café"]
    big = " ".join(rnd.choice(words) for _ in range(2_600_000))[:15_000_000]
    small = " ".join(rnd.choice(words) for _ in range(60_000))

    # ru_maxrss of each child, measured by a tiny wrapper so the numbers are per process
    def maxrss(text):
        code = ("import resource,subprocess,sys;p=subprocess.run(sys.argv[1:],input=sys.stdin.buffer.read(),"
                "capture_output=True);print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode);"
                "sys.stdout.flush();sys.stderr.buffer.write(p.stdout)")
        p = subprocess.run([os.sys.executable, "-c", code, AIOS, "encode", "--model", m, "--jsonl", "--quiet"],
                           input=(json.dumps(text) + "\n").encode(), capture_output=True)
        kb, rc = p.stdout.split()
        assert int(rc) == 0, p.stderr[-300:]
        return int(kb), np.array(json.loads(p.stderr)["embedding"], np.float32)

    base_kb, _ = maxrss("hello")
    big_kb, big_emb = maxrss(big)
    grown_mb = (big_kb - base_kb) / 1024
    assert grown_mb < 4 * 15, (base_kb, big_kb)  # linear in the input with a small constant (measured ~2x)
    # the cut changes nothing: the reference tokenizer's truncated ids give the same embedding
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(m, "tokenizer.json"))
    tok.no_padding()
    maxlen = json.load(open(os.path.join(m, "sentence_bert_config.json")))["max_seq_length"]
    tok.enable_truncation(maxlen)
    with Server("--embedding-model", m) as s:
        for text in (small, big[:3_000_000]):
            ids = tok.encode(text).ids
            r = s.call("POST", "/v1/embeddings", {"input": text})
            a = np.array(r["data"][0]["embedding"], np.float32)
            b = np.array(s.call("POST", "/v1/embeddings", {"input": [ids]})["data"][0]["embedding"], np.float32)
            assert np.allclose(a, b, atol=1e-6), np.abs(a - b).max()
            assert r["usage"]["prompt_tokens"] == len(ids) == maxlen, r["usage"]
        r = s.call("POST", "/v1/embeddings", {"input": big[:5_000_000]})
        assert np.allclose(np.array(r["data"][0]["embedding"], np.float32), big_emb, atol=1e-6)
        assert s.stop() == 0


@test
def concurrent_embeddings_are_batched_and_exact():
    """Each model ran one request at a time; now requests that arrive together are encoded as one
    batch — with the same numbers as `aios encode` of each text alone, and a bad request in the
    batch gets its own 400 while the others succeed."""
    m = minilm_dir()
    need(m)
    texts = [f"request {k}: " + " ".join(["a cat sat on the mat"] * (1 + k % 5)) for k in range(32)]
    want = encode_cli(m, texts)
    with Server("--embedding-model", m, "--max-per-client", "64") as s:
        errors, bad = [], []

        def worker(k):
            try:
                for i in range(k, len(texts), 16):
                    r = s.call("POST", "/v1/embeddings", {"input": texts[i]})
                    got = np.array(r["data"][0]["embedding"], np.float32)
                    if not np.array_equal(got, want[i]):
                        errors.append((i, float(np.abs(got - want[i]).max())))
                if k % 4 == 0:
                    bad.append(s.error("POST", "/v1/embeddings", {"input": [[101, 99999999]]}, 400)["message"])
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        for _ in range(3):
            ts = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(300)
        assert not errors, errors[:5]
        assert len(bad) == 12 and all("vocabulary" in b or "99999999" in b for b in bad), bad[:3]
        h = s.call("GET", "/health")["embedding_batches"]
        assert h["requests"] == 3 * (32 + 4) and h["batches"] < h["requests"], h  # some requests shared a batch
        assert s.stop() == 0


if __name__ == "__main__":
    run()
