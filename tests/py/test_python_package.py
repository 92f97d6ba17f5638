"""`pip install ./python` end to end, offline: pip builds the wheel (its build step runs the
project's `make` for build/libaios.so), the wheel is platform-specific and carries libaios.so
beside the module, and installed into a fresh directory it imports and encodes with no
environment help (no AIOS_LIBRARY, not the source tree).  NumPy comes from the test venv."""
import glob
import os
import subprocess
import sys
import zipfile

from harness import ROOT, TMP, Skip, run, test

SHARED = os.environ.get("AIOS_SHARED") or os.path.join(ROOT, "..", "shared")


@test
def wheel_carries_the_library_and_imports_alone():
    try:
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
    except ImportError as e:
        raise Skip(f"setuptools/wheel not in this venv: {e}")
    out = os.path.join(TMP, "wheel")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out,
                        os.path.join(ROOT, "python")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    whl = glob.glob(os.path.join(out, "aios-*.whl"))
    assert len(whl) == 1, whl
    assert not whl[0].endswith("-none-any.whl") and "linux" in whl[0], whl[0]  # not a pure wheel
    names = zipfile.ZipFile(whl[0]).namelist()
    assert "aios/libaios.so" in names and "aios/__init__.py" in names and "aios/py.typed" in names, names
    site = os.path.join(TMP, "site")
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", site,
                        whl[0]], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    import numpy
    env = {k: v for k, v in os.environ.items() if k not in ("AIOS_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = site + os.pathsep + os.path.dirname(os.path.dirname(numpy.__file__))
    code = ("import aios, sys; e = aios.ArrowEngine(sys.argv[1]); v = e.encode(['Hello, world!']);"
            "print(aios.__file__); print(aios.LIBRARY_PATH); print(v.shape, v.dtype, type(v.base).__name__)")
    p = subprocess.run([sys.executable, "-c", code, os.path.join(SHARED, "fixtures", "models", "bert-tiny")],
                       capture_output=True, text=True, env=env, cwd=TMP)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert lines[0].startswith(site) and lines[1] == os.path.join(site, "aios", "libaios.so"), lines
    assert lines[2] == "(1, 32) float32 CBuffer", lines


if __name__ == "__main__":
    run()
