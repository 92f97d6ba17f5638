"""`aios train` / `aios lora` / `--adapter` end to end on the tiny SmolLM2-architecture model of
fixtures/models-lm/smollm2-tiny (real SmolLM2 tokenizer and chat template rules), checked with
reference readers: safetensors + json for the PEFT directory, pyarrow for the skill card, numpy
for the merge (W + (alpha/r) B A computed here)."""
import json
import os

import numpy as np

from harness import SHARED, TMP, Skip, aios, run, test

MODEL = os.path.join(SHARED, "fixtures", "models-lm", "smollm2-tiny")


def need_model():
    if not os.path.exists(os.path.join(MODEL, "model.safetensors")):
        raise Skip(f"{MODEL} not found")


def write(name, lines):
    p = os.path.join(TMP, name)
    with open(p, "w") as f:
        f.write("\n".join(lines) + "\n")
    return p


QA = [json.dumps({"q": "What is the name of Ada's cat?", "a": "Ada's cat is called Miso."}),
      json.dumps({"q": "Where does the chess club meet?", "a": "In room 42."}),
      json.dumps({"q": "What colour is the logo?", "a": "Teal."})]


@test
def train_errors_name_line_and_field():
    need_model()
    cases = [
        (["{\"q\": \"a\", \"a\": \"b\"}", "{not json"], ":2: not a JSON object"),
        (["{\"q\": \"hello\", \"a\": \"\"}"], ":1: field 'a'"),
        (["{\"q\": \"hello\"}"], ":1: field 'a'"),
        (["{\"x\": 1}"], ":1: needs 'q' and 'a'"),
        (["{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"], "must be the assistant's"),
    ]
    for i, (lines, want) in enumerate(cases):
        out = os.path.join(TMP, f"bad{i}")
        p = aios("train", "--model", MODEL, "--data", write(f"bad{i}.jsonl", lines), "--out", out, check=False)
        assert p.returncode == 1, (lines, p.returncode, p.stderr)
        assert p.stderr.startswith("aios: train: ") and want in p.stderr, p.stderr
        assert not os.path.exists(out), "nothing is written on a data error"
    good = write("good.jsonl", QA)
    p = aios("train", "--model", MODEL, "--data", good, "--out", os.path.join(TMP, "x"), "--target", "q_proj,w_proj",
             check=False)
    assert p.returncode == 1 and "w_proj" in p.stderr, p.stderr
    p = aios("train", "--model", MODEL, "--data", good, "--out", os.path.join(TMP, "x"), "--rank", "0", check=False)
    assert p.returncode == 2 and "--rank" in p.stderr, p.stderr
    p = aios("train", "--model", MODEL, "--data", good, check=False)
    assert p.returncode == 2 and "--out" in p.stderr
    p = aios("train", "--help")
    assert "examples:" in p.stdout and "--init-adapter" in p.stdout


