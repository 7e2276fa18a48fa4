#!/usr/bin/env bash
# Quick start: installs the Debian dependencies if missing, builds, provisions (once) an
# appliance on a SoftHSM2 token under var/quickstart/, and runs estcad in the foreground on
# https://127.0.0.1:${ESTCA_PORT:-8443}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/packaging/deps.sh"

build="$root/build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCIVETWEB_SOURCE_CACHE="$build/civetweb-src" >/dev/null
cmake --build "$build" --target estcad estca -j"$(nproc)" >/dev/null

# ESTCA_QUICKSTART_DIR lets the test of this script keep its state out of the checkout.
qrel=${ESTCA_QUICKSTART_DIR:-var/quickstart}
case $qrel in /*) q=$qrel ;; *) q="$root/$qrel" ;; esac
port=${ESTCA_PORT:-8443}
export SOFTHSM2_CONF="$q/softhsm2.conf"
if [ ! -f "$q/.provisioned" ]; then
    rm -rf "$q"
    TOKEN_LABEL=estca-quickstart "$root/packaging/provision.sh" "$q" "$build/provisioning/estca"
    touch "$q/.provisioned"
fi
sed -i "s/^listen = .*/listen = 127.0.0.1:$port/" "$q/estca.conf"

cat <<MSG

estca quick start: https://127.0.0.1:$port/.well-known/est/  (Ctrl-C stops it)
Enroll a device from another shell in $root:

  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout device.key \\
      -subj "/CN=device1" -outform DER | base64 -w0 > device.b64
  curl --cacert $qrel/tls-ca.pem --user "\$(cat $qrel/demo.credentials)" \\
      --data-binary @device.b64 -H "Content-Type: application/pkcs10" \\
      https://127.0.0.1:$port/.well-known/est/simpleenroll -o device-p7.b64
  base64 -d device-p7.b64 | openssl pkcs7 -inform DER -print_certs -out device.pem
  openssl verify -CAfile $qrel/ca-chain.pem device.pem

MSG
exec "$build/appliance/estcad" -c "$q/estca.conf"
