/*
 * kv/kv.h: the MVCC keyspace, the state machine every member applies
 * committed Raft entries to.
 *
 * What it is: an in-memory, multi-version key-value store with etcd v3's
 * exact semantics (revisions, Range/Put/DeleteRange/Txn/Compact, Hash and
 * HashKV), plus the watchers and leases that live on the same state, and a
 * chunked dump/load of the whole state for snapshots. What it is not: it
 * knows nothing of Raft, protobuf, sockets or clocks. Requests and
 * responses are plain C structs shaped like etcd's messages so that
 * server/ translates them field by field; time enters as a `now_ms`
 * argument the caller reads from its own clock.
 *
 * Threads: single-threaded. Every function must be called from the one
 * thread that owns the store (the member's loop thread). Nothing blocks;
 * long work (compaction, watch catch-up, dump) advances in bounded steps
 * the caller drives.
 *
 * Ownership: the store is the only object kv/ allocates on its own
 * (kv_store_new/kv_store_free); response structs, watchers and dumps live
 * in caller memory and are initialised by kv/. Rows returned by reads are
 * borrowed views into the store: a record is freed only by a compaction
 * step (kv_compact_step) or by kv_store_free, so every borrowed row stays
 * valid until the next kv_compact_step() call. Writes never free records.
 *
 * Applied index: every call that applies a Raft entry takes that entry's
 * index, and the store records it as part of the same change (it is in the
 * dump), so a restart resumes exactly after the last applied entry. An
 * index at or below kv_store_applied_index() is refused with MOOR_EINVAL
 * and changes nothing (an entry is never applied twice).
 *
 * Out of memory: a request that fails with MOOR_ENOMEM before its first
 * change (any single put; any request during its checks) leaves the store
 * unchanged. A multi-key write (txn, range delete, lease revoke) that runs
 * out of memory part way may leave part of it applied: the member must stop
 * then, as it cannot skip or half-apply a committed entry.
 *
 * Revisions: the store starts at revision 1 (as etcd). Each write request
 * (put, delete that deletes something, txn with at least one change, lease
 * revoke that deletes keys) bumps the main revision by one; inside it each
 * changed key gets the next sub revision (0, 1, ...). A request that
 * changes nothing does not bump the revision.
 *
 * Ranges ([key, range_end) as etcd): range_end empty means the single key
 * `key`; range_end "\0" (one zero byte) means every key >= key; otherwise
 * keys in [key, range_end), empty when key >= range_end.
 */
#ifndef MOOR_KV_H
#define MOOR_KV_H

#include "common/common.h"

struct kv_store;
struct kv_rec; /* one version of one key; opaque, see kv_row_get() */

/* ------------------------------------------------------------------------
 * Store
 * ---------------------------------------------------------------------- */

struct kv_options
{
    /* A lease granted with a smaller TTL gets this one (etcd: ceil(1.5 *
     * election ticks * heartbeat), 2 s with the defaults). */
    int64_t lease_min_ttl_s;
    /* Max entries in a txn's longest list (compare, success or failure);
     * a nested txn gets what its parent's longest list left (etcd
     * --max-txn-ops, 128). */
    uint32_t max_txn_ops;
    /* A synced watcher whose undelivered events exceed this is demoted to
     * unsynced and later catches up from history (bounds its memory). */
    uint32_t watch_pending_max;
    /* Revisions a watcher catches up per chunk while unsynced (etcd
     * watchBatchMaxRevs, 1000). */
    uint32_t watch_catchup_revs;
    /* Keys of the watched range one kv_watch_take() scans while catching
     * up: bounds the loop's work per take whatever the range's size (a
     * chunk of a large range spans several takes). */
    uint32_t watch_catchup_keys;
};

/* Fills o with the defaults above. */
void kv_options_default(struct kv_options *o);

/* Returns owned (kv_store_free) in *out: an empty store at revision 1,
 * compact revision 0, applied index 0. o may be NULL (defaults); borrows
 * o. MOOR_ENOMEM. */
int kv_store_new(const struct kv_options *o, struct kv_store **out);

