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

/* Subcommands: each parses its own flags (argv[0] is its name). */
int bench_raft_main(int argc, char **argv);
int bench_wal_main(int argc, char **argv);
int bench_kv_main(int argc, char **argv);
int bench_rpc_main(int argc, char **argv);

#endif /* MOOR_BENCH_H */
