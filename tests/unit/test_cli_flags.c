/* test_cli_flags.c: moorctl's command line: pflag's parsing rules and
 * error texts, the global flags and their environment variables
 * (MOORCTL_ before ETCDCTL_, the command line over both), and mc_main's
 * usage errors and exit statuses (no server needed: each case fails or
 * finishes before dialing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "cli/cli.h"

/* argv strings: moorctl never writes to them. */
#define S(lit) ((char *)(lit))

struct opts
{
    bool prefix, keys;
    int64_t limit;
    char *name;
    uint64_t wait_ms;
};

static const struct mc_flag flags[] = {
    {"prefix", 0, MC_FLAG_BOOL, offsetof(struct opts, prefix), ""},
    {"keys", 'k', MC_FLAG_BOOL, offsetof(struct opts, keys), ""},
    {"limit", 'l', MC_FLAG_INT64, offsetof(struct opts, limit), ""},
    {"name", 'n', MC_FLAG_STRING, offsetof(struct opts, name), ""},
    {"wait", 0, MC_FLAG_DURATION, offsetof(struct opts, wait_ms), ""},
};

static int parse(struct opts *o, char **argv, int argc, char **pos,
                 size_t *npos, char *err)
{
    struct mc_flagset set = {flags, MOOR_ARRAY_LEN(flags), o};
    return mc_flags_parse(argc, argv, &set, 1, pos, npos, err);
}

static void test_cli_flags_parse_long_short_and_positional(void **state)
{
    (void)state;
    struct opts o = {0};
    char *argv[] = {S("a"),  S("--prefix"), S("--limit"),   S("10"),
                    S("b"),  S("-nfoo"),    S("--wait=1m"), S("-k"),
                    S("--"), S("--prefix"), S("-x")};
    char *pos[MC_ARGS_MAX];
    size_t n;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(parse(&o, argv, 11, pos, &n, err), MOOR_OK);
    assert_true(o.prefix);
    assert_true(o.keys);
    assert_int_equal(o.limit, 10);
    assert_string_equal(o.name, "foo");
    assert_int_equal(o.wait_ms, 60000);
    assert_int_equal(n, 4);
    assert_string_equal(pos[0], "a");
    assert_string_equal(pos[1], "b");
    assert_string_equal(pos[2], "--prefix"); /* after "--" */
    assert_string_equal(pos[3], "-x");
    moor_free(o.name);
}

static void test_cli_flags_bool_takes_only_an_attached_value(void **state)
{
    (void)state;
    struct opts o = {.prefix = true};
    char *argv[] = {
        S("--prefix=false"), S("true"), S("-n=bar"), S("-l"), S("-3"), S("-")};
    char *pos[MC_ARGS_MAX];
    size_t n;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(parse(&o, argv, 6, pos, &n, err), MOOR_OK);
    assert_false(o.prefix);
    assert_string_equal(o.name, "bar");
    assert_int_equal(o.limit, -3);
    assert_int_equal(n, 2); /* "true" stays positional, and so does "-" */
    assert_string_equal(pos[0], "true");
    assert_string_equal(pos[1], "-");
    moor_free(o.name);
}

static void expect_error(char **argv, int argc, const char *text)
{
    struct opts o = {0};
    char *pos[MC_ARGS_MAX];
    size_t n;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(parse(&o, argv, argc, pos, &n, err), MOOR_EINVAL);
    assert_string_equal(err, text);
    moor_free(o.name);
}

static void test_cli_flags_report_where_dashdash_was(void **state)
{
    (void)state;
    struct opts o = {0};
    struct mc_flagset set = {flags, MOOR_ARRAY_LEN(flags), &o};
    char *argv[] = {S("key"), S("--prefix"), S("--"), S("echo"), S("-n")};
    char *pos[MC_ARGS_MAX];
    size_t n, sep;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(mc_flags_parse_sep(5, argv, &set, 1, pos, &n, &sep, err),
                     MOOR_OK);
    assert_int_equal(n, 3);
    assert_int_equal(sep, 1);
    assert_string_equal(pos[2], "-n");
    assert_int_equal(mc_flags_parse_sep(2, argv, &set, 1, pos, &n, &sep, err),
                     MOOR_OK);
    assert_int_equal(sep, SIZE_MAX);
}

