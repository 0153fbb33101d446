/* test_snapshot_faults.c: a snapshot write, or a snapshot received as a
 * stream, that meets a full disk (ENOSPC, EDQUOT) or an I/O error (on
 * write, read-back, fsync of the file or the directory, rename), injected
 * through the snap_fs table at every stage of the file: it fails with
 * MOOR_ENOSPC or MOOR_EIO and a message naming the file, leaves nothing
 * under the final name, its temporary file is ignored while it exists and
 * removed on close, and the previous newest snapshot is still the one
 * snap_open_newest chooses. A received stream that is damaged, truncated,
 * overlong or abandoned half way is refused the same way. Short writes
 * still make a valid file. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
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

/* The fault-injecting table: passes calls to the real one until a fault
 * is due. */
struct fault_fs
{
    struct snap_fs fs; /* fs.arg points back here */
    uint64_t written;  /* bytes written through this table */
    uint64_t budget;   /* writes beyond this many bytes fail */
    int write_errno;   /* ... with this errno */
    size_t write_max;  /* 0, or the most bytes one write moves */
    int read_errno;    /* 0, or every pread fails with it */
    int fsync_errno;   /* 0, or fsyncs after the first fsync_ok fail */
    unsigned fsync_ok; /* fsyncs that pass before fsync_errno applies */
    unsigned fsyncs;   /* fsync calls */
    int rename_errno;  /* 0, or every rename fails with it */
};

static ssize_t fault_write(void *arg, int fd, const void *buf, size_t len)
{
    struct fault_fs *f = arg;
    if (f->written >= f->budget) {
        return -f->write_errno;
    }
    /* A write that crosses the budget is short, as a filling disk makes
     * it; the next one fails. */
    len = (size_t)MOOR_MIN((uint64_t)len, f->budget - f->written);
    if (f->write_max != 0) {
        len = MOOR_MIN(len, f->write_max);
    }
    ssize_t n = snap_fs_posix()->write(NULL, fd, buf, len);
    if (n > 0) {
        f->written += (uint64_t)n;
    }
    return n;
}

static ssize_t fault_pread(void *arg, int fd, void *buf, size_t len, off_t off)
{
    struct fault_fs *f = arg;
    if (f->read_errno != 0) {
        return -f->read_errno;
    }
    return snap_fs_posix()->pread(NULL, fd, buf, len, off);
}

static int fault_fsync(void *arg, int fd)
{
    struct fault_fs *f = arg;
    f->fsyncs++;
    if (f->fsync_errno != 0 && f->fsyncs > f->fsync_ok) {
        return -f->fsync_errno;
    }
    return snap_fs_posix()->fsync(NULL, fd);
}

static int fault_rename(void *arg, const char *from, const char *to)
{
    struct fault_fs *f = arg;
    if (f->rename_errno != 0) {
        return -f->rename_errno;
    }
    return snap_fs_posix()->rename(NULL, from, to);
}

static void fault_init(struct fault_fs *f)
{
    *f = (struct fault_fs){
        .fs = {.arg = f,
               .write = fault_write,
               .pread = fault_pread,
               .fsync = fault_fsync,
               .rename = fault_rename},
        .budget = UINT64_MAX,
        .write_errno = ENOSPC,
    };
}

struct fixture
{
    char dir[256];
    struct fault_fs ffs;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/moor-snapf-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    fault_init(&f->ffs);
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

/* Byte i of the kv stream stand-in: incompressible, so the file is about
 * as long as the stream. */
static uint8_t stream_byte(uint64_t i)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull; /* splitmix64's mix */
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return (uint8_t)(x ^ (x >> 31));
}

static struct snap_meta meta_at(uint64_t term, uint64_t index)
{
    struct snap_meta m = {
        .term = term,
        .index = index,
        .applied_index = index,
        .revision = index * 2,
        .key_count = 10,
    };
    return m;
}

