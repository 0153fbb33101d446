/*
 * rpc/rpc.h: gRPC over HTTP/2 over TCP or TLS, on libuv: server and client.
 *
 * What it is: the transport under moor's client API. The server accepts
 * connections (cleartext HTTP/2 with prior knowledge, or TLS 1.2/1.3 with
 * ALPN "h2"), parses gRPC requests and hands each call to the handler
 * registered for its method path; the client dials one of several
 * endpoints and runs unary and streaming calls with deadlines. Listeners
 * also answer plain HTTP/1.1 GET requests (/health, /metrics, /version)
 * through an optional callback, told apart from HTTP/2 by the first bytes
 * (after TLS, where ALPN may also say "http/1.1").
 *
 * What it is not: rpc/ knows method paths, metadata and message bytes,
 * nothing of etcd or protobuf. It does no compression (a compressed
 * message is refused with UNIMPLEMENTED, and grpc-accept-encoding says
 * "identity"), no name resolution beyond getaddrinfo, no load balancing.
 *
 * Threads: an object runs on the libuv loop given at open, on that loop's
 * thread; no function may be called on it from another thread. Several
 * loops on several threads may each run their own servers and clients.
 *
 * Callbacks: no callback fires inside the call that registered it; output
 * is batched and written once per loop iteration (a uv_prepare hook, so
 * every message a handler queues during an iteration leaves in one write).
 *
 * Ownership: servers, clients, calls and streams are allocated by rpc/
 * (their internals hold nghttp2 and OpenSSL state no caller should see).
 * Message bytes passed in are borrowed (copied before return); message
 * bytes passed to callbacks are borrowed for the duration of the callback.
 *
 * Bounds (all configurable, see rpc_server_config and rpc_client_config):
 * concurrent streams per connection (advertised in SETTINGS), received
 * message size (RESOURCE_EXHAUSTED), header list size, stream resets per
 * connection per time window (the "rapid reset" class, answered with
 * GOAWAY ENHANCE_YOUR_CALM), queued outbound bytes per stream (send
 * returns MOOR_EAGAIN, then a writable callback), queued outbound bytes
 * per connection (the same), bytes gathered for the socket per connection
 * (no more frames are produced until it drains), connections per server,
 * received bytes held per connection and per server (partial messages,
 * metadata, open calls: RESOURCE_EXHAUSTED or REFUSED_STREAM; the
 * connection's HTTP/2 window equals its bound), and time a connection may
 * stay silent before its first request or idle between HTTP/1.1 requests.
 *
 * docs/rpc.md describes threading, lifetimes and flow control at length.
 */
#ifndef MOOR_RPC_H
#define MOOR_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/common.h"

/* Routes the heap use of libuv and OpenSSL through moor_malloc and
 * moor_free, so moor_alloc_bytes() (and /metrics, and the fault injection
 * of tests) sees their allocations too, and initialises OpenSSL. Call it
 * once per process, first thing in main: before any other libuv or
 * OpenSSL function and before any thread starts. Later calls do nothing
 * and return the first call's result. Without it everything works; only
 * the accounting misses those libraries (nghttp2's allocations go through
 * moor_malloc regardless).
 * Errors: MOOR_EBUSY when OpenSSL had already allocated (it keeps using
 * malloc, consistently), MOOR_ETLS when OpenSSL could not initialise,
 * MOOR_EINVAL when libuv refused the functions. */
int rpc_global_init(void);

/* Bytes OpenSSL currently holds through moor_malloc, with 16 bytes of
 * bookkeeping per block (all counted in moor_alloc_bytes() too; 0 without
 * rpc_global_init). OpenSSL keeps
 * process-wide caches (algorithms fetched at the first handshake, each
 * thread's error queue) for the life of the process, so tests that check
 * rpc/ frees everything it allocated compare moor_alloc_bytes() minus
 * this. Any thread. */
size_t rpc_openssl_bytes(void);

/* ------------------------------------------------------------------------
 * gRPC status codes (grpc/doc/statuscodes.md). Callbacks report these, not
 * moor errors: they are what crossed the wire (or what a local failure is
 * reported as, e.g. UNAVAILABLE when the connection could not be made).
 * ---------------------------------------------------------------------- */
