/*
 * bench/bench.h: moor-bench's shared pieces and its subcommands.
 *
 * Every subcommand prints in one style: a header line naming the workload
 * and its parameters, then aligned "name  value  unit" rows (or, for
 * latency, etcd benchmark's summary: totals, an ASCII histogram and the
 * percentile list); with --json, one JSON object per run on stdout.
 *
 * The latency histogram is log-linear (HdrHistogram's layout): values below
 * 2^BENCH_HIST_SUB_BITS are counted exactly; above, each power of two is
 * split into 2^BENCH_HIST_SUB_BITS equal buckets, so a reported percentile
 * is within 1/2^BENCH_HIST_SUB_BITS (0.8 %) of the true value. Recording is
 * O(1) and allocation-free; one histogram per thread, merged at the end.
 *
 * Threads: a struct bench_hist belongs to one thread at a time.
 */
#ifndef MOOR_BENCH_H
#define MOOR_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"

#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_BUCKETS ((64u - BENCH_HIST_SUB_BITS + 1u) * BENCH_HIST_SUB)

struct bench_hist
{
    uint64_t count;
    uint64_t min; /* UINT64_MAX while empty */
    uint64_t max;
    double sum;
    double sum_sq;
    uint64_t buckets[BENCH_HIST_BUCKETS];
};

/* Empties h (caller memory; about 60 KiB, so not on a small stack). */
void bench_hist_init(struct bench_hist *h);
/* Counts one value (nanoseconds, or any unit: the histogram is unitless). */
void bench_hist_record(struct bench_hist *h, uint64_t value);
/* Adds every count of src to dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The value at percentile p (0 <= p <= 100): the smallest recorded value
 * with at least p % of the values at or below it, within the bucket
 * precision; exact for p = 0 (min) and p = 100 (max). 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);
double bench_hist_mean(const struct bench_hist *h);
double bench_hist_stddev(const struct bench_hist *h);

/* Bucket index of a value, and the smallest and largest value a bucket
 * holds (exposed for tests). */
uint32_t bench_hist_index(uint64_t value);
uint64_t bench_hist_bucket_low(uint32_t index);
uint64_t bench_hist_bucket_high(uint32_t index);

/* Prints etcd benchmark's summary for latencies in nanoseconds: Total,
 * Slowest, Fastest, Average, Stddev, Requests/sec; a 10-row ASCII
 * histogram between fastest and slowest; the latency distribution at 10,
 * 25, 50, 75, 90, 95, 99 and 99.9 %. elapsed_s is the run's wall time. */
void bench_hist_print(FILE *out, const struct bench_hist *h, double elapsed_s);

/* Appends a JSON object {"count":..,"rps":..,"min_ms":..,"p50_ms":..,
 * "p90_ms":..,"p99_ms":..,"p999_ms":..,"max_ms":..,"mean_ms":..} for
 * latencies in nanoseconds. */
int bench_hist_json(struct moor_buf *out, const struct bench_hist *h,
                    double elapsed_s);

