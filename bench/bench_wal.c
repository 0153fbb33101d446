/*
 * bench_wal.c: `moor-bench wal`, the WAL's append throughput beside a raw
 * write + fdatasync loop on the same disk in the same run.
 *
 * For each batch size (default 1, 16 and 256 entries of 256 bytes):
 *   raw  one pwrite of exactly the bytes the WAL writes for the batch, at
 *        the next offset of a 64 MiB file, then fdatasync(); the files are
 *        prepared the way the WAL prepares its segments, outside the timed
 *        steps: the first one fallocate()d, zero-filled and fsync()ed
 *        whole (a new log's first segment), each next one fallocate()d
 *        once the current one is half full and then zero-filled 256 KiB
 *        between steps and fsync()ed (the WAL's spare, filled in its
 *        writer's idle time); so vs_raw measures the WAL's own cost, not
 *        how the files were made, and both see the same zero traffic.
 *        --raw-prep fallocate leaves out the zeros (the WAL's files before
 *        it zero-filled them);
 *   wal  wal_append() of the batch, then wait for the writer thread's
 *        notify that it is durable (one batch per sync, like raw);
 *   pipe wal_append() without waiting, up to --inflight batches queued:
 *        group commit folds what queues during a sync into the next one.
 * raw and wal alternate batch by batch, each timed on its own, for
 * 2 x --seconds in all (the disk is shared: drift hits both alike); pipe
 * then runs for --seconds. appends/s counts entries; MB/s counts entry
 * payload bytes. wal and pipe are also given as a percentage of raw
 * (vs_raw, from the totals), and wal as raw's median batch latency over
 * wal's (vs_raw_p50): on a shared disk a few stalls of many milliseconds
 * land on one side or the other and swing the totals by 10 % or more from
 * run to run, while the medians stay put.
 *
 * Use a directory on the disk under test (--dir; not a tmpfs).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"
#include "wal/wal.h"

#define SIZES_MAX 8

struct wal_bench_opts
{
    const char *dir;
    size_t entry_bytes;
    size_t sizes[SIZES_MAX];
    size_t sizes_len;
    double seconds;
    uint64_t inflight;
    bool raw_zeros; /* --raw-prep: zeros (default) or fallocate */
    bool json;
};

struct wal_bench_result
{
    double appends_s;
    double mb_s;
    double syncs_s;
    double p50_ms; /* per-batch latency (serial runs; 0 for pipe) */
    double p99_ms;
};

/* The writer's notify wakes the bench thread the way it wakes moord's loop
 * (uv_async_send is a write to an eventfd the loop polls): one write, no
 * lock. The bench thread blocks in read(2) on the same eventfd. */
static int bw_efd = -1;
static atomic_uint_fast64_t bw_notifies;

static void bw_notify(void *arg)
{
    (void)arg;
    atomic_fetch_add(&bw_notifies, 1);
    uint64_t one = 1;
    ssize_t n = write(bw_efd, &one, sizeof(one));
    (void)n; /* cannot fail short of a bug: the counter never nears max */
}

/* Blocks until the writer has notified since the last call. */
static void bw_wait(void)
{
    uint64_t v;
    while (read(bw_efd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
}

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static double now_s(void)
{
    return (double)moor_clock_ns() / 1e9;
}

/* Bytes the WAL writes for one entry of n data bytes (see wal/format.c:
 * a 16-byte header, 17 bytes of entry header, padding to 16). */
static size_t wal_record_bytes(size_t n)
{
    return 16 + ((17 + n + 15) / 16) * 16;
}

/* The raw loop: one pwrite of the batch's bytes at the next offset of a
 * prepared file (as the WAL writes into its segments), then fdatasync. */
struct raw_ctx
{
    const char *dir;
    bool zeros;
    int fd;
    int next_fd;          /* the next file (raw_idle), or -1 */
    uint64_t next_zeroed; /* its bytes overwritten with zeros so far */
    bool next_done;       /* ... all of them, and fsync()ed */
    int files;
    uint64_t off;
    uint8_t *buf;
    size_t bytes;
};

#define RAW_FILE_BYTES WAL_SEGMENT_BYTES_DEFAULT
/* Zeros written per idle turn: the WAL's spare fill (wal.c). */
#define RAW_ZERO_CHUNK (64u * 1024)
#define RAW_ZERO_CHUNKS_PER_TURN 4u

static int raw_fail(const char *what)
{
    fprintf(stderr, "moor-bench wal: raw %s: %s\n", what, strerror(errno));
    return MOOR_EIO;
}

/* Creates and fallocate()s the next raw file. */
static int raw_create(struct raw_ctx *c)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/raw-%d", c->dir, c->files++);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fallocate(fd, 0, 0, (off_t)RAW_FILE_BYTES) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return raw_fail(path);
    }
    c->next_fd = fd;
    c->next_zeroed = 0;
    c->next_done = !c->zeros;
    return MOOR_OK;
}

