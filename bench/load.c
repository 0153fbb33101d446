/* load.c: the client workloads' driver: connections, --clients requests in
 * flight on one loop, the rate limiter, --total and --duration, latency
 * histograms and errors by status; and the report (text and JSON). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "bench_int.h"

#define RECV_MAX ((size_t)INT32_MAX)

int bench__pack(const ProtobufCMessage *msg, struct moor_buf *buf)
{
    return moor_pb_pack(msg, buf);
}

ProtobufCMessage *bench__unpack(const ProtobufCMessageDescriptor *desc,
                                struct moor_slice resp)
{
    ProtobufCMessage *m = NULL;
    if (moor_pb_unpack(desc, resp.ptr, resp.len, RECV_MAX, &m) != MOOR_OK) {
        return NULL;
    }
    return m;
}

void bench__free(void *msg)
{
    if (msg != NULL) {
        protobuf_c_message_free_unpacked(msg, &moor_pb_allocator);
    }
}

void bench__load_note(struct bench_load *l, const char *fmt, ...)
{
    if (l->first_error[0] != 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->first_error, sizeof(l->first_error), fmt, ap);
    va_end(ap);
}

void bench__load_count_status(struct bench_load *l, int status,
                              const char *message)
{
    if (status < 0 || status >= RPC_STATUS_COUNT) {
        status = RPC_UNKNOWN;
    }
    l->errors[status]++;
    bench__load_note(
        l, "%s: %s", rpc_status_name(status),
        message != NULL && message[0] != 0 ? message : "(no message)");
}

uint64_t bench__timeout_ms(const struct bench_opts *o)
{
    return (uint64_t)(o->timeout_s * 1000.0);
}

int bench__call_sync(struct bench_load *l, struct rpc_client *cl,
                     const char *path, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *rdesc,
                     ProtobufCMessage **resp, char *errmsg)
{
    struct moor_buf reqb;
    struct moor_buf respb;
    moor_buf_init(&reqb);
    moor_buf_init(&respb);
    if (resp != NULL) {
        *resp = NULL;
    }
    int rv = bench__pack(req, &reqb);
    if (rv == MOOR_OK) {
        char msg[MOOR_ERRMSG_SIZE] = "";
        rv = rpc_client_unary_sync(cl, path, NULL, 0,
                                   moor_slice_make(reqb.ptr, reqb.len),
                                   bench__timeout_ms(l->o), &respb, msg);
        if (rv > 0) {
            moor_errmsg_set(errmsg, "%s: %s %s", path, rpc_status_name(rv),
                            msg);
        }
    }
    if (rv < 0) {
        moor_errmsg_set(errmsg, "%s: %s", path, moor_strerror(rv));
    }
    if (rv == RPC_OK && resp != NULL) {
        *resp = bench__unpack(rdesc, moor_slice_make(respb.ptr, respb.len));
        if (*resp == NULL) {
            moor_errmsg_set(errmsg, "%s: cannot decode the answer", path);
            rv = MOOR_EPROTO;
        }
    }
    moor_buf_close(&reqb);
    moor_buf_close(&respb);
    return rv;
}

int bench__load_open(struct bench_load *l, const struct bench_opts *o)
{
    memset(l, 0, sizeof(*l));
    l->o = o;
    l->deadline_ns = UINT64_MAX;
    if (uv_loop_init(&l->loop) != 0) {
        fprintf(stderr, "moor-bench: cannot start the event loop\n");
        return MOOR_EIO;
    }
    l->loop_open = true;
    l->hist = moor_malloc(sizeof(*l->hist));
    l->slots = moor_calloc(o->clients, sizeof(*l->slots));
    if (l->hist == NULL || l->slots == NULL) {
        return MOOR_ENOMEM;
    }
    bench_hist_init(l->hist);
    l->nslots = o->clients;
    for (uint32_t i = 0; i < l->nslots; i++) {
        l->slots[i].load = l;
        l->slots[i].index = i;
        moor_buf_init(&l->slots[i].req);
    }
    l->tls.ca_file = o->cacert;
    l->tls.cert_file = o->cert;
    l->tls.key_file = o->key;
    l->tls.insecure_skip_verify = o->insecure_skip_verify;
    bool use_tls =
        o->cacert != NULL || o->cert != NULL || o->insecure_skip_verify;
    const char *eps[BENCH_ENDPOINTS_MAX];
    for (uint32_t c = 0; c < o->conns; c++) {
        for (size_t k = 0; k < o->endpoints_len; k++) {
            eps[k] = o->endpoints[(k + c) % o->endpoints_len];
        }
        struct rpc_client_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.endpoints = eps;
        cfg.endpoints_len = o->endpoints_len;
        cfg.tls = use_tls ? &l->tls : NULL;
        cfg.max_recv_msg_bytes = RECV_MAX;
        cfg.pending_calls_max = BENCH_CLIENTS_MAX;
        char msg[MOOR_ERRMSG_SIZE] = "";
        int rv = rpc_client_open(&l->loop, &cfg, &l->cls[c], msg);
        if (rv != MOOR_OK) {
            fprintf(stderr, "moor-bench: cannot open a client to %s: %s\n",
                    o->endpoints_arg, msg[0] ? msg : moor_strerror(rv));
            return rv;
        }
        l->ncls++;
        /* Connect before the clock starts. */
        Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
        req.key.data = (uint8_t *)(uintptr_t) "moor-bench/connect";
        req.key.len = strlen("moor-bench/connect");
        req.serializable = true;
        rv = bench__call_sync(l, l->cls[c], "/etcdserverpb.KV/Range", &req.base,
                              NULL, NULL, msg);
        if (rv != RPC_OK) {
            fprintf(stderr, "moor-bench: cannot reach %s: %s\n",
                    o->endpoints_arg, msg);
            return rv < 0 ? rv : MOOR_ECONN;
        }
    }
    for (uint32_t i = 0; i < l->nslots; i++) {
        l->slots[i].cl = l->cls[i % l->ncls];
    }
    if (uv_timer_init(&l->loop, &l->rate_timer) != 0) {
        return MOOR_EIO;
    }
    l->rate_timer.data = l;
    l->rate_timer_open = true;
    return MOOR_OK;
}

