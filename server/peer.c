/*
 * peer.c: the member-to-member transport over TCP or TLS: the raft
 * message streams, reconnecting, and membership changes of the peer set.
 *
 * Every member dials every other member and keeps that connection for
 * the raft messages it sends; it accepts the others' connections and only
 * reads from them. So each direction of each pair is one long-lived TCP
 * stream, and a slow reader can only slow its own inbound stream.
 *
 * Frames are the table in peer_int.h, decoded by peer_frame.c. The first
 * frame on a connection is a Handshake; the acceptor checks the cluster id
 * and that it is the member addressed, and closes a connection that fails
 * either (a member from another cluster is refused). Any malformed or
 * oversize frame closes that connection, never the process (read_cb: an
 * error from srv_peer_frame_next closes the inbound connection; a raft
 * message that srv_peer_msg_decode refuses, or one that speaks for another
 * member, does the same in inbound_frame).
 *
 * Sending never blocks and never waits: a message goes into the peer's
 * outbound buffer, bounded (PEER_OUT_MAX); beyond it messages are dropped,
 * which raft tolerates (it retries appends and heartbeats). A failed
 * connection is retried after a delay drawn uniformly from [b/2, b], where
 * b doubles from PEER_BACKOFF_MIN_MS up to PEER_BACKOFF_MAX_MS with every
 * failure and resets on a connect (the jitter keeps members that lost each
 * other at once from redialing in lockstep); raft is told the peer is
 * unreachable at every failure. When the connection to the current leader is
 * refused or reset, the leader's process is gone: raft is told at once
 * (raft_node_report_leader_lost), so a pre-vote starts within ticks rather
 * than an election timeout.
 *
 * Snapshots travel on their own connections (peer_snap.c): raft's
 * RAFT_MSG_SNAPSHOT is handed there instead of the message stream, and an
 * accepted connection whose handshake says "snapshot" is read by the
 * snapshot receiver.
 *
 * https peer URLs mean mutual TLS on every connection (peer_tls.c): the
 * dialer checks the acceptor's certificate, the acceptor the dialer's
 * (with --peer-client-cert-auth); bytes read go through TLS before the
 * frame decoder, frames written through TLS before the socket.
 */
#include <stdlib.h>

#include "metrics.h"
#include "peer_int.h"

#define PEER_OUT_MAX (64u << 20)
#define PEER_BACKOFF_MIN_MS 50
#define PEER_BACKOFF_MAX_MS 1000

/* ------------------------------------------------------------------------
 * Outbound
 * ---------------------------------------------------------------------- */
static void peer_connect(struct srv_peer *p);
static void peer_flush(struct srv_peer *p);

static void retry_cb(uv_timer_t *t)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(t, struct srv_peer, retry);
    peer_connect(p);
}

static void peer_freed_cb(uv_handle_t *h)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(h, struct srv_peer, retry);
    moor_buf_close(&p->out);
    moor_buf_close(&p->wire);
    moor_buf_close(&p->writing_buf);
    srv_tls_free(p->tls);
    moor_free(p);
}

static void tcp_closed_cb(uv_handle_t *h)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(h, struct srv_peer, tcp);
    p->tcp_open = false;
    p->writing = false;
    moor_buf_reset(&p->writing_buf);
    moor_buf_reset(&p->wire);
    srv_tls_free(p->tls);
    p->tls = NULL;
    if (p->released) {
        /* srv_peer_close ran while this close was under way: the timer is
         * the peer's last handle; free the peer once it closes. */
        uv_close((uv_handle_t *)&p->retry, peer_freed_cb);
        return;
    }
    if (p->n->stopping) {
        return; /* no reconnect; srv_peer_close frees the peer */
    }
    /* Bounded exponential backoff with jitter: [b/2, b]. */
    uint64_t b = p->backoff_ms;
    uint64_t delay = b / 2 + moor_prng_below(&p->prng, b / 2 + 1);
    uv_timer_start(&p->retry, retry_cb, delay, 0);
    p->backoff_ms = MOOR_MIN(b * 2, (uint64_t)PEER_BACKOFF_MAX_MS);
}

