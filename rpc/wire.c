/*
 * wire.c: the pure pieces of the wire formats, no I/O (unit-tested and
 * fuzzed on their own).
 *
 * gRPC message framing (grpc/doc/PROTOCOL-HTTP2.md, "Length-Prefixed-
 * Message"), repeated in the DATA frames of a stream:
 *
 *   OFFSET  SIZE  MEANING
 *   0       1     compressed flag: 0 identity, 1 compressed with the
 *                 stream's grpc-encoding (refused here), others invalid
 *   1       4     message length, big-endian, unsigned
 *   5       len   message bytes
 *
 * A message may span many DATA frames and a frame may hold many messages.
 */
#include <stdio.h>
#include <strings.h>

#include "rpc_int.h"

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *rpc_status_name(int status)
{
    if (status < 0 || (size_t)status >= MOOR_ARRAY_LEN(status_names)) {
        return "UNKNOWN";
    }
    return status_names[status];
}

/* ------------------------------------------------------------------------
 * Deframer
 * ---------------------------------------------------------------------- */
struct rpc__budget *rpc__budget_take(struct rpc__budget *b, size_t n)
{
    for (struct rpc__budget *x = b; x != NULL; x = x->parent) {
        if (n > x->max || x->used > x->max - n) {
            return x;
        }
    }
    for (struct rpc__budget *x = b; x != NULL; x = x->parent) {
        x->used += n;
    }
    return NULL;
}

void rpc__budget_give(struct rpc__budget *b, size_t n)
{
    for (struct rpc__budget *x = b; x != NULL; x = x->parent) {
        MOOR_ASSERT(x->used >= n);
        x->used -= n;
    }
}

void rpc__deframer_init(struct rpc__deframer *d, struct rpc__budget *budget)
{
    d->hdr_len = 0;
    d->need = 0;
    moor_buf_init(&d->body);
    d->budget = budget;
}

void rpc__deframer_close(struct rpc__deframer *d)
{
    if (d->budget != NULL) {
        rpc__budget_give(d->budget, d->body.cap);
    }
    moor_buf_close(&d->body);
    d->hdr_len = 0;
    d->need = 0;
}

bool rpc__deframer_idle(const struct rpc__deframer *d)
{
    return d->hdr_len == 0;
}

size_t rpc__deframer_held(const struct rpc__deframer *d)
{
    return d->hdr_len + d->body.len;
}

/* Makes room for add more body bytes: doubling (from 4 KiB) but never past
 * the announced length, and only as far as the budget allows (down to an
 * exact fit). RPC__EFRAME with *status RESOURCE_EXHAUSTED when even that
 * does not fit. */
static int deframer_grow(struct rpc__deframer *d, size_t add, int *status,
                         char *errmsg)
{
    size_t want = d->body.len + add;
    size_t old = d->body.cap;
    if (want <= old) {
        return MOOR_OK;
    }
    size_t cap =
        MOOR_MIN(MOOR_MAX(MOOR_MAX(old * 2, 4096u), want), (size_t)d->need);
    if (d->budget != NULL) {
        struct rpc__budget *full = rpc__budget_take(d->budget, cap - old);
        if (full != NULL && cap > want) {
            cap = want;
            full = rpc__budget_take(d->budget, cap - old);
        }
        if (full != NULL) {
            *status = RPC_RESOURCE_EXHAUSTED;
            moor_errmsg_set(errmsg,
                            "rpc: receive buffer full (%zu of %zu bytes held "
                            "by partial messages and metadata%s)",
                            full->used, full->max,
                            full->parent == NULL && full != d->budget
                                ? " of all connections"
                                : "");
            return RPC__EFRAME;
        }
    }
    uint8_t *p = moor_realloc(d->body.ptr, cap);
    if (p == NULL) {
        if (d->budget != NULL) {
            rpc__budget_give(d->budget, cap - old);
        }
        return MOOR_ENOMEM;
    }
    d->body.ptr = p;
    d->body.cap = cap;
    return MOOR_OK;
}

void rpc__prefix_put(uint8_t *p, uint32_t len)
{
    p[0] = 0;
    moor_put_be32(p + 1, len);
}

