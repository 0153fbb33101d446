/*
 * peer_snap.c: snapshot transfer to a follower behind the leader's log
 * start, on a connection of its own (peer_int.h has the protocol).
 *
 * Which file: raft compacts its log a little below each periodic snapshot
 * (snap.c keeps 5,000 entries for followers slightly behind), so the
 * snapshot raft asks for is at or below the newest snapshot file. The
 * leader sends the newest file whose index is at or above raft's, and the
 * raft message it sends along names that file's index and term. The conf
 * it carries is raft's (the configuration at raft's compaction point), so
 * the follower replaces it with the configuration of the file's membership
 * block (the member table applied at the file's index, which is raft's
 * configuration there) before raft takes the snapshot.
 *
 * Frames after the handshake, leader -> follower:
 *   Message{type SNAPSHOT, snapshot {index, term, conf}} once, then
 *   SnapshotChunk{offset, data (lz4 block of <= SNAP_CHUNK_BYTES file
 *   bytes), total_bytes, last, sha256 (last only: of the whole file)}.
 * follower -> leader, once everything is installed:
 *   SnapshotChunk{last true, total_bytes}.
 *
 * Threads: file reads, lz4 and SHA-256 (sender), and lz4, SHA-256 and
 * file writes, verify and rename (receiver) run on libuv worker threads
 * through uv_queue_work, one step in flight per transfer; the loop thread
 * only moves frames. While a step runs, the sender has nothing in flight
 * and the receiver has stopped reading, so memory stays at one chunk.
 *
 * Bounds: one transfer per follower on the leader (raft asks again after a
 * failure), one receive per member; a transfer makes progress at least
 * every SNAP_IDLE_MS or fails; files above SNAP_RECV_MAX are neither sent
 * nor accepted. The follower verifies the chunk offsets, the whole file's
 * SHA-256 and the snapshot file itself (snap_receiver_finish) before it is
 * renamed into the snap dir; only then is the raft message stepped, and
 * raft's ready makes node.c install it (srv_snap_install). A malformed,
 * oversize or failing transfer is dropped with a log line, its temporary
 * file removed, nothing installed.
 */
#include <lz4.h>
#include <openssl/evp.h>

#include "peer_int.h"
#include "snapshot/snapshot.h"

#define SNAP_CHUNK_BYTES (1u << 20)
#define SNAP_IDLE_MS 30000u
#define SNAP_RECV_MAX (64ull << 30)

enum step { STEP_OPEN, STEP_CHUNK, STEP_FINISH, STEP_CLOSE };

/* ------------------------------------------------------------------------
 * Sender (leader)
 * ---------------------------------------------------------------------- */
struct srv_peer_snap_send
{
    struct srv_node *n;
    struct srv_peer *p; /* NULL once stopped */
    struct srv_peer_net *net;
    struct sockaddr_storage addr;
    uint64_t peer_id;
    struct raft_message msg; /* no entries, no context */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_timer_t timer;
    uv_work_t work;
    unsigned handles; /* tcp and timer while open */
    bool tcp_open;
    bool connected;
    bool opened; /* the file is open (STEP_OPEN done) */
    bool hello_sent;
    bool work_busy;
    bool writing;
    bool sent_last;
    bool done;
    const char *fail_why; /* a failure reported from the timer */
    uint64_t started_ms;
    /* Worker state: the worker owns these while work_busy. */
    enum step step;
    int rv;
    char errmsg[MOOR_ERRMSG_SIZE];
    char path[SNAP_PATH_MAX];
    struct snap_sender *sender;
    uint64_t file_index;
    uint64_t file_term;
    uint64_t size;
    uint64_t offset; /* file bytes sent */
    uint64_t got;    /* file bytes in the chunk just read */
    uint8_t *raw;
    uint8_t *comp;
    int comp_len;
    EVP_MD_CTX *sha;
    uint8_t digest[32];
    struct moor_buf out;         /* frames waiting */
    struct moor_buf wire;        /* TLS: encrypted bytes waiting */
    struct moor_buf writing_buf; /* the write in flight */
    struct moor_buf in;          /* the follower's answer, plaintext */
    struct srv_tls *tls;         /* NULL: cleartext */
    uint8_t rbuf[4096];
};

