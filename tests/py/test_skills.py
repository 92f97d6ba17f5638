"""The skill library, the semantic router and the answers' uncertainty, checked against references.

- index_read_by_duckdb: `aios skills add` x3 (the PEFT adapters of fixtures/real/smollm2-135m-
  instruct/arrow with the questions of data/skills) writes LIB/index.parquet that DuckDB reads;
  centroids are the mean of the L2-normalised question embeddings and description embeddings
  the description's, both computed here by the torch reference of all-MiniLM-L6-v2 (bert_ref).
- index_refuses_unknown_version, show_remove: the index's version key (rewritten by pyarrow)
  and the life cycle of a skill.
- routes_questions_and_paraphrases: the 18 training questions and a paraphrase of each
  (tests/data/skills_paraphrases.jsonl) route to their own skill.
- golden_prompts_route_to_none: the 7 chat prompts of golden.json route to no skill and give
  transformers' greedy ids (up to the first step whose golden margin is below 1e-3).
- routed_answers_use_the_skill: a routed question is answered with the skill's fact.
- uncertainty_of_first_token: entropy / top-1 probability of the first generated token equal
  float64 softmax of transformers' last-position logits (golden.safetensors).
- uncertain_answer_queued, teach_records: the learning queue and approved pairs in the store.
"""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SHARED, TMP, Skip, aios, run, test  # noqa: E402
import bert_ref  # noqa: E402
from skills_ref import ARROW, GOLDEN, SKILLS, model, need  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "data")
_cache = {}


def questions(skill):
    return [json.loads(l) for l in open(os.path.join(SHARED, "data", "skills", skill + ".jsonl"), encoding="utf-8")]


def library(name="lib"):
    if name in _cache:
        return _cache[name]
    mini = need()
    lib = os.path.join(TMP, name)
    for s in SKILLS:
        aios("skills", "add", "--skills", lib, "--adapter", os.path.join(ARROW, s), "--name", s, "--questions",
             os.path.join(SHARED, "data", "skills", s + ".jsonl"), "--model", mini)
    _cache[name] = lib
    return lib


def route(lib, prompt, *args):
    return json.loads(aios("skills", "route", "--skills", lib, "--prompt", prompt, "--jsonl", *args).stdout)


@test
def index_read_by_duckdb():
    lib = library()
    try:
        import duckdb
    except ImportError:
        raise Skip("duckdb not installed")
    rows = duckdb.sql("select name, description, description_embedding, centroid, adapter, status, n_pairs, "
                      "loss_before, created from '%s/index.parquet' order by name" % lib).fetchall()
    assert [r[0] for r in rows] == list(SKILLS), rows
    ref = bert_ref.TorchBert(bert_ref.minilm_dir())
    for (name, desc, demb, cent, adapter, status, n_pairs, loss_before, created), s in zip(rows, SKILLS):
        qa = questions(s)
        assert desc == qa[0]["skill"] and adapter == name and status == "active" and n_pairs == 6, (name, desc)
        assert loss_before is None and created is not None
        e = np.asarray(ref.encode([x["q"] for x in qa]), np.float64)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        want = e.mean(axis=0)
        assert np.abs(np.asarray(cent) - want).max() < 2e-4, (name, np.abs(np.asarray(cent) - want).max())
        d = np.asarray(ref.encode([desc])[0], np.float64)
        d /= np.linalg.norm(d)
        got = np.asarray(demb) / np.linalg.norm(demb)
        assert np.abs(got - d).max() < 2e-4, name
        assert os.path.exists(os.path.join(lib, name, "adapter_model.safetensors"))
    meta = duckdb.sql("select key, value from parquet_kv_metadata('%s/index.parquet')" % lib).fetchall()
    kv = {k.decode(): v.decode() for k, v in meta}
    assert kv["aios.skills.version"] == "1" and kv["aios.skills.dim"] == "384", kv


