/*
 * cmd_lease.c: lease grant, revoke, timetolive, list and keep-alive.
 *
 * keep-alive runs the LeaseKeepAlive stream: one request now, the next a
 * third of the returned TTL later (at least 500 ms), each answer printed,
 * until the lease is gone (TTL 0), the stream fails, or SIGINT/SIGTERM
 * (which ends it cleanly, exit 0). --once sends one request and prints
 * the one answer.
 */
#include <signal.h>
#include <stdlib.h>

#include "cli_int.h"

const struct mc_flag mc_lease_flags[] = {
    {"keys", 0, MC_FLAG_BOOL, offsetof(struct mc_lease_opts, keys),
     "Get keys attached to this lease"},
    {"once", 0, MC_FLAG_BOOL, offsetof(struct mc_lease_opts, once),
     "Resets the keep-alive time to its original value and exits "
     "immediately"},
};
const size_t mc_lease_flags_len = MOOR_ARRAY_LEN(mc_lease_flags);

#define PATH_LEASE "/etcdserverpb.Lease/"

static int lease_arg(struct mc_ctx *c, char **args, size_t n, const char *what,
                     int64_t *id)
{
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE, "lease %s command needs %s", what,
                       strcmp(what, "revoke") == 0 ? "1 argument"
                                                   : "lease ID as argument");
    }
    int rv = mc_parse_hex_i64(args[0], id);
    if (rv != MOOR_OK) {
        return mc_fail(
            c, MC_EXIT_USAGE,
            "bad lease ID arg (strconv.ParseInt: parsing \"%s\": "
            "%s), expecting ID in Hex",
            args[0],
            rv == MOOR_ETOOBIG ? "value out of range" : "invalid syntax");
    }
    return MC_EXIT_OK;
}

int mc_cmd_lease_grant(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "lease grant command needs TTL argument");
    }
    char *end;
    long long ttl = strtoll(args[0], &end, 10);
    if (*args[0] == 0 || *end != 0) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "bad TTL (strconv.ParseInt: parsing \"%s\": invalid "
                       "syntax)",
                       args[0]);
    }
    Etcdserverpb__LeaseGrantRequest req =
        ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    Etcdserverpb__LeaseGrantResponse *resp = NULL;
    req.ttl = ttl;
    char e[MOOR_ERRMSG_SIZE];
    struct rpc_client *cl;
    int rv = mc_client(c, &cl, e);
    if (rv == MOOR_OK) {
        rv = mc_unary(c, cl, c->token, PATH_LEASE "LeaseGrant", &req.base,
                      &etcdserverpb__lease_grant_response__descriptor,
                      (ProtobufCMessage **)&resp, NULL, e);
    }
    if (rv != MOOR_OK) {
        return mc_fail(c, MC_EXIT_ERROR, "failed to grant lease (%s)", e);
    }
    struct moor_buf out;
    moor_buf_init(&out);
    int code = mc_emit(c, mc_print_lease_grant(&out, &c->pr, resp), &out);
    moor_buf_close(&out);
    mc_pb_free(resp);
    return code;
}

int mc_cmd_lease_revoke(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    int64_t id;
    int code = lease_arg(c, args, n, "revoke", &id);
    if (code != MC_EXIT_OK) {
        return code;
    }
    Etcdserverpb__LeaseRevokeRequest req =
        ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    Etcdserverpb__LeaseRevokeResponse *resp = NULL;
    req.id = id;
    char e[MOOR_ERRMSG_SIZE];
    struct rpc_client *cl;
    int rv = mc_client(c, &cl, e);
    if (rv == MOOR_OK) {
        rv = mc_unary(c, cl, c->token, PATH_LEASE "LeaseRevoke", &req.base,
                      &etcdserverpb__lease_revoke_response__descriptor,
                      (ProtobufCMessage **)&resp, NULL, e);
    }
    if (rv != MOOR_OK) {
        return mc_fail(c, MC_EXIT_ERROR, "failed to revoke lease (%s)", e);
    }
    struct moor_buf out;
    moor_buf_init(&out);
    code = mc_emit(c, mc_print_lease_revoke(&out, &c->pr, id, resp), &out);
    moor_buf_close(&out);
    mc_pb_free(resp);
    return code;
}

