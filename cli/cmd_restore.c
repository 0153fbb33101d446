/*
 * cmd_restore.c: snapshot restore FILE — a backup into a fresh data dir
 * for a new cluster, offline.
 *
 * etcdctl's flags and defaults: --data-dir (default "<name>.etcd"),
 * --name ("default"), --initial-cluster ("default=http://localhost:2380"),
 * --initial-cluster-token ("etcd-cluster"), --initial-advertise-peer-urls
 * ("http://localhost:2380"), --skip-hash-check. The new membership is
 * encoded as a moorpb.Membership (etcd's member and cluster ids, from
 * snapshot/'s derivation, the one moord uses) and handed with the file to
 * snap_restore(), which verifies and loads the whole backup before it
 * creates anything, then writes <data-dir>/member/snap/1-1.snap.
 *
 * Progress on stderr when stderr is a terminal (phase, percent, rate),
 * redrawn at most ten times a second; nothing otherwise.
 */
#include <fcntl.h>
#include <unistd.h>

#include "cli_int.h"
#include "snapshot/snapshot.h"

#define DEFAULT_NAME "default"
#define DEFAULT_CLUSTER "default=http://localhost:2380"
#define DEFAULT_TOKEN "etcd-cluster"
#define DEFAULT_ADVERTISE "http://localhost:2380"

const struct mc_flag mc_restore_flags[] = {
    {"data-dir", 0, MC_FLAG_STRING, offsetof(struct mc_restore_opts, data_dir),
     "Path to the data directory (default \"<name>.etcd\")"},
    {"name", 0, MC_FLAG_STRING, offsetof(struct mc_restore_opts, name),
     "Human-readable name for this member (default \"default\")"},
    {"initial-cluster", 0, MC_FLAG_STRING,
     offsetof(struct mc_restore_opts, initial_cluster),
     "Initial cluster configuration for restore bootstrap (default "
     "\"default=http://localhost:2380\")"},
    {"initial-cluster-token", 0, MC_FLAG_STRING,
     offsetof(struct mc_restore_opts, token),
     "Initial cluster token for the etcd cluster during restore bootstrap "
     "(default \"etcd-cluster\")"},
    {"initial-advertise-peer-urls", 0, MC_FLAG_STRING,
     offsetof(struct mc_restore_opts, advertise),
     "List of this member's peer URLs to advertise to the rest of the "
     "cluster (default \"http://localhost:2380\")"},
    {"skip-hash-check", 0, MC_FLAG_BOOL,
     offsetof(struct mc_restore_opts, skip_hash_check),
     "Accepted for etcdctl's scripts; moor snapshot files always carry "
     "their SHA-256, which is always checked"},
};
const size_t mc_restore_flags_len = MOOR_ARRAY_LEN(mc_restore_flags);

/* ---- --initial-cluster ---------------------------------------------------
 */

/* Normalises a peer URL as moord does: "scheme://host:port", IPv6 hosts
 * in brackets, an optional trailing "/" dropped. */
static int url_normalise(const char *text, size_t len, char *out, char *errtext)
{
    char u[MC_RESTORE_URL_MAX];
    if (len >= sizeof(u)) {
        moor_errmsg_set(errtext, "URL too long: %.*s", (int)len, text);
        return MOOR_EINVAL;
    }
    memcpy(u, text, len);
    u[len] = '\0';
    const char *scheme = strncmp(u, "http://", 7) == 0    ? "http"
                         : strncmp(u, "https://", 8) == 0 ? "https"
                                                          : NULL;
    if (scheme == NULL) {
        moor_errmsg_set(errtext, "URL scheme must be http or https: %s", u);
        return MOOR_EINVAL;
    }
    const char *p = u + strlen(scheme) + 3;
    const char *host = p;
    size_t host_len;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL) {
            moor_errmsg_set(errtext, "unterminated IPv6 address: %s", u);
            return MOOR_EINVAL;
        }
        host = p + 1;
        host_len = (size_t)(close - host);
        p = close + 1;
    } else {
        host_len = strcspn(p, ":/");
        p += host_len;
    }
    if (host_len == 0 || *p != ':') {
        moor_errmsg_set(errtext, "URL must be scheme://host:port: %s", u);
        return MOOR_EINVAL;
    }
    p++;
    size_t plen = strcspn(p, "/");
    unsigned long port = 0;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] < '0' || p[i] > '9' || port > 65535) {
            plen = 0;
            break;
        }
        port = port * 10 + (unsigned long)(p[i] - '0');
    }
    if (plen == 0 || port > 65535 || (p[plen] == '/' && p[plen + 1] != 0)) {
        moor_errmsg_set(errtext, "URL must be scheme://host:port: %s", u);
        return MOOR_EINVAL;
    }
    bool v6 = memchr(host, ':', host_len) != NULL;
    snprintf(out, MC_RESTORE_URL_MAX, "%s://%s%.*s%s:%lu", scheme,
             v6 ? "[" : "", (int)host_len, host, v6 ? "]" : "", port);
    return MOOR_OK;
}

