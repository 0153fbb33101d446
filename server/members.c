/*
 * members.c: the cluster's membership as the member records it, and the
 * Cluster service (MemberAdd, MemberRemove, MemberUpdate, MemberPromote,
 * MemberList).
 *
 * Two views of membership exist, and this file keeps them apart:
 * - raft's configuration (ids, voter or learner) is the latest one in the
 *   log, in force from the moment an entry is appended (raft.h). The
 *   member dials a newly added member as soon as its change is appended
 *   (srv_members_appended), since a new voter may be needed for the very
 *   commit that adds it.
 * - the member table (struct srv_members: ids, names, peer and client
 *   URLs, learner flags) is applied state: it changes when a conf-change
 *   entry or a MemberUpdate / attribute request is applied, identically on
 *   every member. Snapshots carry it (the membership block, an encoded
 *   moorpb.Membership), and a new member's first table is written to
 *   <data-dir>/member/membership so a restart before the first snapshot
 *   finds it; restarts ignore --initial-cluster, as etcd does.
 *
 * A conf-change entry's context is the proposing member's request id
 * (le64, 0 for none) followed by an encoded moorpb.Member (the added
 * member; empty for remove and promote), so the proposer can answer its
 * client when the entry is applied.
 *
 * A member whose removal it applies stops ("the member has been
 * permanently removed from the cluster"). Names and client URLs of a
 * member are published through raft by the member itself once it leads
 * or follows (srv_members_publish), as etcd's members publish theirs; a
 * member added by MemberAdd is listed with an empty name until it starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peer_int.h"
#include "server_int.h"

/* ------------------------------------------------------------------------
 * The table
 * ---------------------------------------------------------------------- */

bool srv_members_was_removed(const struct srv_members *ms, uint64_t id)
{
    for (unsigned i = 0; i < ms->n_removed; i++) {
        if (ms->removed[i] == id) {
            return true;
        }
    }
    return false;
}

static void removed_add(struct srv_members *ms, uint64_t id)
{
    if (ms->n_removed == SRV_REMOVED_MAX) {
        memmove(ms->removed, ms->removed + 1,
                (SRV_REMOVED_MAX - 1) * sizeof(ms->removed[0]));
        ms->n_removed--;
    }
    ms->removed[ms->n_removed++] = id;
}

struct srv_member *srv_members_find(struct srv_members *ms, uint64_t id)
{
    for (unsigned i = 0; i < ms->n; i++) {
        if (ms->m[i].id == id) {
            return &ms->m[i];
        }
    }
    return NULL;
}

void srv_members_from_config(const struct srv_config *cfg,
                             struct srv_members *ms)
{
    memset(ms, 0, sizeof(*ms));
    uint64_t ids[SRV_MEMBERS_MAX];
    for (unsigned i = 0; i < cfg->n_initial_members; i++) {
        const struct srv_initial_member *im = &cfg->initial_members[i];
        struct srv_member *m = &ms->m[ms->n++];
        m->id = im->id;
        snprintf(m->name, sizeof(m->name), "%s", im->name);
        m->peer_urls = im->peer_urls;
        ids[i] = im->id;
    }
    ms->cluster_id = srv_cluster_id(ids, cfg->n_initial_members);
}

void srv_members_to_conf(const struct srv_members *ms, struct raft_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    for (unsigned i = 0; i < ms->n && i < RAFT_MEMBERS_MAX; i++) {
        conf->members[conf->n].id = ms->m[i].id;
        conf->members[conf->n].learner = ms->m[i].learner;
        conf->n++;
    }
}

/* Parses n URL strings into out. MOOR_EMEMBERBADURLS on any bad one, on
 * none, or on more than SRV_URLS_MAX. */
static int urls_parse(char *const *urls, size_t n, struct srv_url_list *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0 || n > SRV_URLS_MAX) {
        return MOOR_EMEMBERBADURLS;
    }
    char errmsg[MOOR_ERRMSG_SIZE];
    for (size_t i = 0; i < n; i++) {
        if (urls[i] == NULL ||
            srv_url_parse(urls[i], &out->urls[out->n], errmsg) != MOOR_OK) {
            return MOOR_EMEMBERBADURLS;
        }
        out->n++;
    }
    return MOOR_OK;
}

/* Copies a moorpb.Member into m (bounded); MOOR_EPROTO on bad URLs or
 * names. Peer URLs are required unless allow_no_peers. */
