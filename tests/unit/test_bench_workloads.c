/* test_bench_workloads.c: the client workloads' plain pieces on inputs whose
 * answers are known: key generation, the rate limiter, prefix ends, the k8s
 * key layout and pagination, the /metrics parser, histogram_quantile, the
 * consensus deltas and HTTP/1.1 bodies. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "bench/bench.h"
#include "proto/proto.h"

/* ------------------------------------------------------------------------
 * Keys
 * ---------------------------------------------------------------------- */
static void test_keygen_sequential_keys_cycle_through_the_key_space(void **st)
{
    (void)st;
    struct bench_keygen g;
    assert_int_equal(bench_keygen_init(&g, "", 8, 5, true, 1), MOOR_OK);
    for (uint64_t round = 0; round < 3; round++) {
        for (uint64_t i = 0; i < 5; i++) {
            assert_int_equal(bench_keygen_next(&g), i);
        }
    }
    uint8_t key[8];
    bench_keygen_format(&g, 3, key);
    assert_memory_equal(key, "00000003", 8);
}

static void test_keygen_random_keys_stay_in_the_space_and_cover_it(void **st)
{
    (void)st;
    struct bench_keygen g;
    assert_int_equal(bench_keygen_init(&g, "p/", 10, 100, false, 7), MOOR_OK);
    int seen[100] = {0};
    for (int i = 0; i < 20000; i++) {
        uint64_t k = bench_keygen_next(&g);
        assert_true(k < 100);
        seen[k]++;
    }
    /* Uniform: each of 100 keys about 200 times. */
    for (int k = 0; k < 100; k++) {
        assert_true(seen[k] > 100 && seen[k] < 300);
    }
    /* Same seed, same keys. */
    struct bench_keygen a;
    struct bench_keygen b;
    bench_keygen_init(&a, "", 8, 1000, false, 42);
    bench_keygen_init(&b, "", 8, 1000, false, 42);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(bench_keygen_next(&a), bench_keygen_next(&b));
    }
}

static void test_keygen_keys_have_exactly_key_size_bytes(void **st)
{
    (void)st;
    struct bench_keygen g;
    uint8_t key[BENCH_KEY_MAX + 8];
    /* Exactly key_size bytes, prefix then zero-padded decimal. */
    assert_int_equal(bench_keygen_init(&g, "w/", 12, 1000000, false, 1),
                     MOOR_OK);
    memset(key, 'X', sizeof(key));
    bench_keygen_format(&g, 999999, key);
    assert_memory_equal(key, "w/0000999999", 12);
    assert_int_equal(key[12], 'X');
    bench_keygen_format(&g, 0, key);
    assert_memory_equal(key, "w/0000000000", 12);
    /* The index just fits, or it does not. */
    assert_int_equal(bench_keygen_init(&g, "", 3, 1000, false, 1), MOOR_OK);
    assert_int_equal(bench_keygen_init(&g, "", 3, 1001, false, 1), MOOR_EINVAL);
    assert_int_equal(bench_keygen_init(&g, "", 1, 1, false, 1), MOOR_OK);
    assert_int_equal(bench_keygen_init(&g, "abc", 3, 1, false, 1), MOOR_EINVAL);
    assert_int_equal(bench_keygen_init(&g, "", 8, 0, false, 1), MOOR_EINVAL);
    assert_int_equal(bench_keygen_init(&g, "", BENCH_KEY_MAX + 1, 1, false, 1),
                     MOOR_EINVAL);
    /* Distinct indexes, distinct keys. */
    assert_int_equal(bench_keygen_init(&g, "", 8, 1000, true, 1), MOOR_OK);
    uint8_t k1[8];
    uint8_t k2[8];
    bench_keygen_format(&g, 10, k1);
    bench_keygen_format(&g, 100, k2);
    assert_memory_not_equal(k1, k2, 8);
}

/* ------------------------------------------------------------------------
 * Rate limiter
 * ---------------------------------------------------------------------- */
