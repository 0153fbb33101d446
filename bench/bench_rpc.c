/*
 * bench_rpc.c: `moor-bench rpc`, rpc/'s throughput on loopback, in one
 * process: the server runs on its own thread and loop, the clients on the
 * main thread's loop (two loop threads, as a member and a client machine
 * would have one each).
 *
 * Workloads (cleartext HTTP/2, 127.0.0.1):
 *   unary_1conn   small unary calls (--bytes, default 16) echoed, with
 *                 --inflight calls outstanding (default 64), one connection
 *   unary_16conn  the same spread over 16 connections
 *   stream        one server-streaming call of --stream-msgs messages of
 *                 --bytes bytes: messages/s as the client receives them
 *   conn_bytes    the server's memory per idle connection (moor
 *                 allocations, nghttp2's included; not the kernel's socket
 *                 buffers): a forked child opens --conns connections, each
 *                 makes one call, and the server's allocation count is
 *                 compared before and after
 * Each unary run lasts --seconds; latency percentiles are per call.
 *
 * --grpcio SCRIPT runs bench/bench_rpc_grpcio.py (python3-grpcio, C-core,
 * asyncio) with the same parameters and prints its rows beside ours, for
 * scale: a different implementation on the same machine, not a target.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "rpc/rpc.h"

struct rpc_bench_opts
{
    double seconds;
    uint32_t inflight;
    size_t bytes;
    uint64_t stream_msgs;
    const char *grpcio;
    uint32_t conns;
    bool json;
};

/* ------------------------------------------------------------------------
 * Server thread
 * ---------------------------------------------------------------------- */
struct srv_thread
{
    pthread_t tid;
    uv_loop_t loop;
    uv_async_t stop;
    struct rpc_server *srv;
    uint16_t port;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool ready;
    int err;
};

struct streamer
{
    uint64_t left;
    size_t bytes;
};

static void echo_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    rpc_call_send(call, msg);
    rpc_call_finish(call, RPC_OK, NULL);
}

static void stream_more(struct rpc_call *call, void *arg)
{
    (void)arg;
    struct streamer *st = rpc_call_user(call);
    static uint8_t buf[65536];
    while (st->left > 0) {
        int rv = rpc_call_send(call, moor_slice_make(buf, st->bytes));
        if (rv != MOOR_OK) {
            return; /* MOOR_EAGAIN: writable_cb resumes */
        }
        st->left--;
    }
    rpc_call_finish(call, RPC_OK, NULL);
}

static void stream_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct streamer *st = moor_calloc(1, sizeof(*st));
    if (st == NULL || msg.len != 16) {
        moor_free(st);
        rpc_call_finish(call, RPC_INVALID_ARGUMENT, "bad request");
        return;
    }
    st->left = moor_get_be64(msg.ptr);
    st->bytes = MOOR_MIN(moor_get_be64(msg.ptr + 8), 65536u);
    rpc_call_set_user(call, st);
    stream_more(call, arg);
}

static void stream_done(struct rpc_call *call, int status, void *arg)
{
    (void)status;
    (void)arg;
    moor_free(rpc_call_user(call));
}

static void srv_closed_cb(void *arg)
{
    struct srv_thread *t = arg;
    uv_close((uv_handle_t *)&t->stop, NULL);
}

static void srv_stop_cb(uv_async_t *a)
{
    struct srv_thread *t = a->data;
    rpc_server_close(t->srv, 1000, srv_closed_cb, t);
}

