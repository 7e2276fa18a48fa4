# Shared by the integration tests: a provisioned appliance in a temporary directory, estcad
# on a free loopback port, and small assertion helpers. Source it; it cleans up on exit.
#
# ESTCA_VALGRIND=1 runs every estcad started through $ESTCAD under valgrind memcheck (one log
# per start, $T/valgrind-estcad.PID.log); finish, or the exit of a test that never reached it,
# fails the test on any memory error or definitely lost block (tests/valgrind/run.sh runs the
# whole integration set so). TIME_SCALE (ESTCA_TIME_SCALE, a whole number: 20 under valgrind, else 1)
# stretches the waits for estcad: `settle SECONDS` is a pause that gives estcad time to act,
# $(scaled N) a poll count. Tests that mean nothing at valgrind speed skip on ESTCA_VALGRIND.
set -euo pipefail

: "${ESTCAD:?ESTCAD must name the estcad binary}"
: "${ESTCA:?ESTCA must name the estca binary}"
: "${ESTCA_SOURCE_DIR:?ESTCA_SOURCE_DIR must name the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/estca-it.XXXXXX")
exec {lib_stdout}>&1 # cleanup reports here even when the test dies inside a redirected loop
ESTCAD_PID=
checks=0
failures=0
ESTCA_VALGRIND=${ESTCA_VALGRIND:-0}
valgrind_checked=0
if [ "$ESTCA_VALGRIND" = 1 ]; then TIME_SCALE=${ESTCA_TIME_SCALE:-20}; else TIME_SCALE=${ESTCA_TIME_SCALE:-1}; fi

# scaled N: N times TIME_SCALE (integer), for poll counts.
scaled() { echo $(($1 * TIME_SCALE)); }
# settle SECONDS: a pause long enough for estcad to act, stretched by TIME_SCALE.
settle() { sleep "$(awk -v s="$1" -v k="$TIME_SCALE" 'BEGIN { print s * k }')"; }

# is_asan_build BINARY: true for the ASan+UBSan build. grep without -q reads ldd's output to the
# end: with -q, ldd could die of SIGPIPE and pipefail would fail the match.
is_asan_build() { ldd "$1" | grep libasan >/dev/null; }

# Under ESTCA_VALGRIND, $ESTCAD becomes a wrapper in $T, so that every way a test starts estcad
# (start_estcad, a direct "$ESTCAD" call, a script handed $ESTCAD) runs it under memcheck. The
# wrapper execs valgrind, so $! is estcad's own pid and signals reach it.
if [ "$ESTCA_VALGRIND" = 1 ]; then
    ESTCAD_REAL=$ESTCAD
    if is_asan_build "$ESTCAD_REAL"; then
        echo "skip - valgrind cannot run $ESTCAD_REAL, the ASan build"
        rm -rf "$T"
        exit 77
    fi
    command -v valgrind >/dev/null || { echo "FAIL: ESTCA_VALGRIND=1 but valgrind is not installed"; exit 1; }
    valgrind_supp=()
    [ -f "$ESTCA_SOURCE_DIR/tests/valgrind/estcad.supp" ] &&
        valgrind_supp=(--suppressions="$ESTCA_SOURCE_DIR/tests/valgrind/estcad.supp")
    {
        echo '#!/bin/sh'
        printf 'exec valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99'
        # --keep-debuginfo: stacks through a PKCS#11 module unloaded at exit keep their names.
        # --soname-synonyms: memcheck replaces tcmalloc's malloc (estcad's allocator), not only
        # libc's, or it would see no heap blocks at all. tcmalloc makes the sized operator
        # delete an alias of its free, so every delete in SoftHSM (C++) would be reported as a
        # mismatched free: that check is off (estcad itself is C, with no new or delete).
        printf ' %q' --num-callers=40 --keep-debuginfo=yes '--soname-synonyms=somalloc=*tcmalloc*' \
            --show-mismatched-frees=no \
            "${valgrind_supp[@]}" --log-file="$T/valgrind-estcad.%p.log"
        printf ' %s' ${ESTCA_VALGRIND_OPTS:-}
        printf ' %q "$@"\n' "$ESTCAD_REAL"
    } > "$T/estcad-valgrind"
    chmod +x "$T/estcad-valgrind"
    export ESTCAD="$T/estcad-valgrind"
fi

