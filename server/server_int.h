/*
 * server/server_int.h: what server/'s files share: the member (struct
 * srv_node), its waiters, and the pieces each file provides.
 *
 * One member runs on one libuv loop thread; everything here is loop-thread
 * only except srv_node's WAL notify callback (the WAL writer thread calls
 * it, and it only does uv_async_send).
 */
#ifndef MOOR_SERVER_INT_H
#define MOOR_SERVER_INT_H

#include <uv.h>

#include "kv/kv.h"
#include "proto/proto.h"
#include "raft/raft.h"
#include "rpc/rpc.h"
#include "server.h"
#include "wal/wal.h"

/* ------------------------------------------------------------------------
 * Errors: moor error -> gRPC status code and etcd's exact message.
 * ---------------------------------------------------------------------- */
struct srv_grpc_error
{
    int code;            /* enum rpc_status */
    const char *message; /* etcd's text, matched by clients */
};

/* The gRPC status and message for a moor error (never RPC_OK). */
struct srv_grpc_error srv_err_to_grpc(int err);

/* Finishes call with err's gRPC status and message. */
void srv_call_fail(struct rpc_call *call, int err);

/* ------------------------------------------------------------------------
 * Waiters: a client call waiting for its proposal to be applied, or for
 * a read index to be applied.
 * ---------------------------------------------------------------------- */
enum srv_req_kind {
    SRV_REQ_PUT = 1,
    SRV_REQ_DELETE = 2,
    SRV_REQ_TXN = 3,
    SRV_REQ_COMPACT = 4,
    SRV_REQ_RANGE = 5,  /* a linearizable read */
    SRV_REQ_TXN_RO = 6, /* a read-only txn, served as a read */
    SRV_REQ_LEASE_GRANT = 7,
    SRV_REQ_LEASE_REVOKE = 8,
    SRV_REQ_MOVE_LEADER = 9, /* waits for target to lead */
    SRV_REQ_ALARM = 10,      /* Maintenance.Alarm ACTIVATE/DEACTIVATE */
    SRV_REQ_MEMBER = 11,     /* a membership change (members.c) */
    SRV_REQ_FORWARD = 12,    /* a call forwarded to the leader */
};

/* The moments of a write's life on the member that proposed it, for the
 * per-stage latency histograms (observe.c): proposed, durable in this
 * member's WAL, committed, applied. Monotonic ns, 0 until reached. */
enum srv_stage {
    SRV_STAGE_PROPOSED = 0,
    SRV_STAGE_DURABLE = 1,
    SRV_STAGE_COMMITTED = 2,
    SRV_STAGE_APPLIED = 3,
    SRV_STAGE_COUNT = 4,
};

struct srv_waiter
{
    uint64_t id;
    uint8_t kind;          /* enum srv_req_kind */
    struct rpc_call *call; /* NULL once the call ended (client gone) */
    /* Reads: the decoded request (owned, protobuf_c free), the index to
     * wait for once known (0 until the read state arrives). */
    ProtobufCMessage *req;
    uint64_t read_index;
    bool in_reads;       /* on the node's list of linearizable reads */
    uint64_t target;     /* SRV_REQ_MOVE_LEADER: the member to lead */
    struct srv_fwd *fwd; /* SRV_REQ_FORWARD of a stream (forward.c) */
    uint64_t deadline_ms;
    uint64_t stage_ns[SRV_STAGE_COUNT]; /* observe.c */
    struct srv_waiter *hash_next;
    struct srv_waiter *read_next;
};

/* Most client requests waiting at once; beyond: "too many requests". */
#define SRV_WAITERS_MAX 65536
#define SRV_WAITER_BUCKETS 4096
/* Alarms held at once (member, type); more are logged and dropped. */
#define SRV_ALARMS_MAX (2 * SRV_MEMBERS_MAX)

/* ------------------------------------------------------------------------
 * Membership (members.c): the applied member table.
 * ---------------------------------------------------------------------- */
struct srv_member
{
    uint64_t id;
    bool learner;
    char name[SRV_NAME_MAX]; /* "" until the member published it */
    struct srv_url_list peer_urls;
    struct srv_url_list client_urls; /* empty until published */
};

/* Removed members remembered (the newest), so one that still calls is
 * told it was removed. */
#define SRV_REMOVED_MAX 64

