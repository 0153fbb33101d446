/*
 * alloc.c: the one replaceable allocator.
 *
 * Each block carries a 16-byte header holding its size, so moor_free and
 * moor_realloc can keep moor_alloc_bytes() exact without asking malloc. The
 * header keeps the payload 16-byte aligned, as malloc's is.
 *
 * Small blocks (payload up to CACHE_MAX_BYTES) are kept, when freed, on a
 * per-thread free list by size class and handed out again by the next
 * moor_malloc of that class on the same thread, bounded to
 * CACHE_CLASS_BYTES per class per thread. Why: a request makes a burst
 * of short-lived small blocks (nghttp2's frames and headers, calls,
 * buffers), and with 64 or more calls per loop iteration glibc's tcache
 * (7 blocks per size) overflows into its slower paths. A cached block is
 * free for the accounting (bytes and count) and for fault injection
 * (moor_alloc_fail_after counts every moor_malloc, hit or not). Every
 * small block is allocated with its class's full size, so any cached
 * block of a class fits any request of it. A thread's list is given back
 * to malloc when the thread exits. Sanitizer builds have no cache, so
 * ASan still sees every use after free.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common.h"

#define HDR 16u

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CACHE_ON 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define CACHE_ON 0
#endif
#endif
#ifndef CACHE_ON
#define CACHE_ON 1
#endif

#define CACHE_STEP 16u
#define CACHE_MAX_BYTES 512u
#define CACHE_CLASSES (CACHE_MAX_BYTES / CACHE_STEP)
#define CACHE_CLASS_BYTES (32u * 1024u)

/* A cached block's first bytes (after the header) link the list. */
struct cache_block
{
    struct cache_block *next;
};

struct cache
{
    struct cache_block *head[CACHE_CLASSES];
    uint32_t n[CACHE_CLASSES];
    bool registered; /* the exit destructor knows this thread */
};

static _Thread_local struct cache tcache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_key_ok;

/* The class of a small payload size (0 counts as 1 byte). */
static size_t cache_class(size_t size)
{
    return size == 0 ? 0 : (size - 1) / CACHE_STEP;
}

/* What malloc is asked for: small sizes rounded up to their class. */
static size_t block_bytes(size_t size)
{
    if (CACHE_ON && size <= CACHE_MAX_BYTES) {
        return (cache_class(size) + 1) * CACHE_STEP + HDR;
    }
    return size + HDR;
}

static void cache_flush(void *arg)
{
    struct cache *c = arg;
    for (size_t i = 0; i < CACHE_CLASSES; i++) {
        while (c->head[i] != NULL) {
            struct cache_block *b = c->head[i];
            c->head[i] = b->next;
            free((uint8_t *)b - HDR);
        }
        c->n[i] = 0;
    }
    /* A later destructor that frees through moor_free registers again
     * (glibc runs destructors again for keys set during the pass). */
    c->registered = false;
}

static void cache_key_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_flush) == 0;
}

/* Keeps a freed small block (base: its header) on this thread's list;
 * false when the class is full or the thread cannot be registered. */
static bool cache_put(uint8_t *base, size_t size)
{
    struct cache *c = &tcache;
    size_t cls = cache_class(size);
    if ((size_t)(c->n[cls] + 1) * (cls + 1) * CACHE_STEP > CACHE_CLASS_BYTES) {
        return false;
    }
    if (!c->registered) {
        pthread_once(&cache_once, cache_key_init);
        if (!cache_key_ok || pthread_setspecific(cache_key, c) != 0) {
            return false;
        }
        c->registered = true;
    }
    struct cache_block *b = (struct cache_block *)(base + HDR);
    b->next = c->head[cls];
    c->head[cls] = b;
    c->n[cls]++;
    return true;
}

/* A block of size's class from this thread's list (its header), or NULL. */
static uint8_t *cache_get(size_t size)
{
    struct cache *c = &tcache;
    size_t cls = cache_class(size);
    struct cache_block *b = c->head[cls];
    if (b == NULL) {
        return NULL;
    }
    c->head[cls] = b->next;
    c->n[cls]--;
    return (uint8_t *)b - HDR;
}

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
    uint8_t *p = NULL;
    if (CACHE_ON && size <= CACHE_MAX_BYTES) {
        p = cache_get(size);
    }
    if (p == NULL) {
        p = malloc(block_bytes(size));
    }
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
    uint8_t *p = realloc(base, block_bytes(size));
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
    if (CACHE_ON && size <= CACHE_MAX_BYTES && cache_put(base, size)) {
        return;
    }
    free(base);
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
