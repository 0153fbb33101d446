/*
 * test_rpc_loopback.c: rpc/'s server and client against each other on
 * 127.0.0.1, with a small test service:
 *   /test.Echo/Unary         echoes the one request
 *   /test.Echo/Stream        request "count size": count messages of size
 *                            bytes (each starting with its sequence
 *                            number), sent under back-pressure
 *   /test.Echo/Bidi          echoes every message, OK on half-close
 *   /test.Echo/Hang          answers nothing until the test says so
 *   /test.Echo/Fail          finishes with the status and message asked
 *   /test.Echo/Meta          answers the value of metadata "token"
 * Every test ends by closing client and server, running the loop until
 * both are freed, and checking that the loop closes and no moor
 * allocation is left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rpc/rpc.h"

/* Callbacks that end a wait call uv_stop, so uv_run(UV_RUN_ONCE) returns
 * even when they fire in the timer phase (nothing else would wake poll). */
static uv_loop_t *g_loop;

struct fx
{
    uv_loop_t loop;
    struct rpc_server *srv;
    struct rpc_client *cl;
    uint16_t port;
    size_t alloc_before;
    /* server-side observations */
    int hang_started;
    int hang_done;
    int hang_status;
    struct rpc_call *hang_call;
    struct rpc_call **hang_all; /* when set: every started Hang call */
    int hang_all_len;
    int stream_sent;
    int stream_count;
    size_t stream_size;
    int stream_eagain;
    int stream_writable;
    int bidi_done;
    bool closed_srv;
    bool closed_cl;
};

/* ------------------------------------------------------------------------
 * The test service
 * ---------------------------------------------------------------------- */
static void unary_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    /* Only allocation-failure injection makes these fail. */
    if (rpc_call_send(call, msg) != MOOR_OK) {
        rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "send failed");
        return;
    }
    rpc_call_finish(call, RPC_OK, NULL);
}

/* Per-call state of a Stream call (f->stream_* are totals the tests
 * read: the last call's parameters and messages sent). */
struct streamer
{
    uint32_t sent;
    uint32_t count;
    size_t size;
};

static void stream_pump(struct rpc_call *call, struct fx *f)
{
    struct streamer *st = rpc_call_user(call);
    uint8_t buf[65536];
    memset(buf, 'x', sizeof(buf));
    while (st->sent < st->count) {
        moor_put_be32(buf, st->sent);
        int rv = rpc_call_send(call, moor_slice_make(buf, st->size));
        if (rv == MOOR_EAGAIN) {
            f->stream_eagain++;
            return; /* writable_cb resumes */
        }
        if (rv != MOOR_OK) {
            /* Only allocation-failure injection gets here. */
            rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "send failed");
            return;
        }
        st->sent++;
        f->stream_sent++;
    }
    rpc_call_finish(call, RPC_OK, NULL);
}

static void stream_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct fx *f = arg;
    char req[64];
    snprintf(req, sizeof(req), "%.*s", (int)MOOR_MIN(msg.len, 63),
             (const char *)msg.ptr);
    unsigned count = 0;
    unsigned size = 0;
    assert_int_equal(sscanf(req, "%u %u", &count, &size), 2);
    struct streamer *st = calloc(1, sizeof(*st));
    st->count = count;
    st->size = MOOR_MAX(size, 4u);
    rpc_call_set_user(call, st);
    f->stream_count = (int)count;
    f->stream_size = st->size;
    f->stream_sent = 0;
    stream_pump(call, f);
}

static void stream_writable(struct rpc_call *call, void *arg)
{
    struct fx *f = arg;
    f->stream_writable++;
    stream_pump(call, f);
}

static void stream_done(struct rpc_call *call, int status, void *arg)
{
    (void)status;
    (void)arg;
    free(rpc_call_user(call));
}

static void bidi_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    assert_int_equal(rpc_call_send(call, msg), MOOR_OK);
}

static void bidi_half_close(struct rpc_call *call, void *arg)
{
    (void)arg;
    assert_int_equal(rpc_call_finish(call, RPC_OK, NULL), MOOR_OK);
}

static void bidi_done(struct rpc_call *call, int status, void *arg)
{
    (void)call;
    (void)status;
    struct fx *f = arg;
    f->bidi_done++;
}

static void hang_start(struct rpc_call *call, void *arg)
{
    struct fx *f = arg;
    f->hang_started++;
    f->hang_call = call;
    if (f->hang_all != NULL) {
        f->hang_all[f->hang_all_len++] = call;
    }
}

static void hang_done(struct rpc_call *call, int status, void *arg)
{
    uv_stop(g_loop);
    struct fx *f = arg;
    f->hang_done++;
    f->hang_status = status;
    if (f->hang_call == call) {
        f->hang_call = NULL;
    }
}

static void failing_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    char req[256];
    snprintf(req, sizeof(req), "%.*s", (int)MOOR_MIN(msg.len, 255),
             (const char *)msg.ptr);
    char *sp = strchr(req, ' ');
    assert_non_null(sp);
    *sp = '\0';
    assert_int_equal(rpc_call_finish(call, atoi(req), sp + 1), MOOR_OK);
}

static void meta_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    (void)msg;
    const char *v = rpc_call_metadata(call, "token");
    assert_int_equal(rpc_call_send(call, moor_slice_str(v != NULL ? v : "")),
                     MOOR_OK);
    rpc_call_finish(call, RPC_OK, NULL);
}

static int http_fn(const char *path, struct rpc_http_response *resp, void *arg)
{
    (void)arg;
    if (strcmp(path, "/health") == 0) {
        resp->content_type = "application/json";
        return moor_buf_printf(&resp->body, "{\"health\":\"true\"}");
    }
    resp->status = 404;
    return moor_buf_printf(&resp->body, "no such page\n");
}