@test
def index_refuses_unknown_version():
    lib = library()
    import pyarrow.parquet as pq
    import shutil
    bad = os.path.join(TMP, "lib-v2")
    shutil.copytree(lib, bad)
    t = pq.read_table(os.path.join(bad, "index.parquet"))
    md = dict(t.schema.metadata or {})
    md[b"aios.skills.version"] = b"2"
    pq.write_table(t.replace_schema_metadata(md), os.path.join(bad, "index.parquet"))
    p = aios("skills", "list", "--skills", bad, check=False)
    assert p.returncode == 1 and "version 2" in p.stderr, p.stderr
    # pyarrow's rewrite of the same file, version kept, still reads
    md[b"aios.skills.version"] = b"1"
    pq.write_table(t.replace_schema_metadata(md), os.path.join(bad, "index.parquet"))
    assert "household" in aios("skills", "list", "--skills", bad).stdout


@test
def show_remove():
    mini = need()
    lib = os.path.join(TMP, "lib-rm")
    card = os.path.join(TMP, "zorbex.parquet")
    aios("lora", "convert", "--model", model(), os.path.join(ARROW, "zorbex"), card)
    src = card  # a skill card goes in as LIB/z.parquet
    aios("skills", "add", "--skills", lib, "--adapter", src, "--name", "z", "--description", "the Zorbex company",
         "--model", mini)
    p = aios("skills", "add", "--skills", lib, "--adapter", src, "--name", "z", check=False)
    assert p.returncode == 1 and "exists" in p.stderr, p.stderr
    p = aios("skills", "add", "--skills", lib, "--adapter", src, "--name", "../x", check=False)
    assert p.returncode == 2, p.stderr
    assert os.path.exists(os.path.join(lib, "z.parquet"))
    show = aios("skills", "show", "--skills", lib, "--name", "z").stdout
    assert "the Zorbex company" in show and "description only" in show, show
    # the card's LoRA settings, as PEFT's adapter_config.json gave them (lora_dropout 0.0)
    assert "lora:         alpha 16, targets q_proj,v_proj,down_proj, lora_dropout 0\n" in show, show
    # no centroid: the description routes
    assert route(lib, "Where is the office of the Zorbex company?", "--router-threshold", "0.3")["skills"][0]["name"] == "z"
    aios("skills", "remove", "--skills", lib, "--name", "z")
    assert json.loads(aios("skills", "list", "--skills", lib, "--jsonl").stdout or "null") is None
    assert not os.path.exists(os.path.join(lib, "z.parquet"))
    p = aios("skills", "remove", "--skills", lib, "--name", "z", check=False)
    assert p.returncode == 1 and "no skill" in p.stderr, p.stderr


@test
def routes_questions_and_paraphrases():
    lib = library()
    rows = [json.loads(l) for l in open(os.path.join(DATA, "skills_paraphrases.jsonl"), encoding="utf-8")]
    assert len(rows) == 18 and sorted(r["q"] for r in rows) == sorted(x["q"] for s in SKILLS for x in questions(s))
    for r in rows:
        for text in (r["q"], r["p"]):
            j = route(lib, text)
            got = [s["name"] for s in j["skills"]]
            assert got == [r["skill"]], (text, j)
            assert abs(j["skills"][0]["weight"] - 1) < 1e-12
    # top-k 2 at threshold -1: two skills, weights a softmax of score / T
    j = route(lib, rows[0]["q"], "--top-k", "2", "--router-threshold", "-1", "--router-temperature", "0.5")
    s = j["skills"]
    w = np.exp(np.array([x["score"] for x in s]) / 0.5)
    assert len(s) == 2 and np.allclose([x["weight"] for x in s], w / w.sum(), atol=1e-9), s


def golden_runs():
    if not os.path.exists(GOLDEN):
        raise Skip(f"{GOLDEN} not found")
    return [r for r in json.load(open(GOLDEN))["runs"] if r["chat"]]


