/* bench_consensus.c: `moor-bench consensus`: put's load, with the server's
 * /metrics read before and after, so the report says where a write's time
 * went: moord's per-stage histograms (proposed -> durable -> committed ->
 * applied -> answered), and etcd's WAL fsync and backend commit
 * histograms where the server has them. */
#include <math.h>

#include "bench_int.h"

struct consensus_run
{
    struct bench_kv_state kv;
    char url[512];
    struct moor_buf before;
    struct moor_buf after;
};

static int consensus_validate(struct bench_opts *o, void *arg)
{
    struct consensus_run *r = arg;
    if (o->metrics_url != NULL) {
        snprintf(r->url, sizeof(r->url), "%s", o->metrics_url);
    } else {
        const char *ep = o->endpoints[0];
        if (strncmp(ep, "https://", 8) == 0 ||
            (strncmp(ep, "http://", 7) != 0 &&
             (o->cacert != NULL || o->cert != NULL))) {
            fprintf(stderr,
                    "moor-bench consensus: the endpoint uses TLS; "
                    "give a plain --metrics-url\n");
            return MOOR_EINVAL;
        }
        if (strncmp(ep, "http://", 7) == 0) {
            ep += 7;
        }
        size_t n = strlen(ep);
        while (n > 0 && ep[n - 1] == '/') {
            n--;
        }
        snprintf(r->url, sizeof(r->url), "http://%.*s/metrics", (int)n, ep);
    }
    return bench__kv_keys_init(&r->kv, o, "");
}

static int scrape(struct consensus_run *r, struct bench_load *l,
                  struct moor_buf *into)
{
    char msg[MOOR_ERRMSG_SIZE] = "";
    moor_buf_reset(into);
    int rv = bench_http_get(r->url, bench__timeout_ms(l->o), into, msg);
    if (rv != MOOR_OK) {
        fprintf(stderr, "moor-bench consensus: %s\n",
                msg[0] ? msg : moor_strerror(rv));
    }
    return rv;
}

static int consensus_setup(struct bench_load *l, void *arg)
{
    struct consensus_run *r = arg;
    return scrape(r, l, &r->before);
}

static int cons_build(struct bench_slot *s, void *arg)
{
    struct consensus_run *r = arg;
    return bench__put_build(s, &r->kv);
}

static int cons_check(struct bench_slot *s, struct moor_slice resp, void *arg,
                      char *msg)
{
    struct consensus_run *r = arg;
    return bench__put_check(s, resp, &r->kv, msg);
}

static void summary_out(struct moor_buf *json, struct moor_buf *text,
                        const char *name, const struct bench_prom_summary *s,
                        double share, bool with_share, bool first)
{
    /* JSON has no NaN: an empty histogram's figures are null. */
    char mean[32], p50[32], p99[32];
    snprintf(mean, sizeof(mean), isnan(s->mean) ? "null" : "%.4f",
             s->mean * 1e3);
    snprintf(p50, sizeof(p50), isnan(s->p50) ? "null" : "%.4f", s->p50 * 1e3);
    snprintf(p99, sizeof(p99), isnan(s->p99) ? "null" : "%.4f", s->p99 * 1e3);
    moor_buf_printf(json,
                    "%s\"%s\":{\"count\":%.0f,\"sum_s\":%.6f,\"mean_ms\":%s,"
                    "\"p50_ms\":%s,\"p99_ms\":%s",
                    first ? "" : ",", name, s->count, s->sum, mean, p50, p99);
    if (with_share) {
        moor_buf_printf(json, ",\"share\":%.4f", share);
    }
    moor_buf_putc(json, '}');
    moor_buf_printf(text, "  %-40s %9.0f %10s %10s %10s", name, s->count, mean,
                    p50, p99);
    if (with_share) {
        moor_buf_printf(text, " %6.1f%%", share * 100);
    }
    moor_buf_putc(text, '\n');
}

