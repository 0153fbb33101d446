/*
 * raft/node.c: the node's lifecycle, its input (tick, step, the public
 * calls) and the outbox its messages wait in until the next ready.
 *
 * Step dispatch follows Figure 2's "Rules for Servers": every message first
 * passes the term check (§5.1, with pre-vote's and the leader lease's
 * exceptions, thesis §9.6 and §4.2.3), then the role's step function.
 */
#include "raft_int.h"

void raft_config_init(struct raft_config *c, uint64_t id)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->election_ticks = 10;
    c->heartbeat_ticks = 1;
    c->inflight_max = 256;
    c->msg_bytes_max = 1u << 20;
    c->msg_entries_max = 4096;
    c->uncommitted_bytes_max = 64u << 20;
    c->read_index_max = 4096;
    c->apply_entries_max = 4096;
    c->pre_vote = true;
    c->check_quorum = true;
    c->seed = id;
}

const char *raft_message_type_name(uint8_t type)
{
    static const char *const names[] = {
        "?",
        "APPEND",
        "APPEND_RESP",
        "VOTE",
        "VOTE_RESP",
        "PRE_VOTE",
        "PRE_VOTE_RESP",
        "HEARTBEAT",
        "HEARTBEAT_RESP",
        "SNAPSHOT",
        "TIMEOUT_NOW",
        "PROPOSE",
        "READ_INDEX",
        "READ_INDEX_RESP",
    };
    return type < MOOR_ARRAY_LEN(names) ? names[type] : "?";
}

static bool conf_valid(const struct raft_conf *c)
{
    if (c->n > RAFT_MEMBERS_MAX) {
        return false;
    }
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->members[i].id == 0) {
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (c->members[j].id == c->members[i].id) {
                return false;
            }
        }
    }
    return true;
}

static bool config_valid(const struct raft_config *c)
{
    return c->id != 0 && c->heartbeat_ticks >= 1 &&
           c->election_ticks > c->heartbeat_ticks && c->inflight_max >= 1 &&
           c->msg_entries_max >= 1 && c->apply_entries_max >= 1 &&
           conf_valid(&c->conf);
}

int raft_node_new(const struct raft_config *config,
                  const struct raft_restore *restore, struct raft_node **out)
{
    static const struct raft_restore empty;
    if (restore == NULL) {
        restore = &empty;
    }
    if (!config_valid(config)) {
        return MOOR_EINVAL;
    }
    const struct raft_snapshot *s = restore->snapshot;
    uint64_t snap_index = s != NULL ? s->index : 0;
    uint64_t snap_term = s != NULL ? s->term : 0;
    for (size_t i = 0; i < restore->n_entries; i++) {
        if (restore->entries[i].index != snap_index + 1 + i) {
            return MOOR_EINVAL;
        }
    }
    if (s != NULL && !conf_valid(&s->conf)) {
        return MOOR_EINVAL;
    }
    uint64_t last = snap_index + restore->n_entries;
    const struct raft_hard_state *hs = &restore->hard_state;
    if (hs->commit > last || restore->applied > last) {
        return MOOR_EINVAL;
    }

    struct raft_node *n = moor_calloc(1, sizeof(*n));
    if (n == NULL) {
        return MOOR_ENOMEM;
    }
    n->cfg = *config;
    n->id = config->id;
    n->inflight_buf = moor_calloc(
        (size_t)RAFT_MEMBERS_MAX * config->inflight_max, sizeof(uint64_t));
    if (n->inflight_buf == NULL) {
        moor_free(n);
        return MOOR_ENOMEM;
    }
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        n->prs[i].inflights.buf = n->inflight_buf + i * config->inflight_max;
        n->prs[i].inflights.cap = config->inflight_max;
    }
    moor_prng_seed(&n->prng, config->seed);
    raft__log_init(&n->log, snap_index, snap_term);
    if (raft__log_append(&n->log, restore->entries, restore->n_entries) !=
        MOOR_OK) {
        raft_node_free(n);
        return MOOR_ENOMEM;
    }
    n->log.handed = last;
    n->log.persisted = last;
    if (s != NULL) {
        n->snap = *s;
        n->snap.data = moor_bytes_ref(s->data);
    }
    n->term = hs->term;
    n->vote = hs->vote;
    n->commit = MOOR_MAX(hs->commit, snap_index);
    n->applied = MOOR_MAX(restore->applied, snap_index);
    if (n->applied > n->commit) {
        n->commit = n->applied;
    }
    raft__conf_reset(n, s != NULL && s->index > 0 ? &s->conf : &config->conf);
    if (raft__conf_on_append(n, restore->entries, restore->n_entries) !=
        MOOR_OK) {
        raft_node_free(n);
        return MOOR_ENOMEM;
    }
    raft__become_follower(n, n->term, 0);
    n->prev_hs.term = n->term;
    n->prev_hs.vote = n->vote;
    n->prev_hs.commit = n->commit;
    n->prev_role = RAFT_FOLLOWER;
    *out = n;
    return MOOR_OK;
}

