#!/usr/bin/env bash
# Regenerates the seed corpus of fuzz_est_handler (tests/fuzz/corpus/fuzz_est_handler/) from
# real requests: CSRs made by openssl req, laid out in the harness's input format (see the
# head of fuzz_est_handler.c): one flags byte, then path, Content-Type, Authorization field,
# one extra header and the body, separated by '\n'. Credentials are never in a seed: flag
# "real" (bit 3) makes the harness send the demo user's, read from the appliance.
#   tests/fuzz/make_est_handler_corpus.sh [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/corpus/fuzz_est_handler}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# Flags byte: method GET 0 POST 1 HEAD 2 PUT 3 DELETE 4 OPTIONS 5 PATCH 6 TRACE 7; +8 the
# demo user's credentials, +16 Basic of the Authorization field, +24 the field as the header;
# +32 over the connection with a client certificate; +64 Expect: 100-continue; +128 no
# Content-Length when the body is empty.
GET=0 POST=1 HEAD=2 PUT=3 DELETE=4 OPTIONS=5
REAL=8 BASIC=16 RAW=24 CERT=32 EXPECT=64 NOLEN=128

# seed NAME FLAGS PATH CONTENT_TYPE AUTH_FIELD EXTRA_HEADER BODY_FILE|-
seed() {
    local name=$1 flags=$2 path=$3 type=$4 auth=$5 extra=$6 body=$7
    {
        printf "\\$(printf '%03o' "$flags")"
        printf '%s\n%s\n%s\n%s\n' "$path" "$type" "$auth" "$extra"
        [ "$body" = - ] || cat "$body"
    } >"$out/$name"
}

# csr NAME SUBJECT [openssl req args...]: $tmp/NAME.b64 (one line) and NAME.wrapped (CRLF, 64).
csr() {
    local name=$1 subject=$2
    shift 2
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null \
        -subj "$subject" -outform DER -out "$tmp/$name.der" "$@" 2>/dev/null
    base64 -w0 "$tmp/$name.der" >"$tmp/$name.b64"
    base64 -w64 "$tmp/$name.der" | sed 's/$/\r/' >"$tmp/$name.wrapped"
}

csr device "/CN=device-1/O=Test"
csr device_san "/CN=gw/O=Test" -addext "subjectAltName=DNS:gw.fuzz.example,IP:192.0.2.7"
csr client "/CN=estca-fuzz-client/O=estca-fuzz"
csr strict "/CN=a.fuzz.example" -addext "subjectAltName=DNS:a.fuzz.example" \
    -addext "keyUsage=digitalSignature" -addext "extendedKeyUsage=clientAuth"
csr ca_true "/CN=sub-ca" -addext "basicConstraints=critical,CA:TRUE"
openssl req -new -newkey rsa:2048 -nodes -keyout /dev/null -subj "/CN=rsa-device/O=Test" \
    -addext "subjectAltName=DNS:rsa.fuzz.example" -outform DER -out "$tmp/rsa.der" 2>/dev/null
base64 -w0 "$tmp/rsa.der" >"$tmp/rsa.b64"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null \
    -subj "/CN=b.fuzz.example" -addext "subjectAltName=DNS:b.fuzz.example" \
    -config <(printf '[req]\ndistinguished_name=dn\nattributes=attrs\n[dn]\n[attrs]\nchallengePassword=not-the-binding\n') \
    -outform DER -out "$tmp/challenge.der" 2>/dev/null
base64 -w0 "$tmp/challenge.der" >"$tmp/challenge.b64"
printf 'this is not base64!' >"$tmp/bad.b64"
head -c 9000 /dev/zero | tr '\0' 'A' >"$tmp/oversized"
printf 'MIIB' >"$tmp/short.b64"

est=/.well-known/est
p10=application/pkcs10
seed cacerts $GET $est/cacerts "" "" "" -
seed cacerts_label $GET $est/skg/cacerts "" "" "" -
seed cacerts_head $HEAD $est/cacerts "" "" "" -
seed cacerts_query $GET "$est/cacerts?x=1" "" "" "Accept: */*" -
seed csrattrs $GET $est/csrattrs "" "" "" -
seed csrattrs_strict $GET $est/strict/csrattrs "" "" "" -
seed enroll $((POST + REAL)) $est/simpleenroll $p10 "" "" "$tmp/device.b64"
seed enroll_san_wrapped $((POST + REAL)) $est/simpleenroll "$p10; charset=us-ascii" "" \
    "Content-Transfer-Encoding: base64" "$tmp/device_san.wrapped"
