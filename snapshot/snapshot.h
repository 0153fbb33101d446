/*
 * snapshot/snapshot.h: snapshot files: format, lz4 framing, SHA-256,
 * atomic write, verify, list/choose/prune, and chunked streaming.
 *
 * What it is: a snapshot file <snap-dir>/<term>-<index>.snap (16 hex digits
 * each) holds a header (Raft position, membership, kv revision and compact
 * revision, applied index, counts), the kv state as one lz4 frame, and a
 * trailer ending in the SHA-256 of every byte before it. The byte layout is
 * the table at the top of snapshot/format.c and in docs/file-formats.md.
 * The last 32 bytes being the SHA-256 of the rest is also what etcdctl
 * `snapshot save` checks on a Maintenance.Snapshot stream.
 *
 * What it is not: apart from restore (the last section, which loads and
 * dumps a kv_store), it does not know kv/. The kv state is an opaque byte
 * stream: when writing, the caller hands chunks in (snap_writer_append, or
 * a producer callback with snap_save); when reading, a consumer callback
 * gets the decompressed chunks (snap_load). server/ glues kv's dump and
 * load to these.
 *
 * Threads: every function here blocks on file I/O and is meant for worker
 * threads (server/ runs them through uv_queue_work). There is no shared
 * state: a snap_writer, snap_sender or snap_receiver belongs to one thread
 * at a time and may move between threads between calls.
 *
 * Ownership: metadata passed in is borrowed; metadata read back holds an
 * owned membership block (snap_meta_close). SHA-256 comes from libcrypto's
 * EVP API, whose few small allocations do not go through moor_malloc.
 *
 * Choosing a snapshot on restart: snap_open_newest() returns the newest one
 * that verifies, and reports (logs, counts) newer ones that do not. The
 * caller then opens the WAL from the chosen snapshot; wal_open() fails with
 * MOOR_ENOENT when the WAL no longer reaches back to it, which is exactly
 * "an older valid snapshot plus the WAL does not cover the state": the
 * member must not start.
 */
#ifndef MOOR_SNAPSHOT_H
#define MOOR_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

/* Largest membership blob a snapshot carries. */
#define SNAP_MEMBERSHIP_MAX (1u << 20)
/* Longest path these functions return ("<dir>/<term>-<index>.snap"). */
#define SNAP_PATH_MAX 4200
/* Snapshots kept by snap_prune when max is 0 (etcd's --max-snapshots). */
#define SNAP_MAX_SNAPSHOTS_DEFAULT 5

/* What a snapshot file says about itself. */
struct snap_meta
{
    uint64_t term;  /* Raft term of the last entry the snapshot covers */
    uint64_t index; /* Raft index of that entry */
    uint64_t applied_index;    /* kv's applied index (normally == index) */
    uint64_t revision;         /* kv's current revision */
    uint64_t compact_revision; /* kv's compacted revision */
    uint64_t key_count;        /* keys in the kv state (informational) */
    uint64_t lease_count;      /* leases in the kv state (informational) */
    uint64_t created_unix_ns;  /* wall clock when written (informational) */
    /* The encoded membership (server/'s format, opaque here), at most
     * SNAP_MEMBERSHIP_MAX bytes; NULL when empty. Borrowed when writing;
     * owned after a read (snap_meta_close). */
    struct moor_bytes *membership;
    /* Filled by reads: the kv stream's size compressed and raw, and the
     * file's SHA-256 (its last 32 bytes). */
    uint64_t body_bytes;
    uint64_t raw_bytes;
    uint8_t sha256[32];
};

/* Drops the membership reference of a meta filled by a read. */
void snap_meta_close(struct snap_meta *m);

/* File names: "%016" PRIx64 "-%016" PRIx64 ".snap" (term, index). */
#define SNAP_NAME_BYTES 39
void snap_name(char *out, uint64_t term, uint64_t index);
bool snap_name_parse(const char *name, uint64_t *term, uint64_t *index);

/* ------------------------------------------------------------------------
 * Writing
 * ---------------------------------------------------------------------- */

struct snap_writer;

/* Starts <dir>/<term>-<index>.snap under a temporary name and writes the
 * header. Borrows dir and meta (membership copied into the header). Returns
 * owned in *out (snap_writer_close). Errors: MOOR_EINVAL (membership too
 * big), MOOR_EEXIST (that snapshot exists), MOOR_ENOSPC, MOOR_EIO,
 * MOOR_ENOMEM; errmsg (MOOR_ERRMSG_SIZE, may be NULL) gets context. */
int snap_writer_open(struct snap_writer **out, const char *dir,
                     const struct snap_meta *meta, char *errmsg);

/* Compresses, hashes and writes len bytes of the kv stream. Borrows data.
 * MOOR_ENOSPC, MOOR_EIO, MOOR_ENOMEM; after a failure the writer only
 * accepts snap_writer_close. */
