#!/usr/bin/env bash
# Manual approval (RFC 7030 §4.2.3): 202 + Retry-After until an operator decides with estca;
# the identical CSR re-posted then gets its certificate (the same one every time), or 403 when
# rejected. Pending requests survive a restart; strongSwan pki polls through it. /serverkeygen
# on the same label (§4.4) waits for approval too; then the requester who filed it, and only
# it, gets a key the token generates and its certificate, once: the key is not kept, so a
# re-post after delivery is 403. The same CSR on /simpleenroll is a request of its own.
. "$(dirname "$0")/lib.sh"
provision
# [label:default] is last.
printf 'approval = manual\nretry_after = 1\nserverkeygen = yes\n' >> "$T/ca/estca.conf"
OTHER_CREDENTIALS="other:$(openssl rand -hex 12)"
printf '%s\n' "${OTHER_CREDENTIALS#*:}" | "$ESTCA" user add --users-file "$T/ca/users" other >/dev/null
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

# ---- /serverkeygen with approval = manual ----
skg() { # csr-name credentials -> status; body in $T/body, headers in $T/headers
    http_status POST /serverkeygen -H "Content-Type: application/pkcs10" --user "$2" \
        --data-binary @"$T/$1.b64"
}
certificates() { sqlite3 "$T/ca/ledger.sqlite" 'SELECT COUNT(*) FROM certificates'; }
request_id() { # status label-column common-name -> the request's id
    "$ESTCA" request list "${conf[@]}" |
        awk -v s="$1" -v l="$2" -v cn="(^|,)CN=$3(,|\$)" '$2 == s && $4 == l && $6 ~ cn {print $1}'
}

make_csr skg
before=$(certificates)
code=$(skg skg "$CREDENTIALS")
check "serverkeygen on a label with approval = manual: 202, not 403 (got $code)" [ "$code" = 202 ]
check "serverkeygen's 202 carries Retry-After in integer seconds" grep -qix 'retry-after: 1' <(tr -d '\r' < "$T/headers")
check "... and nothing is issued yet" [ "$(certificates)" = "$before" ]
skg_id=$(request_id pending default/serverkeygen skg)
check "estca request list shows it pending under default/serverkeygen" [ -n "$skg_id" ]
code=$(post skg)
check "the same CSR on /simpleenroll: 202 (got $code)" [ "$code" = 202 ]
enroll_id=$(request_id pending default skg)
distinct() { [ -n "$enroll_id" ] && [ "$enroll_id" != "$skg_id" ]; }
check "... as a request of its own ($enroll_id, not $skg_id)" distinct
code=$(skg skg "$OTHER_CREDENTIALS")
check "another user re-posting the CSR to /serverkeygen: 403 (got $code)" [ "$code" = 403 ]
check "... saying that only the requester may collect the key" grep -q 'filed by another requester' "$T/body"

check "the operator approves it" "$ESTCA" request approve "${conf[@]}" "$skg_id"
code=$(skg skg "$OTHER_CREDENTIALS")
check "approved: another user still gets 403, not the key (got $code)" [ "$code" = 403 ]
code=$(skg skg "$CREDENTIALS")
check "approved: the identical CSR from its requester gets 200 (got $code)" [ "$code" = 200 ]
two_parts() { split_multipart "$T/headers" "$T/body" part && [ -s "$T/part.1" ] && [ -s "$T/part.2" ]; }
check "multipart/mixed, two parts" two_parts
check "part 1 is the key, application/pkcs8" grep -qi '^content-type: application/pkcs8$' "$T/part.1.h"
check "part 2 is certs-only" grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only$' "$T/part.2.h"
base64 -d "$T/part.1" > "$T/skg-key.der" 2>/dev/null || true
base64 -d "$T/part.2" 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out "$T/skg.pem" 2>/dev/null || true
check "the key is PKCS#8" openssl pkcs8 -inform DER -nocrypt -in "$T/skg-key.der" -out /dev/null
check "the certificate verifies" openssl verify -CAfile "$T/ca/ca-chain.pem" "$T/skg.pem"
check "the certificate is for the generated key" \
    cmp <(openssl pkey -inform DER -in "$T/skg-key.der" -pubout 2>/dev/null) <(openssl x509 -in "$T/skg.pem" -noout -pubkey)
check "not for the CSR's key" bash -c "! cmp -s <(openssl pkey -in '$T/skg.key' -pubout) <(openssl x509 -in '$T/skg.pem' -noout -pubkey)"
check "one certificate issued" [ "$(certificates)" = $((before + 1)) ]
check "the request is marked issued" [ -n "$(request_id issued default/serverkeygen skg)" ]
code=$(skg skg "$CREDENTIALS")
check "re-posting after delivery: 403, the key is not kept (got $code)" [ "$code" = 403 ]
check "... saying so" grep -q 'was delivered' "$T/body"
check "... and nothing more was issued" [ "$(certificates)" = $((before + 1)) ]
code=$(post skg)
check "the /simpleenroll request of the same CSR is still pending: 202 (got $code)" [ "$code" = 202 ]

make_csr skg-refused
skg skg-refused "$CREDENTIALS" >/dev/null
check "the operator rejects it" "$ESTCA" request reject "${conf[@]}" "$(request_id pending default/serverkeygen skg-refused)"
code=$(skg skg-refused "$CREDENTIALS")
check "a rejected serverkeygen request: 403 (got $code)" [ "$code" = 403 ]
check "... as rejected" grep -q 'rejected by an operator' "$T/body"
check "... and nothing was issued" [ "$(certificates)" = $((before + 1)) ]

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
