/*
 * rpc/rpc_int.h: rpc/'s internal pieces, shared by its files (and by the
 * fuzz target, which feeds a server connection without a socket).
 *
 * Layers, bottom up:
 *   transport.c  TCP or TLS behind struct rpc__transport_ops: raw socket
 *                bytes in, plaintext out to the owner; plaintext in,
 *                socket bytes appended to conn->out. The only file that
 *                includes OpenSSL.
 *   conn.c       struct rpc__conn: one socket, its read buffer, the output
 *                buffer written once per loop iteration (struct rpc__pump's
 *                uv_prepare), one timer for deadlines, keepalive and close
 *                guards, the close sequence. Knows nothing of gRPC.
 *   wire.c       pure functions: gRPC message framing, grpc-timeout,
 *                grpc-message percent-encoding, URLs, HTTP/1.1 requests.
 *   server.c     nghttp2 server sessions, calls, listeners, sniffing.
 *   http1.c      the HTTP/1.1 GET responder of a server connection.
 *   client.c     nghttp2 client sessions, dialing, streams.
 *   unary.c      unary calls on top of streams, and the blocking form.
 */
#ifndef MOOR_RPC_INT_H
#define MOOR_RPC_INT_H

#include <nghttp2/nghttp2.h>

#include "rpc/rpc.h"

/* Output bytes a connection gathers before it stops pulling frames from
 * nghttp2 until the socket has taken them. */
#define RPC__OUT_HWM (256u * 1024u)
/* Buffers larger than this are freed, not kept, once empty (a burst must
 * not cost an idle connection or stream memory forever). */
#define RPC__KEEP_BYTES (64u * 1024u)
/* One socket read. */
#define RPC__READ_BYTES (64u * 1024u)
/* A softly closing connection (GOAWAY written, draining) is closed hard
 * after this long regardless. */
#define RPC__CLOSE_GUARD_MS 2000u
/* The gRPC length prefix: 1 byte flags, 4 bytes big-endian length. */
#define RPC__PREFIX 5u

/* ------------------------------------------------------------------------
 * Intrusive doubly linked lists (circular, with a head sentinel).
 * ---------------------------------------------------------------------- */
struct rpc__list
{
    struct rpc__list *prev;
    struct rpc__list *next;
};

static inline void rpc__list_init(struct rpc__list *l)
{
    l->prev = l;
    l->next = l;
}
static inline bool rpc__list_empty(const struct rpc__list *l)
{
    return l->next == l;
}
static inline void rpc__list_push(struct rpc__list *head, struct rpc__list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}
static inline void rpc__list_remove(struct rpc__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n;
    n->next = n;
}
/* True when n is linked into some list (nodes are self-linked when not). */
static inline bool rpc__list_linked(const struct rpc__list *n)
{
    return n->next != n;
}

/* ------------------------------------------------------------------------
 * Deadlines: a binary min-heap of pointers to embedded entries.
 * ---------------------------------------------------------------------- */
#define RPC__NOT_IN_HEAP UINT32_MAX

struct rpc__deadline
{
    uint64_t at_ms; /* loop time (uv_now) */
    uint32_t idx;   /* position in the heap, RPC__NOT_IN_HEAP when out */
};

struct rpc__heap
{
    struct rpc__deadline **v;
    uint32_t len;
    uint32_t cap;
};

void rpc__heap_init(struct rpc__heap *h);
void rpc__heap_close(struct rpc__heap *h);
/* MOOR_ENOMEM when the array cannot grow. d must not be in a heap. */
int rpc__heap_push(struct rpc__heap *h, struct rpc__deadline *d);
/* Removes d when it is in h (a no-op otherwise). */
void rpc__heap_remove(struct rpc__heap *h, struct rpc__deadline *d);
/* The earliest entry, or NULL. Returns borrowed. */
struct rpc__deadline *rpc__heap_top(const struct rpc__heap *h);

/* ------------------------------------------------------------------------
 * The pump: one per server or client. Connections with output to produce
 * are linked on its dirty list; its uv_prepare callback (right before the
 * loop blocks for I/O) flushes them all, so every frame queued during one
 * loop iteration leaves in one write per connection.
 * ---------------------------------------------------------------------- */
struct rpc__pump
{
    uv_loop_t *loop;
    uv_prepare_t prepare;
    uv_idle_t idle; /* runs only while a flush left work: no blocking poll */
    struct rpc__list dirty;
    int handles; /* open handles; closed_cb fires at 0 */
    void (*closed_cb)(struct rpc__pump *p);
    uint8_t rbuf[RPC__READ_BYTES]; /* socket reads: used and done at once */
};

