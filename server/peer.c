/*
 * peer.c: the member-to-member transport (cleartext TCP, first slice).
 *
 * Every member dials every other member and keeps that connection for
 * the raft messages it sends; it accepts the others' connections and only
 * reads from them. So each direction of each pair is one long-lived TCP
 * stream, and a slow reader can only slow its own inbound stream.
 *
 * Frames (proto/moor/peer.proto):
 *   OFFSET SIZE MEANING
 *   0      4    length N of the frame body, big-endian, 1 <= N <= 64 MiB
 *   4      N    a moorpb.Frame
 * The first frame on a connection is a Handshake; the acceptor checks the
 * cluster id and that it is the member addressed, and closes a connection
 * that fails either (a member from another cluster is refused). Any
 * malformed or oversize frame closes that connection, never the process.
 *
 * Sending never blocks and never waits: a message goes into the peer's
 * outbound buffer, bounded (PEER_OUT_MAX); beyond it messages are dropped,
 * which raft tolerates (it retries appends and heartbeats). A failed
 * connection is retried with backoff, and raft is told the peer is
 * unreachable. When the connection to the current leader is refused or
 * reset, the leader's process is gone: raft is told at once
 * (raft_node_report_leader_lost), so a pre-vote starts within ticks rather
 * than an election timeout.
 *
 * Not yet: TLS and peer certificates, the separate snapshot stream (a
 * follower behind the leader's log start cannot catch up yet), membership
 * changes.
 */
#include <stdlib.h>

#include "server_int.h"

#define PEER_FRAME_MAX (64u << 20)
#define PEER_OUT_MAX (64u << 20)
#define PEER_BACKOFF_MIN_MS 50
#define PEER_BACKOFF_MAX_MS 1000
#define PEER_PROTOCOL_VERSION SRV_PEER_PROTOCOL_VERSION

/* What a member learned of another from its handshake (peer.c keeps one
 * per other member; MemberList reads it). */
struct srv_peer_info
{
    char client_urls[SRV_URLS_MAX][300];
    unsigned n_client_urls;
};

struct srv_peer
{
    struct srv_node *n;
    uint64_t id;
    struct sockaddr_storage addr;
    char url[300];
    /* Outbound connection. */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_timer_t retry;
    bool tcp_open; /* tcp initialised and not yet closed */
    bool connected;
    bool writing;
    uint64_t backoff_ms;
    struct moor_buf out;         /* frames waiting */
    struct moor_buf writing_buf; /* frames in the write in flight */
    uint64_t dropped;
    struct srv_peer_info info;
    bool released; /* srv_peer_close has handed the peer to its closes */
};

/* An accepted connection: reads frames from one peer. */
struct srv_inbound
{
    struct srv_node *n;
    uv_tcp_t tcp;
    struct moor_buf in;
    uint64_t from;                   /* 0 until the handshake */
    struct srv_inbound *prev, *next; /* the node's inbound list */
};

/* ------------------------------------------------------------------------
 * Conversion between raft's C message and moorpb.Message
 * ---------------------------------------------------------------------- */
