/*
 * format.c: the WAL's bytes on disk, and the scanner that tells a torn
 * write from corruption. All integers are little-endian.
 *
 * Segment file <seq>-<first index>.wal (both 16 lower-case hex digits):
 * seq counts segments from 0 without gaps; first index is the index the
 * segment's first entry would have had when it was created (the last index
 * of the log + 1), so every entry of a segment is below the next segment's
 * first index. The file is preallocated to the segment size (64 MiB), and
 * overwritten with zeros where there is time (wal.c, seg_create), and
 * reads as zeros past the last record.
 *
 * Segment header, 64 bytes:
 *   OFFSET SIZE MEANING
 *   0      8    magic "moorwal\0"
 *   8      4    format version, 1
 *   12     4    crc32c of bytes 0..11 and 16..63
 *   16     8    seq (as in the name)
 *   24     8    first index (as in the name)
 *   32     4    start crc: the chain crc before this segment's first record
 *                (the crc of the previous segment's last record; 0 for the
 *                log's first segment)
 *   36     28   zero
 *
 * Record, at offset 64 and then every 16 bytes aligned, 16-byte header:
 *   OFFSET SIZE MEANING
 *   0      4    payload length L
 *   4      1    type: 1 metadata, 2 entry, 3 hard state, 4 snapshot marker
 *   5      1    flags: bit 0 "sync start": the first record written after an
 *                fdatasync (the first record of a group-commit batch and
 *                of a segment); other bits zero
 *   6      2    zero
 *   8      4    prev crc: the crc of the record before (chain)
 *   12     4    crc: crc32c seeded with prev crc over header bytes 0..11
 *                and the L payload bytes
 *   16     L    payload
 *   16+L   pad  zeros up to a multiple of 16
 *
 * Payloads:
 *   metadata (16):    cluster id u64, member id u64
 *   entry (17 + n):   term u64, index u64, entry type u8, n data bytes
 *   hard state (24):  term u64, vote u64, commit u64
 *   snapshot (16):    term u64, index u64
 *
 * A new segment opens with a metadata record, then the newest snapshot
 * marker and hard state written so far (when there are any), so a replay
 * can start at any segment that survives release.
 *
 * Torn write or corruption (the rule wal__seg_scan applies). The writer
 * thread writes a batch with one pwritev2(RWF_DSYNC) (or one pwrite and
 * then fdatasync); it writes the next batch only after that returned, and syncs
 * a segment's part of a batch before it creates the next segment. So at a crash
 * at most one batch -- the newest, at the tail of the newest segment -- may be
 * partly on disk, and the part that is missing reads as zeros: the segment is
 * preallocated with zeros and disks write whole 512-byte sectors (the page
 * cache whole pages), so a torn batch leaves sectors that hold either
 * exactly what was written or zeros, never other bytes. Hence a bad record
 * at offset X is a torn write only when all of these hold:
 *   1. it is in the newest segment;
 *   2. its damage is explained by missing sectors: its header is all zero,
 *      or the file ends inside it, or one of the 512-byte sectors it spans
 *      reads all zero (a record whose length field is not plausible or
 *      whose crc fails with every sector present is corruption);
 *   3. it does not verify on its own (a record that verifies with its own
 *      prev crc but breaks the chain was moved or follows a lost one);
 *   4. no record after X verifies on its own and carries "sync start": such
 *      a record would prove a later batch was written after the one at X
 *      was synced.
 * A torn write is cut off at X; anything else fails the open. The one
 * ambiguity left is in the newest batch only, where nothing written later
 * can testify that it was synced: if a disk later returns zeros for a
 * sector of that synced batch (or flips a bit in a record that also spans
 * a sector of zeros in its own data), it reads as torn and is cut.
 */
#include <inttypes.h>
#include <stdio.h>

#include "wal_int.h"

