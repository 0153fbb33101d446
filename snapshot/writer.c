/*
 * writer.c: writing a snapshot atomically. The file grows under
 * "<term>-<index>.snap.tmp"; every byte goes through the SHA-256 as it is
 * written; finish appends the trailer with the digest, fsyncs the file,
 * renames it to its final name and fsyncs the directory, so a crash leaves
 * either no snapshot or a whole one (plus, at worst, a temp file that
 * snap_prune removes).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot_int.h"

struct snap_writer
{
    struct snap_fs fs;
    int fd;
    bool finished;
    int err; /* sticky: after a failure only close is accepted */
    char tmp[SNAP_PATH_MAX];
    char path[SNAP_PATH_MAX];
    char dir[SNAP_PATH_MAX];
    LZ4F_cctx *cctx;
    EVP_MD_CTX *sha;
    uint8_t *out; /* compression output, out_cap bytes */
    size_t out_cap;
    uint64_t body_bytes;
    uint64_t raw_bytes;
    uint64_t written; /* bytes on the file so far */
    char errmsg[MOOR_ERRMSG_SIZE];
};

static const LZ4F_preferences_t lz4_prefs = {
    .frameInfo = {.blockSizeID = LZ4F_max256KB,
                  .blockMode = LZ4F_blockLinked,
                  .contentChecksumFlag = LZ4F_noContentChecksum},
    .compressionLevel = 0,
};

