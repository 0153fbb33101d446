#!/usr/bin/env bash
# fuzz.sh BUILD SECONDS: run every libFuzzer target in BUILD/bin for SECONDS
# each, starting from (and adding to) its corpus under tests/fuzz/corpus/.
set -euo pipefail
build=$1
secs=$2
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for f in "$build"/bin/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="$root/tests/fuzz/corpus/$name"
    work=$(mktemp -d)
    mkdir -p "$corpus"
    echo "fuzz: $name for ${secs}s"
    if ! "$f" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -artifact_prefix="$work/" "$work" "$corpus" >"$work/log" 2>&1; then
        echo "fuzz: $name FAILED; artifacts in $work"
        tail -40 "$work/log"
        status=1
    else
        tail -1 "$work/log"
        rm -rf "$work"
    fi
done
exit $status
