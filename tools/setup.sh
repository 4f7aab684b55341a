#!/usr/bin/env bash
# Installs the Debian packages slm builds against (skips what is already there), and any
# further packages named as arguments (the test command adds what only tests need). Used by the
# two README commands and by CI; safe to run again.
set -euo pipefail
packages=(cmake ninja-build g++ libeigen3-dev doctest-dev libbenchmark-dev libsentencepiece-dev
          nlohmann-json3-dev libxxhash-dev libcli11-dev zlib1g-dev libopenmpi-dev openmpi-bin bible-kjv "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "slm setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
