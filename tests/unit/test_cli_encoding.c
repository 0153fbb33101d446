/* test_cli_encoding.c: moorctl's encodings against the Go functions etcdctl
 * uses: base64 (RFC 4648 vectors), hex, %q and its inverse, encoding/json
 * strings, time.Duration parse and String(), go-humanize's Bytes(), the
 * prefix range end, and the arena. Expected strings are what Go prints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/cli.h"

static void expect_buf(struct moor_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    if (b->len > 0) {
        assert_memory_equal(b->ptr, want, b->len);
    }
    moor_buf_reset(b);
}

static void test_cli_base64_matches_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const in[] = {"",     "f",     "fo",    "foo",
                                     "foob", "fooba", "foobar"};
    static const char *const out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    struct moor_buf b;
    moor_buf_init(&b);
    for (size_t i = 0; i < MOOR_ARRAY_LEN(in); i++) {
        assert_int_equal(mc_base64_append(&b, in[i], strlen(in[i])), MOOR_OK);
        expect_buf(&b, out[i]);
    }
    static const uint8_t bin[] = {0xff, 0xfe, 0x00, 0x3e, 0x3f};
    assert_int_equal(mc_base64_append(&b, bin, sizeof(bin)), MOOR_OK);
    expect_buf(&b, "//4APj8=");
    moor_buf_close(&b);
}

static void test_cli_hex_is_lower_case_pairs(void **state)
{
    (void)state;
    struct moor_buf b;
    moor_buf_init(&b);
    static const uint8_t bin[] = {0x00, 0x0f, 0xa0, 0xff};
    assert_int_equal(mc_hex_append(&b, bin, sizeof(bin)), MOOR_OK);
    expect_buf(&b, "000fa0ff");
    moor_buf_close(&b);
}

/* Outputs of Go's fmt.Sprintf("%q", s). */
static void test_cli_goquote_matches_go_percent_q(void **state)
{
    (void)state;
    struct moor_buf b;
    moor_buf_init(&b);
    struct
    {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"foo", 3, "\"foo\""},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"\n\t\r\a\b\f\v", 7, "\"\\n\\t\\r\\a\\b\\f\\v\""},
        {"\x01\x7f", 2, "\"\\x01\\x7f\""},
        {"\xff\xfe", 2, "\"\\xff\\xfe\""},
        {"\xc3\xa9t\xc3\xa9", 5, "\"\xc3\xa9t\xc3\xa9\""}, /* "été" */
        {"\xc2\x85", 2, "\"\\u0085\""},                    /* NEL */
        {"\0", 1, "\"\\x00\""},
        {"", 0, "\"\""},
    };
    for (size_t i = 0; i < MOOR_ARRAY_LEN(cases); i++) {
        assert_int_equal(mc_goquote_append(&b, cases[i].in, cases[i].len),
                         MOOR_OK);
        expect_buf(&b, cases[i].out);
    }
    moor_buf_close(&b);
}

/* Outputs of Go's json.Marshal(string). */
static void test_cli_json_string_escapes_as_go_encoding_json(void **state)
{
    (void)state;
    struct moor_buf b;
    moor_buf_init(&b);
    assert_int_equal(mc_json_string_append(&b, "a<b>&\"c\\\n\x01", 10),
                     MOOR_OK);
    expect_buf(&b, "\"a\\u003cb\\u003e\\u0026\\\"c\\\\\\n\\u0001\"");
    assert_int_equal(mc_json_string_append(&b,
                                           "\xff"
                                           "ok",
                                           3),
                     MOOR_OK);
    expect_buf(&b, "\"\\ufffdok\"");
    assert_int_equal(mc_json_string_append(&b, "\xe2\x80\xa8", 3), MOOR_OK);
    expect_buf(&b, "\"\\u2028\"");
    moor_buf_close(&b);
}

static void test_cli_unquote_reads_go_quoted_strings(void **state)
{
    (void)state;
    struct moor_buf b;
    size_t used;
    moor_buf_init(&b);
    assert_int_equal(mc_unquote("\"a b\") rest", &b, &used), MOOR_OK);
    assert_int_equal(used, 5);
    expect_buf(&b, "a b");
    assert_int_equal(mc_unquote("\"\\x41\\u00e9\\n\\\"\\101\"", &b, &used),
                     MOOR_OK);
    expect_buf(&b, "A\xc3\xa9\n\"A");
    assert_int_equal(mc_unquote("`raw\\n`", &b, &used), MOOR_OK);
    assert_int_equal(used, 7);
    expect_buf(&b, "raw\\n");
    moor_buf_reset(&b);
    assert_int_equal(mc_unquote("\"open", &b, &used), MOOR_EINVAL);
    moor_buf_reset(&b);
    assert_int_equal(mc_unquote("noquote", &b, &used), MOOR_EINVAL);
    moor_buf_reset(&b);
    assert_int_equal(mc_unquote("\"bad \\q\"", &b, &used), MOOR_EINVAL);
    moor_buf_reset(&b);
    assert_int_equal(mc_unquote("\"\\xZZ\"", &b, &used), MOOR_EINVAL);
    moor_buf_close(&b);
}