static void test_cli_flags_errors_use_pflag_texts(void **state)
{
    (void)state;
    char *a1[] = {S("--bogus")};
    expect_error(a1, 1, "unknown flag: --bogus");
    char *a2[] = {S("--bogus=1")};
    expect_error(a2, 1, "unknown flag: --bogus");
    char *a3[] = {S("-z")};
    expect_error(a3, 1, "unknown shorthand flag: 'z' in -z");
    char *a4[] = {S("--limit")};
    expect_error(a4, 1, "flag needs an argument: --limit");
    char *a5[] = {S("--limit=x")};
    expect_error(a5, 1,
                 "invalid argument \"x\" for \"--limit\" flag: "
                 "strconv.ParseInt: parsing \"x\": invalid syntax");
    char *a6[] = {S("--prefix=maybe")};
    expect_error(a6, 1,
                 "invalid argument \"maybe\" for \"--prefix\" flag: "
                 "strconv.ParseBool: parsing \"maybe\": invalid syntax");
    char *a7[] = {S("--wait"), S("soon")};
    expect_error(a7, 2,
                 "invalid argument \"soon\" for \"--wait\" flag: time: "
                 "invalid duration \"soon\"");
    char *a8[] = {S("-l")};
    expect_error(a8, 1, "flag needs an argument: 'l' in -l");
}

static void test_cli_flags_refuse_more_than_args_max(void **state)
{
    (void)state;
    char *argv[MC_ARGS_MAX + 1];
    for (size_t i = 0; i < MOOR_ARRAY_LEN(argv); i++) {
        argv[i] = S("x");
    }
    struct opts o = {0};
    char *pos[MC_ARGS_MAX];
    size_t n;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(parse(&o, argv, MC_ARGS_MAX, pos, &n, err), MOOR_OK);
    assert_int_equal(parse(&o, argv, MC_ARGS_MAX + 1, pos, &n, err),
                     MOOR_ETOOBIG);
}

/* A fake environment: pairs of name, value. */
static const char *fake_getenv(const char *name, void *arg)
{
    const char *const *env = arg;
    for (size_t i = 0; env[i] != NULL; i += 2) {
        if (strcmp(env[i], name) == 0) {
            return env[i + 1];
        }
    }
    return NULL;
}

static void test_cli_global_defaults_are_etcdctls(void **state)
{
    (void)state;
    struct mc_global g;
    enum mc_format f;
    assert_int_equal(mc_global_init(&g), MOOR_OK);
    assert_int_equal(g.endpoints_len, 1);
    assert_string_equal(g.endpoints[0], "127.0.0.1:2379");
    assert_int_equal(g.dial_timeout_ms, 2000);
    assert_int_equal(g.command_timeout_ms, 5000);
    assert_int_equal(mc_global_format(&g, &f), MOOR_OK);
    assert_int_equal(f, MC_FMT_SIMPLE);
    assert_true(g.insecure_transport);
    mc_global_close(&g);
}

static void test_cli_env_moorctl_wins_and_flags_override(void **state)
{
    (void)state;
    struct mc_global g;
    char err[MOOR_ERRMSG_SIZE];
    const char *env[] = {"ETCDCTL_ENDPOINTS",
                         "10.0.0.1:1,10.0.0.2:2",
                         "ETCDCTL_DIAL_TIMEOUT",
                         "7s",
                         "MOORCTL_DIAL_TIMEOUT",
                         "3s",
                         "ETCDCTL_WRITE_OUT",
                         "json",
                         "ETCDCTL_INSECURE_SKIP_TLS_VERIFY",
                         "true",
                         NULL};
    assert_int_equal(mc_global_init(&g), MOOR_OK);
    assert_int_equal(mc_global_from_env(&g, fake_getenv, env, err), MOOR_OK);
    assert_int_equal(g.endpoints_len, 2);
    assert_string_equal(g.endpoints[1], "10.0.0.2:2");
    assert_int_equal(g.dial_timeout_ms, 3000);
    assert_string_equal(g.write_out, "json");
    assert_true(g.insecure_skip_tls_verify);

    /* --endpoints on the command line replaces the environment's list;
     * a second --endpoints adds to the first. */
    struct mc_flagset set = {mc_global_flags, mc_global_flags_len, &g};
    char *argv[] = {S("--endpoints=127.0.0.1:5"), S("--endpoints"),
                    S("127.0.0.1:6"), S("-w"), S("fields")};
    char *pos[MC_ARGS_MAX];
    size_t n;
    assert_int_equal(mc_flags_parse(5, argv, &set, 1, pos, &n, err), MOOR_OK);
    assert_int_equal(g.endpoints_len, 2);
    assert_string_equal(g.endpoints[0], "127.0.0.1:5");
    assert_string_equal(g.endpoints[1], "127.0.0.1:6");
    assert_string_equal(g.write_out, "fields");
    mc_global_close(&g);
}

static void test_cli_env_bad_value_names_the_variable(void **state)
{
    (void)state;
    struct mc_global g;
    char err[MOOR_ERRMSG_SIZE];
    const char *env[] = {"ETCDCTL_COMMAND_TIMEOUT", "soon", NULL};
    assert_int_equal(mc_global_init(&g), MOOR_OK);
    assert_int_equal(mc_global_from_env(&g, fake_getenv, env, err),
                     MOOR_EINVAL);
    assert_non_null(strstr(err, "ETCDCTL_COMMAND_TIMEOUT"));
    mc_global_close(&g);
}

