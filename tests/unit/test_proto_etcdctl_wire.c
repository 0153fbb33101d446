/*
 * test_proto_etcdctl_wire.c: decode the request bytes Debian's etcdctl 3.4
 * really sends (captured by tests/compat/capture_etcdctl.py into
 * $MOOR_BUILD_DIR/compat-captures) with moor's generated code, and check
 * every field against what the command line asked for. A field number or
 * type that differs from etcd's shows up here as a wrong or missing value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "proto/proto.h"

struct capture
{
    char method[128];
    uint8_t *data;
    size_t len;
};

/* Loads NAME.method and NAME.bin; fails the test when either is missing. */
static void capture_load(const char *name, struct capture *c)
{
    const char *dir = getenv("MOOR_BUILD_DIR");
    assert_non_null(dir);
    char path[1024];
    snprintf(path, sizeof(path), "%s/compat-captures/%s.method", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fail_msg("missing capture %s (run compat_capture_etcdctl)", path);
    }
    assert_non_null(fgets(c->method, sizeof(c->method), f));
    c->method[strcspn(c->method, "\n")] = '\0';
    fclose(f);
    snprintf(path, sizeof(path), "%s/compat-captures/%s.bin", dir, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    c->data = malloc(65536);
    assert_non_null(c->data);
    c->len = fread(c->data, 1, 65536, f);
    fclose(f);
}

static void capture_free(struct capture *c)
{
    free(c->data);
}

static void assert_bytes(ProtobufCBinaryData b, const char *want, size_t n)
{
    assert_int_equal(b.len, n);
    if (n > 0) {
        assert_memory_equal(b.data, want, n);
    }
}
#define ASSERT_BYTES(b, lit) assert_bytes((b), (lit), sizeof(lit) - 1)

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d,
                                const struct capture *c)
{
    ProtobufCMessage *m = NULL;
    assert_int_equal(moor_pb_unpack(d, c->data, c->len, 1 << 20, &m), MOOR_OK);
    /* Nothing etcdctl sent is unknown to our schema. */
    assert_int_equal(m->n_unknown_fields, 0);
    return m;
}

static void free_msg(ProtobufCMessage *m)
{
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
}

/* etcdctl put foo bar --lease=1234abcd --prev-kv */
static void test_etcdctl_put_with_lease_and_prev_kv_decodes(void **state)
{
    (void)state;
    struct capture c;
    capture_load("put", &c);
    assert_string_equal(c.method, "/etcdserverpb.KV/Put");
    Etcdserverpb__PutRequest *r = (Etcdserverpb__PutRequest *)unpack(
        &etcdserverpb__put_request__descriptor, &c);
    ASSERT_BYTES(r->key, "foo");
    ASSERT_BYTES(r->value, "bar");
    assert_int_equal(r->lease, 0x1234abcd);
    assert_true(r->prev_kv);
    assert_false(r->ignore_value);
    assert_false(r->ignore_lease);
    free_msg(&r->base);
    capture_free(&c);
}

/* etcdctl get a z --limit=10 --rev=7 --order=DESCEND --sort-by=MODIFY
 * --keys-only */
static void test_etcdctl_get_range_limit_rev_sort_decodes(void **state)
{
    (void)state;
    struct capture c;
    capture_load("get", &c);
    assert_string_equal(c.method, "/etcdserverpb.KV/Range");
    Etcdserverpb__RangeRequest *r = (Etcdserverpb__RangeRequest *)unpack(
        &etcdserverpb__range_request__descriptor, &c);
    ASSERT_BYTES(r->key, "a");
    ASSERT_BYTES(r->range_end, "z");
    assert_int_equal(r->limit, 10);
    assert_int_equal(r->revision, 7);
    assert_int_equal(r->sort_order,
                     ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND);
    assert_int_equal(r->sort_target,
                     ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD);
    assert_true(r->keys_only);
    assert_false(r->serializable);
    assert_false(r->count_only);
    assert_int_equal(r->min_mod_revision, 0);
    assert_int_equal(r->max_create_revision, 0);
    free_msg(&r->base);
    capture_free(&c);
}

/* etcdctl get pre --prefix --consistency=s */
static void test_etcdctl_get_prefix_serializable_decodes(void **state)
{
    (void)state;
    struct capture c;
    capture_load("get_prefix", &c);
    assert_string_equal(c.method, "/etcdserverpb.KV/Range");
    Etcdserverpb__RangeRequest *r = (Etcdserverpb__RangeRequest *)unpack(
        &etcdserverpb__range_request__descriptor, &c);
    ASSERT_BYTES(r->key, "pre");
    ASSERT_BYTES(r->range_end, "prf"); /* prefix end: last byte + 1 */
    assert_true(r->serializable);
    assert_int_equal(r->limit, 0);
    assert_int_equal(r->sort_order,
                     ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE);
    free_msg(&r->base);
    capture_free(&c);
}

