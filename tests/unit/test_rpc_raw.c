/*
 * test_rpc_raw.c: rpc/'s server against hand-made HTTP/2 bytes, for what a
 * well-behaved client never sends or never does: a client that ignores
 * PINGs, a request whose grpc-timeout the server alone must enforce, a
 * compressed message, a wrong content-type, garbage frames.
 *
 * The raw client writes frames built here (HPACK literals without
 * indexing), reads everything the server sends until the condition of the
 * test holds or the server closes, and decodes response headers with
 * nghttp2's HPACK inflater. A mute raw server checks the client's
 * keepalive the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "rpc/rpc.h"

static uv_loop_t *g_loop;

struct fx
{
    uv_loop_t loop;
    struct rpc_server *srv;
    uint16_t port;
    size_t alloc_before;
    int hang_done;
    int hang_status;
    int messages;
};

static void hang_done(struct rpc_call *call, int status, void *arg)
{
    (void)call;
    struct fx *f = arg;
    f->hang_done++;
    f->hang_status = status;
}

static void echo_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct fx *f = arg;
    f->messages++;
    rpc_call_send(call, msg);
    rpc_call_finish(call, RPC_OK, NULL);
}

static void open_server_cfg(struct fx *f, const struct rpc_server_config *cfg);

static void open_server(struct fx *f, uint64_t keepalive_ms)
{
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.keepalive_ms = keepalive_ms;
    cfg.keepalive_timeout_ms = keepalive_ms;
    open_server_cfg(f, &cfg);
}

static void open_server_cfg(struct fx *f, const struct rpc_server_config *cfg)
{
    assert_int_equal(rpc_server_open(&f->loop, cfg, &f->srv, NULL), MOOR_OK);
    static const struct rpc_method_ops hang = {NULL, NULL, NULL, NULL,
                                               hang_done};
    static const struct rpc_method_ops echo = {NULL, echo_msg, NULL, NULL,
                                               NULL};
    rpc_server_add_method(f->srv, "/t.S/Hang", &hang, f);
    rpc_server_add_method(f->srv, "/t.S/Echo", &echo, f);
    assert_int_equal(
        rpc_server_listen(f->srv, "127.0.0.1", 0, false, &f->port, NULL),
        MOOR_OK);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->alloc_before = moor_alloc_bytes();
    uv_loop_init(&f->loop);
    g_loop = &f->loop;
    *state = f;
    return 0;
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    bool closed = false;
    rpc_server_close(f->srv, 1000, set_flag, &closed);
    while (!closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(moor_alloc_bytes(), f->alloc_before);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------------
 * Frames out
 * ---------------------------------------------------------------------- */
enum {
    F_DATA = 0,
    F_HEADERS = 1,
    F_RST = 3,
    F_SETTINGS = 4,
    F_PING = 6,
    F_GOAWAY = 7,
    F_WINDOW_UPDATE = 8,
};

static void put_frame(struct moor_buf *b, uint8_t type, uint8_t flags,
                      uint32_t stream, const void *payload, size_t len)
{
    uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
                    type, flags};
    moor_put_be32(h + 5, stream);
    moor_buf_append(b, h, 9);
    moor_buf_append(b, payload, len);
}

static void hpack_str(struct moor_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n < 127) {
        moor_buf_putc(b, (uint8_t)n);
    } else {
        moor_buf_putc(b, 127);
        n -= 127;
        while (n >= 128) {
            moor_buf_putc(b, (uint8_t)(n % 128 + 128));
            n /= 128;
        }
        moor_buf_putc(b, (uint8_t)n);
        n = strlen(s);
    }
    moor_buf_append(b, s, n);
}

/* A HEADERS frame (END_HEADERS, END_STREAM if asked) for a gRPC request
 * of path with an extra header. */
static void put_request(struct moor_buf *b, uint32_t stream, const char *path,
                        const char *ctype, const char *xname,
                        const char *xvalue, bool end_stream)
{
    const char *nv[][2] = {{":method", "POST"},     {":scheme", "http"},
                           {":path", path},         {":authority", "t"},
                           {"content-type", ctype}, {"te", "trailers"},
                           {xname, xvalue}};
    struct moor_buf blk;
    moor_buf_init(&blk);
    for (size_t i = 0; i < MOOR_ARRAY_LEN(nv); i++) {
        if (nv[i][0] == NULL) {
            continue;
        }
        moor_buf_putc(&blk, 0); /* literal, not indexed, new name */
        hpack_str(&blk, nv[i][0]);
        hpack_str(&blk, nv[i][1]);
    }
    put_frame(b, F_HEADERS, (uint8_t)(0x4 | (end_stream ? 0x1 : 0)), stream,
              blk.ptr, blk.len);
    moor_buf_close(&blk);
}

