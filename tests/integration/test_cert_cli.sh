#!/usr/bin/env bash
# The operator reads the ledger while estcad runs: estca cert list / show / export agree with
# the certificates the clients received.
. "$(dirname "$0")/lib.sh"
provision
start_estcad

serials=()
for name in alpha beta; do
    make_csr "$name" -addext "subjectAltName=DNS:$name.example.test"
    curl -sS --fail --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
        --data-binary @"$T/$name.b64" "$URL/simpleenroll" | base64 -d |
        openssl pkcs7 -inform DER -print_certs -out "$T/$name.pem"
    serials+=("$(openssl x509 -in "$T/$name.pem" -noout -serial | cut -d= -f2)")
done

list=$("$ESTCA" cert list --config "$T/ca/estca.conf")
check "cert list shows both serials" bash -c "grep -q '${serials[0]}' <<<'$list' && grep -q '${serials[1]}' <<<'$list'"
check "cert list shows the subjects (RFC 2253)" grep -q 'O=Test,CN=beta' <<<"$list"
json=$("$ESTCA" cert list --ledger "$T/ca/ledger.sqlite" --json)
check "cert list --json: one object per certificate" [ "$(grep -c '^{.*}$' <<<"$json")" -eq 2 ]
check "cert list --json carries requester and status" grep -q "\"requester\":\"user:$DEMO_USER\".*\"serial\":\"${serials[0]}\".*\"status\":\"valid\"" <<<"$json"

colon_serial=$(sed 's/../&:/g; s/:$//' <<<"${serials[1]}" | tr 'A-F' 'a-f')
show=$("$ESTCA" cert show --config "$T/ca/estca.conf" "$colon_serial")
check "cert show accepts a lower-case colon serial" grep -q "^serial: ${serials[1]}$" <<<"$show"
check "cert show has the SAN" grep -q '^subjectAltName: DNS:beta.example.test$' <<<"$show"

"$ESTCA" cert export --config "$T/ca/estca.conf" --out "$T/exported.pem" "${serials[0]}"
check "cert export writes the certificate the client got" \
    cmp <(openssl x509 -in "$T/exported.pem" -outform DER) <(openssl x509 -in "$T/alpha.pem" -outform DER)
check "an unknown serial is an error" bash -c "! '$ESTCA' cert show --config '$T/ca/estca.conf' 0BADC0DE 2>/dev/null"
check "a non-hex serial is a usage error" bash -c "! '$ESTCA' cert show --config '$T/ca/estca.conf' xyz 2>/dev/null"

stop_estcad
finish
