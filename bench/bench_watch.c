/* bench_watch.c: `moor-bench watch` (events/s delivered to --streams x
 * --watchers watchers while puts run) and `moor-bench watch-latency` (the
 * delay from a put's send to its event at each watcher). */
#include <stdlib.h>

#include "bench_int.h"

#define WATCH_LATENCY_TOTAL_MAX 10000000u
#define WATCH_PREFIX "moor-bench/w/"

struct watch_run;

struct wstream
{
    struct watch_run *run;
    struct rpc_stream *s;
    uint32_t sent; /* create requests queued */
    bool done;
};

struct watch_run
{
    struct bench_load *l;
    struct bench_kv_state kv;
    bool latency;
    struct wstream *streams;
    uint32_t nstreams;
    uint32_t open_streams;
    uint64_t created;
    uint64_t events;
    uint64_t last_event_ns;
    uint64_t *sent_ns;      /* watch-latency: send time by key index */
    struct bench_hist *lat; /* watch-latency: put-to-event delays */
    uint8_t end[BENCH_KEY_MAX];
    size_t end_len;
};

static void send_creates(struct wstream *w)
{
    struct watch_run *r = w->run;
    const struct bench_opts *o = r->l->o;
    Etcdserverpb__WatchCreateRequest c =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    c.key.data = (uint8_t *)WATCH_PREFIX;
    c.key.len = strlen(WATCH_PREFIX);
    c.range_end.data = r->end;
    c.range_end.len = r->end_len;
    c.prev_kv = o->prev_kv;
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    req.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    req.create_request = &c;
    uint8_t buf[BENCH_KEY_MAX * 2 + 64];
    size_t n = protobuf_c_message_pack(&req.base, buf);
    while (w->sent < o->watchers) {
        int rv = rpc_stream_send(w->s, moor_slice_make(buf, n));
        if (rv == MOOR_EAGAIN) {
            return; /* writable_cb resumes */
        }
        if (rv != MOOR_OK) {
            bench__load_note(r->l, "cannot create a watcher: %s",
                             moor_strerror(rv));
            r->l->setup_failures++;
            rpc_stream_cancel(w->s);
            return;
        }
        w->sent++;
    }
}

/* The key index after the prefix, or UINT64_MAX. */
static uint64_t key_index(const struct watch_run *r, const uint8_t *key,
                          size_t len)
{
    size_t pl = r->kv.kg.prefix_len;
    if (len != r->kv.kg.key_size || memcmp(key, r->kv.kg.prefix, pl) != 0) {
        return UINT64_MAX;
    }
    uint64_t v = 0;
    for (size_t i = pl; i < len; i++) {
        uint8_t c = key[i];
        if (c < '0' || c > '9') {
            return UINT64_MAX;
        }
        v = v * 10 + (uint64_t)(c - '0');
    }
    return v;
}

struct event_at
{
    struct watch_run *r;
    uint64_t now;
};

static void event_key(const uint8_t *key, size_t len, void *arg)
{
    struct event_at *e = arg;
    struct watch_run *r = e->r;
    uint64_t k = key_index(r, key, len);
    if (k >= r->l->o->total || r->sent_ns[k] == 0) {
        r->l->bad_responses++;
        bench__load_note(r->l, "an event for a key never put");
        return;
    }
    bench_hist_record(r->lat, e->now - r->sent_ns[k]);
}

static void ws_message(struct rpc_stream *s, struct moor_slice msg, void *arg)
{
    (void)s;
    struct wstream *w = arg;
    struct watch_run *r = w->run;
    struct event_at at = {r, moor_clock_ns()};
    struct bench_watch_scan scan;
    if (bench_watch_scan(msg.ptr, msg.len, &scan, r->latency ? event_key : NULL,
                         &at) != MOOR_OK) {
        r->l->bad_responses++;
        bench__load_note(r->l, "malformed WatchResponse");
        return;
    }
    if (scan.created) {
        r->created++;
    }
    if (scan.canceled) {
        r->l->bad_responses++;
        bench__load_note(r->l, "a watcher was canceled by the server");
    }
    if (scan.events > 0) {
        r->events += scan.events;
        r->last_event_ns = at.now;
    }
}

