/*
 * http1.c: the minimal HTTP/1.1 responder a server connection becomes when
 * its first bytes are an HTTP/1.x request line (/health, /metrics,
 * /version for moord). One request per connection: the head is read (at
 * most RPC__H1_HEAD_MAX bytes), GET and HEAD are answered through the
 * server's rpc_http_fn with "Connection: close", anything else gets 405,
 * 400 or 431, and the connection closes once the answer is written.
 */
#include <stdio.h>

#include "rpc_int.h"

void rpc__h1_init(struct rpc__h1 *h)
{
    moor_buf_init(&h->head);
    h->done = false;
}

void rpc__h1_close(struct rpc__h1 *h)
{
    moor_buf_close(&h->head);
}

static int respond(struct rpc__h1 *h, struct rpc__conn *c, int status,
                   const char *ctype, const struct moor_buf *body, bool head)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, rpc__http_reason(status), ctype,
                     body != NULL ? body->len : 0);
    h->done = true;
    moor_buf_close(&h->head);
    int rv = rpc__conn_write(c, hdr, (size_t)n);
    if (rv == MOOR_OK && body != NULL && body->len > 0 && !head) {
        rv = rpc__conn_write(c, body->ptr, body->len);
    }
    return rv;
}

int rpc__h1_input(struct rpc__h1 *h, struct rpc__conn *c, const uint8_t *p,
                  size_t n, rpc_http_fn fn, void *arg)
{
    if (h->done) {
        return MOOR_OK; /* one request per connection: the rest is ignored */
    }
    size_t take = MOOR_MIN(n, RPC__H1_HEAD_MAX - h->head.len);
    if (moor_buf_append(&h->head, p, take) != MOOR_OK) {
        return MOOR_ENOMEM;
    }
    char method[16];
    char target[1024];
    int r = rpc__http1_parse(h->head.ptr, h->head.len, method, sizeof(method),
                             target, sizeof(target));
    if (r == 0) {
        if (h->head.len >= RPC__H1_HEAD_MAX) {
            return respond(h, c, 431, "text/plain", NULL, false);
        }
        return MOOR_OK;
    }
    if (r < 0) {
        return respond(h, c, 400, "text/plain", NULL, false);
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        return respond(h, c, 405, "text/plain", NULL, false);
    }
    if (fn == NULL) {
        return respond(h, c, 404, "text/plain", NULL, head);
    }
    struct rpc_http_response resp;
    resp.status = 200;
    resp.content_type = "text/plain";
    moor_buf_init(&resp.body);
    int rv;
    if (fn(target, &resp, arg) != MOOR_OK) {
        rv = respond(h, c, 500, "text/plain", NULL, head);
    } else {
        rv = respond(
            h, c, resp.status,
            resp.content_type != NULL ? resp.content_type : "text/plain",
            &resp.body, head);
    }
    moor_buf_close(&resp.body);
    return rv;
}
