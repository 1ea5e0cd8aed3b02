#!/usr/bin/env bash
# Fails when a file of the repository refers to something a user's clone does not have: the
# shared folder beside a developer's checkout (dot-dot-slash shared), or an absolute path of the machine it was
# written on (this checkout's own path, the folder holding it, a home directory).
# usage: tools/check_self_contained.sh [FILE...]   (default: every file git tracks, else every
# file under the repository outside build folders and node_modules)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if [ $# -gt 0 ]; then
  files=("$@")
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files)
else
  mapfile -t files < <(find . -type f -not -path './build*' -not -path '*/node_modules/*' \
    -not -path './.git/*' | sed 's|^\./||')
fi
# Fixed strings. The checkout's parent is left out when it is a system folder anyone has.
patterns=("..""/shared" "$repo/" "/home/" "/Users/")  # split so this file does not name it
parent=$(dirname "$repo")
case $parent in /|/tmp|/var/tmp|/opt|/srv|/usr|/usr/*|/var|/root) ;; *) patterns+=("$parent/") ;; esac
self=tools/check_self_contained.sh
grep_args=()
for p in "${patterns[@]}"; do grep_args+=(-e "$p"); done
found=0
for f in "${files[@]}"; do
  [ "$f" = "$self" ] && continue  # it names the other patterns it looks for
  [ -f "$f" ] || continue
  if hits=$(grep -n -I -F "${grep_args[@]}" -- "$f"); then
    found=1
    sed "s|^|$f:|" <<<"$hits"
  fi
done
if [ $found -ne 0 ]; then
  echo "check_self_contained: the lines above refer to paths outside the repository" \
    "(looked for: ${patterns[*]})" >&2
  exit 1
fi
echo "check_self_contained: ${#files[@]} files, none refers to a path outside the repository"
