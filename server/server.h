/*
 * server/server.h: moord, the member daemon.
 *
 * server/ joins raft, wal, kv, snapshot and rpc into a member that serves
 * etcd's v3 API (the node loop, the services, the peer transport and
 * membership live behind server_int.h; main.c is the daemon). This header
 * is its configuration: etcd's server flags with etcd's names, defaults and
 * ETCD_* environment variables, their validation, and etcd's member and
 * cluster id derivation.
 *
 * Threads: configuration is parsed once on the main thread before anything
 * starts. Ownership: struct srv_config is caller memory; srv_config_init
 * fills defaults, srv_config_close frees what parsing allocated.
 */
#ifndef MOOR_SERVER_H
#define MOOR_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"

/* Bounds. A member listens on at most this many URLs per kind, and a
 * cluster has at most this many members at bootstrap. */
#define SRV_URLS_MAX 8
#define SRV_MEMBERS_MAX 16
#define SRV_NAME_MAX 256

/* A parsed listen or advertise URL: http://host:port or https://host:port
 * (etcd's forms; unix sockets are not supported). */
struct srv_url
{
    bool tls;       /* https */
    char host[256]; /* without brackets for IPv6 */
    uint16_t port;
    char text[300]; /* normalised: scheme://host:port */
};

struct srv_url_list
{
    unsigned n;
    struct srv_url urls[SRV_URLS_MAX];
};

/* One member of --initial-cluster: a name and its peer URLs. */
struct srv_initial_member
{
    char name[SRV_NAME_MAX];
    struct srv_url_list peer_urls;
    uint64_t id; /* derived: srv_member_id() */
};

enum srv_cluster_state {
    SRV_CLUSTER_NEW = 0,
    SRV_CLUSTER_EXISTING = 1,
};

enum srv_compaction_mode {
    SRV_COMPACT_PERIODIC = 0,
    SRV_COMPACT_REVISION = 1,
};

/* Every setting of moord. Strings are owned (moor_free'd by close). */
struct srv_config
{
    /* Member */
    char *name;
    char *data_dir; /* default "<name>.etcd" */
    char *wal_dir;
    uint64_t snapshot_count;
    uint64_t snapshot_bytes; /* moor's own; 0 = by count only */
    uint32_t heartbeat_ms;
    uint32_t election_ms;
    uint32_t max_snapshots;
    uint32_t max_wals;
    int64_t quota_backend_bytes; /* 0 in the flag means 2 GiB */
    uint32_t max_txn_ops;
    uint32_t max_request_bytes;
    /* Period of watch progress notifications (0: etcd's 10 minutes). */
    uint64_t watch_progress_notify_ms;
    struct srv_url_list listen_peer_urls;
    struct srv_url_list listen_client_urls;
    struct srv_url_list listen_metrics_urls;

    /* Clustering */
    struct srv_url_list initial_advertise_peer_urls;
    struct srv_url_list advertise_client_urls;
    unsigned n_initial_members;
    struct srv_initial_member initial_members[SRV_MEMBERS_MAX];
    enum srv_cluster_state initial_cluster_state;
    char *initial_cluster_token;
    bool strict_reconfig_check;
    bool pre_vote;
    enum srv_compaction_mode auto_compaction_mode;
    /* periodic: milliseconds of history to keep; revision: revisions to
     * keep. 0 disables auto compaction. */
    uint64_t auto_compaction_retention;

    /* Security */
    char *cert_file;
    char *key_file;
    char *trusted_ca_file;
    bool client_cert_auth;
    char *peer_cert_file;
    char *peer_key_file;
    char *peer_trusted_ca_file;
    bool peer_client_cert_auth;
    bool peer_auto_tls; /* refused: not built */

    /* Logging */
    enum moor_log_level log_level;
    enum moor_log_format log_format;

    /* Set by parsing: the command asked for --help or --version. */
    bool want_help;
    bool want_version;
};

/* The 2 GiB default quota etcd applies when --quota-backend-bytes is 0. */
#define SRV_DEFAULT_QUOTA_BYTES (2ll * 1024 * 1024 * 1024)

/* Fills cfg with etcd's defaults. */
void srv_config_init(struct srv_config *cfg);
/* Frees what init and parsing allocated. */
void srv_config_close(struct srv_config *cfg);

/* Applies, in order, the environment (ETCD_<FLAG> for every flag, e.g.
 * ETCD_NAME, ETCD_INITIAL_CLUSTER; envp is a NULL-terminated "K=V" array,
 * usually environ) and then the command line (argv[1..argc), "--flag=value",
 * "--flag value", "-flag", and bare "--flag" for booleans), so a flag wins
 * over its variable. Then fills derived values (data dir default, member
 * ids) and validates the whole (srv_config_validate).
 *
 * Returns MOOR_OK, or MOOR_EINVAL with a one-line reason in errmsg
 * (MOOR_ERRMSG_SIZE bytes) naming the flag: an unknown flag, a value that
 * does not parse, or settings that contradict each other. Borrows argv and
 * envp. */
int srv_config_parse(struct srv_config *cfg, int argc, char *const *argv,
                     char *const *envp, char *errmsg);

/* Checks settings against each other (election timeout at least 5
 * heartbeats and at most 50000 ms, this member present in
 * --initial-cluster with its advertised peer URLs, TLS files given in
 * pairs, https URLs backed by certificates ...). MOOR_EINVAL + errmsg. */
int srv_config_validate(const struct srv_config *cfg, char *errmsg);

/* Prints the flag reference (--help): every flag with its default and
 * meaning, grouped as etcd groups them. */
void srv_config_print_help(FILE *out);

/* Parses one URL ("http://127.0.0.1:2379", "https://[::1]:2380").
 * MOOR_EINVAL with errmsg on anything else. */
int srv_url_parse(const char *text, struct srv_url *out, char *errmsg);

/* Parses a comma-separated URL list into out (replacing its contents). */
int srv_url_list_parse(const char *text, struct srv_url_list *out,
                       char *errmsg);

/* etcd's member id: the first 8 bytes (big-endian) of SHA-1 over the
 * member's peer URLs sorted and concatenated, then the cluster token. The
 * same flags give the same ids as etcd's, so `member list` matches. */
uint64_t srv_member_id(const struct srv_url_list *peer_urls,
                       const char *cluster_token);

/* etcd's cluster id: the first 8 bytes (big-endian) of SHA-1 over the
 * sorted member ids, each as 8 big-endian bytes. ids is sorted in place. */
uint64_t srv_cluster_id(uint64_t *ids, unsigned n);

#endif /* MOOR_SERVER_H */