static void add_methods(struct rpc_server *srv, struct fx *f)
{
    static const struct rpc_method_ops unary = {NULL, unary_msg, NULL, NULL,
                                                NULL};
    static const struct rpc_method_ops stream = {NULL, stream_msg, NULL,
                                                 stream_writable, stream_done};
    static const struct rpc_method_ops bidi = {NULL, bidi_msg, bidi_half_close,
                                               NULL, bidi_done};
    static const struct rpc_method_ops hang = {hang_start, NULL, NULL, NULL,
                                               hang_done};
    static const struct rpc_method_ops fail = {NULL, failing_msg, NULL, NULL,
                                               NULL};
    static const struct rpc_method_ops meta = {NULL, meta_msg, NULL, NULL,
                                               NULL};
    assert_int_equal(rpc_server_add_method(srv, "/test.Echo/Unary", &unary, f),
                     MOOR_OK);
    assert_int_equal(
        rpc_server_add_method(srv, "/test.Echo/Stream", &stream, f), MOOR_OK);
    assert_int_equal(rpc_server_add_method(srv, "/test.Echo/Bidi", &bidi, f),
                     MOOR_OK);
    assert_int_equal(rpc_server_add_method(srv, "/test.Echo/Hang", &hang, f),
                     MOOR_OK);
    assert_int_equal(rpc_server_add_method(srv, "/test.Echo/Fail", &fail, f),
                     MOOR_OK);
    assert_int_equal(rpc_server_add_method(srv, "/test.Echo/Meta", &meta, f),
                     MOOR_OK);
    assert_int_equal(rpc_server_add_method(srv, "/test.Echo/Unary", &unary, f),
                     MOOR_EEXIST);
}

/* ------------------------------------------------------------------------
 * Fixture
 * ---------------------------------------------------------------------- */
static void start_server(struct fx *f, struct rpc_server_config *scfg,
                         uint16_t port)
{
    char err[MOOR_ERRMSG_SIZE] = "";
    assert_int_equal(rpc_server_open(&f->loop, scfg, &f->srv, err), MOOR_OK);
    add_methods(f->srv, f);
    assert_int_equal(
        rpc_server_listen(f->srv, "127.0.0.1", port, false, &f->port, err),
        MOOR_OK);
    f->closed_srv = false;
}

static void start_client(struct fx *f, struct rpc_client_config *ccfg)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "127.0.0.1:%u", f->port);
    const char *eps[] = {ep};
    struct rpc_client_config def;
    memset(&def, 0, sizeof(def));
    if (ccfg == NULL) {
        ccfg = &def;
    }
    if (ccfg->endpoints == NULL) {
        ccfg->endpoints = eps;
        ccfg->endpoints_len = 1;
    }
    char err[MOOR_ERRMSG_SIZE] = "";
    assert_int_equal(rpc_client_open(&f->loop, ccfg, &f->cl, err), MOOR_OK);
    f->closed_cl = false;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->alloc_before = moor_alloc_bytes();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    g_loop = &f->loop;
    struct rpc_server_config scfg;
    memset(&scfg, 0, sizeof(scfg));
    scfg.http_fn = http_fn;
    start_server(f, &scfg, 0);
    start_client(f, NULL);
    *state = f;
    return 0;
}

static void set_flag(void *arg)
{
    uv_stop(g_loop);
    *(bool *)arg = true;
}