/* ------------------------------------------------------------------------
 * Client-API workloads (docs/moor-bench.md is their manual)
 *
 * put, range, txn-put, txn-mixed, watch, watch-latency, lease-keepalive,
 * k8s and consensus speak etcd v3 gRPC through rpc/'s client, so the same
 * binary measures moord and real etcd. The whole client side runs on one
 * libuv loop: --conns connections (one rpc_client each, spread over
 * --endpoints), --clients requests in flight spread over them round robin,
 * never a thread per client. A run stops after --total requests or
 * --duration seconds, whichever comes first; --rate caps requests per
 * second over all clients (token bucket below).
 *
 * Common flags (etcd benchmark's names): --endpoints a,b,c (default
 * 127.0.0.1:2379), --conns (1), --clients (1), --total (10000),
 * --duration S (0: none), --rate R (0: unlimited), --timeout S (10: the
 * deadline of each request), --cacert, --cert, --key (TLS; https://
 * endpoints use TLS, scheme-less ones use it when a TLS flag is given),
 * --insecure-skip-tls-verify, --json.
 *
 * Output: a header line, etcd benchmark's summary (bench_hist_print: totals,
 * an ASCII histogram, the latency distribution), per-kind lines where a
 * workload mixes requests, workload figures (events/s ...), and errors by
 * gRPC status code. With --json, one object on stdout instead:
 *   {"workload":"put","endpoints":"...","conns":1,"clients":1,
 *    "params":{...workload flags...},
 *    "requests":N,            successful requests
 *    "elapsed_s":S, "throughput":N/S,
 *    "latency_ms":{"min","mean","p50","p90","p99","p999","max"},
 *    "kinds":{"<kind>":{"requests","throughput","latency_ms":{...}}},
 *    "errors":{"<STATUS_NAME>":n, "bad_response":n, ...},
 *    "errors_total":n,
 *    ...workload figures (watch: "events","events_per_s"; consensus:
 *    "stages" ...)}
 * Exit status: 0 when the run completed (errors are reported, not fatal),
 * 1 when it could not run (no endpoint answered, setup failed), 2 for bad
 * usage.
 * ---------------------------------------------------------------------- */

/* Keys of the workloads: exactly key_size bytes, the prefix followed by the
 * key's index in decimal, zero-padded to fill the rest ("00000042").
 * Sequential: indexes 0, 1, ..., space-1, 0, ...; random: uniform below
 * space, from a PRNG seeded with seed (runs repeat exactly). */
struct bench_keygen
{
    char prefix[64];
    size_t prefix_len;
    size_t key_size;
    uint64_t space;
    bool sequential;
    uint64_t next;
    struct moor_prng prng;
};

/* Initialises g. MOOR_EINVAL when space is 0, the prefix is longer than 63
 * bytes, or space-1 in decimal does not fit in key_size minus the prefix
 * (key_size is at most BENCH_KEY_MAX). Borrows prefix (copied). */
#define BENCH_KEY_MAX 4096
int bench_keygen_init(struct bench_keygen *g, const char *prefix,
                      size_t key_size, uint64_t space, bool sequential,
                      uint64_t seed);
/* The index of the next key. */
uint64_t bench_keygen_next(struct bench_keygen *g);
/* Writes the key of index (index < space) into out: exactly g->key_size
 * bytes, no NUL. */
void bench_keygen_format(const struct bench_keygen *g, uint64_t index,
                         uint8_t *out);

/* The request rate limiter: a token bucket of rate tokens per second
 * holding at most burst tokens (burst = max(1, rate / 100): 10 ms of
 * tokens, so a 1 ms loop timer can keep up with high rates), full at
 * start. rate 0 means unlimited. Pure: time comes in as now_ns. */
struct bench_rate
{
    double rate;
    double burst;
    double tokens;
    uint64_t last_ns;
};
void bench_rate_init(struct bench_rate *r, double rate, uint64_t now_ns);
/* Takes one token and returns 0, or returns the nanoseconds until one is
 * available (at least 1) and takes nothing. */
uint64_t bench_rate_take(struct bench_rate *r, uint64_t now_ns);

/* etcd's prefix range end (clientv3.GetPrefixRangeEnd): the prefix with
 * its last byte below 0xff incremented and what follows dropped; "\0"
 * (every key) when all bytes are 0xff or the prefix is empty. Writes into
 * out (prefix_len bytes at most, or 1) and returns the length. */
size_t bench_prefix_end(const uint8_t *prefix, size_t prefix_len, uint8_t *out);

/* The k8s workload's key layout, as a Kubernetes API server writes it:
 *   <root>/<resource>/ns-<namespace, 4 digits>/obj-<index, 8 digits>
 * Object index i lives in namespace i % namespaces; resource is "events"
 * (lease-bound) for i % 4 == 3, "pods" otherwise. Writes at most
 * BENCH_K8S_KEY_MAX bytes (NUL-terminated) and returns the length, or 0
 * when root is too long. */
