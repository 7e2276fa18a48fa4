#!/usr/bin/env bash
# The README's quick start as a new user runs it: packaging/quickstart.sh provisions and serves,
# and the enrollment it prints, pasted as is, yields a certificate that verifies. A second start
# reuses the token instead of provisioning again.
. "$(dirname "$0")/lib.sh"
[ "$ESTCA_VALGRIND" = 1 ] && { echo "skip - quickstart.sh runs build/appliance/estcad, not \$ESTCAD: no valgrind there"; exit 77; }
export ESTCA_QUICKSTART_DIR="$T/quickstart"

# start_quickstart: runs it on a free port (retrying on a port clash), sets PORT.
start_quickstart() {
    for _ in 1 2 3 4 5; do
        PORT=$((20000 + RANDOM % 30000))
        rm -f "$T/quickstart.out" # the previous run's listening line must not count
        ESTCA_PORT=$PORT "$ESTCA_SOURCE_DIR/packaging/quickstart.sh" >"$T/quickstart.out" 2>&1 &
        ESTCAD_PID=$!
        for _ in $(seq 1 600); do
            grep -qs 'event=listening' "$T/quickstart.out" && return 0
            kill -0 "$ESTCAD_PID" 2>/dev/null || break
            sleep 0.1
        done
        wait "$ESTCAD_PID" 2>/dev/null || true
        ESTCAD_PID=
    done
    cat "$T/quickstart.out"
    echo "FAIL: the quick start did not serve"
    exit 1
}

start_quickstart
check "the quick start left the files the README promises" \
    test -f "$T/quickstart/estca.conf" -a -f "$T/quickstart/tls-ca.pem" -a -f "$T/quickstart/ca-chain.pem" -a -f "$T/quickstart/demo.credentials"
check "demo.credentials is not world-readable" [ "$(stat -c %a "$T/quickstart/demo.credentials")" = 600 ]
check "the config is readable but holds no secret" \
    bash -c "! grep -qF \"\$(cat '$T/quickstart/token.pin')\" '$T/quickstart/estca.conf'"

# Paste what it printed, exactly.
sed -n '/^Enroll a device/,/openssl verify/{/^Enroll a device/d;p}' "$T/quickstart.out" > "$T/pasted.sh"
check "it printed a curl enrollment" grep -q "https://127.0.0.1:$PORT/.well-known/est/simpleenroll" "$T/pasted.sh"
mkdir -p "$T/client"
(cd "$T/client" && bash -euo pipefail "$T/pasted.sh") >"$T/pasted.out" 2>&1 || true
check "the pasted enrollment verifies" grep -q 'device.pem: OK' "$T/pasted.out"
check "the certificate chains to var/quickstart/ca-chain.pem" \
    openssl verify -CAfile "$T/quickstart/ca-chain.pem" "$T/client/device.pem"

root_before=$(openssl x509 -in "$T/quickstart/root-ca.pem" -noout -fingerprint -sha256)
kill -TERM "$ESTCAD_PID"
wait "$ESTCAD_PID" || true
ESTCAD_PID=
start_quickstart
check "a second start keeps the CA it made the first time" \
    [ "$(openssl x509 -in "$T/quickstart/root-ca.pem" -noout -fingerprint -sha256)" = "$root_before" ]
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/quickstart/tls-ca.pem" "https://127.0.0.1:$PORT/.well-known/est/cacerts" || true)
check "and serves again (got $code)" [ "$code" = 200 ]
finish