/* Writes snapshot term-index with `total` stream bytes through fs (NULL:
 * the real calls), appending in chunks of 10,000. Returns the first
 * failure; *sw_out (may be NULL) gets the writer, unclosed, and the caller
 * closes it; with sw_out NULL it is closed here. errmsg gets the writer's
 * message. */
static int write_snap(const struct fixture *f, const struct snap_fs *fs,
                      uint64_t term, uint64_t index, size_t total,
                      struct snap_writer **sw_out, char *errmsg)
{
    struct snap_meta m = meta_at(term, index);
    struct snap_writer *sw = NULL;
    errmsg[0] = '\0';
    int rv = snap_writer_open_fs(&sw, f->dir, &m, fs, errmsg);
    if (rv != MOOR_OK) {
        if (sw_out != NULL) {
            *sw_out = NULL;
        }
        return rv;
    }
    uint8_t chunk[10000];
    for (size_t at = 0; at < total && rv == MOOR_OK;) {
        size_t n = MOOR_MIN(sizeof(chunk), total - at);
        for (size_t i = 0; i < n; i++) {
            chunk[i] = stream_byte(at + i);
        }
        rv = snap_writer_append(sw, chunk, n);
        at += n;
    }
    if (rv == MOOR_OK) {
        rv = snap_writer_finish(sw, NULL);
    }
    snprintf(errmsg, MOOR_ERRMSG_SIZE, "%s", snap_writer_errmsg(sw));
    if (sw_out != NULL) {
        *sw_out = sw;
    } else {
        snap_writer_close(sw);
    }
    return rv;
}

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
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

/* The snapshot directory holds exactly the snapshot at `index` (a whole
 * one), and snap_open_newest chooses it without skipping anything. */
static void assert_newest_is(const struct fixture *f, uint64_t index)
{
    struct snap_file *files;
    size_t n;
    assert_int_equal(snap_list(f->dir, &files, &n), MOOR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(files[0].index, index);
    moor_free(files);
    struct snap_meta m;
    char path[SNAP_PATH_MAX];
    size_t skipped = 99;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_open_newest(f->dir, &m, path, &skipped, msg),
                     MOOR_OK);
    assert_int_equal(m.index, index);
    assert_int_equal(skipped, 0);
    snap_meta_close(&m);
}

/* The disk fills half-way through the body: the append that meets it
 * fails with MOOR_ENOSPC and a message naming the temporary file and the
 * error; the writer stays failed; while it is still open its temporary
 * file is not taken for a snapshot; close removes it; the previous
 * snapshot is still the newest. */
static void test_snapshot_enospc_in_the_body_fails_and_keeps_the_previous(
    void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 50000, NULL, msg), MOOR_OK);

    f->ffs.budget = 30000;
    struct snap_writer *sw;
    assert_int_equal(write_snap(f, &f->ffs.fs, 2, 200, 200000, &sw, msg),
                     MOOR_ENOSPC);
    assert_non_null(strstr(msg, "0000000000000002-00000000000000c8.snap.tmp"));
    assert_non_null(strstr(msg, strerror(ENOSPC)));
    assert_non_null(strstr(msg, "offset 30000"));
    /* Sticky: nothing more is written, finish refuses. */
    uint64_t written = f->ffs.written;
    assert_int_equal(snap_writer_append(sw, "more", 4), MOOR_ENOSPC);
    assert_int_equal(snap_writer_finish(sw, NULL), MOOR_ENOSPC);
    assert_int_equal(f->ffs.written, written);
    /* The partial file exists only under its temporary name, and neither
     * the listing nor the choice of the newest sees it. */
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 1);
    assert_newest_is(f, 100);
    snap_writer_close(sw);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
    assert_int_equal(count_files(f->dir, ".snap"), 1);
    assert_newest_is(f, 100);
}

/* ENOSPC at every stage of the file: the header (nothing written at all),
 * the membership-less header's end, each byte near the lz4 frame's end,
 * the padding, the trailer and the digest (its last byte included). Each
 * fails with MOOR_ENOSPC and leaves only the previous snapshot. */
