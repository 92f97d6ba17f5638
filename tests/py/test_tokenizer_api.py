"""The C API (libaios.so through ctypes) against Hugging Face `tokenizers` in this process: pairs
of sequences, truncation (longest_first / only_first / only_second, left and right), padding
(fixed length, left and right, pad_to_multiple_of), batch encoding with padding to the longest,
type ids, special-tokens and attention masks, offsets — on post-processors of every kind
(TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel)."""
import ctypes
import os
import random

from harness import ROOT, SHARED, Skip, run, test

LIB = os.environ.get("AIOS_LIB") or os.path.join(ROOT, os.environ.get("O", "build"), "libaios.so")
SEEDS = os.path.join(ROOT, "fuzz", "corpus", "fuzz_tokenizer_load")
TOKS = {
    "bert": os.path.join(SHARED, "models/bert-base-uncased/tokenizer.json"),
    "llama2": os.path.join(SHARED, "fixtures/tokenizers/llama2-tokenizer.tokenizer.json"),
    "qwen": os.path.join(SHARED, "fixtures/tokenizers/qwen2.5-0.5b-instruct.tokenizer.json"),
    "t5": os.path.join(SHARED, "models/t5-small/tokenizer.json"),
    "seed-bert-processing": os.path.join(SEEDS, "wordpiece.json"),
    "seed-roberta-processing": os.path.join(SEEDS, "wordlevel.json"),
    "seed-bytelevel-processing": os.path.join(SEEDS, "bytelevel_bpe.json"),
    "seed-roberta-bytelevel": os.path.join(SEEDS, "roberta.json"),
}


class Params(ctypes.Structure):
    _fields_ = [("add_special_tokens", ctypes.c_int), ("invalid_utf8", ctypes.c_int), ("max_length", ctypes.c_size_t),
                ("trunc_strategy", ctypes.c_int), ("trunc_left", ctypes.c_int), ("stride", ctypes.c_size_t),
                ("pad_strategy", ctypes.c_int), ("pad_length", ctypes.c_size_t), ("pad_to_multiple_of", ctypes.c_size_t),
                ("pad_left", ctypes.c_int), ("pad_id", ctypes.c_int32), ("pad_type_id", ctypes.c_int32),
                ("pad_token", ctypes.c_char * 64), ("encode_special_tokens", ctypes.c_int)]


class Enc(ctypes.Structure):
    _fields_ = [("n", ctypes.c_size_t), ("ids", ctypes.POINTER(ctypes.c_int32)),
                ("tokens", ctypes.POINTER(ctypes.c_char_p)), ("token_lens", ctypes.POINTER(ctypes.c_size_t)),
                ("offsets", ctypes.POINTER(ctypes.c_size_t * 2)), ("type_ids", ctypes.POINTER(ctypes.c_int32)),
                ("special_tokens_mask", ctypes.POINTER(ctypes.c_uint8)), ("attention_mask", ctypes.POINTER(ctypes.c_uint8))]


def lib():
    if not os.path.exists(LIB):
        raise Skip(f"no {LIB}")
    L = ctypes.CDLL(LIB)
    L.aios_tokenizer_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    L.aios_tokenizer_default_params.argtypes = [ctypes.c_void_p]
    L.aios_tokenizer_default_params.restype = Params
    L.aios_tokenizer_encode_pair.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                             ctypes.c_size_t, ctypes.POINTER(Params), ctypes.POINTER(ctypes.POINTER(Enc))]
    L.aios_tokenizer_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(Params),
                                        ctypes.POINTER(ctypes.POINTER(Enc))]
    L.aios_tokenizer_encode_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                                              ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t, ctypes.POINTER(Params),
                                              ctypes.c_int, ctypes.POINTER(ctypes.POINTER(Enc))]
    L.aios_encoding_free.argtypes = [ctypes.POINTER(Enc)]
    L.aios_tokenizer_free.argtypes = [ctypes.c_void_p]
    L.aios_last_error.restype = ctypes.c_char_p
    return L


