/*
 * restore.c: a backup into a fresh data dir for a new cluster, and etcd's
 * member and cluster ids.
 *
 * A backup is a snapshot file (format.c) as Maintenance.Snapshot streamed
 * it: the old cluster's Raft position and membership in its header, the kv
 * state stream in its body. Restoring keeps the kv state (every key,
 * version, revision and lease) and replaces everything that belongs to the
 * old cluster:
 *
 *   backup (verified: SHA-256, lz4 frame, then the kv stream's own crc32c
 *   and record checks while loading into a kv_store)
 *     -> kv applied index set to 1 (the new cluster's log starts there)
 *     -> <data-dir>/member/snap/0000000000000001-0000000000000001.snap
 *        written by snap_save: term 1, index 1, applied index 1, the
 *        backup's revision, compact revision and counts, and the caller's
 *        membership block (server/'s encoding, opaque here)
 *
 * No WAL is written: moord recognises "a snapshot and no WAL" as a restored
 * data dir, takes its identity from the membership block and starts its
 * WAL at the snapshot.
 *
 * The data dir must not exist or be empty, and nothing is created in it
 * until the whole backup has verified and loaded: a bad backup leaves no
 * trace. A failure while writing removes the directories restore created.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv/kv.h"
#include "snapshot_int.h"

/* kv dump chunk handed to the writer at a time. */
#define RESTORE_CHUNK (1u << 20)

/* ---- ids ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* The first 8 bytes of a finished SHA-1, big-endian. */
static uint64_t sha1_prefix(EVP_MD_CTX *ctx)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(ctx, md, &n);
    MOOR_ASSERT(ok == 1 && n >= 8);
    EVP_MD_CTX_free(ctx);
    return moor_get_be64(md);
}

static EVP_MD_CTX *sha1_start(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    MOOR_ASSERT(ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1);
    return ctx;
}

uint64_t snap_member_id(const char *const *peer_urls, size_t n,
                        const char *cluster_token)
{
    MOOR_ASSERT(n <= SNAP_MEMBER_URLS_MAX);
    const char *sorted[SNAP_MEMBER_URLS_MAX];
    for (size_t i = 0; i < n; i++) {
        sorted[i] = peer_urls[i];
    }
    qsort(sorted, n, sizeof(sorted[0]), cmp_str);
    EVP_MD_CTX *ctx = sha1_start();
    for (size_t i = 0; i < n; i++) {
        EVP_DigestUpdate(ctx, sorted[i], strlen(sorted[i]));
    }
    EVP_DigestUpdate(ctx, cluster_token, strlen(cluster_token));
    return sha1_prefix(ctx);
}

uint64_t snap_cluster_id(uint64_t *ids, size_t n)
{
    qsort(ids, n, sizeof(ids[0]), cmp_u64);
    EVP_MD_CTX *ctx = sha1_start();
    for (size_t i = 0; i < n; i++) {
        uint8_t b[8];
        moor_put_be64(b, ids[i]);
        EVP_DigestUpdate(ctx, b, sizeof(b));
    }
    return sha1_prefix(ctx);
}

/* ---- restore ------------------------------------------------------------ */

struct restore
{
    const struct snap_restore_opts *o;
    struct kv_store *kv;
    struct kv_load load;
    struct kv_dump dump;
    struct moor_buf chunk;
    uint64_t raw_total; /* the trailer's raw size, for progress only */
    uint64_t raw_done;
    uint64_t keys_total;
};

static void progress(struct restore *r, enum snap_restore_phase phase,
                     uint64_t done, uint64_t total)
{
    if (r->o->progress_cb != NULL) {
        r->o->progress_cb(r->o->progress_arg, phase, done,
                          done > total ? done : total);
    }
}

static int load_consume(void *arg, const uint8_t *data, size_t len)
{
    struct restore *r = arg;
    int rv = kv_load_feed(&r->load, data, len);
    r->raw_done += len;
    progress(r, SNAP_RESTORE_LOAD, r->raw_done, r->raw_total);
    return rv;
}

static int dump_produce(void *arg, struct moor_slice *chunk)
{
    struct restore *r = arg;
    r->chunk.len = 0;
    bool done = false;
    int rv = kv_dump_next(&r->dump, &r->chunk, RESTORE_CHUNK, &done);
    if (rv != MOOR_OK) {
        return rv;
    }
    *chunk = moor_slice_make(r->chunk.ptr, r->chunk.len);
    progress(r, SNAP_RESTORE_WRITE, r->dump.n_keys, r->keys_total);
    return MOOR_OK;
}

