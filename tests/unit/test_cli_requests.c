/* test_cli_requests.c: the requests moorctl builds, byte for byte against
 * what Debian's etcdctl 3.4.23 sends for the same command line (golden
 * bytes recorded with tests/compat/capture_etcdctl.py), and etcdctl's txn
 * grammar: compares, ops, sections, quoting and its error texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "cli/cli_int.h"

#define S(lit) ((char *)(lit))

static void expect_packed(const ProtobufCMessage *m, const uint8_t *want,
                          size_t len)
{
    struct moor_buf b;
    moor_buf_init(&b);
    assert_int_equal(moor_pb_pack(m, &b), MOOR_OK);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.ptr, want, len);
    moor_buf_close(&b);
}

/* Parses argv against a flag table into opts, for the builders. */
static size_t parse(const struct mc_flag *flags, size_t n, void *opts,
                    char **argv, int argc, char **pos)
{
    struct mc_flagset set = {flags, n, opts};
    size_t npos;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(mc_flags_parse(argc, argv, &set, 1, pos, &npos, err),
                     MOOR_OK);
    return npos;
}

/* etcdctl get a z --limit=10 --rev=7 --order=DESCEND --sort-by=MODIFY
 * --keys-only */
static void test_cli_get_request_matches_etcdctl_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {0x0a, 0x01, 0x61, 0x12, 0x01, 0x7a,
                                   0x18, 0x0a, 0x20, 0x07, 0x28, 0x02,
                                   0x30, 0x03, 0x40, 0x01};
    static const uint8_t want_prefix[] = {0x0a, 0x03, 0x70, 0x72, 0x65, 0x12,
                                          0x03, 0x70, 0x72, 0x66, 0x38, 0x01};
    struct mc_arena a;
    mc_arena_init(&a);
    char *argv[] = {S("a"),
                    S("z"),
                    S("--limit=10"),
                    S("--rev=7"),
                    S("--order=DESCEND"),
                    S("--sort-by=MODIFY"),
                    S("--keys-only")};
    char *pos[MC_ARGS_MAX];
    struct mc_get_opts o = {0};
    size_t n = parse(mc_get_flags, mc_get_flags_len, &o, argv, 7, pos);
    Etcdserverpb__RangeRequest *r;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(mc_build_get(&a, pos, n, &o, &r, err), MOOR_OK);
    expect_packed(&r->base, want, sizeof(want));
    mc_opts_close(mc_get_flags, mc_get_flags_len, &o);

    char *argv2[] = {S("pre"), S("--prefix"), S("--consistency=s")};
    struct mc_get_opts o2 = {0};
    n = parse(mc_get_flags, mc_get_flags_len, &o2, argv2, 3, pos);
    assert_int_equal(mc_build_get(&a, pos, n, &o2, &r, err), MOOR_OK);
    expect_packed(&r->base, want_prefix, sizeof(want_prefix));
    mc_opts_close(mc_get_flags, mc_get_flags_len, &o2);
    mc_arena_close(&a);
}

static void test_cli_get_sort_by_key_ascending_is_sent_as_no_sort(void **state)
{
    (void)state;
    struct mc_arena a;
    mc_arena_init(&a);
    char *argv[] = {S("k"), S("--order=ascend"), S("--sort-by=key")};
    char *pos[MC_ARGS_MAX];
    struct mc_get_opts o = {0};
    size_t n = parse(mc_get_flags, mc_get_flags_len, &o, argv, 3, pos);
    Etcdserverpb__RangeRequest *r;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(mc_build_get(&a, pos, n, &o, &r, err), MOOR_OK);
    assert_int_equal(r->sort_order,
                     ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE);
    assert_int_equal(r->sort_target,
                     ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY);
    mc_opts_close(mc_get_flags, mc_get_flags_len, &o);
    mc_arena_close(&a);
}

