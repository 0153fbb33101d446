/*
 * alloc.c: the one replaceable allocator.
 *
 * Each block carries a 16-byte header holding its size, so moor_free and
 * moor_realloc can keep moor_alloc_bytes() exact without asking malloc. The
 * header keeps the payload 16-byte aligned, as malloc's is.
 */
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"

#define HDR 16u

static atomic_size_t alloc_bytes;
static atomic_size_t alloc_count;
static atomic_long fail_after = -1;

static bool should_fail(void)
{
    long n = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (n < 0) {
        return false;
    }
    /* Count down; the call that sees 0 fails and disarms. */
    while (n >= 0) {
        long next = n == 0 ? -1 : n - 1;
        if (atomic_compare_exchange_weak(&fail_after, &n, next)) {
            return n == 0;
        }
    }
    return false;
}

void moor_alloc_fail_after(long n)
{
    atomic_store(&fail_after, n);
}

size_t moor_alloc_bytes(void)
{
    return atomic_load_explicit(&alloc_bytes, memory_order_relaxed);
}

size_t moor_alloc_count(void)
{
    return atomic_load_explicit(&alloc_count, memory_order_relaxed);
}

void *moor_malloc(size_t size)
{
    if (size > SIZE_MAX - HDR || should_fail()) {
        return NULL;
    }
    uint8_t *p = malloc(size + HDR);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    atomic_fetch_add_explicit(&alloc_bytes, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    return p + HDR;
}

void *moor_calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size) {
        return NULL;
    }
    void *p = moor_malloc(count * size);
    if (p != NULL) {
        memset(p, 0, count * size);
    }
    return p;
}

void *moor_realloc(void *ptr, size_t size)
{
    if (ptr == NULL) {
        return moor_malloc(size);
    }
    if (size > SIZE_MAX - HDR || should_fail()) {
        return NULL;
    }
    uint8_t *base = (uint8_t *)ptr - HDR;
    size_t old;
    memcpy(&old, base, sizeof(old));
    uint8_t *p = realloc(base, size + HDR);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    atomic_fetch_add_explicit(&alloc_bytes, size, memory_order_relaxed);
    atomic_fetch_sub_explicit(&alloc_bytes, old, memory_order_relaxed);
    return p + HDR;
}

void moor_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    uint8_t *base = (uint8_t *)ptr - HDR;
    size_t size;
    memcpy(&size, base, sizeof(size));
    atomic_fetch_sub_explicit(&alloc_bytes, size, memory_order_relaxed);
    atomic_fetch_sub_explicit(&alloc_count, 1, memory_order_relaxed);
    free(base);
}

void moor_alloc_trim(void)
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

char *moor_strdup(const char *s)
{
    size_t n = strlen(s);
    char *p = moor_malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n + 1);
    }
    return p;
}
