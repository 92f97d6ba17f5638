#!/usr/bin/env bash
# Runs every benchmark: C programs in $O/bench and bench/*.py (each prints its own table with
# ratios against a reference run in the same invocation).  Benchmarks are not tests.
set -u
O=${O:-build}
PYTHON=${PYTHON:-python3}
export AIOS_SHARED=${AIOS_SHARED:-$(cd "$(dirname "$0")/.." && cd ../shared 2>/dev/null && pwd)}
export AIOS_BIN=${AIOS_BIN:-$PWD/$O/aios}
for b in "$O"/bench/bench_* bench/bench_*.py; do
    [ -e "$b" ] || continue
    echo "== $(basename "$b")"
    case "$b" in *.py) "$PYTHON" "$b" ;; *) "$b" ;; esac
done
