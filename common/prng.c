/*
 * prng.c: xoshiro256** (Blackman and Vigna, 2018) seeded through
 * splitmix64, so any 64-bit seed, 0 included, gives a good state.
 */
#include "common.h"

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void moor_prng_seed(struct moor_prng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&seed);
    }
}

uint64_t moor_prng_next(struct moor_prng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t moor_prng_below(struct moor_prng *r, uint64_t n)
{
    MOOR_ASSERT(n > 0);
    /* Reject the top partial bucket so every value is equally likely. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t x;
    do {
        x = moor_prng_next(r);
    } while (x >= limit);
    return x % n;
}

uint64_t moor_prng_range(struct moor_prng *r, uint64_t lo, uint64_t hi)
{
    MOOR_ASSERT(lo <= hi);
    if (lo == 0 && hi == UINT64_MAX) {
        return moor_prng_next(r);
    }
    return lo + moor_prng_below(r, hi - lo + 1);
}

double moor_prng_double(struct moor_prng *r)
{
    return (double)(moor_prng_next(r) >> 11) * 0x1.0p-53;
}

bool moor_prng_chance(struct moor_prng *r, double p)
{
    return moor_prng_double(r) < p;
}
