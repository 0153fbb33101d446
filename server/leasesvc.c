/*
 * leasesvc.c: etcd's Lease service, and the leader's lease duties.
 *
 * Grant and Revoke go through Raft (they change replicated state);
 * KeepAlive and TimeToLive are the leader's (a follower forwards them,
 * forward.c); Leases is answered by this member from its
 * kv state. The leader keeps each lease's deadline on its own monotonic
 * clock: on every tick it proposes a revoke for each lease past its
 * deadline (kv_lease_expired hands each out once per deadline); when it
 * becomes leader it first extends every lease by an election timeout
 * (kv_lease_promote), so a lease is never expired for a keep-alive that
 * went to the old leader; and it periodically proposes checkpoints of the
 * remaining TTLs, so a leader change does not restart every lease's full
 * TTL as etcd 3.4 does by default.
 */
#include "server_int.h"

/* Leases revoked per tick at most (etcd revokes 1000/s). */
#define EXPIRE_PER_TICK 128
/* Checkpoints proposed per round, and the rounds' spacing in ticks. */
#define CHECKPOINTS_PER_ROUND 1000
#define CHECKPOINT_EVERY_TICKS 300

static uint64_t now_ms(struct srv_node *n)
{
    return uv_now(n->loop);
}

/* ------------------------------------------------------------------------
 * Apply
 * ---------------------------------------------------------------------- */
bool srv_lease_apply(struct srv_node *n, uint64_t index,
                     const Moorpb__InternalRequest *ir)
{
    struct srv_waiter *w = srv_waiter_find(n, ir->id);
    switch (ir->request_case) {
    case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT: {
        int64_t id = 0, ttl = 0;
        int rv = kv_lease_grant(n->kv, index, ir->lease_grant->id,
                                ir->lease_grant->ttl, now_ms(n), &id, &ttl);
        srv_apply_check(n, index, rv);
        if (w != NULL && w->kind == SRV_REQ_LEASE_GRANT) {
            if (w->call != NULL && rv != MOOR_OK) {
                srv_call_fail(w->call, rv);
            } else if (w->call != NULL) {
                Etcdserverpb__ResponseHeader h =
                    ETCDSERVERPB__RESPONSE_HEADER__INIT;
                srv_header_fill(n, &h, kv_store_revision(n->kv));
                Etcdserverpb__LeaseGrantResponse out =
                    ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
                out.header = &h;
                out.id = id;
                out.ttl = ttl;
                srv_reply(w->call, &out.base);
            }
            srv_waiter_free(n, w);
        }
        return true;
    }
    case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE: {
        int64_t rev = 0;
        int rv = kv_lease_revoke(n->kv, index, ir->lease_revoke->id, &rev);
        srv_apply_check(n, index, rv);
        if (rv == MOOR_ELEASENOTFOUND) {
            kv_store_note_applied(n->kv, index);
        }
        if (w != NULL && w->kind == SRV_REQ_LEASE_REVOKE) {
            if (w->call != NULL && rv != MOOR_OK) {
                srv_call_fail(w->call, rv);
            } else if (w->call != NULL) {
                Etcdserverpb__ResponseHeader h =
                    ETCDSERVERPB__RESPONSE_HEADER__INIT;
                srv_header_fill(n, &h, rev);
                Etcdserverpb__LeaseRevokeResponse out =
                    ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT;
                out.header = &h;
                srv_reply(w->call, &out.base);
            }
            srv_waiter_free(n, w);
        }
        return true;
    }
    case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT: {
        const Etcdserverpb__LeaseCheckpointRequest *r = ir->lease_checkpoint;
        struct kv_lease_checkpoint *cps =
            moor_calloc(r->n_checkpoints + 1, sizeof(*cps));
        if (cps == NULL) {
            moor_fatal("lease", "out of memory applying checkpoints", NULL);
        }
        for (size_t i = 0; i < r->n_checkpoints; i++) {
            cps[i].id = r->checkpoints[i]->id;
            cps[i].remaining_ttl_s = r->checkpoints[i]->remaining_ttl;
        }
        kv_lease_checkpoint_apply(n->kv, index, cps, r->n_checkpoints);
        moor_free(cps);
        return true;
    }
    default:
        return false;
    }
}

/* ------------------------------------------------------------------------
 * Leader duties, once per tick
 * ---------------------------------------------------------------------- */
