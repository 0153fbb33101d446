/*
 * conn.c: one connection's socket, output batching, timer and close
 * sequence; the pump that flushes connections once per loop iteration;
 * the deadline heap.
 *
 * Write path: protocol code appends plaintext through rpc__conn_write (the
 * transport encrypts into c->out). Nothing is written from the callback
 * that queued it: the connection is linked on its pump's dirty list and
 * the pump's uv_prepare callback, which runs once per loop iteration right
 * before the loop blocks, asks the owner to produce (nghttp2 mem_send up
 * to RPC__OUT_HWM bytes) and writes everything gathered: straight to the
 * socket, and what the socket does not take with one uv_write. While that
 * write is in flight, c->out gathers the next batch; when it completes,
 * the connection is dirty again. So a connection holds at most
 * about two high-water marks of output, however fast its calls produce:
 * the rest stays in the calls' own bounded queues, and the HTTP/2 windows
 * bound what the peer has not acknowledged.
 *
 * Close: rpc__conn_close_soft stops reading and lets the owner write its
 * last frames (a GOAWAY) before the hard close; a guard timer bounds how
 * long that may take. rpc__conn_close tells the owner (which ends its
 * calls), frees the transport, closes the handles, and the owner frees
 * the struct in ops->free once both handles are closed.
 */
#include <stdio.h>

#include "rpc_int.h"

/* ------------------------------------------------------------------------
 * Deadline heap
 * ---------------------------------------------------------------------- */
void rpc__heap_init(struct rpc__heap *h)
{
    h->v = NULL;
    h->len = 0;
    h->cap = 0;
}

void rpc__heap_close(struct rpc__heap *h)
{
    for (uint32_t i = 0; i < h->len; i++) {
        h->v[i]->idx = RPC__NOT_IN_HEAP;
    }
    moor_free(h->v);
    rpc__heap_init(h);
}

static void heap_set(struct rpc__heap *h, uint32_t i, struct rpc__deadline *d)
{
    h->v[i] = d;
    d->idx = i;
}

static void heap_up(struct rpc__heap *h, uint32_t i)
{
    struct rpc__deadline *d = h->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->v[parent]->at_ms <= d->at_ms) {
            break;
        }
        heap_set(h, i, h->v[parent]);
        i = parent;
    }
    heap_set(h, i, d);
}

static void heap_down(struct rpc__heap *h, uint32_t i)
{
    struct rpc__deadline *d = h->v[i];
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= h->len) {
            break;
        }
        uint32_t m = l;
        if (l + 1 < h->len && h->v[l + 1]->at_ms < h->v[l]->at_ms) {
            m = l + 1;
        }
        if (d->at_ms <= h->v[m]->at_ms) {
            break;
        }
        heap_set(h, i, h->v[m]);
        i = m;
    }
    heap_set(h, i, d);
}

int rpc__heap_push(struct rpc__heap *h, struct rpc__deadline *d)
{
    if (h->len == h->cap) {
        uint32_t cap = h->cap == 0 ? 16 : h->cap * 2;
        void *v = moor_realloc(h->v, cap * sizeof(*h->v));
        if (v == NULL) {
            return MOOR_ENOMEM;
        }
        h->v = v;
        h->cap = cap;
    }
    h->v[h->len] = d;
    d->idx = h->len;
    h->len++;
    heap_up(h, d->idx);
    return MOOR_OK;
}

void rpc__heap_remove(struct rpc__heap *h, struct rpc__deadline *d)
{
    uint32_t i = d->idx;
    if (i == RPC__NOT_IN_HEAP || i >= h->len || h->v[i] != d) {
        return;
    }
    d->idx = RPC__NOT_IN_HEAP;
    h->len--;
    if (i == h->len) {
        return;
    }
    heap_set(h, i, h->v[h->len]);
    heap_down(h, i);
    heap_up(h, h->v[i]->idx == i ? i : h->v[i]->idx);
}

struct rpc__deadline *rpc__heap_top(const struct rpc__heap *h)
{
    return h->len > 0 ? h->v[0] : NULL;
}

