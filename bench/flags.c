/* flags.c: the client workloads' flags, one table for all of them (etcd
 * benchmark's names), parsing "--name value" and "--name=value". */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "bench_int.h"

enum flag_type { F_U64, F_U32, F_DOUBLE, F_STR, F_BOOL };

struct flag
{
    const char *name;
    enum flag_type type;
    size_t offset;
    unsigned workloads;
    const char *help;
};

#define OFF(f) offsetof(struct bench_opts, f)
#define BW_KEYS (BW_PUT | BW_TXN_PUT | BW_TXN_MIXED | BW_CONSENSUS)

static const struct flag flags[] = {
    {"endpoints", F_STR, OFF(endpoints_arg), BW_ALL,
     "comma-separated gRPC endpoints (host:port, http:// or https://)"},
    {"conns", F_U32, OFF(conns), BW_ALL, "gRPC connections"},
    {"clients", F_U32, OFF(clients), BW_ALL,
     "requests in flight, spread over the connections"},
    {"total", F_U64, OFF(total), BW_ALL,
     "requests to make (0: no limit, use --duration)"},
    {"duration", F_DOUBLE, OFF(duration_s), BW_ALL,
     "seconds to run (0: until --total)"},
    {"rate", F_DOUBLE, OFF(rate), BW_ALL,
     "requests per second over all clients (0: unlimited)"},
    {"timeout", F_DOUBLE, OFF(timeout_s), BW_ALL,
     "seconds one request may take (its gRPC deadline)"},
    {"cacert", F_STR, OFF(cacert), BW_ALL, "CA bundle to verify servers"},
    {"cert", F_STR, OFF(cert), BW_ALL, "client certificate (TLS)"},
    {"key", F_STR, OFF(key), BW_ALL, "client certificate's key (TLS)"},
    {"insecure-skip-tls-verify", F_BOOL, OFF(insecure_skip_verify), BW_ALL,
     "accept any server certificate"},
    {"json", F_BOOL, OFF(json), BW_ALL, "print one JSON object"},
    {"help", F_BOOL, OFF(help), BW_ALL, "show this help"},
    {"key-size", F_U64, OFF(key_size), BW_KEYS | BW_WATCH | BW_WATCH_LATENCY,
     "key bytes"},
    {"val-size", F_U64, OFF(val_size),
     BW_KEYS | BW_WATCH | BW_WATCH_LATENCY | BW_K8S, "value bytes"},
    {"key-space-size", F_U64, OFF(key_space_size), BW_KEYS | BW_WATCH,
     "distinct keys"},
    {"sequential-keys", F_BOOL, OFF(sequential_keys), BW_KEYS | BW_WATCH,
     "keys in order 0, 1, ... instead of at random"},
    {"txn-ops", F_U64, OFF(txn_ops), BW_TXN_PUT, "puts per transaction"},
    {"rw-ratio", F_DOUBLE, OFF(rw_ratio), BW_TXN_MIXED,
     "reads per write (reads are Range ops in a Txn)"},
    {"consistency", F_STR, OFF(consistency), BW_RANGE,
     "l (linearizable) or s (serializable)"},
    {"limit", F_U64, OFF(limit), BW_RANGE | BW_TXN_MIXED,
     "most keys a range returns (0: no limit)"},
    {"prefix", F_BOOL, OFF(prefix), BW_RANGE,
     "range over every key with the given key as prefix"},
    {"count-only", F_BOOL, OFF(count_only), BW_RANGE,
     "ask only for the count of keys"},
    {"streams", F_U32, OFF(streams), BW_WATCH | BW_WATCH_LATENCY,
     "watch streams (spread over the connections)"},
    {"watchers", F_U32, OFF(watchers), BW_WATCH | BW_WATCH_LATENCY | BW_K8S,
     "watchers per stream (k8s: watch streams)"},
    {"prev-kv", F_BOOL, OFF(prev_kv), BW_WATCH | BW_WATCH_LATENCY,
     "watchers ask for the previous key-value"},
    {"ttl", F_U64, OFF(lease_ttl), BW_LEASE | BW_K8S, "lease TTL in seconds"},
    {"objects", F_U64, OFF(objects), BW_K8S, "objects (keys) in the store"},
    {"namespaces", F_U32, OFF(namespaces), BW_K8S,
     "namespaces the objects are spread over"},
    {"page-size", F_U64, OFF(page_size), BW_K8S,
     "objects per page of a paginated list"},
    {"list-ratio", F_DOUBLE, OFF(list_ratio), BW_K8S,
     "share of operations that are paginated lists"},
    {"metrics-url", F_STR, OFF(metrics_url), BW_CONSENSUS,
     "the server's /metrics (default: http://<first endpoint>/metrics)"},
};

