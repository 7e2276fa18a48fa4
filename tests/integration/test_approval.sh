#!/usr/bin/env bash
# Manual approval (RFC 7030 §4.2.3): 202 + Retry-After until an operator decides with estca;
# the identical CSR re-posted then gets its certificate (the same one every time), or 403 when
# rejected. Pending requests survive a restart; strongSwan pki polls through it.
. "$(dirname "$0")/lib.sh"
provision
printf 'approval = manual\nretry_after = 1\n' >> "$T/ca/estca.conf" # [label:default] is last
start_estcad
conf=(--config "$T/ca/estca.conf")
post() { # csr-name -> status
    http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" \
        --data-binary @"$T/$1.b64"
}

make_csr waiting
code=$(post waiting)
check "a new request is accepted, not issued: 202 (got $code)" [ "$code" = 202 ]
check "202 carries Retry-After in integer seconds" grep -qix 'retry-after: 1' <(tr -d '\r' < "$T/headers")
code=$(post waiting)
check "re-posting it before a decision: 202 again (got $code)" [ "$code" = 202 ]
check "nothing was issued yet" [ "$(sqlite3 "$T/ca/ledger.sqlite" 'SELECT COUNT(*) FROM certificates')" = 0 ]
list=$("$ESTCA" request list "${conf[@]}")
check "estca request list shows one pending request with its subject" \
    [ "$(grep -c ' pending .*CN=waiting' <<<"$list")" = 1 ]
id=$(awk '/ pending .*CN=waiting/ {print $1}' <<<"$list")

stop_estcad
start_estcad
code=$(post waiting)
check "the request survives a restart: still 202 (got $code)" [ "$code" = 202 ]
check "and is still one request" [ "$("$ESTCA" request list "${conf[@]}" --json | grep -c '"status":"pending"')" = 1 ]

check "estca request approve" "$ESTCA" request approve "${conf[@]}" "$id"
check "approving twice is refused" bash -c "! '$ESTCA' request approve --config '$T/ca/estca.conf' $id 2>/dev/null"
code=$(post waiting)
check "after approval the same CSR gets its certificate (got $code)" [ "$code" = 200 ]
base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/waiting.pem"
check "the certificate verifies" openssl verify -CAfile "$T/ca/ca-chain.pem" "$T/waiting.pem"
code=$(post waiting)
base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/again.pem"
check "posting it once more returns the same certificate, not a new one (got $code)" \
    cmp <(openssl x509 -in "$T/waiting.pem" -outform DER) <(openssl x509 -in "$T/again.pem" -outform DER)
check "exactly one certificate was issued" [ "$(sqlite3 "$T/ca/ledger.sqlite" 'SELECT COUNT(*) FROM certificates')" = 1 ]
check "the request is marked issued" grep -q '"status":"issued"' <<<"$("$ESTCA" request list "${conf[@]}" --json)"

make_csr refused
post refused >/dev/null
rid=$("$ESTCA" request list "${conf[@]}" | awk '/ pending .*CN=refused/ {print $1}')
check "estca request reject" "$ESTCA" request reject "${conf[@]}" "$rid"
code=$(post refused)
check "a rejected request gets 403 (got $code)" [ "$code" = 403 ]

make_csr garbage
printf 'not a CSR' > "$T/garbage.b64"
code=$(post garbage)
check "a bad CSR is refused at once, never filed: 400 (got $code)" [ "$code" = 400 ]

# strongSwan pki polls (--interval) until an operator approves.
cd "$T"
pki --estca --url "$BASE" --cacert ca/tls-ca.pem --caout est-ca.pem --outform pem >/dev/null 2>&1
pki --gen --type ecdsa --size 256 --outform pem > pki.key
pki --req --in pki.key --type ecdsa --dn "CN=pki-polling, O=Test" --outform der > pki.der
pki --est --url "$BASE" --cacert ca/tls-ca.pem --cacert est-ca.pem --cacert est-ca-1.pem \
    --userpass "$CREDENTIALS" --in pki.der --outform pem --interval 1 --maxpolltime 60 > pki.pem 2>pki.log &
pki_pid=$!
pid_id=
for _ in $(seq 1 100); do
    pid_id=$("$ESTCA" request list "${conf[@]}" | awk '/ pending .*CN=pki-polling/ {print $1}')
    [ -n "$pid_id" ] && break
    sleep 0.2
done
check "pki's request is pending" [ -n "$pid_id" ]
sleep 2 # let pki poll at least once more
"$ESTCA" request approve "${conf[@]}" "$pid_id" >/dev/null
pki_rc=0
wait "$pki_pid" || pki_rc=$?
check "pki --est --interval polls through the approval (exit $pki_rc)" [ "$pki_rc" -eq 0 ]
check "and gets a certificate that verifies" openssl verify -CAfile ca/ca-chain.pem pki.pem

stop_estcad
finish
