"""`aios tokenize` / `aios detokenize` against Hugging Face `tokenizers` run in this process.

Seeded random texts (ASCII, Latin with accents, combining marks, CJK, emoji, whitespace runs,
special-token look-alikes) through each of the six fixture tokenizers: ids, tokens, offsets
(with and without special tokens) and decode must equal `tokenizers` exactly.
"""
import json
import os
import random
import subprocess

from harness import AIOS, SHARED, Skip, aios, run, test

TOKS = {
    "bert-base-uncased": "models/bert-base-uncased/tokenizer.json",
    "all-MiniLM-L6-v2": "models/all-MiniLM-L6-v2/tokenizer.json",
    "llama2-tokenizer": "fixtures/tokenizers/llama2-tokenizer.tokenizer.json",
    "smollm2-135m-instruct": "models/smollm2-135m-instruct/tokenizer.json",
    "qwen2.5-0.5b-instruct": "fixtures/tokenizers/qwen2.5-0.5b-instruct.tokenizer.json",
    "t5-small": "models/t5-small/tokenizer.json",
}
# small tokenizers made by tools/make_tokenizer_seeds.py: the remaining component types
HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "..", "..", "fuzz", "corpus", "fuzz_tokenizer_load")
for _n in ("wordpiece", "bytelevel_bpe", "spm_bpe", "unigram", "wordlevel", "bpe_suffix", "nmt_fixed", "added_tokens", "roberta",
           "metaspace_first", "split_behaviors"):
    TOKS["seed-" + _n] = os.path.join(SEEDS, _n + ".json")

PIECES = ["hello", "World", " ", "  ", "\t", "\n", "\r\n", "don't", "I'm", "123", "4567", "3.14", "-", "...",
          "é", "e\u0301", "ñ", "Å", "ß", "İ", "ﬁ", "Ｆ", "中文", "日本語", "한국어", "Привет", "مرحبا", "😀", "👍🏽",
          "👨\u200d👩", "\u200b", "\u00a0", "\u3000", "<s>", "</s>", "[CLS]", "[MASK]", "<|endoftext|>", "<|im_start|>",
          "<extra_id_0>", "<unk>", "##ing", "▁", "Ġ", "\x00", "\x7f", "\ufeff", "ǅ", "Σ", "x" * 30, "a_b", "$$",
          "((", "))", "'s", "’", "“", "—", "…", "\u0300", "क्षि", "ไทย", "\U0001F600\U0001F600",
          "o" + "\u0301\u0316\u0327\u0308\u05b0" * 9]  # a long run of marks to reorder


def texts(seed, n):
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        k = rnd.randint(0, 12)
        out.append("".join(rnd.choice(PIECES) for _ in range(k)))
    return out


def load(name):
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise Skip(f"tokenizers not installed: {e}")
    path = TOKS[name] if os.path.isabs(TOKS[name]) else os.path.join(SHARED, TOKS[name])
    if not os.path.exists(path):
        raise Skip(f"missing {path}")
    return path, Tokenizer.from_file(path)


def check(name, seed):
    path, ref = load(name)
    inputs = texts(seed, 300)
    stdin = "".join(json.dumps(t) + "\n" for t in inputs)
    for special in (True, False):
        args = ["tokenize", "--tokenizer", path, "--jsonl"] + ([] if special else ["--no-special"])
        got = [json.loads(l) for l in aios(*args, input=stdin).stdout.splitlines()]
        assert len(got) == len(inputs), f"{len(got)} outputs for {len(inputs)} inputs"
        for t, g in zip(inputs, got):
            e = ref.encode(t, add_special_tokens=special)
            want = {"ids": e.ids, "tokens": e.tokens, "offsets": [list(o) for o in e.offsets]}
            assert g == want, f"{name} special={special} text={t!r}:\n got  {g}\n want {want}"
    ids_in = "".join(" ".join(map(str, ref.encode(t).ids)) + "\n" for t in inputs)
    for skip in (False, True):
        args = ["detokenize", "--tokenizer", path, "--jsonl"] + (["--skip-special"] if skip else [])
        got = [json.loads(l) for l in aios(*args, input=ids_in).stdout.splitlines()]
        assert len(got) == len(inputs)
        for i, t in enumerate(inputs):
            want = ref.decode(ref.encode(t).ids, skip_special_tokens=skip)
            assert got[i] == want, f"{name} decode skip={skip} text={t!r}: got {got[i]!r} want {want!r}"


def make(name, seed):
    def f():
        check(name, seed)
    f.__name__ = f"random_texts_{name}"
    return f


@test
def malformed_utf8_is_replaced():
    """Markus Kuhn's UTF-8 stress test, raw bytes per line: ids equal `tokenizers` on the text
    as Python's errors="replace" repairs it (the same maximal-subpart rule as Rust's lossy)."""
    src = os.path.join(SHARED, "data/text/UTF-8-test.txt")
    if not os.path.exists(src):
        raise Skip("no UTF-8-test.txt")
    raw = open(src, "rb").read().split(b"\n")
    for name in ("bert-base-uncased", "qwen2.5-0.5b-instruct", "llama2-tokenizer", "t5-small"):
        path, ref = load(name)
        lines = [l for l in raw if b"\r" not in l]
        p = subprocess.run([AIOS, "tokenize", "--tokenizer", path], input=b"\n".join(lines) + b"\n",
                           capture_output=True)
        assert p.returncode == 0, p.stderr
        got = p.stdout.decode().split("\n")
        for i, l in enumerate(lines):
            want = " ".join(map(str, ref.encode(l.decode("utf-8", errors="replace")).ids))
            assert got[i] == want, f"{name} line {i} {l!r}: got {got[i]} want {want}"


for i, n in enumerate(TOKS):
    test(make(n, 1000 + i))

if __name__ == "__main__":
    run()
