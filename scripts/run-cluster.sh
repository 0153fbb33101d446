#!/usr/bin/env bash
# run-cluster.sh BUILD: start a local moord cluster on loopback.
set -euo pipefail
build=${1:-build}
if [ ! -x "$build/bin/moord" ]; then
    cat <<TXT
moor: moord is not built yet (the member daemon comes with the moord issues).
When it lands, \`make run\` starts a local 3-member cluster on loopback:
  member  client URL               peer URL
  m1      http://127.0.0.1:2379    http://127.0.0.1:2380
  m2      http://127.0.0.1:22379   http://127.0.0.1:22380
  m3      http://127.0.0.1:32379   http://127.0.0.1:32380
with data under $build/run/, prints a first command to try, such as
  etcdctl --endpoints=127.0.0.1:2379 put hello world
and stops all three on Ctrl-C.
What is built now: $(ls "$build/bin" 2>/dev/null | tr '\n' ' ')
TXT
    exit 0
fi
echo "moord found but the cluster launcher is not written yet" >&2
exit 1
