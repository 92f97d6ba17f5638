#!/usr/bin/env bash
# Runs every test program in $O/tests and every tests/py/test_*.py, counts `ok` / `not ok` /
# `skip` lines, and ends with the line `N passed, N failed` (", N skipped" when any).
# A program that crashes or exits non-zero without printing a `not ok` line counts as a failure.
# AIOS_TEST_JOBS (default: the CPU count, at most 2) programs run at once, each with its own
# TMPDIR; results print in the fixed order as they complete.  AIOS_TEST_JOBS=1: one at a time.
set -u
O=${O:-build}
PYTHON=${PYTHON:-python3}
export AIOS_SHARED=${AIOS_SHARED:-$(cd "$(dirname "$0")/.." && cd ../shared 2>/dev/null && pwd)}
export AIOS_BIN=${AIOS_BIN:-$PWD/$O/aios}
BASE=$(mktemp -d /tmp/aios-tests.XXXXXX)
trap 'rm -rf "$BASE"' EXIT
JOBS=${AIOS_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$JOBS" -gt 2 ] 2>/dev/null && JOBS=2
[ "$JOBS" -ge 1 ] 2>/dev/null || JOBS=1
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

names=() cmds=()
for t in "$O"/tests/test_*; do
    [ -x "$t" ] || continue
    names+=("$(basename "$t")") cmds+=("$t")
done
if [ -z "${AIOS_SANITIZED:-}" ] && [ -d tests/py ]; then
    for t in tests/py/test_*.py; do
        [ -f "$t" ] || continue
        names+=("py/$(basename "$t" .py)") cmds+=("$PYTHON $t")
    done
fi

run_one() { # $1 = index: output, exit code and seconds into $BASE/<i>.{out,rc,sec}
    local i=$1 t0=$SECONDS rc
    mkdir -p "$BASE/$i.tmp"
    TMPDIR="$BASE/$i.tmp" ${cmds[$i]} >"$BASE/$i.out" 2>&1 </dev/null; rc=$?
    echo $((SECONDS - t0)) >"$BASE/$i.sec"
    echo "$rc" >"$BASE/$i.rc.tmp" && mv "$BASE/$i.rc.tmp" "$BASE/$i.rc"
    rm -rf "$BASE/$i.tmp"
}

shown=0
show_done() { # prints the finished results that come next in the fixed order
    while [ "$shown" -lt "${#names[@]}" ] && [ -f "$BASE/$shown.rc" ]; do
        cat "$BASE/$shown.out" >>"$log"
        count "${names[$shown]}" "$BASE/$shown.out" "$(cat "$BASE/$shown.rc")" "$(cat "$BASE/$shown.sec")"
        shown=$((shown + 1))
    done
}

running=0
for i in "${!names[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
        show_done
    fi
    run_one "$i" &
    running=$((running + 1))
done
wait
show_done

if [ "$skip" -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
