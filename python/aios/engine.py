"""ArrowEngine: one entry point over every model kind libaios opens (the seed's ArrowEngine).

The model path goes to the C library unchanged (Hugging Face directory, ArrowEngine Parquet
directory, llama2.c checkpoint, and whatever else aios_model_open / aios_generator_open accept,
GGUF files included once the library reads them).  The C handles (encoder, generator, diffusion
model) are opened on first use and used by one thread at a time behind the engine's lock; the
GIL is released inside every compute call.
"""
from __future__ import annotations

import codecs
import ctypes
import dataclasses
import queue
import sys
import threading
from typing import Any, Iterator, Mapping, Sequence, Union

import numpy as np

from . import _lib
from ._util import (CBuffer, call, float_arg, fptr, ids_arg, int_arg, iptr, opt_text, path_arg, take_string,
                    text_arg)
from .errors import AiosError, error_for

lib = _lib.lib
Prompt = Union[str, Sequence[int]]

_STOP_REASONS = {0: "length", 1: "eos", 2: "stop", 3: "callback", 4: "context"}
_POOLING = {0: "none", 1: "mean", 2: "cls", 3: "max", 4: "last", 5: "mean_sqrt_len"}


@dataclasses.dataclass
class Generation:
    """What generate(..., details=True) returns."""
    text: str
    ids: list          # prompt + generated ids
    n_prompt: int
    stop_reason: str   # "length", "eos", "stop", "callback", "context"
    n_reused: int      # prompt positions taken from the previous call's KV cache
    prefill_s: float
    decode_s: float

    @property
    def generated_ids(self) -> list:
        return self.ids[self.n_prompt:]


@dataclasses.dataclass
class Diffusion:
    """What diffuse(..., details=True) returns."""
    text: str
    ids: list          # the final canvas: [left pad] prompt generated [suffix]
    gen_start: int
    gen_len: int
    n_steps: int
    uncertainty: float
    uncertain: bool
    stopped_at_eos: bool
    memories: list     # (memory_id, score) placed ahead of the prompt, best first
    seconds: float

    @property
    def generated_ids(self) -> list:
        return self.ids[self.gen_start:self.gen_start + self.gen_len]


