/*
 * transport.c: TCP and TLS behind struct rpc__transport_ops. The only file
 * of rpc/ that includes OpenSSL: HTTP/2 and gRPC code see plaintext.
 *
 * TLS runs on memory BIOs: socket bytes are written into the read BIO,
 * SSL_read yields plaintext for the owner; plaintext from the owner goes
 * through SSL_write and the write BIO is drained into c->out, which the
 * connection writes once per loop iteration like any other output.
 * Plaintext written before the handshake completes waits in a buffer.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <stdatomic.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>

#include "rpc_int.h"

/* ------------------------------------------------------------------------
 * rpc_global_init: libuv's and OpenSSL's heaps through moor's allocator.
 * ---------------------------------------------------------------------- */
/* The bytes OpenSSL holds are counted apart from moor's own
 * (rpc_openssl_bytes), as moor_alloc_bytes counts them (malloc's usable
 * size of each block), so tests can check that rpc/ frees what it
 * allocates while OpenSSL keeps its caches. OpenSSL's own defaults answer
 * NULL for 0 bytes and free on a realloc to 0 bytes; these do the same. */
static atomic_size_t ossl_bytes;

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (n == 0) {
        return NULL;
    }
    void *p = moor_malloc(n);
    if (p != NULL) {
        atomic_fetch_add_explicit(&ossl_bytes, malloc_usable_size(p),
                                  memory_order_relaxed);
    }
    return p;
}

static void ossl_free(void *ptr, const char *file, int line)
{
    (void)file;
    (void)line;
    if (ptr == NULL) {
        return;
    }
    atomic_fetch_sub_explicit(&ossl_bytes, malloc_usable_size(ptr),
                              memory_order_relaxed);
    moor_free(ptr);
}

static void *ossl_realloc(void *ptr, size_t n, const char *file, int line)
{
    if (ptr == NULL) {
        return ossl_malloc(n, file, line);
    }
    if (n == 0) {
        ossl_free(ptr, file, line);
        return NULL;
    }
    size_t old = malloc_usable_size(ptr);
    void *p = moor_realloc(ptr, n);
    if (p == NULL) {
        return NULL;
    }
    atomic_fetch_add_explicit(&ossl_bytes, malloc_usable_size(p),
                              memory_order_relaxed);
    atomic_fetch_sub_explicit(&ossl_bytes, old, memory_order_relaxed);
    return p;
}

size_t rpc_openssl_bytes(void)
{
    return atomic_load_explicit(&ossl_bytes, memory_order_relaxed);
}

int rpc_global_init(void)
{
    static bool done;
    static int result;
    if (done) {
        return result;
    }
    done = true;
    result = MOOR_OK;
    /* libuv keeps no record of what it allocated before: this must come
     * before any other libuv call, which the header demands. */
    if (uv_replace_allocator(moor_malloc, moor_realloc, moor_calloc,
                             moor_free) != 0) {
        result = MOOR_EINVAL;
    }
    /* OpenSSL refuses once it has allocated anything: its blocks then stay
     * with malloc, consistently, and only the accounting misses them. */
    if (CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) != 1) {
        result = MOOR_EBUSY;
    }
    /* Initialise now, not inside the first handshake: the library's
     * process-wide tables (providers, error strings) are allocated once
     * here and freed by OpenSSL's own exit handler, so they are not mistaken
     * for a leak of whatever first used TLS, and a failed allocation in a
     * later call cannot leave OpenSSL half initialised. */
    if (OPENSSL_init_ssl(
            OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
            NULL) != 1) {
        result = MOOR_ETLS;
    }
    return result;
}

/* ------------------------------------------------------------------------
 * TCP: bytes pass through.
 * ---------------------------------------------------------------------- */
static int tcp_start(struct rpc__conn *c)
{
    return c->ops->ready(c, "");
}

static int tcp_input(struct rpc__conn *c, const uint8_t *p, size_t n)
{
    return c->ops->input(c, p, n);
}

static int tcp_output(struct rpc__conn *c, const uint8_t *p, size_t n)
{
    return rpc__conn_write_raw(c, p, n);
}

static void tcp_close(struct rpc__conn *c)
{
    (void)c;
}

const struct rpc__transport_ops rpc__tcp_ops = {
    "tcp", tcp_start, tcp_input, tcp_output, tcp_close,
};

/* ------------------------------------------------------------------------
 * TLS contexts
 * ---------------------------------------------------------------------- */
struct rpc__tls_ctx
{
    SSL_CTX *ctx;
    bool server;
    bool verify;
    char *server_name;
};

static const unsigned char alpn_h2[] = {2, 'h', '2'};

static void tls_errmsg(char *errmsg, const char *what, const char *file)
{
    char buf[160];
    unsigned long e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    } else {
        snprintf(buf, sizeof(buf), "unknown error");
    }
    ERR_clear_error();
    if (errmsg != NULL) {
        moor_errmsg_set(errmsg, "%s %s: %s", what, file != NULL ? file : "",
                        buf);
    }
}

