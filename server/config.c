/*
 * config.c: moord's flags, with etcd's names, defaults and environment
 * variables.
 *
 * One table (flags[] below) is the single source of truth: it sets the
 * defaults (srv_config_init parses each default string exactly as if the
 * user had typed it), it parses the command line and ETCD_* variables, and
 * it prints --help. A flag added here is therefore documented and defaulted
 * in one place.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "server.h"
#include "snapshot/snapshot.h"

enum flag_type {
    F_STR,           /* char * */
    F_BOOL,          /* bool */
    F_U32,           /* uint32_t */
    F_U64,           /* uint64_t */
    F_I64,           /* int64_t */
    F_URLS,          /* struct srv_url_list */
    F_CLUSTER,       /* --initial-cluster: initial_members */
    F_CLUSTER_STATE, /* enum srv_cluster_state */
    F_COMPACT_MODE,  /* enum srv_compaction_mode */
    F_RETENTION,     /* kept as text until the mode is known */
    F_DURATION_MS,   /* uint64_t ms, from a Go duration ("10m", "200ms") */
    F_LOG_LEVEL,     /* enum moor_log_level */
    F_LOG_FORMAT,    /* enum moor_log_format */
    F_HELP,          /* sets want_help */
    F_VERSION,       /* sets want_version */
};

struct flag
{
    const char *name;
    enum flag_type type;
    size_t offset;
    const char *def;     /* parsed by srv_config_init; NULL: no default */
    const char *section; /* starts a --help section when non-NULL */
    const char *help;
};

#define OFF(field) offsetof(struct srv_config, field)

/* The retention text lives here between parsing and finishing; parsing is
 * single-threaded and once per process. */
static char retention_text[64];

