#!/usr/bin/env bash
# Issue 19's GPU session in one call (under 8 minutes on an H100/H200): builds hds against the
# machine's CUDA LibTorch with NCCL (deploy/gpu/build.sh), runs the CUDA-vs-CPU parity test
# (tests/trainer/step_compute_test.cpp) and the NCCL gradient-sync tests, times `hds-trainer bench`
# at the paper's 512x384 patch for each compute variant at batch 8 and 32 (and with the one-rank
# NCCL gradient sync) beside PyTorch's own step of the same network (tests/bench/hds_reference.py:
# eager, and torch.compile'd with bf16 autocast and channels-last), and trains through the whole
# multi-process path (hds-launch local: data service, shared-memory ring, trainer on the GPU) on
# phantom films at the paper's patch size.
# Everything lands in $OUT (the device tool's output folder) or tests/bench/gpu-out:
# <date>-<card>.jsonl (one line per timed run, "impl" hds or pytorch: commit it as
# tests/bench/gpu/), parity.json, nccl.json, launch.log, pytorch-*.log and gpu.log.
# Before: deploy/gpu/fetch-deps.sh on a machine with network; carry deploy/gpu/deps.
# Usage: tests/bench/gpu.sh [ROUNDS]   (default 3 rounds per variant, each a median of 20 steps;
# RESULTS.md takes the median of the rounds)
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
rounds=${1:-3}
out=${OUT:-$repo/tests/bench/gpu-out}
mkdir -p "$out"
exec > >(tee "$out/gpu.log") 2>&1
start=$(date +%s)
elapsed() { echo "[$(( $(date +%s) - start )) s] $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
nproc
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr '[:upper:] ' '[:lower:]-')
results=$out/$(date +%F)-$card.jsonl

# PyTorch's side, one process per configuration: each compiles and warms up now, while hds
# builds, and is timed later alone (--ready / --go), so that neither the build nor the other
# configurations share the card or the cores with its timed steps. max-autotune is left out:
# its compilation alone would take most of the call. Their time limits lie past the call's own
# (600 s at most): a slow build must not cost the PyTorch figures.
pytorch_configs=(
  "8|eager-fp32|--precision fp32"
  "8|eager-bf16-nhwc|--precision bf16 --channels-last"
  "8|compile-bf16-nhwc|--precision bf16 --channels-last --compile default"
  "8|compile-graphs-bf16-nhwc|--precision bf16 --channels-last --compile reduce-overhead"
  "32|compile-bf16-nhwc|--precision bf16 --channels-last --compile default"
  "32|compile-graphs-bf16-nhwc|--precision bf16 --channels-last --compile reduce-overhead"
)
gates=$(mktemp -d)
pytorch_pids=()
# A failed build must not leave compiling processes behind.
trap 'kill "${pytorch_pids[@]}" 2>/dev/null; rm -rf "$gates"' EXIT
for k in "${!pytorch_configs[@]}"; do
  IFS='|' read -r batch name flags <<< "${pytorch_configs[$k]}"
  # shellcheck disable=SC2086  # flags are words
  timeout -k 10 580 python3 "$repo/tests/bench/hds_reference.py" bench --device cuda \
    --batch "$batch" --height 512 --width 384 --steps 20 --warmup 5 --rounds "$rounds" $flags \
    --ready "$gates/ready-$k" --go "$gates/go-$k" --go-limit-s 560 \
    > "$gates/lines-$k" 2> "$out/pytorch-$name-b$batch.log" &
  pytorch_pids+=($!)
done

build=$repo/build-gpu
"$repo/deploy/gpu/build.sh" "$build" hds-trainer hds-data-service hds-launch hds_trainer_tests \
  hds_dist_tests || { echo "BUILD FAILED"; exit 1; }
root=$repo/deploy/gpu/deps/root
export LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
elapsed "built"

