/*
 * forward.c: calls a follower passes to the leader over the leader's
 * client port.
 *
 * Writes need no forwarding (raft forwards a follower's proposals), and
 * linearizable reads ask the leader for a read index. What only the
 * leader can answer is forwarded as the gRPC call itself, as etcd's
 * followers forward them: membership changes (raft takes conf changes at
 * the leader), LeaseKeepAlive (the leader alone keeps lease deadlines, on
 * its own clock) and LeaseTimeToLive (the remaining TTL is the leader's).
 * The answer, or the leader's gRPC status and message, goes back to the
 * client unchanged, so clients see etcd's errors either way.
 *
 * One rpc client to the current leader's advertised client URLs (what it
 * published in the member table, or said in its peer handshake), opened
 * on first use and replaced when another member leads; TLS with this
 * member's --cert-file/--key-file and --trusted-ca-file when the URL is
 * https. A forwarded call is a waiter of kind SRV_REQ_FORWARD, so a client
 * that goes away, a deadline and shutdown end it the usual way.
 */
#include "server_int.h"

/* A forwarded stream: the client's call and the stream to the leader. */
struct srv_fwd
{
    struct srv_node *n;
    uint64_t waiter_id;
    struct rpc_stream *up; /* NULL once it ended */
};

static void client_closed_cb(void *arg)
{
    (void)arg;
}

void srv_forward_close(struct srv_node *n)
{
    if (n->fwd_client != NULL) {
        rpc_client_close(n->fwd_client, client_closed_cb, NULL);
        n->fwd_client = NULL;
        n->fwd_leader = 0;
    }
}

/* The client to the current leader, opened when missing or when another
 * member leads. MOOR_ENOLEADER when there is none or its URL is unknown. */
static int leader_client(struct srv_node *n, struct rpc_client **out)
{
    uint64_t leader = raft_node_leader(n->raft);
    if (leader == 0 || leader == n->member_id) {
        return MOOR_ENOLEADER;
    }
    if (n->fwd_client != NULL && n->fwd_leader == leader) {
        *out = n->fwd_client;
        return MOOR_OK;
    }
    srv_forward_close(n);
    const char *urls[SRV_URLS_MAX];
    unsigned k = 0;
    struct srv_member *m = srv_members_find(&n->members, leader);
    if (m != NULL && m->client_urls.n > 0) {
        for (; k < m->client_urls.n; k++) {
            urls[k] = m->client_urls.urls[k].text;
        }
    } else {
        k = srv_peer_client_urls(n, leader, urls, SRV_URLS_MAX);
    }
    if (k == 0) {
        return MOOR_ENOLEADER;
    }
    const struct srv_config *cfg = n->cfg;
    struct rpc_tls_config tls;
    memset(&tls, 0, sizeof(tls));
    tls.cert_file = cfg->cert_file[0] != '\0' ? cfg->cert_file : NULL;
    tls.key_file = cfg->key_file[0] != '\0' ? cfg->key_file : NULL;
    tls.ca_file = cfg->trusted_ca_file[0] != '\0' ? cfg->trusted_ca_file : NULL;
    struct rpc_client_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.endpoints = urls;
    cc.endpoints_len = k;
    cc.tls = &tls;
    cc.dial_timeout_ms = cfg->election_ms;
    char errmsg[MOOR_ERRMSG_SIZE];
    int rv = rpc_client_open(n->loop, &cc, &n->fwd_client, errmsg);
    if (rv != MOOR_OK) {
        MOOR_LOG_WARN("forward", "cannot open a client to the leader",
                      "leader=%llx reason=\"%s\"", (unsigned long long)leader,
                      errmsg);
        n->fwd_client = NULL;
        return MOOR_ENOLEADER;
    }
    n->fwd_leader = leader;
    *out = n->fwd_client;
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * Unary calls
 * ---------------------------------------------------------------------- */

static void unary_done(int status, const char *message, struct moor_slice resp,
                       void *arg)
{
    struct srv_fwd *f = arg;
    struct srv_node *n = f->n;
    struct srv_waiter *w = srv_waiter_find(n, f->waiter_id);
    moor_free(f);
    if (w == NULL || w->kind != SRV_REQ_FORWARD) {
        return; /* it expired, or the member is stopping */
    }
    struct rpc_call *call = w->call;
    srv_waiter_free(n, w);
    if (call == NULL) {
        return; /* the client went away */
    }
    if (status == RPC_OK && rpc_call_send(call, resp) != MOOR_OK) {
        status = RPC_INTERNAL;
        message = "etcdserver: forwarding the answer failed";
    }
    rpc_call_finish(call, status, message);
}

void srv_forward_unary(struct srv_node *n, struct rpc_call *call,
                       struct moor_slice msg)
{
    struct rpc_client *c = NULL;
    int rv = leader_client(n, &c);
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
        return;
    }
    struct srv_waiter *w = srv_waiter_new(n, SRV_REQ_FORWARD, call);
    struct srv_fwd *f = moor_calloc(1, sizeof(*f));
    if (w == NULL || f == NULL) {
        moor_free(f);
        if (w != NULL) {
            srv_waiter_free(n, w);
        }
        srv_call_fail(call, MOOR_EBUSY);
        return;
    }
    f->n = n;
    f->waiter_id = w->id;
    uint64_t timeout = w->deadline_ms - uv_now(n->loop);
    rv = rpc_client_unary(c, rpc_call_path(call), NULL, 0, msg, timeout,
                          unary_done, f);
    if (rv != MOOR_OK) {
        moor_free(f);
        srv_waiter_free(n, w);
        srv_call_fail(call, rv == MOOR_ESHUTDOWN ? MOOR_ENOLEADER : rv);
    }
}

