/*
 * tests/sim/sim_check.c: the invariants, checked as the run goes.
 *
 * Election Safety (§5.2): at most one leader per term; every leader seen
 * (in a ready or after a step) is recorded by term.
 * Log Matching (§5.3): every entry a member hands out to persist is
 * recorded by (index, term) with its value and the term of the entry
 * before it; a second entry with the same (index, term) must agree on
 * both, which by induction makes the logs identical up to there.
 * Leader Completeness (§5.4): a member seen as leader of a term must hold
 * every entry applied anywhere so far (those were committed in earlier
 * terms, since this leader has had no time to commit in its own).
 * State Machine Safety (§5.4.3): members apply in index order, and the
 * value at each index is the same everywhere; the state is a hash chain,
 * which a snapshot carries and which must match at its index. Committed
 * entries lost in a crash show up here: a member that restarts without
 * them, or a leader elected without them, fails these checks.
 * Durability (Figure 2, thesis §10.2.1): when an ack of entries or a
 * granted vote leaves a member, its disk already holds those entries or
 * that vote (or a later term); a member that crashes right after cannot
 * take them back.
 * Linearizable reads (§6.4): a read state's index is at least the highest
 * index applied anywhere when the read was asked (every write already
 * acknowledged to a client).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"

struct sim_lm_slot
{
    uint64_t index; /* 0 = empty */
    uint64_t term;
    uint64_t value;
    uint64_t prev_term;
};

void sim_check_fail(struct sim *s, const char *fmt, ...)
{
    if (violation_pending(s)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->violation, sizeof(s->violation), fmt, ap);
    va_end(ap);
    if (s->violation[0] == '\0') {
        s->violation[0] = '?';
    }
    sim_log(s, "VIOLATION: %s", s->violation);
}

static void *xgrow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return p;
    }
    size_t old = *cap;
    size_t c = old == 0 ? 64 : old;
    while (c < need) {
        c *= 2;
    }
    uint8_t *q = moor_realloc(p, c * elem);
    if (q == NULL) {
        fprintf(stderr, "moor-sim: out of memory\n");
        abort();
    }
    memset(q + old * elem, 0, (c - old) * elem);
    *cap = c;
    return q;
}

static void note_leader(struct sim *s, uint64_t id, uint64_t term)
{
    s->leader_of_term =
        xgrow(s->leader_of_term, &s->terms_cap, term + 1, sizeof(uint64_t));
    uint64_t *slot = &s->leader_of_term[term];
    if (*slot == 0) {
        *slot = id;
    } else if (*slot != id) {
        sim_check_fail(s,
                       "Election Safety: n%llu and n%llu both lead term %llu",
                       (unsigned long long)*slot, (unsigned long long)id,
                       (unsigned long long)term);
    }
}

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    return x;
}

/* Log Matching registry: open addressing on (index, term). */
static struct sim_lm_slot *lm_find(struct sim *s, uint64_t index, uint64_t term)
{
    if ((s->lm_len + 1) * 2 > s->lm_cap) {
        size_t old_cap = s->lm_cap;
        struct sim_lm_slot *old = s->lm;
        s->lm_cap = old_cap == 0 ? 1024 : old_cap * 2;
        s->lm = moor_calloc(s->lm_cap, sizeof(*s->lm));
        if (s->lm == NULL) {
            abort();
        }
        s->lm_len = 0;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].index != 0) {
                struct sim_lm_slot *d = lm_find(s, old[i].index, old[i].term);
                *d = old[i];
                s->lm_len++;
            }
        }
        moor_free(old);
    }
    size_t mask = s->lm_cap - 1;
    size_t i = (size_t)mix(index, term) & mask;
    while (s->lm[i].index != 0 &&
           (s->lm[i].index != index || s->lm[i].term != term)) {
        i = (i + 1) & mask;
    }
    return &s->lm[i];
}

static void check_entry(struct sim *s, struct sim_node *nd,
                        const struct raft_entry *e, uint64_t prev_term)
{
    struct sim_lm_slot *slot = lm_find(s, e->index, e->term);
    uint64_t v = sim_entry_value(e);
    if (slot->index == 0) {
        slot->index = e->index;
        slot->term = e->term;
        slot->value = v;
        slot->prev_term = prev_term;
        s->lm_len++;
        return;
    }
    if (slot->value != v || slot->prev_term != prev_term) {
        sim_check_fail(s,
                       "Log Matching: n%llu holds a different entry at index "
                       "%llu term %llu",
                       (unsigned long long)nd->id, (unsigned long long)e->index,
                       (unsigned long long)e->term);
    }
}

/* Leader Completeness for nd, leader of term: it holds every entry applied
 * anywhere (its snapshot covers those at or below its index). */
static void check_leader_complete(struct sim *s, struct sim_node *nd,
                                  uint64_t term)
{
    if (nd->leader_term_checked == term) {
        return;
    }
    nd->leader_term_checked = term;
    const struct raft_snapshot *snap = raft_node_snapshot(nd->r);
    for (size_t i = snap->index + 1; i <= s->chain_len; i++) {
        const struct raft_entry *e = raft_node_entry(nd->r, i);
        if (e == NULL || sim_entry_value(e) != s->chain_val[i]) {
            sim_check_fail(s,
                           "Leader Completeness: n%llu leads term %llu "
                           "without committed entry %zu",
                           (unsigned long long)nd->id, (unsigned long long)term,
                           i);
            return;
        }
    }
    if (snap->index > 0 && snap->index <= s->chain_len &&
        moor_get_le64(snap->data->data + 8) != s->chain_hash[snap->index]) {
        sim_check_fail(s,
                       "Leader Completeness: n%llu's snapshot at %llu "
                       "differs from the committed state",
                       (unsigned long long)nd->id,
                       (unsigned long long)snap->index);
    }
}

