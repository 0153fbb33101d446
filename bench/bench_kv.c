/*
 * bench_kv.c: `moor-bench kv`, the MVCC keyspace in process.
 *
 * Each run forks a fresh process (so resident memory starts clean) that
 * measures, on one store:
 *   put        N puts of distinct keys in random order (key-size, value-size)
 *   memory     resident-set growth per key, and moor_alloc_bytes() growth
 *              per key, each minus the key+value payload
 *   get        single-key Ranges of random existing keys
 *   range100   Ranges of 100 consecutive keys (limit 100)
 *   count      count_only over the whole keyspace
 *   fanout     one put to a key watched by W range watchers (all W get the
 *              event, then drained)
 *   update     updates of existing keys with no watcher, then the same
 *              beside W single-key watchers that do not match
 *   dump/load  a dump of the whole state in 64 KiB chunks, then a load of
 *              it into an empty store
 * and the parent prints the median of each figure over the runs. Times are
 * the process's CPU time (rates per CPU-second), so a busy shared machine
 * skews them far less than wall-clock time would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "common/common.h"
#include "kv/kv.h"

struct kv_bench_opts
{
    size_t keys;
    size_t key_size;
    size_t value_size;
    size_t runs;
    size_t watchers;
    size_t gets;
    bool json;
};

enum {
    R_PUT_PER_S,
    R_RSS_OVERHEAD,
    R_ALLOC_OVERHEAD,
    R_GET_PER_S,
    R_RANGE100_PER_S,
    R_COUNT_US,
    R_FANOUT_US,
    R_UPDATE_PER_S,
    R_PUT_WATCHED_PER_S,
    R_DUMP_MS,
    R_DUMP_MB,
    R_LOAD_MS,
    R_N
};

static const struct
{
    const char *name;
    const char *unit;
} k_rows[R_N] = {
    {"put", "ops/s"},
    {"memory_overhead_rss", "B/key"},
    {"memory_overhead_alloc", "B/key"},
    {"get", "ops/s"},
    {"range100", "ops/s"},
    {"count_only_all", "us"},
    {"put_fanout", "us"},
    {"update", "ops/s"},
    {"update_with_watchers", "ops/s"},
    {"dump", "ms"},
    {"dump_size", "MB"},
    {"load", "ms"},
};

/* CPU time of this (single-threaded) process: rates are per CPU-second,
 * which other processes competing for the cores do not inflate. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return 0;
    }
    unsigned long pages = 0;
    unsigned long resident = 0;
    if (fscanf(f, "%lu %lu", &pages, &resident) != 2) {
        resident = 0;
    }
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Key i: a fixed-size key whose order is unrelated to i. */
static void make_key(uint8_t *k, size_t size, uint64_t i)
{
    uint64_t x = i * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)x);
    memset(k, 'k', size);
    memcpy(k, "/registry/", MOOR_MIN(size, 10));
    for (size_t j = 0; j < 16 && 10 + j < size; j++) {
        k[10 + j] = (uint8_t)hex[j];
    }
    /* The index in the tail keeps keys distinct whatever the hash does. */
    for (size_t j = 0; j < 6 && size > 26 + j; j++) {
        k[size - 1 - j] = (uint8_t)('0' + (i >> (4 * j) & 0xf));
    }
}

/* One run's shared state. */
struct kv_run
{
    const struct kv_bench_opts *o;
    struct kv_store *s;
    uint8_t *key;
    uint8_t *val;
    uint64_t index;
    double *r;
};

static int put_key(struct kv_run *x, uint64_t i)
{
    make_key(x->key, x->o->key_size, i);
    struct kv_put_req p = {0};
    p.key = moor_slice_make(x->key, x->o->key_size);
    p.value = moor_slice_make(x->val, x->o->value_size);
    struct kv_put_resp resp;
    return kv_put(x->s, ++x->index, &p, &resp);
}

