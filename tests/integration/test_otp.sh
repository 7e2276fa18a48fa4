#!/usr/bin/env bash
# One-time enrollment codes (issue 5, item 6): `estca otp issue` prints a code; a device
# enrolls with it once, as the HTTP Basic password of user otp-N or in its CSR's otpChallenge
# (RFC 7894, UTF8String and PrintableString), on /simpleenroll and /serverkeygen; then the
# code is burnt, also across a restart of estcad. Refusals: a used, expired, revoked, wrong or
# unknown code 401; another subject, subjectAltName or label 403 (the code stays usable); a
# label without otp = yes takes none. Several requests racing with one code: exactly one
# certificate. The codes never appear in estcad's log, the audit log, the ledger, estcad's
# argv or a file others may read (passwords go to curl on stdin, never its argv).
. "$(dirname "$0")/lib.sh"
provision
conf="$T/ca/estca.conf"
ledger="$T/ca/ledger.sqlite"

# [label:default] is the last section: its keys first, then the other labels and the audit.
cat >> "$conf" <<CONF
otp = yes
serverkeygen = yes

[label:other]
ca = issuing
otp = yes

[label:plain]
ca = issuing

[audit]
path = audit.log
CONF
sed -i 's/^\[server\]$/[server]\ndefault_label = default/' "$conf"
umask 077 # CSRs holding codes stay private
start_estcad

CODES=()
# issue_code LABEL SUBJECT [estca args...]: sets ID and CODE (and remembers CODE).
issue_code() {
    local label=$1 subject=$2 out
    shift 2
    out=$("$ESTCA" otp issue --config "$conf" --label "$label" --subject "$subject" "$@")
    ID=$(sed -n 's/^id=//p' <<<"$out")
    CODE=$(sed -n 's/^code=//p' <<<"$out")
    CODES+=("$CODE")
    [ "$(sed -n 's/^user=//p' <<<"$out")" = "otp-$ID" ]
}

# basic_post PATH CSR USER CODE [curl args...]: the status of POSTing $T/CSR.b64 with HTTP
# Basic USER:CODE, handed to curl in a config on its stdin (never in argv).
basic_post() {
    local path=$1 csr=$2 user=$3 code=$4
    shift 4
    printf 'user = "%s:%s"\n' "$user" "$code" |
        http_status POST "$path" -K - -H "Content-Type: application/pkcs10" \
            --data-binary @"$T/$csr.b64" "$@"
}

# plain_post PATH CSR [curl args...]: no credentials (the CSR's otpChallenge may carry a code).
plain_post() {
    local path=$1 csr=$2
    shift 2
    http_status POST "$path" -H "Content-Type: application/pkcs10" --data-binary @"$T/$csr.b64" "$@"
}

# challenge_csr NAME CN CODE MASK [SAN]: EC key and CSR for /CN=CN/O=Test with CODE in
# otpChallenge, as string_mask MASK encodes it (utf8only: UTF8String; default:
# PrintableString). The openssl config holding the code is written by builtins, then removed.
challenge_csr() {
    local name=$1 cn=$2 code=$3 mask=$4 san=${5:-}
    {
        printf '[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n'
        printf 'string_mask = %s\n' "$mask"
        [ -z "$san" ] || printf 'req_extensions = ext\n[ext]\nsubjectAltName = %s\n' "$san"
        printf '[dn]\nCN = %s\nO = Test\n[attrs]\n1.2.840.113549.1.9.16.2.56 = %s\n' "$cn" "$code"
    } > "$T/$name.cnf"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$T/$name.key" -config "$T/$name.cnf" -outform DER -out "$T/$name.der" 2>/dev/null
    rm -f "$T/$name.cnf"
    base64 -w0 "$T/$name.der" > "$T/$name.b64"
}

issued_subject() {
    base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs 2>/dev/null |
        openssl x509 -noout -subject -nameopt RFC2253 2>/dev/null
}