static const struct flag flags[] = {
    {"name", F_STR, OFF(name), "default", "Member",
     "Human-readable name for this member."},
    {"data-dir", F_STR, OFF(data_dir), NULL, NULL,
     "Path to the data directory (default '${name}.etcd')."},
    {"wal-dir", F_STR, OFF(wal_dir), "", NULL,
     "Path to a dedicated WAL directory."},
    {"snapshot-count", F_U64, OFF(snapshot_count), "100000", NULL,
     "Number of applied entries that triggers a snapshot."},
    {"snapshot-bytes", F_U64, OFF(snapshot_bytes), "4194304", NULL,
     "Also snapshot once the entries applied since the last snapshot hold "
     "this many bytes, or a quarter of that snapshot's size if larger "
     "(a quarter of that after 500 ms without writes); the log kept below "
     "a snapshot is bounded to a quarter of the same (moor's own flag; 0 "
     "means by --snapshot-count only)."},
    {"heartbeat-interval", F_U32, OFF(heartbeat_ms), "100", NULL,
     "Time (in milliseconds) of a heartbeat interval."},
    {"election-timeout", F_U32, OFF(election_ms), "1000", NULL,
     "Time (in milliseconds) for an election to timeout."},
    {"listen-peer-urls", F_URLS, OFF(listen_peer_urls), "http://localhost:2380",
     NULL, "List of URLs to listen on for peer traffic."},
    {"listen-client-urls", F_URLS, OFF(listen_client_urls),
     "http://localhost:2379", NULL,
     "List of URLs to listen on for client traffic."},
    {"listen-metrics-urls", F_URLS, OFF(listen_metrics_urls), "", NULL,
     "List of URLs to also serve /metrics, /health and /version on."},
    {"max-snapshots", F_U32, OFF(max_snapshots), "5", NULL,
     "Maximum number of snapshot files to retain (0 is unlimited)."},
    {"max-wals", F_U32, OFF(max_wals), "5", NULL,
     "Maximum number of WAL files to retain (0 is unlimited)."},
    {"quota-backend-bytes", F_I64, OFF(quota_backend_bytes), "0", NULL,
     "Raise the NOSPACE alarm when the keyspace exceeds this many bytes "
     "(0 means 2 GiB)."},
    {"max-txn-ops", F_U32, OFF(max_txn_ops), "128", NULL,
     "Maximum number of operations permitted in a transaction."},
    {"max-request-bytes", F_U32, OFF(max_request_bytes), "1572864", NULL,
     "Maximum client request size in bytes the server will accept."},
    {"experimental-watch-progress-notify-interval", F_DURATION_MS,
     OFF(watch_progress_notify_ms), "10m", NULL,
     "Duration of periodic watch progress notifications."},

    {"initial-advertise-peer-urls", F_URLS, OFF(initial_advertise_peer_urls),
     "http://localhost:2380", "Clustering",
     "List of this member's peer URLs to advertise to the rest of the "
     "cluster."},
    {"initial-cluster", F_CLUSTER, 0, "default=http://localhost:2380", NULL,
     "Initial cluster configuration for bootstrapping (name=url,...)."},
    {"initial-cluster-state", F_CLUSTER_STATE, OFF(initial_cluster_state),
     "new", NULL, "Initial cluster state ('new' or 'existing')."},
    {"initial-cluster-token", F_STR, OFF(initial_cluster_token), "etcd-cluster",
     NULL, "Initial cluster token for the cluster during bootstrap."},
    {"advertise-client-urls", F_URLS, OFF(advertise_client_urls),
     "http://localhost:2379", NULL,
     "List of this member's client URLs to advertise to the public."},
    {"strict-reconfig-check", F_BOOL, OFF(strict_reconfig_check), "true", NULL,
     "Reject reconfiguration requests that would cause quorum loss."},
    {"pre-vote", F_BOOL, OFF(pre_vote), "true", NULL,
     "Run Raft's pre-vote phase before an election (etcd 3.4 defaults to "
     "false; moor to true)."},
    {"auto-compaction-retention", F_RETENTION, 0, "0", NULL,
     "Auto compaction retention: a duration for periodic (a bare number "
     "means hours), a count for revision. 0 disables."},
    {"auto-compaction-mode", F_COMPACT_MODE, OFF(auto_compaction_mode),
     "periodic", NULL,
     "Interpret auto-compaction-retention as 'periodic' or 'revision'."},

    {"cert-file", F_STR, OFF(cert_file), "", "Security",
     "Path to the client server TLS cert file."},
    {"key-file", F_STR, OFF(key_file), "", NULL,
     "Path to the client server TLS key file."},
    {"client-cert-auth", F_BOOL, OFF(client_cert_auth), "false", NULL,
     "Enable client cert authentication."},
    {"trusted-ca-file", F_STR, OFF(trusted_ca_file), "", NULL,
     "Path to the client server TLS trusted CA cert file."},
    {"peer-cert-file", F_STR, OFF(peer_cert_file), "", NULL,
     "Path to the peer server TLS cert file (also this member's client "
     "certificate toward its peers; https peer URLs need it)."},
    {"peer-key-file", F_STR, OFF(peer_key_file), "", NULL,
     "Path to the peer server TLS key file."},
    {"peer-client-cert-auth", F_BOOL, OFF(peer_client_cert_auth), "false", NULL,
     "Enable peer client cert authentication."},
    {"peer-trusted-ca-file", F_STR, OFF(peer_trusted_ca_file), "", NULL,
     "Path to the peer server TLS trusted CA file."},
    {"peer-auto-tls", F_BOOL, OFF(peer_auto_tls), "false", NULL,
     "Peer TLS using generated certificates (not built: moord refuses it; "
     "give --peer-cert-file and --peer-key-file)."},

    {"log-level", F_LOG_LEVEL, OFF(log_level), "info", "Logging",
     "Log level: debug, info, warn, error."},
    {"log-format", F_LOG_FORMAT, OFF(log_format), "text", NULL,
     "Log line format: text (key=value) or json."},

    {"help", F_HELP, 0, NULL, "Other", "Show this help and exit."},
    {"version", F_VERSION, 0, NULL, NULL, "Print the version and exit."},
};

#define N_FLAGS MOOR_ARRAY_LEN(flags)

static const struct flag *flag_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_FLAGS; i++) {
        if (strlen(flags[i].name) == len &&
            memcmp(flags[i].name, name, len) == 0) {
            return &flags[i];
        }
    }
    return NULL;
}