int rpc__pump_init(struct rpc__pump *p, uv_loop_t *loop);
/* Closes the handles; closed_cb(p) fires when they are closed. */
void rpc__pump_close(struct rpc__pump *p,
                     void (*closed_cb)(struct rpc__pump *));

/* ------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------- */
struct rpc__conn;

/* What the owner (server or client) of a connection provides. */
struct rpc__conn_ops
{
    /* The transport is established (TCP connected or TLS handshake done);
     * alpn is the negotiated protocol ("" when none). Error: close. */
    int (*ready)(struct rpc__conn *c, const char *alpn);
    /* Plaintext arrived. An error closes the connection softly. */
    int (*input)(struct rpc__conn *c, const uint8_t *p, size_t n);
    /* Fill c->out (through rpc__conn_write) while it is below the high
     * water mark; fire writable callbacks. An error closes the connection.
     * Return MOOR_EAGAIN when more is ready but the mark was reached. */
    int (*produce)(struct rpc__conn *c);
    /* True when the protocol has nothing more to read or write (soft
     * close may finish). */
    bool (*finished)(struct rpc__conn *c);
    /* A deadline entry (in c->deadlines) expired; it is already removed. */
    void (*deadline)(struct rpc__conn *c, struct rpc__deadline *d);
    /* c->alarm_at passed (the client's dial timeout). */
    void (*alarm)(struct rpc__conn *c);
    /* The connection is closing now (err says why): end every call. */
    void (*closing)(struct rpc__conn *c, int err);
    /* Every handle is closed: free the owner's struct. */
    void (*free)(struct rpc__conn *c);
};

struct rpc__transport_ops
{
    const char *name;
    /* Begins (a TLS client writes its ClientHello); TCP calls ready. */
    int (*start)(struct rpc__conn *c);
    /* Raw socket bytes in; plaintext goes to c->ops->input. */
    int (*input)(struct rpc__conn *c, const uint8_t *p, size_t n);
    /* Plaintext out; socket bytes are appended to c->out. */
    int (*output)(struct rpc__conn *c, const uint8_t *p, size_t n);
    /* Frees the transport's state. */
    void (*close)(struct rpc__conn *c);
};

extern const struct rpc__transport_ops rpc__tcp_ops;

/* TLS contexts (an SSL_CTX) built from a struct rpc_tls_config. */
struct rpc__tls_ctx;
int rpc__tls_ctx_new(const struct rpc_tls_config *cfg, bool server,
                     struct rpc__tls_ctx **out, char *errmsg);
void rpc__tls_ctx_free(struct rpc__tls_ctx *ctx);
/* Puts c on TLS: c->tp and c->tp_state. host (borrowed) is the name to
 * verify and send as SNI (client; NULL on a server). */
int rpc__tls_attach(struct rpc__conn *c, struct rpc__tls_ctx *ctx,
                    const char *host);

struct rpc__conn
{
    const struct rpc__conn_ops *ops;
    struct rpc__pump *pump;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles; /* open uv handles; ops->free fires at 0 */
    bool fake;   /* no socket: output is discarded (fuzzing) */
    bool reading;
    bool writing;
    bool closing; /* soft: flushing what is left, then closing */
    bool dead;    /* hard close started */
    const struct rpc__transport_ops *tp;
    void *tp_state;
    nghttp2_session *h2;
    struct moor_buf out;  /* being gathered */
    struct moor_buf wbuf; /* being written */
    uv_write_t wreq;
    struct rpc__list dirty_link;
    struct rpc__heap deadlines;
    /* When the timer is due (loop time); UINT64_MAX: stopped. A rearm
     * that finds it due no later than needed leaves it: firing early is
     * harmless (the callback checks every time and rearms), and restarting
     * a libuv timer on every flush is not free. */
    uint64_t timer_at;
    uint64_t alarm_at;       /* 0: none */
    uint64_t close_guard_at; /* 0: none */
    uint64_t keepalive_ms;   /* 0: no pings */
    uint64_t keepalive_timeout_ms;
    uint64_t ping_due_at;  /* next PING */
    uint64_t ping_sent_at; /* 0: none outstanding */
    char peer[64];
    char errmsg[MOOR_ERRMSG_SIZE];
};

