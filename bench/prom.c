/* prom.c: reading a server's Prometheus /metrics for `moor-bench
 * consensus`: a tiny blocking HTTP/1.1 GET (loopback only), the text
 * exposition's histogram lines, deltas and histogram_quantile. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "rpc/rpc.h"

/* ------------------------------------------------------------------------
 * The text exposition
 * ---------------------------------------------------------------------- */

/* One parsed label pair: name and value (escapes kept as written: the
 * names and values compared here never contain any). */
struct label
{
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Parses name="value" at p (up to end); returns the byte after the closing
 * quote, or NULL. */
static const char *parse_label(const char *p, const char *end, struct label *l)
{
    l->name = p;
    while (p < end && *p != '=' && *p != ',' && *p != '}') {
        p++;
    }
    l->name_len = (size_t)(p - l->name);
    if (p >= end || *p != '=' || l->name_len == 0 || p + 1 >= end ||
        p[1] != '"') {
        return NULL;
    }
    p += 2;
    l->value = p;
    while (p < end && *p != '"') {
        p += *p == '\\' && p + 1 < end ? 2 : 1;
    }
    if (p >= end) {
        return NULL;
    }
    l->value_len = (size_t)(p - l->value);
    return p + 1;
}

static bool label_eq(const struct label *a, const struct label *b)
{
    return a->name_len == b->name_len && a->value_len == b->value_len &&
           memcmp(a->name, b->name, a->name_len) == 0 &&
           memcmp(a->value, b->value, a->value_len) == 0;
}

/* Parses a sample value (a float, "+Inf", "NaN") of at most 63 bytes. */
static bool parse_number(const char *p, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, p, len);
    tmp[len] = 0;
    char *e;
    errno = 0;
    double v = strtod(tmp, &e);
    if (*e != 0 || errno == ERANGE) {
        return false;
    }
    *out = v;
    return true;
}

enum series { S_BUCKET, S_SUM, S_COUNT };

/* Which series of family name the metric name [p, p+n) is, if any. */
static bool which_series(const char *p, size_t n, const char *name,
                         enum series *out)
{
    static const struct
    {
        const char *suffix;
        enum series s;
    } sfx[] = {{"_bucket", S_BUCKET}, {"_sum", S_SUM}, {"_count", S_COUNT}};
    size_t nl = strlen(name);
    if (n <= nl || memcmp(p, name, nl) != 0) {
        return false;
    }
    for (size_t i = 0; i < MOOR_ARRAY_LEN(sfx); i++) {
        size_t sl = strlen(sfx[i].suffix);
        if (n - nl == sl && memcmp(p + nl, sfx[i].suffix, sl) == 0) {
            *out = sfx[i].s;
            return true;
        }
    }
    return false;
}

/* One sample line [p, end) of family name: MOOR_ENOENT when it is not one
 * of the family's series or lacks the filter label, MOOR_EPROTO when it
 * does not parse; else its series, value and (for buckets) le. */
static int parse_line(const char *p, const char *end, const char *name,
                      const struct label *filter, enum series *s, double *le,
                      double *value)
{
    const char *q = p;
    while (q < end && *q != '{' && *q != ' ' && *q != '\t') {
        q++;
    }
    if (!which_series(p, (size_t)(q - p), name, s)) {
        return MOOR_ENOENT;
    }
    bool have_filter = filter == NULL;
    bool have_le = false;
    if (q < end && *q == '{') {
        q++;
        while (q < end && *q != '}') {
            struct label l;
            q = parse_label(q, end, &l);
            if (q == NULL) {
                return MOOR_EPROTO;
            }
            if (filter != NULL && label_eq(&l, filter)) {
                have_filter = true;
            }
            if (l.name_len == 2 && memcmp(l.name, "le", 2) == 0) {
                if (!parse_number(l.value, l.value_len, le)) {
                    return MOOR_EPROTO;
                }
                have_le = true;
            }
            if (q < end && *q == ',') {
                q++;
            }
        }
        if (q >= end) {
            return MOOR_EPROTO;
        }
        q++;
    }
    if (!have_filter) {
        return MOOR_ENOENT;
    }
    if (*s == S_BUCKET && !have_le) {
        return MOOR_EPROTO;
    }
    while (q < end && (*q == ' ' || *q == '\t')) {
        q++;
    }
    const char *v = q;
    while (q < end && *q != ' ' && *q != '\t') {
        q++; /* an optional timestamp follows: ignored */
    }
    return parse_number(v, (size_t)(q - v), value) ? MOOR_OK : MOOR_EPROTO;
}