/* The connection failed with libuv status err. */
static void peer_fail(struct srv_peer *p, int err)
{
    struct srv_node *n = p->n;
    if (n->raft != NULL && !n->stopping) {
        raft_node_report_unreachable(n->raft, p->id);
        if ((err == UV_ECONNREFUSED || err == UV_ECONNRESET ||
             err == UV_EPIPE || err == UV_EOF) &&
            raft_node_leader(n->raft) == p->id) {
            /* The leader's process is gone: campaign soon (pre-vote keeps
             * this safe if it is in fact alive). */
            raft_node_report_leader_lost(n->raft, p->id);
            MOOR_LOG_WARN("peer", "lost the leader's connection",
                          "peer=%llx err=%s", (unsigned long long)p->id,
                          uv_err_name(err));
        }
    }
    p->connected = false;
    /* What was queued for the dead connection is dropped: raft resends. */
    moor_buf_reset(&p->out);
    if (p->tcp_open && !uv_is_closing((uv_handle_t *)&p->tcp)) {
        uv_close((uv_handle_t *)&p->tcp, tcp_closed_cb);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(req, struct srv_peer, write_req);
    p->writing = false;
    moor_buf_reset(&p->writing_buf);
    if (status < 0) {
        if (status != UV_ECANCELED) {
            peer_fail(p, status);
        }
        return;
    }
    peer_flush(p);
}

static void peer_flush(struct srv_peer *p)
{
    if (!p->connected || p->writing) {
        return;
    }
    /* With TLS, frames are encrypted into wire (held back inside the TLS
     * state until the handshake is done); without, out is the wire. */
    struct moor_buf *src = &p->out;
    if (p->tls != NULL) {
        char errmsg[MOOR_ERRMSG_SIZE];
        if (p->out.len > 0 && srv_tls_output(p->tls, p->out.ptr, p->out.len,
                                             &p->wire, errmsg) != MOOR_OK) {
            MOOR_LOG_WARN("peer", "TLS failed", "peer=%llx why=\"%s\"",
                          (unsigned long long)p->id, errmsg);
            peer_fail(p, UV_EPROTO);
            return;
        }
        moor_buf_reset(&p->out);
        src = &p->wire;
    }
    if (src->len == 0) {
        return;
    }
    /* Swap buffers: the write owns writing_buf until write_cb. */
    struct moor_buf t = p->writing_buf;
    p->writing_buf = *src;
    *src = t;
    moor_buf_reset(src);
    uv_buf_t b =
        uv_buf_init((char *)p->writing_buf.ptr, (unsigned)p->writing_buf.len);
    p->writing = true;
    int rc = uv_write(&p->write_req, (uv_stream_t *)&p->tcp, &b, 1, write_cb);
    if (rc < 0) {
        p->writing = false;
        peer_fail(p, rc);
    }
}

static void handshake_append(struct srv_peer *p)
{
    struct moor_buf b;
    moor_buf_init(&b);
    if (srv_peer_handshake_encode(p->n, p->id, "message", &b) == MOOR_OK &&
        moor_buf_append(&b, p->out.ptr, p->out.len) == MOOR_OK) {
        /* The handshake goes before anything queued meanwhile. */
        moor_buf_close(&p->out);
        p->out = b;
    } else {
        moor_buf_close(&b);
    }
}

/* Nothing but TLS records is ever sent back on an outbound connection;
 * reading is how the close of the peer's process shows up at once (its
 * kernel closes the socket), without waiting for a write to fail. */
static void out_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(h, struct srv_peer, tcp);
    (void)suggested;
    buf->base = (char *)p->rbuf;
    buf->len = sizeof(p->rbuf);
}

static bool is_removed_frame(struct srv_node *n, const uint8_t *bytes,
                             size_t len);

/* A peer that tells this member it was removed from the cluster: stop. */
static void removed_stop(struct srv_peer *p)
{
    srv_node_stop(p->n,
                  "the member has been permanently removed from the "
                  "cluster");
}

