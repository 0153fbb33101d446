/*
 * bench/bench_raft.c: `moor-bench raft`, the consensus core's throughput
 * with no I/O.
 *
 * A cluster of --members raft nodes in one process on one core. Each loop
 * turn is one tick: the leader proposes --batch entries of --entry-bytes
 * (fresh refcounted blocks, as the server would hand over), every member
 * runs its ready (storage is instant: raft_node_persisted right after the
 * ready), and messages sent in one turn are delivered in the next (one
 * network hop per tick). Committed entries are applied (counted) on every
 * member, and logs are compacted as they grow, so memory stays flat.
 *
 * Reported: entries committed per second of wall time and per second of
 * this process's CPU time (the fair figure on a shared machine), MB/s of
 * payload, and the commit latency in ticks from proposal to the leader's
 * commit (2 ticks is the floor: append out, ack back).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "raft/raft.h"

#define RB_MEMBERS_MAX 7
#define RB_COMPACT_EVERY 65536

struct rb_opts
{
    uint64_t entries;
    uint32_t batch;
    size_t entry_bytes;
    uint32_t members;
    bool json;
};

struct rb_net
{
    struct raft_message *msgs;
    size_t len;
    size_t cap;
};

struct rb
{
    struct rb_opts o;
    struct raft_node *n[RB_MEMBERS_MAX + 1];
    struct rb_net now;  /* delivered this turn */
    struct rb_net next; /* sent this turn */
    uint64_t applied[RB_MEMBERS_MAX + 1];
    uint64_t messages;
};

/* CPU time of this process: on a shared machine the honest measure of
 * "entries per second on one core". */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void net_push(struct rb_net *q, const struct raft_message *m)
{
    if (q->len == q->cap) {
        q->cap = q->cap == 0 ? 64 : q->cap * 2;
        q->msgs = moor_realloc(q->msgs, q->cap * sizeof(*q->msgs));
        if (q->msgs == NULL) {
            abort();
        }
    }
    struct raft_message *c = &q->msgs[q->len++];
    *c = *m;
    c->entries = NULL;
    if (m->n_entries > 0) {
        c->entries = moor_malloc(m->n_entries * sizeof(*c->entries));
        if (c->entries == NULL) {
            abort();
        }
        for (size_t i = 0; i < m->n_entries; i++) {
            c->entries[i] = m->entries[i];
            moor_bytes_ref(m->entries[i].data);
        }
    }
    moor_bytes_ref(m->snapshot.data);
    moor_bytes_ref(m->context);
}

static void msg_free(struct raft_message *m)
{
    for (size_t i = 0; i < m->n_entries; i++) {
        moor_bytes_unref(m->entries[i].data);
    }
    moor_free(m->entries);
    moor_bytes_unref(m->snapshot.data);
    moor_bytes_unref(m->context);
}

static void run_ready(struct rb *b, uint64_t id)
{
    struct raft_node *r = b->n[id];
    while (raft_node_has_ready(r)) {
        struct raft_ready rd;
        if (raft_node_ready(r, &rd) != MOOR_OK) {
            abort();
        }
        for (size_t i = 0; i < rd.n_msgs; i++) {
            net_push(&b->next, &rd.msgs[i]);
        }
        for (size_t i = 0; i < rd.n_msgs_after; i++) {
            net_push(&b->next, &rd.msgs_after[i]);
        }
        if (rd.n_committed > 0) {
            b->applied[id] = rd.committed[rd.n_committed - 1].index;
        }
        uint64_t pi = rd.persist_index;
        uint64_t pt = rd.persist_term;
        raft_node_advance(r, &rd);
        if (pi != 0) {
            raft_node_persisted(r, pi, pt);
        }
    }
    uint64_t first = raft_node_first_index(r);
    if (b->applied[id] >= first + RB_COMPACT_EVERY) {
        (void)raft_node_compact(r, b->applied[id], NULL);
    }
}

static void deliver(struct rb *b)
{
    struct rb_net t = b->now;
    b->now = b->next;
    b->next = t;
    for (size_t i = 0; i < b->now.len; i++) {
        struct raft_message *m = &b->now.msgs[i];
        (void)raft_node_step(b->n[m->to], m);
        msg_free(m);
    }
    b->messages += b->now.len;
    b->now.len = 0;
}

