#!/usr/bin/env bash
# Installs the Debian 12 packages changepipe builds and tests with. Idempotent: only missing
# packages are installed, so a second run does nothing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      liblmdb-dev libmicrohttpd-dev libnghttp2-dev libssl-dev libcurl4-openssl-dev
      libdeflate-dev libcjson-dev libjq-dev libonig-dev libsqlite3-dev zlib1g-dev
      awscli python3 zip unzip tzdata chromium)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=sudo
    else
        echo "changepipe needs these Debian packages: ${missing[*]}" >&2
        echo "run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
echo "installing: ${missing[*]}"
${SUDO:-} apt-get update -qq
DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq "${missing[@]}"
