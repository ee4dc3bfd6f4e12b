#!/usr/bin/env bash
# Installs the Debian packages listed in system-packages.txt when they are missing.
# As root it uses apt-get; otherwise it names what is missing and how to install it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < "$here/system-packages.txt"
[[ ${#missing[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "system-packages: missing ${missing[*]} and no apt-get here; install them with your package manager" >&2
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "system-packages: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 0
fi
echo "system-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
  apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
}
