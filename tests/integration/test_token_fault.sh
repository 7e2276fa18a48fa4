#!/usr/bin/env bash
# Token faults under load: the SoftHSM2 token directory disappears while wrk and four curl
# clients enroll. Issuing answers 503 with Retry-After, /cacerts keeps working over new TLS
# connections, the loss and the recovery are logged once each, and estcad serves again by
# itself within seconds of the token's return. A token swapped for another one with the same
# label and PIN but different keys is not used: estcad stays unavailable until the real token
# is back. Every certificate a client received verifies against the CA chain and is in the
# ledger, and the ledger holds exactly the certificates that were answered 200.
. "$(dirname "$0")/lib.sh"
provision
start_estcad
tokens=$(sed -n 's/^directories.tokendir *= *//p' "$SOFTHSM2_CONF")
make_csr load
printf '%s' "$CREDENTIALS" | base64 -w0 > "$T/auth"
mkdir -p "$T/got"

# One checked client: enrolls until the deadline (at most 2000 times), keeps each certificate.
client() {
    local id=$1 deadline=$2 n=0 code
    while [ "$(date +%s)" -lt "$deadline" ] && [ $n -lt 2000 ]; do
        n=$((n + 1))
        code=$(curl -sS -o "$T/got/$id-$n.b64" -D "$T/got/$id-$n.headers" -w '%{http_code}' \
            --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
            --data-binary @"$T/load.b64" "$URL/simpleenroll" 2>/dev/null) || code=000
        echo "$code $id-$n" >> "$T/got/codes"
        [ "$code" = 200 ] || rm -f "$T/got/$id-$n.b64"
        sleep 0.02
    done
}

# cacerts_during: status of /cacerts over a new connection.
cacerts_status() {
    curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" "$URL/cacerts" 2>/dev/null || echo 000
}

start=$(date +%s)
deadline=$((start + 16))
BENCH_CSR="$T/load.b64" BENCH_AUTH_FILE="$T/auth" \
    wrk -t2 -c4 -d14s --timeout 5s -s "$ESTCA_SOURCE_DIR/tests/bench/enroll.lua" "$URL/simpleenroll" \
    > "$T/wrk.out" 2>&1 &
wrk_pid=$!
client_pids=()
for id in 1 2 3 4; do
    client "$id" "$deadline" &
    client_pids+=($!)
done

sleep 2
mv "$tokens" "$tokens.away"
sleep 1.5
cacerts_down=$(cacerts_status)
code_down=$(http_status POST /simpleenroll --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
    --data-binary @"$T/load.b64")
retry_after=$(sed -n 's/^Retry-After: *\([0-9]*\).*/\1/ip' "$T/headers" | tr -d '\r')
sleep 1

# The swap: a token with the same label and PIN, and a key of the same name, but not ours.
mkdir -p "$T/swap/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$T/swap/tokens" > "$T/swap/softhsm2.conf"
SOFTHSM2_CONF="$T/swap/softhsm2.conf" "$ESTCA" token init --label estca --so-pin-file "$T/ca/so.pin" \
    --pin-file "$T/ca/token.pin" > /dev/null
SOFTHSM2_CONF="$T/swap/softhsm2.conf" "$ESTCA" key generate --config "$T/ca/estca.conf" \
    --key "pkcs11:token=estca;object=issuing-ca" --type ec:P-256 > /dev/null
mv "$T/swap/tokens" "$tokens"
sleep 2
code_swapped=$(http_status POST /simpleenroll --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
    --data-binary @"$T/load.b64")
mv "$tokens" "$T/swap/tokens"

mv "$tokens.away" "$tokens"
back=$(date +%s%N)
code_back=000
for _ in $(seq 1 100); do
    code_back=$(http_status POST /simpleenroll --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
        --data-binary @"$T/load.b64")
    [ "$code_back" = 200 ] && break
    sleep 0.1
done
recovery_ms=$(( ($(date +%s%N) - back) / 1000000 ))
wait "$wrk_pid" "${client_pids[@]}" # not estcad, the shell's other child