static void ws_writable(struct rpc_stream *s, void *arg)
{
    (void)s;
    send_creates(arg);
}

static void ws_done(struct rpc_stream *s, int status, const char *message,
                    void *arg)
{
    (void)s;
    struct wstream *w = arg;
    w->done = true;
    w->run->open_streams--;
    if (status != RPC_CANCELLED && status != RPC_OK) {
        bench__load_count_status(w->run->l, status, message);
    }
}

static int latency_build(struct bench_slot *s, void *arg)
{
    struct watch_run *r = arg;
    r->sent_ns[s->seq] = moor_clock_ns();
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    bench_keygen_format(&r->kv.kg, s->seq, r->kv.key);
    req.key.data = r->kv.key;
    req.key.len = r->kv.kg.key_size;
    req.value.data = r->kv.val;
    req.value.len = r->kv.val_size;
    s->path = "/etcdserverpb.KV/Put";
    return bench__pack(&req.base, &s->req);
}

static int put_build(struct bench_slot *s, void *arg)
{
    struct watch_run *r = arg;
    return bench__put_build(s, &r->kv);
}

static int put_check(struct bench_slot *s, struct moor_slice resp, void *arg,
                     char *msg)
{
    struct watch_run *r = arg;
    return bench__put_check(s, resp, &r->kv, msg);
}

static bool all_created(void *arg)
{
    struct watch_run *r = arg;
    uint64_t want = (uint64_t)r->nstreams * r->l->o->watchers;
    return r->created >= want || r->open_streams < r->nstreams;
}

static bool all_delivered(void *arg)
{
    struct watch_run *r = arg;
    uint64_t want = r->l->ok * (uint64_t)r->nstreams * r->l->o->watchers;
    return bench__load_done(r->l) && r->events >= want;
}

static bool all_closed(void *arg)
{
    struct watch_run *r = arg;
    return r->open_streams == 0;
}

static int open_streams(struct watch_run *r)
{
    static const struct rpc_stream_ops ops = {ws_message, ws_writable, ws_done};
    struct bench_load *l = r->l;
    r->nstreams = l->o->streams;
    r->streams = moor_calloc(r->nstreams, sizeof(*r->streams));
    if (r->streams == NULL) {
        return MOOR_ENOMEM;
    }
    for (uint32_t i = 0; i < r->nstreams; i++) {
        struct wstream *w = &r->streams[i];
        w->run = r;
        int rv =
            rpc_stream_start(l->cls[i % l->ncls], "/etcdserverpb.Watch/Watch",
                             NULL, 0, 0, &ops, w, &w->s);
        if (rv != MOOR_OK) {
            fprintf(stderr, "moor-bench: cannot start a watch stream: %s\n",
                    moor_strerror(rv));
            w->done = true;
            return rv;
        }
        r->open_streams++;
        send_creates(w);
    }
    /* Creation is slow on some servers: wait while watchers keep being
     * created, until all are or none was for --timeout. */
    uint64_t seen;
    bool all;
    do {
        seen = r->created;
        all = bench__run_until(l, all_created, r, bench__timeout_ms(l->o));
    } while (!all && r->created > seen);
    if (!all || r->open_streams < r->nstreams) {
        fprintf(stderr,
                "moor-bench: %llu of %llu watchers created within --timeout "
                "(%s)\n",
                (unsigned long long)r->created,
                (unsigned long long)r->nstreams * l->o->watchers,
                l->first_error[0] ? l->first_error : "no error seen");
        return MOOR_ETIMEDOUT;
    }
    return MOOR_OK;
}

static void close_streams(struct watch_run *r)
{
    for (uint32_t i = 0; r->streams != NULL && i < r->nstreams; i++) {
        if (!r->streams[i].done) {
            rpc_stream_cancel(r->streams[i].s);
        }
    }
    bench__run_until(r->l, all_closed, r, 5000);
    moor_free(r->streams);
    r->streams = NULL;
}

