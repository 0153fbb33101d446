/*
 * bench/bench_int.h: what the client-API workloads share: their flags, the
 * load driver (connections, --clients requests in flight on one libuv
 * loop, the rate limiter, --total/--duration, latency and error counts)
 * and the report (text and --json).
 *
 * A unary workload gives the driver two callbacks: build (the next request
 * of a client slot: method path and encoded message) and check (the
 * decoded verdict on an OK answer). The driver times each request from
 * build to answer, counts gRPC failures by status code and failed checks
 * as "bad_response", and keeps one histogram overall and one per kind
 * (the kind a workload's build sets, e.g. read and write). Streaming
 * workloads (watch, k8s's watchers, lease keep-alive streams) start their
 * streams on the driver's loop and clients, then poll the driver.
 *
 * Threads: everything runs on the caller's thread, on the driver's loop.
 * Ownership: the driver owns its clients, slots and histograms
 * (bench__load_open/bench__load_close); workloads own what they hang on
 * slot->user and load->arg.
 */
#ifndef MOOR_BENCH_INT_H
#define MOOR_BENCH_INT_H

#include <uv.h>

#include "bench.h"
#include "proto/proto.h"
#include "rpc/rpc.h"

/* ------------------------------------------------------------------------
 * Flags
 * ---------------------------------------------------------------------- */

/* Which workloads accept a flag (bits of bench_flag.workloads). */
enum {
    BW_PUT = 1u << 0,
    BW_RANGE = 1u << 1,
    BW_TXN_PUT = 1u << 2,
    BW_TXN_MIXED = 1u << 3,
    BW_WATCH = 1u << 4,
    BW_WATCH_LATENCY = 1u << 5,
    BW_LEASE = 1u << 6,
    BW_K8S = 1u << 7,
    BW_CONSENSUS = 1u << 8,
    BW_ALL = (1u << 9) - 1,
};

#define BENCH_ENDPOINTS_MAX 16
#define BENCH_KINDS_MAX 4
#define BENCH_CLIENTS_MAX 100000u
#define BENCH_CONNS_MAX 1000u

/* Every flag of every client workload; each workload reads its own. */
struct bench_opts
{
    /* common */
    char *endpoints_arg;
    const char *endpoints[BENCH_ENDPOINTS_MAX];
    size_t endpoints_len;
    uint32_t conns;
    uint32_t clients;
    uint64_t total;
    double duration_s;
    double rate;
    double timeout_s;
    char *cacert, *cert, *key;
    bool insecure_skip_verify;
    bool json;
    bool help;
    /* keys and values */
    uint64_t key_size;
    uint64_t val_size;
    uint64_t key_space_size;
    bool sequential_keys;
    /* range, txn-mixed */
    char *consistency; /* "l" or "s" */
    uint64_t limit;
    bool prefix;
    bool count_only;
    double rw_ratio;
    uint64_t txn_ops;
    /* watch, watch-latency */
    uint32_t streams;
    uint32_t watchers;
    bool prev_kv;
    /* lease-keepalive, k8s */
    uint64_t lease_ttl;
    uint64_t objects;
    uint32_t namespaces;
    uint64_t page_size;
    double list_ratio;
    /* consensus */
    char *metrics_url;
    /* positional arguments (range's key and end) */
    char *args[2];
    size_t args_len;
};

/* Sets the common defaults (etcd benchmark's) and those of workload. */
void bench__opts_defaults(struct bench_opts *o, unsigned workload);

/* Parses argv[1..argc) for workload (argv[0] is its name) into o, whose
 * defaults are set. Returns MOOR_OK, or MOOR_EINVAL after printing why to
 * stderr. --help sets o->help. Borrows argv (o points into it). */
int bench__opts_parse(struct bench_opts *o, unsigned workload, int argc,
                      char **argv);

/* Prints "usage: moor-bench <name> <synopsis> [flags]", the description and
 * every flag workload accepts with its default (from o). */
void bench__usage(FILE *out, const char *name, unsigned workload,
                  const char *synopsis, const char *description,
                  const struct bench_opts *o);

/* Frees what parsing allocated. */
void bench__opts_close(struct bench_opts *o);

/* ------------------------------------------------------------------------
 * Load driver
 * ---------------------------------------------------------------------- */
struct bench_load;