/* Frees the store and everything in it. Watchers and dumps still open on
 * it must not be used afterwards (close them first). */
void kv_store_free(struct kv_store *s);

/* The current (last committed) main revision. */
int64_t kv_store_revision(const struct kv_store *s);
/* The compact revision: reads below it fail with MOOR_ECOMPACTED. */
int64_t kv_store_compact_revision(const struct kv_store *s);
/* The index of the last Raft entry applied. */
uint64_t kv_store_applied_index(const struct kv_store *s);
/* Records that entry `index` was applied though it carried no kv request
 * (a conf change, an empty entry). MOOR_EINVAL if index is not above the
 * applied index. */
int kv_store_note_applied(struct kv_store *s, uint64_t index);
/* Snapshot restore only (snapshot/restore.c): sets the applied index to
 * index, above or below the current one, and changes nothing else, so a
 * loaded backup can start a new cluster's log. Never call it on a store a
 * member applies entries to: entries would be skipped or applied twice. */
void kv_store_reset_applied_index(struct kv_store *s, uint64_t index);
/* Keys currently in the key index (live keys plus keys whose history is
 * still kept), and live keys at the current revision. */
uint64_t kv_store_key_count(const struct kv_store *s);
uint64_t kv_store_live_count(const struct kv_store *s);

/* ------------------------------------------------------------------------
 * Rows: borrowed views of one key's version (mvccpb.KeyValue)
 * ---------------------------------------------------------------------- */

struct kv_kv
{
    struct moor_slice key;
    struct moor_slice value; /* empty for tombstones (keys_only is the
                                encoder's job: kv_range_resp.keys_only) */
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version; /* 0: this is a deletion (watch DELETE event) */
    int64_t lease;
};

/* Fills out with a view of rec. Returns borrowed (the slices), valid until
 * the next kv_compact_step(). */
void kv_row_get(const struct kv_rec *rec, struct kv_kv *out);

/* ------------------------------------------------------------------------
 * Range (etcdserverpb.RangeRequest / RangeResponse)
 * ---------------------------------------------------------------------- */

enum kv_sort_order {
    KV_SORT_NONE = 0,
    KV_SORT_ASCEND = 1,
    KV_SORT_DESCEND = 2
};
enum kv_sort_target {
    KV_SORT_KEY = 0,
    KV_SORT_VERSION = 1,
    KV_SORT_CREATE = 2,
    KV_SORT_MOD = 3,
    KV_SORT_VALUE = 4,
};

struct kv_range_req
{
    struct moor_slice key;
    struct moor_slice range_end;
    int64_t limit;    /* <= 0: no limit */
    int64_t revision; /* <= 0: the current revision */
    enum kv_sort_order sort_order;
    enum kv_sort_target sort_target;
    bool keys_only;
    bool count_only;
    int64_t min_mod_revision; /* 0: no bound (as every bound below) */
    int64_t max_mod_revision;
    int64_t min_create_revision;
    int64_t max_create_revision;
};

/* Rows are pointers to records in the store, in response order: encode
 * them with kv_row_get() straight into the wire message; there is no
 * other copy. keys_only is echoed so the encoder drops values. */
struct kv_range_resp
{
    int64_t revision; /* the store's current revision (header.revision) */
    int64_t count;    /* keys in the range at the read revision, before
                         limit and before the min/max filters (as etcd) */
    bool more;        /* rows were cut by limit */
    bool keys_only;
    size_t n;
    const struct kv_rec **rows; /* owned by the response */
    size_t cap;
};

void kv_range_resp_init(struct kv_range_resp *r);
/* Frees the row array (not the records). Safe on an initialised resp. */
void kv_range_resp_close(struct kv_range_resp *r);

/* Reads the range. resp must be initialised (it is reset first); borrows
 * req; rows are borrowed as kv_row_get() says. count_only leaves n = 0.
 * The count at the current revision comes from subtree counts in
 * O(log n), and a limited read by key then stops after limit + 1 rows; a
 * count at a historic revision scans the range.
 * Sorting (any target other than KEY, or DESCEND) orders ties by key,
 * ascending; limit applies after sorting.
 * Errors: MOOR_EEMPTYKEY, MOOR_ECOMPACTED (revision below the compact
 * revision), MOOR_EFUTUREREV (above the current one), MOOR_EINVAL (bad
 * enum), MOOR_ENOMEM. */
