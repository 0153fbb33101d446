/*
 * conn.c: moorctl's side of rpc/: clients built from the global flags,
 * blocking unary calls with the command timeout, and etcdctl's wording
 * for failures.
 */
#include <stdarg.h>
#include <stdio.h>

#include "cli_int.h"

int mc_fail(struct mc_ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    fputs("Error: ", c->err);
    va_start(ap, fmt);
    vfprintf(c->err, fmt, ap);
    va_end(ap);
    fputc('\n', c->err);
    fflush(c->err);
    return code;
}

void mc_flush(struct mc_ctx *c, struct moor_buf *buf)
{
    if (buf->len > 0) {
        fwrite(buf->ptr, 1, buf->len, c->out);
    }
    fflush(c->out);
    moor_buf_reset(buf);
}

void mc_pb_free(void *msg)
{
    if (msg != NULL) {
        protobuf_c_message_free_unpacked(msg, &moor_pb_allocator);
    }
}

/* Go's codes.Code String(), which grpc's status error text uses. */
static const char *go_code_name(int status)
{
    static const char *const names[] = {"OK",
                                        "Canceled",
                                        "Unknown",
                                        "InvalidArgument",
                                        "DeadlineExceeded",
                                        "NotFound",
                                        "AlreadyExists",
                                        "PermissionDenied",
                                        "ResourceExhausted",
                                        "FailedPrecondition",
                                        "Aborted",
                                        "OutOfRange",
                                        "Unimplemented",
                                        "Internal",
                                        "Unavailable",
                                        "DataLoss",
                                        "Unauthenticated"};
    if (status >= 0 && (size_t)status < MOOR_ARRAY_LEN(names)) {
        return names[status];
    }
    return "Unknown";
}

void mc_status_text(int status, const char *message, char *errtext)
{
    if (message == NULL) {
        message = "";
    }
    /* clientv3 turns etcd's own errors into their bare text, so etcdctl
     * prints "etcdserver: ..." alone. */
    if (strncmp(message, "etcdserver: ", 12) == 0 ||
        strncmp(message, "mvcc: ", 6) == 0) {
        moor_errmsg_set(errtext, "%s", message);
        return;
    }
    /* A deadline that passed, or no endpoint that answered in time, is
     * what etcdctl reports as its context's error. */
    if (status == RPC_DEADLINE_EXCEEDED ||
        (status == RPC_UNAVAILABLE && message[0] == 0)) {
        moor_errmsg_set(errtext, "context deadline exceeded");
        return;
    }
    if (status == RPC_UNAVAILABLE) {
        moor_errmsg_set(errtext, "context deadline exceeded (%s)", message);
        return;
    }
    moor_errmsg_set(errtext, "rpc error: code = %s desc = %s",
                    go_code_name(status), message);
}

static int loop_ready(struct mc_ctx *c)
{
    if (!c->loop_ready) {
        if (uv_loop_init(&c->loop) != 0) {
            return MOOR_EIO;
        }
        c->loop_ready = true;
    }
    return MOOR_OK;
}

int mc_client_open(struct mc_ctx *c, const char *const *endpoints, size_t n,
                   struct rpc_client **out, char *errtext)
{
    int rv = loop_ready(c);
    if (rv != MOOR_OK) {
        moor_errmsg_set(errtext, "cannot start the event loop");
        return rv;
    }
    struct rpc_client_config cfg = {0};
    cfg.endpoints = endpoints;
    cfg.endpoints_len = n;
    cfg.tls = c->use_tls ? &c->tls : NULL;
    cfg.dial_timeout_ms = c->g.dial_timeout_ms > 0 ? c->g.dial_timeout_ms : 1;
    cfg.max_recv_msg_bytes = MC_RECV_MAX - 1;
    cfg.keepalive_ms = c->g.keepalive_time_ms;
    cfg.keepalive_timeout_ms = c->g.keepalive_timeout_ms;
    char msg[MOOR_ERRMSG_SIZE] = "";
    rv = rpc_client_open(&c->loop, &cfg, out, msg);
    if (rv != MOOR_OK) {
        if (rv == MOOR_EINVAL) {
            moor_errmsg_set(errtext, "bad endpoint in %s%s", endpoints[0],
                            n > 1 ? ",..." : "");
        } else {
            moor_errmsg_set(errtext, "%s",
                            msg[0] != 0 ? msg : moor_strerror(rv));
        }
    }
    return rv;
}

static void closed_cb(void *arg)
{
    *(bool *)arg = true;
}

void mc_client_close(struct mc_ctx *c, struct rpc_client *cl)
{
    if (cl == NULL) {
        return;
    }
    bool closed = false;
    rpc_client_close(cl, closed_cb, &closed);
    /* Bounded: the client ends its calls and closes its handles within a
     * few loop turns; a loop that has nothing left also stops. */
    for (int i = 0; i < 100000 && !closed; i++) {
        if (uv_run(&c->loop, UV_RUN_ONCE) == 0) {
            break;
        }
    }
}