static void run_until(struct fx *f, const bool *flag)
{
    while (!*flag) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void close_server(struct fx *f)
{
    if (f->srv != NULL) {
        rpc_server_close(f->srv, 1000, set_flag, &f->closed_srv);
        f->srv = NULL;
        run_until(f, &f->closed_srv);
    }
}

static void close_client(struct fx *f)
{
    if (f->cl != NULL) {
        rpc_client_close(f->cl, set_flag, &f->closed_cl);
        f->cl = NULL;
        run_until(f, &f->closed_cl);
    }
}

static int teardown(void **state)
{
    struct fx *f = *state;
    close_client(f);
    close_server(f);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(moor_alloc_bytes(), f->alloc_before);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------------
 * Client-side helpers
 * ---------------------------------------------------------------------- */
struct result
{
    bool done;
    int status;
    char message[MOOR_ERRMSG_SIZE];
    struct moor_buf resp;
    int messages;
    uint64_t bytes;
    bool in_order;
    struct rpc_stream *s;
    bool pause_on_first;
};

static void result_init(struct result *r)
{
    memset(r, 0, sizeof(*r));
    moor_buf_init(&r->resp);
    r->in_order = true;
    r->status = -1;
}

static void unary_cb(int status, const char *message, struct moor_slice resp,
                     void *arg)
{
    uv_stop(g_loop);
    struct result *r = arg;
    r->done = true;
    r->status = status;
    snprintf(r->message, sizeof(r->message), "%s", message);
    moor_buf_append(&r->resp, resp.ptr, resp.len);
}

static void s_message(struct rpc_stream *s, struct moor_slice msg, void *arg)
{
    struct result *r = arg;
    if (msg.len >= 4 && moor_get_be32(msg.ptr) != (uint32_t)r->messages) {
        r->in_order = false;
    }
    r->messages++;
    r->bytes += msg.len;
    if (r->pause_on_first && r->messages == 1) {
        rpc_stream_pause(s, true);
    }
}

static void s_done(struct rpc_stream *s, int status, const char *message,
                   void *arg)
{
    uv_stop(g_loop);
    (void)s;
    struct result *r = arg;
    r->done = true;
    r->status = status;
    r->s = NULL;
    snprintf(r->message, sizeof(r->message), "%s", message);
}

static const struct rpc_stream_ops s_ops = {s_message, NULL, s_done};

static int call_sync(struct fx *f, const char *path, const char *req,
                     struct moor_buf *resp, char *msg)
{
    return rpc_client_unary_sync(f->cl, path, NULL, 0, moor_slice_str(req),
                                 5000, resp, msg);
}

/* ------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------- */
static void test_rpc_unary_echo_roundtrips_small_empty_and_large(void **state)
{
    struct fx *f = *state;
    size_t sizes[] = {0, 1, 5, 100, 16384, 16385, 1u << 20};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(sizes); i++) {
        uint8_t *req = malloc(sizes[i] + 1);
        for (size_t j = 0; j < sizes[i]; j++) {
            req[j] = (uint8_t)(j * 31 + i);
        }
        struct moor_buf resp;
        moor_buf_init(&resp);
        char msg[MOOR_ERRMSG_SIZE];
        int st = rpc_client_unary_sync(f->cl, "/test.Echo/Unary", NULL, 0,
                                       moor_slice_make(req, sizes[i]), 5000,
                                       &resp, msg);
        assert_int_equal(st, RPC_OK);
        assert_int_equal(resp.len, sizes[i]);
        assert_true(sizes[i] == 0 || memcmp(resp.ptr, req, sizes[i]) == 0);
        moor_buf_close(&resp);
        free(req);
    }
    assert_int_equal(rpc_client_conn_count(f->cl), 1);
}

static void test_rpc_unknown_method_and_service_are_unimplemented(void **state)
{
    struct fx *f = *state;
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(call_sync(f, "/test.Echo/Nope", "x", &resp, msg),
                     RPC_UNIMPLEMENTED);
    assert_string_equal(msg, "unknown method Nope for service test.Echo");
    assert_int_equal(call_sync(f, "/other.Svc/M", "x", &resp, msg),
                     RPC_UNIMPLEMENTED);
    assert_string_equal(msg, "unknown service other.Svc");
    assert_int_equal(resp.len, 0);
    moor_buf_close(&resp);
}

static void test_rpc_status_and_message_cross_percent_encoded(void **state)
{
    struct fx *f = *state;
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    const char *text = "etcdserver: 100% sure \xc3\xbc\nnext line";
    char req[128];
    snprintf(req, sizeof(req), "%d %s", RPC_FAILED_PRECONDITION, text);
    assert_int_equal(call_sync(f, "/test.Echo/Fail", req, &resp, msg),
                     RPC_FAILED_PRECONDITION);
    assert_string_equal(msg, text);
    moor_buf_close(&resp);
}

static void test_rpc_metadata_reaches_the_handler(void **state)
{
    struct fx *f = *state;
    struct rpc_metadata md[] = {{"token", "secret.123"}, {"x-other", "1"}};
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    int st = rpc_client_unary_sync(f->cl, "/test.Echo/Meta", md, 2,
                                   moor_slice_str(""), 5000, &resp, msg);
    assert_int_equal(st, RPC_OK);
    assert_int_equal(resp.len, strlen("secret.123"));
    assert_memory_equal(resp.ptr, "secret.123", resp.len);
    /* Reserved keys are refused by the client. */
    struct rpc_metadata bad[] = {{"grpc-timeout", "1S"}};
    assert_int_equal(
        rpc_client_unary_sync(f->cl, "/test.Echo/Meta", bad, 1,
                              moor_slice_str(""), 5000, &resp, msg),
        MOOR_EINVAL);
    moor_buf_close(&resp);
}

static void test_rpc_server_stream_delivers_100000_messages_in_order(
    void **state)
{
    struct fx *f = *state;
    struct result r;
    result_init(&r);
    struct rpc_stream *s;
    assert_int_equal(rpc_stream_start(f->cl, "/test.Echo/Stream", NULL, 0, 0,
                                      &s_ops, &r, &s),
                     MOOR_OK);
    assert_int_equal(rpc_stream_send(s, moor_slice_str("100000 16")), MOOR_OK);
    rpc_stream_close_send(s);
    run_until(f, &r.done);
    assert_int_equal(r.status, RPC_OK);
    assert_int_equal(r.messages, 100000);
    assert_true(r.in_order);
    assert_int_equal(f->stream_sent, 100000);
}

static void test_rpc_one_connection_carries_1000_concurrent_calls(void **state)
{
    struct fx *f = *state;
    enum { N = 1000 };
    struct result *rs = calloc(N, sizeof(*rs));
    for (int i = 0; i < N; i++) {
        result_init(&rs[i]);
        char req[32];
        snprintf(req, sizeof(req), "call %d", i);
        assert_int_equal(
            rpc_client_unary(f->cl, "/test.Echo/Unary", NULL, 0,
                             moor_slice_str(req), 10000, unary_cb, &rs[i]),
            MOOR_OK);
    }
    for (int i = 0; i < N; i++) {
        run_until(f, &rs[i].done);
        char req[32];
        snprintf(req, sizeof(req), "call %d", i);
        assert_int_equal(rs[i].status, RPC_OK);
        assert_int_equal(rs[i].resp.len, strlen(req));
        assert_memory_equal(rs[i].resp.ptr, req, rs[i].resp.len);
        moor_buf_close(&rs[i].resp);
    }
    assert_int_equal(rpc_client_conn_count(f->cl), 1);
    assert_int_equal(rpc_server_conn_count(f->srv), 1);
    free(rs);
}

static void test_rpc_one_connection_holds_3000_calls_open_at_once(void **state)
{
    struct fx *f = *state;
    enum { N = 3000 };
    f->hang_all = calloc(N, sizeof(*f->hang_all));
    struct result *rs = calloc(N, sizeof(*rs));
    for (int i = 0; i < N; i++) {
        result_init(&rs[i]);
        struct rpc_stream *s;
        assert_int_equal(rpc_stream_start(f->cl, "/test.Echo/Hang", NULL, 0, 0,
                                          &s_ops, &rs[i], &s),
                         MOOR_OK);
        rpc_stream_close_send(s);
    }
    /* Every call is open on the server at the same time. */
    while (f->hang_started < N) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->hang_done, 0);
    assert_int_equal(rpc_server_conn_count(f->srv), 1);
    for (int i = 0; i < N; i++) {
        uint8_t m[4];
        moor_put_be32(m, 0);
        assert_int_equal(rpc_call_send(f->hang_all[i], moor_slice_make(m, 4)),
                         MOOR_OK);
        assert_int_equal(rpc_call_finish(f->hang_all[i], RPC_OK, NULL),
                         MOOR_OK);
    }
    for (int i = 0; i < N; i++) {
        run_until(f, &rs[i].done);
        assert_int_equal(rs[i].status, RPC_OK);
        assert_int_equal(rs[i].messages, 1);
    }
    assert_int_equal(rpc_client_conn_count(f->cl), 1);
    free(rs);
    free(f->hang_all);
    f->hang_all = NULL;
}

