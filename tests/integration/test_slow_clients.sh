#!/usr/bin/env bash
# Slow and idle clients (issue 7): while 500 connections send nothing and 500 send a byte a
# second (of a TLS ClientHello, or of an HTTP head after a real handshake), and 100 more send
# an authenticated request's body a byte a second, a normal client still enrolls promptly,
# and estcad is fine afterwards. estca-slow-clients plays the
# attackers from other loopback addresses (all of 127/8 is loopback on Linux) and reopens
# every connection the server closes, as an attacker would.
#
# Why it holds (packaging/civetweb-slow-clients.patch): a connection gets no worker until its
# ClientHello is in (the accepting thread holds it, closing it after request_timeout_ms); one
# source address holds at most max_connections_per_address workers in a handshake or first
# request (default threads / 2; here 2 of 8, so that the two slow addresses of phase 1 hold
# at most 4 workers: k attacking addresses hold min(k * limit, threads));
# the handshake and the whole first request (head and body) must arrive within
# request_timeout_ms of the worker taking the connection. The second phase spreads the head tricklers over 100 addresses, which
# the per-address limit cannot tell apart: there every worker can be held, and the good client
# waits up to about request_timeout_ms for one; that is what is asserted there.
. "$(dirname "$0")/lib.sh"
: "${ESTCA_SLOW_CLIENTS:?ESTCA_SLOW_CLIENTS must name the estca-slow-clients binary}"
if [ "$ESTCA_VALGRIND" = 1 ]; then
    echo "skip - 1,000 connections at valgrind speed measure valgrind, not estcad"
    exit 77
fi
# estcad holds every attacking connection open for a while: 1,000 and more descriptors.
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2048 ]; then
    echo "skip - needs 2048 file descriptors, the hard limit is $(ulimit -Hn)"
    exit 77
fi

TIMEOUT_MS=3000 # request_timeout_ms: how long a slow client may hold a worker
PER_ADDRESS=2   # max_connections_per_address, with the provisioned threads = 8
ATTACK_SECONDS=15
# A good enrollment takes a few ms (tens under ASan); it may wait for one worker to finish an
# enrollment, never for an attacker's deadline while its address has a slot left.
PROMPT_S=2
provision
sed -i "s/^threads = .*/threads = 8\nrequest_timeout_ms = $TIMEOUT_MS\nmax_connections_per_address = $PER_ADDRESS/" \
    "$T/ca/estca.conf"
start_estcad
make_csr good

# attack NAME ARGS...: estca-slow-clients in the background, its summary in $T/NAME.out.
attackers=()
attack() {
    local name=$1
    shift
    "$ESTCA_SLOW_CLIENTS" --port "$PORT" --seconds "$ATTACK_SECONDS" "$@" >"$T/$name.out" 2>"$T/$name.err" &
    attackers+=($!)
}
wait_attackers() {
    local pid
    for pid in "${attackers[@]}"; do wait "$pid" || true; done
    attackers=()
}
# field NAME KEY: a value of an attacker's summary line.
field() { sed -n "s/.*\b$2=\([-0-9]*\).*/\1/p" "$T/$1.out"; }

# enroll_times OUT N: N enrollments one after another from 127.0.0.1; "code seconds" lines.
enroll_times() {
    : >"$1"
    for _ in $(seq 1 "$2"); do
        curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 30 --cacert "$T/ca/tls-ca.pem" \
            --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" --data-binary @"$T/good.b64" \
            "$URL/simpleenroll" >>"$1" 2>>"$T/curl.err" || echo "000 30" >>"$1"
    done
}
all_200() { [ "$(grep -c '^200 ' "$1")" = "$2" ]; }
slowest() { awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$1"; }
under() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

enroll_times "$T/calm" 5
check "enrolls before any attack ($(slowest "$T/calm") s at most)" all_200 "$T/calm" 5

# After its first request a keep-alive connection no longer counts against its address: while
# wrk keeps 3 of them busy from 127.0.0.1, which may have only $PER_ADDRESS in a first request
# at once, a new connection from there is still served at once (it would wait for wrk's end).
wrk -t1 -c3 -d4s "$URL/cacerts" >"$T/wrk.out" 2>&1 &
wrk_pid=$!
sleep 1
enroll_times "$T/beside_wrk" 3
wait "$wrk_pid" || true
echo "# wrk, 3 keep-alive connections: $(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$T/wrk.out") requests; enrollments beside it, seconds: $(awk '{ printf "%s ", $2 }' "$T/beside_wrk")"
check "beside 3 busy keep-alive connections from the same address, enrollments are prompt (slowest $(slowest "$T/beside_wrk") s)" \
    bash -c "grep -c '^200 ' '$T/beside_wrk' | grep -qx 3 && awk -v m='$(slowest "$T/beside_wrk")' 'BEGIN { exit !(m < 1) }'"

