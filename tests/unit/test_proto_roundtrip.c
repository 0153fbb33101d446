/*
 * test_proto_roundtrip.c: every API message survives encode and decode.
 *
 * Reflection over protoc-c's descriptors fills every field of every message
 * reachable from the six etcd services and moor's own roots (scalars with
 * values that need full width and sign, bytes, strings, enums, nested and
 * repeated messages, each member of each oneof in turn), encodes it, decodes
 * it and compares field by field. Golden bytes pin a few encodings to
 * protobuf's wire format by hand, including Compare.range_end's tag 64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "proto/proto.h"

/* Every block the filler allocates, freed at the end of a case. */
static void *arena[65536];
static size_t arena_len;

static void *arena_alloc(size_t n)
{
    assert_true(arena_len < MOOR_ARRAY_LEN(arena));
    void *p = calloc(1, n == 0 ? 1 : n);
    assert_non_null(p);
    arena[arena_len++] = p;
    return p;
}

static void arena_free(void)
{
    while (arena_len > 0) {
        free(arena[--arena_len]);
    }
}

#define MAX_DEPTH 4

static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d,
                              unsigned seed, int depth);

/* Writes one value of field f at p (p points at the member, or at an array
 * element for repeated fields). */
static void fill_value(const ProtobufCFieldDescriptor *f, void *p,
                       unsigned seed, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)p = -(int32_t)(seed % 1000) - 1;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)p = 0xfedcba98u - seed;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)p = (seed % 2 == 0) ? -(int64_t)seed * 1000003 - 1
                                        : INT64_MAX - (int64_t)seed;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)p = UINT64_MAX - seed * 0x100000001ull;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)p = (float)seed + 0.5f;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)p = (double)seed + 0.25;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)p = 1;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        *(int *)p = e->values[(seed + 1) % e->n_values].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *s = arena_alloc(32);
        snprintf(s, 32, "%s-%u", f->name, seed);
        *(char **)p = s;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        b->len = 3 + seed % 5;
        b->data = arena_alloc(b->len);
        for (size_t i = 0; i < b->len; i++) {
            b->data[i] = (uint8_t)(0xff - i - seed); /* not UTF-8 */
        }
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)p = fill(f->descriptor, seed + 1, depth + 1);
        break;
    default:
        fail_msg("unexpected field type %d", f->type);
    }
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static bool is_oneof(const ProtobufCFieldDescriptor *f)
{
    return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
}

/* Number of members in the oneof starting at field index i. */
static unsigned oneof_members(const ProtobufCMessageDescriptor *d, unsigned i)
{
    unsigned n = 0;
    while (i + n < d->n_fields && is_oneof(&d->fields[i + n]) &&
           d->fields[i + n].quantifier_offset ==
               d->fields[i].quantifier_offset) {
        n++;
    }
    return n;
}

static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d,
                              unsigned seed, int depth)
{
    if (depth > MAX_DEPTH) {
        return NULL;
    }
    ProtobufCMessage *m = arena_alloc(d->sizeof_message);
    d->message_init(m);
    uint8_t *base = (uint8_t *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (is_oneof(f)) {
            /* Set one member per oneof, a different one per seed. */
            unsigned n = oneof_members(d, i);
            const ProtobufCFieldDescriptor *pick = &d->fields[i + seed % n];
            if (pick->type == PROTOBUF_C_TYPE_MESSAGE && depth >= MAX_DEPTH) {
                i += n - 1;
                continue;
            }
            *(uint32_t *)(base + pick->quantifier_offset) = pick->id;
            fill_value(pick, base + pick->offset, seed, depth);
            i += n - 1;
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= MAX_DEPTH) {
                continue;
            }
            size_t n = 2;
            size_t sz = value_size(f);
            uint8_t *arr = arena_alloc(n * sz);
            for (size_t k = 0; k < n; k++) {
                fill_value(f, arr + k * sz, seed + (unsigned)k, depth);
            }
            *(size_t *)(base + f->quantifier_offset) = n;
            *(void **)(base + f->offset) = arr;
            continue;
        }
        fill_value(f, base + f->offset, seed, depth);
    }
    return m;
}

