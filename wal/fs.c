/*
 * fs.c: the real file operations behind struct wal_fs, and the loops built
 * on them (whole writes and reads, directory sync). Every function returns
 * -errno on failure; errno itself is never left for a caller to read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wal_int.h"

static const struct wal_fs posix_fs;

static int posix_open(void *arg, const char *path, int flags, mode_t mode)
{
    (void)arg;
    int fd;
    do {
        fd = open(path, flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

static int posix_close(void *arg, int fd)
{
    (void)arg;
    /* close() is not retried on EINTR: the fd is gone either way. */
    return close(fd) < 0 ? -errno : 0;
}

static ssize_t posix_pwrite(void *arg, int fd, const void *buf, size_t len,
                            uint64_t off)
{
    (void)arg;
    ssize_t n;
    do {
        n = pwrite(fd, buf, len, (off_t)off);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static ssize_t posix_pread(void *arg, int fd, void *buf, size_t len,
                           uint64_t off)
{
    (void)arg;
    ssize_t n;
    do {
        n = pread(fd, buf, len, (off_t)off);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static int posix_fdatasync(void *arg, int fd)
{
    (void)arg;
    /* Not retried on EINTR either: a failed sync may have dropped pages. */
    return fdatasync(fd) < 0 ? -errno : 0;
}

/* pwritev2 with RWF_DSYNC; once the kernel refuses the flag (EOPNOTSUPP,
 * EINVAL: an unknown flag; ENOSYS: no pwritev2), nothing was written, and
 * every later call is a pwrite and an fdatasync instead. */
static atomic_bool dsync_refused;

static ssize_t posix_pwrite_dsync(void *arg, int fd, const void *buf,
                                  size_t len, uint64_t off)
{
    if (!atomic_load_explicit(&dsync_refused, memory_order_relaxed)) {
        struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
        ssize_t n;
        do {
            n = pwritev2(fd, &iov, 1, (off_t)off, RWF_DSYNC);
        } while (n < 0 && errno == EINTR);
        if (n >= 0) {
            return n;
        }
        if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS) {
            return -errno;
        }
        atomic_store_explicit(&dsync_refused, true, memory_order_relaxed);
    }
    ssize_t n = posix_pwrite(arg, fd, buf, len, off);
    if (n <= 0) {
        return n;
    }
    int rv = posix_fdatasync(arg, fd);
    return rv < 0 ? rv : n;
}

static int posix_fsync(void *arg, int fd)
{
    (void)arg;
    return fsync(fd) < 0 ? -errno : 0;
}

static int posix_fsize(void *arg, int fd, uint64_t *size)
{
    (void)arg;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static int posix_preallocate(void *arg, int fd, uint64_t len)
{
    (void)arg;
    int rv;
    do {
        rv = fallocate(fd, 0, 0, (off_t)len);
    } while (rv < 0 && errno == EINTR);
    if (rv == 0) {
        return 0;
    }
    if (errno != EOPNOTSUPP && errno != ENOSYS) {
        return -errno;
    }
    /* The file system cannot preallocate: write zeros past the end. */
    return wal__fill_zeros(&posix_fs, fd, len);
}

static int posix_ftruncate(void *arg, int fd, uint64_t len)
{
    (void)arg;
    int rv;
    do {
        rv = ftruncate(fd, (off_t)len);
    } while (rv < 0 && errno == EINTR);
    return rv < 0 ? -errno : 0;
}

static int posix_rename(void *arg, const char *from, const char *to)
{
    (void)arg;
    return rename(from, to) < 0 ? -errno : 0;
}

static int posix_unlink(void *arg, const char *path)
{
    (void)arg;
    return unlink(path) < 0 ? -errno : 0;
}

static const struct wal_fs posix_fs = {
    .arg = NULL,
    .open = posix_open,
    .close = posix_close,
    .pwrite = posix_pwrite,
    .pread = posix_pread,
    .fdatasync = posix_fdatasync,
    .pwrite_dsync = posix_pwrite_dsync,
    .fsync = posix_fsync,
    .preallocate = posix_preallocate,
    .ftruncate = posix_ftruncate,
    .fsize = posix_fsize,
    .rename = posix_rename,
    .unlink = posix_unlink,
};

const struct wal_fs *wal_fs_posix(void)
{
    return &posix_fs;
}

int wal__fsync_dir(const struct wal_fs *fs, const char *path)
{
    int fd = fs->open(fs->arg, path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) {
        return fd;
    }
    int rv = fs->fsync(fs->arg, fd);
    fs->close(fs->arg, fd);
    return rv;
}

int wal__pwrite_all(const struct wal_fs *fs, int fd, const void *buf,
                    size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = fs->pwrite(fs->arg, fd, p, len, off);
        if (n < 0) {
            return (int)n;
        }
        if (n == 0) {
            return -EIO;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int wal__pread_all(const struct wal_fs *fs, int fd, void *buf, size_t len,
                   uint64_t off, size_t *got)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = fs->pread(fs->arg, fd, p + done, len - done, off + done);
        if (n < 0) {
            return (int)n;
        }
        if (n == 0) {
            break;
        }
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

int wal__fill_zeros(const struct wal_fs *fs, int fd, uint64_t len)
{
    uint64_t size;
    int rv = fs->fsize(fs->arg, fd, &size);
    if (rv < 0) {
        return rv;
    }
    static const uint8_t zeros[65536];
    while (size < len) {
        size_t n = (size_t)MOOR_MIN((uint64_t)sizeof(zeros), len - size);
        rv = wal__pwrite_all(fs, fd, zeros, n, size);
        if (rv < 0) {
            return rv;
        }
        size += n;
    }
    return 0;
}