static void test_rate_limiter_spaces_requests_at_the_rate(void **st)
{
    (void)st;
    struct bench_rate r;
    bench_rate_init(&r, 100, 0); /* burst 1 */
    assert_int_equal(bench_rate_take(&r, 0), 0);
    uint64_t wait = bench_rate_take(&r, 0);
    assert_true(wait >= 9999999 && wait <= 10000001);
    assert_true(bench_rate_take(&r, 5000000) > 0);
    assert_int_equal(bench_rate_take(&r, 10000000), 0);

    /* A greedy taker over one simulated second gets rate + burst tokens. */
    bench_rate_init(&r, 10000, 0); /* burst 100 */
    uint64_t now = 0;
    uint64_t taken = 0;
    while (now <= 1000000000ull) {
        uint64_t w = bench_rate_take(&r, now);
        if (w == 0) {
            taken++;
        } else {
            now += w;
        }
    }
    assert_true(taken >= 10090 && taken <= 10101);

    /* Unlimited never waits. */
    bench_rate_init(&r, 0, 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(bench_rate_take(&r, 0), 0);
    }
}

/* ------------------------------------------------------------------------
 * Prefixes, k8s keys and pagination
 * ---------------------------------------------------------------------- */
static void test_prefix_end_is_etcds(void **st)
{
    (void)st;
    uint8_t out[8];
    assert_int_equal(bench_prefix_end((const uint8_t *)"abc", 3, out), 3);
    assert_memory_equal(out, "abd", 3);
    const uint8_t ff[] = {'a', 0xff, 0xff};
    assert_int_equal(bench_prefix_end(ff, 3, out), 1);
    assert_int_equal(out[0], 'b');
    const uint8_t all[] = {0xff, 0xff};
    assert_int_equal(bench_prefix_end(all, 2, out), 1);
    assert_int_equal(out[0], 0);
}

static void test_k8s_keys_follow_the_api_servers_layout(void **st)
{
    (void)st;
    char key[BENCH_K8S_KEY_MAX + 1];
    size_t n = bench_k8s_key(key, "/registry", 42, 10);
    assert_string_equal(key, "/registry/pods/ns-0002/obj-00000042");
    assert_int_equal(n, strlen(key));
    bench_k8s_key(key, "/registry", 43, 10);
    assert_string_equal(key, "/registry/events/ns-0003/obj-00000043");
    assert_true(bench_k8s_is_event(3) && !bench_k8s_is_event(4));
    char root[300];
    memset(root, 'r', sizeof(root) - 1);
    root[sizeof(root) - 1] = 0;
    assert_int_equal(bench_k8s_key(key, root, 1, 1), 0);
}

static void test_k8s_list_continues_after_the_last_key(void **st)
{
    (void)st;
    struct bench_k8s_list l;
    assert_int_equal(bench_k8s_list_start(&l, "/r/pods/"), MOOR_OK);
    assert_memory_equal(l.key, "/r/pods/", 8);
    assert_int_equal(l.end_len, 8);
    assert_memory_equal(l.end, "/r/pods0", 8);
    assert_int_equal(l.revision, 0);

    /* Page 1: two keys, more. The next starts at last key + NUL, at the
     * first page's revision. */
    const char *k2 = "/r/pods/ns-0001/obj-2";
    assert_int_equal(
        bench_k8s_list_page(&l, (const uint8_t *)k2, strlen(k2), 2, true, 17),
        MOOR_OK);
    assert_false(l.done);
    assert_int_equal(l.revision, 17);
    assert_int_equal(l.key_len, strlen(k2) + 1);
    assert_memory_equal(l.key, k2, strlen(k2));
    assert_int_equal(l.key[strlen(k2)], 0);
    /* Page 2: the header's revision moved on (writes meanwhile); the list
     * stays at 17. */
    const char *k4 = "/r/pods/ns-0002/obj-4";
    assert_int_equal(
        bench_k8s_list_page(&l, (const uint8_t *)k4, strlen(k4), 2, true, 25),
        MOOR_OK);
    assert_int_equal(l.revision, 17);
    assert_memory_equal(l.key, k4, strlen(k4));
    /* Last page. */
    assert_int_equal(bench_k8s_list_page(&l, NULL, 0, 0, false, 25), MOOR_OK);
    assert_true(l.done);
    assert_int_equal(l.pages, 3);
    assert_int_equal(l.items, 4);

    /* Answers that cannot continue. */
    bench_k8s_list_start(&l, "/r/pods/");
    assert_int_equal(bench_k8s_list_page(&l, NULL, 0, 0, true, 5), MOOR_EPROTO);
    bench_k8s_list_start(&l, "/r/pods/x");
    assert_int_equal(
        bench_k8s_list_page(&l, (const uint8_t *)"/r/pods/a", 9, 1, true, 5),
        MOOR_EPROTO); /* before the page's start */
    bench_k8s_list_start(&l, "/r/pods/");
    assert_int_equal(bench_k8s_list_page(&l, NULL, 0, 0, false, 0),
                     MOOR_EPROTO);
    assert_int_equal(bench_k8s_list_start(&l, ""), MOOR_EINVAL);
}

