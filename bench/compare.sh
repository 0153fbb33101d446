#!/usr/bin/env bash
# compare.sh BUILD [--quick]: moor's benchmarks, as `make bench` runs them.
#
# Today this runs the in-process benchmarks of moor-bench (raft core, WAL
# against a raw write+fdatasync loop on the same disk, kv keyspace, rpc
# loopback) and keeps their output in BUILD/bench-results/<date>/. The side
# by side with real etcd over the client API (put/range/watch workloads,
# memory per key, restart and failover times, ratios and charts) is issue
# 10's work and not built yet.
set -euo pipefail
build=${1:-build}
quick=0
[ "${2:-}" = "--quick" ] && quick=1
bin="$build/bin/moor-bench"
[ -x "$bin" ] || { echo "compare: $bin is not built (make)"; exit 1; }
out="$build/bench-results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
if [ $quick -eq 1 ]; then
    raft=(--entries 200000)
    wal=(--seconds 1 --batches 1,16)
    kv=(--keys 100000 --watchers 1000 --gets 100000 --runs 1)
    rpc=(--seconds 1)
else
    raft=()
    wal=(--seconds 3)
    kv=(--runs 3)
    rpc=(--seconds 3)
fi
run() { # run NAME ARGS...
    local name=$1
    shift
    echo "== moor-bench $name $*"
    "$bin" "$name" "$@" | tee "$out/$name.txt"
}
run raft "${raft[@]}"
run wal --dir "$build" "${wal[@]}"
run kv "${kv[@]}"
run rpc "${rpc[@]}"
echo "results in $out"
echo "(side-by-side with real etcd: not built yet, see docs/status.md)"