@test
def golden_prompts_route_to_none():
    lib = library()
    m = model()
    runs = golden_runs()
    assert len(runs) == 7
    for k, r in enumerate(runs):
        assert route(lib, r["text"])["skills"] == [], r["text"]
        p = aios("generate", "--model", m, "--chat", "--prompt", r["text"], "--skills", lib, "--temperature", 0,
                 "--ids", "--max-tokens", 48)
        assert "[skills: none" in p.stderr, p.stderr
        ids = [int(x) for x in p.stdout.split()]
        npr = len(r["prompt_ids"])
        assert ids[:npr] == r["prompt_ids"], k
        gen, want = ids[npr:], r["greedy_ids"]
        if want and want[-1] == 2 and len(gen) < 48:
            gen = gen + [2]
        upto = next((i for i, mg in enumerate(r["top2_margins"]) if mg < 1e-3), len(want))
        assert gen[:upto] == want[:upto], (k, gen, want)


@test
def routed_answers_use_the_skill():
    lib = library()
    m = model()
    for s, qi, word in (("household", 0, "miso"), ("varnis", 4, "orrel"), ("zorbex", 4, "priya")):
        q = questions(s)[qi]["q"]
        j = json.loads(aios("generate", "--model", m, "--chat", "--prompt", q, "--skills", lib, "--temperature", 0,
                            "--max-tokens", 32, "--jsonl").stdout)
        assert [x["name"] for x in j["skills"]["skills"]] == [s], j["skills"]
        assert word in j["text"].lower(), (q, j["text"])
        # the same question without the library: the base model does not know it
        base = json.loads(aios("generate", "--model", m, "--chat", "--prompt", q, "--temperature", 0,
                               "--max-tokens", 32, "--jsonl").stdout)
        assert word not in base["text"].lower() and base["skills"]["skills"] == [], base["text"]


@test
def uncertainty_of_first_token():
    m = model()
    from safetensors.numpy import load_file
    logits = load_file(GOLDEN.replace(".json", ".safetensors"))
    runs = json.load(open(GOLDEN))["runs"]
    for k, r in enumerate(runs):
        x = logits["prompt%d.last_logits" % k].astype(np.float64)
        p = np.exp(x - x.max())
        p /= p.sum()
        h = float(-(p[p > 0] * np.log(p[p > 0])).sum())
        args = ["generate", "--model", m, "--prompt", r["text"], "--temperature", 0, "--max-tokens", 3, "--jsonl"]
        if r["chat"]:
            args.append("--chat")
        u = json.loads(aios(*args).stdout)["uncertainty"]
        assert len(u["entropy"]) >= 1 and len(u["entropy"]) == len(u["p_top1"])
        assert abs(u["entropy"][0] - h) < 2e-3 * max(1, h), (k, u["entropy"][0], h)
        assert abs(u["p_top1"][0] - p.max()) < 1e-3, (k, u["p_top1"][0], p.max())
        hm = sum(u["entropy"]) / len(u["entropy"])
        assert abs(u["score"] - hm / (1 + hm)) < 1e-6 and 0 <= u["score"] < 1, u
        lv = math.log(len(x))
        assert abs(u["mean_entropy"] - sum(e / lv for e in u["entropy"]) / len(u["entropy"])) < 1e-6


