/*
 * peer_frame.c: peer frames to and from bytes, off the loop: the length
 * prefix, moorpb.Frame, and the conversion between moorpb.Message and
 * raft's struct raft_message. Everything a peer sends is untrusted; the
 * decoder checks every bound before raft sees a message, and
 * tests/fuzz/fuzz_server_peer_frame.c runs it over arbitrary bytes.
 */
#include "peer_int.h"

int srv_peer_frame_next(const uint8_t *buf, size_t len, size_t *used,
                        Moorpb__Frame **frame)
{
    if (len < 4) {
        return MOOR_EAGAIN;
    }
    uint32_t n = moor_get_be32(buf);
    if (n == 0 || n > SRV_PEER_FRAME_MAX) {
        return MOOR_ETOOBIG;
    }
    if (len - 4 < n) {
        return MOOR_EAGAIN;
    }
    ProtobufCMessage *pm = NULL;
    int rv = moor_pb_unpack(&moorpb__frame__descriptor, buf + 4, n,
                            SRV_PEER_FRAME_MAX, &pm);
    if (rv != MOOR_OK) {
        return rv == MOOR_ENOMEM ? MOOR_ENOMEM : MOOR_EPROTO;
    }
    Moorpb__Frame *f = (Moorpb__Frame *)pm;
    if (f->body_case == MOORPB__FRAME__BODY__NOT_SET) {
        protobuf_c_message_free_unpacked(pm, &moor_pb_allocator);
        return MOOR_EPROTO;
    }
    *frame = f;
    *used = 4 + (size_t)n;
    return MOOR_OK;
}

int srv_peer_msg_decode(const Moorpb__Message *pm, struct raft_message *m)
{
    memset(m, 0, sizeof(*m));
    if ((int)pm->type < (int)RAFT_MSG_APPEND ||
        (int)pm->type > (int)RAFT_MSG_READ_INDEX_RESP ||
        pm->n_entries > SRV_PEER_ENTRIES_MAX) {
        return MOOR_EPROTO;
    }
    m->type = (uint8_t)pm->type;
    m->reject = pm->reject;
    m->transfer = pm->transfer;
    m->from = pm->from;
    m->to = pm->to;
    m->term = pm->term;
    m->log_term = pm->log_term;
    m->index = pm->index;
    m->commit = pm->commit;
    m->reject_hint = pm->reject_hint;
    m->round = pm->round;
    if (pm->n_entries > 0) {
        m->entries = moor_calloc(pm->n_entries, sizeof(*m->entries));
        if (m->entries == NULL) {
            return MOOR_ENOMEM;
        }
    }
    for (size_t i = 0; i < pm->n_entries; i++) {
        const Moorpb__Entry *e = pm->entries[i];
        if ((int)e->type < 0 || (int)e->type > 255) {
            return MOOR_EPROTO;
        }
        m->entries[i].term = e->term;
        m->entries[i].index = e->index;
        m->entries[i].type = (uint8_t)e->type;
        m->n_entries = i + 1;
        if (e->data.len > 0) {
            m->entries[i].data = moor_bytes_copy(e->data.data, e->data.len);
            if (m->entries[i].data == NULL) {
                return MOOR_ENOMEM;
            }
        }
    }
    if (pm->context.len > 0) {
        m->context = moor_bytes_copy(pm->context.data, pm->context.len);
        if (m->context == NULL) {
            return MOOR_ENOMEM;
        }
    }
    if (pm->snapshot != NULL && m->type == RAFT_MSG_SNAPSHOT) {
        m->snapshot.index = pm->snapshot->index;
        m->snapshot.term = pm->snapshot->term;
        const Moorpb__ConfState *cs = pm->snapshot->conf;
        if (cs != NULL) {
            if (cs->n_voters > RAFT_MEMBERS_MAX ||
                cs->n_learners > RAFT_MEMBERS_MAX - cs->n_voters) {
                return MOOR_EPROTO;
            }
            struct raft_conf *c = &m->snapshot.conf;
            for (size_t i = 0; i < cs->n_voters; i++) {
                c->members[c->n].id = cs->voters[i];
                c->members[c->n++].learner = false;
            }
            for (size_t i = 0; i < cs->n_learners; i++) {
                c->members[c->n].id = cs->learners[i];
                c->members[c->n++].learner = true;
            }
        }
    }
    return MOOR_OK;
}

void srv_peer_msg_release(struct raft_message *m)
{
    for (size_t i = 0; i < m->n_entries; i++) {
        moor_bytes_unref(m->entries[i].data);
    }
    moor_free(m->entries);
    moor_bytes_unref(m->context);
    m->entries = NULL;
    m->n_entries = 0;
    m->context = NULL;
}