struct srv_members
{
    uint64_t cluster_id;
    unsigned n;
    struct srv_member m[SRV_MEMBERS_MAX];
    unsigned n_removed;
    uint64_t removed[SRV_REMOVED_MAX];
};

/* ------------------------------------------------------------------------
 * The member
 * ---------------------------------------------------------------------- */
struct srv_node
{
    uv_loop_t *loop;
    const struct srv_config *cfg;
    uint64_t member_id;
    uint64_t cluster_id;
    char errmsg[MOOR_ERRMSG_SIZE];

    /* The member table (members.c); published: this member's name and
     * client URLs are in it (or a proposal is retried after
     * publish_retry_ms). */
    struct srv_members members;
    bool published;
    uint64_t publish_retry_ms;
    /* The client to the leader for forwarded calls (forward.c). */
    struct rpc_client *fwd_client;
    /* Every open Watch stream (watchsvc.c). */
    struct srv_watch_stream *watch_streams;
    uint64_t fwd_leader;

    struct wal_datadir datadir;
    struct wal *wal;
    struct raft_node *raft;
    struct kv_store *kv;
    struct rpc_server *rpc;

    /* Peers (peer.c): one outbound connection per other member, the
     * listeners, and the accepted connections. */
    struct srv_peer *peers[SRV_MEMBERS_MAX];
    size_t n_peers;
    uv_tcp_t peer_listeners[SRV_URLS_MAX];
    unsigned n_listeners;
    struct srv_inbound *inbound;
    /* Messages raft says may leave only once this member's writes up to
     * a WAL batch are durable: encoded frames per destination. */
    struct srv_deferred
    {
        uint64_t seq;
        uint64_t to;
        struct moor_buf frames;
    } * deferred;
    size_t n_deferred;
    size_t cap_deferred;

    uv_timer_t tick_timer;
    uv_check_t check;
    uv_async_t wal_async;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    bool async_open;        /* wal_async initialised */
    bool loop_handles_open; /* tick_timer, check, sigterm, sigint */

    /* Proposals queued during this loop turn, proposed together. */
    struct moor_bytes **proposals;
    size_t n_proposals;
    size_t cap_proposals;

    /* WAL batches in flight: seq -> what raft learns when it is durable. */
    struct srv_inflight
    {
        uint64_t seq;
        uint64_t index;
        uint64_t term;
    } * inflight;
    size_t n_inflight;
    size_t cap_inflight;
    uint64_t last_seq; /* the newest batch handed to the WAL */
    /* Raft's newest hard state, and the newest handed to the WAL. A
     * change of commit index alone waits (hs_dirty) for the next batch
     * (ready_persist). */
    struct raft_hard_state hs_latest;
    struct raft_hard_state hs_written;
    bool hs_dirty;

    /* Waiters by id, and linearizable reads in arrival order. */
    struct srv_waiter *waiters[SRV_WAITER_BUCKETS];
    size_t n_waiters;
    struct srv_waiter *reads_head;
    struct srv_waiter *reads_tail;
    uint64_t next_id;

    /* The one MoveLeader in progress (maintsvc.c), or NULL. */
    struct srv_waiter *move_waiter;

    /* Snapshots (snap.c): the job running, and the index of the newest
     * snapshot saved or loaded. */
    struct srv_snap_job *snap_job;
    /* After a failed periodic snapshot: none before snap_retry_ms (the
     * delay doubles from 1 s to 60 s, reset by a success). */
    uint64_t snap_retry_ms;
    uint64_t snap_backoff_ms;
    uint64_t snap_index;

    /* Metrics, stage timings, the WAL's fsync timing (observe.c). */
    struct srv_obs *obs;

    /* Alarms (quota.c): applied through Raft, the same on every member.
     * alarm_nospace: some member's NOSPACE alarm is active. */
    bool alarm_nospace;
    struct srv_alarm
    {
        uint64_t member_id;
        int type; /* Etcdserverpb__AlarmType */
    } alarms[SRV_ALARMS_MAX];
    size_t n_alarms;
    bool wal_low_space;      /* the WAL's early warning is on */
    bool quota_over;         /* over the quota at the last srv_quota_check */
    uint64_t alarm_raise_ms; /* when this member last proposed NOSPACE */
    /* Auto compaction (quota.c). */
    uint64_t compact_last_ms;
    struct srv_rev_sample
    {
        uint64_t time_ms;
        int64_t rev;
    } compact_samples[16];
    size_t compact_head;
    size_t n_compact_samples;

