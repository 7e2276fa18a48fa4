#!/usr/bin/env bash
# The ledger's disk fills up under enrollments: estcad answers 503 with Retry-After and keeps
# running, every certificate a client received is in the ledger, and once space is back it
# enrolls again without a restart. The ledger lives on a small tmpfs mounted for the test
# (skipped, exit 77, where mounting is not allowed).
. "$(dirname "$0")/lib.sh"
provision
fs=$T/ledgerfs
mkdir -p "$fs"
if ! mount -t tmpfs -o size=4m tmpfs "$fs" 2>/dev/null; then
    echo "skip - cannot mount a tmpfs here"
    exit 77
fi
trap 'umount "$fs" 2>/dev/null; cleanup' EXIT
sed -i "s|^path = ledger.sqlite\$|path = $fs/ledger.sqlite|" "$T/ca/estca.conf"
start_estcad
make_csr fill
enroll() {
    curl -sS -o "$T/got/$1.b64" -D "$T/got/$1.headers" -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" \
        --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" --data-binary @"$T/fill.b64" \
        "$URL/simpleenroll" 2>/dev/null || echo 000
}
mkdir -p "$T/got"
check "enrollment works with space left (got $(enroll first | tee "$T/c"))" [ "$(cat "$T/c")" = 200 ]

# Leave almost nothing: the WAL cannot grow, the next commits fail.
dd if=/dev/zero of="$fs/filler" bs=64k 2>/dev/null || true
codes=()
for i in $(seq 1 40); do codes+=("$(enroll "full-$i")"); done
n503=$(printf '%s\n' "${codes[@]}" | grep -c '^503$' || true)
check "with the disk full, enrollments answer 503 ($n503 of 40; answers: $(printf '%s\n' "${codes[@]}" | sort | uniq -c | tr '\n' ' '))" \
    [ "$n503" -gt 0 ]
check "and nothing but 200 or 503" bash -c "! printf '%s\n' ${codes[*]} | grep -qv '^200$\|^503$'"
check "a 503 carries Retry-After" bash -c "grep -li '^Retry-After: [0-9]' '$T'/got/full-*.headers | grep -q ."
check "estcad says why" grep -q 'status=503.*reason="unavailable: .*\(full\|disk\|I/O\)' "$T/estcad.log"
check "estcad is still running" kill -0 "$ESTCAD_PID"

rm -f "$fs/filler"
code=000
for _ in $(seq 1 20); do code=$(enroll after); [ "$code" = 200 ] && break; sleep 0.2; done
check "with space back it enrolls again without a restart (got $code)" [ "$code" = 200 ]

: > "$T/serials.got"
for f in "$T"/got/*.b64; do
    base64 -d < "$f" 2>/dev/null | openssl pkcs7 -inform DER -print_certs 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | cut -d= -f2 >> "$T/serials.got" || true
done
"$ESTCA" cert list --ledger "$fs/ledger.sqlite" --json | sed -n 's/.*"serial":"\([0-9A-F]*\)".*/\1/p' | sort > "$T/serials.ledger"
missing=$(sort "$T/serials.got" | comm -23 - "$T/serials.ledger" | wc -l)
check "every certificate a client got is in the ledger ($(wc -l < "$T/serials.got") got, $missing missing)" \
    [ "$missing" = 0 ]
stop_estcad
finish
