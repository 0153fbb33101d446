#!/usr/bin/env bash
# moord_alarm.sh MOORD: alarms go through Raft, on three real members.
#   1. m0 alone has a small --quota-backend-bytes; large puts push it over:
#      its NOSPACE alarm is applied on every member, so `alarm list` on
#      each shows it (memberID of m0), /health of the others reports it,
#      and puts through another member are refused with etcd's error.
#   2. A restarted member still lists the alarm: m1 takes a snapshot
#      (--snapshot-count 20) after the alarm's entry, so the alarm comes
#      back from the snapshot, not from a WAL replay of its entry.
#   3. After deleting and compacting, `alarm disarm` on another member
#      clears it everywhere and puts work again through every member.
#   4. (root only, needs tmpfs) m2's WAL lives on a small tmpfs; filling it
#      trips the WAL's early warning: m2's NOSPACE alarm is raised through
#      Raft (listed on m0, puts through m0 refused) and m2 keeps running.
set -euo pipefail
moord=$1
export ETCDCTL_API=3
work=$(mktemp -d)
pids=(0 0 0)
mnt=""
cleanup() {
    for p in "${pids[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do [ "$p" != 0 ] && wait "$p" 2>/dev/null || true; done
    [ -n "$mnt" ] && umount "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*"
    for i in 0 1 2; do echo "--- m$i"; tail -n 15 "$work/m$i.log"; done
    exit 1
}
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cports=("$(port)" "$(port)" "$(port)")
pports=("$(port)" "$(port)" "$(port)")
cluster="m0=http://127.0.0.1:${pports[0]},m1=http://127.0.0.1:${pports[1]},m2=http://127.0.0.1:${pports[2]}"
ctl() { local i=$1; shift; etcdctl --endpoints="127.0.0.1:${cports[$i]}" --dial-timeout=1s --command-timeout=5s "$@"; }
extra=("--quota-backend-bytes=12000000" "--snapshot-count=20" "")

start() { # start I
    local i=$1
    "$moord" --name "m$i" --data-dir "$work/d$i" ${extra[$i]} \
        --listen-client-urls "http://127.0.0.1:${cports[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${cports[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${pports[$i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${pports[$i]}" \
        --initial-cluster "$cluster" >>"$work/m$i.log" 2>&1 &
    pids[$i]=$!
}
has_leader() { # has_leader I: bounded wait for a leader seen by member I
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:${cports[$1]}/metrics" 2>/dev/null | grep -q '^etcd_server_has_leader 1$' && return 0
        sleep 0.05
    done
    fail "m$1 has no leader"
}
eventually() { # eventually DESC CMD...: CMD succeeds within 5 s
    local desc=$1
    shift
    for _ in $(seq 1 100); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    fail "$desc"
}
lists_nospace_of() { # lists_nospace_of I ID: member I lists ID's NOSPACE
    ctl "$1" alarm list | grep -q "memberID:$2 alarm:NOSPACE"
}
no_alarms() { [ -z "$(ctl "$1" alarm list)" ]; }
put_ok() { [ "$(ctl "$1" put "$2" x)" = OK ]; }
member_id() { # the decimal id of member I from its own header
    ctl "$1" endpoint status -w json | sed 's/.*"member_id":\([0-9]*\).*/\1/'
}

if [ -n "${MOOR_ALARM_TMPFS:-1}" ] && [ "$(id -u)" = 0 ]; then
    mnt="$work/walfs"
    mkdir -p "$mnt"
    if mount -t tmpfs -o size=100m tmpfs "$mnt" 2>/dev/null; then
        extra[2]="--wal-dir=$mnt/wal"
    else
        mnt=""
    fi
fi

for i in 0 1 2; do start "$i"; done
for i in 0 1 2; do has_leader "$i"; done
id0=$(member_id 0)
id2=$(member_id 2)

