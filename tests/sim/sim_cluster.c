/*
 * tests/sim/sim_cluster.c: the simulated members, their disks and the
 * network. Each member runs the ready / advance / persisted contract of
 * raft.h exactly as server/ will: entries and hard state go to a disk
 * whose writes complete later (in order); "now" messages leave at once;
 * "after" messages wait for the write; committed entries are applied.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"

void sim_log(const struct sim *s, const char *fmt, ...)
{
    if (!s->verbose) {
        return;
    }
    va_list ap;
    printf("[%6llu] ", (unsigned long long)s->now);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void *xrealloc(void *p, size_t size)
{
    void *q = moor_realloc(p, size);
    if (q == NULL) {
        fprintf(stderr, "moor-sim: out of memory\n");
        abort();
    }
    return q;
}

/* The value an entry contributes to the state machine: its type and bytes,
 * hashed (FNV-1a). Distinct proposals carry distinct ids. */
uint64_t sim_entry_value(const struct raft_entry *e)
{
    uint64_t h = 1469598103934665603ull ^ e->type;
    h *= 1099511628211ull;
    if (e->data != NULL) {
        for (size_t i = 0; i < e->data->len; i++) {
            h ^= e->data->data[i];
            h *= 1099511628211ull;
        }
    }
    return h;
}

/* ------------------------------------------------------------------------
 * Messages
 * ---------------------------------------------------------------------- */

static void msg_copy(struct sim_msg *dst, const struct raft_message *m)
{
    memset(dst, 0, sizeof(*dst));
    dst->m = *m;
    dst->m.entries = NULL;
    if (m->n_entries > 0) {
        dst->m.entries = xrealloc(NULL, m->n_entries * sizeof(*m->entries));
        for (size_t i = 0; i < m->n_entries; i++) {
            dst->m.entries[i] = m->entries[i];
            moor_bytes_ref(m->entries[i].data);
        }
    }
    moor_bytes_ref(m->snapshot.data);
    moor_bytes_ref(m->context);
}

void sim_msg_free(struct sim_msg *m)
{
    for (size_t i = 0; i < m->m.n_entries; i++) {
        moor_bytes_unref(m->m.entries[i].data);
    }
    moor_free(m->m.entries);
    moor_bytes_unref(m->m.snapshot.data);
    moor_bytes_unref(m->m.context);
    memset(m, 0, sizeof(*m));
}

static void net_push(struct sim *s, const struct raft_message *m,
                     uint64_t delay)
{
    if (s->n_net == s->net_cap) {
        s->net_cap = s->net_cap == 0 ? 256 : s->net_cap * 2;
        s->net = xrealloc(s->net, s->net_cap * sizeof(*s->net));
    }
    struct sim_msg *x = &s->net[s->n_net++];
    msg_copy(x, m);
    x->deliver_at = s->now + delay;
    x->order = moor_prng_next(&s->prng);
}

static void report_drop(struct sim *s, const struct raft_message *m)
{
    struct sim_node *from = &s->nodes[m->from];
    if (!from->alive) {
        return;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        raft_node_report_snapshot(from->r, m->to, false);
    } else if (moor_prng_chance(&s->prng, 0.2)) {
        raft_node_report_unreachable(from->r, m->to);
    }
}

void sim_send(struct sim *s, const struct raft_message *m)
{
    MOOR_ASSERT(m->to >= 1 && m->to <= SIM_IDS_MAX);
    sim_check_send(s, m);
    if (s->blocked[m->from][m->to] ||
        moor_prng_chance(&s->prng, s->sw.p_drop)) {
        report_drop(s, m);
        return;
    }
    net_push(s, m, moor_prng_range(&s->prng, 1, s->sw.delay_max));
    if (moor_prng_chance(&s->prng, s->sw.p_dup)) {
        net_push(s, m, moor_prng_range(&s->prng, 1, s->sw.delay_max));
    }
}

static int due_cmp(const void *a, const void *b)
{
    const struct sim_msg *x = a;
    const struct sim_msg *y = b;
    if (x->deliver_at != y->deliver_at) {
        return x->deliver_at < y->deliver_at ? -1 : 1;
    }
    return x->order < y->order ? -1 : (x->order > y->order ? 1 : 0);
}