static int member_from_pb(const Moorpb__Member *pm, struct srv_member *m,
                          bool allow_no_peers)
{
    memset(m, 0, sizeof(*m));
    m->id = pm->id;
    m->learner = pm->is_learner;
    if (pm->name != NULL) {
        if (strlen(pm->name) >= sizeof(m->name)) {
            return MOOR_EPROTO;
        }
        snprintf(m->name, sizeof(m->name), "%s", pm->name);
    }
    if (pm->n_peer_urls > 0 || !allow_no_peers) {
        if (urls_parse(pm->peer_urls, pm->n_peer_urls, &m->peer_urls) !=
            MOOR_OK) {
            return MOOR_EPROTO;
        }
    }
    if (pm->n_client_urls > 0 && urls_parse(pm->client_urls, pm->n_client_urls,
                                            &m->client_urls) != MOOR_OK) {
        return MOOR_EPROTO;
    }
    return m->id != 0 ? MOOR_OK : MOOR_EPROTO;
}

/* Fills pm (pointing into m and the caller's arrays) from m. */
static void member_to_pb(const struct srv_member *m, Moorpb__Member *pm,
                         char **peer, char **client)
{
    moorpb__member__init(pm);
    pm->id = m->id;
    pm->name = (char *)(uintptr_t)m->name;
    pm->is_learner = m->learner;
    for (unsigned k = 0; k < m->peer_urls.n; k++) {
        peer[k] = (char *)(uintptr_t)m->peer_urls.urls[k].text;
    }
    pm->peer_urls = peer;
    pm->n_peer_urls = m->peer_urls.n;
    for (unsigned k = 0; k < m->client_urls.n; k++) {
        client[k] = (char *)(uintptr_t)m->client_urls.urls[k].text;
    }
    pm->client_urls = client;
    pm->n_client_urls = m->client_urls.n;
}

/* A moorpb.Membership pointing into a table (and into itself). */
struct membership_pb
{
    Moorpb__Membership pb;
    Moorpb__Member pms[SRV_MEMBERS_MAX];
    Moorpb__Member *ptrs[SRV_MEMBERS_MAX];
    char *peer[SRV_MEMBERS_MAX][SRV_URLS_MAX];
    char *client[SRV_MEMBERS_MAX][SRV_URLS_MAX];
};

static void membership_pb_fill(const struct srv_members *ms,
                               struct membership_pb *p)
{
    for (unsigned i = 0; i < ms->n; i++) {
        member_to_pb(&ms->m[i], &p->pms[i], p->peer[i], p->client[i]);
        p->ptrs[i] = &p->pms[i];
    }
    moorpb__membership__init(&p->pb);
    p->pb.cluster_id = ms->cluster_id;
    p->pb.members = p->ptrs;
    p->pb.n_members = ms->n;
    p->pb.removed = (uint64_t *)(uintptr_t)ms->removed;
    p->pb.n_removed = ms->n_removed;
}

int srv_members_encode(const struct srv_members *ms,
                       const struct srv_alarm *alarms, size_t n_alarms,
                       struct moor_bytes **out)
{
    static struct membership_pb p; /* loop thread only; large */
    membership_pb_fill(ms, &p);
    Moorpb__Alarm pa[SRV_ALARMS_MAX];
    Moorpb__Alarm *pap[SRV_ALARMS_MAX];
    MOOR_ASSERT(n_alarms <= SRV_ALARMS_MAX);
    for (size_t i = 0; i < n_alarms; i++) {
        moorpb__alarm__init(&pa[i]);
        pa[i].member_id = alarms[i].member_id;
        pa[i].type = alarms[i].type;
        pap[i] = &pa[i];
    }
    p.pb.alarms = pap;
    p.pb.n_alarms = n_alarms;
    size_t len = moorpb__membership__get_packed_size(&p.pb);
    struct moor_bytes *b = moor_bytes_new(len);
    if (b == NULL) {
        return MOOR_ENOMEM;
    }
    moorpb__membership__pack(&p.pb, b->data);
    *out = b;
    return MOOR_OK;
}

int srv_members_join_answer(struct srv_node *n, struct moor_buf *out)
{
    static struct membership_pb p; /* loop thread only; large */
    membership_pb_fill(&n->members, &p);
    Moorpb__Frame f = MOORPB__FRAME__INIT;
    f.body_case = MOORPB__FRAME__BODY_MEMBERSHIP;
    f.membership = &p.pb;
    size_t len = moorpb__frame__get_packed_size(&f);
    int rv = moor_buf_reserve(out, len + 4);
    if (rv != MOOR_OK) {
        return rv;
    }
    moor_put_be32(out->ptr + out->len, (uint32_t)len);
    moorpb__frame__pack(&f, out->ptr + out->len + 4);
    out->len += len + 4;
    return MOOR_OK;
}

