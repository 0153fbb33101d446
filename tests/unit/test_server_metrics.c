/*
 * test_server_metrics.c: the metrics registry and its Prometheus text
 * (server/metrics.c): families grouped under one HELP and TYPE, label
 * sets, histograms rendered cumulative with +Inf, Go's number format, and
 * every refusal of srv_metrics_add.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "server/metrics.h"

static char *render(const struct srv_metrics *m)
{
    struct moor_buf b;
    moor_buf_init(&b);
    assert_int_equal(srv_metrics_render(m, &b), MOOR_OK);
    assert_int_equal(moor_buf_putc(&b, 0), MOOR_OK);
    char *s = strdup((const char *)b.ptr);
    moor_buf_close(&b);
    return s;
}

static void test_metrics_render_counters_and_gauges_with_help_and_type(
    void **state)
{
    (void)state;
    struct srv_metrics m;
    srv_metrics_init(&m);
    struct srv_metric *c, *g;
    assert_int_equal(
        srv_metrics_add(&m, SRV_METRIC_COUNTER, "a_total",
                        "Things.\nWith a \\ newline.", NULL, NULL, 0, &c),
        MOOR_OK);
    assert_int_equal(srv_metrics_add(&m, SRV_METRIC_GAUGE, "b", "B.", "x=\"1\"",
                                     NULL, 0, &g),
                     MOOR_OK);
    srv_metric_inc(c, 3);
    srv_metric_inc(c, -5); /* ignored: counters never go down */
    srv_metric_set(g, 0.25);
    char *s = render(&m);
    assert_string_equal(s,
                        "# HELP a_total Things.\\nWith a \\\\ newline.\n"
                        "# TYPE a_total counter\n"
                        "a_total 3\n"
                        "# HELP b B.\n"
                        "# TYPE b gauge\n"
                        "b{x=\"1\"} 0.25\n");
    free(s);
    srv_metrics_close(&m);
}

static void test_metrics_histogram_buckets_are_cumulative_and_end_in_inf(
    void **state)
{
    (void)state;
    struct srv_metrics m;
    srv_metrics_init(&m);
    double bounds[3];
    srv_metrics_buckets_exp(0.0001, 2, 3, bounds);
    struct srv_metric *h1, *other, *h2;
    assert_int_equal(srv_metrics_add(&m, SRV_METRIC_HISTOGRAM, "lat", "L.",
                                     "stage=\"a\"", bounds, 3, &h1),
                     MOOR_OK);
    assert_int_equal(
        srv_metrics_add(&m, SRV_METRIC_GAUGE, "z", "Z.", NULL, NULL, 0, &other),
        MOOR_OK);
    /* Registered after another family: still rendered with its family. */
    assert_int_equal(srv_metrics_add(&m, SRV_METRIC_HISTOGRAM, "lat", "L.",
                                     "stage=\"b\"", bounds, 3, &h2),
                     MOOR_OK);
    srv_metric_observe(h1, 0.0001); /* on a bound: that bucket */
    srv_metric_observe(h1, 0.0003);
    srv_metric_observe(h1, 5);   /* past the last bound: +Inf */
    srv_metric_observe(h1, NAN); /* NaN: ignored */
    char *s = render(&m);
    assert_string_equal(s,
                        "# HELP lat L.\n"
                        "# TYPE lat histogram\n"
                        "lat_bucket{stage=\"a\",le=\"0.0001\"} 1\n"
                        "lat_bucket{stage=\"a\",le=\"0.0002\"} 1\n"
                        "lat_bucket{stage=\"a\",le=\"0.0004\"} 2\n"
                        "lat_bucket{stage=\"a\",le=\"+Inf\"} 3\n"
                        "lat_sum{stage=\"a\"} 5.0004\n"
                        "lat_count{stage=\"a\"} 3\n"
                        "lat_bucket{stage=\"b\",le=\"0.0001\"} 0\n"
                        "lat_bucket{stage=\"b\",le=\"0.0002\"} 0\n"
                        "lat_bucket{stage=\"b\",le=\"0.0004\"} 0\n"
                        "lat_bucket{stage=\"b\",le=\"+Inf\"} 0\n"
                        "lat_sum{stage=\"b\"} 0\n"
                        "lat_count{stage=\"b\"} 0\n"
                        "# HELP z Z.\n"
                        "# TYPE z gauge\n"
                        "z 0\n");
    free(s);
    srv_metrics_close(&m);
}

