#!/usr/bin/env bash
# SIGHUP re-reads the whole configuration under load, and no request fails for it:
#  - users: a user added with estca user add enrolls after it (401 before), a deleted one no
#    longer does;
#  - labels and profiles: a label added to estca.conf is served, a changed validity is used;
#  - the listener's certificate and key: new connections get the new certificate;
#  - a configuration that does not load, or that changes what takes a restart ([server]
#    listen), is refused and everything stays as it was;
#  - the enrollments and /cacerts requests that run through all the reloads all get 200.
. "$(dirname "$0")/lib.sh"
provision
start_estcad
make_csr hup
conf="$T/ca/estca.conf"
enroll_as() { # USER:PASS [LABEL/]
    curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" --user "$1" \
        -H "Content-Type: application/pkcs10" --data-binary @"$T/hup.b64" \
        "$URL/${2:-}simpleenroll" 2>/dev/null || echo 000
}
load() { # N: enrolls as the demo user and fetches /cacerts until told to stop, bounded in count
    for _ in $(seq 1 3000); do
        [ -e "$T/stop" ] && break
        echo "$(enroll_as "$CREDENTIALS")" >> "$T/load.$1.codes"
        curl -sS -o /dev/null -w '%{http_code}\n' --cacert "$T/ca/tls-ca.pem" "$URL/cacerts" \
            >> "$T/load.$1.codes" 2>/dev/null || echo 000 >> "$T/load.$1.codes"
    done
}
reload_and_wait() { # waits for the N-th reload line of either kind
    local before
    before=$(grep -c 'event=reload' "$T/estcad.log" || true)
    kill -HUP "$ESTCAD_PID"
    for _ in $(seq 1 "$(scaled 100)"); do
        [ "$(grep -c 'event=reload' "$T/estcad.log" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    return 1
}
load 1 & load_pid=$!
load 2 & load_pid2=$!
sleep 0.5

# Users.
newpass=$(openssl rand -hex 12)
check "a user not yet added: 401 (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 401 ]
printf '%s\n' "$newpass" | "$ESTCA" user add --users-file "$T/ca/users" carol >/dev/null
check "added but not reloaded: still 401 (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 401 ]
reload_and_wait
check "after SIGHUP the new user enrolls (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 200 ]
check "estcad logged the reload" grep -q 'event=reloaded what=configuration' "$T/estcad.log"

cp "$T/ca/users" "$T/users.good"
echo "broken line without a hash" >> "$T/ca/users"
reload_and_wait
check "a users file that does not load is reported" grep -q 'event=reload-failed what=configuration.*users' "$T/estcad.log"
check "and the users in force stay (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 200 ]
cp "$T/users.good" "$T/ca/users"

"$ESTCA" user del --users-file "$T/ca/users" carol >/dev/null
reload_and_wait
check "after del and SIGHUP the user is refused (got $(enroll_as "carol:$newpass" | tee "$T/c"))" [ "$(cat "$T/c")" = 401 ]

# Labels and profiles.
check "no label 'fleet' yet: 404 (got $(http_status GET /fleet/cacerts))" [ "$(http_status GET /fleet/cacerts)" = 404 ]
cp "$conf" "$T/conf.good"
printf '\n[label:fleet]\nca = issuing\nvalidity_days = 7\n' >> "$conf"
sed -i 's/^validity_days = 365$/validity_days = 30/; s/^\[server\]$/[server]\ndefault_label = default/' "$conf"
reload_and_wait
check "a label added by SIGHUP is served (got $(http_status GET /fleet/cacerts))" [ "$(http_status GET /fleet/cacerts)" = 200 ]
code=$(http_status POST /fleet/simpleenroll -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" --data-binary @"$T/hup.b64")
check "and it enrolls (got $code)" [ "$code" = 200 ]
days_of_body() {
    base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs 2>/dev/null |
        openssl x509 -noout -startdate -enddate 2>/dev/null |
        sed 's/.*=//' | { read -r a; read -r b; echo $(( ($(date -d "$b" +%s) - $(date -d "$a" +%s)) / 86400 )); }
}
check "with its own validity, 7 days (got $(days_of_body))" [ "$(days_of_body)" = 7 ]
http_status POST /simpleenroll -H "Content-Type: application/pkcs10" --user "$CREDENTIALS" --data-binary @"$T/hup.b64" >/dev/null
check "the default label's changed validity is used: 30 days (got $(days_of_body))" [ "$(days_of_body)" = 30 ]

# What takes a restart.
sed -i 's/^listen = .*/listen = 127.0.0.1:1/' "$conf"
reload_and_wait
check "a changed [server] listen is refused" grep -q 'event=reload-failed.*\[server\] listen changed' "$T/estcad.log"
check "and the labels in force stay (got $(http_status GET /fleet/cacerts))" [ "$(http_status GET /fleet/cacerts)" = 200 ]
echo "[label:broken" >> "$conf"
reload_and_wait
check "a configuration that does not parse is refused, estcad still serves (got $(http_status GET /cacerts))" \
    [ "$(http_status GET /cacerts)" = 200 ]

# The listener's certificate and key.
cp "$T/conf.good" "$conf"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ca/tls2.key" 2>/dev/null
chmod 0600 "$T/ca/tls2.key"
"$ESTCA" tls certificate --config "$conf" --key "$T/ca/tls2.key" --subject "/CN=localhost/O=estca reloaded" \
    --san "IP:127.0.0.1,DNS:localhost" --issuer-key "pkcs11:token=estca;object=tls-ca" \
    --issuer-cert "$T/ca/tls-ca.pem" --out "$T/ca/tls-chain2.pem" >/dev/null
sed -i 's/^tls_certificate = .*/tls_certificate = tls-chain2.pem/; s/^tls_key = .*/tls_key = tls2.key/' "$conf"
server_subject() {
    openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$T/ca/tls-ca.pem" </dev/null 2>/dev/null |
        openssl x509 -noout -subject 2>/dev/null
}
check "before: the provisioned certificate ($(server_subject))" bash -c "[[ '$(server_subject)' != *reloaded* ]]"
reload_and_wait
check "after SIGHUP new connections get the new certificate ($(server_subject))" bash -c "[[ '$(server_subject)' == *reloaded* ]]"
check "and verify against the TLS CA (got $(http_status GET /cacerts))" [ "$(http_status GET /cacerts)" = 200 ]
check "the label added before is gone again with its section (got $(http_status GET /fleet/cacerts))" \
    [ "$(http_status GET /fleet/cacerts)" = 404 ]

for _ in 1 2 3 4 5; do kill -HUP "$ESTCAD_PID"; sleep 0.2; done
touch "$T/stop"
wait "$load_pid" "$load_pid2"
cat "$T"/load.*.codes > "$T/load.codes"
total=$(wc -l < "$T/load.codes")
reloads=$(grep -c 'event=reloaded' "$T/estcad.log")
check "the $total enrollments and /cacerts requests running through $reloads reloads all got 200" \
    bash -c "[ $total -gt 10 ] && ! grep -qv '^200\$' '$T/load.codes'"
check "no reload left the previous configuration busy" bash -c "! grep -q 'event=reload-previous-busy' '$T/estcad.log'"
stop_estcad
finish
