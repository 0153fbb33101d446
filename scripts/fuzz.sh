#!/usr/bin/env bash
# fuzz.sh BUILD SECONDS [--no-merge]: run every libFuzzer target in BUILD/bin
# for SECONDS each, starting from its seed corpus under tests/fuzz/corpus/.
# New inputs go to a scratch dir; without --no-merge the interesting ones are
# merged back into the seed corpus (for `make fuzz`; CI never writes there).
set -euo pipefail
build=$1
secs=$2
merge=1
[ "${3:-}" = "--no-merge" ] && merge=0
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for f in "$build"/bin/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="$root/tests/fuzz/corpus/$name"
    [ -d "$corpus" ] || mkdir -p "$corpus"
    work=$(mktemp -d)
    echo "fuzz: $name for ${secs}s"
    mkdir -p "$work/new"
    if ! "$f" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -artifact_prefix="$work/" "$work/new" "$corpus" >"$work/log" 2>&1; then
        echo "fuzz: $name FAILED; artifacts in $work"
        tail -40 "$work/log"
        status=1
    else
        grep -E '^#[0-9]+ *DONE|Done [0-9]+ runs' "$work/log" | tail -1
        if [ $merge -eq 1 ]; then
            "$f" -merge=1 "$corpus" "$work/new" >/dev/null 2>&1 || true
        fi
        rm -rf "$work"
    fi
done
exit $status
