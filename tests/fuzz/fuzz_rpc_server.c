/*
 * fuzz_rpc_server.c: arbitrary bytes into one server connection's input,
 * as if read from a socket (no socket: rpc__server_fake_conn), through
 * sniffing, HTTP/1.1, nghttp2's frame and HPACK decoding, gRPC framing
 * and the handlers of an echo and a streaming method.
 *
 * Checks: no crash or sanitizer report; memory stays bounded while the
 * input is processed (under 16 MiB of moor allocations, nghttp2's
 * included: 64 streams with 64 KiB send buffers, a 256 KiB receive budget
 * for partial messages and metadata, HPACK tables); and once the connection is
 * closed every byte it allocated is freed.
 *
 * The first input byte picks the chunk size the rest is fed in, so chunk
 * boundaries are fuzzed too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc_int.h"

#define MEMORY_BOUND (16u << 20)

static uv_loop_t loop;
static struct rpc_server *srv;

static void echo_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    rpc_call_send(call, msg);
    rpc_call_finish(call, RPC_OK, NULL);
}

static void stream_more(struct rpc_call *call, void *arg)
{
    (void)arg;
    static const uint8_t m[64];
    while (rpc_call_send(call, moor_slice_make(m, sizeof(m))) == MOOR_OK) {
    }
}

static void stream_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)msg;
    stream_more(call, arg);
}

static int http_fn(const char *path, struct rpc_http_response *resp, void *arg)
{
    (void)arg;
    return moor_buf_printf(&resp->body, "%s\n", path);
}

static void init_once(void)
{
    if (srv != NULL) {
        return;
    }
    uv_loop_init(&loop);
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_recv_msg_bytes = 64 * 1024;
    cfg.max_concurrent_streams = 64;
    cfg.send_buffer_bytes = 64 * 1024;
    cfg.conn_recv_buffer_bytes = 256 * 1024;
    cfg.http_fn = http_fn;
    if (rpc_server_open(&loop, &cfg, &srv, NULL) != MOOR_OK) {
        abort();
    }
    static const struct rpc_method_ops echo = {NULL, echo_msg, NULL, NULL,
                                               NULL};
    static const struct rpc_method_ops stream = {NULL, stream_msg, NULL,
                                                 stream_more, NULL};
    rpc_server_add_method(srv, "/f.S/Echo", &echo, NULL);
    rpc_server_add_method(srv, "/f.S/Stream", &stream, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    size_t before = moor_alloc_bytes();
    struct rpc__conn *c;
    if (rpc__server_fake_conn(srv, &c) != MOOR_OK) {
        abort();
    }
    size_t chunk = size > 0 ? (size_t)data[0] * 16 + 1 : 1;
    size_t off = size > 0 ? 1 : 0;
    while (off < size && rpc_server_conn_count(srv) > 0) {
        size_t n = size - off < chunk ? size - off : chunk;
        rpc__conn_feed(c, data + off, n);
        off += n;
        uv_run(&loop, UV_RUN_NOWAIT); /* flush: handlers' output */
        if (moor_alloc_bytes() - before > MEMORY_BOUND) {
            abort();
        }
    }
    for (int i = 0; i < 4 && rpc_server_conn_count(srv) > 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    if (rpc_server_conn_count(srv) > 0) {
        rpc__conn_close(c, MOOR_OK);
    }
    while (rpc_server_conn_count(srv) > 0) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    if (moor_alloc_bytes() != before) {
        abort(); /* the connection leaked */
    }
    return 0;
}
