/*
 * bench_wal.c: `moor-bench wal`, the WAL's append throughput beside a raw
 * write + fdatasync loop on the same disk in the same run.
 *
 * For each batch size (default 1, 16 and 256 entries of 256 bytes):
 *   raw  one pwrite of exactly the bytes the WAL writes for the batch, at
 *        the next offset of a fresh fallocate()d file, then fdatasync();
 *   wal  wal_append() of the batch, then wait for the writer thread's
 *        notify that it is durable (one batch per sync, like raw);
 *   pipe wal_append() without waiting, up to --inflight batches queued:
 *        group commit folds what queues during a sync into the next one.
 * Each runs for --seconds. appends/s counts entries; MB/s counts entry
 * payload bytes. wal and pipe are also given as a percentage of raw.
 *
 * Use a directory on the disk under test (--dir; not a tmpfs).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    bool json;
};

struct wal_bench_result
{
    double appends_s;
    double mb_s;
    double syncs_s;
};

static pthread_mutex_t bw_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bw_cond = PTHREAD_COND_INITIALIZER;
static uint64_t bw_notifies;

static void bw_notify(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&bw_mu);
    bw_notifies++;
    pthread_cond_broadcast(&bw_cond);
    pthread_mutex_unlock(&bw_mu);
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

static int run_raw(const struct wal_bench_opts *o, const char *dir,
                   size_t batch, struct wal_bench_result *res)
{
    size_t bytes = wal_record_bytes(o->entry_bytes) * batch;
    uint8_t *buf = moor_malloc(bytes);
    if (buf == NULL) {
        return MOOR_ENOMEM;
    }
    memset(buf, 0xab, bytes);
    const uint64_t file_bytes = WAL_SEGMENT_BYTES_DEFAULT;
    char path[1200];
    int fd = -1;
    int files = 0;
    uint64_t off = file_bytes;
    uint64_t batches = 0;
    int rv = MOOR_OK;
    double t0 = now_s();
    double t1 = t0;
    while (t1 - t0 < o->seconds) {
        if (off + bytes > file_bytes) {
            /* A fresh preallocated file, as the WAL writes into. */
            if (fd >= 0) {
                close(fd);
            }
            snprintf(path, sizeof(path), "%s/raw-%d", dir, files++);
            fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0 || fallocate(fd, 0, 0, (off_t)file_bytes) != 0) {
                fprintf(stderr, "moor-bench wal: %s: %s\n", path,
                        strerror(errno));
                rv = MOOR_EIO;
                break;
            }
            off = 0;
        }
        if (pwrite(fd, buf, bytes, (off_t)off) != (ssize_t)bytes ||
            fdatasync(fd) != 0) {
            fprintf(stderr, "moor-bench wal: write %s: %s\n", path,
                    strerror(errno));
            rv = MOOR_EIO;
            break;
        }
        off += bytes;
        batches++;
        t1 = now_s();
    }
    if (fd >= 0) {
        close(fd);
    }
    moor_free(buf);
    double el = t1 - t0;
    res->appends_s = (double)(batches * batch) / el;
    res->mb_s = res->appends_s * (double)o->entry_bytes / 1e6;
    res->syncs_s = (double)batches / el;
    return rv;
}