def as_dict(e):
    n = e.n
    return {"ids": [e.ids[i] for i in range(n)],
            "tokens": [ctypes.string_at(e.tokens[i], e.token_lens[i]).decode() for i in range(n)],
            "offsets": [(e.offsets[i][0], e.offsets[i][1]) for i in range(n)],
            "type_ids": [e.type_ids[i] for i in range(n)],
            "special_tokens_mask": [e.special_tokens_mask[i] for i in range(n)],
            "attention_mask": [e.attention_mask[i] for i in range(n)]}


def hf_dict(e):
    return {"ids": e.ids, "tokens": e.tokens, "offsets": [tuple(o) for o in e.offsets], "type_ids": e.type_ids,
            "special_tokens_mask": e.special_tokens_mask, "attention_mask": e.attention_mask}


TEXTS = ["Hello world, how are you?", "The quick brown fox jumps over the lazy dog again and again.", "naïve café",
         "short", "", "日本語のテキスト and more words here", "one two three four five six seven eight nine ten"]


def open_pair(L, name):
    from tokenizers import Tokenizer
    path = TOKS[name]
    if not os.path.exists(path):
        raise Skip(f"missing {path}")
    h = ctypes.c_void_p()
    assert L.aios_tokenizer_load(path.encode(), ctypes.byref(h)) == 0, L.aios_last_error()
    return h, Tokenizer.from_file(path)


@test
def pairs_truncation_padding_match_tokenizers():
    L = lib()
    rnd = random.Random(3)
    for name in TOKS:
        h, ref = open_pair(L, name)
        base = L.aios_tokenizer_default_params(h)
        pad_id = ref.token_to_id("[PAD]") or ref.token_to_id("<pad>") or 0
        checked = 0
        for trial in range(40):
            a, b = rnd.choice(TEXTS), rnd.choice(TEXTS)
            pair = trial % 3 != 0
            special = trial % 5 != 4
            p = Params.from_buffer_copy(base)
            p.add_special_tokens = int(special)
            ref.no_truncation()
            ref.no_padding()
            if trial % 2 == 0:
                strat = rnd.choice(["longest_first", "only_first", "only_second"] if pair else ["longest_first"])
                direction = rnd.choice(["right", "left"])
                ml = rnd.randint(6, 16)
                ref.enable_truncation(ml, strategy=strat, direction=direction)
                p.max_length = ml
                p.trunc_strategy = {"longest_first": 0, "only_first": 1, "only_second": 2}[strat]
                p.trunc_left = int(direction == "left")
            if trial % 4 == 1:
                plen = rnd.randint(0, 24)
                mult = rnd.choice([None, 8])
                direction = rnd.choice(["right", "left"])
                ref.enable_padding(length=plen, direction=direction, pad_id=pad_id, pad_type_id=0, pad_token="[PAD]",
                                   pad_to_multiple_of=mult)
                p.pad_strategy = 2
                p.pad_length = plen
                p.pad_to_multiple_of = mult or 0
                p.pad_left = int(direction == "left")
                p.pad_id = pad_id
                p.pad_type_id = 0
                p.pad_token = b"[PAD]"
            try:
                want = hf_dict(ref.encode(a, b if pair else None, add_special_tokens=special))
            except Exception:  # noqa: BLE001 - tokenizers refuses some truncations: so must we
                want = None
            out = ctypes.POINTER(Enc)()
            ab, bb = a.encode(), b.encode()
            if pair:
                rc = L.aios_tokenizer_encode_pair(h, ab, len(ab), bb, len(bb), ctypes.byref(p), ctypes.byref(out))
            else:
                rc = L.aios_tokenizer_encode(h, ab, len(ab), ctypes.byref(p), ctypes.byref(out))
            if want is None:
                assert rc != 0, f"{name}: tokenizers refused {a!r}/{b!r} but we encoded"
                continue
            assert rc == 0, f"{name}: {L.aios_last_error()}"
            got = as_dict(out.contents)
            L.aios_encoding_free(out)
            assert got == want, f"{name} trial {trial} pair={pair} special={special} a={a!r} b={b!r}\n got  {got}\n want {want}"
            checked += 1
        assert checked >= 30, f"{name}: only {checked} comparisons"
        L.aios_tokenizer_free(h)


