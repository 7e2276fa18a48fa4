#!/usr/bin/env bash
# strongSwan's pki, an independent EST client, fetches /cacerts and enrolls over HTTP Basic.
. "$(dirname "$0")/lib.sh"
provision
start_estcad

cd "$T"
check "pki --estca fetches the CA certificates" \
    pki --estca --url "$BASE" --cacert ca/tls-ca.pem --caout est-ca.pem --outform pem
check "pki stored the root" cmp <(openssl x509 -in est-ca.pem -outform DER) <(openssl x509 -in ca/root-ca.pem -outform DER)
check "pki stored the issuing CA" cmp <(openssl x509 -in est-ca-1.pem -outform DER) <(openssl x509 -in ca/issuing-ca.pem -outform DER)

pki --gen --type ecdsa --size 256 --outform pem > key.pem
pki --req --in key.pem --type ecdsa --dn "CN=pki-device, O=Test" --san pki-device.example.test --outform der > req.der
check "pki --est enrolls" pki --est --url "$BASE" --cacert ca/tls-ca.pem --cacert est-ca.pem --cacert est-ca-1.pem \
    --userpass "$CREDENTIALS" --in req.der --outform pem > cert.pem
check "the certificate verifies" openssl verify -CAfile ca/ca-chain.pem cert.pem
check "it carries pki's key" cmp <(pki --pub --in key.pem --outform pem) <(openssl x509 -in cert.pem -noout -pubkey)
check "it carries the requested SAN" bash -c "openssl x509 -in cert.pem -noout -ext subjectAltName | grep -q 'DNS:pki-device.example.test'"

# An RSA key through pki as well.
pki --gen --type rsa --size 2048 --outform pem > rsa.pem
pki --req --in rsa.pem --dn "CN=pki-rsa, O=Test" --outform der > rsa.der
check "pki --est enrolls an RSA key" pki --est --url "$BASE" --cacert ca/tls-ca.pem --cacert est-ca.pem --cacert est-ca-1.pem \
    --userpass "$CREDENTIALS" --in rsa.der --outform pem > rsa-cert.pem
check "the RSA certificate verifies" openssl verify -CAfile ca/ca-chain.pem rsa-cert.pem

check "pki with a wrong password fails" bash -c "! pki --est --url '$BASE' --cacert ca/tls-ca.pem --cacert est-ca.pem --cacert est-ca-1.pem \
    --userpass '$DEMO_USER:wrong-password' --in req.der --outform pem >/dev/null 2>&1"

stop_estcad
finish