static void slot_next(struct bench_slot *s);

static void slot_finish(struct bench_slot *s)
{
    struct bench_load *l = s->load;
    if (!s->finished) {
        s->finished = true;
        l->active--;
        if (l->active == 0) {
            l->end_ns = moor_clock_ns();
        }
    }
}

static void unary_done(int status, const char *message, struct moor_slice resp,
                       void *arg)
{
    struct bench_slot *s = arg;
    struct bench_load *l = s->load;
    uint64_t now = moor_clock_ns();
    if (status != RPC_OK) {
        bench__load_count_status(l, status, message);
    } else {
        char msg[MOOR_ERRMSG_SIZE] = "";
        int rv =
            l->w->check != NULL ? l->w->check(s, resp, l->arg, msg) : MOOR_OK;
        if (rv != MOOR_OK) {
            l->bad_responses++;
            bench__load_note(l, "bad response to %s: %s", s->path,
                             msg[0] ? msg : moor_strerror(rv));
        } else {
            uint64_t ns = now - s->start_ns;
            l->ok++;
            bench_hist_record(l->hist, ns);
            if (s->kind < BENCH_KINDS_MAX && l->kind_hist[s->kind] != NULL) {
                bench_hist_record(l->kind_hist[s->kind], ns);
                l->kind_ok[s->kind]++;
            }
        }
    }
    slot_next(s);
}

static void wait_push(struct bench_load *l, struct bench_slot *s)
{
    s->waiting = true;
    s->wait_next = NULL;
    if (l->wait_tail != NULL) {
        l->wait_tail->wait_next = s;
    } else {
        l->wait_head = s;
    }
    l->wait_tail = s;
}