/* etcdctl del k1 k9 --prev-kv, and del k --from-key */
static void test_etcdctl_delete_range_forms_decode(void **state)
{
    (void)state;
    struct capture c;
    capture_load("del", &c);
    assert_string_equal(c.method, "/etcdserverpb.KV/DeleteRange");
    Etcdserverpb__DeleteRangeRequest *r =
        (Etcdserverpb__DeleteRangeRequest *)unpack(
            &etcdserverpb__delete_range_request__descriptor, &c);
    ASSERT_BYTES(r->key, "k1");
    ASSERT_BYTES(r->range_end, "k9");
    assert_true(r->prev_kv);
    free_msg(&r->base);
    capture_free(&c);

    capture_load("del_from_key", &c);
    r = (Etcdserverpb__DeleteRangeRequest *)unpack(
        &etcdserverpb__delete_range_request__descriptor, &c);
    ASSERT_BYTES(r->key, "k");
    assert_bytes(r->range_end, "\0", 1); /* "from key" */
    assert_false(r->prev_kv);
    free_msg(&r->base);
    capture_free(&c);
}

static void assert_compare(const Etcdserverpb__Compare *cmp, int result,
                           int target, const char *key)
{
    assert_int_equal(cmp->result, result);
    assert_int_equal(cmp->target, target);
    assert_bytes(cmp->key, key, strlen(key));
    assert_int_equal(cmp->range_end.len, 0);
}

/* etcdctl txn with four compares, two success ops and one failure op. */
static void test_etcdctl_txn_with_compares_decodes(void **state)
{
    (void)state;
    struct capture c;
    capture_load("txn", &c);
    assert_string_equal(c.method, "/etcdserverpb.KV/Txn");
    Etcdserverpb__TxnRequest *t = (Etcdserverpb__TxnRequest *)unpack(
        &etcdserverpb__txn_request__descriptor, &c);
    assert_int_equal(t->n_compare, 4);

    /* mod("key1") > "0": a oneof member set to zero is still present. */
    assert_compare(t->compare[0],
                   ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER,
                   ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD, "key1");
    assert_int_equal(t->compare[0]->target_union_case,
                     ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION);
    assert_int_equal(t->compare[0]->mod_revision, 0);

    /* value("key2") = "v2" */
    assert_compare(t->compare[1], ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL,
                   ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE, "key2");
    assert_int_equal(t->compare[1]->target_union_case,
                     ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE);
    ASSERT_BYTES(t->compare[1]->value, "v2");

    /* create("key3") < "9" */
    assert_compare(t->compare[2], ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS,
                   ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE, "key3");
    assert_int_equal(t->compare[2]->target_union_case,
                     ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION);
    assert_int_equal(t->compare[2]->create_revision, 9);

    /* ver("key4") != "3" */
    assert_compare(t->compare[3],
                   ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL,
                   ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION, "key4");
    assert_int_equal(t->compare[3]->target_union_case,
                     ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION);
    assert_int_equal(t->compare[3]->version, 3);

    /* success: put key1 "new"; get key2 */
    assert_int_equal(t->n_success, 2);
    assert_int_equal(t->success[0]->request_case,
                     ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT);
    ASSERT_BYTES(t->success[0]->request_put->key, "key1");
    ASSERT_BYTES(t->success[0]->request_put->value, "new");
    assert_int_equal(t->success[1]->request_case,
                     ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE);
    ASSERT_BYTES(t->success[1]->request_range->key, "key2");
    assert_int_equal(t->success[1]->request_range->range_end.len, 0);

    /* failure: del key1 */
    assert_int_equal(t->n_failure, 1);
    assert_int_equal(t->failure[0]->request_case,
                     ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE);
    ASSERT_BYTES(t->failure[0]->request_delete_range->key, "key1");

    /* Re-encoding gives back etcdctl's exact bytes. */
    struct moor_buf b;
    moor_buf_init(&b);
    assert_int_equal(moor_pb_pack(&t->base, &b), MOOR_OK);
    assert_int_equal(b.len, c.len);
    assert_memory_equal(b.ptr, c.data, c.len);
    moor_buf_close(&b);
    free_msg(&t->base);
    capture_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etcdctl_put_with_lease_and_prev_kv_decodes),
        cmocka_unit_test(test_etcdctl_get_range_limit_rev_sort_decodes),
        cmocka_unit_test(test_etcdctl_get_prefix_serializable_decodes),
        cmocka_unit_test(test_etcdctl_delete_range_forms_decode),
        cmocka_unit_test(test_etcdctl_txn_with_compares_decodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