static void *srv_main(void *arg)
{
    struct srv_thread *t = arg;
    uv_loop_init(&t->loop);
    uv_async_init(&t->loop, &t->stop, srv_stop_cb);
    t->stop.data = t;
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    int rv = rpc_server_open(&t->loop, &cfg, &t->srv, NULL);
    if (rv == MOOR_OK) {
        static const struct rpc_method_ops echo = {NULL, echo_msg, NULL, NULL,
                                                   NULL};
        static const struct rpc_method_ops stream = {NULL, stream_msg, NULL,
                                                     stream_more, stream_done};
        rpc_server_add_method(t->srv, "/bench.B/Unary", &echo, NULL);
        rpc_server_add_method(t->srv, "/bench.B/Stream", &stream, NULL);
        rv = rpc_server_listen(t->srv, "127.0.0.1", 0, false, &t->port, NULL);
    }
    pthread_mutex_lock(&t->mu);
    t->ready = true;
    t->err = rv;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Clients
 * ---------------------------------------------------------------------- */
struct unary_run
{
    uv_loop_t *loop;
    struct rpc_client **cls;
    uint32_t ncls;
    uint64_t end_ns;
    uint32_t inflight;
    uint64_t calls;
    uint64_t errors;
    uint64_t next;
    const uint8_t *req;
    size_t bytes;
    struct bench_hist *hist;
};

struct slot
{
    struct unary_run *run;
    uint64_t start_ns;
};

static void issue(struct slot *s);

static void unary_done(int status, const char *message, struct moor_slice r,
                       void *arg)
{
    (void)message;
    (void)r;
    struct slot *s = arg;
    struct unary_run *u = s->run;
    uint64_t now = moor_clock_ns();
    if (status == RPC_OK) {
        u->calls++;
        bench_hist_record(u->hist, now - s->start_ns);
    } else {
        u->errors++;
    }
    if (now < u->end_ns) {
        issue(s);
    } else {
        u->inflight--;
    }
}

static void issue(struct slot *s)
{
    struct unary_run *u = s->run;
    struct rpc_client *cl = u->cls[u->next++ % u->ncls];
    s->start_ns = moor_clock_ns();
    if (rpc_client_unary(cl, "/bench.B/Unary", NULL, 0,
                         moor_slice_make(u->req, u->bytes), 10000, unary_done,
                         s) != MOOR_OK) {
        u->errors++;
        u->inflight--;
    }
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
}

static int open_clients(uv_loop_t *loop, uint16_t port, uint32_t n,
                        struct rpc_client **cls)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "127.0.0.1:%u", port);
    const char *eps[] = {ep};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    for (uint32_t i = 0; i < n; i++) {
        int rv = rpc_client_open(loop, &cfg, &cls[i], NULL);
        if (rv != MOOR_OK) {
            return rv;
        }
        struct moor_buf resp;
        moor_buf_init(&resp);
        /* Connect before timing. */
        rv = rpc_client_unary_sync(cls[i], "/bench.B/Unary", NULL, 0,
                                   moor_slice_str("warm"), 5000, &resp, NULL);
        moor_buf_close(&resp);
        if (rv != RPC_OK) {
            return MOOR_ECONN;
        }
    }
    return MOOR_OK;
}

static void close_clients(uv_loop_t *loop, struct rpc_client **cls, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        bool closed = false;
        rpc_client_close(cls[i], set_flag, &closed);
        while (!closed) {
            uv_run(loop, UV_RUN_ONCE);
        }
    }
}

struct unary_result
{
    double calls_s;
    double p50_ms;
    double p99_ms;
    uint64_t errors;
};

static int run_unary(const struct rpc_bench_opts *o, uint16_t port,
                     uint32_t nconns, struct unary_result *res)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rpc_client **cls = calloc(nconns, sizeof(*cls));
    struct bench_hist *hist = malloc(sizeof(*hist));
    uint8_t *req = calloc(1, o->bytes + 1);
    struct slot *slots = calloc(o->inflight, sizeof(*slots));
    int rv = open_clients(&loop, port, nconns, cls);
    if (rv == MOOR_OK) {
        bench_hist_init(hist);
        struct unary_run u = {&loop, cls, nconns, 0,        o->inflight, 0,
                              0,     0,   req,    o->bytes, hist};
        uint64_t start = moor_clock_ns();
        u.end_ns = start + (uint64_t)(o->seconds * 1e9);
        for (uint32_t i = 0; i < o->inflight; i++) {
            slots[i].run = &u;
            issue(&slots[i]);
        }
        while (u.inflight > 0) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        double el = (double)(moor_clock_ns() - start) / 1e9;
        res->calls_s = (double)u.calls / el;
        res->p50_ms = (double)bench_hist_percentile(hist, 50) / 1e6;
        res->p99_ms = (double)bench_hist_percentile(hist, 99) / 1e6;
        res->errors = u.errors;
    }
    close_clients(&loop, cls, rv == MOOR_OK ? nconns : 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(slots);
    free(req);
    free(hist);
    free(cls);
    return rv;
}

struct stream_run
{
    uint64_t msgs;
    bool done;
    int status;
};

static void sr_msg(struct rpc_stream *s, struct moor_slice m, void *arg)
{
    (void)s;
    (void)m;
    struct stream_run *r = arg;
    r->msgs++;
}

static void sr_done(struct rpc_stream *s, int status, const char *message,
                    void *arg)
{
    (void)s;
    (void)message;
    struct stream_run *r = arg;
    r->done = true;
    r->status = status;
}