int srv_members_decode(struct moor_slice blob, struct srv_members *ms,
                       struct srv_alarm *alarms, size_t *n_alarms, char *errmsg)
{
    memset(ms, 0, sizeof(*ms));
    if (n_alarms != NULL) {
        *n_alarms = 0;
    }
    ProtobufCMessage *m = NULL;
    int rv = moor_pb_unpack(&moorpb__membership__descriptor, blob.ptr, blob.len,
                            blob.len, &m);
    if (rv != MOOR_OK) {
        moor_errmsg_set(errmsg, "membership block does not decode");
        return MOOR_ECORRUPT;
    }
    const Moorpb__Membership *pb = (const Moorpb__Membership *)m;
    rv = MOOR_OK;
    if (pb->cluster_id == 0 || pb->n_members == 0 ||
        pb->n_members > SRV_MEMBERS_MAX) {
        moor_errmsg_set(errmsg,
                        "membership block: cluster id 0 or %zu members "
                        "(1 to %u allowed)",
                        pb->n_members, SRV_MEMBERS_MAX);
        rv = MOOR_ECORRUPT;
    }
    for (size_t i = 0; rv == MOOR_OK && i < pb->n_members; i++) {
        struct srv_member *mm = &ms->m[ms->n];
        if (member_from_pb(pb->members[i], mm, false) != MOOR_OK ||
            srv_members_find(ms, mm->id) != NULL) {
            moor_errmsg_set(errmsg, "membership block: member %zu is invalid",
                            i);
            rv = MOOR_ECORRUPT;
            break;
        }
        ms->n++;
    }
    ms->cluster_id = pb->cluster_id;
    for (size_t i = 0; rv == MOOR_OK && i < pb->n_removed; i++) {
        removed_add(ms, pb->removed[i]);
    }
    if (rv == MOOR_OK && pb->n_alarms > SRV_ALARMS_MAX) {
        moor_errmsg_set(errmsg, "membership block: %zu alarms (at most %u)",
                        pb->n_alarms, SRV_ALARMS_MAX);
        rv = MOOR_ECORRUPT;
    }
    for (size_t i = 0; rv == MOOR_OK && n_alarms != NULL && i < pb->n_alarms;
         i++) {
        alarms[i].member_id = pb->alarms[i]->member_id;
        alarms[i].type = pb->alarms[i]->type;
        *n_alarms = i + 1;
    }
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
    if (rv != MOOR_OK) {
        memset(ms, 0, sizeof(*ms));
        if (n_alarms != NULL) {
            *n_alarms = 0;
        }
    }
    return rv;
}