void sim_check_ready(struct sim *s, struct sim_node *nd,
                     const struct raft_ready *rd)
{
    if (rd->role == RAFT_LEADER) {
        note_leader(s, nd->id, rd->hard_state.term);
        check_leader_complete(s, nd, rd->hard_state.term);
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *e = &rd->entries[i];
        uint64_t prev_term = raft_node_term_at(nd->r, e->index - 1);
        check_entry(s, nd, e, prev_term);
    }
}

void sim_check_apply(struct sim *s, struct sim_node *nd,
                     const struct raft_entry *e)
{
    if (e->index != nd->applied + 1) {
        sim_check_fail(s,
                       "State Machine Safety: n%llu applies index %llu after "
                       "%llu",
                       (unsigned long long)nd->id, (unsigned long long)e->index,
                       (unsigned long long)nd->applied);
        return;
    }
    uint64_t v = sim_entry_value(e);
    uint64_t h = mix(nd->hash, v);
    if (e->index <= s->chain_len) {
        if (s->chain_val[e->index] != v || s->chain_hash[e->index] != h) {
            sim_check_fail(s,
                           "State Machine Safety: n%llu applies a different "
                           "entry at index %llu",
                           (unsigned long long)nd->id,
                           (unsigned long long)e->index);
            return;
        }
    } else {
        MOOR_ASSERT(e->index == s->chain_len + 1);
        size_t cap = s->chain_cap;
        s->chain_val =
            xgrow(s->chain_val, &cap, e->index + 1, sizeof(uint64_t));
        cap = s->chain_cap;
        s->chain_hash =
            xgrow(s->chain_hash, &cap, e->index + 1, sizeof(uint64_t));
        s->chain_cap = cap;
        s->chain_len = e->index;
        s->chain_val[e->index] = v;
        s->chain_hash[e->index] = h;
    }
    nd->applied = e->index;
    nd->hash = h;
}

void sim_check_snapshot(struct sim *s, struct sim_node *nd,
                        const struct raft_snapshot *snap)
{
    uint64_t index = moor_get_le64(snap->data->data);
    uint64_t hash = moor_get_le64(snap->data->data + 8);
    if (index != snap->index || index > s->chain_len ||
        s->chain_hash[index] != hash) {
        sim_check_fail(s,
                       "State Machine Safety: n%llu installs a snapshot at "
                       "%llu that differs from the committed state",
                       (unsigned long long)nd->id,
                       (unsigned long long)snap->index);
    }
    if (index < nd->applied) {
        sim_check_fail(s,
                       "State Machine Safety: n%llu's snapshot at %llu goes "
                       "back from applied %llu",
                       (unsigned long long)nd->id, (unsigned long long)index,
                       (unsigned long long)nd->applied);
    }
}

void sim_check_after_step(struct sim *s)
{
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        struct sim_node *nd = &s->nodes[id];
        if (nd->alive && raft_node_role(nd->r) == RAFT_LEADER) {
            note_leader(s, id, raft_node_term(nd->r));
            check_leader_complete(s, nd, raft_node_term(nd->r));
        }
    }
}

void sim_check_send(struct sim *s, const struct raft_message *m)
{
    const struct sim_node *nd = &s->nodes[m->from];
    const struct sim_disk *d = &nd->disk;
    /* A member whose disk already holds a later term has moved on: what
     * it says about the earlier term is as if it had persisted it and then
     * a later leader overwrote it, which Raft allows. */
    if (d->hs.term > m->term) {
        return;
    }
    if (m->type == RAFT_MSG_APPEND_RESP && !m->reject) {
        uint64_t durable = d->snap.index + d->n_ents;
        if (m->index > durable) {
            sim_check_fail(s,
                           "Durability: n%llu acknowledges index %llu with "
                           "only %llu on its disk",
                           (unsigned long long)m->from,
                           (unsigned long long)m->index,
                           (unsigned long long)durable);
        }
    } else if (m->type == RAFT_MSG_VOTE_RESP && !m->reject) {
        if (d->hs.term < m->term || d->hs.vote != m->to) {
            sim_check_fail(s,
                           "Durability: n%llu grants its term %llu vote to "
                           "n%llu before its disk records it",
                           (unsigned long long)m->from,
                           (unsigned long long)m->term,
                           (unsigned long long)m->to);
        }
    }
}

void sim_check_read_begin(struct sim *s, uint64_t ctx)
{
    s->reads =
        xgrow(s->reads, &s->reads_cap, s->n_reads + 1, sizeof(*s->reads));
    s->reads[s->n_reads].ctx = ctx;
    s->reads[s->n_reads].min_index = s->chain_len;
    s->n_reads++;
}

void sim_check_read_state(struct sim *s, struct sim_node *nd,
                          const struct raft_read_state *rs)
{
    uint64_t ctx = moor_get_le64(rs->context->data);
    for (size_t i = 0; i < s->n_reads; i++) {
        if (s->reads[i].ctx == ctx) {
            s->reads_served++;
            if (rs->index < s->reads[i].min_index) {
                sim_check_fail(s,
                               "Linearizable read: n%llu answers read %llu "
                               "with index %llu, below %llu acknowledged "
                               "before it",
                               (unsigned long long)nd->id,
                               (unsigned long long)ctx,
                               (unsigned long long)rs->index,
                               (unsigned long long)s->reads[i].min_index);
            }
            s->reads[i] = s->reads[--s->n_reads];
            return;
        }
    }
}

void sim_check_close(struct sim *s)
{
    moor_free(s->leader_of_term);
    moor_free(s->chain_val);
    moor_free(s->chain_hash);
    moor_free(s->lm);
    moor_free(s->reads);
}
