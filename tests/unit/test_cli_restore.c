/* test_cli_restore.c: moorctl snapshot restore: --initial-cluster parsing
 * and ids (etcd's), the membership block it writes, etcdctl's defaults and
 * refusals (non-empty data dir, corrupt backup, unknown name, advertised
 * URLs that differ). */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "kv/kv.h"
#include "snapshot/snapshot.h"

#define S(lit) ((char *)(lit))

static char root[128];
static char backup[SNAP_PATH_MAX];

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct dump_arg
{
    struct kv_dump d;
    struct moor_buf b;
};

static int produce(void *arg, struct moor_slice *chunk)
{
    struct dump_arg *a = arg;
    moor_buf_reset(&a->b);
    bool done;
    int rv = kv_dump_next(&a->d, &a->b, 4096, &done);
    *chunk = moor_slice_make(a->b.ptr, a->b.len);
    return rv;
}

/* A backup of a small state at <root>/b/. */
static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/moorctl-restore-XXXXXX");
    if (mkdtemp(root) == NULL) {
        return -1;
    }
    struct kv_store *s;
    assert_int_equal(kv_store_new(NULL, &s), MOOR_OK);
    for (uint64_t i = 1; i <= 50; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02u", (unsigned)(i % 20));
        struct kv_put_req req = {.key = moor_slice_str(key),
                                 .value = moor_slice_str("v")};
        struct kv_put_resp resp;
        assert_int_equal(kv_put(s, i, &req, &resp), MOOR_OK);
    }
    char dir[SNAP_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/b", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    struct snap_meta m = {.term = 4,
                          .index = 50,
                          .applied_index = 50,
                          .revision = (uint64_t)kv_store_revision(s),
                          .key_count = kv_store_live_count(s)};
    struct dump_arg a;
    moor_buf_init(&a.b);
    assert_int_equal(kv_dump_open(s, &a.d), MOOR_OK);
    assert_int_equal(snap_save(dir, &m, produce, &a, backup, NULL), MOOR_OK);
    kv_dump_close(&a.d);
    moor_buf_close(&a.b);
    kv_store_free(s);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Runs moorctl in root (for the default data dir) with argv. */
static int run(int argc, char **argv, char *out, size_t out_size, char *err,
               size_t err_size)
{
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(root), 0);
    FILE *fin = tmpfile(), *fout = tmpfile(), *ferr = tmpfile();
    assert_true(fin != NULL && fout != NULL && ferr != NULL);
    int code = mc_main(argc, argv, fin, fout, ferr);
    rewind(fout);
    rewind(ferr);
    out[fread(out, 1, out_size - 1, fout)] = 0;
    err[fread(err, 1, err_size - 1, ferr)] = 0;
    fclose(fin);
    fclose(fout);
    fclose(ferr);
    assert_int_equal(chdir(cwd), 0);
    return code;
}

static void test_cli_restore_cluster_ids_are_etcds(void **state)
{
    (void)state;
    struct mc_restore_cluster *rc = calloc(1, sizeof(*rc));
    char e[MOOR_ERRMSG_SIZE];
    assert_non_null(rc);
    /* etcd 3.4's defaults give these ids (etcdctl snapshot restore logs). */
    assert_int_equal(mc_restore_cluster_parse("default=http://localhost:2380",
                                              "etcd-cluster", "default",
                                              "http://localhost:2380", rc, e),
                     MOOR_OK);
    assert_true(rc->n == 1 && rc->self == 0);
    assert_true(rc->members[0].id == 0x8e9e05c52164694dull);
    assert_true(rc->cluster_id == 0xcdf818194e3a8c32ull);

    /* Several members, a repeated name, normalised URLs, a trailing /. */
    assert_int_equal(
        mc_restore_cluster_parse("a=http://127.0.0.1:1,b=https://[::1]:2/,"
                                 "a=http://127.0.0.1:3",
                                 "tok", "a",
                                 "http://127.0.0.1:3,"
                                 "http://127.0.0.1:1/",
                                 rc, e),
        MOOR_OK);
    assert_true(rc->n == 2 && rc->self == 0 && rc->members[0].n_urls == 2);
    assert_string_equal(rc->members[1].urls[0], "https://[::1]:2");

    struct moor_buf enc;
    moor_buf_init(&enc);
    assert_int_equal(mc_restore_membership_encode(rc, &enc), MOOR_OK);
    Moorpb__Membership *ms =
        moorpb__membership__unpack(&moor_pb_allocator, enc.len, enc.ptr);
    assert_non_null(ms);
    assert_true(ms->cluster_id == rc->cluster_id && ms->n_members == 2);
    assert_string_equal(ms->members[1]->name, "b");
    assert_true(ms->members[1]->id == rc->members[1].id);
    assert_true(ms->members[0]->n_peer_urls == 2 &&
                ms->members[0]->n_client_urls == 0 &&
                !ms->members[0]->is_learner);
    moorpb__membership__free_unpacked(ms, &moor_pb_allocator);
    moor_buf_close(&enc);

    static const struct
    {
        const char *cluster, *name, *adv, *says;
    } bad[] = {
        {"a=http://x:1", "b", "http://x:1",
         "couldn't find local name \"b\" in the initial cluster "
         "configuration"},
        {"a=http://x:1", "a", "http://x:2",
         "--initial-cluster has a=http://x:1 but missing from "
         "--initial-advertise-peer-urls=http://x:2"},
        {"a=ftp://x:1", "a", "http://x:1", "URL scheme must be http"},
        {"a=http://x", "a", "http://x", "scheme://host:port"},
        {"a=http://x:99999", "a", "http://x:99999", "scheme://host:port"},
        {"=http://x:1", "a", "http://x:1", "is not name=url"},
        {"a=http://x:1,b=http://x:1", "a", "http://x:1", "same peer URLs"},
        {"", "a", "http://x:1", "empty"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            mc_restore_cluster_parse(bad[i].cluster, "t", bad[i].name,
                                     bad[i].adv, rc, e),
            MOOR_EINVAL);
        assert_non_null(strstr(e, bad[i].says));
    }
    free(rc);
}

