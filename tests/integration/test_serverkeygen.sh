#!/usr/bin/env bash
# /serverkeygen (RFC 7030 §4.4) with curl + openssl: the answer is multipart/mixed with the
# device key as unencrypted PKCS#8 and the certificate as certs-only PKCS#7; the key is the
# certificate's, not the CSR's; the certificate chains and is in the ledger; a label without
# serverkeygen = yes answers 403, no credentials 401. Then estcad runs again through OpenSC's
# PKCS#11 spy, whose log shows that the token generated the pairs as session objects, wrapped
# the private keys out and destroyed the objects.
. "$(dirname "$0")/lib.sh"
provision
conf="$T/ca/estca.conf"
SPY=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so
[ -r "$SPY" ] || { echo "FAIL: $SPY missing (package opensc)"; exit 1; }

# [label:default] is the last section: serverkeygen goes there; label "plain" lacks it.
sed -i 's/^\[server\]$/[server]\ndefault_label = default/' "$conf"
cat >> "$conf" <<CONF
serverkeygen = yes

[label:plain]
ca = issuing
CONF
start_estcad

# serverkeygen CSR BASENAME: POST $T/BASENAME.b64 to PATH; the status; the response in $T/skg.*
serverkeygen() {
    curl -sS -o "$T/skg.body" -D "$T/skg.headers" -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" \
        -H "Content-Type: application/pkcs10" --data-binary @"$T/$2.b64" "${@:3}" "$URL$1" || true
}

# split_multipart OUT: the parts' contents of $T/skg.body as $T/OUT.1, $T/OUT.2 ..., their
# headers as $T/OUT.1.h ...
split_multipart() {
    local boundary
    boundary=$(tr -d '\r' < "$T/skg.headers" | sed -n 's/^[Cc]ontent-[Tt]ype: multipart\/mixed; *boundary=\(.*\)$/\1/p')
    [ -n "$boundary" ] || return 1
    tr -d '\r' < "$T/skg.body" | awk -v b="--$boundary" -v out="$T/$1" '
        $0 == b "--" { part = 0; next }
        $0 == b { n++; part = n; hdr = 1; next }
        part && hdr && $0 == "" { hdr = 0; next }
        part && hdr { print > (out "." part ".h"); next }
        part { print > (out "." part) }'
}

# An RSA CSR under the default label: the generated key follows the CSR's type and size.
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/dev1.key" -subj "/CN=dev1/O=Test" \
    -addext "subjectAltName=DNS:dev1.example.test" -outform DER -out "$T/dev1.der" 2>/dev/null
base64 -w0 "$T/dev1.der" > "$T/dev1.b64"
code=$(serverkeygen /serverkeygen dev1 --user "$CREDENTIALS")
check "POST /serverkeygen is 200 (got $code)" [ "$code" = 200 ]
check "multipart/mixed with a boundary" grep -qiE '^content-type: multipart/mixed; boundary=[0-9a-f]{32}' "$T/skg.headers"
check "the body splits into two parts" split_multipart dev1
check "part 1 is application/pkcs8" grep -qi '^content-type: application/pkcs8$' "$T/dev1.1.h"
check "part 2 is certs-only" grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only$' "$T/dev1.2.h"
check "the key part is one base64 line" [ "$(wc -l < "$T/dev1.1")" -eq 1 ]
base64 -d "$T/dev1.1" > "$T/dev1-new.der"
check "the key loads as a DER private key" openssl pkey -inform DER -in "$T/dev1-new.der" -noout
check "the key is PKCS#8 PrivateKeyInfo" openssl pkcs8 -inform DER -nocrypt -in "$T/dev1-new.der" -out /dev/null
openssl asn1parse -inform DER -in "$T/dev1-new.der" > "$T/dev1-new.asn1"
check "asn1parse: version, algorithm, OCTET STRING (not PKCS#1)" \
    bash -c "sed -n 2p '$T/dev1-new.asn1' | grep -q 'd=1.*INTEGER *:00' &&
             sed -n 3,4p '$T/dev1-new.asn1' | grep -q 'd=2.*OBJECT *:rsaEncryption' &&
             grep -q 'd=1.*OCTET STRING' '$T/dev1-new.asn1'"
check "the key is RSA 2048 like the CSR's" bash -c "openssl pkey -inform DER -in '$T/dev1-new.der' -noout -text | grep -q 'Private-Key: (2048 bit'"
base64 -d "$T/dev1.2" | openssl pkcs7 -inform DER -print_certs -out "$T/dev1.pem"
check "exactly one certificate" [ "$(grep -c 'BEGIN CERTIFICATE' "$T/dev1.pem")" -eq 1 ]
check "the certificate verifies against ca-chain.pem" openssl verify -CAfile "$T/ca/ca-chain.pem" "$T/dev1.pem"
check "the certificate's key is the generated key" \
    cmp <(openssl pkey -inform DER -in "$T/dev1-new.der" -pubout) <(openssl x509 -in "$T/dev1.pem" -noout -pubkey)
