/*
 * print_cluster.c: member, alarm, endpoint and header-only responses.
 * The formats and the shared writer: print.c, print_int.h.
 */
#include <stdio.h>

#include "print_int.h"

/* ------------------------------------------------------------------------
 * Cluster and maintenance
 * ---------------------------------------------------------------------- */
static void join(struct mc__w *w, char *const *s, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            mc__ws(w, sep);
        }
        mc__ws(w, s[i]);
    }
}

static void j_strs(struct mc__w *w, bool *first, const char *key,
                   char *const *s, size_t n)
{
    if (n == 0) {
        return;
    }
    mc__jkey(w, first, key);
    mc__ws(w, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            mc__ws(w, ",");
        }
        mc__wjstr(w, s[i]);
    }
    mc__ws(w, "]");
}

static void j_member(struct mc__w *w, const Etcdserverpb__Member *m)
{
    bool mf = true;
    mc__ws(w, "{");
    mc__ju64(w, &mf, "ID", m->id, true);
    if (m->name != NULL && m->name[0] != 0) {
        mc__jkey(w, &mf, "name");
        mc__wjstr(w, m->name);
    }
    j_strs(w, &mf, "peerURLs", m->peerurls, m->n_peerurls);
    j_strs(w, &mf, "clientURLs", m->clienturls, m->n_clienturls);
    mc__jbool(w, &mf, "isLearner", m->islearner, true);
    mc__ws(w, "}");
}

static void f_member(struct mc__w *w, const Etcdserverpb__Member *m)
{
    mc__wf(w, "\"ID\" : %llu\n\"Name\" : ", (unsigned long long)m->id);
    mc__wquote(w, m->name, strlen(m->name));
    mc__ws(w, "\n");
    for (size_t k = 0; k < m->n_peerurls; k++) {
        mc__ws(w, "\"PeerURL\" : ");
        mc__wquote(w, m->peerurls[k], strlen(m->peerurls[k]));
        mc__ws(w, "\n");
    }
    for (size_t k = 0; k < m->n_clienturls; k++) {
        mc__ws(w, "\"ClientURL\" : ");
        mc__wquote(w, m->clienturls[k], strlen(m->clienturls[k]));
        mc__ws(w, "\n");
    }
    mc__wf(w, "\"IsLearner\" : %s\n\n", m->islearner ? "true" : "false");
}

int mc_print_member_list(struct moor_buf *out, const struct mc_print *p,
                         const Etcdserverpb__MemberListResponse *r)
{
    static const char *const hdr[] = {
        "ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"};
    struct mc__w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
    case MC_FMT_TABLE: {
        struct mc__rows *t = moor_calloc(1, sizeof(*t));
        if (t == NULL) {
            return MOOR_ENOMEM;
        }
        moor_buf_init(&t->text);
        struct moor_buf tmp;
        moor_buf_init(&tmp);
        for (size_t i = 0; i < r->n_members && t->rv == MOOR_OK; i++) {
            const Etcdserverpb__Member *m = r->members[i];
            struct mc__w tw = {&tmp, MOOR_OK};
            mc__cell(t, "%llx", (unsigned long long)m->id);
            mc__cell(t, "%s", m->name[0] == 0 ? "unstarted" : "started");
            mc__cell(t, "%s", m->name);
            moor_buf_reset(&tmp);
            join(&tw, m->peerurls, m->n_peerurls, ",");
            mc__cell(t, "%.*s", (int)tmp.len, (const char *)tmp.ptr);
            moor_buf_reset(&tmp);
            join(&tw, m->clienturls, m->n_clienturls, ",");
            mc__cell(t, "%.*s", (int)tmp.len, (const char *)tmp.ptr);
            mc__cell(t, "%s", m->islearner ? "true" : "false");
            if (tw.rv != MOOR_OK) {
                t->rv = tw.rv;
            }
        }
        int rv = mc__rows_emit(out, t, p->fmt == MC_FMT_TABLE, hdr, 6);
        moor_buf_close(&tmp);
        moor_buf_close(&t->text);
        moor_free(t);
        return rv;
    }
    case MC_FMT_JSON:
        mc__ws(&w, "{");
        mc__j_header(&w, &f, "header", r->header);
        if (r->n_members > 0) {
            mc__jkey(&w, &f, "members");
            mc__ws(&w, "[");
            for (size_t i = 0; i < r->n_members; i++) {
                if (i > 0) {
                    mc__ws(&w, ",");
                }
                j_member(&w, r->members[i]);
            }
            mc__ws(&w, "]");
        }
        mc__ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, r->header);
        for (size_t i = 0; i < r->n_members; i++) {
            f_member(&w, r->members[i]);
        }
        break;
    case MC_FMT_PROTOBUF:
        return mc__pack_raw(out, &r->base);
    }
    return w.rv;
}

