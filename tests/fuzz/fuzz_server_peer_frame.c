/*
 * fuzz_server_peer_frame.c: what a member does with the bytes a peer
 * sends, off the loop: split frames off the input (length prefix and
 * moorpb.Frame, srv_peer_frame_next), convert each raft message to raft's
 * form (srv_peer_msg_decode, the bounds raft relies on), and encode it
 * back (srv_peer_encode). Checks that a frame never claims more bytes than
 * the input has, that a decoded message respects the bounds, and that what
 * decodes re-encodes and decodes to the same message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "server/peer_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const Moorpb__Message *pm)
{
    struct raft_message m;
    int rv = srv_peer_msg_decode(pm, &m);
    if (rv == MOOR_OK) {
        if (m.n_entries > SRV_PEER_ENTRIES_MAX ||
            m.snapshot.conf.n > RAFT_MEMBERS_MAX || m.type < RAFT_MSG_APPEND ||
            m.type > RAFT_MSG_READ_INDEX_RESP) {
            abort();
        }
        struct moor_buf b;
        moor_buf_init(&b);
        if (srv_peer_encode(&m, &b) == MOOR_OK) {
            Moorpb__Frame *f = NULL;
            size_t used = 0;
            if (srv_peer_frame_next(b.ptr, b.len, &used, &f) != MOOR_OK ||
                used != b.len || f->body_case != MOORPB__FRAME__BODY_MESSAGE) {
                abort();
            }
            struct raft_message m2;
            if (srv_peer_msg_decode(f->message, &m2) != MOOR_OK ||
                m2.type != m.type || m2.term != m.term || m2.index != m.index ||
                m2.n_entries != m.n_entries ||
                m2.snapshot.conf.n != m.snapshot.conf.n) {
                abort();
            }
            srv_peer_msg_release(&m2);
            protobuf_c_message_free_unpacked(&f->base, &moor_pb_allocator);
        }
        moor_buf_close(&b);
    }
    srv_peer_msg_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        Moorpb__Frame *f = NULL;
        size_t used = 0;
        int rv = srv_peer_frame_next(data + off, size - off, &used, &f);
        if (rv != MOOR_OK) {
            break; /* EAGAIN, or the connection would close */
        }
        if (used < 5 || used > size - off) {
            abort();
        }
        if (f->body_case == MOORPB__FRAME__BODY_MESSAGE) {
            check_message(f->message);
        }
        protobuf_c_message_free_unpacked(&f->base, &moor_pb_allocator);
        off += used;
    }
    return 0;
}
