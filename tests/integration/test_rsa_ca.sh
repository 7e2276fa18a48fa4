#!/usr/bin/env bash
# The same enrollment with RSA keys on the token: RSA root and issuing CA, RSA TLS key kept on
# the token too (TLS_KEY_STORE=token), which TLS 1.3 uses with RSA-PSS computed by the token
# through estca's key proxy.
. "$(dirname "$0")/lib.sh"
ROOT_KEY_TYPE=rsa:3072 CA_KEY_TYPE=rsa:2048 TLS_KEY_TYPE=rsa:2048 TLS_KEY_STORE=token provision
start_estcad

check "the TLS key is on the token" grep -q 'never_extractable=true' \
    <<<"$("$ESTCA" key show --config "$T/ca/estca.conf" --key "pkcs11:token=estca;object=tls")"
check "and in no file" [ ! -e "$T/ca/tls.key" ]

check "issuing CA key is RSA" bash -c "openssl x509 -in '$T/ca/issuing-ca.pem' -noout -text | grep -q 'rsaEncryption'"
for tls in "--tlsv1.2 --tls-max 1.2" "--tlsv1.3"; do
    code=$(http_status GET /cacerts $tls)
    check "/cacerts over $tls with an RSA token key (got $code)" [ "$code" = 200 ]
done
make_csr rsa-device
code=$(http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" \
    --data-binary @"$T/rsa-device.b64")
check "enroll under an RSA CA (got $code)" [ "$code" = 200 ]
base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/rsa-device.pem"
check "certificate verifies" openssl verify -CAfile "$T/ca/ca-chain.pem" "$T/rsa-device.pem"
check "signed with sha256WithRSAEncryption" bash -c "openssl x509 -in '$T/rsa-device.pem' -noout -text | grep -q 'Signature Algorithm: sha256WithRSAEncryption'"

stop_estcad
finish
