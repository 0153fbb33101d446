/*
 * raft/election.c: leader election (§5.2), pre-vote (thesis §9.6),
 * check-quorum (thesis §6.2), and becoming leader.
 */
#include "raft_int.h"

/* Sends (pre-)vote requests to every other voter and votes for itself. */
void raft__campaign(struct raft_node *n, bool pre, bool transfer)
{
    uint64_t term;
    if (pre) {
        /* Pre-candidates keep their term and vote: a member cut off from
         * the majority cannot inflate terms and disrupt it on rejoining. */
        raft__become_follower(n, n->term, 0);
        n->role = RAFT_PRE_CANDIDATE;
        term = n->term + 1;
    } else {
        raft__become_follower(n, n->term + 1, 0);
        n->role = RAFT_CANDIDATE;
        n->vote = n->id;
        term = n->term;
    }
    n->step = raft__step_candidate;
    uint32_t voters = raft_conf_voters(&n->conf);
    struct raft_progress *self = raft__progress(n, n->id);
    self->vote = 1;
    if (raft__vote_result(voters, 1, 0) == RAFT_VOTE_WON) {
        if (pre) {
            raft__campaign(n, false, transfer);
        } else {
            raft__become_leader(n);
        }
        return;
    }
    uint64_t last = raft__log_last(&n->log);
    uint64_t last_term = raft__log_last_term(&n->log);
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        const struct raft_progress *pr = &n->prs[i];
        if (pr->id == 0 || pr->id == n->id || pr->learner) {
            continue;
        }
        struct raft_message m = {
            .type = pre ? RAFT_MSG_PRE_VOTE : RAFT_MSG_VOTE,
            .to = pr->id,
            .term = term,
            .index = last,
            .log_term = last_term,
            .transfer = transfer,
        };
        (void)raft__send(n, &m);
    }
}

/* A (pre-)vote request at our term or, for pre-vote, a later one (the term
 * check in raft_node_step already ran). */
int raft__handle_vote(struct raft_node *n, const struct raft_message *m)
{
    bool pre = m->type == RAFT_MSG_PRE_VOTE;
    /* §5.2: one vote per term. A pre-vote for a later term commits to
     * nothing, so it may be granted even after voting. */
    bool can_vote = n->vote == m->from || (n->vote == 0 && n->leader == 0) ||
                    (pre && m->term > n->term);
    if (n->cfg.test_bugs & RAFT_BUG_VOTE_TWICE) {
        can_vote = true;
    }
    struct raft_message r = {
        .type = pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP,
        .to = m->from,
    };
    if (can_vote && raft__log_up_to_date(&n->log, m->log_term, m->index)) {
        /* A grant carries the requested term: for pre-vote it is a term
         * we have not reached. */
        r.term = m->term;
        if (!pre) {
            n->election_elapsed = 0;
            n->vote = m->from;
        }
    } else {
        r.reject = true;
        r.term = n->term;
    }
    return raft__send(n, &r);
}

int raft__handle_vote_resp(struct raft_node *n, const struct raft_message *m)
{
    bool pre = n->role == RAFT_PRE_CANDIDATE;
    if ((pre && m->type != RAFT_MSG_PRE_VOTE_RESP) ||
        (!pre && m->type != RAFT_MSG_VOTE_RESP)) {
        return MOOR_OK;
    }
    struct raft_progress *pr = raft__progress(n, m->from);
    if (pr == NULL || pr->learner) {
        return MOOR_OK;
    }
    if (pr->vote == 0) {
        pr->vote = m->reject ? -1 : 1;
    }
    uint32_t voters = 0;
    uint32_t granted = 0;
    uint32_t rejected = 0;
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        const struct raft_progress *p = &n->prs[i];
        if (p->id == 0 || p->learner) {
            continue;
        }
        voters++;
        granted += p->vote > 0 ? 1u : 0u;
        rejected += p->vote < 0 ? 1u : 0u;
    }
    switch (raft__vote_result(voters, granted, rejected)) {
    case RAFT_VOTE_WON:
        if (pre) {
            raft__campaign(n, false, m->transfer);
        } else {
            raft__become_leader(n);
        }
        break;
    case RAFT_VOTE_LOST:
        raft__become_follower(n, n->term, 0);
        break;
    default:
        break;
    }
    return MOOR_OK;
}

void raft__become_leader(struct raft_node *n)
{
    MOOR_ASSERT(n->role == RAFT_CANDIDATE);
    uint64_t term = n->term;
    uint64_t vote = n->vote;
    raft__become_follower(n, term, n->id);
    n->vote = vote;
    n->role = RAFT_LEADER;
    n->step = raft__step_leader;
    struct raft_progress *self = raft__progress(n, n->id);
    self->recent_active = true;
    raft__progress_become_replicate(self);
    self->match = n->log.persisted;
    self->next = raft__log_last(&n->log) + 1;
    /* §8: an empty entry of the new term, so that entries of earlier
     * terms commit with it (§5.4.2) and ReadIndex knows the commit index
     * is current (§6.4). */
    n->term_start_index = raft__log_last(&n->log) + 1;
    struct moor_bytes *none = NULL;
    int rv = raft__append_local(n, RAFT_ENTRY_NORMAL, &none, 1);
    MOOR_ASSERT(rv == MOOR_OK || rv == MOOR_ENOMEM);
    if (rv != MOOR_OK) {
        /* Without its empty entry the leader cannot commit; stand down and
         * let the election timeout retry. */
        raft__become_follower(n, term, 0);
        n->vote = vote;
    }
}

void raft__check_quorum(struct raft_node *n)
{
    uint32_t voters = 0;
    uint32_t active = 0;
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        struct raft_progress *pr = &n->prs[i];
        if (pr->id == 0) {
            continue;
        }
        if (!pr->learner) {
            voters++;
            if (pr->id == n->id || pr->recent_active) {
                active++;
            }
        }
        if (pr->id != n->id) {
            pr->recent_active = false;
        }
    }
    if (voters > 0 && active < voters / 2 + 1) {
        raft__become_follower(n, n->term, 0);
    }
}
