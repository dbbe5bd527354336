#!/usr/bin/env bash
# Builds wolfSSL from Debian's own source package with its assembly options, once per
# (version, flags), into a cache outside the tree, and prints the install prefix.
# Debian's binary libwolfssl is built without AES-NI/SP assembly (~34x slower AES-GCM
# here), so the project links this build instead. Nothing is vendored into the repo.
#
# Usage: tools/lib/wolfssl.sh            -> prints the prefix (builds if needed)
# Env:   RINGPROXY_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/ringproxy)
set -euo pipefail

# Debian's options (--enable-distro = --enable-all) plus the assembly, minus what costs a
# proxy per connection: the stunnel compatibility takes a process-wide mutex in every
# wolfSSL_new, and SESSION_CERTS makes every session reserve ~37 KB for two 9-certificate
# peer chains that a server never reads back. SESSION_CERTS comes with any of
# sessioncerts, stunnel, haproxy, apachehttpd, libest, qt, nginx, openvpn, lighty,
# net-snmp, strongswan, and with TLS 1.3 + (external) PSK; all of them are off here.
# Also off, as per-session state a TLS proxy never uses: DTLS (and SCTP, multicast and
# SRTP, which would switch it back on) and TLS 1.3 post-handshake client
# authentication (it keeps the handshake hashes of every session).
flags=(--enable-distro --enable-aesni --enable-intelasm --enable-sp --enable-sp-asm
       --disable-stunnel --disable-sessioncerts --disable-haproxy --disable-apachehttpd
       --disable-libest --disable-qt --disable-psk --disable-nginx --disable-openvpn
       --disable-lighty --disable-net-snmp --disable-strongswan
       --disable-dtls --disable-sctp --disable-mcast --disable-srtp --disable-postauth
       --enable-static --disable-shared --with-pic --disable-examples --disable-crypttests)
cache=${RINGPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ringproxy}
mkdir -p "$cache"

# A private apt configuration with a bookworm deb-src line: the system's sources stay as
# they are, and the package index for sources lives in the cache.
apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
cat > "$apt_dir/sources.list" <<SRC
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian-security bookworm-security main
deb-src http://deb.debian.org/debian bookworm-updates main
SRC
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=-"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
          -o "Dir::Cache=$apt_dir" -o "APT::Sandbox::User=root")

version_file="$apt_dir/version"
# The source index is refreshed at most once a day; the version picks the cache entry.
if [ ! -s "$version_file" ] || [ -n "$(find "$version_file" -mmin +1440 2>/dev/null)" ]; then
  if apt-get "${apt_opts[@]}" -qq update >/dev/null 2>&1; then
    apt-cache "${apt_opts[@]}" showsrc wolfssl 2>/dev/null |
      awk '/^Version:/ {print $2}' | sort -V | tail -n 1 > "$version_file.new"
    [ -s "$version_file.new" ] && mv "$version_file.new" "$version_file"
  fi
fi
if [ ! -s "$version_file" ]; then
  # Offline: reuse the newest complete build if there is one.
  found=$(ls -d "$cache"/wolfssl-*/ 2>/dev/null | while read -r d; do
            [ -e "$d/.complete" ] && echo "${d%/}"; done | sort -V | tail -n 1)
  if [ -n "$found" ]; then echo "$found"; exit 0; fi
  echo "wolfssl.sh: cannot read Debian's source index for wolfssl (network?)" >&2
  exit 1
fi
version=$(cat "$version_file")
# Bump layout when the install steps below change, so old caches are not reused.
layout=2
key=$(printf '%s\n' "$version" "$layout" "${flags[@]}" | sha256sum | cut -c1-12)
prefix="$cache/wolfssl-$version-$key"
if [ -e "$prefix/.complete" ]; then echo "$prefix"; exit 0; fi

echo "wolfssl.sh: building wolfSSL $version from Debian source with assembly (once)" >&2
work=$(mktemp -d "$cache/wolfssl-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${apt_opts[@]}" -qq source "wolfssl=$version" >/dev/null 2>&1) || {
  echo "wolfssl.sh: apt-get source wolfssl=$version failed (needs dpkg-dev and network)" >&2
  exit 1
}
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'wolfssl-*' | head -n 1)
log="$work/build.log"
(
  cd "$src"
  [ -x configure ] || ./autogen.sh
  ./configure --prefix="$prefix" "${flags[@]}" CFLAGS="-O2 -g -fPIC"
  make -j"$(nproc)"
  rm -rf "$prefix"
  make install
  # Debian's packaging installs options.h by hand (debian/libwolfssl-dev.install); without
  # it a consumer compiles against other struct layouts than the library was built with.
  cp wolfssl/options.h "$prefix/include/wolfssl/options.h"
  # --enable-distro builds the shared library too; link statically so the binaries carry
  # the assembly build wherever they are copied.
  rm -f "$prefix"/lib/libwolfssl.so* "$prefix"/lib/libwolfssl.la
) >"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "wolfssl.sh: build failed" >&2; exit 1; }
printf '%s\n' "$version" "${flags[@]}" > "$prefix/.complete"
echo "$prefix"
