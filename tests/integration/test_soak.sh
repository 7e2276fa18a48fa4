#!/usr/bin/env bash
# The two-minute soak (tests/soak/run.sh 2): mixed traffic at 64 connections, no unexpected
# answer, RSS and open files flat after warm-up. Skipped in the ASan build, whose allocator
# quarantine makes RSS meaningless; longer soaks: tests/soak/run.sh MINUTES.
. "$(dirname "$0")/lib.sh"
if is_asan_build "$ESTCAD"; then
    echo "skip - $ESTCAD is the ASan build"
    exit 77
fi
[ "$ESTCA_VALGRIND" = 1 ] && { echo "skip - RSS and open files under 2 minutes of wrk load mean nothing under valgrind"; exit 77; }
out=$(ESTCAD=$ESTCAD ESTCA=$ESTCA "$ESTCA_SOURCE_DIR/tests/soak/run.sh" 2 2>&1) && rc=0 || rc=$?
echo "$out" | tail -n 8
check "the soak passes" [ "$rc" -eq 0 ]
check "it ran mixed traffic without an unexpected answer" grep -qE '^mixed: requests=[1-9][0-9]* .* unexpected=0 socket_errors=0' <<<"$out"
check "re-enrollments and server-generated keys all succeeded" \
    bash -c "grep -q '^reenroll: ok=[1-9][0-9]* failed=0' <<<\"\$0\" && grep -q '^serverkeygen: ok=[1-9][0-9]* failed=0' <<<\"\$0\"" "$out"
check "it sampled RSS and open files" grep -qE '^soak: rss_kb warm-up max [0-9]+, end [0-9]+; fds' <<<"$out"
finish