static int alpn_select_cb(SSL *ssl, const unsigned char **out,
                          unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* Prefer h2; accept http/1.1 (health checks with curl); with neither
     * offered, continue without ALPN (the first bytes decide). */
    static const unsigned char prefs[] = {2,   'h', '2', 8,   'h', 't',
                                          't', 'p', '/', '1', '.', '1'};
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, prefs, sizeof(prefs), in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int rpc__tls_ctx_new(const struct rpc_tls_config *cfg, bool server,
                     struct rpc__tls_ctx **out, char *errmsg)
{
    int rv = MOOR_ETLS;
    struct rpc__tls_ctx *t = moor_calloc(1, sizeof(*t));
    if (t == NULL) {
        return MOOR_ENOMEM;
    }
    t->server = server;
    t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (t->ctx == NULL) {
        tls_errmsg(errmsg, "SSL_CTX_new", NULL);
        goto err;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    if (server && (cfg->cert_file == NULL || cfg->key_file == NULL)) {
        if (errmsg != NULL) {
            moor_errmsg_set(errmsg, "TLS server needs cert and key files");
        }
        rv = MOOR_EINVAL;
        goto err;
    }
    if (cfg->cert_file != NULL &&
        SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1) {
        tls_errmsg(errmsg, "load certificate", cfg->cert_file);
        goto err;
    }
    if (cfg->key_file != NULL &&
        (SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file, SSL_FILETYPE_PEM) !=
             1 ||
         SSL_CTX_check_private_key(t->ctx) != 1)) {
        tls_errmsg(errmsg, "load key", cfg->key_file);
        goto err;
    }
    if (server) {
        SSL_CTX_set_alpn_select_cb(t->ctx, alpn_select_cb, NULL);
        if (cfg->client_cert_auth) {
            if (cfg->ca_file == NULL) {
                if (errmsg != NULL) {
                    moor_errmsg_set(errmsg, "client-cert-auth needs a CA file");
                }
                rv = MOOR_EINVAL;
                goto err;
            }
            if (SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) !=
                1) {
                tls_errmsg(errmsg, "load CA", cfg->ca_file);
                goto err;
            }
            SSL_CTX_set_verify(
                t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                NULL);
        }
    } else {
        if (SSL_CTX_set_alpn_protos(t->ctx, alpn_h2, sizeof(alpn_h2)) != 0) {
            tls_errmsg(errmsg, "ALPN", NULL);
            goto err;
        }
        t->verify = !cfg->insecure_skip_verify;
        if (cfg->ca_file != NULL) {
            if (SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) !=
                1) {
                tls_errmsg(errmsg, "load CA", cfg->ca_file);
                goto err;
            }
        } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
            tls_errmsg(errmsg, "default CA paths", NULL);
            goto err;
        }
        SSL_CTX_set_verify(t->ctx,
                           t->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
        if (cfg->server_name != NULL) {
            t->server_name = moor_strdup(cfg->server_name);
            if (t->server_name == NULL) {
                rv = MOOR_ENOMEM;
                goto err;
            }
        }
    }
    *out = t;
    return MOOR_OK;
err:
    rpc__tls_ctx_free(t);
    return rv;
}

void rpc__tls_ctx_free(struct rpc__tls_ctx *t)
{
    if (t == NULL) {
        return;
    }
    SSL_CTX_free(t->ctx);
    moor_free(t->server_name);
    moor_free(t);
}

/* ------------------------------------------------------------------------
 * TLS connections
 * ---------------------------------------------------------------------- */
struct tls_state
{
    SSL *ssl;
    BIO *rbio; /* socket -> SSL */
    BIO *wbio; /* SSL -> socket */
    bool done; /* handshake completed */
    bool server;
    bool seen_input;
    struct moor_buf pending; /* plaintext written before the handshake */
};

static int tls_drain(struct rpc__conn *c, struct tls_state *t)
{
    size_t avail = (size_t)BIO_ctrl_pending(t->wbio);
    if (avail == 0) {
        return MOOR_OK;
    }
    if (c->fake) {
        uint8_t sink[4096];
        while (BIO_read(t->wbio, sink, sizeof(sink)) > 0) {
        }
        return MOOR_OK;
    }
    int rv = moor_buf_reserve(&c->out, avail);
    if (rv != MOOR_OK) {
        return rv;
    }
    int n = BIO_read(t->wbio, c->out.ptr + c->out.len, (int)avail);
    if (n > 0) {
        c->out.len += (size_t)n;
    }
    return MOOR_OK;
}

static int tls_fail(struct rpc__conn *c, const char *what)
{
    char buf[160];
    unsigned long e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    } else {
        snprintf(buf, sizeof(buf), "connection closed");
    }
    ERR_clear_error();
    struct tls_state *t = c->tp_state;
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
        moor_errmsg_set(c->errmsg, "TLS %s with %s: %s (%s)", what, c->peer,
                        buf, X509_verify_cert_error_string(vr));
    } else {
        moor_errmsg_set(c->errmsg, "TLS %s with %s: %s", what, c->peer, buf);
    }
    return MOOR_ETLS;
}