int mc_cmd_lease_ttl(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_lease_opts *o = opts;
    int64_t id;
    int code = lease_arg(c, args, n, "timetolive", &id);
    if (code != MC_EXIT_OK) {
        return code;
    }
    Etcdserverpb__LeaseTimeToLiveRequest req =
        ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
    Etcdserverpb__LeaseTimeToLiveResponse *resp = NULL;
    req.id = id;
    req.keys = o->keys;
    code =
        mc_call(c, PATH_LEASE "LeaseTimeToLive", &req,
                &etcdserverpb__lease_time_to_live_response__descriptor, &resp);
    if (code != MC_EXIT_OK) {
        return code;
    }
    struct moor_buf out;
    moor_buf_init(&out);
    code = mc_emit(c, mc_print_lease_ttl(&out, &c->pr, o->keys, resp), &out);
    moor_buf_close(&out);
    mc_pb_free(resp);
    return code;
}

int mc_cmd_lease_list(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    (void)args;
    if (n != 0) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "lease list command takes no "
                       "arguments");
    }
    Etcdserverpb__LeaseLeasesRequest req =
        ETCDSERVERPB__LEASE_LEASES_REQUEST__INIT;
    Etcdserverpb__LeaseLeasesResponse *resp = NULL;
    int code = mc_call(c, PATH_LEASE "LeaseLeases", &req,
                       &etcdserverpb__lease_leases_response__descriptor, &resp);
    if (code != MC_EXIT_OK) {
        return code;
    }
    struct moor_buf out;
    moor_buf_init(&out);
    code = mc_emit(c, mc_print_lease_list(&out, &c->pr, resp), &out);
    moor_buf_close(&out);
    mc_pb_free(resp);
    return code;
}

/* ------------------------------------------------------------------------
 * keep-alive
 * ---------------------------------------------------------------------- */
struct ka
{
    struct mc_ctx *c;
    struct rpc_stream *s;
    uv_timer_t timer;
    uv_signal_t sigint, sigterm;
    int64_t id;
    bool once;
    bool done;
    bool got;         /* --once: an answer arrived */
    bool expired;     /* TTL <= 0 came back */
    bool interrupted; /* SIGINT / SIGTERM */
    int status;       /* the stream's final status */
    char msg[MOOR_ERRMSG_SIZE];
    int print_rv;
    struct moor_buf out;
    uint8_t req[32];
    size_t req_len;
};

static void ka_send(struct ka *k)
{
    if (k->s == NULL || k->done) {
        return;
    }
    int rv = rpc_stream_send(k->s, moor_slice_make(k->req, k->req_len));
    (void)rv; /* a full queue (EAGAIN) only delays this renewal */
}

static void ka_timer_cb(uv_timer_t *t)
{
    ka_send(t->data);
}

static void ka_stop(struct ka *k)
{
    if (k->s != NULL && !k->done) {
        rpc_stream_cancel(k->s);
    }
}

static void ka_message_cb(struct rpc_stream *s, struct moor_slice msg,
                          void *arg)
{
    struct ka *k = arg;
    (void)s;
    ProtobufCMessage *m = NULL;
    if (moor_pb_unpack(&etcdserverpb__lease_keep_alive_response__descriptor,
                       msg.ptr, msg.len, MC_RECV_MAX, &m) != MOOR_OK) {
        return;
    }
    Etcdserverpb__LeaseKeepAliveResponse *r = (void *)m;
    k->got = true;
    if (r->ttl <= 0) {
        k->expired = true;
        ka_stop(k);
    } else if (k->print_rv == MOOR_OK) {
        k->print_rv = mc_print_keepalive(&k->out, &k->c->pr, r);
        mc_flush(k->c, &k->out);
        if (k->once) {
            ka_stop(k);
        } else {
            uint64_t ms = (uint64_t)r->ttl * 1000 / 3;
            uv_timer_start(&k->timer, ka_timer_cb, ms < 500 ? 500 : ms, 0);
        }
    }
    if (k->print_rv != MOOR_OK) {
        ka_stop(k);
    }
    mc_pb_free(m);
}

