#!/usr/bin/env bash
# The GPU session's one script: build with NCCL (build.sh), run the gradient-sync tests on the GPU
# (NCCL) and on the CPU (MPI), and time a paper-size training step with and without the sync.
# Results go to $OUT (the device tool's output folder) or deploy/gpu/out.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$repo/deploy/gpu/out}
mkdir -p "$out"
exec > >(tee "$out/check.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
start=$(date +%s)
"$repo/deploy/gpu/build.sh" "$repo/build-gpu" ${HDS_GPU_TARGETS:-} || { echo "BUILD FAILED"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
root=$repo/deploy/gpu/deps/root
export LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tests=$repo/build-gpu/tests/trainer/hds_dist_tests
HDS_TEST_DEVICE=cuda "$tests" --gtest_output=json:"$out/dist_tests_cuda.json"; echo "dist tests cuda: rc $?"
"$tests" --gtest_filter='GradientSync*' ; echo "dist tests cpu: rc $?"
[ -z "${HDS_GPU_TESTS_ONLY:-}" ] || exit 0
trainer=$repo/build-gpu/trainer/hds-trainer
for run in 1 2 3; do
  "$trainer" bench --device cuda --batch 8 --height 512 --width 384 --steps 20 --warmup 5 --sync \
    | tee -a "$out/bench_cuda.jsonl"
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv,noheader
echo "check: $(( $(date +%s) - start )) s"
