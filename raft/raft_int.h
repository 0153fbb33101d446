/*
 * raft/raft_int.h: the node's insides, shared by the files of raft/.
 *
 * Files: log.c (the in-memory log), progress.c (per-follower progress,
 * inflight window, quorum math), conf.c (membership), node.c (lifecycle,
 * the outbox, step dispatch, the public input calls), ready.c (ready,
 * advance, persisted, inspection), election.c, replication.c, readindex.c.
 */
#ifndef MOOR_RAFT_INT_H
#define MOOR_RAFT_INT_H

#include "raft/raft.h"

/* ------------------------------------------------------------------------
 * The log: entries (snap_index, last] in memory.
 *
 * Invariants: ents[i].index == snap_index + 1 + i;
 * snap_index <= persisted <= last (persisted may lag below snap_index only
 * right after a snapshot was received and not yet reported durable);
 * handed <= last (entries above handed go out in the next ready).
 * ---------------------------------------------------------------------- */
struct raft_log
{
    struct raft_entry *ents;
    size_t len;
    size_t cap;
    uint64_t snap_index;
    uint64_t snap_term;
    uint64_t handed;    /* last index handed to the caller to persist */
    uint64_t persisted; /* last index reported durable */
    size_t bytes;       /* payload bytes in ents */
};

void raft__log_init(struct raft_log *l, uint64_t snap_index,
                    uint64_t snap_term);
void raft__log_close(struct raft_log *l);
static inline uint64_t raft__log_last(const struct raft_log *l)
{
    return l->snap_index + l->len;
}
static inline uint64_t raft__log_first(const struct raft_log *l)
{
    return l->snap_index + 1;
}
/* Term at index; 0 when unknown (below the snapshot or beyond the end). */
uint64_t raft__log_term(const struct raft_log *l, uint64_t index);
static inline uint64_t raft__log_last_term(const struct raft_log *l)
{
    return raft__log_term(l, raft__log_last(l));
}
static inline struct raft_entry *raft__log_at(const struct raft_log *l,
                                              uint64_t index)
{
    return &l->ents[index - l->snap_index - 1];
}
/* Appends copies of ents (references taken); ents[0].index must be last+1.
 * MOOR_ENOMEM leaves the log unchanged. */
int raft__log_append(struct raft_log *l, const struct raft_entry *ents,
                     size_t n);
/* Drops entries from index on (index > snap_index). */
void raft__log_truncate(struct raft_log *l, uint64_t index);
/* Drops entries up to index (snap_index < index <= last), which becomes the
 * snapshot point. */
void raft__log_compact(struct raft_log *l, uint64_t index);
/* Replaces the whole log by a snapshot point. */
void raft__log_reset(struct raft_log *l, uint64_t index, uint64_t term);
/* True when candidate's last (term, index) is at least as up to date as
 * ours (§5.4.1). */
bool raft__log_up_to_date(const struct raft_log *l, uint64_t last_term,
                          uint64_t last_index);
/* The largest index <= index whose term is <= term (fast backtracking);
 * returns snap_index when none in memory qualifies. */
uint64_t raft__log_find_conflict_by_term(const struct raft_log *l,
                                         uint64_t index, uint64_t term);

/* ------------------------------------------------------------------------
 * Progress of one member, as the leader sees it (etcd-io/raft's design).
 *
 * PROBE: one append in flight at a time (probe_sent), next moves back on
 * rejections. REPLICATE: appends stream optimistically, next = last sent
 * + 1, bounded by the inflight window. SNAPSHOT: a snapshot is in flight;
 * nothing else is sent until it is acknowledged or reported.
 * Invariant: match < next.
 * ---------------------------------------------------------------------- */
enum raft_progress_state {
    RAFT_PR_PROBE = 0,
    RAFT_PR_REPLICATE = 1,
    RAFT_PR_SNAPSHOT = 2,
};

/* A ring of the last indexes of appends in flight. */
struct raft_inflights
{
    uint64_t *buf; /* cap slots, owned by the node */
    uint32_t cap;
    uint32_t start;
    uint32_t count;
};

