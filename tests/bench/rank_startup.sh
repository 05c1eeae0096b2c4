#!/usr/bin/env bash
# What each trainer rank costs before it trains, with a data service: `hds-launch local --np NP`
# on a phantom dataset of FILMS training films (and FILMS / 8 validation films) of 512x384, a
# small model, two epochs of batch 2 per rank. Per round: milliseconds from the launch to the
# first training step (the service's load included), and the peak resident memory (VmHWM) of
# each rank read at that step.
# Runs the builds given alternately, ROUNDS times, so that drift on the machine hits them alike.
# Usage: tests/bench/rank_startup.sh NP FILMS ROUNDS BUILD_DIR [BUILD_DIR ...]
# Output: one JSON line per build and round.
set -euo pipefail
np=${1:?ranks} films=${2:?training films} rounds=${3:?rounds}
shift 3
[ $# -ge 1 ] || { echo "usage: $0 NP FILMS ROUNDS BUILD_DIR [BUILD_DIR ...]" >&2; exit 2; }
work=$(mktemp -d /tmp/hds-rank-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT

cat > "$work/job.pbtxt" << EOF
model { widths: [4, 4, 8, 8, 8, 8, 8, 8, 8, 4, 4] blocks_per_stage: 1 }
data {
  source: "phantom"
  phantom { train_count: $films val_count: $((films / 8)) test_count: 0 seed: 7 }
  image_rows: 512
  image_cols: 384
  patch_rows: 128
  patch_cols: 128
  use_cache: false
}
train { epochs: 2 batch_size: 2 validate_every: 1 validate_from: 1 threads: 1
        log_every_steps: 1 output_dir: "$work/run" }
monitoring { metrics_port: 0 }
EOF

for round in $(seq "$rounds"); do
  for build in "$@"; do
    rm -rf "$work/run"
    start=$(date +%s%N)
    "$build/launcher/hds-launch" local --config "$work/job.pbtxt" --np "$np" \
      --job-id "rank-startup-$$" > "$work/launch.log" 2>&1 &
    launcher=$!
    until grep -q '^epoch 1/2 step' "$work/launch.log"; do
      kill -0 "$launcher" 2> /dev/null || { cat "$work/launch.log" >&2; exit 1; }
      sleep 0.05
    done
    first_step_ms=$((($(date +%s%N) - start) / 1000000))
    peaks=()
    for pid in $(pgrep -x hds-trainer); do
      grep -qF "$work/job.pbtxt" "/proc/$pid/cmdline" 2> /dev/null || continue
      peaks+=("$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")")
    done
    wait "$launcher"
    printf '{"build":"%s","round":%d,"ranks":%d,"films":%d,"first_step_ms":%d,"rank_peak_kib":[%s]}\n' \
      "$build" "$round" "$np" "$films" "$first_step_ms" "$(IFS=,; echo "${peaks[*]}")"
  done
done