static void issue(struct bench_slot *s)
{
    struct bench_load *l = s->load;
    moor_buf_reset(&s->req);
    s->kind = 0;
    s->seq = l->issued++;
    s->start_ns = moor_clock_ns();
    int rv = l->w->build(s, l->arg);
    if (rv == MOOR_ENOENT) {
        l->issued--;
        slot_finish(s);
        return;
    }
    if (rv == MOOR_OK) {
        rv = rpc_client_unary(s->cl, s->path, NULL, 0,
                              moor_slice_make(s->req.ptr, s->req.len),
                              bench__timeout_ms(l->o), unary_done, s);
    }
    if (rv != MOOR_OK) {
        l->setup_failures++;
        bench__load_note(l, "cannot issue a request: %s", moor_strerror(rv));
        slot_finish(s);
    }
}

static void rate_timer_cb(uv_timer_t *t)
{
    struct bench_load *l = t->data;
    while (l->wait_head != NULL) {
        struct bench_slot *s = l->wait_head;
        if (moor_clock_ns() >= l->deadline_ns ||
            (l->o->total > 0 && l->issued >= l->o->total)) {
            l->wait_head = s->wait_next;
            s->waiting = false;
            slot_finish(s);
            continue;
        }
        uint64_t wait = bench_rate_take(&l->rate, moor_clock_ns());
        if (wait > 0) {
            uv_timer_start(&l->rate_timer, rate_timer_cb,
                           MOOR_MAX(wait / 1000000, (uint64_t)1), 0);
            return;
        }
        l->wait_head = s->wait_next;
        s->waiting = false;
        issue(s);
    }
    l->wait_tail = NULL;
}

static void slot_next(struct bench_slot *s)
{
    struct bench_load *l = s->load;
    const struct bench_opts *o = l->o;
    uint64_t now = moor_clock_ns();
    if ((o->total > 0 && l->issued >= o->total) || now >= l->deadline_ns) {
        slot_finish(s);
        return;
    }
    if (l->wait_head != NULL) {
        wait_push(l, s); /* behind the ones already waiting */
        return;
    }
    uint64_t wait = bench_rate_take(&l->rate, now);
    if (wait == 0) {
        issue(s);
        return;
    }
    wait_push(l, s);
    uv_timer_start(&l->rate_timer, rate_timer_cb,
                   MOOR_MAX(wait / 1000000, (uint64_t)1), 0);
}

void bench__load_start(struct bench_load *l, const struct bench_workload *w,
                       void *arg)
{
    l->w = w;
    l->arg = arg;
    for (unsigned k = 0; k < w->kinds_len && k < BENCH_KINDS_MAX; k++) {
        if (l->kind_hist[k] == NULL) {
            l->kind_hist[k] = moor_malloc(sizeof(*l->kind_hist[k]));
        }
        if (l->kind_hist[k] != NULL) {
            bench_hist_init(l->kind_hist[k]);
        }
    }
    l->start_ns = moor_clock_ns();
    if (l->o->duration_s > 0) {
        l->deadline_ns = l->start_ns + (uint64_t)(l->o->duration_s * 1e9);
    }
    bench_rate_init(&l->rate, l->o->rate, l->start_ns);
    l->active = l->nslots;
    for (uint32_t i = 0; i < l->nslots; i++) {
        l->slots[i].finished = false;
        slot_next(&l->slots[i]);
    }
}

bool bench__load_done(const struct bench_load *l)
{
    return l->active == 0;
}

void bench__load_turn(struct bench_load *l)
{
    uv_run(&l->loop, UV_RUN_ONCE);
}

void bench__load_run(struct bench_load *l, const struct bench_workload *w,
                     void *arg)
{
    bench__load_start(l, w, arg);
    while (!bench__load_done(l)) {
        bench__load_turn(l);
    }
}

static void tick_cb(uv_timer_t *t)
{
    (void)t; /* only wakes the loop so a deadline is seen */
}