static void test_metrics_histogram_load_sets_counts_kept_elsewhere(void **state)
{
    (void)state;
    struct srv_metrics m;
    srv_metrics_init(&m);
    static const double bounds[2] = {1, 2};
    struct srv_metric *h;
    assert_int_equal(srv_metrics_add(&m, SRV_METRIC_HISTOGRAM, "h", "H.", NULL,
                                     bounds, 2, &h),
                     MOOR_OK);
    const uint64_t counts[3] = {2, 0, 1};
    srv_metric_histogram_load(h, counts, 4.5, 3);
    char *s = render(&m);
    assert_non_null(strstr(s,
                           "h_bucket{le=\"1\"} 2\n"
                           "h_bucket{le=\"2\"} 2\n"
                           "h_bucket{le=\"+Inf\"} 3\n"
                           "h_sum 4.5\n"
                           "h_count 3\n"));
    free(s);
    srv_metrics_close(&m);
}

static void test_metrics_add_refuses_bad_registrations(void **state)
{
    (void)state;
    struct srv_metrics m;
    srv_metrics_init(&m);
    struct srv_metric *s;
    static const double down[2] = {2, 1};
    static const double ok[1] = {1};
    assert_int_equal(
        srv_metrics_add(&m, SRV_METRIC_GAUGE, "", "", NULL, NULL, 0, &s),
        MOOR_EINVAL);
    assert_int_equal(
        srv_metrics_add(&m, SRV_METRIC_HISTOGRAM, "h", "", NULL, NULL, 0, &s),
        MOOR_EINVAL);
    assert_int_equal(
        srv_metrics_add(&m, SRV_METRIC_HISTOGRAM, "h", "", NULL, down, 2, &s),
        MOOR_EINVAL);
    assert_int_equal(
        srv_metrics_add(&m, SRV_METRIC_GAUGE, "g", "", NULL, ok, 1, &s),
        MOOR_EINVAL);
    double many[SRV_METRICS_BUCKETS_MAX + 1];
    srv_metrics_buckets_exp(1, 2, SRV_METRICS_BUCKETS_MAX + 1, many);
    assert_int_equal(srv_metrics_add(&m, SRV_METRIC_HISTOGRAM, "h", "", NULL,
                                     many, SRV_METRICS_BUCKETS_MAX + 1, &s),
                     MOOR_ETOOBIG);
    assert_int_equal(
        srv_metrics_add(&m, SRV_METRIC_GAUGE, "g", "", "a=\"1\"", NULL, 0, &s),
        MOOR_OK);
    /* The same series twice, and the family with another type. */
    assert_int_equal(
        srv_metrics_add(&m, SRV_METRIC_GAUGE, "g", "", "a=\"1\"", NULL, 0, &s),
        MOOR_EINVAL);
    assert_int_equal(srv_metrics_add(&m, SRV_METRIC_COUNTER, "g", "", "a=\"2\"",
                                     NULL, 0, &s),
                     MOOR_EINVAL);
    static char names[SRV_METRICS_SERIES_MAX][16];
    size_t added = m.n;
    for (size_t i = added; i < SRV_METRICS_SERIES_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "n%zu", i);
        assert_int_equal(srv_metrics_add(&m, SRV_METRIC_GAUGE, names[i], "",
                                         NULL, NULL, 0, &s),
                         MOOR_OK);
    }
    assert_int_equal(
        srv_metrics_add(&m, SRV_METRIC_GAUGE, "last", "", NULL, NULL, 0, &s),
        MOOR_ETOOBIG);
    srv_metrics_close(&m);
}

static void test_metrics_numbers_print_as_go_does(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(srv_metrics_format(0.0001 * 8, b, sizeof(b)), "0.0008");
    assert_string_equal(srv_metrics_format(0.001 * 8192, b, sizeof(b)),
                        "8.192");
    assert_string_equal(srv_metrics_format(2147483648.0, b, sizeof(b)),
                        "2147483648");
    assert_string_equal(srv_metrics_format(0.1 + 0.2, b, sizeof(b)),
                        "0.30000000000000004");
    assert_string_equal(srv_metrics_format(INFINITY, b, sizeof(b)), "+Inf");
    assert_string_equal(srv_metrics_format(NAN, b, sizeof(b)), "NaN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_metrics_render_counters_and_gauges_with_help_and_type),
        cmocka_unit_test(
            test_metrics_histogram_buckets_are_cumulative_and_end_in_inf),
        cmocka_unit_test(
            test_metrics_histogram_load_sets_counts_kept_elsewhere),
        cmocka_unit_test(test_metrics_add_refuses_bad_registrations),
        cmocka_unit_test(test_metrics_numbers_print_as_go_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
