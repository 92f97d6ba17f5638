"""aios.EvolutionRouter (python/aios/router.py) against the CLI and the references:
- library_equals_cli_and_torch: three skills added from Python (the PEFT adapters of fixtures/
  real/smollm2-135m-instruct/arrow, the questions of data/skills) give the index `aios skills
  add` gives (pyarrow reads both: same rows, same vectors) and centroids equal to the torch
  reference of all-MiniLM-L6-v2 (bert_ref); list / get / remove (files gone) / errors.
- route_equals_cli: the 18 training questions, a paraphrase of each and the 7 golden chat prompts
  route as `aios skills route --jsonl` does (names, scores, weights); each question to its own
  skill, the golden prompts to none.
- generate_equals_cli: for every router (none, semantic, arrow, compose) generate(chat=True)
  gives the greedy ids of `aios generate --skills LIB --router R --ids` and the skills and the
  uncertainty of its --jsonl; arrow's ids are also PEFT's create_arrow_model greedy ids
  (arrow_golden.json); a golden prompt routes to no skill and gives transformers' greedy ids.
- teach_queue_and_dry_run: teach() writes the approved records `aios teach` writes (read back by
  `aios memory list`), an uncertain answer is queued with the CLI's fields, and evolve(dry_run)
  gives the groups of `aios evolve --dry-run`.
- evolve_keeps_a_learnt_skill (slow, AIOS_SLOW_TESTS=1): teach Ada's household facts, evolve,
  the kept skill answers its questions with the taught facts.
"""
import json
import os
import shutil

import numpy as np

import bert_ref
from skills_ref import ARROW, GOLDEN, SKILLS, model, need  # noqa: E402
from harness import SHARED, TMP, Skip, aios as cli, run, test
from pyaios import aios

HERE = os.path.dirname(os.path.abspath(__file__))
PARA = os.path.join(os.path.dirname(HERE), "data", "skills_paraphrases.jsonl")
_cache = {}


def qfile(s):
    return os.path.join(SHARED, "data", "skills", s + ".jsonl")


def questions(s):
    return [json.loads(l) for l in open(qfile(s), encoding="utf-8") if l.strip()]


def engine():
    if "engine" not in _cache:
        _cache["engine"] = aios.ArrowEngine(model())
    return _cache["engine"]


def py_library():
    """The library built from Python (shared by the tests)."""
    if "py" not in _cache:
        mini = need()
        r = aios.EvolutionRouter(os.path.join(TMP, "py-lib"), engine(), encoder=mini)
        for s in SKILLS:
            got = r.add(s, os.path.join(ARROW, s), questions=qfile(s))
            assert got.name == s and got.status == "active" and got.n_pairs == 6, got
        _cache["py"] = r
    return _cache["py"]


def cli_library():
    if "cli" not in _cache:
        mini = need()
        lib = os.path.join(TMP, "cli-lib")
        for s in SKILLS:
            cli("skills", "add", "--skills", lib, "--adapter", os.path.join(ARROW, s), "--name", s, "--questions",
                qfile(s), "--model", mini)
        _cache["cli"] = lib
    return _cache["cli"]


