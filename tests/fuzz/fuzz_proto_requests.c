/*
 * fuzz_proto_requests.c: arbitrary bytes decoded as any etcd client request
 * or moor peer frame. The first byte picks the message type. A decode that
 * succeeds must re-encode and decode again to the same size, and all memory
 * must come back (moor_alloc_bytes returns to where it was).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const types[] = {
    &etcdserverpb__range_request__descriptor,
    &etcdserverpb__put_request__descriptor,
    &etcdserverpb__delete_range_request__descriptor,
    &etcdserverpb__txn_request__descriptor,
    &etcdserverpb__compaction_request__descriptor,
    &etcdserverpb__watch_request__descriptor,
    &etcdserverpb__lease_grant_request__descriptor,
    &etcdserverpb__lease_keep_alive_request__descriptor,
    &etcdserverpb__member_add_request__descriptor,
    &etcdserverpb__alarm_request__descriptor,
    &etcdserverpb__auth_role_grant_permission_request__descriptor,
    &moorpb__frame__descriptor,
    &moorpb__internal_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const ProtobufCMessageDescriptor *d =
        types[data[0] % (sizeof(types) / sizeof(types[0]))];
    size_t before = moor_alloc_bytes();
    ProtobufCMessage *m = NULL;
    if (moor_pb_unpack(d, data + 1, size - 1, 1 << 20, &m) != MOOR_OK) {
        if (moor_alloc_bytes() != before) {
            abort(); /* a failed decode leaked */
        }
        return 0;
    }
    struct moor_buf b;
    moor_buf_init(&b);
    if (moor_pb_pack(m, &b) != MOOR_OK) {
        abort();
    }
    ProtobufCMessage *again = NULL;
    if (moor_pb_unpack(d, b.ptr, b.len, b.len, &again) != MOOR_OK) {
        abort();
    }
    if (protobuf_c_message_get_packed_size(again) != b.len) {
        abort();
    }
    protobuf_c_message_free_unpacked(again, &moor_pb_allocator);
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
    moor_buf_close(&b);
    if (moor_alloc_bytes() != before) {
        abort();
    }
    return 0;
}
