/* main.c: moor-bench's front door, dispatching to subcommands. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "rpc/rpc.h"

struct subcommand
{
    const char *name;
    int (*main_fn)(int argc, char **argv);
    const char *help;
};

/* Subcommands register here as their modules land. */
static const struct subcommand subcommands[] = {
    {"raft", bench_raft_main, "consensus core: entries/s, commit ticks"},
    {"wal", bench_wal_main,
     "WAL appends/s and MB/s vs a raw write+fdatasync loop"},
    {"kv", bench_kv_main, "MVCC keyspace: puts, ranges, memory, fan-out, dump"},
    {"rpc", bench_rpc_main,
     "gRPC loopback: unary calls/s (1 and 16 conns), streamed msgs/s"},
    /* Client-API workloads: etcd v3 gRPC against moord or etcd. */
    {"put", bench_put_main, "Put: throughput and latency"},
    {"range", bench_range_main,
     "Range over a key, its prefix or [key, end): l or s consistency"},
    {"txn-put", bench_txn_put_main, "Txns of --txn-ops puts"},
    {"txn-mixed", bench_txn_mixed_main,
     "Txns that read or write, --rw-ratio reads per write"},
    {"watch", bench_watch_main,
     "events/s delivered to --streams x --watchers watchers under puts"},
    {"watch-latency", bench_watch_latency_main,
     "delay from a put to its event at each watcher"},
    {"lease-keepalive", bench_lease_keepalive_main,
     "LeaseKeepAlive round trips, one lease per client"},
    {"k8s", bench_k8s_main,
     "a Kubernetes API server's pattern: CAS creates/updates/deletes, "
     "paginated lists, prefix watches, lease-bound events"},
    {"consensus", bench_consensus_main,
     "put's load plus per-stage write latency from the server's /metrics"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: moor-bench <subcommand> [flags]\n\nsubcommands:\n");
    for (const struct subcommand *s = subcommands; s->name != NULL; s++) {
        fprintf(out, "  %-16s %s\n", s->name, s->help);
    }
    fprintf(out, "\nmoor-bench <subcommand> --help shows its flags.\n");
}

int main(int argc, char **argv)
{
    rpc_global_init(); /* first: libuv's and OpenSSL's heaps are counted */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const struct subcommand *s = subcommands; s->name != NULL; s++) {
        if (strcmp(argv[1], s->name) == 0) {
            return s->main_fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "moor-bench: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
