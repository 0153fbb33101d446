/*
 * cmd_watch.c: watch, on one Watch stream.
 *
 * Non-interactive: one watcher from the arguments, events printed as they
 * come, until SIGINT/SIGTERM (exit 0) or the server cancels the watch
 * ("watch was canceled (reason)", then "Error: watch is canceled by the
 * server", exit 1).
 *
 * With an exec command (watch key -- cmd args...), cmd runs once per
 * event, after the event is printed, with ETCD_WATCH_REVISION,
 * ETCD_WATCH_EVENT_TYPE, ETCD_WATCH_KEY and ETCD_WATCH_VALUE in its
 * environment (Go-quoted, as etcdctl sets them); a command that fails ends
 * the watch: "command [...] error (exit status N)", exit 1. Key and range
 * end may also come from ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END.
 *
 * Interactive (-i): lines from stdin, "watch [options] key [range_end]"
 * adds a watcher to the same stream, "progress" asks for a progress
 * notification. Unlike etcdctl, the end of stdin does not end the
 * command: the watchers keep printing until SIGINT/SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_int.h"

#define WO(f) offsetof(struct mc_watch_opts, f)
const struct mc_flag mc_watch_flags[] = {
    {"interactive", 'i', MC_FLAG_BOOL, WO(interactive), "Interactive mode"},
    {"prefix", 0, MC_FLAG_BOOL, WO(prefix),
     "Watch on a prefix if prefix is set"},
    {"rev", 0, MC_FLAG_INT64, WO(rev), "Revision to start watching"},
    {"prev-kv", 0, MC_FLAG_BOOL, WO(prev_kv),
     "get the previous key-value pair "
     "before the event happens"},
    {"progress-notify", 0, MC_FLAG_BOOL, WO(progress_notify),
     "get periodic watch progress notification from server"},
};
const size_t mc_watch_flags_len = MOOR_ARRAY_LEN(mc_watch_flags);

struct watch
{
    struct mc_ctx *c;
    struct rpc_stream *s;
    uv_signal_t sigint, sigterm;
    union
    {
        uv_pipe_t pipe;
        uv_tty_t tty;
    } in;
    bool in_open;
    struct moor_buf line; /* partial input line */
    struct moor_buf out;
    char **exec; /* owned array of borrowed argv strings, NULL-terminated;
                  * NULL: no exec command */
    size_t exec_len;
    bool exec_failed;
    bool done, interrupted, canceled;
    int status;
    char msg[MOOR_ERRMSG_SIZE];
    int print_rv;
};

/* Sends a create request for args/options. errtext on a usage error. */
static int watch_create(struct watch *w, char **args, size_t n,
                        const struct mc_watch_opts *o, char *errtext)
{
    if (n < 1 || n > 2) {
        moor_errmsg_set(errtext, "bad number of arguments");
        return MOOR_EINVAL;
    }
    if (n == 2 && o->prefix) {
        moor_errmsg_set(errtext,
                        "`range_end` and `--prefix` are mutually exclusive");
        return MOOR_EINVAL;
    }
    struct mc_arena a;
    mc_arena_init(&a);
    Etcdserverpb__WatchCreateRequest cr =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    req.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    req.create_request = &cr;
    size_t klen = strlen(args[0]);
    int rv = MOOR_OK;
    if (o->prefix && klen == 0) {
        cr.key.data = (uint8_t *)"";
        cr.key.len = 1;
        cr.range_end.data = (uint8_t *)"";
        cr.range_end.len = 1;
    } else {
        cr.key.data = (uint8_t *)args[0];
        cr.key.len = klen;
        if (n == 2) {
            cr.range_end.data = (uint8_t *)args[1];
            cr.range_end.len = strlen(args[1]);
        } else if (o->prefix) {
            uint8_t *e = mc_arena_alloc(&a, klen + 1);
            if (e == NULL) {
                rv = MOOR_ENOMEM;
            } else {
                cr.range_end.len = mc_prefix_end(cr.key.data, klen, e);
                cr.range_end.data = e;
            }
        }
    }
    cr.start_revision = o->rev;
    cr.prev_kv = o->prev_kv;
    cr.progress_notify = o->progress_notify;
    struct moor_buf b;
    moor_buf_init(&b);
    if (rv == MOOR_OK) {
        rv = moor_pb_pack(&req.base, &b);
    }
    if (rv == MOOR_OK) {
        rv = rpc_stream_send(w->s, moor_slice_make(b.ptr, b.len));
    }
    if (rv != MOOR_OK) {
        moor_errmsg_set(errtext, "cannot send the watch request (%s)",
                        moor_strerror(rv));
    }
    moor_buf_close(&b);
    mc_arena_close(&a);
    return rv;
}

