/* test_snapshot_file.c: snapshot files: round trip through the lz4 frame
 * and the SHA-256 trailer, damage anywhere is refused before any byte
 * reaches the consumer, atomic writes, choosing the newest valid snapshot,
 * pruning, and streaming in chunks with verification before install. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot/snapshot.h"

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
    snprintf(f->dir, sizeof(f->dir), "%s/moor-snap-XXXXXX",
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

/* A kv stream stand-in: `total` bytes, half compressible text, half
 * pseudo-random, produced in chunks of varying size. */
struct producer
{
    struct moor_prng rng;
    size_t total;
    size_t done;
    uint8_t chunk[70000];
};

static uint8_t stream_byte(size_t i)
{
    if ((i / 4096) % 2 == 0) {
        return (uint8_t)("key/value/"[i % 10]);
    }
    uint64_t x = i * 0x9E3779B97F4A7C15ull;
    return (uint8_t)(x >> 56);
}

static int produce(void *arg, struct moor_slice *chunk)
{
    struct producer *p = arg;
    size_t n = (size_t)moor_prng_range(&p->rng, 1, sizeof(p->chunk));
    n = MOOR_MIN(n, p->total - p->done);
    for (size_t i = 0; i < n; i++) {
        p->chunk[i] = stream_byte(p->done + i);
    }
    p->done += n;
    *chunk = moor_slice_make(p->chunk, n);
    return 0;
}

struct consumer
{
    size_t got;
    size_t calls;
    bool mismatch;
};

static int consume(void *arg, const uint8_t *data, size_t len)
{
    struct consumer *c = arg;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != stream_byte(c->got + i)) {
            c->mismatch = true;
        }
    }
    c->got += len;
    c->calls++;
    return 0;
}

static struct snap_meta meta_at(uint64_t term, uint64_t index)
{
    struct snap_meta m = {
        .term = term,
        .index = index,
        .applied_index = index,
        .revision = index * 3,
        .compact_revision = index,
        .key_count = 1234,
        .lease_count = 5,
    };
    return m;
}

