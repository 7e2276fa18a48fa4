#!/usr/bin/env bash
# 1,000 concurrent enrollments (one curl with 1,000 parallel transfers, each its own TLS
# connection): 1,000 answers of 200, 1,000 distinct serials in the ledger, and the ledger's
# copy of each certificate is byte for byte the one its client got.
. "$(dirname "$0")/lib.sh"
provision
start_estcad
make_csr many
mkdir -p "$T/got"
for i in $(seq 1 1000); do
    printf 'url = "%s/simpleenroll"\noutput = "%s/got/%d.b64"\n' "$URL" "$T" "$i"
done > "$T/transfers"
curl -sS -Z --parallel-max 1000 --parallel-immediate -K "$T/transfers" --cacert "$T/ca/tls-ca.pem" \
    --user "$CREDENTIALS" -H "Content-Type: application/pkcs10" --data-binary @"$T/many.b64" \
    -w '%{http_code}\n' > "$T/codes" 2>"$T/curl.err" || true
check "1000 answers of 200 ($(sort "$T/codes" | uniq -c | tr '\n' ' '))" \
    [ "$(grep -c '^200$' "$T/codes")" = 1000 ]

# Each PEM certificate as one line of base64 DER, sorted: the two sides must be equal sets.
der_lines() { awk '/-----BEGIN CERTIFICATE-----/{c=""; next} /-----END CERTIFICATE-----/{print c; next} {c=c $0}' "$@" | sort; }
for i in $(seq 1 1000); do
    [ -s "$T/got/$i.b64" ] || continue # a missing answer fails the counts below
    base64 -d < "$T/got/$i.b64" | openssl pkcs7 -inform DER -print_certs 2>/dev/null || true
done > "$T/got.pem"
"$ESTCA" cert export --ledger "$T/ca/ledger.sqlite" --out "$T/ledger.pem" all
der_lines "$T/got.pem" > "$T/got.lines"
der_lines "$T/ledger.pem" > "$T/ledger.lines"
check "the clients got 1000 distinct certificates" [ "$(sort -u "$T/got.lines" | wc -l)" = 1000 ]
serials=$("$ESTCA" cert list --ledger "$T/ca/ledger.sqlite" --json | sed -n 's/.*"serial":"\([0-9A-F]*\)".*/\1/p' | sort -u | wc -l)
check "the ledger holds 1000 certificates under 1000 distinct serials (has $serials)" [ "$serials" = 1000 ]
check "each client's certificate is the ledger's, byte for byte" cmp -s "$T/got.lines" "$T/ledger.lines"
stop_estcad
finish
