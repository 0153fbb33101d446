/*
 * errors.c: the one table from moor errors to etcd's gRPC statuses, and
 * the few ways every handler ends a call.
 *
 * etcd's clients match these messages as strings (clientv3's
 * rpctypes.errStringToError), so each must be byte-identical to etcd's.
 */
#include "server_int.h"

static const struct
{
    int err;
    int code;
    const char *message;
} table[] = {
    {MOOR_EEMPTYKEY, RPC_INVALID_ARGUMENT, "etcdserver: key is not provided"},
    {MOOR_EKEYNOTFOUND, RPC_INVALID_ARGUMENT, "etcdserver: key not found"},
    {MOOR_EVALUEPROVIDED, RPC_INVALID_ARGUMENT,
     "etcdserver: value is provided"},
    {MOOR_ELEASEPROVIDED, RPC_INVALID_ARGUMENT,
     "etcdserver: lease is provided"},
    {MOOR_ETOOMANYOPS, RPC_INVALID_ARGUMENT,
     "etcdserver: too many operations in txn request"},
    {MOOR_EDUPKEY, RPC_INVALID_ARGUMENT,
     "etcdserver: duplicate key given in txn request"},
    {MOOR_ECOMPACTED, RPC_OUT_OF_RANGE,
     "etcdserver: mvcc: required revision has been compacted"},
    {MOOR_EFUTUREREV, RPC_OUT_OF_RANGE,
     "etcdserver: mvcc: required revision is a future revision"},
    {MOOR_ENOSPACE, RPC_RESOURCE_EXHAUSTED,
     "etcdserver: mvcc: database space exceeded"},
    {MOOR_ELEASENOTFOUND, RPC_NOT_FOUND,
     "etcdserver: requested lease not found"},
    {MOOR_ELEASEEXISTS, RPC_FAILED_PRECONDITION,
     "etcdserver: lease already exists"},
    {MOOR_ELEASETTLTOOLARGE, RPC_OUT_OF_RANGE,
     "etcdserver: too large lease TTL"},
    {MOOR_ETOOBIG, RPC_INVALID_ARGUMENT, "etcdserver: request is too large"},
    {MOOR_EMEMBEREXISTS, RPC_FAILED_PRECONDITION,
     "etcdserver: member ID already exist"},
    {MOOR_EPEERURLEXISTS, RPC_FAILED_PRECONDITION,
     "etcdserver: Peer URLs already exists"},
    {MOOR_EMEMBERBADURLS, RPC_INVALID_ARGUMENT,
     "etcdserver: given member URLs are invalid"},
    {MOOR_EMEMBERNOTFOUND, RPC_NOT_FOUND, "etcdserver: member not found"},
    {MOOR_EMEMBERNOTLEARNER, RPC_FAILED_PRECONDITION,
     "etcdserver: can only promote a learner member"},
    {MOOR_ELEARNERNOTREADY, RPC_FAILED_PRECONDITION,
     "etcdserver: can only promote a learner member which is in sync with "
     "leader"},
    {MOOR_ETOOMANYLEARNERS, RPC_FAILED_PRECONDITION,
     "etcdserver: too many learner members in cluster"},
    {MOOR_EUNHEALTHY, RPC_UNAVAILABLE, "etcdserver: unhealthy cluster"},
    {MOOR_ENOTENOUGHSTARTED, RPC_FAILED_PRECONDITION,
     "etcdserver: re-configuration failed due to not enough started members"},
    {MOOR_ENOLEADER, RPC_UNAVAILABLE, "etcdserver: no leader"},
    {MOOR_ENOTLEADER, RPC_FAILED_PRECONDITION, "etcdserver: not leader"},
    {MOOR_EDROPPED, RPC_UNAVAILABLE, "etcdserver: request timed out"},
    {MOOR_ETIMEDOUT, RPC_UNAVAILABLE, "etcdserver: request timed out"},
    {MOOR_ESHUTDOWN, RPC_UNAVAILABLE, "etcdserver: server stopped"},
    {MOOR_EBUSY, RPC_RESOURCE_EXHAUSTED, "etcdserver: too many requests"},
    {MOOR_ECANCELED, RPC_CANCELLED, "etcdserver: request canceled"},
    {MOOR_EPROTO, RPC_INVALID_ARGUMENT, "grpc: error unmarshalling request"},
};

struct srv_grpc_error srv_err_to_grpc(int err)
{
    for (size_t i = 0; i < MOOR_ARRAY_LEN(table); i++) {
        if (table[i].err == err) {
            struct srv_grpc_error e = {table[i].code, table[i].message};
            return e;
        }
    }
    /* Anything else is moor's own failure: etcd answers such errors with
     * codes.Unknown and the error's text. */
    struct srv_grpc_error e = {RPC_UNKNOWN, moor_strerror(err)};
    return e;
}

void srv_call_fail(struct rpc_call *call, int err)
{
    struct srv_grpc_error e = srv_err_to_grpc(err);
    rpc_call_finish(call, e.code, e.message);
}

void srv_reply(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct moor_buf b;
    moor_buf_init(&b);
    int rv = moor_pb_pack(msg, &b);
    if (rv == MOOR_OK) {
        rv = rpc_call_send(call, moor_slice_make(b.ptr, b.len));
    }
    moor_buf_close(&b);
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
        return;
    }
    rpc_call_finish(call, RPC_OK, NULL);
}

void srv_call_done(struct rpc_call *call, int status, void *arg)
{
    (void)status;
    (void)arg;
    struct srv_waiter *w = rpc_call_user(call);
    if (w != NULL) {
        w->call = NULL;
        if (w->kind == SRV_REQ_FORWARD) {
            srv_forward_call_gone(w);
        }
    }
}

int srv_register_methods(struct srv_node *n, struct rpc_server *srv,
                         const struct srv_method *methods, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct rpc_method_ops ops;
        memset(&ops, 0, sizeof(ops));
        ops.message_cb = methods[i].message_cb;
        ops.half_close_cb = methods[i].half_close_cb;
        ops.done_cb = srv_call_done;
        int rv = rpc_server_add_method(srv, methods[i].path, &ops, n);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return MOOR_OK;
}
