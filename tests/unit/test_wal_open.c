/* test_wal_open.c: replay and the byte-level damage cases: a last record cut
 * at every byte offset, a zeroed tail, bit flips in the middle and at the
 * end, a corrupt hard-state record, a missing or damaged segment, conflict
 * truncation, and replay from a snapshot. Logs go to a sink so the test
 * output stays readable. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "wal/wal.h"

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

struct fixture
{
    char dir[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/moor-wal-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    moor_log_set_sink(quiet_sink, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    moor_log_set_sink(NULL, NULL);
    return 0;
}

/* The notify callback wakes whoever waits in wait_durable. */
static pthread_mutex_t notify_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notify_cond = PTHREAD_COND_INITIALIZER;

static void on_notify(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&notify_mu);
    pthread_cond_broadcast(&notify_cond);
    pthread_mutex_unlock(&notify_mu);
}

/* Waits until batch seq is durable (or the WAL failed). */
static int wait_durable(struct wal *w, uint64_t seq)
{
    struct wal_durable d;
    pthread_mutex_lock(&notify_mu);
    while (wal_collect(w, &d) == MOOR_OK && d.seq < seq) {
        pthread_cond_wait(&notify_cond, &notify_mu);
    }
    pthread_mutex_unlock(&notify_mu);
    return d.err;
}

static struct wal_options opts_for(const struct fixture *f)
{
    struct wal_options o = {
        .dir = f->dir,
        .segment_bytes = SEG_BYTES,
        .meta = {.cluster_id = 0xc1, .member_id = 0x11},
        .notify_cb = on_notify,
    };
    return o;
}

/* Entry data derived from (index, term), so every replayed byte is checked. */
static struct moor_bytes *entry_data(uint64_t index, uint64_t term, size_t len)
{
    struct moor_bytes *b = moor_bytes_new(len);
    for (size_t i = 0; i < len; i++) {
        b->data[i] = (uint8_t)(index * 31 + term * 7 + i);
    }
    return b;
}

static void check_entry(const struct raft_entry *e, uint64_t index,
                        uint64_t term, size_t len)
{
    assert_true(e->index == index);
    assert_true(e->term == term);
    size_t got = e->data != NULL ? e->data->len : 0;
    assert_int_equal(got, len);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(e->data->data[i],
                         (uint8_t)(index * 31 + term * 7 + i));
    }
}

/* Appends entries [first, last] with term and payload len, plus a hard
 * state, as one batch; returns its seq. */
static uint64_t append_range(struct wal *w, uint64_t first, uint64_t last,
                             uint64_t term, size_t len)
{
    size_t n = (size_t)(last - first + 1);
    struct raft_entry *es = calloc(n, sizeof(*es));
    for (size_t i = 0; i < n; i++) {
        es[i].index = first + i;
        es[i].term = term;
        es[i].data = entry_data(first + i, term, len);
    }
    struct raft_hard_state hs = {.term = term, .vote = 1, .commit = first};
    struct wal_batch b = {.entries = es, .entries_len = n, .hard_state = &hs};
    uint64_t seq = 0;
    assert_int_equal(wal_append(w, &b, &seq), MOOR_OK);
    for (size_t i = 0; i < n; i++) {
        moor_bytes_unref(es[i].data);
    }
    free(es);
    return seq;
}

/* Opens, appends `batches` batches of `per` entries each (index 1..), each
 * made durable before the next is appended, so each is its own sync unit,
 * and closes. */
static void write_log(const struct fixture *f, int batches, int per, size_t len)
{
    struct wal_options o = opts_for(f);
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_true(r.created);
    wal_replay_close(&r);
    uint64_t next = 1;
    for (int b = 0; b < batches; b++) {
        uint64_t seq = append_range(w, next, next + (uint64_t)per - 1, 1, len);
        assert_int_equal(wait_durable(w, seq), MOOR_OK);
        next += (uint64_t)per;
    }
    wal_close(w);
}

