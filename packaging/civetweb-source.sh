#!/usr/bin/env bash
# Fetches and unpacks Debian's civetweb source package into DEST, using a private deb-src
# list so the machine's own apt configuration is left untouched.
set -euo pipefail
dest=${1:?usage: civetweb-source.sh DEST}
[ -f "$dest/src/civetweb.c" ] && exit 0
# dpkg-source puts the upstream tarball beside its target: the parent must exist.
mkdir -p "$(dirname "$dest")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sources" "$work/lists/partial"
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
cat > "$work/sources/debian-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/sources"
          -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -q >&2
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only civetweb >&2)
dsc=$(ls "$work"/civetweb_*.dsc)
rm -rf "$dest.tmp"
dpkg-source --no-check -x "$dsc" "$dest.tmp" >&2
rm -rf "$dest"
mv "$dest.tmp" "$dest"
