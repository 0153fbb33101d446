/* hist.c: the log-linear latency histogram and etcd-style summaries. */
#include <math.h>

#include "bench.h"

void bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

uint32_t bench_hist_index(uint64_t value)
{
    if (value < BENCH_HIST_SUB) {
        return (uint32_t)value;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(value); /* >= SUB_BITS */
    unsigned shift = e - BENCH_HIST_SUB_BITS;
    uint64_t sub = (value >> shift) - BENCH_HIST_SUB; /* 0 .. SUB-1 */
    return (uint32_t)((shift + 1u) * BENCH_HIST_SUB + sub);
}

uint64_t bench_hist_bucket_low(uint32_t index)
{
    if (index < BENCH_HIST_SUB) {
        return index;
    }
    unsigned shift = index / BENCH_HIST_SUB - 1u;
    uint64_t sub = index % BENCH_HIST_SUB;
    return (BENCH_HIST_SUB + sub) << shift;
}

uint64_t bench_hist_bucket_high(uint32_t index)
{
    if (index < BENCH_HIST_SUB) {
        return index;
    }
    unsigned shift = index / BENCH_HIST_SUB - 1u;
    return bench_hist_bucket_low(index) + ((1ull << shift) - 1u);
}

void bench_hist_record(struct bench_hist *h, uint64_t value)
{
    h->buckets[bench_hist_index(value)]++;
    h->count++;
    if (value < h->min) {
        h->min = value;
    }
    if (value > h->max) {
        h->max = value;
    }
    double v = (double)value;
    h->sum += v;
    h->sum_sq += v * v;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
    dst->count += src->count;
    dst->min = MOOR_MIN(dst->min, src->min);
    dst->max = MOOR_MAX(dst->max, src->max);
    dst->sum += src->sum;
    dst->sum_sq += src->sum_sq;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
    if (h->count == 0) {
        return 0;
    }
    if (p <= 0) {
        return h->min;
    }
    if (p >= 100) {
        return h->max;
    }
    /* The rank of the value: ceil(p% of count), at least 1. */
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            /* The bucket's midpoint, clamped to what was really seen. */
            uint64_t lo = bench_hist_bucket_low(i);
            uint64_t hi = bench_hist_bucket_high(i);
            uint64_t v = lo + (hi - lo) / 2;
            return MOOR_MAX(h->min, MOOR_MIN(h->max, v));
        }
    }
    return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->count == 0 ? 0.0 : h->sum / (double)h->count;
}

double bench_hist_stddev(const struct bench_hist *h)
{
    if (h->count < 2) {
        return 0.0;
    }
    double mean = bench_hist_mean(h);
    double var = h->sum_sq / (double)h->count - mean * mean;
    return var > 0 ? sqrt(var) : 0.0;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

void bench_hist_print(FILE *out, const struct bench_hist *h, double elapsed_s)
{
    fprintf(out, "\nSummary:\n");
    fprintf(out, "  Total:\t%.4f secs.\n", elapsed_s);
    if (h->count == 0) {
        fprintf(out, "  (no requests completed)\n");
        return;
    }
    fprintf(out, "  Slowest:\t%.4f secs.\n", secs(h->max));
    fprintf(out, "  Fastest:\t%.4f secs.\n", secs(h->min));
    fprintf(out, "  Average:\t%.4f secs.\n", bench_hist_mean(h) / 1e9);
    fprintf(out, "  Stddev:\t%.4f secs.\n", bench_hist_stddev(h) / 1e9);
    fprintf(out, "  Requests/sec:\t%.4f\n",
            elapsed_s > 0 ? (double)h->count / elapsed_s : 0.0);

    /* etcd's layout: ten equal-width rows from fastest to slowest, the
     * row's upper bound on the left, bars scaled to the fullest row. */
    enum { ROWS = 10, BAR = 40 };
    uint64_t rows[ROWS + 1] = {0};
    double width = (double)(h->max - h->min) / ROWS;
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        if (h->buckets[i] == 0) {
            continue;
        }
        uint64_t lo = bench_hist_bucket_low(i);
        uint64_t v = MOOR_MAX(h->min, MOOR_MIN(h->max, lo));
        size_t r = width > 0 ? (size_t)ceil((double)(v - h->min) / width) : 0;
        rows[MOOR_MIN(r, (size_t)ROWS)] += h->buckets[i];
    }
    uint64_t most = 1;
    for (int r = 0; r <= ROWS; r++) {
        most = MOOR_MAX(most, rows[r]);
    }
    fprintf(out, "\nResponse time histogram:\n");
    for (int r = 0; r <= ROWS; r++) {
        double mark = secs(h->min) + width * r / 1e9;
        fprintf(out, "  %.4f [%llu]\t|", mark, (unsigned long long)rows[r]);
        uint64_t n = rows[r] * BAR / most;
        for (uint64_t k = 0; k < n; k++) {
            fputs("\xe2\x88\x8e", out); /* U+220E, as etcd prints */
        }
        fputc('\n', out);
    }
    static const double pcts[] = {10, 25, 50, 75, 90, 95, 99, 99.9};
    fprintf(out, "\nLatency distribution:\n");
    for (size_t i = 0; i < MOOR_ARRAY_LEN(pcts); i++) {
        fprintf(out, "  %g%% in %.4f secs.\n", pcts[i],
                secs(bench_hist_percentile(h, pcts[i])));
    }
}

int bench_hist_json(struct moor_buf *out, const struct bench_hist *h,
                    double elapsed_s)
{
    double ms = 1e6;
    return moor_buf_printf(
        out,
        "{\"count\":%llu,\"elapsed_s\":%.6f,\"rps\":%.3f,\"min_ms\":%.4f,"
        "\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,"
        "\"max_ms\":%.4f,\"mean_ms\":%.4f,\"stddev_ms\":%.4f}",
        (unsigned long long)h->count, elapsed_s,
        elapsed_s > 0 ? (double)h->count / elapsed_s : 0.0,
        h->count ? (double)h->min / ms : 0.0,
        (double)bench_hist_percentile(h, 50) / ms,
        (double)bench_hist_percentile(h, 90) / ms,
        (double)bench_hist_percentile(h, 99) / ms,
        (double)bench_hist_percentile(h, 99.9) / ms, (double)h->max / ms,
        bench_hist_mean(h) / ms, bench_hist_stddev(h) / ms);
}
