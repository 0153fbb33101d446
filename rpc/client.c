/*
 * client.c: the gRPC client: endpoints, dialing, nghttp2 client sessions,
 * streams (unary calls, built on streams, are unary.c).
 *
 * Connections: the client holds at most one connection new calls go to
 * (cur). It dials lazily, when a call starts and cur is NULL, trying the
 * endpoints in turn from where the last attempt stopped; each attempt
 * (resolve, TCP connect, TLS handshake) is bounded by dial_timeout_ms.
 * Calls started meanwhile wait on the pending list (bounded). When every
 * endpoint failed once in a row, the waiting calls end with UNAVAILABLE;
 * the next call starts a new round. A connection that is lost ends its
 * calls with UNAVAILABLE; one that received GOAWAY stops taking new calls
 * and closes once its calls are done, while cur moves on.
 *
 * Streams: a stream lives from rpc_stream_start until done_cb returned
 * and nghttp2 forgot it, whichever is later. Deadlines and deferred work
 * (resumed delivery, failures found inside a user call) run from the
 * client's own timer, so no callback fires inside a user's call.
 *
 * Flow control: client sessions do not reopen windows automatically. Each
 * DATA chunk gives the connection window back at once, and the stream's
 * window once its messages were delivered; a paused stream keeps its raw
 * bytes (at most initial_window_bytes) and gives the window back when
 * resumed.
 */
#include <stdio.h>

#include "rpc_int.h"

#define ENDPOINTS_MAX 16

struct endpoint
{
    char host[256];
    uint16_t port;
    bool tls;
    char authority[280];
};

struct cconn;

struct rpc_client
{
    struct rpc__pump pump;
    uv_loop_t *loop;
    struct rpc_client_config cfg; /* defaults applied; pointers not kept */
    struct endpoint eps[ENDPOINTS_MAX];
    size_t eps_len;
    size_t next_ep;
    size_t dial_attempts;
    struct rpc__tls_ctx *tls;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_mem mem;
    struct cconn *cur;
    struct rpc__list conns;
    size_t conns_len;
    struct rpc__list pending;
    size_t pending_len;
    struct rpc__list later;
    struct rpc__list all; /* every stream not yet freed */
    struct rpc__heap deadlines;
    uv_timer_t tick;
    uint64_t tick_at; /* when tick is due; UINT64_MAX: stopped (see
                         rpc__conn's timer_at) */
    bool closing;
    bool close_started;
    bool freeing;
    char errmsg[MOOR_ERRMSG_SIZE]; /* why the last dial failed */
    void (*closed_cb)(void *arg);
    void *closed_arg;
};

struct gai_req
{
    uv_getaddrinfo_t req;
    struct cconn *cc; /* NULL once the connection closed */
};

struct cconn
{
    struct rpc__conn c; /* first */
    struct rpc_client *cl;
    struct rpc__list link; /* in cl->conns */
    const struct endpoint *ep;
    uv_connect_t connect_req;
    struct gai_req *gai;
    bool ready;
    bool goaway;
    struct rpc__list streams;
    struct rpc__list writable;
};

struct rpc_stream
{
    struct rpc_client *cl;
    struct cconn *cc;
    int32_t stream_id;
    struct rpc__list link;  /* cl->pending or cc->streams */
    struct rpc__list wlink; /* cc->writable */
    struct rpc__list later_link;
    struct rpc__list all_link; /* cl->all, from start to free */
    char *path;
    struct moor_buf md; /* "key\0value\0" */
    uint32_t md_count;
    struct rpc__deadline deadline;
    bool has_deadline;
    struct rpc_stream_ops ops;
    void *arg;
    struct moor_buf outq;
    size_t outq_off;
    bool deferred;
    bool want_writable;
    bool send_closed;
    bool eof_sent;
    bool submitted;
    bool closed; /* nghttp2 forgot it (or the connection is gone) */
    bool done;   /* done_cb fired */
    bool paused;
    bool remote_ended;
    struct moor_buf held; /* raw DATA bytes received while paused */
    struct rpc__deframer df;
    int http_status;
    bool got_status;
    bool bad_ctype; /* a response content-type that is not gRPC's */
    int status;
    uint32_t error_code;
    int later_status; /* -1: none; else finish with it from the timer */
    char message[MOOR_ERRMSG_SIZE];
};

static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    return moor_malloc(size);
}
static void mem_free(void *ptr, void *ud)
{
    (void)ud;
    moor_free(ptr);
}
static void *mem_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return moor_calloc(n, size);
}
static void *mem_realloc(void *ptr, size_t size, void *ud)
{
    (void)ud;
    return moor_realloc(ptr, size);
}

static void dial_next(struct rpc_client *cl);
static void client_rearm(struct rpc_client *cl);
static void client_maybe_free(struct rpc_client *cl);

/* ------------------------------------------------------------------------
 * Streams
 * ---------------------------------------------------------------------- */
static size_t stream_pending(const struct rpc_stream *s)
{
    return s->outq.len - s->outq_off;
}

static void stream_maybe_free(struct rpc_stream *s)
{
    if (!s->done || (s->submitted && !s->closed)) {
        return;
    }
    rpc__list_remove(&s->link);
    rpc__list_remove(&s->wlink);
    rpc__list_remove(&s->later_link);
    rpc__list_remove(&s->all_link);
    rpc__heap_remove(&s->cl->deadlines, &s->deadline);
    moor_free(s->path);
    moor_buf_close(&s->md);
    moor_buf_close(&s->outq);
    moor_buf_close(&s->held);
    rpc__deframer_close(&s->df);
    moor_free(s);
}

/* Ends the stream for the user: done_cb, once. Never frees s: callers
 * follow with stream_maybe_free when they are done with it. */
