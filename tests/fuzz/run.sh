#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan+UBSan, tree build-fuzz) and runs each for
# SECONDS (default 60) on a scratch copy of its seed corpus, so the committed corpus never
# grows. Files under regressions/<harness>/ are replayed first. Prints each harness's executions,
# then "N passed, M failed"; exits non-zero if any harness crashed, leaked, hung or failed to
# build. Crash inputs are kept in build-fuzz/fuzz-artifacts/<harness>/.
# fuzz_est_handler runs the whole EST server in-process: it gets an appliance of its own
# (packaging/provision.sh on a fresh SoftHSM2 token, plus the labels below; a few seconds) in
# the scratch directory, named by ESTCA_FUZZ_APPLIANCE.
#   tests/fuzz/run.sh [SECONDS]
#   ESTCA_FUZZ_BUILD=all tests/fuzz/run.sh 5   # also build the whole project with clang -Werror
#   tests/fuzz/run.sh --appliance DIR          # only build, and provision DIR for running
#       ESTCA_FUZZ_APPLIANCE=DIR build-fuzz/tests/fuzz/fuzz_est_handler [libFuzzer flags] by hand
#   ESTCA_FUZZ_TREE=DIR tests/fuzz/run.sh ...  # another build tree than build-fuzz
set -euo pipefail
appliance_only=
if [ "${1:-}" = --appliance ]; then
    appliance_only=${2:?usage: $0 --appliance DIR}
    set -- 0
fi
seconds=${1:-60}
case $seconds in
'' | *[!0-9]*) echo "usage: $0 [SECONDS] | --appliance DIR" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="${ESTCA_FUZZ_TREE:-$root/build-fuzz}"
jobs=$(nproc)

# est_handler_appliance DIR: an appliance for fuzz_est_handler. Besides provision.sh's default
# label: serverkeygen (EC keys, fast on the token), strict CSR rules (pop_linking off there, as
# a seed cannot carry the channel binding of a connection made later), pop_linking required,
# manual approval; a small max_body so that oversized bodies are cheap to reach.
est_handler_appliance() {
    local dir=$1
    LISTEN=127.0.0.1:0 "$root/packaging/provision.sh" "$dir" "$build/provisioning/estca" \
        >"$dir.provision.log" 2>&1 || { cat "$dir.provision.log"; return 1; }
    sed -i 's/^\[server\]$/&\ndefault_label = default\nmax_body = 8192\nrequest_timeout_ms = 5000/' \
        "$dir/estca.conf"
    cat >>"$dir/estca.conf" <<'CONF'

[label:skg]
ca = issuing
serverkeygen = yes
csr_key_type = ec:P-256

[label:strict]
ca = issuing
csr_key_type = ec:P-256
csr_hash = sha256
pop_linking = off
csr_ca_request = refuse
allowed_dns = *.fuzz.example, gw.fuzz.example
subject_override = /O=estca-fuzz
key_usage = digitalSignature
extended_key_usage = clientAuth

[label:linked]
ca = issuing
pop_linking = required

[label:manual]
ca = issuing
approval = manual
retry_after = 7
CONF
}

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
    cmake --build "$build" -j"$jobs" --target "${harnesses[@]}" estca
fi

if [ -n "$appliance_only" ]; then
    mkdir -p "$(dirname "$appliance_only")"
    est_handler_appliance "$appliance_only"
    echo "ESTCA_FUZZ_APPLIANCE=$(cd "$appliance_only" && pwd) $build/tests/fuzz/fuzz_est_handler"
    exit 0
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
    if [ "$h" = fuzz_est_handler ]; then
        if ! est_handler_appliance "$work/appliance"; then
            echo "$h: FAILED (cannot provision its appliance)"
            failed=$((failed + 1))
            continue
        fi
        export ESTCA_FUZZ_APPLIANCE="$work/appliance"
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
