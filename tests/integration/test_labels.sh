#!/usr/bin/env bash
# Two issuing CAs on one token behind two EST labels (RFC 7030 §3.2.2): each label serves its
# own /cacerts and issues from its own CA; the label-less path is the default label; /csrattrs
# lists what a label requires (RFC 8951 §4) or answers 204; an unknown label is 404; a label
# named after any of the six operations stops estcad at start.
. "$(dirname "$0")/lib.sh"
provision
uri='pkcs11:token=estca'
conf="$T/ca/estca.conf"

# CA "b": a P-384 key on the same token, signed by the same root.
"$ESTCA" key generate --config "$conf" --key "$uri;object=issuing-b" --type ec:P-384 >>"$T/provision.log" 2>&1
"$ESTCA" ca issuing --config "$conf" --key "$uri;object=issuing-b" \
    --subject "/CN=estca Issuing CA B/O=estca" --root-key "$uri;object=root-ca" \
    --root-cert "$T/ca/root-ca.pem" --out "$T/ca/issuing-b.pem" --chain-out "$T/ca/chain-b.pem" \
    >>"$T/provision.log" 2>&1

cp "$conf" "$T/estca.conf.orig"
sed -i 's/^\[server\]$/[server]\ndefault_label = b/' "$conf"
cat >> "$conf" <<CONF

[ca:b]
key = $uri;object=issuing-b
certificate = issuing-b.pem
chain = chain-b.pem

[label:a]
ca = issuing
csr_key_type = ec:P-384
csr_hash = sha384

[label:b]
ca = b
CONF
start_estcad

# /<label>/cacerts: the label's issuing CA and the root.
cacerts() { # cacerts PATH NAME: $T/NAME.pem from GET PATH
    local code
    code=$(http_status GET "$1")
    check "GET $1 is 200 (got $code)" [ "$code" = 200 ]
    base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/$2.pem"
}
cacerts /a/cacerts cacerts-a
cacerts /b/cacerts cacerts-b
cacerts /cacerts cacerts-none
for l in a b; do
    check "/$l/cacerts holds two certificates" [ "$(grep -c 'BEGIN CERTIFICATE' "$T/cacerts-$l.pem")" -eq 2 ]
    check "/$l/cacerts contains the root" pem_bundle_contains "$T/cacerts-$l.pem" "$T/ca/root-ca.pem"
done
check "/a/cacerts contains issuing CA a" pem_bundle_contains "$T/cacerts-a.pem" "$T/ca/issuing-ca.pem"
check "/b/cacerts contains issuing CA b" pem_bundle_contains "$T/cacerts-b.pem" "$T/ca/issuing-b.pem"
not() { ! "$@"; }
check "/a/cacerts lacks issuing CA b" not pem_bundle_contains "$T/cacerts-a.pem" "$T/ca/issuing-b.pem"
check "/b/cacerts lacks issuing CA a" not pem_bundle_contains "$T/cacerts-b.pem" "$T/ca/issuing-ca.pem"
check "label-less /cacerts is the default label's (b)" cmp -s "$T/cacerts-none.pem" "$T/cacerts-b.pem"

