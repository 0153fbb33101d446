/*
 * tests/unit/raft_fixture.h: a scripted in-memory cluster for raft's unit
 * tests, in the spirit of etcd-io/raft's datadriven tests: add members,
 * campaign, cut links, deliver one message or stabilize, crash, restart.
 *
 * Each member runs the ready contract of raft.h. Storage is synchronous
 * unless a member is put on "slow disk": then its writes wait for
 * fx_flush (so a test can show what happens before they are durable).
 * Messages sit in one FIFO queue until delivered; a cut link drops them
 * at delivery. With MOOR_RAFT_TRACE=1 in the environment every delivery
 * and every leader change is printed, which makes a failing test read as
 * a trace.
 *
 * Header-only (static inline) so each test file stays one executable.
 */
#ifndef MOOR_RAFT_FIXTURE_H
#define MOOR_RAFT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"

#define FX_MAX 7
#define FX_QUEUE_MAX 4096
#define FX_APPLIED_MAX 256

struct fx_member
{
    struct raft_node *r;
    bool up;
    bool slow_disk;
    /* The disk: what was persisted (synchronous unless slow_disk). */
    struct raft_hard_state hs;
    struct raft_snapshot snap;
    struct raft_entry *ents; /* after snap.index */
    size_t n_ents;
    /* Writes waiting on a slow disk: entries up to index, and messages. */
    uint64_t pending_index;
    uint64_t pending_term;
    struct raft_message *held;
    size_t n_held;
    struct raft_entry *pend;
    size_t n_pend;
    struct raft_hard_state pend_hs;
    bool pend_has_hs;
    /* The state machine: applied values as strings ("" for empty). */
    char applied[FX_APPLIED_MAX][16];
    size_t n_applied;
    uint64_t applied_index;
    /* Read states seen. */
    uint64_t read_index[16];
    char read_ctx[16][16];
    size_t n_reads;
};

struct fx
{
    size_t n;
    struct raft_config base;
    struct raft_conf conf;
    struct fx_member m[FX_MAX + 1]; /* by id */
    bool cut[FX_MAX + 1][FX_MAX + 1];
    struct raft_message queue[FX_QUEUE_MAX];
    size_t n_queue;
    uint64_t delivered[16]; /* by message type */
    bool trace;
};

static inline void fx_msg_copy(struct raft_message *dst,
                               const struct raft_message *m)
{
    *dst = *m;
    dst->entries = NULL;
    if (m->n_entries > 0) {
        dst->entries = moor_malloc(m->n_entries * sizeof(*m->entries));
        for (size_t i = 0; i < m->n_entries; i++) {
            dst->entries[i] = m->entries[i];
            moor_bytes_ref(m->entries[i].data);
        }
    }
    moor_bytes_ref(m->snapshot.data);
    moor_bytes_ref(m->context);
}

static inline void fx_msg_free(struct raft_message *m)
{
    for (size_t i = 0; i < m->n_entries; i++) {
        moor_bytes_unref(m->entries[i].data);
    }
    moor_free(m->entries);
    moor_bytes_unref(m->snapshot.data);
    moor_bytes_unref(m->context);
    memset(m, 0, sizeof(*m));
}

static inline void fx_trace_msg(const struct fx *f, const char *what,
                                const struct raft_message *m)
{
    if (!f->trace) {
        return;
    }
    printf(
        "  %s %llu->%llu %s term %llu index %llu log_term %llu commit "
        "%llu entries %zu%s\n",
        what, (unsigned long long)m->from, (unsigned long long)m->to,
        raft_message_type_name(m->type), (unsigned long long)m->term,
        (unsigned long long)m->index, (unsigned long long)m->log_term,
        (unsigned long long)m->commit, m->n_entries,
        m->reject ? " reject" : "");
}

static inline void fx_enqueue(struct fx *f, const struct raft_message *m)
{
    if (f->n_queue == FX_QUEUE_MAX) {
        fprintf(stderr, "fixture queue full\n");
        abort();
    }
    fx_msg_copy(&f->queue[f->n_queue++], m);
}

/* Starts (or restarts from its disk) member id. */
static inline void fx_start(struct fx *f, uint64_t id)
{
    struct fx_member *x = &f->m[id];
    struct raft_config c = f->base;
    c.id = id;
    c.seed = id;
    c.conf = f->conf;
    struct raft_restore r = {
        .hard_state = x->hs,
        .snapshot = x->snap.index > 0 ? &x->snap : NULL,
        .entries = x->ents,
        .n_entries = x->n_ents,
        .applied = x->snap.index,
    };
    int rv = raft_node_new(&c, &r, &x->r);
    if (rv != MOOR_OK) {
        fprintf(stderr, "raft_node_new: %s\n", moor_strerror(rv));
        abort();
    }
    x->up = true;
    x->n_applied = 0;
    x->applied_index = x->snap.index;
}

