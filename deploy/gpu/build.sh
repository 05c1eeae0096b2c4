#!/usr/bin/env bash
# Builds hds on the lent GPU machine against the CUDA LibTorch of its PyTorch, with the NCCL
# gradient sync (HDS_WITH_NCCL). Needs deploy/gpu/deps/debs from fetch-deps.sh (carried along).
# Usage: deploy/gpu/build.sh [BUILD_DIR] [TARGET...]; prints the environment to source after.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build-gpu}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(hds-trainer hds-data-service hds_dist_tests)
root=$repo/deploy/gpu/deps/root
if [ ! -d "$root" ]; then
  for deb in "$repo"/deploy/gpu/deps/debs/*.deb; do dpkg -x "$deb" "$root"; done
  lib=$root/usr/lib/x86_64-linux-gnu
  # Links into merged-/usr paths are absolute (libz.so -> /lib/...): aim them into the tree.
  find "$root" -type l | while read -r link; do
    target=$(readlink "$link")
    if [ "${target#/}" != "$target" ] && [ -e "$root$target" ]; then ln -sfn "$root$target" "$link"; fi
  done
  # Debian chooses BLAS/LAPACK through alternatives that `dpkg -x` does not set up.
  ln -sf blas/libblas.so.3 "$lib/libblas.so.3"
  ln -sf lapack/liblapack.so.3 "$lib/liblapack.so.3"
  # DCMTK's exported targets name zlib and libxml2 by absolute path, and libnsl, which
  # nothing of DCMTK that hds links needs: point them into the unpacked tree.
  sed -i -e "s#/usr/lib/x86_64-linux-gnu/#$lib/#g" -e 's#;nsl;#;#' "$lib/cmake/dcmtk/DCMTKTargets.cmake"
fi
lib=$root/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$lib:$root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
# PyTorch's include folder carries protobuf headers of another version than the system's
# libprotobuf that hds links: put the system's first (-I is searched before -isystem).
protobuf_include=$repo/deploy/gpu/deps/protobuf-include
mkdir -p "$protobuf_include"
ln -sfn /usr/include/google "$protobuf_include/google"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$root/usr" \
  -DCMAKE_LIBRARY_PATH="$lib;$root/lib/x86_64-linux-gnu" \
  -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_CXX_FLAGS="-I$protobuf_include" \
  -DHDS_WITH_NCCL=ON
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
echo "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