int srv_peer_encode(const struct raft_message *m, struct moor_buf *out)
{
    Moorpb__Entry *ents = NULL;
    Moorpb__Entry **eptrs = NULL;
    if (m->n_entries > 0) {
        ents = moor_calloc(m->n_entries, sizeof(*ents));
        eptrs = moor_calloc(m->n_entries, sizeof(*eptrs));
        if (ents == NULL || eptrs == NULL) {
            moor_free(ents);
            moor_free(eptrs);
            return MOOR_ENOMEM;
        }
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        moorpb__entry__init(&ents[i]);
        ents[i].term = e->term;
        ents[i].index = e->index;
        ents[i].type = (Moorpb__EntryType)e->type;
        if (e->data != NULL) {
            ents[i].data.data = e->data->data;
            ents[i].data.len = e->data->len;
        }
        eptrs[i] = &ents[i];
    }
    uint64_t voters[RAFT_MEMBERS_MAX], learners[RAFT_MEMBERS_MAX];
    size_t nv = 0, nl = 0;
    Moorpb__ConfState cs = MOORPB__CONF_STATE__INIT;
    Moorpb__SnapshotMeta sm = MOORPB__SNAPSHOT_META__INIT;
    Moorpb__Message pm = MOORPB__MESSAGE__INIT;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        for (uint32_t i = 0; i < m->snapshot.conf.n; i++) {
            const struct raft_member *mb = &m->snapshot.conf.members[i];
            if (mb->learner) {
                learners[nl++] = mb->id;
            } else {
                voters[nv++] = mb->id;
            }
        }
        cs.voters = voters;
        cs.n_voters = nv;
        cs.learners = learners;
        cs.n_learners = nl;
        sm.index = m->snapshot.index;
        sm.term = m->snapshot.term;
        sm.conf = &cs;
        pm.snapshot = &sm;
    }
    pm.type = (Moorpb__MessageType)m->type;
    pm.to = m->to;
    pm.from = m->from;
    pm.term = m->term;
    pm.log_term = m->log_term;
    pm.index = m->index;
    pm.entries = eptrs;
    pm.n_entries = m->n_entries;
    pm.commit = m->commit;
    pm.reject = m->reject;
    pm.reject_hint = m->reject_hint;
    pm.transfer = m->transfer;
    pm.round = m->round;
    if (m->context != NULL) {
        pm.context.data = m->context->data;
        pm.context.len = m->context->len;
    }
    Moorpb__Frame f = MOORPB__FRAME__INIT;
    f.body_case = MOORPB__FRAME__BODY_MESSAGE;
    f.message = &pm;
    size_t len = protobuf_c_message_get_packed_size(&f.base);
    int rv = MOOR_ETOOBIG;
    if (len <= SRV_PEER_FRAME_MAX) {
        rv = moor_buf_reserve(out, 4 + len);
    }
    if (rv == MOOR_OK) {
        moor_put_be32(out->ptr + out->len, (uint32_t)len);
        protobuf_c_message_pack(&f.base, out->ptr + out->len + 4);
        out->len += 4 + len;
    }
    moor_free(ents);
    moor_free(eptrs);
    return rv;
}

int srv_peer_handshake_encode(struct srv_node *n, uint64_t to,
                              const char *stream, struct moor_buf *out)
{
    Moorpb__Handshake hs = MOORPB__HANDSHAKE__INIT;
    hs.protocol_version = SRV_PEER_PROTOCOL_VERSION;
    hs.cluster_id = n->cluster_id;
    hs.from_id = n->member_id;
    hs.to_id = to;
    hs.stream = (char *)(uintptr_t)stream;
    hs.name = n->cfg->name;
    char *urls[SRV_URLS_MAX];
    for (unsigned i = 0; i < n->cfg->advertise_client_urls.n; i++) {
        urls[i] = (char *)(uintptr_t)n->cfg->advertise_client_urls.urls[i].text;
    }
    hs.client_urls = urls;
    hs.n_client_urls = n->cfg->advertise_client_urls.n;
    Moorpb__Frame f = MOORPB__FRAME__INIT;
    f.body_case = MOORPB__FRAME__BODY_HANDSHAKE;
    f.handshake = &hs;
    size_t len = protobuf_c_message_get_packed_size(&f.base);
    int rv = moor_buf_reserve(out, 4 + len);
    if (rv == MOOR_OK) {
        moor_put_be32(out->ptr + out->len, (uint32_t)len);
        protobuf_c_message_pack(&f.base, out->ptr + out->len + 4);
        out->len += 4 + len;
    }
    return rv;
}

int srv_peer_resolve(const struct srv_url *u, struct sockaddr_storage *out)
{
    const char *host =
        strcmp(u->host, "localhost") == 0 ? "127.0.0.1" : u->host;
    memset(out, 0, sizeof(*out));
    if (uv_ip4_addr(host, u->port, (struct sockaddr_in *)out) == 0) {
        return MOOR_OK;
    }
    if (uv_ip6_addr(host, u->port, (struct sockaddr_in6 *)out) == 0) {
        return MOOR_OK;
    }
    return MOOR_EINVAL;
}
