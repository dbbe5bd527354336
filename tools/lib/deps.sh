#!/usr/bin/env bash
# Installs the Debian packages ringproxy needs that are not installed yet.
# Quiet and quick when everything is there (one dpkg-query).
set -euo pipefail

packages=(
  # build
  g++ meson ninja-build pkg-config clang-format
  liburing-dev libabsl-dev libfmt-dev libtomlplusplus-dev libssl-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # wolfSSL from Debian's source package (tools/lib/wolfssl.sh)
  dpkg-dev autoconf automake libtool make ca-certificates
  # tests and benchmarks: real peers and clients, the anchors, plots
  python3 procps util-linux iproute2 curl openssl testssl.sh libnss-wrapper
  nginx-full libnginx-mod-stream libnginx-mod-mail haproxy
  dovecot-imapd dovecot-pop3d
  gnuplot-nox
  # route resolution: a real memcached; libmemcached (with its tools) as the ketama oracle
  memcached libmemcached-tools
)

# One query. A package dpkg has never heard of is not printed (and fails the query,
# hence `|| true`), so what is missing is every package not listed as installed.
installed=" $( (dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null ||
  true) | awk '$2 == "installed" { printf "%s ", $1 }') "
missing=()
for p in "${packages[@]}"; do
  case "$installed" in *" $p "*) ;; *) missing+=("$p") ;; esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages start their daemons; tests and benchmarks run their own on other ports.
for s in nginx haproxy dovecot memcached; do
  $sudo systemctl stop "$s" 2>/dev/null || $sudo service "$s" stop 2>/dev/null || true
done
for pf in /run/nginx.pid /run/haproxy.pid /run/dovecot/master.pid /run/memcached/memcached.pid; do
  [ -s "$pf" ] && $sudo kill "$(cat "$pf")" 2>/dev/null || true
done
exit 0
