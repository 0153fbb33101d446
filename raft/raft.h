/*
 * raft/raft.h: the Raft consensus algorithm as a pure state machine.
 *
 * What it is: one member's view of a Raft group (elections, log
 * replication, membership, snapshots, ReadIndex, leader transfer), in the
 * shape etcd-io/raft made familiar. The caller feeds it input -- messages
 * from peers (raft_node_step), time (raft_node_tick), proposals -- and
 * collects its output as one batch of work, the ready (raft_node_ready):
 * state and entries to persist, messages to send, entries to apply. When
 * the caller has taken that work it calls raft_node_advance, and when its
 * writes are durable it calls raft_node_persisted.
 *
 * What it is not: it does no I/O, reads no clock, starts no thread, knows
 * nothing of libuv, the WAL or the wire. Time is ticks; randomness is a
 * PRNG seeded from the config. The same inputs give the same outputs, which
 * is what lets moor-sim test the shipped core.
 *
 * Threads: a node belongs to one thread (the member's loop thread).
 *
 * Ownership: the log lives in memory inside the node (a plain array of
 * struct raft_entry after the last snapshot); wal/ persists it, the node
 * keeps it. Payloads are refcounted (struct moor_bytes): raft takes
 * references, never copies bytes. Everything a ready points at is borrowed,
 * valid until raft_node_advance; between raft_node_ready and
 * raft_node_advance the caller must not call any other raft_node_*
 * function on that node.
 *
 * The ready / advance contract, in order, once per loop turn:
 *   1. if (raft_node_has_ready(n)) raft_node_ready(n, &rd);
 *   2. hand rd.snapshot (if any), rd.entries and rd.hard_state to storage.
 *      rd.entries may start at an index at or below entries handed out
 *      earlier: storage drops everything from that index on first (a new
 *      leader overwrote an uncommitted suffix). A snapshot replaces every
 *      entry storage held.
 *   3. send rd.msgs now (they may leave before step 2 is durable: the
 *      leader's appends, thesis §10.2.1);
 *   4. keep rd.msgs_after (encode or copy them: they are borrowed) and
 *      send them only once every write of this ready and of all earlier
 *      readies is durable (acks of entries, votes);
 *   5. install rd.snapshot into the state machine, apply rd.committed in
 *      order, serve rd.read_states once applied >= their index;
 *   6. raft_node_advance(n, &rd);
 *   7. later, when storage reports the writes of this ready durable:
 *      raft_node_persisted(n, rd.persist_index, rd.persist_term), then
 *      release the msgs_after kept in step 4.
 * Committed entries are handed out only once they are durable locally, so
 * the state machine never runs ahead of the member's own disk.
 *
 * Membership (thesis §4.1, single-server changes): a member uses the
 * latest configuration in its log, committed or not, from the moment the
 * entry is appended; a truncated configuration entry reverts it. The
 * leader accepts a new change only when the previous one is committed and
 * an entry of its own term is committed (the fix to the single-server
 * change bug, raft-dev 2015). We did not take the other common choice,
 * "applied when committed": with it a member that has not yet
 * learned two committed changes still uses the configuration before both,
 * and two such configurations can have disjoint majorities (two leaders in
 * one term). Joint consensus is not implemented; every change adds or
 * removes one voter, so any two adjacent configurations share a majority.
 * A leader that removes itself keeps leading, without counting itself,
 * until the change commits, then steps down (thesis §4.2.2). The initial
 * configuration is config.conf when the restored snapshot is at index 0
 * (bootstrap; it must be the same on every member and restart), else the
 * snapshot's. A member that joins later starts with the bootstrap
 * configuration and learns the rest from the log or a snapshot.
 *
 * Bounds: members (RAFT_MEMBERS_MAX), appends in flight per follower,
 * bytes and entries per append message, bytes of uncommitted proposals,
 * queued ReadIndex requests, entries applied per ready. Exceeding one is
 * a defined error (MOOR_EDROPPED, MOOR_EBUSY, MOOR_ETOOBIG) or, for
 * outgoing messages, a smaller message.
 */
#ifndef MOOR_RAFT_H
#define MOOR_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0,      /* application data (may be empty) */
    RAFT_ENTRY_CONF_CHANGE = 1, /* an encoded membership change */
};

/* One log entry. data is refcounted and may be NULL (an empty entry, as a
 * new leader appends at the start of its term, §8). */
struct raft_entry
{
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum raft_entry_type */
    struct moor_bytes *data;
};

