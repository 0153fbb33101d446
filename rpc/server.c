/*
 * server.c: listeners, server connections and gRPC calls on nghttp2
 * server sessions (the HTTP/1.1 responder is http1.c).
 *
 * A connection starts in SNIFF mode: the first bytes (after TLS, if any)
 * decide between the HTTP/2 connection preface ("PRI * HTTP/2.0...") and
 * an HTTP/1.x request line; anything else closes it.
 *
 * A call's life (struct rpc_call):
 *   HEADERS      on_begin_headers allocates it; on_header collects :path,
 *                grpc-timeout, grpc-encoding and metadata (bounded by
 *                max_header_list_bytes).
 *   ACTIVE       the request headers are complete and the method is known:
 *                start_cb fired; DATA is deframed into message_cb.
 *   FINISHING    rpc_call_finish queued the trailers behind the queued
 *                messages (or a trailers-only HEADERS frame).
 *   DONE         done_cb fired (trailers written, stream reset, deadline,
 *                connection lost). The struct lives on, invisible to the
 *                handler, until nghttp2 closes the stream.
 * Calls are freed in on_stream_close or when the connection closes, never
 * inside a function the handler called.
 */
#include <stdio.h>

#include "rpc_int.h"

#define METHODS_MAX 256
#define LISTENERS_MAX 8
#define RESET_WINDOW_MS_DEFAULT 10000u

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN 24u

struct method
{
    char *path;
    size_t path_len;
    struct rpc_method_stats stats;
    struct rpc_method_ops ops;
    void *arg;
};

struct listener
{
    uv_tcp_t tcp;
    /* Takes and closes a connection no struct could be allocated for:
     * libuv accepts nothing more until a pending connection is taken. */
    uv_tcp_t reject;
    bool reject_busy;
    bool accept_pending;
    int handles; /* open handles; the struct is freed at 0 */
    struct rpc_server *srv;
    bool tls;
};

struct rpc_server
{
    struct rpc__pump pump;
    uv_loop_t *loop;
    struct rpc_server_config cfg; /* defaults applied; tls not kept */
    struct rpc__tls_ctx *tls;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_mem mem;
    struct method *methods;
    size_t methods_len;
    struct listener *listeners[LISTENERS_MAX];
    size_t listeners_len;
    size_t listeners_open;
    struct rpc__list conns;
    size_t conns_len;
    size_t calls_active;
    struct rpc__budget recv_budget; /* every connection's, together */
    bool closing;
    bool freeing;
    uv_timer_t grace;
    void (*closed_cb)(void *arg);
    void *closed_arg;
};

enum sconn_mode {
    MODE_SNIFF,
    MODE_H2,
    MODE_H1,
};

struct sconn
{
    struct rpc__conn c; /* first: a struct rpc__conn * is a struct sconn * */
    struct rpc_server *srv;
    struct rpc__list link; /* in srv->conns */
    enum sconn_mode mode;
    struct moor_buf in; /* the first bytes, while sniffing */
    struct rpc__h1 h1;
    struct rpc__list calls;
    struct rpc__list writable; /* calls whose writable_cb is due */
    struct rpc__list blocked;  /* calls waiting for the connection budget */
    size_t queued;             /* bytes queued by all calls, unsent */
    /* Receive buffers of the calls (partial messages and metadata, by
     * capacity), charged here and to the server's budget. */
    struct rpc__budget recv_budget;
    /* Stream bytes of incomplete messages: DATA received and not yet given
     * back to the connection's flow-control window (see on_data_chunk_recv).
     * Kept below half the window. */
    size_t held;
    size_t window; /* the connection's receive window: the budget's max */
    uint32_t resets;
    uint64_t resets_window_start;
};

enum call_state {
    CALL_HEADERS,
    CALL_ACTIVE,
    CALL_FINISHING,
    CALL_DONE,
};

struct rpc_call
{
    struct sconn *sc;
    int32_t stream_id;
    enum call_state state;
    struct rpc__list link;  /* in sc->calls */
    struct rpc__list wlink; /* in sc->writable or sc->blocked */
    struct method *method;  /* known once :path arrived */
    const char *path;       /* method->path, or path_owned */
    char *path_owned;       /* a copy, for an unknown method only */
    struct moor_buf md;     /* "key\0value\0" entries */
    uint32_t md_count;
    uint32_t header_bytes;
    bool post;
    bool ct_ok;
    bool bad_encoding;
    bool has_timeout;
    bool started;
    bool headers_sent;
    bool deferred;
    bool want_writable;
    bool remote_closed;
    bool trailers_queued;
    bool md_refused; /* metadata did not fit the receive budget */
    uint64_t timeout_ms;
    struct rpc__deadline deadline;
    struct rpc__deframer df;
    struct moor_buf outq;
    size_t outq_off;
    int status;
    struct moor_buf trailer_msg; /* percent-encoded grpc-message */
    void *user;
};

/* ------------------------------------------------------------------------
 * nghttp2's allocations go through moor's allocator.
 * ---------------------------------------------------------------------- */
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

/* ------------------------------------------------------------------------
 * Calls
 * ---------------------------------------------------------------------- */
static size_t call_pending(const struct rpc_call *call)
{
    return call->outq.len - call->outq_off;
}

/* What an open call costs beyond its buffers, charged to the receive
 * budget while it lives: its struct, and nghttp2's stream state (about
 * 300 bytes) with room to spare. So the calls of all connections together
 * are bounded too, not only max_concurrent_streams per connection. */
#define CALL_COST (sizeof(struct rpc_call) + 512u)

static struct rpc_call *call_new(struct sconn *sc, int32_t stream_id)
{
    struct rpc_call *call = moor_calloc(1, sizeof(*call));
    if (call == NULL) {
        return NULL;
    }
    call->sc = sc;
    call->stream_id = stream_id;
    call->state = CALL_HEADERS;
    rpc__list_init(&call->link);
    rpc__list_init(&call->wlink);
    moor_buf_init(&call->md);
    moor_buf_init(&call->outq);
    moor_buf_init(&call->trailer_msg);
    rpc__deframer_init(&call->df, &sc->recv_budget);
    call->deadline.idx = RPC__NOT_IN_HEAP;
    rpc__list_push(&sc->calls, &call->link);
    return call;
}

static void call_drop_queue(struct rpc_call *call)
{
    call->sc->queued -= call_pending(call);
    call->outq.len = 0;
    call->outq_off = 0;
}

/* Frees the call's partial message, giving its bytes back to the budget
 * and, when consume is set (the session lives on), to the connection's
 * window. */
static void call_drop_partial(struct rpc_call *call, bool consume)
{
    struct sconn *sc = call->sc;
    size_t held = rpc__deframer_held(&call->df);
    rpc__deframer_close(&call->df);
    sc->held -= held;
    if (consume && held > 0 && sc->c.h2 != NULL && !sc->c.dead) {
        nghttp2_session_consume_connection(sc->c.h2, held);
        rpc__conn_mark_dirty(&sc->c);
    }
}

