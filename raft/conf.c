/*
 * raft/conf.c: membership. Single-server changes taking effect when
 * appended (thesis §4.1); see raft.h for why not "when committed".
 *
 * The node keeps base_conf (in force at the snapshot point) and the
 * indexes of the conf-change entries in its log; conf is base_conf with
 * those applied in order. Truncation drops entries and rebuilds conf;
 * compaction folds them into base_conf.
 */
#include "raft_int.h"

#define CONF_VERSION 1
#define CONF_HEADER 10

struct moor_bytes *raft_conf_change_encode(const struct raft_conf_change *cc)
{
    struct moor_bytes *b = moor_bytes_new(CONF_HEADER + cc->context.len);
    if (b == NULL) {
        return NULL;
    }
    b->data[0] = CONF_VERSION;
    b->data[1] = cc->type;
    moor_put_le64(b->data + 2, cc->node_id);
    if (cc->context.len > 0) {
        memcpy(b->data + CONF_HEADER, cc->context.ptr, cc->context.len);
    }
    return b;
}

int raft_conf_change_decode(struct moor_slice data, struct raft_conf_change *cc)
{
    if (data.len < CONF_HEADER || data.ptr[0] != CONF_VERSION) {
        return MOOR_EPROTO;
    }
    cc->type = data.ptr[1];
    if (cc->type < RAFT_CONF_ADD_VOTER || cc->type > RAFT_CONF_PROMOTE) {
        return MOOR_EPROTO;
    }
    cc->node_id = moor_get_le64(data.ptr + 2);
    if (cc->node_id == 0) {
        return MOOR_EPROTO;
    }
    cc->context =
        moor_slice_make(data.ptr + CONF_HEADER, data.len - CONF_HEADER);
    return MOOR_OK;
}

const struct raft_member *raft_conf_find(const struct raft_conf *conf,
                                         uint64_t id)
{
    for (uint32_t i = 0; i < conf->n; i++) {
        if (conf->members[i].id == id) {
            return &conf->members[i];
        }
    }
    return NULL;
}

uint32_t raft_conf_voters(const struct raft_conf *conf)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        v += conf->members[i].learner ? 0u : 1u;
    }
    return v;
}

int raft_conf_apply(struct raft_conf *conf, const struct raft_conf_change *cc)
{
    struct raft_member *m =
        (struct raft_member *)(uintptr_t)raft_conf_find(conf, cc->node_id);
    switch (cc->type) {
    case RAFT_CONF_ADD_VOTER:
    case RAFT_CONF_ADD_LEARNER:
        if (m != NULL || conf->n == RAFT_MEMBERS_MAX || cc->node_id == 0) {
            return MOOR_EINVAL;
        }
        conf->members[conf->n].id = cc->node_id;
        conf->members[conf->n].learner = cc->type == RAFT_CONF_ADD_LEARNER;
        conf->n++;
        return MOOR_OK;
    case RAFT_CONF_REMOVE: {
        if (m == NULL) {
            return MOOR_EINVAL;
        }
        size_t i = (size_t)(m - conf->members);
        memmove(&conf->members[i], &conf->members[i + 1],
                (conf->n - i - 1) * sizeof(conf->members[0]));
        conf->n--;
        memset(&conf->members[conf->n], 0, sizeof(conf->members[0]));
        return MOOR_OK;
    }
    case RAFT_CONF_PROMOTE:
        if (m == NULL || !m->learner) {
            return MOOR_EINVAL;
        }
        m->learner = false;
        return MOOR_OK;
    default:
        return MOOR_EINVAL;
    }
}

/* Applies the conf-change entry e to n->conf (ignoring changes that do not
 * apply: every member does the same). */
static void apply_entry(struct raft_conf *conf, const struct raft_entry *e)
{
    struct raft_conf_change cc;
    if (raft_conf_change_decode(moor_bytes_slice(e->data), &cc) != MOOR_OK) {
        return;
    }
    (void)raft_conf_apply(conf, &cc);
}

static void rebuild(struct raft_node *n)
{
    n->conf = n->base_conf;
    for (size_t i = 0; i < n->conf_idx_len; i++) {
        apply_entry(&n->conf, raft__log_at(&n->log, n->conf_idx[i]));
    }
    raft__conf_sync_progress(n);
}

int raft__conf_on_append(struct raft_node *n, const struct raft_entry *ents,
                         size_t count)
{
    bool changed = false;
    for (size_t i = 0; i < count; i++) {
        if (ents[i].type != RAFT_ENTRY_CONF_CHANGE) {
            continue;
        }
        if (n->conf_idx_len == n->conf_idx_cap) {
            size_t cap = n->conf_idx_cap == 0 ? 8 : n->conf_idx_cap * 2;
            uint64_t *p = moor_realloc(n->conf_idx, cap * sizeof(*p));
            if (p == NULL) {
                return MOOR_ENOMEM;
            }
            n->conf_idx = p;
            n->conf_idx_cap = cap;
        }
        n->conf_idx[n->conf_idx_len++] = ents[i].index;
        apply_entry(&n->conf, &ents[i]);
        changed = true;
    }
    if (changed) {
        raft__conf_sync_progress(n);
    }
    return MOOR_OK;
}

void raft__conf_on_truncate(struct raft_node *n, uint64_t index)
{
    size_t keep = n->conf_idx_len;
    while (keep > 0 && n->conf_idx[keep - 1] >= index) {
        keep--;
    }
    if (keep != n->conf_idx_len) {
        n->conf_idx_len = keep;
        rebuild(n);
    }
}

void raft__conf_on_compact(struct raft_node *n, uint64_t index)
{
    size_t k = 0;
    while (k < n->conf_idx_len && n->conf_idx[k] <= index) {
        apply_entry(&n->base_conf, raft__log_at(&n->log, n->conf_idx[k]));
        k++;
    }
    if (k > 0) {
        memmove(n->conf_idx, n->conf_idx + k,
                (n->conf_idx_len - k) * sizeof(*n->conf_idx));
        n->conf_idx_len -= k;
    }
}

void raft__conf_reset(struct raft_node *n, const struct raft_conf *base)
{
    n->base_conf = *base;
    n->conf_idx_len = 0;
    rebuild(n);
}

uint64_t raft__conf_last_index(const struct raft_node *n)
{
    return n->conf_idx_len == 0 ? 0 : n->conf_idx[n->conf_idx_len - 1];
}

void raft__conf_sync_progress(struct raft_node *n)
{
    uint64_t next = raft__log_last(&n->log) + 1;
    /* Free the slots of members that left. */
    for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
        struct raft_progress *pr = &n->prs[i];
        if (pr->id == 0) {
            continue;
        }
        const struct raft_member *m = raft_conf_find(&n->conf, pr->id);
        if (m == NULL) {
            pr->id = 0;
        } else {
            pr->learner = m->learner;
        }
    }
    /* Give newcomers a slot (their inflight ring stays with the slot). */
    for (uint32_t j = 0; j < n->conf.n; j++) {
        const struct raft_member *m = &n->conf.members[j];
        if (raft__progress(n, m->id) != NULL) {
            continue;
        }
        for (size_t i = 0; i < RAFT_MEMBERS_MAX; i++) {
            struct raft_progress *pr = &n->prs[i];
            if (pr->id == 0) {
                pr->id = m->id;
                pr->learner = m->learner;
                raft__progress_reset(pr, next);
                if (m->id == n->id) {
                    pr->match = n->log.persisted;
                }
                break;
            }
        }
    }
}