#define BENCH_K8S_KEY_MAX 256
size_t bench_k8s_key(char *out, const char *root, uint64_t index,
                     uint32_t namespaces);
bool bench_k8s_is_event(uint64_t index);

/* One paginated list, as a Kubernetes API server's: the first page reads
 * [key, end) with a limit at the current revision; each following page
 * starts just after the last key returned (last key + "\0") and reads at
 * the first page's revision, so the pages form one consistent snapshot. */
struct bench_k8s_list
{
    uint8_t key[BENCH_K8S_KEY_MAX + 1];
    size_t key_len;
    uint8_t end[BENCH_K8S_KEY_MAX];
    size_t end_len;
    int64_t revision; /* 0 until the first page came */
    uint64_t pages;
    uint64_t items;
    bool done;
};
/* Starts a list of every key under prefix (MOOR_EINVAL when longer than
 * BENCH_K8S_KEY_MAX). Borrows prefix. */
int bench_k8s_list_start(struct bench_k8s_list *l, const char *prefix);
/* Takes one page's answer: n keys, the last one last_key (borrowed), the
 * response's more flag and header revision (kept from the first page as
 * the revision of the following ones; later pages' headers carry the
 * store's current revision and are not compared). Sets done when more is false;
 * otherwise moves key past last_key. MOOR_EPROTO for an answer that
 * cannot continue (more with no keys, a last key not after the page's
 * start or past BENCH_K8S_KEY_MAX, a revision of 0). */
int bench_k8s_list_page(struct bench_k8s_list *l, const uint8_t *last_key,
                        size_t last_len, size_t n, bool more, int64_t revision);

/* What the watch workloads need of one WatchResponse, read from its wire
 * bytes without decoding it whole (at 10,000 watchers a full decode of
 * every event would make the client the bottleneck). */
struct bench_watch_scan
{
    bool created;
    bool canceled;
    uint64_t events;
};
/* Called with each event's key (borrowed for the call). */
typedef void (*bench_watch_key_fn)(const uint8_t *key, size_t len, void *arg);
/* Scans msg[0..len) as an etcdserverpb.WatchResponse into out (zeroed
 * first), calling key_fn (may be NULL) for each event's kv.key.
 * MOOR_EPROTO for malformed protobuf (a truncated field, a bad wire type). */
int bench_watch_scan(const uint8_t *msg, size_t len,
                     struct bench_watch_scan *out, bench_watch_key_fn key_fn,
                     void *arg);

/* ------------------------------------------------------------------------
 * Prometheus /metrics (consensus)
 * ---------------------------------------------------------------------- */

/* One histogram of a Prometheus text exposition: cumulative bucket counts
 * by upper bound le (ascending, the last one +Inf), sum and count. */
#define BENCH_PROM_BUCKETS_MAX 64
struct bench_prom_hist
{
    size_t n;
    double le[BENCH_PROM_BUCKETS_MAX];
    double counts[BENCH_PROM_BUCKETS_MAX];
    double sum;
    double count;
};

/* Finds histogram family name (e.g. "etcd_disk_wal_fsync_duration_seconds")
 * in the exposition text[0..len), restricted to the series whose labels
 * include label (e.g. "stage=\"propose_to_durable\"", or NULL for any),
 * and fills out from its _bucket, _sum and _count lines. Borrows text.
 * Errors: MOOR_ENOENT (no such series), MOOR_EPROTO (a matching line that
 * does not parse, buckets not ascending, no +Inf bucket, a _sum or _count
 * missing), MOOR_ETOOBIG (more than BENCH_PROM_BUCKETS_MAX buckets). */
int bench_prom_find_hist(const char *text, size_t len, const char *name,
                         const char *label, struct bench_prom_hist *out);

