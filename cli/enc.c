/*
 * enc.c: the encodings moorctl's output and input need, each written to
 * match the Go function etcdctl uses: base64 and hex of bytes, Go's %q and
 * its inverse, encoding/json's string escaping, time.Duration's parse and
 * String(), go-humanize's Bytes(); and the request arena.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

/* ------------------------------------------------------------------------
 * base64 and hex
 * ---------------------------------------------------------------------- */
int mc_base64_append(struct moor_buf *out, const void *data, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = data;
    size_t n = (len + 2) / 3 * 4;
    int rv = moor_buf_reserve(out, n + 1);
    if (rv != MOOR_OK) {
        return rv;
    }
    char *w = (char *)out->ptr + out->len;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *w++ = tab[v >> 18];
        *w++ = tab[(v >> 12) & 63];
        *w++ = tab[(v >> 6) & 63];
        *w++ = tab[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *w++ = tab[v >> 18];
        *w++ = tab[(v >> 12) & 63];
        *w++ = '=';
        *w++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *w++ = tab[v >> 18];
        *w++ = tab[(v >> 12) & 63];
        *w++ = tab[(v >> 6) & 63];
        *w++ = '=';
    }
    out->len += n;
    out->ptr[out->len] = 0;
    return MOOR_OK;
}

int mc_hex_append(struct moor_buf *out, const void *data, size_t len)
{
    static const char tab[] = "0123456789abcdef";
    const uint8_t *p = data;
    int rv = moor_buf_reserve(out, 2 * len + 1);
    if (rv != MOOR_OK) {
        return rv;
    }
    for (size_t i = 0; i < len; i++) {
        out->ptr[out->len++] = (uint8_t)tab[p[i] >> 4];
        out->ptr[out->len++] = (uint8_t)tab[p[i] & 15];
    }
    out->ptr[out->len] = 0;
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * UTF-8
 * ---------------------------------------------------------------------- */

/* Decodes one rune at p[0..len) (len > 0). Returns its length in bytes,
 * with *r the rune, or 0 when the bytes are not valid UTF-8 (overlong
 * forms, surrogates and values above U+10FFFF included). */
static size_t utf8_decode(const uint8_t *p, size_t len, uint32_t *r)
{
    uint8_t c = p[0];
    if (c < 0x80) {
        *r = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if ((c & 0xe0) == 0xc0) {
        n = 2, v = c & 0x1fu, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, v = c & 0x0fu, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        v = v << 6 | (p[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        return 0;
    }
    *r = v;
    return n;
}

static int utf8_append(struct moor_buf *out, uint32_t r)
{
    uint8_t b[4];
    size_t n;
    if (r < 0x80) {
        b[0] = (uint8_t)r, n = 1;
    } else if (r < 0x800) {
        b[0] = (uint8_t)(0xc0 | r >> 6), b[1] = (uint8_t)(0x80 | (r & 63));
        n = 2;
    } else if (r < 0x10000) {
        b[0] = (uint8_t)(0xe0 | r >> 12);
        b[1] = (uint8_t)(0x80 | ((r >> 6) & 63));
        b[2] = (uint8_t)(0x80 | (r & 63));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xf0 | r >> 18);
        b[1] = (uint8_t)(0x80 | ((r >> 12) & 63));
        b[2] = (uint8_t)(0x80 | ((r >> 6) & 63));
        b[3] = (uint8_t)(0x80 | (r & 63));
        n = 4;
    }
    return moor_buf_append(out, b, n);
}

/* Go's strconv.IsPrint, approximated: ASCII graphic and space, and every
 * rune from U+00A0 up except U+00AD and the non-characters U+FFFE/U+FFFF.
 * (Go also refuses a few unassigned ranges; keys and values in practice
 * are ASCII or common scripts.) */
static bool go_isprint(uint32_t r)
{
    if (r < 0x80) {
        return r >= 0x20 && r < 0x7f;
    }
    if (r < 0xa0 || r == 0xad || r == 0xfffe || r == 0xffff) {
        return false;
    }
    return true;
}

int mc_goquote_append(struct moor_buf *out, const void *data, size_t len)
{
    const uint8_t *p = data;
    int rv = moor_buf_putc(out, '"');
    for (size_t i = 0; i < len && rv == MOOR_OK;) {
        uint32_t r;
        size_t n = utf8_decode(p + i, len - i, &r);
        if (n == 0) {
            rv = moor_buf_printf(out, "\\x%02x", p[i]);
            i++;
            continue;
        }
        i += n;
        if (r == '"' || r == '\\') {
            rv = moor_buf_printf(out, "\\%c", (char)r);
        } else if (go_isprint(r)) {
            rv = utf8_append(out, r);
        } else if (r == '\a') {
            rv = moor_buf_append(out, "\\a", 2);
        } else if (r == '\b') {
            rv = moor_buf_append(out, "\\b", 2);
        } else if (r == '\f') {
            rv = moor_buf_append(out, "\\f", 2);
        } else if (r == '\n') {
            rv = moor_buf_append(out, "\\n", 2);
        } else if (r == '\r') {
            rv = moor_buf_append(out, "\\r", 2);
        } else if (r == '\t') {
            rv = moor_buf_append(out, "\\t", 2);
        } else if (r == '\v') {
            rv = moor_buf_append(out, "\\v", 2);
        } else if (r < ' ' || r == 0x7f) {
            rv = moor_buf_printf(out, "\\x%02x", (unsigned)r);
        } else if (r < 0x10000) {
            rv = moor_buf_printf(out, "\\u%04x", (unsigned)r);
        } else {
            rv = moor_buf_printf(out, "\\U%08x", (unsigned)r);
        }
    }
    if (rv == MOOR_OK) {
        rv = moor_buf_putc(out, '"');
    }
    return rv;
}

int mc_json_string_append(struct moor_buf *out, const void *data, size_t len)
{
    const uint8_t *p = data;
    int rv = moor_buf_putc(out, '"');
    for (size_t i = 0; i < len && rv == MOOR_OK;) {
        uint32_t r;
        size_t n = utf8_decode(p + i, len - i, &r);
        if (n == 0) {
            rv = moor_buf_append(out, "\\ufffd", 6);
            i++;
            continue;
        }
        if (r == '"' || r == '\\') {
            rv = moor_buf_printf(out, "\\%c", (char)r);
        } else if (r == '\n') {
            rv = moor_buf_append(out, "\\n", 2);
        } else if (r == '\r') {
            rv = moor_buf_append(out, "\\r", 2);
        } else if (r == '\t') {
            rv = moor_buf_append(out, "\\t", 2);
        } else if (r < 0x20 || r == '<' || r == '>' || r == '&' ||
                   r == 0x2028 || r == 0x2029) {
            rv = moor_buf_printf(out, "\\u%04x", (unsigned)r);
        } else {
            rv = moor_buf_append(out, p + i, n);
        }
        i += n;
    }
    if (rv == MOOR_OK) {
        rv = moor_buf_putc(out, '"');
    }
    return rv;
}

/* ------------------------------------------------------------------------
 * Go quoted strings (the inverse of %q, as fmt.Sscanf's %q reads them)
 * ---------------------------------------------------------------------- */
static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int mc_unquote(const char *s, struct moor_buf *out, size_t *consumed)
{
    size_t i = 1;
    int rv = MOOR_OK;
    if (s[0] == '`') {
        const char *e = strchr(s + 1, '`');
        if (e == NULL) {
            return MOOR_EINVAL;
        }
        *consumed = (size_t)(e - s) + 1;
        return moor_buf_append(out, s + 1, (size_t)(e - s) - 1);
    }
    if (s[0] != '"') {
        return MOOR_EINVAL;
    }
    for (;;) {
        char c = s[i];
        if (c == 0 || c == '\n') {
            return MOOR_EINVAL;
        }
        if (c == '"') {
            *consumed = i + 1;
            return rv;
        }
        if (c != '\\') {
            rv = moor_buf_putc(out, (uint8_t)c);
            i++;
            if (rv != MOOR_OK) {
                return rv;
            }
            continue;
        }
        c = s[i + 1];
        i += 2;
        /* Single-character escapes: each pair is escape, byte. */
        static const char simple[] = "a\ab\bf\fn\nr\rt\tv\v\\\\\"\"";
        const char *e = c != 0 ? strchr(simple, c) : NULL;
        uint8_t b;
        if (e != NULL && (e - simple) % 2 == 0) {
            b = (uint8_t)e[1];
        } else if (c == 'x') {
            int h = hexval(s[i]), l = h < 0 ? -1 : hexval(s[i + 1]);
            if (h < 0 || l < 0) {
                return MOOR_EINVAL;
            }
            b = (uint8_t)(h << 4 | l);
            i += 2;
        } else if (c == 'u' || c == 'U') {
            size_t nd = c == 'u' ? 4 : 8;
            uint32_t r = 0;
            for (size_t k = 0; k < nd; k++) {
                int h = hexval(s[i + k]);
                if (h < 0) {
                    return MOOR_EINVAL;
                }
                r = r << 4 | (uint32_t)h;
            }
            if (r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) {
                return MOOR_EINVAL;
            }
            i += nd;
            rv = utf8_append(out, r);
            if (rv != MOOR_OK) {
                return rv;
            }
            continue;
        } else if (c >= '0' && c <= '7') {
            /* Octal: exactly three digits, at most \377. */
            uint32_t v = (uint32_t)(c - '0');
            for (size_t k = 0; k < 2; k++) {
                if (s[i + k] < '0' || s[i + k] > '7') {
                    return MOOR_EINVAL;
                }
                v = v << 3 | (uint32_t)(s[i + k] - '0');
            }
            if (v > 255) {
                return MOOR_EINVAL;
            }
            b = (uint8_t)v;
            i += 2;
        } else {
            return MOOR_EINVAL;
        }
        rv = moor_buf_putc(out, b);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
}

/* ------------------------------------------------------------------------
 * Durations and sizes
 * ---------------------------------------------------------------------- */
int mc_duration_parse(const char *s, uint64_t *ms)
{
    static const struct
    {
        const char *name;
        double ns;
    } units[] = {
        {"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
        {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9},
    };
    if (*s == '+') {
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return MOOR_OK;
    }
    if (*s == 0) {
        return MOOR_EINVAL;
    }
    double total = 0;
    while (*s != 0) {
        const char *start = s;
        double v = 0, scale = 1;
        bool digits = false;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            digits = true;
        }
        if (*s == '.') {
            s++;
            while (*s >= '0' && *s <= '9') {
                scale /= 10;
                v += (*s++ - '0') * scale;
                digits = true;
            }
        }
        if (!digits || s == start) {
            return MOOR_EINVAL;
        }
        size_t best = SIZE_MAX, best_len = 0;
        for (size_t i = 0; i < MOOR_ARRAY_LEN(units); i++) {
            size_t n = strlen(units[i].name);
            if (strncmp(s, units[i].name, n) == 0 && n > best_len) {
                best = i, best_len = n;
            }
        }
        if (best == SIZE_MAX) {
            return MOOR_EINVAL;
        }
        s += best_len;
        total += v * units[best].ns;
        if (total > 9.2e18) {
            return MOOR_EINVAL;
        }
    }
    *ms = (uint64_t)(total / 1e6);
    return MOOR_OK;
}

/* Appends v's digits with the fraction frac of width digits, trailing
 * zeros of the fraction dropped (Go's fmtFrac + fmtInt). */
static int frac_append(struct moor_buf *out, uint64_t v, uint64_t frac,
                       int width)
{
    int rv = moor_buf_printf(out, "%llu", (unsigned long long)v);
    if (rv != MOOR_OK || frac == 0) {
        return rv;
    }
    char d[32];
    snprintf(d, sizeof(d), "%0*llu", width, (unsigned long long)frac);
    size_t n = strlen(d);
    while (n > 0 && d[n - 1] == '0') {
        n--;
    }
    rv = moor_buf_putc(out, '.');
    return rv == MOOR_OK ? moor_buf_append(out, d, n) : rv;
}

int mc_duration_format(struct moor_buf *out, uint64_t ns)
{
    int rv;
    if (ns == 0) {
        return moor_buf_append(out, "0s", 2);
    }
    if (ns < 1000) {
        return moor_buf_printf(out, "%lluns", (unsigned long long)ns);
    }
    if (ns < 1000000) {
        rv = frac_append(out, ns / 1000, ns % 1000, 3);
        return rv == MOOR_OK ? moor_buf_append(out, "\xc2\xb5s", 3) : rv;
    }
    if (ns < 1000000000) {
        rv = frac_append(out, ns / 1000000, ns % 1000000, 6);
        return rv == MOOR_OK ? moor_buf_append(out, "ms", 2) : rv;
    }
    uint64_t secs = ns / 1000000000, h = secs / 3600, m = secs / 60 % 60;
    rv = MOOR_OK;
    if (h > 0) {
        rv = moor_buf_printf(out, "%lluh", (unsigned long long)h);
    }
    if (rv == MOOR_OK && (h > 0 || m > 0)) {
        rv = moor_buf_printf(out, "%llum", (unsigned long long)m);
    }
    if (rv == MOOR_OK) {
        rv = frac_append(out, secs % 60, ns % 1000000000, 9);
    }
    return rv == MOOR_OK ? moor_buf_putc(out, 's') : rv;
}

int mc_humanize_bytes(struct moor_buf *out, uint64_t n)
{
    static const char *const sizes[] = {"B",  "kB", "MB", "GB",
                                        "TB", "PB", "EB"};
    if (n < 10) {
        return moor_buf_printf(out, "%llu B", (unsigned long long)n);
    }
    double e = floor(log((double)n) / log(1000.0));
    size_t ei = (size_t)e;
    if (ei >= MOOR_ARRAY_LEN(sizes)) {
        ei = MOOR_ARRAY_LEN(sizes) - 1;
    }
    double val = floor((double)n / pow(1000.0, (double)ei) * 10 + 0.5) / 10;
    return moor_buf_printf(out, val < 10 ? "%.1f %s" : "%.0f %s", val,
                           sizes[ei]);
}

size_t mc_prefix_end(const uint8_t *key, size_t len, uint8_t *end)
{
    for (size_t i = len; i > 0; i--) {
        if (key[i - 1] < 0xff) {
            memcpy(end, key, i - 1);
            end[i - 1] = (uint8_t)(key[i - 1] + 1);
            return i;
        }
    }
    end[0] = 0;
    return 1;
}

/* ------------------------------------------------------------------------
 * Arena
 * ---------------------------------------------------------------------- */
struct mc_arena_block
{
    struct mc_arena_block *next;
    size_t used;
    size_t cap;
    _Alignas(16) uint8_t data[];
};

#define ARENA_BLOCK 8192

void mc_arena_init(struct mc_arena *a)
{
    a->head = NULL;
}

void mc_arena_close(struct mc_arena *a)
{
    struct mc_arena_block *b = a->head;
    while (b != NULL) {
        struct mc_arena_block *next = b->next;
        moor_free(b);
        b = next;
    }
    a->head = NULL;
}

void *mc_arena_alloc(struct mc_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    struct mc_arena_block *b = a->head;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        b = moor_malloc(sizeof(*b) + cap);
        if (b == NULL) {
            return NULL;
        }
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

void *mc_arena_dup(struct mc_arena *a, const void *data, size_t len)
{
    uint8_t *p = mc_arena_alloc(a, len + 1);
    if (p != NULL && len > 0) {
        memcpy(p, data, len);
    }
    return p;
}