static void send_finish(struct srv_peer_snap_send *s, bool ok, const char *why);

static void send_maybe_free(struct srv_peer_snap_send *s)
{
    if (!s->done || s->handles > 0 || s->work_busy || s->writing) {
        return;
    }
    if (s->sender != NULL) {
        snap_sender_close(s->sender); /* a close(2) */
    }
    EVP_MD_CTX_free(s->sha);
    moor_free(s->raw);
    moor_free(s->comp);
    moor_buf_close(&s->out);
    moor_buf_close(&s->wire);
    moor_buf_close(&s->writing_buf);
    moor_buf_close(&s->in);
    srv_tls_free(s->tls);
    moor_free(s);
}

static void send_work_cb(uv_work_t *w)
{
    struct srv_peer_snap_send *s =
        MOOR_CONTAINER_OF(w, struct srv_peer_snap_send, work);
    if (s->step == STEP_OPEN) {
        struct snap_file *files = NULL;
        size_t nf = 0;
        s->rv = snap_list(s->n->datadir.snap_dir, &files, &nf);
        if (s->rv != MOOR_OK) {
            moor_errmsg_set(s->errmsg, "listing the snap dir: %s",
                            moor_strerror(s->rv));
            return;
        }
        /* Newest first: the newest file that covers raft's snapshot. */
        s->rv = MOOR_ENOENT;
        moor_errmsg_set(s->errmsg, "no snapshot file at or above index %llu",
                        (unsigned long long)s->msg.snapshot.index);
        if (nf > 0 && files[0].index >= s->msg.snapshot.index) {
            char name[SNAP_NAME_BYTES + 1];
            snap_name(name, files[0].term, files[0].index);
            snprintf(s->path, sizeof(s->path), "%s/%s", s->n->datadir.snap_dir,
                     name);
            s->file_index = files[0].index;
            s->file_term = files[0].term;
            s->rv = snap_sender_open(&s->sender, s->path, &s->size, s->errmsg);
            if (s->rv == MOOR_OK && s->size > SNAP_RECV_MAX) {
                s->rv = MOOR_ETOOBIG;
                moor_errmsg_set(s->errmsg, "%s: %llu bytes", s->path,
                                (unsigned long long)s->size);
            }
        }
        moor_free(files);
        s->raw = moor_malloc(SNAP_CHUNK_BYTES);
        s->comp = moor_malloc((size_t)LZ4_compressBound(SNAP_CHUNK_BYTES));
        s->sha = EVP_MD_CTX_new();
        if (s->rv == MOOR_OK &&
            (s->raw == NULL || s->comp == NULL || s->sha == NULL ||
             EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1)) {
            s->rv = MOOR_ENOMEM;
        }
        return;
    }
    /* STEP_CHUNK: the next piece of the file, compressed. */
    size_t got = 0;
    s->rv = snap_sender_read(s->sender, s->raw, SNAP_CHUNK_BYTES, &got);
    if (s->rv != MOOR_OK) {
        moor_errmsg_set(s->errmsg, "reading %s: %s", s->path,
                        moor_strerror(s->rv));
        return;
    }
    s->got = got;
    EVP_DigestUpdate(s->sha, s->raw, got);
    if (s->offset + got >= s->size || got == 0) {
        EVP_DigestFinal_ex(s->sha, s->digest, NULL);
    }
    s->comp_len = got == 0 ? 0
                           : LZ4_compress_default(
                                 (const char *)s->raw, (char *)s->comp,
                                 (int)got, LZ4_compressBound(SNAP_CHUNK_BYTES));
    if (got > 0 && s->comp_len <= 0) {
        s->rv = MOOR_EIO;
        moor_errmsg_set(s->errmsg, "lz4 compression failed");
    }
}

static void send_write(struct srv_peer_snap_send *s);

