/*
 * node.c: the member's loop — raft, the WAL and kv joined on one libuv
 * loop thread (DESIGN.md §2–§3).
 *
 * Per loop turn (srv_node_process, run from a uv_check hook after the poll
 * phase and after every tick):
 *   1. learn from the WAL how far the log is durable and tell raft
 *      (raft_node_persisted): the leader counts itself toward a quorum only
 *      up to there (thesis §10.2.1);
 *   2. propose every request queued during this turn in one batch;
 *   3. drain raft's readies: hand entries and hard state to the WAL writer
 *      thread (one batch, one fdatasync, group commit), send messages,
 *      apply committed entries to kv and answer their waiters, record read
 *      states; advance;
 *   4. serve linearizable reads whose read index is applied;
 *   5. hand watch events to their streams, start a snapshot when due,
 *      check the quota, take a bounded compaction step.
 * Answers are queued on their calls and leave in rpc/'s flush, which runs
 * in the uv_prepare phase before the loop blocks again. Messages to peers
 * go through peer.c.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <time.h>

#include "peer_int.h"
#include "server_int.h"

/* ------------------------------------------------------------------------
 * Waiters
 * ---------------------------------------------------------------------- */
static size_t bucket_of(uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 52) % SRV_WAITER_BUCKETS;
}

struct srv_waiter *srv_waiter_new(struct srv_node *n, uint8_t kind,
                                  struct rpc_call *call)
{
    if (n->n_waiters >= SRV_WAITERS_MAX) {
        return NULL;
    }
    struct srv_waiter *w = moor_calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->id = n->next_id++;
    w->kind = kind;
    w->call = call;
    /* etcd's request timeout: 5 s plus two election timeouts. */
    w->deadline_ms = uv_now(n->loop) + 5000 + 2u * n->cfg->election_ms;
    size_t b = bucket_of(w->id);
    w->hash_next = n->waiters[b];
    n->waiters[b] = w;
    n->n_waiters++;
    if (call != NULL) {
        rpc_call_set_user(call, w);
    }
    return w;
}

struct srv_waiter *srv_waiter_find(struct srv_node *n, uint64_t id)
{
    for (struct srv_waiter *w = n->waiters[bucket_of(id)]; w != NULL;
         w = w->hash_next) {
        if (w->id == id) {
            return w;
        }
    }
    return NULL;
}

static void reads_unlink(struct srv_node *n, struct srv_waiter *w)
{
    struct srv_waiter **pp = &n->reads_head;
    struct srv_waiter *prev = NULL;
    while (*pp != NULL && *pp != w) {
        prev = *pp;
        pp = &(*pp)->read_next;
    }
    if (*pp == w) {
        *pp = w->read_next;
        if (n->reads_tail == w) {
            n->reads_tail = prev;
        }
        w->read_next = NULL;
    }
}

void srv_waiter_free(struct srv_node *n, struct srv_waiter *w)
{
    struct srv_waiter **pp = &n->waiters[bucket_of(w->id)];
    while (*pp != NULL && *pp != w) {
        pp = &(*pp)->hash_next;
    }
    MOOR_ASSERT(*pp == w);
    srv_obs_waiter_done(n, w);
    *pp = w->hash_next;
    n->n_waiters--;
    if (w->in_reads) {
        reads_unlink(n, w);
    }
    if (n->move_waiter == w) {
        n->move_waiter = NULL;
    }
    if (w->call != NULL) {
        rpc_call_set_user(w->call, NULL);
    }
    if (w->req != NULL) {
        protobuf_c_message_free_unpacked(w->req, &moor_pb_allocator);
    }
    moor_free(w);
}

/* Ends every waiter whose deadline passed: its entry was lost (a leader
 * change) or is still far behind; the client hears etcd's timeout. */
static void waiters_expire(struct srv_node *n, uint64_t now_ms, bool all)
{
    for (size_t b = 0; b < SRV_WAITER_BUCKETS; b++) {
        struct srv_waiter *w = n->waiters[b];
        while (w != NULL) {
            struct srv_waiter *next = w->hash_next;
            if (all || w->deadline_ms <= now_ms) {
                if (w->call != NULL) {
                    srv_call_fail(w->call,
                                  all ? MOOR_ESHUTDOWN : MOOR_ETIMEDOUT);
                }
                srv_waiter_free(n, w);
            }
            w = next;
        }
    }
}

/* ------------------------------------------------------------------------
 * Proposals and reads
 * ---------------------------------------------------------------------- */
int srv_node_propose(struct srv_node *n, struct moor_bytes *data)
{
    if (n->stopping) {
        return MOOR_ESHUTDOWN;
    }
    if (n->n_proposals == n->cap_proposals) {
        size_t cap = n->cap_proposals ? n->cap_proposals * 2 : 64;
        void *p = moor_realloc(n->proposals, cap * sizeof(*n->proposals));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        n->proposals = p;
        n->cap_proposals = cap;
    }
    n->proposals[n->n_proposals++] = data;
    return MOOR_OK;
}

