/*
 * tests/sim/sim_main.c: moor-sim's front door and the scenario of one seed.
 *
 *   moor-sim --seeds N [--nodes 3|5] [--steps S] [--seed X] [--verbose]
 *            [--bug commit-old-term|vote-twice|ack-undurable|
 *                   skip-prev-check|read-no-quorum] [--expect-violation]
 *
 * Runs seeds X, X+1, ... X+N-1 (X defaults to 1; --seed alone runs one),
 * each for S ticks (default 10000) on 3 members unless --nodes says.
 * A seed: pick the fault rates (swarm), run S ticks of faults and load
 * with every invariant checked as it goes, then heal everything and check
 * liveness: a leader emerges and a new proposal is applied by every member
 * within a bounded number of ticks. The last line of output is exactly
 * "seeds: N, violations: V, liveness failures: L"; the exit status is 1 on
 * any failure. --expect-violation inverts that for the planted-bug test:
 * exit 0 only if some seed found a violation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define LIVENESS_TICKS 600

struct opts
{
    uint64_t seeds;
    uint64_t first_seed;
    uint32_t nodes;
    uint64_t steps;
    bool verbose;
    uint32_t bugs;
    const char *bug_name;
    bool expect_violation;
};

static double rate(struct moor_prng *r, double lo, double hi)
{
    return lo + (hi - lo) * moor_prng_double(r);
}

/* Swarm testing: each seed draws its own knobs, so some runs are calm and
 * some vicious, and rare combinations get their turn. */
static void pick_swarm(struct sim *s)
{
    struct moor_prng *r = &s->prng;
    struct sim_swarm *w = &s->sw;
    w->p_drop = moor_prng_chance(r, 0.3) ? 0 : rate(r, 0, 0.2);
    w->p_dup = moor_prng_chance(r, 0.5) ? 0 : rate(r, 0, 0.1);
    w->delay_max = (uint32_t)moor_prng_range(r, 1, 10);
    w->disk_delay_max = (uint32_t)moor_prng_range(r, 0, 4);
    w->p_partition = rate(r, 0, 0.03);
    w->p_heal = rate(r, 0.01, 0.1);
    w->p_crash = rate(r, 0, moor_prng_chance(r, 0.5) ? 0.015 : 0.05);
    w->p_restart = rate(r, 0.02, 0.2);
    w->p_propose = rate(r, 0.05, 0.6);
    w->p_read = rate(r, 0, 0.1);
    w->p_conf = rate(r, 0, 0.02);
    w->p_compact = rate(r, 0, 0.05);
    w->p_transfer = rate(r, 0, 0.01);
    w->p_leader_lost = rate(r, 0, 1);
    w->pre_vote = moor_prng_chance(r, 0.75);
    w->check_quorum = moor_prng_chance(r, 0.75);
    w->heartbeat_ticks = (uint32_t)moor_prng_range(r, 1, 3);
    w->inflight_max = (uint32_t)moor_prng_range(r, 1, 32);
    w->msg_entries_max = (uint32_t)moor_prng_range(r, 1, 16);
    w->msg_bytes_max = (size_t)moor_prng_range(r, 8, 256);
    w->uncommitted_bytes_max = (size_t)moor_prng_range(r, 64, 4096);
    w->apply_entries_max = (uint32_t)moor_prng_range(r, 1, 64);
    w->read_index_max = (uint32_t)moor_prng_range(r, 1, 16);
    if (!w->check_quorum) {
        /* Without the lease a removed member that missed its removal
         * keeps disrupting the group (thesis §4.2.3); the server shuts
         * removed members down, which the simulator does not model. */
        w->p_conf = 0;
    }
}

static uint64_t pick_alive(struct sim *s)
{
    uint64_t ids[SIM_IDS_MAX];
    size_t n = 0;
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        if (s->nodes[id].alive) {
            ids[n++] = id;
        }
    }
    return n == 0 ? 0 : ids[moor_prng_below(&s->prng, n)];
}

