#!/usr/bin/env bash
# Installs what is missing (deploy/setup.sh) and builds everything in Release into BUILD_DIR
# (default: build). ccache is used when present. HDS_WARNINGS_AS_ERRORS=ON (what CI sets) fails
# the build on any compiler warning.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/deploy/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHDS_BUILD_TESTS=ON \
  -DHDS_WARNINGS_AS_ERRORS="${HDS_WARNINGS_AS_ERRORS:-OFF}" >/dev/null
cmake --build "$build" -j "$(nproc)"