bool bench__run_until(struct bench_load *l, bool (*cond)(void *arg), void *arg,
                      uint64_t timeout_ms)
{
    uint64_t deadline = moor_clock_ns() + timeout_ms * 1000000;
    uv_timer_t t;
    uv_timer_init(&l->loop, &t);
    uv_timer_start(&t, tick_cb, 20, 20);
    bool ok;
    while (!(ok = cond(arg)) && moor_clock_ns() < deadline) {
        uv_run(&l->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&l->loop, UV_RUN_NOWAIT); /* the close callback */
    return ok;
}

double bench__load_elapsed(const struct bench_load *l)
{
    uint64_t end = l->end_ns != 0 ? l->end_ns : moor_clock_ns();
    return l->start_ns != 0 && end > l->start_ns
               ? (double)(end - l->start_ns) / 1e9
               : 0.0;
}

static void closed_cb(void *arg)
{
    (*(uint32_t *)arg)++;
}

void bench__load_close(struct bench_load *l)
{
    if (l->loop_open) {
        uint32_t closed = 0;
        for (uint32_t c = 0; c < l->ncls; c++) {
            rpc_client_close(l->cls[c], closed_cb, &closed);
        }
        if (l->rate_timer_open) {
            uv_close((uv_handle_t *)&l->rate_timer, NULL);
        }
        /* Bounded: closing clients end their calls and close their handles
         * within a few turns; a loop with nothing left stops by itself. */
        for (int i = 0; i < 100000 && closed < l->ncls; i++) {
            if (uv_run(&l->loop, UV_RUN_ONCE) == 0) {
                break;
            }
        }
        uv_run(&l->loop, UV_RUN_DEFAULT);
        uv_loop_close(&l->loop);
        l->loop_open = false;
    }
    for (uint32_t i = 0; l->slots != NULL && i < l->nslots; i++) {
        moor_buf_close(&l->slots[i].req);
    }
    moor_free(l->slots);
    moor_free(l->hist);
    for (unsigned k = 0; k < BENCH_KINDS_MAX; k++) {
        moor_free(l->kind_hist[k]);
    }
    l->slots = NULL;
    l->hist = NULL;
}

/* ------------------------------------------------------------------------
 * Report
 * ---------------------------------------------------------------------- */
int bench__json_str(struct moor_buf *out, const char *s)
{
    int rv = moor_buf_putc(out, '"');
    for (; rv == MOOR_OK && *s != 0; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            rv = moor_buf_printf(out, "\\%c", c);
        } else if (c < 0x20) {
            rv = moor_buf_printf(out, "\\u%04x", c);
        } else {
            rv = moor_buf_putc(out, c);
        }
    }
    return rv == MOOR_OK ? moor_buf_putc(out, '"') : rv;
}

int bench__latency_json(struct moor_buf *out, const struct bench_hist *h)
{
    double ms = 1e6;
    return moor_buf_printf(
        out,
        "{\"min\":%.4f,\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,"
        "\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f}",
        h->count ? (double)h->min / ms : 0.0, bench_hist_mean(h) / ms,
        (double)bench_hist_percentile(h, 50) / ms,
        (double)bench_hist_percentile(h, 90) / ms,
        (double)bench_hist_percentile(h, 99) / ms,
        (double)bench_hist_percentile(h, 99.9) / ms, (double)h->max / ms);
}

static uint64_t errors_total(const struct bench_load *l)
{
    uint64_t n = l->bad_responses + l->setup_failures;
    for (int i = 0; i < RPC_STATUS_COUNT; i++) {
        n += l->errors[i];
    }
    for (size_t i = 0; i < MOOR_ARRAY_LEN(l->extra_errors); i++) {
        n += l->extra_errors[i];
    }
    return n;
}

/* Visits every nonzero error count as (name, n). */
static void each_error(const struct bench_load *l,
                       void (*fn)(const char *name, uint64_t n, void *arg),
                       void *arg)
{
    for (int i = 0; i < RPC_STATUS_COUNT; i++) {
        if (l->errors[i] > 0) {
            fn(rpc_status_name(i), l->errors[i], arg);
        }
    }
    if (l->bad_responses > 0) {
        fn("bad_response", l->bad_responses, arg);
    }
    if (l->setup_failures > 0) {
        fn("not_issued", l->setup_failures, arg);
    }
    for (size_t i = 0; i < MOOR_ARRAY_LEN(l->extra_errors); i++) {
        if (l->extra_errors[i] > 0 && l->extra_error_names[i] != NULL) {
            fn(l->extra_error_names[i], l->extra_errors[i], arg);
        }
    }
}