# check_valgrind_logs: one summary line per estcad valgrind watched; fails (and shows the
# report) when a log holds a memory error or a definitely lost block. A log without a summary
# is an estcad killed with SIGKILL (valgrind writes its report only at exit): noted, not failed.
check_valgrind_logs() {
    valgrind_checked=1
    local log bad=0 n=0 errors lost leaks
    for log in "$T"/valgrind-estcad.*.log; do
        [ -e "$log" ] || continue
        n=$((n + 1))
        if ! grep -q 'ERROR SUMMARY:' "$log"; then
            echo "# valgrind ${log##*/}: no summary (estcad was killed with SIGKILL)"
            continue
        fi
        errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tail -n1 | tr -d ,)
        lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -n1 | tr -d ,)
        leaks=$(grep -E 'definitely lost:|indirectly lost:|possibly lost:|still reachable:|== +suppressed: [1-9]' "$log" |
            sed 's/^==[0-9]*== *//; s/ in [0-9,]* blocks//' | paste -sd ';' | sed 's/;/; /g')
        grep -q 'All heap blocks were freed' "$log" && leaks="all heap blocks freed"
        echo "# valgrind ${log##*/}: $errors errors; ${leaks:-no leak summary}"
        if [ "${errors:-1}" != 0 ] || [ "${lost:-0}" != 0 ]; then
            bad=$((bad + 1))
            sed -n '7,$s/^==[0-9]*== \?//p' "$log" | head -n 200 || true
        fi
    done
    [ "$n" -gt 0 ] || echo "# valgrind: this test started no estcad"
    [ "$bad" = 0 ]
}

# stop_quietly: SIGTERM to a running estcad and wait for it (valgrind writes its report then).
stop_quietly() {
    if [ -n "$ESTCAD_PID" ] && kill -0 "$ESTCAD_PID" 2>/dev/null; then
        kill -TERM "$ESTCAD_PID" 2>/dev/null || true
        wait "$ESTCAD_PID" 2>/dev/null || true
    fi
    ESTCAD_PID=
}

cleanup() {
    local rc=$?
    exec >&"$lib_stdout"
    stop_quietly
    if [ "$ESTCA_VALGRIND" = 1 ] && [ "$valgrind_checked" = 0 ] && [ "$rc" != 77 ] &&
        ls "$T"/valgrind-estcad.*.log >/dev/null 2>&1 && ! check_valgrind_logs; then
        echo "not ok - valgrind found memory errors or definitely lost blocks in estcad"
        rc=1
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
    exit "$rc"
}
trap cleanup EXIT

# provision: an appliance in $T/ca with port 0 (estcad picks a free one).
provision() {
    LISTEN=127.0.0.1:0 "$ESTCA_SOURCE_DIR/packaging/provision.sh" "$T/ca" "$ESTCA" >"$T/provision.log" 2>&1 ||
        { cat "$T/provision.log"; echo "FAIL: provisioning"; exit 1; }
    export SOFTHSM2_CONF="$T/ca/softhsm2.conf"
    CREDENTIALS=$(cat "$T/ca/demo.credentials")
    DEMO_USER=${CREDENTIALS%%:*}
}

# start_estcad: runs estcad in the background, waits for its listening line, sets PORT and URL.
start_estcad() {
    : > "$T/estcad.log"
    "$ESTCAD" -c "$T/ca/estca.conf" 2>>"$T/estcad.log" &
    ESTCAD_PID=$!
    for _ in $(seq 1 "$(scaled 200)"); do
        PORT=$(sed -n 's/.*event=listening.* port=\([0-9]*\).*/\1/p' "$T/estcad.log" | tail -n1)
        [ -n "$PORT" ] && break
        kill -0 "$ESTCAD_PID" 2>/dev/null || { cat "$T/estcad.log"; echo "FAIL: estcad exited"; exit 1; }
        sleep 0.05
    done
    [ -n "$PORT" ] || { cat "$T/estcad.log"; echo "FAIL: estcad did not listen"; exit 1; }
    BASE="https://127.0.0.1:$PORT"
    URL="$BASE/.well-known/est"
}

# stop_estcad: SIGTERM, and the daemon must exit cleanly.
stop_estcad() {
    kill -TERM "$ESTCAD_PID"
    local rc=0
    wait "$ESTCAD_PID" || rc=$?
    ESTCAD_PID=
    check "estcad exits 0 on SIGTERM" [ "$rc" -eq 0 ]
}

