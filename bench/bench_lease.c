/* bench_lease.c: `moor-bench lease-keepalive`: each client holds one lease
 * (granted before the clock starts, revoked after) and renews it over and
 * over, one LeaseKeepAlive stream per renewal with one request and one
 * answer, as etcd's benchmark does with KeepAliveOnce. */
#include "bench_int.h"

struct lease_run
{
    int64_t *ids; /* one lease per slot */
    uint32_t n;
};

static int lease_validate(struct bench_opts *o, void *arg)
{
    (void)arg;
    if (o->lease_ttl == 0 || o->lease_ttl > 9000000000ull) {
        fprintf(stderr, "moor-bench lease-keepalive: --ttl must be > 0\n");
        return MOOR_EINVAL;
    }
    return MOOR_OK;
}

static int lease_setup(struct bench_load *l, void *arg)
{
    struct lease_run *r = arg;
    r->ids = moor_calloc(l->nslots, sizeof(*r->ids));
    if (r->ids == NULL) {
        return MOOR_ENOMEM;
    }
    for (uint32_t i = 0; i < l->nslots; i++) {
        Etcdserverpb__LeaseGrantRequest req =
            ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
        req.ttl = (int64_t)l->o->lease_ttl;
        ProtobufCMessage *m = NULL;
        char msg[MOOR_ERRMSG_SIZE] = "";
        int rv = bench__call_sync(
            l, l->slots[i].cl, "/etcdserverpb.Lease/LeaseGrant", &req.base,
            &etcdserverpb__lease_grant_response__descriptor, &m, msg);
        if (rv != RPC_OK) {
            fprintf(stderr, "moor-bench lease-keepalive: %s\n", msg);
            return MOOR_EIO;
        }
        r->ids[i] = ((Etcdserverpb__LeaseGrantResponse *)m)->id;
        r->n = i + 1;
        bench__free(m);
        l->slots[i].user = &r->ids[i];
    }
    return MOOR_OK;
}

static int lease_build(struct bench_slot *s, void *arg)
{
    (void)arg;
    Etcdserverpb__LeaseKeepAliveRequest req =
        ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    req.id = *(int64_t *)s->user;
    s->path = "/etcdserverpb.Lease/LeaseKeepAlive";
    return bench__pack(&req.base, &s->req);
}

static int lease_check(struct bench_slot *s, struct moor_slice resp, void *arg,
                       char *msg)
{
    (void)arg;
    Etcdserverpb__LeaseKeepAliveResponse *r =
        (Etcdserverpb__LeaseKeepAliveResponse *)bench__unpack(
            &etcdserverpb__lease_keep_alive_response__descriptor, resp);
    int rv = MOOR_OK;
    if (r == NULL || r->id != *(int64_t *)s->user || r->ttl <= 0) {
        moor_errmsg_set(msg, "keep-alive answer without the lease's TTL");
        rv = MOOR_EPROTO;
    }
    bench__free(r);
    return rv;
}

static void lease_teardown(struct bench_load *l, void *arg)
{
    struct lease_run *r = arg;
    for (uint32_t i = 0; i < r->n; i++) {
        Etcdserverpb__LeaseRevokeRequest req =
            ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
        req.id = r->ids[i];
        char msg[MOOR_ERRMSG_SIZE];
        bench__call_sync(l, l->slots[i].cl, "/etcdserverpb.Lease/LeaseRevoke",
                         &req.base, NULL, NULL, msg);
    }
    moor_free(r->ids);
    r->ids = NULL;
}

static void lease_params(const struct bench_opts *o, struct moor_buf *json,
                         struct moor_buf *text)
{
    moor_buf_printf(json, "\"ttl\":%llu", (unsigned long long)o->lease_ttl);
    moor_buf_printf(text, "one lease per client, ttl %llu s",
                    (unsigned long long)o->lease_ttl);
}

static const struct bench_workload lease_workload = {"lease-keepalive",
                                                     {NULL},
                                                     0,
                                                     lease_build,
                                                     lease_check};

int bench_lease_keepalive_main(int argc, char **argv)
{
    static const struct bench_unary_main m = {
        "lease-keepalive",
        BW_LEASE,
        NULL,
        "Each client grants one lease of --ttl seconds before the run and\n"
        "renews it in a loop: one LeaseKeepAlive stream per renewal, one\n"
        "request, one answer (etcd benchmark's KeepAliveOnce). The leases\n"
        "are revoked after the run.",
        &lease_workload,
        lease_validate,
        lease_setup,
        lease_params,
        NULL,
        lease_teardown};
    struct lease_run r = {NULL, 0};
    return bench__unary_main(&m, &r, argc, argv);
}
