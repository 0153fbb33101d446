/*
 * join.c: a new member joining a running cluster
 * (--initial-cluster-state existing).
 *
 * The operator first adds the member (MemberAdd, `etcdctl member add`),
 * which commits it into the cluster's membership with an id etcd's way
 * (SHA-1 of its peer URLs, the token and the time). The new member does
 * not know that id nor the cluster id, so before it opens anything it
 * asks the other members of its --initial-cluster for the membership, as
 * etcd's GetClusterFromRemotePeers does: on each peer URL, a handshake
 * with stream "join" (peer.proto) answered by one Frame.membership. The
 * member finds itself there by its --initial-advertise-peer-urls; that
 * table becomes its first table (and raft's bootstrap configuration), and
 * the leader then sends it the log or a snapshot.
 *
 * This runs before the loop starts, so it blocks: each attempt has a
 * connect and read timeout, and the whole search is bounded by
 * SRV_JOIN_TIMEOUT_MS. https peer URLs are asked over TLS with the
 * member's peer certificate (--peer-cert-file, --peer-key-file) and CA
 * (--peer-trusted-ca-file).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_int.h"
#include "server_int.h"

/* Bounds: one attempt, and the whole search. */
#define JOIN_ATTEMPT_MS 2000
#define SRV_JOIN_TIMEOUT_MS 15000
/* The answer is one membership block. */
#define JOIN_ANSWER_MAX (1u << 20)

struct join_conn
{
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static void conn_close(struct join_conn *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
    }
    if (c->ctx != NULL) {
        SSL_CTX_free(c->ctx);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

/* Connects to url within JOIN_ATTEMPT_MS; the socket stays blocking with
 * send and receive timeouts. */
static int conn_open(struct join_conn *c, const struct srv_config *cfg,
                     const struct srv_url *url, char *errmsg)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    char port[8];
    snprintf(port, sizeof(port), "%u", url->port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(url->host, port, &hints, &ai) != 0 || ai == NULL) {
        moor_errmsg_set(errmsg, "%s: cannot resolve", url->text);
        return MOOR_ECONN;
    }
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rv = MOOR_ECONN;
    if (c->fd >= 0) {
        struct timeval tv = {JOIN_ATTEMPT_MS / 1000,
                             (JOIN_ATTEMPT_MS % 1000) * 1000};
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        /* SO_SNDTIMEO bounds a blocking connect() on Linux too. */
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            rv = MOOR_OK;
        }
    }
    freeaddrinfo(ai);
    if (rv != MOOR_OK) {
        moor_errmsg_set(errmsg, "%s: %s", url->text, strerror(errno));
        conn_close(c);
        return rv;
    }
    if (!url->tls) {
        return MOOR_OK;
    }
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        conn_close(c);
        return MOOR_ENOMEM;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    bool ok = true;
    if (cfg->peer_cert_file != NULL && cfg->peer_cert_file[0] != '\0') {
        ok = SSL_CTX_use_certificate_chain_file(c->ctx, cfg->peer_cert_file) ==
                 1 &&
             SSL_CTX_use_PrivateKey_file(c->ctx, cfg->peer_key_file,
                                         SSL_FILETYPE_PEM) == 1;
    }
    if (ok && cfg->peer_trusted_ca_file != NULL &&
        cfg->peer_trusted_ca_file[0] != '\0') {
        ok = SSL_CTX_load_verify_locations(c->ctx, cfg->peer_trusted_ca_file,
                                           NULL) == 1;
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    }
    if (ok) {
        c->ssl = SSL_new(c->ctx);
        ok = c->ssl != NULL && SSL_set_fd(c->ssl, c->fd) == 1 &&
             SSL_connect(c->ssl) == 1;
    }
    if (!ok) {
        unsigned long e = ERR_get_error();
        char why[256];
        ERR_error_string_n(e, why, sizeof(why));
        ERR_clear_error();
        moor_errmsg_set(errmsg, "%s: TLS: %s", url->text, why);
        conn_close(c);
        return MOOR_ETLS;
    }
    return MOOR_OK;
}

static int conn_write(struct join_conn *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        ssize_t w = c->ssl != NULL ? SSL_write(c->ssl, p, chunk)
                                   : send(c->fd, p, (size_t)chunk, 0);
        if (w < 0 && c->ssl == NULL && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return MOOR_ECONN;
        }
        p += w;
        len -= (size_t)w;
    }
    return MOOR_OK;
}

static int conn_read(struct join_conn *c, uint8_t *p, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        ssize_t r = c->ssl != NULL ? SSL_read(c->ssl, p, chunk)
                                   : recv(c->fd, p, (size_t)chunk, 0);
        if (r < 0 && c->ssl == NULL && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return MOOR_ECONN;
        }
        p += r;
        len -= (size_t)r;
    }
    return MOOR_OK;
}

