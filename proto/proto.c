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

static void *scratch_alloc(void *arg, size_t size)
{
    struct moor_pb_scratch *s = arg;
    /* 16-byte steps keep every block aligned as malloc's are. */
    size_t need = (size + 15u) & ~(size_t)15u;
    if (need >= size && need <= s->size - s->used) {
        void *p = s->base + s->used;
        s->used += need;
        return p;
    }
    return moor_malloc(size);
}

static void scratch_free(void *arg, void *ptr)
{
    struct moor_pb_scratch *s = arg;
    uint8_t *p = ptr;
    if (p >= s->base && p < s->base + s->size) {
        return; /* bump memory: goes with the scratch */
    }
    moor_free(ptr);
}

void moor_pb_scratch_init(struct moor_pb_scratch *s, void *mem, size_t size)
{
    /* Round the start up to 16 bytes; the rest is usable. */
    uintptr_t a = (uintptr_t)mem;
    size_t skip = (size_t)((16u - (a & 15u)) & 15u);
    s->base = (uint8_t *)mem + MOOR_MIN(skip, size);
    s->size = size - MOOR_MIN(skip, size);
    s->used = 0;
    s->alloc.alloc = scratch_alloc;
    s->alloc.free = scratch_free;
    s->alloc.allocator_data = s;
}

int moor_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                   size_t len, size_t max_len, ProtobufCMessage **out)
{
    return moor_pb_unpack_with(desc, &moor_pb_allocator, data, len, max_len,
                               out);
}

int moor_pb_unpack_with(const ProtobufCMessageDescriptor *desc,
                        ProtobufCAllocator *allocator, const uint8_t *data,
                        size_t len, size_t max_len, ProtobufCMessage **out)
{
    *out = NULL;
    if (len > max_len) {
        return MOOR_ETOOBIG;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, allocator, len, data);
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
