/*
 * test_rpc_wire.c: rpc/'s pure pieces: gRPC message framing, grpc-timeout,
 * grpc-message percent-encoding, endpoint URLs, HTTP/1.x request heads,
 * the deadline heap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rpc/rpc_int.h"

struct msgs
{
    int count;
    struct moor_buf all; /* messages concatenated, each prefixed by len */
    int stop_after;
};

static int collect(struct moor_slice m, void *arg)
{
    struct msgs *c = arg;
    uint8_t l[4];
    moor_put_be32(l, (uint32_t)m.len);
    moor_buf_append(&c->all, l, 4);
    moor_buf_append(&c->all, m.ptr, m.len);
    c->count++;
    return c->stop_after > 0 && c->count >= c->stop_after ? 7 : 0;
}

static void frame(struct moor_buf *b, const char *s)
{
    uint8_t p[RPC__PREFIX];
    rpc__prefix_put(p, (uint32_t)strlen(s));
    moor_buf_append(b, p, sizeof(p));
    moor_buf_append(b, s, strlen(s));
}

static void test_rpc_deframer_handles_every_split_point(void **state)
{
    (void)state;
    struct moor_buf in;
    moor_buf_init(&in);
    frame(&in, "hello");
    frame(&in, "");
    frame(&in, "a longer message that spans chunks");
    for (size_t split = 0; split <= in.len; split++) {
        struct rpc__deframer d;
        rpc__deframer_init(&d, NULL);
        struct msgs c = {0, {NULL, 0, 0}, 0};
        int status = -1;
        char err[MOOR_ERRMSG_SIZE];
        assert_int_equal(rpc__deframer_feed(&d, in.ptr, split, 1024, collect,
                                            &c, &status, err),
                         MOOR_OK);
        assert_int_equal(rpc__deframer_feed(&d, in.ptr + split, in.len - split,
                                            1024, collect, &c, &status, err),
                         MOOR_OK);
        assert_int_equal(c.count, 3);
        assert_true(rpc__deframer_idle(&d));
        /* 4+5, 4+0, 4+34 */
        assert_int_equal(c.all.len, 4 + 5 + 4 + 4 + 34);
        assert_memory_equal(c.all.ptr + 4, "hello", 5);
        moor_buf_close(&c.all);
        rpc__deframer_close(&d);
    }
    /* Byte by byte. */
    struct rpc__deframer d;
    rpc__deframer_init(&d, NULL);
    struct msgs c = {0, {NULL, 0, 0}, 0};
    int status = -1;
    char err[MOOR_ERRMSG_SIZE];
    for (size_t i = 0; i < in.len; i++) {
        assert_int_equal(rpc__deframer_feed(&d, in.ptr + i, 1, 1024, collect,
                                            &c, &status, err),
                         MOOR_OK);
        assert_true(rpc__deframer_idle(&d) ==
                    (i == 9 || i == 14 || i == in.len - 1));
    }
    assert_int_equal(c.count, 3);
    moor_buf_close(&c.all);
    rpc__deframer_close(&d);
    moor_buf_close(&in);
}

static void test_rpc_deframer_refuses_bad_messages_with_grpc_statuses(
    void **state)
{
    (void)state;
    struct
    {
        uint8_t prefix[5];
        int status;
        const char *needle;
    } cases[] = {
        {{1, 0, 0, 0, 1}, RPC_UNIMPLEMENTED, "compressed"},
        {{2, 0, 0, 0, 1}, RPC_INTERNAL, "invalid compressed flag 2"},
        {{0, 0, 0, 4, 1},
         RPC_RESOURCE_EXHAUSTED,
         "larger than max (1025 vs. 1024)"},
        {{0, 0xff, 0xff, 0xff, 0xff}, RPC_RESOURCE_EXHAUSTED, "4294967295"},
    };
    for (size_t i = 0; i < MOOR_ARRAY_LEN(cases); i++) {
        struct rpc__deframer d;
        rpc__deframer_init(&d, NULL);
        struct msgs c = {0, {NULL, 0, 0}, 0};
        int status = -1;
        char err[MOOR_ERRMSG_SIZE] = "";
        assert_int_equal(rpc__deframer_feed(&d, cases[i].prefix, 5, 1024,
                                            collect, &c, &status, err),
                         RPC__EFRAME);
        assert_int_equal(status, cases[i].status);
        assert_non_null(strstr(err, cases[i].needle));
        assert_int_equal(c.count, 0);
        rpc__deframer_close(&d);
    }
}