/* ------------------------------------------------------------------------
 * /metrics
 * ---------------------------------------------------------------------- */

/* A canned exposition as moord will print it: le doubling from 0.0001. */
static void stage_lines(struct moor_buf *b, const char *stage,
                        const double *per_bucket, size_t n, double sum)
{
    double le = 0.0001;
    double cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += per_bucket[i];
        moor_buf_printf(
            b,
            "moor_server_stage_duration_seconds_bucket{stage=\"%s\","
            "le=\"%g\"} %g\n",
            stage, le, cum);
        le *= 2;
    }
    moor_buf_printf(b,
                    "moor_server_stage_duration_seconds_bucket{stage=\"%s\","
                    "le=\"+Inf\"} %g\n"
                    "moor_server_stage_duration_seconds_sum{stage=\"%s\"} %g\n"
                    "moor_server_stage_duration_seconds_count{stage=\"%s\"} "
                    "%g\n",
                    stage, cum, stage, sum, stage, cum);
}

static void test_prom_parser_finds_one_labelled_histogram(void **st)
{
    (void)st;
    struct moor_buf b;
    moor_buf_init(&b);
    moor_buf_printf(&b,
                    "# HELP moor_server_stage_duration_seconds Stages.\n"
                    "# TYPE moor_server_stage_duration_seconds histogram\n");
    const double a[] = {1, 2, 3};
    const double c[] = {10, 0, 0};
    stage_lines(&b, "propose_to_durable", a, 3, 0.5);
    stage_lines(&b, "durable_to_commit", c, 3, 0.25);
    moor_buf_printf(&b, "etcd_server_has_leader 1\n");
    struct bench_prom_hist h;
    assert_int_equal(bench_prom_find_hist((const char *)b.ptr, b.len,
                                          "moor_server_stage_duration_seconds",
                                          "stage=\"propose_to_durable\"", &h),
                     MOOR_OK);
    assert_int_equal(h.n, 4);
    assert_true(h.le[0] == 0.0001 && h.le[1] == 0.0002 && h.le[2] == 0.0004);
    assert_true(isinf(h.le[3]));
    assert_true(h.counts[0] == 1 && h.counts[1] == 3 && h.counts[2] == 6 &&
                h.counts[3] == 6);
    assert_true(h.sum == 0.5 && h.count == 6);
    assert_int_equal(bench_prom_find_hist((const char *)b.ptr, b.len,
                                          "moor_server_stage_duration_seconds",
                                          "stage=\"durable_to_commit\"", &h),
                     MOOR_OK);
    assert_true(h.counts[0] == 10 && h.sum == 0.25);
    assert_int_equal(bench_prom_find_hist((const char *)b.ptr, b.len,
                                          "moor_server_stage_duration_seconds",
                                          "stage=\"nope\"", &h),
                     MOOR_ENOENT);
    assert_int_equal(
        bench_prom_find_hist((const char *)b.ptr, b.len,
                             "etcd_disk_wal_fsync_duration_seconds", NULL, &h),
        MOOR_ENOENT);
    moor_buf_close(&b);
}