seed enroll_rsa $((POST + REAL)) $est/simpleenroll $p10 "" "" "$tmp/rsa.b64"
seed enroll_expect $((POST + REAL + EXPECT)) $est/simpleenroll $p10 "" "" "$tmp/device.b64"
seed enroll_no_auth $POST $est/simpleenroll $p10 "" "" "$tmp/device.b64"
seed enroll_wrong_user $((POST + BASIC)) $est/simpleenroll $p10 "alice:secret" "" "$tmp/device.b64"
seed enroll_raw_auth $((POST + RAW)) $est/simpleenroll $p10 "Basic Zm9vOmJhcg==" "" "$tmp/device.b64"
seed enroll_bearer $((POST + RAW)) $est/simpleenroll $p10 "Bearer abc" "" "$tmp/device.b64"
seed enroll_media $((POST + REAL)) $est/simpleenroll "text/plain" "" "" "$tmp/device.b64"
seed enroll_no_media $((POST + REAL)) $est/simpleenroll "" "" "" "$tmp/device.b64"
seed enroll_bad_b64 $((POST + REAL)) $est/simpleenroll $p10 "" "" "$tmp/bad.b64"
seed enroll_short $((POST + REAL)) $est/simpleenroll $p10 "" "" "$tmp/short.b64"
seed enroll_oversized $((POST + REAL)) $est/simpleenroll $p10 "" "" "$tmp/oversized"
seed enroll_empty $((POST + REAL + NOLEN)) $est/simpleenroll $p10 "" "" -
seed enroll_expect_other $((POST + REAL)) $est/simpleenroll $p10 "" "Expect: 200-ok" "$tmp/device.b64"
seed enroll_get $((GET + REAL)) $est/simpleenroll "" "" "" -
seed enroll_percent $((POST + REAL)) "$est/%73impleenroll" $p10 "" "" "$tmp/device.b64"
seed enroll_ca_true $((POST + REAL)) $est/strict/simpleenroll $p10 "" "" "$tmp/ca_true.b64"
seed enroll_strict $((POST + REAL)) $est/strict/simpleenroll $p10 "" "" "$tmp/strict.b64"
seed enroll_challenge $((POST + REAL)) $est/linked/simpleenroll $p10 "" "" "$tmp/challenge.b64"
seed enroll_unlinked $((POST + REAL)) $est/linked/simpleenroll $p10 "" "" "$tmp/device.b64"
seed enroll_manual $((POST + REAL)) $est/manual/simpleenroll $p10 "" "" "$tmp/device.b64"
seed reenroll $((POST + CERT)) $est/simplereenroll $p10 "" "" "$tmp/client.b64"
seed reenroll_other_name $((POST + CERT)) $est/simplereenroll $p10 "" "" "$tmp/device.b64"
seed reenroll_no_cert $POST $est/simplereenroll $p10 "" "" "$tmp/client.b64"
seed serverkeygen $((POST + REAL)) $est/skg/serverkeygen $p10 "" "" "$tmp/device_san.b64"
seed serverkeygen_cert $((POST + REAL + CERT)) $est/skg/serverkeygen $p10 "" "" "$tmp/client.b64"
seed serverkeygen_no_auth $POST $est/skg/serverkeygen $p10 "" "" "$tmp/device_san.b64"
seed enroll_label_no_auth $POST $est/skg/simpleenroll $p10 "" "" "$tmp/device.b64"
seed serverkeygen_off $((POST + REAL)) $est/serverkeygen $p10 "" "" "$tmp/device.b64"
seed fullcmc $((POST + REAL)) $est/fullcmc "application/pkcs7-mime; smime-type=CMC-request" "" "" "$tmp/device.b64"
seed no_label $GET $est/nosuchlabel/cacerts "" "" "" -
seed dotdot $GET "$est/../../etc/passwd" "" "" "" -
seed root $GET / "" "" "" -
seed delete $DELETE $est/cacerts "" "" "" -
seed options $OPTIONS "$est/simpleenroll" "" "" "" -
seed put_enroll $((PUT + REAL)) $est/simpleenroll $p10 "" "" "$tmp/device.b64"
echo "$(find "$out" -type f | wc -l) seeds in $out"
