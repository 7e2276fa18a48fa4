#!/usr/bin/env bash
# Provisions a self-contained estca appliance in DIR on a fresh SoftHSM2 token: token, root
# CA, issuing CA, TLS CA and listener certificate (keys all generated on the token), a demo
# user, and DIR/estca.conf. Used by the quick start and by the integration tests.
#
#   packaging/provision.sh DIR ESTCA_BINARY
# Environment (optional): TOKEN_LABEL, ROOT_KEY_TYPE (ec:P-384), CA_KEY_TYPE (ec:P-256),
#   TLS_KEY_TYPE (ec:P-256), TLS_KEY_STORE (file: DIR/tls.key, mode 0600, so that the
#   listener and /cacerts stay up while the CA token is lost; token: on the CA token),
#   LISTEN (127.0.0.1:8443), DEMO_USER (demo).
# Afterwards run everything with SOFTHSM2_CONF=DIR/softhsm2.conf.
set -euo pipefail
dir=${1:?usage: provision.sh DIR ESTCA_BINARY}
estca=${2:?usage: provision.sh DIR ESTCA_BINARY}
token=${TOKEN_LABEL:-estca}
root_type=${ROOT_KEY_TYPE:-ec:P-384}
ca_type=${CA_KEY_TYPE:-ec:P-256}
tls_type=${TLS_KEY_TYPE:-ec:P-256}
tls_store=${TLS_KEY_STORE:-file}
listen=${LISTEN:-127.0.0.1:8443}
user=${DEMO_USER:-demo}

umask 077
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
export SOFTHSM2_CONF="$dir/softhsm2.conf"
cat > "$SOFTHSM2_CONF" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
CONF

# Secrets: random, in 0600 files, never on a command line.
openssl rand -hex 16 > "$dir/token.pin"
openssl rand -hex 16 > "$dir/so.pin"
printf '%s:%s\n' "$user" "$(openssl rand -hex 12)" > "$dir/demo.credentials"

uri="pkcs11:token=$token"
case $tls_store in
file) tls_key=tls.key ;;
token) tls_key="$uri;object=tls" ;;
*) echo "TLS_KEY_STORE must be file or token" >&2; exit 2 ;;
esac
cat > "$dir/estca.conf" <<CONF
# estca configuration (see packaging/estca.conf.example for every setting)
[token]
module = /usr/lib/softhsm/libsofthsm2.so
uri = $uri
pin_file = token.pin

[server]
listen = $listen
tls_certificate = tls-chain.pem
tls_key = $tls_key
threads = 8

[ledger]
path = ledger.sqlite

[auth]
users_file = users

[ca:issuing]
key = $uri;object=issuing-ca
certificate = issuing-ca.pem
chain = ca-chain.pem

[label:default]
ca = issuing
validity_days = 365
CONF
chmod 0644 "$dir/estca.conf"

"$estca" token init --label "$token" --so-pin-file "$dir/so.pin" --pin-file "$dir/token.pin"
tok=(--config "$dir/estca.conf")
"$estca" key generate "${tok[@]}" --key "$uri;object=root-ca" --type "$root_type"
"$estca" key generate "${tok[@]}" --key "$uri;object=issuing-ca" --type "$ca_type"
"$estca" key generate "${tok[@]}" --key "$uri;object=tls-ca" --type "$tls_type"
if [ "$tls_store" = token ]; then
    "$estca" key generate "${tok[@]}" --key "$tls_key" --type "$tls_type"
else
    case $tls_type in
    ec:P-*) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${tls_type#ec:}" -out "$dir/tls.key" ;;
    rsa:*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${tls_type#rsa:}" -out "$dir/tls.key" ;;
    *) echo "unknown TLS_KEY_TYPE $tls_type" >&2; exit 2 ;;
    esac
    chmod 0600 "$dir/tls.key"
    tls_key=$dir/tls.key
fi

"$estca" ca root "${tok[@]}" --key "$uri;object=root-ca" \
    --subject "/CN=estca Root CA/O=estca" --out "$dir/root-ca.pem"
"$estca" ca issuing "${tok[@]}" --key "$uri;object=issuing-ca" \
    --subject "/CN=estca Issuing CA/O=estca" --root-key "$uri;object=root-ca" \
    --root-cert "$dir/root-ca.pem" --out "$dir/issuing-ca.pem" --chain-out "$dir/ca-chain.pem"

# The listener's certificate comes from a CA of its own, so that no certificate the EST CA
# issues to a device can impersonate the server to clients that trust tls-ca.pem.
"$estca" ca root "${tok[@]}" --key "$uri;object=tls-ca" \
    --subject "/CN=estca TLS CA/O=estca" --out "$dir/tls-ca.pem"
"$estca" tls certificate "${tok[@]}" --key "$tls_key" --subject "/CN=localhost/O=estca" \
    --san "IP:127.0.0.1,IP:::1,DNS:localhost" --issuer-key "$uri;object=tls-ca" \
    --issuer-cert "$dir/tls-ca.pem" --out "$dir/tls-chain.pem"

cut -d: -f2- "$dir/demo.credentials" | "$estca" user add --users-file "$dir/users" "$user"
chmod 0644 "$dir"/*.pem
