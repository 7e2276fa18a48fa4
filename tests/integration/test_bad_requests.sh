#!/usr/bin/env bash
# Bad input gets a clear status and a one-line reason, and the server keeps serving.
. "$(dirname "$0")/lib.sh"
provision
start_estcad

make_csr good
enroll=(-H "Content-Type: application/pkcs10")

code=$(http_status POST /simpleenroll "${enroll[@]}" --data-binary @"$T/good.b64")
check "no credentials: 401 (got $code)" [ "$code" = 401 ]
check "401 carries WWW-Authenticate Basic" grep -qi '^www-authenticate: basic realm=' "$T/headers"

code=$(http_status POST /simpleenroll "${enroll[@]}" --user "$DEMO_USER:not-the-password" --data-binary @"$T/good.b64")
check "wrong password: 401 (got $code)" [ "$code" = 401 ]
code=$(http_status POST /simpleenroll "${enroll[@]}" --user "nobody:whatever" --data-binary @"$T/good.b64")
check "unknown user: 401 (got $code)" [ "$code" = 401 ]

code=$(http_status POST /simpleenroll "${enroll[@]}" --user "$CREDENTIALS" --data-binary 'this is not base64!')
check "garbage body: 400 (got $code)" [ "$code" = 400 ]
check "400 has a text reason" grep -qi '^content-type: text/plain' "$T/headers"

printf 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA' > "$T/truncated.b64"
code=$(http_status POST /simpleenroll "${enroll[@]}" --user "$CREDENTIALS" --data-binary @"$T/truncated.b64")
check "truncated DER: 400 (got $code)" [ "$code" = 400 ]

code=$(http_status POST /simpleenroll "${enroll[@]}" --user "$CREDENTIALS" --data-binary '')
check "empty body: 400 (got $code)" [ "$code" = 400 ]

# Flip the last byte of the signature: the DER still parses, the signature fails.
cp "$T/good.der" "$T/broken.der"
last=$(($(stat -c %s "$T/broken.der") - 1))
orig=$(od -An -tu1 -j "$last" -N1 "$T/broken.der" | tr -d ' ')
printf "$(printf '\\%03o' $(((orig + 1) % 256)))" | dd of="$T/broken.der" bs=1 seek="$last" conv=notrunc 2>/dev/null
check "the broken CSR still parses" openssl req -inform DER -in "$T/broken.der" -noout
base64 -w0 "$T/broken.der" > "$T/broken.b64"
code=$(http_status POST /simpleenroll "${enroll[@]}" --user "$CREDENTIALS" --data-binary @"$T/broken.b64")
check "CSR with a broken signature: 400 (got $code)" [ "$code" = 400 ]
check "the reason names the signature" grep -qi 'signature' "$T/body"

code=$(http_status POST /simpleenroll -H "Content-Type: text/plain" --user "$CREDENTIALS" --data-binary @"$T/good.b64")
check "wrong content type: 415 (got $code)" [ "$code" = 415 ]

code=$(http_status GET /nosuchop)
check "unknown operation: 404 (got $code)" [ "$code" = 404 ]
code=$(http_status GET /nosuchlabel/cacerts)
check "unknown label: 404 (got $code)" [ "$code" = 404 ]
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" "$BASE/index.html" || true)
check "path outside /.well-known/est: 404 (got $code)" [ "$code" = 404 ]

code=$(http_status POST /cacerts --data-binary x)
check "POST /cacerts: 405 (got $code)" [ "$code" = 405 ]
check "405 carries Allow: GET" grep -qi '^allow: GET' "$T/headers"
code=$(http_status GET /simpleenroll --user "$CREDENTIALS")
check "GET /simpleenroll: 405 (got $code)" [ "$code" = 405 ]
check "405 carries Allow: POST" grep -qi '^allow: POST' "$T/headers"

head -c 10485760 /dev/zero | tr '\0' 'A' > "$T/big.b64"
code=$(http_status POST /simpleenroll "${enroll[@]}" --user "$CREDENTIALS" --data-binary @"$T/big.b64")
check "10 MB body: 413 (got $code)" [ "$code" = 413 ]
# The head alone decides: a declared Content-Length over max_body gets 413 while only 1 byte
# of the 100,000,000 has come (no 100-continue to wait for), not after reading the body or
# waiting request_timeout_ms (30 s) for it; curl gives up after 10 s.
started=$(date +%s%N)
code=$(http_status POST /simpleenroll "${enroll[@]}" --user "$CREDENTIALS" -H "Expect:" \
    -H "Content-Length: 100000000" --data-binary 'M' --max-time 10)
waited_ms=$((($(date +%s%N) - started) / 1000000))
check "declared 100,000,000-byte body, 1 byte sent: 413 (got $code)" [ "$code" = 413 ]
check "the 413 came before the body, in ${waited_ms} ms" [ "$waited_ms" -lt 3000 ]

# Base64 wrapped at 64 columns with CRLF (RFC 8951 receivers tolerate it).
base64 -w64 "$T/good.der" | sed 's/$/\r/' > "$T/wrapped.b64"
code=$(http_status POST /simpleenroll "${enroll[@]}" --user "$CREDENTIALS" --data-binary @"$T/wrapped.b64")
check "wrapped base64 with CRLF: 200 (got $code)" [ "$code" = 200 ]

# Still serving after all of it.
code=$(http_status GET /cacerts)
check "still serving /cacerts (got $code)" [ "$code" = 200 ]
make_csr after
code=$(http_status POST /simpleenroll "${enroll[@]}" --user "$CREDENTIALS" --data-binary @"$T/after.b64")
check "still enrolling (got $code)" [ "$code" = 200 ]
check "estcad is alive" kill -0 "$ESTCAD_PID"
check "no password in the log" bash -c "! grep -qF '${CREDENTIALS#*:}' '$T/estcad.log'"
check "no PIN in the log" bash -c "! grep -qF \"\$(cat '$T/ca/token.pin')\" '$T/estcad.log'"

stop_estcad
finish
