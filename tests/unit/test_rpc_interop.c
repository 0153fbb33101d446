/*
 * test_rpc_interop.c: rpc/ against independent gRPC implementations, on
 * 127.0.0.1, driven from this process's loop:
 *   - python3-grpcio (gRPC C-core) as the client of our server
 *     (tests/integration/rpc_interop_client.py);
 *   - python3-grpcio as the server for our client
 *     (tests/integration/rpc_interop_server.py);
 *   - etcdctl 3.4 (grpc-go) as the client of our server, answering
 *     etcdserverpb.KV/Range and Put with empty (valid) responses.
 * The clients of our server run over cleartext and over TLS (a CA and a
 * server certificate for 127.0.0.1 made with the openssl tool at run time
 * in a temporary directory). A test whose tool is missing is skipped,
 * saying so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rpc/rpc.h"

#define PYTHON "/usr/bin/python3"
#define ETCDCTL "/usr/bin/etcdctl"

static uv_loop_t loop;
static char tls_dir[256]; /* "" when the test material could not be made */
static struct rpc_tls_config tls_cfg;
static char tls_cert[300], tls_key[300], tls_ca[300];

static int group_setup(void **state)
{
    (void)state;
    snprintf(tls_dir, sizeof(tls_dir), "/tmp/moor-rpc-interop-XXXXXX");
    if (mkdtemp(tls_dir) == NULL) {
        tls_dir[0] = '\0';
        return 0;
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && (openssl req -x509 -newkey ec -pkeyopt "
             "ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
             "-subj /CN=moor-interop-ca -days 2 && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout server.key -out server.csr -subj /CN=server && "
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
             "-CAcreateserial -days 2 -out server.pem -extfile ext) "
             ">/dev/null 2>&1",
             tls_dir);
    if (system(cmd) != 0) {
        tls_dir[0] = '\0';
        return 0;
    }
    snprintf(tls_cert, sizeof(tls_cert), "%s/server.pem", tls_dir);
    snprintf(tls_key, sizeof(tls_key), "%s/server.key", tls_dir);
    snprintf(tls_ca, sizeof(tls_ca), "%s/ca.pem", tls_dir);
    tls_cfg.cert_file = tls_cert;
    tls_cfg.key_file = tls_key;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (tls_dir[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_dir);
        return system(cmd) == 0 ? 0 : -1;
    }
    return 0;
}

/* An argv of owned copies (string literals are const here). */
struct args
{
    char *v[16];
    int n;
};

static void args_add(struct args *a, const char *s)
{
    assert_true(a->n < 15);
    a->v[a->n++] = strdup(s);
    a->v[a->n] = NULL;
}

static void args_free(struct args *a)
{
    for (int i = 0; i < a->n; i++) {
        free(a->v[i]);
    }
    a->n = 0;
}

/* ------------------------------------------------------------------------
 * Child processes
 * ---------------------------------------------------------------------- */
struct child
{
    uv_process_t proc;
    uv_pipe_t out;
    bool exited;
    bool out_closed;
    int64_t status;
    int term_signal;
    struct moor_buf output;
    char rbuf[4096];
};

static void child_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct child *c = p->data;
    c->exited = true;
    c->status = status;
    c->term_signal = sig;
    uv_close((uv_handle_t *)p, NULL);
    uv_stop(&loop);
}

static void out_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)n;
    struct child *c = h->data;
    b->base = c->rbuf;
    b->len = sizeof(c->rbuf);
}

static void out_closed_cb(uv_handle_t *h)
{
    struct child *c = h->data;
    c->out_closed = true;
}

static void out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct child *c = s->data;
    if (n < 0) {
        uv_close((uv_handle_t *)&c->out, out_closed_cb);
        return;
    }
    moor_buf_append(&c->output, b->base, (size_t)n);
    uv_stop(&loop);
}

