"""Tiny harness for the Python reference tests: same `ok` / `not ok` / `skip` lines as the C
tests, so tests/run.sh counts both.  Each test is a function decorated with @test; run() calls
them in order.  Paths: SHARED (fixtures), AIOS (the built command), TMP (scratch)."""
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("AIOS_SHARED") or os.path.join(ROOT, "..", "shared")
AIOS = os.environ.get("AIOS_BIN") or os.path.join(ROOT, "build", "aios")
TMP = tempfile.mkdtemp(prefix="aios-py-")

_tests = []


class Skip(Exception):
    pass


def test(fn):
    _tests.append(fn)
    return fn


def aios(*args, input=None, check=True, env=None):
    """Runs the aios command; returns CompletedProcess with text stdout/stderr."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([AIOS, *map(str, args)], input=input, capture_output=True, text=True, env=e)
    if check and p.returncode != 0:
        raise AssertionError(f"aios {' '.join(map(str, args))} exited {p.returncode}: {p.stderr.strip()}")
    return p


def refuses_extension_versions(tab, key, cases, bad):
    """Writes tab (a weights.parquet pyarrow table) into directory bad with the key-value
    metadata `key` set to each version of cases [(version bytes or None = key removed, needle)]
    and checks that `aios inspect bad` refuses it (exit 1) with the needle in its message."""
    import pyarrow.parquet as pq

    for ver, needle in cases:
        m = dict(tab.schema.metadata)
        if ver:
            m[key] = ver
        else:
            del m[key]
        pq.write_table(tab.replace_schema_metadata(m), os.path.join(bad, "weights.parquet"))
        e = aios("inspect", bad, check=False)
        assert e.returncode == 1 and needle in e.stderr, e.stderr


def cpu_has_vnni():
    """AVX512_VNNI in /proc/cpuinfo (the AVX-512 tier then defaults 4- / 5-bit decoders to 16-bit)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(l.startswith("flags") and " avx512_vnni" in l for l in f)
    except OSError:
        return False


def run():
    failed = 0
    for fn in _tests:
        try:
            fn()
            print(f"ok {fn.__name__}", flush=True)
        except Skip as e:
            print(f"skip {fn.__name__}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure as a test failure
            failed += 1
            tb = traceback.format_exc().strip().splitlines()
            print(f"not ok {fn.__name__}: {type(e).__name__}: {e}", flush=True)
            for line in tb[-6:]:
                print("    " + line)
    # the scratch directory goes with a passing run (a failing one keeps it for a look)
    if failed or os.environ.get("AIOS_KEEP_TMP"):
        print(f"# scratch kept: {TMP}", flush=True)
    else:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(1 if failed else 0)