static void compare_msg(const ProtobufCMessageDescriptor *d,
                        const ProtobufCMessage *a, const ProtobufCMessage *b);

static void compare_value(const ProtobufCFieldDescriptor *f, const void *a,
                          const void *b)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        assert_string_equal(*(char *const *)a, *(char *const *)b);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *x = a, *y = b;
        assert_int_equal(x->len, y->len);
        assert_memory_equal(x->data, y->data, x->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *x = *(ProtobufCMessage *const *)a;
        const ProtobufCMessage *y = *(ProtobufCMessage *const *)b;
        assert_true((x == NULL) == (y == NULL));
        if (x != NULL) {
            compare_msg(f->descriptor, x, y);
        }
        break;
    }
    default:
        if (memcmp(a, b, value_size(f)) != 0) {
            fail_msg("field %s differs after round trip", f->name);
        }
    }
}

static void compare_msg(const ProtobufCMessageDescriptor *d,
                        const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    assert_ptr_equal(a->descriptor, d);
    assert_ptr_equal(b->descriptor, d);
    const uint8_t *pa = (const uint8_t *)a, *pb = (const uint8_t *)b;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (is_oneof(f)) {
            uint32_t ca = *(const uint32_t *)(pa + f->quantifier_offset);
            uint32_t cb = *(const uint32_t *)(pb + f->quantifier_offset);
            assert_int_equal(ca, cb);
            if (ca == f->id) {
                compare_value(f, pa + f->offset, pb + f->offset);
            }
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t na = *(const size_t *)(pa + f->quantifier_offset);
            size_t nb = *(const size_t *)(pb + f->quantifier_offset);
            assert_int_equal(na, nb);
            size_t sz = value_size(f);
            const uint8_t *xa = *(uint8_t *const *)(pa + f->offset);
            const uint8_t *xb = *(uint8_t *const *)(pb + f->offset);
            for (size_t k = 0; k < na; k++) {
                compare_value(f, xa + k * sz, xb + k * sz);
            }
            continue;
        }
        compare_value(f, pa + f->offset, pb + f->offset);
    }
}

/* Messages already checked, so each is reported once. */
static const ProtobufCMessageDescriptor *seen[512];
static size_t n_seen;

static void roundtrip(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < n_seen; i++) {
        if (seen[i] == d) {
            return;
        }
    }
    assert_true(n_seen < MOOR_ARRAY_LEN(seen));
    seen[n_seen++] = d;
    /* Enough seeds to visit every member of the widest oneof. */
    for (unsigned seed = 0; seed < 12; seed++) {
        ProtobufCMessage *m = fill(d, seed, 0);
        struct moor_buf buf;
        moor_buf_init(&buf);
        assert_int_equal(moor_pb_pack(m, &buf), MOOR_OK);
        ProtobufCMessage *out = NULL;
        assert_int_equal(moor_pb_unpack(d, buf.ptr, buf.len, buf.len, &out),
                         MOOR_OK);
        compare_msg(d, m, out);
        /* And the decoded copy encodes to the same bytes. */
        struct moor_buf again;
        moor_buf_init(&again);
        assert_int_equal(moor_pb_pack(out, &again), MOOR_OK);
        assert_int_equal(again.len, buf.len);
        assert_memory_equal(again.ptr, buf.ptr, buf.len);
        protobuf_c_message_free_unpacked(out, &moor_pb_allocator);
        moor_buf_close(&again);
        moor_buf_close(&buf);
        arena_free();
    }
    /* Nested messages get their own pass. */
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) {
            roundtrip(d->fields[i].descriptor);
        }
    }
}

