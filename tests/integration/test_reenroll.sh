#!/usr/bin/env bash
# /simplereenroll (RFC 7030 §4.2.2): the device authenticates with the certificate it renews;
# renewal (same key) and rekey (new key) are recorded as replacing it; a CSR that changes the
# names, a foreign or missing client certificate, and a revoked one are refused.
. "$(dirname "$0")/lib.sh"
provision
start_estcad
san="subjectAltName=DNS:dev1.example.test"

enroll_pem() { # name -> $T/name.pem, by /simpleenroll with HTTP Basic
    curl -sS --fail --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
        --data-binary @"$T/$1.b64" "$URL/simpleenroll" | base64 -d | openssl pkcs7 -inform DER -print_certs -out "$T/$1.pem"
}
reenroll() { # cert key csr-name -> status; body in $T/body
    http_status POST /simplereenroll -H "Content-Type: application/pkcs10" --cert "$T/$1.pem" --key "$T/$2.key" \
        --data-binary @"$T/$3.b64"
}
ledger() { sqlite3 "$T/ca/ledger.sqlite" "$1"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

make_csr dev1 -subj "/CN=dev1/O=Test" -addext "$san"
enroll_pem dev1
first_id=$(ledger "SELECT id FROM certificates WHERE serial = '$(serial_of "$T/dev1.pem")'")

# Rekey: same names, a new key.
make_csr rekey -subj "/CN=dev1/O=Test" -addext "$san"
code=$(reenroll dev1 dev1 rekey)
check "rekey with the old certificate as TLS client certificate: 200 (got $code)" [ "$code" = 200 ]
base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/rekeyed.pem"
check "the rekeyed certificate verifies" openssl verify -CAfile "$T/ca/ca-chain.pem" "$T/rekeyed.pem"
check "it carries the new key" cmp <(openssl pkey -in "$T/rekey.key" -pubout) <(openssl x509 -in "$T/rekeyed.pem" -noout -pubkey)
check "the ledger records what it replaces" \
    [ "$(ledger "SELECT replaces FROM certificates WHERE serial = '$(serial_of "$T/rekeyed.pem")'")" = "$first_id" ]
check "the ledger names the certificate as requester" \
    grep -q '^cert:/CN=dev1/O=Test$' <<<"$(ledger "SELECT requester FROM certificates WHERE serial = '$(serial_of "$T/rekeyed.pem")'")"

# Renewal: the same key again, authenticated by the rekeyed certificate.
cp "$T/rekey.key" "$T/renew.key"
openssl req -new -key "$T/renew.key" -subj "/CN=dev1/O=Test" -addext "$san" -outform DER | base64 -w0 > "$T/renew.b64"
code=$(reenroll rekeyed rekey renew)
check "renewal with the same key: 200 (got $code)" [ "$code" = 200 ]
base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/renewed.pem"
check "the renewed certificate keeps the key" cmp <(openssl x509 -in "$T/rekeyed.pem" -noout -pubkey) <(openssl x509 -in "$T/renewed.pem" -noout -pubkey)

# Refusals.
make_csr other -subj "/CN=someone-else/O=Test" -addext "$san"
code=$(reenroll renewed rekey other)
check "another subject: 400 (got $code)" [ "$code" = 400 ]
check "the reason names the subject" grep -qi 'subject' "$T/body"
make_csr othersan -subj "/CN=dev1/O=Test" -addext "subjectAltName=DNS:evil.example.test"
code=$(reenroll renewed rekey othersan)
check "another subjectAltName: 400 (got $code)" [ "$code" = 400 ]

code=$(http_status POST /simplereenroll -H "Content-Type: application/pkcs10" --data-binary @"$T/rekey.b64")
check "no client certificate: 401 (got $code)" [ "$code" = 401 ]
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/foreign.key" \
    -subj "/CN=dev1/O=Test" -addext "$san" -days 2 -out "$T/foreign.pem" 2>/dev/null
code=$(reenroll foreign foreign rekey)
check "a certificate this CA did not issue: 401 (got $code)" [ "$code" = 401 ]
code=$(http_status POST /simplereenroll --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" --data-binary @"$T/rekey.b64")
check "HTTP Basic alone does not re-enroll: 401 (got $code)" [ "$code" = 401 ]

"$ESTCA" cert revoke --config "$T/ca/estca.conf" --reason superseded "$(serial_of "$T/renewed.pem")" >/dev/null
code=$(reenroll renewed rekey rekey)
check "a revoked certificate cannot re-enroll: 403 (got $code)" [ "$code" = 403 ]

# strongSwan pki: --cert/--key selects /simplereenroll.
cd "$T"
pki --estca --url "$BASE" --cacert ca/tls-ca.pem --caout est-ca.pem --outform pem >/dev/null 2>&1
pki --gen --type ecdsa --size 256 --outform pem > pki-new.pem
pki --req --in pki-new.pem --type ecdsa --dn "CN=dev1, O=Test" --san dev1.example.test --outform der > pki-req.der
check "pki --est --cert --key re-enrolls" pki --est --url "$BASE" --cacert ca/tls-ca.pem --cacert est-ca.pem \
    --cacert est-ca-1.pem --cert rekeyed.pem --key rekey.key --in pki-req.der --outform pem > pki-cert.pem
check "pki's renewed certificate carries its new key" cmp <(pki --pub --in pki-new.pem --outform pem) <(openssl x509 -in pki-cert.pem -noout -pubkey)

stop_estcad
finish