enum rpc_status {
    RPC_OK = 0,
    RPC_CANCELLED = 1,
    RPC_UNKNOWN = 2,
    RPC_INVALID_ARGUMENT = 3,
    RPC_DEADLINE_EXCEEDED = 4,
    RPC_NOT_FOUND = 5,
    RPC_ALREADY_EXISTS = 6,
    RPC_PERMISSION_DENIED = 7,
    RPC_RESOURCE_EXHAUSTED = 8,
    RPC_FAILED_PRECONDITION = 9,
    RPC_ABORTED = 10,
    RPC_OUT_OF_RANGE = 11,
    RPC_UNIMPLEMENTED = 12,
    RPC_INTERNAL = 13,
    RPC_UNAVAILABLE = 14,
    RPC_DATA_LOSS = 15,
    RPC_UNAUTHENTICATED = 16,
};
#define RPC_STATUS_COUNT 17

/* The upper-case name of a status ("DEADLINE_EXCEEDED"); "UNKNOWN" for
 * codes outside the table. Returns borrowed, valid forever. */
const char *rpc_status_name(int status);

/* One metadata entry (an HTTP/2 header). Keys are lower-case ASCII; keys
 * starting with ':' or "grpc-" and "content-type", "te", "user-agent" are
 * reserved and refused by the client. Values are text (no "-bin" decoding
 * is done: a "-bin" value is passed as it came, base64). */
struct rpc_metadata
{
    const char *key;
    const char *value;
};

/* TLS settings. Files are PEM. Which fields a side uses:
 *   server: cert_file + key_file (required); ca_file + client_cert_auth to
 *           require and verify client certificates.
 *   client: ca_file to verify the server (NULL: the system's default
 *           paths), cert_file + key_file to present a client certificate,
 *           server_name to verify instead of the endpoint's host,
 *           insecure_skip_verify to accept any server certificate.
 * The server name is checked as an IP address SAN when it parses as one,
 * as a DNS name otherwise. TLS 1.2 is the minimum; ALPN offers "h2". */
struct rpc_tls_config
{
    const char *cert_file;
    const char *key_file;
    const char *ca_file;
    bool client_cert_auth;
    const char *server_name;
    bool insecure_skip_verify;
};

/* Parses "host:port", "http://host:port" or "https://host:port" (a
 * trailing '/' is allowed; "[v6addr]:port" for IPv6). Writes the host into
 * host (host_size bytes, NUL-terminated, without brackets), the port, and
 * whether the scheme asks for TLS (false without a scheme). MOOR_EINVAL
 * for anything else, including a missing or out-of-range port. Borrows. */
int rpc_url_parse(const char *url, char *host, size_t host_size, uint16_t *port,
                  bool *tls);

/* ------------------------------------------------------------------------
 * Server
 * ---------------------------------------------------------------------- */
struct rpc_server;
struct rpc_call;

/* A method's handler. All callbacks run on the loop thread; call is valid
 * from start_cb until done_cb returns, and must not be used after.
 *
 * start_cb      a call arrived: path and metadata are readable. The
 *               handler may send, finish or keep the call for later.
 * message_cb    one complete request message; msg is borrowed for the
 *               callback. Fires in order, never after half_close_cb.
 * half_close_cb the client finished sending (for unary calls: right after
 *               the one message). May be NULL.
 * writable_cb   fires once after rpc_call_send() returned MOOR_EAGAIN (or
 *               rpc_call_writable() returned false), when
 *               the queue (or the connection's) drained below half its
 *               bound. May be NULL
 *               (then the handler must not rely on MOOR_EAGAIN clearing).
 * done_cb       the call ended: status is the status sent by
 *               rpc_call_finish(), or RPC_CANCELLED (client reset or the
 *               connection was lost), or RPC_DEADLINE_EXCEEDED (the
 *               client's grpc-timeout passed; the client is told so).
 *               Always fires exactly once per started call. */
struct rpc_method_ops
{
    void (*start_cb)(struct rpc_call *call, void *arg);
    void (*message_cb)(struct rpc_call *call, struct moor_slice msg, void *arg);
    void (*half_close_cb)(struct rpc_call *call, void *arg);
    void (*writable_cb)(struct rpc_call *call, void *arg);
    void (*done_cb)(struct rpc_call *call, int status, void *arg);
};

