/*
 * dir.c: snapshot files on disk: verify and load by path, list, choose the
 * newest valid one, prune, and stream (sender and receiver).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot_int.h"

static bool parse_hex16(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else {
            return false;
        }
        x = x << 4 | d;
    }
    *v = x;
    return true;
}

bool snap_name_parse(const char *name, uint64_t *term, uint64_t *index)
{
    if (strlen(name) != SNAP_NAME_BYTES - 1 || name[16] != '-' ||
        strcmp(name + 33, ".snap") != 0) {
        return false;
    }
    return parse_hex16(name, term) && parse_hex16(name + 17, index);
}

static int open_src(const char *path, struct snap__src *src, char *errmsg)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        moor_errmsg_set(errmsg, "open %s: %s", path, strerror(e));
        return moor_err_from_errno(e);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        moor_errmsg_set(errmsg, "stat %s: %s", path, strerror(e));
        return moor_err_from_errno(e);
    }
    *src = (struct snap__src){
        .mem = NULL, .fd = fd, .size = (uint64_t)st.st_size, .name = path};
    return MOOR_OK;
}

int snap_verify(const char *path, struct snap_meta *meta, char *errmsg)
{
    return snap_load(path, meta, NULL, NULL, errmsg);
}

static int load(const char *path, struct snap_meta *meta,
                snap_consume_cb consume_cb, void *arg, bool once, char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    struct snap__src src = {0};
    int rv = open_src(path, &src, errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    rv = snap__verify(&src, meta, consume_cb, arg, once, errmsg);
    close(src.fd);
    return rv;
}

int snap_load(const char *path, struct snap_meta *meta,
              snap_consume_cb consume_cb, void *arg, char *errmsg)
{
    return load(path, meta, consume_cb, arg, false, errmsg);
}

int snap_load_once(const char *path, struct snap_meta *meta,
                   snap_consume_cb consume_cb, void *arg, char *errmsg)
{
    return load(path, meta, consume_cb, arg, true, errmsg);
}

static int file_cmp(const void *a, const void *b)
{
    const struct snap_file *x = a;
    const struct snap_file *y = b;
    if (x->index != y->index) {
        return x->index > y->index ? -1 : 1;
    }
    return x->term > y->term ? -1 : x->term < y->term;
}

int snap_list(const char *dir, struct snap_file **files, size_t *len)
{
    *files = NULL;
    *len = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        return moor_err_from_errno(errno);
    }
    struct snap_file *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    int rv = MOOR_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct snap_file f;
        if (!snap_name_parse(de->d_name, &f.term, &f.index)) {
            continue;
        }
        if (n == cap) {
            cap = cap == 0 ? 8 : cap * 2;
            struct snap_file *nv = moor_realloc(v, cap * sizeof(*nv));
            if (nv == NULL) {
                rv = MOOR_ENOMEM;
                break;
            }
            v = nv;
        }
        v[n++] = f;
    }
    closedir(d);
    if (rv != MOOR_OK) {
        moor_free(v);
        return rv;
    }
    if (n > 1) {
        qsort(v, n, sizeof(*v), file_cmp);
    }
    *files = v;
    *len = n;
    return MOOR_OK;
}

int snap_open_newest(const char *dir, struct snap_meta *meta, char *path_out,
                     size_t *skipped, char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    if (skipped != NULL) {
        *skipped = 0;
    }
    struct snap_file *files;
    size_t n;
    int rv = snap_list(dir, &files, &n);
    if (rv != MOOR_OK) {
        moor_errmsg_set(errmsg, "cannot list %s: %s", dir, moor_strerror(rv));
        return rv;
    }
    if (n == 0) {
        moor_errmsg_set(errmsg, "%s holds no snapshot", dir);
        return MOOR_ENOENT;
    }
    char first_err[MOOR_ERRMSG_SIZE] = "";
    rv = MOOR_ECORRUPT;
    for (size_t i = 0; i < n; i++) {
        char name[SNAP_NAME_BYTES];
        char path[SNAP_PATH_MAX];
        char msg[MOOR_ERRMSG_SIZE];
        snap_name(name, files[i].term, files[i].index);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        struct snap_meta m;
        int vr = snap_verify(path, &m, msg);
        if (vr == MOOR_OK &&
            (m.term != files[i].term || m.index != files[i].index)) {
            moor_errmsg_set(msg,
                            "%s: header says term %" PRIu64 " index %" PRIu64,
                            path, m.term, m.index);
            snap_meta_close(&m);
            vr = MOOR_ECORRUPT;
        }
        if (vr == MOOR_OK) {
            *meta = m;
            snprintf(path_out, SNAP_PATH_MAX, "%s", path);
            rv = MOOR_OK;
            break;
        }
        if (vr != MOOR_ECORRUPT) {
            /* An I/O error is not a bad snapshot: do not skip past it. */
            memcpy(errmsg, msg, MOOR_ERRMSG_SIZE);
            rv = vr;
            break;
        }
        MOOR_LOG_ERROR("snapshot", "snapshot does not verify, skipped",
                       "file=%s error=\"%s\"", path, msg);
        if (first_err[0] == '\0') {
            memcpy(first_err, msg, sizeof(first_err));
        }
        if (skipped != NULL) {
            (*skipped)++;
        }
    }
    if (rv == MOOR_ECORRUPT) {
        moor_errmsg_set(errmsg, "no snapshot in %s verifies; newest: %s", dir,
                        first_err);
    }
    moor_free(files);
    return rv;
}