/* ------------------------------------------------------------------------
 * Pump
 * ---------------------------------------------------------------------- */
static void conn_flush(struct rpc__conn *c);

static void pump_idle_cb(uv_idle_t *handle)
{
    (void)handle;
}

static void pump_prepare_cb(uv_prepare_t *handle)
{
    struct rpc__pump *p = MOOR_CONTAINER_OF(handle, struct rpc__pump, prepare);
    /* Flush the connections dirty now; ones that get dirty again during
     * this pass (more work than one high-water mark) wait for the next
     * iteration, which the idle handle makes non-blocking. */
    struct rpc__list batch;
    rpc__list_init(&batch);
    if (!rpc__list_empty(&p->dirty)) {
        batch.next = p->dirty.next;
        batch.prev = p->dirty.prev;
        batch.next->prev = &batch;
        batch.prev->next = &batch;
        rpc__list_init(&p->dirty);
    }
    while (!rpc__list_empty(&batch)) {
        struct rpc__list *n = batch.next;
        rpc__list_remove(n);
        conn_flush(MOOR_CONTAINER_OF(n, struct rpc__conn, dirty_link));
    }
    if (rpc__list_empty(&p->dirty)) {
        uv_idle_stop(&p->idle);
    } else {
        uv_idle_start(&p->idle, pump_idle_cb);
    }
}

int rpc__pump_init(struct rpc__pump *p, uv_loop_t *loop)
{
    p->loop = loop;
    rpc__list_init(&p->dirty);
    p->handles = 0;
    p->closed_cb = NULL;
    /* Neither init can fail (libuv only links the handle in). */
    uv_prepare_init(loop, &p->prepare);
    uv_idle_init(loop, &p->idle);
    p->handles = 2;
    uv_prepare_start(&p->prepare, pump_prepare_cb);
    /* The prepare hook must not keep the loop alive by itself. */
    uv_unref((uv_handle_t *)&p->prepare);
    uv_unref((uv_handle_t *)&p->idle);
    return MOOR_OK;
}

static void pump_handle_closed_cb(uv_handle_t *h)
{
    struct rpc__pump *p = h->data;
    if (--p->handles == 0 && p->closed_cb != NULL) {
        p->closed_cb(p);
    }
}

void rpc__pump_close(struct rpc__pump *p, void (*closed_cb)(struct rpc__pump *))
{
    p->closed_cb = closed_cb;
    p->prepare.data = p;
    p->idle.data = p;
    uv_close((uv_handle_t *)&p->idle, pump_handle_closed_cb);
    uv_close((uv_handle_t *)&p->prepare, pump_handle_closed_cb);
}

/* ------------------------------------------------------------------------
 * Connection
 * ---------------------------------------------------------------------- */
static void conn_timer_cb(uv_timer_t *t);

uint64_t rpc__conn_now(const struct rpc__conn *c)
{
    return uv_now(c->pump->loop);
}