@test
def train_writes_peft_adapter_and_log():
    need_model()
    out = os.path.join(TMP, "ad")
    log = os.path.join(TMP, "log.jsonl")
    aios("train", "--model", MODEL, "--data", write("qa.jsonl", QA), "--out", out, "--steps", "6", "--lr", "1e-2",
         "--rank", "4", "--alpha", "8", "--target", "q_proj,v_proj,down_proj", "--log-jsonl", log, "--seed", "3")
    cfg = json.load(open(os.path.join(out, "adapter_config.json")))
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 8 and cfg["peft_type"] == "LORA"
    assert sorted(cfg["target_modules"]) == ["down_proj", "q_proj", "v_proj"]
    from safetensors.numpy import load_file
    t = load_file(os.path.join(out, "adapter_model.safetensors"))
    mc = json.load(open(os.path.join(MODEL, "config.json")))
    L, E = mc["num_hidden_layers"], mc["hidden_size"]
    assert len(t) == L * 3 * 2
    a = t["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
    b = t["base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"]
    assert a.shape == (4, E) and a.dtype == np.float32 and b.shape == (E, 4)
    assert np.abs(b).max() > 0, "B moved away from its zero init"
    steps = [json.loads(x) for x in open(log)]
    assert [s["step"] for s in steps] == list(range(6))
    assert all(set(s) == {"step", "loss", "grad_norm", "lr"} for s in steps)
    assert steps[-1]["loss"] < steps[0]["loss"], steps
    # same seed, same adapter
    out2 = os.path.join(TMP, "ad2")
    aios("train", "--model", MODEL, "--data", os.path.join(TMP, "qa.jsonl"), "--out", out2, "--steps", "6", "--lr",
         "1e-2", "--rank", "4", "--alpha", "8", "--target", "q_proj,v_proj,down_proj", "--seed", "3")
    t2 = load_file(os.path.join(out2, "adapter_model.safetensors"))
    assert all(np.array_equal(t[k], t2[k]) for k in t)


@test
def skill_card_roundtrip_and_pyarrow():
    need_model()
    import pyarrow.parquet as pq
    from safetensors.numpy import load_file
    src = os.path.join(TMP, "ad")
    if not os.path.exists(src):
        raise Skip("needs train_writes_peft_adapter_and_log")
    card = os.path.join(TMP, "skill.parquet")
    aios("lora", "convert", "--model", MODEL, src, card)
    tb = pq.read_table(card)
    assert tb.column_names == ["module", "rank", "alpha", "lora_a", "lora_b"]
    meta = {k.decode(): v.decode() for k, v in tb.schema.metadata.items()}
    assert meta["aios.card.version"] == "1" and meta["aios.card.targets"] == "q_proj,v_proj,down_proj"
    t = load_file(os.path.join(src, "adapter_model.safetensors"))
    rows = tb.to_pylist()
    assert len(rows) == len(t) // 2
    for r in rows:
        a = np.frombuffer(r["lora_a"], dtype="<f4")
        assert r["rank"] == 4 and r["alpha"] == 8.0
        np.testing.assert_array_equal(a, t["base_model.model." + r["module"] + ".lora_A.weight"].ravel())
    back = os.path.join(TMP, "back")
    aios("lora", "convert", "--model", MODEL, card, back)
    t3 = load_file(os.path.join(back, "adapter_model.safetensors"))
    assert all(np.array_equal(t[k], t3[k]) for k in t)
    # lora_dropout: PEFT dir -> card (aios.card.lora_dropout) -> PEFT dir, exactly
    import shutil
    drop = os.path.join(TMP, "ad-dropout")
    shutil.rmtree(drop, ignore_errors=True)
    shutil.copytree(src, drop)
    cfg = json.load(open(os.path.join(drop, "adapter_config.json")))
    cfg["lora_dropout"] = 0.15
    json.dump(cfg, open(os.path.join(drop, "adapter_config.json"), "w"))
    card_d = os.path.join(TMP, "skill-dropout.parquet")
    aios("lora", "convert", "--model", MODEL, drop, card_d)
    meta = {k.decode(): v.decode() for k, v in pq.read_table(card_d).schema.metadata.items()}
    assert float(meta["aios.card.lora_dropout"]) == 0.15, meta
    back_d = os.path.join(TMP, "back-dropout")
    aios("lora", "convert", "--model", MODEL, card_d, back_d)
    assert json.load(open(os.path.join(back_d, "adapter_config.json")))["lora_dropout"] == 0.15
    # a card written before the key (pyarrow drops it): still loads, lora_dropout 0
    tb = pq.read_table(card_d)
    old = {k: v for k, v in tb.schema.metadata.items() if k != b"aios.card.lora_dropout"}
    card_old = os.path.join(TMP, "skill-old.parquet")
    pq.write_table(tb.replace_schema_metadata(old), card_old)
    back_o = os.path.join(TMP, "back-old")
    aios("lora", "convert", "--model", MODEL, card_old, back_o)
    assert json.load(open(os.path.join(back_o, "adapter_config.json")))["lora_dropout"] == 0.0
    t4 = load_file(os.path.join(back_o, "adapter_model.safetensors"))
    assert all(np.array_equal(t[k], t4[k]) for k in t)
    # a value outside [0, 1) is refused by name
    bad = {**old, b"aios.card.lora_dropout": b"1.5"}
    card_bad = os.path.join(TMP, "skill-bad.parquet")
    pq.write_table(tb.replace_schema_metadata(bad), card_bad)
    p = aios("lora", "convert", "--model", MODEL, card_bad, os.path.join(TMP, "back-bad"), check=False)
    assert p.returncode != 0 and "lora_dropout" in p.stderr, p.stderr


@test
def merge_matches_numpy():
    need_model()
    from safetensors.numpy import load_file
    src = os.path.join(TMP, "ad")
    if not os.path.exists(src):
        raise Skip("needs train_writes_peft_adapter_and_log")
    out = os.path.join(TMP, "merged")
    aios("lora", "merge", MODEL, src, out, "--scale", "0.5")
    from safetensors.torch import load_file as load_torch  # the base is bf16: numpy cannot hold it
    base = {k: v.double().numpy() for k, v in load_torch(os.path.join(MODEL, "model.safetensors")).items()}
    merged = load_file(os.path.join(out, "model.safetensors"))
    ad = load_file(os.path.join(src, "adapter_model.safetensors"))
    assert set(merged) == set(base)
    worst = 0.0
    for k, w in base.items():
        pre = "base_model.model." + k[: -len(".weight")]
        if pre + ".lora_A.weight" in ad:
            w = w + 0.5 * 2.0 * ad[pre + ".lora_B.weight"].astype(np.float64) @ ad[pre + ".lora_A.weight"].astype(np.float64)
        worst = max(worst, float(np.abs(merged[k] - w).max()))
    assert worst < 1e-6, worst
    # the merged model generates exactly what the base model with the adapter at 0.5 does
    g1 = aios("generate", "--model", out, "--prompt-ids", "1,5,9,200,31", "--max-tokens", "8", "--ids").stdout
    g2 = aios("generate", "--model", MODEL, "--prompt-ids", "1,5,9,200,31", "--max-tokens", "8", "--ids",
              "--adapter", src + ":0.5").stdout
    assert g1 == g2, (g1, g2)
    g0 = aios("generate", "--model", MODEL, "--prompt-ids", "1,5,9,200,31", "--max-tokens", "8", "--ids").stdout
    g00 = aios("generate", "--model", MODEL, "--prompt-ids", "1,5,9,200,31", "--max-tokens", "8", "--ids",
               "--adapter", src + ":0").stdout
    assert g0 == g00


@test
def text_and_messages_formats():
    need_model()
    p = write("mixed.jsonl", [json.dumps({"text": "The Zorbex logo is teal."}),
                              json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                                       {"role": "assistant", "content": "Hello there."}]}),
                              QA[0]])
    out = os.path.join(TMP, "mixed.parquet")
    r = aios("train", "--model", MODEL, "--data", p, "--out", out, "--steps", "2", "--batch", "2", "--accum", "2",
             "--schedule", "cosine", "--warmup", "1", "--dropout", "0.1")
    assert "3 examples" in r.stderr, r.stderr
    assert os.path.exists(out)