struct raft_progress
{
    uint64_t id; /* 0 = free slot */
    bool learner;
    uint8_t state;
    bool probe_sent;
    bool recent_active;
    int8_t vote; /* this election: 0 unknown, 1 granted, -1 rejected */
    uint64_t match;
    uint64_t next;
    uint64_t pending_snapshot;
    uint64_t read_round; /* highest ReadIndex round acknowledged */
    struct raft_inflights inflights;
};

void raft__inflights_add(struct raft_inflights *in, uint64_t index);
void raft__inflights_free_le(struct raft_inflights *in, uint64_t index);
void raft__inflights_free_first(struct raft_inflights *in);
static inline bool raft__inflights_full(const struct raft_inflights *in)
{
    return in->count == in->cap;
}
static inline void raft__inflights_reset(struct raft_inflights *in)
{
    in->start = 0;
    in->count = 0;
}

void raft__progress_reset(struct raft_progress *pr, uint64_t next);
void raft__progress_become_probe(struct raft_progress *pr);
void raft__progress_become_replicate(struct raft_progress *pr);
void raft__progress_become_snapshot(struct raft_progress *pr,
                                    uint64_t snap_index);
/* An ack of index: true when match moved. */
bool raft__progress_update(struct raft_progress *pr, uint64_t index);
/* A rejection of rejected with the follower's hint (the index the leader
 * computed from it): true when next moved (the rejection was not stale). */
bool raft__progress_decrease(struct raft_progress *pr, uint64_t rejected,
                             uint64_t hint);
/* True when nothing should be sent to pr now. */
bool raft__progress_paused(const struct raft_progress *pr);

/* Quorum math over plain arrays. The value a majority of the n values in
 * v has reached (the (n/2+1)-th largest); v is reordered. n > 0. */
uint64_t raft__quorum_index(uint64_t *v, size_t n);

enum raft_vote_result {
    RAFT_VOTE_PENDING = 0,
    RAFT_VOTE_WON = 1,
    RAFT_VOTE_LOST = 2,
};
/* The outcome of granted and rejected votes among voters. */
enum raft_vote_result raft__vote_result(uint32_t voters, uint32_t granted,
                                        uint32_t rejected);

/* ------------------------------------------------------------------------
 * The node
 * ---------------------------------------------------------------------- */

/* One queued ReadIndex request on the leader. */
struct raft_read_req
{
    uint64_t from; /* requesting member (self for local reads) */
    uint64_t index;
    uint64_t round; /* round it waits for; 0 = none started yet */
    struct moor_bytes *context;
};

/* A queued outgoing message; msg.entries is set in raft_node_ready from
 * ents_off (out_ents may move while messages are added). */
struct raft_outmsg
{
    struct raft_message msg;
    size_t ents_off;
    bool after; /* waits for persistence */
};

struct raft_node;
typedef int (*raft_step_fn)(struct raft_node *n, const struct raft_message *m);

struct raft_node
{
    struct raft_config cfg;
    uint64_t id;
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
    uint64_t applied;
    uint64_t leader;
    uint8_t role;
    raft_step_fn step;

    struct raft_log log;

    /* Membership: conf is the latest in the log; base_conf is the one in
     * force at log.snap_index; conf_idx lists the conf-change entries in
     * the log, ascending. */
    struct raft_conf conf;
    struct raft_conf base_conf;
    uint64_t *conf_idx;
    size_t conf_idx_len;
    size_t conf_idx_cap;

    struct raft_progress prs[RAFT_MEMBERS_MAX];
    uint64_t *inflight_buf;

    /* Timers, in ticks. */
    uint32_t election_elapsed;
    uint32_t heartbeat_elapsed;
    uint32_t randomized_timeout;
    struct moor_prng prng;

    /* Leader. */
    uint64_t transferee;
    uint64_t term_start_index; /* the leader's empty entry of its term */
    size_t uncommitted_bytes;
    bool bcast_pending;

    /* Snapshot: the latest (from compaction or a leader); pending is a
     * received one not yet handed out in a ready. */
    struct raft_snapshot snap;
    bool snap_pending;

