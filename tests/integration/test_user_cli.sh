#!/usr/bin/env bash
# estca user add / passwd / del as estcad sees them after a restart; passwords come from
# standard input only.
. "$(dirname "$0")/lib.sh"
provision
users="$T/ca/users"
make_csr device

enroll_as() { # user:password -> HTTP status
    http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --user "$1" --data-binary @"$T/device.b64"
}

check "user add reads the password from stdin" \
    bash -c "echo 'bob-password-1' | '$ESTCA' user add --users-file '$users' bob"
check "the users file stays 0600" [ "$(stat -c %a "$users")" = 600 ]
check "a short password is refused" bash -c "! echo short | '$ESTCA' user add --users-file '$users' carol 2>/dev/null"
check "otp-N names are the one-time codes', refused" \
    bash -c "! echo 'otp-password-1' | '$ESTCA' user add --users-file '$users' otp-7 2>/dev/null && ! grep -q '^otp-7:' '$users'"
start_estcad
code=$(enroll_as bob:bob-password-1)
check "the new user enrolls (got $code)" [ "$code" = 200 ]
stop_estcad

check "user passwd changes it" bash -c "echo 'bob-password-2' | '$ESTCA' user passwd --users-file '$users' bob"
check "user passwd of an unknown user fails" \
    bash -c "! echo 'whatever-password' | '$ESTCA' user passwd --users-file '$users' nobody 2>/dev/null"
start_estcad
code=$(enroll_as bob:bob-password-1)
check "the old password no longer works (got $code)" [ "$code" = 401 ]
code=$(enroll_as bob:bob-password-2)
check "the new password works (got $code)" [ "$code" = 200 ]
stop_estcad

check "user del removes the user" "$ESTCA" user del --users-file "$users" bob
check "user del of a missing user fails" bash -c "! '$ESTCA' user del --users-file '$users' bob 2>/dev/null"
start_estcad
code=$(enroll_as bob:bob-password-2)
check "a removed user is refused (got $code)" [ "$code" = 401 ]
code=$(enroll_as "$CREDENTIALS")
check "the other users still enroll (got $code)" [ "$code" = 200 ]
stop_estcad
check "no password in the users file" bash -c "! grep -q 'bob-password' '$users'"
finish
