#!/usr/bin/env bash
# moord_members.sh MOORD: membership changes on a running 3-member moord
# cluster, driven by Debian's etcdctl 3.4 through a follower (so the calls
# are forwarded to the leader): add a learner under write load, start it
# with --initial-cluster-state existing, promote it once caught up; add a
# voter the same way; remove an old member (it stops); update a member's
# peer URLs; restart a member and see the table survive; every member
# ends with the same HashKV at the same revision; etcd's errors for a
# duplicate peer URL, an unknown member and promoting a voter.
set -euo pipefail
moord=$1
export ETCDCTL_API=3
work=$(mktemp -d)
pids=(0 0 0 0 0)
loadpid=0
cleanup() {
    [ "$loadpid" != 0 ] && kill "$loadpid" 2>/dev/null || true
    for p in "${pids[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*"
    for i in 0 1 2 3 4; do [ -f "$work/m$i.log" ] && { echo "--- m$i"; tail -n 20 "$work/m$i.log"; }; done
    exit 1
}
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cports=() pports=()
for i in 0 1 2 3 4; do cports+=("$(port)"); pports+=("$(port)"); done
purl() { echo "http://127.0.0.1:${pports[$1]}"; }
cluster="m0=$(purl 0),m1=$(purl 1),m2=$(purl 2)"
ctl() { etcdctl --dial-timeout=2s --command-timeout=5s "$@"; }
ep() { echo "127.0.0.1:${cports[$1]}"; }

start() { # start I STATE CLUSTER
    local i=$1
    "$moord" --name "m$i" --data-dir "$work/d$i" \
        --listen-client-urls "http://127.0.0.1:${cports[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${cports[$i]}" \
        --listen-peer-urls "$(purl "$i")" \
        --initial-advertise-peer-urls "$(purl "$i")" \
        --initial-cluster-state "$2" \
        --initial-cluster "$3" >>"$work/m$i.log" 2>&1 &
    pids[$i]=$!
}
healthy() { # healthy I: bounded wait for /health
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:${cports[$1]}/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        sleep 0.05
    done
    fail "m$1 not healthy"
}
leader() { # the index of the member that says it leads
    for i in 0 1 2 3 4; do
        if [ "${pids[$i]}" != 0 ] && ctl --endpoints="$(ep "$i")" endpoint status 2>/dev/null | grep -q ", true,"; then
            echo "$i"
            return 0
        fi
    done
    echo -1
}
follower() { # a running member that is not the leader, among "$@"
    local l
    l=$(leader)
    for i in "$@"; do [ "$i" != "$l" ] && [ "${pids[$i]}" != 0 ] && { echo "$i"; return 0; }; done
    fail "no follower among $*"
}
id_of() { # the hex id of the member whose peer URL is $1, via endpoint $2
    ctl --endpoints="$2" member list | awk -F', ' -v u="$1" '$4 == u { print $1 }'
}

for i in 0 1 2; do start "$i" new "$cluster"; done
for i in 0 1 2; do healthy "$i"; done
for k in $(seq 1 200); do echo "put pre$k v$k"; done | ctl --endpoints="$(ep 0)" txn >/dev/null 2>&1 || true
for k in $(seq 1 50); do ctl --endpoints="$(ep 0)" put "pre$k" "v$k" >/dev/null; done

# Background writes through m0 during the changes.
(
    k=0
    while :; do
        k=$((k + 1))
        ctl --endpoints="$(ep 0),$(ep 1),$(ep 2)" put "load$k" "x" >/dev/null 2>&1 || true
    done
) &
loadpid=$!

# Errors as etcd's.
f=$(follower 0 1 2)
out=$(ctl --endpoints="$(ep "$f")" member add dup --peer-urls="$(purl 1)" 2>&1 || true)
echo "$out" | grep -q "Peer URLs already exists" || fail "duplicate peer URL: $out"
out=$(ctl --endpoints="$(ep "$f")" member remove 1234 2>&1 || true)
echo "$out" | grep -q "member not found" || fail "remove unknown: $out"

