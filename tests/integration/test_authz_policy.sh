#!/usr/bin/env bash
# Authorization policies (issue 5 item 3): [policy:NAME] sections decide, first match in file
# order, which labels, subjects (CN=${user}) and subjectAltName entries an identity may
# request and how many valid certificates it may hold at once; an identity no policy names is
# refused (403), and every decision, allowed or refused, is in the audit log with identity,
# label, policy and reason. Re-enrollment is judged as "cert:<subject>", without the count.
. "$(dirname "$0")/lib.sh"
provision
conf="$T/ca/estca.conf"
declare -A password
for user in alice bob carol dave erin; do
    password[$user]=$(openssl rand -hex 12)
    printf '%s\n' "${password[$user]}" | "$ESTCA" user add --users-file "$T/ca/users" "$user" >/dev/null
done
sed -i 's|^\[server\]$|[server]\ndefault_label = default|' "$conf"
cat >> "$conf" <<'CONF'

[audit]
path = audit.log

[label:other]
ca = issuing

[policy:operators]
identities = user:demo

[policy:people]
identities = user:alice, user:bob
labels = default
subject = CN=${user},O=Test, CN=${user}
san = DNS:${user}.example.test, DNS:*.dev.example.test, IP:10.*
max_certificates = 2

[policy:carol-elsewhere]
identities = user:carol
labels = other

[policy:renewals]
identities = cert:*

[policy:one-each]
identities = user:erin
max_certificates = 1
CONF
start_estcad

