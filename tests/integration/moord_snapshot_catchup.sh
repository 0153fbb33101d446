#!/usr/bin/env bash
# moord_snapshot_catchup.sh MOORD: a follower behind the leader's log start
# catches up by snapshot. Three members with --snapshot-count 1000; one
# follower is killed; 8,000 writes go to the others, so the leader snapshots
# and compacts its log past the follower's (it keeps 5,000 entries); the
# follower restarts, is sent the snapshot on the snapshot stream, installs
# it (its log says so), and all three end with the same HashKV at the same
# revision, the follower serving keys written while it was down.
# moord_snapshot_catchup.sh MOORD tls: the same over mutual peer TLS.
set -euo pipefail
moord=$1
mode=${2:-tcp}
keys=${KEYS:-8000} # more: KEYS=50000 moord_snapshot_catchup.sh MOORD
export ETCDCTL_API=3
py=/usr/bin/python3
work=$(mktemp -d)
pids=(0 0 0)
cleanup() {
    for p in "${pids[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*"
    for i in 0 1 2; do echo "--- m$i"; tail -n 25 "$work/m$i.log"; done
    exit 1
}
port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cports=("$(port)" "$(port)" "$(port)")
pports=("$(port)" "$(port)" "$(port)")
scheme=http
tlsflags=()
if [ "$mode" = tls ]; then
    scheme=https
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 -subj "/CN=peer CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$work/m.key" -out "$work/m.csr" -subj "/CN=member" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$work/m.ext"
    openssl x509 -req -in "$work/m.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -CAcreateserial -out "$work/m.pem" -days 2 -extfile "$work/m.ext" 2>/dev/null
    tlsflags=(--peer-cert-file "$work/m.pem" --peer-key-file "$work/m.key"
              --peer-trusted-ca-file "$work/ca.pem" --peer-client-cert-auth)
fi
cluster="m0=$scheme://127.0.0.1:${pports[0]},m1=$scheme://127.0.0.1:${pports[1]},m2=$scheme://127.0.0.1:${pports[2]}"
ctl() { etcdctl --dial-timeout=1s --command-timeout=5s "$@"; }

start() { # start I
    local i=$1
    "$moord" --name "m$i" --data-dir "$work/d$i" --snapshot-count 1000 \
        --listen-client-urls "http://127.0.0.1:${cports[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${cports[$i]}" \
        --listen-peer-urls "$scheme://127.0.0.1:${pports[$i]}" \
        --initial-advertise-peer-urls "$scheme://127.0.0.1:${pports[$i]}" \
        --initial-cluster "$cluster" "${tlsflags[@]}" >>"$work/m$i.log" 2>&1 &
    pids[$i]=$!
}
healthy() { # healthy I: bounded wait for /health
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:${cports[$1]}/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        sleep 0.05
    done
    fail "m$1 not healthy"
}
leader() {
    for i in 0 1 2; do
        if [ "${pids[$i]}" != 0 ] && ctl --endpoints="127.0.0.1:${cports[$i]}" endpoint status 2>/dev/null | grep -q ", true,"; then
            echo "$i"
            return 0
        fi
    done
    echo -1
}
# puts PORT N PREFIX: N puts over gRPC, 64 in flight (hand-encoded
# PutRequest{key, value}); exits non-zero if any fails.
puts() {
    $py - "$@" <<'PY'
import sys, grpc
port, n, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ch = grpc.insecure_channel("127.0.0.1:" + port)
put = ch.unary_unary("/etcdserverpb.KV/Put")
def enc(b):
    out = bytearray()
    v = len(b)
    while v >= 0x80:
        out.append((v & 0x7f) | 0x80); v >>= 7
    out.append(v)
    return bytes(out) + b
pending = []
for i in range(n):
    k = ("%s%06d" % (prefix, i)).encode()
    pending.append(put.future(b"\x0a" + enc(k) + b"\x12" + enc(b"value-" + k), timeout=30))
    if len(pending) >= 64:
        for f in pending: f.result()
        pending = []
for f in pending: f.result()
PY
}

