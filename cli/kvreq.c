/*
 * kvreq.c: get, put and del requests from command-line arguments, shared
 * by the commands and by txn's op lines. The rules and error texts are
 * etcdctl 3.4's getGetOp/getPutOp/getDelOp (with 3.5's --count-only).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "cli_int.h"

#define GO(field) offsetof(struct mc_get_opts, field)
const struct mc_flag mc_get_flags[] = {
    {"consistency", 0, MC_FLAG_STRING, GO(consistency),
     "Linearizable(l) or Serializable(s)"},
    {"order", 0, MC_FLAG_STRING, GO(order),
     "Order of results; ASCEND or DESCEND (ASCEND by default)"},
    {"sort-by", 0, MC_FLAG_STRING, GO(sort_by),
     "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION"},
    {"limit", 0, MC_FLAG_INT64, GO(limit), "Maximum number of results"},
    {"prefix", 0, MC_FLAG_BOOL, GO(prefix), "Get keys with matching prefix"},
    {"from-key", 0, MC_FLAG_BOOL, GO(from_key),
     "Get keys that are greater than or equal to the given key using byte "
     "compare"},
    {"rev", 0, MC_FLAG_INT64, GO(rev), "Specify the kv revision"},
    {"keys-only", 0, MC_FLAG_BOOL, GO(keys_only), "Get only the keys"},
    {"count-only", 0, MC_FLAG_BOOL, GO(count_only), "Get only the count"},
    {"print-value-only", 0, MC_FLAG_BOOL, GO(print_value_only),
     "Only write values when using the \"simple\" output format"},
};
const size_t mc_get_flags_len = MOOR_ARRAY_LEN(mc_get_flags);

#define PO(field) offsetof(struct mc_put_opts, field)
const struct mc_flag mc_put_flags[] = {
    {"lease", 0, MC_FLAG_STRING, PO(lease),
     "lease ID (in hexadecimal) to "
     "attach to the key"},
    {"prev-kv", 0, MC_FLAG_BOOL, PO(prev_kv),
     "return the previous key-value pair before modification"},
    {"ignore-value", 0, MC_FLAG_BOOL, PO(ignore_value),
     "updates the key using its current value"},
    {"ignore-lease", 0, MC_FLAG_BOOL, PO(ignore_lease),
     "updates the key using its current lease"},
};
const size_t mc_put_flags_len = MOOR_ARRAY_LEN(mc_put_flags);

#define DO(field) offsetof(struct mc_del_opts, field)
const struct mc_flag mc_del_flags[] = {
    {"prefix", 0, MC_FLAG_BOOL, DO(prefix), "delete keys with matching prefix"},
    {"prev-kv", 0, MC_FLAG_BOOL, DO(prev_kv), "return deleted key-value pairs"},
    {"from-key", 0, MC_FLAG_BOOL, DO(from_key),
     "delete keys that are greater than or equal to the given key using "
     "byte compare"},
};
const size_t mc_del_flags_len = MOOR_ARRAY_LEN(mc_del_flags);

void mc_opts_close(const struct mc_flag *flags, size_t len, void *opts)
{
    for (size_t i = 0; i < len; i++) {
        if (flags[i].type == MC_FLAG_STRING) {
            char *s;
            memcpy(&s, (char *)opts + flags[i].offset, sizeof(s));
            moor_free(s);
            s = NULL;
            memcpy((char *)opts + flags[i].offset, &s, sizeof(s));
        }
    }
}

static int parse_hex(const char *s, bool is_signed, uint64_t *out)
{
    const char *p = s;
    bool neg = false;
    if (is_signed && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    if (*p == 0) {
        return MOOR_EINVAL;
    }
    uint64_t v = 0;
    for (; *p != 0; p++) {
        int d = isdigit((unsigned char)*p) ? *p - '0'
                : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
                : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10
                                           : -1;
        if (d < 0) {
            return MOOR_EINVAL;
        }
        if (v > (UINT64_MAX >> 4)) {
            return MOOR_ETOOBIG;
        }
        v = v << 4 | (uint64_t)d;
    }
    if (is_signed) {
        if (v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
            return MOOR_ETOOBIG;
        }
        if (neg) {
            v = (uint64_t)0 - v;
        }
    }
    *out = v;
    return MOOR_OK;
}

int mc_parse_hex_i64(const char *s, int64_t *out)
{
    uint64_t v;
    int rv = parse_hex(s, true, &v);
    if (rv == MOOR_OK) {
        memcpy(out, &v, sizeof(v));
    }
    return rv;
}

int mc_parse_hex_u64(const char *s, uint64_t *out)
{
    return parse_hex(s, false, out);
}

static int set_bytes(struct mc_arena *a, ProtobufCBinaryData *d, const void *p,
                     size_t len)
{
    d->data = mc_arena_dup(a, p, len);
    d->len = len;
    return d->data != NULL ? MOOR_OK : MOOR_ENOMEM;
}

/* key, with --prefix / --from-key applied, into key and range_end. */
static int set_range(struct mc_arena *a, const char *key, const char *end,
                     bool prefix, bool from_key, ProtobufCBinaryData *k,
                     ProtobufCBinaryData *re)
{
    size_t klen = strlen(key);
    int rv;
    if ((prefix || from_key) && klen == 0) {
        /* etcdctl: an empty key with --prefix or --from-key is "\0" to
         * the end of the keyspace. */
        rv = set_bytes(a, k, "", 1);
        return rv == MOOR_OK ? set_bytes(a, re, "", 1) : rv;
    }
    rv = set_bytes(a, k, key, klen);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (end != NULL) {
        return set_bytes(a, re, end, strlen(end));
    }
    if (from_key) {
        return set_bytes(a, re, "", 1);
    }
    if (prefix) {
        uint8_t *e = mc_arena_alloc(a, klen + 1);
        if (e == NULL) {
            return MOOR_ENOMEM;
        }
        re->len = mc_prefix_end((const uint8_t *)key, klen, e);
        re->data = e;
    }
    return MOOR_OK;
}