# Phase 1: each kind of attacker from its own address, 1,000 connections in all.
attack idle --source 127.0.0.2 --count 500 --mode idle
attack hello --source 127.0.0.3 --count 250 --mode hello
attack head --source 127.0.0.4 --count 250 --mode head
attack body --source 127.0.0.5 --count 100 --mode body --credentials "$T/ca/demo.credentials"
sleep 4 # every connection is open, the first deadlines have passed
enroll_times "$T/phase1" 10
wait_attackers
echo "# idle: $(cat "$T/idle.out")"
echo "# hello: $(cat "$T/hello.out")"
echo "# head: $(cat "$T/head.out")"
echo "# body: $(cat "$T/body.out")"
echo "# good client under attack from 3 addresses, seconds: $(awk '{ printf "%s ", $2 }' "$T/phase1")"
check "10 enrollments under attack: all 200 ($(cut -d' ' -f1 "$T/phase1" | sort | uniq -c | tr -s ' \n' ' '))" \
    all_200 "$T/phase1" 10
check "each within ${PROMPT_S} s (slowest $(slowest "$T/phase1") s)" under "$(slowest "$T/phase1")" "$PROMPT_S"
all_open() { [ "$(field idle opened)" -ge 500 ] && [ "$(field hello opened)" -ge 250 ] && [ "$(field head opened)" -ge 250 ]; }
check "the attackers had 1,000 connections open ($(field idle opened) + $(field hello opened) + $(field head opened))" all_open
# Closed at request_timeout_ms after accept (plus the master's wake-up and the test's slack).
# cut_at_deadline NAME MIN_CLOSED: at least MIN_CLOSED of NAME's connections were closed by the
# server, none before request_timeout_ms, none long after it.
cut_at_deadline() {
    [ "$(field "$1" closed_by_server)" -ge "$2" ] && [ "$(field "$1" lived_ms_min)" -ge $((TIMEOUT_MS - 100)) ] &&
        [ "$(field "$1" lived_ms_max)" -le $((TIMEOUT_MS + 2000)) ]
}
check "silent connections are closed after request_timeout_ms (lived $(field idle lived_ms_min)..$(field idle lived_ms_max) ms)" \
    cut_at_deadline idle 500
check "ClientHello tricklers are closed after request_timeout_ms (lived $(field hello lived_ms_min)..$(field hello lived_ms_max) ms)" \
    cut_at_deadline hello 250
# The head tricklers really reached workers (handshakes), and each was cut at the deadline.
# trickled_cut NAME: NAME's connections reached workers (handshakes), and each the server
# closed lived at least request_timeout_ms (some also waited for their address's turn).
trickled_cut() {
    [ "$(field "$1" handshakes)" -ge 1 ] && [ "$(field "$1" closed_by_server)" -ge 1 ] &&
        [ "$(field "$1" lived_ms_min)" -ge $((TIMEOUT_MS - 100)) ]
}
check "HTTP-head tricklers got workers and were cut off ($(field head handshakes) handshakes, $(field head closed_by_server) closed)" \
    trickled_cut head
check "body tricklers got workers and were cut off ($(field body handshakes) handshakes, $(field body closed_by_server) closed)" \
    trickled_cut body

# Phase 2: head tricklers spread over 100 addresses (5 each), plus 500 silent ones.
attack spread --source 127.0.0.2-127.0.0.101 --count 5 --mode head
attack spread_idle --source 127.0.1.2-127.0.1.101 --count 5 --mode idle
sleep 4
enroll_times "$T/phase2" 10
wait_attackers
echo "# spread head: $(cat "$T/spread.out")"
echo "# spread idle: $(cat "$T/spread_idle.out")"
echo "# good client under attack from 200 addresses, seconds: $(awk '{ printf "%s ", $2 }' "$T/phase2")"
check "10 enrollments under a spread attack: all 200 ($(cut -d' ' -f1 "$T/phase2" | sort | uniq -c | tr -s ' \n' ' '))" \
    all_200 "$T/phase2" 10
# Every worker may be held by a trickler: a wait is bounded by its deadline, not by the attack.
check "each within request_timeout_ms + ${PROMPT_S} s (slowest $(slowest "$T/phase2") s)" \
    under "$(slowest "$T/phase2")" "$((TIMEOUT_MS / 1000 + PROMPT_S))"

# Afterwards: every attacker is gone and estcad serves as before.
enroll_times "$T/after" 3
check "enrolls after the attacks" all_200 "$T/after" 3
code=$(http_status GET /cacerts)
check "/cacerts after the attacks (got $code)" [ "$code" = 200 ]
check "estcad is alive" kill -0 "$ESTCAD_PID"

# A head that stops coming is answered 408 Request Timeout at the deadline: nothing in it was
# malformed (packaging/civetweb-timeout-408.patch).
started=$(date +%s%N)
stalled=$(printf 'GET /.well-known/est/cacerts HTTP/1.1\r\nHost: 127.0.0.1\r\n' |
    openssl s_client -quiet -connect "127.0.0.1:$PORT" -CAfile "$T/ca/tls-ca.pem" 2>/dev/null |
    head -1 | tr -d '\r')
waited_ms=$((($(date +%s%N) - started) / 1000000))
check "a request head that stops coming: 408 (got: $stalled)" [ "$(cut -d' ' -f2 <<<"$stalled")" = 408 ]
check "... after request_timeout_ms (${waited_ms} ms)" [ "$waited_ms" -ge $((TIMEOUT_MS - 100)) ]
stop_estcad
finish
