"""Builds libaios with the project's own `make` and puts libaios.so beside the module, so the
wheel carries it.  The AIOS source tree is this directory's parent (or $AIOS_SOURCE_DIR).

    pip install ./python          # from the repository root
"""
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def source_dir():
    d = os.environ.get("AIOS_SOURCE_DIR") or os.path.dirname(HERE)
    if not os.path.exists(os.path.join(d, "Makefile")) or not os.path.isdir(os.path.join(d, "src")):
        raise SystemExit(f"aios: setup: {d}: not the AIOS source tree (no Makefile and src/); set AIOS_SOURCE_DIR")
    return d


class BuildWithLibrary(build_py):
    """build_py that first runs `make build/libaios.so` in the source tree and copies the library."""

    def run(self):
        src = source_dir()
        jobs = os.environ.get("AIOS_MAKE_JOBS", "2")
        subprocess.check_call(["make", "-C", src, f"-j{jobs}", "build/libaios.so"])
        super().run()
        # straight into the build tree (not the source's aios/, where a stale copy would shadow a
        # newer build/libaios.so for PYTHONPATH=python users)
        dest = os.path.join(self.build_lib, "aios")
        os.makedirs(dest, exist_ok=True)
        shutil.copyfile(os.path.join(src, "build", "libaios.so"), os.path.join(dest, "libaios.so"))


class BinaryDistribution(Distribution):
    """The wheel holds a shared library: platform-specific, not pure Python."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