static bool str_ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

int mc_build_get(struct mc_arena *a, char **args, size_t n,
                 const struct mc_get_opts *o, Etcdserverpb__RangeRequest **out,
                 char *errtext)
{
    if (n == 0 || n > 2) {
        moor_errmsg_set(errtext,
                        "get command needs one argument as key and "
                        "an optional argument as range_end");
        return MOOR_EINVAL;
    }
    if (o->prefix && o->from_key) {
        moor_errmsg_set(errtext,
                        "`--prefix` and `--from-key` cannot be set "
                        "at the same time, choose one");
        return MOOR_EINVAL;
    }
    if (o->keys_only && o->count_only) {
        moor_errmsg_set(errtext,
                        "`--keys-only` and `--count-only` cannot be "
                        "set at the same time, choose one");
        return MOOR_EINVAL;
    }
    Etcdserverpb__RangeRequest *r = mc_arena_alloc(a, sizeof(*r));
    if (r == NULL) {
        return MOOR_ENOMEM;
    }
    etcdserverpb__range_request__init(r);
    const char *cons = o->consistency != NULL ? o->consistency : "l";
    if (strcmp(cons, "s") == 0) {
        r->serializable = true;
    } else if (strcmp(cons, "l") != 0) {
        moor_errmsg_set(errtext, "unknown consistency flag \"%s\"", cons);
        return MOOR_EINVAL;
    }
    if (n > 1 && (o->prefix || o->from_key)) {
        moor_errmsg_set(errtext,
                        "too many arguments, only accept one argument when "
                        "`--prefix` or `--from-key` is set");
        return MOOR_EINVAL;
    }
    const char *order = o->order != NULL ? o->order : "";
    const char *target = o->sort_by != NULL ? o->sort_by : "";
    if (str_ieq(order, "ASCEND")) {
        r->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    } else if (str_ieq(order, "DESCEND")) {
        r->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    } else if (*order != 0) {
        moor_errmsg_set(errtext, "bad sort order %s", order);
        return MOOR_EINVAL;
    }
    if (str_ieq(target, "CREATE")) {
        r->sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
    } else if (str_ieq(target, "MODIFY")) {
        r->sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD;
    } else if (str_ieq(target, "VALUE")) {
        r->sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE;
    } else if (str_ieq(target, "VERSION")) {
        r->sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION;
    } else if (*target != 0 && !str_ieq(target, "KEY")) {
        moor_errmsg_set(errtext, "bad sort target %s", target);
        return MOOR_EINVAL;
    }
    /* clientv3.WithSort: keys come back ascending already, so KEY with
     * ASCEND is sent as no sort at all. */
    if (r->sort_target == ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY &&
        r->sort_order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND) {
        r->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE;
    }
    r->limit = o->limit;
    r->revision = o->rev > 0 ? o->rev : 0;
    r->keys_only = o->keys_only;
    r->count_only = o->count_only;
    int rv = set_range(a, args[0], n > 1 ? args[1] : NULL, o->prefix,
                       o->from_key, &r->key, &r->range_end);
    if (rv != MOOR_OK) {
        return rv;
    }
    *out = r;
    return MOOR_OK;
}

