/*
 * wal/wal_int.h: declarations shared inside wal/ (format.c, replay.c,
 * wal.c, fs.c, datadir.c) and with the fuzz target. The byte layout is
 * documented at the top of format.c.
 */
#ifndef MOOR_WAL_INT_H
#define MOOR_WAL_INT_H

#include "wal/wal.h"

/* Segment header. */
#define WAL__SEG_MAGIC "moorwal\0"
#define WAL__SEG_VERSION 1u
#define WAL__SEG_HDR_BYTES 64u

/* Records. */
#define WAL__REC_HDR_BYTES 16u
#define WAL__REC_ALIGN 16u
#define WAL__REC_META 1u
#define WAL__REC_ENTRY 2u
#define WAL__REC_HARD_STATE 3u
#define WAL__REC_SNAPSHOT 4u
#define WAL__REC_FLAG_SYNC_START 0x01u
/* Payload sizes of the fixed records, and the entry payload's header. */
#define WAL__META_BYTES 16u
#define WAL__HARD_STATE_BYTES 24u
#define WAL__SNAPSHOT_BYTES 16u
#define WAL__ENTRY_HDR_BYTES 17u
/* Largest record payload any reader accepts. */
#define WAL__REC_PAYLOAD_MAX (WAL_ENTRY_BYTES_MAX + WAL__ENTRY_HDR_BYTES)
/* Room a new segment reserves for its opening records (meta, snapshot
 * marker, hard state). */
#define WAL__SEG_OPENING_BYTES 128u
/* Torn-write detection works on sectors of this size. */
#define WAL__SECTOR_BYTES 512u

/* Bytes a record with payload_len bytes occupies (header + padded). */
static inline uint64_t wal__rec_size(uint64_t payload_len)
{
    return WAL__REC_HDR_BYTES + ((payload_len + WAL__REC_ALIGN - 1) &
                                 ~(uint64_t)(WAL__REC_ALIGN - 1));
}

/* The segment header's fields. */
struct wal__seg_hdr
{
    uint64_t seq;
    uint64_t first_index;
    uint32_t start_crc; /* chain crc before the first record */
};

/* Writes the 64-byte header of h at out. */
void wal__seg_hdr_encode(uint8_t *out, const struct wal__seg_hdr *h);
/* Parses a header; MOOR_ECORRUPT with a reason in *why when bad. */
int wal__seg_hdr_decode(const uint8_t *in, size_t len, struct wal__seg_hdr *h,
                        const char **why);

/* Appends one record with the given payload to b, leaving flags, prev_crc
 * and crc zero (the writer thread fills them: wal__rec_seal). The payload
 * is written by the caller into the returned pointer (payload_len bytes).
 * Returns NULL on allocation failure. */
uint8_t *wal__rec_append(struct moor_buf *b, uint8_t type, size_t payload_len);

/* Fills flags, prev_crc and crc of the record at rec (its payload follows
 * it) and returns its crc: the next record's prev_crc. */
uint32_t wal__rec_seal(uint8_t *rec, uint8_t flags, uint32_t prev_crc);

/* Payload encoders (out has room for the fixed sizes above). */
void wal__meta_encode(uint8_t *out, const struct wal_meta *m);
void wal__hard_state_encode(uint8_t *out, const struct raft_hard_state *hs);
void wal__snapshot_encode(uint8_t *out, const struct wal_snapshot *s);
void wal__entry_hdr_encode(uint8_t *out, const struct raft_entry *e);

/* One decoded record, borrowed from the scanned buffer. */
struct wal__rec
{
    uint8_t type;
    uint8_t flags;
    uint64_t offset; /* of its header in the segment */
    struct moor_slice payload;
};

/* Called for each good record in order; a non-zero return stops the scan
 * and is returned by wal__seg_scan. */
typedef int (*wal__rec_cb)(void *arg, const struct wal__rec *rec);

enum wal__scan_end {
    WAL__SCAN_CLEAN = 0, /* the records end and only zeros follow */
    WAL__SCAN_TORN = 1,  /* a torn write at bad_offset (last segment only) */
    WAL__SCAN_CORRUPT = 2,
};

struct wal__scan
{
    enum wal__scan_end end;
    uint64_t end_offset; /* after the last good record */
    uint32_t end_crc;    /* chain crc after the last good record */
    uint64_t records;    /* good records */
    uint64_t bad_offset; /* TORN/CORRUPT: where */
    const char *why;     /* TORN/CORRUPT: what, a static string */
};

/* Scans a whole segment held in buf[0..len) (header included; len may be
 * short when the file was cut). start_crc is the chain crc expected before
 * the first record. last says whether this is the newest segment (the only
 * one that may end in a torn write). Calls rec_cb for each good record.
 * Does not allocate. Returns MOOR_OK (see out->end) or rec_cb's non-zero
 * return. */
int wal__seg_scan(const uint8_t *buf, size_t len, uint32_t start_crc, bool last,
                  wal__rec_cb rec_cb, void *arg, struct wal__scan *out);

/* Replay state: applies records to an entry array and the newest state. */
struct wal__replayer
{
    struct wal_snapshot start;
    struct wal_replay *out;
    size_t cap;          /* of out->entries */
    uint64_t last_index; /* of the log so far (entries <= start too) */
    uint64_t last_term;
    uint64_t gap_from;   /* first missing index (0: none) */
    uint64_t gap_marker; /* a marker explained the gap (its index) */
    bool have_meta;
    bool seen_entry;
    uint64_t start_term_seen; /* term of the newest entry at start.index */
    char why[160];            /* an error's reason */
};

void wal__replayer_init(struct wal__replayer *p, struct wal_snapshot start,
                        struct wal_replay *out);
/* Applies one good record. MOOR_ECORRUPT (p->why says why: an impossible
 * payload) or MOOR_ENOMEM. */
int wal__replayer_apply(struct wal__replayer *p, const struct wal__rec *rec);
/* After the last record: MOOR_ENOENT when the log does not reach back to
 * start (p->why says which indexes are missing). */
int wal__replayer_finish(struct wal__replayer *p);

/* Segment file names: "%016" PRIx64 "-%016" PRIx64 ".wal". */
#define WAL__NAME_BYTES 38 /* 16 + 1 + 16 + 4 + NUL */
void wal__seg_name(char *out, uint64_t seq, uint64_t first_index);
/* Parses a segment name; false when name is not one. */
bool wal__seg_name_parse(const char *name, uint64_t *seq,
                         uint64_t *first_index);

/* Syncs the directory at path (open O_RDONLY|O_DIRECTORY, fsync). */
int wal__fsync_dir(const struct wal_fs *fs, const char *path);
/* Writes all of buf at off, looping over short writes; -errno on failure
 * (a zero-byte write counts as -EIO). */
int wal__pwrite_all(const struct wal_fs *fs, int fd, const void *buf,
                    size_t len, uint64_t off);
/* Extends the file to len bytes by writing zeros after its end (the
 * preallocation fallback for file systems without fallocate). */
int wal__fill_zeros(const struct wal_fs *fs, int fd, uint64_t len);
int wal__pread_all(const struct wal_fs *fs, int fd, void *buf, size_t len,
                   uint64_t off, size_t *got);

#endif /* MOOR_WAL_INT_H */