/* Starts argv with stdout piped to c->output (stderr inherited). */
static int child_start(struct child *c, char **argv)
{
    memset(c, 0, sizeof(*c));
    moor_buf_init(&c->output);
    uv_pipe_init(&loop, &c->out, 0);
    c->out.data = c;
    c->proc.data = c;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&c->out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    uv_process_options_t o;
    memset(&o, 0, sizeof(o));
    o.file = argv[0];
    o.args = argv;
    o.exit_cb = child_exit_cb;
    o.stdio = stdio;
    o.stdio_count = 3;
    int rv = uv_spawn(&loop, &c->proc, &o);
    if (rv != 0) {
        uv_close((uv_handle_t *)&c->out, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
        moor_buf_close(&c->output);
        return rv;
    }
    uv_read_start((uv_stream_t *)&c->out, out_alloc, out_read);
    return 0;
}

static void child_wait(struct child *c)
{
    while (!c->exited || !c->out_closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static void child_free(struct child *c)
{
    moor_buf_close(&c->output);
}

/* True when argv runs and exits 0 (the tool is there). */
static bool tool_works(char **argv)
{
    if (access(argv[0], X_OK) != 0) {
        return false;
    }
    struct child c;
    if (child_start(&c, argv) != 0) {
        return false;
    }
    child_wait(&c);
    child_free(&c);
    return c.status == 0 && c.term_signal == 0;
}

/* ------------------------------------------------------------------------
 * Our server
 * ---------------------------------------------------------------------- */
static void echo_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    rpc_call_send(call, msg);
    rpc_call_finish(call, RPC_OK, NULL);
}

struct streamer
{
    uint32_t left;
    uint32_t size;
};

static void stream_more(struct rpc_call *call, void *arg)
{
    (void)arg;
    struct streamer *st = rpc_call_user(call);
    uint8_t buf[4096];
    memset(buf, 'z', sizeof(buf));
    while (st->left > 0) {
        int rv = rpc_call_send(call, moor_slice_make(buf, st->size));
        if (rv == MOOR_EAGAIN) {
            return;
        }
        if (rv != MOOR_OK) {
            return; /* cancelled */
        }
        st->left--;
    }
    rpc_call_finish(call, RPC_OK, NULL);
}

static void stream_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    char req[64];
    snprintf(req, sizeof(req), "%.*s", (int)MOOR_MIN(msg.len, 63),
             (const char *)msg.ptr);
    struct streamer *st = calloc(1, sizeof(*st));
    unsigned n = 0;
    unsigned size = 0;
    if (sscanf(req, "%u %u", &n, &size) != 2 || size > 4096) {
        free(st);
        rpc_call_finish(call, RPC_INVALID_ARGUMENT, "bad request");
        return;
    }
    st->left = n;
    st->size = size;
    rpc_call_set_user(call, st);
    stream_more(call, arg);
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
    rpc_call_send(call, msg);
}

static void bidi_half(struct rpc_call *call, void *arg)
{
    (void)arg;
    rpc_call_finish(call, RPC_OK, NULL);
}

static void failing_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    char req[256];
    snprintf(req, sizeof(req), "%.*s", (int)MOOR_MIN(msg.len, 255),
             (const char *)msg.ptr);
    char *sp = strchr(req, ' ');
    rpc_call_finish(call, atoi(req), sp != NULL ? sp + 1 : "");
}

static void meta_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    (void)msg;
    const char *v = rpc_call_metadata(call, "token");
    rpc_call_send(call, moor_slice_str(v != NULL ? v : ""));
    rpc_call_finish(call, RPC_OK, NULL);
}

static int kv_calls;

static void empty_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    (void)msg;
    kv_calls++;
    /* An empty protobuf message is a valid RangeResponse/PutResponse. */
    rpc_call_send(call, moor_slice_make(NULL, 0));
    rpc_call_finish(call, RPC_OK, NULL);
}

