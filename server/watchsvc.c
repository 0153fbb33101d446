/*
 * watchsvc.c: etcd's Watch service, the bidirectional stream.
 *
 * A stream holds any number of watches. Each is a kv watcher (struct
 * kv_watcher inside struct srv_watch): kv finds the watchers a write
 * touches through its interval index and puts them on its ready list; once
 * per loop turn, after applying, srv_watch_deliver() drains that list and
 * sends one WatchResponse per watcher with up to WATCH_EVENTS_MAX events
 * (never splitting a revision, as kv guarantees).
 *
 * Back-pressure: a watcher whose stream cannot take more output (rpc's
 * bounded per-call queue is full because the client does not read) is
 * parked on its stream instead of being drained; its events stay in kv,
 * which bounds them and falls back to catching up from history. When rpc
 * reports the call writable again, the parked watchers are drained.
 *
 * Progress: a WatchProgressRequest is answered (watch_id -1) once every
 * watch of the stream is synced. Watches created with progress_notify get
 * etcd's periodic notification: every --experimental-watch-progress-
 * notify-interval (10 minutes) a stream timer sends each such watch that
 * is synced, and was sent no events since the last period, an empty
 * WatchResponse with its watch id and the current revision in the header
 * (etcd 3.4's sendLoop). A stream's timer runs only while it has such a
 * watch and is closed with the stream.
 *
 * Not yet: fragmentation of huge revisions.
 */
#include "server_int.h"

#define WATCH_EVENTS_MAX 1000
/* Watches one stream may hold; beyond: the create is canceled. */
#define WATCHES_PER_STREAM_MAX 100000

struct srv_watch_stream;

struct srv_watch
{
    struct kv_watcher kw;
    struct srv_watch_stream *st;
    int64_t id;
    bool parked;
    bool no_put, no_delete, prev_kv; /* the create's filters, to re-open */
    bool lost;                       /* srv_watch_rehome could not re-open it */
    bool progress_notify;            /* created with progress_notify */
    bool progress_due;               /* no events sent since the last period */
    struct srv_watch *next;          /* the stream's watches */
    struct srv_watch *park_next;     /* the stream's parked watches */
};

struct srv_watch_stream
{
    struct srv_node *n;
    struct rpc_call *call;
    struct srv_watch_stream *prev, *next; /* the node's streams */
    struct srv_watch *watches;
    struct srv_watch *parked;
    size_t n_watches;
    int64_t next_id;
    bool progress_pending;     /* a progress request waits for every watch to
                                  sync */
    uv_timer_t progress_timer; /* periodic notifications, once needed */
    bool timer_on;
};

static int send_msg(struct srv_watch_stream *st,
                    const Etcdserverpb__WatchResponse *r)
{
    struct moor_buf b;
    moor_buf_init(&b);
    int rv = moor_pb_pack(&r->base, &b);
    if (rv == MOOR_OK) {
        rv = rpc_call_send(st->call, moor_slice_make(b.ptr, b.len));
    }
    moor_buf_close(&b);
    if (rv != MOOR_OK && rv != MOOR_ECANCELED) {
        /* A control answer that does not fit a full queue: the client
         * stopped reading; end its stream rather than drop an answer. */
        rpc_call_cancel(st->call);
    }
    return rv;
}

/* Sends a response with no events (created, canceled, progress). */
static void send_control(struct srv_watch_stream *st, int64_t watch_id,
                         bool created, bool canceled, int64_t compact_rev,
                         const char *reason)
{
    struct srv_node *n = st->n;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, kv_store_revision(n->kv));
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.header = &h;
    r.watch_id = watch_id;
    r.created = created;
    r.canceled = canceled;
    r.compact_revision = compact_rev;
    if (reason != NULL) {
        r.cancel_reason = (char *)(uintptr_t)reason;
    }
    send_msg(st, &r);
}

/* Unlinks and frees w, whose kv watcher is closed already. */
static void watch_free(struct srv_watch_stream *st, struct srv_watch *w)
{
    struct srv_watch **pp = &st->watches;
    while (*pp != w) {
        pp = &(*pp)->next;
    }
    *pp = w->next;
    if (w->parked) {
        pp = &st->parked;
        while (*pp != w) {
            pp = &(*pp)->park_next;
        }
        *pp = w->park_next;
    }
    st->n_watches--;
    moor_free(w);
}

static void watch_remove(struct srv_watch_stream *st, struct srv_watch *w)
{
    kv_watch_close(st->n->kv, &w->kw);
    watch_free(st, w);
}

