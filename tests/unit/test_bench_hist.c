/* test_bench_hist.c: the log-linear histogram's buckets and percentiles on
 * inputs whose answers are known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "bench/bench.h"

static struct bench_hist *hist_new(void)
{
    struct bench_hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    bench_hist_init(h);
    return h;
}

static void test_hist_buckets_tile_the_value_range(void **state)
{
    (void)state;
    /* Consecutive buckets are adjacent, and every value maps into the
     * bucket whose bounds hold it. */
    for (uint32_t i = 0; i + 1 < BENCH_HIST_BUCKETS; i++) {
        assert_true(bench_hist_bucket_low(i) <= bench_hist_bucket_high(i));
        assert_true(bench_hist_bucket_high(i) + 1 ==
                    bench_hist_bucket_low(i + 1));
    }
    assert_true(bench_hist_bucket_high(BENCH_HIST_BUCKETS - 1) == UINT64_MAX);
    struct moor_prng r;
    moor_prng_seed(&r, 3);
    for (int k = 0; k < 100000; k++) {
        uint64_t v = moor_prng_next(&r) >> moor_prng_below(&r, 64);
        uint32_t i = bench_hist_index(v);
        assert_true(i < BENCH_HIST_BUCKETS);
        assert_true(bench_hist_bucket_low(i) <= v);
        assert_true(v <= bench_hist_bucket_high(i));
        /* Relative width of a bucket is at most 1/SUB. */
        uint64_t lo = bench_hist_bucket_low(i);
        uint64_t hi = bench_hist_bucket_high(i);
        assert_true((double)(hi - lo) <= (double)lo / BENCH_HIST_SUB + 1);
    }
    assert_int_equal(bench_hist_index(0), 0);
    assert_int_equal(bench_hist_index(127), 127);
    assert_int_equal(bench_hist_index(128), 128);
}

static void test_hist_percentiles_of_known_inputs(void **state)
{
    (void)state;
    struct bench_hist *h = hist_new();
    /* 1..100 exactly: below 128 every value has its own bucket. */
    for (uint64_t v = 1; v <= 100; v++) {
        bench_hist_record(h, v);
    }
    assert_int_equal(bench_hist_percentile(h, 50), 50);
    assert_int_equal(bench_hist_percentile(h, 90), 90);
    assert_int_equal(bench_hist_percentile(h, 99), 99);
    assert_int_equal(bench_hist_percentile(h, 99.9), 100);
    assert_int_equal(bench_hist_percentile(h, 0), 1);
    assert_int_equal(bench_hist_percentile(h, 100), 100);
    assert_true(bench_hist_mean(h) == 50.5);

    /* A million values 1..1e6 (ns): each percentile within 1 %. */
    bench_hist_init(h);
    for (uint64_t v = 1; v <= 1000000; v++) {
        bench_hist_record(h, v);
    }
    const double ps[] = {10, 50, 90, 99, 99.9};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(ps); i++) {
        double want = ps[i] / 100.0 * 1e6;
        double got = (double)bench_hist_percentile(h, ps[i]);
        assert_true(got >= want * 0.99 && got <= want * 1.01);
    }
    assert_int_equal(bench_hist_percentile(h, 100), 1000000);
    /* Stddev of the uniform 1..n is about n / sqrt(12). */
    double sd = bench_hist_stddev(h);
    assert_true(sd > 288000 && sd < 289000);
    free(h);
}

static void test_hist_tail_and_merge(void **state)
{
    (void)state;
    struct bench_hist *a = hist_new();
    struct bench_hist *b = hist_new();
    /* 990 fast (1 ms) and 10 slow (100 ms) requests, split over two
     * histograms: p99 is fast, p99.9 is slow. */
    for (int i = 0; i < 990; i++) {
        bench_hist_record(i % 2 ? a : b, 1000000);
    }
    for (int i = 0; i < 10; i++) {
        bench_hist_record(b, 100000000);
    }
    bench_hist_merge(a, b);
    assert_int_equal(a->count, 1000);
    uint64_t p99 = bench_hist_percentile(a, 99);
    uint64_t p999 = bench_hist_percentile(a, 99.9);
    assert_true(p99 >= 990000 && p99 <= 1010000);
    assert_true(p999 >= 99000000 && p999 <= 100000000);
    assert_int_equal(a->min, 1000000);
    assert_int_equal(a->max, 100000000);

    struct moor_buf j;
    moor_buf_init(&j);
    assert_int_equal(bench_hist_json(&j, a, 2.0), MOOR_OK);
    moor_buf_putc(&j, 0);
    assert_non_null(strstr((char *)j.ptr, "\"count\":1000,"));
    assert_non_null(strstr((char *)j.ptr, "\"rps\":500.000,"));
    assert_non_null(strstr((char *)j.ptr, "\"max_ms\":100.0000,"));
    moor_buf_close(&j);

    /* The printed summary has etcd's sections and its totals. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    bench_hist_print(f, a, 2.0);
    fclose(f);
    assert_non_null(strstr(text, "Slowest:\t0.1000 secs."));
    assert_non_null(strstr(text, "Requests/sec:\t500.0000"));
    assert_non_null(strstr(text, "Response time histogram:"));
    assert_non_null(strstr(text, "  0.0010 [990]\t|"));
    assert_non_null(strstr(text, "  0.1000 [10]\t|"));
    char want[64];
    snprintf(want, sizeof(want), "  99.9%% in %.4f secs.\n",
             (double)p999 / 1e9);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "  50% in 0.0010 secs.\n"));
    free(text);

    bench_hist_init(b);
    assert_int_equal(bench_hist_percentile(b, 50), 0);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets_tile_the_value_range),
        cmocka_unit_test(test_hist_percentiles_of_known_inputs),
        cmocka_unit_test(test_hist_tail_and_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
