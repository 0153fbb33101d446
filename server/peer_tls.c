/*
 * peer_tls.c: mutual TLS between members, on memory BIOs (the socket stays
 * libuv's; OpenSSL only turns bytes into bytes, as rpc/transport.c does for
 * the client port, whose internals rpc/ does not expose).
 *
 * Rules (etcd's): every member presents --peer-cert-file as both server and
 * client certificate; the dialer verifies the acceptor's certificate
 * against --peer-trusted-ca-file (the system's CAs without it) and its IP
 * SAN against the address dialed; with --peer-client-cert-auth the
 * acceptor requires a client certificate that verifies against the same
 * CA, and when that certificate carries IP SANs, the connection's remote
 * address must be one of them. TLS 1.2 is the minimum.
 *
 * A connection: srv_tls_input takes socket bytes and yields plaintext (and
 * handshake bytes to send back); srv_tls_output takes plaintext and yields
 * socket bytes, holding plaintext back until the handshake is done.
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "peer_int.h"

struct srv_tls
{
    SSL *ssl;
    BIO *rbio; /* socket -> SSL */
    BIO *wbio; /* SSL -> socket */
    bool server;
    bool done;
    struct sockaddr_storage remote; /* the acceptor's IP SAN check */
    struct moor_buf pending;        /* plaintext before the handshake */
};

static void tls_errmsg(char *errmsg, const char *what, const char *file)
{
    char buf[200];
    unsigned long e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    } else {
        snprintf(buf, sizeof(buf), "unknown error");
    }
    ERR_clear_error();
    moor_errmsg_set(errmsg, "%s %s: %s", what, file != NULL ? file : "", buf);
}

static SSL_CTX *ctx_new(const struct srv_config *cfg, bool server, char *errmsg)
{
    SSL_CTX *ctx =
        SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        tls_errmsg(errmsg, "SSL_CTX_new", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->peer_cert_file) != 1) {
        tls_errmsg(errmsg, "loading --peer-cert-file", cfg->peer_cert_file);
        goto err;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->peer_key_file,
                                    SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_errmsg(errmsg, "loading --peer-key-file", cfg->peer_key_file);
        goto err;
    }
    bool have_ca = cfg->peer_trusted_ca_file != NULL &&
                   cfg->peer_trusted_ca_file[0] != '\0';
    if (have_ca && SSL_CTX_load_verify_locations(ctx, cfg->peer_trusted_ca_file,
                                                 NULL) != 1) {
        tls_errmsg(errmsg, "loading --peer-trusted-ca-file",
                   cfg->peer_trusted_ca_file);
        goto err;
    }
    if (!have_ca && !server && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        tls_errmsg(errmsg, "loading the system's CAs", NULL);
        goto err;
    }
    if (server) {
        SSL_CTX_set_verify(
            ctx,
            cfg->peer_client_cert_auth
                ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                : SSL_VERIFY_NONE,
            NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

int srv_peer_tls_open(const struct srv_config *cfg, struct srv_peer_tls *t,
                      char *errmsg)
{
    memset(t, 0, sizeof(*t));
    t->server = ctx_new(cfg, true, errmsg);
    if (t->server == NULL) {
        return MOOR_ETLS;
    }
    t->client = ctx_new(cfg, false, errmsg);
    if (t->client == NULL) {
        SSL_CTX_free(t->server);
        t->server = NULL;
        return MOOR_ETLS;
    }
    return MOOR_OK;
}

void srv_peer_tls_close(struct srv_peer_tls *t)
{
    SSL_CTX_free(t->server);
    SSL_CTX_free(t->client);
    t->server = NULL;
    t->client = NULL;
}

int srv_tls_new(const struct srv_peer_tls *ctx, bool server,
                const struct sockaddr_storage *remote, struct srv_tls **out)
{
    struct srv_tls *t = moor_calloc(1, sizeof(*t));
    if (t == NULL) {
        return MOOR_ENOMEM;
    }
    moor_buf_init(&t->pending);
    t->server = server;
    t->remote = *remote;
    t->ssl = SSL_new(server ? ctx->server : ctx->client);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        moor_free(t);
        return MOOR_ENOMEM;
    }
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        /* The acceptor's certificate must name the address dialed. */
        SSL_set_connect_state(t->ssl);
        char ip[INET6_ADDRSTRLEN] = "";
        if (remote->ss_family == AF_INET) {
            uv_ip4_name((const struct sockaddr_in *)remote, ip, sizeof(ip));
        } else {
            uv_ip6_name((const struct sockaddr_in6 *)remote, ip, sizeof(ip));
        }
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ip) != 1) {
            srv_tls_free(t);
            return MOOR_EINVAL;
        }
    }
    *out = t;
    return MOOR_OK;
}

void srv_tls_free(struct srv_tls *t)
{
    if (t == NULL) {
        return;
    }
    SSL_free(t->ssl); /* frees both BIOs */
    moor_buf_close(&t->pending);
    moor_free(t);
}

bool srv_tls_ready(const struct srv_tls *t)
{
    return t->done;
}