int mc_authenticate(struct mc_ctx *c, struct rpc_client *cl, char **token,
                    char *errtext)
{
    *token = NULL;
    if (c->g.user == NULL) {
        return MOOR_OK;
    }
    /* etcdctl's rules: --password, or else "name:password" in --user (a
     * missing password is prompted for by etcdctl; moorctl asks for it on
     * the command line instead, so scripts never hang on a prompt). */
    char name[256];
    const char *password = c->g.password;
    const char *colon = strchr(c->g.user, ':');
    size_t nlen = strlen(c->g.user);
    if (password == NULL) {
        if (colon == NULL) {
            moor_errmsg_set(errtext,
                            "no password for user %s: give "
                            "--user=name:password or --password",
                            c->g.user);
            return MOOR_EINVAL;
        }
        nlen = (size_t)(colon - c->g.user);
        password = colon + 1;
    }
    if (nlen >= sizeof(name)) {
        moor_errmsg_set(errtext, "user name too long");
        return MOOR_EINVAL;
    }
    memcpy(name, c->g.user, nlen);
    name[nlen] = 0;
    Etcdserverpb__AuthenticateRequest req =
        ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
    req.name = name;
    req.password = (char *)(uintptr_t)password;
    ProtobufCMessage *m = NULL;
    int rv = mc_unary(c, cl, NULL, "/etcdserverpb.Auth/Authenticate", &req.base,
                      &etcdserverpb__authenticate_response__descriptor, &m,
                      NULL, errtext);
    if (rv != MOOR_OK) {
        return rv;
    }
    const char *t = ((Etcdserverpb__AuthenticateResponse *)m)->token;
    *token = moor_strdup(t != NULL ? t : "");
    mc_pb_free(m);
    if (*token == NULL) {
        moor_errmsg_set(errtext, "out of memory");
        return MOOR_ENOMEM;
    }
    return MOOR_OK;
}

int mc_client(struct mc_ctx *c, struct rpc_client **out, char *errtext)
{
    if (c->client == NULL) {
        int rv = mc_client_open(c, (const char *const *)c->g.endpoints,
                                c->g.endpoints_len, &c->client, errtext);
        if (rv == MOOR_OK) {
            rv = mc_authenticate(c, c->client, &c->token, errtext);
        }
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    *out = c->client;
    return MOOR_OK;
}

size_t mc_token_md(const char *token, struct rpc_metadata *md)
{
    if (token == NULL) {
        return 0;
    }
    md->key = "token";
    md->value = token;
    return 1;
}

int mc_unary(struct mc_ctx *c, struct rpc_client *cl, const char *token,
             const char *path, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
             struct moor_buf *raw, char *errtext)
{
    struct moor_buf reqb, respb;
    moor_buf_init(&reqb);
    moor_buf_init(&respb);
    *resp = NULL;
    int rv = moor_pb_pack(req, &reqb);
    if (rv != MOOR_OK) {
        moor_errmsg_set(errtext, "out of memory");
        goto out;
    }
    /* etcdctl's command timeout starts once the client is dialed; ours
     * covers the dial too, so a first call also gets the dial timeout. */
    uint64_t timeout = c->g.command_timeout_ms;
    if (rpc_client_conn_count(cl) == 0) {
        timeout += c->g.dial_timeout_ms;
    }
    char msg[MOOR_ERRMSG_SIZE] = "";
    struct rpc_metadata md;
    size_t md_len = mc_token_md(token, &md);
    rv = rpc_client_unary_sync(cl, path, &md, md_len,
                               moor_slice_make(reqb.ptr, reqb.len), timeout,
                               &respb, msg);
    if (rv < 0) {
        moor_errmsg_set(errtext, "%s", moor_strerror(rv));
        rv = MOOR_EIO;
        goto out;
    }
    if (rv != RPC_OK) {
        mc_status_text(rv, msg, errtext);
        rv = MOOR_EIO;
        goto out;
    }
    rv = moor_pb_unpack(rdesc, respb.ptr, respb.len, MC_RECV_MAX, resp);
    if (rv != MOOR_OK) {
        moor_errmsg_set(errtext, "cannot decode the %s response (%s)", path,
                        moor_strerror(rv));
        rv = MOOR_EIO;
        goto out;
    }
    if (raw != NULL) {
        rv = moor_buf_append(raw, respb.ptr, respb.len);
        if (rv != MOOR_OK) {
            mc_pb_free(*resp);
            *resp = NULL;
            moor_errmsg_set(errtext, "out of memory");
            rv = MOOR_EIO;
        }
    }
out:
    moor_buf_close(&reqb);
    moor_buf_close(&respb);
    return rv;
}

int mc_call(struct mc_ctx *c, const char *path, const void *req,
            const ProtobufCMessageDescriptor *rdesc, void *resp_out)
{
    char e[MOOR_ERRMSG_SIZE];
    struct rpc_client *cl;
    ProtobufCMessage *resp = NULL;
    int rv = mc_client(c, &cl, e);
    if (rv == MOOR_OK) {
        rv = mc_unary(c, cl, c->token, path, req, rdesc, &resp, NULL, e);
    }
    if (rv != MOOR_OK) {
        return mc_fail(c, MC_EXIT_ERROR, "%s", e);
    }
    memcpy(resp_out, &resp, sizeof(resp));
    return MC_EXIT_OK;
}

int mc_emit(struct mc_ctx *c, int print_rv, struct moor_buf *buf)
{
    if (print_rv == MOOR_EINVAL) {
        moor_buf_reset(buf);
        return mc_fail(c, MC_EXIT_USAGE, "%s",
                       mc_print_unsupported_text(c->pr.fmt));
    }
    if (print_rv != MOOR_OK) {
        moor_buf_reset(buf);
        return mc_fail(c, MC_EXIT_ERROR, "%s", moor_strerror(print_rv));
    }
    mc_flush(c, buf);
    return MC_EXIT_OK;
}
