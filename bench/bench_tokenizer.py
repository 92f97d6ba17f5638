"""Tokenizer throughput: AIOS (libaios.so through ctypes) against Hugging Face `tokenizers`, same
process, same inputs.

Encodes Alice in Wonderland (data/text/pg11-alice.txt) line by line with special tokens, per
tokenizer: single thread (one encode call per line on both sides) and batched on 2 threads
(`encode_batch` with RAYON_NUM_THREADS=2 against aios_tokenizer_encode_batch(n_threads=2)).
Prints tokens/s and the ratio AIOS / HF (best of REPEAT runs: the machine is shared), plus the
time to load tokenizer.json.  ctypes adds ~1 us per call to our side; HF pays its own binding
cost, so the single-thread comparison is call-for-call.

    python bench/bench_tokenizer.py            (env: AIOS_SHARED, AIOS_LIB, REPEAT)
"""
import ctypes
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
from tokenizers import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("AIOS_SHARED") or os.path.join(ROOT, "..", "shared")
LIB = os.environ.get("AIOS_LIB") or os.path.join(ROOT, os.environ.get("O", "build"), "libaios.so")
REPEAT = int(os.environ.get("REPEAT", "3"))

TOKS = [
    ("bert-base-uncased", "models/bert-base-uncased/tokenizer.json"),
    ("all-MiniLM-L6-v2", "models/all-MiniLM-L6-v2/tokenizer.json"),
    ("llama2-tokenizer", "fixtures/tokenizers/llama2-tokenizer.tokenizer.json"),
    ("smollm2-135m-instruct", "models/smollm2-135m-instruct/tokenizer.json"),
    ("qwen2.5-0.5b-instruct", "fixtures/tokenizers/qwen2.5-0.5b-instruct.tokenizer.json"),
    ("t5-small", "models/t5-small/tokenizer.json"),
]


class Enc(ctypes.Structure):
    _fields_ = [("n", ctypes.c_size_t)]


def load_lib():
    lib = ctypes.CDLL(LIB)
    lib.aios_tokenizer_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.aios_tokenizer_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                                          ctypes.POINTER(ctypes.POINTER(Enc))]
    lib.aios_tokenizer_encode_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                                                ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t, ctypes.c_void_p,
                                                ctypes.c_int, ctypes.POINTER(ctypes.POINTER(Enc))]
    lib.aios_encoding_free.argtypes = [ctypes.POINTER(Enc)]
    lib.aios_tokenizer_free.argtypes = [ctypes.c_void_p]
    lib.aios_last_error.restype = ctypes.c_char_p
    return lib


def best(fn):
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t0)
    return min(times), r


def main():
    lib = load_lib()
    with open(os.path.join(SHARED, "data/text/pg11-alice.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    blines = [l.encode() for l in lines]
    n = len(blines)
    arr_t = (ctypes.c_char_p * n)(*blines)
    arr_l = (ctypes.c_size_t * n)(*[len(b) for b in blines])
    outs = (ctypes.POINTER(Enc) * n)()
    print(f"{n} lines of Alice in Wonderland, best of {REPEAT}; tokens/s (M = millions); ratio = AIOS / HF")
    hdr = f"{'tokenizer':24} {'load ms HF':>10} {'AIOS':>7} | {'1 thread HF':>11} {'AIOS':>8} {'ratio':>6} | {'2 threads HF':>12} {'AIOS':>8} {'ratio':>6}"
    print(hdr)
    print("-" * len(hdr))
    for name, rel in TOKS:
        path = os.path.join(SHARED, rel)
        if not os.path.exists(path):
            print(f"{name:24} missing {path}")
            continue
        t_hf_load, hf = best(lambda: Tokenizer.from_file(path))
        handle = ctypes.c_void_p()

        def load_ours():
            h = ctypes.c_void_p()
            if lib.aios_tokenizer_load(path.encode(), ctypes.byref(h)) != 0:
                sys.exit(f"aios load failed: {lib.aios_last_error().decode()}")
            return h

        t_ai_load, handle = best(load_ours)

        def hf_single():
            return sum(len(hf.encode(l).ids) for l in lines)

        def ai_single():
            tot = 0
            e = ctypes.POINTER(Enc)()
            for b in blines:
                if lib.aios_tokenizer_encode(handle, b, len(b), None, ctypes.byref(e)) != 0:
                    sys.exit(f"aios encode failed: {lib.aios_last_error().decode()}")
                tot += e.contents.n
                lib.aios_encoding_free(e)
            return tot

        def hf_batch():
            return sum(len(x.ids) for x in hf.encode_batch(lines))

        def ai_batch():
            if lib.aios_tokenizer_encode_batch(handle, arr_t, arr_l, n, None, 2, outs) != 0:
                sys.exit(f"aios batch failed: {lib.aios_last_error().decode()}")
            tot = 0
            for i in range(n):
                tot += outs[i].contents.n
                lib.aios_encoding_free(outs[i])
            return tot

        t_hs, ntok = best(hf_single)
        t_as, ntok2 = best(ai_single)
        t_hb, _ = best(hf_batch)
        t_ab, _ = best(ai_batch)
        if ntok != ntok2:
            print(f"  warning: token counts differ: HF {ntok} AIOS {ntok2}")
        r1 = (ntok / t_as) / (ntok / t_hs)
        r2 = (ntok / t_ab) / (ntok / t_hb)
        print(f"{name:24} {t_hf_load * 1e3:10.1f} {t_ai_load * 1e3:7.1f} | {ntok / t_hs / 1e6:10.2f}M {ntok / t_as / 1e6:7.2f}M "
              f"{r1:5.2f}x | {ntok / t_hb / 1e6:11.2f}M {ntok / t_ab / 1e6:7.2f}M {r2:5.2f}x", flush=True)
        lib.aios_tokenizer_free(handle)


if __name__ == "__main__":
    main()