void raft__outbox_clear(struct raft_node *n)
{
    for (size_t i = 0; i < n->out_len; i++) {
        moor_bytes_unref(n->out[i].msg.snapshot.data);
        moor_bytes_unref(n->out[i].msg.context);
    }
    n->out_len = 0;
    for (size_t i = 0; i < n->out_ents_len; i++) {
        moor_bytes_unref(n->out_ents[i].data);
    }
    n->out_ents_len = 0;
}

void raft_node_free(struct raft_node *n)
{
    if (n == NULL) {
        return;
    }
    raft__outbox_clear(n);
    raft__read_drop_all(n);
    for (size_t i = 0; i < n->rstates_len; i++) {
        moor_bytes_unref(n->rstates[i].context);
    }
    moor_bytes_unref(n->snap.data);
    raft__log_close(&n->log);
    moor_free(n->conf_idx);
    moor_free(n->inflight_buf);
    moor_free(n->reads);
    moor_free(n->rstates);
    moor_free(n->out);
    moor_free(n->out_ents);
    moor_free(n->rd_msgs);
    moor_free(n);
}

/* ------------------------------------------------------------------------
 * Outbox
 * ---------------------------------------------------------------------- */

static int outbox_reserve(struct raft_node *n, size_t count)
{
    if (n->out_len == n->out_cap) {
        size_t cap = n->out_cap == 0 ? 16 : n->out_cap * 2;
        struct raft_outmsg *p = moor_realloc(n->out, cap * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        n->out = p;
        n->out_cap = cap;
    }
    if (n->out_ents_len + count > n->out_ents_cap) {
        size_t cap = n->out_ents_cap == 0 ? 64 : n->out_ents_cap;
        while (cap < n->out_ents_len + count) {
            cap *= 2;
        }
        struct raft_entry *p = moor_realloc(n->out_ents, cap * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        n->out_ents = p;
        n->out_ents_cap = cap;
    }
    return MOOR_OK;
}

/* Which messages wait for persistence: an ack of entries (APPEND_RESP) and
 * a granted vote (it records our vote). Everything else may leave at once,
 * unless the ready changes term or vote, in which case raft_node_ready
 * holds every message back (a leader must not act in a term it has not
 * made durable, or a restart could vote twice in it). */
static bool needs_persist(const struct raft_message *m)
{
    return m->type == RAFT_MSG_APPEND_RESP || m->type == RAFT_MSG_VOTE_RESP;
}

int raft__send_with_entries(struct raft_node *n, struct raft_message *m,
                            const struct raft_entry *ents, size_t count)
{
    if (outbox_reserve(n, count) != MOOR_OK) {
        return MOOR_ENOMEM;
    }
    struct raft_outmsg *o = &n->out[n->out_len++];
    o->msg = *m;
    o->msg.from = n->id;
    if (m->type != RAFT_MSG_PROPOSE && m->type != RAFT_MSG_READ_INDEX &&
        m->term == 0) {
        o->msg.term = n->term;
    }
    o->msg.entries = NULL;
    o->msg.n_entries = count;
    o->msg.snapshot.data = moor_bytes_ref(m->snapshot.data);
    o->msg.context = moor_bytes_ref(m->context);
    o->ents_off = n->out_ents_len;
    o->after =
        needs_persist(m) && !(m->type == RAFT_MSG_APPEND_RESP &&
                              (n->cfg.test_bugs & RAFT_BUG_ACK_UNDURABLE));
    for (size_t i = 0; i < count; i++) {
        n->out_ents[n->out_ents_len + i] = ents[i];
        moor_bytes_ref(ents[i].data);
    }
    n->out_ents_len += count;
    return MOOR_OK;
}

int raft__send(struct raft_node *n, struct raft_message *m)
{
    return raft__send_with_entries(n, m, NULL, 0);
}

/* ------------------------------------------------------------------------
 * Helpers shared by the roles
 * ---------------------------------------------------------------------- */

struct raft_progress *raft__progress(struct raft_node *n, uint64_t id)
{
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        if (n->prs[i].id == id && id != 0) {
            return &n->prs[i];
        }
    }
    return NULL;
}

bool raft__is_voter(const struct raft_node *n, uint64_t id)
{
    const struct raft_member *m = raft_conf_find(&n->conf, id);
    return m != NULL && !m->learner;
}

void raft__reset_timeout(struct raft_node *n)
{
    n->election_elapsed = 0;
    n->heartbeat_elapsed = 0;
    n->randomized_timeout =
        n->cfg.election_ticks +
        (uint32_t)moor_prng_below(&n->prng, n->cfg.election_ticks);
}

static void reset_term(struct raft_node *n, uint64_t term)
{
    if (n->term != term) {
        n->term = term;
        n->vote = 0;
    }
    n->leader = 0;
    raft__reset_timeout(n);
    n->transferee = 0;
    n->bcast_pending = false;
    n->uncommitted_bytes = 0;
    raft__read_drop_all(n);
    uint64_t next = raft__log_last(&n->log) + 1;
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        if (n->prs[i].id != 0) {
            raft__progress_reset(&n->prs[i], next);
            if (n->prs[i].id == n->id) {
                n->prs[i].match = n->log.persisted;
            }
        }
    }
}

