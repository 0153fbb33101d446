"""chaoscheck: moor's history checker for chaos runs.

The harness (tests/chaos/run.sh, once moord exists) records every client
operation, watch response and HashKV answer of a run as JSON lines; this
package reads such a history and decides whether it could have come from
one correct etcd v3 cluster.  docs/chaos.md is the manual: the format, and
what every check and anomaly name means.

Modules:
  history   parse and validate a history into Op / Watcher / HashKV objects
  model     the per-key register model the search steps through
  linear    Wing & Gong / Lowe just-in-time linearizability search
  revisions the global revision checks (no search) and lost writes
  watch     the watch guarantees
  check     runs everything and builds the report
  gen       a small in-process etcd model that writes valid histories
            (the self-tests mutate them)
"""
