/*
 * bench/bench.h: moor-bench's subcommands. Each lives in bench_<name>.c and
 * prints in the shared style: a header line naming the workload and its
 * parameters, then "name  value  unit" rows, and with --json one JSON
 * object per run on stdout.
 */
#ifndef MOOR_BENCH_H
#define MOOR_BENCH_H

int bench_raft_main(int argc, char **argv);
int bench_wal_main(int argc, char **argv);
int bench_kv_main(int argc, char **argv);
int bench_rpc_main(int argc, char **argv);

#endif /* MOOR_BENCH_H */
