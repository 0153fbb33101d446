/*
 * txn.c: etcdctl's txn grammar (etcdctl/ctlv3/command/txn_command.go):
 *
 *   compares      one per line: target("key") op "value"
 *   <empty line>
 *   success ops   one per line: put/get/del with their flags
 *   <empty line>
 *   failure ops
 *   <empty line>
 *
 * Lines are trimmed of surrounding white space. Input that ends before
 * the last empty line is the error "EOF", as in etcdctl.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "cli_int.h"

int mc_argify(struct mc_arena *a, const char *line, char **args, size_t max,
              size_t *n)
{
    struct moor_buf tmp;
    int rv = MOOR_OK;
    moor_buf_init(&tmp);
    *n = 0;
    const char *p = line;
    for (;;) {
        while (isspace((unsigned char)*p)) {
            p++;
        }
        if (*p == 0) {
            break;
        }
        if (*n == max) {
            rv = MOOR_ETOOBIG;
            break;
        }
        moor_buf_reset(&tmp);
        if (*p == '"') {
            size_t used;
            rv = mc_unquote(p, &tmp, &used);
            if (rv != MOOR_OK) {
                break;
            }
            p += used;
        } else if (*p == '\'') {
            const char *e = strchr(p + 1, '\'');
            if (e == NULL) {
                rv = MOOR_EINVAL;
                break;
            }
            rv = moor_buf_append(&tmp, p + 1, (size_t)(e - p) - 1);
            p = e + 1;
        } else {
            const char *s = p;
            while (*p != 0 && !isspace((unsigned char)*p)) {
                p++;
            }
            rv = moor_buf_append(&tmp, s, (size_t)(p - s));
        }
        if (rv != MOOR_OK) {
            break;
        }
        args[*n] = mc_arena_dup(a, tmp.ptr, tmp.len);
        if (args[*n] == NULL) {
            rv = MOOR_ENOMEM;
            break;
        }
        (*n)++;
    }
    moor_buf_close(&tmp);
    return rv;
}

static const char *skip_spaces(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

static int parse_i64(const char *s, int base, int64_t *out)
{
    if (base == 16) {
        return mc_parse_hex_i64(s, out);
    }
    if (*s == 0) {
        return MOOR_EINVAL;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != 0 || errno != 0 || isspace((unsigned char)*s)) {
        return MOOR_EINVAL;
    }
    *out = v;
    return MOOR_OK;
}

/* fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val) on the text after the
 * target's "(": key and val are decoded into their buffers (val is
 * NUL-terminated), op into op (at most op_size - 1 characters). */
static int scan_compare(const char *rest, struct moor_buf *key, char *op,
                        size_t op_size, struct moor_buf *val)
{
    size_t used;
    const char *p = skip_spaces(rest);
    int rv = mc_unquote(p, key, &used);
    if (rv != MOOR_OK) {
        return rv; /* MOOR_EINVAL: not a quoted string; or MOOR_ENOMEM */
    }
    p += used;
    if (*p != ')') {
        return MOOR_EINVAL;
    }
    p = skip_spaces(p + 1);
    size_t olen = 0;
    while (p[olen] != 0 && !isspace((unsigned char)p[olen])) {
        olen++;
    }
    if (olen == 0 || olen >= op_size) {
        return MOOR_EINVAL;
    }
    memcpy(op, p, olen);
    op[olen] = 0;
    p = skip_spaces(p + olen);
    rv = mc_unquote(p, val, &used);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (moor_buf_putc(val, 0) != MOOR_OK) {
        return MOOR_ENOMEM;
    }
    val->len--;
    return MOOR_OK;
}

/* clientv3.Compare's operators. */
static int compare_result(const char *op,
                          Etcdserverpb__Compare__CompareResult *out)
{
    static const struct
    {
        const char *op;
        Etcdserverpb__Compare__CompareResult result;
    } ops[] = {
        {"=", ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL},
        {"==", ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL},
        {"!=", ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL},
        {"<", ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS},
        {">", ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER},
    };
    for (size_t i = 0; i < MOOR_ARRAY_LEN(ops); i++) {
        if (strcmp(op, ops[i].op) == 0) {
            *out = ops[i].result;
            return MOOR_OK;
        }
    }
    return MOOR_EINVAL;
}

/* etcdctl's compare targets: name, target, the oneof member it sets, and
 * the base its value is parsed in (0: the value is bytes). */
static const struct
{
    const char *name;
    Etcdserverpb__Compare__CompareTarget target;
    Etcdserverpb__Compare__TargetUnionCase which;
    int base;
} targets[] = {
    {"ver", ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION,
     ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION, 10},
    {"version", ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION,
     ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION, 10},
    {"c", ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE,
     ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION, 10},
    {"create", ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE,
     ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION, 10},
    {"m", ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD,
     ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION, 10},
    {"mod", ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD,
     ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION, 10},
    {"val", ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE,
     ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE, 0},
    {"value", ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE,
     ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE, 0},
    {"lease", ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE,
     ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE, 16},
};