static void watch_progress(struct watch *w)
{
    Etcdserverpb__WatchProgressRequest pr =
        ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    req.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
    req.progress_request = &pr;
    uint8_t b[16];
    size_t n = etcdserverpb__watch_request__pack(&req, b);
    rpc_stream_send(w->s, moor_slice_make(b, n));
}

/* Appends Go's %q of data to b as a NUL-terminated string. */
static int quoted(struct moor_buf *b, const char *name, const void *data,
                  size_t len)
{
    moor_buf_reset(b);
    int rv = moor_buf_printf(b, "%s=", name);
    if (rv == MOOR_OK) {
        rv = mc_goquote_append(b, data, len);
    }
    return rv == MOOR_OK ? moor_buf_putc(b, 0) : rv;
}

/* Runs the exec command for one event and waits for it. */
static int run_exec(struct watch *w, int64_t rev, const Mvccpb__Event *e)
{
    struct mc_ctx *c = w->c;
    static const Mvccpb__KeyValue empty = MVCCPB__KEY_VALUE__INIT;
    const Mvccpb__KeyValue *kv = e->kv != NULL ? e->kv : &empty;
    const char *type =
        e->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? "DELETE" : "PUT";
    struct moor_buf env[4];
    int rv = MOOR_OK;
    for (size_t i = 0; i < 4; i++) {
        moor_buf_init(&env[i]);
    }
    if (moor_buf_printf(&env[0], "ETCD_WATCH_REVISION=%lld", (long long)rev) !=
            MOOR_OK ||
        moor_buf_putc(&env[0], 0) != MOOR_OK ||
        quoted(&env[1], "ETCD_WATCH_EVENT_TYPE", type, strlen(type)) !=
            MOOR_OK ||
        quoted(&env[2], "ETCD_WATCH_KEY", kv->key.data, kv->key.len) !=
            MOOR_OK ||
        quoted(&env[3], "ETCD_WATCH_VALUE", kv->value.data, kv->value.len) !=
            MOOR_OK) {
        rv = MOOR_ENOMEM;
    }
    int status = 0;
    if (rv == MOOR_OK) {
        fflush(c->out);
        fflush(c->err);
        pid_t pid = fork();
        if (pid == 0) {
            for (size_t i = 0; i < 4; i++) {
                putenv((char *)env[i].ptr);
            }
            execvp(w->exec[0], w->exec);
            fprintf(stderr, "exec: \"%s\": %s\n", w->exec[0], strerror(errno));
            _exit(127);
        }
        if (pid < 0 || waitpid(pid, &status, 0) != pid) {
            rv = MOOR_EIO;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            rv = MOOR_EIO;
        }
    }
    if (rv != MOOR_OK) {
        struct moor_buf list;
        moor_buf_init(&list);
        moor_buf_putc(&list, '[');
        for (size_t i = 0; i < w->exec_len; i++) {
            if (i > 0) {
                moor_buf_putc(&list, ' ');
            }
            mc_goquote_append(&list, w->exec[i], strlen(w->exec[i]));
        }
        moor_buf_putc(&list, ']');
        if (WIFSIGNALED(status)) {
            fprintf(c->err, "command %.*s error (signal: %s)\n", (int)list.len,
                    (const char *)list.ptr, strsignal(WTERMSIG(status)));
        } else {
            fprintf(c->err, "command %.*s error (exit status %d)\n",
                    (int)list.len, (const char *)list.ptr,
                    WIFEXITED(status) ? WEXITSTATUS(status) : 1);
        }
        moor_buf_close(&list);
    }
    for (size_t i = 0; i < 4; i++) {
        moor_buf_close(&env[i]);
    }
    return rv;
}

