/*
 * http.c: plain HTTP/1.1 on the client port: /health and /version as
 * etcd answers them, and /metrics in Prometheus text (observe.c renders
 * it: etcd's metric names where the meaning is the same, moor's own
 * per-stage write latencies).
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
        return srv_obs_render(n, &resp->body);
    }
    resp->status = 404;
    return moor_buf_printf(&resp->body, "404 page not found\n");
}