void wal__seg_hdr_encode(uint8_t *out, const struct wal__seg_hdr *h)
{
    memset(out, 0, WAL__SEG_HDR_BYTES);
    memcpy(out, WAL__SEG_MAGIC, 8);
    moor_put_le32(out + 8, WAL__SEG_VERSION);
    moor_put_le64(out + 16, h->seq);
    moor_put_le64(out + 24, h->first_index);
    moor_put_le32(out + 32, h->start_crc);
    uint32_t crc = moor_crc32c(0, out, 12);
    crc = moor_crc32c(crc, out + 16, WAL__SEG_HDR_BYTES - 16);
    moor_put_le32(out + 12, crc);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v != 0) {
            return false;
        }
    }
    for (; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

int wal__seg_hdr_decode(const uint8_t *in, size_t len, struct wal__seg_hdr *h,
                        const char **why)
{
    if (len < WAL__SEG_HDR_BYTES) {
        *why = "segment shorter than its header";
        return MOOR_ECORRUPT;
    }
    if (memcmp(in, WAL__SEG_MAGIC, 8) != 0) {
        *why = "bad segment magic";
        return MOOR_ECORRUPT;
    }
    uint32_t crc = moor_crc32c(0, in, 12);
    crc = moor_crc32c(crc, in + 16, WAL__SEG_HDR_BYTES - 16);
    if (crc != moor_get_le32(in + 12)) {
        *why = "segment header crc mismatch";
        return MOOR_ECORRUPT;
    }
    if (moor_get_le32(in + 8) != WAL__SEG_VERSION) {
        *why = "unknown segment format version";
        return MOOR_ECORRUPT;
    }
    if (!all_zero(in + 36, WAL__SEG_HDR_BYTES - 36)) {
        *why = "segment header reserved bytes not zero";
        return MOOR_ECORRUPT;
    }
    h->seq = moor_get_le64(in + 16);
    h->first_index = moor_get_le64(in + 24);
    h->start_crc = moor_get_le32(in + 32);
    return MOOR_OK;
}

uint8_t *wal__rec_append(struct moor_buf *b, uint8_t type, size_t payload_len)
{
    uint64_t size = wal__rec_size(payload_len);
    if (moor_buf_reserve(b, (size_t)size) != MOOR_OK) {
        return NULL;
    }
    uint8_t *rec = b->ptr + b->len;
    /* Zero the padding now (the payload is the caller's, written after):
     * the last 16 bytes of the record hold all of it, and clearing them as
     * one fixed-size block is a couple of stores, not a call. */
    memset(rec + size - WAL__REC_ALIGN, 0, WAL__REC_ALIGN);
    memset(rec, 0, WAL__REC_HDR_BYTES);
    moor_put_le32(rec, (uint32_t)payload_len);
    rec[4] = type;
    b->len += (size_t)size;
    return rec + WAL__REC_HDR_BYTES;
}

uint32_t wal__rec_seal(uint8_t *rec, uint8_t flags, uint32_t prev_crc)
{
    uint32_t len = moor_get_le32(rec);
    rec[5] = flags;
    moor_put_le32(rec + 8, prev_crc);
    uint32_t crc = moor_crc32c(prev_crc, rec, 12);
    crc = moor_crc32c(crc, rec + WAL__REC_HDR_BYTES, len);
    moor_put_le32(rec + 12, crc);
    return crc;
}

void wal__meta_encode(uint8_t *out, const struct wal_meta *m)
{
    moor_put_le64(out, m->cluster_id);
    moor_put_le64(out + 8, m->member_id);
}

void wal__hard_state_encode(uint8_t *out, const struct raft_hard_state *hs)
{
    moor_put_le64(out, hs->term);
    moor_put_le64(out + 8, hs->vote);
    moor_put_le64(out + 16, hs->commit);
}

void wal__snapshot_encode(uint8_t *out, const struct wal_snapshot *s)
{
    moor_put_le64(out, s->term);
    moor_put_le64(out + 8, s->index);
}

void wal__entry_hdr_encode(uint8_t *out, const struct raft_entry *e)
{
    moor_put_le64(out, e->term);
    moor_put_le64(out + 8, e->index);
    out[16] = e->type;
}

/* The header at buf+off is plausible: known type, flags and reserved bytes
 * valid, a payload length the type allows. Says nothing about the crc. */
static bool rec_hdr_plausible(const uint8_t *h)
{
    uint32_t len = moor_get_le32(h);
    if ((h[5] & ~WAL__REC_FLAG_SYNC_START) != 0 || h[6] != 0 || h[7] != 0) {
        return false;
    }
    switch (h[4]) {
    case WAL__REC_META:
        return len == WAL__META_BYTES;
    case WAL__REC_ENTRY:
        return len >= WAL__ENTRY_HDR_BYTES && len <= WAL__REC_PAYLOAD_MAX;
    case WAL__REC_HARD_STATE:
        return len == WAL__HARD_STATE_BYTES;
    case WAL__REC_SNAPSHOT:
        return len == WAL__SNAPSHOT_BYTES;
    default:
        return false;
    }
}

/* The record at off verifies on its own: plausible header, whole within
 * len, zero padding, crc matching its own prev crc. */
static bool rec_self_valid(const uint8_t *buf, size_t len, uint64_t off)
{
    if (off + WAL__REC_HDR_BYTES > len) {
        return false;
    }
    const uint8_t *h = buf + off;
    if (!rec_hdr_plausible(h)) {
        return false;
    }
    uint32_t plen = moor_get_le32(h);
    uint64_t size = wal__rec_size(plen);
    if (size > len - off) {
        return false;
    }
    uint64_t pad = size - WAL__REC_HDR_BYTES - plen;
    if (!all_zero(h + WAL__REC_HDR_BYTES + plen, (size_t)pad)) {
        return false;
    }
    uint32_t crc = moor_crc32c(moor_get_le32(h + 8), h, 12);
    crc = moor_crc32c(crc, h + WAL__REC_HDR_BYTES, plen);
    return crc == moor_get_le32(h + 12);
}

/* Rule 2 of the header comment: the damage of the bad record at off is
 * explained by sectors that were never written. */
static bool torn_explained(const uint8_t *buf, size_t len, uint64_t off,
                           const char **why)
{
    if (off + WAL__REC_HDR_BYTES > len) {
        *why = "torn write: the file ends inside a record header";
        return true;
    }
    const uint8_t *h = buf + off;
    if (all_zero(h, WAL__REC_HDR_BYTES)) {
        *why = "torn write: a zero record header before later data";
        return true;
    }
    if (!rec_hdr_plausible(h)) {
        *why = "bad record header";
        return false;
    }
    uint64_t end = off + wal__rec_size(moor_get_le32(h));
    if (end > len) {
        *why = "torn write: the file ends inside a record";
        return true;
    }
    for (uint64_t s = off - off % WAL__SECTOR_BYTES; s < end;
         s += WAL__SECTOR_BYTES) {
        uint64_t n = MOOR_MIN((uint64_t)WAL__SECTOR_BYTES, len - s);
        if (all_zero(buf + s, (size_t)n)) {
            *why = "torn write: a record with a sector of zeros";
            return true;
        }
    }
    *why = "record crc mismatch";
    return false;
}

/* Rule 4: the offset of a record after off that verifies on its own and
 * starts a synced batch, or 0 when there is none. */
static uint64_t later_sync_start(const uint8_t *buf, size_t len, uint64_t off)
{
    for (uint64_t y = off + WAL__REC_ALIGN; y + WAL__REC_HDR_BYTES <= len;
         y += WAL__REC_ALIGN) {
        const uint8_t *h = buf + y;
        if ((h[5] & WAL__REC_FLAG_SYNC_START) == 0) {
            continue; /* fast path: zeros and mid-batch records */
        }
        if (rec_self_valid(buf, len, y)) {
            return y;
        }
    }
    return 0;
}

/* Classifies the bad record at off (rules 1-4). */
static void classify_bad(const uint8_t *buf, size_t len, uint64_t off,
                         bool last, struct wal__scan *out)
{
    out->bad_offset = off;
    out->end = WAL__SCAN_CORRUPT;
    if (rec_self_valid(buf, len, off)) {
        out->why = "record crc chain broken (a record is missing or moved)";
        return;
    }
    const char *why = NULL;
    bool torn = torn_explained(buf, len, off, &why);
    out->why = why;
    if (!torn) {
        return;
    }
    if (!last) {
        out->why = "bad record in a segment that is not the newest";
        return;
    }
    if (later_sync_start(buf, len, off) != 0) {
        out->why = "bad record followed by a later synced batch";
        return;
    }
    out->end = WAL__SCAN_TORN;
}

int wal__seg_scan(const uint8_t *buf, size_t len, uint32_t start_crc, bool last,
                  wal__rec_cb rec_cb, void *arg, struct wal__scan *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t off = WAL__SEG_HDR_BYTES;
    uint32_t chain = start_crc;
    out->end_offset = off;
    out->end_crc = chain;
    while (off < len) {
        if (off + WAL__REC_HDR_BYTES <= len &&
            all_zero(buf + off, WAL__REC_HDR_BYTES) &&
            all_zero(buf + off, (size_t)(len - off))) {
            return MOOR_OK; /* clean end: zeros to the end */
        }
        const uint8_t *h = buf + off;
        bool good = off + WAL__REC_HDR_BYTES <= len && rec_hdr_plausible(h) &&
                    moor_get_le32(h + 8) == chain &&
                    rec_self_valid(buf, len, off);
        if (!good) {
            if (off + WAL__REC_HDR_BYTES > len &&
                all_zero(buf + off, (size_t)(len - off))) {
                return MOOR_OK; /* a file cut inside zeros */
            }
            classify_bad(buf, len, off, last, out);
            return MOOR_OK;
        }
        uint32_t plen = moor_get_le32(h);
        struct wal__rec rec = {
            .type = h[4],
            .flags = h[5],
            .offset = off,
            .payload = moor_slice_make(h + WAL__REC_HDR_BYTES, plen),
        };
        if (rec_cb != NULL) {
            int rv = rec_cb(arg, &rec);
            if (rv != 0) {
                out->bad_offset = off;
                return rv;
            }
        }
        chain = moor_get_le32(h + 12);
        off += wal__rec_size(plen);
        out->records++;
        out->end_offset = off;
        out->end_crc = chain;
    }
    return MOOR_OK;
}

void wal__seg_name(char *out, uint64_t seq, uint64_t first_index)
{
    snprintf(out, WAL__NAME_BYTES, "%016" PRIx64 "-%016" PRIx64 ".wal", seq,
             first_index);
}

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

bool wal__seg_name_parse(const char *name, uint64_t *seq, uint64_t *first_index)
{
    if (strlen(name) != WAL__NAME_BYTES - 1 || name[16] != '-' ||
        strcmp(name + 33, ".wal") != 0) {
        return false;
    }
    return parse_hex16(name, seq) && parse_hex16(name + 17, first_index);
}