static int parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "t") == 0 ||
        strcmp(v, "TRUE") == 0) {
        *out = true;
        return MOOR_OK;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "f") == 0 ||
        strcmp(v, "FALSE") == 0) {
        *out = false;
        return MOOR_OK;
    }
    return MOOR_EINVAL;
}

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    if (*v == '\0' || !isdigit((unsigned char)*v)) {
        return MOOR_EINVAL;
    }
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || x > max) {
        return MOOR_EINVAL;
    }
    *out = x;
    return MOOR_OK;
}

/* Go's time.ParseDuration subset: [number unit]+ with units ns, us, ms, s,
 * m, h and optional decimals ("1h30m", "1.5h", "500ms"). Result in ms. */
static int parse_duration_ms(const char *v, uint64_t *out)
{
    double total = 0;
    const char *p = v;
    if (*p == '\0') {
        return MOOR_EINVAL;
    }
    while (*p != '\0') {
        char *end;
        if (!isdigit((unsigned char)*p) && *p != '.') {
            return MOOR_EINVAL;
        }
        double n = strtod(p, &end);
        if (end == p) {
            return MOOR_EINVAL;
        }
        p = end;
        double unit_ms;
        if (strncmp(p, "ns", 2) == 0) {
            unit_ms = 1e-6, p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            unit_ms = 1e-3, p += 2;
        } else if (strncmp(p, "ms", 2) == 0) {
            unit_ms = 1, p += 2;
        } else if (*p == 's') {
            unit_ms = 1e3, p += 1;
        } else if (*p == 'm') {
            unit_ms = 60e3, p += 1;
        } else if (*p == 'h') {
            unit_ms = 3600e3, p += 1;
        } else {
            return MOOR_EINVAL;
        }
        total += n * unit_ms;
    }
    if (total < 0 || total > 1e15) {
        return MOOR_EINVAL;
    }
    *out = (uint64_t)total;
    return MOOR_OK;
}

int srv_url_parse(const char *text, struct srv_url *out, char *errmsg)
{
    memset(out, 0, sizeof(*out));
    const char *p;
    if (strncmp(text, "http://", 7) == 0) {
        p = text + 7;
    } else if (strncmp(text, "https://", 8) == 0) {
        out->tls = true;
        p = text + 8;
    } else {
        moor_errmsg_set(errmsg, "URL scheme must be http or https: %s", text);
        return MOOR_EINVAL;
    }
    const char *host = p;
    size_t host_len;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL) {
            moor_errmsg_set(errmsg, "unterminated IPv6 address: %s", text);
            return MOOR_EINVAL;
        }
        host = p + 1;
        host_len = (size_t)(close - host);
        p = close + 1;
    } else {
        const char *colon = strchr(p, ':');
        host_len = colon ? (size_t)(colon - p) : strlen(p);
        p += host_len;
    }
    if (host_len == 0 || host_len >= sizeof(out->host)) {
        moor_errmsg_set(errmsg, "URL has no valid host: %s", text);
        return MOOR_EINVAL;
    }
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    if (*p != ':') {
        moor_errmsg_set(errmsg, "URL address %s: missing port", text);
        return MOOR_EINVAL;
    }
    p++;
    /* A trailing "/" is allowed, as etcd accepts it; no other path. */
    char port[8];
    size_t plen = strcspn(p, "/");
    if (plen == 0 || plen >= sizeof(port) ||
        (p[plen] == '/' && p[plen + 1] != '\0')) {
        moor_errmsg_set(errmsg, "URL must be scheme://host:port: %s", text);
        return MOOR_EINVAL;
    }
    memcpy(port, p, plen);
    port[plen] = '\0';
    uint64_t n;
    if (parse_u64(port, 65535, &n) != MOOR_OK) {
        moor_errmsg_set(errmsg, "URL has an invalid port: %s", text);
        return MOOR_EINVAL;
    }
    out->port = (uint16_t)n;
    bool v6 = strchr(out->host, ':') != NULL;
    snprintf(out->text, sizeof(out->text), "%s://%s%s%s:%u",
             out->tls ? "https" : "http", v6 ? "[" : "", out->host,
             v6 ? "]" : "", (unsigned)out->port);
    return MOOR_OK;
}