int srv_node_read(struct srv_node *n, struct srv_waiter *w)
{
    struct moor_bytes *ctx = moor_bytes_new(8);
    if (ctx == NULL) {
        return MOOR_ENOMEM;
    }
    moor_put_le64(ctx->data, w->id);
    int rv = raft_node_read_index(n->raft, ctx);
    moor_bytes_unref(ctx);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (n->reads_tail != NULL) {
        n->reads_tail->read_next = w;
    } else {
        n->reads_head = w;
    }
    n->reads_tail = w;
    w->in_reads = true;
    return MOOR_OK;
}

/* The id inside an encoded InternalRequest, from its first field (tag 0x08,
 * varint), without decoding the rest; 0 when absent. */
static uint64_t proposal_id(const struct moor_bytes *b)
{
    uint64_t id = 0;
    if (b->len > 1 && b->data[0] == 0x08) {
        moor_varint_get(b->data + 1, b->len - 1, &id);
    }
    return id;
}

static void proposals_flush(struct srv_node *n)
{
    if (n->n_proposals == 0) {
        return;
    }
    size_t done = 0;
    while (done < n->n_proposals) {
        size_t batch = MOOR_MIN(n->n_proposals - done, (size_t)1024);
        int rv = raft_node_propose(n->raft, n->proposals + done, batch);
        if (rv != MOOR_OK) {
            /* Not accepted: answer each waiter now (etcd's "no leader" or
             * timeout); nothing was appended. */
            for (size_t i = done; i < done + batch; i++) {
                struct srv_waiter *w =
                    srv_waiter_find(n, proposal_id(n->proposals[i]));
                if (w != NULL) {
                    if (w->call != NULL) {
                        srv_call_fail(w->call, rv);
                    }
                    srv_waiter_free(n, w);
                }
            }
        }
        done += batch;
    }
    for (size_t i = 0; i < n->n_proposals; i++) {
        moor_bytes_unref(n->proposals[i]); /* raft holds its own refs */
    }
    n->n_proposals = 0;
}

ProtobufCMessage *srv_decode(struct srv_node *n, struct rpc_call *call,
                             const ProtobufCMessageDescriptor *desc,
                             struct moor_slice msg)
{
    ProtobufCMessage *m = NULL;
    int rv =
        moor_pb_unpack(desc, msg.ptr, msg.len,
                       (size_t)n->cfg->max_request_bytes + 512u * 1024u, &m);
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv == MOOR_ETOOBIG ? MOOR_ETOOBIG : MOOR_EPROTO);
        return NULL;
    }
    return m;
}

void srv_propose_request(struct srv_node *n, struct rpc_call *call,
                         uint8_t kind, Moorpb__InternalRequest *ir)
{
    if (srv_quota_refuses(n, ir)) {
        if (call != NULL) {
            srv_call_fail(call, MOOR_ENOSPACE);
        }
        return;
    }
    struct srv_waiter *w = NULL;
    if (call != NULL) {
        w = srv_waiter_new(n, kind, call);
        if (w == NULL) {
            srv_call_fail(call, MOOR_EBUSY);
            return;
        }
        ir->id = w->id;
    } else {
        ir->id = n->next_id++;
    }
    ir->time_ms = (int64_t)(moor_clock_realtime_ns() / 1000000u);
    size_t len = protobuf_c_message_get_packed_size(&ir->base);
    int rv = MOOR_OK;
    struct moor_bytes *b = NULL;
    if (len > n->cfg->max_request_bytes) {
        rv = MOOR_ETOOBIG; /* etcd: ErrRequestTooLarge */
    } else if ((b = moor_bytes_new(len)) == NULL) {
        rv = MOOR_ENOMEM;
    } else {
        protobuf_c_message_pack(&ir->base, b->data);
        rv = srv_node_propose(n, b);
        if (rv != MOOR_OK) {
            moor_bytes_unref(b);
        }
    }
    if (rv != MOOR_OK && w != NULL) {
        srv_call_fail(call, rv);
        srv_waiter_free(n, w);
    } else if (w != NULL) {
        srv_obs_proposed(n, w);
    }
}

/* Serves the reads whose index is applied, unlinking them as it walks
 * (one pass, however many are served). */