static void stream_finish(struct rpc_stream *s, int status, const char *msg)
{
    if (s->done) {
        return;
    }
    s->done = true;
    rpc__list_remove(&s->wlink);
    rpc__list_remove(&s->later_link);
    rpc__heap_remove(&s->cl->deadlines, &s->deadline);
    if (!s->submitted) {
        if (rpc__list_linked(&s->link)) {
            rpc__list_remove(&s->link);
            s->cl->pending_len--;
        }
    } else if (!s->closed && s->cc != NULL && s->cc->c.h2 != NULL) {
        if (!s->remote_ended) {
            nghttp2_submit_rst_stream(s->cc->c.h2, NGHTTP2_FLAG_NONE,
                                      s->stream_id, NGHTTP2_CANCEL);
        } else if (!s->eof_sent) {
            nghttp2_submit_rst_stream(s->cc->c.h2, NGHTTP2_FLAG_NONE,
                                      s->stream_id, NGHTTP2_NO_ERROR);
        }
        rpc__conn_mark_dirty(&s->cc->c);
    }
    if (s->ops.done_cb != NULL) {
        s->ops.done_cb(s, status, msg != NULL ? msg : "", s->arg);
    }
}

/* Schedules work for the client's timer (never inside a user call). */
static void stream_later(struct rpc_stream *s)
{
    if (!rpc__list_linked(&s->later_link)) {
        rpc__list_push(&s->cl->later, &s->later_link);
    }
    client_rearm(s->cl);
}

static int stream_msg_cb(struct moor_slice msg, void *arg)
{
    struct rpc_stream *s = arg;
    if (s->done) {
        return 1;
    }
    if (s->ops.message_cb != NULL) {
        s->ops.message_cb(s, msg, s->arg);
    }
    return s->done ? 1 : 0;
}

/* Deframes DATA bytes into message_cb. */
static void stream_deliver(struct rpc_stream *s, const uint8_t *p, size_t n)
{
    int status = RPC_INTERNAL;
    char msg[MOOR_ERRMSG_SIZE];
    int rv = rpc__deframer_feed(&s->df, p, n, s->cl->cfg.max_recv_msg_bytes,
                                stream_msg_cb, s, &status, msg);
    if (rv == RPC__EFRAME) {
        stream_finish(s, status, msg);
    } else if (rv == MOOR_ENOMEM) {
        stream_finish(s, RPC_RESOURCE_EXHAUSTED, "out of memory");
    }
}

static int status_from_http(int http)
{
    switch (http) {
    case 400:
        return RPC_INTERNAL;
    case 401:
        return RPC_UNAUTHENTICATED;
    case 403:
        return RPC_PERMISSION_DENIED;
    case 404:
        return RPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return RPC_UNAVAILABLE;
    default:
        return RPC_UNKNOWN;
    }
}

/* The server ended its side: finish with what its trailers said. */
static void stream_remote_end(struct rpc_stream *s)
{
    if (s->done) {
        return;
    }
    if (s->held.len > 0) {
        return; /* paused: finish once the held messages are delivered */
    }
    if (!s->got_status) {
        char m[64];
        if (s->http_status != 200 && s->http_status != 0) {
            snprintf(m, sizeof(m), "unexpected HTTP status %d", s->http_status);
            stream_finish(s, status_from_http(s->http_status), m);
        } else {
            stream_finish(s, RPC_INTERNAL,
                          "server closed the stream without sending "
                          "trailers");
        }
        return;
    }
    if (s->status == RPC_OK && !rpc__deframer_idle(&s->df)) {
        stream_finish(s, RPC_INTERNAL, "stream ended inside a message");
        return;
    }
    stream_finish(s, s->status, s->message);
}