# ---- HTTP Basic: user otp-N, the code as password; once. ----
check "estca otp issue prints id, user otp-ID and code" issue_code default "/CN=dev1/O=Test"
basic1=$ID code1=$CODE
check "the code is 32 base32 characters" grep -qxE '[A-Z2-7]{32}' <<<"$code1"
make_csr dev1
code=$(basic_post /simpleenroll dev1 "otp-$basic1" "$code1")
check "Basic otp-$basic1 with its code: 200 (got $code)" [ "$code" = 200 ]
check "the certificate is for /CN=dev1/O=Test" [ "$(issued_subject)" = "subject=O=Test,CN=dev1" ]
check "the ledger names the requester otp:$basic1" \
    [ "$(sqlite3 "$ledger" "SELECT COUNT(*) FROM certificates WHERE requester = 'otp:$basic1'")" = 1 ]
make_csr dev1
code=$(basic_post /simpleenroll dev1 "otp-$basic1" "$code1")
check "the same code again: 401 (got $code)" [ "$code" = 401 ]
check "the 401 does not say the code was used" bash -c "! grep -qi used '$T/body'"
check "estca otp list: used, with its certificate" \
    bash -c "'$ESTCA' otp list --config '$conf' | grep -qE '^$basic1 +used +default .* [0-9]+ +O=Test,CN=dev1\$'"
check "estca otp list --json: status used" \
    bash -c "'$ESTCA' otp list --config '$conf' --json | grep -q '\"id\":$basic1,.*\"status\":\"used\"'"
issue_code default "/CN=dev1/O=Test"
wrong=${CODE:0:31}A
[ "$wrong" != "$CODE" ] || wrong=${CODE:0:31}B
code=$(basic_post /simpleenroll dev1 "otp-$ID" "$wrong")
check "a wrong code: 401 (got $code)" [ "$code" = 401 ]
code=$(basic_post /simpleenroll dev1 "otp-99999" "$CODE")
check "a right code under another id: 401 (got $code)" [ "$code" = 401 ]
code=$(basic_post /simpleenroll dev1 "otp-$ID" "$(tr 'A-Z' 'a-z' <<<"$CODE")")
check "the code typed in lower case: 200 (got $code)" [ "$code" = 200 ]

# ---- Across restarts: a code issued while estcad runs, used once, refused after restart. ----
issue_code default "/CN=dev2/O=Test"
restart_id=$ID restart_code=$CODE
stop_estcad
start_estcad
make_csr dev2
code=$(basic_post /simpleenroll dev2 "otp-$restart_id" "$restart_code")
check "after a restart, a fresh code: 200 (got $code)" [ "$code" = 200 ]
stop_estcad
start_estcad
make_csr dev2
code=$(basic_post /simpleenroll dev2 "otp-$restart_id" "$restart_code")
check "after another restart, the same code: 401 (got $code)" [ "$code" = 401 ]

# ---- otpChallenge in the CSR, no Authorization header. ----
issue_code default "/CN=dev3/O=Test"
challenge_csr dev3 dev3 "$CODE" utf8only
check "dev3's otpChallenge is a UTF8String" \
    bash -c "openssl asn1parse -inform DER -in '$T/dev3.der' | grep -A2 ':1.2.840.113549.1.9.16.2.56' | grep -q UTF8STRING"
code=$(plain_post /simpleenroll dev3)
check "otpChallenge (UTF8String): 200 (got $code)" [ "$code" = 200 ]
check "the certificate is for /CN=dev3/O=Test" [ "$(issued_subject)" = "subject=O=Test,CN=dev3" ]
code=$(plain_post /simpleenroll dev3)
check "the same CSR again: 401 (got $code)" [ "$code" = 401 ]
issue_code default "/CN=dev4/O=Test"
challenge_csr dev4 dev4 "$CODE" default
check "dev4's otpChallenge is a PrintableString" \
    bash -c "openssl asn1parse -inform DER -in '$T/dev4.der' | grep -A2 ':1.2.840.113549.1.9.16.2.56' | grep -q PRINTABLESTRING"