static void call_free(struct rpc_call *call)
{
    call_drop_partial(call, true);
    rpc__budget_give(&call->sc->recv_budget, call->md.cap + CALL_COST);
    call_drop_queue(call);
    rpc__list_remove(&call->link);
    rpc__list_remove(&call->wlink);
    rpc__heap_remove(&call->sc->c.deadlines, &call->deadline);
    moor_free(call->path_owned);
    moor_buf_close(&call->md);
    moor_buf_close(&call->outq);
    moor_buf_close(&call->trailer_msg);
    moor_free(call);
}

/* Fires done_cb once (for started calls) and hides the call from the
 * handler. */
static void call_done(struct rpc_call *call, int status)
{
    if (call->state == CALL_DONE) {
        return;
    }
    call->state = CALL_DONE;
    rpc__list_remove(&call->wlink);
    rpc__heap_remove(&call->sc->c.deadlines, &call->deadline);
    if (!call->started) {
        return;
    }
    struct rpc_method_stats *st = &call->method->stats;
    st->handled[status >= 0 && status < RPC_STATUS_COUNT ? status
                                                         : RPC_UNKNOWN]++;
    call->sc->srv->calls_active--;
    if (call->method->ops.done_cb != NULL) {
        call->method->ops.done_cb(call, status, call->method->arg);
    }
}

static void count_reset(struct sconn *sc)
{
    struct rpc_server *srv = sc->srv;
    uint64_t now = rpc__conn_now(&sc->c);
    if (now - sc->resets_window_start >= srv->cfg.resets_window_ms) {
        sc->resets_window_start = now;
        sc->resets = 0;
    }
    if (++sc->resets > srv->cfg.resets_max && !sc->c.closing) {
        MOOR_LOG_WARN("rpc", "too many stream resets, closing connection",
                      "peer=%s resets=%u window_ms=%u", sc->c.peer, sc->resets,
                      srv->cfg.resets_window_ms);
        nghttp2_session_terminate_session(sc->c.h2, NGHTTP2_ENHANCE_YOUR_CALM);
        rpc__conn_close_soft(&sc->c, MOOR_EPROTO);
    }
}

/* nghttp2 copies names and values at submit time (no NO_COPY flags), so
 * they may live on the stack. */
#define NV(n, v)                                                  \
    {                                                             \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), \
            NGHTTP2_NV_FLAG_NONE                                  \
    }

static ssize_t call_read_cb(nghttp2_session *session, int32_t stream_id,
                            uint8_t *buf, size_t length, uint32_t *data_flags,
                            nghttp2_data_source *source, void *user_data);

/* Submits the trailers (grpc-status, grpc-message). */
static int call_submit_trailers(struct rpc_call *call)
{
    char status[12];
    snprintf(status, sizeof(status), "%d", call->status);
    nghttp2_nv nv[2] = {NV("grpc-status", status), NV("grpc-message", "")};
    size_t n = 1;
    if (call->trailer_msg.len > 0) {
        nv[1].value = call->trailer_msg.ptr;
        nv[1].valuelen = call->trailer_msg.len;
        n = 2;
    }
    call->trailers_queued = true;
    int rv = nghttp2_submit_trailer(call->sc->c.h2, call->stream_id, nv, n);
    return rv == 0 ? MOOR_OK : MOOR_EPROTO;
}

/* Resets the stream; when nghttp2 cannot even take that (out of memory),
 * closes the connection, so no call waits for a frame that never comes.
 * call_abort is the last resort when a response frame could not be
 * queued. */
static void call_reset(struct rpc_call *call, uint32_t error_code)
{
    struct sconn *sc = call->sc;
    if (nghttp2_submit_rst_stream(sc->c.h2, NGHTTP2_FLAG_NONE, call->stream_id,
                                  error_code) != 0) {
        moor_errmsg_set(sc->c.errmsg, "%s: cannot reset stream %d", sc->c.peer,
                        call->stream_id);
        rpc__conn_close_soft(&sc->c, MOOR_ENOMEM);
    }
    rpc__conn_mark_dirty(&sc->c);
}

static void call_abort(struct rpc_call *call)
{
    call->state = CALL_FINISHING;
    call->status = RPC_INTERNAL;
    call_reset(call, NGHTTP2_INTERNAL_ERROR);
}

/* Moves the call to FINISHING with status and message: a trailers-only
 * response when nothing was sent yet, else trailers after the queue. */
static int call_finish(struct rpc_call *call, int http_status, int status,
                       const char *message)
{
    struct sconn *sc = call->sc;
    call->status = status;
    call->trailer_msg.len = 0;
    if (message != NULL && message[0] != '\0' &&
        rpc__pct_encode(message, &call->trailer_msg) != MOOR_OK) {
        call->trailer_msg.len = 0;
    }
    call->state = CALL_FINISHING;
    rpc__list_remove(&call->wlink);
    int rv = 0;
    if (!call->headers_sent) {
        char http[8];
        char st[12];
        snprintf(http, sizeof(http), "%d", http_status);
        snprintf(st, sizeof(st), "%d", status);
        nghttp2_nv nv[4] = {NV(":status", http),
                            NV("content-type", "application/grpc"),
                            NV("grpc-status", st), NV("grpc-message", "")};
        size_t n = 3;
        if (call->trailer_msg.len > 0) {
            nv[3].value = call->trailer_msg.ptr;
            nv[3].valuelen = call->trailer_msg.len;
            n = 4;
        }
        call->headers_sent = true;
        call->trailers_queued = true;
        rv = nghttp2_submit_response(sc->c.h2, call->stream_id, nv, n, NULL);
    } else if (call->deferred) {
        call->deferred = false;
        rv = nghttp2_session_resume_data(sc->c.h2, call->stream_id);
    }
    if (rv != 0) {
        call_abort(call);
    }
    rpc__conn_mark_dirty(&sc->c);
    return rv == 0 ? MOOR_OK : MOOR_ENOMEM;
}

