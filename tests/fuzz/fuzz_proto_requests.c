/*
 * fuzz_proto_requests.c: arbitrary bytes decoded as any etcd client request
 * or moor peer frame. The first byte picks the message type. No input may
 * crash or leak (moor_alloc_bytes returns to where it was). A decode that
 * succeeds with no unknown fields anywhere must re-encode and decode again
 * to the same size. (protobuf-c keeps unknown fields, even ones with the
 * invalid field number 0 that Go's decoder refuses; re-encoding those need
 * not decode, and moord ignores unknown fields.)
 */
#include <stdbool.h>
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

/* True when m or any message inside it kept unknown fields. */
static bool has_unknown(const ProtobufCMessage *m)
{
    if (m->n_unknown_fields > 0) {
        return true;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const uint8_t *base = (const uint8_t *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *arr =
                *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++) {
                if (has_unknown(arr[k])) {
                    return true;
                }
            }
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id) {
            continue;
        }
        const ProtobufCMessage *sub =
            *(ProtobufCMessage *const *)(base + f->offset);
        if (sub != NULL && has_unknown(sub)) {
            return true;
        }
    }
    return false;
}

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
    if (!has_unknown(m)) {
        ProtobufCMessage *again = NULL;
        if (moor_pb_unpack(d, b.ptr, b.len, b.len, &again) != MOOR_OK) {
            abort();
        }
        if (protobuf_c_message_get_packed_size(again) != b.len) {
            abort();
        }
        protobuf_c_message_free_unpacked(again, &moor_pb_allocator);
    }
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
    moor_buf_close(&b);
    if (moor_alloc_bytes() != before) {
        abort();
    }
    return 0;
}
