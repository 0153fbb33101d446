/* bench_k8s.c: `moor-bench k8s`: the access pattern of a Kubernetes API
 * server against its etcd.
 *
 * Objects live at <root>/<resource>/ns-<n>/obj-<i> (bench_k8s_key, root
 * K8S_ROOT); client slot c owns the objects i with i % clients == c and
 * remembers each one's mod_revision, so its compare-and-swaps succeed
 * unless something else wrote (a failed compare counts as a bad
 * response). Each request is one of:
 *   list    with probability --list-ratio: a paginated list of every pod
 *           (limit --page-size, continuing after the last key, later pages
 *           at the first page's revision), one request per page;
 *   create  an absent object: Txn(create_revision == 0) put, else get;
 *           objects whose resource is "events" are put with the lease;
 *   delete  a present object, one time in five: Txn(mod_revision == X)
 *           delete, else get;
 *   update  a present object otherwise: Txn(mod_revision == X) put, else
 *           get.
 * Beside them --watchers watch streams watch the root prefix with
 * progress_notify and prev_kv (every event must arrive, deletes and
 * updates with their prev_kv), and one LeaseKeepAlive stream keeps the
 * events' lease (--ttl) alive, renewing every ttl/3. Before the run the
 * root prefix is deleted; after it, the lease is revoked and the prefix
 * deleted again.
 */
#include "bench_int.h"

#define K8S_ROOT "/moor-bench/registry"
#define K8S_OBJECTS_MAX 10000000u

enum { K_CREATE, K_UPDATE, K_DELETE, K_LIST };

struct k8s_slot
{
    struct moor_prng prng;
    struct bench_k8s_list list;
    bool listing;
    uint64_t obj;
};

struct k8s_watch
{
    struct k8s_run *run;
    struct rpc_stream *s;
    bool done;
};

struct k8s_run
{
    struct bench_load *l;
    int64_t *modrev; /* by object; 0: absent */
    uint64_t nobj;
    uint8_t *val;
    struct k8s_slot *slots;
    int64_t lease;
    struct k8s_watch *w;
    uint32_t nw;
    uint32_t open_streams;
    uint64_t created;
    uint64_t events;
    uint64_t progress;
    uint64_t writes_ok;
    uint64_t lists_done;
    uint64_t list_items;
    struct rpc_stream *ka;
    bool ka_done;
    uv_timer_t ka_timer;
    bool ka_timer_open;
    uint64_t keepalives;
};

/* ------------------------------------------------------------------------
 * Requests
 * ---------------------------------------------------------------------- */
static int txn_build(struct k8s_run *r, struct bench_slot *s, uint64_t obj,
                     unsigned kind)
{
    char key[BENCH_K8S_KEY_MAX + 1];
    size_t klen = bench_k8s_key(key, K8S_ROOT, obj, r->l->o->namespaces);
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    Etcdserverpb__Compare *cmpp = &cmp;
    cmp.key.data = (uint8_t *)key;
    cmp.key.len = klen;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    if (kind == K_CREATE) {
        cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
        cmp.target_union_case =
            ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
        cmp.create_revision = 0;
    } else {
        cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
        cmp.target_union_case =
            ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
        cmp.mod_revision = r->modrev[obj];
    }
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = cmp.key;
    put.value.data = r->val;
    put.value.len = r->l->o->val_size;
    if (bench_k8s_is_event(obj)) {
        put.lease = r->lease;
    }
    Etcdserverpb__DeleteRangeRequest del =
        ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    del.key = cmp.key;
    Etcdserverpb__RequestOp then = ETCDSERVERPB__REQUEST_OP__INIT;
    Etcdserverpb__RequestOp *thenp = &then;
    if (kind == K_DELETE) {
        then.request_case =
            ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
        then.request_delete_range = &del;
    } else {
        then.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        then.request_put = &put;
    }
    Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
    get.key = cmp.key;
    Etcdserverpb__RequestOp orelse = ETCDSERVERPB__REQUEST_OP__INIT;
    Etcdserverpb__RequestOp *orelsep = &orelse;
    orelse.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    orelse.request_range = &get;
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    req.n_compare = 1;
    req.compare = &cmpp;
    req.n_success = 1;
    req.success = &thenp;
    req.n_failure = 1;
    req.failure = &orelsep;
    s->kind = kind;
    s->path = "/etcdserverpb.KV/Txn";
    return bench__pack(&req.base, &s->req);
}