void sim_deliver_due(struct sim *s)
{
    /* Take the due messages out first: delivering may send more. */
    size_t n_due = 0;
    for (size_t i = 0; i < s->n_net; i++) {
        if (s->net[i].deliver_at <= s->now) {
            n_due++;
        }
    }
    if (n_due == 0) {
        return;
    }
    struct sim_msg *due = xrealloc(NULL, n_due * sizeof(*due));
    size_t k = 0;
    size_t keep = 0;
    for (size_t i = 0; i < s->n_net; i++) {
        if (s->net[i].deliver_at <= s->now) {
            due[k++] = s->net[i];
        } else {
            s->net[keep++] = s->net[i];
        }
    }
    s->n_net = keep;
    qsort(due, n_due, sizeof(*due), due_cmp);
    for (size_t i = 0; i < n_due; i++) {
        struct raft_message *m = &due[i].m;
        struct sim_node *to = &s->nodes[m->to];
        /* A partition that formed while the message was in flight cuts it
         * too. */
        if (!to->alive || s->blocked[m->from][m->to] || violation_pending(s)) {
            if (to->alive || m->type == RAFT_MSG_SNAPSHOT) {
                report_drop(s, m);
            }
            sim_msg_free(&due[i]);
            continue;
        }
        if (m->type == RAFT_MSG_SNAPSHOT) {
            s->snapshots_sent++;
            sim_log(s, "n%llu -> n%llu SNAPSHOT index %llu term %llu",
                    (unsigned long long)m->from, (unsigned long long)m->to,
                    (unsigned long long)m->snapshot.index,
                    (unsigned long long)m->snapshot.term);
            struct sim_node *from = &s->nodes[m->from];
            if (from->alive) {
                raft_node_report_snapshot(from->r, m->to, true);
            }
        }
        if (s->verbose) {
            sim_log(
                s,
                "  n%llu -> n%llu %s term %llu index %llu log_term %llu "
                "commit %llu n %zu%s hint %llu",
                (unsigned long long)m->from, (unsigned long long)m->to,
                raft_message_type_name(m->type), (unsigned long long)m->term,
                (unsigned long long)m->index, (unsigned long long)m->log_term,
                (unsigned long long)m->commit, m->n_entries,
                m->reject ? " reject" : "", (unsigned long long)m->reject_hint);
        }
        int rv = raft_node_step(to->r, m);
        MOOR_ASSERT(rv == MOOR_OK);
        sim_msg_free(&due[i]);
    }
    moor_free(due);
}

/* ------------------------------------------------------------------------
 * Disk
 * ---------------------------------------------------------------------- */

static void disk_truncate(struct sim_disk *d, size_t keep)
{
    for (size_t i = keep; i < d->n_ents; i++) {
        moor_bytes_unref(d->ents[i].data);
    }
    if (keep < d->n_ents) {
        d->n_ents = keep;
    }
}

static void disk_close(struct sim_disk *d)
{
    disk_truncate(d, 0);
    moor_free(d->ents);
    moor_bytes_unref(d->snap.data);
    memset(d, 0, sizeof(*d));
}

static void disk_set_snapshot(struct sim_disk *d,
                              const struct raft_snapshot *snap)
{
    if (snap->index <= d->snap.index) {
        return;
    }
    /* Keep entries after the snapshot that agree with it. */
    size_t drop = 0;
    while (drop < d->n_ents && d->ents[drop].index <= snap->index) {
        drop++;
    }
    bool match = drop > 0 && d->ents[drop - 1].index == snap->index &&
                 d->ents[drop - 1].term == snap->term;
    for (size_t i = 0; i < drop; i++) {
        moor_bytes_unref(d->ents[i].data);
    }
    if (drop > 0) {
        memmove(d->ents, d->ents + drop, (d->n_ents - drop) * sizeof(*d->ents));
        d->n_ents -= drop;
    }
    if (!match) {
        disk_truncate(d, 0);
    }
    moor_bytes_unref(d->snap.data);
    d->snap = *snap;
    d->snap.data = moor_bytes_ref(snap->data);
}

static void disk_append(struct sim_disk *d, const struct raft_entry *ents,
                        size_t n)
{
    if (n == 0) {
        return;
    }
    uint64_t first = ents[0].index;
    MOOR_ASSERT(first > d->snap.index);
    size_t keep = (size_t)(first - d->snap.index - 1);
    MOOR_ASSERT(keep <= d->n_ents);
    disk_truncate(d, keep);
    if (d->n_ents + n > d->cap) {
        d->cap = (d->n_ents + n) * 2;
        d->ents = xrealloc(d->ents, d->cap * sizeof(*d->ents));
    }
    for (size_t i = 0; i < n; i++) {
        d->ents[d->n_ents + i] = ents[i];
        moor_bytes_ref(ents[i].data);
    }
    d->n_ents += n;
}

void sim_disk_snapshot(struct sim_node *nd, const struct raft_snapshot *snap)
{
    disk_set_snapshot(&nd->disk, snap);
}

