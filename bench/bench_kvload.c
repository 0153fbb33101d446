/* bench_kvload.c: `moor-bench put`, `range`, `txn-put` and `txn-mixed`:
 * unary KV requests, as etcd's benchmark makes them. */
#include <stdlib.h>

#include "bench_int.h"

#define TXN_OPS_MAX 1024u

int bench__kv_keys_init(struct bench_kv_state *st, const struct bench_opts *o,
                        const char *prefix)
{
    int rv = bench_keygen_init(&st->kg, prefix, o->key_size, o->key_space_size,
                               o->sequential_keys, 1);
    if (rv != MOOR_OK) {
        fprintf(stderr,
                "moor-bench: --key-size %llu cannot hold %llu distinct keys "
                "(%zu-byte prefix + the index in decimal)\n",
                (unsigned long long)o->key_size,
                (unsigned long long)o->key_space_size, strlen(prefix));
        return rv;
    }
    st->val_size = o->val_size;
    st->val = moor_malloc(o->val_size + 1);
    if (st->val == NULL) {
        return MOOR_ENOMEM;
    }
    /* Random bytes, as etcd's benchmark's values. */
    struct moor_prng r;
    moor_prng_seed(&r, 2);
    for (size_t i = 0; i < o->val_size; i++) {
        st->val[i] = (uint8_t)moor_prng_next(&r);
    }
    moor_prng_seed(&st->prng, 3);
    return MOOR_OK;
}

void bench__kv_keys_close(struct bench_kv_state *st)
{
    moor_free(st->val);
    st->val = NULL;
}

int bench__put_build(struct bench_slot *s, void *arg)
{
    struct bench_kv_state *st = arg;
    bench_keygen_format(&st->kg, bench_keygen_next(&st->kg), st->key);
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key.data = st->key;
    req.key.len = st->kg.key_size;
    req.value.data = st->val;
    req.value.len = st->val_size;
    s->path = "/etcdserverpb.KV/Put";
    return bench__pack(&req.base, &s->req);
}

int bench__put_check(struct bench_slot *s, struct moor_slice resp, void *arg,
                     char *msg)
{
    (void)s;
    (void)arg;
    Etcdserverpb__PutResponse *r = (Etcdserverpb__PutResponse *)bench__unpack(
        &etcdserverpb__put_response__descriptor, resp);
    if (r == NULL || r->header == NULL || r->header->revision <= 0) {
        moor_errmsg_set(msg, "PutResponse without a header revision");
        bench__free(r);
        return MOOR_EPROTO;
    }
    bench__free(r);
    return MOOR_OK;
}

void bench__kv_params(const struct bench_opts *o, struct moor_buf *json,
                      struct moor_buf *text)
{
    moor_buf_printf(json,
                    "\"key_size\":%llu,\"val_size\":%llu,"
                    "\"key_space_size\":%llu,\"sequential_keys\":%s",
                    (unsigned long long)o->key_size,
                    (unsigned long long)o->val_size,
                    (unsigned long long)o->key_space_size,
                    o->sequential_keys ? "true" : "false");
    moor_buf_printf(text, "key-size %llu, val-size %llu, key-space-size %llu%s",
                    (unsigned long long)o->key_size,
                    (unsigned long long)o->val_size,
                    (unsigned long long)o->key_space_size,
                    o->sequential_keys ? ", sequential keys" : "");
}

/* ------------------------------------------------------------------------
 * put
 * ---------------------------------------------------------------------- */
static int keys_validate(struct bench_opts *o, void *arg)
{
    return bench__kv_keys_init(arg, o, "");
}

static void keys_teardown(struct bench_load *l, void *arg)
{
    (void)l;
    bench__kv_keys_close(arg);
}

static const struct bench_workload put_workload = {"put",
                                                   {NULL},
                                                   0,
                                                   bench__put_build,
                                                   bench__put_check};

int bench_put_main(int argc, char **argv)
{
    static const struct bench_unary_main m = {
        "put",
        BW_PUT,
        NULL,
        "Puts keys of --key-size bytes (the index in decimal, zero-padded)\n"
        "with values of --val-size random bytes, at random within\n"
        "--key-space-size keys or in order with --sequential-keys.",
        &put_workload,
        keys_validate,
        NULL,
        bench__kv_params,
        NULL,
        keys_teardown};
    struct bench_kv_state st;
    memset(&st, 0, sizeof(st));
    return bench__unary_main(&m, &st, argc, argv);
}

