#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds, tests and benchmarks with.
# Idempotent: packages already present are left alone. Run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  clang-format                         # the tree's style (.clang-format), checked by the tests
  libtorch-dev                         # the model, autograd, SGD (CPU LibTorch 1.13)
  libprotobuf-dev protobuf-compiler    # configuration schema and text format, checkpoint metadata
  libcli11-dev                         # command lines
  nlohmann-json3-dev                   # JSON output of bench / describe
  libpng-dev                           # PNG reading and writing (folder datasets, phantom export)
  libopencv-imgproc-dev                # resizing (area / bilinear / nearest), drawing masks
  libdcmtk-dev                         # DICOM reading (INbreast films); the reader tests write DICOM
  libgtest-dev libgmock-dev            # tests
  openmpi-bin libopenmpi-dev           # data-parallel trainer ranks (mpirun, MPI all-reduce)
  slurm-wlm                            # hds-launch sbatch; the tests run a one-node Slurm
  iproute2                             # ip: the multi-node tests' nodes (network namespaces)
  prometheus-cpp-dev                   # every trainer rank serves Prometheus metrics
  prometheus                           # the server and promtool: the metrics tests scrape for real
  python3-torch                        # the Python PyTorch baseline of tests/bench (same 1.13 build)
  chromium                             # headless browser: tests render the curves people look at
  dicom3tools                          # dciodvfy: every DICOM SEG and SR written is validated
  dcmtk                                # dsrdump: the tests read every structured report back
  shellcheck                           # every shell script, the Slurm batch template among them
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

# Debian starts daemons from maintainer scripts; inside containers and CI that hangs or fails.
# A policy-rc.d that answers 101 ("action forbidden") stops that for the duration of the install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$policy"
  created_policy=1
fi
cleanup() { [ "$created_policy" -eq 0 ] || "${sudo_cmd[@]}" rm -f "$policy"; }
trap cleanup EXIT

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