static void save(const struct fixture *f, uint64_t term, uint64_t index,
                 size_t total, char *path)
{
    struct producer p = {.total = total};
    moor_prng_seed(&p.rng, index);
    struct snap_meta m = meta_at(term, index);
    m.membership = moor_bytes_copy("members:1,2,3", 13);
    char msg[MOOR_ERRMSG_SIZE];
    int rv = snap_save(f->dir, &m, produce, &p, path, msg);
    if (rv != MOOR_OK) {
        fail_msg("snap_save: %s", msg);
    }
    moor_bytes_unref(m.membership);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    uint8_t *buf = malloc((size_t)n + 1);
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

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    size_t sl = strlen(suffix);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        n += l > sl && strcmp(de->d_name + l - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

static void test_snapshot_round_trips_meta_and_stream(void **state)
{
    struct fixture *f = *state;
    char path[SNAP_PATH_MAX];
    save(f, 7, 1000, 3u << 20, path);
    assert_non_null(strstr(path, "0000000000000007-00000000000003e8.snap"));
    struct snap_meta m;
    struct consumer c = {0};
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_load(path, &m, consume, &c, msg), MOOR_OK);
    assert_int_equal(c.got, 3u << 20);
    assert_false(c.mismatch);
    assert_true(m.term == 7 && m.index == 1000 && m.applied_index == 1000);
    assert_true(m.revision == 3000 && m.compact_revision == 1000);
    assert_true(m.key_count == 1234 && m.lease_count == 5);
    assert_true(m.raw_bytes == 3u << 20);
    assert_true(m.body_bytes < m.raw_bytes); /* half of it compresses */
    assert_true(m.created_unix_ns > 0);
    assert_non_null(m.membership);
    assert_memory_equal(m.membership->data, "members:1,2,3", 13);
    snap_meta_close(&m);
}

static void test_snapshot_trailer_is_sha256_of_the_rest(void **state)
{
    struct fixture *f = *state;
    char path[SNAP_PATH_MAX];
    save(f, 1, 5, 100000, path);
    size_t len;
    uint8_t *img = read_file(path, &len);
    uint8_t sha[32];
    unsigned int n = 0;
    EVP_Digest(img, len - 32, sha, &n, EVP_sha256(), NULL);
    assert_int_equal(n, 32);
    assert_memory_equal(sha, img + len - 32, 32);
    free(img);
}

/* etcdctl looks for its SHA-256 only in files whose size is 32 more than a
 * multiple of 512; the writer pads to that shape, and the padding must be
 * zeros (a flipped padding byte is corruption, not ignored). */
static void test_snapshot_size_has_etcdctls_shape(void **state)
{
    struct fixture *f = *state;
    for (size_t total = 0; total < 5000; total += 977) {
        char path[SNAP_PATH_MAX];
        save(f, 1, 10 + total, total, path);
        size_t len;
        uint8_t *img = read_file(path, &len);
        assert_int_equal(len % 512, 32);
        struct snap_meta m;
        assert_int_equal(snap_verify(path, &m, NULL), MOOR_OK);
        uint64_t pad_at = len - 56 - (len - 56 - (88 + 13) - m.body_bytes);
        uint64_t pad_len = len - 56 - pad_at;
        assert_true(pad_len < 512);
        snap_meta_close(&m);
        if (pad_len > 0) {
            img[pad_at] = 1;
            write_file(path, img, len);
            char msg[MOOR_ERRMSG_SIZE];
            assert_int_equal(snap_verify(path, NULL, msg), MOOR_ECORRUPT);
        }
        free(img);
    }
}

static void test_snapshot_empty_stream_round_trips(void **state)
{
    struct fixture *f = *state;
    char path[SNAP_PATH_MAX];
    save(f, 1, 1, 0, path);
    struct snap_meta m;
    struct consumer c = {0};
    assert_int_equal(snap_load(path, &m, consume, &c, NULL), MOOR_OK);
    assert_int_equal(c.got, 0);
    assert_true(m.raw_bytes == 0);
    snap_meta_close(&m);
}

static void test_snapshot_damage_anywhere_is_refused_before_loading(
    void **state)
{
    struct fixture *f = *state;
    char path[SNAP_PATH_MAX];
    save(f, 2, 50, 200000, path);
    size_t len;
    uint8_t *img = read_file(path, &len);
    /* Header, membership, body start, middle, end, trailer, digest. */
    size_t spots[] = {0,       9,        20,       90,       110,
                      len / 2, len - 60, len - 50, len - 40, len - 1};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(spots); i++) {
        img[spots[i]] ^= 0x20;
        write_file(path, img, len);
        struct snap_meta m;
        struct consumer c = {0};
        char msg[MOOR_ERRMSG_SIZE];
        assert_int_equal(snap_load(path, &m, consume, &c, msg), MOOR_ECORRUPT);
        assert_int_equal(c.calls, 0);
        assert_non_null(strstr(msg, path));
        assert_non_null(strstr(msg, "offset"));
        img[spots[i]] ^= 0x20;
    }
    /* Cut short at a few lengths. */
    size_t cuts[] = {0, 10, 100, len / 2, len - 1};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(cuts); i++) {
        write_file(path, img, cuts[i]);
        assert_int_equal(snap_verify(path, NULL, NULL), MOOR_ECORRUPT);
    }
    write_file(path, img, len);
    assert_int_equal(snap_verify(path, NULL, NULL), MOOR_OK);
    free(img);
}

/* snap_load_once decodes the frame once, into the consumer, while another
 * thread hashes the file: the same stream and meta as snap_load; damage
 * anywhere fails (the SHA-256 when nothing else does), and a bad header or
 * a cut file fail before the consumer gets a byte. */
static void test_snapshot_load_once_decodes_once_and_refuses_damage(
    void **state)
{
    struct fixture *f = *state;
    char path[SNAP_PATH_MAX];
    save(f, 3, 60, 3u << 20, path);
    struct snap_meta m;
    struct consumer c = {0};
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_load_once(path, &m, consume, &c, msg), MOOR_OK);
    assert_int_equal(c.got, 3u << 20);
    assert_false(c.mismatch);
    assert_true(m.term == 3 && m.index == 60 && m.raw_bytes == 3u << 20);
    assert_non_null(m.membership);
    snap_meta_close(&m);
    size_t len;
    uint8_t *img = read_file(path, &len);
    size_t spots[] = {0, 90, 110, len / 2, len - 50, len - 1};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(spots); i++) {
        img[spots[i]] ^= 0x20;
        write_file(path, img, len);
        struct consumer d = {0};
        assert_int_equal(snap_load_once(path, &m, consume, &d, msg),
                         MOOR_ECORRUPT);
        assert_non_null(strstr(msg, path));
        if (spots[i] == 0) {
            assert_int_equal(d.calls, 0); /* the magic: before any byte */
        }
        if (spots[i] == len / 2) {
            /* Body damage the decoder passes on: the checksum names it. */
            assert_non_null(strstr(msg, "SHA-256 mismatch"));
        }
        img[spots[i]] ^= 0x20;
    }
    write_file(path, img, len / 2);
    struct consumer e = {0};
    assert_int_equal(snap_load_once(path, &m, consume, &e, NULL),
                     MOOR_ECORRUPT);
    assert_int_equal(e.calls, 0);
    free(img);
}