code=$(plain_post /default/simpleenroll dev4)
check "otpChallenge (PrintableString) on /default: 200 (got $code)" [ "$code" = 200 ]
make_csr nocode
code=$(plain_post /simpleenroll nocode)
check "no credentials and no otpChallenge: 401 (got $code)" [ "$code" = 401 ]
check "... with a Basic challenge" grep -qi '^www-authenticate: basic' "$T/headers"
challenge_csr unknown dev4 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" utf8only
code=$(plain_post /simpleenroll unknown)
check "an unknown code in otpChallenge: 401 (got $code)" [ "$code" = 401 ]
code=$(plain_post /plain/simpleenroll dev4)
check "no credentials on a label without otp: 401 (got $code)" [ "$code" = 401 ]
# /csrattrs tells clients where the code goes (RFC 7894): only on labels that take codes.
code=$(http_status GET /other/csrattrs)
check "/other/csrattrs (otp = yes): 200 (got $code)" [ "$code" = 200 ]
check "... lists id-aa-otpChallenge" \
    bash -c "base64 -d '$T/body' | openssl asn1parse -inform DER | grep -q ':1.2.840.113549.1.9.16.2.56'"
code=$(http_status GET /plain/csrattrs)
check "/plain/csrattrs (no otp): nothing to list, 204 (got $code)" [ "$code" = 204 ]

# ---- Policy: subject, subjectAltName, label. A 403 leaves the code usable. ----
issue_code default "/CN=dev5/O=Test" --san DNS:dev5.example.test --san DNS:dev5b.example.test
san_id=$ID san_code=$CODE
make_csr wrong5
code=$(basic_post /simpleenroll wrong5 "otp-$san_id" "$san_code")
check "another subject: 403 (got $code)" [ "$code" = 403 ]
make_csr dev5 -subj "/CN=dev5/O=Test" -addext "subjectAltName=DNS:dev5.example.test,DNS:evil.example.test"
code=$(basic_post /simpleenroll dev5 "otp-$san_id" "$san_code")
check "a subjectAltName the code does not allow: 403 (got $code)" [ "$code" = 403 ]
check "... the reason names it" grep -q 'evil.example.test' "$T/body"
make_csr dev5 -subj "/CN=dev5/O=Test" -addext "subjectAltName=DNS:dev5b.example.test"
code=$(basic_post /simpleenroll dev5 "otp-$san_id" "$san_code")
check "after two 403s, the right subject and an allowed SAN: 200 (got $code)" [ "$code" = 200 ]
issue_code other "/CN=dev6/O=Test"
challenge_csr dev6 dev6 "$CODE" utf8only
code=$(plain_post /default/simpleenroll dev6)
check "a code of label other on label default: 403 (got $code)" [ "$code" = 403 ]
code=$(plain_post /other/simpleenroll dev6)
check "... on its own label: 200 (got $code)" [ "$code" = 200 ]
issue_code default "/CN=dev6/O=Test"
make_csr dev6
code=$(basic_post /plain/simpleenroll dev6 "otp-$ID" "$CODE")
check "Basic otp-N on a label without otp: 401 (got $code)" [ "$code" = 401 ]
check "estca refuses a code for a label without otp" \
    bash -c "! '$ESTCA' otp issue --config '$conf' --label plain --subject /CN=x >/dev/null 2>&1"

# ---- Expired and revoked codes: 401. ----
issue_code default "/CN=dev7/O=Test" --ttl 1
expired_id=$ID expired_code=$CODE
sleep 2
make_csr dev7
code=$(basic_post /simpleenroll dev7 "otp-$expired_id" "$expired_code")
check "an expired code (ttl 1, 2 s later): 401 (got $code)" [ "$code" = 401 ]
check "estca otp list: expired" \
    bash -c "'$ESTCA' otp list --config '$conf' | grep -qE '^$expired_id +expired '"