static void test_cli_restore_writes_a_data_dir_with_etcdctls_defaults(
    void **state)
{
    (void)state;
    char out[1024], err[1024];
    char *argv[] = {S("moorctl"), S("snapshot"), S("restore"), backup};
    assert_int_equal(run(4, argv, out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(out, "Snapshot restored into default.etcd\n");
    assert_non_null(strstr(err,
                           "member default 8e9e05c52164694d of cluster "
                           "cdf818194e3a8c32"));
    char path[SNAP_PATH_MAX];
    snprintf(path, sizeof(path),
             "%s/default.etcd/member/snap/"
             "0000000000000001-0000000000000001.snap",
             root);
    struct snap_meta m;
    assert_int_equal(snap_verify(path, &m, NULL), MOOR_OK);
    assert_true(m.index == 1 && m.term == 1 && m.revision == 51);
    Moorpb__Membership *ms = moorpb__membership__unpack(
        &moor_pb_allocator, m.membership->len, m.membership->data);
    assert_non_null(ms);
    assert_true(ms->cluster_id == 0xcdf818194e3a8c32ull && ms->n_members == 1);
    assert_string_equal(ms->members[0]->peer_urls[0], "http://localhost:2380");
    moorpb__membership__free_unpacked(ms, &moor_pb_allocator);
    snap_meta_close(&m);

    /* Again: the data dir is not empty now. */
    assert_int_equal(run(4, argv, out, sizeof(out), err, sizeof(err)), 1);
    assert_string_equal(err,
                        "Error: data-dir \"default.etcd\" not empty or "
                        "could not be read\n");

    /* status of the two: same revision and keys, other hashes (the
     * restored state's applied index is 1). */
    char out2[1024];
    char *st1[] = {S("moorctl"), S("snapshot"), S("status"), backup};
    char *st2[] = {S("moorctl"), S("snapshot"), S("status"), path};
    assert_int_equal(run(4, st1, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(run(4, st2, out2, sizeof(out2), err, sizeof(err)), 0);
    assert_string_not_equal(out, out2);
    assert_non_null(strstr(out, ", 51, 20, "));
    assert_non_null(strstr(out2, ", 51, 20, "));
}

static void test_cli_restore_refuses_bad_input(void **state)
{
    (void)state;
    char out[1024], err[1024], damaged[SNAP_PATH_MAX], dir[SNAP_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/new", root);
    /* A truncated backup: refused, naming the file; nothing created. */
    snprintf(damaged, sizeof(damaged), "%s/short.db", root);
    FILE *in = fopen(backup, "rb"), *o = fopen(damaged, "wb");
    assert_true(in != NULL && o != NULL);
    char buf[200];
    size_t n = fread(buf, 1, sizeof(buf), in);
    fwrite(buf, 1, n, o);
    fclose(in);
    fclose(o);
    char *argv[] = {S("moorctl"), S("snapshot"),   S("restore"),
                    damaged,      S("--data-dir"), dir};
    assert_int_equal(run(6, argv, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, damaged));
    assert_non_null(strstr(err, "bad trailer magic"));
    assert_int_equal(access(dir, F_OK), -1);

    char *noname[] = {S("moorctl"), S("snapshot"), S("restore"),    backup,
                      S("--name"),  S("m2"),       S("--data-dir"), dir};
    assert_int_equal(run(8, noname, out, sizeof(out), err, sizeof(err)), 2);
    assert_string_equal(err,
                        "Error: couldn't find local name \"m2\" in the "
                        "initial cluster configuration\n");
    char *noarg[] = {S("moorctl"), S("snapshot"), S("restore")};
    assert_int_equal(run(3, noarg, out, sizeof(out), err, sizeof(err)), 2);
    assert_string_equal(
        err, "Error: snapshot restore requires exactly one argument\n");
    assert_int_equal(access(dir, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_restore_cluster_ids_are_etcds),
        cmocka_unit_test_setup_teardown(
            test_cli_restore_writes_a_data_dir_with_etcdctls_defaults, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_cli_restore_refuses_bad_input,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
