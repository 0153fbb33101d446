#!/usr/bin/env bash
# moord_single.sh MOORD: one real moord process on loopback, driven by
# Debian's etcdctl 3.4: put/get/del/txn/compaction with etcd's answers and
# error texts, JSON output, restart keeping data and revision, and kill -9
# during writes losing no acknowledged write.
set -euo pipefail
moord=$1
export ETCDCTL_API=3
work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(port)
pport=$(port)
E="etcdctl --endpoints=127.0.0.1:$cport --dial-timeout=2s --command-timeout=5s"
fail() { echo "FAIL: $*"; echo "--- moord log"; tail -20 "$work/log"; exit 1; }

start() {
    "$moord" --name m1 --data-dir "$work/data" --snapshot-count 25 \
        --listen-client-urls "http://127.0.0.1:$cport" \
        --advertise-client-urls "http://127.0.0.1:$cport" \
        --listen-peer-urls "http://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "m1=http://127.0.0.1:$pport" >>"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$cport/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        kill -0 "$pid" 2>/dev/null || fail "moord exited"
        sleep 0.05
    done
    fail "moord not healthy after 5 s"
}
expect() { # expect WANT CMD...
    local want=$1
    shift
    local got
    # etcdctl's client logs a JSON warning line before an error: drop it.
    got=$("$@" 2>&1 | grep -v '^{"level"') || true
    [ "$got" = "$want" ] || fail "$*: want [$want] got [$got]"
}

start
# A second member on the same data dir, or on a taken port, exits 1 with
# a clear message (and does not crash).
set +e
"$moord" --name m1 --data-dir "$work/data" --listen-client-urls "http://127.0.0.1:$(port)" \
    --advertise-client-urls http://127.0.0.1:1 --listen-peer-urls "http://127.0.0.1:$(port)" \
    --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "m1=http://127.0.0.1:$pport" >"$work/second.log" 2>&1
rc=$?
"$moord" --name m1 --data-dir "$work/other" --listen-client-urls "http://127.0.0.1:$cport" \
    --advertise-client-urls "http://127.0.0.1:$cport" --listen-peer-urls "http://127.0.0.1:$(port)" \
    --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "m1=http://127.0.0.1:$pport" >"$work/third.log" 2>&1
rc2=$?
set -e
[ "$rc" = 1 ] && grep -q "is in use" "$work/second.log" || fail "second moord on the data dir: rc=$rc $(cat "$work/second.log")"
[ "$rc2" = 1 ] && grep -q "address already in use" "$work/third.log" || fail "moord on a taken port: rc=$rc2 $(tail -n 2 "$work/third.log")"
expect "OK" $E put foo bar
expect $'foo\nbar' $E get foo
expect $'OK\nfoo\nbar' $E put foo baz --prev-kv
expect "baz" $E get foo --print-value-only
expect "OK" $E put fox 1
expect $'foo\n\nfox' $E get fo --prefix --keys-only
expect $'fox\n1\nfoo\nbaz' $E get fo --prefix --order=DESCEND
expect $'foo\nbaz' $E get fo --prefix --limit=1
json=$($E get foo -w json)
echo "$json" | grep -q '"kvs":\[{"key":"Zm9v","create_revision":2,"mod_revision":3,"version":2,"value":"YmF6"}\],"count":1' ||
    fail "get -w json: $json"
echo "$json" | grep -q '"revision":4,"raft_term":' || fail "header revision: $json"
expect $'1\nfox\n1' $E del fox --prev-kv
expect "0" $E del nothing
expect "" $E get fox --consistency=s
printf 'mod("k") = "0"\n\nput k v1\n\nget k\n\n' >"$work/txn"
expect $'SUCCESS\n\nOK' $E txn <"$work/txn"
expect $'FAILURE\n\nk\nv1' $E txn <"$work/txn"
expect "compacted revision 3" $E compaction 3
expect "Error: etcdserver: mvcc: required revision has been compacted" $E get foo --rev=2
expect "Error: etcdserver: mvcc: required revision is a future revision" $E get foo --rev=1000
expect "Error: etcdserver: mvcc: required revision has been compacted" $E compaction 2

# Leases: grant, attach, time-to-live, keep-alive, list, expiry deletes
# the key, revoke of an unknown lease.
lease=$($E lease grant 2 | awk '{print $2}')
[ -n "$lease" ] || fail "lease grant"
expect "OK" $E put lk v --lease="$lease"
expect "lease $lease granted with TTL(2s), remaining(2s), attached keys([lk])" $E lease timetolive "$lease" --keys
expect "lease $lease keepalived with TTL(2)" $E lease keep-alive --once "$lease"
expect $'found 1 leases\n'"$lease" $E lease list
gone=""
for _ in $(seq 1 100); do
    if [ -z "$($E get lk)" ]; then gone=1; break; fi
    sleep 0.1
done
[ -n "$gone" ] || fail "the key of an expired lease is still there"
expect "lease $lease already expired" $E lease timetolive "$lease"
expect "Error: failed to revoke lease (etcdserver: requested lease not found)" $E lease revoke "$lease"
lease2=$($E lease grant 60 | awk '{print $2}')
expect "OK" $E put lk2 v --lease="$lease2"
expect "lease $lease2 revoked" $E lease revoke "$lease2"
expect "" $E get lk2