    /* Lease duties of the leader (leasesvc.c). */
    /* This member has promoted the leases since it became leader. */
    bool lease_leader;
    uint64_t lease_ticks;
    int64_t lease_cursor;

    bool stopping;
    /* While stopping, a leader waits this long for another member to take
     * over (0: not handing over). */
    uint64_t handoff_deadline_ms;
    bool processing;
    int exit_status;
};

/* Opens the member: data dir, WAL replay, raft, kv, client listeners.
 * MOOR_OK or an error with n->errmsg set. */
int srv_node_open(struct srv_node *n, uv_loop_t *loop,
                  const struct srv_config *cfg);
/* After a failed srv_node_open: closes whatever handles it had opened, so
 * the loop can run to its end before srv_node_close. */
void srv_node_abort(struct srv_node *n);
/* Stops serving and closes everything (after the loop ran the closes). */
void srv_node_close(struct srv_node *n);
/* Stops the member as SIGTERM does (why is logged), from inside the loop. */
void srv_node_stop(struct srv_node *n, const char *why);

/* Queues a proposal of an encoded InternalRequest (consumes data on
 * MOOR_OK) for the waiter w (registered by the caller). */
int srv_node_propose(struct srv_node *n, struct moor_bytes *data);

/* Waiters. */
struct srv_waiter *srv_waiter_new(struct srv_node *n, uint8_t kind,
                                  struct rpc_call *call);
void srv_waiter_free(struct srv_node *n, struct srv_waiter *w);
struct srv_waiter *srv_waiter_find(struct srv_node *n, uint64_t id);

/* Starts a linearizable read for w (a SRV_REQ_RANGE or SRV_REQ_TXN_RO
 * waiter holding its request): served once applied >= the read index. */
int srv_node_read(struct srv_node *n, struct srv_waiter *w);

/* Encodes and proposes ir (its id and time are set here), registering a
 * waiter of kind for call; call NULL proposes with no waiter (the leader's
 * own revokes and checkpoints). On failure the call is answered with the
 * error. */
void srv_propose_request(struct srv_node *n, struct rpc_call *call,
                         uint8_t kind, Moorpb__InternalRequest *ir);

/* Decodes a request message of type desc (bounded by --max-request-bytes
 * plus etcd's 512 KiB of slack). Returns owned (free_unpacked with
 * moor_pb_allocator), or NULL after answering the call with the error. */
ProtobufCMessage *srv_decode(struct srv_node *n, struct rpc_call *call,
                             const ProtobufCMessageDescriptor *desc,
                             struct moor_slice msg);

/* Sends msg as the call's one answer and finishes it with OK (or fails it
 * with the error that stopped the send). */
void srv_reply(struct rpc_call *call, const ProtobufCMessage *msg);

/* The done_cb of every unary handler: forgets the call in its waiter. */
void srv_call_done(struct rpc_call *call, int status, void *arg);

/* One method of a service whose calls end through srv_call_done. */
struct srv_method
{
    const char *path;
    void (*message_cb)(struct rpc_call *call, struct moor_slice msg, void *arg);
    void (*half_close_cb)(struct rpc_call *call, void *arg); /* may be NULL */
};

/* Registers each method with n as its argument. */
int srv_register_methods(struct srv_node *n, struct rpc_server *srv,
                         const struct srv_method *methods, size_t count);

/* After kv applied (or failed to apply) the committed entry at index:
 * MOOR_ENOMEM stops the member (the entry can neither be skipped nor left
 * half applied); any other error is the request's own answer. */
void srv_apply_check(struct srv_node *n, uint64_t index, int rv);

/* Fills a ResponseHeader with this member's ids, the kv revision and the
 * raft term. */
void srv_header_fill(struct srv_node *n, Etcdserverpb__ResponseHeader *h,
                     int64_t revision);

/* Runs the node's per-turn work (proposals, ready, apply). Safe to call
 * often; does nothing when there is nothing to do. */
void srv_node_process(struct srv_node *n);

/* ------------------------------------------------------------------------
 * KV service (kvsvc.c)
 * ---------------------------------------------------------------------- */
