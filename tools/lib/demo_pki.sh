#!/usr/bin/env bash
# Makes the local demo PKI that deploy/ringproxy.toml's TLS listener uses, once:
# a private CA and an ECDSA P-256 certificate for localhost (and 127.0.0.1), both valid
# for a year, under build/run-pki/, and made again when either expires within a day.
# Prints the directory. Not for production: a real deployment points [listener.tls] at
# its own certificates.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=build/run-pki
if [ -s "$dir/localhost.crt" ] && [ -s "$dir/localhost.key" ] && [ -s "$dir/ca.pem" ] &&
  openssl x509 -checkend 86400 -noout -in "$dir/localhost.crt" >/dev/null &&
  openssl x509 -checkend 86400 -noout -in "$dir/ca.pem" >/dev/null; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=ringproxy local demo CA" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$tmp/localhost.key" -out "$tmp/localhost.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$tmp/ext"
openssl x509 -req -in "$tmp/localhost.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
  -CAcreateserial -days 365 -extfile "$tmp/ext" -out "$tmp/localhost.crt" 2>/dev/null
cp "$tmp/ca.pem" "$tmp/localhost.crt" "$tmp/localhost.key" "$dir/"
echo "$dir"
