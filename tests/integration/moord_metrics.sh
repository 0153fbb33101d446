#!/usr/bin/env bash
# moord_metrics.sh MOORD: /metrics of one real moord, scraped on the client
# port and on --listen-metrics-urls after N puts and one failing Range.
# Checks: every family has HELP and TYPE; each stage of
# moor_server_stage_duration_seconds counted exactly the N puts, with a
# positive sum and cumulative (non-decreasing) buckets ending in +Inf =
# count; the WAL fsync histogram counted one sync per put; etcd_mvcc_put_total = N;
# grpc_server_handled_total counted the failing Range under its code
# (OutOfRange) and the puts under OK; the leader change is counted and
# logged as one JSON line (--log-format json).
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
mport=$(port)
E="etcdctl --endpoints=127.0.0.1:$cport --dial-timeout=2s --command-timeout=5s"
fail() { echo "FAIL: $*"; tail -n 20 "$work/log"; exit 1; }

"$moord" --name m1 --data-dir "$work/data" \
    --listen-client-urls "http://127.0.0.1:$cport" \
    --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-metrics-urls "http://127.0.0.1:$mport" \
    --listen-peer-urls "http://127.0.0.1:$pport" \
    --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "m1=http://127.0.0.1:$pport" --log-format json >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$cport/health" 2>/dev/null | grep -q '"health":"true"' && break
    sleep 0.05
done

N=25
for i in $(seq 1 $N); do
    [ "$($E put "k$i" "v$i")" = OK ] || fail "put k$i"
done
out=$($E get k1 --rev=1000000 2>&1 || true)
echo "$out" | grep -q "future revision" || fail "a future-revision get did not fail: $out"

curl -fsS "http://127.0.0.1:$mport/metrics" >"$work/metrics" || fail "no /metrics on --listen-metrics-urls"
curl -fsS "http://127.0.0.1:$cport/metrics" >"$work/metrics.client" || fail "no /metrics on the client port"
grep -q '^etcd_server_has_leader 1$' "$work/metrics.client" || fail "client port /metrics lacks etcd_server_has_leader"

/usr/bin/python3 - "$work/metrics" "$N" <<'PY' || fail "metrics check"
import re, sys
text = open(sys.argv[1]).read()
n = int(sys.argv[2])
errors = []
helps, types, samples = set(), {}, []
for line in text.splitlines():
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
    elif line.startswith("# TYPE "):
        _, _, name, t = line.split()
        types[name] = t
    elif line and not line.startswith("#"):
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$', line)
        if not m:
            errors.append("bad sample line: " + line)
            continue
        samples.append((m.group(1), m.group(2) or "", float(m.group(3))))

def family(name):
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and name[: -len(suf)] in types and types[name[: -len(suf)]] == "histogram":
            return name[: -len(suf)]
    return name

for name, _, _ in samples:
    f = family(name)
    if f not in types or f not in helps:
        errors.append("no HELP/TYPE for " + f)

def get(name, labels=""):
    vals = [v for (nm, lb, v) in samples if nm == name and all(p in lb for p in labels.split(",") if p)]
    return vals

def hist(name, label):
    buckets = [(lb, v) for (nm, lb, v) in samples if nm == name + "_bucket" and label in lb]
    s = get(name + "_sum", label)
    c = get(name + "_count", label)
    return buckets, (s[0] if s else None), (c[0] if c else None)

for stage in ("propose_to_durable", "durable_to_commit", "commit_to_apply", "apply_to_answer"):
    label = 'stage="%s"' % stage
    buckets, s, c = hist("moor_server_stage_duration_seconds", label)
    if c != n:
        errors.append("%s count %s, want %d" % (stage, c, n))
    if stage in ("propose_to_durable", "apply_to_answer") and not (s and s > 0):
        errors.append("%s sum %s, want > 0" % (stage, s))
    if s is None or s < 0:
        errors.append("%s sum %s" % (stage, s))
    vals = [v for _, v in buckets]
    if len(vals) != 19 or vals != sorted(vals) or not buckets[-1][0].endswith('le="+Inf"}') or vals[-1] != c:
        errors.append("%s buckets not cumulative ending in +Inf=count: %s" % (stage, buckets))

buckets, s, c = hist("etcd_disk_wal_fsync_duration_seconds", "")
if not c or c < 1 or [v for _, v in buckets] != sorted(v for _, v in buckets) or buckets[-1][1] != c:
    errors.append("fsync histogram: count %s buckets %s" % (c, buckets))
# One fdatasync per sequential put: the commit-index change that follows
# each put rides with the next batch instead of taking a sync of its own
# (it took a second one before). A few more come from the start (the
# election's term and vote, the member's first entries).
elif not (n <= c <= n + 12):
    errors.append("fsync count %s for %d sequential puts (want about one each)" % (c, n))
if get("etcd_mvcc_put_total") != [n]:
    errors.append("etcd_mvcc_put_total %s" % get("etcd_mvcc_put_total"))
if get("etcd_server_is_leader") != [1]:
    errors.append("etcd_server_is_leader %s" % get("etcd_server_is_leader"))
rng = 'grpc_method="Range",grpc_service="etcdserverpb.KV"'
if get("grpc_server_handled_total", 'grpc_code="OutOfRange",' + rng) != [1]:
    errors.append("Range OutOfRange handled %s" % get("grpc_server_handled_total", 'grpc_code="OutOfRange",' + rng))
put = 'grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"'
if get("grpc_server_handled_total", 'grpc_code="OK",' + put) != [n]:
    errors.append("Put OK handled %s" % get("grpc_server_handled_total", 'grpc_code="OK",' + put))
if get("grpc_server_started_total", put) != [n]:
    errors.append("Put started %s" % get("grpc_server_started_total", put))
for name in ("process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"):
    v = get(name)
    if len(v) != 1 or v[0] <= 0:
        errors.append("%s %s" % (name, v))
if errors:
    print("\n".join(errors))
    sys.exit(1)
PY

# The leader change is one JSON log line, and counted.
/usr/bin/python3 - "$work/log" <<'PY' || fail "no JSON 'leader changed' line"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
hits = [l for l in lines if l.get("msg") == "leader changed"]
assert len(hits) == 1 and "term=1" in hits[0]["fields"], hits
PY
grep -q '^etcd_server_leader_changes_seen_total 1$' "$work/metrics" || fail "leader changes not counted"

kill -TERM "$pid"
wait "$pid" || fail "moord exited non-zero"
pid=""
echo "1 passed, 0 failed"
