#!/usr/bin/env bash
# Password guessing is slowed down: after three failures further attempts for that user (and
# from that address) get 429 + Retry-After without being checked, even with the right
# password, until the back-off passes; the refusals are logged, the password never, and the
# metrics listener counts them.
. "$(dirname "$0")/lib.sh"
provision
sed -i 's/^\[server\]$/[server]\nmetrics_listen = 127.0.0.1:0/' "$T/ca/estca.conf"
start_estcad
metrics_port=$(sed -n 's/.*event=metrics-listening.* port=\([0-9]*\).*/\1/p' "$T/estcad.log")
metric() { # name-with-labels -> value (0 when absent)
    curl -sS "http://127.0.0.1:$metrics_port/metrics" | awk -v m="$1" '$1 == m {v = $2} END {print v + 0}'
}
make_csr guess
post_as() { # user:password -> status
    http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --user "$1" --data-binary @"$T/guess.b64"
}

for i in 1 2 3 4; do
    code=$(post_as "$DEMO_USER:guess-$i")
    check "wrong password $i: 401 (got $code)" [ "$code" = 401 ]
done
code=$(post_as "$CREDENTIALS")
check "during the back-off even the right password gets 429 (got $code)" [ "$code" = 429 ]
wait_s=$(tr -d '\r' < "$T/headers" | sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\)$/\1/p')
check "429 carries Retry-After in seconds (got '$wait_s')" bash -c "[ -n '$wait_s' ] && [ '${wait_s:-0}' -ge 1 ] && [ '${wait_s:-0}' -le 5 ]"
check "the log says it throttled" grep -q 'status=429.*throttled' "$T/estcad.log"
check "metrics: 4 failed logins (got $(metric estca_login_failures_total))" [ "$(metric estca_login_failures_total)" = 4 ]
check "metrics: 1 login throttled (got $(metric estca_login_throttled_total))" [ "$(metric estca_login_throttled_total)" = 1 ]
check "metrics: the user and the address back off (got $(metric estca_login_backing_off))" [ "$(metric estca_login_backing_off)" = 2 ]
check "metrics: the 429 and the 401s per operation" bash -c "[ $(metric 'estca_est_answers_total{op=\"simpleenroll\",status=\"429\"}') = 1 ] && [ $(metric 'estca_est_answers_total{op=\"simpleenroll\",status=\"401\"}') = 4 ]"
sleep "${wait_s:-2}"
code=$(post_as "$CREDENTIALS")
check "after the back-off the right password works (got $code)" [ "$code" = 200 ]
code=$(post_as "$DEMO_USER:guess-5")
check "and the success reset the count: a new mistake is free again (got $code)" [ "$code" = 401 ]
check "no password in the log" bash -c "! grep -qE 'guess-[0-9]|${CREDENTIALS#*:}' '$T/estcad.log'"
stop_estcad
finish
