/* test_wal_crash.c: kill -9 at random points. A child process opens the WAL,
 * appends batches (pipelined, with conflict rewrites above its commit
 * index, rolling over small segments) and reports through a pipe every
 * durable position the WAL told it about; the parent SIGKILLs it at a
 * random point, reopens the log and checks that everything reported
 * durable is there, in order, byte for byte, and that the log is
 * contiguous and clean after a torn tail. The child also takes snapshots
 * (saved first, then marker and release with max_wals 1, as the server
 * does), so kills land in releases and reopen starts from the snapshot. Many
 * rounds on one directory, so each round also recovers from the previous
 * round's crash.
 *
 * The seed is fixed; MOOR_CRASH_SEED=<n> replays another one. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "wal/wal.h"

/* Rounds: fewer under AddressSanitizer, whose fork and allocator make each
 * round several times slower (the normal build runs the full count). */
#if defined(__SANITIZE_ADDRESS__)
#define ROUNDS 80
#else
#define ROUNDS 150
#endif
#define ROUNDS_PER_LOG 40
#define SEG_BYTES (64u * 1024)

static void quiet_sink(enum moor_log_level level, const char *line, size_t len,
                       void *arg)
{
    (void)level;
    (void)line;
    (void)len;
    (void)arg;
}

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* What the child reports after each durable position it learns. */
struct report
{
    uint64_t last_index;
    uint64_t last_term;
    uint64_t commit; /* the hard state's commit in that batch */
};

/* Entry data is a function of (index, term): length and bytes. */
static size_t data_len(uint64_t index, uint64_t term)
{
    return (size_t)((index * 2654435761u + term * 40503u) % 700);
}

static uint8_t data_byte(uint64_t index, uint64_t term, size_t i)
{
    return (uint8_t)(index * 13 + term * 101 + i * 7);
}

static pthread_mutex_t notify_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notify_cond = PTHREAD_COND_INITIALIZER;

static void on_notify(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&notify_mu);
    pthread_cond_broadcast(&notify_cond);
    pthread_mutex_unlock(&notify_mu);
}

static struct wal_options opts_for(const char *dir)
{
    struct wal_options o = {
        .dir = dir,
        .segment_bytes = SEG_BYTES,
        .meta = {.cluster_id = 1, .member_id = 2},
        .notify_cb = on_notify,
        .max_wals = 1, /* release eagerly: crashes hit releases too */
    };
    return o;
}

/* The "snapshot file" stand-in: the newest snapshot's (term, index), kept
 * beside the WAL directory and replaced atomically, saved before its
 * marker and release are appended, as the server does. */
static void snap_path(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s.snap", dir);
}

static struct wal_snapshot snap_read(const char *dir)
{
    char path[300];
    snap_path(dir, path, sizeof(path));
    struct wal_snapshot s = {0, 0};
    FILE *fp = fopen(path, "rb");
    if (fp != NULL) {
        if (fread(&s, sizeof(s), 1, fp) != 1) {
            s = (struct wal_snapshot){0, 0};
        }
        fclose(fp);
    }
    return s;
}

static void snap_save(const char *dir, struct wal_snapshot s)
{
    char path[300];
    char tmp[310];
    snap_path(dir, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, &s, sizeof(s)) != (ssize_t)sizeof(s) ||
        fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        _exit(6);
    }
}

static void write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k <= 0) {
            _exit(3);
        }
        b += k;
        n -= (size_t)k;
    }
}

/* The child's file system writes each pwrite as separate 512-byte sector
 * pieces, half of the time in shuffled order, so a kill between them
 * leaves exactly what a torn write leaves on a disk: some sectors of the
 * batch written, the others still zeros. */
static struct moor_prng piece_rng;