int bench_prom_find_hist(const char *text, size_t len, const char *name,
                         const char *label, struct bench_prom_hist *out)
{
    struct label filter;
    if (label != NULL) {
        const char *lend = label + strlen(label);
        const char *after = parse_label(label, lend, &filter);
        if (after == NULL || after != lend) {
            return MOOR_EINVAL;
        }
    }
    memset(out, 0, sizeof(*out));
    bool have_sum = false;
    bool have_count = false;
    const char *p = text;
    const char *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl != NULL ? nl : end;
        if (eol > p && eol[-1] == '\r') {
            eol--;
        }
        if (p < eol && *p != '#') {
            enum series s;
            double le = 0;
            double v = 0;
            int rv =
                parse_line(p, eol, name, label ? &filter : NULL, &s, &le, &v);
            if (rv == MOOR_EPROTO) {
                return rv;
            }
            if (rv == MOOR_OK && s == S_BUCKET) {
                if (out->n == BENCH_PROM_BUCKETS_MAX) {
                    return MOOR_ETOOBIG;
                }
                if (out->n > 0 && !(le > out->le[out->n - 1])) {
                    return MOOR_EPROTO;
                }
                out->le[out->n] = le;
                out->counts[out->n] = v;
                out->n++;
            } else if (rv == MOOR_OK && s == S_SUM) {
                out->sum = v;
                have_sum = true;
            } else if (rv == MOOR_OK) {
                out->count = v;
                have_count = true;
            }
        }
        p = nl != NULL ? nl + 1 : end;
    }
    if (out->n == 0 && !have_sum && !have_count) {
        return MOOR_ENOENT;
    }
    if (out->n == 0 || !isinf(out->le[out->n - 1]) || !have_sum ||
        !have_count) {
        return MOOR_EPROTO;
    }
    return MOOR_OK;
}

int bench_prom_hist_delta(const struct bench_prom_hist *before,
                          const struct bench_prom_hist *after,
                          struct bench_prom_hist *out)
{
    if (before->n != after->n || after->count < before->count ||
        after->sum < before->sum) {
        return MOOR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < after->n; i++) {
        if (before->le[i] != after->le[i] ||
            after->counts[i] < before->counts[i]) {
            return MOOR_EINVAL;
        }
        out->le[i] = after->le[i];
        out->counts[i] = after->counts[i] - before->counts[i];
    }
    out->n = after->n;
    out->sum = after->sum - before->sum;
    out->count = after->count - before->count;
    return MOOR_OK;
}

double bench_prom_quantile(double q, const struct bench_prom_hist *h)
{
    if (h->n == 0 || !(q >= 0 && q <= 1) || !isinf(h->le[h->n - 1])) {
        return NAN;
    }
    double total = h->counts[h->n - 1];
    if (total <= 0) {
        return NAN;
    }
    double rank = q * total;
    size_t b = 0;
    while (b < h->n - 1 && h->counts[b] < rank) {
        b++;
    }
    if (b == h->n - 1) {
        /* The +Inf bucket: the highest finite bound is all one knows. */
        return h->n >= 2 ? h->le[h->n - 2] : NAN;
    }
    double start = 0;
    double below = 0;
    if (b > 0) {
        start = h->le[b - 1];
        below = h->counts[b - 1];
    } else if (h->le[0] <= 0) {
        return h->le[0];
    }
    double in_bucket = h->counts[b] - below;
    if (in_bucket <= 0) {
        return h->le[b];
    }
    return start + (h->le[b] - start) * ((rank - below) / in_bucket);
}

