"""`aios generate` / `aios chat` from the command line, judged by goldens made by transformers
(fixtures/*/golden.safetensors read here with numpy) and by llama2.c's own output."""
import json
import os
import struct

import numpy as np

from harness import SHARED, TMP, Skip, aios, cpu_has_vnni, run, test


def golden(d):
    """Tensors of a safetensors file (I32 / F32 only) as numpy arrays."""
    with open(os.path.join(d, "golden.safetensors"), "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    hdr = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        dt = {"I32": np.int32, "F32": np.float32}[v["dtype"]]
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[base + b:base + e], dtype=dt).reshape(v["shape"])
    return out


def fixture(rel):
    d = os.path.join(SHARED, "fixtures", rel)
    if not os.path.isdir(d):
        raise Skip(f"{d} not found")
    return d


@test
def generate_ids_match_transformers_greedy():
    for rel in ["models/qwen2-tiny", "models/qwen3-tiny", "models-lm/llama-tiny"]:
        d = fixture(rel)
        g = golden(d)
        ids = ",".join(str(int(x)) for x in g["prompt_ids"])
        p = aios("generate", "--model", d, "--prompt-ids", ids, "--max-tokens", 16, "--ignore-eos", "--ids")
        got = [int(x) for x in p.stdout.split()]
        assert got == [int(x) for x in g["greedy_ids"]], f"{rel}: {got}"


@test
def generate_text_prompt_smollm2():
    d = fixture("models-lm/smollm2-tiny")
    gj = json.load(open(os.path.join(d, "golden.json")))
    g = golden(d)
    p = aios("generate", "--model", d, "--prompt", gj["prompt"], "--max-tokens", 16, "--ignore-eos", "--ids")
    assert [int(x) for x in p.stdout.split()] == [int(x) for x in g["greedy_ids"]]
    p = aios("generate", "--model", d, "--prompt", gj["prompt"], "--max-tokens", 16, "--ignore-eos")
    assert p.stdout == gj["greedy_text"] + "\n", repr(p.stdout)


@test
def generate_stories260k_matches_llama2c():
    d = os.path.join(SHARED, "models", "stories260K")
    if not os.path.isdir(d):
        raise Skip("stories260K not found")
    exp = open(os.path.join(d, "expected_greedy_t0.txt")).read()
    ids = [int(x) for x in exp.split("\nids:")[1].split("\n")[0].split()]
    text = exp.split("\ntext:\n", 1)[1]
    p = aios("generate", "--model", d, "--prompt-ids", "1", "--max-tokens", 256, "--ids")
    assert [int(x) for x in p.stdout.split()] == [1] + ids
    p = aios("generate", "--model", d, "--prompt-ids", "1", "--max-tokens", 256)
    assert p.stdout == text, repr(p.stdout[-80:])


@test
def generate_seed_reproducible_and_sampling_flags():
    d = os.path.join(SHARED, "models", "stories260K")
    if not os.path.isdir(d):
        raise Skip("stories260K not found")
    args = ["generate", "--model", d, "--prompt", "Lily saw a cat", "--max-tokens", 40, "--temperature", 0.9,
            "--top-k", 40, "--top-p", 0.9, "--seed", 11, "--ids"]
    a = aios(*args).stdout
    b = aios(*args).stdout
    assert a == b
    c = aios(*args[:-2], "12", "--ids").stdout
    assert a != c


@test
def generate_usage_errors():
    p = aios("generate", "--prompt", "x", check=False)
    assert p.returncode == 2 and "--model" in p.stderr
    p = aios("generate", "--model", "/nonexistent", "--prompt", "x", check=False)
    assert p.returncode == 1 and p.stderr.startswith("aios: generate:"), p.stderr
    p = aios("generate", "--model", "x", "--prompt-ids", "1,a", check=False)
    assert p.returncode == 2
    p = aios("generate", "--model", "x", "--prompt", "a", "--top-p", "2", check=False)
    assert p.returncode == 2
    p = aios("generate", "--help")
    assert "--prompt-ids" in p.stdout and "--temperature" in p.stdout


@test
def chat_loop_keeps_conversation():
    d = os.path.join(SHARED, "models", "stories260K")
    if not os.path.isdir(d):
        raise Skip("stories260K not found")
    p = aios("chat", "--model", d, "--max-tokens", 8, "--seed", 1, input="Once upon a time\n/reset\nTom\n/quit\n")
    assert p.stdout.count("\n") >= 2 and "template plain" in p.stderr



@test
def default_activations_follow_the_weights():
    """`--int8-act auto` (the default, AIOS_INT8_ACT empty): a float model decodes with exact
    activations, the same model quantized to ArrowQuant int8 / int4 with 16-bit ones on the AVX2
    tier (exact elsewhere), int4 with float16 scales (the 8-row pack's) with 16-bit ones on AVX2
    and on AVX-512 with VNNI, and an int2 one exactly (no 16-bit kernel takes int2), as --stats
    says."""
    import re
    d = fixture("models-lm/smollm2-tiny")
    tier = re.search(r"kernel tier: (\S+)", aios("info").stdout).group(1)
    want16 = "16-bit" if tier == "avx2" else "exact"
    want16p = "16-bit" if tier == "avx2" or (tier == "avx512" and cpu_has_vnni()) else "exact"

    def act(m):
        r = aios("generate", "--model", m, "--prompt", "hello", "--max-tokens", 2, "--temperature", 0, "--stats",
                 env={"AIOS_INT8_ACT": ""})
        return re.search(r"; activations (\S+)\]", r.stderr).group(1)

    assert act(d) == "exact"
    for typ, f16, want in (("int8", 0, want16), ("int4", 0, want16), ("int4", 1, want16p), ("int2", 0, "exact")):
        q = os.path.join(TMP, f"smollm2-tiny-{typ}{'-f16' if f16 else ''}")
        aios("quantize", d, q, "--type", typ, *(("--group-size", "32") if typ != "int8" else ()),
             *(("--scale-type", "f16") if f16 else ()))
        assert act(q) == want, (typ, f16, tier, act(q))


if __name__ == "__main__":
    run()