int snap_writer_append(struct snap_writer *sw, const void *data, size_t len);

/* Ends the lz4 frame, writes the trailer, fsyncs, renames the file to its
 * final name and fsyncs the directory. path_out (SNAP_PATH_MAX, may be
 * NULL) gets the final path. The writer must still be closed. */
int snap_writer_finish(struct snap_writer *sw, char *path_out);

/* The writer's error message ("" when none). Returns borrowed, valid until
 * snap_writer_close. */
const char *snap_writer_errmsg(const struct snap_writer *sw);

/* Frees the writer; an unfinished snapshot's temporary file is removed. */
void snap_writer_close(struct snap_writer *sw);

/* The file calls of the writer and of the receiver, behind one small table
 * so tests can inject ENOSPC, EIO and short writes at every stage (as
 * wal_fs does for the WAL). Each returns >= 0 on success and -errno on
 * failure. arg is the table's own arg. snap_fs_posix() is the real one; a
 * test copies it and replaces a member. Creating, opening and removing
 * files (and opening the directory to fsync it) always use the real
 * calls. */
struct snap_fs
{
    void *arg;
    /* write(2) at the file offset; returns the bytes moved (may be
     * short). */
    ssize_t (*write)(void *arg, int fd, const void *buf, size_t len);
    /* pread(2); returns the bytes read (may be short; 0 at the end). The
     * receiver reads its file back through it to verify it. */
    ssize_t (*pread)(void *arg, int fd, void *buf, size_t len, off_t off);
    /* fsync(2), of a file or of a directory (fd open O_DIRECTORY). */
    int (*fsync)(void *arg, int fd);
    /* rename(2): the install step. */
    int (*rename)(void *arg, const char *from, const char *to);
};

/* Returns borrowed, valid forever: the table of real POSIX calls. */
const struct snap_fs *snap_fs_posix(void);

/* snap_writer_open whose writer writes, fsyncs (the file and the
 * directory) and renames through fs (copied; NULL: snap_fs_posix()). For
 * tests; the errors are snap_writer_open's. */
int snap_writer_open_fs(struct snap_writer **out, const char *dir,
                        const struct snap_meta *meta, const struct snap_fs *fs,
                        char *errmsg);

/* Produces the next chunk of the kv stream into *chunk (borrowed by
 * snap_save until the next call); chunk->len == 0 ends the stream. A
 * non-zero return aborts snap_save, which returns it. */
typedef int (*snap_produce_cb)(void *arg, struct moor_slice *chunk);

/* snap_writer_open + append every produced chunk + finish + close. */
int snap_save(const char *dir, const struct snap_meta *meta,
              snap_produce_cb produce_cb, void *arg, char *path_out,
              char *errmsg);

/* ------------------------------------------------------------------------
 * Reading
 * ---------------------------------------------------------------------- */

/* Gets the next chunk of the decompressed kv stream (borrowed, valid during
 * the call). A non-zero return stops snap_load, which returns it. */
typedef int (*snap_consume_cb)(void *arg, const uint8_t *data, size_t len);

/* Checks a snapshot file completely: header, sizes, SHA-256 over
 * everything before the last 32 bytes, and the lz4 frame decoding to the
 * raw size the trailer names. Fills *meta when not NULL (snap_meta_close).
 * MOOR_ECORRUPT with errmsg naming the file and the byte offset,
 * MOOR_ENOENT, MOOR_EIO, MOOR_ENOMEM. */
int snap_verify(const char *path, struct snap_meta *meta, char *errmsg);

/* Verifies the whole file first (nothing reaches the consumer from a file
 * that fails), then decodes it again feeding consume_cb. Fills *meta
 * (snap_meta_close). Errors as snap_verify, or the consumer's. */
int snap_load(const char *path, struct snap_meta *meta,
              snap_consume_cb consume_cb, void *arg, char *errmsg);

/* As snap_load, but faster for a consumer that can discard what it got (a
 * kv store being loaded, freed on error): the header and sizes are checked
 * first, then the lz4 frame is decoded once, straight into consume_cb,
 * while a thread of its own computes the file's SHA-256 (without a thread,
 * one after the other). The load stands only if the SHA-256 matches and
 * the frame decodes; either failure is MOOR_ECORRUPT, possibly after
 * consume_cb got part of the stream (kv's own checks, a CRC over its
 * stream, fail on most damage as it loads). Saves a decoding pass and,
 * with two cores, the hashing time. Errors as snap_load. */
int snap_load_once(const char *path, struct snap_meta *meta,
                   snap_consume_cb consume_cb, void *arg, char *errmsg);

/* The same checks on a snapshot held in memory (fuzzing, tests). */
int snap_verify_mem(const uint8_t *data, size_t len, struct snap_meta *meta,
                    snap_consume_cb consume_cb, void *arg, char *errmsg);