int srv_peer_encode(const struct raft_message *m, struct moor_buf *out)
{
    Moorpb__Entry *ents = NULL;
    Moorpb__Entry **eptrs = NULL;
    if (m->n_entries > 0) {
        ents = moor_calloc(m->n_entries, sizeof(*ents));
        eptrs = moor_calloc(m->n_entries, sizeof(*eptrs));
        if (ents == NULL || eptrs == NULL) {
            moor_free(ents);
            moor_free(eptrs);
            return MOOR_ENOMEM;
        }
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        moorpb__entry__init(&ents[i]);
        ents[i].term = e->term;
        ents[i].index = e->index;
        ents[i].type = (Moorpb__EntryType)e->type;
        if (e->data != NULL) {
            ents[i].data.data = e->data->data;
            ents[i].data.len = e->data->len;
        }
        eptrs[i] = &ents[i];
    }
    uint64_t voters[RAFT_MEMBERS_MAX], learners[RAFT_MEMBERS_MAX];
    size_t nv = 0, nl = 0;
    Moorpb__ConfState cs = MOORPB__CONF_STATE__INIT;
    Moorpb__SnapshotMeta sm = MOORPB__SNAPSHOT_META__INIT;
    Moorpb__Message pm = MOORPB__MESSAGE__INIT;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        for (uint32_t i = 0; i < m->snapshot.conf.n; i++) {
            const struct raft_member *mb = &m->snapshot.conf.members[i];
            if (mb->learner) {
                learners[nl++] = mb->id;
            } else {
                voters[nv++] = mb->id;
            }
        }
        cs.voters = voters;
        cs.n_voters = nv;
        cs.learners = learners;
        cs.n_learners = nl;
        sm.index = m->snapshot.index;
        sm.term = m->snapshot.term;
        sm.conf = &cs;
        pm.snapshot = &sm;
    }
    pm.type = (Moorpb__MessageType)m->type;
    pm.to = m->to;
    pm.from = m->from;
    pm.term = m->term;
    pm.log_term = m->log_term;
    pm.index = m->index;
    pm.entries = eptrs;
    pm.n_entries = m->n_entries;
    pm.commit = m->commit;
    pm.reject = m->reject;
    pm.reject_hint = m->reject_hint;
    pm.transfer = m->transfer;
    pm.round = m->round;
    if (m->context != NULL) {
        pm.context.data = m->context->data;
        pm.context.len = m->context->len;
    }
    Moorpb__Frame f = MOORPB__FRAME__INIT;
    f.body_case = MOORPB__FRAME__BODY_MESSAGE;
    f.message = &pm;
    size_t len = protobuf_c_message_get_packed_size(&f.base);
    int rv = MOOR_ETOOBIG;
    if (len <= PEER_FRAME_MAX) {
        rv = moor_buf_reserve(out, 4 + len);
    }
    if (rv == MOOR_OK) {
        moor_put_be32(out->ptr + out->len, (uint32_t)len);
        protobuf_c_message_pack(&f.base, out->ptr + out->len + 4);
        out->len += 4 + len;
    }
    moor_free(ents);
    moor_free(eptrs);
    return rv;
}

/* Fills m from pm; entry payloads and the context are copied into new
 * refcounted blocks (release with msg_release). */
static int msg_decode(const Moorpb__Message *pm, struct raft_message *m,
                      struct raft_entry *ents, size_t ents_cap)
{
    memset(m, 0, sizeof(*m));
    if ((int)pm->type < 1 || (int)pm->type > (int)RAFT_MSG_READ_INDEX_RESP ||
        pm->n_entries > ents_cap) {
        return MOOR_EPROTO;
    }
    m->type = (uint8_t)pm->type;
    m->reject = pm->reject;
    m->transfer = pm->transfer;
    m->from = pm->from;
    m->to = pm->to;
    m->term = pm->term;
    m->log_term = pm->log_term;
    m->index = pm->index;
    m->commit = pm->commit;
    m->reject_hint = pm->reject_hint;
    m->round = pm->round;
    m->entries = ents;
    for (size_t i = 0; i < pm->n_entries; i++) {
        const Moorpb__Entry *e = pm->entries[i];
        ents[i].term = e->term;
        ents[i].index = e->index;
        ents[i].type = (uint8_t)e->type;
        ents[i].data = NULL;
        if (e->data.len > 0) {
            ents[i].data = moor_bytes_copy(e->data.data, e->data.len);
            if (ents[i].data == NULL) {
                m->n_entries = i;
                return MOOR_ENOMEM;
            }
        }
        m->n_entries = i + 1;
    }
    if (pm->context.len > 0) {
        m->context = moor_bytes_copy(pm->context.data, pm->context.len);
        if (m->context == NULL) {
            return MOOR_ENOMEM;
        }
    }
    if (pm->snapshot != NULL) {
        m->snapshot.index = pm->snapshot->index;
        m->snapshot.term = pm->snapshot->term;
        const Moorpb__ConfState *cs = pm->snapshot->conf;
        if (cs != NULL) {
            if (cs->n_voters + cs->n_learners > RAFT_MEMBERS_MAX) {
                return MOOR_EPROTO;
            }
            for (size_t i = 0; i < cs->n_voters; i++) {
                m->snapshot.conf.members[m->snapshot.conf.n].id = cs->voters[i];
                m->snapshot.conf.members[m->snapshot.conf.n++].learner = false;
            }
            for (size_t i = 0; i < cs->n_learners; i++) {
                m->snapshot.conf.members[m->snapshot.conf.n].id =
                    cs->learners[i];
                m->snapshot.conf.members[m->snapshot.conf.n++].learner = true;
            }
        }
    }
    return MOOR_OK;
}