static void test_cli_duration_parse_accepts_go_syntax(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(mc_duration_parse("2s", &ms), MOOR_OK);
    assert_int_equal(ms, 2000);
    assert_int_equal(mc_duration_parse("1m30s", &ms), MOOR_OK);
    assert_int_equal(ms, 90000);
    assert_int_equal(mc_duration_parse("1.5h", &ms), MOOR_OK);
    assert_int_equal(ms, 5400000);
    assert_int_equal(mc_duration_parse("300ms", &ms), MOOR_OK);
    assert_int_equal(ms, 300);
    assert_int_equal(mc_duration_parse("1500us", &ms), MOOR_OK);
    assert_int_equal(ms, 1);
    assert_int_equal(mc_duration_parse("0", &ms), MOOR_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(mc_duration_parse("", &ms), MOOR_EINVAL);
    assert_int_equal(mc_duration_parse("5", &ms), MOOR_EINVAL);
    assert_int_equal(mc_duration_parse("s", &ms), MOOR_EINVAL);
    assert_int_equal(mc_duration_parse("2 s", &ms), MOOR_EINVAL);
    assert_int_equal(mc_duration_parse("3d", &ms), MOOR_EINVAL);
    assert_int_equal(mc_duration_parse("-1s", &ms), MOOR_EINVAL);
}

/* Outputs of Go's time.Duration(ns).String(). */
static void test_cli_duration_format_matches_go(void **state)
{
    (void)state;
    struct moor_buf b;
    moor_buf_init(&b);
    struct
    {
        uint64_t ns;
        const char *out;
    } cases[] = {
        {0, "0s"},
        {999, "999ns"},
        {1000, "1\xc2\xb5s"},
        {812400, "812.4\xc2\xb5s"},
        {1656901, "1.656901ms"},
        {1000000, "1ms"},
        {2000000000, "2s"},
        {1500000000, "1.5s"},
        {90000000000ull, "1m30s"},
        {3600000000000ull, "1h0m0s"},
        {3723000000001ull, "1h2m3.000000001s"},
    };
    for (size_t i = 0; i < MOOR_ARRAY_LEN(cases); i++) {
        assert_int_equal(mc_duration_format(&b, cases[i].ns), MOOR_OK);
        expect_buf(&b, cases[i].out);
    }
    moor_buf_close(&b);
}

/* Outputs of go-humanize's Bytes(). */
static void test_cli_humanize_bytes_matches_go_humanize(void **state)
{
    (void)state;
    struct moor_buf b;
    moor_buf_init(&b);
    struct
    {
        uint64_t n;
        const char *out;
    } cases[] = {
        {0, "0 B"},
        {9, "9 B"},
        {10, "10 B"},
        {999, "999 B"},
        {20480, "20 kB"},
        {1500, "1.5 kB"},
        {16384, "16 kB"},
        {2500000, "2.5 MB"},
        {123456789, "124 MB"},
        {5000000000ull, "5.0 GB"},
    };
    for (size_t i = 0; i < MOOR_ARRAY_LEN(cases); i++) {
        assert_int_equal(mc_humanize_bytes(&b, cases[i].n), MOOR_OK);
        expect_buf(&b, cases[i].out);
    }
    moor_buf_close(&b);
}

static void test_cli_prefix_end_increments_the_last_byte_below_ff(void **state)
{
    (void)state;
    uint8_t end[8];
    assert_int_equal(mc_prefix_end((const uint8_t *)"abc", 3, end), 3);
    assert_memory_equal(end, "abd", 3);
    assert_int_equal(mc_prefix_end((const uint8_t *)"a\xff\xff", 3, end), 1);
    assert_memory_equal(end, "b", 1);
    assert_int_equal(mc_prefix_end((const uint8_t *)"\xff\xff", 2, end), 1);
    assert_int_equal(end[0], 0);
    assert_int_equal(mc_prefix_end((const uint8_t *)"", 0, end), 1);
    assert_int_equal(end[0], 0);
}

static void test_cli_arena_returns_zeroed_aligned_memory(void **state)
{
    (void)state;
    struct mc_arena a;
    mc_arena_init(&a);
    for (size_t i = 1; i < 200; i++) {
        uint8_t *p = mc_arena_alloc(&a, i * 37);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t k = 0; k < i * 37; k++) {
            assert_int_equal(p[k], 0);
        }
        memset(p, 0xab, i * 37);
    }
    char *d = mc_arena_dup(&a, "xyz", 3);
    assert_string_equal(d, "xyz");
    /* A failed allocation is NULL, not a crash. */
    moor_alloc_fail_after(0);
    assert_null(mc_arena_alloc(&a, 100000));
    moor_alloc_fail_after(-1);
    mc_arena_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_base64_matches_rfc4648_vectors),
        cmocka_unit_test(test_cli_hex_is_lower_case_pairs),
        cmocka_unit_test(test_cli_goquote_matches_go_percent_q),
        cmocka_unit_test(test_cli_json_string_escapes_as_go_encoding_json),
        cmocka_unit_test(test_cli_unquote_reads_go_quoted_strings),
        cmocka_unit_test(test_cli_duration_parse_accepts_go_syntax),
        cmocka_unit_test(test_cli_duration_format_matches_go),
        cmocka_unit_test(test_cli_humanize_bytes_matches_go_humanize),
        cmocka_unit_test(test_cli_prefix_end_increments_the_last_byte_below_ff),
        cmocka_unit_test(test_cli_arena_returns_zeroed_aligned_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