static void test_rpc_concurrent_streams_beyond_the_limit_wait_their_turn(
    void **state)
{
    /* More calls than SETTINGS_MAX_CONCURRENT_STREAMS: nghttp2 holds the
     * excess client-side until streams close; all still complete. */
    struct fx *f = *state;
    close_client(f);
    close_server(f);
    struct rpc_server_config scfg;
    memset(&scfg, 0, sizeof(scfg));
    scfg.max_concurrent_streams = 16;
    start_server(f, &scfg, 0);
    start_client(f, NULL);
    enum { N = 200 };
    struct result *rs = calloc(N, sizeof(*rs));
    for (int i = 0; i < N; i++) {
        result_init(&rs[i]);
        assert_int_equal(
            rpc_client_unary(f->cl, "/test.Echo/Unary", NULL, 0,
                             moor_slice_str("x"), 10000, unary_cb, &rs[i]),
            MOOR_OK);
    }
    for (int i = 0; i < N; i++) {
        run_until(f, &rs[i].done);
        assert_int_equal(rs[i].status, RPC_OK);
        moor_buf_close(&rs[i].resp);
    }
    free(rs);
}

static void test_rpc_bidi_stream_echoes_every_message(void **state)
{
    struct fx *f = *state;
    struct result r;
    result_init(&r);
    struct rpc_stream *s;
    assert_int_equal(
        rpc_stream_start(f->cl, "/test.Echo/Bidi", NULL, 0, 0, &s_ops, &r, &s),
        MOOR_OK);
    for (uint32_t i = 0; i < 1000; i++) {
        uint8_t m[8];
        moor_put_be32(m, i);
        moor_put_be32(m + 4, ~i);
        assert_int_equal(rpc_stream_send(s, moor_slice_make(m, 8)), MOOR_OK);
    }
    rpc_stream_close_send(s);
    run_until(f, &r.done);
    assert_int_equal(r.status, RPC_OK);
    assert_int_equal(r.messages, 1000);
    assert_true(r.in_order);
    assert_int_equal(r.bytes, 8000);
}

static void test_rpc_deadline_ends_a_call_the_server_never_answers(void **state)
{
    struct fx *f = *state;
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    int st = rpc_client_unary_sync(f->cl, "/test.Echo/Hang", NULL, 0,
                                   moor_slice_str("x"), 50, &resp, msg);
    assert_int_equal(st, RPC_DEADLINE_EXCEEDED);
    assert_string_equal(msg, "context deadline exceeded");
    /* The server's side ends too: by the client's reset or its own
     * reading of grpc-timeout, whichever came first. */
    while (f->hang_done < 1) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(f->hang_status == RPC_CANCELLED ||
                f->hang_status == RPC_DEADLINE_EXCEEDED);
    moor_buf_close(&resp);
}

static void test_rpc_client_cancel_reaches_the_handler(void **state)
{
    struct fx *f = *state;
    struct result r;
    result_init(&r);
    struct rpc_stream *s;
    assert_int_equal(
        rpc_stream_start(f->cl, "/test.Echo/Hang", NULL, 0, 0, &s_ops, &r, &s),
        MOOR_OK);
    while (f->hang_started < 1) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    rpc_stream_cancel(s);
    assert_false(r.done); /* never from inside the call */
    run_until(f, &r.done);
    assert_int_equal(r.status, RPC_CANCELLED);
    while (f->hang_done < 1) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->hang_status, RPC_CANCELLED);
}

static void test_rpc_server_cancel_reaches_the_client(void **state)
{
    struct fx *f = *state;
    struct result r;
    result_init(&r);
    struct rpc_stream *s;
    assert_int_equal(
        rpc_stream_start(f->cl, "/test.Echo/Hang", NULL, 0, 0, &s_ops, &r, &s),
        MOOR_OK);
    while (f->hang_call == NULL) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    rpc_call_cancel(f->hang_call);
    run_until(f, &r.done);
    assert_int_equal(r.status, RPC_CANCELLED);
    while (f->hang_done < 1) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->hang_status, RPC_CANCELLED);
}

