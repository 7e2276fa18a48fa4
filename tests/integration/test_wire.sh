#!/usr/bin/env bash
# The wire details strict EST clients depend on (../shared/est/CLIENTS.md): an HTTP/1.1 status
# line, Content-Length on every answer, one-line base64, keep-alive across requests,
# Expect: 100-continue, and an IPv6 loopback listener.
. "$(dirname "$0")/lib.sh"
provision
start_estcad
make_csr wire
not() { ! "$@"; }

for path in /cacerts /nosuchop; do
    http_status GET "$path" >/dev/null
    check "$path: status line is HTTP/1.1" grep -qE '^HTTP/1\.1 [0-9]{3} ' <(head -n1 "$T/headers")
    check "$path: Content-Length is present and right" \
        [ "$(sed -n 's/^[Cc]ontent-[Ll]ength: *\([0-9]*\).*/\1/p' "$T/headers")" = "$(wc -c < "$T/body")" ]
done
http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --data-binary @"$T/wire.b64" >/dev/null
check "401: Content-Length is present" grep -qi '^content-length: ' "$T/headers"
check "no chunked responses" bash -c "! grep -qi '^transfer-encoding' '$T/headers'"

# Two enrollments and a /cacerts on one TLS connection.
curl -sS -v --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
    --data-binary @"$T/wire.b64" "$URL/simpleenroll" -o "$T/ka1" \
    --next -sS --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
    --data-binary @"$T/wire.b64" "$URL/simpleenroll" -o "$T/ka2" \
    --next -sS --cacert "$T/ca/tls-ca.pem" "$URL/cacerts" -o "$T/ka3" 2>"$T/ka.log"
check "keep-alive: later requests reuse the connection" [ "$(grep -c 'Re-using existing connection' "$T/ka.log")" -eq 2 ]
check "keep-alive: one TLS handshake for three requests" [ "$(grep -c 'SSL connection using' "$T/ka.log")" -eq 1 ]
check "keep-alive: both enrollments answered with a certificate" \
    bash -c "base64 -d '$T/ka1' | openssl pkcs7 -inform DER -noout && base64 -d '$T/ka2' | openssl pkcs7 -inform DER -noout"
check "responses are one base64 line" [ "$(wc -l < "$T/ka1")" -eq 0 ]

code=$(http_status POST /simpleenroll -H "Content-Type: application/pkcs10" -H "Expect: 100-continue" \
    --user "$CREDENTIALS" --data-binary @"$T/wire.b64" -v 2>"$T/expect.log")
check "Expect: 100-continue is answered (got $code)" [ "$code" = 200 ]
# curl waits a second for the interim answer and then sends the body anyway ("Done waiting"):
# a 200 alone would not show that the server answered the expectation.
check "... with an interim 100 Continue" grep -q '^< HTTP/1.1 100 Continue' "$T/expect.log"
check "... before curl stopped waiting for it" not grep -q 'Done waiting for 100-continue' "$T/expect.log"
# A body over max_body announced with the expectation: 413 straight away, no 100 Continue.
head -c 2000000 /dev/zero | tr '\0' 'A' > "$T/big.b64"
code=$(http_status POST /simpleenroll -H "Content-Type: application/pkcs10" -H "Expect: 100-continue" \
    --user "$CREDENTIALS" --data-binary @"$T/big.b64" -v 2>"$T/expect-big.log")
check "Expect: 100-continue with a 2 MB body: 413 (got $code)" [ "$code" = 413 ]
check "... without 100 Continue" not grep -q '^< HTTP/1.1 100 Continue' "$T/expect-big.log"
check "... before curl stopped waiting" not grep -q 'Done waiting for 100-continue' "$T/expect-big.log"

# The same appliance on the IPv6 loopback.
stop_estcad
if ip -6 addr show lo 2>/dev/null | grep '::1' >/dev/null; then
    sed -i 's/^listen = .*/listen = [::1]:0/' "$T/ca/estca.conf"
    start_estcad
    code=$(curl -sS -o "$T/body" -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" "https://[::1]:$PORT/.well-known/est/cacerts" || true)
    check "IPv6 loopback listener serves /cacerts (got $code)" [ "$code" = 200 ]
    code=$(curl -sS -o "$T/body" -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" \
        -H "Content-Type: application/pkcs10" --data-binary @"$T/wire.b64" "https://[::1]:$PORT/.well-known/est/simpleenroll" || true)
    check "and enrolls over IPv6, the TLS name IP:::1 verified (got $code)" [ "$code" = 200 ]
    stop_estcad
else
    echo "skip - no IPv6 loopback on this machine"
fi
finish