/* The state Raft must persist before answering any message (Figure 2). */
struct raft_hard_state
{
    uint64_t term;
    uint64_t vote; /* member id voted for in term, 0 = none */
    uint64_t commit;
};

/* ------------------------------------------------------------------------
 * Membership
 * ---------------------------------------------------------------------- */

/* Most members (voters plus learners) a group can have. */
#define RAFT_MEMBERS_MAX 16

struct raft_member
{
    uint64_t id; /* nonzero */
    bool learner;
};

/* A configuration. Invariant: ids distinct and nonzero, n <= MAX. */
struct raft_conf
{
    uint32_t n;
    struct raft_member members[RAFT_MEMBERS_MAX];
};

enum raft_conf_change_type {
    RAFT_CONF_ADD_VOTER = 1,   /* a new member that votes at once */
    RAFT_CONF_ADD_LEARNER = 2, /* a new member that does not vote */
    RAFT_CONF_REMOVE = 3,      /* remove a voter or a learner */
    RAFT_CONF_PROMOTE = 4,     /* make a learner a voter */
};

/* One membership change. context is opaque to raft (moor puts the new
 * member's peer URLs there); it travels in the entry. */
struct raft_conf_change
{
    uint8_t type; /* enum raft_conf_change_type */
    uint64_t node_id;
    struct moor_slice context;
};

/* A conf-change entry's data:
 *   OFFSET SIZE MEANING
 *   0      1    format version, 1
 *   1      1    type (enum raft_conf_change_type)
 *   2      8    node id, little-endian
 *   10     n    context, the rest of the entry
 * Returns owned (moor_bytes_unref) the encoding, NULL on MOOR_ENOMEM. */
struct moor_bytes *raft_conf_change_encode(const struct raft_conf_change *cc);

/* Decodes data (borrows; cc->context points into data). MOOR_EPROTO when
 * data is not a valid conf change. */
int raft_conf_change_decode(struct moor_slice data,
                            struct raft_conf_change *cc);

/* Applies cc to conf in place. Total and deterministic, because every
 * member replays the same log: a change that makes no sense for conf
 * (adding a member that exists, removing one that does not, promoting a
 * voter, exceeding RAFT_MEMBERS_MAX) leaves conf unchanged and returns
 * MOOR_EINVAL; otherwise MOOR_OK. */
int raft_conf_apply(struct raft_conf *conf, const struct raft_conf_change *cc);

/* The member with id in conf, or NULL. Returns borrowed (into conf). */
const struct raft_member *raft_conf_find(const struct raft_conf *conf,
                                         uint64_t id);

/* Number of voters in conf. */
uint32_t raft_conf_voters(const struct raft_conf *conf);

/* ------------------------------------------------------------------------
 * Snapshots
 * ---------------------------------------------------------------------- */

/* A snapshot: the state machine at index (whose entry had term), and the
 * configuration in force there. data is the caller's opaque image (may be
 * NULL when the server moves snapshot bytes out of band). */
struct raft_snapshot
{
    uint64_t index;
    uint64_t term;
    struct raft_conf conf;
    struct moor_bytes *data;
};

/* ------------------------------------------------------------------------
 * Messages
 *
 * TYPE              SENT BY    FIELDS USED (besides type, from, to, term)
 * APPEND            leader     index, log_term (the entry before
 *                              entries), entries, commit
 * APPEND_RESP       follower   reject=0: index = last index known to match
 *                              reject=1: index = rejected index,
 *                              reject_hint = follower's guess at the last
 *                              matching index, log_term = its term there
 * VOTE, PRE_VOTE    candidate  index, log_term (of its last entry),
 *                              transfer (the campaign follows TimeoutNow)
 * VOTE_RESP,        voter      reject
 *   PRE_VOTE_RESP
 * HEARTBEAT         leader     commit (min of the follower's match and
 *                              the leader's commit), round
 * HEARTBEAT_RESP    follower   round (echoed)
 * SNAPSHOT          leader     snapshot (meta and data)
 * TIMEOUT_NOW       leader     -- (the receiver campaigns at once)
 * PROPOSE           follower   entries (forwarded proposals; term 0)
 * READ_INDEX        follower   context (forwarded read; term 0)
 * READ_INDEX_RESP   leader     index, context
 * ---------------------------------------------------------------------- */
enum raft_message_type {
    RAFT_MSG_APPEND = 1,
    RAFT_MSG_APPEND_RESP = 2,
    RAFT_MSG_VOTE = 3,
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PRE_VOTE = 5,
    RAFT_MSG_PRE_VOTE_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7,
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_SNAPSHOT = 9,
    RAFT_MSG_TIMEOUT_NOW = 10,
    RAFT_MSG_PROPOSE = 11,
    RAFT_MSG_READ_INDEX = 12,
    RAFT_MSG_READ_INDEX_RESP = 13,
};

