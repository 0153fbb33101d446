/*
 * raft/replication.c: log replication (§5.3), the commit rule (§5.4.2),
 * snapshots (§7), and the leader's step function.
 */
#include "raft_int.h"

/* ------------------------------------------------------------------------
 * Leader side
 * ---------------------------------------------------------------------- */

/* Appends entries of the current term to the leader's own log. The leader
 * counts itself toward a quorum only once they are durable (thesis
 * §10.2.1), so nothing here moves its own match. */
int raft__append_local(struct raft_node *n, uint8_t type,
                       struct moor_bytes *const *data, size_t n_data)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n_data; i++) {
        bytes += data[i] != NULL ? data[i]->len : 0;
    }
    /* The bound exempts an empty log tail, so one oversized proposal still
     * goes through rather than wedging the leader. */
    if (n->uncommitted_bytes > 0 &&
        n->uncommitted_bytes + bytes > n->cfg.uncommitted_bytes_max) {
        return MOOR_EDROPPED;
    }
    struct raft_entry ents[64];
    uint64_t index = raft__log_last(&n->log) + 1;
    size_t done = 0;
    while (done < n_data) {
        size_t k = MOOR_MIN(n_data - done, MOOR_ARRAY_LEN(ents));
        for (size_t i = 0; i < k; i++) {
            ents[i] = (struct raft_entry){.term = n->term,
                                          .index = index + done + i,
                                          .type = type,
                                          .data = data[done + i]};
        }
        int rv = raft__log_append(&n->log, ents, k);
        if (rv == MOOR_OK) {
            rv = raft__conf_on_append(n, ents, k);
        }
        if (rv != MOOR_OK) {
            /* Keep the log as it was: drop what this call appended. */
            if (done + k > 0 && raft__log_last(&n->log) >= index) {
                raft__conf_on_truncate(n, index);
                raft__log_truncate(&n->log, index);
            }
            return rv;
        }
        done += k;
    }
    n->uncommitted_bytes += bytes;
    n->bcast_pending = true;
    /* A lone voter commits as soon as its own write is durable. */
    return MOOR_OK;
}

static void send_snapshot(struct raft_node *n, struct raft_progress *pr)
{
    if (!pr->recent_active) {
        /* Do not push a snapshot at a member we have not heard from. */
        return;
    }
    struct raft_message m = {.type = RAFT_MSG_SNAPSHOT, .to = pr->id};
    m.snapshot = n->snap;
    if (raft__send(n, &m) == MOOR_OK) {
        raft__progress_become_snapshot(pr, n->snap.index);
    }
}

/* Sends pr the entries from pr->next, as many as the message bounds allow
 * (at least one), or a snapshot when they are compacted. Returns true when
 * a message was sent. */
bool raft__send_append(struct raft_node *n, struct raft_progress *pr,
                       bool send_if_empty)
{
    if (raft__progress_paused(pr)) {
        return false;
    }
    uint64_t last = raft__log_last(&n->log);
    uint64_t prev = pr->next - 1;
    if (prev < n->log.snap_index) {
        send_snapshot(n, pr);
        return false;
    }
    size_t count = 0;
    size_t bytes = 0;
    while (pr->next + count <= last && count < n->cfg.msg_entries_max) {
        const struct raft_entry *e = raft__log_at(&n->log, pr->next + count);
        size_t sz = e->data != NULL ? e->data->len : 0;
        if (count > 0 && bytes + sz > n->cfg.msg_bytes_max) {
            break;
        }
        bytes += sz;
        count++;
    }
    if (count == 0 && !send_if_empty) {
        return false;
    }
    struct raft_message m = {
        .type = RAFT_MSG_APPEND,
        .to = pr->id,
        .index = prev,
        .log_term = raft__log_term(&n->log, prev),
        .commit = n->commit,
    };
    const struct raft_entry *ents =
        count > 0 ? raft__log_at(&n->log, pr->next) : NULL;
    if (raft__send_with_entries(n, &m, ents, count) != MOOR_OK) {
        return false;
    }
    if (count > 0) {
        uint64_t sent_last = pr->next + count - 1;
        if (pr->state == RAFT_PR_REPLICATE) {
            pr->next = sent_last + 1;
            raft__inflights_add(&pr->inflights, sent_last);
        } else {
            pr->probe_sent = true;
        }
    } else if (pr->state == RAFT_PR_PROBE) {
        pr->probe_sent = true;
    }
    return true;
}

void raft__bcast_append(struct raft_node *n)
{
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        struct raft_progress *pr = &n->prs[i];
        if (pr->id == 0 || pr->id == n->id) {
            continue;
        }
        /* Fill the window: several messages when bytes bound each one. */
        bool first = true;
        while (raft__send_append(n, pr, first)) {
            first = false;
            if (pr->state != RAFT_PR_REPLICATE ||
                pr->next > raft__log_last(&n->log)) {
                break;
            }
        }
    }
}