static void test_every_service_message_round_trips(void **state)
{
    (void)state;
    const ProtobufCServiceDescriptor *services[] = {
        &etcdserverpb__kv__descriptor,
        &etcdserverpb__watch__descriptor,
        &etcdserverpb__lease__descriptor,
        &etcdserverpb__cluster__descriptor,
        &etcdserverpb__maintenance__descriptor,
        &etcdserverpb__auth__descriptor,
    };
    unsigned methods = 0;
    for (size_t s = 0; s < MOOR_ARRAY_LEN(services); s++) {
        for (unsigned i = 0; i < services[s]->n_methods; i++) {
            roundtrip(services[s]->methods[i].input);
            roundtrip(services[s]->methods[i].output);
            methods++;
        }
    }
    /* KV 5, Watch 1, Lease 5, Cluster 5, Maintenance 8, Auth 17. */
    assert_int_equal(methods, 41);
    const ProtobufCMessageDescriptor *moor_roots[] = {
        &moorpb__frame__descriptor,
        &moorpb__internal_request__descriptor,
        &moorpb__hard_state__descriptor,
        &moorpb__conf_change__descriptor,
        &etcdserverpb__lease_checkpoint_request__descriptor,
        &authpb__user__descriptor,
        &authpb__role__descriptor,
    };
    for (size_t i = 0; i < MOOR_ARRAY_LEN(moor_roots); i++) {
        roundtrip(moor_roots[i]);
    }
    printf("round-tripped %zu message types\n", n_seen);
    assert_true(n_seen >= 90);
}

static void assert_packs_to(const ProtobufCMessage *m, const char *want,
                            size_t n)
{
    struct moor_buf b;
    moor_buf_init(&b);
    assert_int_equal(moor_pb_pack(m, &b), MOOR_OK);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.ptr, want, n);
    moor_buf_close(&b);
}

