/*
 * alloc.c: the one replaceable allocator.
 *
 * moor_alloc_bytes() counts each block as the bytes malloc made usable for
 * it (glibc's malloc_usable_size: the request rounded up to malloc's chunk
 * size), read again when the block is freed or resized, so the count stays
 * exact without a header of our own in front of every block (one used to
 * cost 16 bytes on each, about 4 % of a stored key).
 *
 * Small blocks (usable size up to about CACHE_MAX_BYTES) are kept, when
 * freed, on a per-thread free list by size class and handed out again by
 * the next moor_malloc of that class on the same thread, bounded to
 * CACHE_CLASS_BYTES per class per thread. Why: a request makes a burst of
 * short-lived small blocks (nghttp2's frames and headers, calls, buffers),
 * and with 64 or more calls per loop iteration glibc's tcache (7 blocks
 * per size) overflows into its slower paths. A small request asks malloc
 * for its class's full size; a freed block goes to the largest class its
 * usable size covers, so any cached block of a class fits any request of
 * it. Accounting counts a block's usable size whether it comes from the
 * list or from malloc, so it stays exact; fault injection
 * (moor_alloc_fail_after) counts every moor_malloc, hit or not. A thread's
 * list is given back to malloc when the thread exits. Sanitizer builds
 * have no cache, so ASan still sees every use after free.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common.h"

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

/* A cached block's first bytes link the list. */
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

/* The class of a small request (0 counts as 1 byte): class c serves
 * requests of c*16+1 .. (c+1)*16 bytes. */
static size_t cache_class(size_t size)
{
    return size == 0 ? 0 : (size - 1) / CACHE_STEP;
}

static void cache_flush(void *arg)
{
    struct cache *c = arg;
    for (size_t i = 0; i < CACHE_CLASSES; i++) {
        while (c->head[i] != NULL) {
            struct cache_block *b = c->head[i];
            c->head[i] = b->next;
            free(b);
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

/* Keeps a freed block with usable bytes on this thread's list, in the
 * largest class it covers; false when it is too small or large for one,
 * the class is full, or the thread cannot be registered. */
static bool cache_put(void *p, size_t usable)
{
    if (usable < CACHE_STEP || usable / CACHE_STEP > CACHE_CLASSES) {
        return false;
    }
    size_t cls = usable / CACHE_STEP - 1;
    struct cache *c = &tcache;
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
    struct cache_block *b = p;
    b->next = c->head[cls];
    c->head[cls] = b;
    c->n[cls]++;
    return true;
}

/* A block for a small request from this thread's list, or NULL. */
static void *cache_get(size_t size)
{
    struct cache *c = &tcache;
    size_t cls = cache_class(size);
    struct cache_block *b = c->head[cls];
    if (b == NULL) {
        return NULL;
    }
    c->head[cls] = b->next;
    c->n[cls]--;
    return b;
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
    if (should_fail()) {
        return NULL;
    }
    void *p = NULL;
    if (CACHE_ON && size <= CACHE_MAX_BYTES) {
        p = cache_get(size);
        if (p == NULL) {
            p = malloc((cache_class(size) + 1) * CACHE_STEP);
        }
    } else {
        p = malloc(size);
    }
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
    size_t usable = malloc_usable_size(ptr);
    atomic_fetch_sub_explicit(&alloc_bytes, usable, memory_order_relaxed);
    atomic_fetch_sub_explicit(&alloc_count, 1, memory_order_relaxed);
    if (CACHE_ON && cache_put(ptr, usable)) {
        return;
    }
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