static void test_snapshot_unfinished_write_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct snap_meta m = meta_at(3, 30);
    struct snap_writer *sw;
    assert_int_equal(snap_writer_open(&sw, f->dir, &m, NULL), MOOR_OK);
    assert_int_equal(snap_writer_append(sw, "abc", 3), MOOR_OK);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 1);
    snap_writer_close(sw);
    assert_int_equal(count_files(f->dir, ".snap"), 0);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
    /* A snapshot is never overwritten. */
    char path[SNAP_PATH_MAX];
    save(f, 3, 30, 10, path);
    assert_int_equal(snap_writer_open(&sw, f->dir, &m, NULL), MOOR_EEXIST);
}

/* A write that fails half-way (here: the file size limit, as a full disk
 * would) is reported and leaves no file behind. Runs in a child process
 * so the limit stays there. */
static void test_snapshot_failed_write_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {.rlim_cur = 5000, .rlim_max = 5000};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
            _exit(10);
        }
        struct producer p = {.total = 1u << 20};
        moor_prng_seed(&p.rng, 1);
        struct snap_meta m = meta_at(1, 77);
        char path[SNAP_PATH_MAX];
        char msg[MOOR_ERRMSG_SIZE];
        int rv = snap_save(f->dir, &m, produce, &p, path, msg);
        if (rv != MOOR_EIO || strstr(msg, ".snap.tmp") == NULL) {
            fprintf(stderr, "rv=%d msg=%s\n", rv, msg);
            _exit(11);
        }
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(count_files(f->dir, ".snap"), 0);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
}

static void test_snapshot_open_newest_skips_bad_newest_and_reports_it(
    void **state)
{
    struct fixture *f = *state;
    char path[SNAP_PATH_MAX];
    struct snap_meta m;
    size_t skipped;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_open_newest(f->dir, &m, path, &skipped, msg),
                     MOOR_ENOENT);
    char p1[SNAP_PATH_MAX];
    char p2[SNAP_PATH_MAX];
    char p3[SNAP_PATH_MAX];
    save(f, 1, 100, 5000, p1);
    save(f, 2, 200, 5000, p2);
    save(f, 2, 300, 5000, p3);
    assert_int_equal(snap_open_newest(f->dir, &m, path, &skipped, msg),
                     MOOR_OK);
    assert_true(m.index == 300 && skipped == 0);
    assert_string_equal(path, p3);
    snap_meta_close(&m);

    size_t len;
    uint8_t *img = read_file(p3, &len);
    img[len / 2] ^= 1;
    write_file(p3, img, len);
    free(img);
    assert_int_equal(snap_open_newest(f->dir, &m, path, &skipped, msg),
                     MOOR_OK);
    assert_true(m.index == 200 && skipped == 1);
    snap_meta_close(&m);

    /* A file whose name and header disagree does not verify either. */
    assert_int_equal(rename(p2, p3), 0);
    assert_int_equal(snap_open_newest(f->dir, &m, path, &skipped, msg),
                     MOOR_OK);
    assert_true(m.index == 100 && skipped == 1);
    snap_meta_close(&m);

    assert_int_equal(truncate(p1, 50), 0);
    assert_int_equal(snap_open_newest(f->dir, &m, path, &skipped, msg),
                     MOOR_ECORRUPT);
    assert_int_equal(skipped, 2);
    assert_non_null(strstr(msg, "no snapshot"));
}