static void test_cli_too_many_endpoints_are_refused(void **state)
{
    (void)state;
    struct mc_global g;
    char err[MOOR_ERRMSG_SIZE];
    char list[MC_ENDPOINTS_MAX * 16 + 16] = "";
    for (int i = 0; i <= MC_ENDPOINTS_MAX; i++) {
        strcat(list, i > 0 ? ",h:1" : "h:1");
    }
    assert_int_equal(mc_global_init(&g), MOOR_OK);
    assert_int_equal(mc_flag_set(&mc_global_flags[0], &g, list, err),
                     MOOR_ETOOBIG);
    mc_global_close(&g);
}

/* Runs mc_main; returns the exit status and what it wrote. */
static int run_main(char **argv, int argc, char *out, size_t out_size,
                    char *err, size_t err_size)
{
    FILE *fin = tmpfile(), *fout = tmpfile(), *ferr = tmpfile();
    assert_non_null(fin);
    assert_non_null(fout);
    assert_non_null(ferr);
    int code = mc_main(argc, argv, fin, fout, ferr);
    rewind(fout);
    rewind(ferr);
    size_t n = fread(out, 1, out_size - 1, fout);
    out[n] = 0;
    n = fread(err, 1, err_size - 1, ferr);
    err[n] = 0;
    fclose(fin);
    fclose(fout);
    fclose(ferr);
    return code;
}

static void test_cli_main_usage_errors_exit_2_with_etcdctl_texts(void **state)
{
    (void)state;
    char out[4096], err[4096];
    struct
    {
        char *argv[6];
        int argc;
        const char *err;
    } cases[] = {
        {{S("moorctl"), S("get")},
         2,
         "Error: get command needs one argument as key and an optional "
         "argument as range_end\n"},
        {{S("moorctl"), S("get"), S("a"), S("--prefix"), S("--from-key")},
         5,
         "Error: `--prefix` and `--from-key` cannot be set at the same time, "
         "choose one\n"},
        {{S("moorctl"), S("put")},
         2,
         "Error: put command needs 1 argument and input from stdin or 2 "
         "arguments\n"},
        {{S("moorctl"), S("get"), S("a"), S("--bogus")},
         4,
         "Error: unknown flag: --bogus\n"},
        {{S("moorctl"), S("frob")},
         2,
         "Error: unknown command \"frob\" for \"moorctl\"\n"},
        {{S("moorctl"), S("-w"), S("yaml"), S("get"), S("a")},
         5,
         "Error: unknown output format \"yaml\"\n"},
        {{S("moorctl"), S("lease"), S("revoke"), S("xyz")},
         4,
         "Error: bad lease ID arg (strconv.ParseInt: parsing \"xyz\": invalid "
         "syntax), expecting ID in Hex\n"},
        {{S("moorctl"), S("member"), S("remove")},
         3,
         "Error: member ID is not provided\n"},
        {{S("moorctl"), S("txn"), S("x")},
         3,
         "Error: txn command does not accept argument\n"},
        {{S("moorctl"), S("watch")}, 2, "Error: bad number of arguments\n"},
    };
    for (size_t i = 0; i < MOOR_ARRAY_LEN(cases); i++) {
        int code = run_main(cases[i].argv, cases[i].argc, out, sizeof(out), err,
                            sizeof(err));
        assert_int_equal(code, MC_EXIT_USAGE);
        assert_string_equal(err, cases[i].err);
        assert_string_equal(out, "");
    }
}

static void test_cli_main_version_and_help_exit_0(void **state)
{
    (void)state;
    char out[8192], err[4096];
    char *v[] = {S("moorctl"), S("version")};
    assert_int_equal(run_main(v, 2, out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(out, "moorctl version: 0.1.0\nAPI version: 3.4\n");
    char *h[] = {S("moorctl"), S("get"), S("--help")};
    assert_int_equal(run_main(h, 3, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, "--print-value-only"));
    char *none[] = {S("moorctl")};
    assert_int_equal(run_main(none, 1, out, sizeof(out), err, sizeof(err)),
                     MC_EXIT_USAGE);
    assert_non_null(strstr(err, "snapshot save"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_flags_parse_long_short_and_positional),
        cmocka_unit_test(test_cli_flags_bool_takes_only_an_attached_value),
        cmocka_unit_test(test_cli_flags_report_where_dashdash_was),
        cmocka_unit_test(test_cli_flags_errors_use_pflag_texts),
        cmocka_unit_test(test_cli_flags_refuse_more_than_args_max),
        cmocka_unit_test(test_cli_global_defaults_are_etcdctls),
        cmocka_unit_test(test_cli_env_moorctl_wins_and_flags_override),
        cmocka_unit_test(test_cli_env_bad_value_names_the_variable),
        cmocka_unit_test(test_cli_too_many_endpoints_are_refused),
        cmocka_unit_test(test_cli_main_usage_errors_exit_2_with_etcdctl_texts),
        cmocka_unit_test(test_cli_main_version_and_help_exit_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
