/* test_server_config.c: etcd's flags, defaults, ETCD_* variables,
 * validation, and member/cluster ids identical to real etcd's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "server/server.h"

static char errmsg[MOOR_ERRMSG_SIZE];

/* Literals are const under -Wwrite-strings; the API takes main()'s argv
 * type and never writes through it. */
static int parse(struct srv_config *cfg, const char **argv, const char **envp)
{
    int argc = 0;
    while (argv[argc] != NULL) {
        argc++;
    }
    srv_config_init(cfg);
    errmsg[0] = '\0';
    return srv_config_parse(cfg, argc, (char *const *)argv, (char *const *)envp,
                            errmsg);
}

static void test_config_defaults_are_etcds(void **state)
{
    (void)state;
    struct srv_config cfg;
    const char *argv[] = {"moord", NULL};
    assert_int_equal(parse(&cfg, argv, NULL), MOOR_OK);
    assert_string_equal(cfg.name, "default");
    assert_string_equal(cfg.data_dir, "default.etcd");
    assert_int_equal(cfg.heartbeat_ms, 100);
    assert_int_equal(cfg.election_ms, 1000);
    assert_true(cfg.snapshot_count == 100000);
    assert_int_equal(cfg.max_request_bytes, 1572864);
    assert_int_equal(cfg.max_txn_ops, 128);
    assert_int_equal(cfg.max_wals, 5);
    assert_int_equal(cfg.max_snapshots, 5);
    assert_true(cfg.quota_backend_bytes == 0);
    assert_int_equal(cfg.listen_client_urls.n, 1);
    assert_string_equal(cfg.listen_client_urls.urls[0].text,
                        "http://localhost:2379");
    assert_int_equal(cfg.listen_peer_urls.urls[0].port, 2380);
    assert_int_equal(cfg.n_initial_members, 1);
    assert_string_equal(cfg.initial_members[0].name, "default");
    assert_string_equal(cfg.initial_cluster_token, "etcd-cluster");
    assert_int_equal(cfg.initial_cluster_state, SRV_CLUSTER_NEW);
    assert_int_equal(cfg.auto_compaction_mode, SRV_COMPACT_PERIODIC);
    assert_true(cfg.auto_compaction_retention == 0);
    assert_true(cfg.strict_reconfig_check);
    assert_false(cfg.client_cert_auth);
    assert_int_equal(cfg.log_level, MOOR_LOG_INFO);
    srv_config_close(&cfg);
}

static void test_config_flags_and_env_with_flag_winning(void **state)
{
    (void)state;
    struct srv_config cfg;
    const char *argv[] = {
        "moord",
        "--name=n2",
        "--data-dir",
        "/var/lib/n2",
        "-listen-client-urls=http://127.0.0.1:22379",
        "--advertise-client-urls=http://127.0.0.1:22379",
        "--listen-peer-urls=http://127.0.0.1:22380",
        "--initial-advertise-peer-urls=http://127.0.0.1:22380",
        "--initial-cluster=n1=http://127.0.0.1:2380,"
        "n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380",
        "--heartbeat-interval=50",
        "--client-cert-auth=false",
        "--pre-vote",
        "--auto-compaction-retention=1h30m",
        NULL};
    const char *envp[] = {"PATH=/bin",
                          "ETCD_HEARTBEAT_INTERVAL=70",
                          "ETCD_ELECTION_TIMEOUT=500",
                          "ETCD_MAX_TXN_OPS=64",
                          "ETCD_INITIAL_CLUSTER_STATE=existing",
                          "ETCD_NOT_A_FLAG=1",
                          NULL};
    assert_int_equal(parse(&cfg, argv, envp), MOOR_OK);
    assert_string_equal(cfg.name, "n2");
    assert_string_equal(cfg.data_dir, "/var/lib/n2");
    assert_int_equal(cfg.heartbeat_ms, 50); /* flag beats ETCD_ */
    assert_int_equal(cfg.election_ms, 500); /* from ETCD_ */
    assert_int_equal(cfg.max_txn_ops, 64);
    assert_int_equal(cfg.initial_cluster_state, SRV_CLUSTER_EXISTING);
    assert_int_equal(cfg.n_initial_members, 3);
    assert_string_equal(cfg.initial_members[2].name, "n3");
    assert_int_equal(cfg.initial_members[2].peer_urls.urls[0].port, 32380);
    assert_true(cfg.pre_vote);
    assert_true(cfg.auto_compaction_retention == 90u * 60u * 1000u);
    srv_config_close(&cfg);
}

static void expect_error(const char **argv, const char *needle)
{
    struct srv_config cfg;
    assert_int_equal(parse(&cfg, argv, NULL), MOOR_EINVAL);
    if (strstr(errmsg, needle) == NULL) {
        fail_msg("error \"%s\" does not mention \"%s\"", errmsg, needle);
    }
    srv_config_close(&cfg);
}