int kv_range(struct kv_store *s, const struct kv_range_req *req,
             struct kv_range_resp *resp);

/* ------------------------------------------------------------------------
 * Put and DeleteRange
 * ---------------------------------------------------------------------- */

struct kv_put_req
{
    struct moor_slice key;
    struct moor_slice value;
    int64_t lease; /* 0: none */
    bool prev_kv;
    bool ignore_value; /* keep the current value (value must be empty) */
    bool ignore_lease; /* keep the current lease (lease must be 0) */
};

struct kv_put_resp
{
    int64_t revision;
    const struct kv_rec *prev_kv; /* borrowed (as kv_row_get() says); NULL
                                     unless asked and the key existed */
};

struct kv_delete_req
{
    struct moor_slice key;
    struct moor_slice range_end;
    bool prev_kv;
};

struct kv_delete_resp
{
    int64_t revision;
    int64_t deleted;
    size_t n;                       /* prev_kvs, when asked */
    const struct kv_rec **prev_kvs; /* owned array of borrowed records
                                       (valid as kv_row_get() says) */
    size_t cap;
};

void kv_delete_resp_init(struct kv_delete_resp *r);
void kv_delete_resp_close(struct kv_delete_resp *r);

/* Applies a put from Raft entry `index`. Borrows req (the key and value are
 * copied into the store). Errors (nothing changes, but see the applied
 * index note: on an error the entry still counts as applied):
 * MOOR_EEMPTYKEY, MOOR_EVALUEPROVIDED, MOOR_ELEASEPROVIDED,
 * MOOR_EKEYNOTFOUND (ignore_* on a missing key), MOOR_ELEASENOTFOUND,
 * MOOR_EINVAL (stale index), MOOR_ENOMEM. */
int kv_put(struct kv_store *s, uint64_t index, const struct kv_put_req *req,
           struct kv_put_resp *resp);

/* Applies a DeleteRange. resp must be initialised. Deleting nothing does
 * not bump the revision. Errors: MOOR_EEMPTYKEY, MOOR_EINVAL, MOOR_ENOMEM.
 */
int kv_delete(struct kv_store *s, uint64_t index,
              const struct kv_delete_req *req, struct kv_delete_resp *resp);

/* ------------------------------------------------------------------------
 * Txn
 * ---------------------------------------------------------------------- */

enum kv_cmp_result {
    KV_CMP_EQUAL = 0,
    KV_CMP_GREATER = 1,
    KV_CMP_LESS = 2,
    KV_CMP_NOT_EQUAL = 3,
};
enum kv_cmp_target {
    KV_CMP_VERSION = 0,
    KV_CMP_CREATE = 1,
    KV_CMP_MOD = 2,
    KV_CMP_VALUE = 3,
    KV_CMP_LEASE = 4,
};

/* A compare holds for a range only if it holds for every key in it; a
 * missing key compares as a zero KeyValue, except that a VALUE compare on
 * no key is false (as etcd). */
struct kv_compare
{
    enum kv_cmp_result result;
    enum kv_cmp_target target;
    struct moor_slice key;
    struct moor_slice range_end;
    int64_t number;          /* VERSION, CREATE, MOD, LEASE */
    struct moor_slice value; /* VALUE */
};

enum kv_op_type {
    KV_OP_NONE = 0, /* an empty RequestOp: MOOR_EKEYNOTFOUND, as etcd */
    KV_OP_RANGE = 1,
    KV_OP_PUT = 2,
    KV_OP_DELETE = 3,
    KV_OP_TXN = 4,
};

struct kv_txn_req
{
    const struct kv_compare *compare;
    size_t n_compare;
    const struct kv_op *success;
    size_t n_success;
    const struct kv_op *failure;
    size_t n_failure;
};

