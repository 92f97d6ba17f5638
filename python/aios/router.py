"""EvolutionRouter: the seed's Phase 2 router over libaios's skill library (docs/evolution.md).

A skill library is a directory of LoRA adapters with an index (LIB/index.parquet).  The router
embeds a prompt once with the library's encoder and picks skills by meaning (`semantic`, the
seed's L2), mixes every skill per token and layer (`arrow`), or mixes the chosen skills'
next-token logits (`compose`, the seed's L0); each answer carries its uncertainty score, an
uncertain one goes to the learning queue of the store, `teach` records approved answers and
`evolve` trains, gates and keeps skills from them (aios_evolve, as `aios evolve`).

    router = aios.EvolutionRouter("skills/", aios.ArrowEngine("SmolLM2-135M-Instruct.Q4_1.gguf"),
                                  encoder="models/all-MiniLM-L6-v2", store="memories/")
    router.add("household", "adapters/household", questions="household.jsonl")
    out = router.generate("What is Ada's cat called?", chat=True, max_tokens=32)
    out.text, out.skills, out.uncertainty.score

Every compute call (encode, route, generate, train) runs with the GIL released.
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import math
import os
import threading
from typing import Any, Callable, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import _lib
from ._util import call, float_arg, fptr, int_arg, opt_text, path_arg, text_arg
from .engine import ArrowEngine, Generation
from .errors import FormatError, InvalidArgumentError, NotFoundError, ShapeError, error_for

lib = _lib.lib
ROUTERS = ("none", "semantic", "arrow", "compose")
_GEN_ROUTER = {"none": 0, "arrow": 1, "compose": 2}  # aios_router


def _nan(x: float) -> Optional[float]:
    return None if math.isnan(x) else float(x)


def _s(b: Optional[bytes]) -> Optional[str]:
    return None if b is None else b.decode("utf-8", "replace")


@dataclasses.dataclass
class Skill:
    """A row of the library's index.  Figures the library did not measure are None."""
    name: str
    description: Optional[str]
    status: str                 # "active" or "rejected"
    reason: Optional[str]
    adapter: Optional[str]      # full path of the adapter (None for a rejected skill)
    base_model: Optional[str]
    n_pairs: int
    steps: int
    lr: Optional[float]
    loss_before: Optional[float]
    loss_after: Optional[float]
    ppl_before: Optional[float]
    ppl_after: Optional[float]
    created_us: int
    centroid: Optional[np.ndarray]               # (dim) float32 or None
    description_embedding: Optional[np.ndarray]  # (dim) float32 or None


@dataclasses.dataclass
class Route:
    """A skill the router chose: cosine score to its centroid and softmax weight."""
    name: str
    score: float
    weight: float


@dataclasses.dataclass
class Uncertainty:
    """The answer's uncertainty (aios_generator_uncertainty): per generated token the entropy
    (nats) and top-1 probability; score = H / (1 + H) with H the mean entropy; uncertain when
    score >= threshold (config evolution.uncertainty_threshold, 0.7)."""
    score: float
    mean_entropy: float
    mean_one_minus_p: float
    max_one_minus_p: float
    entropy: List[float]
    p_top1: List[float]
    threshold: float
    uncertain: bool


@dataclasses.dataclass
class RoutedGeneration:
    """What EvolutionRouter.generate returns."""
    text: str
    ids: list                 # prompt + generated ids
    n_prompt: int
    stop_reason: str
    router: str
    skills: List[Route]       # the skills that answered ([] = the base model)
    uncertainty: Uncertainty
    queued: Optional[str]     # memory id of the learning-queue record written, else None
    generation: Generation

    @property
    def generated_ids(self) -> list:
        return self.ids[self.n_prompt:]


@dataclasses.dataclass
class EvolvedGroup:
    """One topic group of an evolve run: its skill (None when it waits for more pairs or in a
    dry run), status ("active", "rejected", "waiting", "planned"), the gate's figures."""
    name: Optional[str]
    status: str
    reason: Optional[str]
    n_pairs: int
    n_train: int
    n_heldout: int
    steps: int
    n_reproduced: int
    n_routed: int
    loss_before: Optional[float]
    loss_after: Optional[float]
    ppl_before: Optional[float]
    ppl_after: Optional[float]
    questions: List[str]