static void send_after_work_cb(uv_work_t *w, int status)
{
    struct srv_peer_snap_send *s =
        MOOR_CONTAINER_OF(w, struct srv_peer_snap_send, work);
    s->work_busy = false;
    if (s->done) {
        send_maybe_free(s);
        return;
    }
    if (status != 0 || s->rv != MOOR_OK) {
        send_finish(s, false, status != 0 ? "canceled" : s->errmsg);
        return;
    }
    uv_timer_again(&s->timer);
    if (s->step == STEP_OPEN) {
        s->opened = true;
        s->msg.snapshot.index = s->file_index;
        s->msg.snapshot.term = s->file_term;
        send_write(s);
        return;
    }
    bool last = s->offset + s->got >= s->size || s->got == 0;
    Moorpb__SnapshotChunk ch = MOORPB__SNAPSHOT_CHUNK__INIT;
    ch.offset = s->offset;
    ch.data.data = s->comp;
    ch.data.len = (size_t)s->comp_len;
    ch.total_bytes = s->size;
    ch.last = last;
    if (last) {
        ch.sha256.data = s->digest;
        ch.sha256.len = sizeof(s->digest);
    }
    Moorpb__Frame f = MOORPB__FRAME__INIT;
    f.body_case = MOORPB__FRAME__BODY_SNAPSHOT_CHUNK;
    f.snapshot_chunk = &ch;
    size_t len = protobuf_c_message_get_packed_size(&f.base);
    if (moor_buf_reserve(&s->out, 4 + len) != MOOR_OK) {
        send_finish(s, false, "out of memory");
        return;
    }
    moor_put_be32(s->out.ptr + s->out.len, (uint32_t)len);
    protobuf_c_message_pack(&f.base, s->out.ptr + s->out.len + 4);
    s->out.len += 4 + len;
    s->offset += s->got;
    s->sent_last = last;
    send_write(s);
}

static void send_queue(struct srv_peer_snap_send *s, enum step step)
{
    s->step = step;
    s->work_busy = true;
    int rc =
        uv_queue_work(s->n->loop, &s->work, send_work_cb, send_after_work_cb);
    MOOR_ASSERT(rc == 0);
}

static void send_write_cb(uv_write_t *req, int status)
{
    struct srv_peer_snap_send *s =
        MOOR_CONTAINER_OF(req, struct srv_peer_snap_send, write_req);
    s->writing = false;
    moor_buf_reset(&s->writing_buf);
    if (s->done) {
        send_maybe_free(s);
        return;
    }
    if (status < 0) {
        send_finish(s, false, uv_strerror(status));
        return;
    }
    uv_timer_again(&s->timer);
    send_write(s); /* the next chunk; after the last, the answer ends it */
}

/* Writes what is queued; with nothing queued, reads the next chunk. Only
 * once both the connection is up and the file is open. */
static void send_write(struct srv_peer_snap_send *s)
{
    if (!s->connected || !s->opened || s->writing || s->done) {
        return;
    }
    if (!s->hello_sent) {
        s->hello_sent = true;
        if (srv_peer_handshake_encode(s->n, s->peer_id, "snapshot", &s->out) !=
                MOOR_OK ||
            srv_peer_encode(&s->msg, &s->out) != MOOR_OK) {
            send_finish(s, false, "out of memory");
            return;
        }
    }
    struct moor_buf *src = &s->out;
    if (s->tls != NULL) {
        char errmsg[MOOR_ERRMSG_SIZE];
        if (s->out.len > 0 && srv_tls_output(s->tls, s->out.ptr, s->out.len,
                                             &s->wire, errmsg) != MOOR_OK) {
            send_finish(s, false, errmsg);
            return;
        }
        moor_buf_reset(&s->out);
        src = &s->wire;
    }
    if (src->len == 0) {
        /* Nothing queued: read the next chunk (with TLS, only once the
         * handshake is done, so chunks never pile up unsent). */
        if (!s->sent_last && !s->work_busy &&
            (s->tls == NULL || srv_tls_ready(s->tls))) {
            send_queue(s, STEP_CHUNK);
        }
        return;
    }
    struct moor_buf t = s->writing_buf;
    s->writing_buf = *src;
    *src = t;
    moor_buf_reset(src);
    uv_buf_t b =
        uv_buf_init((char *)s->writing_buf.ptr, (unsigned)s->writing_buf.len);
    s->writing = true;
    int rc =
        uv_write(&s->write_req, (uv_stream_t *)&s->tcp, &b, 1, send_write_cb);
    if (rc < 0) {
        s->writing = false;
        send_finish(s, false, uv_strerror(rc));
    }
}