static int page_build(struct k8s_run *r, struct bench_slot *s,
                      struct k8s_slot *ks)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key.data = ks->list.key;
    req.key.len = ks->list.key_len;
    req.range_end.data = ks->list.end;
    req.range_end.len = ks->list.end_len;
    req.limit = (int64_t)r->l->o->page_size;
    req.revision = ks->list.revision;
    s->kind = K_LIST;
    s->path = "/etcdserverpb.KV/Range";
    return bench__pack(&req.base, &s->req);
}

static int k8s_build(struct bench_slot *s, void *arg)
{
    struct k8s_run *r = arg;
    const struct bench_opts *o = r->l->o;
    struct k8s_slot *ks = &r->slots[s->index];
    if (ks->listing) {
        return page_build(r, s, ks);
    }
    if (moor_prng_double(&ks->prng) < o->list_ratio) {
        int rv = bench_k8s_list_start(&ks->list, K8S_ROOT "/pods/");
        if (rv != MOOR_OK) {
            return rv;
        }
        ks->listing = true;
        return page_build(r, s, ks);
    }
    /* One of this slot's objects: index, index + clients, ... */
    uint64_t c = r->l->nslots;
    uint64_t owned = (r->nobj - s->index + c - 1) / c;
    ks->obj = s->index + c * moor_prng_below(&ks->prng, owned);
    if (r->modrev[ks->obj] == 0) {
        return txn_build(r, s, ks->obj, K_CREATE);
    }
    if (moor_prng_chance(&ks->prng, 0.2)) {
        return txn_build(r, s, ks->obj, K_DELETE);
    }
    return txn_build(r, s, ks->obj, K_UPDATE);
}

static int k8s_check(struct bench_slot *s, struct moor_slice resp, void *arg,
                     char *msg)
{
    struct k8s_run *r = arg;
    struct k8s_slot *ks = &r->slots[s->index];
    int rv = MOOR_OK;
    if (s->kind == K_LIST) {
        Etcdserverpb__RangeResponse *rr =
            (Etcdserverpb__RangeResponse *)bench__unpack(
                &etcdserverpb__range_response__descriptor, resp);
        if (rr == NULL || rr->header == NULL) {
            rv = MOOR_EPROTO;
        } else {
            const Mvccpb__KeyValue *last =
                rr->n_kvs > 0 ? rr->kvs[rr->n_kvs - 1] : NULL;
            rv = bench_k8s_list_page(&ks->list, last ? last->key.data : NULL,
                                     last ? last->key.len : 0, rr->n_kvs,
                                     rr->more, rr->header->revision);
        }
        bench__free(rr);
        if (rv != MOOR_OK) {
            moor_errmsg_set(msg, "a list page that cannot continue");
            ks->listing = false;
        } else if (ks->list.done) {
            ks->listing = false;
            r->lists_done++;
            r->list_items += ks->list.items;
        }
        return rv;
    }
    Etcdserverpb__TxnResponse *t = (Etcdserverpb__TxnResponse *)bench__unpack(
        &etcdserverpb__txn_response__descriptor, resp);
    if (t == NULL || t->header == NULL) {
        moor_errmsg_set(msg, "TxnResponse without a header");
        rv = MOOR_EPROTO;
    } else if (!t->succeeded) {
        moor_errmsg_set(msg, "compare failed on object %llu (another writer?)",
                        (unsigned long long)ks->obj);
        rv = MOOR_EPROTO;
        r->modrev[ks->obj] = 0;
        if (t->n_responses == 1 &&
            t->responses[0]->response_case ==
                ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE &&
            t->responses[0]->response_range->n_kvs == 1) {
            /* Learn the current revision, as an API server would. */
            r->modrev[ks->obj] =
                t->responses[0]->response_range->kvs[0]->mod_revision;
        }
    } else {
        r->modrev[ks->obj] = s->kind == K_DELETE ? 0 : t->header->revision;
        r->writes_ok++;
    }
    bench__free(t);
    return rv;
}

/* ------------------------------------------------------------------------
 * Watchers and the lease
 * ---------------------------------------------------------------------- */
