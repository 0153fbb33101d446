/*
 * fuzz_cli_txn.c: arbitrary bytes as moorctl's txn input (etcdctl's txn
 * grammar read from stdin). No input may crash, read out of bounds or
 * leak: moor_alloc_bytes returns to where it was. A txn that parses must
 * encode, and its encoding must decode as a TxnRequest with the same
 * numbers of compares and ops.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input
{
    const uint8_t *p;
    size_t len;
};

static int next_line(void *arg, struct moor_buf *line)
{
    struct input *in = arg;
    if (in->len == 0) {
        return MOOR_ENOENT;
    }
    size_t n = 0;
    while (n < in->len && in->p[n] != '\n') {
        n++;
    }
    if (n == in->len) {
        return MOOR_ENOENT; /* a last line without newline: EOF */
    }
    if (n > MC_LINE_MAX) {
        return MOOR_ETOOBIG;
    }
    int rv = moor_buf_append(line, in->p, n);
    in->p += n + 1;
    in->len -= n + 1;
    return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t before = moor_alloc_bytes();
    struct mc_arena a;
    struct input in = {data, size};
    Etcdserverpb__TxnRequest req;
    char err[MOOR_ERRMSG_SIZE];
    mc_arena_init(&a);
    if (mc_txn_read(&a, next_line, &in, NULL, &req, err) == MOOR_OK) {
        struct moor_buf b;
        moor_buf_init(&b);
        if (moor_pb_pack(&req.base, &b) != MOOR_OK) {
            abort();
        }
        ProtobufCMessage *m = NULL;
        if (moor_pb_unpack(&etcdserverpb__txn_request__descriptor, b.ptr, b.len,
                           SIZE_MAX, &m) != MOOR_OK) {
            abort();
        }
        Etcdserverpb__TxnRequest *d = (Etcdserverpb__TxnRequest *)m;
        if (d->n_compare != req.n_compare || d->n_success != req.n_success ||
            d->n_failure != req.n_failure) {
            abort();
        }
        protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
        moor_buf_close(&b);
    }
    mc_arena_close(&a);
    if (moor_alloc_bytes() != before) {
        abort();
    }
    return 0;
}