static void send_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct srv_peer_snap_send *s =
        MOOR_CONTAINER_OF(h, struct srv_peer_snap_send, tcp);
    (void)suggested;
    buf->base = NULL;
    buf->len = 0;
    if (s->tls != NULL) {
        buf->base = (char *)s->rbuf;
        buf->len = sizeof(s->rbuf);
    } else if (s->in.len < 4096 && moor_buf_reserve(&s->in, 4096) == MOOR_OK) {
        buf->base = (char *)s->in.ptr + s->in.len;
        buf->len = s->in.cap - s->in.len;
    }
}

static void send_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct srv_peer_snap_send *s =
        MOOR_CONTAINER_OF(st, struct srv_peer_snap_send, tcp);
    (void)buf;
    if (s->done) {
        return;
    }
    if (nread < 0) {
        send_finish(s, false,
                    nread == UV_EOF ? "the follower closed the connection"
                                    : uv_strerror((int)nread));
        return;
    }
    if (nread == 0 && buf->base == NULL) {
        send_finish(s, false, "the follower talks too much");
        return;
    }
    if (s->tls != NULL) {
        char errmsg[MOOR_ERRMSG_SIZE];
        int rv = srv_tls_input(s->tls, (const uint8_t *)buf->base,
                               (size_t)nread, &s->in, &s->wire, errmsg);
        if (rv != MOOR_OK) {
            send_finish(s, false, errmsg);
            return;
        }
        send_write(s); /* handshake answers, held-back frames */
        if (s->done) {
            return;
        }
        if (s->in.len > 4096) {
            send_finish(s, false, "the follower talks too much");
            return;
        }
    } else {
        s->in.len += (size_t)nread;
    }
    Moorpb__Frame *f = NULL;
    size_t used = 0;
    int rv = srv_peer_frame_next(s->in.ptr, s->in.len, &used, &f);
    if (rv == MOOR_EAGAIN) {
        return;
    }
    bool ok = rv == MOOR_OK && s->sent_last &&
              f->body_case == MOORPB__FRAME__BODY_SNAPSHOT_CHUNK &&
              f->snapshot_chunk->last &&
              f->snapshot_chunk->total_bytes == s->size;
    if (f != NULL) {
        protobuf_c_message_free_unpacked(&f->base, &moor_pb_allocator);
    }
    send_finish(s, ok, ok ? NULL : "unexpected answer from the follower");
}

