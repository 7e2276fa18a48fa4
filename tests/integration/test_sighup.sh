#!/usr/bin/env bash
# SIGHUP re-reads the users file under load: a user added with estca user add enrolls after it
# (401 before), a deleted one no longer does, and the enrollments that run through the reloads
# all succeed. A users file that does not load keeps the old users in force.
. "$(dirname "$0")/lib.sh"
provision
start_estcad
make_csr hup
enroll_as() {
    curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" --user "$1" \
        -H "Content-Type: application/pkcs10" --data-binary @"$T/hup.b64" "$URL/simpleenroll" 2>/dev/null || echo 000
}
load() { # N: enrolls as the demo user until told to stop, bounded in count
    for _ in $(seq 1 3000); do
        [ -e "$T/stop" ] && break
        echo "$(enroll_as "$CREDENTIALS")" >> "$T/load.$1.codes"
    done
}
load 1 & load_pid=$!
load 2 & load_pid2=$!
sleep 0.5

newpass=$(openssl rand -hex 12)
check "a user not yet added: 401 (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 401 ]
printf '%s\n' "$newpass" | "$ESTCA" user add --users-file "$T/ca/users" carol >/dev/null
check "added but not reloaded: still 401 (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 401 ]
kill -HUP "$ESTCAD_PID"
sleep 0.5
check "after SIGHUP the new user enrolls (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 200 ]
check "estcad logged the reload" grep -q 'event=reloaded what=users' "$T/estcad.log"

cp "$T/ca/users" "$T/users.good"
echo "broken line without a hash" >> "$T/ca/users"
kill -HUP "$ESTCAD_PID"
sleep 0.5
check "a users file that does not load is reported" grep -q 'event=reload-failed what=users' "$T/estcad.log"
check "and the users in force stay (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 200 ]
cp "$T/users.good" "$T/ca/users"

"$ESTCA" user del --users-file "$T/ca/users" carol >/dev/null
kill -HUP "$ESTCAD_PID"
sleep 0.5
check "after del and SIGHUP the user is refused (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 401 ]
for _ in 1 2 3 4 5; do kill -HUP "$ESTCAD_PID"; sleep 0.1; done
touch "$T/stop"
wait "$load_pid" "$load_pid2"
cat "$T"/load.*.codes > "$T/load.codes"
total=$(wc -l < "$T/load.codes")
check "the $total enrollments running through the reloads all got 200" \
    bash -c "[ $total -gt 10 ] && ! grep -qv '^200\$' '$T/load.codes'"
stop_estcad
finish
