/*
 * quota.c: the space quota (NOSPACE alarm) and auto compaction.
 *
 * Quota: moor holds the keyspace in memory, so --quota-backend-bytes
 * (default 2 GiB) bounds the bytes the member holds (moor_alloc_bytes:
 * the keyspace plus its buffers). Past it the member raises the NOSPACE
 * alarm: writes that add data (Put, a Txn with a put, LeaseGrant) are
 * refused with etcd's "database space exceeded"; reads, deletes, revokes
 * and compaction still run, so an operator can free space and then
 * `alarm disarm`. The WAL's early warning (its next segment cannot be
 * preallocated) counts as over the quota.
 *
 * Alarms go through Raft, as etcd's: a member over its quota refuses
 * writes at once and proposes AlarmRequest{ACTIVATE, itself, NOSPACE};
 * applied on every member, it refuses writes cluster-wide. Maintenance.
 * Alarm ACTIVATE/DEACTIVATE are proposed the same way (`alarm disarm` on
 * any member clears the alarm everywhere); GET lists the applied alarms.
 * Alarms live in memory: a restart replays the WAL after the newest
 * snapshot (re-applying the alarm entries there), and a member still over
 * its quota or low on WAL space raises its alarm again; an alarm older
 * than the snapshot whose cause is gone is not restored.
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

static bool over_quota(const struct srv_node *n)
{
    return moor_alloc_bytes() > quota_bytes(n) || n->wal_low_space;
}

static struct srv_alarm *alarm_find(struct srv_node *n, uint64_t member,
                                    int type)
{
    for (size_t i = 0; i < n->n_alarms; i++) {
        if (n->alarms[i].member_id == member && n->alarms[i].type == type) {
            return &n->alarms[i];
        }
    }
    return NULL;
}

void srv_quota_check(struct srv_node *n)
{
    n->quota_over = over_quota(n);
    if (!n->quota_over || n->stopping ||
        alarm_find(n, n->member_id, ETCDSERVERPB__ALARM_TYPE__NOSPACE) !=
            NULL) {
        return;
    }
    /* Proposed without a waiter: lost when there is no leader or the
     * entry is dropped, so tried again after two election timeouts. */
    uint64_t now = uv_now(n->loop);
    if (n->alarm_raise_ms != 0 &&
        now - n->alarm_raise_ms < 2u * n->cfg->election_ms) {
        return;
    }
    n->alarm_raise_ms = now;
    Etcdserverpb__AlarmRequest ar = ETCDSERVERPB__ALARM_REQUEST__INIT;
    ar.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
    ar.memberid = n->member_id;
    ar.alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
    Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
    ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_ALARM;
    ir.alarm = &ar;
    srv_propose_request(n, NULL, 0, &ir);
    MOOR_LOG_WARN("alarm", "raising alarm",
                  "alarm=NOSPACE reason=%s bytes=%zu quota=%llu",
                  n->wal_low_space ? "wal-disk-full" : "quota",
                  moor_alloc_bytes(), (unsigned long long)quota_bytes(n));
}

void srv_alarm_wal_space(struct srv_node *n, bool low)
{
    if (low == n->wal_low_space) {
        return;
    }
    n->wal_low_space = low;
    if (low) {
        MOOR_LOG_WARN(
            "wal",
            "disk nearly full: the next segment cannot be "
            "prepared",
            "dir=%s",
            n->cfg->wal_dir[0] != '\0' ? n->cfg->wal_dir : n->datadir.wal_dir);
        srv_quota_check(n);
    } else {
        MOOR_LOG_INFO("wal", "disk space available again", NULL);
    }
}

