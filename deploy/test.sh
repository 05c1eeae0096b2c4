#!/usr/bin/env bash
# Set up, build, and run every test with ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/deploy/build.sh"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