static int drain(struct srv_tls *t, struct moor_buf *wire)
{
    size_t avail = (size_t)BIO_ctrl_pending(t->wbio);
    if (avail == 0) {
        return MOOR_OK;
    }
    int rv = moor_buf_reserve(wire, avail);
    if (rv != MOOR_OK) {
        return rv;
    }
    int n = BIO_read(t->wbio, wire->ptr + wire->len, (int)avail);
    if (n > 0) {
        wire->len += (size_t)n;
    }
    return MOOR_OK;
}

static int fail(struct srv_tls *t, const char *what, char *errmsg)
{
    char buf[200];
    unsigned long e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    } else {
        snprintf(buf, sizeof(buf), "connection closed");
    }
    ERR_clear_error();
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
        moor_errmsg_set(errmsg, "TLS %s: %s (%s)", what, buf,
                        X509_verify_cert_error_string(vr));
    } else {
        moor_errmsg_set(errmsg, "TLS %s: %s", what, buf);
    }
    return MOOR_ETLS;
}

/* The acceptor's rule: a client certificate with IP SANs must name the
 * connection's remote address. */
static int check_ip_sans(struct srv_tls *t, char *errmsg)
{
    X509 *cert = SSL_get_peer_certificate(t->ssl);
    if (cert == NULL) {
        return MOOR_OK; /* allowed only without --peer-client-cert-auth */
    }
    GENERAL_NAMES *names =
        X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    const uint8_t *addr = NULL;
    int addr_len = 0;
    if (t->remote.ss_family == AF_INET) {
        addr = (const uint8_t *)&((struct sockaddr_in *)&t->remote)->sin_addr;
        addr_len = 4;
    } else {
        addr = (const uint8_t *)&((struct sockaddr_in6 *)&t->remote)->sin6_addr;
        addr_len = 16;
    }
    int n_ip = 0;
    bool match = false;
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_IPADD) {
            continue;
        }
        n_ip++;
        const ASN1_OCTET_STRING *ip = g->d.iPAddress;
        if (ASN1_STRING_length(ip) == addr_len &&
            memcmp(ASN1_STRING_get0_data(ip), addr, (size_t)addr_len) == 0) {
            match = true;
        }
    }
    GENERAL_NAMES_free(names);
    X509_free(cert);
    if (n_ip > 0 && !match) {
        char ip[INET6_ADDRSTRLEN] = "";
        if (t->remote.ss_family == AF_INET) {
            uv_ip4_name((const struct sockaddr_in *)&t->remote, ip, sizeof(ip));
        } else {
            uv_ip6_name((const struct sockaddr_in6 *)&t->remote, ip,
                        sizeof(ip));
        }
        moor_errmsg_set(errmsg,
                        "TLS: the peer's certificate has IP SANs, none of "
                        "them its address %s",
                        ip);
        return MOOR_ETLS;
    }
    return MOOR_OK;
}

static int handshake(struct srv_tls *t, struct moor_buf *wire, char *errmsg)
{
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        int rv = drain(t, wire); /* alerts go out too */
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            return rv;
        }
        return fail(t, "handshake", errmsg);
    }
    if (t->server) {
        int rv = check_ip_sans(t, errmsg);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    t->done = true;
    if (t->pending.len > 0) {
        struct moor_buf p = t->pending;
        moor_buf_init(&t->pending);
        int rv = srv_tls_output(t, p.ptr, p.len, wire, errmsg);
        moor_buf_close(&p);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return drain(t, wire);
}

int srv_tls_start(struct srv_tls *t, struct moor_buf *wire, char *errmsg)
{
    return t->server ? MOOR_OK : handshake(t, wire, errmsg);
}

int srv_tls_output(struct srv_tls *t, const uint8_t *p, size_t n,
                   struct moor_buf *wire, char *errmsg)
{
    if (!t->done) {
        return moor_buf_append(&t->pending, p, n);
    }
    while (n > 0) {
        int w = SSL_write(t->ssl, p, (int)MOOR_MIN(n, (size_t)INT32_MAX));
        if (w <= 0) {
            return fail(t, "write", errmsg);
        }
        p += w;
        n -= (size_t)w;
    }
    return drain(t, wire);
}

int srv_tls_input(struct srv_tls *t, const uint8_t *p, size_t n,
                  struct moor_buf *plain, struct moor_buf *wire, char *errmsg)
{
    while (n > 0) {
        int w = BIO_write(t->rbio, p, (int)MOOR_MIN(n, (size_t)INT32_MAX));
        if (w <= 0) {
            return MOOR_ENOMEM;
        }
        p += w;
        n -= (size_t)w;
    }
    if (!t->done) {
        int rv = handshake(t, wire, errmsg);
        if (rv != MOOR_OK || !t->done) {
            return rv;
        }
    }
    for (;;) {
        int rv = moor_buf_reserve(plain, 16384);
        if (rv != MOOR_OK) {
            return rv;
        }
        int r =
            SSL_read(t->ssl, plain->ptr + plain->len,
                     (int)MOOR_MIN(plain->cap - plain->len, (size_t)INT32_MAX));
        if (r > 0) {
            plain->len += (size_t)r;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            moor_errmsg_set(errmsg, "the peer closed TLS");
            return MOOR_ECONN;
        }
        return fail(t, "read", errmsg);
    }
    return drain(t, wire);
}
