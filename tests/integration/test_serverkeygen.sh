#!/usr/bin/env bash
# /serverkeygen (RFC 7030 §4.4) with curl + openssl: the answer is multipart/mixed with the
# device key as unencrypted PKCS#8 and the certificate as certs-only PKCS#7; the key is the
# certificate's, not the CSR's; the certificate chains and is in the ledger; a label without
# serverkeygen = yes answers 403, no credentials 401. A CSR whose AsymmetricDecryptKeyIdentifier
# names the TLS client certificate's key (EC and RSA) gets the key as EnvelopedData for that
# certificate of SignedData by the CA of an RFC 5958 key package (§4.4.1.2, §4.4.2); a key the
# server lacks answers 400 and issues nothing. Then estcad runs again through OpenSC's
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


# An RSA CSR under the default label: the generated key follows the CSR's type and size.
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/dev1.key" -subj "/CN=dev1/O=Test" \
    -addext "subjectAltName=DNS:dev1.example.test" -outform DER -out "$T/dev1.der" 2>/dev/null
base64 -w0 "$T/dev1.der" > "$T/dev1.b64"
code=$(serverkeygen /serverkeygen dev1 --user "$CREDENTIALS")
check "POST /serverkeygen is 200 (got $code)" [ "$code" = 200 ]
check "multipart/mixed with a boundary" grep -qiE '^content-type: multipart/mixed; boundary=[0-9a-f]{32}' "$T/skg.headers"
check "the body splits into two parts" split_multipart "$T/skg.headers" "$T/skg.body" dev1
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
split_multipart "$T/skg.headers" "$T/skg.body" dev2 || true
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

# ---- Encrypted keys (§4.4.1.2, §4.4.2) ----
# A client holding a key and its certificate (from /simpleenroll) presents it as the TLS client
# certificate and names it in the CSR's AsymmetricDecryptKeyIdentifier by its SKI.
ASYMMETRIC_KEY_ID=1.2.840.113549.1.9.16.2.54
SYMMETRIC_KEY_ID=2.16.840.1.101.2.1.5.66

# enroll_pem NAME: $T/NAME.pem, the certificate for $T/NAME.key (CSR $T/NAME.b64).
enroll_pem() {
    curl -sS --fail --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
        --data-binary @"$T/$1.b64" "$URL/simpleenroll" | base64 -d |
        openssl pkcs7 -inform DER -print_certs -out "$T/$1.pem"
}

# ski_hex CERT: its subjectKeyIdentifier in lower-case hex, "" without one.
ski_hex() {
    openssl x509 -in "$1" -noout -ext subjectKeyIdentifier 2>/dev/null | sed -n 2p | tr -d ' :' | tr 'A-F' 'a-f'
}

