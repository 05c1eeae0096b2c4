#!/usr/bin/env bash
# Every C++ file of the tree under ROOT (default: this checkout) is as clang-format (Debian's,
# with the checked-in .clang-format) writes it. Prints the files that differ and exits 1 if any;
# `clang-format -i FILE` applies the style.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
formatter=${CLANG_FORMAT:-clang-format}
command -v "$formatter" >/dev/null || { echo "$formatter not found (Debian package clang-format)"; exit 1; }
cd "$root"
# Every C++ file git tracks or would track (not ignored): no component can be left out.
mapfile -d '' files < <(git ls-files -z --cached --others --exclude-standard -- '*.h' '*.cpp' |
  grep -zv '^tests/fuzz/corpus/' | sort -zu)
differing=()
for file in "${files[@]}"; do
  "$formatter" --style=file --dry-run --Werror "$file" >/dev/null 2>&1 || differing+=("$file")
done
if [ ${#differing[@]} -gt 0 ]; then
  printf 'not clang-formatted (%s): %s\n' "$("$formatter" --version)" "${differing[*]}"
  exit 1
fi
echo "${#files[@]} files formatted"
