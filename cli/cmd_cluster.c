/*
 * cmd_cluster.c: member, endpoint, alarm, defrag and move-leader.
 *
 * The endpoint commands and defrag talk to each endpoint on its own (one
 * client per endpoint, in --endpoints order), so one dead member shows as
 * one failed row; --cluster first asks the cluster for every member's
 * client URLs and uses those instead.
 */
#include <stdlib.h>

#include "cli_int.h"

const struct mc_flag mc_member_flags[] = {
    {"peer-urls", 0, MC_FLAG_STRING, offsetof(struct mc_member_opts, peer_urls),
     "comma separated peer URLs for the new member."},
    {"learner", 0, MC_FLAG_BOOL, offsetof(struct mc_member_opts, learner),
     "indicates if the new member is raft learner"},
};
const size_t mc_member_flags_len = MOOR_ARRAY_LEN(mc_member_flags);

const struct mc_flag mc_ep_flags[] = {
    {"cluster", 0, MC_FLAG_BOOL, offsetof(struct mc_ep_opts, cluster),
     "use all endpoints from the cluster member list"},
    {"rev", 0, MC_FLAG_INT64, offsetof(struct mc_ep_opts, rev),
     "maximum revision to hash (default: all revisions)"},
};
const size_t mc_ep_flags_len = MOOR_ARRAY_LEN(mc_ep_flags);

#define PATH_CLUSTER "/etcdserverpb.Cluster/"
#define PATH_MAINT "/etcdserverpb.Maintenance/"

/* ------------------------------------------------------------------------
 * member
 * ---------------------------------------------------------------------- */
static int member_list(struct mc_ctx *c, Etcdserverpb__MemberListResponse **r)
{
    Etcdserverpb__MemberListRequest req =
        ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    return mc_call(c, PATH_CLUSTER "MemberList", &req,
                   &etcdserverpb__member_list_response__descriptor, r);
}

int mc_cmd_member_list(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    (void)args;
    (void)n;
    Etcdserverpb__MemberListResponse *resp = NULL;
    int code = member_list(c, &resp);
    if (code != MC_EXIT_OK) {
        return code;
    }
    struct moor_buf out;
    moor_buf_init(&out);
    code = mc_emit(c, mc_print_member_list(&out, &c->pr, resp), &out);
    moor_buf_close(&out);
    mc_pb_free(resp);
    return code;
}

/* Splits the comma-separated URLs into arena strings; each must be an
 * http:// or https:// URL. */
static int split_urls(struct mc_ctx *c, struct mc_arena *a, const char *s,
                      char ***out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p != 0; p++) {
        cap += *p == ',';
    }
    if (cap > MC_ENDPOINTS_MAX) {
        return mc_fail(c, MC_EXIT_USAGE, "too many peer URLs (at most %d)",
                       MC_ENDPOINTS_MAX);
    }
    char **urls = mc_arena_alloc(a, cap * sizeof(char *));
    if (urls == NULL) {
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    *n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char *u = mc_arena_dup(a, p, len);
        if (u == NULL) {
            return mc_fail(c, MC_EXIT_ERROR, "out of memory");
        }
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
            return mc_fail(c, MC_EXIT_USAGE,
                           "URL scheme must be http, https, unix, or unixs: "
                           "%s",
                           u);
        }
        urls[(*n)++] = u;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    *out = urls;
    return MC_EXIT_OK;
}

static int member_id_arg(struct mc_ctx *c, char **args, size_t n, uint64_t *id)
{
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE, "member ID is not provided");
    }
    int rv = mc_parse_hex_u64(args[0], id);
    if (rv != MOOR_OK) {
        return mc_fail(
            c, MC_EXIT_USAGE,
            "bad member ID arg (strconv.ParseUint: parsing \"%s\": "
            "%s), expecting ID in Hex",
            args[0],
            rv == MOOR_ETOOBIG ? "value out of range" : "invalid syntax");
    }
    return MC_EXIT_OK;
}

