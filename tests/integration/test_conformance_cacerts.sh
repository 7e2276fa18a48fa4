#!/usr/bin/env bash
# RFC 7030 §4.1.3 (tests/CONFORMANCE.md row 21): /cacerts holds the root and every certificate
# needed to chain an EST-issued certificate to it. Provisioning makes only root -> issuing CA,
# where "the issuing CA and the root" and "the whole chain" cannot be told apart; here an
# issuing CA whose key is on the token is certified by an intermediate of an external root
# (both made with openssl), so a label's /cacerts must hold three certificates, and a
# certificate issued there verifies with the root as the only trust anchor and /cacerts as the
# only other certificates, but not without the intermediate.
. "$(dirname "$0")/lib.sh"
provision
conf="$T/ca/estca.conf"
uri='pkcs11:token=estca;object=deep-ca'
days=(-days 30)
ca_ext() { # pathlen -> an extension file for a CA certificate
    printf 'basicConstraints=critical,CA:TRUE,pathlen:%s\nkeyUsage=critical,keyCertSign,cRLSign\n' "$1" >"$T/ext-$1.cnf"
    printf 'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >>"$T/ext-$1.cnf"
    echo "$T/ext-$1.cnf"
}
new_key_csr() { # name subject
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/$1.key" \
        -subj "$2" -out "$T/$1.csr" 2>/dev/null
}

# The external root and its intermediate: software keys, as an external CA would have.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/ext-root.key" \
    -subj "/CN=External Root/O=Test" "${days[@]}" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$T/ext-root.pem" 2>/dev/null
new_key_csr intermediate "/CN=External Intermediate/O=Test"
openssl x509 -req -in "$T/intermediate.csr" -CA "$T/ext-root.pem" -CAkey "$T/ext-root.key" -CAcreateserial \
    "${days[@]}" -extfile "$(ca_ext 1)" -out "$T/intermediate.pem" 2>/dev/null
# The issuing CA's key on the token; its public half certified by the intermediate.
"$ESTCA" key generate --config "$conf" --key "$uri" --type ec:P-256 >>"$T/provision.log" 2>&1
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label estca --read-object --type pubkey \
    --label deep-ca -o "$T/deep.pub.der" >>"$T/provision.log" 2>&1
openssl pkey -pubin -inform DER -in "$T/deep.pub.der" -out "$T/deep.pub.pem"
new_key_csr placeholder "/CN=Deep Issuing CA/O=Test" # only its names are used
openssl x509 -req -in "$T/placeholder.csr" -CA "$T/intermediate.pem" -CAkey "$T/intermediate.key" \
    -CAcreateserial -force_pubkey "$T/deep.pub.pem" "${days[@]}" -extfile "$(ca_ext 0)" \
    -out "$T/ca/deep.pem" 2>/dev/null
cat "$T/ca/deep.pem" "$T/intermediate.pem" "$T/ext-root.pem" > "$T/ca/deep-chain.pem"
check "the hierarchy verifies in openssl" \
    openssl verify -CAfile "$T/ext-root.pem" -untrusted "$T/intermediate.pem" "$T/ca/deep.pem"

sed -i 's/^\[server\]$/[server]\ndefault_label = default/' "$conf"
cat >> "$conf" <<CONF

[ca:deep]
key = $uri
certificate = deep.pem
chain = deep-chain.pem

[label:deep]
ca = deep
CONF
start_estcad

code=$(http_status GET /deep/cacerts)
check "GET /deep/cacerts: 200 (got $code)" [ "$code" = 200 ]
base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/deep-cacerts.pem"
check "/deep/cacerts holds three certificates" [ "$(grep -c 'BEGIN CERTIFICATE' "$T/deep-cacerts.pem")" -eq 3 ]
for cert in "$T/ca/deep.pem" "$T/intermediate.pem" "$T/ext-root.pem"; do
    check "/deep/cacerts contains $(openssl x509 -in "$cert" -noout -subject)" \
        pem_bundle_contains "$T/deep-cacerts.pem" "$cert"
done

make_csr leaf
code=$(http_status POST /deep/simpleenroll -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" \
    --data-binary @"$T/leaf.b64")
check "enrollment under /deep: 200 (got $code)" [ "$code" = 200 ]
base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/leaf.pem"
check "the certificate verifies with the root as trust anchor and /cacerts as the rest" \
    openssl verify -CAfile "$T/ext-root.pem" -untrusted "$T/deep-cacerts.pem" "$T/leaf.pem"
not() { ! "$@"; }
check "control: without the intermediate it does not" \
    not openssl verify -CAfile "$T/ext-root.pem" -untrusted "$T/ca/deep.pem" "$T/leaf.pem"

stop_estcad
finish