static void reads_serve(struct srv_node *n)
{
    uint64_t applied = kv_store_applied_index(n->kv);
    struct srv_waiter *prev = NULL;
    struct srv_waiter *w = n->reads_head;
    while (w != NULL) {
        struct srv_waiter *next = w->read_next;
        if (w->read_index != 0 && w->read_index <= applied) {
            if (prev != NULL) {
                prev->read_next = next;
            } else {
                n->reads_head = next;
            }
            if (n->reads_tail == w) {
                n->reads_tail = prev;
            }
            w->read_next = NULL;
            w->in_reads = false;
            if (w->call != NULL) {
                srv_kv_serve_read(n, w);
            }
            srv_waiter_free(n, w);
        } else {
            prev = w;
        }
        w = next;
    }
}

/* ------------------------------------------------------------------------
 * Ready handling
 * ---------------------------------------------------------------------- */
static void inflight_push(struct srv_node *n, uint64_t seq, uint64_t index,
                          uint64_t term)
{
    if (n->n_inflight == n->cap_inflight) {
        size_t cap = n->cap_inflight ? n->cap_inflight * 2 : 64;
        void *p = moor_realloc(n->inflight, cap * sizeof(*n->inflight));
        if (p == NULL) {
            moor_fatal("node", "out of memory tracking WAL batches", NULL);
        }
        n->inflight = p;
        n->cap_inflight = cap;
    }
    n->inflight[n->n_inflight].seq = seq;
    n->inflight[n->n_inflight].index = index;
    n->inflight[n->n_inflight].term = term;
    n->n_inflight++;
}

/* Keeps msgs_after, encoded, until WAL batch seq is durable. */
static void deferred_push(struct srv_node *n, uint64_t seq,
                          const struct raft_message *msgs, size_t n_msgs)
{
    for (size_t i = 0; i < n_msgs; i++) {
        if (n->n_deferred == n->cap_deferred) {
            size_t cap = n->cap_deferred ? n->cap_deferred * 2 : 16;
            void *p = moor_realloc(n->deferred, cap * sizeof(*n->deferred));
            if (p == NULL) {
                return; /* dropped: raft resends */
            }
            n->deferred = p;
            n->cap_deferred = cap;
        }
        struct srv_deferred *d = &n->deferred[n->n_deferred];
        d->seq = seq;
        d->to = msgs[i].to;
        moor_buf_init(&d->frames);
        if (srv_peer_encode(&msgs[i], &d->frames) != MOOR_OK) {
            moor_buf_close(&d->frames);
            continue;
        }
        n->n_deferred++;
    }
}

static void deferred_release(struct srv_node *n, uint64_t durable_seq)
{
    size_t k = 0;
    while (k < n->n_deferred && n->deferred[k].seq <= durable_seq) {
        srv_peer_send_frames(n, n->deferred[k].to, &n->deferred[k].frames);
        moor_buf_close(&n->deferred[k].frames);
        k++;
    }
    if (k > 0) {
        memmove(n->deferred, n->deferred + k,
                (n->n_deferred - k) * sizeof(*n->deferred));
        n->n_deferred -= k;
    }
}

static void durable_collect(struct srv_node *n)
{
    struct wal_durable d;
    int rv = wal_collect(n->wal, &d);
    if (rv != MOOR_OK) {
        /* The WAL is poisoned: nothing after d.seq will ever be durable.
         * Never acknowledge, never retry (the kernel may have dropped the
         * dirty pages): stop the member; a restart replays what is
         * durable. */
        moor_fatal("node", "WAL write failed, stopping the member",
                   "err=%s detail=\"%s\"", moor_errname(rv),
                   wal_errmsg(n->wal));
    }
    /* The WAL could not prepare its next segment: the disk is nearly
     * full. The NOSPACE alarm goes through Raft before writes fail. */
    srv_alarm_wal_space(n, d.nospace);
    size_t k = 0;
    uint64_t index = 0, term = 0;
    while (k < n->n_inflight && n->inflight[k].seq <= d.seq) {
        if (n->inflight[k].index != 0) {
            index = n->inflight[k].index;
            term = n->inflight[k].term;
        }
        k++;
    }
    if (k > 0) {
        memmove(n->inflight, n->inflight + k,
                (n->n_inflight - k) * sizeof(*n->inflight));
        n->n_inflight -= k;
    }
    if (index != 0) {
        raft_node_persisted(n->raft, index, term);
        srv_obs_durable(n, index);
    }
    deferred_release(n, d.seq);
}

/* Hands the ready's writes to the WAL thread. Returns the seq of the batch
 * that makes them durable: this one, or, with nothing new to write, the
 * newest one handed over before. */