static uint64_t cluster_id(const Etcdserverpb__ResponseHeader *h)
{
    return h != NULL ? h->cluster_id : 0;
}

/* The lines etcdctl prints after "member add" in the simple format, for a
 * shell to source when it starts the new member. */
static int member_add_env(struct mc_ctx *c, const char *name, uint64_t new_id,
                          const Etcdserverpb__Member *m, struct moor_buf *out)
{
    Etcdserverpb__MemberListResponse *list = NULL;
    int code = member_list(c, &list);
    if (code != MC_EXIT_OK) {
        return code;
    }
    struct moor_buf conf;
    moor_buf_init(&conf);
    int rv = MOOR_OK;
    for (size_t i = 0; i < list->n_members && rv == MOOR_OK; i++) {
        const Etcdserverpb__Member *lm = list->members[i];
        const char *n = lm->id == new_id ? name : lm->name;
        for (size_t k = 0; k < lm->n_peerurls && rv == MOOR_OK; k++) {
            rv = moor_buf_printf(&conf, "%s%s=%s", conf.len > 0 ? "," : "", n,
                                 lm->peerurls[k]);
        }
    }
    struct moor_buf peers;
    moor_buf_init(&peers);
    for (size_t k = 0; k < m->n_peerurls && rv == MOOR_OK; k++) {
        rv = moor_buf_printf(&peers, "%s%s", k > 0 ? "," : "", m->peerurls[k]);
    }
    if (rv == MOOR_OK) {
        rv = moor_buf_append(out, "\nETCD_NAME=", 11);
    }
    if (rv == MOOR_OK) {
        rv = mc_goquote_append(out, name, strlen(name));
    }
    if (rv == MOOR_OK) {
        rv = moor_buf_append(out, "\nETCD_INITIAL_CLUSTER=", 22);
    }
    if (rv == MOOR_OK) {
        rv = mc_goquote_append(out, conf.ptr, conf.len);
    }
    if (rv == MOOR_OK) {
        rv = moor_buf_append(out, "\nETCD_INITIAL_ADVERTISE_PEER_URLS=", 34);
    }
    if (rv == MOOR_OK) {
        rv = mc_goquote_append(out, peers.ptr, peers.len);
    }
    if (rv == MOOR_OK) {
        rv =
            moor_buf_printf(out, "\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n");
    }
    moor_buf_close(&conf);
    moor_buf_close(&peers);
    mc_pb_free(list);
    return mc_emit(c, rv, out);
}

int mc_cmd_member_add(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_member_opts *o = opts;
    if (n < 1) {
        return mc_fail(c, MC_EXIT_USAGE, "member name not provided");
    }
    if (n > 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "too many arguments, did you mean --peer-urls=%s",
                       args[1]);
    }
    if (o->peer_urls == NULL || o->peer_urls[0] == 0) {
        return mc_fail(c, MC_EXIT_USAGE, "member peer urls not provided");
    }
    struct mc_arena a;
    mc_arena_init(&a);
    Etcdserverpb__MemberAddRequest req = ETCDSERVERPB__MEMBER_ADD_REQUEST__INIT;
    Etcdserverpb__MemberAddResponse *resp = NULL;
    int code = split_urls(c, &a, o->peer_urls, &req.peerurls, &req.n_peerurls);
    req.islearner = o->learner;
    if (code == MC_EXIT_OK) {
        code = mc_call(c, PATH_CLUSTER "MemberAdd", &req,
                       &etcdserverpb__member_add_response__descriptor, &resp);
    }
    if (code == MC_EXIT_OK && resp->member == NULL) {
        code = mc_fail(c, MC_EXIT_ERROR, "member add: no member in response");
    }
    if (code == MC_EXIT_OK) {
        char line[160];
        /* etcdctl 3.4 says "added to" for learners too. */
        snprintf(line, sizeof(line), "Member %16llx added to cluster %16llx\n",
                 (unsigned long long)resp->member->id,
                 (unsigned long long)cluster_id(resp->header));
        struct moor_buf out;
        moor_buf_init(&out);
        code = mc_emit(c,
                       mc_print_member_change(&out, &c->pr, line, resp->header,
                                              resp->member, resp->members,
                                              resp->n_members),
                       &out);
        if (code == MC_EXIT_OK && c->pr.fmt == MC_FMT_SIMPLE) {
            code = member_add_env(c, args[0], resp->member->id, resp->member,
                                  &out);
        }
        moor_buf_close(&out);
    }
    mc_pb_free(resp);
    mc_arena_close(&a);
    return code;
}