void raft__bcast_heartbeat(struct raft_node *n, uint64_t round)
{
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        const struct raft_progress *pr = &n->prs[i];
        if (pr->id == 0 || pr->id == n->id) {
            continue;
        }
        /* The follower may have less than our commit: tell it no more
         * than it is known to hold. */
        struct raft_message m = {
            .type = RAFT_MSG_HEARTBEAT,
            .to = pr->id,
            .commit = MOOR_MIN(pr->match, n->commit),
            .round = round,
        };
        (void)raft__send(n, &m);
    }
}

void raft__commit_to(struct raft_node *n, uint64_t index)
{
    if (index <= n->commit) {
        return;
    }
    MOOR_ASSERT(index <= raft__log_last(&n->log));
    uint64_t old = n->commit;
    n->commit = index;
    if (n->role != RAFT_LEADER) {
        return;
    }
    for (uint64_t i = old + 1; i <= index; i++) {
        const struct raft_entry *e = raft__log_at(&n->log, i);
        size_t sz = e->data != NULL ? e->data->len : 0;
        if (e->term == n->term) {
            n->uncommitted_bytes -= MOOR_MIN(sz, n->uncommitted_bytes);
        }
    }
    raft__read_on_commit(n);
    /* Thesis §4.2.2: a leader not in the configuration it just committed
     * steps down. */
    if (!raft__is_voter(n, n->id) && raft__conf_last_index(n) <= index) {
        raft__become_follower(n, n->term, 0);
    }
}

/* §5.3, §5.4.2: the highest index a majority of voters hold durably, if
 * its entry is of the current term. Returns true when commit moved. */
bool raft__maybe_commit(struct raft_node *n)
{
    uint64_t match[RAFT_MEMBERS_MAX];
    size_t k = 0;
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        const struct raft_progress *pr = &n->prs[i];
        if (pr->id != 0 && !pr->learner) {
            match[k++] = pr->match;
        }
    }
    if (k == 0) {
        return false;
    }
    uint64_t q = raft__quorum_index(match, k);
    if (q <= n->commit) {
        return false;
    }
    /* Figure 8: counting replicas commits only entries of this term; older
     * ones commit with them. */
    if (raft__log_term(&n->log, q) != n->term &&
        !(n->cfg.test_bugs & RAFT_BUG_COMMIT_OLD_TERM)) {
        return false;
    }
    raft__commit_to(n, q);
    return true;
}

int raft__handle_append_resp(struct raft_node *n, const struct raft_message *m)
{
    struct raft_progress *pr = raft__progress(n, m->from);
    if (pr == NULL) {
        return MOOR_OK;
    }
    pr->recent_active = true;
    if (m->reject) {
        /* Fast backtracking: the follower's hint (its last index with a
         * term <= the probed entry's) and our own log give the next probe
         * point, skipping a whole term per round trip. */
        uint64_t hint = m->reject_hint;
        if (m->log_term > 0) {
            hint = raft__log_find_conflict_by_term(&n->log, hint, m->log_term);
        }
        if (raft__progress_decrease(pr, m->index, hint)) {
            if (pr->state == RAFT_PR_REPLICATE) {
                raft__progress_become_probe(pr);
            }
            raft__send_append(n, pr, true);
        }
        return MOOR_OK;
    }
    bool was_paused = raft__progress_paused(pr);
    if (!raft__progress_update(pr, m->index)) {
        if (was_paused && !raft__progress_paused(pr)) {
            raft__send_append(n, pr, false);
        }
        return MOOR_OK;
    }
    switch (pr->state) {
    case RAFT_PR_PROBE:
        raft__progress_become_replicate(pr);
        break;
    case RAFT_PR_SNAPSHOT:
        if (pr->match >= pr->pending_snapshot) {
            raft__progress_become_probe(pr);
            raft__progress_become_replicate(pr);
        }
        break;
    default:
        raft__inflights_free_le(&pr->inflights, m->index);
        break;
    }
    if (raft__maybe_commit(n)) {
        if (n->role != RAFT_LEADER) {
            return MOOR_OK;
        }
        raft__bcast_append(n);
    } else {
        while (raft__send_append(n, pr, false)) {
            if (pr->state != RAFT_PR_REPLICATE) {
                break;
            }
        }
    }
    if (m->from == n->transferee && pr->match == raft__log_last(&n->log)) {
        struct raft_message t = {.type = RAFT_MSG_TIMEOUT_NOW, .to = m->from};
        return raft__send(n, &t);
    }
    return MOOR_OK;
}

int raft__handle_heartbeat_resp(struct raft_node *n,
                                const struct raft_message *m)
{
    struct raft_progress *pr = raft__progress(n, m->from);
    if (pr == NULL) {
        return MOOR_OK;
    }
    pr->recent_active = true;
    pr->probe_sent = false;
    /* Appends may have been lost: with the window full nothing would ever
     * free it, so one slot goes per heartbeat answer; and an empty append
     * at next - 1 makes a follower that missed entries say so. */
    if (pr->state == RAFT_PR_REPLICATE &&
        raft__inflights_full(&pr->inflights)) {
        raft__inflights_free_first(&pr->inflights);
    }
    if (pr->match < raft__log_last(&n->log)) {
        raft__send_append(n, pr, true);
    }
    if (m->round > pr->read_round) {
        pr->read_round = m->round;
        raft__read_on_ack(n);
    }
    return MOOR_OK;
}

