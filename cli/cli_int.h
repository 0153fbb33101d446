/*
 * cli/cli_int.h: what moorctl's files share: the run context, the request
 * builders of get/put/del (used by the commands and by txn's ops), the
 * connection helpers and the command table.
 */
#ifndef MOOR_CLI_INT_H
#define MOOR_CLI_INT_H

#include <uv.h>

#include "cli/cli.h"
#include "rpc/rpc.h"

/* ------------------------------------------------------------------------
 * get / put / del options and request builders
 * ---------------------------------------------------------------------- */
struct mc_get_opts
{
    bool prefix, from_key, keys_only, count_only, print_value_only;
    int64_t limit, rev;
    char *consistency, *order, *sort_by; /* owned; NULL: default */
};
struct mc_put_opts
{
    char *lease; /* hex; owned */
    bool prev_kv, ignore_value, ignore_lease;
};
struct mc_del_opts
{
    bool prefix, from_key, prev_kv;
};

extern const struct mc_flag mc_get_flags[];
extern const size_t mc_get_flags_len;
extern const struct mc_flag mc_put_flags[];
extern const size_t mc_put_flags_len;
extern const struct mc_flag mc_del_flags[];
extern const size_t mc_del_flags_len;

/* Build the request from positional args and options, in arena. Return
 * MOOR_EINVAL with etcdctl's errtext for bad usage. value (put) is the
 * value when the caller read it from stdin, else NULL (args[1] is used). */
int mc_build_get(struct mc_arena *a, char **args, size_t n,
                 const struct mc_get_opts *o, Etcdserverpb__RangeRequest **out,
                 char *errtext);
int mc_build_put(struct mc_arena *a, char **args, size_t n,
                 const struct mc_put_opts *o, const struct moor_slice *value,
                 Etcdserverpb__PutRequest **out, char *errtext);
int mc_build_del(struct mc_arena *a, char **args, size_t n,
                 const struct mc_del_opts *o,
                 Etcdserverpb__DeleteRangeRequest **out, char *errtext);

/* Parses a hex id as Go's strconv.ParseInt(s, 16, 64) / ParseUint. */
int mc_parse_hex_i64(const char *s, int64_t *out);
int mc_parse_hex_u64(const char *s, uint64_t *out);

/* Printers of the member changes (add/remove/update/promote: simple_line
 * in the simple format, the response's header, member and members
 * otherwise) and of responses that carry only a header (move-leader). */
int mc_print_member_change(struct moor_buf *out, const struct mc_print *p,
                           const char *simple_line,
                           const Etcdserverpb__ResponseHeader *h,
                           const Etcdserverpb__Member *member,
                           Etcdserverpb__Member *const *members, size_t n);
int mc_print_header_only(struct moor_buf *out, const struct mc_print *p,
                         const char *simple_line,
                         const Etcdserverpb__ResponseHeader *h);

/* ------------------------------------------------------------------------
 * Run context
 * ---------------------------------------------------------------------- */
struct mc_ctx
{
    struct mc_global g;
    struct mc_print pr;
    FILE *in, *out, *err;
    uv_loop_t loop;
    bool loop_ready;
    struct rpc_client *client; /* to g.endpoints, opened on first use */
    char *token;               /* client's auth token (owned), or NULL */
    size_t sep; /* first positional argument after "--", or SIZE_MAX */
    struct rpc_tls_config tls;
    bool use_tls; /* some TLS flag was given */
};