# A learner: add through a follower, start it as an existing member.
out=$(ctl --endpoints="$(ep "$f")" member add m3 --learner --peer-urls="$(purl 3)") || fail "member add --learner: $out"
echo "$out" | grep -q 'ETCD_INITIAL_CLUSTER_STATE="existing"' || fail "member add output: $out"
ic=$(echo "$out" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
echo "$ic" | grep -q "m3=$(purl 3)" || fail "ETCD_INITIAL_CLUSTER: $ic"
learner=$(id_of "$(purl 3)" "$(ep 0)")
[ -n "$learner" ] || fail "learner not listed"
out=$(ctl --endpoints="$(ep 0)" member list)
echo "$out" | grep "$(purl 3)" | grep -q ", true$" || fail "not listed as learner: $out"
start 3 existing "$ic"
# Promote once caught up (etcd refuses until then).
promoted=0
for _ in $(seq 1 100); do
    if ctl --endpoints="$(ep "$(follower 0 1 2)")" member promote "$learner" >/dev/null 2>&1; then
        promoted=1
        break
    fi
    sleep 0.1
done
[ $promoted = 1 ] || fail "learner never promoted"
out=$(ctl --endpoints="$(ep 0)" member list)
echo "$out" | grep "$(purl 3)" | grep -q ", false$" || fail "still a learner: $out"
for _ in $(seq 1 50); do
    out=$(ctl --endpoints="$(ep 0)" member list)
    echo "$out" | grep "$(purl 3)" | grep -q ", started, m3, " && break
    sleep 0.1
done
echo "$out" | grep "$(purl 3)" | grep -q ", started, m3, " || fail "m3 did not publish its name: $out"
out=$(ctl --endpoints="$(ep 0)" member promote "$learner" 2>&1 || true)
echo "$out" | grep -q "can only promote a learner member" || fail "promote a voter: $out"
healthy 3
[ "$(ctl --endpoints="$(ep 3)" get pre7 --print-value-only)" = v7 ] || fail "m3 does not serve the data"

# A voter added directly.
out=$(ctl --endpoints="$(ep "$(follower 0 1 2 3)")" member add m4 --peer-urls="$(purl 4)") || fail "member add: $out"
ic=$(echo "$out" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
start 4 existing "$ic"
healthy 4
for _ in $(seq 1 50); do
    [ "$(ctl --endpoints="$(ep 4)" member list | wc -l)" = 5 ] && break
    sleep 0.1
done
[ "$(ctl --endpoints="$(ep 4)" member list | wc -l)" = 5 ] || fail "5 members expected"

# Remove an old member: it stops.
victim=1
vid=$(id_of "$(purl $victim)" "$(ep 0)")
ctl --endpoints="$(ep 0)" member remove "$vid" >/dev/null || fail "member remove"
for _ in $(seq 1 100); do kill -0 "${pids[$victim]}" 2>/dev/null || break; sleep 0.1; done
kill -0 "${pids[$victim]}" 2>/dev/null && fail "removed member still runs"
grep -q "permanently removed" "$work/m$victim.log" || fail "removed member did not say why it stopped"
pids[$victim]=0
# (m0 may apply the removal a moment after the leader answered)
for _ in $(seq 1 50); do
    [ "$(ctl --endpoints="$(ep 0)" member list | wc -l)" = 4 ] && break
    sleep 0.1
done
[ "$(ctl --endpoints="$(ep 0)" member list | wc -l)" = 4 ] || fail "4 members expected"

# Update a member's peer URLs (and back): the table follows.
uid=$(id_of "$(purl 2)" "$(ep 0)")
ctl --endpoints="$(ep 0)" member update "$uid" --peer-urls="$(purl 2),http://127.0.0.2:${pports[2]}" >/dev/null || fail "member update"
for _ in $(seq 1 50); do
    ctl --endpoints="$(ep 3)" member list | grep -q "http://127.0.0.2:${pports[2]}" && break
    sleep 0.1
done
ctl --endpoints="$(ep 3)" member list | grep -q "http://127.0.0.2:${pports[2]}" || fail "update not seen on m3"
ctl --endpoints="$(ep 0)" member update "$uid" --peer-urls="$(purl 2)" >/dev/null || fail "member update back"

kill "$loadpid" 2>/dev/null || true
wait "$loadpid" 2>/dev/null || true
loadpid=0

# Restart a member: the table comes from its data dir, not the flags.
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
start 0 new "$cluster"
healthy 0
n=$(ctl --endpoints="$(ep 0)" member list | wc -l)
[ "$n" = 4 ] || fail "after restart m0 lists $n members"

# Same state everywhere.
ctl --endpoints="$(ep 0)" put final x >/dev/null
rev=$(ctl --endpoints="$(ep 0)" get final -w json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
for _ in $(seq 1 50); do
    hashes=$(for i in 0 2 3 4; do ctl --endpoints="$(ep "$i")" endpoint hashkv --rev="$rev" -w json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["HashKV"]["hash"])'; done | sort -u | wc -l)
    [ "$hashes" = 1 ] && break
    sleep 0.1
done
[ "$hashes" = 1 ] || fail "HashKV differs across members at revision $rev"
echo "PASS moord_members"
