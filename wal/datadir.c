/*
 * datadir.c: the data directory's folders (mode 0700) and its lock.
 *
 * The lock is flock(LOCK_EX | LOCK_NB) on <data-dir>/member/lock. flock
 * locks belong to the open file description, so a second open in the same
 * process conflicts too, and the kernel drops the lock when the process
 * dies (kill -9 included): there is no stale lock to clean up.
 *
 * The meta file, <data-dir>/member/meta, 32 bytes:
 *   OFFSET SIZE MEANING
 *   0      8    magic "moormeta"
 *   8      4    data-dir format version, 1
 *   12     4    crc32c of bytes 0..11 and 16..31
 *   16     8    cluster id
 *   24     8    member id
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_int.h"

/* Creates dir (0700) unless it exists; a creation is synced into the
 * parent directory. */
static int mkdir_synced(const char *dir, char *errmsg)
{
    if (mkdir(dir, 0700) == 0) {
        char parent[4096];
        snprintf(parent, sizeof(parent), "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash == parent) {
            slash[1] = '\0';
        } else if (slash != NULL) {
            *slash = '\0';
        } else {
            snprintf(parent, sizeof(parent), ".");
        }
        int rv = wal__fsync_dir(wal_fs_posix(), parent);
        if (rv < 0) {
            moor_errmsg_set(errmsg, "fsync of directory %s: %s", parent,
                            strerror(-rv));
            return moor_err_from_errno(-rv);
        }
        return MOOR_OK;
    }
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        if ((st.st_mode & 077) != 0) {
            MOOR_LOG_WARN("wal", "data directory is accessible by others",
                          "dir=%s mode=%o want=0700", dir,
                          (unsigned)(st.st_mode & 0777));
        }
        return MOOR_OK;
    }
    moor_errmsg_set(errmsg, "mkdir %s: %s", dir, strerror(e));
    return moor_err_from_errno(e);
}

int wal_datadir_open(struct wal_datadir *d, const char *data_dir, char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    memset(d, 0, sizeof(*d));
    d->lock_fd = -1;
    size_t n = strlen(data_dir);
    if (n == 0 || n + 16 >= sizeof(d->member_dir)) {
        moor_errmsg_set(errmsg, "data dir path empty or too long");
        return n == 0 ? MOOR_EINVAL : MOOR_ETOOBIG;
    }
    snprintf(d->member_dir, sizeof(d->member_dir), "%s/member", data_dir);
    snprintf(d->wal_dir, sizeof(d->wal_dir), "%s/member/wal", data_dir);
    snprintf(d->snap_dir, sizeof(d->snap_dir), "%s/member/snap", data_dir);
    const char *dirs[] = {data_dir, d->member_dir, d->wal_dir, d->snap_dir};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(dirs); i++) {
        int rv = mkdir_synced(dirs[i], errmsg);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    char lock[4200];
    snprintf(lock, sizeof(lock), "%s/lock", d->member_dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        moor_errmsg_set(errmsg, "open %s: %s", lock, strerror(e));
        return moor_err_from_errno(e);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            moor_errmsg_set(errmsg,
                            "data dir %s is in use: %s is locked by another "
                            "process (or another open in this one)",
                            data_dir, lock);
            return MOOR_ELOCKED;
        }
        moor_errmsg_set(errmsg, "flock %s: %s", lock, strerror(e));
        return moor_err_from_errno(e);
    }
    d->lock_fd = fd;
    return MOOR_OK;
}

void wal_datadir_close(struct wal_datadir *d)
{
    if (d->lock_fd > 0) {
        close(d->lock_fd); /* releases the flock */
    }
    d->lock_fd = -1;
}

#define META_BYTES 32u

static uint32_t meta_crc(const uint8_t *b)
{
    uint32_t crc = moor_crc32c(0, b, 12);
    return moor_crc32c(crc, b + 16, META_BYTES - 16);
}

int wal_datadir_meta_save(const struct wal_datadir *d, const struct wal_meta *m,
                          char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    uint8_t b[META_BYTES];
    memcpy(b, "moormeta", 8);
    moor_put_le32(b + 8, WAL_DATADIR_VERSION);
    moor_put_le64(b + 16, m->cluster_id);
    moor_put_le64(b + 24, m->member_id);
    moor_put_le32(b + 12, meta_crc(b));
    char path[4200];
    char tmp[4200];
    snprintf(path, sizeof(path), "%s/meta", d->member_dir);
    snprintf(tmp, sizeof(tmp), "%s/meta.tmp", d->member_dir);
    const struct wal_fs *fs = wal_fs_posix();
    const char *what = "create";
    int fd = fs->open(fs->arg, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int rv = fd < 0 ? fd : 0;
    if (rv == 0) {
        what = "write";
        rv = wal__pwrite_all(fs, fd, b, sizeof(b), 0);
    }
    if (rv == 0) {
        what = "fsync";
        rv = fs->fsync(fs->arg, fd);
    }
    if (fd >= 0) {
        fs->close(fs->arg, fd);
    }
    if (rv == 0) {
        what = "rename";
        rv = fs->rename(fs->arg, tmp, path);
    }
    if (rv == 0) {
        what = "fsync directory";
        rv = wal__fsync_dir(fs, d->member_dir);
    }
    if (rv < 0) {
        moor_errmsg_set(errmsg, "%s %s: %s", what, tmp, strerror(-rv));
        fs->unlink(fs->arg, tmp);
        return moor_err_from_errno(-rv) == MOOR_ENOSPC ? MOOR_ENOSPC : MOOR_EIO;
    }
    return MOOR_OK;
}

int wal_datadir_meta_load(const struct wal_datadir *d, struct wal_meta *m,
                          char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/meta", d->member_dir);
    const struct wal_fs *fs = wal_fs_posix();
    int fd = fs->open(fs->arg, path, O_RDONLY, 0);
    if (fd < 0) {
        moor_errmsg_set(errmsg, "open %s: %s", path, strerror(-fd));
        return fd == -ENOENT ? MOOR_ENOENT : MOOR_EIO;
    }
    uint8_t b[META_BYTES + 1];
    size_t got = 0;
    int rv = wal__pread_all(fs, fd, b, sizeof(b), 0, &got);
    fs->close(fs->arg, fd);
    if (rv < 0) {
        moor_errmsg_set(errmsg, "read %s: %s", path, strerror(-rv));
        return MOOR_EIO;
    }
    if (got != META_BYTES || memcmp(b, "moormeta", 8) != 0 ||
        moor_get_le32(b + 12) != meta_crc(b)) {
        moor_errmsg_set(errmsg, "%s: offset 0: damaged meta file (%zu bytes)",
                        path, got);
        return MOOR_ECORRUPT;
    }
    if (moor_get_le32(b + 8) != WAL_DATADIR_VERSION) {
        moor_errmsg_set(errmsg, "%s: offset 8: unknown data-dir version %u",
                        path, moor_get_le32(b + 8));
        return MOOR_ECORRUPT;
    }
    m->cluster_id = moor_get_le64(b + 16);
    m->member_id = moor_get_le64(b + 24);
    return MOOR_OK;
}
