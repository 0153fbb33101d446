/*
 * server/peer_int.h: the peer transport's internal API beyond what
 * server_int.h declares: membership changes (add and remove a peer), the
 * libuv-free frame decoder (fuzzed by tests/fuzz/fuzz_server_peer_frame.c)
 * and the snapshot stream (peer_snap.c).
 *
 * Threads: everything here runs on the member's loop thread, except the
 * frame functions, which are pure (no loop, no globals) and may run
 * anywhere.
 *
 * Wire (proto/moor/peer.proto), one TCP connection per stream:
 *   OFFSET SIZE MEANING
 *   0      4    length N of the frame body, big-endian,
 *               1 <= N <= SRV_PEER_FRAME_MAX
 *   4      N    a moorpb.Frame
 * The first frame is a Handshake; its stream is "message" (raft messages,
 * one long-lived connection per direction of each pair) or "snapshot"
 * (one connection per snapshot transfer, see peer_snap.c).
 */
#ifndef MOOR_SERVER_PEER_INT_H
#define MOOR_SERVER_PEER_INT_H

#include "server_int.h"

/* The Handshake's protocol_version. */
#define SRV_PEER_PROTOCOL_VERSION 1
/* Largest frame body a member accepts or sends. */
#define SRV_PEER_FRAME_MAX (64u << 20)
/* Most entries one decoded raft message may carry. */
#define SRV_PEER_ENTRIES_MAX 65536u

/* ------------------------------------------------------------------------
 * Membership changes
 * ---------------------------------------------------------------------- */

/* Starts dialing member id at the first of peer_urls (borrowed, copied) for
 * raft messages; a member already known, or this member itself, is left as
 * it is (MOOR_OK). Loop thread. Errors: MOOR_EINVAL (no URL, or its host is
 * not an IP address), MOOR_ETOOBIG (SRV_MEMBERS_MAX peers already),
 * MOOR_ENOMEM. */
int srv_peer_add(struct srv_node *n, uint64_t id,
                 const struct srv_url_list *peer_urls);

/* Closes the connections to member id, stops any snapshot transfer to it,
 * and forgets it (no more dialing). Unknown ids are ignored. Loop thread. */
void srv_peer_remove(struct srv_node *n, uint64_t id);

/* ------------------------------------------------------------------------
 * Frames (peer_frame.c): pure functions over untrusted bytes
 * ---------------------------------------------------------------------- */

/* Splits the first frame off buf[0..len). MOOR_OK: *frame returns owned
 * (protobuf_c_message_free_unpacked with moor_pb_allocator) and *used is
 * the bytes it took (4 + body). MOOR_EAGAIN: buf holds no whole frame yet
 * (nothing set). MOOR_ETOOBIG: the length prefix is 0 or above
 * SRV_PEER_FRAME_MAX. MOOR_EPROTO: the body is not a Frame, or a Frame
 * without a body. MOOR_ENOMEM. Borrows buf. */
int srv_peer_frame_next(const uint8_t *buf, size_t len, size_t *used,
                        Moorpb__Frame **frame);

/* Converts a received moorpb.Message into raft's form, checking what raft
 * cannot: the type is known, at most SRV_PEER_ENTRIES_MAX entries, entry
 * types known, at most RAFT_MEMBERS_MAX members in a snapshot's conf.
 * Entries, their payloads and the context are copied into new allocations
 * (release with srv_peer_msg_release, also after a failure). Borrows pm.
 * MOOR_EPROTO, MOOR_ENOMEM. */
int srv_peer_msg_decode(const Moorpb__Message *pm, struct raft_message *m);

/* Frees what srv_peer_msg_decode allocated in m (m itself is the
 * caller's). */
void srv_peer_msg_release(struct raft_message *m);

/* Appends a Handshake frame for stream ("message" or "snapshot") from this
 * member to member to. MOOR_ENOMEM. */
int srv_peer_handshake_encode(struct srv_node *n, uint64_t to,
                              const char *stream, struct moor_buf *out);

/* Resolves a peer URL's host (an IP address, or "localhost") and port.
 * MOOR_EINVAL for anything else. */
