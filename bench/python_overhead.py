"""What ArrowEngine.encode costs over the same call in C, for one 16-token sentence on
all-MiniLM-L6-v2: bench/encode_call.c times aios_encode_batch in a C loop; this times
engine.encode([text]) (argument checks, the C call, the zero-copy array) in a Python loop.
Both on one thread, interleaved in rounds, timed in the thread's CPU time (on a shared machine
wall time mostly measures the neighbours); the fastest call of each side (timeit's rule) is the
figure compared, medians are reported beside it.
Used by bench/bench_python.py (table) and tests/py/test_python_bench.py (the <= 5% check)."""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = "The quick brown fox jumps over the lazy dog near the riverbank."  # 16 tokens with [CLS], [SEP]


def build_c(out_dir, lib_dir):
    exe = os.path.join(out_dir, "encode_call")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-std=c11", "-D_GNU_SOURCE", "-I", os.path.join(ROOT, "include"),
                    "-o", exe, os.path.join(ROOT, "bench", "encode_call.c"), "-L", lib_dir, "-laios",
                    "-Wl,-rpath," + lib_dir], check=True, capture_output=True, text=True)
    return exe


def measure(aios, model, exe, rounds=5, n=200):
    """Returns (c_min_us, py_min_us, c_median_us, py_median_us, n_tokens): fastest call and the
    best round's median of each side."""
    e = aios.ArrowEngine(model, n_threads=1)
    n_tok = len(e.tokenize(TEXT))
    for _ in range(20):
        e.encode([TEXT])
    cs, ps, cmin, pmin = [], [], [], []
    for _ in range(rounds):
        out = subprocess.run([exe, model, TEXT, str(n)], check=True, capture_output=True, text=True).stdout.split()
        cs.append(float(out[0]))
        cmin.append(float(out[1]))
        t = []
        for _ in range(n):
            t0 = time.thread_time_ns()
            e.encode([TEXT])
            t.append((time.thread_time_ns() - t0) / 1e3)
        t.sort()
        ps.append(t[n // 2])
        pmin.append(t[0])
    e.close()
    return min(cmin), min(pmin), min(cs), min(ps), n_tok


if __name__ == "__main__":
    sys.exit("use bench/bench_python.py")