static void out_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(s, struct srv_peer, tcp);
    if (nread < 0) {
        peer_fail(p, (int)nread);
        return;
    }
    if (nread == 0) {
        return;
    }
    if (p->tls == NULL) {
        if (is_removed_frame(p->n, (const uint8_t *)buf->base, (size_t)nread)) {
            removed_stop(p);
        }
        peer_fail(p, UV_EPROTO); /* otherwise a peer that talks back is
                                    broken */
        return;
    }
    struct moor_buf plain;
    moor_buf_init(&plain);
    char errmsg[MOOR_ERRMSG_SIZE];
    int rv = srv_tls_input(p->tls, (const uint8_t *)buf->base, (size_t)nread,
                           &plain, &p->wire, errmsg);
    size_t talked = plain.len;
    if (talked > 0 && is_removed_frame(p->n, plain.ptr, plain.len)) {
        removed_stop(p);
    }
    moor_buf_close(&plain);
    if (rv != MOOR_OK || talked > 0) {
        if (rv != MOOR_OK) {
            MOOR_LOG_WARN("peer", "TLS with a peer failed",
                          "peer=%llx url=%s why=\"%s\"",
                          (unsigned long long)p->id, p->url, errmsg);
        }
        peer_fail(p, UV_EPROTO);
        return;
    }
    if (srv_tls_ready(p->tls) && p->backoff_ms != PEER_BACKOFF_MIN_MS) {
        p->backoff_ms = PEER_BACKOFF_MIN_MS;
        MOOR_LOG_INFO("peer", "TLS established", "peer=%llx",
                      (unsigned long long)p->id);
    }
    peer_flush(p); /* handshake answers, then frames held back */
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(req, struct srv_peer, connect_req);
    if (status < 0) {
        peer_fail(p, status);
        return;
    }
    p->connected = true;
    if (!p->net->tls) {
        p->backoff_ms = PEER_BACKOFF_MIN_MS; /* with TLS: once verified */
    }
    uv_tcp_nodelay(&p->tcp, 1);
    uv_read_start((uv_stream_t *)&p->tcp, out_alloc_cb, out_read_cb);
    moor_buf_reset(&p->out); /* stale messages: raft resends */
    if (p->net->tls) {
        char errmsg[MOOR_ERRMSG_SIZE];
        if (srv_tls_new(&p->net->ctx, false, &p->addr, &p->tls) != MOOR_OK ||
            srv_tls_start(p->tls, &p->wire, errmsg) != MOOR_OK) {
            peer_fail(p, UV_EPROTO);
            return;
        }
    }
    handshake_append(p);
    MOOR_LOG_INFO("peer", "connected", "peer=%llx url=%s",
                  (unsigned long long)p->id, p->url);
    peer_flush(p);
}

static void peer_connect(struct srv_peer *p)
{
    if (p->n->stopping || p->tcp_open) {
        return;
    }
    uv_tcp_init(p->n->loop, &p->tcp);
    p->tcp_open = true;
    int rc = uv_tcp_connect(&p->connect_req, &p->tcp,
                            (const struct sockaddr *)&p->addr, connect_cb);
    if (rc < 0) {
        peer_fail(p, rc);
    }
}

static struct srv_peer *peer_find(struct srv_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_peers; i++) {
        if (n->peers[i]->id == id) {
            return n->peers[i];
        }
    }
    return NULL;
}

void srv_peer_send(struct srv_node *n, const struct raft_message *m)
{
    struct srv_peer *p = peer_find(n, m->to);
    if (p == NULL) {
        return;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        srv_peer_snap_send(p, m); /* its own connection (peer_snap.c) */
        return;
    }
    size_t before = p->out.len;
    if (!p->connected || p->out.len > PEER_OUT_MAX ||
        srv_peer_encode(m, &p->out) != MOOR_OK) {
        p->dropped++; /* raft resends what matters */
        return;
    }
    p->sent_bytes += p->out.len - before;
    /* While a write is in flight, frames gather and leave together when it
     * completes; otherwise this one leaves now. */
    peer_flush(p);
}

void srv_peer_send_frames(struct srv_node *n, uint64_t to,
                          const struct moor_buf *frames)
{
    struct srv_peer *p = peer_find(n, to);
    if (p == NULL) {
        return;
    }
    if (!p->connected || p->out.len > PEER_OUT_MAX ||
        moor_buf_append(&p->out, frames->ptr, frames->len) != MOOR_OK) {
        p->dropped++;
        return;
    }
    p->sent_bytes += frames->len;
    peer_flush(p);
}