/* ------------------------------------------------------------------------
 * Streams (LeaseKeepAlive)
 * ---------------------------------------------------------------------- */

static struct rpc_call *stream_call(struct srv_fwd *f)
{
    struct srv_waiter *w = srv_waiter_find(f->n, f->waiter_id);
    return w != NULL ? w->call : NULL;
}

static void up_message(struct rpc_stream *s, struct moor_slice msg, void *arg)
{
    struct srv_fwd *f = arg;
    struct rpc_call *call = stream_call(f);
    /* One small answer per request (keepalives): a client that does not
     * read loses its stream, as on the leader. */
    if (call == NULL || rpc_call_send(call, msg) != MOOR_OK) {
        rpc_stream_cancel(s);
    }
}

static void up_done(struct rpc_stream *s, int status, const char *message,
                    void *arg)
{
    (void)s;
    struct srv_fwd *f = arg;
    struct srv_node *n = f->n;
    f->up = NULL;
    struct srv_waiter *w = srv_waiter_find(n, f->waiter_id);
    if (w != NULL) {
        struct rpc_call *call = w->call;
        srv_waiter_free(n, w);
        if (call != NULL) {
            rpc_call_finish(call, status, message);
        }
    }
    moor_free(f);
}

bool srv_forward_stream_message(struct srv_node *n, struct rpc_call *call,
                                struct moor_slice msg)
{
    struct srv_waiter *w = rpc_call_user(call);
    if (w != NULL && w->kind == SRV_REQ_FORWARD && w->fwd != NULL) {
        if (w->fwd->up != NULL &&
            rpc_stream_send(w->fwd->up, msg) == MOOR_EAGAIN) {
            /* The leader does not keep up: this keepalive is dropped; the
             * client sends the next one within a third of the TTL. */
            MOOR_LOG_DEBUG("forward", "keepalive dropped (queue full)", NULL);
        }
        return true;
    }
    if (raft_node_role(n->raft) == RAFT_LEADER) {
        return false; /* served here */
    }
    struct rpc_client *c = NULL;
    int rv = leader_client(n, &c);
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
        return true;
    }
    w = srv_waiter_new(n, SRV_REQ_FORWARD, call);
    struct srv_fwd *f = moor_calloc(1, sizeof(*f));
    if (w == NULL || f == NULL) {
        moor_free(f);
        if (w != NULL) {
            srv_waiter_free(n, w);
        }
        srv_call_fail(call, MOOR_EBUSY);
        return true;
    }
    w->deadline_ms = UINT64_MAX; /* lives as long as the client's stream */
    w->fwd = f;
    f->n = n;
    f->waiter_id = w->id;
    static const struct rpc_stream_ops ops = {
        .message_cb = up_message,
        .done_cb = up_done,
    };
    rv = rpc_stream_start(c, rpc_call_path(call), NULL, 0, 0, &ops, f, &f->up);
    if (rv != MOOR_OK) {
        moor_free(f);
        srv_waiter_free(n, w);
        srv_call_fail(call, MOOR_ENOLEADER);
        return true;
    }
    rpc_stream_send(f->up, msg);
    return true;
}

bool srv_forward_stream_half_close(struct rpc_call *call)
{
    struct srv_waiter *w = rpc_call_user(call);
    if (w == NULL || w->kind != SRV_REQ_FORWARD || w->fwd == NULL) {
        return false;
    }
    if (w->fwd->up != NULL) {
        rpc_stream_close_send(w->fwd->up);
    }
    return true;
}

void srv_forward_call_gone(struct srv_waiter *w)
{
    if (w->fwd != NULL && w->fwd->up != NULL) {
        rpc_stream_cancel(w->fwd->up);
    }
}