check() {
    local what=$1
    shift
    checks=$((checks + 1))
    if "$@"; then
        echo "ok - $what"
    else
        failures=$((failures + 1))
        echo "not ok - $what"
    fi
}

# make_csr NAME [openssl req args...]: EC P-256 key $T/NAME.key, DER CSR $T/NAME.der, one-line
# base64 $T/NAME.b64.
make_csr() {
    local name=$1
    shift
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$T/$name.key" -subj "/CN=$name/O=Test" -outform DER -out "$T/$name.der" "$@" 2>/dev/null
    base64 -w0 "$T/$name.der" > "$T/$name.b64"
}

# http_status METHOD PATH [curl args...]: prints the status code; the body goes to $T/body.
http_status() {
    local method=$1 path=$2
    shift 2
    curl -sS -o "$T/body" -D "$T/headers" -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" \
        -X "$method" "$@" "$URL$path" || true
}

# pem_bundle_contains BUNDLE CERT: CERT's DER is one of BUNDLE's certificates.
pem_bundle_contains() {
    local want
    want=$(openssl x509 -in "$2" -outform DER | base64 -w0)
    awk '/-----BEGIN CERTIFICATE-----/{c=""; next} /-----END CERTIFICATE-----/{print c; next} {c=c $0}' "$1" |
        grep -qxF "$want"
}

# split_multipart HEADERS BODY OUT: the parts of the multipart/mixed answer whose headers and
# body curl saved in HEADERS and BODY, as $T/OUT.1, $T/OUT.2 ..., each part's headers as
# $T/OUT.N.h. Fails when the answer names no boundary.
split_multipart() {
    local boundary
    boundary=$(tr -d '\r' < "$1" | sed -n 's/^[Cc]ontent-[Tt]ype: multipart\/mixed; *boundary=\(.*\)$/\1/p')
    [ -n "$boundary" ] || return 1
    rm -f "$T/$3".[0-9]*
    tr -d '\r' < "$2" | awk -v b="--$boundary" -v out="$T/$3" '
        $0 == b "--" { part = 0; next }
        $0 == b { n++; part = n; hdr = 1; next }
        part && hdr && $0 == "" { hdr = 0; next }
        part && hdr { print > (out "." part ".h"); next }
        part { print > (out "." part) }'
}

# check_no_secrets: no secret of the provisioned appliance (token PIN, SO PIN, the demo user's
# password) is in any log this test produced, nor in a file others may read, nor in the
# command line of a running estcad. finish runs it for every test that provisioned.
check_no_secrets() {
    local secret_files=("$T/ca/token.pin" "$T/ca/so.pin" "$T/ca/demo.credentials" "$T/ca/users" "$T/ca/tls.key")
    local secrets=("$(cat "$T/ca/token.pin")" "$(cat "$T/ca/so.pin")" "${CREDENTIALS#*:}")
    local logs=()
    mapfile -t logs < <(find "$T" -maxdepth 2 -type f \( -name '*.log' -o -name '*.out' \) 2>/dev/null)
    local leaked=0 secret
    for secret in "${secrets[@]}"; do
        [ -n "$secret" ] || continue
        if [ "${#logs[@]}" -gt 0 ] && grep -qF -- "$secret" "${logs[@]}"; then leaked=$((leaked + 1)); fi
        if [ -n "$ESTCAD_PID" ] && tr '\0' ' ' < "/proc/$ESTCAD_PID/cmdline" | grep -qF -- "$secret"; then
            leaked=$((leaked + 1))
        fi
    done
    check "no PIN or password in the ${#logs[@]} logs of this test or in estcad's command line" [ "$leaked" = 0 ]
    local readable=0 f
    for f in "${secret_files[@]}"; do
        [ -e "$f" ] && [ -n "$(find "$f" -perm /044)" ] && readable=$((readable + 1))
    done
    check "no secret file is readable by group or others" [ "$readable" = 0 ]
}

finish() {
    [ -n "${CREDENTIALS:-}" ] && [ -e "$T/ca/token.pin" ] && check_no_secrets
    if [ "$ESTCA_VALGRIND" = 1 ]; then
        stop_quietly
        check "valgrind: no memory error and no definitely lost block in estcad" check_valgrind_logs
    fi
    echo "$((checks - failures)) passed, $failures failed"
    [ "$failures" -eq 0 ]
}
