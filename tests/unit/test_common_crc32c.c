/* test_common_crc32c.c: the hardware crc32c (three interleaved lanes,
 * joined by shift tables) gives the table version's value for every
 * length around the lane boundaries, at every alignment, and when a crc is
 * continued over more bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/common.h"

#define BUF_BYTES (3 * 4096 * 2 + 3 * 64 * 2 + 64)

static uint8_t buf[BUF_BYTES + 8];

static void fill(void)
{
    struct moor_prng rng;
    moor_prng_seed(&rng, 42);
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)moor_prng_next(&rng);
    }
}

static void check(size_t off, size_t len, uint32_t seed)
{
    uint32_t hw = moor_crc32c(seed, buf + off, len);
    uint32_t sw = moor_crc32c_sw(seed, buf + off, len);
    if (hw != sw) {
        fail_msg("offset %zu length %zu seed %08x: %08x != %08x", off, len,
                 seed, hw, sw);
    }
}

static void test_crc32c_hw_matches_table_at_every_length_and_offset(
    void **state)
{
    (void)state;
    if (!moor_crc32c_hw_available()) {
        skip();
    }
    fill();
    /* Every length up to past two short rounds, at every alignment. */
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len <= 3 * 64 * 2 + 24; len++) {
            check(off, len, 0);
            check(off, len, 0xdeadbeefu);
        }
    }
    /* Around one and two long rounds. */
    size_t longs[] = {3 * 4096, 2 * 3 * 4096};
    for (size_t i = 0; i < 2; i++) {
        for (size_t len = longs[i] - 200; len <= longs[i] + 200; len++) {
            check(len % 8, len, 0x12345678u);
        }
    }
    check(3, BUF_BYTES, 0);
}

static void test_crc32c_continues_across_any_split(void **state)
{
    (void)state;
    fill();
    uint32_t whole = moor_crc32c(0, buf, BUF_BYTES);
    assert_int_equal(whole, moor_crc32c_sw(0, buf, BUF_BYTES));
    for (size_t cut = 0; cut <= BUF_BYTES; cut += 997) {
        uint32_t a = moor_crc32c(0, buf, cut);
        assert_int_equal(moor_crc32c(a, buf + cut, BUF_BYTES - cut), whole);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_crc32c_hw_matches_table_at_every_length_and_offset),
        cmocka_unit_test(test_crc32c_continues_across_any_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