static ssize_t call_read_cb(nghttp2_session *session, int32_t stream_id,
                            uint8_t *buf, size_t length, uint32_t *data_flags,
                            nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    struct rpc_call *call = source->ptr;
    size_t n = MOOR_MIN(call_pending(call), length);
    if (n > 0) {
        memcpy(buf, call->outq.ptr + call->outq_off, n);
    }
    call->outq_off += n;
    struct sconn *sc = call->sc;
    sc->queued -= n;
    if (sc->queued < sc->srv->cfg.conn_send_buffer_bytes / 2 &&
        !rpc__list_empty(&sc->blocked)) {
        /* The connection's budget has room again: every call that waited
         * for it gets its writable_cb. */
        while (!rpc__list_empty(&sc->blocked)) {
            struct rpc__list *w = sc->blocked.next;
            rpc__list_remove(w);
            rpc__list_push(&sc->writable, w);
        }
    }
    if (call->outq_off == call->outq.len) {
        call->outq.len = 0;
        call->outq_off = 0;
        if (call->outq.cap > RPC__KEEP_BYTES) {
            moor_buf_close(&call->outq);
        }
    } else if (call->outq_off >= 64 * 1024 &&
               call->outq_off * 2 >= call->outq.len) {
        moor_buf_consume(&call->outq, call->outq_off);
        call->outq_off = 0;
    }
    if (call->want_writable &&
        call_pending(call) < call->sc->srv->cfg.send_buffer_bytes / 2 &&
        !rpc__list_linked(&call->wlink)) {
        rpc__list_push(&call->sc->writable, &call->wlink);
    }
    if (call_pending(call) == 0) {
        if (call->state == CALL_FINISHING || call->state == CALL_DONE) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            if (call->state == CALL_FINISHING && !call->trailers_queued) {
                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                if (call_submit_trailers(call) != MOOR_OK) {
                    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                }
            }
        } else if (n == 0) {
            call->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static void call_start(struct rpc_call *call, bool end_stream)
{
    struct sconn *sc = call->sc;
    struct rpc_server *srv = sc->srv;
    call->state = CALL_ACTIVE;
    if (!call->post || call->path == NULL) {
        call_finish(call, 405, RPC_INTERNAL, "grpc: expected POST with :path");
        return;
    }
    if (!call->ct_ok) {
        call_finish(call, 415, RPC_INTERNAL,
                    "grpc: invalid gRPC request content-type");
        return;
    }
    if (call->bad_encoding) {
        call_finish(call, 200, RPC_UNIMPLEMENTED,
                    "grpc: unsupported grpc-encoding (identity only)");
        return;
    }
    if (call->md_refused) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "rpc: receive buffer full (metadata does not fit: %zu of "
                 "%zu bytes held by this connection, %zu of %zu by all)",
                 sc->recv_budget.used, sc->recv_budget.max,
                 srv->recv_budget.used, srv->recv_budget.max);
        call_finish(call, 200, RPC_RESOURCE_EXHAUSTED, msg);
        return;
    }
    if (call->method == NULL) {
        /* grpc-go's wording, which clients show to users. */
        char msg[200];
        const char *slash = strrchr(call->path, '/');
        size_t svc_len = slash != NULL && slash > call->path
                             ? (size_t)(slash - call->path - 1)
                             : 0;
        bool svc_known = false;
        for (size_t i = 0; i < srv->methods_len && svc_len > 0; i++) {
            if (strncmp(srv->methods[i].path, call->path, svc_len + 2) == 0) {
                svc_known = true;
            }
        }
        if (svc_known) {
            snprintf(msg, sizeof(msg), "unknown method %s for service %.*s",
                     slash + 1, (int)MOOR_MIN(svc_len, 120), call->path + 1);
        } else {
            snprintf(msg, sizeof(msg), "unknown service %.*s",
                     (int)MOOR_MIN(svc_len, 120), call->path + 1);
        }
        call_finish(call, 200, RPC_UNIMPLEMENTED, msg);
        return;
    }
    if (call->has_timeout) {
        call->deadline.at_ms = rpc__conn_now(&sc->c) + call->timeout_ms;
        if (rpc__heap_push(&sc->c.deadlines, &call->deadline) != MOOR_OK) {
            call_finish(call, 200, RPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
    }
    call->started = true;
    call->method->stats.started++;
    srv->calls_active++;
    if (call->method->ops.start_cb != NULL) {
        call->method->ops.start_cb(call, call->method->arg);
    }
    if (end_stream && !call->remote_closed) {
        call->remote_closed = true;
        if ((call->state == CALL_ACTIVE || call->state == CALL_FINISHING) &&
            call->method->ops.half_close_cb != NULL) {
            call->method->ops.half_close_cb(call, call->method->arg);
        }
    }
}

static void call_half_close(struct rpc_call *call)
{
    if (call->remote_closed) {
        return;
    }
    call->remote_closed = true;
    if (call->state != CALL_ACTIVE && call->state != CALL_FINISHING) {
        return;
    }
    if (!rpc__deframer_idle(&call->df)) {
        if (call->state == CALL_ACTIVE) {
            call_finish(call, 200, RPC_INTERNAL,
                        "grpc: request ended inside a message");
        }
        return;
    }
    if (call->started && call->method->ops.half_close_cb != NULL) {
        call->method->ops.half_close_cb(call, call->method->arg);
    }
}

/* ------------------------------------------------------------------------
 * Public call functions
 * ---------------------------------------------------------------------- */
const char *rpc_call_path(const struct rpc_call *call)
{
    return call->path;
}

bool rpc_call_metadata_at(const struct rpc_call *call, size_t index,
                          const char **key, const char **value)
{
    if (index >= call->md_count) {
        return false;
    }
    const char *p = (const char *)call->md.ptr;
    for (size_t i = 0; i < index; i++) {
        p += strlen(p) + 1;
        p += strlen(p) + 1;
    }
    *key = p;
    *value = p + strlen(p) + 1;
    return true;
}

const char *rpc_call_metadata(const struct rpc_call *call, const char *key)
{
    const char *k;
    const char *v;
    for (size_t i = 0; rpc_call_metadata_at(call, i, &k, &v); i++) {
        if (strcmp(k, key) == 0) {
            return v;
        }
    }
    return NULL;
}

const char *rpc_call_peer(const struct rpc_call *call)
{
    return call->sc->c.peer;
}

void rpc_call_set_user(struct rpc_call *call, void *user)
{
    call->user = user;
}

void *rpc_call_user(const struct rpc_call *call)
{
    return call->user;
}

bool rpc_call_writable(struct rpc_call *call)
{
    struct sconn *sc = call->sc;
    if (call->state != CALL_ACTIVE) {
        return false;
    }
    /* A caller that holds back because of a false answer must hear when to
     * go on, exactly as after a refused send: the same arming. */
    if (call_pending(call) >= sc->srv->cfg.send_buffer_bytes) {
        call->want_writable = true;
        return false;
    }
    if (sc->queued >= sc->srv->cfg.conn_send_buffer_bytes) {
        call->want_writable = true;
        if (!rpc__list_linked(&call->wlink)) {
            rpc__list_push(&sc->blocked, &call->wlink);
        }
        return false;
    }
    return true;
}

int rpc_call_send(struct rpc_call *call, struct moor_slice msg)
{
    struct sconn *sc = call->sc;
    if (call->state != CALL_ACTIVE || sc->c.dead) {
        return MOOR_ECANCELED;
    }
    if (msg.len > UINT32_MAX) {
        return MOOR_ETOOBIG;
    }
    if (call_pending(call) >= sc->srv->cfg.send_buffer_bytes) {
        call->want_writable = true;
        return MOOR_EAGAIN;
    }
    if (sc->queued >= sc->srv->cfg.conn_send_buffer_bytes) {
        call->want_writable = true;
        if (!rpc__list_linked(&call->wlink)) {
            rpc__list_push(&sc->blocked, &call->wlink);
        }
        return MOOR_EAGAIN;
    }
    int rv = moor_buf_reserve(&call->outq, RPC__PREFIX + msg.len);
    if (rv != MOOR_OK) {
        return rv;
    }
    rpc__prefix_put(call->outq.ptr + call->outq.len, (uint32_t)msg.len);
    call->outq.len += RPC__PREFIX;
    if (msg.len > 0) {
        memcpy(call->outq.ptr + call->outq.len, msg.ptr, msg.len);
        call->outq.len += msg.len;
    }
    sc->queued += RPC__PREFIX + msg.len;
    call->method->stats.msgs_sent++;
    int r = 0;
    if (!call->headers_sent) {
        nghttp2_nv nv[3] = {NV(":status", "200"),
                            NV("content-type", "application/grpc"),
                            NV("grpc-accept-encoding", "identity")};
        nghttp2_data_provider prd;
        prd.source.ptr = call;
        prd.read_callback = call_read_cb;
        r = nghttp2_submit_response(sc->c.h2, call->stream_id, nv, 3, &prd);
        if (r != 0) {
            /* Not queued after all: take the message back. */
            call->outq.len -= RPC__PREFIX + msg.len;
            sc->queued -= RPC__PREFIX + msg.len;
            return MOOR_ENOMEM;
        }
        call->headers_sent = true;
    } else if (call->deferred) {
        call->deferred = false;
        r = nghttp2_session_resume_data(sc->c.h2, call->stream_id);
        if (r != 0) {
            call_abort(call);
            return MOOR_ECANCELED;
        }
    }
    rpc__conn_mark_dirty(&sc->c);
    return MOOR_OK;
}

int rpc_call_finish(struct rpc_call *call, int status, const char *message)
{
    if (call->state != CALL_ACTIVE || call->sc->c.dead) {
        return MOOR_ECANCELED;
    }
    return call_finish(call, 200, status, message);
}

void rpc_call_cancel(struct rpc_call *call)
{
    if (call->state != CALL_ACTIVE && call->state != CALL_FINISHING) {
        return;
    }
    call->state = CALL_FINISHING;
    call->status = RPC_CANCELLED;
    call_reset(call, NGHTTP2_CANCEL);
}

/* ------------------------------------------------------------------------
 * nghttp2 server callbacks
 * ---------------------------------------------------------------------- */
static int on_begin_headers(nghttp2_session *session,
                            const nghttp2_frame *frame, void *user_data)
{
    struct sconn *sc = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    if (rpc__budget_take(&sc->recv_budget, CALL_COST) != NULL) {
        /* REFUSED_STREAM: nothing of the request was processed, so the
         * client may retry it (RFC 9113 §8.7). The stream carries no call:
         * its headers and data are ignored. Refusals count as resets. */
        if (nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
                                      frame->hd.stream_id,
                                      NGHTTP2_REFUSED_STREAM) != 0) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        count_reset(sc);
        return 0;
    }
    struct rpc_call *call = call_new(sc, frame->hd.stream_id);
    if (call == NULL) {
        rpc__budget_give(&sc->recv_budget, CALL_COST);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
    return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user_data)
{
    (void)flags;
    struct sconn *sc = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0; /* request trailers: not used by gRPC, ignored */
    }
    struct rpc_call *call =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL) {
        return 0;
    }
    call->header_bytes += (uint32_t)(namelen + valuelen + 32);
    if (call->header_bytes > sc->srv->cfg.max_header_list_bytes) {
        count_reset(sc);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (namelen > 0 && name[0] == ':') {
        if (name_is(name, namelen, ":method")) {
            call->post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
        } else if (name_is(name, namelen, ":path") && call->path == NULL) {
            /* Known methods need no copy of the path. */
            struct rpc_server *srv = sc->srv;
            for (size_t i = 0; i < srv->methods_len; i++) {
                struct method *m = &srv->methods[i];
                if (m->path_len == valuelen &&
                    memcmp(m->path, value, valuelen) == 0) {
                    call->method = m;
                    call->path = m->path;
                    return 0;
                }
            }
            call->path_owned = moor_malloc(valuelen + 1);
            if (call->path_owned == NULL) {
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
            memcpy(call->path_owned, value, valuelen);
            call->path_owned[valuelen] = '\0';
            call->path = call->path_owned;
        }
        return 0;
    }
    if (name_is(name, namelen, "content-type")) {
        static const char ct[] = "application/grpc";
        call->ct_ok =
            valuelen >= sizeof(ct) - 1 &&
            memcmp(value, ct, sizeof(ct) - 1) == 0 &&
            (valuelen == sizeof(ct) - 1 || value[sizeof(ct) - 1] == '+' ||
             value[sizeof(ct) - 1] == ';');
        return 0;
    }
    if (name_is(name, namelen, "grpc-timeout")) {
        call->has_timeout = rpc__timeout_parse((const char *)value, valuelen,
                                               &call->timeout_ms) == MOOR_OK;
        return 0;
    }
    if (name_is(name, namelen, "grpc-encoding")) {
        call->bad_encoding =
            !(valuelen == 8 && memcmp(value, "identity", 8) == 0);
        return 0;
    }
    if (name_is(name, namelen, "te") ||
        (namelen >= 5 && memcmp(name, "grpc-", 5) == 0)) {
        return 0;
    }
    if (call->md_refused) {
        return 0;
    }
    /* Metadata lives as long as the call: its buffer is charged to the
     * receive budget, so thousands of open calls with large headers cannot
     * pin more than the budget. */
    size_t cap = call->md.cap;
    if (moor_buf_reserve(&call->md, namelen + valuelen + 2) != MOOR_OK) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (call->md.cap > cap &&
        rpc__budget_take(&sc->recv_budget, call->md.cap - cap) != NULL) {
        rpc__budget_give(&sc->recv_budget, cap);
        moor_buf_close(&call->md);
        call->md_count = 0;
        call->md_refused = true;
        return 0;
    }
    moor_buf_append(&call->md, name, namelen);
    moor_buf_putc(&call->md, 0);
    moor_buf_append(&call->md, value, valuelen);
    moor_buf_putc(&call->md, 0);
    call->md_count++;
    return 0;
}

static int call_msg_cb(struct moor_slice msg, void *arg)
{
    struct rpc_call *call = arg;
    if (call->state != CALL_ACTIVE) {
        return 1; /* finished or done: drop the rest */
    }
    call->method->stats.msgs_received++;
    if (call->method->ops.message_cb != NULL) {
        call->method->ops.message_cb(call, msg, call->method->arg);
    }
    return 0;
}

/* Flow control: the server reopens windows by hand. A stream's window is
 * given back at once (the per-message bound and the receive budget bound
 * what one stream holds); the connection's only for bytes that left the
 * buffers: complete messages, and partial ones when dropped. So a client
 * that honours the window never has more than the budget (the window's
 * size) received and unprocessed. Because nghttp2 sends WINDOW_UPDATE only
 * once half the window is consumed, incomplete messages must hold less
 * than half of it, or every stream could stall on a full window while
 * waiting for the rest of its message: the chunk that reaches half ends
 * its call RESOURCE_EXHAUSTED, which drops that call's partial message. */
static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags,
                              int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
    (void)flags;
    struct sconn *sc = user_data;
    struct rpc_call *call =
        nghttp2_session_get_stream_user_data(session, stream_id);
    size_t before = call != NULL ? rpc__deframer_held(&call->df) : 0;
    if (call != NULL && call->state == CALL_ACTIVE && call->started) {
        int status = RPC_INTERNAL;
        char msg[MOOR_ERRMSG_SIZE];
        int rv = rpc__deframer_feed(&call->df, data, len,
                                    sc->srv->cfg.max_recv_msg_bytes,
                                    call_msg_cb, call, &status, msg);
        if (rv == RPC__EFRAME) {
            call_finish(call, 200, status, msg);
        } else if (rv == MOOR_ENOMEM) {
            call_finish(call, 200, RPC_RESOURCE_EXHAUSTED, "out of memory");
        } else if (call->state == CALL_ACTIVE &&
                   sc->held + rpc__deframer_held(&call->df) - before >=
                       sc->window / 2) {
            char m[160];
            snprintf(m, sizeof(m),
                     "rpc: receive window full (%zu bytes of incomplete "
                     "messages on this connection, at most %zu)",
                     sc->held + rpc__deframer_held(&call->df) - before,
                     sc->window / 2 - 1);
            call_finish(call, 200, RPC_RESOURCE_EXHAUSTED, m);
        }
    }
    size_t after = before;
    if (call != NULL) {
        if (call->state != CALL_ACTIVE) {
            /* Ended (now or earlier): what it held is of no use. */
            rpc__deframer_close(&call->df);
        }
        after = rpc__deframer_held(&call->df);
    }
    sc->held = sc->held + after - before;
    if (nghttp2_session_consume_stream(session, stream_id, len) != 0 ||
        nghttp2_session_consume_connection(session, len + before - after) !=
            0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user_data)
{
    struct sconn *sc = user_data;
    bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
        struct rpc_call *call =
            nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (call == NULL) {
            return 0;
        }
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            call_start(call, end_stream);
        } else if (end_stream) {
            call_half_close(call);
        }
        return 0;
    }
    case NGHTTP2_DATA:
        if (end_stream) {
            struct rpc_call *call = nghttp2_session_get_stream_user_data(
                session, frame->hd.stream_id);
            if (call != NULL) {
                call_half_close(call);
            }
        }
        return 0;
    case NGHTTP2_RST_STREAM:
        count_reset(sc);
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            rpc__conn_ping_acked(&sc->c);
        }
        return 0;
    default:
        return 0;
    }
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user_data)
{
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        return 0;
    }
    struct rpc_call *call =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL) {
        return 0;
    }
    /* The response is complete. A client still sending is told to stop
     * without error (RFC 9113 §8.1), which frees the stream now. */
    int status = call->status;
    if (!call->remote_closed) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
                                  frame->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    call_done(call, status);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id,
                           uint32_t error_code, void *user_data)
{
    (void)user_data;
    struct rpc_call *call =
        nghttp2_session_get_stream_user_data(session, stream_id);
    if (call == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    (void)error_code;
    /* A call whose trailers were written is DONE already (on_frame_send);
     * any other ending is a cancellation from where the handler stands. */
    call_done(call, RPC_CANCELLED);
    call_free(call);
    return 0;
}

/* ------------------------------------------------------------------------
 * Connection ops
 * ---------------------------------------------------------------------- */
static int sconn_h2_start(struct sconn *sc)
{
    struct rpc_server *srv = sc->srv;
    int rv = nghttp2_session_server_new3(&sc->c.h2, srv->cbs, sc, srv->opt,
                                         &srv->mem);
    if (rv != 0) {
        return MOOR_ENOMEM;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
         srv->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, srv->cfg.max_header_list_bytes},
    };
    if (nghttp2_submit_settings(sc->c.h2, NGHTTP2_FLAG_NONE, iv,
                                MOOR_ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(sc->c.h2, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)sc->window) != 0) {
        return MOOR_ENOMEM;
    }
    sc->mode = MODE_H2;
    sc->c.alarm_at = 0; /* keepalive pings watch HTTP/2 connections */
    if (srv->closing) {
        nghttp2_submit_goaway(sc->c.h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR,
                              NULL, 0);
    }
    rpc__conn_rearm(&sc->c);
    return MOOR_OK;
}