struct err_json
{
    struct moor_buf *out;
    bool first;
};

static void error_json(const char *name, uint64_t n, void *arg)
{
    struct err_json *e = arg;
    moor_buf_printf(e->out, "%s\"%s\":%llu", e->first ? "" : ",", name,
                    (unsigned long long)n);
    e->first = false;
}

static void error_text(const char *name, uint64_t n, void *arg)
{
    (void)arg;
    printf("  %-24s %llu\n", name, (unsigned long long)n);
}

void bench__report(const struct bench_load *l, const struct bench_hist *hist,
                   double elapsed_s, const char *params_json,
                   const char *params_text, const char *extra_json,
                   const char *extra_text)
{
    const struct bench_opts *o = l->o;
    const char *name = l->w != NULL ? l->w->name : "?";
    double tput = elapsed_s > 0 ? (double)hist->count / elapsed_s : 0.0;
    if (o->json) {
        struct moor_buf j;
        moor_buf_init(&j);
        moor_buf_printf(&j, "{\"workload\":");
        bench__json_str(&j, name);
        moor_buf_printf(&j, ",\"endpoints\":");
        bench__json_str(&j, o->endpoints_arg);
        moor_buf_printf(&j,
                        ",\"conns\":%u,\"clients\":%u,\"total\":%llu,"
                        "\"duration_s\":%g,\"rate\":%g,\"params\":{%s},"
                        "\"requests\":%llu,\"elapsed_s\":%.6f,"
                        "\"throughput\":%.3f,\"latency_ms\":",
                        o->conns, o->clients, (unsigned long long)o->total,
                        o->duration_s, o->rate,
                        params_json != NULL ? params_json : "",
                        (unsigned long long)hist->count, elapsed_s, tput);
        bench__latency_json(&j, hist);
        moor_buf_printf(&j, ",\"kinds\":{");
        for (unsigned k = 0; l->w != NULL && k < l->w->kinds_len; k++) {
            const struct bench_hist *kh = l->kind_hist[k];
            if (kh == NULL) {
                continue;
            }
            moor_buf_printf(&j, "%s", k > 0 ? "," : "");
            bench__json_str(&j, l->w->kinds[k]);
            moor_buf_printf(
                &j, ":{\"requests\":%llu,\"throughput\":%.3f,\"latency_ms\":",
                (unsigned long long)kh->count,
                elapsed_s > 0 ? (double)kh->count / elapsed_s : 0.0);
            bench__latency_json(&j, kh);
            moor_buf_putc(&j, '}');
        }
        moor_buf_printf(&j, "},\"errors\":{");
        struct err_json e = {&j, true};
        each_error(l, error_json, &e);
        moor_buf_printf(&j, "},\"errors_total\":%llu",
                        (unsigned long long)errors_total(l));
        if (l->first_error[0] != 0) {
            moor_buf_printf(&j, ",\"first_error\":");
            bench__json_str(&j, l->first_error);
        }
        if (extra_json != NULL && extra_json[0] != 0) {
            moor_buf_printf(&j, ",%s", extra_json);
        }
        moor_buf_printf(&j, "}\n");
        fwrite(j.ptr, 1, j.len, stdout);
        moor_buf_close(&j);
        fflush(stdout);
        return;
    }
    printf("%s: %s, %u conns, %u clients", name, o->endpoints_arg, o->conns,
           o->clients);
    if (o->total > 0) {
        printf(", total %llu", (unsigned long long)o->total);
    }
    if (o->duration_s > 0) {
        printf(", duration %g s", o->duration_s);
    }
    if (o->rate > 0) {
        printf(", rate %g/s", o->rate);
    }
    printf("%s%s\n", params_text != NULL && params_text[0] ? ", " : "",
           params_text != NULL ? params_text : "");
    bench_hist_print(stdout, hist, elapsed_s);
    if (l->w != NULL && l->w->kinds_len > 0) {
        printf("\nBy kind:\n");
        for (unsigned k = 0; k < l->w->kinds_len; k++) {
            const struct bench_hist *kh = l->kind_hist[k];
            if (kh == NULL) {
                continue;
            }
            printf(
                "  %-12s %8llu requests %10.1f/s  p50 %.4f  p99 %.4f  "
                "max %.4f secs.\n",
                l->w->kinds[k], (unsigned long long)kh->count,
                elapsed_s > 0 ? (double)kh->count / elapsed_s : 0.0,
                (double)bench_hist_percentile(kh, 50) / 1e9,
                (double)bench_hist_percentile(kh, 99) / 1e9,
                (double)kh->max / 1e9);
        }
    }
    if (extra_text != NULL && extra_text[0] != 0) {
        printf("\n%s", extra_text);
    }
    uint64_t errs = errors_total(l);
    printf("\nErrors: %llu\n", (unsigned long long)errs);
    each_error(l, error_text, NULL);
    if (l->first_error[0] != 0) {
        printf("  first: %s\n", l->first_error);
    }
    fflush(stdout);
}

