/*
 * crc32c.c: CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78).
 *
 * Two implementations giving identical results: slicing-by-8 tables, and
 * the SSE4.2 crc32 instruction, chosen once at first use by cpuid. The
 * public value is the standard one (initial ~0, final xor ~0); passing a
 * previous result as crc continues the computation over more bytes.
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
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
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
