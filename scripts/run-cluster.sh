#!/usr/bin/env bash
# run-cluster.sh [flags] BUILD [-- MEMBER FLAGS...]
#
# Starts a local cluster on loopback. By default (what `make run` does) it
# keeps the cluster in the foreground until Ctrl-C, then stops every
# member. Member i (1-based) listens on
#   client http://127.0.0.1:{2379,22379,32379}  peer :{2380,22380,32380}
# with its data under DATA/m<i> and its log in DATA/m<i>.log (default
# DATA is BUILD/run/). The binary is BUILD/bin/moord; --binary runs another
# server that takes etcd's flags (for example /usr/bin/etcd, to compare).
#
# Flags:
#   --binary PATH     the server to start (default BUILD/bin/moord)
#   --data DIR        data and logs (default BUILD/run)
#   --members N       cluster size, 1 to 9 (default 3)
#   --port-base P     member i's client port is P + 10*(i-1), its peer port
#                     one above (default: the ports above; P >= 1024)
#   --token T         --initial-cluster-token (default moor-run)
#   --member I        start only member I of the N (to restart one member of
#                     a running cluster; its log is appended to)
#   --detach          start, wait (bounded, 10 s) until the started members
#                     answer /health, write each one's pid to DATA/m<i>.pid,
#                     print "m<i> <pid> <client url>" lines and exit 0,
#                     leaving the members running: stopping them (by pid)
#                     is the caller's job. A member that exits or a member
#                     not healthy in time: every member started is killed,
#                     exit 1.
#   --no-wait         with --detach: do not wait for /health (a caller that
#                     times the start itself)
# Everything after `--` is passed to every member (--heartbeat-interval,
# --snapshot-count ...).
set -euo pipefail

binary=""
data=""
members=3
port_base=""
token=moor-run
only=""
detach=0
wait_health=1
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) binary=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --members) members=$2; shift 2 ;;
    --port-base) port_base=$2; shift 2 ;;
    --token) token=$2; shift 2 ;;
    --member) only=$2; shift 2 ;;
    --detach) detach=1; shift ;;
    --no-wait) wait_health=0; shift ;;
    --) break ;;
    -*) echo "run-cluster: unknown flag $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
build=build
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    build=$1
    shift
fi
extra=()
if [ $# -gt 0 ] && [ "$1" = "--" ]; then
    shift
    extra=("$@")
fi
binary=${binary:-$build/bin/moord}
data=${data:-$build/run}

case "$members" in
[1-9]) ;;
*) echo "run-cluster: --members must be 1 to 9" >&2; exit 2 ;;
esac
if [ -n "$only" ] &&
    ! { [ "$only" -ge 1 ] 2>/dev/null && [ "$only" -le "$members" ]; }; then
    echo "run-cluster: --member must be 1 to $members" >&2
    exit 2
fi
if [ -n "$port_base" ] &&
    ! { [ "$port_base" -ge 1024 ] 2>/dev/null &&
        [ "$port_base" -le $((65535 - 10 * members)) ]; }; then
    echo "run-cluster: --port-base must be 1024 to $((65535 - 10 * members))" >&2
    exit 2
fi

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
    [ $detach -eq 1 ] && exit 1
    exit 0
fi

ports_client=()
ports_peer=()
for i in $(seq 1 "$members"); do
    if [ -n "$port_base" ]; then
        ports_client+=($((port_base + 10 * (i - 1))))
        ports_peer+=($((port_base + 10 * (i - 1) + 1)))
    else
        # make run's ports: 2379, 22379, 32379, then 42379 ...
        ports_client+=($(((i - 1) * 10000 + 2379)))
        ports_peer+=($(((i - 1) * 10000 + 2380)))
    fi
done
cluster=""
for i in $(seq 1 "$members"); do
    cluster="${cluster:+$cluster,}m$i=http://127.0.0.1:${ports_peer[$((i - 1))]}"
done
start_ids=$(seq 1 "$members")
[ -n "$only" ] && start_ids=$only

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
# A detached start that fails kills what it started, at once.
kill_started() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
if [ $detach -eq 1 ]; then
    trap kill_started INT TERM EXIT
else
    trap stop INT TERM EXIT
fi

for i in $start_ids; do
    c=${ports_client[$((i - 1))]}
    p=${ports_peer[$((i - 1))]}
    log="$data/m$i.log"
    [ -n "$only" ] || : >"$log"
    "$binary" --name "m$i" --data-dir "$data/m$i" \
        --listen-client-urls "http://127.0.0.1:$c" \
        --advertise-client-urls "http://127.0.0.1:$c" \
        --listen-peer-urls "http://127.0.0.1:$p" \
        --initial-advertise-peer-urls "http://127.0.0.1:$p" \
        --initial-cluster "$cluster" \
        --initial-cluster-token "$token" \
        --initial-cluster-state new ${extra[@]+"${extra[@]}"} >>"$log" 2>&1 &
    pids+=($!)
    [ $detach -eq 1 ] && echo $! >"$data/m$i.pid"
done

endpoints=""
for i in $start_ids; do
    endpoints="${endpoints:+$endpoints,}127.0.0.1:${ports_client[$((i - 1))]}"
done
# Wait (bounded, 10 s) until every started member answers /health.
healthy=0
if [ $wait_health -eq 1 ] || [ $detach -eq 0 ]; then
    for _ in $(seq 1 100); do
        ok=0
        n=0
        for i in $start_ids; do
            n=$((n + 1))
            c=${ports_client[$((i - 1))]}
            if curl -fsS "http://127.0.0.1:$c/health" 2>/dev/null | grep -q '"health":"true"'; then
                ok=$((ok + 1))
            fi
        done
        if [ "$ok" -eq "$n" ]; then
            healthy=1
            break
        fi
        for p in "${pids[@]}"; do
            kill -0 "$p" 2>/dev/null || { echo "a member exited; logs in $data/"; exit 1; }
        done
        sleep 0.1
    done
fi

if [ $detach -eq 1 ]; then
    if [ $wait_health -eq 1 ] && [ $healthy -eq 0 ]; then
        echo "run-cluster: members not healthy after 10 s; logs in $data/" >&2
        exit 1
    fi
    k=0
    for i in $start_ids; do
        echo "m$i ${pids[$k]} http://127.0.0.1:${ports_client[$((i - 1))]}"
        k=$((k + 1))
    done
    trap - INT TERM EXIT
    exit 0
fi

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