static void turn(struct rb *b)
{
    deliver(b);
    for (uint64_t id = 1; id <= b->o.members; id++) {
        raft_node_tick(b->n[id]);
        run_ready(b, id);
    }
}

static int parse_opts(int argc, char **argv, struct rb_opts *o)
{
    o->entries = 2000000;
    o->batch = 1024;
    o->entry_bytes = 100;
    o->members = 3;
    o->json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf(
                "usage: moor-bench raft [--entries N] [--batch B] "
                "[--entry-bytes N] [--members 1..7] [--json]\n"
                "  defaults: 2000000 entries, batches of 1024 per tick, "
                "100-byte entries, 3 members\n");
            return 1;
        }
        if (v == NULL) {
            return MOOR_EINVAL;
        }
        char *end = NULL;
        unsigned long long x = strtoull(v, &end, 10);
        if (*v == '\0' || *end != '\0' || x == 0) {
            return MOOR_EINVAL;
        }
        if (strcmp(a, "--entries") == 0) {
            o->entries = x;
        } else if (strcmp(a, "--batch") == 0 && x <= 4096) {
            o->batch = (uint32_t)x;
        } else if (strcmp(a, "--entry-bytes") == 0 && x <= (1u << 20)) {
            o->entry_bytes = (size_t)x;
        } else if (strcmp(a, "--members") == 0 && x <= RB_MEMBERS_MAX) {
            o->members = (uint32_t)x;
        } else {
            return MOOR_EINVAL;
        }
        i++;
    }
    return MOOR_OK;
}