static void kw_message(struct rpc_stream *s, struct moor_slice msg, void *arg)
{
    (void)s;
    struct k8s_watch *w = arg;
    struct k8s_run *r = w->run;
    Etcdserverpb__WatchResponse *resp =
        (Etcdserverpb__WatchResponse *)bench__unpack(
            &etcdserverpb__watch_response__descriptor, msg);
    if (resp == NULL) {
        r->l->bad_responses++;
        bench__load_note(r->l, "undecodable WatchResponse");
        return;
    }
    if (resp->created) {
        r->created++;
    } else if (resp->canceled) {
        r->l->bad_responses++;
        bench__load_note(r->l, "watch canceled: %s", resp->cancel_reason);
    } else if (resp->n_events == 0) {
        r->progress++;
    }
    for (size_t i = 0; i < resp->n_events; i++) {
        const Mvccpb__Event *e = resp->events[i];
        r->events++;
        bool needs_prev = e->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ||
                          (e->kv != NULL && e->kv->version > 1);
        if (needs_prev && e->prev_kv == NULL) {
            r->l->extra_errors[1]++;
            bench__load_note(r->l, "an event without its prev_kv");
        }
    }
    bench__free(resp);
}

static void kw_done(struct rpc_stream *s, int status, const char *message,
                    void *arg)
{
    (void)s;
    struct k8s_watch *w = arg;
    w->done = true;
    w->run->open_streams--;
    if (status != RPC_CANCELLED && status != RPC_OK) {
        bench__load_count_status(w->run->l, status, message);
    }
}

static void ka_message(struct rpc_stream *s, struct moor_slice msg, void *arg)
{
    (void)s;
    struct k8s_run *r = arg;
    Etcdserverpb__LeaseKeepAliveResponse *resp =
        (Etcdserverpb__LeaseKeepAliveResponse *)bench__unpack(
            &etcdserverpb__lease_keep_alive_response__descriptor, msg);
    if (resp == NULL || resp->ttl <= 0) {
        r->l->bad_responses++;
        bench__load_note(r->l, "the events' lease was not renewed");
    } else {
        r->keepalives++;
    }
    bench__free(resp);
}

static void ka_done(struct rpc_stream *s, int status, const char *message,
                    void *arg)
{
    (void)s;
    struct k8s_run *r = arg;
    r->ka_done = true;
    r->open_streams--;
    if (status != RPC_CANCELLED && status != RPC_OK) {
        bench__load_count_status(r->l, status, message);
    }
}

static void ka_send(struct k8s_run *r)
{
    Etcdserverpb__LeaseKeepAliveRequest req =
        ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    req.id = r->lease;
    uint8_t buf[32];
    size_t n = protobuf_c_message_pack(&req.base, buf);
    if (!r->ka_done) {
        rpc_stream_send(r->ka, moor_slice_make(buf, n)); /* tiny: no EAGAIN */
    }
}

static void ka_timer_cb(uv_timer_t *t)
{
    ka_send(t->data);
}

static bool watchers_created(void *arg)
{
    struct k8s_run *r = arg;
    return r->created >= r->nw || r->open_streams < r->nw + 1;
}

static bool events_delivered(void *arg)
{
    struct k8s_run *r = arg;
    return r->events >= r->writes_ok * r->nw;
}

static bool streams_closed(void *arg)
{
    struct k8s_run *r = arg;
    return r->open_streams == 0;
}

static int delete_root(struct bench_load *l)
{
    uint8_t end[64];
    Etcdserverpb__DeleteRangeRequest req =
        ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)K8S_ROOT "/";
    req.key.len = strlen(K8S_ROOT "/");
    req.range_end.data = end;
    req.range_end.len = bench_prefix_end(req.key.data, req.key.len, end);
    char msg[MOOR_ERRMSG_SIZE] = "";
    int rv = bench__call_sync(l, l->cls[0], "/etcdserverpb.KV/DeleteRange",
                              &req.base, NULL, NULL, msg);
    if (rv != RPC_OK) {
        fprintf(stderr, "moor-bench k8s: %s\n", msg);
        return MOOR_EIO;
    }
    return MOOR_OK;
}

static int k8s_validate(struct bench_opts *o, void *arg)
{
    (void)arg;
    const char *why = NULL;
    if (o->objects < o->clients || o->objects > K8S_OBJECTS_MAX) {
        why = "--objects must be at least --clients and at most 10,000,000";
    } else if (o->namespaces == 0 || o->namespaces > 9999) {
        why = "--namespaces must be 1 to 9999";
    } else if (o->page_size == 0) {
        why = "--page-size must be > 0";
    } else if (o->watchers > 1000) {
        why = "--watchers is at most 1000 here";
    } else if (o->lease_ttl < 3 || o->lease_ttl > 1000000) {
        why = "--ttl must be 3 to 1000000 seconds";
    } else if (!(o->list_ratio >= 0 && o->list_ratio <= 1)) {
        why = "--list-ratio must be 0 to 1";
    }
    if (why != NULL) {
        fprintf(stderr, "moor-bench k8s: %s\n", why);
        return MOOR_EINVAL;
    }
    return MOOR_OK;
}