static int sconn_ready(struct rpc__conn *c, const char *alpn)
{
    (void)c;
    (void)alpn;
    return MOOR_OK;
}

/* HTTP/1.x input; after an answer the connection has idle_timeout_ms
 * for its next request head. */
static int sconn_h1_input(struct sconn *sc, const uint8_t *p, size_t n)
{
    uint32_t answered = sc->h1.answered;
    int rv = rpc__h1_input(&sc->h1, &sc->c, p, n, sc->srv->cfg.http_fn,
                           sc->srv->cfg.http_arg);
    if (sc->h1.answered != answered && !sc->h1.done) {
        sc->c.alarm_at = rpc__conn_now(&sc->c) + sc->srv->cfg.idle_timeout_ms;
    }
    return rv;
}

static int sconn_input(struct rpc__conn *c, const uint8_t *p, size_t n)
{
    struct sconn *sc = (struct sconn *)c;
    if (sc->mode == MODE_H2) {
        return rpc__conn_h2_recv(c, p, n);
    }
    if (sc->mode == MODE_H1) {
        return sconn_h1_input(sc, p, n);
    }
    size_t take = MOOR_MIN(n, H2_PREFACE_LEN - sc->in.len);
    if (moor_buf_append(&sc->in, p, take) != MOOR_OK) {
        return MOOR_ENOMEM;
    }
    if (memcmp(sc->in.ptr, h2_preface, sc->in.len) == 0) {
        if (sc->in.len < H2_PREFACE_LEN) {
            return MOOR_OK;
        }
        int rv = sconn_h2_start(sc);
        if (rv == MOOR_OK) {
            rv = rpc__conn_h2_recv(c, sc->in.ptr, sc->in.len);
        }
        moor_buf_close(&sc->in);
        if (rv == MOOR_OK && n > take) {
            rv = rpc__conn_h2_recv(c, p + take, n - take);
        }
        return rv;
    }
    if (sc->in.ptr[0] >= 'A' && sc->in.ptr[0] <= 'Z') {
        sc->mode = MODE_H1;
        struct moor_buf first = sc->in;
        moor_buf_init(&sc->in);
        int rv = sconn_h1_input(sc, first.ptr, first.len);
        moor_buf_close(&first);
        if (rv == MOOR_OK && n > take && !c->dead) {
            rv = sconn_h1_input(sc, p + take, n - take);
        }
        return rv;
    }
    moor_errmsg_set(c->errmsg, "%s: neither HTTP/2 nor HTTP/1.x%s", c->peer,
                    sc->in.ptr[0] == 0x16 ? " (TLS on a cleartext port?)" : "");
    return MOOR_EPROTO;
}

