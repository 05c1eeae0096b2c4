#!/usr/bin/env bash
# Usage: tests/fuzz/run.sh [SECONDS [TARGET...]]
# Runs each fuzz target (all of them, or the TARGETs named: pgm png mias_info osirix_rois control
# ring_header) for SECONDS each (default 60) with libFuzzer + ASan + UBSan (clang).
# Seeds come from tests/fuzz/corpus/<target>; new corpus and any crash land in
# build-fuzz/corpus/<target> and build-fuzz/findings/<target>. A crash found is fixed in the code
# and its input copied into tests/fuzz/corpus/<target>/ so that ctest replays it from then on.
# Prints one line per target: executions, corpus size, findings.
set -euo pipefail
seconds=${1:-60}
shift || true
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHDS_BUILD_FUZZERS=ON -DHDS_BUILD_TRAINER=OFF -DHDS_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
status=0
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for fuzzer in "$build"/tests/fuzz/fuzz_*; do targets+=("${fuzzer##*/fuzz_}"); done
fi
for target in "${targets[@]}"; do
  fuzzer=$build/tests/fuzz/fuzz_$target
  if [ ! -x "$fuzzer" ]; then
    echo "$target: no such fuzz target ($fuzzer)" >&2
    status=1
    continue
  fi
  corpus=$build/corpus/$target findings=$build/findings/$target
  mkdir -p "$corpus" "$findings"
  log=$build/fuzz-$target.log
  if "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$findings/" \
      "$corpus" "$root/tests/fuzz/corpus/$target" >"$log" 2>&1; then :; else status=1; fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  inputs=$(find "$corpus" -type f | wc -l)
  found=$(find "$findings" -type f | wc -l)
  echo "$target: $runs executions in ${seconds}s, corpus $inputs inputs, findings $found (log: $log)"
done
exit $status
