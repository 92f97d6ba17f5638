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


@test
def test_cli_text_prompt_bert():
    """Text in: tokenized by the model's tokenizer.json into [CLS] prompt ... suffix [SEP]; the
    golden ids come out, and the text is what `tokenizers` decodes from them."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise Skip("tokenizers not installed")
    d = os.path.join(M, "bert-tiny")
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    runs = golden("bert-tiny")["runs"]
    for r, suffix in [(runs[0], None), (runs[3], "and summer too")]:
        args = ["diffuse", "--model", d, "--prompt", "the best thing about spring is", "--gen-length", r["gen_length"],
                "--steps", r["steps"], "--block-length", r["block_length"]]
        if suffix:
            args += ["--suffix", suffix]
        ids = list(map(int, aios(*args, "--ids").stdout.split()))
        assert ids == r["output_ids"], (ids, r["output_ids"])
        P = len(r["prompt_ids"])
        text = aios(*args).stdout.rstrip("\n")
        assert text == tok.decode(r["output_ids"][P:P + r["gen_length"]], skip_special_tokens=True), text


@test
def test_cli_generate_mode_diffusion():
    r = golden("llada-tiny")["runs"][0]
    out = aios("generate", "--mode", "diffusion", "--model", os.path.join(M, "llada-tiny"), "--prompt-ids",
               ids(r["prompt_ids"]), "--max-tokens", r["gen_length"], "--steps", r["steps"], "--ids").stdout.split()
    assert list(map(int, out)) == r["output_ids"]
    assert aios("generate", "--mode", "sideways", "--model", "x", check=False).returncode == 2


@test
def test_cli_memory_guided():
    """--memory-store: memories added with `aios memory add --text` (embedded by bert-tiny) are
    placed after [CLS], best first, and named on stderr; the canvas decodes to their text."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise Skip("tokenizers not installed")
    import re
    import tempfile
    d = os.path.join(M, "bert-tiny")
    store = tempfile.mkdtemp(prefix="aios-diffuse-mem-")
    texts = ["spring flowers bloom in the garden", "the stock market fell sharply", "warm spring rain"]
    ids_of = {}
    for i, t in enumerate(texts):
        extra = ["--model", d] if i == 0 else []
        ids_of[aios("memory", "add", "--store", store, "--text", t, *extra).stdout.strip()] = t
    p = aios("diffuse", "--model", d, "--prompt", "the best thing about spring is", "--gen-length", 4, "--steps", 4,
             "--memory-store", store, "--memory-top-k", 2, "--ids")
    used = re.findall(r"memory (\S+) \(similarity ([0-9.-]+)\)", p.stderr)
    assert len(used) == 2 and float(used[0][1]) >= float(used[1][1]), p.stderr
    # the store's own ranking (aios memory search) agrees
    hits = aios("memory", "search", "--store", store, "--text", "the best thing about spring is", "--top-k", 2).stdout
    for mid, _ in used:
        assert mid in hits, (mid, hits)
    canvas = list(map(int, p.stdout.split()))
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    mem_ids = sum((tok.encode(ids_of[m], add_special_tokens=False).ids for m, _ in used), [])
    assert canvas[0] == 101 and canvas[1:1 + len(mem_ids)] == mem_ids, (canvas, mem_ids)
    prompt = tok.encode("the best thing about spring is", add_special_tokens=False).ids
    assert canvas[1 + len(mem_ids):1 + len(mem_ids) + len(prompt)] == prompt
    assert aios("diffuse", "--model", d, "--prompt-ids", "101", "--memory-store", store, check=False).returncode == 2


if __name__ == "__main__":
    run()