static int sconn_produce(struct rpc__conn *c)
{
    struct sconn *sc = (struct sconn *)c;
    if (sc->mode != MODE_H2 || c->h2 == NULL) {
        return MOOR_OK;
    }
    for (int round = 0; round < 8; round++) {
        int rv = rpc__conn_h2_send(c);
        if ((rv != MOOR_OK && rv != MOOR_EAGAIN) ||
            rpc__list_empty(&sc->writable) || c->dead) {
            return rv;
        }
        /* Writable callbacks may queue more: send again, bounded. */
        while (!rpc__list_empty(&sc->writable)) {
            struct rpc_call *call =
                MOOR_CONTAINER_OF(sc->writable.next, struct rpc_call, wlink);
            rpc__list_remove(&call->wlink);
            call->want_writable = false;
            if (call->state == CALL_ACTIVE &&
                call->method->ops.writable_cb != NULL) {
                call->method->ops.writable_cb(call, call->method->arg);
            }
        }
        if (rv == MOOR_EAGAIN) {
            return rv;
        }
    }
    return MOOR_EAGAIN;
}

static bool sconn_finished(struct rpc__conn *c)
{
    struct sconn *sc = (struct sconn *)c;
    switch (sc->mode) {
    case MODE_H1:
        return sc->h1.done;
    case MODE_H2:
        return c->h2 == NULL || (!nghttp2_session_want_read(c->h2) &&
                                 !nghttp2_session_want_write(c->h2));
    default:
        return false;
    }
}