/* ------------------------------------------------------------------------
 * HTTP/1.1
 * ---------------------------------------------------------------------- */

/* The header block's end ("\r\n\r\n"), or NULL. */
static const uint8_t *head_end(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++) {
        if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
            return p + i + 4;
        }
    }
    return NULL;
}

/* The value of header name (lower-case) in head, NUL-terminated into out,
 * or false. */
static bool header_value(const uint8_t *head, size_t len, const char *name,
                         char *out, size_t out_size)
{
    size_t nl = strlen(name);
    const uint8_t *p = head;
    const uint8_t *end = head + len;
    while (p < end) {
        const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) {
            eol = end;
        }
        if ((size_t)(eol - p) > nl && p[nl] == ':' &&
            strncasecmp((const char *)p, name, nl) == 0) {
            const uint8_t *v = p + nl + 1;
            const uint8_t *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) {
                ve--;
            }
            size_t n = MOOR_MIN((size_t)(ve - v), out_size - 1);
            memcpy(out, v, n);
            out[n] = 0;
            return true;
        }
        p = eol + 1;
    }
    return false;
}

static int dechunk(const uint8_t *p, const uint8_t *end, struct moor_buf *body)
{
    for (;;) {
        const uint8_t *eol = NULL;
        for (const uint8_t *q = p; q + 1 < end; q++) {
            if (q[0] == '\r' && q[1] == '\n') {
                eol = q;
                break;
            }
        }
        if (eol == NULL || eol == p || eol - p > 32) {
            return MOOR_EPROTO;
        }
        uint64_t size = 0;
        const uint8_t *q = p;
        for (; q < eol && *q != ';'; q++) {
            int d;
            if (*q >= '0' && *q <= '9') {
                d = *q - '0';
            } else if ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'f') {
                d = (*q | 0x20) - 'a' + 10;
            } else {
                return MOOR_EPROTO;
            }
            if (size > (UINT64_MAX >> 4)) {
                return MOOR_EPROTO;
            }
            size = size * 16 + (uint64_t)d;
        }
        if (q == p) {
            return MOOR_EPROTO;
        }
        p = eol + 2;
        if (size == 0) {
            return MOOR_OK; /* trailers, if any, are ignored */
        }
        if ((uint64_t)(end - p) < size + 2 || p[size] != '\r' ||
            p[size + 1] != '\n') {
            return MOOR_EPROTO;
        }
        int rv = moor_buf_append(body, p, (size_t)size);
        if (rv != MOOR_OK) {
            return rv;
        }
        p += size + 2;
    }
}

int bench_http_body(const uint8_t *resp, size_t len, struct moor_buf *body,
                    char *errmsg)
{
    const uint8_t *b = head_end(resp, len);
    if (b == NULL || len < 12 || memcmp(resp, "HTTP/1.", 7) != 0) {
        moor_errmsg_set(errmsg, "not an HTTP/1.x response");
        return MOOR_EPROTO;
    }
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (resp[i] < '0' || resp[i] > '9') {
            moor_errmsg_set(errmsg, "bad HTTP status line");
            return MOOR_EPROTO;
        }
        status = status * 10 + (resp[i] - '0');
    }
    if (status != 200) {
        moor_errmsg_set(errmsg, "HTTP status %d", status);
        return MOOR_EIO;
    }
    size_t head_len = (size_t)(b - resp);
    const uint8_t *end = resp + len;
    char v[64];
    if (header_value(resp, head_len, "transfer-encoding", v, sizeof(v)) &&
        strcasecmp(v, "chunked") == 0) {
        int rv = dechunk(b, end, body);
        if (rv == MOOR_EPROTO) {
            moor_errmsg_set(errmsg, "bad chunked body");
        }
        return rv;
    }
    size_t n = (size_t)(end - b);
    if (header_value(resp, head_len, "content-length", v, sizeof(v))) {
        char *e;
        unsigned long long cl = strtoull(v, &e, 10);
        if (*e != 0 || v[0] == 0 || cl > n) {
            moor_errmsg_set(errmsg, "body shorter than its Content-Length");
            return MOOR_EPROTO;
        }
        n = (size_t)cl;
    }
    return moor_buf_append(body, b, n);
}