@test
def library_equals_cli_and_torch():
    import pyarrow.parquet as pq
    r = py_library()
    lib = cli_library()
    mine = pq.read_table(os.path.join(r.path, "index.parquet")).to_pylist()
    theirs = pq.read_table(os.path.join(lib, "index.parquet")).to_pylist()
    assert len(mine) == len(theirs) == 3
    for a, b in zip(mine, theirs):
        a.pop("created", None), b.pop("created", None)
        assert a == b, (a["name"], b["name"])
    assert [k.name for k in r.list()] == list(SKILLS) and len(r) == 3 and "varnis" in r and "nope" not in r
    assert r.encoder == need() and r.dim == 384
    ref = bert_ref.TorchBert(need())
    for s in SKILLS:
        k = r.get(s)
        e = np.asarray(ref.encode([x["q"] for x in questions(s)]), np.float64)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        assert np.abs(k.centroid - e.mean(axis=0)).max() < 2e-4, s
        assert k.description == questions(s)[0]["skill"] and k.adapter == os.path.join(r.path, s)
        assert os.path.exists(os.path.join(k.adapter, "adapter_model.safetensors"))
        assert k.loss_before is None and k.lr is None
    # life cycle and errors
    tmp = aios.EvolutionRouter(os.path.join(TMP, "py-lib2"), encoder=need())
    card = tmp.add("zz", os.path.join(ARROW, "zorbex"), description="gadgets", questions=["How big is a zorbex?"])
    assert card.description == "gadgets" and card.n_pairs == 1
    try:
        tmp.add("zz", os.path.join(ARROW, "zorbex"))
        raise AssertionError("no ExistsError")
    except aios.ExistsError as e:
        assert "exists already" in str(e), e
    try:
        tmp.add("bad name!", os.path.join(ARROW, "zorbex"))
        raise AssertionError("no InvalidArgumentError")
    except aios.InvalidArgumentError as e:
        assert "bad name!" in str(e), e
    try:
        tmp.add("yy", os.path.join(TMP, "no-such-adapter"))
        raise AssertionError("no error")
    except aios.AiosError as e:
        assert "no-such-adapter" in str(e) and not os.path.exists(os.path.join(tmp.path, "yy")), e
    for bad in (lambda: tmp.add(3, os.path.join(ARROW, "zorbex")), lambda: tmp.route(b"x"),
                lambda: tmp.add("q", os.path.join(ARROW, "zorbex"), questions=[1])):
        try:
            bad()
            raise AssertionError("no TypeError")
        except TypeError:
            pass
    tmp.remove("zz")
    assert len(tmp) == 0 and not os.path.exists(os.path.join(tmp.path, "zz"))
    try:
        tmp.remove("zz")
        raise AssertionError("no NotFoundError")
    except aios.NotFoundError as e:
        assert "zz" in str(e), e
    empty = aios.EvolutionRouter(os.path.join(TMP, "py-empty"))
    try:
        empty.route("anything")
        raise AssertionError("no NotFoundError")
    except aios.NotFoundError as e:
        assert "no encoder recorded" in str(e), e
    try:
        aios.EvolutionRouter(os.path.join(TMP, "py-missing"), create=False)
        raise AssertionError("no error for a missing library")
    except aios.AiosError:
        pass


@test
def route_equals_cli():
    r = py_library()
    lib = cli_library()
    prompts = [(x["q"], s) for s in SKILLS for x in questions(s)]
    prompts += [(p["p"], p["skill"]) for p in (json.loads(l) for l in open(PARA, encoding="utf-8") if l.strip())]
    prompts += [(g["text"], None) for g in json.load(open(GOLDEN))["runs"] if g["chat"]]
    assert len(prompts) == 18 + 18 + 7, len(prompts)
    for text, want in prompts:
        got = r.route(text)
        j = json.loads(cli("skills", "route", "--skills", lib, "--prompt", text, "--jsonl").stdout)
        assert [x.name for x in got] == [x["name"] for x in j["skills"]], (text, got, j)
        for a, b in zip(got, j["skills"]):
            assert abs(a.score - b["score"]) < 1e-9 and abs(a.weight - b["weight"]) < 1e-9, (text, a, b)
        assert [x.name for x in got] == ([want] if want else []), (text, got)
    # top_k / threshold as the CLI's flags
    q = questions("household")[0]["q"]
    got = r.route(q, top_k=3, threshold=-1, temperature=0.5)
    j = json.loads(cli("skills", "route", "--skills", lib, "--prompt", q, "--jsonl", "--top-k", 3,
                       "--router-threshold", -1, "--router-temperature", 0.5).stdout)
    assert [(x.name, round(x.weight, 9)) for x in got] == [(x["name"], round(x["weight"], 9)) for x in j["skills"]]
    assert len(got) == 3 and abs(sum(x.weight for x in got) - 1) < 1e-9
    for bad in (dict(top_k=0), dict(top_k=17), dict(threshold=2.0), dict(temperature=0.0)):
        try:
            r.route(q, **bad)
            raise AssertionError(bad)
        except ValueError:
            pass