int snap_prune(const char *dir, unsigned max, size_t *removed)
{
    if (removed != NULL) {
        *removed = 0;
    }
    if (max == 0) {
        max = SNAP_MAX_SNAPSHOTS_DEFAULT;
    }
    struct snap_file *files;
    size_t n;
    int rv = snap_list(dir, &files, &n);
    if (rv != MOOR_OK) {
        return rv;
    }
    size_t count = 0;
    for (size_t i = max; i < n; i++) {
        char name[SNAP_NAME_BYTES];
        char path[SNAP_PATH_MAX];
        snap_name(name, files[i].term, files[i].index);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (unlink(path) == 0) {
            count++;
            MOOR_LOG_INFO("snapshot", "snapshot pruned", "file=%s", path);
        } else {
            MOOR_LOG_WARN("snapshot", "cannot remove snapshot",
                          "file=%s errno=%d", path, errno);
        }
    }
    moor_free(files);
    if (count > 0) {
        int d2 = snap__fsync_dir(NULL, dir);
        if (d2 < 0) {
            return moor_err_from_errno(-d2);
        }
    }
    if (removed != NULL) {
        *removed = count;
    }
    return MOOR_OK;
}

int snap_clean_temps(const char *dir, size_t *removed)
{
    if (removed != NULL) {
        *removed = 0;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        return moor_err_from_errno(errno);
    }
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 9 && strcmp(de->d_name + l - 9, ".snap.tmp") == 0) {
            char path[SNAP_PATH_MAX];
            snprintf(path, sizeof(path), "%s/%.255s", dir, de->d_name);
            if (unlink(path) == 0) {
                count++;
                MOOR_LOG_INFO("snapshot", "removed a temporary file", "file=%s",
                              path);
            }
        }
    }
    closedir(d);
    if (count > 0) {
        int d2 = snap__fsync_dir(NULL, dir);
        if (d2 < 0) {
            return moor_err_from_errno(-d2);
        }
    }
    if (removed != NULL) {
        *removed = count;
    }
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * Streaming
 * ---------------------------------------------------------------------- */

struct snap_sender
{
    int fd;
};

