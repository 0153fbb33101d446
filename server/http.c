/*
 * http.c: plain HTTP/1.1 on the client port: /health and /version as
 * etcd answers them, and /metrics in Prometheus text with etcd's metric
 * names where the meaning is the same.
 */
#include "server_int.h"

static bool path_is(const char *path, const char *want)
{
    size_t n = strlen(want);
    return strncmp(path, want, n) == 0 && (path[n] == '\0' || path[n] == '?');
}

int srv_http(const char *path, struct rpc_http_response *resp, void *arg)
{
    struct srv_node *n = arg;
    if (path_is(path, "/health")) {
        /* etcd: healthy when there is a leader and no alarm. */
        const char *reason = NULL;
        if (raft_node_leader(n->raft) == 0 || n->stopping) {
            reason = "RAFT NO LEADER";
        } else if (n->alarm_nospace) {
            reason = "ALARM NOSPACE";
        }
        resp->status = reason == NULL ? 200 : 503;
        resp->content_type = "application/json";
        return moor_buf_printf(
            &resp->body, "{\"health\":\"%s\",\"reason\":\"%s\"}",
            reason == NULL ? "true" : "false", reason == NULL ? "" : reason);
    }
    if (path_is(path, "/version")) {
        resp->content_type = "application/json";
        return moor_buf_printf(&resp->body,
                               "{\"etcdserver\":\"%s\",\"etcdcluster\":\"%s\"}",
                               SRV_ETCD_VERSION, SRV_ETCD_CLUSTER_VERSION);
    }
    if (path_is(path, "/metrics")) {
        resp->content_type = "text/plain; version=0.0.4";
        uint64_t leader = raft_node_leader(n->raft);
        return moor_buf_printf(
            &resp->body,
            "# HELP etcd_server_has_leader Whether or not a leader exists. 1 "
            "is existence, 0 is not.\n"
            "# TYPE etcd_server_has_leader gauge\n"
            "etcd_server_has_leader %d\n"
            "# HELP etcd_server_is_leader Whether or not this member is a "
            "leader.\n"
            "# TYPE etcd_server_is_leader gauge\n"
            "etcd_server_is_leader %d\n"
            "# HELP etcd_mvcc_db_total_size_in_bytes Total size of the "
            "keyspace in bytes (moor: bytes allocated by the member).\n"
            "# TYPE etcd_mvcc_db_total_size_in_bytes gauge\n"
            "etcd_mvcc_db_total_size_in_bytes %zu\n"
            "# HELP etcd_debugging_mvcc_current_revision The current "
            "revision of the store.\n"
            "# TYPE etcd_debugging_mvcc_current_revision gauge\n"
            "etcd_debugging_mvcc_current_revision %lld\n"
            "# HELP etcd_server_proposals_applied_total The total number of "
            "consensus proposals applied.\n"
            "# TYPE etcd_server_proposals_applied_total gauge\n"
            "etcd_server_proposals_applied_total %llu\n"
            "# HELP etcd_server_proposals_pending The current number of "
            "pending proposals to commit.\n"
            "# TYPE etcd_server_proposals_pending gauge\n"
            "etcd_server_proposals_pending %zu\n",
            leader != 0, leader == n->member_id, moor_alloc_bytes(),
            (long long)kv_store_revision(n->kv),
            (unsigned long long)kv_store_applied_index(n->kv), n->n_waiters);
    }
    resp->status = 404;
    return moor_buf_printf(&resp->body, "404 page not found\n");
}