/* Prints "Error: <text>" to ctx->err and returns code. */
int mc_fail(struct mc_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes buf to ctx->out (and resets it). */
void mc_flush(struct mc_ctx *c, struct moor_buf *buf);

/* ------------------------------------------------------------------------
 * Connections (conn.c)
 * ---------------------------------------------------------------------- */

/* Opens a client to endpoints[0..n) with the context's TLS and timeouts.
 * Returns owned (mc_client_close) in *out. MOOR_ETLS/MOOR_EINVAL with
 * errtext. */
int mc_client_open(struct mc_ctx *c, const char *const *endpoints, size_t n,
                   struct rpc_client **out, char *errtext);
/* Closes a client and runs the loop until it is freed. */
void mc_client_close(struct mc_ctx *c, struct rpc_client *cl);

/* The context's client to all --endpoints (opened on first use). */
int mc_client(struct mc_ctx *c, struct rpc_client **out, char *errtext);

/* With --user: Authenticate on cl and return the token (owned, moor_free)
 * in *token; NULL without --user. MOOR_EINVAL (no password given) or
 * MOOR_EIO (refused) with errtext. */
int mc_authenticate(struct mc_ctx *c, struct rpc_client *cl, char **token,
                    char *errtext);

/* Fills md with the "token" metadata entry and returns 1, or returns 0
 * when token is NULL. md borrows token. */
size_t mc_token_md(const char *token, struct rpc_metadata *md);

/* One unary call: packs req, calls path on cl with the command timeout
 * (and the auth token as metadata when token is not NULL),
 * unpacks the response as rdesc. On MOOR_OK *resp returns owned (free with
 * protobuf_c_message_free_unpacked(resp, &moor_pb_allocator)) and raw (if
 * not NULL) holds the response bytes. Otherwise errtext holds etcdctl's
 * text for the failure ("etcdserver: ...", "context deadline exceeded",
 * "rpc error: code = ... desc = ...") and the result is MOOR_EIO. */
int mc_unary(struct mc_ctx *c, struct rpc_client *cl, const char *token,
             const char *path, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
             struct moor_buf *raw, char *errtext);

/* etcdctl's text for a failed call: status and the server's message. */
void mc_status_text(int status, const char *message, char *errtext);

/* Frees an unpacked message (NULL is fine). */
void mc_pb_free(void *msg);

/* A unary call on the context's client; on failure prints etcdctl's
 * "Error: ..." line and returns MC_EXIT_ERROR. On MC_EXIT_OK the response
 * (a pointer to the message type of rdesc, resp_out points to it) returns
 * owned (mc_pb_free). */
int mc_call(struct mc_ctx *c, const char *path, const void *req,
            const ProtobufCMessageDescriptor *rdesc, void *resp_out);

/* Finishes a command's output: print_rv is a printer's result. Writes buf
 * and returns MC_EXIT_OK, or prints the unsupported-format error (exit 2)
 * or the allocation failure (exit 1). */
int mc_emit(struct mc_ctx *c, int print_rv, struct moor_buf *buf);

/* ------------------------------------------------------------------------
 * Commands
 * ---------------------------------------------------------------------- */
struct mc_cmd
{
    const char *name;
    const char *sub; /* NULL: no subcommand */
    const char *usage;
    const char *help;
    const struct mc_flag *flags; /* NULL: none; length from its _len */
    size_t opts_size; /* bytes of the options struct the flags point into */
    int (*run)(struct mc_ctx *c, void *opts, char **args, size_t n);
    /* Sets the options' non-zero defaults before parsing; NULL: none. */
    void (*defaults)(void *opts);
};

int mc_cmd_get(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_put(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_del(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_txn(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_compaction(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_watch(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_lease_grant(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_lease_revoke(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_lease_ttl(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_lease_list(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_lease_keepalive(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_member_list(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_member_add(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_member_remove(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_member_update(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_member_promote(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_ep_health(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_ep_status(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_ep_hashkv(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_alarm_list(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_alarm_disarm(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_defrag(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_move_leader(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_auth_enable(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_auth_disable(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_user_add(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_user_delete(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_user_get(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_user_list(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_user_passwd(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_user_grant_role(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_user_revoke_role(struct mc_ctx *c, void *opts, char **args,
                            size_t n);
int mc_cmd_role_add(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_role_delete(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_role_get(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_role_list(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_role_grant(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_role_revoke(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_snapshot_save(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_snapshot_status(struct mc_ctx *c, void *opts, char **args, size_t n);
int mc_cmd_snapshot_restore(struct mc_ctx *c, void *opts, char **args,
                            size_t n);

/* Whether path starts like an etcd (bbolt) database: the magic 0xED0CDAED
 * at offset 16 of page 0. */
bool mc_is_bbolt(const char *path);

/* Option structs and flag tables of the commands outside kv. */
struct mc_txn_opts
{
    bool interactive;
};
struct mc_compact_opts
{
    bool physical;
};
struct mc_watch_opts
{
    bool interactive, prefix, prev_kv, progress_notify;
    int64_t rev;
};
struct mc_lease_opts
{
    bool keys, once;
};
struct mc_member_opts
{
    char *peer_urls; /* owned */
    bool learner;
};
struct mc_ep_opts
{
    bool cluster;
    int64_t rev;
};

struct mc_auth_opts
{
    char *new_user_password; /* owned */
    bool interactive;        /* default true: no password on stdin */
    bool detail;
    bool prefix, from_key;
};
void mc_auth_opts_defaults(void *opts);
extern const struct mc_flag mc_auth_flags[];
extern const size_t mc_auth_flags_len;

/* snapshot restore; NULL strings take etcdctl's defaults. */
struct mc_restore_opts
{
    char *data_dir, *name, *initial_cluster, *token, *advertise; /* owned */
    bool skip_hash_check;
};
extern const struct mc_flag mc_restore_flags[];
extern const size_t mc_restore_flags_len;

extern const struct mc_flag mc_txn_flags[];
extern const size_t mc_txn_flags_len;
extern const struct mc_flag mc_compact_flags[];
extern const size_t mc_compact_flags_len;
extern const struct mc_flag mc_watch_flags[];
extern const size_t mc_watch_flags_len;
extern const struct mc_flag mc_lease_flags[];
extern const size_t mc_lease_flags_len;
extern const struct mc_flag mc_member_flags[];
extern const size_t mc_member_flags_len;
extern const struct mc_flag mc_ep_flags[];
extern const size_t mc_ep_flags_len;

/* Every option struct's owned strings are freed generically: the flags of
 * type MC_FLAG_STRING in its table. */
void mc_opts_close(const struct mc_flag *flags, size_t len, void *opts);

#endif /* MOOR_CLI_INT_H */