static void write_free(struct sim_write *w)
{
    for (size_t i = 0; i < w->n_ents; i++) {
        moor_bytes_unref(w->ents[i].data);
    }
    moor_free(w->ents);
    if (w->has_snap) {
        moor_bytes_unref(w->snap.data);
    }
    for (size_t i = 0; i < w->n_after; i++) {
        sim_msg_free(&w->after[i]);
    }
    moor_free(w->after);
    memset(w, 0, sizeof(*w));
}

/* Completes the node's due writes, in order: the disk takes them, raft
 * learns they are durable, the messages that waited leave. */
static bool complete_writes(struct sim *s, struct sim_node *nd)
{
    size_t k = 0;
    while (k < nd->n_writes && nd->writes[k].done_at <= s->now) {
        struct sim_write *w = &nd->writes[k];
        if (w->has_snap) {
            disk_set_snapshot(&nd->disk, &w->snap);
        }
        disk_append(&nd->disk, w->ents, w->n_ents);
        if (w->has_hs) {
            nd->disk.hs = w->hs;
        }
        if (w->persist_index > 0) {
            raft_node_persisted(nd->r, w->persist_index, w->persist_term);
        }
        for (size_t i = 0; i < w->n_after; i++) {
            sim_send(s, &w->after[i].m);
        }
        write_free(w);
        k++;
    }
    if (k > 0) {
        memmove(nd->writes, nd->writes + k,
                (nd->n_writes - k) * sizeof(*nd->writes));
        nd->n_writes -= k;
    }
    return k > 0;
}

/* ------------------------------------------------------------------------
 * Members
 * ---------------------------------------------------------------------- */

static void sm_from_snapshot(struct sim_node *nd,
                             const struct raft_snapshot *snap)
{
    if (snap->index == 0) {
        nd->applied = 0;
        nd->hash = 0;
        return;
    }
    MOOR_ASSERT(snap->data != NULL && snap->data->len == 16);
    nd->applied = moor_get_le64(snap->data->data);
    nd->hash = moor_get_le64(snap->data->data + 8);
}

void sim_node_start(struct sim *s, uint64_t id)
{
    struct sim_node *nd = &s->nodes[id];
    MOOR_ASSERT(!nd->alive);
    struct raft_config c;
    raft_config_init(&c, id);
    c.conf = s->bootstrap;
    c.heartbeat_ticks = s->sw.heartbeat_ticks;
    c.inflight_max = s->sw.inflight_max;
    c.msg_entries_max = s->sw.msg_entries_max;
    c.msg_bytes_max = s->sw.msg_bytes_max;
    c.uncommitted_bytes_max = s->sw.uncommitted_bytes_max;
    c.apply_entries_max = s->sw.apply_entries_max;
    c.read_index_max = s->sw.read_index_max;
    c.pre_vote = s->sw.pre_vote;
    c.check_quorum = s->sw.check_quorum;
    c.seed = moor_prng_next(&s->prng);
    c.test_bugs = s->bugs;
    struct raft_restore r = {
        .hard_state = nd->disk.hs,
        .snapshot = nd->disk.snap.index > 0 ? &nd->disk.snap : NULL,
        .entries = nd->disk.ents,
        .n_entries = nd->disk.n_ents,
        .applied = nd->disk.snap.index,
    };
    int rv = raft_node_new(&c, &r, &nd->r);
    if (rv != MOOR_OK) {
        /* The only way a restart fails is a disk that lost what the
         * member had promised (commit beyond its durable log). */
        sim_check_fail(s, "n%llu cannot restart from its disk: %s",
                       (unsigned long long)id, moor_strerror(rv));
        return;
    }
    nd->exists = true;
    nd->alive = true;
    nd->last_done_at = s->now;
    nd->leader_term_checked = 0;
    sm_from_snapshot(nd, &nd->disk.snap);
    sim_log(s, "n%llu starts: term %llu, %zu entries after snapshot %llu",
            (unsigned long long)id, (unsigned long long)nd->disk.hs.term,
            nd->disk.n_ents, (unsigned long long)nd->disk.snap.index);
}

void sim_node_crash(struct sim *s, uint64_t id)
{
    struct sim_node *nd = &s->nodes[id];
    MOOR_ASSERT(nd->alive);
    sim_log(s, "n%llu crashes, losing %zu pending writes",
            (unsigned long long)id, nd->n_writes);
    for (size_t i = 0; i < nd->n_writes; i++) {
        write_free(&nd->writes[i]);
    }
    nd->n_writes = 0;
    raft_node_free(nd->r);
    nd->r = NULL;
    nd->alive = false;
    s->crashes++;
}