int srv_url_list_parse(const char *text, struct srv_url_list *out, char *errmsg)
{
    out->n = 0;
    const char *p = text;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        if (len > 0) {
            if (out->n == SRV_URLS_MAX) {
                moor_errmsg_set(errmsg, "more than %d URLs: %s", SRV_URLS_MAX,
                                text);
                return MOOR_EINVAL;
            }
            char one[320];
            if (len >= sizeof(one)) {
                moor_errmsg_set(errmsg, "URL too long in %s", text);
                return MOOR_EINVAL;
            }
            memcpy(one, p, len);
            one[len] = '\0';
            int rv = srv_url_parse(one, &out->urls[out->n], errmsg);
            if (rv != MOOR_OK) {
                return rv;
            }
            out->n++;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return MOOR_OK;
}

/* --initial-cluster: name=url[,name=url...]; a name may repeat to give a
 * member several peer URLs. */
static int parse_cluster(struct srv_config *cfg, const char *text, char *errmsg)
{
    cfg->n_initial_members = 0;
    const char *p = text;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (eq == NULL || eq == p) {
            moor_errmsg_set(errmsg, "--initial-cluster: '%.*s' is not name=url",
                            (int)len, p);
            return MOOR_EINVAL;
        }
        size_t name_len = (size_t)(eq - p);
        char url_text[320];
        size_t url_len = len - name_len - 1;
        if (name_len >= SRV_NAME_MAX || url_len >= sizeof(url_text)) {
            moor_errmsg_set(errmsg, "--initial-cluster: entry too long");
            return MOOR_EINVAL;
        }
        memcpy(url_text, eq + 1, url_len);
        url_text[url_len] = '\0';
        struct srv_initial_member *m = NULL;
        for (unsigned i = 0; i < cfg->n_initial_members; i++) {
            if (strlen(cfg->initial_members[i].name) == name_len &&
                memcmp(cfg->initial_members[i].name, p, name_len) == 0) {
                m = &cfg->initial_members[i];
            }
        }
        if (m == NULL) {
            if (cfg->n_initial_members == SRV_MEMBERS_MAX) {
                moor_errmsg_set(errmsg,
                                "--initial-cluster: more than %d "
                                "members",
                                SRV_MEMBERS_MAX);
                return MOOR_EINVAL;
            }
            m = &cfg->initial_members[cfg->n_initial_members++];
            memset(m, 0, sizeof(*m));
            memcpy(m->name, p, name_len);
            m->name[name_len] = '\0';
        }
        if (m->peer_urls.n == SRV_URLS_MAX) {
            moor_errmsg_set(errmsg, "--initial-cluster: too many URLs for %s",
                            m->name);
            return MOOR_EINVAL;
        }
        char why[MOOR_ERRMSG_SIZE];
        if (srv_url_parse(url_text, &m->peer_urls.urls[m->peer_urls.n], why) !=
            MOOR_OK) {
            moor_errmsg_set(errmsg, "--initial-cluster: %s", why);
            return MOOR_EINVAL;
        }
        m->peer_urls.n++;
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return MOOR_OK;
}

/* Sets one flag from its text value. */
static int flag_set(struct srv_config *cfg, const struct flag *f, const char *v,
                    char *errmsg)
{
    void *field = (char *)cfg + f->offset;
    char why[MOOR_ERRMSG_SIZE];
    uint64_t u;
    int rv = MOOR_OK;
    switch (f->type) {
    case F_STR: {
        char *copy = moor_strdup(v);
        if (copy == NULL) {
            return MOOR_ENOMEM;
        }
        moor_free(*(char **)field);
        *(char **)field = copy;
        return MOOR_OK;
    }
    case F_BOOL:
        rv = parse_bool(v, field);
        break;
    case F_U32:
        rv = parse_u64(v, UINT32_MAX, &u);
        if (rv == MOOR_OK) {
            *(uint32_t *)field = (uint32_t)u;
        }
        break;
    case F_U64:
        rv = parse_u64(v, UINT64_MAX, field);
        break;
    case F_I64:
        rv = parse_u64(v, INT64_MAX, &u);
        if (rv == MOOR_OK) {
            *(int64_t *)field = (int64_t)u;
        }
        break;
    case F_URLS:
        if (srv_url_list_parse(v, field, why) != MOOR_OK) {
            moor_errmsg_set(errmsg, "--%s: %s", f->name, why);
            return MOOR_EINVAL;
        }
        return MOOR_OK;
    case F_CLUSTER:
        return parse_cluster(cfg, v, errmsg);
    case F_CLUSTER_STATE:
        if (strcmp(v, "new") == 0) {
            cfg->initial_cluster_state = SRV_CLUSTER_NEW;
        } else if (strcmp(v, "existing") == 0) {
            cfg->initial_cluster_state = SRV_CLUSTER_EXISTING;
        } else {
            rv = MOOR_EINVAL;
        }
        break;
    case F_COMPACT_MODE:
        if (strcmp(v, "periodic") == 0) {
            cfg->auto_compaction_mode = SRV_COMPACT_PERIODIC;
        } else if (strcmp(v, "revision") == 0) {
            cfg->auto_compaction_mode = SRV_COMPACT_REVISION;
        } else {
            rv = MOOR_EINVAL;
        }
        break;
    case F_RETENTION:
        if (strlen(v) >= sizeof(retention_text)) {
            rv = MOOR_EINVAL;
            break;
        }
        snprintf(retention_text, sizeof(retention_text), "%s", v);
        break;
    case F_DURATION_MS:
        rv = parse_duration_ms(v, field);
        break;
    case F_LOG_LEVEL:
        rv = moor_log_parse_level(v, field);
        break;
    case F_LOG_FORMAT:
        if (strcmp(v, "text") == 0) {
            cfg->log_format = MOOR_LOG_TEXT;
        } else if (strcmp(v, "json") == 0) {
            cfg->log_format = MOOR_LOG_JSON;
        } else {
            rv = MOOR_EINVAL;
        }
        break;
    case F_HELP:
        rv = parse_bool(v, &cfg->want_help);
        break;
    case F_VERSION:
        rv = parse_bool(v, &cfg->want_version);
        break;
    }
    if (rv != MOOR_OK) {
        moor_errmsg_set(errmsg, "invalid value \"%s\" for flag --%s", v,
                        f->name);
        return MOOR_EINVAL;
    }
    return MOOR_OK;
}

void srv_config_init(struct srv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    char errmsg[MOOR_ERRMSG_SIZE];
    for (size_t i = 0; i < N_FLAGS; i++) {
        if (flags[i].def != NULL) {
            /* Defaults are ours: one that does not parse is a bug. */
            int rv = flag_set(cfg, &flags[i], flags[i].def, errmsg);
            MOOR_ASSERT(rv == MOOR_OK);
        }
    }
}

void srv_config_close(struct srv_config *cfg)
{
    for (size_t i = 0; i < N_FLAGS; i++) {
        if (flags[i].type == F_STR) {
            char **field = (char **)((char *)cfg + flags[i].offset);
            moor_free(*field);
            *field = NULL;
        }
    }
}

/* Fills what derives from other settings; runs after all flags are in. */
static int config_finish(struct srv_config *cfg, char *errmsg)
{
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
        struct moor_buf b;
        moor_buf_init(&b);
        if (moor_buf_printf(&b, "%s.etcd", cfg->name) != MOOR_OK) {
            moor_buf_close(&b);
            return MOOR_ENOMEM;
        }
        moor_free(cfg->data_dir);
        cfg->data_dir = (char *)b.ptr; /* NUL-terminated by printf */
    }
    uint64_t r = 0;
    if (cfg->auto_compaction_mode == SRV_COMPACT_REVISION) {
        if (parse_u64(retention_text, INT64_MAX, &r) != MOOR_OK) {
            moor_errmsg_set(errmsg,
                            "invalid auto-compaction-retention \"%s\""
                            " for revision mode (want a count)",
                            retention_text);
            return MOOR_EINVAL;
        }
    } else if (parse_u64(retention_text, UINT32_MAX, &r) == MOOR_OK) {
        r *= 3600u * 1000u; /* a bare number is hours */
    } else if (parse_duration_ms(retention_text, &r) != MOOR_OK) {
        moor_errmsg_set(errmsg,
                        "invalid auto-compaction-retention \"%s\" "
                        "(want a duration such as 1h or 30m)",
                        retention_text);
        return MOOR_EINVAL;
    }
    cfg->auto_compaction_retention = r;
    for (unsigned i = 0; i < cfg->n_initial_members; i++) {
        cfg->initial_members[i].id = srv_member_id(
            &cfg->initial_members[i].peer_urls, cfg->initial_cluster_token);
    }
    return MOOR_OK;
}