/* n voters 1..n with the given config template (id/conf/seed are set per
 * member). Election timeouts are made deterministic by the seeds. */
static inline void fx_init(struct fx *f, size_t n,
                           const struct raft_config *base)
{
    memset(f, 0, sizeof(*f));
    f->n = n;
    f->base = *base;
    const char *t = getenv("MOOR_RAFT_TRACE");
    f->trace = t != NULL && t[0] == '1';
    f->conf.n = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        f->conf.members[i].id = i + 1;
    }
    for (uint64_t id = 1; id <= n; id++) {
        fx_start(f, id);
    }
}

static inline void fx_disk_append(struct fx_member *x,
                                  const struct raft_entry *e, size_t n)
{
    if (n == 0) {
        return;
    }
    size_t keep = (size_t)(e[0].index - x->snap.index - 1);
    for (size_t i = keep; i < x->n_ents; i++) {
        moor_bytes_unref(x->ents[i].data);
    }
    x->n_ents = keep < x->n_ents ? keep : x->n_ents;
    x->ents = moor_realloc(x->ents, (x->n_ents + n) * sizeof(*x->ents));
    for (size_t i = 0; i < n; i++) {
        x->ents[x->n_ents + i] = e[i];
        moor_bytes_ref(e[i].data);
    }
    x->n_ents += n;
}

static inline void fx_disk_snapshot(struct fx_member *x,
                                    const struct raft_snapshot *s)
{
    size_t drop = 0;
    while (drop < x->n_ents && x->ents[drop].index <= s->index) {
        drop++;
    }
    bool match = drop > 0 && x->ents[drop - 1].term == s->term &&
                 x->ents[drop - 1].index == s->index;
    for (size_t i = 0; i < drop; i++) {
        moor_bytes_unref(x->ents[i].data);
    }
    if (drop > 0) {
        memmove(x->ents, x->ents + drop, (x->n_ents - drop) * sizeof(*x->ents));
        x->n_ents -= drop;
    }
    if (!match) {
        for (size_t i = 0; i < x->n_ents; i++) {
            moor_bytes_unref(x->ents[i].data);
        }
        x->n_ents = 0;
    }
    moor_bytes_unref(x->snap.data);
    x->snap = *s;
    x->snap.data = moor_bytes_ref(s->data);
}

static inline void fx_apply(struct fx_member *x, const struct raft_entry *e)
{
    if (x->n_applied < FX_APPLIED_MAX) {
        size_t len = e->data != NULL ? e->data->len : 0;
        if (e->type != RAFT_ENTRY_NORMAL) {
            len = 0;
        }
        len = len < 15 ? len : 15;
        if (len > 0) {
            memcpy(x->applied[x->n_applied], e->data->data, len);
        }
        x->applied[x->n_applied][len] = '\0';
        x->n_applied++;
    }
    x->applied_index = e->index;
}

