"""The AiosError hierarchy: one class per status code of include/aios.h (AIOS_STATUS_LIST).

Each error carries `status` (the negative code), `name` ("AIOS_ERR_FORMAT"), `detail` (what
aios_last_error() said when the call failed, e.g. "parquet: x.parquet: page header at offset
1234: truncated") and `what` (the code's fixed description).  Classes also derive from the
matching Python built-in (ValueError, OSError, KeyError, ...) so ordinary handlers catch them.
"""
from __future__ import annotations

from . import _lib


class AiosError(Exception):
    """Base class of every error the library reports."""

    status: int = 0
    name: str = ""

    def __init__(self, detail: str = "", status: int | None = None):
        if status is not None:
            self.status = status
        self.name = _lib.lib.aios_status_name(self.status).decode()
        self.what = _lib.lib.aios_status_str(self.status).decode()
        self.detail = detail
        super().__init__(detail or self.what)

    def __str__(self) -> str:
        return self.detail or self.what

    def __reduce__(self):
        return (type(self), (self.detail, self.status))


class InvalidArgumentError(AiosError, ValueError):
    status = -1


class OutOfMemoryError(AiosError, MemoryError):
    status = -2


class AiosIOError(AiosError, OSError):
    status = -3

    def __init__(self, detail: str = "", status: int | None = None):
        AiosError.__init__(self, detail, status)


class FormatError(AiosError, ValueError):
    status = -4


class UnsupportedError(AiosError, NotImplementedError):
    status = -5


class NotFoundError(AiosError, LookupError):
    status = -6


class RangeError(AiosError, ValueError):
    status = -7


class CorruptError(AiosError, ValueError):
    status = -8


class BusyError(AiosError, OSError):
    status = -9

    def __init__(self, detail: str = "", status: int | None = None):
        AiosError.__init__(self, detail, status)


class ConfigError(AiosError, ValueError):
    status = -10


class InternalError(AiosError, RuntimeError):
    status = -11


class EncodingError(AiosError, UnicodeError):
    status = -12


class ExistsError(AiosError, ValueError):
    status = -13


class ShapeError(AiosError, ValueError):
    status = -14


class CancelledError(AiosError):
    status = -15


_BY_STATUS = {c.status: c for c in (InvalidArgumentError, OutOfMemoryError, AiosIOError, FormatError,
                                    UnsupportedError, NotFoundError, RangeError, CorruptError, BusyError,
                                    ConfigError, InternalError, EncodingError, ExistsError, ShapeError,
                                    CancelledError)}


def error_for(status: int, detail: str | None = None) -> AiosError:
    """The exception for a status code, with the calling thread's aios_last_error() as detail."""
    if detail is None:
        detail = _lib.lib.aios_last_error().decode("utf-8", "replace")
    cls = _BY_STATUS.get(status, AiosError)
    return cls(detail, status)


def check(status: int) -> None:
    """Raises the matching AiosError unless status is AIOS_OK."""
    if status != 0:
        raise error_for(status)