struct kv_op
{
    enum kv_op_type type;
    union
    {
        struct kv_range_req range;
        struct kv_put_req put;
        struct kv_delete_req del;
        struct kv_txn_req txn;
    } u;
};

struct kv_txn_resp;

struct kv_op_resp
{
    enum kv_op_type type;
    union
    {
        struct kv_range_resp range;
        struct kv_put_resp put;
        struct kv_delete_resp del;
        struct kv_txn_resp *txn; /* owned */
    } u;
};

struct kv_txn_resp
{
    int64_t revision;
    bool succeeded;
    size_t n;
    struct kv_op_resp *responses; /* owned */
};

void kv_txn_resp_init(struct kv_txn_resp *r);
/* Frees the responses, recursively. */
void kv_txn_resp_close(struct kv_txn_resp *r);

/* Applies a txn from Raft entry `index`, or evaluates a read-only txn when
 * index is 0 (a txn with a put or delete on its taken path is then refused
 * with MOOR_EINVAL). As etcd: every compare (nested ones too) is evaluated
 * against the state before the txn; the taken path is checked (range
 * revisions, ignore_* keys, leases) before anything is applied; ranges in
 * the txn see the txn's earlier writes; all writes share one main revision.
 * Errors, with nothing applied: MOOR_ETOOMANYOPS (the longest of a txn's
 * three lists exceeds max_txn_ops; a nested txn gets what its parent's
 * longest list left, as etcd), MOOR_EDUPKEY (a key put
 * twice, or put and deleted, in one path), MOOR_EKEYNOTFOUND (empty op),
 * MOOR_EEMPTYKEY, MOOR_EVALUEPROVIDED, MOOR_ELEASEPROVIDED,
 * MOOR_ELEASENOTFOUND, MOOR_ECOMPACTED, MOOR_EFUTUREREV, MOOR_EINVAL,
 * MOOR_ENOMEM. resp must be initialised; borrows req. */
int kv_txn(struct kv_store *s, uint64_t index, const struct kv_txn_req *req,
           struct kv_txn_resp *resp);

/* ------------------------------------------------------------------------
 * Compaction and hashes
 * ---------------------------------------------------------------------- */

/* Applies Compact(rev) from entry `index`: reads below rev fail from now
 * on; each key keeps its newest version at or below rev (dropped too when
 * it is a deletion below rev; a deletion exactly at rev stays until a later
 * compaction, so a watcher resuming at rev still sees it). The memory is
 * reclaimed by kv_compact_step(), which the caller runs between other work.
 * Errors: MOOR_ECOMPACTED (rev <= compact revision), MOOR_EFUTUREREV (rev >
 * current), MOOR_EINVAL. */
int kv_compact(struct kv_store *s, uint64_t index, int64_t rev);

/* Does at most keys_max keys of pending compaction work. Returns true while
 * work remains. Frees records: invalidates borrowed rows. Does nothing
 * while a dump is open (the dump reads the history compaction frees). */
bool kv_compact_step(struct kv_store *s, uint32_t keys_max);

/* HashKV: a crc32c over every version visible at revision rev (0: the
 * current one) that a finished compaction at the compact revision keeps,
 * in key order and newest version first, so members agree whatever their
 * compaction progress. Sets *compact_rev and *hash_rev (the revision hashed).
 * Errors: MOOR_ECOMPACTED, MOOR_EFUTUREREV. O(versions): a maintenance call. */
int kv_hash_kv(struct kv_store *s, int64_t rev, uint32_t *hash,
               int64_t *compact_rev, int64_t *hash_rev);

/* Hash: HashKV at the current revision chained with the lease table and
 * the compact revision: the whole replicated state. */
uint32_t kv_hash(struct kv_store *s);

/* ------------------------------------------------------------------------
 * Leases
 *
 * Replicated state (changed only by Raft entries): id, granted TTL,
 * remaining TTL from the last checkpoint, attached keys. Local state (each
 * member's own, used by the leader): the expiry deadline in the caller's
 * milliseconds. The leader calls kv_lease_promote() when it takes over,
 * kv_lease_expired() each tick and proposes a revoke for what it returns,
 * and kv_lease_checkpoints() periodically and proposes the result.
 * ---------------------------------------------------------------------- */

