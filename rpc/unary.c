/*
 * unary.c: unary calls on top of client streams (send one request, close
 * the sending side, collect exactly one response), and the blocking form
 * command-line tools use.
 */
#include <stdio.h>

#include "rpc_int.h"

struct unary
{
    rpc_unary_done_fn done_cb;
    void *arg;
    struct moor_buf resp;
    uint32_t count;
};

static void unary_message_cb(struct rpc_stream *s, struct moor_slice msg,
                             void *arg)
{
    (void)s;
    struct unary *u = arg;
    if (u->count++ == 0 &&
        moor_buf_append(&u->resp, msg.ptr, msg.len) != MOOR_OK) {
        u->count = UINT32_MAX; /* reported as RESOURCE_EXHAUSTED */
    }
}

static void unary_done_cb(struct rpc_stream *s, int status, const char *message,
                          void *arg)
{
    (void)s;
    struct unary *u = arg;
    if (status == RPC_OK && u->count == UINT32_MAX) {
        status = RPC_RESOURCE_EXHAUSTED;
        message = "out of memory";
    } else if (status == RPC_OK && u->count != 1) {
        status = RPC_INTERNAL;
        message = u->count == 0 ? "cardinality violation: no response"
                                : "cardinality violation: several responses";
    }
    struct moor_slice r = status == RPC_OK
                              ? moor_slice_make(u->resp.ptr, u->resp.len)
                              : moor_slice_make(NULL, 0);
    u->done_cb(status, message, r, u->arg);
    moor_buf_close(&u->resp);
    moor_free(u);
}

int rpc_client_unary(struct rpc_client *c, const char *path,
                     const struct rpc_metadata *md, size_t md_len,
                     struct moor_slice req, uint64_t timeout_ms,
                     rpc_unary_done_fn done_cb, void *arg)
{
    if (done_cb == NULL) {
        return MOOR_EINVAL;
    }
    struct unary *u = moor_calloc(1, sizeof(*u));
    if (u == NULL) {
        return MOOR_ENOMEM;
    }
    u->done_cb = done_cb;
    u->arg = arg;
    moor_buf_init(&u->resp);
    static const struct rpc_stream_ops ops = {unary_message_cb, NULL,
                                              unary_done_cb};
    struct rpc_stream *s;
    int rv = rpc_stream_start(c, path, md, md_len, timeout_ms, &ops, u, &s);
    if (rv != MOOR_OK) {
        moor_free(u);
        return rv;
    }
    rv = rpc_stream_send(s, req);
    if (rv != MOOR_OK) {
        /* The stream exists: end it through the loop like any other. */
        char m[96];
        snprintf(m, sizeof(m), "request not queued: %s", moor_strerror(rv));
        rpc__stream_fail(s, RPC_RESOURCE_EXHAUSTED, m);
        return MOOR_OK;
    }
    rpc_stream_close_send(s);
    return MOOR_OK;
}

struct sync_ctx
{
    uv_loop_t *loop;
    bool done;
    int status;
    int err;
    struct moor_buf *resp;
    char *errmsg;
};

static void sync_done_cb(int status, const char *message,
                         struct moor_slice resp, void *arg)
{
    struct sync_ctx *x = arg;
    x->done = true;
    /* The call may end in the timer phase (a deadline): without a stop,
     * uv_run(UV_RUN_ONCE) would then block in poll for unrelated I/O. */
    uv_stop(x->loop);
    x->status = status;
    if (x->errmsg != NULL) {
        moor_errmsg_set(x->errmsg, "%s", message);
    }
    if (resp.len > 0 && moor_buf_append(x->resp, resp.ptr, resp.len) != 0) {
        x->err = MOOR_ENOMEM;
    }
}

int rpc_client_unary_sync(struct rpc_client *c, const char *path,
                          const struct rpc_metadata *md, size_t md_len,
                          struct moor_slice req, uint64_t timeout_ms,
                          struct moor_buf *resp, char *errmsg)
{
    struct sync_ctx x = {
        rpc__client_loop(c), false, RPC_UNKNOWN, MOOR_OK, resp, errmsg};
    int rv = rpc_client_unary(c, path, md, md_len, req, timeout_ms,
                              sync_done_cb, &x);
    if (rv != MOOR_OK) {
        return rv;
    }
    while (!x.done) {
        uv_run(x.loop, UV_RUN_ONCE);
    }
    return x.err != MOOR_OK ? x.err : x.status;
}
