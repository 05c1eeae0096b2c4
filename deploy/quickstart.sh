#!/usr/bin/env bash
# The main job on the built-in phantom data: set up, build, train the quickstart model on CPU
# (progress lines, validation, checkpoints under runs/quickstart), then print the summary.
# Extra arguments go to `hds-trainer fit`, e.g. --set train.epochs=5.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/build.sh"
cd "$root"
exec "${BUILD_DIR:-$root/build}/trainer/hds-trainer" fit --config deploy/configs/quickstart.pbtxt "$@"