int srv_peer_resolve(const struct srv_url *u, struct sockaddr_storage *out);

/* ------------------------------------------------------------------------
 * Snapshot stream (peer_snap.c)
 *
 * Leader side: raft's RAFT_MSG_SNAPSHOT to a follower starts a transfer on
 * its own connection (so heartbeats never wait behind it): Handshake
 * (stream "snapshot"), the raft message (its snapshot meta rewritten to the
 * snapshot file sent), then the file as SnapshotChunk frames of at most
 * 1 MiB each, lz4-compressed, the last one carrying the SHA-256 of the
 * whole file. The follower answers one SnapshotChunk{last, total_bytes}
 * once the file is verified and installed and raft has stepped the
 * message; only then does the leader report success to raft. Anything
 * else (connect failure, timeout, close) reports failure, and raft tries
 * again later.
 * ---------------------------------------------------------------------- */

/* ------------------------------------------------------------------------
 * Peer TLS (peer_tls.c): OpenSSL on memory BIOs, the socket stays libuv's
 * ---------------------------------------------------------------------- */
struct ssl_ctx_st;

/* The member's two TLS contexts, from --peer-cert-file, --peer-key-file,
 * --peer-trusted-ca-file and --peer-client-cert-auth. */
struct srv_peer_tls
{
    struct ssl_ctx_st *server; /* accepted connections */
    struct ssl_ctx_st *client; /* dialed connections */
};

/* Loads the files (borrows cfg). MOOR_ETLS with errmsg naming the file and
 * OpenSSL's reason. */
int srv_peer_tls_open(const struct srv_config *cfg, struct srv_peer_tls *t,
                      char *errmsg);
void srv_peer_tls_close(struct srv_peer_tls *t);

/* One connection's TLS state. */
struct srv_tls;

/* Returns owned in *out (srv_tls_free): the acceptor side (server) or the
 * dialer side, which checks the acceptor's certificate against remote's
 * address; the acceptor checks the client certificate's IP SANs, if any,
 * against remote. Borrows ctx (OpenSSL keeps its own reference) and
 * remote. MOOR_ENOMEM, MOOR_EINVAL. */
int srv_tls_new(const struct srv_peer_tls *ctx, bool server,
                const struct sockaddr_storage *remote, struct srv_tls **out);
void srv_tls_free(struct srv_tls *t);
/* True once the handshake is done (and the peer's certificate passed). */
bool srv_tls_ready(const struct srv_tls *t);
/* Dialer: appends the ClientHello to wire. MOOR_ETLS with errmsg. */
int srv_tls_start(struct srv_tls *t, struct moor_buf *wire, char *errmsg);
/* Socket bytes in (borrowed): plaintext appended to plain, bytes to send
 * back (handshake, alerts) to wire. MOOR_ETLS (handshake, certificate or
 * record failure; errmsg says which), MOOR_ECONN (the peer closed TLS),
 * MOOR_ENOMEM. */
int srv_tls_input(struct srv_tls *t, const uint8_t *p, size_t n,
                  struct moor_buf *plain, struct moor_buf *wire, char *errmsg);
/* Plaintext out (borrowed): socket bytes appended to wire; before the
 * handshake is done the plaintext waits inside t. MOOR_ETLS, MOOR_ENOMEM. */
int srv_tls_output(struct srv_tls *t, const uint8_t *p, size_t n,
                   struct moor_buf *wire, char *errmsg);

/* ------------------------------------------------------------------------
 * The transport's objects (peer.c), shared with peer_snap.c
 * ---------------------------------------------------------------------- */
/* The member's peer transport: whether peers speak TLS, and its contexts.
 * Allocated by srv_peer_open, reached through every peer listener's data
 * pointer; freed when the first listener closes. */
struct srv_peer_net
{
    struct srv_node *n;
    bool tls;
    struct srv_peer_tls ctx;
};

struct srv_peer_snap_send;
struct srv_peer_snap_recv;

/* What a member learned of another from its handshake (MemberList reads
 * it). */
