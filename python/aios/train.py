"""LoRATrainer and LoRACard: the seed's `LoRATrainer(model).train_qa(pairs, "my_skill")`.

Training is aios_train of the C library (src/train/, docs/training.md): the engine's model is
trained in place in whatever dtype it is stored (a 4-bit GGUF base included), the adapter comes
back as a skill card (DESIGN.md section 3: one Parquet file).  The GIL is released for the whole
run; a progress callback takes it back for its own duration only.

    trainer = aios.LoRATrainer(engine)
    card = trainer.train_qa([{"q": "What is the name of Ada's cat?", "a": "Miso."}], "household")
    card.save("household.parquet")
    engine.use_adapters([card])          # generate / chat now answer with the skill
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
from typing import Any, Callable, Mapping, Optional, Sequence

from . import _lib
from ._util import call, float_arg, int_arg, path_arg, text_arg
from .errors import error_for

lib = _lib.lib

_OPTIONS = {  # keyword -> (field, kind)
    "rank": ("rank", int), "alpha": ("alpha", float), "rslora": ("rslora", bool), "dropout": ("dropout", float),
    "lr": ("lr", float), "steps": ("steps", int), "batch": ("batch", int), "accum": ("accum", int),
    "weight_decay": ("weight_decay", float), "clip": ("clip", float), "warmup": ("warmup", int),
    "seed": ("seed", int), "max_len": ("max_len", int), "n_threads": ("n_threads", int),
    "checkpoint": ("checkpoint", bool),
}


class LoRACard:
    """A trained LoRA adapter (a skill card).  `path` is its file (a skill card .parquet, or a
    PEFT adapter directory when loaded from one); training facts are in `info` (name, steps,
    first_loss, final_loss, lr, examples, label_tokens, seconds) where known."""

    def __init__(self, path: str, info: Optional[dict] = None, *, _owned_dir: Optional[str] = None):
        self.path = path
        self.info = dict(info or {})
        self._owned_dir = _owned_dir  # a temporary directory the card lives in (removed with the card)

    @property
    def name(self) -> str:
        return self.info.get("name") or os.path.splitext(os.path.basename(self.path.rstrip("/")))[0]

    def save(self, path: Any, *, model: Any = None) -> "LoRACard":
        """Writes the card to `path` (atomically): a skill card when it ends in .parquet, else a
        PEFT adapter directory (converted by the library; `model` gives the shapes, default the
        base model the card was trained on).  Returns the card at its new place."""
        dst = path_arg(path).decode("utf-8", "surrogateescape")
        is_card = self.path.endswith(".parquet")
        if dst.endswith(".parquet") and is_card:
            tmp = dst + ".tmp%d" % os.getpid()
            shutil.copyfile(self.path, tmp)
            os.replace(tmp, dst)
        else:
            base = model if model is not None else self.info.get("base_model")
            if not base:
                raise ValueError("save: converting needs model= (the base model the adapter fits)")
            call(lib.aios_lora_convert, path_arg(base, "model"), path_arg(self.path), path_arg(dst))
        return LoRACard(dst, self.info)

    @classmethod
    def load(cls, path: Any) -> "LoRACard":
        """A card from a skill card file (.parquet) or a PEFT adapter directory.  The adapter is
        read (and checked against a model) where it is used: engine.use_adapters."""
        p = path_arg(path).decode("utf-8", "surrogateescape")
        if os.path.isdir(p):
            cfg = os.path.join(p, "adapter_config.json")
            if not os.path.exists(cfg):
                raise error_for(-4, f"LoRACard.load: {p}: a directory without adapter_config.json")
            with open(cfg, encoding="utf-8") as f:
                c = json.load(f)
            info = {"rank": c.get("r"), "alpha": c.get("lora_alpha"), "targets": c.get("target_modules"),
                    "base_model": c.get("base_model_name_or_path")}
            return cls(p, info)
        with open(p, "rb") as f:
            head = f.read(4)
        if head != b"PAR1":
            raise error_for(-4, f"LoRACard.load: {p}: not a skill card (Parquet) nor a PEFT directory")
        return cls(p, {})

    def __repr__(self) -> str:
        return f"LoRACard({self.path!r}, name={self.name!r})"

    def __del__(self):
        d = getattr(self, "_owned_dir", None)
        if d:
            shutil.rmtree(d, ignore_errors=True)


def _pairs_jsonl(qa_pairs: Sequence[Any]) -> str:
    if isinstance(qa_pairs, (str, bytes)) or not isinstance(qa_pairs, Sequence):
        raise TypeError("qa_pairs must be a list of {'q', 'a'} dicts or (question, answer) pairs")
    lines = []
    for i, x in enumerate(qa_pairs):
        if isinstance(x, Mapping):
            q = x.get("q", x.get("question"))
            a = x.get("a", x.get("answer"))
        elif isinstance(x, (tuple, list)) and len(x) == 2:
            q, a = x
        else:
            raise TypeError(f"qa_pairs[{i}] must be a dict with 'q' and 'a' or a (question, answer) pair")
        q = text_arg(q, f"qa_pairs[{i}] question").decode("utf-8", "surrogatepass")
        a = text_arg(a, f"qa_pairs[{i}] answer").decode("utf-8", "surrogatepass")
        if not q or not a:
            raise ValueError(f"qa_pairs[{i}]: an empty question or answer")
        lines.append(json.dumps({"q": q, "a": a}, ensure_ascii=False))
    if not lines:
        raise ValueError("qa_pairs: no pairs")
    return "\n".join(lines) + "\n"


class LoRATrainer:
    """Trains LoRA skills on an ArrowEngine's decoder model (Llama / SmolLM2, Qwen2, Qwen3).

        card = aios.LoRATrainer(engine).train_qa(pairs, "my_skill", epochs=3)
    """

    def __init__(self, engine: Any):
        from .engine import ArrowEngine
        if not isinstance(engine, ArrowEngine):
            raise TypeError(f"LoRATrainer needs an ArrowEngine, not {type(engine).__name__}")
        if engine.info.get("kind") != "decoder":
            raise error_for(-5, f"LoRATrainer: {engine.path} is not a decoder model")
        self.engine = engine

    def train_qa(self, qa_pairs: Sequence[Any], name: str, epochs: Optional[int] = None, *,
                 targets: Any = None, schedule: str = "constant", init_adapter: Any = None,
                 log_jsonl: Any = None, progress: Optional[Callable[[dict], Any]] = None,
                 **options: Any) -> LoRACard:
        """Trains a skill on question-answer pairs ({"q", "a"} dicts, {"question", "answer"}, or
        (question, answer) tuples): the model's chat template around each question, the loss on
        the answer + end-of-turn.  epochs=None with no steps= uses the library's defaults that
        learn (whole epochs until at least 30 steps; the learning rate from the data size).
        Options (those of `aios train`): rank, alpha, targets ("q_proj,v_proj", a list, or
        "all"), rslora, dropout, lr, steps, batch, accum, weight_decay, clip, schedule
        ("constant" | "cosine"), warmup, seed, max_len, checkpoint, init_adapter, log_jsonl,
        n_threads.  progress(dict) is called after each step (step, total_steps, loss,
        grad_norm, lr, tokens_per_s, elapsed_s, eta_s); a true return value stops training (the
        adapter so far is returned).  Returns the LoRACard."""
        name = text_arg(name, "name").decode("utf-8", "surrogatepass")
        if not name:
            raise ValueError("name: an empty skill name")
        data = _pairs_jsonl(qa_pairs)
        p = lib.aios_train_default_params()
        for k, v in options.items():
            if k not in _OPTIONS:
                raise TypeError(f"train_qa() got an unexpected keyword argument '{k}'")
            field, kind = _OPTIONS[k]
            if kind is bool:
                setattr(p, field, 1 if v else 0)
            elif kind is int:
                setattr(p, field, int_arg(v, k) & (2**64 - 1) if k == "seed" else int_arg(v, k))
            else:
                setattr(p, field, float_arg(v, k))
        if epochs is not None:
            p.epochs = int_arg(epochs, "epochs")
            if p.epochs <= 0:
                raise ValueError("epochs must be > 0")
            if p.steps:
                raise ValueError("give steps= or epochs=, not both")
        if schedule not in ("constant", "cosine"):
            raise ValueError("schedule must be 'constant' or 'cosine'")
        p.cosine = 1 if schedule == "cosine" else 0
        keep = []
        if targets is not None:
            t = targets if isinstance(targets, str) else ",".join(targets)
            keep.append(text_arg(t, "targets"))
            p.targets = keep[-1]
        if init_adapter is not None:
            keep.append(path_arg(init_adapter.path if isinstance(init_adapter, LoRACard) else init_adapter))
            p.init_adapter = keep[-1]
        if log_jsonl is not None:
            keep.append(path_arg(log_jsonl, "log_jsonl"))
            p.log_jsonl = keep[-1]
        keep.append(name.encode("utf-8", "surrogatepass"))
        p.name = keep[-1]
        state = {"error": None}
        cb = None
        if progress is not None:
            if not callable(progress):
                raise TypeError("progress must be callable")

            def on_progress(user, pr):
                x = pr.contents
                try:
                    return 1 if progress({k: getattr(x, k) for k, _ in _lib.TrainProgress._fields_}) else 0
                except BaseException as e:  # noqa: BLE001 - re-raised after the C call returns
                    state["error"] = e
                    return 1

            cb = _lib.TRAIN_PROGRESS(on_progress)
            p.progress = ctypes.cast(cb, ctypes.c_void_p)
        d = tempfile.mkdtemp(prefix="aios-card-")
        ok = False
        try:
            src = os.path.join(d, "train.jsonl")
            with open(src, "w", encoding="utf-8") as f:
                f.write(data)
            out = os.path.join(d, name.replace("/", "_") + ".parquet")
            r = _lib.TrainResult()
            engine = self.engine
            with engine._lock:  # the GIL is released inside (ctypes); the engine's handles are not used
                lib.aios_clear_error()
                s = lib.aios_train(engine._bpath, src.encode(), out.encode(), ctypes.byref(p), ctypes.byref(r))
            _ = (keep, cb)
            if state["error"] is not None:
                raise state["error"]
            if s != 0:
                raise error_for(s)
            os.unlink(src)
            info = {"name": name, "base_model": engine.path, "steps": int(r.steps), "total_steps": int(r.total_steps),
                    "examples": int(r.examples), "label_tokens": int(r.label_tokens), "first_loss": r.first_loss,
                    "final_loss": r.last_loss, "lr": r.lr, "seconds": r.seconds, "stopped": bool(r.stopped),
                    "activation_bytes": int(r.activation_bytes)}
            ok = True
            return LoRACard(out, info, _owned_dir=d)
        finally:
            if not ok:
                shutil.rmtree(d, ignore_errors=True)
