/*
 * fuzz_snapshot_reader.c: the snapshot verifier and loader on arbitrary
 * bytes (header, sizes, SHA-256, lz4 frame). Most mutations fail the
 * digest; the interesting inputs are seeds whose digest is recomputed by
 * the fuzzer harness below when the first byte says so, so the lz4 and
 * size checks behind the digest get exercised too. Checks that a refusal
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
    data++;
    size--;
    uint8_t *img = malloc(size + 1);
    if (img == NULL) {
        return 0;
    }
    memcpy(img, data, size);
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