static ssize_t sector_pwrite(void *arg, int fd, const void *buf, size_t len,
                             uint64_t off)
{
    (void)arg;
    enum { PIECES_MAX = 1024 };
    uint64_t starts[PIECES_MAX];
    size_t n = 0;
    for (uint64_t p = off; p < off + len && n < PIECES_MAX;
         p = (p / 512 + 1) * 512) {
        starts[n++] = p;
    }
    uint64_t end = n == PIECES_MAX ? starts[n - 1] : off + len;
    if (moor_prng_chance(&piece_rng, 0.5)) {
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)moor_prng_below(&piece_rng, i);
            uint64_t t = starts[i - 1];
            starts[i - 1] = starts[j];
            starts[j] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t p = starts[i];
        uint64_t q = MOOR_MIN((p / 512 + 1) * 512, off + len);
        if (n == PIECES_MAX && p == end) {
            q = off + len;
        }
        const uint8_t *src = (const uint8_t *)buf + (p - off);
        size_t plen = (size_t)(q - p);
        while (plen > 0) {
            ssize_t k = pwrite(fd, src, plen, (off_t)p);
            if (k < 0) {
                return -errno;
            }
            src += k;
            p += (uint64_t)k;
            plen -= (size_t)k;
        }
        sched_yield(); /* widen the window a kill can land in */
    }
    return (ssize_t)len;
}

/* Write-and-sync as the WAL's table does it, with the write torn into
 * sectors the same way. */
static ssize_t sector_pwrite_dsync(void *arg, int fd, const void *buf,
                                   size_t len, uint64_t off)
{
    ssize_t n = sector_pwrite(arg, fd, buf, len, off);
    if (n > 0 && fdatasync(fd) < 0) {
        return -errno;
    }
    return n;
}

