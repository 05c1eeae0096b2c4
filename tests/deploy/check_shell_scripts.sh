#!/usr/bin/env bash
# Every shell script of the tree passes shellcheck (Debian package shellcheck), informational
# notes included: the *.sh files, .ci/run, and the Slurm batch template (valid shell as it stands;
# a script written from it is checked by the launcher's tests). Exits 77 (skipped) where the
# checker is missing.
set -euo pipefail
root=${1:?usage: check_shell_scripts.sh SOURCE_DIR}
if ! command -v shellcheck >/dev/null; then
  echo "shellcheck is not installed (apt-get install shellcheck)"
  exit 77
fi
cd "$root"
# The tracked files where there is a git checkout (ignored folders may hold unpacked packages).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t scripts < <(git ls-files '*.sh' '*.sbatch.in' .ci/run)
else
  mapfile -t scripts < <(find . -path './build*' -prune -o -path ./deploy/gpu/deps -prune \
    -o -type f \( -name '*.sh' -o -name '*.sbatch.in' \) -print | sort)
  scripts+=(.ci/run)
fi
shellcheck --severity=info "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"