static int run_stream(const struct rpc_bench_opts *o, uint16_t port,
                      double *msgs_s)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rpc_client *cl = NULL;
    int rv = open_clients(&loop, port, 1, &cl);
    if (rv == MOOR_OK) {
        static const struct rpc_stream_ops ops = {sr_msg, NULL, sr_done};
        struct stream_run r = {0, false, -1};
        struct rpc_stream *s;
        uint8_t req[16];
        moor_put_be64(req, o->stream_msgs);
        moor_put_be64(req + 8, o->bytes);
        uint64_t start = moor_clock_ns();
        rv = rpc_stream_start(cl, "/bench.B/Stream", NULL, 0, 0, &ops, &r, &s);
        if (rv == MOOR_OK) {
            rpc_stream_send(s, moor_slice_make(req, sizeof(req)));
            rpc_stream_close_send(s);
            while (!r.done) {
                uv_run(&loop, UV_RUN_ONCE);
            }
            double el = (double)(moor_clock_ns() - start) / 1e9;
            *msgs_s = (double)r.msgs / el;
            rv = r.status == RPC_OK && r.msgs == o->stream_msgs ? MOOR_OK
                                                                : MOOR_EIO;
        }
        close_clients(&loop, &cl, 1);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rv;
}

/* Runs the grpcio script and copies its rows (lines "name value unit")
 * to out, prefixed "grpcio_". */
static int run_grpcio(const struct rpc_bench_opts *o, struct moor_buf *rows)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 '%s' --seconds %g --inflight %u --bytes %zu "
             "--stream-msgs %llu",
             o->grpcio, o->seconds, o->inflight, o->bytes,
             (unsigned long long)o->stream_msgs);
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        return MOOR_EIO;
    }
    char line[256];
    while (fgets(line, sizeof(line), p) != NULL) {
        char name[64];
        double v;
        char unit[32];
        if (sscanf(line, "%63s %lf %31s", name, &v, unit) == 3) {
            moor_buf_printf(rows, "grpcio_%s %.2f %s\n", name, v, unit);
        }
    }
    return pclose(p) == 0 ? MOOR_OK : MOOR_EIO;
}

/* Server-side bytes per idle connection; see the header comment. */
static int run_conn_bytes(uint16_t port, uint32_t n, double *per_conn)
{
    int up[2];
    int down[2];
    if (pipe(up) != 0 || pipe(down) != 0) {
        return MOOR_EIO;
    }
    size_t before = moor_alloc_bytes();
    pid_t pid = fork();
    if (pid < 0) {
        return MOOR_EIO;
    }
    if (pid == 0) {
        /* Child: only this thread exists; it touches nothing of the
         * parent's loop. */
        uv_loop_t loop;
        uv_loop_init(&loop);
        struct rpc_client **cls = calloc(n, sizeof(*cls));
        char ok = open_clients(&loop, port, n, cls) == MOOR_OK ? 'y' : 'n';
        if (write(up[1], &ok, 1) != 1) {
            _exit(1);
        }
        char c;
        if (read(down[0], &c, 1) != 1) {
            _exit(1);
        }
        _exit(0);
    }
    char ok = 'n';
    int rv = read(up[0], &ok, 1) == 1 && ok == 'y' ? MOOR_OK : MOOR_ECONN;
    /* Let the server finish with the last frames of the warm-up calls. */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    size_t after = moor_alloc_bytes();
    *per_conn = after > before ? (double)(after - before) / n : 0;
    char c = 'x';
    if (write(down[1], &c, 1) != 1) {
        rv = MOOR_EIO;
    }
    waitpid(pid, NULL, 0);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    return rv;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: moor-bench rpc [--seconds S] [--inflight N] [--bytes B]\n"
            "                      [--stream-msgs M] [--conns C] "
            "[--grpcio SCRIPT] [--json]\n");
}

