#!/usr/bin/env bash
# check_includes.sh can fail: a tree whose launcher includes the data service's dataset header,
# whose data service includes LibTorch and whose trainer includes the data server must be refused,
# naming each file; the same tree without them must pass.
set -euo pipefail
check="$(dirname "$0")/check_includes.sh"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/launcher/src" "$tree/data_service/src" "$tree/trainer/src"
printf '#include "hds/launch/tools.h"\n#include "hds/config/config.h"\n' >"$tree/launcher/src/ok.cpp"
printf '#include <torch/torch.h>\n#include "hds/data_client/batch_source.h"\n' >"$tree/trainer/src/ok.cpp"
"$check" "$tree" || { echo "FAIL: a clean tree was refused"; exit 1; }

printf '#include "hds/data/dataset.h"\n' >"$tree/launcher/src/bad.cpp"
printf '#include <torch/torch.h>\n' >"$tree/data_service/src/bad.cpp"
printf '#include "hds/data_server/data_server.h"\n' >"$tree/trainer/src/bad.cpp"
if output=$("$check" "$tree"); then
  echo "FAIL: violations were accepted"
  exit 1
fi
grep -q '^launcher/src/bad.cpp:1: includes "hds/data/dataset.h"' <<<"$output" ||
  { echo "FAIL: launcher violation not named: $output"; exit 1; }
grep -q '^data_service/src/bad.cpp:1: includes <torch/torch.h>' <<<"$output" ||
  { echo "FAIL: LibTorch in the data service not named: $output"; exit 1; }
grep -q '^trainer/src/bad.cpp:1: includes "hds/data_server/data_server.h"' <<<"$output" ||
  { echo "FAIL: the data server in the trainer not named: $output"; exit 1; }
echo "ok"