/* Converts ETCD_FOO_BAR to foo-bar in out; false when the name is not an
 * ETCD_ variable. */
static bool env_flag_name(const char *kv, char *out, size_t cap,
                          const char **value)
{
    if (strncmp(kv, "ETCD_", 5) != 0) {
        return false;
    }
    const char *eq = strchr(kv, '=');
    if (eq == NULL || (size_t)(eq - kv - 5) >= cap) {
        return false;
    }
    size_t n = 0;
    for (const char *p = kv + 5; p < eq; p++) {
        out[n++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    }
    out[n] = '\0';
    *value = eq + 1;
    return true;
}

int srv_config_parse(struct srv_config *cfg, int argc, char *const *argv,
                     char *const *envp, char *errmsg)
{
    int rv;
    bool set[N_FLAGS];
    memset(set, 0, sizeof(set));
    retention_text[0] = '\0';
    snprintf(retention_text, sizeof(retention_text), "0");

    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        char name[64];
        const char *value;
        if (!env_flag_name(envp[i], name, sizeof(name), &value)) {
            continue;
        }
        const struct flag *f = flag_find(name, strlen(name));
        if (f == NULL || f->type == F_HELP || f->type == F_VERSION) {
            /* etcd warns about unknown ETCD_ variables and goes on. */
            MOOR_LOG_WARN("config", "unrecognized environment variable",
                          "var=%.*s", (int)strcspn(envp[i], "="), envp[i]);
            continue;
        }
        rv = flag_set(cfg, f, value, errmsg);
        if (rv != MOOR_OK) {
            return rv;
        }
        set[f - flags] = true;
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            moor_errmsg_set(errmsg, "unexpected argument \"%s\"", a);
            return MOOR_EINVAL;
        }
        a += a[1] == '-' ? 2 : 1; /* Go flags accept -flag and --flag */
        if (strcmp(a, "h") == 0) {
            a = "help";
        }
        size_t len = strcspn(a, "=");
        const struct flag *f = flag_find(a, len);
        if (f == NULL) {
            moor_errmsg_set(errmsg, "unknown flag: --%.*s", (int)len, a);
            return MOOR_EINVAL;
        }
        const char *value;
        if (a[len] == '=') {
            value = a + len + 1;
        } else if (f->type == F_BOOL || f->type == F_HELP ||
                   f->type == F_VERSION) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            moor_errmsg_set(errmsg, "flag needs an argument: --%s", f->name);
            return MOOR_EINVAL;
        }
        rv = flag_set(cfg, f, value, errmsg);
        if (rv != MOOR_OK) {
            return rv;
        }
        set[f - flags] = true;
    }
    if (cfg->want_help || cfg->want_version) {
        return MOOR_OK;
    }
    rv = config_finish(cfg, errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    /* etcd: explicit listen client URLs need explicit advertise URLs. */
    const struct flag *lc = flag_find("listen-client-urls", 18);
    const struct flag *ac = flag_find("advertise-client-urls", 21);
    if (set[lc - flags] && !set[ac - flags]) {
        moor_errmsg_set(errmsg,
                        "--advertise-client-urls is required when "
                        "--listen-client-urls is set explicitly");
        return MOOR_EINVAL;
    }
    return srv_config_validate(cfg, errmsg);
}

