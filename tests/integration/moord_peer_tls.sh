#!/usr/bin/env bash
# moord_peer_tls.sh MOORD: three members over mutual peer TLS with
# --peer-client-cert-auth (a CA and certificates made here with openssl,
# IP SAN 127.0.0.1). Writes replicate to every member. Then one member is
# restarted with a certificate from another CA: both sides refuse the
# handshake (the logs say why), the other two keep serving, and the bad
# member never joins (it holds none of the writes made meanwhile). A TLS
# client without a certificate is refused by the peer port. Finally the
# member comes back with its good certificate and catches up: every member
# ends with the same HashKV at the same revision.
set -euo pipefail
moord=$1
export ETCDCTL_API=3
py=/usr/bin/python3
work=$(mktemp -d)
pids=(0 0 0)
cleanup() {
    for p in "${pids[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*"
    for i in 0 1 2; do echo "--- m$i"; grep -E "inbound|TLS" "$work/m$i.log" | tail -n 6; tail -n 8 "$work/m$i.log"; done
    exit 1
}
port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A CA, a member certificate (server and client use, IP SAN 127.0.0.1),
# and the same from another CA.
mkca() { # mkca NAME
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$work/$1-ca.key" -out "$work/$1-ca.pem" -days 2 \
        -subj "/CN=$1 peer CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$work/$1.key" -out "$work/$1.csr" -subj "/CN=member" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$work/$1-ca.pem" \
        -CAkey "$work/$1-ca.key" -CAcreateserial -out "$work/$1.pem" \
        -days 2 -extfile "$work/$1.ext" 2>/dev/null
}
mkca good
mkca evil

cports=("$(port)" "$(port)" "$(port)")
pports=("$(port)" "$(port)" "$(port)")
cluster="m0=https://127.0.0.1:${pports[0]},m1=https://127.0.0.1:${pports[1]},m2=https://127.0.0.1:${pports[2]}"
ctl() { etcdctl --dial-timeout=1s --command-timeout=5s "$@"; }

start() { # start I CERTNAME
    local i=$1 c=$2
    "$moord" --name "m$i" --data-dir "$work/d$i" \
        --listen-client-urls "http://127.0.0.1:${cports[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${cports[$i]}" \
        --listen-peer-urls "https://127.0.0.1:${pports[$i]}" \
        --initial-advertise-peer-urls "https://127.0.0.1:${pports[$i]}" \
        --initial-cluster "$cluster" \
        --peer-cert-file "$work/$c.pem" --peer-key-file "$work/$c.key" \
        --peer-trusted-ca-file "$work/$c-ca.pem" --peer-client-cert-auth \
        >>"$work/m$i.log" 2>&1 &
    pids[$i]=$!
}
healthy() { # healthy I: bounded wait for /health
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:${cports[$1]}/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        sleep 0.05
    done
    fail "m$1 not healthy"
}
hashkv_same() { # all three: same revision and HashKV (bounded wait)
    for _ in $(seq 1 100); do
        revs=$(for i in 0 1 2; do ctl --endpoints="127.0.0.1:${cports[$i]}" endpoint status -w json 2>/dev/null | grep -o '"revision":[0-9]*' | head -1; done | sort -u | wc -l)
        hashes=$(for i in 0 1 2; do ctl --endpoints="127.0.0.1:${cports[$i]}" endpoint hashkv 2>/dev/null | awk '{print $2}'; done | sort -u | grep -c . || true)
        [ "$revs" = 1 ] && [ "$hashes" = 1 ] && return 0
        sleep 0.1
    done
    fail "members differ"
}

for i in 0 1 2; do start "$i" good; done
for i in 0 1 2; do healthy "$i"; done
grep -q "tls=mutual" "$work/m0.log" || fail "m0 does not say its peers use TLS"
for i in 0 1 2; do
    [ "$(ctl --endpoints="127.0.0.1:${cports[$i]}" put "k$i" "v$i")" = OK ] || fail "put via m$i"
done
for i in 0 1 2; do
    got=$(ctl --endpoints="127.0.0.1:${cports[$i]}" get k --prefix --print-value-only | tr '\n' ' ')
    [ "$got" = "v0 v1 v2 " ] || fail "read via m$i: $got"
done
hashkv_same

# m2 comes back with a certificate from another CA.
kill -9 "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true; pids[2]=0
start 2 evil
# Each side refuses the other's certificate: the dialer logs the verify
# failure, the acceptor the aborted handshake.
refused() {
    grep -q "TLS with a peer failed.*certificate verify failed" "$work/m0.log" &&
        grep -q "TLS with a peer failed.*certificate verify failed" "$work/m2.log" &&
        grep -q "closing inbound connection.*TLS handshake" "$work/m0.log"
}
for _ in $(seq 1 100); do refused && break; sleep 0.1; done
refused || fail "m0 and m2 did not both refuse the other's certificate"
# If m2 led, m0 and m1 elect a new leader first (bounded wait).
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:${cports[0]}/metrics" 2>/dev/null | grep -q '^etcd_server_has_leader 1$' && break
    sleep 0.05
done
for j in $(seq 1 20); do
    [ "$(ctl --endpoints="127.0.0.1:${cports[0]}" put "during$j" x)" = OK ] || fail "the cluster stopped serving"
done
sleep 1 # give a (wrongly) accepted m2 time to show it replicated
got=$(ctl --endpoints="127.0.0.1:${cports[2]}" get --consistency=s during --prefix --keys-only 2>/dev/null | grep -c during || true)
[ "$got" = 0 ] || fail "m2 with a wrong CA holds $got writes made meanwhile"

# A TLS client without a certificate is refused by a peer port.
openssl s_client -connect "127.0.0.1:${pports[0]}" -CAfile "$work/good-ca.pem" \
    </dev/null >"$work/nocert.out" 2>&1 || true
for _ in $(seq 1 50); do
    grep -Eq "closing inbound connection.*(did not return a certificate|certificate required)" "$work/m0.log" && break
    sleep 0.1
done
grep -Eq "closing inbound connection.*(did not return a certificate|certificate required)" "$work/m0.log" ||
    fail "m0 did not refuse a client without a certificate: $(grep 'inbound' "$work/m0.log" | tail -3)"

# Back with the right certificate: m2 catches up.
kill -9 "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true; pids[2]=0
start 2 good
healthy 2
hashkv_same
got=$(ctl --endpoints="127.0.0.1:${cports[2]}" get --consistency=s during --prefix --keys-only | grep -c during || true)
[ "$got" = 20 ] || fail "m2 holds $got of 20 writes after rejoining"
echo PASS
