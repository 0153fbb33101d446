/* buf.c: slices, growable buffers, refcounted bytes and varints. */
#include <stdio.h>

#include "common.h"

int moor_slice_cmp(struct moor_slice a, struct moor_slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0) {
        return c;
    }
    return a.len < b.len ? -1 : (a.len > b.len ? 1 : 0);
}

void moor_buf_init(struct moor_buf *b)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

void moor_buf_close(struct moor_buf *b)
{
    moor_free(b->ptr);
    moor_buf_init(b);
}

int moor_buf_reserve(struct moor_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len) {
        return MOOR_ENOMEM;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) {
        return MOOR_OK;
    }
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    uint8_t *p = moor_realloc(b->ptr, cap);
    if (p == NULL) {
        return MOOR_ENOMEM;
    }
    b->ptr = p;
    b->cap = cap;
    return MOOR_OK;
}

int moor_buf_append(struct moor_buf *b, const void *data, size_t len)
{
    if (len == 0) {
        return MOOR_OK;
    }
    int rv = moor_buf_reserve(b, len);
    if (rv != MOOR_OK) {
        return rv;
    }
    memcpy(b->ptr + b->len, data, len);
    b->len += len;
    return MOOR_OK;
}

int moor_buf_putc(struct moor_buf *b, uint8_t c)
{
    return moor_buf_append(b, &c, 1);
}

int moor_buf_printf(struct moor_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return MOOR_EINVAL;
    }
    int rv = moor_buf_reserve(b, (size_t)n + 1);
    if (rv != MOOR_OK) {
        return rv;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MOOR_OK;
}

void moor_buf_consume(struct moor_buf *b, size_t n)
{
    MOOR_ASSERT(n <= b->len);
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
}

struct moor_bytes *moor_bytes_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(struct moor_bytes)) {
        return NULL;
    }
    struct moor_bytes *b = moor_malloc(sizeof(*b) + len);
    if (b == NULL) {
        return NULL;
    }
    b->refs = 1;
    b->reserved = 0;
    b->len = len;
    return b;
}

struct moor_bytes *moor_bytes_copy(const void *data, size_t len)
{
    struct moor_bytes *b = moor_bytes_new(len);
    if (b != NULL && len > 0) {
        memcpy(b->data, data, len);
    }
    return b;
}

struct moor_bytes *moor_bytes_ref(struct moor_bytes *b)
{
    if (b != NULL) {
        MOOR_ASSERT(b->refs > 0 && b->refs < UINT32_MAX);
        b->refs++;
    }
    return b;
}

void moor_bytes_unref(struct moor_bytes *b)
{
    if (b == NULL) {
        return;
    }
    MOOR_ASSERT(b->refs > 0);
    if (--b->refs == 0) {
        moor_free(b);
    }
}

size_t moor_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t moor_varint_get(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < len && i < MOOR_VARINT_MAX; i++) {
        uint64_t byte = p[i];
        if (i == 9 && byte > 1) {
            return 0; /* overflows 64 bits */
        }
        r |= (byte & 0x7f) << (7 * i);
        if ((byte & 0x80) == 0) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

size_t moor_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