int srv_members_restore(struct srv_node *n, const struct moor_bytes *blob)
{
    if (blob == NULL || blob->len == 0) {
        return MOOR_OK; /* an old snapshot: keep the table as it is */
    }
    struct srv_members ms;
    struct srv_alarm alarms[SRV_ALARMS_MAX];
    size_t n_alarms = 0;
    int rv = srv_members_decode(moor_bytes_slice(blob), &ms, alarms, &n_alarms,
                                n->errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    n->members = ms;
    srv_alarms_restore(n, alarms, n_alarms);
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * <data-dir>/member/membership: the first table of a new member
 * ---------------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int srv_members_save_file(struct srv_node *n)
{
    struct moor_bytes *b = NULL;
    int rv = srv_members_encode(&n->members, NULL, 0, &b);
    if (rv != MOOR_OK) {
        moor_errmsg_set(n->errmsg, "encoding the membership: out of memory");
        return rv;
    }
    char path[4200], tmp[4210];
    snprintf(path, sizeof(path), "%s/membership", n->datadir.member_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = 0;
    if (fd < 0 || write_all(fd, b->data, b->len) != 0 || fsync(fd) != 0) {
        err = errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    if (err == 0 && rename(tmp, path) != 0) {
        err = errno;
    }
    if (err == 0) {
        int dfd = open(n->datadir.member_dir, O_RDONLY | O_DIRECTORY);
        if (dfd < 0 || fsync(dfd) != 0) {
            err = errno;
        }
        if (dfd >= 0) {
            close(dfd);
        }
    }
    moor_bytes_unref(b);
    if (err != 0) {
        moor_errmsg_set(n->errmsg, "writing %s: %s", path, strerror(err));
        return moor_err_from_errno(err);
    }
    return MOOR_OK;
}

int srv_members_load_file(struct srv_node *n)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/membership", n->datadir.member_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return MOOR_ENOENT;
        }
        moor_errmsg_set(n->errmsg, "opening %s: %s", path, strerror(errno));
        return moor_err_from_errno(errno);
    }
    /* A membership block is at most 16 members of a few KiB each. */
    static const size_t cap = 1u << 20;
    uint8_t *buf = moor_malloc(cap);
    if (buf == NULL) {
        close(fd);
        return MOOR_ENOMEM;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
        if (len == cap) {
            break;
        }
    }
    close(fd);
    struct srv_members ms;
    char why[MOOR_ERRMSG_SIZE];
    int rv =
        srv_members_decode((struct moor_slice){buf, len}, &ms, NULL, NULL, why);
    moor_free(buf);
    if (rv != MOOR_OK) {
        moor_errmsg_set(n->errmsg, "%s: %s", path, why);
        return rv;
    }
    n->members = ms;
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * Conf-change entries
 * ---------------------------------------------------------------------- */

/* Splits a conf change's context into the request id and the member it
 * carries (mb->id 0 when none). MOOR_EPROTO when malformed. */
static int context_decode(struct moor_slice ctx, uint64_t *req_id,
                          struct srv_member *mb)
{
    memset(mb, 0, sizeof(*mb));
    *req_id = 0;
    if (ctx.len < 8) {
        return ctx.len == 0 ? MOOR_OK : MOOR_EPROTO;
    }
    *req_id = moor_get_le64(ctx.ptr);
    if (ctx.len == 8) {
        return MOOR_OK;
    }
    ProtobufCMessage *m = NULL;
    int rv = moor_pb_unpack(&moorpb__member__descriptor, ctx.ptr + 8,
                            ctx.len - 8, ctx.len - 8, &m);
    if (rv != MOOR_OK) {
        return MOOR_EPROTO;
    }
    rv = member_from_pb((const Moorpb__Member *)m, mb, false);
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
    return rv;
}

void srv_members_appended(struct srv_node *n, const struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *e = &rd->entries[i];
        struct raft_conf_change cc;
        if (e->type != RAFT_ENTRY_CONF_CHANGE || e->data == NULL ||
            raft_conf_change_decode(moor_bytes_slice(e->data), &cc) !=
                MOOR_OK) {
            continue;
        }
        if (cc.type != RAFT_CONF_ADD_VOTER &&
            cc.type != RAFT_CONF_ADD_LEARNER) {
            continue;
        }
        uint64_t req_id;
        struct srv_member mb;
        if (context_decode(cc.context, &req_id, &mb) != MOOR_OK ||
            mb.id != cc.node_id || mb.id == n->member_id) {
            continue;
        }
        srv_peer_add(n, mb.id, &mb.peer_urls);
    }
}

/* Fills the members of a Member*Response from the table. */
struct members_pb
{
    Etcdserverpb__Member ms[SRV_MEMBERS_MAX];
    Etcdserverpb__Member *ptrs[SRV_MEMBERS_MAX];
    char *peer[SRV_MEMBERS_MAX][SRV_URLS_MAX];
    char *client[SRV_MEMBERS_MAX][SRV_URLS_MAX];
    unsigned n;
};

static void member_etcd_pb(struct srv_node *n, const struct srv_member *m,
                           Etcdserverpb__Member *out, char **peer,
                           char **client)
{
    etcdserverpb__member__init(out);
    out->id = m->id;
    out->name = (char *)(uintptr_t)m->name;
    out->islearner = m->learner;
    for (unsigned k = 0; k < m->peer_urls.n; k++) {
        peer[k] = (char *)(uintptr_t)m->peer_urls.urls[k].text;
    }
    out->peerurls = peer;
    out->n_peerurls = m->peer_urls.n;
    unsigned nc = 0;
    if (m->client_urls.n > 0) {
        for (unsigned k = 0; k < m->client_urls.n; k++) {
            client[nc++] = (char *)(uintptr_t)m->client_urls.urls[k].text;
        }
    } else if (m->id == n->member_id) {
        for (unsigned k = 0; k < n->cfg->advertise_client_urls.n; k++) {
            client[nc++] =
                (char *)(uintptr_t)n->cfg->advertise_client_urls.urls[k].text;
        }
    } else {
        /* Not published yet: what its peer handshake said, if it did. */
        const char *urls[SRV_URLS_MAX];
        unsigned k = srv_peer_client_urls(n, m->id, urls, SRV_URLS_MAX);
        for (unsigned u = 0; u < k; u++) {
            client[nc++] = (char *)(uintptr_t)urls[u];
        }
    }
    out->clienturls = client;
    out->n_clienturls = nc;
}

static void members_pb_fill(struct srv_node *n, struct members_pb *p)
{
    p->n = n->members.n;
    for (unsigned i = 0; i < p->n; i++) {
        member_etcd_pb(n, &n->members.m[i], &p->ms[i], p->peer[i],
                       p->client[i]);
        p->ptrs[i] = &p->ms[i];
    }
}

/* Answers the waiter of a membership change applied (or refused). */
static void answer_change(struct srv_node *n, uint64_t req_id, int err,
                          const struct srv_member *added)
{
    struct srv_waiter *w = req_id != 0 ? srv_waiter_find(n, req_id) : NULL;
    if (w == NULL || w->kind != SRV_REQ_MEMBER) {
        return;
    }
    struct rpc_call *call = w->call;
    srv_waiter_free(n, w);
    if (call == NULL) {
        return;
    }
    if (err != MOOR_OK) {
        srv_call_fail(call, err);
        return;
    }
    static struct members_pb p; /* loop thread only; large */
    members_pb_fill(n, &p);
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, kv_store_revision(n->kv));
    /* Every Member*Response is header = 1, then members (2, or 3 with the
     * added member at 2), so one shape per kind. */
    if (added != NULL) {
        Etcdserverpb__Member am;
        char *peer[SRV_URLS_MAX], *client[SRV_URLS_MAX];
        member_etcd_pb(n, added, &am, peer, client);
        Etcdserverpb__MemberAddResponse r =
            ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT;
        r.header = &h;
        r.member = &am;
        r.members = p.ptrs;
        r.n_members = p.n;
        srv_reply(call, &r.base);
        return;
    }
    Etcdserverpb__MemberRemoveResponse r =
        ETCDSERVERPB__MEMBER_REMOVE_RESPONSE__INIT;
    r.header = &h;
    r.members = p.ptrs;
    r.n_members = p.n;
    srv_reply(call, &r.base);
}