static void test_cli_empty_key_with_prefix_means_whole_keyspace(void **state)
{
    (void)state;
    struct mc_arena a;
    mc_arena_init(&a);
    char *argv[] = {S(""), S("--prefix")};
    char *pos[MC_ARGS_MAX];
    struct mc_del_opts o = {0};
    size_t n = parse(mc_del_flags, mc_del_flags_len, &o, argv, 2, pos);
    Etcdserverpb__DeleteRangeRequest *r;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(mc_build_del(&a, pos, n, &o, &r, err), MOOR_OK);
    assert_int_equal(r->key.len, 1);
    assert_int_equal(r->key.data[0], 0);
    assert_int_equal(r->range_end.len, 1);
    assert_int_equal(r->range_end.data[0], 0);
    mc_arena_close(&a);
}

/* etcdctl put foo bar --lease=1234abcd --prev-kv; del k1 k9 --prev-kv;
 * del k --from-key */
static void test_cli_put_and_del_requests_match_etcdctl_bytes(void **state)
{
    (void)state;
    static const uint8_t want_put[] = {0x0a, 0x03, 0x66, 0x6f, 0x6f, 0x12,
                                       0x03, 0x62, 0x61, 0x72, 0x18, 0xcd,
                                       0xd7, 0xd2, 0x91, 0x01, 0x20, 0x01};
    static const uint8_t want_del[] = {0x0a, 0x02, 0x6b, 0x31, 0x12,
                                       0x02, 0x6b, 0x39, 0x18, 0x01};
    static const uint8_t want_from[] = {0x0a, 0x01, 0x6b, 0x12, 0x01, 0x00};
    struct mc_arena a;
    mc_arena_init(&a);
    char *pos[MC_ARGS_MAX];
    char err[MOOR_ERRMSG_SIZE];

    char *pa[] = {S("foo"), S("bar"), S("--lease=1234abcd"), S("--prev-kv")};
    struct mc_put_opts po = {0};
    size_t n = parse(mc_put_flags, mc_put_flags_len, &po, pa, 4, pos);
    Etcdserverpb__PutRequest *put;
    assert_int_equal(mc_build_put(&a, pos, n, &po, NULL, &put, err), MOOR_OK);
    expect_packed(&put->base, want_put, sizeof(want_put));
    mc_opts_close(mc_put_flags, mc_put_flags_len, &po);

    char *da[] = {S("k1"), S("k9"), S("--prev-kv")};
    struct mc_del_opts d = {0};
    n = parse(mc_del_flags, mc_del_flags_len, &d, da, 3, pos);
    Etcdserverpb__DeleteRangeRequest *del;
    assert_int_equal(mc_build_del(&a, pos, n, &d, &del, err), MOOR_OK);
    expect_packed(&del->base, want_del, sizeof(want_del));

    char *fa[] = {S("k"), S("--from-key")};
    struct mc_del_opts f = {0};
    n = parse(mc_del_flags, mc_del_flags_len, &f, fa, 2, pos);
    assert_int_equal(mc_build_del(&a, pos, n, &f, &del, err), MOOR_OK);
    expect_packed(&del->base, want_from, sizeof(want_from));
    mc_arena_close(&a);
}

static void test_cli_put_rejects_bad_lease_and_ignore_value_misuse(void **state)
{
    (void)state;
    struct mc_arena a;
    mc_arena_init(&a);
    char *pos[MC_ARGS_MAX];
    char err[MOOR_ERRMSG_SIZE];
    Etcdserverpb__PutRequest *put;
    char *pa[] = {S("k"), S("v"), S("--lease=xyz")};
    struct mc_put_opts po = {0};
    size_t n = parse(mc_put_flags, mc_put_flags_len, &po, pa, 3, pos);
    assert_int_equal(mc_build_put(&a, pos, n, &po, NULL, &put, err),
                     MOOR_EINVAL);
    assert_string_equal(err,
                        "bad lease ID (strconv.ParseInt: parsing "
                        "\"xyz\": invalid syntax), expecting ID in Hex");
    mc_opts_close(mc_put_flags, mc_put_flags_len, &po);
    char *pb[] = {S("k"), S("v"), S("--ignore-value")};
    struct mc_put_opts pi = {0};
    n = parse(mc_put_flags, mc_put_flags_len, &pi, pb, 3, pos);
    assert_int_equal(mc_build_put(&a, pos, n, &pi, NULL, &put, err),
                     MOOR_EINVAL);
    assert_string_equal(err,
                        "put command needs only 1 argument when "
                        "'ignore-value' is set");
    mc_arena_close(&a);
}