#define HTTP_RESP_MAX (64u << 20)

/* Splits "http://host:port/path" and resolves host to a loopback sockaddr
 * (no DNS: "localhost", an IPv4 literal in 127/8, or "[::1]"). */
static int loopback_url(const char *url, struct sockaddr_storage *sa,
                        socklen_t *sa_len, char *hostport, size_t hp_size,
                        const char **path, char *errmsg)
{
    if (strncmp(url, "http://", 7) != 0) {
        moor_errmsg_set(errmsg, "%s: not an http:// URL", url);
        return MOOR_EINVAL;
    }
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    *path = slash != NULL ? slash : "/";
    size_t hl = slash != NULL ? (size_t)(slash - h) : strlen(h);
    if (hl == 0 || hl >= hp_size) {
        moor_errmsg_set(errmsg, "%s: bad host", url);
        return MOOR_EINVAL;
    }
    memcpy(hostport, h, hl);
    hostport[hl] = 0;
    char host[64];
    uint16_t port;
    bool tls;
    if (rpc_url_parse(hostport, host, sizeof(host), &port, &tls) != MOOR_OK) {
        moor_errmsg_set(errmsg, "%s: bad host:port", url);
        return MOOR_EINVAL;
    }
    memset(sa, 0, sizeof(*sa));
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof(host), "127.0.0.1");
    }
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1 &&
        (ntohl(v4->sin_addr.s_addr) >> 24) == 127) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *sa_len = sizeof(*v4);
        return MOOR_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1 &&
        IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *sa_len = sizeof(*v6);
        return MOOR_OK;
    }
    moor_errmsg_set(errmsg,
                    "%s: the metrics reader speaks to loopback "
                    "addresses only",
                    url);
    return MOOR_EINVAL;
}

/* Waits for fd to be ready for events until deadline_ns. */
static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = moor_clock_ns();
        if (now >= deadline_ns) {
            return MOOR_ETIMEDOUT;
        }
        struct pollfd pfd = {fd, events, 0};
        int ms = (int)MOOR_MIN((deadline_ns - now) / 1000000 + 1, 60000u);
        int n = poll(&pfd, 1, ms);
        if (n > 0) {
            return MOOR_OK;
        }
        if (n < 0 && errno != EINTR) {
            return MOOR_EIO;
        }
    }
}

static int exchange(int fd, const struct sockaddr_storage *sa, socklen_t sa_len,
                    const char *req, uint64_t deadline, struct moor_buf *resp,
                    char *errmsg)
{
    if (connect(fd, (const struct sockaddr *)sa, sa_len) != 0 &&
        errno != EINPROGRESS) {
        moor_errmsg_set(errmsg, "connect: %s", strerror(errno));
        return MOOR_ECONN;
    }
    int rv = wait_fd(fd, POLLOUT, deadline);
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (rv == MOOR_OK &&
        (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr)) {
        moor_errmsg_set(errmsg, "connect: %s", strerror(soerr));
        return MOOR_ECONN;
    }
    size_t off = 0;
    size_t len = strlen(req);
    while (rv == MOOR_OK && off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            rv = wait_fd(fd, POLLOUT, deadline);
        } else {
            moor_errmsg_set(errmsg, "send: %s", strerror(errno));
            return MOOR_ECONN;
        }
    }
    while (rv == MOOR_OK) {
        if (resp->len >= HTTP_RESP_MAX) {
            moor_errmsg_set(errmsg, "response over %u bytes", HTTP_RESP_MAX);
            return MOOR_ETOOBIG;
        }
        rv = moor_buf_reserve(resp, 65536);
        if (rv != MOOR_OK) {
            return rv;
        }
        ssize_t n = recv(fd, resp->ptr + resp->len, 65536, 0);
        if (n == 0) {
            return MOOR_OK;
        }
        if (n > 0) {
            resp->len += (size_t)n;
        } else if (errno == EAGAIN || errno == EINTR) {
            rv = wait_fd(fd, POLLIN, deadline);
        } else {
            moor_errmsg_set(errmsg, "recv: %s", strerror(errno));
            return MOOR_ECONN;
        }
    }
    if (rv == MOOR_ETIMEDOUT) {
        moor_errmsg_set(errmsg, "timed out");
    }
    return rv;
}