static void test_snapshot_enospc_at_any_point_leaves_only_the_previous(
    void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    /* A dry run through the table measures the whole file. */
    f->ffs.budget = UINT64_MAX;
    f->ffs.written = 0;
    assert_int_equal(write_snap(f, &f->ffs.fs, 1, 101, 20000, NULL, msg),
                     MOOR_OK);
    uint64_t total = f->ffs.written;
    struct stat st;
    char path[SNAP_PATH_MAX];
    snprintf(path, sizeof(path), "%s/0000000000000001-0000000000000065.snap",
             f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, total);
    assert_int_equal(unlink(path), 0);

    uint64_t budgets[64];
    size_t nb = 0;
    budgets[nb++] = 0;  /* the first header write */
    budgets[nb++] = 87; /* inside the fixed header */
    budgets[nb++] = total / 2;
    for (uint64_t back = 1; back <= 600; back += 23) {
        budgets[nb++] = total - back; /* lz4 end, padding, trailer */
    }
    budgets[nb++] = total - 33; /* the digest's first byte */
    budgets[nb++] = total - 1;  /* its last */
    assert_true(nb <= sizeof(budgets) / sizeof(budgets[0]));
    for (size_t i = 0; i < nb; i++) {
        f->ffs.written = 0;
        f->ffs.budget = budgets[i];
        int rv = write_snap(f, &f->ffs.fs, 1, 101, 20000, NULL, msg);
        if (rv != MOOR_ENOSPC || strstr(msg, strerror(ENOSPC)) == NULL) {
            fail_msg("budget %llu of %llu: rv %d msg \"%s\"",
                     (unsigned long long)budgets[i], (unsigned long long)total,
                     rv, msg);
        }
        assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
        assert_int_equal(count_files(f->dir, ".snap"), 1);
        assert_newest_is(f, 100);
    }
    /* With the space back, the same snapshot is written. */
    f->ffs.budget = UINT64_MAX;
    assert_int_equal(write_snap(f, &f->ffs.fs, 1, 101, 20000, NULL, msg),
                     MOOR_OK);
    assert_int_equal(snap_verify(path, NULL, msg), MOOR_OK);
}

/* A quota (EDQUOT) is the same "no space" as a full disk. */
static void test_snapshot_quota_exceeded_is_enospc(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    f->ffs.budget = 1000;
    f->ffs.write_errno = EDQUOT;
    assert_int_equal(write_snap(f, &f->ffs.fs, 1, 7, 50000, NULL, msg),
                     MOOR_ENOSPC);
    assert_non_null(strstr(msg, strerror(EDQUOT)));
    assert_int_equal(count_files(f->dir, ".snap"), 0);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
}

/* Any other write error is MOOR_EIO. */
static void test_snapshot_write_eio_is_eio(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    f->ffs.budget = 40000;
    f->ffs.write_errno = EIO;
    assert_int_equal(write_snap(f, &f->ffs.fs, 1, 200, 50000, NULL, msg),
                     MOOR_EIO);
    assert_non_null(strstr(msg, "write "));
    assert_non_null(strstr(msg, strerror(EIO)));
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
    assert_newest_is(f, 100);
}

/* fsync of the finished file fails: MOOR_EIO, tried once and never again
 * (the kernel may have dropped the pages), nothing under the final name,
 * the temporary file removed, the previous snapshot still the newest. */
static void test_snapshot_fsync_eio_installs_nothing(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    f->ffs.fsync_errno = EIO;
    struct snap_writer *sw;
    assert_int_equal(write_snap(f, &f->ffs.fs, 3, 300, 50000, &sw, msg),
                     MOOR_EIO);
    assert_non_null(strstr(msg, "fsync "));
    assert_non_null(strstr(msg, ".snap.tmp"));
    assert_non_null(strstr(msg, strerror(EIO)));
    assert_int_equal(f->ffs.fsyncs, 1);
    assert_int_equal(snap_writer_finish(sw, NULL), MOOR_EIO);
    assert_int_equal(f->ffs.fsyncs, 1);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 1);
    assert_newest_is(f, 100);
    snap_writer_close(sw);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
    assert_newest_is(f, 100);
}