/* Lines of a string, for mc_txn_read. */
struct lines
{
    const char *p;
};

static int next_line(void *arg, struct moor_buf *line)
{
    struct lines *l = arg;
    const char *nl = strchr(l->p, '\n');
    if (nl == NULL) {
        return MOOR_ENOENT;
    }
    int rv = moor_buf_append(line, l->p, (size_t)(nl - l->p));
    l->p = nl + 1;
    return rv;
}

/* The txn of tests/compat/capture_etcdctl.py and etcdctl's bytes for it. */
static void test_cli_txn_request_matches_etcdctl_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x0a, 0x0c, 0x08, 0x01, 0x10, 0x02, 0x1a, 0x04, 0x6b, 0x65, 0x79, 0x31,
        0x30, 0x00, 0x0a, 0x0c, 0x10, 0x03, 0x1a, 0x04, 0x6b, 0x65, 0x79, 0x32,
        0x3a, 0x02, 0x76, 0x32, 0x0a, 0x0c, 0x08, 0x02, 0x10, 0x01, 0x1a, 0x04,
        0x6b, 0x65, 0x79, 0x33, 0x28, 0x09, 0x0a, 0x0a, 0x08, 0x03, 0x1a, 0x04,
        0x6b, 0x65, 0x79, 0x34, 0x20, 0x03, 0x12, 0x0d, 0x12, 0x0b, 0x0a, 0x04,
        0x6b, 0x65, 0x79, 0x31, 0x12, 0x03, 0x6e, 0x65, 0x77, 0x12, 0x08, 0x0a,
        0x06, 0x0a, 0x04, 0x6b, 0x65, 0x79, 0x32, 0x1a, 0x08, 0x1a, 0x06, 0x0a,
        0x04, 0x6b, 0x65, 0x79, 0x31};
    struct lines l = {
        "mod(\"key1\") > \"0\"\n"
        "value(\"key2\") = \"v2\"\n"
        "  create(\"key3\") < \"9\"  \n"
        "ver(\"key4\") != \"3\"\n"
        "\n"
        "put key1 \"new\"\n"
        "get key2\n"
        "\n"
        "del key1\n"
        "\n"};
    struct mc_arena a;
    mc_arena_init(&a);
    Etcdserverpb__TxnRequest req;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(mc_txn_read(&a, next_line, &l, NULL, &req, err), MOOR_OK);
    expect_packed(&req.base, want, sizeof(want));
    mc_arena_close(&a);
}

static void test_cli_txn_compare_targets_and_ops(void **state)
{
    (void)state;
    struct mc_arena a;
    mc_arena_init(&a);
    Etcdserverpb__Compare *c;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(
        mc_txn_parse_compare(&a, "lease(\"k\") == \"1f\"", &c, err), MOOR_OK);
    assert_int_equal(c->target, ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE);
    assert_int_equal(c->target_union_case,
                     ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE);
    assert_int_equal(c->lease, 0x1f);
    assert_int_equal(c->result, ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL);
    assert_int_equal(
        mc_txn_parse_compare(&a, "val(\"a b\") != \"x\\ty\"", &c, err),
        MOOR_OK);
    assert_int_equal(c->key.len, 3);
    assert_memory_equal(c->key.data, "a b", 3);
    assert_int_equal(c->value.len, 3);
    assert_memory_equal(c->value.data, "x\ty", 3);
    assert_int_equal(c->result,
                     ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL);
    assert_int_equal(mc_txn_parse_compare(&a, "c(\"k\") = \"12\"", &c, err),
                     MOOR_OK);
    assert_int_equal(c->create_revision, 12);
    assert_int_equal(mc_txn_parse_compare(&a, "m(\"k\") < \"3\"", &c, err),
                     MOOR_OK);
    assert_int_equal(c->mod_revision, 3);
    assert_int_equal(c->result, ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS);
    mc_arena_close(&a);
}

