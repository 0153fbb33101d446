#!/usr/bin/env bash
# run.sh --duration SECONDS --nemesis LIST --seed N [...]: moord clusters
# under faults, every history checked (tests/chaos/chaosrun, docs/chaos.md).
# The last line is exactly "histories: H, anomalies: A, lost writes: W";
# exit 1 when A or W is non-zero, 2 on a harness failure.  --help lists
# every option.  Everything it starts (members, proxy) dies with it; the
# work dir is removed unless --keep or a run found something.
set -u
here=$(cd "$(dirname "$0")" && pwd)
child=0
on_signal() {
    [ "$child" != 0 ] && kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
    exit 130
}
trap on_signal INT TERM HUP
cd "$here" || exit 2
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m chaosrun.main "$@" &
child=$!
wait "$child"
rc=$?
# wait returns >128 when a trapped signal interrupted it: the trap ran.
exit "$rc"