/* Runs member id's readies until it has none. */
static inline void fx_process_one(struct fx *f, uint64_t id)
{
    struct fx_member *x = &f->m[id];
    while (x->up && raft_node_has_ready(x->r)) {
        struct raft_ready rd;
        if (raft_node_ready(x->r, &rd) != MOOR_OK) {
            abort();
        }
        if (f->trace && rd.soft_state_changed) {
            printf("  member %llu: role %u leader %llu term %llu\n",
                   (unsigned long long)id, rd.role,
                   (unsigned long long)rd.leader,
                   (unsigned long long)rd.hard_state.term);
        }
        if (rd.snapshot != NULL) {
            fx_disk_snapshot(x, rd.snapshot);
            x->applied_index = rd.snapshot->index;
        }
        if (x->slow_disk) {
            /* The write waits in memory: a crash loses it. */
            x->pend = moor_realloc(
                x->pend, (x->n_pend + rd.n_entries + 1) * sizeof(*x->pend));
            for (size_t i = 0; i < rd.n_entries; i++) {
                x->pend[x->n_pend++] = rd.entries[i];
                moor_bytes_ref(rd.entries[i].data);
            }
            if (rd.hard_state_changed) {
                x->pend_hs = rd.hard_state;
                x->pend_has_hs = true;
            }
        } else {
            fx_disk_append(x, rd.entries, rd.n_entries);
            if (rd.hard_state_changed) {
                x->hs = rd.hard_state;
            }
        }
        for (size_t i = 0; i < rd.n_msgs; i++) {
            fx_enqueue(f, &rd.msgs[i]);
        }
        for (size_t i = 0; i < rd.n_committed; i++) {
            fx_apply(x, &rd.committed[i]);
        }
        for (size_t i = 0; i < rd.n_read_states && x->n_reads < 16; i++) {
            const struct raft_read_state *rs = &rd.read_states[i];
            x->read_index[x->n_reads] = rs->index;
            size_t len = rs->context ? rs->context->len : 0;
            len = len < 15 ? len : 15;
            memcpy(x->read_ctx[x->n_reads], rs->context->data, len);
            x->read_ctx[x->n_reads][len] = '\0';
            x->n_reads++;
        }
        uint64_t pi = rd.persist_index;
        uint64_t pt = rd.persist_term;
        if (x->slow_disk) {
            /* Durable only at fx_flush: hold the "after" messages. */
            if (pi != 0) {
                x->pending_index = pi;
                x->pending_term = pt;
            }
            x->held = moor_realloc(
                x->held, (x->n_held + rd.n_msgs_after + 1) * sizeof(*x->held));
            for (size_t i = 0; i < rd.n_msgs_after; i++) {
                fx_msg_copy(&x->held[x->n_held++], &rd.msgs_after[i]);
            }
            raft_node_advance(x->r, &rd);
            continue;
        }
        for (size_t i = 0; i < rd.n_msgs_after; i++) {
            fx_enqueue(f, &rd.msgs_after[i]);
        }
        raft_node_advance(x->r, &rd);
        if (pi != 0) {
            raft_node_persisted(x->r, pi, pt);
        }
    }
}

static inline void fx_process(struct fx *f)
{
    for (uint64_t id = 1; id <= FX_MAX; id++) {
        if (f->m[id].up) {
            fx_process_one(f, id);
        }
    }
}

/* A slow disk finishes its writes: raft learns, held messages leave. */
static inline void fx_flush(struct fx *f, uint64_t id)
{
    struct fx_member *x = &f->m[id];
    /* Entries may overwrite each other within the pending writes: apply
     * them one by one, as the disk would in order. */
    for (size_t i = 0; i < x->n_pend; i++) {
        fx_disk_append(x, &x->pend[i], 1);
        moor_bytes_unref(x->pend[i].data);
    }
    x->n_pend = 0;
    if (x->pend_has_hs) {
        x->hs = x->pend_hs;
        x->pend_has_hs = false;
    }
    if (x->pending_index != 0) {
        raft_node_persisted(x->r, x->pending_index, x->pending_term);
        x->pending_index = 0;
    }
    for (size_t i = 0; i < x->n_held; i++) {
        fx_enqueue(f, &x->held[i]);
        fx_msg_free(&x->held[i]);
    }
    x->n_held = 0;
    fx_process(f);
}

/* Delivers queued message number i (dropped if its link is cut or the
 * receiver is down). */
static inline void fx_deliver_at(struct fx *f, size_t i)
{
    struct raft_message m = f->queue[i];
    memmove(&f->queue[i], &f->queue[i + 1],
            (f->n_queue - i - 1) * sizeof(f->queue[0]));
    f->n_queue--;
    if (f->cut[m.from][m.to] || !f->m[m.to].up) {
        fx_trace_msg(f, "drop", &m);
    } else {
        fx_trace_msg(f, "deliver", &m);
        f->delivered[m.type & 15]++;
        raft_node_step(f->m[m.to].r, &m);
    }
    fx_msg_free(&m);
}

/* Delivers the first queued message from -> to of type (0 = any); false
 * when there is none. */
static inline bool fx_deliver(struct fx *f, uint64_t from, uint64_t to,
                              uint8_t type)
{
    fx_process(f);
    for (size_t i = 0; i < f->n_queue; i++) {
        const struct raft_message *m = &f->queue[i];
        if ((from == 0 || m->from == from) && (to == 0 || m->to == to) &&
            (type == 0 || m->type == type)) {
            fx_deliver_at(f, i);
            fx_process(f);
            return true;
        }
    }
    return false;
}

/* Drops every queued message (lost in the network). */
static inline void fx_drop_all(struct fx *f)
{
    for (size_t i = 0; i < f->n_queue; i++) {
        fx_trace_msg(f, "drop", &f->queue[i]);
        fx_msg_free(&f->queue[i]);
    }
    f->n_queue = 0;
}

/* Processes and delivers until nothing moves. */
static inline void fx_stabilize(struct fx *f)
{
    fx_process(f);
    for (int guard = 0; guard < 100000 && f->n_queue > 0; guard++) {
        fx_deliver_at(f, 0);
        fx_process(f);
    }
}