class ArrowEngine:
    """A model: encode / similarity for BERT-family encoders, generate / chat for decoders,
    diffuse for masked-diffusion models (LLaDA, Dream, BD3LM, BERT-MLM), tokenize / detokenize
    for all.

        engine = aios.ArrowEngine("models/all-MiniLM-L6-v2")
        emb = engine.encode(["Hello, world!"])          # numpy float32 (1, 384)

    int8_act ("auto", "on", "16" or "off") is the int8-activation mode (docs/encode.md,
    docs/kernels.md): for the encoder "auto" uses them for int8 weights on AVX-512 VNNI CPUs, for
    the generator "auto" is "16" for quantized weights on AVX2 CPUs and exact float otherwise
    (AIOS_INT8_ACT=0/1/16 overrides both); "on" rounds activations to int8 wherever a kernel has
    them (faster quantized decode, 4- / 5-bit weights repacked on AVX2), "16" (generators) rounds
    those into quantized weights to 16 bits (near int8 speed within ~3e-4 of exact), "off" keeps
    exact float arithmetic.

    kv_type ("f32" or "f16") is the generator's KV cache element type: "f16" halves its memory and
    speeds decoding after long prompts (llama.cpp's default); "f32" (the default) is exact.
    """

    def __init__(self, path: Any, *, n_threads: int = 0, n_ctx: int = 0, int8_act: str = "auto", kv_type: str = "f32"):
        self.path = path_arg(path, "path").decode("utf-8", "surrogateescape")
        self._bpath = path_arg(path)
        if int8_act not in _lib.INT8_ACT:
            raise ValueError(f"int8_act must be 'auto', 'on', '16' or 'off', not {int8_act!r}")
        self._int8_act = _lib.INT8_ACT[int8_act]
        if kv_type not in _lib.KV_TYPE:
            raise ValueError(f"kv_type must be 'f32' or 'f16', not {kv_type!r}")
        self._kv_type = _lib.KV_TYPE[kv_type]
        self._n_threads = int_arg(n_threads, "n_threads")
        self._n_ctx = int_arg(n_ctx, "n_ctx")
        self._lock = threading.RLock()
        self._encoders: dict = {}
        self._gen = None
        self._dm = None
        self._tok = None
        self._adapters: list = []  # (C adapter id, what the caller gave)
        self._info = self._probe()

    # ---- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        """Frees the C handles now (they are also freed when the engine is collected)."""
        with self._lock:
            for h in self._encoders.values():
                lib.aios_encoder_free(h)
            self._encoders.clear()
            if self._gen:
                lib.aios_generator_free(self._gen)
            self._adapters = []  # they went with the generator
            if self._dm:
                lib.aios_diffusion_model_free(self._dm)
            if self._tok:
                lib.aios_tokenizer_free(self._tok)
            self._gen = self._dm = self._tok = None

    def __del__(self):
        if getattr(self, "_lock", None) is not None:
            try:
                self.close()
            except Exception:  # noqa: BLE001 - at interpreter exit the module may be half torn down
                pass

    def __enter__(self) -> "ArrowEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ArrowEngine({self.path!r}, kind={self._info['kind']!r})"

    # ---- what the model is ----------------------------------------------------------------------
    def _probe(self) -> dict:
        m = ctypes.c_void_p()
        lib.aios_clear_error()
        s = lib.aios_model_open(self._bpath, None, ctypes.byref(m))
        if s != 0:
            first = error_for(s)
            # not a weights directory/file the model loader reads: a llama2.c checkpoint (or
            # another format only the generator opens)
            try:
                g = self._generator()
            except AiosError:
                raise first from None
            return {"kind": "decoder", "architecture": "llama2.c", "model_type": "llama2.c", "format": "llama2.c",
                    "n_vocab": int(lib.aios_generator_n_vocab(g)), "n_ctx": int(lib.aios_generator_n_ctx(g)),
                    "dtype": "f32", "dtypes": ["f32"], "kernel_tier": lib.aios_kernel_tier().decode(),
                    "path": self.path}
        try:
            c = lib.aios_model_get_config(m).contents
            by_dtype: dict = {}
            info = _lib.TensorInfo()
            for i in range(lib.aios_model_num_tensors(m)):
                if lib.aios_model_tensor_info(m, i, ctypes.byref(info)) == 0:
                    d = info.dtype.decode()
                    by_dtype[d] = by_dtype.get(d, 0) + int(info.numel)
            fmt = lib.aios_model_format(m).decode()
            tok = lib.aios_model_tokenizer_path(m)
        finally:
            lib.aios_model_free(m)
        kind = "encoder" if c.arch == _lib.AIOS_ARCH_BERT else ("diffusion" if c.is_diffusion else "decoder")
        return {
            "kind": kind, "architecture": c.architecture.decode(), "arch": lib.aios_arch_name(c.arch).decode(),
            "model_type": c.model_type.decode(), "format": fmt, "n_embd": c.n_embd, "n_layer": c.n_layer,
            "n_head": c.n_head, "n_head_kv": c.n_head_kv, "head_dim": c.head_dim, "n_ff": c.n_ff,
            "n_vocab": c.n_vocab, "n_ctx_train": c.n_ctx_train, "embedding_dim": c.embedding_dimension,
            "pooling": _POOLING.get(c.pooling, str(c.pooling)), "normalize": bool(c.normalize),
            # the dtype holding most parameters, and every dtype present
            "dtype": max(by_dtype, key=by_dtype.get) if by_dtype else None, "dtypes": sorted(by_dtype),
            "tokenizer": tok.decode() if tok else None, "kernel_tier": lib.aios_kernel_tier().decode(),
            "path": self.path,
        }

    @property
    def info(self) -> dict:
        """Architecture, sizes (n_embd, n_layer, n_head, n_vocab, ...), dtype, format, kind
        ("encoder", "decoder" or "diffusion") and the active kernel tier ("ref", "avx2", "avx512")."""
        d = dict(self._info)
        d["kernel_tier"] = lib.aios_kernel_tier().decode()
        return d

    # ---- handles (opened on first use) --------------------------------------------------------
    def _encoder(self, batch_size: int, normalize: int):
        key = (batch_size, normalize)
        h = self._encoders.get(key)
        if h is None:
            p = lib.aios_encoder_default_params()
            p.batch_size = batch_size
            p.normalize = normalize
            p.n_threads = self._n_threads
            p.int8_act = self._int8_act
            h = ctypes.c_void_p()
            call(lib.aios_encoder_open, self._bpath, ctypes.byref(p), ctypes.byref(h))
            self._encoders[key] = h
        return h

    def _generator(self):
        if self._gen is None:
            p = lib.aios_generator_default_params()
            p.n_ctx = self._n_ctx
            p.n_threads = self._n_threads
            p.kv_type = self._kv_type
            p.int8_act = self._int8_act
            h = ctypes.c_void_p()
            call(lib.aios_generator_open, self._bpath, ctypes.byref(p), ctypes.byref(h))
            self._gen = h
        return self._gen

    def _diffusion(self):
        if self._dm is None:
            h = ctypes.c_void_p()
            call(lib.aios_diffusion_model_open, self._bpath, ctypes.byref(h))
            self._dm = h
        return self._dm

    def _tokenizer(self):
        if self._tok is None:
            t = self._info.get("tokenizer")
            if not t:
                raise error_for(-6, f"tokenizer: {self.path}: the model has no tokenizer.json")
            h = ctypes.c_void_p()
            call(lib.aios_tokenizer_load, t.encode(), ctypes.byref(h))
            self._tok = h
        return self._tok

    # ---- encode -------------------------------------------------------------------------------
    def encode(self, sentences: Union[str, Sequence[str]], batch_size: int = 32, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool | None = None) -> Any:
        """Sentence embeddings, with sentence-transformers' keywords.

        Returns a float32 ndarray (n, dim) — (dim,) for a single string — that wraps the buffer
        the library wrote (no copy; `.base` is the owning aios CBuffer, freed with the array).
        normalize_embeddings=True L2-normalizes; False keeps the model's own setting (a model
        whose modules.json has a Normalize module is normalized either way, as in
        sentence-transformers).  convert_to_numpy=False gives a list of 1-D arrays.
        show_progress_bar=True reports batches on stderr."""
        single = isinstance(sentences, str)
        if single:
            texts = [sentences]
        elif isinstance(sentences, (list, tuple, np.ndarray)):
            texts = list(sentences)
        else:
            raise TypeError(f"sentences must be a str or a list of str, not {type(sentences).__name__}")
        bts = [text_arg(t, "sentences[%d]" % i) for i, t in enumerate(texts)]
        bs = int_arg(batch_size, "batch_size")
        if bs < 1:
            raise ValueError("batch_size must be >= 1")
        norm = 1 if normalize_embeddings else -1
        n = len(bts)
        with self._lock:
            enc = self._encoder(bs, norm)
            dim = int(lib.aios_encoder_dim(enc))
            buf = CBuffer((dim,) if single else (n, dim))
            if n:
                cb = None
                if show_progress_bar:
                    def progress(user, done, total):
                        sys.stderr.write(f"\rencode: {done}/{total}" + ("\n" if done == total else ""))
                        return 0
                    cb = _lib.ENCODE_PROGRESS(progress)
                texts_c = (ctypes.c_char_p * n)(*bts)
                lens = (ctypes.c_size_t * n)(*map(len, bts))
                call(lib.aios_encode_batch, enc, texts_c, lens, n, buf.address,
                     ctypes.cast(cb, ctypes.c_void_p) if cb else None, None)
        arr = np.asarray(buf)
        if not convert_to_numpy:
            return [arr] if single else list(arr)
        return arr

    def similarity(self, a: Any, b: Any) -> Any:
        """Cosine similarity (0 where a vector is all zeros).  Two vectors give a float; (n, d)
        and (m, d) give the (n, m) matrix.  Strings are encoded first."""
        va, vb = (self.encode(x) if isinstance(x, str) else x for x in (a, b))
        va = np.asarray(va)
        vb = np.asarray(vb)
        if va.dtype.kind not in "fiu" or vb.dtype.kind not in "fiu":
            raise TypeError("similarity: arguments must be numeric arrays or strings")
        va = np.ascontiguousarray(va, np.float32)
        vb = np.ascontiguousarray(vb, np.float32)
        if va.ndim == 1 and vb.ndim == 1:
            if va.shape != vb.shape:
                raise ValueError(f"similarity: shapes {va.shape} and {vb.shape} differ")
            return float(lib.aios_similarity(fptr(va), fptr(vb), va.shape[0]))
        A = np.atleast_2d(va)
        B = np.atleast_2d(vb)
        if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
            raise ValueError(f"similarity: shapes {va.shape} and {vb.shape} do not match")
        # a matrix is one product of the L2-normalized rows (NumPy's BLAS), zero rows giving 0
        # as aios_similarity does; a ctypes call per pair would cost more than the arithmetic
        def unit(X):
            X = X.astype(np.float64)
            n = np.linalg.norm(X, axis=1, keepdims=True)
            return np.divide(X, n, out=np.zeros_like(X), where=n > 0)
        return (unit(A) @ unit(B).T).astype(np.float32)

    # ---- generate / chat ----------------------------------------------------------------------
    def _gen_params(self, max_tokens, temperature, top_k, top_p, min_p, repetition_penalty, presence_penalty,
                    frequency_penalty, seed, stop, ignore_eos, add_bos):
        p = lib.aios_generate_default_params()
        p.max_tokens = int_arg(max_tokens, "max_tokens")
        if p.max_tokens < 0:
            raise ValueError("max_tokens must be >= 0")
        p.temperature = float_arg(temperature, "temperature")
        p.top_k = int_arg(top_k, "top_k")
        p.top_p = float_arg(top_p, "top_p")
        p.min_p = float_arg(min_p, "min_p")
        p.repetition_penalty = float_arg(repetition_penalty, "repetition_penalty")
        p.presence_penalty = float_arg(presence_penalty, "presence_penalty")
        p.frequency_penalty = float_arg(frequency_penalty, "frequency_penalty")
        if p.temperature < 0 or not 0 < p.top_p <= 1 or p.top_k < 0:
            raise ValueError("temperature must be >= 0, top_p in (0, 1], top_k >= 0")
        p.seed = int_arg(seed, "seed") & (2**64 - 1)
        p.ignore_eos = 1 if ignore_eos else 0
        if add_bos is not None:
            p.add_bos = 1 if add_bos else 0
        keep = []
        if stop is not None:
            stops = [stop] if isinstance(stop, str) else list(stop)
            arr = (ctypes.c_char_p * (len(stops) + 1))(*[text_arg(s, "stop") for s in stops], None)
            keep.append(arr)
            p.stop = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p))
        return p, keep

    def _prompt(self, prompt):
        if isinstance(prompt, str):
            return text_arg(prompt, "prompt"), None, 0
        ids = ids_arg(prompt, "prompt")
        if ids.size == 0:
            raise ValueError("prompt: an empty list of ids")
        return None, ids, ids.size

    def _run_generate(self, g, text, ids, n, p) -> Generation:
        r = _lib.GenerateResult()
        lib.aios_clear_error()
        s = lib.aios_generate(g, text, iptr(ids) if ids is not None else None, n, ctypes.byref(p), ctypes.byref(r))
        try:
            if s != 0:
                raise error_for(s)
            return Generation(text=ctypes.string_at(r.text).decode("utf-8", "replace") if r.text else "",
                              ids=r.ids[:r.n_ids] if r.ids else [], n_prompt=int(r.n_prompt),
                              stop_reason=_STOP_REASONS.get(r.stop, str(r.stop)), n_reused=int(r.n_reused),
                              prefill_s=r.prefill_s, decode_s=r.decode_s)
        finally:
            lib.aios_generate_result_free(ctypes.byref(r))

    def generate(self, prompt: Prompt, max_tokens: int = 256, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int = 0, stop: Union[str, Sequence[str], None] = None,
                 stream: bool = False, *, min_p: float = 0.0, repetition_penalty: float = 1.0,
                 presence_penalty: float = 0.0, frequency_penalty: float = 0.0, ignore_eos: bool = False,
                 add_bos: bool | None = None, details: bool = False) -> Any:
        """Generates text after `prompt` (a str, tokenized with the model's tokenizer, or a list
        of token ids used as given).  temperature 0 is greedy.  Returns the generated text;
        with details=True a Generation (text, ids, stop_reason, timings); with stream=True an
        iterator of text pieces as they are produced (closing it early stops generation)."""
        text, ids, n = self._prompt(prompt)
        p, keep = self._gen_params(max_tokens, temperature, top_k, top_p, min_p, repetition_penalty,
                                   presence_penalty, frequency_penalty, seed, stop, ignore_eos, add_bos)
        if stream:
            return self._stream(text, ids, n, p, keep)
        with self._lock:
            g = self._generator()
            res = self._run_generate(g, text, ids, n, p)
        return res if details else res.text

    def _stream(self, text, ids, n, p, keep) -> Iterator[str]:
        q: queue.SimpleQueue = queue.SimpleQueue()
        end = object()
        state = {"stop": False, "error": None}

        def on_token(user, tok_id, piece, length):
            if length:
                q.put(ctypes.string_at(piece, length))
            return 1 if state["stop"] else 0

        cb = _lib.TOKEN_CALLBACK(on_token)
        p.on_token = ctypes.cast(cb, ctypes.c_void_p)

        def work():
            try:
                with self._lock:
                    self._run_generate(self._generator(), text, ids, n, p)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                state["error"] = e
            finally:
                q.put(end)

        def pieces():
            dec = codecs.getincrementaldecoder("utf-8")("replace")
            t = threading.Thread(target=work, name="aios-generate", daemon=True)
            t.start()
            try:
                while True:
                    item = q.get()
                    if item is end:
                        break
                    s = dec.decode(item)
                    if s:
                        yield s
                tail = dec.decode(b"", final=True)
                if tail:
                    yield tail
            finally:
                state["stop"] = True
                t.join()
                _ = (cb, keep)  # the callback and the stop strings live until generation ends
            if state["error"] is not None:
                raise state["error"]

        return pieces()

    def chat(self, messages: Sequence[Any], max_tokens: int = 256, temperature: float = 0.0, top_k: int = 0,
             top_p: float = 1.0, seed: int = 0, stop: Union[str, Sequence[str], None] = None, stream: bool = False,
             **options: Any) -> Any:
        """Replies to a conversation: messages are {"role": "system"|"user"|"assistant",
        "content": str} dicts (or (role, content) pairs), formatted with the model's chat
        template (chatml, llama2, llama3, or plain), the assistant's turn opened.  Other keywords
        as generate()."""
        if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
            raise TypeError("messages must be a list of {'role', 'content'} dicts")
        pairs = []
        for i, m in enumerate(messages):
            if isinstance(m, Mapping):
                role, content = m.get("role"), m.get("content")
            elif isinstance(m, (tuple, list)) and len(m) == 2:
                role, content = m
            else:
                raise TypeError(f"messages[{i}] must be a dict with 'role' and 'content'")
            pairs.append((text_arg(role, f"messages[{i}]['role']"), text_arg(content, f"messages[{i}]['content']")))
        if not pairs:
            raise ValueError("messages: an empty conversation")
        arr = (_lib.ChatMessage * len(pairs))(*[_lib.ChatMessage(r, c) for r, c in pairs])
        out = ctypes.c_void_p()
        with self._lock:
            call(lib.aios_generator_chat_prompt, self._generator(), arr, len(pairs), ctypes.byref(out))
        prompt = take_string(out.value)
        return self.generate(prompt, max_tokens, temperature, top_k, top_p, seed, stop, stream, **options)

    # ---- LoRA adapters ------------------------------------------------------------------------
    def use_adapters(self, adapters: Sequence[Any]) -> None:
        """Applies LoRA adapters to generate / chat from now on, without reloading the model:
        each item a LoRACard, a path (skill card .parquet or PEFT adapter directory), or a
        (card or path, scale) pair (scale 1 by default).  Replaces the adapters applied before;
        [] removes them all.  On an error no adapter is left applied."""
        from .train import LoRACard
        if isinstance(adapters, (str, bytes)) or not isinstance(adapters, Sequence):
            raise TypeError("adapters must be a list of LoRACard, paths or (adapter, scale) pairs")
        items = []
        for i, x in enumerate(adapters):
            scale = 1.0
            if isinstance(x, tuple):
                if len(x) != 2:
                    raise TypeError(f"adapters[{i}]: a pair (adapter, scale)")
                x, scale = x[0], float_arg(x[1], f"adapters[{i}] scale")
            path = x.path if isinstance(x, LoRACard) else x
            items.append((path_arg(path, f"adapters[{i}]"), scale, x))
        with self._lock:
            g = self._generator()
            self._drop_adapters(g)
            try:
                for path, scale, ref in items:
                    aid = ctypes.c_int()
                    call(lib.aios_generator_adapter_add, g, path, scale, ctypes.byref(aid))
                    self._adapters.append((aid.value, ref))
            except BaseException:
                self._drop_adapters(g)
                raise

    def _drop_adapters(self, g) -> None:
        for aid, _ in self._adapters:
            lib.aios_generator_adapter_remove(g, aid)
        self._adapters = []

    @property
    def adapters(self) -> list:
        """The adapters applied (what use_adapters was given), in order."""
        return [ref for _, ref in self._adapters]

    @property
    def chat_template(self) -> str:
        """The chat template in use: "chatml", "llama2", "llama3" or "plain"."""
        with self._lock:
            return lib.aios_generator_chat_template(self._generator()).decode()

    # ---- diffuse ------------------------------------------------------------------------------
    def diffuse(self, prompt: Prompt, gen_length: int = 128, steps: int = 128, block_length: int = 0, *,
                suffix: Union[str, Sequence[int], None] = None, algorithm: str = "low_confidence",
                temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, threshold: float = 0.0,
                guidance_scale: float = 0.0, seed: int = 0, stop_at_eos: bool = True,
                memory_store: Any = None, memory_encoder: Any = None, memory_top_k: int = 3,
                details: bool = False) -> Any:
        """Masked-diffusion generation (LLaDA, Dream, BD3LM, BERT-MLM models): gen_length masks
        after the prompt unmasked over `steps` steps in blocks of block_length (0 = one block).
        prompt / suffix are text (the model's tokenizer) or token ids.  memory_store (a store
        directory) conditions on retrieved memories (text prompts).  Returns the generated text,
        or with details=True a Diffusion (ids, uncertainty, memories used, ...)."""
        p = lib.aios_diffuse_default_params()
        p.gen_length = int_arg(gen_length, "gen_length")
        p.steps = int_arg(steps, "steps")
        p.block_length = int_arg(block_length, "block_length")
        a = lib.aios_remask_parse(text_arg(algorithm, "algorithm"))
        if a < 0:
            raise ValueError(f"algorithm: {algorithm!r} is not low_confidence, margin, entropy or random")
        p.algorithm = a
        p.temperature = float_arg(temperature, "temperature")
        p.top_k = int_arg(top_k, "top_k")
        p.top_p = float_arg(top_p, "top_p")
        p.threshold = float_arg(threshold, "threshold")
        p.guidance_scale = float_arg(guidance_scale, "guidance_scale")
        p.seed = int_arg(seed, "seed") & (2**64 - 1)
        p.stop_at_eos = 1 if stop_at_eos else 0
        p.memory_top_k = int_arg(memory_top_k, "memory_top_k")
        if memory_store is not None:
            p.memory_guided = 1
            p.memory_store = path_arg(memory_store, "memory_store")
            p.memory_encoder = None if memory_encoder is None else path_arg(memory_encoder, "memory_encoder")
        r = _lib.DiffuseResult()
        with self._lock:
            m = self._diffusion()
            lib.aios_clear_error()
            if isinstance(prompt, str):
                if suffix is not None and not isinstance(suffix, str):
                    raise TypeError("suffix must be text when the prompt is text")
                s = lib.aios_diffuse(m, text_arg(prompt, "prompt"), opt_text(suffix, "suffix"), ctypes.byref(p),
                                     ctypes.byref(r))
            else:
                ids = ids_arg(prompt, "prompt")
                sfx = ids_arg(suffix, "suffix") if suffix is not None else np.zeros(0, np.int32)
                dn = lib.aios_diffusion_model_denoiser(m)
                if memory_store is not None:
                    raise ValueError("memory_store needs a text prompt (the query)")
                B = p.block_length or (dn.contents.block_size if dn.contents.block_size > 0 else p.gen_length)
                if dn.contents.attn == 1:  # block-causal: the exact cache, sized for this canvas
                    call(lib.aios_diffusion_model_set_cache, m, ids.size + B + p.gen_length + sfx.size)
                s = lib.aios_diffuse_sample(dn, ctypes.byref(p), iptr(ids), ids.size,
                                            iptr(sfx) if sfx.size else None, sfx.size, ctypes.byref(r))
                if s == 0:
                    lib.aios_diffuse_uncertainty_flag(ctypes.byref(r), p.uncertainty_threshold)
            try:
                if s != 0:
                    raise error_for(s)
                out_ids = r.ids[:r.n_ids] if r.ids else []
                if r.text:
                    text = ctypes.string_at(r.text).decode("utf-8", "replace")
                else:
                    t = ctypes.c_void_p()
                    gen = (ctypes.c_int32 * max(1, r.gen_len))(*out_ids[r.gen_start:r.gen_start + r.gen_len])
                    if lib.aios_diffusion_model_detokenize(m, gen, r.gen_len, ctypes.byref(t)) == 0:
                        text = take_string(t.value)
                    else:  # no tokenizer.json: the ids are the answer (details=True)
                        lib.aios_clear_error()
                        text = ""
                mem_ids = ctypes.cast(r.memory_ids, ctypes.POINTER(ctypes.c_char * _lib.MEMORY_ID_MAX))
                memories = [(mem_ids[i].value.decode("utf-8", "replace"), float(r.memory_scores[i]))
                            for i in range(r.n_memories)]
                res = Diffusion(text=text, ids=out_ids, gen_start=int(r.gen_start), gen_len=int(r.gen_len),
                                n_steps=int(r.n_steps), uncertainty=float(r.uncertainty), uncertain=bool(r.uncertain),
                                stopped_at_eos=bool(r.stopped_at_eos), memories=memories, seconds=float(r.seconds))
            finally:
                lib.aios_diffuse_result_free(ctypes.byref(r))
        return res if details else res.text

    # ---- tokenizer ----------------------------------------------------------------------------
    def tokenize(self, text: str, add_special_tokens: bool = True) -> list:
        """Token ids of text with the model's tokenizer (decoders: as generate() tokenizes a text
        prompt, BOS per add_special_tokens).  Truncation in tokenizer.json applies, padding does not."""
        b = text_arg(text, "text")
        with self._lock:
            if self._info["kind"] == "decoder":
                ids = ctypes.POINTER(ctypes.c_int32)()
                n = ctypes.c_size_t()
                call(lib.aios_generator_tokenize, self._generator(), b, 1 if add_special_tokens else 0,
                     ctypes.byref(ids), ctypes.byref(n))
                try:
                    return ids[:n.value] if n.value else []
                finally:
                    lib.aios_free(ctypes.cast(ids, ctypes.c_void_p))
            tok = self._tokenizer()
            p = lib.aios_tokenizer_default_params(tok)
            p.add_special_tokens = 1 if add_special_tokens else 0
            p.pad_strategy = 0  # the ids of the text; tokenizer.json's batch padding is not applied
            enc = ctypes.POINTER(_lib.Encoding)()
            call(lib.aios_tokenizer_encode, tok, b, len(b), ctypes.byref(p), ctypes.byref(enc))
            try:
                e = enc.contents
                return e.ids[:e.n] if e.n else []
            finally:
                lib.aios_encoding_free(enc)

    def detokenize(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of token ids (special tokens skipped unless skip_special_tokens=False; decoders
        always skip them, as generate's text does)."""
        a = ids_arg(ids)
        out = ctypes.c_void_p()
        with self._lock:
            if self._info["kind"] == "decoder":
                call(lib.aios_generator_detokenize, self._generator(), iptr(a), a.size, ctypes.byref(out))
            else:
                n = ctypes.c_size_t()
                call(lib.aios_tokenizer_decode, self._tokenizer(), iptr(a), a.size, 1 if skip_special_tokens else 0,
                     ctypes.byref(out), ctypes.byref(n))
        return take_string(out.value)