static int k8s_setup(struct bench_load *l, void *arg)
{
    struct k8s_run *r = arg;
    const struct bench_opts *o = l->o;
    r->l = l;
    r->nobj = o->objects;
    r->modrev = moor_calloc(r->nobj, sizeof(*r->modrev));
    r->val = moor_malloc(o->val_size + 1);
    r->slots = moor_calloc(l->nslots, sizeof(*r->slots));
    r->nw = o->watchers;
    r->w = moor_calloc(r->nw + 1, sizeof(*r->w));
    if (r->modrev == NULL || r->val == NULL || r->slots == NULL ||
        r->w == NULL) {
        return MOOR_ENOMEM;
    }
    memset(r->val, 'v', o->val_size);
    for (uint32_t i = 0; i < l->nslots; i++) {
        moor_prng_seed(&r->slots[i].prng, 1000 + i);
    }
    l->extra_error_names[0] = "missing_events";
    l->extra_error_names[1] = "missing_prev_kv";
    int rv = delete_root(l);
    if (rv != MOOR_OK) {
        return rv;
    }
    Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    g.ttl = (int64_t)o->lease_ttl;
    ProtobufCMessage *m = NULL;
    char msg[MOOR_ERRMSG_SIZE] = "";
    if (bench__call_sync(l, l->cls[0], "/etcdserverpb.Lease/LeaseGrant",
                         &g.base,
                         &etcdserverpb__lease_grant_response__descriptor, &m,
                         msg) != RPC_OK) {
        fprintf(stderr, "moor-bench k8s: %s\n", msg);
        return MOOR_EIO;
    }
    r->lease = ((Etcdserverpb__LeaseGrantResponse *)m)->id;
    bench__free(m);

    static const struct rpc_stream_ops kops = {ka_message, NULL, ka_done};
    rv = rpc_stream_start(l->cls[0], "/etcdserverpb.Lease/LeaseKeepAlive", NULL,
                          0, 0, &kops, r, &r->ka);
    if (rv != MOOR_OK) {
        r->ka_done = true;
        return rv;
    }
    r->open_streams++;
    ka_send(r);
    uv_timer_init(&l->loop, &r->ka_timer);
    r->ka_timer.data = r;
    r->ka_timer_open = true;
    uint64_t every = o->lease_ttl * 1000 / 3;
    uv_timer_start(&r->ka_timer, ka_timer_cb, every, every);

    static const struct rpc_stream_ops wops = {kw_message, NULL, kw_done};
    uint8_t end[64];
    Etcdserverpb__WatchCreateRequest c =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    c.key.data = (uint8_t *)K8S_ROOT "/";
    c.key.len = strlen(K8S_ROOT "/");
    c.range_end.data = end;
    c.range_end.len = bench_prefix_end(c.key.data, c.key.len, end);
    c.progress_notify = true;
    c.prev_kv = true;
    Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
    wr.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    wr.create_request = &c;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&wr.base, buf);
    for (uint32_t i = 0; i < r->nw; i++) {
        struct k8s_watch *w = &r->w[i];
        w->run = r;
        rv = rpc_stream_start(l->cls[i % l->ncls], "/etcdserverpb.Watch/Watch",
                              NULL, 0, 0, &wops, w, &w->s);
        if (rv != MOOR_OK) {
            w->done = true;
            return rv;
        }
        r->open_streams++;
        rpc_stream_send(w->s, moor_slice_make(buf, n));
    }
    if (!bench__run_until(l, watchers_created, r, bench__timeout_ms(o)) ||
        r->created < r->nw) {
        fprintf(stderr, "moor-bench k8s: %llu of %u watchers created (%s)\n",
                (unsigned long long)r->created, r->nw,
                l->first_error[0] ? l->first_error : "timed out");
        return MOOR_ETIMEDOUT;
    }
    return MOOR_OK;
}

