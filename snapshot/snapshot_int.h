/*
 * snapshot/snapshot_int.h: declarations shared inside snapshot/ (format.c,
 * writer.c, dir.c). The byte layout is at the top of format.c.
 */
#ifndef MOOR_SNAPSHOT_INT_H
#define MOOR_SNAPSHOT_INT_H

#include "snapshot/snapshot.h"

#define SNAP__MAGIC "moorsnap"
#define SNAP__TRAILER_MAGIC "moorsend"
#define SNAP__VERSION 1u
#define SNAP__HDR_FIXED 88u
#define SNAP__TRAILER_BYTES 56u
/* Files are padded to a size of 32 more than a multiple of this. */
#define SNAP__PAD_ALIGN 512u
/* I/O and lz4 work in pieces of this size. */
#define SNAP__CHUNK (64u * 1024)

/* Writes the fixed header of m (membership_len bytes of membership follow
 * it in the file) into out[0..SNAP__HDR_FIXED). */
void snap__hdr_encode(uint8_t *out, const struct snap_meta *m,
                      uint32_t membership_len);

/* Writes the first 24 trailer bytes (magic, body bytes, raw bytes). */
void snap__trailer_encode(uint8_t *out, uint64_t body_bytes,
                          uint64_t raw_bytes);

/* A file or a memory block to verify. */
struct snap__src
{
    const uint8_t *mem; /* NULL: read fd */
    int fd;
    const struct snap_fs *fs; /* reads fd through it; NULL: pread(2) */
    uint64_t size;
    const char *name; /* for messages */
};

/* Verifies src (see snap_verify), then, when consume_cb is set, decodes the
 * body again feeding it. With once (and consume_cb), the body is decoded
 * only once, feeding consume_cb, while another thread checks the SHA-256
 * (snap_load_once). */
int snap__verify(const struct snap__src *src, struct snap_meta *meta,
                 snap_consume_cb consume_cb, void *arg, bool once,
                 char *errmsg);

/* Syncs a directory through fs (NULL: snap_fs_posix()); -errno on
 * failure. */
int snap__fsync_dir(const struct snap_fs *fs, const char *dir);

#endif /* MOOR_SNAPSHOT_INT_H */
