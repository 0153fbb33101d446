#!/usr/bin/env bash
# bench_smoke.sh MOORD MOOR_BENCH [ETCD]: every client workload of
# moor-bench, with a tiny --total, against a one-member moord on free
# loopback ports (or, given a third argument, against that etcd binary
# instead: the same runs against real etcd 3.4). Each run must exit 0 and
# print one JSON object with nonzero throughput and no errors.
set -euo pipefail
moord=$1
bench=$2
etcd=${3:-}
work=$(mktemp -d)
pid=""
tpid=""
cleanup() {
    for p in $pid $tpid; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(port)
pport=$(port)
fail() { echo "FAIL: $*"; echo "--- server log"; tail -20 "$work/log"; exit 1; }

server=$moord
kind=moord
if [ -n "$etcd" ]; then
    server=$etcd
    kind=etcd
fi
"$server" --name m1 --data-dir "$work/data" \
    --listen-client-urls "http://127.0.0.1:$cport" \
    --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" \
    --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "m1=http://127.0.0.1:$pport" >"$work/log" 2>&1 &
pid=$!
up=0
for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$cport/health" 2>/dev/null | grep -q '"health":"true"'; then
        up=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || fail "server exited"
    sleep 0.05
done
[ $up = 1 ] || fail "server not healthy after 10 s"

E="--endpoints=127.0.0.1:$cport"
run() { # run NAME ARGS...: one workload, its JSON checked
    local name=$1
    shift
    local out
    out=$("$bench" "$name" "$E" --json "$@" 2>"$work/err") ||
        fail "moor-bench $name $*: exit $? $(cat "$work/err")"
    echo "$out" | /usr/bin/python3 -c '
import json, sys
name = sys.argv[1]
d = json.loads(sys.stdin.read())
assert d["workload"] == name, d["workload"]
assert d["requests"] > 0 and d["throughput"] > 0, "no throughput: %r" % d
assert d["errors_total"] == 0, "errors: %r %s" % (d["errors"], d.get("first_error"))
for k in ("p50", "p90", "p99", "p999", "max"):
    assert d["latency_ms"][k] >= 0
if name in ("watch", "watch-latency"):
    assert d["events"] == d["events_expected"] > 0, d
if name == "k8s":
    assert d["watch_events"] == d["watch_events_expected"] and d["lists"] > 0, d
if name == "consensus":
    assert d["metrics_url"].endswith("/metrics")
    if sys.argv[2] == "moord":
        # moord exposes the per-stage histograms: every put went through
        # every stage during the run.
        st = d["stages"]
        assert st is not None, d.get("stages_unavailable")
        for s in ("propose_to_durable", "durable_to_commit", "commit_to_apply", "apply_to_answer"):
            assert st[s]["count"] >= d["requests"], (s, st[s])
        assert abs(sum(st[s]["share"] for s in st) - 1) < 0.01, st
        assert d["disk"]["etcd_disk_wal_fsync_duration_seconds"]["count"] > 0, d["disk"]
    else:
        assert d["stages"] is None and d["disk"]["etcd_disk_wal_fsync_duration_seconds"]["count"] > 0, d
print("ok  %-16s %10.1f/s  p99 %.3f ms" % (name, d["throughput"], d["latency_ms"]["p99"]))
' "$name" "$kind" || fail "moor-bench $name $*: bad JSON: $out"
}

run put --total 200 --clients 8 --conns 2 --key-space-size 100 --val-size 64
run put --total 50 --sequential-keys --key-space-size 50 --rate 2000
run range 0 --prefix --total 100 --clients 4
run range 00000000 00000050 --consistency s --limit 10 --total 100
run txn-put --total 100 --txn-ops 4 --key-space-size 100 --clients 4
run txn-mixed --total 200 --clients 4 --key-space-size 100 --rw-ratio 3
run watch --total 100 --streams 2 --watchers 5 --clients 4 --prev-kv
run watch-latency --total 50 --streams 2 --watchers 3 --rate 1000
run lease-keepalive --total 100 --clients 4
run k8s --total 300 --clients 4 --objects 100 --page-size 10 --list-ratio 0.2
run consensus --total 100 --clients 2
run put --duration 0.2 --total 0 --clients 2

# Bad usage exits 2; an endpoint with nothing listening exits 1.
set +e
"$bench" put --clients 0 "$E" >/dev/null 2>&1
[ $? = 2 ] || fail "put --clients 0 should exit 2"
"$bench" range "$E" >/dev/null 2>&1
[ $? = 2 ] || fail "range without a key should exit 2"
"$bench" put --endpoints "127.0.0.1:$(port)" --total 1 --timeout 2 >/dev/null 2>&1
[ $? = 1 ] || fail "put to a closed port should exit 1"
set -e
# TLS with client-cert-auth: put over https with --cacert/--cert/--key;
# without a client certificate every request fails (exit 1).
if command -v openssl >/dev/null; then
    (
        cd "$work"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
            -days 2 -subj "/CN=ca" 2>/dev/null
        for n in server client; do
            openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr \
                -subj "/CN=$n" 2>/dev/null
            if [ $n = server ]; then echo "subjectAltName=IP:127.0.0.1" >$n.ext; else : >$n.ext; fi
            openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                -out $n.pem -days 2 -extfile $n.ext 2>/dev/null
        done
    )
    tport=$(port)
    tpport=$(port)
    "$server" --name t1 --data-dir "$work/tdata" \
        --cert-file "$work/server.pem" --key-file "$work/server.key" \
        --trusted-ca-file "$work/ca.pem" --client-cert-auth \
        --listen-client-urls "https://127.0.0.1:$tport" \
        --advertise-client-urls "https://127.0.0.1:$tport" \
        --listen-peer-urls "http://127.0.0.1:$tpport" \
        --initial-advertise-peer-urls "http://127.0.0.1:$tpport" \
        --initial-cluster "t1=http://127.0.0.1:$tpport" >"$work/tlog" 2>&1 &
    tpid=$!
    ok=""
    for _ in $(seq 1 100); do
        if "$bench" put --endpoints "https://127.0.0.1:$tport" --cacert "$work/ca.pem" \
            --cert "$work/client.pem" --key "$work/client.key" --total 1 --timeout 1 \
            >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ok" ] || fail "put over TLS never succeeded: $(tail -3 "$work/tlog")"
    E="--endpoints=https://127.0.0.1:$tport"
    run put --total 100 --clients 4 --cacert "$work/ca.pem" --cert "$work/client.pem" \
        --key "$work/client.key"
    set +e
    "$bench" put "$E" --cacert "$work/ca.pem" --total 1 --timeout 2 >/dev/null 2>&1
    [ $? = 1 ] || fail "put over TLS without a client certificate should exit 1"
    set -e
fi
echo "bench_smoke: every workload ran against ${etcd:-moord}"