static bool url_lists_equal(const struct srv_url_list *a,
                            const struct srv_url_list *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (unsigned i = 0; i < a->n; i++) {
        bool found = false;
        for (unsigned k = 0; k < b->n && !found; k++) {
            found = strcmp(a->urls[i].text, b->urls[k].text) == 0;
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

static bool any_tls(const struct srv_url_list *l)
{
    for (unsigned i = 0; i < l->n; i++) {
        if (l->urls[i].tls) {
            return true;
        }
    }
    return false;
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

int srv_config_validate(const struct srv_config *cfg, char *errmsg)
{
    if (empty(cfg->name)) {
        moor_errmsg_set(errmsg, "--name must not be empty");
        return MOOR_EINVAL;
    }
    if (cfg->heartbeat_ms == 0) {
        moor_errmsg_set(errmsg, "--heartbeat-interval must be positive");
        return MOOR_EINVAL;
    }
    if ((uint64_t)cfg->heartbeat_ms * 5 > cfg->election_ms) {
        moor_errmsg_set(errmsg,
                        "--election-timeout[%ums] should be at least "
                        "as 5 times as --heartbeat-interval[%ums]",
                        cfg->election_ms, cfg->heartbeat_ms);
        return MOOR_EINVAL;
    }
    if (cfg->election_ms > 50000) {
        moor_errmsg_set(errmsg,
                        "--election-timeout[%ums] is too long, and "
                        "should be set less than 50000ms",
                        cfg->election_ms);
        return MOOR_EINVAL;
    }
    if (cfg->snapshot_count == 0 || cfg->max_txn_ops == 0 ||
        cfg->max_request_bytes == 0) {
        moor_errmsg_set(errmsg,
                        "--snapshot-count, --max-txn-ops and "
                        "--max-request-bytes must be positive");
        return MOOR_EINVAL;
    }
    if (cfg->listen_client_urls.n == 0 || cfg->listen_peer_urls.n == 0) {
        moor_errmsg_set(errmsg,
                        "--listen-client-urls and --listen-peer-urls "
                        "must not be empty");
        return MOOR_EINVAL;
    }
    if (empty(cfg->cert_file) != empty(cfg->key_file)) {
        moor_errmsg_set(errmsg, "--cert-file and --key-file go together");
        return MOOR_EINVAL;
    }
    if (empty(cfg->peer_cert_file) != empty(cfg->peer_key_file)) {
        moor_errmsg_set(errmsg,
                        "--peer-cert-file and --peer-key-file go together");
        return MOOR_EINVAL;
    }
    if ((any_tls(&cfg->listen_client_urls) ||
         any_tls(&cfg->listen_metrics_urls)) &&
        empty(cfg->cert_file)) {
        moor_errmsg_set(errmsg,
                        "https client URLs need --cert-file and "
                        "--key-file");
        return MOOR_EINVAL;
    }
    if (any_tls(&cfg->listen_peer_urls) && empty(cfg->peer_cert_file)) {
        moor_errmsg_set(errmsg,
                        "https peer URLs need --peer-cert-file and "
                        "--peer-key-file");
        return MOOR_EINVAL;
    }
    if (cfg->client_cert_auth && empty(cfg->trusted_ca_file)) {
        moor_errmsg_set(errmsg, "--client-cert-auth needs --trusted-ca-file");
        return MOOR_EINVAL;
    }
    if (cfg->peer_auto_tls) {
        moor_errmsg_set(errmsg,
                        "--peer-auto-tls is not built: give "
                        "--peer-cert-file and --peer-key-file (and "
                        "--peer-trusted-ca-file)");
        return MOOR_EINVAL;
    }
    /* Peers speak TLS or they do not: every peer URL has the same scheme,
     * and TLS has its certificate (and only TLS has one). */
    bool peer_tls =
        cfg->listen_peer_urls.n > 0 && cfg->listen_peer_urls.urls[0].tls;
    const struct srv_url_list *peer_lists[2 + SRV_MEMBERS_MAX];
    size_t n_lists = 0;
    peer_lists[n_lists++] = &cfg->listen_peer_urls;
    peer_lists[n_lists++] = &cfg->initial_advertise_peer_urls;
    for (unsigned i = 0; i < cfg->n_initial_members; i++) {
        peer_lists[n_lists++] = &cfg->initial_members[i].peer_urls;
    }
    for (size_t k = 0; k < n_lists; k++) {
        for (unsigned i = 0; i < peer_lists[k]->n; i++) {
            if (peer_lists[k]->urls[i].tls != peer_tls) {
                moor_errmsg_set(errmsg,
                                "peer URLs mix https and http (%s): peers "
                                "speak TLS or they do not",
                                peer_lists[k]->urls[i].text);
                return MOOR_EINVAL;
            }
        }
    }
    if (!peer_tls && !empty(cfg->peer_cert_file)) {
        moor_errmsg_set(errmsg,
                        "--peer-cert-file is given but the peer URLs are "
                        "http://: use https:// peer URLs for peer TLS");
        return MOOR_EINVAL;
    }
    if (cfg->peer_client_cert_auth && empty(cfg->peer_trusted_ca_file)) {
        moor_errmsg_set(errmsg,
                        "--peer-client-cert-auth needs --peer-trusted-ca-file");
        return MOOR_EINVAL;
    }
    /* This member must be in --initial-cluster with exactly its advertised
     * peer URLs (etcd checks the same before bootstrapping). */
    const struct srv_initial_member *self = NULL;
    for (unsigned i = 0; i < cfg->n_initial_members; i++) {
        if (strcmp(cfg->initial_members[i].name, cfg->name) == 0) {
            self = &cfg->initial_members[i];
        }
        for (unsigned k = 0; k < i; k++) {
            if (cfg->initial_members[k].id == cfg->initial_members[i].id) {
                moor_errmsg_set(errmsg,
                                "--initial-cluster: members %s and %s "
                                "have the same peer URLs",
                                cfg->initial_members[k].name,
                                cfg->initial_members[i].name);
                return MOOR_EINVAL;
            }
        }
    }
    if (self == NULL) {
        moor_errmsg_set(errmsg,
                        "couldn't find local name \"%s\" in the "
                        "initial cluster configuration",
                        cfg->name);
        return MOOR_EINVAL;
    }
    if (!url_lists_equal(&self->peer_urls, &cfg->initial_advertise_peer_urls)) {
        moor_errmsg_set(errmsg,
                        "--initial-cluster has %s=%s but missing from "
                        "--initial-advertise-peer-urls=%s",
                        self->name, self->peer_urls.urls[0].text,
                        cfg->initial_advertise_peer_urls.n
                            ? cfg->initial_advertise_peer_urls.urls[0].text
                            : "");
        return MOOR_EINVAL;
    }
    return MOOR_OK;
}

void srv_config_print_help(FILE *out)
{
    fprintf(out,
            "Usage:\n\n  moord [flags]\n    Start a moor member (an etcd v3 "
            "compatible server).\n\n  moord --version\n    Show the version."
            "\n\n  moord -h | --help\n    Show this help.\n\n"
            "Every flag can also be set as an environment variable ETCD_<FLAG>"
            " (upper case,\n'-' as '_'), e.g. ETCD_INITIAL_CLUSTER; a flag "
            "on the command line wins.\n");
    for (size_t i = 0; i < N_FLAGS; i++) {
        const struct flag *f = &flags[i];
        if (f->section != NULL) {
            fprintf(out, "\n%s:\n", f->section);
        }
        if (f->def != NULL) {
            fprintf(out, "  --%s '%s'\n", f->name, f->def);
        } else if (f->type == F_STR) {
            fprintf(out, "  --%s '${name}.etcd'\n", f->name);
        } else {
            fprintf(out, "  --%s\n", f->name);
        }
        fprintf(out, "    %s\n", f->help);
    }
}

/* The derivation itself is snapshot/'s, shared with `moorctl snapshot
 * restore`, so a restored cluster gets the ids moord computes. */
uint64_t srv_member_id(const struct srv_url_list *peer_urls,
                       const char *cluster_token)
{
    const char *texts[SRV_URLS_MAX];
    for (unsigned i = 0; i < peer_urls->n; i++) {
        texts[i] = peer_urls->urls[i].text;
    }
    return snap_member_id(texts, peer_urls->n, cluster_token);
}

uint64_t srv_cluster_id(uint64_t *ids, unsigned n)
{
    return snap_cluster_id(ids, n);
}
