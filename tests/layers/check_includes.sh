#!/usr/bin/env bash
# The include half of the layer check (docs/design.md §2; cmake/layers.cmake checks the links):
# every #include "hds/..." and <torch/...> in the component folders under ROOT (default: this
# checkout) must be one its layer may use. Prints each violation as FILE:LINE: what and why, and
# exits 1 if there is any.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}

# folder (relative to ROOT) | allowed include prefixes (extended regex) | why
rules=(
  "common|hds/(common|config)/|the common rules depend on nothing of ours (the mains' skeleton reads configuration errors)"
  "proto|hds/(common|config)/|the schemas and their loader use the common rules alone"
  "monitoring|hds/monitoring/|monitoring links prometheus-cpp and nothing of ours"
  "scoring|hds/scoring/|scoring works on plain masks and probabilities, nothing of ours"
  "data_service/transport|hds/(transport|common)/|the transport knows no dataset"
  "data_service/client|hds/(data_client|transport|common)/|the client sits on the transport alone"
  "data_service/server|hds/(data_server|data|transport|common|config|monitoring)/|the data service has no trainer or launcher"
  "data_service/main.cpp|hds/(data_server|data|transport|common|config|monitoring)/|the data service has no trainer or launcher"
  "data_service|hds/(data|transport|common|config|monitoring)/|the data library knows no server; the data service has no trainer or launcher"
  "trainer|hds/(trainer|scoring|data|data_client|common|config|monitoring)/|hds/transport/patch_batch.h|the trainer consumes the data client, not the ring internals"
  "launcher|hds/(launch|scoring|common|config)/|the launcher runs the other programs and tabulates their evaluations, it links none of them"
)

status=0
while IFS= read -r -d '' file; do
  relative=${file#"$root"/}
  rule=""
  for candidate in "${rules[@]}"; do
    folder=${candidate%%|*}
    case "$relative" in "$folder" | "$folder"/*) rule=$candidate; break ;; esac
  done
  [ -n "$rule" ] || continue
  why=${rule##*|}
  allowed=${rule#*|}
  allowed=${allowed%|*}
  while IFS=: read -r line include; do
    header=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]*)[">].*/\1/' <<<"$include")
    case "$header" in
      torch/*)
        [ "${relative%%/*}" = trainer ] && continue
        echo "$relative:$line: includes <$header>: only the trainer uses LibTorch"
        status=1 ;;
      hds/*)
        grep -Eq "^($allowed)" <<<"$header" && continue
        echo "$relative:$line: includes \"$header\": $why"
        status=1 ;;
    esac
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<](hds|torch)/' "$file" || true)
done < <(find "$root/common" "$root/proto" "$root/monitoring" "$root/scoring" "$root/data_service" "$root/trainer" "$root/launcher" \
           \( -name '*.h' -o -name '*.cpp' \) -print0 2>/dev/null)
exit $status