int bench_rpc_main(int argc, char **argv)
{
    struct rpc_bench_opts o = {3.0, 64, 16, 1000000, NULL, 200, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (v != NULL && strcmp(a, "--seconds") == 0) {
            o.seconds = atof(v);
            i++;
        } else if (v != NULL && strcmp(a, "--inflight") == 0) {
            o.inflight = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (v != NULL && strcmp(a, "--bytes") == 0) {
            o.bytes = strtoul(v, NULL, 10);
            i++;
        } else if (v != NULL && strcmp(a, "--stream-msgs") == 0) {
            o.stream_msgs = strtoull(v, NULL, 10);
            i++;
        } else if (v != NULL && strcmp(a, "--conns") == 0) {
            o.conns = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (v != NULL && strcmp(a, "--grpcio") == 0) {
            o.grpcio = v;
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.seconds <= 0 || o.inflight == 0 || o.bytes > 65536 ||
        o.stream_msgs == 0 || o.conns == 0) {
        usage(stderr);
        return 2;
    }
    struct srv_thread t;
    memset(&t, 0, sizeof(t));
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cond, NULL);
    pthread_create(&t.tid, NULL, srv_main, &t);
    pthread_mutex_lock(&t.mu);
    while (!t.ready) {
        pthread_cond_wait(&t.cond, &t.mu);
    }
    pthread_mutex_unlock(&t.mu);
    int rv = t.err;
    struct unary_result u1 = {0, 0, 0, 0};
    struct unary_result u16 = {0, 0, 0, 0};
    double stream_s = 0;
    double conn_bytes = 0;
    if (rv == MOOR_OK) {
        rv = run_conn_bytes(t.port, o.conns, &conn_bytes);
    }
    if (rv == MOOR_OK) {
        rv = run_unary(&o, t.port, 1, &u1);
    }
    if (rv == MOOR_OK) {
        rv = run_unary(&o, t.port, 16, &u16);
    }
    if (rv == MOOR_OK) {
        rv = run_stream(&o, t.port, &stream_s);
    }
    uv_async_send(&t.stop);
    pthread_join(t.tid, NULL);
    if (rv != MOOR_OK) {
        fprintf(stderr, "moor-bench rpc: %s\n", moor_strerror(rv));
        return 1;
    }
    struct moor_buf grpcio;
    moor_buf_init(&grpcio);
    if (o.grpcio != NULL && run_grpcio(&o, &grpcio) != MOOR_OK) {
        fprintf(stderr, "moor-bench rpc: the grpcio script failed\n");
    }
    if (o.json) {
        printf(
            "{\"bench\":\"rpc\",\"seconds\":%g,\"inflight\":%u,"
            "\"bytes\":%zu,\"unary_1conn_calls_s\":%.0f,"
            "\"unary_1conn_p50_ms\":%.3f,\"unary_1conn_p99_ms\":%.3f,"
            "\"unary_16conn_calls_s\":%.0f,\"unary_16conn_p50_ms\":%.3f,"
            "\"unary_16conn_p99_ms\":%.3f,\"stream_msgs_s\":%.0f,"
            "\"conn_bytes\":%.0f,\"errors\":%llu}\n",
            o.seconds, o.inflight, o.bytes, u1.calls_s, u1.p50_ms, u1.p99_ms,
            u16.calls_s, u16.p50_ms, u16.p99_ms, stream_s, conn_bytes,
            (unsigned long long)(u1.errors + u16.errors));
    } else {
        printf(
            "rpc: loopback h2 cleartext, server and client on two loop "
            "threads, %g s per unary run, %u calls in flight, %zu-byte "
            "messages, stream of %llu\n",
            o.seconds, o.inflight, o.bytes, (unsigned long long)o.stream_msgs);
        printf("%-24s %12.0f calls/s\n", "unary_1conn", u1.calls_s);
        printf("%-24s %12.3f ms\n", "unary_1conn_p50", u1.p50_ms);
        printf("%-24s %12.3f ms\n", "unary_1conn_p99", u1.p99_ms);
        printf("%-24s %12.0f calls/s\n", "unary_16conn", u16.calls_s);
        printf("%-24s %12.3f ms\n", "unary_16conn_p50", u16.p50_ms);
        printf("%-24s %12.3f ms\n", "unary_16conn_p99", u16.p99_ms);
        printf("%-24s %12.0f msgs/s\n", "stream", stream_s);
        printf("%-24s %12.0f bytes (server, %u idle conns)\n", "conn_bytes",
               conn_bytes, o.conns);
        printf("%-24s %12llu calls\n", "errors",
               (unsigned long long)(u1.errors + u16.errors));
        char *line = (char *)grpcio.ptr;
        while (line != NULL && line < (char *)grpcio.ptr + grpcio.len) {
            char name[80];
            double v;
            char unit[32];
            char *nl = strchr(line, '\n');
            if (sscanf(line, "%79s %lf %31s", name, &v, unit) == 3) {
                printf("%-24s %12.*f %s\n", name, v < 100 ? 3 : 0, v, unit);
            }
            line = nl != NULL ? nl + 1 : NULL;
        }
    }
    moor_buf_close(&grpcio);
    return 0;
}
