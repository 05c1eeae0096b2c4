#!/usr/bin/env bash
# Installs what is missing (deploy/setup.sh) and builds everything in Release into BUILD_DIR
# (default: build). ccache is used when present.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/deploy/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHDS_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j "$(nproc)"