void raft__become_follower(struct raft_node *n, uint64_t term, uint64_t leader)
{
    reset_term(n, term);
    n->role = RAFT_FOLLOWER;
    n->step = raft__step_follower;
    n->leader = leader;
}

/* ------------------------------------------------------------------------
 * Input
 * ---------------------------------------------------------------------- */

void raft_node_tick(struct raft_node *n)
{
    n->election_elapsed++;
    if (n->role != RAFT_LEADER) {
        if (n->election_elapsed >= n->randomized_timeout &&
            raft__is_voter(n, n->id)) {
            n->election_elapsed = 0;
            raft__campaign(n, n->cfg.pre_vote, false);
        }
        return;
    }
    n->heartbeat_elapsed++;
    if (n->election_elapsed >= n->cfg.election_ticks) {
        n->election_elapsed = 0;
        if (n->cfg.check_quorum) {
            raft__check_quorum(n);
            if (n->role != RAFT_LEADER) {
                return;
            }
        }
        /* A transfer that did not finish within an election timeout is
         * abandoned (thesis §3.10). */
        n->transferee = 0;
    }
    if (n->heartbeat_elapsed >= n->cfg.heartbeat_ticks) {
        n->heartbeat_elapsed = 0;
        /* Regular heartbeats carry the read round in flight: a quorum's
         * answer to any heartbeat sent after the round began confirms it
         * (§6.4), so losing the round's first heartbeat, or its answers,
         * delays reads by a heartbeat instead of stalling them for good
         * (found by the chaos harness's loss nemesis). */
        raft__bcast_heartbeat(n, n->read_round_inflight ? n->read_round : 0);
    }
}

/* The leader lease (thesis §4.2.3): a member that heard from a leader
 * within the minimum election timeout ignores vote requests, so a member
 * that rejoins with a higher term (or a removed member that missed its
 * removal) cannot depose a healthy leader. Only with check_quorum: without
 * it a leader cut off from the majority never steps down, and a member
 * whose term had moved past it could never be heard again. */
static bool in_lease(const struct raft_node *n)
{
    return n->cfg.check_quorum && n->leader != 0 &&
           n->election_elapsed < n->cfg.election_ticks;
}

/* The shape every correct peer's message has; anything else is dropped
 * (raft asserts its own invariants, never a peer's input). */
static bool message_valid(const struct raft_node *n,
                          const struct raft_message *m)
{
    if (m->to != n->id || m->from == 0 || m->from == n->id ||
        m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_READ_INDEX_RESP) {
        return false;
    }
    if (m->n_entries > 0 && m->entries == NULL) {
        return false;
    }
    if (m->type == RAFT_MSG_APPEND) {
        uint64_t prev_term = m->log_term;
        for (size_t i = 0; i < m->n_entries; i++) {
            const struct raft_entry *e = &m->entries[i];
            if (e->index != m->index + 1 + i || e->term < prev_term ||
                e->term > m->term) {
                return false;
            }
            prev_term = e->term;
        }
        return m->log_term <= m->term;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        return m->snapshot.index > 0 && m->snapshot.term <= m->term &&
               conf_valid(&m->snapshot.conf);
    }
    return m->type == RAFT_MSG_PROPOSE || m->n_entries == 0;
}