/* A message between members, plain so that server/ can encode it. In a
 * ready every pointer is borrowed, valid until raft_node_advance; for
 * raft_node_step it is borrowed for the call (raft takes references on
 * the payloads it keeps). */
struct raft_message
{
    uint8_t type; /* enum raft_message_type */
    bool reject;
    bool transfer;
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t log_term;
    uint64_t index;
    uint64_t commit;
    uint64_t reject_hint;
    uint64_t round;
    struct raft_entry *entries;
    size_t n_entries;
    struct raft_snapshot snapshot;
    struct moor_bytes *context;
};

/* The name of a message type ("APPEND"), for logs. Returns borrowed,
 * valid forever. */
const char *raft_message_type_name(uint8_t type);

/* ------------------------------------------------------------------------
 * Configuration and restore
 * ---------------------------------------------------------------------- */

/* Planted bugs, for the simulator to prove that it catches them. Never set
 * outside tests. */
enum raft_test_bug {
    /* §5.4.2 broken: the leader commits an entry of an earlier term by
     * counting replicas (Figure 8). */
    RAFT_BUG_COMMIT_OLD_TERM = 1u << 0,
    /* §5.2 broken: a member grants every vote request of a higher or equal
     * term, ignoring its earlier vote in that term. */
    RAFT_BUG_VOTE_TWICE = 1u << 1,
    /* Thesis §10.2.1 broken: a follower acknowledges entries before they
     * are durable (its acks leave with the "now" messages). */
    RAFT_BUG_ACK_UNDURABLE = 1u << 2,
    /* §5.3 broken: a follower appends without checking that the entry
     * before the new ones has the leader's term (Log Matching). */
    RAFT_BUG_SKIP_PREV_CHECK = 1u << 3,
    /* §6.4 broken: the leader answers ReadIndex without confirming its
     * leadership with a heartbeat round (a deposed leader serves stale
     * reads). */
    RAFT_BUG_READ_NO_QUORUM = 1u << 4,
};

struct raft_config
{
    uint64_t id;           /* this member, nonzero */
    struct raft_conf conf; /* the bootstrap configuration (see above) */
    /* An election timeout is drawn uniformly from [election_ticks,
     * 2 * election_ticks - 1]; the leader sends heartbeats every
     * heartbeat_ticks. election_ticks > heartbeat_ticks >= 1. */
    uint32_t election_ticks;
    uint32_t heartbeat_ticks;
    uint32_t inflight_max;        /* appends in flight per follower, >= 1 */
    size_t msg_bytes_max;         /* payload bytes per append (>= 1 entry) */
    uint32_t msg_entries_max;     /* entries per append, >= 1 */
    size_t uncommitted_bytes_max; /* leader: proposal bytes not committed */
    uint32_t read_index_max;      /* queued ReadIndex requests */
    uint32_t apply_entries_max;   /* committed entries per ready, >= 1 */
    bool pre_vote;                /* thesis §9.6 */
    /* Thesis §6.2: a leader that has not heard from a quorum within an
     * election timeout steps down. It also turns on the leader lease of
     * §4.2.3: a member that heard from its leader within an election
     * timeout ignores vote requests (so a rejoining or removed member
     * cannot disrupt the group). */
    bool check_quorum;
    uint64_t seed;      /* PRNG seed for election timeouts */
    uint32_t test_bugs; /* enum raft_test_bug bits; 0 in production */
};

/* Fills c with defaults for member id: 10 election ticks, 1 heartbeat
 * tick, 256 inflight, 1 MiB and 4096 entries per append, 64 MiB
 * uncommitted, 4096 reads, 4096 applied per ready, pre-vote and
 * check-quorum on, seed = id. conf is left empty for the caller. */
void raft_config_init(struct raft_config *c, uint64_t id);

/* What the member had persisted, for raft_node_new. Every field may be
 * zero/NULL for a brand-new member. */
struct raft_restore
{
    struct raft_hard_state hard_state;
    const struct raft_snapshot *snapshot; /* NULL = none */
    const struct raft_entry *entries;     /* the entries after snapshot */
    size_t n_entries;
    uint64_t applied; /* index the state machine holds (>= snapshot's) */
};

/* ------------------------------------------------------------------------
 * The node
 * ---------------------------------------------------------------------- */

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
};

/* Opaque: a node owns growable arrays (its log, an outbox), so raft
 * allocates it. */