def write(name, text):
    p = os.path.join(TMP, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def store_rows(store):
    out = aios("memory", "list", "--store", store).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


@test
def uncertain_answer_queued():
    mini = need()
    m = model()
    store = os.path.join(TMP, "queue")
    q = "What is the capital city of Varnis?"
    always = write("always.yaml", "evolution:\n  uncertainty_threshold: 0.0\n")
    never = write("never.yaml", "evolution:\n  uncertainty_threshold: 1.0\n")
    # a store that records no model needs one: the library gives it
    p = aios("generate", "--model", m, "--chat", "--prompt", q, "--max-tokens", 16, "--temperature", 0, "--jsonl",
             "--learn-store", store, "--config", always, "--skills", library())
    j = json.loads(p.stdout)
    assert "queued for learning" in p.stderr and j["uncertainty"]["uncertain"] is True, p.stderr
    rows = store_rows(store)
    assert len(rows) == 1 and rows[0]["metadata"]["category"] == "learning_queue", rows
    c = json.loads(rows[0]["content"])
    assert c["question"] == q and c["answer"] == j["text"] and c["model"] == m and c["skills"] == "varnis"
    assert abs(c["score"] - j["uncertainty"]["score"]) < 1e-9
    p = aios("generate", "--model", m, "--chat", "--prompt", q, "--max-tokens", 16, "--temperature", 0,
             "--learn-store", store, "--config", never)
    assert "queued" not in p.stderr and len(store_rows(store)) == 1
    # the embedding is the question's (the store's encoder)
    hit = aios("memory", "search", "--store", store, "--text", q, "--top-k", 1).stdout.split()
    assert float(hit[1]) > 0.999 and hit[2] == rows[0]["memory_id"], hit
    # the model's own uncertain answers are never training data
    p = aios("evolve", "--store", store, "--skills", os.path.join(TMP, "lib-none"), "--model", m)
    assert "no approved pairs" in p.stderr and len(store_rows(store)) == 1, p.stderr


@test
def teach_records():
    mini = need()
    store = os.path.join(TMP, "teach")
    p = aios("teach", "--store", store, "--question", "Who?", "--answer", "Me.", check=False)
    assert p.returncode == 1 and "records no embedding model" in p.stderr, p.stderr
    aios("teach", "--store", store, "--question", "What is Ada's cat called?", "--answer", "Miso.", "--model", mini)
    f = write("pairs.jsonl", json.dumps({"q": "Q1?", "a": "A1."}) + "\n" + json.dumps({"question": "Q2?", "answer": "A2."}) + "\n")
    aios("teach", "--store", store, "--file", f)
    rows = store_rows(store)
    assert [json.loads(r["content"])["question"] for r in rows] == ["What is Ada's cat called?", "Q1?", "Q2?"]
    assert all(r["metadata"]["category"] == "approved" for r in rows)
    bad = write("bad.jsonl", json.dumps({"q": "Q3?"}) + "\n")
    p = aios("teach", "--store", store, "--file", bad, check=False)
    assert p.returncode == 1 and "bad.jsonl:1" in p.stderr, p.stderr


@test
def chat_shows_skills_and_teaches():
    mini = need()
    m = model()
    lib = library()
    store = os.path.join(TMP, "chat-teach")
    q = "What is Ada's dog called?"
    p = aios("chat", "--model", m, "--skills", lib, "--learn-store", store, "--max-tokens", 8, "--temperature", 0,
             input=q + "\n/teach Ada's dog is called Biscuit.\nWhat is the capital of France?\n/quit\n")
    assert "[skills: household" in p.stderr and "[skills: none" in p.stderr, p.stderr
    assert p.stderr.count("[uncertainty ") == 2 and "[taught: " + q in p.stderr, p.stderr
    rows = [r for r in store_rows(store) if r["metadata"]["category"] == "approved"]
    assert [json.loads(r["content"]) for r in rows] == [{"question": q, "answer": "Ada's dog is called Biscuit."}], rows


@test
def router_options():
    m = model()
    lib = library()
    # --router arrow over the library: every active skill, routed per token as PEFT's
    # create_arrow_model over the same three adapters (its greedy ids, arrow_greedy_ids)
    gold = json.load(open(os.path.join(ARROW, "arrow_golden.json")))
    probe = gold["probes"][0]
    want = probe["arrow_greedy_ids"]
    out = aios("generate", "--model", m, "--chat", "--prompt", probe["question"], "--skills", lib, "--router", "arrow",
               "--temperature", "0", "--ids", "--max-tokens", str(len(want) + 2)).stdout
    got = [int(t) for t in out.split()]
    assert got[:len(probe["prompt_ids"])] == probe["prompt_ids"], got
    got = got[len(probe["prompt_ids"]):]
    assert got == want or got == want[:-1], (got, want)
    # compose: the semantic choice, its logits mixed with the rule of docs/evolution.md
    p = aios("generate", "--model", m, "--chat", "--prompt", probe["question"], "--skills", lib, "--router",
             "compose", "--max-tokens", 4, "--temperature", "0", "--jsonl")
    sk = json.loads(p.stdout)["skills"]
    assert sk["router"] == "compose" and [x["name"] for x in sk["skills"]] == [probe["skill"]], sk
    p = aios("generate", "--model", m, "--prompt", "x", "--router", "semantic", check=False)
    assert p.returncode == 2 and "--router semantic needs --skills" in p.stderr, p.stderr
    p = aios("generate", "--model", m, "--prompt", "x", "--skills", lib, "--router", "bogus", check=False)
    assert p.returncode == 2 and "expected none, semantic, arrow or compose" in p.stderr, p.stderr
    p = aios("generate", "--model", m, "--prompt", "x", "--skills", lib, "--top-k", "17", check=False)
    assert p.returncode == 2 and "[1, 16]" in p.stderr, p.stderr
    # --router none: the library is not consulted
    p = aios("generate", "--model", m, "--chat", "--prompt", "What is Ada's dog called?", "--skills", lib, "--router",
             "none", "--max-tokens", 4, "--jsonl")
    assert json.loads(p.stdout)["skills"] == {"router": "none", "skills": []}, p.stdout



@test
def router_encoder_int8_margins():
    """The router embeds prompts with the library's encoder quantized to int8 at open (the
    default; `--router-encoder f32` keeps it as stored).  Every skill's score for the 18
    questions, their paraphrases and the 7 golden chat prompts, int8 and f32, against the torch
    reference's cosine (bert_ref, float64) to the centroids of the index (read by pyarrow): the
    int8 scores stay within 0.02 of torch's (f32 within 1e-4), and the margins to the
    threshold 0.5 are printed."""
    lib = library()
    import pyarrow.parquet as pq
    t = pq.read_table(os.path.join(lib, "index.parquet")).to_pylist()
    cent = {r["name"]: np.asarray(r["centroid"], np.float64) for r in t}
    rows = [json.loads(l) for l in open(os.path.join(DATA, "skills_paraphrases.jsonl"), encoding="utf-8")]
    texts = [(r["q"], r["skill"]) for r in rows] + [(r["p"], r["skill"]) for r in rows]
    texts += [(r["text"], None) for r in golden_runs()]
    ref = bert_ref.TorchBert(bert_ref.minilm_dir())
    e = np.asarray(ref.encode([x for x, _ in texts]), np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    want = [{n: float(v @ c / np.linalg.norm(c)) for n, c in cent.items()} for v in e]
    for enc, tol in (("int8", 0.02), ("f32", 1e-4)):
        own, other, general, worst = [], [], [], 0.0
        for (text, skill), w in zip(texts, want):
            j = route(lib, text, "--top-k", "3", "--router-threshold", "-1", "--router-encoder", enc)
            got = {x["name"]: x["score"] for x in j["skills"]}
            assert set(got) == set(cent), j
            worst = max(worst, max(abs(got[n] - w[n]) for n in got))
            if skill:
                own.append(got[skill])
                other.append(max(v for n, v in got.items() if n != skill))
            else:
                general.append(max(got.values()))
        print(f"# router encoder {enc}: own skill {min(own):.3f}-{max(own):.3f} (margin to 0.5: "
              f"{min(own) - 0.5:+.3f}), best other {max(other):.3f}, general prompts <= {max(general):.3f} "
              f"(margin {0.5 - max(general):+.3f}); max |score - torch| {worst:.4f}")
        assert worst <= tol, (enc, worst)
        assert min(own) > 0.5 > max(general) and all(o > x for o, x in zip(own, other)), enc


if __name__ == "__main__":
    run()
