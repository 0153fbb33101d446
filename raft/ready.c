/*
 * raft/ready.c: the node's output -- the ready batch, advance, persisted --
 * and the inspection calls. The contract is at the top of raft.h.
 */
#include "raft_int.h"

/* ------------------------------------------------------------------------
 * Output
 * ---------------------------------------------------------------------- */

/* The committed entries that are also durable here, not yet applied. */
static uint64_t apply_limit(const struct raft_node *n)
{
    if (n->snap_pending) {
        /* The snapshot goes first; entries follow in a later ready. */
        return n->applied;
    }
    uint64_t hi = MOOR_MIN(n->commit, n->log.persisted);
    if (hi <= n->applied) {
        return n->applied;
    }
    return MOOR_MIN(hi, n->applied + n->cfg.apply_entries_max);
}

bool raft_node_has_ready(const struct raft_node *n)
{
    return n->out_len > 0 || n->bcast_pending || n->snap_pending ||
           n->log.handed < raft__log_last(&n->log) ||
           apply_limit(n) > n->applied || n->rstates_len > 0 ||
           n->prev_hs.term != n->term || n->prev_hs.vote != n->vote ||
           n->prev_hs.commit != n->commit || n->prev_leader != n->leader ||
           n->prev_role != n->role;
}

/* Copies the outbox into rd: messages that may leave now first, then
 * those that wait for persistence (all of them when hold_all), resolving
 * each message's entries into out_ents (stable until advance). */
static void split_messages(struct raft_node *n, struct raft_ready *rd,
                           bool hold_all)
{
    size_t now = 0;
    for (size_t i = 0; i < n->out_len; i++) {
        now += !hold_all && !n->out[i].after ? 1u : 0u;
    }
    size_t in = 0;
    size_t ia = now;
    for (size_t i = 0; i < n->out_len; i++) {
        const struct raft_outmsg *o = &n->out[i];
        struct raft_message *dst =
            !hold_all && !o->after ? &n->rd_msgs[in++] : &n->rd_msgs[ia++];
        *dst = o->msg;
        dst->entries = o->msg.n_entries > 0 ? &n->out_ents[o->ents_off] : NULL;
    }
    rd->msgs = now > 0 ? n->rd_msgs : NULL;
    rd->n_msgs = now;
    rd->msgs_after = n->out_len > now ? n->rd_msgs + now : NULL;
    rd->n_msgs_after = n->out_len - now;
}