static ssize_t stream_read_cb(nghttp2_session *session, int32_t stream_id,
                              uint8_t *buf, size_t length, uint32_t *data_flags,
                              nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    struct rpc_stream *s = source->ptr;
    size_t n = MOOR_MIN(stream_pending(s), length);
    if (n > 0) {
        memcpy(buf, s->outq.ptr + s->outq_off, n);
    }
    s->outq_off += n;
    if (s->outq_off == s->outq.len) {
        s->outq.len = 0;
        s->outq_off = 0;
        if (s->outq.cap > RPC__KEEP_BYTES) {
            moor_buf_close(&s->outq);
        }
    } else if (s->outq_off >= 64 * 1024 && s->outq_off * 2 >= s->outq.len) {
        moor_buf_consume(&s->outq, s->outq_off);
        s->outq_off = 0;
    }
    if (s->want_writable && s->cc != NULL &&
        stream_pending(s) < s->cl->cfg.send_buffer_bytes / 2 &&
        !rpc__list_linked(&s->wlink)) {
        rpc__list_push(&s->cc->writable, &s->wlink);
    }
    if (stream_pending(s) == 0) {
        if (s->send_closed || s->done) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            s->eof_sent = true;
        } else if (n == 0) {
            s->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

/* Sends the request headers of s on cc. */
static void stream_submit(struct rpc_stream *s, struct cconn *cc)
{
    struct rpc_client *cl = s->cl;
    size_t n = 0;
    /* The usual request (few metadata entries) needs no allocation. */
    nghttp2_nv nv_small[24];
    nghttp2_nv *nv = 9 + s->md_count <= MOOR_ARRAY_LEN(nv_small)
                         ? nv_small
                         : moor_malloc((9 + s->md_count) * sizeof(*nv));
    if (nv == NULL) {
        stream_later(s);
        s->later_status = RPC_RESOURCE_EXHAUSTED;
        return;
    }
#define PUT(k_, v_, len_)                   \
    do {                                    \
        nv[n].name = (uint8_t *)(k_);       \
        nv[n].namelen = strlen(k_);         \
        nv[n].value = (uint8_t *)(v_);      \
        nv[n].valuelen = (len_);            \
        nv[n].flags = NGHTTP2_NV_FLAG_NONE; \
        n++;                                \
    } while (0)
    PUT(":method", "POST", 4);
    PUT(":scheme", cc->ep->tls ? "https" : "http", cc->ep->tls ? 5u : 4u);
    PUT(":path", s->path, strlen(s->path));
    PUT(":authority", cc->ep->authority, strlen(cc->ep->authority));
    PUT("content-type", "application/grpc", 16);
    PUT("te", "trailers", 8);
    PUT("user-agent", "moor-rpc/0.1", 12);
    char timeout[16];
    if (s->has_deadline) {
        uint64_t now = uv_now(cl->loop);
        uint64_t left = s->deadline.at_ms > now ? s->deadline.at_ms - now : 1;
        rpc__timeout_format(left, timeout);
        PUT("grpc-timeout", timeout, strlen(timeout));
    }
    const char *p = (const char *)s->md.ptr;
    for (uint32_t i = 0; i < s->md_count; i++) {
        const char *k = p;
        p += strlen(p) + 1;
        PUT(k, p, strlen(p));
        p += strlen(p) + 1;
    }
#undef PUT
    nghttp2_data_provider prd;
    prd.source.ptr = s;
    prd.read_callback = stream_read_cb;
    int32_t id = nghttp2_submit_request(cc->c.h2, NULL, nv, n, &prd, s);
    if (nv != nv_small) {
        moor_free(nv);
    }
    if (id < 0) {
        s->later_status = RPC_UNAVAILABLE;
        snprintf(s->message, sizeof(s->message), "http2: %s",
                 nghttp2_strerror(id));
        stream_later(s);
        return;
    }
    s->stream_id = id;
    s->submitted = true;
    s->cc = cc;
    rpc__list_push(&cc->streams, &s->link);
    rpc__conn_mark_dirty(&cc->c);
}

/* ------------------------------------------------------------------------
 * nghttp2 client callbacks
 * ---------------------------------------------------------------------- */
static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user_data)
{
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    struct rpc_stream *s =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || s->done) {
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int v = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++) {
            v = v * 10 + (value[i] - '0');
        }
        s->http_status = v;
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int v = 0;
        for (size_t i = 0; i < valuelen && i < 4; i++) {
            if (value[i] < '0' || value[i] > '9') {
                v = RPC_UNKNOWN;
                break;
            }
            v = v * 10 + (value[i] - '0');
        }
        s->status = v;
        s->got_status = true;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        rpc__pct_decode(value, valuelen, s->message, sizeof(s->message));
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        static const char ct[] = "application/grpc";
        s->bad_ctype =
            valuelen < sizeof(ct) - 1 || memcmp(value, ct, sizeof(ct) - 1) != 0;
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags,
                              int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    nghttp2_session_consume_connection(session, len);
    struct rpc_stream *s =
        nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL || s->done) {
        nghttp2_session_consume_stream(session, stream_id, len);
        return 0;
    }
    if (s->paused || s->held.len > 0) {
        if (moor_buf_append(&s->held, data, len) != MOOR_OK) {
            s->later_status = RPC_RESOURCE_EXHAUSTED;
            snprintf(s->message, sizeof(s->message), "out of memory");
            stream_later(s);
        }
        return 0;
    }
    stream_deliver(s, data, len);
    nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
}

static void cconn_settings_received(struct cconn *cc);

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user_data)
{
    struct cconn *cc = user_data;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
            cconn_settings_received(cc);
        }
        return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: {
        struct rpc_stream *s =
            nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (s == NULL) {
            return 0;
        }
        if (s->bad_ctype && s->http_status == 200 && !s->done) {
            /* Not a gRPC server answering (a proxy's error page...): the
             * bytes that follow are not gRPC messages. */
            s->remote_ended = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
            stream_finish(s, RPC_INTERNAL, "unexpected response content-type");
            return 0;
        }
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            s->remote_ended = true;
            stream_remote_end(s);
        }
        return 0;
    }
    case NGHTTP2_GOAWAY:
        cc->goaway = true;
        if (cc->cl->cur == cc) {
            cc->cl->cur = NULL;
        }
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            rpc__conn_ping_acked(&cc->c);
        }
        return 0;
    default:
        return 0;
    }
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id,
                           uint32_t error_code, void *user_data)
{
    (void)user_data;
    struct rpc_stream *s =
        nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    s->closed = true;
    rpc__list_remove(&s->link);
    rpc__list_remove(&s->wlink);
    if (!s->done && !(s->remote_ended && s->held.len > 0)) {
        char m[96];
        int status;
        switch (error_code) {
        case NGHTTP2_REFUSED_STREAM:
            status = RPC_UNAVAILABLE;
            break;
        case NGHTTP2_CANCEL:
            status = RPC_CANCELLED;
            break;
        case NGHTTP2_ENHANCE_YOUR_CALM:
            status = RPC_RESOURCE_EXHAUSTED;
            break;
        default:
            status = RPC_INTERNAL;
            break;
        }
        snprintf(m, sizeof(m),
                 "stream terminated by RST_STREAM with error "
                 "code: %u",
                 error_code);
        stream_finish(s, status, m);
    }
    stream_maybe_free(s);
    return 0;
}