/* A plain HTTP/1.1 response, filled by an rpc_http_fn. body is owned by
 * rpc/ (initialised empty before the callback, freed after the write). */
struct rpc_http_response
{
    int status;               /* 200 unless changed */
    const char *content_type; /* borrowed, must live forever; "text/plain" */
    struct moor_buf body;
};

/* Answers one HTTP/1.1 GET or HEAD request for path (borrowed, the request
 * target as sent, query string included). Return MOOR_OK with resp filled;
 * any error answers 500. Runs on the loop thread, must not block. */
typedef int (*rpc_http_fn)(const char *path, struct rpc_http_response *resp,
                           void *arg);

struct rpc_server_config
{
    /* TLS for the listeners opened with tls = true; NULL if none. */
    const struct rpc_tls_config *tls;
    /* Largest request message accepted; larger: RESOURCE_EXHAUSTED. 0 means
     * 4 MiB; at most 1 GiB - 64 KiB. (etcd: --max-request-bytes + 512 KiB.) */
    size_t max_recv_msg_bytes;
    /* SETTINGS_MAX_CONCURRENT_STREAMS; 0 means 4096. (etcd advertises no
     * limit; its clients multiplex watches on few streams.) */
    uint32_t max_concurrent_streams;
    /* SETTINGS_MAX_HEADER_LIST_SIZE, enforced on receipt; 0 means 64 KiB. */
    uint32_t max_header_list_bytes;
    /* Bound on a call's queued outbound bytes before rpc_call_send() says
     * MOOR_EAGAIN; 0 means 1 MiB. */
    size_t send_buffer_bytes;
    /* Bound on the queued outbound bytes of all calls of one connection
     * (rpc_call_send says MOOR_EAGAIN beyond it; each call may overshoot
     * by one message); 0 means 16 MiB. */
    size_t conn_send_buffer_bytes;
    /* Bound on the receive buffers of one connection's calls: request
     * messages not yet complete (by buffer capacity), request metadata,
     * and a fixed cost per open call for its state (about 1 KB; a stream
     * that finds no room for it is refused with RST_STREAM
     * REFUSED_STREAM, which counts toward resets_max).
     * It is also the connection's HTTP/2 receive window, and bytes of
     * incomplete messages are given back to that window only once the
     * message completes or is dropped, so a client that honours flow
     * control cannot push more than this unprocessed; incomplete messages
     * are kept below half of it (nghttp2 reopens a window once half is
     * consumed). The call whose data or headers would go past either
     * bound ends with RESOURCE_EXHAUSTED and its buffers are freed; the
     * connection and its other calls go on. 0 means 16 MiB; raised to at
     * least 2 * max_recv_msg_bytes + 64 KiB (so one largest message always
     * fits), at most 2^31 - 1. */
    size_t conn_recv_buffer_bytes;
    /* The same bound over all connections together (no window), so the
     * open calls of all connections are bounded too; 0 means 256 MiB;
     * raised to at least conn_recv_buffer_bytes. */
    size_t recv_buffer_bytes;
    /* Connections open at once; more are closed at accept. 0 means
     * 10,000. */
    uint32_t max_conns;
    /* Stream resets received (or caused) per connection per window before
     * the connection is sent GOAWAY ENHANCE_YOUR_CALM and closed; 0 means
     * 1000 per 10,000 ms. */
    uint32_t resets_max;
    uint32_t resets_window_ms;
    /* The server PINGs every keepalive_ms and closes a connection whose
     * ack does not come within keepalive_timeout_ms. 0 means etcd's 2 h
     * and 20 s. */
    uint64_t keepalive_ms;
    uint64_t keepalive_timeout_ms;
    /* A connection that has not yet sent an HTTP/2 preface or a complete
     * HTTP/1.x request head (TLS handshake included), and an HTTP/1.1
     * keep-alive connection idle between requests (or slow to send the
     * next head), is closed after idle_timeout_ms; 0 means 120,000 ms.
     * HTTP/2 connections are watched by keepalive instead. */
    uint64_t idle_timeout_ms;
    /* Answers HTTP/1.1 requests on the same port (GET and HEAD; keep-alive
     * for HTTP/1.1 unless "Connection: close"); NULL answers 404. */
    rpc_http_fn http_fn;
    void *http_arg;
};

