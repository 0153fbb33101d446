/*
 * metrics.c: the metrics registry and the Prometheus text format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/):
 *
 *   # HELP <name> <help, with \ and newline escaped>
 *   # TYPE <name> counter|gauge|histogram
 *   <name>{<labels>} <value>
 *   <name>_bucket{<labels>,le="<bound>"} <cumulative count>   (+Inf last)
 *   <name>_sum{<labels>} <sum>
 *   <name>_count{<labels>} <count>
 *
 * Values print as Go's strconv.FormatFloat(v, 'g', -1, 64) does, so le
 * bounds read "0.0001", not "0.00010000000000000000479".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

void srv_metrics_init(struct srv_metrics *m)
{
    memset(m, 0, sizeof(*m));
}

void srv_metrics_close(struct srv_metrics *m)
{
    for (size_t i = 0; i < m->n; i++) {
        moor_free(m->series[i]);
    }
    memset(m, 0, sizeof(*m));
}

int srv_metrics_add(struct srv_metrics *m, enum srv_metric_type type,
                    const char *name, const char *help, const char *labels,
                    const double *bounds, size_t n_bounds,
                    struct srv_metric **out)
{
    if (labels == NULL) {
        labels = "";
    }
    if (name == NULL || name[0] == '\0') {
        return MOOR_EINVAL;
    }
    if (type == SRV_METRIC_HISTOGRAM) {
        if (bounds == NULL || n_bounds == 0) {
            return MOOR_EINVAL;
        }
        if (n_bounds > SRV_METRICS_BUCKETS_MAX) {
            return MOOR_ETOOBIG;
        }
        for (size_t i = 0; i < n_bounds; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
                return MOOR_EINVAL;
            }
        }
    } else if (bounds != NULL || n_bounds != 0) {
        return MOOR_EINVAL;
    }
    for (size_t i = 0; i < m->n; i++) {
        const struct srv_metric *s = m->series[i];
        if (strcmp(s->name, name) != 0) {
            continue;
        }
        if (s->type != type || strcmp(s->labels, labels) == 0) {
            return MOOR_EINVAL;
        }
    }
    if (m->n == SRV_METRICS_SERIES_MAX) {
        return MOOR_ETOOBIG;
    }
    struct srv_metric *s = moor_calloc(1, sizeof(*s));
    if (s == NULL) {
        return MOOR_ENOMEM;
    }
    s->name = name;
    s->help = help != NULL ? help : "";
    s->labels = labels;
    s->type = type;
    s->bounds = bounds;
    s->n_bounds = n_bounds;
    m->series[m->n++] = s;
    *out = s;
    return MOOR_OK;
}

void srv_metric_inc(struct srv_metric *s, double delta)
{
    if (delta > 0) {
        s->value += delta;
    }
}

void srv_metric_set(struct srv_metric *s, double value)
{
    s->value = value;
}

void srv_metric_observe(struct srv_metric *s, double v)
{
    if (isnan(v)) {
        return;
    }
    /* Binary search for the first bound >= v. */
    size_t lo = 0, hi = s->n_bounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->bounds[mid] >= v) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    s->buckets[lo]++;
    s->sum += v;
    s->count++;
}

void srv_metric_histogram_load(struct srv_metric *s, const uint64_t *buckets,
                               double sum, uint64_t count)
{
    memcpy(s->buckets, buckets, (s->n_bounds + 1) * sizeof(*buckets));
    s->sum = sum;
    s->count = count;
}

void srv_metrics_buckets_exp(double start, double factor, size_t n, double *out)
{
    double v = start;
    for (size_t i = 0; i < n; i++) {
        out[i] = v;
        v *= factor;
    }
}

const char *srv_metrics_format(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    } else {
        /* The shortest precision that reads back as v. */
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) {
                break;
            }
        }
    }
    return buf;
}

int srv_metrics_write_family(struct moor_buf *out, const char *name,
                             const char *type, const char *help)
{
    int rv = moor_buf_printf(out, "# HELP %s ", name);
    for (const char *p = help; rv == MOOR_OK && *p != '\0'; p++) {
        if (*p == '\\') {
            rv = moor_buf_append(out, "\\\\", 2);
        } else if (*p == '\n') {
            rv = moor_buf_append(out, "\\n", 2);
        } else {
            rv = moor_buf_putc(out, (uint8_t)*p);
        }
    }
    if (rv == MOOR_OK) {
        rv = moor_buf_printf(out, "\n# TYPE %s %s\n", name, type);
    }
    return rv;
}

int srv_metrics_write_sample(struct moor_buf *out, const char *name,
                             const char *labels, double value)
{
    char num[64];
    srv_metrics_format(value, num, sizeof(num));
    if (labels == NULL || labels[0] == '\0') {
        return moor_buf_printf(out, "%s %s\n", name, num);
    }
    return moor_buf_printf(out, "%s{%s} %s\n", name, labels, num);
}

static const char *type_name(enum srv_metric_type t)
{
    switch (t) {
    case SRV_METRIC_COUNTER:
        return "counter";
    case SRV_METRIC_GAUGE:
        return "gauge";
    case SRV_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

static int render_histogram(const struct srv_metric *s, struct moor_buf *out)
{
    const char *sep = s->labels[0] != '\0' ? "," : "";
    uint64_t cum = 0;
    char num[64];
    int rv = MOOR_OK;
    for (size_t i = 0; rv == MOOR_OK && i <= s->n_bounds; i++) {
        cum += s->buckets[i];
        if (i < s->n_bounds) {
            srv_metrics_format(s->bounds[i], num, sizeof(num));
        } else {
            snprintf(num, sizeof(num), "+Inf");
        }
        rv = moor_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", s->name,
                             s->labels, sep, num, (unsigned long long)cum);
    }
    if (rv == MOOR_OK) {
        srv_metrics_format(s->sum, num, sizeof(num));
        rv = s->labels[0] != '\0'
                 ? moor_buf_printf(out, "%s_sum{%s} %s\n", s->name, s->labels,
                                   num)
                 : moor_buf_printf(out, "%s_sum %s\n", s->name, num);
    }
    if (rv == MOOR_OK) {
        rv = s->labels[0] != '\0'
                 ? moor_buf_printf(out, "%s_count{%s} %llu\n", s->name,
                                   s->labels, (unsigned long long)s->count)
                 : moor_buf_printf(out, "%s_count %llu\n", s->name,
                                   (unsigned long long)s->count);
    }
    return rv;
}

static int render_series(const struct srv_metric *s, struct moor_buf *out)
{
    if (s->type == SRV_METRIC_HISTOGRAM) {
        return render_histogram(s, out);
    }
    return srv_metrics_write_sample(out, s->name, s->labels, s->value);
}

int srv_metrics_render(const struct srv_metrics *m, struct moor_buf *out)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct srv_metric *s = m->series[i];
        /* A family is rendered whole where its first series stands. */
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++) {
            seen = strcmp(m->series[k]->name, s->name) == 0;
        }
        if (seen) {
            continue;
        }
        int rv =
            srv_metrics_write_family(out, s->name, type_name(s->type), s->help);
        for (size_t k = i; rv == MOOR_OK && k < m->n; k++) {
            if (strcmp(m->series[k]->name, s->name) == 0) {
                rv = render_series(m->series[k], out);
            }
        }
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return MOOR_OK;
}
