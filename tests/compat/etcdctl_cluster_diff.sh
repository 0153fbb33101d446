#!/usr/bin/env bash
# etcdctl_cluster_diff.sh MOORD [OUTDIR]: Debian's etcdctl 3.4 cluster
# commands (member list / add / add --learner / promote / remove / update,
# endpoint status --cluster, move-leader), run once against a 3-member
# etcd 3.4 cluster and once against a 3-member moord cluster (same flags,
# loopback), outputs normalised for what must differ (ids, ports, sizes,
# raft terms and indexes, the patch version), then diffed. Exit 0 when identical; the outputs
# and the diff stay in OUTDIR.
set -euo pipefail
moord=$(realpath "$1")
out=${2:-$(mktemp -d)}
mkdir -p "$out"
export ETCDCTL_API=3
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_cluster() { # start_cluster BINARY DIR: sets cports, pports
    local bin=$1 dir=$2
    cports=("$(port)" "$(port)" "$(port)")
    pports=("$(port)" "$(port)" "$(port)" "$(port)" "$(port)")
    local ic="m0=http://127.0.0.1:${pports[0]},m1=http://127.0.0.1:${pports[1]},m2=http://127.0.0.1:${pports[2]}"
    pids=()
    for i in 0 1 2; do
        "$bin" --name "m$i" --data-dir "$dir/d$i" \
            --listen-client-urls "http://127.0.0.1:${cports[$i]}" \
            --advertise-client-urls "http://127.0.0.1:${cports[$i]}" \
            --listen-peer-urls "http://127.0.0.1:${pports[$i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${pports[$i]}" \
            --initial-cluster-token compat \
            --initial-cluster "$ic" >"$dir.m$i.log" 2>&1 &
        pids+=($!)
    done
    for i in 0 1 2; do
        local ok=0
        for _ in $(seq 1 100); do
            if curl -fsS "http://127.0.0.1:${cports[$i]}/health" 2>/dev/null | grep -q '"health":"true"'; then
                ok=1
                break
            fi
            sleep 0.1
        done
        [ $ok = 1 ] || { echo "FAIL: $bin member m$i did not become healthy"; tail "$dir.m$i.log"; exit 1; }
    done
}

run_script() { # run_script OUTFILE
    local o=$1
    local ep="127.0.0.1:${cports[0]}"
    local E="etcdctl --endpoints=$ep --dial-timeout=2s --command-timeout=5s"
    local all="127.0.0.1:${cports[0]},127.0.0.1:${cports[1]},127.0.0.1:${cports[2]}"
    local new="http://127.0.0.1:${pports[3]}"
    idof() { $E member list | awk -F', ' -v u="$1" '$4 == u { print $1 }'; }
    {
        echo "## member list"
        $E member list | sort -t, -k3
        $E member list -w table | grep -c '^| '
        echo "## endpoint status --cluster"
        # version, is leader, is learner; sizes, ids, terms and indexes
        # differ by nature.
        $E endpoint status --cluster | awk -F', ' '{ print $3 ", " $5 ", " $6 }' | sort
        etcdctl --endpoints="$all" endpoint status | awk -F', ' '{ print $5 }' | sort | uniq -c
        echo "## member add --learner"
        # etcd refuses changes until every member was connected for 5 s
        # ("unhealthy cluster"): retry until it takes it.
        for _ in $(seq 1 40); do
            $E member add m3 --learner --peer-urls="$new" >"$work/add" 2>&1 && break
            sleep 0.25
        done
        grep -v '^ETCD_INITIAL_CLUSTER=' "$work/add"
        $E member list | sort -t, -k3
        L=$(idof "$new")
        echo "## member promote (not started: not in sync)"
        $E member promote "$L" 2>&1 | grep -v '^{"level"' || true
        echo "## member remove"
        $E member remove "$L"
        $E member list | sort -t, -k3
        $E member remove "$L" 2>&1 | grep -v '^{"level"' || true
        echo "## member add"
        # (a new URL: etcd's id of a member added again in the same second
        # would be the removed one's)
        voter="http://127.0.0.1:${pports[4]}"
        $E member add m3 --peer-urls="$voter" | grep -v '^ETCD_INITIAL_CLUSTER='
        V=$(idof "$voter")
        $E member add m4 --peer-urls="$voter" 2>&1 | grep -v '^{"level"' || true
        $E member promote "$V" 2>&1 | grep -v '^{"level"' || true
        $E member remove "$V"
        echo "## member update"
        U=$(idof "http://127.0.0.1:${pports[2]}")
        $E member update "$U" --peer-urls="http://127.0.0.1:${pports[2]}"
        $E member update 1234 --peer-urls="http://127.0.0.1:1" 2>&1 | grep -v '^{"level"' || true
        echo "## move-leader"
        local lead target
        lead=$(etcdctl --endpoints="$all" endpoint status | awk -F', ' '$5 == "true" { print $1 }')
        target=$(etcdctl --endpoints="$all" endpoint status | awk -F', ' '$5 == "false" { print $2; exit }')
        etcdctl --endpoints="$lead" move-leader "$target"
        # the old leader is a follower now
        etcdctl --endpoints="$lead" move-leader "$target" 2>&1 | grep -v '^{"level"' || true
    } >"$o" 2>&1
    # What must differ: ports, member and cluster ids (etcdctl prints ids
    # as %16x: a shorter one is padded with spaces).
    sed -i -E "s/127\.0\.0\.1:[0-9]+/ENDPOINT/g; s/3\.4\.[0-9]+/3.4.x/g;
        s/(^| +)[0-9a-f]{10,16}\b/\1ID/g; s/ +ID/ ID/g" "$o"
}

for target in etcd moord; do
    bin=/usr/bin/etcd
    [ "$target" = moord ] && bin=$moord
    mkdir -p "$work/$target"
    start_cluster "$bin" "$work/$target"
    run_script "$out/$target.out"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
done

if ! diff -u "$out/etcd.out" "$out/moord.out" >"$out/diff"; then
    echo "FAIL: moord's etcdctl cluster output differs from etcd's:"
    cat "$out/diff"
    exit 1
fi
echo "etcdctl cluster outputs identical ($(wc -l <"$out/etcd.out") lines); outputs in $out"
echo "1 passed, 0 failed"
