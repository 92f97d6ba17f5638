"""The sampler (libaios aios_diffuse_sample, through ctypes) reproduces every run of the
fixtures' diffusion goldens — output ids and the per-step trace — when driven by float64
reference denoisers (tests/py/diffuse_ref.py).  The reference denoisers are first checked
against the fixtures' own logits, so what is tested here is the sampler's recipe: blocks,
commit plans, mask handling, Dream's shift, BD3LM's padding / positions / block-causal
visibility, BERT's [CLS] ... [SEP] canvas.  tests/test_diffuse_models.c runs the same goldens
through the engine's own C denoisers."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AIOS, SHARED, Skip, run, test  # noqa: E402
import diffuse_ref as R  # noqa: E402

M = os.path.join(SHARED, "fixtures", "models")
_lib = None


def lib():
    global _lib
    if _lib is None:
        if not os.path.exists(os.path.join(os.path.dirname(AIOS), "libaios.so")):
            raise Skip("libaios.so not built")
        _lib = R.load_lib(AIOS)
    return _lib


def golden(name):
    p = os.path.join(M, name, "diffusion_golden.json")
    if not os.path.exists(p):
        raise Skip(f"{p} missing")
    return json.load(open(p))


def params(gen_length, steps, block_length):
    p = lib().aios_diffuse_default_params()
    p.gen_length, p.steps, p.block_length = gen_length, steps, block_length
    p.stop_at_eos = 0
    return p


def compare(run, ids, trace, what):
    assert ids == run["output_ids"], f"{what}: ids\n ours {ids}\n gold {run['output_ids']}"
    assert len(trace) == len(run["trace"]), f"{what}: {len(trace)} steps vs {len(run['trace'])}"
    for s, (a, b) in enumerate(zip(trace, run["trace"])):
        assert [x[:2] for x in a] == [x[:2] for x in b], f"{what}: step {s}: {a} vs {b}"
        for x, y in zip(a, b):
            assert abs(x[2] - y[2]) < 1e-4, f"{what}: step {s}: confidence {x[2]} vs {y[2]}"


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@test
def test_reference_denoisers_match_fixture_logits():
    g = R.load_safetensors(os.path.join(M, "llada-tiny", "golden.safetensors"))
    ids = g["input_ids"]
    L = len(ids)
    lg = R.Decoder(os.path.join(M, "llada-tiny")).logits(ids, np.arange(L), np.ones((L, L), bool))
    assert rel(lg, g["logits"]) < 1e-6, rel(lg, g["logits"])
    for name in ["qwen2-tiny", "qwen3-tiny"]:
        g = R.load_safetensors(os.path.join(M, name, "golden.safetensors"))
        ids = g["prompt_ids"]
        L = len(ids)
        lg = R.Decoder(os.path.join(M, name)).logits(ids, np.arange(L), np.tril(np.ones((L, L), bool)))
        assert rel(lg, g["logits"]) < 1e-6, (name, rel(lg, g["logits"]))
    g = R.load_safetensors(os.path.join(M, "bert-tiny", "golden.safetensors"))
    n = int(g["attention_mask"][0].sum())
    ids = g["input_ids"][0][:n]
    lg = R.BertMLM(os.path.join(M, "bert-tiny")).logits(ids, np.arange(n), np.ones((n, n), bool))
    assert rel(lg, g["mlm_logits"][0][:n]) < 1e-6, rel(lg, g["mlm_logits"][0][:n])


@test
def test_golden_llada_tiny():
    gd = golden("llada-tiny")
    model = R.Decoder(os.path.join(M, "llada-tiny"))
    for i, r in enumerate(gd["runs"]):
        ids, trace, _ = R.sample(lib(), model, r["mask_id"], params(r["gen_length"], r["steps"], r["block_length"]),
                                 r["prompt_ids"], r["suffix_ids"])
        compare(r, ids, trace, f"llada run {i}")


@test
def test_golden_dream_tiny():
    gd = golden("dream-tiny")
    assert gd["shift"] is True
    model = R.Decoder(os.path.join(M, "dream-tiny"))
    for i, r in enumerate(gd["runs"]):
        ids, trace, _ = R.sample(lib(), model, r["mask_id"], params(r["gen_length"], r["steps"], r["block_length"]),
                                 r["prompt_ids"], r["suffix_ids"], shift=True)
        compare(r, ids, trace, f"dream run {i}")


@test
def test_golden_bd3lm_qwen3_tiny():
    gd = golden("bd3lm-qwen3-tiny")
    model = R.Decoder(os.path.join(M, "bd3lm-qwen3-tiny"))
    for i, r in enumerate(gd["runs"]):
        B = r["block_size"]
        p = params(B * r["blocks"], r["steps_per_block"] * r["blocks"], B)
        ids, trace, info = R.sample(lib(), model, r["mask_id"], p, r["prompt_ids"], block_causal=True,
                                    pad_id=r["pad_id"], block_size=4)
        assert info["left_pad"] == r["left_pad"]
        compare(r, ids, trace, f"bd3lm run {i}")


@test
def test_golden_bert_tiny():
    gd = golden("bert-tiny")
    model = R.BertMLM(os.path.join(M, "bert-tiny"))
    for i, r in enumerate(gd["runs"]):
        ids, trace, _ = R.sample(lib(), model, r["mask_id"], params(r["gen_length"], r["steps"], r["block_length"]),
                                 r["prompt_ids"], r["suffix_ids"])
        compare(r, ids, trace, f"bert run {i}")


if __name__ == "__main__":
    run()
