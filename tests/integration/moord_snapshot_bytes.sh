#!/usr/bin/env bash
# moord_snapshot_bytes.sh MOORD MOOR-BENCH: --snapshot-bytes. One member
# with --snapshot-count 100000 (never reached here) and --snapshot-bytes 1
# MiB takes 20,480 puts of 256-byte values in 160 Txns of 128 puts (~6 MB
# of entries): it must snapshot by bytes, compact its Raft log up to each
# snapshot (alone, it keeps no tail for followers), and
# replay only the WAL after the newest snapshot on restart, serving every
# key with the same HashKV at the same revision, also when the newest
# snapshot is damaged and skipped. With the default 4 MiB the writes left
# after the last snapshot by bytes are snapshotted once the member is idle.
# With --snapshot-bytes 0 (by count only) the same writes take none.
set -euo pipefail
moord=$1
bench=$2
export ETCDCTL_API=3
py=/usr/bin/python3
work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*"; echo "--- moord log"; tail -n 30 "$work/log"; exit 1; }
port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(port)
pport=$(port)
E="etcdctl --endpoints=127.0.0.1:$cport --dial-timeout=2s --command-timeout=10s"
bound=1048576
keys=20480

start() { # start SNAPSHOT-BYTES
    "$moord" --name m1 --data-dir "$work/data" --snapshot-count 100000 \
        --snapshot-bytes "$1" \
        --listen-client-urls "http://127.0.0.1:$cport" \
        --advertise-client-urls "http://127.0.0.1:$cport" \
        --listen-peer-urls "http://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "m1=http://127.0.0.1:$pport" >>"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:$cport/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        kill -0 "$pid" 2>/dev/null || fail "moord exited"
        sleep 0.05
    done
    fail "moord not healthy after 10 s"
}
stop() {
    kill -TERM "$pid"
    wait "$pid" || fail "moord exited non-zero on SIGTERM"
    pid=""
}
load() { # load: keys 0..keys-1 (32 bytes) in Txns of 128 puts
    "$bench" txn-put --endpoints "127.0.0.1:$cport" --clients 4 \
        --total $((keys / 128)) --txn-ops 128 --key-size 32 --val-size 256 \
        --key-space-size "$keys" --sequential-keys --json >"$work/bench.json" 2>&1 ||
        fail "moor-bench txn-put: $(tail -n 3 "$work/bench.json")"
}
count() { $E get "" --prefix --keys-only --limit 1 -w json | sed 's/.*"count":\([0-9]*\).*/\1/'; }
hashkv() { $E endpoint hashkv -w json | sed 's/.*"revision":\([0-9]*\).*"hash":\([0-9]*\).*/\1 \2/'; }

start "$bound"
load
# The snapshot that the last Txns made due may still be running.
for _ in $(seq 1 100); do
    [ "$(grep -c "snapshot saved" "$work/log")" -ge 3 ] && break
    sleep 0.05
done
saved=$(grep -c "snapshot saved" "$work/log" || true)
[ "$saved" -ge 3 ] || fail "$saved snapshots for ~6 MB of entries with --snapshot-bytes $bound"
# Each snapshot compacted the log up to itself: a member alone keeps no
# tail below a snapshot (a cluster keeps at most a quarter of the bytes
# that make the next snapshot due: moord_snapshot_catchup.sh).
grep "snapshot saved" "$work/log" |
    sed 's/.* index=\([0-9]*\) .*log_first=\([0-9]*\) kept_bytes=\([0-9]*\).*/\1 \2 \3/' >"$work/compactions"
while read -r index first kept; do
    [ "$first" = $((index + 1)) ] || fail "snapshot at $index: the raft log starts at $first"
    [ "$kept" = 0 ] || fail "kept $kept bytes of log below a snapshot"
done <"$work/compactions"
[ "$(count)" = "$keys" ] || fail "count before restart: $(count)"
before=$(hashkv)
last_index=$(grep "snapshot saved" "$work/log" | tail -n 1 | sed 's/.* index=\([0-9]*\) .*/\1/')
stop

# The restart loads the newest snapshot and replays only the WAL after it.
start "$bound"
loaded=$(grep "loaded snapshot" "$work/log" | tail -n 1 | sed 's/.* index=\([0-9]*\) .*/\1/')
[ -n "$loaded" ] || fail "the restart loaded no snapshot"
[ "$loaded" -ge "$last_index" ] || fail "loaded snapshot $loaded, older than $last_index"
replayed=$(grep "restarting from the data dir" "$work/log" | tail -n 1 | sed 's/.* entries=\([0-9]*\) .*/\1/')
# 160 Txns and a few entries of elections: the WAL after the snapshot is a
# fraction of them (a Txn of 128 puts is ~37 KB: 1 MiB is ~28 of them).
[ "$replayed" -lt 80 ] || fail "the restart replayed $replayed entries"
[ "$(count)" = "$keys" ] || fail "count after restart: $(count)"
after=$(hashkv)
[ "$before" = "$after" ] || fail "hashkv (revision hash) $before became $after across the restart"
stop