static void msg_release(struct raft_message *m)
{
    for (size_t i = 0; i < m->n_entries; i++) {
        moor_bytes_unref(m->entries[i].data);
    }
    moor_bytes_unref(m->context);
}

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
    moor_buf_close(&p->writing_buf);
    moor_free(p);
}

static void tcp_closed_cb(uv_handle_t *h)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(h, struct srv_peer, tcp);
    p->tcp_open = false;
    p->writing = false;
    moor_buf_reset(&p->writing_buf);
    if (p->released) {
        /* srv_peer_close ran while this close was under way: the timer is
         * the peer's last handle; free the peer once it closes. */
        uv_close((uv_handle_t *)&p->retry, peer_freed_cb);
        return;
    }
    if (p->n->stopping) {
        return; /* no reconnect; srv_peer_close frees the peer */
    }
    uv_timer_start(&p->retry, retry_cb, p->backoff_ms, 0);
    p->backoff_ms = MOOR_MIN(p->backoff_ms * 2, (uint64_t)PEER_BACKOFF_MAX_MS);
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
    if (!p->connected || p->writing || p->out.len == 0) {
        return;
    }
    /* Swap buffers: the write owns writing_buf until write_cb. */
    struct moor_buf t = p->writing_buf;
    p->writing_buf = p->out;
    p->out = t;
    moor_buf_reset(&p->out);
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
    struct srv_node *n = p->n;
    Moorpb__Handshake hs = MOORPB__HANDSHAKE__INIT;
    hs.protocol_version = PEER_PROTOCOL_VERSION;
    hs.cluster_id = n->cluster_id;
    hs.from_id = n->member_id;
    hs.to_id = p->id;
    hs.stream = (char *)(uintptr_t) "message";
    hs.name = n->cfg->name;
    char *urls[SRV_URLS_MAX];
    for (unsigned i = 0; i < n->cfg->advertise_client_urls.n; i++) {
        urls[i] = (char *)(uintptr_t)n->cfg->advertise_client_urls.urls[i].text;
    }
    hs.client_urls = urls;
    hs.n_client_urls = n->cfg->advertise_client_urls.n;
    Moorpb__Frame f = MOORPB__FRAME__INIT;
    f.body_case = MOORPB__FRAME__BODY_HANDSHAKE;
    f.handshake = &hs;
    size_t len = protobuf_c_message_get_packed_size(&f.base);
    struct moor_buf b;
    moor_buf_init(&b);
    if (moor_buf_reserve(&b, 4 + len + p->out.len) == MOOR_OK) {
        moor_put_be32(b.ptr, (uint32_t)len);
        protobuf_c_message_pack(&f.base, b.ptr + 4);
        b.len = 4 + len;
        /* The handshake goes before anything queued meanwhile. */
        moor_buf_append(&b, p->out.ptr, p->out.len);
        moor_buf_close(&p->out);
        p->out = b;
    } else {
        moor_buf_close(&b);
    }
}