# key_id_csr NAME OID HEX [openssl req key args]: $T/NAME.der and .b64, a CSR for a new key
# $T/NAME.key whose attribute OID is the OCTET STRING HEX. openssl req writes attributes only as
# strings, so it writes a placeholder string of the same length; perl swaps in the OCTET
# STRING and the CertificationRequestInfo is signed again (SHA-256, as req signed it).
key_id_csr() {
    local name=$1 oid=$2 hex=$3
    shift 3
    printf '[req]\ndistinguished_name = dn\nattributes = attrs\nprompt = no\n[dn]\nCN = %s\nO = Test\n[attrs]\n%s = %s\n' \
        "$name" "$oid" "$(printf 'X%.0s' $(seq 1 $((${#hex} / 2))))" > "$T/$name.cnf"
    openssl req -new "$@" -nodes -keyout "$T/$name.key" -config "$T/$name.cnf" -outform DER \
        -out "$T/$name.unsigned.der" 2>/dev/null
    perl -e '
        my ($in, $key, $hex, $out) = @ARGV;
        open my $f, "<:raw", $in or die "$in: $!"; local $/; my $d = <$f>; close $f;
        my $v = pack "H*", $hex; my $n = length $v; die "identifier too long\n" if $n > 127;
        my $placeholder = quotemeta(chr($n) . ("X" x $n)); my $octets = "\x04" . chr($n) . $v;
        $d =~ s/[\x0c\x13]$placeholder/$octets/ or die "no placeholder\n";
        sub tlv { my ($o) = @_; my $l = ord substr($d, $o + 1, 1); return substr($d, $o, 2 + $l) if $l < 128;
                  my $k = $l & 127; my $m = 0; $m = $m * 256 + ord substr($d, $o + 2 + $_, 1) for 0 .. $k - 1;
                  return substr($d, $o, 2 + $k + $m) }
        sub der { my ($tag, $c) = @_; my $l = length $c; my $h = "";
                  if ($l < 128) { $h = chr $l } else { my $b = ""; while ($l) { $b = chr($l & 255) . $b; $l >>= 8 } $h = chr(128 | length $b) . $b }
                  return chr($tag) . $h . $c }
        my $hl = (ord substr($d, 1, 1)) < 128 ? 2 : 2 + ((ord substr($d, 1, 1)) & 127);
        my $info = tlv($hl); my $alg = tlv($hl + length $info);
        open my $i, ">:raw", "$out.info" or die; print $i $info; close $i;
        system("openssl", "dgst", "-sha256", "-sign", $key, "-out", "$out.sig", "$out.info") == 0 or die "signing\n";
        open my $s, "<:raw", "$out.sig" or die; my $sig = <$s>; close $s;
        open my $o, ">:raw", $out or die; print $o der(0x30, $info . $alg . der(0x03, "\0" . $sig)); close $o;
    ' "$T/$name.unsigned.der" "$T/$name.key" "$hex" "$T/$name.der"
    base64 -w0 "$T/$name.der" > "$T/$name.b64"
}

# cert_count: certificates in the ledger.
cert_count() { "$ESTCA" cert list --ledger "$T/ca/ledger.sqlite" --json | grep -c '^{' || true; }

