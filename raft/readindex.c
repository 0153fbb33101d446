/*
 * raft/readindex.c: linearizable reads without log writes (§6.4).
 *
 * The leader answers a read with its commit index once it has confirmed,
 * after the read arrived, that it is still leader: a heartbeat round that
 * a majority acknowledges. Reads are batched into rounds: a round starts
 * when none is in flight, carrying every read queued so far; reads that
 * arrive meanwhile wait for the next round (acks of a round that started
 * before they arrived prove nothing about them). Before the leader has
 * committed an entry of its term its commit index may be stale (§6.4 step
 * 1), so rounds wait for that.
 */
#include "raft_int.h"

int raft__read_state_push(struct raft_node *n, uint64_t index,
                          struct moor_bytes *context)
{
    if (n->rstates_len == n->rstates_cap) {
        size_t cap = n->rstates_cap == 0 ? 16 : n->rstates_cap * 2;
        struct raft_read_state *p = moor_realloc(n->rstates, cap * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        n->rstates = p;
        n->rstates_cap = cap;
    }
    n->rstates[n->rstates_len].index = index;
    n->rstates[n->rstates_len].context = moor_bytes_ref(context);
    n->rstates_len++;
    return MOOR_OK;
}

/* Releases read req (removed from the queue by the caller). */
static void read_release(struct raft_node *n, struct raft_read_req *req)
{
    if (req->from == n->id) {
        (void)raft__read_state_push(n, req->index, req->context);
    } else {
        struct raft_message m = {.type = RAFT_MSG_READ_INDEX_RESP,
                                 .to = req->from,
                                 .index = req->index,
                                 .context = req->context};
        (void)raft__send(n, &m);
    }
    moor_bytes_unref(req->context);
    req->context = NULL;
}

static bool committed_in_term(const struct raft_node *n)
{
    return raft__log_term(&n->log, n->commit) == n->term;
}

/* Starts a round for every queued read without one. */
static void start_round(struct raft_node *n)
{
    if (n->read_round_inflight || !committed_in_term(n)) {
        return;
    }
    bool any = false;
    n->read_round++;
    for (size_t i = 0; i < n->reads_len; i++) {
        if (n->reads[i].round == 0) {
            n->reads[i].round = n->read_round;
            n->reads[i].index = n->commit;
            any = true;
        }
    }
    if (!any) {
        n->read_round--;
        return;
    }
    n->read_round_inflight = true;
    raft__bcast_heartbeat(n, n->read_round);
    raft__read_on_ack(n); /* a lone voter confirms itself */
}

int raft__read_index_leader(struct raft_node *n, uint64_t from,
                            struct moor_bytes *context)
{
    if (n->reads_len >= n->cfg.read_index_max) {
        return MOOR_EBUSY;
    }
    if (n->reads_len == n->reads_cap) {
        size_t cap = n->reads_cap == 0 ? 16 : n->reads_cap * 2;
        struct raft_read_req *p = moor_realloc(n->reads, cap * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        n->reads = p;
        n->reads_cap = cap;
    }
    n->reads[n->reads_len++] = (struct raft_read_req){
        .from = from, .context = moor_bytes_ref(context)};
    start_round(n);
    return MOOR_OK;
}

void raft__read_on_ack(struct raft_node *n)
{
    if (!n->read_round_inflight) {
        return;
    }
    uint32_t voters = 0;
    uint32_t acks = 0;
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        const struct raft_progress *pr = &n->prs[i];
        if (pr->id == 0 || pr->learner) {
            continue;
        }
        voters++;
        if (pr->id == n->id || pr->read_round >= n->read_round) {
            acks++;
        }
    }
    bool bug = (n->cfg.test_bugs & RAFT_BUG_READ_NO_QUORUM) != 0;
    if (!bug && (voters == 0 || acks < voters / 2 + 1)) {
        return;
    }
    /* The round is confirmed: release its reads, in arrival order. */
    size_t keep = 0;
    for (size_t i = 0; i < n->reads_len; i++) {
        struct raft_read_req *req = &n->reads[i];
        if (req->round != 0 && req->round <= n->read_round) {
            read_release(n, req);
        } else {
            n->reads[keep++] = *req;
        }
    }
    n->reads_len = keep;
    n->read_round_inflight = false;
    start_round(n);
}

void raft__read_on_commit(struct raft_node *n)
{
    start_round(n);
}

void raft__read_drop_all(struct raft_node *n)
{
    for (size_t i = 0; i < n->reads_len; i++) {
        moor_bytes_unref(n->reads[i].context);
    }
    n->reads_len = 0;
    n->read_round_inflight = false;
}
