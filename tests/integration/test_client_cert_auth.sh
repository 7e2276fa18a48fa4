#!/usr/bin/env bash
# TLS client-certificate authentication per label (issue 5 items 1 and 5): a manufacturer's
# IDevID CA as a label's client_ca with its CRL, cert_auth = yes letting a device enroll with
# its certificate alone (only for its own subject and SANs), a revoked IDevID and a revoked
# certificate of this CA refused, a missing or expired CRL failing closed, cert_auth off
# leaving the certificate unused (401). RAs: a certificate from ra_ca with id-kp-cmcRA enrolls
# another subject, also with a CSR linked to another TLS connection on a pop_linking = required
# label (RFC 7030 §3.7), and the audit record says the comparison was skipped; without the
# EKU it is refused (403). That a revoked certificate cannot re-enroll is test_reenroll.sh's
# and test_revocation.sh's.
. "$(dirname "$0")/lib.sh"
: "${ESTCA_POP_CLIENT:?ESTCA_POP_CLIENT must name the estca-pop-client binary}"
provision
conf="$T/ca/estca.conf"
P=$T/pki
mkdir -p "$P"

# ---- a manufacturer CA (IDevIDs, with a CRL) and an RA CA, made with openssl ----
# ca_new NAME SUBJECT: self-signed CA $P/NAME.pem, key $P/NAME.key, and an `openssl ca` database.
ca_new() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$P/$1.key" \
        -subj "$2" -days 30 -out "$P/$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    mkdir -p "$P/$1.db"
    : > "$P/$1.db/index.txt"
    echo 01 > "$P/$1.db/crlnumber"
    cat > "$P/$1.cnf" <<CNF
[ca]
default_ca = this
[this]
database = $P/$1.db/index.txt
crlnumber = $P/$1.db/crlnumber
certificate = $P/$1.pem
private_key = $P/$1.key
default_md = sha256
default_crl_days = 7
CNF
}
# leaf CA NAME SUBJECT EKU: $P/NAME.pem and .key, signed by CA, recorded in its database.
leaf() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$P/$2.key" \
        -subj "$3" -out "$P/$2.csr" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=%s\n' "$4" > "$P/$2.ext"
    openssl x509 -req -in "$P/$2.csr" -CA "$P/$1.pem" -CAkey "$P/$1.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 30 -extfile "$P/$2.ext" -out "$P/$2.pem" 2>/dev/null
    local serial
    serial=$(openssl x509 -in "$P/$2.pem" -noout -serial | cut -d= -f2)
    printf 'V\t%s\t\t%s\tunknown\t%s\n' "$(date -u -d '+30 days' +%y%m%d%H%M%SZ)" "$serial" "$3" >> "$P/$1.db/index.txt"
}
crl() { # CA OUT [openssl ca args...]
    local ca=$1 out=$2
    shift 2
    openssl ca -config "$P/$ca.cnf" -gencrl -out "$out" "$@" 2>/dev/null
}

ca_new maker "/O=Maker/CN=Maker IDevID CA"
leaf maker idev1 "/O=Maker/CN=SN0001" clientAuth
leaf maker idev2 "/O=Maker/CN=SN0002" clientAuth
openssl ca -config "$P/maker.cnf" -revoke "$P/idev2.pem" -crl_reason keyCompromise 2>/dev/null
crl maker "$P/maker.crl.pem"
openssl crl -in "$P/maker.crl.pem" -outform DER -out "$P/maker.crl.der"
crl maker "$P/stale.crl.pem" -crlsec 1
ca_new other "/O=Other/CN=Other CA"
crl other "$P/other.crl.pem"
ca_new raca "/O=Example/CN=Example RA CA"
leaf raca ra1 "/O=Example/CN=ra1" "clientAuth,1.3.6.1.5.5.7.3.28"
leaf raca ra2 "/O=Example/CN=ra2" clientAuth
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$P/stray.key" \
    -subj "/O=Maker/CN=SN0001" -days 2 -out "$P/stray.pem" 2>/dev/null

sed -i 's|^\[server\]$|[server]\ndefault_label = default|' "$conf"
cat >> "$conf" <<CONF

[audit]
path = audit.log

[label:devices]
ca = issuing
cert_auth = yes
client_ca = $P/maker.pem
client_crl = $P/maker.crl.der
serverkeygen = yes

[label:nocertauth]
ca = issuing
client_ca = $P/maker.pem

[label:nocrl]
ca = issuing
cert_auth = yes
client_ca = $P/maker.pem
client_crl = $P/other.crl.pem