# check_encrypted_key NAME CLIENT RECIPIENT_INFO: the last answer ($T/skg.*) carries the key
# encrypted for $T/CLIENT.pem: EnvelopedData (RECIPIENT_INFO: kari or ktri, AES-256-CBC) of
# SignedData by the issuing CA of a key package holding the key of the certificate part.
check_encrypted_key() {
    local name=$1 client=$2 kind=$3
    split_multipart "$T/skg.headers" "$T/skg.body" "$name" || true
    check "$name: part 1 is server-generated-key" \
        grep -qi '^content-type: application/pkcs7-mime; smime-type=server-generated-key$' "$T/$name.1.h"
    check "$name: part 2 is certs-only" grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only$' "$T/$name.2.h"
    check "$name: the key part is one base64 line" [ "$(wc -l < "$T/$name.1")" -eq 1 ]
    base64 -d "$T/$name.1" > "$T/$name-env.der" 2>/dev/null || true
    check "$name: the key part is not a plain private key" bash -c "! openssl pkey -inform DER -in '$T/$name-env.der' -noout 2>/dev/null"
    openssl cms -cmsout -print -inform DER -in "$T/$name-env.der" > "$T/$name-env.txt" 2>&1 || true
    check "$name: EnvelopedData" grep -q 'contentType: pkcs7-envelopedData' "$T/$name-env.txt"
    check "$name: of SignedData" \
        bash -c "grep -A1 'encryptedContentInfo:' '$T/$name-env.txt' | grep -q 'contentType: pkcs7-signedData'"
    check "$name: AES-256-CBC" grep -q 'algorithm: aes-256-cbc' "$T/$name-env.txt"
    check "$name: a $kind recipient" grep -q "d.$kind:" "$T/$name-env.txt"
    check "$name: openssl cms -decrypt with the client's key" \
        openssl cms -decrypt -inform DER -in "$T/$name-env.der" -recip "$T/$client.pem" -inkey "$T/$client.key" \
        -binary -out "$T/$name-signed.der"
    # -debug_decrypt: without it, openssl answers a key that fails to unwrap the content key
    # with a random one (its defence against padding oracles), and about one time in 256 that
    # key's AES-CBC output has valid padding and the command succeeds on garbage.
    check "$name: no other key decrypts it" bash -c "! openssl cms -decrypt -debug_decrypt -inform DER \
        -in '$T/$name-env.der' -inkey '$T/dev1.key' -binary -out /dev/null 2>/dev/null"
    openssl cms -cmsout -print -inform DER -in "$T/$name-signed.der" > "$T/$name-signed.txt" 2>&1 || true
    check "$name: the content is a key package (id-ct-KP-aKeyPackage)" \
        grep -q 'eContentType: .*(2.16.840.1.101.2.1.2.78.5)' "$T/$name-signed.txt"
    check "$name: the SignedData carries a certificate" \
        bash -c "grep -A1 '^    certificates:' '$T/$name-signed.txt' | grep -q 'd.certificate:'"
    # No -certfile: the signer's certificate must come from the message. The CA certificates
    # carry no digitalSignature, which openssl's default S/MIME purpose wants of a signer: the
    # chain and the signature are what is checked here.
    check "$name: the SignedData verifies against ca-chain.pem" \
        openssl cms -verify -inform DER -in "$T/$name-signed.der" -CAfile "$T/ca/ca-chain.pem" -purpose any \
        -binary -out "$T/$name-package.der" -signer "$T/$name-signer.pem"
    check "$name: signed by the issuing CA" \
        cmp <(openssl x509 -in "$T/$name-signer.pem" -outform DER) <(openssl x509 -in "$T/ca/issuing-ca.pem" -outform DER)
    openssl asn1parse -inform DER -in "$T/$name-package.der" > "$T/$name-package.txt" 2>&1 || true
    check "$name: the package is a SEQUENCE of one key" \
        bash -c "head -n1 '$T/$name-package.txt' | grep -q 'd=0.*SEQUENCE' && [ \$(grep -c 'd=1' '$T/$name-package.txt') -eq 1 ]"
    local header
    header=$(head -n1 "$T/$name-package.txt" | sed -n 's/.*hl= *\([0-9]*\).*/\1/p')
    tail -c +$((${header:-0} + 1)) "$T/$name-package.der" > "$T/$name-new.der" 2>/dev/null || true
    check "$name: the key in it is PKCS#8 PrivateKeyInfo" \
        openssl pkcs8 -inform DER -nocrypt -in "$T/$name-new.der" -out /dev/null
    base64 -d "$T/$name.2" 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out "$T/$name.pem" 2>/dev/null || true
    check "$name: the certificate verifies against ca-chain.pem" openssl verify -CAfile "$T/ca/ca-chain.pem" "$T/$name.pem"
    check "$name: the packaged key is the certificate's" \
        cmp <(openssl pkey -inform DER -in "$T/$name-new.der" -pubout 2>/dev/null) <(openssl x509 -in "$T/$name.pem" -noout -pubkey)
}

# An EC client.
make_csr ecclient
enroll_pem ecclient
ec_ski=$(ski_hex "$T/ecclient.pem")
check "the CA puts a subjectKeyIdentifier in the client's certificate" [ -n "$ec_ski" ]
key_id_csr skg-ec "$ASYMMETRIC_KEY_ID" "$ec_ski" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
check "the CSR with the identifier is well signed" openssl req -inform DER -in "$T/skg-ec.der" -verify -noout
check "the CSR carries the identifier as an OCTET STRING" \
    bash -c "openssl asn1parse -inform DER -in '$T/skg-ec.der' | grep -qi 'OCTET STRING *\[HEX DUMP\]:$ec_ski'"