/* ENOSPC reported by fsync (delayed allocation, thin provisioning) is
 * MOOR_ENOSPC like a failed write. */
static void test_snapshot_fsync_enospc_is_enospc(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    f->ffs.fsync_errno = ENOSPC;
    assert_int_equal(write_snap(f, &f->ffs.fs, 1, 9, 5000, NULL, msg),
                     MOOR_ENOSPC);
    assert_non_null(strstr(msg, "fsync "));
    assert_int_equal(count_files(f->dir, ".snap"), 0);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
}

struct check
{
    uint64_t got;
    bool mismatch;
};

static int check_cb(void *arg, const uint8_t *data, size_t len)
{
    struct check *c = arg;
    for (size_t i = 0; i < len; i++) {
        c->mismatch |= data[i] != stream_byte(c->got + i);
    }
    c->got += len;
    return 0;
}

/* Writes that move only a few bytes at a time still make a whole file
 * that verifies and loads to the same stream. */
static void test_snapshot_short_writes_still_make_a_valid_file(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    f->ffs.write_max = 7;
    assert_int_equal(write_snap(f, &f->ffs.fs, 4, 40, 30000, NULL, msg),
                     MOOR_OK);
    char path[SNAP_PATH_MAX];
    snprintf(path, sizeof(path), "%s/0000000000000004-0000000000000028.snap",
             f->dir);
    struct snap_meta m;
    struct check c = {0};
    assert_int_equal(snap_load(path, &m, check_cb, &c, msg), MOOR_OK);
    assert_int_equal(c.got, 30000);
    assert_false(c.mismatch);
    assert_int_equal(m.index, 40);
    snap_meta_close(&m);
}

/* A temporary file a crash left behind (the process died mid-write, so
 * close never ran) is not a snapshot to snap_list or snap_open_newest;
 * snap_prune leaves it (it could be a receiver's at work: pruning after a
 * periodic snapshot once deleted a leader's snapshot mid-transfer) and
 * snap_clean_temps, run at start, removes it. */
static void test_snapshot_stray_temp_is_ignored_then_pruned(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    char tmp[SNAP_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/0000000000000002-00000000000000c8.snap.tmp",
             f->dir);
    FILE *fp = fopen(tmp, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite("moorsnap", 1, 8, fp), 8);
    fclose(fp);
    assert_newest_is(f, 100);
    size_t removed = 0;
    assert_int_equal(snap_prune(f->dir, 5, &removed), MOOR_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 1);
    assert_int_equal(snap_clean_temps(f->dir, &removed), MOOR_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
    assert_newest_is(f, 100);
}

/* ------------------------------------------------------------------------
 * The receiver: a snapshot streamed in chunks (leader to follower, or a
 * Maintenance restore), written to a temporary file and installed only
 * after it verifies.
 * ---------------------------------------------------------------------- */

/* A whole snapshot file in memory: the stream a sender would produce. */
struct stream_src
{
    uint8_t *data;
    size_t len;
};

/* Writes snapshot term-index (`total` stream bytes) into <dir>/src, which
 * snap_list of dir does not see, and reads it back through a sender. */
static struct stream_src make_stream(const struct fixture *f, uint64_t term,
                                     uint64_t index, size_t total)
{
    struct fixture sub = *f;
    size_t dl = strlen(f->dir);
    assert_true(dl + sizeof("/src") <= sizeof(sub.dir));
    memcpy(sub.dir + dl, "/src", sizeof("/src"));
    mkdir(sub.dir, 0700);
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(&sub, NULL, term, index, total, NULL, msg),
                     MOOR_OK);
    char name[SNAP_NAME_BYTES];
    char path[SNAP_PATH_MAX];
    snap_name(name, term, index);
    snprintf(path, sizeof(path), "%s/%s", sub.dir, name);
    struct snap_sender *snd;
    uint64_t size;
    assert_int_equal(snap_sender_open(&snd, path, &size, msg), MOOR_OK);
    struct stream_src src = {.data = malloc((size_t)size), .len = (size_t)size};
    assert_non_null(src.data);
    size_t at = 0;
    size_t n;
    while (snap_sender_read(snd, src.data + at, src.len - at, &n) == MOOR_OK &&
           n > 0) {
        at += n;
    }
    assert_int_equal(at, src.len);
    snap_sender_close(snd);
    return src;
}

