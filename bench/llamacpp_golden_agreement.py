"""llama.cpp's agreement with the SmolLM2-135M-Instruct goldens, counted as tests/test_gguf_real.c
counts its own (test_real_gguf_int8_budget): the reference column of the int8-activation budget.

For each golden run (fixtures/real/smollm2-135m-instruct/golden.json): teacher-forced top-1 along
the golden greedy ids (steps whose golden top-1/top-2 margin is >= 1e-3), and free-running greedy
from the prompt ids, agreeing up to the first step whose margin is below 1e-3.  llama.cpp through
llama-cpp-python (bench/requirements.txt), one thread.

Usage: /work/venv-bench/bin/python bench/llamacpp_golden_agreement.py FILE.gguf [golden.json]
"""
import json
import os
import sys

import numpy as np

import llama_cpp


def logits(llm):
    p = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(p, shape=(llm.n_vocab(),))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    golden = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.environ.get("AIOS_SHARED") or os.path.join(root, "..", "shared"), "fixtures", "real",
        "smollm2-135m-instruct", "golden.json")
    runs = json.load(open(golden))["runs"]
    llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=1024, n_threads=1, verbose=False)
    tf = tfn = agree_all = checked_all = whole = 0
    for k, r in enumerate(runs):
        ids, want, margins = r["prompt_ids"], r["greedy_ids"], r["top2_margins"]
        checked = next((i for i, m in enumerate(margins) if m < 1e-3), len(want))
        llm.reset()
        llm.eval(ids)
        for i in range(len(want)):
            if margins[i] >= 1e-3:
                tfn += 1
                tf += int(np.argmax(logits(llm))) == want[i]
            if i + 1 < len(want):
                llm.eval([want[i]])
        llm.reset()
        llm.eval(ids)
        out = []
        for _ in range(len(want)):
            out.append(int(np.argmax(logits(llm))))
            if out[-1] == 2:  # <|im_end|>
                break
            llm.eval([out[-1]])
        a = 0
        while a < checked and a < len(out) and out[a] == want[a]:
            a += 1
        print(f"run {k}: greedy {a}/{checked} (golden length {len(want)})")
        agree_all += a
        checked_all += checked
        whole += a == checked
    print(f"llama.cpp: teacher-forced top-1 = golden {tf}/{tfn}; greedy {agree_all}/{checked_all} golden ids, "
          f"{whole} of {len(runs)} runs whole")


if __name__ == "__main__":
    main()