static void watch_stop(struct watch *w)
{
    if (w->s != NULL && !w->done) {
        rpc_stream_cancel(w->s);
    }
}

static void watch_message_cb(struct rpc_stream *s, struct moor_slice msg,
                             void *arg)
{
    struct watch *w = arg;
    struct mc_ctx *c = w->c;
    (void)s;
    ProtobufCMessage *m = NULL;
    if (moor_pb_unpack(&etcdserverpb__watch_response__descriptor, msg.ptr,
                       msg.len, MC_RECV_MAX, &m) != MOOR_OK) {
        return;
    }
    Etcdserverpb__WatchResponse *r = (void *)m;
    /* clientv3 keeps the "created" answer to itself. */
    if (r->created && !r->canceled) {
        mc_pb_free(m);
        return;
    }
    if (r->canceled) {
        const char *why = r->compact_revision != 0
                              ? "etcdserver: mvcc: required revision has been "
                                "compacted"
                              : r->cancel_reason;
        fprintf(c->err, "watch was canceled (%s)\n", why);
        fflush(c->err);
        w->canceled = true;
    }
    /* A response with no events that is neither created nor canceled is a
     * progress notification. */
    if (!r->canceled && r->n_events == 0 && r->compact_revision == 0) {
        fprintf(c->out, "progress notify: %lld\n",
                (long long)(r->header != NULL ? r->header->revision : 0));
    }
    if (w->print_rv == MOOR_OK) {
        w->print_rv = mc_print_watch(&w->out, &c->pr, r);
        mc_flush(c, &w->out);
    }
    for (size_t i = 0; w->exec != NULL && !w->exec_failed && i < r->n_events;
         i++) {
        if (run_exec(w, r->header != NULL ? r->header->revision : 0,
                     r->events[i]) != MOOR_OK) {
            w->exec_failed = true;
        }
    }
    if (w->exec_failed) {
        watch_stop(w);
    }
    if (w->print_rv != MOOR_OK || w->canceled) {
        watch_stop(w);
    }
    mc_pb_free(m);
}

static void watch_done_cb(struct rpc_stream *s, int status, const char *message,
                          void *arg)
{
    struct watch *w = arg;
    (void)s;
    w->done = true;
    w->status = status;
    moor_errmsg_set(w->msg, "%s", message);
    w->s = NULL;
}

static void watch_signal_cb(uv_signal_t *h, int signum)
{
    struct watch *w = h->data;
    (void)signum;
    w->interrupted = true;
    watch_stop(w);
}

/* One line of watch -i. */
static void watch_line(struct watch *w, char *line)
{
    struct mc_ctx *c = w->c;
    if (w->s == NULL || w->done) {
        return; /* the stream has ended: nothing more to ask */
    }
    struct mc_arena a;
    char *args[64];
    size_t n = 0;
    mc_arena_init(&a);
    int rv = mc_argify(&a, line, args, MOOR_ARRAY_LEN(args), &n);
    if (rv != MOOR_OK || n < 1) {
        if (n > 0 || rv != MOOR_OK) {
            fprintf(c->err,
                    "Invalid command: %s (watch and progress "
                    "supported)\n",
                    line);
        }
    } else if (strcmp(args[0], "progress") == 0) {
        watch_progress(w);
    } else if (strcmp(args[0], "watch") == 0) {
        struct mc_watch_opts o = {0};
        struct mc_flagset fs = {mc_watch_flags, mc_watch_flags_len, &o};
        char *pos[MC_ARGS_MAX];
        size_t npos;
        char e[MOOR_ERRMSG_SIZE];
        rv = mc_flags_parse((int)n - 1, args + 1, &fs, 1, pos, &npos, e);
        if (rv == MOOR_OK && npos < 1) {
            moor_errmsg_set(e, "watch requires at least one argument");
            rv = MOOR_EINVAL;
        }
        if (rv == MOOR_OK) {
            rv = watch_create(w, pos, npos, &o, e);
        }
        if (rv != MOOR_OK) {
            fprintf(c->err, "Invalid command: %s (%s)\n", line, e);
        }
    } else {
        fprintf(c->err, "Invalid command: %s (watch and progress supported)\n",
                line);
    }
    fflush(c->err);
    mc_arena_close(&a);
}