int bench_raft_main(int argc, char **argv)
{
    struct rb *b = moor_calloc(1, sizeof(*b));
    struct bench_hist *lat = moor_malloc(sizeof(*lat));
    if (b == NULL || lat == NULL) {
        fprintf(stderr, "moor-bench raft: out of memory\n");
        return 1;
    }
    int status = 0;
    int rv = parse_opts(argc, argv, &b->o);
    if (rv != MOOR_OK) {
        if (rv != 1) {
            fprintf(stderr, "moor-bench raft: bad flags (see --help)\n");
        }
        status = rv == 1 ? 0 : 2;
        goto out;
    }
    bench_hist_init(lat);
    struct raft_config c;
    raft_config_init(&c, 1);
    c.conf.n = b->o.members;
    for (uint32_t i = 0; i < b->o.members; i++) {
        c.conf.members[i].id = i + 1;
    }
    for (uint64_t id = 1; id <= b->o.members; id++) {
        c.id = id;
        c.seed = id;
        if (raft_node_new(&c, NULL, &b->n[id]) != MOOR_OK) {
            fprintf(stderr, "moor-bench raft: raft_node_new failed\n");
            status = 1;
            goto out;
        }
    }
    struct raft_node *leader = b->n[1];
    raft_node_campaign(leader);
    for (int i = 0; i < 20 && raft_node_role(leader) != RAFT_LEADER; i++) {
        turn(b);
    }
    for (int i = 0; i < 4; i++) {
        turn(b);
    }
    if (raft_node_role(leader) != RAFT_LEADER) {
        fprintf(stderr, "moor-bench raft: no leader\n");
        status = 1;
        goto out;
    }

    /* Batches in flight: (last index, tick proposed), a ring. */
    enum { RING = 64 };
    uint64_t ring_index[RING];
    uint64_t ring_tick[RING];
    size_t ring_head = 0;
    size_t ring_len = 0;
    struct moor_bytes **batch =
        moor_malloc(b->o.batch * sizeof(struct moor_bytes *));
    if (batch == NULL) {
        status = 1;
        goto out;
    }
    uint64_t start_commit = raft_node_commit_index(leader);
    uint64_t target = start_commit + b->o.entries;
    uint64_t proposed = 0;
    uint64_t tick = 0;
    uint64_t t0 = moor_clock_ns();
    uint64_t c0 = cpu_ns();
    while (raft_node_commit_index(leader) < target && tick < 100000000) {
        tick++;
        if (proposed < b->o.entries && ring_len < RING) {
            size_t k = (size_t)MOOR_MIN(b->o.batch, b->o.entries - proposed);
            for (size_t i = 0; i < k; i++) {
                batch[i] = moor_bytes_new(b->o.entry_bytes);
                if (batch[i] == NULL) {
                    abort();
                }
                memset(batch[i]->data, (int)(i & 0xff), b->o.entry_bytes);
            }
            rv = raft_node_propose(leader, batch, k);
            for (size_t i = 0; i < k; i++) {
                moor_bytes_unref(batch[i]);
            }
            if (rv == MOOR_OK) {
                proposed += k;
                size_t slot = (ring_head + ring_len) % RING;
                ring_index[slot] = raft_node_last_index(leader);
                ring_tick[slot] = tick;
                ring_len++;
            }
        }
        turn(b);
        uint64_t commit = raft_node_commit_index(leader);
        while (ring_len > 0 && ring_index[ring_head] <= commit) {
            uint64_t d = tick - ring_tick[ring_head];
            /* One sample per entry of the batch. */
            for (uint32_t i = 0; i < b->o.batch; i++) {
                bench_hist_record(lat, d);
            }
            ring_head = (ring_head + 1) % RING;
            ring_len--;
        }
    }
    uint64_t t1 = moor_clock_ns();
    uint64_t c1 = cpu_ns();
    moor_free(batch);
    /* Let the followers apply the tail. */
    for (int i = 0; i < 4; i++) {
        turn(b);
    }
    double secs = (double)(t1 - t0) / 1e9;
    uint64_t done = raft_node_commit_index(leader) - start_commit;
    double eps = (double)done / secs;
    double cpu_secs = (double)(c1 - c0) / 1e9;
    double eps_cpu = cpu_secs > 0 ? (double)done / cpu_secs : 0;
    double mbs = eps * (double)b->o.entry_bytes / 1e6;
    uint64_t min_applied = UINT64_MAX;
    for (uint64_t id = 1; id <= b->o.members; id++) {
        min_applied = MOOR_MIN(min_applied, b->applied[id]);
    }
    if (b->o.json) {
        printf(
            "{\"bench\":\"raft\",\"members\":%u,\"entry_bytes\":%zu,"
            "\"batch\":%u,\"entries\":%llu,\"seconds\":%.3f,"
            "\"entries_per_s\":%.0f,\"entries_per_cpu_s\":%.0f,"
            "\"mb_per_s\":%.1f,"
            "\"commit_ticks_p50\":%llu,\"commit_ticks_p99\":%llu,"
            "\"commit_ticks_max\":%llu,\"messages\":%llu}\n",
            b->o.members, b->o.entry_bytes, b->o.batch,
            (unsigned long long)done, secs, eps, eps_cpu, mbs,
            (unsigned long long)bench_hist_percentile(lat, 50),
            (unsigned long long)bench_hist_percentile(lat, 99),
            (unsigned long long)bench_hist_percentile(lat, 100),
            (unsigned long long)b->messages);
    } else {
        printf(
            "raft: %u members in one process, %zu-byte entries, "
            "batches of %u per tick, %llu entries, no I/O\n",
            b->o.members, b->o.entry_bytes, b->o.batch,
            (unsigned long long)b->o.entries);
        printf("%-24s %14llu  entries\n", "committed",
               (unsigned long long)done);
        printf("%-24s %14.3f  s\n", "elapsed", secs);
        printf("%-24s %14.0f  entries/s\n", "throughput", eps);
        printf("%-24s %14.0f  entries/cpu-s\n", "throughput_cpu", eps_cpu);
        printf("%-24s %14.1f  MB/s\n", "payload", mbs);
        printf("%-24s %14llu  ticks\n", "commit_latency.p50",
               (unsigned long long)bench_hist_percentile(lat, 50));
        printf("%-24s %14llu  ticks\n", "commit_latency.p99",
               (unsigned long long)bench_hist_percentile(lat, 99));
        printf("%-24s %14llu  ticks\n", "commit_latency.max",
               (unsigned long long)bench_hist_percentile(lat, 100));
        printf("%-24s %14llu  msgs\n", "messages",
               (unsigned long long)b->messages);
        printf("%-24s %14llu  index\n", "applied_on_all",
               (unsigned long long)min_applied);
    }
out:
    for (uint64_t id = 1; id <= RB_MEMBERS_MAX; id++) {
        raft_node_free(b->n[id]);
    }
    for (size_t i = 0; i < b->now.len; i++) {
        msg_free(&b->now.msgs[i]);
    }
    for (size_t i = 0; i < b->next.len; i++) {
        msg_free(&b->next.msgs[i]);
    }
    moor_free(b->now.msgs);
    moor_free(b->next.msgs);
    moor_free(lat);
    moor_free(b);
    return status;
}