/* ------------------------------------------------------------------------
 * range
 * ---------------------------------------------------------------------- */
struct range_state
{
    uint8_t end[BENCH_KEY_MAX];
    size_t end_len;
};
static int range_validate(struct bench_opts *o, void *arg)
{
    struct range_state *range_state = arg;
    if (o->args_len < 1 || o->args[0][0] == 0) {
        fprintf(stderr, "moor-bench range: give the key to range over\n");
        return MOOR_EINVAL;
    }
    size_t klen = strlen(o->args[0]);
    if (klen > BENCH_KEY_MAX) {
        fprintf(stderr, "moor-bench range: key over %u bytes\n", BENCH_KEY_MAX);
        return MOOR_EINVAL;
    }
    if (o->prefix && o->args_len > 1) {
        fprintf(stderr, "moor-bench range: --prefix takes no end key\n");
        return MOOR_EINVAL;
    }
    if (o->prefix) {
        range_state->end_len = bench_prefix_end((const uint8_t *)o->args[0],
                                                klen, range_state->end);
    } else if (o->args_len > 1) {
        size_t elen = strlen(o->args[1]);
        if (elen > BENCH_KEY_MAX) {
            fprintf(stderr, "moor-bench range: end key over %u bytes\n",
                    BENCH_KEY_MAX);
            return MOOR_EINVAL;
        }
        memcpy(range_state->end, o->args[1], elen);
        range_state->end_len = elen;
    }
    return MOOR_OK;
}

static int range_build(struct bench_slot *s, void *arg)
{
    struct range_state *st = arg;
    const struct bench_opts *o = s->load->o;
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)o->args[0];
    req.key.len = strlen(o->args[0]);
    req.range_end.data = st->end;
    req.range_end.len = st->end_len;
    req.limit = (int64_t)o->limit;
    req.serializable = o->consistency != NULL && o->consistency[0] == 's';
    req.count_only = o->count_only;
    s->path = "/etcdserverpb.KV/Range";
    return bench__pack(&req.base, &s->req);
}

static int range_check(struct bench_slot *s, struct moor_slice resp, void *arg,
                       char *msg)
{
    (void)arg;
    const struct bench_opts *o = s->load->o;
    Etcdserverpb__RangeResponse *r =
        (Etcdserverpb__RangeResponse *)bench__unpack(
            &etcdserverpb__range_response__descriptor, resp);
    int rv = MOOR_OK;
    if (r == NULL || r->header == NULL) {
        moor_errmsg_set(msg, "RangeResponse without a header");
        rv = MOOR_EPROTO;
    } else if (o->limit > 0 && r->n_kvs > o->limit) {
        moor_errmsg_set(msg, "%zu keys for limit %llu", r->n_kvs,
                        (unsigned long long)o->limit);
        rv = MOOR_EPROTO;
    }
    bench__free(r);
    return rv;
}

static void range_params(const struct bench_opts *o, struct moor_buf *json,
                         struct moor_buf *text)
{
    const char *c = o->consistency != NULL ? o->consistency : "l";
    moor_buf_printf(json, "\"key\":");
    bench__json_str(json, o->args[0]);
    moor_buf_printf(json, ",\"end\":");
    bench__json_str(json, o->args_len > 1 ? o->args[1] : "");
    moor_buf_printf(json,
                    ",\"prefix\":%s,\"consistency\":\"%s\",\"limit\":%llu,"
                    "\"count_only\":%s",
                    o->prefix ? "true" : "false", c,
                    (unsigned long long)o->limit,
                    o->count_only ? "true" : "false");
    moor_buf_printf(
        text, "key %s%s%s, consistency %s, limit %llu%s", o->args[0],
        o->prefix ? " (prefix)" : "", o->args_len > 1 ? " to end" : "", c,
        (unsigned long long)o->limit, o->count_only ? ", count only" : "");
}