static void test_golden_encodings_match_protobuf_wire_format(void **state)
{
    (void)state;
    /* PutRequest{key:"foo", value:"bar", lease:5}: tags 0x0a, 0x12, 0x18. */
    uint8_t foo[] = "foo", bar[] = "bar", z[] = "z";
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key.data = foo;
    put.key.len = 3;
    put.value.data = bar;
    put.value.len = 3;
    put.lease = 5;
    assert_packs_to(&put.base,
                    "\x0a\x03"
                    "foo"
                    "\x12\x03"
                    "bar"
                    "\x18\x05",
                    12);

    /* Compare.range_end is field 64: tag (64 << 3 | 2) = 0x202 = 82 04. */
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.range_end.data = z;
    cmp.range_end.len = 1;
    assert_packs_to(&cmp.base, "\x82\x04\x01z", 4);

    /* WatchResponse.events is field 11: tag 0x5a. */
    Mvccpb__Event ev = MVCCPB__EVENT__INIT;
    Mvccpb__Event *evs[1] = {&ev};
    Etcdserverpb__WatchResponse wr = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    wr.n_events = 1;
    wr.events = evs;
    assert_packs_to(&wr.base, "\x5a\x00", 2);

    /* A negative int64 (Compare.version = -1) is ten bytes of varint. */
    Etcdserverpb__Compare neg = ETCDSERVERPB__COMPARE__INIT;
    neg.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
    neg.version = -1;
    assert_packs_to(&neg.base, "\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                    11);

    /* ResponseHeader{cluster_id:1, member_id:2, revision:3, raft_term:4}. */
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.cluster_id = 1;
    h.member_id = 2;
    h.revision = 3;
    h.raft_term = 4;
    assert_packs_to(&h.base, "\x08\x01\x10\x02\x18\x03\x20\x04", 8);
}

static void test_bounded_unpack_refuses_oversize_and_garbage(void **state)
{
    (void)state;
    ProtobufCMessage *m = (ProtobufCMessage *)(uintptr_t)1;
    uint8_t big[64] = {0x0a, 62};
    assert_int_equal(moor_pb_unpack(&etcdserverpb__put_request__descriptor, big,
                                    sizeof(big), 16, &m),
                     MOOR_ETOOBIG);
    assert_null(m);
    /* A length prefix running past the end. */
    const uint8_t bad[] = {0x0a, 0x05, 'a'};
    assert_int_equal(moor_pb_unpack(&etcdserverpb__put_request__descriptor, bad,
                                    sizeof(bad), 1024, &m),
                     MOOR_EPROTO);
    assert_null(m);
    /* A wire type that does not match the field (key as a varint). */
    const uint8_t wrong[] = {0x08, 0x01};
    assert_int_equal(moor_pb_unpack(&etcdserverpb__put_request__descriptor,
                                    wrong, sizeof(wrong), 1024, &m),
                     MOOR_EPROTO);
    /* Decoded messages are accounted in moor's allocator and freed. */
    size_t before = moor_alloc_bytes();
    const uint8_t ok[] = {0x0a, 0x01, 'k'};
    assert_int_equal(moor_pb_unpack(&etcdserverpb__put_request__descriptor, ok,
                                    sizeof(ok), 1024, &m),
                     MOOR_OK);
    assert_true(moor_alloc_bytes() > before);
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
    assert_int_equal(moor_alloc_bytes(), before);
}

/* Encodes an InternalRequest{id, put{key, value of vlen bytes}}. */
static size_t pack_put(uint8_t *out, size_t out_size, uint8_t *val, size_t vlen)
{
    memset(val, 'v', vlen);
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key.data = (uint8_t *)"some-key";
    put.key.len = 8;
    put.value.data = val;
    put.value.len = vlen;
    Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
    ir.id = 42;
    ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_PUT;
    ir.put = &put;
    size_t len = protobuf_c_message_get_packed_size(&ir.base);
    assert_true(len <= out_size);
    return protobuf_c_message_pack(&ir.base, out);
}

static void test_scratch_unpack_uses_given_memory_and_spills_the_rest(
    void **state)
{
    (void)state;
    static uint8_t val[4096];
    static uint8_t wire[8192];
    /* Odd start and size: the allocator aligns what it hands out. */
    uint8_t mem[1024 + 3];
    for (size_t vlen = 0; vlen <= 4096; vlen += 1024) {
        size_t len = pack_put(wire, sizeof(wire), val, vlen);
        struct moor_pb_scratch s;
        moor_pb_scratch_init(&s, mem + 3, sizeof(mem) - 3);
        size_t count = moor_alloc_count();
        size_t bytes = moor_alloc_bytes();
        ProtobufCMessage *m = NULL;
        assert_int_equal(
            moor_pb_unpack_with(&moorpb__internal_request__descriptor, &s.alloc,
                                wire, len, len, &m),
            MOOR_OK);
        const Moorpb__InternalRequest *ir = (const Moorpb__InternalRequest *)m;
        assert_true(((uintptr_t)ir & 15u) == 0);
        assert_true(((uintptr_t)ir->put & 15u) == 0);
        assert_int_equal(ir->id, 42);
        assert_int_equal(ir->request_case,
                         MOORPB__INTERNAL_REQUEST__REQUEST_PUT);
        assert_memory_equal(ir->put->key.data, "some-key", 8);
        assert_int_equal(ir->put->value.len, vlen);
        if (vlen > 0) {
            assert_memory_equal(ir->put->value.data, val, vlen);
        }
        /* A small request takes nothing from the heap; a large value goes
         * there and only it. */
        assert_int_equal(moor_alloc_count(), count + (vlen >= 1024 ? 1 : 0));
        protobuf_c_message_free_unpacked(m, &s.alloc);
        assert_int_equal(moor_alloc_count(), count);
        assert_int_equal(moor_alloc_bytes(), bytes);
    }
    /* Garbage after a spilled value: the partial message is freed. */
    size_t len = pack_put(wire, sizeof(wire), val, 4000);
    wire[len++] = 0x0a; /* field 1 as bytes: a wrong wire type for id */
    wire[len++] = 0x05;
    struct moor_pb_scratch s;
    moor_pb_scratch_init(&s, mem, sizeof(mem));
    size_t bytes = moor_alloc_bytes();
    ProtobufCMessage *m = NULL;
    assert_int_equal(moor_pb_unpack_with(&moorpb__internal_request__descriptor,
                                         &s.alloc, wire, len, len, &m),
                     MOOR_EPROTO);
    assert_null(m);
    assert_int_equal(moor_alloc_bytes(), bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_service_message_round_trips),
        cmocka_unit_test(test_golden_encodings_match_protobuf_wire_format),
        cmocka_unit_test(test_bounded_unpack_refuses_oversize_and_garbage),
        cmocka_unit_test(
            test_scratch_unpack_uses_given_memory_and_spills_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
