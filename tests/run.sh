#!/usr/bin/env bash
# Runs every test program in $O/tests and every tests/py/test_*.py, counts `ok` / `not ok` /
# `skip` lines, and ends with the line `N passed, N failed` (", N skipped" when any).
# A program that crashes or exits non-zero without printing a `not ok` line counts as a failure.
set -u
O=${O:-build}
PYTHON=${PYTHON:-python3}
export AIOS_SHARED=${AIOS_SHARED:-$(cd "$(dirname "$0")/.." && cd ../shared 2>/dev/null && pwd)}
export AIOS_BIN=${AIOS_BIN:-$PWD/$O/aios}
export TMPDIR=$(mktemp -d /tmp/aios-tests.XXXXXX)
trap 'rm -rf "$TMPDIR"' EXIT
pass=0 fail=0 skip=0
log=$O/test.log
: >"$log"

count() { # $1 = name, $2 = output file, $3 = exit code, $4 = seconds taken
    local p f s
    p=$(grep -c '^ok ' "$2"); f=$(grep -c '^not ok ' "$2"); s=$(grep -c '^skip ' "$2")
    grep -E '^(not ok|skip) ' "$2" | sed "s|^|  [$1] |"
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "  [$1] not ok: exited with status $3"; tail -5 "$2" | sed 's/^/    /'; f=1
    fi
    printf '%-32s %4d passed %3d failed %3d skipped %5ds\n' "$1" "$p" "$f" "$s" "$4"
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

for t in "$O"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    out=$TMPDIR/$n.out
    t0=$SECONDS
    "$t" >"$out" 2>&1; rc=$?
    cat "$out" >>"$log"
    count "$n" "$out" "$rc" $((SECONDS - t0))
done

if [ -z "${AIOS_SANITIZED:-}" ] && [ -d tests/py ]; then
    for t in tests/py/test_*.py; do
        [ -f "$t" ] || continue
        n=$(basename "$t" .py)
        out=$TMPDIR/$n.out
        t0=$SECONDS
        "$PYTHON" "$t" >"$out" 2>&1; rc=$?
        cat "$out" >>"$log"
        count "py/$n" "$out" "$rc" $((SECONDS - t0))
    done
fi

if [ "$skip" -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