before=$(cert_count)
code=$(serverkeygen /serverkeygen skg-ec --user "$CREDENTIALS" --cert "$T/ecclient.pem" --key "$T/ecclient.key")
check "EC client: encrypted serverkeygen is 200 (got $code)" [ "$code" = 200 ]
check_encrypted_key skg-ec ecclient kari
check "EC client: one certificate more in the ledger" [ "$(cert_count)" -eq $((before + 1)) ]

# An RSA client; the generated key follows the CSR (RSA 2048).
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/rsaclient.key" -subj "/CN=rsaclient/O=Test" \
    -outform DER -out "$T/rsaclient.der" 2>/dev/null
base64 -w0 "$T/rsaclient.der" > "$T/rsaclient.b64"
enroll_pem rsaclient
rsa_ski=$(ski_hex "$T/rsaclient.pem")
key_id_csr skg-rsa "$ASYMMETRIC_KEY_ID" "$rsa_ski" -newkey rsa:2048
code=$(serverkeygen /serverkeygen skg-rsa --user "$CREDENTIALS" --cert "$T/rsaclient.pem" --key "$T/rsaclient.key")
check "RSA client: encrypted serverkeygen is 200 (got $code)" [ "$code" = 200 ]
check_encrypted_key skg-rsa rsaclient ktri
check "RSA client: RSA-OAEP key transport" grep -q 'algorithm: rsaesOaep' "$T/skg-rsa-env.txt"
check "RSA client: the generated key is RSA 2048" \
    bash -c "openssl pkey -inform DER -in '$T/skg-rsa-new.der' -noout -text | grep -q 'Private-Key: (2048 bit'"

# A client certificate but no identifier: the key comes as plain PKCS#8, as before.
code=$(serverkeygen /serverkeygen dev2 --user "$CREDENTIALS" --cert "$T/ecclient.pem" --key "$T/ecclient.key")
check "no identifier: 200 (got $code)" [ "$code" = 200 ]
split_multipart "$T/skg.headers" "$T/skg.body" plain-with-cert || true
check "no identifier: part 1 is application/pkcs8" grep -qi '^content-type: application/pkcs8$' "$T/plain-with-cert.1.h"

# Keys the server lacks: 400 with the reason, and no certificate issued.
before=$(cert_count)
key_id_csr skg-unknown "$ASYMMETRIC_KEY_ID" "$(openssl rand -hex 20)" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
code=$(serverkeygen /serverkeygen skg-unknown --user "$CREDENTIALS" --cert "$T/ecclient.pem" --key "$T/ecclient.key")
check "an identifier that names no key answers 400 (got $code)" [ "$code" = 400 ]
check "... saying so" grep -q 'AsymmetricDecryptKeyIdentifier names no key' "$T/skg.body"
code=$(serverkeygen /serverkeygen skg-ec --user "$CREDENTIALS" --cert "$T/rsaclient.pem" --key "$T/rsaclient.key")
check "another client's identifier answers 400 (got $code)" [ "$code" = 400 ]
code=$(serverkeygen /serverkeygen skg-ec --user "$CREDENTIALS")
check "an identifier without a client certificate answers 400 (got $code)" [ "$code" = 400 ]
check "... asking for the certificate" grep -q 'TLS client certificate' "$T/skg.body"
key_id_csr skg-symmetric "$SYMMETRIC_KEY_ID" 0102030405060708 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
code=$(serverkeygen /serverkeygen skg-symmetric --user "$CREDENTIALS" --cert "$T/ecclient.pem" --key "$T/ecclient.key")
check "a symmetric DecryptKeyIdentifier answers 400 (got $code)" [ "$code" = 400 ]
code=$(serverkeygen /plain/serverkeygen skg-unknown --user "$CREDENTIALS" --cert "$T/ecclient.pem" --key "$T/ecclient.key")
check "a label without serverkeygen answers 403 before looking at the identifier (got $code)" [ "$code" = 403 ]
check "the refusals issued no certificate" [ "$(cert_count)" -eq "$before" ]

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
