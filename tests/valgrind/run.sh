#!/usr/bin/env bash
# The integration tests with every estcad under valgrind memcheck: tests/valgrind/run.sh [REGEX]
# builds the RelWithDebInfo tree (build/, or $ESTCA_VALGRIND_BUILD) if needed, runs
# `ctest -L integration [-R REGEX]` there with ESTCA_VALGRIND=1 (see tests/integration/lib.sh:
# a test fails on any memory error or definitely lost block in an estcad it started), and prints
# one line per test: result, time, estcad runs watched, errors and bytes lost. The whole log goes
# to BUILD/valgrind-integration.log. Slow (valgrind runs estcad 20-50 times slower), so it is not
# part of tests/run.sh. ESTCA_VALGRIND_JOBS (default 1) runs tests in parallel.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/packaging/deps.sh"

build=${ESTCA_VALGRIND_BUILD:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCIVETWEB_SOURCE_CACHE="$root/build/civetweb-src" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

log="$build/valgrind-integration.log"
filter=(-L integration)
[ $# -gt 0 ] && filter+=(-R "$1")
echo "== integration tests under valgrind in $build (log: $log)"
started=$(date +%s)
rc=0
(cd "$build" && ESTCA_VALGRIND=1 ctest "${filter[@]}" -V -j"${ESTCA_VALGRIND_JOBS:-1}") > "$log" 2>&1 || rc=$?

# ctest -V prefixes each line a test prints with "N: "; its result line is
# "K/M Test #N: NAME ....   Passed   12.34 sec".
awk '
    function num(s) { gsub(/,/, "", s); return s + 0 }
    match($0, /^[0-9]+: # valgrind valgrind-estcad[.][0-9]+[.]log: /) {
        n = substr($0, 1, index($0, ":") - 1)
        runs[n]++
        if ($0 ~ /no summary/) { killed[n]++; next }
        if (match($0, /: [0-9,]+ errors/)) errors[n] += num(substr($0, RSTART + 2, RLENGTH - 9))
        if (match($0, /definitely lost: [0-9,]+/)) lost[n] += num(substr($0, RSTART + 17, RLENGTH - 17))
        if (match($0, /possibly lost: [0-9,]+/)) possibly[n] += num(substr($0, RSTART + 15, RLENGTH - 15))
        next
    }
    match($0, /^[0-9]+: skip - /) { n = substr($0, 1, index($0, ":") - 1); why[n] = substr($0, RSTART + RLENGTH); next }
    match($0, /Test +#[0-9]+: [^ ]+ /) {
        split(substr($0, RSTART, RLENGTH), f, /[#: ]+/)
        n = f[2]; name = f[3]
        sub(/^integration[.]/, "", name)
        result = $0; sub(/ +[0-9.]+ sec$/, "", result); sub(/^.*[.]+ */, "", result); sub(/^\*+/, "", result)
        secs = $0; sub(/ sec$/, "", secs); sub(/^.* /, "", secs)
        line = sprintf("%-32s %-9s %8s s  %4d  %6d  %8d  %8d", name, result, secs, runs[n], errors[n], lost[n], possibly[n])
        if (killed[n]) line = line sprintf("  (%d killed with SIGKILL: no report)", killed[n])
        if (n in why) line = line "  skip: " why[n]
        print line
    }
    BEGIN { printf "%-32s %-9s %10s  %4s  %6s  %8s  %8s\n", "test", "result", "time", "runs", "errors", "def.lost", "poss.lost" }
' "$log"
grep -E '^[0-9]+% tests passed|^Total Test time' "$log" || true
echo "wall time: $(($(date +%s) - started)) s"
if [ "$rc" != 0 ]; then
    echo "FAILED: see the not ok lines in $log"
    grep -E '^[0-9]+: not ok' "$log" || true
fi
exit "$rc"