#define KV_LEASE_TTL_MAX 9000000000LL

/* Grants lease id (0: the store picks an unused positive id, derived from
 * index so every member picks the same) with ttl_s seconds, raised to the
 * minimum. Its deadline is now_ms + TTL. *id_out and *ttl_out get the
 * result. Errors: MOOR_ELEASEEXISTS, MOOR_ELEASETTLTOOLARGE, MOOR_EINVAL
 * (negative id, stale index), MOOR_ENOMEM. */
int kv_lease_grant(struct kv_store *s, uint64_t index, int64_t id,
                   int64_t ttl_s, uint64_t now_ms, int64_t *id_out,
                   int64_t *ttl_out);

/* Revokes lease id: its keys are deleted in one revision (none: no bump).
 * *revision_out gets the revision after. Errors: MOOR_ELEASENOTFOUND,
 * MOOR_EINVAL, MOOR_ENOMEM. */
int kv_lease_revoke(struct kv_store *s, uint64_t index, int64_t id,
                    int64_t *revision_out);

/* Renews lease id on the leader (local state only, no Raft): deadline =
 * now_ms + granted TTL. Returns the TTL in *ttl_out, 0 for an unknown lease
 * (as etcd: no error). Returns true when the lease carries a checkpointed
 * remaining TTL: the leader must then propose the checkpoint {id, 0}
 * (reset to the full TTL), or a new leader would expire it early. */
bool kv_lease_keepalive(struct kv_store *s, int64_t id, uint64_t now_ms,
                        int64_t *ttl_out);

struct kv_lease_info
{
    int64_t id;
    int64_t ttl_s; /* remaining, rounded up; -1 for unknown leases */
    int64_t granted_ttl_s;
    size_t n_keys;
};

/* TimeToLive. Unknown lease: info->ttl_s = -1, no error (as etcd). */
void kv_lease_time_to_live(struct kv_store *s, int64_t id, uint64_t now_ms,
                           struct kv_lease_info *info);

/* The i-th attached key of lease id (i < n_keys), in key order. Returns
 * borrowed, valid until the next write. */
struct moor_slice kv_lease_key(struct kv_store *s, int64_t id, size_t i);

/* Number of leases; kv_lease_ids copies up to max ids (ascending) into ids
 * and returns the number copied. */
size_t kv_lease_count(const struct kv_store *s);
size_t kv_lease_ids(const struct kv_store *s, int64_t *ids, size_t max);

/* Up to max ids of leases whose deadline is <= now_ms, earliest first. The
 * leases stay until revoked; each is returned once per deadline (its
 * deadline moves to "never" until renewed or promoted). */
size_t kv_lease_expired(struct kv_store *s, uint64_t now_ms, int64_t *ids,
                        size_t max);

/* New leader: every lease's deadline = now_ms + its remaining TTL (the
 * checkpointed one, else the granted one) + extend_ms. */
void kv_lease_promote(struct kv_store *s, uint64_t now_ms, uint64_t extend_ms);

struct kv_lease_checkpoint
{
    int64_t id;
    int64_t remaining_ttl_s;
};

/* Leader: fills up to max checkpoints (remaining TTL at now_ms, rounded
 * up) of the leases with ids above *cursor, in id order, and advances
 * *cursor (start at 0; it returns to 0 after the last lease, so periodic
 * calls cycle through all leases in bounded batches). Returns the number
 * filled. */
size_t kv_lease_checkpoints(struct kv_store *s, uint64_t now_ms,
                            int64_t *cursor, struct kv_lease_checkpoint *cps,
                            size_t max);

/* Applies checkpoints from entry `index`: each sets the lease's remaining
 * TTL (0: none, the granted TTL counts again). Unknown ids are skipped, as
 * are negative values. */
int kv_lease_checkpoint_apply(struct kv_store *s, uint64_t index,
                              const struct kv_lease_checkpoint *cps, size_t n);