/* How one receive goes. */
struct recv_case
{
    const struct snap_fs *fs; /* NULL: the real calls */
    size_t send;              /* bytes of the stream sent */
    size_t flip;              /* byte flipped in transit; SIZE_MAX: none */
    bool finish;              /* false: the sender stops; close only */
    int write_rv;             /* the first failing write's result, or OK */
};

/* Streams src into a receiver in f->dir in chunks of 1000 bytes, as
 * described by c, then finishes (when c->finish) and closes it. On any
 * failure the receiver stays failed and its temporary file, which nothing
 * takes for a snapshot, exists until close (unless it was renamed into
 * place and taken out again). Returns the finish result
 * (MOOR_OK when not finishing) with its message in msg; c->write_rv gets
 * the first failing write's. */
static int receive(const struct fixture *f, const struct stream_src *src,
                   struct recv_case *c, char *msg)
{
    struct snap_receiver *r;
    msg[0] = '\0';
    assert_int_equal(snap_receiver_open_fs(&r, f->dir, UINT64_MAX, c->fs, msg),
                     MOOR_OK);
    uint8_t buf[1000];
    int rv = MOOR_OK;
    for (size_t at = 0; at < c->send && rv == MOOR_OK;) {
        size_t n = MOOR_MIN(sizeof(buf), c->send - at);
        memcpy(buf, src->data + at, n);
        if (c->flip >= at && c->flip < at + n) {
            buf[c->flip - at] ^= 0x01;
        }
        rv = snap_receiver_write(r, buf, n);
        at += n;
    }
    c->write_rv = rv;
    if (rv != MOOR_OK) {
        /* Sticky. */
        assert_int_equal(snap_receiver_write(r, "x", 1), rv);
    }
    if (c->finish) {
        rv = snap_receiver_finish(r, NULL, NULL, msg);
    }
    if (rv != MOOR_OK) {
        /* One, or none when the file was renamed and taken out again. */
        assert_true(count_files(f->dir, ".snap.tmp") <= 1);
        assert_newest_is(f, 100);
    }
    snap_receiver_close(r);
    return rv;
}

/* Nothing was installed: no temporary file, the previous snapshot (index
 * 100) the only one and the one chosen. */
static void assert_nothing_installed(const struct fixture *f)
{
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
    assert_int_equal(count_files(f->dir, ".snap"), 1);
    assert_newest_is(f, 100);
}

/* Without faults the receiver installs an identical, loadable copy; with
 * writes that move 7 bytes at a time, too. */
static void test_snapshot_receive_installs_a_whole_stream(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    struct stream_src src = make_stream(f, 2, 200, 30000);
    f->ffs.write_max = 7;
    struct snap_receiver *r;
    assert_int_equal(
        snap_receiver_open_fs(&r, f->dir, src.len, &f->ffs.fs, msg), MOOR_OK);
    assert_int_equal(snap_receiver_write(r, src.data, src.len), MOOR_OK);
    struct snap_meta m;
    char path[SNAP_PATH_MAX];
    assert_int_equal(snap_receiver_finish(r, &m, path, msg), MOOR_OK);
    assert_int_equal(m.index, 200);
    assert_int_equal(f->ffs.fsyncs, 2); /* the file, then the directory */
    snap_meta_close(&m);
    snap_receiver_close(r);
    assert_non_null(strstr(path, "0000000000000002-00000000000000c8.snap"));
    struct check c = {0};
    assert_int_equal(snap_load(path, &m, check_cb, &c, msg), MOOR_OK);
    assert_int_equal(c.got, 30000);
    assert_false(c.mismatch);
    snap_meta_close(&m);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 0);
    assert_int_equal(count_files(f->dir, ".snap"), 2);
    free(src.data);
}

