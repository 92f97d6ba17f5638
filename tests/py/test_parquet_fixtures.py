"""Every file in ../shared/fixtures/parquet/ (written by pyarrow) reads back value for value as
EXPECTED.json says, through `aios parquet cat --format jsonl`; `aios parquet verify` passes on
each.  Floats: our output must read back to the same float32/float64 as the expected value."""
import json
import math
import os
import struct

from harness import AIOS, SHARED, aios, run, test

D = os.path.join(SHARED, "fixtures", "parquet")
EXP = json.load(open(os.path.join(D, "EXPECTED.json"), encoding="utf-8"))


def cat(name, *extra):
    out = aios("parquet", "cat", os.path.join(D, name), "--format", "jsonl", *extra).stdout
    return [json.loads(line) for line in out.split("\n") if line]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def num(v):
    """Our JSON float (number or "inf"/"-inf"/"nan" string) as a Python float."""
    return float(v) if isinstance(v, str) else float(v)


def same_f32(ours, exp, where):
    if exp is None or ours is None:
        assert ours is None and exp is None, f"{where}: {ours!r} != {exp!r}"
        return
    a, b = f32(num(ours)), f32(float(exp))
    assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b)), \
        f"{where}: {ours!r} != {exp!r}"


@test
def weights_files_match_expected():
    for name, rows in EXP["files"].items():
        got = cat(name)
        assert got == rows, f"{name}: first difference at row {next(i for i, (a, b) in enumerate(zip(got, rows)) if a != b) if len(got) == len(rows) else 'count'}"


@test
def memories_files_match_expected():
    m = EXP["memories"]
    n = len(m["memory_id"])
    for name in EXP["memories_files"]:
        got = cat(name)
        assert len(got) == n, f"{name}: {len(got)} rows, expected {n}"
        for i, r in enumerate(got):
            w = f"{name} row {i}"
            assert list(r) == ["memory_id", "timestamp", "content", "embedding", "metadata"], w
            assert r["memory_id"] == m["memory_id"][i], w
            assert r["timestamp"] == m["timestamp"][i], w
            assert r["content"] == m["content"][i], w
            e = m["embedding"][i]
            if e is None:
                assert r["embedding"] is None, w
            else:
                assert len(r["embedding"]) == len(e), w
                for k, (a, b) in enumerate(zip(r["embedding"], e)):
                    same_f32(a, b, f"{w} embedding[{k}]")
            md = m["metadata"][i]
            if md is None:
                assert r["metadata"] is None, w
            else:
                assert r["metadata"]["category"] == md["category"], w
                assert r["metadata"]["source"] == md["source"], w
                same_f32(r["metadata"]["quality_score"], md["quality_score"], w + " quality_score")


@test
def scalars_match_expected():
    got = cat("scalars.parquet")
    sc = EXP["scalars"]
    assert len(got) == len(sc["i32"])
    for c, vals in sc.items():
        for i, v in enumerate(vals):
            o = got[i][c]
            w = f"scalars {c}[{i}]"
            if c in ("f32", "f64"):
                if v is None:
                    assert o is None, w
                else:
                    a, b = num(o), float(v)
                    if c == "f32":
                        a, b = f32(a), f32(b)
                    assert a == b and math.copysign(1, a) == math.copysign(1, b), f"{w}: {o!r} != {v!r}"
            else:
                assert o == v, f"{w}: {o!r} != {v!r}"


@test
def projection_and_head():
    got = cat("memories_zstd.parquet", "--columns", "memory_id,metadata")
    assert all(list(r) == ["memory_id", "metadata"] for r in got)
    assert [r["memory_id"] for r in got] == EXP["memories"]["memory_id"]
    head = aios("parquet", "head", os.path.join(D, "memories_snappy.parquet"), "-n", "3").stdout.splitlines()
    assert [json.loads(x)["memory_id"] for x in head] == EXP["memories"]["memory_id"][:3]


@test
def verify_all_fixtures():
    for f in sorted(os.listdir(D)):
        if f.endswith(".parquet"):
            p = aios("parquet", "verify", os.path.join(D, f), check=False)
            assert p.returncode == 0, f"{f}: {p.stdout} {p.stderr}"


@test
def errors_are_clear():
    p = aios("parquet", "cat", os.path.join(D, "EXPECTED.json"), check=False)
    assert p.returncode == 1 and p.stderr.startswith("aios: parquet: ") and "magic" in p.stderr, p.stderr
    p = aios("parquet", "cat", os.path.join(D, "nope.parquet"), check=False)
    assert p.returncode == 1 and "nope.parquet" in p.stderr, p.stderr
    p = aios("parquet", "frobnicate", "x", check=False)
    assert p.returncode == 2


if __name__ == "__main__":
    run()