static uint64_t find_leader(struct sim *s)
{
    uint64_t best = 0;
    uint64_t best_term = 0;
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        struct sim_node *nd = &s->nodes[id];
        if (nd->alive && raft_node_role(nd->r) == RAFT_LEADER &&
            raft_node_term(nd->r) >= best_term) {
            best = id;
            best_term = raft_node_term(nd->r);
        }
    }
    return best;
}

static uint64_t pick_any_leader(struct sim *s)
{
    uint64_t ids[SIM_IDS_MAX];
    size_t n = 0;
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        struct sim_node *nd = &s->nodes[id];
        if (nd->alive && raft_node_role(nd->r) == RAFT_LEADER) {
            ids[n++] = id;
        }
    }
    return n == 0 ? 0 : ids[moor_prng_below(&s->prng, n)];
}

static void heal(struct sim *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
}

static void partition(struct sim *s)
{
    uint64_t kind = moor_prng_below(&s->prng, 3);
    uint64_t leader = find_leader(s);
    heal(s);
    if (kind == 0 && leader != 0) {
        sim_log(s, "partition: isolate leader n%llu",
                (unsigned long long)leader);
        for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
            if (id != leader) {
                s->blocked[leader][id] = true;
                s->blocked[id][leader] = true;
            }
        }
    } else if (kind == 1 || leader == 0) {
        /* A random side against the rest: minority or majority. */
        bool side[SIM_IDS_MAX + 1];
        for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
            side[id] = moor_prng_chance(&s->prng, 0.5);
        }
        sim_log(s, "partition: split");
        for (uint64_t a = 1; a <= SIM_IDS_MAX; a++) {
            for (uint64_t b = 1; b <= SIM_IDS_MAX; b++) {
                s->blocked[a][b] = side[a] != side[b];
            }
        }
    } else {
        uint64_t a = moor_prng_range(&s->prng, 1, SIM_IDS_MAX);
        uint64_t b = moor_prng_range(&s->prng, 1, SIM_IDS_MAX);
        sim_log(s, "partition: one-way n%llu -/-> n%llu", (unsigned long long)a,
                (unsigned long long)b);
        s->blocked[a][b] = true;
        if (leader != 0 && moor_prng_chance(&s->prng, 0.5)) {
            /* The leader cannot hear anyone, but still sends. */
            sim_log(s, "partition: nobody -/-> leader n%llu",
                    (unsigned long long)leader);
            for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
                s->blocked[id][leader] = id != leader;
            }
        }
    }
}

static void crash(struct sim *s)
{
    /* Half the crashes hit the leader: leader changes with divergent,
     * partly replicated tails are where Figure 8 lives. */
    uint64_t id = moor_prng_chance(&s->prng, 0.5) ? find_leader(s) : 0;
    if (id == 0) {
        id = pick_alive(s);
    }
    if (id == 0) {
        return;
    }
    uint64_t term = raft_node_term(s->nodes[id].r);
    sim_node_crash(s, id);
    /* Members connected to the crashed one see their connection reset. */
    for (uint64_t o = 1; o <= SIM_IDS_MAX; o++) {
        struct sim_node *nd = &s->nodes[o];
        if (nd->alive && raft_node_term(nd->r) == term &&
            moor_prng_chance(&s->prng, s->sw.p_leader_lost)) {
            raft_node_report_leader_lost(nd->r, id);
        }
    }
}

static void restart(struct sim *s)
{
    uint64_t ids[SIM_IDS_MAX];
    size_t n = 0;
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        if (s->nodes[id].exists && !s->nodes[id].alive) {
            ids[n++] = id;
        }
    }
    if (n > 0) {
        sim_node_start(s, ids[moor_prng_below(&s->prng, n)]);
    }
}

static struct moor_bytes *value_new(uint64_t v)
{
    struct moor_bytes *b = moor_bytes_new(8);
    MOOR_ASSERT(b != NULL);
    moor_put_le64(b->data, v);
    return b;
}

