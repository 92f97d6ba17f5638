"""Parquet read/write throughput: ours (build/bench/bench_parquet) vs pyarrow, same run, same file.

A 100k-row memories table (the seed's schema, 384-dim float32 embeddings, zstd).  pyarrow writes
it; we read that file, and rewrite it from the columns we read (timing only the writer), and
pyarrow reads ours back to check it is the same table.  pyarrow is timed single-threaded
(use_threads=False, like ours) and multi-threaded.  Best of REPS runs; ratios > 1 mean we are
faster.  Env: BENCH_ROWS (100000), BENCH_DIM (384), BENCH_REPS (3), O (build dir)."""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, os.environ.get("O", "build"), "bench", "bench_parquet")
N = int(os.environ.get("BENCH_ROWS", 100_000))
DIM = int(os.environ.get("BENCH_DIM", 384))
REPS = int(os.environ.get("BENCH_REPS", 3))


def table():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((N, DIM)).astype(np.float32)
    cats = np.array(["travel", "work", "family", "health"])
    return pa.table({
        "memory_id": pa.array([f"mem_{i:08d}" for i in range(N)]),
        "timestamp": pa.array(1_700_000_000_000_000 + np.arange(N, dtype=np.int64) * 1_000_003, pa.timestamp("us")),
        "content": pa.array([f"memory number {i} about {cats[i % 4]} and other things" for i in range(N)]),
        "embedding": pa.ListArray.from_arrays(pa.array(np.arange(0, (N + 1) * DIM, DIM, dtype=np.int32)),
                                              pa.array(emb.reshape(-1))),
        "metadata": pa.StructArray.from_arrays(
            [pa.array(cats[np.arange(N) % 4]), pa.array(["test"] * N), pa.array(rng.random(N).astype(np.float32))],
            names=["category", "source", "quality_score"]),
    })


def best(fn):
    t = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def ours(*args):
    out = subprocess.run([BIN, *args], capture_output=True, text=True, check=True).stdout
    kv = dict(x.split("=") for x in out.split())
    return float(kv["seconds"])


def main():
    if not os.path.exists(BIN):
        print(f"bench_parquet: {BIN} missing (make bench)")
        return 1
    tbl = table()
    d = tempfile.mkdtemp(prefix="aios-bench-")
    pa_file, our_file = os.path.join(d, "pa.parquet"), os.path.join(d, "ours.parquet")
    raw = sum(c.nbytes for c in tbl.columns)
    pa_w = best(lambda: pq.write_table(tbl, pa_file, compression="zstd", compression_level=3, row_group_size=32768))
    pa_r1 = best(lambda: pq.read_table(pa_file, use_threads=False))
    pa_rn = best(lambda: pq.read_table(pa_file, use_threads=True))
    our_r = ours("read", pa_file, str(REPS))
    our_w = ours("rewrite", pa_file, our_file, str(REPS), "zstd")
    same = pq.read_table(our_file).equals(tbl)
    our_r2 = ours("read", our_file, str(REPS))
    pa_r_ours = best(lambda: pq.read_table(our_file, use_threads=False))
    mb = raw / 1e6
    print(f"memories: {N} rows, {DIM}-dim embeddings, {mb:.0f} MB in Arrow; pyarrow {pa.__version__}; "
          f"files: pyarrow {os.path.getsize(pa_file) / 1e6:.1f} MB, ours {os.path.getsize(our_file) / 1e6:.1f} MB (zstd)")
    print(f"{'operation':44s} {'seconds':>8s} {'MB/s':>8s} {'ratio':>7s}")

    def row(name, t, ref=None):
        r = f"{ref / t:7.2f}" if ref else "       "
        print(f"{name:44s} {t:8.3f} {mb / t:8.0f} {r}")
    row("pyarrow write (zstd level 3)", pa_w)
    row("aios write (zstd level 3)", our_w, pa_w)
    row("pyarrow read pyarrow file (1 thread)", pa_r1)
    row("pyarrow read pyarrow file (threads)", pa_rn)
    row("aios read pyarrow file (vs 1 thread)", our_r, pa_r1)
    row("pyarrow read aios file (1 thread)", pa_r_ours)
    row("aios read aios file (vs pyarrow on it)", our_r2, pa_r_ours)
    print(f"pyarrow reads our file as the same table: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
