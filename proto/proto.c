/* proto.c: the allocator bridge and bounded unpack around protoc-c's code. */
#include "proto/proto.h"

static void *pb_alloc(void *arg, size_t size)
{
    (void)arg;
    return moor_malloc(size);
}

static void pb_free(void *arg, void *ptr)
{
    (void)arg;
    moor_free(ptr);
}

ProtobufCAllocator moor_pb_allocator = {
    .alloc = pb_alloc,
    .free = pb_free,
    .allocator_data = NULL,
};

int moor_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                   size_t len, size_t max_len, ProtobufCMessage **out)
{
    *out = NULL;
    if (len > max_len) {
        return MOOR_ETOOBIG;
    }
    ProtobufCMessage *m =
        protobuf_c_message_unpack(desc, &moor_pb_allocator, len, data);
    if (m == NULL) {
        return MOOR_EPROTO;
    }
    *out = m;
    return MOOR_OK;
}

int moor_pb_pack(const ProtobufCMessage *msg, struct moor_buf *buf)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n == 0) {
        return MOOR_OK; /* an empty message; buf may still have no memory */
    }
    int rv = moor_buf_reserve(buf, n);
    if (rv != MOOR_OK) {
        return rv;
    }
    size_t w = protobuf_c_message_pack(msg, buf->ptr + buf->len);
    MOOR_ASSERT(w == n);
    buf->len += w;
    return MOOR_OK;
}