static void push_write(struct sim *s, struct sim_node *nd,
                       const struct raft_ready *rd)
{
    bool any = rd->hard_state_changed || rd->snapshot != NULL ||
               rd->n_entries > 0 || rd->n_msgs_after > 0;
    if (!any) {
        return;
    }
    if (nd->n_writes == nd->writes_cap) {
        nd->writes_cap = nd->writes_cap == 0 ? 8 : nd->writes_cap * 2;
        nd->writes = xrealloc(nd->writes, nd->writes_cap * sizeof(*nd->writes));
    }
    struct sim_write *w = &nd->writes[nd->n_writes++];
    memset(w, 0, sizeof(*w));
    /* Writes complete in order: never before the previous one. */
    uint64_t done = s->now + moor_prng_range(&s->prng, 0, s->sw.disk_delay_max);
    if (done < nd->last_done_at) {
        done = nd->last_done_at;
    }
    nd->last_done_at = done;
    w->done_at = done;
    w->has_hs = rd->hard_state_changed;
    w->hs = rd->hard_state;
    if (rd->snapshot != NULL) {
        w->has_snap = true;
        w->snap = *rd->snapshot;
        moor_bytes_ref(w->snap.data);
    }
    if (rd->n_entries > 0) {
        w->ents = xrealloc(NULL, rd->n_entries * sizeof(*w->ents));
        for (size_t i = 0; i < rd->n_entries; i++) {
            w->ents[i] = rd->entries[i];
            moor_bytes_ref(w->ents[i].data);
        }
        w->n_ents = rd->n_entries;
    }
    w->persist_index = rd->persist_index;
    w->persist_term = rd->persist_term;
    if (rd->n_msgs_after > 0) {
        w->after = xrealloc(NULL, rd->n_msgs_after * sizeof(*w->after));
        for (size_t i = 0; i < rd->n_msgs_after; i++) {
            msg_copy(&w->after[i], &rd->msgs_after[i]);
        }
        w->n_after = rd->n_msgs_after;
    }
}

static void handle_ready(struct sim *s, struct sim_node *nd)
{
    struct raft_ready rd;
    int rv = raft_node_ready(nd->r, &rd);
    MOOR_ASSERT(rv == MOOR_OK);
    if (rd.soft_state_changed && rd.role == RAFT_LEADER) {
        s->elections++;
        sim_log(s, "n%llu is leader of term %llu", (unsigned long long)nd->id,
                (unsigned long long)rd.hard_state.term);
    }
    sim_check_ready(s, nd, &rd);
    push_write(s, nd, &rd);
    for (size_t i = 0; i < rd.n_msgs; i++) {
        sim_send(s, &rd.msgs[i]);
    }
    if (rd.snapshot != NULL) {
        sim_check_snapshot(s, nd, rd.snapshot);
        sm_from_snapshot(nd, rd.snapshot);
    }
    for (size_t i = 0; i < rd.n_committed; i++) {
        sim_check_apply(s, nd, &rd.committed[i]);
    }
    for (size_t i = 0; i < rd.n_read_states; i++) {
        sim_check_read_state(s, nd, &rd.read_states[i]);
    }
    raft_node_advance(nd->r, &rd);
}

/* Runs readies and due disk writes until every member is quiet. */
void sim_process(struct sim *s)
{
    for (int round = 0; round < 1000; round++) {
        bool busy = false;
        for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
            struct sim_node *nd = &s->nodes[id];
            if (!nd->alive) {
                continue;
            }
            for (int k = 0; k < 100 && raft_node_has_ready(nd->r); k++) {
                handle_ready(s, nd);
                busy = true;
                if (violation_pending(s)) {
                    return;
                }
            }
            if (complete_writes(s, nd)) {
                busy = true;
            }
        }
        if (!busy) {
            return;
        }
    }
    sim_check_fail(s, "members never went quiet within one tick");
}

void sim_tick_all(struct sim *s)
{
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        if (s->nodes[id].alive) {
            raft_node_tick(s->nodes[id].r);
        }
    }
}

void sim_init(struct sim *s, uint64_t seed, uint32_t nodes, uint32_t bugs,
              bool verbose)
{
    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->n_initial = nodes;
    s->bugs = bugs;
    s->verbose = verbose;
    moor_prng_seed(&s->prng, seed);
    for (uint64_t id = 0; id <= SIM_IDS_MAX; id++) {
        s->nodes[id].id = id;
    }
    s->bootstrap.n = nodes;
    for (uint32_t i = 0; i < nodes; i++) {
        s->bootstrap.members[i].id = i + 1;
    }
}

void sim_close(struct sim *s)
{
    for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
        struct sim_node *nd = &s->nodes[id];
        if (nd->alive) {
            sim_node_crash(s, id);
        }
        moor_free(nd->writes);
        disk_close(&nd->disk);
    }
    for (size_t i = 0; i < s->n_net; i++) {
        sim_msg_free(&s->net[i]);
    }
    moor_free(s->net);
    sim_check_close(s);
}