/* Initialises c on pump (a TCP handle unless fake, and the timer). */
int rpc__conn_init(struct rpc__conn *c, struct rpc__pump *pump,
                   const struct rpc__conn_ops *ops, bool fake);
/* Records the peer address, sets TCP_NODELAY, starts reading. */
int rpc__conn_start(struct rpc__conn *c);
/* Plaintext to the peer (through the transport). On failure the bytes
 * are lost, so the connection is closed at once (c->dead): callers return
 * without touching it further. */
int rpc__conn_write(struct rpc__conn *c, const void *p, size_t n);
/* Socket bytes to the peer (transports call this). */
int rpc__conn_write_raw(struct rpc__conn *c, const void *p, size_t n);
/* Raw socket bytes in, as if read (the fuzz target's entry point). An
 * error closes the connection (softly, so a GOAWAY or alert can go out;
 * at once for MOOR_ENOMEM); returns it. */
int rpc__conn_feed(struct rpc__conn *c, const uint8_t *p, size_t n);
/* Schedules a flush in this loop iteration's prepare phase. */
void rpc__conn_mark_dirty(struct rpc__conn *c);
/* Recomputes the timer from deadlines, alarm, keepalive and guard. */
void rpc__conn_rearm(struct rpc__conn *c);
/* Stops reading, writes what is queued (nghttp2 too), then closes. */
void rpc__conn_close_soft(struct rpc__conn *c, int err);
/* Closes now: ops->closing, then the handles, then ops->free. */
void rpc__conn_close(struct rpc__conn *c, int err);
/* Keepalive: a PING ACK arrived. */
void rpc__conn_ping_acked(struct rpc__conn *c);
/* Runs nghttp2_session_mem_send into c->out up to the high water mark.
 * MOOR_EAGAIN when it stopped at the mark, MOOR_EPROTO on a session
 * error. */
int rpc__conn_h2_send(struct rpc__conn *c);
/* Feeds plaintext to nghttp2; MOOR_EPROTO on a fatal session error. */
int rpc__conn_h2_recv(struct rpc__conn *c, const uint8_t *p, size_t n);
uint64_t rpc__conn_now(const struct rpc__conn *c);

/* ------------------------------------------------------------------------
 * wire.c: pure helpers
 * ---------------------------------------------------------------------- */

/* A bound on bytes held, checked at every level up: a server connection's
 * receive budget has the server's as parent. */
struct rpc__budget
{
    size_t used;
    size_t max;
    struct rpc__budget *parent; /* NULL at the top */
};

/* Takes n bytes from b and its parents. When one of them would go over
 * its max nothing is taken and that budget is returned; NULL on success. */
struct rpc__budget *rpc__budget_take(struct rpc__budget *b, size_t n);
/* Gives back n bytes taken from b (and its parents). */
void rpc__budget_give(struct rpc__budget *b, size_t n);

/* Reassembles length-prefixed gRPC messages from DATA bytes. The body of
 * a message split over chunks is copied into a buffer grown as bytes
 * arrive (never reserved at the announced length, never beyond it) and
 * freed once the message is delivered; its capacity is charged to budget
 * when there is one. */
struct rpc__deframer
{
    uint8_t hdr[RPC__PREFIX];
    uint32_t hdr_len;
    uint32_t need; /* body bytes of the current message */
    struct moor_buf body;
    struct rpc__budget *budget; /* NULL: unbounded (the client's) */
};

typedef int (*rpc__msg_fn)(struct moor_slice msg, void *arg);

/* budget (borrowed, may be NULL) must outlive the deframer. */
void rpc__deframer_init(struct rpc__deframer *d, struct rpc__budget *budget);
/* Frees the partial message (giving its bytes back to the budget); the
 * deframer is idle and may be fed again. */
void rpc__deframer_close(struct rpc__deframer *d);
/* True when no partial message is held. */
bool rpc__deframer_idle(const struct rpc__deframer *d);
/* Stream bytes of the partial message held (prefix and body so far). */
size_t rpc__deframer_held(const struct rpc__deframer *d);
/* Feeds n bytes; calls msg_fn for each complete message (borrowed for the
 * call; a nonzero return stops and is returned). On a bad message returns
 * RPC__EFRAME with *status and errmsg set (RESOURCE_EXHAUSTED for size or
 * when the budget cannot cover the buffer, UNIMPLEMENTED for compression,
 * INTERNAL for a bad flag byte); the deframer must not be fed again.
 * MOOR_ENOMEM on allocation failure. */