static void propose(struct sim *s, uint64_t id)
{
    struct moor_bytes *vals[3];
    size_t k = (size_t)moor_prng_range(&s->prng, 1, 3);
    for (size_t i = 0; i < k; i++) {
        vals[i] = value_new(++s->next_value);
    }
    if (raft_node_propose(s->nodes[id].r, vals, k) == MOOR_OK) {
        s->proposals += k;
    }
    for (size_t i = 0; i < k; i++) {
        moor_bytes_unref(vals[i]);
    }
}

static void read_index(struct sim *s, uint64_t id)
{
    uint64_t ctx = ++s->next_read;
    struct moor_bytes *b = value_new(ctx);
    sim_check_read_begin(s, ctx);
    if (raft_node_read_index(s->nodes[id].r, b) != MOOR_OK) {
        s->n_reads--;
    }
    moor_bytes_unref(b);
}

static void conf_change(struct sim *s)
{
    uint64_t leader = find_leader(s);
    if (leader == 0) {
        return;
    }
    struct raft_node *r = s->nodes[leader].r;
    const struct raft_conf *c = raft_node_conf(r);
    uint32_t voters = raft_conf_voters(c);
    uint64_t fresh = 0;
    for (uint64_t id = 1; id <= SIM_IDS_MAX && fresh == 0; id++) {
        if (!s->nodes[id].exists) {
            fresh = id;
        }
    }
    struct raft_conf_change cc = {0};
    uint64_t pick = moor_prng_below(&s->prng, 4);
    const struct raft_member *m = &c->members[moor_prng_below(&s->prng, c->n)];
    if (pick == 0 && fresh != 0) {
        cc.type = moor_prng_chance(&s->prng, 0.8) ? RAFT_CONF_ADD_LEARNER
                                                  : RAFT_CONF_ADD_VOTER;
        cc.node_id = fresh;
    } else if (pick == 1 && m->learner) {
        cc.type = RAFT_CONF_PROMOTE;
        cc.node_id = m->id;
    } else if (pick == 2 && (m->learner || voters > 3)) {
        cc.type = RAFT_CONF_REMOVE;
        cc.node_id = m->id;
    } else {
        return;
    }
    if (cc.type != RAFT_CONF_REMOVE && voters >= 7) {
        return;
    }
    int rv = raft_node_propose_conf_change(r, &cc);
    sim_log(s, "n%llu proposes conf change %u of n%llu: %s",
            (unsigned long long)leader, cc.type, (unsigned long long)cc.node_id,
            moor_strerror(rv));
    if (rv == MOOR_OK) {
        s->conf_changes++;
        if (cc.node_id == fresh) {
            sim_node_start(s, fresh);
        }
    }
}

static void compact(struct sim *s, uint64_t id)
{
    struct raft_node *r = s->nodes[id].r;
    uint64_t applied = raft_node_applied_index(r);
    uint64_t snap = raft_node_snapshot(r)->index;
    if (applied <= snap) {
        return;
    }
    uint64_t keep = moor_prng_below(&s->prng, MOOR_MIN(applied - snap, 8));
    uint64_t index = applied - keep;
    struct moor_bytes *b = moor_bytes_new(16);
    MOOR_ASSERT(b != NULL);
    moor_put_le64(b->data, index);
    moor_put_le64(b->data + 8, s->chain_hash[index]);
    if (raft_node_compact(r, index, b) == MOOR_OK) {
        sim_disk_snapshot(&s->nodes[id], raft_node_snapshot(r));
        sim_log(s, "n%llu compacts to %llu", (unsigned long long)id,
                (unsigned long long)index);
    }
    moor_bytes_unref(b);
}

static void transfer(struct sim *s)
{
    uint64_t leader = find_leader(s);
    if (leader == 0) {
        return;
    }
    uint64_t to = moor_prng_range(&s->prng, 1, SIM_IDS_MAX);
    int rv = raft_node_transfer_leader(s->nodes[leader].r, to);
    if (rv == MOOR_OK) {
        s->transfers++;
        sim_log(s, "n%llu transfers leadership to n%llu",
                (unsigned long long)leader, (unsigned long long)to);
    }
}

