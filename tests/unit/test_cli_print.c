/* test_cli_print.c: moorctl's printers against output recorded from
 * Debian's etcdctl 3.4.23 on real etcd 3.4 (the expected strings below are
 * that output, for responses rebuilt here field by field). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/cli.h"

#define CID 15118495548433857066ull
#define MID 13668033151171901709ull

static Etcdserverpb__ResponseHeader hdr(int64_t rev)
{
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.cluster_id = CID;
    h.member_id = MID;
    h.revision = rev;
    h.raft_term = 2;
    return h;
}

static ProtobufCBinaryData bytes(const char *s)
{
    ProtobufCBinaryData d = {strlen(s), (uint8_t *)(uintptr_t)s};
    return d;
}

static Mvccpb__KeyValue kv(const char *k, const char *v, int64_t create,
                           int64_t mod, int64_t ver)
{
    Mvccpb__KeyValue x = MVCCPB__KEY_VALUE__INIT;
    x.key = bytes(k);
    x.value = bytes(v);
    x.create_revision = create;
    x.mod_revision = mod;
    x.version = ver;
    return x;
}

static void expect(struct moor_buf *b, const char *want)
{
    if (b->len != strlen(want) || memcmp(b->ptr, want, b->len) != 0) {
        print_error("got:\n%.*s\nwant:\n%s\n", (int)b->len,
                    (const char *)b->ptr, want);
        fail();
    }
    moor_buf_reset(b);
}

static void test_cli_print_get_in_each_format(void **state)
{
    (void)state;
    Etcdserverpb__ResponseHeader h = hdr(3);
    Mvccpb__KeyValue k = kv("foo", "bar2", 2, 3, 2);
    Mvccpb__KeyValue *kvs[] = {&k};
    Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    r.header = &h;
    r.kvs = kvs;
    r.n_kvs = 1;
    r.count = 1;
    struct moor_buf b;
    moor_buf_init(&b);
    struct mc_print p = {MC_FMT_SIMPLE, false, false};
    assert_int_equal(mc_print_get(&b, &p, &r), MOOR_OK);
    expect(&b, "foo\nbar2\n");
    p.value_only = true;
    assert_int_equal(mc_print_get(&b, &p, &r), MOOR_OK);
    expect(&b, "bar2\n");
    p.value_only = false;
    p.hex = true;
    assert_int_equal(mc_print_get(&b, &p, &r), MOOR_OK);
    expect(&b, "\\x66\\x6f\\x6f\n\\x62\\x61\\x72\\x32\n");
    p.hex = false;
    p.fmt = MC_FMT_JSON;
    assert_int_equal(mc_print_get(&b, &p, &r), MOOR_OK);
    expect(&b,
           "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":3,\"raft_term\":2},\"kvs\":[{"
           "\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":3,"
           "\"version\":2,\"value\":\"YmFyMg==\"}],\"count\":1}\n");
    p.fmt = MC_FMT_FIELDS;
    assert_int_equal(mc_print_get(&b, &p, &r), MOOR_OK);
    expect(&b,
           "\"ClusterID\" : 15118495548433857066\n"
           "\"MemberID\" : 13668033151171901709\n"
           "\"Revision\" : 3\n"
           "\"RaftTerm\" : 2\n"
           "\"Key\" : \"foo\"\n"
           "\"CreateRevision\" : 2\n"
           "\"ModRevision\" : 3\n"
           "\"Version\" : 2\n"
           "\"Value\" : \"bar2\"\n"
           "\"Lease\" : 0\n"
           "\"More\" : false\n"
           "\"Count\" : 1\n");
    p.fmt = MC_FMT_TABLE;
    assert_int_equal(mc_print_get(&b, &p, &r), MOOR_EINVAL);
    assert_string_equal(mc_print_unsupported_text(MC_FMT_TABLE),
                        "table not supported as output format");
    moor_buf_close(&b);
}

static void test_cli_print_put_and_del_with_previous_values(void **state)
{
    (void)state;
    Etcdserverpb__ResponseHeader h = hdr(9);
    Mvccpb__KeyValue prev = kv("a", "2", 7, 8, 2);
    Etcdserverpb__PutResponse put = ETCDSERVERPB__PUT_RESPONSE__INIT;
    put.header = &h;
    put.prev_kv = &prev;
    struct moor_buf b;
    moor_buf_init(&b);
    struct mc_print p = {MC_FMT_SIMPLE, false, false};
    assert_int_equal(mc_print_put(&b, &p, &put), MOOR_OK);
    expect(&b, "OK\na\n2\n");
    p.fmt = MC_FMT_JSON;
    assert_int_equal(mc_print_put(&b, &p, &put), MOOR_OK);
    expect(&b,
           "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":9,\"raft_term\":2},"
           "\"prev_kv\":{\"key\":\"YQ==\",\"create_revision\":7,"
           "\"mod_revision\":8,\"version\":2,\"value\":\"Mg==\"}}\n");

    Etcdserverpb__ResponseHeader h2 = hdr(14);
    Mvccpb__KeyValue gone = kv("a", "2", 7, 12, 6);
    Mvccpb__KeyValue *kvs[] = {&gone};
    Etcdserverpb__DeleteRangeResponse del =
        ETCDSERVERPB__DELETE_RANGE_RESPONSE__INIT;
    del.header = &h2;
    del.deleted = 1;
    del.prev_kvs = kvs;
    del.n_prev_kvs = 1;
    assert_int_equal(mc_print_del(&b, &p, &del), MOOR_OK);
    expect(&b,
           "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":14,\"raft_term\":2},"
           "\"deleted\":1,\"prev_kvs\":[{\"key\":\"YQ==\","
           "\"create_revision\":7,\"mod_revision\":12,\"version\":6,"
           "\"value\":\"Mg==\"}]}\n");
    p.fmt = MC_FMT_SIMPLE;
    assert_int_equal(mc_print_del(&b, &p, &del), MOOR_OK);
    expect(&b, "1\na\n2\n");
    del.deleted = 0;
    del.n_prev_kvs = 0;
    p.fmt = MC_FMT_FIELDS;
    assert_int_equal(mc_print_del(&b, &p, &del), MOOR_OK);
    expect(&b,
           "\"ClusterID\" : 15118495548433857066\n"
           "\"MemberID\" : 13668033151171901709\n"
           "\"Revision\" : 14\n\"RaftTerm\" : 2\n\"Deleted\" : 0\n");
    moor_buf_close(&b);
}

static void test_cli_print_txn_uses_go_names_for_the_oneof(void **state)
{
    (void)state;
    Etcdserverpb__ResponseHeader h = hdr(16);
    Etcdserverpb__ResponseHeader sub = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    sub.revision = 16;
    Etcdserverpb__PutResponse put = ETCDSERVERPB__PUT_RESPONSE__INIT;
    put.header = &sub;
    Mvccpb__KeyValue k = kv("foo", "bar2", 2, 3, 2);
    Mvccpb__KeyValue *kvs[] = {&k};
    Etcdserverpb__RangeResponse range = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    range.header = &sub;
    range.kvs = kvs;
    range.n_kvs = 1;
    range.count = 1;
    Etcdserverpb__DeleteRangeResponse del =
        ETCDSERVERPB__DELETE_RANGE_RESPONSE__INIT;
    del.header = &sub;
    Etcdserverpb__ResponseOp ops[3] = {ETCDSERVERPB__RESPONSE_OP__INIT,
                                       ETCDSERVERPB__RESPONSE_OP__INIT,
                                       ETCDSERVERPB__RESPONSE_OP__INIT};
    ops[0].response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
    ops[0].response_put = &put;
    ops[1].response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
    ops[1].response_range = &range;
    ops[2].response_case =
        ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
    ops[2].response_delete_range = &del;
    Etcdserverpb__ResponseOp *opp[] = {&ops[0], &ops[1], &ops[2]};
    Etcdserverpb__TxnResponse r = ETCDSERVERPB__TXN_RESPONSE__INIT;
    r.header = &h;
    r.succeeded = true;
    r.responses = opp;
    r.n_responses = 3;
    struct moor_buf b;
    moor_buf_init(&b);
    struct mc_print p = {MC_FMT_JSON, false, false};
    assert_int_equal(mc_print_txn(&b, &p, &r), MOOR_OK);
    expect(&b,
           "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":16,\"raft_term\":2},"
           "\"succeeded\":true,\"responses\":[{\"Response\":{\"ResponsePut\":{"
           "\"header\":{\"revision\":16}}}},{\"Response\":{\"ResponseRange\":{"
           "\"header\":{\"revision\":16},\"kvs\":[{\"key\":\"Zm9v\","
           "\"create_revision\":2,\"mod_revision\":3,\"version\":2,\"value\":"
           "\"YmFyMg==\"}],\"count\":1}}},{\"Response\":{"
           "\"ResponseDeleteRange\":{\"header\":{\"revision\":16}}}}]}\n");
    p.fmt = MC_FMT_SIMPLE;
    assert_int_equal(mc_print_txn(&b, &p, &r), MOOR_OK);
    expect(&b, "SUCCESS\n\nOK\n\nfoo\nbar2\n\n0\n");
    moor_buf_close(&b);
}

static void test_cli_print_watch_events(void **state)
{
    (void)state;
    Etcdserverpb__ResponseHeader h = hdr(21);
    Mvccpb__KeyValue k = MVCCPB__KEY_VALUE__INIT;
    k.key = bytes("w1");
    k.mod_revision = 21;
    Mvccpb__KeyValue prev = kv("w1", "b", 19, 20, 2);
    Mvccpb__Event e = MVCCPB__EVENT__INIT;
    e.type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
    e.kv = &k;
    e.prev_kv = &prev;
    Mvccpb__Event *ev[] = {&e};
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.header = &h;
    r.events = ev;
    r.n_events = 1;
    struct moor_buf b;
    moor_buf_init(&b);
    struct mc_print p = {MC_FMT_SIMPLE, false, false};
    assert_int_equal(mc_print_watch(&b, &p, &r), MOOR_OK);
    expect(&b, "DELETE\nw1\nb\nw1\n\n");
    p.fmt = MC_FMT_JSON;
    assert_int_equal(mc_print_watch(&b, &p, &r), MOOR_OK);
    expect(&b,
           "{\"Header\":{\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":21,\"raft_term\":2},"
           "\"Events\":[{\"type\":1,\"kv\":{\"key\":\"dzE=\","
           "\"mod_revision\":21},\"prev_kv\":{\"key\":\"dzE=\","
           "\"create_revision\":19,\"mod_revision\":20,\"version\":2,"
           "\"value\":\"Yg==\"}}],\"CompactRevision\":0,\"Canceled\":false,"
           "\"Created\":false}\n");
    p.fmt = MC_FMT_FIELDS;
    assert_int_equal(mc_print_watch(&b, &p, &r), MOOR_OK);
    expect(&b,
           "\"ClusterID\" : 15118495548433857066\n"
           "\"MemberID\" : 13668033151171901709\n"
           "\"Revision\" : 21\n\"RaftTerm\" : 2\n\"Type\" : DELETE\n"
           "\"PrevKey\" : \"w1\"\n\"PrevCreateRevision\" : 19\n"
           "\"PrevModRevision\" : 20\n\"PrevVersion\" : 2\n"
           "\"PrevValue\" : \"b\"\n\"PrevLease\" : 0\n"
           "\"Key\" : \"w1\"\n\"CreateRevision\" : 0\n"
           "\"ModRevision\" : 21\n\"Version\" : 0\n\"Value\" : \"\"\n"
           "\"Lease\" : 0\n");
    moor_buf_close(&b);
}

static void test_cli_print_lease_responses(void **state)
{
    (void)state;
    Etcdserverpb__ResponseHeader h = hdr(3);
    Etcdserverpb__LeaseGrantResponse g =
        ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
    g.header = &h;
    g.id = 4111120186941363990;
    g.ttl = 100;
    struct moor_buf b;
    moor_buf_init(&b);
    struct mc_print p = {MC_FMT_SIMPLE, false, false};
    assert_int_equal(mc_print_lease_grant(&b, &p, &g), MOOR_OK);
    expect(&b, "lease 390da2074393d716 granted with TTL(100s)\n");
    p.fmt = MC_FMT_JSON;
    assert_int_equal(mc_print_lease_grant(&b, &p, &g), MOOR_OK);
    expect(&b,
           "{\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":3,\"raft_term\":2,\"ID\":"
           "4111120186941363990,\"TTL\":100,\"Error\":\"\"}\n");

    Etcdserverpb__LeaseTimeToLiveResponse t =
        ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h8 = hdr(8);
    ProtobufCBinaryData keys[] = {bytes("lk"), bytes("lk2")};
    t.header = &h8;
    t.id = 4111120186941363994;
    t.ttl = 59;
    t.grantedttl = 60;
    t.keys = keys;
    t.n_keys = 2;
    p.fmt = MC_FMT_SIMPLE;
    assert_int_equal(mc_print_lease_ttl(&b, &p, true, &t), MOOR_OK);
    expect(&b,
           "lease 390da2074393d71a granted with TTL(60s), remaining(59s), "
           "attached keys([lk lk2])\n");
    t.n_keys = 0;
    p.fmt = MC_FMT_JSON;
    assert_int_equal(mc_print_lease_ttl(&b, &p, false, &t), MOOR_OK);
    expect(&b,
           "{\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":8,\"raft_term\":2,\"id\":"
           "4111120186941363994,\"ttl\":59,\"granted-ttl\":60,\"keys\":"
           "null}\n");
    t.id = 0x1234;
    t.ttl = -1;
    t.grantedttl = 0;
    p.fmt = MC_FMT_SIMPLE;
    assert_int_equal(mc_print_lease_ttl(&b, &p, false, &t), MOOR_OK);
    expect(&b, "lease 0000000000001234 already expired\n");

    Etcdserverpb__LeaseStatus s1 = ETCDSERVERPB__LEASE_STATUS__INIT;
    s1.id = 4111120186941363994;
    Etcdserverpb__LeaseStatus *ls[] = {&s1};
    Etcdserverpb__LeaseLeasesResponse l =
        ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT;
    l.header = &h8;
    l.leases = ls;
    l.n_leases = 1;
    assert_int_equal(mc_print_lease_list(&b, &p, &l), MOOR_OK);
    expect(&b, "found 1 leases\n390da2074393d71a\n");
    p.fmt = MC_FMT_JSON;
    assert_int_equal(mc_print_lease_list(&b, &p, &l), MOOR_OK);
    expect(&b,
           "{\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":8,\"raft_term\":2,"
           "\"leases\":[{\"id\":4111120186941363994}]}\n");

    Etcdserverpb__LeaseKeepAliveResponse k =
        ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
    k.header = &h8;
    k.id = 4111120186941363994;
    k.ttl = 60;
    p.fmt = MC_FMT_SIMPLE;
    assert_int_equal(mc_print_keepalive(&b, &p, &k), MOOR_OK);
    expect(&b, "lease 390da2074393d71a keepalived with TTL(60)\n");
    moor_buf_close(&b);
}

static Etcdserverpb__Member member(char **peers, char **clients)
{
    Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT;
    m.id = MID;
    m.name = (char *)(uintptr_t) "t";
    m.peerurls = peers;
    m.n_peerurls = 1;
    m.clienturls = clients;
    m.n_clienturls = 1;
    return m;
}

static void test_cli_print_member_list_as_table_and_json(void **state)
{
    (void)state;
    char *peers[] = {(char *)(uintptr_t) "http://127.0.0.1:23801"};
    char *clients[] = {(char *)(uintptr_t) "http://127.0.0.1:23791"};
    Etcdserverpb__Member m = member(peers, clients);
    Etcdserverpb__Member *ms[] = {&m};
    Etcdserverpb__ResponseHeader h = hdr(0);
    Etcdserverpb__MemberListResponse r =
        ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
    r.header = &h;
    r.members = ms;
    r.n_members = 1;
    struct moor_buf b;
    moor_buf_init(&b);
    struct mc_print p = {MC_FMT_TABLE, false, false};
    assert_int_equal(mc_print_member_list(&b, &p, &r), MOOR_OK);
    expect(&b,
           "+------------------+---------+------+------------------------+----"
           "--------------------+------------+\n"
           "|        ID        | STATUS  | NAME |       PEER ADDRS       |     "
           " CLIENT ADDRS      | IS LEARNER |\n"
           "+------------------+---------+------+------------------------+----"
           "--------------------+------------+\n"
           "| bdae9bbc11dd390d | started |    t | http://127.0.0.1:23801 | "
           "http://127.0.0.1:23791 |      false |\n"
           "+------------------+---------+------+------------------------+----"
           "--------------------+------------+\n");
    p.fmt = MC_FMT_SIMPLE;
    assert_int_equal(mc_print_member_list(&b, &p, &r), MOOR_OK);
    expect(&b,
           "bdae9bbc11dd390d, started, t, http://127.0.0.1:23801, "
           "http://127.0.0.1:23791, false\n");
    p.fmt = MC_FMT_JSON;
    assert_int_equal(mc_print_member_list(&b, &p, &r), MOOR_OK);
    expect(&b,
           "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"raft_term\":2},\"members\":[{\"ID\":"
           "13668033151171901709,\"name\":\"t\",\"peerURLs\":[\"http://"
           "127.0.0.1:23801\"],\"clientURLs\":[\"http://127.0.0.1:23791\"]"
           "}]}\n");
    moor_buf_close(&b);
}

static void test_cli_print_endpoint_rows(void **state)
{
    (void)state;
    Etcdserverpb__ResponseHeader h = hdr(3);
    Etcdserverpb__StatusResponse s = ETCDSERVERPB__STATUS_RESPONSE__INIT;
    s.header = &h;
    s.version = (char *)(uintptr_t) "3.4.23";
    s.dbsize = 20480;
    s.leader = MID;
    s.raftindex = 7;
    s.raftterm = 2;
    s.raftappliedindex = 7;
    s.dbsizeinuse = 16384;
    struct mc_ep_status st = {"127.0.0.1:23791", &s};
    struct moor_buf b;
    moor_buf_init(&b);
    struct mc_print p = {MC_FMT_SIMPLE, false, false};
    assert_int_equal(mc_print_ep_status(&b, &p, &st, 1), MOOR_OK);
    expect(&b,
           "127.0.0.1:23791, bdae9bbc11dd390d, 3.4.23, 20 kB, true, false, "
           "2, 7, 7, \n");
    p.fmt = MC_FMT_JSON;
    assert_int_equal(mc_print_ep_status(&b, &p, &st, 1), MOOR_OK);
    expect(&b,
           "[{\"Endpoint\":\"127.0.0.1:23791\",\"Status\":{\"header\":{"
           "\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":3,\"raft_term\":2},"
           "\"version\":\"3.4.23\",\"dbSize\":20480,\"leader\":"
           "13668033151171901709,\"raftIndex\":7,\"raftTerm\":2,"
           "\"raftAppliedIndex\":7,\"dbSizeInUse\":16384}}]\n");

    Etcdserverpb__HashKVResponse hk = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
    hk.header = &h;
    hk.hash = 3581052765u;
    hk.compact_revision = -1;
    struct mc_ep_hashkv hv = {"127.0.0.1:23791", &hk};
    assert_int_equal(mc_print_ep_hashkv(&b, &p, &hv, 1), MOOR_OK);
    expect(&b,
           "[{\"Endpoint\":\"127.0.0.1:23791\",\"HashKV\":{\"header\":{"
           "\"cluster_id\":15118495548433857066,\"member_id\":"
           "13668033151171901709,\"revision\":3,\"raft_term\":2},\"hash\":"
           "3581052765,\"compact_revision\":-1}}]\n");
    p.fmt = MC_FMT_TABLE;
    assert_int_equal(mc_print_ep_hashkv(&b, &p, &hv, 1), MOOR_OK);
    expect(&b,
           "+-----------------+------------+\n"
           "|    ENDPOINT     |    HASH    |\n"
           "+-----------------+------------+\n"
           "| 127.0.0.1:23791 | 3581052765 |\n"
           "+-----------------+------------+\n");

    struct mc_ep_health hl[] = {
        {"127.0.0.1:23791", true, 1449184, NULL},
        {"127.0.0.1:1", false, 2000000000, "context deadline exceeded"}};
    struct moor_buf err;
    moor_buf_init(&err);
    p.fmt = MC_FMT_JSON;
    assert_int_equal(mc_print_ep_health(&b, &err, &p, hl, 2), MOOR_OK);
    expect(&b,
           "[{\"endpoint\":\"127.0.0.1:23791\",\"health\":true,\"took\":"
           "\"1.449184ms\"},{\"endpoint\":\"127.0.0.1:1\",\"health\":false,"
           "\"took\":\"2s\",\"error\":\"context deadline exceeded\"}]\n");
    p.fmt = MC_FMT_SIMPLE;
    assert_int_equal(mc_print_ep_health(&b, &err, &p, hl, 2), MOOR_OK);
    expect(&b, "");
    expect(&err,
           "127.0.0.1:23791 is healthy: successfully committed "
           "proposal: took = 1.449184ms\n127.0.0.1:1 is unhealthy: "
           "failed to commit proposal: context deadline exceeded\n");
    moor_buf_close(&err);
    moor_buf_close(&b);
}

static void test_cli_print_alarms_as_protobuf_text(void **state)
{
    (void)state;
    Etcdserverpb__AlarmMember a = ETCDSERVERPB__ALARM_MEMBER__INIT;
    a.memberid = MID;
    a.alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
    Etcdserverpb__AlarmMember *as[] = {&a};
    Etcdserverpb__AlarmResponse r = ETCDSERVERPB__ALARM_RESPONSE__INIT;
    r.alarms = as;
    r.n_alarms = 1;
    struct moor_buf b;
    moor_buf_init(&b);
    struct mc_print p = {MC_FMT_SIMPLE, false, false};
    assert_int_equal(mc_print_alarm(&b, &p, &r), MOOR_OK);
    expect(&b, "memberID:13668033151171901709 alarm:NOSPACE \n");
    p.fmt = MC_FMT_JSON;
    r.n_alarms = 0;
    assert_int_equal(mc_print_alarm(&b, &p, &r), MOOR_OK);
    expect(&b, "{}\n");
    moor_buf_close(&b);
}

static void test_cli_table_pads_by_characters_not_bytes(void **state)
{
    (void)state;
    const char *hdr_[] = {"name", "v"};
    const char *cells[] = {"\xc3\xa9t\xc3\xa9", "1", "ab", "22"};
    struct moor_buf b;
    moor_buf_init(&b);
    assert_int_equal(mc_table(&b, hdr_, 2, cells, 2), MOOR_OK);
    expect(&b,
           "+------+----+\n"
           "| NAME | V  |\n"
           "+------+----+\n"
           "|  \xc3\xa9t\xc3\xa9 |  1 |\n"
           "|   ab | 22 |\n"
           "+------+----+\n");
    moor_buf_close(&b);
}

/* Printers under allocation failure: ENOMEM or success, never a crash,
 * never a leak (the output buffer is the only thing left to free). */
