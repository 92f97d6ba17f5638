"""Shared by the tests of the Python package: imports `aios` from the working tree's python/
bound to this build's libaios.so ($O/libaios.so via AIOS_LIBRARY), never an installed copy."""
import os
import sys

from harness import AIOS, ROOT

if "AIOS_LIBRARY" not in os.environ:
    os.environ["AIOS_LIBRARY"] = os.path.join(os.path.dirname(AIOS), "libaios.so")
sys.path.insert(0, os.path.join(ROOT, "python"))

import aios  # noqa: E402,F401