int bench__exit_code(const struct bench_load *l)
{
    return l->ok > 0 || errors_total(l) == 0 ? 0 : 1;
}

int bench__unary_main(const struct bench_unary_main *m, void *arg, int argc,
                      char **argv)
{
    struct bench_opts o;
    bench__opts_defaults(&o, m->workload);
    int rv = bench__opts_parse(&o, m->workload, argc, argv);
    if (rv == MOOR_OK && o.help) {
        struct bench_opts d;
        bench__opts_defaults(&d, m->workload);
        bench__usage(stdout, m->name, m->workload, m->synopsis, m->description,
                     &d);
        bench__opts_close(&o);
        return 0;
    }
    if (rv == MOOR_OK && m->validate != NULL) {
        rv = m->validate(&o, arg);
    }
    if (rv != MOOR_OK) {
        fprintf(stderr, "(moor-bench %s --help shows the flags)\n", m->name);
        bench__opts_close(&o);
        return 2;
    }
    struct bench_load *l = moor_malloc(sizeof(*l));
    int code = 1;
    if (l == NULL) {
        fprintf(stderr, "moor-bench %s: out of memory\n", m->name);
        bench__opts_close(&o);
        return 1;
    }
    rv = bench__load_open(l, &o);
    if (rv == MOOR_OK && m->setup != NULL) {
        rv = m->setup(l, arg);
    }
    if (rv == MOOR_OK) {
        bench__load_run(l, m->w, arg);
        struct moor_buf pj;
        struct moor_buf pt;
        moor_buf_init(&pj);
        moor_buf_init(&pt);
        if (m->params != NULL) {
            m->params(&o, &pj, &pt);
        }
        struct moor_buf ej;
        struct moor_buf et;
        moor_buf_init(&ej);
        moor_buf_init(&et);
        if (m->extra != NULL) {
            m->extra(l, arg, &ej, &et);
        }
        moor_buf_putc(&pj, 0);
        moor_buf_putc(&pt, 0);
        moor_buf_putc(&ej, 0);
        moor_buf_putc(&et, 0);
        bench__report(l, l->hist, bench__load_elapsed(l), (char *)pj.ptr,
                      (char *)pt.ptr, (char *)ej.ptr, (char *)et.ptr);
        moor_buf_close(&pj);
        moor_buf_close(&pt);
        moor_buf_close(&ej);
        moor_buf_close(&et);
        code = bench__exit_code(l);
    }
    if (m->teardown != NULL) {
        m->teardown(l, arg);
    }
    bench__load_close(l);
    moor_free(l);
    bench__opts_close(&o);
    return code;
}