/* ------------------------------------------------------------------------
 * Watches
 *
 * A watcher lives in caller memory. It is either synced (it gets the
 * events of each write as it is applied, found through an interval index,
 * so a write costs O(log W + matching watchers)) or unsynced (it catches
 * up from the history in chunks of watch_catchup_revs revisions). The
 * server, once per loop turn, drains ready watchers:
 *
 *   struct kv_watcher *w;
 *   while ((w = kv_watch_next_ready(s)) != NULL) {
 *       struct kv_watch_batch b;
 *       kv_watch_take(s, w, max_events, &b);   (or kv_watch_defer)
 *       ... encode b.events / b.canceled into one WatchResponse (an
 *           empty, uncanceled batch: nothing to send) ...
 *       kv_watch_batch_release(s, &b);
 *   }
 *
 * Events of one revision are never split across batches (a revision with
 * more than max_events events is delivered whole); events come in
 * revision, then sub-revision order, each once.
 * ---------------------------------------------------------------------- */

enum kv_event_type { KV_EVENT_PUT = 0, KV_EVENT_DELETE = 1 };

struct kv_event
{
    enum kv_event_type type;
    const struct kv_rec *kv;   /* for DELETE: key + mod_revision only */
    const struct kv_rec *prev; /* NULL unless prev_kv and it exists */
};

struct kv_watch_req
{
    struct moor_slice key; /* empty is treated as "\0" (as etcd) */
    struct moor_slice range_end;
    int64_t start_revision; /* <= 0: the next revision */
    bool no_put;
    bool no_delete;
    bool prev_kv;
};

/* Caller memory; fields are private to kv/. */
struct kv_watcher
{
    uint8_t *key; /* owned copies */
    size_t key_len;
    uint8_t *end; /* range end; end_len 0: +inf (unless single-key) */
    size_t end_len;
    int64_t next_rev; /* first revision not yet delivered */
    uint32_t flags;
    uint32_t ready_pos; /* 1-based position in the ready list, 0: none */
    uint32_t index_pos; /* position in the synced index, 0: none */
    struct kv_watcher *hash_next;
    struct kv_event *pending; /* synced: undelivered events */
    size_t n_pending;
    size_t cap_pending;
    int64_t compact_rev; /* set when canceled because of compaction */
    /* Unsynced: a catch-up scan of [next_rev, scan_to] in progress. */
    bool scanning;
    int64_t scan_to;
    uint8_t *scan_key; /* owned: resume at the first key >= this */
    size_t scan_key_len;
    struct kv_event *scan_ev; /* owned, holding references */
    size_t scan_n, scan_cap;
};

struct kv_watch_batch
{
    struct kv_event *events; /* owned until kv_watch_batch_release */
    size_t n;
    int64_t revision;    /* header.revision: the store's current revision */
    bool canceled;       /* the watch is over: send canceled=true */
    int64_t compact_rev; /* set with canceled: start is compacted */
};

/* Registers w for req (borrows req; copies the key range). A start at or
 * below the current revision makes w unsynced (it replays history first);
 * a start below the compact revision makes its first batch a cancel with
 * compact_rev. Errors: MOOR_ENOMEM. */
int kv_watch_open(struct kv_store *s, struct kv_watcher *w,
                  const struct kv_watch_req *req);

/* Unregisters w and drops its undelivered events (cancellation). */
void kv_watch_close(struct kv_store *s, struct kv_watcher *w);

/* The next watcher with something to deliver (events, catch-up or a
 * cancel), removing it from the ready list. Work proceeds in rounds: a
 * watcher that still has more after kv_watch_take() is put back for the
 * next round, and NULL ends the current round (so one drain loop per loop
 * turn visits each ready watcher once, and a long catch-up cannot starve
 * the others or the loop). Call again for the next round. */
struct kv_watcher *kv_watch_next_ready(struct kv_store *s);

/* True when w has caught up and receives writes as they are applied. */
bool kv_watch_synced(const struct kv_watcher *w);