void bench__opts_defaults(struct bench_opts *o, unsigned workload)
{
    memset(o, 0, sizeof(*o));
    o->conns = 1;
    o->clients = 1;
    o->total = 10000;
    o->timeout_s = 10;
    o->key_size = 8;
    o->val_size = 8;
    o->key_space_size = 1;
    o->txn_ops = 1;
    o->rw_ratio = 1;
    o->streams = 10;
    o->watchers = 100;
    o->lease_ttl = 60;
    o->objects = 1000;
    o->namespaces = 10;
    o->page_size = 500;
    o->list_ratio = 0.05;
    if (workload == BW_WATCH || workload == BW_WATCH_LATENCY) {
        o->key_size = 32;
        o->total = 1000;
        o->key_space_size = 1;
    }
    if (workload == BW_WATCH_LATENCY) {
        o->rate = 100;
    }
    if (workload == BW_K8S) {
        o->val_size = 1024;
        o->watchers = 1;
        o->lease_ttl = 10;
    }
    if (workload == BW_TXN_MIXED) {
        o->limit = 1000;
        o->key_space_size = 1000;
    }
}

static int split_endpoints(struct bench_opts *o, const char *arg)
{
    moor_free(o->endpoints_arg);
    o->endpoints_arg = moor_strdup(arg);
    o->endpoints_len = 0;
    if (o->endpoints_arg == NULL) {
        return MOOR_ENOMEM;
    }
    char *save = NULL;
    for (char *t = strtok_r(o->endpoints_arg, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (o->endpoints_len == BENCH_ENDPOINTS_MAX) {
            return MOOR_ETOOBIG;
        }
        o->endpoints[o->endpoints_len++] = t;
    }
    return o->endpoints_len > 0 ? MOOR_OK : MOOR_EINVAL;
}

static int set_flag(struct bench_opts *o, const struct flag *f, const char *v)
{
    char *base = (char *)o + f->offset;
    char *e = NULL;
    errno = 0;
    switch (f->type) {
    case F_U64:
    case F_U32: {
        if (v[0] < '0' || v[0] > '9') {
            return MOOR_EINVAL;
        }
        unsigned long long n = strtoull(v, &e, 10);
        if (*e != 0 || errno != 0 || (f->type == F_U32 && n > UINT32_MAX)) {
            return MOOR_EINVAL;
        }
        if (f->type == F_U32) {
            uint32_t n32 = (uint32_t)n;
            memcpy(base, &n32, sizeof(n32));
        } else {
            uint64_t n64 = n;
            memcpy(base, &n64, sizeof(n64));
        }
        return MOOR_OK;
    }
    case F_DOUBLE: {
        double d = strtod(v, &e);
        /* "10s" is accepted for seconds, as Go's durations would be. */
        if (e == v || (*e != 0 && strcmp(e, "s") != 0) || errno != 0 ||
            !isfinite(d) || d < 0) {
            return MOOR_EINVAL;
        }
        memcpy(base, &d, sizeof(d));
        return MOOR_OK;
    }
    case F_BOOL: {
        bool b;
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
            b = true;
        } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
            b = false;
        } else {
            return MOOR_EINVAL;
        }
        memcpy(base, &b, sizeof(b));
        return MOOR_OK;
    }
    case F_STR: {
        if (f->offset == OFF(endpoints_arg)) {
            return split_endpoints(o, v);
        }
        char *s = moor_strdup(v);
        if (s == NULL) {
            return MOOR_ENOMEM;
        }
        char *old;
        memcpy(&old, base, sizeof(old));
        moor_free(old);
        memcpy(base, &s, sizeof(s));
        return MOOR_OK;
    }
    }
    return MOOR_EINVAL;
}