static const struct bench_workload watch_workload = {"watch",
                                                     {NULL},
                                                     0,
                                                     put_build,
                                                     put_check};
static const struct bench_workload latency_workload = {"watch-latency",
                                                       {NULL},
                                                       0,
                                                       latency_build,
                                                       put_check};

static int watch_common_main(bool latency, int argc, char **argv)
{
    unsigned wl = latency ? BW_WATCH_LATENCY : BW_WATCH;
    const char *name = latency ? "watch-latency" : "watch";
    struct bench_opts o;
    bench__opts_defaults(&o, wl);
    int rv = bench__opts_parse(&o, wl, argc, argv);
    if (rv == MOOR_OK && o.help) {
        struct bench_opts d;
        bench__opts_defaults(&d, wl);
        bench__usage(
            stdout, name, wl, NULL,
            latency
                ? "Opens --streams watch streams with --watchers watchers "
                  "each\n"
                  "on one prefix, then puts --total distinct keys under it\n"
                  "(--rate per second): the latency reported is the delay\n"
                  "from a put's send to its event at each watcher."
                : "Opens --streams watch streams with --watchers watchers "
                  "each\n"
                  "on one prefix, then puts --total keys under it (at random\n"
                  "within --key-space-size): reports events/s delivered to "
                  "all\n"
                  "watchers, from the first put to the last event, and the\n"
                  "puts' latency.",
            &d);
        bench__opts_close(&o);
        return 0;
    }
    struct watch_run r;
    memset(&r, 0, sizeof(r));
    r.latency = latency;
    if (rv == MOOR_OK && (o.streams == 0 || o.watchers == 0)) {
        fprintf(stderr, "moor-bench %s: --streams and --watchers must be > 0\n",
                name);
        rv = MOOR_EINVAL;
    }
    if (rv == MOOR_OK && latency &&
        (o.total == 0 || o.total > WATCH_LATENCY_TOTAL_MAX)) {
        fprintf(stderr, "moor-bench watch-latency: --total must be 1 to %u\n",
                WATCH_LATENCY_TOTAL_MAX);
        rv = MOOR_EINVAL;
    }
    if (rv == MOOR_OK && latency) {
        o.key_space_size = o.total;
        o.sequential_keys = true;
    }
    if (rv == MOOR_OK) {
        rv = bench__kv_keys_init(&r.kv, &o, WATCH_PREFIX);
    }
    if (rv != MOOR_OK) {
        fprintf(stderr, "(moor-bench %s --help shows the flags)\n", name);
        bench__kv_keys_close(&r.kv);
        bench__opts_close(&o);
        return 2;
    }
    r.end_len = bench_prefix_end((const uint8_t *)WATCH_PREFIX,
                                 strlen(WATCH_PREFIX), r.end);
    struct bench_load *l = moor_malloc(sizeof(*l));
    int code = 1;
    if (l == NULL) {
        bench__kv_keys_close(&r.kv);
        bench__opts_close(&o);
        return 1;
    }
    r.l = l;
    rv = bench__load_open(l, &o);
    if (rv == MOOR_OK && latency) {
        r.sent_ns = moor_calloc(o.total, sizeof(*r.sent_ns));
        r.lat = moor_malloc(sizeof(*r.lat));
        rv = r.sent_ns != NULL && r.lat != NULL ? MOOR_OK : MOOR_ENOMEM;
        if (rv == MOOR_OK) {
            bench_hist_init(r.lat);
        }
    }
    if (rv == MOOR_OK) {
        rv = open_streams(&r);
    }
    if (rv == MOOR_OK) {
        l->extra_error_names[0] = "missing_events";
        bench__load_start(l, latency ? &latency_workload : &watch_workload, &r);
        while (!bench__load_done(l)) {
            bench__load_turn(l);
        }
        /* Events may trail the puts: wait while they keep coming, until
         * all arrived or none came for --timeout. */
        uint64_t seen;
        do {
            seen = r.events;
        } while (
            !bench__run_until(l, all_delivered, &r, bench__timeout_ms(&o)) &&
            r.events > seen);
        uint64_t want = l->ok * (uint64_t)r.nstreams * o.watchers;
        if (r.events < want) {
            l->extra_errors[0] = want - r.events;
            bench__load_note(l, "%llu events missing after --timeout",
                             (unsigned long long)(want - r.events));
        }
        double put_s = bench__load_elapsed(l);
        double ev_s = r.last_event_ns > l->start_ns
                          ? (double)(r.last_event_ns - l->start_ns) / 1e9
                          : 0.0;
        double eps = ev_s > 0 ? (double)r.events / ev_s : 0.0;
        struct moor_buf pj, pt, ej, et;
        moor_buf_init(&pj);
        moor_buf_init(&pt);
        moor_buf_init(&ej);
        moor_buf_init(&et);
        bench__kv_params(&o, &pj, &pt);
        moor_buf_printf(&pj, ",\"streams\":%u,\"watchers\":%u,\"prev_kv\":%s",
                        o.streams, o.watchers, o.prev_kv ? "true" : "false");
        moor_buf_printf(&pt, ", %u streams x %u watchers%s", o.streams,
                        o.watchers, o.prev_kv ? ", prev-kv" : "");
        moor_buf_printf(&ej,
                        "\"watchers_total\":%llu,\"events\":%llu,"
                        "\"events_expected\":%llu,\"events_elapsed_s\":%.6f,"
                        "\"events_per_s\":%.3f",
                        (unsigned long long)r.nstreams * o.watchers,
                        (unsigned long long)r.events, (unsigned long long)want,
                        ev_s, eps);
        moor_buf_printf(&et,
                        "Watch:\n  watchers      %llu\n  events        %llu "
                        "of %llu\n  events/sec    %.1f (first put to last "
                        "event: %.4f secs.)\n",
                        (unsigned long long)r.nstreams * o.watchers,
                        (unsigned long long)r.events, (unsigned long long)want,
                        eps, ev_s);
        if (latency) {
            moor_buf_printf(&ej, ",\"put_throughput\":%.3f,\"put_latency_ms\":",
                            put_s > 0 ? (double)l->hist->count / put_s : 0.0);
            bench__latency_json(&ej, l->hist);
            moor_buf_printf(&et,
                            "  puts          %llu, %.1f/s, p50 %.4f, p99 "
                            "%.4f secs.\n  (the summary above is put-to-event "
                            "delay per watcher)\n",
                            (unsigned long long)l->hist->count,
                            put_s > 0 ? (double)l->hist->count / put_s : 0.0,
                            (double)bench_hist_percentile(l->hist, 50) / 1e9,
                            (double)bench_hist_percentile(l->hist, 99) / 1e9);
        }
        moor_buf_putc(&pj, 0);
        moor_buf_putc(&pt, 0);
        moor_buf_putc(&ej, 0);
        moor_buf_putc(&et, 0);
        /* watch: throughput and latency are the puts'; watch-latency: the
         * events' delay, over the events' time. */
        bench__report(l, latency ? r.lat : l->hist, latency ? ev_s : put_s,
                      (char *)pj.ptr, (char *)pt.ptr, (char *)ej.ptr,
                      (char *)et.ptr);
        moor_buf_close(&pj);
        moor_buf_close(&pt);
        moor_buf_close(&ej);
        moor_buf_close(&et);
        code = bench__exit_code(l);
    }
    close_streams(&r);
    bench__load_close(l);
    moor_free(l);
    moor_free(r.sent_ns);
    moor_free(r.lat);
    bench__kv_keys_close(&r.kv);
    bench__opts_close(&o);
    return code;
}

int bench_watch_main(int argc, char **argv)
{
    return watch_common_main(false, argc, argv);
}

int bench_watch_latency_main(int argc, char **argv)
{
    return watch_common_main(true, argc, argv);
}