/* One client: at most one request in flight. */
struct bench_slot
{
    struct bench_load *load;
    uint32_t index;               /* 0 .. clients-1 */
    struct rpc_client *cl;        /* its connection: slot index % conns */
    uint64_t seq;                 /* the request's number in issue order */
    uint64_t start_ns;            /* when build ran */
    unsigned kind;                /* set by build: the histogram it counts in */
    const char *path;             /* set by build: the method */
    struct moor_buf req;          /* set by build: the encoded request */
    struct bench_slot *wait_next; /* in the rate limiter's queue */
    bool waiting;
    bool finished;
    void *user; /* the workload's */
};

struct bench_workload
{
    const char *name;
    /* Kind names, kinds_len of them (0: one unnamed kind). */
    const char *kinds[BENCH_KINDS_MAX];
    unsigned kinds_len;
    /* Builds slot s's next request: s->path, s->req (empty on entry),
     * s->kind. MOOR_ENOENT stops this slot (it has nothing left);
     * another error stops it and counts as a setup failure. */
    int (*build)(struct bench_slot *s, void *arg);
    /* Judges an RPC_OK answer (borrowed for the call): MOOR_OK, or an
     * error that counts the request as a bad response (the driver prints
     * msg, when set, once). May be NULL (every OK answer is good). */
    int (*check)(struct bench_slot *s, struct moor_slice resp, void *arg,
                 char *msg);
};

struct bench_load
{
    const struct bench_opts *o;
    uv_loop_t loop;
    bool loop_open;
    struct rpc_client *cls[BENCH_CONNS_MAX];
    uint32_t ncls;
    struct rpc_tls_config tls;
    struct bench_slot *slots;
    uint32_t nslots;
    const struct bench_workload *w;
    void *arg;
    /* rate limiting */
    struct bench_rate rate;
    uv_timer_t rate_timer;
    bool rate_timer_open;
    struct bench_slot *wait_head, *wait_tail;
    /* progress */
    uint64_t issued;
    uint64_t ok;
    uint32_t active; /* slots not finished */
    uint64_t start_ns;
    uint64_t end_ns;      /* when the last request ended */
    uint64_t deadline_ns; /* --duration's end, or UINT64_MAX */
    /* results */
    struct bench_hist *hist;
    struct bench_hist *kind_hist[BENCH_KINDS_MAX];
    uint64_t kind_ok[BENCH_KINDS_MAX];
    uint64_t errors[RPC_STATUS_COUNT];
    uint64_t bad_responses;
    uint64_t setup_failures;
    /* Workload-defined error counts, reported by name ("missing_events"). */
    const char *extra_error_names[4];
    uint64_t extra_errors[4];
    char first_error[MOOR_ERRMSG_SIZE];
};

/* Opens o->conns clients to o->endpoints on a new loop (each client's
 * endpoint list rotated by its index, so connections spread over the
 * endpoints) and connects each with one serializable Range. Allocates
 * o->clients slots and the histograms. On failure prints why to stderr
 * and returns an error (call bench__load_close anyway). */
int bench__load_open(struct bench_load *l, const struct bench_opts *o);

/* Starts every slot of workload w (arg goes to its callbacks). Returns at
 * once; the requests run as the loop runs. */
void bench__load_start(struct bench_load *l, const struct bench_workload *w,
                       void *arg);

/* True when every slot finished (total reached, duration over, or each
 * slot's build said MOOR_ENOENT). */
bool bench__load_done(const struct bench_load *l);

/* Starts and runs the loop until bench__load_done. */
void bench__load_run(struct bench_load *l, const struct bench_workload *w,
                     void *arg);

/* Runs one loop turn (blocking until something happens). */
void bench__load_turn(struct bench_load *l);

/* Runs the loop until cond(arg) holds (true) or timeout_ms passes (false).
 * A 20 ms tick keeps the deadline seen on an idle loop. */
bool bench__run_until(struct bench_load *l, bool (*cond)(void *arg), void *arg,
                      uint64_t timeout_ms);

/* Closes the clients, runs the loop until they are freed, frees the rest. */
void bench__load_close(struct bench_load *l);