/* Sets c's target and value from the target name line[0..tlen). */
static int set_target(struct mc_arena *a, Etcdserverpb__Compare *c,
                      const char *name, size_t tlen, struct moor_buf *val)
{
    for (size_t i = 0; i < MOOR_ARRAY_LEN(targets); i++) {
        if (strlen(targets[i].name) != tlen ||
            memcmp(targets[i].name, name, tlen) != 0) {
            continue;
        }
        c->target = targets[i].target;
        c->target_union_case = targets[i].which;
        if (targets[i].base == 0) {
            c->value.data = mc_arena_dup(a, val->ptr, val->len);
            c->value.len = val->len;
            return c->value.data != NULL ? MOOR_OK : MOOR_ENOMEM;
        }
        int64_t v;
        if (parse_i64((const char *)val->ptr, targets[i].base, &v) != MOOR_OK) {
            return MOOR_ETOOBIG;
        }
        /* version, create_revision, mod_revision and lease share the
         * union's storage, all int64. */
        c->version = v;
        return MOOR_OK;
    }
    return MOOR_ENOENT;
}

int mc_txn_parse_compare(struct mc_arena *a, const char *line,
                         Etcdserverpb__Compare **out, char *errtext)
{
    const char *lp = strchr(line, '(');
    if (lp == NULL) {
        moor_errmsg_set(errtext, "malformed comparison: %s", line);
        return MOOR_EINVAL;
    }
    size_t tlen = (size_t)(lp - line);
    struct moor_buf key, val;
    char op[8] = "";
    moor_buf_init(&key);
    moor_buf_init(&val);
    Etcdserverpb__Compare *c = NULL;
    int rv = scan_compare(lp + 1, &key, op, sizeof(op), &val);
    if (rv == MOOR_EINVAL) {
        moor_errmsg_set(errtext, "malformed comparison: %s", line);
    }
    if (rv == MOOR_OK) {
        c = mc_arena_alloc(a, sizeof(*c));
        rv = c != NULL ? MOOR_OK : MOOR_ENOMEM;
    }
    if (rv == MOOR_OK) {
        etcdserverpb__compare__init(c);
        rv = compare_result(op, &c->result);
        if (rv != MOOR_OK) {
            /* clientv3.Compare panics here ("Unknown result op"). */
            moor_errmsg_set(errtext, "malformed comparison: %s (unknown op %s)",
                            line, op);
        }
    }
    if (rv == MOOR_OK) {
        rv = set_target(a, c, line, tlen, &val);
        if (rv == MOOR_ENOENT) {
            moor_errmsg_set(errtext,
                            "malformed comparison: %s (unknown target %.*s)",
                            line, (int)tlen, line);
            rv = MOOR_EINVAL;
        } else if (rv == MOOR_ETOOBIG) {
            moor_errmsg_set(errtext, "invalid txn compare request: %s", line);
            rv = MOOR_EINVAL;
        }
    }
    if (rv == MOOR_OK) {
        c->key.data = mc_arena_dup(a, key.ptr, key.len);
        c->key.len = key.len;
        rv = c->key.data != NULL ? MOOR_OK : MOOR_ENOMEM;
    }
    if (rv == MOOR_OK) {
        *out = c;
    }
    moor_buf_close(&key);
    moor_buf_close(&val);
    return rv;
}

