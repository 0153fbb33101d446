/*
 * cmd_snapshot.c: snapshot save FILE.
 *
 * Streams Maintenance.Snapshot from one endpoint into FILE.part and
 * checks that the stream's last 32 bytes are the SHA-256 of every byte
 * before them, then fsyncs, renames to FILE and fsyncs the directory, so
 * FILE is either absent or a whole, verified snapshot. etcd sends its
 * database and then the hash as one last message; moord streams its
 * snapshot file, whose trailer ends in the same hash: the check is on the
 * byte stream, not on message boundaries, so both pass it. The file keeps
 * the hash at its end, as etcdctl's does (restore checks it).
 *
 * Progress on stderr when stderr is a terminal: bytes so far and the
 * rate, redrawn at most ten times a second; nothing otherwise.
 *
 * snapshot status FILE: see the second part of this file.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/evp.h>

#include "cli_int.h"
#include "snapshot/snapshot.h"

#define SHA_LEN 32
#define CHUNK_MAX (64u << 20) /* one message's blob; etcd sends 32 KiB */

struct snap
{
    struct mc_ctx *c;
    struct rpc_stream *s;
    uv_signal_t sigint, sigterm;
    int fd;
    EVP_MD_CTX *sha;
    /* The stream's last SHA_LEN bytes so far: held back until more come
     * (they may be the hash), hashed and written once they are not. */
    uint8_t tail[SHA_LEN];
    size_t tail_len;
    uint64_t bytes; /* hashed and written so far, tail excluded */
    uint64_t messages;
    int64_t revision;
    uint64_t t0_ns, last_draw_ns;
    bool tty;
    bool done, interrupted;
    int status;
    int io_err; /* errno of a failed write, 0 */
    char msg[MOOR_ERRMSG_SIZE];
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void draw(struct snap *s, bool final)
{
    uint64_t now = moor_clock_ns();
    if (!s->tty || (!final && now - s->last_draw_ns < 100000000)) {
        return;
    }
    s->last_draw_ns = now;
    double secs = (double)(now - s->t0_ns) / 1e9;
    struct moor_buf b;
    moor_buf_init(&b);
    mc_humanize_bytes(&b, s->bytes + s->tail_len);
    fprintf(s->c->err, "\r\033[Kreceived %.*s  %.1f MB/s%s", (int)b.len,
            (const char *)b.ptr,
            secs > 0 ? (double)(s->bytes + s->tail_len) / 1e6 / secs : 0.0,
            final ? "\n" : "");
    fflush(s->c->err);
    moor_buf_close(&b);
}

static void snap_stop(struct snap *s)
{
    if (s->s != NULL && !s->done) {
        rpc_stream_cancel(s->s);
    }
}

/* Hashes and writes len bytes of the stream, keeping its last SHA_LEN
 * bytes back. Returns 0 or an errno. */
static int hash_write(struct snap *s, const uint8_t *p, size_t len)
{
    if (len == 0) {
        return 0;
    }
    EVP_DigestUpdate(s->sha, p, len);
    s->bytes += len;
    return write_all(s->fd, p, len);
}

static int snap_take(struct snap *s, const uint8_t *p, size_t len)
{
    int err = 0;
    if (len >= SHA_LEN) {
        /* The held tail and all but the blob's last SHA_LEN bytes are not
         * the hash: out they go; the blob's end is the new tail. */
        err = hash_write(s, s->tail, s->tail_len);
        if (err == 0) {
            err = hash_write(s, p, len - SHA_LEN);
        }
        memcpy(s->tail, p + len - SHA_LEN, SHA_LEN);
        s->tail_len = SHA_LEN;
        return err;
    }
    /* A short blob: the oldest tail bytes that no longer fit go out. */
    size_t keep = SHA_LEN - len;
    if (s->tail_len > keep) {
        size_t drop = s->tail_len - keep;
        err = hash_write(s, s->tail, drop);
        memmove(s->tail, s->tail + drop, keep);
        s->tail_len = keep;
    }
    memcpy(s->tail + s->tail_len, p, len);
    s->tail_len += len;
    return err;
}

static void snap_message_cb(struct rpc_stream *st, struct moor_slice msg,
                            void *arg)
{
    struct snap *s = arg;
    (void)st;
    ProtobufCMessage *m = NULL;
    if (s->io_err != 0 ||
        moor_pb_unpack(&etcdserverpb__snapshot_response__descriptor, msg.ptr,
                       msg.len, CHUNK_MAX, &m) != MOOR_OK) {
        s->io_err = s->io_err != 0 ? s->io_err : EPROTO;
        snap_stop(s);
        return;
    }
    Etcdserverpb__SnapshotResponse *r = (void *)m;
    if (r->header != NULL && r->header->revision > s->revision) {
        s->revision = r->header->revision;
    }
    s->io_err = snap_take(s, r->blob.data, r->blob.len);
    s->messages++;
    mc_pb_free(m);
    if (s->io_err != 0) {
        snap_stop(s);
    }
    draw(s, false);
}

static void snap_done_cb(struct rpc_stream *st, int status, const char *message,
                         void *arg)
{
    struct snap *s = arg;
    (void)st;
    s->done = true;
    s->status = status;
    moor_errmsg_set(s->msg, "%s", message);
    s->s = NULL;
}

static void snap_signal_cb(uv_signal_t *h, int signum)
{
    struct snap *s = h->data;
    (void)signum;
    s->interrupted = true;
    snap_stop(s);
}

/* fsyncs the directory holding path. */
static int fsync_dir(const char *path)
{
    char *copy = moor_strdup(path);
    if (copy == NULL) {
        return ENOMEM;
    }
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    int err = 0;
    if (fd < 0 || fsync(fd) != 0) {
        err = errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    moor_free(copy);
    return err;
}

/* Checks the hash, then makes the file durable under its final name. */
static int snap_finish(struct snap *s, const char *part, const char *path)
{
    struct mc_ctx *c = s->c;
    uint8_t sum[EVP_MAX_MD_SIZE];
    unsigned sum_len = 0;
    if (s->tail_len != SHA_LEN) {
        return mc_fail(c, MC_EXIT_ERROR,
                       "snapshot stream too short for its %d-byte SHA-256 "
                       "(%llu bytes)",
                       SHA_LEN, (unsigned long long)(s->bytes + s->tail_len));
    }
    EVP_DigestFinal_ex(s->sha, sum, &sum_len);
    if (sum_len != SHA_LEN || memcmp(sum, s->tail, SHA_LEN) != 0) {
        return mc_fail(c, MC_EXIT_ERROR,
                       "snapshot checksum mismatch: the SHA-256 of the %llu "
                       "bytes received differs from the one the server sent",
                       (unsigned long long)s->bytes);
    }
    int err = write_all(s->fd, s->tail, SHA_LEN);
    if (err == 0 && fsync(s->fd) != 0) {
        err = errno;
    }
    if (err == 0 && close(s->fd) != 0) {
        err = errno;
    }
    s->fd = -1;
    if (err == 0 && rename(part, path) != 0) {
        err = errno;
    }
    if (err == 0) {
        err = fsync_dir(path);
    }
    if (err != 0) {
        return mc_fail(c, MC_EXIT_ERROR, "could not write %s (%s)", path,
                       strerror(err));
    }
    s->bytes += SHA_LEN;
    return MC_EXIT_OK;
}

/* Runs the Snapshot stream to its end (or SIGINT/SIGTERM), writing
 * blobs as they come. The outcome is in s: status, io_err, interrupted. */
static void snap_stream(struct snap *s, struct rpc_client *cl)
{
    struct mc_ctx *c = s->c;
    s->t0_ns = moor_clock_ns();
    uv_signal_init(&c->loop, &s->sigint);
    uv_signal_init(&c->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, snap_signal_cb, SIGINT);
    uv_signal_start(&s->sigterm, snap_signal_cb, SIGTERM);
    static const struct rpc_stream_ops ops = {snap_message_cb, NULL,
                                              snap_done_cb};
    struct rpc_metadata md;
    size_t md_len = mc_token_md(c->token, &md);
    int rv = rpc_stream_start(cl, "/etcdserverpb.Maintenance/Snapshot", &md,
                              md_len, 0, &ops, s, &s->s);
    if (rv == MOOR_OK) {
        /* SnapshotRequest is empty: one empty message. */
        rv = rpc_stream_send(s->s, moor_slice_make(NULL, 0));
        rpc_stream_close_send(s->s);
        while (!s->done) {
            uv_run(&c->loop, UV_RUN_ONCE);
        }
    } else {
        s->done = true;
        s->status = RPC_UNAVAILABLE;
        moor_errmsg_set(s->msg, "%s", moor_strerror(rv));
    }
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

int mc_cmd_snapshot_save(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    char e[MOOR_ERRMSG_SIZE];
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE, "snapshot save expects one argument");
    }
    if (c->g.endpoints_len != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "snapshot must be requested to one selected node, not "
                       "multiple [%s ...]",
                       c->g.endpoints[0]);
    }
    const char *path = args[0];
    struct moor_buf part;
    moor_buf_init(&part);
    if (moor_buf_printf(&part, "%s.part", path) != MOOR_OK) {
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    struct snap *s = moor_calloc(1, sizeof(*s));
    struct rpc_client *cl;
    int code = MC_EXIT_OK;
    if (s == NULL) {
        moor_buf_close(&part);
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    s->c = c;
    s->fd = -1;
    s->sha = EVP_MD_CTX_new();
    if (s->sha == NULL || EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1) {
        code = mc_fail(c, MC_EXIT_ERROR, "cannot start SHA-256");
        goto out;
    }
    if (mc_client(c, &cl, e) != MOOR_OK) {
        code = mc_fail(c, MC_EXIT_ERROR, "%s", e);
        goto out;
    }
    s->fd = open((const char *)part.ptr,
                 O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        code = mc_fail(c, MC_EXIT_ERROR, "could not open %s (%s)",
                       (const char *)part.ptr, strerror(errno));
        goto out;
    }
    s->tty = isatty(fileno(c->err)) != 0;
    snap_stream(s, cl);
    draw(s, true);
    if (s->interrupted) {
        code = mc_fail(c, MC_EXIT_ERROR, "snapshot save interrupted");
    } else if (s->io_err != 0) {
        code = mc_fail(c, MC_EXIT_ERROR, "could not write %s (%s)",
                       (const char *)part.ptr, strerror(s->io_err));
    } else if (s->status != RPC_OK) {
        mc_status_text(s->status, s->msg, e);
        code = mc_fail(c, MC_EXIT_ERROR, "%s", e);
    } else {
        code = snap_finish(s, (const char *)part.ptr, path);
    }
    if (code == MC_EXIT_OK) {
        double secs = (double)(moor_clock_ns() - s->t0_ns) / 1e9;
        struct moor_buf size;
        moor_buf_init(&size);
        mc_humanize_bytes(&size, s->bytes);
        fprintf(c->err, "snapshot: %llu bytes (%.*s) in %.3f s",
                (unsigned long long)s->bytes, (int)size.len,
                (const char *)size.ptr, secs);
        if (s->revision > 0) {
            fprintf(c->err, ", revision %lld", (long long)s->revision);
        }
        fputc('\n', c->err);
        moor_buf_close(&size);
        fprintf(c->out, "Snapshot saved at %s\n", path);
    }
out:
    if (s->fd >= 0) {
        close(s->fd);
    }
    if (code != MC_EXIT_OK && part.len > 0) {
        unlink((const char *)part.ptr);
    }
    EVP_MD_CTX_free(s->sha);
    moor_buf_close(&part);
    moor_free(s);
    return code;
}

/* ------------------------------------------------------------------------
 * snapshot status FILE
 *
 * Reads a moor snapshot file offline (snapshot/'s format: header, lz4 kv
 * stream, SHA-256 trailer), checks it completely (snap_load: sizes, the
 * SHA-256 and the lz4 frame, before anything is believed) and prints
 * etcdctl's four columns: hash, revision, total keys, total size. The hash
 * is the crc32c of the decompressed kv stream without its final 4 bytes
 * (which are that crc itself), so two snapshots of the same state show the
 * same hash whatever their compression; the size is the file's. An etcd (bbolt)
 * file is recognised and refused by name.
 * ---------------------------------------------------------------------- */

bool mc_is_bbolt(const char *path)
{
    uint8_t b[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, b, sizeof(b));
    close(fd);
    return n == (ssize_t)sizeof(b) && moor_get_le32(b + 16) == 0xED0CDAEDu;
}

/* The crc32c of the kv stream except its last 4 bytes. A kv stream ends in
 * the crc32c of everything before it, and a crc over data followed by its
 * own crc is the same constant (0x48674bc7) for every stream: the hash
 * must stop short of it to tell states apart. */
struct status_hash
{
    uint32_t crc;
    uint8_t tail[4]; /* the last bytes seen, not hashed yet */
    size_t tail_len;
};

static int crc_consume(void *arg, const uint8_t *data, size_t len)
{
    struct status_hash *h = arg;
    if (len >= sizeof(h->tail)) {
        h->crc = moor_crc32c(h->crc, h->tail, h->tail_len);
        h->crc = moor_crc32c(h->crc, data, len - sizeof(h->tail));
        memcpy(h->tail, data + len - sizeof(h->tail), sizeof(h->tail));
        h->tail_len = sizeof(h->tail);
        return MOOR_OK;
    }
    size_t keep = sizeof(h->tail) - len;
    if (h->tail_len > keep) {
        size_t drop = h->tail_len - keep;
        h->crc = moor_crc32c(h->crc, h->tail, drop);
        memmove(h->tail, h->tail + drop, keep);
        h->tail_len = keep;
    }
    memcpy(h->tail + h->tail_len, data, len);
    h->tail_len += len;
    return MOOR_OK;
}

int mc_print_snapshot_status(struct moor_buf *out, const struct mc_print *p,
                             const struct mc_snapshot_status *s)
{
    static const char *const hdr[] = {"HASH", "REVISION", "TOTAL KEYS",
                                      "TOTAL SIZE"};
    char hash[16], rev[24], keys[24];
    struct moor_buf size;
    int rv = MOOR_OK;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
    case MC_FMT_TABLE:
        moor_buf_init(&size);
        rv = mc_humanize_bytes(&size, s->total_size);
        if (rv == MOOR_OK) {
            rv = moor_buf_putc(&size, 0);
        }
        snprintf(hash, sizeof(hash), "%x", (unsigned)s->hash);
        snprintf(rev, sizeof(rev), "%lld", (long long)s->revision);
        snprintf(keys, sizeof(keys), "%llu", (unsigned long long)s->total_keys);
        if (rv == MOOR_OK && p->fmt == MC_FMT_TABLE) {
            const char *cells[] = {hash, rev, keys, (const char *)size.ptr};
            rv = mc_table(out, hdr, 4, cells, 1);
        } else if (rv == MOOR_OK) {
            rv = moor_buf_printf(out, "%s, %s, %s, %s\n", hash, rev, keys,
                                 (const char *)size.ptr);
        }
        moor_buf_close(&size);
        return rv;
    case MC_FMT_JSON:
        return moor_buf_printf(
            out,
            "{\"hash\":%u,\"revision\":%lld,\"totalKey\":%llu,"
            "\"totalSize\":%llu}\n",
            (unsigned)s->hash, (long long)s->revision,
            (unsigned long long)s->total_keys,
            (unsigned long long)s->total_size);
    case MC_FMT_FIELDS:
        return moor_buf_printf(
            out,
            "\"Hash\" : %u\n\"Revision\" : %lld\n\"Keys\" : %llu\n"
            "\"Size\" : %llu\n",
            (unsigned)s->hash, (long long)s->revision,
            (unsigned long long)s->total_keys,
            (unsigned long long)s->total_size);
    default:
        return MOOR_EINVAL;
    }
}

int mc_cmd_snapshot_status(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "snapshot status requires exactly one argument");
    }
    const char *path = args[0];
    struct stat st;
    if (stat(path, &st) != 0) {
        /* Go's wording: "stat FILE: no such file or directory". */
        char why[128];
        snprintf(why, sizeof(why), "%s", strerror(errno));
        why[0] = (char)tolower((unsigned char)why[0]);
        return mc_fail(c, MC_EXIT_ERROR, "stat %s: %s", path, why);
    }
    if (mc_is_bbolt(path)) {
        return mc_fail(c, MC_EXIT_ERROR,
                       "%s is an etcd (bbolt) snapshot, not a moor one: "
                       "read it with etcdctl snapshot status",
                       path);
    }
    struct snap_meta meta;
    memset(&meta, 0, sizeof(meta));
    struct status_hash h = {0, {0}, 0};
    char e[MOOR_ERRMSG_SIZE] = "";
    int rv = snap_load(path, &meta, crc_consume, &h, e);
    if (rv != MOOR_OK) {
        return mc_fail(c, MC_EXIT_ERROR, "invalid snapshot: %s",
                       e[0] != 0 ? e : moor_strerror(rv));
    }
    struct mc_snapshot_status s = {h.crc, (int64_t)meta.revision,
                                   meta.key_count, (uint64_t)st.st_size};
    snap_meta_close(&meta);
    struct moor_buf out;
    moor_buf_init(&out);
    int code = mc_emit(c, mc_print_snapshot_status(&out, &c->pr, &s), &out);
    moor_buf_close(&out);
    return code;
}