int raft__step_leader(struct raft_node *n, const struct raft_message *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP:
        return raft__handle_append_resp(n, m);
    case RAFT_MSG_HEARTBEAT_RESP:
        return raft__handle_heartbeat_resp(n, m);
    case RAFT_MSG_PROPOSE: {
        if (n->transferee != 0 || m->n_entries == 0 ||
            m->n_entries > n->cfg.msg_entries_max) {
            return MOOR_OK;
        }
        struct moor_bytes *data[64];
        size_t done = 0;
        while (done < m->n_entries) {
            size_t k = MOOR_MIN(m->n_entries - done, MOOR_ARRAY_LEN(data));
            for (size_t i = 0; i < k; i++) {
                data[i] = m->entries[done + i].data;
            }
            int rv = raft__append_local(n, RAFT_ENTRY_NORMAL, data, k);
            if (rv != MOOR_OK) {
                return rv == MOOR_ENOMEM ? rv : MOOR_OK;
            }
            done += k;
        }
        return MOOR_OK;
    }
    case RAFT_MSG_READ_INDEX: {
        int rv = raft__read_index_leader(n, m->from, m->context);
        return rv == MOOR_ENOMEM ? rv : MOOR_OK;
    }
    default:
        return MOOR_OK;
    }
}

/* ------------------------------------------------------------------------
 * Follower side
 * ---------------------------------------------------------------------- */

int raft__handle_append(struct raft_node *n, const struct raft_message *m)
{
    struct raft_message r = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
    if (m->index < n->commit) {
        /* Everything up to our commit index matches the leader's log
         * (§5.4.3); tell it where we are. */
        r.index = n->commit;
        return raft__send(n, &r);
    }
    bool skip = (n->cfg.test_bugs & RAFT_BUG_SKIP_PREV_CHECK) != 0;
    if ((!skip && raft__log_term(&n->log, m->index) != m->log_term) ||
        m->index > raft__log_last(&n->log)) {
        /* §5.3: reject, with a hint that lets the leader skip a term at a
         * time: our last index whose term is <= the probed one. */
        uint64_t hint = MOOR_MIN(m->index, raft__log_last(&n->log));
        hint = raft__log_find_conflict_by_term(&n->log, hint, m->log_term);
        r.reject = true;
        r.index = m->index;
        r.reject_hint = hint;
        r.log_term = raft__log_term(&n->log, hint);
        return raft__send(n, &r);
    }
    /* Skip the entries we already have; truncate at the first conflict
     * (§5.3 step 3), then append the rest. */
    size_t i = 0;
    while (i < m->n_entries) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index > raft__log_last(&n->log) ||
            raft__log_term(&n->log, e->index) != e->term) {
            break;
        }
        i++;
    }
    if (i < m->n_entries) {
        uint64_t at = m->entries[i].index;
        MOOR_ASSERT(at == m->index + 1 + i);
        if (at <= raft__log_last(&n->log)) {
            /* Committed entries never change (§5.4). */
            MOOR_ASSERT(at > n->commit);
            raft__conf_on_truncate(n, at);
            raft__log_truncate(&n->log, at);
        }
        int rv = raft__log_append(&n->log, &m->entries[i], m->n_entries - i);
        if (rv == MOOR_OK) {
            rv = raft__conf_on_append(n, &m->entries[i], m->n_entries - i);
        }
        if (rv != MOOR_OK) {
            raft__conf_on_truncate(n, at);
            raft__log_truncate(&n->log, at);
            return rv;
        }
    }
    uint64_t last_new = m->index + m->n_entries;
    raft__commit_to(n, MOOR_MIN(m->commit, last_new));
    r.index = last_new;
    return raft__send(n, &r);
}

int raft__handle_heartbeat(struct raft_node *n, const struct raft_message *m)
{
    raft__commit_to(n, MOOR_MIN(m->commit, raft__log_last(&n->log)));
    struct raft_message r = {
        .type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .round = m->round};
    return raft__send(n, &r);
}

void raft__restore_snapshot(struct raft_node *n, const struct raft_snapshot *s)
{
    raft__log_reset(&n->log, s->index, s->term);
    moor_bytes_unref(n->snap.data);
    n->snap = *s;
    n->snap.data = moor_bytes_ref(s->data);
    n->snap_pending = true;
    n->commit = s->index;
    raft__conf_reset(n, &s->conf);
}

int raft__handle_snapshot(struct raft_node *n, const struct raft_message *m)
{
    const struct raft_snapshot *s = &m->snapshot;
    struct raft_message r = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
    if (s->index <= n->commit) {
        r.index = n->commit;
        return raft__send(n, &r);
    }
    if (raft__log_term(&n->log, s->index) == s->term) {
        /* We hold the snapshot's last entry: its prefix matches (§5.3),
         * so only the commit index moves. */
        raft__commit_to(n, s->index);
    } else {
        raft__restore_snapshot(n, s);
    }
    r.index = s->index;
    return raft__send(n, &r);
}
