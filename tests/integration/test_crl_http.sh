#!/usr/bin/env bash
# CRL publication: estcad signs each CA's CRL on the token at start and again within seconds
# of a revocation, serves it over plain HTTP at the URL that issued certificates name in their
# CRL distribution point, and writes it to the CA's crl_file. openssl checks the signature and
# rejects the revoked certificate with it; the plain listener serves nothing but CRLs.
. "$(dirname "$0")/lib.sh"
provision
conf=$T/ca/estca.conf
crl_port=
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { crl_port=$p; break; }
done
crl_url="http://127.0.0.1:$crl_port/crl/issuing.crl"
sed -i "s|^\[server\]\$|[server]\ncrl_listen = 127.0.0.1:$crl_port|" "$conf"
sed -i "s|^\[ca:issuing\]\$|[ca:issuing]\ncrl_url = $crl_url\ncrl_file = issuing.crl\ncrl_validity_hours = 2|" "$conf"
start_estcad
wait_for_log() { for _ in $(seq 1 100); do grep -q "$1" "$T/estcad.log" && return 0; sleep 0.1; done; return 1; }
check "estcad signs the CRL at start" wait_for_log 'event=crl-signed ca=issuing'
check "and listens for CRL fetches on port $crl_port" grep -q "event=crl-listening.* port=$crl_port" "$T/estcad.log"

for name in keep drop; do
    make_csr "$name"
    curl -sS --fail --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
        --data-binary @"$T/$name.b64" "$URL/simpleenroll" | base64 -d |
        openssl pkcs7 -inform DER -print_certs -out "$T/$name.pem"
done
check "issued certificates name the CRL distribution point" \
    grep -qF "URI:$crl_url" <<<"$(openssl x509 -in "$T/keep.pem" -noout -ext crlDistributionPoints)"

fetch() { curl -sS -o "$T/fetched.crl" -D "$T/crl.headers" -w '%{http_code}' "$1" 2>/dev/null || echo 000; }
code=$(fetch "$crl_url")
check "GET $crl_url answers 200 (got $code)" [ "$code" = 200 ]
check "as application/pkix-crl" grep -qi '^Content-Type: application/pkix-crl' "$T/crl.headers"
check "its signature verifies with the issuing CA" \
    openssl crl -inform DER -in "$T/fetched.crl" -noout -CAfile "$T/ca/issuing-ca.pem" -verify
check "it lists nothing yet" bash -c "! openssl crl -inform DER -in '$T/fetched.crl' -noout -text | grep -q 'Serial Number'"
check "the same CRL is published in crl_file" cmp -s "$T/fetched.crl" "$T/ca/issuing.crl"
first_number=$(openssl crl -inform DER -in "$T/fetched.crl" -noout -crlnumber | cut -d= -f2)

drop_serial=$(openssl x509 -in "$T/drop.pem" -noout -serial | cut -d= -f2)
"$ESTCA" cert revoke --config "$conf" --reason keyCompromise "$drop_serial" >/dev/null
listed=no
for _ in $(seq 1 100); do
    fetch "$crl_url" >/dev/null
    if openssl crl -inform DER -in "$T/fetched.crl" -noout -text 2>/dev/null | grep "Serial Number: $drop_serial" >/dev/null; then
        listed=yes
        break
    fi
    sleep 0.1
done
check "within seconds of estca cert revoke the served CRL lists the serial" [ "$listed" = yes ]
second_number=$(openssl crl -inform DER -in "$T/fetched.crl" -noout -crlnumber | cut -d= -f2)
check "with a higher CRL number ($first_number, then $second_number)" \
    [ "$((16#$second_number))" -gt "$((16#$first_number))" ]
check "crl_file follows" bash -c "sleep 0.5; cmp -s '$T/fetched.crl' '$T/ca/issuing.crl'"
openssl crl -inform DER -in "$T/fetched.crl" -out "$T/crl.pem"
check "openssl verify -crl_check rejects the revoked certificate" \
    bash -c "openssl verify -crl_check -CAfile '$T/ca/ca-chain.pem' -CRLfile '$T/crl.pem' '$T/drop.pem' 2>&1 | grep -q 'certificate revoked'"
check "and accepts the other" openssl verify -crl_check -CAfile "$T/ca/ca-chain.pem" -CRLfile "$T/crl.pem" "$T/keep.pem"
check "nextUpdate is crl_validity_hours away" \
    bash -c "[ \$(( \$(date -d \"\$(openssl crl -in '$T/crl.pem' -noout -nextupdate | cut -d= -f2)\" +%s) - \$(date +%s) )) -gt 7000 ]"

code=$(fetch "http://127.0.0.1:$crl_port/.well-known/est/cacerts")
check "the plain listener serves no EST operation (got $code)" [ "$code" = 404 ]
code=$(fetch "http://127.0.0.1:$crl_port/crl/nosuch.crl")
check "an unknown CA's CRL is 404 (got $code)" [ "$code" = 404 ]
stop_estcad
finish