static uint64_t ready_persist(struct srv_node *n, const struct raft_ready *rd)
{
    /* A hard state whose term and vote are what the WAL already has moved
     * only the commit index, which Raft keeps volatile (paper Figure 2: a
     * restart learns it again from the leader, or, alone, by committing
     * an entry of its new term). So, like etcd's MustSync, it gets no
     * fdatasync of its own: it rides with the next batch that is written
     * anyway (or srv_node_close). A sequential put then costs one sync
     * and one WAL hand-off instead of two: the commit that follows its
     * entry's sync no longer queues a second sync in front of the next
     * entry. */
    if (rd->hard_state_changed) {
        n->hs_latest = rd->hard_state;
        n->hs_dirty = true;
    }
    bool commit_only = n->hs_latest.term == n->hs_written.term &&
                       n->hs_latest.vote == n->hs_written.vote;
    if (rd->n_entries == 0 && rd->snapshot == NULL &&
        (!n->hs_dirty || commit_only)) {
        return n->last_seq;
    }
    struct wal_batch b;
    memset(&b, 0, sizeof(b));
    /* A snapshot from the leader: its file is already in the snap dir
     * (peer.c received and verified it before raft saw the message); the
     * marker makes the WAL replay from it. */
    struct wal_snapshot ws;
    if (rd->snapshot != NULL) {
        ws.term = rd->snapshot->term;
        ws.index = rd->snapshot->index;
        b.snapshot = &ws;
    }
    b.entries = rd->entries;
    b.entries_len = rd->n_entries;
    if (n->hs_dirty) {
        b.hard_state = &n->hs_latest;
        n->hs_written = n->hs_latest;
        n->hs_dirty = false;
    }
    uint64_t seq = 0;
    for (;;) {
        int rv = wal_append(n->wal, &b, &seq);
        if (rv == MOOR_OK) {
            n->last_seq = seq;
            return seq;
        }
        if (rv != MOOR_EAGAIN) {
            moor_fatal("node", "WAL append failed, stopping the member",
                       "err=%s detail=\"%s\"", moor_errname(rv),
                       wal_errmsg(n->wal));
        }
        /* The writer thread is behind by pending_bytes_max: wait for it
         * (back-pressure on the whole member, bounded by one sync). */
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        durable_collect(n);
    }
}

static void ready_apply(struct srv_node *n, const struct raft_ready *rd)
{
    if (rd->snapshot != NULL) {
        srv_snap_install(n, rd->snapshot);
    }
    for (size_t i = 0; i < rd->n_committed; i++) {
        const struct raft_entry *e = &rd->committed[i];
        if (e->index <= kv_store_applied_index(n->kv)) {
            continue; /* already in the state (restored) */
        }
        if (e->type == RAFT_ENTRY_NORMAL && e->data != NULL &&
            e->data->len > 0) {
            uint64_t t0 = srv_obs_apply_begin(n, e);
            srv_kv_apply(n, e->index, moor_bytes_slice(e->data));
            srv_obs_apply_end(n, t0);
        } else if (e->type == RAFT_ENTRY_CONF_CHANGE && e->data != NULL) {
            srv_members_apply_conf(n, e->index, moor_bytes_slice(e->data));
        } else {
            kv_store_note_applied(n->kv, e->index);
        }
    }
    for (size_t i = 0; i < rd->n_read_states; i++) {
        const struct raft_read_state *rs = &rd->read_states[i];
        if (rs->context == NULL || rs->context->len != 8) {
            continue;
        }
        struct srv_waiter *w =
            srv_waiter_find(n, moor_get_le64(rs->context->data));
        if (w != NULL) {
            w->read_index = MOOR_MAX(rs->index, (uint64_t)1);
        }
    }
}

void srv_node_process(struct srv_node *n)
{
    if (n->processing || n->raft == NULL) {
        return;
    }
    n->processing = true;
    durable_collect(n);
    proposals_flush(n);
    /* Bounded: each ready hands out at most apply_entries_max entries;
     * whatever remains waits for the next turn (the check hook runs it). */
    for (int round = 0; round < 16 && raft_node_has_ready(n->raft); round++) {
        struct raft_ready rd;
        if (raft_node_ready(n->raft, &rd) != MOOR_OK) {
            break;
        }
        if (rd.soft_state_changed) {
            srv_obs_soft_state(n, &rd);
        }
        /* A member added in these entries is dialed before the appends
         * to it leave. */
        srv_members_appended(n, &rd);
        srv_obs_persisting(n, &rd);
        uint64_t seq = ready_persist(n, &rd);
        if (rd.persist_index != 0) {
            inflight_push(n, seq, rd.persist_index, rd.persist_term);
        }
        /* Appends leave before the local write is durable (thesis
         * §10.2.1); votes and acks only after it. */
        for (size_t i = 0; i < rd.n_msgs; i++) {
            srv_peer_send(n, &rd.msgs[i]);
        }
        deferred_push(n, seq, rd.msgs_after, rd.n_msgs_after);
        ready_apply(n, &rd);
        raft_node_advance(n->raft, &rd);
        durable_collect(n);
    }
    reads_serve(n);
    srv_watch_deliver(n);
    srv_snap_maybe(n);
    srv_quota_check(n);
    kv_compact_step(n->kv, 1000);
    n->processing = false;
}

