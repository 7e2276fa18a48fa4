#!/usr/bin/env bash
# SIGTERM drains: requests in flight when estcad is told to stop (here /serverkeygen with an
# RSA-4096 key, which the token takes a second or more to generate) are answered in full and
# recorded; a request arriving meanwhile gets 503 (or finds the listener closed); then estcad
# exits 0.
. "$(dirname "$0")/lib.sh"
provision
sed -i 's|^\[label:default\]$|[label:default]\nserverkeygen = yes\ncsr_key_type = rsa:4096|' "$T/ca/estca.conf"
[ "$ESTCA_VALGRIND" = 1 ] && sed -i 's/rsa:4096/rsa:2048/' "$T/ca/estca.conf" # 4096: minutes under valgrind
start_estcad
make_csr slow
pids=()
for i in 1 2 3 4; do
    curl -sS -o "$T/skg-$i.body" -D "$T/skg-$i.headers" -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" \
        --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" --data-binary @"$T/slow.b64" \
        "$URL/serverkeygen" > "$T/skg-$i.code" 2>/dev/null &
    pids+=($!)
done
settle 0.5 # the requests are read and the token is generating
kill -TERM "$ESTCAD_PID"
sleep 0.2
late=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" "$URL/cacerts" 2>/dev/null || true)
wait "${pids[@]}" || true
rc=0
wait "$ESTCAD_PID" || rc=$?
ESTCAD_PID=
for i in 1 2 3 4; do
    check "in-flight request $i was answered 200 (got $(cat "$T/skg-$i.code"))" [ "$(cat "$T/skg-$i.code")" = 200 ]
    check "with the whole multipart body" grep -q -- "--$(sed -n 's/.*boundary=\([^;[:space:]]*\).*/\1/p' "$T/skg-$i.headers" | tr -d '\r\"')--" "$T/skg-$i.body"
done
check "a request after SIGTERM gets 503 or a closed listener (got '${late:-none}')" \
    bash -c "[ '${late:-000}' = 503 ] || [ '${late:-000}' = 000 ]"
check "estcad exits 0 after draining (got $rc)" [ "$rc" = 0 ]
check "it logged the stop" grep -q 'event=stopped' "$T/estcad.log"
issued=$("$ESTCA" cert list --ledger "$T/ca/ledger.sqlite" --json | wc -l)
check "the 4 certificates are in the ledger (has $issued)" [ "$issued" = 4 ]
finish
