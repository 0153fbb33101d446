/*
 * tests/sim/sim.h: moor-sim, the deterministic cluster simulator.
 *
 * N members of the real raft core run in one process. Everything is driven
 * by one seed: the fault rates of the run (swarm testing: each seed picks
 * its own, so runs range from calm to vicious), the network (drops,
 * duplicates, delays that reorder, symmetric and one-way partitions), the
 * disks (writes complete after a delay; a crash loses what was not yet
 * durable), clients (unique proposals, linearizable reads), membership
 * changes, compaction and snapshots, leader transfers. Each member goes
 * through exactly the ready / advance / persisted steps server/ will use.
 *
 * Invariants are checked as the run goes (sim_check.c): Election Safety,
 * Log Matching, Leader Completeness, State Machine Safety, durability of
 * acks and votes, linearizable ReadIndex, and, after the faults heal,
 * liveness.
 */
#ifndef MOOR_SIM_H
#define MOOR_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/* Member ids are 1..SIM_IDS_MAX: the initial members plus those added. */
#define SIM_IDS_MAX 9

/* A message in flight: a deep copy (entries array owned, payloads
 * referenced). */
struct sim_msg
{
    struct raft_message m;
    uint64_t deliver_at;
    uint64_t order; /* random tie-break among messages due together */
};

/* One write handed to a member's disk, completing at done_at. */
struct sim_write
{
    uint64_t done_at;
    bool has_hs;
    struct raft_hard_state hs;
    bool has_snap;
    struct raft_snapshot snap;
    struct raft_entry *ents;
    size_t n_ents;
    uint64_t persist_index;
    uint64_t persist_term;
    struct sim_msg *after; /* messages released when durable */
    size_t n_after;
};

/* What survives a crash. */
struct sim_disk
{
    struct raft_hard_state hs;
    struct raft_snapshot snap; /* index 0 = none */
    struct raft_entry *ents;   /* after snap.index */
    size_t n_ents;
    size_t cap;
};

struct sim_node
{
    uint64_t id;
    bool exists; /* created (initial member or added) */
    bool alive;
    struct raft_node *r;
    struct sim_disk disk;
    struct sim_write *writes; /* FIFO */
    size_t n_writes;
    size_t writes_cap;
    uint64_t last_done_at;
    /* The state machine: applied index and a hash chain over the applied
     * values (a snapshot carries both). */
    uint64_t applied;
    uint64_t hash;
    uint64_t leader_term_checked; /* Leader Completeness done for this term */
};

/* Fault rates and knobs, drawn per seed. */
struct sim_swarm
{
    double p_drop;
    double p_dup;
    uint32_t delay_max; /* network delay in ticks, >= 1 */
    uint32_t disk_delay_max;
    double p_partition;
    double p_heal;
    double p_crash;
    double p_restart;
    double p_propose;
    double p_read;
    double p_conf;
    double p_compact;
    double p_transfer;
    double p_leader_lost;
    bool pre_vote;
    bool check_quorum;
    uint32_t heartbeat_ticks;
    uint32_t inflight_max;
    uint32_t msg_entries_max;
    size_t msg_bytes_max;
    size_t uncommitted_bytes_max;
    uint32_t apply_entries_max;
    uint32_t read_index_max;
};

struct sim_read
{
    uint64_t ctx;
    uint64_t min_index; /* acknowledged writes when the read began */
};

struct sim
{
    uint64_t seed;
    uint32_t n_initial;
    uint64_t now; /* ticks */
    uint64_t step;
    bool verbose;
    uint32_t bugs;
    struct moor_prng prng;
    struct sim_swarm sw;
    struct raft_conf bootstrap;
    struct sim_node nodes[SIM_IDS_MAX + 1]; /* by id; [0] unused */
    bool blocked[SIM_IDS_MAX + 1][SIM_IDS_MAX + 1];

    struct sim_msg *net;
    size_t n_net;
    size_t net_cap;

    /* Checks. */
    char violation[512];
    uint64_t *leader_of_term; /* by term */
    size_t terms_cap;
    uint64_t *chain_val; /* committed value at index (1-based) */
    uint64_t *chain_hash;
    size_t chain_len; /* highest index applied anywhere */
    size_t chain_cap;
    struct sim_lm_slot *lm; /* (index, term) -> value, prev term */
    size_t lm_cap;
    size_t lm_len;
    struct sim_read *reads;
    size_t n_reads;
    size_t reads_cap;

    uint64_t next_value;
    uint64_t next_read;
    /* Statistics. */
    uint64_t proposals;
    uint64_t elections;
    uint64_t crashes;
    uint64_t snapshots_sent;
    uint64_t conf_changes;
    uint64_t transfers;
    uint64_t reads_served;
};

static inline bool violation_pending(const struct sim *s)
{
    return s->violation[0] != '\0';
}

/* sim_cluster.c */
void sim_init(struct sim *s, uint64_t seed, uint32_t nodes, uint32_t bugs,
              bool verbose);
void sim_close(struct sim *s);
void sim_node_start(struct sim *s, uint64_t id);
void sim_node_crash(struct sim *s, uint64_t id);
void sim_send(struct sim *s, const struct raft_message *m);
void sim_deliver_due(struct sim *s);
void sim_process(struct sim *s);
void sim_tick_all(struct sim *s);
uint64_t sim_entry_value(const struct raft_entry *e);
void sim_log(const struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sim_msg_free(struct sim_msg *m);
void sim_disk_snapshot(struct sim_node *nd, const struct raft_snapshot *snap);

/* sim_check.c */
void sim_check_fail(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sim_check_ready(struct sim *s, struct sim_node *nd,
                     const struct raft_ready *rd);
void sim_check_apply(struct sim *s, struct sim_node *nd,
                     const struct raft_entry *e);
void sim_check_snapshot(struct sim *s, struct sim_node *nd,
                        const struct raft_snapshot *snap);
void sim_check_after_step(struct sim *s);
void sim_check_send(struct sim *s, const struct raft_message *m);
void sim_check_read_begin(struct sim *s, uint64_t ctx);
void sim_check_read_state(struct sim *s, struct sim_node *nd,
                          const struct raft_read_state *rs);
void sim_check_close(struct sim *s);

#endif /* MOOR_SIM_H */