@test
def batch_padding_to_longest_matches_tokenizers():
    L = lib()
    for name in ("bert", "qwen", "t5"):
        h, ref = open_pair(L, name)
        ref.no_truncation()
        pad_id = ref.token_to_id("[PAD]") or ref.token_to_id("<pad>") or 0
        ref.enable_padding(direction="right", pad_id=pad_id, pad_token="[PAD]")
        want = [hf_dict(e) for e in ref.encode_batch(TEXTS)]
        p = L.aios_tokenizer_default_params(h)
        p.pad_strategy = 1
        p.pad_id = pad_id
        p.pad_token = b"[PAD]"
        n = len(TEXTS)
        bt = [t.encode() for t in TEXTS]
        arr = (ctypes.c_char_p * n)(*bt)
        lens = (ctypes.c_size_t * n)(*[len(x) for x in bt])
        outs = (ctypes.POINTER(Enc) * n)()
        assert L.aios_tokenizer_encode_batch(h, arr, lens, n, ctypes.byref(p), 2, outs) == 0, L.aios_last_error()
        for i in range(n):
            got = as_dict(outs[i].contents)
            L.aios_encoding_free(outs[i])
            assert got == want[i], f"{name} text {i}\n got  {got}\n want {want[i]}"
        L.aios_tokenizer_free(h)


@test
def encode_special_tokens_matches_tokenizers():
    L = lib()
    texts = ["<|im_start|>user\nhi<|im_end|>", "[CLS] x [SEP] [MASK]", "<s> a </s> <extra_id_0> b", "<mask> z"]
    for name in TOKS:
        h, ref = open_pair(L, name)
        ref.encode_special_tokens = True
        p = L.aios_tokenizer_default_params(h)
        p.encode_special_tokens = 1
        for t in texts:
            out = ctypes.POINTER(Enc)()
            b = t.encode()
            assert L.aios_tokenizer_encode(h, b, len(b), ctypes.byref(p), ctypes.byref(out)) == 0
            got = as_dict(out.contents)
            L.aios_encoding_free(out)
            want = hf_dict(ref.encode(t))
            assert got == want, f"{name} {t!r}\n got  {got}\n want {want}"
        L.aios_tokenizer_free(h)


@test
def lookups_match_tokenizers():
    L = lib()
    L.aios_tokenizer_vocab_size.argtypes = [ctypes.c_void_p]
    L.aios_tokenizer_vocab_size.restype = ctypes.c_size_t
    L.aios_tokenizer_token_to_id.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    L.aios_tokenizer_token_to_id.restype = ctypes.c_int32
    L.aios_tokenizer_id_to_token.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    L.aios_tokenizer_id_to_token.restype = ctypes.c_char_p
    rnd = random.Random(5)
    for name in TOKS:
        h, ref = open_pair(L, name)
        assert L.aios_tokenizer_vocab_size(h) == ref.get_vocab_size(True), name
        n = ref.get_vocab_size(True)
        ids = [rnd.randrange(n + 10) for _ in range(300)] + list(range(min(n, 300)))
        for i in ids:
            want = ref.id_to_token(i)
            got = L.aios_tokenizer_id_to_token(h, i)
            assert (got.decode() if got is not None else None) == want, f"{name} id {i}: {got} vs {want}"
            if want is not None and "\x00" not in want:
                wid = ref.token_to_id(want)
                assert L.aios_tokenizer_token_to_id(h, want.encode()) == (-1 if wid is None else wid), f"{name} token {want!r}"
        for s in ["<s>", "</s>", "[CLS]", "hello", "<|endoftext|>", "nope-not-a-token"]:
            assert L.aios_tokenizer_token_to_id(h, s.encode()) == (ref.token_to_id(s) if ref.token_to_id(s) is not None else -1), s
        L.aios_tokenizer_free(h)


if __name__ == "__main__":
    run()