static void test_cli_txn_compare_errors_use_etcdctl_texts(void **state)
{
    (void)state;
    struct mc_arena a;
    mc_arena_init(&a);
    Etcdserverpb__Compare *c;
    char err[MOOR_ERRMSG_SIZE];
    struct
    {
        const char *line, *err;
    } cases[] = {
        {"put x y", "malformed comparison: put x y"},
        {"bogus(\"a\") = \"1\"",
         "malformed comparison: bogus(\"a\") = \"1\" (unknown target bogus)"},
        {"ver(\"a\") = \"x\"",
         "invalid txn compare request: ver(\"a\") = \"x\""},
        {"ver(a) = \"1\"", "malformed comparison: ver(a) = \"1\""},
        {"ver(\"a\") = 1", "malformed comparison: ver(\"a\") = 1"},
        {"ver(\"a\") ~ \"1\"",
         "malformed comparison: ver(\"a\") ~ \"1\" (unknown op ~)"},
    };
    for (size_t i = 0; i < MOOR_ARRAY_LEN(cases); i++) {
        assert_int_equal(mc_txn_parse_compare(&a, cases[i].line, &c, err),
                         MOOR_EINVAL);
        assert_string_equal(err, cases[i].err);
    }
    mc_arena_close(&a);
}

static void test_cli_txn_ops_take_their_commands_flags(void **state)
{
    (void)state;
    struct mc_arena a;
    mc_arena_init(&a);
    Etcdserverpb__RequestOp *op;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(
        mc_txn_parse_op(&a, "put 'a key' \"v\\n\" --prev-kv", &op, err),
        MOOR_OK);
    assert_int_equal(op->request_case,
                     ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT);
    assert_int_equal(op->request_put->key.len, 5);
    assert_memory_equal(op->request_put->value.data, "v\n", 2);
    assert_true(op->request_put->prev_kv);
    assert_int_equal(mc_txn_parse_op(&a, "get k --prefix --limit 2", &op, err),
                     MOOR_OK);
    assert_int_equal(op->request_range->limit, 2);
    assert_memory_equal(op->request_range->range_end.data, "l", 1);
    assert_int_equal(mc_txn_parse_op(&a, "del a --from-key", &op, err),
                     MOOR_OK);
    assert_int_equal(op->request_delete_range->range_end.len, 1);

    assert_int_equal(mc_txn_parse_op(&a, "foo x", &op, err), MOOR_EINVAL);
    assert_string_equal(err, "invalid txn request: foo x");
    assert_int_equal(mc_txn_parse_op(&a, "get", &op, err), MOOR_EINVAL);
    assert_string_equal(err, "invalid txn compare request: get");
    assert_int_equal(mc_txn_parse_op(&a, "get a --nope", &op, err),
                     MOOR_EINVAL);
    assert_string_equal(err, "invalid txn request: get a --nope");
    assert_int_equal(mc_txn_parse_op(&a, "get a --prefix --from-key", &op, err),
                     MOOR_EINVAL);
    assert_string_equal(err,
                        "`--prefix` and `--from-key` cannot be set at "
                        "the same time, choose one");
    mc_arena_close(&a);
}

static void test_cli_txn_read_needs_the_final_empty_line(void **state)
{
    (void)state;
    struct mc_arena a;
    Etcdserverpb__TxnRequest req;
    char err[MOOR_ERRMSG_SIZE];
    const char *bad[] = {"", "\n", "\n\n", "\n\nput a b\n", "put a b\n"};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(bad); i++) {
        mc_arena_init(&a);
        struct lines l = {bad[i]};
        int rv = mc_txn_read(&a, next_line, &l, NULL, &req, err);
        assert_int_equal(rv, MOOR_EINVAL);
        if (i < 4) {
            assert_string_equal(err, "EOF");
        }
        mc_arena_close(&a);
    }
    mc_arena_init(&a);
    struct lines ok = {"\n\n\n"};
    assert_int_equal(mc_txn_read(&a, next_line, &ok, NULL, &req, err), MOOR_OK);
    assert_int_equal(req.n_compare + req.n_success + req.n_failure, 0);
    mc_arena_close(&a);
}

