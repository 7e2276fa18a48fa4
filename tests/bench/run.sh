#!/usr/bin/env bash
# The enrollment benchmark, from ONE run on this machine, for an EC P-256 and an RSA-2048 CA:
#  (a) raw token signature rate through hsm/ with 1 and N threads
#  (b) in-process issuance rate (CSR verify + build + sign + durable ledger commit), N threads
#  (c) enrollments/s through estcad over TLS with keep-alive at 1, 8, 32, 128 clients (wrk)
#  (d) the same with a new TLS connection per enrollment, 32 clients (estca-load: wrk spins
#      during TLS handshakes, see tests/bench/new_connection_load.c)
#  (e) estcad's peak RSS, and the ratios (c)/(b), (d)/(b); for (d) also the CPU time estcad and
#      estca-load each spent per enrollment.
# Usage: tests/bench/run.sh [--smoke] [--seconds S] [--build DIR] [--only ec|rsa]
#                           [--tls-key-store file|token]
# --smoke: 1 s per level, EC only, exits non-zero unless every answer was 200.
# --tls-key-store: where the listener's key lives (provision.sh's TLS_KEY_STORE; default file).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=10
build="$root/build"
only=
smoke=0
tls_store=file
while [ $# -gt 0 ]; do
    case $1 in
    --smoke) smoke=1; seconds=1; only=ec ;;
    --seconds) seconds=$2; shift ;;
    --build) build=$2; shift ;;
    --only) only=$2; shift ;;
    --tls-key-store) tls_store=$2; shift ;;
    *) echo "usage: $0 [--smoke] [--seconds S] [--build DIR] [--only ec|rsa] [--tls-key-store file|token]" >&2; exit 2 ;;
    esac
    shift
done
if [ "$smoke" = 0 ]; then
    "$root/packaging/deps.sh"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCIVETWEB_SOURCE_CACHE="$root/build/civetweb-src" >/dev/null
    cmake --build "$build" --target estcad estca estca-bench estca-load -j"$(nproc)" >/dev/null
