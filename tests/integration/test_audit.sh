#!/usr/bin/env bash
# The audit log of a real run: estcad records its start, every issuance and refusal with the
# reason, failed logins, token events and its stop; estca records revocations; checkpoints are
# signed by the issuing CA's key on the token. estca audit verify passes on it, and fails after
# a line is deleted, altered or moved. No password or PIN is in it.
. "$(dirname "$0")/lib.sh"
provision
conf=$T/ca/estca.conf
printf '\n[audit]\npath = audit.log\ncheckpoint_every = 4\n' >> "$conf"
printf '\n[label:strict]\nca = issuing\n' >> "$conf"
sed -i 's|^\[server\]$|[server]\ndefault_label = default|' "$conf"
start_estcad
log=$T/ca/audit.log

for name in one two three; do
    make_csr "$name"
    curl -sS --fail --cacert "$T/ca/tls-ca.pem" --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
        --data-binary @"$T/$name.b64" "$URL/simpleenroll" | base64 -d |
        openssl pkcs7 -inform DER -print_certs -out "$T/$name.pem"
done
make_csr wants-ca -addext "basicConstraints=critical,CA:TRUE"
code=$(http_status POST /strict/simpleenroll --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
    --data-binary @"$T/wants-ca.b64")
check "a CSR asking for CA:TRUE is refused on the strict label (got $code)" [ "$code" = 400 ]
code=$(http_status POST /simpleenroll --user "$DEMO_USER:wrong-password" -H "Content-Type: application/pkcs10" \
    --data-binary @"$T/one.b64")
check "a wrong password is refused (got $code)" [ "$code" = 401 ]
code=$(http_status POST /simpleenroll --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" \
    --data-binary 'not a CSR')
check "a body that is no CSR is refused (got $code)" [ "$code" = 400 ]
serial=$(openssl x509 -in "$T/two.pem" -noout -serial | cut -d= -f2)
"$ESTCA" cert revoke --config "$conf" --reason superseded "$serial" >/dev/null
stop_estcad

check "estcad's start is recorded" grep -q '"event":"start"' "$log"
check "each issuance, with its serial" \
    [ "$(grep -c '"event":"simpleenroll".*"result":"issued"' "$log")" = 3 ]
check "the serial of an issued certificate" grep -q "\"serial\":\"$serial\"" "$log"
check "the refusal, with its reason" grep -q '"result":"refused".*"reason":"[^"]*CA:TRUE' "$log"
check "the refusal of a body that is no CSR, before the core saw it" \
    grep -q '"operation":"simpleenroll".*"result":"refused","http_status":400' "$log"
check "the refused wrong-password request too" grep -q '"result":"refused","http_status":401' "$log"
check "the failed login, with the user" grep -q "\"event\":\"login-failed\",\"user\":\"$DEMO_USER\"" "$log"
check "estca's revocation" grep -q "\"event\":\"revoke\",\"serial\":\"$serial\",\"reason\":\"superseded\"" "$log"
check "estcad's stop" grep -q '"event":"stop"' "$log"
check "checkpoints" grep -q '"event":"checkpoint"' "$log"
password=${CREDENTIALS#*:}
check "no password in the audit log" bash -c "! grep -qF '$password' '$log'"
check "no PIN in the audit log" bash -c "! grep -qF \"\$(cat '$T/ca/token.pin')\" '$log'"

out=$("$ESTCA" audit verify --config "$conf" 2>&1)
check "estca audit verify passes on the real log: $out" grep -q ': OK$' <<<"$out"
check "the last line is a checkpoint (written at stop)" grep -q '"event":"checkpoint"' <(tail -n1 "$log")

lines=$(wc -l < "$log")
tampered() { # what sed-script
    sed "$2" "$log" > "$T/tampered.log"
    ! "$ESTCA" audit verify --log "$T/tampered.log" --cert "$T/ca/issuing-ca.pem" > "$T/verify.out" 2>&1
}
check "a deleted line is detected" tampered delete "3d"
check "an altered line is detected" tampered alter "4s/CN=/CN=X/"
check "a moved line is detected" tampered move "2{h;d};3G"
check "a cut tail before the final checkpoint is detected" tampered cut "$((lines - 1))d"
check "checkpoints do not verify with another CA's certificate" \
    bash -c "! '$ESTCA' audit verify --log '$log' --cert '$T/ca/tls-ca.pem' >/dev/null 2>&1"
finish