/* ------------------------------------------------------------------------
 * libuv plumbing
 * ---------------------------------------------------------------------- */
static void shutdown_now(struct srv_node *n);

static void tick_cb(uv_timer_t *t)
{
    struct srv_node *n = MOOR_CONTAINER_OF(t, struct srv_node, tick_timer);
    if (n->handoff_deadline_ms != 0 &&
        (raft_node_role(n->raft) != RAFT_LEADER ||
         uv_now(n->loop) >= n->handoff_deadline_ms)) {
        shutdown_now(n);
        return;
    }
    raft_node_tick(n->raft);
    waiters_expire(n, uv_now(n->loop), false);
    srv_lease_tick(n);
    srv_autocompact_tick(n);
    srv_maint_tick(n);
    srv_members_publish(n);
    srv_node_process(n);
}

static void check_cb(uv_check_t *c)
{
    struct srv_node *n = MOOR_CONTAINER_OF(c, struct srv_node, check);
    srv_node_process(n);
}

static void wal_async_cb(uv_async_t *a)
{
    struct srv_node *n = MOOR_CONTAINER_OF(a, struct srv_node, wal_async);
    srv_node_process(n);
}

/* Runs on the WAL writer thread: only wake the loop. */
static void wal_notify(void *arg)
{
    struct srv_node *n = arg;
    uv_async_send(&n->wal_async);
}

/* Closes the node's own handles that are open (the WAL notifier, the
 * tick, the check hook, the signal watchers). */
static void loop_handles_close(struct srv_node *n)
{
    if (n->async_open) {
        uv_close((uv_handle_t *)&n->wal_async, NULL);
        n->async_open = false;
    }
    if (n->loop_handles_open) {
        uv_close((uv_handle_t *)&n->tick_timer, NULL);
        uv_close((uv_handle_t *)&n->check, NULL);
        uv_close((uv_handle_t *)&n->sigterm, NULL);
        uv_close((uv_handle_t *)&n->sigint, NULL);
        n->loop_handles_open = false;
    }
}

static void rpc_closed_cb(void *arg)
{
    struct srv_node *n = arg;
    n->rpc = NULL;
    srv_forward_close(n);
    srv_peer_close(n);
    /* Calls are gone; what was proposed and not yet durable is dropped
     * with the member (never acknowledged, so nothing is lost). */
    waiters_expire(n, 0, true);
    loop_handles_close(n);
}

void srv_node_abort(struct srv_node *n)
{
    n->stopping = true;
    if (n->rpc != NULL) {
        rpc_server_close(n->rpc, 0, NULL, NULL);
        n->rpc = NULL;
    }
    srv_peer_close(n);
    loop_handles_close(n);
}

/* Stops serving: calls in flight may end (a grace of two election
 * timeouts), then every handle closes and the loop ends. */
static void shutdown_now(struct srv_node *n)
{
    n->handoff_deadline_ms = 0;
    uv_timer_stop(&n->tick_timer);
    srv_node_process(n);
    rpc_server_close(n->rpc, 2u * n->cfg->election_ms, rpc_closed_cb, n);
}

void srv_node_stop(struct srv_node *n, const char *why)
{
    if (n->stopping) {
        return;
    }
    MOOR_LOG_WARN("node", "stopping", "reason=\"%s\"", why);
    n->stopping = true;
    uv_timer_stop(&n->tick_timer);
    rpc_server_close(n->rpc, 2u * n->cfg->election_ms, rpc_closed_cb, n);
}

static void signal_cb(uv_signal_t *s, int signum)
{
    struct srv_node *n = s->data;
    if (n->stopping) {
        return;
    }
    MOOR_LOG_INFO("node", "stopping", "signal=%d", signum);
    n->stopping = true;
    /* A leader first hands leadership to another voter (thesis §3.10), so
     * the cluster does not wait out an election timeout; the tick finishes
     * the stop once another member leads, or after an election timeout. */
    if (raft_node_role(n->raft) == RAFT_LEADER && n->n_peers > 0) {
        const struct raft_conf *conf = raft_node_conf(n->raft);
        for (uint32_t i = 0; i < conf->n; i++) {
            const struct raft_member *m = &conf->members[i];
            if (m->id != n->member_id && !m->learner &&
                raft_node_transfer_leader(n->raft, m->id) == MOOR_OK) {
                MOOR_LOG_INFO("node", "handing over leadership before stopping",
                              "to=%llx", (unsigned long long)m->id);
                n->handoff_deadline_ms = uv_now(n->loop) + n->cfg->election_ms;
                srv_node_process(n);
                return;
            }
        }
    }
    shutdown_now(n);
}

/* ------------------------------------------------------------------------
 * Open and close
 * ---------------------------------------------------------------------- */