int bench__opts_parse(struct bench_opts *o, unsigned workload, int argc,
                      char **argv)
{
    const char *cmd = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (o->args_len == MOOR_ARRAY_LEN(o->args)) {
                fprintf(stderr, "moor-bench %s: unexpected argument '%s'\n",
                        cmd, a);
                return MOOR_EINVAL;
            }
            o->args[o->args_len++] = argv[i];
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = NULL;
        for (size_t k = 0; k < MOOR_ARRAY_LEN(flags); k++) {
            if ((flags[k].workloads & workload) != 0 &&
                strlen(flags[k].name) == nlen &&
                memcmp(flags[k].name, name, nlen) == 0) {
                f = &flags[k];
            }
        }
        if (f == NULL) {
            fprintf(stderr, "moor-bench %s: unknown flag '%.*s' (see --help)\n",
                    cmd, (int)(nlen + 2), a);
            return MOOR_EINVAL;
        }
        const char *v = eq != NULL ? eq + 1 : NULL;
        if (v == NULL && f->type == F_BOOL) {
            v = "true";
        }
        if (v == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "moor-bench %s: --%s needs a value\n", cmd,
                        f->name);
                return MOOR_EINVAL;
            }
            v = argv[++i];
        }
        int rv = set_flag(o, f, v);
        if (rv != MOOR_OK) {
            fprintf(stderr, "moor-bench %s: bad value '%s' for --%s\n", cmd, v,
                    f->name);
            return MOOR_EINVAL;
        }
    }
    if (o->endpoints_len == 0 &&
        split_endpoints(o, "127.0.0.1:2379") != MOOR_OK) {
        return MOOR_ENOMEM;
    }
    if (o->help) {
        return MOOR_OK;
    }
    const char *why = NULL;
    if (o->conns == 0 || o->conns > BENCH_CONNS_MAX) {
        why = "--conns must be 1 to 1000";
    } else if (o->clients == 0 || o->clients > BENCH_CLIENTS_MAX) {
        why = "--clients must be 1 to 100000";
    } else if (o->total == 0 && o->duration_s <= 0) {
        why = "give --total or --duration";
    } else if (o->timeout_s <= 0) {
        why = "--timeout must be positive";
    } else if (o->val_size > (64u << 20)) {
        why = "--val-size is at most 64 MiB";
    } else if (o->consistency != NULL && strcmp(o->consistency, "l") != 0 &&
               strcmp(o->consistency, "s") != 0) {
        why = "--consistency must be l or s";
    } else if ((o->cert == NULL) != (o->key == NULL)) {
        why = "--cert and --key go together";
    }
    if (why != NULL) {
        fprintf(stderr, "moor-bench %s: %s\n", cmd, why);
        return MOOR_EINVAL;
    }
    return MOOR_OK;
}

static void print_default(FILE *out, const struct flag *f,
                          const struct bench_opts *o)
{
    const char *base = (const char *)o + f->offset;
    switch (f->type) {
    case F_U64: {
        uint64_t v;
        memcpy(&v, base, sizeof(v));
        fprintf(out, " (default %llu)", (unsigned long long)v);
        return;
    }
    case F_U32: {
        uint32_t v;
        memcpy(&v, base, sizeof(v));
        fprintf(out, " (default %u)", v);
        return;
    }
    case F_DOUBLE: {
        double v;
        memcpy(&v, base, sizeof(v));
        fprintf(out, " (default %g)", v);
        return;
    }
    case F_STR: {
        if (f->offset == OFF(endpoints_arg)) {
            fprintf(out, " (default 127.0.0.1:2379)");
            return;
        }
        const char *v;
        memcpy(&v, base, sizeof(v));
        if (v != NULL) {
            fprintf(out, " (default %s)", v);
        }
        return;
    }
    case F_BOOL:
        return;
    }
}

void bench__usage(FILE *out, const char *name, unsigned workload,
                  const char *synopsis, const char *description,
                  const struct bench_opts *o)
{
    fprintf(out, "usage: moor-bench %s %s[flags]\n\n%s\n\nflags:\n", name,
            synopsis != NULL ? synopsis : "", description);
    for (size_t k = 0; k < MOOR_ARRAY_LEN(flags); k++) {
        const struct flag *f = &flags[k];
        if ((f->workloads & workload) == 0) {
            continue;
        }
        fprintf(out, "  --%-26s %s", f->name, f->help);
        print_default(out, f, o);
        fputc('\n', out);
    }
}

void bench__opts_close(struct bench_opts *o)
{
    moor_free(o->endpoints_arg);
    moor_free(o->cacert);
    moor_free(o->cert);
    moor_free(o->key);
    moor_free(o->consistency);
    moor_free(o->metrics_url);
    o->endpoints_arg = o->cacert = o->cert = o->key = NULL;
    o->consistency = o->metrics_url = NULL;
}