@test
def defaults_choose_steps_and_lr():
    """No training option: whole epochs until >= 30 steps and lr 3e-3 for a few pairs (the
    defaults that learn, docs/training.md); given options win."""
    need_model()
    data = write("qa.jsonl", QA)
    log = os.path.join(TMP, "dlog.jsonl")
    r = aios("train", "--model", MODEL, "--data", data, "--out", os.path.join(TMP, "d"), "--log-jsonl", log)
    assert "trained: 30 steps (lr 0.003) on 3 examples" in r.stderr, r.stderr
    steps = [json.loads(x) for x in open(log)]
    assert len(steps) == 30 and all(s["lr"] == 0.003 for s in steps)
    assert "aios: train: step 30/30" in r.stderr, r.stderr  # progress lines off a terminal
    r = aios("train", "--model", MODEL, "--data", data, "--out", os.path.join(TMP, "d2"), "--epochs", "2", "--lr",
             "2e-4")
    assert "trained: 2 steps (lr 0.0002)" in r.stderr, r.stderr


@test
def checkpoint_same_adapter():
    """--checkpoint recomputes each layer in the backward: the same adapter bit for bit."""
    need_model()
    from safetensors.numpy import load_file
    data = write("qa.jsonl", QA)
    outs = []
    for extra in ([], ["--checkpoint"]):
        out = os.path.join(TMP, "ck%d" % len(outs))
        r = aios("train", "--model", MODEL, "--data", data, "--out", out, "--steps", "3", "--lr", "1e-2", "--target",
                 "all", "--dropout", "0.1", "--seed", "5", *extra)
        outs.append((load_file(os.path.join(out, "adapter_model.safetensors")),
                     float(r.stderr.split("activations ")[1].split()[0])))
    (a, ma), (b, mb) = outs
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert mb < ma, (ma, mb)  # on this tiny model the (64, n_vocab) logits chunk dominates both


