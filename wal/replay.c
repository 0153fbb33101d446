/*
 * replay.c: turns the records of a log, in order, into what raft needs on
 * restart: the newest hard state, metadata and snapshot marker, and the
 * entries after the caller's snapshot, with rewritten suffixes replaced.
 *
 * Rules, in record order:
 * - An entry at index i <= start.index is below the snapshot: only tracked
 *   (it fixes the log's last index).
 * - An entry at i <= the log's last index replaces the suffix from i: the
 *   entries at i and after are dropped first (Raft's conflict truncation).
 * - An entry at i > last + 1 is a gap. It is allowed right after a snapshot
 *   marker at i - 1 (a snapshot installed from the leader replaces the
 *   log); replay then needs a start at or after that marker, else the log
 *   does not cover the caller's snapshot (MOOR_ENOENT). Any other gap is
 *   corruption.
 * - The newest entry (or snapshot marker) at start.index must have
 *   start.term: a snapshot that does not belong to this log is refused.
 * The entries array grows by doubling; every entry costs one moor_bytes
 * copy of its data, so replay memory is bounded by the log's size.
 */
#include <inttypes.h>
#include <stdio.h>

#include "wal_int.h"

void wal__replayer_init(struct wal__replayer *p, struct wal_snapshot start,
                        struct wal_replay *out)
{
    memset(p, 0, sizeof(*p));
    p->start = start;
    p->out = out;
    p->last_index = start.index;
    p->last_term = start.term;
}

/* Drops entries at index >= from from the array. */
static void drop_from(struct wal__replayer *p, uint64_t from)
{
    struct wal_replay *r = p->out;
    while (r->entries_len > 0 && r->entries[r->entries_len - 1].index >= from) {
        r->entries_len--;
        moor_bytes_unref(r->entries[r->entries_len].data);
        r->entries[r->entries_len].data = NULL;
    }
}

static int push_entry(struct wal__replayer *p, const struct raft_entry *e,
                      struct moor_slice data)
{
    struct wal_replay *r = p->out;
    if (r->entries_len == p->cap) {
        size_t cap = p->cap == 0 ? 64 : p->cap * 2;
        struct raft_entry *n = moor_realloc(r->entries, cap * sizeof(*n));
        if (n == NULL) {
            return MOOR_ENOMEM;
        }
        r->entries = n;
        p->cap = cap;
    }
    struct moor_bytes *b = NULL;
    if (data.len > 0) {
        b = moor_bytes_copy(data.ptr, data.len);
        if (b == NULL) {
            return MOOR_ENOMEM;
        }
    }
    struct raft_entry *dst = &r->entries[r->entries_len++];
    *dst = *e;
    dst->data = b;
    return MOOR_OK;
}

static int apply_entry(struct wal__replayer *p, struct moor_slice pl)
{
    struct raft_entry e = {
        .term = moor_get_le64(pl.ptr),
        .index = moor_get_le64(pl.ptr + 8),
        .type = pl.ptr[16],
        .data = NULL,
    };
    struct moor_slice data = moor_slice_make(pl.ptr + WAL__ENTRY_HDR_BYTES,
                                             pl.len - WAL__ENTRY_HDR_BYTES);
    if (e.index == 0) {
        snprintf(p->why, sizeof(p->why), "entry with index 0");
        return MOOR_ECORRUPT;
    }
    if (e.index > p->last_index + 1) {
        if (!p->seen_entry && p->gap_marker + 1 != e.index) {
            snprintf(p->why, sizeof(p->why),
                     "the log does not cover snapshot %" PRIu64
                     ": its oldest entry is %" PRIu64,
                     p->start.index, e.index);
            return MOOR_ENOENT;
        }
        if (p->gap_marker + 1 != e.index) {
            snprintf(p->why, sizeof(p->why),
                     "entry %" PRIu64 " follows entry %" PRIu64
                     " with no snapshot marker between",
                     e.index, p->last_index);
            return MOOR_ECORRUPT;
        }
        /* A snapshot installed from the leader replaced the log. */
        drop_from(p, 0);
        if (p->gap_from == 0 && p->start.index < p->gap_marker) {
            p->gap_from = p->last_index + 1;
        }
    }
    p->seen_entry = true;
    p->last_index = e.index;
    p->last_term = e.term;
    if (e.index == p->start.index) {
        p->start_term_seen = e.term;
    }
    if (e.index <= p->start.index) {
        drop_from(p, p->start.index + 1);
        return MOOR_OK;
    }
    drop_from(p, e.index);
    return push_entry(p, &e, data);
}

int wal__replayer_apply(struct wal__replayer *p, const struct wal__rec *rec)
{
    struct moor_slice pl = rec->payload;
    struct wal_replay *r = p->out;
    switch (rec->type) {
    case WAL__REC_META:
        r->meta.cluster_id = moor_get_le64(pl.ptr);
        r->meta.member_id = moor_get_le64(pl.ptr + 8);
        p->have_meta = true;
        return MOOR_OK;
    case WAL__REC_HARD_STATE:
        r->hard_state.term = moor_get_le64(pl.ptr);
        r->hard_state.vote = moor_get_le64(pl.ptr + 8);
        r->hard_state.commit = moor_get_le64(pl.ptr + 16);
        return MOOR_OK;
    case WAL__REC_SNAPSHOT:
        r->snapshot.term = moor_get_le64(pl.ptr);
        r->snapshot.index = moor_get_le64(pl.ptr + 8);
        p->gap_marker = r->snapshot.index;
        if (r->snapshot.index == p->start.index && p->start.index != 0) {
            p->start_term_seen = r->snapshot.term;
        }
        return MOOR_OK;
    case WAL__REC_ENTRY:
        return apply_entry(p, pl);
    default:
        snprintf(p->why, sizeof(p->why), "unknown record type %u", rec->type);
        return MOOR_ECORRUPT;
    }
}

int wal__replayer_finish(struct wal__replayer *p)
{
    if (p->gap_from != 0) {
        snprintf(p->why, sizeof(p->why),
                 "the log does not cover snapshot %" PRIu64
                 ": entries from %" PRIu64
                 " were replaced by a newer snapshot at %" PRIu64,
                 p->start.index, p->gap_from, p->gap_marker);
        return MOOR_ENOENT;
    }
    if (p->start_term_seen != 0 && p->start_term_seen != p->start.term) {
        snprintf(p->why, sizeof(p->why),
                 "snapshot at index %" PRIu64 " has term %" PRIu64
                 " but the log has term %" PRIu64 " there",
                 p->start.index, p->start.term, p->start_term_seen);
        return MOOR_ECORRUPT;
    }
    if (!p->have_meta) {
        snprintf(p->why, sizeof(p->why), "no metadata record");
        return MOOR_ECORRUPT;
    }
    return MOOR_OK;
}

void wal_replay_close(struct wal_replay *r)
{
    for (size_t i = 0; i < r->entries_len; i++) {
        moor_bytes_unref(r->entries[i].data);
    }
    moor_free(r->entries);
    memset(r, 0, sizeof(*r));
}
