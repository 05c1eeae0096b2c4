#!/usr/bin/env bash
# Run on a Debian 12 machine with network: downloads the Debian packages that the GPU image
# (Ubuntu 24.04 with CUDA, PyTorch, Open MPI, NCCL, protobuf and GoogleTest, but no network) lacks
# for building hds: OpenCV core/imgproc, DCMTK, prometheus-cpp, their shared-library closure, and
# the header-only CLI11 and nlohmann-json. build.sh unpacks them with `dpkg -x` into
# deploy/gpu/deps/root.
# The folder deploy/gpu/deps is git-ignored; carry it to the GPU machine (about 30 MB).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/deps/debs"
cd "$here/deps/debs"
packages=(
  # what hds links, with headers and CMake config
  libopencv-core406 libopencv-imgproc406 libopencv-core-dev libopencv-imgproc-dev
  libdcmtk17 libdcmtk-dev libpng16-16 libpng-dev zlib1g zlib1g-dev libxml2 libxml2-dev
  libcli11-dev nlohmann-json3-dev
  libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 prometheus-cpp-dev libcivetweb1 libcivetweb-dev
  # files prometheus-cpp's and civetweb's CMake configs check for but hds does not link: the push
  # library, libcurl, the civetweb program
  libprometheus-cpp-push1.0 libcurl4-openssl-dev libcurl4 civetweb
  # shared libraries those need that the GPU image does not have (readelf -d ... | grep NEEDED)
  libtbb12 libblas3 liblapack3 libgfortran5 libquadmath0 libicu72
  libglx0 libglvnd0 libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0
)
apt-get download "${packages[@]}"
echo "fetch-deps: packages in $PWD: $(find . -maxdepth 1 -name '*.deb' | wc -l)"
du -sh .