/* Prints "Member <id> <verb> cluster <cid>" (or the -w form) for a
 * remove, update or promote answer. */
static int emit_member_change(struct mc_ctx *c, uint64_t id, const char *verb,
                              const Etcdserverpb__ResponseHeader *header,
                              Etcdserverpb__Member **members, size_t n_members)
{
    char line[160];
    snprintf(line, sizeof(line), "Member %16llx %s cluster %16llx\n",
             (unsigned long long)id, verb,
             (unsigned long long)cluster_id(header));
    struct moor_buf out;
    moor_buf_init(&out);
    int code = mc_emit(c,
                       mc_print_member_change(&out, &c->pr, line, header, NULL,
                                              members, n_members),
                       &out);
    moor_buf_close(&out);
    return code;
}

int mc_cmd_member_remove(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    uint64_t id;
    int code = member_id_arg(c, args, n, &id);
    if (code != MC_EXIT_OK) {
        return code;
    }
    Etcdserverpb__MemberRemoveRequest req =
        ETCDSERVERPB__MEMBER_REMOVE_REQUEST__INIT;
    Etcdserverpb__MemberRemoveResponse *resp = NULL;
    req.id = id;
    code = mc_call(c, PATH_CLUSTER "MemberRemove", &req,
                   &etcdserverpb__member_remove_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        code = emit_member_change(c, id, "removed from", resp->header,
                                  resp->members, resp->n_members);
    }
    mc_pb_free(resp);
    return code;
}

int mc_cmd_member_update(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_member_opts *o = opts;
    uint64_t id;
    int code = member_id_arg(c, args, n, &id);
    if (code != MC_EXIT_OK) {
        return code;
    }
    if (o->peer_urls == NULL || o->peer_urls[0] == 0) {
        return mc_fail(c, MC_EXIT_USAGE, "member peer urls not provided");
    }
    struct mc_arena a;
    mc_arena_init(&a);
    Etcdserverpb__MemberUpdateRequest req =
        ETCDSERVERPB__MEMBER_UPDATE_REQUEST__INIT;
    Etcdserverpb__MemberUpdateResponse *resp = NULL;
    req.id = id;
    code = split_urls(c, &a, o->peer_urls, &req.peerurls, &req.n_peerurls);
    if (code == MC_EXIT_OK) {
        code =
            mc_call(c, PATH_CLUSTER "MemberUpdate", &req,
                    &etcdserverpb__member_update_response__descriptor, &resp);
    }
    if (code == MC_EXIT_OK) {
        code = emit_member_change(c, id, "updated in", resp->header,
                                  resp->members, resp->n_members);
    }
    mc_pb_free(resp);
    mc_arena_close(&a);
    return code;
}

int mc_cmd_member_promote(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    uint64_t id;
    int code = member_id_arg(c, args, n, &id);
    if (code != MC_EXIT_OK) {
        return code;
    }
    Etcdserverpb__MemberPromoteRequest req =
        ETCDSERVERPB__MEMBER_PROMOTE_REQUEST__INIT;
    Etcdserverpb__MemberPromoteResponse *resp = NULL;
    req.id = id;
    code = mc_call(c, PATH_CLUSTER "MemberPromote", &req,
                   &etcdserverpb__member_promote_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        code = emit_member_change(c, id, "promoted in", resp->header,
                                  resp->members, resp->n_members);
    }
    mc_pb_free(resp);
    return code;
}