struct raft_node;

/* Returns owned (raft_node_free) a node, in *out. Borrows config and
 * restore (takes references on the payloads of restore's entries and
 * snapshot). Errors: MOOR_EINVAL (bad config, entries not contiguous after
 * the snapshot, commit beyond the log), MOOR_ENOMEM. */
int raft_node_new(const struct raft_config *config,
                  const struct raft_restore *restore, struct raft_node **out);

/* Frees a node and drops its references. n may be NULL. */
void raft_node_free(struct raft_node *n);

/* Advances time by one tick: followers and candidates count toward an
 * election, the leader toward a heartbeat and (with check_quorum) its
 * quorum check. */
void raft_node_tick(struct raft_node *n);

/* Feeds one message from a peer (borrows m, references the payloads it
 * keeps). Messages from stale terms, unknown types or for another member
 * are ignored; raft never fails on bad input, it drops it: MOOR_OK or
 * MOOR_ENOMEM (the message was dropped; raft is consistent). */
int raft_node_step(struct raft_node *n, const struct raft_message *m);

/* Proposes n_data entries (borrows the array, takes a reference on each
 * block; a block may be NULL for an empty entry). The leader appends them;
 * a follower forwards them to the leader (they may be lost: the caller
 * learns of success only by seeing them applied). Errors: MOOR_ENOLEADER
 * (no leader known), MOOR_EDROPPED (a leader transfer is in progress, or
 * the uncommitted bytes would exceed the bound), MOOR_ETOOBIG (n_data over
 * msg_entries_max), MOOR_ENOMEM. */
int raft_node_propose(struct raft_node *n, struct moor_bytes *const *data,
                      size_t n_data);

/* Proposes a membership change (leader only; borrows cc). Errors:
 * MOOR_ENOTLEADER, MOOR_EBUSY (an earlier change is not committed yet, or
 * the leader has not committed an entry of its term), MOOR_EINVAL (the
 * change does not apply to the current configuration, or would leave no
 * voter), MOOR_EDROPPED (transfer in progress), MOOR_ENOMEM. */
int raft_node_propose_conf_change(struct raft_node *n,
                                  const struct raft_conf_change *cc);

/* Asks for a linearizable read index (§6.4). context (referenced, may be
 * NULL) comes back in the read state; make it unique per request. The
 * leader confirms its leadership with one heartbeat round shared by every
 * request queued meanwhile, then emits a read state {index, context}; a
 * follower asks the leader and emits the state on its answer. Requests are
 * dropped silently when leadership is lost; the caller times them out.
 * Errors: MOOR_ENOLEADER, MOOR_EBUSY (read_index_max queued), MOOR_ENOMEM.
 */
int raft_node_read_index(struct raft_node *n, struct moor_bytes *context);

/* Hands leadership to member to (thesis §3.10): the leader stops taking
 * proposals, catches to up, then sends it TimeoutNow; the transfer is
 * abandoned after an election timeout. Errors: MOOR_ENOTLEADER,
 * MOOR_EINVAL (to is not a voter, or is this member). */
int raft_node_transfer_leader(struct raft_node *n, uint64_t to);

/* Starts an election now (if this member is a voter and not leader):
 * a pre-vote round when pre_vote is on. For tests and operator tools. */
void raft_node_campaign(struct raft_node *n);

/* The server's hook for a leader whose process is gone (its peer
 * connection reset). If peer is the leader this follower knows, it forgets
 * the leader (so it grants votes again) and campaigns within a few ticks
 * instead of a whole election timeout: the voters take turns by id, two
 * ticks apart, so they do not split the vote. Pre-vote keeps this safe: if the
 * leader is in fact alive, members that still hear it refuse the
 * pre-vote, and nothing is disrupted. */
void raft_node_report_leader_lost(struct raft_node *n, uint64_t peer);

/* The transport could not reach peer: the leader stops streaming appends
 * to it optimistically and probes instead. */
void raft_node_report_unreachable(struct raft_node *n, uint64_t peer);

/* The snapshot sent to peer was (ok) or was not delivered. */
void raft_node_report_snapshot(struct raft_node *n, uint64_t peer, bool ok);

/* The caller took a snapshot at index (<= applied) and drops the log up to
 * it. data (referenced, may be NULL) is what the leader will send to
 * followers behind the log's start. Errors: MOOR_EINVAL (index beyond
 * applied, or at/below the current snapshot). */
int raft_node_compact(struct raft_node *n, uint64_t index,
                      struct moor_bytes *data);