/* Our server on 127.0.0.1: cleartext, or TLS when tls is set. */
static struct rpc_server *open_server(uint16_t *port, bool tls)
{
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.tls = tls ? &tls_cfg : NULL;
    struct rpc_server *srv;
    assert_int_equal(rpc_server_open(&loop, &cfg, &srv, NULL), MOOR_OK);
    static const struct rpc_method_ops echo = {NULL, echo_msg, NULL, NULL,
                                               NULL};
    static const struct rpc_method_ops stream = {NULL, stream_msg, NULL,
                                                 stream_more, stream_done};
    static const struct rpc_method_ops bidi = {NULL, bidi_msg, bidi_half, NULL,
                                               NULL};
    static const struct rpc_method_ops failing = {NULL, failing_msg, NULL, NULL,
                                                  NULL};
    static const struct rpc_method_ops meta = {NULL, meta_msg, NULL, NULL,
                                               NULL};
    static const struct rpc_method_ops hang = {NULL, NULL, NULL, NULL, NULL};
    static const struct rpc_method_ops empty = {NULL, empty_msg, NULL, NULL,
                                                NULL};
    rpc_server_add_method(srv, "/interop.Echo/Unary", &echo, NULL);
    rpc_server_add_method(srv, "/interop.Echo/Stream", &stream, NULL);
    rpc_server_add_method(srv, "/interop.Echo/Bidi", &bidi, NULL);
    rpc_server_add_method(srv, "/interop.Echo/Fail", &failing, NULL);
    rpc_server_add_method(srv, "/interop.Echo/Meta", &meta, NULL);
    rpc_server_add_method(srv, "/interop.Echo/Hang", &hang, NULL);
    rpc_server_add_method(srv, "/etcdserverpb.KV/Range", &empty, NULL);
    rpc_server_add_method(srv, "/etcdserverpb.KV/Put", &empty, NULL);
    assert_int_equal(rpc_server_listen(srv, "127.0.0.1", 0, tls, port, NULL),
                     MOOR_OK);
    return srv;
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
    uv_stop(&loop);
}