static void ka_done_cb(struct rpc_stream *s, int status, const char *message,
                       void *arg)
{
    struct ka *k = arg;
    (void)s;
    k->done = true;
    k->status = status;
    moor_errmsg_set(k->msg, "%s", message);
    k->s = NULL;
}

static void ka_signal_cb(uv_signal_t *h, int signum)
{
    struct ka *k = h->data;
    (void)signum;
    k->interrupted = true;
    ka_stop(k);
}

int mc_cmd_lease_keepalive(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_lease_opts *o = opts;
    int64_t id;
    int code = lease_arg(c, args, n, "keep-alive", &id);
    if (code != MC_EXIT_OK) {
        return code;
    }
    if (!o->once && c->pr.fmt != MC_FMT_SIMPLE && c->pr.fmt != MC_FMT_JSON &&
        c->pr.fmt != MC_FMT_FIELDS) {
        return mc_fail(c, MC_EXIT_USAGE, "%s",
                       mc_print_unsupported_text(c->pr.fmt));
    }
    char e[MOOR_ERRMSG_SIZE];
    struct rpc_client *cl;
    if (mc_client(c, &cl, e) != MOOR_OK) {
        return mc_fail(c, MC_EXIT_ERROR, "%s", e);
    }
    struct ka *k = moor_calloc(1, sizeof(*k));
    if (k == NULL) {
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    k->c = c;
    k->id = id;
    k->once = o->once;
    moor_buf_init(&k->out);
    Etcdserverpb__LeaseKeepAliveRequest req =
        ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    req.id = id;
    k->req_len = etcdserverpb__lease_keep_alive_request__pack(&req, k->req);
    uv_timer_init(&c->loop, &k->timer);
    k->timer.data = k;
    uv_signal_init(&c->loop, &k->sigint);
    uv_signal_init(&c->loop, &k->sigterm);
    k->sigint.data = k->sigterm.data = k;
    uv_signal_start(&k->sigint, ka_signal_cb, SIGINT);
    uv_signal_start(&k->sigterm, ka_signal_cb, SIGTERM);
    static const struct rpc_stream_ops ops = {ka_message_cb, NULL, ka_done_cb};
    uint64_t timeout =
        o->once ? c->g.command_timeout_ms + c->g.dial_timeout_ms : 0;
    struct rpc_metadata md;
    size_t md_len = mc_token_md(c->token, &md);
    int rv = rpc_stream_start(cl, PATH_LEASE "LeaseKeepAlive", &md, md_len,
                              timeout, &ops, k, &k->s);
    if (rv != MOOR_OK) {
        code = mc_fail(c, MC_EXIT_ERROR, "%s", moor_strerror(rv));
    } else {
        ka_send(k);
        while (!k->done) {
            uv_run(&c->loop, UV_RUN_ONCE);
        }
        if (k->print_rv != MOOR_OK) {
            code = mc_emit(c, k->print_rv, &k->out);
        } else if (k->interrupted) {
            code = MC_EXIT_OK;
        } else if (k->expired && k->once) {
            code = mc_fail(c, MC_EXIT_ERROR,
                           "etcdserver: requested lease not found");
        } else if (k->expired) {
            if (c->pr.fmt == MC_FMT_SIMPLE) {
                fprintf(c->out, "lease %016llx expired or revoked.\n",
                        (unsigned long long)id);
            }
            code = MC_EXIT_OK;
        } else if (k->once && k->got) {
            code = MC_EXIT_OK;
        } else {
            mc_status_text(k->status, k->msg, e);
            code = mc_fail(c, MC_EXIT_ERROR, "%s", e);
        }
    }
    uv_close((uv_handle_t *)&k->timer, NULL);
    uv_close((uv_handle_t *)&k->sigint, NULL);
    uv_close((uv_handle_t *)&k->sigterm, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    moor_buf_close(&k->out);
    moor_free(k);
    return code;
}
