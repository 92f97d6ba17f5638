"""The GGUF tokenizer (tokenizer.ggml.* metadata alone) against llama.cpp's expected ids.

The vocab GGUFs shipped in ../shared/models/llama.cpp-vocab are damaged (non-UTF-8 byte runs
replaced by U+FFFD), so equivalent files are written here with the PyPI package gguf's
GGUFWriter from the original Hugging Face files, the way llama.cpp's convert_hf_to_gguf.py does:

- GPT-2: vocab.json + merges.txt -> tokenizer.ggml.model gpt2, pre gpt-2;
- Llama-2 SentencePiece: tokenizer.model (its protobuf read here) -> tokenizer.ggml.model llama,
  tokens, scores, token types (sentencepiece's piece types, the numbering llama.cpp keeps).

Then `aios tokenize --tokenizer FILE.gguf --no-special --jsonl` on llama.cpp's test inputs
(data/text/llama.cpp-vocab-tests/ggml-vocab-test.gguf.inp) must give the ids of llama.cpp's
ggml-vocab-{gpt-2,llama-spm}.gguf.out exactly."""
import json
import os
import struct

from harness import SHARED, TMP, Skip, aios, run, test

try:
    import gguf
except Exception:  # noqa: BLE001
    gguf = None


def cases(vocab):
    d = os.path.join(SHARED, "data/text/llama.cpp-vocab-tests")
    inp, out = os.path.join(d, "ggml-vocab-test.gguf.inp"), os.path.join(d, f"ggml-vocab-{vocab}.gguf.out")
    if not (os.path.exists(inp) and os.path.exists(out)):
        raise Skip("llama.cpp vocab tests not found")
    with open(inp, encoding="utf-8") as f:
        texts = f.read().split("\n__ggml_vocab_test__\n")[:-1]
    with open(out, encoding="utf-8") as f:
        want = [[int(x) for x in line.split()] for line in f.read().split("\n")[: len(texts)]]
    assert len(texts) == len(want) == 46
    return texts, want


def check(path, vocab):
    texts, want = cases(vocab)
    got = aios("tokenize", "--tokenizer", path, "--no-special", "--jsonl",
               input="".join(json.dumps(t) + "\n" for t in texts)).stdout.splitlines()
    bad = [(i, texts[i][:30], json.loads(g)["ids"], w) for i, (g, w) in enumerate(zip(got, want)) if json.loads(g)["ids"] != w]
    assert len(got) == 46 and not bad, f"{len(bad)} of 46 differ; first: {bad[:1]}"


def need(path):
    if gguf is None:
        raise Skip("gguf not importable")
    if not os.path.exists(path):
        raise Skip(f"{path} not found")


@test
def gpt2_vocab_gguf_matches_llamacpp():
    d = os.path.join(SHARED, "models/gpt2")
    need(os.path.join(d, "vocab.json"))
    with open(os.path.join(d, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
        merges = [m for m in f.read().split("\n")[1:] if m]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    types = [3 if t == "<|endoftext|>" else 1 for t in tokens]
    p = os.path.join(TMP, "gpt2-vocab.gguf")
    w = gguf.GGUFWriter(p, "gpt2")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab["<|endoftext|>"])
    w.add_eos_token_id(vocab["<|endoftext|>"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    check(p, "gpt-2")


@test
def qwen2_vocab_gguf_matches_llamacpp_and_tokenizers():
    """Qwen2.5's tokenizer.json -> GGUF (pre qwen2): llama.cpp's qwen2 ids, and the `tokenizers`
    goldens of fixtures/tokenizers/qwen2.5-0.5b-instruct.jsonl."""
    tj = os.path.join(SHARED, "fixtures/tokenizers/qwen2.5-0.5b-instruct.tokenizer.json")
    need(tj)
    with open(tj, encoding="utf-8") as f:
        j = json.load(f)
    vocab = dict(j["model"]["vocab"])
    added = {a["content"]: a for a in j["added_tokens"]}
    for a in j["added_tokens"]:
        vocab[a["content"]] = a["id"]
    n = max(vocab.values()) + 1
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    tokens = [t if t is not None else f"[PAD{i}]" for i, t in enumerate(tokens)]
    types = [(3 if added[t]["special"] else 4) if t in added else 1 for t in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    p = os.path.join(TMP, "qwen2-vocab.gguf")
    w = gguf.GGUFWriter(p, "qwen2")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_pad_token_id(vocab["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    check(p, "qwen2")
    gold = os.path.join(SHARED, "fixtures/tokenizers/qwen2.5-0.5b-instruct.jsonl")
    with open(gold, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    got = aios("tokenize", "--tokenizer", p, "--jsonl", input="".join(json.dumps(r["text"]) + "\n" for r in rows)).stdout.splitlines()
    bad = [r["text"][:30] for r, g in zip(rows, got) if json.loads(g)["ids"] != r["ids"]]
    assert len(got) == len(rows) and not bad, f"{len(bad)} of {len(rows)} differ; first {bad[:1]}"


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def sp_pieces(path):
    """(piece, score, type) of a sentencepiece ModelProto (field 1 = repeated SentencePiece)."""
    with open(path, "rb") as f:
        b = f.read()
    out, i = [], 0
    while i < len(b):
        key, i = varint(b, i)
        field, wt = key >> 3, key & 7
        if wt == 2:
            n, i = varint(b, i)
            sub, i = b[i:i + n], i + n
            if field == 1:
                piece, score, typ, j = "", 0.0, 1, 0
                while j < len(sub):
                    k2, j = varint(sub, j)
                    f2, w2 = k2 >> 3, k2 & 7
                    if w2 == 2:
                        m, j = varint(sub, j)
                        if f2 == 1:
                            piece = sub[j:j + m].decode("utf-8")
                        j += m
                    elif w2 == 5:
                        if f2 == 2:
                            (score,) = struct.unpack("<f", sub[j:j + 4])
                        j += 4
                    elif w2 == 0:
                        v, j = varint(sub, j)
                        if f2 == 3:
                            typ = v
                    elif w2 == 1:
                        j += 8
                out.append((piece, score, typ))
        elif wt == 0:
            _, i = varint(b, i)
        elif wt == 5:
            i += 4
        elif wt == 1:
            i += 8
    return out


@test
def llama_spm_vocab_gguf_matches_llamacpp():
    d = os.path.join(SHARED, "models/llama2-tokenizer")
    need(os.path.join(d, "tokenizer.model"))
    pieces = sp_pieces(os.path.join(d, "tokenizer.model"))
    assert len(pieces) == 32000, len(pieces)
    p = os.path.join(TMP, "llama-spm-vocab.gguf")
    w = gguf.GGUFWriter(p, "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([x[0] for x in pieces])
    w.add_token_scores([x[1] for x in pieces])
    w.add_token_types([x[2] for x in pieces])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    check(p, "llama-spm")
    # with specials: BOS first, as llama.cpp's add_bos_token
    ids = json.loads(aios("tokenize", "--tokenizer", p, "--jsonl", input='"Hello world"\n').stdout)["ids"]
    assert ids[0] == 1 and ids[1:] == json.loads(
        aios("tokenize", "--tokenizer", p, "--jsonl", "--no-special", input='"Hello world"\n').stdout)["ids"], ids


if __name__ == "__main__":
    run()