# 1. Over m0's quota: the alarm is everybody's.
head -c 300000 /dev/zero | tr '\0' x >"$work/big"
refused=""
for i in $(seq 1 100); do
    out=$(ctl 1 put "big/$i" <"$work/big" 2>&1 || true)
    if echo "$out" | grep -q "etcdserver: mvcc: database space exceeded"; then refused=$i; break; fi
done
[ -n "$refused" ] || fail "puts past m0's quota were never refused"
for i in 0 1 2; do eventually "m$i does not list m0's NOSPACE" lists_nospace_of "$i" "$id0"; done
curl -s "http://127.0.0.1:${cports[2]}/health" | grep -q '"reason":"ALARM NOSPACE"' || fail "m2's /health does not report the alarm"
out=$(ctl 2 put small x 2>&1 || true)
echo "$out" | grep -q "database space exceeded" || fail "a put through m2 was not refused: $out"
ctl 2 get big/1 --keys-only | grep -q big/1 || fail "reads refused under NOSPACE"

# 2. A restarted member still lists it, from a snapshot taken after it.
snaps=$(grep -c 'snapshot saved' "$work/m1.log" || true)
for i in $(seq 1 30); do ctl 1 del "nokey$i" >/dev/null || fail "delete $i refused"; done
taken() { [ "$(grep -c 'snapshot saved' "$work/m1.log")" -gt "$snaps" ]; }
eventually "m1 took no snapshot after the alarm" taken
kill -TERM "${pids[1]}"
wait "${pids[1]}" || fail "m1 exited non-zero"
pids[1]=0
start 1
has_leader 1
eventually "m1 lost the alarm over a restart" lists_nospace_of 1 "$id0"
grep -q "alarm restored from the snapshot" "$work/m1.log" || fail "m1 did not restore the alarm from its snapshot"

# 3. Free the space, disarm through m2: clear everywhere.
ctl 2 del big/ --prefix >/dev/null || fail "deletes refused under NOSPACE"
rev=$(ctl 2 get nothing -w json | sed 's/.*"revision":\([0-9]*\).*/\1/')
ctl 2 compaction "$rev" >/dev/null 2>&1 || true
disarmed() { ctl 2 alarm disarm >/dev/null && no_alarms 0 && no_alarms 1 && no_alarms 2 && put_ok 1 after; }
eventually "alarm disarm through m2 did not clear the alarm everywhere" disarmed
for i in 0 1 2; do put_ok "$i" "after$i" || fail "put through m$i after disarm"; done

# 4. m2's WAL disk runs low: NOSPACE through Raft, m2 keeps serving.
if [ -n "$mnt" ]; then
    # m0's small quota would trip first (its raft log holds every entry):
    # restart it without one.
    kill -TERM "${pids[0]}"
    wait "${pids[0]}" || fail "m0 exited non-zero"
    extra[0]=""
    start 0
    has_leader 0
    head -c 1000000 /dev/zero | tr '\0' y >"$work/mb"
    raised=""
    for i in $(seq 1 90); do
        out=$(ctl 1 put fill <"$work/mb" 2>&1 || true)
        if echo "$out" | grep -q "database space exceeded"; then raised=$i; break; fi
    done
    [ -n "$raised" ] || fail "filling m2's WAL disk never refused a put"
    for i in 0 1 2; do eventually "m$i does not list m2's NOSPACE" lists_nospace_of "$i" "$id2"; done
    grep -q "disk nearly full" "$work/m2.log" || fail "m2 did not log the WAL's warning"
    kill -0 "${pids[2]}" || fail "m2 stopped"
    ctl 2 get fill --keys-only | grep -q fill || fail "m2 does not serve reads"
    echo "WAL disk-full phase: passed after $raised puts of 1 MB"
else
    echo "WAL disk-full phase: skipped (needs root and tmpfs)"
fi

for i in 0 1 2; do
    kill -TERM "${pids[$i]}"
    wait "${pids[$i]}" || fail "m$i exited non-zero"
    pids[$i]=0
done
echo "1 passed, 0 failed"