/* True when w is synced and every event up to the current revision has
 * been taken: a progress notification (periodic, or for a
 * WatchProgressRequest when every watcher of the stream is idle) may then
 * carry header.revision = kv_store_revision(), as etcd's guarantee that
 * all events up to it were delivered requires. */
bool kv_watch_idle(const struct kv_watcher *w);

/* Takes up to max_events events (more only to keep a revision whole) for
 * w into b. An unsynced watcher runs one bounded catch-up step (which may
 * yield no events yet: an empty, uncanceled batch means nothing to send).
 * If more remains, w goes back on the ready list for the next round. b's events
 * hold references: release with kv_watch_batch_release(). Errors: MOOR_ENOMEM
 * (nothing taken; w stays ready). */
int kv_watch_take(struct kv_store *s, struct kv_watcher *w, size_t max_events,
                  struct kv_watch_batch *b);

void kv_watch_batch_release(struct kv_store *s, struct kv_watch_batch *b);

/* Puts w, returned by kv_watch_next_ready() but not taken (its stream
 * cannot send now), back on the ready list for the next round. Every
 * watcher kv_watch_next_ready() returns must be taken or deferred, or it
 * waits for the next write that matches it. */
void kv_watch_defer(struct kv_store *s, struct kv_watcher *w);

/* The first revision whose events w has not handed out yet: where a
 * watcher re-opened on another store (an installed snapshot) resumes. */
int64_t kv_watch_resume_rev(const struct kv_store *s,
                            const struct kv_watcher *w);

/* Number of registered watchers (synced and not). */
size_t kv_watch_count(const struct kv_store *s);

/* ------------------------------------------------------------------------
 * Dump and load
 *
 * A dump is a consistent byte stream of the state at the revision it was
 * opened at (every kept version of every key, the leases, the meta),
 * produced in bounded chunks while writes continue; the format is the
 * table in kv/dump.c and docs/kv.md. Physical compaction pauses while a
 * dump is open.
 * ---------------------------------------------------------------------- */

struct kv_dump
{
    struct kv_store *store;
    int64_t rev;         /* state at this revision */
    int64_t compact_rev; /* the kept-version rule at open */
    uint64_t applied_index;
    uint8_t *cursor; /* owned: just past the last key emitted */
    size_t cursor_len;
    bool started, keys_done, done;
    int64_t *leases; /* owned copy at open: id, ttl, remaining per lease */
    size_t n_leases, next_lease;
    uint64_t n_keys;
    uint32_t crc;
};

/* Opens a dump of the current state. Errors: MOOR_ENOMEM. */
int kv_dump_open(struct kv_store *s, struct kv_dump *d);
/* Appends the next chunk (whole records, at least one, stopping once out
 * has grown by max_bytes) to out. Returns MOOR_OK and sets *done after the
 * final record; MOOR_ENOMEM. */
int kv_dump_next(struct kv_dump *d, struct moor_buf *out, size_t max_bytes,
                 bool *done);
void kv_dump_close(struct kv_dump *d);

/* Incremental loader into an empty store (revision 1, no keys, no leases):
 * feed the stream in pieces of any size, then finish. */
struct kv_load
{
    struct kv_store *store;
    struct moor_buf pending; /* an incomplete record */
    uint64_t offset;         /* stream bytes consumed */
    uint32_t crc;
    bool header_seen, done, failed;
    int64_t rev, compact_rev;
    uint64_t applied_index;
    uint64_t n_keys, n_leases;
    const struct kv_rec *last; /* last key loaded (order check) */
    char errmsg[MOOR_ERRMSG_SIZE];
};

/* Errors: MOOR_EINVAL (store not empty). */
int kv_load_open(struct kv_store *s, struct kv_load *l);
/* Borrows data. MOOR_ECORRUPT (bad record; l->errmsg names the offset),
 * MOOR_ENOMEM. After an error the store must be freed. */
int kv_load_feed(struct kv_load *l, const void *data, size_t len);
/* MOOR_ECORRUPT if the stream ended before its end record. */
int kv_load_finish(struct kv_load *l);
void kv_load_close(struct kv_load *l);

#endif /* MOOR_KV_H */