void srv_lease_tick(struct srv_node *n)
{
    if (raft_node_role(n->raft) != RAFT_LEADER || n->stopping) {
        n->lease_leader = false;
        return;
    }
    uint64_t now = now_ms(n);
    if (!n->lease_leader) {
        /* A new leader: keep-alives went to the old one, on its clock.
         * Every lease gets its remaining TTL from now plus an election
         * timeout before anything can expire (etcd's Promote). */
        kv_lease_promote(n->kv, now, n->cfg->election_ms);
        n->lease_leader = true;
        MOOR_LOG_INFO("lease", "leases promoted by the new leader",
                      "leases=%zu", kv_lease_count(n->kv));
    }
    int64_t ids[EXPIRE_PER_TICK];
    size_t k = kv_lease_expired(n->kv, now, ids, EXPIRE_PER_TICK);
    for (size_t i = 0; i < k; i++) {
        Etcdserverpb__LeaseRevokeRequest req =
            ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
        req.id = ids[i];
        Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
        ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE;
        ir.lease_revoke = &req;
        srv_propose_request(n, NULL, 0, &ir);
        MOOR_LOG_INFO("lease", "expired, revoking", "id=%016llx",
                      (unsigned long long)ids[i]);
    }
    if (++n->lease_ticks % CHECKPOINT_EVERY_TICKS != 0) {
        return;
    }
    struct kv_lease_checkpoint *cps =
        moor_calloc(CHECKPOINTS_PER_ROUND, sizeof(*cps));
    if (cps == NULL) {
        return;
    }
    size_t c = kv_lease_checkpoints(n->kv, now, &n->lease_cursor, cps,
                                    CHECKPOINTS_PER_ROUND);
    if (c > 0) {
        Etcdserverpb__LeaseCheckpoint *items = moor_calloc(c, sizeof(*items));
        Etcdserverpb__LeaseCheckpoint **ptrs = moor_calloc(c, sizeof(*ptrs));
        if (items != NULL && ptrs != NULL) {
            for (size_t i = 0; i < c; i++) {
                etcdserverpb__lease_checkpoint__init(&items[i]);
                items[i].id = cps[i].id;
                items[i].remaining_ttl = cps[i].remaining_ttl_s;
                ptrs[i] = &items[i];
            }
            Etcdserverpb__LeaseCheckpointRequest req =
                ETCDSERVERPB__LEASE_CHECKPOINT_REQUEST__INIT;
            req.n_checkpoints = c;
            req.checkpoints = ptrs;
            Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
            ir.request_case =
                MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT;
            ir.lease_checkpoint = &req;
            srv_propose_request(n, NULL, 0, &ir);
        }
        moor_free(items);
        moor_free(ptrs);
    }
    moor_free(cps);
}

/* ------------------------------------------------------------------------
 * Handlers
 * ---------------------------------------------------------------------- */
static void on_grant(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    Etcdserverpb__LeaseGrantRequest *req =
        (Etcdserverpb__LeaseGrantRequest *)srv_decode(
            n, call, &etcdserverpb__lease_grant_request__descriptor, msg);
    if (req == NULL) {
        return;
    }
    /* etcd checks these before proposing. */
    if (req->ttl > KV_LEASE_TTL_MAX) {
        srv_call_fail(call, MOOR_ELEASETTLTOOLARGE);
    } else if (req->id < 0) {
        srv_call_fail(call, MOOR_ELEASENOTFOUND);
    } else {
        Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
        ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT;
        ir.lease_grant = req;
        srv_propose_request(n, call, SRV_REQ_LEASE_GRANT, &ir);
    }
    protobuf_c_message_free_unpacked(&req->base, &moor_pb_allocator);
}

static void on_revoke(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    Etcdserverpb__LeaseRevokeRequest *req =
        (Etcdserverpb__LeaseRevokeRequest *)srv_decode(
            n, call, &etcdserverpb__lease_revoke_request__descriptor, msg);
    if (req == NULL) {
        return;
    }
    Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
    ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE;
    ir.lease_revoke = req;
    srv_propose_request(n, call, SRV_REQ_LEASE_REVOKE, &ir);
    protobuf_c_message_free_unpacked(&req->base, &moor_pb_allocator);
}

/* KeepAlive is a bidirectional stream: one answer per request, answered
 * by the leader from its own clock, never through Raft. */
static void on_keepalive(struct rpc_call *call, struct moor_slice msg,
                         void *arg)
{
    struct srv_node *n = arg;
    if (srv_forward_stream_message(n, call, msg)) {
        return; /* a follower passes keepalives to the leader */
    }
    Etcdserverpb__LeaseKeepAliveRequest *req = NULL;
    if (moor_pb_unpack(&etcdserverpb__lease_keep_alive_request__descriptor,
                       msg.ptr, msg.len, 1u << 20,
                       (ProtobufCMessage **)&req) != MOOR_OK) {
        srv_call_fail(call, MOOR_EPROTO);
        return;
    }
    if (raft_node_role(n->raft) != RAFT_LEADER) {
        srv_call_fail(call, MOOR_ENOLEADER);
    } else {
        int64_t ttl = 0;
        if (kv_lease_keepalive(n->kv, req->id, now_ms(n), &ttl)) {
            /* The lease carries a checkpointed remaining TTL: reset it to
             * the full TTL in the replicated state, or a new leader would
             * expire it early. */
            Etcdserverpb__LeaseCheckpoint cp =
                ETCDSERVERPB__LEASE_CHECKPOINT__INIT;
            cp.id = req->id;
            cp.remaining_ttl = 0;
            Etcdserverpb__LeaseCheckpoint *cps[1] = {&cp};
            Etcdserverpb__LeaseCheckpointRequest creq =
                ETCDSERVERPB__LEASE_CHECKPOINT_REQUEST__INIT;
            creq.checkpoints = cps;
            creq.n_checkpoints = 1;
            Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
            ir.request_case =
                MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT;
            ir.lease_checkpoint = &creq;
            srv_propose_request(n, NULL, 0, &ir);
        }
        Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
        srv_header_fill(n, &h, kv_store_revision(n->kv));
        Etcdserverpb__LeaseKeepAliveResponse out =
            ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
        out.header = &h;
        out.id = req->id;
        out.ttl = ttl;
        struct moor_buf b;
        moor_buf_init(&b);
        if (moor_pb_pack(&out.base, &b) == MOOR_OK) {
            /* One small answer per request: the client reads as it sends,
             * so the call's bounded queue holds; a client that does not
             * read loses its stream. */
            if (rpc_call_send(call, moor_slice_make(b.ptr, b.len)) != MOOR_OK) {
                rpc_call_cancel(call);
            }
        }
        moor_buf_close(&b);
    }
    protobuf_c_message_free_unpacked(&req->base, &moor_pb_allocator);
}