struct srv_peer_info
{
    char client_urls[SRV_URLS_MAX][300];
    unsigned n_client_urls;
};

/* Another member: the outbound message connection to it, redialed with
 * backoff, and the snapshot transfer to it (NULL: none). */
struct srv_peer
{
    struct srv_node *n;
    struct srv_peer_net *net;
    uint64_t id;
    struct sockaddr_storage addr;
    char url[300];
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_timer_t retry;
    bool tcp_open; /* tcp initialised and not yet closed */
    bool connected;
    bool writing;
    uint64_t backoff_ms;         /* the next retry's base delay */
    struct moor_prng prng;       /* jitter */
    struct moor_buf out;         /* frames waiting */
    struct moor_buf wire;        /* TLS: encrypted bytes waiting */
    struct moor_buf writing_buf; /* bytes in the write in flight */
    struct srv_tls *tls;         /* NULL: cleartext */
    uint8_t rbuf[4096];          /* TLS records read back */
    uint64_t dropped; /* messages not sent: etcd_network_peer_sent_failures */
    /* etcd_network_peer_{sent,received}_bytes_total and
     * received_failures_total: frame bytes queued to this member, frame
     * bytes read from its connections, and its connections closed for a
     * frame that did not decode. */
    uint64_t sent_bytes, recv_bytes, recv_failures;
    struct srv_peer_info info;
    bool released; /* closing: the peer is freed once its handles close */
    struct srv_peer_snap_send *snap;
    uint64_t snap_backoff_ms; /* after failed transfers: 1 s .. 30 s */
    uint64_t snap_retry_ms;   /* loop time before which none starts */
};

/* An accepted connection: reads frames from one peer. A "snapshot" stream
 * hands its frames to recv; while recv has a chunk on a worker thread,
 * reading pauses (paused) and frames wait in in. */
struct srv_inbound
{
    struct srv_node *n;
    uv_tcp_t tcp;
    struct moor_buf in;   /* plaintext not yet framed */
    struct srv_tls *tls;  /* NULL: cleartext */
    struct moor_buf wire; /* bytes waiting to be written */
    struct moor_buf writing_buf;
    uv_write_t write_req;
    bool writing;
    uint8_t rbuf[16384]; /* TLS: socket bytes read */
    uint64_t from;       /* 0 until the handshake */
    bool snapshot_stream;
    bool paused;
    bool closing;
    struct srv_peer_snap_recv *recv;
    struct srv_inbound *prev, *next; /* the node's inbound list */
};

/* Closes c (logging why when not NULL); its memory is freed by the close
 * callback. Safe to call twice. */
void srv_peer_inbound_close(struct srv_inbound *c, const char *why);
/* Sends len bytes (borrowed, copied) back on c: the snapshot receiver's
 * answer, and TLS handshakes. Errors close c. */
void srv_peer_inbound_send(struct srv_inbound *c, const uint8_t *data,
                           size_t len);
/* Resumes reading on c paused by its snapshot receiver: frames already
 * buffered are handled first. */
void srv_peer_inbound_resume(struct srv_inbound *c);

/* Leader side: starts sending the snapshot raft asked for in m (a
 * RAFT_MSG_SNAPSHOT) to p. A transfer to p already running makes this a
 * no-op. Failure is reported to raft (raft_node_report_snapshot false)
 * from a later callback, never inside this call. */
void srv_peer_snap_send(struct srv_peer *p, const struct raft_message *m);
/* Stops p's transfer, if any (reported to raft as failed unless the
 * member is stopping). */
void srv_peer_snap_send_stop(struct srv_peer *p);

/* Follower side: one frame after the handshake on a "snapshot" stream.
 * Returns false when c must be closed (the reason is logged here). */
bool srv_peer_snap_recv_frame(struct srv_inbound *c, const Moorpb__Frame *f);
/* c is closing: its receiver lets go of it (a worker step in flight
 * finishes, then removes the temporary file). */
void srv_peer_snap_recv_detach(struct srv_inbound *c);

#endif /* MOOR_SERVER_PEER_INT_H */
