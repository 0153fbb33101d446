/*
 * cli/cli.h: moorctl, the etcdctl-compatible command-line client, as a
 * library (cli/main.c is only a call to mc_main).
 *
 * What it is: etcdctl v3's commands, flags, environment variables, output
 * formats and error texts, spoken over rpc/ (gRPC) with proto/'s etcd v3
 * messages, so the same command line works against moord and real etcd.
 * Commands: get, put, del, txn, compaction, watch, lease {grant, revoke,
 * timetolive, list, keep-alive}, member {list, add, remove, update,
 * promote}, endpoint {health, status, hashkv}, alarm {list, disarm},
 * defrag, move-leader, snapshot save, snapshot status and snapshot
 * restore (of moor's snapshot files), auth {enable, disable}, user {add,
 * delete, get, list, passwd, grant-role, revoke-role}, role {add, delete, get,
 * list, grant-permission, revoke-permission}, version. docs/moorctl.md is the
 * operator's page.
 *
 * What it is not (yet): lock/elect, make-mirror, check perf, the
 * --discovery-srv flags.
 *
 * Exit status: 0 on success, 1 when the server (or the connection) failed
 * the request, 2 on bad usage or bad input (etcdctl itself exits 128 for
 * some usage errors and 1 for others; moorctl uses 2 for every one of
 * them). Error texts on stderr are etcdctl's: "Error: <text>".
 *
 * The pure pieces below (flag parsing, encodings, the txn grammar and the
 * output printers) are exposed for the unit tests; they do no I/O. Printers
 * append to a struct moor_buf, so a test compares bytes.
 *
 * Threads: one. Ownership: every function borrows its arguments unless it
 * says otherwise. Signals and processes: while watch, lease keep-alive and
 * snapshot save run, SIGINT and SIGTERM are handled on the loop (they end
 * the command cleanly); watch's exec form forks one child per event and
 * waits for it.
 */
#ifndef MOOR_CLI_H
#define MOOR_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"
#include "proto/proto.h"

/* Exit statuses. */
#define MC_EXIT_OK 0
#define MC_EXIT_ERROR 1 /* the server or the connection failed the request */
#define MC_EXIT_USAGE 2 /* bad flags, arguments or input */

/* Bounds. */
#define MC_ENDPOINTS_MAX 16
#define MC_ARGS_MAX 256               /* positional arguments of one command */
#define MC_LINE_MAX (64 * 1024)       /* one line of txn or watch -i input */
#define MC_STDIN_MAX (64u << 20)      /* a value read from stdin by put */
#define MC_TXN_OPS_MAX 4096           /* compares, or ops of one branch */
#define MC_RECV_MAX ((size_t)2 << 30) /* a response message: etcd clients' */

/* Runs moorctl with argv (argv[0] is the program name) and returns the
 * exit status. Reads the environment (MOORCTL_*, then ETCDCTL_*) for the
 * global flags; writes results to out, errors to err, reads stdin from in
 * (txn, put without a value, watch -i). */
int mc_main(int argc, char **argv, FILE *in, FILE *out, FILE *err);

/* ------------------------------------------------------------------------
 * Global options (etcdctl's persistent flags)
 * ---------------------------------------------------------------------- */
enum mc_format {
    MC_FMT_SIMPLE = 0,
    MC_FMT_JSON,
    MC_FMT_FIELDS,
    MC_FMT_TABLE,
    MC_FMT_PROTOBUF,
};

struct mc_global
{
    char *endpoints[MC_ENDPOINTS_MAX]; /* owned (moor_free) */
    size_t endpoints_len;
    bool endpoints_set; /* the next --endpoints replaces, later ones add */
    uint64_t dial_timeout_ms;
    uint64_t command_timeout_ms;
    uint64_t keepalive_time_ms;
    uint64_t keepalive_timeout_ms;
    char *cacert, *cert, *key; /* owned, NULL when unset */
    bool insecure_skip_tls_verify;
    bool insecure_transport;
    bool insecure_discovery;
    char *user, *password; /* owned, NULL when unset */
    char *discovery_srv, *discovery_srv_name;
    char *write_out; /* owned; checked by mc_global_format */
    bool hex;
    bool debug;
    bool help;
};

/* Sets etcdctl's defaults: endpoint 127.0.0.1:2379, dial 2 s, command 5 s,
 * keepalive 2 s / 6 s, -w simple, insecure transport. MOOR_ENOMEM. */
int mc_global_init(struct mc_global *g);
void mc_global_close(struct mc_global *g);

/* The output format named by g->write_out. MOOR_EINVAL for another name. */
int mc_global_format(const struct mc_global *g, enum mc_format *out);