/* The disk fills (ENOSPC, EDQUOT) or fails (EIO) at every stage of the
 * stream: the first chunk, inside the header, the middle of the body, the
 * end of the frame, the padding, the trailer, the digest's first and last
 * bytes. The write that meets it fails with the right code and the
 * failure is sticky; finish refuses with a message naming the temporary
 * file, the offset and the error; nothing is installed. */
static void test_snapshot_receive_write_faults_at_any_point_install_nothing(
    void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    struct stream_src src = make_stream(f, 2, 200, 20000);
    uint64_t budgets[] = {0,
                          1,
                          87,
                          src.len / 2,
                          src.len - 600,
                          src.len - 56,
                          src.len - 33,
                          src.len - 1};
    const int errnos[] = {ENOSPC, EDQUOT, EIO};
    for (size_t e = 0; e < sizeof(errnos) / sizeof(errnos[0]); e++) {
        int want = errnos[e] == EIO ? MOOR_EIO : MOOR_ENOSPC;
        for (size_t i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
            f->ffs.written = 0;
            f->ffs.budget = budgets[i];
            f->ffs.write_errno = errnos[e];
            struct recv_case c = {.fs = &f->ffs.fs,
                                  .send = src.len,
                                  .flip = SIZE_MAX,
                                  .finish = true};
            int rv = receive(f, &src, &c, msg);
            char offset[40];
            snprintf(offset, sizeof(offset), "offset %llu",
                     (unsigned long long)budgets[i]);
            if (rv != want || c.write_rv != want ||
                strstr(msg, strerror(errnos[e])) == NULL ||
                strstr(msg, "recv-") == NULL || strstr(msg, offset) == NULL) {
                fail_msg("errno %d budget %llu of %zu: rv %d msg \"%s\"",
                         errnos[e], (unsigned long long)budgets[i], src.len, rv,
                         msg);
            }
            assert_int_equal(f->ffs.written, budgets[i]);
            assert_nothing_installed(f);
        }
    }
    free(src.data);
}

/* An I/O error reading the file back to verify it is MOOR_EIO, not a bad
 * snapshot: the stream may have been fine. Nothing is installed. */
static void test_snapshot_receive_read_back_eio_is_eio(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    struct stream_src src = make_stream(f, 2, 200, 20000);
    f->ffs.read_errno = EIO;
    struct recv_case c = {
        .fs = &f->ffs.fs, .send = src.len, .flip = SIZE_MAX, .finish = true};
    assert_int_equal(receive(f, &src, &c, msg), MOOR_EIO);
    assert_int_equal(c.write_rv, MOOR_OK);
    assert_non_null(strstr(msg, "read error"));
    assert_int_equal(f->ffs.fsyncs, 0);
    assert_nothing_installed(f);
    free(src.data);
}

/* fsync of the received file fails (EIO, or ENOSPC from delayed
 * allocation): the matching code, tried once and never again (a second
 * finish refuses without syncing), nothing installed. */
static void test_snapshot_receive_fsync_failure_installs_nothing(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    struct stream_src src = make_stream(f, 2, 200, 20000);
    const int errnos[] = {EIO, ENOSPC};
    for (size_t e = 0; e < 2; e++) {
        f->ffs.fsync_errno = errnos[e];
        f->ffs.fsyncs = 0;
        struct snap_receiver *r;
        assert_int_equal(
            snap_receiver_open_fs(&r, f->dir, UINT64_MAX, &f->ffs.fs, msg),
            MOOR_OK);
        assert_int_equal(snap_receiver_write(r, src.data, src.len), MOOR_OK);
        int want = errnos[e] == EIO ? MOOR_EIO : MOOR_ENOSPC;
        assert_int_equal(snap_receiver_finish(r, NULL, NULL, msg), want);
        assert_non_null(strstr(msg, "fsync "));
        assert_non_null(strstr(msg, ".snap.tmp"));
        assert_non_null(strstr(msg, strerror(errnos[e])));
        assert_int_equal(f->ffs.fsyncs, 1);
        assert_int_equal(snap_receiver_finish(r, NULL, NULL, msg), want);
        assert_non_null(strstr(msg, "failed earlier"));
        assert_int_equal(f->ffs.fsyncs, 1);
        assert_int_equal(count_files(f->dir, ".snap.tmp"), 1);
        assert_newest_is(f, 100);
        snap_receiver_close(r);
        assert_nothing_installed(f);
    }
    free(src.data);
}