/* One read state: a linearizable read with this context may be served once
 * the state machine has applied index. */
struct raft_read_state
{
    uint64_t index;
    struct moor_bytes *context;
};

/* A batch of work (see the contract at the top). Borrowed until
 * raft_node_advance. */
struct raft_ready
{
    /* Soft state: for the server's metrics and "no leader" answers. */
    uint64_t leader; /* 0 = unknown */
    uint8_t role;    /* enum raft_role */
    bool soft_state_changed;

    bool hard_state_changed;
    struct raft_hard_state hard_state;
    /* True when the hard state's term or vote changed, or there are
     * entries or a snapshot: the write must be fsynced before msgs_after
     * go out. */
    bool must_sync;

    const struct raft_snapshot *snapshot; /* NULL = none */
    const struct raft_entry *entries;     /* to append durably */
    size_t n_entries;
    const struct raft_entry *committed; /* to apply, in order */
    size_t n_committed;
    /* Messages to send now: the leader's appends, heartbeats, snapshots,
     * pre-votes, rejections... */
    const struct raft_message *msgs;
    size_t n_msgs;
    /* Messages to send once this ready's writes (and all earlier ones)
     * are durable: acks of entries (APPEND_RESP), granted votes, and
     * every message of a ready whose term or vote changed (no member acts
     * in a term it has not made durable). */
    const struct raft_message *msgs_after;
    size_t n_msgs_after;
    const struct raft_read_state *read_states;
    size_t n_read_states;

    /* When this ready's writes are durable, report them with
     * raft_node_persisted(n, persist_index, persist_term). 0 = nothing
     * to report. */
    uint64_t persist_index;
    uint64_t persist_term;
};

/* True when raft_node_ready would return any work. */
bool raft_node_has_ready(const struct raft_node *n);

/* Fills rd with the pending work (borrowed until raft_node_advance). The
 * caller must call raft_node_advance before any other raft_node_* call on
 * n. May be called when has_ready is false (an empty ready). Errors:
 * MOOR_ENOMEM (nothing was handed out; retry later). */
int raft_node_ready(struct raft_node *n, struct raft_ready *rd);

/* The caller has taken rd's work (steps 2-5 of the contract): raft drops
 * its references to the outbox and records the committed entries as
 * applied. */
void raft_node_advance(struct raft_node *n, struct raft_ready *rd);

/* Storage reports entries up to index durable (with index's entry of
 * term; a stale report whose term no longer matches is ignored). The
 * leader counts itself toward a quorum only up to here (thesis §10.2.1);
 * committed entries are applied only up to here. */
void raft_node_persisted(struct raft_node *n, uint64_t index, uint64_t term);

/* ------------------------------------------------------------------------
 * Inspection (all O(1) and side-effect free)
 * ---------------------------------------------------------------------- */
uint64_t raft_node_id(const struct raft_node *n);
uint64_t raft_node_term(const struct raft_node *n);
uint64_t raft_node_leader(const struct raft_node *n);
enum raft_role raft_node_role(const struct raft_node *n);
uint64_t raft_node_commit_index(const struct raft_node *n);
uint64_t raft_node_applied_index(const struct raft_node *n);
uint64_t raft_node_last_index(const struct raft_node *n);
uint64_t raft_node_first_index(const struct raft_node *n);
uint64_t raft_node_persisted_index(const struct raft_node *n);
uint64_t raft_node_vote(const struct raft_node *n);
/* Returns borrowed, valid until the next raft_node_* call. */
const struct raft_conf *raft_node_conf(const struct raft_node *n);
/* The entry at index, or NULL when outside [first_index, last_index].
 * Returns borrowed, valid until the next raft_node_* call. */
const struct raft_entry *raft_node_entry(const struct raft_node *n,
                                         uint64_t index);
/* The term of the entry at index (the snapshot's term at its index); 0
 * when unknown (compacted or beyond the log). */
uint64_t raft_node_term_at(const struct raft_node *n, uint64_t index);
/* The latest snapshot (index 0 = none yet). Returns borrowed, valid until
 * the next raft_node_* call. */
const struct raft_snapshot *raft_node_snapshot(const struct raft_node *n);
/* The member leadership is being transferred to, 0 = none. */
uint64_t raft_node_transferee(const struct raft_node *n);
/* On a leader: the highest index known to be in member id's log (its own
 * last index for the leader itself). 0 on a follower or for an unknown
 * member. What MemberPromote's "in sync with the leader" check reads. */
uint64_t raft_node_match_index(const struct raft_node *n, uint64_t id);

#endif /* MOOR_RAFT_H */