/* ------------------------------------------------------------------------
 * The snapshot directory
 * ---------------------------------------------------------------------- */

/* One snapshot file, by name. */
struct snap_file
{
    uint64_t term;
    uint64_t index;
};

/* Lists dir's snapshot files, newest first (by index, then term). Returns
 * owned in *files (moor_free; NULL when none). MOOR_ENOENT when dir does
 * not exist, MOOR_ENOMEM, MOOR_EIO. */
int snap_list(const char *dir, struct snap_file **files, size_t *len);

/* Chooses the newest snapshot that verifies. Each newer one that does not
 * is logged at ERROR and counted in *skipped (may be NULL). Fills *meta
 * (snap_meta_close) and path_out (SNAP_PATH_MAX). MOOR_ENOENT when dir
 * holds no snapshot at all (start from an empty state), MOOR_ECORRUPT when
 * it holds snapshots and none verifies (errmsg names the newest). */
int snap_open_newest(const char *dir, struct snap_meta *meta, char *path_out,
                     size_t *skipped, char *errmsg);

/* Removes all but the newest max snapshots (0: the default 5), then
 * fsyncs the directory. Returns the number removed through *removed (may
 * be NULL). Temporary files are left alone: a writer or receiver may be
 * filling one right now. */
int snap_prune(const char *dir, unsigned max, size_t *removed);

/* Removes the temporary files ("*.snap.tmp") a crash left behind in dir,
 * then fsyncs it. Only where no writer or receiver can be working in dir
 * (moord calls it once at start, before anything else writes there).
 * *removed (may be NULL): how many. MOOR_ENOENT when dir does not exist. */
int snap_clean_temps(const char *dir, size_t *removed);

/* ------------------------------------------------------------------------
 * Streaming a snapshot (Maintenance.Snapshot backups, leader -> follower)
 * ---------------------------------------------------------------------- */

/* The sending side reads the file as it is, in chunks. */
struct snap_sender;

/* Opens path for sending. Returns owned (snap_sender_close); *size gets
 * the total bytes (may be NULL). */
int snap_sender_open(struct snap_sender **out, const char *path, uint64_t *size,
                     char *errmsg);
/* Reads up to cap bytes into buf; *n == 0 at the end. */
int snap_sender_read(struct snap_sender *s, void *buf, size_t cap, size_t *n);
void snap_sender_close(struct snap_sender *s);

/* The receiving side writes chunks to a temporary file in dir
 * ("recv-XXXXXX.snap.tmp", which snap_list never takes for a snapshot and
 * snap_prune removes after a crash) and installs it only after the whole
 * file verifies. Any failure leaves nothing installed: the previous
 * snapshots stay as they were, and close removes the temporary file. */
struct snap_receiver;

/* max_bytes bounds the whole stream (MOOR_ETOOBIG beyond it). Returns
 * owned in *out (snap_receiver_close). Errors: MOOR_EINVAL (dir path too
 * long), MOOR_ENOSPC, MOOR_EIO and the like from creating the file,
 * MOOR_ENOMEM; errmsg (MOOR_ERRMSG_SIZE, may be NULL) gets context. */
int snap_receiver_open(struct snap_receiver **out, const char *dir,
                       uint64_t max_bytes, char *errmsg);

/* snap_receiver_open whose receiver writes, reads back, fsyncs and renames
 * through fs (copied; NULL: snap_fs_posix()). For tests. */
int snap_receiver_open_fs(struct snap_receiver **out, const char *dir,
                          uint64_t max_bytes, const struct snap_fs *fs,
                          char *errmsg);

/* Appends one chunk (borrows chunk). MOOR_ETOOBIG, MOOR_ENOSPC (ENOSPC or
 * EDQUOT), MOOR_EIO. A failure is sticky: every later write and finish
 * returns it, and snap_receiver_errmsg says what happened. */
int snap_receiver_write(struct snap_receiver *r, const void *chunk, size_t len);

/* Verifies the received file (snap_verify: sizes, SHA-256, lz4 frame);
 * only when it passes, fsyncs it, renames it to <dir>/<term>-<index>.snap
 * and fsyncs the directory. Fills *meta (may be NULL; snap_meta_close) and
 * path_out (may be NULL). Errors, with errmsg (may be NULL) saying why:
 * MOOR_ECORRUPT (damaged, truncated or overlong stream), MOOR_EEXIST (that
 * snapshot is already there; it is left untouched), MOOR_ENOSPC, MOOR_EIO
 * (reading back, fsync, rename or the directory's fsync failed; a failed
 * fsync is never retried), or an earlier write's error. On every error
 * nothing is installed: a file renamed into place whose directory fsync
 * then failed is removed again. Only close is useful after an error. */
int snap_receiver_finish(struct snap_receiver *r, struct snap_meta *meta,
                         char *path_out, char *errmsg);

