"""Reference answers for bench_memcond.py: transformers runs the same rendered prompts.

Reads JSON lines {"id", "prompt"} (the exact prompt text `aios generate --jsonl` rendered) on
stdin, loads SmolLM2-135M-Instruct from the GGUF with transformers' own GGUF loader (dequantized
to float32), generates greedily up to max_new_tokens (stopping at <|im_end|>), and prints JSON
lines {"id", "text"}.  Needs transformers + PyTorch + gguf in the interpreter that runs it (e.g.
a venv over Debian's python3-torch with transformers 4.46); bench_memcond.py calls it with
$AIOS_REF_PYTHON.  Usage: memcond_transformers_ref.py GGUF_FILE [max_new_tokens]
"""
import json
import os
import sys


def main():
    path = sys.argv[1]
    max_new = int(sys.argv[2]) if len(sys.argv) > 2 else 48
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    d, f = os.path.dirname(path), os.path.basename(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    # transformers' own GGUF loader (dequantization to float32, q/k un-permutation) into a model
    # built from the GGUF's config; from_pretrained(gguf_file=) itself goes through accelerate,
    # which Debian's torch 1.13 on Python 3.11 cannot import
    from transformers import AutoConfig
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    ck = load_gguf_checkpoint(path, return_tensors=True)
    cfg = AutoConfig.from_pretrained(d, gguf_file=f)
    if "lm_head.weight" not in ck["tensors"]:
        cfg.tie_word_embeddings = True  # no output.weight in the file: the head is the embedding
    model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32)
    missing, unexpected = model.load_state_dict({k: torch.as_tensor(v) for k, v in ck["tensors"].items()},
                                                strict=False)
    assert not unexpected and all("lm_head" in k for k in missing), (missing, unexpected)
    model.tie_weights()
    model.eval()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    for line in sys.stdin:
        if not line.strip():
            continue
        x = json.loads(line)
        ids = tok(x["prompt"], return_tensors="pt", add_special_tokens=False)["input_ids"]
        # greedy with the KV cache (generate() imports torch.distributed.fsdp, which Debian's
        # torch 1.13 cannot import on Python 3.11)
        gen, cur, past = [], ids, None
        with torch.no_grad():
            for _ in range(max_new):
                out = model(input_ids=cur, past_key_values=past, use_cache=True)
                past = out.past_key_values
                nxt = int(out.logits[0, -1].argmax())
                if nxt == eos:
                    break
                gen.append(nxt)
                cur = torch.tensor([[nxt]])
        text = tok.decode(gen, skip_special_tokens=True)
        print(json.dumps({"id": x["id"], "text": text, "prompt_ids": ids.shape[1]}), flush=True)


if __name__ == "__main__":
    main()
