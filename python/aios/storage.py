"""ArrowStorage: the memory store (the seed's ArrowStorage) over libaios's aios_store.

A store is a directory of zstd Parquet segments with the seed's schema (memory_id, timestamp,
content, embedding, metadata{category, source, quality_score}) plus a write-ahead log and an
HNSW index (docs/memory.md).  Every write is durable when the call returns.
"""
from __future__ import annotations

import ctypes
import dataclasses
import datetime as _dt
import os
import tempfile
import threading
from typing import Any, Iterator, Mapping, Sequence, Union

import numpy as np

from . import _lib
from ._util import call, float_arg, fptr, int_arg, opt_text, path_arg, text_arg, vector_arg
from .engine import ArrowEngine
from .errors import NotFoundError, error_for

lib = _lib.lib
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_META_KEYS = ("category", "source", "quality_score")


@dataclasses.dataclass
class MemoryRecord:
    """One memory.  score is the cosine similarity for search results (None otherwise);
    timestamp a UTC datetime (timestamp_us the exact microseconds); metadata None or a dict
    with category, source, quality_score (each may be None); embedding a float32 array or None."""
    memory_id: str
    content: str | None
    score: float | None
    metadata: dict | None
    timestamp: _dt.datetime
    timestamp_us: int
    embedding: np.ndarray | None = None

    def __getitem__(self, key: str) -> Any:  # the seed's records were dicts
        return getattr(self, key)


def _record(m: _lib.Memory, score: float | None) -> MemoryRecord:
    md = None
    if m.has_metadata:
        md = {"category": m.category.decode("utf-8", "replace") if m.category is not None else None,
              "source": m.source.decode("utf-8", "replace") if m.source is not None else None,
              "quality_score": float(m.quality_score) if m.has_quality else None}
    emb = None
    if m.embedding and m.dim > 0:
        emb = np.ctypeslib.as_array(m.embedding, (m.dim,)).copy()
    ts = int(m.timestamp_us)
    return MemoryRecord(memory_id=m.memory_id.decode("utf-8", "replace"),
                        content=m.content.decode("utf-8", "replace") if m.content is not None else None,
                        score=score, metadata=md, timestamp=_EPOCH + _dt.timedelta(microseconds=ts),
                        timestamp_us=ts, embedding=emb)


def _timestamp_us(t: Any, what: str = "timestamp") -> int:
    if t is None:
        return _lib.TIMESTAMP_NOW
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        d = t - _EPOCH
        return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    return int_arg(t, what + " (microseconds since the epoch, or a datetime)")


