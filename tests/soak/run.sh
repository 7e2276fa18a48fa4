#!/usr/bin/env bash
# Soak: MINUTES of mixed traffic against one estcad: 64 wrk connections cycling through
# cacerts, csrattrs, simpleenroll and three kinds of bad request, plus two curl clients, one
# re-enrolling with its TLS client certificate and one asking for server-generated keys (a few
# per second: SoftHSM2 2.6.1 keeps every destroyed session object until C_Finalize, so at
# wrk's rate its own memory would grow ~1 KB per key and hide estcad's). Every 5 s it samples
# estcad's RSS and open file descriptors. Fails on any unexpected answer or socket error, on a
# failed re-enrollment or key generation, or if RSS or the fd count still grows after the
# warm-up (the first third).
#   tests/soak/run.sh MINUTES [--build DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
minutes=${1:?usage: tests/soak/run.sh MINUTES [--build DIR]}
build="$root/build"
[ "${2:-}" = --build ] && build=$3
estcad=${ESTCAD:-$build/appliance/estcad}
estca=${ESTCA:-$build/provisioning/estca}
seconds=$((minutes * 60))
T=$(mktemp -d "${TMPDIR:-/tmp}/estca-soak.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

LISTEN=127.0.0.1:0 "$root/packaging/provision.sh" "$T/ca" "$estca" >/dev/null 2>&1
export SOFTHSM2_CONF="$T/ca/softhsm2.conf"
sed -i 's|^\[label:default\]$|[label:default]\nserverkeygen = yes|; s|^threads = .*|threads = 96|' "$T/ca/estca.conf"
"$estcad" -c "$T/ca/estca.conf" 2>"$T/estcad.log" &
pid=$!
port=
for _ in $(seq 1 200); do
    port=$(sed -n 's/.*event=listening.* port=\([0-9]*\).*/\1/p' "$T/estcad.log")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { cat "$T/estcad.log"; echo "estcad did not start" >&2; exit 1; }
url="https://127.0.0.1:$port/.well-known/est"
cred=$(cat "$T/ca/demo.credentials")
tr -d '\n' < "$T/ca/demo.credentials" | base64 -w0 > "$T/auth"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/device.key" \
    -subj "/CN=soak-device" -outform DER 2>/dev/null | base64 -w0 > "$T/csr.b64"
curl -sS --fail --cacert "$T/ca/tls-ca.pem" --user "$cred" -H "Content-Type: application/pkcs10" \
    --data-binary @"$T/csr.b64" "$url/simpleenroll" | base64 -d |
    openssl pkcs7 -inform DER -print_certs -out "$T/device.pem"

sample() { # t rss_kb fds
    echo "$1 $(awk '/VmRSS/{print $2}' "/proc/$pid/status") $(ls "/proc/$pid/fd" | wc -l)"
}
echo "estca soak: $minutes min, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
SOAK_CSR="$T/csr.b64" SOAK_AUTH_FILE="$T/auth" wrk -t2 -c64 -d"${seconds}s" --timeout 10s \
    -s "$root/tests/soak/mixed.lua" "$url/cacerts" > "$T/wrk.out" 2>&1 &
wrk_pid=$!
curl_loop() { # name path [curl args]: posts the CSR until wrk ends, bounded in count
    local name=$1 path=$2 ok=0 bad=0 code
    shift 2
    for _ in $(seq 1 100000); do
        kill -0 "$wrk_pid" 2>/dev/null || break
        code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca/tls-ca.pem" "$@" \
            -H "Content-Type: application/pkcs10" --data-binary @"$T/csr.b64" "$url/$path" 2>/dev/null || echo 000)
        if [ "$code" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        sleep 0.2
    done
    echo "$name: ok=$ok failed=$bad" > "$T/$name.out"
}
curl_loop reenroll simplereenroll --cert "$T/device.pem" --key "$T/device.key" &
re_pid=$!
curl_loop serverkeygen serverkeygen --user "$cred" &
skg_pid=$!
: > "$T/samples"
for t in $(seq 5 5 $((seconds - 5))); do
    sleep 5
    kill -0 "$pid" 2>/dev/null || { echo "FAIL: estcad died"; cat "$T/estcad.log" | tail -5; exit 1; }
    sample "$t" | tee -a "$T/samples"
done
wait "$wrk_pid" || true
wait "$re_pid" "$skg_pid" || true
grep '^mixed:' "$T/wrk.out" || true
cat "$T/reenroll.out" "$T/serverkeygen.out"

fail=0
line=$(grep '^mixed:' "$T/wrk.out") || { echo "FAIL: no wrk summary"; cat "$T/wrk.out"; exit 1; }
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
[ "$(field unexpected)" = 0 ] && [ "$(field socket_errors)" = 0 ] || { echo "FAIL: unexpected answers or socket errors"; fail=1; }
[ "$(field 200)" -gt 0 ] || { echo "FAIL: nothing succeeded"; fail=1; }
for loop in reenroll serverkeygen; do
    grep -q 'failed=0$' "$T/$loop.out" && ! grep -q 'ok=0 ' "$T/$loop.out" || { echo "FAIL: $loop"; fail=1; }
done
total=$(( $(field requests) + $(sed -n 's/.*ok=\([0-9]*\).*/\1/p' "$T/reenroll.out") + $(sed -n 's/.*ok=\([0-9]*\).*/\1/p' "$T/serverkeygen.out") ))
echo "soak: $minutes min, $total requests, errors: $(( $(field unexpected) + $(field socket_errors) ))"
# Flat after warm-up: the last sample against the largest of the first third.
n=$(wc -l < "$T/samples")
warm=$(head -n $(( (n + 2) / 3 )) "$T/samples" | sort -k2 -n | tail -n1)
last=$(tail -n1 "$T/samples")
read -r _ warm_rss warm_fds <<<"$warm"
read -r _ last_rss last_fds <<<"$last"
echo "soak: rss_kb warm-up max $warm_rss, end $last_rss; fds warm-up $warm_fds, end $last_fds"
[ "$last_rss" -le $((warm_rss + warm_rss / 10 + 4096)) ] || { echo "FAIL: RSS grew after warm-up"; fail=1; }
[ "$last_fds" -le $((warm_fds + 16)) ] || { echo "FAIL: open files grew after warm-up"; fail=1; }
kill "$pid"
wait "$pid" || { echo "FAIL: estcad did not exit cleanly"; fail=1; }
pid=
[ "$fail" = 0 ] && echo "soak: OK"
exit "$fail"
