"""Kernels against PyTorch (and numpy float64) through ctypes on build/libaios.so:
GELU (erf form), LayerNorm, RMSNorm, softmax, SiLU, masked attention with GQA, RoPE
(rotate_half) and matmul on f32/f16/bf16 weights — on every tier this CPU has."""
import ctypes
import math
import os

import numpy as np

from harness import ROOT, Skip, run, test

LIB = os.path.join(ROOT, os.environ.get("O", "build"), "libaios.so")
F = ctypes.POINTER(ctypes.c_float)

try:
    import torch
except Exception:  # noqa: BLE001
    torch = None


def lib():
    if not os.path.exists(LIB):
        raise Skip(f"{LIB} not built")
    if torch is None:
        raise Skip("torch not importable")
    L = ctypes.CDLL(LIB)
    L.aios_kernels_use.argtypes = [ctypes.c_char_p]
    L.aios_kernels_tier.restype = ctypes.c_char_p
    return L


def ptr(a):
    assert a.dtype == np.float32 and a.flags.c_contiguous
    return a.ctypes.data_as(F)


def tiers(L):
    out = []
    for t in (b"ref", b"avx2", b"avx512"):
        if L.aios_kernels_use(t) == 0:
            out.append(t)
    return out


rng = np.random.default_rng(7)
SIZES = (1, 7, 33, 4097)


@test
def gelu_silu_softmax_vs_torch():
    L = lib()
    for t in tiers(L):
        L.aios_kernels_use(t)
        for n in SIZES:
            x = (rng.standard_normal(n) * 4).astype(np.float32)
            g = x.copy()
            L.aios_gelu(ptr(g), ctypes.c_int64(n))
            want = torch.nn.functional.gelu(torch.from_numpy(x.astype(np.float64))).numpy()
            assert np.max(np.abs(g - want)) < 2e-6 * (1 + np.max(np.abs(want))), (t, n)
            s = x.copy()
            L.aios_silu(ptr(s), ctypes.c_int64(n))
            want = torch.nn.functional.silu(torch.from_numpy(x.astype(np.float64))).numpy()
            assert np.max(np.abs(s - want)) < 2e-6 * (1 + np.max(np.abs(want))), (t, n)
            rows = 3
            m = (rng.standard_normal((rows, n)) * 8).astype(np.float32)
            sm = m.copy()
            L.aios_softmax(ptr(sm), ctypes.c_int64(rows), ctypes.c_int64(n))
            want = torch.softmax(torch.from_numpy(m.astype(np.float64)), -1).numpy()
            assert np.max(np.abs(sm - want) / (want + 1e-12)) < 2e-5, (t, n)
    L.aios_kernels_use(b"auto")


@test
def layernorm_rmsnorm_vs_torch():
    L = lib()
    for t in tiers(L):
        L.aios_kernels_use(t)
        for n in SIZES:
            T = 4
            x = (rng.standard_normal((T, n)) * 3 + 2).astype(np.float32)
            w = rng.standard_normal(n).astype(np.float32)
            b = rng.standard_normal(n).astype(np.float32)
            y = np.empty_like(x)
            L.aios_layernorm(ptr(y), ptr(x), ptr(w), ptr(b), ctypes.c_int64(T), ctypes.c_int64(n), ctypes.c_float(1e-12))
            want = torch.nn.functional.layer_norm(torch.from_numpy(x.astype(np.float64)), (n,),
                                                  torch.from_numpy(w.astype(np.float64)),
                                                  torch.from_numpy(b.astype(np.float64)), 1e-12).numpy()
            assert np.max(np.abs(y - want)) < 2e-5 * (1 + np.max(np.abs(want))), (t, n, np.max(np.abs(y - want)))
            L.aios_rmsnorm(ptr(y), ptr(x), ptr(w), ctypes.c_int64(T), ctypes.c_int64(n), ctypes.c_float(1e-6))
            xd = x.astype(np.float64)
            want = xd / np.sqrt((xd * xd).mean(-1, keepdims=True) + 1e-6) * w
            assert np.max(np.abs(y - want)) < 2e-5 * (1 + np.max(np.abs(want))), (t, n)
    L.aios_kernels_use(b"auto")


