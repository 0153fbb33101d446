#!/usr/bin/env bash
# moord_snapshot_watch.sh MOORD MOOR_BENCH: a watch open on a follower
# survives that follower installing a snapshot from the leader. Three
# members with --snapshot-count 1000; etcdctl watches a prefix through the
# follower; the follower is paused (SIGSTOP) while 20,000 puts go through
# the leader, which snapshots and compacts its log past the follower's;
# resumed, the follower installs the snapshot and moves its watchers to
# the new keyspace at their next revision: the watch sees every event
# exactly once, in order, none lost and none repeated.
set -euo pipefail
moord=$1
bench=$2
keys=20000
export ETCDCTL_API=3
work=$(mktemp -d)
pids=(0 0 0)
wpid=0
cleanup() {
    [ "$wpid" != 0 ] && kill "$wpid" 2>/dev/null || true
    for p in "${pids[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*"
    for i in 0 1 2; do echo "--- m$i"; grep -v "snapshot saved\|pruned" "$work/m$i.log" | tail -n 15; done
    exit 1
}
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cports=("$(port)" "$(port)" "$(port)")
pports=("$(port)" "$(port)" "$(port)")
cluster="m0=http://127.0.0.1:${pports[0]},m1=http://127.0.0.1:${pports[1]},m2=http://127.0.0.1:${pports[2]}"
ctl() { etcdctl --dial-timeout=1s --command-timeout=5s "$@"; }
for i in 0 1 2; do
    "$moord" --name "m$i" --data-dir "$work/d$i" --snapshot-count 1000 \
        --listen-client-urls "http://127.0.0.1:${cports[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${cports[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${pports[$i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${pports[$i]}" \
        --initial-cluster "$cluster" >"$work/m$i.log" 2>&1 &
    pids[$i]=$!
done
l=-1
for _ in $(seq 1 100); do
    for i in 0 1 2; do
        ctl --endpoints="127.0.0.1:${cports[$i]}" endpoint status 2>/dev/null | grep -q ", true," && l=$i
    done
    [ "$l" -ge 0 ] && break
    sleep 0.1
done
[ "$l" -ge 0 ] || fail "no leader"
f=$(((l + 1) % 3))

# moor-bench's keys are the index, zero-padded: all start with 0.
ctl --endpoints="127.0.0.1:${cports[$f]}" watch -w json --prefix 0 >"$work/watch.out" 2>&1 &
wpid=$!
for _ in $(seq 1 50); do
    [ "$(ctl --endpoints="127.0.0.1:${cports[$l]}" put 0first x)" = OK ] || fail "first put"
    grep -q '"key":"MGZpcnN0"' "$work/watch.out" && break
    sleep 0.1
done
grep -q '"key":"MGZpcnN0"' "$work/watch.out" || fail "the watch does not run"

kill -STOP "${pids[$f]}"
"$bench" put --endpoints "127.0.0.1:${cports[$l]}" --clients 32 --total "$keys" \
    --sequential-keys --key-space-size "$keys" --key-size 12 --json >"$work/put.json" ||
    { kill -CONT "${pids[$f]}"; fail "puts"; }
ctl --endpoints="127.0.0.1:${cports[$l]}" put 0last x >/dev/null
kill -CONT "${pids[$f]}"
for _ in $(seq 1 300); do
    grep -q '"key":"MGxhc3Q="' "$work/watch.out" && break
    sleep 0.1
done
grep -q "installed the snapshot from the leader" "$work/m$f.log" || fail "m$f installed no snapshot"
grep -q "watchers moved to the installed snapshot moved=1 failed=0" "$work/m$f.log" || fail "the watcher was not moved"
/usr/bin/python3 - "$work/watch.out" "$keys" <<'PY' || fail "watch events wrong"
import json, re, sys
pairs = re.findall(r'"key":"([^"]+)","create_revision":\d+,"mod_revision":(\d+)', open(sys.argv[1]).read())
revs = [int(r) for _, r in pairs]
# 0first ("MGZpcnN0") is put until the watch shows it (the watch may start
# after the first one), so a slow watch can see it more than once; every
# other key is put once: the puts and 0last.
rest = [r for k, r in pairs if k != "MGZpcnN0"]
want = int(sys.argv[2]) + 1
if revs != sorted(set(revs)) or len(rest) != want:
    dup = len(revs) - len(set(revs))
    print("events %d besides 0first (want %d), duplicates %d, ordered %s" % (len(rest), want, dup, revs == sorted(revs)))
    sys.exit(1)
print("watch: %d events, each once, in order" % len(revs))
PY
echo "PASS moord_snapshot_watch"
