#!/usr/bin/env bash
# Builds the libraries, the programs but the trainer, and their tests with AddressSanitizer and
# UndefinedBehaviorSanitizer into SANITIZE_BUILD_DIR (default: build-sanitize), then runs every
# test that does not need the LibTorch trainer, the fuzz corpora's replays included. Any sanitizer
# report fails its test. The trainer is left out: LibTorch is not built with the sanitizers, so
# its reports would be about code we do not own. Run after deploy/setup.sh (deploy/test.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD_DIR:-$root/build-sanitize}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHDS_BUILD_TESTS=ON \
  -DHDS_BUILD_TRAINER=OFF -DHDS_SANITIZE=ON \
  -DHDS_WARNINGS_AS_ERRORS="${HDS_WARNINGS_AS_ERRORS:-OFF}" >/dev/null
cmake --build "$build" -j "$(nproc)"
# Leaks count too (none needs a suppression today); a report fails the test that met it.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