static struct srv_watch *watch_find(struct srv_watch_stream *st, int64_t id)
{
    for (struct srv_watch *w = st->watches; w != NULL; w = w->next) {
        if (w->id == id) {
            return w;
        }
    }
    return NULL;
}

static void fill_kv(Mvccpb__KeyValue *out, const struct kv_rec *rec,
                    bool key_only)
{
    struct kv_kv row;
    kv_row_get(rec, &row);
    mvccpb__key_value__init(out);
    out->key.data = (uint8_t *)(uintptr_t)row.key.ptr;
    out->key.len = row.key.len;
    out->mod_revision = row.mod_revision;
    if (key_only) {
        return; /* a DELETE event's kv: key and the deletion revision */
    }
    out->value.data = (uint8_t *)(uintptr_t)row.value.ptr;
    out->value.len = row.value.len;
    out->create_revision = row.create_revision;
    out->version = row.version;
    out->lease = row.lease;
}

/* ------------------------------------------------------------------------
 * Encoding a batch once for many watchers
 *
 * One write that N watchers match becomes N WatchResponses that differ
 * only in watch_id: encoding each through protobuf-c cost ~25 % of the
 * server's time in a 10,000-watcher fan-out. Within one delivery pass an
 * event (its kv records and type) is encoded once, as is the header of a
 * revision; each response is then assembled from those bytes in
 * protobuf-c's field order (header 1, watch_id 2, events 11), so the bytes
 * are the same as packing the message. The cache lives for one pass only:
 * kv frees no record while the pass runs, and pointers may be reused
 * after it.
 * ---------------------------------------------------------------------- */

#define WENC_SLOTS 1024u /* direct-mapped by record address */
/* Past this many cached bytes the cache starts over (bounds the arena). */
#define WENC_ARENA_MAX (8u * 1024 * 1024)

struct wenc_slot
{
    uint64_t pass; /* valid in this pass only */
    const struct kv_rec *kv, *prev;
    uint8_t type;
    uint32_t off, len; /* into arena */
};

struct srv_watch_enc
{
    uint64_t pass;
    struct wenc_slot slots[WENC_SLOTS];
    struct moor_buf arena;
    uint64_t hdr_pass;
    int64_t hdr_rev;
    struct moor_buf hdr;
    struct moor_buf out;
};

static int pb_put_tag(struct moor_buf *b, uint32_t field, uint32_t wire,
                      uint64_t v)
{
    uint8_t t[2 * MOOR_VARINT_MAX];
    size_t n = moor_varint_put(t, ((uint64_t)field << 3) | wire);
    n += moor_varint_put(t + n, v);
    return moor_buf_append(b, t, n);
}

/* Appends e, encoded as an mvccpb.Event, from the pass's cache. */
static int wenc_event(struct srv_watch_enc *c, const struct kv_event *e,
                      struct moor_buf *out)
{
    uintptr_t h = ((uintptr_t)e->kv >> 4) ^ ((uintptr_t)e->prev >> 6) ^
                  (uintptr_t)e->type;
    struct wenc_slot *sl = &c->slots[h % WENC_SLOTS];
    if (sl->pass != c->pass || sl->kv != e->kv || sl->prev != e->prev ||
        sl->type != (uint8_t)e->type) {
        if (c->arena.len > WENC_ARENA_MAX) {
            c->pass++; /* start over: every slot goes stale */
            moor_buf_reset(&c->arena);
        }
        bool del = e->type == KV_EVENT_DELETE;
        Mvccpb__KeyValue kv, prev;
        Mvccpb__Event ev = MVCCPB__EVENT__INIT;
        ev.type = del ? MVCCPB__EVENT__EVENT_TYPE__DELETE
                      : MVCCPB__EVENT__EVENT_TYPE__PUT;
        fill_kv(&kv, e->kv, del);
        ev.kv = &kv;
        if (e->prev != NULL) {
            fill_kv(&prev, e->prev, false);
            ev.prev_kv = &prev;
        }
        size_t off = c->arena.len;
        int rv = moor_pb_pack(&ev.base, &c->arena);
        if (rv != MOOR_OK) {
            return rv;
        }
        sl->pass = c->pass;
        sl->kv = e->kv;
        sl->prev = e->prev;
        sl->type = (uint8_t)e->type;
        sl->off = (uint32_t)off;
        sl->len = (uint32_t)(c->arena.len - off);
    }
    int rv = pb_put_tag(out, 11, 2, sl->len);
    return rv != MOOR_OK
               ? rv
               : moor_buf_append(out, c->arena.ptr + sl->off, sl->len);
}

