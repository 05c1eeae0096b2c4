#!/usr/bin/env bash
# The main job on the built-in phantom data: set up, build, train the quickstart model on CPU
# (progress lines, validation, checkpoints under runs/quickstart), then measure its best-Dice
# checkpoint on the validation films with both protocols beside the trivial baselines
# (runs/quickstart/eval). Extra arguments go to `hds-trainer fit`, e.g. --set train.epochs=5.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/build.sh"
cd "$root"
trainer="${BUILD_DIR:-$root/build}/trainer/hds-trainer"
"$trainer" fit --config deploy/configs/quickstart.pbtxt "$@"
# A run stopped early (exit 75 above ends the script first) has nothing final to measure.
checkpoint=runs/quickstart/checkpoints/best-dice
[ -e "$checkpoint" ] || checkpoint=runs/quickstart/checkpoints/latest
"$trainer" eval --checkpoint "$checkpoint" --out runs/quickstart/eval