int raft_node_step(struct raft_node *n, const struct raft_message *m)
{
    if (!message_valid(n, m)) {
        return MOOR_OK;
    }
    bool termless =
        m->type == RAFT_MSG_PROPOSE || m->type == RAFT_MSG_READ_INDEX;
    if (termless) {
        return n->step(n, m);
    }
    bool vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE;
    if (m->term > n->term) {
        if (vote_req && !m->transfer && in_lease(n)) {
            return MOOR_OK;
        }
        if (m->type == RAFT_MSG_PRE_VOTE ||
            (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject)) {
            /* Pre-vote does not change terms: the request carries the term
             * the candidate would use, a grant echoes it. */
        } else {
            bool from_leader = m->type == RAFT_MSG_APPEND ||
                               m->type == RAFT_MSG_HEARTBEAT ||
                               m->type == RAFT_MSG_SNAPSHOT;
            raft__become_follower(n, m->term, from_leader ? m->from : 0);
        }
    } else if (m->term < n->term) {
        if ((n->cfg.check_quorum || n->cfg.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)) {
            /* A stale leader (its term lost to a disrupted election it
             * never saw, since pre-vote kept terms from spreading) learns
             * our term and steps down. */
            struct raft_message r = {.type = RAFT_MSG_APPEND_RESP,
                                     .to = m->from};
            return raft__send(n, &r);
        }
        if (m->type == RAFT_MSG_PRE_VOTE) {
            struct raft_message r = {
                .type = RAFT_MSG_PRE_VOTE_RESP, .to = m->from, .reject = true};
            return raft__send(n, &r);
        }
        return MOOR_OK;
    }
    if (vote_req) {
        return raft__handle_vote(n, m);
    }
    return n->step(n, m);
}

int raft__step_follower(struct raft_node *n, const struct raft_message *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
        n->election_elapsed = 0;
        n->leader = m->from;
        return raft__handle_append(n, m);
    case RAFT_MSG_HEARTBEAT:
        n->election_elapsed = 0;
        n->leader = m->from;
        return raft__handle_heartbeat(n, m);
    case RAFT_MSG_SNAPSHOT:
        n->election_elapsed = 0;
        n->leader = m->from;
        return raft__handle_snapshot(n, m);
    case RAFT_MSG_TIMEOUT_NOW:
        if (raft__is_voter(n, n->id)) {
            /* Leader transfer: campaign at once, skipping pre-vote, and ask
             * voters to ignore their lease (thesis §3.10). */
            raft__campaign(n, false, true);
        }
        return MOOR_OK;
    case RAFT_MSG_READ_INDEX_RESP:
        return raft__read_state_push(n, m->index, m->context);
    default:
        /* PROPOSE and READ_INDEX at a follower are dropped: forwarding them
         * again could loop. */
        return MOOR_OK;
    }
}

int raft__step_candidate(struct raft_node *n, const struct raft_message *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        /* A leader of our term (or, while pre-candidate, of a term we have
         * not reached) exists (§5.2). */
        raft__become_follower(n, m->term, m->from);
        return raft__step_follower(n, m);
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PRE_VOTE_RESP:
        return raft__handle_vote_resp(n, m);
    default:
        return MOOR_OK;
    }
}

/* ------------------------------------------------------------------------
 * Public calls
 * ---------------------------------------------------------------------- */

int raft_node_propose(struct raft_node *n, struct moor_bytes *const *data,
                      size_t n_data)
{
    if (n_data > n->cfg.msg_entries_max) {
        return MOOR_ETOOBIG;
    }
    if (n->role == RAFT_LEADER) {
        if (n->transferee != 0) {
            return MOOR_EDROPPED;
        }
        return raft__append_local(n, RAFT_ENTRY_NORMAL, data, n_data);
    }
    if (n->leader == 0 || n->role != RAFT_FOLLOWER) {
        return MOOR_ENOLEADER;
    }
    struct raft_entry ents[64];
    struct raft_message m = {.type = RAFT_MSG_PROPOSE, .to = n->leader};
    /* Forward in chunks (the outbox copies the entries). */
    size_t done = 0;
    while (done < n_data) {
        size_t k = MOOR_MIN(n_data - done, MOOR_ARRAY_LEN(ents));
        for (size_t i = 0; i < k; i++) {
            ents[i] = (struct raft_entry){.type = RAFT_ENTRY_NORMAL,
                                          .data = data[done + i]};
        }
        int rv = raft__send_with_entries(n, &m, ents, k);
        if (rv != MOOR_OK) {
            return rv;
        }
        done += k;
    }
    return MOOR_OK;
}

