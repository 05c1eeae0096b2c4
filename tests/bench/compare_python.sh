#!/usr/bin/env bash
# The C++ training step against the same network trained from Python PyTorch (Debian's
# python3-torch, the same 1.13 build as libtorch-dev) on this machine, same threads, same sizes.
# Runs the two alternately, ROUNDS times, so that drift on the machine hits both alike.
# Usage: tests/bench/compare_python.sh BUILD_DIR [BATCH HEIGHT WIDTH STEPS THREADS ROUNDS]
set -euo pipefail
build=${1:?build directory}
batch=${2:-2} height=${3:-256} width=${4:-256} steps=${5:-10} threads=${6:-2} rounds=${7:-3}
here=$(cd "$(dirname "$0")" && pwd)
for round in $(seq "$rounds"); do
  OMP_NUM_THREADS=$threads "$build/trainer/hds-trainer" bench --batch "$batch" --height "$height" \
    --width "$width" --steps "$steps" --device cpu --threads "$threads" |
    sed 's/"round":1,/"round":'"$round"',/; s/^{/{"impl":"hds",/'
  OMP_NUM_THREADS=$threads /usr/bin/python3 "$here/hds_reference.py" bench --batch "$batch" \
    --height "$height" --width "$width" --steps "$steps" --threads "$threads" |
    sed 's/"round": 1,/"round": '"$round"',/'
done