static void test_rpc_oversize_messages_are_resource_exhausted(void **state)
{
    struct fx *f = *state;
    close_client(f);
    close_server(f);
    struct rpc_server_config scfg;
    memset(&scfg, 0, sizeof(scfg));
    scfg.max_recv_msg_bytes = 1024;
    start_server(f, &scfg, 0);
    struct rpc_client_config ccfg;
    memset(&ccfg, 0, sizeof(ccfg));
    ccfg.max_recv_msg_bytes = 1024;
    start_client(f, &ccfg);
    char big[2048];
    memset(big, 'b', sizeof(big));
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    /* Request too large for the server. */
    int st = rpc_client_unary_sync(f->cl, "/test.Echo/Unary", NULL, 0,
                                   moor_slice_make(big, sizeof(big)), 5000,
                                   &resp, msg);
    assert_int_equal(st, RPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(msg, "larger than max (2048 vs. 1024)"));
    /* Response too large for the client. */
    struct result r;
    result_init(&r);
    struct rpc_stream *s;
    assert_int_equal(rpc_stream_start(f->cl, "/test.Echo/Stream", NULL, 0, 0,
                                      &s_ops, &r, &s),
                     MOOR_OK);
    rpc_stream_send(s, moor_slice_str("3 2000"));
    rpc_stream_close_send(s);
    run_until(f, &r.done);
    assert_int_equal(r.status, RPC_RESOURCE_EXHAUSTED);
    assert_int_equal(r.messages, 0);
    /* The connection is still good. */
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "ok", &resp, msg),
                     RPC_OK);
    moor_buf_close(&resp);
}

/* Streams 10,000 x 1 KiB to a client that pauses after the first message;
 * checks the server stopped with less than bound bytes sent, then that
 * everything arrives once the client resumes. */
static void paused_stream(struct fx *f, size_t send_buffer, size_t conn_buffer,
                          uint64_t bound)
{
    close_client(f);
    close_server(f);
    struct rpc_server_config scfg;
    memset(&scfg, 0, sizeof(scfg));
    scfg.send_buffer_bytes = send_buffer;
    scfg.conn_send_buffer_bytes = conn_buffer;
    start_server(f, &scfg, 0);
    struct rpc_client_config ccfg;
    memset(&ccfg, 0, sizeof(ccfg));
    ccfg.initial_window_bytes = 64 * 1024;
    start_client(f, &ccfg);

    struct result r;
    result_init(&r);
    r.pause_on_first = true;
    struct rpc_stream *s;
    assert_int_equal(rpc_stream_start(f->cl, "/test.Echo/Stream", NULL, 0, 0,
                                      &s_ops, &r, &s),
                     MOOR_OK);
    /* 10,000 x 1 KiB = 10 MiB, far beyond windows and buffers. */
    rpc_stream_send(s, moor_slice_str("10000 1024"));
    rpc_stream_close_send(s);
    while (f->stream_eagain == 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    /* Give the loop plenty of turns: nothing more may flow. */
    for (int i = 0; i < 200; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    /* HTTP/2 flow control lets the server put at most the stream window
     * (64 KiB, plus what the delivered first chunk gave back) on the wire;
     * the call's queue holds its bound + one message more. Socket buffers
     * do not count: the window is end to end. Without flow control all
     * 10 MiB would have been queued. */
    uint64_t sent_bytes = (uint64_t)f->stream_sent * (1024 + 5);
    assert_true(sent_bytes < bound);
    assert_true(f->stream_sent < 10000);
    assert_false(r.done);
    assert_true(r.messages >= 1);
    rpc_stream_pause(s, false);
    run_until(f, &r.done);
    assert_int_equal(r.status, RPC_OK);
    assert_int_equal(r.messages, 10000);
    assert_true(r.in_order);
    assert_true(f->stream_writable > 0);
}

static void test_rpc_paused_client_stops_the_server_producing(void **state)
{
    struct fx *f = *state;
    /* window 64 KiB + first chunk 16 KiB + call queue 64 KiB + 1 msg */
    paused_stream(f, 64 * 1024, 0, 150 * 1024);
}

static void test_rpc_connection_budget_bounds_what_calls_queue(void **state)
{
    struct fx *f = *state;
    /* The call's own bound (1 MiB) is not reached: the connection's
     * (32 KiB) stops it. */
    paused_stream(f, 1u << 20, 32 * 1024, 120 * 1024);
}

static void test_rpc_server_refuses_connections_beyond_max_conns(void **state)
{
    struct fx *f = *state;
    close_client(f);
    close_server(f);
    struct rpc_server_config scfg;
    memset(&scfg, 0, sizeof(scfg));
    scfg.max_conns = 1;
    start_server(f, &scfg, 0);
    start_client(f, NULL);
    struct rpc_client *first = f->cl;
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "a", &resp, msg), RPC_OK);
    f->cl = NULL;
    start_client(f, NULL);
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "b", &resp, msg),
                     RPC_UNAVAILABLE);
    /* Room again once the first one leaves. */
    struct rpc_client *second = f->cl;
    f->cl = first;
    close_client(f);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    f->cl = second;
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "c", &resp, msg), RPC_OK);
    moor_buf_close(&resp);
}

static void test_rpc_client_close_ends_a_paused_finished_stream(void **state)
{
    /* The server sent everything and its trailers while the client was
     * paused; the client closes without ever resuming: the stream still
     * ends (CANCELLED) and nothing leaks. */
    struct fx *f = *state;
    struct result r;
    result_init(&r);
    r.pause_on_first = true;
    struct rpc_stream *s;
    assert_int_equal(rpc_stream_start(f->cl, "/test.Echo/Stream", NULL, 0, 0,
                                      &s_ops, &r, &s),
                     MOOR_OK);
    /* 2,000 x 21 bytes: several DATA frames, so most are held. */
    rpc_stream_send(s, moor_slice_str("2000 16"));
    rpc_stream_close_send(s);
    while (f->stream_sent < 2000) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < 50; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_false(r.done);
    assert_true(r.messages < 2000);
    close_client(f);
    assert_true(r.done);
    assert_int_equal(r.status, RPC_CANCELLED);
}