static void test_config_rejects_bad_flags_with_reasons(void **state)
{
    (void)state;
    const char *a1[] = {"moord", "--no-such-flag=1", NULL};
    expect_error(a1, "unknown flag: --no-such-flag");
    const char *a2[] = {"moord", "--heartbeat-interval=abc", NULL};
    expect_error(a2, "--heartbeat-interval");
    const char *a3[] = {"moord", "--election-timeout=400", NULL};
    expect_error(a3, "at least as 5 times");
    const char *a4[] = {"moord", "--election-timeout=60000", NULL};
    expect_error(a4, "too long");
    const char *a5[] = {"moord", "--listen-client-urls=ftp://x:1",
                        "--advertise-client-urls=http://x:1", NULL};
    expect_error(a5, "scheme");
    const char *a6[] = {"moord", "--listen-client-urls=http://127.0.0.1:2379",
                        NULL};
    expect_error(a6, "--advertise-client-urls is required");
    const char *a7[] = {"moord", "--name=x", NULL};
    expect_error(a7, "couldn't find local name \"x\"");
    const char *a8[] = {"moord", "--initial-advertise-peer-urls=http://h:9",
                        NULL};
    expect_error(a8, "missing from --initial-advertise-peer-urls");
    const char *a9[] = {"moord", "--cert-file=a.pem", NULL};
    expect_error(a9, "--cert-file and --key-file");
    const char *a10[] = {"moord", "--listen-client-urls=https://127.0.0.1:2379",
                         "--advertise-client-urls=https://127.0.0.1:2379",
                         NULL};
    expect_error(a10, "need --cert-file");
    const char *a11[] = {"moord", "--initial-cluster-state=maybe", NULL};
    expect_error(a11, "initial-cluster-state");
    const char *a12[] = {"moord", "--auto-compaction-mode=revision",
                         "--auto-compaction-retention=1h", NULL};
    expect_error(a12, "revision mode");
    const char *a13[] = {"moord", "--max-txn-ops", NULL};
    expect_error(a13, "needs an argument");
    const char *a14[] = {"moord", "stray", NULL};
    expect_error(a14, "unexpected argument");
    const char *a15[] = {"moord", "--listen-peer-urls=http://127.0.0.1:99999",
                         NULL};
    expect_error(a15, "invalid port");
    const char *a16[] = {"moord", "--peer-auto-tls", NULL};
    expect_error(a16, "--peer-auto-tls is not built");
    const char *a17[] = {"moord", "--listen-peer-urls=https://127.0.0.1:2380",
                         "--peer-cert-file=c.pem", "--peer-key-file=k.pem",
                         NULL};
    expect_error(a17, "mix https and http");
    const char *a18[] = {"moord", "--peer-cert-file=c.pem",
                         "--peer-key-file=k.pem", NULL};
    expect_error(a18, "peer URLs are http://");
}

static void test_config_help_and_version(void **state)
{
    (void)state;
    struct srv_config cfg;
    const char *argv[] = {"moord", "-h", NULL};
    assert_int_equal(parse(&cfg, argv, NULL), MOOR_OK);
    assert_true(cfg.want_help);
    srv_config_close(&cfg);
    const char *argv2[] = {"moord", "--version", NULL};
    assert_int_equal(parse(&cfg, argv2, NULL), MOOR_OK);
    assert_true(cfg.want_version);
    srv_config_close(&cfg);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    srv_config_print_help(f);
    fclose(f);
    assert_non_null(strstr(text, "  --heartbeat-interval '100'\n"));
    assert_non_null(strstr(text, "  --data-dir '${name}.etcd'\n"));
    assert_non_null(strstr(text, "  --max-request-bytes '1572864'\n"));
    assert_non_null(strstr(text, "\nSecurity:\n"));
    free(text);
}

static void test_config_urls_parse_and_normalise(void **state)
{
    (void)state;
    struct srv_url u;
    assert_int_equal(srv_url_parse("https://[::1]:2379/", &u, errmsg), MOOR_OK);
    assert_true(u.tls);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 2379);
    assert_string_equal(u.text, "https://[::1]:2379");
    assert_int_equal(srv_url_parse("http://h", &u, errmsg), MOOR_EINVAL);
    assert_int_equal(srv_url_parse("http://h:1/path", &u, errmsg), MOOR_EINVAL);
    assert_int_equal(srv_url_parse("http://:1", &u, errmsg), MOOR_EINVAL);
    struct srv_url_list l;
    assert_int_equal(srv_url_list_parse("http://a:1,,https://b:2", &l, errmsg),
                     MOOR_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.urls[1].text, "https://b:2");
}

/* Values read off a real etcd 3.4.23 started with
 * --initial-cluster n1=http://127.0.0.1:23801,n2=...:23802,n3=...:23803
 * --initial-cluster-token tok-xyz ("added member ... to cluster ..."). */
static void test_member_and_cluster_ids_match_real_etcd(void **state)
{
    (void)state;
    struct srv_config cfg;
    const char *argv[] = {
        "moord",
        "--name=n1",
        "--initial-advertise-peer-urls=http://127.0.0.1:23801",
        "--initial-cluster=n1=http://127.0.0.1:23801,"
        "n2=http://127.0.0.1:23802,n3=http://127.0.0.1:23803",
        "--initial-cluster-token=tok-xyz",
        NULL};
    assert_int_equal(parse(&cfg, argv, NULL), MOOR_OK);
    assert_true(cfg.initial_members[0].id == 0x144a5999953b2a72ull);
    assert_true(cfg.initial_members[1].id == 0x38366d8609104eccull);
    assert_true(cfg.initial_members[2].id == 0x1ff94c19025bdf8dull);
    uint64_t ids[3] = {cfg.initial_members[0].id, cfg.initial_members[1].id,
                       cfg.initial_members[2].id};
    assert_true(srv_cluster_id(ids, 3) == 0x7021539be6a36f69ull);
    srv_config_close(&cfg);
}

int main(void)
{
    moor_log_set_level(MOOR_LOG_ERROR); /* the unknown ETCD_ warning */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_are_etcds),
        cmocka_unit_test(test_config_flags_and_env_with_flag_winning),
        cmocka_unit_test(test_config_rejects_bad_flags_with_reasons),
        cmocka_unit_test(test_config_help_and_version),
        cmocka_unit_test(test_config_urls_parse_and_normalise),
        cmocka_unit_test(test_member_and_cluster_ids_match_real_etcd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