static const struct bench_workload range_workload = {"range",
                                                     {NULL},
                                                     0,
                                                     range_build,
                                                     range_check};

int bench_range_main(int argc, char **argv)
{
    static const struct bench_unary_main m = {
        "range",
        BW_RANGE,
        "KEY [END] ",
        "Ranges over KEY (to END, or every key with KEY as prefix with\n"
        "--prefix), linearizable (--consistency l, ReadIndex) or serializable\n"
        "(s, the local store). Put the keys first (moor-bench put).",
        &range_workload,
        range_validate,
        NULL,
        range_params,
        NULL,
        NULL};
    struct range_state st;
    memset(&st, 0, sizeof(st));
    return bench__unary_main(&m, &st, argc, argv);
}

/* ------------------------------------------------------------------------
 * txn-put and txn-mixed
 * ---------------------------------------------------------------------- */
static int txn_put_validate(struct bench_opts *o, void *arg)
{
    if (o->txn_ops == 0 || o->txn_ops > TXN_OPS_MAX ||
        o->txn_ops > o->key_space_size) {
        fprintf(stderr,
                "moor-bench txn-put: --txn-ops must be 1 to %u and at most "
                "--key-space-size (keys in one txn are distinct)\n",
                TXN_OPS_MAX);
        return MOOR_EINVAL;
    }
    return keys_validate(o, arg);
}

/* Picks n distinct key indexes into idx. */
static void distinct_keys(struct bench_kv_state *st, uint64_t *idx, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool dup;
        do {
            idx[i] = bench_keygen_next(&st->kg);
            dup = false;
            for (size_t k = 0; k < i && !dup; k++) {
                dup = idx[k] == idx[i];
            }
        } while (dup);
    }
}