@test
def attention_vs_torch_sdpa():
    L = lib()
    for t in tiers(L):
        L.aios_kernels_use(t)
        for (Tq, Tk, H, Hkv, hd) in ((1, 1, 1, 1, 1), (7, 7, 4, 2, 7), (33, 33, 6, 3, 33), (5, 40, 8, 2, 64)):
            q = rng.standard_normal((Tq, H, hd)).astype(np.float32)
            k = rng.standard_normal((Tk, Hkv, hd)).astype(np.float32)
            v = rng.standard_normal((Tk, Hkv, hd)).astype(np.float32)
            keep = rng.random(Tk) > 0.3
            keep[0] = True
            mask = np.repeat(keep[None, :], Tq, 0).astype(np.uint8)
            out = np.empty((Tq, H, hd), np.float32)
            rc = L.aios_attention(ptr(out), ptr(q), ptr(k), ptr(v), ctypes.c_int64(Tq), ctypes.c_int64(Tk),
                                  ctypes.c_int64(H), ctypes.c_int64(Hkv), ctypes.c_int64(hd), ctypes.c_int64(Hkv * hd),
                                  mask.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), ctypes.c_float(1 / math.sqrt(hd)))
            assert rc == 0
            qt = torch.from_numpy(q.astype(np.float64)).transpose(0, 1)
            kt = torch.from_numpy(k.astype(np.float64)).transpose(0, 1).repeat_interleave(H // Hkv, 0)
            vt = torch.from_numpy(v.astype(np.float64)).transpose(0, 1).repeat_interleave(H // Hkv, 0)
            bias = torch.zeros(Tq, Tk, dtype=torch.float64).masked_fill(~torch.from_numpy(mask.astype(bool)), float("-inf"))
            want = torch.softmax(qt @ kt.transpose(1, 2) / math.sqrt(hd) + bias, -1) @ vt
            want = want.transpose(0, 1).numpy()
            err = np.linalg.norm(out - want) / np.linalg.norm(want)
            assert err < 1e-5, (t, Tq, Tk, err)
    L.aios_kernels_use(b"auto")


@test
def rope_vs_rotate_half():
    L = lib()
    for t in tiers(L):
        L.aios_kernels_use(t)
        T, H, hd = 6, 3, 64
        x = rng.standard_normal((T, H, hd)).astype(np.float32)
        pos = np.array([0, 1, 2, 17, 511, 4096], np.int32)
        inv = (1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))).numpy().astype(np.float32)
        y = x.copy()
        L.aios_rope(ptr(y), pos.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), ctypes.c_int64(T), ctypes.c_int64(H),
                    ctypes.c_int64(hd), ptr(inv))
        # transformers: freqs = pos (float32) x inv_freq (float32); emb = cat(freqs, freqs); x*cos + rotate_half(x)*sin
        freqs = torch.from_numpy(pos).float()[:, None] * torch.from_numpy(inv)[None, :]
        emb = torch.cat((freqs, freqs), -1)
        cos, sin = emb.cos()[:, None, :].double(), emb.sin()[:, None, :].double()
        xt = torch.from_numpy(x).double()
        rot = torch.cat((-xt[..., hd // 2:], xt[..., :hd // 2]), -1)
        want = (xt * cos + rot * sin).numpy()
        assert np.max(np.abs(y - want)) < 1e-5, (t, np.max(np.abs(y - want)))
    L.aios_kernels_use(b"auto")


class Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * 8), ("data", ctypes.c_void_p), ("nbytes", ctypes.c_size_t),
                ("scales", ctypes.c_void_p), ("zero_points", ctypes.c_void_p), ("n_scales", ctypes.c_int64),
                ("quant_axis", ctypes.c_int32), ("group_size", ctypes.c_int32),
                ("scale_dtype", ctypes.c_int32)]


@test
def matmul_half_weights_vs_torch():
    L = lib()
    for t in tiers(L):
        L.aios_kernels_use(t)
        for (n_out, n_in, T) in ((7, 33, 5), (33, 4097, 3), (64, 384, 40)):
            for dt, tdt in ((0, torch.float32), (1, torch.float16), (2, torch.bfloat16)):
                w = torch.randn(n_out, n_in, dtype=torch.float64).to(tdt)
                raw = w.view(torch.int16).numpy().copy() if dt else w.numpy().copy()
                x = rng.standard_normal((T, n_in)).astype(np.float32)
                bias = rng.standard_normal(n_out).astype(np.float32)
                tw = Tensor(b"w", dt, 2, (ctypes.c_int64 * 8)(n_out, n_in), raw.ctypes.data, raw.nbytes, None, None, 0, -1, 0)
                y = np.empty((T, n_out), np.float32)
                assert L.aios_matmul(ptr(y), ptr(x), ctypes.byref(tw), ptr(bias), ctypes.c_int64(T)) == 0
                want = (torch.from_numpy(x).double() @ w.double().T + torch.from_numpy(bias).double()).numpy()
                err = np.linalg.norm(y - want) / np.linalg.norm(want)
                assert err < 5e-6, (t, dt, n_out, n_in, err)
    L.aios_kernels_use(b"auto")


run()