issue_code default "/CN=dev7/O=Test"
check "estca otp revoke" "$ESTCA" otp revoke --config "$conf" "$ID"
check "estca otp revoke again fails" bash -c "! '$ESTCA' otp revoke --config '$conf' $ID 2>/dev/null"
code=$(basic_post /simpleenroll dev7 "otp-$ID" "$CODE")
check "a revoked code: 401 (got $code)" [ "$code" = 401 ]
make_csr dev7
issue_code default "/CN=dev7/O=Test"
code=$(basic_post /simpleenroll dev7 "otp-$ID" "$CODE")
check "a fresh code after those: 200 (got $code)" [ "$code" = 200 ]

# ---- Server-side key generation for a keyless device. ----
issue_code default "/CN=keyless/O=Test"
make_csr keyless
code=$(basic_post /serverkeygen keyless "otp-$ID" "$CODE")
check "serverkeygen with Basic otp-N: 200 (got $code)" [ "$code" = 200 ]
check "... multipart with key and certificate" split_multipart "$T/headers" "$T/body" skg
check "... the key part is PKCS#8" grep -qi '^content-type: application/pkcs8' "$T/skg.1.h"
code=$(basic_post /serverkeygen keyless "otp-$ID" "$CODE")
check "serverkeygen with the same code: 401 (got $code)" [ "$code" = 401 ]
issue_code default "/CN=keyless2/O=Test"
challenge_csr keyless2 keyless2 "$CODE" utf8only
code=$(plain_post /serverkeygen keyless2)
check "serverkeygen with otpChallenge: 200 (got $code)" [ "$code" = 200 ]
rm -f "$T"/skg.*

# ---- Racing uses of one code: exactly one certificate. Each request comes from its own
# loopback address, so that the losers' failures do not throttle the others' source. ----
# race NAME PATH [curl args...]: POSTs $T/NAME.1.b64 .. $T/NAME.6.b64 to PATH at once;
# statuses in $T/NAME.*.status.
race() {
    local name=$1 path=$2 i pids=()
    shift 2
    for i in 1 2 3 4 5 6; do
        curl -sS -o /dev/null -w '%{http_code}\n' --cacert "$T/ca/tls-ca.pem" "$@" \
            --interface "127.0.0.$((10 + i))" -H "Content-Type: application/pkcs10" \
            --data-binary @"$T/$name.$i.b64" "$URL$path" > "$T/$name.$i.status" 2>/dev/null &
        pids+=($!)
    done
    wait "${pids[@]}" || true
}
count_status() { cat "$T/$1".*.status | grep -c "^$2\$" || true; }
# Keyless devices on /serverkeygen with RSA-2048 CSRs: the token generates an RSA-2048 key
# for each request admitted, which takes long enough that the six pass the code's check
# together and meet at its burning in the ledger, where one wins.
issue_code default "/CN=race/O=Test"
race_id=$ID
# The CSRs first, so that the six requests start together.
for i in 1 2 3 4 5 6; do
    openssl req -new -newkey rsa:2048 -nodes -keyout "$T/basic.$i.key" -subj "/CN=race/O=Test" \
        -outform DER -out "$T/basic.$i.der" 2>/dev/null
    base64 -w0 "$T/basic.$i.der" > "$T/basic.$i.b64"
done
printf 'user = "otp-%s:%s"\n' "$race_id" "$CODE" > "$T/race.curlrc"
race basic /serverkeygen -K "$T/race.curlrc"
rm -f "$T/race.curlrc"
statuses=$(cat "$T"/basic.*.status | tr '\n' ' ')
check "6 racing Basic uses of one code: exactly one 200 ($statuses)" [ "$(count_status basic 200)" = 1 ]
check "... the others 401 or 429 ($statuses)" \
    [ "$(($(count_status basic 401) + $(count_status basic 429)))" = 5 ]