static void sconn_deadline(struct rpc__conn *c, struct rpc__deadline *d)
{
    (void)c;
    struct rpc_call *call = MOOR_CONTAINER_OF(d, struct rpc_call, deadline);
    if (call->state != CALL_ACTIVE && call->state != CALL_FINISHING) {
        return;
    }
    struct sconn *sc = call->sc;
    call_drop_queue(call);
    if (!call->headers_sent) {
        call_finish(call, 200, RPC_DEADLINE_EXCEEDED,
                    "context deadline exceeded");
    } else {
        call->state = CALL_FINISHING;
        call_reset(call, NGHTTP2_CANCEL);
    }
    call_done(call, RPC_DEADLINE_EXCEEDED);
    rpc__conn_mark_dirty(&sc->c);
}

/* The idle timeout (HTTP/2 connections have keepalive instead). */
static void sconn_alarm(struct rpc__conn *c)
{
    struct sconn *sc = (struct sconn *)c;
    if (sc->mode == MODE_H2) {
        return;
    }
    moor_errmsg_set(c->errmsg, "%s: idle for %llu ms%s", c->peer,
                    (unsigned long long)sc->srv->cfg.idle_timeout_ms,
                    sc->mode == MODE_H1 ? " between HTTP/1.1 requests"
                                        : " before its first request");
    rpc__conn_close_soft(c, MOOR_ETIMEDOUT);
}

static void server_maybe_free(struct rpc_server *srv);

static void sconn_closing(struct rpc__conn *c, int err)
{
    struct sconn *sc = (struct sconn *)c;
    if (c->errmsg[0] != '\0') {
        MOOR_LOG_DEBUG("rpc", "connection closed", "peer=%s err=%s why=%s",
                       c->peer, moor_errname(err), c->errmsg);
    }
    while (!rpc__list_empty(&sc->calls)) {
        struct rpc_call *call =
            MOOR_CONTAINER_OF(sc->calls.next, struct rpc_call, link);
        call_done(call, RPC_CANCELLED);
        call_free(call);
    }
}

static void sconn_free(struct rpc__conn *c)
{
    struct sconn *sc = (struct sconn *)c;
    struct rpc_server *srv = sc->srv;
    rpc__list_remove(&sc->link);
    srv->conns_len--;
    moor_buf_close(&sc->in);
    rpc__h1_close(&sc->h1);
    moor_free(sc);
    server_maybe_free(srv);
}

static const struct rpc__conn_ops sconn_ops = {
    sconn_ready,    sconn_input, sconn_produce, sconn_finished,
    sconn_deadline, sconn_alarm, sconn_closing, sconn_free,
};

static struct sconn *sconn_new(struct rpc_server *srv, bool fake)
{
    struct sconn *sc = moor_calloc(1, sizeof(*sc));
    if (sc == NULL) {
        return NULL;
    }
    if (rpc__conn_init(&sc->c, &srv->pump, &sconn_ops, fake) != MOOR_OK) {
        moor_free(sc);
        return NULL;
    }
    sc->srv = srv;
    sc->mode = MODE_SNIFF;
    moor_buf_init(&sc->in);
    rpc__h1_init(&sc->h1);
    rpc__list_init(&sc->calls);
    rpc__list_init(&sc->writable);
    rpc__list_init(&sc->blocked);
    sc->recv_budget.max = srv->cfg.conn_recv_buffer_bytes;
    sc->recv_budget.parent = &srv->recv_budget;
    sc->window = srv->cfg.conn_recv_buffer_bytes;
    if (!fake) {
        sc->c.alarm_at = uv_now(srv->loop) + srv->cfg.idle_timeout_ms;
    }
    sc->c.keepalive_ms = srv->cfg.keepalive_ms;
    sc->c.keepalive_timeout_ms = srv->cfg.keepalive_timeout_ms;
    rpc__list_push(&srv->conns, &sc->link);
    srv->conns_len++;
    return sc;
}