static void test_prom_parser_refuses_malformed_histograms(void **st)
{
    (void)st;
    struct bench_prom_hist h;
    const char *no_inf = "x_bucket{le=\"1\"} 1\nx_sum 1\nx_count 1\n";
    assert_int_equal(
        bench_prom_find_hist(no_inf, strlen(no_inf), "x", NULL, &h),
        MOOR_EPROTO);
    const char *desc =
        "x_bucket{le=\"2\"} 1\nx_bucket{le=\"1\"} 1\n"
        "x_bucket{le=\"+Inf\"} 1\nx_sum 1\nx_count 1\n";
    assert_int_equal(bench_prom_find_hist(desc, strlen(desc), "x", NULL, &h),
                     MOOR_EPROTO);
    const char *bad_val = "x_bucket{le=\"+Inf\"} abc\nx_sum 1\nx_count 1\n";
    assert_int_equal(
        bench_prom_find_hist(bad_val, strlen(bad_val), "x", NULL, &h),
        MOOR_EPROTO);
    const char *open_label = "x_bucket{le=\"+Inf} 1\n";
    assert_int_equal(
        bench_prom_find_hist(open_label, strlen(open_label), "x", NULL, &h),
        MOOR_EPROTO);
    const char *no_sum = "x_bucket{le=\"+Inf\"} 1\nx_count 1\n";
    assert_int_equal(
        bench_prom_find_hist(no_sum, strlen(no_sum), "x", NULL, &h),
        MOOR_EPROTO);
    /* Other families with a shared prefix are not ours; CRLF and a
     * timestamp are fine. */
    const char *ok =
        "xy_bucket{le=\"+Inf\"} 9\r\nx_bucket{le=\"+Inf\"} 2 "
        "1700000000\r\nx_sum 3\r\nx_count 2\r\n";
    assert_int_equal(bench_prom_find_hist(ok, strlen(ok), "x", NULL, &h),
                     MOOR_OK);
    assert_true(h.n == 1 && h.counts[0] == 2 && h.sum == 3);
    /* More buckets than the bound. */
    struct moor_buf b;
    moor_buf_init(&b);
    for (int i = 1; i <= BENCH_PROM_BUCKETS_MAX + 1; i++) {
        moor_buf_printf(&b, "x_bucket{le=\"%d\"} 0\n", i);
    }
    moor_buf_printf(&b, "x_bucket{le=\"+Inf\"} 0\nx_sum 0\nx_count 0\n");
    assert_int_equal(
        bench_prom_find_hist((const char *)b.ptr, b.len, "x", NULL, &h),
        MOOR_ETOOBIG);
    moor_buf_close(&b);
}

static struct bench_prom_hist hist_of(const double *le, const double *cum,
                                      size_t n)
{
    struct bench_prom_hist h;
    memset(&h, 0, sizeof(h));
    for (size_t i = 0; i < n; i++) {
        h.le[i] = le[i];
        h.counts[i] = cum[i];
    }
    h.n = n;
    h.count = cum[n - 1];
    return h;
}

static void test_quantile_interpolates_as_prometheus_does(void **st)
{
    (void)st;
    /* Buckets (0,1] 10, (1,2] 10, (2,4] 20, +Inf 0: 40 in all. */
    const double le[] = {1, 2, 4, INFINITY};
    const double cum[] = {10, 20, 40, 40};
    struct bench_prom_hist h = hist_of(le, cum, 4);
    /* rank 20 -> end of bucket 2 */
    assert_true(fabs(bench_prom_quantile(0.5, &h) - 2.0) < 1e-9);
    /* rank 5 -> half of the first bucket, which starts at 0 */
    assert_true(fabs(bench_prom_quantile(0.125, &h) - 0.5) < 1e-9);
    /* rank 30 -> 2 + 2 * (10 / 20) */
    assert_true(fabs(bench_prom_quantile(0.75, &h) - 3.0) < 1e-9);
    /* rank 39.6 -> 2 + 2 * (19.6 / 20) */
    assert_true(fabs(bench_prom_quantile(0.99, &h) - 3.96) < 1e-9);
    assert_true(fabs(bench_prom_quantile(1.0, &h) - 4.0) < 1e-9);
    assert_true(fabs(bench_prom_quantile(0.0, &h) - 0.0) < 1e-9);
    /* In the +Inf bucket: the highest finite bound. */
    const double cum2[] = {10, 20, 40, 50};
    struct bench_prom_hist h2 = hist_of(le, cum2, 4);
    assert_true(bench_prom_quantile(0.99, &h2) == 4.0);
    /* Empty or out of range: NaN. */
    const double zero[] = {0, 0, 0, 0};
    struct bench_prom_hist h3 = hist_of(le, zero, 4);
    assert_true(isnan(bench_prom_quantile(0.5, &h3)));
    assert_true(isnan(bench_prom_quantile(1.5, &h)));
    assert_true(isnan(bench_prom_quantile(-0.1, &h)));
}