/* The raw (decompressed) size the trailer names, read without trust: it
 * only scales the progress report. 0 when it cannot be read. */
static uint64_t peek_raw_bytes(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    uint8_t tr[SNAP__TRAILER_BYTES];
    off_t size = lseek(fd, 0, SEEK_END);
    uint64_t raw = 0;
    if (size >= (off_t)sizeof(tr) &&
        pread(fd, tr, sizeof(tr), size - (off_t)sizeof(tr)) ==
            (ssize_t)sizeof(tr) &&
        memcmp(tr, SNAP__TRAILER_MAGIC, 8) == 0) {
        raw = moor_get_le64(tr + 16);
    }
    close(fd);
    return raw;
}

/* MOOR_OK when dir does not exist (*exists false) or is an empty
 * directory (*exists true). */
static int check_data_dir(const char *dir, bool *exists, char *errmsg)
{
    struct stat st;
    *exists = false;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) {
            return MOOR_OK;
        }
        moor_errmsg_set(errmsg, "data-dir \"%s\": %s", dir, strerror(errno));
        return moor_err_from_errno(errno);
    }
    *exists = true;
    DIR *d = S_ISDIR(st.st_mode) ? opendir(dir) : NULL;
    bool empty = d != NULL;
    for (struct dirent *e; empty && (e = readdir(d)) != NULL;) {
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    }
    if (d != NULL) {
        closedir(d);
    }
    if (!empty) {
        moor_errmsg_set(errmsg,
                        "data-dir \"%s\" not empty or could not be read", dir);
        return MOOR_EEXIST;
    }
    return MOOR_OK;
}

/* Creates dir's missing parents (0700). Returns -errno. */
static int mkdir_parents(const char *dir)
{
    char p[SNAP_PATH_MAX];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s != '/') {
            continue;
        }
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            return -errno;
        }
        *s = '/';
    }
    return 0;
}

/* The directory holding path (path itself when it has no '/'... "."). */
static void parent_of(const char *path, char *out)
{
    snprintf(out, SNAP_PATH_MAX, "%s", path);
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/') {
        out[--len] = '\0';
    }
    char *slash = strrchr(out, '/');
    if (slash == NULL) {
        snprintf(out, SNAP_PATH_MAX, ".");
    } else if (slash == out) {
        out[1] = '\0';
    } else {
        *slash = '\0';
    }
}

/* Verifies and loads the backup into r->kv. */
static int restore_load(struct restore *r, struct snap_meta *meta, char *errmsg)
{
    const struct snap_restore_opts *o = r->o;
    int rv = kv_store_new(NULL, &r->kv);
    if (rv == MOOR_OK) {
        rv = kv_load_open(r->kv, &r->load);
    }
    if (rv != MOOR_OK) {
        return rv;
    }
    r->raw_total = peek_raw_bytes(o->backup_path);
    progress(r, SNAP_RESTORE_VERIFY, 0, r->raw_total);
    rv = snap_load(o->backup_path, meta, load_consume, r, errmsg);
    if (rv == MOOR_OK) {
        rv = kv_load_finish(&r->load);
    }
    if (rv == MOOR_ECORRUPT && r->load.errmsg[0] != '\0') {
        /* The SHA-256 held, so the kv stream was written this way. */
        moor_errmsg_set(errmsg, "%s: %s", o->backup_path, r->load.errmsg);
    }
    if (rv != MOOR_OK) {
        return rv;
    }
    int64_t rev = kv_store_revision(r->kv);
    int64_t crev = kv_store_compact_revision(r->kv);
    if ((uint64_t)rev != meta->revision ||
        (uint64_t)crev != meta->compact_revision) {
        moor_errmsg_set(
            errmsg,
            "%s: header says revision %" PRIu64 " compacted at %" PRIu64
            ", the kv state %" PRId64 " compacted at %" PRId64,
            o->backup_path, meta->revision, meta->compact_revision, rev, crev);
        return MOOR_ECORRUPT;
    }
    return MOOR_OK;
}