/* Parses "name=url[,name=url...]" (a name may repeat for several URLs). */
static int parse_cluster(const char *text, struct mc_restore_cluster *rc,
                         char *errtext)
{
    const char *p = text;
    char why[MOOR_ERRMSG_SIZE];
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (eq == NULL || eq == p || (size_t)(eq - p) >= MC_RESTORE_NAME_MAX) {
            moor_errmsg_set(errtext,
                            "--initial-cluster: '%.*s' is not name=url",
                            (int)len, p);
            return MOOR_EINVAL;
        }
        size_t name_len = (size_t)(eq - p);
        struct mc_restore_member *m = NULL;
        for (size_t i = 0; i < rc->n; i++) {
            if (strlen(rc->members[i].name) == name_len &&
                memcmp(rc->members[i].name, p, name_len) == 0) {
                m = &rc->members[i];
            }
        }
        if (m == NULL) {
            if (rc->n == MC_RESTORE_MEMBERS_MAX) {
                moor_errmsg_set(errtext,
                                "--initial-cluster: more than %d members",
                                MC_RESTORE_MEMBERS_MAX);
                return MOOR_EINVAL;
            }
            m = &rc->members[rc->n++];
            memset(m, 0, sizeof(*m));
            memcpy(m->name, p, name_len);
        }
        if (m->n_urls == MC_RESTORE_URLS_MAX) {
            moor_errmsg_set(errtext, "--initial-cluster: too many URLs for %s",
                            m->name);
            return MOOR_EINVAL;
        }
        if (url_normalise(eq + 1, len - name_len - 1, m->urls[m->n_urls],
                          why) != MOOR_OK) {
            moor_errmsg_set(errtext, "--initial-cluster: %s", why);
            return MOOR_EINVAL;
        }
        m->n_urls++;
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    if (rc->n == 0) {
        moor_errmsg_set(errtext, "--initial-cluster is empty");
        return MOOR_EINVAL;
    }
    return MOOR_OK;
}

/* Whether a (from --initial-cluster) and the advertised URLs are the same
 * set. */
