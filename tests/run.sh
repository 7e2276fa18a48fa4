#!/usr/bin/env bash
# The test command: installs the Debian dependencies if missing, runs a short smoke of every
# libFuzzer harness, builds the normal and the ASan+UBSan trees, and runs every test (unit and
# integration) in both through CTest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/packaging/deps.sh"

jobs=$(nproc)
cache="$root/build/civetweb-src"
failed=0

# A short fuzz smoke first (the clang libFuzzer tree also proves the project builds with clang
# -Werror); long campaigns are `tests/fuzz/run.sh SECONDS`. CTest's summaries come last.
echo "== fuzz smoke"
ESTCA_FUZZ_BUILD=all "$root/tests/fuzz/run.sh" "${ESTCA_FUZZ_SECONDS:-30}" || failed=1
for variant in build:RelWithDebInfo build-asan:Asan; do
    dir="$root/${variant%%:*}"
    type="${variant##*:}"
    echo "== $type build in $dir"
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DCIVETWEB_SOURCE_CACHE="$cache" >/dev/null
    cmake --build "$dir" -j"$jobs"
    echo "== $type tests"
    (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900) || failed=1
done
exit $failed
