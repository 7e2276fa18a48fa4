#!/usr/bin/env bash
# Revocation: estca cert revoke records it in the ledger, the revoked certificate can no longer
# re-enroll, and estca crl create signs on the token a CRL that lists it with its reason and a
# growing CRL number; openssl verify -crl_check then rejects it and accepts the others.
. "$(dirname "$0")/lib.sh"
provision
start_estcad
conf=(--config "$T/ca/estca.conf")

for name in keep drop; do
    make_csr "$name"
    curl -sS --fail --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
        --data-binary @"$T/$name.b64" "$URL/simpleenroll" | base64 -d |
        openssl pkcs7 -inform DER -print_certs -out "$T/$name.pem"
done
drop_serial=$(openssl x509 -in "$T/drop.pem" -noout -serial | cut -d= -f2)

check "estca cert revoke" "$ESTCA" cert revoke "${conf[@]}" --reason keyCompromise "$drop_serial"
check "the ledger shows it revoked" grep -q '^status: revoked$' <<<"$("$ESTCA" cert show "${conf[@]}" "$drop_serial")"
check "revoking twice is refused" bash -c "! '$ESTCA' cert revoke --config '$T/ca/estca.conf' $drop_serial 2>/dev/null"
check "an unknown reason is refused" bash -c "! '$ESTCA' cert revoke --config '$T/ca/estca.conf' --reason bored 00 2>/dev/null"

make_csr again -subj "/CN=drop/O=Test"
code=$(http_status POST /simplereenroll -H "Content-Type: application/pkcs10" --cert "$T/drop.pem" --key "$T/drop.key" \
    --data-binary @"$T/again.b64")
check "the revoked certificate cannot re-enroll: 403 (got $code)" [ "$code" = 403 ]

check "estca crl create signs a CRL on the token" "$ESTCA" crl create "${conf[@]}" --ca issuing --out "$T/crl1.pem"
check "the CRL's signature verifies with the issuing CA" openssl crl -in "$T/crl1.pem" -noout -CAfile "$T/ca/issuing-ca.pem" -verify
crl_text=$(openssl crl -in "$T/crl1.pem" -noout -text)
check "it lists the revoked serial" grep -q "Serial Number: $drop_serial" <<<"$crl_text"
check "with its reason" grep -q 'Key Compromise' <<<"$crl_text"
check "and only that one" [ "$(grep -c 'Serial Number:' <<<"$crl_text")" = 1 ]
crl_number() { openssl crl -in "$1" -noout -crlnumber | cut -d= -f2; }
"$ESTCA" crl create "${conf[@]}" --ca issuing --out "$T/crl2.pem" >/dev/null
# estcad's own CRL publisher draws numbers from the same ledger sequence: only growth counts.
check "the next CRL has a higher number ($(crl_number "$T/crl1.pem"), then $(crl_number "$T/crl2.pem"))" \
    [ "$((16#$(crl_number "$T/crl2.pem")))" -gt "$((16#$(crl_number "$T/crl1.pem")))" ]

cat "$T/ca/ca-chain.pem" > "$T/trust.pem"
check "openssl verify -crl_check rejects the revoked certificate" \
    bash -c "! openssl verify -crl_check -CAfile '$T/trust.pem' -CRLfile '$T/crl2.pem' '$T/drop.pem' 2>&1 | grep -q ': OK'"
check "and says why" bash -c "openssl verify -crl_check -CAfile '$T/trust.pem' -CRLfile '$T/crl2.pem' '$T/drop.pem' 2>&1 | grep -q 'certificate revoked'"
check "and accepts the others" openssl verify -crl_check -CAfile "$T/trust.pem" -CRLfile "$T/crl2.pem" "$T/keep.pem"

stop_estcad
finish