int mc_build_put(struct mc_arena *a, char **args, size_t n,
                 const struct mc_put_opts *o, const struct moor_slice *value,
                 Etcdserverpb__PutRequest **out, char *errtext)
{
    if (n == 0) {
        moor_errmsg_set(errtext,
                        "put command needs 1 argument and input "
                        "from stdin or 2 arguments");
        return MOOR_EINVAL;
    }
    if (o->ignore_value && n > 1) {
        moor_errmsg_set(errtext,
                        "put command needs only 1 argument when "
                        "'ignore-value' is set");
        return MOOR_EINVAL;
    }
    if (!o->ignore_value && n < 2 && value == NULL) {
        moor_errmsg_set(errtext,
                        "put command needs 1 argument and input "
                        "from stdin or 2 arguments");
        return MOOR_EINVAL;
    }
    if (n > 2) {
        /* etcdctl ignores extra arguments; a typo that loses words of a
         * value is better refused. */
        moor_errmsg_set(errtext,
                        "put command needs 1 argument and input "
                        "from stdin or 2 arguments");
        return MOOR_EINVAL;
    }
    Etcdserverpb__PutRequest *r = mc_arena_alloc(a, sizeof(*r));
    if (r == NULL) {
        return MOOR_ENOMEM;
    }
    etcdserverpb__put_request__init(r);
    const char *lease = o->lease != NULL ? o->lease : "0";
    int rv = mc_parse_hex_i64(lease, &r->lease);
    if (rv != MOOR_OK) {
        moor_errmsg_set(
            errtext,
            "bad lease ID (strconv.ParseInt: parsing \"%s\": %s), "
            "expecting ID in Hex",
            lease,
            rv == MOOR_ETOOBIG ? "value out of range" : "invalid syntax");
        return MOOR_EINVAL;
    }
    r->prev_kv = o->prev_kv;
    r->ignore_value = o->ignore_value;
    r->ignore_lease = o->ignore_lease;
    rv = set_bytes(a, &r->key, args[0], strlen(args[0]));
    if (rv == MOOR_OK && !o->ignore_value) {
        rv = n > 1 ? set_bytes(a, &r->value, args[1], strlen(args[1]))
                   : set_bytes(a, &r->value, value->ptr, value->len);
    }
    if (rv != MOOR_OK) {
        return rv;
    }
    *out = r;
    return MOOR_OK;
}

int mc_build_del(struct mc_arena *a, char **args, size_t n,
                 const struct mc_del_opts *o,
                 Etcdserverpb__DeleteRangeRequest **out, char *errtext)
{
    if (n == 0 || n > 2) {
        moor_errmsg_set(errtext,
                        "del command needs one argument as key and "
                        "an optional argument as range_end");
        return MOOR_EINVAL;
    }
    if (o->prefix && o->from_key) {
        moor_errmsg_set(errtext,
                        "`--prefix` and `--from-key` cannot be set "
                        "at the same time, choose one");
        return MOOR_EINVAL;
    }
    if (n > 1 && (o->prefix || o->from_key)) {
        moor_errmsg_set(errtext,
                        "too many arguments, only accept one argument when "
                        "`--prefix` or `--from-key` is set");
        return MOOR_EINVAL;
    }
    Etcdserverpb__DeleteRangeRequest *r = mc_arena_alloc(a, sizeof(*r));
    if (r == NULL) {
        return MOOR_ENOMEM;
    }
    etcdserverpb__delete_range_request__init(r);
    r->prev_kv = o->prev_kv;
    int rv = set_range(a, args[0], n > 1 ? args[1] : NULL, o->prefix,
                       o->from_key, &r->key, &r->range_end);
    if (rv != MOOR_OK) {
        return rv;
    }
    *out = r;
    return MOOR_OK;
}
