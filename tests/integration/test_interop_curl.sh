#!/usr/bin/env bash
# curl + openssl against every EST operation, without a label and with one (RFC 7030 §3.2.2:
# service with and without the label): /cacerts, /csrattrs, /simpleenroll, /simplereenroll,
# /serverkeygen answer with the right media type and content, each certificate chains to the
# /cacerts of the path it came from and is recorded under that label; /fullcmc answers 501
# with a reason.
. "$(dirname "$0")/lib.sh"
provision
conf="$T/ca/estca.conf"
sed -i 's/^\[server\]$/[server]\ndefault_label = default/' "$conf"
# [label:default] is last: serverkeygen goes there; label "devices" also requires P-256 keys.
cat >> "$conf" <<CONF
serverkeygen = yes

[label:devices]
ca = issuing
serverkeygen = yes
csr_key_type = ec:P-256
CONF
start_estcad

header_is() { grep -qix "$1" <(tr -d '\r' < "$T/headers"); }
one_line() { [ "$(tr -d '\r\n' < "$T/body" | wc -c)" -eq "$(wc -c < "$T/body")" ]; }
certs_in() { grep -c 'BEGIN CERTIFICATE' "$1" || true; }
ledger() { sqlite3 "$T/ca/ledger.sqlite" "$1"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
chains() { openssl verify -CAfile "$T/ca/root-ca.pem" -untrusted "$1" "$2" >/dev/null; }
same_key() { cmp -s <(openssl pkey -in "$1" -pubout) <(openssl x509 -in "$2" -noout -pubkey); }
not() { ! "$@"; }
two_parts() { split_multipart "$T/headers" "$T/body" "$1" && [ -s "$T/$1.1" ] && [ -s "$T/$1.2" ]; }

for prefix in "" /devices; do
    label=${prefix#/}
    label=${label:-default}
    name=${label}-dev
    say="${prefix:-(no label)}"

    # /cacerts
    code=$(http_status GET "$prefix/cacerts")
    check "$say GET cacerts: 200 (got $code)" [ "$code" = 200 ]
    check "$say cacerts: application/pkcs7-mime" header_is 'content-type: application/pkcs7-mime'
    check "$say cacerts: one base64 line" one_line
    base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/$label-cacerts.pem"
    check "$say cacerts: the issuing CA and the root" [ "$(certs_in "$T/$label-cacerts.pem")" -eq 2 ]
    check "$say cacerts: contains the root" pem_bundle_contains "$T/$label-cacerts.pem" "$T/ca/root-ca.pem"

    # /csrattrs: "devices" requires a P-256 key, the default label nothing.
    code=$(http_status GET "$prefix/csrattrs")
    if [ "$label" = devices ]; then
        check "$say GET csrattrs: 200 (got $code)" [ "$code" = 200 ]
        check "$say csrattrs: application/csrattrs" header_is 'content-type: application/csrattrs'
        check "$say csrattrs: lists id-ecPublicKey with prime256v1" \
            bash -c "base64 -d '$T/body' | openssl asn1parse -inform DER | grep -A2 'id-ecPublicKey' | grep -q prime256v1"
    else
        check "$say GET csrattrs: 204, nothing required (got $code)" [ "$code" = 204 ]
        check "$say csrattrs: no body" [ ! -s "$T/body" ]
    fi

    # /simpleenroll
    make_csr "$name" -addext "subjectAltName=DNS:$name.example.test"
    code=$(http_status POST "$prefix/simpleenroll" -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" \
        --data-binary @"$T/$name.b64")
    check "$say POST simpleenroll: 200 (got $code)" [ "$code" = 200 ]
    check "$say simpleenroll: certs-only" header_is 'content-type: application/pkcs7-mime; smime-type=certs-only'
    base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/$name.pem"
    check "$say simpleenroll: exactly one certificate" [ "$(certs_in "$T/$name.pem")" -eq 1 ]
    check "$say simpleenroll: the CSR's key" same_key "$T/$name.key" "$T/$name.pem"
    check "$say simpleenroll: chains to its /cacerts" chains "$T/$label-cacerts.pem" "$T/$name.pem"
    check "$say simpleenroll: recorded under label $label" \
        [ "$(ledger "SELECT label FROM certificates WHERE serial = '$(serial_of "$T/$name.pem")'")" = "$label" ]

    # /simplereenroll with that certificate: a new key, the same names.
    make_csr "$name-rekey" -subj "/CN=$name/O=Test" -addext "subjectAltName=DNS:$name.example.test"
    code=$(http_status POST "$prefix/simplereenroll" -H "Content-Type: application/pkcs10" \
        --cert "$T/$name.pem" --key "$T/$name.key" --data-binary @"$T/$name-rekey.b64")
    check "$say POST simplereenroll: 200 (got $code)" [ "$code" = 200 ]
    check "$say simplereenroll: certs-only" header_is 'content-type: application/pkcs7-mime; smime-type=certs-only'
    base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/$name-rekey.pem"
    check "$say simplereenroll: exactly one certificate" [ "$(certs_in "$T/$name-rekey.pem")" -eq 1 ]
    check "$say simplereenroll: the new key" same_key "$T/$name-rekey.key" "$T/$name-rekey.pem"
    check "$say simplereenroll: chains to its /cacerts" chains "$T/$label-cacerts.pem" "$T/$name-rekey.pem"
    old_id=$(ledger "SELECT id FROM certificates WHERE serial = '$(serial_of "$T/$name.pem")'")
    check "$say simplereenroll: recorded as replacing the old certificate, under $label" \
        [ "$(ledger "SELECT replaces || ' ' || label FROM certificates WHERE serial = '$(serial_of "$T/$name-rekey.pem")'")" = "$old_id $label" ]

    # /serverkeygen
    make_csr "$name-skg"
    code=$(http_status POST "$prefix/serverkeygen" -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" \
        --data-binary @"$T/$name-skg.b64")
    check "$say POST serverkeygen: 200 (got $code)" [ "$code" = 200 ]
    check "$say serverkeygen: multipart/mixed in two parts" two_parts "$name-skg"
    check "$say serverkeygen: part 1 application/pkcs8" grep -qix 'content-type: application/pkcs8' "$T/$name-skg.1.h"
    check "$say serverkeygen: part 2 certs-only" \
        grep -qix 'content-type: application/pkcs7-mime; smime-type=certs-only' "$T/$name-skg.2.h"
    base64 -d "$T/$name-skg.1" 2>/dev/null | openssl pkey -inform DER -out "$T/$name-skg-new.key" 2>/dev/null || true
    base64 -d "$T/$name-skg.2" 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out "$T/$name-skg.pem" 2>/dev/null || true
    check "$say serverkeygen: the certificate is for the key sent" same_key "$T/$name-skg-new.key" "$T/$name-skg.pem"
    check "$say serverkeygen: not for the CSR's key" not same_key "$T/$name-skg.key" "$T/$name-skg.pem"
    check "$say serverkeygen: chains to its /cacerts" chains "$T/$label-cacerts.pem" "$T/$name-skg.pem"

    # /fullcmc is not offered.
    code=$(http_status POST "$prefix/fullcmc" -H "Content-Type: application/pkcs7-mime; smime-type=CMC-request" \
        --user "$CREDENTIALS" --data-binary @"$T/$name.b64")
    check "$say POST fullcmc: 501 (got $code)" [ "$code" = 501 ]
    check "$say fullcmc: a text/plain reason naming it" \
        bash -c "grep -qi '^content-type: text/plain' '$T/headers' && grep -q 'fullcmc' '$T/body'"
done

stop_estcad
finish