static void put_preface(struct moor_buf *b)
{
    moor_buf_append(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    put_frame(b, F_SETTINGS, 0, 0, NULL, 0);
}

/* ------------------------------------------------------------------------
 * The raw connection
 * ---------------------------------------------------------------------- */
struct raw
{
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    struct moor_buf out;
    /* Frames sent after out as the connection window allows (DATA waits
     * for credit, the server's WINDOW_UPDATEs add to it). */
    struct moor_buf later;
    size_t later_off;
    int64_t credit;
    int writes; /* uv_write requests in flight for later */
    struct moor_buf in;
    char rbuf[65536];
    bool eof;
    bool closed;
    size_t parsed;
    /* what the frames said */
    int pings;
    int goaways;
    int rsts;          /* RST_STREAM frames for stream 1 */
    int refused;       /* RST_STREAM REFUSED_STREAM, any stream */
    bool end_stream_1; /* stream 1 ended by the server */
    char status_1[8];  /* :status of stream 1 */
    int grpc_status_1; /* -1 until seen */
    char grpc_message_1[256];
    int exhausted; /* streams ended with RESOURCE_EXHAUSTED */
    int grpc_ok;   /* streams ended with OK */
    nghttp2_hd_inflater *inf;
};

static void raw_close_cb(uv_handle_t *h)
{
    struct raw *r = h->data;
    r->closed = true;
}

static void raw_headers(struct raw *r, uint32_t stream, const uint8_t *p,
                        size_t n)
{
    for (;;) {
        nghttp2_nv nv;
        int fl = 0;
        ssize_t used = nghttp2_hd_inflate_hd2(r->inf, &nv, &fl, p, n, 1);
        assert_true(used >= 0);
        p += used;
        n -= (size_t)used;
        if (fl & NGHTTP2_HD_INFLATE_EMIT) {
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)nv.namelen, nv.name);
            char value[256];
            snprintf(value, sizeof(value), "%.*s", (int)nv.valuelen, nv.value);
            if (strcmp(name, "grpc-status") == 0) {
                r->exhausted += atoi(value) == RPC_RESOURCE_EXHAUSTED;
                r->grpc_ok += atoi(value) == RPC_OK;
            }
            if (stream != 1) {
                /* decoded all the same: HPACK's table is shared */
            } else if (strcmp(name, ":status") == 0) {
                snprintf(r->status_1, sizeof(r->status_1), "%.7s", value);
            } else if (strcmp(name, "grpc-status") == 0) {
                r->grpc_status_1 = atoi(value);
            } else if (strcmp(name, "grpc-message") == 0) {
                snprintf(r->grpc_message_1, sizeof(r->grpc_message_1), "%s",
                         value);
            }
        }
        if (fl & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(r->inf);
            break;
        }
        if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && n == 0) {
            break;
        }
    }
}

static void raw_parse(struct raw *r)
{
    while (r->in.len - r->parsed >= 9) {
        const uint8_t *h = r->in.ptr + r->parsed;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        if (r->in.len - r->parsed < 9 + len) {
            break;
        }
        uint8_t type = h[3];
        uint8_t flags = h[4];
        uint32_t stream = moor_get_be32(h + 5) & 0x7fffffffu;
        const uint8_t *p = h + 9;
        if (type == F_PING && !(flags & 1)) {
            r->pings++;
        } else if (type == F_GOAWAY) {
            r->goaways++;
        } else if (type == F_RST && stream == 1) {
            r->rsts++;
        }
        if (type == F_RST && len == 4 && moor_get_be32(p) == 7) {
            r->refused++;
        } else if (type == F_HEADERS) {
            raw_headers(r, stream, p, len);
        } else if (type == F_WINDOW_UPDATE && stream == 0 && len == 4) {
            r->credit += moor_get_be32(p) & 0x7fffffffu;
        }
        if ((type == F_HEADERS || type == F_DATA) && stream == 1 &&
            (flags & 1)) {
            r->end_stream_1 = true;
        }
        r->parsed += 9 + len;
    }
}

static void raw_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)n;
    struct raw *r = h->data;
    b->base = r->rbuf;
    b->len = sizeof(r->rbuf);
}

static void raw_later_written(uv_write_t *w, int status)
{
    (void)status;
    struct raw *r = w->data;
    r->writes--;
    moor_free(w);
}

/* Writes the frames of r->later the connection window allows. */
static void raw_pump(struct raw *r)
{
    size_t from = r->later_off;
    while (r->later.len - r->later_off >= 9) {
        const uint8_t *h = r->later.ptr + r->later_off;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        if (h[3] == F_DATA) {
            if ((int64_t)len > r->credit) {
                break;
            }
            r->credit -= (int64_t)len;
        }
        r->later_off += 9 + len;
    }
    if (r->later_off == from || r->eof) {
        return;
    }
    uv_write_t *w = moor_malloc(sizeof(*w));
    w->data = r;
    uv_buf_t b = uv_buf_init((char *)r->later.ptr + from,
                             (unsigned)(r->later_off - from));
    r->writes++;
    uv_write(w, (uv_stream_t *)&r->tcp, &b, 1, raw_later_written);
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct raw *r = s->data;
    if (n < 0) {
        r->eof = true;
        uv_read_stop(s);
        return;
    }
    moor_buf_append(&r->in, b->base, (size_t)n);
    raw_parse(r);
    raw_pump(r);
}

static void raw_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void raw_connected(uv_connect_t *c, int status)
{
    struct raw *r = c->data;
    assert_int_equal(status, 0);
    uv_buf_t b = uv_buf_init((char *)r->out.ptr, (unsigned)r->out.len);
    uv_write(&r->wr, (uv_stream_t *)&r->tcp, &b, 1, raw_written);
    uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
    raw_pump(r);
}

/* Connects and writes r->out (filled by the caller). */
static void raw_start(struct fx *f, struct raw *r)
{
    r->grpc_status_1 = -1;
    r->credit = 65535; /* RFC 9113 §6.9.2 */
    moor_buf_init(&r->in);
    assert_int_equal(nghttp2_hd_inflate_new(&r->inf), 0);
    uv_tcp_init(&f->loop, &r->tcp);
    r->tcp.data = r;
    r->conn.data = r;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", f->port, &a);
    uv_tcp_connect(&r->conn, &r->tcp, (struct sockaddr *)&a, raw_connected);
}