static void test_cli_printers_survive_every_allocation_failure(void **state)
{
    (void)state;
    char *peers[] = {(char *)(uintptr_t) "http://127.0.0.1:23801"};
    char *clients[] = {(char *)(uintptr_t) "http://127.0.0.1:23791"};
    Etcdserverpb__Member m = member(peers, clients);
    Etcdserverpb__Member *ms[] = {&m, &m};
    Etcdserverpb__ResponseHeader h = hdr(0);
    Etcdserverpb__MemberListResponse r =
        ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
    r.header = &h;
    r.members = ms;
    r.n_members = 2;
    Etcdserverpb__StatusResponse s = ETCDSERVERPB__STATUS_RESPONSE__INIT;
    s.header = &h;
    s.version = (char *)(uintptr_t) "3.4.23";
    s.dbsize = 20480;
    struct mc_ep_status st[] = {{"127.0.0.1:1", &s}, {"127.0.0.1:2", &s}};
    size_t base = moor_alloc_bytes();
    for (int fmt = MC_FMT_SIMPLE; fmt <= MC_FMT_TABLE; fmt++) {
        bool saw_ok = false;
        for (long n = 0; n < 200 && !saw_ok; n++) {
            struct moor_buf b;
            moor_buf_init(&b);
            struct mc_print p = {(enum mc_format)fmt, false, false};
            moor_alloc_fail_after(n);
            int rv1 = mc_print_member_list(&b, &p, &r);
            int rv2 = mc_print_ep_status(&b, &p, st, 2);
            moor_alloc_fail_after(-1);
            assert_true(rv1 == MOOR_OK || rv1 == MOOR_ENOMEM);
            assert_true(rv2 == MOOR_OK || rv2 == MOOR_ENOMEM);
            saw_ok = rv1 == MOOR_OK && rv2 == MOOR_OK;
            moor_buf_close(&b);
            assert_int_equal(moor_alloc_bytes(), base);
        }
        assert_true(saw_ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_print_get_in_each_format),
        cmocka_unit_test(test_cli_print_put_and_del_with_previous_values),
        cmocka_unit_test(test_cli_print_txn_uses_go_names_for_the_oneof),
        cmocka_unit_test(test_cli_print_watch_events),
        cmocka_unit_test(test_cli_print_lease_responses),
        cmocka_unit_test(test_cli_print_member_list_as_table_and_json),
        cmocka_unit_test(test_cli_print_endpoint_rows),
        cmocka_unit_test(test_cli_print_alarms_as_protobuf_text),
        cmocka_unit_test(test_cli_table_pads_by_characters_not_bytes),
        cmocka_unit_test(test_cli_printers_survive_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