/* ------------------------------------------------------------------------
 * Per-endpoint commands
 * ---------------------------------------------------------------------- */

/* The endpoints to visit: --endpoints, or every member's client URLs with
 * --cluster. Strings are owned by arena. */
static int target_endpoints(struct mc_ctx *c, bool cluster, struct mc_arena *a,
                            char ***eps, size_t *n)
{
    if (!cluster) {
        *eps = c->g.endpoints;
        *n = c->g.endpoints_len;
        return MC_EXIT_OK;
    }
    Etcdserverpb__MemberListResponse *list = NULL;
    int code = member_list(c, &list);
    if (code != MC_EXIT_OK) {
        return code;
    }
    size_t total = 0;
    for (size_t i = 0; i < list->n_members; i++) {
        total += list->members[i]->n_clienturls;
    }
    if (total > MC_ENDPOINTS_MAX * 4) {
        total = MC_ENDPOINTS_MAX * 4;
    }
    char **out = mc_arena_alloc(a, (total + 1) * sizeof(char *));
    *n = 0;
    for (size_t i = 0; out != NULL && i < list->n_members; i++) {
        for (size_t k = 0; k < list->members[i]->n_clienturls && *n < total;
             k++) {
            const char *u = list->members[i]->clienturls[k];
            out[*n] = mc_arena_dup(a, u, strlen(u));
            if (out[*n] == NULL) {
                out = NULL;
                break;
            }
            (*n)++;
        }
    }
    mc_pb_free(list);
    if (out == NULL) {
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    *eps = out;
    return MC_EXIT_OK;
}

/* One unary call to one endpoint on its own client. */
static int ep_call(struct mc_ctx *c, const char *ep, const char *path,
                   const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *rdesc,
                   ProtobufCMessage **resp, char *errtext)
{
    struct rpc_client *cl = NULL;
    char *token = NULL;
    int rv = mc_client_open(c, &ep, 1, &cl, errtext);
    if (rv == MOOR_OK) {
        rv = mc_authenticate(c, cl, &token, errtext);
    }
    if (rv == MOOR_OK) {
        rv = mc_unary(c, cl, token, path, req, rdesc, resp, NULL, errtext);
    }
    mc_client_close(c, cl);
    moor_free(token);
    return rv;
}

int mc_cmd_ep_health(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_ep_opts *o = opts;
    (void)args;
    (void)n;
    struct mc_arena a;
    mc_arena_init(&a);
    char **eps;
    size_t neps;
    int code = target_endpoints(c, o->cluster, &a, &eps, &neps);
    if (code != MC_EXIT_OK) {
        mc_arena_close(&a);
        return code;
    }
    struct mc_ep_health *h = mc_arena_alloc(&a, (neps + 1) * sizeof(*h));
    if (h == NULL) {
        mc_arena_close(&a);
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    bool unhealthy = false;
    for (size_t i = 0; i < neps; i++) {
        Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
        req.key.data = (uint8_t *)"health";
        req.key.len = 6;
        ProtobufCMessage *resp = NULL;
        char e[MOOR_ERRMSG_SIZE];
        uint64_t t0 = moor_clock_ns();
        int rv = ep_call(c, eps[i], "/etcdserverpb.KV/Range", &req.base,
                         &etcdserverpb__range_response__descriptor, &resp, e);
        h[i].ep = eps[i];
        h[i].took_ns = moor_clock_ns() - t0;
        /* etcdctl counts "permission denied" as healthy: the member
         * answered, auth only refused the key. */
        h[i].health =
            rv == MOOR_OK || strcmp(e, "etcdserver: permission denied") == 0;
        h[i].error = NULL;
        if (!h[i].health) {
            h[i].error = mc_arena_dup(&a, e, strlen(e));
            unhealthy = true;
        }
        mc_pb_free(resp);
    }
    struct moor_buf out, err;
    moor_buf_init(&out);
    moor_buf_init(&err);
    int rv = mc_print_ep_health(&out, &err, &c->pr, h, neps);
    if (err.len > 0) {
        fwrite(err.ptr, 1, err.len, c->err);
    }
    code = mc_emit(c, rv, &out);
    if (code == MC_EXIT_OK && unhealthy) {
        code = mc_fail(c, MC_EXIT_ERROR, "unhealthy cluster");
    }
    moor_buf_close(&out);
    moor_buf_close(&err);
    mc_arena_close(&a);
    return code;
}

int mc_cmd_ep_status(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_ep_opts *o = opts;
    (void)args;
    (void)n;
    struct mc_arena a;
    mc_arena_init(&a);
    char **eps;
    size_t neps, ok = 0;
    int code = target_endpoints(c, o->cluster, &a, &eps, &neps);
    if (code != MC_EXIT_OK) {
        mc_arena_close(&a);
        return code;
    }
    struct mc_ep_status *s = mc_arena_alloc(&a, (neps + 1) * sizeof(*s));
    if (s == NULL) {
        mc_arena_close(&a);
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    bool failed = false;
    for (size_t i = 0; i < neps; i++) {
        Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        char e[MOOR_ERRMSG_SIZE];
        if (ep_call(c, eps[i], PATH_MAINT "Status", &req.base,
                    &etcdserverpb__status_response__descriptor, &resp,
                    e) != MOOR_OK) {
            fprintf(c->err, "Failed to get the status of endpoint %s (%s)\n",
                    eps[i], e);
            failed = true;
            continue;
        }
        s[ok].ep = eps[i];
        s[ok].resp = (const Etcdserverpb__StatusResponse *)resp;
        ok++;
    }
    struct moor_buf out;
    moor_buf_init(&out);
    code = mc_emit(c, mc_print_ep_status(&out, &c->pr, s, ok), &out);
    for (size_t i = 0; i < ok; i++) {
        mc_pb_free((void *)s[i].resp);
    }
    moor_buf_close(&out);
    mc_arena_close(&a);
    return code != MC_EXIT_OK ? code : failed ? MC_EXIT_ERROR : MC_EXIT_OK;
}

int mc_cmd_ep_hashkv(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_ep_opts *o = opts;
    (void)args;
    (void)n;
    struct mc_arena a;
    mc_arena_init(&a);
    char **eps;
    size_t neps, ok = 0;
    int code = target_endpoints(c, o->cluster, &a, &eps, &neps);
    if (code != MC_EXIT_OK) {
        mc_arena_close(&a);
        return code;
    }
    struct mc_ep_hashkv *s = mc_arena_alloc(&a, (neps + 1) * sizeof(*s));
    if (s == NULL) {
        mc_arena_close(&a);
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    bool failed = false;
    for (size_t i = 0; i < neps; i++) {
        Etcdserverpb__HashKVRequest req = ETCDSERVERPB__HASH_KVREQUEST__INIT;
        req.revision = o->rev;
        ProtobufCMessage *resp = NULL;
        char e[MOOR_ERRMSG_SIZE];
        if (ep_call(c, eps[i], PATH_MAINT "HashKV", &req.base,
                    &etcdserverpb__hash_kvresponse__descriptor, &resp,
                    e) != MOOR_OK) {
            fprintf(c->err, "Failed to get the hash of endpoint %s (%s)\n",
                    eps[i], e);
            failed = true;
            continue;
        }
        s[ok].ep = eps[i];
        s[ok].resp = (const Etcdserverpb__HashKVResponse *)resp;
        ok++;
    }
    struct moor_buf out;
    moor_buf_init(&out);
    code = mc_emit(c, mc_print_ep_hashkv(&out, &c->pr, s, ok), &out);
    for (size_t i = 0; i < ok; i++) {
        mc_pb_free((void *)s[i].resp);
    }
    moor_buf_close(&out);
    mc_arena_close(&a);
    return code != MC_EXIT_OK ? code : failed ? MC_EXIT_ERROR : MC_EXIT_OK;
}

int mc_cmd_defrag(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_ep_opts *o = opts;
    (void)args;
    (void)n;
    struct mc_arena a;
    mc_arena_init(&a);
    char **eps;
    size_t neps;
    int code = target_endpoints(c, o->cluster, &a, &eps, &neps);
    bool failed = false;
    for (size_t i = 0; code == MC_EXIT_OK && i < neps; i++) {
        Etcdserverpb__DefragmentRequest req =
            ETCDSERVERPB__DEFRAGMENT_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        char e[MOOR_ERRMSG_SIZE];
        if (ep_call(c, eps[i], PATH_MAINT "Defragment", &req.base,
                    &etcdserverpb__defragment_response__descriptor, &resp,
                    e) != MOOR_OK) {
            fprintf(c->err, "Failed to defragment etcd member[%s] (%s)\n",
                    eps[i], e);
            failed = true;
            continue;
        }
        fprintf(c->out, "Finished defragmenting etcd member[%s]\n", eps[i]);
        fflush(c->out);
        mc_pb_free(resp);
    }
    mc_arena_close(&a);
    return code != MC_EXIT_OK ? code : failed ? MC_EXIT_ERROR : MC_EXIT_OK;
}

/* ------------------------------------------------------------------------
 * alarm
 * ---------------------------------------------------------------------- */
static int alarm_call(struct mc_ctx *c,
                      Etcdserverpb__AlarmRequest__AlarmAction action,
                      uint64_t member, Etcdserverpb__AlarmType type,
                      Etcdserverpb__AlarmResponse **resp)
{
    Etcdserverpb__AlarmRequest req = ETCDSERVERPB__ALARM_REQUEST__INIT;
    req.action = action;
    req.memberid = member;
    req.alarm = type;
    return mc_call(c, PATH_MAINT "Alarm", &req,
                   &etcdserverpb__alarm_response__descriptor, resp);
}

int mc_cmd_alarm_list(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    (void)args;
    if (n != 0) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "alarm list command accepts no arguments");
    }
    Etcdserverpb__AlarmResponse *resp = NULL;
    int code = alarm_call(c, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET, 0,
                          ETCDSERVERPB__ALARM_TYPE__NONE, &resp);
    if (code == MC_EXIT_OK) {
        struct moor_buf out;
        moor_buf_init(&out);
        code = mc_emit(c, mc_print_alarm(&out, &c->pr, resp), &out);
        moor_buf_close(&out);
    }
    mc_pb_free(resp);
    return code;
}

int mc_cmd_alarm_disarm(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    (void)args;
    if (n != 0) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "alarm disarm command accepts no arguments");
    }
    Etcdserverpb__AlarmResponse *list = NULL;
    int code = alarm_call(c, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET, 0,
                          ETCDSERVERPB__ALARM_TYPE__NONE, &list);
    if (code != MC_EXIT_OK) {
        return code;
    }
    /* clientv3's AlarmDisarm: deactivate each listed alarm and gather the
     * answers' alarms into one response without a header. */
    Etcdserverpb__AlarmResponse all = ETCDSERVERPB__ALARM_RESPONSE__INIT;
    Etcdserverpb__AlarmResponse **parts =
        moor_calloc(list->n_alarms + 1, sizeof(*parts));
    size_t total = 0;
    if (parts == NULL) {
        code = mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    for (size_t i = 0; code == MC_EXIT_OK && i < list->n_alarms; i++) {
        code = alarm_call(
            c, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE,
            list->alarms[i]->memberid, list->alarms[i]->alarm, &parts[i]);
        if (code == MC_EXIT_OK) {
            total += parts[i]->n_alarms;
        }
    }
    if (code == MC_EXIT_OK) {
        all.alarms = moor_calloc(total + 1, sizeof(*all.alarms));
        if (all.alarms == NULL) {
            code = mc_fail(c, MC_EXIT_ERROR, "out of memory");
        }
    }
    if (code == MC_EXIT_OK) {
        for (size_t i = 0; i < list->n_alarms; i++) {
            for (size_t k = 0; k < parts[i]->n_alarms; k++) {
                all.alarms[all.n_alarms++] = parts[i]->alarms[k];
            }
        }
        struct moor_buf out;
        moor_buf_init(&out);
        code = mc_emit(c, mc_print_alarm(&out, &c->pr, &all), &out);
        moor_buf_close(&out);
    }
    moor_free(all.alarms);
    for (size_t i = 0; parts != NULL && i < list->n_alarms; i++) {
        mc_pb_free(parts[i]);
    }
    moor_free(parts);
    mc_pb_free(list);
    return code;
}

/* ------------------------------------------------------------------------
 * move-leader
 * ---------------------------------------------------------------------- */
int mc_cmd_move_leader(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "move-leader command needs 1 argument");
    }
    uint64_t target;
    int rv = mc_parse_hex_u64(args[0], &target);
    if (rv != MOOR_OK) {
        return mc_fail(
            c, MC_EXIT_USAGE, "strconv.ParseUint: parsing \"%s\": %s", args[0],
            rv == MOOR_ETOOBIG ? "value out of range" : "invalid syntax");
    }
    /* Find the endpoint that is the leader, then ask it to step down. */
    const char *leader_ep = NULL;
    uint64_t leader_id = 0;
    char e[MOOR_ERRMSG_SIZE];
    for (size_t i = 0; i < c->g.endpoints_len && leader_ep == NULL; i++) {
        Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
        ProtobufCMessage *m = NULL;
        if (ep_call(c, c->g.endpoints[i], PATH_MAINT "Status", &req.base,
                    &etcdserverpb__status_response__descriptor, &m,
                    e) != MOOR_OK) {
            return mc_fail(c, MC_EXIT_ERROR, "%s", e);
        }
        Etcdserverpb__StatusResponse *s = (void *)m;
        if (s->header != NULL && s->header->member_id == s->leader) {
            leader_ep = c->g.endpoints[i];
            leader_id = s->leader;
        }
        mc_pb_free(m);
    }
    if (leader_ep == NULL) {
        struct moor_buf list;
        moor_buf_init(&list);
        for (size_t i = 0; i < c->g.endpoints_len; i++) {
            moor_buf_printf(&list, "%s%s", i > 0 ? " " : "", c->g.endpoints[i]);
        }
        int code =
            mc_fail(c, MC_EXIT_USAGE, "no leader endpoint given at [%.*s]",
                    (int)list.len, (const char *)list.ptr);
        moor_buf_close(&list);
        return code;
    }
    Etcdserverpb__MoveLeaderRequest req =
        ETCDSERVERPB__MOVE_LEADER_REQUEST__INIT;
    req.targetid = target;
    ProtobufCMessage *m = NULL;
    if (ep_call(c, leader_ep, PATH_MAINT "MoveLeader", &req.base,
                &etcdserverpb__move_leader_response__descriptor, &m,
                e) != MOOR_OK) {
        return mc_fail(c, MC_EXIT_ERROR, "%s", e);
    }
    Etcdserverpb__MoveLeaderResponse *r = (void *)m;
    char line[128];
    snprintf(line, sizeof(line), "Leadership transferred from %llx to %llx\n",
             (unsigned long long)leader_id, (unsigned long long)target);
    struct moor_buf out;
    moor_buf_init(&out);
    int code =
        mc_emit(c, mc_print_header_only(&out, &c->pr, line, r->header), &out);
    moor_buf_close(&out);
    mc_pb_free(m);
    return code;
}