/* Applies the environment: for each global flag --some-flag, the variable
 * MOORCTL_SOME_FLAG, or else ETCDCTL_SOME_FLAG, sets it as the flag would.
 * getenv_fn is getenv in moorctl, a fake in tests. On a bad value returns
 * MOOR_EINVAL with errtext (MOOR_ERRMSG_SIZE bytes) saying which. */
int mc_global_from_env(struct mc_global *g,
                       const char *(*getenv_fn)(const char *name, void *arg),
                       void *arg, char *errtext);

/* ------------------------------------------------------------------------
 * Flag parsing (pflag's rules, which etcdctl uses): "--name=value",
 * "--name value", "--flag" for booleans ("--flag=false" to clear),
 * "-x value", "-xvalue", "-x=value", "--" ends the flags; flags may come
 * anywhere among the positional arguments.
 * ---------------------------------------------------------------------- */
enum mc_flag_type {
    MC_FLAG_BOOL,
    MC_FLAG_STRING,   /* char * (owned by the options, moor_free) */
    MC_FLAG_INT64,    /* int64_t */
    MC_FLAG_DURATION, /* uint64_t milliseconds, Go syntax ("2s", "1m30s") */
    MC_FLAG_ENDPOINTS /* struct mc_global's endpoint list */
};

struct mc_flag
{
    const char *name; /* without dashes */
    char shorthand;   /* 0: none */
    enum mc_flag_type type;
    size_t offset; /* of the destination in the options struct */
    const char *help;
};

/* One table of flags and the struct its offsets point into. */
struct mc_flagset
{
    const struct mc_flag *flags;
    size_t len;
    void *base;
};

/* Parses argv[0..argc) against sets[0..nsets) (the first set that knows a
 * flag wins). Positional arguments are collected in order into pos (at
 * most MC_ARGS_MAX; returns borrowed pointers into argv). Errors
 * (MOOR_EINVAL, errtext in pflag's words: "unknown flag: --x", "flag
 * needs an argument: --limit", "invalid argument ..."), MOOR_ETOOBIG past
 * MC_ARGS_MAX arguments, MOOR_ENOMEM. */
int mc_flags_parse(int argc, char **argv, const struct mc_flagset *sets,
                   size_t nsets, char **pos, size_t *npos, char *errtext);

/* The same, also reporting in *sep the index in pos of the first argument
 * that came after "--" (SIZE_MAX when there was no "--"): watch's
 * exec-command form needs to tell them apart. */
int mc_flags_parse_sep(int argc, char **argv, const struct mc_flagset *sets,
                       size_t nsets, char **pos, size_t *npos, size_t *sep,
                       char *errtext);

/* Sets one flag from text (the environment uses this). Errors as above. */
int mc_flag_set(const struct mc_flag *f, void *base, const char *value,
                char *errtext);

/* The global flag table (its base is a struct mc_global). */
extern const struct mc_flag mc_global_flags[];
extern const size_t mc_global_flags_len;

/* ------------------------------------------------------------------------
 * Encodings
 * ---------------------------------------------------------------------- */

/* Appends standard base64 (with padding) of data[0..len). */
int mc_base64_append(struct moor_buf *out, const void *data, size_t len);
/* Appends lower-case hex. */
int mc_hex_append(struct moor_buf *out, const void *data, size_t len);
/* Appends Go's %q of the bytes: a double-quoted string with Go escapes
 * (\a \b \f \n \r \t \v \\ \", \xNN for bytes that are not valid UTF-8,
 * \u/\U for non-printable runes). */
int mc_goquote_append(struct moor_buf *out, const void *data, size_t len);
/* Appends a JSON string literal (Go's encoding/json escaping: <, >, & as
 * \u003c..., invalid UTF-8 as \ufffd). */
int mc_json_string_append(struct moor_buf *out, const void *data, size_t len);

/* Parses a Go duration ("300ms", "2s", "1m30s", "1.5h", "0") into
 * milliseconds (sub-millisecond parts round down). MOOR_EINVAL. */
int mc_duration_parse(const char *s, uint64_t *ms);
/* Appends a Go time.Duration's String() of ns nanoseconds ("1.656901ms",
 * "812.4µs", "2s", "1m30s"). */
int mc_duration_format(struct moor_buf *out, uint64_t ns);
/* Appends go-humanize's Bytes(n): SI units, "20 kB", "1.5 MB", "9 B". */
int mc_humanize_bytes(struct moor_buf *out, uint64_t n);

/* Decodes a Go quoted string (double quotes with escapes, or backquotes)
 * at s; on success *consumed is the number of characters used and the
 * decoded bytes are appended to out. MOOR_EINVAL when s does not start
 * with a valid quoted string. */