int rpc__deframer_feed(struct rpc__deframer *d, const uint8_t *p, size_t n,
                       size_t max_bytes, rpc__msg_fn msg_fn, void *arg,
                       int *status, char *errmsg)
{
    while (n > 0) {
        if (d->hdr_len < RPC__PREFIX) {
            size_t take = MOOR_MIN(n, RPC__PREFIX - d->hdr_len);
            memcpy(d->hdr + d->hdr_len, p, take);
            d->hdr_len += (uint32_t)take;
            p += take;
            n -= take;
            if (d->hdr_len < RPC__PREFIX) {
                break;
            }
            uint32_t len = moor_get_be32(d->hdr + 1);
            if (d->hdr[0] == 1) {
                *status = RPC_UNIMPLEMENTED;
                moor_errmsg_set(errmsg,
                                "grpc: compressed message received but no "
                                "decompressor is installed (identity only)");
                return RPC__EFRAME;
            }
            if (d->hdr[0] != 0) {
                *status = RPC_INTERNAL;
                moor_errmsg_set(errmsg,
                                "grpc: invalid compressed flag %u in message "
                                "prefix",
                                d->hdr[0]);
                return RPC__EFRAME;
            }
            if (len > max_bytes) {
                *status = RPC_RESOURCE_EXHAUSTED;
                moor_errmsg_set(errmsg,
                                "grpc: received message larger than max "
                                "(%u vs. %zu)",
                                len, max_bytes);
                return RPC__EFRAME;
            }
            d->need = len;
            d->body.len = 0;
            if (len == 0 || n >= len) {
                /* The whole message is in this chunk: no copy. */
                struct moor_slice m = moor_slice_make(p, len);
                p += len;
                n -= len;
                d->hdr_len = 0;
                int rv = msg_fn(m, arg);
                if (rv != 0) {
                    return rv;
                }
                continue;
            }
        }
        /* Grown as bytes arrive, not reserved at the announced length: a
         * peer that announces large messages and sends slowly holds only
         * what it sent. */
        size_t take = MOOR_MIN(n, d->need - d->body.len);
        if (take == 0) {
            break; /* the prefix ended the input */
        }
        int rv = deframer_grow(d, take, status, errmsg);
        if (rv != MOOR_OK) {
            return rv;
        }
        memcpy(d->body.ptr + d->body.len, p, take);
        d->body.len += take;
        p += take;
        n -= take;
        if (d->body.len == d->need) {
            d->hdr_len = 0;
            struct moor_slice m = moor_slice_make(d->body.ptr, d->body.len);
            rv = msg_fn(m, arg);
            /* Freed, not kept: an idle stream holds no buffer (and no
             * budget). */
            rpc__deframer_close(d);
            if (rv != 0) {
                return rv;
            }
        }
    }
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * grpc-timeout: 1 to 8 ASCII digits and a unit (H M S m u n).
 * ---------------------------------------------------------------------- */
int rpc__timeout_parse(const char *s, size_t len, uint64_t *ms)
{
    if (len < 2 || len > 9) {
        return MOOR_EINVAL;
    }
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return MOOR_EINVAL;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    switch (s[len - 1]) {
    case 'H':
        *ms = v * 3600000u;
        break;
    case 'M':
        *ms = v * 60000u;
        break;
    case 'S':
        *ms = v * 1000u;
        break;
    case 'm':
        *ms = v;
        break;
    case 'u':
        *ms = (v + 999u) / 1000u;
        break;
    case 'n':
        *ms = (v + 999999u) / 1000000u;
        break;
    default:
        return MOOR_EINVAL;
    }
    return MOOR_OK;
}

void rpc__timeout_format(uint64_t ms, char *out)
{
    static const struct
    {
        uint64_t div;
        char unit;
    } units[] = {{1, 'm'}, {1000, 'S'}, {60000, 'M'}, {3600000, 'H'}};
    for (size_t i = 0; i < MOOR_ARRAY_LEN(units); i++) {
        /* Round up so the server never sees a shorter deadline. */
        uint64_t v = (ms + units[i].div - 1) / units[i].div;
        if (v <= 99999999u) {
            snprintf(out, 16, "%llu%c", (unsigned long long)v, units[i].unit);
            return;
        }
    }
    snprintf(out, 16, "99999999H");
}

/* ------------------------------------------------------------------------
 * grpc-message percent-encoding
 * ---------------------------------------------------------------------- */
int rpc__pct_encode(const char *s, struct moor_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const uint8_t *p = (const uint8_t *)s; *p != '\0'; p++) {
        int rv;
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            rv = moor_buf_putc(out, *p);
        } else {
            uint8_t e[3] = {'%', (uint8_t)hex[*p >> 4], (uint8_t)hex[*p & 15]};
            rv = moor_buf_append(out, e, 3);
        }
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return MOOR_OK;
}