static void test_rpc_graceful_close_lets_calls_in_flight_finish(void **state)
{
    struct fx *f = *state;
    struct result r;
    result_init(&r);
    struct rpc_stream *s;
    assert_int_equal(
        rpc_stream_start(f->cl, "/test.Echo/Hang", NULL, 0, 0, &s_ops, &r, &s),
        MOOR_OK);
    rpc_stream_close_send(s);
    while (f->hang_call == NULL) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    rpc_server_close(f->srv, 60000, set_flag, &f->closed_srv);
    f->srv = NULL;
    for (int i = 0; i < 50; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_false(r.done);
    assert_false(f->closed_srv);
    /* The call in flight can still answer. */
    assert_int_equal(rpc_call_send(f->hang_call, moor_slice_str("late")),
                     MOOR_OK);
    assert_int_equal(rpc_call_finish(f->hang_call, RPC_OK, NULL), MOOR_OK);
    run_until(f, &r.done);
    assert_int_equal(r.status, RPC_OK);
    assert_int_equal(r.messages, 1);
    run_until(f, &f->closed_srv);
    /* Nothing listens any more: a new call fails cleanly. */
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "x", &resp, msg),
                     RPC_UNAVAILABLE);
    moor_buf_close(&resp);
}

static void test_rpc_client_tries_next_endpoint_and_reconnects(void **state)
{
    struct fx *f = *state;
    close_client(f);
    /* A port with nothing listening: bind one, note it, close it. */
    uv_tcp_t tmp;
    uv_tcp_init(&f->loop, &tmp);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&tmp, (struct sockaddr *)&a, 0), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&tmp, (struct sockaddr *)&ss, &len);
    uint16_t dead = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&tmp, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);

    char ep_dead[64];
    char ep_live[64];
    snprintf(ep_dead, sizeof(ep_dead), "http://127.0.0.1:%u", dead);
    snprintf(ep_live, sizeof(ep_live), "http://localhost:%u/", f->port);
    const char *eps[] = {ep_dead, ep_live};
    struct rpc_client_config ccfg;
    memset(&ccfg, 0, sizeof(ccfg));
    ccfg.endpoints = eps;
    ccfg.endpoints_len = 2;
    start_client(f, &ccfg);
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "a", &resp, msg), RPC_OK);
    /* Server gone: the call fails, nothing hangs. */
    uint16_t port = f->port;
    close_server(f);
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "b", &resp, msg),
                     RPC_UNAVAILABLE);
    /* Server back on the same port: the next call reconnects. */
    struct rpc_server_config scfg;
    memset(&scfg, 0, sizeof(scfg));
    start_server(f, &scfg, port);
    resp.len = 0;
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "c", &resp, msg), RPC_OK);
    assert_int_equal(resp.len, 1);
    assert_int_equal(resp.ptr[0], 'c');
    moor_buf_close(&resp);
}

static void start_hangs(struct fx *f, struct result *rs, struct rpc_stream **ss,
                        int n)
{
    int before = f->hang_started;
    for (int i = 0; i < n; i++) {
        result_init(&rs[i]);
        assert_int_equal(rpc_stream_start(f->cl, "/test.Echo/Hang", NULL, 0, 0,
                                          &s_ops, &rs[i], &ss[i]),
                         MOOR_OK);
    }
    while (f->hang_started < before + n) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < n; i++) {
        rpc_stream_cancel(ss[i]);
    }
    for (int i = 0; i < n; i++) {
        run_until(f, &rs[i].done);
        assert_int_equal(rs[i].status, RPC_CANCELLED);
    }
}

static void test_rpc_stream_reset_flood_closes_the_connection(void **state)
{
    struct fx *f = *state;
    close_client(f);
    close_server(f);
    struct rpc_server_config scfg;
    memset(&scfg, 0, sizeof(scfg));
    scfg.resets_max = 50;
    scfg.resets_window_ms = 600000;
    start_server(f, &scfg, 0);
    start_client(f, NULL);
    enum { N = 400 };
    struct result *rs = calloc(N, sizeof(*rs));
    struct rpc_stream **ss = calloc(N, sizeof(*ss));
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];

    /* 40 resets: under the bound, the connection stays. */
    start_hangs(f, rs, ss, 40);
    while (f->hang_done < 40) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "x", &resp, msg), RPC_OK);
    assert_int_equal(rpc_server_conn_count(f->srv), 1);
    assert_int_equal(rpc_client_conn_count(f->cl), 1);

    /* 400 more: the server sends GOAWAY and drops the connection by
     * itself (the client never closes it), ending every call it held. */
    start_hangs(f, rs, ss, N);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->hang_started, 40 + N);
    assert_int_equal(f->hang_done, f->hang_started);
    free(rs);
    free(ss);
    /* The process lives and a new connection works. */
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "x", &resp, msg), RPC_OK);
    moor_buf_close(&resp);
}

static void test_rpc_oversize_header_list_is_refused(void **state)
{
    struct fx *f = *state;
    char *big = malloc(100 * 1024);
    memset(big, 'v', 100 * 1024 - 1);
    big[100 * 1024 - 1] = '\0';
    struct rpc_metadata md[] = {{"token", big}};
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    int st = rpc_client_unary_sync(f->cl, "/test.Echo/Meta", md, 1,
                                   moor_slice_str(""), 5000, &resp, msg);
    assert_int_not_equal(st, RPC_OK);
    free(big);
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "x", &resp, msg), RPC_OK);
    moor_buf_close(&resp);
}