/* Registers /etcdserverpb.KV/{Range,Put,DeleteRange,Txn,Compact}. */
int srv_kv_register(struct srv_node *n, struct rpc_server *srv);

/* Applies one committed InternalRequest at index and answers its waiter,
 * if this member has one. Never fails the node: a request that kv refuses
 * is answered with the error and still counts as applied. */
void srv_kv_apply(struct srv_node *n, uint64_t index, struct moor_slice data);

/* Serves a linearizable read whose index has been applied. */
void srv_kv_serve_read(struct srv_node *n, struct srv_waiter *w);

/* ------------------------------------------------------------------------
 * Lease service (leasesvc.c)
 * ---------------------------------------------------------------------- */
int srv_lease_register(struct srv_node *n, struct rpc_server *srv);
/* Applies a lease grant, revoke or checkpoint; false for other requests. */
bool srv_lease_apply(struct srv_node *n, uint64_t index,
                     const Moorpb__InternalRequest *ir);
/* The leader's per-tick lease work: revoke expired leases, checkpoint. */
void srv_lease_tick(struct srv_node *n);

/* ------------------------------------------------------------------------
 * Watch service (watchsvc.c)
 * ---------------------------------------------------------------------- */
int srv_watch_register(struct srv_node *n, struct rpc_server *srv);
/* After n->kv was replaced by an installed snapshot (old still open):
 * moves every watcher from old to n->kv at its next revision, so it
 * replays what it missed from the new keyspace's history (a start below
 * its compact revision is canceled with compact_revision, as etcd's
 * watchable store does on restore). */
void srv_watch_rehome(struct srv_node *n, struct kv_store *old);
/* Sends what kv's ready watchers have; once per loop turn, after apply. */
void srv_watch_deliver(struct srv_node *n);

/* ------------------------------------------------------------------------
 * Quota and auto compaction (quota.c)
 * ---------------------------------------------------------------------- */
/* Proposes this member's NOSPACE alarm when it holds more than the quota
 * or the WAL warned that its disk is nearly full (again after two election
 * timeouts while it is not applied). */
void srv_quota_check(struct srv_node *n);
/* True when ir (a write that adds data) must be refused: a NOSPACE alarm
 * is active in the cluster, or this member was over its quota at the last
 * srv_quota_check or is low on WAL space (refused here before the alarm
 * is applied, as etcd does). */
bool srv_quota_refuses(const struct srv_node *n,
                       const Moorpb__InternalRequest *ir);
/* The WAL's early warning (wal_durable.nospace) as of this collect: logs
 * a change and raises the alarm through srv_quota_check. */
void srv_alarm_wal_space(struct srv_node *n, bool low);
/* Maintenance.Alarm: GET answered from the applied alarms; ACTIVATE and
 * DEACTIVATE proposed and answered when applied. Consumes req. */
void srv_alarm_request(struct srv_node *n, struct rpc_call *call,
                       Etcdserverpb__AlarmRequest *req);
/* Applies a committed AlarmRequest at index on every member, answering
 * its waiter if this member has one. */
void srv_alarm_apply(struct srv_node *n, uint64_t index,
                     const Moorpb__InternalRequest *ir);
/* The leader's auto compaction, once per tick. */
void srv_autocompact_tick(struct srv_node *n);

/* ------------------------------------------------------------------------
 * Observability (observe.c): the /metrics registry and what feeds it,
 * per-stage latencies of writes, the WAL's fdatasync timing, leader-change
 * and slow-apply log lines. Loop thread only, except the WAL fs table
 * (writer thread, atomics).
 * ---------------------------------------------------------------------- */
struct srv_obs;
/* Allocates n->obs (MOOR_ENOMEM). Before wal_open. */
int srv_obs_open(struct srv_node *n);
/* Frees n->obs; after wal_close. Safe when it was never opened. */
void srv_obs_close(struct srv_node *n);
/* The file operations the WAL should use: the POSIX ones, with every
 * fdatasync timed (etcd_disk_wal_fsync_duration_seconds) and one taking
 * over a second logged ("slow fdatasync"). Returns borrowed, valid until
 * srv_obs_close. */
const struct wal_fs *srv_obs_wal_fs(struct srv_node *n);
/* Raft's soft state changed: logs the role, counts and logs a new
 * leader. */
