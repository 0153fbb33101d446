/*
 * raft/progress.c: the leader's view of each member (etcd-io/raft's
 * probe / replicate / snapshot design), the inflight window, and the
 * quorum math (pure functions over plain arrays).
 */
#include "raft_int.h"

void raft__inflights_add(struct raft_inflights *in, uint64_t index)
{
    MOOR_ASSERT(in->count < in->cap);
    uint32_t slot = (in->start + in->count) % in->cap;
    in->buf[slot] = index;
    in->count++;
}

void raft__inflights_free_le(struct raft_inflights *in, uint64_t index)
{
    while (in->count > 0 && in->buf[in->start] <= index) {
        in->start = (in->start + 1) % in->cap;
        in->count--;
    }
    if (in->count == 0) {
        in->start = 0;
    }
}

void raft__inflights_free_first(struct raft_inflights *in)
{
    if (in->count > 0) {
        raft__inflights_free_le(in, in->buf[in->start]);
    }
}

void raft__progress_reset(struct raft_progress *pr, uint64_t next)
{
    pr->state = RAFT_PR_PROBE;
    pr->probe_sent = false;
    pr->recent_active = false;
    pr->vote = 0;
    pr->match = 0;
    pr->next = next;
    pr->pending_snapshot = 0;
    pr->read_round = 0;
    raft__inflights_reset(&pr->inflights);
}

static void progress_reset_state(struct raft_progress *pr, uint8_t state)
{
    pr->probe_sent = false;
    pr->pending_snapshot = 0;
    pr->state = state;
    raft__inflights_reset(&pr->inflights);
}

void raft__progress_become_probe(struct raft_progress *pr)
{
    /* Leaving SNAPSHOT, the follower has at least the snapshot (if it was
     * delivered); probing from there is the best guess. */
    if (pr->state == RAFT_PR_SNAPSHOT) {
        uint64_t pending = pr->pending_snapshot;
        progress_reset_state(pr, RAFT_PR_PROBE);
        pr->next = MOOR_MAX(pr->match + 1, pending + 1);
    } else {
        progress_reset_state(pr, RAFT_PR_PROBE);
        pr->next = pr->match + 1;
    }
}

void raft__progress_become_replicate(struct raft_progress *pr)
{
    progress_reset_state(pr, RAFT_PR_REPLICATE);
    pr->next = pr->match + 1;
}

void raft__progress_become_snapshot(struct raft_progress *pr,
                                    uint64_t snap_index)
{
    progress_reset_state(pr, RAFT_PR_SNAPSHOT);
    pr->pending_snapshot = snap_index;
}

bool raft__progress_update(struct raft_progress *pr, uint64_t index)
{
    bool updated = false;
    if (index > pr->match) {
        pr->match = index;
        pr->probe_sent = false;
        updated = true;
    }
    if (pr->next < index + 1) {
        pr->next = index + 1;
    }
    return updated;
}

bool raft__progress_decrease(struct raft_progress *pr, uint64_t rejected,
                             uint64_t hint)
{
    if (pr->state == RAFT_PR_REPLICATE) {
        /* A rejection at or below match is stale: that append was sent
         * before an ack we already have. */
        if (rejected <= pr->match) {
            return false;
        }
        pr->next = pr->match + 1;
        return true;
    }
    /* PROBE (and SNAPSHOT): only the answer to the probe in flight counts,
     * which was sent with prev index next - 1. */
    if (pr->next == 0 || pr->next - 1 != rejected) {
        return false;
    }
    pr->next = MOOR_MAX(MOOR_MIN(rejected, hint + 1), pr->match + 1);
    pr->probe_sent = false;
    return true;
}

bool raft__progress_paused(const struct raft_progress *pr)
{
    switch (pr->state) {
    case RAFT_PR_PROBE:
        return pr->probe_sent;
    case RAFT_PR_REPLICATE:
        return raft__inflights_full(&pr->inflights);
    default:
        return true;
    }
}

uint64_t raft__quorum_index(uint64_t *v, size_t n)
{
    MOOR_ASSERT(n > 0);
    /* Insertion sort, descending: n <= RAFT_MEMBERS_MAX. */
    for (size_t i = 1; i < n; i++) {
        uint64_t x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1] < x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    return v[n / 2];
}

enum raft_vote_result raft__vote_result(uint32_t voters, uint32_t granted,
                                        uint32_t rejected)
{
    uint32_t q = voters / 2 + 1;
    if (granted >= q) {
        return RAFT_VOTE_WON;
    }
    if (rejected > voters - q) {
        return RAFT_VOTE_LOST;
    }
    return RAFT_VOTE_PENDING;
}