static void consensus_extra(struct bench_load *l, void *arg,
                            struct moor_buf *json, struct moor_buf *text)
{
    struct consensus_run *r = arg;
    moor_buf_printf(json, "\"metrics_url\":");
    bench__json_str(json, r->url);
    if (scrape(r, l, &r->after) != MOOR_OK) {
        moor_buf_printf(json, ",\"stages\":null,\"disk\":null");
        moor_buf_printf(text,
                        "Per-stage latency: unavailable (the second "
                        "read of /metrics failed)\n");
        return;
    }
    const char *b = (const char *)r->before.ptr;
    const char *a = (const char *)r->after.ptr;
    struct bench_prom_summary st[BENCH_STAGES];
    double share[BENCH_STAGES];
    int rv =
        bench_consensus_stages(b, r->before.len, a, r->after.len, st, share);
    moor_buf_printf(text,
                    "Per-stage latency during the run (server-side, "
                    "from %s; ms):\n  %-40s %9s %10s %10s %10s %7s\n",
                    r->url, "stage", "count", "mean", "p50", "p99", "share");
    if (rv == MOOR_OK) {
        moor_buf_printf(json, ",\"stages\":{");
        for (size_t i = 0; i < BENCH_STAGES; i++) {
            summary_out(json, text, bench_stage_names[i], &st[i], share[i],
                        true, i == 0);
        }
        moor_buf_putc(json, '}');
    } else {
        moor_buf_printf(json, ",\"stages\":null,\"stages_unavailable\":");
        bench__json_str(json, rv == MOOR_ENOENT
                                  ? "no moor_server_stage_duration_seconds"
                                  : moor_strerror(rv));
        moor_buf_printf(
            text, "  unavailable: %s\n",
            rv == MOOR_ENOENT
                ? "the server exposes no moor_server_stage_duration_seconds "
                  "histograms (not moord, or an older one)"
                : moor_strerror(rv));
    }
    static const char *const disk[] = {
        "etcd_disk_wal_fsync_duration_seconds",
        "etcd_disk_backend_commit_duration_seconds"};
    moor_buf_printf(json, ",\"disk\":{");
    moor_buf_printf(text, "Disk histograms during the run (ms):\n");
    bool first = true;
    for (size_t i = 0; i < MOOR_ARRAY_LEN(disk); i++) {
        struct bench_prom_summary s;
        if (bench_prom_summary(b, r->before.len, a, r->after.len, disk[i], NULL,
                               &s) == MOOR_OK) {
            summary_out(json, text, disk[i], &s, 0, false, first);
            first = false;
        } else {
            moor_buf_printf(text, "  %-40s (not exposed)\n", disk[i]);
        }
    }
    moor_buf_putc(json, '}');
}

static void consensus_teardown(struct bench_load *l, void *arg)
{
    (void)l;
    struct consensus_run *r = arg;
    bench__kv_keys_close(&r->kv);
}

static const struct bench_workload consensus_workload = {"consensus",
                                                         {NULL},
                                                         0,
                                                         cons_build,
                                                         cons_check};

int bench_consensus_main(int argc, char **argv)
{
    static const struct bench_unary_main m = {
        "consensus",
        BW_CONSENSUS,
        NULL,
        "put's load (same flags), with the server's /metrics read before and\n"
        "after (plain HTTP, loopback only; --metrics-url or the first\n"
        "endpoint's /metrics): prints per stage (proposed -> durable ->\n"
        "committed -> applied -> answered) count, mean, p50, p99 and share\n"
        "of the run's stage time from moord's\n"
        "moor_server_stage_duration_seconds histograms, and the WAL fsync\n"
        "and backend commit histograms where the server has them (etcd).",
        &consensus_workload,
        consensus_validate,
        consensus_setup,
        bench__kv_params,
        consensus_extra,
        consensus_teardown};
    struct consensus_run r;
    memset(&r, 0, sizeof(r));
    moor_buf_init(&r.before);
    moor_buf_init(&r.after);
    int code = bench__unary_main(&m, &r, argc, argv);
    moor_buf_close(&r.before);
    moor_buf_close(&r.after);
    bench__kv_keys_close(&r.kv);
    return code;
}