void srv_members_apply_conf(struct srv_node *n, uint64_t index,
                            struct moor_slice data)
{
    kv_store_note_applied(n->kv, index);
    struct raft_conf_change cc;
    uint64_t req_id = 0;
    struct srv_member mb;
    if (raft_conf_change_decode(data, &cc) != MOOR_OK ||
        context_decode(cc.context, &req_id, &mb) != MOOR_OK) {
        MOOR_LOG_ERROR("members", "undecodable conf change skipped",
                       "index=%llu", (unsigned long long)index);
        return;
    }
    struct srv_members *ms = &n->members;
    struct srv_member *cur = srv_members_find(ms, cc.node_id);
    switch (cc.type) {
    case RAFT_CONF_ADD_VOTER:
    case RAFT_CONF_ADD_LEARNER:
        if (cur != NULL || ms->n == SRV_MEMBERS_MAX || mb.id != cc.node_id) {
            answer_change(n, req_id, MOOR_EMEMBEREXISTS, NULL);
            return;
        }
        mb.learner = cc.type == RAFT_CONF_ADD_LEARNER;
        ms->m[ms->n++] = mb;
        if (mb.id != n->member_id) {
            /* Already dialed when appended, unless this apply replays a
             * log after a restart. */
            srv_peer_add(n, mb.id, &mb.peer_urls);
        }
        MOOR_LOG_INFO("members", "member added", "id=%llx learner=%s url=%s",
                      (unsigned long long)mb.id, mb.learner ? "true" : "false",
                      mb.peer_urls.n > 0 ? mb.peer_urls.urls[0].text : "");
        answer_change(n, req_id, MOOR_OK, &mb);
        return;
    case RAFT_CONF_REMOVE:
        if (cur == NULL) {
            answer_change(n, req_id, MOOR_EMEMBERNOTFOUND, NULL);
            return;
        }
        *cur = ms->m[ms->n - 1];
        ms->n--;
        removed_add(ms, cc.node_id);
        MOOR_LOG_INFO("members", "member removed", "id=%llx",
                      (unsigned long long)cc.node_id);
        answer_change(n, req_id, MOOR_OK, NULL);
        if (cc.node_id == n->member_id) {
            srv_node_stop(n,
                          "the member has been permanently removed from "
                          "the cluster");
        } else {
            srv_peer_remove(n, cc.node_id);
        }
        return;
    case RAFT_CONF_PROMOTE:
        if (cur == NULL || !cur->learner) {
            answer_change(
                n, req_id,
                cur == NULL ? MOOR_EMEMBERNOTFOUND : MOOR_EMEMBERNOTLEARNER,
                NULL);
            return;
        }
        cur->learner = false;
        MOOR_LOG_INFO("members", "learner promoted", "id=%llx",
                      (unsigned long long)cc.node_id);
        answer_change(n, req_id, MOOR_OK, NULL);
        return;
    default:
        answer_change(n, req_id, MOOR_EINVAL, NULL);
        return;
    }
}