/* Nothing is ever sent back on an outbound connection; reading is how the
 * close of the peer's process shows up at once (its kernel closes the
 * socket), without waiting for a write to fail. */
static void out_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char sink[64];
    buf->base = sink;
    buf->len = sizeof(sink);
}

static void out_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(s, struct srv_peer, tcp);
    (void)buf;
    if (nread < 0) {
        peer_fail(p, (int)nread);
    } else if (nread > 0) {
        peer_fail(p, UV_EPROTO); /* a peer that talks back is broken */
    }
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct srv_peer *p = MOOR_CONTAINER_OF(req, struct srv_peer, connect_req);
    if (status < 0) {
        peer_fail(p, status);
        return;
    }
    p->connected = true;
    p->backoff_ms = PEER_BACKOFF_MIN_MS;
    uv_tcp_nodelay(&p->tcp, 1);
    uv_read_start((uv_stream_t *)&p->tcp, out_alloc_cb, out_read_cb);
    moor_buf_reset(&p->out); /* stale messages: raft resends */
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
    if (!p->connected || p->out.len > PEER_OUT_MAX ||
        srv_peer_encode(m, &p->out) != MOOR_OK) {
        p->dropped++; /* raft resends what matters */
        return;
    }
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
    peer_flush(p);
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
    moor_free(c);
}

static void inbound_close(struct srv_inbound *c, const char *why)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        if (why != NULL) {
            MOOR_LOG_WARN("peer", "closing inbound connection",
                          "from=%llx why=\"%s\"", (unsigned long long)c->from,
                          why);
        }
        uv_close((uv_handle_t *)&c->tcp, inbound_closed_cb);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct srv_inbound *c = MOOR_CONTAINER_OF(h, struct srv_inbound, tcp);
    (void)suggested;
    if (moor_buf_reserve(&c->in, 64 * 1024) != MOOR_OK) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)c->in.ptr + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

/* A "join" handshake (join.c): the answer is written, then the
 * connection closes. */
struct join_write
{
    uv_write_t req;
    struct srv_inbound *c;
    struct moor_buf buf;
};

static void join_written_cb(uv_write_t *req, int status)
{
    struct join_write *jw = MOOR_CONTAINER_OF(req, struct join_write, req);
    (void)status;
    inbound_close(jw->c, NULL);
    moor_buf_close(&jw->buf);
    moor_free(jw);
}

static void inbound_answer_join(struct srv_inbound *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
    struct join_write *jw = moor_calloc(1, sizeof(*jw));
    if (jw == NULL) {
        inbound_close(c, "join: out of memory");
        return;
    }
    jw->c = c;
    moor_buf_init(&jw->buf);
    if (srv_members_join_answer(c->n, &jw->buf) != MOOR_OK) {
        moor_free(jw);
        inbound_close(c, "join: out of memory");
        return;
    }
    uv_buf_t b = uv_buf_init((char *)jw->buf.ptr, (unsigned)jw->buf.len);
    if (uv_write(&jw->req, (uv_stream_t *)&c->tcp, &b, 1, join_written_cb) !=
        0) {
        moor_buf_close(&jw->buf);
        moor_free(jw);
        inbound_close(c, "join: write failed");
        return;
    }
    MOOR_LOG_INFO("peer", "answered a joining member's membership request",
                  NULL);
}