/* The only segment file's path (tests that write one segment). */
static void seg_file(const struct fixture *f, int nth, char *out, size_t cap)
{
    struct dirent **names;
    int n = scandir(f->dir, &names, NULL, alphasort);
    assert_true(n > 0);
    int k = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]->d_name);
        if (l > 4 && strcmp(names[i]->d_name + l - 4, ".wal") == 0) {
            if (k++ == nth) {
                snprintf(out, cap, "%s/%s", f->dir, names[i]->d_name);
            }
        }
        free(names[i]);
    }
    free(names);
    assert_true(out[0] != '\0');
}

static int count_segments(const struct fixture *f)
{
    DIR *d = opendir(f->dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        n += l > 4 && strcmp(de->d_name + l - 4, ".wal") == 0;
    }
    closedir(d);
    return n;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    uint8_t *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

/* Offsets of the records in a segment image (walking the 16-byte headers
 * as format.c lays them out). Returns the count. */
static size_t record_offsets(const uint8_t *buf, size_t len, uint64_t *offs,
                             size_t cap)
{
    size_t n = 0;
    uint64_t off = 64;
    while (off + 16 <= len && n < cap) {
        uint32_t plen = moor_get_le32(buf + off);
        if (plen == 0 && buf[off + 4] == 0) {
            break;
        }
        offs[n++] = off;
        off += 16 + ((plen + 15u) & ~15u);
    }
    return n;
}

static void test_wal_replays_entries_hard_state_and_meta(void **state)
{
    struct fixture *f = *state;
    write_log(f, 5, 4, 100);
    struct wal_options o = opts_for(f);
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_false(r.created);
    assert_true(r.meta.cluster_id == 0xc1 && r.meta.member_id == 0x11);
    assert_int_equal(r.entries_len, 20);
    for (size_t i = 0; i < 20; i++) {
        check_entry(&r.entries[i], i + 1, 1, 100);
    }
    assert_true(r.hard_state.term == 1 && r.hard_state.vote == 1 &&
                r.hard_state.commit == 17);
    assert_true(r.torn_offset == 0);
    struct wal_durable d;
    assert_int_equal(wal_collect(w, &d), MOOR_OK);
    assert_true(d.last_index == 20 && d.last_term == 1);
    wal_replay_close(&r);
    wal_close(w);
}

static void test_wal_append_at_lower_index_replaces_suffix(void **state)
{
    struct fixture *f = *state;
    write_log(f, 1, 10, 8);
    struct wal_options o = opts_for(f);
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    wal_replay_close(&r);
    append_range(w, 6, 7, 2, 8);
    /* A gap beyond last + 1 is refused. */
    struct raft_entry e = {.index = 9, .term = 2};
    struct wal_batch b = {.entries = &e, .entries_len = 1};
    assert_int_equal(wal_append(w, &b, NULL), MOOR_EINVAL);
    wal_close(w);

    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_int_equal(r.entries_len, 7);
    for (size_t i = 0; i < 5; i++) {
        check_entry(&r.entries[i], i + 1, 1, 8);
    }
    check_entry(&r.entries[5], 6, 2, 8);
    check_entry(&r.entries[6], 7, 2, 8);
    struct wal_durable d;
    wal_collect(w, &d);
    assert_true(d.last_index == 7 && d.last_term == 2);
    wal_replay_close(&r);
    wal_close(w);
}

static void test_wal_open_truncates_last_record_cut_at_every_offset(
    void **state)
{
    struct fixture *f = *state;
    write_log(f, 3, 2, 150);
    char path[512];
    seg_file(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *pristine = read_file(path, &len);
    uint64_t offs[64];
    size_t n = record_offsets(pristine, len, offs, 64);
    /* The last record is the final batch's hard state; cut inside the last
     * entry record too (the one before it). */
    uint64_t start = offs[n - 2];
    uint64_t end = offs[n - 1] + 16 + 32;
    struct wal_options o = opts_for(f);
    for (uint64_t cut = start; cut < end; cut++) {
        write_file(path, pristine, (size_t)cut);
        struct wal *w;
        struct wal_replay r;
        char msg[MOOR_ERRMSG_SIZE];
        int rv = wal_open(&o, &w, &r, msg);
        if (rv != MOOR_OK) {
            fail_msg("cut at %" PRIu64 ": %s", cut, msg);
        }
        bool last_entry_whole = cut >= offs[n - 1];
        assert_int_equal(r.entries_len, last_entry_whole ? 6 : 5);
        for (size_t i = 0; i < r.entries_len; i++) {
            check_entry(&r.entries[i], i + 1, 1, 150);
        }
        if (cut == start || cut == offs[n - 1]) {
            assert_true(r.torn_offset == 0); /* a clean record boundary */
        } else {
            assert_true(r.torn_offset ==
                        (cut < offs[n - 1] ? start : offs[n - 1]));
        }
        /* The log keeps working after the cut. */
        uint64_t next = r.entries_len + 1;
        append_range(w, next, next, 1, 150);
        wal_replay_close(&r);
        wal_close(w);
        assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
        assert_int_equal(r.entries_len, next);
        assert_true(r.torn_offset == 0);
        wal_replay_close(&r);
        wal_close(w);
    }
    free(pristine);
}

static void test_wal_open_truncates_zeroed_tail(void **state)
{
    struct fixture *f = *state;
    /* Entries of 1000 bytes span sectors; zero from a sector boundary in the
     * middle of the last batch to the end, as a torn write leaves it. */
    write_log(f, 3, 3, 1000);
    char path[512];
    seg_file(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    uint64_t offs[64];
    size_t n = record_offsets(img, len, offs, 64);
    assert_int_equal(n, 1 + 3 * 4);
    /* The last batch: records n-4 .. n-1 (3 entries, hard state). */
    uint64_t zero_from = (offs[n - 3] + 600) / 512 * 512;
    memset(img + zero_from, 0, len - zero_from);
    write_file(path, img, len);
    struct wal_options o = opts_for(f);
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_int_equal(r.entries_len, 7);
    assert_true(r.torn_offset == offs[n - 3]);
    wal_replay_close(&r);
    wal_close(w);
    free(img);
}

static void test_wal_open_truncates_batch_with_missing_middle_sector(
    void **state)
{
    struct fixture *f = *state;
    write_log(f, 2, 4, 1500);
    char path[512];
    seg_file(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    uint64_t offs[64];
    size_t n = record_offsets(img, len, offs, 64);
    assert_int_equal(n, 1 + 2 * 5);
    /* Second batch: records 6..10. Lose one sector inside its second entry
     * while later sectors of the batch made it to disk. */
    uint64_t s = (offs[7] + 511) / 512 * 512;
    assert_true(s + 512 <= offs[8]);
    memset(img + s, 0, 512);
    write_file(path, img, len);
    struct wal_options o = opts_for(f);
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_int_equal(r.entries_len, 5);
    assert_true(r.torn_offset == offs[7]);
    wal_replay_close(&r);
    wal_close(w);
    free(img);
}

static void expect_corrupt(const struct fixture *f, const char *file,
                           uint64_t offset)
{
    struct wal_options o = opts_for(f);
    struct wal *w = NULL;
    struct wal_replay r;
    char msg[MOOR_ERRMSG_SIZE];
    int rv = wal_open(&o, &w, &r, msg);
    assert_int_equal(rv, MOOR_ECORRUPT);
    assert_null(r.entries);
    if (file != NULL) {
        char want[64];
        snprintf(want, sizeof(want), "offset %" PRIu64 ":", offset);
        if (strstr(msg, file) == NULL || strstr(msg, want) == NULL) {
            fail_msg("message '%s' lacks '%s' or '%s'", msg, file, want);
        }
    }
}

static void test_wal_open_fails_on_bit_flip_in_middle_record(void **state)
{
    struct fixture *f = *state;
    write_log(f, 4, 3, 64);
    char path[512];
    seg_file(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    uint64_t offs[64];
    size_t n = record_offsets(img, len, offs, 64);
    uint64_t victim = offs[n / 2];
    img[victim + 16 + 20] ^= 0x10;
    write_file(path, img, len);
    expect_corrupt(f, strrchr(path, '/') + 1, victim);
    /* Nothing was modified: the file is byte for byte what we wrote. */
    size_t len2;
    uint8_t *after = read_file(path, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, img, len);
    free(after);
    free(img);
}

static void test_wal_open_fails_on_bit_flip_in_last_record(void **state)
{
    struct fixture *f = *state;
    write_log(f, 2, 2, 64);
    char path[512];
    seg_file(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    uint64_t offs[64];
    size_t n = record_offsets(img, len, offs, 64);
    /* A flip in the last entry: every sector is present, so it is not a
     * torn write but a damaged synced record. */
    img[offs[n - 2] + 16 + 30] ^= 0x01;
    write_file(path, img, len);
    expect_corrupt(f, strrchr(path, '/') + 1, offs[n - 2]);
    free(img);
}

static void test_wal_open_fails_on_corrupt_hard_state(void **state)
{
    struct fixture *f = *state;
    write_log(f, 3, 1, 32);
    char path[512];
    seg_file(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    uint64_t offs[64];
    size_t n = record_offsets(img, len, offs, 64);
    /* Records: meta, (entry, hs) x 3. The first batch's hard state. */
    assert_int_equal(img[offs[2] + 4], 3);
    img[offs[2] + 16 + 16] ^= 0x04; /* its commit */
    write_file(path, img, len);
    expect_corrupt(f, strrchr(path, '/') + 1, offs[2]);
    /* And the newest hard state at the very end. */
    img[offs[2] + 16 + 16] ^= 0x04;
    assert_int_equal(img[offs[n - 1] + 4], 3);
    img[offs[n - 1] + 16 + 8] ^= 0x80;
    write_file(path, img, len);
    expect_corrupt(f, strrchr(path, '/') + 1, offs[n - 1]);
    free(img);
}

static void
test_wal_open_fails_when_zeroed_record_is_followed_by_a_synced_batch(
    void **state)
{
    struct fixture *f = *state;
    write_log(f, 4, 2, 40);
    char path[512];
    seg_file(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    uint64_t offs[64];
    record_offsets(img, len, offs, 64);
    /* Zero a whole record of batch 2: looks torn on its own, but batch 3
     * was written after batch 2 was synced. */
    memset(img + offs[4], 0, (size_t)(offs[5] - offs[4]));
    write_file(path, img, len);
    expect_corrupt(f, strrchr(path, '/') + 1, offs[4]);
    free(img);
}

static void test_wal_open_fails_when_a_middle_segment_is_missing(void **state)
{
    struct fixture *f = *state;
    write_log(f, 60, 20, 200); /* ~270 KiB: several 64 KiB segments */
    assert_true(count_segments(f) >= 4);
    char path[512];
    seg_file(f, 1, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    struct wal_options o = opts_for(f);
    struct wal *w;
    struct wal_replay r;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_ECORRUPT);
    assert_non_null(strstr(msg, "segment 1 is missing"));
}

static void test_wal_open_fails_on_bad_record_in_closed_segment(void **state)
{
    struct fixture *f = *state;
    write_log(f, 60, 20, 200);
    char path[512];
    seg_file(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    uint64_t offs[1024];
    size_t n = record_offsets(img, len, offs, 1024);
    /* Zero the closed segment's last record: a torn write there would be a
     * lie (the segment was synced before the next one was created). */
    memset(img + offs[n - 1], 0, 16);
    write_file(path, img, len);
    expect_corrupt(f, strrchr(path, '/') + 1, offs[n - 1]);
    free(img);
}

static void test_wal_open_fails_on_bad_segment_header(void **state)
{
    struct fixture *f = *state;
    write_log(f, 60, 20, 200);
    int segs = count_segments(f);
    char path[512];
    seg_file(f, segs - 1, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    img[20] ^= 1; /* the seq */
    write_file(path, img, len);
    expect_corrupt(f, strrchr(path, '/') + 1, 0);
    free(img);
}

static void test_wal_open_fails_when_records_are_swapped(void **state)
{
    struct fixture *f = *state;
    write_log(f, 6, 2, 40); /* equal-size records */
    char path[512];
    seg_file(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    uint64_t offs[64];
    size_t n = record_offsets(img, len, offs, 64);
    /* Entries of batch 2 (records 4 and 5) trade places: each verifies on
     * its own, but the chain does not. */
    size_t rl = (size_t)(offs[5] - offs[4]);
    assert_int_equal(rl, (size_t)(offs[6] - offs[5]));
    uint8_t tmp[256];
    memcpy(tmp, img + offs[4], rl);
    memcpy(img + offs[4], img + offs[5], rl);
    memcpy(img + offs[5], tmp, rl);
    write_file(path, img, len);
    expect_corrupt(f, strrchr(path, '/') + 1, offs[4]);
    (void)n;
    free(img);
}

static void test_wal_open_fails_when_a_segment_does_not_continue_the_chain(
    void **state)
{
    struct fixture *f = *state;
    write_log(f, 60, 20, 200);
    char path[512];
    seg_file(f, 2, path, sizeof(path));
    size_t len;
    uint8_t *img = read_file(path, &len);
    /* A well-formed header (its own crc fixed) with a wrong start crc: as
     * if a segment of another log, or an older copy, stood in its place. */
    img[32] ^= 0x01;
    uint32_t crc = moor_crc32c(0, img, 12);
    crc = moor_crc32c(crc, img + 16, 48);
    moor_put_le32(img + 12, crc);
    write_file(path, img, len);
    expect_corrupt(f, strrchr(path, '/') + 1, 0);
    free(img);
}

static void test_wal_open_from_snapshot_returns_entries_after_it(void **state)
{
    struct fixture *f = *state;
    write_log(f, 4, 5, 16);
    struct wal_options o = opts_for(f);
    o.start = (struct wal_snapshot){.term = 1, .index = 12};
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_int_equal(r.entries_len, 8);
    check_entry(&r.entries[0], 13, 1, 16);
    check_entry(&r.entries[7], 20, 1, 16);
    wal_replay_close(&r);
    wal_close(w);

    /* A snapshot whose term does not match the log's entry there belongs
     * to another history: refused. */
    o.start.term = 2;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_ECORRUPT);
    assert_non_null(strstr(msg, "has term 2 but the log has term 1"));
}

/* The first index in segment file path's name (<seq>-<first index>.wal). */
static uint64_t seg_first_index(const char *path)
{
    const char *dash = strrchr(path, '-');
    assert_non_null(dash);
    return strtoull(dash + 1, NULL, 16);
}

/* Opening from a snapshot does not read the segments whose entries are all
 * at or below it (the snapshot covers them; the next segment opens with the
 * metadata, marker and hard state): damage there no longer matters. Damage
 * in a segment the replay needs still fails the open. */
static void test_wal_open_from_snapshot_skips_segments_below_it(void **state)
{
    struct fixture *f = *state;
    write_log(f, 60, 20, 200); /* 1,200 entries in several segments */
    int segs = count_segments(f);
    assert_true(segs >= 4);
    char s1[512], s2[512];
    seg_file(f, 1, s1, sizeof(s1));
    seg_file(f, 2, s2, sizeof(s2));
    /* A snapshot at the last entry of segment 1: segments 0 and 1 hold
     * nothing after it. */
    uint64_t start = seg_first_index(s2) - 1;
    struct wal_options o = opts_for(f);
    o.start = (struct wal_snapshot){.term = 1, .index = start};

    char s0[512];
    seg_file(f, 0, s0, sizeof(s0));
    size_t len;
    uint8_t *img = read_file(s0, &len);
    uint64_t offs[1024];
    size_t n = record_offsets(img, len, offs, 1024);
    memset(img + offs[n / 2], 0, 16); /* corruption, were it read */
    write_file(s0, img, len);
    free(img);

    struct wal *w;
    struct wal_replay r;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_OK);
    assert_int_equal(r.entries_len, 1200 - start);
    check_entry(&r.entries[0], start + 1, 1, 200);
    check_entry(&r.entries[r.entries_len - 1], 1200, 1, 200);
    assert_int_equal(r.meta.member_id, o.meta.member_id);
    wal_replay_close(&r);
    wal_close(w);

    /* From an older snapshot, inside segment 0, the same damage fails. */
    o.start = (struct wal_snapshot){.term = 1, .index = 5};
    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_ECORRUPT);
    assert_non_null(strstr(msg, strrchr(s0, '/') + 1));

    /* Damage in segment 2, which holds the entries after the snapshot at
     * the end of segment 1, fails it too. */
    img = read_file(s2, &len);
    n = record_offsets(img, len, offs, 1024);
    memset(img + offs[n / 2], 0, 16);
    write_file(s2, img, len);
    free(img);
    o.start = (struct wal_snapshot){.term = 1, .index = start};
    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_ECORRUPT);
    assert_non_null(strstr(msg, strrchr(s2, '/') + 1));
}

static void test_wal_open_fails_when_log_does_not_reach_back_to_snapshot(
    void **state)
{
    struct fixture *f = *state;
    struct wal_options o = opts_for(f);
    o.max_wals = 1;
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    wal_replay_close(&r);
    uint64_t next = 1;
    for (int b = 0; b < 60; b++) {
        append_range(w, next, next + 19, 1, 200);
        next += 20;
    }
    /* Snapshot at 1100: marker, then release. */
    struct wal_snapshot snap = {.term = 1, .index = 1100};
    struct wal_batch mb = {.snapshot = &snap, .release_index = 1100};
    assert_int_equal(wal_append(w, &mb, NULL), MOOR_OK);
    wal_close(w);
    int left = count_segments(f);
    assert_true(left >= 1 && left <= 3);

    /* From the snapshot: fine, the hard state survived in the opening
     * records of the kept segments. */
    o.start = snap;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_int_equal(r.entries_len, 100);
    check_entry(&r.entries[0], 1101, 1, 200);
    assert_true(r.hard_state.commit == 1181);
    assert_true(r.snapshot.index == 1100);
    wal_replay_close(&r);
    wal_close(w);

    /* From nothing: the log no longer covers it. */
    o.start = (struct wal_snapshot){0, 0};
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_ENOENT);
    assert_non_null(strstr(msg, "does not cover"));
}

static void test_wal_open_records_a_snapshot_newer_than_the_log(void **state)
{
    struct fixture *f = *state;
    write_log(f, 2, 10, 16); /* entries 1..20 */
    /* A snapshot at 50 was installed, and the process died before its
     * marker reached the WAL. */
    struct wal_options o = opts_for(f);
    o.start = (struct wal_snapshot){.term = 2, .index = 50};
    struct wal *w;
    struct wal_replay r;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_OK);
    assert_int_equal(r.entries_len, 0);
    assert_true(r.snapshot.index == 50 && r.snapshot.term == 2);
    wal_replay_close(&r);
    uint64_t seq = append_range(w, 51, 55, 2, 16);
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    wal_close(w);

    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_OK);
    assert_int_equal(r.entries_len, 5);
    check_entry(&r.entries[0], 51, 2, 16);
    wal_replay_close(&r);
    wal_close(w);
    /* From before the snapshot the log has a hole: not covered. */
    o.start = (struct wal_snapshot){0, 0};
    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_wal_replays_entries_hard_state_and_meta),
        T(test_wal_append_at_lower_index_replaces_suffix),
        T(test_wal_open_truncates_last_record_cut_at_every_offset),
        T(test_wal_open_truncates_zeroed_tail),
        T(test_wal_open_truncates_batch_with_missing_middle_sector),
        T(test_wal_open_fails_on_bit_flip_in_middle_record),
        T(test_wal_open_fails_on_bit_flip_in_last_record),
        T(test_wal_open_fails_on_corrupt_hard_state),
        T(test_wal_open_fails_when_zeroed_record_is_followed_by_a_synced_batch),
        T(test_wal_open_fails_when_a_middle_segment_is_missing),
        T(test_wal_open_fails_on_bad_record_in_closed_segment),
        T(test_wal_open_fails_on_bad_segment_header),
        T(test_wal_open_fails_when_records_are_swapped),
        T(test_wal_open_fails_when_a_segment_does_not_continue_the_chain),
        T(test_wal_open_from_snapshot_returns_entries_after_it),
        T(test_wal_open_from_snapshot_skips_segments_below_it),
        T(test_wal_open_fails_when_log_does_not_reach_back_to_snapshot),
        T(test_wal_open_records_a_snapshot_newer_than_the_log),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