/* The rename that installs the file fails (ENOSPC for a directory that
 * cannot grow, EIO): nothing installed. */
static void test_snapshot_receive_rename_failure_installs_nothing(void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    struct stream_src src = make_stream(f, 2, 200, 20000);
    const int errnos[] = {ENOSPC, EIO};
    for (size_t e = 0; e < 2; e++) {
        f->ffs.rename_errno = errnos[e];
        struct recv_case c = {.fs = &f->ffs.fs,
                              .send = src.len,
                              .flip = SIZE_MAX,
                              .finish = true};
        assert_int_equal(receive(f, &src, &c, msg),
                         errnos[e] == EIO ? MOOR_EIO : MOOR_ENOSPC);
        assert_non_null(strstr(msg, "rename"));
        assert_non_null(strstr(msg, "0000000000000002-00000000000000c8.snap"));
        assert_non_null(strstr(msg, strerror(errnos[e])));
        assert_nothing_installed(f);
    }
    free(src.data);
}

/* The directory's fsync after the rename fails: MOOR_EIO, and the file
 * renamed into place is taken out again, so "not installed" is true for
 * this process too. */
static void test_snapshot_receive_dir_fsync_failure_installs_nothing(
    void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    struct stream_src src = make_stream(f, 2, 200, 20000);
    f->ffs.fsync_errno = EIO;
    f->ffs.fsync_ok = 1; /* the file's passes, the directory's fails */
    struct recv_case c = {
        .fs = &f->ffs.fs, .send = src.len, .flip = SIZE_MAX, .finish = true};
    assert_int_equal(receive(f, &src, &c, msg), MOOR_EIO);
    assert_int_equal(f->ffs.fsyncs, 2);
    assert_non_null(strstr(msg, "fsync of directory"));
    assert_non_null(strstr(msg, strerror(EIO)));
    assert_nothing_installed(f);
    free(src.data);
}

/* A bit flipped in transit anywhere (header, body, padding, trailer, the
 * digest itself) is MOOR_ECORRUPT naming the temporary file; nothing is
 * installed. */
static void test_snapshot_receive_checksum_mismatch_installs_nothing(
    void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    struct stream_src src = make_stream(f, 2, 200, 20000);
    size_t flips[] = {20,           100,          src.len / 2, src.len - 60,
                      src.len - 40, src.len - 32, src.len - 1};
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        struct recv_case c = {
            .fs = NULL, .send = src.len, .flip = flips[i], .finish = true};
        int rv = receive(f, &src, &c, msg);
        if (rv != MOOR_ECORRUPT || strstr(msg, "does not verify") == NULL ||
            strstr(msg, ".snap.tmp") == NULL) {
            fail_msg("flip %zu of %zu: rv %d msg \"%s\"", flips[i], src.len, rv,
                     msg);
        }
        assert_nothing_installed(f);
    }
    /* The body and digest flips are caught by the SHA-256 itself. */
    struct recv_case c = {
        .fs = NULL, .send = src.len, .flip = src.len / 2, .finish = true};
    assert_int_equal(receive(f, &src, &c, msg), MOOR_ECORRUPT);
    assert_non_null(strstr(msg, "SHA-256 mismatch"));
    free(src.data);
}

