#!/usr/bin/env bash
# The headers the GPU machine lacks and cannot download (it has no network), unpacked here under
# build/deps for `carry`: xxhash.h (Debian's libxxhash-dev; slm uses it header-only) and CLI11's
# headers (libcli11-dev: the programs' --config reader). CMake finds
# it there by itself (CMakeLists.txt). Run on this machine, then pass carry=["build/deps"].
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f build/deps/usr/include/xxhash.h ] && [ -f build/deps/usr/include/CLI/CLI.hpp ] &&
  { echo "build/deps: xxhash.h and CLI11 already there"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download libxxhash-dev libcli11-dev >/dev/null)
mkdir -p build/deps
for deb in "$work"/*.deb; do dpkg -x "$deb" build/deps; done
echo "build/deps: $(ls build/deps/usr/include)"