[label:stalecrl]
ca = issuing
cert_auth = yes
client_ca = $P/maker.pem
client_crl = $P/stale.crl.pem

[label:ra]
ca = issuing
ra_ca = $P/raca.pem
pop_linking = required

[label:raissue]
ca = issuing
extended_key_usage = clientAuth, cmcRA

[label:ownra]
ca = issuing
ra_ca = $T/ca/ca-chain.pem
CONF
sleep 1.1 # the stale CRL's nextUpdate passes
start_estcad

# post LABEL CSR-NAME [curl args...]: the status of /LABEL/simpleenroll; the body in $T/body.
post() {
    local label=$1 csr=$2
    shift 2
    http_status POST "/$label/simpleenroll" -H "Content-Type: application/pkcs10" --data-binary @"$T/$csr.b64" "$@"
}
with() { echo --cert "$1" --key "${1%.pem}.key"; }
ledger() { sqlite3 "$T/ca/ledger.sqlite" "$1"; }
issued_to() { # the certificate in $T/body as $T/NAME.pem
    base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/$1.pem" 2>/dev/null
}

# ---- a device with its IDevID alone ----
make_csr sn1 -subj "/O=Maker/CN=SN0001"
code=$(post devices sn1 $(with "$P/idev1.pem"))
check "an IDevID of client_ca alone enrolls its own subject: 200 (got $code)" [ "$code" = 200 ]
issued_to ldev1
check "  the certificate verifies and carries the IDevID's subject" \
    bash -c "openssl verify -CAfile '$T/ca/ca-chain.pem' '$T/ldev1.pem' >/dev/null &&
             openssl x509 -in '$T/ldev1.pem' -noout -subject | grep -q 'O = Maker, CN = SN0001'"
check "  the ledger names the certificate's RFC 2253 subject as requester" \
    [ "$(ledger "SELECT requester FROM certificates WHERE serial = '$(openssl x509 -in "$T/ldev1.pem" -noout -serial | cut -d= -f2)'")" = "cert:CN=SN0001,O=Maker" ]

make_csr other -subj "/O=Maker/CN=SN9999"
code=$(post devices other $(with "$P/idev1.pem"))
check "the IDevID cannot enroll another subject: 403 (got $code)" [ "$code" = 403 ]
check "  the reason says own subject" grep -q 'own subject' "$T/body"
make_csr extrasan -subj "/O=Maker/CN=SN0001" -addext "subjectAltName=DNS:evil.example.test"
code=$(post devices extrasan $(with "$P/idev1.pem"))
check "nor a subjectAltName its certificate lacks: 403 (got $code)" [ "$code" = 403 ]

make_csr sn2 -subj "/O=Maker/CN=SN0002"
code=$(post devices sn2 $(with "$P/idev2.pem"))
check "an IDevID revoked by client_crl: 403 (got $code)" [ "$code" = 403 ]
check "  the reason says revoked" grep -q 'revoked' "$T/body"
code=$(post devices sn1 $(with "$P/stray.pem"))
check "a certificate of no trusted CA, without credentials: 401 (got $code)" [ "$code" = 401 ]
check "  the reason says it is not accepted" grep -q 'not accepted by label devices' "$T/body"
code=$(post nocrl sn1 $(with "$P/idev1.pem"))
check "client_crl without a CRL of the IDevID's CA fails closed: 401 (got $code)" [ "$code" = 401 ]
check "  the reason says the CRL is missing" grep -qi 'unable to get certificate CRL' "$T/body"
code=$(post stalecrl sn1 $(with "$P/idev1.pem"))
check "an expired CRL fails closed: 401 (got $code)" [ "$code" = 401 ]
check "  the reason says the CRL has expired" grep -qi 'CRL has expired' "$T/body"
code=$(post nocertauth sn1 $(with "$P/idev1.pem"))
check "cert_auth off: the certificate alone is not enough: 401 (got $code)" [ "$code" = 401 ]

# Both a certificate and a password: the certificate decides; a password alone still works.
code=$(post devices sn1 $(with "$P/idev1.pem") --user "$CREDENTIALS")
check "certificate and password: 200 (got $code)" [ "$code" = 200 ]
issued_to both
check "  and the certificate is the requester" \
    [ "$(ledger "SELECT requester FROM certificates WHERE serial = '$(openssl x509 -in "$T/both.pem" -noout -serial | cut -d= -f2)'")" = "cert:CN=SN0001,O=Maker" ]