int mc_unquote(const char *s, struct moor_buf *out, size_t *consumed);

/* The end of the range holding every key with prefix key[0..len): the key
 * with its last byte below 0xff incremented and the rest dropped; "\0"
 * (len 1) when every byte is 0xff or len is 0. Writes into end (len bytes
 * at least, 1 when len is 0) and returns its length. */
size_t mc_prefix_end(const uint8_t *key, size_t len, uint8_t *end);

/* ------------------------------------------------------------------------
 * An arena: every request message moorctl builds lives in one, freed at
 * once. Allocations are 16-byte aligned.
 * ---------------------------------------------------------------------- */
struct mc_arena
{
    struct mc_arena_block *head;
};

void mc_arena_init(struct mc_arena *a);
void mc_arena_close(struct mc_arena *a);
/* Returns zeroed memory valid until mc_arena_close, or NULL (ENOMEM). */
void *mc_arena_alloc(struct mc_arena *a, size_t size);
/* A copy of len bytes (plus a NUL), or NULL. */
void *mc_arena_dup(struct mc_arena *a, const void *data, size_t len);

/* ------------------------------------------------------------------------
 * txn: etcdctl's grammar, read from text. Three sections separated by an
 * empty line: compares, success ops, failure ops, each section ended by
 * an empty line (a missing final empty line is an "EOF" error, as in
 * etcdctl). A compare: target("key") op "value", target one of ver,
 * version, c, create, m, mod, val, value, lease (hex), op one of = == !=
 * < >. An op: a put, get or del command line with its flags (quoted
 * arguments allowed: "a b", 'a b').
 * ---------------------------------------------------------------------- */

/* Splits line into arguments as etcdctl's Argify does: whitespace
 * separates; "..." is a Go quoted string, '...' is taken verbatim. The
 * arguments are allocated in arena; at most max. MOOR_EINVAL on a bad
 * quote, MOOR_ETOOBIG past max, MOOR_ENOMEM. */
int mc_argify(struct mc_arena *a, const char *line, char **args, size_t max,
              size_t *n);

/* Parses one compare line into *out (allocated in arena). MOOR_EINVAL with
 * etcdctl's errtext ("malformed comparison: ..."). */
int mc_txn_parse_compare(struct mc_arena *a, const char *line,
                         Etcdserverpb__Compare **out, char *errtext);

/* Parses one request line (put/get/del with flags) into *out. MOOR_EINVAL
 * with errtext ("invalid txn request: ..."). */
int mc_txn_parse_op(struct mc_arena *a, const char *line,
                    Etcdserverpb__RequestOp **out, char *errtext);

/* Line source for mc_txn_read: returns the next line (without the
 * newline) into line and MOOR_OK, MOOR_ENOENT at end of input, MOOR_ETOOBIG
 * for a line over MC_LINE_MAX. */
typedef int (*mc_line_fn)(void *arg, struct moor_buf *line);

/* Reads a whole txn from next_line into req (allocated in arena). When
 * prompt is not NULL, the interactive prompts ("compares:" ...) are
 * appended to it before each section. MOOR_EINVAL with errtext ("EOF",
 * "malformed comparison: ...", ...). */
int mc_txn_read(struct mc_arena *a, mc_line_fn next_line, void *arg,
                FILE *prompt, Etcdserverpb__TxnRequest *req, char *errtext);

/* ------------------------------------------------------------------------
 * Printers: etcdctl 3.4's output for each response in each format.
 * They append to out and return MOOR_OK, MOOR_ENOMEM, or MOOR_EINVAL when
 * the format is not supported for that response (etcdctl's text for it:
 * mc_print_unsupported_text).
 * ---------------------------------------------------------------------- */
struct mc_print
{
    enum mc_format fmt;
    bool hex;        /* simple: keys and values as \x.. hex */
    bool value_only; /* simple: values only (get --print-value-only) */
};

const char *mc_print_unsupported_text(enum mc_format fmt);

int mc_print_get(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__RangeResponse *r);
int mc_print_put(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__PutResponse *r);
int mc_print_del(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__DeleteRangeResponse *r);
int mc_print_txn(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__TxnResponse *r);
/* One watch response as clientv3 delivers it (not the created one). */
int mc_print_watch(struct moor_buf *out, const struct mc_print *p,
                   const Etcdserverpb__WatchResponse *r);
int mc_print_compaction(struct moor_buf *out, const struct mc_print *p,
                        int64_t rev, const Etcdserverpb__CompactionResponse *r);
int mc_print_lease_grant(struct moor_buf *out, const struct mc_print *p,
                         const Etcdserverpb__LeaseGrantResponse *r);