static int ids_from_config(struct srv_node *n)
{
    const struct srv_config *cfg = n->cfg;
    uint64_t ids[SRV_MEMBERS_MAX];
    for (unsigned i = 0; i < cfg->n_initial_members; i++) {
        ids[i] = cfg->initial_members[i].id;
        if (strcmp(cfg->initial_members[i].name, cfg->name) == 0) {
            n->member_id = cfg->initial_members[i].id;
        }
    }
    n->cluster_id = srv_cluster_id(ids, cfg->n_initial_members);
    return MOOR_OK;
}

static bool dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return true;
    }
    bool empty = true;
    struct dirent *e;
    while (empty && (e = readdir(d)) != NULL) {
        empty = e->d_name[0] == '.';
    }
    closedir(d);
    return empty;
}

/* A restored data dir: this member is the one named --name in the
 * snapshot's membership. */
static int identity_from_restore(struct srv_node *n)
{
    for (unsigned i = 0; i < n->members.n; i++) {
        if (strcmp(n->members.m[i].name, n->cfg->name) == 0) {
            n->member_id = n->members.m[i].id;
            n->cluster_id = n->members.cluster_id;
            MOOR_LOG_INFO("node", "starting from a restored data dir",
                          "member=%llx cluster=%llx",
                          (unsigned long long)n->member_id,
                          (unsigned long long)n->cluster_id);
            return MOOR_OK;
        }
    }
    moor_errmsg_set(n->errmsg,
                    "the restored data dir %s has no member named '%s' "
                    "(check --name against snapshot restore's --name)",
                    n->cfg->data_dir, n->cfg->name);
    return MOOR_EINVAL;
}