static void test_rpc_deframer_stops_when_the_callback_says_so(void **state)
{
    (void)state;
    struct moor_buf in;
    moor_buf_init(&in);
    frame(&in, "one");
    frame(&in, "two");
    struct rpc__deframer d;
    rpc__deframer_init(&d, NULL);
    struct msgs c = {0, {NULL, 0, 0}, 1};
    int status;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(
        rpc__deframer_feed(&d, in.ptr, in.len, 1024, collect, &c, &status, err),
        7);
    assert_int_equal(c.count, 1);
    moor_buf_close(&c.all);
    moor_buf_close(&in);
    rpc__deframer_close(&d);
}

/* A partial message's buffer is charged to the budget (and its parent) as
 * it grows, never beyond the announced length; a buffer the budget cannot
 * cover ends the message RESOURCE_EXHAUSTED; delivery and close give the
 * bytes back. */
static void test_rpc_deframer_charges_partial_messages_to_its_budget(
    void **state)
{
    (void)state;
    struct rpc__budget top = {0, 12000, NULL};
    struct rpc__budget conn = {0, 1u << 20, &top};
    uint8_t prefix[5] = {0, 0, 0, 0x27, 0x10}; /* 10,000 bytes */
    uint8_t body[10000];
    memset(body, 'b', sizeof(body));
    struct msgs c = {0, {NULL, 0, 0}, 0};
    int status = -1;
    char err[MOOR_ERRMSG_SIZE] = "";
    struct rpc__deframer a;
    rpc__deframer_init(&a, &conn);
    assert_int_equal(
        rpc__deframer_feed(&a, prefix, 5, 1u << 20, collect, &c, &status, err),
        MOOR_OK);
    assert_int_equal(conn.used, 0); /* a prefix costs no buffer */
    assert_int_equal(
        rpc__deframer_feed(&a, body, 100, 1u << 20, collect, &c, &status, err),
        MOOR_OK);
    assert_int_equal(conn.used, 4096);
    assert_int_equal(top.used, 4096);
    assert_int_equal(rpc__deframer_held(&a), 105);
    assert_int_equal(
        rpc__deframer_feed(&a, body, 5000, 1u << 20, collect, &c, &status, err),
        MOOR_OK);
    assert_int_equal(conn.used, 8192); /* doubled */
    /* A second message on another stream finds the top budget short even
     * for an exact fit. */
    struct rpc__deframer b;
    rpc__deframer_init(&b, &conn);
    assert_int_equal(
        rpc__deframer_feed(&b, prefix, 5, 1u << 20, collect, &c, &status, err),
        MOOR_OK);
    assert_int_equal(
        rpc__deframer_feed(&b, body, 3900, 1u << 20, collect, &c, &status, err),
        RPC__EFRAME);
    assert_int_equal(status, RPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err, "8192 of 12000 bytes"));
    assert_non_null(strstr(err, "of all connections"));
    assert_int_equal(top.used, 8192);
    rpc__deframer_close(&b);
    /* An exact fit still goes through. */
    rpc__deframer_init(&b, &conn);
    assert_int_equal(
        rpc__deframer_feed(&b, prefix, 5, 1u << 20, collect, &c, &status, err),
        MOOR_OK);
    assert_int_equal(
        rpc__deframer_feed(&b, body, 3000, 1u << 20, collect, &c, &status, err),
        MOOR_OK);
    assert_int_equal(top.used, 8192 + 3000);
    rpc__deframer_close(&b);
    assert_int_equal(top.used, 8192);
    /* The rest of a's message: its buffer grows to the announced length
     * and no further, then the message is delivered, the buffer freed and
     * the budget given back. */
    assert_int_equal(
        rpc__deframer_feed(&a, body, 4000, 1u << 20, collect, &c, &status, err),
        MOOR_OK);
    assert_int_equal(conn.used, 10000);
    assert_int_equal(
        rpc__deframer_feed(&a, body, 900, 1u << 20, collect, &c, &status, err),
        MOOR_OK);
    assert_int_equal(c.count, 1);
    assert_true(rpc__deframer_idle(&a));
    assert_int_equal(conn.used, 0);
    assert_int_equal(top.used, 0);
    rpc__deframer_close(&a);
    moor_buf_close(&c.all);
}