int rpc__server_fake_conn(struct rpc_server *srv, struct rpc__conn **out)
{
    struct sconn *sc = sconn_new(srv, true);
    if (sc == NULL) {
        return MOOR_ENOMEM;
    }
    int rv = rpc__conn_start(&sc->c);
    if (rv != MOOR_OK) {
        rpc__conn_close(&sc->c, rv);
        return rv;
    }
    *out = &sc->c;
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * Listeners
 * ---------------------------------------------------------------------- */
static void on_connection(uv_stream_t *server, int status);

static void listener_handle_closed_cb(uv_handle_t *h);

static void reject_closed_cb(uv_handle_t *h)
{
    struct listener *l = h->data;
    l->reject_busy = false;
    bool again = l->accept_pending && !l->srv->closing;
    l->accept_pending = false;
    listener_handle_closed_cb(h);
    if (again) {
        on_connection((uv_stream_t *)&l->tcp, 0);
    }
}

/* Out of memory: take the connection and close it, so the listener goes
 * on accepting (one at a time; the next waits for this close). */
static void reject_connection(struct listener *l)
{
    MOOR_LOG_WARN("rpc", "out of memory accepting a connection", NULL);
    if (l->reject_busy) {
        l->accept_pending = true;
        return;
    }
    uv_tcp_init(l->srv->loop, &l->reject);
    l->reject.data = l;
    l->handles++;
    l->reject_busy = true;
    uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&l->reject);
    uv_close((uv_handle_t *)&l->reject, reject_closed_cb);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    struct rpc_server *srv = l->srv;
    if (status < 0 || srv->closing) {
        return;
    }
    bool over = srv->conns_len >= srv->cfg.max_conns;
    struct sconn *sc = sconn_new(srv, false);
    if (sc == NULL) {
        reject_connection(l);
        return;
    }
    int rv =
        uv_accept(server, (uv_stream_t *)&sc->c.tcp) == 0 ? MOOR_OK : MOOR_EIO;
    if (rv == MOOR_OK && over) {
        MOOR_LOG_WARN("rpc", "connection limit reached, refusing",
                      "max_conns=%u", srv->cfg.max_conns);
        rv = MOOR_EBUSY;
    }
    if (rv == MOOR_OK && l->tls) {
        rv = rpc__tls_attach(&sc->c, srv->tls, NULL);
    }
    if (rv == MOOR_OK) {
        rv = rpc__conn_start(&sc->c);
    }
    if (rv != MOOR_OK) {
        rpc__conn_close(&sc->c, rv);
    }
}

int rpc_server_listen(struct rpc_server *srv, const char *host, uint16_t port,
                      bool tls, uint16_t *port_out, char *errmsg)
{
    if (srv->closing || host == NULL || (tls && srv->tls == NULL)) {
        return MOOR_EINVAL;
    }
    if (srv->listeners_len == LISTENERS_MAX) {
        return MOOR_ETOOBIG;
    }
    struct sockaddr_storage ss;
    if (strcmp(host, "localhost") == 0) {
        host = "127.0.0.1";
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        if (errmsg != NULL) {
            moor_errmsg_set(errmsg, "listen: '%s' is not an IP address", host);
        }
        return MOOR_EINVAL;
    }
    struct listener *l = moor_calloc(1, sizeof(*l));
    if (l == NULL) {
        return MOOR_ENOMEM;
    }
    l->srv = srv;
    l->tls = tls;
    if (uv_tcp_init(srv->loop, &l->tcp) != 0) {
        moor_free(l);
        return MOOR_EIO;
    }
    l->tcp.data = l;
    l->handles = 1;
    srv->listeners[srv->listeners_len++] = l;
    srv->listeners_open++;
    int rv = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
    }
    if (rv != 0) {
        if (errmsg != NULL) {
            moor_errmsg_set(errmsg, "listen on %s:%u: %s", host, port,
                            uv_strerror(rv));
        }
        return MOOR_EIO; /* the listener is closed with the server */
    }
    if (port_out != NULL) {
        struct sockaddr_storage bound;
        int len = (int)sizeof(bound);
        uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len);
        *port_out = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * Server lifecycle
 * ---------------------------------------------------------------------- */
