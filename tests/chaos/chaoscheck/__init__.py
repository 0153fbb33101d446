"""chaoscheck: moor's history checker for chaos runs.

The harness (tests/chaos/run.sh, once moord exists) records every client
operation, watch response and HashKV answer of a run as JSON lines; this
package reads such a history and decides whether it could have come from
one correct etcd v3 cluster.  docs/chaos.md is the manual: the format, and
what every check and anomaly name means.

Use: history.load(path) -> History; check.run(history) -> Report
(report.anomalies: [(kind, message)], report.lost: lost acknowledged
writes, report.unknown: keys the bounded search gave up on);
check.summary(history, report, file) prints the verdict lines.
Single-threaded, no global state; nothing here writes files.

Modules:
  history   parse and validate a history into Op / Watcher / HashKV objects
  model     the per-key register model the search steps through
  linear    Wing & Gong / Lowe just-in-time linearizability search
  revisions the global revision checks (no search) and lost writes
  watch     the watch guarantees
  report    anomaly kinds and the Report the checks fill
  check     runs everything; prints the report (and --json verdicts)
  gen       a small in-process etcd model that writes valid histories
            (the self-tests mutate them)
"""
