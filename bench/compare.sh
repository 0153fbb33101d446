#!/usr/bin/env bash
# compare.sh [--quick] [--build DIR] [--out DIR] [--doc FILE] [-- ARGS]:
# moor beside real etcd 3.4 on this machine, as `make bench` runs it.
#
#   1. builds moord, moorctl and moor-bench in Release into DIR (default
#      build-release; configured on first use);
#   2. runs bench/compare.py: 1- and 3-member clusters of /usr/bin/etcd
#      and of moord (started by scripts/run-cluster.sh, same flags, data
#      on the same disk), the same workloads against each in alternation,
#      medians of several runs (what runs is described in compare.py);
#   3. runs bench/charts.py: table.md (ratio moor/etcd and the goal per
#      figure) and SVG charts, and prints the table.
# Results go to OUT (default bench/results/<UTC date and time>, with
# "-quick" appended for --quick). --doc FILE also writes the table and
# chart links into FILE (docs/benchmarks.md) between its bench markers.
# Arguments after -- go to compare.py (--runs N, --phases one,three,...).
#
# The whole run takes under 15 minutes, --quick under 3. Every process
# started is killed on exit, Ctrl-C included (compare.py's job; this script
# only waits for it), and the temporary data dirs are removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
build=$repo/build-release
quick=""
out=""
doc=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=--quick; shift ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --doc) doc=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for tool in /usr/bin/etcd /usr/bin/etcdctl /usr/bin/python3 curl; do
    command -v "$tool" >/dev/null ||
        { echo "compare: $tool is missing (make deps)" >&2; exit 1; }
done

if [ ! -f "$build/CMakeCache.txt" ]; then
    # Warnings stay warnings here: this build measures, `make test` checks.
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release \
        -DMOOR_WERROR=OFF >/dev/null
fi
cmake --build "$build" --target moord moorctl moor-bench \
    -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

if [ -z "$out" ]; then
    out=$repo/bench/results/$(date -u +%Y-%m-%dT%H%MZ)${quick:+-quick}
fi
mkdir -p "$out"
# Ctrl-C reaches compare.py (same process group), which stops every member
# it started before exiting; this script just reports its status.
status=0
/usr/bin/python3 "$here/compare.py" --build "$build" --out "$out" \
    $quick "$@" || status=$?
if [ $status -ne 0 ]; then
    echo "compare: compare.py exited $status; partial output in $out" >&2
    exit $status
fi
/usr/bin/python3 "$here/charts.py" "$out" ${doc:+--doc "$doc"}
echo "results in $out"