int srv_peer_render_metrics(struct srv_node *n, struct moor_buf *out)
{
    static const struct
    {
        const char *name, *label, *help;
    } fams[] = {
        {"etcd_network_peer_sent_bytes_total", "To",
         "The total number of bytes sent to peers."},
        {"etcd_network_peer_received_bytes_total", "From",
         "The total number of bytes received from peers."},
        {"etcd_network_peer_sent_failures_total", "To",
         "The total number of send failures from peers."},
        {"etcd_network_peer_received_failures_total", "From",
         "The total number of receive failures from peers."},
    };
    int rv = MOOR_OK;
    for (size_t f = 0; rv == MOOR_OK && f < MOOR_ARRAY_LEN(fams); f++) {
        rv = srv_metrics_write_family(out, fams[f].name, "counter",
                                      fams[f].help);
        for (size_t i = 0; rv == MOOR_OK && i < n->n_peers; i++) {
            const struct srv_peer *p = n->peers[i];
            uint64_t v = f == 0   ? p->sent_bytes
                         : f == 1 ? p->recv_bytes
                         : f == 2 ? p->dropped
                                  : p->recv_failures;
            char labels[64];
            snprintf(labels, sizeof(labels), "%s=\"%llx\"", fams[f].label,
                     (unsigned long long)p->id);
            rv = srv_metrics_write_sample(out, fams[f].name, labels, (double)v);
        }
    }
    return rv;
}

/* ------------------------------------------------------------------------
 * Inbound
 * ---------------------------------------------------------------------- */
static void inbound_closed_cb(uv_handle_t *h)
{
    struct srv_inbound *c = MOOR_CONTAINER_OF(h, struct srv_inbound, tcp);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->n->inbound = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    moor_buf_close(&c->in);
    moor_buf_close(&c->wire);
    moor_buf_close(&c->writing_buf);
    srv_tls_free(c->tls);
    moor_free(c);
}

void srv_peer_inbound_close(struct srv_inbound *c, const char *why)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    if (why != NULL) {
        MOOR_LOG_WARN("peer", "closing inbound connection",
                      "from=%llx stream=%s why=\"%s\"",
                      (unsigned long long)c->from,
                      c->snapshot_stream ? "snapshot" : "message", why);
    }
    if (c->recv != NULL) {
        srv_peer_snap_recv_detach(c);
    }
    uv_close((uv_handle_t *)&c->tcp, inbound_closed_cb);
}

static void inbound_write_cb(uv_write_t *req, int status);

static void inbound_flush(struct srv_inbound *c)
{
    if (c->closing || c->writing || c->wire.len == 0) {
        return;
    }
    struct moor_buf t = c->writing_buf;
    c->writing_buf = c->wire;
    c->wire = t;
    moor_buf_reset(&c->wire);
    uv_buf_t b =
        uv_buf_init((char *)c->writing_buf.ptr, (unsigned)c->writing_buf.len);
    c->writing = true;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1,
                 inbound_write_cb) < 0) {
        c->writing = false;
        srv_peer_inbound_close(c, "write failed");
    }
}

static void inbound_write_cb(uv_write_t *req, int status)
{
    struct srv_inbound *c =
        MOOR_CONTAINER_OF(req, struct srv_inbound, write_req);
    c->writing = false;
    moor_buf_reset(&c->writing_buf);
    if (status < 0) {
        srv_peer_inbound_close(
            c, status == UV_ECANCELED ? NULL : uv_err_name(status));
        return;
    }
    inbound_flush(c);
}