static void test_delta_subtracts_scrapes_and_refuses_a_restart(void **st)
{
    (void)st;
    const double le[] = {1, 2, INFINITY};
    const double c1[] = {1, 2, 3};
    const double c2[] = {5, 8, 10};
    struct bench_prom_hist before = hist_of(le, c1, 3);
    struct bench_prom_hist after = hist_of(le, c2, 3);
    before.sum = 1.5;
    after.sum = 9.5;
    struct bench_prom_hist d;
    assert_int_equal(bench_prom_hist_delta(&before, &after, &d), MOOR_OK);
    assert_true(d.counts[0] == 4 && d.counts[1] == 6 && d.counts[2] == 7);
    assert_true(d.count == 7 && d.sum == 8);
    /* Counters went backwards (a restart between the scrapes). */
    assert_int_equal(bench_prom_hist_delta(&after, &before, &d), MOOR_EINVAL);
    /* Different layouts. */
    const double le2[] = {1, 3, INFINITY};
    struct bench_prom_hist other = hist_of(le2, c2, 3);
    assert_int_equal(bench_prom_hist_delta(&before, &other, &d), MOOR_EINVAL);
}

static void test_consensus_stages_come_from_scrape_deltas(void **st)
{
    (void)st;
    /* Before: every stage has 4 observations in its first bucket. After:
     * propose_to_durable gained 10 in (0.0004, 0.0008] (sum +0.006),
     * durable_to_commit 10 in (0.0001, 0.0002] (sum +0.0015), the others 10
     * in the first bucket (sum +0.00025 each). */
    struct moor_buf before;
    struct moor_buf after;
    moor_buf_init(&before);
    moor_buf_init(&after);
    const double b0[] = {4, 0, 0, 0};
    const double a_pd[] = {4, 0, 0, 10};
    const double a_dc[] = {4, 10, 0, 0};
    const double a_x[] = {14, 0, 0, 0};
    for (int i = 0; i < BENCH_STAGES; i++) {
        stage_lines(&before, bench_stage_names[i], b0, 4, 0.0001);
    }
    stage_lines(&after, "propose_to_durable", a_pd, 4, 0.0061);
    stage_lines(&after, "durable_to_commit", a_dc, 4, 0.0016);
    stage_lines(&after, "commit_to_apply", a_x, 4, 0.00035);
    stage_lines(&after, "apply_to_answer", a_x, 4, 0.00035);
    struct bench_prom_summary s[BENCH_STAGES];
    double share[BENCH_STAGES];
    assert_int_equal(
        bench_consensus_stages((const char *)before.ptr, before.len,
                               (const char *)after.ptr, after.len, s, share),
        MOOR_OK);
    for (int i = 0; i < BENCH_STAGES; i++) {
        assert_true(s[i].count == 10);
    }
    assert_true(fabs(s[0].mean - 0.0006) < 1e-12);
    /* p50: rank 5 of 10 in (0.0004, 0.0008] -> 0.0006 */
    assert_true(fabs(s[0].p50 - 0.0006) < 1e-12);
    assert_true(fabs(s[0].p99 - (0.0004 + 0.0004 * 0.99)) < 1e-12);
    assert_true(fabs(s[1].p50 - 0.00015) < 1e-12);
    assert_true(fabs(s[2].p50 - 0.00005) < 1e-12);
    double total = 0.006 + 0.0015 + 0.00025 + 0.00025;
    assert_true(fabs(share[0] - 0.006 / total) < 1e-9);
    assert_true(fabs(share[0] + share[1] + share[2] + share[3] - 1) < 1e-9);

    /* A server without the stage histograms (etcd). */
    const char *etcd =
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"}"
        " 3\netcd_disk_wal_fsync_duration_seconds_bucket{le=\""
        "+Inf\"} 4\netcd_disk_wal_fsync_duration_seconds_sum "
        "0.01\netcd_disk_wal_fsync_duration_seconds_count 4\n";
    assert_int_equal(bench_consensus_stages(etcd, strlen(etcd), etcd,
                                            strlen(etcd), s, share),
                     MOOR_ENOENT);
    struct bench_prom_summary f;
    assert_int_equal(
        bench_prom_summary(etcd, strlen(etcd), etcd, strlen(etcd),
                           "etcd_disk_wal_fsync_duration_seconds", NULL, &f),
        MOOR_OK);
    assert_true(f.count == 0 && isnan(f.mean) && isnan(f.p50));
    moor_buf_close(&before);
    moor_buf_close(&after);
}

