"""Reference denoisers in float64 numpy for the diffusion tests, and a ctypes binding of
libaios's sampler (aios_diffuse_sample) so a Python denoiser can drive it.

The forward passes are written from the model definitions (fixtures/README.md,
fixtures/make_fixtures.py's ref_decoder_logits, Hugging Face BertForMaskedLM) and are checked
against the fixtures' own logits (golden.safetensors) before they are trusted.
"""
import ctypes as C
import json
import math
import os
import struct

import numpy as np

# ---------------------------------------------------------------------------------------
# safetensors (only what the fixtures use)
# ---------------------------------------------------------------------------------------

def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = raw[base + a:base + b]
        dt = v["dtype"]
        if dt == "BF16":
            arr = (np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt == "F32":
            arr = np.frombuffer(buf, dtype=np.float32)
        elif dt == "I32":
            arr = np.frombuffer(buf, dtype=np.int32)
        elif dt == "I64":
            arr = np.frombuffer(buf, dtype=np.int64)
        else:
            raise ValueError(f"dtype {dt}")
        out[k] = arr.reshape(v["shape"]).astype(np.float64 if arr.dtype.kind == "f" else arr.dtype)
    return out


# ---------------------------------------------------------------------------------------
# decoders (Llama / Qwen2 / Qwen3 / LLaDA), float64
# ---------------------------------------------------------------------------------------

def hf_name(l, role, tied=True):
    if l is None:
        return {"embed": "model.embed_tokens.weight", "final_norm": "model.norm.weight",
                "lm_head": "model.embed_tokens.weight" if tied else "lm_head.weight"}[role]
    p = f"model.layers.{l}."
    return p + {"attn_norm": "input_layernorm.weight", "mlp_norm": "post_attention_layernorm.weight",
                "q": "self_attn.q_proj.weight", "k": "self_attn.k_proj.weight",
                "v": "self_attn.v_proj.weight", "o": "self_attn.o_proj.weight",
                "q_bias": "self_attn.q_proj.bias", "k_bias": "self_attn.k_proj.bias",
                "v_bias": "self_attn.v_proj.bias", "q_norm": "self_attn.q_norm.weight",
                "k_norm": "self_attn.k_norm.weight", "gate": "mlp.gate_proj.weight",
                "up": "mlp.up_proj.weight", "down": "mlp.down_proj.weight"}[role]


def llada_name(l, role):
    if l is None:
        return {"embed": "model.transformer.wte.weight", "final_norm": "model.transformer.ln_f.weight",
                "lm_head": "model.transformer.ff_out.weight"}[role]
    p = f"model.transformer.blocks.{l}."
    return p + {"attn_norm": "attn_norm.weight", "mlp_norm": "ff_norm.weight", "q": "q_proj.weight",
                "k": "k_proj.weight", "v": "v_proj.weight", "o": "attn_out.weight",
                "q_bias": "q_proj.bias", "k_bias": "k_proj.bias", "v_bias": "v_proj.bias",
                "q_norm": "q_norm.weight", "k_norm": "k_norm.weight",
                "gate": "ff_proj.weight", "up": "up_proj.weight", "down": "ff_out.weight"}[role]


class Decoder:
    def __init__(self, d):
        cfg = json.load(open(os.path.join(d, "config.json")))
        self.W = load_safetensors(os.path.join(d, "model.safetensors"))
        if cfg.get("model_type") == "llada":
            self.names = llada_name
            self.H, self.nh, self.nkv = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
            self.nl = cfg["n_layers"]
        else:
            tied = cfg.get("tie_word_embeddings", False)
            self.names = lambda l, r: hf_name(l, r, tied)
            self.H, self.nh = cfg["hidden_size"], cfg["num_attention_heads"]
            self.nkv, self.nl = cfg["num_key_value_heads"], cfg["num_hidden_layers"]
        self.hd = cfg.get("head_dim") or self.H // self.nh
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg.get("rope_theta") or cfg.get("rope_parameters", {}).get("rope_theta", 10000.0)
        self.V = cfg["vocab_size"]
        self.cfg = cfg

    def w(self, l, role):
        return self.W.get(self.names(l, role))

    def logits(self, ids, pos, vis):
        """ids (L), pos (L), vis (L, L) bool: row i may attend to key j."""
        ids = np.asarray(ids)
        L, nh, nkv, hd = len(ids), self.nh, self.nkv, self.hd
        x = self.w(None, "embed")[ids]
        inv = 1.0 / (self.theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        f = np.outer(np.asarray(pos, dtype=np.float64), inv)
        emb = np.concatenate([f, f], -1)
        cos, sin = np.cos(emb)[None], np.sin(emb)[None]
        mask = np.where(vis, 0.0, -np.inf)

        def rms(v, wt):
            return v / np.sqrt((v * v).mean(-1, keepdims=True) + self.eps) * wt

        def rot(v):
            h = v.shape[-1] // 2
            return np.concatenate([-v[..., h:], v[..., :h]], -1)

        def lin(v, l, role, brole=None):
            y = v @ self.w(l, role).T
            b = self.w(l, brole) if brole else None
            return y + b if b is not None else y

        for l in range(self.nl):
            h = rms(x, self.w(l, "attn_norm"))
            q = lin(h, l, "q", "q_bias").reshape(L, nh, hd).transpose(1, 0, 2)
            k = lin(h, l, "k", "k_bias").reshape(L, nkv, hd).transpose(1, 0, 2)
            v = lin(h, l, "v", "v_bias").reshape(L, nkv, hd).transpose(1, 0, 2)
            if self.w(l, "q_norm") is not None:
                q = rms(q, self.w(l, "q_norm"))
                k = rms(k, self.w(l, "k_norm"))
            q = q * cos + rot(q) * sin
            k = k * cos + rot(k) * sin
            rep = nh // nkv
            k = np.repeat(k, rep, axis=0)
            v = np.repeat(v, rep, axis=0)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            a = (s / s.sum(-1, keepdims=True)) @ v
            x = x + lin(a.transpose(1, 0, 2).reshape(L, nh * hd), l, "o")
            h = rms(x, self.w(l, "mlp_norm"))
            g = lin(h, l, "gate")
            x = x + lin(g / (1 + np.exp(-g)) * lin(h, l, "up"), l, "down")
        x = rms(x, self.w(None, "final_norm"))
        return x @ self.w(None, "lm_head").T


_erf = np.vectorize(math.erf)


class BertMLM:
    def __init__(self, d):
        self.cfg = json.load(open(os.path.join(d, "config.json")))
        self.W = load_safetensors(os.path.join(d, "model.safetensors"))
        self.V = self.cfg["vocab_size"]

    def logits(self, ids, pos, vis):
        W, c = self.W, self.cfg
        ids = np.asarray(ids)
        L, H, nh = len(ids), c["hidden_size"], c["num_attention_heads"]
        hd = H // nh
        eps = c["layer_norm_eps"]

        def ln(v, p):
            m = v.mean(-1, keepdims=True)
            var = ((v - m) ** 2).mean(-1, keepdims=True)
            return (v - m) / np.sqrt(var + eps) * W[p + ".weight"] + W[p + ".bias"]

        def lin(v, p):
            return v @ W[p + ".weight"].T + W[p + ".bias"]

        def gelu(v):
            return 0.5 * v * (1 + _erf(v / math.sqrt(2)))

        e = "bert.embeddings."
        x = W[e + "word_embeddings.weight"][ids] + W[e + "position_embeddings.weight"][np.arange(L)] \
            + W[e + "token_type_embeddings.weight"][0]
        x = ln(x, e + "LayerNorm")
        mask = np.where(vis, 0.0, -np.inf)
        for l in range(c["num_hidden_layers"]):
            p = f"bert.encoder.layer.{l}."
            q = lin(x, p + "attention.self.query").reshape(L, nh, hd).transpose(1, 0, 2)
            k = lin(x, p + "attention.self.key").reshape(L, nh, hd).transpose(1, 0, 2)
            v = lin(x, p + "attention.self.value").reshape(L, nh, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            a = ((s / s.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(L, H)
            x = ln(x + lin(a, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            i = gelu(lin(x, p + "intermediate.dense"))
            x = ln(x + lin(i, p + "output.dense"), p + "output.LayerNorm")
        t = ln(gelu(lin(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
        return t @ W[e + "word_embeddings.weight"].T + W["cls.predictions.bias"]


# ---------------------------------------------------------------------------------------
# ctypes binding of the sampler
# ---------------------------------------------------------------------------------------

FORWARD = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(C.c_int32), C.POINTER(C.c_int32), C.c_int64, C.c_int64,
                      C.POINTER(C.c_uint8), C.c_int64, C.c_int64, C.POINTER(C.c_float))
ON_STEP = C.CFUNCTYPE(None, C.c_void_p, C.POINTER(C.c_int32), C.c_int64, C.c_int)


class Denoiser(C.Structure):
    _fields_ = [("ctx", C.c_void_p), ("n_vocab", C.c_int64), ("mask_id", C.c_int32), ("pad_id", C.c_int32),
                ("shift", C.c_int), ("attn", C.c_int), ("block_size", C.c_int32), ("max_ctx", C.c_int64),
                ("n_eos", C.c_int64), ("eos_ids", C.c_int32 * 8), ("forward", FORWARD)]


class Params(C.Structure):
    _fields_ = [("gen_length", C.c_int64), ("steps", C.c_int), ("block_length", C.c_int64),
                ("algorithm", C.c_int), ("plan", C.c_int), ("plan_eps", C.c_double),
                ("temperature", C.c_double), ("top_k", C.c_int), ("top_p", C.c_double),
                ("guidance_scale", C.c_double), ("threshold", C.c_double), ("kv_cache", C.c_int),
                ("stop_at_eos", C.c_int), ("seed", C.c_uint64), ("keep_trace", C.c_int),
                ("on_step", ON_STEP), ("user", C.c_void_p), ("add_special_tokens", C.c_int),
                ("memory_guided", C.c_int), ("memory_store", C.c_char_p), ("memory_encoder", C.c_char_p),
                ("memory_top_k", C.c_int32), ("memory_token_budget", C.c_int64),
                ("uncertainty_threshold", C.c_double)]


class Commit(C.Structure):
    _fields_ = [("step", C.c_int32), ("position", C.c_int64), ("token", C.c_int32), ("confidence", C.c_float)]


class Result(C.Structure):
    _fields_ = [("ids", C.POINTER(C.c_int32)), ("n_ids", C.c_int64), ("left_pad", C.c_int64),
                ("gen_start", C.c_int64), ("gen_len", C.c_int64), ("stopped_at_eos", C.c_int),
                ("n_steps", C.c_int), ("n_forward", C.c_int64), ("rows_computed", C.c_int64), ("logits_rows", C.c_int64),
                ("trace", C.POINTER(Commit)), ("n_trace", C.c_int64), ("mean_entropy", C.c_double),
                ("mean_one_minus_conf", C.c_double), ("uncertainty", C.c_double),
                ("step_entropy", C.POINTER(C.c_double)), ("step_one_minus_conf", C.POINTER(C.c_double)),
                ("uncertain", C.c_int), ("seconds", C.c_double), ("text", C.c_char_p),
                ("n_memories", C.c_int32), ("memory_ids", C.c_void_p), ("memory_scores", C.POINTER(C.c_float))]


def load_lib(aios_bin):
    lib = C.CDLL(os.path.join(os.path.dirname(aios_bin), "libaios.so"))
    lib.aios_diffuse_default_params.restype = Params
    lib.aios_diffuse_sample.argtypes = [C.POINTER(Denoiser), C.POINTER(Params), C.POINTER(C.c_int32), C.c_int64,
                                        C.POINTER(C.c_int32), C.c_int64, C.POINTER(Result)]
    lib.aios_diffuse_sample.restype = C.c_int
    lib.aios_diffuse_result_free.argtypes = [C.POINTER(Result)]
    lib.aios_last_error.restype = C.c_char_p
    return lib


def sample(lib, model, mask_id, params, prompt, suffix=(), shift=False, block_causal=False, pad_id=-1,
           block_size=0):
    """Runs aios_diffuse_sample with `model.logits` as the denoiser (no cache).
    Returns (ids, trace as [step][[pos, tok, conf]], result fields)."""
    err = []

    def fwd(ctx, ids, pos, n_new, n_past, vis, out_lo, n_out, logits):
        try:
            assert n_past == 0
            idv = np.ctypeslib.as_array(ids, (n_new,)).copy()
            pv = np.ctypeslib.as_array(pos, (n_new,)).copy()
            vv = np.ctypeslib.as_array(vis, (n_new, n_new)).astype(bool)
            lg = model.logits(idv, pv, vv)[out_lo:out_lo + n_out]
            out = np.ctypeslib.as_array(logits, (n_out, model.V))
            out[:] = lg.astype(np.float32)
            return 0
        except Exception as e:  # noqa: BLE001 - reported by the caller
            err.append(e)
            return -11

    cb = FORWARD(fwd)
    d = Denoiser()
    d.n_vocab = model.V
    d.mask_id = mask_id
    d.pad_id = pad_id
    d.shift = 1 if shift else 0
    d.attn = 1 if block_causal else 0
    d.block_size = block_size
    d.max_ctx = 0
    d.forward = cb
    pr = (C.c_int32 * max(len(prompt), 1))(*prompt)
    sf = (C.c_int32 * max(len(suffix), 1))(*suffix)
    r = Result()
    s = lib.aios_diffuse_sample(C.byref(d), C.byref(params), pr, len(prompt), sf, len(suffix), C.byref(r))
    if err:
        raise err[0]
    if s != 0:
        raise AssertionError(f"aios_diffuse_sample: {s}: {lib.aios_last_error().decode()}")
    ids = [r.ids[i] for i in range(r.n_ids)]
    trace = [[] for _ in range(r.n_steps)]
    for i in range(r.n_trace):
        c = r.trace[i]
        trace[c.step].append([c.position, c.token, c.confidence])
    info = {"n_steps": r.n_steps, "left_pad": r.left_pad, "uncertainty": r.uncertainty,
            "n_forward": r.n_forward}
    lib.aios_diffuse_result_free(C.byref(r))
    return ids, trace, info