int srv_watch_encode_batch(struct srv_watch_enc *c,
                           const Etcdserverpb__ResponseHeader *h,
                           int64_t watch_id, const struct kv_watch_batch *b,
                           struct moor_buf *out)
{
    if (c->hdr_pass != c->pass || c->hdr_rev != h->revision) {
        moor_buf_reset(&c->hdr);
        int rv = moor_pb_pack(&h->base, &c->hdr);
        if (rv != MOOR_OK) {
            return rv;
        }
        c->hdr_pass = c->pass;
        c->hdr_rev = h->revision;
    }
    int rv = pb_put_tag(out, 1, 2, c->hdr.len);
    if (rv == MOOR_OK) {
        rv = moor_buf_append(out, c->hdr.ptr, c->hdr.len);
    }
    if (rv == MOOR_OK && watch_id != 0) {
        rv = pb_put_tag(out, 2, 0, (uint64_t)watch_id);
    }
    for (size_t i = 0; rv == MOOR_OK && i < b->n; i++) {
        rv = wenc_event(c, &b->events[i], out);
    }
    return rv;
}

struct srv_watch_enc *srv_watch_enc_new(void)
{
    struct srv_watch_enc *c = moor_calloc(1, sizeof(*c));
    if (c != NULL) {
        c->pass = 1;
    }
    return c;
}

void srv_watch_enc_pass(struct srv_watch_enc *c)
{
    c->pass++;
    moor_buf_reset(&c->arena);
}

void srv_watch_enc_free(struct srv_watch_enc *c)
{
    if (c == NULL) {
        return;
    }
    moor_buf_close(&c->arena);
    moor_buf_close(&c->hdr);
    moor_buf_close(&c->out);
    moor_free(c);
}

/* Takes w's next batch from kv and sends it. */
static void watch_send(struct srv_node *n, struct srv_watch *w)
{
    struct srv_watch_stream *st = w->st;
    struct kv_watch_batch b;
    if (kv_watch_take(n->kv, &w->kw, WATCH_EVENTS_MAX, &b) != MOOR_OK) {
        return; /* out of memory: w stays ready, retried next turn */
    }
    if (b.canceled) {
        int64_t id = w->id, compact = b.compact_rev;
        kv_watch_batch_release(n->kv, &b);
        watch_remove(st, w);
        send_control(st, id, false, true, compact, NULL);
        return;
    }
    if (b.n > 0) {
        w->progress_due = false; /* events say as much as a progress */
        struct srv_watch_enc *c = n->watch_enc;
        moor_buf_reset(&c->out);
        Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
        srv_header_fill(n, &h, b.revision);
        int rv = srv_watch_encode_batch(c, &h, w->id, &b, &c->out);
        if (rv == MOOR_OK) {
            rv = rpc_call_send(st->call,
                               moor_slice_make(c->out.ptr, c->out.len));
        }
        if (rv != MOOR_OK && rv != MOOR_ECANCELED) {
            /* Cannot send what kv already handed out: end the stream
             * rather than leave a gap (a watch never skips events). */
            rpc_call_cancel(st->call);
        }
        if (c->out.cap > WENC_ARENA_MAX) {
            moor_buf_close(&c->out); /* a huge batch: give it back */
        }
    }
    kv_watch_batch_release(n->kv, &b);
}

/* True when every watch of the stream is synced and has taken every event
 * up to the current revision (kv_watch_idle), none parked. */
static bool stream_synced(const struct srv_watch_stream *st)
{
    for (const struct srv_watch *w = st->watches; w != NULL; w = w->next) {
        if (!kv_watch_idle(&w->kw) || w->parked) {
            return false;
        }
    }
    return true;
}

/* A progress answer (watch_id -1) promises that every event up to its
 * revision has been sent on this stream: only once all its watches are
 * synced and none is parked (etcd's #15220 fix). */
static void progress_try(struct srv_watch_stream *st)
{
    if (st->progress_pending && stream_synced(st)) {
        st->progress_pending = false;
        send_control(st, -1, false, false, 0, NULL);
    }
}

/* Rounds of kv's ready list per loop turn: each round visits every ready
 * watcher once; a long catch-up continues in the next round, and beyond
 * this many rounds in the next turn (ticks keep turns coming). */
#define DELIVER_ROUNDS_MAX 8