static ssize_t posix_write(void *arg, int fd, const void *buf, size_t len)
{
    (void)arg;
    ssize_t n;
    do {
        n = write(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static ssize_t posix_pread(void *arg, int fd, void *buf, size_t len, off_t off)
{
    (void)arg;
    ssize_t n;
    do {
        n = pread(fd, buf, len, off);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static int posix_fsync(void *arg, int fd)
{
    (void)arg;
    return fsync(fd) < 0 ? -errno : 0;
}

static int posix_rename(void *arg, const char *from, const char *to)
{
    (void)arg;
    return rename(from, to) < 0 ? -errno : 0;
}

static const struct snap_fs posix_fs = {
    .arg = NULL,
    .write = posix_write,
    .pread = posix_pread,
    .fsync = posix_fsync,
    .rename = posix_rename,
};

int snap__fsync_dir(const struct snap_fs *fs, const char *dir)
{
    if (fs == NULL) {
        fs = &posix_fs;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rv = fs->fsync(fs->arg, fd);
    close(fd);
    return rv < 0 ? rv : 0;
}

const struct snap_fs *snap_fs_posix(void)
{
    return &posix_fs;
}

/* Records a failed syscall (e is an errno) as the writer's sticky error:
 * MOOR_ENOSPC for a full disk or quota (the server raises the NOSPACE
 * alarm on it), MOOR_EIO for everything else. */
static int sw_fail(struct snap_writer *sw, int e, const char *what)
{
    moor_errmsg_set(sw->errmsg, "%s %s at offset %" PRIu64 ": %s", what,
                    sw->tmp, sw->written, strerror(e));
    sw->err = moor_err_from_errno(e) == MOOR_ENOSPC ? MOOR_ENOSPC : MOOR_EIO;
    return sw->err;
}

/* Writes len bytes at the end of the file, looping over short writes (a
 * write of zero bytes counts as EIO). sw->written counts what is on the
 * file so far. */
static int sw_put(struct snap_writer *sw, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = sw->fs.write(sw->fs.arg, sw->fd, p, len);
        if (n <= 0) {
            return sw_fail(sw, n == 0 ? EIO : (int)-n, "write");
        }
        p += n;
        len -= (size_t)n;
        sw->written += (uint64_t)n;
    }
    return MOOR_OK;
}

/* Hashes and writes len bytes at the end of the file. */
static int sw_write(struct snap_writer *sw, const void *buf, size_t len)
{
    if (EVP_DigestUpdate(sw->sha, buf, len) != 1) {
        moor_errmsg_set(sw->errmsg, "sha256 update failed");
        sw->err = MOOR_EIO;
        return sw->err;
    }
    return sw_put(sw, buf, len);
}

void snap_name(char *out, uint64_t term, uint64_t index)
{
    snprintf(out, SNAP_NAME_BYTES, "%016" PRIx64 "-%016" PRIx64 ".snap", term,
             index);
}

int snap_writer_open(struct snap_writer **out, const char *dir,
                     const struct snap_meta *meta, char *errmsg)
{
    return snap_writer_open_fs(out, dir, meta, NULL, errmsg);
}

int snap_writer_open_fs(struct snap_writer **out, const char *dir,
                        const struct snap_meta *meta, const struct snap_fs *fs,
                        char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    size_t mlen = meta->membership != NULL ? meta->membership->len : 0;
    if (mlen > SNAP_MEMBERSHIP_MAX ||
        strlen(dir) + SNAP_NAME_BYTES + 8 >= SNAP_PATH_MAX) {
        moor_errmsg_set(errmsg, "membership too big or dir path too long");
        return MOOR_EINVAL;
    }
    struct snap_writer *sw = moor_calloc(1, sizeof(*sw));
    if (sw == NULL) {
        return MOOR_ENOMEM;
    }
    sw->fd = -1;
    sw->fs = fs != NULL ? *fs : posix_fs;
    char name[SNAP_NAME_BYTES];
    snap_name(name, meta->term, meta->index);
    snprintf(sw->dir, sizeof(sw->dir), "%s", dir);
    snprintf(sw->path, sizeof(sw->path), "%s/%s", dir, name);
    snprintf(sw->tmp, sizeof(sw->tmp), "%s/%s.tmp", dir, name);
    int rv = MOOR_OK;
    if (access(sw->path, F_OK) == 0) {
        moor_errmsg_set(errmsg, "%s exists", sw->path);
        rv = MOOR_EEXIST;
        goto err;
    }
    sw->out_cap = LZ4F_compressBound(SNAP__CHUNK, &lz4_prefs);
    sw->out_cap = MOOR_MAX(sw->out_cap, (size_t)LZ4F_HEADER_SIZE_MAX);
    sw->out = moor_malloc(sw->out_cap);
    sw->sha = EVP_MD_CTX_new();
    if (sw->out == NULL || sw->sha == NULL ||
        LZ4F_isError(LZ4F_createCompressionContext(&sw->cctx, LZ4F_VERSION)) ||
        EVP_DigestInit_ex(sw->sha, EVP_sha256(), NULL) != 1) {
        rv = MOOR_ENOMEM;
        goto err;
    }
    sw->fd = open(sw->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sw->fd < 0) {
        rv = sw_fail(sw, errno, "create");
        goto err_msg;
    }
    uint8_t hdr[SNAP__HDR_FIXED];
    struct snap_meta m = *meta;
    if (m.created_unix_ns == 0) {
        m.created_unix_ns = moor_clock_realtime_ns();
    }
    snap__hdr_encode(hdr, &m, (uint32_t)mlen);
    rv = sw_write(sw, hdr, sizeof(hdr));
    if (rv == MOOR_OK && mlen > 0) {
        rv = sw_write(sw, meta->membership->data, mlen);
    }
    if (rv != MOOR_OK) {
        goto err_msg;
    }
    size_t n = LZ4F_compressBegin(sw->cctx, sw->out, sw->out_cap, &lz4_prefs);
    if (LZ4F_isError(n)) {
        moor_errmsg_set(errmsg, "lz4: %s", LZ4F_getErrorName(n));
        rv = MOOR_EIO;
        goto err;
    }
    sw->body_bytes += n;
    rv = sw_write(sw, sw->out, n);
    if (rv != MOOR_OK) {
        goto err_msg;
    }
    *out = sw;
    return MOOR_OK;
err_msg:
    memcpy(errmsg, sw->errmsg, MOOR_ERRMSG_SIZE);
err:
    snap_writer_close(sw);
    return rv;
}

int snap_writer_append(struct snap_writer *sw, const void *data, size_t len)
{
    if (sw->err != MOOR_OK || sw->finished) {
        return sw->err != MOOR_OK ? sw->err : MOOR_EINVAL;
    }
    const uint8_t *p = data;
    while (len > 0) {
        size_t piece = MOOR_MIN(len, (size_t)SNAP__CHUNK);
        size_t n =
            LZ4F_compressUpdate(sw->cctx, sw->out, sw->out_cap, p, piece, NULL);
        if (LZ4F_isError(n)) {
            moor_errmsg_set(sw->errmsg, "lz4: %s", LZ4F_getErrorName(n));
            sw->err = MOOR_EIO;
            return sw->err;
        }
        if (n > 0) {
            int rv = sw_write(sw, sw->out, n);
            if (rv != MOOR_OK) {
                return rv;
            }
        }
        sw->body_bytes += n;
        sw->raw_bytes += piece;
        p += piece;
        len -= piece;
    }
    return MOOR_OK;
}

int snap_writer_finish(struct snap_writer *sw, char *path_out)
{
    if (sw->err != MOOR_OK || sw->finished) {
        return sw->err != MOOR_OK ? sw->err : MOOR_EINVAL;
    }
    size_t n = LZ4F_compressEnd(sw->cctx, sw->out, sw->out_cap, NULL);
    if (LZ4F_isError(n)) {
        moor_errmsg_set(sw->errmsg, "lz4: %s", LZ4F_getErrorName(n));
        sw->err = MOOR_EIO;
        return sw->err;
    }
    int rv = sw_write(sw, sw->out, n);
    if (rv != MOOR_OK) {
        return rv;
    }
    sw->body_bytes += n;
    /* Zero padding so the file size is 32 more than a multiple of 512
     * (format.c), the shape etcdctl checks for its SHA-256. */
    uint8_t pad[SNAP__PAD_ALIGN];
    size_t plen =
        (size_t)((SNAP__PAD_ALIGN + 32u -
                  (sw->written + SNAP__TRAILER_BYTES) % SNAP__PAD_ALIGN) %
                 SNAP__PAD_ALIGN);
    memset(pad, 0, plen);
    rv = plen > 0 ? sw_write(sw, pad, plen) : MOOR_OK;
    if (rv != MOOR_OK) {
        return rv;
    }
    uint8_t tr[SNAP__TRAILER_BYTES];
    snap__trailer_encode(tr, sw->body_bytes, sw->raw_bytes);
    rv = sw_write(sw, tr, 24);
    if (rv != MOOR_OK) {
        return rv;
    }
    unsigned int dlen = 0;
    if (EVP_DigestFinal_ex(sw->sha, tr + 24, &dlen) != 1 || dlen != 32) {
        moor_errmsg_set(sw->errmsg, "sha256 final failed");
        sw->err = MOOR_EIO;
        return sw->err;
    }
    /* The digest itself is not hashed. */
    rv = sw_put(sw, tr + 24, 32);
    if (rv != MOOR_OK) {
        return rv;
    }
    /* Never retried: after a failed fsync the kernel may have dropped the
     * dirty pages, so the temporary file is abandoned (close removes it). */
    rv = sw->fs.fsync(sw->fs.arg, sw->fd);
    if (rv < 0) {
        return sw_fail(sw, -rv, "fsync");
    }
    if (access(sw->path, F_OK) == 0) {
        moor_errmsg_set(sw->errmsg, "%s exists", sw->path);
        sw->err = MOOR_EEXIST;
        return sw->err;
    }
    rv = sw->fs.rename(sw->fs.arg, sw->tmp, sw->path);
    if (rv < 0) {
        return sw_fail(sw, -rv, "rename");
    }
    sw->finished = true;
    int d = snap__fsync_dir(&sw->fs, sw->dir);
    if (d < 0) {
        moor_errmsg_set(sw->errmsg, "fsync of directory %s: %s", sw->dir,
                        strerror(-d));
        sw->err = MOOR_EIO;
        return sw->err;
    }
    if (path_out != NULL) {
        snprintf(path_out, SNAP_PATH_MAX, "%s", sw->path);
    }
    return MOOR_OK;
}

const char *snap_writer_errmsg(const struct snap_writer *sw)
{
    return sw->errmsg;
}

void snap_writer_close(struct snap_writer *sw)
{
    if (sw == NULL) {
        return;
    }
    if (sw->fd >= 0) {
        close(sw->fd);
        if (!sw->finished) {
            unlink(sw->tmp);
        }
    }
    LZ4F_freeCompressionContext(sw->cctx);
    EVP_MD_CTX_free(sw->sha);
    moor_free(sw->out);
    moor_free(sw);
}

int snap_save(const char *dir, const struct snap_meta *meta,
              snap_produce_cb produce_cb, void *arg, char *path_out,
              char *errmsg)
{
    struct snap_writer *sw;
    int rv = snap_writer_open(&sw, dir, meta, errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    for (;;) {
        struct moor_slice chunk = {NULL, 0};
        rv = produce_cb(arg, &chunk);
        if (rv != 0 || chunk.len == 0) {
            break;
        }
        rv = snap_writer_append(sw, chunk.ptr, chunk.len);
        if (rv != MOOR_OK) {
            break;
        }
    }
    if (rv == MOOR_OK) {
        rv = snap_writer_finish(sw, path_out);
    }
    if (rv != MOOR_OK && errmsg != NULL && snap_writer_errmsg(sw)[0] != '\0') {
        memcpy(errmsg, snap_writer_errmsg(sw), MOOR_ERRMSG_SIZE);
    }
    snap_writer_close(sw);
    return rv;
}