fi
# The test suite names its own binaries (the sanitizer build's, say); otherwise $build's.
estcad=${ESTCAD:-$build/appliance/estcad}
estca=${ESTCA:-$build/provisioning/estca}
bench=${ESTCA_BENCH:-$build/tests/estca-bench}
load=${ESTCA_LOAD:-$build/tests/estca-load}
cores=$(nproc)
T=$(mktemp -d "${TMPDIR:-/tmp}/estca-bench.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
bad=0

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

run_wrk() { # clients -> "rate requests not200 socket_errors p50 p99", keep-alive
    local clients=$1 threads=$(( $1 < cores ? $1 : cores ))
    local out
    out=$(BENCH_CSR="$T/csr.b64" BENCH_AUTH_FILE="$T/auth" \
        wrk -t"$threads" -c"$clients" -d"${seconds}s" --timeout 10s -s "$root/tests/bench/enroll.lua" \
        "https://127.0.0.1:$port/.well-known/est/simpleenroll" 2>&1)
    local line rate
    line=$(grep '^bench:' <<<"$out")
    rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
    echo "$rate $(field requests "$line") $(field not200 "$line") $(field socket_errors "$line") $(field p50_ms "$line") $(field p99_ms "$line")"
}

run_new_connections() { # clients -> "rate requests not200 socket_errors p50 p99 load_cpu_ms"
    local line
    line=$("$load" --port "$port" --path /.well-known/est/simpleenroll --csr "$T/csr.b64" \
        --auth-file "$T/auth" --clients "$1" --seconds "$seconds")
    echo "$(field rate "$line") $(field requests "$line") $(field not200 "$line") $(field socket_errors "$line") $(field p50_ms "$line") $(field p99_ms "$line") $(field cpu_ms "$line")"
}

estcad_cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # user + system

bench_kind() { # kind ca_type tls_type
    local kind=$1 dir="$T/$1"
    ROOT_KEY_TYPE=$2 CA_KEY_TYPE=$2 TLS_KEY_TYPE=$3 TLS_KEY_STORE=$tls_store LISTEN=127.0.0.1:0 \
        "$root/packaging/provision.sh" "$dir" "$estca" >/dev/null 2>&1
    export SOFTHSM2_CONF="$dir/softhsm2.conf"
    # 32 workers; and no per-address limit on connections in their first request: every
    # benchmark client comes from 127.0.0.1, where real devices come from many addresses.
    sed -i "s/^threads = .*/threads = 32/; s/^\[server\]\$/[server]\nmax_connections_per_address = 0/" \
        "$dir/estca.conf"
    local key="pkcs11:token=estca;object=issuing-ca"
    local s1 sn issue
    s1=$(field rate "$("$bench" sign -c "$dir/estca.conf" --key "$key" --threads 1 --seconds "$seconds")")
    sn=$(field rate "$("$bench" sign -c "$dir/estca.conf" --key "$key" --threads "$cores" --seconds "$seconds")")
    issue=$(field rate "$("$bench" issue -c "$dir/estca.conf" --threads "$cores" --seconds "$seconds")")

    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null \
        -subj "/CN=bench-device" -outform DER 2>/dev/null | base64 -w0 > "$T/csr.b64"
    tr -d '\n' < "$dir/demo.credentials" | base64 -w0 > "$T/auth"
    "$estcad" -c "$dir/estca.conf" 2>"$T/estcad-$kind.log" &
    pid=$!
    port=
    for _ in $(seq 1 200); do
        port=$(sed -n 's/.*event=listening.* port=\([0-9]*\).*/\1/p' "$T/estcad-$kind.log")
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { cat "$T/estcad-$kind.log"; echo "estcad did not start" >&2; exit 1; }

    echo
    echo "== $kind: CA key $2 (token), TLS key $3 ($tls_store), $cores cores, ${seconds}s per level"
    printf '(a) token signatures/s: 1 thread %s, %s threads %s\n' "$s1" "$cores" "$sn"
    printf '(b) in-process issuance/s (%s threads): %s\n' "$cores" "$issue"
    printf '%-34s %10s %8s %8s %7s %9s %9s %7s\n' mode clients rate/s requests not200 p50_ms p99_ms "/(b)"
    local levels="1 8 32 128"
    [ "$smoke" = 1 ] && levels="8"
    for c in $levels; do
        read -r rate req n200 serr p50 p99 <<<"$(run_wrk "$c")"
        printf '%-34s %10s %8s %8s %7s %9s %9s %7.2f\n' "(c) keep-alive" "$c" "$rate" "$req" "$((n200 + serr))" "$p50" "$p99" "$(echo "$rate / $issue" | bc -l)"
        [ "$((n200 + serr))" -eq 0 ] && [ "${req:-0}" -gt 0 ] || bad=1
    done
    local ticks_before load_cpu
    ticks_before=$(estcad_cpu_ticks)
    read -r rate req n200 serr p50 p99 load_cpu <<<"$(run_new_connections 32)"
    printf '%-34s %10s %8s %8s %7s %9s %9s %7.2f\n' "(d) new TLS connection per request" 32 "$rate" "$req" "$((n200 + serr))" "$p50" "$p99" "$(echo "$rate / $issue" | bc -l)"
    # Both processes share the cores: what each spent per enrollment shows the split.
    printf '    CPU per enrollment in (d): estcad %.3f ms, estca-load %s ms\n' \
        "$(echo "($(estcad_cpu_ticks) - $ticks_before) * 1000 / $(getconf CLK_TCK) / ${req:-1}" | bc -l)" "$load_cpu"
    [ "$((n200 + serr))" -eq 0 ] && [ "${req:-0}" -gt 0 ] || bad=1
    printf '(e) estcad peak RSS: %s\n' "$(grep VmHWM "/proc/$pid/status" | awk '{print $2, $3}')"
    kill "$pid"
    wait "$pid" || true
    pid=
}

echo "estca enrollment benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
[ "$only" = rsa ] || bench_kind ec ec:P-256 ec:P-256
[ "$only" = ec ] || bench_kind rsa rsa:2048 rsa:2048
if [ "$bad" != 0 ]; then
    echo "FAIL: some answers were not 200 (or no request completed)"
    exit 1
fi