# A damaged newest snapshot is skipped (before any of it reaches the
# keyspace): the member starts from the one before it plus the WAL.
newest=$(ls "$work/data/member/snap/"*.snap | sort | tail -n 1)
size=$(stat -c %s "$newest")
printf '\xff' | dd of="$newest" bs=1 seek=$((size / 2)) conv=notrunc status=none
start "$bound"
grep -q "snapshot does not verify, skipped" "$work/log" || fail "the damaged snapshot was not reported"
grep "loaded snapshot" "$work/log" | tail -n 1 | grep -q "skipped=1" || fail "loaded: $(grep "loaded snapshot" "$work/log" | tail -n 1)"
[ "$(count)" = "$keys" ] || fail "count after skipping a snapshot: $(count)"
[ "$(hashkv)" = "$before" ] || fail "hashkv after skipping a snapshot: $(hashkv), want $before"
stop

# Idle: with the default --snapshot-bytes (4 MiB) the same ~6 MB of
# entries make one snapshot by bytes; the ~2 MB after it (more than a
# quarter of 4 MiB) are snapshotted once the member is idle, so a restart
# then replays nothing.
rm -rf "$work/data"
: >"$work/log"
start 4194304
load
for _ in $(seq 1 100); do
    [ "$(grep -c "snapshot saved" "$work/log")" -ge 2 ] && break
    sleep 0.05
done
[ "$(grep -c "snapshot saved" "$work/log")" = 2 ] ||
    fail "want a snapshot by bytes and one when idle: $(grep -c "snapshot saved" "$work/log")"
idle_before=$(hashkv)
stop
start 4194304
replayed=$(grep "restarting from the data dir" "$work/log" | tail -n 1 | sed 's/.* entries=\([0-9]*\) .*/\1/')
[ "$replayed" -le 1 ] || fail "after the idle snapshot the restart replayed $replayed entries"
[ "$(count)" = "$keys" ] || fail "count after the idle snapshot: $(count)"
[ "$(hashkv)" = "$idle_before" ] || fail "hashkv across the idle snapshot: $(hashkv), want $idle_before"
stop

# By count only: the same writes take no snapshot.
rm -rf "$work/data"
: >"$work/log"
start 0
load
[ "$(count)" = "$keys" ] || fail "count with --snapshot-bytes 0: $(count)"
stop
# A snapshot started is either saved or, stopped by the shutdown, failed.
! grep -E "snapshot (saved|failed)" "$work/log" || fail "a snapshot with --snapshot-bytes 0"
# Three members: below each snapshot the log keeps a tail for followers,
# at most a quarter of the bytes due, max(bound, the snapshot's raw size /
# 4), and more than nothing.
cps=("$(port)" "$(port)" "$(port)")
pps=("$(port)" "$(port)" "$(port)")
cl="m0=http://127.0.0.1:${pps[0]},m1=http://127.0.0.1:${pps[1]},m2=http://127.0.0.1:${pps[2]}"
pids3=()
for i in 0 1 2; do
    "$moord" --name "m$i" --data-dir "$work/c$i" --snapshot-count 100000 \
        --snapshot-bytes "$bound" --initial-cluster "$cl" \
        --listen-client-urls "http://127.0.0.1:${cps[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${cps[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${pps[$i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${pps[$i]}" >>"$work/c$i.log" 2>&1 &
    pids3+=($!)
done
stop3() { for p in "${pids3[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap 'stop3; cleanup' EXIT INT TERM
ok=""
for _ in $(seq 1 200); do
    if etcdctl --endpoints="127.0.0.1:${cps[0]}" --command-timeout=1s put ready 1 >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.05
done
[ -n "$ok" ] || fail "the 3-member cluster did not take a put"
cport=${cps[0]}
load
for _ in $(seq 1 100); do
    [ "$(cat "$work"/c?.log | grep -c "snapshot saved")" -ge 9 ] && break
    sleep 0.05
done
cat "$work"/c?.log | grep "snapshot saved" |
    sed 's/.* raw_bytes=\([0-9]*\) .*log_first=\([0-9]*\) kept_bytes=\([0-9]*\).*/\1 \2 \3/' >"$work/compactions3"
[ "$(wc -l <"$work/compactions3")" -ge 9 ] || fail "3 members: $(wc -l <"$work/compactions3") snapshots"
some=0
while read -r raw first kept; do
    due=$((raw / 4 > bound ? raw / 4 : bound))
    [ "$first" -gt 1 ] || fail "3 members: the raft log was not compacted"
    [ "$kept" -le $((due / 4)) ] || fail "3 members: kept $kept bytes below a snapshot (bound $((due / 4)))"
    [ "$kept" -gt 0 ] && some=1
done <"$work/compactions3"
[ "$some" = 1 ] || fail "3 members: no tail was kept for followers"
stop3

echo "snapshots by bytes: $saved, restart replayed $replayed entries after index $loaded"
echo "1 passed, 0 failed"