/* Writes the new snapshot into <data-dir>/member/snap. */
static int restore_write(struct restore *r, const struct snap_meta *old,
                         struct snap_restore_result *res, char *errmsg)
{
    const struct snap_restore_opts *o = r->o;
    /* A restored member's log starts after index 1 (the snapshot's). */
    kv_store_reset_applied_index(r->kv, SNAP_RESTORE_INDEX);
    struct snap_meta m;
    memset(&m, 0, sizeof(m));
    m.term = SNAP_RESTORE_TERM;
    m.index = SNAP_RESTORE_INDEX;
    m.applied_index = SNAP_RESTORE_INDEX;
    m.revision = old->revision;
    m.compact_revision = old->compact_revision;
    m.key_count = kv_store_live_count(r->kv);
    m.lease_count = kv_lease_count(r->kv);
    m.created_unix_ns = moor_clock_realtime_ns();
    m.membership = o->membership;
    r->keys_total = kv_store_key_count(r->kv);
    int rv = kv_dump_open(r->kv, &r->dump);
    if (rv != MOOR_OK) {
        return rv;
    }
    rv = snap_save(res->snap_dir, &m, dump_produce, r, res->path, errmsg);
    kv_dump_close(&r->dump);
    if (rv == MOOR_OK) {
        res->revision = m.revision;
        res->compact_revision = m.compact_revision;
        res->key_count = m.key_count;
        res->lease_count = m.lease_count;
    }
    return rv;
}

/* Creates the data dir's directories, writes the snapshot and makes the
 * new entries durable; on failure removes what it created. */
static int restore_install(struct restore *r, const struct snap_meta *old,
                           bool existed, struct snap_restore_result *res,
                           char *errmsg)
{
    const char *dir = r->o->data_dir;
    char member[SNAP_PATH_MAX], parent[SNAP_PATH_MAX];
    snprintf(member, sizeof(member), "%s/member", dir);
    parent_of(dir, parent);
    bool made_dir = false, made_member = false, made_snap = false;
    int e = 0;
    if (!existed) {
        e = mkdir_parents(dir);
        if (e == 0 && mkdir(dir, 0700) != 0) {
            e = -errno;
        }
        made_dir = e == 0;
    }
    if (e == 0) {
        e = mkdir(member, 0700) != 0 ? -errno : 0;
        made_member = e == 0;
    }
    if (e == 0) {
        e = mkdir(res->snap_dir, 0700) != 0 ? -errno : 0;
        made_snap = e == 0;
    }
    int rv = MOOR_OK;
    if (e != 0) {
        moor_errmsg_set(errmsg, "create %s: %s",
                        made_member             ? res->snap_dir
                        : (made_dir || existed) ? member
                                                : dir,
                        strerror(-e));
        rv = moor_err_from_errno(-e);
    }
    if (rv == MOOR_OK) {
        rv = restore_write(r, old, res, errmsg);
    }
    /* The new directory entries, bottom up (snap_save did snap/'s). */
    if (rv == MOOR_OK &&
        ((e = snap__fsync_dir(NULL, member)) != 0 ||
         (e = snap__fsync_dir(NULL, dir)) != 0 ||
         (!existed && (e = snap__fsync_dir(NULL, parent)) != 0))) {
        moor_errmsg_set(errmsg, "fsync of a directory of %s: %s", dir,
                        strerror(-e));
        rv = MOOR_EIO;
        unlink(res->path);
    }
    if (rv != MOOR_OK) {
        if (made_snap) {
            rmdir(res->snap_dir);
        }
        if (made_member) {
            rmdir(member);
        }
        if (made_dir) {
            rmdir(dir);
        }
        res->path[0] = '\0';
    }
    return rv;
}

int snap_restore(const struct snap_restore_opts *o,
                 struct snap_restore_result *res, char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    errmsg[0] = '\0';
    memset(res, 0, sizeof(*res));
    size_t mlen = o->membership != NULL ? o->membership->len : 0;
    if (mlen == 0 || mlen > SNAP_MEMBERSHIP_MAX || o->data_dir[0] == '\0' ||
        strlen(o->data_dir) + 16 + SNAP_NAME_BYTES + 8 >= SNAP_PATH_MAX) {
        moor_errmsg_set(errmsg,
                        "restore: no membership, or a data dir path "
                        "that is empty or too long");
        return MOOR_EINVAL;
    }
    snprintf(res->snap_dir, sizeof(res->snap_dir), "%s/member/snap",
             o->data_dir);
    bool existed = false;
    int rv = check_data_dir(o->data_dir, &existed, errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    struct restore r;
    memset(&r, 0, sizeof(r));
    r.o = o;
    moor_buf_init(&r.chunk);
    struct snap_meta old;
    memset(&old, 0, sizeof(old));
    rv = restore_load(&r, &old, errmsg);
    kv_load_close(&r.load);
    /* Only now, with the whole backup checked, does the data dir appear. */
    if (rv == MOOR_OK) {
        rv = restore_install(&r, &old, existed, res, errmsg);
    }
    snap_meta_close(&old);
    moor_buf_close(&r.chunk);
    kv_store_free(r.kv);
    return rv;
}