int bench_http_get(const char *url, uint64_t timeout_ms, struct moor_buf *body,
                   char *errmsg)
{
    struct sockaddr_storage sa;
    socklen_t sa_len = 0;
    char hostport[128];
    const char *path;
    int rv = loopback_url(url, &sa, &sa_len, hostport, sizeof(hostport), &path,
                          errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: moor-bench"
                     "\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
                     path, hostport);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        moor_errmsg_set(errmsg, "%s: URL too long", url);
        return MOOR_EINVAL;
    }
    int fd =
        socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        moor_errmsg_set(errmsg, "socket: %s", strerror(errno));
        return MOOR_EIO;
    }
    struct moor_buf resp;
    moor_buf_init(&resp);
    rv = exchange(fd, &sa, sa_len, req, moor_clock_ns() + timeout_ms * 1000000,
                  &resp, errmsg);
    close(fd);
    if (rv == MOOR_OK) {
        rv = bench_http_body(resp.ptr, resp.len, body, errmsg);
    }
    moor_buf_close(&resp);
    if (rv != MOOR_OK && rv != MOOR_ENOMEM) {
        char inner[MOOR_ERRMSG_SIZE];
        snprintf(inner, sizeof(inner), "%s", errmsg);
        moor_errmsg_set(errmsg, "GET %s: %s", url, inner);
    }
    return rv;
}

/* ------------------------------------------------------------------------
 * Summaries
 * ---------------------------------------------------------------------- */
int bench_prom_summary(const char *before, size_t before_len, const char *after,
                       size_t after_len, const char *name, const char *label,
                       struct bench_prom_summary *out)
{
    struct bench_prom_hist *h = moor_malloc(3 * sizeof(*h));
    if (h == NULL) {
        return MOOR_ENOMEM;
    }
    memset(out, 0, sizeof(*out));
    int rv = bench_prom_find_hist(before, before_len, name, label, &h[0]);
    if (rv == MOOR_OK) {
        rv = bench_prom_find_hist(after, after_len, name, label, &h[1]);
    }
    if (rv == MOOR_OK) {
        rv = bench_prom_hist_delta(&h[0], &h[1], &h[2]);
    }
    if (rv == MOOR_OK) {
        out->count = h[2].count;
        out->sum = h[2].sum;
        out->mean = h[2].count > 0 ? h[2].sum / h[2].count : NAN;
        out->p50 = bench_prom_quantile(0.5, &h[2]);
        out->p99 = bench_prom_quantile(0.99, &h[2]);
    }
    moor_free(h);
    return rv;
}

const char *const bench_stage_names[BENCH_STAGES] = {
    "propose_to_durable", "durable_to_commit", "commit_to_apply",
    "apply_to_answer"};

int bench_consensus_stages(const char *before, size_t before_len,
                           const char *after, size_t after_len,
                           struct bench_prom_summary out[BENCH_STAGES],
                           double share[BENCH_STAGES])
{
    double total = 0;
    for (size_t i = 0; i < BENCH_STAGES; i++) {
        char label[64];
        snprintf(label, sizeof(label), "stage=\"%s\"", bench_stage_names[i]);
        int rv = bench_prom_summary(before, before_len, after, after_len,
                                    "moor_server_stage_duration_seconds", label,
                                    &out[i]);
        if (rv != MOOR_OK) {
            return rv;
        }
        total += out[i].sum;
    }
    for (size_t i = 0; i < BENCH_STAGES; i++) {
        share[i] = total > 0 ? out[i].sum / total : 0.0;
    }
    return MOOR_OK;
}