static int hexval(uint8_t c)
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

void rpc__pct_decode(const uint8_t *p, size_t n, char *out, size_t out_size)
{
    size_t o = 0;
    if (out_size == 0) {
        return;
    }
    for (size_t i = 0; i < n && o + 1 < out_size; i++) {
        if (p[i] == '%' && i + 2 < n + 0 && hexval(p[i + 1]) >= 0 &&
            hexval(p[i + 2]) >= 0) {
            out[o++] = (char)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
            i += 2;
        } else {
            out[o++] = (char)p[i];
        }
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------------
 * URLs
 * ---------------------------------------------------------------------- */
int rpc_url_parse(const char *url, char *host, size_t host_size, uint16_t *port,
                  bool *tls)
{
    if (url == NULL || host == NULL || host_size == 0) {
        return MOOR_EINVAL;
    }
    *tls = false;
    const char *p = url;
    if (strncasecmp(p, "https://", 8) == 0) {
        *tls = true;
        p += 8;
    } else if (strncasecmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strstr(p, "://") != NULL) {
        return MOOR_EINVAL;
    }
    const char *h = p;
    const char *h_end;
    if (*p == '[') {
        h = p + 1;
        h_end = strchr(h, ']');
        if (h_end == NULL || h_end[1] != ':') {
            return MOOR_EINVAL;
        }
        p = h_end + 2;
    } else {
        h_end = strrchr(p, ':');
        if (h_end == NULL) {
            return MOOR_EINVAL;
        }
        /* No other ':' allowed (an IPv6 literal needs brackets). */
        if (memchr(p, ':', (size_t)(h_end - p)) != NULL) {
            return MOOR_EINVAL;
        }
        p = h_end + 1;
    }
    size_t hlen = (size_t)(h_end - h);
    if (hlen == 0 || hlen >= host_size) {
        return MOOR_EINVAL;
    }
    unsigned long v = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 6) {
        v = v * 10 + (unsigned long)(*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || v > 65535 || !(*p == '\0' || (*p == '/' && p[1] == 0))) {
        return MOOR_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)v;
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * HTTP/1.x request heads
 * ---------------------------------------------------------------------- */
int rpc__http1_parse(const uint8_t *p, size_t n, char *method,
                     size_t method_size, char *target, size_t target_size)
{
    size_t end = 0;
    for (size_t i = 0; i + 3 < n; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' &&
            p[i + 3] == '\n') {
            end = i + 4;
            break;
        }
    }
    if (end == 0) {
        return 0;
    }
    /* Request line: METHOD SP TARGET SP HTTP/1.x CRLF */
    size_t i = 0;
    size_t m = 0;
    while (i < end && p[i] >= 'A' && p[i] <= 'Z') {
        if (m + 1 >= method_size) {
            return MOOR_EPROTO;
        }
        method[m++] = (char)p[i++];
    }
    method[m] = '\0';
    if (m == 0 || p[i] != ' ') {
        return MOOR_EPROTO;
    }
    i++;
    size_t t = 0;
    while (i < end && p[i] > ' ' && p[i] < 0x7f) {
        if (t + 1 >= target_size) {
            return MOOR_EPROTO;
        }
        target[t++] = (char)p[i++];
    }
    target[t] = '\0';
    if (t == 0 || p[i] != ' ') {
        return MOOR_EPROTO;
    }
    i++;
    if (end - i < 10 || memcmp(p + i, "HTTP/1.", 7) != 0 ||
        (p[i + 7] != '0' && p[i + 7] != '1') || p[i + 8] != '\r') {
        return MOOR_EPROTO;
    }
    return (int)end;
}

const char *rpc__http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}