/* N puts of new keys; resident and allocator growth per key. */
static int phase_put(struct kv_run *x)
{
    const struct kv_bench_opts *o = x->o;
    size_t rss0 = rss_bytes();
    size_t alloc0 = moor_alloc_bytes();
    if (kv_store_new(NULL, &x->s) != MOOR_OK) {
        return 1;
    }
    double t0 = now_s();
    for (size_t i = 0; i < o->keys; i++) {
        if (put_key(x, i) != MOOR_OK) {
            return 1;
        }
    }
    double t1 = now_s();
    x->r[R_PUT_PER_S] = (double)o->keys / (t1 - t0);
    double payload = (double)(o->key_size + o->value_size);
    x->r[R_RSS_OVERHEAD] =
        (double)(rss_bytes() - rss0) / (double)o->keys - payload;
    x->r[R_ALLOC_OVERHEAD] =
        (double)(moor_alloc_bytes() - alloc0) / (double)o->keys - payload;
    return 0;
}

/* Single-key gets, 100-key ranges, count_only over everything. */
static int phase_read(struct kv_run *x)
{
    const struct kv_bench_opts *o = x->o;
    static const uint8_t zero = 0;
    struct moor_prng prng;
    moor_prng_seed(&prng, 42);
    struct kv_range_resp rr;
    kv_range_resp_init(&rr);
    int rc = 1;
    double t0 = now_s();
    for (size_t i = 0; i < o->gets; i++) {
        make_key(x->key, o->key_size, moor_prng_below(&prng, o->keys));
        struct kv_range_req q = {0};
        q.key = moor_slice_make(x->key, o->key_size);
        if (kv_range(x->s, &q, &rr) != MOOR_OK || rr.n != 1) {
            goto out;
        }
    }
    x->r[R_GET_PER_S] = (double)o->gets / (now_s() - t0);
    size_t nr = o->gets / 10;
    t0 = now_s();
    for (size_t i = 0; i < nr; i++) {
        make_key(x->key, o->key_size, moor_prng_below(&prng, o->keys));
        struct kv_range_req q = {0};
        q.key = moor_slice_make(x->key, o->key_size);
        q.range_end = moor_slice_make(&zero, 1);
        q.limit = 100;
        if (kv_range(x->s, &q, &rr) != MOOR_OK) {
            goto out;
        }
    }
    x->r[R_RANGE100_PER_S] = (double)nr / (now_s() - t0);
    struct kv_range_req q = {0};
    q.key = moor_slice_make(&zero, 1);
    q.range_end = moor_slice_make(&zero, 1);
    q.count_only = true;
    t0 = now_s();
    for (int i = 0; i < 1000; i++) {
        if (kv_range(x->s, &q, &rr) != MOOR_OK ||
            rr.count != (int64_t)o->keys) {
            goto out;
        }
    }
    x->r[R_COUNT_US] = (now_s() - t0) / 1000 * 1e6;
    rc = 0;
out:
    kv_range_resp_close(&rr);
    return rc;
}

/* Takes every ready watcher's events; returns how many. */
static size_t drain_all(struct kv_store *s)
{
    size_t delivered = 0;
    struct kv_watcher *w;
    while ((w = kv_watch_next_ready(s)) != NULL) {
        struct kv_watch_batch b;
        if (kv_watch_take(s, w, 100, &b) == MOOR_OK) {
            delivered += b.n;
            kv_watch_batch_release(s, &b);
        }
    }
    return delivered;
}

/* One put seen by W range watchers; then puts beside W single-key
 * watchers that never match. */
