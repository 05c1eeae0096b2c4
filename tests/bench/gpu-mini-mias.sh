#!/usr/bin/env bash
# Issue 20's item 3 on the lent GPU machine: deploy/configs/mini-mias-gpu.pbtxt trained on rotation
# 0 through the whole multi-process path (hds-launch local: data service, ring, one CUDA rank),
# then its best-Dice checkpoint scored on the validation fold and, once, on the test fold.
# One call may carry 64 MiB: the build's dependencies (deploy/gpu/deps, 30 MB) or the films at the
# training size (deploy/gpu/mini-mias-pack from deploy/gpu/pack-mini-mias.sh, 42 MB), not both.
# So two calls on one warm machine (under 30 s apart, or it starts bare again):
#   1. carry deploy/gpu/deps            -> builds hds-trainer, hds-data-service, hds-launch
#   2. carry deploy/gpu/mini-mias-pack  -> trains, evaluates (the build of call 1 stays there)
# Everything lands in $OUT (or tests/bench/gpu-out): gpu-mini-mias.log, launch.log, the run's
# history.jsonl and curves.svg, eval-val/ and eval-test/ (metrics.json, metrics.md): commit those
# under tests/bench/real-data/, not the checkpoints.
# Usage: tests/bench/gpu-mini-mias.sh [TRAIN_SECONDS]   (default 360: the fit's time limit; it
# stops with a checkpoint when reached, and the evaluation uses the best one so far)
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
train_seconds=${1:-360}
out=${OUT:-$repo/tests/bench/gpu-out}
mkdir -p "$out"
exec > >(tee -a "$out/gpu-mini-mias.log") 2>&1
start=$(date +%s)
elapsed() { echo "[$(( $(date +%s) - start )) s] $*"; }
build=$repo/build-gpu
pack=$repo/deploy/gpu/mini-mias-pack

if [ ! -d "$pack" ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$repo/deploy/gpu/build.sh" "$build" hds-trainer hds-data-service hds-launch ||
    { echo "BUILD FAILED"; exit 1; }
  elapsed "built; now call again at once, carrying deploy/gpu/mini-mias-pack"
  exit 0
fi
if [ ! -x "$build/trainer/hds-trainer" ] || [ ! -d "$repo/deploy/gpu/deps/root" ]; then
  echo "no build at $build (the machine started bare?): call first with deploy/gpu/deps carried"
  exit 1
fi
root=$repo/deploy/gpu/deps/root
export LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# The pack holds the films as preprocessed: read them with nothing done twice.
run=$repo/runs/mini-mias-gpu
data=(--set data.source=folder --set data.root="$pack" --set data.breast_region=WHOLE_FILM
  --set data.blank_threshold=0 --set train.output_dir="$run" --set monitoring.metrics_port=0)
config=$repo/deploy/configs/mini-mias-gpu.pbtxt
# SIGTERM at the limit: the launcher stops the job with a checkpoint at an agreed step.
timeout -k 60 "$train_seconds" "$build/launcher/hds-launch" local --config "$config" --np 1 \
  --progress lines --resume auto "${data[@]}" > "$out/launch.log" 2>&1
echo "launch: rc $? (124: stopped at the time limit with a checkpoint)"
tail -n 5 "$out/launch.log"
elapsed "trained"
cp "$run/history.jsonl" "$run/curves.svg" "$out/" 2>/dev/null

# The recipe was chosen on CPU (mini-mias-cpu-lowres, validation fold); this run's checkpoint is
# chosen on the validation fold too, and the test fold is scored once, for the record.
checkpoint=$run/checkpoints/best-dice
[ -d "$checkpoint" ] || checkpoint=$run/checkpoints/latest
for split in val test; do
  "$build/trainer/hds-trainer" eval --checkpoint "$checkpoint" --split "$split" \
    "${data[@]}" --out "$out/eval-$split" > "$out/eval-$split.log" 2>&1
  echo "eval $split: rc $?"
done
rm -rf "$out"/eval-*/overlays  # 14 MB of per-film images: not needed for the record
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
elapsed "gpu-mini-mias.sh done"
