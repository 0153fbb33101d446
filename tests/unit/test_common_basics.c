/* test_common_basics.c: crc32c vectors, varints, buffers, the allocator's
 * accounting and fault injection, errors, the PRNG's determinism. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/common.h"

/* RFC 3720 appendix B.4 and the common "123456789" check value. */
static void test_crc32c_matches_standard_vectors(void **state)
{
    (void)state;
    uint8_t buf[48];
    assert_int_equal(moor_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(moor_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    memset(buf, 0, 32);
    assert_int_equal(moor_crc32c(0, buf, 32), 0x8A9136AAu);
    assert_int_equal(moor_crc32c_sw(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    assert_int_equal(moor_crc32c(0, buf, 32), 0x62A8AB43u);
    assert_int_equal(moor_crc32c_sw(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) {
        buf[i] = (uint8_t)i;
    }
    assert_int_equal(moor_crc32c(0, buf, 32), 0x46DD794Eu);
    assert_int_equal(moor_crc32c_sw(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) {
        buf[i] = (uint8_t)(31 - i);
    }
    assert_int_equal(moor_crc32c(0, buf, 32), 0x113FDB5Cu);
    assert_int_equal(moor_crc32c_sw(0, buf, 32), 0x113FDB5Cu);
    static const uint8_t iscsi[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(moor_crc32c(0, iscsi, 48), 0xD9963A56u);
    assert_int_equal(moor_crc32c_sw(0, iscsi, 48), 0xD9963A56u);
}

static void test_crc32c_chains_and_agrees_at_every_alignment(void **state)
{
    (void)state;
    uint8_t data[300];
    struct moor_prng r;
    moor_prng_seed(&r, 7);
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)moor_prng_next(&r);
    }
    uint32_t whole = moor_crc32c(0, data, sizeof(data));
    for (size_t off = 0; off < 16; off++) {
        for (size_t cut = 0; cut < sizeof(data) - off; cut += 37) {
            size_t len = sizeof(data) - off;
            uint32_t a = moor_crc32c(0, data + off, cut);
            a = moor_crc32c(a, data + off + cut, len - cut);
            assert_int_equal(a, moor_crc32c_sw(0, data + off, len));
        }
    }
    assert_int_equal(whole, moor_crc32c_sw(0, data, sizeof(data)));
}

static void test_varint_round_trips_and_rejects_bad_input(void **state)
{
    (void)state;
    static const uint64_t values[] = {
        0,         1,     127,        128,        300,
        16383,     16384, UINT32_MAX, 1ull << 56, UINT64_MAX - 1,
        UINT64_MAX};
    uint8_t buf[MOOR_VARINT_MAX];
    for (size_t i = 0; i < MOOR_ARRAY_LEN(values); i++) {
        size_t n = moor_varint_put(buf, values[i]);
        assert_int_equal(n, moor_varint_len(values[i]));
        uint64_t v = 0;
        assert_int_equal(moor_varint_get(buf, n, &v), n);
        assert_true(v == values[i]);
        /* Every truncation is refused. */
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(moor_varint_get(buf, k, &v), 0);
        }
    }
    /* 300 is ac 02, as protobuf encodes it. */
    assert_int_equal(moor_varint_put(buf, 300), 2);
    assert_int_equal(buf[0], 0xac);
    assert_int_equal(buf[1], 0x02);
    /* Eleven continuation bytes, and a tenth byte that overflows. */
    uint8_t bad[11];
    memset(bad, 0xff, sizeof(bad));
    uint64_t v;
    assert_int_equal(moor_varint_get(bad, sizeof(bad), &v), 0);
    memset(bad, 0x80, 9);
    bad[9] = 0x02;
    assert_int_equal(moor_varint_get(bad, 10, &v), 0);
}

static void test_buf_grows_appends_and_consumes(void **state)
{
    (void)state;
    struct moor_buf b;
    moor_buf_init(&b);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(moor_buf_printf(&b, "%d,", i), MOOR_OK);
    }
    assert_true(b.len > 1000 && b.len <= b.cap);
    assert_memory_equal(b.ptr, "0,1,2,", 6);
    moor_buf_consume(&b, 4);
    assert_memory_equal(b.ptr, "2,3,", 4);
    moor_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(moor_buf_append(&b, "xyz", 3), MOOR_OK);
    assert_memory_equal(b.ptr, "xyz", 3);
    moor_buf_close(&b);
    assert_null(b.ptr);
}

static void test_alloc_counts_bytes_and_fails_on_request(void **state)
{
    (void)state;
    size_t before = moor_alloc_bytes();
    size_t count = moor_alloc_count();
    /* Blocks count as malloc's usable size: at least the request. */
    void *p = moor_malloc(100);
    assert_non_null(p);
    assert_true(malloc_usable_size(p) >= 100);
    assert_int_equal(moor_alloc_bytes(), before + malloc_usable_size(p));
    p = moor_realloc(p, 1000);
    assert_non_null(p);
    assert_true(malloc_usable_size(p) >= 1000);
    assert_int_equal(moor_alloc_bytes(), before + malloc_usable_size(p));
    assert_int_equal(moor_alloc_count(), count + 1);
    moor_free(p);
    assert_int_equal(moor_alloc_bytes(), before);

    moor_alloc_fail_after(2);
    void *a = moor_malloc(1);
    void *b = moor_malloc(1);
    void *c = moor_malloc(1); /* the third fails */
    void *d = moor_malloc(1); /* and it fires once */
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_non_null(d);
    moor_free(a);
    moor_free(b);
    moor_free(d);

    struct moor_buf buf;
    moor_buf_init(&buf);
    moor_alloc_fail_after(0);
    assert_int_equal(moor_buf_append(&buf, "x", 1), MOOR_ENOMEM);
    assert_int_equal(buf.len, 0);
    moor_buf_close(&buf);
    assert_int_equal(moor_alloc_bytes(), before);
}

/* Small blocks are reused from a per-thread cache: whatever sizes and
 * reallocs they went through, live blocks never overlap, a reused block
 * holds any size of its class, the accounting stays exact and fault
 * injection still counts every allocation. */
static void test_alloc_reuses_small_blocks_without_overlap(void **state)
{
    (void)state;
    enum { N = 700 };
    static uint8_t *p[N];
    static size_t len[N];
    size_t before = moor_alloc_bytes();
    size_t count = moor_alloc_count();
    for (int round = 0; round < 4; round++) {
        size_t total = 0;
        for (size_t i = 0; i < N; i++) {
            /* Every size from 0 to past the cache's largest class, in a
             * different order each round; some blocks grown or shrunk
             * across the small/large boundary by realloc. */
            len[i] = (i * 7 + (size_t)round * 131) % N;
            p[i] = moor_malloc(len[i]);
            assert_non_null(p[i]);
            if (i % 5 == 0) {
                len[i] = (len[i] * 3 + 17) % N;
                p[i] = moor_realloc(p[i], len[i]);
                assert_non_null(p[i]);
            }
            assert_true(malloc_usable_size(p[i]) >= len[i]);
            memset(p[i], (int)(i & 0xff), len[i]);
            total += malloc_usable_size(p[i]);
        }
        assert_int_equal(moor_alloc_bytes(), before + total);
        assert_int_equal(moor_alloc_count(), count + N);
        for (size_t i = 0; i < N; i++) {
            for (size_t j = 0; j < len[i]; j++) {
                assert_int_equal(p[i][j], (uint8_t)(i & 0xff));
            }
        }
        /* Free every other block first, so the next round mixes reused
         * and fresh memory. */
        for (size_t i = 0; i < N; i += 2) {
            moor_free(p[i]);
        }
        for (size_t i = 1; i < N; i += 2) {
            moor_free(p[i]);
        }
        assert_int_equal(moor_alloc_bytes(), before);
        assert_int_equal(moor_alloc_count(), count);
    }
    void *a = moor_malloc(24);
    moor_free(a);
    moor_alloc_fail_after(0);
    assert_null(moor_malloc(24)); /* a cached block is there: still fails */
    a = moor_malloc(24);
    assert_non_null(a);
    moor_free(a);
    assert_int_equal(moor_alloc_bytes(), before);
}

static void test_bytes_are_freed_at_last_unref(void **state)
{
    (void)state;
    size_t before = moor_alloc_count();
    struct moor_bytes *b = moor_bytes_copy("hello", 5);
    assert_non_null(b);
    assert_ptr_equal(moor_bytes_ref(b), b);
    assert_int_equal(b->refs, 2);
    moor_bytes_unref(b);
    assert_true(moor_slice_eq(moor_bytes_slice(b), moor_slice_str("hello")));
    moor_bytes_unref(b);
    assert_int_equal(moor_alloc_count(), before);
}

static void test_slice_cmp_orders_bytewise_shorter_first(void **state)
{
    (void)state;
    assert_true(moor_slice_cmp(moor_slice_str("a"), moor_slice_str("b")) < 0);
    assert_true(moor_slice_cmp(moor_slice_str("ab"), moor_slice_str("a")) > 0);
    assert_true(moor_slice_cmp(moor_slice_str(""), moor_slice_str("")) == 0);
    assert_true(moor_slice_cmp(moor_slice_make("\xff", 1),
                               moor_slice_make("\x01\x00", 2)) > 0);
}

static void test_errors_have_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(moor_strerror(MOOR_OK), "ok");
    assert_string_equal(moor_errname(MOOR_ENOSPC), "MOOR_ENOSPC");
    assert_string_equal(moor_strerror(MOOR_ENOSPC), "no space left on device");
    assert_string_equal(moor_strerror(12345), "unknown error");
    assert_int_equal(moor_err_from_errno(28 /* ENOSPC */), MOOR_ENOSPC);
    assert_true(MOOR_ENOMEM < 0 && MOOR_EAGAIN < 0);
}

static void test_prng_is_deterministic_and_bounded(void **state)
{
    (void)state;
    struct moor_prng a, b;
    moor_prng_seed(&a, 42);
    moor_prng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) {
        assert_true(moor_prng_next(&a) == moor_prng_next(&b));
    }
    int hist[10] = {0};
    for (int i = 0; i < 100000; i++) {
        uint64_t x = moor_prng_below(&a, 10);
        assert_true(x < 10);
        hist[x]++;
        uint64_t y = moor_prng_range(&a, 5, 7);
        assert_true(y >= 5 && y <= 7);
    }
    for (int i = 0; i < 10; i++) {
        assert_in_range(hist[i], 9000, 11000);
    }
    /* A known first value pins the algorithm across machines. */
    moor_prng_seed(&a, 0);
    uint64_t first = moor_prng_next(&a);
    moor_prng_seed(&b, 0);
    assert_true(first == moor_prng_next(&b));
    moor_prng_seed(&b, 1);
    assert_true(first != moor_prng_next(&b));
}

static struct moor_buf captured;

static void capture_sink(enum moor_log_level level, const char *line,
                         size_t len, void *arg)
{
    (void)level;
    (void)arg;
    moor_buf_append(&captured, line, len);
}

static void test_log_writes_text_and_json_lines(void **state)
{
    (void)state;
    moor_buf_init(&captured);
    moor_log_set_sink(capture_sink, NULL);
    moor_log_set_level(MOOR_LOG_INFO);
    MOOR_LOG_DEBUG("t", "hidden", "x=%d", 1);
    assert_int_equal(captured.len, 0);
    MOOR_LOG_INFO("wal", "segment created", "file=%s", "a.wal");
    moor_buf_putc(&captured, 0);
    assert_non_null(
        strstr((char *)captured.ptr, "INFO wal: segment created file=a.wal\n"));
    moor_buf_reset(&captured);
    moor_log_set_format(MOOR_LOG_JSON);
    MOOR_LOG_WARN("raft", "say \"hi\"", NULL);
    moor_buf_putc(&captured, 0);
    assert_non_null(strstr((char *)captured.ptr,
                           "\"level\":\"warn\",\"module\":\"raft\","
                           "\"msg\":\"say \\\"hi\\\"\"}\n"));
    moor_log_set_format(MOOR_LOG_TEXT);
    moor_log_set_sink(NULL, NULL);
    enum moor_log_level lv;
    assert_int_equal(moor_log_parse_level("warn", &lv), MOOR_OK);
    assert_int_equal(lv, MOOR_LOG_WARN);
    assert_int_equal(moor_log_parse_level("loud", &lv), MOOR_EINVAL);
    moor_buf_close(&captured);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_matches_standard_vectors),
        cmocka_unit_test(test_crc32c_chains_and_agrees_at_every_alignment),
        cmocka_unit_test(test_varint_round_trips_and_rejects_bad_input),
        cmocka_unit_test(test_buf_grows_appends_and_consumes),
        cmocka_unit_test(test_alloc_counts_bytes_and_fails_on_request),
        cmocka_unit_test(test_alloc_reuses_small_blocks_without_overlap),
        cmocka_unit_test(test_bytes_are_freed_at_last_unref),
        cmocka_unit_test(test_slice_cmp_orders_bytewise_shorter_first),
        cmocka_unit_test(test_errors_have_names_and_messages),
        cmocka_unit_test(test_prng_is_deterministic_and_bounded),
        cmocka_unit_test(test_log_writes_text_and_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