static const char *alarm_name(Etcdserverpb__AlarmType t)
{
    switch (t) {
    case ETCDSERVERPB__ALARM_TYPE__NOSPACE:
        return "NOSPACE";
    case ETCDSERVERPB__ALARM_TYPE__CORRUPT:
        return "CORRUPT";
    default:
        return "NONE";
    }
}

int mc_print_alarm(struct moor_buf *out, const struct mc_print *p,
                   const Etcdserverpb__AlarmResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        /* Go's %+v of the message: protobuf's compact text form. */
        for (size_t i = 0; i < r->n_alarms; i++) {
            const Etcdserverpb__AlarmMember *a = r->alarms[i];
            if (a->memberid != 0) {
                mc__wf(&w, "memberID:%llu ", (unsigned long long)a->memberid);
            }
            if (a->alarm != ETCDSERVERPB__ALARM_TYPE__NONE) {
                mc__wf(&w, "alarm:%s ", alarm_name(a->alarm));
            }
            mc__ws(&w, "\n");
        }
        break;
    case MC_FMT_JSON:
        mc__ws(&w, "{");
        mc__j_header(&w, &f, "header", r->header);
        if (r->n_alarms > 0) {
            mc__jkey(&w, &f, "alarms");
            mc__ws(&w, "[");
            for (size_t i = 0; i < r->n_alarms; i++) {
                bool af = true;
                mc__ws(&w, i > 0 ? ",{" : "{");
                mc__ju64(&w, &af, "memberID", r->alarms[i]->memberid, true);
                mc__ji64(&w, &af, "alarm", r->alarms[i]->alarm, true);
                mc__ws(&w, "}");
            }
            mc__ws(&w, "]");
        }
        mc__ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, r->header);
        for (size_t i = 0; i < r->n_alarms; i++) {
            mc__wf(&w, "\"MemberID\" : %llu\n\"AlarmType\" : %s\n\n",
                   (unsigned long long)r->alarms[i]->memberid,
                   alarm_name(r->alarms[i]->alarm));
        }
        break;
    case MC_FMT_PROTOBUF:
        return mc__pack_raw(out, &r->base);
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_ep_health(struct moor_buf *out, struct moor_buf *err,
                       const struct mc_print *p, const struct mc_ep_health *h,
                       size_t n)
{
    static const char *const hdr[] = {"ENDPOINT", "HEALTH", "TOOK", "ERROR"};
    struct mc__w w = {out, MOOR_OK};
    struct mc__w we = {err, MOOR_OK};
    struct moor_buf took;
    moor_buf_init(&took);
    int rv = MOOR_OK;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        for (size_t i = 0; i < n; i++) {
            /* etcdctl 3.4 prints both kinds of line on stderr. */
            if (h[i].error == NULL) {
                moor_buf_reset(&took);
                rv = mc_duration_format(&took, h[i].took_ns);
                mc__wf(&we,
                       "%s is healthy: successfully committed proposal: took = "
                       "%.*s\n",
                       h[i].ep, (int)took.len, (const char *)took.ptr);
            } else {
                mc__wf(&we, "%s is unhealthy: failed to commit proposal: %s\n",
                       h[i].ep, h[i].error);
            }
        }
        break;
    case MC_FMT_JSON:
        mc__ws(&w, "[");
        for (size_t i = 0; i < n; i++) {
            moor_buf_reset(&took);
            rv = mc_duration_format(&took, h[i].took_ns);
            mc__ws(&w, i > 0 ? ",{\"endpoint\":" : "{\"endpoint\":");
            mc__wjstr(&w, h[i].ep);
            mc__wf(&w, ",\"health\":%s,\"took\":\"%.*s\"",
                   h[i].health ? "true" : "false", (int)took.len,
                   (const char *)took.ptr);
            if (h[i].error != NULL) {
                mc__ws(&w, ",\"error\":");
                mc__wjstr(&w, h[i].error);
            }
            mc__ws(&w, "}");
        }
        mc__ws(&w, "]\n");
        break;
    case MC_FMT_FIELDS:
        for (size_t i = 0; i < n; i++) {
            moor_buf_reset(&took);
            rv = mc_duration_format(&took, h[i].took_ns);
            mc__ws(&w, "\"Endpoint\" : ");
            mc__wquote(&w, h[i].ep, strlen(h[i].ep));
            mc__wf(&w, "\n\"Health\" : %s\n\"Took\" : %.*s\n\"Error\" : %s\n\n",
                   h[i].health ? "true" : "false", (int)took.len,
                   (const char *)took.ptr,
                   h[i].error != NULL ? h[i].error : "");
        }
        break;
    case MC_FMT_TABLE: {
        struct mc__rows *t = moor_calloc(1, sizeof(*t));
        if (t == NULL) {
            rv = MOOR_ENOMEM;
            break;
        }
        moor_buf_init(&t->text);
        for (size_t i = 0; i < n; i++) {
            moor_buf_reset(&took);
            rv = mc_duration_format(&took, h[i].took_ns);
            mc__cell(t, "%s", h[i].ep);
            mc__cell(t, "%s", h[i].health ? "true" : "false");
            mc__cell(t, "%.*s", (int)took.len, (const char *)took.ptr);
            mc__cell(t, "%s", h[i].error != NULL ? h[i].error : "");
        }
        if (rv == MOOR_OK) {
            rv = mc__rows_emit(out, t, true, hdr, 4);
        }
        moor_buf_close(&t->text);
        moor_free(t);
        break;
    }
    default:
        rv = MOOR_EINVAL;
    }
    moor_buf_close(&took);
    if (rv != MOOR_OK) {
        return rv;
    }
    return w.rv != MOOR_OK ? w.rv : we.rv;
}

