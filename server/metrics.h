/*
 * server/metrics.h: a small metrics registry and its Prometheus text
 * exposition (format 0.0.4), for moord's /metrics.
 *
 * What it is: counters, gauges and histograms with fixed bucket bounds.
 * Each is one series of a family (a name, a help text, a type) with an
 * optional label set, given already rendered (`stage="apply_to_answer"`).
 * Series are registered once, at start, and rendered in registration
 * order, the series of one family together under one HELP and one TYPE
 * line. Series whose label sets are only known at scrape time (gRPC
 * methods by status code) are written straight into the exposition with
 * srv_metrics_write_family and srv_metrics_write_sample.
 *
 * What it is not: thread-safe. Every function runs on the loop thread; no
 * locks, no atomics. A value measured on another thread (the WAL writer's
 * fdatasync) is kept there with atomics and folded in by the loop thread
 * before rendering.
 *
 * Ownership: struct srv_metrics is caller memory (srv_metrics_init /
 * srv_metrics_close). Series are allocated by the registry and returned
 * borrowed, valid until srv_metrics_close. Names, help texts, label texts
 * and bucket bounds are borrowed for the registry's life: pass string
 * literals and static arrays.
 *
 * Bounds: at most SRV_METRICS_SERIES_MAX series and SRV_METRICS_BUCKETS_MAX
 * finite buckets per histogram (+Inf is implicit).
 */
#ifndef MOOR_SERVER_METRICS_H
#define MOOR_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

#define SRV_METRICS_SERIES_MAX 256
#define SRV_METRICS_BUCKETS_MAX 32

enum srv_metric_type {
    SRV_METRIC_COUNTER = 0,
    SRV_METRIC_GAUGE = 1,
    SRV_METRIC_HISTOGRAM = 2,
};

/* One series. Fields are read by the renderer; change values only through
 * the functions below. */
struct srv_metric
{
    const char *name;
    const char *help;
    const char *labels; /* rendered label pairs without braces; "" for none */
    enum srv_metric_type type;
    double value; /* counter, gauge */
    /* Histogram: finite upper bounds, strictly ascending; counts per
     * bucket, not cumulative ([n_bounds] is the +Inf bucket). */
    const double *bounds;
    size_t n_bounds;
    uint64_t buckets[SRV_METRICS_BUCKETS_MAX + 1];
    double sum;
    uint64_t count;
};

struct srv_metrics
{
    struct srv_metric *series[SRV_METRICS_SERIES_MAX];
    size_t n;
};

/* An empty registry. */
void srv_metrics_init(struct srv_metrics *m);
/* Frees every series. Safe on an initialised, empty registry. */
void srv_metrics_close(struct srv_metrics *m);

/* Registers one series and returns it borrowed in *out (valid until
 * close), its value 0. Borrows name, help, labels (NULL means "") and
 * bounds for the registry's life. bounds/n_bounds only for histograms
 * (NULL/0 otherwise). Errors: MOOR_EINVAL (an empty name; a histogram
 * without bounds or with bounds not strictly ascending or not finite;
 * name already registered with another type; the same name and labels
 * twice), MOOR_ETOOBIG (SRV_METRICS_SERIES_MAX series, or more than
 * SRV_METRICS_BUCKETS_MAX bounds), MOOR_ENOMEM. */
int srv_metrics_add(struct srv_metrics *m, enum srv_metric_type type,
                    const char *name, const char *help, const char *labels,
                    const double *bounds, size_t n_bounds,
                    struct srv_metric **out);

/* Counters: adds delta (>= 0; negative deltas are ignored, a counter never
 * goes down). */
void srv_metric_inc(struct srv_metric *s, double delta);
/* Gauges, and counters kept elsewhere (a total another module counts):
 * sets the value. */
void srv_metric_set(struct srv_metric *s, double value);
/* Histograms: counts v in the first bucket whose bound is >= v (the +Inf
 * bucket past the last), adds it to the sum. NaN is ignored. */
void srv_metric_observe(struct srv_metric *s, double v);

/* Histograms counted elsewhere (on another thread, with atomics): sets
 * the per-bucket counts (not cumulative, n_bounds + 1 of them, the last
 * the +Inf bucket), the sum and the count. Borrows buckets. */
void srv_metric_histogram_load(struct srv_metric *s, const uint64_t *buckets,
                               double sum, uint64_t count);

/* Fills out[0..n) with start, start*factor, start*factor^2 ... (Prometheus'
 * ExponentialBuckets). */
void srv_metrics_buckets_exp(double start, double factor, size_t n,
                             double *out);

/* Appends every registered series to out in the text format: per family
 * "# HELP", "# TYPE", then its samples; histograms as cumulative _bucket
 * lines with le (the last "+Inf"), _sum and _count. MOOR_OK or
 * MOOR_ENOMEM (out then holds a prefix). */
int srv_metrics_render(const struct srv_metrics *m, struct moor_buf *out);

/* Writers for series rendered without registering them: the HELP and TYPE
 * lines of a family (type "counter", "gauge" ...), and one sample
 * "name{labels} value" (labels NULL or "" for none). MOOR_ENOMEM. */
int srv_metrics_write_family(struct moor_buf *out, const char *name,
                             const char *type, const char *help);
int srv_metrics_write_sample(struct moor_buf *out, const char *name,
                             const char *labels, double value);

/* Formats v as Prometheus does (Go's strconv 'g', shortest text that reads
 * back as v; "+Inf", "-Inf", "NaN") into buf (at least 32 bytes). Returns
 * buf. */
const char *srv_metrics_format(double v, char *buf, size_t size);

#endif /* MOOR_SERVER_METRICS_H */
