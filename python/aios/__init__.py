"""aios — the AIOS engine from Python: `import aios` gives the seed's API at C speed.

    import aios
    engine = aios.ArrowEngine("models/all-MiniLM-L6-v2")
    emb = engine.encode(["Hello, world!"])        # numpy float32 (1, 384), zero-copy

Classes: ArrowEngine (encode, similarity, generate, chat, diffuse, tokenize, detokenize, info,
use_adapters), ArrowStorage (save, query_by_similarity, add_text, search_text, get, update,
delete, ...), LoRATrainer (train_qa -> LoRACard: save, load), EvolutionRouter (a skill library:
add, remove, route, generate through the semantic / arrow / compose routers with the answer's
uncertainty, teach, evolve), and the AiosError hierarchy.  libaios.so is bound through ctypes (no compiler at import time); the
GIL is released during every compute call.  docs/python.md has a worked example per class.
"""
from . import _lib
from .engine import ArrowEngine, Diffusion, Generation
from .errors import (AiosError, AiosIOError, BusyError, CancelledError, ConfigError, CorruptError, EncodingError,
                     ExistsError, FormatError, InternalError, InvalidArgumentError, NotFoundError, OutOfMemoryError,
                     RangeError, ShapeError, UnsupportedError)
from .storage import ArrowStorage, MemoryRecord
from .train import LoRACard, LoRATrainer
from .router import EvolutionRouter, EvolvedGroup, Route, RoutedGeneration, Skill, Uncertainty

__version__ = "0.1.0"
LIBRARY_PATH = _lib.LIBRARY_PATH


def kernel_tier() -> str:
    """The active kernel tier: "ref", "avx2" or "avx512"."""
    return _lib.lib.aios_kernel_tier().decode()


def cpu_features() -> str:
    """CPU features the library detected ("avx2 fma f16c ...")."""
    import ctypes
    buf = ctypes.create_string_buffer(256)
    return _lib.lib.aios_cpu_describe(buf, 256).decode()


__all__ = ["ArrowEngine", "ArrowStorage", "MemoryRecord", "LoRATrainer", "LoRACard", "Generation", "Diffusion",
           "EvolutionRouter", "EvolvedGroup", "Route", "RoutedGeneration", "Skill", "Uncertainty", "AiosError",
           "InvalidArgumentError", "OutOfMemoryError", "AiosIOError", "FormatError", "UnsupportedError",
           "NotFoundError", "RangeError", "CorruptError", "BusyError", "ConfigError", "InternalError", "EncodingError",
           "ExistsError", "ShapeError", "CancelledError", "kernel_tier", "cpu_features", "LIBRARY_PATH"]