static void test_rpc_timeout_parses_every_unit_and_refuses_junk(void **state)
{
    (void)state;
    struct
    {
        const char *s;
        uint64_t ms;
    } ok[] = {{"1H", 3600000}, {"2M", 120000},
              {"3S", 3000},    {"4m", 4},
              {"1500u", 2},    {"1n", 1},
              {"0m", 0},       {"99999999S", 99999999000ull}};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(ok); i++) {
        uint64_t ms = 12345;
        assert_int_equal(rpc__timeout_parse(ok[i].s, strlen(ok[i].s), &ms),
                         MOOR_OK);
        assert_int_equal(ms, ok[i].ms);
    }
    const char *bad[] = {"", "S", "5", "5x", "-5S", "123456789S", "5 S"};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(bad); i++) {
        uint64_t ms;
        assert_int_equal(rpc__timeout_parse(bad[i], strlen(bad[i]), &ms),
                         MOOR_EINVAL);
    }
    /* Formatting never shortens a deadline and always parses back. */
    uint64_t vals[] = {1, 999, 100000000ull, 99999999999ull, UINT64_MAX / 2};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(vals); i++) {
        char out[16];
        rpc__timeout_format(vals[i], out);
        uint64_t back;
        assert_int_equal(rpc__timeout_parse(out, strlen(out), &back), MOOR_OK);
        assert_true(back >= MOOR_MIN(vals[i], 99999999ull * 3600000));
    }
}

static void test_rpc_grpc_message_percent_encoding_roundtrips(void **state)
{
    (void)state;
    const char *s = "50% done: \xc3\xa9t\xc3\xa9\r\n\ttab~";
    struct moor_buf b;
    moor_buf_init(&b);
    assert_int_equal(rpc__pct_encode(s, &b), MOOR_OK);
    moor_buf_putc(&b, 0);
    assert_string_equal((char *)b.ptr,
                        "50%25 done: %C3%A9t%C3%A9%0D%0A%09tab~");
    char out[128];
    rpc__pct_decode(b.ptr, b.len - 1, out, sizeof(out));
    assert_string_equal(out, s);
    /* Invalid escapes pass through; output is truncated safely. */
    rpc__pct_decode((const uint8_t *)"%zz%4", 5, out, sizeof(out));
    assert_string_equal(out, "%zz%4");
    rpc__pct_decode((const uint8_t *)"abcdef", 6, out, 4);
    assert_string_equal(out, "abc");
    moor_buf_close(&b);
}

static void test_rpc_url_parse_accepts_etcd_endpoint_forms(void **state)
{
    (void)state;
    char host[64];
    uint16_t port;
    bool tls;
    assert_int_equal(
        rpc_url_parse("127.0.0.1:2379", host, sizeof(host), &port, &tls),
        MOOR_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 2379);
    assert_false(tls);
    assert_int_equal(rpc_url_parse("https://node-1.example:2379/", host,
                                   sizeof(host), &port, &tls),
                     MOOR_OK);
    assert_string_equal(host, "node-1.example");
    assert_true(tls);
    assert_int_equal(
        rpc_url_parse("http://[::1]:23790", host, sizeof(host), &port, &tls),
        MOOR_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 23790);
    const char *bad[] = {"",           "localhost", "host:", "host:70000",
                         "unix://x:1", "::1:2379",  "h:12x", "http://:2379",
                         "[::1:2379",  "h:1/x"};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(bad); i++) {
        assert_int_equal(rpc_url_parse(bad[i], host, sizeof(host), &port, &tls),
                         MOOR_EINVAL);
    }
    assert_int_equal(
        rpc_url_parse("averyveryverylonghostname:1", host, 8, &port, &tls),
        MOOR_EINVAL);
}