static void raw_stop(struct fx *f, struct raw *r)
{
    uv_close((uv_handle_t *)&r->tcp, raw_close_cb);
    while (!r->closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    nghttp2_hd_inflate_del(r->inf);
    moor_buf_close(&r->in);
    moor_buf_close(&r->out);
    moor_buf_close(&r->later);
}

/* ------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------- */
static void test_rpc_server_pings_and_drops_a_peer_that_never_acks(void **state)
{
    struct fx *f = *state;
    open_server(f, 20);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    put_preface(&r.out);
    raw_start(f, &r);
    while (!r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(r.pings >= 1);
    raw_stop(f, &r);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void test_rpc_server_enforces_grpc_timeout_itself(void **state)
{
    struct fx *f = *state;
    open_server(f, 0);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    put_preface(&r.out);
    /* A request that never ends, with a 30 ms deadline. */
    put_request(&r.out, 1, "/t.S/Hang", "application/grpc", "grpc-timeout",
                "30m", false);
    raw_start(f, &r);
    while (!r.end_stream_1 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(r.end_stream_1);
    assert_string_equal(r.status_1, "200");
    assert_int_equal(r.grpc_status_1, RPC_DEADLINE_EXCEEDED);
    assert_int_equal(f->hang_done, 1);
    assert_int_equal(f->hang_status, RPC_DEADLINE_EXCEEDED);
    raw_stop(f, &r);
}

static void test_rpc_server_refuses_compressed_and_mistyped_requests(
    void **state)
{
    struct fx *f = *state;
    open_server(f, 0);
    /* A message with the compressed flag, on a stream without
     * grpc-encoding. */
    struct raw r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    put_preface(&r.out);
    put_request(&r.out, 1, "/t.S/Echo", "application/grpc", "x-a", "b", false);
    static const uint8_t compressed[] = {1, 0, 0, 0, 1, 'x'};
    put_frame(&r.out, F_DATA, 1, 1, compressed, sizeof(compressed));
    raw_start(f, &r);
    while (!r.end_stream_1 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(r.grpc_status_1, RPC_UNIMPLEMENTED);
    assert_non_null(strstr(r.grpc_message_1, "compressed"));
    assert_int_equal(f->messages, 0);
    raw_stop(f, &r);

    /* grpc-encoding gzip: refused before any message. */
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    put_preface(&r.out);
    put_request(&r.out, 1, "/t.S/Echo", "application/grpc", "grpc-encoding",
                "gzip", true);
    raw_start(f, &r);
    while (!r.end_stream_1 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(r.grpc_status_1, RPC_UNIMPLEMENTED);
    raw_stop(f, &r);

    /* Not gRPC's content-type: HTTP 415. */
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    put_preface(&r.out);
    put_request(&r.out, 1, "/t.S/Echo", "application/json", "x-a", "b", true);
    raw_start(f, &r);
    while (!r.end_stream_1 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_string_equal(r.status_1, "415");
    assert_int_equal(f->messages, 0);
    raw_stop(f, &r);
}

static void test_rpc_server_answers_garbage_frames_with_goaway(void **state)
{
    struct fx *f = *state;
    open_server(f, 0);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    put_preface(&r.out);
    /* DATA on stream 0 is a connection error (RFC 9113 §6.1). */
    put_frame(&r.out, F_DATA, 0, 0, "zz", 2);
    raw_start(f, &r);
    while (!r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(r.goaways, 1);
    raw_stop(f, &r);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    /* The server still answers a good request. */
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    put_preface(&r.out);
    put_request(&r.out, 1, "/t.S/Echo", "application/grpc", "x-a", "b", false);
    static const uint8_t msg[] = {0, 0, 0, 0, 2, 'h', 'i'};
    put_frame(&r.out, F_DATA, 1, 1, msg, sizeof(msg));
    raw_start(f, &r);
    while (!r.end_stream_1 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(r.grpc_status_1, RPC_OK);
    assert_int_equal(f->messages, 1);
    raw_stop(f, &r);
}

/* ------------------------------------------------------------------------
 * A raw server for the client side: accepts one connection, sends an
 * empty SETTINGS and then nothing, whatever comes (PINGs included).
 * ---------------------------------------------------------------------- */
struct mute
{
    uv_tcp_t listener;
    uv_tcp_t conns[4];
    uv_write_t wr[4];
    int accepted;
    bool silent;                  /* not even SETTINGS */
    const struct moor_buf *reply; /* written once a HEADERS frame came */
    bool replied;
    struct moor_buf got;
    bool closed_l;
    int closed_c;
    uint16_t port;
    char rbuf[4096];
};

static void mute_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)n;
    struct mute *m = h->data;
    b->base = m->rbuf;
    b->len = sizeof(m->rbuf);
}

static void mute_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void mute_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct mute *m = s->data;
    if (n < 0) {
        uv_read_stop(s);
        return;
    }
    if (m->reply == NULL || m->replied) {
        return;
    }
    /* Look for the client's HEADERS frame after its 24-byte preface. */
    moor_buf_append(&m->got, b->base, (size_t)n);
    size_t off = 24;
    while (off + 9 <= m->got.len) {
        const uint8_t *h = m->got.ptr + off;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        if (h[3] == F_HEADERS) {
            static uv_write_t wr;
            uv_buf_t out =
                uv_buf_init((char *)m->reply->ptr, (unsigned)m->reply->len);
            uv_write(&wr, s, &out, 1, mute_written);
            m->replied = true;
            return;
        }
        off += 9 + len;
    }
}

static void mute_accept(uv_stream_t *l, int status)
{
    struct mute *m = l->data;
    assert_int_equal(status, 0);
    assert_true(m->accepted < 4);
    uv_tcp_t *conn = &m->conns[m->accepted];
    uv_tcp_init(l->loop, conn);
    conn->data = m;
    assert_int_equal(uv_accept(l, (uv_stream_t *)conn), 0);
    uv_write_t *wr = &m->wr[m->accepted];
    m->accepted++;
    static const uint8_t settings[9] = {0, 0, 0, F_SETTINGS, 0, 0, 0, 0, 0};
    uv_buf_t b = uv_buf_init((char *)settings, sizeof(settings));
    if (!m->silent) {
        uv_write(wr, (uv_stream_t *)conn, &b, 1, mute_written);
    }
    uv_read_start((uv_stream_t *)conn, mute_alloc, mute_read);
}

static void mute_closed_l(uv_handle_t *h)
{
    struct mute *m = h->data;
    m->closed_l = true;
}

static void mute_closed_c(uv_handle_t *h)
{
    struct mute *m = h->data;
    m->closed_c++;
}

static void mute_start(struct fx *f, struct mute *m, bool silent, char *ep,
                       size_t ep_size)
{
    memset(m, 0, sizeof(*m));
    m->silent = silent;
    uv_tcp_init(&f->loop, &m->listener);
    m->listener.data = m;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&m->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&m->listener, 4, mute_accept), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&m->listener, (struct sockaddr *)&ss, &len);
    snprintf(ep, ep_size, "127.0.0.1:%u",
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
}

static void mute_stop(struct fx *f, struct mute *m)
{
    for (int i = 0; i < m->accepted; i++) {
        uv_close((uv_handle_t *)&m->conns[i], mute_closed_c);
    }
    moor_buf_close(&m->got);
    uv_close((uv_handle_t *)&m->listener, mute_closed_l);
    while (m->closed_c < m->accepted || !m->closed_l) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

struct done
{
    bool done;
    int status;
    char message[MOOR_ERRMSG_SIZE];
};

static void unary_done(int status, const char *message, struct moor_slice r,
                       void *arg)
{
    (void)r;
    struct done *d = arg;
    d->done = true;
    d->status = status;
    snprintf(d->message, sizeof(d->message), "%s", message);
    uv_stop(g_loop);
}

static void test_rpc_client_pings_and_drops_a_server_that_never_acks(
    void **state)
{
    struct fx *f = *state;
    open_server(f, 0); /* for teardown only */
    struct mute m;
    char ep[64];
    mute_start(f, &m, false, ep, sizeof(ep));
    const char *eps[] = {ep};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    cfg.keepalive_ms = 20;
    cfg.keepalive_timeout_ms = 20;
    struct rpc_client *cl;
    assert_int_equal(rpc_client_open(&f->loop, &cfg, &cl, NULL), MOOR_OK);
    /* No deadline: only the keepalive can end this call. */
    struct done d = {false, -1, ""};
    assert_int_equal(rpc_client_unary(cl, "/t.S/Echo", NULL, 0,
                                      moor_slice_str("x"), 0, unary_done, &d),
                     MOOR_OK);
    while (!d.done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(m.accepted, 1);
    assert_int_equal(d.status, RPC_UNAVAILABLE);
    assert_non_null(strstr(d.message, "keepalive"));
    bool closed = false;
    rpc_client_close(cl, set_flag, &closed);
    while (!closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    mute_stop(f, &m);
}

static void test_rpc_client_dial_times_out_on_a_server_that_never_speaks(
    void **state)
{
    struct fx *f = *state;
    open_server(f, 0); /* for teardown only */
    struct mute m;
    char ep[64];
    mute_start(f, &m, true, ep, sizeof(ep));
    const char *eps[] = {ep};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    cfg.dial_timeout_ms = 50;
    struct rpc_client *cl;
    assert_int_equal(rpc_client_open(&f->loop, &cfg, &cl, NULL), MOOR_OK);
    struct done d = {false, -1, ""};
    assert_int_equal(rpc_client_unary(cl, "/t.S/Echo", NULL, 0,
                                      moor_slice_str("x"), 0, unary_done, &d),
                     MOOR_OK);
    while (!d.done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(m.accepted, 1);
    assert_int_equal(d.status, RPC_UNAVAILABLE);
    assert_non_null(strstr(d.message, "timed out after 50 ms"));
    bool closed = false;
    rpc_client_close(cl, set_flag, &closed);
    while (!closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    mute_stop(f, &m);
}

static void test_rpc_client_redials_after_a_dial_nobody_waited_for(void **state)
{
    struct fx *f = *state;
    open_server(f, 0); /* for teardown only */
    struct mute m;
    char ep[64];
    mute_start(f, &m, true, ep, sizeof(ep));
    const char *eps[] = {ep};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    cfg.dial_timeout_ms = 60;
    struct rpc_client *cl;
    assert_int_equal(rpc_client_open(&f->loop, &cfg, &cl, NULL), MOOR_OK);
    /* The call's deadline ends it before the dial gives up. */
    struct done d = {false, -1, ""};
    assert_int_equal(rpc_client_unary(cl, "/t.S/Echo", NULL, 0,
                                      moor_slice_str("x"), 10, unary_done, &d),
                     MOOR_OK);
    while (!d.done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(d.status, RPC_DEADLINE_EXCEEDED);
    while (rpc_client_conn_count(cl) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    /* The next call dials again rather than failing from memory. */
    struct done d2 = {false, -1, ""};
    assert_int_equal(rpc_client_unary(cl, "/t.S/Echo", NULL, 0,
                                      moor_slice_str("x"), 0, unary_done, &d2),
                     MOOR_OK);
    while (!d2.done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(d2.status, RPC_UNAVAILABLE);
    assert_int_equal(m.accepted, 2);
    bool closed = false;
    rpc_client_close(cl, set_flag, &closed);
    while (!closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    mute_stop(f, &m);
}

static void test_rpc_client_refuses_a_non_grpc_response(void **state)
{
    struct fx *f = *state;
    open_server(f, 0); /* for teardown only */
    /* An HTML error page where a gRPC response should be. */
    struct moor_buf reply;
    moor_buf_init(&reply);
    struct moor_buf blk;
    moor_buf_init(&blk);
    moor_buf_putc(&blk, 0);
    hpack_str(&blk, ":status");
    hpack_str(&blk, "200");
    moor_buf_putc(&blk, 0);
    hpack_str(&blk, "content-type");
    hpack_str(&blk, "text/html");
    put_frame(&reply, F_HEADERS, 0x4, 1, blk.ptr, blk.len);
    static const uint8_t html[] = {0, 0, 0, 0, 4, '<', 'h', '1', '>'};
    put_frame(&reply, F_DATA, 1, 1, html, sizeof(html));
    moor_buf_close(&blk);
    struct mute m;
    char ep[64];
    mute_start(f, &m, false, ep, sizeof(ep));
    m.reply = &reply;
    const char *eps[] = {ep};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    struct rpc_client *cl;
    assert_int_equal(rpc_client_open(&f->loop, &cfg, &cl, NULL), MOOR_OK);
    struct done d = {false, -1, ""};
    assert_int_equal(
        rpc_client_unary(cl, "/t.S/Echo", NULL, 0, moor_slice_str("x"), 5000,
                         unary_done, &d),
        MOOR_OK);
    while (!d.done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(m.replied);
    assert_int_equal(d.status, RPC_INTERNAL);
    assert_non_null(strstr(d.message, "content-type"));
    bool closed = false;
    rpc_client_close(cl, set_flag, &closed);
    while (!closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    mute_stop(f, &m);
    moor_buf_close(&reply);
}

static void test_rpc_hpack_bomb_resets_the_stream_not_the_process(void **state)
{
    struct fx *f = *state;
    open_server(f, 0);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    put_preface(&r.out);
    /* One 4,000-byte header value put in the dynamic table, then 200
     * one-byte references to it: 800 KB of decoded headers from 4 KB. */
    struct moor_buf blk;
    moor_buf_init(&blk);
    static const char *pseudo[][2] = {{":method", "POST"},
                                      {":scheme", "http"},
                                      {":path", "/t.S/Echo"},
                                      {":authority", "t"},
                                      {"content-type", "application/grpc"}};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(pseudo); i++) {
        moor_buf_putc(&blk, 0);
        hpack_str(&blk, pseudo[i][0]);
        hpack_str(&blk, pseudo[i][1]);
    }
    char *big = malloc(4001);
    memset(big, 'b', 4000);
    big[4000] = '\0';
    moor_buf_putc(&blk, 0x40); /* literal with incremental indexing */
    hpack_str(&blk, "x-bomb");
    hpack_str(&blk, big);
    free(big);
    for (int i = 0; i < 200; i++) {
        moor_buf_putc(&blk, 0x80 | 62); /* indexed: dynamic entry 1 */
    }
    put_frame(&r.out, F_HEADERS, 0x4, 1, blk.ptr, blk.len);
    moor_buf_close(&blk);
    /* A good request on the same connection afterwards. */
    put_request(&r.out, 3, "/t.S/Echo", "application/grpc", "x-a", "b", false);
    static const uint8_t msg[] = {0, 0, 0, 0, 2, 'h', 'i'};
    put_frame(&r.out, F_DATA, 1, 3, msg, sizeof(msg));
    raw_start(f, &r);
    while (f->messages == 0 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    while (r.rsts == 0 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_false(r.eof);
    assert_true(r.rsts >= 1);         /* stream 1 reset */
    assert_int_equal(f->messages, 1); /* stream 3 served */
    assert_int_equal(rpc_server_conn_count(f->srv), 1);
    raw_stop(f, &r);
}

static void test_rpc_announced_sizes_cost_only_what_was_sent(void **state)
{
    struct fx *f = *state;
    open_server(f, 0);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    put_preface(&r.out);
    /* Stream 1: a complete echo request, answered after the others were
     * read. Streams 3..199: a prefix announcing 4,000,000 bytes (under the
     * 4 MiB limit), then 16 bytes, then nothing. */
    put_request(&r.out, 1, "/t.S/Echo", "application/grpc", "x-a", "b", false);
    static const uint8_t hi[] = {0, 0, 0, 0, 2, 'h', 'i'};
    put_frame(&r.out, F_DATA, 1, 1, hi, sizeof(hi));
    for (uint32_t id = 3; id < 200; id += 2) {
        put_request(&r.out, id, "/t.S/Echo", "application/grpc", "x-a", "b",
                    false);
        uint8_t part[5 + 16];
        memset(part, 'p', sizeof(part));
        part[0] = 0;
        moor_put_be32(part + 1, 4000000);
        put_frame(&r.out, F_DATA, 0, id, part, sizeof(part));
    }
    size_t before = moor_alloc_bytes();
    raw_start(f, &r);
    while (!r.end_stream_1 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(r.grpc_status_1, RPC_OK);
    /* 99 partial messages of 16 bytes: far below one announced size. */
    size_t grown = moor_alloc_bytes() - before;
    assert_true(grown < 4000000);
    raw_stop(f, &r);
}

/* A client that honours flow control opens 200 streams and sends 60,000
 * bytes of a 200,000-byte message on each, never finishing any: 12 MB
 * that a server without a receive budget would hold. The connection's
 * budget (and window) of 1 MiB bounds what the server holds: streams past
 * it end RESOURCE_EXHAUSTED, the connection lives, a complete request on
 * it is still answered, and so is another connection. */
static void test_rpc_receive_budget_bounds_partial_messages(void **state)
{
    struct fx *f = *state;
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_recv_msg_bytes = 256u << 10;
    cfg.conn_recv_buffer_bytes = 1u << 20;
    open_server_cfg(f, &cfg);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    moor_buf_init(&r.later);
    put_preface(&r.out);
    /* Stream 1 first (ids must grow); its message goes last. */
    put_request(&r.out, 1, "/t.S/Echo", "application/grpc", "x-a", "b", false);
    uint8_t *part = moor_malloc(60000);
    memset(part, 'p', 60000);
    part[0] = 0;
    moor_put_be32(part + 1, 200000);
    for (uint32_t id = 3; id < 403; id += 2) {
        put_request(&r.later, id, "/t.S/Echo", "application/grpc", "x-a", "b",
                    false);
        /* Frames of at most 16,384 bytes (SETTINGS_MAX_FRAME_SIZE). */
        for (size_t off = 0; off < 60000; off += 15000) {
            put_frame(&r.later, F_DATA, 0, id, part + off, 15000);
        }
    }
    moor_free(part);
    static const uint8_t hi[] = {0, 0, 0, 0, 2, 'h', 'i'};
    put_frame(&r.later, F_DATA, 1, 1, hi, sizeof(hi));
    size_t before = moor_alloc_bytes();
    size_t peak = before;
    raw_start(f, &r);
    while (!r.end_stream_1 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
        peak = MOOR_MAX(peak, moor_alloc_bytes());
    }
    assert_false(r.eof);
    assert_int_equal(r.later_off, r.later.len); /* everything was sent */
    assert_int_equal(r.grpc_status_1, RPC_OK);
    assert_int_equal(f->messages, 1);
    assert_true(r.exhausted >= 100);
    assert_int_equal(rpc_server_conn_count(f->srv), 1);
    /* The budget plus bookkeeping of 200 streams on both sides of the
     * socket (the raw client's buffers are counted too). */
    assert_true(peak - before < (1u << 20) + (1u << 20));
    /* Another connection is served. */
    const char *eps[1];
    char ep[64];
    snprintf(ep, sizeof(ep), "127.0.0.1:%u", f->port);
    eps[0] = ep;
    struct rpc_client_config ccfg;
    memset(&ccfg, 0, sizeof(ccfg));
    ccfg.endpoints = eps;
    ccfg.endpoints_len = 1;
    struct rpc_client *cl;
    assert_int_equal(rpc_client_open(&f->loop, &ccfg, &cl, NULL), MOOR_OK);
    struct moor_buf resp;
    moor_buf_init(&resp);
    assert_int_equal(
        rpc_client_unary_sync(cl, "/t.S/Echo", NULL, 0, moor_slice_str("x"),
                              5000, &resp, NULL),
        RPC_OK);
    moor_buf_close(&resp);
    bool closed = false;
    rpc_client_close(cl, set_flag, &closed);
    while (!closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    while (r.writes > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    raw_stop(f, &r);
}

/* Metadata lives as long as its call, so it is charged to the receive
 * budget too: 200 open calls with 6,000-byte headers would pin 1.6 MB; with
 * a 1 MiB budget the later ones end RESOURCE_EXHAUSTED or are refused at
 * once, and a call opened first is still served on the same connection. */
static void test_rpc_receive_budget_bounds_metadata_of_open_calls(void **state)
{
    struct fx *f = *state;
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_recv_msg_bytes = 256u << 10;
    cfg.conn_recv_buffer_bytes = 1u << 20;
    open_server_cfg(f, &cfg);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    moor_buf_init(&r.later);
    put_preface(&r.out);
    put_request(&r.out, 1, "/t.S/Echo", "application/grpc", NULL, NULL, false);
    char *big = moor_malloc(6001);
    memset(big, 'm', 6000);
    big[6000] = '\0';
    for (uint32_t id = 3; id < 403; id += 2) {
        put_request(&r.out, id, "/t.S/Hang", "application/grpc", "x-big", big,
                    false);
    }
    moor_free(big);
    static const uint8_t hi[] = {0, 0, 0, 0, 2, 'h', 'i'};
    put_frame(&r.out, F_DATA, 1, 1, hi, sizeof(hi));
    size_t before = moor_alloc_bytes();
    raw_start(f, &r);
    while (!r.end_stream_1 && !r.eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_false(r.eof);
    assert_int_equal(r.grpc_status_1, RPC_OK);
    /* A call that finds room for its state but not its metadata ends
     * RESOURCE_EXHAUSTED; once not even the state fits, streams are
     * refused. The budget holds about 115 such calls. */
    assert_true(r.exhausted >= 1);
    assert_true(r.exhausted + r.refused >= 50);
    assert_true(r.exhausted + r.refused <= 100);
    assert_true(moor_alloc_bytes() - before < (1u << 20) + (1u << 20));
    raw_stop(f, &r);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->hang_done, 200 - r.exhausted - r.refused);
}

/* Every open call costs about 1 KB of the receive budget, so the calls of
 * all connections are bounded, not only the streams of one: 1,500 calls
 * held open on a connection with a 1 MiB budget, and the ones past it are
 * refused (REFUSED_STREAM, safe to retry); the connection lives. */
static void test_rpc_receive_budget_bounds_open_calls(void **state)
{
    struct fx *f = *state;
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_recv_msg_bytes = 256u << 10;
    cfg.conn_recv_buffer_bytes = 1u << 20;
    cfg.resets_max = 10000;
    open_server_cfg(f, &cfg);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.out);
    moor_buf_init(&r.later);
    put_preface(&r.out);
    for (uint32_t id = 1; id < 3001; id += 2) {
        put_request(&r.out, id, "/t.S/Hang", "application/grpc", NULL, NULL,
                    false);
    }
    put_frame(&r.out, F_PING, 0, 0, "12345678", 8);
    size_t before = moor_alloc_bytes();
    raw_start(f, &r);
    /* The PING's answer comes after every HEADERS was processed. */
    int pongs = 0;
    while (!r.eof && pongs == 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
        for (size_t off = 0; off + 9 <= r.in.len;) {
            const uint8_t *h = r.in.ptr + off;
            size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
            pongs += h[3] == F_PING && (h[4] & 1);
            off += 9 + len;
        }
    }
    assert_false(r.eof);
    assert_true(r.refused >= 100);
    assert_true(r.refused < 1500);
    assert_int_equal(rpc_server_calls_active(f->srv), 1500 - (size_t)r.refused);
    assert_int_equal(rpc_server_conn_count(f->srv), 1);
    assert_true(moor_alloc_bytes() - before < (1u << 20) + (1u << 20));
    raw_stop(f, &r);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->hang_done, 1500 - r.refused);
}

/* ------------------------------------------------------------------------
 * HTTP/1.1 keep-alive: a loop client that sends its requests one after the
 * other (each once the previous answer is complete), or all at once.
 * ---------------------------------------------------------------------- */
static int health_fn(const char *path, struct rpc_http_response *resp,
                     void *arg)
{
    (void)arg;
    if (strcmp(path, "/health") != 0) {
        resp->status = 404;
        return MOOR_OK;
    }
    return moor_buf_printf(&resp->body, "{\"health\":\"true\"}");
}

struct h1c
{
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr[4];
    const char *reqs[4];
    int nreqs;
    bool pipelined;
    int sent;
    int answers;
    size_t parsed;
    struct moor_buf in;
    char rbuf[4096];
    bool eof;
    bool closed;
};

static void h1c_send(struct h1c *h)
{
    const char *r = h->reqs[h->sent];
    uv_buf_t b = uv_buf_init((char *)r, (unsigned)strlen(r));
    uv_write(&h->wr[h->sent], (uv_stream_t *)&h->tcp, &b, 1, raw_written);
    h->sent++;
}

/* Counts complete answers in h->in (a HEAD request's has no body). */
static void h1c_parse(struct h1c *h)
{
    for (;;) {
        const char *p = (const char *)h->in.ptr + h->parsed;
        size_t n = h->in.len - h->parsed;
        const char *end = memmem(p, n, "\r\n\r\n", 4);
        if (end == NULL) {
            return;
        }
        size_t head = (size_t)(end - p) + 4;
        const char *cl = memmem(p, head, "Content-Length: ", 16);
        size_t body = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
        if (strncmp(h->reqs[h->answers], "HEAD", 4) == 0) {
            body = 0;
        }
        if (n < head + body) {
            return;
        }
        h->parsed += head + body;
        h->answers++;
    }
}

static void h1c_alloc(uv_handle_t *hd, size_t n, uv_buf_t *b)
{
    (void)n;
    struct h1c *h = hd->data;
    b->base = h->rbuf;
    b->len = sizeof(h->rbuf);
}

static void h1c_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct h1c *h = st->data;
    if (n < 0) {
        h->eof = true;
        uv_read_stop(st);
        return;
    }
    moor_buf_append(&h->in, b->base, (size_t)n);
    h1c_parse(h);
    if (!h->pipelined && h->answers == h->sent && h->sent < h->nreqs) {
        h1c_send(h);
    }
}

static void h1c_connected(uv_connect_t *c, int status)
{
    struct h1c *h = c->data;
    assert_int_equal(status, 0);
    uv_read_start((uv_stream_t *)&h->tcp, h1c_alloc, h1c_read);
    while (h->sent < (h->pipelined ? h->nreqs : MOOR_MIN(h->nreqs, 1))) {
        h1c_send(h);
    }
}

static void h1c_closed(uv_handle_t *hd)
{
    struct h1c *h = hd->data;
    h->closed = true;
}

/* Sends the requests, runs until the server closes, returns the number of
 * complete answers; the bytes are in h->in (freed by h1c_done). */
static int h1c_run(struct fx *f, struct h1c *h)
{
    moor_buf_init(&h->in);
    uv_tcp_init(&f->loop, &h->tcp);
    h->tcp.data = h;
    h->conn.data = h;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", f->port, &a);
    uv_tcp_connect(&h->conn, &h->tcp, (struct sockaddr *)&a, h1c_connected);
    while (!h->eof) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    moor_buf_putc(&h->in, 0);
    return h->answers;
}

static void h1c_done(struct fx *f, struct h1c *h)
{
    uv_close((uv_handle_t *)&h->tcp, h1c_closed);
    while (!h->closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    moor_buf_close(&h->in);
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p != NULL;
         p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void test_rpc_http1_keep_alive_serves_requests_in_sequence(void **state)
{
    struct fx *f = *state;
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.http_fn = health_fn;
    open_server_cfg(f, &cfg);
    /* Three requests, each sent once the previous answer is in: the third
     * asks to close. */
    struct h1c h;
    memset(&h, 0, sizeof(h));
    h.reqs[0] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    h.reqs[1] = "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n";
    h.reqs[2] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    h.nreqs = 3;
    assert_int_equal(h1c_run(f, &h), 3);
    const char *in = (const char *)h.in.ptr;
    assert_int_equal(count_of(in, "HTTP/1.1 200 OK\r\n"), 3);
    assert_int_equal(count_of(in, "{\"health\":\"true\"}"), 2);
    assert_int_equal(count_of(in, "Connection: close"), 1);
    assert_non_null(strstr(in, "Connection: close\r\n\r\n{\"health\""));
    h1c_done(f, &h);
    /* Pipelined: both in one write; HTTP/1.0 closes after its answer. */
    memset(&h, 0, sizeof(h));
    h.reqs[0] = "GET /nope HTTP/1.1\r\n\r\n";
    h.reqs[1] = "GET /health HTTP/1.0\r\n\r\n";
    h.reqs[2] = "GET /health HTTP/1.1\r\n\r\n"; /* ignored: after the close */
    h.nreqs = 3;
    h.pipelined = true;
    assert_int_equal(h1c_run(f, &h), 2);
    in = (const char *)h.in.ptr;
    assert_non_null(strstr(in, "HTTP/1.1 404 Not Found\r\n"));
    assert_int_equal(count_of(in, "Connection: close"), 1);
    h1c_done(f, &h);
    /* A request with a body (not read): answered, then closed. */
    memset(&h, 0, sizeof(h));
    h.reqs[0] = "GET /health HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    h.nreqs = 1;
    assert_int_equal(h1c_run(f, &h), 1);
    assert_non_null(strstr((const char *)h.in.ptr, "Connection: close"));
    h1c_done(f, &h);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void test_rpc_idle_connections_are_closed(void **state)
{
    struct fx *f = *state;
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.http_fn = health_fn;
    cfg.idle_timeout_ms = 20;
    open_server_cfg(f, &cfg);
    /* A keep-alive connection is answered, then closed when idle. */
    struct h1c h;
    memset(&h, 0, sizeof(h));
    h.reqs[0] = "GET /health HTTP/1.1\r\n\r\n";
    h.nreqs = 1;
    assert_int_equal(h1c_run(f, &h), 1);
    assert_null(strstr((const char *)h.in.ptr, "Connection: close"));
    h1c_done(f, &h);
    /* A connection that never sends a byte is closed too. */
    memset(&h, 0, sizeof(h));
    assert_int_equal(h1c_run(f, &h), 0);
    assert_int_equal(h.in.len, 1); /* the NUL h1c_run adds */
    h1c_done(f, &h);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* curl with two URLs reuses its connection. */
struct proc
{
    uv_process_t p;
    bool exited;
    int64_t status;
};

static void proc_exit(uv_process_t *p, int64_t status, int sig)
{
    (void)sig;
    struct proc *x = p->data;
    x->exited = true;
    x->status = status;
    uv_close((uv_handle_t *)p, NULL);
}

static void test_rpc_http1_curl_reuses_the_connection(void **state)
{
    struct fx *f = *state;
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.http_fn = health_fn;
    open_server_cfg(f, &cfg);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", f->port);
    char log[512];
    snprintf(log, sizeof(log), "%s/tests/rpc_raw_curl.log",
             getenv("MOOR_BUILD_DIR") != NULL ? getenv("MOOR_BUILD_DIR") : ".");
    char a0[] = "curl", a1[] = "-sv", a2[] = "--max-time", a3[] = "20";
    char *args[] = {a0, a1, a2, a3, url, url, NULL};
    FILE *fp = fopen(log, "w+");
    assert_non_null(fp);
    uv_stdio_container_t io[3];
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_INHERIT_FD;
    io[1].data.fd = fileno(fp);
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = fileno(fp);
    uv_process_options_t o;
    memset(&o, 0, sizeof(o));
    o.file = "curl";
    o.args = args;
    o.stdio = io;
    o.stdio_count = 3;
    o.exit_cb = proc_exit;
    struct proc x;
    memset(&x, 0, sizeof(x));
    x.p.data = &x;
    assert_int_equal(uv_spawn(&f->loop, &x.p, &o), 0);
    while (!x.exited) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(x.status, 0);
    char out[8192];
    rewind(fp);
    size_t n = fread(out, 1, sizeof(out) - 1, fp);
    out[n] = '\0';
    fclose(fp);
    assert_int_equal(count_of(out, "{\"health\":\"true\"}"), 2);
    assert_int_equal(count_of(out, "< HTTP/1.1 200 OK"), 2);
    assert_non_null(strstr(out, "Re-using existing connection"));
    assert_int_equal(count_of(out, "Connected to"), 1);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

int main(void)
{
    if (rpc_global_init() != MOOR_OK) {
        fprintf(stderr, "rpc_global_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_rpc_server_pings_and_drops_a_peer_that_never_acks),
        T(test_rpc_server_enforces_grpc_timeout_itself),
        T(test_rpc_server_refuses_compressed_and_mistyped_requests),
        T(test_rpc_server_answers_garbage_frames_with_goaway),
        T(test_rpc_client_pings_and_drops_a_server_that_never_acks),
        T(test_rpc_client_dial_times_out_on_a_server_that_never_speaks),
        T(test_rpc_client_redials_after_a_dial_nobody_waited_for),
        T(test_rpc_client_refuses_a_non_grpc_response),
        T(test_rpc_hpack_bomb_resets_the_stream_not_the_process),
        T(test_rpc_announced_sizes_cost_only_what_was_sent),
        T(test_rpc_receive_budget_bounds_partial_messages),
        T(test_rpc_receive_budget_bounds_metadata_of_open_calls),
        T(test_rpc_receive_budget_bounds_open_calls),
        T(test_rpc_http1_keep_alive_serves_requests_in_sequence),
        T(test_rpc_idle_connections_are_closed),
        T(test_rpc_http1_curl_reuses_the_connection),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
