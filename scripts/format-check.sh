#!/usr/bin/env bash
# format-check.sh: fail when a tracked C file differs from clang-format's
# output (.clang-format at the root). `make format` fixes it.
set -u
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' 2>/dev/null)
[ -n "$files" ] || { echo "format: no C files tracked"; exit 0; }
bad=""
for f in $files; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
if [ -n "$bad" ]; then
    echo "format: clang-format would change:$bad"
    echo "format: run 'make format'"
    exit 1
fi
echo "format: $(echo "$files" | wc -l) files clean"
