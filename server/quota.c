/*
 * quota.c: the space quota (NOSPACE alarm) and auto compaction.
 *
 * Quota: moor holds the keyspace in memory, so --quota-backend-bytes
 * (default 2 GiB) bounds the bytes the member holds (moor_alloc_bytes:
 * the keyspace plus its buffers). Past it the member raises the NOSPACE
 * alarm: writes that add data (Put, a Txn with a put, LeaseGrant) are
 * refused with etcd's "database space exceeded"; reads, deletes, revokes
 * and compaction still run, so an operator can free space and then
 * `alarm disarm`. The alarm is this member's own (each member holds the
 * same data, so each raises it at about the same point); etcd replicates
 * it through Raft, which moor does not do yet.
 *
 * Auto compaction (leader only), as etcd's --auto-compaction-mode:
 *   periodic: keep --auto-compaction-retention of history. The leader
 *     samples the revision every retention/10 and, once per retention (at
 *     most once an hour), compacts to the newest sample at least a
 *     retention old.
 *   revision: every 5 minutes, compact to current revision - retention.
 */
#include "server_int.h"

#define REVISION_MODE_EVERY_MS (5u * 60u * 1000u)
#define PERIODIC_MAX_INTERVAL_MS (60u * 60u * 1000u)

static uint64_t quota_bytes(const struct srv_node *n)
{
    return n->cfg->quota_backend_bytes > 0
               ? (uint64_t)n->cfg->quota_backend_bytes
               : (uint64_t)SRV_DEFAULT_QUOTA_BYTES;
}

void srv_quota_check(struct srv_node *n)
{
    if (!n->alarm_nospace && moor_alloc_bytes() > quota_bytes(n)) {
        n->alarm_nospace = true;
        MOOR_LOG_WARN("quota", "alarm raised: NOSPACE", "bytes=%zu quota=%llu",
                      moor_alloc_bytes(), (unsigned long long)quota_bytes(n));
    }
}

bool srv_quota_refuses(const struct srv_node *n,
                       const Moorpb__InternalRequest *ir)
{
    if (!n->alarm_nospace) {
        return false;
    }
    switch (ir->request_case) {
    case MOORPB__INTERNAL_REQUEST__REQUEST_PUT:
    case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT:
        return true;
    case MOORPB__INTERNAL_REQUEST__REQUEST_TXN:
        /* etcd refuses a txn with any put on either branch. */
        for (int branch = 0; branch < 2; branch++) {
            Etcdserverpb__RequestOp **ops =
                branch ? ir->txn->failure : ir->txn->success;
            size_t k = branch ? ir->txn->n_failure : ir->txn->n_success;
            for (size_t i = 0; i < k; i++) {
                if (ops[i]->request_case ==
                    ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT) {
                    return true;
                }
            }
        }
        return false;
    default:
        return false;
    }
}

int srv_alarm_handle(struct srv_node *n, int action, int alarm)
{
    if (alarm != ETCDSERVERPB__ALARM_TYPE__NOSPACE &&
        alarm != ETCDSERVERPB__ALARM_TYPE__NONE) {
        return MOOR_OK; /* CORRUPT is never raised by moor yet */
    }
    if (action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE &&
        alarm == ETCDSERVERPB__ALARM_TYPE__NOSPACE) {
        n->alarm_nospace = true;
    } else if (action ==
               ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE) {
        n->alarm_nospace = false;
        MOOR_LOG_INFO("quota", "alarm disarmed: NOSPACE", "bytes=%zu",
                      moor_alloc_bytes());
        /* Still over the quota: it comes straight back, as in etcd. */
        srv_quota_check(n);
    }
    return MOOR_OK;
}

static void propose_compaction(struct srv_node *n, int64_t rev)
{
    if (rev <= kv_store_compact_revision(n->kv) ||
        rev > kv_store_revision(n->kv)) {
        return;
    }
    Etcdserverpb__CompactionRequest req =
        ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    req.revision = rev;
    Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
    ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_COMPACTION;
    ir.compaction = &req;
    srv_propose_request(n, NULL, 0, &ir);
    MOOR_LOG_INFO("compactor", "auto compaction proposed", "revision=%lld",
                  (long long)rev);
}

void srv_autocompact_tick(struct srv_node *n)
{
    const struct srv_config *cfg = n->cfg;
    uint64_t retention = cfg->auto_compaction_retention;
    if (retention == 0 || raft_node_role(n->raft) != RAFT_LEADER ||
        n->stopping) {
        return;
    }
    uint64_t now = uv_now(n->loop);
    if (cfg->auto_compaction_mode == SRV_COMPACT_REVISION) {
        if (now - n->compact_last_ms < REVISION_MODE_EVERY_MS) {
            return;
        }
        n->compact_last_ms = now;
        int64_t target = kv_store_revision(n->kv) - (int64_t)retention;
        propose_compaction(n, target);
        return;
    }
    /* Periodic: sample every retention/10, compact once per interval. */
    uint64_t sample_every = MOOR_MAX(retention / 10, (uint64_t)1);
    size_t ring = MOOR_ARRAY_LEN(n->compact_samples);
    if (n->n_compact_samples == 0 ||
        now - n->compact_samples[(n->compact_head + ring - 1) % ring].time_ms >=
            sample_every) {
        n->compact_samples[n->compact_head].time_ms = now;
        n->compact_samples[n->compact_head].rev = kv_store_revision(n->kv);
        n->compact_head = (n->compact_head + 1) % ring;
        n->n_compact_samples = MOOR_MIN(n->n_compact_samples + 1, ring);
    }
    uint64_t interval = MOOR_MIN(retention, (uint64_t)PERIODIC_MAX_INTERVAL_MS);
    if (now - n->compact_last_ms < interval) {
        return;
    }
    /* The newest sample at least a retention old. */
    int64_t target = 0;
    for (size_t k = 0; k < n->n_compact_samples; k++) {
        const struct srv_rev_sample *s =
            &n->compact_samples[(n->compact_head + ring - 1 - k) % ring];
        if (now - s->time_ms >= retention) {
            target = s->rev;
            break;
        }
    }
    if (target > 0) {
        n->compact_last_ms = now;
        propose_compaction(n, target);
    }
}
