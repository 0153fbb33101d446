/*
 * maintsvc.c: etcd's Maintenance service (Status, Hash, HashKV, Alarm,
 * Defragment, MoveLeader). The Cluster service is members.c's.
 *
 * Defragment is an honest no-op: moor's keyspace lives in memory and
 * compaction frees old versions online (kv_compact_step, every loop turn),
 * so there is no file to rewrite and nothing stops the member. Alarms go
 * through Raft (quota.c); CORRUPT is never raised by moor yet.
 */
#include "server_int.h"

static void on_status(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)msg;
    struct srv_node *n = arg;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, kv_store_revision(n->kv));
    Etcdserverpb__StatusResponse out = ETCDSERVERPB__STATUS_RESPONSE__INIT;
    out.header = &h;
    out.version = (char *)(uintptr_t)SRV_ETCD_VERSION;
    /* moor has no db file: the keyspace's size is the memory it holds. */
    out.dbsize = (int64_t)moor_alloc_bytes();
    out.dbsizeinuse = out.dbsize;
    out.leader = raft_node_leader(n->raft);
    out.raftindex = raft_node_commit_index(n->raft);
    out.raftterm = raft_node_term(n->raft);
    out.raftappliedindex = kv_store_applied_index(n->kv);
    srv_reply(call, &out.base);
}

static void on_hash(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)msg;
    struct srv_node *n = arg;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, kv_store_revision(n->kv));
    Etcdserverpb__HashResponse out = ETCDSERVERPB__HASH_RESPONSE__INIT;
    out.header = &h;
    out.hash = kv_hash(n->kv);
    srv_reply(call, &out.base);
}

static void on_hash_kv(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    Etcdserverpb__HashKVRequest *req =
        (Etcdserverpb__HashKVRequest *)srv_decode(
            n, call, &etcdserverpb__hash_kvrequest__descriptor, msg);
    if (req == NULL) {
        return;
    }
    uint32_t hash = 0;
    int64_t compact = 0, rev = 0;
    int rv = kv_hash_kv(n->kv, req->revision, &hash, &compact, &rev);
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
    } else {
        Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
        srv_header_fill(n, &h, rev);
        Etcdserverpb__HashKVResponse out = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
        out.header = &h;
        out.hash = hash;
        out.compact_revision = compact;
        srv_reply(call, &out.base);
    }
    protobuf_c_message_free_unpacked(&req->base, &moor_pb_allocator);
}

static void on_alarm(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    Etcdserverpb__AlarmRequest *req = (Etcdserverpb__AlarmRequest *)srv_decode(
        n, call, &etcdserverpb__alarm_request__descriptor, msg);
    if (req != NULL) {
        srv_alarm_request(n, call, req); /* quota.c */
    }
}

static void on_defragment(struct rpc_call *call, struct moor_slice msg,
                          void *arg)
{
    (void)msg;
    struct srv_node *n = arg;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, kv_store_revision(n->kv));
    Etcdserverpb__DefragmentResponse out =
        ETCDSERVERPB__DEFRAGMENT_RESPONSE__INIT;
    out.header = &h;
    srv_reply(call, &out.base);
}

static void reply_moved(struct srv_node *n, struct rpc_call *call)
{
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, kv_store_revision(n->kv));
    Etcdserverpb__MoveLeaderResponse out =
        ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
    out.header = &h;
    srv_reply(call, &out.base);
}

/* MoveLeader (thesis §3.10): the leader catches the target up and sends it
 * TimeoutNow; the answer waits until the target leads (srv_maint_tick) or
 * the request times out. */
static void on_move_leader(struct rpc_call *call, struct moor_slice msg,
                           void *arg)
{
    struct srv_node *n = arg;
    Etcdserverpb__MoveLeaderRequest *req =
        (Etcdserverpb__MoveLeaderRequest *)srv_decode(
            n, call, &etcdserverpb__move_leader_request__descriptor, msg);
    if (req == NULL) {
        return;
    }
    uint64_t target = req->targetid;
    protobuf_c_message_free_unpacked(&req->base, &moor_pb_allocator);
    if (raft_node_role(n->raft) != RAFT_LEADER) {
        srv_call_fail(call, MOOR_ENOTLEADER);
        return;
    }
    if (target == n->member_id) {
        reply_moved(n, call); /* already leads */
        return;
    }
    if (n->move_waiter != NULL) {
        srv_call_fail(call, MOOR_EBUSY);
        return;
    }
    if (raft_node_transfer_leader(n->raft, target) != MOOR_OK) {
        rpc_call_finish(call, RPC_FAILED_PRECONDITION,
                        "etcdserver: bad leader transferee");
        return;
    }
    struct srv_waiter *w = srv_waiter_new(n, SRV_REQ_MOVE_LEADER, call);
    if (w == NULL) {
        srv_call_fail(call, MOOR_EBUSY);
        return;
    }
    w->target = target;
    n->move_waiter = w;
}

void srv_maint_tick(struct srv_node *n)
{
    struct srv_waiter *w = n->move_waiter;
    if (w == NULL || raft_node_leader(n->raft) != w->target) {
        return; /* still moving; the waiter's deadline bounds the wait */
    }
    if (w->call != NULL) {
        reply_moved(n, w->call);
    }
    srv_waiter_free(n, w);
}

int srv_maint_register(struct srv_node *n, struct rpc_server *srv)
{
    static const struct srv_method methods[] = {
        {"/etcdserverpb.Maintenance/Status", on_status, NULL},
        {"/etcdserverpb.Maintenance/Hash", on_hash, NULL},
        {"/etcdserverpb.Maintenance/HashKV", on_hash_kv, NULL},
        {"/etcdserverpb.Maintenance/Alarm", on_alarm, NULL},
        {"/etcdserverpb.Maintenance/Defragment", on_defragment, NULL},
        {"/etcdserverpb.Maintenance/MoveLeader", on_move_leader, NULL},
    };
    return srv_register_methods(n, srv, methods, MOOR_ARRAY_LEN(methods));
}
