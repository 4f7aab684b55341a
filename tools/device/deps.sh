#!/usr/bin/env bash
# The headers the GPU machine lacks and cannot download (it has no network), unpacked here under
# build/deps for `carry`: xxhash.h (Debian's libxxhash-dev; slm uses it header-only). CMake finds
# it there by itself (CMakeLists.txt). Run on this machine, then pass carry=["build/deps"].
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f build/deps/usr/include/xxhash.h ] && { echo "build/deps: xxhash.h already there"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download libxxhash-dev >/dev/null)
mkdir -p build/deps
dpkg -x "$work"/libxxhash-dev_*.deb build/deps
echo "build/deps: $(ls build/deps/usr/include)"