check "... and some lost at the burning, after their key was made" \
    grep -q "one-time code $race_id was used, revoked or expired meanwhile" "$T/estcad.log"
check "... one certificate in the ledger for otp:$race_id" \
    [ "$(sqlite3 "$ledger" "SELECT COUNT(*) FROM certificates WHERE requester = 'otp:$race_id'")" = 1 ]
check "... and the code names it" \
    [ "$(sqlite3 "$ledger" "SELECT certificate FROM otp_codes WHERE id = $race_id")" = \
      "$(sqlite3 "$ledger" "SELECT id FROM certificates WHERE requester = 'otp:$race_id'")" ]
issue_code default "/CN=race/O=Test"
for i in 1 2 3 4 5 6; do challenge_csr "challenge.$i" race "$CODE" utf8only; done
race challenge /simpleenroll
statuses=$(cat "$T"/challenge.*.status | tr '\n' ' ')
check "6 racing otpChallenge uses of one code: exactly one 200 ($statuses)" \
    [ "$(count_status challenge 200)" = 1 ]
check "... the others 401 ($statuses)" [ "$(count_status challenge 401)" = 5 ]
check "... one certificate in the ledger for otp:$ID" \
    [ "$(sqlite3 "$ledger" "SELECT COUNT(*) FROM certificates WHERE requester = 'otp:$ID'")" = 1 ]

# ---- Guessing codes is throttled like guessing passwords (from another loopback address). ----
statuses=""
for _ in 1 2 3 4 5; do
    statuses+="$(basic_post /simpleenroll dev7 "otp-$ID" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" --interface 127.0.0.2) "
done
check "wrong codes are throttled after three (got $statuses)" grep -q '429' <<<"$statuses"

# ---- The audit log records uses and refusals. ----
audit="$T/ca/audit.log"
check "audit: otp-issued by estca" grep -q '"otp-issued"' "$audit"
check "audit: otp-revoked by estca" grep -q '"otp-revoked"' "$audit"
check "audit: otp-refused" grep -q '"otp-refused"' "$audit"
check "audit: an issuance to otp:$basic1" grep -q "\"requester\":\"otp:$basic1\".*\"result\":\"issued\"" "$audit"
check "audit: the 403 of code $san_id" grep -q "\"requester\":\"otp:$san_id\".*\"result\":\"refused\"" "$audit"
check "the audit log verifies" "$ESTCA" audit verify --config "$conf"

# ---- No code anywhere it could be read: logs, audit, ledger, argv, world-readable files. ----
leaks=0
for c in "${CODES[@]}"; do
    for f in "$T"/*.log "$T"/ca/*.log "$T"/ca/ledger.sqlite*; do
        [ -e "$f" ] || continue
        if grep -aqiF -- "$c" "$f"; then leaks=$((leaks + 1)); echo "# code leaked into $f"; fi
    done
    if tr '\0' ' ' < "/proc/$ESTCAD_PID/cmdline" | grep -qiF -- "$c"; then leaks=$((leaks + 1)); fi
    if find "$T" -type f -perm /044 -print0 | xargs -0 -r grep -laiF -- "$c" | grep . >/dev/null; then
        leaks=$((leaks + 1))
        echo "# code in a file others may read: $(find "$T" -type f -perm /044 -print0 | xargs -0 -r grep -laiF -- "$c")"
    fi
done
check "no one-time code (of ${#CODES[@]}) in a log, the audit, the ledger, argv or a readable file" [ "$leaks" = 0 ]
check "the ledger keeps only hashes" \
    [ "$(sqlite3 "$ledger" "SELECT COUNT(*) FROM otp_codes WHERE length(code_sha256) = 32")" = \
      "$(sqlite3 "$ledger" "SELECT COUNT(*) FROM otp_codes")" ]

stop_estcad
finish