/* Handles one frame body; false closes the connection. */
static bool inbound_frame(struct srv_inbound *c, const uint8_t *body,
                          size_t len)
{
    struct srv_node *n = c->n;
    ProtobufCMessage *pm = NULL;
    if (moor_pb_unpack(&moorpb__frame__descriptor, body, len, PEER_FRAME_MAX,
                       &pm) != MOOR_OK) {
        inbound_close(c, "malformed frame");
        return false;
    }
    const Moorpb__Frame *f = (const Moorpb__Frame *)pm;
    bool ok = true;
    if (c->from == 0) {
        const Moorpb__Handshake *hs = f->handshake;
        if (f->body_case != MOORPB__FRAME__BODY_HANDSHAKE ||
            hs->protocol_version != PEER_PROTOCOL_VERSION) {
            inbound_close(c, "no handshake");
            ok = false;
        } else if (hs->stream != NULL && strcmp(hs->stream, "join") == 0) {
            inbound_answer_join(c);
            ok = false;
        } else if (hs->cluster_id != n->cluster_id) {
            inbound_close(c, "a member of another cluster");
            ok = false;
        } else if (hs->to_id != n->member_id || hs->from_id == 0) {
            inbound_close(c, "addressed to another member");
            ok = false;
        } else {
            c->from = hs->from_id;
            struct srv_peer *p = peer_find(n, c->from);
            if (p != NULL) {
                p->info.n_client_urls = 0;
                for (size_t i = 0; i < hs->n_client_urls && i < SRV_URLS_MAX;
                     i++) {
                    snprintf(p->info.client_urls[i],
                             sizeof(p->info.client_urls[i]), "%s",
                             hs->client_urls[i]);
                    p->info.n_client_urls++;
                }
            }
        }
    } else if (f->body_case == MOORPB__FRAME__BODY_MESSAGE && n->raft != NULL) {
        struct raft_entry *ents = NULL;
        size_t cap = f->message->n_entries;
        if (cap > 0) {
            ents = moor_calloc(cap, sizeof(*ents));
        }
        struct raft_message m;
        int rv = (cap > 0 && ents == NULL)
                     ? MOOR_ENOMEM
                     : msg_decode(f->message, &m, ents, cap);
        if (rv == MOOR_OK && m.from != c->from) {
            rv = MOOR_EPROTO; /* a peer speaks only for itself */
        }
        if (rv == MOOR_OK && m.type == RAFT_MSG_SNAPSHOT) {
            /* Snapshot transfer is not built: a snapshot without the
             * state would leave this member's keyspace behind its log.
             * Refusing it keeps the member consistent (it just cannot
             * catch up until it is rebuilt). */
            MOOR_LOG_ERROR("peer",
                           "refusing a raft snapshot: snapshot transfer is "
                           "not built, this member cannot catch up",
                           "from=%llx index=%llu", (unsigned long long)m.from,
                           (unsigned long long)m.snapshot.index);
        } else if (rv == MOOR_OK) {
            raft_node_step(n->raft, &m);
        } else if (rv == MOOR_EPROTO) {
            inbound_close(c, "invalid raft message");
            ok = false;
        }
        if (ents != NULL) {
            msg_release(&m);
            moor_free(ents);
        } else if (rv == MOOR_OK) {
            msg_release(&m);
        }
    }
    protobuf_c_message_free_unpacked(pm, &moor_pb_allocator);
    return ok;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct srv_inbound *c = MOOR_CONTAINER_OF(s, struct srv_inbound, tcp);
    (void)buf;
    if (nread < 0) {
        inbound_close(c, nread == UV_EOF ? NULL : uv_err_name((int)nread));
        return;
    }
    c->in.len += (size_t)nread;
    size_t off = 0;
    while (c->in.len - off >= 4) {
        uint32_t len = moor_get_be32(c->in.ptr + off);
        if (len == 0 || len > PEER_FRAME_MAX) {
            inbound_close(c, "oversize frame");
            return;
        }
        if (c->in.len - off - 4 < len) {
            break;
        }
        if (!inbound_frame(c, c->in.ptr + off + 4, len)) {
            return;
        }
        off += 4 + len;
    }
    moor_buf_consume(&c->in, off);
    srv_node_process(c->n);
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct srv_node *n = server->data;
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
        uv_close((uv_handle_t *)&c->tcp, inbound_closed_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* ------------------------------------------------------------------------
 * Open and close
 * ---------------------------------------------------------------------- */
static int resolve(const struct srv_url *u, struct sockaddr_storage *out)
{
    const char *host =
        strcmp(u->host, "localhost") == 0 ? "127.0.0.1" : u->host;
    if (uv_ip4_addr(host, u->port, (struct sockaddr_in *)out) == 0) {
        return MOOR_OK;
    }
    if (uv_ip6_addr(host, u->port, (struct sockaddr_in6 *)out) == 0) {
        return MOOR_OK;
    }
    return MOOR_EINVAL;
}

int srv_peer_open(struct srv_node *n)
{
    const struct srv_config *cfg = n->cfg;
    for (unsigned i = 0; i < cfg->listen_peer_urls.n; i++) {
        const struct srv_url *u = &cfg->listen_peer_urls.urls[i];
        if (u->tls) {
            moor_errmsg_set(n->errmsg, "%s: peer TLS is not built yet",
                            u->text);
            return MOOR_EINVAL;
        }
        if (n->n_listeners == MOOR_ARRAY_LEN(n->peer_listeners)) {
            break;
        }
        struct sockaddr_storage sa;
        if (resolve(u, &sa) != MOOR_OK) {
            moor_errmsg_set(n->errmsg, "%s: not an IP address", u->text);
            return MOOR_EINVAL;
        }
        uv_tcp_t *l = &n->peer_listeners[n->n_listeners];
        uv_tcp_init(n->loop, l);
        n->n_listeners++;
        l->data = n;
        int rc = uv_tcp_bind(l, (const struct sockaddr *)&sa, 0);
        if (rc == 0) {
            rc = uv_listen((uv_stream_t *)l, 128, accept_cb);
        }
        if (rc < 0) {
            moor_errmsg_set(n->errmsg, "listening on %s: %s", u->text,
                            uv_strerror(rc));
            return MOOR_EIO;
        }
        MOOR_LOG_INFO("peer", "listening for peers", "url=%s", u->text);
    }
    for (unsigned i = 0; i < cfg->n_initial_members; i++) {
        const struct srv_initial_member *m = &cfg->initial_members[i];
        if (m->id == n->member_id || n->n_peers == SRV_MEMBERS_MAX) {
            continue;
        }
        struct srv_peer *p = moor_calloc(1, sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        p->n = n;
        p->id = m->id;
        p->backoff_ms = PEER_BACKOFF_MIN_MS;
        snprintf(p->url, sizeof(p->url), "%s", m->peer_urls.urls[0].text);
        moor_buf_init(&p->out);
        moor_buf_init(&p->writing_buf);
        uv_timer_init(n->loop, &p->retry);
        n->peers[n->n_peers++] = p;
        if (resolve(&m->peer_urls.urls[0], &p->addr) != MOOR_OK) {
            moor_errmsg_set(n->errmsg, "%s: not an IP address", p->url);
            return MOOR_EINVAL;
        }
        peer_connect(p);
    }
    return MOOR_OK;
}

void srv_peer_close(struct srv_node *n)
{
    for (unsigned i = 0; i < n->n_listeners; i++) {
        uv_close((uv_handle_t *)&n->peer_listeners[i], NULL);
    }
    n->n_listeners = 0;
    for (size_t i = 0; i < n->n_peers; i++) {
        struct srv_peer *p = n->peers[i];
        n->peers[i] = NULL;
        p->released = true;
        uv_timer_stop(&p->retry);
        if (!p->tcp_open) {
            uv_close((uv_handle_t *)&p->retry, peer_freed_cb);
        } else if (!uv_is_closing((uv_handle_t *)&p->tcp)) {
            uv_close((uv_handle_t *)&p->tcp, tcp_closed_cb);
        } /* else its tcp_closed_cb closes the timer and frees it */
    }
    n->n_peers = 0;
    for (struct srv_inbound *c = n->inbound; c != NULL; c = c->next) {
        inbound_close(c, NULL);
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