/* Returns owned (rpc_server_close): a server on loop with no listeners
 * yet. Borrows cfg (TLS files are read now). Errors: MOOR_EINVAL,
 * MOOR_ETLS (the certificate, key or CA could not be loaded; errmsg, when
 * not NULL, says which and why; MOOR_ERRMSG_SIZE bytes), MOOR_ENOMEM. */
int rpc_server_open(uv_loop_t *loop, const struct rpc_server_config *cfg,
                    struct rpc_server **out, char *errmsg);

/* Registers ops for the exact method path ("/etcdserverpb.KV/Range").
 * Borrows path (copied) and ops (copied); arg is passed to every callback.
 * Before rpc_server_listen only (MOOR_EBUSY after). MOOR_EINVAL for a path
 * not starting with '/', MOOR_EEXIST for a duplicate, MOOR_ETOOBIG beyond
 * 256 methods. */
int rpc_server_add_method(struct rpc_server *srv, const char *path,
                          const struct rpc_method_ops *ops, void *arg);

/* Listens on host:port (an IP address literal or "localhost"; port 0
 * picks one, reported in *port_out when not NULL). tls selects TLS (the
 * server must have a TLS config). Errors: MOOR_EINVAL, MOOR_EIO (bind or
 * listen failed, errmsg says why), MOOR_ETOOBIG beyond 8 listeners. */
int rpc_server_listen(struct rpc_server *srv, const char *host, uint16_t port,
                      bool tls, uint16_t *port_out, char *errmsg);

/* Connections currently open (tests and metrics). */
size_t rpc_server_conn_count(const struct rpc_server *srv);

/* Calls started and not yet done. */
size_t rpc_server_calls_active(const struct rpc_server *srv);

/* Counters of one method since open, for /metrics (etcd exposes them as
 * go-grpc-prometheus's grpc_server_started_total, _handled_total by code,
 * _msg_received_total and _msg_sent_total). */
struct rpc_method_stats
{
    uint64_t started;                   /* calls given to the handler */
    uint64_t handled[RPC_STATUS_COUNT]; /* done, by final status */
    uint64_t msgs_received;             /* request messages delivered */
    uint64_t msgs_sent;                 /* response messages queued */
};

/* The stats of method index (0, 1, ... in registration order) into *out
 * and its path into *path (returns borrowed, valid until close); false
 * past the last method. Calls to unknown methods are not counted. */
bool rpc_server_method_stats(const struct rpc_server *srv, size_t index,
                             const char **path, struct rpc_method_stats *out);

/* Graceful stop: closes the listeners, sends GOAWAY on every connection
 * (calls in flight go on, new ones are refused), closes each connection
 * once its calls are done, and after grace_ms closes whatever is left
 * (its calls end with RPC_CANCELLED). Then frees the server and calls
 * closed_cb(arg) (may be NULL) from the loop. srv is invalid after this
 * call returns for anything but the callbacks already in flight. */
void rpc_server_close(struct rpc_server *srv, uint64_t grace_ms,
                      void (*closed_cb)(void *arg), void *arg);

/* The method path, NUL-terminated. Returns borrowed, valid until done_cb
 * returns. */
const char *rpc_call_path(const struct rpc_call *call);

/* The value of request metadata key (lower-case), or NULL. With several
 * entries of one key, the first. Returns borrowed, valid until done_cb
 * returns. */
const char *rpc_call_metadata(const struct rpc_call *call, const char *key);

/* Every metadata entry in arrival order: index 0..n-1; returns false past
 * the end. key and value are borrowed, valid until done_cb returns. */
bool rpc_call_metadata_at(const struct rpc_call *call, size_t index,
                          const char **key, const char **value);

/* The peer's address as "ip:port". Returns borrowed, valid until done_cb
 * returns. */
const char *rpc_call_peer(const struct rpc_call *call);

/* A handler's own pointer for the call (NULL until set). */
void rpc_call_set_user(struct rpc_call *call, void *user);
void *rpc_call_user(const struct rpc_call *call);

