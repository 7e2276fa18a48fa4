#!/usr/bin/env bash
# Proof-of-possession linking (RFC 7030 §3.5, RFC 7894, RFC 9266): estca-pop-client puts its
# own TLS connection's channel binding (tls-exporter on TLS 1.3; tls-unique on TLS 1.2, from a
# full or a resumed handshake) into the CSR's challengePassword or estIdentityLinking and sends
# it on that connection. A label with pop_linking = required issues only then; a binding from
# another connection, garbage, a value of the wrong type or none at all is 400 with a reason,
# and so is a TLS 1.2 connection without extended master secret, whose tls-unique cannot be
# trusted. The default (verify-if-present) issues without one but refuses a wrong one; off
# ignores it. The same holds for /simplereenroll and /serverkeygen, and /csrattrs of a
# required label lists challengePassword and estIdentityLinking.
. "$(dirname "$0")/lib.sh"
: "${ESTCA_POP_CLIENT:?ESTCA_POP_CLIENT must name the estca-pop-client binary}"
provision
conf="$T/ca/estca.conf"
sed -i 's/^\[server\]$/[server]\ndefault_label = default/' "$conf"
cat >> "$conf" <<CONF

[label:linked]
ca = issuing
pop_linking = required
serverkeygen = yes

[label:lenient]
ca = issuing
pop_linking = verify-if-present

[label:unlinked]
ca = issuing
pop_linking = off

[label:legacy]
ca = issuing
csr_require_challenge_password = yes
CONF
start_estcad

# pop PATH [client options...]: the status (the client's failure prints "none"); the body in
# $T/body, the CSR's key in $T/last.key, the client's notes (one line each) in $T/client.log.
pop() {
    local path=$1
    shift
    "$ESTCA_POP_CLIENT" --connect "127.0.0.1:$PORT" --cacert "$T/ca/tls-ca.pem" \
        --path "/.well-known/est$path" --body-out "$T/body" --key-out "$T/last.key" "$@" \
        2>"$T/client.last" || echo none
    cat "$T/client.last" >> "$T/client.log"
}
enroll() { pop "$@" --credentials "$T/ca/demo.credentials"; }

# issued NAME: the 200 body's certificate in $T/NAME.pem, its key in $T/NAME.key; it verifies
# against the CA chain and holds the key of the CSR just sent.
issued() {
    cp "$T/last.key" "$T/$1.key"
    base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/$1.pem" 2>/dev/null &&
        openssl verify -CAfile "$T/ca/ca-chain.pem" "$T/$1.pem" >/dev/null 2>&1 &&
        cmp -s <(openssl x509 -in "$T/$1.pem" -noout -pubkey) <(openssl pkey -in "$T/$1.key" -pubout)
}
refused_because() { grep -q "$1" "$T/body"; }

# Correct bindings are accepted, each way a client can send them.
code=$(enroll /linked/simpleenroll --tls 1.3)
check "required, TLS 1.3, tls-exporter in challengePassword: 200 (got $code)" [ "$code" = 200 ]
check "  the certificate verifies and holds the CSR's key" issued tls13
check "  the client used TLS 1.3" grep -q 'TLSv1.3 .*binding=tls-exporter' "$T/client.last"
code=$(enroll /linked/simpleenroll --tls 1.2)
check "required, TLS 1.2 with EMS, tls-unique in challengePassword: 200 (got $code)" [ "$code" = 200 ]
check "  the certificate verifies and holds the CSR's key" issued tls12
check "  the client used TLS 1.2 with extended master secret" \
    grep -q 'TLSv1.2 extended-master-secret=yes resumed=no' "$T/client.last"
code=$(enroll /linked/simpleenroll --tls 1.2 --resume)
check "required, TLS 1.2 resumed session (the server's Finished): 200 (got $code)" [ "$code" = 200 ]
check "  the certificate verifies" issued tls12-resumed
check "  the session was resumed" grep -q 'TLSv1.2 .*resumed=yes' "$T/client.last"
code=$(enroll /linked/simpleenroll --tls 1.3 --resume)
check "required, TLS 1.3 resumed session: 200 (got $code)" [ "$code" = 200 ]
code=$(enroll /linked/simpleenroll --attribute identity-linking)
check "required, estIdentityLinking (RFC 7894): 200 (got $code)" [ "$code" = 200 ]
check "  the certificate verifies" issued linking
code=$(enroll /linked/simpleenroll --attribute both --tls 1.2)
check "required, both attributes: 200 (got $code)" [ "$code" = 200 ]

# Wrong, garbage or missing bindings on a required label.
for tls in 1.2 1.3; do
    code=$(enroll /linked/simpleenroll --tls $tls --value other-connection)
    check "required, TLS $tls, another connection's binding: 400 (got $code)" [ "$code" = 400 ]
    check "  the reason says linking failed" refused_because 'proof-of-possession linking failed'