static int phase_fanout(struct kv_run *x)
{
    const struct kv_bench_opts *o = x->o;
    struct kv_watcher *ws = calloc(o->watchers, sizeof(*ws));
    if (ws == NULL) {
        return 1;
    }
    for (size_t i = 0; i < o->watchers; i++) {
        struct kv_watch_req wq = {0};
        wq.key = moor_slice_str("/registry/");
        wq.range_end = moor_slice_str("/registry0");
        if (kv_watch_open(x->s, &ws[i], &wq) != MOOR_OK) {
            return 1;
        }
    }
    /* A first put so the index build (once per batch of opens) is not
     * charged to the measured one. */
    if (put_key(x, 0) != MOOR_OK) {
        return 1;
    }
    (void)drain_all(x->s);
    double t0 = now_s();
    if (put_key(x, 0) != MOOR_OK) {
        return 1;
    }
    size_t delivered = drain_all(x->s);
    x->r[R_FANOUT_US] = (now_s() - t0) * 1e6;
    if (delivered != o->watchers) {
        fprintf(stderr, "fan-out delivered %zu\n", delivered);
        return 1;
    }
    /* Updates of existing keys, first with no watcher at all... */
    size_t np = MOOR_MIN(o->keys, (size_t)200000);
    for (size_t i = 0; i < o->watchers; i++) {
        kv_watch_close(x->s, &ws[i]);
    }
    t0 = now_s();
    for (size_t i = 0; i < np; i++) {
        if (put_key(x, i) != MOOR_OK) {
            return 1;
        }
    }
    x->r[R_UPDATE_PER_S] = (double)np / (now_s() - t0);
    /* ... then beside W single-key watchers that never match. */
    for (size_t i = 0; i < o->watchers; i++) {
        char wk[32];
        snprintf(wk, sizeof(wk), "/watched/%zu", i);
        struct kv_watch_req wq = {0};
        wq.key = moor_slice_str(wk);
        if (kv_watch_open(x->s, &ws[i], &wq) != MOOR_OK) {
            return 1;
        }
    }
    t0 = now_s();
    for (size_t i = 0; i < np; i++) {
        if (put_key(x, i) != MOOR_OK) {
            return 1;
        }
    }
    x->r[R_PUT_WATCHED_PER_S] = (double)np / (now_s() - t0);
    for (size_t i = 0; i < o->watchers; i++) {
        kv_watch_close(x->s, &ws[i]);
    }
    free(ws);
    return 0;
}

/* Compacts the history so far, dumps in 64 KiB chunks, loads the dump
 * into an empty store. */
static int phase_dump_load(struct kv_run *x)
{
    struct kv_store *s = x->s;
    if (kv_compact(s, ++x->index, kv_store_revision(s)) != MOOR_OK) {
        return 1;
    }
    while (kv_compact_step(s, 10000)) {
    }
    struct moor_buf out;
    moor_buf_init(&out);
    struct kv_dump d;
    bool done = false;
    double t0 = now_s();
    if (kv_dump_open(s, &d) != MOOR_OK) {
        return 1;
    }
    while (!done) {
        if (kv_dump_next(&d, &out, 64 * 1024, &done) != MOOR_OK) {
            return 1;
        }
    }
    kv_dump_close(&d);
    x->r[R_DUMP_MS] = (now_s() - t0) * 1e3;
    x->r[R_DUMP_MB] = (double)out.len / 1e6;
    struct kv_store *t = NULL;
    struct kv_load l;
    if (kv_store_new(NULL, &t) != MOOR_OK || kv_load_open(t, &l) != MOOR_OK) {
        return 1;
    }
    t0 = now_s();
    for (size_t off = 0; off < out.len; off += 64 * 1024) {
        size_t n = MOOR_MIN((size_t)64 * 1024, out.len - off);
        if (kv_load_feed(&l, out.ptr + off, n) != MOOR_OK) {
            fprintf(stderr, "load: %s\n", l.errmsg);
            return 1;
        }
    }
    if (kv_load_finish(&l) != MOOR_OK ||
        kv_store_live_count(t) != (uint64_t)x->o->keys) {
        return 1;
    }
    x->r[R_LOAD_MS] = (now_s() - t0) * 1e3;
    kv_load_close(&l);
    kv_store_free(t);
    moor_buf_close(&out);
    return 0;
}