int rpc__conn_init(struct rpc__conn *c, struct rpc__pump *pump,
                   const struct rpc__conn_ops *ops, bool fake)
{
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->pump = pump;
    c->fake = fake;
    c->tp = &rpc__tcp_ops;
    moor_buf_init(&c->out);
    moor_buf_init(&c->wbuf);
    rpc__list_init(&c->dirty_link);
    rpc__heap_init(&c->deadlines);
    c->timer_at = UINT64_MAX;
    snprintf(c->peer, sizeof(c->peer), "%s", fake ? "fake" : "?");
    if (uv_timer_init(pump->loop, &c->timer) != 0) {
        return MOOR_EIO;
    }
    c->timer.data = c;
    c->handles++;
    if (!fake) {
        if (uv_tcp_init(pump->loop, &c->tcp) != 0) {
            c->handles--;
            uv_close((uv_handle_t *)&c->timer, NULL);
            return MOOR_EIO;
        }
        c->tcp.data = c;
        c->handles++;
    }
    return MOOR_OK;
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct rpc__conn *c = h->data;
    (void)suggested;
    buf->base = (char *)c->pump->rbuf;
    buf->len = sizeof(c->pump->rbuf);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct rpc__conn *c = s->data;
    if (nread < 0) {
        if (nread != UV_EOF) {
            moor_errmsg_set(c->errmsg, "read from %s: %s", c->peer,
                            uv_strerror((int)nread));
        } else if (c->errmsg[0] == '\0') {
            moor_errmsg_set(c->errmsg, "%s closed the connection", c->peer);
        }
        rpc__conn_close(c, MOOR_ECONN);
        return;
    }
    if (nread == 0) {
        return;
    }
    rpc__conn_feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

int rpc__conn_feed(struct rpc__conn *c, const uint8_t *p, size_t n)
{
    if (c->dead || c->closing) {
        return MOOR_OK;
    }
    int rv = c->tp->input(c, p, n);
    if (rv != MOOR_OK) {
        if (c->dead) {
            return rv;
        }
        if (rv == MOOR_ENOMEM) {
            rpc__conn_close(c, rv); /* state may be half updated */
        } else {
            rpc__conn_close_soft(c, rv);
        }
        return rv;
    }
    rpc__conn_mark_dirty(c);
    return MOOR_OK;
}

int rpc__conn_start(struct rpc__conn *c)
{
    if (!c->fake) {
        struct sockaddr_storage ss;
        int len = (int)sizeof(ss);
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
            char ip[48] = "?";
            int port = 0;
            if (ss.ss_family == AF_INET) {
                struct sockaddr_in *a = (struct sockaddr_in *)&ss;
                uv_ip4_name(a, ip, sizeof(ip));
                port = ntohs(a->sin_port);
            } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
                uv_ip6_name(a, ip, sizeof(ip));
                port = ntohs(a->sin6_port);
            }
            snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
        }
        uv_tcp_nodelay(&c->tcp, 1);
        int rv =
            uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
        if (rv != 0) {
            moor_errmsg_set(c->errmsg, "read start: %s", uv_strerror(rv));
            return MOOR_EIO;
        }
        c->reading = true;
    }
    if (c->keepalive_ms > 0) {
        c->ping_due_at = rpc__conn_now(c) + c->keepalive_ms;
    }
    int rv = c->tp->start(c);
    if (rv != MOOR_OK) {
        return rv;
    }
    rpc__conn_mark_dirty(c);
    return MOOR_OK;
}

int rpc__conn_write(struct rpc__conn *c, const void *p, size_t n)
{
    int rv = c->tp->output(c, p, n);
    if (rv != MOOR_OK && !c->dead) {
        /* Bytes were lost: what follows would be read as garbage (or, for
         * HTTP/2, as frames of a stream with a hole). Nothing more may be
         * sent on this connection. */
        moor_errmsg_set(c->errmsg, "%s: output lost: %s", c->peer,
                        moor_strerror(rv));
        rpc__conn_close(c, rv);
    }
    return rv;
}

int rpc__conn_write_raw(struct rpc__conn *c, const void *p, size_t n)
{
    if (c->fake) {
        return MOOR_OK; /* fuzzing: the output goes nowhere */
    }
    return moor_buf_append(&c->out, p, n);
}

void rpc__conn_mark_dirty(struct rpc__conn *c)
{
    if (c->dead || rpc__list_linked(&c->dirty_link)) {
        return;
    }
    rpc__list_push(&c->pump->dirty, &c->dirty_link);
}

static void conn_write_cb(uv_write_t *req, int status)
{
    struct rpc__conn *c = req->data;
    c->writing = false;
    c->wbuf.len = 0;
    if (c->wbuf.cap > RPC__KEEP_BYTES) {
        /* A burst grew it: give it back rather than hold it per idle
         * connection. */
        moor_buf_close(&c->wbuf);
    }
    if (c->dead) {
        return;
    }
    if (status < 0) {
        moor_errmsg_set(c->errmsg, "write to %s: %s", c->peer,
                        uv_strerror(status));
        rpc__conn_close(c, MOOR_ECONN);
        return;
    }
    rpc__conn_mark_dirty(c);
}