/* Queues one response message (borrows msg: copied). Response headers go
 * with the first message. Errors: MOOR_EAGAIN when the call's queue holds
 * send_buffer_bytes or more, or the calls of its connection together hold
 * conn_send_buffer_bytes or more (nothing queued; writable_cb fires when
 * there is room again), MOOR_ECANCELED after finish or when the call is ending,
 * MOOR_ETOOBIG for a message over 4 GiB, MOOR_ENOMEM. */
int rpc_call_send(struct rpc_call *call, struct moor_slice msg);

/* True when rpc_call_send would not return MOOR_EAGAIN. A false answer
 * arms writable_cb as a refused send does, so a handler may check first
 * and wait for the callback without sending. */
bool rpc_call_writable(struct rpc_call *call);

/* Ends the call with status and message (borrowed; percent-encoded on the
 * wire; NULL or "" sends none) after the queued messages. done_cb fires
 * once the trailers are written (or the stream is reset first).
 * MOOR_ECANCELED when already finished or ending; MOOR_ENOMEM when the
 * trailers could not be queued (the stream is reset instead, the client
 * sees INTERNAL; done_cb still fires). */
int rpc_call_finish(struct rpc_call *call, int status, const char *message);

/* Resets the stream (RST_STREAM CANCEL): the client sees CANCELLED.
 * done_cb fires later with RPC_CANCELLED. A no-op once ending. */
void rpc_call_cancel(struct rpc_call *call);

/* ------------------------------------------------------------------------
 * Client
 * ---------------------------------------------------------------------- */
struct rpc_client;
struct rpc_stream;

struct rpc_client_config
{
    /* Endpoints, "host:port", "http://host:port" or "https://host:port";
     * borrowed (copied). At least one, at most 16. A scheme-less endpoint
     * uses TLS iff tls is not NULL. */
    const char *const *endpoints;
    size_t endpoints_len;
    /* TLS settings for https endpoints (NULL: system CAs, no client cert). */
    const struct rpc_tls_config *tls;
    /* How long one attempt to connect (TCP + TLS handshake) may take
     * before the next endpoint is tried; 0 means 2,000 ms (etcdctl's). */
    uint64_t dial_timeout_ms;
    /* Largest response message; 0 means 2 GiB - 1 (etcd's clients). */
    size_t max_recv_msg_bytes;
    /* Bound on a stream's queued outbound bytes; 0 means 1 MiB. */
    size_t send_buffer_bytes;
    /* Our SETTINGS_INITIAL_WINDOW_SIZE (per-stream receive window); 0 means
     * 1 MiB. A paused stream holds at most this many bytes. */
    uint32_t initial_window_bytes;
    /* Calls waiting for a connection; beyond: UNAVAILABLE. 0 means 4096. */
    uint32_t pending_calls_max;
    /* PING every keepalive_ms, give the connection up (its calls end
     * UNAVAILABLE) when no ack comes within keepalive_timeout_ms (0: 20 s).
     * 0 disables (etcdctl's --keepalive-time default is 2 s, 6 s). */
    uint64_t keepalive_ms;
    uint64_t keepalive_timeout_ms;
};

/* Callbacks of one client stream. s is valid until done_cb returns.
 * message_cb    one response message, borrowed for the callback.
 * writable_cb   after rpc_stream_send returned MOOR_EAGAIN, once the queue
 *               drained below half its bound. May be NULL.
 * done_cb       the call ended with status and message (borrowed, decoded,
 *               "" when none): the server's trailers, or DEADLINE_EXCEEDED,
 *               CANCELLED (rpc_stream_cancel or the server reset),
 *               UNAVAILABLE (no connection, or it was lost),
 *               RESOURCE_EXHAUSTED (a response over max_recv_msg_bytes),
 *               INTERNAL (a protocol violation). Exactly once. */
struct rpc_stream_ops
{
    void (*message_cb)(struct rpc_stream *s, struct moor_slice msg, void *arg);
    void (*writable_cb)(struct rpc_stream *s, void *arg);
    void (*done_cb)(struct rpc_stream *s, int status, const char *message,
                    void *arg);
};

