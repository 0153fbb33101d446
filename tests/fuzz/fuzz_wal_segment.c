/*
 * fuzz_wal_segment.c: the WAL segment reader on arbitrary bytes: header
 * decode, the record scan with its torn-write rule, and replay into
 * entries. The first input byte picks "newest segment" (bit 0) and a
 * snapshot start (bits 1-3); the rest is the segment file. Checks that the
 * scan's answer is consistent and that replay allocates no more than the
 * input justifies.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "wal/wal_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rec_cb(void *arg, const struct wal__rec *rec)
{
    return wal__replayer_apply(arg, rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    bool last = (data[0] & 1) != 0;
    struct wal_snapshot start = {.term = 1, .index = (data[0] >> 1) & 7};
    data++;
    size--;

    struct wal__seg_hdr h = {0};
    const char *why = NULL;
    uint32_t start_crc = 0;
    if (wal__seg_hdr_decode(data, size, &h, &why) == MOOR_OK) {
        start_crc = h.start_crc;
    } else if (why == NULL) {
        abort(); /* a refusal always says why */
    }
    size_t bytes0 = moor_alloc_bytes();
    struct wal_replay r = {0};
    struct wal__replayer p;
    wal__replayer_init(&p, start, &r);
    struct wal__scan sc;
    int rv = wal__seg_scan(data, size, start_crc, last, rec_cb, &p, &sc);
    if (rv == MOOR_OK) {
        if (sc.end_offset > size && size >= WAL__SEG_HDR_BYTES) {
            abort();
        }
        if (sc.end != WAL__SCAN_CLEAN &&
            (sc.why == NULL || sc.bad_offset != sc.end_offset)) {
            abort();
        }
        if (sc.end == WAL__SCAN_TORN && !last) {
            abort();
        }
        (void)wal__replayer_finish(&p);
    }
    /* Entries copy their data once; the array at most doubles. */
    size_t used = moor_alloc_bytes() - bytes0;
    if (used > 4 * size + r.entries_len * 64 + 4096) {
        abort();
    }
    wal_replay_close(&r);
    return 0;
}