# Watch: live events with prev_kv, replay from a revision, and a watch
# from a compacted revision canceled as etcd does.
rev0=$($E get nothing -w json | sed 's/.*"revision":\([0-9]*\).*/\1/')
timeout 4 $E watch w/ --prefix --prev-kv >"$work/w1" 2>&1 &
wpid=$!
sleep 1
$E put w/a 1 >/dev/null
$E put w/a 2 >/dev/null
$E del w/a >/dev/null
$E put other 1 >/dev/null
wait "$wpid" || true
expect $'PUT\nw/a\n1\nPUT\nw/a\n1\nw/a\n2\nDELETE\nw/a\n2\nw/a' cat "$work/w1"
timeout 2 $E watch w/ --prefix --rev=$((rev0 + 1)) >"$work/w2" 2>&1 || true
expect $'PUT\nw/a\n1\nPUT\nw/a\n2\nDELETE\nw/a' cat "$work/w2"
timeout 2 $E watch foo --rev=2 >"$work/w3" 2>&1 || true
grep -q "required revision has been compacted" "$work/w3" || fail "compacted watch: $(cat "$work/w3")"

# Maintenance and cluster.
expect "127.0.0.1:$cport is healthy: successfully committed proposal" sh -c "$E endpoint health 2>&1 | sed 's/: took = .*//'"
$E endpoint status | grep -q ", 3.4.0, " || fail "endpoint status"
$E endpoint hashkv | grep -q "^127.0.0.1:$cport, [0-9]" || fail "endpoint hashkv"
$E member list | grep -q ", started, m1, http://127.0.0.1:$pport, http://127.0.0.1:$cport, false" || fail "member list"
expect "" $E alarm list
expect "Finished defragmenting etcd member[127.0.0.1:$cport]" $E defrag

# A backup streams the member's snapshot file; its last 32 bytes are the
# SHA-256 of the rest.
/usr/bin/python3 - "127.0.0.1:$cport" <<'PY' || fail "backup stream"
import hashlib, sys
import grpc

def fields(b):
    """Yields (number, value) of a protobuf message's varint and bytes
    fields (enough for SnapshotResponse)."""
    i = 0
    while i < len(b):
        key, shift = 0, 0
        while True:
            c = b[i]; i += 1; key |= (c & 0x7f) << shift; shift += 7
            if c < 0x80: break
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, shift = 0, 0
            while True:
                c = b[i]; i += 1; v |= (c & 0x7f) << shift; shift += 7
                if c < 0x80: break
            yield num, v
        elif wt == 2:
            n, shift = 0, 0
            while True:
                c = b[i]; i += 1; n |= (c & 0x7f) << shift; shift += 7
                if c < 0x80: break
            yield num, b[i:i + n]; i += n
        else:
            raise ValueError("unexpected wire type %d" % wt)

ch = grpc.insecure_channel(sys.argv[1])
call = ch.unary_stream("/etcdserverpb.Maintenance/Snapshot",
                       request_serializer=None, response_deserializer=None)
data, last_remaining = b"", None
for msg in call(b"", timeout=20):
    f = dict(fields(msg))
    data += f.get(3, b"")
    last_remaining = f.get(2, 0)
assert last_remaining == 0, "remaining_bytes of the last message is %r" % last_remaining
assert len(data) > 32 and hashlib.sha256(data[:-32]).digest() == data[-32:], "bad sha256 trailer"
PY

# And Debian's etcdctl accepts it (it checks the trailing SHA-256).
$E snapshot save "$work/backup.snap" >"$work/save.out" 2>&1 || fail "etcdctl snapshot save: $(tail -n 2 "$work/save.out")"
grep -q "Snapshot saved at" "$work/save.out" || fail "etcdctl snapshot save: $(tail -n 2 "$work/save.out")"

# Restart keeps data and revision.
rev_before=$($E get foo -w json | sed 's/.*"revision":\([0-9]*\).*/\1/')
kill -TERM "$pid"
wait "$pid" || fail "moord exited non-zero on SIGTERM"
start
rev_after=$($E get foo -w json | sed 's/.*"revision":\([0-9]*\).*/\1/')
[ "$rev_before" = "$rev_after" ] || fail "revision $rev_before became $rev_after across restart"
expect "baz" $E get foo --print-value-only

# kill -9 while writing: every acknowledged put survives.
: >"$work/acked"
(
    for i in $(seq 1 400); do
        [ -f "$work/stop" ] && break
        if $E put "load/$i" "v$i" >/dev/null 2>&1; then echo "$i" >>"$work/acked"; fi
    done
) &
writer=$!
sleep 1
kill -9 "$pid"
touch "$work/stop"
wait "$pid" 2>/dev/null || true
wait "$writer" || true
acked=$(wc -l <"$work/acked")
[ "$acked" -gt 0 ] || fail "no put was acknowledged before the kill"
start
missing=0
while read -r i; do
    v=$($E get "load/$i" --print-value-only)
    [ "$v" = "v$i" ] || { echo "lost acknowledged write load/$i"; missing=$((missing + 1)); }
done <"$work/acked"
[ "$missing" -eq 0 ] || fail "$missing of $acked acknowledged writes lost"
echo "kill -9: $acked acknowledged writes, 0 lost"
# With --snapshot-count 25 the member has snapshotted and restarted from a
# snapshot plus the WAL after it.
ls "$work/data/member/snap/"*.snap >/dev/null 2>&1 || fail "no snapshot file was written"
grep -q "loaded snapshot" "$work/log" || fail "no restart loaded a snapshot"
kill -TERM "$pid"
wait "$pid" || fail "moord exited non-zero on SIGTERM"
pid=""
echo "1 passed, 0 failed"
