/*
 * http1.c: the minimal HTTP/1.1 responder a server connection becomes when
 * its first bytes are an HTTP/1.x request line (/health, /metrics,
 * /version for moord).
 *
 * Requests are answered in order, one head at a time (at most
 * RPC__H1_HEAD_MAX bytes each): GET and HEAD through the server's
 * rpc_http_fn, anything else 405, a malformed head 400, an oversize one
 * 431. HTTP/1.1 connections stay open for the next request (keep-alive, as
 * Prometheus scrapers and curl with several URLs expect) unless the
 * request says "Connection: close", is HTTP/1.0, carries a body (bodies
 * are not read), or was refused; then the answer says "Connection: close"
 * and the connection closes once it is written. The server closes a
 * connection idle between requests (or slow to send a head) after its
 * idle timeout (server.c arms it).
 *
 * Pipelined requests (sent before the previous answer was read) are
 * answered in order too, but answers are not queued without bound: once
 * more than RPC__OUT_HWM bytes of earlier answers wait for the socket, the
 * next answer closes the connection.
 */
#include <stdio.h>

#include "rpc_int.h"

void rpc__h1_init(struct rpc__h1 *h)
{
    moor_buf_init(&h->head);
    h->done = false;
    h->answered = 0;
}

void rpc__h1_close(struct rpc__h1 *h)
{
    moor_buf_close(&h->head);
}

static int respond(struct rpc__h1 *h, struct rpc__conn *c, int status,
                   const char *ctype, const struct moor_buf *body, bool head,
                   bool keep)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     status, rpc__http_reason(status), ctype,
                     body != NULL ? body->len : 0,
                     keep ? "" : "Connection: close\r\n");
    h->answered++;
    if (!keep) {
        h->done = true;
        moor_buf_close(&h->head);
    }
    int rv = rpc__conn_write(c, hdr, (size_t)n);
    if (rv == MOOR_OK && body != NULL && body->len > 0 && !head) {
        rv = rpc__conn_write(c, body->ptr, body->len);
    }
    return rv;
}

/* Answers the complete head in h->head[0..len). */
static int answer(struct rpc__h1 *h, struct rpc__conn *c, size_t len,
                  const char *method, const char *target, rpc_http_fn fn,
                  void *arg)
{
    bool keep = rpc__http1_keep_alive(h->head.ptr, len) &&
                c->out.len + c->wbuf.len <= RPC__OUT_HWM;
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        return respond(h, c, 405, "text/plain", NULL, false, false);
    }
    if (fn == NULL) {
        return respond(h, c, 404, "text/plain", NULL, head, keep);
    }
    struct rpc_http_response resp;
    resp.status = 200;
    resp.content_type = "text/plain";
    moor_buf_init(&resp.body);
    int rv;
    if (fn(target, &resp, arg) != MOOR_OK) {
        rv = respond(h, c, 500, "text/plain", NULL, head, keep);
    } else {
        rv = respond(
            h, c, resp.status,
            resp.content_type != NULL ? resp.content_type : "text/plain",
            &resp.body, head, keep);
    }
    moor_buf_close(&resp.body);
    return rv;
}

int rpc__h1_input(struct rpc__h1 *h, struct rpc__conn *c, const uint8_t *p,
                  size_t n, rpc_http_fn fn, void *arg)
{
    /* Each turn takes input up to the head bound and answers at most one
     * complete head; it ends when the input is used up and no complete
     * head is left. */
    while (!h->done && !c->dead) {
        size_t take = MOOR_MIN(n, RPC__H1_HEAD_MAX - h->head.len);
        if (moor_buf_append(&h->head, p, take) != MOOR_OK) {
            return MOOR_ENOMEM;
        }
        p += take;
        n -= take;
        char method[16];
        char target[1024];
        int r = rpc__http1_parse(h->head.ptr, h->head.len, method,
                                 sizeof(method), target, sizeof(target));
        if (r == 0) {
            if (h->head.len >= RPC__H1_HEAD_MAX) {
                return respond(h, c, 431, "text/plain", NULL, false, false);
            }
            return MOOR_OK; /* n is 0: the head was not full */
        }
        if (r < 0) {
            return respond(h, c, 400, "text/plain", NULL, false, false);
        }
        int rv = answer(h, c, (size_t)r, method, target, fn, arg);
        if (rv != MOOR_OK || h->done) {
            return rv;
        }
        moor_buf_consume(&h->head, (size_t)r);
        if (h->head.len == 0) {
            /* Do not keep a grown buffer per idle connection. */
            moor_buf_close(&h->head);
            if (n == 0) {
                return MOOR_OK;
            }
        }
    }
    return MOOR_OK; /* done: the rest is ignored */
}
