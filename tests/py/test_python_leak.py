"""No leak in the Python package: 10,000 calls of each kind (encode, similarity, tokenize /
detokenize, generate, streamed generate, chat prompt, store save / get / search / iterate,
EvolutionRouter route / list / get / add + remove, and failing calls that raise) while the process's resident set size is watched.  A leak of one
embedding buffer per call (512 bytes with bert-tiny) would already grow it by 5 MB."""
import gc
import os
import shutil
import tempfile

import numpy as np

from harness import SHARED, TMP, Skip, run, test
from pyaios import aios

TINY = os.path.join(SHARED, "fixtures", "models", "bert-tiny")
STORIES = os.path.join(SHARED, "models", "stories260K")
N = 10_000
PAGE = os.sysconf("SC_PAGE_SIZE")
# the open/close cycles create 1000 stores: on tmpfs their fsyncs cost nothing
SHM = tempfile.mkdtemp(prefix="aios-leak-", dir="/dev/shm" if os.path.isdir("/dev/shm") else TMP)


def rss():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def growth(fn, n=N, warm=1000):
    for i in range(warm):
        fn(i)
    r0 = rss()
    for i in range(n):
        fn(i)
    return rss() - r0


LIMIT = 1 << 20  # 1 MiB over 10,000 calls: at most ~100 bytes a call, less than any buffer we hand out


def check(name, fn, n=N, limit=LIMIT, warm=1000):
    g = growth(fn, n, warm)
    assert g <= limit, f"{name}: RSS grew {g / 1024:.0f} KiB over {n} calls"


@test
def encode_similarity_tokenize_do_not_leak():
    e = aios.ArrowEngine(TINY, n_threads=1)
    live = aios._util.CBuffer.live
    check("encode", lambda i: e.encode(["memory number %d of the leak test" % i]))
    check("encode single", lambda i: e.encode("memory %d" % i).sum())
    v = e.encode(["a", "b"])
    check("similarity", lambda i: e.similarity(v[0], v[1]))
    check("tokenize", lambda i: e.detokenize(e.tokenize("token %d here" % i)))
    del v
    assert aios._util.CBuffer.live == live, (aios._util.CBuffer.live, live)


@test
def generate_and_stream_do_not_leak():
    if not os.path.isdir(STORIES):
        raise Skip("stories260K not found")
    g = aios.ArrowEngine(STORIES, n_threads=1)
    check("generate", lambda i: g.generate([1, 300 + i % 100], max_tokens=3, details=True))
    check("generate text+stop", lambda i: g.generate("Lily", max_tokens=3, stop=["xyz", "q"], temperature=0.5, seed=i))
    check("stream", lambda i: "".join(g.generate([1], max_tokens=3, stream=True)), n=2000)
    check("chat", lambda i: g.chat([{"role": "user", "content": "hi %d" % i}], max_tokens=1))


@test
def store_calls_do_not_leak():
    d = os.path.join(SHM, "store")
    shutil.rmtree(d, ignore_errors=True)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N + 1000, 16)).astype(np.float32)

    # saves: a store holds what it is given, so they run in cycles of open, 10 saves, close
    def cycle(i):
        sd = os.path.join(SHM, "cycle")
        shutil.rmtree(sd, ignore_errors=True)
        with aios.ArrowStorage(sd, sync=False) as s:
            for j in range(10):
                s.save("m%06d" % j, "content %d" % j, X[j], {"category": "c", "quality_score": 0.5})
    check("open + 10 saves + close", cycle, n=N // 10, warm=50)
    st = aios.ArrowStorage(d, sync=False)
    for j in range(N):
        st.save("m%06d" % j, "content %d" % j, X[j], {"category": "c", "quality_score": 0.5})
    q = X[0]
    check("query", lambda i: st.query_by_similarity(q, top_k=5, filter={"category": "c"}))
    check("get", lambda i: st.get("m%06d" % (i % N)))
    check("iterate", lambda i: next(iter(st)))
    st.close()


@test
def router_calls_do_not_leak():
    # the library's vectors from bert-tiny (any encoder will do); the adapters are the real
    # SmolLM2 fixtures, copied in and removed again by the add / remove cycles
    arrow = os.path.join(SHARED, "fixtures", "real", "smollm2-135m-instruct", "arrow")
    if not os.path.isdir(os.path.join(arrow, "household")):
        raise Skip(f"{arrow} not found")
    r = aios.EvolutionRouter(os.path.join(SHM, "skills"), encoder=TINY)
    for s in ("household", "varnis", "zorbex"):
        r.add(s, os.path.join(arrow, s), questions=["question %d about %s" % (k, s) for k in range(6)])
    check("route", lambda i: r.route("a prompt about %d things" % i, top_k=3, threshold=-1))
    check("list + get", lambda i: (r.list(), r.get("varnis")))

    def cycle(i):
        r.add("extra", os.path.join(arrow, "zorbex"), description="extra %d" % i)
        r.remove("extra")
    check("add + remove", cycle, n=N // 10, warm=50)

    def bad_add(i):
        try:
            r.add("household", os.path.join(arrow, "zorbex"))
        except aios.ExistsError:
            pass
    check("failed add", bad_add)


@test
def failing_calls_do_not_leak():
    e = aios.ArrowEngine(TINY, n_threads=1)

    def bad_open(i):
        try:
            aios.ArrowEngine("/nonexistent/%d" % i)
        except aios.NotFoundError:
            pass

    def bad_generate(i):
        try:
            e.generate([1], max_tokens=1)  # an encoder cannot generate: the C library says why
        except aios.AiosError:
            pass

    check("failed open", bad_open)
    check("failed generate", bad_generate, n=2000)


if __name__ == "__main__":
    try:
        run()
    finally:
        shutil.rmtree(SHM, ignore_errors=True)