int mc_txn_parse_op(struct mc_arena *a, const char *line,
                    Etcdserverpb__RequestOp **out, char *errtext)
{
    char *args[64];
    size_t n;
    int rv = mc_argify(a, line, args, MOOR_ARRAY_LEN(args), &n);
    if (rv == MOOR_ENOMEM) {
        return rv;
    }
    if (rv != MOOR_OK || n < 2) {
        moor_errmsg_set(errtext, "invalid txn compare request: %s", line);
        return MOOR_EINVAL;
    }
    Etcdserverpb__RequestOp *op = mc_arena_alloc(a, sizeof(*op));
    if (op == NULL) {
        return MOOR_ENOMEM;
    }
    etcdserverpb__request_op__init(op);
    char *pos[MC_ARGS_MAX];
    size_t npos;
    char inner[MOOR_ERRMSG_SIZE];
    if (strcmp(args[0], "get") == 0) {
        struct mc_get_opts o = {0};
        struct mc_flagset fs = {mc_get_flags, mc_get_flags_len, &o};
        rv = mc_flags_parse((int)n - 1, args + 1, &fs, 1, pos, &npos, inner);
        if (rv == MOOR_OK) {
            rv = mc_build_get(a, pos, npos, &o, &op->request_range, errtext);
            op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
            if (rv == MOOR_EINVAL) {
                rv = MOOR_ETOOBIG; /* builder's own text */
            }
        }
        mc_opts_close(mc_get_flags, mc_get_flags_len, &o);
    } else if (strcmp(args[0], "put") == 0) {
        struct mc_put_opts o = {0};
        struct mc_flagset fs = {mc_put_flags, mc_put_flags_len, &o};
        rv = mc_flags_parse((int)n - 1, args + 1, &fs, 1, pos, &npos, inner);
        if (rv == MOOR_OK) {
            rv =
                mc_build_put(a, pos, npos, &o, NULL, &op->request_put, errtext);
            op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            if (rv == MOOR_EINVAL) {
                rv = MOOR_ETOOBIG;
            }
        }
        mc_opts_close(mc_put_flags, mc_put_flags_len, &o);
    } else if (strcmp(args[0], "del") == 0) {
        struct mc_del_opts o = {0};
        struct mc_flagset fs = {mc_del_flags, mc_del_flags_len, &o};
        rv = mc_flags_parse((int)n - 1, args + 1, &fs, 1, pos, &npos, inner);
        if (rv == MOOR_OK) {
            rv = mc_build_del(a, pos, npos, &o, &op->request_delete_range,
                              errtext);
            op->request_case =
                ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
            if (rv == MOOR_EINVAL) {
                rv = MOOR_ETOOBIG;
            }
        }
    } else {
        rv = MOOR_EINVAL;
    }
    if (rv == MOOR_ETOOBIG) {
        return MOOR_EINVAL; /* errtext already set by the builder */
    }
    if (rv == MOOR_ENOMEM) {
        return rv;
    }
    if (rv != MOOR_OK) {
        moor_errmsg_set(errtext, "invalid txn request: %s", line);
        return MOOR_EINVAL;
    }
    *out = op;
    return MOOR_OK;
}

/* Reads one section: lines until an empty one. compare selects the
 * compare grammar. Items go to items[0..*n), at most MC_TXN_OPS_MAX. */
static int read_section(struct mc_arena *a, mc_line_fn next_line, void *arg,
                        bool compare, void **items, size_t *n, char *errtext)
{
    struct moor_buf line;
    int rv;
    moor_buf_init(&line);
    *n = 0;
    for (;;) {
        moor_buf_reset(&line);
        rv = next_line(arg, &line);
        if (rv == MOOR_ENOENT) {
            moor_errmsg_set(errtext, "EOF");
            rv = MOOR_EINVAL;
            break;
        }
        if (rv == MOOR_ETOOBIG) {
            moor_errmsg_set(errtext, "line too long (over %d bytes)",
                            MC_LINE_MAX);
            rv = MOOR_EINVAL;
            break;
        }
        if (rv == MOOR_OK) {
            rv = moor_buf_putc(&line, 0);
        }
        if (rv != MOOR_OK) {
            break;
        }
        char *s = (char *)line.ptr;
        while (isspace((unsigned char)*s)) {
            s++;
        }
        size_t len = strlen(s);
        while (len > 0 && isspace((unsigned char)s[len - 1])) {
            s[--len] = 0;
        }
        if (len == 0) {
            rv = MOOR_OK;
            break;
        }
        if (*n == MC_TXN_OPS_MAX) {
            moor_errmsg_set(errtext,
                            "too many lines in one txn section "
                            "(at most %d)",
                            MC_TXN_OPS_MAX);
            rv = MOOR_EINVAL;
            break;
        }
        rv = compare
                 ? mc_txn_parse_compare(
                       a, s, (Etcdserverpb__Compare **)&items[*n], errtext)
                 : mc_txn_parse_op(a, s, (Etcdserverpb__RequestOp **)&items[*n],
                                   errtext);
        if (rv != MOOR_OK) {
            break;
        }
        (*n)++;
    }
    moor_buf_close(&line);
    return rv;
}

int mc_txn_read(struct mc_arena *a, mc_line_fn next_line, void *arg,
                FILE *prompt, Etcdserverpb__TxnRequest *req, char *errtext)
{
    static const char *const prompts[] = {
        "compares:", "success requests (get, put, del):",
        "failure requests (get, put, del):"};
    void **items[3];
    size_t counts[3];
    for (size_t s = 0; s < 3; s++) {
        items[s] = mc_arena_alloc(a, MC_TXN_OPS_MAX * sizeof(void *));
        if (items[s] == NULL) {
            return MOOR_ENOMEM;
        }
        if (prompt != NULL) {
            fprintf(prompt, "%s\n", prompts[s]);
            fflush(prompt);
        }
        int rv = read_section(a, next_line, arg, s == 0, items[s], &counts[s],
                              errtext);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    etcdserverpb__txn_request__init(req);
    req->compare = (Etcdserverpb__Compare **)items[0];
    req->n_compare = counts[0];
    req->success = (Etcdserverpb__RequestOp **)items[1];
    req->n_success = counts[1];
    req->failure = (Etcdserverpb__RequestOp **)items[2];
    req->n_failure = counts[2];
    return MOOR_OK;
}