void srv_watch_deliver(struct srv_node *n)
{
    if (n->watch_enc == NULL) {
        n->watch_enc = srv_watch_enc_new();
        if (n->watch_enc == NULL) {
            return; /* out of memory: the watchers stay ready */
        }
    }
    srv_watch_enc_pass(n->watch_enc);
    for (int round = 0; round < DELIVER_ROUNDS_MAX; round++) {
        bool took = false;
        struct kv_watcher *kw;
        while ((kw = kv_watch_next_ready(n->kv)) != NULL) {
            struct srv_watch *w = MOOR_CONTAINER_OF(kw, struct srv_watch, kw);
            if (!rpc_call_writable(w->st->call)) {
                /* Parked until the call drains (on_writable takes it);
                 * kv keeps its events, bounded. */
                if (!w->parked) {
                    w->parked = true;
                    w->park_next = w->st->parked;
                    w->st->parked = w;
                }
                continue;
            }
            struct srv_watch_stream *st = w->st;
            watch_send(n, w);
            progress_try(st);
            took = true;
        }
        if (!took) {
            break;
        }
    }
}

static void on_writable(struct rpc_call *call, void *arg)
{
    struct srv_node *n = arg;
    struct srv_watch_stream *st = rpc_call_user(call);
    if (st == NULL) {
        return;
    }
    while (st->parked != NULL && rpc_call_writable(call)) {
        struct srv_watch *w = st->parked;
        st->parked = w->park_next;
        w->parked = false;
        watch_send(n, w);
    }
    progress_try(st);
}

/* The stream's period: each progress_notify watch that is synced and got
 * no events since the last period is told the current revision. */
static void progress_tick_cb(uv_timer_t *t)
{
    struct srv_watch_stream *st = t->data;
    for (struct srv_watch *w = st->watches; w != NULL; w = w->next) {
        if (!w->progress_notify) {
            continue;
        }
        if (w->progress_due && !w->parked && kv_watch_idle(&w->kw) &&
            rpc_call_writable(st->call)) {
            send_control(st, w->id, false, false, 0, NULL);
        }
        w->progress_due = true;
    }
}

static void progress_timer_start(struct srv_watch_stream *st)
{
    if (st->timer_on) {
        return;
    }
    uint64_t every = st->n->cfg->watch_progress_notify_ms;
    if (every == 0) {
        every = 10u * 60u * 1000u; /* etcd's default */
    }
    uv_timer_init(st->n->loop, &st->progress_timer);
    st->progress_timer.data = st;
    uv_timer_start(&st->progress_timer, progress_tick_cb, every, every);
    st->timer_on = true;
}

static void watch_create(struct srv_watch_stream *st,
                         const Etcdserverpb__WatchCreateRequest *c)
{
    struct srv_node *n = st->n;
    if (c->start_revision < 0) {
        send_control(st, -1, true, true, 0,
                     "mvcc: required revision has been compacted");
        return;
    }
    int64_t id = c->watch_id;
    if (id == 0) {
        while (watch_find(st, st->next_id) != NULL) {
            st->next_id++;
        }
        id = st->next_id++;
    } else if (watch_find(st, id) != NULL) {
        send_control(st, id, true, true, 0,
                     "mvcc: duplicate watch ID provided on the WatchStream");
        return;
    }
    if (st->n_watches >= WATCHES_PER_STREAM_MAX) {
        send_control(st, id, true, true, 0, "moor: too many watches");
        return;
    }
    struct srv_watch *w = moor_calloc(1, sizeof(*w));
    if (w == NULL) {
        send_control(st, id, true, true, 0, "moor: out of memory");
        return;
    }
    struct kv_watch_req req;
    memset(&req, 0, sizeof(req));
    req.key = moor_slice_make(c->key.data, c->key.len);
    req.range_end = moor_slice_make(c->range_end.data, c->range_end.len);
    req.start_revision = c->start_revision;
    req.prev_kv = c->prev_kv;
    for (size_t i = 0; i < c->n_filters; i++) {
        if (c->filters[i] ==
            ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT) {
            req.no_put = true;
        } else if (c->filters[i] ==
                   ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE) {
            req.no_delete = true;
        }
    }
    if (kv_watch_open(n->kv, &w->kw, &req) != MOOR_OK) {
        moor_free(w);
        send_control(st, id, true, true, 0, "moor: out of memory");
        return;
    }
    w->st = st;
    w->id = id;
    w->no_put = req.no_put;
    w->no_delete = req.no_delete;
    w->prev_kv = req.prev_kv;
    if (c->progress_notify) {
        w->progress_notify = true;
        w->progress_due = true;
        progress_timer_start(st);
    }
    w->next = st->watches;
    st->watches = w;
    st->n_watches++;
    /* The created answer goes first; events follow from the next deliver
     * pass, in this same loop turn. */
    send_control(st, id, true, false, 0, NULL);
}