static void one_tick(struct sim *s)
{
    s->now++;
    sim_deliver_due(s);
    sim_tick_all(s);
    sim_process(s);
    if (!violation_pending(s)) {
        sim_check_after_step(s);
    }
}

static void faults(struct sim *s)
{
    struct sim_swarm *w = &s->sw;
    struct moor_prng *r = &s->prng;
    if (moor_prng_chance(r, w->p_partition)) {
        partition(s);
    }
    if (moor_prng_chance(r, w->p_heal)) {
        heal(s);
    }
    if (moor_prng_chance(r, w->p_crash)) {
        crash(s);
    }
    if (moor_prng_chance(r, w->p_restart)) {
        restart(s);
    }
    if (moor_prng_chance(r, w->p_conf)) {
        conf_change(s);
    }
    if (moor_prng_chance(r, w->p_transfer)) {
        transfer(s);
    }
    uint64_t id = pick_alive(s);
    if (id != 0 && moor_prng_chance(r, w->p_propose)) {
        /* Clients mostly find a leader, possibly a deposed one that does
         * not know yet: its tail diverges (Figure 8's ingredient). */
        uint64_t leader = pick_any_leader(s);
        propose(s, leader != 0 && moor_prng_chance(r, 0.7) ? leader : id);
    }
    id = pick_alive(s);
    if (id != 0 && moor_prng_chance(r, w->p_read)) {
        read_index(s, id);
    }
    id = pick_alive(s);
    if (id != 0 && moor_prng_chance(r, w->p_compact)) {
        compact(s, id);
    }
}

/* After healing: a leader emerges and one new proposal is applied by every
 * member of its configuration within LIVENESS_TICKS. */
static bool liveness(struct sim *s, uint64_t *ticks_out)
{
    heal(s);
    s->sw.p_drop = 0;
    s->sw.p_dup = 0;
    s->sw.delay_max = MOOR_MIN(s->sw.delay_max, 2);
    s->sw.disk_delay_max = MOOR_MIN(s->sw.disk_delay_max, 1);
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        if (s->nodes[id].exists && !s->nodes[id].alive) {
            sim_node_start(s, id);
        }
    }
    /* The bound grows with the backlog to replicate (the swarm may have
     * picked one entry per message and one message in flight). */
    uint64_t hi = 0;
    uint64_t lo = UINT64_MAX;
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        if (s->nodes[id].alive) {
            hi = MOOR_MAX(hi, raft_node_last_index(s->nodes[id].r));
            lo = MOOR_MIN(lo, raft_node_commit_index(s->nodes[id].r));
        }
    }
    uint64_t budget = LIVENESS_TICKS + (hi > lo ? 4 * (hi - lo) : 0);
    sim_log(s, "heal: liveness check starts, budget %llu ticks",
            (unsigned long long)budget);
    uint64_t value = ++s->next_value;
    struct moor_bytes *b = value_new(value);
    struct raft_entry probe = {.type = RAFT_ENTRY_NORMAL, .data = b};
    uint64_t want = sim_entry_value(&probe);
    uint64_t proposed_term = 0;
    bool ok = false;
    for (uint64_t t = 0; t < budget && !violation_pending(s); t++) {
        one_tick(s);
        uint64_t leader = find_leader(s);
        if (leader == 0) {
            continue;
        }
        struct raft_node *r = s->nodes[leader].r;
        if (proposed_term != raft_node_term(r)) {
            if (raft_node_propose(r, &b, 1) == MOOR_OK) {
                proposed_term = raft_node_term(r);
            }
        }
        uint64_t at = 0;
        for (size_t i = 1; i <= s->chain_len; i++) {
            if (s->chain_val[i] == want) {
                at = i;
                break;
            }
        }
        if (at == 0) {
            continue;
        }
        const struct raft_conf *c = raft_node_conf(r);
        bool all = true;
        for (uint32_t i = 0; i < c->n && all; i++) {
            const struct sim_node *nd = &s->nodes[c->members[i].id];
            all = nd->alive && nd->applied >= at;
        }
        if (all) {
            ok = true;
            *ticks_out = t + 1;
            break;
        }
    }
    moor_bytes_unref(b);
    return ok;
}