check "while the token is gone, enrollment answers 503 (got $code_down)" [ "$code_down" = 503 ]
check "with a Retry-After in seconds (got '$retry_after')" [ -n "$retry_after" ]
check "and /cacerts still answers 200 over a new connection (got $cacerts_down)" [ "$cacerts_down" = 200 ]
check "a swapped token with other keys is not used: 503 (got $code_swapped)" [ "$code_swapped" = 503 ]
check "estcad says why it refuses the swapped token" grep -q 'is now a different key' "$T/estcad.log"
check "after the token's return estcad enrolls again, in ${recovery_ms} ms (< 5 s)" \
    bash -c "[ '$code_back' = 200 ] && [ $recovery_ms -lt 5000 ]"
check "the loss is logged once" [ "$(grep -c 'event=token-unavailable' "$T/estcad.log")" = 1 ]
check "the recovery is logged once" [ "$(grep -c 'event=token-recovered' "$T/estcad.log")" = 1 ]
check "estcad is still running" kill -0 "$ESTCAD_PID"

codes=$(cut -d' ' -f1 "$T/got/codes" | sort | uniq -c | tr '\n' ' ')
echo "# curl clients' answers: $codes"
check "the curl clients saw only 200 and 503" bash -c "! cut -d' ' -f1 '$T/got/codes' | grep -qv '^200\$\|^503\$'"
check "they saw 503s during the outage and 200s around it" \
    bash -c "grep -q '^503 ' '$T/got/codes' && [ \$(grep -c '^200 ' '$T/got/codes') -ge 20 ]"
bad_503=0
for h in $(grep '^503 ' "$T/got/codes" | cut -d' ' -f2); do
    grep -qi '^Retry-After: [0-9]' "$T/got/$h.headers" || bad_503=$((bad_503 + 1))
done
check "every 503 carries Retry-After ($bad_503 without)" [ "$bad_503" = 0 ]

# Every certificate a client got: a valid signature under the CA chain, and in the ledger.
: > "$T/serials.got"
unverified=0
for f in "$T"/got/*.b64; do
    [ -e "$f" ] || continue
    base64 -d < "$f" | openssl pkcs7 -inform DER -print_certs -out "$T/one.pem" 2>/dev/null || { unverified=$((unverified + 1)); continue; }
    openssl verify -CAfile "$T/ca/ca-chain.pem" "$T/one.pem" > /dev/null 2>&1 || unverified=$((unverified + 1))
    openssl x509 -in "$T/one.pem" -noout -serial | cut -d= -f2 >> "$T/serials.got"
done
check "every certificate the curl clients got verifies ($unverified do not)" [ "$unverified" = 0 ]
"$ESTCA" cert list --ledger "$T/ca/ledger.sqlite" --json | grep -o '"serial": *"[0-9A-Fa-f]*"' |
    sed 's/.*"\([0-9A-Fa-f]*\)"$/\1/' | tr 'a-f' 'A-F' | sort > "$T/serials.ledger"
missing=$(tr 'a-f' 'A-F' < "$T/serials.got" | sort | comm -23 - "$T/serials.ledger" | wc -l)
check "and is in the ledger ($missing missing)" [ "$missing" = 0 ]

read -r wrk_requests wrk_not200 < <(sed -n 's/^bench: requests=\([0-9]*\) not200=\([0-9]*\).*/\1 \2/p' "$T/wrk.out")
echo "# wrk: ${wrk_requests:-?} requests, ${wrk_not200:-?} not 200"
single_200=$(grep -c 'status=200' <(grep 'path=/.well-known/est/simpleenroll' "$T/estcad.log"))
ledger_count=$(wc -l < "$T/serials.ledger")
check "the ledger holds exactly the $single_200 certificates answered 200 (has $ledger_count)" \
    [ "$ledger_count" = "$single_200" ]
check "wrk's load ran through the outage" bash -c "[ '${wrk_requests:-0}' -gt 100 ] && [ '${wrk_not200:-0}' -gt 0 ]"

stop_estcad
finish
