#!/usr/bin/env bash
# Debian/Ubuntu packages that GPAW's build compiles and links against (`make dft` runs this).
# Installs only what is missing; needs root or sudo for that.
set -euo pipefail
packages=(build-essential pkg-config libxc-dev libopenblas-dev liblapack-dev libfftw3-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "error: install these packages (or your system's equivalents) first: ${missing[*]}" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "installing ${missing[*]}"
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
