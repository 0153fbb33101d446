/*
 * crc32c.c: CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78).
 *
 * Two implementations giving identical results: slicing-by-8 tables, and
 * the SSE4.2 crc32 instruction, chosen once at first use by cpuid. The
 * public value is the standard one (initial ~0, final xor ~0); passing a
 * previous result as crc continues the computation over more bytes.
 *
 * The hardware version runs three streams at once. One crc32 instruction
 * has a latency of three cycles but the CPU can start one per cycle, so a
 * single chain of them uses a third of what the CPU offers. A buffer of
 * 3 x N bytes is therefore split into lanes A, B and C, each crc'd on its
 * own (B and C from a register of 0), and joined: the register after A||B
 * is shift_N(a) ^ b, where shift_N(x) is the register after feeding N zero
 * bytes to x. shift_N is linear in x, so it is four table lookups (one per
 * byte of x), the tables made at first use for the two lane sizes below.
 * This is Mark Adler's crc32c.c scheme (zlib's author; also in Linux's
 * crc32c-intel as "3-way interleave").
 */
#include <pthread.h>

#include "common.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

static uint32_t table[8][256];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool hw;

/* Lane sizes of the three-way hardware loop: long rounds for big buffers
 * (the join's cost vanishes), short ones for WAL records of a few hundred
 * bytes. Multiples of 8. */
#define CRC_LONG 4096u
#define CRC_SHORT 64u
/* shift tables: the register after N zero bytes, per byte of the input
 * register (row j: byte j). */
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];

/* The raw register (no pre or post inversion) after n zero bytes. */
static uint32_t zeros_sw(uint32_t c, size_t n)
{
    while (n-- > 0) {
        c = (c >> 8) ^ table[0][c & 0xff];
    }
    return c;
}

/* Fills t for N = n: the map is linear, so it is built from its value on
 * the 32 single-bit registers. */
static void shift_init(uint32_t t[4][256], size_t n)
{
    uint32_t bit[32];
    for (unsigned i = 0; i < 32; i++) {
        bit[i] = zeros_sw(1u << i, n);
    }
    for (unsigned j = 0; j < 4; j++) {
        for (unsigned b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (unsigned k = 0; k < 8; k++) {
                if ((b >> k) & 1u) {
                    v ^= bit[8 * j + k];
                }
            }
            t[j][b] = v;
        }
    }
}

static inline uint32_t shift(uint32_t t[4][256], uint32_t c)
{
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^
           t[3][c >> 24];
}

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = table[t - 1][i];
            table[t][i] = (prev >> 8) ^ table[0][prev & 0xff];
        }
    }
    shift_init(shift_long, CRC_LONG);
    shift_init(shift_short, CRC_SHORT);
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        hw = (c & bit_SSE4_2) != 0;
    }
#endif
}

uint32_t moor_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&init_once, crc_init);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint32_t lo = c ^ moor_get_le32(p);
        uint32_t hi = moor_get_le32(p + 4);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
            table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
            table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
        len--;
    }
    return ~c;
}

#if defined(__x86_64__)
static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Three lanes of n bytes from p: returns the register after all 3n bytes,
 * starting from c. */
__attribute__((target("sse4.2"))) static inline uint64_t crc_hw_3way(
    uint64_t c, const uint8_t *p, size_t n, uint32_t t[4][256])
{
    uint64_t c1 = 0;
    uint64_t c2 = 0;
    for (const uint8_t *end = p + n; p < end; p += 8) {
        c = _mm_crc32_u64(c, load64(p));
        c1 = _mm_crc32_u64(c1, load64(p + n));
        c2 = _mm_crc32_u64(c2, load64(p + 2 * n));
    }
    c = shift(t, (uint32_t)c) ^ c1;
    return shift(t, (uint32_t)c) ^ c2;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc,
                                                         const void *data,
                                                         size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 3 * CRC_LONG) {
        c = crc_hw_3way(c, p, CRC_LONG, shift_long);
        p += 3 * CRC_LONG;
        len -= 3 * CRC_LONG;
    }
    while (len >= 3 * CRC_SHORT) {
        c = crc_hw_3way(c, p, CRC_SHORT, shift_short);
        p += 3 * CRC_SHORT;
        len -= 3 * CRC_SHORT;
    }
    while (len >= 8) {
        c = _mm_crc32_u64(c, load64(p));
        p += 8;
        len -= 8;
    }
    /* The last 0..7 bytes as at most three instructions, not seven. */
    if (len >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = _mm_crc32_u32((uint32_t)c, v);
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        c = _mm_crc32_u16((uint32_t)c, v);
        p += 2;
        len -= 2;
    }
    if (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p);
    }
    return ~(uint32_t)c;
}
#endif

bool moor_crc32c_hw_available(void)
{
    pthread_once(&init_once, crc_init);
    return hw;
}

uint32_t moor_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
    if (moor_crc32c_hw_available()) {
        return crc_hw(crc, data, len);
    }
#endif
    return moor_crc32c_sw(crc, data, len);
}