bool srv_members_apply(struct srv_node *n, uint64_t index,
                       const Moorpb__InternalRequest *ir)
{
    const Moorpb__Member *pm = NULL;
    bool update = false;
    if (ir->request_case == MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_UPDATE) {
        pm = ir->member_update;
        update = true;
    } else if (ir->request_case ==
               MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_ATTR) {
        pm = ir->member_attr;
    } else {
        return false;
    }
    kv_store_note_applied(n->kv, index);
    struct srv_member mb;
    struct srv_member *cur = srv_members_find(&n->members, pm->id);
    int err = MOOR_OK;
    if (cur == NULL) {
        err = MOOR_EMEMBERNOTFOUND;
    } else if (member_from_pb(pm, &mb, !update) != MOOR_OK) {
        err = MOOR_EMEMBERBADURLS;
    } else if (update) {
        cur->peer_urls = mb.peer_urls;
        MOOR_LOG_INFO("members", "member updated", "id=%llx url=%s",
                      (unsigned long long)mb.id, mb.peer_urls.urls[0].text);
        if (mb.id != n->member_id) {
            srv_peer_remove(n, mb.id);
            srv_peer_add(n, mb.id, &mb.peer_urls);
        }
    } else {
        snprintf(cur->name, sizeof(cur->name), "%s", mb.name);
        cur->client_urls = mb.client_urls;
    }
    if (update) {
        answer_change(n, ir->id, err, NULL);
    }
    return true;
}

void srv_members_publish(struct srv_node *n)
{
    if (n->published || raft_node_leader(n->raft) == 0 || n->stopping) {
        return;
    }
    struct srv_member *me = srv_members_find(&n->members, n->member_id);
    if (me == NULL) {
        return;
    }
    const struct srv_url_list *cu = &n->cfg->advertise_client_urls;
    bool same =
        strcmp(me->name, n->cfg->name) == 0 && me->client_urls.n == cu->n;
    for (unsigned i = 0; same && i < cu->n; i++) {
        same = strcmp(me->client_urls.urls[i].text, cu->urls[i].text) == 0;
    }
    uint64_t now = uv_now(n->loop);
    if (same) {
        n->published = true;
        return;
    }
    if (now < n->publish_retry_ms) {
        return;
    }
    /* Proposed until applied (a proposal can be lost to a leader change):
     * at most once per election timeout. */
    n->publish_retry_ms = now + n->cfg->election_ms;
    char *client[SRV_URLS_MAX];
    for (unsigned i = 0; i < cu->n; i++) {
        client[i] = (char *)(uintptr_t)cu->urls[i].text;
    }
    Moorpb__Member pm = MOORPB__MEMBER__INIT;
    pm.id = n->member_id;
    pm.name = n->cfg->name;
    pm.client_urls = client;
    pm.n_client_urls = cu->n;
    Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
    ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_ATTR;
    ir.member_attr = &pm;
    srv_propose_request(n, NULL, 0, &ir);
}

/* ------------------------------------------------------------------------
 * The Cluster service
 * ---------------------------------------------------------------------- */

/* True when another member of the table already has one of urls. */
static bool urls_taken(const struct srv_members *ms, uint64_t except,
                       const struct srv_url_list *urls)
{
    for (unsigned i = 0; i < ms->n; i++) {
        if (ms->m[i].id == except) {
            continue;
        }
        for (unsigned a = 0; a < ms->m[i].peer_urls.n; a++) {
            for (unsigned b = 0; b < urls->n; b++) {
                if (strcmp(ms->m[i].peer_urls.urls[a].text,
                           urls->urls[b].text) == 0) {
                    return true;
                }
            }
        }
    }
    return false;
}

/* Proposes cc for call (on the leader: the handlers forward otherwise),
 * with the waiter's id and (may be NULL) the added member in its
 * context. */
static void propose_change(struct srv_node *n, struct rpc_call *call,
                           uint8_t type, uint64_t id,
                           const struct srv_member *added)
{
    struct srv_waiter *w = srv_waiter_new(n, SRV_REQ_MEMBER, call);
    if (w == NULL) {
        srv_call_fail(call, MOOR_EBUSY);
        return;
    }
    w->target = id;
    size_t len = 8;
    uint8_t *ctx = NULL;
    Moorpb__Member pm;
    char *peer[SRV_URLS_MAX], *client[SRV_URLS_MAX];
    if (added != NULL) {
        member_to_pb(added, &pm, peer, client);
        len += moorpb__member__get_packed_size(&pm);
    }
    ctx = moor_malloc(len);
    if (ctx == NULL) {
        srv_call_fail(call, MOOR_ENOMEM);
        srv_waiter_free(n, w);
        return;
    }
    moor_put_le64(ctx, w->id);
    if (added != NULL) {
        moorpb__member__pack(&pm, ctx + 8);
    }
    struct raft_conf_change cc = {.type = type, .node_id = id};
    cc.context.ptr = ctx;
    cc.context.len = len;
    int rv = raft_node_propose_conf_change(n->raft, &cc);
    moor_free(ctx);
    if (rv != MOOR_OK) {
        /* EBUSY: an earlier change is not committed yet (etcd would queue
         * it; the client retries). EINVAL: it does not apply. */
        srv_call_fail(call, rv == MOOR_EINVAL ? MOOR_EMEMBERNOTFOUND : rv);
        srv_waiter_free(n, w);
        return;
    }
    srv_node_process(n);
}