static void k8s_extra(struct bench_load *l, void *arg, struct moor_buf *json,
                      struct moor_buf *text)
{
    struct k8s_run *r = arg;
    bench__run_until(l, events_delivered, r, bench__timeout_ms(l->o));
    uint64_t want = r->writes_ok * r->nw;
    if (r->events < want) {
        l->extra_errors[0] = want - r->events;
        bench__load_note(l, "%llu watch events missing after --timeout",
                         (unsigned long long)(want - r->events));
    }
    moor_buf_printf(
        json,
        "\"writes\":%llu,\"lists\":%llu,\"list_items\":%llu,"
        "\"watch_events\":%llu,\"watch_events_expected\":%llu,"
        "\"progress_notifications\":%llu,\"keepalives\":%llu",
        (unsigned long long)r->writes_ok, (unsigned long long)r->lists_done,
        (unsigned long long)r->list_items, (unsigned long long)r->events,
        (unsigned long long)want, (unsigned long long)r->progress,
        (unsigned long long)r->keepalives);
    moor_buf_printf(
        text,
        "k8s:\n  writes (CAS ok)       %llu\n  lists completed     "
        "  %llu (%llu items)\n  watch events          %llu of "
        "%llu\n  progress notifies     %llu\n  lease keepalives "
        "     %llu\n",
        (unsigned long long)r->writes_ok, (unsigned long long)r->lists_done,
        (unsigned long long)r->list_items, (unsigned long long)r->events,
        (unsigned long long)want, (unsigned long long)r->progress,
        (unsigned long long)r->keepalives);
}

static void k8s_teardown(struct bench_load *l, void *arg)
{
    struct k8s_run *r = arg;
    if (r->l == NULL) {
        return; /* setup never ran */
    }
    for (uint32_t i = 0; r->w != NULL && i < r->nw; i++) {
        if (r->w[i].s != NULL && !r->w[i].done) {
            rpc_stream_cancel(r->w[i].s);
        }
    }
    if (r->ka != NULL && !r->ka_done) {
        rpc_stream_cancel(r->ka);
    }
    if (r->ka_timer_open) {
        uv_close((uv_handle_t *)&r->ka_timer, NULL);
        r->ka_timer_open = false;
    }
    bench__run_until(l, streams_closed, r, 5000);
    if (r->lease != 0 && l->ncls > 0) {
        Etcdserverpb__LeaseRevokeRequest req =
            ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
        req.id = r->lease;
        char msg[MOOR_ERRMSG_SIZE];
        bench__call_sync(l, l->cls[0], "/etcdserverpb.Lease/LeaseRevoke",
                         &req.base, NULL, NULL, msg);
    }
    if (l->ncls > 0) {
        delete_root(l);
    }
    moor_free(r->modrev);
    moor_free(r->val);
    moor_free(r->slots);
    moor_free(r->w);
}

static void k8s_params(const struct bench_opts *o, struct moor_buf *json,
                       struct moor_buf *text)
{
    moor_buf_printf(json,
                    "\"objects\":%llu,\"namespaces\":%u,\"page_size\":%llu,"
                    "\"list_ratio\":%g,\"val_size\":%llu,\"watchers\":%u,"
                    "\"ttl\":%llu",
                    (unsigned long long)o->objects, o->namespaces,
                    (unsigned long long)o->page_size, o->list_ratio,
                    (unsigned long long)o->val_size, o->watchers,
                    (unsigned long long)o->lease_ttl);
    moor_buf_printf(text,
                    "%llu objects in %u namespaces, %llu-byte values, "
                    "pages of %llu, list ratio %g, %u watchers",
                    (unsigned long long)o->objects, o->namespaces,
                    (unsigned long long)o->val_size,
                    (unsigned long long)o->page_size, o->list_ratio,
                    o->watchers);
}

static const struct bench_workload k8s_workload =
    {"k8s", {"create", "update", "delete", "list"}, 4, k8s_build, k8s_check};

int bench_k8s_main(int argc, char **argv)
{
    static const struct bench_unary_main m = {
        "k8s",
        BW_K8S,
        NULL,
        "A Kubernetes API server's pattern: creates by Txn(create_revision\n"
        "== 0), updates and deletes by Txn(mod_revision == X), paginated\n"
        "lists (--page-size, continuation after the last key at the first\n"
        "page's revision), --watchers prefix watches with progress_notify\n"
        "and prev_kv, events bound to a lease kept alive. Works under\n"
        "" K8S_ROOT "/, which it deletes before and after the run.",
        &k8s_workload,
        k8s_validate,
        k8s_setup,
        k8s_params,
        k8s_extra,
        k8s_teardown};
    struct k8s_run r;
    memset(&r, 0, sizeof(r));
    return bench__unary_main(&m, &r, argc, argv);
}
