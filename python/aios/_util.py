"""Helpers shared by the classes: argument conversion, calling with error checks, C buffers."""
from __future__ import annotations

import ctypes
import os
from typing import Any, Iterable, Sequence

import numpy as np

from . import _lib
from .errors import error_for

lib = _lib.lib


def call(fn, *args) -> None:
    """Calls a C function returning aios_status; raises the matching AiosError on failure."""
    lib.aios_clear_error()
    s = fn(*args)
    if s != 0:
        raise error_for(s)


def path_arg(p: Any, what: str = "path") -> bytes:
    if isinstance(p, (str, bytes, os.PathLike)):
        return os.fsencode(p)
    raise TypeError(f"{what} must be a str or os.PathLike, not {type(p).__name__}")


def text_arg(s: Any, what: str = "text") -> bytes:
    if isinstance(s, str):
        # lone surrogates become invalid UTF-8, which the library replaces with U+FFFD
        return s.encode("utf-8", "surrogatepass")
    raise TypeError(f"{what} must be a str, not {type(s).__name__}")


def opt_text(s: Any, what: str) -> bytes | None:
    return None if s is None else text_arg(s, what)


def int_arg(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{what} must be an int, not {type(x).__name__}")
    return int(x)


def float_arg(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, not {type(x).__name__}")
    return float(x)


def ids_arg(ids: Any, what: str = "ids") -> np.ndarray:
    """A 1-D int32 contiguous array from a sequence of ints (range-checked)."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (Sequence, np.ndarray, Iterable)):
        raise TypeError(f"{what} must be a sequence of ints, not {type(ids).__name__}")
    a = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
    if a.size == 0:
        return np.zeros(0, np.int32)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be a 1-D sequence of ints")
    if a.min() < 0 or a.max() > 2**31 - 1:
        raise ValueError(f"{what}: token ids must be in [0, 2**31)")
    return np.ascontiguousarray(a, dtype=np.int32)


def vector_arg(v: Any, what: str = "embedding") -> np.ndarray:
    """A 1-D float32 contiguous array (converted from any real dtype or a list; refused otherwise)."""
    if isinstance(v, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of numbers, not {type(v).__name__}")
    try:
        a = np.asarray(v)
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"{what} must be a sequence of numbers: {e}") from None
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise TypeError(f"{what} must hold numbers, not {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{what} holds NaN or infinity")
    return a


def fptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def iptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))


def take_string(p: int | None) -> str:
    """Copies a malloc'd C string and frees it."""
    if not p:
        return ""
    try:
        return ctypes.string_at(p).decode("utf-8", "replace")
    finally:
        lib.aios_free(p)


class CBuffer:
    """A block of library-owned memory (aios_alloc) that NumPy arrays wrap without a copy.

    `numpy.asarray(buf)` gives an array whose `.base` is this object; the memory is freed by
    aios_free when the last array (and this object) is gone.  `live` counts unfreed buffers."""

    live = 0
    __slots__ = ("address", "nbytes", "__array_interface__", "__weakref__")

    def __init__(self, shape: tuple, dtype: str = "<f4"):
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        p = lib.aios_alloc(n)
        if not p:
            raise MemoryError(f"aios: cannot allocate {n} bytes")
        self.address = p
        self.nbytes = n
        self.__array_interface__ = {"shape": tuple(shape), "typestr": dtype, "data": (p, False), "version": 3}
        CBuffer.live += 1

    def __del__(self):
        p, self.address = getattr(self, "address", 0), 0
        if p:
            lib.aios_free(p)
            CBuffer.live -= 1