/* Writes c->out: first straight to the socket (uv_try_write), and only
 * what the socket did not take through a uv_write request. A batch the
 * socket takes whole (the usual case) costs one write(2) and nothing else:
 * a uv_write request would also cost an epoll_ctl when it completes
 * (libuv re-arms the watcher without POLLOUT) and a trip through the next
 * iteration's pending phase. */
static void conn_start_write(struct rpc__conn *c)
{
    if (c->writing || c->out.len == 0 || c->fake) {
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->out.ptr, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
        moor_errmsg_set(c->errmsg, "write to %s: %s", c->peer, uv_strerror(n));
        rpc__conn_close(c, MOOR_ECONN);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    if (done == c->out.len) {
        c->out.len = 0;
        if (c->out.cap > RPC__KEEP_BYTES) {
            moor_buf_close(&c->out); /* as conn_write_cb does for wbuf */
        }
        return;
    }
    struct moor_buf t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    c->out.len = 0;
    b = uv_buf_init((char *)c->wbuf.ptr + done, (unsigned)(c->wbuf.len - done));
    c->wreq.data = c;
    int rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
    if (rv != 0) {
        moor_errmsg_set(c->errmsg, "write to %s: %s", c->peer, uv_strerror(rv));
        rpc__conn_close(c, MOOR_ECONN);
        return;
    }
    c->writing = true;
}

static void conn_flush(struct rpc__conn *c)
{
    if (c->dead) {
        return;
    }
    int rv = c->ops->produce(c);
    if (c->dead) {
        return;
    }
    if (rv != MOOR_OK && rv != MOOR_EAGAIN) {
        if (!c->closing) {
            rpc__conn_close_soft(c, rv);
        } else {
            rpc__conn_close(c, rv);
            return;
        }
    }
    conn_start_write(c);
    if (c->dead) {
        return;
    }
    if (rv == MOOR_EAGAIN && !c->writing) {
        rpc__conn_mark_dirty(c);
    }
    /* Nothing in flight and nothing more to produce: a softly closing
     * connection is done, and so is one whose protocol has finished (a
     * drained HTTP/2 session after GOAWAY, an answered HTTP/1.1 request). */
    bool idle = !c->writing && c->out.len == 0 && rv != MOOR_EAGAIN;
    if (idle && (c->closing || c->ops->finished(c))) {
        rpc__conn_close(c, MOOR_OK);
        return;
    }
    rpc__conn_rearm(c);
}

void rpc__conn_rearm(struct rpc__conn *c)
{
    if (c->dead) {
        return;
    }
    uint64_t at = UINT64_MAX;
    struct rpc__deadline *d = rpc__heap_top(&c->deadlines);
    if (d != NULL) {
        at = d->at_ms;
    }
    if (c->alarm_at != 0) {
        at = MOOR_MIN(at, c->alarm_at);
    }
    if (c->close_guard_at != 0) {
        at = MOOR_MIN(at, c->close_guard_at);
    }
    if (c->keepalive_ms > 0 && c->h2 != NULL) {
        if (c->ping_sent_at != 0) {
            at = MOOR_MIN(at, c->ping_sent_at + c->keepalive_timeout_ms);
        } else {
            at = MOOR_MIN(at, c->ping_due_at);
        }
    }
    if (at == UINT64_MAX) {
        if (c->timer_at != UINT64_MAX) {
            uv_timer_stop(&c->timer);
            c->timer_at = UINT64_MAX;
        }
        return;
    }
    if (c->timer_at <= at) {
        return; /* due no later than needed (see timer_at) */
    }
    uint64_t now = rpc__conn_now(c);
    uv_timer_start(&c->timer, conn_timer_cb, at > now ? at - now : 0, 0);
    c->timer_at = MOOR_MAX(at, now);
}

static void conn_timer_cb(uv_timer_t *t)
{
    struct rpc__conn *c = t->data;
    uint64_t now = rpc__conn_now(c);
    c->timer_at = UINT64_MAX; /* a one-shot timer: stopped now */
    if (c->close_guard_at != 0 && now >= c->close_guard_at) {
        rpc__conn_close(c, MOOR_ETIMEDOUT);
        return;
    }
    if (c->alarm_at != 0 && now >= c->alarm_at) {
        c->alarm_at = 0;
        c->ops->alarm(c);
        if (c->dead) {
            return;
        }
    }
    if (c->keepalive_ms > 0 && c->h2 != NULL && !c->closing) {
        if (c->ping_sent_at != 0 &&
            now >= c->ping_sent_at + c->keepalive_timeout_ms) {
            moor_errmsg_set(c->errmsg, "%s: keepalive ping not acknowledged",
                            c->peer);
            rpc__conn_close(c, MOOR_ETIMEDOUT);
            return;
        }
        if (c->ping_sent_at == 0 && now >= c->ping_due_at) {
            nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL);
            c->ping_sent_at = now;
            rpc__conn_mark_dirty(c);
        }
    }
    /* A deadline callback may end calls and even the connection; take at
     * most a bounded batch per tick so one timer cannot starve I/O. */
    for (int i = 0; i < 4096 && !c->dead; i++) {
        struct rpc__deadline *d = rpc__heap_top(&c->deadlines);
        if (d == NULL || d->at_ms > now) {
            break;
        }
        rpc__heap_remove(&c->deadlines, d);
        c->ops->deadline(c, d);
    }
    if (!c->dead) {
        rpc__conn_mark_dirty(c);
        rpc__conn_rearm(c);
    }
}