static void send_connect_cb(uv_connect_t *req, int status)
{
    struct srv_peer_snap_send *s =
        MOOR_CONTAINER_OF(req, struct srv_peer_snap_send, connect_req);
    if (s->done) {
        return;
    }
    if (status < 0) {
        send_finish(s, false, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    uv_read_start((uv_stream_t *)&s->tcp, send_alloc_cb, send_read_cb);
    if (s->net->tls) {
        char errmsg[MOOR_ERRMSG_SIZE] = "cannot start TLS";
        if (srv_tls_new(&s->net->ctx, false, &s->addr, &s->tls) != MOOR_OK ||
            srv_tls_start(s->tls, &s->wire, errmsg) != MOOR_OK) {
            send_finish(s, false, errmsg);
            return;
        }
    }
    s->connected = true;
    uv_timer_again(&s->timer);
    /* The file opens on a worker meanwhile; frames follow both. */
    send_write(s);
}

static void send_closed_cb(uv_handle_t *h)
{
    struct srv_peer_snap_send *s = h->data;
    s->handles--;
    send_maybe_free(s);
}

static void send_timer_cb(uv_timer_t *t)
{
    struct srv_peer_snap_send *s = t->data;
    send_finish(s, false,
                s->fail_why != NULL ? s->fail_why : "no progress for 30 s");
}

/* Ends the transfer once: tells raft (unless stopped), closes handles. */
static void send_finish(struct srv_peer_snap_send *s, bool ok, const char *why)
{
    if (s->done) {
        return;
    }
    s->done = true;
    struct srv_node *n = s->n;
    if (s->p != NULL) {
        /* Retry delay after a failure: 1 s doubling to 30 s; none after a
         * success. */
        struct srv_peer *p = s->p;
        p->snap_backoff_ms =
            ok ? 0
               : MOOR_MIN(MOOR_MAX(p->snap_backoff_ms * 2, (uint64_t)1000),
                          (uint64_t)30000);
        p->snap_retry_ms = ok ? 0 : uv_now(n->loop) + p->snap_backoff_ms;
        p->snap = NULL;
        s->p = NULL;
        if (ok) {
            MOOR_LOG_INFO(
                "peer", "snapshot sent",
                "peer=%llx index=%llu bytes=%llu ms=%llu",
                (unsigned long long)s->peer_id,
                (unsigned long long)s->msg.snapshot.index,
                (unsigned long long)s->size,
                (unsigned long long)(uv_now(n->loop) - s->started_ms));
        } else {
            MOOR_LOG_WARN("peer", "snapshot transfer failed",
                          "peer=%llx index=%llu why=\"%s\"",
                          (unsigned long long)s->peer_id,
                          (unsigned long long)s->msg.snapshot.index,
                          why != NULL ? why : "");
        }
        if (n->raft != NULL && !n->stopping) {
            raft_node_report_snapshot(n->raft, s->peer_id, ok);
            srv_node_process(n);
        }
    }
    if (s->tcp_open && !uv_is_closing((uv_handle_t *)&s->tcp)) {
        uv_close((uv_handle_t *)&s->tcp, send_closed_cb);
    }
    if (!uv_is_closing((uv_handle_t *)&s->timer)) {
        uv_close((uv_handle_t *)&s->timer, send_closed_cb);
    }
    send_maybe_free(s);
}

/* Starts the transfer: the file opens on a worker while the connection
 * is made. */
static void send_begin(struct srv_peer_snap_send *s)
{
    struct srv_node *n = s->n;
    uv_timer_start(&s->timer, send_timer_cb, SNAP_IDLE_MS, SNAP_IDLE_MS);
    uv_tcp_init(n->loop, &s->tcp);
    s->tcp.data = s;
    s->tcp_open = true;
    s->handles++;
    s->started_ms = uv_now(n->loop);
    MOOR_LOG_INFO("peer", "sending a snapshot to a follower behind the log",
                  "peer=%llx raft_index=%llu", (unsigned long long)s->peer_id,
                  (unsigned long long)s->msg.snapshot.index);
    send_queue(s, STEP_OPEN);
    int rc = uv_tcp_connect(&s->connect_req, &s->tcp,
                            (const struct sockaddr *)&s->addr, send_connect_cb);
    if (rc < 0) {
        s->fail_why = "cannot connect";
        uv_timer_start(&s->timer, send_timer_cb, 0, 0);
    }
}

static void send_delayed_cb(uv_timer_t *t)
{
    struct srv_peer_snap_send *s = t->data;
    if (!s->done) {
        send_begin(s);
    }
}

void srv_peer_snap_send(struct srv_peer *p, const struct raft_message *m)
{
    struct srv_node *n = p->n;
    if (p->snap != NULL || n->stopping) {
        return; /* one transfer per follower */
    }
    struct srv_peer_snap_send *s = moor_calloc(1, sizeof(*s));
    if (s == NULL) {
        /* Raft waits in its snapshot state for this follower until the
         * member restarts or leadership moves: memory is gone anyway. */
        MOOR_LOG_ERROR("peer", "cannot start a snapshot transfer",
                       "peer=%llx err=ENOMEM", (unsigned long long)p->id);
        return;
    }
    s->n = n;
    s->p = p;
    s->net = p->net;
    s->addr = p->addr;
    s->peer_id = p->id;
    s->msg.type = RAFT_MSG_SNAPSHOT;
    s->msg.from = m->from;
    s->msg.to = m->to;
    s->msg.term = m->term;
    s->msg.snapshot.index = m->snapshot.index;
    s->msg.snapshot.term = m->snapshot.term;
    s->msg.snapshot.conf = m->snapshot.conf;
    moor_buf_init(&s->out);
    moor_buf_init(&s->wire);
    moor_buf_init(&s->writing_buf);
    moor_buf_init(&s->in);
    p->snap = s;
    uv_timer_init(n->loop, &s->timer);
    s->timer.data = s;
    s->handles++;
    /* This runs inside raft's ready: everything that reports to raft
     * happens in later callbacks. After failures the next transfer waits
     * (p->snap_retry_ms), so a follower that keeps refusing is not sent
     * the file at every heartbeat. */
    uint64_t now = uv_now(n->loop);
    if (p->snap_retry_ms > now) {
        uv_timer_start(&s->timer, send_delayed_cb, p->snap_retry_ms - now, 0);
        return;
    }
    send_begin(s);
}

void srv_peer_snap_send_stop(struct srv_peer *p)
{
    struct srv_peer_snap_send *s = p->snap;
    if (s == NULL) {
        return;
    }
    p->snap = NULL;
    s->p = NULL; /* no report: the peer is gone */
    send_finish(s, false, NULL);
}

/* ------------------------------------------------------------------------
 * Receiver (follower)
 * ---------------------------------------------------------------------- */
struct srv_peer_snap_recv
{
    struct srv_node *n;
    struct srv_inbound *c; /* NULL once detached */
    uint64_t from;
    struct raft_message msg;
    bool have_msg;
    uv_work_t work;
    bool work_busy;
    bool installed;
    uint64_t started_ms;
    /* Worker state. */
    enum step step;
    int rv;
    char errmsg[MOOR_ERRMSG_SIZE];
    struct snap_receiver *r;
    uint8_t *comp; /* owned copy of the chunk's data */
    size_t comp_len;
    uint8_t *raw;
    uint64_t offset; /* file bytes written */
    uint64_t total;
    bool last;
    uint8_t want_sha[32];
    EVP_MD_CTX *sha;
    struct snap_meta meta;
    char path[SNAP_PATH_MAX];
};

static void recv_queue(struct srv_peer_snap_recv *r, enum step step);

/* Frees r once nothing holds it: no connection, no worker step, no answer
 * being written. An unfinished receive's temporary file is removed on a
 * worker first. */
static void recv_release(struct srv_peer_snap_recv *r)
{
    if (r->c != NULL || r->work_busy) {
        return;
    }
    if (r->r != NULL) {
        if (!r->installed) {
            recv_queue(r, STEP_CLOSE); /* unlinks the temporary file */
            return;
        }
        snap_receiver_close(r->r); /* installed: only frees */
        r->r = NULL;
    }
    snap_meta_close(&r->meta);
    EVP_MD_CTX_free(r->sha);
    moor_free(r->comp);
    moor_free(r->raw);
    moor_free(r);
}

static void recv_work_cb(uv_work_t *w)
{
    struct srv_peer_snap_recv *r =
        MOOR_CONTAINER_OF(w, struct srv_peer_snap_recv, work);
    switch (r->step) {
    case STEP_OPEN:
        r->rv = snap_receiver_open(&r->r, r->n->datadir.snap_dir, SNAP_RECV_MAX,
                                   r->errmsg);
        r->raw = moor_malloc(SNAP_CHUNK_BYTES);
        r->sha = EVP_MD_CTX_new();
        if (r->rv == MOOR_OK &&
            (r->raw == NULL || r->sha == NULL ||
             EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL) != 1)) {
            r->rv = MOOR_ENOMEM;
        }
        break;
    case STEP_CHUNK: {
        int got = r->comp_len == 0 ? 0
                                   : LZ4_decompress_safe(
                                         (const char *)r->comp, (char *)r->raw,
                                         (int)r->comp_len, SNAP_CHUNK_BYTES);
        if (got < 0 || (got == 0 && r->comp_len > 0) ||
            r->offset + (uint64_t)got > r->total) {
            r->rv = MOOR_EPROTO;
            moor_errmsg_set(r->errmsg, "bad chunk at offset %llu",
                            (unsigned long long)r->offset);
            break;
        }
        EVP_DigestUpdate(r->sha, r->raw, (size_t)got);
        r->rv = snap_receiver_write(r->r, r->raw, (size_t)got);
        if (r->rv != MOOR_OK) {
            /* It names the temporary file, the offset and the errno. */
            moor_errmsg_set(r->errmsg, "%s", snap_receiver_errmsg(r->r));
        }
        r->offset += (uint64_t)got;
        break;
    }
    case STEP_FINISH: {
        uint8_t digest[32];
        EVP_DigestFinal_ex(r->sha, digest, NULL);
        if (r->offset != r->total ||
            memcmp(digest, r->want_sha, sizeof(digest)) != 0) {
            r->rv = MOOR_ECORRUPT;
            moor_errmsg_set(
                r->errmsg, "received %llu of %llu bytes, SHA-256 %s",
                (unsigned long long)r->offset, (unsigned long long)r->total,
                memcmp(digest, r->want_sha, 32) == 0 ? "matches" : "differs");
            break;
        }
        r->rv = snap_receiver_finish(r->r, &r->meta, r->path, r->errmsg);
        if (r->rv == MOOR_EEXIST) {
            r->rv = MOOR_OK; /* that very snapshot is already installed */
        }
        break;
    }
    case STEP_CLOSE:
        snap_receiver_close(r->r);
        r->r = NULL;
        break;
    }
}

/* The transfer failed: log, and close the connection (which detaches). */
static void recv_fail(struct srv_peer_snap_recv *r, const char *why)
{
    MOOR_LOG_WARN("peer", "snapshot transfer dropped, nothing installed",
                  "from=%llx index=%llu why=\"%s\"",
                  (unsigned long long)r->from,
                  (unsigned long long)r->msg.snapshot.index, why);
    if (r->c != NULL) {
        srv_peer_inbound_close(r->c, NULL);
    }
}

/* The file is verified and in the snap dir: raft takes the snapshot, and
 * node.c's ready installs it into kv (srv_snap_install). */
static void recv_installed(struct srv_peer_snap_recv *r)
{
    struct srv_node *n = r->n;
    if (r->meta.index != r->msg.snapshot.index ||
        r->meta.term != r->msg.snapshot.term) {
        recv_fail(r, "the file is not the snapshot the message names");
        return;
    }
    if (r->meta.membership != NULL && r->meta.membership->len > 0) {
        struct srv_members ms;
        char why[MOOR_ERRMSG_SIZE];
        if (srv_members_decode(moor_bytes_slice(r->meta.membership), &ms, NULL,
                               NULL, why) != MOOR_OK) {
            recv_fail(r, "the snapshot's membership block is invalid");
            return;
        }
        srv_members_to_conf(&ms, &r->msg.snapshot.conf);
    }
    r->installed = true;
    MOOR_LOG_INFO(
        "peer", "received a snapshot from the leader",
        "from=%llx index=%llu term=%llu bytes=%llu ms=%llu",
        (unsigned long long)r->from, (unsigned long long)r->meta.index,
        (unsigned long long)r->meta.term, (unsigned long long)r->total,
        (unsigned long long)(uv_now(n->loop) - r->started_ms));
    if (n->raft != NULL && !n->stopping) {
        raft_node_step(n->raft, &r->msg);
        srv_node_process(n);
    }
    Moorpb__SnapshotChunk ch = MOORPB__SNAPSHOT_CHUNK__INIT;
    ch.last = true;
    ch.total_bytes = r->total;
    Moorpb__Frame f = MOORPB__FRAME__INIT;
    f.body_case = MOORPB__FRAME__BODY_SNAPSHOT_CHUNK;
    f.snapshot_chunk = &ch;
    size_t len = protobuf_c_message_get_packed_size(&f.base);
    uint8_t ack[64];
    if (r->c == NULL || 4 + len > sizeof(ack)) {
        return;
    }
    moor_put_be32(ack, (uint32_t)len);
    protobuf_c_message_pack(&f.base, ack + 4);
    srv_peer_inbound_send(r->c, ack, 4 + len);
}

static void recv_after_work_cb(uv_work_t *w, int status)
{
    struct srv_peer_snap_recv *r =
        MOOR_CONTAINER_OF(w, struct srv_peer_snap_recv, work);
    r->work_busy = false;
    if (r->step == STEP_CLOSE || r->c == NULL) {
        recv_release(r);
        return;
    }
    if (status != 0 || r->rv != MOOR_OK) {
        recv_fail(r, status != 0 ? "canceled" : r->errmsg);
        return;
    }
    if (r->step == STEP_CHUNK && r->last) {
        recv_queue(r, STEP_FINISH); /* reading stays paused */
        return;
    }
    if (r->step == STEP_FINISH) {
        recv_installed(r);
        if (r->c == NULL) {
            return;
        }
    }
    srv_peer_inbound_resume(r->c);
}

static void recv_queue(struct srv_peer_snap_recv *r, enum step step)
{
    r->step = step;
    r->work_busy = true;
    int rc =
        uv_queue_work(r->n->loop, &r->work, recv_work_cb, recv_after_work_cb);
    MOOR_ASSERT(rc == 0);
}

static bool recv_refuse(struct srv_inbound *c, const char *why)
{
    MOOR_LOG_WARN("peer", "refusing a snapshot transfer",
                  "from=%llx why=\"%s\"", (unsigned long long)c->from, why);
    return false;
}

/* Another receive is under way on this member. */
static bool receiving(const struct srv_node *n)
{
    for (const struct srv_inbound *c = n->inbound; c != NULL; c = c->next) {
        if (c->recv != NULL && !c->closing) {
            return true;
        }
    }
    return false;
}

bool srv_peer_snap_recv_frame(struct srv_inbound *c, const Moorpb__Frame *f)
{
    struct srv_node *n = c->n;
    struct srv_peer_snap_recv *r = c->recv;
    if (r == NULL) {
        /* First: the raft message. */
        if (f->body_case != MOORPB__FRAME__BODY_MESSAGE ||
            f->message->type != MOORPB__MESSAGE_TYPE__MSG_SNAP ||
            f->message->n_entries > 0 || f->message->from != c->from) {
            return recv_refuse(c, "the stream does not start with a snapshot");
        }
        if (receiving(n)) {
            return recv_refuse(c, "another snapshot is being received");
        }
        r = moor_calloc(1, sizeof(*r));
        if (r == NULL) {
            return recv_refuse(c, "out of memory");
        }
        if (srv_peer_msg_decode(f->message, &r->msg) != MOOR_OK ||
            r->msg.snapshot.index == 0) {
            srv_peer_msg_release(&r->msg);
            moor_free(r);
            return recv_refuse(c, "invalid snapshot message");
        }
        r->n = n;
        r->c = c;
        r->from = c->from;
        r->started_ms = uv_now(n->loop);
        c->recv = r;
        MOOR_LOG_INFO("peer", "receiving a snapshot from the leader",
                      "from=%llx index=%llu", (unsigned long long)r->from,
                      (unsigned long long)r->msg.snapshot.index);
        c->paused = true;
        recv_queue(r, STEP_OPEN);
        return true;
    }
    const Moorpb__SnapshotChunk *ch = f->snapshot_chunk;
    const char *why = NULL;
    if (f->body_case != MOORPB__FRAME__BODY_SNAPSHOT_CHUNK) {
        why = "not a snapshot chunk";
    } else if (r->last || r->installed) {
        why = "a chunk after the last";
    } else if (ch->offset != r->offset) {
        why = "a chunk out of order";
    } else if (ch->total_bytes == 0 || ch->total_bytes > SNAP_RECV_MAX ||
               (r->total != 0 && ch->total_bytes != r->total)) {
        why = "oversize or inconsistent total";
    } else if (ch->data.len > (size_t)LZ4_compressBound(SNAP_CHUNK_BYTES)) {
        why = "oversize chunk";
    } else if (ch->last && ch->sha256.len != 32) {
        why = "the last chunk has no SHA-256";
    }
    if (why != NULL) {
        recv_fail(r, why);
        return false;
    }
    r->total = ch->total_bytes;
    r->last = ch->last;
    if (ch->last) {
        memcpy(r->want_sha, ch->sha256.data, 32);
    }
    moor_free(r->comp);
    r->comp = NULL;
    r->comp_len = ch->data.len;
    if (ch->data.len > 0) {
        r->comp = moor_malloc(ch->data.len);
        if (r->comp == NULL) {
            recv_fail(r, "out of memory");
            return false;
        }
        memcpy(r->comp, ch->data.data, ch->data.len);
    }
    c->paused = true;
    recv_queue(r, STEP_CHUNK);
    return true;
}

void srv_peer_snap_recv_detach(struct srv_inbound *c)
{
    struct srv_peer_snap_recv *r = c->recv;
    c->recv = NULL;
    r->c = NULL;
    srv_peer_msg_release(&r->msg);
    recv_release(r); /* or, with a step in flight, its callback */
}