int mc_print_lease_revoke(struct moor_buf *out, const struct mc_print *p,
                          int64_t id,
                          const Etcdserverpb__LeaseRevokeResponse *r);
int mc_print_lease_ttl(struct moor_buf *out, const struct mc_print *p,
                       bool keys,
                       const Etcdserverpb__LeaseTimeToLiveResponse *r);
int mc_print_lease_list(struct moor_buf *out, const struct mc_print *p,
                        const Etcdserverpb__LeaseLeasesResponse *r);
int mc_print_keepalive(struct moor_buf *out, const struct mc_print *p,
                       const Etcdserverpb__LeaseKeepAliveResponse *r);
int mc_print_member_list(struct moor_buf *out, const struct mc_print *p,
                         const Etcdserverpb__MemberListResponse *r);
int mc_print_alarm(struct moor_buf *out, const struct mc_print *p,
                   const Etcdserverpb__AlarmResponse *r);

/* Per-endpoint results of endpoint health / status / hashkv. */
struct mc_ep_health
{
    const char *ep;
    bool health;
    uint64_t took_ns;
    const char *error; /* NULL when healthy */
};
struct mc_ep_status
{
    const char *ep;
    const Etcdserverpb__StatusResponse *resp;
};
struct mc_ep_hashkv
{
    const char *ep;
    const Etcdserverpb__HashKVResponse *resp;
};

/* Health lines of the simple format go to two buffers, as etcdctl prints
 * healthy endpoints on stdout and unhealthy ones on stderr. */
int mc_print_ep_health(struct moor_buf *out, struct moor_buf *err,
                       const struct mc_print *p, const struct mc_ep_health *h,
                       size_t n);
int mc_print_ep_status(struct moor_buf *out, const struct mc_print *p,
                       const struct mc_ep_status *s, size_t n);
int mc_print_ep_hashkv(struct moor_buf *out, const struct mc_print *p,
                       const struct mc_ep_hashkv *s, size_t n);

/* snapshot status of a moor snapshot file: hash (crc32c of the kv
 * stream), revision, keys, file size. */
struct mc_snapshot_status
{
    uint32_t hash;
    int64_t revision;
    uint64_t total_keys;
    uint64_t total_size;
};
int mc_print_snapshot_status(struct moor_buf *out, const struct mc_print *p,
                             const struct mc_snapshot_status *s);

/* An ASCII table as etcdctl's tablewriter draws it: upper-case centred
 * headers, right-aligned cells, +---+ borders. cells is rows * cols
 * strings, row-major. */
int mc_table(struct moor_buf *out, const char *const *hdr, size_t cols,
             const char *const *cells, size_t rows);

/* ------------------------------------------------------------------------
 * snapshot restore: the new cluster's membership from etcd's flags
 * ---------------------------------------------------------------------- */
#define MC_RESTORE_MEMBERS_MAX 16 /* moord's limit on --initial-cluster */
#define MC_RESTORE_URLS_MAX 8     /* peer URLs of one member */
#define MC_RESTORE_URL_MAX 300    /* one URL's text */
#define MC_RESTORE_NAME_MAX 256   /* one member name, with its NUL */

struct mc_restore_member
{
    char name[MC_RESTORE_NAME_MAX];
    char urls[MC_RESTORE_URLS_MAX][MC_RESTORE_URL_MAX]; /* normalised */
    size_t n_urls;
    uint64_t id; /* etcd's: snap_member_id(urls, token) */
};

struct mc_restore_cluster
{
    struct mc_restore_member members[MC_RESTORE_MEMBERS_MAX];
    size_t n;
    size_t self; /* index of --name */
    uint64_t cluster_id;
};

/* Parses --initial-cluster ("name=url,..."; a name may repeat to give a
 * member several URLs), normalises every URL as moord does
 * ("scheme://host:port"), computes etcd's member and cluster ids with the
 * token, and checks, as etcd does, that name is a member whose URLs are
 * exactly advertise (comma-separated). MOOR_EINVAL with errtext in etcd's
 * words ("couldn't find local name ...", "--initial-cluster has ... but
 * missing from --initial-advertise-peer-urls=..."). */
int mc_restore_cluster_parse(const char *initial_cluster, const char *token,
                             const char *name, const char *advertise,
                             struct mc_restore_cluster *rc, char *errtext);

/* Appends rc as an encoded moorpb.Membership (the snapshot's membership
 * block): cluster id, then each member's id, name and peer URLs, in
 * --initial-cluster's order, no client URLs, no learners. MOOR_ENOMEM. */
int mc_restore_membership_encode(const struct mc_restore_cluster *rc,
                                 struct moor_buf *out);

#endif /* MOOR_CLI_H */