void rpc__conn_ping_acked(struct rpc__conn *c)
{
    if (c->ping_sent_at != 0) {
        c->ping_sent_at = 0;
        c->ping_due_at = rpc__conn_now(c) + c->keepalive_ms;
    }
}

void rpc__conn_close_soft(struct rpc__conn *c, int err)
{
    if (c->dead || c->closing) {
        return;
    }
    (void)err;
    c->closing = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    c->close_guard_at = rpc__conn_now(c) + RPC__CLOSE_GUARD_MS;
    rpc__conn_mark_dirty(c);
    rpc__conn_rearm(c);
}

static void conn_handle_closed_cb(uv_handle_t *h)
{
    struct rpc__conn *c = h->data;
    if (--c->handles == 0) {
        moor_buf_close(&c->out);
        moor_buf_close(&c->wbuf);
        rpc__heap_close(&c->deadlines);
        c->ops->free(c);
    }
}

void rpc__conn_close(struct rpc__conn *c, int err)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    if (rpc__list_linked(&c->dirty_link)) {
        rpc__list_remove(&c->dirty_link);
    }
    c->ops->closing(c, err);
    if (c->h2 != NULL) {
        nghttp2_session_del(c->h2);
        c->h2 = NULL;
    }
    c->tp->close(c);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
    if (!c->fake) {
        uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
    }
}

int rpc__conn_h2_send(struct rpc__conn *c)
{
    while (c->out.len < RPC__OUT_HWM) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            moor_errmsg_set(c->errmsg, "%s: http2: %s", c->peer,
                            nghttp2_strerror((int)n));
            return MOOR_EPROTO;
        }
        if (n == 0) {
            return MOOR_OK;
        }
        int rv = rpc__conn_write(c, data, (size_t)n);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return nghttp2_session_want_write(c->h2) ? MOOR_EAGAIN : MOOR_OK;
}

int rpc__conn_h2_recv(struct rpc__conn *c, const uint8_t *p, size_t n)
{
    ssize_t r = nghttp2_session_mem_recv(c->h2, p, n);
    if (r < 0) {
        if (c->errmsg[0] == '\0') {
            moor_errmsg_set(c->errmsg, "%s: http2: %s", c->peer,
                            nghttp2_strerror((int)r));
        }
        return MOOR_EPROTO;
    }
    return MOOR_OK;
}
