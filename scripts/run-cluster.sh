#!/usr/bin/env bash
# run-cluster.sh [--binary PATH] [--data DIR] [--members 1|3] BUILD
#
# Starts a local cluster on loopback and keeps it in the foreground until
# Ctrl-C, then stops every member. Member i (1-based) listens on
#   client http://127.0.0.1:{2379,22379,32379}  peer :{2380,22380,32380}
# with its data under DATA/m<i> (default BUILD/run/). The binary is
# BUILD/bin/moord; --binary runs another server that takes etcd's flags
# (for example /usr/bin/etcd, to compare).
set -euo pipefail

binary=""
data=""
members=3
while [ $# -gt 1 ]; do
    case "$1" in
    --binary) binary=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --members) members=$2; shift 2 ;;
    *) break ;;
    esac
done
build=${1:-build}
binary=${binary:-$build/bin/moord}
data=${data:-$build/run}

if [ ! -x "$binary" ]; then
    cat <<TXT
moor: $binary is not built yet (the member daemon comes with the moord
issues). When it lands, \`make run\` starts a local 3-member cluster on
loopback:
  member  client URL               peer URL
  m1      http://127.0.0.1:2379    http://127.0.0.1:2380
  m2      http://127.0.0.1:22379   http://127.0.0.1:22380
  m3      http://127.0.0.1:32379   http://127.0.0.1:32380
with data under $data/, prints a first command to try, such as
  etcdctl --endpoints=127.0.0.1:2379 put hello world
and stops all three on Ctrl-C.
What is built now: $(ls "$build/bin" 2>/dev/null | tr '\n' ' ')
To see the same cluster with real etcd: bash scripts/run-cluster.sh --binary /usr/bin/etcd $build
TXT
    exit 0
fi

ports_client=(2379 22379 32379)
ports_peer=(2380 22380 32380)
cluster=""
for i in $(seq 1 "$members"); do
    cluster="${cluster:+$cluster,}m$i=http://127.0.0.1:${ports_peer[$((i - 1))]}"
done

mkdir -p "$data"
chmod 700 "$data"
pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "stopping ${#pids[@]} members"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

for i in $(seq 1 "$members"); do
    c=${ports_client[$((i - 1))]}
    p=${ports_peer[$((i - 1))]}
    "$binary" --name "m$i" --data-dir "$data/m$i" \
        --listen-client-urls "http://127.0.0.1:$c" \
        --advertise-client-urls "http://127.0.0.1:$c" \
        --listen-peer-urls "http://127.0.0.1:$p" \
        --initial-advertise-peer-urls "http://127.0.0.1:$p" \
        --initial-cluster "$cluster" \
        --initial-cluster-token moor-run \
        --initial-cluster-state new >"$data/m$i.log" 2>&1 &
    pids+=($!)
done

endpoints=""
for i in $(seq 1 "$members"); do
    endpoints="${endpoints:+$endpoints,}127.0.0.1:${ports_client[$((i - 1))]}"
done
# Wait (bounded) until every member answers /health.
for _ in $(seq 1 100); do
    ok=0
    for i in $(seq 1 "$members"); do
        c=${ports_client[$((i - 1))]}
        if curl -fsS "http://127.0.0.1:$c/health" 2>/dev/null | grep -q '"health":"true"'; then
            ok=$((ok + 1))
        fi
    done
    [ "$ok" -eq "$members" ] && break
    for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null || { echo "a member exited; logs in $data/"; exit 1; }
    done
    sleep 0.1
done

cat <<TXT
$members-member cluster running ($(basename "$binary")), data and logs in $data/
  endpoints: $endpoints
try:
  ETCDCTL_API=3 etcdctl --endpoints=$endpoints put hello world
  ETCDCTL_API=3 etcdctl --endpoints=$endpoints get hello
  ETCDCTL_API=3 etcdctl --endpoints=$endpoints endpoint status -w table
Ctrl-C stops all members.
TXT
# Stay up while any member runs: one member exiting (or being killed to
# try a failover) leaves the others serving.
while :; do
    alive=0
    for p in "${pids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then alive=$((alive + 1)); fi
    done
    if [ "$alive" -eq 0 ]; then break; fi
    wait -n 2>/dev/null || true
done