static int txn_put_build(struct bench_slot *s, void *arg)
{
    struct bench_kv_state *st = arg;
    size_t n = (size_t)s->load->o->txn_ops;
    uint64_t idx[TXN_OPS_MAX];
    distinct_keys(st, idx, n);
    uint8_t *keys = moor_malloc(n * st->kg.key_size + 1);
    Etcdserverpb__PutRequest *puts = moor_calloc(n, sizeof(*puts));
    Etcdserverpb__RequestOp *ops = moor_calloc(n, sizeof(*ops));
    Etcdserverpb__RequestOp **opp = moor_calloc(n, sizeof(*opp));
    int rv = MOOR_ENOMEM;
    if (keys != NULL && puts != NULL && ops != NULL && opp != NULL) {
        for (size_t i = 0; i < n; i++) {
            uint8_t *k = keys + i * st->kg.key_size;
            bench_keygen_format(&st->kg, idx[i], k);
            etcdserverpb__put_request__init(&puts[i]);
            puts[i].key.data = k;
            puts[i].key.len = st->kg.key_size;
            puts[i].value.data = st->val;
            puts[i].value.len = st->val_size;
            etcdserverpb__request_op__init(&ops[i]);
            ops[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            ops[i].request_put = &puts[i];
            opp[i] = &ops[i];
        }
        Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
        req.n_success = n;
        req.success = opp;
        s->path = "/etcdserverpb.KV/Txn";
        rv = bench__pack(&req.base, &s->req);
    }
    moor_free(opp);
    moor_free(ops);
    moor_free(puts);
    moor_free(keys);
    return rv;
}

static int txn_check(struct bench_slot *s, struct moor_slice resp, void *arg,
                     char *msg)
{
    (void)arg;
    (void)s;
    Etcdserverpb__TxnResponse *r = (Etcdserverpb__TxnResponse *)bench__unpack(
        &etcdserverpb__txn_response__descriptor, resp);
    int rv = MOOR_OK;
    if (r == NULL || r->header == NULL || !r->succeeded ||
        r->n_responses == 0) {
        moor_errmsg_set(msg, "TxnResponse not a success with answers");
        rv = MOOR_EPROTO;
    }
    bench__free(r);
    return rv;
}

static void txn_put_params(const struct bench_opts *o, struct moor_buf *json,
                           struct moor_buf *text)
{
    bench__kv_params(o, json, text);
    moor_buf_printf(json, ",\"txn_ops\":%llu", (unsigned long long)o->txn_ops);
    moor_buf_printf(text, ", %llu puts per txn",
                    (unsigned long long)o->txn_ops);
}

static const struct bench_workload txn_put_workload = {"txn-put",
                                                       {NULL},
                                                       0,
                                                       txn_put_build,
                                                       txn_check};

int bench_txn_put_main(int argc, char **argv)
{
    static const struct bench_unary_main m = {
        "txn-put",
        BW_TXN_PUT,
        NULL,
        "Txns of --txn-ops puts of distinct keys each (keys and values as\n"
        "put's), no compares.",
        &txn_put_workload,
        txn_put_validate,
        NULL,
        txn_put_params,
        NULL,
        keys_teardown};
    struct bench_kv_state st;
    memset(&st, 0, sizeof(st));
    return bench__unary_main(&m, &st, argc, argv);
}

enum { KIND_READ, KIND_WRITE };

static int txn_mixed_build(struct bench_slot *s, void *arg)
{
    struct bench_kv_state *st = arg;
    const struct bench_opts *o = s->load->o;
    double p_read = o->rw_ratio / (o->rw_ratio + 1.0);
    Etcdserverpb__RangeRequest rr = ETCDSERVERPB__RANGE_REQUEST__INIT;
    Etcdserverpb__PutRequest pr = ETCDSERVERPB__PUT_REQUEST__INIT;
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
    Etcdserverpb__RequestOp *opp = &op;
    uint8_t end[BENCH_KEY_MAX + 1];
    if (moor_prng_double(&st->prng) < p_read) {
        /* Every key of the key space, at most --limit of them. */
        s->kind = KIND_READ;
        bench_keygen_format(&st->kg, 0, st->key);
        bench_keygen_format(&st->kg, st->kg.space - 1, end);
        end[st->kg.key_size] = 0;
        rr.key.data = st->key;
        rr.key.len = st->kg.key_size;
        rr.range_end.data = end;
        rr.range_end.len = st->kg.key_size + 1;
        rr.limit = (int64_t)o->limit;
        op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
        op.request_range = &rr;
    } else {
        s->kind = KIND_WRITE;
        bench_keygen_format(&st->kg, bench_keygen_next(&st->kg), st->key);
        pr.key.data = st->key;
        pr.key.len = st->kg.key_size;
        pr.value.data = st->val;
        pr.value.len = st->val_size;
        op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        op.request_put = &pr;
    }
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    req.n_success = 1;
    req.success = &opp;
    s->path = "/etcdserverpb.KV/Txn";
    return bench__pack(&req.base, &s->req);
}

static int txn_mixed_validate(struct bench_opts *o, void *arg)
{
    if (!(o->rw_ratio >= 0)) {
        fprintf(stderr, "moor-bench txn-mixed: --rw-ratio must be >= 0\n");
        return MOOR_EINVAL;
    }
    return keys_validate(o, arg);
}

static void txn_mixed_params(const struct bench_opts *o, struct moor_buf *json,
                             struct moor_buf *text)
{
    bench__kv_params(o, json, text);
    moor_buf_printf(json, ",\"rw_ratio\":%g,\"limit\":%llu", o->rw_ratio,
                    (unsigned long long)o->limit);
    moor_buf_printf(text, ", rw-ratio %g, read limit %llu", o->rw_ratio,
                    (unsigned long long)o->limit);
}

static const struct bench_workload txn_mixed_workload = {"txn-mixed",
                                                         {"read", "write"},
                                                         2,
                                                         txn_mixed_build,
                                                         txn_check};

int bench_txn_mixed_main(int argc, char **argv)
{
    static const struct bench_unary_main m = {
        "txn-mixed",
        BW_TXN_MIXED,
        NULL,
        "Txns that read (a Range over the whole key space, at most --limit\n"
        "keys) or write (one put as put's), --rw-ratio reads per write.\n"
        "Reads and writes get their own latency lines.",
        &txn_mixed_workload,
        txn_mixed_validate,
        NULL,
        txn_mixed_params,
        NULL,
        keys_teardown};
    struct bench_kv_state st;
    memset(&st, 0, sizeof(st));
    return bench__unary_main(&m, &st, argc, argv);
}