static int run_wal(const struct wal_bench_opts *o, const char *dir,
                   size_t batch, uint64_t inflight,
                   struct wal_bench_result *res)
{
    struct wal_options wo = {
        .dir = dir,
        .meta = {.cluster_id = 1, .member_id = 1},
        .notify_cb = bw_notify,
    };
    struct wal *w;
    struct wal_replay r;
    char msg[MOOR_ERRMSG_SIZE];
    int rv = wal_open(&wo, &w, &r, msg);
    if (rv != MOOR_OK) {
        fprintf(stderr, "moor-bench wal: wal_open %s: %s\n", dir, msg);
        return rv;
    }
    wal_replay_close(&r);
    struct raft_entry *es = moor_calloc(batch, sizeof(*es));
    struct moor_bytes *data = moor_bytes_new(o->entry_bytes);
    if (es == NULL || data == NULL) {
        moor_free(es);
        moor_bytes_unref(data);
        wal_close(w);
        return MOOR_ENOMEM;
    }
    memset(data->data, 0xab, o->entry_bytes);
    uint64_t index = 1;
    uint64_t seq = 0;
    uint64_t notifies0 = bw_notifies;
    struct wal_durable d = {0};
    double t0 = now_s();
    double t1 = t0;
    while (t1 - t0 < o->seconds) {
        for (size_t i = 0; i < batch; i++) {
            es[i] = (struct raft_entry){.term = 1, .index = index++};
            es[i].data = data; /* borrowed: wal_append copies */
        }
        struct wal_batch b = {.entries = es, .entries_len = batch};
        rv = wal_append(w, &b, &seq);
        if (rv != MOOR_OK) {
            break;
        }
        /* Wait until at most `inflight` batches are not yet durable. */
        pthread_mutex_lock(&bw_mu);
        while (wal_collect(w, &d) == MOOR_OK && seq - d.seq >= inflight) {
            pthread_cond_wait(&bw_cond, &bw_mu);
        }
        pthread_mutex_unlock(&bw_mu);
        if (d.err != MOOR_OK) {
            rv = d.err;
            break;
        }
        t1 = now_s();
    }
    /* Count only what is durable: drain. */
    pthread_mutex_lock(&bw_mu);
    while (rv == MOOR_OK && wal_collect(w, &d) == MOOR_OK && d.seq < seq) {
        pthread_cond_wait(&bw_cond, &bw_mu);
    }
    uint64_t syncs = bw_notifies - notifies0;
    pthread_mutex_unlock(&bw_mu);
    t1 = now_s();
    if (rv != MOOR_OK) {
        fprintf(stderr, "moor-bench wal: append: %s %s\n", moor_strerror(rv),
                wal_errmsg(w));
    }
    wal_close(w);
    moor_free(es);
    moor_bytes_unref(data);
    double el = t1 - t0;
    res->appends_s = (double)(d.seq * batch) / el;
    res->mb_s = res->appends_s * (double)o->entry_bytes / 1e6;
    res->syncs_s = (double)syncs / el;
    return rv;
}

/* Rounds per batch size; each mode runs seconds / ROUNDS per round. */
#define ROUNDS 5