/* Overwrites up to n chunks of the next file with zeros and fsyncs it
 * once all of it is written. */
static int raw_fill(struct raw_ctx *c, unsigned n)
{
    static const uint8_t zeros[RAW_ZERO_CHUNK];
    for (unsigned i = 0; i < n && c->next_zeroed < RAW_FILE_BYTES; i++) {
        if (pwrite(c->next_fd, zeros, sizeof(zeros), (off_t)c->next_zeroed) !=
            (ssize_t)sizeof(zeros)) {
            return raw_fail("zero-fill");
        }
        c->next_zeroed += sizeof(zeros);
    }
    if (c->next_zeroed == RAW_FILE_BYTES) {
        if (fsync(c->next_fd) != 0) {
            return raw_fail("fsync");
        }
        c->next_done = true;
    }
    return MOOR_OK;
}

/* Between timed steps, the WAL's preparation of its next segment,
 * mirrored: once the current file is half full, the next one is created
 * and fallocate()d, then zero-filled RAW_ZERO_CHUNKS_PER_TURN chunks per
 * turn and fsync()ed. (The very first file is prepared whole, as the WAL
 * prepares a new log's first segment at open.) */
static int raw_idle(struct raw_ctx *c)
{
    if (c->next_fd < 0) {
        return c->fd >= 0 && c->off < RAW_FILE_BYTES / 2 ? MOOR_OK
                                                         : raw_create(c);
    }
    return c->next_done ? MOOR_OK : raw_fill(c, RAW_ZERO_CHUNKS_PER_TURN);
}

/* The first file, prepared whole. */
static int raw_prepare(struct raw_ctx *c)
{
    int rv = raw_create(c);
    while (rv == MOOR_OK && !c->next_done) {
        rv = raw_fill(c, 1024);
    }
    return rv;
}

static int raw_step(struct raw_ctx *c)
{
    if (c->fd < 0 || c->off + c->bytes > RAW_FILE_BYTES) {
        /* As the WAL's rollover: an unfinished next file is used as it
         * is; no next file at all is made without zeros. */
        if (c->next_fd < 0 && raw_create(c) != MOOR_OK) {
            return MOOR_EIO;
        }
        if (c->fd >= 0) {
            close(c->fd);
        }
        c->fd = c->next_fd;
        c->next_fd = -1;
        c->off = 0;
    }
    if (pwrite(c->fd, c->buf, c->bytes, (off_t)c->off) != (ssize_t)c->bytes ||
        fdatasync(c->fd) != 0) {
        fprintf(stderr, "moor-bench wal: raw write: %s\n", strerror(errno));
        return MOOR_EIO;
    }
    c->off += c->bytes;
    return MOOR_OK;
}

/* The WAL side: appends batches of `batch` entries sharing one payload. */
struct wal_ctx
{
    struct wal *w;
    struct raft_entry *es;
    struct moor_bytes *data;
    size_t batch;
    uint64_t index;
    uint64_t seq;
    struct wal_durable d;
};

static int wal_ctx_open(struct wal_ctx *c, const char *dir, size_t batch,
                        size_t entry_bytes)
{
    memset(c, 0, sizeof(*c));
    struct wal_options wo = {
        .dir = dir,
        .meta = {.cluster_id = 1, .member_id = 1},
        .notify_cb = bw_notify,
    };
    struct wal_replay r;
    char msg[MOOR_ERRMSG_SIZE];
    int rv = wal_open(&wo, &c->w, &r, msg);
    if (rv != MOOR_OK) {
        fprintf(stderr, "moor-bench wal: wal_open %s: %s\n", dir, msg);
        return rv;
    }
    wal_replay_close(&r);
    c->es = moor_calloc(batch, sizeof(*c->es));
    c->data = moor_bytes_new(entry_bytes);
    if (c->es == NULL || c->data == NULL) {
        return MOOR_ENOMEM;
    }
    memset(c->data->data, 0xab, entry_bytes);
    c->batch = batch;
    c->index = 1;
    return MOOR_OK;
}

/* Appends one batch, then waits until fewer than `inflight` batches are
 * not yet durable (inflight 1: this one is durable). */
