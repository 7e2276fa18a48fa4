#!/usr/bin/env bash
# estcad under valgrind memcheck through a session of real traffic (cacerts, enrollments, bad
# requests, a re-enrollment): no memory error and no definitely lost block by the time it
# exits on SIGTERM. lib.sh's ESTCA_VALGRIND mode does the wrapping and the log check (the same
# code tests/valgrind/run.sh runs every integration test with). The sanitizer build is skipped
# (valgrind cannot run ASan binaries); the ASan+UBSan run of the other tests covers it.
ESTCA_VALGRIND=1
. "$(dirname "$0")/lib.sh"
provision
start_estcad

code=$(http_status GET /cacerts)
check "/cacerts under valgrind (got $code)" [ "$code" = 200 ]
make_csr vg -addext "subjectAltName=DNS:vg.example.test"
code=$(http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" --data-binary @"$T/vg.b64")
check "enrollment under valgrind (got $code)" [ "$code" = 200 ]
base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/vg.pem"
code=$(http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" --data-binary @"$T/vg.b64")
check "a second enrollment, password remembered (got $code)" [ "$code" = 200 ]
code=$(http_status POST /simplereenroll -H "Content-Type: application/pkcs10" --cert "$T/vg.pem" --key "$T/vg.key" --data-binary @"$T/vg.b64")
check "re-enrollment under valgrind (got $code)" [ "$code" = 200 ]
code=$(http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --user "$DEMO_USER:wrong" --data-binary @"$T/vg.b64")
check "wrong password (got $code)" [ "$code" = 401 ]
code=$(http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" --data-binary 'garbage!')
check "garbage body (got $code)" [ "$code" = 400 ]
code=$(http_status GET /csrattrs)
check "/csrattrs (got $code)" [ "$code" = 204 ]

stop_estcad
check "estcad ran under valgrind" bash -c "grep -q 'Memcheck' '$T'/valgrind-estcad.*.log"
finish # fails on any valgrind error or definitely lost block