static bool same_urls(const struct mc_restore_member *a, const char *adv,
                      char *errtext)
{
    char urls[MC_RESTORE_URLS_MAX][MC_RESTORE_URL_MAX];
    size_t n = 0;
    for (const char *p = adv; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len > 0) {
            if (n == MC_RESTORE_URLS_MAX ||
                url_normalise(p, len, urls[n], errtext) != MOOR_OK) {
                return false;
            }
            n++;
        }
        p += len + (p[len] == ',');
    }
    if (n != a->n_urls) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < n && !found; k++) {
            found = strcmp(urls[i], a->urls[k]) == 0;
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

int mc_restore_cluster_parse(const char *initial_cluster, const char *token,
                             const char *name, const char *advertise,
                             struct mc_restore_cluster *rc, char *errtext)
{
    memset(rc, 0, sizeof(*rc));
    int rv = parse_cluster(initial_cluster, rc, errtext);
    if (rv != MOOR_OK) {
        return rv;
    }
    uint64_t ids[MC_RESTORE_MEMBERS_MAX];
    const struct mc_restore_member *self = NULL;
    for (size_t i = 0; i < rc->n; i++) {
        struct mc_restore_member *m = &rc->members[i];
        const char *texts[MC_RESTORE_URLS_MAX];
        for (size_t k = 0; k < m->n_urls; k++) {
            texts[k] = m->urls[k];
        }
        m->id = snap_member_id(texts, m->n_urls, token);
        ids[i] = m->id;
        for (size_t k = 0; k < i; k++) {
            if (rc->members[k].id == m->id) {
                moor_errmsg_set(errtext,
                                "--initial-cluster: members %s and %s have "
                                "the same peer URLs",
                                rc->members[k].name, m->name);
                return MOOR_EINVAL;
            }
        }
        if (strcmp(m->name, name) == 0) {
            self = m;
        }
    }
    if (self == NULL) {
        moor_errmsg_set(errtext,
                        "couldn't find local name \"%s\" in the initial "
                        "cluster configuration",
                        name);
        return MOOR_EINVAL;
    }
    char why[MOOR_ERRMSG_SIZE] = "";
    if (!same_urls(self, advertise, why)) {
        moor_errmsg_set(errtext,
                        "--initial-cluster has %s=%s but missing from "
                        "--initial-advertise-peer-urls=%s%s%s%s",
                        self->name, self->urls[0], advertise,
                        why[0] != 0 ? " (" : "", why, why[0] != 0 ? ")" : "");
        return MOOR_EINVAL;
    }
    rc->self = (size_t)(self - rc->members);
    rc->cluster_id = snap_cluster_id(ids, rc->n);
    return MOOR_OK;
}

int mc_restore_membership_encode(const struct mc_restore_cluster *rc,
                                 struct moor_buf *out)
{
    Moorpb__Member members[MC_RESTORE_MEMBERS_MAX];
    Moorpb__Member *ptrs[MC_RESTORE_MEMBERS_MAX];
    char *urls[MC_RESTORE_MEMBERS_MAX][MC_RESTORE_URLS_MAX];
    for (size_t i = 0; i < rc->n; i++) {
        const struct mc_restore_member *m = &rc->members[i];
        moorpb__member__init(&members[i]);
        members[i].id = m->id;
        members[i].name = (char *)(uintptr_t)m->name;
        for (size_t k = 0; k < m->n_urls; k++) {
            urls[i][k] = (char *)(uintptr_t)m->urls[k];
        }
        members[i].n_peer_urls = m->n_urls;
        members[i].peer_urls = urls[i];
        ptrs[i] = &members[i];
    }
    Moorpb__Membership ms = MOORPB__MEMBERSHIP__INIT;
    ms.cluster_id = rc->cluster_id;
    ms.n_members = rc->n;
    ms.members = ptrs;
    return moor_pb_pack(&ms.base, out);
}

/* ---- the command ---------------------------------------------------------
 */

struct progress
{
    FILE *err;
    bool tty;
    uint64_t t0_ns, last_draw_ns;
};

static void progress_cb(void *arg, enum snap_restore_phase phase, uint64_t done,
                        uint64_t total)
{
    static const char *const names[] = {"verifying", "loading", "writing"};
    struct progress *p = arg;
    uint64_t now = moor_clock_ns();
    if (!p->tty || now - p->last_draw_ns < 100000000) {
        return;
    }
    p->last_draw_ns = now;
    double pct = total > 0 ? 100.0 * (double)done / (double)total : 0.0;
    fprintf(p->err, "\r\033[K%s %5.1f%%  %.1f s", names[phase], pct,
            (double)(now - p->t0_ns) / 1e9);
    fflush(p->err);
}

int mc_cmd_snapshot_restore(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    struct mc_restore_opts *o = opts;
    char e[MOOR_ERRMSG_SIZE];
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "snapshot restore requires exactly one argument");
    }
    const char *name = o->name != NULL ? o->name : DEFAULT_NAME;
    struct mc_restore_cluster *rc = moor_calloc(1, sizeof(*rc));
    if (rc == NULL) {
        return mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    int code = MC_EXIT_OK;
    struct moor_buf dir, enc;
    moor_buf_init(&dir);
    moor_buf_init(&enc);
    struct moor_bytes *membership = NULL;
    if (mc_restore_cluster_parse(
            o->initial_cluster != NULL ? o->initial_cluster : DEFAULT_CLUSTER,
            o->token != NULL ? o->token : DEFAULT_TOKEN, name,
            o->advertise != NULL ? o->advertise : DEFAULT_ADVERTISE, rc,
            e) != MOOR_OK) {
        code = mc_fail(c, MC_EXIT_USAGE, "%s", e);
        goto out;
    }
    if (mc_is_bbolt(args[0])) {
        code = mc_fail(c, MC_EXIT_ERROR,
                       "%s is an etcd (bbolt) snapshot, not a moor one: "
                       "restore it with etcdctl snapshot restore",
                       args[0]);
        goto out;
    }
    if ((o->data_dir != NULL && o->data_dir[0] != '\0'
             ? moor_buf_printf(&dir, "%s", o->data_dir)
             : moor_buf_printf(&dir, "%s.etcd", name)) != MOOR_OK ||
        moor_buf_putc(&dir, 0) != MOOR_OK ||
        mc_restore_membership_encode(rc, &enc) != MOOR_OK ||
        (membership = moor_bytes_copy(enc.ptr, enc.len)) == NULL) {
        code = mc_fail(c, MC_EXIT_ERROR, "out of memory");
        goto out;
    }
    struct progress pr = {c->err, isatty(fileno(c->err)) != 0, moor_clock_ns(),
                          0};
    struct snap_restore_opts ro = {args[0], (const char *)dir.ptr, membership,
                                   progress_cb, &pr};
    struct snap_restore_result res;
    int rv = snap_restore(&ro, &res, e);
    if (pr.tty) {
        fprintf(c->err, "\r\033[K");
    }
    if (rv != MOOR_OK) {
        code =
            mc_fail(c, MC_EXIT_ERROR, "%s", e[0] != 0 ? e : moor_strerror(rv));
        goto out;
    }
    const struct mc_restore_member *self = &rc->members[rc->self];
    fprintf(c->err,
            "restored revision %llu (%llu keys, %llu leases) in %.3f s: "
            "member %s %016llx of cluster %016llx\n",
            (unsigned long long)res.revision, (unsigned long long)res.key_count,
            (unsigned long long)res.lease_count,
            (double)(moor_clock_ns() - pr.t0_ns) / 1e9, self->name,
            (unsigned long long)self->id, (unsigned long long)rc->cluster_id);
    fprintf(c->out, "Snapshot restored into %s\n", (const char *)dir.ptr);
out:
    moor_bytes_unref(membership);
    moor_buf_close(&enc);
    moor_buf_close(&dir);
    moor_free(rc);
    return code;
}