static void on_message(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    struct srv_watch_stream *st = rpc_call_user(call);
    if (st == NULL) {
        return;
    }
    Etcdserverpb__WatchRequest *req = (Etcdserverpb__WatchRequest *)srv_decode(
        n, call, &etcdserverpb__watch_request__descriptor, msg);
    if (req == NULL) {
        return;
    }
    switch (req->request_union_case) {
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST:
        watch_create(st, req->create_request);
        break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST: {
        struct srv_watch *w = watch_find(st, req->cancel_request->watch_id);
        if (w != NULL) {
            int64_t id = w->id;
            watch_remove(st, w);
            send_control(st, id, false, true, 0, NULL);
        }
        break;
    }
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
        st->progress_pending = true;
        progress_try(st);
        break;
    default:
        break;
    }
    protobuf_c_message_free_unpacked(&req->base, &moor_pb_allocator);
    /* Deliver what the new watches already have (history catch-up). */
    srv_watch_deliver(n);
}

static void on_start(struct rpc_call *call, void *arg)
{
    struct srv_node *n = arg;
    struct srv_watch_stream *st = moor_calloc(1, sizeof(*st));
    if (st == NULL) {
        srv_call_fail(call, MOOR_ENOMEM);
        return;
    }
    st->n = n;
    st->call = call;
    st->next = n->watch_streams;
    if (st->next != NULL) {
        st->next->prev = st;
    }
    n->watch_streams = st;
    rpc_call_set_user(call, st);
}

static void on_half_close(struct rpc_call *call, void *arg)
{
    (void)arg;
    rpc_call_finish(call, RPC_OK, NULL);
}

static void stream_free_cb(uv_handle_t *h)
{
    moor_free(h->data);
}

static void on_done(struct rpc_call *call, int status, void *arg)
{
    (void)status;
    (void)arg;
    struct srv_watch_stream *st = rpc_call_user(call);
    if (st == NULL) {
        return;
    }
    rpc_call_set_user(call, NULL);
    while (st->watches != NULL) {
        watch_remove(st, st->watches);
    }
    if (st->prev != NULL) {
        st->prev->next = st->next;
    } else {
        st->n->watch_streams = st->next;
    }
    if (st->next != NULL) {
        st->next->prev = st->prev;
    }
    if (st->timer_on) {
        uv_close((uv_handle_t *)&st->progress_timer, stream_free_cb);
    } else {
        moor_free(st);
    }
}

void srv_watch_rehome(struct srv_node *n, struct kv_store *old)
{
    size_t moved = 0, failed = 0;
    for (struct srv_watch_stream *st = n->watch_streams; st != NULL;
         st = st->next) {
        for (struct srv_watch *w = st->watches; w != NULL; w = w->next) {
            /* The range outlives the close: kv owns the watcher's copy. */
            size_t klen = w->kw.key_len, elen = w->kw.end_len;
            uint8_t *range = moor_malloc(klen + elen + 1);
            int64_t next_rev = kv_watch_resume_rev(old, &w->kw);
            if (range != NULL) {
                memcpy(range, w->kw.key, klen);
                if (elen > 0) {
                    memcpy(range + klen, w->kw.end, elen);
                }
            }
            kv_watch_close(old, &w->kw);
            struct kv_watch_req req;
            memset(&req, 0, sizeof(req));
            req.start_revision = next_rev;
            req.no_put = w->no_put;
            req.no_delete = w->no_delete;
            req.prev_kv = w->prev_kv;
            int rv = MOOR_ENOMEM;
            if (range != NULL) {
                req.key = moor_slice_make(range, klen);
                req.range_end = moor_slice_make(range + klen, elen);
                rv = kv_watch_open(n->kv, &w->kw, &req);
            }
            moor_free(range);
            w->lost = rv != MOOR_OK;
            if (w->lost) {
                failed++;
            } else {
                moved++;
            }
        }
        /* A watcher that could not be re-opened ends with a cancel. */
        struct srv_watch *w = st->watches;
        while (w != NULL) {
            struct srv_watch *next = w->next;
            if (w->lost) {
                int64_t id = w->id;
                watch_free(st, w);
                send_control(st, id, false, true, 0, "moor: out of memory");
            }
            w = next;
        }
    }
    MOOR_LOG_INFO("watch", "watchers moved to the installed snapshot",
                  "moved=%zu failed=%zu", moved, failed);
}

int srv_watch_register(struct srv_node *n, struct rpc_server *srv)
{
    struct rpc_method_ops ops;
    memset(&ops, 0, sizeof(ops));
    ops.start_cb = on_start;
    ops.message_cb = on_message;
    ops.half_close_cb = on_half_close;
    ops.writable_cb = on_writable;
    ops.done_cb = on_done;
    return rpc_server_add_method(srv, "/etcdserverpb.Watch/Watch", &ops, n);
}
