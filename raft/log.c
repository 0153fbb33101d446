/*
 * raft/log.c: the in-memory log, entries (snap_index, last].
 *
 * The log owns one reference on each entry's payload. Compaction moves the
 * tail to the front (compaction is rare and caller-paced); appends grow the
 * array geometrically.
 */
#include "raft_int.h"

void raft__log_init(struct raft_log *l, uint64_t snap_index, uint64_t snap_term)
{
    memset(l, 0, sizeof(*l));
    l->snap_index = snap_index;
    l->snap_term = snap_term;
    l->handed = snap_index;
    l->persisted = snap_index;
}

static void drop_range(struct raft_log *l, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (l->ents[i].data != NULL) {
            l->bytes -= l->ents[i].data->len;
        }
        moor_bytes_unref(l->ents[i].data);
        l->ents[i].data = NULL;
    }
}

void raft__log_close(struct raft_log *l)
{
    drop_range(l, 0, l->len);
    moor_free(l->ents);
    memset(l, 0, sizeof(*l));
}

uint64_t raft__log_term(const struct raft_log *l, uint64_t index)
{
    if (index == l->snap_index) {
        return l->snap_term;
    }
    if (index < l->snap_index || index > raft__log_last(l)) {
        return 0;
    }
    return raft__log_at(l, index)->term;
}

int raft__log_append(struct raft_log *l, const struct raft_entry *ents,
                     size_t n)
{
    if (n == 0) {
        return MOOR_OK;
    }
    MOOR_ASSERT(ents[0].index == raft__log_last(l) + 1);
    if (l->len + n > l->cap) {
        size_t cap = l->cap < 64 ? 64 : l->cap;
        while (cap < l->len + n) {
            cap *= 2;
        }
        struct raft_entry *p = moor_realloc(l->ents, cap * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        l->ents = p;
        l->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        struct raft_entry *e = &l->ents[l->len + i];
        *e = ents[i];
        MOOR_ASSERT(e->index == raft__log_last(l) + 1 + i);
        e->data = moor_bytes_ref(ents[i].data);
        if (e->data != NULL) {
            l->bytes += e->data->len;
        }
    }
    l->len += n;
    return MOOR_OK;
}

void raft__log_truncate(struct raft_log *l, uint64_t index)
{
    MOOR_ASSERT(index > l->snap_index);
    if (index > raft__log_last(l)) {
        return;
    }
    size_t keep = (size_t)(index - l->snap_index - 1);
    drop_range(l, keep, l->len);
    l->len = keep;
    if (l->handed >= index) {
        l->handed = index - 1;
    }
    if (l->persisted >= index) {
        l->persisted = index - 1;
    }
}

void raft__log_compact(struct raft_log *l, uint64_t index)
{
    MOOR_ASSERT(index > l->snap_index && index <= raft__log_last(l));
    size_t k = (size_t)(index - l->snap_index);
    uint64_t term = raft__log_at(l, index)->term;
    drop_range(l, 0, k);
    memmove(l->ents, l->ents + k, (l->len - k) * sizeof(*l->ents));
    l->len -= k;
    l->snap_index = index;
    l->snap_term = term;
    if (l->handed < index) {
        l->handed = index;
    }
    if (l->persisted < index) {
        l->persisted = index;
    }
}

void raft__log_reset(struct raft_log *l, uint64_t index, uint64_t term)
{
    drop_range(l, 0, l->len);
    l->len = 0;
    l->snap_index = index;
    l->snap_term = term;
    l->handed = index;
    /* The snapshot is durable only once reported; entries the caller held
     * below it are superseded by it either way. */
    if (l->persisted >= index) {
        l->persisted = index - 1;
    }
}

bool raft__log_up_to_date(const struct raft_log *l, uint64_t last_term,
                          uint64_t last_index)
{
    uint64_t my_term = raft__log_last_term(l);
    return last_term > my_term ||
           (last_term == my_term && last_index >= raft__log_last(l));
}

uint64_t raft__log_find_conflict_by_term(const struct raft_log *l,
                                         uint64_t index, uint64_t term)
{
    if (index > raft__log_last(l)) {
        index = raft__log_last(l);
    }
    while (index > l->snap_index && raft__log_at(l, index)->term > term) {
        index--;
    }
    return index < l->snap_index ? l->snap_index : index;
}