def _questions(questions: Any) -> tuple:
    """(list of question strings, description from a "skill" field or None) from a JSONL path or a
    sequence of str / {"q"|"question": ...} dicts."""
    if questions is None:
        return [], None
    desc = None
    if isinstance(questions, (str, bytes, os.PathLike)):
        path = path_arg(questions, "questions")
        rows = []
        with open(path, "rb") as f:
            for k, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise FormatError(f"{os.fsdecode(path)}:{k}: expected a JSON object with a string \"q\"") from None
                if not isinstance(rows[-1], dict) or not isinstance(rows[-1].get("q", rows[-1].get("question")), str):
                    raise FormatError(f"{os.fsdecode(path)}:{k}: expected a JSON object with a string \"q\"")
        if not rows:
            raise FormatError(f"{os.fsdecode(path)}: no questions")
        questions = rows
    if not isinstance(questions, (Sequence, Iterable)):
        raise TypeError("questions must be a JSONL path or a list of str / {'q': ...} dicts")
    out = []
    for i, q in enumerate(questions):
        if isinstance(q, dict):
            if desc is None and isinstance(q.get("skill"), str) and q["skill"]:
                desc = q["skill"]
            q = q.get("q", q.get("question"))
        out.append(text_arg(q, f"questions[{i}]"))
    return out, desc