# enroll USER LABEL CSR-NAME: the status; the body in $T/body.
enroll() {
    http_status POST "/$2/simpleenroll" --user "$1:${password[$1]:-${CREDENTIALS#*:}}" \
        -H "Content-Type: application/pkcs10" --data-binary @"$T/$3.b64"
}
issued_to() { base64 -d "$T/body" | openssl pkcs7 -inform DER -print_certs -out "$T/$1.pem" 2>/dev/null; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

# ${user} in the subject.
make_csr a1 -subj "/O=Test/CN=alice"
code=$(enroll alice default a1)
check "alice may have CN=alice,O=Test (CN=\${user},O=Test): 200 (got $code)" [ "$code" = 200 ]
issued_to a1
make_csr a-as-bob -subj "/O=Test/CN=bob"
code=$(enroll alice default a-as-bob)
check "alice may not have CN=bob: 403 (got $code)" [ "$code" = 403 ]
check "  the reason names the policy and the subject" grep -q 'policy people does not allow the subject CN=bob,O=Test' "$T/body"

# subjectAltName patterns: every entry must match one.
make_csr a2 -subj "/CN=alice" -addext "subjectAltName=DNS:alice.example.test,DNS:x1.dev.example.test,IP:10.1.2.3"
code=$(enroll alice default a2)
check "alice's own DNS name, a *.dev name and an IP in 10.*: 200 (got $code)" [ "$code" = 200 ]
issued_to a2
make_csr a3 -subj "/CN=alice" -addext "subjectAltName=DNS:alice.example.test,DNS:bob.example.test"
code=$(enroll alice default a3)
check "one entry of another user's name: 403 (got $code)" [ "$code" = 403 ]
check "  the reason names the entry" grep -q 'subjectAltName DNS:bob.example.test' "$T/body"
make_csr a4 -subj "/CN=alice" -addext "subjectAltName=IP:192.168.1.10"
code=$(enroll alice default a4)
check "an IP outside 10.*: 403 (got $code)" [ "$code" = 403 ]

# max_certificates = 2: alice holds two valid certificates now.
make_csr a5 -subj "/CN=alice"
code=$(enroll alice default a5)
check "a third valid certificate: 403 (got $code)" [ "$code" = 403 ]
check "  the reason says how many" grep -q 'allows 2 valid certificates for user:alice, which has 2' "$T/body"
"$ESTCA" cert revoke --config "$conf" --reason superseded "$(serial_of "$T/a1.pem")" >/dev/null
code=$(enroll alice default a5)
check "after one is revoked, one more: 200 (got $code)" [ "$code" = 200 ]
issued_to a5
cp "$T/a5.key" "$T/a5r.key"
openssl req -new -key "$T/a5r.key" -subj "/CN=alice" -outform DER 2>/dev/null | base64 -w0 > "$T/a5r.b64"
code=$(http_status POST /simplereenroll -H "Content-Type: application/pkcs10" --cert "$T/a5.pem" --key "$T/a5.key" \
    --data-binary @"$T/a5r.b64")
check "renewal at the limit, as cert:CN=alice under policy renewals: 200 (got $code)" [ "$code" = 200 ]

# Labels.
make_csr b1 -subj "/CN=bob"
code=$(enroll bob other b1)
check "bob's policy does not list label other: 403 (got $code)" [ "$code" = 403 ]
check "  the reason names the label" grep -q 'policy people does not allow label other' "$T/body"
code=$(enroll bob default b1)
check "bob on label default: 200 (got $code)" [ "$code" = 200 ]
make_csr c1 -subj "/CN=anything-carol-likes"
code=$(enroll carol default c1)
check "carol on label default: 403 (got $code)" [ "$code" = 403 ]
code=$(enroll carol other c1)
check "carol on label other, any subject: 200 (got $code)" [ "$code" = 200 ]

# No policy for the identity; the first match wins (demo: operators, any subject).
make_csr d1 -subj "/CN=dave"
code=$(enroll dave default d1)
check "dave, whom no policy names: 403 (got $code)" [ "$code" = 403 ]
check "  the reason says so" grep -q 'no authorization policy for user:dave' "$T/body"
make_csr any -subj "/CN=someone/O=Else" -addext "subjectAltName=DNS:www.elsewhere.test"
code=$(http_status POST /simpleenroll --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" --data-binary @"$T/any.b64")
check "demo under policy operators, any subject: 200 (got $code)" [ "$code" = 200 ]
stop_estcad

# Every decision in the audit log.
log=$T/ca/audit.log
decisions() { grep '"event":"authorization"' "$log" | grep -c "$1" || true; }
check "allowed decisions recorded with identity, label, policy (7, got $(decisions '"result":"allowed"'))" \
    [ "$(decisions '"result":"allowed"')" = 7 ]
check "refused decisions recorded (7, got $(decisions '"result":"refused"'))" [ "$(decisions '"result":"refused"')" = 7 ]
check "an allowed one in full" \
    grep -q '"event":"authorization","operation":"simpleenroll","label":"default","identity":"user:alice","policy":"people","result":"allowed"' "$log"
check "a refused one with its reason" \
    grep -q '"identity":"user:dave","policy":"-","result":"refused","reason":"no authorization policy for user:dave"' "$log"
check "the renewal's decision" grep -q '"operation":"simplereenroll".*"identity":"cert:CN=alice","policy":"renewals","result":"allowed"' "$log"
check "max_certificates is counted through an index" \
    grep -q 'certificates_requester' <<<"$(sqlite3 "$T/ca/ledger.sqlite" \
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM certificates WHERE requester = 'user:alice' AND status = 'valid' AND not_after > '2000'")"

# max_certificates holds under a race: eight enrollments at once for an identity allowed one.
# The count checked before signing cannot see the others in flight; the ledger counts again
# in the transaction that records each certificate.
start_estcad
for i in 1 2 3 4 5 6 7 8; do make_csr "e$i" -subj "/CN=erin"; done
# A login first (its CSR is garbage: 400), so that the racers skip the password hash, which
# would otherwise space them out by its ~20 ms each.
code=$(http_status POST /simpleenroll --user "erin:${password[erin]}" -H "Content-Type: application/pkcs10" \
    --data-binary 'AAAA')
check "erin's login, with a garbage CSR: 400 (got $code)" [ "$code" = 400 ]
racers=()
for i in 1 2 3 4 5 6 7 8; do
    curl -sS -o /dev/null -w '%{http_code}\n' --cacert "$T/ca/tls-ca.pem" --user "erin:${password[erin]}" \
        -H "Content-Type: application/pkcs10" --data-binary @"$T/e$i.b64" \
        "$URL/simpleenroll" >"$T/race.$i" 2>&1 &
    racers+=($!)
done
for pid in "${racers[@]}"; do wait "$pid" || true; done
race=$(cat "$T"/race.* | sort | uniq -c | tr -s ' \n' ' ')
check "eight racing enrollments, max_certificates = 1: one 200, seven 403 (got$race)" \
    [ "$race" = " 1 200 7 403 " ]
check "  and the ledger holds one valid certificate for user:erin" [ "$(sqlite3 "$T/ca/ledger.sqlite" \
    "SELECT COUNT(*) FROM certificates WHERE requester = 'user:erin' AND status = 'valid'")" = 1 ]
stop_estcad

# A policy naming a label that does not exist stops estcad at start-up.
sed 's/^labels = other$/labels = otehr/' "$conf" > "$T/ca/typo.conf"
timeout 30 "$ESTCAD" -c "$T/ca/typo.conf" > "$T/typo.out" 2>&1 && rc=0 || rc=$?
check "a policy naming an unknown label: estcad refuses to start (exit $rc)" [ "$rc" != 0 ]
check "  and says why" grep -q 'policy:carol-elsewhere.*no section \[label:otehr\]' "$T/typo.out"
finish