/* The receiver's last error message ("" when none). Returns borrowed,
 * valid until snap_receiver_close. */
const char *snap_receiver_errmsg(const struct snap_receiver *r);

/* Frees the receiver, removing the temporary file unless installed. */
void snap_receiver_close(struct snap_receiver *r);

/* ------------------------------------------------------------------------
 * Restore: a backup into a fresh data dir for a new cluster (restore.c),
 * and etcd's member and cluster ids
 *
 * Unlike the rest of this header, restore knows kv/: it loads the backup's
 * kv stream into a kv_store (which checks every record) and dumps it again
 * with the applied index a new cluster's log needs. It still treats the
 * membership block as opaque bytes (server/'s encoding: moorpb.Membership).
 * ---------------------------------------------------------------------- */

/* Peer URLs of one member that snap_member_id takes. */
#define SNAP_MEMBER_URLS_MAX 16
/* The Raft position of a restored snapshot: a restored member's log
 * starts after index 1, in term 1. */
#define SNAP_RESTORE_TERM 1u
#define SNAP_RESTORE_INDEX 1u

/* etcd's member id: the first 8 bytes (big-endian) of SHA-1 over the
 * member's peer URLs sorted (strcmp) and concatenated, then the cluster
 * token. URLs must be in their normalised text form ("http://host:port",
 * IPv6 hosts in brackets), n <= SNAP_MEMBER_URLS_MAX. Borrows everything.
 * The same URLs and token give the ids etcd gives, so `member list`
 * matches and a restored cluster's ids are the ones moord computes. */
uint64_t snap_member_id(const char *const *peer_urls, size_t n,
                        const char *cluster_token);

/* etcd's cluster id: the first 8 bytes (big-endian) of SHA-1 over the
 * member ids sorted ascending, each as 8 big-endian bytes. Sorts ids in
 * place. */
uint64_t snap_cluster_id(uint64_t *ids, size_t n);

enum snap_restore_phase {
    SNAP_RESTORE_VERIFY = 0, /* SHA-256 and lz4 frame: (0, raw bytes) once */
    SNAP_RESTORE_LOAD = 1,   /* kv stream bytes loaded of the raw total */
    SNAP_RESTORE_WRITE = 2,  /* keys written of the keys loaded */
};

/* Progress report (done <= total). Called on the calling thread, often
 * (every 64 KiB loaded, every 1 MiB written): throttle any drawing. */
typedef void (*snap_restore_progress_cb)(void *arg,
                                         enum snap_restore_phase phase,
                                         uint64_t done, uint64_t total);

struct snap_restore_opts
{
    const char *backup_path; /* a snapshot file (snapshot save's output) */
    const char *data_dir;    /* must not exist, or be an empty directory */
    /* The new cluster's encoded membership (1 .. SNAP_MEMBERSHIP_MAX
     * bytes), written as the snapshot's membership block. Borrowed. */
    struct moor_bytes *membership;
    snap_restore_progress_cb progress_cb; /* NULL: none */
    void *progress_arg;
};

struct snap_restore_result
{
    char snap_dir[SNAP_PATH_MAX]; /* <data-dir>/member/snap */
    char path[SNAP_PATH_MAX];     /* the snapshot written ("" on failure) */
    uint64_t revision;            /* the backup's, kept */
    uint64_t compact_revision;
    uint64_t key_count; /* live keys */
    uint64_t lease_count;
};

/* Restores a backup into a fresh data dir: verifies the whole file
 * (snap_load: sizes, SHA-256, lz4 frame), loads its kv stream into a
 * kv_store (kv's record checks and crc32c; the header's revision and
 * compact revision must match the stream's), sets the applied index to
 * SNAP_RESTORE_INDEX, and only then creates <data-dir>/member/snap (0700
 * each, missing parents too) and writes <term>-<index>.snap there with
 * snap_save (term SNAP_RESTORE_TERM, index and applied index
 * SNAP_RESTORE_INDEX, the backup's revision, compact revision and counts,
 * o->membership), then fsyncs the new directories. No WAL is written.
 * Blocks; memory grows with the keyspace (it is loaded whole).
 * Errors, with errmsg (MOOR_ERRMSG_SIZE, may be NULL) naming the file and
 * the problem: MOOR_EEXIST (data dir not empty or not a directory),
 * MOOR_ECORRUPT (bad backup: nothing is created), MOOR_ENOENT (no backup
 * file), MOOR_EINVAL (no membership, path too long), MOOR_EIO,
 * MOOR_ENOSPC, MOOR_ENOMEM. On any error the data dir is left as found.
 * Borrows o; fills *res. */
int snap_restore(const struct snap_restore_opts *o,
                 struct snap_restore_result *res, char *errmsg);

#endif /* MOOR_SNAPSHOT_H */