int rpc_server_open(uv_loop_t *loop, const struct rpc_server_config *cfg,
                    struct rpc_server **out, char *errmsg)
{
    if (loop == NULL || cfg == NULL || out == NULL) {
        return MOOR_EINVAL;
    }
    struct rpc_server *srv = moor_calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return MOOR_ENOMEM;
    }
    int rv = MOOR_ENOMEM;
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->cfg.tls = NULL;
    struct rpc_server_config *c = &srv->cfg;
    if (c->max_recv_msg_bytes == 0) {
        c->max_recv_msg_bytes = 4u << 20;
    }
    if (c->max_concurrent_streams == 0) {
        c->max_concurrent_streams = 4096;
    }
    if (c->max_header_list_bytes == 0) {
        c->max_header_list_bytes = 64u << 10;
    }
    if (c->send_buffer_bytes == 0) {
        c->send_buffer_bytes = 1u << 20;
    }
    if (c->conn_send_buffer_bytes == 0) {
        c->conn_send_buffer_bytes = 16u << 20;
    }
    if (c->max_conns == 0) {
        c->max_conns = 10000;
    }
    /* One largest message must fit in less than half the window (see
     * on_data_chunk_recv), with room for metadata; the window is at most
     * 2^31 - 1 (RFC 9113 §6.9.1). */
    if (c->max_recv_msg_bytes > (1u << 30) - (64u << 10)) {
        c->max_recv_msg_bytes = (1u << 30) - (64u << 10);
    }
    if (c->conn_recv_buffer_bytes == 0) {
        c->conn_recv_buffer_bytes = 16u << 20;
    }
    c->conn_recv_buffer_bytes =
        MOOR_MAX(c->conn_recv_buffer_bytes,
                 2 * (c->max_recv_msg_bytes + RPC__PREFIX) + (64u << 10));
    c->conn_recv_buffer_bytes =
        MOOR_MIN(c->conn_recv_buffer_bytes, (size_t)INT32_MAX);
    if (c->recv_buffer_bytes == 0) {
        c->recv_buffer_bytes = 256u << 20;
    }
    c->recv_buffer_bytes =
        MOOR_MAX(c->recv_buffer_bytes, c->conn_recv_buffer_bytes);
    if (c->resets_max == 0) {
        c->resets_max = 1000;
    }
    if (c->resets_window_ms == 0) {
        c->resets_window_ms = RESET_WINDOW_MS_DEFAULT;
    }
    if (c->keepalive_ms == 0) {
        c->keepalive_ms = 2ull * 3600 * 1000;
    }
    if (c->keepalive_timeout_ms == 0) {
        c->keepalive_timeout_ms = 20000;
    }
    if (c->idle_timeout_ms == 0) {
        c->idle_timeout_ms = 120000;
    }
    rpc__list_init(&srv->conns);
    srv->recv_budget.max = c->recv_buffer_bytes;
    srv->mem.mem_user_data = NULL;
    srv->mem.malloc = mem_malloc;
    srv->mem.free = mem_free;
    srv->mem.calloc = mem_calloc;
    srv->mem.realloc = mem_realloc;
    if (cfg->tls != NULL) {
        rv = rpc__tls_ctx_new(cfg->tls, true, &srv->tls, errmsg);
        if (rv != MOOR_OK) {
            goto err_free;
        }
        rv = MOOR_ENOMEM;
    }
    if (nghttp2_session_callbacks_new(&srv->cbs) != 0) {
        goto err_tls;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(srv->cbs,
                                                            on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(srv->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        srv->cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_recv_callback(srv->cbs,
                                                         on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(srv->cbs,
                                                         on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(srv->cbs,
                                                           on_stream_close);
    if (nghttp2_option_new(&srv->opt) != 0) {
        goto err_cbs;
    }
    /* Closed streams are not kept for priority bookkeeping: memory per
     * connection stays bounded by the open streams. */
    nghttp2_option_set_no_closed_streams(srv->opt, 1);
    /* Windows are given back by hand: see on_data_chunk_recv. */
    nghttp2_option_set_no_auto_window_update(srv->opt, 1);
    nghttp2_option_set_max_settings(srv->opt, 32);
    /* grpc-go clients given an endpoint with a scheme (etcdctl's --cluster
     * uses the members' client URLs) send ":authority: http://host:port",
     * which nghttp2's HTTP messaging checks reject with a stream
     * PROTOCOL_ERROR while etcd accepts it. gRPC needs none of those
     * checks: on_header and call_start validate what a call needs
     * (:method POST, :path, content-type, header-list bytes), and frame
     * and HPACK validation stay on. */
    nghttp2_option_set_no_http_messaging(srv->opt, 1);
    /* libuv's prepare, idle and timer inits cannot fail. */
    rpc__pump_init(&srv->pump, loop);
    uv_timer_init(loop, &srv->grace);
    srv->grace.data = srv;
    *out = srv;
    return MOOR_OK;
err_cbs:
    nghttp2_session_callbacks_del(srv->cbs);
err_tls:
    rpc__tls_ctx_free(srv->tls);
err_free:
    moor_free(srv);
    return rv;
}

int rpc_server_add_method(struct rpc_server *srv, const char *path,
                          const struct rpc_method_ops *ops, void *arg)
{
    if (path == NULL || path[0] != '/' || ops == NULL) {
        return MOOR_EINVAL;
    }
    for (size_t i = 0; i < srv->methods_len; i++) {
        if (strcmp(srv->methods[i].path, path) == 0) {
            return MOOR_EEXIST;
        }
    }
    if (srv->methods_len == METHODS_MAX) {
        return MOOR_ETOOBIG;
    }
    if (srv->listeners_len > 0) {
        return MOOR_EBUSY; /* calls hold pointers into the array */
    }
    struct method *m =
        moor_realloc(srv->methods, (srv->methods_len + 1) * sizeof(*m));
    if (m == NULL) {
        return MOOR_ENOMEM;
    }
    srv->methods = m;
    char *p = moor_strdup(path);
    if (p == NULL) {
        return MOOR_ENOMEM;
    }
    m[srv->methods_len].path = p;
    m[srv->methods_len].path_len = strlen(p);
    memset(&m[srv->methods_len].stats, 0, sizeof(m[srv->methods_len].stats));
    m[srv->methods_len].ops = *ops;
    m[srv->methods_len].arg = arg;
    srv->methods_len++;
    return MOOR_OK;
}

size_t rpc_server_conn_count(const struct rpc_server *srv)
{
    return srv->conns_len;
}

size_t rpc_server_calls_active(const struct rpc_server *srv)
{
    return srv->calls_active;
}

bool rpc_server_method_stats(const struct rpc_server *srv, size_t index,
                             const char **path, struct rpc_method_stats *out)
{
    if (index >= srv->methods_len) {
        return false;
    }
    *path = srv->methods[index].path;
    *out = srv->methods[index].stats;
    return true;
}

static void server_pump_closed(struct rpc__pump *p)
{
    struct rpc_server *srv = MOOR_CONTAINER_OF(p, struct rpc_server, pump);
    void (*cb)(void *) = srv->closed_cb;
    void *arg = srv->closed_arg;
    for (size_t i = 0; i < srv->methods_len; i++) {
        moor_free(srv->methods[i].path);
    }
    moor_free(srv->methods);
    nghttp2_option_del(srv->opt);
    nghttp2_session_callbacks_del(srv->cbs);
    rpc__tls_ctx_free(srv->tls);
    moor_free(srv);
    if (cb != NULL) {
        cb(arg);
    }
}

static void grace_closed_cb(uv_handle_t *h)
{
    struct rpc_server *srv = h->data;
    rpc__pump_close(&srv->pump, server_pump_closed);
}

static void server_maybe_free(struct rpc_server *srv)
{
    if (!srv->closing || srv->freeing || srv->conns_len > 0 ||
        srv->listeners_open > 0) {
        return;
    }
    srv->freeing = true;
    uv_close((uv_handle_t *)&srv->grace, grace_closed_cb);
}

static void listener_handle_closed_cb(uv_handle_t *h)
{
    struct listener *l = h->data;
    if (--l->handles > 0) {
        return;
    }
    struct rpc_server *srv = l->srv;
    moor_free(l);
    srv->listeners_open--;
    server_maybe_free(srv);
}

static void grace_timer_cb(uv_timer_t *t)
{
    struct rpc_server *srv = t->data;
    struct rpc__list *n = srv->conns.next;
    while (n != &srv->conns) {
        struct sconn *sc = MOOR_CONTAINER_OF(n, struct sconn, link);
        n = n->next;
        rpc__conn_close(&sc->c, MOOR_ESHUTDOWN);
    }
}

void rpc_server_close(struct rpc_server *srv, uint64_t grace_ms,
                      void (*closed_cb)(void *arg), void *arg)
{
    if (srv->closing) {
        return;
    }
    srv->closing = true;
    srv->closed_cb = closed_cb;
    srv->closed_arg = arg;
    for (size_t i = 0; i < srv->listeners_len; i++) {
        uv_close((uv_handle_t *)&srv->listeners[i]->tcp,
                 listener_handle_closed_cb);
    }
    for (struct rpc__list *n = srv->conns.next; n != &srv->conns; n = n->next) {
        struct sconn *sc = MOOR_CONTAINER_OF(n, struct sconn, link);
        if (sc->mode == MODE_H2 && sc->c.h2 != NULL) {
            nghttp2_submit_goaway(
                sc->c.h2, NGHTTP2_FLAG_NONE,
                nghttp2_session_get_last_proc_stream_id(sc->c.h2),
                NGHTTP2_NO_ERROR, NULL, 0);
            rpc__conn_mark_dirty(&sc->c);
        } else {
            rpc__conn_close_soft(&sc->c, MOOR_ESHUTDOWN);
        }
    }
    uv_timer_start(&srv->grace, grace_timer_cb, grace_ms, 0);
    server_maybe_free(srv);
}