/* ------------------------------------------------------------------------
 * HTTP/1.1 on the same port
 * ---------------------------------------------------------------------- */
struct http_get
{
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    const char *req;
    struct moor_buf resp;
    char rbuf[4096];
    bool done;
};

static void hg_close_cb(uv_handle_t *h)
{
    struct http_get *g = h->data;
    g->done = true;
}

static void hg_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)n;
    struct http_get *g = h->data;
    b->base = g->rbuf;
    b->len = sizeof(g->rbuf);
}

static void hg_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct http_get *g = st->data;
    if (n < 0) {
        uv_close((uv_handle_t *)&g->tcp, hg_close_cb);
        return;
    }
    moor_buf_append(&g->resp, b->base, (size_t)n);
}

static void hg_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void hg_connected(uv_connect_t *c, int status)
{
    struct http_get *g = c->data;
    assert_int_equal(status, 0);
    uv_buf_t b = uv_buf_init((char *)g->req, (unsigned)strlen(g->req));
    uv_write(&g->wr, (uv_stream_t *)&g->tcp, &b, 1, hg_written);
    uv_read_start((uv_stream_t *)&g->tcp, hg_alloc, hg_read);
}

static void http_get(struct fx *f, const char *req, struct moor_buf *out)
{
    struct http_get g;
    memset(&g, 0, sizeof(g));
    g.req = req;
    moor_buf_init(&g.resp);
    uv_tcp_init(&f->loop, &g.tcp);
    g.tcp.data = &g;
    g.conn.data = &g;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", f->port, &a);
    uv_tcp_connect(&g.conn, &g.tcp, (struct sockaddr *)&a, hg_connected);
    run_until(f, &g.done);
    moor_buf_putc(&g.resp, 0);
    *out = g.resp;
}

static void test_rpc_http1_get_is_answered_on_the_grpc_port(void **state)
{
    struct fx *f = *state;
    struct moor_buf r;
    http_get(f, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_non_null(strstr((char *)r.ptr, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr((char *)r.ptr, "Content-Type: application/json"));
    assert_non_null(strstr((char *)r.ptr, "\r\n\r\n{\"health\":\"true\"}"));
    moor_buf_close(&r);
    http_get(f, "GET /nope HTTP/1.0\r\n\r\n", &r);
    assert_non_null(strstr((char *)r.ptr, "HTTP/1.1 404 Not Found\r\n"));
    moor_buf_close(&r);
    http_get(f, "DELETE /health HTTP/1.1\r\n\r\n", &r);
    assert_non_null(strstr((char *)r.ptr, "HTTP/1.1 405 "));
    moor_buf_close(&r);
    http_get(f, "GARBAGE\r\n\r\n", &r);
    assert_non_null(strstr((char *)r.ptr, "HTTP/1.1 400 "));
    moor_buf_close(&r);
    /* Not HTTP at all (a TLS ClientHello byte): closed, no answer. */
    http_get(f, "\x16\x03\x01garbage", &r);
    assert_int_equal(r.len, 1);
    moor_buf_close(&r);
    /* gRPC still works after all that. */
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "x", &resp, msg), RPC_OK);
    moor_buf_close(&resp);
}

static const struct rpc_method_stats *stats_of(struct fx *f, const char *path,
                                               struct rpc_method_stats *st)
{
    const char *p;
    for (size_t i = 0; rpc_server_method_stats(f->srv, i, &p, st); i++) {
        if (strcmp(p, path) == 0) {
            return st;
        }
    }
    fail();
    return NULL;
}