/* A stream cut short (nothing, one byte, inside the header, half, all but
 * the last byte) or one byte too long is MOOR_ECORRUPT; nothing is
 * installed. */
static void test_snapshot_receive_truncated_or_overlong_stream_is_corrupt(
    void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    struct stream_src src = make_stream(f, 2, 200, 20000);
    size_t sends[] = {0, 1, 87, src.len / 2, src.len - 32, src.len - 1};
    for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++) {
        struct recv_case c = {
            .fs = NULL, .send = sends[i], .flip = SIZE_MAX, .finish = true};
        int rv = receive(f, &src, &c, msg);
        if (rv != MOOR_ECORRUPT || strstr(msg, "does not verify") == NULL) {
            fail_msg("sent %zu of %zu: rv %d msg \"%s\"", sends[i], src.len, rv,
                     msg);
        }
        assert_nothing_installed(f);
    }
    uint8_t *longer = realloc(src.data, src.len + 1);
    assert_non_null(longer);
    longer[src.len] = 0;
    struct stream_src src2 = {.data = longer, .len = src.len + 1};
    struct recv_case c = {
        .fs = NULL, .send = src2.len, .flip = SIZE_MAX, .finish = true};
    assert_int_equal(receive(f, &src2, &c, msg), MOOR_ECORRUPT);
    assert_nothing_installed(f);
    free(longer);
}

/* The sender stops half way (the connection drops) and the receiver is
 * closed without finishing: while it is open its temporary file is not a
 * snapshot; close removes it; nothing is installed. */
static void test_snapshot_receive_abandoned_half_way_leaves_nothing(
    void **state)
{
    struct fixture *f = *state;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(write_snap(f, NULL, 1, 100, 5000, NULL, msg), MOOR_OK);
    struct stream_src src = make_stream(f, 2, 200, 20000);
    struct snap_receiver *r;
    assert_int_equal(snap_receiver_open(&r, f->dir, UINT64_MAX, msg), MOOR_OK);
    assert_int_equal(snap_receiver_write(r, src.data, src.len / 2), MOOR_OK);
    assert_int_equal(count_files(f->dir, ".snap.tmp"), 1);
    assert_newest_is(f, 100);
    snap_receiver_close(r);
    assert_nothing_installed(f);
    /* The stream bound: a stream past it fails the write, sticky. */
    assert_int_equal(snap_receiver_open(&r, f->dir, src.len - 1, msg), MOOR_OK);
    assert_int_equal(snap_receiver_write(r, src.data, src.len), MOOR_ETOOBIG);
    assert_non_null(strstr(snap_receiver_errmsg(r), "bound"));
    assert_int_equal(snap_receiver_finish(r, NULL, NULL, msg), MOOR_ETOOBIG);
    snap_receiver_close(r);
    assert_nothing_installed(f);
    free(src.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_snapshot_enospc_in_the_body_fails_and_keeps_the_previous),
        T(test_snapshot_enospc_at_any_point_leaves_only_the_previous),
        T(test_snapshot_quota_exceeded_is_enospc),
        T(test_snapshot_write_eio_is_eio),
        T(test_snapshot_fsync_eio_installs_nothing),
        T(test_snapshot_fsync_enospc_is_enospc),
        T(test_snapshot_short_writes_still_make_a_valid_file),
        T(test_snapshot_stray_temp_is_ignored_then_pruned),
        T(test_snapshot_receive_installs_a_whole_stream),
        T(test_snapshot_receive_write_faults_at_any_point_install_nothing),
        T(test_snapshot_receive_read_back_eio_is_eio),
        T(test_snapshot_receive_fsync_failure_installs_nothing),
        T(test_snapshot_receive_rename_failure_installs_nothing),
        T(test_snapshot_receive_dir_fsync_failure_installs_nothing),
        T(test_snapshot_receive_checksum_mismatch_installs_nothing),
        T(test_snapshot_receive_truncated_or_overlong_stream_is_corrupt),
        T(test_snapshot_receive_abandoned_half_way_leaves_nothing),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