static void dump(const struct sim *s)
{
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        const struct sim_node *nd = &s->nodes[id];
        if (!nd->alive) {
            continue;
        }
        const struct raft_node *r = nd->r;
        const struct raft_conf *c = raft_node_conf(r);
        char conf[128];
        size_t off = 0;
        for (uint32_t i = 0; i < c->n && off < sizeof(conf) - 8; i++) {
            off += (size_t)snprintf(conf + off, sizeof(conf) - off, "%s%llu%s",
                                    i ? "," : "",
                                    (unsigned long long)c->members[i].id,
                                    c->members[i].learner ? "L" : "");
        }
        conf[off] = '\0';
        printf(
            "  n%llu: role %d term %llu vote %llu leader %llu commit %llu "
            "applied %llu persisted %llu last %llu (term %llu) first %llu "
            "conf {%s}\n",
            (unsigned long long)id, raft_node_role(r),
            (unsigned long long)raft_node_term(r),
            (unsigned long long)raft_node_vote(r),
            (unsigned long long)raft_node_leader(r),
            (unsigned long long)raft_node_commit_index(r),
            (unsigned long long)raft_node_applied_index(r),
            (unsigned long long)raft_node_persisted_index(r),
            (unsigned long long)raft_node_last_index(r),
            (unsigned long long)raft_node_term_at(r, raft_node_last_index(r)),
            (unsigned long long)raft_node_first_index(r), conf);
    }
}