/* Delivers every queued message of type (and those of that type the
 * deliveries cause). */
static inline void fx_deliver_type(struct fx *f, uint8_t type)
{
    while (fx_deliver(f, 0, 0, type)) {
    }
}

/* Ticks every member that is up, stabilizing after each tick. */
static inline void fx_run(struct fx *f, int ticks)
{
    for (int i = 0; i < ticks; i++) {
        for (uint64_t id = 1; id <= FX_MAX; id++) {
            if (f->m[id].up) {
                raft_node_tick(f->m[id].r);
            }
        }
        fx_stabilize(f);
    }
}

/* The member that leads the highest term, 0 = none. */
static inline uint64_t fx_leader(const struct fx *f)
{
    uint64_t best = 0;
    uint64_t term = 0;
    for (uint64_t id = 1; id <= FX_MAX; id++) {
        const struct fx_member *x = &f->m[id];
        if (x->up && raft_node_role(x->r) == RAFT_LEADER &&
            raft_node_term(x->r) >= term) {
            best = id;
            term = raft_node_term(x->r);
        }
    }
    return best;
}

static inline void fx_cut(struct fx *f, uint64_t a, uint64_t b)
{
    f->cut[a][b] = true;
    f->cut[b][a] = true;
}

static inline void fx_isolate(struct fx *f, uint64_t a)
{
    for (uint64_t b = 1; b <= FX_MAX; b++) {
        if (b != a) {
            fx_cut(f, a, b);
        }
    }
}

static inline void fx_heal(struct fx *f)
{
    memset(f->cut, 0, sizeof(f->cut));
}

static inline void fx_tick(struct fx *f, uint64_t id, int times)
{
    for (int i = 0; i < times; i++) {
        raft_node_tick(f->m[id].r);
        fx_process(f);
    }
}

static inline void fx_tick_all(struct fx *f, int times)
{
    for (int i = 0; i < times; i++) {
        for (uint64_t id = 1; id <= FX_MAX; id++) {
            if (f->m[id].up) {
                raft_node_tick(f->m[id].r);
            }
        }
        fx_process(f);
    }
}

/* Campaigns member id and stabilizes. */
static inline void fx_elect(struct fx *f, uint64_t id)
{
    raft_node_campaign(f->m[id].r);
    fx_stabilize(f);
}

static inline int fx_propose(struct fx *f, uint64_t id, const char *value)
{
    struct moor_bytes *b = moor_bytes_copy(value, strlen(value));
    int rv = raft_node_propose(f->m[id].r, &b, 1);
    moor_bytes_unref(b);
    fx_process(f);
    return rv;
}

/* Crash: memory is lost, the disk stays (writes of a slow disk that were
 * not flushed are lost). */
static inline void fx_crash(struct fx *f, uint64_t id)
{
    struct fx_member *x = &f->m[id];
    raft_node_free(x->r);
    x->r = NULL;
    x->up = false;
    for (size_t i = 0; i < x->n_held; i++) {
        fx_msg_free(&x->held[i]);
    }
    x->n_held = 0;
    x->pending_index = 0;
    for (size_t i = 0; i < x->n_pend; i++) {
        moor_bytes_unref(x->pend[i].data);
    }
    x->n_pend = 0;
    x->pend_has_hs = false;
}

/* True when member id applied value (in any position). */
static inline bool fx_applied(const struct fx *f, uint64_t id,
                              const char *value)
{
    const struct fx_member *x = &f->m[id];
    for (size_t i = 0; i < x->n_applied; i++) {
        if (strcmp(x->applied[i], value) == 0) {
            return true;
        }
    }
    return false;
}

static inline struct raft_node *fx_node(struct fx *f, uint64_t id)
{
    return f->m[id].r;
}

static inline void fx_close(struct fx *f)
{
    fx_drop_all(f);
    for (uint64_t id = 1; id <= FX_MAX; id++) {
        struct fx_member *x = &f->m[id];
        if (x->up) {
            fx_crash(f, id);
        }
        for (size_t i = 0; i < x->n_ents; i++) {
            moor_bytes_unref(x->ents[i].data);
        }
        moor_free(x->ents);
        moor_free(x->held);
        moor_free(x->pend);
        moor_bytes_unref(x->snap.data);
    }
}

/* A config for tests: small timeouts, pre-vote and check-quorum on. */
static inline struct raft_config fx_config(void)
{
    struct raft_config c;
    raft_config_init(&c, 1);
    c.election_ticks = 10;
    c.heartbeat_ticks = 1;
    return c;
}

#endif /* MOOR_RAFT_FIXTURE_H */