/* ------------------------------------------------------------------------
 * HTTP/1.1 bodies
 * ---------------------------------------------------------------------- */
static int body_of(const char *resp, struct moor_buf *body)
{
    char msg[MOOR_ERRMSG_SIZE];
    moor_buf_reset(body);
    return bench_http_body((const uint8_t *)resp, strlen(resp), body, msg);
}

static void test_http_body_reads_length_chunked_and_eof_bodies(void **st)
{
    (void)st;
    struct moor_buf b;
    moor_buf_init(&b);
    assert_int_equal(body_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                             "hello",
                             &b),
                     MOOR_OK);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.ptr, "hello", 5);
    assert_int_equal(body_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                             "\r\n\r\n3\r\nabc\r\na;x=1\r\n0123456789\r\n0\r\n"
                             "\r\n",
                             &b),
                     MOOR_OK);
    assert_int_equal(b.len, 13);
    assert_memory_equal(b.ptr, "abc0123456789", 13);
    assert_int_equal(body_of("HTTP/1.0 200 OK\r\n\r\nto the end", &b), MOOR_OK);
    assert_int_equal(b.len, 10);
    /* Refused: truncated, malformed, not 200. */
    assert_int_equal(
        body_of("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", &b),
        MOOR_EPROTO);
    assert_int_equal(body_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                             "\r\n\r\n5\r\nab",
                             &b),
                     MOOR_EPROTO);
    assert_int_equal(body_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                             "\r\n\r\nzz\r\n",
                             &b),
                     MOOR_EPROTO);
    assert_int_equal(body_of("HTTP/1.1 404 Not Found\r\n\r\n", &b), MOOR_EIO);
    assert_int_equal(body_of("SSH-2.0\r\n\r\n", &b), MOOR_EPROTO);
    assert_int_equal(body_of("HTTP/1.1 200 OK\r\n", &b), MOOR_EPROTO);
    moor_buf_close(&b);
}

static void test_http_get_refuses_urls_off_loopback(void **st)
{
    (void)st;
    struct moor_buf b;
    moor_buf_init(&b);
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(
        bench_http_get("http://10.0.0.1:2379/metrics", 100, &b, msg),
        MOOR_EINVAL);
    assert_int_equal(
        bench_http_get("http://example.com:2379/metrics", 100, &b, msg),
        MOOR_EINVAL);
    assert_int_equal(
        bench_http_get("https://127.0.0.1:2379/metrics", 100, &b, msg),
        MOOR_EINVAL);
    assert_int_equal(bench_http_get("http://127.0.0.1/metrics", 100, &b, msg),
                     MOOR_EINVAL);
    moor_buf_close(&b);
}

/* ------------------------------------------------------------------------
 * WatchResponse scan
 * ---------------------------------------------------------------------- */
struct keys_seen
{
    int n;
    char keys[4][16];
};

static void note_key(const uint8_t *key, size_t len, void *arg)
{
    struct keys_seen *k = arg;
    assert_true(k->n < 4 && len < 16);
    memcpy(k->keys[k->n], key, len);
    k->keys[k->n][len] = 0;
    k->n++;
}