/* Splits buffered input into lines; keeps the partial last one. */
static void watch_feed(struct watch *w, const char *data, size_t len, bool eof)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (w->line.len < MC_LINE_MAX) {
                moor_buf_putc(&w->line, (uint8_t)data[i]);
            }
            continue;
        }
        if (moor_buf_putc(&w->line, 0) == MOOR_OK) {
            watch_line(w, (char *)w->line.ptr);
        }
        moor_buf_reset(&w->line);
    }
    if (eof && w->line.len > 0 && moor_buf_putc(&w->line, 0) == MOOR_OK) {
        watch_line(w, (char *)w->line.ptr);
        moor_buf_reset(&w->line);
    }
}

static void in_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char space[65536];
    (void)h;
    (void)suggested;
    buf->base = space;
    buf->len = sizeof(space);
}

static void in_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct watch *w = st->data;
    if (nread > 0) {
        watch_feed(w, buf->base, (size_t)nread, false);
    } else if (nread < 0) {
        watch_feed(w, NULL, 0, true);
        uv_read_stop(st);
    }
}

/* Starts reading stdin for -i: a tty or a pipe through the loop; a
 * regular file is read whole, now. */
static int watch_open_input(struct watch *w)
{
    struct mc_ctx *c = w->c;
    int fd = fileno(c->in);
    uv_handle_type t = uv_guess_handle(fd);
    int rv;
    if (t == UV_TTY) {
        rv = uv_tty_init(&c->loop, &w->in.tty, fd, 1);
    } else if (t == UV_NAMED_PIPE) {
        rv = uv_pipe_init(&c->loop, &w->in.pipe, 0);
        if (rv == 0) {
            w->in_open = true;
            rv = uv_pipe_open(&w->in.pipe, fd);
        }
    } else {
        char tmp[65536];
        size_t n;
        while ((n = fread(tmp, 1, sizeof(tmp), c->in)) > 0) {
            watch_feed(w, tmp, n, false);
        }
        watch_feed(w, NULL, 0, true);
        return MOOR_OK;
    }
    if (rv != 0) {
        return MOOR_EIO;
    }
    w->in_open = true;
    w->in.pipe.data = w;
    return uv_read_start((uv_stream_t *)&w->in.pipe, in_alloc_cb, in_read_cb) ==
                   0
               ? MOOR_OK
               : MOOR_EIO;
}

/* The watch's arguments: key [range_end] before "--" (or from
 * ETCDCTL_WATCH_KEY / ETCDCTL_WATCH_RANGE_END), the exec command after it.
 * Rewrites *args and *n to the key arguments (env_args holds them when
 * they come from the environment). Returns MC_EXIT_OK or a usage error,
 * printed. */
static int watch_args(struct mc_ctx *c, const struct mc_watch_opts *o,
                      char ***args, size_t *n, char **env_args, char ***exec,
                      size_t *exec_len)
{
    *exec = NULL;
    *exec_len = 0;
    if (o->interactive) {
        return *n > 0 ? mc_fail(c, MC_EXIT_USAGE, "too many arguments")
                      : MC_EXIT_OK;
    }
    if (c->sep != SIZE_MAX) {
        /* watch [key [range_end]] -- command args... */
        if (c->sep == *n) {
            return mc_fail(c, MC_EXIT_USAGE,
                           "bad number of arguments (found "
                           "separator --, but no commands)");
        }
        *exec = *args + c->sep;
        *exec_len = *n - c->sep;
        *n = c->sep;
    }
    const char *env_key = getenv("ETCDCTL_WATCH_KEY");
    if (env_key != NULL) {
        if (*n > 0) {
            return mc_fail(c, MC_EXIT_USAGE,
                           "bad number of arguments (found "
                           "conflicting environment key)");
        }
        const char *env_end = getenv("ETCDCTL_WATCH_RANGE_END");
        env_args[0] = (char *)(uintptr_t)env_key;
        env_args[1] = (char *)(uintptr_t)env_end;
        *args = env_args;
        *n = env_end != NULL ? 2 : 1;
    }
    if (*n < 1 || *n > 2) {
        return mc_fail(c, MC_EXIT_USAGE, "bad number of arguments");
    }
    return MC_EXIT_OK;
}

