/*
 * alloc.c: the one replaceable allocator.
 *
 * moor_alloc_bytes() counts each block as the bytes malloc made usable for
 * it (glibc's malloc_usable_size: the request rounded up to malloc's chunk
 * size), read again when the block is freed or resized, so the count stays
 * exact without a header of our own in front of every block (one used to
 * cost 16 bytes on each, about 4 % of a stored key).
 */
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common.h"

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
    if (should_fail()) {
        return NULL;
    }
    void *p = malloc(size);
    if (p == NULL) {
        return NULL;
    }
    atomic_fetch_add_explicit(&alloc_bytes, malloc_usable_size(p),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    return p;
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
    if (should_fail()) {
        return NULL;
    }
    size_t old = malloc_usable_size(ptr);
    void *p = realloc(ptr, size > 0 ? size : 1); /* 0 would free ptr */
    if (p == NULL) {
        return NULL; /* ptr is untouched */
    }
    atomic_fetch_add_explicit(&alloc_bytes, malloc_usable_size(p),
                              memory_order_relaxed);
    atomic_fetch_sub_explicit(&alloc_bytes, old, memory_order_relaxed);
    return p;
}

void moor_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    atomic_fetch_sub_explicit(&alloc_bytes, malloc_usable_size(ptr),
                              memory_order_relaxed);
    atomic_fetch_sub_explicit(&alloc_count, 1, memory_order_relaxed);
    free(ptr);
}

void moor_alloc_trim(void)
{
    malloc_trim(0);
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