static void test_watch_scan_counts_events_and_reads_their_keys(void **st)
{
    (void)st;
    Mvccpb__KeyValue kv[3];
    Mvccpb__Event ev[3];
    Mvccpb__Event *evp[3];
    const char *names[] = {"w/1", "w/22", "w/333"};
    for (int i = 0; i < 3; i++) {
        mvccpb__key_value__init(&kv[i]);
        kv[i].key.data = (uint8_t *)(uintptr_t)names[i];
        kv[i].key.len = strlen(names[i]);
        kv[i].value.data = (uint8_t *)(uintptr_t) "value";
        kv[i].value.len = 5;
        kv[i].mod_revision = 100 + i;
        mvccpb__event__init(&ev[i]);
        ev[i].kv = &kv[i];
        ev[i].prev_kv = i == 2 ? &kv[0] : NULL; /* its key is not reported */
        evp[i] = &ev[i];
    }
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.revision = 102;
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.header = &h;
    r.watch_id = 7;
    r.n_events = 3;
    r.events = evp;
    uint8_t buf[512];
    size_t n = protobuf_c_message_pack(&r.base, buf);
    struct bench_watch_scan scan;
    struct keys_seen k = {0, {{0}}};
    assert_int_equal(bench_watch_scan(buf, n, &scan, note_key, &k), MOOR_OK);
    assert_int_equal(scan.events, 3);
    assert_false(scan.created);
    assert_false(scan.canceled);
    assert_int_equal(k.n, 3);
    assert_string_equal(k.keys[0], "w/1");
    assert_string_equal(k.keys[2], "w/333");
    /* Every truncation is refused or counts fewer events, never more. */
    for (size_t cut = 0; cut < n; cut++) {
        int rv = bench_watch_scan(buf, cut, &scan, NULL, NULL);
        assert_true(rv == MOOR_EPROTO || scan.events < 3);
    }
    /* created and canceled. */
    Etcdserverpb__WatchResponse c = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    c.created = 1;
    n = protobuf_c_message_pack(&c.base, buf);
    assert_int_equal(bench_watch_scan(buf, n, &scan, NULL, NULL), MOOR_OK);
    assert_true(scan.created && !scan.canceled && scan.events == 0);
    c.created = 0;
    c.canceled = 1;
    c.cancel_reason = (char *)(uintptr_t) "mvcc: required revision has been "
                                          "compacted";
    n = protobuf_c_message_pack(&c.base, buf);
    assert_int_equal(bench_watch_scan(buf, n, &scan, NULL, NULL), MOOR_OK);
    assert_true(scan.canceled && !scan.created);
    /* A bad wire type. */
    const uint8_t bad[] = {0x0b, 0x01};
    assert_int_equal(bench_watch_scan(bad, sizeof(bad), &scan, NULL, NULL),
                     MOOR_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_keygen_sequential_keys_cycle_through_the_key_space),
        cmocka_unit_test(
            test_keygen_random_keys_stay_in_the_space_and_cover_it),
        cmocka_unit_test(test_keygen_keys_have_exactly_key_size_bytes),
        cmocka_unit_test(test_rate_limiter_spaces_requests_at_the_rate),
        cmocka_unit_test(test_prefix_end_is_etcds),
        cmocka_unit_test(test_k8s_keys_follow_the_api_servers_layout),
        cmocka_unit_test(test_k8s_list_continues_after_the_last_key),
        cmocka_unit_test(test_prom_parser_finds_one_labelled_histogram),
        cmocka_unit_test(test_prom_parser_refuses_malformed_histograms),
        cmocka_unit_test(test_quantile_interpolates_as_prometheus_does),
        cmocka_unit_test(test_delta_subtracts_scrapes_and_refuses_a_restart),
        cmocka_unit_test(test_consensus_stages_come_from_scrape_deltas),
        cmocka_unit_test(test_http_body_reads_length_chunked_and_eof_bodies),
        cmocka_unit_test(test_http_get_refuses_urls_off_loopback),
        cmocka_unit_test(test_watch_scan_counts_events_and_reads_their_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
