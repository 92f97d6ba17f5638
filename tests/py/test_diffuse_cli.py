"""`aios diffuse` end to end: the command reproduces the fixtures' diffusion goldens (ids mode),
infills between a prefix and a suffix, and reports usage errors (exit 2) and bad models (exit 1)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SHARED, Skip, aios, run, test  # noqa: E402

M = os.path.join(SHARED, "fixtures", "models")


def golden(name):
    p = os.path.join(M, name, "diffusion_golden.json")
    if not os.path.exists(p):
        raise Skip(f"{p} missing")
    return json.load(open(p))


def ids(xs):
    return ",".join(map(str, xs))


@test
def test_cli_llada_dream_bert_goldens():
    for name in ["llada-tiny", "dream-tiny", "bert-tiny"]:
        for r in golden(name)["runs"]:
            args = ["diffuse", "--model", os.path.join(M, name), "--prompt-ids", ids(r["prompt_ids"]),
                    "--gen-length", r["gen_length"], "--steps", r["steps"], "--block-length", r["block_length"],
                    "--ids", "--no-stop"]
            if r["suffix_ids"]:
                args += ["--suffix-ids", ids(r["suffix_ids"])]
            out = aios(*args).stdout.split()
            assert list(map(int, out)) == r["output_ids"], (name, out, r["output_ids"])


@test
def test_cli_bd3lm_golden_cached_and_uncached():
    for r in golden("bd3lm-qwen3-tiny")["runs"]:
        B = r["block_size"]
        for cache in ["exact", "none"]:
            out = aios("diffuse", "--model", os.path.join(M, "bd3lm-qwen3-tiny"), "--prompt-ids", ids(r["prompt_ids"]),
                       "--gen-length", B * r["blocks"], "--steps", r["steps_per_block"] * r["blocks"],
                       "--block-length", B, "--cache", cache, "--ids", "--no-stop").stdout.split()
            assert list(map(int, out)) == r["output_ids"], (cache, out, r["output_ids"])


@test
def test_cli_generated_span_and_stats():
    r = golden("llada-tiny")["runs"][3]  # with a suffix
    p = aios("diffuse", "--model", os.path.join(M, "llada-tiny"), "--prompt-ids", ids(r["prompt_ids"]),
             "--suffix-ids", ids(r["suffix_ids"]), "--gen-length", r["gen_length"], "--steps", r["steps"],
             "--block-length", r["block_length"], "--stats", "--show")
    P = len(r["prompt_ids"])
    assert list(map(int, p.stdout.split())) == r["output_ids"][P:P + r["gen_length"]]
    assert "uncertainty" in p.stderr and "step" in p.stderr


@test
def test_cli_errors():
    assert aios("diffuse", check=False).returncode == 2
    assert aios("diffuse", "--model", "x", "--prompt-ids", "1,a", check=False).returncode == 2
    assert aios("diffuse", "--model", "x", "--prompt-ids", "1", "--algorithm", "best", check=False).returncode == 2
    assert aios("diffuse", "--model", "x", "--prompt-ids", "1", "--threshold", "2", check=False).returncode == 2
    p = aios("diffuse", "--model", os.path.join(M, "qwen2-tiny"), "--prompt-ids", "1", check=False)
    assert p.returncode == 1 and p.stderr.startswith("aios: diffuse:"), p.stderr
    p = aios("diffuse", "--model", os.path.join(M, "llada-tiny"), "--prompt-ids", "1,5000", check=False)
    assert p.returncode == 1 and "vocabulary" in p.stderr, p.stderr
    assert "usage" in aios("diffuse", "--help").stdout


if __name__ == "__main__":
    run()