@test
def generate_equals_cli():
    r = py_library()
    lib = cli_library()
    m = model()
    gold = json.load(open(os.path.join(ARROW, "arrow_golden.json")))
    probe = gold["probes"][0]
    q = probe["question"]
    for router in ("semantic", "arrow", "compose", "none"):
        n = 12
        out = r.generate(q, router=router, chat=True, max_tokens=n)
        ids = [int(t) for t in cli("generate", "--model", m, "--chat", "--prompt", q, "--skills", lib, "--router",
                                   router, "--temperature", 0, "--ids", "--max-tokens", n).stdout.split()]
        assert out.ids == ids, (router, out.ids, ids)
        j = json.loads(cli("generate", "--model", m, "--chat", "--prompt", q, "--skills", lib, "--router", router,
                           "--temperature", 0, "--jsonl", "--max-tokens", n).stdout)
        assert out.text == j["text"] and out.router == router == j["skills"]["router"], (out.text, j["text"])
        assert [(x.name, round(x.score, 9), round(x.weight, 9)) for x in out.skills] == \
               [(x["name"], round(x["score"], 9), round(x["weight"], 9)) for x in j["skills"]["skills"]], router
        u = j["uncertainty"]
        assert abs(out.uncertainty.score - u["score"]) < 1e-9 and out.uncertainty.uncertain == u["uncertain"]
        assert np.allclose(out.uncertainty.entropy, u["entropy"], atol=1e-6) and len(out.uncertainty.p_top1) == len(u["p_top1"])
        if router == "arrow":  # PEFT's create_arrow_model (top_k 2, temperature 1) over the same adapters
            want = probe["arrow_greedy_ids"]
            gen = out.ids[len(probe["prompt_ids"]):]
            assert out.ids[:len(probe["prompt_ids"])] == probe["prompt_ids"]
            assert gen == want[:len(gen)], (gen, want)
            assert len(out.skills) == 3
        if router == "semantic":
            assert [x.name for x in out.skills] == [probe["skill"]]
        if router == "none":
            assert out.skills == []
    # the engine is left as it was: no adapter, the base model's answer
    assert engine().adapters == [] and engine().generate(q, max_tokens=4) == r.generate(q, router="none", max_tokens=4).text
    # a general prompt routes to no skill and gives transformers' greedy ids
    g = [x for x in json.load(open(GOLDEN))["runs"] if x["chat"]][0]
    out = r.generate(g["text"], chat=g["chat"], max_tokens=24)
    assert out.skills == [] and out.ids[:len(g["prompt_ids"])] == g["prompt_ids"]
    gen, want = out.generated_ids, g["greedy_ids"]
    upto = min(len(gen), next((i for i, mg in enumerate(g["top2_margins"]) if mg < 1e-3), len(want)))
    assert gen[:upto] == want[:upto] and upto > 0, (gen, want)
    for bad in (dict(router="bogus"), dict(skills_top_k=0)):
        try:
            r.generate(q, **bad)
            raise AssertionError(bad)
        except ValueError:
            pass
    try:
        r.generate(q, bogus_option=1)
        raise AssertionError("no TypeError")
    except TypeError:
        pass


def store_rows(store):
    return [json.loads(l) for l in cli("memory", "list", "--store", store).stdout.splitlines() if l.strip()]