# /simpleenroll under each label: verifies against its own chain, not the other CA.
enroll() { # enroll PATH CSR OUT: the status; the certificate in $T/OUT.pem on 200
    local code
    code=$(http_status POST "$1" -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" \
        --data-binary @"$T/$2.b64")
    [ "$code" = 200 ] && base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/$3.pem"
    echo "$code"
}
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -keyout "$T/dev-a.key" \
    -subj "/CN=dev-a/O=Test" -sha384 -outform DER -out "$T/dev-a.der" 2>/dev/null
base64 -w0 "$T/dev-a.der" > "$T/dev-a.b64"
make_csr dev-b
make_csr dev-none
check "enroll under /a (P-384 CSR)" [ "$(enroll /a/simpleenroll dev-a cert-a)" = 200 ]
check "enroll under /b" [ "$(enroll /b/simpleenroll dev-b cert-b)" = 200 ]
check "enroll without a label" [ "$(enroll /simpleenroll dev-none cert-none)" = 200 ]
verify() { openssl verify -CAfile "$T/ca/root-ca.pem" -untrusted "$1" "$2" >/dev/null 2>&1; }
check "cert a verifies against /a/cacerts" verify "$T/cacerts-a.pem" "$T/cert-a.pem"
check "cert b verifies against /b/cacerts" verify "$T/cacerts-b.pem" "$T/cert-b.pem"
check "cert a does not verify against issuing CA b" not verify "$T/ca/issuing-b.pem" "$T/cert-a.pem"
check "cert b does not verify against issuing CA a" not verify "$T/ca/issuing-ca.pem" "$T/cert-b.pem"
check "cert a does not verify against /b/cacerts" not verify "$T/cacerts-b.pem" "$T/cert-a.pem"
check "label-less cert comes from CA b" verify "$T/ca/issuing-b.pem" "$T/cert-none.pem"
check "cert a issued by CA a" bash -c "openssl x509 -in '$T/cert-a.pem' -noout -issuer | grep -q 'estca Issuing CA,'"
check "cert b issued by CA b" bash -c "openssl x509 -in '$T/cert-b.pem' -noout -issuer | grep -q 'estca Issuing CA B'"
code=$(enroll /a/simpleenroll dev-b cert-wrong)
check "/a refuses a P-256 CSR (csr_key_type = ec:P-384) (got $code)" [ "$code" = 400 ]
check "the refusal names the required key" grep -q 'requires an EC P-384 key' "$T/body"

# /csrattrs: what label a requires; label b requires nothing.
code=$(http_status GET /a/csrattrs)
check "GET /a/csrattrs is 200 (got $code)" [ "$code" = 200 ]
check "/a/csrattrs content type" grep -qi '^content-type: application/csrattrs' "$T/headers"
check "/a/csrattrs body is one base64 line" [ "$(tr -d '\r\n' < "$T/body" | wc -c)" -eq "$(wc -c < "$T/body")" ]
base64 -d "$T/body" > "$T/csrattrs-a.der"
openssl asn1parse -inform DER -in "$T/csrattrs-a.der" > "$T/csrattrs-a.txt"
cat "$T/csrattrs-a.txt"
objects=$(awk -F: '/OBJECT/ {gsub(/ /, "", $NF); print $NF}' "$T/csrattrs-a.txt" | paste -sd, -)
check "/a/csrattrs lists ecPublicKey P-384, ecdsa-with-SHA384 ($objects)" \
    [ "$objects" = "id-ecPublicKey,secp384r1,ecdsa-with-SHA384" ]
check "/a/csrattrs: the curve is inside a SET of the key attribute" \
    bash -c "grep -A1 'id-ecPublicKey' '$T/csrattrs-a.txt' | grep -q 'cons: SET'"
# (challengePassword, i.e. pop_linking = required: test_channel_binding.sh)
check "/a/csrattrs is the RFC 8951 example less its extensionRequest and challengePassword" \
    [ "$(base64 -w0 "$T/csrattrs-a.der")" = "MB4wEgYHKoZIzj0CATEHBgUrgQQAIgYIKoZIzj0EAwM=" ]
code=$(http_status GET /b/csrattrs)
check "GET /b/csrattrs is 204 (got $code)" [ "$code" = 204 ]
check "204 has no body" [ ! -s "$T/body" ]
code=$(http_status GET /csrattrs)
check "label-less /csrattrs is the default's: 204 (got $code)" [ "$code" = 204 ]
for path in /nosuch/cacerts /nosuch/csrattrs /nosuch/simpleenroll; do
    code=$(http_status GET "$path")
    check "unknown label $path is 404 (got $code)" [ "$code" = 404 ]
done
stop_estcad

# A label named after an operation (§3.2.2: MUST NOT), any of the six: estcad refuses to start,
# and says why.
refused() { [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; } # exited by itself, not by timeout
for op in cacerts simpleenroll simplereenroll serverkeygen csrattrs fullcmc; do
    cp "$T/estca.conf.orig" "$conf"
    printf '\n[label:%s]\nca = issuing\n' "$op" >> "$conf"
    sed -i 's/^\[server\]$/[server]\ndefault_label = default/' "$conf"
    rc=0
    timeout 20 "$ESTCAD" -c "$conf" 2>"$T/refused.log" || rc=$?
    check "estcad exits non-zero for a label named $op (rc $rc)" refused
    check "the reason names the label" grep -q "label:$op.*may not be named after an EST operation" "$T/refused.log"
done
# Likewise an unknown csr_key_type, with file and line.
cp "$T/estca.conf.orig" "$conf"
printf 'csr_key_type = dsa:1024\n' >> "$conf"
rc=0
timeout 20 "$ESTCAD" -c "$conf" 2>"$T/refused.log" || rc=$?
check "estcad exits non-zero for csr_key_type = dsa:1024 (rc $rc)" refused
check "the reason has file:line" grep -q "estca.conf:$(wc -l < "$conf"): 'csr_key_type' must be one of" "$T/refused.log"
finish