static int run_once(const struct kv_bench_opts *o, double *r)
{
    struct kv_run x = {o, NULL, malloc(o->key_size), malloc(o->value_size + 1),
                       0, r};
    if (x.key == NULL || x.val == NULL) {
        return 1;
    }
    memset(x.val, 'v', o->value_size);
    int rc = phase_put(&x);
    if (rc == 0) {
        rc = phase_read(&x);
    }
    if (rc == 0) {
        rc = phase_fanout(&x);
    }
    if (rc == 0) {
        rc = phase_dump_load(&x);
    }
    kv_store_free(x.s);
    free(x.key);
    free(x.val);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: moor-bench kv [--keys N] [--key-size B] [--value-size B]"
            " [--watchers W] [--gets N] [--runs R] [--json]\n"
            "defaults: 1000000 keys, 32 B keys, 256 B values, 10000 "
            "watchers, 1000000 gets, 3 runs (medians reported)\n");
}

int bench_kv_main(int argc, char **argv)
{
    struct kv_bench_opts o = {1000000, 32, 256, 3, 10000, 1000000, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t *dst = NULL;
        if (strcmp(a, "--json") == 0) {
            o.json = true;
            continue;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--keys") == 0) {
            dst = &o.keys;
        } else if (strcmp(a, "--key-size") == 0) {
            dst = &o.key_size;
        } else if (strcmp(a, "--value-size") == 0) {
            dst = &o.value_size;
        } else if (strcmp(a, "--runs") == 0) {
            dst = &o.runs;
        } else if (strcmp(a, "--watchers") == 0) {
            dst = &o.watchers;
        } else if (strcmp(a, "--gets") == 0) {
            dst = &o.gets;
        }
        if (dst == NULL || i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        *dst = (size_t)strtoull(argv[++i], NULL, 10);
    }
    if (o.keys == 0 || o.key_size < 27 || o.runs == 0 || o.runs > 99) {
        fprintf(stderr,
                "moor-bench kv: need keys > 0, key-size >= 27, "
                "1..99 runs\n");
        return 2;
    }
    double all[R_N][99];
    for (size_t run = 0; run < o.runs; run++) {
        int fd[2];
        if (pipe(fd) != 0) {
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            return 1;
        }
        if (pid == 0) {
            close(fd[0]);
            double r[R_N] = {0};
            int rc = run_once(&o, r);
            if (rc == 0 && write(fd[1], r, sizeof(r)) != (ssize_t)sizeof(r)) {
                rc = 1;
            }
            _exit(rc);
        }
        close(fd[1]);
        double r[R_N];
        ssize_t got = read(fd[0], r, sizeof(r));
        close(fd[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        if (got != (ssize_t)sizeof(r) || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "moor-bench kv: run %zu failed\n", run + 1);
            return 1;
        }
        for (int k = 0; k < R_N; k++) {
            all[k][run] = r[k];
        }
    }
    double med[R_N];
    for (int k = 0; k < R_N; k++) {
        qsort(all[k], o.runs, sizeof(double), cmp_double);
        med[k] = all[k][o.runs / 2];
    }
    if (o.json) {
        printf(
            "{\"workload\":\"kv\",\"keys\":%zu,\"key_size\":%zu,"
            "\"value_size\":%zu,\"watchers\":%zu,\"runs\":%zu",
            o.keys, o.key_size, o.value_size, o.watchers, o.runs);
        for (int k = 0; k < R_N; k++) {
            printf(",\"%s\":%.1f", k_rows[k].name, med[k]);
        }
        printf("}\n");
        return 0;
    }
    printf(
        "kv: %zu keys, %zu B keys, %zu B values, %zu watchers, median of "
        "%zu runs, rates per CPU-second\n",
        o.keys, o.key_size, o.value_size, o.watchers, o.runs);
    for (int k = 0; k < R_N; k++) {
        printf("%-24s %14.1f %s\n", k_rows[k].name, med[k], k_rows[k].unit);
    }
    return 0;
}