int snap_sender_open(struct snap_sender **out, const char *path, uint64_t *size,
                     char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    struct snap__src src = {0};
    int rv = open_src(path, &src, errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    struct snap_sender *s = moor_malloc(sizeof(*s));
    if (s == NULL) {
        close(src.fd);
        return MOOR_ENOMEM;
    }
    s->fd = src.fd;
    if (size != NULL) {
        *size = src.size;
    }
    *out = s;
    return MOOR_OK;
}

int snap_sender_read(struct snap_sender *s, void *buf, size_t cap, size_t *n)
{
    ssize_t k;
    do {
        k = read(s->fd, buf, cap);
    } while (k < 0 && errno == EINTR);
    if (k < 0) {
        return moor_err_from_errno(errno);
    }
    *n = (size_t)k;
    return MOOR_OK;
}

void snap_sender_close(struct snap_sender *s)
{
    if (s != NULL) {
        close(s->fd);
        moor_free(s);
    }
}

/* The receiver. Invariant: installed implies the file is under path and
 * tmp no longer exists; err != MOOR_OK implies nothing is under path that
 * this receiver put there. */
struct snap_receiver
{
    struct snap_fs fs;
    int fd;
    bool installed;
    uint64_t bytes; /* on the temporary file so far */
    uint64_t max_bytes;
    int err; /* sticky: after a failure only close is useful */
    char dir[SNAP_PATH_MAX - SNAP_NAME_BYTES - 8];
    char tmp[SNAP_PATH_MAX];
    char errmsg[MOOR_ERRMSG_SIZE];
};

/* Records a failed call (e is an errno) as the receiver's sticky error:
 * MOOR_ENOSPC for a full disk or quota, MOOR_EIO for everything else. */
static int recv_fail(struct snap_receiver *r, int e, const char *what,
                     const char *path)
{
    moor_errmsg_set(r->errmsg, "%s %s at offset %" PRIu64 ": %s", what, path,
                    r->bytes, strerror(e));
    r->err = moor_err_from_errno(e) == MOOR_ENOSPC ? MOOR_ENOSPC : MOOR_EIO;
    return r->err;
}

int snap_receiver_open(struct snap_receiver **out, const char *dir,
                       uint64_t max_bytes, char *errmsg)
{
    return snap_receiver_open_fs(out, dir, max_bytes, NULL, errmsg);
}

int snap_receiver_open_fs(struct snap_receiver **out, const char *dir,
                          uint64_t max_bytes, const struct snap_fs *fs,
                          char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    if (strlen(dir) + 32 >= SNAP_PATH_MAX - SNAP_NAME_BYTES - 8) {
        moor_errmsg_set(errmsg, "dir path too long");
        return MOOR_EINVAL;
    }
    struct snap_receiver *r = moor_calloc(1, sizeof(*r));
    if (r == NULL) {
        return MOOR_ENOMEM;
    }
    r->fs = fs != NULL ? *fs : *snap_fs_posix();
    snprintf(r->dir, sizeof(r->dir), "%s", dir);
    snprintf(r->tmp, sizeof(r->tmp), "%s/recv-XXXXXX.snap.tmp", dir);
    r->fd = mkostemps(r->tmp, 9, O_CLOEXEC);
    if (r->fd < 0) {
        int e = errno;
        moor_errmsg_set(errmsg, "create %s: %s", r->tmp, strerror(e));
        moor_free(r);
        return moor_err_from_errno(e);
    }
    r->max_bytes = max_bytes;
    *out = r;
    return MOOR_OK;
}

int snap_receiver_write(struct snap_receiver *r, const void *chunk, size_t len)
{
    if (r->err != MOOR_OK || r->installed) {
        return r->err != MOOR_OK ? r->err : MOOR_EINVAL;
    }
    if (len > r->max_bytes - r->bytes) {
        moor_errmsg_set(r->errmsg,
                        "%s: the stream passes its bound of %" PRIu64 " bytes",
                        r->tmp, r->max_bytes);
        r->err = MOOR_ETOOBIG;
        return r->err;
    }
    const uint8_t *p = chunk;
    while (len > 0) {
        ssize_t n = r->fs.write(r->fs.arg, r->fd, p, len);
        if (n <= 0) {
            return recv_fail(r, n == 0 ? EIO : (int)-n, "write", r->tmp);
        }
        p += n;
        len -= (size_t)n;
        r->bytes += (uint64_t)n;
    }
    return MOOR_OK;
}

/* Verifies the temporary file and, when it passes, makes it durable under
 * path: fsync, rename, directory fsync. A directory fsync that fails
 * undoes the rename (best effort), so an error always means "not
 * installed". Fills *m (owned) only on MOOR_OK. */
static int recv_install(struct snap_receiver *r, struct snap_meta *m,
                        char *path)
{
    struct snap__src src = {.mem = NULL,
                            .fd = r->fd,
                            .fs = &r->fs,
                            .size = r->bytes,
                            .name = r->tmp};
    char msg[MOOR_ERRMSG_SIZE];
    int rv = snap__verify(&src, m, NULL, NULL, false, msg);
    if (rv != MOOR_OK) {
        moor_errmsg_set(r->errmsg, "received snapshot does not verify: %s",
                        msg);
        r->err = rv;
        return rv;
    }
    char name[SNAP_NAME_BYTES];
    snap_name(name, m->term, m->index);
    snprintf(path, SNAP_PATH_MAX, "%s/%s", r->dir, name);
    if (access(path, F_OK) == 0) {
        /* Not sticky: nothing went wrong, and nothing changes. */
        moor_errmsg_set(r->errmsg, "%s exists", path);
        rv = MOOR_EEXIST;
        goto err;
    }
    /* Never retried: after a failed fsync the kernel may have dropped the
     * dirty pages, so the file is abandoned (close removes it). */
    rv = r->fs.fsync(r->fs.arg, r->fd);
    if (rv < 0) {
        rv = recv_fail(r, -rv, "fsync", r->tmp);
        goto err;
    }
    rv = r->fs.rename(r->fs.arg, r->tmp, path);
    if (rv < 0) {
        rv = recv_fail(r, -rv, "install: rename to", path);
        goto err;
    }
    rv = snap__fsync_dir(&r->fs, r->dir);
    if (rv < 0) {
        /* The rename may or may not last; either way the file verified
         * and is whole, so a restart that finds it is safe. This process
         * was told "not installed", so it must not find it. */
        int e = -rv;
        if (unlink(path) < 0) {
            MOOR_LOG_ERROR("snapshot", "cannot remove uninstalled snapshot",
                           "file=%s errno=%d", path, errno);
        }
        moor_errmsg_set(r->errmsg, "fsync of directory %s: %s", r->dir,
                        strerror(e));
        r->err = MOOR_EIO;
        rv = MOOR_EIO;
        goto err;
    }
    r->installed = true;
    return MOOR_OK;
err:
    snap_meta_close(m);
    return rv;
}

int snap_receiver_finish(struct snap_receiver *r, struct snap_meta *meta,
                         char *path_out, char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    if (r->err != MOOR_OK || r->installed) {
        moor_errmsg_set(errmsg, "receiver failed earlier: %s",
                        r->err != MOOR_OK ? r->errmsg : "already installed");
        return r->err != MOOR_OK ? r->err : MOOR_EINVAL;
    }
    struct snap_meta m;
    char path[SNAP_PATH_MAX];
    int rv = recv_install(r, &m, path);
    if (rv != MOOR_OK) {
        memcpy(errmsg, r->errmsg, MOOR_ERRMSG_SIZE);
        return rv;
    }
    r->errmsg[0] = '\0';
    if (path_out != NULL) {
        snprintf(path_out, SNAP_PATH_MAX, "%s", path);
    }
    if (meta != NULL) {
        *meta = m;
    } else {
        snap_meta_close(&m);
    }
    return MOOR_OK;
}

const char *snap_receiver_errmsg(const struct snap_receiver *r)
{
    return r->errmsg;
}

void snap_receiver_close(struct snap_receiver *r)
{
    if (r == NULL) {
        return;
    }
    close(r->fd);
    if (!r->installed) {
        unlink(r->tmp);
    }
    moor_free(r);
}