static void close_server(struct rpc_server *srv)
{
    bool closed = false;
    rpc_server_close(srv, 1000, set_flag, &closed);
    while (!closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static char *script(const char *name)
{
    static char path[1024];
    const char *src = getenv("MOOR_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/tests/integration/%s",
             src != NULL ? src : ".", name);
    return path;
}

static bool have_grpcio(void)
{
    struct args a = {{NULL}, 0};
    args_add(&a, PYTHON);
    args_add(&a, "-c");
    args_add(&a, "import grpc");
    bool ok = tool_works(a.v);
    args_free(&a);
    return ok;
}

/* ------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------- */
static void grpcio_client(bool tls)
{
    if (!have_grpcio()) {
        fprintf(stderr, "skipped: %s with grpc is not available\n", PYTHON);
        skip();
    }
    if (tls && tls_dir[0] == '\0') {
        fprintf(stderr, "skipped: no TLS test material (openssl tool)\n");
        skip();
    }
    uint16_t port;
    struct rpc_server *srv = open_server(&port, tls);
    char ps[8];
    snprintf(ps, sizeof(ps), "%u", port);
    struct args a = {{NULL}, 0};
    args_add(&a, PYTHON);
    args_add(&a, script("rpc_interop_client.py"));
    args_add(&a, ps);
    if (tls) {
        args_add(&a, tls_ca);
    }
    struct child c;
    assert_int_equal(child_start(&c, a.v), 0);
    args_free(&a);
    child_wait(&c);
    moor_buf_putc(&c.output, 0);
    fprintf(stderr, "%s", (char *)c.output.ptr);
    assert_int_equal(c.term_signal, 0);
    assert_int_equal(c.status, 0);
    assert_non_null(strstr((char *)c.output.ptr, "all checks passed"));
    child_free(&c);
    close_server(srv);
}

static void test_rpc_grpcio_client_talks_to_our_server(void **state)
{
    (void)state;
    grpcio_client(false);
}

static void test_rpc_grpcio_client_talks_to_our_server_over_tls(void **state)
{
    (void)state;
    grpcio_client(true);
}

struct res
{
    bool done;
    int status;
    char message[MOOR_ERRMSG_SIZE];
    int count;
    bool in_order;
};

static void r_msg(struct rpc_stream *s, struct moor_slice m, void *arg)
{
    (void)s;
    struct res *r = arg;
    if (m.len < 4 || moor_get_be32(m.ptr) != (uint32_t)r->count) {
        r->in_order = false;
    }
    r->count++;
}

static void r_done(struct rpc_stream *s, int status, const char *message,
                   void *arg)
{
    (void)s;
    struct res *r = arg;
    r->done = true;
    r->status = status;
    snprintf(r->message, sizeof(r->message), "%s", message);
    uv_stop(&loop);
}

static void test_rpc_our_client_talks_to_a_grpcio_server(void **state)
{
    (void)state;
    if (!have_grpcio()) {
        fprintf(stderr, "skipped: %s with grpc is not available\n", PYTHON);
        skip();
    }
    struct args a = {{NULL}, 0};
    args_add(&a, PYTHON);
    args_add(&a, script("rpc_interop_server.py"));
    struct child c;
    assert_int_equal(child_start(&c, a.v), 0);
    args_free(&a);
    unsigned port = 0;
    while (port == 0 && !c.exited) {
        uv_run(&loop, UV_RUN_ONCE);
        moor_buf_putc(&c.output, 0);
        c.output.len--;
        const char *p = strstr((char *)c.output.ptr, "PORT ");
        if (p != NULL && strchr(p, '\n') != NULL) {
            port = (unsigned)atoi(p + 5);
        }
    }
    assert_true(port > 0);
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%u", port);
    const char *eps[] = {ep};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    struct rpc_client *cl;
    assert_int_equal(rpc_client_open(&loop, &cfg, &cl, NULL), MOOR_OK);

    struct moor_buf resp;
    moor_buf_init(&resp);
    char msg[MOOR_ERRMSG_SIZE];
    /* Unary, small and large. */
    size_t sizes[] = {0, 10, 1 << 20};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(sizes); i++) {
        uint8_t *req = malloc(sizes[i] + 1);
        memset(req, (int)i + 'a', sizes[i]);
        resp.len = 0;
        assert_int_equal(rpc_client_unary_sync(
                             cl, "/interop.Echo/Unary", NULL, 0,
                             moor_slice_make(req, sizes[i]), 10000, &resp, msg),
                         RPC_OK);
        assert_int_equal(resp.len, sizes[i]);
        assert_true(sizes[i] == 0 || memcmp(resp.ptr, req, sizes[i]) == 0);
        free(req);
    }
    /* Metadata. */
    struct rpc_metadata md[] = {{"token", "abc.def"}};
    resp.len = 0;
    assert_int_equal(
        rpc_client_unary_sync(cl, "/interop.Echo/Meta", md, 1,
                              moor_slice_str(""), 10000, &resp, msg),
        RPC_OK);
    assert_int_equal(resp.len, 7);
    assert_memory_equal(resp.ptr, "abc.def", 7);
    /* Status and percent-encoded message. */
    assert_int_equal(
        rpc_client_unary_sync(cl, "/interop.Echo/Fail", NULL, 0,
                              moor_slice_str("5 not found: 100% \xc3\xbc"),
                              10000, &resp, msg),
        RPC_NOT_FOUND);
    assert_string_equal(msg, "not found: 100% \xc3\xbc");
    /* Unknown method. */
    assert_int_equal(
        rpc_client_unary_sync(cl, "/interop.Echo/Nope", NULL, 0,
                              moor_slice_str(""), 10000, &resp, msg),
        RPC_UNIMPLEMENTED);
    /* Deadline. */
    assert_int_equal(rpc_client_unary_sync(cl, "/interop.Echo/Hang", NULL, 0,
                                           moor_slice_str(""), 200, &resp, msg),
                     RPC_DEADLINE_EXCEEDED);
    /* Server stream of 20,000 messages. */
    static const struct rpc_stream_ops ops = {r_msg, NULL, r_done};
    struct res r = {false, -1, "", 0, true};
    struct rpc_stream *s;
    assert_int_equal(rpc_stream_start(cl, "/interop.Echo/Stream", NULL, 0,
                                      60000, &ops, &r, &s),
                     MOOR_OK);
    rpc_stream_send(s, moor_slice_str("20000 32"));
    rpc_stream_close_send(s);
    while (!r.done) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(r.status, RPC_OK);
    assert_int_equal(r.count, 20000);
    assert_true(r.in_order);
    /* Bidi: 1,000 messages echoed. */
    struct res b = {false, -1, "", 0, true};
    assert_int_equal(rpc_stream_start(cl, "/interop.Echo/Bidi", NULL, 0, 60000,
                                      &ops, &b, &s),
                     MOOR_OK);
    for (uint32_t i = 0; i < 1000; i++) {
        uint8_t m[4];
        moor_put_be32(m, i);
        assert_int_equal(rpc_stream_send(s, moor_slice_make(m, 4)), MOOR_OK);
    }
    rpc_stream_close_send(s);
    while (!b.done) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(b.status, RPC_OK);
    assert_int_equal(b.count, 1000);
    assert_true(b.in_order);
    /* Cancel a stream midway; the connection stays usable. */
    struct res x = {false, -1, "", 0, true};
    assert_int_equal(rpc_stream_start(cl, "/interop.Echo/Stream", NULL, 0,
                                      60000, &ops, &x, &s),
                     MOOR_OK);
    rpc_stream_send(s, moor_slice_str("1000000 16"));
    rpc_stream_close_send(s);
    while (x.count < 10) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    rpc_stream_cancel(s);
    while (!x.done) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(x.status, RPC_CANCELLED);
    resp.len = 0;
    assert_int_equal(
        rpc_client_unary_sync(cl, "/interop.Echo/Unary", NULL, 0,
                              moor_slice_str("z"), 10000, &resp, msg),
        RPC_OK);
    assert_int_equal(rpc_client_conn_count(cl), 1);
    moor_buf_close(&resp);

    bool closed = false;
    rpc_client_close(cl, set_flag, &closed);
    while (!closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_process_kill(&c.proc, SIGKILL);
    child_wait(&c);
    child_free(&c);
}

static void etcdctl(bool tls)
{
    struct args ver = {{NULL}, 0};
    args_add(&ver, ETCDCTL);
    args_add(&ver, "version");
    bool have = tool_works(ver.v);
    args_free(&ver);
    if (!have) {
        fprintf(stderr, "skipped: %s is not available\n", ETCDCTL);
        skip();
    }
    if (tls && tls_dir[0] == '\0') {
        fprintf(stderr, "skipped: no TLS test material (openssl tool)\n");
        skip();
    }
    uint16_t port;
    struct rpc_server *srv = open_server(&port, tls);
    char eps[64];
    snprintf(eps, sizeof(eps), "--endpoints=%s://127.0.0.1:%u",
             tls ? "https" : "http", port);
    char cacert[400];
    snprintf(cacert, sizeof(cacert), "--cacert=%s", tls_ca);
    kv_calls = 0;
    for (size_t i = 0; i < 2; i++) {
        struct args a = {{NULL}, 0};
        args_add(&a, ETCDCTL);
        args_add(&a, eps);
        if (tls) {
            args_add(&a, cacert);
        }
        args_add(&a, "--dial-timeout=5s");
        args_add(&a, "--command-timeout=5s");
        args_add(&a, i == 0 ? "put" : "get");
        args_add(&a, "foo");
        if (i == 0) {
            args_add(&a, "bar");
        }
        struct child c;
        assert_int_equal(child_start(&c, a.v), 0);
        args_free(&a);
        child_wait(&c);
        moor_buf_putc(&c.output, 0);
        assert_int_equal(c.term_signal, 0);
        assert_int_equal(c.status, 0);
        if (i == 0) {
            assert_non_null(strstr((char *)c.output.ptr, "OK"));
        }
        child_free(&c);
    }
    assert_int_equal(kv_calls, 2);
    close_server(srv);
}

static void test_rpc_etcdctl_grpc_go_talks_to_our_server(void **state)
{
    (void)state;
    etcdctl(false);
}

static void test_rpc_etcdctl_grpc_go_talks_to_our_server_over_tls(void **state)
{
    (void)state;
    etcdctl(true);
}

static int setup(void **state)
{
    (void)state;
    if (getenv("ETCDCTL_API") == NULL) {
        setenv("ETCDCTL_API", "3", 1);
    }
    return uv_loop_init(&loop);
}

static int teardown(void **state)
{
    (void)state;
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop);
}

int main(void)
{
    if (rpc_global_init() != MOOR_OK) {
        fprintf(stderr, "rpc_global_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_rpc_grpcio_client_talks_to_our_server, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_rpc_our_client_talks_to_a_grpcio_server, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_rpc_etcdctl_grpc_go_talks_to_our_server, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_rpc_grpcio_client_talks_to_our_server_over_tls, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_rpc_etcdctl_grpc_go_talks_to_our_server_over_tls, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