/* ------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------- */
static int cconn_ready(struct rpc__conn *c, const char *alpn)
{
    (void)alpn;
    struct cconn *cc = (struct cconn *)c;
    struct rpc_client *cl = cc->cl;
    if (nghttp2_session_client_new3(&c->h2, cl->cbs, cc, cl->opt, &cl->mem) !=
        0) {
        return MOOR_ENOMEM;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cl->cfg.initial_window_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64u << 10},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv,
                                MOOR_ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
                                              16 << 20) != 0) {
        return MOOR_ENOMEM;
    }
    /* Ready (and the dial timer off) once the server's SETTINGS arrive,
     * as grpc-go does: its stream limit is then known, so calls beyond it
     * wait in nghttp2's queue instead of being refused. */
    rpc__conn_mark_dirty(c);
    return MOOR_OK;
}

static void cconn_settings_received(struct cconn *cc)
{
    struct rpc__conn *c = &cc->c;
    struct rpc_client *cl = cc->cl;
    if (cc->ready) {
        return;
    }
    cc->ready = true;
    c->alarm_at = 0;
    cl->dial_attempts = 0;
    c->keepalive_ms = cl->cfg.keepalive_ms;
    c->keepalive_timeout_ms = cl->cfg.keepalive_timeout_ms;
    if (c->keepalive_ms > 0) {
        c->ping_due_at = rpc__conn_now(c) + c->keepalive_ms;
    }
    while (!rpc__list_empty(&cl->pending) && cl->cur == cc) {
        struct rpc_stream *s =
            MOOR_CONTAINER_OF(cl->pending.next, struct rpc_stream, link);
        rpc__list_remove(&s->link);
        cl->pending_len--;
        stream_submit(s, cc);
    }
    rpc__conn_mark_dirty(c);
    rpc__conn_rearm(c);
}

static int cconn_input(struct rpc__conn *c, const uint8_t *p, size_t n)
{
    if (c->h2 == NULL) {
        moor_errmsg_set(c->errmsg, "%s: data before the connection was ready",
                        c->peer);
        return MOOR_EPROTO;
    }
    return rpc__conn_h2_recv(c, p, n);
}

static int cconn_produce(struct rpc__conn *c)
{
    struct cconn *cc = (struct cconn *)c;
    if (c->h2 == NULL) {
        return MOOR_OK;
    }
    for (int round = 0; round < 8; round++) {
        int rv = rpc__conn_h2_send(c);
        if ((rv != MOOR_OK && rv != MOOR_EAGAIN) ||
            rpc__list_empty(&cc->writable) || c->dead) {
            return rv;
        }
        while (!rpc__list_empty(&cc->writable)) {
            struct rpc_stream *s =
                MOOR_CONTAINER_OF(cc->writable.next, struct rpc_stream, wlink);
            rpc__list_remove(&s->wlink);
            s->want_writable = false;
            if (!s->done && s->ops.writable_cb != NULL) {
                s->ops.writable_cb(s, s->arg);
            }
        }
        if (rv == MOOR_EAGAIN) {
            return rv;
        }
    }
    return MOOR_EAGAIN;
}

static bool cconn_finished(struct rpc__conn *c)
{
    struct cconn *cc = (struct cconn *)c;
    return cc->ready && c->h2 != NULL && !nghttp2_session_want_read(c->h2) &&
           !nghttp2_session_want_write(c->h2);
}

static void cconn_deadline(struct rpc__conn *c, struct rpc__deadline *d)
{
    (void)c;
    (void)d; /* client deadlines live on the client's heap */
}

static void cconn_alarm(struct rpc__conn *c)
{
    struct cconn *cc = (struct cconn *)c;
    if (!cc->ready) {
        moor_errmsg_set(c->errmsg, "dial %s: timed out after %llu ms",
                        cc->ep->authority,
                        (unsigned long long)cc->cl->cfg.dial_timeout_ms);
        rpc__conn_close(c, MOOR_ETIMEDOUT);
    }
}

static void cconn_closing(struct rpc__conn *c, int err)
{
    struct cconn *cc = (struct cconn *)c;
    struct rpc_client *cl = cc->cl;
    (void)err;
    if (cc->gai != NULL) {
        cc->gai->cc = NULL;
        uv_cancel((uv_req_t *)&cc->gai->req);
        cc->gai = NULL;
    }
    if (c->errmsg[0] != '\0') {
        snprintf(cl->errmsg, sizeof(cl->errmsg), "%s", c->errmsg);
    } else {
        moor_errmsg_set(cl->errmsg, "connection to %s closed",
                        cc->ep->authority);
    }
    while (!rpc__list_empty(&cc->streams)) {
        struct rpc_stream *s =
            MOOR_CONTAINER_OF(cc->streams.next, struct rpc_stream, link);
        rpc__list_remove(&s->link);
        rpc__list_remove(&s->wlink);
        s->closed = true;
        s->cc = NULL;
        if (s->remote_ended && s->held.len > 0 && !s->done) {
            continue; /* delivered when resumed */
        }
        char m[MOOR_ERRMSG_SIZE + 32];
        snprintf(m, sizeof(m), "connection lost: %s", cl->errmsg);
        stream_finish(s, RPC_UNAVAILABLE, m);
        stream_maybe_free(s);
    }
    if (cl->cur == cc) {
        cl->cur = NULL;
        if (!cc->ready && !cl->closing && !rpc__list_empty(&cl->pending)) {
            dial_next(cl); /* the next endpoint, for the waiting calls */
        } else {
            /* Nobody waits: the next call starts a fresh round. */
            cl->dial_attempts = 0;
        }
    }
}

static void cconn_free(struct rpc__conn *c)
{
    struct cconn *cc = (struct cconn *)c;
    struct rpc_client *cl = cc->cl;
    rpc__list_remove(&cc->link);
    cl->conns_len--;
    moor_free(cc);
    client_maybe_free(cl);
}

static const struct rpc__conn_ops cconn_ops = {
    cconn_ready,    cconn_input, cconn_produce, cconn_finished,
    cconn_deadline, cconn_alarm, cconn_closing, cconn_free,
};

