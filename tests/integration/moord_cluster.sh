#!/usr/bin/env bash
# moord_cluster.sh MOORD [MEMBERS]: three (or MEMBERS) real moord members
# on loopback. Writes and
# linearizable reads through every member; kill -9 of the leader under
# write load elects a new leader and loses no acknowledged write; the
# killed member restarts and catches up; every member ends with the same
# HashKV at the same revision.
set -euo pipefail
moord=$1
members=${2:-3}
ids=$(seq 0 $((members - 1)))
export ETCDCTL_API=3
work=$(mktemp -d)
pids=()
for i in $ids; do pids+=(0); done
cleanup() {
    for p in "${pids[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*"
    for i in $ids; do echo "--- m$i"; tail -n 15 "$work/m$i.log"; done
    exit 1
}
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cports=() pports=() cluster="" all=""
for i in $ids; do
    cports+=("$(port)")
    pports+=("$(port)")
    cluster="${cluster:+$cluster,}m$i=http://127.0.0.1:${pports[$i]}"
    all="${all:+$all,}127.0.0.1:${cports[$i]}"
done
ctl() { etcdctl --dial-timeout=1s --command-timeout=3s "$@"; }

start() { # start I
    local i=$1
    "$moord" --name "m$i" --data-dir "$work/d$i" \
        --listen-client-urls "http://127.0.0.1:${cports[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${cports[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${pports[$i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${pports[$i]}" \
        --initial-cluster "$cluster" >>"$work/m$i.log" 2>&1 &
    pids[$i]=$!
}
healthy() { # healthy I: bounded wait for /health
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:${cports[$1]}/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        sleep 0.05
    done
    fail "m$1 not healthy"
}
leader() { # the index of the member that says it leads
    for i in $ids; do
        if [ "${pids[$i]}" != 0 ] && ctl --endpoints="127.0.0.1:${cports[$i]}" endpoint status 2>/dev/null | grep -q ", true,"; then
            echo "$i"
            return 0
        fi
    done
    echo -1
}

for i in $ids; do start "$i"; done
for i in $ids; do healthy "$i"; done

# Every member takes writes (followers forward) and serves linearizable reads.
for i in $ids; do
    [ "$(ctl --endpoints="127.0.0.1:${cports[$i]}" put "k$i" "v$i")" = OK ] || fail "put via m$i"
done
want=""
for i in $ids; do want="${want}v$i "; done
for i in $ids; do
    got=$(ctl --endpoints="127.0.0.1:${cports[$i]}" get k --prefix --print-value-only | tr '\n' ' ')
    [ "$got" = "$want" ] || fail "linearizable read via m$i: $got"
done
n=$(ctl --endpoints="$all" member list | wc -l)
[ "$n" = "$members" ] || fail "member list has $n members"
# --cluster dials the members' advertised client URLs (with a scheme, which
# grpc-go sends as the :authority).
n=$(ctl --endpoints="127.0.0.1:${cports[0]}" endpoint status --cluster | grep -c ", 3.4.0, " || true)
[ "$n" = "$members" ] || fail "endpoint status --cluster: $(ctl --endpoints="127.0.0.1:${cports[0]}" endpoint status --cluster 2>&1)"

# etcd's per-peer byte counters: the leader has sent to and received from
# every other member (labelled by its id in hex, as etcd does).
l=$(leader)
[ "$l" -ge 0 ] || fail "no leader"
curl -fsS "http://127.0.0.1:${cports[$l]}/metrics" >"$work/metrics" || fail "no /metrics on m$l"
for i in $ids; do
    [ "$i" = "$l" ] && continue
    id=$(ctl --endpoints="127.0.0.1:${cports[$i]}" endpoint status -w json | sed 's/.*"member_id":\([0-9]*\).*/\1/')
    hex=$(/usr/bin/python3 -c "print('%x' % $id)") # ids use all 64 bits
    for m in "sent_bytes_total{To" "received_bytes_total{From"; do
        v=$(grep "^etcd_network_peer_$m=\"$hex\"} " "$work/metrics" | awk '{print $2}')
        [ -n "$v" ] && [ "$v" != 0 ] || fail "etcd_network_peer_$m=\"$hex\"} is '${v}' on the leader"
    done
done

# kill -9 the leader while a client writes through the other two members.
[ "$l" -ge 0 ] || fail "no leader"
others=""
for i in $ids; do [ "$i" != "$l" ] && others="${others:+$others,}127.0.0.1:${cports[$i]}"; done
: >"$work/acked"
(
    for k in $(seq 1 300); do
        [ -f "$work/stop" ] && break
        if ctl --endpoints="$others" put "load/$k" "v$k" >/dev/null 2>&1; then echo "$k" >>"$work/acked"; fi
    done
) &
writer=$!
sleep 1
kill -9 "${pids[$l]}"
wait "${pids[$l]}" 2>/dev/null || true
pids[$l]=0
t0=$(date +%s%N)
newl=-1
for _ in $(seq 1 100); do
    newl=$(leader)
    [ "$newl" -ge 0 ] && break
    sleep 0.05
done
[ "$newl" -ge 0 ] || fail "no new leader after kill -9 of m$l"
echo "leader m$l killed; m$newl leads after $((($(date +%s%N) - t0) / 1000000)) ms"
sleep 1
touch "$work/stop"
wait "$writer" || true

# The killed member comes back and catches up.
start "$l"
healthy "$l"
acked=$(wc -l <"$work/acked")
[ "$acked" -gt 0 ] || fail "no write acknowledged during the failover"
sleep 1
for i in $ids; do
    count=$(ctl --endpoints="127.0.0.1:${cports[$i]}" get load/ --prefix --keys-only --consistency=s | grep -c '^load/' || true)
    missing=0
    while read -r k; do
        v=$(ctl --endpoints="127.0.0.1:${cports[$i]}" get "load/$k" --print-value-only --consistency=s)
        [ "$v" = "v$k" ] || missing=$((missing + 1))
    done <"$work/acked"
    [ "$missing" = 0 ] || fail "m$i lost $missing of $acked acknowledged writes"
    echo "m$i: $count keys, all $acked acknowledged writes present"
done
hashes=$(ctl --endpoints="$all" endpoint hashkv | awk '{print $2}' | sort -u | wc -l)
[ "$hashes" = 1 ] || fail "members disagree: $(ctl --endpoints="$all" endpoint hashkv)"

# MoveLeader hands leadership to the member named.
l=$(leader)
t=$(( (l + 1) % members ))
tid=$(ctl --endpoints="127.0.0.1:${cports[$t]}" endpoint status | cut -d, -f2 | tr -d ' ')
ctl --endpoints="$all" move-leader "$tid" | grep -q "Leadership transferred" || fail "move-leader"
[ "$(leader)" = "$t" ] || fail "m$t does not lead after move-leader"

# SIGTERM of the leader hands leadership over before it stops.
kill -TERM "${pids[$t]}"
wait "${pids[$t]}" || fail "m$t exited non-zero on SIGTERM"
pids[$t]=0
grep -q "handing over leadership before stopping" "$work/m$t.log" || fail "no hand-over on SIGTERM"
newl=$(leader)
[ "$newl" -ge 0 ] || fail "no leader after the leader's SIGTERM"

for i in $ids; do [ "${pids[$i]}" != 0 ] && kill -TERM "${pids[$i]}"; done
for i in $ids; do
    if [ "${pids[$i]}" != 0 ]; then
        wait "${pids[$i]}" || fail "m$i exited non-zero on SIGTERM"
        pids[$i]=0
    fi
done
echo "1 passed, 0 failed"