check "the certificate's key is not the CSR's" \
    bash -c "! cmp -s <(openssl pkey -in '$T/dev1.key' -pubout) <(openssl x509 -in '$T/dev1.pem' -noout -pubkey)"
openssl x509 -in "$T/dev1.pem" -noout -text > "$T/dev1.txt"
check "subject from the CSR" grep -q 'Subject: CN = dev1, O = Test' "$T/dev1.txt"
check "SAN from the CSR" grep -q 'DNS:dev1.example.test' "$T/dev1.txt"
serial=$(openssl x509 -in "$T/dev1.pem" -noout -serial | cut -d= -f2)
der_hex=$(openssl x509 -in "$T/dev1.pem" -outform DER | od -An -v -tx1 | tr -d ' \n')
ledger_hex=$(sqlite3 "$T/ca/ledger.sqlite" "SELECT lower(hex(der)) FROM certificates WHERE upper(serial) = upper('$serial');")
check "the certificate is in the ledger, byte for byte" [ "$der_hex" = "$ledger_hex" ]

# An EC P-256 CSR: an EC P-256 key comes back.
make_csr dev2
code=$(serverkeygen /default/serverkeygen dev2 --user "$CREDENTIALS")
check "POST /default/serverkeygen is 200 (got $code)" [ "$code" = 200 ]
split_multipart dev2 || true
base64 -d "$T/dev2.1" > "$T/dev2-new.der" 2>/dev/null || true
check "EC CSR: the key is EC P-256" bash -c "openssl pkey -inform DER -in '$T/dev2-new.der' -noout -text | grep -q 'NIST CURVE: P-256'"
base64 -d "$T/dev2.2" | openssl pkcs7 -inform DER -print_certs -out "$T/dev2.pem" 2>/dev/null || true
check "EC: the certificate's key is the generated key" \
    cmp <(openssl pkey -inform DER -in "$T/dev2-new.der" -pubout) <(openssl x509 -in "$T/dev2.pem" -noout -pubkey)

# Refusals.
code=$(serverkeygen /plain/serverkeygen dev2 --user "$CREDENTIALS")
check "a label without serverkeygen answers 403 (got $code)" [ "$code" = 403 ]
code=$(serverkeygen /serverkeygen dev2)
check "no credentials answer 401 (got $code)" [ "$code" = 401 ]
code=$(serverkeygen /serverkeygen dev2 --user "$DEMO_USER:wrong")
check "a wrong password answers 401 (got $code)" [ "$code" = 401 ]

stop_estcad

# Through the spy. It leaks its function lists at exit (LeakSanitizer in an ASan build sees
# them in the unloaded module), so leak detection is off for this run only.
sed -i "s|^module = .*|module = $SPY|" "$conf"
export PKCS11SPY=/usr/lib/softhsm/libsofthsm2.so PKCS11SPY_OUTPUT="$T/spy.log"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" start_estcad
check "estcad works through the PKCS#11 spy" grep -q 'C_Login' "$T/spy.log"
code=$(http_status GET /cacerts)
check "GET /cacerts through the spy is 200" [ "$code" = 200 ]
code=$(serverkeygen /serverkeygen dev1 --user "$CREDENTIALS")
check "spy: RSA serverkeygen is 200 (got $code)" [ "$code" = 200 ]
code=$(serverkeygen /serverkeygen dev2 --user "$CREDENTIALS")
check "spy: EC serverkeygen is 200 (got $code)" [ "$code" = 200 ]
stop_estcad

# The spy's log: the token generated the pair as session objects (CKA_TOKEN False), wrapped
# the private key and destroyed the objects; nothing was generated as a token object.
check "C_GenerateKeyPair was called" grep -q 'C_GenerateKeyPair' "$T/spy.log"
awk '/C_GenerateKeyPair/{p=1} p&&/^[0-9]+: C_/&&!/C_GenerateKeyPair/{p=0} p' "$T/spy.log" > "$T/spy-gen.log"
check "the pairs were made with CKA_TOKEN False" grep -q 'CKA_TOKEN.*False' "$T/spy-gen.log"
check "no pair was made with CKA_TOKEN True" bash -c "! grep -q 'CKA_TOKEN.*True' '$T/spy-gen.log'"
check "C_WrapKey was called" grep -q 'C_WrapKey' "$T/spy.log"
check "C_DestroyObject was called 6 times (2 requests x 3 objects)" \
    [ "$(grep -c 'C_DestroyObject' "$T/spy.log")" -eq 6 ]
finish