@test
def from_store_trains_on_memories():
    """--from-store: each memory's content is a {"text"} example — the same adapter (to float
    rounding) as the JSONL of those texts; errors name the store."""
    need_model()
    from safetensors.numpy import load_file
    texts = ["Ada's cat is called Miso.", "The Zorbex logo is teal.", "Varnis has seven moons."]
    mem = write("mem.jsonl", [json.dumps({"memory_id": "m%d" % i, "content": t, "embedding": [1.0, 0.0, float(i)]})
                              for i, t in enumerate(texts)])
    store = os.path.join(TMP, "store")
    aios("memory", "add", "--store", store, "--jsonl", mem)
    common = ["--steps", "3", "--lr", "1e-2", "--seed", "2"]
    r = aios("train", "--model", MODEL, "--from-store", store, "--out", os.path.join(TMP, "fs"), *common)
    assert "on 3 examples" in r.stderr, r.stderr
    aios("train", "--model", MODEL, "--data", write("texts.jsonl", [json.dumps({"text": t}) for t in texts]),
         "--out", os.path.join(TMP, "ft"), *common)
    a = load_file(os.path.join(TMP, "fs", "adapter_model.safetensors"))
    b = load_file(os.path.join(TMP, "ft", "adapter_model.safetensors"))
    worst = max(float(np.abs(a[k] - b[k]).max() / (np.abs(b[k]).max() + 1e-12)) for k in a)
    assert worst < 1e-5, worst
    assert np.abs(a["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]).max() > 0
    p = aios("train", "--model", MODEL, "--from-store", os.path.join(TMP, "nostore"), "--out",
             os.path.join(TMP, "fx"), check=False)
    assert p.returncode == 1 and "--from-store" in p.stderr and "nostore" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(TMP, "fx"))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


@test
def resume_continues_bit_for_bit():
    """N steps in one run == N/2 steps, then --resume for the rest: the same per-step log and
    the same adapter file, bit for bit.  Dropout, three shuffled batches of one, accumulation
    across epoch ends, cosine with warm-up and weight decay: each piece of the trainer state
    (AdamW moments and step, schedule position, data order and both generators) changes the
    result if it is lost."""
    need_model()
    import shutil
    data = write("qa_resume.jsonl", QA)
    common = ["--model", MODEL, "--data", data, "--lr", "1e-2", "--target", "q_proj,v_proj,down_proj", "--dropout",
              "0.2", "--batch", "1", "--accum", "2", "--schedule", "cosine", "--warmup", "2", "--seed", "7",
              "--weight-decay", "0.01"]
    full, log_full = os.path.join(TMP, "rs_full"), os.path.join(TMP, "rs_full.jsonl")
    aios("train", *common, "--out", full, "--steps", "6", "--save-every", "3", "--log-jsonl", log_full)
    assert os.path.isdir(os.path.join(full, "checkpoint-3")) and not os.path.exists(os.path.join(full, "checkpoint-6"))
    st = json.load(open(os.path.join(full, "checkpoint-3", "trainer_state.json")))
    assert st["format"] == "aios-trainer-state" and st["step"] == 3 and st["total_steps"] == 6, st
    # the moments are PyTorch's exp_avg / exp_avg_sq of the adapter's parameters
    from safetensors.numpy import load_file
    mom = load_file(os.path.join(full, "checkpoint-3", "trainer_state.safetensors"))
    assert mom["exp_avg"].shape == (st["n_params"],) and (mom["exp_avg_sq"] >= 0).all() and mom["exp_avg_sq"].max() > 0
    half, log_half = os.path.join(TMP, "rs_half"), os.path.join(TMP, "rs_half.jsonl")
    shutil.rmtree(half, ignore_errors=True)
    shutil.copytree(os.path.join(full, "checkpoint-3"), half)
    r = aios("train", "--model", MODEL, "--data", data, "--resume", half, "--log-jsonl", log_half)
    assert "6 steps" in r.stderr, r.stderr
    a, b = open(log_full).read().splitlines(), open(log_half).read().splitlines()
    assert len(a) == 6 and b == a[3:], (a, b)
    assert read_bytes(os.path.join(half, "adapter_model.safetensors")) == \
        read_bytes(os.path.join(full, "adapter_model.safetensors"))
    # without the state (the moments restarting from zero) the adapter differs: the test can fail
    fresh = os.path.join(TMP, "rs_fresh")
    aios("train", *common, "--out", fresh, "--steps", "3", "--init-adapter", os.path.join(full, "checkpoint-3"))
    assert read_bytes(os.path.join(fresh, "adapter_model.safetensors")) != \
        read_bytes(os.path.join(full, "adapter_model.safetensors"))

    # the constant schedule: a 3-step run, then --resume with --steps 6 == one 6-step run
    i = common.index("--schedule")
    const = common[:i] + common[i + 4:]  # without --schedule cosine --warmup 2
    assert "cosine" not in const and "--warmup" not in const and "--accum" in const
    one, two = os.path.join(TMP, "rs_one"), os.path.join(TMP, "rs_two")
    aios("train", *const, "--out", one, "--steps", "6", "--log-jsonl", os.path.join(TMP, "rs_one.jsonl"))
    aios("train", *const, "--out", two, "--steps", "3", "--log-jsonl", os.path.join(TMP, "rs_two.jsonl"))
    aios("train", "--model", MODEL, "--data", data, "--resume", two, "--steps", "6", "--log-jsonl",
         os.path.join(TMP, "rs_two.jsonl"))
    assert open(os.path.join(TMP, "rs_one.jsonl")).read() == open(os.path.join(TMP, "rs_two.jsonl")).read()
    assert read_bytes(os.path.join(one, "adapter_model.safetensors")) == \
        read_bytes(os.path.join(two, "adapter_model.safetensors"))

    # a skill card: the state beside it (X.parquet.trainer_state.*), checkpoints X-checkpoint-K.parquet
    card = os.path.join(TMP, "rs_card.parquet")
    aios("train", *common, "--out", card, "--steps", "4", "--save-every", "2")
    ck = os.path.join(TMP, "rs_card-checkpoint-2.parquet")
    assert os.path.exists(ck + ".trainer_state.json") and os.path.exists(card + ".trainer_state.safetensors")
    card2 = os.path.join(TMP, "rs_card2.parquet")
    aios("train", "--model", MODEL, "--data", data, "--resume", ck, "--out", card2)
    import pyarrow.parquet as pq
    ta, tb = pq.read_table(card), pq.read_table(card2)
    assert ta.column("lora_b").to_pylist() == tb.column("lora_b").to_pylist()
    assert ta.column("lora_a").to_pylist() == tb.column("lora_a").to_pylist()
    assert json.load(open(card2 + ".trainer_state.json"))["step"] == 4


@test
def resume_refuses_damaged_or_mismatched_state():
    """Every way a trainer state can fail to belong to the run is a clear error, and nothing is
    written."""
    need_model()
    import shutil
    full = os.path.join(TMP, "rs_full")
    if not os.path.exists(os.path.join(full, "checkpoint-3")):
        raise Skip("needs resume_continues_bit_for_bit")
    data = os.path.join(TMP, "qa_resume.jsonl")

    def case(name, edit, want, extra=(), rc=1, use_data=data):
        d = os.path.join(TMP, "rs_bad_" + name)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(os.path.join(full, "checkpoint-3"), d)
        edit(d)
        before = {f: read_bytes(os.path.join(d, f)) for f in os.listdir(d)}
        p = aios("train", "--model", MODEL, "--data", use_data, "--resume", d, *extra, check=False)
        assert p.returncode == rc and p.stderr.startswith("aios: train: ") and want in p.stderr, (name, p.stderr)
        assert {f: read_bytes(os.path.join(d, f)) for f in os.listdir(d)} == before, name

    def rm_state(d):
        os.remove(os.path.join(d, "trainer_state.json"))

    def garbage(d):
        open(os.path.join(d, "trainer_state.json"), "w").write("{not json")

    def field(k, v):
        def f(d):
            p = os.path.join(d, "trainer_state.json")
            st = json.load(open(p))
            st[k] = v
            json.dump(st, open(p, "w"))
        return f

    def torn(d):  # the moments of the finished run next to the step-3 state
        shutil.copy(os.path.join(full, "trainer_state.safetensors"), os.path.join(d, "trainer_state.safetensors"))

    def other_adapter(d):
        shutil.copy(os.path.join(full, "adapter_model.safetensors"), os.path.join(d, "adapter_model.safetensors"))

    case("nostate", rm_state, "no trainer state")
    case("garbage", garbage, "trainer_state.json: not a JSON object")
    case("version", field("version", 2), "version 2")
    case("cursor", field("cursor", 99), "'cursor'")
    case("seed", field("seed", 5), "'seed'")
    case("torn", torn, "torn or mixed")
    case("adapter", other_adapter, "not the one its trainer state was saved with")
    case("data", lambda d: None, "the data differ", use_data=write("qa_other.jsonl", QA[:2]))
    case("done", lambda d: None, "done 3 of 3 steps", extra=("--steps", "3"))
    case("lr", lambda d: None, "--lr: not with --resume", extra=("--lr", "1e-3"), rc=2)
    p = aios("train", "--model", MODEL, "--data", data, "--resume", os.path.join(TMP, "nowhere"), check=False)
    assert p.returncode == 1 and "nowhere" in p.stderr, p.stderr


run()