make_csr basic
code=$(post devices basic --user "$CREDENTIALS")
check "HTTP Basic alone on a cert_auth label: 200 (got $code)" [ "$code" = 200 ]
code=$(post devices basic)
check "nothing at all: 401 (got $code)" [ "$code" = 401 ]

# /serverkeygen by certificate too.
code=$(http_status POST /devices/serverkeygen -H "Content-Type: application/pkcs10" --data-binary @"$T/sn1.b64" \
    $(with "$P/idev1.pem"))
check "/serverkeygen with the IDevID alone: 200 (got $code)" [ "$code" = 200 ]

# ---- this CA's own certificate, checked against the ledger ----
cp "$T/sn1.key" "$T/ldev1.key"
make_csr again -subj "/O=Maker/CN=SN0001"
code=$(post devices again $(with "$T/ldev1.pem"))
check "a certificate of the label's own CA enrolls its own subject: 200 (got $code)" [ "$code" = 200 ]
"$ESTCA" cert revoke --config "$conf" --reason keyCompromise "$(openssl x509 -in "$T/ldev1.pem" -noout -serial | cut -d= -f2)" >/dev/null
code=$(post devices again $(with "$T/ldev1.pem"))
check "once revoked in the ledger it cannot enroll: 403 (got $code)" [ "$code" = 403 ]
check "  the reason says revoked" grep -q 'revoked' "$T/body"

# ---- RAs (RFC 7030 §3.7) ----
make_csr dev42 -subj "/O=Example/CN=device42"
code=$(post ra dev42 $(with "$P/ra1.pem"))
check "an RA (id-kp-cmcRA) enrolls another subject on a pop_linking = required label: 200 (got $code)" [ "$code" = 200 ]
issued_to dev42
check "  for the device's subject" bash -c "openssl x509 -in '$T/dev42.pem' -noout -subject | grep -q 'CN = device42'"
code=$(post ra dev42 $(with "$P/ra2.pem"))
check "an ra_ca certificate without id-kp-cmcRA: 403 (got $code)" [ "$code" = 403 ]
check "  the reason names id-kp-cmcRA" grep -q 'cmcRA' "$T/body"
code=$(post ra dev42 --user "$CREDENTIALS")
check "HTTP Basic on the required label, without a binding: 400 (got $code)" [ "$code" = 400 ]
# An RA certificate this CA issued (RFC 7030 §3.7 "from the EST CA"), checked against the ledger.
make_csr ownra -subj "/O=Example/CN=ra-own"
code=$(post raissue ownra --user "$CREDENTIALS")
check "this CA issues an RA certificate (cmcRA) on label raissue: 200 (got $code)" [ "$code" = 200 ]
issued_to ownra
make_csr dev44 -subj "/O=Example/CN=device44"
code=$(post ownra dev44 $(with "$T/ownra.pem"))
check "an RA certificate of this CA enrolls another subject: 200 (got $code)" [ "$code" = 200 ]
cp "$T/sn1.key" "$T/both.key"
code=$(post ownra dev44 $(with "$T/both.pem"))
check "a device certificate of this CA (no cmcRA) is no RA: 403 (got $code)" [ "$code" = 403 ]
check "  the reason names id-kp-cmcRA" grep -q 'cmcRA' "$T/body"
"$ESTCA" cert revoke --config "$conf" --reason keyCompromise "$(openssl x509 -in "$T/ownra.pem" -noout -serial | cut -d= -f2)" >/dev/null
code=$(post ownra dev44 $(with "$T/ownra.pem"))
check "once revoked in the ledger the RA cannot enroll: 403 (got $code)" [ "$code" = 403 ]
code=$("$ESTCA_POP_CLIENT" --connect "127.0.0.1:$PORT" --cacert "$T/ca/tls-ca.pem" --path /.well-known/est/ra/simpleenroll \
    --cert "$P/ra1.pem" --key "$P/ra1.key" --subject "/O=Example/CN=device43" --value other-connection \
    --body-out "$T/body" 2>"$T/pop.log" || echo none)
check "an RA's CSR linked to another TLS connection: 200 (got $code)" [ "$code" = 200 ]
stop_estcad

log=$T/ca/audit.log
check "the audit records the RA's issuance and the skipped comparison" \
    grep -q '"requester":"ra:CN=ra1,O=Example".*"result":"issued".*"pop_linking":"not compared: RA request' "$log"
check "the audit records the refusal of the foreign subject" \
    grep -q '"event":"authorization".*"identity":"cert:CN=SN0001,O=Maker".*"result":"refused".*own subject' "$log"
check "the audit records the refused revoked IDevID" grep -q '"http_status":403.*revoked (client_crl)' "$log"
finish