/* Asks one peer URL for the membership. */
static int ask(struct srv_node *n, const struct srv_url *url,
               struct srv_members *out, char *errmsg)
{
    const struct srv_config *cfg = n->cfg;
    struct join_conn c;
    int rv = conn_open(&c, cfg, url, errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }
    char *peer[SRV_URLS_MAX];
    const struct srv_url_list *mine = &cfg->initial_advertise_peer_urls;
    for (unsigned i = 0; i < mine->n; i++) {
        peer[i] = (char *)(uintptr_t)mine->urls[i].text;
    }
    Moorpb__Handshake hs = MOORPB__HANDSHAKE__INIT;
    hs.protocol_version = SRV_PEER_PROTOCOL_VERSION;
    hs.stream = (char *)(uintptr_t) "join";
    hs.name = cfg->name;
    hs.peer_urls = peer;
    hs.n_peer_urls = mine->n;
    Moorpb__Frame f = MOORPB__FRAME__INIT;
    f.body_case = MOORPB__FRAME__BODY_HANDSHAKE;
    f.handshake = &hs;
    uint8_t frame[16384];
    size_t len = moorpb__frame__get_packed_size(&f);
    if (len + 4 > sizeof(frame)) {
        conn_close(&c);
        return MOOR_ETOOBIG;
    }
    moor_put_be32(frame, (uint32_t)len);
    moorpb__frame__pack(&f, frame + 4);
    uint8_t hdr[4];
    rv = conn_write(&c, frame, len + 4);
    if (rv == MOOR_OK) {
        rv = conn_read(&c, hdr, 4);
    }
    uint32_t blen = rv == MOOR_OK ? moor_get_be32(hdr) : 0;
    if (rv == MOOR_OK && (blen == 0 || blen > JOIN_ANSWER_MAX)) {
        rv = MOOR_EPROTO;
    }
    uint8_t *body = rv == MOOR_OK ? moor_malloc(blen) : NULL;
    if (rv == MOOR_OK && body == NULL) {
        rv = MOOR_ENOMEM;
    }
    if (rv == MOOR_OK) {
        rv = conn_read(&c, body, blen);
    }
    conn_close(&c);
    ProtobufCMessage *pm = NULL;
    if (rv == MOOR_OK) {
        rv = moor_pb_unpack(&moorpb__frame__descriptor, body, blen, blen, &pm);
    }
    moor_free(body);
    if (rv != MOOR_OK) {
        moor_errmsg_set(errmsg, "%s: no membership in the answer (%s)",
                        url->text, moor_strerror(rv));
        return rv == MOOR_ECONN ? rv : MOOR_EPROTO;
    }
    const Moorpb__Frame *af = (const Moorpb__Frame *)pm;
    rv = MOOR_EPROTO;
    if (af->body_case == MOORPB__FRAME__BODY_MEMBERSHIP) {
        size_t mlen = moorpb__membership__get_packed_size(af->membership);
        uint8_t *mb = moor_malloc(mlen);
        if (mb == NULL) {
            rv = MOOR_ENOMEM;
        } else {
            moorpb__membership__pack(af->membership, mb);
            rv = srv_members_decode((struct moor_slice){mb, mlen}, out, NULL,
                                    NULL, errmsg);
            moor_free(mb);
        }
    } else {
        moor_errmsg_set(errmsg, "%s: the answer is not a membership",
                        url->text);
    }
    protobuf_c_message_free_unpacked(pm, &moor_pb_allocator);
    return rv;
}

/* The member of ms advertising one of urls, or NULL. */
static const struct srv_member *find_by_urls(const struct srv_members *ms,
                                             const struct srv_url_list *urls)
{
    for (unsigned i = 0; i < ms->n; i++) {
        for (unsigned a = 0; a < ms->m[i].peer_urls.n; a++) {
            for (unsigned b = 0; b < urls->n; b++) {
                if (strcmp(ms->m[i].peer_urls.urls[a].text,
                           urls->urls[b].text) == 0) {
                    return &ms->m[i];
                }
            }
        }
    }
    return NULL;
}

int srv_join_cluster(struct srv_node *n)
{
    const struct srv_config *cfg = n->cfg;
    uint64_t deadline = moor_clock_ms() + SRV_JOIN_TIMEOUT_MS;
    char last[MOOR_ERRMSG_SIZE] = "no other member in --initial-cluster";
    bool not_member = false;
    for (;;) {
        for (unsigned i = 0; i < cfg->n_initial_members; i++) {
            const struct srv_initial_member *im = &cfg->initial_members[i];
            if (strcmp(im->name, cfg->name) == 0) {
                continue;
            }
            for (unsigned u = 0; u < im->peer_urls.n; u++) {
                struct srv_members ms;
                if (ask(n, &im->peer_urls.urls[u], &ms, last) != MOOR_OK) {
                    continue;
                }
                const struct srv_member *me =
                    find_by_urls(&ms, &cfg->initial_advertise_peer_urls);
                if (me == NULL) {
                    /* Perhaps this member's add is not applied there yet. */
                    not_member = true;
                    continue;
                }
                n->members = ms;
                n->member_id = me->id;
                n->cluster_id = ms.cluster_id;
                MOOR_LOG_INFO("node", "joining a running cluster",
                              "member=%llx cluster=%llx members=%u via=%s",
                              (unsigned long long)n->member_id,
                              (unsigned long long)n->cluster_id, ms.n,
                              im->peer_urls.urls[u].text);
                return MOOR_OK;
            }
        }
        if (moor_clock_ms() >= deadline) {
            break;
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (not_member) {
        moor_errmsg_set(n->errmsg,
                        "--initial-cluster-state existing: this member's "
                        "peer URLs (%s) are not in the cluster's membership; "
                        "add it first (etcdctl member add)",
                        cfg->initial_advertise_peer_urls.urls[0].text);
    } else {
        moor_errmsg_set(n->errmsg,
                        "--initial-cluster-state existing: cannot get the "
                        "membership from any member of --initial-cluster "
                        "(last: %s)",
                        last);
    }
    return MOOR_ENOENT;
}
