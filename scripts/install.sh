#!/usr/bin/env bash
# Installs everything vmdelta's demo and tests need, idempotently: Debian packages (QEMU tools,
# nbdkit, libnbd, gnutls, libvhdi, OpenStack Swift for the S3 tier, Chromium for the browser
# tests) and the npm packages.
# Run as root on Debian 12 with Node.js 20. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(qemu-utils qemu-block-extra nbdkit libnbd-bin gnutls-bin libvhdi-utils python3-libvhdi
  swift swift-proxy swift-account swift-container swift-object memcached chromium)
apt_norecommends=(qemu-system-common)

missing=()
for pkg in "${apt_packages[@]}" "${apt_norecommends[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "install: Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  want=() ; want_nr=()
  for pkg in "${missing[@]}"; do
    if [[ " ${apt_norecommends[*]} " == *" $pkg "* ]]; then want_nr+=("$pkg"); else want+=("$pkg"); fi
  done
  ((${#want[@]})) && apt-get install -y -qq "${want[@]}" >/dev/null
  ((${#want_nr[@]})) && apt-get install -y -qq --no-install-recommends "${want_nr[@]}" >/dev/null
fi
for tool in qemu-img qemu-io qemu-nbd qemu-storage-daemon nbdkit nbdinfo nbdcopy certtool vhdiinfo \
  swift-proxy-server memcached chromium; do
  command -v "$tool" >/dev/null || { echo "install: required tool '$tool' is still missing" >&2; exit 1; }
done

# npm packages: reinstall only when package-lock.json changed since the last install.
stamp=node_modules/.vmdelta-install-stamp
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$lock_hash" ]]; then
  echo "install: npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > "$stamp"
fi
node -e "require('better-sqlite3'); require('zstd-napi'); require('@napi-rs/blake-hash')" || { echo "install: native npm modules failed to build" >&2; exit 1; }