class EvolutionRouter:
    """A skill library and the routers over it, bound to a decoder model.

    skills: the library directory (created when `create` and missing).  model: an ArrowEngine
    of a decoder, or its path (needed by generate and evolve).  encoder: the embedding model of
    a new library (default: the one the library records).  store: the memory store that
    receives taught pairs and uncertain answers (created when missing; records the library's
    encoder).  top_k / threshold / temperature: the semantic router's defaults (threshold: config
    evolution.router_threshold, 0.5); arrow_top_k / arrow_temperature: the per-token router's.
    config: a configuration file (evolution.*) instead of the default search."""

    def __init__(self, skills: Any, model: Any = None, *, encoder: Any = None, store: Any = None,
                 create: bool = True, top_k: int = 1, threshold: Optional[float] = None,
                 temperature: float = 0.1, arrow_top_k: int = 2, arrow_temperature: float = 1.0,
                 config: Any = None):
        self.path = path_arg(skills, "skills").decode("utf-8", "surrogateescape")
        self._lock = threading.RLock()
        self._lib = None
        self._enc = None
        self._enc_path: Optional[bytes] = None
        if model is not None and not isinstance(model, (ArrowEngine, str, os.PathLike)):
            raise TypeError("model must be an ArrowEngine or a model path, not " + type(model).__name__)
        self.engine = ArrowEngine(model) if isinstance(model, (str, os.PathLike)) else model
        self.store = None if store is None else path_arg(store, "store").decode("utf-8", "surrogateescape")
        self._encoder_arg = None if encoder is None else path_arg(encoder, "encoder")
        cfg = _lib.Config()
        call(lib.aios_config_load, ctypes.byref(cfg), None if config is None else path_arg(config, "config"))
        self.uncertainty_threshold = float(cfg.evolution.uncertainty_threshold)
        self.top_k = int_arg(top_k, "top_k")
        self.threshold = float(cfg.evolution.router_threshold) if threshold is None else float_arg(threshold, "threshold")
        self.temperature = float_arg(temperature, "temperature")
        self.arrow_top_k = int_arg(arrow_top_k, "arrow_top_k")
        self.arrow_temperature = float_arg(arrow_temperature, "arrow_temperature")
        self._check_router_params(self.top_k, self.threshold, self.temperature)
        if self.arrow_top_k < 1 or not self.arrow_temperature > 0:
            raise ValueError("arrow_top_k must be >= 1 and arrow_temperature > 0")
        self._open(bool(create))

    @staticmethod
    def _check_router_params(top_k, threshold, temperature):
        if not 1 <= top_k <= _lib.ROUTE_MAX:
            raise ValueError(f"top_k must be in [1, {_lib.ROUTE_MAX}]")
        if not -1 <= threshold <= 1 or not temperature > 0:
            raise ValueError("threshold must be in [-1, 1] and temperature > 0")

    def _open(self, create: bool) -> None:
        h = ctypes.c_void_p()
        call(lib.aios_skills_open, os.fsencode(self.path), 1 if create else 0, ctypes.byref(h))
        self._lib = h

    def _reopen(self) -> None:
        """Reads the index again (aios_evolve and other handles rewrite it)."""
        with self._lock:
            if self._lib:
                lib.aios_skills_close(self._lib)
                self._lib = None
            self._open(True)

    # ---- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        """Frees the library and encoder handles (the engine stays the caller's)."""
        with self._lock:
            if self._lib:
                lib.aios_skills_close(self._lib)
            if self._enc:
                lib.aios_encoder_free(self._enc)
            self._lib = self._enc = None

    def __del__(self):
        if getattr(self, "_lock", None) is not None:
            try:
                self.close()
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass

    def __enter__(self) -> "EvolutionRouter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EvolutionRouter({self.path!r}, {len(self)} skills)"

    def _handle(self):
        if not self._lib:
            raise InvalidArgumentError("EvolutionRouter: closed")
        return self._lib

    # ---- the library ----------------------------------------------------------------------------
    @property
    def encoder(self) -> Optional[str]:
        """The embedding model every vector of the library comes from (None until the first add)."""
        with self._lock:
            e = lib.aios_skills_encoder(self._handle())
            return e.decode("utf-8", "surrogateescape") if e else None

    @property
    def dim(self) -> int:
        with self._lock:
            return int(lib.aios_skills_dim(self._handle()))

    def __len__(self) -> int:
        with self._lock:
            return int(lib.aios_skills_count(self._handle()))

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return bool(lib.aios_skills_get(self._handle(), text_arg(name, "name")))

    def _skill(self, p) -> Skill:
        k = p.contents
        dim = int(lib.aios_skills_dim(self._lib))
        buf = ctypes.create_string_buffer(8192)
        adapter = None
        if k.adapter:
            call(lib.aios_skills_adapter_path, self._lib, p, buf, len(buf))
            adapter = buf.value.decode("utf-8", "surrogateescape")

        def vec(v):
            return np.ctypeslib.as_array(v, (dim,)).copy() if v and dim > 0 else None

        return Skill(name=_s(k.name), description=_s(k.description), status=_s(k.status) or "active",
                     reason=_s(k.reason), adapter=adapter, base_model=_s(k.base_model), n_pairs=int(k.n_pairs),
                     steps=int(k.steps), lr=_nan(k.lr), loss_before=_nan(k.loss_before),
                     loss_after=_nan(k.loss_after), ppl_before=_nan(k.ppl_before), ppl_after=_nan(k.ppl_after),
                     created_us=int(k.created_us), centroid=vec(k.centroid),
                     description_embedding=vec(k.description_embedding))

    def list(self) -> List[Skill]:
        """Every skill of the index (active and rejected), in index order."""
        with self._lock:
            h = self._handle()
            return [self._skill(lib.aios_skills_at(h, i)) for i in range(int(lib.aios_skills_count(h)))]

    @property
    def skills(self) -> List[Skill]:
        return self.list()

    def get(self, name: str) -> Skill:
        """The skill named `name`; NotFoundError when there is none."""
        with self._lock:
            p = lib.aios_skills_get(self._handle(), text_arg(name, "name"))
            if not p:
                raise NotFoundError(f"no skill named '{name}' in {self.path}")
            return self._skill(p)

    def add(self, name: str, adapter: Any, *, description: Optional[str] = None, questions: Any = None) -> Skill:
        """Adds a skill (as `aios skills add`): adapter is a PEFT directory, a skill card (.parquet)
        or a LoRACard, copied into the library; questions (a JSONL path of {"q": ...} lines or a
        list of str / dicts) give the centroid the semantic router compares prompts with;
        description defaults to the questions' "skill" field, else the name."""
        from .train import LoRACard
        path = adapter.path if isinstance(adapter, LoRACard) else adapter
        qs, qdesc = _questions(questions)
        desc = description if description is not None else qdesc
        arr = (ctypes.c_char_p * max(1, len(qs)))(*qs)
        with self._lock:
            call(lib.aios_skills_add_adapter, self._handle(), self._encoder_arg, path_arg(path, "adapter"),
                 text_arg(name, "name"), opt_text(desc, "description"), arr, len(qs))
            return self.get(name)

    def remove(self, name: str) -> None:
        """Removes the skill and its adapter files (as `aios skills remove`)."""
        with self._lock:
            call(lib.aios_skills_delete, self._handle(), text_arg(name, "name"))

    # ---- routing ------------------------------------------------------------------------------
    def _encoder(self):
        e = lib.aios_skills_encoder(self._handle())
        if not e:
            raise NotFoundError(f"skills {self.path}: the library has no skill (no encoder recorded)")
        if self._enc is None or self._enc_path != e:
            if self._enc:
                lib.aios_encoder_free(self._enc)
                self._enc = None
            h = ctypes.c_void_p()
            # as `aios generate --skills` (--router-encoder int8, the default): the prompt is embedded
            # by the library's encoder quantized to int8 at open, so both route alike
            p = lib.aios_encoder_default_params()
            p.quantize_bits = 8
            call(lib.aios_encoder_open, e, ctypes.byref(p), ctypes.byref(h))
            self._enc, self._enc_path = h, e
            if lib.aios_encoder_dim(h) != lib.aios_skills_dim(self._lib):
                raise ShapeError(f"skills {self.path}: vectors of {lib.aios_skills_dim(self._lib)} floats, the "
                                    f"encoder {e.decode()} gives {lib.aios_encoder_dim(h)}")
        return self._enc

    def embed(self, text: str) -> np.ndarray:
        """The prompt's embedding by the library's encoder (what route compares)."""
        b = text_arg(text, "prompt")
        with self._lock:
            enc = self._encoder()
            v = np.zeros(int(lib.aios_skills_dim(self._lib)), np.float32)
            call(lib.aios_encode, enc, b, len(b), fptr(v))
            return v

    def _route(self, query: np.ndarray, top_k, threshold, temperature) -> List[tuple]:
        p = lib.aios_router_default_params()
        p.top_k, p.threshold, p.temperature = top_k, threshold, temperature
        out = (_lib.Route * _lib.ROUTE_MAX)()
        n = ctypes.c_int()
        call(lib.aios_skills_route, self._lib, fptr(query), query.size, ctypes.byref(p), out, ctypes.byref(n))
        return [(int(out[i].index), float(out[i].score), float(out[i].weight)) for i in range(n.value)]

    def route(self, prompt: str, *, top_k: Optional[int] = None, threshold: Optional[float] = None,
              temperature: Optional[float] = None) -> List[Route]:
        """The skills the semantic router picks for `prompt` (as `aios skills route --jsonl`): the
        top_k active skills whose cosine to the prompt is >= threshold, best first, weighted by a
        softmax of score / temperature; [] = the base model alone."""
        k = self.top_k if top_k is None else int_arg(top_k, "top_k")
        t = self.threshold if threshold is None else float_arg(threshold, "threshold")
        tt = self.temperature if temperature is None else float_arg(temperature, "temperature")
        self._check_router_params(k, t, tt)
        with self._lock:
            q = self.embed(prompt)
            return [Route(_s(lib.aios_skills_at(self._lib, i).contents.name), s, w)
                    for i, s, w in self._route(q, k, t, tt)]

    # ---- generation -----------------------------------------------------------------------------
    def generate(self, prompt: str, router: str = "semantic", max_tokens: int = 256, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int = 0, stop: Union[str, Sequence[str], None] = None, *,
                 chat: bool = False, system: Optional[str] = None, skills_top_k: Optional[int] = None,
                 router_threshold: Optional[float] = None, router_temperature: Optional[float] = None,
                 learn: bool = True, **options: Any) -> RoutedGeneration:
        """Answers `prompt` through the library (as `aios generate --skills LIB --router R`): the
        prompt is routed (semantic: the chosen skills at their weights; arrow: every active skill,
        mixed per token and layer; compose: the chosen skills' logits mixed by weight; none: the
        base model), the skills are attached for this call only, the answer's uncertainty is
        measured, and an uncertain answer is queued in `store` (learn=False: not).  chat=True wraps
        the prompt in the model's chat template (system: a system message).  top_k / top_p /
        temperature / seed / stop and **options are the sampler's (ArrowEngine.generate); the
        router's own are skills_top_k, router_threshold and router_temperature."""
        if router not in ROUTERS:
            raise ValueError(f"router: expected none, semantic, arrow or compose, got {router!r}")
        eng = self.engine
        if eng is None:
            raise InvalidArgumentError("EvolutionRouter.generate: no model (EvolutionRouter(skills, model))")
        if eng.adapters:
            raise InvalidArgumentError("EvolutionRouter.generate: the engine has adapters applied (use_adapters); "
                                       "the router attaches the skills itself")
        query = text_arg(prompt, "prompt")
        k = self.top_k if skills_top_k is None else int_arg(skills_top_k, "skills_top_k")
        thr = self.threshold if router_threshold is None else float_arg(router_threshold, "router_threshold")
        rt = self.temperature if router_temperature is None else float_arg(router_temperature, "router_temperature")
        self._check_router_params(k, thr, rt)
        arrow_t = self.arrow_temperature if router_temperature is None else rt
        details = options.pop("details", None)  # always detailed here
        del details
        add_bos = options.pop("add_bos", None)
        p, keep = eng._gen_params(max_tokens, temperature, top_k, top_p, options.pop("min_p", 0.0),
                                  options.pop("repetition_penalty", 1.0), options.pop("presence_penalty", 0.0),
                                  options.pop("frequency_penalty", 0.0), seed, stop,
                                  options.pop("ignore_eos", False), add_bos)
        if options:
            raise TypeError("generate() got unexpected keyword arguments: " + ", ".join(sorted(options)))
        with self._lock, eng._lock:
            g = eng._generator()
            routes: list = []
            attached: list = []
            try:
                if router != "none":
                    q = self.embed(prompt)
                    if router == "arrow":
                        routes = [(i, s, 1.0) for i, s, _ in self._route(q, _lib.ROUTE_MAX, -1.0, rt)]
                    else:
                        routes = self._route(q, k, thr, rt)
                    buf = ctypes.create_string_buffer(8192)
                    for i, _, w in routes:
                        call(lib.aios_skills_adapter_path, self._lib, lib.aios_skills_at(self._lib, i), buf, len(buf))
                        aid = ctypes.c_int()
                        call(lib.aios_generator_adapter_add, g, buf.value, w, ctypes.byref(aid))
                        attached.append(aid.value)
                gr = _GEN_ROUTER[router] if attached and router in ("arrow", "compose") else 0
                call(lib.aios_generator_set_router, g, gr, self.arrow_top_k, arrow_t)
                text = query
                if chat:
                    msgs = ([( b"system", text_arg(system, "system"))] if system is not None else []) + [(b"user", query)]
                    arr = (_lib.ChatMessage * len(msgs))(*[_lib.ChatMessage(r, c) for r, c in msgs])
                    out = ctypes.c_void_p()
                    call(lib.aios_generator_chat_prompt, g, arr, len(msgs), ctypes.byref(out))
                    from ._util import take_string
                    text = take_string(out.value).encode("utf-8", "surrogatepass")
                res = eng._run_generate(g, text, None, 0, p)
                unc = self._uncertainty(lib.aios_generator_uncertainty(g))
            finally:
                for aid in attached:
                    lib.aios_generator_adapter_remove(g, aid)
                lib.aios_generator_set_router(g, 0, self.arrow_top_k, self.arrow_temperature)
            chosen = [Route(_s(lib.aios_skills_at(self._lib, i).contents.name), s, w) for i, s, w in routes]
        _ = keep
        queued = None
        if learn and self.store is not None and unc.uncertain:
            queued = self._record(prompt, res.text, 0, unc.score, ",".join(r.name for r in chosen), eng.path)
        return RoutedGeneration(text=res.text, ids=res.ids, n_prompt=res.n_prompt, stop_reason=res.stop_reason,
                                router=router, skills=chosen, uncertainty=unc, queued=queued, generation=res)

    def _uncertainty(self, up) -> Uncertainty:
        u = up.contents
        n = int(u.n)
        h = [float(u.entropy[i]) for i in range(n)] if n else []
        pt = [float(u.p_top1[i]) for i in range(n)] if n else []
        return Uncertainty(score=float(u.score), mean_entropy=float(u.mean_entropy),
                           mean_one_minus_p=float(u.mean_one_minus_p), max_one_minus_p=float(u.max_one_minus_p),
                           entropy=h, p_top1=pt, threshold=self.uncertainty_threshold,
                           uncertain=float(u.score) >= self.uncertainty_threshold)

    # ---- the loop ---------------------------------------------------------------------------------
    def _record(self, question: str, answer: str, approved: int, score: float, skills: str, model: str) -> str:
        if self.store is None:
            raise InvalidArgumentError("EvolutionRouter: no store (EvolutionRouter(skills, model, store=DIR))")
        qb, ab = text_arg(question, "question"), text_arg(answer, "answer")
        with self._lock:
            enc_path = self._encoder_arg or lib.aios_skills_encoder(self._handle()) or None
            st = self._open_store(enc_path)
            enc = None
            try:
                rec = lib.aios_store_model(st)
                if self._enc is not None and rec == self._enc_path:
                    use = self._enc
                else:
                    enc = ctypes.c_void_p()
                    call(lib.aios_encoder_open, rec, None, ctypes.byref(enc))
                    use = enc
                it = _lib.LearnItem(qb, ab, approved, score, None if approved else skills.encode(),
                                    None if approved else os.fsencode(model))
                idbuf = ctypes.create_string_buffer(_lib.MEMORY_ID_MAX)
                call(lib.aios_learn_record, st, use, ctypes.byref(it), idbuf)
                return idbuf.value.decode()
            finally:
                if enc:
                    lib.aios_encoder_free(enc)
                lib.aios_store_close(st)

    def _open_store(self, encoder: Optional[bytes]):
        """The learning store, created when missing; a store with no model yet records `encoder`."""
        sp = lib.aios_store_default_params()
        sp.create = 1
        h = ctypes.c_void_p()
        call(lib.aios_store_open, os.fsencode(self.store), ctypes.byref(sp), ctypes.byref(h))
        if lib.aios_store_model(h):
            return h
        lib.aios_store_close(h)
        if not encoder:
            raise NotFoundError(f"learning store {self.store} records no embedding model; give one (encoder=)")
        sp.model = encoder
        h = ctypes.c_void_p()
        call(lib.aios_store_open, os.fsencode(self.store), ctypes.byref(sp), ctypes.byref(h))
        return h

    def teach(self, question: Any, answer: Optional[str] = None) -> Union[str, List[str]]:
        """Records approved question / answer pairs in the store (as `aios teach`): what evolve
        trains on.  teach(q, a) returns the memory id; teach([(q, a) or {"q", "a"}, ...]) a list."""
        if answer is not None:
            return self._record(question, answer, 1, 0.0, "", "")
        if isinstance(question, (str, bytes)) or not isinstance(question, Iterable):
            raise TypeError("teach: (question, answer) or a list of (q, a) pairs / {'q', 'a'} dicts")
        ids = []
        for i, x in enumerate(question):
            if isinstance(x, dict):
                q, a = x.get("q", x.get("question")), x.get("a", x.get("answer"))
            elif isinstance(x, (tuple, list)) and len(x) == 2:
                q, a = x
            else:
                raise TypeError(f"teach: pairs[{i}] must be (q, a) or a {{'q', 'a'}} dict")
            ids.append(self._record(text_arg(q, f"pairs[{i}] question").decode("utf-8", "surrogatepass"),
                                    text_arg(a, f"pairs[{i}] answer").decode("utf-8", "surrogatepass"), 1, 0.0, "", ""))
        return ids

    def evolve(self, *, steps: int = 8, extend_steps: int = 8, rank: int = 8, lr: float = 3e-3,
               targets: Union[str, Sequence[str]] = "q_proj,v_proj,down_proj", group_threshold: float = 0.3,
               max_ppl_increase: float = 0.02, regression: Any = None, require_heldout: bool = False,
               dry_run: bool = False, n_threads: int = 0,
               log: Optional[Callable[[str], None]] = None) -> List[EvolvedGroup]:
        """Trains skills from the store's approved pairs (aios_evolve, as `aios evolve`): groups
        them by topic, trains one LoRA skill per group of >= 3 pairs, keeps it only when it
        reproduces every taught answer and the routed regression set's perplexity stays within
        max_ppl_increase; kept skills are routable at once.  log receives progress lines.  The
        GIL is released for the whole run (log takes it back for each line)."""
        if self.store is None:
            raise InvalidArgumentError("EvolutionRouter.evolve: no store (EvolutionRouter(skills, model, store=DIR))")
        if self.engine is None:
            raise InvalidArgumentError("EvolutionRouter.evolve: no model (EvolutionRouter(skills, model))")
        p = lib.aios_evolve_default_params()
        p.steps, p.extend_steps, p.rank = int_arg(steps, "steps"), int_arg(extend_steps, "extend_steps"), int_arg(rank, "rank")
        p.lr, p.group_threshold = float_arg(lr, "lr"), float_arg(group_threshold, "group_threshold")
        p.max_ppl_increase = float_arg(max_ppl_increase, "max_ppl_increase")
        tg = targets if isinstance(targets, str) else ",".join(text_arg(t, "targets").decode() for t in targets)
        tgb = text_arg(tg, "targets")
        p.target = tgb
        regb = None if regression is None else path_arg(regression, "regression")
        p.regression = regb
        p.require_heldout, p.dry_run = 1 if require_heldout else 0, 1 if dry_run else 0
        p.n_threads = int_arg(n_threads, "n_threads")
        cb = None
        if log is not None:
            if not callable(log):
                raise TypeError("log must be callable")

            def on_line(user, line):
                try:
                    log(line.decode("utf-8", "replace"))
                except Exception:  # noqa: BLE001 - a callback's error must not unwind through C
                    pass
            cb = _lib.EVOLVE_LOG(on_line)
            p.log = ctypes.cast(cb, ctypes.c_void_p)
        r = _lib.EvolveResult()
        with self._lock:
            lib.aios_clear_error()
            s = lib.aios_evolve(os.fsencode(self.store), os.fsencode(self.path), os.fsencode(self.engine.path),
                                ctypes.byref(p), ctypes.byref(r))
            try:
                groups = []
                for i in range(int(r.n_groups)):
                    g = r.groups[i]
                    groups.append(EvolvedGroup(
                        name=_s(g.name), status=_s(g.status) or "", reason=_s(g.reason), n_pairs=int(g.n_pairs),
                        n_train=int(g.n_train), n_heldout=int(g.n_heldout), steps=int(g.steps),
                        n_reproduced=int(g.n_reproduced), n_routed=int(g.n_routed), loss_before=_nan(g.loss_before),
                        loss_after=_nan(g.loss_after), ppl_before=_nan(g.ppl_before), ppl_after=_nan(g.ppl_after),
                        questions=[_s(g.questions[k]) for k in range(int(g.n_pairs))]))
                if s != 0:
                    raise error_for(s)
            finally:
                lib.aios_evolve_result_free(ctypes.byref(r))
                self._reopen()
        _ = (cb, tgb, regb)
        return groups