/* The child: appends forever; never returns. */
static _Noreturn void child_main(const char *dir, uint64_t seed, int out)
{
    struct wal_options o = opts_for(dir);
    struct wal_fs fs = *wal_fs_posix();
    fs.pwrite = sector_pwrite;
    fs.pwrite_dsync = sector_pwrite_dsync;
    o.fs = &fs;
    o.start = snap_read(dir);
    moor_prng_seed(&piece_rng, seed ^ 0x5eed);
    struct wal *w;
    struct wal_replay r;
    char msg[MOOR_ERRMSG_SIZE];
    if (wal_open(&o, &w, &r, msg) != MOOR_OK) {
        fprintf(stderr, "child: wal_open: %s\n", msg);
        _exit(2);
    }
    struct moor_prng rng;
    moor_prng_seed(&rng, seed);
    struct wal_snapshot snap = o.start;
    uint64_t last = snap.index + r.entries_len;
    uint64_t term = r.entries_len > 0 ? r.entries[r.entries_len - 1].term : 1;
    term = MOOR_MAX(term, MOOR_MAX(r.hard_state.term, snap.term));
    uint64_t commit = r.hard_state.commit;
    /* terms[i]: the term of entry i, for the snapshots we take. */
    size_t terms_cap = (size_t)last + 4096;
    uint64_t *terms = calloc(terms_cap, sizeof(*terms));
    for (size_t i = 0; i < r.entries_len; i++) {
        terms[r.entries[i].index] = r.entries[i].term;
    }
    wal_replay_close(&r);
    /* seq -> what that batch made the log look like */
    struct report by_seq[64];
    uint64_t reported = 0;
    uint64_t seq = 0;
    struct raft_entry es[16];
    for (;;) {
        size_t n = (size_t)moor_prng_range(&rng, 1, 16);
        uint64_t first = last + 1;
        if (last > commit + 1 && moor_prng_chance(&rng, 0.15)) {
            /* A new leader overwrites an uncommitted suffix. */
            term++;
            first = moor_prng_range(&rng, commit + 1, last);
        }
        if (first + n >= terms_cap) {
            size_t cap = terms_cap * 2 + n;
            terms = realloc(terms, cap * sizeof(*terms));
            memset(terms + terms_cap, 0, (cap - terms_cap) * sizeof(*terms));
            terms_cap = cap;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t idx = first + i;
            size_t len = data_len(idx, term);
            terms[idx] = term;
            es[i] = (struct raft_entry){.index = idx, .term = term};
            es[i].data = len > 0 ? moor_bytes_new(len) : NULL;
            for (size_t k = 0; k < len; k++) {
                es[i].data->data[k] = data_byte(idx, term, k);
            }
        }
        last = first + n - 1;
        struct raft_hard_state hs = {.term = term, .vote = 2, .commit = commit};
        struct wal_batch b = {
            .entries = es, .entries_len = n, .hard_state = &hs};
        int rv = wal_append(w, &b, &seq);
        for (size_t i = 0; i < n; i++) {
            moor_bytes_unref(es[i].data);
        }
        if (rv != MOOR_OK) {
            _exit(4);
        }
        by_seq[seq % 64] = (struct report){last, term, commit};
        /* Pipeline: wait only every few batches. */
        bool wait = moor_prng_chance(&rng, 0.4) || seq - reported >= 32;
        struct wal_durable d;
        pthread_mutex_lock(&notify_mu);
        while (wal_collect(w, &d) == MOOR_OK && wait && d.seq < seq) {
            pthread_cond_wait(&notify_cond, &notify_mu);
        }
        pthread_mutex_unlock(&notify_mu);
        if (d.err != MOOR_OK) {
            _exit(5);
        }
        if (d.seq > reported) {
            reported = d.seq;
            struct report rep = by_seq[d.seq % 64];
            write_all(out, &rep, sizeof(rep));
            /* Entries up to a durable position may be committed. */
            commit = MOOR_MAX(commit, MOOR_MIN(rep.last_index, last));
        }
        if (commit > snap.index + 20 && terms[commit] != 0 &&
            moor_prng_chance(&rng, 0.1)) {
            /* Snapshot at the commit index: save it, then log the marker
             * and release what it covers (committed entries are never
             * rewritten, so terms[commit] is final). */
            snap =
                (struct wal_snapshot){.term = terms[commit], .index = commit};
            snap_save(dir, snap);
            struct wal_batch sb = {.snapshot = &snap,
                                   .release_index = snap.index};
            if (wal_append(w, &sb, &seq) != MOOR_OK) {
                _exit(7);
            }
            by_seq[seq % 64] = (struct report){last, term, commit};
        }
    }
}

/* Rounds whose reopen cut a torn tail (printed, not asserted: where the
 * kill lands depends on timing). */
static int torn_rounds;
/* The newest snapshot a reopen started from, and reopens that found the
 * first segment released. */
static uint64_t snapshots_seen;
static int released_rounds;