/* --strict-reconfig-check, on the leader: a voter may be added only while
 * every voter answers (etcd: "unhealthy cluster"), and removed only when
 * the voters left that answer still make a quorum ("not enough started
 * members"). A voter "answers" when this leader has heard an ack from it
 * (its match index is known). Learners never change the quorum. */
static int strict_check(struct srv_node *n, bool adding, uint64_t removing)
{
    if (!n->cfg->strict_reconfig_check) {
        return MOOR_OK;
    }
    const struct raft_conf *conf = raft_node_conf(n->raft);
    unsigned voters = 0, started = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        if (m->learner || m->id == removing) {
            continue;
        }
        voters++;
        if (m->id == n->member_id ||
            raft_node_match_index(n->raft, m->id) > 0) {
            started++;
        }
    }
    if (adding) {
        return started == voters ? MOOR_OK : MOOR_EUNHEALTHY;
    }
    return started >= voters / 2 + 1 ? MOOR_OK : MOOR_ENOTENOUGHSTARTED;
}

/* etcd's id for a member added at run time: SHA-1 over its sorted peer
 * URLs, the cluster token and the current unix time in seconds. */
static uint64_t new_member_id(struct srv_node *n,
                              const struct srv_url_list *urls)
{
    char salt[512];
    uint64_t secs = moor_clock_realtime_ns() / 1000000000u;
    for (;;) {
        snprintf(salt, sizeof(salt), "%s%llu", n->cfg->initial_cluster_token,
                 (unsigned long long)secs);
        uint64_t id = srv_member_id(urls, salt);
        if (id != 0 && srv_members_find(&n->members, id) == NULL) {
            return id;
        }
        secs++;
    }
}

static void on_member_add(struct rpc_call *call, struct moor_slice msg,
                          void *arg)
{
    struct srv_node *n = arg;
    if (raft_node_role(n->raft) != RAFT_LEADER) {
        /* raft takes membership changes at the leader. */
        srv_forward_unary(n, call, msg);
        return;
    }
    ProtobufCMessage *m =
        srv_decode(n, call, &etcdserverpb__member_add_request__descriptor, msg);
    if (m == NULL) {
        return;
    }
    const Etcdserverpb__MemberAddRequest *req =
        (const Etcdserverpb__MemberAddRequest *)m;
    struct srv_member mb;
    memset(&mb, 0, sizeof(mb));
    /* etcd's order: the URLs, the strict reconfiguration check, then the
     * membership rules. */
    int rv = urls_parse(req->peerurls, req->n_peerurls, &mb.peer_urls);
    if (rv == MOOR_OK && !req->islearner) {
        rv = strict_check(n, true, 0);
    }
    if (rv == MOOR_OK && urls_taken(&n->members, 0, &mb.peer_urls)) {
        rv = MOOR_EPEERURLEXISTS;
    }
    if (rv == MOOR_OK && n->members.n == SRV_MEMBERS_MAX) {
        rv = MOOR_EBUSY;
    }
    if (rv == MOOR_OK && req->islearner) {
        /* etcd allows one learner at a time (--experimental-max-learners
         * came later). */
        for (unsigned i = 0; i < n->members.n; i++) {
            if (n->members.m[i].learner) {
                rv = MOOR_ETOOMANYLEARNERS;
            }
        }
    }
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
    } else {
        mb.id = new_member_id(n, &mb.peer_urls);
        mb.learner = req->islearner;
        propose_change(
            n, call,
            req->islearner ? RAFT_CONF_ADD_LEARNER : RAFT_CONF_ADD_VOTER, mb.id,
            &mb);
    }
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
}

/* MemberRemove and MemberPromote name a member by id (field 1 of both
 * requests): on a follower the call is forwarded and NULL returned; an
 * unknown id is answered "member not found" (NULL); else the member. */