int raft_node_propose_conf_change(struct raft_node *n,
                                  const struct raft_conf_change *cc)
{
    if (n->role != RAFT_LEADER) {
        return MOOR_ENOTLEADER;
    }
    if (n->transferee != 0) {
        return MOOR_EDROPPED;
    }
    if (raft__conf_last_index(n) > n->commit ||
        n->commit < n->term_start_index) {
        return MOOR_EBUSY;
    }
    struct raft_conf next = n->conf;
    if (raft_conf_apply(&next, cc) != MOOR_OK || raft_conf_voters(&next) == 0) {
        return MOOR_EINVAL;
    }
    struct moor_bytes *b = raft_conf_change_encode(cc);
    if (b == NULL) {
        return MOOR_ENOMEM;
    }
    int rv = raft__append_local(n, RAFT_ENTRY_CONF_CHANGE, &b, 1);
    moor_bytes_unref(b);
    return rv;
}

int raft_node_read_index(struct raft_node *n, struct moor_bytes *context)
{
    if (n->role == RAFT_LEADER) {
        return raft__read_index_leader(n, n->id, context);
    }
    if (n->leader == 0 || n->role != RAFT_FOLLOWER) {
        return MOOR_ENOLEADER;
    }
    struct raft_message m = {
        .type = RAFT_MSG_READ_INDEX, .to = n->leader, .context = context};
    return raft__send(n, &m);
}

int raft_node_transfer_leader(struct raft_node *n, uint64_t to)
{
    if (n->role != RAFT_LEADER) {
        return MOOR_ENOTLEADER;
    }
    struct raft_progress *pr = raft__progress(n, to);
    if (to == n->id || pr == NULL || pr->learner) {
        return MOOR_EINVAL;
    }
    if (n->transferee == to) {
        return MOOR_OK;
    }
    n->transferee = to;
    n->election_elapsed = 0;
    if (pr->match == raft__log_last(&n->log)) {
        struct raft_message m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = to};
        return raft__send(n, &m);
    }
    raft__send_append(n, pr, true);
    return MOOR_OK;
}

void raft_node_campaign(struct raft_node *n)
{
    if (n->role != RAFT_LEADER && raft__is_voter(n, n->id)) {
        raft__campaign(n, n->cfg.pre_vote, false);
    }
}

void raft_node_report_leader_lost(struct raft_node *n, uint64_t peer)
{
    if (n->role != RAFT_FOLLOWER || n->leader == 0 || n->leader != peer) {
        return;
    }
    n->leader = 0;
    /* Campaign soon, but not every follower at once: two that start
     * together split the vote and the election falls back to the
     * randomized timeout (a second or more with etcd's defaults). Every
     * follower knows the same voters, so each takes a distinct turn: its
     * rank among the voters other than the lost leader, by id, two ticks
     * apart (a tick's phase differs between members; two ticks keep the
     * turns at least one tick apart). The first turn's pre-vote wins unless
     * its log is behind, in which case a later turn does. */
    uint32_t rank = 0;
    for (uint32_t i = 0; i < n->conf.n; i++) {
        const struct raft_member *m = &n->conf.members[i];
        if (!m->learner && m->id != peer && m->id < n->id) {
            rank++;
        }
    }
    uint32_t wait = MOOR_MIN(1 + 2 * rank, n->cfg.election_ticks);
    n->election_elapsed = n->cfg.election_ticks;
    n->randomized_timeout = n->election_elapsed + wait;
}

void raft_node_report_unreachable(struct raft_node *n, uint64_t peer)
{
    struct raft_progress *pr = raft__progress(n, peer);
    if (n->role == RAFT_LEADER && pr != NULL && peer != n->id &&
        pr->state == RAFT_PR_REPLICATE) {
        raft__progress_become_probe(pr);
    }
}

void raft_node_report_snapshot(struct raft_node *n, uint64_t peer, bool ok)
{
    struct raft_progress *pr = raft__progress(n, peer);
    if (n->role != RAFT_LEADER || pr == NULL || pr->state != RAFT_PR_SNAPSHOT) {
        return;
    }
    if (!ok) {
        pr->pending_snapshot = 0;
    }
    /* Probe from after the snapshot (or from match, on failure), once the
     * next heartbeat answer shows the follower is there. */
    raft__progress_become_probe(pr);
    pr->probe_sent = true;
}

int raft_node_compact(struct raft_node *n, uint64_t index,
                      struct moor_bytes *data)
{
    if (index > n->applied || index <= n->log.snap_index ||
        index > raft__log_last(&n->log)) {
        return MOOR_EINVAL;
    }
    uint64_t term = raft__log_term(&n->log, index);
    raft__conf_on_compact(n, index);
    raft__log_compact(&n->log, index);
    moor_bytes_unref(n->snap.data);
    n->snap.index = index;
    n->snap.term = term;
    n->snap.conf = n->base_conf;
    n->snap.data = moor_bytes_ref(data);
    return MOOR_OK;
}