static int wal_step(struct wal_ctx *c, uint64_t inflight)
{
    for (size_t i = 0; i < c->batch; i++) {
        c->es[i] = (struct raft_entry){.term = 1, .index = c->index++};
        c->es[i].data = c->data; /* borrowed: wal_append copies */
    }
    struct wal_batch b = {.entries = c->es, .entries_len = c->batch};
    int rv = wal_append(c->w, &b, &c->seq);
    if (rv != MOOR_OK) {
        return rv;
    }
    while (wal_collect(c->w, &c->d) == MOOR_OK &&
           c->seq - c->d.seq >= inflight) {
        bw_wait();
    }
    if (c->d.err != MOOR_OK) {
        fprintf(stderr, "moor-bench wal: %s\n", wal_errmsg(c->w));
    }
    return c->d.err;
}

static void wal_ctx_close(struct wal_ctx *c)
{
    if (c->w != NULL) {
        wal_close(c->w);
    }
    moor_free(c->es);
    moor_bytes_unref(c->data);
}

/* Serial: raw and wal steps alternate one batch at a time, each timed on
 * its own, so whatever else happens on the disk hits both alike. */
static int run_serial(const struct wal_bench_opts *o, const char *root,
                      size_t batch, struct wal_bench_result *raw,
                      struct wal_bench_result *wal)
{
    char d_raw[1100];
    char d_wal[1100];
    snprintf(d_raw, sizeof(d_raw), "%s/raw-%zu", root, batch);
    snprintf(d_wal, sizeof(d_wal), "%s/wal-%zu", root, batch);
    if (mkdir(d_raw, 0700) != 0 || mkdir(d_wal, 0700) != 0) {
        return MOOR_EIO;
    }
    struct raw_ctx rc = {
        .dir = d_raw, .zeros = o->raw_zeros, .fd = -1, .next_fd = -1};
    rc.bytes = wal_record_bytes(o->entry_bytes) * batch;
    rc.buf = moor_malloc(rc.bytes);
    struct wal_ctx wc;
    memset(&wc, 0, sizeof(wc));
    int rv = rc.buf == NULL ? MOOR_ENOMEM : MOOR_OK;
    if (rv == MOOR_OK) {
        memset(rc.buf, 0xab, rc.bytes);
        rv = raw_prepare(&rc);
    }
    if (rv == MOOR_OK) {
        rv = wal_ctx_open(&wc, d_wal, batch, o->entry_bytes);
    }
    double t_raw = 0;
    double t_wal = 0;
    uint64_t n = 0;
    struct bench_hist *h_raw = moor_malloc(sizeof(*h_raw));
    struct bench_hist *h_wal = moor_malloc(sizeof(*h_wal));
    if (h_raw == NULL || h_wal == NULL) {
        rv = MOOR_ENOMEM;
    } else {
        bench_hist_init(h_raw);
        bench_hist_init(h_wal);
    }
    while (rv == MOOR_OK && t_raw + t_wal < 2 * o->seconds) {
        double t0 = now_s();
        rv = raw_step(&rc);
        double t1 = now_s();
        if (rv == MOOR_OK) {
            rv = wal_step(&wc, 1);
        }
        double t2 = now_s();
        t_raw += t1 - t0;
        t_wal += t2 - t1;
        bench_hist_record(h_raw, (uint64_t)((t1 - t0) * 1e9));
        bench_hist_record(h_wal, (uint64_t)((t2 - t1) * 1e9));
        n++;
        if (rv == MOOR_OK) {
            rv = raw_idle(&rc);
        }
    }
    if (h_raw != NULL && h_wal != NULL) {
        raw->p50_ms = (double)bench_hist_percentile(h_raw, 50) / 1e6;
        raw->p99_ms = (double)bench_hist_percentile(h_raw, 99) / 1e6;
        wal->p50_ms = (double)bench_hist_percentile(h_wal, 50) / 1e6;
        wal->p99_ms = (double)bench_hist_percentile(h_wal, 99) / 1e6;
    }
    moor_free(h_raw);
    moor_free(h_wal);
    wal_ctx_close(&wc);
    if (rc.fd >= 0) {
        close(rc.fd);
    }
    if (rc.next_fd >= 0) {
        close(rc.next_fd);
    }
    moor_free(rc.buf);
    nftw(d_raw, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    nftw(d_wal, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    raw->syncs_s = (double)n / t_raw;
    wal->syncs_s = (double)n / t_wal;
    raw->appends_s = raw->syncs_s * (double)batch;
    wal->appends_s = wal->syncs_s * (double)batch;
    raw->mb_s = raw->appends_s * (double)o->entry_bytes / 1e6;
    wal->mb_s = wal->appends_s * (double)o->entry_bytes / 1e6;
    return rv;
}

/* Pipelined: append without waiting, up to --inflight batches queued;
 * counts what became durable. */
static int run_pipe(const struct wal_bench_opts *o, const char *root,
                    size_t batch, struct wal_bench_result *res)
{
    char dir[1100];
    snprintf(dir, sizeof(dir), "%s/pipe-%zu", root, batch);
    if (mkdir(dir, 0700) != 0) {
        return MOOR_EIO;
    }
    struct wal_ctx wc;
    memset(res, 0, sizeof(*res));
    int rv = wal_ctx_open(&wc, dir, batch, o->entry_bytes);
    uint64_t notifies0 = atomic_load(&bw_notifies);
    double t0 = now_s();
    while (rv == MOOR_OK && now_s() - t0 < o->seconds) {
        rv = wal_step(&wc, o->inflight);
    }
    if (rv == MOOR_OK) {
        rv = wal_step(&wc, 1); /* drain: everything durable */
    }
    double el = now_s() - t0;
    uint64_t syncs = atomic_load(&bw_notifies) - notifies0;
    uint64_t durable = wc.d.seq;
    wal_ctx_close(&wc);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    res->appends_s = (double)(durable * batch) / el;
    res->mb_s = res->appends_s * (double)o->entry_bytes / 1e6;
    res->syncs_s = (double)syncs / el;
    return rv;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: moor-bench wal [--dir DIR] [--entry-bytes N] "
            "[--batches 1,16,256]\n"
            "                      [--seconds S] [--inflight N] "
            "[--raw-prep zeros|fallocate] [--json]\n"
            "  --dir       a directory on the disk under test (default .);\n"
            "              a temporary moor-bench-wal-* inside is removed\n"
            "  --inflight  batches queued at once in the pipelined run "
            "(default 64)\n"
            "  --raw-prep  how raw's files are made: zeros (default; "
            "fallocate, zeros\n"
            "              written, fsync: as the WAL makes its segments) "
            "or fallocate\n"
            "Rows per batch size: raw (pwrite + fdatasync), wal (append, "
            "wait until durable),\n"
            "pipe (appends queued); vs_raw compares appends/s with raw, "
            "vs_raw_p50 raw's\n"
            "median batch latency with wal's. A tmpfs --dir (/dev/shm) "
            "leaves the disk out:\n"
            "what remains is the WAL's own cost (copy, crc, thread "
            "hand-off).\n");
}

static int parse_opts(int argc, char **argv, struct wal_bench_opts *o)
{
    *o = (struct wal_bench_opts){
        .dir = ".",
        .entry_bytes = 256,
        .sizes = {1, 16, 256},
        .sizes_len = 3,
        .seconds = 2.0,
        .inflight = 64,
        .raw_zeros = true,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL) {
            usage(stderr);
            return MOOR_EINVAL;
        }
        i++;
        if (strcmp(a, "--dir") == 0) {
            o->dir = v;
        } else if (strcmp(a, "--entry-bytes") == 0) {
            o->entry_bytes = (size_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = strtod(v, NULL);
        } else if (strcmp(a, "--raw-prep") == 0) {
            if (strcmp(v, "zeros") != 0 && strcmp(v, "fallocate") != 0) {
                usage(stderr);
                return MOOR_EINVAL;
            }
            o->raw_zeros = strcmp(v, "zeros") == 0;
        } else if (strcmp(a, "--inflight") == 0) {
            o->inflight = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--batches") == 0) {
            o->sizes_len = 0;
            char *end = NULL;
            for (const char *p = v; *p != '\0' && o->sizes_len < SIZES_MAX;
                 p = *end == ',' ? end + 1 : end) {
                o->sizes[o->sizes_len++] = (size_t)strtoul(p, &end, 10);
                if (end == p) {
                    return MOOR_EINVAL;
                }
            }
        } else {
            usage(stderr);
            return MOOR_EINVAL;
        }
    }
    for (size_t i = 0; i < o->sizes_len; i++) {
        if (o->sizes[i] == 0 || o->sizes[i] > 65536) {
            return MOOR_EINVAL;
        }
    }
    if (o->entry_bytes == 0 || o->entry_bytes > 1u << 20 || !(o->seconds > 0) ||
        o->inflight == 0 || o->sizes_len == 0) {
        return MOOR_EINVAL;
    }
    return MOOR_OK;
}

int bench_wal_main(int argc, char **argv)
{
    struct wal_bench_opts o;
    if (parse_opts(argc, argv, &o) != MOOR_OK) {
        fprintf(stderr, "moor-bench wal: bad flags (see --help)\n");
        return 2;
    }
    moor_log_set_level(MOOR_LOG_WARN);
    bw_efd = eventfd(0, EFD_CLOEXEC);
    if (bw_efd < 0) {
        fprintf(stderr, "moor-bench wal: eventfd: %s\n", strerror(errno));
        return 1;
    }
    char root[1024];
    snprintf(root, sizeof(root), "%s/moor-bench-wal-XXXXXX", o.dir);
    if (mkdtemp(root) == NULL) {
        fprintf(stderr, "moor-bench wal: mkdtemp in %s: %s\n", o.dir,
                strerror(errno));
        close(bw_efd);
        return 1;
    }
    struct moor_buf js;
    moor_buf_init(&js);
    if (o.json) {
        moor_buf_printf(&js,
                        "{\"bench\":\"wal\",\"entry_bytes\":%zu,"
                        "\"seconds\":%.3f,\"inflight\":%llu,"
                        "\"raw_prep\":\"%s\",\"runs\":[",
                        o.entry_bytes, o.seconds,
                        (unsigned long long)o.inflight,
                        o.raw_zeros ? "zeros" : "fallocate");
    } else {
        printf("wal: %zu-byte entries, batches of", o.entry_bytes);
        for (size_t i = 0; i < o.sizes_len; i++) {
            printf(" %zu", o.sizes[i]);
        }
        printf(
            ", %.1f s per run, pipelined %llu in flight, raw files %s, "
            "dir %s\n",
            o.seconds, (unsigned long long)o.inflight,
            o.raw_zeros ? "zero-filled" : "fallocated", o.dir);
    }
    int status = 0;
    for (size_t i = 0; i < o.sizes_len && status == 0; i++) {
        size_t b = o.sizes[i];
        struct wal_bench_result raw;
        struct wal_bench_result wal;
        struct wal_bench_result pipe;
        if (run_serial(&o, root, b, &raw, &wal) != MOOR_OK ||
            run_pipe(&o, root, b, &pipe) != MOOR_OK) {
            status = 1;
            break;
        }
        const struct wal_bench_result *rs[3] = {&raw, &wal, &pipe};
        const char *names[3] = {"raw", "wal", "pipe"};
        for (int k = 0; k < 3; k++) {
            double pct = 100.0 * rs[k]->appends_s / raw.appends_s;
            double pct50 = k == 1 && wal.p50_ms > 0
                               ? 100.0 * raw.p50_ms / wal.p50_ms
                               : 0.0;
            if (o.json) {
                moor_buf_printf(&js,
                                "%s{\"mode\":\"%s\",\"batch\":%zu,"
                                "\"appends_s\":%.1f,\"mb_s\":%.3f,"
                                "\"syncs_s\":%.1f,\"p50_ms\":%.3f,"
                                "\"p99_ms\":%.3f,\"vs_raw_pct\":%.1f,"
                                "\"vs_raw_p50_pct\":%.1f}",
                                i == 0 && k == 0 ? "" : ",", names[k], b,
                                rs[k]->appends_s, rs[k]->mb_s, rs[k]->syncs_s,
                                rs[k]->p50_ms, rs[k]->p99_ms, pct, pct50);
                continue;
            }
            char name[64];
            snprintf(name, sizeof(name), "%s.b%zu.appends", names[k], b);
            printf("%-22s %12.1f  /s\n", name, rs[k]->appends_s);
            snprintf(name, sizeof(name), "%s.b%zu.throughput", names[k], b);
            printf("%-22s %12.3f  MB/s\n", name, rs[k]->mb_s);
            snprintf(name, sizeof(name), "%s.b%zu.syncs", names[k], b);
            printf("%-22s %12.1f  /s\n", name, rs[k]->syncs_s);
            if (k < 2) {
                snprintf(name, sizeof(name), "%s.b%zu.p50", names[k], b);
                printf("%-22s %12.3f  ms\n", name, rs[k]->p50_ms);
                snprintf(name, sizeof(name), "%s.b%zu.p99", names[k], b);
                printf("%-22s %12.3f  ms\n", name, rs[k]->p99_ms);
            }
            if (k > 0) {
                snprintf(name, sizeof(name), "%s.b%zu.vs_raw", names[k], b);
                printf("%-22s %12.1f  %%\n", name, pct);
            }
            if (k == 1) {
                snprintf(name, sizeof(name), "%s.b%zu.vs_raw_p50", names[k], b);
                printf("%-22s %12.1f  %%\n", name, pct50);
            }
        }
    }
    if (o.json && status == 0) {
        moor_buf_printf(&js, "]}");
        printf("%s\n", (const char *)js.ptr);
    }
    moor_buf_close(&js);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    close(bw_efd);
    bw_efd = -1;
    return status;
}
