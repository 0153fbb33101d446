/*
 * fuzz_snapshot_reader.c: the snapshot verifier and loader on arbitrary
 * bytes (header, sizes, SHA-256, lz4 frame). Most mutations fail the
 * digest, so the first input byte can ask the harness to recompute it
 * (bit 0) or to wrap the input in a valid frame (bit 1: fixed-up header
 * fields and a fitting trailer), so the size checks and the lz4 decoder
 * behind the digest get exercised too. Checks that a refusal
 * always says why, that an accepted file fed the consumer exactly the raw
 * size it claims, and that memory stays bounded.
 */
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int consume(void *arg, const uint8_t *data, size_t len)
{
    (void)data;
    *(uint64_t *)arg += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20)) {
        return 0;
    }
    bool fix_digest = (data[0] & 1) != 0;
    bool frame = (data[0] & 2) != 0;
    data++;
    size--;
    /* frame: the input is a header (88 bytes, membership length patched to
     * 0) and a body; the harness appends a trailer that fits it, with a
     * raw size taken from the header's reserved-looking bytes 72..79, so
     * the lz4 decoder sees arbitrary bodies behind a valid frame. */
    size_t cap = size + 56 + 1;
    uint8_t *img = malloc(cap);
    if (img == NULL) {
        return 0;
    }
    memcpy(img, data, size);
    if (frame && size >= 88) {
        memset(img + 80, 0, 8);      /* membership 0, zero field */
        moor_put_le32(img + 12, 88); /* header bytes */
        uint64_t raw = moor_get_le64(img + 72) % (1u << 22);
        memcpy(img + size, "moorsend", 8);
        moor_put_le64(img + size + 8, size - 88);
        moor_put_le64(img + size + 16, raw);
        size += 56;
        fix_digest = true;
    }
    if (fix_digest && size >= 32) {
        unsigned int n = 0;
        EVP_Digest(img, size - 32, img + size - 32, &n, EVP_sha256(), NULL);
    }
    size_t bytes0 = moor_alloc_bytes();
    struct snap_meta m;
    uint64_t fed = 0;
    char msg[MOOR_ERRMSG_SIZE];
    msg[0] = '\0';
    int rv = snap_verify_mem(img, size, &m, consume, &fed, msg);
    if (rv == MOOR_OK) {
        if (fed != m.raw_bytes) {
            abort();
        }
        snap_meta_close(&m);
    } else if (rv == MOOR_ECORRUPT && msg[0] == '\0') {
        abort();
    }
    if (moor_alloc_bytes() != bytes0) {
        abort(); /* everything the reader allocated is freed */
    }
    free(img);
    return 0;
}
