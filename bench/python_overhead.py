"""What ArrowEngine.encode costs over the same call in C, for one 16-token sentence on
all-MiniLM-L6-v2, on one thread.

Two C figures: bench/encode_call.c times aios_encode_batch in a C program (the absolute figure),
and the same C function is called bare from this process, before and after every
engine.encode([text]) (argument checks, the C call, the zero-copy array).  The interleaving is
what makes a 5% comparison possible on a shared machine: both sides see the same neighbours.
Times are the thread's CPU time (the encoder runs on the calling thread).  Used by
bench/bench_python.py (table) and tests/py/test_python_bench.py (the <= 5% check)."""
import ctypes
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


def measure(aios, model, exe, n=200):
    """Returns a dict: c_prog (median us of the C program), c (median of the bare C calls made
    here), py (median of engine.encode, alternating with them), wrapper (mean us of encode()
    with the C call replaced by a no-op: what the binding itself costs), n_tokens."""
    e = aios.ArrowEngine(model, n_threads=1)
    n_tok = len(e.tokenize(TEXT))
    lib = aios._lib.lib
    enc = e._encoder(32, 1)
    b = TEXT.encode()
    texts = (ctypes.c_char_p * 1)(b)
    lens = (ctypes.c_size_t * 1)(len(b))
    out = lib.aios_alloc(384 * 4)
    for _ in range(20):
        e.encode([TEXT])
        lib.aios_encode_batch(enc, texts, lens, 1, out, None, None)
    c_prog = None
    if exe:
        r = subprocess.run([exe, model, TEXT, str(n)], check=True, capture_output=True, text=True).stdout.split()
        c_prog = float(r[0])
    tc, tp = [], []
    clock = time.thread_time_ns
    for i in range(n):
        # C, Python, C: each Python call sits between two C calls, so a position in the pattern
        # (the second call of a pair finds warmer caches: ~2% on its own) favours neither side
        t0 = clock()
        lib.aios_encode_batch(enc, texts, lens, 1, out, None, None)
        t1 = clock()
        e.encode([TEXT])
        t2 = clock()
        lib.aios_encode_batch(enc, texts, lens, 1, out, None, None)
        t3 = clock()
        tc += [(t1 - t0) / 1e3, (t3 - t2) / 1e3]
        tp.append((t2 - t1) / 1e3)
    # the wrapper's own cost: encode() with the C function swapped for a no-op
    real = lib.aios_encode_batch
    lib.aios_encode_batch = lambda *a: 0
    try:
        t0 = clock()
        for _ in range(n):
            e.encode([TEXT])
        wrapper = (clock() - t0) / 1e3 / n
    finally:
        lib.aios_encode_batch = real
    lib.aios_free(out)
    e.close()
    tc.sort()
    tp.sort()
    return {"c_prog": c_prog, "c": tc[n], "py": tp[n // 2], "c_min": tc[0], "py_min": tp[0], "n_tokens": n_tok,
            "wrapper": wrapper}


if __name__ == "__main__":
    sys.exit("use bench/bench_python.py")