static void test_rpc_http1_parse_reads_request_lines(void **state)
{
    (void)state;
    char m[16];
    char t[64];
    const char *req = "GET /health?x=1 HTTP/1.1\r\nHost: a\r\n\r\nextra";
    int n = rpc__http1_parse((const uint8_t *)req, strlen(req), m, sizeof(m), t,
                             sizeof(t));
    assert_int_equal(n, (int)(strstr(req, "extra") - req));
    assert_string_equal(m, "GET");
    assert_string_equal(t, "/health?x=1");
    /* Incomplete: need more. */
    assert_int_equal(
        rpc__http1_parse((const uint8_t *)req, 20, m, sizeof(m), t, sizeof(t)),
        0);
    const char *bad[] = {"get / HTTP/1.1\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n",
                         "GET / HTTP/2.0\r\n\r\n", "GET /\r\n\r\n",
                         "GET / HTTP/1.1 x\r\n\r\n"};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(bad); i++) {
        assert_int_equal(
            rpc__http1_parse((const uint8_t *)bad[i], strlen(bad[i]), m,
                             sizeof(m), t, sizeof(t)),
            MOOR_EPROTO);
    }
    /* A target longer than the buffer is refused, not truncated. */
    assert_int_equal(
        rpc__http1_parse((const uint8_t *)req, strlen(req), m, sizeof(m), t, 5),
        MOOR_EPROTO);
}

static void test_rpc_deadline_heap_pops_in_order_under_random_removal(
    void **state)
{
    (void)state;
    enum { N = 2000 };
    struct rpc__deadline *d = calloc(N, sizeof(*d));
    struct rpc__heap h;
    rpc__heap_init(&h);
    struct moor_prng r;
    moor_prng_seed(&r, 42);
    for (int i = 0; i < N; i++) {
        d[i].at_ms = moor_prng_below(&r, 1000);
        d[i].idx = RPC__NOT_IN_HEAP;
        assert_int_equal(rpc__heap_push(&h, &d[i]), MOOR_OK);
    }
    /* Remove a random third. */
    for (int i = 0; i < N; i++) {
        if (moor_prng_below(&r, 3) == 0) {
            rpc__heap_remove(&h, &d[i]);
            assert_int_equal(d[i].idx, RPC__NOT_IN_HEAP);
            rpc__heap_remove(&h, &d[i]); /* twice: a no-op */
        }
    }
    uint64_t last = 0;
    uint32_t left = h.len;
    for (uint32_t i = 0; i < left; i++) {
        struct rpc__deadline *top = rpc__heap_top(&h);
        assert_non_null(top);
        assert_true(top->at_ms >= last);
        last = top->at_ms;
        rpc__heap_remove(&h, top);
    }
    assert_null(rpc__heap_top(&h));
    rpc__heap_close(&h);
    free(d);
}

static void test_rpc_status_names_cover_the_table(void **state)
{
    (void)state;
    assert_string_equal(rpc_status_name(RPC_OK), "OK");
    assert_string_equal(rpc_status_name(RPC_DEADLINE_EXCEEDED),
                        "DEADLINE_EXCEEDED");
    assert_string_equal(rpc_status_name(RPC_UNAUTHENTICATED),
                        "UNAUTHENTICATED");
    assert_string_equal(rpc_status_name(17), "UNKNOWN");
    assert_string_equal(rpc_status_name(-1), "UNKNOWN");
}

int main(void)
{
    if (rpc_global_init() != MOOR_OK) {
        fprintf(stderr, "rpc_global_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpc_deframer_handles_every_split_point),
        cmocka_unit_test(
            test_rpc_deframer_charges_partial_messages_to_its_budget),
        cmocka_unit_test(
            test_rpc_deframer_refuses_bad_messages_with_grpc_statuses),
        cmocka_unit_test(test_rpc_deframer_stops_when_the_callback_says_so),
        cmocka_unit_test(test_rpc_timeout_parses_every_unit_and_refuses_junk),
        cmocka_unit_test(test_rpc_grpc_message_percent_encoding_roundtrips),
        cmocka_unit_test(test_rpc_url_parse_accepts_etcd_endpoint_forms),
        cmocka_unit_test(test_rpc_http1_parse_reads_request_lines),
        cmocka_unit_test(
            test_rpc_deadline_heap_pops_in_order_under_random_removal),
        cmocka_unit_test(test_rpc_status_names_cover_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
