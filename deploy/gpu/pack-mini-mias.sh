#!/usr/bin/env bash
# Writes mini-MIAS at the GPU recipe's training size (deploy/configs/mini-mias-gpu.pbtxt: films
# 1024x512, breast only) as a `folder` dataset small enough to carry to the GPU machine:
# `hds-data-service export --preprocessed` of rotation 0's split (the same patient folds as the
# mini-mias source), 257 8-bit PNGs of about 160 KB and their masks, about 42 MB. Read it with
# data.source folder, data.breast_region WHOLE_FILM and data.blank_threshold 0 (nothing is done
# twice), as tests/bench/gpu-mini-mias.sh does: each film then trains as the original does at
# that size, up to rounding to whole 8-bit levels.
# Usage: deploy/gpu/pack-mini-mias.sh [MINI_MIAS_ROOT] [BUILD_DIR]   (writes deploy/gpu/mini-mias-pack)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
mias=${1:-$repo/../shared/data/mini-mias}
build=${2:-$repo/build}
pack=$repo/deploy/gpu/mini-mias-pack
if [ -e "$pack" ]; then
  echo "pack-mini-mias: $pack exists; remove it to write it again" >&2
  exit 1
fi
"$build/data_service/hds-data-service" export --config "$repo/deploy/configs/mini-mias-gpu.pbtxt" \
  --set data.root="$mias" --out "$pack" --preprocessed
du -sh "$pack"