/* Runs one seed; returns 0 ok, 1 violation, 2 liveness failure. */
static int run_seed(const struct opts *o, uint64_t seed, struct sim *stats)
{
    struct sim *s = moor_calloc(1, sizeof(*s));
    MOOR_ASSERT(s != NULL);
    sim_init(s, seed, o->nodes, o->bugs, o->verbose);
    pick_swarm(s);
    if (o->verbose) {
        printf(
            "seed %llu: drop %.3f dup %.3f delay<=%u disk<=%u "
            "pre_vote %d check_quorum %d heartbeat %u inflight %u\n",
            (unsigned long long)seed, s->sw.p_drop, s->sw.p_dup,
            s->sw.delay_max, s->sw.disk_delay_max, s->sw.pre_vote,
            s->sw.check_quorum, s->sw.heartbeat_ticks, s->sw.inflight_max);
    }
    for (uint64_t id = 1; id <= o->nodes; id++) {
        sim_node_start(s, id);
    }
    int result = 0;
    for (s->step = 0; s->step < o->steps && !violation_pending(s); s->step++) {
        faults(s);
        one_tick(s);
    }
    uint64_t ticks = 0;
    if (!violation_pending(s) && !liveness(s, &ticks)) {
        result = 2;
        printf(
            "seed %llu: LIVENESS: no new proposal applied by every member "
            "within the budget after healing\n",
            (unsigned long long)seed);
        if (o->verbose) {
            dump(s);
        }
    }
    if (violation_pending(s)) {
        result = 1;
        printf("seed %llu: VIOLATION at tick %llu: %s\n",
               (unsigned long long)seed, (unsigned long long)s->now,
               s->violation);
    }
    if (result != 0) {
        printf(
            "  replay: moor-sim --seed %llu --nodes %u --steps %llu%s%s "
            "--verbose\n",
            (unsigned long long)seed, o->nodes, (unsigned long long)o->steps,
            o->bug_name ? " --bug " : "", o->bug_name ? o->bug_name : "");
    } else if (o->verbose) {
        printf("seed %llu: ok, liveness in %llu ticks, %zu entries applied\n",
               (unsigned long long)seed, (unsigned long long)ticks,
               s->chain_len);
    }
    stats->proposals += s->proposals;
    stats->elections += s->elections;
    stats->crashes += s->crashes;
    stats->snapshots_sent += s->snapshots_sent;
    stats->conf_changes += s->conf_changes;
    stats->transfers += s->transfers;
    stats->reads_served += s->reads_served;
    stats->chain_len += s->chain_len;
    sim_close(s);
    moor_free(s);
    return result;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: moor-sim --seeds N [--nodes 3|5] [--steps S] [--seed X] "
            "[--verbose]\n"
            "                [--bug commit-old-term|vote-twice|ack-undurable|"
            "skip-prev-check|\n"
            "                       read-no-quorum]\n"
            "                [--expect-violation]\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '\0' || end == NULL || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    struct opts o = {.seeds = 0, .first_seed = 1, .nodes = 3, .steps = 10000};
    bool seed_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x = 0;
        if (strcmp(a, "--verbose") == 0) {
            o.verbose = true;
        } else if (strcmp(a, "--expect-violation") == 0) {
            o.expect_violation = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (v != NULL && strcmp(a, "--bug") == 0) {
            if (strcmp(v, "commit-old-term") == 0) {
                o.bugs |= RAFT_BUG_COMMIT_OLD_TERM;
            } else if (strcmp(v, "vote-twice") == 0) {
                o.bugs |= RAFT_BUG_VOTE_TWICE;
            } else if (strcmp(v, "ack-undurable") == 0) {
                o.bugs |= RAFT_BUG_ACK_UNDURABLE;
            } else if (strcmp(v, "skip-prev-check") == 0) {
                o.bugs |= RAFT_BUG_SKIP_PREV_CHECK;
            } else if (strcmp(v, "read-no-quorum") == 0) {
                o.bugs |= RAFT_BUG_READ_NO_QUORUM;
            } else {
                usage(stderr);
                return 2;
            }
            o.bug_name = v;
            i++;
        } else if (v != NULL && parse_u64(v, &x) &&
                   (strcmp(a, "--seeds") == 0 || strcmp(a, "--seed") == 0 ||
                    strcmp(a, "--nodes") == 0 || strcmp(a, "--steps") == 0)) {
            if (strcmp(a, "--seeds") == 0) {
                o.seeds = x;
            } else if (strcmp(a, "--seed") == 0) {
                o.first_seed = x;
                seed_given = true;
            } else if (strcmp(a, "--nodes") == 0) {
                if (x < 1 || x > 7) {
                    usage(stderr);
                    return 2;
                }
                o.nodes = (uint32_t)x;
            } else {
                o.steps = x;
            }
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.seeds == 0) {
        if (!seed_given) {
            usage(stderr);
            return 2;
        }
        o.seeds = 1;
    }
    struct sim stats;
    memset(&stats, 0, sizeof(stats));
    uint64_t violations = 0;
    uint64_t live_fail = 0;
    for (uint64_t i = 0; i < o.seeds; i++) {
        int r = run_seed(&o, o.first_seed + i, &stats);
        violations += r == 1 ? 1u : 0u;
        live_fail += r == 2 ? 1u : 0u;
        if (o.expect_violation && violations > 0) {
            o.seeds = i + 1;
            break;
        }
    }
    printf("nodes %u, steps %llu per seed, first seed %llu%s%s\n", o.nodes,
           (unsigned long long)o.steps, (unsigned long long)o.first_seed,
           o.bug_name ? ", planted bug " : "", o.bug_name ? o.bug_name : "");
    printf(
        "entries applied %llu, proposals %llu, leaders %llu, crashes "
        "%llu, snapshots %llu, conf changes %llu, transfers %llu, reads "
        "%llu\n",
        (unsigned long long)stats.chain_len,
        (unsigned long long)stats.proposals,
        (unsigned long long)stats.elections, (unsigned long long)stats.crashes,
        (unsigned long long)stats.snapshots_sent,
        (unsigned long long)stats.conf_changes,
        (unsigned long long)stats.transfers,
        (unsigned long long)stats.reads_served);
    printf("seeds: %llu, violations: %llu, liveness failures: %llu\n",
           (unsigned long long)o.seeds, (unsigned long long)violations,
           (unsigned long long)live_fail);
    if (o.expect_violation) {
        return violations > 0 ? 0 : 1;
    }
    return violations + live_fail > 0 ? 1 : 0;
}