static const struct srv_member *target_member(
    struct srv_node *n, struct rpc_call *call, struct moor_slice msg,
    const ProtobufCMessageDescriptor *desc)
{
    if (raft_node_role(n->raft) != RAFT_LEADER) {
        /* raft takes membership changes at the leader. */
        srv_forward_unary(n, call, msg);
        return NULL;
    }
    ProtobufCMessage *m = srv_decode(n, call, desc, msg);
    if (m == NULL) {
        return NULL;
    }
    uint64_t id = desc == &etcdserverpb__member_remove_request__descriptor
                      ? ((const Etcdserverpb__MemberRemoveRequest *)m)->id
                      : ((const Etcdserverpb__MemberPromoteRequest *)m)->id;
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
    const struct srv_member *cur = srv_members_find(&n->members, id);
    if (cur == NULL) {
        srv_call_fail(call, MOOR_EMEMBERNOTFOUND);
    }
    return cur;
}

static void on_member_remove(struct rpc_call *call, struct moor_slice msg,
                             void *arg)
{
    struct srv_node *n = arg;
    const struct srv_member *cur = target_member(
        n, call, msg, &etcdserverpb__member_remove_request__descriptor);
    if (cur == NULL) {
        return;
    }
    int rv = cur->learner ? MOOR_OK : strict_check(n, false, cur->id);
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
        return;
    }
    propose_change(n, call, RAFT_CONF_REMOVE, cur->id, NULL);
}

static void on_member_promote(struct rpc_call *call, struct moor_slice msg,
                              void *arg)
{
    struct srv_node *n = arg;
    const struct srv_member *cur = target_member(
        n, call, msg, &etcdserverpb__member_promote_request__descriptor);
    if (cur == NULL) {
        return;
    }
    uint64_t id = cur->id;
    /* etcd's readiness rule, checked first as etcd does: the member holds
     * at least 90 % of what the leader holds. */
    uint64_t mine = raft_node_match_index(n->raft, n->member_id);
    uint64_t its = raft_node_match_index(n->raft, id);
    if ((double)its < 0.9 * (double)mine) {
        srv_call_fail(call, MOOR_ELEARNERNOTREADY);
        return;
    }
    if (!cur->learner) {
        srv_call_fail(call, MOOR_EMEMBERNOTLEARNER);
        return;
    }
    propose_change(n, call, RAFT_CONF_PROMOTE, id, NULL);
}

static void on_member_update(struct rpc_call *call, struct moor_slice msg,
                             void *arg)
{
    struct srv_node *n = arg;
    ProtobufCMessage *m = srv_decode(
        n, call, &etcdserverpb__member_update_request__descriptor, msg);
    if (m == NULL) {
        return;
    }
    const Etcdserverpb__MemberUpdateRequest *req =
        (const Etcdserverpb__MemberUpdateRequest *)m;
    struct srv_url_list urls;
    int rv = urls_parse(req->peerurls, req->n_peerurls, &urls);
    if (rv == MOOR_OK && srv_members_find(&n->members, req->id) == NULL) {
        rv = MOOR_EMEMBERNOTFOUND;
    }
    if (rv == MOOR_OK && urls_taken(&n->members, req->id, &urls)) {
        rv = MOOR_EPEERURLEXISTS;
    }
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
    } else {
        Moorpb__Member pm = MOORPB__MEMBER__INIT;
        pm.id = req->id;
        pm.peer_urls = req->peerurls;
        pm.n_peer_urls = req->n_peerurls;
        Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
        ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_UPDATE;
        ir.member_update = &pm;
        srv_propose_request(n, call, SRV_REQ_MEMBER, &ir);
    }
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
}

static void on_member_list(struct rpc_call *call, struct moor_slice msg,
                           void *arg)
{
    (void)msg;
    struct srv_node *n = arg;
    static struct members_pb p; /* loop thread only; large */
    members_pb_fill(n, &p);
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, kv_store_revision(n->kv));
    Etcdserverpb__MemberListResponse out =
        ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
    out.header = &h;
    out.members = p.ptrs;
    out.n_members = p.n;
    srv_reply(call, &out.base);
}

int srv_members_register(struct srv_node *n, struct rpc_server *srv)
{
    static const struct srv_method methods[] = {
        {"/etcdserverpb.Cluster/MemberAdd", on_member_add, NULL},
        {"/etcdserverpb.Cluster/MemberRemove", on_member_remove, NULL},
        {"/etcdserverpb.Cluster/MemberUpdate", on_member_update, NULL},
        {"/etcdserverpb.Cluster/MemberList", on_member_list, NULL},
        {"/etcdserverpb.Cluster/MemberPromote", on_member_promote, NULL},
    };
    return srv_register_methods(n, srv, methods,
                                sizeof(methods) / sizeof(methods[0]));
}
