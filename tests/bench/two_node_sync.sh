#!/usr/bin/env bash
# The gradient sync between two nodes over TCP against the same two ranks on one node (Open MPI's
# shared memory): `hds-trainer bench --sync` on 2 ranks, run ROUNDS times each, alternately. The
# two nodes are the MultiNode tests' (network namespaces on this machine joined by a veth pair
# and a bridge: TCP through the kernel, no wire), made by `hds-virtual-nodes`.
# Usage: tests/bench/two_node_sync.sh BUILD_DIR [BATCH HEIGHT WIDTH STEPS ROUNDS]
# Output: one JSON line per run, the bench's, with "placement" added.
set -euo pipefail
build=$(cd "${1:?build directory}" && pwd)
batch=${2:-2} height=${3:-256} width=${4:-256} steps=${5:-9} rounds=${6:-3}
work=$(mktemp -d /tmp/hds-two-node-sync.XXXXXX)
trap 'rm -rf "$work"' EXIT
mpirun=(mpirun --bind-to none --mca mpi_yield_when_idle 1)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
bench=("$build/trainer/hds-trainer" bench --sync --batch "$batch" --height "$height"
  --width "$width" --steps "$steps" --threads 1 --device cpu)
for round in $(seq "$rounds"); do
  "${mpirun[@]}" -np 2 "${bench[@]}" | grep '^{' | head -1 |
    sed 's/"round":1,/"round":'"$round"',/; s/^{/{"placement":"one node",/'
  "$build/tests/launch/hds-virtual-nodes" "$work" 2 "$build" -- \
    "${mpirun[@]}" -H node1:1,node2:1 -np 2 "${bench[@]}" | grep '^{' | head -1 |
    sed 's/"round":1,/"round":'"$round"',/; s/^{/{"placement":"two nodes",/'
done