static void add_result(struct wal_bench_result *sum,
                       const struct wal_bench_result *r, int rounds)
{
    sum->appends_s += r->appends_s / rounds;
    sum->mb_s += r->mb_s / rounds;
    sum->syncs_s += r->syncs_s / rounds;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: moor-bench wal [--dir DIR] [--entry-bytes N] "
            "[--batches 1,16,256]\n"
            "                      [--seconds S] [--inflight N] [--json]\n"
            "  --dir       a directory on the disk under test (default .);\n"
            "              a temporary moor-bench-wal-* inside is removed\n"
            "  --inflight  batches queued at once in the pipelined run "
            "(default 64)\n");
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
    char root[1024];
    snprintf(root, sizeof(root), "%s/moor-bench-wal-XXXXXX", o.dir);
    if (mkdtemp(root) == NULL) {
        fprintf(stderr, "moor-bench wal: mkdtemp in %s: %s\n", o.dir,
                strerror(errno));
        return 1;
    }
    struct moor_buf js;
    moor_buf_init(&js);
    if (o.json) {
        moor_buf_printf(&js,
                        "{\"bench\":\"wal\",\"entry_bytes\":%zu,"
                        "\"seconds\":%.3f,\"inflight\":%llu,\"runs\":[",
                        o.entry_bytes, o.seconds,
                        (unsigned long long)o.inflight);
    } else {
        printf("wal: %zu-byte entries, batches of", o.entry_bytes);
        for (size_t i = 0; i < o.sizes_len; i++) {
            printf(" %zu", o.sizes[i]);
        }
        printf(", %.1f s per run, pipelined %llu in flight, dir %s\n",
               o.seconds, (unsigned long long)o.inflight, o.dir);
    }
    int status = 0;
    for (size_t i = 0; i < o.sizes_len && status == 0; i++) {
        size_t b = o.sizes[i];
        struct wal_bench_result raw = {0};
        struct wal_bench_result wal = {0};
        struct wal_bench_result pipe = {0};
        /* Alternate the modes in short rounds so drift in the disk's speed
         * (other tenants, writeback) hits all of them alike. */
        struct wal_bench_opts ro = o;
        ro.seconds = o.seconds / ROUNDS;
        for (int round = 0; round < ROUNDS && status == 0; round++) {
            char d_raw[1100];
            char d_wal[1100];
            char d_pipe[1100];
            snprintf(d_raw, sizeof(d_raw), "%s/raw-%zu-%d", root, b, round);
            snprintf(d_wal, sizeof(d_wal), "%s/wal-%zu-%d", root, b, round);
            snprintf(d_pipe, sizeof(d_pipe), "%s/pipe-%zu-%d", root, b, round);
            struct wal_bench_result r1;
            struct wal_bench_result r2;
            struct wal_bench_result r3;
            if (mkdir(d_raw, 0700) != 0 || mkdir(d_wal, 0700) != 0 ||
                mkdir(d_pipe, 0700) != 0 || run_raw(&ro, d_raw, b, &r1) != 0 ||
                run_wal(&ro, d_wal, b, 1, &r2) != 0 ||
                run_wal(&ro, d_pipe, b, o.inflight, &r3) != 0) {
                status = 1;
                break;
            }
            add_result(&raw, &r1, ROUNDS);
            add_result(&wal, &r2, ROUNDS);
            add_result(&pipe, &r3, ROUNDS);
            /* Free the disk between rounds. */
            nftw(d_raw, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
            nftw(d_wal, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
            nftw(d_pipe, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        }
        if (status != 0) {
            break;
        }
        const struct wal_bench_result *rs[3] = {&raw, &wal, &pipe};
        const char *names[3] = {"raw", "wal", "pipe"};
        for (int k = 0; k < 3; k++) {
            double pct = 100.0 * rs[k]->appends_s / raw.appends_s;
            if (o.json) {
                moor_buf_printf(&js,
                                "%s{\"mode\":\"%s\",\"batch\":%zu,"
                                "\"appends_s\":%.1f,\"mb_s\":%.3f,"
                                "\"syncs_s\":%.1f,\"vs_raw_pct\":%.1f}",
                                i == 0 && k == 0 ? "" : ",", names[k], b,
                                rs[k]->appends_s, rs[k]->mb_s, rs[k]->syncs_s,
                                pct);
                continue;
            }
            char name[64];
            snprintf(name, sizeof(name), "%s.b%zu.appends", names[k], b);
            printf("%-22s %12.1f  /s\n", name, rs[k]->appends_s);
            snprintf(name, sizeof(name), "%s.b%zu.throughput", names[k], b);
            printf("%-22s %12.3f  MB/s\n", name, rs[k]->mb_s);
            snprintf(name, sizeof(name), "%s.b%zu.syncs", names[k], b);
            printf("%-22s %12.1f  /s\n", name, rs[k]->syncs_s);
            if (k > 0) {
                snprintf(name, sizeof(name), "%s.b%zu.vs_raw", names[k], b);
                printf("%-22s %12.1f  %%\n", name, pct);
            }
        }
    }
    if (o.json && status == 0) {
        moor_buf_printf(&js, "]}");
        printf("%s\n", (const char *)js.ptr);
    }
    moor_buf_close(&js);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return status;
}
