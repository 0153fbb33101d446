"""chaosrun: the chaos harness (issue 11).

Entry point: tests/chaos/run.sh (chaosrun.main).  Modules:
  pb        the few etcd protobuf messages, encoded by hand
  client    gRPC calls to one member; one history op per request
  proxy     the fault proxy between members (stall, reset, delay, loss, dup)
  cluster   moord members on 127.0.0.1 behind the proxy, or each in its
            own network namespace (iptables partitions); kill, pause
  workload  register, set and bulk clients; the history writer
  lease     the lease workload and its checks
  disk      the torn WAL tail; the small tmpfs disk-full fills
  nemesis   the fault schedule
  main      one history per nemesis, the checker, the summary

Python 3 from Debian plus python3-grpcio; run with /usr/bin/python3.
"""

import os

# grpc's fork support re-initialises channels around fork(); the harness
# never forks with channels open (cluster.py), and wants none of it.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