static void test_snapshot_prune_keeps_the_newest(void **state)
{
    struct fixture *f = *state;
    char path[SNAP_PATH_MAX];
    for (uint64_t i = 1; i <= 8; i++) {
        save(f, 1, i * 10, 100, path);
    }
    char tmp[SNAP_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/0000000000000001-0000000000000063.snap.tmp",
             f->dir);
    write_file(tmp, (const uint8_t *)"x", 1);
    size_t removed;
    assert_int_equal(snap_prune(f->dir, 3, &removed), MOOR_OK);
    assert_int_equal(removed, 5);
    struct snap_file *files;
    size_t n;
    assert_int_equal(snap_list(f->dir, &files, &n), MOOR_OK);
    assert_int_equal(n, 3);
    assert_true(files[0].index == 80 && files[1].index == 70 &&
                files[2].index == 60);
    moor_free(files);
    /* A temporary file may be a writer's at work: pruning leaves it. */
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 1);
}

/* Streams path into a receiver in dir, flipping byte `flip` in transit
 * (SIZE_MAX: none). Returns the finish result. */
static int stream(const char *path, const char *dir, size_t flip,
                  uint64_t max_bytes, struct snap_meta *m)
{
    struct snap_sender *s;
    uint64_t size;
    assert_int_equal(snap_sender_open(&s, path, &size, NULL), MOOR_OK);
    struct snap_receiver *r;
    assert_int_equal(snap_receiver_open(&r, dir, max_bytes, NULL), MOOR_OK);
    uint8_t buf[1000];
    size_t at = 0;
    size_t n;
    int rv = MOOR_OK;
    while (snap_sender_read(s, buf, sizeof(buf), &n) == MOOR_OK && n > 0) {
        if (flip >= at && flip < at + n) {
            buf[flip - at] ^= 0x01;
        }
        at += n;
        rv = snap_receiver_write(r, buf, n);
        if (rv != MOOR_OK) {
            break;
        }
    }
    assert_true(rv != MOOR_OK || at == size);
    if (rv == MOOR_OK) {
        rv = snap_receiver_finish(r, m, NULL, NULL);
    }
    snap_receiver_close(r);
    snap_sender_close(s);
    return rv;
}

static void test_snapshot_stream_installs_only_a_verified_copy(void **state)
{
    struct fixture *f = *state;
    char path[SNAP_PATH_MAX];
    save(f, 4, 400, 300000, path);
    char dst[300];
    snprintf(dst, sizeof(dst), "%s/recv", f->dir);
    assert_int_equal(mkdir(dst, 0700), 0);

    struct snap_meta m;
    /* Damaged in transit: refused, nothing installed, no temp left. */
    assert_int_equal(stream(path, dst, 5000, UINT64_MAX, &m), MOOR_ECORRUPT);
    assert_int_equal(count_files(dst, ".snap"), 0);
    assert_int_equal(count_files(dst, ".snap.tmp"), 0);
    /* Too big for the bound. */
    assert_int_equal(stream(path, dst, SIZE_MAX, 4096, &m), MOOR_ETOOBIG);
    assert_int_equal(count_files(dst, ".snap.tmp"), 0);
    /* Whole: installed under its name, identical, loadable. */
    assert_int_equal(stream(path, dst, SIZE_MAX, UINT64_MAX, &m), MOOR_OK);
    assert_true(m.term == 4 && m.index == 400);
    snap_meta_close(&m);
    char got[SNAP_PATH_MAX];
    snprintf(got, sizeof(got), "%s/0000000000000004-0000000000000190.snap",
             dst);
    struct consumer c = {0};
    assert_int_equal(snap_load(got, &m, consume, &c, NULL), MOOR_OK);
    assert_int_equal(c.got, 300000);
    assert_false(c.mismatch);
    snap_meta_close(&m);
    /* The same snapshot again: refused, the installed one untouched. */
    assert_int_equal(stream(path, dst, SIZE_MAX, UINT64_MAX, &m), MOOR_EEXIST);
    assert_int_equal(count_files(dst, ".snap"), 1);
    assert_int_equal(count_files(dst, ".snap.tmp"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_snapshot_round_trips_meta_and_stream),
        T(test_snapshot_trailer_is_sha256_of_the_rest),
        T(test_snapshot_empty_stream_round_trips),
        T(test_snapshot_size_has_etcdctls_shape),
        T(test_snapshot_damage_anywhere_is_refused_before_loading),
        T(test_snapshot_load_once_decodes_once_and_refuses_damage),
        T(test_snapshot_unfinished_write_leaves_nothing),
        T(test_snapshot_failed_write_leaves_nothing),
        T(test_snapshot_open_newest_skips_bad_newest_and_reports_it),
        T(test_snapshot_prune_keeps_the_newest),
        T(test_snapshot_stream_installs_only_a_verified_copy),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