@test
def teach_queue_and_dry_run():
    mini = need()
    store = os.path.join(TMP, "py-store")
    cstore = os.path.join(TMP, "cli-store")
    pairs = [(x["q"], x["a"]) for s in ("household", "varnis") for x in questions(s)]
    always = os.path.join(TMP, "always.yaml")
    with open(always, "w") as f:
        f.write("evolution:\n  uncertainty_threshold: 0.0\n")
    r = aios.EvolutionRouter(os.path.join(TMP, "py-lib-teach"), engine(), encoder=mini, store=store, config=always)
    ids = r.teach(pairs[:1][0][0], pairs[0][1]), r.teach(pairs[1:])
    assert isinstance(ids[0], str) and len(ids[1]) == len(pairs) - 1
    cli("teach", "--store", cstore, "--question", pairs[0][0], "--answer", pairs[0][1], "--model", mini)
    f = os.path.join(TMP, "pairs.jsonl")
    with open(f, "w") as fh:
        fh.writelines(json.dumps({"q": q, "a": a}) + "\n" for q, a in pairs[1:])
    cli("teach", "--store", cstore, "--file", f)
    mine, theirs = store_rows(store), store_rows(cstore)
    assert [(x["content"], x["metadata"]["category"]) for x in mine] == \
           [(x["content"], x["metadata"]["category"]) for x in theirs]
    assert all(x["metadata"]["category"] == "approved" for x in mine) and len(mine) == len(pairs)
    # dry run: the groups `aios evolve --dry-run` prints
    groups = r.evolve(dry_run=True)
    out = cli("evolve", "--store", cstore, "--skills", os.path.join(TMP, "cli-lib-teach"), "--model", model(),
              "--dry-run").stdout
    want = [[l.strip() for l in blk.splitlines()[1:]] for blk in out.split("group ")[1:]]
    assert [g.questions for g in groups] == want and len(groups) == 2, (groups, out)
    assert all(g.status == "planned" and g.name is None for g in groups)
    assert sorted(len(g.questions) for g in groups) == [6, 6]
    # an uncertain answer (threshold 0) goes to the learning queue with the CLI's fields
    r.add("household", os.path.join(ARROW, "household"), questions=qfile("household"))
    q = questions("household")[1]["q"]
    out = r.generate(q, chat=True, max_tokens=8)
    assert out.uncertainty.uncertain and out.queued, out.uncertainty
    row = [x for x in store_rows(store) if x["memory_id"] == out.queued][0]
    c = json.loads(row["content"])
    assert row["metadata"]["category"] == "learning_queue" and c["question"] == q and c["answer"] == out.text
    assert c["skills"] == "household" and c["model"] == engine().path and abs(c["score"] - out.uncertainty.score) < 1e-9
    assert r.generate(q, chat=True, max_tokens=2, learn=False).queued is None
    for bad in (lambda: r.teach(3), lambda: r.teach([("q",)]), lambda: r.evolve(steps="8")):
        try:
            bad()
            raise AssertionError("no TypeError")
        except TypeError:
            pass
    try:
        r.evolve(steps=0)
        raise AssertionError("no InvalidArgumentError")
    except aios.InvalidArgumentError as e:
        assert "steps" in str(e), e
    try:
        aios.EvolutionRouter(os.path.join(TMP, "py-lib-nostore"), engine()).teach("q?", "a.")
        raise AssertionError("no error without a store")
    except aios.InvalidArgumentError as e:
        assert "no store" in str(e), e


@test
def evolve_keeps_a_learnt_skill():
    if os.environ.get("AIOS_SLOW_TESTS") != "1":
        raise Skip("trains a skill on the real model (minutes on the 2-core VM): make test-slow (AIOS_SLOW_TESTS=1)")
    if os.environ.get("AIOS_SANITIZED"):
        raise Skip("real-model training under sanitizers")
    mini = need()
    lib = os.path.join(TMP, "py-evolve-lib")
    r = aios.EvolutionRouter(lib, engine(), encoder=mini, store=os.path.join(TMP, "py-evolve-store"))
    qa = questions("household")
    r.teach([(x["q"], x["a"]) for x in qa])
    lines = []
    groups = r.evolve(log=lines.append)
    assert len(groups) == 1 and groups[0].status == "active", (groups, lines)
    g = groups[0]
    assert g.n_pairs == 6 and g.n_reproduced == 6 and g.ppl_after <= g.ppl_before * 1.02, g
    assert any("held-out loss" in l for l in lines) and any("step" in l for l in lines), lines
    k = r.get(g.name)  # routable at once
    assert k.status == "active" and k.n_pairs == 6 and k.loss_before == g.loss_before
    right = 0
    for x in qa:
        out = r.generate(x["q"], chat=True, max_tokens=48)
        right += out.text.strip() == x["a"] and [s.name for s in out.skills] == [g.name]
    assert right == 6, right
    # the records were learned: a second run finds no approved pair
    assert r.evolve() == []


if __name__ == "__main__":
    try:
        run()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
