/*
 * fuzz_rpc_client.c: arbitrary bytes from a "server" into one client
 * connection (no socket: rpc__client_fake_conn), after the harness fed it
 * an empty SETTINGS frame and started three calls on it (streams 1, 3 and
 * 5): a unary call, a server stream that is paused, and a bidi stream.
 * Covers nghttp2's client side, our header and trailer handling, gRPC
 * deframing, held (paused) data and the end of every call.
 *
 * Checks: no crash or sanitizer report; memory stays bounded while the
 * input is processed; once the client is closed every byte it allocated
 * is freed and every call has ended exactly once.
 *
 * The first input byte picks the chunk size the rest is fed in.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc_int.h"

#define MEMORY_BOUND (64u << 20)

static uv_loop_t loop;
static bool loop_ready;
/* A fake connection has no socket handle: this keeps the loop alive so
 * uv_run(UV_RUN_NOWAIT) runs the pump's prepare hook (the writes). */
static uv_timer_t keep_alive;

static void keep_alive_cb(uv_timer_t *t)
{
    (void)t; /* never fires within one input */
}

struct call
{
    struct rpc_stream *s;
    int done;
    int messages;
};

static void on_message(struct rpc_stream *s, struct moor_slice m, void *arg)
{
    (void)s;
    (void)m;
    struct call *c = arg;
    c->messages++;
}

static void on_done(struct rpc_stream *s, int status, const char *message,
                    void *arg)
{
    (void)s;
    (void)status;
    (void)message;
    struct call *c = arg;
    c->done++;
}

static void on_unary(int status, const char *message, struct moor_slice resp,
                     void *arg)
{
    (void)status;
    (void)message;
    (void)resp;
    struct call *c = arg;
    c->done++;
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loop_ready) {
        uv_loop_init(&loop);
        uv_timer_init(&loop, &keep_alive);
        loop_ready = true;
    }
    uv_timer_start(&keep_alive, keep_alive_cb, 3600000, 0);
    size_t before = moor_alloc_bytes();
    const char *eps[] = {"127.0.0.1:1"}; /* never dialed */
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    cfg.max_recv_msg_bytes = 64 * 1024;
    cfg.initial_window_bytes = 64 * 1024;
    struct rpc_client *cl;
    if (rpc_client_open(&loop, &cfg, &cl, NULL) != MOOR_OK) {
        abort();
    }
    struct rpc__conn *c;
    if (rpc__client_fake_conn(cl, &c) != MOOR_OK) {
        abort();
    }
    static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    rpc__conn_feed(c, settings, sizeof(settings));

    struct call calls[3];
    memset(calls, 0, sizeof(calls));
    static const struct rpc_stream_ops ops = {on_message, NULL, on_done};
    if (rpc_client_unary(cl, "/f.S/Unary", NULL, 0, moor_slice_str("req"), 0,
                         on_unary, &calls[0]) != MOOR_OK ||
        rpc_stream_start(cl, "/f.S/Stream", NULL, 0, 0, &ops, &calls[1],
                         &calls[1].s) != MOOR_OK ||
        rpc_stream_start(cl, "/f.S/Bidi", NULL, 0, 0, &ops, &calls[2],
                         &calls[2].s) != MOOR_OK) {
        abort();
    }
    rpc_stream_close_send(calls[1].s);
    rpc_stream_pause(calls[1].s, true);
    rpc_stream_send(calls[2].s, moor_slice_str("ping"));
    uv_run(&loop, UV_RUN_NOWAIT); /* the requests go out (discarded) */

    size_t chunk = size > 0 ? (size_t)data[0] * 16 + 1 : 1;
    size_t off = size > 0 ? 1 : 0;
    while (off < size && rpc_client_conn_count(cl) > 0) {
        size_t n = size - off < chunk ? size - off : chunk;
        rpc__conn_feed(c, data + off, n);
        off += n;
        uv_run(&loop, UV_RUN_NOWAIT);
        if (moor_alloc_bytes() - before > MEMORY_BOUND) {
            abort();
        }
    }
    if (calls[1].done == 0) {
        rpc_stream_pause(calls[1].s, false); /* delivery of held bytes */
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    uv_timer_stop(&keep_alive);
    bool closed = false;
    rpc_client_close(cl, set_flag, &closed);
    while (!closed) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    for (int i = 0; i < 3; i++) {
        if (calls[i].done != 1) {
            abort(); /* every call ends exactly once */
        }
    }
    if (moor_alloc_bytes() != before) {
        abort();
    }
    return 0;
}