bool srv_quota_refuses(const struct srv_node *n,
                       const Moorpb__InternalRequest *ir)
{
    /* Measured once per loop turn, not per request: a request being
     * decoded must not count against its own admission. */
    if (!n->alarm_nospace && !n->quota_over && !n->wal_low_space) {
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

/* Answers call with the header and the given alarms. */
static void alarm_reply(struct srv_node *n, struct rpc_call *call,
                        const struct srv_alarm *alarms, size_t count)
{
    Etcdserverpb__AlarmMember ams[SRV_ALARMS_MAX];
    Etcdserverpb__AlarmMember *ptrs[SRV_ALARMS_MAX];
    for (size_t i = 0; i < count; i++) {
        etcdserverpb__alarm_member__init(&ams[i]);
        ams[i].memberid = alarms[i].member_id;
        ams[i].alarm = (Etcdserverpb__AlarmType)alarms[i].type;
        ptrs[i] = &ams[i];
    }
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, kv_store_revision(n->kv));
    Etcdserverpb__AlarmResponse out = ETCDSERVERPB__ALARM_RESPONSE__INIT;
    out.header = &h;
    out.alarms = count > 0 ? ptrs : NULL;
    out.n_alarms = count;
    srv_reply(call, &out.base);
}

void srv_alarm_request(struct srv_node *n, struct rpc_call *call,
                       Etcdserverpb__AlarmRequest *req)
{
    if (req->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE ||
        req->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE) {
        /* Through Raft, as etcd: applied on every member, answered here
         * once applied. */
        Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
        ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_ALARM;
        ir.alarm = req;
        srv_propose_request(n, call, SRV_REQ_ALARM, &ir);
    } else {
        /* GET (and an unknown action, which etcd applies as nothing: an
         * empty answer): the alarms of the given type, all for NONE. */
        struct srv_alarm list[SRV_ALARMS_MAX];
        size_t k = 0;
        for (size_t i = 0; i < n->n_alarms; i++) {
            if (req->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET &&
                (req->alarm == ETCDSERVERPB__ALARM_TYPE__NONE ||
                 (int)req->alarm == n->alarms[i].type)) {
                list[k++] = n->alarms[i];
            }
        }
        alarm_reply(n, call, list, k);
    }
    protobuf_c_message_free_unpacked(&req->base, &moor_pb_allocator);
}

static const char *alarm_name(int type)
{
    return type == ETCDSERVERPB__ALARM_TYPE__NOSPACE   ? "NOSPACE"
           : type == ETCDSERVERPB__ALARM_TYPE__CORRUPT ? "CORRUPT"
                                                       : "NONE";
}

/* alarm_nospace from the applied alarms. */
static void alarms_changed(struct srv_node *n)
{
    n->alarm_nospace = false;
    for (size_t i = 0; i < n->n_alarms; i++) {
        if (n->alarms[i].type == ETCDSERVERPB__ALARM_TYPE__NOSPACE) {
            n->alarm_nospace = true;
        }
    }
}

void srv_alarms_restore(struct srv_node *n, const struct srv_alarm *a, size_t k)
{
    MOOR_ASSERT(k <= SRV_ALARMS_MAX);
    memcpy(n->alarms, a, k * sizeof(*a));
    n->n_alarms = k;
    alarms_changed(n);
    for (size_t i = 0; i < k; i++) {
        MOOR_LOG_WARN("alarm", "alarm restored from the snapshot",
                      "alarm=%s member=%llx", alarm_name(a[i].type),
                      (unsigned long long)a[i].member_id);
    }
}

void srv_alarm_apply(struct srv_node *n, uint64_t index,
                     const Moorpb__InternalRequest *ir)
{
    const Etcdserverpb__AlarmRequest *ar = ir->alarm;
    kv_store_note_applied(n->kv, index);
    struct srv_alarm changed = {ar->memberid, (int)ar->alarm};
    bool have = false;
    /* Only NOSPACE is acted on: moor never raises CORRUPT, and an alarm it
     * would list but not enforce would mislead. */
    bool known = ar->alarm == ETCDSERVERPB__ALARM_TYPE__NOSPACE;
    struct srv_alarm *a = alarm_find(n, changed.member_id, changed.type);
    if (ar->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE &&
        known) {
        if (a != NULL) {
            have = true; /* already raised: answered with it, as etcd */
        } else if (n->n_alarms < SRV_ALARMS_MAX) {
            n->alarms[n->n_alarms++] = changed;
            have = true;
            MOOR_LOG_WARN("alarm", "alarm raised",
                          "alarm=%s member=%llx index=%llu bytes=%zu",
                          alarm_name(changed.type),
                          (unsigned long long)changed.member_id,
                          (unsigned long long)index, moor_alloc_bytes());
        } else {
            MOOR_LOG_ERROR("alarm", "too many alarms, one dropped",
                           "alarm=%s member=%llx", alarm_name(changed.type),
                           (unsigned long long)changed.member_id);
        }
    } else if (ar->action ==
                   ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE &&
               a != NULL) {
        *a = n->alarms[--n->n_alarms];
        have = true;
        MOOR_LOG_INFO("alarm", "alarm disarmed",
                      "alarm=%s member=%llx index=%llu bytes=%zu",
                      alarm_name(changed.type),
                      (unsigned long long)changed.member_id,
                      (unsigned long long)index, moor_alloc_bytes());
        if (changed.member_id == n->member_id) {
            n->alarm_raise_ms = 0; /* still over: raised again at once */
        }
    }
    alarms_changed(n);
    struct srv_waiter *w = srv_waiter_find(n, ir->id);
    if (w != NULL && w->kind == SRV_REQ_ALARM) {
        if (w->call != NULL) {
            alarm_reply(n, w->call, &changed, have ? 1 : 0);
        }
        srv_waiter_free(n, w);
    }
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