static void on_keepalive_half_close(struct rpc_call *call, void *arg)
{
    (void)arg;
    if (srv_forward_stream_half_close(call)) {
        return; /* ends when the leader's stream ends */
    }
    rpc_call_finish(call, RPC_OK, NULL);
}

static void on_ttl(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    if (raft_node_role(n->raft) != RAFT_LEADER) {
        /* The remaining TTL is the leader's. */
        srv_forward_unary(n, call, msg);
        return;
    }
    Etcdserverpb__LeaseTimeToLiveRequest *req =
        (Etcdserverpb__LeaseTimeToLiveRequest *)srv_decode(
            n, call, &etcdserverpb__lease_time_to_live_request__descriptor,
            msg);
    if (req == NULL) {
        return;
    }
    struct kv_lease_info info;
    kv_lease_time_to_live(n->kv, req->id, now_ms(n), &info);
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, kv_store_revision(n->kv));
    Etcdserverpb__LeaseTimeToLiveResponse out =
        ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
    out.header = &h;
    out.id = req->id;
    out.ttl = info.ttl_s;
    out.grantedttl = info.ttl_s < 0 ? 0 : info.granted_ttl_s;
    ProtobufCBinaryData *keys = NULL;
    if (req->keys && info.ttl_s >= 0 && info.n_keys > 0) {
        keys = moor_calloc(info.n_keys, sizeof(*keys));
        if (keys == NULL) {
            srv_call_fail(call, MOOR_ENOMEM);
            protobuf_c_message_free_unpacked(&req->base, &moor_pb_allocator);
            return;
        }
        for (size_t i = 0; i < info.n_keys; i++) {
            struct moor_slice k = kv_lease_key(n->kv, req->id, i);
            keys[i].data = (uint8_t *)(uintptr_t)k.ptr;
            keys[i].len = k.len;
        }
        out.keys = keys;
        out.n_keys = info.n_keys;
    }
    srv_reply(call, &out.base);
    moor_free(keys);
    protobuf_c_message_free_unpacked(&req->base, &moor_pb_allocator);
}

static void on_leases(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)msg;
    struct srv_node *n = arg;
    size_t count = kv_lease_count(n->kv);
    int64_t *ids = moor_calloc(count + 1, sizeof(*ids));
    Etcdserverpb__LeaseStatus *st = moor_calloc(count + 1, sizeof(*st));
    Etcdserverpb__LeaseStatus **ptrs = moor_calloc(count + 1, sizeof(*ptrs));
    if (ids == NULL || st == NULL || ptrs == NULL) {
        srv_call_fail(call, MOOR_ENOMEM);
    } else {
        size_t k = kv_lease_ids(n->kv, ids, count);
        for (size_t i = 0; i < k; i++) {
            etcdserverpb__lease_status__init(&st[i]);
            st[i].id = ids[i];
            ptrs[i] = &st[i];
        }
        Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
        srv_header_fill(n, &h, kv_store_revision(n->kv));
        Etcdserverpb__LeaseLeasesResponse out =
            ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT;
        out.header = &h;
        out.leases = ptrs;
        out.n_leases = k;
        srv_reply(call, &out.base);
    }
    moor_free(ids);
    moor_free(st);
    moor_free(ptrs);
}

int srv_lease_register(struct srv_node *n, struct rpc_server *srv)
{
    static const struct srv_method methods[] = {
        {"/etcdserverpb.Lease/LeaseGrant", on_grant, NULL},
        {"/etcdserverpb.Lease/LeaseRevoke", on_revoke, NULL},
        {"/etcdserverpb.Lease/LeaseKeepAlive", on_keepalive,
         on_keepalive_half_close},
        {"/etcdserverpb.Lease/LeaseTimeToLive", on_ttl, NULL},
        {"/etcdserverpb.Lease/LeaseLeases", on_leases, NULL},
    };
    return srv_register_methods(n, srv, methods, MOOR_ARRAY_LEN(methods));
}
