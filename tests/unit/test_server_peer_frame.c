/*
 * test_server_peer_frame.c: the peer frame decoder's answers on bad input
 * (what makes peer.c close a connection) and the round trip of raft
 * messages through moorpb.Message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/peer_int.h"

static void frame_of(const ProtobufCMessage *m, struct moor_buf *out)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    assert_int_equal(moor_buf_reserve(out, 4 + len), MOOR_OK);
    moor_put_be32(out->ptr + out->len, (uint32_t)len);
    protobuf_c_message_pack(m, out->ptr + out->len + 4);
    out->len += 4 + len;
}

static void test_peer_frame_length_prefix_bounds(void **state)
{
    (void)state;
    Moorpb__Frame *f = NULL;
    size_t used = 0;
    uint8_t zero[8] = {0, 0, 0, 0, 1, 2, 3, 4};
    assert_int_equal(srv_peer_frame_next(zero, sizeof(zero), &used, &f),
                     MOOR_ETOOBIG);
    uint8_t huge[8];
    moor_put_be32(huge, SRV_PEER_FRAME_MAX + 1);
    assert_int_equal(srv_peer_frame_next(huge, sizeof(huge), &used, &f),
                     MOOR_ETOOBIG);
    uint8_t partial[6] = {0, 0, 0, 9, 0x12, 0x00};
    assert_int_equal(srv_peer_frame_next(partial, 3, &used, &f), MOOR_EAGAIN);
    assert_int_equal(srv_peer_frame_next(partial, sizeof(partial), &used, &f),
                     MOOR_EAGAIN);
    assert_null(f);
}

static void test_peer_frame_refuses_garbage_and_empty_frames(void **state)
{
    (void)state;
    Moorpb__Frame *f = NULL;
    size_t used = 0;
    uint8_t garbage[9] = {0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(srv_peer_frame_next(garbage, sizeof(garbage), &used, &f),
                     MOOR_EPROTO);
    /* A well-formed Frame with no body (an unknown field only). */
    uint8_t empty[6] = {0, 0, 0, 2, 0x78, 0x01};
    assert_int_equal(srv_peer_frame_next(empty, 6, &used, &f), MOOR_EPROTO);
}

static void test_peer_message_round_trips(void **state)
{
    (void)state;
    struct raft_entry e[2];
    memset(e, 0, sizeof(e));
    e[0].term = 3;
    e[0].index = 10;
    e[0].data = moor_bytes_copy("put", 3);
    e[1].term = 3;
    e[1].index = 11;
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = 3;
    m.log_term = 2;
    m.index = 9;
    m.commit = 8;
    m.entries = e;
    m.n_entries = 2;
    struct moor_buf b;
    moor_buf_init(&b);
    assert_int_equal(srv_peer_encode(&m, &b), MOOR_OK);
    assert_int_equal(srv_peer_encode(&m, &b), MOOR_OK);
    size_t off = 0;
    for (int k = 0; k < 2; k++) {
        Moorpb__Frame *f = NULL;
        size_t used = 0;
        assert_int_equal(
            srv_peer_frame_next(b.ptr + off, b.len - off, &used, &f), MOOR_OK);
        off += used;
        assert_int_equal(f->body_case, MOORPB__FRAME__BODY_MESSAGE);
        struct raft_message d;
        assert_int_equal(srv_peer_msg_decode(f->message, &d), MOOR_OK);
        assert_int_equal(d.type, RAFT_MSG_APPEND);
        assert_int_equal(d.from, 1);
        assert_int_equal(d.index, 9);
        assert_int_equal(d.commit, 8);
        assert_int_equal(d.n_entries, 2);
        assert_int_equal(d.entries[1].index, 11);
        assert_int_equal(d.entries[0].data->len, 3);
        assert_memory_equal(d.entries[0].data->data, "put", 3);
        assert_null(d.entries[1].data);
        srv_peer_msg_release(&d);
        protobuf_c_message_free_unpacked(&f->base, &moor_pb_allocator);
    }
    assert_int_equal(off, b.len);
    moor_buf_close(&b);
    moor_bytes_unref(e[0].data);
}

static void test_peer_message_bounds_are_refused(void **state)
{
    (void)state;
    struct raft_message d;
    Moorpb__Message pm = MOORPB__MESSAGE__INIT;
    pm.type = (Moorpb__MessageType)99; /* unknown type */
    assert_int_equal(srv_peer_msg_decode(&pm, &d), MOOR_EPROTO);
    srv_peer_msg_release(&d);
    pm.type = MOORPB__MESSAGE_TYPE__MSG_UNSPECIFIED;
    assert_int_equal(srv_peer_msg_decode(&pm, &d), MOOR_EPROTO);
    srv_peer_msg_release(&d);
    /* A snapshot naming more members than raft holds. */
    uint64_t ids[RAFT_MEMBERS_MAX + 1];
    for (size_t i = 0; i < MOOR_ARRAY_LEN(ids); i++) {
        ids[i] = i + 1;
    }
    Moorpb__ConfState cs = MOORPB__CONF_STATE__INIT;
    cs.voters = ids;
    cs.n_voters = RAFT_MEMBERS_MAX;
    cs.learners = ids;
    cs.n_learners = 1;
    Moorpb__SnapshotMeta sm = MOORPB__SNAPSHOT_META__INIT;
    sm.index = 5;
    sm.term = 1;
    sm.conf = &cs;
    pm.type = MOORPB__MESSAGE_TYPE__MSG_SNAP;
    pm.snapshot = &sm;
    assert_int_equal(srv_peer_msg_decode(&pm, &d), MOOR_EPROTO);
    srv_peer_msg_release(&d);
    cs.n_learners = 0;
    assert_int_equal(srv_peer_msg_decode(&pm, &d), MOOR_OK);
    assert_int_equal(d.snapshot.conf.n, RAFT_MEMBERS_MAX);
    assert_int_equal(d.snapshot.index, 5);
    srv_peer_msg_release(&d);
    /* The same frame through the byte decoder. */
    Moorpb__Frame f = MOORPB__FRAME__INIT;
    f.body_case = MOORPB__FRAME__BODY_MESSAGE;
    f.message = &pm;
    struct moor_buf b;
    moor_buf_init(&b);
    frame_of(&f.base, &b);
    Moorpb__Frame *got = NULL;
    size_t used = 0;
    assert_int_equal(srv_peer_frame_next(b.ptr, b.len, &used, &got), MOOR_OK);
    assert_int_equal(used, b.len);
    protobuf_c_message_free_unpacked(&got->base, &moor_pb_allocator);
    moor_buf_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_frame_length_prefix_bounds),
        cmocka_unit_test(test_peer_frame_refuses_garbage_and_empty_frames),
        cmocka_unit_test(test_peer_message_round_trips),
        cmocka_unit_test(test_peer_message_bounds_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