static void check_log(const char *dir, const struct report *rep, int round)
{
    struct wal_options o = opts_for(dir);
    o.start = snap_read(dir);
    struct wal *w;
    struct wal_replay r;
    char msg[MOOR_ERRMSG_SIZE];
    int rv = wal_open(&o, &w, &r, msg);
    if (rv != MOOR_OK) {
        fail_msg("round %d: reopen failed: %s: %s", round, moor_errname(rv),
                 msg);
    }
    torn_rounds += r.torn_offset != 0;
    snapshots_seen = MOOR_MAX(snapshots_seen, o.start.index);
    char first[300];
    snprintf(first, sizeof(first), "%s/0000000000000000-0000000000000001.wal",
             dir);
    released_rounds += access(first, F_OK) != 0;
    uint64_t base = o.start.index;
    uint64_t prev_term = o.start.term;
    bool rewritten = false;
    for (size_t i = 0; i < r.entries_len; i++) {
        const struct raft_entry *e = &r.entries[i];
        if (e->index != base + i + 1 || e->term < prev_term) {
            fail_msg("round %d: entry %zu is (%" PRIu64 ", %" PRIu64 ")", round,
                     i, e->index, e->term);
        }
        prev_term = e->term;
        size_t len = data_len(e->index, e->term);
        size_t got = e->data != NULL ? e->data->len : 0;
        assert_int_equal(got, len);
        for (size_t k = 0; k < len; k++) {
            if (e->data->data[k] != data_byte(e->index, e->term, k)) {
                fail_msg("round %d: entry %" PRIu64 " byte %zu differs", round,
                         e->index, k);
            }
        }
        if (e->index <= rep->last_index && e->term > rep->last_term) {
            rewritten = true; /* a later, newer-term rewrite landed */
        }
    }
    /* Everything reported durable is there (or in the snapshot). */
    uint64_t last = base + r.entries_len;
    if (last < rep->commit || r.hard_state.commit < rep->commit) {
        fail_msg("round %d: commit %" PRIu64 " reported, log ends at %" PRIu64
                 ", hard state commit %" PRIu64,
                 round, rep->commit, last, r.hard_state.commit);
    }
    if (!rewritten && rep->last_index > base) {
        if (last < rep->last_index ||
            r.entries[rep->last_index - base - 1].term != rep->last_term) {
            fail_msg("round %d: durable (%" PRIu64 ", %" PRIu64
                     ") lost; log ends at %" PRIu64,
                     round, rep->last_index, rep->last_term, last);
        }
    }
    wal_replay_close(&r);
    wal_close(w);
}

static void test_wal_survives_sigkill_at_random_points(void **state)
{
    (void)state;
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/moor-walc-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    moor_log_set_sink(quiet_sink, NULL);
    uint64_t seed = 20261123;
    const char *s = getenv("MOOR_CRASH_SEED");
    if (s != NULL) {
        seed = strtoull(s, NULL, 10);
    }
    struct moor_prng rng;
    moor_prng_seed(&rng, seed);
    struct report rep = {0, 0, 0};
    uint64_t total_reports = 0;
    for (int round = 0; round < ROUNDS; round++) {
        if (round > 0 && round % ROUNDS_PER_LOG == 0) {
            /* A fresh log now and then keeps replay time per round flat. */
            nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
            assert_int_equal(mkdir(dir, 0700), 0);
            char sp[300];
            snap_path(dir, sp, sizeof(sp));
            unlink(sp);
            rep = (struct report){0, 0, 0};
        }
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        uint64_t child_seed = moor_prng_next(&rng);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, child_seed, fds[1]);
        }
        close(fds[1]);
        /* Let it report k durable positions, then spin a random while. */
        uint64_t k = moor_prng_below(&rng, 24);
        for (uint64_t i = 0; i < k; i++) {
            struct report got;
            ssize_t n = read(fds[0], &got, sizeof(got));
            if (n != (ssize_t)sizeof(got)) {
                break; /* the child died: its status says why */
            }
            rep = got;
            total_reports++;
        }
        volatile uint64_t spin = moor_prng_below(&rng, 300000);
        while (spin > 0) {
            spin = spin - 1;
        }
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status)) {
            fail_msg("round %d: child exited with %d (seed %" PRIu64 ")", round,
                     WEXITSTATUS(status), seed);
        }
        /* Reports written before the kill count too. */
        struct report got;
        while (read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got)) {
            rep = got;
            total_reports++;
        }
        close(fds[0]);
        check_log(dir, &rep, round);
    }
    assert_true(total_reports > ROUNDS);
    print_message("crash: %d rounds, %" PRIu64
                  " durable reports, %d torn tails cut, %d reopens after "
                  "releases, seed %" PRIu64 "\n",
                  ROUNDS, total_reports, torn_rounds, released_rounds, seed);
    /* Snapshots were taken and segments released, and reopened from. */
    assert_true(snapshots_seen > 0 && released_rounds > 0);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    char sp[300];
    snap_path(dir, sp, sizeof(sp));
    unlink(sp);
    moor_log_set_sink(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wal_survives_sigkill_at_random_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