static int tls_output(struct rpc__conn *c, const uint8_t *p, size_t n)
{
    struct tls_state *t = c->tp_state;
    if (!t->done) {
        return moor_buf_append(&t->pending, p, n);
    }
    while (n > 0) {
        int chunk = (int)MOOR_MIN(n, (size_t)INT32_MAX);
        int w = SSL_write(t->ssl, p, chunk);
        if (w <= 0) {
            return tls_fail(c, "write");
        }
        p += w;
        n -= (size_t)w;
    }
    return tls_drain(c, t);
}

static int tls_handshake(struct rpc__conn *c, struct tls_state *t)
{
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        int rv = tls_drain(c, t); /* alerts go out too */
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            return rv;
        }
        return tls_fail(c, "handshake");
    }
    t->done = true;
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
    char proto[16] = "";
    if (alpn != NULL && alpn_len < sizeof(proto)) {
        memcpy(proto, alpn, alpn_len);
        proto[alpn_len] = '\0';
    }
    if (!t->server && strcmp(proto, "h2") != 0) {
        moor_errmsg_set(c->errmsg, "TLS with %s: server did not select h2",
                        c->peer);
        return MOOR_ETLS;
    }
    int rv = c->ops->ready(c, proto);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (t->pending.len > 0) {
        struct moor_buf p = t->pending;
        moor_buf_init(&t->pending);
        rv = tls_output(c, p.ptr, p.len);
        moor_buf_close(&p);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return tls_drain(c, t);
}

static int tls_start(struct rpc__conn *c)
{
    struct tls_state *t = c->tp_state;
    if (t->server) {
        return MOOR_OK; /* wait for the ClientHello */
    }
    return tls_handshake(c, t);
}

static int tls_input(struct rpc__conn *c, const uint8_t *p, size_t n)
{
    struct tls_state *t = c->tp_state;
    if (t->server && !t->seen_input && n > 0 && p[0] >= 'A' && p[0] <= 'Z') {
        /* A cleartext HTTP client on a TLS port: say so, as Go's servers
         * do, in the clear, and close. */
        static const char msg[] =
            "HTTP/1.0 400 Bad Request\r\n\r\n"
            "Client sent an HTTP request to an HTTPS server.\n";
        moor_errmsg_set(c->errmsg, "%s: cleartext request on a TLS port",
                        c->peer);
        rpc__conn_write_raw(c, msg, sizeof(msg) - 1);
        return MOOR_ETLS;
    }
    t->seen_input = true;
    while (n > 0) {
        int w = BIO_write(t->rbio, p, (int)MOOR_MIN(n, (size_t)INT32_MAX));
        if (w <= 0) {
            return MOOR_ENOMEM;
        }
        p += w;
        n -= (size_t)w;
    }
    if (!t->done) {
        int rv = tls_handshake(c, t);
        if (rv != MOOR_OK || !t->done) {
            return rv;
        }
    }
    uint8_t buf[16384];
    for (;;) {
        int r = SSL_read(t->ssl, buf, sizeof(buf));
        if (r > 0) {
            int rv = c->ops->input(c, buf, (size_t)r);
            if (rv != MOOR_OK) {
                return rv;
            }
            if (c->dead || c->closing) {
                return MOOR_OK;
            }
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            moor_errmsg_set(c->errmsg, "%s closed TLS", c->peer);
            return MOOR_ECONN;
        }
        return tls_fail(c, "read");
    }
    return tls_drain(c, t);
}

static void tls_close(struct rpc__conn *c)
{
    struct tls_state *t = c->tp_state;
    if (t == NULL) {
        return;
    }
    SSL_free(t->ssl); /* frees both BIOs */
    moor_buf_close(&t->pending);
    moor_free(t);
    c->tp_state = NULL;
    c->tp = &rpc__tcp_ops;
}

static const struct rpc__transport_ops tls_ops = {
    "tls", tls_start, tls_input, tls_output, tls_close,
};

int rpc__tls_attach(struct rpc__conn *c, struct rpc__tls_ctx *ctx,
                    const char *host)
{
    struct tls_state *t = moor_calloc(1, sizeof(*t));
    if (t == NULL) {
        return MOOR_ENOMEM;
    }
    moor_buf_init(&t->pending);
    t->server = ctx->server;
    t->ssl = SSL_new(ctx->ctx);
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
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        const char *name = ctx->server_name != NULL ? ctx->server_name : host;
        unsigned char ip[16];
        bool is_ip = name != NULL && (inet_pton(AF_INET, name, ip) == 1 ||
                                      inet_pton(AF_INET6, name, ip) == 1);
        if (name != NULL && !is_ip) {
            SSL_set_tlsext_host_name(t->ssl, name);
        }
        if (ctx->verify && name != NULL) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
            int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name)
                           : X509_VERIFY_PARAM_set1_host(vp, name, 0);
            if (ok != 1) {
                SSL_free(t->ssl);
                moor_free(t);
                return MOOR_EINVAL;
            }
        }
    }
    c->tp = &tls_ops;
    c->tp_state = t;
    return MOOR_OK;
}