done
code=$(enroll /linked/simpleenroll --attribute identity-linking --value other-connection)
check "required, another connection's binding in estIdentityLinking: 400 (got $code)" [ "$code" = 400 ]
check "  the reason names estIdentityLinking" refused_because 'estIdentityLinking is not base64'
code=$(enroll /linked/simpleenroll --value garbage)
check "required, garbage challengePassword: 400 (got $code)" [ "$code" = 400 ]
check "  the reason says linking failed" refused_because 'linking failed: the CSR.s challengePassword is not base64 of this TLS connection.s tls-exporter'
code=$(enroll /linked/simpleenroll --value not-a-string)
check "required, challengePassword that is not a DirectoryString: 400 (got $code)" [ "$code" = 400 ]
check "  the reason says so" refused_because 'not a DirectoryString'
code=$(enroll /linked/simpleenroll --attribute none)
check "required, no binding: 400 (got $code)" [ "$code" = 400 ]
check "  the reason says linking is required" refused_because 'proof-of-possession linking is required'
code=$(enroll /linked/simpleenroll --tls 1.2 --no-ems)
check "required, TLS 1.2 without extended master secret, its tls-unique: 400 (got $code)" [ "$code" = 400 ]
check "  the reason names extended master secret" refused_because 'extended master secret'
check "  the client really had no EMS" grep -q 'TLSv1.2 extended-master-secret=no' "$T/client.last"
check "no refused request was issued: 6 certificates in the ledger" \
    [ "$(sqlite3 "$T/ca/ledger.sqlite" 'SELECT COUNT(*) FROM certificates')" = 6 ]

# verify-if-present (the default) and off.
code=$(enroll /lenient/simpleenroll --attribute none)
check "verify-if-present, no binding: 200 (got $code)" [ "$code" = 200 ]
check "  the certificate verifies" issued lenient-none
code=$(enroll /lenient/simpleenroll --tls 1.2)
check "verify-if-present, correct binding: 200 (got $code)" [ "$code" = 200 ]
code=$(enroll /lenient/simpleenroll --value other-connection)
check "verify-if-present, another connection's binding: 400 (got $code)" [ "$code" = 400 ]
check "  the reason says linking failed" refused_because 'proof-of-possession linking failed'
code=$(enroll /simpleenroll --value garbage --tls 1.2)
check "the default label verifies too: garbage is 400 (got $code)" [ "$code" = 400 ]
code=$(enroll /lenient/simpleenroll --tls 1.2 --no-ems --attribute none)
check "verify-if-present, no EMS and no binding: 200 (got $code)" [ "$code" = 200 ]
code=$(enroll /unlinked/simpleenroll --value other-connection)
check "off: another connection's binding is ignored: 200 (got $code)" [ "$code" = 200 ]
check "  the certificate verifies" issued unlinked

# /simplereenroll with the certificate issued above as the TLS client certificate.
code=$(pop /linked/simplereenroll --cert "$T/tls13.pem" --key "$T/tls13.key")
check "re-enroll on a required label with the binding: 200 (got $code)" [ "$code" = 200 ]
check "  the certificate verifies" issued reenrolled
code=$(pop /linked/simplereenroll --cert "$T/tls13.pem" --key "$T/tls13.key" --value other-connection)
check "re-enroll with another connection's binding: 400 (got $code)" [ "$code" = 400 ]
check "  the reason says linking failed" refused_because 'proof-of-possession linking failed'
code=$(pop /linked/simplereenroll --cert "$T/tls13.pem" --key "$T/tls13.key" --attribute none)
check "re-enroll without a binding: 400 (got $code)" [ "$code" = 400 ]

# /serverkeygen: the CSR's key is ignored, its linking is not.
code=$(enroll /linked/serverkeygen)
check "serverkeygen on a required label with the binding: 200 (got $code)" [ "$code" = 200 ]
check "  the answer holds the key" grep -q 'Content-Type: application/pkcs8' "$T/body"
code=$(enroll /linked/serverkeygen --attribute none)
check "serverkeygen without a binding: 400 (got $code)" [ "$code" = 400 ]
check "  the reason says linking is required" refused_because 'linking is required'
code=$(enroll /linked/serverkeygen --value garbage)
check "serverkeygen with garbage: 400 (got $code)" [ "$code" = 400 ]

# /csrattrs: a required label lists both attributes (RFC 8951 §4); the others nothing.
csrattrs_objects() { # label: the OIDs /label/csrattrs lists
    http_status GET "/$1/csrattrs" >/dev/null
    base64 -d "$T/body" | openssl asn1parse -inform DER |
        awk -F: '/OBJECT/ {gsub(/ /, "", $NF); print $NF}' | paste -sd, -
}
objects=$(csrattrs_objects linked)
check "/linked/csrattrs lists challengePassword and estIdentityLinking ($objects)" \
    [ "$objects" = "challengePassword,1.2.840.113549.1.9.16.2.58" ]
objects=$(csrattrs_objects legacy)
check "csr_require_challenge_password = yes is pop_linking = required: /legacy/csrattrs ($objects)" \
    [ "$objects" = "challengePassword,1.2.840.113549.1.9.16.2.58" ]
code=$(enroll /legacy/simpleenroll --attribute none)
check "  and enrolling there without a binding is 400 (got $code)" [ "$code" = 400 ]
code=$(http_status GET /lenient/csrattrs)
check "/lenient/csrattrs is 204: nothing is required (got $code)" [ "$code" = 204 ]

# curl, which cannot link, still enrolls where linking is not required.
make_csr curl-plain
code=$(http_status POST /lenient/simpleenroll -H "Content-Type: application/pkcs10" \
    --user "$CREDENTIALS" --data-binary @"$T/curl-plain.b64")
check "curl without a binding on verify-if-present: 200 (got $code)" [ "$code" = 200 ]
code=$(http_status POST /linked/simpleenroll -H "Content-Type: application/pkcs10" \
    --user "$CREDENTIALS" --data-binary @"$T/curl-plain.b64")
check "curl without a binding on required: 400 (got $code)" [ "$code" = 400 ]
check "  the refusal is text/plain" grep -qi '^content-type: text/plain' "$T/headers"
check "  the reason says linking is required" refused_because 'proof-of-possession linking is required'

check "estcad logged the refusals with their reason" \
    grep -q 'status=400 .*reason="proof-of-possession linking failed' "$T/estcad.log"
stop_estcad
finish