static void test_cli_txn_interactive_prints_the_prompts(void **state)
{
    (void)state;
    struct mc_arena a;
    Etcdserverpb__TxnRequest req;
    char err[MOOR_ERRMSG_SIZE];
    FILE *f = tmpfile();
    assert_non_null(f);
    mc_arena_init(&a);
    struct lines l = {"\nget a\n\n\n"};
    assert_int_equal(mc_txn_read(&a, next_line, &l, f, &req, err), MOOR_OK);
    char text[256];
    rewind(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = 0;
    assert_string_equal(text,
                        "compares:\nsuccess requests (get, put, del):\n"
                        "failure requests (get, put, del):\n");
    assert_int_equal(req.n_success, 1);
    fclose(f);
    mc_arena_close(&a);
}

static void test_cli_argify_splits_like_etcdctl(void **state)
{
    (void)state;
    struct mc_arena a;
    mc_arena_init(&a);
    char *args[8];
    size_t n;
    assert_int_equal(mc_argify(&a, "  put \"a b\" 'c \"d' e\\x  ", args, 8, &n),
                     MOOR_OK);
    assert_int_equal(n, 4);
    assert_string_equal(args[0], "put");
    assert_string_equal(args[1], "a b");
    assert_string_equal(args[2], "c \"d");
    assert_string_equal(args[3], "e\\x");
    assert_int_equal(mc_argify(&a, "a b c", args, 2, &n), MOOR_ETOOBIG);
    assert_int_equal(mc_argify(&a, "put \"open", args, 8, &n), MOOR_EINVAL);
    mc_arena_close(&a);
}

/* Every allocation of a txn parse can fail: the parse then says ENOMEM (or
 * succeeds, when the failed allocation was not needed) and the arena gives
 * back every byte. */
static void test_cli_txn_read_survives_every_allocation_failure(void **state)
{
    (void)state;
    const char *text =
        "mod(\"key1\") > \"0\"\nvalue(\"k\") = \"v\"\n\n"
        "put key1 \"new\" --lease=1f --prev-kv\n"
        "get key2 --prefix --sort-by=value --order=descend\n\n"
        "del key1 --from-key\n\n";
    size_t base = moor_alloc_bytes();
    bool saw_enomem = false, saw_ok = false;
    for (long n = 0; n < 400; n++) {
        struct mc_arena a;
        Etcdserverpb__TxnRequest req;
        char err[MOOR_ERRMSG_SIZE];
        struct lines l = {text};
        mc_arena_init(&a);
        moor_alloc_fail_after(n);
        int rv = mc_txn_read(&a, next_line, &l, NULL, &req, err);
        moor_alloc_fail_after(-1);
        if (rv != MOOR_OK && rv != MOOR_ENOMEM) {
            print_error("allocation %ld: %s (%s)\n", n, moor_errname(rv), err);
            fail();
        }
        saw_enomem |= rv == MOOR_ENOMEM;
        saw_ok |= rv == MOOR_OK;
        if (rv == MOOR_OK) {
            assert_int_equal(req.n_compare, 2);
            assert_int_equal(req.n_success, 2);
            assert_int_equal(req.n_failure, 1);
        }
        mc_arena_close(&a);
        assert_int_equal(moor_alloc_bytes(), base);
    }
    assert_true(saw_enomem);
    assert_true(saw_ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_get_request_matches_etcdctl_bytes),
        cmocka_unit_test(test_cli_get_sort_by_key_ascending_is_sent_as_no_sort),
        cmocka_unit_test(test_cli_empty_key_with_prefix_means_whole_keyspace),
        cmocka_unit_test(test_cli_put_and_del_requests_match_etcdctl_bytes),
        cmocka_unit_test(
            test_cli_put_rejects_bad_lease_and_ignore_value_misuse),
        cmocka_unit_test(test_cli_txn_request_matches_etcdctl_bytes),
        cmocka_unit_test(test_cli_txn_compare_targets_and_ops),
        cmocka_unit_test(test_cli_txn_compare_errors_use_etcdctl_texts),
        cmocka_unit_test(test_cli_txn_ops_take_their_commands_flags),
        cmocka_unit_test(test_cli_txn_read_needs_the_final_empty_line),
        cmocka_unit_test(test_cli_txn_interactive_prints_the_prompts),
        cmocka_unit_test(test_cli_argify_splits_like_etcdctl),
        cmocka_unit_test(test_cli_txn_read_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