/* Notes an error message (the first one is printed in the report). */
void bench__load_note(struct bench_load *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Counts a failed request by gRPC status (and notes its message). */
void bench__load_count_status(struct bench_load *l, int status,
                              const char *message);

/* The elapsed seconds of the run so far (or of the whole run once done). */
double bench__load_elapsed(const struct bench_load *l);

/* Runs one unary call synchronously on client cl (setup and teardown
 * outside the timed run): packs req, unpacks the answer as rdesc into
 * *resp (returns owned: protobuf_c_message_free_unpacked with
 * moor_pb_allocator; may be NULL to ignore). Returns the gRPC status
 * (RPC_OK = 0), or a negative moor error; errmsg says why. */
int bench__call_sync(struct bench_load *l, struct rpc_client *cl,
                     const char *path, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *rdesc,
                     ProtobufCMessage **resp, char *errmsg);

/* --timeout in milliseconds: every request's gRPC deadline. */
uint64_t bench__timeout_ms(const struct bench_opts *o);

/* Packs msg into buf (appending). */
int bench__pack(const ProtobufCMessage *msg, struct moor_buf *buf);

/* Unpacks resp as desc (at most 2 GiB); returns owned or NULL. */
ProtobufCMessage *bench__unpack(const ProtobufCMessageDescriptor *desc,
                                struct moor_slice resp);
void bench__free(void *msg);

/* ------------------------------------------------------------------------
 * Report
 * ---------------------------------------------------------------------- */

/* Prints the run's report to stdout: with o->json one JSON object holding
 * the common fields, "params" (params_json: the members of an object,
 * without braces) and extra_json (members to add at the top level, or
 * NULL); else the header line, etcd's summary, kinds, extra_text and
 * errors. hist is the main latency histogram (normally l->hist). */
void bench__report(const struct bench_load *l, const struct bench_hist *hist,
                   double elapsed_s, const char *params_json,
                   const char *params_text, const char *extra_json,
                   const char *extra_text);

/* The latency object {"min":..,"mean":..,"p50":..,...} of hist (ns) in ms. */
int bench__latency_json(struct moor_buf *out, const struct bench_hist *h);

/* Appends s as a JSON string (quoted and escaped). */
int bench__json_str(struct moor_buf *out, const char *s);

/* Returns 0 when the load ran, 1 when nothing succeeded. */
int bench__exit_code(const struct bench_load *l);

/* The common runner of the unary workloads: parses flags (usage on
 * error), calls setup (may be NULL) after the load is open, runs w, calls
 * report. Returns the exit status. */
struct bench_unary_main
{
    const char *name;
    unsigned workload;
    const char *synopsis;
    const char *description;
    const struct bench_workload *w;
    /* Checks the parsed flags (MOOR_EINVAL after printing why). */
    int (*validate)(struct bench_opts *o, void *arg);
    /* Prepares arg's state on the open load; MOOR_OK or an error
     * (printed). */
    int (*setup)(struct bench_load *l, void *arg);
    /* Writes params (JSON members and text) for the report. */
    void (*params)(const struct bench_opts *o, struct moor_buf *json,
                   struct moor_buf *text);
    /* Adds workload figures after the run (may be NULL). */
    void (*extra)(struct bench_load *l, void *arg, struct moor_buf *json,
                  struct moor_buf *text);
    void (*teardown)(struct bench_load *l, void *arg);
};
int bench__unary_main(const struct bench_unary_main *m, void *arg, int argc,
                      char **argv);

/* ------------------------------------------------------------------------
 * put's pieces, shared with consensus and the watch workloads
 * ---------------------------------------------------------------------- */
struct bench_kv_state
{
    struct bench_keygen kg;
    uint8_t key[BENCH_KEY_MAX + 1];
    uint8_t *val; /* val_size random bytes, owned */
    size_t val_size;
    struct moor_prng prng;
};

/* Keys from --key-size, --key-space-size, --sequential-keys under prefix
 * and a value of --val-size random bytes. MOOR_EINVAL (printed) when the
 * keys do not fit; MOOR_ENOMEM. */
int bench__kv_keys_init(struct bench_kv_state *st, const struct bench_opts *o,
                        const char *prefix);
void bench__kv_keys_close(struct bench_kv_state *st);
/* put's build and check (arg is a struct bench_kv_state). */
int bench__put_build(struct bench_slot *s, void *arg);
int bench__put_check(struct bench_slot *s, struct moor_slice resp, void *arg,
                     char *msg);
/* put's params for the report. */
void bench__kv_params(const struct bench_opts *o, struct moor_buf *json,
                      struct moor_buf *text);

#endif /* MOOR_BENCH_INT_H */