/* Returns owned (rpc_client_close): a client on loop. Connects lazily, on
 * the first call, to the first endpoint; after a failure, the next call
 * dials again, starting from the next endpoint. Borrows cfg (copied; TLS
 * files read now). Errors: MOOR_EINVAL (no or bad endpoint), MOOR_ETLS
 * (errmsg says why), MOOR_ENOMEM. */
int rpc_client_open(uv_loop_t *loop, const struct rpc_client_config *cfg,
                    struct rpc_client **out, char *errmsg);

/* Ends every call (done_cb with RPC_CANCELLED, fired from the loop, not
 * from this call), closes the connection, frees the client and then calls
 * closed_cb(arg) (may be NULL). */
void rpc_client_close(struct rpc_client *c, void (*closed_cb)(void *arg),
                      void *arg);

/* Starts a call of path (borrowed, copied) with metadata md[0..md_len)
 * (borrowed, copied) and a deadline timeout_ms from now (0: none; sent as
 * grpc-timeout). Send with rpc_stream_send, end the request side with
 * rpc_stream_close_send. ops is borrowed (copied); arg goes to every
 * callback. Returns borrowed in *out, valid until done_cb returns.
 * Errors (no callback fires then): MOOR_EINVAL (bad path or reserved
 * metadata key), MOOR_ESHUTDOWN (closing), MOOR_ENOMEM. */
int rpc_stream_start(struct rpc_client *c, const char *path,
                     const struct rpc_metadata *md, size_t md_len,
                     uint64_t timeout_ms, const struct rpc_stream_ops *ops,
                     void *arg, struct rpc_stream **out);

/* Queues one request message (borrows msg: copied). Errors: MOOR_EAGAIN
 * (queue at its bound; writable_cb follows), MOOR_ECANCELED (after
 * close_send or when ending), MOOR_ETOOBIG, MOOR_ENOMEM. */
int rpc_stream_send(struct rpc_stream *s, struct moor_slice msg);

/* True when rpc_stream_send would not return MOOR_EAGAIN. */
bool rpc_stream_writable(const struct rpc_stream *s);

/* Ends the request side (END_STREAM after the queued messages). */
void rpc_stream_close_send(struct rpc_stream *s);

/* Cancels the call: RST_STREAM CANCEL to the server; done_cb fires later
 * (from the loop) with RPC_CANCELLED. A no-op once ending. */
void rpc_stream_cancel(struct rpc_stream *s);

/* Pauses (true) or resumes delivery of response messages. While paused
 * the stream's HTTP/2 receive window is not reopened, so the server stops
 * sending once it is full: at most initial_window_bytes are held. Messages
 * already decoded from the DATA frame being delivered still arrive;
 * resumed delivery starts from the loop, not inside this call. */
void rpc_stream_pause(struct rpc_stream *s, bool paused);

/* A unary call: sends req (borrowed, copied), then calls done_cb with the
 * status, the message and the one response (borrowed for the callback;
 * empty unless status is RPC_OK). Errors as rpc_stream_start (no callback
 * then). */
typedef void (*rpc_unary_done_fn)(int status, const char *message,
                                  struct moor_slice resp, void *arg);
int rpc_client_unary(struct rpc_client *c, const char *path,
                     const struct rpc_metadata *md, size_t md_len,
                     struct moor_slice req, uint64_t timeout_ms,
                     rpc_unary_done_fn done_cb, void *arg);

/* The blocking form for command-line tools: runs the client's loop
 * (uv_run UV_RUN_ONCE) until the call ends, then uv_stop()s it so the last
 * turn does not block. Must not be called from a callback of that loop. Returns
 * the gRPC status (>= 0) and appends the response to resp (caller's buffer) and
 * the message to errmsg (MOOR_ERRMSG_SIZE bytes, may be NULL); a negative moor
 * error when the call could not start or resp could not grow (MOOR_ENOMEM). */
int rpc_client_unary_sync(struct rpc_client *c, const char *path,
                          const struct rpc_metadata *md, size_t md_len,
                          struct moor_slice req, uint64_t timeout_ms,
                          struct moor_buf *resp, char *errmsg);

/* Connections the client currently holds (tests): usually 0 or 1; more
 * while old ones drain after GOAWAY or finish closing. */
size_t rpc_client_conn_count(const struct rpc_client *c);

#endif /* MOOR_RPC_H */
