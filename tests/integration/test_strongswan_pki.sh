#!/usr/bin/env bash
# strongSwan's pki, an independent EST client, with every operation it supports: /cacerts,
# /simpleenroll over HTTP Basic, /simplereenroll with the certificate pki got (a rekey, then a
# renewal), and both again on a default label with approval = manual, where pki polls on
# 202 + Retry-After (--interval) while an operator approves in the background. pki cannot name
# a label (its path is fixed), so the manual label is made the default one.
. "$(dirname "$0")/lib.sh"
provision
start_estcad
ledger() { sqlite3 "$T/ca/ledger.sqlite" "$1"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
id_of() { ledger "SELECT id FROM certificates WHERE serial = '$(serial_of "$1")'"; }
replaces_of() { ledger "SELECT replaces FROM certificates WHERE serial = '$(serial_of "$1")'"; }
names_of() { openssl x509 -in "$1" -noout -subject -ext subjectAltName; }
same_names() { [ "$(names_of "$1")" = "$(names_of "$2")" ]; }
est() { pki --est --url "$BASE" --cacert ca/tls-ca.pem --cacert est-ca.pem --cacert est-ca-1.pem "$@"; }

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

# /simplereenroll: --cert/--key of the certificate pki got above. A new key (rekey)...
pki --gen --type ecdsa --size 256 --outform pem > key2.pem
pki --req --in key2.pem --type ecdsa --dn "CN=pki-device, O=Test" --san pki-device.example.test --outform der > req2.der
check "pki --est --cert --key rekeys" est --cert cert.pem --key key.pem --in req2.der --outform pem > cert2.pem
check "pki's request went to /simplereenroll" \
    grep -q 'path=/.well-known/est/simplereenroll status=200 .*requester="cert:/CN=pki-device/O=Test"' "$T/estcad.log"
check "the rekeyed certificate verifies" openssl verify -CAfile ca/ca-chain.pem cert2.pem
check "it carries the new key" cmp <(pki --pub --in key2.pem --outform pem) <(openssl x509 -in cert2.pem -noout -pubkey)
check "it keeps subject and subjectAltName" same_names cert.pem cert2.pem
check "the ledger records that it replaces the first one" [ "$(replaces_of cert2.pem)" = "$(id_of cert.pem)" ]
# ... then the same key again (renewal), authenticated by the rekeyed certificate.
pki --req --in key2.pem --type ecdsa --dn "CN=pki-device, O=Test" --san pki-device.example.test --outform der > req3.der
check "pki --est --cert --key renews with the same key" est --cert cert2.pem --key key2.pem --in req3.der --outform pem > cert3.pem
check "the renewed certificate verifies" openssl verify -CAfile ca/ca-chain.pem cert3.pem
check "it keeps the key" cmp <(openssl x509 -in cert2.pem -noout -pubkey) <(openssl x509 -in cert3.pem -noout -pubkey)
check "it is a new certificate" [ "$(serial_of cert3.pem)" != "$(serial_of cert2.pem)" ]
check "the ledger records that it replaces the rekeyed one" [ "$(replaces_of cert3.pem)" = "$(id_of cert2.pem)" ]

# ---- approval = manual: pki polls until an operator approves ----
stop_estcad
sed -i 's/^\[server\]$/[server]\ndefault_label = held/' ca/estca.conf
printf '\n[label:held]\nca = issuing\napproval = manual\nretry_after = 1\n' >> ca/estca.conf
start_estcad
polls() { grep -c "path=/.well-known/est/$1 status=202 .*label=held" "$T/estcad.log" || true; }
# approve_later OP CN: in the background, approves CN's pending request once pki has been
# answered 202 on OP twice (so it polled at least once).
approve_later() {
    local id=
    for _ in $(seq 1 150); do
        id=$("$ESTCA" request list --config ca/estca.conf |
            awk -v cn="(^|,)CN=$2(,|\$)" '$2 == "pending" && $4 == "held" && $6 ~ cn {print $1}')
        [ -n "$id" ] && [ "$(polls "$1")" -ge 2 ] && break
        sleep 0.2
    done
    [ -n "$id" ] && "$ESTCA" request approve --config ca/estca.conf "$id" >/dev/null
}

pki --gen --type ecdsa --size 256 --outform pem > held.key
pki --req --in held.key --type ecdsa --dn "CN=pki-held, O=Test" --san pki-held.example.test --outform der > held.der
approve_later simpleenroll pki-held &
approver=$!
rc=0
est --userpass "$CREDENTIALS" --in held.der --outform pem --interval 1 --maxpolltime 60 > held.pem 2>held.log || rc=$?
wait "$approver" || true
check "pki --est --interval 1 waits through the approval (exit $rc)" [ "$rc" -eq 0 ]
check "it was told 202 at least twice on /simpleenroll ($(polls simpleenroll))" [ "$(polls simpleenroll)" -ge 2 ]
check "its certificate verifies" openssl verify -CAfile ca/ca-chain.pem held.pem
check "it carries pki's key" cmp <(pki --pub --in held.key --outform pem) <(openssl x509 -in held.pem -noout -pubkey)

# Re-enrollment on the manual label waits for approval too.
pki --gen --type ecdsa --size 256 --outform pem > held2.key
pki --req --in held2.key --type ecdsa --dn "CN=pki-held, O=Test" --san pki-held.example.test --outform der > held2.der
approve_later simplereenroll pki-held &
approver=$!
rc=0
est --cert held.pem --key held.key --in held2.der --outform pem --interval 1 --maxpolltime 60 > held2.pem 2>held2.log || rc=$?
wait "$approver" || true
check "pki --est --cert --key --interval 1 waits through the approval (exit $rc)" [ "$rc" -eq 0 ]
check "it was told 202 at least twice on /simplereenroll ($(polls simplereenroll))" [ "$(polls simplereenroll)" -ge 2 ]
check "its certificate verifies" openssl verify -CAfile ca/ca-chain.pem held2.pem
check "it carries the new key" cmp <(pki --pub --in held2.key --outform pem) <(openssl x509 -in held2.pem -noout -pubkey)
check "the ledger records that it replaces the first one" [ "$(replaces_of held2.pem)" = "$(id_of held.pem)" ]

stop_estcad
finish