int raft_node_ready(struct raft_node *n, struct raft_ready *rd)
{
    memset(rd, 0, sizeof(*rd));
    if (n->bcast_pending && n->role == RAFT_LEADER) {
        raft__bcast_append(n);
    }
    n->bcast_pending = false;
    if (n->rd_msgs_cap < n->out_len) {
        struct raft_message *p =
            moor_realloc(n->rd_msgs, n->out_len * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        n->rd_msgs = p;
        n->rd_msgs_cap = n->out_len;
    }
    rd->leader = n->leader;
    rd->role = n->role;
    rd->soft_state_changed =
        n->prev_leader != n->leader || n->prev_role != n->role;
    rd->hard_state.term = n->term;
    rd->hard_state.vote = n->vote;
    rd->hard_state.commit = n->commit;
    bool vote_changed =
        n->prev_hs.term != n->term || n->prev_hs.vote != n->vote;
    rd->hard_state_changed = vote_changed || n->prev_hs.commit != n->commit;

    if (n->snap_pending) {
        rd->snapshot = &n->snap;
        rd->persist_index = n->snap.index;
        rd->persist_term = n->snap.term;
    }
    n->rd_snapshot = n->snap_pending;
    uint64_t last = raft__log_last(&n->log);
    if (n->log.handed < last) {
        rd->entries = raft__log_at(&n->log, n->log.handed + 1);
        rd->n_entries = (size_t)(last - n->log.handed);
        rd->persist_index = last;
        rd->persist_term = raft__log_term(&n->log, last);
        n->log.handed = last;
    }
    rd->must_sync = vote_changed || rd->n_entries > 0 || rd->snapshot != NULL;

    split_messages(n, rd, vote_changed);
    uint64_t hi = apply_limit(n);
    if (hi > n->applied) {
        rd->committed = raft__log_at(&n->log, n->applied + 1);
        rd->n_committed = (size_t)(hi - n->applied);
    }
    n->rd_applied_to = hi;
    rd->read_states = n->rstates_len > 0 ? n->rstates : NULL;
    rd->n_read_states = n->rstates_len;
    n->rd_rstates = n->rstates_len;

    n->prev_hs = rd->hard_state;
    n->prev_leader = n->leader;
    n->prev_role = n->role;
    return MOOR_OK;
}

void raft_node_advance(struct raft_node *n, struct raft_ready *rd)
{
    raft__outbox_clear(n);
    if (n->rd_applied_to > n->applied) {
        n->applied = n->rd_applied_to;
    }
    if (n->rd_snapshot) {
        n->snap_pending = false;
        if (n->applied < n->snap.index) {
            n->applied = n->snap.index;
        }
    }
    n->rd_snapshot = false;
    for (size_t i = 0; i < n->rd_rstates; i++) {
        moor_bytes_unref(n->rstates[i].context);
    }
    if (n->rd_rstates > 0) {
        memmove(n->rstates, n->rstates + n->rd_rstates,
                (n->rstates_len - n->rd_rstates) * sizeof(*n->rstates));
        n->rstates_len -= n->rd_rstates;
    }
    n->rd_rstates = 0;
    memset(rd, 0, sizeof(*rd));
}

void raft_node_persisted(struct raft_node *n, uint64_t index, uint64_t term)
{
    if (index == 0 || index <= n->log.persisted || index > n->log.handed ||
        raft__log_term(&n->log, index) != term) {
        return;
    }
    n->log.persisted = index;
    if (n->role == RAFT_LEADER) {
        struct raft_progress *self = raft__progress(n, n->id);
        if (self != NULL && raft__progress_update(self, index) &&
            raft__maybe_commit(n) && n->role == RAFT_LEADER) {
            raft__bcast_append(n);
        }
    }
}

/* ------------------------------------------------------------------------
 * Inspection
 * ---------------------------------------------------------------------- */
uint64_t raft_node_id(const struct raft_node *n)
{
    return n->id;
}
uint64_t raft_node_term(const struct raft_node *n)
{
    return n->term;
}
uint64_t raft_node_leader(const struct raft_node *n)
{
    return n->leader;
}
enum raft_role raft_node_role(const struct raft_node *n)
{
    return (enum raft_role)n->role;
}
uint64_t raft_node_commit_index(const struct raft_node *n)
{
    return n->commit;
}
uint64_t raft_node_applied_index(const struct raft_node *n)
{
    return n->applied;
}
uint64_t raft_node_last_index(const struct raft_node *n)
{
    return raft__log_last(&n->log);
}
uint64_t raft_node_first_index(const struct raft_node *n)
{
    return raft__log_first(&n->log);
}
uint64_t raft_node_persisted_index(const struct raft_node *n)
{
    return n->log.persisted;
}
uint64_t raft_node_vote(const struct raft_node *n)
{
    return n->vote;
}
const struct raft_conf *raft_node_conf(const struct raft_node *n)
{
    return &n->conf;
}
const struct raft_entry *raft_node_entry(const struct raft_node *n,
                                         uint64_t index)
{
    if (index <= n->log.snap_index || index > raft__log_last(&n->log)) {
        return NULL;
    }
    return raft__log_at(&n->log, index);
}
uint64_t raft_node_term_at(const struct raft_node *n, uint64_t index)
{
    return raft__log_term(&n->log, index);
}
uint64_t raft_node_transferee(const struct raft_node *n)
{
    return n->transferee;
}
uint64_t raft_node_match_index(const struct raft_node *n, uint64_t id)
{
    if (n->role != RAFT_LEADER) {
        return 0;
    }
    if (id == n->id) {
        return raft__log_last(&n->log);
    }
    const struct raft_progress *pr =
        raft__progress((struct raft_node *)(uintptr_t)n, id);
    return pr != NULL ? pr->match : 0;
}
const struct raft_snapshot *raft_node_snapshot(const struct raft_node *n)
{
    return &n->snap;
}