for i in 0 1 2; do start "$i"; done
for i in 0 1 2; do healthy "$i"; done
l=-1
for _ in $(seq 1 100); do l=$(leader); [ "$l" -ge 0 ] && break; sleep 0.1; done
[ "$l" -ge 0 ] || fail "no leader"
f=$(( (l + 1) % 3 ))
o=$(( (l + 2) % 3 ))
[ "$(ctl --endpoints="127.0.0.1:${cports[$l]}" put before 1)" = OK ] || fail "first put"

# The follower goes away; the log moves well past what the leader keeps.
kill -9 "${pids[$f]}"
wait "${pids[$f]}" 2>/dev/null || true
pids[$f]=0
puts "${cports[$l]}" "$keys" key- || fail "writes while m$f is down"
grep -q "snapshot saved" "$work/m$l.log" || fail "the leader took no snapshot"

t0=$(date +%s%N)
start "$f"
healthy "$f"
ok=0
for _ in $(seq 1 300); do
    if grep -q "installed the snapshot from the leader" "$work/m$f.log"; then ok=1; break; fi
    sleep 0.1
done
[ "$ok" = 1 ] || fail "m$f did not install a snapshot"
grep -q "received a snapshot from the leader" "$work/m$f.log" || fail "no transfer logged"
grep -q "snapshot sent" "$work/m$l.log" || fail "the leader logged no snapshot sent"

# Same HashKV at the same revision on all three.
same=0
for _ in $(seq 1 100); do
    revs=$(for i in 0 1 2; do ctl --endpoints="127.0.0.1:${cports[$i]}" endpoint status -w json 2>/dev/null | grep -o '"revision":[0-9]*' | head -1; done | sort -u | wc -l)
    hashes=$(for i in 0 1 2; do ctl --endpoints="127.0.0.1:${cports[$i]}" endpoint hashkv 2>/dev/null | awk '{print $2}'; done | sort -u)
    if [ "$revs" = 1 ] && [ "$(echo "$hashes" | grep -c .)" = 1 ]; then same=1; break; fi
    sleep 0.1
done
t1=$(date +%s%N)
[ "$same" = 1 ] || fail "members differ: revisions $revs, hashes $hashes"
last=$(printf 'key-%06d' $((keys - 1)))
got=$(ctl --endpoints="127.0.0.1:${cports[$f]}" get --consistency=s "$last" --print-value-only)
[ "$got" = "value-$last" ] || fail "m$f serves '$got' for a key written while it was down"
n=$(ctl --endpoints="127.0.0.1:${cports[$f]}" get --consistency=s --prefix key- --keys-only | grep -c '^key-' || true)
[ "$n" = "$keys" ] || fail "m$f holds $n keys"
# It keeps working as a member: a write through it reaches the others.
[ "$(ctl --endpoints="127.0.0.1:${cports[$f]}" put after 2)" = OK ] || fail "put via m$f"
[ "$(ctl --endpoints="127.0.0.1:${cports[$o]}" get after --print-value-only)" = 2 ] || fail "read after"
ms=$(( (t1 - t0) / 1000000 ))
# The transfer's and the install's own timings, for the record.
grep -h "received a snapshot from the leader\|installed the snapshot from the leader" "$work/m$f.log" | sed 's/.*INFO /  /'
grep -h "snapshot sent" "$work/m$l.log" | sed 's/.*INFO /  /'
# A restart after the install starts from the installed snapshot.
kill -9 "${pids[$f]}"
wait "${pids[$f]}" 2>/dev/null || true
pids[$f]=0
start "$f"
healthy "$f"
got=$(ctl --endpoints="127.0.0.1:${cports[$f]}" get --consistency=s "$last" --print-value-only)
[ "$got" = "value-$last" ] || fail "m$f lost the installed snapshot on restart: '$got'"
[ "$(ctl --endpoints="127.0.0.1:${cports[$f]}" get after --print-value-only)" = 2 ] || fail "read after restart"
echo "caught up by snapshot in $ms ms (restart to same HashKV, $keys keys, $mode)"
echo PASS
