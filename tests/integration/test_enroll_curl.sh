#!/usr/bin/env bash
# A device enrolls with curl + openssl against estcad on a fresh SoftHSM2 token: /cacerts,
# /simpleenroll, the certificate chains to /cacerts, carries the CSR's key and names, and is
# in the ledger; the CA keys on the token are sensitive and never extractable.
. "$(dirname "$0")/lib.sh"
provision
start_estcad

# /cacerts: no authentication, base64 certs-only PKCS#7 with the issuing CA and the root.
code=$(http_status GET /cacerts)
check "GET /cacerts is 200" [ "$code" = 200 ]
check "/cacerts content type" grep -qi '^content-type: application/pkcs7-mime' "$T/headers"
check "/cacerts body is one base64 line" [ "$(tr -d '\r\n' < "$T/body" | wc -c)" -eq "$(wc -c < "$T/body")" ]
base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/cacerts.pem"
check "/cacerts holds issuing CA and root" [ "$(grep -c 'BEGIN CERTIFICATE' "$T/cacerts.pem")" -eq 2 ]
check "/cacerts contains the root" pem_bundle_contains "$T/cacerts.pem" "$T/ca/root-ca.pem"
check "/cacerts contains the issuing CA" pem_bundle_contains "$T/cacerts.pem" "$T/ca/issuing-ca.pem"

# /simpleenroll with HTTP Basic, exactly as the README shows it.
make_csr device1 -addext "subjectAltName=DNS:device1.example.test,IP:192.0.2.7"
curl -sS --fail --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" --data-binary @"$T/device1.b64" \
    -H "Content-Type: application/pkcs10" "$URL/simpleenroll" -D "$T/enroll.headers" -o "$T/device1-p7.b64"
check "enroll answers certs-only" grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only' "$T/enroll.headers"
base64 -d "$T/device1-p7.b64" | openssl pkcs7 -inform DER -print_certs -out "$T/device1.pem"
check "enroll returns exactly one certificate" [ "$(grep -c 'BEGIN CERTIFICATE' "$T/device1.pem")" -eq 1 ]
check "issued certificate verifies against /cacerts" \
    openssl verify -CAfile "$T/ca/root-ca.pem" -untrusted "$T/cacerts.pem" "$T/device1.pem"
check "issued certificate verifies against ca-chain.pem" openssl verify -CAfile "$T/ca/ca-chain.pem" "$T/device1.pem"
check "issued public key is the CSR's" cmp <(openssl pkey -in "$T/device1.key" -pubout) <(openssl x509 -in "$T/device1.pem" -noout -pubkey)
openssl x509 -in "$T/device1.pem" -noout -text > "$T/device1.txt"
check "subject from the CSR" grep -q 'Subject: CN = device1, O = Test' "$T/device1.txt"
check "SAN from the CSR" grep -q 'DNS:device1.example.test, IP Address:192.0.2.7' "$T/device1.txt"
check "end entity is CA:FALSE" grep -q 'CA:FALSE' "$T/device1.txt"
serial=$(openssl x509 -in "$T/device1.pem" -noout -serial | cut -d= -f2)
check "serial has at least 64 bits" [ "${#serial}" -ge 16 ]
der_hex=$(openssl x509 -in "$T/device1.pem" -outform DER | od -An -v -tx1 | tr -d ' \n')
ledger_hex=$(sqlite3 "$T/ca/ledger.sqlite" "SELECT lower(hex(der)) FROM certificates WHERE upper(serial) = upper('$serial');")
check "the issued certificate is in the ledger, byte for byte" [ "$der_hex" = "$ledger_hex" ]
requester=$(sqlite3 "$T/ca/ledger.sqlite" "SELECT requester FROM certificates WHERE upper(serial) = upper('$serial');")
check "the ledger names the requester" [ "$requester" = "user:$DEMO_USER" ]

# A second enrollment gets a different serial.
make_csr device2
curl -sS --fail --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" --data-binary @"$T/device2.b64" \
    -H "Content-Type: application/pkcs10" "$URL/simpleenroll" | base64 -d | openssl pkcs7 -inform DER -print_certs -out "$T/device2.pem"
serial2=$(openssl x509 -in "$T/device2.pem" -noout -serial | cut -d= -f2)
check "serials differ" [ -n "$serial2" ] && [ "$serial2" != "$serial" ]

# The listener: TLS 1.2 and 1.3 accepted, TLS 1.1 refused.
check "TLS 1.2 handshake" curl -sS -o /dev/null --tlsv1.2 --tls-max 1.2 --cacert "$T/ca/tls-ca.pem" "$URL/cacerts"
check "TLS 1.3 handshake" curl -sS -o /dev/null --tlsv1.3 --cacert "$T/ca/tls-ca.pem" "$URL/cacerts"
# TLS 1.1 and older: test_conformance_tls.sh (an OpenSSL 3 client refuses TLS 1.1 on its own,
# so only a probe at SECLEVEL=0 that sees the server's alert shows anything).

# The CA keys live on the token: sensitive, never extractable. The only key material outside
# the token is the TLS listener's key file (provision.sh's default), and only root reads it.
for key in root-ca issuing-ca tls-ca; do
    attrs=$("$ESTCA" key show --config "$T/ca/estca.conf" --key "pkcs11:token=estca;object=$key")
    check "$key is sensitive" grep -q 'sensitive=true' <<<"$attrs"
    check "$key is not extractable" grep -q 'extractable=false' <<<"$attrs"
    check "$key was never extractable" grep -q 'never_extractable=true' <<<"$attrs"
done
check "no private key file outside the token directory but the listener's" \
    [ "$(grep -rlE 'PRIVATE KEY' "$T/ca" --exclude-dir=tokens)" = "$T/ca/tls.key" ]
check "the listener's key file is mode 0600" [ "$(stat -c %a "$T/ca/tls.key")" = 600 ]

stop_estcad
finish