#define RPC__EFRAME 1
int rpc__deframer_feed(struct rpc__deframer *d, const uint8_t *p, size_t n,
                       size_t max_bytes, rpc__msg_fn msg_fn, void *arg,
                       int *status, char *errmsg);

/* Writes the 5-byte prefix of an uncompressed message of len bytes. */
void rpc__prefix_put(uint8_t *p, uint32_t len);

/* Parses a grpc-timeout value ("100m", "5S"); MOOR_EINVAL when bad. */
int rpc__timeout_parse(const char *s, size_t len, uint64_t *ms);
/* Formats ms as a grpc-timeout value (at most 8 digits, so coarser units
 * for long timeouts); out has 16 bytes. */
void rpc__timeout_format(uint64_t ms, char *out);

/* Percent-encodes s (grpc-message): bytes outside 0x20..0x7e and '%'
 * become %XX. Appends to out. */
int rpc__pct_encode(const char *s, struct moor_buf *out);
/* Decodes %XX sequences (invalid ones are kept as is) into out
 * (out_size bytes, NUL-terminated, truncated). */
void rpc__pct_decode(const uint8_t *p, size_t n, char *out, size_t out_size);

/* Parses an HTTP/1.x request head in p[0..n). Returns 0 when more bytes
 * are needed, the head's length when complete (method and target copied,
 * NUL-terminated, into the given buffers), or MOOR_EPROTO when malformed
 * or a field does not fit. */
int rpc__http1_parse(const uint8_t *p, size_t n, char *method,
                     size_t method_size, char *target, size_t target_size);

/* For a head p[0..n) that rpc__http1_parse accepted: true when the
 * connection may serve another request after the answer: HTTP/1.1, no
 * "close" token in Connection, and no request body (a Content-Length other
 * than 0, or any Transfer-Encoding: bodies are not read). */
bool rpc__http1_keep_alive(const uint8_t *p, size_t n);

/* The HTTP/1 reason phrase of a status. Returns borrowed, forever. */
const char *rpc__http_reason(int status);

/* ------------------------------------------------------------------------
 * http1.c: the HTTP/1.1 responder of a server connection.
 * ---------------------------------------------------------------------- */
#define RPC__H1_HEAD_MAX 8192u

struct rpc__h1
{
    struct moor_buf head; /* request bytes received and not yet answered */
    bool done;            /* last answer queued: close once it is written */
    uint32_t answered;    /* requests answered on this connection */
};

void rpc__h1_init(struct rpc__h1 *h);
void rpc__h1_close(struct rpc__h1 *h);
/* Request bytes in. Each complete head (at most RPC__H1_HEAD_MAX bytes) is
 * answered in order through c (fn answers GET and HEAD; NULL: 404);
 * requests that follow on the connection are served the same way
 * (HTTP/1.1 keep-alive) until one asks to close, is HTTP/1.0, carries a
 * body, is malformed, or finds more than RPC__OUT_HWM bytes of earlier
 * answers not yet written (a pipelining client that does not read): that
 * answer says "Connection: close" and sets h->done. Errors are MOOR_ENOMEM
 * or rpc__conn_write's. */
int rpc__h1_input(struct rpc__h1 *h, struct rpc__conn *c, const uint8_t *p,
                  size_t n, rpc_http_fn fn, void *arg);

/* ------------------------------------------------------------------------
 * client.c, for unary.c
 * ---------------------------------------------------------------------- */
/* Ends s with status and message (borrowed) from the client's timer, not
 * from inside this call. A no-op once s is ending. */
void rpc__stream_fail(struct rpc_stream *s, int status, const char *message);
/* The loop a client runs on. */
uv_loop_t *rpc__client_loop(const struct rpc_client *c);

/* ------------------------------------------------------------------------
 * The fuzz targets' way in.
 * ---------------------------------------------------------------------- */
/* A server connection with no socket: feed it with rpc__conn_feed; its
 * output is discarded. Returns borrowed, valid until it closes (which the
 * server's close does). */
int rpc__server_fake_conn(struct rpc_server *srv, struct rpc__conn **out);
/* The same on the client side: a connection with no socket becomes the
 * client's current one (the client must have none); calls started after
 * it are put on it once the fed bytes include the server's SETTINGS. */
int rpc__client_fake_conn(struct rpc_client *cl, struct rpc__conn **out);

#endif /* MOOR_RPC_INT_H */
