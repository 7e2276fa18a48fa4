#!/usr/bin/env bash
# The one list of Debian 12 packages that estca needs to build, test and run its quick start.
# Idempotent: installs only what is missing. Both README commands call it.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang clang-format dpkg-dev patch
  # libraries
  libssl-dev libp11-dev libp11-kit-dev libsqlite3-dev libinih-dev libcrypt-dev libjansson-dev
  libgoogle-perftools-dev # tcmalloc, estcad's allocator (CMakeLists.txt)
  # the token
  softhsm2 opensc
  # tests and benchmarks
  libcriterion-dev curl openssl sqlite3 strongswan-pki libstrongswan-standard-plugins libstrongswan-extra-plugins wrk
  libclang-rt-14-dev procps bc valgrind
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