/* after - before, bucket by bucket, into out. MOOR_EINVAL when the bucket
 * bounds differ or a counter went backwards (the server restarted). */
int bench_prom_hist_delta(const struct bench_prom_hist *before,
                          const struct bench_prom_hist *after,
                          struct bench_prom_hist *out);

/* Prometheus' histogram_quantile(q, h): the bucket holding rank q*count,
 * interpolated linearly within it (the first bucket starts at 0); the
 * highest finite bound when the rank falls in the +Inf bucket; NaN when h
 * is empty or q is outside [0, 1]. */
double bench_prom_quantile(double q, const struct bench_prom_hist *h);

/* What happened to one histogram between two scrapes: count and sum of
 * the delta, its mean, p50 and p99 (histogram_quantile on the delta). */
struct bench_prom_summary
{
    double count;
    double sum;
    double mean;
    double p50;
    double p99;
};

/* Finds histogram name (with label, or NULL) in both scrapes and
 * summarises after - before. Borrows the texts. Errors as
 * bench_prom_find_hist (MOOR_ENOENT when either scrape lacks it) and
 * bench_prom_hist_delta. */
int bench_prom_summary(const char *before, size_t before_len, const char *after,
                       size_t after_len, const char *name, const char *label,
                       struct bench_prom_summary *out);

/* moord's per-stage write latency, in the order a write goes through them:
 * moor_server_stage_duration_seconds{stage="<name>"}. */
#define BENCH_STAGES 4
extern const char *const bench_stage_names[BENCH_STAGES];

/* The per-stage summaries between two scrapes and each stage's share of
 * the summed stage time (share of sum, 0..1). MOOR_ENOENT when the after
 * scrape has none of the stage metrics (not moord, or an older one);
 * other errors as bench_prom_summary. */
int bench_consensus_stages(const char *before, size_t before_len,
                           const char *after, size_t after_len,
                           struct bench_prom_summary out[BENCH_STAGES],
                           double share[BENCH_STAGES]);

/* The body of a plain HTTP/1.1 response (head and body in resp[0..len),
 * as read up to EOF): checks the status is 200 and decodes a chunked body
 * or one of Content-Length (or to EOF). Appends the body to body.
 * MOOR_EPROTO for a malformed or truncated response, MOOR_EIO for a
 * status other than 200 (errmsg says which), MOOR_ENOMEM. */
int bench_http_body(const uint8_t *resp, size_t len, struct moor_buf *body,
                    char *errmsg);

/* GETs url ("http://host:port/path", host a loopback address: 127.x.y.z,
 * ::1 or localhost) with a timeout for the whole exchange, and appends the
 * body to body (at most 64 MiB). Blocking; plain HTTP only. Errors:
 * MOOR_EINVAL (bad or non-loopback URL), MOOR_ECONN, MOOR_ETIMEDOUT,
 * MOOR_EPROTO, MOOR_EIO (not 200), MOOR_ETOOBIG, MOOR_ENOMEM; errmsg says
 * why. */
int bench_http_get(const char *url, uint64_t timeout_ms, struct moor_buf *body,
                   char *errmsg);

/* Subcommands: each parses its own flags (argv[0] is its name). */
int bench_raft_main(int argc, char **argv);
int bench_wal_main(int argc, char **argv);
int bench_kv_main(int argc, char **argv);
int bench_rpc_main(int argc, char **argv);
int bench_put_main(int argc, char **argv);
int bench_range_main(int argc, char **argv);
int bench_txn_put_main(int argc, char **argv);
int bench_txn_mixed_main(int argc, char **argv);
int bench_watch_main(int argc, char **argv);
int bench_watch_latency_main(int argc, char **argv);
int bench_lease_keepalive_main(int argc, char **argv);
int bench_k8s_main(int argc, char **argv);
int bench_consensus_main(int argc, char **argv);

#endif /* MOOR_BENCH_H */