class ArrowStorage:
    """A memory store in directory `path` (created when missing; None = the configuration's
    storage.storage_path, ~/.aios/memory by default).

    embedding_model (a model path or an ArrowEngine over a BERT-family encoder) embeds text for
    add_text / search_text; when None, the model recorded in the store is used.

        store = aios.ArrowStorage("mem", embedding_model="models/all-MiniLM-L6-v2")
        store.add_text("The cat sat on the mat.", metadata={"category": "pets"})
        for r in store.search_text("where is the cat?", top_k=3): print(r.score, r.content)
    """

    def __init__(self, path: Any = None, embedding_model: Any = None, *, dim: int = 0, create: bool = True,
                 read_only: bool = False, sync: bool = True):
        if path is None:
            cfg = _lib.Config()
            call(lib.aios_config_load, ctypes.byref(cfg), None)
            path = cfg.storage.storage_path.decode()
        self.path = path_arg(path).decode("utf-8", "surrogateescape")
        self._lock = threading.RLock()
        self._st = None
        self._engine = None
        self._enc = None
        if embedding_model is not None and not isinstance(embedding_model, (ArrowEngine, str, os.PathLike)):
            raise TypeError("embedding_model must be a model path or an ArrowEngine, not "
                            f"{type(embedding_model).__name__}")
        p = lib.aios_store_default_params()
        p.create = 1 if create and not read_only else 0
        p.read_only = 1 if read_only else 0
        p.dim = int_arg(dim, "dim")
        p.sync = 1 if sync else 0
        model_b = None
        if isinstance(embedding_model, ArrowEngine):
            model_b = embedding_model.path.encode()
            self._engine = embedding_model
        elif embedding_model is not None:
            model_b = path_arg(embedding_model, "embedding_model")
            self._engine = ArrowEngine(embedding_model)
        p.model = model_b
        if self._engine is not None and p.dim == 0:
            # a new store takes the model's dimension (an existing one keeps its own)
            with self._engine._lock:
                p.dim = int(lib.aios_encoder_dim(self._engine._encoder(32, 1)))
        if create and not read_only:
            os.makedirs(self.path, exist_ok=True)
        h = ctypes.c_void_p()
        call(lib.aios_store_open, path_arg(path), ctypes.byref(p), ctypes.byref(h))
        self._st = h
        if embedding_model is not None:
            self._model_path = model_b
        else:
            rec = lib.aios_store_model(h)
            self._model_path = rec if rec else None

    # ---- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        """Persists the index, releases the writer's lock and frees the handle."""
        with self._lock:
            if self._st:
                lib.aios_store_close(self._st)
                self._st = None

    def __del__(self):
        if getattr(self, "_lock", None) is not None:
            try:
                self.close()
            except Exception:  # noqa: BLE001 - at interpreter exit the module may be half torn down
                pass

    def __enter__(self) -> "ArrowStorage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ArrowStorage({self.path!r})"

    def _h(self):
        if not self._st:
            raise ValueError("ArrowStorage: the store is closed")
        return self._st

    def _embedder(self):
        """Plugs the encoder (C to C: aios_encoder_embed) into the store on first text use."""
        if self._enc is None:
            if self._engine is None:
                if not self._model_path:
                    raise error_for(-1, f"store: {self.path}: no embedding model (pass embedding_model=)")
                self._engine = ArrowEngine(self._model_path.decode("utf-8", "surrogateescape"))
            eng = self._engine
            with eng._lock:
                self._enc = eng._encoder(32, 1)
            lib.aios_store_set_embedder(self._st, _lib.ENCODER_EMBED, self._enc)
        return self._enc

    # ---- writes -------------------------------------------------------------------------------
    def _memory(self, memory_id, content, embedding, metadata, timestamp):
        m = _lib.Memory()
        keep = []
        m.memory_id = opt_text(memory_id, "memory_id")
        m.content = opt_text(content, "content")
        m.timestamp_us = _timestamp_us(timestamp)
        if embedding is not None:
            v = vector_arg(embedding)
            keep.append(v)
            m.embedding = fptr(v)
            m.dim = v.shape[0]
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
            extra = set(metadata) - set(_META_KEYS)
            if extra:
                raise ValueError(f"metadata: unknown keys {sorted(extra)} (the schema has {list(_META_KEYS)})")
            m.has_metadata = 1
            m.category = opt_text(metadata.get("category"), "metadata['category']")
            m.source = opt_text(metadata.get("source"), "metadata['source']")
            q = metadata.get("quality_score")
            if q is not None:
                m.has_quality = 1
                m.quality_score = float_arg(q, "metadata['quality_score']")
        return m, keep

    def save(self, memory_id: str | None, content: str | None, embedding: Any,
             metadata: Mapping[str, Any] | None = None, timestamp: Any = None) -> str:
        """Adds a memory (the seed's save); returns its id (generated when memory_id is None).
        ExistsError when the id is live already (use update()); ShapeError when the embedding's
        size is not the store's."""
        m, keep = self._memory(memory_id, content, embedding, metadata, timestamp)
        out = ctypes.create_string_buffer(_lib.MEMORY_ID_MAX)
        with self._lock:
            call(lib.aios_store_add, self._h(), ctypes.byref(m), out)
        return out.value.decode()

    def add_text(self, content: str, memory_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                 timestamp: Any = None) -> str:
        """Adds a memory whose embedding is computed from content by the store's model."""
        text_arg(content, "content")
        m, keep = self._memory(memory_id, content, None, metadata, timestamp)
        out = ctypes.create_string_buffer(_lib.MEMORY_ID_MAX)
        with self._lock:
            self._embedder()
            with self._engine._lock:  # the encoder is the engine's: one thread at a time
                call(lib.aios_store_add_text, self._h(), ctypes.byref(m), out)
        return out.value.decode()

    _KEEP = object()

    def update(self, memory_id: str, content: Any = _KEEP, embedding: Any = _KEEP, metadata: Any = _KEEP,
               timestamp: Any = _KEEP) -> None:
        """Replaces the fields given (the others are kept) of an existing memory, atomically.
        NotFoundError when absent."""
        text_arg(memory_id, "memory_id")
        with self._lock:
            old = self.get(memory_id)
            if old is None:
                raise NotFoundError(f"store: {memory_id}: not found", -6)
            k = ArrowStorage._KEEP
            m, keep = self._memory(memory_id, old.content if content is k else content,
                                   old.embedding if embedding is k else embedding,
                                   old.metadata if metadata is k else metadata,
                                   old.timestamp_us if timestamp is k else timestamp)
            call(lib.aios_store_update, self._h(), ctypes.byref(m))

    def delete(self, memory_id: str) -> None:
        """Deletes a memory (a tombstone until compact()).  NotFoundError when absent."""
        b = text_arg(memory_id, "memory_id")
        with self._lock:
            call(lib.aios_store_delete, self._h(), b)

    def flush(self) -> None:
        """Moves the write-ahead log into a new Parquet segment."""
        with self._lock:
            call(lib.aios_store_flush, self._h())

    def compact(self) -> None:
        """Rewrites the live memories into fresh segments (dropping tombstones), rebuilds the index."""
        with self._lock:
            call(lib.aios_store_compact, self._h())

    def build_index(self) -> None:
        """Builds the HNSW index now (normally automatic from 20,000 memories)."""
        with self._lock:
            call(lib.aios_store_build_index, self._h())

    def import_parquet(self, path: Any) -> int:
        """Imports a memories Parquet file with the seed's schema; returns the row count."""
        n = ctypes.c_int64()
        with self._lock:
            call(lib.aios_store_import, self._h(), path_arg(path), ctypes.byref(n))
        return n.value

    def export(self, path: Any) -> None:
        """Writes every live memory to one zstd Parquet file with the seed's schema."""
        with self._lock:
            call(lib.aios_store_export, self._h(), path_arg(path))

    # ---- reads --------------------------------------------------------------------------------
    def get(self, memory_id: str) -> MemoryRecord | None:
        """The memory with this id, or None."""
        b = text_arg(memory_id, "memory_id")
        m = _lib.Memory()
        with self._lock:
            lib.aios_clear_error()
            s = lib.aios_store_get(self._h(), b, ctypes.byref(m))
            if s == -6:
                lib.aios_clear_error()
                return None
            if s != 0:
                raise error_for(s)
            return _record(m, None)

    def __contains__(self, memory_id: str) -> bool:
        return self.get(memory_id) is not None

    def _search_params(self, top_k, filter, mode, ef_search):
        p = lib.aios_search_default_params()
        p.top_k = int_arg(top_k, "top_k")
        if p.top_k < 1:
            raise ValueError("top_k must be >= 1")
        keep = []
        if filter is not None:
            if not isinstance(filter, Mapping):
                raise TypeError(f"filter must be a dict, not {type(filter).__name__}")
            known = {"category", "source", "since", "until", "min_quality", "threshold"}
            extra = set(filter) - known
            if extra:
                raise ValueError(f"filter: unknown keys {sorted(extra)} (known: {sorted(known)})")
            if filter.get("category") is not None:
                p.category = text_arg(filter["category"], "filter['category']")
            if filter.get("source") is not None:
                p.source = text_arg(filter["source"], "filter['source']")
            if filter.get("since") is not None:
                p.since_us = _timestamp_us(filter["since"], "filter['since']")
            if filter.get("until") is not None:
                p.until_us = _timestamp_us(filter["until"], "filter['until']")
            if filter.get("min_quality") is not None:
                p.min_quality = float_arg(filter["min_quality"], "filter['min_quality']")
            if filter.get("threshold") is not None:
                p.threshold = float_arg(filter["threshold"], "filter['threshold']")
        modes = {"auto": 0, "exact": 1, "hnsw": 2}
        if mode not in modes:
            raise ValueError(f"mode must be one of {list(modes)}")
        p.mode = modes[mode]
        p.ef_search = int_arg(ef_search, "ef_search")
        return p, keep

    def query_by_similarity(self, vector: Any, top_k: int = 5, filter: Mapping[str, Any] | None = None, *,
                            mode: str = "auto", ef_search: int = 0) -> list:
        """The top_k memories by cosine similarity to vector, best first, as MemoryRecords with
        score.  filter: {"category", "source", "since", "until" (datetime or microseconds),
        "min_quality", "threshold"} — all applied before ranking."""
        v = vector_arg(vector, "vector")
        p, keep = self._search_params(top_k, filter, mode, ef_search)
        hits = (_lib.SearchHit * p.top_k)()
        n = ctypes.c_int32()
        with self._lock:
            call(lib.aios_store_search, self._h(), fptr(v), v.shape[0], ctypes.byref(p), hits, ctypes.byref(n))
            return [_record(hits[i].memory, float(hits[i].score)) for i in range(n.value)]

    def search_text(self, text: str, top_k: int = 5, filter: Mapping[str, Any] | None = None, *,
                    mode: str = "auto", ef_search: int = 0) -> list:
        """query_by_similarity with the query text embedded by the store's model."""
        b = text_arg(text, "text")
        p, keep = self._search_params(top_k, filter, mode, ef_search)
        hits = (_lib.SearchHit * p.top_k)()
        n = ctypes.c_int32()
        with self._lock:
            self._embedder()
            with self._engine._lock:
                call(lib.aios_store_search_text, self._h(), b, ctypes.byref(p), hits, ctypes.byref(n))
            return [_record(hits[i].memory, float(hits[i].score)) for i in range(n.value)]

    def stats(self) -> dict:
        """live, rows, tombstones, wal_records, segments, index_rows, dim, bytes_on_disk, version, model."""
        s = _lib.StoreStats()
        with self._lock:
            call(lib.aios_store_stats_get, self._h(), ctypes.byref(s))
        d = {k: int(getattr(s, k)) for k, _ in _lib.StoreStats._fields_ if k != "model"}
        d["model"] = s.model.decode()
        return d

    @property
    def dim(self) -> int:
        """The embedding dimension (0 until fixed)."""
        return int(lib.aios_store_dim(self._h()))

    def __len__(self) -> int:
        return self.stats()["live"]

    def __iter__(self) -> Iterator[MemoryRecord]:
        """Live memories in storage order (each copied out as it is reached).  Writes made while
        iterating may or may not be seen."""
        cur = ctypes.c_int64(0)
        m = _lib.Memory()
        while True:
            with self._lock:
                lib.aios_clear_error()
                s = lib.aios_store_next(self._h(), ctypes.byref(cur), ctypes.byref(m))
                if s == -6:
                    lib.aios_clear_error()
                    return
                if s != 0:
                    raise error_for(s)
                rec = _record(m, None)
            yield rec

    def to_arrow(self):
        """A pyarrow.Table of the live memories with the seed's schema, read with pyarrow from
        the store's Parquet export (needs pyarrow)."""
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ImportError("ArrowStorage.to_arrow needs pyarrow (pip install pyarrow)") from e
        fd, tmp = tempfile.mkstemp(suffix=".parquet", prefix="aios-export-")
        os.close(fd)
        try:
            self.export(tmp)
            return pq.read_table(tmp)
        finally:
            os.unlink(tmp)

    def to_pandas(self):
        """to_arrow().to_pandas() (needs pyarrow and pandas)."""
        try:
            import pandas  # noqa: F401
        except ImportError as e:
            raise ImportError("ArrowStorage.to_pandas needs pandas (pip install pandas)") from e
        return self.to_arrow().to_pandas()


Vector = Union[Sequence[float], np.ndarray]
