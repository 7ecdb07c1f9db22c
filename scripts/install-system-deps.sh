#!/usr/bin/env bash
# Installs the Debian packages kmt-harness needs when they are missing (root only):
# pcscd + vsmartcard-vpcd for the virtual PC/SC reader, libpcsclite-dev + gcc + headers to build pyscard.
set -euo pipefail
need=()
for pkg in pcscd vsmartcard-vpcd libpcsclite-dev pkg-config gcc; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ]; then
  echo "missing Debian packages: ${need[*]} (run as root: apt-get install -y ${need[*]})" >&2
  exit 0
fi
echo "installing Debian packages: ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