static void j_status(struct mc__w *w, const Etcdserverpb__StatusResponse *s)
{
    bool f = true;
    mc__ws(w, "{");
    mc__j_header(w, &f, "header", s->header);
    if (s->version != NULL && s->version[0] != 0) {
        mc__jkey(w, &f, "version");
        mc__wjstr(w, s->version);
    }
    mc__ji64(w, &f, "dbSize", s->dbsize, true);
    mc__ju64(w, &f, "leader", s->leader, true);
    mc__ju64(w, &f, "raftIndex", s->raftindex, true);
    mc__ju64(w, &f, "raftTerm", s->raftterm, true);
    mc__ju64(w, &f, "raftAppliedIndex", s->raftappliedindex, true);
    j_strs(w, &f, "errors", s->errors, s->n_errors);
    mc__ji64(w, &f, "dbSizeInUse", s->dbsizeinuse, true);
    mc__jbool(w, &f, "isLearner", s->islearner, true);
    mc__ws(w, "}");
}

int mc_print_ep_status(struct moor_buf *out, const struct mc_print *p,
                       const struct mc_ep_status *s, size_t n)
{
    static const char *const hdr[] = {
        "ENDPOINT",           "ID",         "VERSION",   "DB SIZE",
        "IS LEADER",          "IS LEARNER", "RAFT TERM", "RAFT INDEX",
        "RAFT APPLIED INDEX", "ERRORS"};
    struct mc__w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
    case MC_FMT_TABLE: {
        struct mc__rows *t = moor_calloc(1, sizeof(*t));
        if (t == NULL) {
            return MOOR_ENOMEM;
        }
        moor_buf_init(&t->text);
        struct moor_buf tmp;
        moor_buf_init(&tmp);
        for (size_t i = 0; i < n; i++) {
            const Etcdserverpb__StatusResponse *r = s[i].resp;
            uint64_t id = r->header != NULL ? r->header->member_id : 0;
            struct mc__w tw = {&tmp, MOOR_OK};
            mc__cell(t, "%s", s[i].ep);
            mc__cell(t, "%llx", (unsigned long long)id);
            mc__cell(t, "%s", r->version != NULL ? r->version : "");
            moor_buf_reset(&tmp);
            tw.rv = mc_humanize_bytes(&tmp, (uint64_t)r->dbsize);
            mc__cell(t, "%.*s", (int)tmp.len, (const char *)tmp.ptr);
            mc__cell(t, "%s", r->leader == id ? "true" : "false");
            mc__cell(t, "%s", r->islearner ? "true" : "false");
            mc__cell(t, "%llu", (unsigned long long)r->raftterm);
            mc__cell(t, "%llu", (unsigned long long)r->raftindex);
            mc__cell(t, "%llu", (unsigned long long)r->raftappliedindex);
            moor_buf_reset(&tmp);
            join(&tw, r->errors, r->n_errors, ", ");
            mc__cell(t, "%.*s", (int)tmp.len, (const char *)tmp.ptr);
            if (tw.rv != MOOR_OK) {
                t->rv = tw.rv;
            }
        }
        int rv = mc__rows_emit(out, t, p->fmt == MC_FMT_TABLE, hdr, 10);
        moor_buf_close(&tmp);
        moor_buf_close(&t->text);
        moor_free(t);
        return rv;
    }
    case MC_FMT_JSON:
        mc__ws(&w, "[");
        for (size_t i = 0; i < n; i++) {
            mc__ws(&w, i > 0 ? ",{\"Endpoint\":" : "{\"Endpoint\":");
            mc__wjstr(&w, s[i].ep);
            mc__ws(&w, ",\"Status\":");
            j_status(&w, s[i].resp);
            mc__ws(&w, "}");
        }
        mc__ws(&w, "]\n");
        break;
    case MC_FMT_FIELDS:
        for (size_t i = 0; i < n; i++) {
            const Etcdserverpb__StatusResponse *r = s[i].resp;
            mc__f_hdr(&w, r->header);
            mc__ws(&w, "\"Version\" : ");
            mc__wquote(&w, r->version,
                       r->version != NULL ? strlen(r->version) : 0);
            mc__wf(
                &w,
                "\n\"DBSize\" : %lld\n\"Leader\" : %llu\n\"IsLearner\" : %s\n"
                "\"RaftIndex\" : %llu\n\"RaftTerm\" : %llu\n"
                "\"RaftAppliedIndex\" : %llu\n\"Errors\" : [",
                (long long)r->dbsize, (unsigned long long)r->leader,
                r->islearner ? "true" : "false",
                (unsigned long long)r->raftindex,
                (unsigned long long)r->raftterm,
                (unsigned long long)r->raftappliedindex);
            join(&w, r->errors, r->n_errors, " ");
            mc__ws(&w, "]\n\"Endpoint\" : ");
            mc__wquote(&w, s[i].ep, strlen(s[i].ep));
            mc__ws(&w, "\n\n");
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_ep_hashkv(struct moor_buf *out, const struct mc_print *p,
                       const struct mc_ep_hashkv *s, size_t n)
{
    static const char *const hdr[] = {"ENDPOINT", "HASH"};
    struct mc__w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
    case MC_FMT_TABLE: {
        struct mc__rows *t = moor_calloc(1, sizeof(*t));
        if (t == NULL) {
            return MOOR_ENOMEM;
        }
        moor_buf_init(&t->text);
        for (size_t i = 0; i < n; i++) {
            mc__cell(t, "%s", s[i].ep);
            mc__cell(t, "%u", (unsigned)s[i].resp->hash);
        }
        int rv = mc__rows_emit(out, t, p->fmt == MC_FMT_TABLE, hdr, 2);
        moor_buf_close(&t->text);
        moor_free(t);
        return rv;
    }
    case MC_FMT_JSON:
        mc__ws(&w, "[");
        for (size_t i = 0; i < n; i++) {
            const Etcdserverpb__HashKVResponse *r = s[i].resp;
            bool f = true;
            mc__ws(&w, i > 0 ? ",{\"Endpoint\":" : "{\"Endpoint\":");
            mc__wjstr(&w, s[i].ep);
            mc__ws(&w, ",\"HashKV\":{");
            mc__j_header(&w, &f, "header", r->header);
            mc__ju64(&w, &f, "hash", r->hash, true);
            mc__ji64(&w, &f, "compact_revision", r->compact_revision, true);
            mc__ws(&w, "}}");
        }
        mc__ws(&w, "]\n");
        break;
    case MC_FMT_FIELDS:
        for (size_t i = 0; i < n; i++) {
            mc__f_hdr(&w, s[i].resp->header);
            mc__ws(&w, "\"Endpoint\" : ");
            mc__wquote(&w, s[i].ep, strlen(s[i].ep));
            mc__wf(&w, "\n\"Hash\" : %u\n\n", (unsigned)s[i].resp->hash);
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_member_change(struct moor_buf *out, const struct mc_print *p,
                           const char *simple_line,
                           const Etcdserverpb__ResponseHeader *h,
                           const Etcdserverpb__Member *member,
                           Etcdserverpb__Member *const *members, size_t n)
{
    struct mc__w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        mc__ws(&w, simple_line);
        break;
    case MC_FMT_JSON:
        mc__ws(&w, "{");
        mc__j_header(&w, &f, "header", h);
        if (member != NULL) {
            mc__jkey(&w, &f, "member");
            j_member(&w, member);
        }
        if (n > 0) {
            mc__jkey(&w, &f, "members");
            mc__ws(&w, "[");
            for (size_t i = 0; i < n; i++) {
                if (i > 0) {
                    mc__ws(&w, ",");
                }
                j_member(&w, members[i]);
            }
            mc__ws(&w, "]");
        }
        mc__ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, h);
        if (member != NULL) {
            f_member(&w, member);
        }
        for (size_t i = 0; i < n; i++) {
            f_member(&w, members[i]);
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_header_only(struct moor_buf *out, const struct mc_print *p,
                         const char *simple_line,
                         const Etcdserverpb__ResponseHeader *h)
{
    struct mc__w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        mc__ws(&w, simple_line);
        break;
    case MC_FMT_JSON:
        mc__ws(&w, "{");
        mc__j_header(&w, &f, "header", h);
        mc__ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, h);
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}