void srv_obs_soft_state(struct srv_node *n, const struct raft_ready *rd);
/* A write's waiter was proposed (stamps SRV_STAGE_PROPOSED). */
void srv_obs_proposed(struct srv_node *n, struct srv_waiter *w);
/* rd's entries go to the WAL: remembers which are this member's writes. */
void srv_obs_persisting(struct srv_node *n, const struct raft_ready *rd);
/* The WAL is durable up to index. */
void srv_obs_durable(struct srv_node *n, uint64_t index);
/* Around applying one committed entry: begin stamps its waiter committed
 * and returns the time; end counts a slow apply. */
uint64_t srv_obs_apply_begin(struct srv_node *n, const struct raft_entry *e);
void srv_obs_apply_end(struct srv_node *n, uint64_t begin_ns);
/* kv applied w's request (w may be NULL). */
void srv_obs_applied(struct srv_waiter *w);
/* w is being freed: records its stages (when it was answered) or a
 * failed proposal. */
void srv_obs_waiter_done(struct srv_node *n, const struct srv_waiter *w);
/* Counts a kv request by its InternalRequest case (applied writes) or a
 * Range served (MOORPB__INTERNAL_REQUEST__REQUEST_RANGE). */
void srv_obs_kv_request(struct srv_node *n, int request_case);
/* Appends the whole /metrics exposition to out. */
int srv_obs_render(struct srv_node *n, struct moor_buf *out);

/* ------------------------------------------------------------------------
 * Peers (peer.c)
 * ---------------------------------------------------------------------- */
struct srv_peer;
struct srv_inbound;
/* Listens on --listen-peer-urls and starts dialing every other member. */
int srv_peer_open(struct srv_node *n);
/* Closes listeners and connections (when stopping). */
void srv_peer_close(struct srv_node *n);
/* Sends one raft message to its member (dropped when not connected or
 * its queue is full; raft resends). */
void srv_peer_send(struct srv_node *n, const struct raft_message *m);
/* Appends m as a length-prefixed peer frame to out. */
int srv_peer_encode(const struct raft_message *m, struct moor_buf *out);
/* The client URLs member id announced in its handshake (none until it
 * connected to us); fills up to max and returns how many. Borrowed, valid
 * until the next handshake of that member. */
unsigned srv_peer_client_urls(struct srv_node *n, uint64_t id,
                              const char **urls, unsigned max);
/* Sends frames encoded earlier with srv_peer_encode to member to. */
void srv_peer_send_frames(struct srv_node *n, uint64_t to,
                          const struct moor_buf *frames);

/* ------------------------------------------------------------------------
 * Snapshots (snap.c)
 * ---------------------------------------------------------------------- */
struct srv_snap_pos
{
    uint64_t index;
    uint64_t term;
};
/* Registers Maintenance.Snapshot (streamed backups). */
int srv_snap_register(struct srv_node *n, struct rpc_server *srv);
/* Starts a snapshot: a backup streamed to call, or (call NULL) a periodic
 * one after which the raft log and the WAL are released below it. */
int srv_snap_start(struct srv_node *n, struct rpc_call *call);
/* Starts a periodic snapshot when --snapshot-count entries were applied
 * since the last one and none is running. */
void srv_snap_maybe(struct srv_node *n);
/* Loads the newest valid snapshot into the (empty) kv store; *out gets its
 * position ({0, 0}: none). MOOR_ECORRUPT etc. with n->errmsg. */
int srv_snap_load(struct srv_node *n, struct srv_snap_pos *out);
/* Installs the snapshot raft accepted from the leader (rd.snapshot, its
 * marker already handed to the WAL): kv is replaced by the snapshot file's
 * state, the membership by its block. Stops the member when the file that
 * peer.c verified cannot be loaded. */
void srv_snap_install(struct srv_node *n, const struct raft_snapshot *s);

/* ------------------------------------------------------------------------
 * Maintenance and Cluster services (maintsvc.c)
 * ---------------------------------------------------------------------- */
int srv_maint_register(struct srv_node *n, struct rpc_server *srv);
/* Once per tick: answers a MoveLeader whose target now leads. */
void srv_maint_tick(struct srv_node *n);

/* ------------------------------------------------------------------------
 * Membership and the Cluster service (members.c)
 * ---------------------------------------------------------------------- */