int mc_cmd_watch(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_watch_opts *o = opts;
    char e[MOOR_ERRMSG_SIZE];
    char **exec;
    size_t exec_len;
    char *env_args[2];
    int argc_code = watch_args(c, o, &args, &n, env_args, &exec, &exec_len);
    if (argc_code != MC_EXIT_OK) {
        return argc_code;
    }
    if (c->pr.fmt == MC_FMT_TABLE) {
        return mc_fail(c, MC_EXIT_USAGE, "%s",
                       mc_print_unsupported_text(c->pr.fmt));
    }
    struct rpc_client *cl;
    if (mc_client(c, &cl, e) != MOOR_OK) {
        return mc_fail(c, MC_EXIT_ERROR, "%s", e);
    }
    struct watch *w = moor_calloc(1, sizeof(*w));
    if (w == NULL) {
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    w->c = c;
    if (exec != NULL) {
        /* execvp wants the list NULL-terminated. */
        w->exec = moor_calloc(exec_len + 1, sizeof(char *));
        if (w->exec == NULL) {
            moor_free(w);
            return mc_fail(c, MC_EXIT_ERROR, "out of memory");
        }
        memcpy(w->exec, exec, exec_len * sizeof(char *));
        w->exec_len = exec_len;
    }
    moor_buf_init(&w->line);
    moor_buf_init(&w->out);
    uv_signal_init(&c->loop, &w->sigint);
    uv_signal_init(&c->loop, &w->sigterm);
    w->sigint.data = w->sigterm.data = w;
    uv_signal_start(&w->sigint, watch_signal_cb, SIGINT);
    uv_signal_start(&w->sigterm, watch_signal_cb, SIGTERM);
    static const struct rpc_stream_ops ops = {watch_message_cb, NULL,
                                              watch_done_cb};
    int code = MC_EXIT_OK;
    struct rpc_metadata md;
    size_t md_len = mc_token_md(c->token, &md);
    int rv = rpc_stream_start(cl, "/etcdserverpb.Watch/Watch", &md, md_len, 0,
                              &ops, w, &w->s);
    if (rv != MOOR_OK) {
        code = mc_fail(c, MC_EXIT_ERROR, "%s", moor_strerror(rv));
        goto out;
    }
    rv = o->interactive ? watch_open_input(w) : watch_create(w, args, n, o, e);
    if (rv != MOOR_OK) {
        code = mc_fail(c, rv == MOOR_EINVAL ? MC_EXIT_USAGE : MC_EXIT_ERROR,
                       "%s", o->interactive ? "cannot read stdin" : e);
        watch_stop(w);
    }
    while (!w->done) {
        uv_run(&c->loop, UV_RUN_ONCE);
    }
    if (code != MC_EXIT_OK) {
        goto out;
    }
    if (w->print_rv != MOOR_OK) {
        code = mc_emit(c, w->print_rv, &w->out);
    } else if (w->exec_failed) {
        code = MC_EXIT_ERROR;
    } else if (w->canceled) {
        code = mc_fail(c, MC_EXIT_ERROR, "watch is canceled by the server");
    } else if (!w->interrupted) {
        mc_status_text(w->status, w->msg, e);
        code = mc_fail(c, MC_EXIT_ERROR, "%s", e);
    }
out:
    if (w->in_open) {
        uv_close((uv_handle_t *)&w->in.pipe, NULL);
    }
    uv_close((uv_handle_t *)&w->sigint, NULL);
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    moor_buf_close(&w->line);
    moor_buf_close(&w->out);
    moor_free(w->exec);
    moor_free(w);
    return code;
}
