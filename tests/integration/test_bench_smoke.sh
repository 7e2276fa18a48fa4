#!/usr/bin/env bash
# A few seconds of tests/bench/run.sh: every stage runs and every answer is 200. No figure is
# asserted: rates on a shared machine are not a test.
. "$(dirname "$0")/lib.sh"
[ "$ESTCA_VALGRIND" = 1 ] && { echo "skip - a benchmark: its rates and wrk's 2 s time-outs mean nothing under valgrind"; exit 77; }
out=$("$ESTCA_SOURCE_DIR/tests/bench/run.sh" --smoke 2>&1) && rc=0 || rc=$?
echo "$out"
check "the benchmark smoke exits 0 (every answer 200)" [ "$rc" -eq 0 ]
check "it measured the token's signing rate" grep -qE '^\(a\) token signatures/s: 1 thread [0-9.]+' <<<"$out"
check "it measured in-process issuance" grep -qE '^\(b\) in-process issuance/s .*: [0-9.]+' <<<"$out"
check "it ran keep-alive enrollments through estcad" grep -qE '^\(c\) keep-alive +8 +[0-9.]+ +[1-9][0-9]* +0 ' <<<"$out"
check "it ran a new connection per enrollment" grep -qE '^\(d\) new TLS connection per request +32 +[0-9.]+ +[1-9][0-9]* +0 ' <<<"$out"
check "it reported estcad's peak RSS" grep -qE '^\(e\) estcad peak RSS: [0-9]+ kB' <<<"$out"
finish
