#!/usr/bin/env bash
# Configures (once) and builds one configuration: release | asan.
#   release: -O3, what ships and what benchmarks measure.
#   asan:    -O2 -g with AddressSanitizer + UndefinedBehaviorSanitizer; pools off so
#            the sanitizer sees every object.
set -euo pipefail
cd "$(dirname "$0")/../.."
kind=${1:?usage: tools/lib/build.sh release|asan}
prefix=$(tools/lib/wolfssl.sh)
dir=build/$kind
case "$kind" in
  release) opts=(-Dbuildtype=release) ;;
  asan) opts=(-Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false -Dpools=false) ;;
  *) echo "unknown build kind $kind" >&2; exit 2 ;;
esac
# A different wolfSSL build (new Debian version) means a fresh configure.
if [ -f "$dir/build.ninja" ] && [ "$(cat "$dir/.wolfssl-prefix" 2>/dev/null)" != "$prefix" ]; then
  rm -rf "$dir"
fi
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" -Dpkg_config_path="$prefix/lib/pkgconfig" "${opts[@]}" >/dev/null
  echo "$prefix" > "$dir/.wolfssl-prefix"
fi
ninja -C "$dir" --quiet
