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
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: moor-bench <subcommand> [flags]\n\nsubcommands:\n");
    for (const struct subcommand *s = subcommands; s->name != NULL; s++) {
        fprintf(out, "  %-10s %s\n", s->name, s->help);
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
