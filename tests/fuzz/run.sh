#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan+UBSan, tree build-fuzz) and runs each for
# SECONDS (default 60) on a scratch copy of its seed corpus, so the committed corpus never
# grows. Files under regressions/<harness>/ are replayed first. Prints each harness's executions,
# then "N passed, M failed"; exits non-zero if any harness crashed, leaked, hung or failed to
# build. Crash inputs are kept in build-fuzz/fuzz-artifacts/<harness>/.
#   tests/fuzz/run.sh [SECONDS]
#   ESTCA_FUZZ_BUILD=all tests/fuzz/run.sh 5   # also build the whole project with clang -Werror
set -euo pipefail
seconds=${1:-60}
case $seconds in
'' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="$root/build-fuzz"
jobs=$(nproc)

harnesses=()
for src in "$here"/fuzz_*.c; do
    name=${src##*/}
    harnesses+=("${name%.c}")
done

echo "== Fuzz build (clang, ASan+UBSan, libFuzzer) in $build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Fuzz \
    -DCIVETWEB_SOURCE_CACHE="$root/build/civetweb-src" \
    "-DCMAKE_C_FLAGS_FUZZ=-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
    "-DCMAKE_EXE_LINKER_FLAGS_FUZZ=-fsanitize=address,undefined" \
    "-DCMAKE_SHARED_LINKER_FLAGS_FUZZ=-fsanitize=address,undefined" >/dev/null
if [ "${ESTCA_FUZZ_BUILD:-}" = all ]; then
    cmake --build "$build" -j"$jobs"
else
    cmake --build "$build" -j"$jobs" --target "${harnesses[@]}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
for h in "${harnesses[@]}"; do
    exe=$(find "$build/tests/fuzz" -maxdepth 1 -type f -name "$h" | head -n1)
    if [ -z "$exe" ]; then
        echo "$h: FAILED (not built)"
        failed=$((failed + 1))
        continue
    fi
    corpus="$work/$h/corpus"
    artifacts="$build/fuzz-artifacts/$h"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$here/corpus/$h" ]; then
        cp -R "$here/corpus/$h/." "$corpus/"
    fi
    log="$work/$h.log"
    rc=0
    if [ -d "$here/regressions/$h" ] && [ -n "$(ls -A "$here/regressions/$h")" ]; then
        "$exe" -rss_limit_mb=2048 -timeout=10 "$here/regressions/$h"/* >"$log" 2>&1 || rc=$?
        if [ "$rc" -ne 0 ]; then
            echo "$h: FAILED (a regression input fails again, exit $rc)"
            tail -n 40 "$log"
            failed=$((failed + 1))
            continue
        fi
    fi
    "$exe" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    if [ "$rc" -eq 0 ]; then
        echo "$h: ok, ${execs:-?} executions in ${seconds}s, corpus $(find "$corpus" -type f | wc -l) inputs"
        passed=$((passed + 1))
    else
        echo "$h: FAILED (libFuzzer exit $rc) after ${execs:-?} executions; inputs in $artifacts"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -n 5 || true
        tail -n 40 "$log"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