    /* ReadIndex: leader queue, and read states ready to hand out. */
    struct raft_read_req *reads;
    size_t reads_len;
    size_t reads_cap;
    uint64_t read_round;      /* last round started */
    bool read_round_inflight; /* round read_round awaits acks */
    struct raft_read_state *rstates;
    size_t rstates_len;
    size_t rstates_cap;

    /* Outbox: messages; their entries live in out_ents (pointers are
     * resolved in raft_node_ready, the array being stable until advance).
     */
    struct raft_outmsg *out;
    size_t out_len;
    size_t out_cap;
    struct raft_entry *out_ents;
    size_t out_ents_len;
    size_t out_ents_cap;
    /* Ready staging (valid between ready and advance). */
    struct raft_message *rd_msgs;
    size_t rd_msgs_cap;
    uint64_t rd_applied_to;
    bool rd_snapshot;
    size_t rd_rstates;

    /* What the last ready reported, to detect changes. */
    struct raft_hard_state prev_hs;
    uint64_t prev_leader;
    uint8_t prev_role;
};

/* node.c */
void raft__outbox_clear(struct raft_node *n);
int raft__send(struct raft_node *n, struct raft_message *m);
int raft__send_with_entries(struct raft_node *n, struct raft_message *m,
                            const struct raft_entry *ents, size_t count);
struct raft_progress *raft__progress(struct raft_node *n, uint64_t id);
bool raft__is_voter(const struct raft_node *n, uint64_t id);
void raft__become_follower(struct raft_node *n, uint64_t term, uint64_t leader);
void raft__reset_timeout(struct raft_node *n);
int raft__step_follower(struct raft_node *n, const struct raft_message *m);
int raft__step_candidate(struct raft_node *n, const struct raft_message *m);
int raft__step_leader(struct raft_node *n, const struct raft_message *m);

/* election.c */
void raft__campaign(struct raft_node *n, bool pre, bool transfer);
int raft__handle_vote(struct raft_node *n, const struct raft_message *m);
int raft__handle_vote_resp(struct raft_node *n, const struct raft_message *m);
void raft__become_leader(struct raft_node *n);
void raft__check_quorum(struct raft_node *n);

/* replication.c */
int raft__append_local(struct raft_node *n, uint8_t type,
                       struct moor_bytes *const *data, size_t n_data);
bool raft__send_append(struct raft_node *n, struct raft_progress *pr,
                       bool send_if_empty);
void raft__bcast_append(struct raft_node *n);
void raft__bcast_heartbeat(struct raft_node *n, uint64_t round);
bool raft__maybe_commit(struct raft_node *n);
void raft__commit_to(struct raft_node *n, uint64_t index);
int raft__handle_append(struct raft_node *n, const struct raft_message *m);
int raft__handle_append_resp(struct raft_node *n, const struct raft_message *m);
int raft__handle_heartbeat(struct raft_node *n, const struct raft_message *m);
int raft__handle_heartbeat_resp(struct raft_node *n,
                                const struct raft_message *m);
int raft__handle_snapshot(struct raft_node *n, const struct raft_message *m);
void raft__restore_snapshot(struct raft_node *n, const struct raft_snapshot *s);

/* conf.c */
int raft__conf_on_append(struct raft_node *n, const struct raft_entry *ents,
                         size_t count);
void raft__conf_on_truncate(struct raft_node *n, uint64_t index);
void raft__conf_on_compact(struct raft_node *n, uint64_t index);
void raft__conf_reset(struct raft_node *n, const struct raft_conf *base);
void raft__conf_sync_progress(struct raft_node *n);
uint64_t raft__conf_last_index(const struct raft_node *n);

/* readindex.c */
int raft__read_index_leader(struct raft_node *n, uint64_t from,
                            struct moor_bytes *context);
void raft__read_on_ack(struct raft_node *n);
void raft__read_on_commit(struct raft_node *n);
void raft__read_drop_all(struct raft_node *n);
int raft__read_state_push(struct raft_node *n, uint64_t index,
                          struct moor_bytes *context);

#endif /* MOOR_RAFT_INT_H */