static void test_rpc_method_stats_count_calls_messages_and_codes(void **state)
{
    struct fx *f = *state;
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(call_sync(f, "/test.Echo/Unary", "x", &resp, msg),
                         RPC_OK);
    }
    assert_int_equal(call_sync(f, "/test.Echo/Fail", "9 no", &resp, msg),
                     RPC_FAILED_PRECONDITION);
    assert_int_equal(call_sync(f, "/test.Echo/Nope", "", &resp, msg),
                     RPC_UNIMPLEMENTED);
    moor_buf_close(&resp);
    /* The server's side of the last call may finish a turn later. */
    while (rpc_server_calls_active(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    struct rpc_method_stats st;
    stats_of(f, "/test.Echo/Unary", &st);
    assert_int_equal(st.started, 3);
    assert_int_equal(st.handled[RPC_OK], 3);
    assert_int_equal(st.msgs_received, 3);
    assert_int_equal(st.msgs_sent, 3);
    stats_of(f, "/test.Echo/Fail", &st);
    assert_int_equal(st.started, 1);
    assert_int_equal(st.handled[RPC_FAILED_PRECONDITION], 1);
    assert_int_equal(st.handled[RPC_OK], 0);
    assert_int_equal(st.msgs_sent, 0);
    const char *p;
    assert_false(rpc_server_method_stats(f->srv, 6, &p, &st));
}

static void test_rpc_open_and_listen_refuse_bad_arguments(void **state)
{
    struct fx *f = *state;
    const char *bad[] = {"nohostport"};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = bad;
    cfg.endpoints_len = 1;
    struct rpc_client *cl = NULL;
    char err[MOOR_ERRMSG_SIZE] = "";
    assert_int_equal(rpc_client_open(&f->loop, &cfg, &cl, err), MOOR_EINVAL);
    assert_non_null(strstr(err, "nohostport"));
    cfg.endpoints_len = 0;
    assert_int_equal(rpc_client_open(&f->loop, &cfg, &cl, err), MOOR_EINVAL);
    assert_int_equal(
        rpc_server_listen(f->srv, "example.com", 0, false, NULL, err),
        MOOR_EINVAL);
    /* TLS listener on a server without TLS settings. */
    assert_int_equal(rpc_server_listen(f->srv, "127.0.0.1", 0, true, NULL, err),
                     MOOR_EINVAL);
    /* Methods cannot be added once listening. */
    static const struct rpc_method_ops none = {NULL, NULL, NULL, NULL, NULL};
    assert_int_equal(rpc_server_add_method(f->srv, "/x.Y/Z", &none, NULL),
                     MOOR_EBUSY);
    assert_int_equal(rpc_server_add_method(f->srv, "no-slash", &none, NULL),
                     MOOR_EINVAL);
    /* A stream with a bad path or reserved metadata never starts. */
    struct rpc_stream *s;
    assert_int_equal(
        rpc_stream_start(f->cl, "relative", NULL, 0, 0, &s_ops, NULL, &s),
        MOOR_EINVAL);
    struct rpc_metadata md[] = {{"Upper", "x"}};
    assert_int_equal(
        rpc_stream_start(f->cl, "/test.Echo/Unary", md, 1, 0, &s_ops, NULL, &s),
        MOOR_EINVAL);
}

/* Fails the Nth allocation of a whole call (client and server share the
 * allocator), for every N up to the call's allocation count: the call may
 * fail, but nothing crashes, nothing leaks (teardown checks), and the next
 * call succeeds (after at most one reconnect). */
static void test_rpc_every_allocation_failure_is_survived(void **state)
{
    struct fx *f = *state;
    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    /* Warm up: connect, so the loop below covers calls, then reconnects. */
    assert_int_equal(call_sync(f, "/test.Echo/Unary", "w", &resp, msg), RPC_OK);
    int failed = 0;
    for (long n = 0; n < 400; n++) {
        moor_alloc_fail_after(n);
        resp.len = 0;
        int st =
            rpc_client_unary_sync(f->cl, "/test.Echo/Unary", NULL, 0,
                                  moor_slice_str("payload"), 2000, &resp, msg);
        moor_alloc_fail_after(-1);
        if (st != RPC_OK) {
            failed++;
        }
        resp.len = 0;
        st = call_sync(f, "/test.Echo/Unary", "again", &resp, msg);
        if (st != RPC_OK) {
            resp.len = 0;
            st = call_sync(f, "/test.Echo/Unary", "again", &resp, msg);
        }
        assert_int_equal(st, RPC_OK);
        assert_int_equal(resp.len, 5);
    }
    /* The same for a server-streaming call of 50 messages. */
    for (long n = 0; n < 400; n++) {
        struct result r;
        result_init(&r);
        struct rpc_stream *s;
        moor_alloc_fail_after(n);
        int rv = rpc_stream_start(f->cl, "/test.Echo/Stream", NULL, 0, 2000,
                                  &s_ops, &r, &s);
        if (rv == MOOR_OK) {
            rpc_stream_send(s, moor_slice_str("50 64"));
            rpc_stream_close_send(s);
            run_until(f, &r.done);
        }
        moor_alloc_fail_after(-1);
        if (rv != MOOR_OK || r.status != RPC_OK) {
            failed++;
        } else {
            if (r.messages != 50)
                fprintf(stderr, "DBG n=%ld msgs=%d sent=%d\n", n, r.messages,
                        f->stream_sent);
            assert_int_equal(r.messages, 50);
        }
        resp.len = 0;
        int st = call_sync(f, "/test.Echo/Unary", "again", &resp, msg);
        if (st != RPC_OK) {
            resp.len = 0;
            st = call_sync(f, "/test.Echo/Unary", "again", &resp, msg);
        }
        assert_int_equal(st, RPC_OK);
    }
    /* Some failures must have hit the calls, or the test tested nothing. */
    assert_true(failed > 0);
    moor_buf_close(&resp);
}

int main(void)
{
    if (rpc_global_init() != MOOR_OK) {
        fprintf(stderr, "rpc_global_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_rpc_unary_echo_roundtrips_small_empty_and_large),
        T(test_rpc_unknown_method_and_service_are_unimplemented),
        T(test_rpc_status_and_message_cross_percent_encoded),
        T(test_rpc_metadata_reaches_the_handler),
        T(test_rpc_server_stream_delivers_100000_messages_in_order),
        T(test_rpc_one_connection_carries_1000_concurrent_calls),
        T(test_rpc_one_connection_holds_3000_calls_open_at_once),
        T(test_rpc_concurrent_streams_beyond_the_limit_wait_their_turn),
        T(test_rpc_bidi_stream_echoes_every_message),
        T(test_rpc_deadline_ends_a_call_the_server_never_answers),
        T(test_rpc_client_cancel_reaches_the_handler),
        T(test_rpc_server_cancel_reaches_the_client),
        T(test_rpc_oversize_messages_are_resource_exhausted),
        T(test_rpc_paused_client_stops_the_server_producing),
        T(test_rpc_connection_budget_bounds_what_calls_queue),
        T(test_rpc_server_refuses_connections_beyond_max_conns),
        T(test_rpc_client_close_ends_a_paused_finished_stream),
        T(test_rpc_graceful_close_lets_calls_in_flight_finish),
        T(test_rpc_client_tries_next_endpoint_and_reconnects),
        T(test_rpc_stream_reset_flood_closes_the_connection),
        T(test_rpc_oversize_header_list_is_refused),
        T(test_rpc_http1_get_is_answered_on_the_grpc_port),
        T(test_rpc_open_and_listen_refuse_bad_arguments),
        T(test_rpc_method_stats_count_calls_messages_and_codes),
        T(test_rpc_every_allocation_failure_is_survived),
#undef T
    };
    moor_log_set_level(MOOR_LOG_ERROR);
    if (getenv("RPC_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("RPC_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