static void on_connect(uv_connect_t *req, int status)
{
    struct cconn *cc = req->data;
    if (cc->c.dead) {
        return;
    }
    if (status < 0) {
        moor_errmsg_set(cc->c.errmsg, "dial %s: %s", cc->ep->authority,
                        uv_strerror(status));
        rpc__conn_close(&cc->c, MOOR_ECONN);
        return;
    }
    int rv = rpc__conn_start(&cc->c);
    if (rv != MOOR_OK) {
        if (cc->c.errmsg[0] == '\0') {
            moor_errmsg_set(cc->c.errmsg, "dial %s: %s", cc->ep->authority,
                            moor_strerror(rv));
        }
        rpc__conn_close(&cc->c, rv);
    }
}

static void cconn_connect(struct cconn *cc, const struct sockaddr *addr)
{
    cc->connect_req.data = cc;
    int rv = uv_tcp_connect(&cc->connect_req, &cc->c.tcp, addr, on_connect);
    if (rv != 0) {
        moor_errmsg_set(cc->c.errmsg, "dial %s: %s", cc->ep->authority,
                        uv_strerror(rv));
        rpc__conn_close(&cc->c, MOOR_ECONN);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct gai_req *g = MOOR_CONTAINER_OF(req, struct gai_req, req);
    struct cconn *cc = g->cc;
    moor_free(g);
    if (cc == NULL) {
        uv_freeaddrinfo(res);
        return;
    }
    cc->gai = NULL;
    if (status < 0 || res == NULL) {
        moor_errmsg_set(cc->c.errmsg, "resolve %s: %s", cc->ep->host,
                        uv_strerror(status));
        uv_freeaddrinfo(res);
        rpc__conn_close(&cc->c, MOOR_ECONN);
        return;
    }
    cconn_connect(cc, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* Starts one attempt at the next endpoint; when a whole round failed, the
 * waiting calls end with UNAVAILABLE instead. */
static void dial_next(struct rpc_client *cl)
{
    if (cl->dial_attempts >= cl->eps_len) {
        cl->dial_attempts = 0;
        char m[MOOR_ERRMSG_SIZE + 32];
        snprintf(m, sizeof(m), "connection error: %s", cl->errmsg);
        /* Ended from the timer: dial_next may run inside rpc_stream_start,
         * which must not call back. */
        while (!rpc__list_empty(&cl->pending)) {
            struct rpc_stream *s =
                MOOR_CONTAINER_OF(cl->pending.next, struct rpc_stream, link);
            rpc__list_remove(&s->link);
            cl->pending_len--;
            rpc__stream_fail(s, RPC_UNAVAILABLE, m);
        }
        return;
    }
    const struct endpoint *ep = &cl->eps[cl->next_ep];
    cl->next_ep = (cl->next_ep + 1) % cl->eps_len;
    cl->dial_attempts++;
    struct cconn *cc = moor_calloc(1, sizeof(*cc));
    if (cc == NULL ||
        rpc__conn_init(&cc->c, &cl->pump, &cconn_ops, false) != MOOR_OK) {
        moor_free(cc);
        snprintf(cl->errmsg, sizeof(cl->errmsg), "out of memory");
        cl->dial_attempts = cl->eps_len;
        dial_next(cl);
        return;
    }
    cc->cl = cl;
    cc->ep = ep;
    rpc__list_init(&cc->streams);
    rpc__list_init(&cc->writable);
    rpc__list_push(&cl->conns, &cc->link);
    cl->conns_len++;
    cl->cur = cc;
    snprintf(cc->c.peer, sizeof(cc->c.peer), "%.63s", ep->authority);
    cc->c.alarm_at = uv_now(cl->loop) + cl->cfg.dial_timeout_ms;
    rpc__conn_rearm(&cc->c);
    if (ep->tls && rpc__tls_attach(&cc->c, cl->tls, ep->host) != MOOR_OK) {
        moor_errmsg_set(cc->c.errmsg, "TLS setup for %s failed", ep->authority);
        rpc__conn_close(&cc->c, MOOR_ETLS);
        return;
    }
    struct sockaddr_storage ss;
    const char *host =
        strcmp(ep->host, "localhost") == 0 ? "127.0.0.1" : ep->host;
    if (uv_ip4_addr(host, ep->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, ep->port, (struct sockaddr_in6 *)&ss) == 0) {
        cconn_connect(cc, (struct sockaddr *)&ss);
        return;
    }
    struct gai_req *g = moor_calloc(1, sizeof(*g));
    if (g == NULL) {
        moor_errmsg_set(cc->c.errmsg, "out of memory");
        rpc__conn_close(&cc->c, MOOR_ENOMEM);
        return;
    }
    g->cc = cc;
    cc->gai = g;
    char port[8];
    snprintf(port, sizeof(port), "%u", ep->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int rv =
        uv_getaddrinfo(cl->loop, &g->req, on_resolved, ep->host, port, &hints);
    if (rv != 0) {
        cc->gai = NULL;
        moor_free(g);
        moor_errmsg_set(cc->c.errmsg, "resolve %s: %s", ep->host,
                        uv_strerror(rv));
        rpc__conn_close(&cc->c, MOOR_ECONN);
    }
}

/* ------------------------------------------------------------------------
 * The client's timer: deadlines, deferred work, closing.
 * ---------------------------------------------------------------------- */
static void tick_cb(uv_timer_t *t);

static void client_rearm(struct rpc_client *cl)
{
    if (cl->freeing) {
        return;
    }
    uint64_t now = uv_now(cl->loop);
    uint64_t at = now;
    if (rpc__list_empty(&cl->later) && !(cl->closing && !cl->close_started)) {
        struct rpc__deadline *d = rpc__heap_top(&cl->deadlines);
        if (d == NULL) {
            if (cl->tick_at != UINT64_MAX) {
                uv_timer_stop(&cl->tick);
                cl->tick_at = UINT64_MAX;
            }
            return;
        }
        at = MOOR_MAX(d->at_ms, now);
    }
    /* Every call starts a stream and so comes here: a timer already due
     * no later than needed is left as it is (firing early only runs
     * tick_cb, which finds nothing due and rearms). */
    if (cl->tick_at <= at) {
        return;
    }
    uv_timer_start(&cl->tick, tick_cb, at - now, 0);
    cl->tick_at = at;
}

static void stream_run_later(struct rpc_stream *s)
{
    if (s->done) {
        return;
    }
    if (s->later_status >= 0) {
        int st = s->later_status;
        s->later_status = -1;
        stream_finish(s, st, s->message);
        stream_maybe_free(s);
        return;
    }
    if (!s->paused && s->held.len > 0) {
        struct moor_buf h = s->held;
        moor_buf_init(&s->held);
        stream_deliver(s, h.ptr, h.len);
        if (!s->closed && s->cc != NULL && s->cc->c.h2 != NULL) {
            nghttp2_session_consume_stream(s->cc->c.h2, s->stream_id, h.len);
            rpc__conn_mark_dirty(&s->cc->c);
        }
        moor_buf_close(&h);
        if (s->remote_ended) {
            stream_remote_end(s);
        }
    }
    stream_maybe_free(s);
}

static void client_close_all(struct rpc_client *cl)
{
    cl->close_started = true;
    cl->cur = NULL;
    /* Every stream, wherever it waits (a connection, the pending list, the
     * timer's list, or paused with its connection gone), ends now. Its
     * connection is closed below, so no RST_STREAM is needed. */
    struct rpc__list *n = cl->all.next;
    while (n != &cl->all) {
        struct rpc_stream *s =
            MOOR_CONTAINER_OF(n, struct rpc_stream, all_link);
        n = n->next;
        if (s->submitted && !s->closed) {
            rpc__list_remove(&s->link);
            s->closed = true;
        }
        stream_finish(s, RPC_CANCELLED, "client closing");
        stream_maybe_free(s);
    }
    n = cl->conns.next;
    while (n != &cl->conns) {
        struct cconn *cc = MOOR_CONTAINER_OF(n, struct cconn, link);
        n = n->next;
        rpc__conn_close(&cc->c, MOOR_ESHUTDOWN);
    }
    client_maybe_free(cl);
}

static void tick_cb(uv_timer_t *t)
{
    struct rpc_client *cl = t->data;
    uint64_t now = uv_now(cl->loop);
    cl->tick_at = UINT64_MAX; /* one-shot: stopped now */
    for (int i = 0; i < 4096; i++) {
        struct rpc__deadline *d = rpc__heap_top(&cl->deadlines);
        if (d == NULL || d->at_ms > now) {
            break;
        }
        rpc__heap_remove(&cl->deadlines, d);
        struct rpc_stream *s =
            MOOR_CONTAINER_OF(d, struct rpc_stream, deadline);
        stream_finish(s, RPC_DEADLINE_EXCEEDED, "context deadline exceeded");
        stream_maybe_free(s);
    }
    /* Take the current list: work scheduled while running waits a turn. */
    struct rpc__list batch;
    rpc__list_init(&batch);
    if (!rpc__list_empty(&cl->later)) {
        batch.next = cl->later.next;
        batch.prev = cl->later.prev;
        batch.next->prev = &batch;
        batch.prev->next = &batch;
        rpc__list_init(&cl->later);
    }
    while (!rpc__list_empty(&batch)) {
        struct rpc_stream *s =
            MOOR_CONTAINER_OF(batch.next, struct rpc_stream, later_link);
        rpc__list_remove(&s->later_link);
        stream_run_later(s);
    }
    if (cl->closing && !cl->close_started) {
        client_close_all(cl);
        return;
    }
    client_rearm(cl);
}

/* ------------------------------------------------------------------------
 * Public client functions
 * ---------------------------------------------------------------------- */
/* Fills cl->eps from cfg's endpoint strings; *any_tls tells whether one
 * needs TLS. MOOR_EINVAL (errmsg says which) for a bad one. */
static int parse_endpoints(struct rpc_client *cl,
                           const struct rpc_client_config *cfg, bool *any_tls,
                           char *errmsg)
{
    for (size_t i = 0; i < cfg->endpoints_len; i++) {
        struct endpoint *ep = &cl->eps[i];
        bool tls;
        if (cfg->endpoints[i] == NULL ||
            rpc_url_parse(cfg->endpoints[i], ep->host, sizeof(ep->host),
                          &ep->port, &tls) != MOOR_OK) {
            if (errmsg != NULL) {
                moor_errmsg_set(
                    errmsg, "bad endpoint '%s'",
                    cfg->endpoints[i] != NULL ? cfg->endpoints[i] : "(null)");
            }
            return MOOR_EINVAL;
        }
        bool has_scheme = strstr(cfg->endpoints[i], "://") != NULL;
        ep->tls = has_scheme ? tls : cfg->tls != NULL;
        *any_tls = *any_tls || ep->tls;
        bool v6 = strchr(ep->host, ':') != NULL;
        snprintf(ep->authority, sizeof(ep->authority), v6 ? "[%s]:%u" : "%s:%u",
                 ep->host, ep->port);
    }
    return MOOR_OK;
}

int rpc_client_open(uv_loop_t *loop, const struct rpc_client_config *cfg,
                    struct rpc_client **out, char *errmsg)
{
    if (loop == NULL || cfg == NULL || out == NULL || cfg->endpoints_len == 0 ||
        cfg->endpoints_len > ENDPOINTS_MAX) {
        return MOOR_EINVAL;
    }
    struct rpc_client *cl = moor_calloc(1, sizeof(*cl));
    if (cl == NULL) {
        return MOOR_ENOMEM;
    }
    int rv = MOOR_EINVAL;
    cl->loop = loop;
    cl->cfg = *cfg;
    cl->cfg.endpoints = NULL;
    cl->cfg.tls = NULL;
    struct rpc_client_config *c = &cl->cfg;
    if (c->dial_timeout_ms == 0) {
        c->dial_timeout_ms = 2000;
    }
    if (c->max_recv_msg_bytes == 0) {
        c->max_recv_msg_bytes = INT32_MAX;
    }
    if (c->send_buffer_bytes == 0) {
        c->send_buffer_bytes = 1u << 20;
    }
    if (c->initial_window_bytes == 0) {
        c->initial_window_bytes = 1u << 20;
    }
    if (c->initial_window_bytes > INT32_MAX) {
        c->initial_window_bytes = INT32_MAX;
    }
    if (c->pending_calls_max == 0) {
        c->pending_calls_max = 4096;
    }
    if (c->keepalive_ms > 0 && c->keepalive_timeout_ms == 0) {
        c->keepalive_timeout_ms = 20000;
    }
    bool any_tls = false;
    rv = parse_endpoints(cl, cfg, &any_tls, errmsg);
    if (rv != MOOR_OK) {
        goto err;
    }
    cl->eps_len = cfg->endpoints_len;
    if (any_tls) {
        struct rpc_tls_config none;
        memset(&none, 0, sizeof(none));
        rv = rpc__tls_ctx_new(cfg->tls != NULL ? cfg->tls : &none, false,
                              &cl->tls, errmsg);
        if (rv != MOOR_OK) {
            goto err;
        }
    }
    rv = MOOR_ENOMEM;
    cl->mem.malloc = mem_malloc;
    cl->mem.free = mem_free;
    cl->mem.calloc = mem_calloc;
    cl->mem.realloc = mem_realloc;
    if (nghttp2_session_callbacks_new(&cl->cbs) != 0) {
        goto err;
    }
    nghttp2_session_callbacks_set_on_header_callback(cl->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cl->cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cl->cbs,
                                                         on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cl->cbs,
                                                           on_stream_close);
    if (nghttp2_option_new(&cl->opt) != 0) {
        goto err;
    }
    nghttp2_option_set_no_auto_window_update(cl->opt, 1);
    nghttp2_option_set_no_closed_streams(cl->opt, 1);
    rpc__list_init(&cl->conns);
    rpc__list_init(&cl->pending);
    rpc__list_init(&cl->later);
    rpc__list_init(&cl->all);
    rpc__heap_init(&cl->deadlines);
    rpc__pump_init(&cl->pump, loop);
    uv_timer_init(loop, &cl->tick);
    cl->tick.data = cl;
    cl->tick_at = UINT64_MAX;
    *out = cl;
    return MOOR_OK;
err:
    if (cl->opt != NULL) {
        nghttp2_option_del(cl->opt);
    }
    if (cl->cbs != NULL) {
        nghttp2_session_callbacks_del(cl->cbs);
    }
    rpc__tls_ctx_free(cl->tls);
    moor_free(cl);
    return rv;
}

static void client_pump_closed(struct rpc__pump *p)
{
    struct rpc_client *cl = MOOR_CONTAINER_OF(p, struct rpc_client, pump);
    void (*cb)(void *) = cl->closed_cb;
    void *arg = cl->closed_arg;
    rpc__heap_close(&cl->deadlines);
    nghttp2_option_del(cl->opt);
    nghttp2_session_callbacks_del(cl->cbs);
    rpc__tls_ctx_free(cl->tls);
    moor_free(cl);
    if (cb != NULL) {
        cb(arg);
    }
}

static void tick_closed_cb(uv_handle_t *h)
{
    struct rpc_client *cl = h->data;
    rpc__pump_close(&cl->pump, client_pump_closed);
}

static void client_maybe_free(struct rpc_client *cl)
{
    if (!cl->close_started || cl->freeing || cl->conns_len > 0) {
        return;
    }
    cl->freeing = true;
    uv_close((uv_handle_t *)&cl->tick, tick_closed_cb);
}

void rpc_client_close(struct rpc_client *cl, void (*closed_cb)(void *arg),
                      void *arg)
{
    if (cl->closing) {
        return;
    }
    cl->closing = true;
    cl->closed_cb = closed_cb;
    cl->closed_arg = arg;
    client_rearm(cl);
}

size_t rpc_client_conn_count(const struct rpc_client *cl)
{
    return cl->conns_len;
}

static bool key_reserved(const char *k)
{
    if (k[0] == '\0' || k[0] == ':' || strncmp(k, "grpc-", 5) == 0 ||
        strcmp(k, "content-type") == 0 || strcmp(k, "te") == 0 ||
        strcmp(k, "user-agent") == 0) {
        return true;
    }
    for (const char *p = k; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            return true;
        }
    }
    return false;
}

int rpc_stream_start(struct rpc_client *cl, const char *path,
                     const struct rpc_metadata *md, size_t md_len,
                     uint64_t timeout_ms, const struct rpc_stream_ops *ops,
                     void *arg, struct rpc_stream **out)
{
    if (path == NULL || path[0] != '/' || ops == NULL || out == NULL ||
        (md_len > 0 && md == NULL) || md_len > 256) {
        return MOOR_EINVAL;
    }
    if (cl->closing) {
        return MOOR_ESHUTDOWN;
    }
    for (size_t i = 0; i < md_len; i++) {
        if (md[i].key == NULL || md[i].value == NULL ||
            key_reserved(md[i].key)) {
            return MOOR_EINVAL;
        }
    }
    struct rpc_stream *s = moor_calloc(1, sizeof(*s));
    if (s == NULL) {
        return MOOR_ENOMEM;
    }
    s->cl = cl;
    s->stream_id = -1;
    s->later_status = -1;
    s->ops = *ops;
    s->arg = arg;
    rpc__list_init(&s->link);
    rpc__list_init(&s->wlink);
    rpc__list_init(&s->later_link);
    rpc__list_init(&s->all_link);
    moor_buf_init(&s->md);
    moor_buf_init(&s->outq);
    moor_buf_init(&s->held);
    rpc__deframer_init(&s->df, NULL);
    s->deadline.idx = RPC__NOT_IN_HEAP;
    s->path = moor_strdup(path);
    int rv = s->path == NULL ? MOOR_ENOMEM : MOOR_OK;
    for (size_t i = 0; i < md_len && rv == MOOR_OK; i++) {
        rv = moor_buf_append(&s->md, md[i].key, strlen(md[i].key) + 1);
        if (rv == MOOR_OK) {
            rv = moor_buf_append(&s->md, md[i].value, strlen(md[i].value) + 1);
        }
        s->md_count++;
    }
    if (rv == MOOR_OK && timeout_ms > 0) {
        s->has_deadline = true;
        s->deadline.at_ms = uv_now(cl->loop) + timeout_ms;
        rv = rpc__heap_push(&cl->deadlines, &s->deadline);
    }
    if (rv != MOOR_OK) {
        moor_free(s->path);
        moor_buf_close(&s->md);
        moor_free(s);
        return rv;
    }
    rpc__list_push(&cl->all, &s->all_link);
    *out = s;
    if (cl->cur != NULL && cl->cur->ready && !cl->cur->goaway &&
        !cl->cur->c.dead) {
        stream_submit(s, cl->cur);
    } else if (cl->pending_len >= cl->cfg.pending_calls_max) {
        s->later_status = RPC_UNAVAILABLE;
        snprintf(s->message, sizeof(s->message),
                 "too many calls waiting for a connection");
        stream_later(s);
    } else {
        rpc__list_push(&cl->pending, &s->link);
        cl->pending_len++;
        if (cl->cur == NULL) {
            dial_next(cl);
        }
    }
    client_rearm(cl);
    return MOOR_OK;
}

static void stream_kick(struct rpc_stream *s)
{
    if (!s->submitted || s->closed || s->cc == NULL) {
        return;
    }
    if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(s->cc->c.h2, s->stream_id);
    }
    rpc__conn_mark_dirty(&s->cc->c);
}

int rpc_stream_send(struct rpc_stream *s, struct moor_slice msg)
{
    if (s->done || s->send_closed || s->later_status >= 0) {
        return MOOR_ECANCELED;
    }
    if (msg.len > UINT32_MAX) {
        return MOOR_ETOOBIG;
    }
    if (stream_pending(s) >= s->cl->cfg.send_buffer_bytes) {
        s->want_writable = true;
        return MOOR_EAGAIN;
    }
    int rv = moor_buf_reserve(&s->outq, RPC__PREFIX + msg.len);
    if (rv != MOOR_OK) {
        return rv;
    }
    rpc__prefix_put(s->outq.ptr + s->outq.len, (uint32_t)msg.len);
    s->outq.len += RPC__PREFIX;
    if (msg.len > 0) {
        memcpy(s->outq.ptr + s->outq.len, msg.ptr, msg.len);
        s->outq.len += msg.len;
    }
    stream_kick(s);
    return MOOR_OK;
}

bool rpc_stream_writable(const struct rpc_stream *s)
{
    return !s->done && !s->send_closed &&
           stream_pending(s) < s->cl->cfg.send_buffer_bytes;
}

void rpc_stream_close_send(struct rpc_stream *s)
{
    if (s->done || s->send_closed) {
        return;
    }
    s->send_closed = true;
    stream_kick(s);
}

void rpc_stream_cancel(struct rpc_stream *s)
{
    rpc__stream_fail(s, RPC_CANCELLED, "context canceled");
}

void rpc_stream_pause(struct rpc_stream *s, bool paused)
{
    if (s->done) {
        return;
    }
    s->paused = paused;
    if (!paused && s->held.len > 0) {
        stream_later(s);
    }
}

void rpc__stream_fail(struct rpc_stream *s, int status, const char *message)
{
    if (s->done || s->later_status >= 0) {
        return;
    }
    s->later_status = status;
    moor_errmsg_set(s->message, "%s", message);
    stream_later(s);
}

uv_loop_t *rpc__client_loop(const struct rpc_client *c)
{
    return c->loop;
}

int rpc__client_fake_conn(struct rpc_client *cl, struct rpc__conn **out)
{
    if (cl->cur != NULL || cl->closing) {
        return MOOR_EBUSY;
    }
    struct cconn *cc = moor_calloc(1, sizeof(*cc));
    if (cc == NULL) {
        return MOOR_ENOMEM;
    }
    if (rpc__conn_init(&cc->c, &cl->pump, &cconn_ops, true) != MOOR_OK) {
        moor_free(cc);
        return MOOR_EIO;
    }
    cc->cl = cl;
    cc->ep = &cl->eps[0];
    rpc__list_init(&cc->streams);
    rpc__list_init(&cc->writable);
    rpc__list_push(&cl->conns, &cc->link);
    cl->conns_len++;
    cl->cur = cc;
    int rv = rpc__conn_start(&cc->c);
    if (rv != MOOR_OK) {
        rpc__conn_close(&cc->c, rv);
        return rv;
    }
    *out = &cc->c;
    return MOOR_OK;
}