/* Registers /etcdserverpb.Cluster/Member{Add,Remove,Update,List,Promote}. */
int srv_members_register(struct srv_node *n, struct rpc_server *srv);
/* The member with id, or NULL. Returns borrowed (into ms). */
struct srv_member *srv_members_find(struct srv_members *ms, uint64_t id);
/* True when id was removed from the cluster. */
bool srv_members_was_removed(const struct srv_members *ms, uint64_t id);
/* The table of a new cluster from --initial-cluster (ids and cluster id
 * derived as etcd derives them). */
void srv_members_from_config(const struct srv_config *cfg,
                             struct srv_members *ms);
/* raft's configuration for the table (voters and learners). */
void srv_members_to_conf(const struct srv_members *ms, struct raft_conf *conf);
/* The table as a snapshot's membership block (encoded moorpb.Membership);
 * *out owned. MOOR_ENOMEM. */
int srv_members_encode(const struct srv_members *ms, struct moor_bytes **out);
/* Decodes a membership block, checking every member. MOOR_ECORRUPT with
 * errmsg on a bad block. */
int srv_members_decode(struct moor_slice blob, struct srv_members *ms,
                       char *errmsg);
/* Replaces the table with a snapshot's block (NULL or empty: unchanged).
 * MOOR_ECORRUPT with n->errmsg. */
int srv_members_restore(struct srv_node *n, const struct moor_bytes *blob);
/* <data-dir>/member/membership: the table a new member starts from,
 * written atomically; load gives MOOR_ENOENT when there is none. */
int srv_members_save_file(struct srv_node *n);
int srv_members_load_file(struct srv_node *n);
/* Dials members added by conf-change entries in rd's appended entries. */
void srv_members_appended(struct srv_node *n, const struct raft_ready *rd);
/* Applies a committed conf-change entry to the table and answers its
 * proposer's client. Stops the member when it removes this member. */
void srv_members_apply_conf(struct srv_node *n, uint64_t index,
                            struct moor_slice data);
/* Applies a MemberUpdate or a member's published attributes; false for
 * other requests. */
bool srv_members_apply(struct srv_node *n, uint64_t index,
                       const Moorpb__InternalRequest *ir);
/* Appends to out the answer to a "join" handshake (peer.proto): one
 * length-prefixed Frame holding the table. MOOR_ENOMEM. */
int srv_members_join_answer(struct srv_node *n, struct moor_buf *out);
/* --initial-cluster-state existing, before anything is opened: asks the
 * other members of --initial-cluster for the membership and takes this
 * member's id, the cluster id and the table from it (join.c). Blocks, at
 * most about 15 s. MOOR_ENOENT with n->errmsg when no member answers or
 * this member was not added. */
int srv_join_cluster(struct srv_node *n);
/* Once a leader is known: proposes this member's name and client URLs
 * until the table holds them. */
void srv_members_publish(struct srv_node *n);

/* ------------------------------------------------------------------------
 * Forwarding to the leader (forward.c)
 * ---------------------------------------------------------------------- */
struct srv_fwd;
/* Passes a unary call to the leader and relays its answer or status. */
void srv_forward_unary(struct srv_node *n, struct rpc_call *call,
                       struct moor_slice msg);
/* A message of a stream only the leader serves (LeaseKeepAlive): false
 * when this member leads and the stream is not forwarded (serve it here);
 * true when it was forwarded (or failed with an answer). */
bool srv_forward_stream_message(struct srv_node *n, struct rpc_call *call,
                                struct moor_slice msg);
/* The client half-closed a stream: true when it was a forwarded one. */
bool srv_forward_stream_half_close(struct rpc_call *call);
/* The client of a forwarded call went away (srv_call_done). */
void srv_forward_call_gone(struct srv_waiter *w);
/* Closes the client to the leader (stopping). */
void srv_forward_close(struct srv_node *n);

/* ------------------------------------------------------------------------
 * HTTP (http.c): /health, /version, /metrics on the client port.
 * ---------------------------------------------------------------------- */
int srv_http(const char *path, struct rpc_http_response *resp, void *arg);

/* etcd version this member reports for compatibility (/version, Status). */
#define SRV_ETCD_VERSION "3.4.0"
#define SRV_ETCD_CLUSTER_VERSION "3.4.0"

#endif /* MOOR_SERVER_INT_H */
