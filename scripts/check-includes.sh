#!/usr/bin/env bash
# check-includes.sh DIR PATTERN: fail when a C file under DIR includes a
# header whose name matches the extended regex PATTERN.
set -u
dir=$1
pat=$2
hits=$(grep -rnE "#[[:space:]]*include[[:space:]]*[<\"]($pat)[>\"]" "$dir" --include='*.c' --include='*.h')
if [ -n "$hits" ]; then
    echo "forbidden includes in $dir:"
    echo "$hits"
    exit 1
fi
echo "includes in $dir: clean"