static int listen_all(struct srv_node *n)
{
    const struct srv_config *cfg = n->cfg;
    struct rpc_tls_config tls = {
        .cert_file = cfg->cert_file,
        .key_file = cfg->key_file,
        .ca_file = cfg->trusted_ca_file[0] ? cfg->trusted_ca_file : NULL,
        .client_cert_auth = cfg->client_cert_auth,
    };
    struct rpc_server_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.tls = cfg->cert_file[0] != '\0' ? &tls : NULL;
    /* etcd: --max-request-bytes plus 512 KiB of gRPC framing slack. */
    rc.max_recv_msg_bytes = (size_t)cfg->max_request_bytes + 512u * 1024u;
    rc.max_concurrent_streams = 1u << 16;
    rc.http_fn = srv_http;
    rc.http_arg = n;
    int rv = rpc_server_open(n->loop, &rc, &n->rpc, n->errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    rv = srv_kv_register(n, n->rpc);
    if (rv == MOOR_OK) {
        rv = srv_lease_register(n, n->rpc);
    }
    if (rv == MOOR_OK) {
        rv = srv_maint_register(n, n->rpc);
    }
    if (rv == MOOR_OK) {
        rv = srv_members_register(n, n->rpc);
    }
    if (rv == MOOR_OK) {
        rv = srv_watch_register(n, n->rpc);
    }
    if (rv == MOOR_OK) {
        rv = srv_snap_register(n, n->rpc);
    }
    if (rv != MOOR_OK) {
        moor_errmsg_set(n->errmsg, "registering the services: %s",
                        moor_strerror(rv));
        return rv;
    }
    for (unsigned i = 0; i < cfg->listen_client_urls.n; i++) {
        const struct srv_url *u = &cfg->listen_client_urls.urls[i];
        rv = rpc_server_listen(n->rpc, u->host, u->port, u->tls, NULL,
                               n->errmsg);
        if (rv != MOOR_OK) {
            return rv;
        }
        MOOR_LOG_INFO("node", "serving client requests", "url=%s", u->text);
    }
    /* --listen-metrics-urls: the same server (HTTP/1.1 /metrics, /health,
     * /version; gRPC is answered there too). */
    for (unsigned i = 0; i < cfg->listen_metrics_urls.n; i++) {
        const struct srv_url *u = &cfg->listen_metrics_urls.urls[i];
        rv = rpc_server_listen(n->rpc, u->host, u->port, u->tls, NULL,
                               n->errmsg);
        if (rv != MOOR_OK) {
            return rv;
        }
        MOOR_LOG_INFO("node", "serving metrics", "url=%s", u->text);
    }
    return MOOR_OK;
}

int srv_node_open(struct srv_node *n, uv_loop_t *loop,
                  const struct srv_config *cfg)
{
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->cfg = cfg;
    n->datadir.lock_fd = -1;
    int rv = ids_from_config(n);
    if (rv != MOOR_OK) {
        return rv;
    }

    rv = srv_obs_open(n);
    if (rv != MOOR_OK) {
        moor_errmsg_set(n->errmsg, "setting up metrics: out of memory");
        return rv;
    }
    rv = wal_datadir_open(&n->datadir, cfg->data_dir, n->errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    struct kv_options ko;
    kv_options_default(&ko);
    ko.max_txn_ops = cfg->max_txn_ops;
    /* etcd's minimum lease TTL: ceil(1.5 * election timeout). */
    ko.lease_min_ttl_s = (int64_t)((3u * cfg->election_ms + 1999u) / 2000u);
    rv = kv_store_new(&ko, &n->kv);
    if (rv != MOOR_OK) {
        moor_errmsg_set(n->errmsg, "creating the keyspace: out of memory");
        return rv;
    }

    /* The table of a new cluster; a snapshot's block or the membership
     * file replaces it below. */
    srv_members_from_config(cfg, &n->members);
    /* The newest snapshot that verifies, then the WAL after it. */
    struct srv_snap_pos pos = {0, 0};
    rv = srv_snap_load(n, &pos);
    if (rv != MOOR_OK) {
        return rv;
    }
    const char *wal_dir =
        cfg->wal_dir[0] != '\0' ? cfg->wal_dir : n->datadir.wal_dir;
    bool restored = false;
    if (pos.index != 0 && dir_is_empty(wal_dir)) {
        /* `moorctl snapshot restore` made this data dir: a snapshot of a
         * new cluster and no WAL. Who we are is in its membership. */
        rv = identity_from_restore(n);
        if (rv != MOOR_OK) {
            return rv;
        }
        restored = true;
    } else if (pos.index == 0 && dir_is_empty(wal_dir) &&
               cfg->initial_cluster_state == SRV_CLUSTER_EXISTING) {
        /* A new member of a running cluster: its id, the cluster's and
         * the table come from the other members. */
        rv = srv_join_cluster(n);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    /* --wal-dir puts the WAL on its own disk. */
    if (cfg->wal_dir[0] != '\0' && mkdir(cfg->wal_dir, 0700) != 0 &&
        errno != EEXIST) {
        moor_errmsg_set(n->errmsg, "creating --wal-dir %s: %s", cfg->wal_dir,
                        strerror(errno));
        return moor_err_from_errno(errno);
    }
    struct wal_options wo;
    memset(&wo, 0, sizeof(wo));
    wo.dir = wal_dir;
    wo.max_wals = cfg->max_wals;
    wo.meta.cluster_id = n->cluster_id;
    wo.meta.member_id = n->member_id;
    wo.start.index = pos.index;
    wo.start.term = pos.term;
    wo.fs = srv_obs_wal_fs(n);
    wo.notify_cb = wal_notify;
    wo.notify_arg = n;
    struct wal_replay replay;
    memset(&replay, 0, sizeof(replay));
    uv_async_init(loop, &n->wal_async, wal_async_cb);
    n->async_open = true;
    rv = wal_open(&wo, &n->wal, &replay, n->errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (!replay.created) {
        /* A restart: the data dir says who we are; the initial flags are
         * ignored, as etcd does. */
        n->member_id = replay.meta.member_id;
        n->cluster_id = replay.meta.cluster_id;
        MOOR_LOG_INFO("node", "restarting from the data dir",
                      "member=%llx cluster=%llx entries=%zu term=%llu "
                      "commit=%llu",
                      (unsigned long long)n->member_id,
                      (unsigned long long)n->cluster_id, replay.entries_len,
                      (unsigned long long)replay.hard_state.term,
                      (unsigned long long)replay.hard_state.commit);
        if (pos.index == 0) {
            /* No snapshot yet: the table this member started with. */
            rv = srv_members_load_file(n);
            if (rv != MOOR_OK && rv != MOOR_ENOENT) {
                wal_replay_close(&replay);
                return rv;
            }
        }
    } else {
        rv = srv_members_save_file(n);
        if (rv != MOOR_OK) {
            wal_replay_close(&replay);
            return rv;
        }
    }
    if (restored) {
        /* The restored snapshot is committed by definition. */
        replay.hard_state.term = MOOR_MAX(replay.hard_state.term, pos.term);
        replay.hard_state.commit =
            MOOR_MAX(replay.hard_state.commit, pos.index);
    }

    /* Request ids: the member's low bits, then the start time, then a
     * counter, so ids of one member never repeat across restarts. */
    n->next_id = ((n->member_id & 0xffffu) << 48) |
                 ((moor_clock_realtime_ns() / 1000000u & 0xffffffffffull) << 8);
    struct raft_config rc;
    raft_config_init(&rc, n->member_id);
    /* The configuration of the table: the bootstrap one (the same on
     * every member of a new cluster and on every restart), or the
     * snapshot's. */
    srv_members_to_conf(&n->members, &rc.conf);
    rc.heartbeat_ticks = 1;
    rc.election_ticks = MOOR_MAX(cfg->election_ms / cfg->heartbeat_ms, 2u);
    rc.pre_vote = cfg->pre_vote;
    rc.check_quorum = true;
    rc.seed = n->member_id ^ moor_clock_ns();
    struct raft_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    snap.index = pos.index;
    snap.term = pos.term;
    snap.conf = rc.conf;
    struct raft_restore rs;
    memset(&rs, 0, sizeof(rs));
    rs.hard_state = replay.hard_state;
    n->hs_written = replay.hard_state;
    n->hs_latest = replay.hard_state;
    rs.snapshot = pos.index != 0 ? &snap : NULL;
    rs.entries = replay.entries;
    rs.n_entries = replay.entries_len;
    /* kv holds the snapshot's state and replays the log after it. */
    rs.applied = pos.index;
    rv = raft_node_new(&rc, &rs, &n->raft);
    wal_replay_close(&replay);
    if (rv != MOOR_OK) {
        moor_errmsg_set(n->errmsg, "restoring raft state: %s",
                        moor_strerror(rv));
        return rv;
    }

    rv = listen_all(n);
    if (rv != MOOR_OK) {
        return rv;
    }

    uv_timer_init(loop, &n->tick_timer);
    uv_timer_start(&n->tick_timer, tick_cb, cfg->heartbeat_ms,
                   cfg->heartbeat_ms);
    uv_check_init(loop, &n->check);
    uv_check_start(&n->check, check_cb);
    uv_signal_init(loop, &n->sigterm);
    uv_signal_init(loop, &n->sigint);
    n->sigterm.data = n;
    n->sigint.data = n;
    uv_signal_start(&n->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&n->sigint, signal_cb, SIGINT);
    n->loop_handles_open = true;

    rv = srv_peer_open(n);
    if (rv != MOOR_OK) {
        return rv;
    }
    /* The table, not --initial-cluster, says whom to dial after a
     * restart that followed membership changes. */
    for (unsigned i = 0; i < cfg->n_initial_members; i++) {
        uint64_t id = cfg->initial_members[i].id;
        if (id != n->member_id && srv_members_find(&n->members, id) == NULL) {
            srv_peer_remove(n, id);
        }
    }
    for (unsigned i = 0; i < n->members.n; i++) {
        const struct srv_member *m = &n->members.m[i];
        if (m->id != n->member_id) {
            srv_peer_add(n, m->id, &m->peer_urls);
        }
    }
    /* A single voter need not wait out an election timeout. */
    if (rc.conf.n == 1) {
        raft_node_campaign(n->raft);
    }
    srv_node_process(n);
    MOOR_LOG_INFO("node", "member started", "name=%s member=%llx cluster=%llx",
                  cfg->name, (unsigned long long)n->member_id,
                  (unsigned long long)n->cluster_id);
    return MOOR_OK;
}

void srv_node_close(struct srv_node *n)
{
    if (n->wal != NULL) {
        if (n->hs_dirty) {
            /* The newest commit index, so a clean restart applies up to
             * it before hearing from anyone. */
            struct wal_batch b;
            memset(&b, 0, sizeof(b));
            b.hard_state = &n->hs_latest;
            if (wal_append(n->wal, &b, NULL) != MOOR_OK) {
                MOOR_LOG_WARN("node", "cannot write the last hard state",
                              "detail=\"%s\"", wal_errmsg(n->wal));
            }
        }
        wal_close(n->wal); /* flushes what was appended */
        n->wal = NULL;
    }
    for (size_t i = 0; i < n->n_proposals; i++) {
        moor_bytes_unref(n->proposals[i]);
    }
    moor_free(n->proposals);
    moor_free(n->inflight);
    for (size_t i = 0; i < n->n_deferred; i++) {
        moor_buf_close(&n->deferred[i].frames);
    }
    moor_free(n->deferred);
    raft_node_free(n->raft);
    n->raft = NULL;
    if (n->kv != NULL) {
        kv_store_free(n->kv);
        n->kv = NULL;
    }
    wal_datadir_close(&n->datadir);
    srv_obs_close(n);
}

void srv_apply_check(struct srv_node *n, uint64_t index, int rv)
{
    (void)n;
    if (rv == MOOR_ENOMEM) {
        /* A committed entry cannot be skipped, nor left half applied
         * (kv.h): this member's state would part from the others'. A
         * restart replays the entry from the WAL. */
        moor_fatal("node",
                   "out of memory applying a committed entry, stopping the "
                   "member",
                   "index=%llu", (unsigned long long)index);
    }
}

void srv_header_fill(struct srv_node *n, Etcdserverpb__ResponseHeader *h,
                     int64_t revision)
{
    h->cluster_id = n->cluster_id;
    h->member_id = n->member_id;
    h->revision = revision;
    h->raft_term = raft_node_term(n->raft);
}