# Parity first: a fast variant that computes something else is no result.
"$build/tests/trainer/hds_trainer_tests" --gtest_filter='StepCompute.*' \
  --gtest_output=json:"$out/parity.json"
echo "parity: rc $?"
HDS_TEST_DEVICE=cuda "$build/tests/trainer/hds_dist_tests" --gtest_output=json:"$out/nccl.json"
echo "nccl gradient sync tests: rc $?"
elapsed "tests done"

# PyTorch, one configuration at a time (a process still compiling is waited for; its timeout
# bounds the wait).
for k in "${!pytorch_configs[@]}"; do
  IFS='|' read -r batch name _ <<< "${pytorch_configs[$k]}"
  touch "$gates/go-$k"
  wait "${pytorch_pids[$k]}"
  rc=$?
  sed "s/^{/{\"variant\":\"$name\",/" "$gates/lines-$k" | tee -a "$results"
  [ "$rc" = 0 ] || echo "pytorch $name batch $batch: FAILED (rc $rc, see pytorch-$name-b$batch.log)"
done
elapsed "pytorch done"

trainer=$build/trainer/hds-trainer
config=$repo/deploy/configs/paper.pbtxt
# Each variant: its name, then its train.* overrides.
fp32="fp32|train.precision=FP32 train.channels_last=false"
fp32_nhwc="fp32-nhwc|train.precision=FP32 train.channels_last=true"
bf16="bf16|train.precision=BF16 train.channels_last=false"
bf16_nhwc="bf16-nhwc|train.precision=BF16 train.channels_last=true"
# One process a variant and batch, its rounds after one warm-up (CUDA and cuDNN start once).
bench() {  # BATCH VARIANT [bench options...]
  local batch=$1 variant=$2 sets=() s lines line
  shift 2
  for s in ${variant#*|}; do sets+=(--set "$s"); done
  if ! lines=$("$trainer" bench --config "$config" "${sets[@]}" --device cuda --batch "$batch" \
    --height 512 --width 384 --steps 20 --warmup 5 --rounds "$rounds" "$@" | grep '^{') ||
    [ -z "$lines" ]; then
    echo "bench ${variant%%|*} batch $batch $*: FAILED"
    return
  fi
  while IFS= read -r line; do
    echo "{\"impl\":\"hds\",\"variant\":\"${variant%%|*}\",${line#\{}"
  done <<< "$lines" | tee -a "$results"
}
# batch 8 (the paper's): every variant; batch 32: the float32 baseline and the fastest candidate.
for variant in "$fp32" "$fp32_nhwc" "$bf16" "$bf16_nhwc"; do bench 8 "$variant"; done
bench 32 "$fp32"
bench 32 "$bf16_nhwc"
# The step with the NCCL gradient sync of one rank (its copies and all-reduce launches).
bench 8 "$bf16_nhwc" --sync
elapsed "hds bench done"

# The multi-process path: the data service cuts and augments 512x384 patches from phantom films
# of 1024x768 and streams them over the ring to one CUDA rank (bf16, channels-last). The
# progress lines carry the rate in patches/s.
run=$(mktemp -d)
timeout -k 30 100 "$build/launcher/hds-launch" local --config "$config" --np 1 --progress lines \
  --set data.source=phantom --set "data.phantom={train_count: 48 val_count: 4 test_count: 0}" \
  --set data.image_rows=1024 --set data.image_cols=768 \
  --set train.device=cuda --set train.precision=BF16 --set train.channels_last=true \
  --set train.epochs=40 --set train.validate_from=1000 --set train.checkpoint_every=1000 \
  --set train.log_every_steps=10 --set train.output_dir="$run" --set monitoring.metrics_port=0 \
  > "$out/launch.log" 2>&1
echo "launch: rc $? (124: stopped by the time limit, as planned when slower than 40 epochs)"
tail -n 5 "$out/launch.log"
rm -rf "$run"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader
elapsed "gpu.sh done"