void srv_peer_inbound_send(struct srv_inbound *c, const uint8_t *data,
                           size_t len)
{
    if (c->closing) {
        return;
    }
    char errmsg[MOOR_ERRMSG_SIZE];
    int rv = c->tls != NULL
                 ? srv_tls_output(c->tls, data, len, &c->wire, errmsg)
                 : moor_buf_append(&c->wire, data, len);
    if (rv != MOOR_OK) {
        srv_peer_inbound_close(c, "cannot queue an answer");
        return;
    }
    inbound_flush(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct srv_inbound *c = MOOR_CONTAINER_OF(h, struct srv_inbound, tcp);
    (void)suggested;
    if (c->tls != NULL) {
        buf->base = (char *)c->rbuf;
        buf->len = sizeof(c->rbuf);
        return;
    }
    if (moor_buf_reserve(&c->in, 64 * 1024) != MOOR_OK) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)c->in.ptr + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

/* The first frame: who is calling, on which stream. False closes c. */
static bool inbound_handshake(struct srv_inbound *c, const Moorpb__Frame *f);

/* Answers a joining member with the membership table (join.c), or tells a
 * removed member that calls that it was removed (removed_id != 0). The
 * caller closes its side once it has the answer; until then c stays
 * without a sender (a further frame is taken as a handshake again). */
static bool inbound_answer(struct srv_inbound *c, uint64_t removed_id)
{
    struct moor_buf b;
    moor_buf_init(&b);
    int rv;
    if (removed_id != 0) {
        Moorpb__Handshake hs = MOORPB__HANDSHAKE__INIT;
        hs.protocol_version = SRV_PEER_PROTOCOL_VERSION;
        hs.cluster_id = c->n->cluster_id;
        hs.from_id = c->n->member_id;
        hs.to_id = removed_id;
        hs.stream = (char *)(uintptr_t) "removed";
        Moorpb__Frame f = MOORPB__FRAME__INIT;
        f.body_case = MOORPB__FRAME__BODY_HANDSHAKE;
        f.handshake = &hs;
        size_t len = moorpb__frame__get_packed_size(&f);
        rv = moor_buf_reserve(&b, len + 4);
        if (rv == MOOR_OK) {
            moor_put_be32(b.ptr, (uint32_t)len);
            moorpb__frame__pack(&f, b.ptr + 4);
            b.len = len + 4;
        }
        MOOR_LOG_INFO("peer", "told a removed member it was removed",
                      "member=%llx", (unsigned long long)removed_id);
    } else {
        rv = srv_members_join_answer(c->n, &b);
        MOOR_LOG_INFO("peer", "answered a joining member", NULL);
    }
    if (rv == MOOR_OK) {
        srv_peer_inbound_send(c, b.ptr, b.len);
    }
    moor_buf_close(&b);
    if (rv != MOOR_OK) {
        srv_peer_inbound_close(c, "cannot answer: out of memory");
        return false;
    }
    return true;
}

/* True when bytes are the "removed" frame a member sends a removed member
 * (inbound_answer). It is a few dozen bytes written at once, so it arrives
 * in one read; should it not, the next connection attempt gets it again. */
static bool is_removed_frame(struct srv_node *n, const uint8_t *bytes,
                             size_t len)
{
    if (len < 4 || moor_get_be32(bytes) != len - 4) {
        return false;
    }
    ProtobufCMessage *pm = NULL;
    if (moor_pb_unpack(&moorpb__frame__descriptor, bytes + 4, len - 4, len,
                       &pm) != MOOR_OK) {
        return false;
    }
    const Moorpb__Frame *f = (const Moorpb__Frame *)pm;
    bool removed = f->body_case == MOORPB__FRAME__BODY_HANDSHAKE &&
                   strcmp(f->handshake->stream, "removed") == 0 &&
                   f->handshake->cluster_id == n->cluster_id &&
                   f->handshake->to_id == n->member_id;
    protobuf_c_message_free_unpacked(pm, &moor_pb_allocator);
    return removed;
}

static bool inbound_handshake(struct srv_inbound *c, const Moorpb__Frame *f)
{
    struct srv_node *n = c->n;
    const Moorpb__Handshake *hs = f->handshake;
    if (f->body_case != MOORPB__FRAME__BODY_HANDSHAKE ||
        hs->protocol_version != SRV_PEER_PROTOCOL_VERSION) {
        srv_peer_inbound_close(c, "no handshake");
        return false;
    }
    if (strcmp(hs->stream, "join") == 0) {
        return inbound_answer(c, 0);
    }
    if (hs->cluster_id != n->cluster_id) {
        srv_peer_inbound_close(c, "a member of another cluster");
        return false;
    }
    if (hs->to_id != n->member_id || hs->from_id == 0) {
        srv_peer_inbound_close(c, "addressed to another member");
        return false;
    }
    struct srv_peer *p = peer_find(n, hs->from_id);
    if (p == NULL) {
        if (srv_members_was_removed(&n->members, hs->from_id)) {
            return inbound_answer(c, hs->from_id);
        }
        srv_peer_inbound_close(c, "not a member of this cluster");
        return false;
    }
    if (strcmp(hs->stream, "snapshot") == 0) {
        c->snapshot_stream = true;
    } else if (strcmp(hs->stream, "message") != 0) {
        srv_peer_inbound_close(c, "unknown stream");
        return false;
    }
    c->from = hs->from_id;
    p->info.n_client_urls = 0;
    for (size_t i = 0; i < hs->n_client_urls && i < SRV_URLS_MAX; i++) {
        snprintf(p->info.client_urls[i], sizeof(p->info.client_urls[i]), "%s",
                 hs->client_urls[i]);
        p->info.n_client_urls++;
    }
    return true;
}

/* Handles one frame; false when c was closed. */
static bool inbound_frame(struct srv_inbound *c, const Moorpb__Frame *f)
{
    struct srv_node *n = c->n;
    if (c->from == 0) {
        return inbound_handshake(c, f);
    }
    if (c->snapshot_stream) {
        if (!srv_peer_snap_recv_frame(c, f)) {
            srv_peer_inbound_close(c, NULL); /* the receiver logged why */
            return false;
        }
        return true;
    }
    if (f->body_case != MOORPB__FRAME__BODY_MESSAGE) {
        srv_peer_inbound_close(c, "not a raft message");
        return false;
    }
    if (n->raft == NULL) {
        return true;
    }
    struct raft_message m;
    int rv = srv_peer_msg_decode(f->message, &m);
    if (rv == MOOR_OK && m.from != c->from) {
        rv = MOOR_EPROTO; /* a peer speaks only for itself */
    }
    if (rv == MOOR_OK && m.type == RAFT_MSG_SNAPSHOT) {
        /* A snapshot comes with its state on a snapshot stream; alone it
         * would leave the keyspace behind raft's log. */
        MOOR_LOG_WARN("peer", "dropping a raft snapshot sent without its data",
                      "from=%llx", (unsigned long long)m.from);
    } else if (rv == MOOR_OK) {
        raft_node_step(n->raft, &m);
    }
    srv_peer_msg_release(&m);
    if (rv == MOOR_EPROTO) {
        srv_peer_inbound_close(c, "invalid raft message");
        return false;
    }
    return true; /* MOOR_ENOMEM: dropped, raft resends */
}

/* Handles the whole frames buffered in c->in, until c pauses or closes. */
static void inbound_drain(struct srv_inbound *c)
{
    size_t off = 0;
    while (!c->closing && !c->paused) {
        Moorpb__Frame *f = NULL;
        size_t used = 0;
        int rv =
            srv_peer_frame_next(c->in.ptr + off, c->in.len - off, &used, &f);
        if (rv == MOOR_EAGAIN) {
            break;
        }
        struct srv_peer *p = c->from != 0 ? peer_find(c->n, c->from) : NULL;
        if (rv != MOOR_OK) {
            if (p != NULL) {
                p->recv_failures++;
            }
            srv_peer_inbound_close(
                c, rv == MOOR_ETOOBIG ? "oversize frame" : "malformed frame");
            return;
        }
        if (p != NULL) {
            p->recv_bytes += used;
        }
        off += used;
        bool ok = inbound_frame(c, f);
        protobuf_c_message_free_unpacked(&f->base, &moor_pb_allocator);
        if (!ok) {
            return;
        }
    }
    if (off > 0) {
        moor_buf_consume(&c->in, off);
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct srv_inbound *c = MOOR_CONTAINER_OF(s, struct srv_inbound, tcp);
    (void)buf;
    if (c->closing) {
        return;
    }
    if (nread < 0) {
        const char *why = nread == UV_EOF ? NULL : uv_err_name((int)nread);
        if (c->tls != NULL && !srv_tls_ready(c->tls)) {
            /* The dialer gave up mid-handshake: it refused our certificate
             * (it logs why), or it is not a member speaking TLS. */
            why = "the peer hung up during the TLS handshake";
        }
        srv_peer_inbound_close(c, why);
        return;
    }
    if (nread == 0 && buf->base == NULL) {
        srv_peer_inbound_close(c, "out of memory");
        return;
    }
    if (c->tls != NULL) {
        char errmsg[MOOR_ERRMSG_SIZE];
        int rv = srv_tls_input(c->tls, (const uint8_t *)buf->base,
                               (size_t)nread, &c->in, &c->wire, errmsg);
        inbound_flush(c);
        if (rv != MOOR_OK) {
            /* A refused certificate lands here: the log says why. */
            srv_peer_inbound_close(c, errmsg);
            return;
        }
    } else {
        c->in.len += (size_t)nread;
    }
    if (c->in.len > 2 * (size_t)SRV_PEER_FRAME_MAX) {
        srv_peer_inbound_close(c, "oversize input");
        return;
    }
    inbound_drain(c);
    if (c->paused && !c->closing) {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    srv_node_process(c->n);
}

void srv_peer_inbound_resume(struct srv_inbound *c)
{
    if (c->closing || !c->paused) {
        return;
    }
    c->paused = false;
    inbound_drain(c);
    if (!c->closing && !c->paused) {
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    }
    srv_node_process(c->n);
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct srv_peer_net *net = server->data;
    struct srv_node *n = net->n;
    if (status < 0) {
        return;
    }
    struct srv_inbound *c = moor_calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    c->n = n;
    moor_buf_init(&c->in);
    c->next = n->inbound;
    if (n->inbound != NULL) {
        n->inbound->prev = c;
    }
    n->inbound = c;
    uv_tcp_init(n->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, inbound_closed_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (net->tls) {
        struct sockaddr_storage remote;
        int len = (int)sizeof(remote);
        memset(&remote, 0, sizeof(remote));
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&remote, &len) !=
                0 ||
            srv_tls_new(&net->ctx, true, &remote, &c->tls) != MOOR_OK) {
            srv_peer_inbound_close(c, "cannot start TLS");
            return;
        }
    }
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* ------------------------------------------------------------------------
 * The peer set
 * ---------------------------------------------------------------------- */
/* Closes p's handles; p is freed once the last one closed. */
static void peer_release(struct srv_peer *p)
{
    p->released = true;
    srv_peer_snap_send_stop(p);
    uv_timer_stop(&p->retry);
    if (!p->tcp_open) {
        uv_close((uv_handle_t *)&p->retry, peer_freed_cb);
    } else if (!uv_is_closing((uv_handle_t *)&p->tcp)) {
        uv_close((uv_handle_t *)&p->tcp, tcp_closed_cb);
    } /* else its tcp_closed_cb closes the timer and frees it */
}

/* The transport state hangs off the listeners (srv_node has no field for
 * it); NULL once srv_peer_close ran. */
static struct srv_peer_net *net_of(struct srv_node *n)
{
    return n->n_listeners > 0 ? n->peer_listeners[0].data : NULL;
}

int srv_peer_add(struct srv_node *n, uint64_t id,
                 const struct srv_url_list *peer_urls)
{
    if (id == n->member_id || peer_find(n, id) != NULL) {
        return MOOR_OK;
    }
    struct srv_peer_net *net = net_of(n);
    if (net == NULL) {
        return MOOR_ESHUTDOWN;
    }
    if (peer_urls->n == 0 || peer_urls->urls[0].tls != net->tls) {
        return MOOR_EINVAL; /* https and http peers do not mix */
    }
    if (n->n_peers == SRV_MEMBERS_MAX) {
        return MOOR_ETOOBIG;
    }
    struct sockaddr_storage addr;
    if (srv_peer_resolve(&peer_urls->urls[0], &addr) != MOOR_OK) {
        return MOOR_EINVAL;
    }
    struct srv_peer *p = moor_calloc(1, sizeof(*p));
    if (p == NULL) {
        return MOOR_ENOMEM;
    }
    p->n = n;
    p->net = net;
    p->id = id;
    p->addr = addr;
    p->backoff_ms = PEER_BACKOFF_MIN_MS;
    moor_prng_seed(&p->prng, n->member_id ^ id ^ moor_clock_ns());
    snprintf(p->url, sizeof(p->url), "%s", peer_urls->urls[0].text);
    moor_buf_init(&p->out);
    moor_buf_init(&p->writing_buf);
    uv_timer_init(n->loop, &p->retry);
    n->peers[n->n_peers++] = p;
    peer_connect(p);
    return MOOR_OK;
}

void srv_peer_remove(struct srv_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_peers; i++) {
        struct srv_peer *p = n->peers[i];
        if (p->id != id) {
            continue;
        }
        n->peers[i] = n->peers[n->n_peers - 1];
        n->peers[--n->n_peers] = NULL;
        peer_release(p);
        break;
    }
    /* Its inbound connections too: a removed member is not heard. */
    for (struct srv_inbound *c = n->inbound; c != NULL; c = c->next) {
        if (c->from == id) {
            srv_peer_inbound_close(c, "member removed");
        }
    }
}

/* ------------------------------------------------------------------------
 * Open and close
 * ---------------------------------------------------------------------- */
static void net_freed_cb(uv_handle_t *h)
{
    struct srv_peer_net *net = h->data;
    srv_peer_tls_close(&net->ctx);
    moor_free(net);
}

int srv_peer_open(struct srv_node *n)
{
    const struct srv_config *cfg = n->cfg;
    struct srv_peer_net *net = moor_calloc(1, sizeof(*net));
    if (net == NULL) {
        return MOOR_ENOMEM;
    }
    net->n = n;
    /* config.c refuses a mix of https and http peer URLs. */
    net->tls = cfg->listen_peer_urls.n > 0 && cfg->listen_peer_urls.urls[0].tls;
    if (net->tls) {
        int rv = srv_peer_tls_open(cfg, &net->ctx, n->errmsg);
        if (rv != MOOR_OK) {
            moor_free(net);
            return rv;
        }
    }
    for (unsigned i = 0; i < cfg->listen_peer_urls.n; i++) {
        const struct srv_url *u = &cfg->listen_peer_urls.urls[i];
        if (n->n_listeners == MOOR_ARRAY_LEN(n->peer_listeners)) {
            break;
        }
        struct sockaddr_storage sa;
        if (srv_peer_resolve(u, &sa) != MOOR_OK) {
            moor_errmsg_set(n->errmsg, "%s: not an IP address", u->text);
            if (n->n_listeners == 0) {
                srv_peer_tls_close(&net->ctx);
                moor_free(net);
            }
            return MOOR_EINVAL;
        }
        uv_tcp_t *l = &n->peer_listeners[n->n_listeners];
        uv_tcp_init(n->loop, l);
        n->n_listeners++;
        l->data = net;
        int rc = uv_tcp_bind(l, (const struct sockaddr *)&sa, 0);
        if (rc == 0) {
            rc = uv_listen((uv_stream_t *)l, 128, accept_cb);
        }
        if (rc < 0) {
            moor_errmsg_set(n->errmsg, "listening on %s: %s", u->text,
                            uv_strerror(rc));
            return MOOR_EIO;
        }
        MOOR_LOG_INFO("peer", "listening for peers", "url=%s tls=%s", u->text,
                      net->tls ? "mutual" : "off");
    }
    for (unsigned i = 0; i < cfg->n_initial_members; i++) {
        const struct srv_initial_member *m = &cfg->initial_members[i];
        int rv = srv_peer_add(n, m->id, &m->peer_urls);
        if (rv == MOOR_EINVAL) {
            moor_errmsg_set(n->errmsg, "%s: not an IP address",
                            m->peer_urls.urls[0].text);
            return rv;
        }
        if (rv != MOOR_OK && rv != MOOR_ETOOBIG) {
            moor_errmsg_set(n->errmsg, "adding peer %s: %s", m->name,
                            moor_strerror(rv));
            return rv;
        }
    }
    return MOOR_OK;
}

void srv_peer_close(struct srv_node *n)
{
    for (unsigned i = 0; i < n->n_listeners; i++) {
        uv_close((uv_handle_t *)&n->peer_listeners[i],
                 i == 0 ? net_freed_cb : NULL);
    }
    n->n_listeners = 0;
    for (size_t i = 0; i < n->n_peers; i++) {
        struct srv_peer *p = n->peers[i];
        n->peers[i] = NULL;
        peer_release(p);
    }
    n->n_peers = 0;
    for (struct srv_inbound *c = n->inbound; c != NULL; c = c->next) {
        srv_peer_inbound_close(c, NULL);
    }
}

unsigned srv_peer_client_urls(struct srv_node *n, uint64_t id,
                              const char **urls, unsigned max)
{
    struct srv_peer *p = peer_find(n, id);
    unsigned k = 0;
    for (; p != NULL && k < p->info.n_client_urls && k < max; k++) {
        urls[k] = p->info.client_urls[k];
    }
    return k;
}
